"""Covariates on a grid: derived terrain and climate covariates, scenario changes, values at points.

The science of a covariate stack, on :class:`xarray.DataArray` grids (NumPy or Dask):
slope, aspect, northness and eastness of a DEM (Horn 1981; :mod:`permafrost.terrain`),
potential incoming solar radiation (:mod:`permafrost.solar`), MAAT downscaled from a
coarse climate grid with a lapse rate and the air frost number (:mod:`permafrost.climate`),
a scenario's scale and offset (:func:`apply_change`), the cell sizes and latitudes of a
grid, and the covariate values at label points (:func:`extract_at_points`).

Everything stays lazy (Dask): terrain derivatives use ``map_overlap`` and the MAAT
downscaling interpolates the coarse grid block by block, so a stack larger than memory
works.  Reading stacks from files (directories of rasters, TOML stack files, NetCDF
climate grids) is :mod:`permafrost.workflows.covariates`; this module reads no file.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from dask.base import tokenize as dask_tokenize
from pyproj import CRS, Transformer

from permafrost import climate, solar, terrain
from permafrost.checks import expects
from permafrost.defaults import CHUNK
from permafrost.errors import CRSError, DataError, GridMismatchError
from permafrost.grid import Grid, grid_of, grids_equal, sample_at_points

__all__ = [
    "grid_metadata",
    "cell_sizes",
    "latitudes",
    "slope_da",
    "aspect_da",
    "northness_da",
    "eastness_da",
    "tpi_da",
    "pisr_da",
    "downscale_maat_da",
    "frost_number_da",
    "extract_at_points",
    "PointValues",
    "apply_change",
    "CHANGED_ATTR",
    "DERIVED_COVARIATES",
    "DerivedCovariate",
    "GridInput",
    "CoarseInput",
]

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------
def grid_metadata(ds) -> dict:
    """JSON-ready description of a stack's grid (CRS WKT, transform, shape, resolution)."""
    g = grid_of(ds)
    return {"crs_wkt": g.crs.to_wkt(), "epsg": g.crs.to_epsg(), "transform": list(g.transform)[:6],
            "width": g.width, "height": g.height,
            "resolution": [abs(g.transform.a), abs(g.transform.e)]}


def _wrap(data, grid: Grid, name: str, attrs: Mapping | None = None) -> xr.DataArray:
    x, y = grid.coords()
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}, name=name,
                       attrs=dict(attrs or {}))
    return arr.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


# --------------------------------------------------------------------------------------
# grid-aware helpers
# --------------------------------------------------------------------------------------
def latitudes(grid: Grid) -> np.ndarray:
    """Latitude [deg] of each cell centre, shape (height, width) (or (height, 1) if geographic)."""
    x, y = grid.coords()
    if grid.crs.is_geographic:
        return y[:, None]
    t = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)
    xx, yy = np.meshgrid(x, y)
    return t.transform(xx, yy)[1]


def cell_sizes(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Cell sizes dx, dy [m] broadcastable to (height, width).

    Geographic grids: per-row sizes on the WGS84 ellipsoid
    (:func:`permafrost.terrain.geographic_cell_size`); projected grids: the transform's
    pixel size (metric CRS required).
    """
    t = grid.transform
    if grid.crs.is_geographic:
        _, y = grid.coords()
        dx, dy = terrain.geographic_cell_size(y, t.a, t.e)
        return dx[:, None], dy[:, None]
    unit = grid.crs.axis_info[0].unit_name if grid.crs.axis_info else "metre"
    if unit not in ("metre", "meter"):
        raise CRSError(f"projected CRS with unit {unit!r}", field="crs",
                       fix="use a metric CRS for terrain covariates")
    return np.full((1, 1), abs(t.a)), np.full((1, 1), abs(t.e))


def _dask2d(arr: xr.DataArray) -> da.Array:
    d = arr.data
    if not isinstance(d, da.Array):
        d = da.from_array(np.asarray(d), chunks=CHUNK)
    return d


def _rowwise(values: np.ndarray, like: da.Array) -> da.Array:
    full = np.broadcast_to(values, like.shape)
    return da.from_array(np.ascontiguousarray(full[:, :1] if values.shape[1] == 1 else full),
                         chunks=(like.chunks[0], 1 if values.shape[1] == 1 else like.chunks[1]))


def _block_window(chunks: tuple[tuple[int, ...], tuple[int, ...]], block_info) -> tuple[int, ...]:
    """``(r0, r1, c0, c1)`` of the block of ``map_blocks`` called with ``block_info``, in
    the cells of the array chunked ``chunks`` (also for blocks of its overlapped copy)."""
    i, j = block_info[0]["chunk-location"][-2:]
    r0 = int(sum(chunks[0][:i]))
    c0 = int(sum(chunks[1][:j]))
    return r0, r0 + chunks[0][i], c0, c0 + chunks[1][j]


def _jacobian_da(grid: Grid, like: da.Array) -> list[da.Array]:
    """The four entries ``dx/dE, dx/dN, dy/dE, dy/dN`` [CRS units m-1] of a projected
    grid's local Jacobian, block by block (:func:`permafrost.terrain.ground_jacobian`,
    whose control points are anchored in the CRS, so the values do not depend on the
    chunking), chunked like ``like``."""
    def block(_b, block_info=None):
        (r0, r1), (c0, c1) = block_info[0]["array-location"]
        t = grid.transform @ Affine.translation(c0, r0)
        return terrain.ground_jacobian(grid.crs, t, (r1 - r0, c1 - c0)).reshape(
            4, r1 - r0, c1 - c0)

    # one computation per block, four entries sliced from it
    jac = da.map_blocks(block, like, dtype=np.float64, new_axis=0,
                        chunks=((4,),) + like.chunks)
    return [jac[i] for i in range(4)]


def _gradient_block(zb, block_info=None, *, grid: Grid, chunks, dx, dy) -> np.ndarray:
    """Ground gradient of one DEM block with a halo of one cell (see
    :func:`_ground_gradient`): ``(dz/dE, dz/dN)`` [m m-1] of the block's own cells,
    shape ``(2, rows, cols)``."""
    r0, r1, c0, c1 = _block_window(chunks, block_info)
    if grid.crs.is_geographic:
        # per-row cell sizes on the ellipsoid; the halo's values never reach a kept cell
        bx = np.pad(dx[r0:r1], ((1, 1), (0, 0)), mode="edge")
        by = np.pad(dy[r0:r1], ((1, 1), (0, 0)), mode="edge")
        gx, gy = terrain.horn_gradient(zb, dx=bx, dy=by)
        return np.stack([gx[1:-1, 1:-1], gy[1:-1, 1:-1]])
    gx, gy = terrain.horn_gradient(zb, dx=dx, dy=dy)
    jac = terrain.ground_jacobian(grid.crs, grid.transform @ Affine.translation(c0, r0),
                                  (r1 - r0, c1 - c0))
    return np.stack(terrain.to_ground(gx[1:-1, 1:-1], gy[1:-1, 1:-1], jac))


def _ground_gradient(dem: xr.DataArray) -> tuple[da.Array, da.Array]:
    """The DEM (float64) and its ground gradient ``(dz/dE, dz/dN)`` [m m-1] (Horn 1981,
    :func:`permafrost.terrain.horn_gradient`), lazy, stacked ``(2, rows, cols)``.

    One task per block reads the block with a halo of one cell (edge cells repeated at
    the grid's border) and computes the gradient once: geographic grids with the per-row
    cell sizes on the ellipsoid, projected grids in grid units turned into true metres
    towards true east and north by the projection's local Jacobian
    (:func:`permafrost.terrain.ground_jacobian`, :func:`permafrost.terrain.to_ground`;
    Snyder 1987), so slope and aspect are right on any projection.  The tasks are named
    by their content, so slope, aspect, northness, eastness and PISR of the same DEM in
    one computation share one gradient per block (issue 24: derived covariates once per
    block per command; no cell-size or Jacobian arrays are materialised or overlapped).
    """
    grid = grid_of(dem)
    dx, dy = cell_sizes(grid)
    z = _dask2d(dem).astype(np.float64)
    zo = da.overlap.overlap(z, depth={0: 1, 1: 1}, boundary={0: "nearest", 1: "nearest"})
    fn = functools.partial(_gradient_block, grid=grid, chunks=z.chunks, dx=dx, dy=dy)
    token = dask_tokenize(z.name, z.chunks, grid.crs.to_wkt(), tuple(grid.transform),
                          dx.tobytes(), dy.tobytes())
    grad = da.map_blocks(fn, zo, dtype=np.float64, new_axis=0, chunks=((2,),) + z.chunks,
                         name=f"ground-gradient-{token}")
    return z, grad


def _slope_block(g: np.ndarray) -> np.ndarray:
    return terrain.slope_from_gradient(g[0], g[1])


def _aspect_block(g: np.ndarray) -> np.ndarray:
    return terrain.aspect_from_gradient(g[0], g[1])


def _northness_block(g: np.ndarray) -> np.ndarray:
    return terrain.northness(terrain.aspect_from_gradient(g[0], g[1]))


def _eastness_block(g: np.ndarray) -> np.ndarray:
    return terrain.eastness(terrain.aspect_from_gradient(g[0], g[1]))


def _terrain_map(dem: xr.DataArray, fn, name: str, attrs: dict) -> xr.DataArray:
    """A Horn-stencil terrain covariate: ``fn`` of the ground gradient
    (:func:`_ground_gradient`), block by block; NaN where the DEM is NaN; float32.

    ``fn`` is a module-level function, so the task names are the same in every call and
    one computation of several covariates shares their blocks.
    """
    z, grad = _ground_gradient(dem)
    out = da.map_blocks(fn, grad, drop_axis=0, dtype=np.float64)
    out = da.where(da.isnan(z), np.nan, out).astype(np.float32)
    return _wrap(out, grid_of(dem), name, attrs)


def slope_da(dem: xr.DataArray, *, name: str = "slope") -> xr.DataArray:
    """Slope [deg] of a DEM grid (Horn 1981), lazy; see :func:`permafrost.terrain.slope`."""
    return _terrain_map(dem, _slope_block, name,
                        {"units": "deg", "long_name": "slope (Horn 1981)"})


def aspect_da(dem: xr.DataArray, *, name: str = "aspect") -> xr.DataArray:
    """Aspect [deg, downslope, clockwise from true north], NaN on flat cells, lazy."""
    return _terrain_map(dem, _aspect_block, name, {"units": "deg"})


def northness_da(dem: xr.DataArray, *, name: str = "northness") -> xr.DataArray:
    """cos(aspect) [-] of a DEM grid (0 on flat cells, NaN where the DEM is nodata)."""
    return _terrain_map(dem, _northness_block, name, {"units": "1"})


def eastness_da(dem: xr.DataArray, *, name: str = "eastness") -> xr.DataArray:
    """sin(aspect) [-] of a DEM grid (0 on flat cells, NaN where the DEM is nodata)."""
    return _terrain_map(dem, _eastness_block, name, {"units": "1"})


def tpi_da(dem: xr.DataArray, *, radius_m: float = 500.0, name: str = "tpi") -> xr.DataArray:
    """Topographic position index [m] of a DEM grid within ``radius_m`` [m], lazy
    (:func:`permafrost.terrain.tpi`; Weiss 2001).

    Blocks overlap by the radius, so the result does not depend on the chunking; beyond the
    grid's edge there is no data (the mean uses the cells inside the grid only).  Projected
    grids use the ground length of a pixel's width and height from the projection's local
    Jacobian (:func:`permafrost.terrain.ground_cell_sizes`; true metres).
    """
    if isinstance(radius_m, bool) or not isinstance(radius_m, (int, float)) \
            or not np.isfinite(radius_m) or not radius_m > 0:
        raise DataError(f"TPI radius must be a number > 0 m, got {radius_m!r}",
                        field="radius_m", fix="give radius_m in metres, e.g. 500")
    grid = grid_of(dem)
    dx, dy = cell_sizes(grid)
    z = _dask2d(dem).astype(np.float64)
    if grid.crs.is_geographic:
        dxa = da.broadcast_to(_rowwise(dx, z), z.shape).rechunk(z.chunks)
        dya = da.broadcast_to(_rowwise(dy, z), z.shape).rechunk(z.chunks)
    else:
        j00, j01, j10, j11 = _jacobian_da(grid, z)
        dxa, dya = terrain.ground_cell_sizes(((j00, j01), (j10, j11)), float(dx.flat[0]),
                                             float(dy.flat[0]))
    depth = (int(np.ceil(radius_m / float(np.min(dy)))) + 1,
             int(np.ceil(radius_m / float(np.min(dx)))) + 1)
    out = da.map_overlap(lambda a, b, c: terrain.tpi(a, dx=b, dy=c, radius_m=float(radius_m)),
                         z, dxa, dya, depth={0: depth[0], 1: depth[1]}, boundary=np.nan,
                         dtype=np.float64, trim=True)
    return _wrap(out.astype(np.float32), grid, name,
                 {"units": "m", "long_name": f"topographic position index, radius {radius_m:g} m "
                                             "(Weiss 2001)", "radius_m": float(radius_m)})


def _lazy_latitudes(grid: Grid, like: da.Array) -> tuple[da.Array, tuple[float, float]]:
    """Latitude [deg] per cell as a Dask array chunked like ``like``, and its range.

    Geographic grids: one value per row; projected grids: computed block by block (never
    the whole grid in memory), the range from the grid's border cells.
    """
    if grid.crs.is_geographic:
        lat = latitudes(grid)
        return (da.broadcast_to(_rowwise(lat, like), like.shape).rechunk(like.chunks),
                (float(np.min(lat)), float(np.max(lat))))
    x, y = grid.coords()
    t = Transformer.from_crs(grid.crs, "EPSG:4326", always_xy=True)

    def block(_b, block_info=None):
        (r0, r1), (c0, c1) = block_info[0]["array-location"]
        xx, yy = np.meshgrid(x[c0:c1], y[r0:r1])
        return t.transform(xx, yy)[1]

    border_x = np.concatenate([x, x, np.full(len(y), x[0]), np.full(len(y), x[-1])])
    border_y = np.concatenate([np.full(len(x), y[0]), np.full(len(x), y[-1]), y, y])
    blat = t.transform(border_x, border_y)[1]
    return (da.map_blocks(block, like, dtype=np.float64),
            (float(np.min(blat)), float(np.max(blat))))


@functools.lru_cache(maxsize=8)
def _pisr_lut(lat_range, elev_range, *, transmissivity, day_step, time_step_h,
              slope_step=2.0, aspect_step=10.0, elev_step=500.0, lat_step=0.25):
    """Table of annual PISR over (lat, elevation, slope, aspect) nodes for interpolation.

    Cached by its content (the ranges and options that define every node): a command that
    opens the same stack twice (the predict step and the applicability check, a scenario
    beside the baseline) builds it once.  The interpolator is only called, never changed."""
    from scipy.interpolate import RegularGridInterpolator  # noqa: PLC0415

    lat0, lat1 = lat_range
    nl = max(2, int(np.ceil((lat1 - lat0) / lat_step)) + 1)
    lats = np.linspace(lat0, lat1, nl) if lat1 > lat0 else np.array([lat0 - 0.01, lat0 + 0.01])
    e0, e1 = elev_range
    ne = max(2, int(np.ceil((e1 - e0) / elev_step)) + 1)
    elevs = np.linspace(e0, e1, ne) if e1 > e0 else np.array([e0 - 1.0, e0 + 1.0])
    slopes = np.arange(0.0, 90.0 + slope_step, slope_step)
    aspects = np.arange(0.0, 360.0 + aspect_step, aspect_step)
    # the nodes as broadcast axes (lat, elevation, slope, aspect): the sun and the air mass
    # are computed per (lat, elevation) only, ~20x less work than on the full mesh, with the
    # same values bit for bit
    vals = solar.pisr_annual(slopes[None, None, :, None], aspects[None, None, None, :],
                             lats[:, None, None, None],
                             elevation_m=elevs[None, :, None, None],
                             transmissivity=transmissivity, day_step=day_step,
                             time_step_h=time_step_h)
    return RegularGridInterpolator((lats, elevs, slopes, aspects), vals, bounds_error=False,
                                   fill_value=None)


#: points per call of PISR's table interpolation (bounds its temporaries to a few MB)
_PISR_SLICE = 1 << 16


def pisr_da(dem: xr.DataArray, *, transmissivity: float | None = 0.7, shading: bool = False,
            shading_distance_m: float = 3000.0, n_directions: int = 16, day_step: int = 5,
            time_step_h: float = 0.25, name: str = "pisr") -> xr.DataArray:
    """Annual mean clear-sky PISR [W m-2] of a DEM grid, lazy.

    Without shading, values are interpolated (linear) in a table computed once over
    latitude, elevation, slope (2 deg steps) and aspect (10 deg steps) nodes by
    :func:`permafrost.solar.pisr_annual`; with ``shading=True`` each block (with a halo of
    ``shading_distance_m``) gets horizon angles (:func:`permafrost.solar.horizon_angles`)
    and a direct computation (slow: use for small areas).
    """
    grid = grid_of(dem)
    z = _dask2d(dem).astype(np.float64)
    slp = _dask2d(slope_da(dem)).astype(np.float64)
    asp = _dask2d(aspect_da(dem)).astype(np.float64)
    lat_full, lat_range = _lazy_latitudes(grid, z)
    attrs = {"units": "W m-2", "long_name": "annual mean clear-sky potential incoming solar "
             "radiation", "transmissivity": str(transmissivity), "shading": str(shading)}
    if not shading:
        zmin, zmax = (float(v) for v in da.compute(da.nanmin(z), da.nanmax(z)))
        lut = _pisr_lut(tuple(float(v) for v in lat_range), (zmin, zmax),
                        transmissivity=None if transmissivity is None else float(transmissivity),
                        day_step=int(day_step), time_step_h=float(time_step_h))

        def block(zb, sb, ab, lb):
            a = np.nan_to_num(ab, nan=0.0)
            pts = np.stack([lb.ravel(), zb.ravel(), sb.ravel(), a.ravel()], axis=-1)
            ok = np.all(np.isfinite(pts), axis=1)
            out = np.full(zb.size, np.nan)
            idx = np.flatnonzero(ok)
            # in slices: the 4-D interpolation's temporaries are ~30 arrays of its points,
            # so a whole block would cost ~30 x its size (issue 24, flat memory); pointwise,
            # so the values do not depend on the slicing
            for i in range(0, len(idx), _PISR_SLICE):
                sel = idx[i:i + _PISR_SLICE]
                out[sel] = lut(pts[sel])
            return out.reshape(zb.shape)

        out = da.map_blocks(block, z, slp, asp, lat_full, dtype=np.float64)
    else:
        dx, dy = cell_sizes(grid)
        dxa = da.broadcast_to(_rowwise(dx, z), z.shape).rechunk(z.chunks)
        dya = da.broadcast_to(_rowwise(dy, z), z.shape).rechunk(z.chunks)
        halo = int(np.ceil(shading_distance_m / float(min(np.min(dx), np.min(dy)))))
        halo = min(halo, min(min(z.chunks[0]), min(z.chunks[1])))

        def shaded_block(zb, sb, ab, lb, xb, yb):
            hz = solar.horizon_angles(zb, dx=xb, dy=yb, n_directions=n_directions,
                                      max_distance_m=shading_distance_m)
            return solar.pisr_annual(sb, ab, lb, elevation_m=zb, transmissivity=transmissivity,
                                     day_step=day_step, time_step_h=time_step_h,
                                     horizon_deg=hz)

        out = da.map_overlap(shaded_block, z, slp, asp, lat_full, dxa, dya, depth=halo,
                             boundary="nearest", dtype=np.float64, trim=True)
    out = da.where(da.isnan(z), np.nan, out).astype(np.float32)
    return _wrap(out, grid, name, attrs)


def _interp_coarse_block(coarse: xr.DataArray, grid: Grid):
    """Function for map_blocks: bilinear interpolation of a small coarse grid to fine cells."""
    from scipy.interpolate import RegularGridInterpolator  # noqa: PLC0415

    cx = np.asarray(coarse.x, dtype=np.float64)
    cy = np.asarray(coarse.y, dtype=np.float64)
    vals = np.asarray(coarse.values, dtype=np.float64)
    if cy[0] > cy[-1]:
        cy, vals = cy[::-1], vals[::-1]
    if cx[0] > cx[-1]:
        cx, vals = cx[::-1], vals[:, ::-1]
    # fill NaN cells from their nearest valid neighbour so interpolation stays defined
    if np.isnan(vals).any():
        from scipy.ndimage import distance_transform_edt  # noqa: PLC0415

        idx = distance_transform_edt(np.isnan(vals), return_distances=False, return_indices=True)
        vals = vals[tuple(idx)]
    interp = RegularGridInterpolator((cy, cx), vals, bounds_error=False, fill_value=None)
    ccrs = CRS.from_user_input(coarse.rio.crs)
    tr = None if ccrs == grid.crs else Transformer.from_crs(grid.crs, ccrs, always_xy=True)
    fx, fy = grid.coords()

    def block(_b, block_info=None):
        (r0, r1), (c0, c1) = block_info[0]["array-location"]
        xx, yy = np.meshgrid(fx[c0:c1], fy[r0:r1])
        if tr is not None:
            xx, yy = tr.transform(xx, yy)
        # clamp to the coarse cell centres: constant extrapolation at the edges
        yy = np.clip(yy, cy[0], cy[-1])
        xx = np.clip(xx, cx[0], cx[-1])
        return interp(np.stack([yy.ravel(), xx.ravel()], axis=-1)).reshape(xx.shape)

    return block


def downscale_maat_da(coarse_maat: xr.DataArray, coarse_elevation: xr.DataArray,
                      dem: xr.DataArray, *, lapse_rate: float = climate.STANDARD_LAPSE_RATE,
                      name: str = "maat") -> xr.DataArray:
    """MAAT [degC] on the DEM grid from a coarse MAAT grid and its cell elevations, lazy.

    Coarse MAAT is reduced to sea level with its own elevations, interpolated bilinearly
    to the fine cells (edges held constant) and lifted to the DEM elevation with the
    same lapse rate [degC m-1] (:mod:`permafrost.climate`; Gruber 2012).
    """
    if coarse_maat.rio.crs is None or coarse_elevation.rio.crs is None:
        raise CRSError("the coarse climate grids need a CRS", field="crs", fix="assign one")
    if not grids_equal(coarse_maat, coarse_elevation):
        raise GridMismatchError("coarse MAAT and coarse elevation are not on one grid",
                                path=coarse_elevation.attrs.get("source"),
                                fix="give the elevations of the same climate cells")
    t0 = coarse_maat.copy(data=climate.sea_level_temperature(
        np.asarray(coarse_maat.values), np.asarray(coarse_elevation.values),
        lapse_rate=lapse_rate))
    grid = grid_of(dem)
    z = _dask2d(dem).astype(np.float64)
    t0_fine = da.map_blocks(_interp_coarse_block(t0, grid), z, dtype=np.float64)
    out = da.map_blocks(lambda a, b: climate.lapse_rate_downscale(a, b, lapse_rate=lapse_rate),
                        t0_fine, z, dtype=np.float64).astype(np.float32)
    return _wrap(out, grid, name, {"units": "degC", "lapse_rate_degC_per_m": str(lapse_rate)})


def frost_number_da(ddf: xr.DataArray, ddt: xr.DataArray, *,
                    name: str = "frost_number") -> xr.DataArray:
    """Air frost number [-] from DDF and DDT grids (Nelson & Outcalt 1987), lazy."""
    if not grids_equal(ddf, ddt):
        raise GridMismatchError("DDF and DDT are not on one grid", fix="align them in the stack")
    out = da.map_blocks(climate.frost_number, _dask2d(ddf), _dask2d(ddt), dtype=np.float64)
    return _wrap(out.astype(np.float32), grid_of(ddf), name, {"units": "1"})


# --------------------------------------------------------------------------------------
# the registry of derived covariates
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GridInput:
    """A covariate a derived covariate takes from the stack (a key of its stack-file entry)."""

    #: the key in the stack file's ``[derived.NAME]`` table
    key: str
    #: the covariate it names when the key is absent (None: the key is required)
    default: str | None
    #: the role of that covariate (:data:`permafrost.io.rasters.PLAUSIBLE`), for the
    #: plausibility check of its values
    role: str


@dataclass(frozen=True)
class CoarseInput:
    """A coarse climate grid a derived covariate reads from its own file (not a stack
    covariate; a scenario may change it as ``NAME.key``)."""

    #: the key in the stack file's ``[derived.NAME]`` table naming the file
    key: str
    #: the name of the array read (and its role, ``maat`` or ``elevation``)
    what: str


@dataclass(frozen=True)
class DerivedCovariate:
    """One derived covariate: the lazy function that makes it and what it takes.

    ``build(*coarse arrays, *grid input arrays, name=NAME, **options)`` returns a lazy
    DataArray in ``units``; the other keys of a stack file's ``[derived.NAME]`` table are
    its keyword options (an unknown one is an error naming the key).
    """

    build: Callable[..., xr.DataArray]
    inputs: tuple[GridInput, ...]
    units: str
    doc: str
    coarse: tuple[CoarseInput, ...] = ()


_DEM = (GridInput("dem", "dem", "elevation"),)

#: Every derived covariate a stack file may name (``function = "..."``): one function and one
#: entry each.  The stack reader, the roles of the inputs, what a scenario may change and the
#: docs' list come from this table.
DERIVED_COVARIATES: dict[str, DerivedCovariate] = {
    "slope": DerivedCovariate(slope_da, _DEM, "deg", "slope (Horn 1981)"),
    "aspect": DerivedCovariate(aspect_da, _DEM, "deg",
                               "downslope aspect from true north, NaN on flat cells"),
    "northness": DerivedCovariate(northness_da, _DEM, "1", "cos(aspect), 0 on flat cells"),
    "eastness": DerivedCovariate(eastness_da, _DEM, "1", "sin(aspect), 0 on flat cells"),
    "tpi": DerivedCovariate(tpi_da, _DEM, "m", "topographic position index (Weiss 2001); "
                            "option radius_m"),
    "pisr": DerivedCovariate(pisr_da, _DEM, "W m-2",
                             "annual mean clear-sky potential incoming solar radiation; "
                             "options transmissivity, shading, day_step, time_step_h"),
    "downscale_maat": DerivedCovariate(
        downscale_maat_da, _DEM, "degC",
        "MAAT from a coarse grid and its cell elevations with a lapse rate (Gruber 2012); "
        "option lapse_rate (degC m-1 or \"fit\")",
        coarse=(CoarseInput("coarse", "maat_coarse"),
                CoarseInput("coarse_elevation", "elevation_coarse"))),
    "frost_number": DerivedCovariate(
        frost_number_da, (GridInput("ddf", None, "degree_days"),
                          GridInput("ddt", None, "degree_days")), "1",
        "air frost number from DDF and DDT (Nelson & Outcalt 1987)"),
}


# --------------------------------------------------------------------------------------
# scenario changes
# --------------------------------------------------------------------------------------
#: attribute set on every stack variable that a scenario changed, directly or because it
#: is derived from a changed input (the value names what changed it)
CHANGED_ATTR = "scenario_changed_by"


def apply_change(arr: xr.DataArray, change) -> xr.DataArray:
    """A covariate with one scenario change's scale and offset applied, lazily.

    ``change`` has the attributes ``scale`` (multiply [-]) and ``offset`` (add, in the
    covariate's own units, e.g. MAAT + 2 degC), applied in that order; either may be
    ``None``, and ``change=None`` leaves the array as it is.  A change's ``file`` (a
    replacement raster) is read onto the stack's grid by the opener
    (:func:`permafrost.workflows.covariates.build_stack`) before this is applied.

    Parameters
    ----------
    arr : xarray.DataArray
        The covariate.
    change : object with ``scale`` and ``offset``, or None
        E.g. :class:`permafrost.config.CovariateChange`.

    Returns
    -------
    xarray.DataArray
        float32, with the name and attributes of ``arr``.
    """
    if change is None:
        return arr
    name, attrs = arr.name, dict(arr.attrs)
    out = arr
    if getattr(change, "scale", None) is not None:
        out = out * float(change.scale)
    if getattr(change, "offset", None) is not None:
        out = out + float(change.offset)
    out = out.astype(np.float32).rename(name)
    out.attrs = attrs
    return out


# --------------------------------------------------------------------------------------
# extraction at points
# --------------------------------------------------------------------------------------
@dataclass
class PointValues:
    """Covariate values at points (:func:`extract_at_points`)."""

    #: values of the kept points, one column per covariate in the stack's order
    values: pd.DataFrame
    #: which input points were kept (bool, one per input point)
    keep: np.ndarray
    #: number of dropped points per reason (``outside_grid``, ``nodata``)
    dropped: dict[str, int] = field(default_factory=dict)


@expects(ds="dataset", points="geodataframe")
def extract_at_points(ds: xr.Dataset, points, *, batch_size: int = 100_000,
                      source=None) -> PointValues:
    """Covariate values at points (the cell holding each point), batched; points off the
    grid or on no-data are dropped.

    The cell rule is :func:`permafrost.grid.sample_at_points` (the package's one way of
    reading a raster at points).

    Parameters
    ----------
    ds : xarray.Dataset
        Covariates on one grid (NumPy or Dask backed).
    points : geopandas.GeoDataFrame
        Point geometries with a CRS (reprojected to the stack's CRS).
    batch_size : int
        Points per batch (bounded memory for Dask-backed stacks).
    source : path-like, optional
        Stack path for messages.

    Returns
    -------
    PointValues
        Values of the kept points (columns in ``ds`` variable order), the keep mask over
        the input points, and the number of dropped points per reason.

    Raises
    ------
    CRSError
        The points have no CRS.
    DataError
        A covariate is no-data at every point inside the grid.
    """
    if points.crs is None:
        raise CRSError("the label points have no CRS", field="geometry",
                       fix="set the CRS of the labels file")
    geom = points.geometry
    if len(geom) and not (geom.geom_type == "Point").all():
        bad = int((geom.geom_type != "Point").sum())
        raise DataError(f"{bad} label geometries are not points", field="geometry",
                        fix="give point labels (e.g. from `permafrost labels`)")
    names = [str(v) for v in ds.data_vars]
    n = len(geom)
    sampled, inside = sample_at_points(ds[names], geom.x.to_numpy(), geom.y.to_numpy(),
                                       crs=points.crs, batch_size=batch_size)
    vals = sampled.astype(np.float32).reshape(n, len(names))
    idx = np.flatnonzero(inside)
    dropped: dict[str, int] = {}
    n_out = int((~inside).sum())
    if n_out:
        dropped["outside the covariate grid"] = n_out
    nan_in = np.isnan(vals[inside])
    for j, nm in enumerate(names):
        if len(idx) and nan_in[:, j].all():
            raise DataError(f"covariate {nm!r} is no-data at all {len(idx)} label points",
                            path=source, field=nm,
                            fix="check its extent and nodata value, or leave it out of the stack")
    first_nan = np.where(nan_in.any(axis=1), nan_in.argmax(axis=1), -1)
    for j, nm in enumerate(names):
        k = int((first_nan == j).sum())
        if k:
            dropped[f"no data in covariate {nm!r}"] = k
    keep = inside.copy()
    keep[idx] = first_nan < 0
    if dropped:
        log.warning("dropped %d of %d label points: %s", n - int(keep.sum()), n, dropped)
    df = pd.DataFrame(vals[keep], columns=names)
    return PointValues(values=df, keep=keep, dropped=dropped)

