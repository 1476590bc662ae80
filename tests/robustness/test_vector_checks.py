"""Vector, table and prior-map inputs that used to give a silently wrong answer or a wrong
fix (issue 21): a prior in percent, overlapping regions, regions that miss the map, UTM
metres labelled EPSG:4326, a GeoPackage with several layers, a borehole table linked to
``/dev/zero``, Excel's UTF-16 and Latin-1 tables, a trailing empty row, commas in ids.

Every case is refused cleanly (one line naming the file and the fix, exit 2, no output) or
answered right; the input files are checked byte for byte afterwards.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from types import SimpleNamespace

import geopandas as gpd
import numpy as np
import pyproj
import pytest
import shapely

from .conftest import (
    BOREHOLE_HEADER,
    NX,
    NY,
    ROOT,
    Outputs,
    assert_clean_failure,
    borehole_rows,
    cell_box,
    invoke,
    write_raster,
)


def _cli_bounded(*args, timeout: float = 120) -> SimpleNamespace:
    """The real entry point in a child process with a time limit and an 8 GiB address-space
    limit: a reader that reads ``/dev/zero`` or waits on a FIFO fails the test instead of
    filling the machine's memory or hanging the suite."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (8 * 2**30, 8 * 2**30))

    p = subprocess.run([sys.executable, "-m", "permafrost", *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=timeout, preexec_fn=limit)
    return SimpleNamespace(exit_code=p.returncode, stdout=p.stdout, stderr=p.stderr,
                           exception=None)


def _regions(path, names, geoms, crs="EPSG:4326", layer=None):
    gpd.GeoDataFrame({"name": names}, geometry=list(geoms), crs=crs).to_file(
        path, driver="GPKG", layer=layer)
    return path


def _geodesic_km2(poly) -> float:
    """The area of a lon/lat polygon on the WGS84 ellipsoid, its edges following the
    parallels and meridians (densified), in km²."""
    dense = shapely.segmentize(poly, max_segment_length=poly.length / 4000)
    area, _ = pyproj.Geod(ellps="WGS84").geometry_area_perimeter(dense)
    return abs(area) / 1e6


# ----------------------------------------------------------------------------- priors


def test_prior_in_percent_refused(make_pzi, tmp_path):
    """A continuous prior in percent used to pass: every cell >= 0.5 % read as permafrost."""
    pzi = make_pzi()
    yy, xx = np.mgrid[0:NY, 0:NX]
    prior = write_raster(tmp_path / "obu_percent.tif", (xx / (NX - 1)) * 100.0)
    out = tmp_path / "val"
    watch = Outputs.take(out, pzi, prior)
    res = invoke(["validate", pzi, "--prior", f"obu={prior}:continuous:0.5", "--out", out])
    line = assert_clean_failure(res, names=[prior, "obu"], outputs=watch)
    assert "percent" in line and "100" in line


def test_prior_threshold_in_percent_refused(make_pzi, tmp_path):
    prior = write_raster(tmp_path / "p.tif", np.full((NY, NX), 0.7))
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"obu={prior}:continuous:50", "--out", out])
    assert_clean_failure(res, names="50", field="--prior", outputs=Outputs.take(out, prior))


def test_categorical_prior_with_codes_still_works(make_pzi, tmp_path):
    """Class codes (1, 2) are not a probability and are not read as one."""
    pzi = make_pzi()
    yy, xx = np.mgrid[0:NY, 0:NX]
    prior = write_raster(tmp_path / "survey.tif", np.where(xx > NX / 2, 1.0, 2.0))
    watch = Outputs.take(pzi, prior)
    out = tmp_path / "val"
    res = invoke(["validate", pzi, "--prior", f"survey={prior}:categorical:1:2", "--out", out])
    assert res.exit_code == 0, res.stderr
    js = json.loads((out / "validation.json").read_text())
    assert js["priors"][0]["codes_present"].keys() == {"1", "2"}
    watch.assert_untouched()


# ----------------------------------------------------------------------------- regions


def test_overlapping_regions_each_reported_on_its_own(make_pzi, tmp_path):
    """Two overlapping squares, cell-aligned: each region's footprint is its own geodesic
    area (the later one used to take the overlap from the earlier one)."""
    pzi = make_pzi()
    a, b = cell_box(5, 5, 30), cell_box(20, 25, 30)  # overlap: 15 x 10 cells
    reg = _regions(tmp_path / "basins.gpkg", ["upper", "lower"], [a, b])
    out = tmp_path / "stats.json"
    watch = Outputs.take(pzi, reg)
    res = invoke(["stats", pzi, "--regions", reg, "--out-json", out])
    assert res.exit_code == 0, res.stderr
    js = json.loads(out.read_text())
    units = {u["name"]: u for u in js["units"] if u["unit"] == "region"}
    assert units["upper"]["footprint_km2"] == pytest.approx(_geodesic_km2(a), rel=1e-6)
    assert units["lower"]["footprint_km2"] == pytest.approx(_geodesic_km2(b), rel=1e-6)
    meta = js["meta"]["regions"]
    assert meta["overlap_km2"] == pytest.approx(_geodesic_km2(a.intersection(b)), rel=1e-6)
    assert "each region reported on its own" in meta["assignment"]
    assert meta["outside_map"] == []
    whole = next(u for u in js["units"] if u["unit"] == "all")
    assert (units["upper"]["footprint_km2"] + units["lower"]["footprint_km2"]
            - meta["overlap_km2"] + meta["outside_regions_km2"]
            == pytest.approx(whole["footprint_km2"], rel=1e-9))
    watch.assert_untouched()


def test_regions_that_miss_the_map_refused(make_pzi, tmp_path):
    """Regions elsewhere (here: the Alps, the map is in the Qilian Shan) gave 0 km², exit 0."""
    pzi = make_pzi()
    reg = _regions(tmp_path / "alps.gpkg", ["valais", "grisons"],
                   [shapely.box(7.0, 46.0, 7.5, 46.5), shapely.box(9.5, 46.5, 10.0, 47.0)])
    out = tmp_path / "stats.json"
    res = invoke(["stats", pzi, "--regions", reg, "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="name", outputs=Outputs.take(out, reg))
    assert "none of the 2 regions" in line and "CRS" in line


def test_one_region_off_the_map_warned_and_named(make_pzi, tmp_path):
    """Through the real entry point: the warning is a line on stderr a user sees."""
    pzi = make_pzi()
    reg = _regions(tmp_path / "basins.gpkg", ["here", "elsewhere"],
                   [cell_box(5, 5, 20), shapely.box(7.0, 46.0, 7.5, 46.5)])
    out = tmp_path / "stats.json"
    watch = Outputs.take(reg)
    res = _cli_bounded("stats", pzi, "--regions", reg, "--out-json", out)
    assert res.exit_code == 0, res.stderr
    warn = [ln for ln in res.stderr.splitlines() if "elsewhere" in ln]
    assert len(warn) == 1 and "no cell" in warn[0], res.stderr
    js = json.loads(out.read_text())
    assert js["meta"]["regions"]["outside_map"] == ["elsewhere"]
    watch.assert_untouched()


def test_utm_regions_labelled_4326_refused(make_pzi, tmp_path):
    pzi = make_pzi()
    reg = _regions(tmp_path / "basins_utm.gpkg", ["a"],
                   [shapely.box(586000, 4273000, 590000, 4277000)])  # UTM 47N metres
    out = tmp_path / "stats.json"
    res = invoke(["stats", pzi, "--regions", reg, "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="geometry", outputs=Outputs.take(out, reg))
    assert "EPSG:4326" in line and "projected metres" in line


def test_lv03_coordinates_labelled_lv95_refused(make_pzi, tmp_path):
    """A projected CRS: coordinates far outside its area of use (LV03 numbers, LV95 label)."""
    reg = _regions(tmp_path / "cantons.gpkg", ["a"], [shapely.box(600000, 200000, 601000, 201000)],
                   crs="EPSG:2056")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", reg, "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="geometry", outputs=Outputs.take(out, reg))
    assert "EPSG:2056" in line


def test_utm_boreholes_labelled_4326_refused(make_pzi, tmp_path):
    """Borehole points in a vector file, UTM metres labelled EPSG:4326."""
    bh = tmp_path / "boreholes.gpkg"
    gpd.GeoDataFrame({"borehole_id": ["A", "B"], "presence": [1, 0]},
                     geometry=[shapely.Point(586000, 4273000), shapely.Point(587000, 4274000)],
                     crs="EPSG:4326").to_file(bh, driver="GPKG")
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert_clean_failure(res, names=bh, field="geometry", outputs=Outputs.take(out, bh))


def test_projected_borehole_columns_outside_their_crs_refused(make_pzi, make_boreholes,
                                                              tmp_path):
    bh = make_boreholes(header="borehole_id,x,y,presence",
                        rows=["A,600000,200000,1", "B,601000,201000,0"])
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--boreholes-crs", "EPSG:2056",
                  "--out", out])
    assert_clean_failure(res, names=[bh, "EPSG:2056"], field="x/y",
                         outputs=Outputs.take(out, bh))


# ----------------------------------------------------------------------------- layers


def test_geopackage_with_several_layers_refused_then_read_by_name(make_pzi, tmp_path):
    pzi = make_pzi()
    reg = tmp_path / "project.gpkg"
    _regions(reg, ["north"], [cell_box(5, 5, 20)], layer="basins")
    _regions(reg, ["x"], [cell_box(30, 30, 10)], layer="glaciers")
    out = tmp_path / "stats.json"
    watch = Outputs.take(out, reg)
    res = invoke(["stats", pzi, "--regions", reg, "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="layer", outputs=watch)
    assert "basins" in line and "glaciers" in line and "::basins" in line
    res = invoke(["stats", pzi, "--regions", f"{reg}::basins", "--out-json", out])
    assert res.exit_code == 0, res.stderr
    js = json.loads(out.read_text())
    assert [u["name"] for u in js["units"] if u["unit"] == "region"] == ["north"]
    assert Outputs.take(reg).before == {reg: watch.before[reg]}


def test_a_layer_that_is_not_there_refused(make_pzi, tmp_path):
    reg = _regions(tmp_path / "project.gpkg", ["north"], [cell_box(5, 5, 20)], layer="basins")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", f"{reg}::basin", "--out-json", out])
    line = assert_clean_failure(res, names=reg, field="layer", outputs=Outputs.take(out, reg))
    assert "'basin'" in line and "basins" in line


def test_inventory_with_several_layers_refused(make_inventory, make_covariates, tmp_path):
    inv = make_inventory("inventory.gpkg")
    gpd.GeoDataFrame({"rg_id": ["Z"], "activity": ["active"]}, geometry=[cell_box(40, 40)],
                     crs="EPSG:4326").to_file(inv, driver="GPKG", layer="other")
    out = tmp_path / "labels.gpkg"
    res = invoke(["labels", "--dem", make_covariates() / "dem.tif", "--inventory", inv,
                  "--out", out])
    assert_clean_failure(res, names=inv, field="layer", outputs=Outputs.take(out, inv))


def test_a_style_table_beside_the_one_layer_is_no_second_layer(make_pzi, tmp_path):
    """QGIS saves styles as a non-spatial ``layer_styles`` table in the GeoPackage."""
    import pandas as pd
    import pyogrio

    reg = tmp_path / "basins.gpkg"
    pyogrio.write_dataframe(pd.DataFrame({"styleName": ["s"]}), reg, layer="layer_styles")
    _regions(reg, ["north"], [cell_box(5, 5, 20)], layer="basins")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", reg, "--out-json", out])
    assert res.exit_code == 0, res.stderr
    js = json.loads(out.read_text())
    assert [u["name"] for u in js["units"] if u["unit"] == "region"] == ["north"]


# ----------------------------------------------------------------------------- files


@pytest.mark.parametrize("name", ["boreholes.csv", "boreholes.gpkg"])
def test_borehole_table_linked_to_dev_zero_refused_fast(name, make_pzi, tmp_path):
    link = tmp_path / name
    os.symlink("/dev/zero", link)
    out = tmp_path / "val"
    t0 = time.monotonic()
    res = _cli_bounded("validate", make_pzi(), "--boreholes", link, "--out", out, timeout=120)
    assert time.monotonic() - t0 < 60
    line = assert_clean_failure(res, names=link, outputs=Outputs.take(out))
    assert "not a regular file" in line


def test_regions_linked_to_a_fifo_refused(make_pzi, tmp_path):
    fifo = tmp_path / "regions.gpkg"
    os.mkfifo(fifo)
    out = tmp_path / "stats.json"
    res = _cli_bounded("stats", make_pzi(), "--regions", fifo, "--out-json", out, timeout=120)
    assert_clean_failure(res, names=fifo, outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- encodings


_IDS = ["Mürren-1", "Corvatsch-Süd", "Schilthorn 50/00"]


def _excel_rows():
    rows = borehole_rows(len(_IDS) + 3)
    return [r.replace(r.split(",")[0], _IDS[i], 1) if i < len(_IDS) else r
            for i, r in enumerate(rows)]


def test_utf16_table_from_excel_read(make_pzi, tmp_path):
    """Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated, CRLF."""
    from permafrost.io.boreholes import read_presence_table

    bh = tmp_path / "boreholes.txt"
    text = "\r\n".join([BOREHOLE_HEADER, *_excel_rows()]).replace(",", "\t") + "\r\n"
    bh.write_bytes(text.encode("utf-16"))  # with its BOM
    assert bh.read_bytes()[:2] == b"\xff\xfe"
    table = read_presence_table(bh)
    assert table["borehole_id"].tolist()[:3] == _IDS
    out = tmp_path / "val"
    watch = Outputs.take(bh)
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert res.exit_code == 0, res.stderr
    assert json.loads((out / "validation.json").read_text())["boreholes"]["n_read"] == 6
    watch.assert_untouched()


def test_utf8_table_with_bom_read(tmp_path):
    from permafrost.io.boreholes import read_presence_table

    bh = tmp_path / "boreholes.csv"
    bh.write_bytes("\n".join([BOREHOLE_HEADER, *_excel_rows()]).encode("utf-8-sig"))
    table = read_presence_table(bh)
    assert table["borehole_id"].tolist()[:3] == _IDS
    assert table.attrs["columns"]["id"] == "borehole_id"


def test_latin1_table_refused_with_the_right_fix(make_pzi, tmp_path):
    """Excel's plain "CSV" in a Western code page: refused, never guessed (the same bytes
    are other letters in another code page), with the line and how to save it as UTF-8."""
    bh = tmp_path / "boreholes.csv"
    bh.write_bytes("\n".join([BOREHOLE_HEADER, *_excel_rows()]).encode("latin-1"))
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    line = assert_clean_failure(res, names=bh, outputs=Outputs.take(out, bh))
    assert "not UTF-8" in line and "line 2" in line and "CSV UTF-8" in line
    assert "comma-separated" not in line  # the old, wrong fix


# ----------------------------------------------------------------------------- rows


@pytest.mark.parametrize("tail", [",,,,,,\n", ",,,,,,\n,,,,,,", " , , ,,,,\n\n"])
def test_trailing_empty_rows_are_not_boreholes(tail, make_pzi, make_boreholes, tmp_path):
    bh = make_boreholes()
    with open(bh, "a") as fh:
        fh.write(tail)
    out = tmp_path / "val"
    watch = Outputs.take(bh)
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert res.exit_code == 0, res.stderr
    assert json.loads((out / "validation.json").read_text())["boreholes"]["n_read"] == 12
    watch.assert_untouched()


def test_an_empty_row_in_the_middle_keeps_the_row_numbers(make_boreholes, tmp_path):
    from permafrost.io.boreholes import read_presence_table

    rows = borehole_rows(4)
    bh = make_boreholes(rows=[rows[0], ",,,,,,", rows[1], rows[2].replace(",1,", ",maybe,")])
    with pytest.raises(Exception, match=r"'maybe' in rows 3"):
        read_presence_table(bh)
    bh = make_boreholes(rows=[rows[0], ",,,,,,", *rows[1:]])
    assert read_presence_table(bh)["row"].tolist() == [0, 2, 3, 4]


def test_quoted_commas_in_borehole_ids(make_pzi, make_boreholes, tmp_path):
    from permafrost.io.boreholes import read_presence_table

    rows = [f'"Site {i}, hole {i}"' + r[r.index(","):] for i, r in enumerate(borehole_rows())]
    bh = make_boreholes(rows=rows)
    assert read_presence_table(bh)["borehole_id"].tolist()[:2] == ["Site 0, hole 0",
                                                                   "Site 1, hole 1"]
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert res.exit_code == 0, res.stderr


# ----------------------------------------------------------------------------- pipelines


def test_pipeline_regions_with_several_layers_refused_before_work_then_named(tmp_path):
    """The pipeline file is checked before any step runs; ``FILE::LAYER`` then works there
    too (the step key covers the file's bytes and the layer's name)."""
    import shutil

    from .conftest import demo_pipeline_text

    reg = tmp_path / "project.gpkg"
    shutil.copyfile(ROOT / "data_samples" / "regions" / "basins.gpkg", reg)
    _regions(reg, ["x"], [cell_box(30, 30, 10)], layer="glaciers")
    watch = Outputs.take(reg)
    sample = f"{ROOT.as_posix()}/data_samples/regions/basins.gpkg"
    text = demo_pipeline_text(tmp_path / "out")
    assert sample in text
    pipe = tmp_path / "pipe.toml"
    pipe.write_text(text.replace(sample, reg.as_posix()))
    res = invoke(["run", pipe, "--dry-run"])
    line = assert_clean_failure(res, names=reg, field="layer")
    assert "::basins" in line and not (tmp_path / "out").exists()
    pipe.write_text(text.replace(sample, f"{reg.as_posix()}::basins"))
    res = invoke(["run", pipe, "--dry-run", "--json"])
    assert res.exit_code == 0, res.stderr
    watch.assert_untouched()


def test_utf16_table_without_its_mark_refused_with_the_fix(make_pzi, tmp_path):
    bh = tmp_path / "boreholes.csv"
    bh.write_bytes("\n".join([BOREHOLE_HEADER, *_excel_rows()]).encode("utf-16-le"))
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    line = assert_clean_failure(res, names=bh, outputs=Outputs.take(out, bh))
    assert "UTF-16" in line and "CSV UTF-8" in line


def test_a_huge_table_refused_before_it_is_read(make_pzi, tmp_path):
    """A sparse file past the bound: refused by its size, not read into memory."""
    from permafrost.io.boreholes import MAX_TABLE_BYTES

    bh = tmp_path / "boreholes.csv"
    bh.write_text(BOREHOLE_HEADER + "\n")
    os.truncate(bh, MAX_TABLE_BYTES + 1)
    out = tmp_path / "val"
    t0 = time.monotonic()
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert time.monotonic() - t0 < 30
    line = assert_clean_failure(res, names=bh, outputs=Outputs.take(out))
    assert "MiB" in line and "larger than" in line
