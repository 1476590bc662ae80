"""Terrain from a DEM: cell sizes on the ellipsoid, gradient, slope, aspect, northness.

The one home of slope/aspect science, used by :mod:`permafrost.covariates` (terrain
covariates) and :mod:`permafrost.kinematics` (downslope direction of rock glaciers).
Pure functions on 2-D arrays (rows north to south in the usual raster order, unless a
transform says otherwise).

Gradient stencils (``method`` of :func:`terrain_gradient`):

* ``"horn"`` -- Horn (1981), the 3 x 3 weighted finite difference used by GDAL's
  ``gdaldem`` and ArcGIS; edges handled by repeating the border cells
  (:func:`horn_gradient`).  Used for the covariates (:func:`slope`, :func:`aspect`).
* ``"central"`` -- central differences (:func:`numpy.gradient`, one-sided at the edges),
  usually after a light NaN-aware Gaussian smoothing (``smooth_sigma_px``).  Used for the
  kinematics, where a smooth downslope direction over a rock glacier matters.

Metric distances: geographic grids use the WGS84 radii of curvature at each row's
latitude (``dx = N cos(phi) dlambda``, ``dy = M dphi``, :func:`geographic_cell_size`);
projected grids take the gradient in grid units and map it to true east and true north
through the local Jacobian of the projection, ``J = d(x, y)/d(E, N)``
(:func:`ground_jacobian`, :func:`to_ground`): ``dz/dE = dz/dx J_xE + dz/dy J_yE``,
``dz/dN = dz/dx J_xN + dz/dy J_yN``.  ``J`` holds all of Tissot's local distortion
(meridional scale ``h``, parallel scale ``k``, the angle between the projected meridian
and parallel, and the meridian convergence; Snyder 1987, eqs. 4-9 to 4-13), so slope and
aspect are exact on any projected CRS, not only on conformal ones (UTM, Lambert conformal)
where ``J`` reduces to one scale factor and a rotation.  Aspect is always clockwise from
*true* north.

References
----------
Horn, B. K. P. (1981). Hill shading and the reflectance map. Proc. IEEE 69(1), 14-47.

Burrough, P. A. & McDonnell, R. A. (1998). Principles of Geographical Information Systems.
Oxford University Press, Ch. 8 (slope and aspect).

Weiss, A. D. (2001). Topographic position and landforms analysis. Poster, ESRI User
Conference, San Diego (the topographic position index, TPI).

De Reu, J. et al. (2013). Application of the topographic position index to heterogeneous
landscapes. Geomorphology 186, 39-49.

Snyder, J. P. (1987). Map Projections -- A Working Manual. USGS Prof. Paper 1395,
eqs. 4-18 and 4-20 (radii of curvature M and N), Ch. 4 (scale factor), eqs. 4-9 to
4-13 (the scale factors h and k and the angle theta' between meridian and parallel from the
partial derivatives of x and y with respect to latitude and longitude).
"""

from __future__ import annotations

import numpy as np
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

from permafrost.errors import DataError
from permafrost.grid import Lattice

__all__ = [
    "WGS84_A",
    "WGS84_F",
    "GRADIENT_METHODS",
    "geographic_cell_size",
    "horn_gradient",
    "convergence_and_scale",
    "to_true_north",
    "ground_jacobian",
    "to_ground",
    "ground_cell_sizes",
    "terrain_gradient",
    "gradient_to_slope_aspect",
    "slope_aspect",
    "slope",
    "aspect",
    "slope_from_gradient",
    "aspect_from_gradient",
    "northness",
    "eastness",
    "tpi",
]

GRADIENT_METHODS = ("horn", "central")

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


def _nan_gaussian(z: np.ndarray, sigma: float) -> np.ndarray:
    """NaN-aware Gaussian smoothing [pixels]: normalised convolution, NaN stays NaN."""
    if sigma <= 0:
        return z
    valid = np.isfinite(z)
    zf = np.where(valid, z, 0.0)
    num = ndimage.gaussian_filter(zf, sigma, mode="nearest")
    den = ndimage.gaussian_filter(valid.astype(np.float64), sigma, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~valid] = np.nan
    return out


def convergence_and_scale(crs, transform: Affine, shape: tuple[int, int], *, step: int = 32):
    """Meridian convergence and point scale factor of a projected grid, per cell.

    Parameters
    ----------
    crs : pyproj.CRS or CRS-like
        The grid's (projected) CRS.
    transform : affine.Affine
        The grid's transform [CRS units].
    shape : tuple of int
        ``(rows, columns)`` [cells].
    step : int
        Spacing of the cells where both are computed exactly [cells]; the others are
        interpolated bilinearly (both vary smoothly).

    Returns
    -------
    (ndarray, ndarray)
        ``gamma``: bearing of true north in the grid frame, negated, i.e. the angle [deg]
        by which grid north is rotated clockwise from true north; ``k``: grid units per
        metre on the ellipsoid along the meridian [CRS units m-1] (the point scale
        factor for a metric CRS).  Both of shape ``shape``.

    Notes
    -----
    Both come from a finite step of 1e-4 deg along the meridian through each sample
    cell, transformed by pyproj, with the meridian arc ``M dphi``.  One scale factor and
    a rotation describe a *conformal* projection only; on others (Albers, Lambert
    azimuthal equal-area, sinusoidal) the scale differs along the parallel and the
    meridian and the two are not perpendicular on the map: terrain uses
    :func:`ground_jacobian` instead.

    References
    ----------
    Snyder (1987), Ch. 4 (scale factor; radius of curvature M, eq. 4-18).  The
    convergence is the angle between grid north and the projected meridian, computed
    numerically with pyproj for any CRS.
    """
    crs = CRS.from_user_input(crs)
    h, w = shape
    rows = np.unique(np.r_[np.arange(0, h, step), h - 1]).astype(np.float64)
    cols = np.unique(np.r_[np.arange(0, w, step), w - 1]).astype(np.float64)
    cc, rr = np.meshgrid(cols + 0.5, rows + 0.5)
    # affine's annotations give `@` pairs of floats only; it maps a pair of arrays element-wise
    x, y = transform @ (cc, rr)  # type: ignore[operator]
    to_ll = Transformer.from_crs(crs, "EPSG:4326", always_xy=True)
    to_xy = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    lon, lat = to_ll.transform(x, y)
    d = 1e-4  # deg
    x2, y2 = to_xy.transform(lon, lat + d)
    true_dist = geographic_cell_size(lat, 0.0, d)[1]
    grid_dist = np.hypot(x2 - x, y2 - y)
    bearing_true_north = np.degrees(np.arctan2(x2 - x, y2 - y))  # in grid frame
    gamma = -bearing_true_north
    k = grid_dist / true_dist
    from scipy.interpolate import RegularGridInterpolator  # noqa: PLC0415

    rg, cg = np.arange(h) + 0.5, np.arange(w) + 0.5
    pts_r, pts_c = np.meshgrid(rg, cg, indexing="ij")
    out = []
    for f in (gamma, k):
        if len(rows) == 1 or len(cols) == 1:
            out.append(np.full(shape, float(np.mean(f))))
            continue
        it = RegularGridInterpolator((rows + 0.5, cols + 0.5), f, bounds_error=False,
                                     fill_value=None)
        out.append(it((pts_r, pts_c)))
    return out[0], out[1]


def to_true_north(grad_x, grad_y, *, convergence=None, scale=None):
    """Gradient in the grid frame -> gradient towards true east and true north per metre.

    Parameters
    ----------
    grad_x, grad_y : array_like
        ``dz`` per grid unit towards grid east and grid north [m (CRS unit)-1].
    convergence : float or array_like, optional
        ``gamma`` of :func:`convergence_and_scale` [deg]; default 0.
    scale : float or array_like, optional
        ``k`` of :func:`convergence_and_scale` [CRS units m-1]; default 1.

    Returns
    -------
    (ndarray, ndarray)
        ``(dz/dE, dz/dN)`` [m m-1].

    References
    ----------
    Snyder (1987), Ch. 4 (scale factor); the rotation by the meridian convergence turns
    grid north into true north.
    """
    gx = np.asarray(grad_x, dtype=np.float64)
    gy = np.asarray(grad_y, dtype=np.float64)
    if scale is not None:
        gx, gy = gx * scale, gy * scale   # per metre on the ground
    if convergence is None:
        return gx, gy
    g = np.deg2rad(convergence)
    return gx * np.cos(g) + gy * np.sin(g), -gx * np.sin(g) + gy * np.cos(g)


JACOBIAN_STEP = 32  # cells between the control points of ground_jacobian
_JACOBIAN_DELTA_M = 1.0  # ground offset [m] of the central differences in ground_jacobian


def ground_jacobian(crs, transform: Affine, shape: tuple[int, int], *,
                    step: int = JACOBIAN_STEP) -> np.ndarray:
    """Local Jacobian of a projected grid: grid units per metre towards true east and north.

    Parameters
    ----------
    crs : pyproj.CRS or CRS-like
        The grid's projected CRS (any projection, any linear unit).
    transform : affine.Affine
        The grid's transform (north-up, no rotation) [CRS units].
    shape : tuple of int
        ``(rows, columns)`` [cells].
    step : int
        Spacing of the control points [cells].  They lie on a lattice anchored at the
        CRS origin (``x = i * step * |a|``, ``y = j * step * |e|``), not at the grid's
        corner, so the value of a cell does not depend on which block of a grid it is
        computed in (chunking, halos, row blocks); between them ``J`` is interpolated
        bilinearly (it varies smoothly: the interpolation error is below 1e-8 for 30 m
        cells).

    Returns
    -------
    ndarray, shape (2, 2, rows, columns)
        ``J[0, 0] = dx/dE``, ``J[0, 1] = dx/dN``, ``J[1, 0] = dy/dE``, ``J[1, 1] = dy/dN``
        [CRS units m-1], ``E`` and ``N`` metres on the ellipsoid towards true east and
        true north.  For a conformal projection ``J = k R(gamma)`` (point scale factor
        and meridian convergence); in general ``|J[:, 1]|`` is the meridional scale
        ``h``, ``|J[:, 0]|`` the parallel scale ``k`` and the angle between the two
        columns the angle ``theta'`` between the projected parallel and meridian.

    Notes
    -----
    At each control point the cell centre is taken to longitude/latitude on the CRS's own
    geodetic datum (no datum shift) and moved by 1 m on the ellipsoid east
    (``dlambda = 1 / (N cos phi)``) and north (``dphi = 1 / M``), each way; the forward
    projection of the four offsets gives ``J`` by central differences (truncation error
    ~(1 m / R)^2, rounding error ~1e-10).  It agrees with PROJ's analytic factors
    (:meth:`pyproj.Proj.get_factors`), which the tests check.

    References
    ----------
    Snyder, J. P. (1987). Map Projections -- A Working Manual. USGS Prof. Paper 1395,
    eqs. 4-9 to 4-13 (h, k and theta' from the partial derivatives of x and y) and
    4-18, 4-20 (radii of curvature M and N).
    """
    crs = CRS.from_user_input(crs)
    if transform.b != 0 or transform.d != 0:
        raise DataError("rotated grids are not supported", field="transform",
                        fix="warp the grid to a north-up grid (gdalwarp)")
    h, w = shape
    xc = transform.c + (np.arange(w) + 0.5) * transform.a
    yc = transform.f + (np.arange(h) + 0.5) * transform.e
    lattice = Lattice(xc, yc, step * abs(transform.a), step * abs(transform.e))
    xx, yy = np.meshgrid(lattice.x, lattice.y)
    geod = crs.geodetic_crs
    to_ll = Transformer.from_crs(crs, geod, always_xy=True)
    to_xy = Transformer.from_crs(geod, crs, always_xy=True)
    lon, lat = to_ll.transform(xx, yy)
    ell = geod.ellipsoid
    a, f = ell.semi_major_metre, 1.0 / ell.inverse_flattening if ell.inverse_flattening else 0.0
    phi = np.radians(lat)
    e2 = f * (2.0 - f)
    s2 = np.sin(phi) ** 2
    n_r = a / np.sqrt(1.0 - e2 * s2)
    m_r = a * (1.0 - e2) / (1.0 - e2 * s2) ** 1.5
    d = _JACOBIAN_DELTA_M
    dlon = np.degrees(d / (n_r * np.cos(phi)))
    dlat = np.degrees(d / m_r)
    xe1, ye1 = to_xy.transform(lon + dlon, lat)
    xe0, ye0 = to_xy.transform(lon - dlon, lat)
    xn1, yn1 = to_xy.transform(lon, lat + dlat)
    xn0, yn0 = to_xy.transform(lon, lat - dlat)
    nodes = np.stack([np.stack([(xe1 - xe0), (xn1 - xn0)]),
                      np.stack([(ye1 - ye0), (yn1 - yn0)])]) / (2.0 * d)
    if not np.all(np.isfinite(nodes)):
        raise DataError("the projection's local scale is undefined on the grid (a pole or "
                        "beyond the projection's domain)", field="crs",
                        fix="use a CRS defined over the whole grid")
    return lattice.interpolate(nodes, xc, yc)  # bilinear between the control points


def to_ground(grad_x, grad_y, jacobian):
    """Gradient per grid unit -> gradient per metre towards true east and true north.

    Parameters
    ----------
    grad_x, grad_y : array_like
        ``dz/dx``, ``dz/dy`` towards the grid's +x (east) and +y (north) axes
        [m (CRS unit)-1].
    jacobian : array_like, shape (2, 2, ...)
        From :func:`ground_jacobian` [CRS units m-1] (broadcastable to the gradient).

    Returns
    -------
    (ndarray, ndarray)
        ``(dz/dE, dz/dN)`` [m m-1]: the chain rule ``dz/dE = dz/dx dx/dE + dz/dy dy/dE``
        and likewise for ``N``.

    References
    ----------
    Snyder (1987), eqs. 4-9 to 4-13 (the partial derivatives that make up ``J``).
    """
    gx = np.asarray(grad_x, dtype=np.float64)
    gy = np.asarray(grad_y, dtype=np.float64)
    j = jacobian
    return gx * j[0][0] + gy * j[1][0], gx * j[0][1] + gy * j[1][1]


def ground_cell_sizes(jacobian, dx: float, dy: float):
    """Ground length [m] of one grid step along the rows (``dx``) and columns (``dy``).

    Parameters
    ----------
    jacobian : array_like, shape (2, 2, ...)
        From :func:`ground_jacobian` [CRS units m-1].
    dx, dy : float
        Pixel width and height [CRS units].

    Returns
    -------
    (ndarray, ndarray)
        ``|J^-1 (dx, 0)|`` and ``|J^-1 (0, dy)|`` [m]; ``dx / k`` and ``dy / k`` on a
        conformal grid.

    References
    ----------
    Snyder (1987), eqs. 4-9 to 4-13.
    """
    j = jacobian
    det = np.abs(j[0][0] * j[1][1] - j[0][1] * j[1][0])
    return (abs(dx) * np.hypot(j[1][1], j[1][0]) / det,
            abs(dy) * np.hypot(j[0][1], j[0][0]) / det)


def terrain_gradient(dem, *, transform: Affine, crs, method: str = "central",
                     smooth_sigma_px: float = 1.0):
    """Gradient of a DEM towards true east and true north, in metres on the ellipsoid.

    Parameters
    ----------
    dem : array_like
        Elevation [m] on the grid of ``transform``, NaN = no data.
    transform : affine.Affine
        The grid's affine transform (no rotation) [CRS units].
    crs : pyproj.CRS or CRS-like
        The grid's CRS (geographic or projected).
    method : {"central", "horn"}
        Stencil (module docstring): central differences (:func:`numpy.gradient`) or
        Horn's 3 x 3 weighted difference (:func:`horn_gradient`).
    smooth_sigma_px : float
        Standard deviation of a NaN-aware Gaussian smoothing applied first [pixels]
        (0: none).

    Returns
    -------
    (ndarray, ndarray)
        ``(dz/dE, dz/dN)`` [m m-1].

    Raises
    ------
    DataError
        Rotated grid or unknown method.

    Notes
    -----
    Geographic grids: pixel sizes in metres from the WGS84 radii of curvature at each
    row's latitude (:func:`geographic_cell_size`), i.e. the local metric projection.
    Projected grids: the gradient per grid unit mapped to true east and north by the
    projection's local Jacobian (:func:`ground_jacobian`, :func:`to_ground`): exact on
    conformal and non-conformal (equal-area, equidistant...) projections alike.

    References
    ----------
    Horn (1981), eq. (11) and the gradient of a smoothed surface by finite differences;
    Snyder (1987), eqs. 4-18, 4-20 (radii of curvature), 4-9 to 4-13 (the Jacobian).
    """
    if method not in GRADIENT_METHODS:
        raise DataError(f"unknown gradient method {method!r}", field="method",
                        fix=f"use one of {list(GRADIENT_METHODS)}")
    z = _nan_gaussian(np.asarray(dem, dtype=np.float64), smooth_sigma_px)
    if transform.b != 0 or transform.d != 0:
        raise DataError("rotated DEM grids are not supported", field="transform",
                        fix="warp the DEM to a north-up grid (gdalwarp)")
    h, w = z.shape
    crs = CRS.from_user_input(crs)
    if crs.is_geographic:
        lat = transform.f + (np.arange(h) + 0.5) * transform.e
        ax, ay = geographic_cell_size(lat, transform.a, transform.e)
        dx = (ax * np.sign(transform.a))[:, None]   # signed: columns go the way of .a
        dy = (ay * np.sign(transform.e))[:, None]   # signed: rows go the way of .e
    else:
        dx, dy = transform.a, transform.e            # grid units
    if method == "central":
        dz_drow, dz_dcol = np.gradient(z)
        gx, gy = dz_dcol / dx, dz_drow / dy
    else:
        gx, gy = horn_gradient(z, dx=np.abs(dx), dy=np.abs(dy))
        gx, gy = gx * np.sign(transform.a), gy * -np.sign(transform.e)
    if crs.is_geographic:
        return gx, gy
    return to_ground(gx, gy, ground_jacobian(crs, transform, (h, w)))


def gradient_to_slope_aspect(grad_e, grad_n):
    """Slope and downslope aspect from a gradient.

    Parameters
    ----------
    grad_e, grad_n : array_like
        ``dz/dE`` and ``dz/dN`` [m m-1].

    Returns
    -------
    (ndarray, ndarray)
        Slope [deg] and downslope aspect in [0, 360), clockwise from north [deg] (the
        direction of ``-grad z``; 180 where the gradient is exactly 0: callers mask flat
        cells by slope, unlike :func:`aspect` which returns NaN there).

    References
    ----------
    Horn (1981); Burrough & McDonnell (1998), eqs. 8.2-8.3 (aspect as the downslope
    direction).
    """
    ge = np.asarray(grad_e, dtype=np.float64)
    gn = np.asarray(grad_n, dtype=np.float64)
    slope_deg = np.degrees(np.arctan(np.hypot(ge, gn)))
    aspect_deg = np.mod(np.degrees(np.arctan2(-ge, -gn)), 360.0)
    return slope_deg, aspect_deg


def slope_aspect(dem, *, method: str = "central", smooth_sigma_px: float = 1.0):
    """Slope and downslope aspect of a DEM DataArray with a CRS.

    Parameters
    ----------
    dem : xarray.DataArray
        Elevation [m] with ``.rio`` CRS and transform.
    method : {"central", "horn"}
        Gradient stencil (:func:`terrain_gradient`).
    smooth_sigma_px : float
        Gaussian smoothing [pixels].

    Returns
    -------
    xarray.Dataset
        ``slope`` [deg], ``aspect`` [deg clockwise from true north, downslope],
        ``grad_e``, ``grad_n`` [m m-1].

    References
    ----------
    See :func:`terrain_gradient`.
    """
    import xarray as xr  # noqa: PLC0415

    ge, gn = terrain_gradient(dem.values, transform=dem.rio.transform(), crs=dem.rio.crs,
                              method=method, smooth_sigma_px=smooth_sigma_px)
    s, a = gradient_to_slope_aspect(ge, gn)
    dims = dem.dims
    return xr.Dataset({"slope": (dims, s), "aspect": (dims, a), "grad_e": (dims, ge),
                       "grad_n": (dims, gn)}, coords=dem.coords)


def slope(dem, *, dx, dy, convergence=None, scale=None, jacobian=None) -> np.ndarray:
    """Slope angle [deg] from a DEM (Horn 1981).

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows north to south.
    dx, dy : float or ndarray
        Cell sizes [m] (see :func:`horn_gradient`).
    convergence, scale : float or ndarray, optional
        Meridian convergence [deg] and point scale factor [-] of a projected grid
        (:func:`convergence_and_scale`); the slope depends on the scale only.  Exact on
        conformal grids only: use ``jacobian``.
    jacobian : array_like (2, 2, ...), optional
        :func:`ground_jacobian` of a projected grid (``dx``, ``dy`` then in grid units):
        exact on any projection.

    Returns
    -------
    ndarray
        Slope [deg] in [0, 90).

    References
    ----------
    Horn (1981); Burrough & McDonnell (1998), eq. 8.2.
    """
    gx, gy = horn_gradient(dem, dx=dx, dy=dy)
    if jacobian is not None:
        gx, gy = to_ground(gx, gy, jacobian)
    elif convergence is not None or scale is not None:
        gx, gy = to_true_north(gx, gy, convergence=convergence, scale=scale)
    return slope_from_gradient(gx, gy)


def slope_from_gradient(grad_e, grad_n) -> np.ndarray:
    """Slope angle [deg] in [0, 90) of a ground gradient ``(dz/dE, dz/dN)`` [m m-1].

    References
    ----------
    Burrough & McDonnell (1998), eq. 8.2: ``arctan(sqrt(gx^2 + gy^2))``.
    """
    return np.degrees(np.arctan(np.hypot(grad_e, grad_n)))


def aspect(dem, *, dx, dy, flat_tolerance: float = 1e-8, convergence=None,
           scale=None, jacobian=None) -> np.ndarray:
    """Aspect [deg]: the downslope direction, clockwise from north, in [0, 360).

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows north to south.
    dx, dy : float or ndarray
        Cell sizes [m].
    convergence, scale : float or ndarray, optional
        Meridian convergence [deg] and point scale factor [-] of a projected grid
        (:func:`convergence_and_scale`): the aspect is then from true north (exact on
        conformal grids only: use ``jacobian``).
    jacobian : array_like (2, 2, ...), optional
        :func:`ground_jacobian` of a projected grid (``dx``, ``dy`` then in grid units):
        aspect from true north, exact on any projection.
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
    if jacobian is not None:
        gx, gy = to_ground(gx, gy, jacobian)
    elif convergence is not None or scale is not None:
        gx, gy = to_true_north(gx, gy, convergence=convergence, scale=scale)
    return aspect_from_gradient(gx, gy, flat_tolerance=flat_tolerance)


def aspect_from_gradient(grad_e, grad_n, *, flat_tolerance: float = 1e-8) -> np.ndarray:
    """Aspect [deg] in [0, 360) of a ground gradient ``(dz/dE, dz/dN)`` [m m-1]: the
    downslope direction ``-grad z``, clockwise from north; NaN where the gradient's
    magnitude is at most ``flat_tolerance`` [m m-1] (flat cells).

    References
    ----------
    Burrough & McDonnell (1998), eq. 8.3 (aspect as the downslope direction).
    """
    asp = np.degrees(np.arctan2(-grad_e, -grad_n)) % 360.0
    return np.where(np.hypot(grad_e, grad_n) <= flat_tolerance, np.nan, asp)


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


def disc_kernel(radius_m: float, dx: float, dy: float) -> np.ndarray:
    """0/1 weights of the cells whose centres lie within ``radius_m`` [m] of the centre cell.

    ``dx``, ``dy`` [m]: the cell's width and height (an ellipse in pixels where they
    differ, as on a geographic grid).  The centre cell is excluded (Weiss 2001: the TPI
    compares a cell with its *neighbourhood*).  Shape ``(2 ry + 1, 2 rx + 1)`` with
    ``rx = floor(radius_m / dx)``, ``ry = floor(radius_m / dy)``; at least the 8 neighbours.
    """
    dx, dy = abs(float(dx)), abs(float(dy))
    rx = max(int(np.floor(radius_m / dx)), 1)
    ry = max(int(np.floor(radius_m / dy)), 1)
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    k = ((xx * dx) ** 2 + (yy * dy) ** 2 <= radius_m ** 2).astype(np.float64)
    k[ry, rx] = 0.0
    if k.sum() == 0:  # radius below one cell: the 8 neighbours
        k = np.ones((3, 3))
        k[1, 1] = 0.0
    return k


def tpi(dem, *, dx, dy, radius_m: float = 500.0) -> np.ndarray:
    """Topographic position index [m]: elevation minus the mean elevation of the cells
    within ``radius_m`` (Weiss 2001; De Reu et al. 2013).

    Negative in hollows and valley floors, where cold air pools on clear nights and the
    ground is colder than air temperature at that elevation suggests; positive on ridges
    and spurs, where wind strips the snow (Gubler et al. 2011, The Cryosphere 5, 431-443,
    on metre- to kilometre-scale ground temperature variability in mountains; Lewkowicz &
    Bonnaventure 2008, Permafrost Periglac. Process. 19, 49-62, on cold-air pooling in
    mountain permafrost).

    Parameters
    ----------
    dem : ndarray (rows, cols)
        Elevation [m]; NaN is no data (left out of the means; NaN stays NaN).
    dx, dy : float or ndarray broadcastable to (rows, 1)
        Cell width and height [m] (per row on a geographic grid).  The neighbourhood is a
        disc in metres (an ellipse in pixels) built from each row's own cell size.
    radius_m : float
        Neighbourhood radius [m] (> 0).

    Returns
    -------
    ndarray of float64
        TPI [m]; NaN where the DEM is NaN or no neighbour has data.
    """
    z = np.asarray(dem, dtype=np.float64)
    if not radius_m > 0:
        raise DataError(f"TPI radius must be > 0 m, got {radius_m}", field="radius_m",
                        fix="give radius_m in metres, e.g. 500")
    # the neighbourhood of each row from that row's own cell size, so the result does not
    # depend on how a large grid is cut into blocks (rows of a block share few kernels)
    rows = z.shape[0]
    dxr = _per_row(dx, rows)
    dyr = _per_row(dy, rows)
    valid = np.isfinite(z)
    zf = np.where(valid, z, 0.0)
    vf = valid.astype(np.float64)
    out = np.full(z.shape, np.nan)
    kernels: dict[bytes, tuple[np.ndarray, list[int]]] = {}
    for i in range(rows):
        k = disc_kernel(radius_m, dxr[i], dyr[i])
        key = k.tobytes() + bytes(str(k.shape), "ascii")
        kernels.setdefault(key, (k, []))[1].append(i)
    for k, idx in kernels.values():
        num = ndimage.correlate(zf, k, mode="constant", cval=0.0)
        den = ndimage.correlate(vf, k, mode="constant", cval=0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[idx] = z[idx] - num[idx] / den[idx]
        bad = den[idx] == 0
        if bad.any():
            sub = out[idx]
            sub[bad] = np.nan
            out[idx] = sub
    out[~valid] = np.nan
    return out


def _per_row(d, rows: int) -> np.ndarray:
    """A cell size [m] per row from a scalar or a (rows, 1) / (rows, cols) array; rows with
    no value (a block's halo beyond the grid) take the nearest row's."""
    a = np.asarray(d, dtype=np.float64)
    if a.ndim == 0:
        r = np.full(rows, float(a))
    else:
        b = np.broadcast_to(a.reshape(a.shape[0], -1) if a.ndim == 2 else a[:, None],
                            (rows, a.shape[-1] if a.ndim == 2 else 1))
        n = np.isfinite(b).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(n > 0, np.where(np.isfinite(b), b, 0.0).sum(axis=1) / n, np.nan)
    ok = np.isfinite(r)
    if not ok.any():
        raise DataError("no cell size", field="dx", fix="give finite cell sizes")
    if not ok.all():
        r = np.interp(np.arange(rows), np.flatnonzero(ok), r[ok])
    return r
