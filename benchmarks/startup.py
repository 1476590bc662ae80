"""Start-up time of the command-line app: `permafrost --version`, `--help` and more.

Each command runs as a fresh process (the console script of this environment, else
``python -m permafrost``), ``--repeats`` times, interleaved with a ``python -c pass``
baseline measured in the same run, and the medians are printed as JSON, with each
command's time in seconds, minus the interpreter's own start-up, and as a ratio to it.
It also says which heavy libraries a bare ``import permafrost.cli`` loads (none should).

    uv run python benchmarks/startup.py                 # 7 repeats
    uv run python benchmarks/startup.py --repeats 15
    uv run python benchmarks/startup.py --source /tmp/old-checkout   # another version's code

Targets (issue 15): ``--version`` under 1 s and ``--help`` under 1.5 s on the development
machine.  This prints figures; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HEAVY = ["numpy", "pandas", "xarray", "rioxarray", "rasterio", "geopandas", "xgboost",
         "sklearn", "dask", "scipy", "h5py", "mintpy", "matplotlib", "pydantic", "rich"]

COMMANDS = {
    "--version": ["--version"],
    "--help": ["--help"],
    "stats --help": ["stats", "--help"],
    "run --help": ["run", "--help"],
}


def _entry() -> list[str]:
    script = Path(sys.executable).with_name("permafrost")
    if script.exists():
        return [str(script)]
    found = shutil.which("permafrost")
    return [found] if found else [sys.executable, "-m", "permafrost"]


_ENV: dict[str, str] = {}
_CWD: list[str | None] = [None]  # `python -m` puts the working directory first on sys.path


def _time(cmd: list[str]) -> float:
    env = {**os.environ, **_ENV}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, cwd=_CWD[0])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--source", type=Path, default=None,
                    help="run `python -m permafrost` from this checkout (PYTHONPATH) instead")
    args = ap.parse_args()
    entry = _entry()
    if args.source is not None:
        _ENV["PYTHONPATH"] = str(args.source.resolve())
        _CWD[0] = str(args.source.resolve())
        entry = [sys.executable, "-m", "permafrost"]
    baseline_cmd = [sys.executable, "-c", "pass"]
    # one warm-up of each (page cache, .pyc files)
    _time(baseline_cmd)
    for extra in COMMANDS.values():
        _time(entry + extra)
    times: dict[str, list[float]] = {"python -c pass": []}
    for name in COMMANDS:
        times[name] = []
    for _ in range(args.repeats):  # interleaved: machine load hits every command alike
        times["python -c pass"].append(_time(baseline_cmd))
        for name, extra in COMMANDS.items():
            times[name].append(_time(entry + extra))
    base = statistics.median(times["python -c pass"])
    probe = ("import sys, permafrost.cli; print(' '.join(m for m in %r if m in sys.modules))"
             % (HEAVY,))
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            check=True, env={**os.environ, **_ENV}, cwd=_CWD[0]
                            ).stdout.split()
    result = {
        "entry": " ".join(Path(entry[0]).name if i == 0 else a for i, a in enumerate(entry)),
        "repeats": args.repeats,
        "baseline_python_s": round(base, 3),
        "commands": {
            name: {"median_s": round(statistics.median(ts), 3),
                   "min_s": round(min(ts), 3), "max_s": round(max(ts), 3),
                   "over_baseline_s": round(statistics.median(ts) - base, 3),
                   "ratio_to_baseline": round(statistics.median(ts) / base, 1)}
            for name, ts in times.items() if name != "python -c pass"
        },
        "targets_s": {"--version": 1.0, "--help": 1.5},
        "heavy_modules_loaded_by_import_permafrost_cli": loaded,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
