"""Fast per-outline (zonal) statistics over large rasters, with bounded memory.

The engine streams the rasters by bands of rows.  For each band it finds the pixels of
every outline -- polygons by a vectorised numpy scanline fill of their edges
(:func:`permafrost.rasterize.scanline_pixels`: pixel centre inside, with GDAL's tie rules;
no Python loop over outlines), points, lines and ``all_touched`` by GDAL into a label
raster (:func:`permafrost.rasterize.burn`) -- keeps only
those ``(label, value)`` pairs, and computes grouped statistics with numpy: counts,
sums and means with :func:`numpy.bincount`, medians and percentiles by one sort of
``(label, value)`` keys.  An outline is finished -- its statistics computed and its
pixels freed -- as soon as the band holding its last row has been read, so memory is
bounded by one band of every raster plus the pixels of the outlines that straddle the
current band.

Overlapping outlines keep all their pixels: the scanline fill never shares a label
raster, and outlines that go through GDAL are split into layers of mutually disjoint
outlines (greedy colouring of the overlap graph), each rasterised on its own.

Percentiles use numpy's default (linear interpolation between order statistics,
``numpy.percentile(..., method="linear")``), so results equal per-outline
``numpy.percentile`` on the pixels whose centre lies inside the outline -- the
definition ``rasterstats`` uses with ``all_touched=False``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import shapely
from affine import Affine

from permafrost.defaults import auto_block_rows
from permafrost.rasterize import Shapes, burn, points_in_polygons, scanline_pixels

__all__ = [
    "ZonalSpec",
    "overlap_layers",
    "grouped_statistics",
    "zonal_statistics",
    "zonal_statistics_points",
    "parse_op",
]

log = logging.getLogger(__name__)

#: statistics understood: count (finite values), sum, mean, min, max, median, pNN
_SIMPLE = ("count", "sum", "mean", "min", "max")


def parse_op(op: str) -> float | None:
    """Quantile in [0, 1] of a ``median``/``pNN`` statistic name, else ``None``."""
    if op == "median":
        return 0.5
    if op.startswith("p"):
        try:
            q = float(op[1:]) / 100.0
        except ValueError:
            raise ValueError(f"unknown statistic {op!r}") from None
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"percentile out of range in {op!r}")
        return q
    if op in _SIMPLE:
        return None
    raise ValueError(f"unknown statistic {op!r} (use {_SIMPLE}, median or pNN)")


@dataclass(frozen=True)
class ZonalSpec:
    """Which statistics to compute for which raster.

    Attributes
    ----------
    stats : mapping of str to sequence of str
        Raster name -> statistic names (``count``, ``sum``, ``mean``, ``min``,
        ``max``, ``median``, ``pNN``).  NaN pixels are ignored; ``count`` counts the
        finite ones.  The pixel count of each outline (finite or not) is always
        returned as ``n_pixels``.
    """

    stats: Mapping[str, Sequence[str]]

    def __post_init__(self) -> None:
        for ops in self.stats.values():
            for op in ops:
                parse_op(op)


def overlap_layers(geoms: Sequence | np.ndarray, *, distance: float = 0.0) -> list[np.ndarray]:
    """Split geometries into layers of mutually non-conflicting ones (greedy colouring).

    With ``distance == 0`` two outlines conflict when they overlap in area (outlines
    that only touch do not: no pixel centre can lie in both).  With ``distance > 0``
    (``all_touched`` rasterisation, distance = a pixel diagonal) outlines closer than
    ``distance`` conflict, since they may touch the same pixel.  Returns index arrays,
    one per layer; a typical inventory gives one layer.
    """
    geoms = np.asarray(geoms, dtype=object)
    n = len(geoms)
    if n == 0:
        return []
    tree = shapely.STRtree(geoms)
    if distance > 0:
        a, b = tree.query(geoms, predicate="dwithin", distance=distance)
    else:
        a, b = tree.query(geoms, predicate="intersects")
    keep = a < b
    a, b = a[keep], b[keep]
    if len(a) and distance <= 0:
        inter = shapely.intersection(geoms[a], geoms[b])
        area_ok = shapely.area(inter) > 0
        pt = (shapely.get_type_id(geoms[a]) == 0) | (shapely.get_type_id(geoms[b]) == 0)
        real = area_ok | (pt & ~shapely.is_empty(inter))
        a, b = a[real], b[real]
    if len(a) == 0:
        return [np.arange(n)]
    neigh: dict[int, list[int]] = {}
    for i, j in zip(a.tolist(), b.tolist()):
        neigh.setdefault(i, []).append(j)
        neigh.setdefault(j, []).append(i)
    color = np.zeros(n, dtype=np.int64)
    for i in sorted(neigh):
        used = {color[j] for j in neigh[i] if j < i}
        c = 0
        while c in used:
            c += 1
        color[i] = c
    return [np.flatnonzero(color == c) for c in range(int(color.max()) + 1)]


def _sorted_by_group(lab: np.ndarray, val: np.ndarray, float32: bool) -> np.ndarray:
    """Values sorted by (label, value)."""
    if float32 and len(lab) and lab.max() < 2**31:
        # one sort of 64-bit keys: label in the high word, order-preserving float32 bits
        bits = val.astype(np.float32).view(np.uint32)
        neg = (bits & np.uint32(0x80000000)) != 0
        key32 = np.where(neg, ~bits, bits | np.uint32(0x80000000))
        key = (lab.astype(np.uint64) << np.uint64(32)) | key32.astype(np.uint64)
        key.sort()
        k = (key & np.uint64(0xFFFFFFFF)).astype(np.uint32)
        top = (k & np.uint32(0x80000000)) != 0
        return np.where(top, k & np.uint32(0x7FFFFFFF), ~k).view(np.float32).astype(np.float64)
    return val[np.lexsort((val, lab))]


def grouped_statistics(
    labels: np.ndarray,
    values: np.ndarray,
    n_groups: int,
    ops: Sequence[str],
) -> dict[str, np.ndarray]:
    """Statistics of ``values`` grouped by integer ``labels`` in ``[0, n_groups)``.

    NaN values are ignored.  Groups without a finite value get NaN (``count``: 0,
    ``sum``: 0).  Quantiles interpolate linearly between order statistics like
    :func:`numpy.percentile`.

    Parameters
    ----------
    labels : ndarray of int
        Group of each value [-].
    values : ndarray of float
        The values [any unit].
    n_groups : int
        Number of groups [-].
    ops : sequence of str
        Statistic names (see :class:`ZonalSpec`).

    Notes
    -----
    float32 values are ordered with one sort of 64-bit (label, value) keys; other
    values with :func:`numpy.lexsort`.  Sums and means are accumulated in float64.
    """
    float32 = np.asarray(values).dtype == np.float32
    labels = np.asarray(labels, dtype=np.int64).ravel()
    values = np.asarray(values, dtype=np.float64).ravel()
    fin = np.isfinite(values)
    lab, val = labels[fin], values[fin]
    count = np.bincount(lab, minlength=n_groups).astype(np.int64)
    out: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        for op in ops:
            if op == "count":
                out[op] = count
            elif op == "sum":
                out[op] = np.bincount(lab, weights=val, minlength=n_groups)
            elif op == "mean":
                out[op] = np.bincount(lab, weights=val, minlength=n_groups) / count
    need_sort = [op for op in ops if op not in ("count", "sum", "mean")]
    if need_sort:
        s = _sorted_by_group(lab, val, float32)
        start = np.concatenate(([0], np.cumsum(count)[:-1]))
        has = count > 0
        for op in need_sort:
            res = np.full(n_groups, np.nan)
            if op == "min":
                res[has] = s[start[has]]
            elif op == "max":
                res[has] = s[start[has] + count[has] - 1]
            else:
                q = parse_op(op)
                assert q is not None  # need_sort holds min, max and the quantiles
                pos = (count[has] - 1) * q
                lo = np.floor(pos).astype(np.int64)
                hi = np.minimum(lo + 1, count[has] - 1)
                frac = pos - lo
                vlo = s[start[has] + lo]
                vhi = s[start[has] + hi]
                res[has] = vlo + (vhi - vlo) * frac
            out[op] = res
    return out


class _Accumulator:
    """Streams (label, value) pairs; finishes outlines when their last row is read."""

    def __init__(self, spec: ZonalSpec, n: int) -> None:
        self.spec = spec
        self.n = n
        self.n_pixels = np.zeros(n, dtype=np.int64)
        self.res = {name: {op: (np.zeros(n, np.int64) if op == "count" else
                                np.zeros(n) if op == "sum" else np.full(n, np.nan))
                           for op in ops} for name, ops in spec.stats.items()}
        self.pend_lab: list[np.ndarray] = []
        self.pend_val: dict[str, list[np.ndarray]] = {k: [] for k in spec.stats}

    def add(self, lab: np.ndarray, vals: Mapping[str, np.ndarray]) -> None:
        self.n_pixels += np.bincount(lab, minlength=self.n)
        self.pend_lab.append(lab)
        for k in self.spec.stats:
            self.pend_val[k].append(np.asarray(vals[k], dtype=np.float32))

    def finish(self, done: np.ndarray | None) -> None:
        """Compute statistics of outlines flagged in ``done`` (all when None)."""
        if not self.pend_lab:
            return
        lab = np.concatenate(self.pend_lab)
        vals = {k: np.concatenate(v) for k, v in self.pend_val.items()}
        if done is None:
            sel = np.ones(len(lab), bool)
        else:
            sel = done[lab]
        if sel.any():
            ls = lab[sel]
            present = np.bincount(ls, minlength=self.n) > 0
            for name, ops in self.spec.stats.items():
                st = grouped_statistics(ls, vals[name][sel], self.n, ops)
                for op, arr in st.items():
                    self.res[name][op][present] = arr[present]
        rest = ~sel
        self.pend_lab = [lab[rest]] if rest.any() else []
        self.pend_val = {k: ([v[rest]] if rest.any() else []) for k, v in vals.items()}

    def result(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {"n_pixels": self.n_pixels}
        for name, d in self.res.items():
            for op, arr in d.items():
                out[f"{name}_{op}"] = arr
        return out


def _read_rows(src, r0: int, r1: int) -> np.ndarray:
    if callable(src):
        return np.asarray(src(r0, r1))
    if hasattr(src, "isel"):
        return np.asarray(src.isel({src.dims[0]: slice(r0, r1)}).values)
    chunk = src[r0:r1]
    if hasattr(chunk, "compute"):
        chunk = chunk.compute()
    return np.asarray(chunk)


def zonal_statistics(
    geoms: Sequence | np.ndarray,
    rasters: Mapping[str, object],
    *,
    transform: Affine,
    shape: tuple[int, int],
    spec: ZonalSpec,
    all_touched: bool = False,
    block_rows: int | None = None,
) -> dict[str, np.ndarray]:
    """Per-outline statistics of rasters that share one grid, streamed by bands of rows.

    Parameters
    ----------
    geoms : sequence of shapely geometries
        Outlines in the rasters' CRS (points burn the pixel that holds them).
        ``None``/empty geometries get zero pixels.
    rasters : mapping of str to array-like
        2-D arrays (numpy, h5py, dask, xarray) or callables ``f(row0, row1) -> ndarray``
        returning rows ``row0:row1`` [any unit, NaN = no data].
    transform : Affine
        Affine transform of the grid (north-up).
    shape : (int, int)
        Grid shape (rows, columns) [pixels].
    spec : ZonalSpec
        The statistics per raster.
    all_touched : bool
        Burn every pixel an outline touches (default: pixels whose centre is inside).
    block_rows : int, optional
        Rows per band [pixels]; memory grows with ``block_rows * columns`` (default:
        about :data:`permafrost.defaults.BLOCK_CELLS` cells,
        :func:`permafrost.defaults.auto_block_rows`).

    Returns
    -------
    dict of str to ndarray
        ``n_pixels`` and ``<raster>_<stat>`` arrays, one value per outline.
    """
    n = len(geoms)
    height, width = shape
    if block_rows is None:
        block_rows = auto_block_rows(width)
    acc = _Accumulator(spec, n)
    geoms = np.asarray(list(geoms), dtype=object)
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms)
    idx_ok = np.flatnonzero(ok)
    if len(idx_ok) == 0:
        acc.finish(None)
        return acc.result()
    bounds = shapely.bounds(geoms[idx_ok])
    inv = ~transform
    # rows spanned by each outline (north-up grid: y decreases with row)
    _, r_top = inv @ (bounds[:, 0], bounds[:, 3])
    _, r_bot = inv @ (bounds[:, 0], bounds[:, 1])
    rmin = np.floor(np.minimum(r_top, r_bot)).astype(np.int64) - 1
    rmax = np.ceil(np.maximum(r_top, r_bot)).astype(np.int64) + 1
    last_row = np.full(n, -1, np.int64)
    last_row[idx_ok] = rmax
    # polygons: numpy scanline (pixel-centre rule); points, lines and all_touched: GDAL
    polygonal = np.isin(shapely.get_type_id(geoms[idx_ok]), (3, 6))
    if all_touched:
        polygonal[:] = False
    gdal_idx = np.flatnonzero(~polygonal)
    layers = [gdal_idx[lay] for lay in overlap_layers(
        geoms[idx_ok][gdal_idx],
        distance=float(np.hypot(transform.a, transform.e)) if all_touched else 0.0)]
    layer_shapes = [Shapes(geoms[idx_ok[lay]], idx_ok[lay] + 1) for lay in layers]
    log.debug("zonal: %d outlines in %d layer(s), %d bands", n, len(layers),
              -(-height // block_rows))
    for r0 in range(0, height, block_rows):
        r1 = min(height, r0 + block_rows)
        inband = np.flatnonzero((rmax >= r0) & (rmin < r1))
        if len(inband):
            data = None
            poly_in = inband[polygonal[inband]]
            if len(poly_in):
                lab_s, flat_s = scanline_pixels(geoms[idx_ok[poly_in]], idx_ok[poly_in],
                                                transform, r0, r1, width)
                if len(flat_s):
                    data = {k: _read_rows(rasters[k], r0, r1) for k in spec.stats}
                    acc.add(lab_s, {k: data[k].ravel()[flat_s] for k in spec.stats})
            for layer, shapes in zip(layers, layer_shapes, strict=True):
                if len(np.intersect1d(inband, layer, assume_unique=True)) == 0:
                    continue
                lab = burn(shapes, transform, (r0, 0, r1 - r0, width), all_touched=all_touched)
                flat = np.flatnonzero(lab)
                if len(flat) == 0:
                    continue
                if data is None:
                    data = {k: _read_rows(rasters[k], r0, r1) for k in spec.stats}
                acc.add(lab.ravel()[flat] - 1,
                        {k: data[k].ravel()[flat] for k in spec.stats})
        done = last_row < r1
        acc.finish(done)
    acc.finish(None)
    return acc.result()


def zonal_statistics_points(
    geoms: Sequence | np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    spec: ZonalSpec,
) -> dict[str, np.ndarray]:
    """Per-outline statistics of scattered pixels (e.g. radar-coordinate grids).

    A pixel belongs to every outline that contains its centre ``(x, y)`` (same CRS as
    the outlines), so overlapping outlines share pixels.  Point outlines contain no
    pixel centre and get no pixels here (give polygons for radar-coordinate tracks).

    Parameters
    ----------
    geoms : sequence of shapely geometries
        Outlines.
    x, y : ndarray
        Pixel-centre coordinates [CRS units].
    values : mapping of str to ndarray
        Arrays of the same shape as ``x`` [any unit, NaN = no data].
    spec : ZonalSpec
        The statistics per array.
    """
    n = len(geoms)
    acc = _Accumulator(spec, n)
    lab, pix = points_in_polygons(geoms, x, y)
    if len(lab):
        acc.add(lab, {k: np.asarray(values[k]).ravel()[pix] for k in spec.stats})
    acc.finish(None)
    return acc.result()
