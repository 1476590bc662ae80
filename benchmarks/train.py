"""Benchmark: training + cross-validation time of `permafrost.models.train_model`.

Synthetic covariates and labels (a known logistic truth, clustered points) of 2 k, 20 k and
200 k labels; CPU always, CUDA when a GPU is really usable (``permafrost.backends.xgboost_gpu_usable``).  Prints one JSON
document: seconds per phase (extraction, spatial CV, random CV, final fit), labels per second,
and ratios against the smallest size (scaling) and against the CPU run (GPU speed-up).

    uv run python benchmarks/train.py                      # 2k, 20k, 200k; cpu (+cuda)
    uv run python benchmarks/train.py --sizes 2000,20000 --devices cpu
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import geopandas as gpd
import numpy as np
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr


def make_stack(ny: int, nx: int, seed: int = 0) -> tuple[xr.Dataset, np.ndarray]:
    res = 1 / 1800
    x = 99.0 + res * (np.arange(nx) + 0.5)
    y = 38.6 - res * (np.arange(ny) + 0.5)
    X, Y = np.meshgrid(x, y)
    rng = np.random.default_rng(seed)

    def field(n, kmin, kmax):
        k, th, ph = rng.uniform(kmin, kmax, n), rng.uniform(0, 6.3, n), rng.uniform(0, 6.3, n)
        return sum(np.sin(kk * (np.cos(t) * (X - 99) + np.sin(t) * (Y - 38.5)) + p)
                   for kk, t, p in zip(k, th, ph)) / np.sqrt(n / 2)

    dem = 3800 + 500 * field(8, 20, 80) + 150 * field(8, 100, 400)
    maat = 1.0 - 0.0065 * (dem - 3500)
    pisr = 230 + 30 * field(8, 150, 500)
    ndvi = np.clip(0.4 - 0.0003 * (dem - 3500) + 0.05 * field(6, 80, 300), 0, 1)
    slope = np.clip(25 + 10 * field(6, 200, 600), 0, 70)
    truth = 1 / (1 + np.exp(-(-1.5 * (maat + 1) - 0.03 * (pisr - 230) + field(8, 100, 300))))

    def da(a):
        return xr.DataArray(a.astype("float32"), dims=("y", "x"),
                            coords={"y": y, "x": x}).rio.write_crs(4326)

    ds = xr.Dataset({"maat": da(maat), "pisr": da(pisr), "ndvi": da(ndvi), "dem": da(dem),
                     "slope": da(slope)}).rio.write_crs(4326)
    return ds, truth


def make_labels(ds, truth, n: int, seed: int = 0) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    ny, nx = truth.shape
    per = 10
    nc = max(1, n // per)
    ci, cj = rng.integers(0, ny, nc), rng.integers(0, nx, nc)
    i = np.clip(np.repeat(ci, per) + rng.integers(-5, 6, nc * per), 0, ny - 1)[:n]
    j = np.clip(np.repeat(cj, per) + rng.integers(-5, 6, nc * per), 0, nx - 1)[:n]
    lab = (rng.random(len(i)) < truth[i, j]).astype(int)
    return gpd.GeoDataFrame({"label": lab, "group": np.repeat(np.arange(nc), per)[:n],
                             "weight": 1.0},
                            geometry=gpd.points_from_xy(ds.x.values[j], ds.y.values[i]),
                            crs=4326)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="2000,20000,200000")
    ap.add_argument("--devices", default="auto", help="auto (cpu + cuda if usable) or a list")
    ap.add_argument("--model", default="xgboost")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--n-estimators", type=int, default=400)
    ap.add_argument("--grid", type=int, default=1500, help="grid side (cells)")
    ap.add_argument("--no-random-cv", action="store_true")
    args = ap.parse_args()

    from permafrost.backends import xgboost_gpu_usable as gpu_usable
    from permafrost.models import train_model

    ok, why = gpu_usable()
    devices = (["cpu"] + (["cuda"] if ok else [])) if args.devices == "auto" else \
        [d.strip() for d in args.devices.split(",")]
    sizes = [int(s) for s in args.sizes.split(",")]
    ds, truth = make_stack(args.grid, args.grid)
    ds = ds.compute()
    runs = []
    for n in sizes:
        labels = make_labels(ds, truth, n)
        for dev in devices:
            t0 = time.perf_counter()
            rep = train_model(labels, ds, model=args.model, device=dev, seed=0,
                              folds=args.folds, params={"n_estimators": args.n_estimators}
                              if args.model != "logistic" else None,
                              random_cv=not args.no_random_cv).report
            wall = time.perf_counter() - t0
            runs.append({"n_labels": n, "device": rep.device, "seconds": rep.seconds,
                         "wall_s": wall, "labels_per_s": n / wall,
                         "spatial_auc": rep.spatial_summary["auc"]["mean"],
                         "random_auc": rep.random_summary.get("auc", {}).get("mean"),
                         "block_size_m": rep.block_size_m})
    base = {r["device"]: r["wall_s"] / r["n_labels"] for r in runs if r["n_labels"] == sizes[0]}
    for r in runs:
        r["time_per_label_vs_smallest"] = (r["wall_s"] / r["n_labels"]) / base[r["device"]]
        cpu = [q for q in runs if q["n_labels"] == r["n_labels"] and q["device"] == "cpu"]
        if r["device"] != "cpu" and cpu:
            r["speedup_vs_cpu"] = cpu[0]["wall_s"] / r["wall_s"]
    print(json.dumps({"benchmark": "train", "model": args.model, "folds": args.folds,
                      "n_estimators": args.n_estimators, "random_cv": not args.no_random_cv,
                      "gpu_usable": ok, "gpu_reason": why, "cpu_count": os.cpu_count(),
                      "python": platform.python_version(), "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
