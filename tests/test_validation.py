"""Tests of permafrost.validation: borehole scores, prior-map agreement, bad input, CLI.

The metric functions themselves are tested against scikit-learn in tests/test_metrics.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyproj
import pytest
import rasterio
import rioxarray  # noqa: F401
from affine import Affine
from sklearn import metrics as skm
from typer.testing import CliRunner

from permafrost.area import cell_areas
from permafrost.errors import DataError
from permafrost.grid import Grid, sample_at_points
from permafrost.validation import (
    PriorSpec,
    parse_prior_spec,
)
from permafrost.workflows.validate import validate_from_files

from factories import write_tif

# ----------------------------------------------------------------------------- factories
D = 0.002
T_MODEL = Affine(D, 0, 99.0, 0, -D, 38.6)
NY, NX = 100, 120


def truth_field():
    """A smooth PZI field rising to the north-east, with a nodata corner."""
    yy, xx = np.mgrid[0:NY, 0:NX]
    z = (xx / NX + (NY - yy) / NY) * 6 - 6 + 0.8 * np.sin(xx / 7.0)
    p = 1 / (1 + np.exp(-z))
    p[:5, :5] = np.nan
    return p


@pytest.fixture
def region(tmp_path):
    """Truth PZI on a geographic grid; a survey prior (UTM, 400 m, biased high, codes 1/2,
    nodata 255) and a continuous prior (0.01 deg, biased low); boreholes from the truth."""
    p = truth_field()
    write_tif(tmp_path / "truth.tif", np.nan_to_num(p, nan=-9999).astype("float32"), T_MODEL,
              nodata=-9999)
    # survey: UTM 47N, 400 m cells, permafrost where truth >= 0.3 (overestimates)
    utm = pyproj.CRS(32647)
    tr = pyproj.Transformer.from_crs(4326, utm, always_xy=True)
    x0, y0 = tr.transform(98.99, 38.61)
    x1, y1 = tr.transform(99.25, 38.39)
    h = 400.0
    nx, ny = int((x1 - x0) / h) + 1, int((y0 - y1) / h) + 1
    xc = x0 + h * (np.arange(nx) + 0.5)
    yc = y0 - h * (np.arange(ny) + 0.5)
    lon, lat = pyproj.Transformer.from_crs(utm, 4326, always_xy=True).transform(
        *np.meshgrid(xc, yc))
    col = np.floor((lon - T_MODEL.c) / D).astype(int)
    row = np.floor((lat - T_MODEL.f) / -D).astype(int)
    inside = (col >= 0) & (col < NX) & (row >= 0) & (row < NY)
    pv = np.full(lon.shape, np.nan)
    pv[inside] = p[row[inside], col[inside]]
    survey = np.where(np.isnan(pv), 255, np.where(pv >= 0.3, 1, 2)).astype("uint8")
    write_tif(tmp_path / "survey.tif", survey, Affine(h, 0, x0, 0, -h, y0), crs=utm, nodata=255)
    # continuous prior: 0.01 deg, truth averaged then shifted down (underestimates)
    k = 5
    pc = np.nanmean(np.nan_to_num(p, nan=0.0).reshape(NY // k, k, NX // k, k), axis=(1, 3))
    prior = np.clip(pc - 0.2, 0, 1).astype("float32")
    write_tif(tmp_path / "pzi_prior.tif", prior, Affine(D * k, 0, 99.0, 0, -D * k, 38.6),
              nodata=-1)
    # boreholes: 150 points, presence drawn from the truth
    rng = np.random.default_rng(1)
    r, c = rng.integers(5, NY, 150), rng.integers(5, NX, 150)
    pres = (rng.uniform(size=150) < p[r, c]).astype(int)
    bh = pd.DataFrame({"borehole_id": [f"B{i}" for i in range(150)],
                       "lon": T_MODEL.c + D * (c + 0.5), "lat": T_MODEL.f - D * (r + 0.5),
                       "presence": pres})
    bh.to_csv(tmp_path / "bh.csv", index=False)
    return tmp_path


def test_parse_prior_spec():
    s = parse_prior_spec("survey=maps/a.tif:categorical:1")
    assert s == PriorSpec("survey", s.path, "categorical", (1,), None)
    assert str(s.path) == "maps/a.tif"
    s = parse_prior_spec("li1996=C:/x/b.tif:categorical:1,3:2")
    assert s.permafrost_codes == (1, 3) and s.other_codes == (2,) and str(s.path) == "C:/x/b.tif"
    s = parse_prior_spec("obu=o.tif:continuous:0.4")
    assert s.kind == "continuous" and s.threshold == 0.4
    for bad, msg in [("survey.tif", "cannot parse"), ("a=b.tif:categorical:", "no permafrost"),
                     ("a=b.tif:categorical:x", "integers"), ("a=b.tif:continuous:x", "number"),
                     ("a=b.tif:categorical:1:1", "both")]:
        with pytest.raises(DataError, match=msg):
            parse_prior_spec(bad)


# ----------------------------------------------------------------------------- maps
def test_prior_biases_show_in_agreement(region):
    out = region / "out"
    res = validate_from_files(
        region / "truth.tif", boreholes_path=region / "bh.csv",
        priors=[parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2"),
                parse_prior_spec(f"prior={region / 'pzi_prior.tif'}:continuous:0.5")],
        out_dir=out)
    pri = {p["name"]: p for p in res.priors}
    sv, pc = pri["survey"]["agreement"], pri["prior"]["agreement"]
    # the model is the truth: the survey (biased high) has permafrost the truth lacks
    # (missed by the model = prior_only) -> missed > excess; the low prior the reverse
    assert sv["missed_km2"] > sv["excess_km2"]
    assert pc["excess_km2"] > pc["missed_km2"]
    assert sv["intersection_over_model"] > sv["intersection_over_reference"]
    assert pc["intersection_over_reference"] > pc["intersection_over_model"]
    for a in (sv, pc):
        assert 0.3 < a["kappa"] < 1
        assert a["both_km2"] + a["model_only_km2"] + a["prior_only_km2"] + a["neither_km2"] == (
            pytest.approx(a["common_km2"]))
    # agreement matrix rows sum to the model zones; continuous prior zones side by side
    m = pri["survey"]["agreement_matrix"]
    assert m["columns"] == ["1", "2"]
    assert np.sum(m["km2"]) == pytest.approx(sv["common_km2"])
    z = pri["prior"]["zones"]
    assert sum(z["prior"].values()) == pytest.approx(sum(z["model"].values()))
    assert z["prior"]["continuous"] < z["model"]["continuous"]
    # pairwise kappa matrix symmetric with unit diagonal
    k = np.array(res.pairwise["kappa"], dtype=float)
    assert res.pairwise["maps"] == ["model", "survey", "prior"]
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(np.diag(k), 1)
    assert k[0, 1] == pytest.approx(sv["kappa"])
    # boreholes: same boreholes for every map; truth scores best on AUC
    b = res.boreholes
    rows = {r["map"]: r for r in b["table"]}
    assert {r["n"] for r in rows.values()} == {b["n_common"]}
    assert rows["model"]["auc"] >= rows["prior"]["auc"] - 1e-9
    assert rows["survey"]["brier"] is None  # categorical: no probability
    # outputs
    js = json.loads((out / "validation.json").read_text())
    assert js["priors"][0]["agreement_raster"] == "agreement_survey.tif"
    with rasterio.open(out / "agreement_survey.tif") as src:
        ag = src.read(1)
        assert src.nodata == 255 and src.crs.to_epsg() == 4326 and ag.shape == (NY, NX)
    # the raster's class areas equal the table
    areas = np.broadcast_to(cell_areas(Grid(pyproj.CRS(4326), T_MODEL, (NY, NX))), (NY, NX))
    assert areas[ag == 3].sum() / 1e6 == pytest.approx(sv["missed_km2"], rel=1e-9)
    assert areas[ag == 2].sum() / 1e6 == pytest.approx(sv["excess_km2"], rel=1e-9)
    assert (out / "boreholes.csv").read_text().startswith("map,kind,n,")
    assert "survey" in (out / "priors.csv").read_text()


def test_alignment_is_nearest_on_model_grid(region):
    """Independent check of the nearest-neighbour alignment: look up the survey cell that
    holds each model cell centre by hand and recompute missed/excess areas."""
    res = validate_from_files(
        region / "truth.tif",
        priors=[parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2")])
    a = res.priors[0]["agreement"]
    with rasterio.open(region / "survey.tif") as s:
        sv, st_ = s.read(1), s.transform
    lon = T_MODEL.c + D * (np.arange(NX) + 0.5)
    lat = T_MODEL.f - D * (np.arange(NY) + 0.5)
    x, y = pyproj.Transformer.from_crs(4326, 32647, always_xy=True).transform(
        *np.meshgrid(lon, lat))
    c, r = ~st_ * (x, y)
    code = sv[np.floor(r).astype(int), np.floor(c).astype(int)]
    p = truth_field()
    ok = ~np.isnan(p) & (code != 255)
    areas = np.broadcast_to(cell_areas(Grid(pyproj.CRS(4326), T_MODEL, (NY, NX))), (NY, NX))
    model = p >= 0.5
    missed = areas[ok & ~model & (code == 1)].sum() / 1e6
    excess = areas[ok & model & (code == 2)].sum() / 1e6
    # the warper runs with a 0.001-pixel approximation tolerance: cell-exact nearest
    assert a["common_km2"] == pytest.approx(areas[ok].sum() / 1e6, rel=1e-9)
    assert a["missed_km2"] == pytest.approx(missed, rel=1e-9)
    assert a["excess_km2"] == pytest.approx(excess, rel=1e-9)


def test_bad_prior_inputs(region, tmp_path):
    # no overlap
    write_tif(tmp_path / "far.tif", np.ones((4, 4), "uint8"), Affine(0.1, 0, 10, 0, -0.1, 50),
              nodata=255)
    with pytest.raises(DataError, match="far.tif.*does not overlap"):
        validate_from_files(region / "truth.tif",
                            priors=[parse_prior_spec(f"far={tmp_path / 'far.tif'}:categorical:1")])
    # unknown class code 7 when the mapping is declared
    s = rasterio.open(region / "survey.tif")
    arr, prof = s.read(1), s.profile
    s.close()
    arr[3, 3] = 7
    with rasterio.open(tmp_path / "odd.tif", "w", **prof) as dst:
        dst.write(arr, 1)
    with pytest.raises(DataError, match=r"odd.tif: field 'odd': unknown class codes \[7\]"):
        validate_from_files(region / "truth.tif",
                            priors=[parse_prior_spec(f"odd={tmp_path / 'odd.tif'}"
                                                     ":categorical:1:2")])
    # a permafrost code that never occurs
    with pytest.raises(DataError, match=r"codes \[5\] do not occur.*present: \[1, 2\]"):
        validate_from_files(region / "truth.tif",
                            priors=[parse_prior_spec(f"s={region / 'survey.tif'}:categorical:5")])
    with pytest.raises(DataError, match="unique"):
        validate_from_files(region / "truth.tif",
                            priors=[parse_prior_spec(f"s={region / 'survey.tif'}:categorical:1"),
                                    parse_prior_spec(f"s={region / 'survey.tif'}:categorical:1")])
    with pytest.raises(DataError, match="nothing to validate"):
        validate_from_files(region / "truth.tif")


def test_boreholes_outside(region, tmp_path):
    bh = pd.read_csv(region / "bh.csv")
    bh.loc[:2, "lon"] = 120.0
    bh.to_csv(tmp_path / "bh.csv", index=False)
    res = validate_from_files(region / "truth.tif", boreholes_path=tmp_path / "bh.csv")
    assert res.boreholes["excluded"]["model"]["outside"] == ["B0", "B1", "B2"]
    assert res.boreholes["n_common"] <= 147
    bh["lon"] = 120.0
    bh.to_csv(tmp_path / "bh2.csv", index=False)
    with pytest.raises(DataError, match=r"bh2.csv: field 'lon/lat': none of the 150 boreholes"):
        validate_from_files(region / "truth.tif", boreholes_path=tmp_path / "bh2.csv")


def test_validate_on_objects_equals_the_files_workflow(region, tmp_path):
    """validate() on DataArrays and a GeoDataFrame gives the numbers of the file workflow;
    its agreement rasters are the written ones."""
    import permafrost as pf
    from permafrost.validation import ValidationResult, validate

    specs = [parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2"),
             parse_prior_spec(f"prior={region / 'pzi_prior.tif'}:continuous:0.5")]
    ref = validate_from_files(region / "truth.tif", boreholes_path=region / "bh.csv",
                              priors=specs, out_dir=tmp_path)
    pzi = pf.read_raster(region / "truth.tif")
    priors = [(s, pf.read_raster(s.path), pf.read_aligned(s.path, pzi)) for s in specs]
    res = validate(pzi, boreholes=pf.read_presence_table(region / "bh.csv"), priors=priors)
    assert isinstance(res, ValidationResult)
    a, b = res.as_dict(), ref.as_dict()
    assert list(a) == ["meta", "boreholes", "pairwise", "priors"]
    assert a["boreholes"]["table"] == b["boreholes"]["table"]
    assert a["pairwise"] == b["pairwise"]
    for pa, pb in zip(a["priors"], b["priors"], strict=True):
        assert pa["agreement"] == pb["agreement"]
        assert "agreement_raster" not in pa and pb["agreement_raster"]
    with rasterio.open(tmp_path / "agreement_survey.tif") as src:
        np.testing.assert_array_equal(res.agreement["survey"].values, src.read(1))
    only_bh = validate(pzi, boreholes=pf.read_presence_table(region / "bh.csv")).as_dict()
    assert list(only_bh) == ["meta", "boreholes"]


def test_validate_wrong_input_types_are_the_packages_errors(region):
    """A path where a DataArray or a GeoDataFrame is expected is an InputError that names
    the field and the reader, not an AttributeError."""
    import permafrost as pf
    from permafrost.errors import InputError
    from permafrost.validation import validate

    pzi = pf.read_raster(region / "truth.tif")
    spec = parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2")
    with pytest.raises(InputError, match=r"field 'pzi'.*expected an xarray.DataArray, got "
                                         r"PosixPath.*permafrost.read_raster"):
        validate(region / "truth.tif", boreholes=pf.read_presence_table(region / "bh.csv"))
    with pytest.raises(InputError, match="field 'boreholes'.*GeoDataFrame.*read_presence_table"):
        validate(pzi, boreholes=str(region / "bh.csv"))
    with pytest.raises(InputError, match="field 'boreholes'.*lack the columns"):
        validate(pzi, boreholes=pf.read_presence_table(region / "bh.csv").drop(
            columns="presence"))
    with pytest.raises(InputError, match=r"field 'priors\[0\]'.*got PosixPath"):
        validate(pzi, priors=[(spec, spec.path)])
    with pytest.raises(InputError, match="field 'priors'.*PriorSpec"):
        validate(pzi, priors=[("survey", pf.read_raster(spec.path))])
    with pytest.raises(InputError, match="field 'priors'.*pair"):
        validate(pzi, priors=[spec])
    with pytest.raises(InputError, match="field 'mask'"):
        validate(pzi, priors=[(spec, pf.read_aligned(spec.path, pzi))], mask="m.tif")
    with pytest.raises(DataError, match="not on the PZI grid"):  # native grid, no aligned copy
        validate(pzi, priors=[(spec, pf.read_raster(spec.path))])


# ----------------------------------------------------------------------------- CLI
def test_cli_validate(region):
    from permafrost.cli import app

    out = region / "cli"
    res = CliRunner().invoke(app, [
        "validate", str(region / "truth.tif"), "--boreholes", str(region / "bh.csv"),
        "--prior", f"survey={region / 'survey.tif'}:categorical:1:2",
        "--prior", f"prior={region / 'pzi_prior.tif'}:continuous:0.5", "--out", str(out)])
    assert res.exit_code == 0, res.output
    js = json.loads((out / "validation.json").read_text())
    k = js["priors"][0]["agreement"]["kappa"]
    assert f"survey: kappa {k:.3f}" in res.output
    bad = CliRunner().invoke(app, ["validate", str(region / "truth.tif"), "--prior",
                                   "survey.tif", "--out", str(out)])
    assert bad.exit_code == 2
    assert len(bad.output.strip().splitlines()) == 1 and "cannot parse" in bad.output


# ----------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_realdata_survey_vs_frost_number(realdata, tmp_path):
    """The FROSTNUM/COP survey map (1 permafrost, 2 seasonal, 3 nodata) against the frost
    number F = sqrt(DDF)/(sqrt(DDF)+sqrt(DDT)) >= 0.5 (Nelson & Outcalt 1987) from its own
    degree-days."""
    d = realdata / "frostnumcop_qtp_permafrost_map"
    with rasterio.open(d / "DDF_mean_annual.tif") as s:
        ddf = s.read(1, masked=True).filled(np.nan).astype("float64")
        prof = s.profile
    with rasterio.open(d / "DDT_mean_annual.tif") as s:
        ddt = s.read(1, masked=True).filled(np.nan).astype("float64")
    f = np.sqrt(ddf) / (np.sqrt(ddf) + np.sqrt(ddt))
    prof.update(dtype="float32", nodata=-9999.0)
    with rasterio.open(tmp_path / "frost_number.tif", "w", **prof) as dst:
        dst.write(np.nan_to_num(f, nan=-9999.0).astype("float32"), 1)
    res = validate_from_files(
        tmp_path / "frost_number.tif",
        priors=[parse_prior_spec(f"survey={d / 'investigation_map.tif'}:categorical:1:2")],
        out_dir=tmp_path / "out")
    p = res.priors[0]
    # class coding read with its nodata (3): only codes 1 and 2 remain, with their counts
    assert p["codes_present"] == {"1": 1831, "2": 873}
    a = p["agreement"]
    # measured: kappa 0.658, overall agreement 0.834 over 2474 km2
    assert a["kappa"] > 0.5
    assert a["overall_agreement"] > 0.75
    # the frost-number map is more conservative than the survey here
    assert a["missed_km2"] > a["excess_km2"]


# ----------------------------------------------------------------------------- sample region
def test_sample_region_prior_biases(sample_dir, tmp_path):
    """truth.json: the survey overestimates permafrost, the PZI prior is biased low.  With
    the true PZI as the model, the survey's extra permafrost is area the model 'misses'
    (prior only) and the low prior's shortfall is model 'excess'."""
    truth = json.loads((sample_dir / "truth" / "truth.json").read_text())["priors"]
    assert truth["survey_permafrost_share"] > truth["truth_share_block_mean_ge_0_5"]
    assert truth["pzi_prior_mean_minus_truth_block_mean"] < 0
    res = validate_from_files(
        sample_dir / "truth" / "pzi_truth.tif",
        boreholes_path=sample_dir / "boreholes" / "boreholes.csv",
        priors=[parse_prior_spec(f"survey={sample_dir / 'priors' / 'survey_map.tif'}"
                                 ":categorical:1:2"),
                parse_prior_spec(f"pzi_prior={sample_dir / 'priors' / 'pzi_prior.tif'}"
                                 ":continuous:0.5")],
        mask_path=sample_dir / "masks" / "glaciers_lakes.gpkg", out_dir=tmp_path)
    pri = {p["name"]: p["agreement"] for p in res.priors}
    assert pri["survey"]["missed_km2"] > pri["survey"]["excess_km2"]
    assert pri["pzi_prior"]["excess_km2"] > pri["pzi_prior"]["missed_km2"]
    # equivalently, from the priors' side: survey area > truth area > pzi_prior area
    assert pri["survey"]["prior_permafrost_km2"] > pri["survey"]["model_permafrost_km2"]
    assert pri["pzi_prior"]["prior_permafrost_km2"] < pri["pzi_prior"]["model_permafrost_km2"]
    # borehole metrics agree with scikit-learn on the same vectors
    bh = pd.read_csv(sample_dir / "boreholes" / "boreholes.csv")
    from permafrost.io.rasters import read_raster

    v, inside = sample_at_points(read_raster(sample_dir / "truth" / "pzi_truth.tif"),
                                 bh["lon"], bh["lat"], crs="EPSG:4326")
    ok = ~np.isnan(v)
    y = bh["presence"].to_numpy()[ok]
    m = res.boreholes["model_all"]
    assert m["n"] == ok.sum()
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, v[ok]))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, v[ok]))
    assert m["kappa"] == pytest.approx(skm.cohen_kappa_score(y, (v[ok] >= 0.5).astype(int)))
    assert m["balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, (v[ok] >= 0.5).astype(int)))
    rows = {r["map"]: r for r in res.boreholes["table"]}
    assert rows["model"]["auc"] > 0.7


def test_mask_excludes_cells_vector_and_raster(region, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    spec = [parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2")]
    base = validate_from_files(region / "truth.tif", priors=spec).priors[0]["agreement"]
    t = T_MODEL
    gpd.GeoDataFrame({"kind": ["lake"]}, geometry=[box(t.c + 40 * D, t.f - 60 * D,
                                                       t.c + 60 * D, t.f - 40 * D)],
                     crs="EPSG:4326").to_file(tmp_path / "m.gpkg")
    m = np.zeros((NY, NX), "uint8")
    m[40:60, 40:60] = 1
    write_tif(tmp_path / "m.tif", m, t, nodata=None)
    a = validate_from_files(region / "truth.tif", priors=spec,
                            mask_path=tmp_path / "m.gpkg").priors[0]["agreement"]
    b = validate_from_files(region / "truth.tif", priors=spec,
                            mask_path=tmp_path / "m.tif").priors[0]["agreement"]
    areas = np.broadcast_to(cell_areas(Grid(pyproj.CRS(4326), t, (NY, NX))), (NY, NX))
    assert base["common_km2"] - a["common_km2"] == pytest.approx(
        areas[40:60, 40:60].sum() / 1e6, rel=1e-9)
    assert a["common_km2"] == pytest.approx(b["common_km2"], rel=1e-12)
    assert a["kappa"] == pytest.approx(b["kappa"], rel=1e-12)


def test_boreholes_in_projected_xy(region, tmp_path):
    """A table with UTM x/y and --boreholes-crs gives the same scores as lon/lat."""
    bh = pd.read_csv(region / "bh.csv")
    x, y = pyproj.Transformer.from_crs(4326, 32647, always_xy=True).transform(bh.lon, bh.lat)
    pd.DataFrame({"borehole_id": bh.borehole_id, "x": x, "y": y,
                  "presence": bh.presence}).to_csv(tmp_path / "xy.csv", index=False)
    a = validate_from_files(region / "truth.tif", boreholes_path=region / "bh.csv")
    b = validate_from_files(region / "truth.tif", boreholes_path=tmp_path / "xy.csv",
                            boreholes_crs="EPSG:32647")
    assert a.boreholes["model_all"]["auc"] == b.boreholes["model_all"]["auc"]
    assert a.boreholes["model_all"]["n"] == b.boreholes["model_all"]["n"] > 100


def test_agreement_independent_of_block_size(region):
    spec = [parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2"),
            parse_prior_spec(f"prior={region / 'pzi_prior.tif'}:continuous:0.5")]
    a = validate_from_files(region / "truth.tif", priors=spec, block_rows=7)
    b = validate_from_files(region / "truth.tif", priors=spec)
    for pa, pb in zip(a.priors, b.priors, strict=True):
        for k, v in pa["agreement"].items():
            assert v == pytest.approx(pb["agreement"][k], rel=1e-12), k
        np.testing.assert_allclose(pa["agreement_matrix"]["km2"], pb["agreement_matrix"]["km2"],
                                   rtol=1e-12)


# ----------------------------------------------------------------------------- bootstrap
def _scored(n, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.75).astype(int)
    p = np.clip(0.25 + 0.35 * y + rng.normal(0, 0.25, n), 0, 1)
    return y, p


def test_bootstrap_intervals_contain_the_estimate_and_narrow_with_n():
    from permafrost.metrics import binary_metrics
    from permafrost.validation import CI_METRICS, bootstrap_metrics

    y, p = _scored(960)
    small = bootstrap_metrics(y[:60], p[:60], seed=1)
    big = bootstrap_metrics(y, p, seed=1)
    assert small["method"] == "percentile" and small["resamples"] == 2000
    for res, n in ((small, 60), (big, 960)):
        ref = binary_metrics(y[:n], p[:n])
        for m in CI_METRICS:
            iv = res["intervals"][m]
            assert iv["estimate"] == pytest.approx(ref[m], abs=1e-12)
            assert iv["low"] <= iv["estimate"] <= iv["high"]
    for m in ("auc", "balanced_accuracy", "kappa", "brier"):
        ws = small["intervals"][m]["high"] - small["intervals"][m]["low"]
        wb = big["intervals"][m]["high"] - big["intervals"][m]["low"]
        assert 0 < wb < 0.6 * ws, m   # ~ 1/sqrt(n): 960 vs 60 boreholes -> about 1/4
    # seeded: same inputs, same numbers; another seed, other numbers
    assert bootstrap_metrics(y[:60], p[:60], seed=1) == small
    assert bootstrap_metrics(y[:60], p[:60], seed=2)["intervals"] != small["intervals"]
    # a categorical map: no Brier score, the rest defined
    cat = bootstrap_metrics(y[:60], (p[:60] >= 0.5).astype(float), probabilistic=False)
    assert cat["intervals"]["brier"]["low"] is None
    assert cat["intervals"]["kappa"]["low"] is not None
    with pytest.raises(DataError, match="bootstrap_resamples"):
        bootstrap_metrics(y, p, n_resamples=200)
    with pytest.raises(DataError, match="differ in shape"):
        bootstrap_metrics(y, p[:-1])


def test_bootstrap_resamples_whole_sites():
    from permafrost.validation import bootstrap_metrics

    # 30 sites of 8 boreholes; the map is right or wrong for a whole site at once
    rng = np.random.default_rng(4)
    site = np.repeat(np.arange(30), 8)
    y = np.repeat((rng.random(30) < 0.7).astype(int), 8)
    good = np.repeat(rng.random(30) < 0.75, 8)
    p = np.where(good, np.where(y == 1, 0.8, 0.2), np.where(y == 1, 0.3, 0.7))
    p = p + rng.normal(0, 0.02, p.size)
    by_site = bootstrap_metrics(y, p, sites=site)
    by_borehole = bootstrap_metrics(y, p)
    assert by_site["unit"] == "site" and by_site["n_units"] == 30 and not by_site["note"]
    assert by_borehole["unit"].startswith("borehole")
    for m in ("auc", "kappa"):
        w_site = by_site["intervals"][m]["high"] - by_site["intervals"][m]["low"]
        w_bh = by_borehole["intervals"][m]["high"] - by_borehole["intervals"][m]["low"]
        assert w_site > 1.5 * w_bh, m   # correlated boreholes carry less information
    few = bootstrap_metrics(y[:40], p[:40], sites=site[:40])
    assert few["unit"].startswith("borehole") and "only 5 sites" in few["note"]


def test_validation_gives_intervals_for_every_held_out_metric(region, tmp_path):
    res = validate_from_files(
        region / "truth.tif", boreholes_path=region / "bh.csv", out_dir=tmp_path / "a",
        priors=[parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2"),
                parse_prior_spec(f"prior={region / 'pzi_prior.tif'}:continuous:0.5")])
    b = res.boreholes
    assert b["bootstrap"]["unit"] == "site" and b["bootstrap"]["resamples"] >= 1000
    assert "Efron & Tibshirani 1993" in b["bootstrap"]["rule"]
    for row in [*b["table"], b["model_all"]]:
        for m in ("auc", "balanced_accuracy", "kappa", "brier", "accuracy"):
            if row[m] is None:
                continue
            ci = row["ci"][m]
            assert ci["low"] <= row[m] + 1e-12 and row[m] - 1e-12 <= ci["high"], (row, m)
    csv = pd.read_csv(tmp_path / "a" / "boreholes.csv")
    assert {"auc_ci_low", "auc_ci_high", "kappa_ci_low", "brier_ci_high"} <= set(csv.columns)
    again = tmp_path / "b"
    validate_from_files(
        region / "truth.tif", boreholes_path=region / "bh.csv", out_dir=again,
        priors=[parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2"),
                parse_prior_spec(f"prior={region / 'pzi_prior.tif'}:continuous:0.5")])
    assert (again / "validation.json").read_bytes() == (tmp_path / "a" / "validation.json") \
        .read_bytes().replace(str(tmp_path / "a").encode(), str(again).encode())


def test_cli_validate_bootstrap_options_reach_the_intervals(region):
    """--bootstrap, --ci-level, --site-m and --seed are recorded, and the seed decides the
    intervals (same seed, same bytes; another seed, other intervals)."""
    from permafrost.cli import app

    def run(name, *opts):
        out = region / name
        res = CliRunner().invoke(app, ["validate", str(region / "truth.tif"), "--boreholes",
                                       str(region / "bh.csv"), "--out", str(out), *opts])
        assert res.exit_code == 0, res.output
        return json.loads((out / "validation.json").read_text())["boreholes"]

    opts = ["--bootstrap", "1000", "--ci-level", "0.9", "--site-m", "250"]
    a, b, c = run("s1", *opts, "--seed", "1"), run("s1b", *opts, "--seed", "1"), \
        run("s2", *opts, "--seed", "2")
    boot = a["bootstrap"]
    assert (boot["resamples"], boot["level"], boot["site_m"], boot["seed"]) == (1000, 0.9,
                                                                                 250.0, 1)
    assert a["table"] == b["table"]
    assert a["table"] != c["table"]  # the intervals move with the seed
    assert [r.get("auc") for r in a["table"]] == [r.get("auc") for r in c["table"]]
    bad = CliRunner().invoke(app, ["validate", str(region / "truth.tif"), "--boreholes",
                                   str(region / "bh.csv"), "--out", str(region / "x"),
                                   "--bootstrap", "10"])
    assert bad.exit_code == 2


def test_paired_bootstrap_of_two_maps_on_the_same_resamples():
    """The difference of two maps' metrics on the same resamples: zero for a map against
    itself, clearly positive for a map against a worse one, and much narrower than the
    separate intervals when two maps err on the same boreholes (the point of pairing)."""
    from permafrost.validation import PAIRED_METRICS, bootstrap_metrics, paired_bootstrap

    y, p = _scored(300, seed=3)
    same = paired_bootstrap(y, p, p, seed=1)
    for m in PAIRED_METRICS:
        d = same["differences"][m]
        assert d["estimate"] == d["low"] == d["high"] == 0.0 and d["share_a_better"] == 0.0
    rng = np.random.default_rng(5)
    worse = np.clip(p + rng.normal(0, 0.35, p.size), 0, 1)
    vs = paired_bootstrap(y, p, worse, seed=1)
    for m in ("auc", "kappa"):
        d = vs["differences"][m]
        assert d["estimate"] > 0 and d["low"] > 0 and d["share_a_better"] > 0.975, (m, d)
    # a close rival erring on the same boreholes: the paired interval of the difference is
    # several times narrower than either map's own interval
    close = np.clip(p + rng.normal(0, 0.02, p.size), 0, 1)
    d = paired_bootstrap(y, p, close, seed=1)["differences"]["auc"]
    own = bootstrap_metrics(y, p, seed=1)["intervals"]["auc"]
    assert d["low"] <= d["estimate"] <= d["high"]
    assert (d["high"] - d["low"]) < 0.25 * (own["high"] - own["low"])
    # the estimate is the difference of the two maps' metrics on all boreholes
    a, b = bootstrap_metrics(y, p, seed=1), bootstrap_metrics(y, worse, seed=1)
    assert vs["differences"]["auc"]["estimate"] == pytest.approx(
        a["intervals"]["auc"]["estimate"] - b["intervals"]["auc"]["estimate"], abs=1e-12)
    with pytest.raises(DataError, match="differ in shape"):
        paired_bootstrap(y, p, p[:-1])


def test_a_degenerate_interval_says_why():
    """A map that puts every borehole of a class on the same side gives the same
    sensitivity in every resample: an 'interval' [1, 1] that says nothing, flagged."""
    from permafrost.validation import bootstrap_metrics

    y, p = _scored(200, seed=2)
    q = np.where(y == 1, 1.0, (p >= 0.5).astype(float))  # every permafrost borehole found
    iv = bootstrap_metrics(y, q, probabilistic=False, seed=0)["intervals"]
    assert iv["sensitivity"]["low"] == iv["sensitivity"]["high"] == 1.0
    assert "same value" in iv["sensitivity"]["degenerate"]
    assert "degenerate" not in iv["kappa"]
    assert "no Brier score" in iv["brier"]["degenerate"]


def test_validation_compares_each_prior_with_the_model_on_the_same_boreholes(region, tmp_path):
    """validation.json pairs the model with each prior (paired bootstrap) and says so in a
    sentence where a prior scores higher; here the model is given as the biased survey
    (categorical) and the truth as the continuous "prior", so the prior wins."""
    res = validate_from_files(
        region / "truth.tif", boreholes_path=region / "bh.csv", out_dir=tmp_path / "a",
        priors=[parse_prior_spec(f"survey={region / 'survey.tif'}:categorical:1:2")])
    b = res.boreholes
    assert [p["prior"] for p in b["paired"]] == ["survey"]
    d = b["paired"][0]["differences"]["auc"]
    rows = {r["map"]: r for r in b["table"]}
    assert d["estimate"] == pytest.approx(rows["model"]["auc"] - rows["survey"]["auc"])
    assert d["low"] <= d["estimate"] <= d["high"]
    # the truth PZI beats the biased survey on AUC: no sentence for the survey
    assert rows["model"]["auc"] > rows["survey"]["auc"] and not any(
        "higher AUC" in f for f in b["findings"])
    worse = tmp_path / "worse.tif"
    import rasterio
    with rasterio.open(region / "truth.tif") as src:
        prof, arr = src.profile, src.read(1)
        noise = np.random.default_rng(0).normal(0, 0.6, arr.shape)
        with rasterio.open(worse, "w", **prof) as dst:
            dst.write(np.where(arr == -9999, arr, np.clip(arr + noise, 0, 1)).astype(
                "float32"), 1)
    res = validate_from_files(
        worse, boreholes_path=region / "bh.csv", out_dir=tmp_path / "b",
        priors=[parse_prior_spec(f"truth={region / 'truth.tif'}:continuous:0.5")])
    f = res.boreholes["findings"]
    assert any("prior map 'truth' has a higher AUC than the model" in x for x in f), f
    assert all("not for the whole map" in x for x in f)
