"""Interrupting a command at a point of its progress, not at a time.

A test that kills a subprocess after a number of seconds hits a different point on a slow or
busy machine, and may miss the process altogether.  :func:`kill_at_progress` instead lets
the process run in short slices and freezes it (``SIGSTOP``, awaited with ``waitpid``)
between them; while it is frozen, the test reads the progress the process left on disk
(cached blocks, finished step directories, replaced outputs).  At the first frozen state
that has reached the kill point, the process is killed with ``SIGKILL`` where it stands: the
kill lands in a live process, exactly at the state the test saw, whatever the machine's
load (a busier machine only makes the slices hold less work).

Import with ``from processes import kill_at_progress`` (``tests/`` is on ``sys.path`` under
pytest).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: a bound on a hung child, never a measure of speed: CI's shared cores may be very busy
DEADLINE_S = 900.0


def freeze(proc: subprocess.Popen) -> bool:
    """Stop ``proc`` (``SIGSTOP``) and wait until it has stopped; False when it has exited
    instead (its exit code is then in ``proc.returncode``)."""
    if proc.poll() is not None:
        return False
    os.kill(proc.pid, signal.SIGSTOP)
    # a stop is reported once every thread has stopped; an exit (between the poll and the
    # signal) is reaped here, so Popen is told its exit code
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if os.WIFSTOPPED(status):
        return True
    proc.returncode = os.waitstatus_to_exitcode(status)
    return False


def kill_at_progress(proc: subprocess.Popen, reached: Callable[[], T | None], *,
                     slice_s: float = 0.005, deadline_s: float = DEADLINE_S) -> T | None:
    """Run ``proc`` in slices of ``slice_s`` seconds, frozen between them, and ``SIGKILL``
    it at the first frozen state for which ``reached()`` returns a value (not None).

    ``reached`` reads the process's progress from disk; it is called only while the process
    is frozen, so what it sees is what the process has done when the kill lands.  Returns
    that value, or None when the process exited before reaching the point (the caller
    checks ``proc.returncode``).  A process that neither reaches the point nor exits
    within ``deadline_s`` is killed and the test fails.
    """
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        time.sleep(slice_s)
        if not freeze(proc):
            return None
        try:
            hit = reached()
        except BaseException:
            proc.kill()
            proc.wait(timeout=60)
            raise
        if hit is not None:
            proc.kill()  # SIGKILL ends a stopped process too
            proc.wait(timeout=60)
            assert proc.returncode == -signal.SIGKILL, proc.returncode
            return hit
        os.kill(proc.pid, signal.SIGCONT)
    proc.kill()
    proc.wait(timeout=60)
    raise AssertionError(f"process {proc.args} neither reached its kill point nor exited "
                         f"within {deadline_s:.0f} s")
