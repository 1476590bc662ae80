"""Real regions end to end (issue 14): the inputs as users hold them, on public data.

* Ötztal Alps: a stack file over the SRTM DEM with PISR and MAAT downscaled straight from
  the ERA5-Land and HISTALP NetCDF files (lapse rate fitted from each coarse grid), the RGI
  glacier outlines as the mask.
* NE Qinghai-Tibet Plateau: a full ``permafrost run`` on the frostnumcop rasters with the
  survey map as a prior.  The labels are sampled from that same survey map, so the
  agreement with it is circular: it shows that the chain runs and reproduces its labels,
  not that the map is right (see docs/pipelines.md).
* Kirishima: kinematics on the real MintPy file with drawn polygons.

Marked ``realdata``; skipped when ../shared/realdata (or $PERMAFROST_REALDATA) is absent.
Nothing is copied into the repository: files are referenced where they are, results go to
pytest's temporary directories.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

pytestmark = pytest.mark.realdata

OETZ = "oggm_alps_hma_dem_climate"
QTP = "frostnumcop_qtp_permafrost_map"
KIRI = "mintpy_alos2_kirishima"


# ---------------------------------------------------------------------------------------
# Ötztal Alps
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def oetztal_stack(realdata, tmp_path_factory):
    from permafrost.workflows.covariates import build_stack

    d = realdata / OETZ
    if not (d / "sel_era5_land_monthly_t2m_1981-2018.nc").exists():
        pytest.skip("Ötztal climate files absent")
    tmp = tmp_path_factory.mktemp("oetztal")
    stack = tmp / "stack.toml"
    stack.write_text(f"""
[grid]
like = "{d / 'srtm_oetztal.tif'}"
chunks = 256

[covariates.dem]
path = "{d / 'srtm_oetztal.tif'}"

[derived.slope]
function = "slope"

[derived.pisr]
function = "pisr"
day_step = 15
time_step_h = 1.0

[derived.maat]
function = "downscale_maat"
coarse = "{d / 'sel_era5_land_monthly_t2m_1981-2018.nc'}"
coarse_elevation = "{d / 'sel_era5_land_invariant.nc'}"
period = "1981-2010"
lapse_rate = "fit"

[derived.maat_histalp]
function = "downscale_maat"
coarse = "{d / 'HISTALP_oetztal.nc'}"
period = "1981-2010"
lapse_rate = "fit"
""")
    ds = build_stack(stack)
    attrs = {v: dict(ds[v].attrs) for v in ds.data_vars}
    return d, tmp, ds.compute(), attrs


def _independent_sea_level_mean(path, var, elev_path, elev_var, lapse, bbox):
    """Day-weighted 1981-2010 mean reduced to sea level, straight from xarray, averaged over
    the coarse cells whose centres lie inside the DEM's bounding box."""
    ds = xr.open_dataset(path, engine="h5netcdf")
    t = ds[var].sel(time=slice("1981-01-01", "2010-12-31"))
    w = t.time.dt.days_in_month
    m = (t * w).sum("time") / w.sum()
    if ds[var].attrs.get("units") == "K":
        m = m - 273.15
    e = xr.open_dataset(elev_path, engine="h5netcdf")[elev_var].squeeze(drop=True)
    if "m**2" in e.attrs.get("units", ""):
        e = e / 9.80665
    lon = next(c for c in m.dims if c.startswith("lon"))
    lat = next(c for c in m.dims if c.startswith("lat"))
    t0 = (m - lapse * e.values).values
    lo, la = np.meshgrid(m[lon].values, m[lat].values)
    inside = (lo > bbox[0]) & (lo < bbox[2]) & (la > bbox[1]) & (la < bbox[3])
    return float(t0[inside].mean())


def test_oetztal_maat_from_era5_land_and_histalp(oetztal_stack):
    d, _, ds, attrs = oetztal_stack
    lapse = {v: float(attrs[v]["lapse_rate_degC_per_m"]) for v in ("maat", "maat_histalp")}
    # lapse rates fitted over the coarse cells: annual Alpine values -5.4 to -5.8 degC/km
    # (Rolland 2003); measured -5.52 (ERA5-Land, 42 cells) and -5.62 (HISTALP, 49 cells)
    for v in lapse.values():
        assert -0.0062 < v < -0.0050
    assert attrs["maat"]["coarse_units_in_file"] == "K"
    assert attrs["maat_histalp"]["coarse_units_in_file"] == "degC"
    assert attrs["maat"]["coarse_period"] == attrs["maat_histalp"]["coarse_period"] == "1981-2010"
    z = ds["dem"].values.astype(float)
    iso = {}
    for v in ("maat", "maat_histalp"):
        m = ds[v].values
        band = np.isfinite(m) & (np.abs(m) < 0.25)
        iso[v] = float(np.median(z[band]))
        # the 0 degC isotherm of 1981-2010 in the Ötztal: about 2,100-2,400 m
        assert 2050 < iso[v] < 2450, (v, iso[v])
    # the two sources differ by what they really differ: ERA5-Land is colder than HISTALP
    # over these mountains (measured 1.47 degC on the DEM; isotherms 2132 vs 2391 m).  The
    # expected difference, from the raw files with xarray: sea-level means over the cells
    # inside the DEM plus the lapse-rate difference at the DEM's mean elevation
    bbox = (float(ds.x.min()), float(ds.y.min()), float(ds.x.max()), float(ds.y.max()))
    e0 = _independent_sea_level_mean(d / "sel_era5_land_monthly_t2m_1981-2018.nc", "t2m",
                                     d / "sel_era5_land_invariant.nc", "z", lapse["maat"], bbox)
    h0 = _independent_sea_level_mean(d / "HISTALP_oetztal.nc", "temp", d / "HISTALP_oetztal.nc",
                                     "hgt", lapse["maat_histalp"], bbox)
    ok = np.isfinite(z)
    expected = (h0 - e0) + (lapse["maat_histalp"] - lapse["maat"]) * z[ok].mean()
    diff = ds["maat_histalp"].values - ds["maat"].values
    assert np.nanmean(diff) == pytest.approx(expected, abs=0.3)
    assert 1.0 < np.nanmean(diff) < 2.0
    assert iso["maat_histalp"] - iso["maat"] == pytest.approx(
        np.nanmean(diff) / -np.mean(list(lapse.values())), rel=0.25)
    # PISR on real relief: south-facing steep slopes get more than north-facing ones
    assert 50 < float(np.nanmedian(ds["pisr"].values)) < 300


def test_oetztal_stats_exclude_the_rgi_glaciers(oetztal_stack):
    import geopandas as gpd
    from pyproj import Geod

    from permafrost.io.rasters import write_cog
    from permafrost.workflows.stats import stats_from_files

    d, tmp, ds, _ = oetztal_stack
    # a probability surface on the real grid (logistic in the ERA5-Land MAAT): the point
    # here is the mask and the denominator, not the model
    pzi = (1.0 / (1.0 + np.exp(2.0 * ds["maat"]))).astype("float32")
    pzi = pzi.rio.write_crs(ds.rio.crs)
    f = tmp / "pzi.tif"
    write_cog(pzi, f, nodata=np.nan)
    rgi = d / "rgi_oetztal.shp"
    plain = stats_from_files(f, dem_path=d / "srtm_oetztal.tif")
    masked = stats_from_files(f, dem_path=d / "srtm_oetztal.tif", mask_path=rgi)
    a, b = plain.units[0], masked.units[0]
    geod = Geod(ellps="WGS84")
    glaciers_km2 = sum(abs(geod.geometry_area_perimeter(g)[0])
                       for g in gpd.read_file(rgi).to_crs(4326).geometry) / 1e6
    assert glaciers_km2 == pytest.approx(87.7, rel=0.02)  # RGI 5.0: 20 glaciers, 87.7 km2
    # the glacier cells (rasterised on the ~90 m grid) leave the denominator
    assert b["masked_km2"] == pytest.approx(glaciers_km2, rel=0.05)
    assert b["denominator_km2"] == pytest.approx(a["denominator_km2"] - b["masked_km2"],
                                                 rel=1e-6)
    # the glaciers are high and cold: masking them removes permafrost-probable area
    assert b["pzi_ge_0.5_km2"] < a["pzi_ge_0.5_km2"] - 0.5 * glaciers_km2
    assert b["pzi_weighted_km2"] < a["pzi_weighted_km2"]


# ---------------------------------------------------------------------------------------
# NE Qinghai-Tibet Plateau: the whole chain on the frostnumcop rasters
# ---------------------------------------------------------------------------------------
def test_qtp_full_run_with_the_survey_map_as_prior(realdata, tmp_path):
    import pandas as pd
    import rasterio
    from typer.testing import CliRunner

    from permafrost.cli import app

    d = realdata / QTP
    if not (d / "investigation_map.tif").exists():
        pytest.skip("frostnumcop files absent")
    # labels: 400 cells drawn from the survey map (1 permafrost, 2 seasonally frozen) as a
    # borehole table with the column names an export might have.  CIRCULAR: the same map
    # is then the prior the PZI is compared with.
    with rasterio.open(d / "investigation_map.tif") as src:
        m = src.read(1)
        t = src.transform
    rng = np.random.default_rng(7)
    rows, cols = np.nonzero(m != 3)
    pick = rng.choice(len(rows), 400, replace=False)
    lon, lat = (t * (cols[pick] + 0.5, rows[pick] + 0.5))
    pd.DataFrame({"ID": [f"S{i:03d}" for i in range(400)], "Longitude": lon, "Latitude": lat,
                  "Permafrost": np.where(m[rows[pick], cols[pick]] == 1, "yes", "no")}
                 ).to_csv(tmp_path / "survey_points.csv", index=False)
    (tmp_path / "stack.toml").write_text(f"""
[grid]
like = "{d / 'DDF_mean_annual.tif'}"

[covariates.ddf]
path = "{d / 'DDF_mean_annual.tif'}"

[covariates.ddt]
path = "{d / 'DDT_mean_annual.tif'}"

[covariates.soil]
path = "{d / 'soil_cluster.tif'}"
kind = "categorical"

[derived.frost_number]
function = "frost_number"
ddf = "ddf"
ddt = "ddt"
""")
    (tmp_path / "qtp.toml").write_text(f"""
[pipeline]
name = "qtp"
output_dir = "{tmp_path / 'out'}"
seed = 3

[inputs]
covariates = "stack.toml"
boreholes = "survey_points.csv"

[[inputs.priors]]
name = "survey"
path = "{d / 'investigation_map.tif'}"
kind = "categorical"
permafrost_codes = [1]
other_codes = [2]

[train]
model = "xgboost"
device = "cpu"
folds = 3
n_estimators = 60

[predict]
chunk = 128
uncertainty = false

[validate]
holdout_fraction = 0.25
""")
    r = CliRunner().invoke(app, ["run", str(tmp_path / "qtp.toml")])
    assert r.exit_code == 0, r.output
    base = tmp_path / "out" / "baseline"
    with rasterio.open(base / "pzi.tif") as src:
        pzi = src.read(1, masked=True)
        assert src.crs.to_epsg() == 4326 and pzi.shape == m.shape
    v = json.loads((base / "validation.json").read_text())
    prior = v["priors"][0]["agreement"]
    # circular by construction: the map reproduces the survey it was trained on
    assert prior["kappa"] > 0.6 and prior["overall_agreement"] > 0.8
    rows_ = {row["map"]: row for row in v["boreholes"]["table"]}
    assert rows_["model"]["n"] >= 40 and rows_["model"]["auc"] > 0.85
    # the frost number used as a covariate is Nelson & Outcalt's, from the real DDF/DDT
    from permafrost.workflows.covariates import build_stack
    ds = build_stack(tmp_path / "stack.toml")
    ddf, ddt, fn = (ds[k].values.astype(float) for k in ("ddf", "ddt", "frost_number"))
    ok = np.isfinite(fn)
    np.testing.assert_allclose(fn[ok], (np.sqrt(ddf) / (np.sqrt(ddf) + np.sqrt(ddt)))[ok],
                               rtol=1e-5)
    # permafrost where the frost number is high: the model follows the physics
    p = np.where(pzi.mask, np.nan, pzi.filled(np.nan))
    assert np.nanmean(p[fn > 0.6]) > np.nanmean(p[fn < 0.4]) + 0.5
    assert (tmp_path / "out" / "report.html").exists()


# ---------------------------------------------------------------------------------------
# Kirishima: kinematics with drawn polygons on the real MintPy velocity
# ---------------------------------------------------------------------------------------
def test_kirishima_uplift_is_uncertain_and_the_reference_pixel_kept(realdata, tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point

    from permafrost.io.mintpy import find_track_files, read_track
    from permafrost.workflows.kinematics import run_kinematics

    d = realdata / KIRI
    if not (d / "velocity.h5").exists():
        pytest.skip("Kirishima files absent")
    # drawn polygons: Iwo-yama (the uplift of 2015-2017, LOS toward the satellite) and a
    # 250 m disc around MintPy's reference point
    centres = {"iwoyama_uplift": (130.8543, 31.9469), "reference": (130.85, 31.91593)}
    g = gpd.GeoDataFrame({"rg_id": list(centres)},
                         geometry=[Point(*c) for c in centres.values()], crs=4326)
    g = g.to_crs(32652)
    g["geometry"] = g.buffer(250.0)
    g.to_crs(4326).to_file(tmp_path / "drawn.gpkg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run_kinematics([d], tmp_path / "drawn.gpkg", dem=d / "height.tif",
                             out=tmp_path / "kin.gpkg")
        track = read_track(find_track_files(d))
    o = res.outlines.set_index("rg_id")
    up = o.loc["iwoyama_uplift"]
    # real uplift: LOS toward the satellite (> +5 mm/yr), upslope after projection: not
    # slope-parallel creep, so no activity is claimed
    assert up["kin_v_los_median_m_yr"] > 0.005
    assert up["kin_v_downslope_median_m_yr"] < 0
    assert up["kin_activity"] == "uncertain"
    assert "upslope" in str(up["kin_reason"])
    # the reference pixel (velocity exactly 0 by construction) is data, not no-data
    vel = track["velocity"]
    ry, rx = track.attrs["ref_y"], track.attrs["ref_x"]
    assert float(vel.values[ry, rx]) == 0.0
    ref = o.loc["reference"]
    assert ref["kin_n_valid"] > 100 and abs(ref["kin_v_los_median_m_yr"]) < 0.001
    assert Path(tmp_path / "kin.gpkg").exists()
