"""Tests of permafrost.grid: the point-to-cell rule and reading a raster at points, and of
the one metric frame and block geometry of permafrost.cv."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import xarray as xr
from affine import Affine

from permafrost.cv import block_boxes, block_index, metric_crs, metric_xy
from permafrost.errors import CRSError
from permafrost.grid import (
    Grid,
    cells_at_points,
    grid_of,
    grids_equal,
    read_cells,
    sample_at_points,
)

from factories import da_on_grid

#: 4 columns x 3 rows of 1000 m in UTM 47N, outer corner (400000, 4300000)
T = Affine(1000, 0, 400000, 0, -1000, 4300000)
UTM = "EPSG:32647"


def _raster():
    arr = np.arange(12, dtype="float32").reshape(3, 4)  # value = 4 * row + col
    arr[1, 1] = np.nan
    return da_on_grid(arr, T, UTM)


def test_cells_at_points_centres_edges_outside():
    g = Grid(pyproj.CRS(UTM), T, (3, 4))
    x = np.array([400500, 403500, 401000, 400000, 404000, 399999.999, 401500, np.nan])
    y = np.array([4299500, 4297500, 4298000, 4300000, 4299000, 4299000, 4297000, 4299000])
    row, col, inside = cells_at_points(g, x, y)
    # centre of (0, 0); centre of (2, 3); the corner shared by (0..1, 0..1) belongs to the
    # cell right of and below it; the outer corner is in; the right and bottom outer edges
    # and anything left of the grid are out; NaN is out
    assert inside.tolist() == [True, True, True, True, False, False, False, False]
    assert row[:4].tolist() == [0, 2, 2, 0] and col[:4].tolist() == [0, 3, 1, 0]
    assert row[-1] == -1 and col[-1] == -1


def test_cells_at_points_in_another_crs_through_pyproj():
    g = Grid(pyproj.CRS(UTM), T, (3, 4))
    x = np.array([400500.0, 403500.0, 401700.0])
    y = np.array([4299500.0, 4297500.0, 4298300.0])
    lon, lat = pyproj.Transformer.from_crs(UTM, 4326, always_xy=True).transform(x, y)
    row, col, inside = cells_at_points(g, lon, lat, crs="EPSG:4326")
    assert inside.all()
    assert row.tolist() == [0, 2, 1] and col.tolist() == [0, 3, 1]


def test_sample_at_points_values_nodata_and_lazy():
    da = _raster()
    x = np.array([400500, 403999, 401500, 399000, 402200])
    y = np.array([4299500, 4297001, 4298500, 4299000, 4298200])
    v, inside = sample_at_points(da, x, y, crs=UTM)
    assert inside.tolist() == [True, True, True, False, True]
    assert v[0] == 0 and v[1] == 11 and np.isnan(v[2]) and np.isnan(v[3]) and v[4] == 6
    assert v.dtype == np.float64
    lon, lat = pyproj.Transformer.from_crs(32647, 4326, always_xy=True).transform(x[:2], y[:2])
    v2, _ = sample_at_points(da.chunk({"y": 1}), lon, lat, crs="EPSG:4326", batch_size=1)
    assert v2.tolist() == [0, 11]


def test_sample_at_points_unmasked_nodata_and_a_band_dimension():
    arr = np.arange(12, dtype="float32").reshape(1, 3, 4)
    arr[0, 0, 1] = -9999
    da = xr.DataArray(arr, dims=("band", "y", "x"),
                      coords={"y": 4300000 - 1000 * (np.arange(3) + 0.5),
                              "x": 400000 + 1000 * (np.arange(4) + 0.5)})
    da = da.rio.write_crs(UTM).rio.write_transform(T).rio.write_nodata(-9999)
    v, inside = sample_at_points(da, [400500, 401500], [4299500, 4299500], crs=UTM)
    assert inside.all() and v[0] == 0 and np.isnan(v[1])


def test_sample_at_points_of_a_stack_gives_one_column_per_variable():
    a = _raster()
    ds = xr.Dataset({"a": a, "b": a * 2}).rio.write_crs(UTM)
    v, inside = sample_at_points(ds, [400500, 402500, 500000], [4299500, 4298500, 4299500],
                                 crs=UTM)
    assert v.shape == (3, 2) and inside.tolist() == [True, True, False]
    assert v[0].tolist() == [0, 0] and v[1].tolist() == [6, 12] and np.isnan(v[2]).all()


def test_sample_at_points_needs_crs():
    with pytest.raises(CRSError):
        sample_at_points(_raster(), [400500], [4299500], crs=None)
    with pytest.raises(CRSError):
        sample_at_points(xr.DataArray(np.zeros((3, 4)), dims=("y", "x")), [400500], [4299500],
                         crs=UTM)


def test_grids_equal_tolerates_float32_coordinates_only():
    a = _raster()
    assert grids_equal(a, a.copy())
    b = da_on_grid(a.values, Affine(1000, 0, 400000 + 1e-4, 0, -1000, 4300000), UTM)
    assert grids_equal(a, b)
    c = da_on_grid(a.values, Affine(1000, 0, 400500, 0, -1000, 4300000), UTM)
    assert not grids_equal(a, c)
    assert not grids_equal(a, da_on_grid(a.values, T, "EPSG:32646"))
    assert grid_of(a) == Grid(pyproj.CRS(UTM), T, (3, 4))


# ------------------------------------------------------------------------ blocking (cv)
def test_metric_crs_keeps_a_metric_crs_and_centres_an_aeqd_otherwise():
    assert metric_crs([400000], [4300000], UTM) == pyproj.CRS(UTM)
    lon = np.array([99.0, 100.0])
    lat = np.array([38.0, 39.0])
    frame = metric_crs(lon, lat, 4326)
    # a named CRS (QGIS shows its name, not "unknown"), an azimuthal equidistant frame
    # centred on the points
    assert frame.name.startswith("permafrost blocking frame")
    p4 = frame.to_proj4().split()
    assert {"+proj=aeqd", "+lat_0=38.5", "+lon_0=99.5", "+datum=WGS84", "+units=m"} <= set(p4)
    # distances from the centre are geodesic distances (azimuthal equidistant)
    mx, my = metric_xy(lon, lat, 4326)
    _, _, d = pyproj.Geod(ellps="WGS84").inv([99.5, 99.5], [38.5, 38.5], lon, lat)
    assert np.allclose(np.hypot(mx, my), d, rtol=1e-9)
    # a projected CRS in feet goes through lon/lat to the same kind of frame
    ft = pyproj.CRS("EPSG:2227")  # California zone 3, US survey feet
    fx, fy = pyproj.Transformer.from_crs(4326, ft, always_xy=True).transform([-122.0, -121.0],
                                                                             [37.5, 37.5])
    f2 = metric_crs(fx, fy, ft)
    assert {"+proj=aeqd", "+lon_0=-121.5"} <= set(f2.to_proj4().split())
    mx2, _ = metric_xy(fx, fy, ft)
    _, _, d2 = pyproj.Geod(ellps="WGS84").inv(-122.0, 37.5, -121.0, 37.5)
    assert abs((mx2[1] - mx2[0]) - d2) < 0.01 * d2
    with pytest.raises(CRSError):
        metric_crs([0], [0], None)


def test_block_boxes_are_the_blocks_of_block_index():
    x = np.array([10.0, 250.0, 990.0, 1010.0])
    y = np.array([5.0, 480.0, 20.0, 1990.0])
    ix, iy = block_index(x, y, 500.0)
    boxes = block_boxes(x, y, 500.0, ix, iy)
    for px, py, box in zip(x, y, boxes, strict=True):
        minx, miny, maxx, maxy = box.bounds
        assert minx <= px < maxx and miny <= py < maxy and maxx - minx == 500.0


def test_read_cells_computes_only_the_blocks_holding_cells_one_at_a_time():
    """issue 24: the stack is read at the labels block by block, never whole."""
    import threading

    import dask.array as dsa

    ny, nx, ch = 40, 60, 10
    full = np.arange(ny * nx, dtype="float64").reshape(ny, nx)
    seen, live, peak = [], [0], [0]
    lock = threading.Lock()

    def block(x, block_info=None):
        (r0, _), (c0, _) = block_info[None]["array-location"]
        with lock:
            seen.append((r0 // ch, c0 // ch))
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        out = full[r0:r0 + x.shape[0], c0:c0 + x.shape[1]].copy()
        with lock:
            live[0] -= 1
        return out

    lazy = dsa.zeros((ny, nx), chunks=ch).map_blocks(block, dtype="float64")
    da = da_on_grid(np.zeros((ny, nx), "float32"), T, UTM).copy(data=lazy)
    ds = xr.Dataset({"a": da, "b": da * 2}).rio.write_crs(UTM)
    rows = np.array([3, 35, 4, 12, 39, 0])
    cols = np.array([5, 59, 6, 48, 0, 11])
    v = read_cells(ds, rows, cols)
    np.testing.assert_array_equal(v[:, 0], full[rows, cols])
    np.testing.assert_array_equal(v[:, 1], 2 * full[rows, cols])
    # five blocks hold the six cells (two share block (0, 0)); the other 19 are never made
    assert sorted(set(seen)) == [(0, 0), (0, 1), (1, 4), (3, 0), (3, 5)]
    assert peak[0] == 1  # one block in memory at a time
    np.testing.assert_array_equal(read_cells(ds["a"], rows, cols), full[rows, cols])
    # NumPy-backed: the same values; no cells: an empty table
    np.testing.assert_array_equal(read_cells(ds.compute(), rows, cols)[:, 1], 2 * full[rows, cols])
    assert read_cells(ds, [], []).shape == (0, 2)


def test_sample_subgrid_is_whole_up_to_16_windows_then_bounded_and_spread():
    from permafrost.grid import sample_subgrid

    r, c = sample_subgrid((4096, 3000))  # 4 x 3 windows: the whole grid
    assert r.tolist() == list(range(4096)) and c.tolist() == list(range(3000))
    r, c = sample_subgrid((8192, 8192))  # 64 windows: 4 x 4 of them, first to last
    assert len(r) * len(c) == 16 * 1024**2
    assert r[0] == 0 and r[-1] == 8191 and c[0] == 0 and c[-1] == 8191
    assert (np.diff(r) > 0).all() and set(r // 1024) == {0, 2, 5, 7}
    r, c = sample_subgrid((1500, 40000))  # a strip: its 2 window rows, 8 window columns
    assert set(r // 1024) == {0, 1} and len(set(c // 1024)) == 8 and c[-1] == 39999
    r, c = sample_subgrid((10**6, 10**6))  # bounded whatever the size
    assert len(r) * len(c) <= 16 * 1024**2
