"""Exclusive locks on output directories and output files, held for a whole command.

Two ``permafrost run`` on one output directory, or two ``permafrost predict`` to one
``--out``, would otherwise share temporary directories, block caches and temporary files.
The second one refuses at once with one line naming the path and the process that holds
it (exit code 2); it does not wait, because a run can take hours and a silent wait looks
like a hang.

The lock is an ``fcntl.flock`` on a small file: the kernel releases it when its owner
exits, however it exits (``SIGKILL`` included), so a killed run never leaves a stale
lock.  The file records the owner's pid and host for the message.  Locks are advisory
and local to one machine (``flock`` on NFS depends on the server).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from permafrost.errors import OutputError
from permafrost.io.atomic import sibling_name

__all__ = ["LOCK_SUFFIX", "exclusive_lock", "output_locks", "pid_alive"]

#: suffix of the lock file of a single output file (``.<name>.pflock`` beside it)
LOCK_SUFFIX = ".pflock"


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this machine (zombies count as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    try:  # a zombie (killed, not yet reaped) holds nothing any more
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return "another process"
    return f"process {text}" if text else "another process"


@contextlib.contextmanager
def exclusive_lock(lock_file: str | os.PathLike, *, what: str, target: str | os.PathLike,
                   field: str | None = None, remove: bool = False) -> Iterator[Path]:
    """Hold an exclusive lock on ``lock_file`` for the ``with`` block, or refuse.

    Parameters
    ----------
    lock_file : path-like
        The lock file (created when missing; its directory must exist).
    what : str
        What is locked, for the message (e.g. ``"output directory"``).
    target : path-like
        The path the message names (the output directory or file).
    field : str, optional
        The option or key the message names.
    remove : bool
        Remove the lock file on release (for lock files beside user outputs).

    Raises
    ------
    OutputError
        Another process holds the lock, or the lock file cannot be created (read-only
        file system, full disk, permissions).
    """
    path = Path(lock_file)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise _cannot(exc, target, field) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputError(
                f"the {what} is in use by {_holder(path)}", path=target, field=field,
                fix="wait for that command to finish, or choose another output path") from None
        except OSError as exc:
            os.close(fd)
            raise _cannot(exc, target, field) from None
        # the file may have been removed (and recreated) by the previous holder between
        # our open and our lock: then we hold a lock on a file nobody else will see
        try:
            same = os.path.samestat(os.fstat(fd), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        with contextlib.suppress(OSError):  # the pid is informative only (full disk)
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()} on {socket.gethostname()}".encode())
        yield path
    finally:
        if remove:
            with contextlib.suppress(OSError):
                os.unlink(path)
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def output_locks(outputs: Iterable[str | os.PathLike]) -> Iterator[list[Path]]:
    """Hold an exclusive lock on each output file for the ``with`` block, or refuse.

    The lock of ``DIR/NAME`` is ``DIR/.NAME.pflock`` (removed on release); each output's
    directory is created first.  Two commands writing one target would otherwise share
    its block cache and temporary files.  Yields the locked outputs (absolute, once each).

    Raises
    ------
    OutputError
        An output directory cannot be created, or another process holds a lock
        (:func:`exclusive_lock`).
    """
    targets = list(dict.fromkeys(Path(o).absolute() for o in outputs))
    with contextlib.ExitStack() as stack:
        for o in targets:
            try:
                o.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise OutputError(f"cannot create the output directory ({exc.strerror})",
                                  path=o.parent, fix="choose an output path in a writable "
                                  "directory") from None
            lock = o.parent / sibling_name(o.name, prefix=".", suffix=LOCK_SUFFIX)
            stack.enter_context(exclusive_lock(lock, what="output", target=o, remove=True))
        yield targets


def _cannot(exc: OSError, target, field) -> OutputError:
    if exc.errno == errno.ENOSPC:
        return OutputError("the disk is full; nothing was written", path=target, field=field,
                           fix="free space or choose another output directory")
    if exc.errno == errno.EROFS:
        return OutputError("the file system is read-only; nothing was written", path=target,
                           field=field, fix="choose an output path on a writable file system")
    return OutputError(f"cannot lock the output ({exc.strerror or exc})", path=target,
                       field=field, fix="choose an output path in a writable directory")
