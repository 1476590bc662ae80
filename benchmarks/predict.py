"""Benchmark: end-to-end speed and peak memory of `permafrost predict` against its ceiling.

Generates a covariate stack on disk (``--size`` x ``--size`` pixels, ``--covariates``
float32 DEFLATE-tiled GeoTIFFs, written strip by strip) and a model of the shape
`permafrost train` makes (XGBoost, 400 trees of depth 4 by default, isotonic calibration,
5 fold models), then prints one JSON document with:

* ``end_to_end``: pixels/s of ``permafrost predict`` (the CLI, all pixels of the grid, from
  reading the covariates to the finished COG) and its peak RSS (VmHWM of that process);
* ``ceiling``: pixels/s of the same model's ``inplace_predict`` on an in-memory array of the
  same size (the time of that call alone, after a warm-up), its CPU-s per Mpx
  (``time.process_time``: all threads) and that process's peak RSS;
* ``compiled``: the same for the compiled trees (:mod:`permafrost.compiled_trees`, the
  default CPU path with the ``fast`` extra), its CPU-s/Mpx against the ceiling's in the same run
  (``compiled_speedup_cpu_s``: ceiling CPU-s / compiled CPU-s) and whether the two gave the
  same probabilities bit for bit;
* ``ratio``: end-to-end / ceiling (each the best of ``--repeat`` alternating runs);
  ``end_to_end_cpu`` runs the compiled path, ``end_to_end_cpu_xgboost`` the same
  command with ``PERMAFROST_COMPILED_TREES=0``; both with CPU-s/Mpx, and whether their COGs
  are byte-identical;
* ``cluster``: pixels/s on a local Dask cluster of 1 and 2 workers and their ratio;
* ``gpu``: the same on the GPU (ceiling with a CuPy array, end-to-end with ``--device
  cuda``) when CuPy and a GPU are present, else the reason it was skipped.

Each measured run is its own process, so peak memories do not mix.

    uv run python benchmarks/predict.py                    # 8000 x 8000 x 6 (the default)
    uv run python benchmarks/predict.py --size 3000        # a reduced run for small machines
    uv run python benchmarks/predict.py --size 2000 --no-cluster --repeat 1   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

NAMES = ["dem", "maat", "pisr", "ndvi", "slope", "fdd"]
RES = 1 / 1800


def _layer(name: str, yy: np.ndarray, xx: np.ndarray, rng) -> np.ndarray:
    """A covariate at pixel rows ``yy`` and columns ``xx`` (arrays of one shape)."""
    yy, xx = yy.astype("float32"), xx.astype("float32")
    dem = 3000 + 1000 * (np.sin(xx / 301.0) * np.cos(yy / 207.0) + 1)
    if name == "dem":
        v = dem
    elif name == "maat":
        v = 25.0 - 0.0065 * dem
    elif name == "pisr":
        v = 180 + 60 * np.sin(xx / 53.0 + yy / 71.0)
    elif name == "ndvi":
        v = np.clip(0.6 - (dem - 3000) / 4000, 0, 1)
    elif name == "slope":
        v = 20 + 15 * np.cos(xx / 29.0) * np.sin(yy / 37.0)
    else:
        v = 2000 + 0.5 * (dem - 3000) + 200 * np.sin(yy / 101.0)
    return (v + rng.normal(0, 0.02 * (abs(float(v.mean())) + 1), v.shape)).astype("float32")


def make_stack(directory: Path, size: int, n_cov: int, *, seed: int = 0) -> Path:
    """Write ``n_cov`` covariates of ``size`` x ``size`` pixels, strip by strip."""
    directory.mkdir(parents=True, exist_ok=True)
    transform = from_origin(95.0, 39.0, RES, RES)
    strip = 512
    for k, name in enumerate(NAMES[:n_cov]):
        rng = np.random.default_rng(seed + k)
        with rasterio.open(directory / f"{name}.tif", "w", driver="GTiff", width=size,
                           height=size, count=1, dtype="float32", crs="EPSG:4326",
                           transform=transform, nodata=-9999.0, tiled=True, blockxsize=512,
                           blockysize=512, compress="DEFLATE", predictor=3,
                           BIGTIFF="IF_SAFER") as dst:
            cols = np.arange(size)
            for r0 in range(0, size, strip):
                rows = np.arange(r0, min(size, r0 + strip))
                yy, xx = np.meshgrid(rows, cols, indexing="ij")
                data = _layer(name, yy, xx, rng)
                if r0 == 0:
                    data[:3, :3] = -9999.0  # a little nodata
                dst.write(data, 1, window=((r0, r0 + len(rows)), (0, size)))
    return directory


def make_model(directory: Path, n_cov: int, *, trees: int, depth: int, folds: int) -> Path:
    import xgboost as xgb

    from permafrost.calibration import fit_calibration
    from permafrost.io.model import save_model
    from permafrost.pzi_model import BoosterPredictor, PZIModel

    rng = np.random.default_rng(1)
    n = 20000
    rows, cols = rng.integers(0, 4000, n), rng.integers(0, 4000, n)
    X = np.stack([_layer(nm, rows, cols, rng) for nm in NAMES[:n_cov]], axis=1)
    logit = -(X[:, 1] + 1.0) * 1.5 + 0.01 * (X[:, 2] - 180)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"max_depth": depth, "eta": 0.05, "objective": "binary:logistic", "seed": 0,
              "subsample": 0.8, "colsample_bytree": 0.8}

    def fit(idx):
        return BoosterPredictor(xgb.train(params, xgb.DMatrix(X[idx], y[idx]), trees))

    main = fit(np.arange(n))
    fold = np.arange(n) % folds
    fold_models = [fit(np.flatnonzero(fold != k)) for k in range(folds)]
    cal = fit_calibration(main.predict(X), y, method="isotonic")
    model = PZIModel(predictor=main, calibration=cal, feature_names=NAMES[:n_cov],
                     metadata={"benchmark": True}, fold_models=fold_models)
    return save_model(model, directory)


_CEILING = textwrap.dedent("""
    import hashlib, json, sys, time
    import numpy as np
    from permafrost.workflows.covariates import build_stack
    from permafrost.io.model import load_model
    model = load_model(sys.argv[1]); device = sys.argv[3]
    ds = build_stack(sys.argv[2], chunks=None)
    X = np.stack([ds[f].values.ravel() for f in model.feature_names], axis=1)
    del ds
    if device == "cuda":
        import cupy
        X = cupy.asarray(X)
    model.predict_raw(X[:1000], device=device)  # warm-up (compiled trees: JIT + self-check)
    t, c = time.perf_counter(), time.process_time()
    p = model.predict_raw(X, device=device)
    if device == "cuda":
        cupy.cuda.Device().synchronize()
    dt, dc = time.perf_counter() - t, time.process_time() - c
    p = p.get() if device == "cuda" else p
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"pixels": int(X.shape[0]), "seconds": dt,
                      "pixels_per_s": X.shape[0] / dt, "cpu_s_per_mpx": dc / X.shape[0] * 1e6,
                      "inference_path": model.inference_path,
                      "sha256": hashlib.sha256(np.ascontiguousarray(p).tobytes()).hexdigest(),
                      "peak_rss_mb": int(hwm) / 1024}))
""")

_E2E = textwrap.dedent("""
    import json, sys, time
    from permafrost.cli import app
    t, c = time.perf_counter(), time.process_time()
    try:
        app(sys.argv[1:], standalone_mode=False)
    finally:
        dt, dc = time.perf_counter() - t, time.process_time() - c
        hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
        print("BENCH " + json.dumps({"seconds": dt, "cpu_seconds": dc,
                                     "peak_rss_mb": int(hwm) / 1024}), file=sys.stderr)
""")


def _py(code: str, *args: str, env: dict | None = None) -> tuple[dict, str]:
    r = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                       cwd=Path(__file__).resolve().parents[1], check=False,
                       env={**os.environ, **(env or {})})
    if r.returncode != 0:
        raise RuntimeError(f"benchmark step failed:\n{r.stderr[-3000:]}")
    return r, r.stdout


#: the environment that switches the compiled trees off (XGBoost's inplace_predict)
XGB_ONLY = {"PERMAFROST_COMPILED_TREES": "0"}
COMPILED = {"PERMAFROST_COMPILED_TREES": "1"}


def ceiling(model: Path, stack: Path, device: str, *, compiled: bool = False) -> dict:
    _, out = _py(_CEILING, str(model), str(stack), device,
                 env=COMPILED if compiled else XGB_ONLY)
    return json.loads(out.strip().splitlines()[-1])


def end_to_end(model: Path, stack: Path, out: Path, pixels: int, *extra: str,
               env: dict | None = None) -> dict:
    args = ["predict", "--model", str(model), "--covariates", str(stack), "--out", str(out),
            "--json", *extra]
    r, stdout = _py(_E2E, *args, env=env)
    bench = json.loads([ln for ln in r.stderr.splitlines() if ln.startswith("BENCH ")][-1][6:])
    res = json.loads(stdout[stdout.index("{"):])
    return {"pixels": pixels, "seconds": bench["seconds"],
            "pixels_per_s": pixels / bench["seconds"], "peak_rss_mb": bench["peak_rss_mb"],
            "cpu_s_per_mpx": bench["cpu_seconds"] / pixels * 1e6,
            "inference": res.get("inference", ""),
            "predict_seconds": res["predict_seconds"], "write_seconds": res["write_seconds"],
            "backend": res["backend"], "device": res["device"], "valid": res["valid"],
            "output_mb": out.stat().st_size / 2**20}


def _pixels(path: Path) -> bytes:
    with rasterio.open(path) as src:
        return src.read().tobytes()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8000, help="raster side [pixels]")
    ap.add_argument("--covariates", type=int, default=6, choices=range(1, len(NAMES) + 1))
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--trees", type=int, default=400)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--workdir", type=Path, default=None,
                    help="where the stack is written (default: a temporary directory)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="runs of the ceiling and of the end-to-end CPU prediction (best kept)")
    ap.add_argument("--no-cluster", action="store_true", help="skip the 1 -> 2 worker runs")
    ap.add_argument("--no-xgboost-end-to-end", action="store_true",
                    help="skip the end-to-end runs with the compiled trees switched off")
    args = ap.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="pf-bench-predict-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t = time.perf_counter()
        stack = make_stack(work / "covariates", args.size, args.covariates)
        t_stack = time.perf_counter() - t
        model = make_model(work / "model", args.covariates, trees=args.trees, depth=args.depth,
                           folds=args.folds)
        pixels = args.size * args.size
        chunk = ["--chunk", str(args.chunk)]
        # alternate the two measurements and keep the best of each: on a shared machine
        # the load of other jobs changes between runs
        ceils, comps, e2es, e2xs = [], [], [], []
        for _ in range(args.repeat):
            ceils.append(ceiling(model, stack, "cpu"))
            comps.append(ceiling(model, stack, "cpu", compiled=True))
            e2es.append(end_to_end(model, stack, work / "pzi.tif", pixels, "--device", "cpu",
                                   *chunk, env=COMPILED))
            if not args.no_xgboost_end_to_end:
                e2xs.append(end_to_end(model, stack, work / "pzi_xgb.tif", pixels, "--device",
                                       "cpu", *chunk, env=XGB_ONLY))
        best = {}
        for name, runs in (("ceil", ceils), ("comp", comps), ("e2e", e2es), ("e2x", e2xs)):
            if runs:
                best[name] = max(runs, key=lambda d: d["pixels_per_s"])
                best[name]["all_pixels_per_s"] = [d["pixels_per_s"] for d in runs]
                best[name]["all_cpu_s_per_mpx"] = [d["cpu_s_per_mpx"] for d in runs]
        ceil, comp, e2e = best["ceil"], best["comp"], best["e2e"]
        doc = {
            "command": "uv run python benchmarks/predict.py " + " ".join(sys.argv[1:] if argv
                                                                         is None else argv),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "python": platform.python_version()},
            "size": [args.size, args.size, args.covariates], "pixels": pixels,
            "chunk": args.chunk, "model": {"trees": args.trees, "depth": args.depth,
                                           "folds": args.folds},
            "stack_write_seconds": t_stack,
            "ceiling_cpu": ceil, "compiled_cpu": comp,
            "compiled_speedup_cpu_s": (min(ceil["all_cpu_s_per_mpx"])
                                       / min(comp["all_cpu_s_per_mpx"])),
            "compiled_speedup_wall": comp["pixels_per_s"] / ceil["pixels_per_s"],
            "compiled_same_probabilities": comp["sha256"] == ceil["sha256"],
            "end_to_end_cpu": e2e,
            "ratio_end_to_end_to_ceiling": e2e["pixels_per_s"] / ceil["pixels_per_s"],
        }
        if "e2x" in best:
            doc["end_to_end_cpu_xgboost"] = best["e2x"]
            doc["end_to_end_speedup_cpu_s"] = (min(best["e2x"]["all_cpu_s_per_mpx"])
                                               / min(e2e["all_cpu_s_per_mpx"]))
            # the PZI_INFERENCE tag differs: compare the pixels' bytes
            doc["end_to_end_same_pixels"] = _pixels(work / "pzi.tif") == _pixels(
                work / "pzi_xgb.tif")
        if not args.no_cluster:
            w1 = end_to_end(model, stack, work / "pzi_w1.tif", pixels, "--device", "cpu",
                            "--workers", "1", *chunk)
            w2 = end_to_end(model, stack, work / "pzi_w2.tif", pixels, "--device", "cpu",
                            "--workers", "2", *chunk)
            doc["cluster"] = {"workers_1": w1, "workers_2": w2,
                              "speedup_2_over_1": w2["pixels_per_s"] / w1["pixels_per_s"],
                              "same_bytes_as_threads": (work / "pzi_w2.tif").read_bytes()
                              == (work / "pzi.tif").read_bytes()}
        from permafrost.backends import gpu_available

        if gpu_available():
            gc = ceiling(model, stack, "cuda")
            ge = end_to_end(model, stack, work / "pzi_gpu.tif", pixels, "--device", "cuda",
                            *chunk)
            doc["gpu"] = {"ceiling": gc, "end_to_end": ge,
                          "ratio_end_to_end_to_ceiling": ge["pixels_per_s"] / gc["pixels_per_s"],
                          "speedup_over_cpu_end_to_end": ge["pixels_per_s"] / e2e["pixels_per_s"]}
        else:
            doc["gpu"] = "skipped: no CuPy or no CUDA GPU on this machine"
        tp = 3.4e9
        doc["estimate_tibetan_plateau_30m_hours_cpu"] = tp / e2e["pixels_per_s"] / 3600
        print(json.dumps(doc, indent=2))
        return doc
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
