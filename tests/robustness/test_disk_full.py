"""Real full and read-only file systems, and Ctrl-C during start-up, with real processes.

A small ``tmpfs`` is mounted for each case (we run as root; where mounting is not
permitted, e.g. in an unprivileged container, the tests skip).  Each command runs as
``python -m permafrost`` so that what GDAL, SQLite or NumPy print on the process's own
stderr is seen too.  The contract is the suite's: exit code 2, one line on stderr naming
the path and the fix, no traceback, the older output unchanged, no temporary file left.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from permafrost.io.atomic import TMP_MARK

from .conftest import REFUSED, ROOT, demo_pipeline_text
from .test_outputs import _command, inputs  # noqa: F401 - the fixture of the seven commands

TIMEOUT = 900


@pytest.fixture
def small_fs(tmp_path):
    """``small_fs(size_kb) -> Path``: a fresh tmpfs of that size (unmounted afterwards)."""
    mounts: list[Path] = []

    def make(size_kb: int, name: str = "fs") -> Path:
        d = tmp_path / name
        d.mkdir()
        if shutil.which("mount") is None:
            pytest.skip("no `mount` command")
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k,mode=0755", "tmpfs",
                            str(d)], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            pytest.skip(f"mounting a tmpfs is not permitted here: {r.stderr.strip()}")
        mounts.append(d)
        return d

    yield make
    for d in reversed(mounts):
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=60)


def _remount(d: Path, mode: str) -> None:
    r = subprocess.run(["mount", "-o", f"remount,{mode}", str(d)], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        pytest.skip(f"cannot remount {mode}: {r.stderr.strip()}")


def _cli(args: list, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "permafrost", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def _one_line(res: subprocess.CompletedProcess, *words: str, exit_code: int = 2) -> str:
    err = res.stderr
    assert res.returncode == exit_code, f"exit {res.returncode}: {err[-3000:]}"
    assert "Traceback" not in err + res.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    for w in words:
        assert w in lines[0], f"{w!r} not in: {lines[0]}"
    REFUSED.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
    return lines[0]


def _no_temporaries(d: Path) -> None:
    left = [str(p.relative_to(d)) for p in d.rglob("*") if TMP_MARK in p.name]
    assert not left, f"temporary files left: {left}"


# ----------------------------------------------------------------------------- predict


def test_predict_block_cache_fills_the_disk(small_fs, model_dir, sample_dir):
    fs = small_fs(256)  # the sample region's block cache needs 1.6 MB
    old = fs / "pzi.tif"
    old.write_bytes(b"an older PZI")
    res = _cli(["predict", "--model", model_dir, "--covariates", sample_dir / "covariates",
                "--out", old, "--chunk", "256", "--device", "cpu", "--threads", "1"])
    _one_line(res, str(fs), "disk is full", "free space")
    assert old.read_bytes() == b"an older PZI"
    _no_temporaries(fs)


def test_predict_cog_write_fills_the_disk(small_fs, model_dir, sample_dir):
    """Room for the block cache (540 x 720 float32 = 1.56 MB) but not for the COG."""
    fs = small_fs(1700)
    old = fs / "pzi.tif"
    old.write_bytes(b"an older PZI")
    res = _cli(["predict", "--model", model_dir, "--covariates", sample_dir / "covariates",
                "--out", old, "--chunk", "256", "--device", "cpu", "--threads", "1"])
    line = _one_line(res, "disk", "free space")
    assert line.startswith(f"Error: {old}:"), line  # the COG, not a cached block
    assert old.read_bytes() == b"an older PZI"
    _no_temporaries(fs)


# ----------------------------------------------------------------------------- GeoPackages


@pytest.mark.parametrize("command,out_name", [("labels", "labels.gpkg"),
                                              ("kinematics", "kin.gpkg")])
def test_geopackage_fills_the_disk(command, out_name, small_fs, inputs):  # noqa: F811
    fs = small_fs(48)  # a GeoPackage's SQLite schema alone takes ~100 kB
    old = fs / out_name
    old.write_bytes(b"older")
    res = _cli(_command(command, inputs, old))
    _one_line(res, str(old), "disk is full")
    assert old.read_bytes() == b"older"
    _no_temporaries(fs)


# ----------------------------------------------------------------------------- run


@pytest.mark.slow
def test_run_fills_the_disk(small_fs, tmp_path):
    fs = small_fs(1024)  # kinematics, labels and the model fit; the prediction does not
    out = fs / "run"
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(out, n_estimators=20, folds=3))
    res = _cli(["run", p])
    _one_line(res, str(fs), "disk is full", "free space")
    _no_temporaries(fs)
    assert not list(out.glob("steps/*/*.partial-*")), "a partial step directory was left"
    for step_json in out.glob("steps/*/*/step.json"):  # finished steps are complete
        assert step_json.read_text().strip().startswith("{")


def test_run_into_an_existing_output_dir_on_a_read_only_file_system(small_fs, tmp_path):
    fs = small_fs(256)
    out = fs / "run"
    out.mkdir()
    (out / ".permafrost").write_text("{}")  # a run folder of the tool's (the output guard)
    (out / "notes.txt").write_text("an earlier file")
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(out))
    _remount(fs, "ro")
    try:
        res = _cli(["run", p])
        _one_line(res, str(out), "read-only", "pipeline.output_dir")
    finally:
        _remount(fs, "rw")
    assert (out / "notes.txt").read_text() == "an earlier file"
    assert sorted(q.name for q in out.iterdir()) == [".permafrost", "notes.txt"]


# ----------------------------------------------------------------------------- Ctrl-C


@pytest.mark.parametrize("delay", [0.02, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0, 2.0])
def test_ctrl_c_during_start_up(delay, tmp_path):
    """SIGINT at points from the first import of permafrost to the first step: exit code
    130 and one line, never a traceback.

    The child says when the interpreter is ready (a Ctrl-C before that point would hit
    Python's own start-up, ``Could not import runpy module``, not ours) and then runs
    ``permafrost run`` as ``python -m permafrost`` does."""
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(tmp_path / "out"))
    # a user's terminal delivers Ctrl-C to Python's default handler; a test runner started in
    # the background inherits SIGINT ignored (POSIX shells do that to `cmd &`), which the
    # child would keep: restore the default so the test measures permafrost, not its parent
    code = ("import importlib.util, runpy, signal, sys\n"
            "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
            "importlib.util.find_spec('permafrost')\n"
            f"sys.argv = ['permafrost', 'run', {str(p)!r}]\n"
            "sys.stdout.write('ready\\n'); sys.stdout.flush()\n"
            "runpy.run_module('permafrost', run_name='__main__', alter_sys=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=TIMEOUT)
    if "Traceback" in err and not re.search(r'File "[^"]*/permafrost/', err):
        # the signal landed in Python's own import machinery (runpy, importlib) before any
        # line of permafrost ran: no code of ours can catch it there (docs/reliability.md)
        pytest.skip("SIGINT arrived before permafrost's code started")
    assert "Traceback" not in out + err, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert proc.returncode == 130, f"exit {proc.returncode}: {err[-3000:]}"
    assert len(lines) == 1 and "Interrupted" in lines[0], err


def test_a_wrapped_ctrl_c_is_recognised():
    """Python turns a KeyboardInterrupt raised in a class body's ``__set_name__`` (during the
    imports of start-up) into the cause of a RuntimeError; start-up must still see a Ctrl-C
    (one line, exit 130), and nothing else."""
    from permafrost import _interrupted

    class Hook:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    with pytest.raises(RuntimeError) as info:
        type("Owner", (), {"hook": Hook()})
    assert _interrupted(info.value)
    assert not _interrupted(RuntimeError("no interrupt"))
    # an exit an inner start-up guard already decided (it printed its one line) is no new
    # interrupt, though a KeyboardInterrupt is its context
    try:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(130)
    except SystemExit as e:
        assert isinstance(e.__context__, KeyboardInterrupt) and not _interrupted(e)
