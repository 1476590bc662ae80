"""`permafrost predict` and `permafrost run` killed with SIGKILL at random (seeded) points.

After every kill the target paths hold either nothing, the previous file, or a complete
output; a rerun completes and gives the same bytes as an uninterrupted run.  The kill
points are fractions of the measured duration of the uninterrupted run, drawn from a fixed
seed (so a failure can be replayed); each rerun is itself killed at the next point until
the last rerun is left to finish.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from permafrost.io._atomic import TMP_MARK

from .conftest import INTERRUPTIONS, ROOT, demo_pipeline_text, normalised, run_files

SEED = 20261129


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _start(args: list) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "permafrost", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _timed(args: list) -> float:
    t0 = time.monotonic()
    p = _start(args)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]
    return time.monotonic() - t0


def _kill_after(args: list, seconds: float) -> bool:
    """Start, SIGKILL after ``seconds``; True when it was killed (False: it had finished)."""
    p = _start(args)
    try:
        p.wait(timeout=seconds)
        assert p.returncode == 0, p.stderr.read().decode()[-3000:]
        return False
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=60)
        return True
    finally:
        p.stderr.close()


def _kill_points(n: int, lo: float = 0.1, hi: float = 0.95) -> list[float]:
    """``n`` random fractions of the run time, one in each of ``n`` equal strata of
    [lo, hi] (seeded), so the kills spread over the whole run."""
    u = np.random.default_rng(SEED).uniform(0, 1, n)
    return [lo + (hi - lo) * (k + u[k]) / n for k in range(n)]


def _check_complete(p: Path) -> None:
    """A file at a target path is a complete, readable output."""
    suffix = p.suffix.lower()
    if suffix == ".tif":
        with rasterio.open(p) as src:
            src.read(1)
    elif suffix == ".json":
        json.loads(p.read_text())
    elif suffix == ".gpkg":
        pyogrio.read_dataframe(p)
    else:
        assert p.stat().st_size > 0, p


# ----------------------------------------------------------------------------- predict


@pytest.mark.slow
def test_predict_killed_at_random_points(model_dir, sample_dir, tmp_path):
    cov = sample_dir / "covariates"
    names = ("pzi.tif", "zones.tif", "unc.tif")

    def args(d: Path) -> list:
        return ["predict", "--model", model_dir, "--covariates", cov, "--out", d / names[0],
                "--zones", d / names[1], "--uncertainty", d / names[2], "--chunk", "256",
                "--device", "cpu", "--threads", "1"]

    ref = tmp_path / "ref"
    ref.mkdir()
    duration = _timed(args(ref))
    out = tmp_path / "out"
    out.mkdir()
    old = {n: f"an older {n}".encode() for n in names}
    for n, b in old.items():
        (out / n).write_bytes(b)
    killed = []
    for frac in _kill_points(3, 0.5, 0.98):  # the first half is mostly start-up
        was_killed = _kill_after(args(out), frac * duration)
        replaced = 0
        for n in names:
            p = out / n
            assert p.exists(), "a killed run removed the previous output"
            if p.read_bytes() != old[n]:  # then it is the finished new output
                _check_complete(p)
                assert _sha(p) == _sha(ref / n)
                replaced += 1
        if was_killed:
            cache = list(out.glob(".pzi.tif.pfblocks/*/*.npy"))
            killed.append(("predict", f"{frac * duration:.1f} s: {len(cache)} blocks cached, "
                                      f"{replaced}/3 outputs replaced"))
    assert len(killed) >= 2, f"only {len(killed)} of 3 runs were interrupted ({duration:.1f} s)"
    res = _start(args(out))
    _, err = res.communicate(timeout=600)
    assert res.returncode == 0, err.decode()[-3000:]
    for n in names:
        assert _sha(out / n) == _sha(ref / n), f"{n} differs from the uninterrupted run"
    leftovers = [p.name for p in out.iterdir() if TMP_MARK in p.name or p.name.startswith(".")]
    assert not leftovers, leftovers
    INTERRUPTIONS.extend(killed)


# ----------------------------------------------------------------------------- run

def _check_run_dir(out: Path) -> int:
    """Every finished step directory and every scenario file is complete; returns the
    number of finished steps."""
    if not out.exists():
        return 0  # killed before it created anything
    done = 0
    for step_dir in sorted((out / "steps").glob("*/*")) if (out / "steps").exists() else []:
        if ".partial-" in step_dir.name:
            continue  # a step's scratch directory, never read by anyone
        meta = json.loads((step_dir / "step.json").read_text())
        for rel in meta["outputs"].values():
            _check_complete(step_dir / rel)
        done += 1
    for sc in (p for p in out.iterdir() if p.is_dir() and p.name not in ("steps", ".cache")):
        for f in sc.iterdir():
            if TMP_MARK not in f.name and ".link-" not in f.name:  # temporaries: ignored
                _check_complete(f)
    return done


@pytest.mark.slow
def test_run_killed_at_random_points(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    pipe = work / "pipe.toml"
    pipe.write_text(demo_pipeline_text(work / "out", n_estimators=40, folds=3))
    args = ["run", pipe]
    duration = _timed(args)
    ref = tmp_path / "reference"
    (work / "out").rename(ref)  # the interrupted runs write to the same absolute path
    killed, progress = [], []
    for frac in _kill_points(3, 0.3, 0.95):
        was_killed = _kill_after(args, frac * duration)
        progress.append(_check_run_dir(work / "out"))
        if was_killed:
            killed.append(("run", f"{frac * duration:.1f} s: {progress[-1]} steps finished"))
    assert len(killed) >= 2, f"only {len(killed)} of 3 runs were interrupted ({duration:.1f} s)"
    assert progress == sorted(progress), "finished steps were lost by a later kill"
    p = _start(args)
    _, err = p.communicate(timeout=600)
    assert p.returncode == 0, err.decode()[-3000:]
    out = work / "out"
    files = run_files(out)
    assert files == run_files(ref)
    for rel in files:
        if rel.endswith(".json"):
            same = {str(out): "<OUT>"}
            assert normalised(out / rel, ref, others=same) == normalised(ref / rel, ref,
                                                                          others=same), rel
        else:
            assert _sha(out / rel) == _sha(ref / rel), f"{rel} differs from the uninterrupted run"
    left = [q for q in out.rglob("*") if TMP_MARK in q.name or ".partial-" in q.name]
    assert not left, left
    shutil.rmtree(ref)
    INTERRUPTIONS.extend(killed)
