"""The Typer application object, its error handling and shared CLI helpers.

Every command lives in its own module of :mod:`permafrost.cli`, parses its options,
calls one library function and prints the result.  Library errors
(:class:`~permafrost.errors.PermafrostError`) become one line on stderr and exit code 2;
anything unexpected becomes one line and exit code 1 (``-v`` shows the traceback).

Start-up matters (``permafrost --version``, ``--help`` and shell completion run this
module): nothing here, and nothing at the top of a command module, imports NumPy, xarray,
XGBoost, Dask or Rich.  Commands import the library inside their body, and the consoles are
created on first use.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from permafrost import __version__
from permafrost.errors import ParameterError, PermafrostError
from permafrost.options import for_cli

if TYPE_CHECKING:  # rich is imported when first needed (start-up time)
    from rich.console import Console

__all__ = ["app", "console", "err_console", "state", "emit_json", "write_json_or_stdout",
           "make_table", "bounded", "crs_option", "scheduler_option", "complete_devices",
           "complete_model_kinds", "complete_scenarios", "complete_steps",
           "deprecated_alias"]

#: width of tables and text when the output is not a terminal (a pipe, a file) and COLUMNS
#: is not set: wide enough that no column of our tables is squeezed or cut
PIPE_WIDTH = 160


class _LazyConsole:
    """A Rich console created on first use (importing Rich costs start-up time)."""

    def __init__(self, *, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def _get(self):
        if self._console is None:
            from rich.console import Console

            c = Console(stderr=self._stderr, soft_wrap=True)
            if not c.is_terminal and "COLUMNS" not in os.environ:
                c.width = PIPE_WIDTH  # piped: fixed width, so no word is split or cut
            self._console = c
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


console = _LazyConsole(stderr=False)
err_console = _LazyConsole(stderr=True)


class _State:
    verbose: int = 0


state = _State()


def make_table(title: str | None = None, **kwargs):
    """A Rich table whose cells wrap at word boundaries (``fold`` only inside long words)."""
    from rich.table import Table

    return Table(title=title, **kwargs)


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (NaN as null, sorted keys): for ``--json``."""
    from permafrost.io.results import to_jsonable

    typer.echo(json.dumps(to_jsonable(obj), indent=2, sort_keys=True, allow_nan=False))


def write_json_or_stdout(obj: Any, path: Path) -> bool:
    """Write ``obj`` as JSON to ``path``, or to stdout when ``path`` is ``-``.

    Returns True when it went to stdout (the caller then prints nothing else there).
    """
    if str(path) == "-":
        emit_json(obj)
        return True
    from permafrost.io.results import write_json

    write_json(obj, path)
    return False


def bounded(name: str):
    """A Typer callback that checks an option against its entry of
    :data:`permafrost.options.BOUNDS` while the command line is parsed (one line, exit 2)."""
    from permafrost.options import bound

    entry = bound(name)

    def _check(ctx: typer.Context, param: typer.CallbackParam, value):
        if value is None or ctx.resilient_parsing:
            return value
        return entry.check(value, field=param.opts[0])

    return _check


def crs_option(ctx: typer.Context, param: typer.CallbackParam, value):
    """A Typer callback that refuses a CRS pyproj does not know (one line, exit 2)."""
    if value is None or ctx.resilient_parsing:
        return value
    from permafrost.options import check_crs

    return check_crs(value, field=param.opts[0])


def scheduler_option(ctx: typer.Context, param: typer.CallbackParam, value):
    """A Typer callback that checks the form of a Dask scheduler address (one line, exit 2)."""
    if value is None or ctx.resilient_parsing:
        return value
    from permafrost.backends import check_scheduler_address

    return check_scheduler_address(value)


# --- shell completion (run only while completing: the imports stay out of start-up)
def _starting(values, incomplete: str) -> list[str]:
    return [v for v in values if v.startswith(incomplete)]


def complete_steps(incomplete: str) -> list[str]:
    """The pipeline's step names (``run --only``)."""
    from permafrost.pipeline import STEP_NAMES

    return _starting(STEP_NAMES, incomplete)


def complete_model_kinds(incomplete: str) -> list[str]:
    """The model kinds (``train --model``)."""
    from permafrost.model_kinds import MODEL_KINDS

    return _starting(MODEL_KINDS, incomplete)


def complete_devices(incomplete: str) -> list[str]:
    """The devices (``--device``)."""
    from permafrost.backends import DEVICES

    return _starting(DEVICES, incomplete)


def complete_scenarios(ctx: typer.Context, incomplete: str) -> list[str]:
    """The scenarios of the pipeline file on the command line (``run --scenario``), read
    as plain TOML (no validation: completing must not fail)."""
    import shlex
    import tomllib

    path: str | os.PathLike | None = (ctx.params or {}).get("pipeline")
    if path is None:  # "run FILE --scenario <TAB>": Click leaves the parameters unparsed
        words = os.environ.get("_TYPER_COMPLETE_ARGS") or os.environ.get("COMP_WORDS") or ""
        try:
            path = next((w for w in shlex.split(words) if w.endswith(".toml")), None)
        except ValueError:
            path = None
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            names = list((tomllib.load(f).get("scenarios") or {}))
    except (OSError, TypeError, ValueError, AttributeError):
        return []
    return _starting(names, incomplete)


def deprecated_alias(old: str, new: str, value, new_value):
    """The value of an option given under its old spelling ``old`` (a hidden option),
    with a note on stderr; the new spelling ``new`` wins when both are given."""
    if value is None:
        return new_value
    err_console.print(f"Note: {old} is deprecated; use {new}.", markup=False,
                      highlight=False)
    return value if new_value is None else new_value


def _configure_logging(verbose: int, *, reset: bool = False) -> None:
    """-v: what each step does (INFO); -vv: the details (DEBUG), also of the libraries.

    The root's ``-v`` resets the level (one invocation after another in one process, as in
    tests); a command's ``-v`` adds to it (``permafrost -v run -v`` = ``-vv``).
    """
    state.verbose = verbose if reset else state.verbose + verbose
    level = (logging.WARNING if state.verbose == 0 else logging.INFO if state.verbose == 1
             else logging.DEBUG)
    logger = logging.getLogger("permafrost")
    logger.setLevel(level)
    if state.verbose and not any(getattr(h, "_permafrost_cli", False) for h in logger.handlers):
        handler = _StderrHandler()
        handler._permafrost_cli = True
        logger.addHandler(handler)
    for h in logger.handlers:
        h.setLevel(level)
    _funnel_gdal_messages()


#: loggers GDAL's messages arrive on (rasterio's and pyogrio's error handlers log them)
_GDAL_LOGGERS = ("rasterio", "pyogrio", "fiona")


def _funnel_gdal_messages() -> None:
    """GDAL's own messages (``CPLE_...``) never reach stderr raw: without a handler of
    their own, Python's last-resort handler would print each warning as a bare line.  They
    go to the permafrost log instead, shown with ``-vv``."""
    shown = state.verbose >= 2
    cli = next((h for h in logging.getLogger("permafrost").handlers
                if getattr(h, "_permafrost_cli", False)), None)
    for name in _GDAL_LOGGERS:
        lg = logging.getLogger(name)
        for h in [h for h in lg.handlers if getattr(h, "_permafrost_gdal", False)
                  or getattr(h, "_permafrost_cli", False)]:
            lg.removeHandler(h)
        if shown and cli is not None:
            lg.addHandler(cli)
        else:
            null = logging.NullHandler()
            setattr(null, "_permafrost_gdal", True)  # a mark, found again by getattr
            lg.addHandler(null)


class _StderrHandler(logging.StreamHandler):
    """Log lines on stderr (looked up at each record, so test runners can capture it)."""

    #: set on the handler the CLI adds (found again by this mark)
    _permafrost_cli: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)-7s %(name)s: %(message)s"))

    @property
    def stream(self):  # noqa: D401
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # StreamHandler.__init__ assigns it
        pass


def _quiet_library_warnings() -> None:
    """No raw library warnings: deprecation warnings of the libraries we call are for us,
    not for users of the CLI (rioxarray's ``PendingDeprecationWarning`` about Affine ``*``,
    for one), and are hidden; other warnings raised inside an installed library are one log
    line (``-v``); the rest (the tool's own, NumPy's about the tool's arithmetic) one line
    ``Warning: ...`` on stderr, once per message, without the file, line and source Python
    prints.  ``-vv`` or ``PYTHONWARNINGS`` shows them all as Python prints them.
    """
    if sys.warnoptions:
        return
    # a display hook, not a filter: some library code resets the filters inside
    # `catch_warnings` ("default"), and -vv after the command is parsed later than this
    show = warnings.showwarning
    if getattr(show, "_permafrost_cli", False):
        return

    seen: set[str] = set()

    def _show(message, category, filename, lineno, file=None, line=None):
        if state.verbose >= 2:  # -vv: every warning as Python prints it
            show(message, category, filename, lineno, file, line)
            return
        if issubclass(category, _DEVELOPER_WARNINGS):
            return
        # never Python's raw "file:line: UserWarning: ..." block with the source line
        text = str(message).strip().splitlines()[0] if str(message).strip() else ""
        library = _library_of(filename)
        if library is not None and category.__module__.split(".")[0] != "permafrost":
            # raised inside a library (rasterio, pyogrio, scikit-learn...): one log line,
            # shown with -v; what it means for the data is the tool's to say
            logging.getLogger("permafrost.library").info("%s (%s)", text, library)
            return
        if text in seen:  # once per message
            return
        seen.add(text)
        err_console.print(f"Warning: {text}", markup=False, highlight=False)

    setattr(_show, "_permafrost_cli", True)  # a mark, found again by getattr
    warnings.showwarning = _show


def _library_of(filename: str) -> str | None:
    """The installed package a warning's file belongs to (``numpy``, ``sklearn``...), or
    None for permafrost's own code and code outside any installed package."""
    parts = Path(str(filename)).parts
    for marker in ("site-packages", "dist-packages"):
        if marker in parts:
            i = parts.index(marker)
            name = parts[i + 1].removesuffix(".py") if i + 1 < len(parts) else marker
            return None if name == "permafrost" else name
    return None


_DEVELOPER_WARNINGS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


class _Command(TyperCommand):
    """Usage lines name arguments in capitals (``stats [OPTIONS] PZI``), not as ``{pzi}``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for p in self.params:
            if getattr(p, "param_type_name", "") == "argument" and p.metavar is None:
                p.metavar = (p.name or "").upper()
            elif isinstance(p, TyperOption) and p.multiple and p.metavar is None:
                # a repeatable option takes one value each time: `<Path>`, not `<list[Path]>`
                try:
                    # Typer annotates ctx as a Context; its one use (choices) takes None
                    shown = p.display_type(None)  # type: ignore[arg-type]
                except Exception:  # noqa: BLE001 - keep Typer's own display
                    continue
                if shown.startswith("<list[") and shown.endswith("]>"):
                    p.metavar = "<" + shown[len("<list["):-2].lower() + ">"

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for p in self.get_params(ctx):
            if getattr(p, "param_type_name", "") != "argument":
                pieces.extend(p.get_usage_pieces(ctx))
                continue
            name = (p.metavar or p.name or "").upper()
            if p.nargs != 1:
                name += "..."
            pieces.append(name if p.required else f"[{name}]")
        return pieces


class _Group(TyperGroup):
    """Turns library errors into a one-line message and an exit code, never a traceback.

    It also gives every command the root's ``-v/--verbose``, so that ``permafrost stats -v``
    works as well as ``permafrost -v stats``.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        root_v = next((p for p in self.params if p.name == "verbose"), None)
        if root_v is None:
            return
        for cmd in self.commands.values():
            if any(p.name == "verbose" for p in cmd.params):
                continue
            opt = _copy_param(root_v)
            opt.expose_value = False
            opt.callback = lambda ctx, param, value: _configure_logging(value or 0)
            cmd.params.append(opt)

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [self.options_metavar or "[OPTIONS]", "COMMAND [ARGS]..."]

    def list_commands(self, ctx) -> list[str]:
        """``run`` first (the whole chain from a pipeline file: where most users start),
        then the commands by name."""
        return sorted(super().list_commands(ctx), key=lambda n: (n != "run", n))

    def make_context(self, *args, **kwargs):
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt:  # Ctrl-C while the command line is parsed (start-up)
            sys.stderr.write("Interrupted during start-up; nothing was written.\n")
            raise typer.Exit(130) from None

    def invoke(self, ctx):  # noqa: D401
        _quiet_library_warnings()
        try:
            return super().invoke(ctx)
        except PermafrostError as exc:
            if isinstance(exc, ParameterError):  # the library's parameter -> this command's flag
                exc = for_cli(exc, ctx.invoked_subcommand)
            err_console.print(f"Error: {exc}", markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err_console.print("Interrupted; finished outputs are kept, partial ones removed.",
                              markup=False, highlight=False)
            raise typer.Exit(130) from None
        except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
            if _is_cli_control_flow(exc):
                raise
            if isinstance(exc, OSError) and exc.filename and exc.errno in (28, 30, 122):
                from permafrost.io.atomic import write_error  # ENOSPC, EROFS, EDQUOT

                mapped = write_error(exc, exc.filename)
                if mapped is not None:
                    err_console.print(f"Error: {mapped}", markup=False, highlight=False)
                    raise typer.Exit(mapped.exit_code) from None
            if state.verbose:
                traceback.print_exc(file=sys.stderr)
            first = str(exc).splitlines()[0] if str(exc) else ""
            err_console.print(
                f"Internal error: {type(exc).__name__}: {first} (rerun with -v for details; "
                "please report it)", markup=False, highlight=False)
            raise typer.Exit(1) from None


def _copy_param(p):
    import copy

    return copy.copy(p)


def _is_cli_control_flow(exc: Exception) -> bool:
    """Exit/Abort/usage errors of Typer (or the click it is built on) pass through."""
    return isinstance(exc, (typer.Exit, typer.Abort)) or type(exc).__module__.split(".")[0] in (
        "typer", "click")


class _Typer(typer.Typer):
    """Commands default to :class:`_Command`."""

    def command(self, *args, cls=None, **kwargs):
        return super().command(*args, cls=cls or _Command, **kwargs)


app = _Typer(
    name="permafrost",
    cls=_Group,
    help="Map mountain permafrost from rock glaciers, boreholes and MintPy InSAR kinematics.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help: units in square brackets ("[m]") are text, not Rich markup, and --help
    # does not load Rich
    rich_markup_mode=None,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"permafrost {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, show_default=False,
                                help="Say what each step does (-v) or show the details "
                                     "(-vv); also accepted after the command."),
    version: bool = typer.Option(False, "--version", callback=_version_callback,
                                 is_eager=True, help="Print the version and exit."),
) -> None:
    """Map mountain permafrost from rock glaciers, boreholes and MintPy InSAR kinematics."""
    _configure_logging(verbose, reset=True)
