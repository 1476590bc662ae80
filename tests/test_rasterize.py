"""One pixel-centre rule in three forms (permafrost.rasterize): the numpy scanline gives GDAL's
pixels on awkward polygons, a window burn is the whole-grid burn cut to the window, pixel
centres given by coordinates find the same polygons."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity
from rasterio.transform import from_origin
from shapely.geometry import LineString, MultiPolygon, Point, Polygon, box

from permafrost.errors import CRSError, DataError
from permafrost.rasterize import (
    Shapes,
    burn,
    points_in_polygons,
    polygons_in_crs,
    scanline_pixels,
)

#: a grid of 2 m pixels whose corner is at (100, 200); pixel centres at odd metres
TR = from_origin(100.0, 200.0, 2.0, 2.0)
SHAPE = (30, 40)


def _xy(col, row):
    """CRS coordinates of a point given in pixel units (col, row) of TR."""
    return TR @ (col, row)


def _poly(ring_px, holes_px=()):
    return Polygon([_xy(c, r) for c, r in ring_px], [[_xy(c, r) for c, r in h] for h in holes_px])


def _star(rng, cx, cy, n=9):
    ang = np.sort(rng.uniform(0, 2 * np.pi, n))
    rad = rng.uniform(1.5, 6.0, n)
    return _poly(list(zip(cx + rad * np.cos(ang), cy + rad * np.sin(ang), strict=True)))


def awkward_polygons() -> list:
    rng = np.random.default_rng(7)
    return [
        # vertices on pixel centres, edges through pixel centres (ties on both axes)
        _poly([(3.5, 2.5), (9.5, 2.5), (9.5, 7.5), (3.5, 7.5)]),
        # edges on pixel edges
        _poly([(12, 2), (18, 2), (18, 9), (12, 9)]),
        # a hole whose edges run through centres, inside edges on pixel edges
        _poly([(20, 1), (32, 1), (32, 12), (20, 12)], [[(23.5, 3.5), (28.5, 3.5),
                                                        (28.5, 8.5), (23.5, 8.5)]]),
        # triangle with slanted edges through centres and a vertex on a centre
        _poly([(2.5, 12.5), (12.5, 12.5), (7.5, 22.5)]),
        # a multipolygon: two parts, one with a hole, one sliver thinner than a pixel
        MultiPolygon([_poly([(14, 14), (22, 14), (22, 22), (14, 22)],
                            [[(16, 16), (20, 16), (20, 20), (16, 20)]]),
                      _poly([(24.2, 14.5), (36.7, 14.5), (36.7, 14.9), (24.2, 14.9)])]),
        # diamond with vertices on pixel edges and centres
        _poly([(30.5, 17), (35, 21.5), (30.5, 26), (26, 21.5)]),
        # reaching outside the grid (left and bottom)
        _poly([(-3, 24), (5.5, 24), (5.5, 33), (-3, 33)]),
        # random star polygons (self-touching-free, generic positions)
        _star(rng, 10.3, 25.1),
        _star(rng, 20.7, 25.6),
    ]


def _burn_pixels(geom) -> set[int]:
    lab = burn(Shapes([geom]), TR, (0, 0, *SHAPE), dtype="uint8")
    return set(np.flatnonzero(lab).tolist())


@pytest.mark.parametrize("i", range(len(awkward_polygons())))
def test_scanline_gives_gdals_pixels_on_awkward_polygons(i):
    geom = awkward_polygons()[i]
    want = _burn_pixels(geom)
    assert want, "every test polygon burns pixels"
    lab, flat = scanline_pixels([geom], np.array([5]), TR, 0, SHAPE[0], SHAPE[1])
    assert set(lab.tolist()) == {5}
    assert len(flat) == len(set(flat.tolist())), "no pixel twice"
    assert set(flat.tolist()) == want
    # the same pixels band by band (bands of 7 rows)
    got = set()
    for r0 in range(0, SHAPE[0], 7):
        r1 = min(SHAPE[0], r0 + 7)
        _, f = scanline_pixels([geom], np.array([0]), TR, r0, r1, SHAPE[1])
        got |= set((f + r0 * SHAPE[1]).tolist())
    assert got == want


@pytest.mark.parametrize("transform", [TR, from_origin(100.0, 150.0, 2.0, -2.0)],
                         ids=["north-up", "south-up"])
def test_scanline_gives_gdals_pixels_on_random_lattice_polygons(transform):
    """Vertices on a half-pixel lattice (edges along pixel centres and edges, vertices on
    centres and corners), holes and multipolygons from unions and differences of boxes."""
    rng = np.random.default_rng(1)
    h, w = 20, 24

    def lattice(n):
        return rng.integers(-2, 2 * w + 2, n) / 2.0

    def boxes(k):
        out = []
        for _ in range(k):
            (x0, x1), (y0, y1) = np.sort(lattice(2)), np.sort(lattice(2))
            out.append(box(x0, y0, x1, y1))
        return shapely.union_all(out)

    tested = 0
    for i in range(150):
        if i % 2:
            g = boxes(4).difference(boxes(2))
        else:
            g = shapely.make_valid(Polygon(np.c_[lattice(6), lattice(6)]))
        g = shapely.affinity.affine_transform(g, [transform.a, transform.b, transform.d,
                                                  transform.e, transform.c, transform.f])
        parts = [p for p in shapely.get_parts(g) if p.geom_type == "Polygon" and p.area > 0]
        if not parts:
            continue
        g = MultiPolygon(parts) if len(parts) > 1 else parts[0]
        want = np.flatnonzero(burn(Shapes([g]), transform, (0, 0, h, w), dtype="uint8"))
        _, flat = scanline_pixels([g], np.array([0]), transform, 0, h, w)
        np.testing.assert_array_equal(np.sort(flat), want, err_msg=g.wkt)
        tested += 1
    assert tested > 120


def test_scanline_keeps_the_pixels_of_overlapping_polygons():
    polys = awkward_polygons()
    both = [polys[0], polys[0].buffer(2.0)]  # the second contains the first
    lab, flat = scanline_pixels(both, np.array([0, 1]), TR, 0, SHAPE[0], SHAPE[1])
    for k, g in enumerate(both):
        assert set(flat[lab == k].tolist()) == _burn_pixels(g)


@pytest.mark.parametrize("all_touched", [False, True])
@pytest.mark.parametrize("merge", ["replace", "add"])
def test_window_burn_is_the_whole_grid_burn_cut_to_the_window(merge, all_touched):
    polys = awkward_polygons()
    if all_touched:  # GDAL's all-touched misses a vertex touching a window's edge at one
        rng = np.random.default_rng(5)  # point, so generic polygons there
        polys = [_star(rng, cx, cy) for cx, cy in rng.uniform(0, 40, (12, 2))]
    shapes = Shapes(polys + [None, Polygon()], list(range(1, len(polys) + 1)) + [99, 98])
    assert len(shapes) == len(polys)  # missing and empty geometries dropped
    whole = burn(shapes, TR, (0, 0, *SHAPE), merge=merge, all_touched=all_touched)
    assert whole.any()
    rng = np.random.default_rng(3)
    windows = [(0, 0, *SHAPE), (0, 0, 7, SHAPE[1]), (23, 0, 7, SHAPE[1]), (5, 33, 9, 7),
               (29, 39, 1, 1), (10, 10, 0, 5)]
    windows += [(int(r), int(c), int(rng.integers(1, SHAPE[0] - r + 1)),
                 int(rng.integers(1, SHAPE[1] - c + 1)))
                for r, c in zip(rng.integers(0, SHAPE[0], 20), rng.integers(0, SHAPE[1], 20),
                                strict=True)]
    for r0, c0, h, w in windows:
        got = burn(shapes, TR, (r0, c0, h, w), merge=merge, all_touched=all_touched)
        assert got.shape == (h, w) and got.dtype == np.int32
        np.testing.assert_array_equal(got, whole[r0:r0 + h, c0:c0 + w], err_msg=str((r0, c0)))


def test_burn_merge_rules_and_no_shapes():
    a = _poly([(2, 2), (10, 2), (10, 10), (2, 10)])
    b = _poly([(6, 6), (14, 6), (14, 14), (6, 14)])
    rep = burn(Shapes([a, b], [1, 2]), TR, (0, 0, *SHAPE))
    add = burn(Shapes([a, b]), TR, (0, 0, *SHAPE), merge="add")
    assert rep[7, 7] == 2 and rep[3, 3] == 1 and add[7, 7] == 2 and add[3, 3] == 1
    assert burn(Shapes([]), TR, (0, 0, 4, 5)).shape == (4, 5)
    assert not burn(Shapes([a]), TR, (20, 20, 4, 5)).any()  # far from the shape


def test_points_in_polygons_finds_the_burned_pixels():
    """Pixel centres given by coordinates (radar geometry) belong to the polygons GDAL burns
    them into (generic polygons: no centre on an edge)."""
    rng = np.random.default_rng(11)
    polys = [_star(rng, cx, cy) for cx, cy in ((8.3, 8.1), (25.6, 9.7), (15.2, 21.9))]
    rows, cols = np.mgrid[0:SHAPE[0], 0:SHAPE[1]]
    x, y = TR @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
    x[5] = np.nan  # a pixel without a position
    geoms = [polys[0], None, polys[1], polys[2]]
    g, pix = points_in_polygons(geoms, x.reshape(SHAPE), y.reshape(SHAPE))
    lab = burn(Shapes(geoms, [1, 2, 3, 4]), TR, (0, 0, *SHAPE)).ravel()
    want = np.flatnonzero(lab)
    order = np.argsort(pix)
    np.testing.assert_array_equal(pix[order], want)
    np.testing.assert_array_equal(g[order], lab[want] - 1)


def test_polygons_in_crs_reprojects_and_refuses_features_without_area():
    gdf = gpd.GeoDataFrame({"kind": ["glacier", "lake", "none"]},
                           geometry=[box(7.0, 46.0, 7.1, 46.1), box(7.2, 46.0, 7.3, 46.1), None],
                           crs=4326)
    gdf.attrs["source"] = "masks.gpkg"
    out, n_empty = polygons_in_crs(gdf, "EPSG:2056", "mask")
    assert n_empty == 1 and out.crs.to_epsg() == 2056 and out.attrs["source"] == "masks.gpkg"
    assert shapely.area(out.geometry.iloc[0]) > 1e7  # m², not degrees
    lines = gdf.copy()
    lines.loc[1, "geometry"] = LineString([(7, 46), (7.1, 46.1)])
    lines.loc[2, "geometry"] = Point(7, 46)
    with pytest.raises(DataError, match=r"2 mask feature\(s\) without area \(LineString, "
                                        r"Point\) in rows \[1, 2\]"):
        polygons_in_crs(lines, "EPSG:2056", "mask")
    with pytest.raises(CRSError, match="no CRS"):
        polygons_in_crs(gdf.set_crs(None, allow_override=True), "EPSG:2056", "mask")
