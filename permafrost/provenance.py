"""Provenance: the one home of deterministic JSON, file fingerprints and library versions.

Everything that records where an output came from uses these three:

* :func:`canonical_json` -- JSON with sorted keys, NumPy values, paths and pydantic models
  as plain values and NaN/inf as ``null``: compact for hashing, indented for files.  The
  same object always gives the same bytes.
* :func:`file_digest` -- SHA-256 of a file's bytes (of a directory's files, with their
  relative names), remembered per path, size and modification time within the process.
* :func:`versions` -- the versions of Python, permafrost and the libraries that shape the
  outputs, one dict; callers pick the packages they record.
* :func:`relative_path` -- a path relative to a base directory, so that what an output
  records does not name the machine or the checkout.

No science here, and of the package only its version (any module may use it).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import threading
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from permafrost import __version__

__all__ = [
    "relative_path",
    "canonical_json",
    "file_digest",
    "model_fingerprint",
    "json_default",
    "jsonable",
    "versions",
    "VERSION_PACKAGES",
]

#: the packages a run manifest records by default (:func:`versions`)
VERSION_PACKAGES = ("python", "permafrost", "numpy", "xarray", "rioxarray", "rasterio",
                    "geopandas", "xgboost", "scikit-learn", "dask", "mintpy", "gdal")


# ---------------------------------------------------------------------------------------
# JSON


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values: mappings (keys as text), lists, numbers, text, null.

    NumPy scalars and arrays become numbers and lists, non-finite floats ``None``, paths
    text, pydantic models their JSON dump, tuples and sets lists.
    """
    if hasattr(obj, "model_dump") and not isinstance(obj, type):
        obj = obj.model_dump(mode="json")
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return obj


def json_default(o: Any) -> Any:
    """``default=`` for :func:`json.dumps`: paths, pydantic models, sets and tuples."""
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def canonical_json(obj: Any, *, indent: int | None = None) -> str:
    """Deterministic JSON text of ``obj`` (sorted keys, see :func:`jsonable`).

    Parameters
    ----------
    obj : object
        Anything :func:`jsonable` turns into JSON values.
    indent : int, optional
        Indent of a file's JSON; ``None`` (the default) gives the compact form used for
        hashing (``,`` and ``:`` without spaces).

    Returns
    -------
    str
        The JSON text, without a final newline.
    """
    if indent is None:
        return json.dumps(jsonable(obj), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return json.dumps(jsonable(obj), sort_keys=True, indent=indent, allow_nan=False)


# ---------------------------------------------------------------------------------------
# files

_DIGESTS: dict[tuple[str, int, int, int, int], str] = {}
_DIGESTS_LOCK = threading.Lock()


def file_digest(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file's bytes, streamed.

    A directory's digest covers its files (not hidden ones) with their relative names.
    Digests are remembered per resolved path, size, modification time, inode and
    status-change time, so asking again in the same process costs a ``stat`` (a rewrite
    that keeps the size and the mtime changes the ctime, a rewrite by rename the inode).
    """
    p = Path(path)
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith(".")):
            h.update(str(f.relative_to(p)).encode())
            h.update(file_digest(f, chunk=chunk).encode())
        return h.hexdigest()
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    with _DIGESTS_LOCK:
        hit = _DIGESTS.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    digest = h.hexdigest()
    with _DIGESTS_LOCK:
        _DIGESTS[key] = digest
    return digest


def model_fingerprint(model: Any, path: str | os.PathLike | None = None) -> str:
    """SHA-256 (hex) of a PZI model: of its directory's files when a path is known, else of
    its predictors, calibration, metadata and feature names.

    The ``PZI_MODEL_SHA256`` tag of every PZI raster and part of the prediction cache's key.
    Unlike :func:`file_digest` of the directory it hashes the files' raw bytes, hidden files
    included (the model directory has none of its own): kept as it is so that the tags of
    maps already published stay comparable.
    """
    h = hashlib.sha256()
    if path is not None and Path(path).is_dir():
        root = Path(path)
        for f in sorted(q for q in root.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
        return h.hexdigest()
    if path is not None and Path(path).is_file():
        h.update(Path(path).read_bytes())
        return h.hexdigest()
    for pred in [getattr(model, "predictor", None), *list(getattr(model, "fold_models", []))]:
        if hasattr(pred, "to_bytes"):
            h.update(pred.to_bytes())
        elif hasattr(pred, "save_raw"):  # a bare xgboost.Booster
            h.update(bytes(pred.save_raw("json")))
    h.update(json.dumps(getattr(model, "calibration", None), sort_keys=True, default=str).encode())
    h.update(json.dumps(getattr(model, "metadata", {}), sort_keys=True, default=str).encode())
    h.update(json.dumps(list(model.feature_names)).encode())
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# versions


def versions(packages: Iterable[str] = VERSION_PACKAGES) -> dict[str, str]:
    """Versions of Python, permafrost and libraries, in the order asked for.

    Parameters
    ----------
    packages : iterable of str
        Distribution names, plus ``python``, ``permafrost`` and ``gdal`` (the GDAL that
        rasterio is built on).  Packages that are not installed are left out.
    """
    out: dict[str, str] = {}
    for pkg in packages:
        if pkg == "python":
            out[pkg] = platform.python_version()
        elif pkg == "permafrost":
            out[pkg] = __version__
        elif pkg == "gdal":
            import rasterio

            out[pkg] = rasterio.__gdal_version__
        else:
            try:
                out[pkg] = version(pkg)
            except PackageNotFoundError:
                continue
    return out



def relative_path(path: Any, base: str | os.PathLike | None) -> str:
    """``path`` relative to ``base`` with ``/`` separators.

    Text that is not a local path is returned as it is: empty, ``<in-memory …>`` markers,
    URLs and GDAL virtual paths (``/vsicurl/…``); so is everything when ``base`` is None.
    A path that cannot be made relative (another Windows drive) is returned absolute.
    """
    text = "" if path is None else str(path)
    if base is None or not text or text.startswith(("<", "/vsi")) or "://" in text:
        return text
    try:
        return Path(os.path.relpath(Path(text).resolve(), Path(base).resolve())).as_posix()
    except (TypeError, ValueError):
        return Path(text).as_posix()
