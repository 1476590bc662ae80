"""The topographic position index (permafrost.terrain.tpi, permafrost.covariates.tpi_da)
against analytic surfaces, and as a derived covariate of a stack file."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from permafrost import terrain
from permafrost.covariates import tpi_da
from permafrost.errors import DataError
from permafrost.workflows.covariates import read_stack_file
from tests.factories import da_on_grid, write_raster

DX, DY = 30.0, 40.0  # cell width and height [m] (an ellipse in pixels)


def _xy(ny, nx):
    yy, xx = np.mgrid[0:ny, 0:nx].astype(float)
    return xx * DX, -yy * DY  # metres east, north (rows run south)


def test_tpi_of_a_plane_is_zero_inside():
    """A disc is symmetric about its centre, so its mean over a plane is the centre value."""
    x, y = _xy(60, 70)
    z = 3000.0 + 0.3 * x - 0.2 * y
    t = terrain.tpi(z, dx=DX, dy=DY, radius_m=250.0)
    r = int(np.ceil(250 / DX)) + 1
    inner = t[r:-r, r:-r]
    assert np.nanmax(np.abs(inner)) < 1e-9


def test_tpi_of_a_paraboloid_is_minus_the_mean_squared_distance():
    """z = c (x^2 + y^2) about any cell: z(p + d) - z(p) = 2c p.d + c |d|^2; the linear term
    cancels over the symmetric disc, so TPI = -c * mean(|d|^2) over the disc's cells."""
    c = 1e-3
    x, y = _xy(80, 80)
    z = c * ((x - 1000.0) ** 2 + (y + 1500.0) ** 2)
    radius = 300.0
    k = terrain.disc_kernel(radius, DX, DY)
    ry, rx = (np.array(k.shape) - 1) // 2
    yy, xx = np.mgrid[-ry:ry + 1, -rx:rx + 1]
    d2 = (xx * DX) ** 2 + (yy * DY) ** 2
    expected = -c * float((d2 * k).sum() / k.sum())
    t = terrain.tpi(z, dx=DX, dy=DY, radius_m=radius)
    inner = t[ry + 1:-ry - 1, rx + 1:-rx - 1]
    np.testing.assert_allclose(inner, expected, rtol=1e-9)
    # the disc is round in metres: 300 m holds 10 cells east, 7 north
    assert (rx, ry) == (10, 7)
    assert k[ry, rx] == 0 and k[ry, 0] == 1 and k[0, rx] == 1 and k[0, 0] == 0


def test_tpi_signs_hollow_and_ridge():
    x, y = _xy(41, 41)
    bowl = ((x - 600.0) ** 2 + (y + 800.0) ** 2) ** 0.5  # a cone: the centre is lowest
    t = terrain.tpi(bowl, dx=DX, dy=DY, radius_m=200.0)
    assert t[20, 20] < 0
    t2 = terrain.tpi(-bowl, dx=DX, dy=DY, radius_m=200.0)
    assert t2[20, 20] > 0


def test_nodata_is_left_out_of_the_mean_and_stays_nodata():
    x, y = _xy(30, 30)
    z = 3000.0 + 0.5 * x
    z[10:14, 10:14] = np.nan
    t = terrain.tpi(z, dx=DX, dy=DY, radius_m=100.0)
    assert np.isnan(t[10:14, 10:14]).all()
    # around the hole the plane's symmetric disc has lost cells, but none of its values are NaN
    assert np.isfinite(t[8, 8])


def test_radius_must_be_positive():
    with pytest.raises(DataError, match="radius"):
        terrain.tpi(np.zeros((5, 5)), dx=DX, dy=DY, radius_m=0.0)


def test_lazy_tpi_does_not_depend_on_the_chunking():
    """Blocks overlap by the radius and each row's disc comes from its own cell size (a
    geographic grid): the same values whatever the chunks."""
    rng = np.random.default_rng(3)
    z = 3500 + np.cumsum(np.cumsum(rng.normal(0, 2, (90, 110)), 0), 1)
    tr = from_origin(98.9, 38.6, 1 / 1800, 1 / 1800)
    dem = da_on_grid(z, tr)
    a = tpi_da(dem.chunk(17), radius_m=400.0).values
    b = tpi_da(dem.chunk(200), radius_m=400.0).values
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(DataError, match="radius"):
        tpi_da(dem, radius_m=-5)


def test_tpi_as_a_derived_covariate_of_a_stack_file(tmp_path):
    x, y = _xy(40, 50)
    z = (3000 + 0.001 * ((x - 700) ** 2 + (y + 800) ** 2)).astype("float32")
    tr = from_origin(500000, 4300000, DX, DY)
    write_raster(tmp_path / "dem.tif", z, crs="EPSG:32647", transform=tr)
    (tmp_path / "stack.toml").write_text(
        '[covariates.dem]\npath = "dem.tif"\n\n'
        '[derived.tpi]\nfunction = "tpi"\nradius_m = 200\n')
    ds = read_stack_file(tmp_path / "stack.toml")
    assert list(ds.data_vars) == ["dem", "tpi"]
    t = ds["tpi"].values
    direct = terrain.tpi(z.astype(float), dx=DX, dy=DY, radius_m=200.0)
    # the projected grid's scale factor near the UTM central meridian is 0.9996..1.0004:
    # the disc may differ by a cell at its rim, not more
    assert np.nanmax(np.abs(t[8:-8, 8:-8] - direct[8:-8, 8:-8])) < 0.05 * np.nanmax(np.abs(direct))
    assert (t[8:-8, 8:-8] < 0).all()  # a bowl: every inner cell lies below its neighbours' mean
