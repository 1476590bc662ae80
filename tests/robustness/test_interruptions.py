"""`permafrost predict` and `permafrost run` killed with SIGKILL at random (seeded) points of
their progress.

After every kill the target paths hold either nothing, the previous file, or a complete
output; a rerun completes and gives the same bytes as an uninterrupted run.  The kill
points are points of the work done, not times: for predict "after block k of N" or "after
output j of 3", for run "after step k of S" or "in step k, at its start / once it has
written files", read from what the process leaves on disk (cached blocks, replaced outputs,
step directories).  They are drawn from a fixed seed, one in each third of the run's
progress (so a failure can be replayed), and each rerun is killed at the next point until
the last rerun is left to finish.  The process runs in short slices and is frozen while its
progress is read (:func:`processes.kill_at_progress`), so every kill lands in a live process
at the point drawn, however busy the machine is.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio

from permafrost.io.atomic import TMP_MARK
from permafrost.io.block_cache import default_cache_root

from processes import DEADLINE_S, kill_at_progress

from .conftest import INTERRUPTIONS, ROOT, demo_pipeline_text, normalised, run_files

SEED = 20261129
PARTIAL = ".partial-"  # a step's temporary directory: ``<key>.partial-<pid>``


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _start(args: list, log: Path) -> subprocess.Popen:
    """The command as a subprocess; its stderr goes to ``log`` (a file: a pipe nobody reads
    while the process runs could fill and block it)."""
    with open(log, "wb") as err:
        return subprocess.Popen([sys.executable, "-m", "permafrost", *map(str, args)],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)


def _complete(args: list, log: Path) -> None:
    """Run the command to its end; it must succeed."""
    p = _start(args, log)
    try:
        p.wait(timeout=DEADLINE_S)  # a bound on a hang, not a measure of speed
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(timeout=60)
        raise
    assert p.returncode == 0, log.read_text(errors="replace")[-3000:]


def _kill_points(n: int, lo: int, hi: int) -> list[int]:
    """``n`` progress counts from ``lo`` to ``hi`` (inclusive), one drawn in each of ``n``
    equal strata (seeded), so the kills spread over the whole run, in increasing order."""
    assert hi - lo + 1 >= n
    edges = [lo + round(j * (hi - lo + 1) / n) for j in range(n + 1)]
    rng = np.random.default_rng(SEED)
    return [int(rng.integers(edges[j], edges[j + 1])) for j in range(n)]


def _kill_at(args: list, log: Path, progress, start: int, point: int) -> int:
    """Start the command and SIGKILL it at the first state whose progress (``progress(pid)``,
    a count) is at least ``point`` and beyond ``start``, where a rerun begins; returns the
    progress at the kill."""
    target = max(point, start + 1)
    p = _start(args, log)

    def at_target() -> int | None:  # called while the process is frozen
        n = progress(p.pid)
        return n if n >= target else None

    reached = kill_at_progress(p, at_target)
    assert reached is not None, (
        f"the command exited (code {p.returncode}) before progress {target}: "
        + log.read_text(errors="replace")[-3000:])
    return reached


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


def _inode(p: Path) -> int | None:
    try:
        return p.stat().st_ino
    except FileNotFoundError:
        return None


@pytest.mark.slow
def test_predict_killed_at_random_points(model_dir, sample_dir, tmp_path):
    cov = sample_dir / "covariates"
    names = ("pzi.tif", "zones.tif", "unc.tif")
    chunk = 256

    def args(d: Path) -> list:
        return ["predict", "--model", model_dir, "--covariates", cov, "--out", d / names[0],
                "--zones", d / names[1], "--uncertainty", d / names[2], "--chunk", chunk,
                "--device", "cpu", "--threads", "1"]

    ref = tmp_path / "ref"
    ref.mkdir()
    log = tmp_path / "stderr.txt"  # outside the output folders, which must end up clean
    _complete(args(ref), log)
    with rasterio.open(ref / names[0]) as src:
        n_blocks = math.ceil(src.height / chunk) * math.ceil(src.width / chunk)
    out = tmp_path / "out"
    out.mkdir()
    old = {n: f"an older {n}".encode() for n in names}
    for n, b in old.items():
        (out / n).write_bytes(b)
    cache_root = default_cache_root(out / names[0])

    # progress: 1..n_blocks blocks in the cache, then n_blocks + j once j outputs are
    # replaced (each output is renamed into place: a new inode)
    def progress(inodes: dict) -> int:
        replaced = sum(_inode(out / n) not in (None, inodes[n]) for n in names)
        if replaced:
            return n_blocks + replaced
        return sum(TMP_MARK not in f.name for f in cache_root.glob("*/*.npy"))

    def point(k: int) -> str:
        if k <= n_blocks:
            return f"after block {k} of {n_blocks}"
        return f"after output {k - n_blocks} of {len(names)}, all {n_blocks} blocks cached"

    killed = []
    done = 0
    # from the first block to the second output: after it, a whole COG is left to write
    for drawn in _kill_points(3, 1, n_blocks + len(names) - 1):
        inodes = {n: _inode(out / n) for n in names}
        # a rerun starts from the cached blocks (it rewrites every output)
        done = _kill_at(args(out), log, lambda pid, i=inodes: progress(i),
                        min(done, n_blocks), drawn)
        replaced = []
        for n in names:
            p = out / n
            assert p.exists(), "a killed run removed the previous output"
            if p.read_bytes() != old[n]:  # then it is the finished new output
                _check_complete(p)
                assert _sha(p) == _sha(ref / n)
                replaced.append(n)
        cached = sum(TMP_MARK not in f.name for f in cache_root.glob("*/*.npy"))
        assert cached == min(done, n_blocks), f"{cached} blocks cached at {point(done)}"
        killed.append(("predict", f"{point(done)} ({len(replaced)}/{len(names)} outputs "
                                  "replaced" + (f"; point drawn: {point(drawn)}" if done != drawn
                                                else "") + ")"))
    _complete(args(out), log)
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
        if PARTIAL in step_dir.name:
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


def _run_progress(out: Path, pid: int) -> int:
    """3 × the finished steps, + 1 while the next step's temporary directory (of process
    ``pid``) is empty, + 2 once it holds a file."""
    steps = out / "steps"
    done = sum(PARTIAL not in m.parent.name for m in steps.glob("*/*/step.json"))
    mine = list(steps.glob(f"*/*{PARTIAL}{pid}"))
    if not mine:
        return 3 * done
    return 3 * done + (2 if any(f.is_file() for f in mine[0].rglob("*")) else 1)


@pytest.mark.slow
def test_run_killed_at_random_points(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    pipe = work / "pipe.toml"
    pipe.write_text(demo_pipeline_text(work / "out", n_estimators=40, folds=3))
    args = ["run", pipe]
    log = tmp_path / "stderr.txt"
    _complete(args, log)
    ref = tmp_path / "reference"
    (work / "out").rename(ref)  # the interrupted runs write to the same absolute path
    # the steps in the order they finished
    order = [m.parent.parent.name for m in sorted(ref.glob("steps/*/*/step.json"),
                                                    key=lambda m: m.stat().st_mtime_ns)]
    n = len(order)

    def point(k: int) -> str:
        i, r = divmod(k, 3)
        if r == 0:
            return f"after step {i} of {n} ({order[i - 1]})"
        return (f"in step {i + 1} of {n} ({order[i]}), "
                + ("at its start" if r == 1 else "once it had written files"))

    killed, progress = [], []
    # from the first step's start to the last step's start: its whole work is left then
    for drawn in _kill_points(3, 1, 3 * n - 2):
        start = 3 * (progress[-1] if progress else 0)
        reached = _kill_at(args, log, lambda pid: _run_progress(work / "out", pid), start, drawn)
        progress.append(_check_run_dir(work / "out"))
        assert progress[-1] == reached // 3, f"{progress[-1]} steps finished at {point(reached)}"
        killed.append(("run", point(reached)
                       + (f" (point drawn: {point(drawn)})" if reached != drawn else "")))
    assert progress == sorted(progress), "finished steps were lost by a later kill"
    _complete(args, log)
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
    left = [q for q in out.rglob("*") if TMP_MARK in q.name or PARTIAL in q.name]
    assert not left, left
    shutil.rmtree(ref)
    INTERRUPTIONS.extend(killed)
