"""`permafrost init DIR`: the sample region laid out another way gives a pipeline file that
validates (`permafrost scenarios`) and runs end to end (`permafrost run`)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from pyproj import Transformer
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.config import load_pipeline
from permafrost.workflows.init import choose_blocks

runner = CliRunner()

#: the sample region's files -> where a user might hold them (other folders, other names;
#: the MintPy tracks as MintPy writes them); the truth is not copied
RELAID = {
    "covariates/dem.tif": "terrain/elevation_srtm.tif",
    "covariates/pisr.tif": "terrain/pisr_annual.tif",
    "covariates/ndvi.tif": "ndvi_2020.tif",
    "covariates/landcover.tif": "maps/surface_classes.tif",
    "covariates/maat.tif": "climate/maat_1km.tif",
    "climate/maat_coarse.tif": "climate/era_maat_coarse.tif",
    "climate/elevation_coarse.tif": "climate/era_elevation.tif",
    "boreholes/boreholes.csv": "field/drillholes.csv",
    "boreholes/gtnp_long.csv": "field/gt_records.csv",
    "boreholes/gtnp_metadata.json": "field/gt_meta.json",
    "inventory/rock_glaciers.gpkg": "inventory/rg_outlines.gpkg",
    "masks/glaciers_lakes.gpkg": "admin/ice_water.gpkg",
    "regions/basins.gpkg": "admin/catchments.gpkg",
    "priors/survey_map.tif": "maps/frozen_ground_survey.tif",
    "priors/pzi_prior.tif": "maps/pzi_prior.tif",
    "insar/asc": "sar/T99_asc",
    "insar/desc": "sar/T172_desc",
}


def _relay(sample_dir: Path, dest: Path) -> Path:
    for src, dst in RELAID.items():
        target = dest / dst
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (sample_dir / src).is_dir() else shutil.copy2)(sample_dir / src, target)
    return dest


@pytest.fixture(scope="module")
def drafted(sample_dir, tmp_path_factory):
    """The relaid region, and `permafrost init` run on it from a working folder."""
    root = tmp_path_factory.mktemp("init")
    data = _relay(sample_dir, root / "my region")
    work = root / "work"
    work.mkdir()
    out = work / "qilian_draft.toml"
    res = runner.invoke(app, ["init", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    # init runs the draft through the checks made before any run (pipeline/preflight.py)
    assert "passes the checks made before any work" in res.output, res.output
    return data, out, res.output


def test_init_gives_each_input_its_role(drafted):
    data, out, _ = drafted
    stack = out.with_name("qilian_draft_covariates.toml")
    cfg = load_pipeline(out)  # the schema's own validation
    raw = tomllib.loads(out.read_text())
    inp = cfg.inputs
    assert inp.covariates == stack.resolve()
    assert inp.dem == (data / "terrain/elevation_srtm.tif").resolve()
    assert sorted(p.name for p in inp.tracks) == ["T172_desc", "T99_asc"]
    assert inp.inventories == [(data / "inventory/rg_outlines.gpkg").resolve()]
    assert inp.boreholes == (data / "field/drillholes.csv").resolve()
    assert inp.borehole_columns.presence == "presence" and inp.borehole_columns.magt == "magt_c"
    assert inp.gtnp.csv.name == "gt_records.csv" and inp.gtnp.metadata.name == "gt_meta.json"
    assert inp.mask.name == "ice_water.gpkg"
    assert inp.regions.path.name == "catchments.gpkg" and inp.regions.field == "name"
    assert inp.landcover.name == "surface_classes.tif"
    priors = {p.path.name: p for p in inp.priors}
    assert priors["pzi_prior.tif"].kind == "continuous"
    survey = priors["frozen_ground_survey.tif"]  # classes 1=permafrost;2=seasonally frozen
    assert (survey.kind, survey.permafrost_codes, survey.other_codes) == ("categorical", [1], [2])
    assert cfg.labels.activity_column == "activity" and cfg.labels.use_kinematics
    # MAAT warming scenarios, physical method
    assert {n: s.covariates["maat"].offset for n, s in cfg.scenarios.items()} == {
        "plus1": 1.0, "plus2": 2.0, "plus4": 4.0}
    assert cfg.scenario_method.method == "physical"
    # the stack: the fine MAAT is a covariate, elevation is not a feature, the coarse
    # climate grids are not covariates, land cover is categorical
    st = tomllib.loads(stack.read_text())
    assert st["grid"]["like"].endswith("terrain/elevation_srtm.tif")
    assert st["covariates"]["dem"]["use"] is False
    assert st["covariates"]["maat"]["path"].endswith("climate/maat_1km.tif")
    assert st["covariates"]["landcover"]["kind"] == "categorical"
    paths = " ".join(c["path"] for c in st["covariates"].values())
    assert "era_" not in paths and "prior" not in paths and "survey" not in paths
    # nothing written into the data folder; the output folder lies outside it
    assert not list(data.rglob("*.toml"))
    assert data.resolve() not in cfg.pipeline.output_dir.resolve().parents
    # block size: the largest round side whose blocks hold each source's evidence in
    # 3 x folds blocks, with the reasoning as a comment
    assert raw["train"]["folds"] == 5
    assert raw["train"]["block_size_m"] == 2000
    assert "# Spatial-CV blocks: 2 km" in out.read_text()


def test_init_blocks_fit_the_evidence_with_the_package_rule(drafted):
    """Recount the chosen side's blocks from the labels' own points with cv.block_ids."""
    from permafrost.cv import block_ids, metric_xy
    from permafrost.io.boreholes import read_presence_table
    from permafrost.io.vectors import read_vector

    data, out, _ = drafted
    cfg = load_pipeline(out)
    side, folds = cfg.train.block_size_m, cfg.train.folds
    inv = read_vector(data / "inventory/rg_outlines.gpkg").representative_point()
    bh = read_presence_table(data / "field/drillholes.csv").geometry
    for pts in (inv, bh):
        mx, my = metric_xy(pts.x.to_numpy(), pts.y.to_numpy(), "EPSG:4326")
        assert len(np.unique(block_ids(mx, my, side))) >= 3 * folds
    # the next larger candidate would leave the boreholes fewer than 3 x folds blocks
    mx, my = metric_xy(bh.x.to_numpy(), bh.y.to_numpy(), "EPSG:4326")
    assert len(np.unique(block_ids(mx, my, 5000.0))) < 3 * folds


@pytest.mark.slow
def test_init_then_scenarios_then_run(drafted):
    _, out, _ = drafted
    res = runner.invoke(app, ["scenarios", str(out), "--json"])
    assert res.exit_code == 0, res.output
    assert "plus2" in res.output
    # the smallest run that exercises the chain: the baseline and one scenario
    res = runner.invoke(app, ["run", str(out), "-s", "plus2"])
    assert res.exit_code == 0, res.output
    cfg = load_pipeline(out)
    run = cfg.pipeline.output_dir
    for f in ("baseline/pzi.tif", "baseline/stats.json", "baseline/validation.json",
              "plus2/pzi.tif", "report.html"):
        assert (run / f).is_file(), f
    assert "kinematics" in res.output and "validate" in res.output


def test_init_never_overwrites(sample_dir, tmp_path):
    data = _relay(sample_dir, tmp_path / "d")
    out = tmp_path / "p.toml"
    out.write_text("# mine\n")
    res = runner.invoke(app, ["init", str(data), "--out", str(out)])
    assert res.exit_code == 2
    assert "never overwrites" in res.output and len(res.output.strip().splitlines()) == 1
    assert out.read_text() == "# mine\n"
    assert not (tmp_path / "p_covariates.toml").exists()
    # the stack file's name taken: refused too, the pipeline file not written
    out2 = tmp_path / "q.toml"
    (tmp_path / "q_covariates.toml").write_text("# mine\n")
    res = runner.invoke(app, ["init", str(data), "--out", str(out2)])
    assert res.exit_code == 2 and not out2.exists()
    assert (tmp_path / "q_covariates.toml").read_text() == "# mine\n"


def test_init_default_output_not_inside_the_data(sample_dir, tmp_path, monkeypatch):
    data = tmp_path / "d"
    data.mkdir()
    shutil.copy2(sample_dir / "boreholes/boreholes.csv", data / "b.csv")
    monkeypatch.chdir(data)
    res = runner.invoke(app, ["init", str(data)])
    assert res.exit_code == 2 and "inside the data folder" in res.output
    assert sorted(p.name for p in data.iterdir()) == ["b.csv"]


def test_init_without_evidence_is_one_line(sample_dir, tmp_path):
    data = tmp_path / "d"
    data.mkdir()
    shutil.copy2(sample_dir / "covariates/dem.tif", data / "dem.tif")
    res = runner.invoke(app, ["init", str(data), "--out", str(tmp_path / "p.toml")])
    assert res.exit_code == 2 and "no evidence" in res.output
    assert not (tmp_path / "p.toml").exists() and not (tmp_path / "p_covariates.toml").exists()


def _lonlat(x, y):
    """Ground metres around (10 E, 46 N) -> lon/lat."""
    t = Transformer.from_crs("+proj=aeqd +lat_0=46 +lon_0=10 +datum=WGS84 +units=m",
                             "EPSG:4326", always_xy=True)
    return np.column_stack(t.transform(np.asarray(x, float), np.asarray(y, float)))


def test_choose_blocks_analytic():
    """A 10 x 10 lattice 900 m apart spans 8.1 km: 5 km blocks make 2 x 2 = 4 blocks,
    2 km blocks 5 x 5 = 25 >= 3 x 5 folds, so 2 km and 5 folds."""
    k = np.arange(10) * 900.0
    gx, gy = np.meshgrid(k, k)
    grid = _lonlat(gx.ravel(), gy.ravel())
    side, folds, why = choose_blocks({"inventory": grid})
    assert (side, folds) == (2000.0, 5)
    assert "25 in all" in why
    # a second source of 4 x 4 points 600 m apart (offset 100 m): 16 blocks only at
    # 500 m, 4 at 1 km, 1 at 2 km; each source must fill 15 blocks on its own
    j = 100.0 + np.arange(4) * 600.0
    hx, hy = np.meshgrid(j, j)
    side, folds, why = choose_blocks({"inventory": grid, "boreholes": _lonlat(hx.ravel(), hy.ravel())})
    assert (side, folds) == (500.0, 5)
    assert "boreholes 16" in why and "each evidence source" in why
    # too few points for 3 x 3 blocks at any side: left to the auto rule
    side, folds, why = choose_blocks({"inventory": grid[:5]})
    assert side is None and "auto rule" in why
    assert choose_blocks({})[0] is None


def _era5_like(path: Path) -> None:
    """Monthly 2 m temperature [K] on a 0.1 deg grid over the sample region, exactly linear
    in the cells' elevation (``hgt`` [m]): T = 12 - 0.0055 z + a seasonal cycle."""
    import pandas as pd
    import xarray as xr

    time = pd.date_range("2000-01-01", "2003-12-01", freq="MS")
    lat = np.array([38.7, 38.6, 38.5, 38.4, 38.3])
    lon = np.array([98.8, 98.9, 99.0, 99.1, 99.2, 99.3])
    z = 3000.0 + 250.0 * (np.arange(30, dtype=float).reshape(5, 6) % 7)
    season = 8.0 * np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12.0)
    t = 12.0 - 0.0055 * z[None] + season[:, None, None] + 273.15
    ds = xr.Dataset({"t2m": (("time", "latitude", "longitude"), t, {"units": "K"}),
                     "hgt": (("latitude", "longitude"), z, {"units": "m"})},
                    coords={"time": time,
                            "latitude": ("latitude", lat, {"units": "degrees_north"}),
                            "longitude": ("longitude", lon, {"units": "degrees_east"})})
    ds.to_netcdf(path, engine="h5netcdf", encoding={"time": {"units": "days since 1900-01-01"}})


def test_init_downscales_netcdf_climate_without_a_maat_raster(sample_dir, tmp_path):
    """No MAAT raster, an ERA5-like NetCDF: the drafted stack downscales it to the DEM
    (downscale_maat, fitted lapse rate), and the result is the analytic MAAT."""
    import pandas as pd

    from permafrost.io.rasters import read_raster
    from permafrost.workflows.covariates import build_stack

    data = tmp_path / "d"
    (data / "era5").mkdir(parents=True)
    shutil.copy2(sample_dir / "covariates/dem.tif", data / "dem.tif")
    shutil.copy2(sample_dir / "boreholes/boreholes.csv", data / "bh.csv")
    _era5_like(data / "era5" / "t2m_monthly.nc")
    out = tmp_path / "p.toml"
    res = runner.invoke(app, ["init", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    stack = tmp_path / "p_covariates.toml"
    st = tomllib.loads(stack.read_text())
    assert st["derived"]["maat"]["function"] == "downscale_maat"
    assert st["derived"]["maat"]["coarse"].endswith("era5/t2m_monthly.nc")
    assert st["derived"]["maat"]["variable"] == "t2m"
    assert "# DECIDE: the climate period" in stack.read_text()
    # the MAAT is downscaled from the DEM: elevation is not a feature (collinear)
    assert st["covariates"]["dem"]["use"] is False
    cfg = load_pipeline(out)
    assert set(cfg.scenarios) == {"plus1", "plus2", "plus4"}
    maat = build_stack(stack)["maat"].values
    z = read_raster(data / "dem.tif").values
    time = pd.date_range("2000-01-01", "2003-12-01", freq="MS")
    w = time.days_in_month.to_numpy().astype(float)
    season = np.sum(w * 8.0 * np.cos(2 * np.pi * (time.month.to_numpy() - 7) / 12.0)) / w.sum()
    np.testing.assert_allclose(maat, 12.0 - 0.0055 * z + season, atol=2e-3)


def test_init_pairs_the_coarse_climate_grids_without_a_maat_raster(sample_dir, tmp_path):
    """Without the fine MAAT, the coarse MAAT and its cell elevations (GeoTIFFs, other
    names) are paired into downscale_maat; the result is the generator's MAAT (bilinear
    coarse MAAT + -6.0 degC/km x (DEM - bilinear coarse elevation), data_samples/README.md)
    up to the fitted lapse rate and the outer half cells (held constant there, linear in
    the generator)."""
    from permafrost.io.rasters import read_raster
    from permafrost.workflows.covariates import build_stack

    data = tmp_path / "d"
    for src, dst in (("covariates/dem.tif", "terrain/elevation_srtm.tif"),
                     ("climate/maat_coarse.tif", "climate/era_maat_coarse.tif"),
                     ("climate/elevation_coarse.tif", "climate/era_elevation.tif"),
                     ("inventory/rock_glaciers.gpkg", "inventory/rg_outlines.gpkg")):
        (data / dst).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(sample_dir / src, data / dst)
    out = tmp_path / "p.toml"
    res = runner.invoke(app, ["init", str(data), "--out", str(out)])
    assert res.exit_code == 0, res.output
    stack = tmp_path / "p_covariates.toml"
    d = tomllib.loads(stack.read_text())["derived"]["maat"]
    assert d["coarse"].endswith("era_maat_coarse.tif")
    assert d["coarse_elevation"].endswith("era_elevation.tif")
    load_pipeline(out)
    maat = build_stack(stack)["maat"].values
    truth = read_raster(sample_dir / "covariates/maat.tif").values
    err = np.abs(maat - truth)
    # measured: the fitted rate -5.82 degC/km; median 0.03 degC; inside the outer half
    # cells (45 px) at most 0.15 degC (0.18 degC/km x up to ~800 m off the cell elevation)
    assert np.nanmedian(err) < 0.05
    assert np.nanmax(err[45:-45, 45:-45]) < 0.2 and np.nanmax(err) < 0.5


def test_init_reads_xy_boreholes_in_the_projected_dem_crs(tmp_path):
    """A table with x/y columns and no CRS: read in the projected DEM's CRS, said so in a
    DECIDE comment; the pipeline names the CRS and validates."""
    from factories import write_raster
    from rasterio.transform import from_origin

    data = tmp_path / "d"
    x0, y0, res = 500_000.0, 4_300_000.0, 30.0
    yy, xx = np.mgrid[0:200, 0:240]
    write_raster(data / "dem_utm.tif", 3000.0 + 2.0 * yy + 1.0 * xx, crs="EPSG:32647",
                 transform=from_origin(x0, y0, res, res))
    rows = [f"B{i},{x0 + 300 + 430 * i:.1f},{y0 - 300 - 260 * i:.1f},{i % 2}" for i in range(12)]
    (data / "holes.csv").write_text("id,easting,northing,permafrost\n" + "\n".join(rows) + "\n")
    out = tmp_path / "p.toml"
    res_ = runner.invoke(app, ["init", str(data), "--out", str(out)])
    assert res_.exit_code == 0, res_.output
    text = out.read_text()
    assert "# DECIDE: x/y columns read in the DEM's CRS (EPSG:32647)" in text
    cfg = load_pipeline(out)
    assert cfg.inputs.borehole_crs == "EPSG:32647"
    assert cfg.inputs.borehole_columns.x == "easting"
    assert cfg.inputs.borehole_columns.presence == "permafrost"
    # 12 boreholes on a diagonal 430 m east and 260 m south apart: in 1 km blocks 6 hold
    # one (< 3 x 3), in 500 m blocks 11 (>= 3 x 3 folds, < 3 x 4): 500 m and 3 folds
    train = tomllib.loads(text)["train"]
    assert (train["block_size_m"], train["folds"]) == (500.0, 3)
    assert "11 in all" in text
