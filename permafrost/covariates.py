"""Covariate stacks: align rasters to one grid, add derived covariates, extract at points.

A stack comes from

* a **directory of GeoTIFFs** (one covariate per file, named by its stem) that already
  share one grid -- or, with ``like=RASTER``, are aligned to that raster's grid; or
* a **TOML stack file** that sets the target grid, the resampling of each covariate
  (bilinear for continuous, nearest for categorical) and the derived covariates
  (``slope``, ``aspect``, ``northness``, ``eastness``, ``pisr``, ``downscale_maat``,
  ``frost_number``); the format is documented in ``docs/method.md``.

Everything stays lazy (Dask): rasters not on the target grid are read through a GDAL
warped VRT (the same warp as ``rio.reproject_match``, but chunk by chunk), terrain
derivatives use ``map_overlap`` and the MAAT downscaling interpolates the coarse grid
block by block, so a stack larger than memory works.  The science lives in
:mod:`permafrost.terrain`, :mod:`permafrost.solar` and :mod:`permafrost.climate`; this
module only applies it to grids.
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Mapping
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from permafrost import climate, solar, terrain
from permafrost.errors import ConfigError, CRSError, DataError, GridMismatchError, InputFileError
from permafrost.grid import Grid, grid_of
from permafrost.io.rasters import RASTER_SUFFIXES, gdal_path, grids_equal, is_remote, read_raster

__all__ = [
    "build_stack",
    "read_stack_file",
    "grid_metadata",
    "align_raster",
    "cell_sizes",
    "latitudes",
    "slope_da",
    "aspect_da",
    "northness_da",
    "eastness_da",
    "pisr_da",
    "downscale_maat_da",
    "frost_number_da",
    "extract_at_points",
    "apply_change",
    "changeable_inputs",
    "CHANGED_ATTR",
    "DERIVED",
]

log = logging.getLogger(__name__)

DEFAULT_CHUNKS = 1024
_RESAMPLING = {"bilinear": Resampling.bilinear, "nearest": Resampling.nearest,
               "cubic": Resampling.cubic, "average": Resampling.average,
               "mode": Resampling.mode}


# --------------------------------------------------------------------------------------
# grids
# --------------------------------------------------------------------------------------
def grid_metadata(ds) -> dict:
    """JSON-ready description of a stack's grid (CRS WKT, transform, shape, resolution)."""
    g = grid_of(ds)
    return {"crs_wkt": g.crs.to_wkt(), "epsg": g.crs.to_epsg(), "transform": list(g.transform)[:6],
            "width": g.width, "height": g.height,
            "resolution": [abs(g.transform.a), abs(g.transform.e)]}


def _empty_like_grid(grid: Grid, chunks) -> xr.DataArray:
    x, y = grid.coords()
    data = da.zeros((grid.height, grid.width), dtype=np.float32, chunks=chunks)
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x})
    arr = arr.rio.write_crs(grid.crs).rio.write_transform(grid.transform)
    return arr


def _wrap(data, grid: Grid, name: str, attrs: Mapping | None = None) -> xr.DataArray:
    x, y = grid.coords()
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x}, name=name,
                       attrs=dict(attrs or {}))
    return arr.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def align_raster(path, grid: Grid, *, resampling: str = "bilinear", chunks=DEFAULT_CHUNKS,
                 name: str | None = None) -> xr.DataArray:
    """Read a raster aligned to ``grid`` lazily (GDAL warped VRT), nodata as NaN.

    Parameters
    ----------
    path : path-like
        Any single-band raster GDAL reads, with a CRS.
    grid : Grid
        Target grid.
    resampling : {"bilinear", "nearest", "cubic", "average", "mode"}
        Bilinear for continuous covariates, nearest (or mode) for categorical ones.
    chunks : int or mapping
        Dask chunks.
    name : str, optional
        Name (default: the file stem).
    """
    p = gdal_path(path)  # local Path, or a /vsi*/ path or URL kept as given
    if resampling not in _RESAMPLING:
        raise ConfigError(f"unknown resampling {resampling!r}", path=p, field="resampling",
                          fix=f"use one of {sorted(_RESAMPLING)}")
    src_da = read_raster(p, name=name, chunks=chunks)
    if grids_equal(src_da, _empty_like_grid(grid, chunks)):
        return src_da.astype(np.float32)
    src = rasterio.open(p)
    vrt = WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                    height=grid.height, resampling=_RESAMPLING[resampling],
                    src_nodata=src.nodata, nodata=np.nan, dtype="float32")
    arr = rioxarray.open_rasterio(vrt, chunks=chunks, masked=True, lock=False)
    arr = arr.isel(band=0, drop=True).astype(np.float32)
    arr = arr.assign_coords(x=grid.coords()[0], y=grid.coords()[1])
    arr.name = name or src_da.name
    arr.attrs = {"source": str(p), "resampling": resampling}
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
        d = da.from_array(np.asarray(d), chunks=DEFAULT_CHUNKS)
    return d


def _rowwise(values: np.ndarray, like: da.Array) -> da.Array:
    full = np.broadcast_to(values, like.shape)
    return da.from_array(np.ascontiguousarray(full[:, :1] if values.shape[1] == 1 else full),
                         chunks=(like.chunks[0], 1 if values.shape[1] == 1 else like.chunks[1]))


def _convergence_and_scale_da(grid: Grid, like: da.Array) -> tuple[da.Array, da.Array]:
    """Meridian convergence [deg] and scale factor [-] of a projected grid, block by block
    (:func:`permafrost.terrain.convergence_and_scale`), chunked like ``like``."""
    def part(which):
        def block(_b, block_info=None):
            (r0, r1), (c0, c1) = block_info[0]["array-location"]
            t = grid.transform @ Affine.translation(c0, r0)
            return terrain.convergence_and_scale(grid.crs, t, (r1 - r0, c1 - c0))[which]
        return da.map_blocks(block, like, dtype=np.float64)
    return part(0), part(1)


def _terrain_map(dem: xr.DataArray, fn, name: str, attrs: dict, depth: int = 1) -> xr.DataArray:
    """Apply a Horn-stencil terrain function block by block (halo ``depth``).

    ``fn(z, dx=, dy=, convergence=, scale=)``: geographic grids pass the per-row cell sizes
    on the ellipsoid and no convergence/scale; projected grids pass the pixel size and the
    meridian convergence and scale factor, so aspect is from true north
    (:mod:`permafrost.terrain`).
    """
    grid = grid_of(dem)
    dx, dy = cell_sizes(grid)
    z = _dask2d(dem).astype(np.float64)
    dxa = da.broadcast_to(_rowwise(dx, z), z.shape).rechunk(z.chunks)
    dya = da.broadcast_to(_rowwise(dy, z), z.shape).rechunk(z.chunks)
    if grid.crs.is_geographic:
        out = da.map_overlap(lambda a, b, c: fn(a, dx=b, dy=c), z, dxa, dya, depth=depth,
                             boundary="nearest", dtype=np.float64, trim=True)
    else:
        gam, k = _convergence_and_scale_da(grid, z)
        out = da.map_overlap(lambda a, b, c, g, s: fn(a, dx=b, dy=c, convergence=g, scale=s),
                             z, dxa, dya, gam, k, depth=depth, boundary="nearest",
                             dtype=np.float64, trim=True)
    out = da.where(da.isnan(z), np.nan, out).astype(np.float32)
    return _wrap(out, grid, name, attrs)


def slope_da(dem: xr.DataArray, *, name: str = "slope") -> xr.DataArray:
    """Slope [deg] of a DEM grid (Horn 1981), lazy; see :func:`permafrost.terrain.slope`."""
    return _terrain_map(dem, terrain.slope, name, {"units": "deg", "long_name": "slope (Horn 1981)"})


def aspect_da(dem: xr.DataArray, *, name: str = "aspect") -> xr.DataArray:
    """Aspect [deg, downslope, clockwise from true north], NaN on flat cells, lazy."""
    return _terrain_map(dem, terrain.aspect, name, {"units": "deg"})


def northness_da(dem: xr.DataArray, *, name: str = "northness") -> xr.DataArray:
    """cos(aspect) [-] of a DEM grid (0 on flat cells, NaN where the DEM is nodata)."""
    return _terrain_map(dem, lambda z, **kw: terrain.northness(terrain.aspect(z, **kw)),
                        name, {"units": "1"})


def eastness_da(dem: xr.DataArray, *, name: str = "eastness") -> xr.DataArray:
    """sin(aspect) [-] of a DEM grid (0 on flat cells, NaN where the DEM is nodata)."""
    return _terrain_map(dem, lambda z, **kw: terrain.eastness(terrain.aspect(z, **kw)),
                        name, {"units": "1"})


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


def _pisr_lut(lat_range, elev_range, *, transmissivity, day_step, time_step_h,
              slope_step=2.0, aspect_step=10.0, elev_step=500.0, lat_step=0.25):
    """Table of annual PISR over (lat, elevation, slope, aspect) nodes for interpolation."""
    from scipy.interpolate import RegularGridInterpolator  # noqa: PLC0415

    lat0, lat1 = lat_range
    nl = max(2, int(np.ceil((lat1 - lat0) / lat_step)) + 1)
    lats = np.linspace(lat0, lat1, nl) if lat1 > lat0 else np.array([lat0 - 0.01, lat0 + 0.01])
    e0, e1 = elev_range
    ne = max(2, int(np.ceil((e1 - e0) / elev_step)) + 1)
    elevs = np.linspace(e0, e1, ne) if e1 > e0 else np.array([e0 - 1.0, e0 + 1.0])
    slopes = np.arange(0.0, 90.0 + slope_step, slope_step)
    aspects = np.arange(0.0, 360.0 + aspect_step, aspect_step)
    L, E, S, A = np.meshgrid(lats, elevs, slopes, aspects, indexing="ij")
    vals = solar.pisr_annual(S, A, L, elevation_m=E, transmissivity=transmissivity,
                             day_step=day_step, time_step_h=time_step_h)
    return RegularGridInterpolator((lats, elevs, slopes, aspects), vals, bounds_error=False,
                                   fill_value=None)


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
        lut = _pisr_lut(lat_range, (zmin, zmax),
                        transmissivity=transmissivity, day_step=day_step,
                        time_step_h=time_step_h)

        def block(zb, sb, ab, lb):
            a = np.nan_to_num(ab, nan=0.0)
            pts = np.stack([lb.ravel(), zb.ravel(), sb.ravel(), a.ravel()], axis=-1)
            ok = np.all(np.isfinite(pts), axis=1)
            out = np.full(zb.size, np.nan)
            out[ok] = lut(pts[ok])
            return out.reshape(zb.shape)

        out = da.map_blocks(block, z, slp, asp, lat_full, dtype=np.float64)
    else:
        dx, dy = cell_sizes(grid)
        dxa = da.broadcast_to(_rowwise(dx, z), z.shape).rechunk(z.chunks)
        dya = da.broadcast_to(_rowwise(dy, z), z.shape).rechunk(z.chunks)
        halo = int(np.ceil(shading_distance_m / float(min(np.min(dx), np.min(dy)))))
        halo = min(halo, min(min(z.chunks[0]), min(z.chunks[1])))

        def block(zb, sb, ab, lb, xb, yb):
            hz = solar.horizon_angles(zb, dx=xb, dy=yb, n_directions=n_directions,
                                      max_distance_m=shading_distance_m)
            return solar.pisr_annual(sb, ab, lb, elevation_m=zb, transmissivity=transmissivity,
                                     day_step=day_step, time_step_h=time_step_h,
                                     horizon_deg=hz)

        out = da.map_overlap(block, z, slp, asp, lat_full, dxa, dya, depth=halo,
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


DERIVED = {"slope", "aspect", "northness", "eastness", "pisr", "downscale_maat", "frost_number"}


# --------------------------------------------------------------------------------------
# scenario changes
# --------------------------------------------------------------------------------------
#: attribute set on every stack variable that a scenario changed, directly or because it
#: is derived from a changed input (the value names what changed it)
CHANGED_ATTR = "scenario_changed_by"


def apply_change(arr: xr.DataArray, change, grid: Grid, *, chunks=DEFAULT_CHUNKS,
                 resampling: str = "bilinear") -> xr.DataArray:
    """A covariate with one scenario change applied, lazily.

    ``change`` has the attributes ``file`` (replace the values by another raster, aligned
    to ``grid``), ``scale`` (multiply) and ``offset`` (add, in the covariate's own units),
    applied in that order; ``None`` leaves the array as it is.
    """
    if change is None:
        return arr
    if getattr(change, "file", None) is not None:
        arr = align_raster(change.file, grid, resampling=resampling, chunks=chunks,
                           name=arr.name).assign_attrs(arr.attrs)
    return _scale_offset(arr, change)


def _scale_offset(arr: xr.DataArray, change) -> xr.DataArray:
    name, attrs = arr.name, dict(arr.attrs)
    out = arr
    if getattr(change, "scale", None) is not None:
        out = out * float(change.scale)
    if getattr(change, "offset", None) is not None:
        out = out + float(change.offset)
    out = out.astype(np.float32).rename(name)
    out.attrs = attrs
    return out


def _mark_changed(arr: xr.DataArray, by: list[str]) -> xr.DataArray:
    if by:
        arr.attrs[CHANGED_ATTR] = ",".join(sorted(set(by)))
    return arr


def _check_change_keys(changes: Mapping, valid: list[str], path) -> None:
    unknown = sorted(set(changes) - set(valid))
    if unknown:
        raise ConfigError(f"scenario changes {unknown}, which the stack does not have",
                          path=path, field="covariates",
                          fix=f"changeable inputs: {', '.join(valid)}")


def changeable_inputs(source) -> list[str]:
    """What a scenario may change in a covariate stack, without reading any pixel.

    A directory: its covariates (file stems).  A stack file: every covariate and derived
    covariate (also those with ``use = false``), and for each ``downscale_maat`` entry
    ``NAME.coarse`` and ``NAME.coarse_elevation`` (the coarse climate grid before
    downscaling).  Changing an input recomputes every covariate derived from it.
    """
    p = Path(source)
    if p.is_dir():
        return sorted(f.stem for f in p.iterdir() if f.suffix.lower() in RASTER_SUFFIXES)
    if p.suffix.lower() != ".toml":
        return [p.stem]
    try:
        spec = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return []
    names = list(spec.get("covariates", {}))
    for name, d in spec.get("derived", {}).items():
        names.append(name)
        if isinstance(d, dict) and d.get("function", name) == "downscale_maat":
            names += [f"{name}.coarse", f"{name}.coarse_elevation"]
    return sorted(names)


# --------------------------------------------------------------------------------------
# stacks
# --------------------------------------------------------------------------------------
def _read_dir(d: Path, *, chunks, like, changes: Mapping | None = None) -> xr.Dataset:
    files = sorted(f for f in d.iterdir() if f.suffix.lower() in RASTER_SUFFIXES)
    if not files:
        raise InputFileError("no raster files in the covariate directory", path=d,
                             fix="put one GeoTIFF per covariate there")
    if like is not None:
        grid = grid_of(read_raster(like, chunks=chunks))
    else:
        first = read_raster(files[0], chunks=chunks)
        grid = grid_of(first)
        for f in files[1:]:
            other = read_raster(f, chunks=chunks)
            ocrs = CRS.from_user_input(other.rio.crs)
            if ocrs != grid.crs:
                raise CRSError(
                    f"CRS {ocrs.to_string()} differs from {files[0].name} "
                    f"({grid.crs.to_string()}) and no target grid is given", path=f, field="crs",
                    fix="write a stack TOML file with a [grid] section (or pass --like RASTER)")
            if not grids_equal(first, other):
                raise GridMismatchError(
                    f"grid differs from {files[0].name} and no target grid is given", path=f,
                    fix="write a stack TOML file with a [grid] section (or pass --like RASTER)")
    changes = dict(changes or {})
    _check_change_keys(changes, [f.stem for f in files], d)
    arrays = {}
    for f in files:
        arr = align_raster(f, grid, resampling="bilinear", chunks=chunks, name=f.stem)
        if f.stem in changes:
            arr = _mark_changed(apply_change(arr, changes[f.stem], grid, chunks=chunks),
                                [f.stem])
        arrays[f.stem] = arr
    return _dataset(arrays, grid)


def _dataset(arrays: Mapping[str, xr.DataArray], grid: Grid) -> xr.Dataset:
    x, y = grid.coords()
    clean = {}
    for k, v in arrays.items():
        v = v.assign_coords(x=x, y=y)
        v = v.drop_vars([c for c in v.coords if c not in ("x", "y")])
        attrs = dict(v.attrs)
        clean[k] = v.astype(np.float32)
        clean[k].attrs = attrs
    ds = xr.Dataset(clean)
    return ds.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def _grid_from_spec(spec: Mapping, base: Path, path: Path, chunks) -> Grid | None:
    if not spec:
        return None
    if "like" in spec:
        also = [k for k in ("crs", "resolution", "bounds") if k in spec]
        if also:  # `like` fixes the whole grid: the other keys would be silently ignored
            raise ConfigError(f"[grid] gives `like` and also {', '.join(also)}", path=path,
                              field=f"grid.{also[0]}",
                              fix="give either `like = RASTER` or `crs`, `resolution` and "
                                  "`bounds`, not both")
        return grid_of(read_raster(_in_stack(base, spec["like"]), chunks=chunks))
    try:
        crs = CRS.from_user_input(spec["crs"])
        res = spec["resolution"]
        rx, ry = (float(res), float(res)) if not isinstance(res, list) else map(float, res)
        xmin, ymin, xmax, ymax = (float(v) for v in spec["bounds"])
    except KeyError as exc:
        raise ConfigError(f"[grid] lacks {exc}", path=path, field="grid",
                          fix="give `like = RASTER` or `crs`, `resolution` and `bounds`") from None
    except Exception as exc:  # noqa: BLE001 - pyproj/TOML value errors
        raise ConfigError(f"invalid [grid] ({exc})", path=path, field="grid",
                          fix="check crs, resolution and bounds") from None
    w = int(round((xmax - xmin) / rx))
    h = int(round((ymax - ymin) / ry))
    if w <= 0 or h <= 0:
        raise ConfigError("empty grid (check bounds order xmin, ymin, xmax, ymax)", path=path,
                          field="grid.bounds", fix="give bounds as [xmin, ymin, xmax, ymax]")
    return Grid(crs, Affine(rx, 0.0, xmin, 0.0, -ry, ymax), (h, w))


def _in_stack(base: Path, path: str):
    """A path of a stack file: relative to the file, or a remote raster (``/vsicurl/...``,
    ``s3://...``) as written."""
    return gdal_path(path) if is_remote(path) else base / path


#: keys of a ``downscale_maat`` entry that say how to read NetCDF climate files
_CLIMATE_FILE_KEYS = ("variable", "period", "elevation_variable")


def _coarse_source(d: Mapping, key: str, base: Path, stack: Path, name: str) -> Path:
    """The file of ``coarse`` or ``coarse_elevation``; the elevation defaults to the
    climate file itself when that is NetCDF (HISTALP carries ``hgt``)."""
    from permafrost.io.netcdf import is_netcdf

    if key in d:
        return base / d[key]
    if key == "coarse_elevation" and "coarse" in d and is_netcdf(d["coarse"]):
        return base / d["coarse"]
    raise ConfigError(f"missing key '{key}'", path=stack, field=f"derived.{name}",
                      fix="give the coarse MAAT grid and the elevations [m] of its cells")


def _read_coarse(src, what: str, d: Mapping, stack: Path, name: str) -> xr.DataArray:
    """A coarse climate grid: a raster as it is, or from NetCDF through xarray
    (:mod:`permafrost.io.netcdf`): the mean of ``variable`` over ``period`` [degC], or the
    cell elevation from ``elevation_variable`` [m] (``hgt``, or geopotential / g)."""
    from permafrost.io.netcdf import is_netcdf, read_cell_elevation, read_climate_mean

    if not is_netcdf(src):
        for k in _CLIMATE_FILE_KEYS:
            if k in d and (k != "elevation_variable") == (what == "maat_coarse"):
                raise ConfigError(f"`{k}` applies to NetCDF climate files only", path=stack,
                                  field=f"derived.{name}.{k}", fix="remove it, or give a .nc file")
        return read_raster(src, name=what)
    if what == "maat_coarse":
        return read_climate_mean(src, variable=d.get("variable"), period=d.get("period"))
    return read_cell_elevation(src, variable=d.get("elevation_variable"))


def _same_cells(cm: xr.DataArray, ce: xr.DataArray) -> xr.DataArray:
    """The elevation grid on the MAAT grid's coordinates when both describe the same cells
    but were written with different float precision (ERA5 float32 lon/lat)."""
    if grids_equal(cm, ce) or cm.shape != ce.shape or cm.rio.crs != ce.rio.crs:
        return ce
    ta, tb = cm.rio.transform(), ce.rio.transform()
    if all(abs(a - b) <= 1e-4 * max(abs(ta.a), 1e-12) + 1e-6 for a, b in zip(ta[:6], tb[:6])):
        return ce.assign_coords(x=cm.x, y=cm.y).rio.write_transform(ta)
    return ce


def _fitted_lapse_rate(cm: xr.DataArray, ce: xr.DataArray, stack: Path, name: str) -> float:
    """Lapse rate [degC m-1]: least squares of coarse-cell MAAT on cell elevation
    (:func:`permafrost.climate.estimate_lapse_rate`, Rolland 2003), refused outside
    -10..0 degC/km, recorded on the MAAT array."""
    t = np.asarray(cm.values, dtype=np.float64)
    z = np.asarray(ce.values, dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(z)
    if ok.sum() < 4 or np.ptp(z[ok]) < 100.0:
        raise ConfigError(f"cannot fit a lapse rate from {int(ok.sum())} coarse cells spanning "
                          f"{np.ptp(z[ok]) if ok.any() else 0:.0f} m", path=stack,
                          field=f"derived.{name}.lapse_rate",
                          fix="give a number (e.g. -0.0055 degC/m) or a larger climate grid")
    rate, se = climate.estimate_lapse_rate(t[ok], z[ok])
    if not -0.010 <= rate <= 0.0:
        raise DataError(f"the lapse rate fitted over the coarse cells is {rate * 1000:.2f} "
                        "degC/km, outside -10..0 degC/km", path=stack,
                        field=f"derived.{name}.lapse_rate",
                        fix="check the elevation units, or give a number")
    cm.attrs["lapse_rate_fit"] = (f"{rate * 1000:.3f} ± {se * 1000:.3f} degC/km over "
                                  f"{int(ok.sum())} cells")
    log.info("%s: lapse rate fitted over the coarse grid %.2f ± %.2f degC/km", name,
             rate * 1000, se * 1000)
    return rate


def read_stack_file(path, *, chunks=DEFAULT_CHUNKS, changes: Mapping | None = None
                    ) -> xr.Dataset:
    """Build a stack from a TOML stack file (format in ``docs/method.md``).

    ``changes`` (a scenario's, by :func:`changeable_inputs` name) are applied where each
    input enters the stack, so every derived covariate is computed from the changed
    inputs: a warmer coarse climate grid (``maat.coarse``) gives a warmer downscaled
    MAAT, a changed DDT a changed frost number.  A change named after a derived covariate
    applies to its result.  Changed variables carry the attribute :data:`CHANGED_ATTR`.

    Raises
    ------
    ConfigError
        Unknown keys, functions or references; no grid where the inputs disagree.
    """
    p = Path(path)
    try:
        spec = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError("stack file not found", path=p, fix="check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML ({exc})", path=p, fix="fix the syntax") from None
    unknown = set(spec) - {"grid", "covariates", "derived"}
    if unknown:
        raise ConfigError(f"unknown section(s) {sorted(unknown)}", path=p,
                          fix="use [grid], [covariates.NAME] and [derived.NAME]")
    base = p.parent
    chunks = spec.get("grid", {}).get("chunks", chunks)
    grid = _grid_from_spec({k: v for k, v in spec.get("grid", {}).items() if k != "chunks"},
                           base, p, chunks)
    covs = spec.get("covariates", {})
    if grid is None:
        firsts = [_in_stack(base, c["path"]) for c in covs.values() if "path" in c]
        if not firsts:
            raise ConfigError("no [grid] and no covariate to take it from", path=p, field="grid",
                              fix="add [grid] like = RASTER")
        refs = [read_raster(f, chunks=chunks) for f in firsts]
        crss = {CRS.from_user_input(r.rio.crs).to_string() for r in refs}
        if len(crss) > 1:
            raise CRSError(f"covariates have different CRS {sorted(crss)} and no target grid",
                           path=p, field="grid", fix="add a [grid] section (like = RASTER)")
        if not all(grids_equal(refs[0], r) for r in refs[1:]):
            raise GridMismatchError("covariates are on different grids and no target grid "
                                    "is set", path=p, field="grid",
                                    fix="add a [grid] section (like = RASTER)")
        grid = grid_of(refs[0])
    changes = dict(changes or {})
    if changes:
        _check_change_keys(changes, changeable_inputs(p), p)
    arrays: dict[str, xr.DataArray] = {}
    deps: dict[str, set[str]] = {}  # the changeable inputs each covariate is computed from
    hidden: set[str] = set()
    for name, c in covs.items():
        if "path" not in c:
            raise ConfigError("covariate has no path", path=p, field=f"covariates.{name}.path",
                              fix="give path = FILE")
        extra = set(c) - {"path", "resampling", "kind", "use"}
        if extra:
            raise ConfigError(f"unknown key(s) {sorted(extra)}", path=p,
                              field=f"covariates.{name}", fix="use path, resampling, kind, use")
        kind = c.get("kind", "continuous")
        if kind not in ("continuous", "categorical"):
            raise ConfigError(f"unknown kind {kind!r}", path=p, field=f"covariates.{name}.kind",
                              fix="use continuous or categorical")
        res = c.get("resampling", "nearest" if kind == "categorical" else "bilinear")
        arrays[name] = align_raster(_in_stack(base, c["path"]), grid, resampling=res, chunks=chunks,
                                    name=name)
        deps[name] = {name}
        if name in changes:
            arrays[name] = _mark_changed(apply_change(arrays[name], changes[name], grid,
                                                      chunks=chunks, resampling=res), [name])
        if not c.get("use", True):
            hidden.add(name)
    for name, d in spec.get("derived", {}).items():
        fn = d.get("function", name)
        if fn not in DERIVED:
            raise ConfigError(f"unknown derived function {fn!r}", path=p,
                              field=f"derived.{name}.function", fix=f"use one of {sorted(DERIVED)}")

        used: set[str] = {name}

        def ref(key, default=None, _d=d, _name=name, _used=used):
            r = _d.get(key, default)
            if r is None or r not in arrays:
                raise ConfigError(f"refers to {r!r}, which is not a covariate defined above",
                                  path=p, field=f"derived.{_name}.{key}",
                                  fix=f"defined so far: {sorted(arrays)}")
            _used.update(deps[r])
            return arrays[r]

        def coarse(key, what, _d=d, _name=name, _used=used):
            _used.add(f"{_name}.{key}")
            ch = changes.get(f"{_name}.{key}")
            src = ch.file if ch is not None and getattr(ch, "file", None) is not None \
                else _coarse_source(_d, key, base, p, _name)
            arr = _read_coarse(src, what, _d, p, _name)  # replaced on its own grid
            return arr if ch is None else _scale_offset(arr, ch)

        opts = {k: v for k, v in d.items() if k not in ("function", "dem", "use", "coarse",
                                                          "coarse_elevation", "ddf", "ddt",
                                                          *_CLIMATE_FILE_KEYS)}
        try:
            if fn in ("slope", "aspect", "northness", "eastness"):
                f = {"slope": slope_da, "aspect": aspect_da, "northness": northness_da,
                     "eastness": eastness_da}[fn]
                arrays[name] = f(ref("dem", "dem"), name=name, **opts)
            elif fn == "pisr":
                arrays[name] = pisr_da(ref("dem", "dem"), name=name, **opts)
            elif fn == "downscale_maat":
                cm = coarse("coarse", "maat_coarse")
                ce = _same_cells(cm, coarse("coarse_elevation", "elevation_coarse"))
                if opts.get("lapse_rate") == "fit":  # from the coarse cells themselves
                    opts["lapse_rate"] = _fitted_lapse_rate(cm, ce, p, name)
                arrays[name] = downscale_maat_da(cm, ce, ref("dem", "dem"), name=name, **opts)
                arrays[name].attrs.update({f"coarse_{k}": v for k, v in cm.attrs.items()
                                           if k in ("period", "years", "units_in_file",
                                                    "variable", "lapse_rate_fit")})
            elif fn == "frost_number":
                arrays[name] = frost_number_da(ref("ddf"), ref("ddt"), name=name, **opts)
        except TypeError as exc:
            raise ConfigError(f"bad option ({exc})", path=p, field=f"derived.{name}",
                              fix="see docs/method.md for the options") from None
        except KeyError as exc:
            raise ConfigError(f"missing key {exc}", path=p, field=f"derived.{name}",
                              fix="see docs/method.md") from None
        deps[name] = used
        if name in changes:
            arrays[name] = apply_change(arrays[name], changes[name], grid, chunks=chunks)
        _mark_changed(arrays[name], [k for k in changes if k in used])
        if not d.get("use", True):
            hidden.add(name)
    ds = _dataset({k: v for k, v in arrays.items() if k not in hidden}, grid)
    ds.attrs["source"] = str(p)
    return ds


def build_stack(source, *, chunks=DEFAULT_CHUNKS, like=None,
                changes: Mapping | None = None) -> xr.Dataset:
    """A lazy covariate :class:`xarray.Dataset` from a directory of rasters or a TOML file.

    Parameters
    ----------
    source : path-like
        Directory of single-band rasters (one covariate per file, named by its stem) or
        a ``.toml`` stack file.
    chunks : int or mapping
        Dask chunks.
    like : path-like, optional
        For a directory: align every raster to this raster's grid (bilinear).
    changes : mapping, optional
        A scenario's covariate changes by input name (objects with ``offset``, ``scale``
        and ``file`` attributes, e.g. :class:`permafrost.config.CovariateChange`); in a
        stack file derived covariates are recomputed from changed inputs
        (:func:`read_stack_file`).

    Raises
    ------
    CRSError
        Directory rasters in different CRS and no target grid.
    GridMismatchError
        Directory rasters on different grids and no target grid.
    """
    p = Path(source)
    if not p.exists():
        raise InputFileError("covariates not found", path=p,
                             fix="give a directory of GeoTIFFs or a stack .toml file")
    if p.is_dir():
        ds = _read_dir(p, chunks=chunks, like=like, changes=changes)
    elif p.suffix.lower() == ".toml":
        ds = read_stack_file(p, chunks=chunks, changes=changes)
    else:
        raise InputFileError("not a directory or a .toml stack file", path=p,
                             fix="give a directory of GeoTIFFs or a stack .toml file")
    ds.attrs["source"] = str(p)
    return ds


# --------------------------------------------------------------------------------------
# extraction at points
# --------------------------------------------------------------------------------------
def extract_at_points(ds: xr.Dataset, points, *, batch_size: int = 100_000,
                      source=None) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """Covariate values at points (nearest cell), batched; points on no-data are dropped.

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
    (pandas.DataFrame, ndarray of bool, dict)
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
    grid = grid_of(ds)
    g = geom.to_crs(grid.crs) if CRS.from_user_input(points.crs) != grid.crs else geom
    x, y = g.x.to_numpy(), g.y.to_numpy()
    inv = ~grid.transform
    col_f = inv.a * x + inv.b * y + inv.c
    row_f = inv.d * x + inv.e * y + inv.f
    col = np.floor(np.asarray(col_f)).astype(np.int64)
    row = np.floor(np.asarray(row_f)).astype(np.int64)
    inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width) & np.isfinite(x)
    names = [str(v) for v in ds.data_vars]
    n = len(x)
    vals = np.full((n, len(names)), np.nan, dtype=np.float32)
    idx = np.flatnonzero(inside)
    for start in range(0, len(idx), batch_size):
        sel = idx[start:start + batch_size]
        r, c = row[sel], col[sel]
        for j, nm in enumerate(names):
            arr = ds[nm].data
            if isinstance(arr, da.Array):
                vals[sel, j] = arr.vindex[r, c].compute()
            else:
                vals[sel, j] = np.asarray(arr)[r, c]
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
    return df, keep, dropped

