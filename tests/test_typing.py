"""mypy over the package passes (issue 25 item 5: a typed public API, checked in CI).

CI runs the README's test command only, so this test is how mypy runs there.  The
configuration is pyproject's ``[tool.mypy]`` (the untyped third-party libraries listed one by
one; the modules being rewritten concurrently exempted until merge).  mypy's incremental cache
(``.mypy_cache/`` at the repository root, gitignored) keeps a re-run to a few seconds.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_passes_on_the_package():
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "permafrost",
         "--cache-dir", str(ROOT / ".mypy_cache"), "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, (
        "mypy reports errors in the package (run `uv run mypy permafrost`):\n"
        + proc.stdout + proc.stderr
    )


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_reports_a_type_error(tmp_path):
    """The configuration does not silence everything: a wrong type in a module is reported."""
    bad = tmp_path / "bad.py"
    bad.write_text("from permafrost.styles import ZONE_NODATA\nx: str = 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", str(bad), "--config-file", str(ROOT / "pyproject.toml"),
         "--cache-dir", str(ROOT / ".mypy_cache"), "--no-error-summary"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 1
    assert "bad.py:2: error" in proc.stdout
