"""The raster grid: CRS, affine transform and shape, in one small immutable object.

Every module that needs the geometry of a raster (cell areas, covariate alignment,
validation sampling, terrain) uses :class:`Grid` and :func:`grid_of` from here.  The
transform maps (column, row) of a cell's outer corner to CRS coordinates (GDAL/rasterio
convention: ``transform.c, transform.f`` is the outer corner of the first pixel).

It is also the one home of two grid rules: when two rasters are on one grid
(:func:`grids_equal`) and which cell a point falls in (:func:`cells_at_points`, used by
:func:`sample_at_points` for covariates at label points, elevations of label points and
map values at boreholes).  :func:`require_xarray` is the one check that an argument is a
raster object (a DataArray or a Dataset), with the package's error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine

from permafrost.checks import expects
from permafrost.errors import CRSError

__all__ = ["Grid", "Lattice", "grid_of", "grids_equal", "cells_at_points", "sample_at_points", "read_cells",
           "sample_subgrid", "SAMPLE_WINDOW", "SAMPLE_WINDOWS"]

#: side [cells] of the windows a bounded sample of a grid is drawn from (:func:`sample_subgrid`)
SAMPLE_WINDOW = 1024
#: at most this many windows (16.8 Mpx): a grid of up to 4096 x 4096 cells is sampled whole
SAMPLE_WINDOWS = 16


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (outer corner of the first pixel), shape.

    Parameters
    ----------
    crs : pyproj.CRS
        The grid's CRS.
    transform : affine.Affine
        Pixel (column, row) corner -> CRS coordinates [CRS units].
    shape : tuple of int
        ``(height, width)`` = (rows, columns) [cells].
    """

    crs: pyproj.CRS
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self):
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))

    @property
    def height(self) -> int:
        """Number of rows [cells]."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns [cells]."""
        return self.shape[1]

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre x (per column) and y (per row) [CRS units]."""
        t = self.transform
        x = t.c + t.a * (np.arange(self.width) + 0.5)
        y = t.f + t.e * (np.arange(self.height) + 0.5)
        return x, y


@expects(obj="xarray")
def grid_of(obj) -> Grid:
    """The :class:`Grid` of a 2-D DataArray (or a Dataset) with a ``rio`` CRS.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Raster with ``.rio`` CRS and transform.

    Raises
    ------
    CRSError
        The raster has no CRS.
    """
    if obj.rio.crs is None:
        raise CRSError("the raster has no CRS", path=obj.attrs.get("source"), field="crs",
                       fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
    return Grid(pyproj.CRS.from_user_input(obj.rio.crs.to_wkt()), obj.rio.transform(),
                (int(obj.rio.height), int(obj.rio.width)))


def grids_equal(a, b, *, rtol: float = 1e-9) -> bool:
    """True when two rasters share CRS, shape and affine transform.

    Parameters
    ----------
    a, b : xarray.DataArray or xarray.Dataset
        Rasters with a ``rio`` CRS and transform.
    rtol : float
        Relative tolerance on the transform coefficients [-] (plus 1e-6 of a cell, so
        coordinates written in float32 still match).
    """
    if a.rio.crs != b.rio.crs or a.rio.shape != b.rio.shape:
        return False
    ta, tb = a.rio.transform(), b.rio.transform()
    scale = max(abs(ta.a), abs(ta.e), 1e-12)
    return all(abs(x - y) <= rtol * max(1.0, abs(x), abs(y)) + 1e-6 * scale
               for x, y in zip(ta[:6], tb[:6], strict=True))


def cells_at_points(grid: Grid, x, y, *, crs=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of the cell holding each point: the package's one point-to-cell rule.

    The points are transformed to the grid's CRS (:class:`pyproj.Transformer`, x/y axis
    order) when ``crs`` differs from it; the cell is the one whose area holds the point
    (``floor`` of the inverse affine transform, no interpolation), so a cell spans
    ``[x0, x0 + dx)`` and a point on the edge between two cells belongs to the one to its
    right (below, for north-up grids).

    Parameters
    ----------
    grid : Grid
        The raster grid.
    x, y : array-like
        Point coordinates in ``crs`` [CRS units].
    crs : CRS-like, optional
        CRS of the points (default: the grid's).

    Returns
    -------
    (ndarray, ndarray, ndarray)
        ``row``, ``col`` (int64; -1 for non-finite coordinates) and ``inside`` (bool: the
        point is finite and on the grid).
    """
    xs = np.atleast_1d(np.asarray(x, dtype=np.float64))
    ys = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if crs is not None:
        pcrs = pyproj.CRS.from_user_input(crs)
        if pcrs != grid.crs:
            xs, ys = pyproj.Transformer.from_crs(pcrs, grid.crs, always_xy=True).transform(xs, ys)
            xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    inv = ~grid.transform
    col_f = inv.a * xs + inv.b * ys + inv.c
    row_f = inv.d * xs + inv.e * ys + inv.f
    finite = np.isfinite(col_f) & np.isfinite(row_f)
    col = np.full(col_f.shape, -1, dtype=np.int64)
    row = np.full(row_f.shape, -1, dtype=np.int64)
    col[finite] = np.floor(col_f[finite]).astype(np.int64)
    row[finite] = np.floor(row_f[finite]).astype(np.int64)
    inside = finite & (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    return row, col, inside


@expects(raster="xarray")
def sample_at_points(raster, x, y, *, crs, batch_size: int = 100_000
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Values of a raster (or of every variable of a stack) at points, cell by cell.

    The value of the cell holding each point (:func:`cells_at_points`; no interpolation).
    Only the cells at the points are read, in batches, so a Dask-backed raster stays lazy
    and memory stays bounded.

    Parameters
    ----------
    raster : xarray.DataArray or xarray.Dataset
        A 2-D raster (or a stack of them on one grid) with a ``rio`` CRS; a leading
        dimension of size 1 (a band) is allowed.
    x, y : array-like
        Point coordinates in ``crs`` [CRS units].
    crs : CRS-like
        CRS of the points.
    batch_size : int
        Points read per batch [-].

    Returns
    -------
    values : numpy.ndarray
        float64, shape ``(n,)`` for a DataArray or ``(n, n_variables)`` for a Dataset (in
        its variable order); NaN outside the grid and at nodata (NaN, or the raster's
        ``rio.nodata`` value when it is not masked).
    inside : numpy.ndarray of bool
        Whether each point lies on the grid.

    Raises
    ------
    CRSError
        The raster or the points have no CRS.
    """
    if crs is None:
        raise CRSError("the points have no CRS", field="geometry",
                       fix="set the CRS of the points")
    grid = grid_of(raster)
    row, col, inside = cells_at_points(grid, x, y, crs=crs)
    arrays = ([raster[v] for v in raster.data_vars] if isinstance(raster, xr.Dataset)
              else [raster])
    vals = np.full((len(row), len(arrays)), np.nan)
    idx = np.flatnonzero(inside)
    if len(idx):
        got = read_cells(raster, row[idx], col[idx], batch_size=batch_size)
        vals[idx] = got.reshape(len(idx), len(arrays))
    for j, arr in enumerate(arrays):
        nodata = arr.rio.nodata
        if nodata is not None and not np.isnan(nodata):
            vals[vals[:, j] == nodata, j] = np.nan
    return (vals if isinstance(raster, xr.Dataset) else vals[:, 0]), inside


def _chunk_edges(raster, dim: str, size: int) -> np.ndarray:
    """Start of each Dask chunk along ``dim`` and the end (one block for NumPy)."""
    try:
        sizes = raster.chunksizes.get(dim)
    except ValueError:  # variables of a Dataset chunked differently: the first one's
        first = next(iter(raster.data_vars.values()))
        sizes = first.chunksizes.get(dim)
    if not sizes:
        return np.array([0, size])
    return np.concatenate([[0], np.cumsum(sizes)])


@expects(raster="xarray")
def read_cells(raster, row, col, *, batch_size: int = 100_000) -> np.ndarray:
    """Values of a raster (or of every variable of a stack) at cells (row, column), read
    one Dask block at a time.

    The cells are grouped by the block (chunk) that holds them and each block is computed
    on its own, in row-major block order: only blocks that hold a cell are read or derived,
    and at most one block (with the halo its derived covariates need) is in memory at a
    time, however large the raster.  Peak memory therefore depends on the chunk size, not
    on the raster's size (issue 24: ``train`` read the whole stack at once). A NumPy-backed
    raster is indexed directly.  The values are those of ``raster.values[..., row, col]``.

    Parameters
    ----------
    raster : xarray.DataArray or xarray.Dataset
        A 2-D raster (or a stack of them on one grid), optionally with a leading dimension
        of size 1, with ``rio`` x and y dimensions.
    row, col : array-like of int
        Cells on the grid (``0 <= row < height``, ``0 <= col < width``).
    batch_size : int
        Cells read per compute within a block [-].

    Returns
    -------
    numpy.ndarray
        float64, shape ``(n,)`` for a DataArray or ``(n, n_variables)`` for a Dataset.
    """
    row = np.asarray(row, dtype=np.int64).reshape(-1)
    col = np.asarray(col, dtype=np.int64).reshape(-1)
    names = list(raster.data_vars) if isinstance(raster, xr.Dataset) else None
    vals = np.full((len(row), len(names) if names is not None else 1), np.nan)
    if not len(row):
        return vals if names is not None else vals[:, 0]
    ydim, xdim = raster.rio.y_dim, raster.rio.x_dim
    ye = _chunk_edges(raster, ydim, raster.sizes[ydim])
    xe = _chunk_edges(raster, xdim, raster.sizes[xdim])
    rb = np.searchsorted(ye, row, side="right") - 1
    cb = np.searchsorted(xe, col, side="right") - 1
    key = rb * (len(xe) - 1) + cb
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.diff(key[order])) + 1
    for grp in np.split(order, bounds):
        r0, c0 = ye[rb[grp[0]]], xe[cb[grp[0]]]
        block = raster.isel({ydim: slice(r0, ye[rb[grp[0]] + 1]),
                             xdim: slice(c0, xe[cb[grp[0]] + 1])})
        for start in range(0, len(grp), batch_size):
            sel = grp[start:start + batch_size]
            picked = block.isel({ydim: xr.DataArray(row[sel] - r0, dims="_pt"),
                                 xdim: xr.DataArray(col[sel] - c0, dims="_pt")}).compute()
            if names is None:
                vals[sel, 0] = np.asarray(picked.values, dtype=np.float64).reshape(-1)
            else:
                for j, nm in enumerate(names):
                    vals[sel, j] = np.asarray(picked[nm].values, dtype=np.float64).reshape(-1)
    return vals if names is not None else vals[:, 0]


def sample_subgrid(shape, *, window: int = SAMPLE_WINDOW, max_windows: int = SAMPLE_WINDOWS
                   ) -> tuple[np.ndarray, np.ndarray]:
    """The rows and columns of a bounded, evenly spread part of a grid, to sample it from.

    The grid is cut into windows of ``window`` x ``window`` cells; when there are more than
    ``max_windows``, ``ky`` window rows and ``kx`` window columns (``ky kx <= max_windows``,
    ``ky / kx`` as the grid's aspect, at least 2 each where the grid has them) are chosen evenly from first to last (rounded
    ``linspace``), and the part is every cell of their crossings.  A grid of at most
    ``max_windows`` windows is returned whole, so a sample drawn from the part is the sample
    of the whole grid there.  The choice is a function of the shape alone (deterministic,
    independent of Dask chunks), and the part spans the grid from edge to edge, so its
    gradients (an elevation range, a climate trend) are sampled end to end.  Reading it costs
    at most ``max_windows * window**2`` cells, whatever the grid's size (issue 24: the
    samples of ``train`` read the whole stack).

    Parameters
    ----------
    shape : tuple of int
        ``(height, width)`` of the grid [cells].
    window : int
        Window side [cells].
    max_windows : int
        Most windows in the part [-].

    Returns
    -------
    rows, cols : numpy.ndarray
        Increasing row and column indices (int64); the part is their outer product.
    """
    ny, nx = int(shape[0]), int(shape[1])
    nby, nbx = -(-ny // window), -(-nx // window)
    if nby * nbx <= max_windows:
        return np.arange(ny, dtype=np.int64), np.arange(nx, dtype=np.int64)
    # at least two window rows and columns where there are (first and last: edge to edge)
    ky = int(min(nby, max(2, round(np.sqrt(max_windows * nby / nbx)))))
    kx = int(min(nbx, max(2, max_windows // ky)))
    ky = int(min(nby, max(1, max_windows // kx)))

    def lines(n_cells, n_blocks, k):
        picked = np.unique(np.round(np.linspace(0, n_blocks - 1, k)).astype(np.int64))
        return np.concatenate([np.arange(b * window, min(n_cells, (b + 1) * window))
                               for b in picked]).astype(np.int64)

    return lines(ny, nby, ky), lines(nx, nbx, kx)


class Lattice:
    """Control points every ``sx`` by ``sy`` CRS units, anchored at the CRS origin (node
    ``(i, j)`` at ``x = i sx``, ``y = j sy``), covering the positions ``xs`` (along a row) and
    ``ys`` (along a column); :meth:`interpolate` is bilinear between them.

    For quantities that vary smoothly over a projected grid (the projection's Jacobian,
    :func:`permafrost.terrain.ground_jacobian`; its areal scale,
    :func:`permafrost.area.cell_areas`): computed at the nodes, interpolated at the cells.
    Because the nodes do not depend on which part of a grid is asked for, and the weights
    ``t = u - floor(u)`` (``u = x / sx``) neither, a cell gets the same bits in any block
    (chunks, halos, row stripes).
    """

    def __init__(self, xs, ys, sx: float, sy: float) -> None:
        xs = np.concatenate([np.ravel(a) for a in xs]) if isinstance(xs, (list, tuple)) else xs
        ys = np.concatenate([np.ravel(a) for a in ys]) if isinstance(ys, (list, tuple)) else ys
        self.sx, self.sy = float(sx), float(sy)
        ux, uy = np.asarray(xs) / self.sx, np.asarray(ys) / self.sy
        self.kx0, self.ky0 = int(np.floor(ux.min())), int(np.floor(uy.min()))
        #: node coordinates [CRS units]
        self.x = (self.kx0 + np.arange(int(np.floor(ux.max())) - self.kx0 + 2)) * self.sx
        self.y = (self.ky0 + np.arange(int(np.floor(uy.max())) - self.ky0 + 2)) * self.sy

    def _weights(self, pos, spacing: float, k0: int):
        u = np.asarray(pos, dtype="float64") / spacing
        i = np.floor(u)
        return i.astype(np.int64) - k0, u - i

    def interpolate(self, nodes: np.ndarray, xs, ys) -> np.ndarray:
        """``nodes`` (``(..., len(self.y), len(self.x))``) at the positions ``ys`` x ``xs``:
        shape ``(..., len(ys), len(xs))``, separably (along the rows on the few node columns,
        then along the columns: two full-size temporaries, not eight)."""
        ix, tx = self._weights(xs, self.sx, self.kx0)
        iy, ty = self._weights(ys, self.sy, self.ky0)
        by_row = nodes[..., iy, :] * (1.0 - ty)[:, None] + nodes[..., iy + 1, :] * ty[:, None]
        return by_row[..., ix] * (1.0 - tx) + by_row[..., ix + 1] * tx
