"""Benchmark: the real chain (`labels`, `train`, `predict`, `stats`) on a DEM-and-climate region
of N x N cells, per step CPU-s/Mpx and peak RSS, and the projection for the Tibetan Plateau.

For each size of ``--sizes`` it builds, in a temporary folder (:func:`build_region`):

* ``dem.tif``: a synthetic DEM [m] of N x N cells of 30 m in UTM zone 46N (EPSG:32646), a sum
  of sinusoidal ridges of 1.5-40 km wavelength around 4600 m (range about 3500-5700 m),
  float32, tiled, DEFLATE, written strip by strip;
* ``climate/maat_coarse.tif`` and ``climate/elevation_coarse.tif``: a coarse MAAT grid of
  3 km cells (100 x 100 fine cells) and its cell elevations (the mean of the DEM's function
  over the cell), MAAT = 29 °C - 6.5 °C/km x elevation + a west-east gradient of 0.5 °C/100 km;
* ``stack.toml``: the stack file (like ``pipelines/demo_covariates.toml``): the DEM (not a
  feature), and ``slope``, ``northness``, ``pisr`` and ``maat`` (``downscale_maat`` of the
  coarse grid, lapse rate -6.5 °C/km) derived from it;
* ``boreholes.csv``: ``--boreholes`` boreholes (4000 by default) at uniform random cells, with
  presence drawn from a simple truth, P = 1 / (1 + exp(1.5 (MAAT + 1 - 0.02 (slope - 20)))),
  MAAT and slope being the DEM function's own (not the stack's).

Then it runs the CLI, each step its own subprocess, and measures the step's CPU seconds (user +
system of the waited child, ``resource.getrusage(RUSAGE_CHILDREN)`` before/after) and its peak
RSS (``ru_maxrss`` of that child, from ``os.wait4``)::

    permafrost labels --boreholes boreholes.csv --borehole-crs EPSG:32646 --grid dem.tif
    permafrost train --labels labels.gpkg --covariates stack.toml --out model --seed 0
    permafrost predict --model model --covariates stack.toml --out pzi.tif
    permafrost stats pzi.tif --dem dem.tif --out-json stats.json

It prints one table per size (seconds, CPU-s, CPU-s/Mpx, peak RSS) and, from the largest size,
the projection for 3.4e9 cells (the plateau at 30 m) on 2 cores: CPU-s/Mpx x 3400 Mpx / 2
(perfect use of 2 cores; the real wall time is at least this). ``--json`` writes all the
figures to a file; ``--STEP-args "..."`` passes extra options to a step.  ``--bytecode DIR``
runs the steps as after a usual install, with Python's bytecode cached (in DIR, warmed first):
where ``PYTHONDONTWRITEBYTECODE`` is set (as on the development machine), every process
otherwise compiles every module it imports, a few CPU-seconds per step that users do not pay.

    uv run python benchmarks/region_scale.py                       # 1024, 4096, 8192
    uv run python benchmarks/region_scale.py --sizes 1024 4096 --json scale.json
    uv run python benchmarks/region_scale.py --sizes 4096 --bytecode /tmp/pyc   # as installed
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: cell size [m]
RES = 30.0
#: UTM zone 46N (the centre of the Tibetan Plateau, ~93° E)
EPSG = 32646
#: upper-left corner of the region [m] (about 92.0° E, 33.0° N)
X0, Y0 = 406_000.0, 3_652_000.0
#: coarse climate cells [fine cells]
COARSE = 100
#: the plateau at 30 m [cells]
PLATEAU_CELLS = 3.4e9
#: cores of the projection
CORES = 2

# ridges: (amplitude [m], wavelength [m], direction [rad], phase [rad])
_RIDGES = [(420, 40_000, 0.3, 0.0), (300, 17_000, 1.9, 1.1), (210, 9_000, 0.9, 2.3),
           (150, 5_200, 2.6, 0.4), (90, 3_100, 0.1, 1.7), (55, 1_500, 1.3, 2.9)]


def dem_at(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The synthetic DEM [m] at UTM coordinates ``x``, ``y`` [m] (a sum of sinusoidal
    ridges; its gradient is known in closed form, :func:`slope_at`)."""
    z = np.full(np.broadcast(x, y).shape, 4600.0)
    for a, lam, th, ph in _RIDGES:
        k = 2 * np.pi / lam
        z += a * np.sin(k * (np.cos(th) * (x - X0) + np.sin(th) * (y - Y0)) + ph)
    return z


def slope_at(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Slope [deg] of :func:`dem_at` (analytic gradient)."""
    gx = np.zeros(np.broadcast(x, y).shape)
    gy = np.zeros_like(gx)
    for a, lam, th, ph in _RIDGES:
        k = 2 * np.pi / lam
        c = a * k * np.cos(k * (np.cos(th) * (x - X0) + np.sin(th) * (y - Y0)) + ph)
        gx += c * np.cos(th)
        gy += c * np.sin(th)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def maat_at(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The truth's MAAT [degC] at easting ``x`` [m] and elevation ``z`` [m]."""
    return 29.0 - 0.0065 * z + 0.5e-5 * (x - X0)


def _write(path: Path, n_rows: int, n_cols: int, transform, fill, *, block: int = 256) -> None:
    """A float32 tiled DEFLATE GeoTIFF written strip by strip: ``fill(r0, r1)`` gives rows
    ``r0:r1``."""
    import rasterio  # noqa: PLC0415
    from rasterio.windows import Window  # noqa: PLC0415

    tiled = n_rows >= block and n_cols >= block
    prof = dict(driver="GTiff", width=n_cols, height=n_rows, count=1, dtype="float32",
                crs=f"EPSG:{EPSG}", transform=transform, compress="deflate", nodata=-9999.0,
                **({"tiled": True, "blockxsize": block, "blockysize": block} if tiled else {}))
    with rasterio.open(path, "w", **prof) as dst:
        for r0 in range(0, n_rows, block):
            r1 = min(n_rows, r0 + block)
            dst.write(fill(r0, r1).astype("float32")[None], window=Window(0, r0, n_cols, r1 - r0))


def build_region(folder: str | Path, n: int, *, boreholes: int = 4000, seed: int = 0) -> dict:
    """Write the region of ``n`` x ``n`` cells into ``folder`` (see the module docstring).

    Returns
    -------
    dict
        Paths (``dem``, ``stack``, ``boreholes``) and the counts (``cells``, ``boreholes``,
        ``presence_share``).
    """
    from rasterio.transform import from_origin  # noqa: PLC0415

    folder = Path(folder)
    (folder / "climate").mkdir(parents=True, exist_ok=True)
    xc = X0 + RES * (np.arange(n) + 0.5)

    def dem_rows(r0, r1):
        yc = Y0 - RES * (np.arange(r0, r1) + 0.5)
        return dem_at(xc[None, :], yc[:, None])

    _write(folder / "dem.tif", n, n, from_origin(X0, Y0, RES, RES), dem_rows)
    # the coarse grid covers the region plus one coarse cell on each side
    nc = math.ceil(n / COARSE) + 2
    cres = RES * COARSE
    cx0, cy0 = X0 - cres, Y0 + cres
    sub = (np.arange(10) + 0.5) / 10 * cres  # 10 x 10 samples per coarse cell

    def elev_rows(r0, r1):
        out = np.empty((r1 - r0, nc))
        for i, r in enumerate(range(r0, r1)):
            for j in range(nc):
                out[i, j] = dem_at(cx0 + j * cres + sub[None, :], cy0 - r * cres - sub[:, None]).mean()
        return out

    elev = elev_rows(0, nc)
    ccx = cx0 + cres * (np.arange(nc) + 0.5)
    _write(folder / "climate" / "elevation_coarse.tif", nc, nc, from_origin(cx0, cy0, cres, cres),
           lambda r0, r1: elev[r0:r1])
    _write(folder / "climate" / "maat_coarse.tif", nc, nc, from_origin(cx0, cy0, cres, cres),
           lambda r0, r1: maat_at(ccx[None, :], elev[r0:r1]))
    (folder / "stack.toml").write_text(
        "# benchmarks/region_scale.py: DEM + coarse climate -> slope, northness, pisr, maat\n"
        '[covariates.dem]\npath = "dem.tif"\nuse = false\n\n'
        '[derived.slope]\nfunction = "slope"\n\n'
        '[derived.northness]\nfunction = "northness"\n\n'
        '[derived.pisr]\nfunction = "pisr"\n\n'
        '[derived.maat]\nfunction = "downscale_maat"\n'
        'coarse = "climate/maat_coarse.tif"\n'
        'coarse_elevation = "climate/elevation_coarse.tif"\nlapse_rate = -0.0065\n')
    rng = np.random.default_rng(seed)
    flat = rng.choice(n * n, size=min(boreholes, n * n), replace=False)
    rows, cols = np.divmod(flat, n)
    x = X0 + RES * (cols + 0.5)
    y = Y0 - RES * (rows + 0.5)
    z = dem_at(x, y)
    p = 1 / (1 + np.exp(1.5 * (maat_at(x, z) + 1 - 0.02 * (slope_at(x, y) - 20))))
    presence = (rng.random(len(p)) < p).astype(int)
    lines = ["borehole_id,x,y,elevation_m,presence"]
    lines += [f"B{i:05d},{a:.1f},{b:.1f},{c:.1f},{d}"
              for i, (a, b, c, d) in enumerate(zip(x, y, z, presence, strict=True))]
    (folder / "boreholes.csv").write_text("\n".join(lines) + "\n")
    return {"dem": str(folder / "dem.tif"), "stack": str(folder / "stack.toml"),
            "boreholes": str(folder / "boreholes.csv"), "cells": n * n,
            "n_boreholes": len(p), "presence_share": float(presence.mean())}


def steps(folder: str | Path, *, extra: dict[str, list[str]] | None = None) -> list[tuple[str, list[str]]]:
    """The CLI steps run on a region built by :func:`build_region` (name, argv)."""
    f = Path(folder)
    cli = [sys.executable, "-m", "permafrost"]
    extra = extra or {}
    return [
        ("labels", cli + ["labels", "--boreholes", str(f / "boreholes.csv"), "--borehole-crs",
                          f"EPSG:{EPSG}", "--grid", str(f / "dem.tif"), "--out",
                          str(f / "labels.gpkg")] + extra.get("labels", [])),
        ("train", cli + ["train", "--labels", str(f / "labels.gpkg"), "--covariates",
                         str(f / "stack.toml"), "--out", str(f / "model"), "--seed", "0",
                         ] + extra.get("train", [])),
        ("predict", cli + ["predict", "--model", str(f / "model"), "--covariates",
                           str(f / "stack.toml"), "--out", str(f / "pzi.tif")]
         + extra.get("predict", [])),
        ("stats", cli + ["stats", str(f / "pzi.tif"), "--dem", str(f / "dem.tif"), "--out-json",
                         str(f / "stats.json")] + extra.get("stats", [])),
    ]


def child_env(bytecode: str | Path | None) -> dict[str, str] | None:
    """The steps' environment: as this process's, or, with ``bytecode`` (a folder), as a
    usual install (pip writes bytecode): ``PYTHONDONTWRITEBYTECODE`` unset and the bytecode
    cached under that folder (``PYTHONPYCACHEPREFIX``), the installed files untouched."""
    if bytecode is None:
        return None
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(bytecode).resolve())
    return env


def warm_bytecode(env: dict[str, str]) -> float:
    """Import every module of the package once in a child with ``env`` (so the steps find
    their bytecode, as after an install); returns its wall seconds."""
    t0 = time.perf_counter()
    code = ("import importlib, pkgutil, permafrost\n"
            "for m in pkgutil.walk_packages(permafrost.__path__, 'permafrost.'):\n"
            "    importlib.import_module(m.name)\n")
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - t0


def run_step(argv: list[str], *, timeout: float | None = None,
             env: dict[str, str] | None = None) -> dict:
    """Run one step as a child process: wall seconds, CPU seconds (user + system) and peak RSS
    [bytes] of that child (Linux ``ru_maxrss`` is in KiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    deadline = None if timeout is None else t0 + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        if deadline is not None and time.perf_counter() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            break
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"rc": proc.returncode, "wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime,
            "peak_rss_bytes": ru.ru_maxrss * 1024, "output_tail": out[-2000:]}


def measure(n: int, *, boreholes: int = 4000, keep: str | None = None, timeout: float | None = None,
            extra: dict[str, list[str]] | None = None, only: list[str] | None = None,
            env: dict[str, str] | None = None) -> dict:
    """Build the region of ``n`` x ``n`` cells and run the steps; the figures of each step."""
    tmp = Path(keep) / f"region_{n}" if keep else Path(tempfile.mkdtemp(prefix=f"region{n}_"))
    try:
        t0 = time.perf_counter()
        region = build_region(tmp, n, boreholes=boreholes)
        rec = {"n": n, "mpx": n * n / 1e6, "build_s": time.perf_counter() - t0,
               "region": {k: v for k, v in region.items() if not isinstance(v, str)},
               "steps": {}}
        print(f"\n{n} x {n} cells ({rec['mpx']:.1f} Mpx, 30 m), region built in "
              f"{rec['build_s']:.0f} s\n{'step':<9} {'wall s':>8} {'CPU s':>8} {'CPU-s/Mpx':>10} "
              f"{'peak RSS GB':>12}", flush=True)
        for name, argv in steps(tmp, extra=extra):
            if only and name not in only:
                continue
            r = run_step(argv, timeout=timeout, env=env)
            r["cpu_s_per_mpx"] = r["cpu_s"] / rec["mpx"]
            r["command"] = shlex.join(["permafrost"] + argv[3:])
            rec["steps"][name] = r
            print(f"{name:<9} {r['wall_s']:8.1f} {r['cpu_s']:8.1f} {r['cpu_s_per_mpx']:10.3f} "
                  f"{r['peak_rss_bytes'] / 1e9:12.2f}" + ("" if r["rc"] == 0 else
                                                          f"  (exit {r['rc']})"), flush=True)
            if r["rc"] != 0:
                print(f"{name} failed (exit {r['rc']}):\n{r['output_tail']}", file=sys.stderr)
                break
        return rec
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def projection(rec: dict) -> dict:
    """Hours for :data:`PLATEAU_CELLS` on :data:`CORES` cores from a size's CPU-s/Mpx."""
    out = {k: s["cpu_s_per_mpx"] * PLATEAU_CELLS / 1e6 / CORES / 3600
           for k, s in rec["steps"].items() if k in ("predict", "stats")}
    out["predict+stats"] = sum(out.values())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096, 8192],
                    help="region sides [cells]")
    ap.add_argument("--boreholes", type=int, default=4000)
    ap.add_argument("--keep", help="build the regions under this folder and keep them")
    ap.add_argument("--timeout", type=float, help="seconds per step")
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--steps", default="labels,train,predict,stats",
                    help="steps to run, in chain order (e.g. labels,train)")
    for s in ("labels", "train", "predict", "stats"):
        ap.add_argument(f"--{s}-args", default="", help=f"extra options of `permafrost {s}`")
    ap.add_argument("--bytecode", metavar="DIR",
                    help="run the steps as after a usual install: Python bytecode cached in DIR "
                         "(warmed first) even where PYTHONDONTWRITEBYTECODE is set; by default "
                         "the steps inherit this environment")
    args = ap.parse_args(argv)
    env = child_env(args.bytecode)
    if env is not None:
        print(f"bytecode cache {args.bytecode} warmed in {warm_bytecode(env):.0f} s", flush=True)
    extra = {s: shlex.split(getattr(args, f"{s}_args")) for s in ("labels", "train", "predict", "stats")}
    runs = []
    for n in args.sizes:
        rec = measure(n, boreholes=args.boreholes, keep=args.keep, timeout=args.timeout, extra=extra,
                      only=args.steps.split(","), env=env)
        runs.append(rec)
    last = runs[-1]
    proj = (projection(last) if all(s["rc"] == 0 for s in last["steps"].values())
            and "predict" in last["steps"] else {})
    if proj:
        print(f"\nprojection for {PLATEAU_CELLS:.1e} cells on {CORES} cores, from {last['n']}²: "
              + ", ".join(f"{k} {v:.1f} h" for k, v in proj.items()))
    peak = max(s["peak_rss_bytes"] for r in runs for s in r["steps"].values())
    print(f"largest peak RSS of any step: {peak / 1e9:.2f} GB")
    doc = {"benchmark": "region_scale", "cpu_count": os.cpu_count(),
           "load_average": os.getloadavg(), "python": platform.python_version(),
           "bytecode": args.bytecode is not None, "plateau_cells": PLATEAU_CELLS, "cores": CORES, "runs": runs, "projection": proj,
           "rusage_self_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1))
    return 0 if all(s["rc"] == 0 for r in runs for s in r["steps"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
