"""The sample region's grid, coordinate helpers and the writers every product uses."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# Fixed creation date for GeoPackages (GDAL writes the current time otherwise); set before
# the first GDAL driver writes anything.
os.environ["OGR_CURRENT_DATE"] = "2026-01-01T00:00:00Z"

import geopandas as gpd  # noqa: E402
import pyogrio  # noqa: E402
import rasterio.features  # noqa: E402
import rioxarray  # noqa: E402,F401  (registers the .rio accessor)
import xarray as xr  # noqa: E402
from affine import Affine  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402
from pyproj import Geod  # noqa: E402

from permafrost.io.atomic import atomic_path  # noqa: E402
from permafrost.io.rasters import write_cog  # noqa: E402

pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2026-01-01T00:00:00Z"})

#: pixel size of the covariate grid [deg] (2 arcsec)
PIX = 1.0 / 1800.0
#: outer corners of the domain [deg]
WEST, NORTH = 98.85, 38.65
NX, NY = 720, 540
EAST, SOUTH = WEST + NX * PIX, NORTH - NY * PIX
TRANSFORM = Affine(PIX, 0.0, WEST, 0.0, -PIX, NORTH)
#: coarse climate grid [deg] and its size in fine pixels
COARSE = 0.05
COARSE_BLOCK = 90
#: prior-map grids [deg]
SURVEY_RES, SURVEY_BLOCK = 0.005, 9
PZI_PRIOR_RES, PZI_PRIOR_BLOCK = 0.01, 18

#: WGS84 ellipsoid
WGS84_A = 6378137.0
WGS84_E2 = 0.00669437999014
GEOD = Geod(ellps="WGS84")

NODATA_F32 = -9999.0


def lon_centres() -> np.ndarray:
    """Longitudes of the pixel centres [deg east], west to east."""
    return WEST + (np.arange(NX) + 0.5) * PIX


def lat_centres() -> np.ndarray:
    """Latitudes of the pixel centres [deg north], north to south."""
    return NORTH - (np.arange(NY) + 0.5) * PIX


def metres_per_degree(lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Length of one degree of longitude and of latitude on the WGS84 ellipsoid [m].

    Uses the prime-vertical radius N and the meridian radius M at latitude ``lat_deg`` [deg]:
    one degree of longitude is N cos(phi) pi/180, one of latitude M pi/180.
    """
    phi = np.deg2rad(lat_deg)
    w = 1.0 - WGS84_E2 * np.sin(phi) ** 2
    n = WGS84_A / np.sqrt(w)
    m = WGS84_A * (1.0 - WGS84_E2) / w**1.5
    return n * np.cos(phi) * np.pi / 180.0, m * np.pi / 180.0


def slope_aspect(dem: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slope [deg] and downslope aspect [deg clockwise from north] of a DEM on this grid.

    Central differences (``numpy.gradient``, one-sided at the edges) with the metric pixel
    size of each row on the WGS84 ellipsoid (:func:`metres_per_degree`).  The aspect is the
    direction of steepest descent, 0 = north, 90 = east.  This is the exact definition used
    for every derived quantity in the sample region (LOS sensitivity, rock glacier slopes).
    """
    mx, my = metres_per_degree(lat_centres())
    dx = (mx * PIX)[:, None]
    dy = my * PIX
    dz_drow, dz_dcol = np.gradient(dem.astype(np.float64))
    dzde = dz_dcol / dx
    dzdn = -dz_drow / dy[:, None]
    slope = np.degrees(np.arctan(np.hypot(dzde, dzdn)))
    aspect = np.degrees(np.arctan2(-dzde, -dzdn)) % 360.0
    return slope, aspect


def km_coords() -> tuple[np.ndarray, np.ndarray]:
    """Easting and northing of the pixel centres from the SW corner [km] (local, for shaping)."""
    mx, my = metres_per_degree(np.array(0.5 * (NORTH + SOUTH)))
    x = (lon_centres() - WEST) * mx / 1000.0
    y = (lat_centres() - SOUTH) * my / 1000.0
    return np.meshgrid(x, y)


def to_lonlat(x_km, y_km):
    """Inverse of :func:`km_coords` [km] -> [deg]."""
    mx, my = metres_per_degree(np.array(0.5 * (NORTH + SOUTH)))
    return WEST + np.asarray(x_km) * 1000.0 / mx, SOUTH + np.asarray(y_km) * 1000.0 / my


def rowcol(lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of the pixels holding (lon, lat) [deg]."""
    col = np.floor((np.asarray(lon) - WEST) / PIX).astype(int)
    row = np.floor((NORTH - np.asarray(lat)) / PIX).astype(int)
    return np.clip(row, 0, NY - 1), np.clip(col, 0, NX - 1)


def as_dataarray(arr: np.ndarray, *, transform: Affine = TRANSFORM) -> xr.DataArray:
    """Wrap a 2-D array on a north-up EPSG:4326 grid with exact pixel-centre coordinates."""
    ny, nx = arr.shape
    x = transform.c + (np.arange(nx) + 0.5) * transform.a
    y = transform.f + (np.arange(ny) + 0.5) * transform.e
    da = xr.DataArray(arr, dims=("y", "x"), coords={"y": y, "x": x})
    da = da.rio.write_crs("EPSG:4326")
    return da.rio.write_transform(transform)


def save_tif(arr, path, *, description, units, nodata=NODATA_F32, dtype="float32",
             transform=TRANSFORM, resampling="average", tags=None):
    """Write one covariate/truth raster as a COG (via the package's atomic writer)."""
    t = {"units": units, "generator": "data_samples/generate.py"}
    t.update(tags or {})
    write_cog(as_dataarray(arr, transform=transform), path, nodata=nodata, dtype=dtype,
              description=description, tags=t, overview_resampling=resampling)


def save_vector(gdf: gpd.GeoDataFrame, path: Path, layer: str) -> None:
    """Write a GeoPackage atomically with a fixed creation date (deterministic bytes)."""
    with atomic_path(path) as tmp:
        pyogrio.write_dataframe(gdf, tmp, layer=layer, driver="GPKG")


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def logit(p):
    p = np.clip(p, 1e-9, 1 - 1e-9)
    return np.log(p / (1 - p))


def polygon_mask(polys, shape_=(NY, NX), transform=TRANSFORM, all_touched=False):
    """Boolean raster of pixel centres inside any of ``polys``."""
    polys = [p for p in polys if not p.is_empty]
    if not polys:
        return np.zeros(shape_, bool)
    return rasterio.features.rasterize([(p, 1) for p in polys], out_shape=shape_,
                                       transform=transform, fill=0, all_touched=all_touched,
                                       dtype="uint8").astype(bool)


def polygon_pixels(poly) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixel centres inside the exterior of ``poly`` (a fast window test).

    Used to screen candidates; the definitive pixel sets come from :func:`polygon_mask` (GDAL).
    """
    minx, miny, maxx, maxy = poly.bounds
    c0 = max(int(np.floor((minx - WEST) / PIX)) - 1, 0)
    c1 = min(int(np.ceil((maxx - WEST) / PIX)) + 1, NX)
    r0 = max(int(np.floor((NORTH - maxy) / PIX)) - 1, 0)
    r1 = min(int(np.ceil((NORTH - miny) / PIX)) + 1, NY)
    if c1 <= c0 or r1 <= r0:
        return np.zeros(0, int), np.zeros(0, int)
    rr, cc = np.mgrid[r0:r1, c0:c1]
    rr, cc = rr.ravel(), cc.ravel()
    pts = np.c_[WEST + (cc + 0.5) * PIX, NORTH - (rr + 0.5) * PIX]
    inside = MplPath(np.asarray(poly.exterior.coords)).contains_points(pts)
    return rr[inside], cc[inside]
