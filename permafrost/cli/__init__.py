"""The ``permafrost`` command-line app: parsing and printing only, no science.

Each command is a module of this package that registers itself on :data:`app`.
"""

import sys


def _interrupted() -> None:
    """Ctrl-C before a command runs: one line and exit code 130, as mid-run (no traceback)."""
    sys.stderr.write("Interrupted during start-up; nothing was written.\n")
    sys.exit(130)


try:
    from permafrost.cli._app import app
    # one import per command module; each registers its command on `app`
    from permafrost.cli import inspect_cmd  # noqa: F401,E402
    from permafrost.cli import scenarios  # noqa: F401,E402
    from permafrost.cli import run  # noqa: F401,E402
    from permafrost.cli import stats  # noqa: F401,E402
    from permafrost.cli import validate  # noqa: F401,E402
    from permafrost.cli import report  # noqa: F401,E402
    from permafrost.cli import predict  # noqa: F401,E402
    from permafrost.cli import labels  # noqa: F401,E402
    from permafrost.cli import kinematics  # noqa: F401,E402
    from permafrost.cli import train  # noqa: F401,E402
except KeyboardInterrupt:
    _interrupted()

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except KeyboardInterrupt:  # while Click parses, before a command's own handler
        _interrupted()
