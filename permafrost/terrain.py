"""Terrain covariates from a DEM: cell sizes on the ellipsoid, slope, aspect, northness.

Pure NumPy functions on 2-D arrays whose rows run north to south (the usual raster
order).  Gradients follow Horn (1981), the 3 x 3 weighted finite difference used by
GDAL's ``gdaldem`` and ArcGIS; edges are handled by repeating the border cells.

References
----------
Horn, B. K. P. (1981). Hill shading and the reflectance map. Proc. IEEE 69(1), 14-47.

Burrough, P. A. & McDonnell, R. A. (1998). Principles of Geographical Information Systems.
Oxford University Press, Ch. 8 (slope and aspect).

Snyder, J. P. (1987). Map Projections -- A Working Manual. USGS Prof. Paper 1395,
eqs. 4-18 and 4-20 (radii of curvature M and N).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "WGS84_A",
    "WGS84_F",
    "geographic_cell_size",
    "horn_gradient",
    "slope",
    "aspect",
    "northness",
    "eastness",
]

WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563


def geographic_cell_size(lat_deg, dlon_deg: float, dlat_deg: float, *, a: float = WGS84_A,
                         f: float = WGS84_F) -> tuple[np.ndarray, np.ndarray]:
    """East-west and north-south size of a geographic grid cell on the ellipsoid.

    Parameters
    ----------
    lat_deg : array-like
        Latitude of the cell centre [deg].
    dlon_deg, dlat_deg : float
        Cell size in longitude and latitude [deg] (absolute values are used).
    a : float
        Semi-major axis [m] (default WGS84).
    f : float
        Flattening [-] (default WGS84).

    Returns
    -------
    (ndarray, ndarray)
        ``dx = N cos(phi) dlambda`` and ``dy = M dphi`` [m], with ``N`` the prime-vertical
        and ``M`` the meridional radius of curvature.

    References
    ----------
    Snyder (1987), eqs. 4-18 and 4-20.
    """
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    e2 = f * (2.0 - f)
    s2 = np.sin(phi) ** 2
    n = a / np.sqrt(1.0 - e2 * s2)
    m = a * (1.0 - e2) / (1.0 - e2 * s2) ** 1.5
    return n * np.cos(phi) * np.radians(abs(dlon_deg)), m * np.radians(abs(dlat_deg))


def horn_gradient(dem, *, dx, dy) -> tuple[np.ndarray, np.ndarray]:
    """Elevation gradient by Horn's 3 x 3 method.

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows from north to south; NaN propagates to its neighbours.
    dx : float or ndarray broadcastable to (ny, nx)
        East-west cell size [m] (per row for geographic grids: shape (ny, 1)).
    dy : float or ndarray broadcastable to (ny, nx)
        North-south cell size [m] (positive).

    Returns
    -------
    (ndarray, ndarray)
        ``dz/dx`` (towards east) and ``dz/dy`` (towards north) [m m-1].

    References
    ----------
    Horn (1981), eq. (11) (the weighted 3 x 3 difference).
    """
    z = np.pad(np.asarray(dem, dtype=np.float64), 1, mode="edge")
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    gx = ((c + 2.0 * f + i) - (a + 2.0 * d + g)) / (8.0 * np.asarray(dx, dtype=np.float64))
    gy = ((a + 2.0 * b + c) - (g + 2.0 * h + i)) / (8.0 * np.asarray(dy, dtype=np.float64))
    return gx, gy


def slope(dem, *, dx, dy) -> np.ndarray:
    """Slope angle [deg] from a DEM (Horn 1981).

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows north to south.
    dx, dy : float or ndarray
        Cell sizes [m] (see :func:`horn_gradient`).

    Returns
    -------
    ndarray
        Slope [deg] in [0, 90).

    References
    ----------
    Horn (1981); Burrough & McDonnell (1998), eq. 8.2.
    """
    gx, gy = horn_gradient(dem, dx=dx, dy=dy)
    return np.degrees(np.arctan(np.hypot(gx, gy)))


def aspect(dem, *, dx, dy, flat_tolerance: float = 1e-8) -> np.ndarray:
    """Aspect [deg]: the downslope direction, clockwise from north, in [0, 360).

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows north to south.
    dx, dy : float or ndarray
        Cell sizes [m].
    flat_tolerance : float
        Gradient magnitude [m m-1] below which a cell is flat (aspect NaN).

    Returns
    -------
    ndarray
        Aspect [deg]; NaN on flat cells.

    References
    ----------
    Horn (1981); Burrough & McDonnell (1998), eq. 8.3.
    """
    gx, gy = horn_gradient(dem, dx=dx, dy=dy)
    asp = np.degrees(np.arctan2(-gx, -gy)) % 360.0
    return np.where(np.hypot(gx, gy) <= flat_tolerance, np.nan, asp)


def northness(aspect_deg) -> np.ndarray:
    """cos(aspect) [-]: +1 facing north, -1 facing south, 0 on flat cells (NaN aspect).

    Parameters
    ----------
    aspect_deg : array-like
        Aspect [deg], clockwise from north; NaN marks flat cells.

    References
    ----------
    Roberts, D. W. (1986). Ordination on the basis of fuzzy set theory. Vegetatio 66,
    123-131 (circular aspect transformed by its cosine and sine).
    """
    a = np.asarray(aspect_deg, dtype=np.float64)
    return np.where(np.isnan(a), 0.0, np.cos(np.radians(a)))


def eastness(aspect_deg) -> np.ndarray:
    """sin(aspect) [-]: +1 facing east, -1 facing west, 0 on flat cells (NaN aspect).

    Parameters
    ----------
    aspect_deg : array-like
        Aspect [deg], clockwise from north; NaN marks flat cells.

    References
    ----------
    Roberts (1986), see :func:`northness`.
    """
    a = np.asarray(aspect_deg, dtype=np.float64)
    return np.where(np.isnan(a), 0.0, np.sin(np.radians(a)))
