"""Two full runs of the demo pipeline (baseline) give byte-identical outputs.

Rasters, GeoPackages, model files and CSVs must be identical byte for byte; JSON and HTML
may differ only in wall-clock timings and in the run's own absolute paths (each run writes
into its own directory).  Also checks that a run writes nothing outside its output
directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from factories import ROOT, demo_pipeline_text, normalised, run_files
from robustness.conftest import IDENTICAL


def _tree_state(d: Path) -> dict:
    return {str(p.relative_to(d)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in d.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _run(pipeline: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "random"}  # hash order must not matter
    return subprocess.run([sys.executable, "-m", "permafrost", "run", str(pipeline)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, env=env)


@pytest.mark.slow
def test_two_demo_runs_are_identical_and_stay_in_their_output_dir(tmp_path):
    """Both runs write to the same absolute path (moved aside in between), so that
    provenance paths agree and every file can be compared byte for byte."""
    samples_before = _tree_state(ROOT / "data_samples")
    pipelines_before = _tree_state(ROOT / "pipelines")
    d = tmp_path / "work"
    d.mkdir()
    p = d / "demo.toml"
    p.write_text(demo_pipeline_text(d / "out"))
    for name in ("first", "second"):
        res = _run(p)
        assert res.returncode == 0, res.stderr[-3000:]
        # nothing written beside the pipeline file but the output directory
        assert sorted(q.name for q in d.iterdir()) == ["demo.toml", "out"]
        (d / "out").rename(tmp_path / name)
    a, b = tmp_path / "first", tmp_path / "second"
    # paths inside the files name d/out in both runs: make the comparison see that
    same = {str(d / "out"): "<OUT>"}
    files = run_files(a)
    assert files == run_files(b)
    counts: dict[str, int] = {}
    for rel in files:
        na = normalised(a / rel, a, others=same)
        nb = normalised(b / rel, b, others=same)
        if Path(rel).suffix.lower() not in (".json",):
            na, nb = (a / rel).read_bytes(), (b / rel).read_bytes()  # raw bytes
        assert na == nb, f"{rel} differs between two identical runs"
        counts[Path(rel).suffix.lower()] = counts.get(Path(rel).suffix.lower(), 0) + 1
    assert counts.get(".tif", 0) >= 6, counts  # pzi, zones, uncertainty (+ links), agreement
    assert counts.get(".json", 0) >= 8, counts
    IDENTICAL.update(counts)
    # the inputs and the pipelines folder are untouched
    assert _tree_state(ROOT / "data_samples") == samples_before
    assert _tree_state(ROOT / "pipelines") == pipelines_before
    # and no temporary or partial leftovers anywhere in the runs
    for out in (a, b):
        left = [q for q in out.rglob("*") if ".pftmp-" in q.name or ".partial-" in q.name]
        assert not left, left
