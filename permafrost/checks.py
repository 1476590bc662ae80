"""Argument checks of the library's entry points: the package's one-line errors for objects of
the wrong type.

The public functions declare what each argument must be with :func:`expects` (or call
:func:`require_xarray` / :func:`require_geodataframe` where the rule depends on other
arguments), so that a path where a DataArray is expected, a number where a path is, or a
plain DataFrame where a GeoDataFrame is, is a one-line
:class:`permafrost.errors.ArgumentError` (an :class:`~permafrost.errors.InputError` and a
:class:`TypeError`) that names the argument and what to give instead, not an
``AttributeError`` or ``TypeError`` from deep inside a library.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Iterable, Mapping
from typing import ParamSpec, TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from permafrost.errors import ArgumentError

_P = ParamSpec("_P")
_R = TypeVar("_R")

__all__ = ["KINDS", "expects", "require_xarray", "require_geodataframe"]

#: what :func:`require_xarray` suggests when no other fix is given
_READ_RASTER_FIX = ("read it with permafrost.read_raster(path) (or permafrost.read_aligned(path, "
                    "like=pzi) for a raster on another grid)")


def _is_path(obj) -> bool:
    return isinstance(obj, (str, os.PathLike))


def _is_geodataframe(obj) -> bool:
    # by class, without importing geopandas for modules that never see a vector
    return any(c.__name__ == "GeoDataFrame" and c.__module__.startswith("geopandas")
               for c in type(obj).__mro__)


def _is_paths(obj) -> bool:
    if _is_path(obj):
        return True
    if not isinstance(obj, Iterable) or isinstance(obj, (bytes, Mapping)):
        return False
    if iter(obj) is obj:  # a generator or iterator: checking would consume it
        return True
    return all(_is_path(o) for o in obj)


def _is_covariates(obj) -> bool:
    return isinstance(obj, xr.Dataset) or callable(obj) or _is_paths(obj)


def _is_model(obj) -> bool:
    return hasattr(obj, "feature_names") and (
        all(hasattr(obj, a) for a in ("predict_raw", "calibrate"))
        or hasattr(obj, "predict_pzi"))  # the surface model (permafrost.surface)


def _is_1d(obj) -> bool:
    if isinstance(obj, (str, bytes, Mapping)) or np.isscalar(obj):
        return False
    try:
        return np.ndim(obj) == 1
    except (TypeError, ValueError):
        return False


#: kind -> (test, what is expected, what to do instead)
KINDS: dict[str, tuple[Callable[[object], bool], str, str]] = {
    "path": (_is_path, "a path (str or pathlib.Path)", "give the file's path"),
    "paths": (_is_paths, "a path or a list of paths", "give the files' paths"),
    "dataarray": (lambda o: isinstance(o, xr.DataArray), "an xarray.DataArray",
                  _READ_RASTER_FIX),
    "dataset": (lambda o: isinstance(o, xr.Dataset), "an xarray.Dataset",
                "read the covariates with permafrost.build_stack(...)"),
    "xarray": (lambda o: isinstance(o, (xr.DataArray, xr.Dataset)),
               "an xarray.DataArray or Dataset", _READ_RASTER_FIX),
    "geodataframe": (_is_geodataframe, "a geopandas.GeoDataFrame",
                     "read it with permafrost.read_vector(path)"),
    "dataframe": (lambda o: isinstance(o, pd.DataFrame), "a pandas.DataFrame",
                  "give a table as a pandas.DataFrame"),
    "mapping": (lambda o: isinstance(o, Mapping), "a mapping (dict)", "give a dict"),
    "array1d": (_is_1d, "a 1-D array (one value per point)",
                "give a list or 1-D NumPy array"),
    "covariates": (_is_covariates,
                   "covariates (a directory, raster files, a .toml stack file, an "
                   "xarray.Dataset or a callable returning one)",
                   "give the covariate directory or permafrost.build_stack(...)"),
    "model": (lambda o: _is_model(o) or _is_path(o), "a PZI model or its directory",
              "give the model directory or permafrost.load_model(path)"),
    "pipeline": (lambda o: _is_path(o) or hasattr(o, "pipeline") and hasattr(o, "inputs"),
                 "a pipeline file or a configuration", "give the path of a pipeline .toml "
                 "file or permafrost.load_pipeline(path)"),
    "track": (lambda o: _is_path(o) or hasattr(o, "velocity"),
              "a track folder, its velocity.h5 or a TrackFiles",
              "give the MintPy track folder (or permafrost.io.mintpy.TrackFiles)"),
    "grid": (lambda o: all(hasattr(o, a) for a in ("crs", "transform", "shape")) and
             not isinstance(o, (xr.DataArray, xr.Dataset)), "a permafrost.Grid",
             "use permafrost.grid_of(raster)"),
}


def _check(obj, field: str, kind: str, *, optional: bool = False, fix: str | None = None,
           path=None, what: str = "") -> None:
    if obj is None and optional:
        return
    test, expected, default_fix = KINDS[kind]
    if not test(obj):
        label = f"{expected} {what}".rstrip()
        raise ArgumentError(f"expected {label}, got {type(obj).__name__}", path=path,
                            field=field, fix=fix or default_fix)


def expects(**kinds: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Declare what a public function's arguments must be (keys of :data:`KINDS`).

    ``@expects(pzi="dataarray", regions="geodataframe?")``: a trailing ``?`` lets ``None``
    pass.  The arguments are checked before the function runs; a wrong one raises
    :class:`~permafrost.errors.ArgumentError` naming the argument.  The signature and the
    docstring are the function's own (:func:`functools.wraps`).
    """
    for k in kinds.values():
        if k.rstrip("?") not in KINDS:
            raise ValueError(f"unknown kind {k!r}")

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        sig = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                bound = sig.bind_partial(*args, **kwargs)
            except TypeError:  # wrong arguments: Python's own message, from the call
                return func(*args, **kwargs)
            for name, kind in kinds.items():
                if name in bound.arguments:
                    _check(bound.arguments[name], name, kind.rstrip("?"),
                           optional=kind.endswith("?"))
            return func(*args, **kwargs)

        return wrapper

    return decorate


def require_xarray(obj, field: str, *, kind: type = xr.DataArray, optional: bool = False,
                   path=None, fix: str | None = None) -> None:
    """Refuse anything but an xarray object of ``kind`` with the package's
    :class:`~permafrost.errors.ArgumentError`.

    Parameters
    ----------
    obj : object
        The argument.
    field : str
        The argument's name (the error's ``field``).
    kind : type
        :class:`xarray.DataArray` (default) or :class:`xarray.Dataset`.
    optional : bool
        Let ``None`` pass.
    path : optional
        A file the message names (e.g. the source of a stack).
    fix : str, optional
        What to do instead (default: read it with :func:`permafrost.read_raster`).

    Raises
    ------
    ArgumentError
        ``obj`` is not an instance of ``kind`` (nor ``None`` when ``optional``).
    """
    _check(obj, field, "dataset" if kind is xr.Dataset else "dataarray", optional=optional,
           path=path, fix=fix)


def require_geodataframe(obj, field: str, *, optional: bool = True, fix: str | None = None,
                         what: str = "") -> None:
    """Refuse anything but a :class:`geopandas.GeoDataFrame` with the package's
    :class:`~permafrost.errors.ArgumentError`.

    Parameters
    ----------
    obj : object
        The argument.
    field : str
        The argument's name (the error's ``field``).
    optional : bool
        Let ``None`` pass (default).
    fix : str, optional
        What to do instead (default: read it with :func:`permafrost.read_vector`).
    what : str
        What the rows are, for the message (e.g. ``"of boreholes"``).

    Raises
    ------
    ArgumentError
        ``obj`` is not a GeoDataFrame (nor ``None`` when ``optional``).
    """
    _check(obj, field, "geodataframe", optional=optional, fix=fix, what=what)
