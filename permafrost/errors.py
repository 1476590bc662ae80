"""One exception tree for the whole package.

Every error a user can cause derives from :class:`PermafrostError`; errors about bad
data are also :class:`ValueError` so that library users can catch them the usual way.
Messages are one line: the file, the field and what to do about it.  The CLI turns any
:class:`PermafrostError` into that line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

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
