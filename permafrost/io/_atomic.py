"""Atomic writes: every output goes to a temporary file beside its target, then is renamed.

A crash, a kill or a full disk at any point leaves either the previous file or no file at
the target path, never a half-written one.  The temporary file lives in the target's own
directory so that the final :func:`os.replace` is a rename on one filesystem.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from permafrost.errors import OutputError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "TMP_MARK"]

#: every temporary output carries this mark in its name, so leftovers can be recognised
TMP_MARK = ".pftmp-"


def _check_parent(path: Path) -> None:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the output directory ({exc.strerror})",
            path=parent,
            fix="choose an output path in a writable directory",
        ) from None
    if not os.access(parent, os.W_OK):
        raise OutputError(
            "the output directory is not writable",
            path=parent,
            fix="choose an output path in a writable directory",
        )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched.

    Parameters
    ----------
    path : path-like
        Final destination.
    suffix : str, optional
        Suffix for the temporary file (defaults to the target's suffix, so drivers that
        choose a format from the extension still work).
    """
    target = Path(path)
    if target.is_dir():
        raise OutputError("the output path is an existing directory", path=target,
                          fix="give a file name")
    _check_parent(target)
    sfx = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f"{target.name}{TMP_MARK}", suffix=sfx,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()  # drivers (GDAL, sqlite) want to create the file themselves
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError("the writer produced no file", path=target)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _cleanup(tmp)
        if isinstance(exc, OutputError):
            raise
        if exc.errno == errno.ENOSPC:
            raise OutputError("the disk is full; nothing was written", path=target,
                              fix="free space or choose another output directory") from None
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputError("permission denied; nothing was written", path=target,
                              fix="choose a writable output path") from None
        raise
    except BaseException:
        _cleanup(tmp)
        raise
    finally:
        _cleanup_sidecars(tmp)


def _cleanup(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    _cleanup_sidecars(tmp)


def _cleanup_sidecars(tmp: Path) -> None:
    for side in tmp.parent.glob(tmp.name + ".*"):
        with contextlib.suppress(OSError):
            side.unlink()
    for ext in ("-journal", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            Path(str(tmp) + ext).unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError:
            raise
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode("utf-8"))
