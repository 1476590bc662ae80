"""Burning polygons into a grid: the one home of the pixel-centre rule.

A pixel belongs to a polygon when its centre lies inside it (GDAL's rule for
``all_touched=False``, the definition ``rasterstats`` uses), everywhere in the package:
masks of glaciers and lakes (prediction, area statistics, validation), regions (area
statistics), outlines (kinematics, zonal statistics).  Three forms of one rule:

* :func:`burn`: GDAL's rasteriser (:func:`rasterio.features.rasterize`) over a window of a
  grid (a block, a stripe of rows or the whole grid), after a prefilter by bounds so that a
  block only sees the shapes near it; a value per shape, "last shape wins" or "add".
* :func:`scanline_pixels`: the same pixels enumerated in numpy as ``(label, pixel)`` pairs,
  so that overlapping polygons each keep all their pixels (no shared label raster).
* :func:`points_in_polygons`: pixels given by their centres' coordinates (radar geometry,
  no affine grid): the polygons that contain each centre.

:func:`polygons_in_crs` puts a GeoDataFrame of polygons in a grid's CRS and refuses
features without area (a point or a line would burn nothing by the pixel-centre rule).
:func:`raster_mask_excluded` is the other half of the mask rule: the cells a raster mask on
the grid excludes.

References
----------
GDAL, ``gdal_rasterize`` and ``GDALdllImageFilledPolygon`` (alg/llrasterize.cpp): scan
line at the row's centre, half-open crossing intervals (https://gdal.org/programs/
gdal_rasterize.html).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyproj
import shapely
from affine import Affine
from rasterio.features import MergeAlg, rasterize

from permafrost.errors import CRSError, DataError

__all__ = ["Shapes", "burn", "polygons_in_crs", "scanline_pixels", "points_in_polygons",
           "raster_mask_excluded"]

#: merge rules of :func:`burn`
MERGE = {"replace": MergeAlg.replace, "add": MergeAlg.add}


class Shapes:
    """Geometries with the value each burns, and their bounds (computed once, for many blocks).

    Missing and empty geometries are dropped.  Picklable, so a Dask task can carry it.

    Parameters
    ----------
    geoms : sequence of shapely geometries
        In the CRS of the grid they will be burned into.
    values : int or sequence of int
        Value burned by each geometry (default 1) [-].
    """

    def __init__(self, geoms: Sequence | np.ndarray, values: int | Sequence[int] | np.ndarray = 1) -> None:
        geoms = _object_array(geoms)
        values = np.broadcast_to(np.asarray(values, dtype=np.int64), geoms.shape)
        keep = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) if len(geoms) else \
            np.zeros(0, bool)
        self.geoms = geoms[keep]
        self.values = np.array(values[keep])
        self.bounds = shapely.bounds(self.geoms) if len(self.geoms) else np.empty((0, 4))

    def __len__(self) -> int:
        return len(self.geoms)


def burn(
    shapes: Shapes,
    transform: Affine,
    window: tuple[int, int, int, int],
    *,
    merge: str = "replace",
    all_touched: bool = False,
    dtype: str = "int32",
) -> np.ndarray:
    """Burn shapes into a window of a grid (0 where no shape burns).

    Only the shapes whose bounds reach the window (plus one pixel) are given to GDAL, so a
    block of a large grid costs what its own shapes cost.  The result equals the same burn
    of the whole grid cut to the window.

    Parameters
    ----------
    shapes : Shapes
        Geometries in the grid's CRS and their values.
    transform : Affine
        Transform of the whole grid (outer corner of pixel (0, 0)).
    window : (int, int, int, int)
        ``(row0, col0, height, width)`` of the window in the grid [pixels].
    merge : {"replace", "add"}
        Where shapes overlap: the last one's value, or the sum of their values.
    all_touched : bool
        Burn every pixel a shape touches (default: pixels whose centre is inside).
    dtype : str
        Output dtype (values must fit).

    Returns
    -------
    numpy.ndarray
        ``(height, width)`` array of ``dtype``.
    """
    r0, c0, h, w = (int(v) for v in window)
    out = np.zeros((h, w), dtype=dtype)
    if len(shapes) == 0 or h == 0 or w == 0:
        return out
    t = transform @ Affine.translation(c0, r0)
    cx: np.ndarray
    cy: np.ndarray
    # affine's annotations give `@` pairs of floats only; it maps a pair of arrays element-wise
    cx, cy = t @ (np.array([0, w, 0, w]),  # type: ignore[operator, assignment]
                  np.array([0, 0, h, h]))
    px, py = abs(t.a) + abs(t.b), abs(t.d) + abs(t.e)  # one pixel of margin
    b = shapes.bounds
    hit = np.flatnonzero((b[:, 0] <= cx.max() + px) & (b[:, 2] >= cx.min() - px)
                         & (b[:, 1] <= cy.max() + py) & (b[:, 3] >= cy.min() - py))
    if len(hit) == 0:
        return out
    pairs = ((shapes.geoms[i], int(shapes.values[i])) for i in hit)
    return rasterize(pairs, out_shape=(h, w), transform=t, fill=0, all_touched=all_touched,
                     dtype=dtype, merge_alg=MERGE[merge])


def polygons_in_crs(gdf, crs, what: str):
    """Polygons of a GeoDataFrame in ``crs``, refusing features without area.

    Parameters
    ----------
    gdf : geopandas.GeoDataFrame
        Polygons (``attrs["source"]``, the file, is named in errors and kept).
    crs : CRS-like
        The grid's CRS.
    what : str
        What the polygons are, for messages (``"mask"``, ``"regions"``).

    Returns
    -------
    (geopandas.GeoDataFrame, int)
        The features in ``crs`` (all rows, empty ones included) and the number of missing
        or empty geometries.

    Raises
    ------
    CRSError
        The GeoDataFrame has no CRS.
    DataError
        Points, lines or other features without area (rows named).
    """
    if gdf.crs is None:
        raise CRSError(f"the {what} file has no CRS", path=gdf.attrs.get("source"),
                       fix="assign one (save it again with a CRS)")
    crs = pyproj.CRS.from_user_input(crs)
    out = gdf.to_crs(crs) if pyproj.CRS(gdf.crs) != crs else gdf
    out.attrs = dict(gdf.attrs)
    bad = out.geometry.isna() | out.geometry.is_empty
    flat = ~bad & ~(shapely.area(out.geometry.to_numpy()) > 0)  # points, lines: no area
    if flat.any():
        kinds = sorted(set(out.geometry[flat].geom_type))
        raise DataError(f"{int(flat.sum())} {what} feature(s) without area ({', '.join(kinds)}) "
                        f"in rows {np.flatnonzero(flat.to_numpy())[:10].tolist()}",
                        path=gdf.attrs.get("source"), field="geometry",
                        fix="keep only polygons (buffer points or lines first if meant)")
    return out, int(bad.sum())


def scanline_pixels(geoms: Sequence | np.ndarray, labels: np.ndarray, transform: Affine, r0: int, r1: int,
                    width: int) -> tuple[np.ndarray, np.ndarray]:
    """The pixels of each polygon in rows ``r0:r1``, as ``(label, flat index)`` pairs.

    The pixels are those :func:`burn` gives (pixel centre inside), computed by a vectorised
    numpy scanline fill: a pixel belongs to a polygon when its centre lies inside by the
    even-odd rule over all rings (holes, multipolygon parts), with GDAL's tie rules
    (``GDALdllImageFilledPolygon``): scan line ``r`` at ``y = r + 0.5`` crosses an edge
    when ``y_min <= y < y_max`` (the crossing computed from the lower end, as GDAL does);
    between crossings ``x_a < x_b`` the pixels ``floor(x_a + 0.5) <= c < floor(x_b + 0.5)``
    are filled; a horizontal edge on a scan line is filled too when its ring, oriented
    clockwise in CRS coordinates, runs along it towards -x (on a north-up grid: the bottom
    edges of polygons and holes).  ``tests/test_rasterize.py`` checks the pixels against
    GDAL's on polygons with every vertex on a half-pixel lattice, north-up and south-up
    (grids with a negative pixel width differ on such ties).  Overlapping polygons each get
    their pixels (no label raster).  Only the given polygons' coordinates are expanded, so
    memory follows the outlines of one band.

    Parameters
    ----------
    geoms : sequence of shapely (multi)polygons
        Not missing, not empty, in the grid's CRS.
    labels : ndarray of int
        Label of each polygon [-].
    transform : Affine
        Transform of the whole grid (north-up).
    r0, r1 : int
        The band of rows ``r0:r1`` [pixels].
    width : int
        Columns of the grid [pixels].

    Returns
    -------
    (ndarray, ndarray)
        Labels and flat indices ``(row - r0) * width + col`` into the band (int64).
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(geoms) == 0:
        return empty
    labels = np.asarray(labels)
    gtype, coords, offsets = shapely.to_ragged_array(_object_array(geoms))
    ring_off = offsets[0]
    if gtype == shapely.GeometryType.POLYGON:
        ring_geom = np.repeat(np.arange(len(offsets[1]) - 1), np.diff(offsets[1]))
    else:  # MULTIPOLYGON: rings -> polygons -> geometries
        poly_geom = np.repeat(np.arange(len(offsets[2]) - 1), np.diff(offsets[2]))
        ring_poly = np.repeat(np.arange(len(offsets[1]) - 1), np.diff(offsets[1]))
        ring_geom = poly_geom[ring_poly]
    coord_ring = np.repeat(np.arange(len(ring_off) - 1), np.diff(ring_off))
    col, row = (~transform) @ (coords[:, 0], coords[:, 1])
    del coords
    same = coord_ring[1:] == coord_ring[:-1]
    x0, y0, x1, y1 = col[:-1][same], row[:-1][same], col[1:][same], row[1:][same]
    ring_e = coord_ring[:-1][same]
    lab_e = labels[ring_geom[ring_e]]
    hz = _horizontal_edge_pixels(x0, y0, x1, y1, ring_e, lab_e, len(ring_off) - 1, transform,
                                 r0, r1, width)
    # scan rows crossed by each edge: lo <= r + 0.5 < hi, within the band
    a = np.maximum(np.ceil(np.minimum(y0, y1) - 0.5), r0).astype(np.int64)
    b = np.minimum(np.ceil(np.maximum(y0, y1) - 0.5), r1).astype(np.int64)
    k = np.maximum(b - a, 0)
    e = np.flatnonzero(k)
    if len(e) == 0:
        return hz if hz is not None else empty
    k = k[e]
    rep = np.repeat(e, k)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(k) - k, k)
    rows = a[rep] + offs
    # from the lower end, as GDAL computes it (the same float on ties)
    up = y0 < y1
    xa, ya = np.where(up, x0, x1), np.where(up, y0, y1)
    xb, yb = np.where(up, x1, x0), np.where(up, y1, y0)
    xc = (rows + 0.5 - ya[rep]) * (xb[rep] - xa[rep]) / (yb[rep] - ya[rep]) + xa[rep]
    lab = lab_e[rep]
    order = np.lexsort((xc, rows, lab))
    xc, rows, lab = xc[order], rows[order], lab[order]
    c0 = np.clip(np.floor(xc[0::2] + 0.5), 0, width).astype(np.int64)
    c1 = np.clip(np.floor(xc[1::2] + 0.5), 0, width).astype(np.int64)
    rows, lab = rows[0::2], lab[0::2]
    n = np.maximum(c1 - c0, 0)
    rep = np.repeat(np.arange(len(n)), n)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    lab, flat = lab[rep], (rows[rep] - r0) * width + c0[rep] + offs
    if hz is None:
        return lab, flat
    # add the pixels of filled horizontal edges that the crossings did not give
    size = (r1 - r0) * width
    key_new = hz[0] * size + hz[1]
    _, first = np.unique(key_new, return_index=True)
    first.sort()
    first = first[~np.isin(key_new[first], lab * size + flat)]
    return np.concatenate([lab, hz[0][first]]), np.concatenate([flat, hz[1][first]])


def _horizontal_edge_pixels(x0, y0, x1, y1, ring_e, lab_e, n_rings, transform, r0, r1, width
                            ) -> tuple[np.ndarray, np.ndarray] | None:
    """GDAL's extra pixels of horizontal edges that lie on a scan line (``y = r + 0.5``).

    GDAL fills such an edge when its ring, oriented clockwise in CRS coordinates (holes
    too), runs along it towards -x: the pixels ``floor(x_a + 0.5) <= c < floor(x_b + 0.5)``
    of that row.  On a north-up grid these are the bottom edges of a polygon (and of its
    holes), so a polygon whose bottom edge runs through pixel centres keeps that row.
    ``None`` when no edge qualifies (the usual case).
    """
    flat_y = y0 == y1
    if not flat_y.any():
        return None
    r = y0 - 0.5
    on = np.flatnonzero(flat_y & (r == np.floor(r)) & (r >= r0) & (r < r1))
    if len(on) == 0:
        return None
    # ring orientation from its signed area (shoelace, pixel space; the grid's transform
    # flips it when its determinant is negative, as on north-up grids)
    area2 = np.bincount(ring_e, weights=x0 * y1 - x1 * y0, minlength=n_rings)
    det = transform.a * transform.e - transform.b * transform.d
    clockwise = area2[ring_e[on]] * det < 0
    towards_minus_x = np.where(clockwise, x1[on] < x0[on], x0[on] < x1[on])
    on = on[towards_minus_x]
    if len(on) == 0:
        return None
    lo = np.clip(np.floor(np.minimum(x0[on], x1[on]) + 0.5), 0, width).astype(np.int64)
    hi = np.clip(np.floor(np.maximum(x0[on], x1[on]) + 0.5), 0, width).astype(np.int64)
    n = np.maximum(hi - lo, 0)
    rep = np.repeat(np.arange(len(on)), n)
    offs = np.arange(rep.size) - np.repeat(np.cumsum(n) - n, n)
    rows = r[on].astype(np.int64)
    if rep.size == 0:
        return None
    return lab_e[on][rep], (rows[rep] - r0) * width + lo[rep] + offs


def points_in_polygons(geoms: Sequence | np.ndarray, x: np.ndarray, y: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Which pixel centres, given by coordinates, lie inside which polygons.

    For grids without an affine transform (radar geometry: a longitude and a latitude per
    pixel).  A centre on a polygon's boundary is outside; a centre inside overlapping
    polygons is paired with each.

    Parameters
    ----------
    geoms : sequence of shapely geometries
        Polygons (missing or empty ones contain nothing), same CRS as ``x``, ``y``.
    x, y : ndarray
        Pixel-centre coordinates (any shape, raveled; NaN = no position) [CRS units].

    Returns
    -------
    (ndarray, ndarray)
        Index of the polygon and flat index of the pixel of each pair (int64).
    """
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    geoms = _object_array(geoms)
    ok = ~shapely.is_missing(geoms) & ~shapely.is_empty(geoms) if len(geoms) else \
        np.zeros(0, bool)
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    fin = np.isfinite(x) & np.isfinite(y)
    if not ok.any() or not fin.any():
        return empty
    b = shapely.total_bounds(geoms[ok])
    cand = np.flatnonzero(fin & (x >= b[0]) & (x <= b[2]) & (y >= b[1]) & (y <= b[3]))
    if len(cand) == 0:
        return empty
    tree = shapely.STRtree(geoms[ok])
    ip, ig = tree.query(shapely.points(x[cand], y[cand]), predicate="within")
    return np.flatnonzero(ok)[ig].astype(np.int64), cand[ip].astype(np.int64)


def _object_array(geoms: Sequence | np.ndarray) -> np.ndarray:
    """Geometries as a 1-D object array (a list of multipolygons would not stay 1-D)."""
    if isinstance(geoms, np.ndarray) and geoms.dtype == object and geoms.ndim == 1:
        return geoms
    items = list(geoms)
    arr = np.empty(len(items), dtype=object)
    arr[:] = items
    return arr


def raster_mask_excluded(values):
    """Cells a raster mask excludes: its non-zero values that are not nodata (NaN).

    Works on NumPy, Dask and xarray alike (element-wise, lazy where the input is).  With
    :func:`burn` of mask polygons it is the package's one mask rule
    (:func:`permafrost.io.maps.read_mask`, :func:`permafrost.predict.predict_pzi`).
    """
    return (values != 0) & ~np.isnan(values)
