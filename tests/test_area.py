"""Tests of permafrost.area: cell areas against pyproj.Geod, zones, streamed statistics, CLI."""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import rioxarray  # noqa: F401
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import box
from typer.testing import CliRunner

from permafrost.area import (
    ZONE_CODES,
    authalic_radius,
    cell_areas,
    classify_zones,
    ellipsoid_area,
    zone_statistics,
)
from permafrost.errors import DataError, InputError
from permafrost.grid import Grid
from permafrost.workflows.stats import stats_from_files

from factories import da_on_grid, write_tif

GEOD = pyproj.Geod(ellps="WGS84")
WGS84 = pyproj.CRS("EPSG:4326")
A_WGS84, F_WGS84 = 6378137.0, 1 / 298.257223563


# ----------------------------------------------------------------------------- factories
def geod_area(lons, lats) -> float:
    return abs(GEOD.polygon_area_perimeter(lons, lats)[0])


def geod_lonlat_box(lon0, lat0, lon1, lat1, n=64) -> float:
    """pyproj.Geod area of a lon/lat box whose parallels are densified (n points per edge)."""
    lo = np.linspace(lon0, lon1, n)
    la = np.linspace(lat0, lat1, n)
    lons = np.concatenate([lo, np.full(n, lon1), lo[::-1], np.full(n, lon0)])
    lats = np.concatenate([np.full(n, lat0), la, np.full(n, lat1), la[::-1]])
    return geod_area(lons, lats)


def geod_projected_cell(crs, x0, y0, x1, y1, n=16) -> float:
    """pyproj.Geod area of a projected rectangle, edges densified, corners to lon/lat."""
    xs = np.concatenate([np.linspace(x0, x1, n), np.full(n, x1), np.linspace(x1, x0, n),
                         np.full(n, x0)])
    ys = np.concatenate([np.full(n, y0), np.linspace(y0, y1, n), np.full(n, y1),
                         np.linspace(y1, y0, n)])
    tr = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    return geod_area(*tr.transform(xs, ys))


# ----------------------------------------------------------------------------- cell areas
@pytest.mark.parametrize("lat0", [-60.0, 0.0, 38.5, 80.0, 89.0])
@pytest.mark.parametrize("d", [1 / 1800, 0.01, 0.25])
def test_geographic_cells_match_geod(lat0, d):
    grid = Grid(WGS84, Affine(d, 0, 99.0, 0, -d, lat0 + 3 * d), (3, 2))
    a = cell_areas(grid)
    assert a.shape == (3, 1)
    for r in range(3):
        top = lat0 + (3 - r) * d
        ref = geod_lonlat_box(99.0, top - d, 99.0 + d, top)
        assert a[r, 0] == pytest.approx(ref, rel=1e-6)


@settings(max_examples=40, deadline=None)
@given(lat=st.floats(-89.5, 89.4), d=st.sampled_from([1 / 3600, 1 / 120, 0.1]))
def test_geographic_cell_property(lat, d):
    grid = Grid(WGS84, Affine(d, 0, 0.0, 0, -d, lat + d), (1, 1))
    assert cell_areas(grid)[0, 0] == pytest.approx(geod_lonlat_box(0, lat, d, lat + d), rel=1e-6)


def test_whole_globe_is_ellipsoid_area():
    grid = Grid(WGS84, Affine(0.5, 0, -180, 0, -0.5, 90), (360, 720))
    total = cell_areas(grid).sum() * 720
    assert total == pytest.approx(ellipsoid_area(a=A_WGS84, f=F_WGS84), rel=1e-13)
    # published WGS84 authalic radius 6371007.1809 m (Moritz 2000, GRS80 ~ WGS84 to 1e-4 m)
    assert authalic_radius(a=A_WGS84, f=F_WGS84) == pytest.approx(6371007.1809, abs=1e-3)
    assert total == pytest.approx(4 * math.pi * 6371007.1809**2, rel=1e-9)


def test_sphere_limit():
    assert ellipsoid_area(a=1.0, f=0.0) == pytest.approx(4 * math.pi)


@pytest.mark.parametrize(
    "epsg,x0,y0,h",
    [
        (32633, 500000.0, 5000000.0, 1000.0),   # UTM 33N, 45 N
        (32633, 300000.0, 8800000.0, 30.0),     # UTM 33N, 79 N, off the central meridian
        (32647, 420000.0, 4270000.0, 48.0),     # UTM 47N over the sample region
        (3413, 0.0, -1000000.0, 100.0),         # NSIDC polar stereographic north, ~80.8 N
        (3413, -1000000.0, 500000.0, 5000.0),   # ~79.7 N, 5 km cells
        (3995, 100000.0, 100000.0, 1000.0),     # Arctic polar stereographic, ~88.7 N
        (3031, 1500000.0, 1500000.0, 1000.0),   # Antarctic polar stereographic
    ],
)
def test_projected_cells_match_geod(epsg, x0, y0, h):
    crs = pyproj.CRS(epsg)
    grid = Grid(crs, Affine(h, 0, x0, 0, -h, y0), (2, 3))
    a = cell_areas(grid)
    assert a.shape == (2, 3)
    for r in range(2):
        for c in range(3):
            ref = geod_projected_cell(crs, x0 + c * h, y0 - (r + 1) * h, x0 + (c + 1) * h,
                                      y0 - r * h)
            assert a[r, c] == pytest.approx(ref, rel=1e-6)


def test_rows_slice_matches_full():
    crs = pyproj.CRS(3413)
    grid = Grid(crs, Affine(500, 0, 0, 0, -500, -900000), (10, 4))
    np.testing.assert_allclose(cell_areas(grid, slice(3, 7)), cell_areas(grid)[3:7], rtol=1e-14)
    g = Grid(WGS84, Affine(0.1, 0, 0, 0, -0.1, 60), (10, 4))
    np.testing.assert_allclose(cell_areas(g, slice(3, 7)), cell_areas(g)[3:7], rtol=1e-14)


# ----------------------------------------------------------------------------- zones
def test_classify_zone_boundaries():
    p = np.array([0.0, 0.00999, 0.01, 0.0999, 0.1, 0.4999, 0.5, 0.8999, 0.9, 1.0, np.nan])
    z = classify_zones(p)
    c = ZONE_CODES
    assert z.tolist() == [c["none"], c["none"], c["isolated"], c["isolated"], c["sporadic"],
                          c["sporadic"], c["discontinuous"], c["discontinuous"],
                          c["continuous"], c["continuous"], 255]


# ----------------------------------------------------------------------------- statistics
def _geo_map(ny=40, nx=30, d=0.01, lat_top=80.2, lon0=10.0, seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.uniform(0, 1, (ny, nx))
    arr[rng.uniform(size=arr.shape) < 0.05] = np.nan
    return da_on_grid(arr, Affine(d, 0, lon0, 0, -d, lat_top))


def test_band_of_ones_is_exact():
    d, ny, nx, top = 0.05, 20, 12, 80.5
    arr = np.zeros((ny, nx))
    arr[5:9] = 1.0
    da = da_on_grid(arr, Affine(d, 0, 20.0, 0, -d, top))
    s = zone_statistics(da, block_rows=3).units[0]
    # independent reference: the band as one geodesic polygon with densified parallels
    ref = geod_lonlat_box(20.0, top - 9 * d, 20.0 + nx * d, top - 5 * d, n=400) / 1e6
    assert s["pzi_ge_0.5_km2"] == pytest.approx(ref, rel=1e-9)
    assert s["continuous_km2"] == pytest.approx(ref, rel=1e-9)
    assert s["pzi_weighted_km2"] == pytest.approx(ref, rel=1e-9)
    total = geod_lonlat_box(20.0, top - ny * d, 20.0 + nx * d, top, n=400) / 1e6
    assert s["denominator_km2"] == pytest.approx(total, rel=1e-9)
    assert s["fraction_pzi_ge_0.5"] == pytest.approx(ref / total, rel=1e-9)
    assert s["region_km2"] == pytest.approx(ref, rel=1e-9)
    assert s["sporadic_km2"] == 0 and s["isolated_km2"] == 0


def test_stats_consistency_and_streaming_invariance():
    da = _geo_map()
    ny, nx = da.shape
    regions = gpd.GeoDataFrame(
        {"name": ["west", "east", "west"]},
        geometry=[box(10.0, 79.8, 10.1, 80.2), box(10.15, 79.8, 10.3, 80.2),
                  box(10.1, 80.1, 10.13, 80.2)], crs="EPSG:4326")
    mask = gpd.GeoDataFrame({"kind": ["glacier", "lake"]},
                            geometry=[box(10.02, 80.0, 10.06, 80.1), box(10.2, 79.85, 10.22, 79.9)],
                            crs="EPSG:4326")
    dem = da_on_grid(np.linspace(2500, 5300, ny)[:, None] * np.ones((1, nx)), da.rio.transform())
    kw = dict(regions=regions, dem=dem, band_width=500.0, mask_vector=mask)
    a = zone_statistics(da, block_rows=7, **kw)
    b = zone_statistics(da.chunk({"y": 11}), block_rows=1000, **kw)
    for ua, ub in zip(a.units, b.units, strict=True):
        assert ua["name"] == ub["name"]
        for k, v in ua.items():
            if isinstance(v, float):
                assert v == pytest.approx(ub[k], rel=1e-12)
    units = {(u["unit"], u["name"]): u for u in a.units}
    whole = units[("all", "all")]
    # independent reference for the whole map: numpy with per-row areas
    areas = np.broadcast_to(cell_areas(Grid(pyproj.CRS(4326), da.rio.transform(), (ny, nx))),
                            (ny, nx))
    xs, ys = da.x.values, da.y.values
    masked = np.zeros((ny, nx), bool)
    for g in mask.geometry:
        x0, y0, x1, y1 = g.bounds
        masked |= ((xs[None, :] > x0) & (xs[None, :] < x1) & (ys[:, None] > y0)
                   & (ys[:, None] < y1))
    p = da.values.astype(float)
    valid = ~np.isnan(p) & ~masked
    assert whole["masked_km2"] == pytest.approx(areas[masked].sum() / 1e6, rel=1e-12)
    assert whole["denominator_km2"] == pytest.approx(areas[valid].sum() / 1e6, rel=1e-12)
    assert whole["pzi_ge_0.5_km2"] == pytest.approx(areas[valid & (p >= 0.5)].sum() / 1e6,
                                                    rel=1e-12)
    assert whole["pzi_weighted_km2"] == pytest.approx(
        (areas * np.where(valid, p, 0)).sum() / 1e6, rel=1e-12)
    zsum = sum(whole[f"{z}_km2"] for z in ("continuous", "discontinuous", "sporadic", "isolated"))
    assert zsum == pytest.approx(whole["region_km2"], rel=1e-12)
    assert (whole["denominator_km2"] + whole["masked_km2"] + whole["nodata_km2"]
            == pytest.approx(whole["footprint_km2"], rel=1e-12))
    # regions: the two 'west' polygons are one region; outside + regions = whole
    regs = [u for u in a.units if u["unit"] == "region"]
    assert [u["name"] for u in regs] == ["west", "east"]
    assert (sum(u["footprint_km2"] for u in regs) + a.meta["regions"]["outside_regions_km2"]
            == pytest.approx(whole["footprint_km2"], rel=1e-12))
    # elevation bands partition the map
    bands = [u for u in a.units if u["unit"] == "elevation_band"]
    assert [u["name"] for u in bands][0] == "2500-3000 m"
    assert sum(u["denominator_km2"] for u in bands) == pytest.approx(whole["denominator_km2"],
                                                                     rel=1e-12)
    assert a.meta["mask"]["kinds"] == {"glacier": 1, "lake": 1}
    assert "denominator" in a.meta


def test_projected_map_statistics_match_geod():
    crs = pyproj.CRS(3413)
    h = 2000.0
    arr = np.zeros((6, 5))
    arr[2:4, 1:3] = 0.95
    da = da_on_grid(arr, Affine(h, 0, -500000, 0, -h, -900000), crs="EPSG:3413")
    s = zone_statistics(da).units[0]
    ref = sum(geod_projected_cell(crs, -500000 + c * h, -900000 - (r + 1) * h,
                                  -500000 + (c + 1) * h, -900000 - r * h)
              for r in (2, 3) for c in (1, 2)) / 1e6
    assert s["continuous_km2"] == pytest.approx(ref, rel=1e-6)
    assert s["pzi_weighted_km2"] == pytest.approx(0.95 * ref, rel=1e-6)


def test_mask_raster_equals_mask_polygons(tmp_path):
    da = _geo_map(ny=20, nx=20)
    t = da.rio.transform()
    m = np.zeros(da.shape, dtype="uint8")
    m[3:8, 4:9] = 1
    mr = da_on_grid(m, t)
    poly = gpd.GeoDataFrame(geometry=[box(t.c + 4 * t.a, t.f + 8 * t.e, t.c + 9 * t.a,
                                          t.f + 3 * t.e)], crs="EPSG:4326")
    a = zone_statistics(da, mask_raster=mr).units[0]
    b = zone_statistics(da, mask_vector=poly).units[0]
    assert a["masked_km2"] > 0
    for k in ("masked_km2", "denominator_km2", "pzi_ge_0.5_km2"):
        assert a[k] == pytest.approx(b[k], rel=1e-12)


def test_bad_inputs():
    da = _geo_map(ny=5, nx=5)
    bad = da.copy()
    bad[0, 0] = 1.7
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        zone_statistics(bad)
    regions = gpd.GeoDataFrame({"label": ["a"]}, geometry=[box(10, 80, 10.02, 80.2)],
                               crs="EPSG:4326")
    # the library names its parameter, not a CLI flag (the CLI and a pipeline translate it)
    with pytest.raises(DataError, match="field 'region_field': no region name column 'name'; "
                                        "name one with region_field") as exc:
        zone_statistics(da, regions=regions)
    assert "--" not in str(exc.value)
    dem = da_on_grid(np.ones((3, 3)), da.rio.transform())
    with pytest.raises(DataError, match="not on the PZI grid"):
        zone_statistics(da, dem=dem)
    with pytest.raises(DataError, match="band_width"):
        zone_statistics(da, dem=da_on_grid(np.ones((5, 5)), da.rio.transform()), band_width=0)


def test_wrong_input_types_are_the_packages_errors(tmp_path):
    """A path where a DataArray is expected (and the like) is an InputError naming the field
    and the reader to use, not an AttributeError."""
    da = _geo_map(ny=5, nx=5)
    with pytest.raises(InputError, match=r"field 'pzi'.*expected an xarray.DataArray, got "
                                         r"PosixPath.*permafrost.read_raster"):
        zone_statistics(tmp_path / "pzi.tif")
    with pytest.raises(InputError, match="field 'pzi'.*got str"):
        zone_statistics("pzi.tif")
    with pytest.raises(InputError, match="field 'dem'.*got ndarray"):
        zone_statistics(da, dem=np.ones((5, 5)))
    with pytest.raises(InputError, match="field 'mask_raster'"):
        zone_statistics(da, mask_raster="mask.tif")
    with pytest.raises(InputError, match="field 'regions'.*GeoDataFrame.*read_vector"):
        zone_statistics(da, regions="regions.gpkg")
    with pytest.raises(InputError, match="field 'mask_vector'"):
        zone_statistics(da, mask_vector=[box(0, 0, 1, 1)])


def test_zone_statistics_result_as_dict_is_the_stats_json():
    from permafrost.area import ZoneStatistics, stats_rows

    res = zone_statistics(_geo_map(ny=5, nx=5))
    assert isinstance(res, ZoneStatistics)
    d = res.as_dict()
    assert list(d) == ["units", "meta"] and d["units"] is res.units and d["meta"] is res.meta
    assert res.whole is res.units[0] and res.whole["unit"] == "all"
    back = ZoneStatistics.from_dict(json.loads(json.dumps(d)))
    assert back.units == json.loads(json.dumps(res.units))
    assert stats_rows(back) == stats_rows(ZoneStatistics(**json.loads(json.dumps(d))))
    with pytest.raises(InputError, match="stats.json"):
        ZoneStatistics.from_dict({"units": []})
    with pytest.raises(InputError, match="ZoneStatistics"):
        stats_rows(d)


def test_stats_from_files_aligns_dem_in_other_crs(tmp_path):
    """A DEM in another CRS and resolution is warped onto the PZI grid, not refused."""
    d = 0.002
    t = Affine(d, 0, 99.0, 0, -d, 38.6)
    pzi = np.full((50, 50), 0.7, dtype="float32")
    pzi[:, :25] = 0.2
    pzi[0, 0] = -9999
    write_tif(tmp_path / "pzi.tif", pzi, t, nodata=-9999)
    # a DEM in UTM 47N at 100 m covering the map: elevation grows northward
    utm = pyproj.CRS(32647)
    tr = pyproj.Transformer.from_crs(4326, utm, always_xy=True)
    x0, y0 = tr.transform(98.99, 38.61)
    x1, y1 = tr.transform(99.11, 38.49)
    nx, ny = int((x1 - x0) / 100) + 2, int((y0 - y1) / 100) + 2
    ycent = y0 - 100 * (np.arange(ny) + 0.5)
    # 0.1 m per metre: 3000..4340 m (a plausible elevation range; the read checks refuse
    # elevations above 9000 m)
    dem = np.repeat((3000 + 0.1 * (ycent - ycent.min()))[:, None], nx, axis=1).astype("float32")
    write_tif(tmp_path / "dem.tif", dem, Affine(100, 0, x0, 0, -100, y0), crs=utm, nodata=-1)
    out = stats_from_files(tmp_path / "pzi.tif", dem_path=tmp_path / "dem.tif",
                           band_width=500, block_rows=16)
    whole = out.units[0]
    assert out.meta["elevation_bands"]["no_dem_km2"] == 0
    bands = [u for u in out.units if u["unit"] == "elevation_band"]
    assert len(bands) >= 2
    assert sum(u["denominator_km2"] for u in bands) == pytest.approx(whole["denominator_km2"])
    assert whole["fraction_pzi_ge_0.5"] == pytest.approx(0.5, abs=0.01)
    assert whole["nodata_km2"] > 0


# ----------------------------------------------------------------------------- CLI
def test_cli_stats_outputs(tmp_path):
    from permafrost.cli import app

    d = 0.01
    t = Affine(d, 0, 10.0, 0, -d, 60.0)
    arr = np.zeros((30, 20), dtype="float32")
    arr[10:20] = 0.95
    write_tif(tmp_path / "pzi.tif", arr, t, nodata=-1)
    regions = gpd.GeoDataFrame({"basin": ["A", "B"]},
                               geometry=[box(10, 59.7, 10.1, 60), box(10.1, 59.7, 10.2, 60)],
                               crs="EPSG:4326")
    regions.to_file(tmp_path / "r.gpkg")
    gpd.GeoDataFrame({"kind": ["lake"]}, geometry=[box(10.0, 59.8, 10.05, 59.85)],
                     crs="EPSG:4326").to_file(tmp_path / "m.gpkg")
    res = CliRunner().invoke(app, ["stats", str(tmp_path / "pzi.tif"), "--regions",
                                   str(tmp_path / "r.gpkg"), "--region-field", "basin",
                                   "--mask", str(tmp_path / "m.gpkg"),
                                   "--out-json", str(tmp_path / "s.json"),
                                   "--out-csv", str(tmp_path / "s.csv")])
    assert res.exit_code == 0, res.output
    assert "Denominator: valid (not nodata) and unmasked area" in res.output
    assert "m.gpkg" in res.output
    js = json.loads((tmp_path / "s.json").read_text())
    assert f"{js['units'][0]['pzi_ge_0.5_km2']:,.2f}" in res.output
    names = [u["name"] for u in js["units"]]
    assert names == ["all", "A", "B"]
    ref = geod_lonlat_box(10, 59.8, 10.2, 59.9, n=200) / 1e6
    masked = js["units"][0]["masked_km2"]
    assert masked > 0
    assert js["units"][0]["pzi_ge_0.5_km2"] == pytest.approx(ref - masked, rel=1e-9)
    csv = (tmp_path / "s.csv").read_text().splitlines()
    assert csv[0].startswith("unit,name,") and csv[0].endswith(",denominator")
    assert "m.gpkg" in csv[1]
    # deterministic: the same run writes byte-identical JSON
    first = (tmp_path / "s.json").read_bytes()
    CliRunner().invoke(app, ["stats", str(tmp_path / "pzi.tif"), "--regions",
                             str(tmp_path / "r.gpkg"), "--region-field", "basin", "--mask",
                             str(tmp_path / "m.gpkg"), "--out-json", str(tmp_path / "s.json")])
    assert (tmp_path / "s.json").read_bytes() == first


def test_cli_stats_bad_input_one_line(tmp_path):
    from permafrost.cli import app

    res = CliRunner().invoke(app, ["stats", str(tmp_path / "missing.tif")])
    assert res.exit_code == 2
    out = res.output.strip().splitlines()
    assert len(out) == 1 and "missing.tif" in out[0] and "file not found" in out[0]


# ----------------------------------------------------------------------------- sample region
def test_sample_region_stats(sample_dir):
    pzi = sample_dir / "truth" / "pzi_truth.tif"
    out = stats_from_files(pzi, regions_path=sample_dir / "regions" / "basins.gpkg",
                           dem_path=sample_dir / "covariates" / "dem.tif", band_width=200,
                           mask_path=sample_dir / "masks" / "glaciers_lakes.gpkg")
    whole = out.units[0]
    assert whole["masked_km2"] > 0
    assert 0 < whole["pzi_ge_0.5_km2"] < whole["denominator_km2"]
    bands = [u for u in out.units if u["unit"] == "elevation_band"]
    fr = [u["fraction_pzi_ge_0.5"] for u in bands if u["n_valid_cells"] > 200]
    # permafrost increases with elevation in the generated truth
    assert fr[-1] > fr[0]


def test_compare_scenarios_changes_per_zone_and_region():
    from permafrost.area import ZoneStatistics, compare_scenarios
    from permafrost.errors import DataError

    def unit(kind, name, ge05, cont, den=100.0):
        return {"unit": kind, "name": name, "denominator_km2": den, "pzi_ge_0.5_km2": ge05,
                "pzi_weighted_km2": ge05 * 0.9, "region_km2": 90.0, "continuous_km2": cont,
                "discontinuous_km2": ge05 - cont, "sporadic_km2": 10.0, "isolated_km2": 5.0}

    base = ZoneStatistics(units=[unit("all", "all", 60.0, 30.0),
                                 unit("region", "A", 20.0, 10.0, 40.0),
                                 unit("elevation_band", "3000-3200 m", 1.0, 0.0, 5.0)], meta={})
    warm = ZoneStatistics(units=[unit("all", "all", 45.0, 15.0),
                                 unit("region", "A", 5.0, 0.0, 40.0),
                                 unit("elevation_band", "3000-3200 m", 0.0, 0.0, 5.0)], meta={})
    out = compare_scenarios({"baseline": base, "plus2": warm})
    rows = {r["name"]: r for r in out["scenarios"]["plus2"]}
    assert set(rows) == {"all", "A"}  # bands are left out by default
    assert rows["all"]["pzi_ge_0.5_km2_change"] == pytest.approx(-15.0)
    assert rows["all"]["pzi_ge_0.5_km2_change_pct"] == pytest.approx(-25.0)
    assert rows["A"]["continuous_km2_change"] == pytest.approx(-10.0)
    assert rows["A"]["discontinuous_km2_change"] == pytest.approx(5.0 - 10.0)
    assert rows["all"]["denominator_difference_km2"] == 0.0
    # a coverage differing by a cell or two (under 0.1 %) is compared and stated; 1 % is not
    near = ZoneStatistics(units=[unit("all", "all", 45.0, 15.0, den=99.95),
                                 unit("region", "A", 5.0, 0.0, 40.0)], meta={})
    row = compare_scenarios({"baseline": base, "x": near})["scenarios"]["x"][0]
    assert row["denominator_difference_km2"] == pytest.approx(-0.05)
    other = ZoneStatistics(units=[unit("all", "all", 45.0, 15.0, den=99.0)], meta={})
    with pytest.raises(DataError, match="denominator"):
        compare_scenarios({"baseline": base, "x": other})
    with pytest.raises(DataError, match="baseline"):
        compare_scenarios({"x": warm})
    with pytest.raises(InputError, match="ZoneStatistics"):  # a stats.json dict as is
        compare_scenarios({"baseline": base.as_dict(), "x": warm})


def test_zones_on_aggregated_cells_classify_the_mean_pzi():
    """Pixels of PZI 1 with every fourth at 0 are three quarters continuous, one quarter
    none, but every ~1 km cell is 75 % permafrost: discontinuous (Brown et al. 1997 /
    Obu et al. 2019)."""
    t = Affine(100.0, 0, 400_000, 0, -100.0, 4_000_000)
    yy, xx = np.mgrid[0:40, 0:30]
    pzi = ((yy % 2) | (xx % 2)).astype("float64")
    pzi[:, 25:] = np.nan  # nodata columns stay out of the cells' areas
    res = zone_statistics(da_on_grid(pzi, t, crs="EPSG:32647"), aggregate_m=1000.0, block_rows=7)
    whole, agg = res.units[0], res.meta["zones_aggregated"]
    assert agg["pixels_per_cell"] == [10, 10] and agg["cells"] == 4 * 3
    share = np.nanmean(pzi)  # 0.74: 25 valid columns
    assert whole["continuous_km2"] == pytest.approx(whole["denominator_km2"] * share, rel=1e-3)
    assert agg["discontinuous_km2"] == pytest.approx(whole["denominator_km2"])
    assert agg["continuous_km2"] == agg["none_km2"] == 0.0
    assert agg["pzi_ge_0.5_km2"] == pytest.approx(whole["denominator_km2"])


def _areas_proj_at_every_point(grid):
    """The former evaluation: PROJ's areal scale at each Gauss-Legendre point of every cell."""
    from permafrost.area.ellipsoid import _GL

    t, (nrows, ncols) = grid.transform, grid.shape
    proj = pyproj.Proj(grid.crs)
    to_geo = pyproj.Transformer.from_crs(grid.crs, grid.crs.geodetic_crs, always_xy=True)
    inv = np.zeros((nrows, ncols))
    for du in (0.5 - _GL, 0.5 + _GL):
        for dv in (0.5 - _GL, 0.5 + _GL):
            xx, yy = np.meshgrid(t.c + t.a * (np.arange(ncols) + du),
                                 t.f + t.e * (np.arange(nrows) + dv))
            lon, lat = to_geo.transform(xx.ravel(), yy.ravel())
            fac = proj.get_factors(lon, lat, errcheck=False)
            inv += 0.25 / np.asarray(fac.areal_scale).reshape(xx.shape)
    return abs(t.a * t.e) * inv


@pytest.mark.parametrize("epsg,x0,y0,h,n", [
    (32647, 180000.0, 4300000.0, 30.0, 300),     # UTM 47N, 320 km off the central meridian
    (3413, -1000000.0, 500000.0, 1000.0, 120),   # polar stereographic, 1 km cells
    (102025, -2000000.0, 4500000.0, 250.0, 200),  # Asia North Albers equal area
])
def test_projected_areas_on_the_lattice_match_proj_at_every_point(epsg, x0, y0, h, n):
    """The control-point lattice (AREA_LATTICE_M) changes the areas by < 1e-8 relative, and a
    cell's value is the same bits in any block of the grid."""
    crs = pyproj.CRS.from_user_input(f"ESRI:{epsg}" if epsg > 100000 else epsg)
    grid = Grid(crs, Affine(h, 0, x0, 0, -h, y0), (n, n + 7))
    a = cell_areas(grid)
    np.testing.assert_allclose(a, _areas_proj_at_every_point(grid), rtol=1e-8, atol=0)
    part = cell_areas(grid, slice(17, 61), slice(33, 90))
    assert part.tobytes() == a[17:61, 33:90].tobytes()
