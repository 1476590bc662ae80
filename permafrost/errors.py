"""One exception tree for the whole package.

Every error a user can cause derives from :class:`PermafrostError`; errors about bad
data are also :class:`ValueError` so that library users can catch them the usual way.
Messages are one line: the file, the field and what to do about it.  The CLI turns any
:class:`PermafrostError` into that line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from os import PathLike

__all__ = [
    "PermafrostError",
    "InputError",
    "InputFileError",
    "ArgumentError",
    "DataError",
    "CRSError",
    "GridMismatchError",
    "ConfigError",
    "ModelError",
    "OutputError",
    "OptionError",
    "ParameterError",
    "ProblemsError",
    "format_message",
]


def format_message(
    problem: str,
    *,
    path: str | PathLike | None = None,
    field: str | None = None,
    fix: str | None = None,
) -> str:
    """Build the one-line message ``"<path>: <field>: <problem>; <fix>"``."""
    parts = []
    if path is not None:
        parts.append(str(path))
    if field is not None:
        parts.append(f"field {field!r}")
    head = ": ".join(parts)
    text = f"{head}: {problem}" if head else problem
    if fix:
        text = f"{text}; {fix}"
    return " ".join(text.split("\n"))


class PermafrostError(Exception):
    """Base class of every error raised on purpose by permafrost.

    Parameters
    ----------
    problem : str
        What is wrong.
    path : path-like, optional
        The file (or directory) concerned.
    field : str, optional
        The column, dataset, attribute or key concerned.
    fix : str, optional
        What the user can do about it.
    """

    exit_code = 2

    def __init__(
        self,
        problem: str,
        *,
        path: str | PathLike | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        self.field = field
        self.fix = fix
        super().__init__(format_message(problem, path=path, field=field, fix=fix))


class InputError(PermafrostError):
    """An input cannot be used as given."""


class InputFileError(InputError, FileNotFoundError):
    """An input file is missing, unreadable or not of the expected format."""


class ArgumentError(InputError, TypeError):
    """A library function was given an object of the wrong type (a path where a DataArray is
    expected, a number where a path is); also a :class:`TypeError`."""


class DataError(InputError, ValueError):
    """An input was read but its content is invalid (values, units, geometry, CRS)."""


class CRSError(DataError):
    """A coordinate reference system is missing, unknown or inconsistent."""


class GridMismatchError(DataError):
    """Rasters that must share a grid do not."""


class ConfigError(PermafrostError, ValueError):
    """A pipeline or stack file is invalid (unknown key, wrong type, bad reference)."""


class ModelError(PermafrostError, ValueError):
    """A model artefact is incomplete, incompatible or does not fit the covariates."""


class OutputError(PermafrostError, OSError):
    """An output cannot be written (permissions, disk full, existing directory)."""


class OptionError(DataError, ConfigError):
    """A numeric option (a CLI flag, a pipeline key or a library argument) lies outside the
    bounds of :data:`permafrost.options.BOUNDS`, or a name holds a separator; also a
    :class:`DataError` and a :class:`ConfigError`, as such checks were before."""


_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _render(text: str | None, name: Callable[[str], str]) -> str | None:
    """``{param}`` placeholders of a message replaced by ``name(param)``."""
    return None if text is None else _PLACEHOLDER.sub(lambda m: name(m.group(1)), text)


class ParameterError(DataError):
    """An argument does not fit the data: a block size the region cannot hold, a column the
    file does not have.  One error for every audience: it names the library parameter
    (``param``, shown as its ``field``) and its ``fix`` names other parameters as
    ``{name}`` placeholders.  The library shows the parameter names themselves; a pipeline
    run shows the TOML keys and the pipeline file
    (:func:`permafrost.options.for_pipeline`), the CLI the command's flags
    (:func:`permafrost.options.for_cli`).  The names come from one table,
    :func:`permafrost.options.option_names`.

    Parameters
    ----------
    problem : str
        What is wrong (no advice naming a flag or a key: that is the fix's placeholders).
    param : str
        The library parameter concerned (``block_size``, ``region_field``).
    path : path-like, optional
        The data file concerned.
    fix : str, optional
        What to do, naming parameters as ``{block_size}``.
    names : mapping, optional
        How each parameter is shown (set by the translations).
    """

    def __init__(self, problem: str, *, param: str, path: str | PathLike | None = None,
                 fix: str | None = None, names: Mapping[str, str] | None = None,
                 audience: str = "library") -> None:
        self.param = param
        #: whose names it shows: "library", "pipeline" or "cli" (translated once)
        self.audience = audience
        self.fix_template = fix
        self.names = dict(names or {})
        self.data_path = None if path is None else str(path)

        def shown(n: str) -> str:
            return self.names.get(n, n)

        super().__init__(problem, path=path, field=shown(param), fix=_render(fix, shown))

    def params(self) -> list[str]:
        """Every parameter the error names: its own, then the fix's placeholders."""
        out = [self.param] + _PLACEHOLDER.findall(self.fix_template or "")
        return list(dict.fromkeys(out))

    def translated(self, names: Mapping[str, str], *, path: str | PathLike | None,
                   audience: str, problem: str | None = None) -> ParameterError:
        """The same error showing each parameter by ``names`` (its TOML key or flag):
        :func:`permafrost.options.for_pipeline`, :func:`permafrost.options.for_cli`."""
        out = ParameterError(self.problem if problem is None else problem, param=self.param,
                             fix=self.fix_template, names=names, path=path, audience=audience)
        out.data_path = self.data_path
        return out


class ProblemsError(ConfigError):
    """Several problems found at once (a pipeline's checks before any work): one line each,
    the first line counting them.  ``problems`` holds the errors themselves."""

    def __init__(self, problems: Sequence[PermafrostError], *, path: str | PathLike | None = None
                 ) -> None:
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{n} problem{'s' if n != 1 else ''} found before any work"
        lines = [str(e) for e in self.problems]
        PermafrostError.__init__(self, head, path=path)
        self.args = ("\n".join([str(self.args[0]), *(f"  {line}" for line in lines)]),)

    def __str__(self) -> str:
        return str(self.args[0])
