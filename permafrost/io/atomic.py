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

from permafrost.errors import OutputError, PermafrostError

__all__ = ["atomic_path", "atomic_write_text", "atomic_write_bytes", "TMP_MARK", "tmp_prefix",
           "sibling_name"]

#: every temporary output carries this mark in its name, so leftovers can be recognised
TMP_MARK = ".pftmp-"

#: longest file name most file systems take (ext4, XFS, tmpfs, APFS, NTFS: 255 bytes)
NAME_MAX = 255
#: bytes kept free in a temporary name for what writers add to it (``.tiled.tif``,
#: SQLite's ``-journal``, GDAL's ``.aux.xml``) and for the random part
_RESERVE = 32


def sibling_name(name: str, *, prefix: str = "", suffix: str = "", reserve: int = 0) -> str:
    """``prefix + name + suffix``, with ``name`` shortened (and a hash of it appended) when
    the result and ``reserve`` more bytes would exceed :data:`NAME_MAX`.

    Temporary files, lock files and caches beside an output carry its name; a legal
    240-character output name must not make their names illegal.  The result is the same
    for the same arguments, so a rerun finds the leftovers of an earlier run.
    """
    full = f"{prefix}{name}{suffix}"
    if len(full.encode()) + reserve <= NAME_MAX:
        return full
    import hashlib

    digest = hashlib.sha256(name.encode()).hexdigest()[:12]
    room = NAME_MAX - reserve - len(prefix.encode()) - len(suffix.encode()) - len(digest) - 1
    head = name.encode()[:max(room, 1)].decode("utf-8", "ignore")
    return f"{prefix}{head}~{digest}{suffix}"


def tmp_prefix(target: Path) -> str:
    """The name prefix of the temporary files of ``target`` (ends with :data:`TMP_MARK`);
    room is left for a suffix of up to 16 bytes."""
    return sibling_name(target.name, suffix=TMP_MARK, reserve=_RESERVE + 16)


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
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=tmp_prefix(target), suffix=sfx,
                                        dir=target.parent)
    except OSError as exc:
        raise _write_error(exc, target) from None
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
    except BaseException as exc:
        # a writer that hit a full disk may say anything (SQLite: "no such table"): look
        # at the free space before the temporary file is removed and frees it again
        ours = isinstance(exc, PermafrostError) or not isinstance(exc, Exception)
        full = not ours and _nearly_full(target.parent)
        _cleanup(tmp)
        mapped = None if ours else write_error(exc, target)
        if full and (mapped is None or "disk" in str(mapped)):
            mapped = _write_error(OSError(errno.ENOSPC, "no space left"), target)
        if mapped is not None and mapped is not exc:
            raise mapped from None
        raise
    finally:
        _cleanup_sidecars(tmp)


_WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EACCES, errno.EPERM,
                 errno.EROFS, errno.ENAMETOOLONG)


def _write_error(exc: OSError, target: Path) -> OutputError:
    """The one-line :class:`OutputError` for a failed write of ``target``."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return OutputError("the disk is full; nothing was written", path=target,
                           fix="free space or choose another output directory")
    if exc.errno == errno.EROFS:
        return OutputError("the file system is read-only; nothing was written", path=target,
                           fix="choose an output path on a writable file system")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return OutputError("permission denied; nothing was written", path=target,
                           fix="choose a writable output path")
    if exc.errno == errno.ENAMETOOLONG:
        return OutputError("the output name is too long for the file system", path=target,
                           fix="choose a shorter name")
    return OutputError(f"cannot write the output ({exc.strerror or exc})", path=target,
                       fix="choose an output path in a writable directory")


def write_error(exc: BaseException, target: str | os.PathLike) -> OutputError | None:
    """An :class:`OutputError` for an error a writer (GDAL, SQLite, NumPy) raised while
    writing ``target`` because its file system is full or read-only; None for others.

    GDAL and SQLite lose the ``errno``: their messages are recognised instead.
    """
    if isinstance(exc, OutputError):
        return exc
    if isinstance(exc, OSError) and exc.errno in _WRITE_ERRNOS:
        return _write_error(exc, Path(target))
    text = str(exc).lower()
    short_write = "requested and" in text and "written" in text  # numpy's short write
    if short_write or any(w in text for w in ("no space left", "disk is full", "disk full",
                                              "quota exceeded", "file too large")):
        return _write_error(OSError(errno.ENOSPC, "no space left"), Path(target))
    if "write failed" in text:  # GDAL's message for a short write
        return OutputError("the write failed (is the disk full?); nothing was written",
                           path=target, fix="free space or choose another output directory")
    if "read-only file system" in text or "readonly database" in text:
        return _write_error(OSError(errno.EROFS, "read-only"), Path(target))
    return None


#: free space [bytes] under which a failed write is put down to a full disk
_NEARLY_FULL = 1 << 20


def _nearly_full(directory: Path) -> bool:
    try:
        st = os.statvfs(directory)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < _NEARLY_FULL


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
