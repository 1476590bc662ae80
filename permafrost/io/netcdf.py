"""NetCDF / CF climate grids in: one 2-D field with its CRS, in the package's units.

No science beyond unit conversion and a time mean: a monthly (or daily) temperature grid
such as ERA5-Land ``t2m`` [K] or HISTALP ``temp`` [°C] becomes its mean over a chosen
period [°C]; a cell-elevation grid becomes metres, from ``hgt``/``orog`` [m] or from the
geopotential [m2 s-2] divided by standard gravity.  The CRS comes from the variable's CF
``grid_mapping`` or, for lon/lat grids, is WGS84.  The downscaling onto a DEM lives in
:mod:`permafrost.covariates` and :mod:`permafrost.climate`.

References
----------
Eaton, B. et al. (2022). NetCDF Climate and Forecast (CF) Metadata Conventions, v1.10
(``units``, ``standard_name``, ``grid_mapping``, coordinate ``axis`` attributes).

WMO (1988). Technical Regulations, Vol. I, WMO-No. 49: standard gravity
g0 = 9.80665 m s-2 (geopotential height = geopotential / g0).

WMO (2017). WMO Guidelines on the Calculation of Climate Normals, WMO-No. 1203 (a normal is
the mean of complete years; monthly means are weighted by the number of days).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS

from permafrost.errors import CRSError, DataError, InputFileError

__all__ = [
    "NETCDF_SUFFIXES",
    "STANDARD_GRAVITY",
    "is_netcdf",
    "open_netcdf",
    "read_climate_mean",
    "read_cell_elevation",
    "describe_netcdf",
]

log = logging.getLogger(__name__)

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")

#: standard gravity g0 [m s-2] (WMO 1988): geopotential [m2 s-2] / g0 = geopotential height [m]
STANDARD_GRAVITY = 9.80665

_X_NAMES = ("lon", "longitude", "x", "rlon", "nav_lon", "easting")
_Y_NAMES = ("lat", "latitude", "y", "rlat", "nav_lat", "northing")
#: temperature variables recognised when none is named (first match)
_TEMPERATURE_NAMES = ("t2m", "tas", "temp", "tmean", "tg", "air_temperature", "t", "temperature",
                      "tavg", "mat", "maat")
_ELEVATION_NAMES = ("hgt", "orog", "elevation", "height", "altitude", "z", "surface_altitude",
                    "geopotential", "zs", "elev")
_KELVIN = {"k", "kelvin", "kelvins", "degk", "deg_k"}
_CELSIUS = {"degc", "deg_c", "deg c", "celsius", "degree_celsius", "deg_celsius", "°c", "c",
            "degreec", "degree_c"}
_METRES = {"m", "metre", "metres", "meter", "meters", "m_asl", "m a.s.l.", "gpm"}
_GEOPOTENTIAL = {"m2 s-2", "m**2 s**-2", "m^2 s^-2", "m2/s2", "m2s-2", "m^2/s^2"}


def is_netcdf(path) -> bool:
    """True for a NetCDF file name (``.nc``, ``.nc4``, ``.cdf``, ``.netcdf``)."""
    return str(path).lower().endswith(NETCDF_SUFFIXES)


def _fold(units) -> str:
    return " ".join(str(units).strip().lower().replace("degrees", "deg").split()) \
        if units is not None else ""


def open_netcdf(path: str | os.PathLike) -> xr.Dataset:
    """Open a NetCDF file lazily with xarray (h5netcdf, else netCDF4 or SciPy for classic files).

    Times are decoded when they can be; a calendar or unit that NumPy cannot hold leaves
    them as numbers (``time_decoded = False`` in ``attrs``) instead of failing with
    xarray's advice.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    errors = []
    for engine in ("h5netcdf", "netcdf4", "scipy"):
        for decode in (True, False):
            try:
                ds = xr.open_dataset(p, engine=engine, decode_times=decode, chunks={})
            except ValueError as exc:
                # a time that cannot be decoded: try again without decoding
                if decode and "time" in str(exc).lower():
                    continue
                errors.append(f"{engine}: {str(exc).splitlines()[0]}")
                break
            except (OSError, ImportError, TypeError, RuntimeError) as exc:
                errors.append(f"{engine}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
                break
            ds.attrs["time_decoded"] = str(decode)
            ds.attrs["source"] = str(p)
            return ds
    raise InputFileError(f"not a readable NetCDF file ({errors[0] if errors else 'unknown'})",
                         path=p, fix="give a NetCDF-4 or classic NetCDF file")


def _spatial_dims(da: xr.DataArray, ds: xr.Dataset, path) -> tuple[str, str]:
    """The (y, x) dimension names of a variable, from CF ``axis``, units or usual names."""
    ydim = xdim = None
    for d in da.dims:
        c = ds[d] if d in ds.variables else None
        attrs = c.attrs if c is not None else {}
        axis = str(attrs.get("axis", "")).upper()
        units = _fold(attrs.get("units"))
        std = str(attrs.get("standard_name", ""))
        name = str(d).lower()
        if axis == "X" or units in ("deg_east", "degree_east", "deg_e", "degrees_east") \
                or std in ("longitude", "projection_x_coordinate", "grid_longitude") \
                or name in _X_NAMES:
            xdim = d
        elif axis == "Y" or units in ("deg_north", "degree_north", "deg_n", "degrees_north") \
                or std in ("latitude", "projection_y_coordinate", "grid_latitude") \
                or name in _Y_NAMES:
            ydim = d
    if xdim is None or ydim is None:
        raise DataError(f"cannot tell the x/y dimensions among {list(da.dims)}", path=path,
                        field=str(da.name), fix="give CF coordinates (axis X/Y, or lon/lat "
                        "with units degrees_east/degrees_north)")
    return str(ydim), str(xdim)  # netCDF dimension names are strings


def _crs_of(da: xr.DataArray, ds: xr.Dataset, xdim: str, path) -> CRS:
    """CRS from the CF ``grid_mapping`` variable, else WGS84 for lon/lat coordinates."""
    gm = da.attrs.get("grid_mapping") or da.encoding.get("grid_mapping")
    if gm:
        name = str(gm).split(":")[0].strip()
        if name not in ds.variables:
            raise CRSError(f"grid_mapping {name!r} is not a variable of the file", path=path,
                           field=str(da.name), fix="include the grid-mapping variable")
        attrs = dict(ds[name].attrs)
        try:
            return CRS.from_cf(attrs)
        except Exception:  # noqa: BLE001 - pyproj raises several kinds
            for key in ("crs_wkt", "spatial_ref"):
                if key in attrs:
                    return CRS.from_user_input(attrs[key])
            raise CRSError(f"grid_mapping {name!r} does not describe a CRS pyproj knows",
                           path=path, field=name, fix="add crs_wkt to it") from None
    units = _fold(ds[xdim].attrs.get("units")) if xdim in ds.variables else ""
    std = str(ds[xdim].attrs.get("standard_name", "")) if xdim in ds.variables else ""
    if units.startswith("deg") or std == "longitude" or str(xdim).lower() in (
            "lon", "longitude", "nav_lon"):
        return CRS.from_epsg(4326)
    raise CRSError("no grid_mapping and the coordinates are not lon/lat", path=path,
                   field=str(da.name), fix="add a CF grid_mapping variable (or crs_wkt)")


def _pick_variable(ds: xr.Dataset, variable: str | None, wanted, path, what: str) -> str:
    names = [str(v) for v in ds.data_vars]
    if variable is not None:
        if variable in names:
            return variable
        lower = {n.lower(): n for n in names}
        if variable.lower() in lower:
            return lower[variable.lower()]
        raise DataError(f"no variable {variable!r} (variables: {', '.join(names)})", path=path,
                        field=variable, fix="name one of the file's variables")
    lower = {n.lower(): n for n in names}
    for w in wanted:
        if w in lower:
            return lower[w]
    for n in names:  # by CF standard name
        if str(ds[n].attrs.get("standard_name", "")).lower() in wanted:
            return n
    raise DataError(f"no {what} variable found (looked for {', '.join(wanted)}; variables: "
                    f"{', '.join(names)})", path=path, field="variable",
                    fix=f"name the {what} variable (variable = \"NAME\")")


def _to_grid(da: xr.DataArray, ds: xr.Dataset, path) -> xr.DataArray:
    """A 2-D (y, x) array with north-up rows, longitudes in -180..180 and its CRS written."""
    ydim, xdim = _spatial_dims(da, ds, path)
    crs = _crs_of(da, ds, xdim, path)
    extra = [d for d in da.dims if d not in (ydim, xdim)]
    for d in extra:
        if da.sizes[d] != 1:
            raise DataError(f"has a dimension {d!r} of size {da.sizes[d]} besides x/y", path=path,
                            field=str(da.name), fix="select one level, or give a 2-D field")
    da = da.squeeze(extra, drop=True).transpose(ydim, xdim)
    da = da.rename({ydim: "y", xdim: "x"})
    da = da.drop_vars([c for c in da.coords if c not in ("x", "y")])
    if crs.is_geographic and float(da.x.max()) > 180:
        da = da.assign_coords(x=((da.x + 180) % 360) - 180)
    da = da.sortby("x").sortby("y", ascending=False)
    x, y = np.asarray(da.x, dtype=np.float64), np.asarray(da.y, dtype=np.float64)
    if len(x) > 1 and not np.allclose(np.diff(x), x[1] - x[0], rtol=1e-3, atol=0):
        raise DataError("x coordinates are not evenly spaced", path=path, field="x",
                        fix="give a regular grid")
    if len(y) > 1 and not np.allclose(np.diff(y), y[1] - y[0], rtol=1e-3, atol=0):
        raise DataError("y coordinates are not evenly spaced", path=path, field="y",
                        fix="give a regular grid")
    da = da.assign_coords(x=x, y=y).astype(np.float64)
    da = da.rio.set_spatial_dims(x_dim="x", y_dim="y").rio.write_crs(crs)
    return da.rio.write_transform(da.rio.transform(recalc=True))


def _period(period) -> tuple[int, int] | None:
    if period is None:
        return None
    if isinstance(period, (list, tuple)) and len(period) == 2:
        a, b = period
    else:
        m = re.fullmatch(r"\s*(\d{4})\s*[-/:]\s*(\d{4})\s*", str(period))
        if not m:
            raise DataError(f"period {period!r} is not YEAR-YEAR", field="period",
                            fix='give e.g. period = "1981-2010" or [1981, 2010]')
        a, b = m.groups()
    a, b = int(a), int(b)
    if b < a:
        raise DataError(f"period {period!r} ends before it starts", field="period",
                        fix="give first year, last year")
    return a, b


def _temperature_to_celsius(da: xr.DataArray, path) -> xr.DataArray:
    units = _fold(da.attrs.get("units"))
    if units in _KELVIN:
        out = da - 273.15
    elif units in _CELSIUS:
        out = da
    elif units in ("degf", "deg_f", "fahrenheit"):
        out = (da - 32.0) * 5.0 / 9.0
    else:
        raise DataError(f"temperature units {da.attrs.get('units')!r} are not known",
                        path=path, field=f"{da.name}.units",
                        fix="set the units attribute to K or degC")
    out.attrs = {**da.attrs, "units": "degC", "units_in_file": str(da.attrs.get("units"))}
    return out


def read_climate_mean(
    path: str | os.PathLike,
    *,
    variable: str | None = None,
    period=None,
) -> xr.DataArray:
    """Mean air temperature [°C] over a period from a gridded CF NetCDF file.

    Parameters
    ----------
    path : path-like
        NetCDF file with a (time, y, x) temperature variable, e.g. ERA5-Land monthly
        ``t2m`` [K] or HISTALP ``temp`` [°C].
    variable : str, optional
        Variable name (default: the first of t2m, tas, temp, tmean, ... or a variable whose
        ``standard_name`` is ``air_temperature``).
    period : str or (int, int), optional
        Years to average, inclusive (``"1981-2010"``); default: every complete year.

    Returns
    -------
    xarray.DataArray
        2-D (y, x) mean temperature [°C] with the CRS (CF ``grid_mapping`` or WGS84), north-up.
        ``attrs`` record the variable, period, number of years and the units in the file.

    Notes
    -----
    Monthly values are weighted by the days in each month and only complete calendar years
    (12 months) are used (WMO 2017); a requested period that is not fully covered is an
    error naming the years that are.

    Raises
    ------
    DataError
        Unknown units, no time axis, a period outside the record or with incomplete years.
    """
    p = Path(path)
    ds = open_netcdf(p)
    name = _pick_variable(ds, variable, _TEMPERATURE_NAMES, p, "temperature")
    da = ds[name]
    tdim = next((str(d) for d in da.dims if d in ds.variables
                 and (np.issubdtype(ds[d].dtype, np.datetime64) or str(d).lower() == "time"
                      or str(ds[d].attrs.get("axis", "")).upper() == "T")), None)
    years = None
    if tdim is not None and da.sizes[tdim] > 1:
        if not np.issubdtype(ds[tdim].dtype, np.datetime64):
            raise DataError(f"the time axis {tdim!r} cannot be decoded to dates (units "
                            f"{ds[tdim].attrs.get('units')!r}, calendar "
                            f"{ds[tdim].attrs.get('calendar', 'standard')!r})", path=p,
                            field=tdim, fix="give CF time units such as 'days since 1900-01-01' "
                            "in a standard calendar")
        time = pd.DatetimeIndex(ds[tdim].values)
        step = np.median(np.diff(time.values).astype("timedelta64[h]").astype(float)) / 24.0
        monthly = 27.5 <= step <= 31.5
        per_year = pd.Series(1, index=time).groupby(time.year).size()
        if monthly:
            complete = per_year[per_year >= 12].index
        else:  # daily or finer: a year is complete with (nearly) as many steps as a usual one
            complete = per_year[per_year >= 0.95 * per_year.median()].index
        span = _period(period)
        if span is None:
            chosen = list(complete)
            if not chosen:
                raise DataError("no complete year in the record", path=p, field=tdim,
                                fix="give at least one whole year of data")
        else:
            chosen = list(range(span[0], span[1] + 1))
            missing = [y for y in chosen if y not in set(complete)]
            if missing:
                have = (f"{min(complete)}-{max(complete)}" if len(complete) else "none")
                raise DataError(f"period {span[0]}-{span[1]} is not covered by complete years "
                                f"(missing or incomplete: {_years(missing)}; complete years in "
                                f"the file: {have})", path=p, field="period",
                                fix="choose a period inside the record")
        time_mean = ("day-weighted mean of monthly means over complete years" if monthly
                     else "mean over complete years")
        sel = np.isin(time.year, chosen)
        sub = da.isel({tdim: np.flatnonzero(sel)})
        if monthly:
            w = xr.DataArray(np.asarray(time[sel].days_in_month, dtype=np.float64), dims=tdim)
            mean = (sub * w).sum(tdim, skipna=False) / w.sum()
        else:
            mean = sub.mean(tdim, skipna=False)
        mean.attrs = dict(da.attrs)
        years = (min(chosen), max(chosen), len(chosen))
    else:
        mean = da.squeeze(drop=True) if tdim is not None else da
    mean.name = name
    out = _temperature_to_celsius(mean, p)
    out = _to_grid(out.load(), ds, p)
    if np.all(np.isnan(out.values)):
        raise DataError("every cell is missing over the period", path=p, field=name,
                        fix="check the period and the file's fill value")
    if years is not None:
        out.attrs.update(period=f"{years[0]}-{years[1]}", years=str(years[2]),
                         time_mean=time_mean)
    out.attrs.update(source=str(p), variable=name)
    ds.close()
    return out


def _years(ys: list[int]) -> str:
    ys = sorted(ys)
    return ", ".join(map(str, ys)) if len(ys) <= 6 else f"{ys[0]}..{ys[-1]} ({len(ys)} years)"


def read_cell_elevation(
    path: str | os.PathLike,
    *,
    variable: str | None = None,
) -> xr.DataArray:
    """Elevation [m] of the cells of a climate grid, from NetCDF.

    ``hgt``/``orog``/``elevation`` in metres are taken as they are; a geopotential
    (``units`` m2 s-2 or ``standard_name`` geopotential, e.g. ERA5's invariant ``z``) is
    divided by standard gravity g0 = 9.80665 m s-2 (WMO 1988).

    Parameters
    ----------
    path : path-like
        NetCDF file (the climate file itself, or an invariant/orography file).
    variable : str, optional
        Variable name (default: hgt, orog, elevation, height, altitude, z, ...).

    Returns
    -------
    xarray.DataArray
        2-D (y, x) elevation [m] with its CRS, north-up.

    Raises
    ------
    DataError
        Units that are neither a length nor a geopotential.
    """
    p = Path(path)
    ds = open_netcdf(p)
    name = _pick_variable(ds, variable, _ELEVATION_NAMES, p, "elevation")
    da = ds[name]
    tdim = [d for d in da.dims if str(d).lower() == "time"
            or (d in ds.variables and np.issubdtype(ds[d].dtype, np.datetime64))]
    if tdim:
        da = da.isel({tdim[0]: 0}, drop=True)
    units = _fold(da.attrs.get("units"))
    std = str(da.attrs.get("standard_name", "")).lower()
    if units in _GEOPOTENTIAL or std == "geopotential":
        out = da / STANDARD_GRAVITY
        how = f"geopotential [{da.attrs.get('units')}] / {STANDARD_GRAVITY} m s-2"
    elif units in _METRES:
        out = da
        how = "as given [m]"
    elif units in ("km", "kilometre", "kilometer"):
        out = da * 1000.0
        how = "km -> m"
    else:
        raise DataError(f"elevation units {da.attrs.get('units')!r} are neither metres nor a "
                        "geopotential (m2 s-2)", path=p, field=f"{name}.units",
                        fix="set the units attribute to m (or m2 s-2 for a geopotential)")
    out.name = name
    out = _to_grid(out.load(), ds, p)
    out.attrs = {"units": "m", "source": str(p), "variable": name, "conversion": how}
    ds.close()
    return out


def describe_netcdf(path: str | os.PathLike) -> dict:
    """What ``permafrost inspect`` shows of a NetCDF file: variables with dims, units and
    ranges, the time span, the grid and its CRS."""
    p = Path(path)
    ds = open_netcdf(p)
    out: dict = {"variables": {}, "time": None, "crs": None, "shape": None, "bounds": None}
    for name in ds.data_vars:
        v = ds[name]
        if v.ndim == 0:  # a grid-mapping or other scalar container
            continue
        entry = {"dims": [str(d) for d in v.dims], "units": v.attrs.get("units"),
                 "long_name": v.attrs.get("long_name")}
        if v.size <= 50_000_000 and np.issubdtype(v.dtype, np.number):
            vals = v.values
            fin = np.isfinite(vals)
            entry["min"] = float(vals[fin].min()) if fin.any() else None
            entry["max"] = float(vals[fin].max()) if fin.any() else None
        out["variables"][str(name)] = entry
        if out["crs"] is None and v.ndim >= 2:
            try:
                g = _to_grid(v.isel({d: 0 for d in v.dims if d not in _spatial_dims(v, ds, p)}),
                             ds, p)
            except (DataError, CRSError):
                continue
            crs = g.rio.crs
            epsg = crs.to_epsg() if crs is not None else None
            out["crs"] = f"EPSG:{epsg}" if epsg else (crs.to_string()[:60] if crs else None)
            out["shape"] = [int(g.sizes["y"]), int(g.sizes["x"])]
            out["bounds"] = [float(b) for b in g.rio.bounds()]
            out["resolution"] = [float(abs(r)) for r in g.rio.resolution()]
    for d in ds.dims:
        if d in ds.variables and np.issubdtype(ds[d].dtype, np.datetime64) and ds.sizes[d] > 0:
            t = pd.DatetimeIndex(ds[d].values)
            out["time"] = {"start": str(t.min().date()), "end": str(t.max().date()),
                           "steps": len(t)}
    ds.close()
    return out
