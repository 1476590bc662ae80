"""Inputs as users hold them (issue 14): borehole column names, NetCDF climate grids, outlines
separate from the inventory, range checks in validate, label verdicts when nothing is decided,
NetCDF in inspect, remote (GDAL virtual file system) raster paths.

Everything here is synthetic and small; the real regions are in test_realdata_regions.py.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.config import load_pipeline
from permafrost.errors import ConfigError, DataError, InputFileError
from permafrost.io.boreholes import read_presence_table
from permafrost.io.netcdf import read_cell_elevation, read_climate_mean
from permafrost.io.rasters import read_raster, write_cog

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
runner = CliRunner()


# ---------------------------------------------------------------------------------------
# borehole tables: common spellings, column mapping on the CLI and in pipeline files
# ---------------------------------------------------------------------------------------
def test_borehole_table_as_exported_is_read(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("ID,Longitude,Latitude,Elevation_m,Permafrost\n"
                 "KB1,10.80,46.80,2810,Yes\nKB2,10.90,46.90,1950,no\n")
    g = read_presence_table(f)
    assert g["borehole_id"].tolist() == ["KB1", "KB2"]
    assert g["presence"].tolist() == [1, 0]
    assert g["elevation_m"].tolist() == [2810.0, 1950.0]
    assert g.crs.to_epsg() == 4326 and g.geometry.x.iloc[0] == pytest.approx(10.8)
    assert g.attrs["columns"] == {"x": "Longitude", "y": "Latitude", "id": "ID",
                                  "presence": "Permafrost", "elevation": "Elevation_m"}


@pytest.mark.parametrize("header,role", [("PF", "presence"), ("MAGT [°C]", "magt"),
                                         ("Altitude (m)", "elevation"), ("YEAR", "year")])
def test_common_spellings_any_case_and_punctuation(tmp_path, header, role):
    f = tmp_path / "bh.csv"
    extra = "" if role == "presence" else ",presence"
    f.write_text(f"Site,LAT,LON,{header}{extra}\nA,46.8,10.8,1{extra and ',1'}\n")
    g = read_presence_table(f)
    assert g.attrs["columns"][role] == header


def test_unrecognised_columns_name_the_spellings_and_the_fix(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("Nummer,Longitude,Latitude,Frozen\nA,10.8,46.8,1\n")
    with pytest.raises(DataError) as exc:
        read_presence_table(f)
    msg = str(exc.value)
    assert "\n" not in msg and str(f) in msg
    assert "no id column" in msg and "borehole_id" in msg and "Nummer" in msg
    assert "--borehole-column id=NAME" in msg
    f.write_text("ID,Longitude,Latitude,Frozen\nA,10.8,46.8,1\n")
    with pytest.raises(DataError) as exc:
        read_presence_table(f)
    msg = str(exc.value)
    assert "neither a presence nor a MAGT column" in msg
    assert all(s in msg for s in ("permafrost", "pf", "magt_c")) and "Frozen" in msg
    assert "--borehole-column presence=NAME" in msg
    g = read_presence_table(f, columns={"presence": "Frozen"})
    assert g["presence"].tolist() == [1]
    with pytest.raises(DataError, match="no presence column 'Frost'"):
        read_presence_table(f, columns={"presence": "Frost"})


def test_projected_columns_with_a_mapping_and_crs(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("Nr,Rechtswert,Hochwert,Hoehe,PF_Befund,Jahr\n1,640000,5180000,2700,1,2004\n")
    with pytest.raises(DataError, match="no position columns"):
        read_presence_table(f, columns={"presence": "PF_Befund"})
    g = read_presence_table(f, columns={"id": "Nr", "x": "Rechtswert", "y": "Hochwert",
                                        "elevation": "Hoehe", "presence": "PF_Befund",
                                        "year": "Jahr"}, crs="EPSG:32632")
    assert g.crs.to_epsg() == 32632 and g["year"].iloc[0] == 2004
    assert g["elevation_m"].iloc[0] == 2700 and g["presence"].iloc[0] == 1


def test_labels_cli_takes_column_mapping(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("Code,Longitude,Latitude,Frozen\nA,10.8,46.8,1\nB,10.9,46.9,0\n")
    out = tmp_path / "labels.gpkg"
    r = runner.invoke(app, ["labels", "--boreholes", str(f), "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output and "--borehole-column" in r.output
    r = runner.invoke(app, ["labels", "--boreholes", str(f), "--borehole-column", "id=Code",
                            "--borehole-column", "presence=Frozen", "--out", str(out)])
    assert r.exit_code == 0, r.output
    import geopandas as gpd
    pts = gpd.read_file(out)
    assert sorted(pts["source_id"]) == ["A", "B"] and sorted(pts["label"]) == [0, 1]
    r = runner.invoke(app, ["labels", "--boreholes", str(f), "--borehole-column", "colour=x",
                            "--out", str(out)])
    assert r.exit_code == 2 and "ROLE=COLUMN" in r.output


def _pipeline(tmp_path: Path, inputs: str) -> Path:
    (tmp_path / "cov").mkdir(exist_ok=True)
    p = tmp_path / "p.toml"
    p.write_text(f'[pipeline]\nname = "t"\noutput_dir = "out"\n[inputs]\ncovariates = "cov"\n'
                 f"{inputs}\n")
    return p


def test_pipeline_borehole_table_form_and_plain_path(tmp_path):
    (tmp_path / "bh.csv").write_text("Code,E,N,Frozen\nA,640000,5180000,1\n")
    cfg = load_pipeline(_pipeline(tmp_path, 'boreholes = {path = "bh.csv", columns = '
                                  '{id = "Code", x = "E", y = "N", presence = "Frozen"}, '
                                  'crs = "EPSG:32632"}'))
    assert cfg.inputs.boreholes == tmp_path / "bh.csv"
    assert cfg.inputs.borehole_columns.mapping() == {"id": "Code", "x": "E", "y": "N",
                                                     "presence": "Frozen"}
    assert cfg.inputs.borehole_crs == "EPSG:32632"
    cfg = load_pipeline(_pipeline(tmp_path, 'boreholes = "bh.csv"'))
    assert cfg.inputs.boreholes == tmp_path / "bh.csv"
    assert cfg.inputs.borehole_columns.mapping() == {}
    with pytest.raises(ConfigError, match=r"inputs\.boreholes\.columns\.presense.*'presence'"):
        load_pipeline(_pipeline(tmp_path, 'boreholes = {path = "bh.csv", columns = '
                                '{presense = "Frozen"}}'))
    with pytest.raises(ConfigError, match=r"inputs\.boreholes.*input not found"):
        load_pipeline(_pipeline(tmp_path, 'boreholes = {path = "nope.csv"}'))


def test_pipeline_reads_mapped_columns_for_training_and_held_out_validation(tmp_path):
    from permafrost.pipeline import STEPS, run_pipeline

    bh = pd.read_csv(SAMPLES / "boreholes" / "boreholes.csv", dtype=str)
    bh = bh.rename(columns={"borehole_id": "Nr", "lon": "Laenge", "lat": "Breite",
                            "presence": "Befund", "magt_c": "Bodentemp"})
    bh.to_csv(tmp_path / "bohrungen.csv", index=False)
    p = tmp_path / "p.toml"
    p.write_text(f"""
[pipeline]
name = "t"
output_dir = "{tmp_path / 'out'}"
seed = 1
[inputs]
covariates = "{SAMPLES / 'covariates'}"
dem = "{SAMPLES / 'covariates' / 'dem.tif'}"
boreholes = {{ path = "bohrungen.csv", columns = {{ id = "Nr", lon = "Laenge", lat = "Breite", presence = "Befund", magt = "Bodentemp" }}, crs = "EPSG:4326" }}
[train]
model = "logistic"
folds = 3
[predict]
zones = false
""")
    res = run_pipeline(load_pipeline(p), steps=STEPS, only="validate")
    recs = res.scenarios["baseline"]
    assert recs["labels"].summary["points"] > 50
    held = recs["labels"].outputs["holdout"]
    assert held.suffix == ".csv" and "Befund" in held.read_text().splitlines()[0]
    v = json.loads(recs["validate"].outputs["validation"].read_text())
    model = next(r for r in v["boreholes"]["table"] if r["map"] == "model")
    assert model["n"] == recs["labels"].summary["held_out_boreholes"] > 5


# ---------------------------------------------------------------------------------------
# the pipeline with outlines separate from the inventory, kinematics on
# ---------------------------------------------------------------------------------------
def test_pipeline_outlines_separate_from_inventories(tmp_path):
    import geopandas as gpd

    from permafrost.pipeline import STEPS, run_pipeline

    inv = gpd.read_file(SAMPLES / "inventory" / "rock_glaciers.gpkg")
    outlines = tmp_path / "outlines.gpkg"  # the outlines as drawn: no activity column
    inv.drop(columns=["activity"]).to_file(outlines)
    # a stale inventory: the active rock glaciers are recorded as relict
    inv["activity"] = inv["activity"].replace({"active": "relict"})
    inventory = tmp_path / "inventory.gpkg"
    inv.to_file(inventory)
    text = (ROOT / "pipelines" / "demo.toml").read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('"demo_covariates.toml"', f'"{ROOT}/pipelines/demo_covariates.toml"')
    text = text.replace(f'"{ROOT}/data_samples/inventory/rock_glaciers.gpkg"', f'"{inventory}"')
    text = re.sub(r'output_dir = ".*"', f'output_dir = "{tmp_path / "out"}"', text)
    text = text.replace("[inputs]\n", f'[inputs]\noutlines = "{outlines}"\n', 1)
    p = tmp_path / "p.toml"
    p.write_text(text)
    cfg = load_pipeline(p)
    assert cfg.inputs.outlines == outlines and cfg.inputs.inventories == [inventory]
    assert cfg.inputs.tracks
    res = run_pipeline(cfg, steps=STEPS, only="labels")
    labels = res.scenarios["baseline"]["labels"]
    pts = gpd.read_file(labels.outputs["labels"])
    rg = pts[pts["source"] == "rock_glacier"]
    # every rock glacier once, under the inventory's ids
    assert rg["source_id"].is_unique and len(rg) > 100
    assert set(rg["source_id"]) <= set(inv["rg_id"].astype(str))
    # the inventory's class weighed against InSAR (combine_activity's rules): some relict
    # ones upgraded by significant movement, no intact one made relict
    own = dict(zip(inv["rg_id"].astype(str), inv["activity"].str.lower()))
    got = dict(zip(rg["source_id"], rg["activity"]))
    intact = {"active", "transitional", "intact"}
    assert not [i for i, a in got.items() if own[i] in intact and a == "relict"]
    upgraded = [i for i, a in got.items() if own[i] == "relict" and a in intact]
    act = gpd.read_file(labels.outputs["activity"])
    assert len(upgraded) >= 1 and (act["activity_source"] == "insar").sum() > 10


# ---------------------------------------------------------------------------------------
# NetCDF / CF climate grids
# ---------------------------------------------------------------------------------------
def _monthly_cf(path: Path, *, years=(2000, 2003), units="K", offset=273.15, lapse=-0.0055,
                t0=12.0, calendar=None, grid_mapping=False, geopotential=False):
    """A 5x6 monthly temperature grid: T = t0 + lapse * z + seasonal cycle (+ offset)."""
    time = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-01", freq="MS")
    lat = np.array([47.2, 47.1, 47.0, 46.9, 46.8])
    lon = np.array([10.5, 10.6, 10.7, 10.8, 10.9, 11.0])
    z = 1200.0 + 300.0 * np.arange(30, dtype=float).reshape(5, 6) % 1700.0
    season = 8.0 * np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12.0)
    t = t0 + lapse * z[None] + season[:, None, None] + offset
    coords = {"time": time, "latitude": ("latitude", lat, {"units": "degrees_north"}),
              "longitude": ("longitude", lon, {"units": "degrees_east"})}
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t,
                             {"units": units, "long_name": "2 metre temperature"})},
                    coords=coords)
    if geopotential:
        ds["z"] = (("latitude", "longitude"), z * 9.80665,
                   {"units": "m**2 s**-2", "standard_name": "geopotential"})
    else:
        ds["hgt"] = (("latitude", "longitude"), z, {"units": "m"})
    enc = {"time": {"units": "days since 1900-01-01"}}
    if calendar:
        enc["time"]["calendar"] = calendar
    ds.to_netcdf(path, engine="h5netcdf", encoding=enc)
    return z, time


def test_monthly_kelvin_mean_over_period_in_celsius(tmp_path):
    f = tmp_path / "t2m.nc"
    z, time = _monthly_cf(f)
    m = read_climate_mean(f, period="2001-2002")
    assert m.attrs["units"] == "degC" and m.attrs["units_in_file"] == "K"
    assert m.attrs["period"] == "2001-2002" and m.attrs["years"] == "2"
    assert m.rio.crs.to_epsg() == 4326 and m.dims == ("y", "x")
    assert float(m.y[0]) > float(m.y[-1])  # north-up
    # independent: day-weighted mean of the 24 months of 2001-2002
    sel = (time.year >= 2001) & (time.year <= 2002)
    w = time[sel].days_in_month.to_numpy().astype(float)
    season = 8.0 * np.cos(2 * np.pi * (time.month.to_numpy()[sel] - 7) / 12.0)
    expect = 12.0 - 0.0055 * z + np.sum(w * season) / w.sum()
    np.testing.assert_allclose(m.values, expect, atol=1e-9)
    # the seasonal cycle does not cancel with equal weights: weighting matters here
    assert abs(np.sum(w * season) / w.sum() - season.mean()) > 1e-3


def test_period_outside_the_record_and_unknown_units(tmp_path):
    f = tmp_path / "t2m.nc"
    _monthly_cf(f)
    with pytest.raises(DataError) as exc:
        read_climate_mean(f, period="1991-2020")
    msg = str(exc.value)
    assert "\n" not in msg and str(f) in msg and "complete years in the file: 2000-2003" in msg
    g = tmp_path / "bad.nc"
    _monthly_cf(g, units="furlongs")
    with pytest.raises(DataError, match=r"field 't2m.units'.*set the units attribute"):
        read_climate_mean(g)


def test_undecodable_calendar_is_one_clear_line(tmp_path):
    f = tmp_path / "t2m.nc"
    ds = xr.Dataset({"tas": (("time", "lat", "lon"), np.zeros((24, 2, 2)), {"units": "degC"})},
                    coords={"time": ("time", np.arange(24) * 30.0,
                                     {"units": "days since 0001-01-01", "calendar": "360_day"}),
                            "lat": ("lat", [47.0, 46.9], {"units": "degrees_north"}),
                            "lon": ("lon", [10.5, 10.6], {"units": "degrees_east"})})
    ds.to_netcdf(f, engine="h5netcdf")
    try:
        import cftime  # noqa: F401
        pytest.skip("cftime installed: the calendar decodes")
    except ImportError:
        pass
    with pytest.raises(DataError) as exc:
        read_climate_mean(f)
    msg = str(exc.value)
    assert "cannot be decoded" in msg and "360_day" in msg and "\n" not in msg
    assert "cftime" not in msg.lower()


def test_cell_elevation_from_geopotential_and_hgt(tmp_path):
    f = tmp_path / "inv.nc"
    z, _ = _monthly_cf(f, geopotential=True)
    e = read_cell_elevation(f)
    np.testing.assert_allclose(e.values, z, rtol=1e-12)
    assert e.attrs["units"] == "m" and "9.80665" in e.attrs["conversion"]
    g = tmp_path / "h.nc"
    _monthly_cf(g)
    np.testing.assert_allclose(read_cell_elevation(g).values, z)


def test_classic_netcdf3_and_longitudes_0_to_360(tmp_path):
    f = tmp_path / "classic.nc"
    ds = xr.Dataset({"tas": (("time", "lat", "lon"), np.full((12, 2, 3), 280.0), {"units": "K"})},
                    coords={"time": pd.date_range("2001-01-01", periods=12, freq="MS"),
                            "lat": ("lat", [46.0, 47.0], {"units": "degrees_north"}),
                            "lon": ("lon", [350.0, 355.0, 0.0], {"units": "degrees_east"})})
    ds.to_netcdf(f, engine="scipy")  # NetCDF-3 classic
    m = read_climate_mean(f)
    np.testing.assert_allclose(m.values, 280.0 - 273.15)
    assert m.x.values.tolist() == [-10.0, -5.0, 0.0] and m.y.values.tolist() == [47.0, 46.0]


def test_crs_from_cf_grid_mapping(tmp_path):
    f = tmp_path / "proj.nc"
    x = 600000.0 + 10000.0 * np.arange(4)
    y = 5200000.0 - 10000.0 * np.arange(3)
    ds = xr.Dataset({"temp": (("time", "y", "x"), np.full((12, 3, 4), 5.0),
                              {"units": "degC", "grid_mapping": "crs"}),
                     "crs": ((), 0, {"grid_mapping_name": "transverse_mercator",
                                     "longitude_of_central_meridian": 9.0,
                                     "latitude_of_projection_origin": 0.0,
                                     "scale_factor_at_central_meridian": 0.9996,
                                     "false_easting": 500000.0, "false_northing": 0.0,
                                     "semi_major_axis": 6378137.0,
                                     "inverse_flattening": 298.257223563})},
                    coords={"time": pd.date_range("2001-01-01", periods=12, freq="MS"),
                            "x": ("x", x, {"standard_name": "projection_x_coordinate",
                                           "units": "m"}),
                            "y": ("y", y, {"standard_name": "projection_y_coordinate",
                                           "units": "m"})})
    ds.to_netcdf(f, engine="h5netcdf")
    m = read_climate_mean(f)
    proj = m.rio.crs.to_proj4()
    # transverse Mercator on 9 E with k 0.9996 and 500 km false easting is UTM zone 32
    assert ("+proj=utm" in proj and "+zone=32" in proj) or (
        "+proj=tmerc" in proj and "+lon_0=9" in proj and "+k=0.9996" in proj)
    assert m.rio.transform().c == pytest.approx(595000.0)


def _dem_tif(path: Path, lapse=-0.0055):
    """A 0.01 deg DEM inside the synthetic climate grid's cell centres."""
    import rioxarray  # noqa: F401
    y = np.arange(47.15, 46.85, -0.01)
    x = np.arange(10.55, 10.95, 0.01)
    zz = 1500.0 + 1500.0 * np.sin(np.add.outer(y * 40, x * 30)) ** 2
    da = xr.DataArray(zz.astype("float32"), dims=("y", "x"), coords={"y": y, "x": x})
    da = da.rio.write_crs(4326).rio.write_nodata(np.nan)
    da.rio.to_raster(path)
    return zz


def test_stack_file_downscales_netcdf_with_fitted_lapse_rate(tmp_path):
    from permafrost.workflows.covariates import build_stack

    f = tmp_path / "t2m.nc"
    inv = tmp_path / "inv.nc"
    _monthly_cf(f)
    _monthly_cf(inv, geopotential=True)
    zz = _dem_tif(tmp_path / "dem.tif")
    (tmp_path / "stack.toml").write_text(f"""
[covariates.dem]
path = "dem.tif"
[derived.maat]
function = "downscale_maat"
coarse = "{f.name}"
coarse_elevation = "{inv.name}"
period = "2001-2003"
lapse_rate = "fit"
""")
    ds = build_stack(tmp_path / "stack.toml")
    m = ds["maat"]
    assert float(m.attrs["lapse_rate_degC_per_m"]) == pytest.approx(-0.0055, abs=1e-9)
    assert m.attrs["coarse_units_in_file"] == "K" and m.attrs["coarse_period"] == "2001-2003"
    # the synthetic climate is exactly linear in elevation: the downscaled field is exact
    time = pd.date_range("2001-01-01", "2003-12-01", freq="MS")
    w = time.days_in_month.to_numpy().astype(float)
    season = np.sum(w * 8.0 * np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12.0)) / w.sum()
    np.testing.assert_allclose(m.values, 12.0 - 0.0055 * zz + season, atol=2e-3)
    # a fixed lapse rate and the elevation from the climate file itself (hgt)
    (tmp_path / "stack2.toml").write_text(f"""
[covariates.dem]
path = "dem.tif"
[derived.maat]
function = "downscale_maat"
coarse = "{f.name}"
period = "2001-2003"
lapse_rate = -0.0065
""")
    m2 = build_stack(tmp_path / "stack2.toml")["maat"]
    assert m2.attrs["lapse_rate_degC_per_m"] == "-0.0065"
    assert np.nanmean(np.abs(m2.values - m.values)) > 0.05
    # a scenario that warms the coarse NetCDF climate warms the downscaled MAAT by as much
    from permafrost.config import CovariateChange
    warm = build_stack(tmp_path / "stack.toml",
                       changes={"maat.coarse": CovariateChange(offset=2.0)})["maat"]
    np.testing.assert_allclose(warm.values - m.values, 2.0, atol=1e-3)
    assert float(warm.attrs["lapse_rate_degC_per_m"]) == pytest.approx(-0.0055, abs=1e-9)
    # NetCDF-only keys on a GeoTIFF are refused, naming the key
    (tmp_path / "stack3.toml").write_text("""
[covariates.dem]
path = "dem.tif"
[derived.maat]
function = "downscale_maat"
coarse = "dem.tif"
coarse_elevation = "dem.tif"
period = "2001-2003"
""")
    with pytest.raises(ConfigError, match=r"derived\.maat\.period.*NetCDF"):
        build_stack(tmp_path / "stack3.toml")


def test_netcdf_time_series_is_not_read_as_one_raster_band(tmp_path):
    _monthly_cf(tmp_path / "t2m.nc")
    with pytest.raises(InputFileError) as exc:
        read_raster(tmp_path / "t2m.nc")
    msg = str(exc.value)
    assert "downscale_maat" in msg and "cftime" not in msg and "\n" not in msg


def test_inspect_summarises_netcdf(tmp_path):
    _monthly_cf(tmp_path / "t2m.nc")
    r = runner.invoke(app, ["inspect", str(tmp_path), "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    nc = [s for s in d["datasets"] if s["path"].endswith("t2m.nc")]
    assert len(nc) == 1 and nc[0]["kind"] == "netcdf" and nc[0]["crs"] == "EPSG:4326"
    v = nc[0]["details"]["variables"]
    assert v["t2m"]["units"] == "K" and v["hgt"]["units"] == "m"
    assert nc[0]["details"]["time"] == {"start": "2000-01-01", "end": "2003-12-01", "steps": 48}
    assert not any(s.endswith("t2m.nc") for s in d["skipped"])


# ---------------------------------------------------------------------------------------
# validate refuses a categorical map given as the PZI
# ---------------------------------------------------------------------------------------
def test_validate_refuses_a_categorical_map_as_pzi(tmp_path):
    import rioxarray  # noqa: F401
    cat = xr.DataArray(np.where(np.arange(400).reshape(20, 20) % 3, 1, 2).astype("uint8"),
                       dims=("y", "x"), coords={"y": 38.5 - np.arange(20) * 0.01,
                                                "x": 99.0 + np.arange(20) * 0.01})
    cat = cat.rio.write_crs(4326)
    f = tmp_path / "map.tif"
    write_cog(cat, f, nodata=3)
    bh = tmp_path / "bh.csv"
    bh.write_text("id,lon,lat,presence\nA,99.05,38.45,1\nB,99.1,38.4,0\n")
    for cmd in (["validate", str(f), "--boreholes", str(bh), "--out", str(tmp_path / "v")],
                ["stats", str(f), "--out-json", str(tmp_path / "s.json")]):
        r = runner.invoke(app, cmd)
        assert r.exit_code == 2, (cmd, r.output)
        assert "must lie in [0, 1]" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "v" / "validation.json").exists()


# ---------------------------------------------------------------------------------------
# labels: verdicts and dropped inputs written when no borehole is decided
# ---------------------------------------------------------------------------------------
def _short_gtnp(tmp_path: Path) -> tuple[Path, Path]:
    """A GTN-P export of one borehole with nine months of readings: undecidable."""
    dates = pd.date_range("2010-01-01", "2010-10-01", freq="D")
    rows = [{"id": i, "date": d.date().isoformat(), "depth": depth, "temperature": -1.0,
             "flag": "", "dataset_id": "11", "borehole_id": "21", "site_id": "1"}
            for i, (d, depth) in enumerate((d, depth) for d in dates for depth in (1.0, 5.0))]
    csv = tmp_path / "gtnp.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps([{"id": 11, "borehole": {
        "id": 21, "name": "SHORT_1", "site_name": "Test",
        "location": {"latitude": 46.5, "longitude": 9.8, "elevation": 2700}}}]))
    return csv, meta


def test_labels_write_verdicts_when_every_borehole_is_undecidable(tmp_path):
    csv, meta = _short_gtnp(tmp_path)
    out = tmp_path / "lab" / "labels.gpkg"
    out.parent.mkdir()
    r = runner.invoke(app, ["labels", "--gtnp", str(csv), "--gtnp-metadata", str(meta),
                            "--out", str(out)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    msg = " ".join(r.output.split())
    assert "activity" not in msg
    assert "1 of 1 borehole temperature records are undecidable" in msg
    assert str(csv) in msg and "labels_verdicts.csv" in msg
    v = pd.read_csv(out.parent / "labels_verdicts.csv")
    d = pd.read_csv(out.parent / "labels_dropped.csv")
    assert v["borehole_id"].tolist() == ["SHORT_1"] and v["status"].iloc[0] == "insufficient"
    assert d["source_id"].tolist() == ["SHORT_1"] and d["reason"].str.startswith(
        "insufficient record").all()
    assert (out.parent / "labels_summary.csv").exists() and not out.exists()


def test_pipeline_keeps_the_label_reasons_when_nothing_is_decided(tmp_path):
    csv, meta = _short_gtnp(tmp_path)
    p = tmp_path / "p.toml"
    p.write_text(f'[pipeline]\nname = "t"\noutput_dir = "out"\n[inputs]\n'
                 f'covariates = "{SAMPLES / "covariates"}"\n'
                 f'gtnp = {{ csv = "{csv}", metadata = "{meta}" }}\n')
    r = runner.invoke(app, ["run", str(p)])
    assert r.exit_code == 2 and "Traceback" not in r.output
    keep = tmp_path / "out" / "baseline" / "labels_reasons"
    msg = " ".join(r.output.split())
    assert "undecidable" in msg and "activity" not in msg
    assert "labels_verdicts.csv" in msg
    assert str(keep) in "".join(r.output.split())  # the path, however the terminal wrapped it
    v = pd.read_csv(keep / "labels_verdicts.csv")
    assert v["borehole_id"].tolist() == ["SHORT_1"]
    assert (keep / "labels_dropped.csv").exists() and (keep / "labels_summary.csv").exists()


# ---------------------------------------------------------------------------------------
# remote rasters: GDAL virtual file system paths and URLs, served from a local HTTP server
# ---------------------------------------------------------------------------------------
class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support (what GDAL's /vsicurl/ needs)."""

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        if rng and (m := re.match(r"bytes=(\d+)-(\d*)", rng)):
            a = int(m.group(1))
            b = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
            body = data[a:b + 1]
        else:
            self.send_response(200)
            body = data
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self):
        path = Path(self.translate_path(self.path.split("?", 1)[0]))
        if not path.is_file():
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(path.stat().st_size))
        self.end_headers()


@pytest.fixture
def http_root(tmp_path, monkeypatch):
    root = tmp_path / "served"
    (root / "bucket").mkdir(parents=True)
    handler = lambda *a, **k: _RangeHandler(*a, directory=str(root), **k)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    port = srv.server_address[1]
    # /vsis3/ against the local server: plain HTTP, path-style, no signing
    for k, v in {"AWS_S3_ENDPOINT": f"127.0.0.1:{port}", "AWS_HTTPS": "NO",
                 "AWS_VIRTUAL_HOSTING": "FALSE", "AWS_NO_SIGN_REQUEST": "YES",
                 "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_NON_CACHED": "/vsi"
                 }.items():
        monkeypatch.setenv(k, v)
    yield root, port
    srv.shutdown()


def test_remote_raster_paths_are_read_unmangled(http_root, tmp_path):
    root, port = http_root
    src = SAMPLES / "covariates" / "dem.tif"
    (root / "bucket" / "dem.tif").write_bytes(src.read_bytes())
    local = read_raster(src)
    for given in (f"/vsicurl/http://127.0.0.1:{port}/bucket/dem.tif",
                  Path(f"/vsicurl/http://127.0.0.1:{port}/bucket/dem.tif"),  # as Typer passes
                  "/vsis3/bucket/dem.tif", "s3://bucket/dem.tif", Path("s3://bucket/dem.tif")):
        da = read_raster(given)
        assert da.name == "dem" and da.shape == local.shape
        assert "//" in da.attrs["source"] or da.attrs["source"].startswith("/vsis3/")
        np.testing.assert_array_equal(da.values, local.values)
    # a missing remote file: GDAL's answer, the URL intact, not "file not found" on disk
    with pytest.raises(InputFileError) as exc:
        read_raster(Path(f"/vsicurl/http://127.0.0.1:{port}/bucket/none.tif"))
    msg = str(exc.value)
    assert f"/vsicurl/http://127.0.0.1:{port}/bucket/none.tif" in msg
    assert "remote raster" in msg and "file not found" not in msg


def test_remote_rasters_in_cli_and_pipeline_files(http_root, tmp_path):
    from permafrost.workflows.covariates import align_raster
    from permafrost.grid import grid_of

    root, port = http_root
    src = SAMPLES / "covariates" / "dem.tif"
    (root / "bucket" / "dem.tif").write_bytes(src.read_bytes())
    url = f"/vsicurl/http://127.0.0.1:{port}/bucket/dem.tif"
    grid = grid_of(read_raster(src))
    a = align_raster(Path(url), grid)
    np.testing.assert_array_equal(a.values, read_raster(src).values)
    # a stack file that names remote rasters (not joined to the stack file's folder)
    (tmp_path / "stack.toml").write_text(f'[grid]\nlike = "s3://bucket/dem.tif"\n'
                                         f'[covariates.dem]\npath = "{url}"\n'
                                         '[derived.slope]\nfunction = "slope"\n')
    from permafrost.workflows.covariates import build_stack
    ds = build_stack(tmp_path / "stack.toml")
    np.testing.assert_array_equal(ds["dem"].values, read_raster(src).values.astype("float32"))
    assert np.isfinite(ds["slope"].values).mean() > 0.9
    # the CLI's Path arguments: stats on a remote PZI-like raster in [0, 1]
    pzi = (read_raster(src) - 1000.0).clip(0, 4000) / 4000.0
    write_cog(pzi.astype("float32").rio.write_crs(grid.crs), root / "bucket" / "pzi.tif",
              nodata=np.nan)
    r = runner.invoke(app, ["stats", "s3://bucket/pzi.tif", "--out-json", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "s.json").read_text())["units"][0]["denominator_km2"] > 0
    # pipeline files: remote paths are neither resolved against the file nor checked on disk
    cfg = load_pipeline(_pipeline(tmp_path, f'dem = "{url}"\nmask = "s3://bucket/pzi.tif"\n'
                                  f'boreholes = "{SAMPLES / "boreholes" / "boreholes.csv"}"'))
    from permafrost.io.rasters import gdal_path
    assert gdal_path(cfg.inputs.dem) == url
    assert gdal_path(cfg.inputs.mask) == "s3://bucket/pzi.tif"
