"""The Typer application object, its error handling and shared CLI helpers.

Every command lives in its own module of :mod:`permafrost.cli`, parses its options,
calls one library function and prints the result.  Library errors
(:class:`~permafrost.errors.PermafrostError`) become one line on stderr and exit code 2;
anything unexpected becomes one line and exit code 1 (``-v`` shows the traceback).
"""

from __future__ import annotations

import logging
import sys
import traceback

import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.core import TyperGroup

from permafrost import __version__
from permafrost.errors import PermafrostError

__all__ = ["app", "console", "err_console", "state"]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


class _State:
    verbose: int = 0


state = _State()


class _Group(TyperGroup):
    """Turns library errors into a one-line message and an exit code, never a traceback."""

    def invoke(self, ctx):  # noqa: D401
        try:
            return super().invoke(ctx)
        except PermafrostError as exc:
            err_console.print(f"Error: {exc}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted; finished outputs are kept, partial ones removed.",
                              markup=False, highlight=False)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            if _is_cli_control_flow(exc):
                raise
            if state.verbose:
                traceback.print_exc(file=sys.stderr)
            first = str(exc).splitlines()[0] if str(exc) else ""
            err_console.print(
                f"Internal error: {type(exc).__name__}: {first} (rerun with -v for details; "
                "please report it)", markup=False, highlight=False)
            raise typer.Exit(1) from None


def _is_cli_control_flow(exc: Exception) -> bool:
    """Exit/Abort/usage errors of Typer (or the click it is built on) pass through."""
    return isinstance(exc, (typer.Exit, typer.Abort)) or type(exc).__module__.split(".")[0] in (
        "typer", "click")


app = typer.Typer(
    name="permafrost",
    cls=_Group,
    help="Map mountain permafrost from rock glaciers, boreholes and MintPy InSAR kinematics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"permafrost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True,
                                help="Log progress (-v) or debug details (-vv)."),
    version: bool = typer.Option(False, "--version", callback=_version_callback,
                                 is_eager=True, help="Print the version and exit."),
) -> None:
    """Map mountain permafrost from rock glaciers, boreholes and MintPy InSAR kinematics."""
    state.verbose = verbose
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logger = logging.getLogger("permafrost")
    logger.setLevel(level)
    if not any(getattr(h, "_permafrost_cli", False) for h in logger.handlers):
        handler = RichHandler(console=err_console, show_path=False, show_time=False,
                              markup=False, rich_tracebacks=False)
        handler._permafrost_cli = True
        logger.addHandler(handler)
    for h in logger.handlers:
        h.setLevel(level)
