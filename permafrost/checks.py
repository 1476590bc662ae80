"""Argument checks of the library's entry points: the package's one-line errors for objects of
the wrong type.

Library functions that take objects (rasters as xarray, vectors as GeoDataFrames) call these
on their arguments, so that a path, a NumPy array or a plain DataFrame where an object of the
package's data model is expected is a one-line :class:`permafrost.errors.InputError` that names
the argument and the reader to use, not an ``AttributeError`` or ``TypeError`` deep inside.
"""

from __future__ import annotations

import geopandas as gpd
import xarray as xr

from permafrost.errors import InputError

__all__ = ["require_xarray", "require_geodataframe"]

#: what :func:`require_xarray` suggests when no other fix is given
_READ_RASTER_FIX = ("read it with permafrost.read_raster(path) (or permafrost.read_aligned(path, "
                    "like=pzi) for a raster on another grid)")


def require_xarray(obj, field: str, *, kind: type = xr.DataArray, optional: bool = False,
                   path=None, fix: str | None = None) -> None:
    """Refuse anything but an xarray object of ``kind`` with the package's :class:`InputError`.

    Library functions call it on their raster arguments, so that a path or a NumPy array
    where a DataArray is expected is a one-line error naming the argument and the reader
    to use, not an ``AttributeError`` deep inside.

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
    InputError
        ``obj`` is not an instance of ``kind`` (nor ``None`` when ``optional``).
    """
    if obj is None and optional:
        return
    if not isinstance(obj, kind):
        raise InputError(f"expected an xarray.{kind.__name__}, got {type(obj).__name__}",
                         path=path, field=field, fix=fix or _READ_RASTER_FIX)


def require_geodataframe(obj, field: str, *, optional: bool = True, fix: str | None = None,
                         what: str = "") -> None:
    """Refuse anything but a :class:`geopandas.GeoDataFrame` with the package's :class:`InputError`.

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
    InputError
        ``obj`` is not a GeoDataFrame (nor ``None`` when ``optional``).
    """
    if obj is None and optional:
        return
    if not isinstance(obj, gpd.GeoDataFrame):
        label = f"a geopandas.GeoDataFrame {what}".rstrip()
        raise InputError(f"expected {label}, got {type(obj).__name__}", field=field,
                         fix=fix or "read it with permafrost.read_vector(path)")
