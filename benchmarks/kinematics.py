"""Per-outline (zonal) statistics: permafrost.zonal vs rasterstats vs exactextract.

Builds a float32 GeoTIFF of ``--size`` x ``--size`` pixels (written band by band) and
``--outlines`` rock-glacier-like polygons (rotated ellipses on a jittered grid), then
computes per outline: count, mean, median and 90th percentile of the pixels, with

* ``permafrost.zonal.zonal_statistics`` (numpy scanline fill per band of rows +
  grouped sorts), reading the raster band by band from the GeoTIFF;
* ``rasterstats.zonal_stats`` (same pixel-centre rule, numpy statistics per polygon) on
  a random subsample of ``--rasterstats-sample`` outlines, its time extrapolated per
  outline to all of them (it is 2-3 orders of magnitude slower; the JSON says so);
* ``exactextract.exact_extract`` on all outlines (count, mean, median,
  quantile(q=0.9)), with its ``raster-sequential`` and ``feature-sequential``
  strategies, the ratio taken against the faster (note: exactextract weights pixels
  by their covered fraction, so its values differ slightly at outline edges -- same
  statistics, its own pixel rule).

Each method runs in its own child process; its wall and CPU time and peak resident memory
(psutil, sampled every 10 ms, minus the child's baseline) are reported, with the ratios
of times and a correctness check of permafrost.zonal against rasterstats on the
subsample.  Prints one JSON object.

Full size (the issue's target): ``uv run --group bench python benchmarks/kinematics.py``
Reduced: ``uv run --group bench python benchmarks/kinematics.py --size 2000 --outlines 10000``

GDAL's block cache is bounded to 64 MB (``GDAL_CACHEMAX``, unless set) for all methods.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

# GDAL's block cache defaults to 5 % of RAM and would hold most of the raster; bound it
# for every method alike (DESIGN §6)
os.environ.setdefault("GDAL_CACHEMAX", "64")


def make_raster(path: Path, size: int, seed: int, block: int = 512) -> None:
    import rasterio
    from affine import Affine

    rng = np.random.default_rng(seed)
    tr = Affine(10.0, 0, 500000.0, 0, -10.0, 4300000.0 + 10.0 * size)
    with rasterio.open(path, "w", driver="GTiff", width=size, height=size, count=1,
                       dtype="float32", crs="EPSG:32647", transform=tr, nodata=np.nan,
                       tiled=True, blockxsize=512, blockysize=512, BIGTIFF="IF_SAFER") as dst:
        for r0 in range(0, size, block):
            r1 = min(size, r0 + block)
            rows = np.arange(r0, r1)[:, None]
            cols = np.arange(size)[None, :]
            v = (0.05 * np.sin(rows / 97.0) * np.cos(cols / 131.0)
                 + rng.normal(0, 0.01, (r1 - r0, size))).astype(np.float32)
            v[rng.random(v.shape) < 0.02] = np.nan
            dst.write(v, 1, window=rasterio.windows.Window(0, r0, size, r1 - r0))


def make_outlines(size: int, n: int, seed: int):
    import shapely
    from affine import Affine

    rng = np.random.default_rng(seed + 1)
    tr = Affine(10.0, 0, 500000.0, 0, -10.0, 4300000.0 + 10.0 * size)
    k = int(np.ceil(np.sqrt(n)))
    cell = size / k
    idx = np.arange(n)
    ci, cj = idx // k, idx % k
    a = rng.uniform(0.2, 0.45, n) * cell
    b = rng.uniform(0.1, 0.25, n) * cell
    slack = cell / 2 - a
    cy = (ci + 0.5) * cell + rng.uniform(-1, 1, n) * slack
    cx = (cj + 0.5) * cell + rng.uniform(-1, 1, n) * slack
    ang = rng.uniform(0, np.pi, n)
    t = np.linspace(0, 2 * np.pi, 17)[:-1]
    ex = a[:, None] * np.cos(t)[None, :]
    ey = b[:, None] * np.sin(t)[None, :]
    px = cx[:, None] + ex * np.cos(ang)[:, None] - ey * np.sin(ang)[:, None]
    py = cy[:, None] + ex * np.sin(ang)[:, None] + ey * np.cos(ang)[:, None]
    X, Y = tr @ (px, py)
    ring = np.stack([X, Y], axis=-1)
    ring = np.concatenate([ring, ring[:, :1]], axis=1)
    return shapely.polygons(ring)


def _sampler(stop: threading.Event, out: list) -> None:
    import psutil

    proc = psutil.Process()
    peak = proc.memory_info().rss
    while not stop.is_set():
        peak = max(peak, proc.memory_info().rss)
        time.sleep(0.01)
    out.append(max(peak, proc.memory_info().rss))


def _child(method: str, raster: str, outlines_wkb: list, subsample: list | None,
           block_rows: int, q, strategy: str = "raster-sequential") -> None:
    import psutil
    import shapely

    geoms = shapely.from_wkb(outlines_wkb)
    if subsample is not None:
        geoms = geoms[np.asarray(subsample)]
    # imports before the baseline, so that only the computation counts
    import rasterio
    if method == "rasterstats":
        import rasterstats  # noqa: F401
    elif method == "exactextract":
        import exactextract  # noqa: F401
        import geopandas  # noqa: F401
    from permafrost.zonal import ZonalSpec, zonal_statistics

    base = psutil.Process().memory_info().rss
    stop, peak = threading.Event(), []
    th = threading.Thread(target=_sampler, args=(stop, peak), daemon=True)
    th.start()
    t0 = time.perf_counter()
    c0 = time.process_time()
    if method == "permafrost":
        with rasterio.open(raster) as src:
            shape, tr = (src.height, src.width), src.transform

            def rows(r0, r1):
                return src.read(1, window=rasterio.windows.Window(0, r0, src.width, r1 - r0))

            res = zonal_statistics(geoms, {"v": rows}, transform=tr, shape=shape,
                                   spec=ZonalSpec({"v": ["count", "mean", "median", "p90"]}),
                                   block_rows=block_rows)
        out = {"count": res["v_count"], "mean": res["v_mean"], "median": res["v_median"],
               "p90": res["v_p90"]}
    elif method == "rasterstats":
        from rasterstats import zonal_stats

        r = zonal_stats(list(geoms), raster, stats="count mean median percentile_90",
                        all_touched=False, nodata=np.nan)
        out = {"count": np.array([d["count"] for d in r], float),
               "mean": np.array([np.nan if d["mean"] is None else d["mean"] for d in r]),
               "median": np.array([np.nan if d["median"] is None else d["median"] for d in r]),
               "p90": np.array([np.nan if d["percentile_90"] is None else d["percentile_90"]
                                for d in r])}
    else:
        import geopandas as gpd
        from exactextract import exact_extract

        with rasterio.open(raster) as src:
            crs = src.crs
        gdf = gpd.GeoDataFrame(geometry=list(geoms), crs=crs)
        df = exact_extract(raster, gdf, ["count", "mean", "median", "quantile(q=0.9)"],
                           output="pandas", strategy=strategy)
        out = {"count": df["count"].to_numpy(), "mean": df["mean"].to_numpy(),
               "median": df["median"].to_numpy(), "p90": df.iloc[:, -1].to_numpy()}
    dt = time.perf_counter() - t0
    cpu = time.process_time() - c0
    stop.set()
    th.join()
    q.put({"seconds": dt, "cpu_seconds": cpu, "peak_rss_mb": (peak[0] - base) / 2**20,
           "n": len(geoms), "out": {k: np.asarray(v, float).tolist() for k, v in out.items()}})


def run(method, raster, wkb, subsample, block_rows, strategy="raster-sequential"):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(method, raster, wkb, subsample, block_rows, q,
                                         strategy))
    p.start()
    res = q.get()
    p.join()
    return res


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=10000, help="raster side [pixels]")
    ap.add_argument("--outlines", type=int, default=100000, help="number of outlines")
    ap.add_argument("--rasterstats-sample", type=int, default=1000,
                    help="outlines given to rasterstats (time extrapolated per outline)")
    ap.add_argument("--block-rows", type=int, default=512)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--skip", nargs="*", default=[], choices=["rasterstats", "exactextract"])
    ap.add_argument("--exactextract-strategy", nargs="+",
                    default=["raster-sequential", "feature-sequential"],
                    choices=["raster-sequential", "feature-sequential"],
                    help="exactextract strategies to time; ratios use the fastest")
    args = ap.parse_args(argv)

    import shapely

    tmp = tempfile.TemporaryDirectory(dir=args.workdir)
    raster = Path(tmp.name) / "v.tif"
    t0 = time.perf_counter()
    make_raster(raster, args.size, args.seed)
    geoms = make_outlines(args.size, args.outlines, args.seed)
    setup = time.perf_counter() - t0
    wkb = list(shapely.to_wkb(geoms))
    rng = np.random.default_rng(args.seed + 2)
    nsub = min(args.rasterstats_sample, args.outlines)
    sub = np.sort(rng.choice(args.outlines, nsub, replace=False)).tolist()

    result = {
        "benchmark": "per-outline zonal statistics (count, mean, median, p90)",
        "raster": f"{args.size}x{args.size} float32 GeoTIFF (tiled 512, 2% NaN)",
        "outlines": args.outlines, "block_rows": args.block_rows,
        "gdal_cachemax_mb": int(os.environ["GDAL_CACHEMAX"]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "platform": platform.platform()},
        "setup_seconds": round(setup, 2),
    }
    ours = run("permafrost", str(raster), wkb, None, args.block_rows)
    result["permafrost_zonal"] = {"seconds": round(ours["seconds"], 3),
                                  "cpu_seconds": round(ours["cpu_seconds"], 3),
                                  "peak_rss_mb": round(ours["peak_rss_mb"], 1),
                                  "outlines_per_second": round(args.outlines / ours["seconds"])}
    o = {k: np.asarray(v) for k, v in ours["out"].items()}
    result["mean_pixels_per_outline"] = round(float(np.mean(o["count"])), 1)
    if "rasterstats" not in args.skip:
        rs = run("rasterstats", str(raster), wkb, sub, args.block_rows)
        full = rs["seconds"] / nsub * args.outlines
        full_cpu = rs["cpu_seconds"] / nsub * args.outlines
        result["rasterstats"] = {
            "seconds_subsample": round(rs["seconds"], 3), "subsample": nsub,
            "seconds_extrapolated": round(full, 1), "cpu_seconds_extrapolated": round(full_cpu, 1),
            "extrapolated": nsub < args.outlines,
            "peak_rss_mb_subsample": round(rs["peak_rss_mb"], 1)}
        result["speedup_vs_rasterstats"] = round(full / ours["seconds"], 1)
        result["cpu_speedup_vs_rasterstats"] = round(full_cpu / ours["cpu_seconds"], 1)
        r = {k: np.asarray(v) for k, v in rs["out"].items()}
        idx = np.asarray(sub)
        diffs = {}
        for k in ("count", "mean", "median", "p90"):
            a, b = o[k][idx], r[k]
            both = np.isfinite(a) & np.isfinite(b)
            diffs[k] = float(np.max(np.abs(a[both] - b[both]))) if both.any() else 0.0
            diffs[k + "_nan_mismatch"] = int((np.isfinite(a) != np.isfinite(b)).sum())
        result["max_abs_diff_vs_rasterstats"] = diffs
    if "exactextract" not in args.skip:
        best = None
        for strategy in args.exactextract_strategy:
            ee = run("exactextract", str(raster), wkb, None, args.block_rows, strategy)
            result[f"exactextract_{strategy}"] = {
                "seconds": round(ee["seconds"], 3), "cpu_seconds": round(ee["cpu_seconds"], 3),
                "peak_rss_mb": round(ee["peak_rss_mb"], 1)}
            if best is None or ee["cpu_seconds"] < best[1]["cpu_seconds"]:
                best = (strategy, ee)
        strategy, ee = best
        result["exactextract_fastest"] = strategy
        result["exactextract_note"] = "coverage-fraction weighted statistics"
        result["speedup_vs_exactextract"] = round(ee["seconds"] / ours["seconds"], 2)
        result["cpu_speedup_vs_exactextract"] = round(ee["cpu_seconds"] / ours["cpu_seconds"], 2)
        e = {k: np.asarray(v) for k, v in ee["out"].items()}
        both = np.isfinite(e["median"]) & np.isfinite(o["median"])
        result["median_abs_diff_vs_exactextract"] = float(np.median(
            np.abs(e["median"][both] - o["median"][both])))
    tmp.cleanup()
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
