"""Odd names and paths, and inputs that must be checked before any work starts.

Long output names, covariate names XGBoost refuses, prior names that matplotlib would read
as TeX, user names that map to one file name, an output directory inside an input folder;
folders given for files (and a file for a folder), non-finite scenario changes, duplicate
features and tracks, an all-nodata DEM, unnamed regions, an ambiguous stack grid, a FIFO
in a folder to inspect, and the European CSV dialect.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pytest
import rasterio

from .conftest import (NX, NY, ROOT, Outputs, assert_clean_failure, borehole_rows, cell_box,
                       invoke, write_raster)
from .test_labels_inputs import dem  # noqa: F401 - fixture
from .test_pipeline_inputs import _both, pipeline  # noqa: F401 - fixture

DS = (ROOT / "data_samples").as_posix()


# ----------------------------------------------------------------------------- names


def test_predict_to_a_240_character_name(model_dir, make_covariates, tmp_path):
    """A legal name (255 bytes at most) stays legal: the temporary file, the lock and the
    block cache beside it shorten their names instead of exceeding NAME_MAX."""
    d = tmp_path / "out"
    d.mkdir()
    out = d / ("p" * 236 + ".tif")
    zones = d / ("z" * 236 + ".tif")
    res = invoke(["predict", "--model", model_dir, "--covariates", make_covariates(),
                  "--out", out, "--zones", zones, "--device", "cpu", "--threads", "1"])
    assert res.exit_code == 0, res.stderr
    left = sorted(p.name for p in d.iterdir() if not p.name.endswith(".tif.aux.xml"))
    # no lock, block cache or temporary file; the QGIS styles beside the rasters
    assert left == sorted([out.name, zones.name, out.with_suffix(".qml").name,
                           zones.with_suffix(".qml").name])
    with rasterio.open(out) as src:
        assert src.read(1).shape == (NY, NX)


def test_stats_to_a_250_character_name(make_pzi, tmp_path):
    out = tmp_path / ("s" * 245 + ".json")
    res = invoke(["stats", make_pzi(), "--out-json", out])
    assert res.exit_code == 0, res.stderr
    assert json.loads(out.read_text())
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("s")] == [out.name]


@pytest.mark.parametrize("stem", ["ndvi[2019]", "lst<2000"])
def test_train_covariate_name_xgboost_refuses(stem, make_covariates, make_labels, tmp_path):
    cov = make_covariates()
    (cov / "ndvi.tif").rename(cov / f"{stem}.tif")
    out = tmp_path / "model"
    res = invoke(["train", "--labels", make_labels(), "--covariates", cov, "--out", out,
                  "--device", "cpu", "--folds", "2", "--n-estimators", "5", "--no-random-cv",
                  "--block-size", "500"])
    line = assert_clean_failure(res, names=[cov, stem], field="features",
                                outputs=Outputs.take(out))
    assert "rename" in line


def test_train_duplicate_features(make_covariates, make_labels, tmp_path):
    out = tmp_path / "model"
    res = invoke(["train", "--labels", make_labels(), "--covariates", make_covariates(),
                  "--out", out, "--features", "maat,maat,dem", "--device", "cpu", "--folds",
                  "2", "--n-estimators", "5", "--no-random-cv", "--block-size", "500"])
    line = assert_clean_failure(res, names="cov", field="features", outputs=Outputs.take(out))
    assert "maat" in line and "more than once" in line


def _agreement_prior(tmp_path, name="prior.tif"):
    yy, xx = np.mgrid[0:NY, 0:NX]
    return write_raster(tmp_path / name, (xx / (NX - 1)) * 0.9 + 0.05)


@pytest.mark.parametrize("prior_name", ["price $x^$ map", r"cost $\frac{1$ bad TeX"])
def test_report_shows_prior_names_literally(prior_name, make_pzi, tmp_path):
    """Every user string that reaches a figure is text, not TeX."""
    pzi = make_pzi()
    val = tmp_path / "val"
    res = invoke(["validate", pzi, "--prior", f"{prior_name}={_agreement_prior(tmp_path)}"
                  ":continuous:0.5", "--out", val])
    assert res.exit_code == 0, res.stderr
    out = tmp_path / "report.html"
    res = invoke(["report", "--pzi", pzi, "--validation", val, "--out", out])
    assert res.exit_code == 0, res.stderr
    html = out.read_text()
    assert prior_name.replace("&", "&amp;") in html or prior_name in html


def test_validate_prior_names_that_share_a_file_name(make_pzi, tmp_path):
    p1 = _agreement_prior(tmp_path, "a.tif")
    p2 = _agreement_prior(tmp_path, "b.tif")
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"survey map={p1}:continuous:0.5",
                  "--prior", f"survey_map={p2}:continuous:0.5", "--out", out])
    line = assert_clean_failure(res, names=["survey map", "survey_map"], field="--prior",
                                outputs=Outputs.take(out))
    assert "one file" in line


def test_pipeline_prior_names_that_share_a_file_name(pipeline, tmp_path):
    p = pipeline({'name = "PZI prior (biased low)"': 'name = "survey_map (biased high)"'})
    for res in _both(p):
        assert_clean_failure(res, names=[p, "survey_map (biased high)"], field="inputs.priors")
    assert not (tmp_path / "out").exists()


def test_output_dir_inside_an_input_folder(make_covariates, pipeline, tmp_path):
    """An output_dir equal to (or under) the covariates folder would be hashed as an input
    of the next run: never up to date, growing forever."""
    cov = make_covariates("cov_copy")
    before = sorted(os.listdir(cov))
    for out in (cov, cov / "runs"):
        p = pipeline({f'"{ROOT.as_posix()}/pipelines/demo_covariates.toml"': f'"{cov.as_posix()}"',
                      f'output_dir = "{(tmp_path / "out").as_posix()}"':
                      f'output_dir = "{out.as_posix()}"'}, scenarios=False)
        for res in _both(p):
            assert_clean_failure(res, names=[p, "inputs.covariates"], field="pipeline.output_dir")
    assert sorted(os.listdir(cov)) == before


# ----------------------------------------------------------------------------- inputs


FOLDER_FOR_FILE = {
    # key: (replace, field)
    "boreholes": ({"data_samples/boreholes/boreholes.csv\"": "data_samples/boreholes\""},
                  "inputs.boreholes"),
    "mask": ({"data_samples/masks/glaciers_lakes.gpkg\"": "data_samples/masks\""},
             "inputs.mask"),
    "regions": ({"data_samples/regions/basins.gpkg\"": "data_samples/regions\""},
                "inputs.regions.path"),
    "prior": ({"data_samples/priors/survey_map.tif\"": "data_samples/priors\""},
              "inputs.priors[0].path"),
    "dem": ({"data_samples/covariates/dem.tif\"": "data_samples/covariates\""}, "inputs.dem"),
    "inventory": ({"data_samples/inventory/rock_glaciers.gpkg\"": "data_samples/inventory\""},
                  "inputs.inventories[0]"),
    # a track may be a MintPy folder or its velocity file (geocode.py's geo_velocity.h5 too),
    # not a raster of another kind
    "track_is_a_raster": ({"data_samples/insar/asc\"": "data_samples/covariates/dem.tif\""},
                          "inputs.tracks[0]"),
    "same_track_twice": ({"data_samples/insar/desc\"": "data_samples/insar/asc\""},
                         "inputs.tracks[1]"),
}


@pytest.mark.parametrize("case", list(FOLDER_FOR_FILE))
def test_pipeline_input_of_the_wrong_kind(case, pipeline, tmp_path):
    replace, field = FOLDER_FOR_FILE[case]
    p = pipeline(replace)
    for res in _both(p):
        assert_clean_failure(res, names=p, field=field)
    assert not (tmp_path / "out").exists(), "work started on an invalid pipeline"


@pytest.mark.parametrize("change", ["offset = nan", "scale = inf", "offset = -inf"])
def test_scenario_change_that_is_not_finite(change, pipeline, tmp_path):
    p = pipeline(extra=f"\n[scenarios.bad]\ncovariates.maat = {{ {change} }}\n")
    key = change.split(" ")[0]
    for res in _both(p):
        assert_clean_failure(res, names=p, field=f"scenarios.bad.covariates.maat.{key}")
    assert not (tmp_path / "out").exists()


def test_scenario_duplicate_features(pipeline, tmp_path):
    p = pipeline(extra='\n[scenarios.dup]\ntrain = { features = ["maat", "maat", "dem"] }\n')
    for res in _both(p):
        line = assert_clean_failure(res, names=p, field="scenarios.dup.train.features")
        assert "more than once" in line
    assert not (tmp_path / "out").exists()


def test_labels_boreholes_is_a_folder(dem, tmp_path):  # noqa: F811
    d = tmp_path / "boreholes"
    d.mkdir()
    out = tmp_path / "labels.gpkg"
    res = invoke(["labels", "--dem", dem, "--boreholes", d, "--out", out])
    assert_clean_failure(res, names=d, outputs=Outputs.take(out))


def test_kinematics_same_track_twice(make_track, tmp_path):
    t = make_track()
    out = tmp_path / "kin.gpkg"
    res = invoke(["kinematics", "--track", t.folder, "--track", t.folder, "--outlines",
                  t.folder / "outlines.gpkg", "--out", out])
    line = assert_clean_failure(res, names="velocity.h5", field="track",
                                outputs=Outputs.take(out))
    assert "twice" in line


def test_stats_dem_all_nodata(make_pzi, tmp_path):
    dem = write_raster(tmp_path / "dem.tif", np.full((NY, NX), np.nan))
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--dem", dem, "--out-json", out])
    line = assert_clean_failure(res, names=dem, field="--dem", outputs=Outputs.take(out))
    assert "no valid elevation" in line


def test_stats_region_without_a_name(make_pzi, tmp_path):
    reg = tmp_path / "regions.gpkg"
    gpd.GeoDataFrame({"name": ["north", None]}, geometry=[cell_box(5, 5, 20), cell_box(30, 30, 20)],
                     crs="EPSG:4326").to_file(reg, driver="GPKG")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", reg, "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="name", outputs=Outputs.take(out))
    assert "rows [1]" in line


def test_stack_grid_with_like_and_crs(make_covariates, make_labels, tmp_path):
    cov = make_covariates()
    stack = tmp_path / "stack.toml"
    stack.write_text(f'[grid]\nlike = "{(cov / "dem.tif").as_posix()}"\ncrs = "EPSG:32647"\n\n'
                     + "".join(f'[covariates.{k}]\npath = "{(cov / f"{k}.tif").as_posix()}"\n'
                               for k in ("dem", "maat", "pisr", "ndvi")))
    out = tmp_path / "model"
    res = invoke(["train", "--labels", make_labels(), "--covariates", stack, "--out", out,
                  "--device", "cpu", "--folds", "2", "--n-estimators", "5", "--no-random-cv",
                  "--block-size", "500"])
    assert_clean_failure(res, names=stack, field="grid.crs", outputs=Outputs.take(out))


def test_inspect_skips_a_fifo(make_boreholes, tmp_path):
    """Opening a FIFO blocks until someone writes to it: inspect must not open it (a real
    process with a timeout, so that a regression fails instead of hanging the suite)."""
    d = tmp_path / "inputs"
    d.mkdir()
    make_boreholes("inputs/boreholes.csv")
    os.mkfifo(d / "stream.csv")
    res = subprocess.run([sys.executable, "-m", "permafrost", "inspect", str(d), "--json"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert str(d / "stream.csv") in data["skipped"]
    assert [x["path"] for x in data["datasets"]] == [str(d / "boreholes.csv")]


def test_semicolon_csv_with_decimal_commas(make_boreholes, dem, tmp_path):  # noqa: F811
    """The European dialect (``;`` between fields, ``,`` in numbers) reads as the comma
    version does."""
    rows = [r.replace(",", ";").replace(".", ",") for r in borehole_rows()]
    header = "borehole_id;lon;lat;elevation_m;presence;magt_c;year"
    eu = make_boreholes("eu.csv", rows=rows, header=header)
    us = make_boreholes("us.csv")
    outs = {}
    for name, bh in (("eu", eu), ("us", us)):
        out = tmp_path / f"{name}.gpkg"
        res = invoke(["labels", "--dem", dem, "--boreholes", bh, "--out", out])
        assert res.exit_code == 0, res.stderr
        outs[name] = gpd.read_file(out)
    a, b = outs["eu"], outs["us"]
    assert len(a) == len(b) == len(borehole_rows())
    assert np.allclose(a.geometry.x, b.geometry.x) and np.allclose(a.geometry.y, b.geometry.y)
    assert (a["label"].to_numpy() == b["label"].to_numpy()).all()
