"""Map edges for prediction, statistics and validation: rasters aligned onto another grid,
masks, prior maps, previews for figures.

No science here: these functions read files and put them on a requested grid; the
resampling is chosen by the caller (see ``docs/validation.md`` for why validation uses
nearest neighbour onto the model grid), except for masks, which have one rule everywhere
(:func:`read_mask`).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rioxarray
import xarray as xr
from rasterio.enums import Resampling
from rasterio.errors import RasterioIOError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError
from permafrost.grid import grid_of, grids_equal
from permafrost.io.rasters import (
    RASTER_SUFFIXES,
    apply_scale_offset,
    check_raster,
    file_stem,
    gdal_path,
    read_raster,
    scale_offset,
)
from permafrost.io.vectors import read_vector
from permafrost.rasterize import polygons_in_crs, raster_mask_excluded

__all__ = [
    "Mask",
    "read_aligned",
    "read_mask",
    "read_preview",
    "raster_bounds_overlap",
]

log = logging.getLogger(__name__)

def _open(path: str | os.PathLike):
    path = gdal_path(path)
    if isinstance(path, Path) and not path.exists():  # a local path (gdal_path)
        raise InputFileError("file not found", path=path, fix="check the path")
    try:
        return rasterio.open(path)
    except (RasterioIOError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"not a readable raster ({first})", path=path,
                             fix="give a GeoTIFF or another format GDAL reads") from None


def raster_bounds_overlap(path: str | os.PathLike, like: xr.DataArray) -> bool:
    """True when the raster at ``path`` overlaps the footprint of ``like`` (in ``like``'s CRS)."""
    p = gdal_path(path)
    with _open(p) as src:
        if src.crs is None:
            raise CRSError("the raster has no CRS", path=p,
                           fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
        b = transform_bounds(src.crs, like.rio.crs, *src.bounds, densify_pts=21)
    lb = like.rio.bounds()
    return not (b[2] <= lb[0] or b[0] >= lb[2] or b[3] <= lb[1] or b[1] >= lb[3])


@expects(path="path", like="xarray")
def read_aligned(
    path: str | os.PathLike,
    like: xr.DataArray,
    *,
    resampling: str = "nearest",
    chunks: int | dict | bool | None = None,
    name: str | None = None,
    role: str | None = None,
) -> xr.DataArray:
    """Read a single-band raster warped onto the grid of ``like`` (lazily with ``chunks``).

    The file passes the read checks of :func:`permafrost.io.rasters.check_raster` first
    (with ``role``: values in that role's plausible range); GDAL's scale and offset are
    applied.

    The source may be in any CRS and resolution: GDAL's warper (a ``WarpedVRT``) puts it on
    ``like``'s CRS, transform and shape with the given resampling.  Source nodata and cells
    outside the source footprint become NaN (the result is float32).  The warper's
    approximation tolerance is 0.001 pixel (GDAL's default 0.125 moves nearest-neighbour
    picks near cell edges), so ``nearest`` picks the source cell holding each target centre.

    Parameters
    ----------
    path : path-like
        Raster to read.
    like : xarray.DataArray
        Target grid (2-D, with ``rio`` CRS and transform).
    resampling : str
        A :class:`rasterio.enums.Resampling` name: ``nearest`` for classes, ``average``
        (area-weighted mean), ``bilinear``...
    chunks : optional
        Dask chunks for a lazy read (``None`` reads into memory).
    name : str, optional
        Name of the array (default: file stem).
    role : str, optional
        A key of :data:`permafrost.io.rasters.PLAUSIBLE` (``elevation`` for a DEM...).

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    CRSError
        The source has no CRS.
    DataError
        The source does not overlap ``like`` at all.
    """
    p = gdal_path(path)
    if isinstance(p, Path) and not p.exists():  # a local path (gdal_path)
        raise InputFileError("file not found", path=p, fix="check the path")
    check_raster(p, role=role, name=name)
    if not raster_bounds_overlap(p, like):
        lb = ", ".join(f"{v:.6g}" for v in like.rio.bounds())
        raise DataError(f"does not overlap the map it is compared with (map bounds {lb} in "
                        f"{like.rio.crs.to_string()})", path=p,
                        fix="check that the file covers the same region and has the right CRS")
    try:
        rs = Resampling[resampling]
    except KeyError:
        raise DataError(f"unknown resampling {resampling!r}", field="resampling",
                        fix=f"use one of {[r.name for r in Resampling][:14]}") from None
    height, width = like.rio.shape
    # rioxarray re-opens the source with the VRT's parameters (warp tolerance included)
    # for every lazy read, so both handles can be closed here
    with _open(p) as src, WarpedVRT(src, crs=like.rio.crs, transform=like.rio.transform(),
                                    width=width, height=height, resampling=rs,
                                    dtype="float32", nodata=np.nan, tolerance=1e-3) as vrt:
        src_nodata = src.nodata
        da = rioxarray.open_rasterio(vrt, masked=True, chunks=chunks)
        assert isinstance(da, xr.DataArray)  # one raster, not subdatasets
        da = apply_scale_offset(da.isel(band=0, drop=True), *scale_offset(p))
        if chunks is None:
            da = da.load()
    da = da.assign_coords(x=like["x"].values, y=like["y"].values) if (
        da.sizes["x"] == like.sizes["x"] and da.sizes["y"] == like.sizes["y"]) else da
    da.name = name or file_stem(p)
    da.attrs = {"source": str(p), "resampling": rs.name,
                "source_nodata": None if src_nodata is None else float(src_nodata)}
    return da


@dataclass(frozen=True)
class Mask:
    """A mask file read for a grid (:func:`read_mask`): the cells to exclude.

    Exactly one of ``excluded`` and ``polygons`` is set.

    Attributes
    ----------
    excluded : xarray.DataArray or None
        A raster mask on the grid: boolean, True = excluded (non-zero and not nodata in the
        file), lazy when read with ``chunks``; ``attrs["source"]`` names the file.
    polygons : geopandas.GeoDataFrame or None
        A vector mask: its features in the grid's CRS, polygons only (empty geometries
        kept; they exclude nothing).  A cell is excluded when its centre lies inside a
        polygon: burn them with :func:`permafrost.rasterize.burn`.
    info : dict
        ``path`` (resolved), ``kind`` (``"raster"`` or ``"vector"``) and, for polygons,
        ``features`` (the non-empty ones): what provenance records.
    """

    excluded: xr.DataArray | None
    polygons: gpd.GeoDataFrame | None
    info: dict = field(default_factory=dict)


@expects(path="path", like="xarray")
def read_mask(path: str | os.PathLike, like: xr.DataArray, *,
              chunks: int | dict | bool | None = None) -> Mask:
    """Read a mask (glaciers, lakes) for the grid of ``like``: one rule for every command.

    A raster (suffix in :data:`permafrost.io.rasters.RASTER_SUFFIXES`) is put on ``like``'s
    grid by nearest neighbour (:func:`read_aligned`; masks are categorical), logged when
    its grid differs; its non-zero cells that are not nodata are excluded.  Anything else
    is read as polygons (:func:`permafrost.io.read_vector`, any CRS) and reprojected to
    ``like``'s CRS (:func:`permafrost.rasterize.polygons_in_crs`); cells whose centre lies
    inside a polygon are excluded.

    Parameters
    ----------
    path : path-like
        The mask file.
    like : xarray.DataArray
        The grid the mask is for (2-D, with a ``rio`` CRS and transform): the PZI or a
        covariate.
    chunks : optional
        Dask chunks for a lazy read of a raster mask (``None`` reads it into memory).

    Returns
    -------
    Mask

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    CRSError
        The file has no CRS.
    DataError
        A raster that does not overlap ``like``; features without area (points, lines).
    """
    p = Path(path)
    if p.suffix.lower() in RASTER_SUFFIXES:
        m = read_aligned(p, like, resampling="nearest", chunks=chunks, name="mask")
        if not grids_equal(read_raster(p, chunks={"y": -1, "x": -1}), like):  # lazy: header
            log.info("mask: %s resampled by nearest neighbour onto the grid (%d x %d, %s)", p,
                     *like.rio.shape, like.rio.crs)
        excluded = raster_mask_excluded(m)
        excluded.name = "mask"
        excluded.attrs = {"source": m.attrs["source"], "resampling": "nearest"}
        return Mask(excluded=excluded, polygons=None,
                    info={"path": str(p.resolve()), "kind": "raster"})
    gdf = read_vector(p, allow_empty=True)
    polys, n_empty = polygons_in_crs(gdf, grid_of(like).crs, "mask")
    log.info("mask: %d polygons from %s", len(polys) - n_empty, p)
    return Mask(excluded=None, polygons=polys,
                info={"path": str(p.resolve()), "kind": "vector",
                      "features": len(polys) - n_empty})


def read_preview(path: str | os.PathLike, *, max_size: int = 800,
                 resampling: str = "average") -> tuple[np.ndarray, tuple, object]:
    """Read band 1 decimated so its longer side is at most ``max_size`` pixels (for figures).

    Returns
    -------
    array : numpy.ndarray
        float64, nodata as NaN.
    bounds : tuple
        ``(left, bottom, right, top)`` in the raster CRS.
    crs : rasterio.crs.CRS
    """
    p = gdal_path(path)
    with _open(p) as src:
        scale = max(src.width, src.height) / max_size
        if scale > 1:
            shape = (max(1, int(src.height / scale)), max(1, int(src.width / scale)))
        else:
            shape = (src.height, src.width)
        arr = src.read(1, out_shape=shape, masked=True, resampling=Resampling[resampling])
        out = arr.astype("float64").filled(np.nan)
        if src.nodata is not None and not math.isnan(src.nodata):
            out[arr.data == src.nodata] = np.nan
        scale, offset = scale_offset(p)
        if scale != 1.0 or offset != 0.0:
            out = out * scale + offset
        return out, tuple(src.bounds), src.crs
