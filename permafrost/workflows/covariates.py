"""Covariate stacks from files: the one opener of a covariate source.

:func:`build_stack` turns any covariate source into a lazy :class:`xarray.Dataset` on one
grid, with a scenario's changes applied; training, prediction, applicability and the
pipeline's steps all open covariates through it.  A source is

* an :class:`xarray.Dataset` (used as it is) or a callable ``f(chunks=...)`` returning
  one;
* a **directory of rasters** (one covariate per file, named by its stem) or a **list of
  raster files**;
* a **TOML stack file** that sets the target grid, the resampling of each covariate
  (bilinear for continuous, nearest for categorical) and the derived covariates
  (``slope``, ``aspect``, ``northness``, ``eastness``, ``pisr``, ``downscale_maat``,
  ``frost_number``); the format is documented in ``docs/method.md``.

The grid rule, the same for every caller: rasters read from files must already share one
grid (CRS, transform and shape; a difference is a :class:`~permafrost.errors.CRSError`
or :class:`~permafrost.errors.GridMismatchError`) unless a target grid is given -- the
``like`` raster for a directory or a list of files, the ``[grid]`` section of a stack file
-- and then every raster is warped to it (bilinear for a directory or a list; the stack
file's per-covariate resampling).

Categorical covariates (land cover, surface class): a raster whose GDAL metadata has
``kind=categorical`` (its ``classes`` tag, ``"1=bedrock;2=coarse debris;..."``, the class
table), or that has GDAL category names or a raster attribute table, is categorical; so is
a stack file's covariate with ``kind = "categorical"`` (and optional ``classes``).  Its
variable carries ``attrs["kind"] = "categorical"`` and ``attrs["classes"]`` (the table, ``""``
when none; parsed by :func:`permafrost.applicability.parse_class_table`) and is aligned with
nearest-neighbour resampling, never bilinear; a float raster (or one with a GDAL scale or
offset) declared categorical is refused (:func:`covariate_kind`).  Every other covariate read
from files carries ``attrs["kind"] = "continuous"``.

Everything stays lazy (Dask): rasters not on the target grid are read through a GDAL
warped VRT (the same warp as ``rio.reproject_match``, but chunk by chunk).  The derived
covariates are computed by :mod:`permafrost.covariates` (science, no file access).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import dask.array as da
import numpy as np
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS
from rasterio.enums import Resampling
from rasterio.vrt import WarpedVRT

from permafrost import climate
from permafrost.categorical import CATEGORICAL, CONTINUOUS
from permafrost.checks import expects
from permafrost.covariates import (
    CHANGED_ATTR,
    DERIVED_COVARIATES,
    apply_change,
)
from permafrost.defaults import CHUNK
from permafrost.errors import (
    ConfigError,
    CRSError,
    DataError,
    GridMismatchError,
    InputError,
    InputFileError,
    PermafrostError,
)
from permafrost.grid import Grid, grid_of, grids_equal
from permafrost.io.netcdf import is_netcdf, read_cell_elevation, read_climate_mean
from permafrost.io.rasters import (
    ONLY_BAND,
    RASTER_SUFFIXES,
    apply_scale_offset,
    check_raster,
    gdal_path,
    is_remote,
    raster_classes,
    read_raster,
    role_of,
    scale_offset,
)
from permafrost.io.rasters import file_stem as _stem_of
from permafrost.io.toml_files import read_toml
from permafrost.options import check_name

__all__ = ["build_stack", "read_stack_file", "align_raster", "changeable_inputs", "covariate_files",
           "stack_file_inputs", "covariate_kind"]

log = logging.getLogger(__name__)

_RESAMPLING = {"bilinear": Resampling.bilinear, "nearest": Resampling.nearest,
               "cubic": Resampling.cubic, "average": Resampling.average,
               "mode": Resampling.mode}


# --------------------------------------------------------------------------------------
# the opener
# --------------------------------------------------------------------------------------
@expects(source="covariates")
def build_stack(source, *, chunks=CHUNK, like=None,
                changes: Mapping | None = None) -> xr.Dataset:
    """A lazy covariate :class:`xarray.Dataset` from any covariate source.

    Parameters
    ----------
    source : xarray.Dataset, callable, path-like or sequence of path-like
        A Dataset (used as it is); a callable ``f(chunks=...)`` returning one; a directory
        of single-band rasters (one covariate per file, named by its stem); a list of
        raster files (named by their stems); or a ``.toml`` stack file.
    chunks : int, mapping or None
        Dask chunks of what is read from files, as in :func:`rioxarray.open_rasterio`
        (default: square chunks of :data:`permafrost.defaults.CHUNK` pixels a side;
        ``None``: read into memory, NumPy-backed).
    like : path-like, optional
        Target grid (a raster) for a directory or a list of files: every raster is
        aligned to it (bilinear; nearest neighbour for a categorical raster).
        Without it the rasters must share one grid.  A stack
        file sets its grid in its ``[grid]`` section; an in-memory source is on its own
        grid.
    changes : mapping, optional
        A scenario's covariate changes by input name (objects with ``offset``, ``scale``
        and ``file`` attributes, e.g. :class:`permafrost.config.CovariateChange`): a
        ``file`` replaces the covariate (aligned to the stack's grid, bilinear), then
        ``scale`` multiplies and ``offset`` adds (:func:`permafrost.covariates.apply_change`).
        In a stack file derived covariates are recomputed from changed inputs
        (:func:`read_stack_file`).  Changed variables carry the attribute
        :data:`permafrost.covariates.CHANGED_ATTR`.

    Returns
    -------
    xarray.Dataset
        One float32 variable per covariate, with CRS and transform; ``attrs["source"]``
        names the source.

    Raises
    ------
    InputFileError
        A missing source, a directory without rasters, a file that is neither a raster nor
        a stack file.
    InputError
        A callable that returns no Dataset, or ``like`` with an in-memory source.
    CRSError
        Rasters in different CRS and no target grid.
    GridMismatchError
        Rasters on different grids and no target grid.
    ConfigError
        A change of a covariate the source does not have, or a bad stack file.
    """
    if isinstance(source, xr.Dataset) or callable(source):
        return _in_memory(source, chunks=chunks, like=like, changes=changes)
    if isinstance(source, (str, os.PathLike)):
        p = Path(source)
        if not p.exists():
            raise InputFileError("covariates not found", path=p,
                                 fix="give a directory of GeoTIFFs or a stack .toml file")
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix.lower() in RASTER_SUFFIXES)
            if not files:
                raise InputFileError("no raster files in the covariate directory", path=p,
                                     fix="put one GeoTIFF per covariate there")
            ds = _read_files(files, where=p, chunks=chunks, like=like, changes=changes)
        elif p.suffix.lower() == ".toml":
            ds = read_stack_file(p, chunks=chunks, changes=changes)
        elif p.suffix.lower() in RASTER_SUFFIXES:
            ds = _read_files([p], where=p, chunks=chunks, like=like, changes=changes)
        else:
            raise InputFileError("not a directory, a raster or a .toml stack file", path=p,
                                 fix="give a directory of GeoTIFFs or a stack .toml file")
        _check_names(ds, p)
        ds.attrs["source"] = str(p)
        return ds
    files = [Path(f) for f in source]
    if not files:
        raise InputFileError("no covariate files given", field="covariates",
                             fix="give a directory of GeoTIFFs, raster files or a stack file")
    missing = [f for f in files if not f.exists()]
    if missing:
        raise InputFileError("covariate file not found", path=missing[0], fix="check the path")
    ds = _read_files(files, where=files[0].parent, chunks=chunks, like=like, changes=changes)
    _check_names(ds, files[0].parent)
    ds.attrs["source"] = ",".join(str(f) for f in files)
    return ds


def _check_names(ds: xr.Dataset, where) -> None:
    """Covariate names go into ``--features a,b`` and ``--monotone NAME=-1``: no ',' or '='."""
    for name in ds.data_vars:
        check_name(name, what="covariate", field="covariates", path=where)


def _in_memory(source, *, chunks, like, changes) -> xr.Dataset:
    """A Dataset given, or built by a callable, with the changes applied on its grid."""
    if like is not None:
        raise InputError("`like` aligns rasters read from files, not an in-memory stack",
                         field="like", fix="align the Dataset first (e.g. rio.reproject_match)")
    ds = source if isinstance(source, xr.Dataset) else source(chunks=chunks)
    if not isinstance(ds, xr.Dataset):
        raise InputError("the covariate builder did not return an xarray Dataset",
                         field="covariates", fix="return the stack as a Dataset")
    changes = dict(changes or {})
    if not changes:
        return ds
    _check_change_keys(changes, [str(v) for v in ds.data_vars], ds.attrs.get("source"))
    grid = grid_of(ds)
    out = ds.copy()
    for name, change in changes.items():
        out[name] = _mark_changed(_changed(ds[name], change, grid, chunks=chunks), [name])
    return out


def _read_files(files: list[Path], *, where: Path, chunks, like,
                changes: Mapping | None = None) -> xr.Dataset:
    """Rasters named by their stems on one grid: ``like``'s, else the one they share."""
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise DataError(f"two covariates are named {f.stem!r} ({seen[f.stem].name}, "
                            f"{f.name})", path=f, fix="rename or remove one of the files")
        seen[f.stem] = f
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
                    fix="write a stack TOML file with a [grid] section, or give the "
                        "covariates on one grid")
            if not grids_equal(first, other):
                raise GridMismatchError(
                    f"grid differs from {files[0].name} and no target grid is given", path=f,
                    fix="write a stack TOML file with a [grid] section, or give the "
                        "covariates on one grid")
    changes = dict(changes or {})
    _check_change_keys(changes, [f.stem for f in files], where)
    arrays = {}
    for f in files:
        kind = covariate_kind(f, name=f.stem)
        res = "nearest" if kind["kind"] == CATEGORICAL else "bilinear"
        arr = align_raster(f, grid, resampling=res, chunks=chunks, name=f.stem)
        arr.attrs.update(kind)
        if f.stem in changes:
            arr = _mark_changed(_changed(arr, changes[f.stem], grid, chunks=chunks,
                                         resampling=res), [f.stem])
        arrays[f.stem] = arr
    return _dataset(arrays, grid)


# --------------------------------------------------------------------------------------
# categorical or continuous
# --------------------------------------------------------------------------------------
#: resamplings that keep class codes (never averaged into a code that means another class)
_CLASS_RESAMPLING = ("nearest", "mode")


def covariate_kind(path, *, name: str, band: int | None = None, declared: str | None = None,
                   classes: str | None = None, where=None) -> dict:
    """The ``kind`` and ``classes`` attributes of a covariate read from ``path``.

    Categorical when ``declared`` says so (a stack file's ``kind``) or, with nothing
    declared, when the raster declares itself categorical
    (:func:`permafrost.io.rasters.raster_classes`: a ``kind=categorical`` tag, GDAL category
    names or a raster attribute table).  ``classes`` is the class table (``code=name;...``):
    the one given, else the raster's.  A categorical raster must hold integer codes: a float
    data type, or a GDAL scale/offset, is refused.

    Returns
    -------
    dict
        ``{"kind": "continuous"}`` or ``{"kind": "categorical", "classes": str}`` (the
        table, ``""`` when the raster has none).

    Raises
    ------
    DataError
        A categorical raster with a float data type or a scale/offset.
    """
    info = raster_classes(path, ONLY_BAND if band is None else int(band))
    kind = declared or (CATEGORICAL if info.categorical else CONTINUOUS)
    if kind != CATEGORICAL:
        return {"kind": CONTINUOUS}
    field = f"covariates.{name}.kind" if declared else name
    if np.dtype(info.dtype).kind not in "iu":
        raise DataError(f"categorical covariate {name!r} is stored as {info.dtype}: class codes "
                        "must be integers", path=where or path, field=field,
                        fix="write the class map as an integer raster (e.g. uint8), or "
                            "declare it kind = \"continuous\" in a stack file")
    if info.scaled:
        raise DataError(f"categorical covariate {name!r} has a GDAL scale/offset, which would "
                        "change its class codes", path=where or path, field=field,
                        fix="remove the scale and offset from the class map")
    return {"kind": CATEGORICAL, "classes": classes if classes is not None
            else (info.classes or "")}


# --------------------------------------------------------------------------------------
# one raster on a grid
# --------------------------------------------------------------------------------------
def _empty_like_grid(grid: Grid) -> xr.DataArray:
    x, y = grid.coords()
    data = da.zeros((grid.height, grid.width), dtype=np.float32,
                    chunks=(grid.height, grid.width))
    arr = xr.DataArray(data, dims=("y", "x"), coords={"y": y, "x": x})
    return arr.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


def align_raster(path, grid: Grid, *, resampling: str = "bilinear", chunks=CHUNK,
                 name: str | None = None, band: int | None = None,
                 role: str | None = None) -> xr.DataArray:
    """Read a covariate raster aligned to ``grid`` lazily (GDAL warped VRT), nodata as NaN,
    GDAL's scale and offset applied.

    The file passes the read checks of a covariate
    (:func:`permafrost.io.rasters.check_raster`): one band unless ``band`` names one, no
    undeclared sentinel, values in the plausible range of its ``role`` (by default the
    role its name implies, :func:`permafrost.io.rasters.role_of`), and not an output of
    this tool (a PZI, zones, uncertainty, extrapolation: they leak the target).

    Parameters
    ----------
    path : path-like
        Any raster GDAL reads, with a CRS; single-band unless ``band`` is given.
    grid : Grid
        Target grid.
    resampling : {"bilinear", "nearest", "cubic", "average", "mode"}
        Bilinear for continuous covariates, nearest (or mode) for categorical ones.
    chunks : int or mapping
        Dask chunks.
    name : str, optional
        Name (default: the file stem).
    band : int, optional
        The band to read (1-based) of a multi-band raster.
    role : str, optional
        A key of :data:`permafrost.io.rasters.PLAUSIBLE` (default: from the name).
    """
    p = gdal_path(path)  # local Path, or a /vsi*/ path or URL kept as given
    if resampling not in _RESAMPLING:
        raise ConfigError(f"unknown resampling {resampling!r}", path=p, field="resampling",
                          fix=f"use one of {sorted(_RESAMPLING)}")
    name = name or _stem_of(p)
    b = ONLY_BAND if band is None else int(band)
    check_raster(p, band=b, role=role or role_of(name), covariate=True, name=name)
    src_da = read_raster(p, name=name, chunks=chunks, band=b)
    if grids_equal(src_da, _empty_like_grid(grid)):
        return src_da.astype(np.float32)
    src = rasterio.open(p)
    vrt = WarpedVRT(src, crs=grid.crs, transform=grid.transform, width=grid.width,
                    height=grid.height, resampling=_RESAMPLING[resampling],
                    src_nodata=src.nodata, nodata=np.nan, dtype="float32")
    arr = rioxarray.open_rasterio(vrt, chunks=chunks, masked=True, lock=False)
    assert isinstance(arr, xr.DataArray)  # one raster, not subdatasets
    arr = arr.isel(band=int(b) - 1, drop=True).astype(np.float32)
    arr = apply_scale_offset(arr, *scale_offset(p, int(b)))
    arr = arr.assign_coords(x=grid.coords()[0], y=grid.coords()[1])
    arr.name = name or src_da.name
    arr.attrs = {"source": str(p), "resampling": resampling}
    return arr.rio.write_crs(grid.crs).rio.write_transform(grid.transform)


# --------------------------------------------------------------------------------------
# scenario changes
# --------------------------------------------------------------------------------------
def _changed(arr: xr.DataArray, change, grid: Grid, *, chunks=CHUNK,
             resampling: str = "bilinear") -> xr.DataArray:
    """``arr`` with one scenario change: its ``file`` read onto ``grid`` in its place
    (keeping the attributes), then its scale and offset
    (:func:`permafrost.covariates.apply_change`)."""
    if change is None:
        return arr
    if str(arr.attrs.get("kind", "")) == CATEGORICAL and (
            float(getattr(change, "offset", 0.0) or 0.0) != 0.0
            or float(getattr(change, "scale", 1.0) if getattr(change, "scale", None)
                     is not None else 1.0) != 1.0):
        raise ConfigError(f"a scenario cannot shift or scale the class codes of the "
                          f"categorical covariate {arr.name!r}", field=f"changes.{arr.name}",
                          fix="give the scenario's class map as a file (file = ...) instead")
    if getattr(change, "file", None) is not None:
        arr = align_raster(change.file, grid, resampling=resampling, chunks=chunks,
                           name=None if arr.name is None else str(arr.name)
                           ).assign_attrs(arr.attrs)
    return apply_change(arr, change)


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
        spec = read_toml(p, what="stack file")
    except (OSError, PermafrostError):  # read_stack_file reports it when the stack is built
        return []
    names = list(spec.get("covariates", {}))
    for name, d in spec.get("derived", {}).items():
        names.append(name)
        entry = DERIVED_COVARIATES.get(d.get("function", name)) if isinstance(d, dict) else None
        names += [f"{name}.{c.key}" for c in (entry.coarse if entry is not None else ())]
    return sorted(names)


def stack_file_inputs(source) -> list:
    """The files a stack file reads, resolved as :func:`read_stack_file` resolves them:
    ``[grid] like``, each covariate's ``path``, each ``downscale_maat`` entry's ``coarse``
    and ``coarse_elevation`` (remote ones as GDAL paths), without pixels read.

    For the pipeline's step keys (:mod:`permafrost.pipeline.engine`): a stack file's step
    is up to date only while these files are unchanged too.  What cannot be made out of a
    malformed file is left out; :func:`read_stack_file` reports it when the stack is built.
    """
    p = Path(source)
    try:
        spec = read_toml(p, what="stack file")
    except (OSError, PermafrostError):
        return []
    base, found = p.parent, []

    def table(key) -> dict:
        t = spec.get(key)
        return t if isinstance(t, dict) else {}

    if isinstance(table("grid").get("like"), str):
        found.append(_in_stack(base, table("grid")["like"]))
    for c in table("covariates").values():
        if isinstance(c, dict) and isinstance(c.get("path"), str):
            found.append(_in_stack(base, c["path"]))
    for name, d in table("derived").items():
        entry = DERIVED_COVARIATES.get(d.get("function", name)) if isinstance(d, dict) else None
        for key in (c.key for c in (entry.coarse if entry is not None else ())):
            if key in d and not isinstance(d[key], str):
                continue
            with contextlib.suppress(ConfigError):
                found.append(_coarse_source(d, key, base, p, name))
    return list(dict.fromkeys(found))


def covariate_files(source):
    """What a covariate source reads, for the output guard
    (:func:`permafrost.io.guard.check_outputs`): a stack file and every file it names
    (:func:`stack_file_inputs`), or the source itself (a folder, a file, a list of files;
    in-memory data is passed through and skipped by the guard)."""
    if isinstance(source, (str, os.PathLike)) and Path(source).suffix.lower() == ".toml":
        return [Path(source), *stack_file_inputs(source)]
    return source


# --------------------------------------------------------------------------------------
# stack files
# --------------------------------------------------------------------------------------
def _dataset(arrays: Mapping[str, xr.DataArray], grid: Grid) -> xr.Dataset:
    x, y = grid.coords()
    clean = {}
    for k, v in arrays.items():
        v = v.assign_coords(x=x, y=y)
        v = v.drop_vars([c for c in v.coords if c not in ("x", "y")])
        attrs = dict(v.attrs)
        attrs.setdefault("kind", CONTINUOUS)  # derived covariates are continuous
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
    if not is_netcdf(src):
        for k in _CLIMATE_FILE_KEYS:
            if k in d and (k != "elevation_variable") == (what == "maat_coarse"):
                raise ConfigError(f"`{k}` applies to NetCDF climate files only", path=stack,
                                  field=f"derived.{name}.{k}", fix="remove it, or give a .nc file")
        return read_raster(src, name=what, role="maat" if what == "maat_coarse" else "elevation")
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


def _roles(spec: Mapping) -> dict[str, str]:
    """The role of each covariate of a stack file (:data:`permafrost.io.rasters.PLAUSIBLE`):
    its name's (:func:`permafrost.io.rasters.role_of`), else what a derived covariate
    takes it as (:data:`permafrost.covariates.DERIVED_COVARIATES`: the ``dem`` of
    ``slope``, ``pisr`` or ``downscale_maat`` is an elevation)."""
    roles = {}
    for name in spec.get("covariates", {}):
        r = role_of(name)
        if r is not None:
            roles[name] = r
    for name, d in spec.get("derived", {}).items():
        if not isinstance(d, Mapping):
            continue
        entry = DERIVED_COVARIATES.get(d.get("function", name))
        for i in entry.inputs if entry is not None else ():
            ref = d.get(i.key, i.default)
            if isinstance(ref, str) and ref in spec.get("covariates", {}):
                roles.setdefault(ref, i.role)
    return roles


def read_stack_file(path, *, chunks=CHUNK, changes: Mapping | None = None
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
    spec = read_toml(p, what="stack file")
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
        firsts = [(_in_stack(base, c["path"]), c.get("band")) for c in covs.values()
                  if "path" in c]
        if not firsts:
            raise ConfigError("no [grid] and no covariate to take it from", path=p, field="grid",
                              fix="add [grid] like = RASTER")
        refs = [read_raster(f, chunks=chunks, band=b if isinstance(b, int) and b >= 1 else 1)
                for f, b in firsts]
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
    roles = _roles(spec)
    for name, c in covs.items():
        if "path" not in c:
            raise ConfigError("covariate has no path", path=p, field=f"covariates.{name}.path",
                              fix="give path = FILE")
        extra = set(c) - {"path", "resampling", "kind", "use", "band", "classes"}
        if extra:
            raise ConfigError(f"unknown key(s) {sorted(extra)}", path=p,
                              field=f"covariates.{name}",
                              fix="use path, band, resampling, kind, classes, use")
        band = c.get("band")
        if band is not None and (isinstance(band, bool) or not isinstance(band, int)
                                 or band < 1):
            raise ConfigError(f"band {band!r} is not a band number", path=p,
                              field=f"covariates.{name}.band", fix="give band = 1, 2, ...")
        declared = c.get("kind")
        if declared is not None and declared not in (CONTINUOUS, CATEGORICAL):
            raise ConfigError(f"unknown kind {declared!r}", path=p,
                              field=f"covariates.{name}.kind",
                              fix="use continuous or categorical")
        table = c.get("classes")
        if table is not None and not isinstance(table, str):
            raise ConfigError("classes is not a text like \"1=bedrock;2=coarse debris\"",
                              path=p, field=f"covariates.{name}.classes",
                              fix="give classes = \"CODE=NAME;CODE=NAME\"")
        src_path = _in_stack(base, c["path"])
        kind_attrs = covariate_kind(src_path, name=name, band=band, declared=declared,
                                    classes=table, where=p)
        kind = kind_attrs["kind"]
        if table is not None and kind != CATEGORICAL:
            raise ConfigError("classes given for a continuous covariate", path=p,
                              field=f"covariates.{name}.classes",
                              fix="add kind = \"categorical\" or remove classes")
        res = c.get("resampling", "nearest" if kind == CATEGORICAL else "bilinear")
        if kind == CATEGORICAL and res not in _CLASS_RESAMPLING:
            raise ConfigError(f"resampling {res!r} would mix the class codes of a categorical "
                              "covariate", path=p, field=f"covariates.{name}.resampling",
                              fix="use resampling = \"nearest\" (or \"mode\")")
        arrays[name] = align_raster(src_path, grid, resampling=res, chunks=chunks,
                                    name=name, band=band, role=roles.get(name))
        arrays[name].attrs.update(kind_attrs)
        deps[name] = {name}
        if name in changes:
            arrays[name] = _mark_changed(_changed(arrays[name], changes[name], grid,
                                                  chunks=chunks, resampling=res), [name])
        if not c.get("use", True):
            hidden.add(name)
    for name, d in spec.get("derived", {}).items():
        fn = d.get("function", name)
        if fn not in DERIVED_COVARIATES:
            raise ConfigError(f"unknown derived function {fn!r}", path=p,
                              field=f"derived.{name}.function",
                              fix=f"use one of {sorted(DERIVED_COVARIATES)}")

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
            return arr if ch is None else apply_change(arr, ch)

        entry = DERIVED_COVARIATES[fn]
        reserved = {"function", "use", *(i.key for i in entry.inputs),
                    *(c.key for c in entry.coarse), *(_CLIMATE_FILE_KEYS if entry.coarse else ())}
        opts = {k: v for k, v in d.items() if k not in reserved}
        try:
            grids = [coarse(c.key, c.what) for c in entry.coarse]
            if fn == "downscale_maat":  # reading-side preparation of the two coarse grids
                grids[1] = _same_cells(grids[0], grids[1])
                if opts.get("lapse_rate") == "fit":  # from the coarse cells themselves
                    opts["lapse_rate"] = _fitted_lapse_rate(grids[0], grids[1], p, name)
            grids += [ref(i.key, i.default) for i in entry.inputs]
            arrays[name] = entry.build(*grids, name=name, **opts)
            if entry.coarse:
                arrays[name].attrs.update({f"coarse_{k}": v for k, v in grids[0].attrs.items()
                                           if k in ("period", "years", "units_in_file",
                                                    "variable", "lapse_rate_fit")})
        except TypeError as exc:
            raise ConfigError(f"bad option ({exc})", path=p, field=f"derived.{name}",
                              fix="see docs/method.md for the options") from None
        except KeyError as exc:
            raise ConfigError(f"missing key {exc}", path=p, field=f"derived.{name}",
                              fix="see docs/method.md") from None
        deps[name] = used
        if name in changes:
            arrays[name] = _changed(arrays[name], changes[name], grid, chunks=chunks)
        _mark_changed(arrays[name], [k for k in changes if k in used])
        if not d.get("use", True):
            hidden.add(name)
    ds = _dataset({k: v for k, v in arrays.items() if k not in hidden}, grid)
    ds.attrs["source"] = str(p)
    return ds
