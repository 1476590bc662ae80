"""Result edges: JSON and CSV tables of statistics and validation, read and written atomically.

No science here.  JSON is written with sorted keys and NaN/inf as ``null`` so that the same
results give byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from permafrost.errors import DataError, InputFileError
from permafrost.io.atomic import atomic_write_text
from permafrost.provenance import canonical_json, jsonable

__all__ = ["to_jsonable", "write_json", "load_json", "read_json", "write_csv"]


#: numpy scalars/arrays, paths and non-finite floats as plain JSON values
#: (:func:`permafrost.provenance.jsonable`)
to_jsonable = jsonable


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON (sorted keys, NaN -> null) atomically."""
    return atomic_write_text(path, canonical_json(obj, indent=2) + "\n")


def load_json(path: str | os.PathLike, *, fix: str, error: type = DataError):
    """Any JSON value from a file; missing or malformed files are one-line errors.

    ``error`` is the class raised for malformed content (``fix`` says what to give).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"not valid JSON ({exc})", path=p, fix=fix) from None


def read_json(path: str | os.PathLike) -> dict:
    """Read a JSON object written by permafrost; anything else is a one-line error."""
    p = Path(path)
    obj = load_json(p, fix="give the JSON file written by permafrost")
    if not isinstance(obj, dict):
        raise DataError(f"expected a JSON object, found a {type(obj).__name__}", path=p,
                        fix="give the JSON file written by permafrost")
    return obj


def write_csv(rows: Iterable[Mapping], path: str | os.PathLike, *,
              columns: Sequence[str] | None = None) -> Path:
    """Write dict rows as CSV (columns in the given order, None/NaN as empty) atomically."""
    rows = list(rows)
    cols = list(columns) if columns is not None else list(dict.fromkeys(
        k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: _cell(r.get(c)) for c in cols})
    return atomic_write_text(path, buf.getvalue())


def _cell(v):
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if not math.isfinite(float(v)) else repr(float(v))
    return v
