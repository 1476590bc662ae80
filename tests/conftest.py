"""Shared fixtures: paths to the sample region and to the real data, and small factories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
REALDATA = Path(os.environ.get("PERMAFROST_REALDATA", ROOT.parent / "shared" / "realdata"))


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The generated sample region (``data_samples/``)."""
    if not (SAMPLES / "covariates" / "dem.tif").exists():
        pytest.fail("data_samples/ is not generated: run `python data_samples/generate.py`")
    return SAMPLES


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` (skips the test cleanly when the folder is absent)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder not available at {REALDATA}")
    return REALDATA
