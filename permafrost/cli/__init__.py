"""The ``permafrost`` command-line app: parsing and printing only, no science.

Each command is a module of this package that registers itself on :data:`app`.
"""

import sys

from permafrost import _interrupted as _is_interrupt


def _interrupted() -> None:
    """Ctrl-C before a command runs: one line and exit code 130, as mid-run (no traceback)."""
    sys.stderr.write("Interrupted during start-up; nothing was written.\n")
    sys.exit(130)


try:
    # one import per command module; each registers its command on `app`
    from permafrost.cli import (
        init_cmd,  # noqa: F401,E402
        inspect_cmd,  # noqa: F401,E402
        kinematics,  # noqa: F401,E402
        labels,  # noqa: F401,E402
        predict,  # noqa: F401,E402
        report,  # noqa: F401,E402
        run,  # noqa: F401,E402
        scenarios,  # noqa: F401,E402
        serve,  # noqa: F401,E402
        stats,  # noqa: F401,E402
        train,  # noqa: F401,E402
        validate,  # noqa: F401,E402
    )
    from permafrost.cli._app import app
except BaseException as _exc:  # a Ctrl-C, possibly wrapped (RuntimeError from __set_name__)
    if not _is_interrupt(_exc):
        raise
    _interrupted()

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # while Click parses, before a command's own handler
        _interrupted()
