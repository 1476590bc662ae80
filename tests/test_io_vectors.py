"""The vector edge: any format and CRS in, atomic GeoPackage out, clear errors."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from permafrost.errors import CRSError, DataError, InputFileError
from permafrost.io.vectors import read_vector, write_vector


@pytest.fixture
def polygons():
    return gpd.GeoDataFrame({"rg_id": [1, 2], "activity": ["active", "relict"]},
                            geometry=[box(0, 0, 100, 200), box(300, 0, 400, 50)],
                            crs="EPSG:32647")


@pytest.mark.parametrize("suffix", [".gpkg", ".geojson", ".shp", ".parquet"])
def test_round_trip_formats_keep_crs_and_columns(tmp_path, polygons, suffix):
    path = tmp_path / f"rg{suffix}"
    if suffix == ".gpkg":
        write_vector(polygons, path)
    elif suffix == ".parquet":
        polygons.to_parquet(path)
    else:
        polygons.to_file(path)
    back = read_vector(path)
    assert back.crs.to_epsg() == 32647
    assert list(back["activity"]) == ["active", "relict"]
    assert back.geometry.area.round().tolist() == [20000.0, 5000.0]


def test_vector_without_crs_is_refused(tmp_path, polygons):
    path = tmp_path / "nocrs.geojson"
    path.write_text(polygons.set_crs(None, allow_override=True).to_json())
    # GeoJSON implies WGS84, so use a shapefile without .prj to lose the CRS
    shp = tmp_path / "nocrs.shp"
    polygons.to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(CRSError) as exc:
        read_vector(shp)
    assert "nocrs.shp" in str(exc.value)


def test_file_without_geometry_is_refused(tmp_path):
    path = tmp_path / "table.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(path)
    with pytest.raises(InputFileError) as exc:
        read_vector(path)
    assert "table.parquet" in str(exc.value) and "geometry" in str(exc.value)


def test_csv_without_geometry_is_refused(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(InputFileError) as exc:
        read_vector(path)
    assert "table.csv" in str(exc.value)


def test_missing_and_empty(tmp_path, polygons):
    with pytest.raises(InputFileError, match="not found"):
        read_vector(tmp_path / "x.gpkg")
    empty = tmp_path / "empty.gpkg"
    write_vector(polygons.iloc[:0], empty)
    with pytest.raises(DataError, match="no features"):
        read_vector(empty)
    assert len(read_vector(empty, allow_empty=True)) == 0


def test_write_vector_is_atomic(tmp_path, polygons, monkeypatch):
    import pyogrio

    target = tmp_path / "out.gpkg"
    real_write = pyogrio.write_dataframe

    def write_then_crash(df, path, **kw):
        real_write(df, path, **kw)  # the temporary file is complete ...
        raise OSError(28, "No space left on device")  # ... then the disk fills up

    monkeypatch.setattr(pyogrio, "write_dataframe", write_then_crash)
    with pytest.raises(OSError) as exc:
        write_vector(polygons, target)
    assert "disk is full" in str(exc.value) and "out.gpkg" in str(exc.value)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setattr(pyogrio, "write_dataframe", real_write)
    write_vector(gpd.GeoDataFrame({"id": [1]}, geometry=[Point(99, 38.5)], crs=4326), target)
    assert len(read_vector(target)) == 1


def test_geopackage_output_is_byte_identical(tmp_path, polygons):
    import hashlib
    import time

    a, b = tmp_path / "a.gpkg", tmp_path / "b.gpkg"
    write_vector(polygons, a, layer="rg")
    time.sleep(1.1)  # a timestamp in the file would now differ
    write_vector(polygons, b, layer="rg")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
