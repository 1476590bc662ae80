"""Covariate stacks and derived covariates (terrain, radiation, climate), with references.

Tolerances are stated next to each check, with the reason.
"""

from __future__ import annotations

from pathlib import Path

import dask.array as da
import geopandas as gpd
import h5py
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from permafrost import climate, solar, terrain
from permafrost.covariates import (
    cell_sizes,
    downscale_maat_da,
    extract_at_points,
    pisr_da,
    slope_da,
)
from permafrost.errors import ConfigError, CRSError, DataError, GridMismatchError
from permafrost.grid import grid_of
from permafrost.io.rasters import read_raster
from permafrost.workflows.covariates import build_stack

GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------------------------------
# factories
# ---------------------------------------------------------------------------------------
def geo_da(values, *, lon0=99.0, lat0=38.6, res=1 / 1200, crs=4326, nodata=-9999.0):
    ny, nx = values.shape
    x = lon0 + res * (np.arange(nx) + 0.5)
    y = lat0 - res * (np.arange(ny) + 0.5)
    arr = xr.DataArray(np.asarray(values, dtype="float32"), dims=("y", "x"),
                       coords={"y": y, "x": x})
    return arr.rio.write_crs(crs).rio.write_nodata(nodata)


def write(arr, path):
    arr.rio.to_raster(path)
    return path


def synthetic_dem(ny=120, nx=160):
    yy, xx = np.mgrid[0:ny, 0:nx]
    return 3500 + 600 * np.sin(xx / 15.0) * np.cos(yy / 20.0) + 3.0 * (ny - yy)


@pytest.fixture
def cov_dir(tmp_path):
    d = tmp_path / "cov"
    d.mkdir()
    dem = synthetic_dem()
    write(geo_da(dem), d / "dem.tif")
    write(geo_da(2.0 - 0.0065 * (dem - 3000)), d / "maat.tif")
    return d


# ---------------------------------------------------------------------------------------
# terrain
# ---------------------------------------------------------------------------------------
def test_cell_size_matches_pyproj_geod():
    lats = np.array([0.0, 38.5, 47.0, 70.0, 85.0])
    dlon = dlat = 1 / 1800
    dx, dy = terrain.geographic_cell_size(lats, dlon, dlat)
    for lat, gx, gy in zip(lats, dx, dy):
        _, _, ex = GEOD.inv(10.0 - dlon / 2, lat, 10.0 + dlon / 2, lat)
        _, _, ey = GEOD.inv(10.0, lat - dlat / 2, 10.0, lat + dlat / 2)
        # differential lengths vs finite geodesics over 1 arcsec: agree to 1e-6 relative
        assert gx == pytest.approx(ex, rel=1e-6)
        assert gy == pytest.approx(ey, rel=1e-6)


@pytest.mark.parametrize("gx,gy", [(0.3, 0.0), (0.0, -0.5), (0.2, 0.2), (-1.0, 0.4)])
def test_slope_aspect_of_a_plane_are_exact(gx, gy):
    # z rises gx per metre east and gy per metre north; rows run north -> south
    dx, dy = 30.0, 25.0
    yy, xx = np.mgrid[0:20, 0:30]
    z = gx * xx * dx + gy * (-yy) * dy
    s = terrain.slope(z, dx=dx, dy=dy)[1:-1, 1:-1]
    a = terrain.aspect(z, dx=dx, dy=dy)[1:-1, 1:-1]
    np.testing.assert_allclose(s, np.degrees(np.arctan(np.hypot(gx, gy))), atol=1e-9)
    # aspect = direction of steepest descent, clockwise from north
    np.testing.assert_allclose(a, np.degrees(np.arctan2(-gx, -gy)) % 360, atol=1e-9)


def test_flat_aspect_is_nan_and_northness_zero():
    z = np.full((5, 5), 100.0)
    a = terrain.aspect(z, dx=10, dy=10)
    assert np.isnan(a).all()
    assert (terrain.northness(a) == 0).all() and (terrain.eastness(a) == 0).all()


@given(st.floats(0, 359.999))
@settings(max_examples=50, deadline=None)
def test_northness_eastness_unit_circle(a):
    n, e = terrain.northness(a), terrain.eastness(a)
    assert n ** 2 + e ** 2 == pytest.approx(1.0)


def test_slope_da_is_lazy_and_matches_numpy(cov_dir):
    ds = build_stack(cov_dir, chunks=50)
    s = slope_da(ds.dem)
    assert isinstance(s.data, da.Array)
    dx, dy = cell_sizes(grid_of(ds))
    ref = terrain.slope(ds.dem.values, dx=dx, dy=dy)
    # chunked (map_overlap, halo 1) == whole-array computation
    np.testing.assert_allclose(s.values, ref, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("crs", [4326, 32647])
def test_terrain_covariates_share_one_gradient_per_block_and_ignore_the_chunking(crs):
    """Slope, aspect, northness, eastness and PISR of one DEM computed together read the
    DEM with its halo and form its gradient once per block (issue 24: derived covariates
    once per block); their values are the same bits in any chunking (geographic grid, and a
    UTM grid whose Jacobian comes from the projection)."""
    import permafrost.covariates as cv

    dem_np = synthetic_dem(90, 110)
    if crs == 4326:
        dem = geo_da(dem_np)
    else:
        dem = geo_da(dem_np, lon0=500_000.0, lat0=4_200_000.0, res=30.0, crs=crs)

    def stack(chunk):
        d = dem.chunk({"y": chunk, "x": chunk})
        return xr.Dataset({"slope": slope_da(d), "aspect": cv.aspect_da(d),
                           "northness": cv.northness_da(d), "eastness": cv.eastness_da(d),
                           "pisr": pisr_da(d, day_step=30, time_step_h=1.0)})

    ds = stack(40)
    keys = [k for k in dict(ds.__dask_graph__())
            if isinstance(k, tuple) and str(k[0]).startswith("ground-gradient-")]
    n_blocks = int(np.prod([len(c) for c in ds.slope.data.chunks]))
    assert len(keys) == n_blocks == 9
    a, b = ds.compute(), stack(33).compute()
    for name in a.data_vars:
        np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)
    # against the whole-array science functions (float32 rounding of the lazy output)
    if crs == 4326:
        dx, dy = cell_sizes(grid_of(dem))
        ref = terrain.slope(dem.values, dx=dx, dy=dy).astype(np.float32)
    else:
        jac = terrain.ground_jacobian(dem.rio.crs, dem.rio.transform(), dem.shape)
        ref = terrain.slope(dem.values, dx=30.0, dy=30.0, jacobian=jac).astype(np.float32)
    np.testing.assert_array_equal(a.slope.values, ref)


# ---------------------------------------------------------------------------------------
# solar radiation
# ---------------------------------------------------------------------------------------
def test_toa_horizontal_matches_closed_form_daily_insolation():
    lats = np.array([0.0, 30.0, 47.0, 60.0])
    num = solar.pisr_annual(0.0, 0.0, lats, transmissivity=None, day_step=1, time_step_h=0.1)
    days = np.arange(1.5, 366, 1.0)
    ref = np.array([solar.daily_toa_insolation(lat, days).mean() for lat in lats])
    # hour-angle sum vs Berger's closed form: 0.3 % (time discretisation at sunrise/sunset)
    np.testing.assert_allclose(num, ref, rtol=3e-3)


def test_toa_annual_mean_equator_and_pole_published_values():
    # Annual mean TOA insolation: ~418 W m-2 at the equator, ~173 W m-2 at the poles
    # (e.g. Hartmann 2016, Global Physical Climatology, Fig. 2.6; S0 = 1361 W m-2 here).
    eq = solar.pisr_annual(0.0, 0.0, 0.0, transmissivity=None, day_step=1, time_step_h=0.1)
    pole = solar.pisr_annual(0.0, 0.0, 89.99, transmissivity=None, day_step=1, time_step_h=0.1)
    assert float(eq) == pytest.approx(417.5, abs=3.0)
    assert float(pole) == pytest.approx(173.0, abs=3.0)
    # pole, analytic: S0 sin(obliquity) / pi (circular orbit) = 172.4 W m-2
    assert float(pole) == pytest.approx(1361 * np.sin(np.radians(23.44)) / np.pi, rel=0.01)


def test_slope_facing_equator_gets_more_and_atmosphere_reduces():
    s = solar.pisr_annual(30.0, 180.0, 46.8)
    n = solar.pisr_annual(30.0, 0.0, 46.8)
    h = solar.pisr_annual(0.0, 0.0, 46.8)
    toa = solar.pisr_annual(0.0, 0.0, 46.8, transmissivity=None)
    assert s > h > n
    assert h < toa
    # higher elevation -> shorter optical path -> more radiation
    assert solar.pisr_annual(0.0, 0.0, 46.8, elevation_m=3000) > h


def test_horizon_shading_only_reduces():
    ny, nx = 40, 40
    z = np.zeros((ny, nx))
    z[:5, :] = 2000.0  # a wall to the north... and one to the south
    z[-5:, :] = 2000.0
    hz = solar.horizon_angles(z, dx=30.0, dy=30.0, n_directions=16, max_distance_m=2000)
    assert hz.shape == (16, ny, nx)
    assert hz[8, 20, 20] > 20  # looking south (azimuth 180) at the southern wall
    assert solar.horizon_angles(np.zeros((10, 10)), dx=30, dy=30).max() == 0
    flat = np.zeros((ny, nx))
    lat = np.full((ny, nx), 46.8)
    free = solar.pisr_annual(flat, flat, lat, day_step=15, time_step_h=0.5)
    shaded = solar.pisr_annual(flat, flat, lat, day_step=15, time_step_h=0.5, horizon_deg=hz)
    assert (shaded <= free + 1e-9).all()
    assert shaded[20, 20] < 0.8 * free[20, 20]


def test_pisr_lookup_table_matches_direct_computation(cov_dir):
    ds = build_stack(cov_dir, chunks=60)
    p = pisr_da(ds.dem, day_step=10, time_step_h=0.5).values
    dx, dy = cell_sizes(grid_of(ds))
    s = terrain.slope(ds.dem.values, dx=dx, dy=dy)
    a = terrain.aspect(ds.dem.values, dx=dx, dy=dy)
    lat = np.broadcast_to(ds.y.values[:, None], s.shape)
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, s.shape[0], 200), rng.integers(0, s.shape[1], 200)
    direct = solar.pisr_annual(s[i, j], a[i, j], lat[i, j], elevation_m=ds.dem.values[i, j],
                               day_step=10, time_step_h=0.5)
    # table nodes every 2 deg slope / 10 deg aspect / 500 m: interpolation error < 1.5 %
    np.testing.assert_allclose(p[i, j], direct, rtol=0.015)


def test_pisr_on_broadcast_axes_equals_the_full_mesh_bit_for_bit():
    """PISR's table passes its nodes as broadcast axes, so the sun and the air mass are
    computed per (latitude, elevation) only; the values equal those of the full mesh."""
    lats, elevs = np.array([31.0, 38.5, 46.0]), np.array([0.0, 2500.0, 5600.0])
    slopes, aspects = np.arange(0.0, 91.0, 15.0), np.arange(0.0, 361.0, 45.0)
    mesh = np.meshgrid(lats, elevs, slopes, aspects, indexing="ij")
    for tau in (0.7, None):
        full = solar.pisr_annual(mesh[2], mesh[3], mesh[0], elevation_m=mesh[1],
                                 transmissivity=tau, day_step=20, time_step_h=1.0)
        axes = solar.pisr_annual(slopes[None, None, :, None], aspects[None, None, None, :],
                                 lats[:, None, None, None],
                                 elevation_m=elevs[None, :, None, None],
                                 transmissivity=tau, day_step=20, time_step_h=1.0)
        assert axes.shape == full.shape == (3, 3, 7, 9)
        np.testing.assert_array_equal(axes, full)


def test_pisr_table_is_built_once_per_content(cov_dir, monkeypatch):
    """Opening the same stack twice (a command's predict step and its applicability check)
    builds PISR's table once; another elevation range or option builds its own; the values
    are the same either way."""
    import permafrost.covariates as cv

    calls = []
    real = solar.pisr_annual
    monkeypatch.setattr(cv.solar, "pisr_annual",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    cv._pisr_lut.cache_clear()
    ds = build_stack(cov_dir, chunks=60)
    first = pisr_da(ds.dem, day_step=30, time_step_h=1.0).values
    second = pisr_da(build_stack(cov_dir, chunks=45).dem, day_step=30, time_step_h=1.0).values
    assert len(calls) == 1
    np.testing.assert_array_equal(first, second)
    pisr_da(ds.dem + 100.0, day_step=30, time_step_h=1.0).values  # another elevation range
    pisr_da(ds.dem, day_step=30, time_step_h=1.0, transmissivity=0.6).values
    assert len(calls) == 3
    cv._pisr_lut.cache_clear()


# ---------------------------------------------------------------------------------------
# climate
# ---------------------------------------------------------------------------------------
def test_frost_number_analytic():
    assert climate.frost_number(1000.0, 1000.0) == pytest.approx(0.5)
    assert climate.frost_number(500.0, 0.0) == pytest.approx(1.0)
    assert climate.frost_number(0.0, 500.0) == pytest.approx(0.0)
    # sqrt(2500) / (sqrt(2500) + sqrt(400)) = 50 / 70
    assert climate.frost_number(2500.0, 400.0) == pytest.approx(50 / 70)
    assert np.isnan(climate.frost_number(0.0, 0.0))
    assert np.isnan(climate.frost_number(-1.0, 10.0))


@given(st.floats(1, 5000), st.floats(1, 5000), st.floats(1, 1000))
@settings(max_examples=50, deadline=None)
def test_frost_number_monotone(ddf, ddt, extra):
    f = climate.frost_number(ddf, ddt)
    assert 0 < f < 1
    assert climate.frost_number(ddf + extra, ddt) > f
    assert climate.frost_number(ddf, ddt + extra) < f


def test_degree_days_of_constant_months():
    t = np.array([-10.0] * 6 + [5.0] * 6)
    dim = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    ddf, ddt = climate.degree_days(t)
    assert ddf == pytest.approx(10 * dim[:6].sum())
    assert ddt == pytest.approx(5 * dim[6:].sum())
    with pytest.raises(ValueError):
        climate.degree_days(np.zeros(13))


def test_estimate_lapse_rate_recovers_known_value():
    rng = np.random.default_rng(1)
    z = rng.uniform(1000, 4000, 200)
    t = 15 - 0.0058 * z + rng.normal(0, 0.2, 200)
    b, se = climate.estimate_lapse_rate(t, z)
    assert b == pytest.approx(-0.0058, abs=4 * se)
    assert se < 2e-4


def test_downscale_maat_is_exact_for_linear_fields():
    # coarse grid 0.05 deg; sea-level T linear in lon/lat -> bilinear interpolation exact
    lapse = -0.006
    cx = 99.0 + 0.05 * (np.arange(8) + 0.5)
    cy = 38.7 - 0.05 * (np.arange(6) + 0.5)
    CX, CY = np.meshgrid(cx, cy)
    zc = 3000 + 500 * np.sin(CX * 7) + 300 * np.cos(CY * 9)
    t0 = 20 + 2.0 * (CX - 99) - 5.0 * (CY - 38.5)
    coarse = geo_da(t0 + lapse * zc, lon0=99.0, lat0=38.7, res=0.05)
    coarse_z = geo_da(zc, lon0=99.0, lat0=38.7, res=0.05)
    dem = geo_da(synthetic_dem(90, 120), lon0=99.05, lat0=38.65, res=1 / 600)
    out = downscale_maat_da(coarse, coarse_z, dem.chunk(40), lapse_rate=lapse)
    assert isinstance(out.data, da.Array)
    FX, FY = np.meshgrid(dem.x.values, dem.y.values)
    expect = 20 + 2.0 * (FX - 99) - 5.0 * (FY - 38.5) + lapse * dem.values
    np.testing.assert_allclose(out.values, expect, atol=2e-3)  # float32 output


# ---------------------------------------------------------------------------------------
# stacks
# ---------------------------------------------------------------------------------------
def test_directory_stack_is_lazy(cov_dir):
    ds = build_stack(cov_dir, chunks=64)
    assert list(ds.data_vars) == ["dem", "maat"]
    assert all(isinstance(ds[v].data, da.Array) for v in ds.data_vars)
    assert ds.rio.crs.to_epsg() == 4326


def test_mismatched_crs_without_target_grid_is_one_line(cov_dir):
    # UTM coordinates (degrees labelled UTM are refused earlier, by the read checks)
    utm = geo_da(synthetic_dem(), crs=32647, lon0=500000.0, lat0=4270000.0, res=100.0)
    write(utm, cov_dir / "zz_other.tif")
    with pytest.raises(CRSError) as ei:
        build_stack(cov_dir)
    msg = str(ei.value)
    assert "\n" not in msg and "zz_other.tif" in msg and "[grid]" in msg


def test_mismatched_grid_same_crs(cov_dir):
    write(geo_da(synthetic_dem(50, 50), res=1 / 600), cov_dir / "coarse.tif")
    with pytest.raises(GridMismatchError, match="coarse.tif.*target grid"):
        build_stack(cov_dir)


def test_like_aligns_other_grids(cov_dir, tmp_path):
    # a linear field on a coarser grid, bilinear to the DEM grid: exact inside
    other = tmp_path / "other"
    other.mkdir()
    ny, nx = 40, 60
    x = 99.0 + (1 / 400) * (np.arange(nx) + 0.5)
    y = 38.6 - (1 / 400) * (np.arange(ny) + 0.5)
    X, Y = np.meshgrid(x, y)
    write(geo_da(100 * (X - 99) + 50 * (Y - 38.5), res=1 / 400), other / "lin.tif")
    ds = build_stack(other, like=cov_dir / "dem.tif")
    assert ds.lin.shape == (120, 160)
    FX, FY = np.meshgrid(ds.x.values, ds.y.values)
    inner = (slice(5, -5), slice(5, -5))
    np.testing.assert_allclose(ds.lin.values[inner], (100 * (FX - 99) + 50 * (FY - 38.5))[inner],
                               atol=1e-3)


def test_every_kind_of_source_gives_the_same_stack(cov_dir, tmp_path):
    """One opener: a directory, a list of its files, the Dataset and a builder agree; the
    same grid rule (strict unless a target grid is given) holds for a list of files."""
    from_dir = build_stack(cov_dir, chunks=64)
    files = sorted(cov_dir.glob("*.tif"))
    from_list = build_stack(files, chunks=64)
    xr.testing.assert_identical(from_dir.drop_attrs(), from_list.drop_attrs())
    assert from_list.attrs["source"] == ",".join(str(f) for f in files)
    assert build_stack(from_dir) is from_dir
    built = build_stack(lambda chunks: build_stack(cov_dir, chunks=chunks), chunks=32)
    assert built["dem"].data.chunksize == (32, 32)
    one = build_stack(cov_dir / "dem.tif")
    assert list(one.data_vars) == ["dem"]
    write(geo_da(synthetic_dem(50, 50), res=1 / 600), tmp_path / "coarse.tif")
    with pytest.raises(GridMismatchError, match="coarse.tif"):
        build_stack([*files, tmp_path / "coarse.tif"])
    aligned = build_stack([*files, tmp_path / "coarse.tif"], like=cov_dir / "dem.tif")
    assert aligned["coarse"].shape == from_dir["dem"].shape


def test_changes_apply_to_an_in_memory_stack_and_bad_sources_are_one_line(cov_dir, tmp_path):
    from types import SimpleNamespace

    from permafrost.covariates import CHANGED_ATTR
    from permafrost.errors import InputError, InputFileError

    ds = build_stack(cov_dir)
    warm = build_stack(ds, changes={"maat": SimpleNamespace(offset=2.0, scale=None, file=None)})
    np.testing.assert_allclose(warm["maat"].values, ds["maat"].values + 2.0, rtol=1e-6)
    assert warm["maat"].attrs[CHANGED_ATTR] == "maat" and CHANGED_ATTR not in ds["maat"].attrs
    with pytest.raises(ConfigError, match="mat"):
        build_stack(ds, changes={"mat": SimpleNamespace(offset=1.0)})
    with pytest.raises(InputError, match="like"):
        build_stack(ds, like=cov_dir / "dem.tif")
    with pytest.raises(InputError, match="Dataset"):
        build_stack(lambda chunks: None)
    write(geo_da(synthetic_dem()), cov_dir / "dem.tiff")
    with pytest.raises(DataError, match="two covariates are named 'dem'"):
        build_stack(cov_dir)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputFileError, match="not a directory"):
        build_stack(tmp_path / "notes.txt")


def test_a_new_derived_covariate_is_one_function_and_one_entry(cov_dir, tmp_path, monkeypatch):
    """The registry is the stack reader's only list: a function registered in
    DERIVED_COVARIATES is usable from a stack file with its inputs and options, the roles of
    its inputs are known, a wrong option names its key, and the docs list every entry."""
    from permafrost import covariates as cv
    from permafrost.workflows.covariates import _roles

    def relief_da(dem, *, name="relief", offset_m=0.0):
        """Elevation above the grid's lowest cell [m] (a test covariate)."""
        return (dem - float(dem.min()) + offset_m).rename(name)

    monkeypatch.setitem(cv.DERIVED_COVARIATES, "relief", cv.DerivedCovariate(
        relief_da, (cv.GridInput("surface", "dem", "elevation"),), "m", "test"))
    toml = tmp_path / "stack.toml"
    body = f"""
[covariates.dem]
path = "{cov_dir / 'dem.tif'}"
use = false

[derived.rel]
function = "relief"
surface = "dem"
offset_m = 10.0
"""
    toml.write_text(body)
    ds = build_stack(toml)
    dem = build_stack(cov_dir).dem.values
    np.testing.assert_allclose(ds.rel.values, dem - dem.min() + 10.0, rtol=1e-6)
    assert _roles({"covariates": {"dem": {}}, "derived": {"rel": {"function": "relief"}}}) \
        == {"dem": "elevation"}
    toml.write_text(body.replace("offset_m", "offset_km"))
    with pytest.raises(ConfigError, match="derived.rel"):
        build_stack(toml)
    method = (Path(__file__).parents[1] / "docs" / "method.md").read_text()
    for name in sorted(set(cv.DERIVED_COVARIATES) - {"relief"}):
        assert f"`{name}`" in method, f"docs/method.md does not describe {name}"


def test_toml_stack_with_derived_and_categorical(cov_dir, tmp_path):
    cat = np.where(synthetic_dem() > 3600, 3, 1).astype("float32")
    # class codes as integers: a float raster declared categorical is refused
    write(geo_da(cat[::2, ::2], res=1 / 600).rio.write_nodata(255).astype("uint8"),
          tmp_path / "landcover.tif")
    cx = 99.0 + 0.05 * (np.arange(4) + 0.5)
    cy = 38.65 - 0.05 * (np.arange(4) + 0.5)
    write(geo_da(np.full((4, 4), -2.0), lon0=98.95, lat0=38.65, res=0.05), tmp_path / "mc.tif")
    write(geo_da(np.full((4, 4), 3000.0), lon0=98.95, lat0=38.65, res=0.05), tmp_path / "ec.tif")
    assert len(cx) == len(cy)
    toml = tmp_path / "stack.toml"
    toml.write_text(f"""
[grid]
like = "{cov_dir / 'dem.tif'}"
chunks = 64

[covariates.dem]
path = "{cov_dir / 'dem.tif'}"

[covariates.landcover]
path = "landcover.tif"
kind = "categorical"

[derived.slope]
function = "slope"
dem = "dem"

[derived.northness]
function = "northness"

[derived.pisr]
function = "pisr"
day_step = 30
time_step_h = 1.0

[derived.maat_ds]
function = "downscale_maat"
coarse = "mc.tif"
coarse_elevation = "ec.tif"
lapse_rate = -0.005
""")
    ds = build_stack(toml)
    assert list(ds.data_vars) == ["dem", "landcover", "slope", "northness", "pisr", "maat_ds"]
    assert set(np.unique(ds.landcover.values[np.isfinite(ds.landcover.values)])) <= {1.0, 3.0}
    assert ds.landcover.attrs["kind"] == "categorical"
    assert ds.landcover.attrs["resampling"] == "nearest"
    # uniform coarse field: MAAT = -2 + lapse (z - 3000) exactly
    np.testing.assert_allclose(ds.maat_ds.values, -2 - 0.005 * (ds.dem.values - 3000), atol=1e-3)
    assert float(ds.northness.min()) >= -1 and float(ds.northness.max()) <= 1


def test_toml_errors_are_one_line(tmp_path, cov_dir):
    toml = tmp_path / "bad.toml"
    toml.write_text(f'[covariates.dem]\npath = "{cov_dir / "dem.tif"}"\n'
                    '[derived.x]\nfunction = "curvature"\n')
    with pytest.raises(ConfigError, match="derived.x.function.*unknown derived function"):
        build_stack(toml)
    toml.write_text(f'[covariates.dem]\npath = "{cov_dir / "dem.tif"}"\n'
                    '[derived.s]\nfunction = "slope"\ndem = "elevation"\n')
    with pytest.raises(ConfigError, match="'elevation'.*not a covariate"):
        build_stack(toml)


# ---------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------
def _points(lons, lats, crs=4326):
    return gpd.GeoDataFrame({"label": np.zeros(len(lons), int)},
                            geometry=gpd.points_from_xy(lons, lats), crs=crs)


def test_extraction_batched_equals_direct_and_counts_drops(cov_dir):
    ds = build_stack(cov_dir, chunks=50)
    rng = np.random.default_rng(3)
    ny, nx = ds.dem.shape
    i, j = rng.integers(0, ny, 300), rng.integers(0, nx, 300)
    lons, lats = ds.x.values[j], ds.y.values[i]
    jn = 60
    lons = np.append(lons, [50.0, ds.x.values[jn]])  # one outside, one on a nodata cell below
    lats = np.append(lats, [10.0, ds.y.values[5]])
    dem = ds.dem.values.copy()
    ds["dem"] = ds.dem.copy(data=da.from_array(np.where(
        (np.arange(ny)[:, None] == 5) & (np.arange(nx)[None, :] == jn), np.nan, dem),
        chunks=50).astype("float32"))
    pts = _points(lons, lats)
    a1 = extract_at_points(ds, pts, batch_size=7)
    df1, keep1, drop1 = a1.values, a1.keep, a1.dropped
    a2 = extract_at_points(ds.compute(), pts, batch_size=10_000)
    df2, keep2, drop2 = a2.values, a2.keep, a2.dropped
    assert drop1 == drop2 == {"outside the covariate grid": 1, "no data in covariate 'dem'": 1}
    np.testing.assert_array_equal(keep1, keep2)
    np.testing.assert_array_equal(df1.to_numpy(), df2.to_numpy())
    np.testing.assert_allclose(df1["dem"].to_numpy()[:300], dem[i, j])
    # points in another CRS are reprojected
    utm = pts.iloc[:300].to_crs(32647)
    df3 = extract_at_points(ds, utm).values
    np.testing.assert_allclose(df3.to_numpy(), df1.to_numpy()[:300], rtol=1e-6)


def test_covariate_all_nodata_at_labels(cov_dir):
    ds = build_stack(cov_dir)
    ds["ndvi"] = ds.dem * np.nan
    pts = _points(ds.x.values[:10], ds.y.values[:10])
    with pytest.raises(DataError, match="'ndvi' is no-data at all 10 label points"):
        extract_at_points(ds, pts, source="cov/")


def test_points_without_crs(cov_dir):
    ds = build_stack(cov_dir)
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy([99.01], [38.59]))
    with pytest.raises(CRSError, match="no CRS"):
        extract_at_points(ds, pts)


# ---------------------------------------------------------------------------------------
# real data: Oetztal SRTM + ERA5-Land
# ---------------------------------------------------------------------------------------
OETZ = "oggm_alps_hma_dem_climate"


def _read_era5(path: Path, var: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with h5py.File(path) as h:
        v = h[var]
        raw = v[...].astype("float64")
        raw[raw == v.attrs["_FillValue"][0]] = np.nan
        vals = raw * v.attrs["scale_factor"][0] + v.attrs["add_offset"][0]
        return vals, h["longitude"][...].astype(float), h["latitude"][...].astype(float)


@pytest.fixture(scope="module")
def oetztal(realdata):
    d = realdata / OETZ
    if not (d / "srtm_oetztal.tif").exists():
        pytest.skip("Oetztal files absent")
    dem = read_raster(d / "srtm_oetztal.tif", chunks=200).astype("float32")
    return d, dem


@pytest.mark.realdata
def test_oetztal_slope_vs_geod_central_differences(oetztal):
    d, dem = oetztal
    s = slope_da(dem).values
    z = dem.values.astype(float)
    lat = dem.y.values
    res_lon = abs(float(dem.x[1] - dem.x[0]))
    res_lat = abs(float(dem.y[1] - dem.y[0]))
    # independent: geodesic distances (pyproj.Geod) and numpy central differences
    dxs = np.array([GEOD.inv(10.8, la, 10.8 + res_lon, la)[2] for la in lat])
    dys = np.array([GEOD.inv(10.8, la - res_lat / 2, 10.8, la + res_lat / 2)[2] for la in lat])
    gy_rows, gx = np.gradient(z, axis=(0, 1))
    gx = gx / dxs[:, None]
    gy = -gy_rows / dys[:, None]
    ref = np.degrees(np.arctan(np.hypot(gx, gy)))
    inner = (slice(2, -2), slice(2, -2))
    diff = (s - ref)[inner]
    ok = np.isfinite(diff)
    # Horn (3x3 weighted) vs plain central differences on a 90 m DEM: no bias beyond
    # 0.5 deg on average, median |difference| under 1.5 deg, correlation above 0.97
    assert abs(np.mean(diff[ok])) < 0.5
    assert np.median(np.abs(diff[ok])) < 1.5
    assert np.corrcoef(s[inner][ok], ref[inner][ok])[0, 1] > 0.97
    assert 20 < np.nanmean(s) < 35  # Alpine relief: mean slope of the Oetztal ~ 25-30 deg


@pytest.mark.realdata
def test_oetztal_pisr_aspect_contrast_and_flat_cells(oetztal):
    _, dem = oetztal
    sub = dem.isel(y=slice(150, 270), x=slice(200, 340))
    p = pisr_da(sub, day_step=10, time_step_h=0.5).values
    dx, dy = cell_sizes(grid_of(sub))
    s = terrain.slope(sub.values.astype(float), dx=dx, dy=dy)
    a = terrain.aspect(sub.values.astype(float), dx=dx, dy=dy)
    south = (s > 20) & (np.abs(a - 180) < 30)
    north = (s > 20) & ((a < 30) | (a > 330))
    assert south.sum() > 50 and north.sum() > 50
    assert np.nanmean(p[south]) > 1.3 * np.nanmean(p[north])
    # all values between 0 and the TOA annual mean on a surface facing the sun
    assert np.nanmin(p) > 0 and np.nanmax(p) < 420
    # shading: never more than without, and lower on average in this deep relief
    small = sub.isel(y=slice(0, 60), x=slice(0, 60))
    ps = pisr_da(small, shading=True, shading_distance_m=2000, n_directions=8,
                 day_step=30, time_step_h=1.0).values
    pn = pisr_da(small, shading=False, day_step=30, time_step_h=1.0).values
    assert np.nanmean(ps) < np.nanmean(pn)
    assert np.nanmean(ps <= pn * 1.02) > 0.99  # LUT vs direct: within 2 %


@pytest.mark.realdata
def test_oetztal_era5_lapse_rate_and_downscaled_maat(oetztal):
    d, dem = oetztal
    t2m, lon, lat = _read_era5(d / "sel_era5_land_monthly_t2m_1981-2018.nc", "t2m")
    z, _, _ = _read_era5(d / "sel_era5_land_invariant.nc", "z")
    maat = np.nanmean(t2m, axis=0) - 273.15
    zc = z[0] / 9.80665
    b, se = climate.estimate_lapse_rate(maat, zc)
    # published Alpine annual lapse rates: -5.4 to -5.8 degC/km (Rolland 2003); ERA5-Land
    # adjusts ERA5 to its finer orography with -6.5 degC/km: accept -4.5 to -7.0 degC/km
    assert -0.0070 < b < -0.0045, b
    res = abs(float(lon[1] - lon[0]))
    coarse = geo_da(maat, lon0=float(lon[0]) - res / 2, lat0=float(lat[0]) + res / 2, res=res)
    coarse_z = geo_da(zc, lon0=float(lon[0]) - res / 2, lat0=float(lat[0]) + res / 2, res=res)
    fine = downscale_maat_da(coarse, coarse_z, dem, lapse_rate=b).values
    zf = dem.values.astype(float)
    ok = np.isfinite(fine) & np.isfinite(zf)
    # the downscaled field varies with elevation at the chosen lapse rate (the horizontal
    # interpolation of the sea-level field adds little): within 0.3 degC/km
    b_fine, _ = climate.estimate_lapse_rate(fine[ok], zf[ok])
    assert b_fine == pytest.approx(b, abs=0.0003)
    # each ERA5 cell: the mean of the downscaled field over its footprint differs from the
    # cell value by the lapse rate times the elevation difference (0.3 degC tolerance:
    # bilinear interpolation between neighbouring cells)
    X, Y = np.meshgrid(dem.x.values, dem.y.values)
    checked = 0
    for i, la in enumerate(lat):
        for j, lo in enumerate(lon):
            m = ok & (np.abs(X - lo) < res / 2) & (np.abs(Y - la) < res / 2)
            if m.sum() < 500:
                continue
            expect = maat[i, j] + b * (zf[m].mean() - zc[i, j])
            assert fine[m].mean() == pytest.approx(expect, abs=0.3)
            checked += 1
    assert checked >= 6
    # 0 degC isotherm of the downscaled MAAT in the Oetztal: 1800-2800 m (the lower limit of
    # discontinuous permafrost lies near MAAT -1 to -2 degC at ~2500 m, Boeckli et al. 2012)
    band = ok & (np.abs(fine) < 0.25)
    assert 1800 < np.median(zf[band]) < 2800


# ---------------------------------------------------------------------------------------
# sample region: the generator's own downscaling and radiation (independent code)
# ---------------------------------------------------------------------------------------
def test_sample_region_maat_downscaling_reproduces_generator(sample_dir):
    import json

    lapse = json.loads((sample_dir / "truth" / "truth.json").read_text())["climate"][
        "lapse_rate_c_per_km"] / 1000.0
    dem = read_raster(sample_dir / "covariates" / "dem.tif", chunks=256)
    cm = read_raster(sample_dir / "climate" / "maat_coarse.tif")
    ce = read_raster(sample_dir / "climate" / "elevation_coarse.tif")
    out = downscale_maat_da(cm, ce, dem, lapse_rate=lapse).values
    ref = read_raster(sample_dir / "covariates" / "maat.tif").values
    X, Y = np.meshgrid(dem.x.values, dem.y.values)
    inner = ((X > cm.x.values.min()) & (X < cm.x.values.max()) & (Y > cm.y.values.min())
             & (Y < cm.y.values.max()))
    # between coarse cell centres both are the same bilinear + lapse-rate formula: 1e-3 degC
    # (float32); outside them the generator extrapolates linearly, we hold the edge value
    np.testing.assert_allclose(out[inner], ref[inner], atol=1e-3)


def test_sample_region_pisr_agrees_with_generator(sample_dir):
    import json

    tau = json.loads((sample_dir / "truth" / "truth.json").read_text())["pisr"]["tau"]
    dem = read_raster(sample_dir / "covariates" / "dem.tif", chunks=256)
    p = pisr_da(dem, transmissivity=tau).values
    ref = read_raster(sample_dir / "covariates" / "pisr.tif").values
    ok = np.isfinite(p) & np.isfinite(ref)
    # the generator uses Campbell & Norman's diffuse fraction and an exponential pressure
    # profile, we use Liu & Jordan and Kasten & Young: same pattern (r > 0.98), median within
    # 5 %, 98 % of cells within 10 %
    assert np.corrcoef(p[ok], ref[ok])[0, 1] > 0.98
    r = p[ok] / ref[ok]
    assert abs(np.median(r) - 1) < 0.05
    assert np.mean(np.abs(r - 1) < 0.10) > 0.98


def test_toml_projected_target_grid_reprojects_lazily(cov_dir, tmp_path):
    # target: UTM 47N grid of 100 m inside the geographic rasters; values follow the
    # geographic field (bilinear), slope is computed on the metric grid
    from pyproj import Transformer

    t = Transformer.from_crs(4326, 32647, always_xy=True)
    x0, y0 = t.transform(99.03, 38.53)
    x1, y1 = t.transform(99.10, 38.58)
    toml = tmp_path / "utm.toml"
    toml.write_text(f"""
[grid]
crs = "EPSG:32647"
resolution = 100
bounds = [{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}]
chunks = 32

[covariates.dem]
path = "{cov_dir / 'dem.tif'}"

[derived.slope]
function = "slope"
""")
    ds = build_stack(toml)
    assert ds.rio.crs.to_epsg() == 32647
    assert isinstance(ds.dem.data, da.Array)
    assert ds.dem.shape == (round((y1 - y0) / 100), round((x1 - x0) / 100))
    # compare with the source sampled at the target cell centres (bilinear vs nearest: the
    # DEM varies < 40 m between neighbouring source cells here)
    src = read_raster(cov_dir / "dem.tif")
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    lon, lat = Transformer.from_crs(32647, 4326, always_xy=True).transform(X, Y)
    ref = src.sel(x=xr.DataArray(lon.ravel()), y=xr.DataArray(lat.ravel()),
                  method="nearest").values.reshape(X.shape)
    assert np.nanmax(np.abs(ds.dem.values - ref)) < 40
    assert np.isfinite(ds.slope.values).all() and 0 <= float(ds.slope.min())


def test_toml_crs_mismatch_without_grid(cov_dir, tmp_path):
    write(geo_da(synthetic_dem(), crs=32647, lon0=500000.0, lat0=4270000.0, res=100.0),
          tmp_path / "utm.tif")
    toml = tmp_path / "s.toml"
    toml.write_text(f'[covariates.dem]\npath = "{cov_dir / "dem.tif"}"\n'
                    f'[covariates.other]\npath = "{tmp_path / "utm.tif"}"\n')
    with pytest.raises(CRSError, match="different CRS.*no target grid.*\\[grid\\]"):
        build_stack(toml)


def test_pisr_on_projected_grid_matches_geographic(cov_dir, tmp_path):
    # the same terrain on a UTM grid: PISR depends on latitude, slope, aspect, elevation only
    from pyproj import Transformer

    t = Transformer.from_crs(4326, 32647, always_xy=True)
    x0, y0 = t.transform(99.03, 38.53)
    x1, y1 = t.transform(99.10, 38.58)
    toml = tmp_path / "utm.toml"
    toml.write_text(f"""
[grid]
crs = "EPSG:32647"
resolution = 60
bounds = [{x0:.0f}, {y0:.0f}, {x1:.0f}, {y1:.0f}]
chunks = 40

[covariates.dem]
path = "{cov_dir / 'dem.tif'}"

[derived.pisr]
function = "pisr"
day_step = 15
time_step_h = 0.5
""")
    ds = build_stack(toml)
    p = ds.pisr.values
    dx, dy = cell_sizes(grid_of(ds))
    z = ds.dem.values.astype(float)
    s, a = terrain.slope(z, dx=dx, dy=dy), terrain.aspect(z, dx=dx, dy=dy)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    lat = Transformer.from_crs(32647, 4326, always_xy=True).transform(X, Y)[1]
    direct = solar.pisr_annual(s[::7, ::7], a[::7, ::7], lat[::7, ::7], elevation_m=z[::7, ::7],
                               day_step=15, time_step_h=0.5)
    # note: the grid's own north (UTM) differs from true north by the meridian convergence
    # (< 1 deg here); the table interpolation error dominates: 1.5 %
    np.testing.assert_allclose(p[::7, ::7], direct, rtol=0.015)
