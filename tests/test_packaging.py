"""Install weight: what the default install leaves out, and what happens without it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _source() -> str:
    return "\n".join(p.read_text() for p in (ROOT / "permafrost").rglob("*.py"))


def test_default_install_leaves_out_what_the_code_never_imports():
    """pyarrow (via dask[dataframe]) and NCCL are not in the default install; the code must
    then not import dask.dataframe, xgboost.dask or pyarrow at module level."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = meta["project"]["dependencies"]
    dask = next(d for d in deps if d.startswith("dask"))
    assert "dataframe" not in dask
    assert not any(d.startswith("pyarrow") for d in deps)
    assert any(d.startswith("pyarrow") for d in meta["project"]["optional-dependencies"]
               ["parquet"])
    overrides = meta["tool"]["uv"]["override-dependencies"]
    assert any(o.startswith("nvidia-nccl-cu12") and "never" in o for o in overrides)
    src = _source()
    for pattern in (r"^\s*import dask\.dataframe", r"^\s*from dask import dataframe",
                    r"^\s*from dask\.dataframe", r"xgboost\.dask", r"^\s*import pyarrow",
                    r"^\s*from pyarrow"):
        assert not re.search(pattern, src, flags=re.M), pattern


def test_geoparquet_without_pyarrow_is_a_one_line_error(tmp_path, monkeypatch):
    import importlib.util

    from permafrost.errors import InputFileError
    from permafrost.io.vectors import read_vector

    (tmp_path / "x.parquet").write_bytes(b"PAR1")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(InputFileError, match=r"pyarrow.*permafrost\[parquet\]"):
        read_vector(tmp_path / "x.parquet")
