"""Vector edges: read inventories, outlines and regions in any format GDAL reads; write GeoPackages atomically.

No science here: reading checks for a geometry column and a CRS, and reports invalid or
empty geometries so that callers never drop features silently.

Before anything is read, the path must name a regular file (or a FileGDB folder) of at
most :data:`MAX_VECTOR_BYTES` (:func:`check_input_file`: a link to ``/dev/zero`` or a FIFO
would be read forever).  A source with several spatial layers is read only when the layer is
named, as ``FILE::LAYER`` (:func:`split_layer`) or with ``layer=``; otherwise it is refused
with the list of its layers (the first one used to be read silently).  Coordinates must lie
within their CRS's valid range (:func:`check_coordinates`): UTM metres labelled EPSG:4326
are refused instead of giving areas of 0 km².
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pyproj
from pyogrio.errors import DataLayerError, DataSourceError

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError, PermafrostError
from permafrost.io.atomic import atomic_path
from permafrost.io.styles import write_gpkg_style

__all__ = ["read_vector", "write_vector", "VECTOR_SUFFIXES", "LAYER_SEPARATOR", "split_layer",
           "check_input_file", "check_coordinates", "check_layer", "MAX_VECTOR_BYTES"]

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb")

#: ``FILE::LAYER`` names one layer of a multi-layer source (GeoPackage, FileGDB)
LAYER_SEPARATOR = "::"
#: the largest vector file read [bytes]: a whole layer is read into memory
MAX_VECTOR_BYTES = 4 * 2**30


def split_layer(path: str | os.PathLike) -> tuple[Path, str | None]:
    """``"regions.gpkg::basins"`` -> ``(Path("regions.gpkg"), "basins")``; a path without
    ``::`` (or one that exists as written) -> ``(path, None)``."""
    text = os.fspath(path)
    if LAYER_SEPARATOR not in text or Path(text).exists():
        return Path(text), None
    file, _, layer = text.rpartition(LAYER_SEPARATOR)
    return Path(file), (layer or None)


def check_input_file(path: str | os.PathLike, *, max_bytes: int, what: str = "file",
                     allow_dir: bool = False) -> Path:
    """Refuse, before anything is read, a path that is missing, not a regular file (a link to
    ``/dev/zero``, a FIFO, a device: reading it would never end) or larger than ``max_bytes``.

    Parameters
    ----------
    path : path-like
        The input (links are followed).
    max_bytes : int
        The largest size accepted [bytes].
    what : str
        What the file is, for messages.
    allow_dir : bool
        Accept a folder (a FileGDB).

    Raises
    ------
    InputFileError
        Missing, not a regular file, or too large.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputFileError("file not found", path=p, fix="check the path") from None
    except OSError as exc:
        raise InputFileError(f"cannot be opened ({exc.strerror or exc})", path=p,
                             fix="check the path and its permissions") from None
    if stat.S_ISDIR(st.st_mode):
        if allow_dir:
            return p
        raise InputFileError(f"a {what} is expected, this is a folder", path=p,
                             fix="give the file inside it")
    if not stat.S_ISREG(st.st_mode):
        raise InputFileError(f"not a regular file (a device, FIFO or socket; a {what} is "
                             "expected)", path=p, fix=f"give the {what} itself, not a link to "
                                                      "a device or pipe")
    if st.st_size > max_bytes:
        raise InputFileError(f"{st.st_size / 2**20:.0f} MiB, larger than the "
                             f"{max_bytes / 2**20:.0f} MiB a {what} may be", path=p,
                             fix=f"check that this is the {what} meant; cut it to the area "
                                 "and columns needed")
    return p


def check_coordinates(bounds, crs, *, path=None, field: str = "geometry",
                      what: str = "features") -> None:
    """Refuse coordinates outside their CRS's valid range.

    Geographic CRSs: longitudes within ±360°, latitudes within ±90° (UTM metres labelled
    EPSG:4326 are refused).  Projected CRSs: the bounds must lie within the CRS's area of
    use (:attr:`pyproj.CRS.area_of_use`) projected into it and widened by its own extent on
    every side (a generous bound: data a few zones off still passes, coordinates in another
    CRS's false origin, e.g. LV03 labelled LV95, do not), and must project back to finite
    longitudes and latitudes.  A CRS without an area of use is checked for finite values.

    Parameters
    ----------
    bounds : (float, float, float, float)
        ``(xmin, ymin, xmax, ymax)`` of the features [CRS units]; NaN (no features) passes.
    crs : CRS-like
        Their CRS.
    path, field, what : optional
        Named in the message.

    Raises
    ------
    CRSError
        Coordinates outside the range.
    """
    import numpy as np

    b = np.asarray(bounds, dtype="float64")
    if b.shape != (4,) or np.isnan(b).any():
        return
    crs = pyproj.CRS.from_user_input(crs)
    name = crs.to_string()
    span = f"x {b[0]:.6g} to {b[2]:.6g}, y {b[1]:.6g} to {b[3]:.6g}"
    if not np.isfinite(b).all():
        raise CRSError(f"{what} with infinite coordinates ({span})", path=path, field=field,
                       fix="remove or repair those features")
    if crs.is_geographic:
        if b[1] < -90 or b[3] > 90 or b[0] < -360 or b[2] > 360:
            hint = (" (they look like projected metres)" if max(abs(b).max(), 0) > 1000
                    else "")
            raise CRSError(f"{what} lie outside the valid range of {name} (longitude within "
                           f"±360°, latitude within ±90°): {span}{hint}", path=path,
                           field=field, fix="label the file with its real CRS (e.g. its UTM "
                                            "zone: ogr2ogr -a_srs EPSG:326NN out in), or give "
                                            "degrees")
        return
    inside = True
    aou = crs.area_of_use
    if aou is not None and aou.west <= aou.east:
        try:
            fwd = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
            west, south, east, north = aou.bounds
            a = np.asarray(fwd.transform_bounds(west, south, east, north, densify_pts=21),
                           dtype="float64")
        except pyproj.exceptions.ProjError:
            a = np.full(4, np.nan)
        if np.isfinite(a).all():
            w = max(a[2] - a[0], a[3] - a[1])
            inside = (b[0] >= a[0] - w and b[2] <= a[2] + w and b[1] >= a[1] - w
                      and b[3] <= a[3] + w)
    if inside:
        try:
            inv = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
            lon, lat = inv.transform(b[[0, 2, 0, 2]], b[[1, 1, 3, 3]])
            inside = bool(np.isfinite(lon).all() and np.isfinite(lat).all())
        except pyproj.exceptions.ProjError:
            inside = False
    if not inside:
        where = (f" (its area of use: {aou.name}, lon {aou.west:g} to {aou.east:g}, lat "
                 f"{aou.south:g} to {aou.north:g})" if aou is not None else "")
        raise CRSError(f"{what} lie far outside the valid range of {name}{where}: {span}",
                       path=path, field=field,
                       fix="label the file with the CRS its coordinates are in")


@expects(path="path")
def read_vector(
    path: str | os.PathLike,
    *,
    layer: str | int | None = None,
    require_crs: bool = True,
    allow_empty: bool = False,
) -> gpd.GeoDataFrame:
    """Read a vector file (GeoPackage, GeoJSON, Shapefile, GeoParquet, ...) with its CRS.

    Parameters
    ----------
    path : path-like
        The file; ``FILE::LAYER`` names a layer (:func:`split_layer`).
    layer : str or int, optional
        Layer of a multi-layer source (default: the only spatial layer; a source with
        several is refused with their list, never read silently at the first).
    require_crs : bool
        Raise :class:`~permafrost.errors.CRSError` when the file has no CRS.
    allow_empty : bool
        Accept a file with no features.

    Raises
    ------
    InputFileError
        Missing, not a regular file, too large (:func:`check_input_file`), several spatial
        layers and none named, a named layer that is not there, unreadable, or without
        geometry.
    CRSError
        No CRS and ``require_crs``; coordinates outside the CRS's range
        (:func:`check_coordinates`).
    DataError
        No features (unless ``allow_empty``).
    """
    p, named = split_layer(path)
    if layer is None:
        layer = named
    check_input_file(p, max_bytes=MAX_VECTOR_BYTES, what="vector file",
                     allow_dir=p.suffix.lower() == ".gdb")
    try:
        if p.suffix.lower() in (".parquet", ".geoparquet"):
            _need_pyarrow(p)
            gdf = gpd.read_parquet(p)
        else:
            layer = _pick_layer(p, layer)
            gdf = pyogrio.read_dataframe(p, layer=layer)
    except PermafrostError:
        raise
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if "geometry" in first.lower() and p.suffix.lower() in (".parquet", ".geoparquet"):
            raise InputFileError("has no geometry column", path=p,
                                 fix="give a vector file with point or polygon geometries") from None
        raise InputFileError(f"not a readable vector file ({first})", path=p,
                             fix="give a GeoPackage, GeoJSON, Shapefile or GeoParquet") from None
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputFileError("has no geometry column", path=p,
                             fix="give a vector file with point or polygon geometries")
    if isinstance(gdf, pd.DataFrame) and gdf.geometry.isna().all() and len(gdf):
        raise InputFileError("has no geometries (every feature's geometry is empty)", path=p,
                             fix="give a vector file with point or polygon geometries")
    if require_crs and gdf.crs is None:
        raise CRSError("the vector file has no CRS", path=p,
                       fix="assign one (e.g. save it again with a .prj / in a GeoPackage)")
    if not allow_empty and len(gdf) == 0:
        raise DataError("holds no features", path=p, fix="check the layer")
    if gdf.crs is not None and len(gdf) and not gdf.geometry.isna().all():
        check_coordinates(gdf.total_bounds, gdf.crs, path=p)
    gdf.attrs["source"] = str(p)
    if layer is not None:
        gdf.attrs["layer"] = layer
    return gdf


def check_layer(path: str | os.PathLike) -> None:
    """Check, without reading features, that a vector source can be read as one layer: a
    regular file (or FileGDB folder) of bounded size, with one spatial layer or the layer
    named (``FILE::LAYER``).  For checks before any work (pipeline files).

    Raises
    ------
    InputFileError
        As :func:`read_vector` would, for these reasons.
    """
    p, layer = split_layer(path)
    check_input_file(p, max_bytes=MAX_VECTOR_BYTES, what="vector file",
                     allow_dir=p.suffix.lower() == ".gdb")
    if p.suffix.lower() in (".parquet", ".geoparquet"):
        return
    try:
        _pick_layer(p, layer)
    except PermafrostError:
        raise
    except (DataSourceError, DataLayerError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"not a readable vector file ({first})", path=p,
                             fix="give a GeoPackage, GeoJSON, Shapefile or GeoParquet") from None


def _pick_layer(p: Path, layer: str | int | None) -> str | int | None:
    """The layer to read: the one named (checked to exist), else the only spatial layer;
    several spatial layers and none named is an error that lists them."""
    layers = pyogrio.list_layers(p)
    names = [str(n) for n, _ in layers]
    if layer is not None:
        if isinstance(layer, str) and layer not in names:
            raise InputFileError(f"no layer {layer!r} (layers: {', '.join(names)})", path=p,
                                 field="layer", fix=f"name one of them: {p}{LAYER_SEPARATOR}"
                                                  f"{names[0] if names else 'LAYER'}")
        return layer
    spatial = [str(n) for n, g in layers if g is not None]
    if len(spatial) > 1:
        raise InputFileError(f"holds {len(spatial)} layers ({', '.join(spatial)}); which one "
                             "is meant is not known", path=p, field="layer",
                             fix=f"name the layer: {p}{LAYER_SEPARATOR}{spatial[0]}")
    return spatial[0] if len(spatial) == 1 and len(names) > 1 else None


@expects(gdf="geodataframe", path="path")
def write_vector(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, layer: str | None = None,
                 style: str | None = None) -> Path:
    """Write a GeoDataFrame to a GeoPackage (or the format of the suffix) atomically.

    ``style``: the kind of :data:`permafrost.styles.LAYERS` whose QGIS style goes into the
    GeoPackage's ``layer_styles`` table (:func:`permafrost.io.styles.write_gpkg_style`).
    """
    target = Path(path)
    with atomic_path(target) as tmp:
        if target.suffix.lower() in (".parquet", ".geoparquet"):
            _need_pyarrow(target)
            gdf.to_parquet(tmp)
        else:
            # a fixed timestamp in GeoPackage metadata keeps outputs byte-identical
            with pyogrio_env(OGR_CURRENT_DATE=_FIXED_DATE):
                pyogrio.write_dataframe(gdf, tmp, layer=layer or target.stem)
            if style is not None and target.suffix.lower() == ".gpkg":
                write_gpkg_style(tmp, layer or target.stem, style)
    return target


#: the timestamp written into GeoPackage metadata (GDAL's OGR_CURRENT_DATE), so that the
#: same features always give the same bytes
_FIXED_DATE = "2000-01-01T00:00:00.000Z"


class pyogrio_env:  # noqa: N801 - used like a function
    """Set GDAL configuration options for pyogrio within a ``with`` block."""

    def __init__(self, **options: str) -> None:
        self.options = options

    def __enter__(self):
        self.saved = {k: pyogrio.get_gdal_config_option(k) for k in self.options}
        pyogrio.set_gdal_config_options(self.options)
        return self

    def __exit__(self, *exc) -> None:
        pyogrio.set_gdal_config_options(self.saved)


def _need_pyarrow(p: Path) -> None:
    """GeoParquet is read and written with pyarrow, an optional dependency."""
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise InputFileError("GeoParquet needs pyarrow, which is not installed", path=p,
                             fix="pip install 'permafrost[parquet]' (or pyarrow), or give a "
                                 "GeoPackage")

