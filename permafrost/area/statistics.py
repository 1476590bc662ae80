"""Permafrost area statistics of a PZI raster: whole map, per region, per elevation band.

Statistics are accumulated row block by row block, so rasters larger than memory are
processed with memory bounded by one block of each input.  Every output states its
denominator: the valid (not nodata), unmasked area of the unit.  Cell areas are on the
ellipsoid (:mod:`permafrost.area.ellipsoid`), zones as in :mod:`permafrost.area.zones`.

References
----------
The cell areas' and the zones' references are in :mod:`permafrost.area.ellipsoid` and
:mod:`permafrost.area.zones`; the PZI-weighted area is Gruber's (2012) "permafrost area"
(Gruber, S. (2012), The Cryosphere 6, 221–233).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import shapely
import xarray as xr

from permafrost.area.ellipsoid import cell_areas
from permafrost.area.zones import AGGREGATE_M, REGION_THRESHOLD, ZONES, aggregation_factors
from permafrost.checks import require_geodataframe, require_xarray
from permafrost.defaults import auto_block_rows
from permafrost.errors import DataError, InputError, ParameterError
from permafrost.grid import Grid, grid_of
from permafrost.options import MAX_ELEVATION_BANDS, check_band_count, check_options
from permafrost.rasterize import Shapes, burn, polygons_in_crs
from permafrost.zonal import overlap_layers

log = logging.getLogger(__name__)

__all__ = [
    "CLASSES",
    "ZoneStatistics",
    "zone_statistics",
    "stats_rows",
    "stats_table_columns",
]


#: cell classes accumulated per unit: masked, nodata, then the zones from below 0.01 up
CLASSES = ("masked", "nodata", "none", "isolated", "sporadic", "discontinuous", "continuous")
_NC = len(CLASSES)


@dataclass
class _Accumulator:
    """Area sums [m²] per named unit and cell class, grown as new units appear."""

    names: list = field(default_factory=list)
    index: dict = field(default_factory=dict)
    cls_area: np.ndarray = field(default_factory=lambda: np.zeros((0, _NC)))
    weighted: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_valid: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype="int64"))

    def ids_for(self, keys: Sequence) -> np.ndarray:
        ids = []
        for k in keys:
            if k not in self.index:
                self.index[k] = len(self.names)
                self.names.append(k)
            ids.append(self.index[k])
        grow = len(self.names) - self.cls_area.shape[0]
        if grow > 0:
            self.cls_area = np.vstack([self.cls_area, np.zeros((grow, _NC))])
            self.weighted = np.concatenate([self.weighted, np.zeros(grow)])
            self.n_valid = np.concatenate([self.n_valid, np.zeros(grow, dtype="int64")])
        return np.asarray(ids, dtype="int64")

    def add(self, gid: np.ndarray | None, cls: np.ndarray, area: np.ndarray,
            weighted: np.ndarray) -> None:
        """Add cells: unit ids (None = all in unit 0), class codes, areas and PZI·area [m²]."""
        g = len(self.names)
        if gid is None:
            self.cls_area[0] += np.bincount(cls, weights=area, minlength=_NC)
            self.weighted[0] += weighted.sum()
            self.n_valid[0] += int(np.count_nonzero(cls >= 2))
            return
        self.cls_area += np.bincount(gid * _NC + cls, weights=area,
                                     minlength=g * _NC).reshape(g, _NC)
        self.weighted += np.bincount(gid, weights=weighted, minlength=g)
        self.n_valid += np.bincount(gid[cls >= 2], minlength=g)


def _cell_classes(pzi: np.ndarray, masked: np.ndarray) -> np.ndarray:
    """Class code (index into :data:`CLASSES`) of each cell, flattened (int64)."""
    p = pzi.ravel()
    cls = np.full(p.shape, 2, dtype="int64")
    for k, (_, lo, _) in enumerate(reversed(ZONES), start=3):  # isolated..continuous
        cls[p >= lo] = k
    cls[np.isnan(p)] = 1
    cls[masked.ravel()] = 0
    return cls


def _row_blocks(nrows: int, block_rows: int) -> Iterator[tuple[int, int]]:
    for r0 in range(0, nrows, block_rows):
        yield r0, min(nrows, r0 + block_rows)


@dataclass(frozen=True)
class ZoneStatistics:
    """The area statistics of a PZI map (the result of :func:`zone_statistics`).

    Attributes
    ----------
    units : list of dict
        One row per unit: the whole map first (``unit`` = ``all``), then each region
        (``region``), then each elevation band (``elevation_band``); areas in km² (see
        :func:`zone_statistics`).
    meta : dict
        What the figures mean: source, CRS, cell-area method, thresholds, denominator,
        mask, regions, elevation bands, aggregated zones, PZI range.
    """

    units: list[dict]
    meta: dict

    @property
    def whole(self) -> dict:
        """The row of the whole map (``units[0]``)."""
        return self.units[0]

    def as_dict(self) -> dict:
        """``{"units": [...], "meta": {...}}``: the content of ``stats.json``."""
        return {"units": self.units, "meta": self.meta}

    @classmethod
    def from_dict(cls, d) -> ZoneStatistics:
        """The statistics from their :meth:`as_dict` form (e.g. a ``stats.json`` read back)."""
        if not (hasattr(d, "get") and "units" in d and "meta" in d):
            raise InputError("expected the statistics as a mapping with 'units' and 'meta' "
                             f"(a stats.json), got {type(d).__name__}", field="stats",
                             fix="give the stats.json written by `permafrost stats`")
        return cls(units=list(d["units"]), meta=d["meta"])


def zone_statistics(
    pzi: xr.DataArray,
    *,
    regions=None,
    region_field: str = "name",
    dem: xr.DataArray | None = None,
    band_width: float = 200.0,
    mask_vector=None,
    mask_raster: xr.DataArray | None = None,
    block_rows: int | None = None,
    aggregate_m: float | None = AGGREGATE_M,
) -> ZoneStatistics:
    """Permafrost area statistics of a PZI raster: whole map, per region, per elevation band.

    Parameters
    ----------
    pzi : xarray.DataArray
        PZI [-] in [0, 1], NaN for nodata, 2-D with a CRS; may be Dask-backed (then only
        one block of ``block_rows`` rows is in memory at a time).
    regions : geopandas.GeoDataFrame, optional
        Polygons with a ``region_field`` name column; a cell belongs to a region when its
        centre is inside the polygon.  Polygons with the same name form one region (a cell
        counts once in it).  Each region is reported on its own: where regions overlap
        (nested units, basins and their sub-basins) a cell counts in every region that
        holds it, so region areas may sum to more than the map (``meta["regions"]``:
        ``overlap_km2``).  A region layer none of whose regions meets the map is refused;
        a region that holds no cell is named in ``meta["regions"]["outside_map"]`` and
        logged as a warning.
    region_field : str
        Name column of ``regions``.
    dem : xarray.DataArray, optional
        Elevation [m] on the PZI grid (e.g. from :func:`permafrost.read_aligned`).
    band_width : float
        Elevation band width [m]; bands are ``[k w, (k + 1) w)``.
    mask_vector : geopandas.GeoDataFrame, optional
        Polygons to exclude (glaciers, lakes); a column ``kind`` is summarised if present.
    mask_raster : xarray.DataArray, optional
        Raster on the PZI grid; non-zero, non-NaN cells are excluded.
    block_rows : int, optional
        Rows per block [-] (default: about :data:`permafrost.defaults.BLOCK_CELLS` cells
        per block, :func:`permafrost.defaults.auto_block_rows`).
    aggregate_m : float or None
        Also classify zones on cells aggregated to about this size [m] (``meta`` →
        ``zones_aggregated``; :func:`aggregation_factors`); None: per pixel only.

    Returns
    -------
    ZoneStatistics
        ``units`` and ``meta`` (``as_dict()``: ``{"units": [...], "meta": {...}}``, the
        ``stats.json``); each unit has ``unit`` (``all``, ``region``, ``elevation_band``),
        ``name``, areas in km² (``footprint_km2``, ``masked_km2``, ``nodata_km2``,
        ``denominator_km2`` = valid unmasked area, ``pzi_ge_0.5_km2``,
        ``fraction_pzi_ge_0.5`` = that / denominator, ``pzi_weighted_km2``,
        ``region_km2``, one ``<zone>_km2`` per zone), ``n_valid_cells``.

    Raises
    ------
    InputError
        An input of the wrong type (e.g. a path where a DataArray is expected).
    DataError
        PZI values outside [0, 1], a missing region field, a DEM on another grid, regions
        none of which meets the map.

    References
    ----------
    Brown et al. (1997); Gruber (2012); Obu et al. (2019); areas: Snyder (1987) eq. 3-12.
    """
    require_xarray(pzi, "pzi")
    require_xarray(dem, "dem", optional=True)
    require_xarray(mask_raster, "mask_raster", optional=True)
    require_geodataframe(regions, "regions")
    require_geodataframe(mask_vector, "mask_vector")
    if pzi.ndim != 2:
        raise DataError(f"the PZI raster must be 2-D, got dims {pzi.dims}",
                        path=pzi.attrs.get("source"), fix="give a single-band raster")
    grid = grid_of(pzi)
    nrows, ncols = grid.shape
    src = pzi.attrs.get("source")
    for other, what in ((dem, "DEM"), (mask_raster, "mask raster")):
        if other is not None and (tuple(other.shape) != (nrows, ncols)):
            raise DataError(f"the {what} is not on the PZI grid (shape {tuple(other.shape)} vs "
                            f"{(nrows, ncols)})", path=other.attrs.get("source"),
                            fix="read it with permafrost.read_aligned(path, like=pzi)")
    if block_rows is None:
        block_rows = auto_block_rows(ncols)
    checked = check_options(block_rows=block_rows, band_width=band_width)
    block_rows, band_width = checked["block_rows"], checked["band_width"]

    meta: dict = {
        "source": src,
        "crs": grid.crs.to_string(),
        "shape": [nrows, ncols],
        "cell_area_method": ("exact ellipsoidal cell area between parallels and meridians "
                             "(Snyder 1987 eq. 3-12)" if grid.crs.is_geographic else
                             "areal scale factor of the projection integrated over each cell "
                             "(2x2 Gauss-Legendre; PROJ get_factors)"),
        "ellipsoid": grid.crs.ellipsoid.name if grid.crs.ellipsoid else None,
        "thresholds": {"headline": "PZI >= 0.5", "region": f"PZI >= {REGION_THRESHOLD:g}",
                       "zones": {n: [lo, hi if hi is not None else 1.0] for n, lo, hi in ZONES},
                       "zone_intervals": "lower bound inclusive, upper bound exclusive "
                                         "(continuous includes 1.0)"},
        "denominator": "valid (not nodata) and unmasked area of each unit",
        "mask": None,
    }

    region_layers: list[Shapes] = []
    if regions is not None:
        cols = [c for c in regions.columns if c != regions.geometry.name]
        if region_field not in regions.columns:
            raise ParameterError(f"no region name column {region_field!r}",
                                 path=regions.attrs.get("source"), param="region_field",
                                 fix=f"name one with {{region_field}} (columns: {cols})")
        reg, n_empty = polygons_in_crs(regions, grid.crs, "regions")
        unnamed = reg[region_field].isna() | (reg[region_field].astype(str).str.strip() == "")
        if unnamed.any():  # would be reported as a region called "nan" (or "")
            rows = [int(i) if isinstance(i, (int, np.integer)) else i
                    for i in reg.index[unnamed.to_numpy()][:5]]
            raise DataError(f"{int(unnamed.sum())} region(s) have no name (rows {rows})",
                            path=regions.attrs.get("source"), field=region_field,
                            fix="fill in their names, or remove those polygons")
        names = [str(v) for v in reg[region_field]]
        uniq = list(dict.fromkeys(names))
        rid = {n: i + 1 for i, n in enumerate(uniq)}
        geoms = reg.geometry.to_numpy()
        ok = ~(reg.geometry.isna() | reg.geometry.is_empty).to_numpy()
        code = np.array([rid[n] for n in names], dtype=np.int64)
        # one geometry per region, to find regions that overlap and regions off the map
        whole = np.full(len(uniq), shapely.Polygon(), dtype=object)
        kept = np.flatnonzero(ok)
        kept = kept[np.argsort(code[kept], kind="stable")]
        for part in np.split(kept, np.flatnonzero(np.diff(code[kept])) + 1):
            if len(part):
                whole[code[part[0]] - 1] = shapely.union_all(geoms[part])
        _check_regions_meet_map(whole, uniq, grid, regions, region_field)
        # regions closer than a pixel (overlapping, touching: a cell centre on a shared edge
        # may be burned for both) go to different layers, each burned on its own, so no two
        # regions of a layer can hold the same cell ("last wins" within a layer only joins
        # polygons of one region); adjacent basins take a few layers
        region_layers = []
        t = grid.transform
        for lay in overlap_layers(whole, distance=float(np.hypot(abs(t.a) + abs(t.b),
                                                                 abs(t.d) + abs(t.e)))):
            inside = ok & np.isin(code, lay + 1)
            region_layers.append(Shapes(geoms[inside], code[inside]))
        meta["regions"] = {"source": regions.attrs.get("source"), "field": region_field,
                           "names": uniq, "empty_geometries_skipped": n_empty,
                           "assignment": "cell centre inside polygon; each region reported on "
                                         "its own: a cell inside overlapping regions counts in "
                                         "each of them (their areas may sum to more than the "
                                         "map; see overlap_km2)"}
    mask_shapes = Shapes([])
    if mask_vector is not None:
        mv, n_empty = polygons_in_crs(mask_vector, grid.crs, "mask")
        mask_shapes = Shapes(mv.geometry.to_numpy())
        kinds = (mv["kind"].astype(str).value_counts().sort_index().to_dict()
                 if "kind" in mv.columns else {})
        meta["mask"] = {"source": mask_vector.attrs.get("source"), "type": "polygons",
                        "features": len(mask_shapes), "kinds": kinds,
                        "empty_geometries_skipped": n_empty,
                        "rule": "cell centre inside a mask polygon"}
    if mask_raster is not None:
        meta["mask"] = {"source": mask_raster.attrs.get("source"), "type": "raster",
                        "rule": "non-zero mask value"}

    acc_all, acc_reg, acc_band = _Accumulator(), _Accumulator(), _Accumulator()
    acc_all.ids_for(["all"])
    agg = _Aggregated(grid, aggregate_m) if aggregate_m else None
    if agg is not None:  # whole aggregated cells per block
        block_rows = max(agg.fy, block_rows // agg.fy * agg.fy)
    if region_layers:
        acc_reg.ids_for(uniq)
    overlap_m2 = outside_m2 = no_dem_m2 = 0.0
    pmin, pmax = np.inf, -np.inf
    for r0, r1 in _row_blocks(nrows, block_rows):
        block = np.asarray(pzi.isel({pzi.dims[0]: slice(r0, r1)}).values, dtype="float64")
        area = cell_areas(grid, slice(r0, r1))
        if np.isinf(block).any():
            raise DataError("the PZI raster holds infinite values", path=src,
                            fix="give a probability raster in [0, 1] (nodata set for no-data "
                                "cells)")
        fin = block[np.isfinite(block)]
        if fin.size:
            pmin, pmax = min(pmin, float(fin.min())), max(pmax, float(fin.max()))
        masked = np.zeros(block.shape, dtype=bool)
        window = (r0, 0, r1 - r0, ncols)
        if len(mask_shapes):
            masked |= burn(mask_shapes, grid.transform, window) > 0
        if mask_raster is not None:
            mv_ = np.asarray(mask_raster.isel({mask_raster.dims[0]: slice(r0, r1)}).values)
            masked |= np.nan_to_num(mv_.astype("float64"), nan=0.0) != 0
        cls = _cell_classes(block, masked)
        areas_full = np.broadcast_to(area, block.shape).ravel()
        wtd = np.where(cls >= 2, areas_full * np.nan_to_num(block.ravel()), 0.0)
        acc_all.add(None, cls, areas_full, wtd)
        if agg is not None:
            agg.add(block, cls.reshape(block.shape) >= 2, np.broadcast_to(area, block.shape))
        if region_layers:
            cover = np.zeros(cls.shape, dtype=np.int32)
            for layer in region_layers:
                rid_b = burn(layer, grid.transform, window).ravel()
                sel = rid_b > 0
                cover += sel
                acc_reg.add(rid_b[sel] - 1, cls[sel], areas_full[sel], wtd[sel])
            overlap_m2 += float(areas_full[cover > 1].sum())
            outside_m2 += float(areas_full[cover == 0].sum())
        if dem is not None:
            d = np.asarray(dem.isel({dem.dims[0]: slice(r0, r1)}).values, dtype="float64").ravel()
            ok = np.isfinite(d)
            no_dem_m2 += float(areas_full[~ok].sum())
            k = np.floor(d[ok] / band_width).astype("int64")
            if k.size:
                uk, inv = np.unique(k, return_inverse=True)
                ids = acc_band.ids_for([int(v) for v in uk])
                if len(acc_band.names) > MAX_ELEVATION_BANDS:  # stats_from_files: up front
                    keys = [k * band_width for k in acc_band.names]
                    check_band_count(min(keys), max(keys), band_width,
                                     path=dem.attrs.get("source"))
                acc_band.add(ids[inv], cls[ok], areas_full[ok], wtd[ok])
    if np.isfinite(pmin) and (pmin < -1e-6 or pmax > 1 + 1e-6):
        raise DataError(f"PZI values must lie in [0, 1], found {pmin:.4g} to {pmax:.4g}",
                        path=src, fix="give a probability raster (nodata set for no-data cells)")

    units = [_unit_row("all", "all", acc_all, 0)]
    if units[0]["footprint_km2"] > 0 and units[0]["nodata_km2"] >= units[0]["footprint_km2"]:
        raise DataError("the PZI raster has no valid cell (every cell is nodata)", path=src,
                        fix="check the prediction and the raster's nodata value")
    for i, n in enumerate(acc_reg.names):
        units.append(_unit_row("region", n, acc_reg, i))
    for k in sorted(acc_band.names):
        i = acc_band.index[k]
        lo, hi = k * band_width, (k + 1) * band_width
        row = _unit_row("elevation_band", f"{lo:g}-{hi:g} m", acc_band, i)
        row["band_min_m"], row["band_max_m"] = float(lo), float(hi)
        units.append(row)
    if region_layers:
        meta["regions"]["overlap_km2"] = overlap_m2 / 1e6
        meta["regions"]["outside_regions_km2"] = outside_m2 / 1e6
        off = [u["name"] for u in units if u["unit"] == "region" and u["footprint_km2"] == 0]
        if len(off) == len(uniq):
            raise DataError(f"none of the {len(uniq)} regions holds a cell centre of the PZI "
                            "map", path=regions.attrs.get("source"), field=region_field,
                            fix="check that the regions cover the map (and their CRS)")
        if off:
            log.warning("%d of %d regions hold no cell of the map (0 km2): %s", len(off),
                        len(uniq), ", ".join(off[:10]) + (" ..." if len(off) > 10 else ""))
        meta["regions"]["outside_map"] = off
    if dem is not None:
        meta["elevation_bands"] = {"source": dem.attrs.get("source"), "band_width_m": band_width,
                                   "no_dem_km2": no_dem_m2 / 1e6,
                                   "rule": "band k holds k*w <= elevation < (k+1)*w"}
    if meta["mask"] is not None:
        meta["mask"]["masked_km2"] = units[0]["masked_km2"]
    if agg is not None:
        meta["zones_aggregated"] = agg.result()
    meta["pzi_range"] = [pmin, pmax] if np.isfinite(pmin) else None
    return ZoneStatistics(units=units, meta=meta)


def _check_regions_meet_map(whole: np.ndarray, names: list, grid: Grid, regions,
                            field: str) -> None:
    """Refuse, before any work, regions none of which meets the map's extent (a wrong CRS
    label, another area): they would give 0 km² everywhere."""
    t = grid.transform
    xs = [t.c, t.c + t.a * grid.width + t.b * grid.height]
    ys = [t.f, t.f + t.d * grid.width + t.e * grid.height]
    extent = shapely.box(min(xs), min(ys), max(xs), max(ys))
    if len(whole) and not shapely.intersects(whole, extent).any():
        rb = shapely.total_bounds(whole)
        raise DataError(
            f"none of the {len(names)} regions meets the PZI map (regions' bounds "
            f"{', '.join(f'{v:.6g}' for v in rb)}; map bounds "
            f"{', '.join(f'{v:.6g}' for v in extent.bounds)}, in {grid.crs.to_string()})",
            path=regions.attrs.get("source"), field=field,
            fix="check the regions' CRS (the file's label must be the CRS its coordinates are "
                "in) and that they cover the map")


class _Aggregated:
    """Zones of cells aggregated to about ``cell_m``: the area-weighted mean PZI of the
    valid, unmasked pixels of each aggregated cell is classified, and the cell's valid
    area counts in that zone (the 1 km semantics of Brown et al. 1997 / Obu et al. 2019:
    a zone is the share of a cell underlain by permafrost)."""

    def __init__(self, grid: Grid, cell_m: float) -> None:
        self.cell_m = float(cell_m)
        self.fy, self.fx = aggregation_factors(grid, cell_m)
        self.zone_area = np.zeros(len(ZONES) + 1)  # none, then ZONES from the bottom
        self.n_cells = 0

    def add(self, pzi: np.ndarray, valid: np.ndarray, area: np.ndarray) -> None:
        ny, nx = pzi.shape
        ry, rx = -(-ny // self.fy), -(-nx // self.fx)
        idx = (np.arange(ny)[:, None] // self.fy) * rx + np.arange(nx)[None, :] // self.fx
        a = np.where(valid, area, 0.0).ravel()
        w = np.bincount(idx.ravel(), weights=a, minlength=ry * rx)
        s = np.bincount(idx.ravel(), weights=a * np.nan_to_num(pzi.ravel()), minlength=ry * rx)
        ok = w > 0
        mean = s[ok] / w[ok]
        code = np.zeros(mean.shape, dtype=int)
        for k, (_, lo, _) in enumerate(reversed(ZONES), start=1):
            code[mean >= lo] = k
        self.zone_area += np.bincount(code, weights=w[ok], minlength=len(ZONES) + 1)
        self.n_cells += int(ok.sum())

    def result(self) -> dict:
        km2 = self.zone_area / 1e6
        zones = {n: float(km2[k]) for k, (n, _, _) in enumerate(reversed(ZONES), start=1)}
        return {"cell_m": self.cell_m, "pixels_per_cell": [self.fy, self.fx],
                "cells": self.n_cells,
                "rule": "zone of the area-weighted mean PZI of the valid, unmasked pixels of "
                        "each aggregated cell; the cell's valid area counts in that zone",
                **{f"{n}_km2": v for n, v in zones.items()},
                "none_km2": float(km2[0]),
                "pzi_ge_0.5_km2": zones["continuous"] + zones["discontinuous"],
                "region_km2": float(sum(zones.values()))}


def _unit_row(unit: str, name, acc: _Accumulator, i: int) -> dict:
    c = dict(zip(CLASSES, (float(v) for v in acc.cls_area[i]), strict=True))
    zones = {z: c[z] for z, _, _ in ZONES}
    valid = c["none"] + sum(zones.values())
    ge05 = zones["discontinuous"] + zones["continuous"]
    row = {
        "unit": unit,
        "name": str(name),
        "footprint_km2": (valid + c["masked"] + c["nodata"]) / 1e6,
        "masked_km2": c["masked"] / 1e6,
        "nodata_km2": c["nodata"] / 1e6,
        "denominator_km2": valid / 1e6,
        "n_valid_cells": int(acc.n_valid[i]),
        "pzi_ge_0.5_km2": ge05 / 1e6,
        "fraction_pzi_ge_0.5": ge05 / valid if valid > 0 else None,
        "pzi_weighted_km2": float(acc.weighted[i]) / 1e6,
        "region_km2": sum(zones.values()) / 1e6,
    }
    for z, _, _ in ZONES:
        row[f"{z}_km2"] = zones[z] / 1e6
    return row


def stats_table_columns() -> list[str]:
    """Column order of the statistics table (CSV and terminal)."""
    return (["unit", "name", "footprint_km2", "masked_km2", "nodata_km2", "denominator_km2",
             "n_valid_cells", "pzi_ge_0.5_km2", "fraction_pzi_ge_0.5", "pzi_weighted_km2",
             "region_km2"] + [f"{z}_km2" for z, _, _ in ZONES])


def stats_rows(stats: ZoneStatistics) -> list[dict]:
    """The units of a statistics result as flat rows with the denominator text (for CSV).

    Parameters
    ----------
    stats : ZoneStatistics
        The result of :func:`zone_statistics`.

    Returns
    -------
    list of dict
        One row per unit, the columns of :func:`stats_table_columns` plus ``denominator``.
    """
    if not isinstance(stats, ZoneStatistics):
        raise InputError(f"expected a ZoneStatistics, got {type(stats).__name__}",
                         field="stats", fix="give the result of zone_statistics (or "
                                            "ZoneStatistics.from_dict(read_json(path)))")
    mask = stats.meta.get("mask")
    note = stats.meta["denominator"] + (
        f"; mask: {mask.get('source')}" if mask else "; no mask")
    cols = stats_table_columns()
    return [{**{c: u.get(c) for c in cols}, "denominator": note} for u in stats.units]
