"""Ellipsoidal cell areas, permafrost zones, and area statistics streamed over large rasters.

Cell areas
    *Geographic grids* (lon/lat): the area of a cell bounded by two parallels and two
    meridians on the ellipsoid is exact and depends on latitude only,
    ``A = a² Δλ (q(φ₂) − q(φ₁)) / 2`` with Snyder's ``q`` (authalic-latitude function,
    Snyder 1987 eq. 3-12; Karney 2013 §6).  Summed over the globe this is ``4π R_q²``.
    *Projected grids*: the area of a cell is the integral of ``1 / s_a`` over the cell,
    where ``s_a`` is the areal scale factor of the projection (PROJ's ``get_factors``, on
    the CRS's ellipsoid).  It is evaluated with a 2 × 2 Gauss–Legendre rule per cell;
    the error is of order ``(h / R)⁴`` for a cell of size ``h`` (below 1e-12 relative for
    cells up to 10 km), i.e. far below the 1e-6 agreement with :class:`pyproj.Geod` polygon
    areas that the tests require.

Zones (Brown et al. 1997 classes as used for PZI maps by Obu et al. 2019)
    continuous PZI ≥ 0.9, discontinuous 0.5 ≤ PZI < 0.9, sporadic 0.1 ≤ PZI < 0.5,
    isolated 0.01 ≤ PZI < 0.1.  The *permafrost region* is the union of the four zones,
    PZI ≥ 0.01 (Gruber 2012 uses "> 0.01"; the difference is only cells exactly at 0.01,
    and this choice keeps region = sum of zones).  The headline is the area with PZI ≥ 0.5;
    the *PZI-weighted area* Σ PZI·A is Gruber's (2012) "permafrost area".

Statistics are accumulated row block by row block, so rasters larger than memory are
processed with memory bounded by one block of each input.  Every output states its
denominator: the valid (not nodata), unmasked area of the unit.

References
----------
Snyder, J. P. (1987). Map Projections — A Working Manual. USGS Professional Paper 1395,
    eqs. 3-11, 3-12 (authalic latitude, q).
Karney, C. F. F. (2013). Algorithms for geodesics. J. Geodesy 87, 43–55, §6 (areas).
Brown, J., Ferrians, O. J., Heginbottom, J. A., Melnikov, E. S. (1997). Circum-Arctic map
    of permafrost and ground-ice conditions. USGS CP-45.
Gruber, S. (2012). Derivation and analysis of a high-resolution estimate of global
    permafrost zonation. The Cryosphere 6, 221–233.
Obu, J. et al. (2019). Northern Hemisphere permafrost map based on TTOP modelling for
    2000–2016 at 1 km² scale. Earth-Science Reviews 193, 299–316.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from permafrost.errors import CRSError, DataError
from permafrost.grid import Grid, grid_of

__all__ = [
    "ZONES",
    "ZONE_NAMES",
    "ZONE_LIMITS",
    "zone_range_text",
    "HEADLINE_THRESHOLD",
    "REGION_THRESHOLD",
    "authalic_q",
    "authalic_radius",
    "ellipsoid_area",
    "geographic_row_areas",
    "cell_areas",
    "classify_zones",
    "zone_statistics",
    "auto_block_rows",
    "stats_from_files",
    "stats_rows",
    "stats_table_columns",
    "compare_scenarios",
    "aggregation_factors",
    "AGGREGATE_M",
]

log = logging.getLogger(__name__)

#: (name, lower bound inclusive, upper bound exclusive or None)
#: Brown et al. 1997 / Obu et al. 2019
ZONES: tuple[tuple[str, float, float | None], ...] = (
    ("continuous", 0.9, None),
    ("discontinuous", 0.5, 0.9),
    ("sporadic", 0.1, 0.5),
    ("isolated", 0.01, 0.1),
)
#: zone names by code, from 0 = ``none`` (below the lowest limit) up (derived from ZONES)
ZONE_NAMES: tuple[str, ...] = ("none", *(name for name, _, _ in reversed(ZONES)))
#: zone codes in :func:`classify_zones` (0 = below 0.01, 255 = nodata)
ZONE_CODES = {name: code for code, name in enumerate(ZONE_NAMES)}
#: lower zone limits [-] from the bottom (isolated .. continuous), inclusive
ZONE_LIMITS: tuple[float, ...] = tuple(lo for _, lo, _ in reversed(ZONES))
HEADLINE_THRESHOLD = 0.5
REGION_THRESHOLD = ZONE_LIMITS[0]


def zone_range_text(name: str) -> str:
    """The PZI range of a zone as text: ``"≥ 0.9"``, ``"0.5–0.9"``..."""
    lo, hi = next((lo, hi) for n, lo, hi in ZONES if n == name)
    return f"≥ {lo:g}" if hi is None else f"{lo:g}–{hi:g}"
#: size [m] of the aggregated cells whose zones are reported beside the per-pixel zones
#: (the 1 km cells of Obu et al. 2019)
AGGREGATE_M = 1000.0


# --------------------------------------------------------------------------- ellipsoid
def _ellipsoid(crs: pyproj.CRS) -> tuple[float, float]:
    ell = crs.ellipsoid
    if ell is None:
        raise CRSError(f"the CRS has no ellipsoid ({crs.name})",
                       fix="use a CRS with a datum, e.g. EPSG:4326")
    a = float(ell.semi_major_metre)
    inv_f = float(ell.inverse_flattening)
    f = 0.0 if inv_f == 0 or not math.isfinite(inv_f) else 1.0 / inv_f
    return a, f


def authalic_q(lat_deg: np.ndarray | float, *, f: float) -> np.ndarray:
    """Snyder's ``q(φ)``, the area function of the authalic latitude.

    Parameters
    ----------
    lat_deg : array_like
        Geodetic latitude [degrees].
    f : float
        Flattening of the ellipsoid [-].

    Returns
    -------
    numpy.ndarray
        ``q`` [-]; the area between the equator and ``φ`` per radian of longitude is
        ``a² q / 2`` [m²] (``a`` semi-major axis [m]).

    References
    ----------
    Snyder (1987), eq. 3-12: ``q = (1 − e²) [sin φ / (1 − e² sin² φ)
    − 1/(2e) ln((1 − e sin φ)/(1 + e sin φ))]``.
    """
    s = np.sin(np.radians(np.clip(np.asarray(lat_deg, dtype="float64"), -90.0, 90.0)))
    e2 = f * (2.0 - f)
    if e2 == 0.0:
        return 2.0 * s
    e = math.sqrt(e2)
    # atanh(e s)/e == -1/(2e) ln((1 - e s)/(1 + e s)); atanh is better conditioned
    return (1.0 - e2) * (s / (1.0 - e2 * s * s) + np.arctanh(e * s) / e)


def authalic_radius(*, a: float, f: float) -> float:
    """Radius [m] of the sphere with the ellipsoid's area, ``R_q = a sqrt(q_p / 2)``.

    Parameters
    ----------
    a : float
        Semi-major axis [m].
    f : float
        Flattening [-].

    References
    ----------
    Snyder (1987), eq. 3-13.
    """
    return a * math.sqrt(float(authalic_q(90.0, f=f)) / 2.0)


def ellipsoid_area(*, a: float, f: float) -> float:
    """Total area [m²] of the ellipsoid, ``4 π R_q²`` (Snyder 1987 eq. 3-13).

    Parameters
    ----------
    a : float
        Semi-major axis [m].
    f : float
        Flattening [-].
    """
    return 4.0 * math.pi * authalic_radius(a=a, f=f) ** 2


def geographic_row_areas(lat_edges_deg: np.ndarray, dlon_deg: float, *, a: float,
                         f: float) -> np.ndarray:
    """Exact ellipsoidal area of one cell in each row of a regular lon/lat grid.

    Parameters
    ----------
    lat_edges_deg : array_like
        Latitudes of the row edges [degrees], ``n + 1`` values for ``n`` rows (any order).
    dlon_deg : float
        Cell width in longitude [degrees].
    a : float
        Semi-major axis [m].
    f : float
        Flattening [-].

    Returns
    -------
    numpy.ndarray
        ``n`` cell areas [m²]: ``a² |Δλ| |q(φ₂) − q(φ₁)| / 2``.

    References
    ----------
    Snyder (1987), eq. 3-12; Karney (2013) §6 (area of a region bounded by parallels and
    meridians).
    """
    q = authalic_q(lat_edges_deg, f=f)
    return 0.5 * a * a * abs(math.radians(dlon_deg)) * np.abs(np.diff(q))


_GL = 0.5 / math.sqrt(3.0)  # 2-point Gauss–Legendre abscissae at 0.5 ± 1/(2√3) of the cell


def cell_areas(grid: Grid, rows: slice | None = None) -> np.ndarray:
    """Ellipsoidal area of the cells in ``rows`` of ``grid``.

    Parameters
    ----------
    grid : Grid
        The raster grid (any CRS with an ellipsoid; no rotation terms).
    rows : slice, optional
        Rows to return (default: all).

    Returns
    -------
    numpy.ndarray
        Areas [m²]: shape ``(n_rows, 1)`` for a geographic grid (broadcasts over columns),
        ``(n_rows, n_cols)`` for a projected grid.

    Notes
    -----
    Geographic: exact (:func:`geographic_row_areas`).  Projected: ``∬ 1/s_a dx dy`` over
    the cell with a 2 × 2 Gauss–Legendre rule, ``s_a`` the areal scale factor from
    :meth:`pyproj.Proj.get_factors` (evaluated on the CRS's ellipsoid).

    References
    ----------
    Snyder (1987) eq. 3-12 and ch. 4 (scale factors); Karney (2013) §6.
    """
    t = grid.transform
    if t.b != 0 or t.d != 0:
        raise CRSError("rotated or sheared grids are not supported for area statistics",
                       fix="warp the raster to a north-up grid first (gdalwarp)")
    nrows, ncols = grid.shape
    r0, r1, _ = (rows or slice(0, nrows)).indices(nrows)
    crs = grid.crs
    if crs.is_geographic:
        a, f = _ellipsoid(crs)
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else math.radians(1)
        deg = math.degrees(unit)  # axis unit in degrees (1 for degrees)
        edges = (t.f + t.e * np.arange(r0, r1 + 1, dtype="float64")) * deg
        return geographic_row_areas(edges, t.a * deg, a=a, f=f)[:, None]
    if not crs.is_projected:
        raise CRSError(f"cannot compute areas in a {crs.type_name} CRS ({crs.name})",
                       fix="use a geographic or projected CRS")
    unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
    proj = pyproj.Proj(crs)
    to_geo = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    cols = np.arange(ncols, dtype="float64")
    rr = np.arange(r0, r1, dtype="float64")
    inv = np.zeros((r1 - r0, ncols))
    for du in (0.5 - _GL, 0.5 + _GL):
        for dv in (0.5 - _GL, 0.5 + _GL):
            x = t.c + t.a * (cols[None, :] + du)
            y = t.f + t.e * (rr[:, None] + dv)
            xx, yy = np.broadcast_arrays(x, y)
            lon, lat = to_geo.transform(xx.ravel(), yy.ravel())
            fac = proj.get_factors(lon, lat, errcheck=False)
            inv += 0.25 / np.asarray(fac.areal_scale).reshape(xx.shape)
    return abs(t.a * t.e) * unit * unit * inv


# --------------------------------------------------------------------------- zones
def classify_zones(pzi: np.ndarray) -> np.ndarray:
    """Zone code of each PZI value (:data:`ZONE_CODES`; 0 below 0.01, 255 NaN).

    Parameters
    ----------
    pzi : array_like
        Permafrost zonation index [-], in [0, 1], NaN for nodata.

    References
    ----------
    Brown et al. (1997); Obu et al. (2019), zone limits 0.9 / 0.5 / 0.1 / 0.01.
    """
    p = np.asarray(pzi, dtype="float64")
    out = np.zeros(p.shape, dtype="uint8")
    for code, lo in enumerate(ZONE_LIMITS, start=1):
        out[p >= lo] = code
    out[np.isnan(p)] = 255
    return out


# --------------------------------------------------------------------------- statistics
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


#: cells per block by default: ~50 MB of float64/int64 temporaries per block
BLOCK_CELLS = 1 << 20


def auto_block_rows(ncols: int, *, cells: int = BLOCK_CELLS) -> int:
    """Rows per block so that a block holds about ``cells`` cells (at least one row)."""
    return max(1, int(cells) // max(1, int(ncols)))


def _row_blocks(nrows: int, block_rows: int) -> Iterator[tuple[int, int]]:
    for r0 in range(0, nrows, block_rows):
        yield r0, min(nrows, r0 + block_rows)


def _rasterize_block(shapes: list, grid: Grid, r0: int, r1: int, *, merge_add: bool = False):
    from rasterio.features import MergeAlg, rasterize

    out_shape = (r1 - r0, grid.shape[1])
    if not shapes:
        return np.zeros(out_shape, dtype="int32")
    return rasterize(shapes, out_shape=out_shape, transform=grid.block_transform(r0), fill=0,
                     dtype="int32", merge_alg=MergeAlg.add if merge_add else MergeAlg.replace)


def _shapes_in_crs(gdf, crs: pyproj.CRS, what: str):
    if gdf.crs is None:
        raise CRSError(f"the {what} file has no CRS", path=gdf.attrs.get("source"),
                       fix="assign one (save it again with a CRS)")
    out = gdf.to_crs(crs) if pyproj.CRS(gdf.crs) != crs else gdf
    bad = out.geometry.isna() | out.geometry.is_empty
    import shapely  # noqa: PLC0415

    flat = ~bad & ~(shapely.area(out.geometry.to_numpy()) > 0)  # points, lines: no area
    if flat.any():
        kinds = sorted(set(out.geometry[flat].geom_type))
        raise DataError(f"{int(flat.sum())} {what} feature(s) without area ({', '.join(kinds)}) "
                        f"in rows {list(np.flatnonzero(flat.to_numpy())[:10])}",
                        path=gdf.attrs.get("source"), field="geometry",
                        fix="keep only polygons (buffer points or lines first if meant)")
    return out, int(bad.sum())


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
) -> dict:
    """Permafrost area statistics of a PZI raster: whole map, per region, per elevation band.

    Parameters
    ----------
    pzi : xarray.DataArray
        PZI [-] in [0, 1], NaN for nodata, 2-D with a CRS; may be Dask-backed (then only
        one block of ``block_rows`` rows is in memory at a time).
    regions : geopandas.GeoDataFrame, optional
        Polygons with a ``region_field`` name column; a cell belongs to a region when its
        centre is inside the polygon.  Polygons with the same name form one region;
        where polygons overlap the last one wins (the overlap area is reported).
    region_field : str
        Name column of ``regions``.
    dem : xarray.DataArray, optional
        Elevation [m] on the PZI grid (e.g. from :func:`permafrost.io.maps.read_aligned`).
    band_width : float
        Elevation band width [m]; bands are ``[k w, (k + 1) w)``.
    mask_vector : geopandas.GeoDataFrame, optional
        Polygons to exclude (glaciers, lakes); a column ``kind`` is summarised if present.
    mask_raster : xarray.DataArray, optional
        Raster on the PZI grid; non-zero, non-NaN cells are excluded.
    block_rows : int, optional
        Rows per block [-] (default: about 2**20 cells per block, see
        :func:`auto_block_rows`).
    aggregate_m : float or None
        Also classify zones on cells aggregated to about this size [m] (``meta`` →
        ``zones_aggregated``; :func:`aggregation_factors`); None: per pixel only.

    Returns
    -------
    dict
        ``{"units": [...], "meta": {...}}``; each unit has ``unit`` (``all``, ``region``,
        ``elevation_band``), ``name``, areas in km² (``footprint_km2``, ``masked_km2``,
        ``nodata_km2``, ``denominator_km2`` = valid unmasked area, ``pzi_ge_0.5_km2``,
        ``fraction_pzi_ge_0.5`` = that / denominator, ``pzi_weighted_km2``,
        ``region_km2``, one ``<zone>_km2`` per zone), ``n_valid_cells``.

    Raises
    ------
    DataError
        PZI values outside [0, 1], a missing region field, a DEM on another grid.

    References
    ----------
    Brown et al. (1997); Gruber (2012); Obu et al. (2019); areas: Snyder (1987) eq. 3-12.
    """
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
                            fix="read it with permafrost.io.maps.read_aligned(path, like=pzi)")
    if block_rows is None:
        block_rows = auto_block_rows(ncols)
    if block_rows < 1:
        raise DataError("block_rows must be >= 1", field="block_rows")
    if not band_width > 0:
        raise DataError(f"band width must be > 0 m, got {band_width}", field="band_width",
                        fix="give e.g. --band-width 200")

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

    region_shapes: list = []
    if regions is not None:
        cols = [c for c in regions.columns if c != regions.geometry.name]
        if region_field not in regions.columns:
            raise DataError("region name column missing", path=regions.attrs.get("source"),
                            field=region_field,
                            fix=f"pass --region-field (columns: {cols})")
        reg, n_empty = _shapes_in_crs(regions, grid.crs, "regions")
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
        region_shapes = [(g, rid[n]) for g, n in zip(reg.geometry, names, strict=True)
                         if g is not None and not g.is_empty]
        meta["regions"] = {"source": regions.attrs.get("source"), "field": region_field,
                           "names": uniq, "empty_geometries_skipped": n_empty,
                           "assignment": "cell centre inside polygon; overlaps: last polygon wins"}
    mask_shapes: list = []
    if mask_vector is not None:
        mv, n_empty = _shapes_in_crs(mask_vector, grid.crs, "mask")
        mask_shapes = [(g, 1) for g in mv.geometry if g is not None and not g.is_empty]
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
    if region_shapes:
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
        if mask_shapes:
            masked |= _rasterize_block(mask_shapes, grid, r0, r1) > 0
        if mask_raster is not None:
            mv_ = np.asarray(mask_raster.isel({mask_raster.dims[0]: slice(r0, r1)}).values)
            masked |= np.nan_to_num(mv_.astype("float64"), nan=0.0) != 0
        cls = _cell_classes(block, masked)
        areas_full = np.broadcast_to(area, block.shape).ravel()
        wtd = np.where(cls >= 2, areas_full * np.nan_to_num(block.ravel()), 0.0)
        acc_all.add(None, cls, areas_full, wtd)
        if agg is not None:
            agg.add(block, cls.reshape(block.shape) >= 2, np.broadcast_to(area, block.shape))
        if region_shapes:
            rid_b = _rasterize_block(region_shapes, grid, r0, r1).ravel()
            cover = _rasterize_block([(g, 1) for g, _ in region_shapes], grid, r0, r1,
                                     merge_add=True).ravel()
            overlap_m2 += float(areas_full[cover > 1].sum())
            outside_m2 += float(areas_full[rid_b == 0].sum())
            sel = rid_b > 0
            acc_reg.add(rid_b[sel] - 1, cls[sel], areas_full[sel], wtd[sel])
        if dem is not None:
            d = np.asarray(dem.isel({dem.dims[0]: slice(r0, r1)}).values, dtype="float64").ravel()
            ok = np.isfinite(d)
            no_dem_m2 += float(areas_full[~ok].sum())
            k = np.floor(d[ok] / band_width).astype("int64")
            if k.size:
                uk, inv = np.unique(k, return_inverse=True)
                ids = acc_band.ids_for([int(v) for v in uk])
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
    if region_shapes:
        meta["regions"]["overlap_km2"] = overlap_m2 / 1e6
        meta["regions"]["outside_regions_km2"] = outside_m2 / 1e6
    if dem is not None:
        meta["elevation_bands"] = {"source": dem.attrs.get("source"), "band_width_m": band_width,
                                   "no_dem_km2": no_dem_m2 / 1e6,
                                   "rule": "band k holds k*w <= elevation < (k+1)*w"}
    if meta["mask"] is not None:
        meta["mask"]["masked_km2"] = units[0]["masked_km2"]
    if agg is not None:
        meta["zones_aggregated"] = agg.result()
    meta["pzi_range"] = [pmin, pmax] if np.isfinite(pmin) else None
    return {"units": units, "meta": meta}


def aggregation_factors(grid: Grid, cell_m: float) -> tuple[int, int]:
    """Rows and columns of ``grid`` per aggregated cell of about ``cell_m`` [m] a side.

    The pixel size in metres is taken at the grid's centre (geographic grids: on the
    ellipsoid, :func:`permafrost.terrain.geographic_cell_size`); at least one pixel.
    """
    t = grid.transform
    if grid.crs.is_geographic:
        from permafrost.terrain import geographic_cell_size  # noqa: PLC0415

        lat = t.f + t.e * grid.shape[0] / 2
        dx, dy = (float(np.asarray(v).ravel()[0])
                  for v in geographic_cell_size(lat, abs(t.a), abs(t.e)))
    else:
        unit = grid.crs.axis_info[0].unit_conversion_factor if grid.crs.axis_info else 1.0
        dx, dy = abs(t.a) * unit, abs(t.e) * unit
    return max(1, round(cell_m / dy)), max(1, round(cell_m / dx))


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


def stats_from_files(
    pzi_path,
    *,
    regions_path=None,
    region_field: str = "name",
    dem_path=None,
    band_width: float = 200.0,
    mask_path=None,
    block_rows: int | None = None,
) -> dict:
    """Read the inputs (lazily, in blocks) and run :func:`zone_statistics`.

    The DEM and a raster mask may be on any grid: they are put on the PZI grid by GDAL's
    warper (bilinear for the DEM, nearest for the mask).  A mask is a raster (non-zero =
    masked) or a vector file of polygons, told apart by the file suffix.

    Parameters
    ----------
    pzi_path, regions_path, dem_path, mask_path : path-like
        Input files (see :func:`zone_statistics` for their meaning).
    region_field : str
        Region name column.
    band_width : float
        Elevation band width [m].
    block_rows : int, optional
        Rows per block [-] (default: :func:`auto_block_rows`).
    """
    from pathlib import Path

    from permafrost.io.maps import read_aligned
    from permafrost.io.rasters import RASTER_SUFFIXES, read_raster
    from permafrost.io.vectors import read_vector

    if block_rows is None:  # a lazy open to learn the width, then chunks of whole block rows
        block_rows = auto_block_rows(read_raster(pzi_path, chunks={"y": 1, "x": -1}).shape[1])
    chunks = {"y": block_rows, "x": -1}
    pzi = read_raster(pzi_path, chunks=chunks, name="pzi")
    log.info("stats: %s, %d x %d cells in blocks of %d rows, %s", pzi_path, pzi.shape[0],
             pzi.shape[1], block_rows, pzi.rio.crs)
    regions = read_vector(regions_path) if regions_path is not None else None
    dem = (read_aligned(dem_path, pzi, resampling="bilinear", chunks=chunks, name="dem")
           if dem_path is not None else None)
    if dem is not None and not bool(np.isfinite(dem.data).any()):
        raise DataError("the DEM has no valid elevation on the PZI's grid (all nodata, or "
                        "no overlap), so no elevation band can be made", path=dem_path,
                        field="--dem", fix="give a DEM with elevations that covers the map")
    mask_vector = mask_raster = None
    if mask_path is not None:
        if Path(mask_path).suffix.lower() in RASTER_SUFFIXES:
            mask_raster = read_aligned(mask_path, pzi, resampling="nearest", chunks=chunks,
                                       name="mask")
        else:
            mask_vector = read_vector(mask_path, allow_empty=True)
    log.info("stats: regions %s, elevation bands %s, mask %s",
             f"{len(regions)} from {regions_path}" if regions is not None else "none",
             f"of {band_width:g} m from {dem_path}" if dem is not None else "none",
             mask_path or "none")
    out = zone_statistics(pzi, regions=regions, region_field=region_field, dem=dem,
                          band_width=band_width, mask_vector=mask_vector,
                          mask_raster=mask_raster, block_rows=block_rows)
    log.debug("stats: cell areas by %s", out["meta"].get("cell_area_method"))
    if dem is not None:
        out["meta"]["elevation_bands"]["resampling"] = "bilinear onto the PZI grid"
    return out


def stats_rows(stats: Mapping) -> list[dict]:
    """The units of a statistics result as flat rows with the denominator text (for CSV)."""
    mask = stats["meta"].get("mask")
    note = stats["meta"]["denominator"] + (
        f"; mask: {mask.get('source')}" if mask else "; no mask")
    cols = stats_table_columns()
    return [{**{c: u.get(c) for c in cols}, "denominator": note} for u in stats["units"]]


#: the area figures compared between scenarios [km2]
COMPARED = ("pzi_ge_0.5_km2", "pzi_weighted_km2", "region_km2", "continuous_km2",
            "discontinuous_km2", "sporadic_km2", "isolated_km2")


def compare_scenarios(stats: Mapping[str, Mapping], *, baseline: str = "baseline",
                      units: tuple[str, ...] = ("all", "region")) -> dict:
    """Area change of each scenario against the baseline, per zone and per region.

    Parameters
    ----------
    stats : mapping
        ``{scenario: zone_statistics result}`` (the ``stats.json`` of each scenario), all
        computed over the same grid, mask and regions.
    baseline : str
        The scenario the others are compared with.
    units : tuple of str
        Which units to compare (``all``, ``region``, ``elevation_band``).

    Returns
    -------
    dict
        ``{"baseline": name, "figures": [...], "scenarios": {name: [row, ...]}}``; each row
        has ``unit``, ``name`` and for each figure ``<figure>`` (scenario value [km2]),
        ``<figure>_change`` (scenario - baseline [km2]) and ``<figure>_change_pct``
        (relative to the baseline [%], None when the baseline is 0).

    Raises
    ------
    DataError
        No baseline, or a scenario whose denominators differ from the baseline's (then
        the areas are not comparable: different grids, masks or regions).
    """
    if baseline not in stats:
        raise DataError(f"no {baseline!r} statistics to compare with", field="scenarios",
                        fix="run the baseline too")
    def keyed(result):
        return {(u["unit"], u["name"]): u for u in result["units"] if u["unit"] in units}

    base = keyed(stats[baseline])
    out = {"baseline": baseline, "figures": list(COMPARED), "scenarios": {}}
    for name, result in stats.items():
        if name == baseline:
            continue
        rows = []
        for key, u in keyed(result).items():
            b = base.get(key)
            if b is None:
                raise DataError(f"scenario {name!r} has a unit {key} the baseline lacks",
                                field="scenarios", fix="use the same regions and bands")
            if not math.isclose(u["denominator_km2"], b["denominator_km2"], rel_tol=1e-9,
                                abs_tol=1e-9):
                raise DataError(f"scenario {name!r} has another denominator for {key} "
                                f"({u['denominator_km2']} vs {b['denominator_km2']} km2)",
                                field="scenarios", fix="use the same grid and mask")
            row = {"unit": u["unit"], "name": u["name"]}
            for f in COMPARED:
                v, v0 = u.get(f), b.get(f)
                row[f] = v
                row[f + "_change"] = None if v is None or v0 is None else v - v0
                row[f + "_change_pct"] = (None if v is None or not v0 else 100.0 * (v - v0) / v0)
            rows.append(row)
        out["scenarios"][name] = rows
    return out
