"""One rule for a mask file (permafrost.read_mask), the same in predict, stats and validate: a
raster on any grid is put on the map's grid by nearest neighbour (non-zero and not nodata =
excluded), polygons exclude the cells whose centre is inside."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pyproj
import pytest
from rasterio.transform import from_origin
from shapely.geometry import LineString, box

import permafrost as pf
from permafrost.area import cell_areas
from permafrost.errors import DataError
from permafrost.grid import Grid
from permafrost.validation import parse_prior_spec
from permafrost.workflows.stats import stats_from_files
from permafrost.workflows.validate import validate_from_files

from factories import NX, NY, RES, X0, Y0, write_raster, write_tif


@pytest.fixture
def maps(tmp_path):
    """A PZI on the shared grid, the same raster mask on a grid of cells twice as large and
    on the PZI's grid (nodata 255 in a corner), and the mask's polygons in UTM."""
    _, xx = np.mgrid[0:NY, 0:NX]
    pzi = (0.2 + 0.6 * xx / NX).astype("float32")
    write_raster(tmp_path / "pzi.tif", pzi)
    coarse = np.zeros((NY // 2, NX // 2), "uint8")
    coarse[5:15, 10:30] = 1
    coarse[0:2, 0:2] = 255
    write_tif(tmp_path / "coarse.tif", coarse, from_origin(X0, Y0, 2 * RES, 2 * RES), nodata=255)
    fine = np.kron(coarse, np.ones((2, 2), "uint8"))
    write_tif(tmp_path / "fine.tif", fine, from_origin(X0, Y0, RES, RES), nodata=255)
    poly = box(X0 + 20 * RES, Y0 - 30 * RES, X0 + 60 * RES, Y0 - 10 * RES)
    gpd.GeoDataFrame({"kind": ["glacier", "lake"]}, geometry=[poly, None], crs=4326).to_crs(
        32647).to_file(tmp_path / "m.gpkg")
    excluded = fine == 1
    return tmp_path, excluded


def test_a_raster_mask_off_the_grid_is_put_on_it_by_nearest_neighbour(maps, caplog):
    d, want = maps
    pzi = pf.read_raster(d / "pzi.tif")
    with caplog.at_level(logging.INFO, logger="permafrost.io.maps"):
        off = pf.read_mask(d / "coarse.tif", like=pzi, chunks={"y": 16, "x": -1})
    assert "resampled by nearest neighbour" in caplog.text
    assert off.polygons is None and off.info["kind"] == "raster"
    assert off.excluded.dtype == bool and off.excluded.chunks is not None  # lazy
    np.testing.assert_array_equal(off.excluded.values, want)  # nodata 255 excludes nothing
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="permafrost.io.maps"):
        on = pf.read_mask(d / "fine.tif", like=pzi)
    assert "resampled" not in caplog.text
    np.testing.assert_array_equal(on.excluded.values, want)
    assert on.excluded.rio.crs == pzi.rio.crs


def test_polygon_masks_are_reprojected_and_checked(maps, tmp_path):
    d, _ = maps
    pzi = pf.read_raster(d / "pzi.tif")
    m = pf.read_mask(d / "m.gpkg", like=pzi)
    assert m.excluded is None and m.polygons.crs.to_epsg() == 4326
    assert m.info["kind"] == "vector" and m.info["features"] == 1  # the empty one not counted
    gpd.GeoDataFrame(geometry=[LineString([(X0, Y0), (X0 + 0.01, Y0 - 0.01)])],
                     crs=4326).to_file(tmp_path / "lines.gpkg")
    with pytest.raises(DataError, match="lines.gpkg.*without area"):
        pf.read_mask(tmp_path / "lines.gpkg", like=pzi)


def test_stats_and_validate_apply_the_same_rule(maps):
    d, want = maps
    areas = np.broadcast_to(cell_areas(Grid(pyproj.CRS(4326), from_origin(X0, Y0, RES, RES),
                                            (NY, NX))), (NY, NX))
    masked = {m: stats_from_files(d / "pzi.tif", mask_path=d / m).whole["masked_km2"]
              for m in ("coarse.tif", "fine.tif")}
    assert masked["coarse.tif"] == masked["fine.tif"] == pytest.approx(
        areas[want].sum() / 1e6, rel=1e-12)
    spec = [parse_prior_spec(f"self={d / 'pzi.tif'}:continuous:0.5")]
    common = {m: validate_from_files(d / "pzi.tif", priors=spec, mask_path=d / m if m else None)
              .priors[0]["agreement"]["common_km2"] for m in (None, "coarse.tif", "fine.tif")}
    assert common["coarse.tif"] == common["fine.tif"] == pytest.approx(
        common[None] - areas[want].sum() / 1e6, rel=1e-9)
