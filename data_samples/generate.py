"""Generate the sample region in ``data_samples/``: a small Qilian-like region with a known truth.

Run ``uv run python data_samples/generate.py [--out DIR] [--seed N] [--truth ttop|logistic]``.
The default (``--truth ttop``) writes beside this script: the committed demo region, whose truth
is a ground-temperature model.  Every file is a deterministic function of the seed: running the script
twice gives byte-identical files (GeoTIFFs through :func:`permafrost.io.rasters.write_cog`,
GeoPackages with a fixed ``OGR_CURRENT_DATE``, HDF5 files without time stamps).

What is modelled, in the order the products depend on each other (one module of
``data_samples/samplegen/`` per product; each function says what it models and where the
formula comes from):

1. terrain          a fractal (power-law spectrum) surface on two WNW-ESE ranges, a valley carved
                    along a road that crosses a pass, lakes flattened into valley floors;
2. climate          a coarse 0.05 deg MAAT grid (regional field + lapse rate x cell elevation) and
                    its downscaling to the 2 arcsec DEM with the same lapse rate;
3. radiation        clear-sky potential incoming solar radiation from slope, aspect and the sun's
                    path (Iqbal 1983; Campbell & Norman 1998);
4. NDVI             decreasing with elevation and slope, plus spatially correlated noise;
5. truth            land cover placed by terrain, then the temperature at the top of permafrost
                    (TTOP, Smith & Riseborough 2002) with snow and vegetation n-factors, Balch
                    cooling of coarse debris and cold-air pooling, PZI = Phi(-TTOP / sigma)
                    (``samplegen/ttop.py``); a classified land-cover covariate with some cells
                    wrong.  The second, small case (``--truth logistic``) uses a logistic function
                    of MAAT, radiation and NDVI instead (form of Boeckli et al. 2012);
6. rock glaciers    tongue-shaped outlines below steep walls (heads on coarse debris only in the
                    ttop region), activity drawn from the truth at their front, downslope
                    velocities by activity class;
7. boreholes        clustered along the road, presence drawn from the truth (through each
                    borehole's own TTOP in the ttop region); GTN-P records from an analytic
                    heat-conduction model (Carslaw & Jaeger 1959; Williams & Smith 1989);
8. InSAR            MintPy geocoded products of one ascending and one descending Sentinel-1 track,
                    LOS velocities projected from downslope motion (Notti et al. 2014);
9. priors, regions, masks.

The truth is recorded in ``truth/truth.json`` and documented in ``README.md``.

``--truth logistic --out DIR`` writes the second, small case: the same terrain, climate,
radiation and NDVI (byte for byte), with the logistic truth the demo had before issue 22, whose
form the logistic model can recover (the tests generate it into a temporary folder).  It is not
committed: the generator refuses to write it into ``data_samples/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE.parent), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

import geopandas as gpd  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from affine import Affine  # noqa: E402
from samplegen.boreholes import (  # noqa: E402
    DAMP,
    GEO_GRAD,
    GTNP_DEPTHS,
    KAPPA,
    Z_REF,
    make_boreholes,
    make_gtnp,
)
from samplegen.climate import ANCHOR_MAAT, ANCHOR_Z, LAPSE, make_climate, make_ndvi  # noqa: E402
from samplegen.grid import (  # noqa: E402
    COARSE,
    EAST,
    GEOD,
    NORTH,
    NX,
    NY,
    PIX,
    PZI_PRIOR_BLOCK,
    PZI_PRIOR_RES,
    SOUTH,
    SURVEY_BLOCK,
    SURVEY_RES,
    WEST,
    polygon_mask,
    save_tif,
    save_vector,
    sigmoid,
    slope_aspect,
)
from samplegen.insar import make_insar  # noqa: E402
from samplegen.priors import block_mean, make_basins, make_priors  # noqa: E402
from samplegen.rockglaciers import make_rock_glaciers  # noqa: E402
from samplegen.solar import make_pisr  # noqa: E402
from samplegen.terrain import make_glaciers, make_lakes, make_terrain  # noqa: E402
from samplegen.truth import truth_coefficients, truth_logit  # noqa: E402
from samplegen.ttop import (  # noqa: E402
    CLASS_NAMES,
    DEBRIS,
    LAND,
    LC_NODATA,
    burn_debris,
    make_landcover,
    misclassify,
    surface_fields,
    ttop_truth,
)
from samplegen.ttop import parameters as ttop_parameters  # noqa: E402
from scipy import ndimage  # noqa: E402

from permafrost.area.ellipsoid import geographic_row_areas  # noqa: E402
from permafrost.io.atomic import atomic_write_text  # noqa: E402

DEFAULT_SEED = 20260101

#: the warming scenarios whose truth is written (name: change of air MAAT [degC]); the
#: names are those of the scenarios in pipelines/demo.toml
WARMING = {"plus1": 1.0, "plus2": 2.0, "plus4": 4.0}
#: the truths the generator can write (``--truth``): the default ground-temperature (TTOP)
#: model with land cover, snow and debris (samplegen/ttop.py, the committed demo region), or a
#: logistic law of the covariates (the second case, generated into a folder of its own)
TRUTHS = ("ttop", "logistic")


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------
def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o))


def _f32(a):
    return np.asarray(a).astype(np.float32).astype(np.float64)


def area_summary(p, valid, debris) -> dict:
    """Area with p >= 0.5 and the p-weighted area [km2] over ``valid`` cells, on the ellipsoid.

    Cell areas from :func:`permafrost.area.ellipsoid.geographic_row_areas` (exact WGS84 area
    of each row's cells, the function the package's statistics use); with the mean of p on
    coarse debris (``debris``) and on the other valid cells.
    """
    edges = NORTH - np.arange(NY + 1) * PIX
    cell = geographic_row_areas(edges, PIX, a=6378137.0, f=1 / 298.257223563)[:, None] / 1e6
    cell = np.broadcast_to(cell, p.shape)
    return {"pzi_ge_0_5_km2": round(float(cell[valid & (p >= 0.5)].sum()), 2),
            "pzi_weighted_km2": round(float((cell * p)[valid].sum()), 2),
            "denominator_km2": round(float(cell[valid].sum()), 2),
            "mean_pzi_debris": round(float(p[valid & debris].mean()), 4),
            "mean_pzi_other_ground": round(float(p[valid & ~debris].mean()), 4)}


def generate(out: Path, seed: int = DEFAULT_SEED, truth_kind: str = "ttop") -> dict:
    """Generate every file of the sample region into ``out``; return the truth dictionary.

    ``truth_kind``: ``"ttop"`` (the default, the region in ``data_samples/``: a
    ground-temperature truth with land cover; see ``samplegen/ttop.py`` and the README) or
    ``"logistic"`` (the second, small case: a logistic law of the covariates).
    The two share terrain, climate, radiation and NDVI; truth, land cover, rock glaciers,
    boreholes, GTN-P sites, priors and InSAR (which sees the rock glaciers) differ.
    """
    if truth_kind not in TRUTHS:
        raise ValueError(f"truth_kind must be one of {TRUTHS}, not {truth_kind!r}")
    ttop_mode = truth_kind == "ttop"
    out = Path(out)
    ss = np.random.SeedSequence(seed)
    streams = dict(zip(["terrain", "lakes", "climate", "ndvi", "rg", "bh", "gtnp", "insar"],
                       (np.random.default_rng(s) for s in ss.spawn(8)), strict=True))
    # 1. terrain
    dem, _ = make_terrain(streams["terrain"])
    slope0, _ = slope_aspect(ndimage.gaussian_filter(dem, 2.0))
    lakes = make_lakes(streams["lakes"], dem, slope0)
    lakes_mask = polygon_mask(lakes)
    for lk in lakes:  # flatten the lake surface
        m = polygon_mask([lk])
        if m.any():
            dem[m] = dem[m].min()
    dem = dem.astype(np.float32).astype(np.float64)
    slope, aspect = slope_aspect(dem)
    glaciers = make_glaciers(dem, slope)
    glacier_mask = polygon_mask(glaciers)
    # 2. climate
    tc, zc, maat, clim_info = make_climate(streams["climate"], dem)
    maat = maat.astype(np.float32).astype(np.float64)
    # 3. radiation
    pisr, pisr_info = make_pisr(dem, slope, aspect)
    pisr = pisr.astype(np.float32).astype(np.float64)
    # 4. ndvi
    ndvi = make_ndvi(streams["ndvi"], dem, slope, lakes_mask, glacier_mask)
    ndvi = ndvi.astype(np.float32).astype(np.float64)
    exclude = lakes_mask | glacier_mask
    if not ttop_mode:
        # 5. truth
        coef = truth_coefficients(pisr, ndvi, dem)
        lg = truth_logit(coef, maat, pisr, ndvi)
        p_truth = sigmoid(lg).astype(np.float32).astype(np.float64)
        # 6. rock glaciers
        recs = make_rock_glaciers(streams["rg"], dem, slope, aspect, maat, p_truth, exclude)
        rg_ids = np.zeros((NY, NX), np.int32)
        for rec in recs:
            rg_ids[rec.pop("_rows"), rec.pop("_cols")] = int(rec["rg_id"][2:])
        # 7. boreholes
        bh, bh_truth = make_boreholes(streams["bh"], dem, p_truth, maat, exclude)
        gtnp, gtnp_meta, gtnp_truth = make_gtnp(streams["gtnp"], dem, p_truth)
    else:
        # 5. land cover and the surface, then TTOP (three more streams, spawned after the
        # eight above, so those stay as in the logistic region)
        extra = dict(zip(["landcover", "surface", "lcerr"],
                         (np.random.default_rng(s) for s in ss.spawn(3)), strict=True))
        lc = make_landcover(extra["landcover"], dem, ndvi, lakes_mask, glacier_mask)
        fields = surface_fields(extra["surface"], dem, slope, aspect, pisr)
        # the truth a cell would have as coarse debris: a rock glacier is coarse debris, so
        # this is the truth at every rock glacier pixel once the outlines are burned in
        _, p_debris, _ = ttop_truth(maat, pisr, np.full_like(lc, DEBRIS), fields)
        p_debris = _f32(p_debris)
        # 6. rock glaciers: heads only on coarse debris (talus below walls); the MAAT window
        # as in the logistic region
        rg_maat_centre = -5.0
        recs = make_rock_glaciers(streams["rg"], dem, slope, aspect, maat, p_debris, exclude,
                                  head_ok=(lc == DEBRIS), maat_centre=rg_maat_centre)
        rg_ids = np.zeros((NY, NX), np.int32)
        for rec in recs:
            rr_, cc_ = rec.pop("_rows"), rec.pop("_cols")
            rg_ids[rr_, cc_] = int(rec["rg_id"][2:])
            burn_debris(lc, rr_, cc_)
        t_today, p_truth, sigma = ttop_truth(maat, pisr, lc, fields)
        t_today, p_truth = _f32(t_today), _f32(p_truth)
        fr_ = np.array([r["front_row"] for r in recs])
        fc_ = np.array([r["front_col"] for r in recs])
        assert (lc[fr_, fc_] == DEBRIS).all()
        assert np.array_equal(p_truth[fr_, fc_], p_debris[fr_, fc_])
        lc_obs, confusion = misclassify(extra["lcerr"], lc)
        # 7. boreholes: presence and MAGT drawn through each borehole's own TTOP
        bh, bh_truth = make_boreholes(streams["bh"], dem, p_truth, maat, exclude,
                                      ttop=t_today, sigma=sigma)
        gtnp, gtnp_meta, gtnp_truth = make_gtnp(streams["gtnp"], dem, p_truth,
                                                magt_field=t_today)

    # --- write rasters
    cov = out / "covariates"
    save_tif(dem, cov / "dem.tif", description="elevation", units="m")
    save_tif(maat, cov / "maat.tif", description="mean annual air temperature", units="degC")
    save_tif(pisr, cov / "pisr.tif", units="W m-2",
             description="potential incoming solar radiation, clear sky, annual mean")
    save_tif(ndvi, cov / "ndvi.tif", description="NDVI, peak season", units="1")
    if ttop_mode:
        lc_tags = {"classes": ";".join(f"{k}={v}" for k, v in CLASS_NAMES.items())
                   + f";{LC_NODATA}=nodata", "kind": "categorical"}
        save_tif(lc_obs, cov / "landcover.tif", nodata=LC_NODATA, dtype="uint8", units="class",
                 resampling="nearest", tags=lc_tags,
                 description="land cover (classified; about "
                             f"{round(100 * ttop_parameters()['landcover_confusion_rate'])} % "
                             "of the land cells misclassified)")
        save_tif(lc, out / "truth" / "landcover_truth.tif", nodata=LC_NODATA, dtype="uint8",
                 units="class", resampling="nearest", tags=lc_tags,
                 description="true land cover (sample region truth)")
        save_tif(t_today, out / "truth" / "ttop_truth.tif", units="degC",
                 description="true temperature at the top of permafrost, TTOP")
    ctr = Affine(COARSE, 0, WEST, 0, -COARSE, NORTH)
    save_tif(tc, out / "climate" / "maat_coarse.tif", units="degC", transform=ctr,
             description="mean annual air temperature, coarse (0.05 deg) climate grid")
    save_tif(zc, out / "climate" / "elevation_coarse.tif", units="m", transform=ctr,
             description="elevation of the coarse climate grid cells")
    save_tif(p_truth, out / "truth" / "pzi_truth.tif", units="1",
             description="true permafrost probability (sample region truth)")
    # the truth of the demo's warming scenarios: the same logistic law with air MAAT + dT
    # and radiation and NDVI as today (an equilibrium state, no time attached)
    warming = {}
    if ttop_mode:
        today_area = area_summary(p_truth, ~exclude, lc == DEBRIS)
    for name, dt in WARMING.items():
        if ttop_mode:
            p_warm = ttop_truth(maat, pisr, lc, fields, delta_t=dt)[1].astype(np.float32)
        else:
            p_warm = sigmoid(truth_logit(coef, maat + dt, pisr, ndvi)).astype(np.float32)
        save_tif(p_warm, out / "truth" / f"pzi_truth_{name}.tif", units="1",
                 description=f"true permafrost probability with air MAAT {dt:+g} degC "
                             "(sample region truth, equilibrium)")
        warming[name] = {"delta_t_c": dt, "file": f"truth/pzi_truth_{name}.tif",
                         "area_share_p_ge_0_5": round(float((p_warm >= 0.5).mean()), 4)}
        if ttop_mode:
            warming[name].update(area_summary(p_warm.astype(np.float64), ~exclude,
                                              lc == DEBRIS))
    if ttop_mode:
        p_w08 = ttop_truth(maat, pisr, lc, fields, delta_t=0.8)[1]
        survey, prior, prior_info = make_priors(p_truth, None, None, p_warm=p_w08)
    else:
        survey, prior, prior_info = make_priors(p_truth, lg, coef)
    save_tif(survey, out / "priors" / "survey_map.tif", nodata=255, dtype="uint8", units="class",
             transform=Affine(SURVEY_RES, 0, WEST, 0, -SURVEY_RES, NORTH), resampling="nearest",
             description="survey-style frozen ground map: 1 permafrost, 2 seasonally frozen",
             tags={"classes": "1=permafrost;2=seasonally frozen ground;255=nodata"})
    save_tif(prior, out / "priors" / "pzi_prior.tif", units="1",
             transform=Affine(PZI_PRIOR_RES, 0, WEST, 0, -PZI_PRIOR_RES, NORTH),
             description="PZI-style continuous permafrost map (prior)")
    pm = block_mean(p_truth, SURVEY_BLOCK)
    valid = survey != 255
    prior_info["survey_permafrost_share"] = round(float((survey[valid] == 1).mean()), 4)
    prior_info["truth_share_block_mean_ge_0_5"] = round(float((pm[valid] >= 0.5).mean()), 4)
    prior_info["pzi_prior_mean_minus_truth_block_mean"] = round(
        float((prior - block_mean(p_truth, PZI_PRIOR_BLOCK)).mean()), 4)

    # --- vectors
    gdf = gpd.GeoDataFrame(
        {"rg_id": [r["rg_id"] for r in recs], "activity": [r["activity_true"] for r in recs],
         "area_m2": [r["area_m2"] for r in recs]},
        geometry=[r["geometry"] for r in recs], crs="EPSG:4326")
    save_vector(gdf, out / "inventory" / "rock_glaciers.gpkg", "rock_glaciers")
    mask_polys = [(g, "glacier") for g in glaciers] + [(lk, "lake") for lk in lakes]
    mgdf = gpd.GeoDataFrame(
        {"mask_id": np.arange(1, len(mask_polys) + 1), "kind": [k for _, k in mask_polys],
         "area_m2": [round(abs(GEOD.geometry_area_perimeter(g)[0]), 1) for g, _ in mask_polys]},
        geometry=[g for g, _ in mask_polys], crs="EPSG:4326")
    save_vector(mgdf, out / "masks" / "glaciers_lakes.gpkg", "glaciers_lakes")
    basins = make_basins()
    basins["area_km2"] = [round(abs(GEOD.geometry_area_perimeter(g)[0]) / 1e6, 3)
                          for g in basins.geometry]
    save_vector(basins, out / "regions" / "basins.gpkg", "basins")

    # --- InSAR
    insar_info = make_insar(streams["insar"], out, dem, slope, aspect, ndvi, recs, rg_ids,
                            lakes_mask, glacier_mask)

    # --- tables
    atomic_write_text(out / "boreholes" / "boreholes.csv",
                      bh.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "boreholes" / "gtnp_long.csv",
                      gtnp.to_csv(index=False, lineterminator="\n"))
    atomic_write_text(out / "boreholes" / "gtnp_metadata.json",
                      json.dumps(gtnp_meta, separators=(",", ":"), ensure_ascii=False))
    cols = ["rg_id", "activity_true", "intact_true", "v_downslope_m_yr", "front_lon", "front_lat",
            "front_row", "front_col", "front_elev_m", "front_maat_c", "p_truth_front",
            "front_slope_deg", "mean_slope_deg", "mean_aspect_deg", "area_m2", "n_pixels",
            "asc_coverage", "desc_coverage", "asc_c_median", "desc_c_median",
            "asc_vlos_median_m_yr", "desc_vlos_median_m_yr"]
    rgt = pd.DataFrame([{k: r[k] for k in cols} for r in recs])
    atomic_write_text(out / "truth" / "rock_glaciers_truth.csv",
                      rgt.to_csv(index=False, lineterminator="\n"))

    n_act = {a: int((rgt.activity_true == a).sum()) for a in ("active", "transitional", "relict")}
    both = int(((rgt.asc_coverage > 0.5) & (rgt.desc_coverage > 0.5)).sum())
    none = int(((rgt.asc_coverage == 0) & (rgt.desc_coverage == 0)).sum())
    truth = {
        "seed": seed,
        "grid": {"crs": "EPSG:4326", "pixel_deg": PIX, "west": WEST, "north": NORTH,
                 "east": EAST, "south": SOUTH, "width": NX, "height": NY,
                 "convention": "west/north are the outer corner of the first pixel; pixel "
                               "centres at west + (i + 0.5) * pixel_deg"},
        "dem": {"min_m": round(float(dem.min()), 2), "max_m": round(float(dem.max()), 2)},
        "climate": {"lapse_rate_c_per_km": LAPSE * 1000, "anchor_maat_c": ANCHOR_MAAT,
                    "anchor_elevation_m": ANCHOR_Z, **clim_info,
                    "downscaling": "maat = bilinear(maat_coarse) + lapse_rate * (dem - "
                                   "bilinear(elevation_coarse)); bilinear between coarse cell "
                                   "centres with linear extrapolation at the edges"},
        "pisr": pisr_info,
        "truth_model": {"formula": "logit(p) = b0 + b_maat_per_c * maat + b_pisr_per_100w * "
                                   "(pisr - pisr_ref_w_m2) / 100 + b_ndvi * ndvi",
                        **coef,
                        "area_share_p_ge_0_5": round(float((p_truth >= 0.5).mean()), 4)}
        if not ttop_mode else _ttop_truth_model(p_truth, t_today, lc, lc_obs, confusion,
                                                fields, ~exclude, today_area,
                                                rg_maat_centre),
        "warming": {"meaning": "p under air MAAT + delta_t_c with PISR and NDVI as today: "
                               "the equilibrium the truth's law gives, no time attached"
                    if not ttop_mode else
                    "PZI with the air temperature + delta_t_c and the surface (land cover, "
                    "snow, n-factors, Balch cooling, cold-air pooling) as today; TTOP "
                    "recomputed (equilibrium, no time attached); areas on the WGS84 "
                    "ellipsoid outside glaciers and lakes",
                    **warming},
        "rock_glaciers": {"n": len(recs), **{f"n_{k}": v for k, v in n_act.items()},
                          "n_intact": int(rgt.intact_true.sum()),
                          "velocity_model_m_yr": {
                              "active": "lognormal(median 0.45, sigma_log 0.6) clipped 0.15-1.5",
                              "transitional": "uniform 0.02-0.07", "relict": 0.0},
                          "p_active_given_intact":
                              "clip(0.35 + 0.1 * (-front_maat_c - 2), 0.2, 0.85)",
                          "n_covered_by_both_tracks": both, "n_covered_by_none": none},
        "boreholes": {k: v for k, v in bh_truth.items() if k != "p_truth"},
        "gtnp": {"kappa_m2_s": KAPPA, "damping_depth_m": round(DAMP, 4),
                 "geothermal_gradient_c_per_m": GEO_GRAD, "magt_reference_depth_m": Z_REF,
                 "depths_m": GTNP_DEPTHS, "boreholes": gtnp_truth},
        "insar": insar_info,
        "priors": prior_info,
        "masks": {"n_glaciers": len(glaciers), "n_lakes": len(lakes)},
    }
    if ttop_mode:
        truth = {"truth_kind": "ttop", **truth}
    atomic_write_text(out / "truth" / "truth.json",
                      json.dumps(truth, indent=1, default=_json_default, sort_keys=False) + "\n")
    return truth


def _ttop_truth_model(p_truth, t_today, lc, lc_obs, confusion, fields, valid, today_area,
                      rg_maat_centre):
    """The ``truth_model`` entry of truth.json for the ttop region."""
    per_class = {}
    for k in LAND:
        sel = valid & (lc == k)
        per_class[CLASS_NAMES[k]] = {
            "area_share": round(float(sel.sum() / valid.sum()), 4),
            "mean_pzi": round(float(p_truth[sel].mean()), 4),
            "mean_ttop_c": round(float(t_today[sel].mean()), 3)}
    land = np.isin(lc, LAND)
    return {
        "kind": "ttop",
        "formula": "PZI = Phi(-TTOP / sigma_class); TTOP = (rk nt TDDa - nf FDDa) / P - balch",
        "parameters": ttop_parameters(),
        "pisr_ref_w_m2": fields["pisr_ref"],
        "files": {"pzi": "truth/pzi_truth.tif", "ttop": "truth/ttop_truth.tif",
                  "landcover_true": "truth/landcover_truth.tif",
                  "landcover_observed": "covariates/landcover.tif"},
        "per_class": per_class,
        "area": today_area,
        "area_share_p_ge_0_5": round(float((p_truth >= 0.5).mean()), 4),
        "snow_depth_m": {"median": round(float(np.median(fields["snow_m"][land])), 3),
                         "p90": round(float(np.quantile(fields["snow_m"][land], 0.9)), 3)},
        "nf": {"median": round(float(np.median(fields["nf"][land])), 3)},
        "rock_glacier_maat_window_centre_c": rg_maat_centre,
        "cold_air_pooling_c": {"share_below_minus_0_5": round(float(
            (fields["pooling_c"][land] < -0.5).mean()), 4),
            "min": round(float(fields["pooling_c"].min()), 3)},
        "landcover_observed": {
            "accuracy": round(float((lc_obs[land] == lc[land]).mean()), 4),
            "confusion_true_by_observed": confusion},
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                    help="output directory (default: data_samples/ beside this script)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="random seed")
    ap.add_argument("--truth", choices=TRUTHS, default="ttop",
                    help="the truth: 'ttop' (default, the committed demo region: a "
                         "ground-temperature model with land cover) or 'logistic' (the second, "
                         "small case; write it elsewhere with --out)")
    args = ap.parse_args(argv)
    if args.truth != "ttop" and args.out.resolve() == HERE:
        ap.error(f"--truth {args.truth} would overwrite the committed (ttop) sample region: "
                 "give --out DIR")
    truth = generate(args.out, args.seed, truth_kind=args.truth)
    rg = truth["rock_glaciers"]
    print(f"sample region written to {args.out}: {rg['n']} rock glaciers "
          f"({rg['n_active']} active, {rg['n_transitional']} transitional, "
          f"{rg['n_relict']} relict), "
          f"{truth['boreholes']['n']} boreholes ({truth['boreholes']['n_permafrost']} permafrost)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
