"""Memory and time of `permafrost stats` streaming vs an in-memory baseline.

Writes a synthetic PZI raster (tiled GeoTIFF, geographic grid) of ``--size`` x ``--size``
cells, then measures in separate processes (peak RSS via getrusage):
  * streamed: permafrost.workflows.stats.stats_from_files (row blocks of --block-rows)
  * in_memory: read the whole band with rasterio and compute the same headline area with numpy
and prints JSON with the ratios.  Also times projected cell areas (PROJ scale factors).

    uv run python benchmarks/bench_stats.py --size 4000          # modest, here
    uv run python benchmarks/bench_stats.py --size 40000         # 6.4 GB float32, larger than RAM?
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STREAM = """
import resource, sys, time, json
from permafrost.workflows.stats import stats_from_files
import permafrost.io.maps, permafrost.io.vectors, rasterio.features, dask.array  # imports first
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
br = int(sys.argv[2])
r = stats_from_files(sys.argv[1], block_rows=br if br > 0 else None)
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": dt, "peak_rss_mb": peak, "peak_above_imports_mb": peak - base,
                  "pzi_ge_0.5_km2": r.whole["pzi_ge_0.5_km2"]}))
"""

MEMORY = """
import resource, sys, time, json
import numpy as np, rasterio, pyproj
from permafrost.area import cell_areas
from permafrost.grid import Grid
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t = time.perf_counter()
with rasterio.open(sys.argv[1]) as s:
    a = s.read(1, masked=True).filled(np.nan)
    g = Grid(pyproj.CRS(s.crs.to_wkt()), s.transform, a.shape)
area = np.broadcast_to(cell_areas(g), a.shape)
v = float(area[a >= 0.5].sum()) / 1e6
dt = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"s": dt, "peak_rss_mb": peak, "peak_above_imports_mb": peak - base,
                  "pzi_ge_0.5_km2": v}))
"""


def make_raster(path: Path, n: int) -> None:
    import numpy as np
    import rasterio
    from affine import Affine

    d = 1 / 1800
    prof = dict(driver="GTiff", width=n, height=n, count=1, dtype="float32", crs="EPSG:4326",
                transform=Affine(d, 0, 99.0, 0, -d, 40.0), nodata=-9999.0, tiled=True,
                blockxsize=512, blockysize=512, compress="DEFLATE", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **prof) as dst:
        x = np.arange(n, dtype="float32")
        for r0 in range(0, n, 512):
            rows = np.arange(r0, min(n, r0 + 512), dtype="float32")[:, None]
            blk = 0.5 + 0.5 * np.sin(x[None, :] / 97.0) * np.cos(rows / 53.0)
            dst.write(blk.astype("float32"), 1, window=((r0, r0 + blk.shape[0]), (0, n)))


def run(code: str, *args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--block-rows", type=int, default=0, help="0: automatic")
    ap.add_argument("--proj-cells", type=int, default=1_000_000)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "pzi.tif"
        make_raster(p, a.size)
        streamed = run(STREAM, str(p), str(a.block_rows))
        memory = run(MEMORY, str(p))
    import numpy as np
    import pyproj
    from affine import Affine

    from permafrost.area import cell_areas
    from permafrost.grid import Grid

    n = int(a.proj_cells ** 0.5)
    g = Grid(pyproj.CRS(32647), Affine(30, 0, 400000, 0, -30, 4300000), (n, n))
    t = time.perf_counter()
    ar = cell_areas(g)
    dt = time.perf_counter() - t
    print(json.dumps({
        "size": [a.size, a.size], "raster_mb_float32": a.size * a.size * 4 / 2**20,
        "block_rows": a.block_rows, "streamed": streamed, "in_memory": memory,
        "peak_rss_ratio_streamed_over_in_memory": streamed["peak_rss_mb"] / memory["peak_rss_mb"],
        "working_memory_ratio_streamed_over_in_memory":
            streamed["peak_above_imports_mb"] / memory["peak_above_imports_mb"],
        "time_ratio_streamed_over_in_memory": streamed["s"] / memory["s"],
        "same_headline": abs(streamed["pzi_ge_0.5_km2"] - memory["pzi_ge_0.5_km2"])
        <= 1e-9 * memory["pzi_ge_0.5_km2"],
        "projected_cell_areas_per_s": n * n / dt, "projected_mean_cell_m2": float(np.mean(ar)),
    }, indent=1))


if __name__ == "__main__":
    main()
