"""Benchmark: `permafrost predict` with its applicability check, two passes against one.

Builds a region of ``--size`` x ``--size`` cells (30 m, UTM, so every cell has its own area
on the ellipsoid): a DEM, a MAAT grid and a land-cover map as DEFLATE-tiled GeoTIFFs and a
stack file that derives slope, northness, TPI and PISR from the DEM; an XGBoost model of
the stack's features (``--trees`` trees of depth 4, isotonic calibration) with its training
ranges and ``--labels`` labels recorded as `permafrost train` records them.  Then, in this
one process, alternately (``--repeat`` times each, the best kept):

* ``two_pass``: :func:`permafrost.workflows.predict.predict_raster` (PZI + zones) and then
  :func:`permafrost.workflows.applicability.applicability_from_files` (extrapolation map,
  label support map and statistics), which reopens the stack and derives it again: the
  command before issue 24;
* ``one_pass``: :func:`permafrost.workflows.applicability.predict_with_applicability`, the
  same outputs from one pass (what `permafrost predict` and the pipeline run now);
* ``predict_only`` (with ``--predict-only``): ``predict_raster`` alone, no check: what the
  check still costs in one pass is ``one_pass`` minus it.

It prints one JSON document: per variant the CPU seconds of this process (all its threads)
per Mpx and the wall seconds, the ratio two-pass / one-pass of both, and whether the
outputs agree (applicability.json equal, the maps byte for byte).

    uv run python benchmarks/onepass.py --size 2048
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

FEATURES = ["maat", "slope", "northness", "tpi", "pisr"]


def make_region(d: Path, size: int, *, seed: int = 0) -> Path:
    """DEM [m], MAAT [°C] and land cover on a 30 m UTM grid, and the stack file."""
    d.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype("float32")
    dem = (3500 + 900 * np.sin(xx / 211.0) * np.cos(yy / 157.0)
           + 300 * np.sin(xx / 37.0 + yy / 53.0) + rng.normal(0, 3, (size, size)))
    maat = 20.0 - 0.0065 * dem + rng.normal(0, 0.2, (size, size))
    lc = (1 + (np.floor(xx / 97) + np.floor(yy / 131)) % 4).astype("uint8")
    prof = dict(driver="GTiff", width=size, height=size, count=1, crs="EPSG:32646",
                transform=from_origin(400_000, 3_900_000, 30, 30), tiled=True,
                blockxsize=512, blockysize=512, compress="DEFLATE")
    for name, arr, dt, nd in (("dem", dem, "float32", -9999.0), ("maat", maat, "float32",
                                                                  -9999.0),
                              ("landcover", lc, "uint8", 255)):
        with rasterio.open(d / f"{name}.tif", "w", dtype=dt, nodata=nd, **prof) as w:
            w.write(arr.astype(dt), 1)
            if name == "landcover":
                w.update_tags(classes="1=bedrock;2=coarse debris;3=fine debris;4=meadow")
    (d / "stack.toml").write_text(
        '[covariates.dem]\npath = "dem.tif"\nuse = false\n\n'
        '[covariates.maat]\npath = "maat.tif"\n\n'
        '[derived.slope]\nfunction = "slope"\ndem = "dem"\n\n'
        '[derived.northness]\nfunction = "northness"\ndem = "dem"\n\n'
        '[derived.tpi]\nfunction = "tpi"\ndem = "dem"\nradius_m = 300\n\n'
        '[derived.pisr]\nfunction = "pisr"\ndem = "dem"\n')
    return d / "stack.toml"


def make_model(d: Path, stack: Path, *, n_labels: int, trees: int, seed: int = 0) -> Path:
    """An XGBoost model with training ranges and labels (west two thirds of the region)."""
    import geopandas as gpd
    import xgboost as xgb

    from permafrost.calibration import fit_calibration
    from permafrost.io.model import save_model
    from permafrost.pzi_model import BoosterPredictor, PZIModel
    from permafrost.workflows.covariates import build_stack

    ds = build_stack(stack, chunks=512)
    ny, nx = ds.rio.height, ds.rio.width
    rng = np.random.default_rng(seed)
    rows, cols = rng.integers(0, ny, n_labels), rng.integers(0, (2 * nx) // 3, n_labels)
    from permafrost.grid import sample_at_points

    xs, ys = ds["x"].values[cols], ds["y"].values[rows]
    X, _ = sample_at_points(ds[FEATURES], xs, ys, crs=ds.rio.crs)
    ok = np.isfinite(X).all(axis=1)
    X, xs, ys = X[ok], xs[ok], ys[ok]
    y = (X[:, 0] + rng.normal(0, 0.7, len(X)) < -2.5).astype(int)
    booster = xgb.train({"max_depth": 4, "eta": 0.1, "objective": "binary:logistic",
                         "seed": seed, "nthread": 1}, xgb.DMatrix(X, y), trees)
    pred = BoosterPredictor(booster)
    model = PZIModel(predictor=pred, calibration=fit_calibration(pred.predict(X), y,
                                                                 method="isotonic"),
                     feature_names=FEATURES, metadata={})
    mdir = save_model(model, d / "model")
    src = np.where(np.arange(len(X)) % 3 == 0, "borehole", "rock_glacier")
    gpd.GeoDataFrame({"source": src, "label": y}, geometry=gpd.points_from_xy(xs, ys),
                     crs=ds.rio.crs).to_file(mdir / "labels.gpkg")
    meta = json.loads((mdir / "metadata.json").read_text())
    meta.update(model_kind="xgboost", inputs={"labels": "labels.gpkg"},
                training={"ranges": {f: [float(X[:, j].min()), float(X[:, j].max())]
                                     for j, f in enumerate(FEATURES)}})
    (mdir / "metadata.json").write_text(json.dumps(meta))
    return mdir


def two_pass(model, stack, out: Path, chunk: int, threads: int | None):
    from permafrost.workflows.applicability import applicability_from_files
    from permafrost.workflows.predict import predict_raster

    predict_raster(model, stack, out / "pzi.tif", zones=out / "zones.tif", chunk=chunk,
                   threads=threads)
    app = applicability_from_files(model, stack, out / "pzi.tif", chunk=chunk,
                                   out_map=out / "extrapolation.tif",
                                   landcover=stack.parent / "landcover.tif",
                                   out_support=out / "support.tif")
    return json.loads(json.dumps(app.as_dict()))


def one_pass(model, stack, out: Path, chunk: int, threads: int | None):
    from permafrost.workflows.applicability import predict_with_applicability

    _res, app = predict_with_applicability(
        model, stack, out / "pzi.tif", zones=out / "zones.tif", chunk=chunk, threads=threads,
        out_map=out / "extrapolation.tif", landcover=stack.parent / "landcover.tif",
        out_support=out / "support.tif")
    return json.loads(json.dumps(app.as_dict()))


def predict_only(model, stack, out: Path, chunk: int, threads: int | None):
    from permafrost.workflows.predict import predict_raster

    predict_raster(model, stack, out / "pzi.tif", zones=out / "zones.tif", chunk=chunk,
                   threads=threads)
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--labels", type=int, default=2000)
    ap.add_argument("--trees", type=int, default=400)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--predict-only", action="store_true",
                    help="also time the prediction without any check")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="pf-onepass-")
    d = a.workdir or Path(tmp.name)
    stack = make_region(d / "region", a.size)
    model = make_model(d, stack, n_labels=a.labels, trees=a.trees)
    mpx = a.size * a.size / 1e6
    best: dict[str, dict] = {}
    results = {}
    for _ in range(a.repeat):
        variants = [("two_pass", two_pass), ("one_pass", one_pass)]
        if a.predict_only:
            variants.append(("predict_only", predict_only))
        for name, fn in variants:
            out = d / name
            out.mkdir(exist_ok=True)
            c0, w0 = time.process_time(), time.perf_counter()
            results[name] = fn(model, stack, out, a.chunk, a.threads)
            cpu, wall = time.process_time() - c0, time.perf_counter() - w0
            if name not in best or cpu < best[name]["cpu_s"]:
                best[name] = {"cpu_s": round(cpu, 2), "wall_s": round(wall, 2),
                              "cpu_s_per_mpx": round(cpu / mpx, 3)}
    same_maps = all((d / "two_pass" / f).read_bytes() == (d / "one_pass" / f).read_bytes()
                    for f in ("pzi.tif", "zones.tif", "extrapolation.tif", "support.tif"))
    print(json.dumps({
        "size": a.size, "mpx": round(mpx, 3), "chunk": a.chunk, "trees": a.trees,
        "labels": a.labels, "features": FEATURES, "machine": platform.machine(),
        **best,
        "ratio_cpu": round(best["two_pass"]["cpu_s"] / best["one_pass"]["cpu_s"], 2),
        "ratio_wall": round(best["two_pass"]["wall_s"] / best["one_pass"]["wall_s"], 2),
        "applicability_equal": results["two_pass"] == results["one_pass"],
        "maps_byte_identical": same_maps,
    }, indent=2))


if __name__ == "__main__":
    main()
