"""The block cache of a chunked prediction: finished blocks on disk, so a killed run resumes.

Layout, beside the output (or in a directory the caller names)::

    .<out name>.pfblocks/          the cache root (:func:`default_cache_root`)
      <key[:32]>/                  one run's blocks (:func:`cache_dir`); the key hashes every
                                   input that changes a value (:func:`cache_key`)
        <iy>_<ix>.npy              float32 (layers, rows, columns): PZI [, spread]
        <iy>_<ix>.json             the block's pixel counts
        <iy>_<ix>.<name>.npy       optional named extras of the block (any dtype), e.g. the
                                   applicability check's layers (:func:`save_block`)

Each block's counts and then its layers are written atomically (temporary file, then
rename), so a block whose ``.npy`` exists is complete, whatever killed the run.  A rerun
with the same key reuses the finished blocks; one with another key removes them.  Nothing
here knows what the layers mean (:mod:`permafrost.workflows.predict` does).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
from collections.abc import Mapping, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

import dask.array as dsa
import numpy as np
import xarray as xr
from dask.base import tokenize

from permafrost.errors import OutputError
from permafrost.io.atomic import TMP_MARK, atomic_path, atomic_write_text, sibling_name, tmp_prefix
from permafrost.provenance import canonical_json, file_digest

__all__ = [
    "CACHE_FORMAT",
    "CACHE_SUFFIX",
    "block_file",
    "cache_dir",
    "cache_key",
    "cached_extra",
    "cached_layer",
    "extra_file",
    "read_extra",
    "default_cache_root",
    "is_cache_root",
    "prepare_cache",
    "read_counts",
    "remove_stale_temporaries",
    "save_block",
    "source_fingerprints",
]

log = logging.getLogger(__name__)

#: version of the block-cache layout (part of the cache key)
CACHE_FORMAT = 1

#: suffix of the default cache root beside an output (``.<name>.pfblocks``)
CACHE_SUFFIX = ".pfblocks"


def default_cache_root(out: str | Path) -> Path:
    """The default cache root of output ``out``: ``.<out name>.pfblocks`` beside it."""
    out = Path(out)
    return out.parent / sibling_name(out.name, prefix=".", suffix=CACHE_SUFFIX)


def source_fingerprints(ds: xr.Dataset, names: Sequence[str]) -> dict[str, str]:
    """The file part of a cache key: per variable, the SHA-256 of its source file (the
    ``source`` attribute) when it exists, else Dask's token of its data (in-memory or
    derived variables)."""
    out = {}
    for f in names:
        src = ds[f].attrs.get("source")
        out[f] = (file_digest(Path(src)) if src and Path(src).exists()
                  else tokenize(ds[f].data))
    return out


def cache_key(payload: Mapping[str, Any]) -> str:
    """SHA-256 (hex) of everything that changes a cached value, with the layout version
    :data:`CACHE_FORMAT` (canonical JSON, so the key does not depend on key order)."""
    return hashlib.sha256(canonical_json({"format": CACHE_FORMAT, **payload}).encode()
                          ).hexdigest()


def cache_dir(root: str | Path, key: str) -> Path:
    """The directory of one run's blocks under ``root``: the key's first 32 characters."""
    return Path(root) / key[:32]


_RUN_NAME = re.compile(r"[0-9a-f]{32}")


def _ours(entry: Path) -> bool:
    """An entry of a cache root that the block cache wrote: a run's directory (32 hex
    digits, :func:`cache_dir`) or a temporary file."""
    return (entry.is_dir() and not entry.is_symlink() and _RUN_NAME.fullmatch(entry.name)
            is not None) or (TMP_MARK in entry.name and not entry.is_dir())


def is_cache_root(root: str | Path) -> bool:
    """True when every entry of the folder ``root`` is one the block cache writes: the
    folders the output guard lets a prediction reuse and prune
    (:mod:`permafrost.io.guard`)."""
    try:
        return all(_ours(e) for e in Path(root).iterdir())
    except OSError:
        return False


def prepare_cache(root: Path, cache: Path, *, resume: bool, prune_others: bool) -> None:
    """Make ``cache`` ready: other runs' caches under ``root`` removed when
    ``prune_others``, its own blocks removed unless ``resume``, its temporaries removed.

    Only what the block cache writes is removed (run directories named by their key,
    temporary files): anything else under ``root`` is left alone.

    Raises
    ------
    OutputError
        The cache directory cannot be created.
    """
    if prune_others and root.is_dir():
        for d in root.iterdir():
            if d != cache and _ours(d):
                shutil.rmtree(d, ignore_errors=True) if d.is_dir() else d.unlink(missing_ok=True)
    if not resume and cache.is_dir() and _ours(cache):
        shutil.rmtree(cache)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the block cache ({exc.strerror or exc})", path=root,
                          fix="choose an output path in a writable directory") from None
    for leftover in cache.glob(f"*{TMP_MARK}*"):
        leftover.unlink(missing_ok=True)


def remove_cache(root: Path, cache: Path, *, remove_root: bool) -> None:
    """Remove a finished run's blocks (and the root when it was the default one, if empty)."""
    shutil.rmtree(cache, ignore_errors=True)
    if remove_root:
        try:
            root.rmdir()
        except OSError:
            pass


def remove_stale_temporaries(outputs: Sequence[Path]) -> None:
    """Temporary files of a killed earlier run for the same outputs (never the outputs)."""
    for p in outputs:
        if p.parent.is_dir():
            for leftover in p.parent.glob(f"{glob_escape(tmp_prefix(p))}*"):
                log.info("removing a temporary file left by an interrupted run: %s", leftover)
                leftover.unlink(missing_ok=True)


def block_file(cache: str | Path, iy: int, ix: int) -> Path:
    """The ``.npy`` file of block (row ``iy``, column ``ix``) of the block grid."""
    return Path(cache) / f"{iy}_{ix}.npy"


def save_block(path: str | Path, layers: np.ndarray, counts: Mapping[str, int],
               extras: Mapping[str, np.ndarray] | None = None) -> None:
    """Save a finished block: its named extras (``.<name>.npy``), its counts (``.json``),
    then its layers (``.npy``), each atomically; the ``.npy`` is written last, so its
    presence means the block is complete, extras included."""
    path = Path(path)
    for name, arr in (extras or {}).items():
        with atomic_path(extra_file(path, name), suffix=".npy") as tmp:
            np.save(tmp, np.asarray(arr))
    atomic_write_text(path.with_suffix(".json"), json.dumps(dict(counts), sort_keys=True))
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, layers)


_EXTRA_NAME = re.compile(r"[A-Za-z0-9_-]+")


def extra_file(bfile: str | Path, name: str) -> Path:
    """The file of the named extra ``name`` (letters, digits, ``_``, ``-``) of a block."""
    if not _EXTRA_NAME.fullmatch(name):
        raise ValueError(f"bad block extra name {name!r}")
    bfile = Path(bfile)
    return bfile.with_name(f"{bfile.stem}.{name}.npy")


def read_extra(bfile: str | Path, name: str) -> np.ndarray:
    """The named extra of a finished block, read whole."""
    return np.load(extra_file(bfile, name))


def _load_extra(*, cache: str, extra: str, block_info=None) -> np.ndarray:
    iy, ix = block_info[None]["chunk-location"]
    return np.array(np.load(extra_file(block_file(cache, iy, ix), extra), mmap_mode="r"))


def cached_extra(cache: str | Path, extra: str, chunks: tuple, dtype, *, name: str
                 ) -> dsa.Array:
    """The named 2-D extra of every cached block as one lazy Dask array (as
    :func:`cached_layer`, in the extra's own ``dtype``)."""
    dt = np.dtype(dtype)
    return dsa.map_blocks(_load_extra, dtype=dt, chunks=chunks, cache=str(cache), extra=extra,
                          meta=np.empty((0, 0), dt), name=name)


def read_counts(bfile: Path) -> dict[str, int] | None:
    """Counts of a finished cached block (None when the block is not finished)."""
    if not bfile.exists():
        return None
    try:
        return {k: int(v) for k, v in json.loads(bfile.with_suffix(".json").read_text()).items()}
    except (OSError, ValueError):
        bfile.unlink(missing_ok=True)
        return None


def _load_block(*, cache: str, layer: int, block_info=None) -> np.ndarray:
    iy, ix = block_info[None]["chunk-location"]
    data = np.load(block_file(cache, iy, ix), mmap_mode="r")
    return np.array(data[layer])


def cached_layer(cache: str | Path, layer: int, chunks: tuple, *, name: str) -> dsa.Array:
    """Layer ``layer`` of every cached block as one lazy float32 Dask array.

    Parameters
    ----------
    cache : path-like
        The run's block directory (:func:`cache_dir`); every block must be finished.
    layer : int
        Index of the layer in each block's ``.npy``.
    chunks : tuple of tuples
        The block grid's chunks ``((rows...), (columns...))``.
    name : str
        The Dask name of the array (unique per cache and layer).
    """
    return dsa.map_blocks(_load_block, dtype=np.float32, chunks=chunks, cache=str(cache),
                          layer=layer, meta=np.empty((0, 0), np.float32), name=name)
