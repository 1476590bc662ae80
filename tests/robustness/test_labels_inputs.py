"""`permafrost labels` with malformed inventories, borehole tables and GTN-P files."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from .conftest import (
    Outputs,
    assert_clean_failure,
    borehole_rows,
    cell_box,
    cell_point,
    invoke,
)


@pytest.fixture
def dem(make_covariates):
    return make_covariates() / "dem.tif"


def _labels(out, dem, *, inventory=None, boreholes=None, extra=()):
    args = ["labels", "--dem", dem, "--out", out]
    if inventory is not None:
        args += ["--inventory", inventory]
    if boreholes is not None:
        args += ["--boreholes", boreholes]
    return invoke([*args, *extra])


def test_valid_inputs_work(make_inventory, make_boreholes, dem, tmp_path):
    out = tmp_path / "labels.gpkg"
    res = _labels(out, dem, inventory=make_inventory(), boreholes=make_boreholes())
    assert res.exit_code == 0, res.stderr
    pts = gpd.read_file(out)
    assert set(pts["source"]) == {"rock_glacier", "borehole"}


# ----------------------------------------------------------------------------- inventories


def test_unknown_activity_classes(make_inventory, dem, tmp_path):
    inv = make_inventory(activity=["active", "Relict", "dormant", "relict", "ACTIVE", "?"])
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, field="activity",
                                outputs=Outputs.take(out))
    assert "dormant" in line and "'?'" in line


def test_missing_activity_column(make_inventory, dem, tmp_path):
    inv = make_inventory()
    out = tmp_path / "labels.gpkg"
    res = _labels(out, dem, inventory=inv, extra=["--activity-column", "activty"])
    assert_clean_failure(res, names=inv, field="activty", outputs=Outputs.take(out))


def test_duplicate_rock_glacier_ids(make_inventory, dem, tmp_path):
    inv = make_inventory(ids=["RG1", "RG2", "RG2", "RG3", "RG4", "RG1"])
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, field="rg_id",
                                outputs=Outputs.take(out))
    assert "RG1" in line and "RG2" in line


def test_empty_inventory(make_inventory, dem, tmp_path):
    inv = make_inventory(activity=[], geoms=[], ids=[])
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, outputs=Outputs.take(out))


def test_inventory_without_crs(make_inventory, dem, tmp_path):
    inv = make_inventory(name="inv.shp", crs=None)
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, outputs=Outputs.take(out))


def test_inventory_is_not_a_vector_file(dem, tmp_path):
    inv = tmp_path / "inventory.gpkg"
    inv.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- boreholes


def test_unparseable_numbers_in_borehole_table(make_boreholes, dem, tmp_path):
    rows = borehole_rows()
    rows[3] = rows[3].replace(",2015", ",twenty-fifteen")
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, field="year",
                                outputs=Outputs.take(out))
    assert "twenty-fifteen" in line


def test_decimal_comma_coordinates(make_boreholes, dem, tmp_path):
    rows = borehole_rows()
    parts = rows[2].split(",")
    rows[2] = ",".join([parts[0], f'"{parts[1].replace(".", ",")}"', *parts[2:]])
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, field="lon",
                         outputs=Outputs.take(out))


def test_swapped_coordinates(make_boreholes, dem, tmp_path):
    bh = make_boreholes(header="borehole_id,lat,lon,elevation_m,presence,magt_c,year")
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh,
                                outputs=Outputs.take(out))
    assert "swap" in line


def test_duplicate_borehole_ids(make_boreholes, dem, tmp_path):
    rows = borehole_rows()
    rows[5] = "BH01" + rows[5][4:]
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, field="borehole_id",
                                outputs=Outputs.take(out))
    assert "BH01" in line


def test_unparseable_presence(make_boreholes, dem, tmp_path):
    rows = borehole_rows()
    rows[4] = rows[4].replace(",1,", ",maybe,").replace(",0,", ",maybe,")
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, field="presence",
                                outputs=Outputs.take(out))
    assert "maybe" in line


@pytest.mark.parametrize("value", ["inf", "-inf", "nan"])
def test_non_finite_coordinates(make_boreholes, dem, tmp_path, value):
    rows = borehole_rows()
    parts = rows[6].split(",")
    parts[2] = value
    rows[6] = ",".join(parts)
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, outputs=Outputs.take(out))


def test_boreholes_outside_the_grid(make_boreholes, dem, tmp_path):
    rows = borehole_rows()
    rows[0] = "BH00,7.5,46.2,2500,1,-0.3,2010"  # a borehole in the Alps
    bh = make_boreholes(rows=rows)
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh,
                                outputs=Outputs.take(out))
    assert "BH00" in line


def test_borehole_table_is_binary(dem, tmp_path):
    bh = tmp_path / "boreholes.csv"
    bh.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, outputs=Outputs.take(out))


def test_borehole_table_header_only(make_boreholes, dem, tmp_path):
    bh = make_boreholes(rows=[])
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, outputs=Outputs.take(out))


def test_borehole_vector_with_mixed_geometries(dem, tmp_path):
    gdf = gpd.GeoDataFrame({"borehole_id": ["A", "B", "C"], "presence": [1, 0, 1]},
                           geometry=[cell_point(5, 5), cell_box(10, 10), cell_point(20, 20)],
                           crs="EPSG:4326")
    bh = tmp_path / "boreholes.gpkg"
    gdf.to_file(bh, driver="GPKG")
    out = tmp_path / "labels.gpkg"
    assert_clean_failure(_labels(out, dem, boreholes=bh), names=bh, field="geometry",
                         outputs=Outputs.take(out))


def test_gtnp_metadata_not_json(make_boreholes, dem, tmp_path, sample_dir):
    meta = tmp_path / "gtnp_metadata.json"
    meta.write_text("{'id': 1,")  # Python, not JSON
    out = tmp_path / "labels.gpkg"
    res = invoke(["labels", "--dem", dem, "--out", out, "--boreholes", make_boreholes(),
                  "--gtnp", sample_dir / "boreholes" / "gtnp_long.csv", "--gtnp-metadata", meta])
    assert_clean_failure(res, names=meta, outputs=Outputs.take(out))


def test_gtnp_csv_with_missing_columns(make_boreholes, dem, tmp_path, sample_dir):
    csv = tmp_path / "gtnp_long.csv"
    csv.write_text("id,date,depth\n1,2015-01-01,1.0\n")
    out = tmp_path / "labels.gpkg"
    res = invoke(["labels", "--dem", dem, "--out", out, "--boreholes", make_boreholes(),
                  "--gtnp", csv, "--gtnp-metadata",
                  sample_dir / "boreholes" / "gtnp_metadata.json"])
    assert_clean_failure(res, names=csv, field="temperature", outputs=Outputs.take(out))


def test_existing_output_kept_when_the_input_is_bad(make_inventory, dem, tmp_path):
    """A failed run leaves yesterday's labels byte-for-byte as they were."""
    out = tmp_path / "labels.gpkg"
    assert _labels(out, dem, inventory=make_inventory()).exit_code == 0
    snap = Outputs.take(out)
    bad = make_inventory(name="bad.gpkg", activity=["active", "zombie", "relict", "relict",
                                                    "active", "relict"])
    assert_clean_failure(_labels(out, dem, inventory=bad), names=bad, field="activity",
                         outputs=snap)


def test_inventory_entirely_outside_the_grid(make_inventory, dem, tmp_path):
    geoms = [shapely.box(10.0, 46.0, 10.01, 46.01)] * 6  # the Alps, not the grid
    inv = make_inventory(geoms=geoms)
    out = tmp_path / "labels.gpkg"
    line = assert_clean_failure(_labels(out, dem, inventory=inv), names=inv, field="labels",
                                outputs=Outputs.take(out))
    assert "no labelled point" in line
