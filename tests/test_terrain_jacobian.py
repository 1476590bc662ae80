"""Slope and aspect on any projected CRS (issue 26, item 5): a plane defined on the ground
(true east/north metres from pyproj.Geod), gridded in conformal and non-conformal CRSs, must
come back with its slope and aspect; the Jacobian agrees with PROJ's own factors."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from mintpy_factory import LAT0, LON0, make_track
from pyproj import CRS, Geod, Proj, Transformer

from permafrost import solar, terrain
from permafrost.covariates import aspect_da, pisr_da, slope_da, tpi_da
from permafrost.io.mintpy import read_track
from permafrost.kinematics import compute_kinematics

# (name, CRS, lon, lat of the grid): UTM is conformal; the others are not, and the grids lie
# far from their central meridian / centre, where the distortion is large
CRSS = {
    "utm47n": (CRS.from_epsg(32647), 101.5, 38.5),
    "albers50n": (CRS.from_proj4("+proj=aea +lat_0=30 +lon_0=10 +lat_1=43 +lat_2=62 "
                                 "+ellps=WGS84 +units=m +no_defs"), 40.0, 50.0),
    "albers50n_far": (CRS.from_proj4("+proj=aea +lat_0=0 +lon_0=0 +lat_1=20 +lat_2=30 "
                                     "+ellps=WGS84 +units=m +no_defs"), 30.0, 50.0),
    "laea_europe": (CRS.from_epsg(3035), 40.0, 50.0),
    "sinusoidal": (CRS.from_proj4("+proj=sinu +lon_0=0 +datum=WGS84 +units=m +no_defs"),
                   40.0, 50.0),
}
GROUND = [(20.0, 0.0), (30.0, 135.0), (35.0, 250.0), (10.0, 300.0)]


def ground_plane(crs, lon, lat, slope_deg, aspect_deg, *, n=48, step=30.0, centred=False):
    """A plane of known slope and downslope aspect on the ground, on a grid of ``crs``.

    The elevation of each cell centre comes from its true east/north distance [m] to the
    grid's centre on the WGS84 ellipsoid (pyproj.Geod azimuth and distance), independent of
    the projection: ``z = z0 - tan(slope) (E sin(aspect) + N cos(aspect))``.  The grid's
    corner is at ``lon``, ``lat`` (its centre with ``centred``)."""
    x0, y0 = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    if centred:
        x0, y0 = x0 - n / 2 * step, y0 + n / 2 * step
    tr = Affine(step, 0, x0, 0, -step, y0)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = tr @ (cols, rows)
    lo, la = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    c = n // 2
    az, _, dist = Geod(ellps="WGS84").inv(np.full(lo.shape, lo[c, c]),
                                          np.full(la.shape, la[c, c]), lo, la)
    e, nn = dist * np.sin(np.deg2rad(az)), dist * np.cos(np.deg2rad(az))
    a = np.deg2rad(aspect_deg)
    z = 3000.0 - np.tan(np.deg2rad(slope_deg)) * (e * np.sin(a) + nn * np.cos(a))
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y[:, 0], "x": x[0]})
    return dem.rio.write_crs(crs).rio.write_transform(tr), tr


def _angle_diff(a, b):
    return np.abs((np.asarray(a) - b + 180.0) % 360.0 - 180.0)


INNER = (slice(3, -3), slice(3, -3))


@pytest.mark.parametrize("name", list(CRSS))
@pytest.mark.parametrize("slope,aspect", GROUND)
@pytest.mark.parametrize("method", ["horn", "central"])
def test_plane_on_the_ground_keeps_its_slope_and_aspect(name, slope, aspect, method):
    crs, lon, lat = CRSS[name]
    dem, tr = ground_plane(crs, lon, lat, slope, aspect)
    ge, gn = terrain.terrain_gradient(dem.values, transform=tr, crs=crs, method=method,
                                      smooth_sigma_px=0)
    s, a = terrain.gradient_to_slope_aspect(ge, gn)
    np.testing.assert_allclose(np.hypot(ge, gn)[INNER], np.tan(np.radians(slope)), rtol=5e-3)
    assert np.abs(s[INNER] - slope).max() < 0.05
    assert _angle_diff(a[INNER], aspect).max() < 0.1


@pytest.mark.parametrize("name", ["albers50n", "albers50n_far", "laea_europe", "sinusoidal"])
def test_one_scale_factor_is_wrong_off_conformal_grids(name):
    """The test above can fail: the former terrain (one scale factor and a rotation) misses
    the same planes on these grids by more than its tolerance."""
    crs, lon, lat = CRSS[name]
    worst_tan, worst_asp = 0.0, 0.0
    for slope, aspect in GROUND:
        dem, tr = ground_plane(crs, lon, lat, slope, aspect)
        gx, gy = terrain.horn_gradient(dem.values, dx=tr.a, dy=-tr.e)
        gam, k = terrain.convergence_and_scale(crs, tr, dem.shape)
        ge, gn = terrain.to_true_north(gx, gy, convergence=gam, scale=k)
        _, a = terrain.gradient_to_slope_aspect(ge, gn)
        worst_tan = max(worst_tan, np.abs(np.hypot(ge, gn)[INNER]
                                          / np.tan(np.radians(slope)) - 1).max())
        worst_asp = max(worst_asp, _angle_diff(a[INNER], aspect).max())
    assert worst_tan > 5e-3 or worst_asp > 0.1


def test_conformal_grid_is_unchanged():
    """On UTM the Jacobian is one scale factor and a rotation: the former result, to float
    rounding."""
    crs, lon, lat = CRSS["utm47n"]
    dem, tr = ground_plane(crs, lon, lat, 30.0, 135.0, n=80)
    gx, gy = terrain.horn_gradient(dem.values, dx=tr.a, dy=-tr.e)
    gam, k = terrain.convergence_and_scale(crs, tr, dem.shape)
    old = terrain.to_true_north(gx, gy, convergence=gam, scale=k)
    new = terrain.to_ground(gx, gy, terrain.ground_jacobian(crs, tr, dem.shape))
    np.testing.assert_allclose(new[0], old[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(new[1], old[1], rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", list(CRSS))
def test_jacobian_matches_proj_factors(name):
    """Independent reference: PROJ's factors (meridional scale h, parallel scale k, the
    angle between meridian and parallel) at the cell centres."""
    crs, lon, lat = CRSS[name]
    x0, y0 = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    tr = Affine(1000.0, 0, x0, 0, -1000.0, y0)
    j = terrain.ground_jacobian(crs, tr, (70, 90), step=1)   # every cell a control point
    # the default: control points every 32 km here, bilinear between them (error ~1e-5 at
    # 1 km cells, ~(30 m / 1 km)^2 of that at 30 m cells)
    np.testing.assert_allclose(terrain.ground_jacobian(crs, tr, (70, 90)), j, rtol=0,
                               atol=2e-5)
    rows, cols = np.array([0, 13, 40, 69]), np.array([0, 31, 55, 89])
    x, y = tr @ (cols + 0.5, rows + 0.5)
    lo, la = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True).transform(x, y)
    f = Proj(crs).get_factors(lo, la)
    je, jn = j[:, 0, rows, cols], j[:, 1, rows, cols]
    np.testing.assert_allclose(np.hypot(*jn), f.meridional_scale, rtol=1e-8)
    np.testing.assert_allclose(np.hypot(*je), f.parallel_scale, rtol=1e-8)
    theta = np.degrees(np.arccos(np.sum(je * jn, axis=0)
                                 / (np.hypot(*je) * np.hypot(*jn))))
    # PROJ reports theta' or its supplement (the angle from the meridian's other side)
    np.testing.assert_allclose(np.sin(np.radians(theta)),
                               np.sin(np.radians(f.meridian_parallel_angle)), atol=1e-6)
    np.testing.assert_allclose(np.abs(np.cos(np.radians(theta))),
                               np.abs(np.cos(np.radians(f.meridian_parallel_angle))), atol=1e-6)
    # the bearing of the projected meridian from grid north: PROJ's meridian convergence
    conv = np.degrees(np.arctan2(jn[0], jn[1]))
    np.testing.assert_allclose(np.abs(conv), np.abs(f.meridian_convergence), atol=1e-4)


@pytest.mark.parametrize("name", ["albers50n_far", "sinusoidal"])
def test_covariates_are_exact_and_chunk_independent_off_conformal(name):
    crs, lon, lat = CRSS[name]
    dem, tr = ground_plane(crs, lon, lat, 30.0, 135.0, n=70)
    whole_s, whole_a = slope_da(dem).values, aspect_da(dem).values
    ch = dem.chunk({"y": 16, "x": 23})
    s, a = slope_da(ch).values, aspect_da(ch).values
    assert np.abs(s[INNER] - 30.0).max() < 0.05
    assert _angle_diff(a[INNER], 135.0).max() < 0.1
    np.testing.assert_allclose(s, whole_s, atol=1e-5)
    np.testing.assert_allclose(_angle_diff(a, whole_a), 0, atol=1e-4)
    # the same as the one-function path (terrain_gradient, Horn) on the whole grid
    ge, gn = terrain.terrain_gradient(dem.values, transform=tr, crs=crs, method="horn",
                                      smooth_sigma_px=0)
    s2, a2 = terrain.gradient_to_slope_aspect(ge, gn)
    np.testing.assert_allclose(s, s2, atol=1e-4)
    np.testing.assert_allclose(_angle_diff(a, a2), 0, atol=1e-3)


def test_pisr_of_a_ground_plane_is_the_same_on_any_projection():
    """PISR reads slope and aspect: a south-east 30 deg plane at 50 N gets the same
    radiation on a sinusoidal grid as on UTM (its tabulated value at the same latitude)."""
    crs, lon, lat = CRSS["sinusoidal"]
    dem, _ = ground_plane(crs, lon, lat, 30.0, 135.0, n=40)
    p = pisr_da(dem, day_step=30, time_step_h=1.0).values[INNER]
    lat_c = Transformer.from_crs(crs, 4326, always_xy=True).transform(
        float(dem.x[20]), float(dem.y[20]))[1]
    ref = solar.pisr_annual(np.array([30.0]), np.array([135.0]), np.array([lat_c]),
                            elevation_m=3000.0, transmissivity=0.7, day_step=30,
                            time_step_h=1.0)[0]
    np.testing.assert_allclose(np.median(p), ref, rtol=5e-3)


def test_tpi_on_a_plane_is_zero_off_conformal():
    """TPI of a plane is 0 whatever the cell's ground size; the disc in metres uses the
    ground cell size from the Jacobian (finite, positive)."""
    crs, lon, lat = CRSS["sinusoidal"]
    dem, tr = ground_plane(crs, lon, lat, 20.0, 45.0, n=40)
    t = tpi_da(dem, radius_m=150.0).values
    assert np.abs(t[10:-10, 10:-10]).max() < 0.05
    j = terrain.ground_jacobian(crs, tr, dem.shape)
    gdx, gdy = terrain.ground_cell_sizes(j, tr.a, tr.e)
    # ground size of one pixel step along the row and column: from Geod, independently
    to_ll = Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    lo0, la0 = to_ll.transform(float(dem.x[20]), float(dem.y[20]))
    lo1, la1 = to_ll.transform(float(dem.x[21]), float(dem.y[20]))
    lo2, la2 = to_ll.transform(float(dem.x[20]), float(dem.y[21]))
    g = Geod(ellps="WGS84")
    np.testing.assert_allclose(gdx[20, 20], g.inv(lo0, la0, lo1, la1)[2], rtol=1e-4)
    np.testing.assert_allclose(gdy[20, 20], g.inv(lo0, la0, lo2, la2)[2], rtol=1e-4)


@pytest.mark.parametrize("name", ["utm47n", "sinusoidal_far"])
def test_kinematic_sensitivity_from_a_dem_on_any_projection(tmp_path, name):
    """The kinematics' unit vectors use the same terrain: a synthetic MintPy track over a
    20 deg east-facing plane, with its DEM given on a UTM grid or on a sinusoidal grid 39 deg
    off its central meridian (shear ~30 deg), gets the analytic LOS sensitivity C and the
    known downslope velocities."""
    t = make_track(tmp_path / "t", crs="geo", shape=(60, 80), speeds=(0.05, 0.4), noise=0.002,
                   seed=4)
    crs = (CRSS["utm47n"][0] if name == "utm47n" else
           CRS.from_proj4("+proj=sinu +lon_0=60 +datum=WGS84 +units=m +no_defs"))
    # the scene's centre; the DEM grid (4.8 km) covers the scene (2.7 x 3.7 km)
    lon_c, lat_c = LON0 + 40 / 1800, LAT0 + 30 / 1800
    dem, _ = ground_plane(crs, lon_c, lat_c, 20.0, 90.0, n=160, centred=True)
    o = compute_kinematics(t.outlines, [read_track(t.folder)], dem=dem).outlines
    np.testing.assert_allclose(o["kin_sensitivity_mean"], abs(t.sensitivity), atol=0.01)
    v, u = o["kin_v_downslope_median_m_yr"].to_numpy(), o["kin_v_downslope_unc_m_yr"].to_numpy()
    assert (np.abs(v - t.speeds) <= 3 * u).all(), (v, t.speeds, u)
