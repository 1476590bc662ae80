"""Issue 24, item 1: one pass over the map.  ``permafrost predict`` computes the PZI and its
applicability check (extrapolation bits and statistics, label support) in the same block
tasks (permafrost.workflows.applicability.predict_with_applicability): the results are the
two-pass check's (:func:`applicability_from_files` on the written PZI) bit for bit, the
maps byte for byte, and the stack's derived covariates are computed once per block."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from factories import ROOT
from rasterio.transform import from_origin

from permafrost.io.model import save_model
from permafrost.workflows.applicability import (
    applicability_from_files,
    predict_with_applicability,
)
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.predict import predict_raster

SAMPLES = ROOT / "data_samples" / "covariates"
FEATURES = ["maat", "pisr", "ndvi", "tpi"]


def _stack_file(d: Path, *, utm: bool) -> Path:
    """The demo's stack file (tpi derived from the DEM) over the sample rasters; with
    ``utm`` the same arrays on a 30 m UTM grid (projected: cell areas vary per cell)."""
    d.mkdir(parents=True, exist_ok=True)
    names = ["dem", "maat", "pisr", "ndvi", "landcover"]
    for n in names:
        src = SAMPLES / f"{n}.tif"
        if not utm:
            shutil.copy(src, d / src.name)
            continue
        with rasterio.open(src) as r:
            prof = r.profile.copy()
            prof.update(crs="EPSG:32647", transform=from_origin(500_000, 4_300_000, 30, 30))
            with rasterio.open(d / src.name, "w", **prof) as w:
                w.write(r.read())
                w.update_tags(**r.tags())
    text = "".join(f'[covariates.{n}]\npath = "{n}.tif"\n'
                   + ('use = false\n' if n == "dem" else "")
                   + ('kind = "categorical"\n' if n == "landcover" else "") + "\n"
                   for n in names if n != "landcover")
    text += '[derived.tpi]\nfunction = "tpi"\ndem = "dem"\nradius_m = 300\n'
    p = d / "stack.toml"
    p.write_text(text)
    return p


def _model(d: Path, stack: Path) -> Path:
    """An XGBoost model of the stack's features, its training ranges and labels recorded
    as `permafrost train` records them: labels at 400 cells (rock glacier fronts and
    boreholes), permafrost where MAAT is below -2 °C."""
    import xgboost as xgb

    from permafrost.calibration import fit_calibration
    from permafrost.pzi_model import BoosterPredictor, PZIModel

    ds = build_stack(stack, chunks=None)
    ny, nx = ds.rio.height, ds.rio.width
    rng = np.random.default_rng(1)
    # labels in the west two thirds only: the east is beyond their ranges, or unsupported
    rows, cols = rng.integers(0, ny, 400), rng.integers(0, (2 * nx) // 3, 400)
    X = np.stack([ds[f].values[rows, cols] for f in FEATURES], axis=1).astype("float64")
    ok = np.isfinite(X).all(axis=1)
    rows, cols, X = rows[ok], cols[ok], X[ok]
    y = (X[:, 0] < -2).astype(int)
    booster = xgb.train({"max_depth": 3, "eta": 0.3, "objective": "binary:logistic",
                         "seed": 0, "nthread": 1}, xgb.DMatrix(X, y), 10)
    pred = BoosterPredictor(booster)
    model = PZIModel(predictor=pred, calibration=fit_calibration(pred.predict(X), y,
                                                                 method="isotonic"),
                     feature_names=FEATURES, metadata={})
    mdir = save_model(model, d / "model")
    xs, ys = ds["x"].values[cols], ds["y"].values[rows]
    src = np.where(np.arange(len(rows)) % 3 == 0, "borehole", "rock_glacier")
    gpd.GeoDataFrame({"source": src, "label": y}, geometry=gpd.points_from_xy(xs, ys),
                     crs=ds.rio.crs).to_file(mdir / "labels.gpkg")
    meta_path = mdir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["model_kind"] = "xgboost"
    meta["inputs"] = {"labels": "labels.gpkg"}
    meta["training"] = {"ranges": {f: [float(X[:, j].min()), float(X[:, j].max())]
                                   for j, f in enumerate(FEATURES)}}
    meta_path.write_text(json.dumps(meta))
    return mdir


# the UTM grid's cell areas cost pyproj calls per cell: that variant is the slow one
@pytest.fixture(scope="module", params=["geographic",
                                        pytest.param("utm", marks=pytest.mark.slow)])
def region(request, tmp_path_factory):
    d = tmp_path_factory.mktemp(f"onepass-{request.param}")
    stack = _stack_file(d / "cov", utm=request.param == "utm")
    return d, stack, _model(d, stack)


_TWO_PASS: dict = {}


def _two_pass_once(d: Path, stack: Path, model: Path) -> tuple[dict, Path]:
    """The two-pass reference of a region, computed once per module."""
    if d not in _TWO_PASS:
        _TWO_PASS[d] = _two_pass(d, stack, model, chunk=128)
    return _TWO_PASS[d]


def _two_pass(d: Path, stack: Path, model: Path, chunk: int) -> tuple[dict, Path]:
    out = d / "two"
    out.mkdir(exist_ok=True)
    predict_raster(model, stack, out / "pzi.tif", zones=out / "zones.tif", chunk=chunk)
    app = applicability_from_files(model, stack, out / "pzi.tif", chunk=chunk,
                                   out_map=out / "extrapolation.tif",
                                   landcover=_landcover(stack),
                                   out_support=out / "support.tif")
    return json.loads(json.dumps(app.as_dict())), out


def _landcover(stack: Path) -> Path:
    return stack.parent / "landcover.tif"


def _one_pass(d: Path, stack: Path, model: Path, chunk: int) -> tuple[dict, Path]:
    out = d / "one"
    out.mkdir(exist_ok=True)
    _res, app = predict_with_applicability(
        model, stack, out / "pzi.tif", zones=out / "zones.tif", chunk=chunk,
        out_map=out / "extrapolation.tif", landcover=_landcover(stack),
        out_support=out / "support.tif", out_json=out / "applicability.json")
    written = json.loads((out / "applicability.json").read_text())
    assert written == json.loads(json.dumps(app.as_dict()))
    return written, out


def test_one_pass_equals_two_pass_bit_for_bit(region):
    """Same statistics to the last bit (the same reductions over the same row stripes of
    the same cell values and areas), same bytes of every map; the check is not empty."""
    d, stack, model = region
    two, a = _two_pass_once(d, stack, model)
    one, b = _one_pass(d, stack, model, chunk=128)
    assert one == two
    for name in ("pzi.tif", "zones.tif", "extrapolation.tif", "support.tif"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ext, sup = one["extrapolation"], one["support"]
    assert 0 < ext["outside_share"] < 1 and ext["denominator_km2"] > 0
    assert sup["surface"] is not None and 0 < sup["unsupported_share"] < 1
    assert sum(sup["sources"].values()) == sup["n_labels"] > 300
    assert not list(b.glob(".*pfblocks*"))  # the cache is gone


def test_the_stack_is_derived_once_per_block(region, monkeypatch):
    """The derived covariate (tpi) is computed once per block in one pass; the two-pass
    check computed it again (more than once per block: its row stripes, the labels)."""
    import permafrost.terrain as terrain

    d, stack, model = region
    calls = []
    real = terrain.tpi

    def counting(z, *a, **k):
        if np.asarray(z).size > 1:  # not Dask's meta probes
            calls.append(np.asarray(z).shape)
        return real(z, *a, **k)

    monkeypatch.setattr(terrain, "tpi", counting)
    chunk = 128
    ds = build_stack(stack, chunks=chunk)
    blocks = len(ds[FEATURES[0]].chunks[0]) * len(ds[FEATURES[0]].chunks[1])
    out = d / "count"
    out.mkdir(exist_ok=True)
    predict_with_applicability(model, stack, out / "pzi.tif", chunk=chunk,
                               out_map=out / "extrapolation.tif", landcover=_landcover(stack),
                               out_support=out / "support.tif")
    assert len(calls) == blocks
    calls.clear()
    predict_raster(model, stack, out / "pzi2.tif", chunk=chunk)
    applicability_from_files(model, stack, out / "pzi2.tif", chunk=chunk,
                             landcover=_landcover(stack))
    assert len(calls) > 2 * blocks


def test_a_resumed_run_reuses_the_blocks_check_layers(region, monkeypatch):
    """A run killed after its blocks (here: the writing phase fails) leaves them in the
    cache with their check layers; the rerun derives nothing and gives the same check."""
    import permafrost.terrain as terrain
    import permafrost.workflows.predict as wp

    d, stack, model = region
    out = d / "resume"
    out.mkdir(exist_ok=True)
    kw = dict(chunk=128, out_map=out / "extrapolation.tif", landcover=_landcover(stack),
              out_support=out / "support.tif", out_json=out / "applicability.json")
    real_write = wp.write_layer_cog

    def fail(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(wp, "write_layer_cog", fail)
    with pytest.raises(KeyboardInterrupt):
        predict_with_applicability(model, stack, out / "pzi.tif", **kw)
    monkeypatch.setattr(wp, "write_layer_cog", real_write)
    calls = []
    real = terrain.tpi
    monkeypatch.setattr(terrain, "tpi", lambda z, *a, **k: (calls.append(1) if np.asarray(
        z).size > 1 else None, real(z, *a, **k))[1])
    res, _app = predict_with_applicability(model, stack, out / "pzi.tif", **kw)
    assert res.blocks_reused == res.blocks and not calls
    got = json.loads((out / "applicability.json").read_text())
    two, a = _two_pass_once(d, stack, model)
    assert got == two
    assert (out / "extrapolation.tif").read_bytes() == (a / "extrapolation.tif").read_bytes()


def test_cli_writes_applicability_json_as_the_pipeline_does(region):
    """`permafrost predict --applicability` writes the check by the pipeline's call: the
    body equals the two-pass check and what `--json` prints."""
    from typer.testing import CliRunner

    from permafrost.cli import app

    d, stack, model = region
    out = d / "cli"
    r = CliRunner().invoke(app, ["predict", "--model", str(model), "--covariates", str(stack),
                                 "--out", str(out / "pzi.tif"), "--chunk", "128",
                                 "--landcover", str(_landcover(stack)),
                                 "--applicability", str(out / "applicability.json"), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads((out / "applicability.json").read_text())
    assert got == json.loads(r.stdout)["applicability"]
    two, _ = _two_pass_once(d, stack, model)
    # the two-pass reference wrote its support map: only that file name differs
    assert got["support"].pop("map", None) is None
    assert got == {**two, "support": {k: v for k, v in two["support"].items() if k != "map"}}
