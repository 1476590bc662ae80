"""Outputs that cannot be written: a parent that is a file, /proc, a disk that fills up.

Tests run as root, so permission bits do not stop a write; these cases fail for root too.
A full disk is simulated by making the flush of the temporary file (``os.fsync`` in
:mod:`permafrost.io.atomic`) or the write itself fail with ``ENOSPC`` after part of the
data went out -- where a real full disk reports it.
"""

from __future__ import annotations

import errno
import os
import pathlib

import pytest

import permafrost.io.atomic as atomic

from .conftest import Outputs, assert_clean_failure, invoke


@pytest.fixture
def inputs(make_covariates, make_inventory, make_boreholes, make_labels, make_pzi, make_track,
           model_dir, tmp_path):
    cov = make_covariates()
    t = make_track()
    return {"cov": cov, "dem": cov / "dem.tif", "inv": make_inventory(),
            "bh": make_boreholes(), "labels": make_labels(), "pzi": make_pzi(),
            "model": model_dir, "track": t}


def _command(name: str, i: dict, out) -> list:
    """The command line of ``name`` writing to ``out``."""
    return {
        "kinematics": ["kinematics", "--track", i["track"].folder, "--outlines",
                       i["track"].folder / "outlines.gpkg", "--out", out],
        "labels": ["labels", "--inventory", i["inv"], "--boreholes", i["bh"], "--dem", i["dem"],
                   "--out", out],
        "train": ["train", "--labels", i["labels"], "--covariates", i["cov"], "--out", out,
                  "--device", "cpu", "--folds", "2", "--n-estimators", "5", "--no-random-cv",
                  "--block-size", "500"],
        "predict": ["predict", "--model", i["model"], "--covariates", i["cov"], "--out", out,
                    "--device", "cpu", "--threads", "1"],
        "stats": ["stats", i["pzi"], "--out-json", out],
        "validate": ["validate", i["pzi"], "--boreholes", i["bh"], "--out", out],
        "report": ["report", "--pzi", i["pzi"], "--out", out],
    }[name]


OUT_NAMES = {"kinematics": "kin.gpkg", "labels": "labels.gpkg", "train": "model",
             "predict": "pzi.tif", "stats": "stats.json", "validate": "validation",
             "report": "report.html"}
COMMANDS = list(OUT_NAMES)


@pytest.mark.parametrize("command", COMMANDS)
def test_output_parent_is_a_regular_file(command, inputs, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory should be")
    out = blocker / OUT_NAMES[command]
    res = invoke(_command(command, inputs, out))
    assert_clean_failure(res, names=blocker.name)
    assert blocker.read_text() == "a regular file where a directory should be"


@pytest.mark.parametrize("command", ["stats", "labels", "report", "predict"])
def test_output_under_proc(command, inputs):
    """/proc refuses new files even for root."""
    out = pathlib.Path("/proc/self") / OUT_NAMES[command]
    res = invoke(_command(command, inputs, out))
    assert_clean_failure(res, names="/proc/self")


class _FullDiskOS:
    """``os`` as seen by the atomic writer, on a disk that is full when data is flushed."""

    def __init__(self) -> None:
        self.calls = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def fsync(self, fd):
        self.calls += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("command", ["kinematics", "labels", "predict", "stats", "report"])
def test_disk_full_when_flushing(command, inputs, tmp_path, monkeypatch):
    out = tmp_path / "out" / OUT_NAMES[command]
    out.parent.mkdir()
    out.write_bytes(b"the previous, complete output")
    snap = Outputs.take(out)
    full = _FullDiskOS()
    monkeypatch.setattr(atomic, "os", full)
    res = invoke(_command(command, inputs, out))
    assert full.calls >= 1, "the command did not write through the atomic writer"
    line = assert_clean_failure(res, names=out.name, outputs=snap)
    assert "disk is full" in line


def test_disk_full_in_the_middle_of_a_text_write(inputs, tmp_path, monkeypatch):
    """The writer gets half the bytes out, then ENOSPC: no half file at the target."""
    real_open = open

    class HalfFile:
        def __init__(self, fh):
            self.fh = fh

        def write(self, data):
            self.fh.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    def fake_open(path, mode="r", *a, **kw):
        fh = real_open(path, mode, *a, **kw)
        return HalfFile(fh) if "w" in mode and atomic.TMP_MARK in str(path) else fh

    monkeypatch.setattr(atomic, "open", fake_open, raising=False)
    out = tmp_path / "stats.json"
    res = invoke(_command("stats", inputs, out))
    line = assert_clean_failure(res, names=out.name, outputs=Outputs.take(out))
    assert "disk is full" in line
    assert not out.exists()


def test_disk_full_while_saving_a_model(inputs, tmp_path, monkeypatch):
    """train writes its model directory through a temporary directory: a full disk while
    writing it leaves the previous model directory untouched and no temporary behind."""
    out = tmp_path / "model"
    assert invoke(_command("train", inputs, out)).exit_code == 0
    snap = Outputs.take(out)
    real = pathlib.Path.write_bytes

    def failing_write_bytes(self, data):
        if atomic.TMP_MARK in str(self):
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", failing_write_bytes)
    res = invoke(_command("train", inputs, out))
    assert_clean_failure(res, names=out.name, outputs=snap)
    assert not [p for p in tmp_path.iterdir() if atomic.TMP_MARK in p.name]
