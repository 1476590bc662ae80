"""`stats` on files: read a PZI raster and its companions, compute the area statistics.

The science is :func:`permafrost.area.zone_statistics` (objects in, a
:class:`~permafrost.area.ZoneStatistics` out); this module reads the inputs lazily, in
blocks, and writes the JSON and CSV outputs.
"""

from __future__ import annotations

import logging
import warnings

import dask
import dask.array as dsa
import numpy as np

from permafrost.area import (
    ElevationProfile,
    ZoneStatistics,
    elevation_profile,
    stats_rows,
    stats_table_columns,
    zone_statistics,
)
from permafrost.checks import expects
from permafrost.defaults import auto_block_rows
from permafrost.errors import DataError
from permafrost.grid import sample_at_points
from permafrost.io.guard import Output, check_outputs
from permafrost.io.maps import read_aligned, read_mask
from permafrost.io.rasters import read_raster
from permafrost.io.results import write_csv, write_json
from permafrost.io.vectors import read_vector
from permafrost.options import check_band_count, check_options

__all__ = ["highest_label_elevation", "profile_from_files", "stats_from_files", "write_stats"]

log = logging.getLogger(__name__)


@expects(pzi_path="path")
def stats_from_files(
    pzi_path,
    *,
    regions_path=None,
    region_field: str = "name",
    dem_path=None,
    band_width: float = 200.0,
    mask_path=None,
    block_rows: int | None = None,
) -> ZoneStatistics:
    """Read the inputs (lazily, in blocks) and run :func:`permafrost.area.zone_statistics`.

    The DEM may be on any grid: it is put on the PZI grid by GDAL's warper (bilinear).  The
    mask is read by :func:`permafrost.io.maps.read_mask`, the rule of every command: a
    raster (non-zero = masked) on any grid, put on the PZI grid by nearest neighbour, or a
    vector file of polygons (cell centre inside = masked), told apart by the file suffix.

    Parameters
    ----------
    pzi_path, regions_path, dem_path, mask_path : path-like
        Input files (see :func:`permafrost.area.zone_statistics` for their meaning).
    region_field : str
        Region name column.
    band_width : float
        Elevation band width [m].
    block_rows : int, optional
        Rows per block [-] (default: :func:`permafrost.defaults.auto_block_rows`).

    Returns
    -------
    ZoneStatistics
        The statistics; ``as_dict()`` is the content of ``stats.json``.

    Raises
    ------
    DataError
        A DEM without valid elevation on the PZI grid, and every error of
        :func:`permafrost.area.zone_statistics`.
    """
    checked = check_options(band_width=band_width, block_rows=block_rows)
    band_width, block_rows = checked["band_width"], checked["block_rows"]
    if block_rows is None:  # a lazy open to learn the width, then chunks of whole block rows
        block_rows = auto_block_rows(read_raster(pzi_path, chunks={"y": 1, "x": -1}).shape[1])
    chunks = {"y": block_rows, "x": -1}
    pzi = read_raster(pzi_path, chunks=chunks, name="pzi")
    log.info("stats: %s, %d x %d cells in blocks of %d rows, %s", pzi_path, pzi.shape[0],
             pzi.shape[1], block_rows, pzi.rio.crs)
    regions = read_vector(regions_path) if regions_path is not None else None
    dem = (read_aligned(dem_path, pzi, resampling="bilinear", chunks=chunks, name="dem",
                        role="elevation")
           if dem_path is not None else None)
    if dem is not None:  # one pass: any valid elevation, and the number of bands it makes
        with warnings.catch_warnings():  # an all-NaN DEM: "All-NaN slice encountered"
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = (float(v) for v in dask.compute(dsa.nanmin(dsa.asarray(dem.data)),
                                                     dsa.nanmax(dsa.asarray(dem.data))))
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise DataError("the DEM has no valid elevation on the PZI's grid (all nodata, or "
                            "no overlap), so no elevation band can be made", path=dem_path,
                            field="--dem", fix="give a DEM with elevations that covers the map")
        check_band_count(lo, hi, band_width, path=dem_path, field="band_width")
    mask = read_mask(mask_path, pzi, chunks=chunks) if mask_path is not None else None
    log.info("stats: regions %s, elevation bands %s, mask %s",
             f"{len(regions)} from {regions_path}" if regions is not None else "none",
             f"of {band_width:g} m from {dem_path}" if dem is not None else "none",
             mask_path or "none")
    out = zone_statistics(pzi, regions=regions, region_field=region_field, dem=dem,
                          band_width=band_width,
                          mask_vector=mask.polygons if mask is not None else None,
                          mask_raster=mask.excluded if mask is not None else None,
                          block_rows=block_rows)
    log.debug("stats: cell areas by %s", out.meta.get("cell_area_method"))
    if dem is not None:
        out.meta["elevation_bands"]["resampling"] = "bilinear onto the PZI grid"
    return out


def write_stats(stats: ZoneStatistics, *, out_json=None, out_csv=None) -> None:
    """Write statistics as ``stats.json`` (:meth:`ZoneStatistics.as_dict`) and/or as the
    CSV table (:func:`permafrost.area.stats_rows`, columns of
    :func:`permafrost.area.stats_table_columns` plus the denominator text).

    Parameters
    ----------
    stats : ZoneStatistics
        The result of :func:`stats_from_files` or :func:`permafrost.area.zone_statistics`.
    out_json, out_csv : path-like, optional
        Files to write (atomically); checked by the output guard first
        (:func:`permafrost.io.guard.check_outputs`: not one file, no folder in the way).
    """
    check_outputs([Output(out_json, "--out-json", what="statistics"),
                   Output(out_csv, "--out-csv", what="table")])
    if out_json is not None:
        write_json(stats.as_dict(), out_json)
    if out_csv is not None:
        write_csv(stats_rows(stats), out_csv, columns=stats_table_columns() + ["denominator"])


def highest_label_elevation(labels_path, dem) -> float | None:
    """Elevation [m] of the highest training label: the DEM (on the map's grid) at the
    labelled points of ``labels_path`` (the cell holding each point,
    :func:`permafrost.grid.sample_at_points`); None when no label lies on the DEM."""
    labels = read_vector(labels_path, allow_empty=True)
    if len(labels) == 0:
        return None
    pts = labels.geometry.representative_point()
    z, _ = sample_at_points(dem, pts.x.to_numpy(), pts.y.to_numpy(), crs=labels.crs)
    return float(np.nanmax(z)) if np.isfinite(z).any() else None


@expects(pzi_path="path", dem_path="path")
def profile_from_files(
    pzi_path,
    dem_path,
    *,
    band_width: float = 200.0,
    mask_path=None,
    labels_path=None,
    block_rows: int | None = None,
) -> ElevationProfile:
    """Read a PZI map and its DEM (lazily, in blocks) and run
    :func:`permafrost.area.elevation_profile`: the PZI–elevation profile by aspect class, the
    lower limit of permafrost by aspect, and, with ``labels_path``, the falls of the PZI with
    elevation above the highest label.

    Parameters
    ----------
    pzi_path, dem_path : path-like
        PZI raster and DEM (put on the PZI grid, bilinear, as for the statistics).
    band_width : float
        Elevation band width [m].
    mask_path : path-like, optional
        Mask (raster or polygons, :func:`permafrost.io.maps.read_mask`).
    labels_path : path-like, optional
        The training labels (points): their highest elevation on the DEM is the
        ``highest_label_m`` of the fall check (:func:`highest_label_elevation`).
    block_rows : int, optional
        Rows per block.

    Returns
    -------
    ElevationProfile
        ``as_dict()`` is the content of ``profile.json``.
    """
    if block_rows is None:
        block_rows = auto_block_rows(read_raster(pzi_path, chunks={"y": 1, "x": -1}).shape[1])
    chunks = {"y": block_rows, "x": -1}
    pzi = read_raster(pzi_path, chunks=chunks, name="pzi")
    dem = read_aligned(dem_path, pzi, resampling="bilinear", chunks=chunks, name="dem")
    mask = read_mask(mask_path, pzi, chunks=chunks) if mask_path is not None else None
    top = highest_label_elevation(labels_path, dem) if labels_path is not None else None
    prof = elevation_profile(pzi, dem, band_width=band_width, highest_label_m=top,
                             mask_vector=mask.polygons if mask is not None else None,
                             mask_raster=mask.excluded if mask is not None else None,
                             block_rows=block_rows)
    prof.meta["resampling"] = "DEM bilinear onto the PZI grid"
    if labels_path is not None:
        prof.meta["highest_label_rule"] = ("highest DEM value (on the PZI grid) of the cells "
                                           "holding the training labels")
    for w in prof.warnings:
        log.warning("profile: %s", w)
    return prof
