"""Describe every dataset in a directory through the package's readers (``permafrost inspect``).

No science: each file is opened with the reader that the rest of the package uses, so a
file that inspects cleanly is one the pipeline can read.  Files of unknown kinds are
listed as skipped, never silently ignored.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from permafrost.defaults import CHUNK
from permafrost.errors import InputFileError, PermafrostError
from permafrost.io.mintpy import find_track_files, mintpy_dates, read_mintpy, track_summary
from permafrost.io.netcdf import describe_netcdf
from permafrost.io.rasters import check_raster, read_raster
from permafrost.io.results import load_json
from permafrost.io.vectors import read_vector

__all__ = ["DatasetSummary", "describe_file", "describe_directory", "describe_tracks"]

log = logging.getLogger(__name__)

_RASTER = (".tif", ".tiff", ".vrt", ".img")
_VECTOR = (".gpkg", ".geojson", ".shp", ".parquet", ".geoparquet", ".fgb")
_HDF5 = (".h5", ".he5", ".hdf5")
_TABLE = (".csv",)
_NETCDF = (".nc", ".nc4", ".cdf", ".netcdf")
_JSON = (".json",)


@dataclass
class DatasetSummary:
    """What a reader saw in one file."""

    path: str
    kind: str
    crs: str | None = None
    shape: tuple[int, ...] | None = None
    bounds: tuple[float, float, float, float] | None = None
    details: dict = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _crs_name(crs) -> str | None:
    if crs is None:
        return None
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()[:60]


def _bounds(values) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` as floats."""
    left, bottom, right, top = (float(v) for v in values)
    return left, bottom, right, top


def _describe_raster(p: Path) -> DatasetSummary:
    # band 1 of a multi-band raster (the readers of covariates refuse it; inspect shows it)
    da = read_raster(p, chunks={"x": CHUNK, "y": CHUNK}, band=1)
    bands = check_raster(p, band=1).count
    res = da.rio.resolution()
    vals = da.data
    valid = int(np.isfinite(vals).sum().compute() if hasattr(vals, "compute") else np.isfinite(vals).sum())
    vmin = float(np.nanmin(vals).compute() if hasattr(vals, "compute") else np.nanmin(vals)) if valid else None
    vmax = float(np.nanmax(vals).compute() if hasattr(vals, "compute") else np.nanmax(vals)) if valid else None
    return DatasetSummary(
        path=str(p), kind="raster", crs=_crs_name(da.rio.crs), shape=tuple(da.shape),
        bounds=_bounds(da.rio.bounds()),
        details={"resolution": [float(abs(r)) for r in res], "dtype": str(da.encoding.get("dtype", da.dtype)),
                 "nodata": _jsonable(da.rio.encoded_nodata), "valid_pixels": valid,
                 "min": vmin, "max": vmax, **({"bands": bands} if bands > 1 else {})},
    )


def _describe_vector(p: Path) -> DatasetSummary:
    gdf = read_vector(p)
    geom_types = sorted(set(gdf.geom_type.dropna()))
    mixed = mixed_geometry_warning(gdf.geometry)
    return DatasetSummary(
        path=str(p), kind="vector", crs=_crs_name(gdf.crs), shape=(len(gdf),),
        bounds=_bounds(gdf.total_bounds),
        details={"geometry_types": geom_types,
                 "columns": [c for c in gdf.columns if c != gdf.geometry.name],
                 **({"warnings": [mixed]} if mixed else {})},
    )


#: geometry types of one family (a layer may mix single and multi parts of one family)
_FAMILIES = {"Point": "point", "MultiPoint": "point", "LineString": "line",
             "LinearRing": "line", "MultiLineString": "line", "Polygon": "polygon",
             "MultiPolygon": "polygon"}


def mixed_geometry_warning(geoms) -> str | None:
    """A warning when a layer's features are not of one geometry family (points, lines or
    polygons), counting the parts of GeometryCollections: GIS draw a layer as one type,
    and a collection's lines or points inside a polygon layer are lost or break tools."""
    types: dict[str, int] = {}
    collections = 0
    for g in geoms:
        if g is None or g.is_empty:
            continue
        parts = list(g.geoms) if g.geom_type == "GeometryCollection" else [g]
        collections += g.geom_type == "GeometryCollection"
        for part in parts:
            types[part.geom_type] = types.get(part.geom_type, 0) + 1
    families = {_FAMILIES.get(t, t) for t in types}
    if len(families) <= 1 and not collections:
        return None
    what = ", ".join(f"{n} {t}" for t, n in sorted(types.items()))
    coll = f" in {collections} GeometryCollection(s)" if collections else ""
    return (f"mixed geometry types ({what}{coll}): GIS draw a layer as one type; keep one "
            "(e.g. the polygons: geopandas' .explode() and a filter on geom_type)")


def _describe_hdf5(p: Path) -> DatasetSummary:
    from mintpy.utils import readfile

    try:
        atr = readfile.read_attribute(str(p))
        names = readfile.get_dataset_list(str(p))
    except Exception as exc:  # noqa: BLE001 - h5py/mintpy raise many kinds
        raise InputFileError(f"not a readable MintPy HDF5 file ({exc})", path=p,
                             fix="give a MintPy output such as velocity.h5") from None
    length, width = int(atr.get("LENGTH", 0)), int(atr.get("WIDTH", 0))
    bounds = None
    if "X_FIRST" in atr:
        x0, y0 = float(atr["X_FIRST"]), float(atr["Y_FIRST"])
        dx, dy = float(atr["X_STEP"]), float(atr["Y_STEP"])
        bounds = (x0, y0 + dy * length, x0 + dx * width, y0)
    epsg = atr.get("EPSG")
    crs = f"EPSG:{epsg}" if epsg else ("EPSG:4326 (implied)" if atr.get("X_UNIT", "").startswith("deg") else None)
    details = {"datasets": names, "unit": atr.get("UNIT"),
               "orbit": atr.get("ORBIT_DIRECTION"), "heading": atr.get("HEADING"),
               "reference": [atr.get("REF_LAT"), atr.get("REF_LON")] if "REF_LAT" in atr else None,
               "reference_yx": ([atr.get("REF_Y"), atr.get("REF_X")] if "REF_Y" in atr
                                else None),
               "dates": mintpy_dates(atr)}
    if "velocity" in names:  # the range of the velocity, in m/year, as read (no-data masked)
        v = read_mintpy(p, "velocity", attrs={str(k): str(x) for k, x in atr.items()},
                        check_plausible=False).values
        v = v[np.isfinite(v)]
        details["velocity_range"] = [float(v.min()), float(v.max())] if v.size else None
    return DatasetSummary(
        path=str(p), kind=f"mintpy:{atr.get('FILE_TYPE', '?')}", crs=crs, shape=(length, width),
        bounds=bounds, details=details)


def _describe_netcdf(p: Path) -> DatasetSummary:
    d = describe_netcdf(p)
    return DatasetSummary(path=str(p), kind="netcdf", crs=d["crs"],
                          shape=tuple(d["shape"]) if d["shape"] else None,
                          bounds=tuple(d["bounds"]) if d["bounds"] else None,
                          details={"variables": d["variables"], "time": d["time"],
                                   "resolution": d.get("resolution")})


def _describe_table(p: Path) -> DatasetSummary:
    try:
        df = pd.read_csv(p, nrows=200_000, comment=None)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"not a readable CSV table ({str(exc).splitlines()[0]})", path=p) from None
    return DatasetSummary(path=str(p), kind="table", shape=tuple(df.shape),
                          details={"columns": list(map(str, df.columns))})


def _describe_json(p: Path) -> DatasetSummary:
    obj = load_json(p, fix="give valid JSON", error=InputFileError)
    keys = list(obj)[:12] if isinstance(obj, dict) else None
    return DatasetSummary(path=str(p), kind="json",
                          shape=(len(obj),) if isinstance(obj, (list, dict)) else None,
                          details={"keys": keys})


def _jsonable(v):
    if v is None:
        return None
    v = float(v)
    return None if np.isnan(v) else v


_READERS = {}
for _s in _RASTER:
    _READERS[_s] = _describe_raster
for _s in _VECTOR:
    _READERS[_s] = _describe_vector
for _s in _HDF5:
    _READERS[_s] = _describe_hdf5
for _s in _TABLE:
    _READERS[_s] = _describe_table
for _s in _JSON:
    _READERS[_s] = _describe_json
for _s in _NETCDF:
    _READERS[_s] = _describe_netcdf


def describe_file(path: str | os.PathLike) -> DatasetSummary:
    """Open one file with the package's reader for its kind and summarise it.

    Raises
    ------
    InputFileError
        Missing file, unknown kind or unreadable content.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    reader = _READERS.get(p.suffix.lower())
    if reader is None:
        raise InputFileError(f"unknown file kind {p.suffix!r}", path=p,
                             fix="give a GeoTIFF, vector file, MintPy HDF5, NetCDF, CSV or JSON")
    return reader(p)


def describe_directory(
    path: str | os.PathLike, *, strict: bool = False
) -> tuple[list[DatasetSummary], list[str]]:
    """Summarise every readable dataset under ``path`` (recursively).

    Parameters
    ----------
    path : path-like
        Directory to walk.
    strict : bool
        Raise on the first unreadable file instead of recording the error.

    Returns
    -------
    summaries : list of DatasetSummary
        One per dataset file (unreadable ones carry ``error``).
    skipped : list of str
        Files that are not datasets (scripts, docs), listed, not ignored.
    """
    root = Path(path)
    if not root.is_dir():
        raise InputFileError("directory not found", path=root, fix="check the path")
    out: list[DatasetSummary] = []
    skipped: list[str] = []
    for p in sorted(root.rglob("*")):
        if p.is_dir() or any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(root).parts):
            continue
        if p.suffix.lower() not in _READERS or not p.is_file():
            skipped.append(str(p))  # not a dataset, or a FIFO/socket/device: opening blocks
            continue
        # auxiliary files of a dataset, not datasets of their own
        if p.suffix.lower() == ".json" and p.name.endswith(".aux.json"):
            skipped.append(str(p))
            continue
        try:
            out.append(describe_file(p))
        except PermafrostError as exc:
            if strict:
                raise
            log.warning("%s", exc)
            out.append(DatasetSummary(path=str(p), kind="unreadable", error=str(exc)))
    return out, skipped


def describe_tracks(path: str | os.PathLike) -> list[dict]:
    """The MintPy tracks under ``path``, as ``kinematics`` and a pipeline would read them.

    Every folder (``path`` itself included) that holds ``velocity.h5`` or
    ``geo_velocity.h5`` is a track (:func:`permafrost.io.mintpy.find_track_files`: a work
    folder with a radar-coded ``velocity.h5`` and a ``geo/`` folder gives the geocoded
    one); each is listed once, by its velocity file, with
    :func:`permafrost.io.mintpy.track_summary` (files, dates, reference point, velocity
    range).  An unreadable track carries ``error``.
    """
    root = Path(path)
    folders = [root] if root.is_dir() else []
    folders += sorted(d for d in root.rglob("*") if d.is_dir() and not any(
        part.startswith(".") for part in d.relative_to(root).parts)) if root.is_dir() else []
    seen: set[Path] = set()
    out: list[dict] = []
    for d in folders:
        if not any((d / n).is_file() for n in ("velocity.h5", "geo_velocity.h5")):
            continue
        try:
            files = find_track_files(d)
        except PermafrostError as exc:
            out.append({"track": d.name, "folder": str(d), "error": str(exc)})
            continue
        key = files.velocity.resolve()
        if key in seen:
            continue
        seen.add(key)
        try:
            out.append({"folder": str(d), **track_summary(files)})
        except PermafrostError as exc:
            out.append({"track": files.name, "folder": str(d), "error": str(exc)})
    return out
