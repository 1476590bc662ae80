"""Tests of permafrost.terrain: the two gradient stencils of one function, true north on
projected grids for the covariates as for the kinematics."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from pyproj import CRS, Geod, Transformer

from permafrost import terrain
from permafrost.covariates import aspect_da, cell_sizes, slope_da
from permafrost.errors import DataError
from permafrost.grid import grid_of


def _plane_utm(slope_deg, aspect_deg, *, lon=101.5, lat=38.5, n=60, step=30.0):
    """A plane in true metres (pyproj.Geod) on a UTM 47N grid 2.5 deg off its meridian."""
    crs = CRS.from_epsg(32647)
    x0, y0 = Transformer.from_crs(4326, crs, always_xy=True).transform(lon, lat)
    tr = Affine(step, 0, x0, 0, -step, y0)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = tr @ (cols, rows)
    lo, la = Transformer.from_crs(crs, 4326, always_xy=True).transform(x, y)
    az, _, dist = Geod(ellps="WGS84").inv(np.full(lo.shape, lo.mean()),
                                          np.full(la.shape, la.mean()), lo, la)
    e, nn = dist * np.sin(np.deg2rad(az)), dist * np.cos(np.deg2rad(az))
    a = np.deg2rad(aspect_deg)
    z = 4000 - np.tan(np.deg2rad(slope_deg)) * (e * np.sin(a) + nn * np.cos(a))
    da_ = xr.DataArray(z, dims=("y", "x"), coords={"y": y[:, 0], "x": x[0]})
    return da_.rio.write_crs(crs).rio.write_transform(tr), tr, crs


@pytest.mark.parametrize("method", ["central", "horn"])
@pytest.mark.parametrize("slope,aspect", [(20.0, 0.0), (30.0, 135.0)])
def test_both_stencils_find_true_north_on_projected_grids(method, slope, aspect):
    dem, tr, crs = _plane_utm(slope, aspect)
    ge, gn = terrain.terrain_gradient(dem.values, transform=tr, crs=crs, method=method,
                                      smooth_sigma_px=0)
    s, a = terrain.gradient_to_slope_aspect(ge, gn)
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(s[inner], slope, atol=0.02)
    assert np.abs((a[inner] - aspect + 180) % 360 - 180).max() < 0.05


def test_covariate_aspect_on_projected_grid_is_from_true_north():
    # chunks of 16 cells: the convergence and scale are computed block by block
    dem, tr, crs = _plane_utm(25.0, 0.0)
    dem = dem.chunk({"y": 16, "x": 16})
    s = slope_da(dem).values
    a = aspect_da(dem).values
    inner = (slice(3, -3), slice(3, -3))
    np.testing.assert_allclose(s[inner], 25.0, atol=0.02)
    assert np.abs((a[inner] + 180) % 360 - 180).max() < 0.05   # without: ~1.6 deg off
    # and equal to the one-function path with the Horn stencil on the whole grid
    ge, gn = terrain.terrain_gradient(dem.values, transform=tr, crs=crs, method="horn",
                                      smooth_sigma_px=0)
    s2, a2 = terrain.gradient_to_slope_aspect(ge, gn)
    np.testing.assert_allclose(s, s2, atol=1e-4)
    np.testing.assert_allclose((a - a2 + 180) % 360 - 180, 0, atol=1e-3)


def test_horn_option_equals_the_covariate_functions_on_geographic_grids():
    rng = np.random.default_rng(2)
    step = 1 / 1800
    tr = Affine(step, 0, 99.0, 0, -step, 38.6)
    z = 4000 + np.cumsum(rng.normal(0, 3, (40, 50)), axis=0) + np.linspace(0, 200, 50)
    y = tr.f + tr.e * (np.arange(40) + 0.5)
    x = tr.c + tr.a * (np.arange(50) + 0.5)
    dem = xr.DataArray(z, dims=("y", "x"), coords={"y": y, "x": x}).rio.write_crs(4326)
    dx, dy = cell_sizes(grid_of(dem))
    ge, gn = terrain.terrain_gradient(z, transform=tr, crs=CRS.from_epsg(4326),
                                      method="horn", smooth_sigma_px=0)
    s, a = terrain.gradient_to_slope_aspect(ge, gn)
    np.testing.assert_allclose(s, terrain.slope(z, dx=dx, dy=dy), rtol=1e-12)
    np.testing.assert_allclose(a, terrain.aspect(z, dx=dx, dy=dy), rtol=1e-12)


def test_unknown_method_is_a_data_error():
    with pytest.raises(DataError, match="unknown gradient method"):
        terrain.terrain_gradient(np.zeros((3, 3)), transform=Affine(1, 0, 0, 0, -1, 3),
                                 crs=CRS.from_epsg(32647), method="sobel")
