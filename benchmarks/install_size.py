"""Size and time of the default install: `uv sync --frozen --no-dev` into a fresh venv.

Copies ``pyproject.toml``, ``uv.lock``, ``README.md`` and the package into a scratch
directory, syncs a new environment there ``--repeats`` times (uv's cache warm, as on a
developer machine: the time is mostly linking files; ``--cold`` adds one sync with an empty
cache, which downloads every wheel), and prints JSON: the median time, the
environment's size on disk, its largest packages, and the download a cold cache would need
(the wheel sizes uv.lock records for this platform's wheels of the installed packages).

    uv run python benchmarks/install_size.py
    uv run python benchmarks/install_size.py --project /path/to/another/checkout
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _du(path: Path) -> int:
    seen, total = set(), 0
    for p in path.rglob("*"):
        try:
            st = p.lstat()
        except OSError:
            continue
        if p.is_file() and not p.is_symlink() and (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


def _wheel_for_here(wheels: list[dict]) -> dict | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    plat = sysconfig.get_platform().replace("-", "_").split("_", 1)[-1]  # e.g. x86_64
    for w in wheels:
        fn = w["url"].rsplit("/", 1)[-1]
        py_ok = tag in fn or "py3-none" in fn or "py2.py3" in fn or "abi3" in fn
        plat_ok = fn.endswith("none-any.whl") or (sys.platform.startswith("linux")
                                                   and "manylinux" in fn and plat in fn)
        if py_ok and plat_ok:
            return w
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--project", type=Path, default=ROOT)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cold", action="store_true",
                    help="also one sync with an empty uv cache (downloads every wheel)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="pf-install-") as tmp:
        proj = Path(tmp) / "project"
        proj.mkdir()
        for name in ("pyproject.toml", "uv.lock", "README.md"):
            shutil.copy2(args.project / name, proj / name)
        shutil.copytree(args.project / "permafrost", proj / "permafrost",
                        ignore=shutil.ignore_patterns("__pycache__"))
        venv = Path(tmp) / "venv"
        times = []
        for _ in range(args.repeats):
            shutil.rmtree(venv, ignore_errors=True)
            env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
            t0 = time.perf_counter()
            subprocess.run(["uv", "sync", "--frozen", "--no-dev", "--quiet"], cwd=proj,
                           env=env, check=True)
            times.append(time.perf_counter() - t0)
        cold = None
        if args.cold:
            shutil.rmtree(venv, ignore_errors=True)
            env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv),
                   "UV_CACHE_DIR": str(Path(tmp) / "cache")}
            t0 = time.perf_counter()
            subprocess.run(["uv", "sync", "--frozen", "--no-dev", "--quiet"], cwd=proj,
                           env=env, check=True)
            cold = round(time.perf_counter() - t0, 1)
        site = next(venv.glob("lib/python*/site-packages"))
        sizes = {p.name: _du(p) for p in site.iterdir() if p.is_dir()}
        listed = json.loads(subprocess.run(
            ["uv", "pip", "list", "--python", str(venv / "bin" / "python"), "--format",
             "json"], capture_output=True, text=True, check=True).stdout)
        installed = {(p["name"].lower().replace("_", "-"), p["version"]) for p in listed}
        lock = tomllib.loads((proj / "uv.lock").read_text())
        download = 0
        for pkg in lock["package"]:
            if (pkg["name"], pkg.get("version")) in installed:
                w = _wheel_for_here(pkg.get("wheels", []))
                download += (w or {}).get("size", 0)
        result = {
            "project": str(args.project),
            "packages": len(installed),
            "sync_seconds_median_warm_cache": round(statistics.median(times), 2),
            "sync_seconds_all": [round(t, 2) for t in times],
            "sync_seconds_cold_cache": cold,
            "env_size_mib": round(_du(venv) / 2**20),
            "download_mib_cold_cache": round(download / 2**20),
            "largest_mib": {k: round(v / 2**20) for k, v in
                            sorted(sizes.items(), key=lambda kv: -kv[1])[:8]},
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
