"""Two commands on one output at once, as real processes.

`permafrost run` holds a lock on its output directory and `permafrost predict` one on each
of its targets for the whole command: a second command on the same output refuses at once
with one line naming the path and the process that holds it (exit code 2), and the first
one finishes undisturbed.  A step's temporary directory ``<key>.partial-<pid>`` is removed
only when the process that owns it is dead.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyogrio
import pytest
import rasterio

from permafrost.io.atomic import TMP_MARK

from .conftest import REFUSED, ROOT, demo_pipeline_text

TIMEOUT = 900  # generous: the 2 shared cores of CI may be busy


def _start(args: list) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "permafrost", *map(str, args)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(p: subprocess.Popen) -> tuple[int, str]:
    _, err = p.communicate(timeout=TIMEOUT)
    return p.returncode, err


def _holder_of(lock: Path, procs: list[subprocess.Popen], timeout: float = TIMEOUT
               ) -> subprocess.Popen:
    """The process that holds ``lock`` (its pid is written into the file), found by polling
    (bounded by a generous deadline, never a measure of speed)."""
    t0 = time.monotonic()
    by_pid = {p.pid: p for p in procs}
    while time.monotonic() - t0 < timeout:
        try:
            head = lock.read_text().split(" ")[0]
        except OSError:
            head = ""
        if head.isdigit() and int(head) in by_pid:
            return by_pid[int(head)]
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.02)
    for p in procs:
        p.kill()
    pytest.fail(f"no process took {lock} within {timeout} s: "
                + " / ".join((p.stderr.read() or "")[-2000:] for p in procs))


def _race(args: list, lock: Path, *, together: bool) -> list[tuple[int, str]]:
    """Two commands on one output: started together, or the second while the first runs.

    The holder of the lock is paused (SIGSTOP) as soon as it holds it, so that the other
    one meets a running command however fast the machine is; it is resumed (SIGCONT) once
    the other has ended, and both are awaited."""
    first = _start(args)
    procs = [first]
    if together:
        procs.append(_start(args))
    holder = _holder_of(lock, procs)
    holder.send_signal(signal.SIGSTOP)
    try:
        if not together:
            procs.append(_start(args))
        other = next(p for p in procs if p is not holder)
        other_result = _finish(other)
    finally:
        holder.send_signal(signal.SIGCONT)
    holder_result = _finish(holder)
    assert holder_result[0] == 0, holder_result[1][-3000:]
    return [holder_result, other_result]


def _one_won_one_refused(results: list[tuple[int, str]], target: Path) -> str:
    """Exactly one command succeeded; the other refused with one line naming the target."""
    codes = sorted(rc for rc, _ in results)
    assert codes == [0, 2], "\n---\n".join(f"exit {rc}:\n{err[-3000:]}" for rc, err in results)
    err = next(err for rc, err in results if rc == 2)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "Internal error" not in err
    assert str(target) in lines[0] and "in use by process" in lines[0], lines[0]
    REFUSED.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
    return lines[0]


# ----------------------------------------------------------------------------- predict


def _predict_args(model_dir: Path, cov: Path, out: Path) -> list:
    # small blocks: many cached blocks, so that the two runs overlap for many seconds
    return ["predict", "--model", model_dir, "--covariates", cov, "--out", out / "pzi.tif",
            "--zones", out / "zones.tif", "--chunk", "32", "--device", "cpu", "--threads", "1"]


def _check_predict_output(out: Path) -> None:
    # the winner's outputs, their QGIS styles and GDAL's sidecar (category names)
    left = [p.name for p in out.iterdir()
            if p.name not in ("pzi.tif", "zones.tif", "pzi.qml", "zones.qml")
            and not p.name.endswith(".tif.aux.xml")]
    assert not left, f"left behind: {left}"  # no .pfblocks, .pflock or temporary file
    for name in ("pzi.tif", "zones.tif"):
        with rasterio.open(out / name) as src:
            assert src.read(1).shape == (540, 720)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["together", "mid-run"])
def test_two_predicts_to_one_target(when, model_dir, sample_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    args = _predict_args(model_dir, sample_dir / "covariates", out)
    results = _race(args, out / ".pzi.tif.pflock", together=when == "together")
    _one_won_one_refused(results, out / "pzi.tif")
    _check_predict_output(out)


# ----------------------------------------------------------------------------- run


@pytest.mark.slow
def test_two_runs_on_one_output_directory(tmp_path):
    out = tmp_path / "run"
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(out, n_estimators=30, folds=3))
    results = _race(["run", p], out / ".cache" / "lock", together=True)
    _one_won_one_refused(results, out)
    # the winner's steps are all complete and nothing temporary is left
    steps = list(out.glob("steps/*/*/step.json"))
    assert len(steps) == 7, steps  # kinematics, labels, train, predict, stats, validate, report
    assert not list(out.glob("steps/*/*.partial-*")), "temporary step directories left"
    gpkg = next(out.glob("steps/labels/*/labels.gpkg"))
    assert len(pyogrio.read_dataframe(gpkg)) > 0


@pytest.mark.slow
def test_partial_directory_is_removed_only_when_its_owner_is_dead(tmp_path):
    """`pipeline.engine._execute` keeps another live process's `<key>.partial-<pid>` directory and
    removes those of dead processes (and of its own pid: a dead earlier process)."""
    from permafrost.pipeline import StepSpec
    from permafrost.pipeline.engine import _execute, _HashCache

    final = tmp_path / "steps" / "demo" / "0123456789abcdef"
    final.parent.mkdir(parents=True)
    # alive until killed below, however long the steps up to there take
    live = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait(timeout=60)
    try:
        dirs = {}
        for label, pid in (("live", live.pid), ("dead", dead.pid), ("old-dead", None),
                           ("own", os.getpid())):
            name = (f"{final.name}.partial-old-{dead.pid}" if pid is None
                    else f"{final.name}.partial-{pid}")
            d = final.parent / name
            if label == "own":  # our pid's directory must be fresh for the step itself
                d = final.parent / f"{final.name}.partial-{os.getpid()}"
            d.mkdir()
            (d / "payload.txt").write_text(label)
            dirs[label] = d

        def run(ctx):
            (ctx.workdir / "out.txt").write_text("done")
            return {"out": "out.txt"}, {}

        spec = StepSpec("demo", (), lambda c, ch: {}, lambda c, ch: {}, run)
        rec = _execute(spec, dict(config=None, scenario="baseline", covariate_changes={},
                                  upstream={}, seed=0), "0123456789abcdef" * 4, final, False,
                       lambda kind, info: None, _HashCache(tmp_path / "hashes.json"))
        assert (rec.directory / "out.txt").read_text() == "done"
        assert (dirs["live"] / "payload.txt").read_text() == "live", "a live run's directory"
        assert not dirs["dead"].exists() and not dirs["old-dead"].exists()
        assert not (rec.directory / "payload.txt").exists()
    finally:
        live.kill()
        live.wait(timeout=60)


@pytest.mark.slow
def test_lock_refuses_second_holder_and_is_released_by_sigkill(tmp_path):
    """The lock is released when its owner dies, however it dies: a killed run never leaves
    a stale lock behind."""
    from permafrost.errors import OutputError
    from permafrost.io.locks import exclusive_lock

    lock = tmp_path / "lock"
    holder = subprocess.Popen([sys.executable, "-c", (
        "import signal\n"
        "from permafrost.io.locks import exclusive_lock\n"
        f"with exclusive_lock({str(lock)!r}, what='output directory', target='x'):\n"
        "    print('held', flush=True)\n"
        "    signal.pause()  # holds the lock until it is killed\n")],
        stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(OutputError, match=f"in use by process {holder.pid} on"):
            with exclusive_lock(lock, what="output directory", target="x"):
                pass
    finally:
        holder.kill()
        holder.wait(timeout=60)
    with exclusive_lock(lock, what="output directory", target="x"):
        assert lock.read_text().startswith(f"{os.getpid()} on")
    assert TMP_MARK not in "".join(os.listdir(tmp_path))
