"""Vector edges: read inventories, outlines and regions in any format GDAL reads; write GeoPackages atomically.

No science here: reading checks for a geometry column and a CRS, and reports invalid or
empty geometries so that callers never drop features silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError
from permafrost.io._atomic import atomic_path

__all__ = ["read_vector", "write_vector", "VECTOR_SUFFIXES"]

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".parquet", ".geoparquet", ".fgb")


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
        The file.
    layer : str or int, optional
        Layer of a multi-layer source (default: the first).
    require_crs : bool
        Raise :class:`~permafrost.errors.CRSError` when the file has no CRS.
    allow_empty : bool
        Accept a file with no features.

    Raises
    ------
    InputFileError
        Missing, unreadable, or without geometry.
    CRSError
        No CRS and ``require_crs``.
    DataError
        No features (unless ``allow_empty``).
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    try:
        if p.suffix.lower() in (".parquet", ".geoparquet"):
            _need_pyarrow(p)
            gdf = gpd.read_parquet(p)
        else:
            gdf = pyogrio.read_dataframe(p, layer=layer)
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
    gdf.attrs["source"] = str(p)
    return gdf


@expects(gdf="geodataframe", path="path")
def write_vector(gdf: gpd.GeoDataFrame, path: str | os.PathLike, *, layer: str | None = None) -> Path:
    """Write a GeoDataFrame to a GeoPackage (or the format of the suffix) atomically."""
    target = Path(path)
    with atomic_path(target) as tmp:
        if target.suffix.lower() in (".parquet", ".geoparquet"):
            _need_pyarrow(target)
            gdf.to_parquet(tmp)
        else:
            # a fixed timestamp in GeoPackage metadata keeps outputs byte-identical
            with pyogrio_env(OGR_CURRENT_DATE=_FIXED_DATE):
                pyogrio.write_dataframe(gdf, tmp, layer=layer or target.stem)
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

