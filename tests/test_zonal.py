"""Zonal statistics engine against per-polygon numpy (the rasterstats definition)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio import features

from permafrost.zonal import (
    ZonalSpec,
    grouped_statistics,
    overlap_layers,
    zonal_statistics,
    zonal_statistics_points,
)

TR = Affine(10.0, 0, 1000.0, 0, -10.0, 5000.0)
H, W = 90, 120


def _scene(seed=0, n=60):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(H, W)).astype(np.float32)
    a[rng.random((H, W)) < 0.1] = np.nan
    x = rng.uniform(1000, 2200, n)
    y = rng.uniform(4100, 5000, n)
    geoms = [shapely.buffer(shapely.Point(px, py), r) for px, py, r in
             zip(x, y, rng.uniform(8, 120, n))]
    return a, geoms


def _brute(a, g, all_touched=False):
    m = features.geometry_mask([g], (H, W), TR, invert=True, all_touched=all_touched)
    v = a[m]
    return int(m.sum()), v[np.isfinite(v)]


@pytest.mark.parametrize("block_rows", [7, 32, 1000, None])
@pytest.mark.parametrize("all_touched", [False, True])
def test_matches_numpy_per_polygon(block_rows, all_touched):
    a, geoms = _scene()
    assert len(overlap_layers(geoms)) > 1          # overlapping outlines keep all pixels
    spec = ZonalSpec({"a": ["count", "sum", "mean", "min", "max", "median", "p10", "p90"]})
    r = zonal_statistics(geoms, {"a": a}, transform=TR, shape=(H, W), spec=spec,
                         all_touched=all_touched, block_rows=block_rows)
    for i, g in enumerate(geoms):
        n, v = _brute(a, g, all_touched)
        assert r["n_pixels"][i] == n
        assert r["a_count"][i] == len(v)
        if len(v) == 0:
            assert np.isnan(r["a_median"][i])
            continue
        np.testing.assert_allclose(
            [r["a_mean"][i], r["a_min"][i], r["a_max"][i], r["a_median"][i], r["a_p10"][i],
             r["a_p90"][i], r["a_sum"][i]],
            [v.mean(), v.min(), v.max(), np.median(v), np.percentile(v, 10),
             np.percentile(v, 90), v.sum()], rtol=1e-6, atol=1e-6)


def test_outlines_outside_empty_and_callable_source():
    a, geoms = _scene(n=5)
    geoms = geoms + [shapely.box(0, 0, 10, 10), None, shapely.Polygon()]
    calls = []

    def rows(r0, r1):
        calls.append((r0, r1))
        return a[r0:r1]

    r = zonal_statistics(geoms, {"a": rows}, transform=TR, shape=(H, W),
                         spec=ZonalSpec({"a": ["count", "median"]}), block_rows=30)
    assert r["n_pixels"][-3:].tolist() == [0, 0, 0]
    assert np.isnan(r["a_median"][-3:]).all()
    assert all(r1 - r0 <= 30 for r0, r1 in calls)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.floats(-1e3, 1e3)), min_size=1, max_size=200),
       st.sampled_from(["median", "p25", "p75", "p90", "min", "max"]))
def test_grouped_statistics_equal_numpy(pairs, op):
    lab = np.array([p[0] for p in pairs])
    val = np.array([p[1] for p in pairs])
    got = grouped_statistics(lab, val, 10, [op])[op]
    for g in range(10):
        v = val[lab == g]
        if len(v) == 0:
            assert np.isnan(got[g])
            continue
        ref = {"median": np.median(v), "min": v.min(), "max": v.max()}.get(op)
        if ref is None:
            ref = np.percentile(v, float(op[1:]))
        assert np.isclose(got[g], ref, rtol=1e-9, atol=1e-9)


def test_points_engine_for_radar_coordinates():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 10, (40, 50))
    y = rng.uniform(0, 10, (40, 50))
    v = rng.normal(size=(40, 50))
    geoms = [shapely.box(1, 1, 4, 4), shapely.box(3, 3, 8, 8), shapely.box(20, 20, 21, 21)]
    r = zonal_statistics_points(geoms, x, y, {"v": v}, spec=ZonalSpec({"v": ["count", "median"]}))
    for i, g in enumerate(geoms):
        inside = shapely.contains_xy(g, x, y)
        assert r["v_count"][i] == inside.sum()
        if inside.any():
            assert np.isclose(r["v_median"][i], np.median(v[inside]))


def test_rasterstats_agrees(tmp_path):
    rasterstats = pytest.importorskip("rasterstats")
    import rasterio

    a, geoms = _scene(seed=5, n=30)
    path = tmp_path / "a.tif"
    with rasterio.open(path, "w", driver="GTiff", width=W, height=H, count=1, dtype="float32",
                       transform=TR, crs="EPSG:32647", nodata=np.nan) as dst:
        dst.write(a, 1)
    ref = rasterstats.zonal_stats(geoms, str(path), stats="count median percentile_90",
                                  nodata=np.nan)
    r = zonal_statistics(geoms, {"a": a}, transform=TR, shape=(H, W),
                         spec=ZonalSpec({"a": ["count", "median", "p90"]}))
    for i, d in enumerate(ref):
        assert r["a_count"][i] == d["count"]
        if d["count"]:
            assert np.isclose(r["a_median"][i], d["median"], atol=1e-6)
            assert np.isclose(r["a_p90"][i], d["percentile_90"], atol=1e-6)


def test_float32_sort_path_equals_lexsort():
    rng = np.random.default_rng(9)
    lab = rng.integers(0, 50, 5000)
    val = (rng.normal(size=5000) * 10).astype(np.float32)
    val[::7] = -val[::7]
    val[::11] = 0.0
    val[::13] = -0.0
    ops = ["median", "p5", "p90", "min", "max"]
    fast = grouped_statistics(lab, val, 50, ops)
    slow = grouped_statistics(lab, val.astype(np.float64), 50, ops)
    for op in ops:
        np.testing.assert_array_equal(fast[op], slow[op])
