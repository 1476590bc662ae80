"""Outputs that open right in GIS (issue 26 items 6 and 7): one style module, QGIS styles,
units, named CRSs, provenance paths relative to the run folder, clean sample geometries, and
the CLI's paper cuts. The whole demo run opened from a copy is in tests/test_pipeline.py
(``test_every_output_opens_right_in_gis_from_a_copy_of_the_run``)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import rasterio
from shapely.geometry import GeometryCollection, LineString, MultiPolygon, Polygon, box
from typer.testing import CliRunner

from permafrost import styles
from permafrost.cli import app

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# ------------------------------------------------------------------------- the style module
def test_zone_colours_are_one_table_in_zone_code_order():
    from permafrost.area import ZONE_NAMES, classify_zones
    from permafrost.report import ZONE_COLOURS as REPORT
    from permafrost.workflows.predict import write_zones  # noqa: F401 - uses the table

    assert tuple(styles.ZONE_COLOURS) == ZONE_NAMES
    # the report draws the four zones with the COG's colours
    for code, name in enumerate(ZONE_NAMES):
        rgba = styles.ZONE_COLOUR_TABLE[code]
        assert rgba == styles.hex_rgba(styles.ZONE_COLOURS[name])
        if name != "none":
            assert styles.hex_rgba(REPORT[name]) == rgba
    assert styles.ZONE_COLOUR_TABLE[styles.ZONE_NODATA][3] == 0  # nodata transparent
    # the classifier writes the style module's nodata code for NaN
    assert classify_zones(np.array([np.nan]))[0] == styles.ZONE_NODATA


@pytest.mark.parametrize("key", sorted(styles.RAMPS))
def test_qgis_ramps_are_the_reports_matplotlib_colormaps(key):
    """The .qml stops equal matplotlib's colormap of the report at the same positions (to
    half a colour step): QGIS and the report draw the same colours."""
    import matplotlib

    ramp = styles.RAMPS[key]
    # the colormap evaluated at exactly i / n (its default 256-entry table rounds positions)
    cmap = matplotlib.colormaps[ramp.name].resampled(len(ramp.stops))
    for i, stop in enumerate(ramp.stops):
        want = np.array(styles.hex_rgba(stop)[:3]) / 255
        got = np.array(cmap(i)[:3])
        assert np.abs(got - want).max() <= 0.5 / 255 + 1e-9, (key, i, got * 255, want * 255)


@pytest.mark.parametrize("kind", ["pzi", "warmed_pzi", "uncertainty", "zones", "agreement",
                                  "change", "extrapolation"])
def test_raster_styles_are_qgis_xml_with_the_layers_colours(kind):
    root = ET.fromstring(styles.raster_qml(kind, vmax=0.3))
    renderer = root.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("band") == "1"
    lay = styles.layer(kind)
    if lay.style == "ramp":
        items = renderer.findall("rastershader/colorrampshader/item")
        assert [i.get("color") for i in items] == list(styles.RAMPS[lay.ramp].stops)
        values = [float(i.get("value")) for i in items]
        assert values == sorted(values)
        r = styles.RAMPS[lay.ramp]
        assert values[0] == r.vmin and values[-1] == pytest.approx(r.vmax or 0.3)
    elif lay.style == "paletted":
        entries = renderer.findall("colorPalette/paletteEntry")
        assert {int(e.get("value")): e.get("color") for e in entries} == \
            {c: col[:7] for c, (_, col) in lay.classes.items()}
    else:
        items = renderer.findall("rastershader/colorrampshader/item")
        assert len(items) == len(lay.classes)
    assert lay.unit  # every raster kind has a band unit


def test_support_style_needs_its_threshold():
    with pytest.raises(ValueError, match="classes"):
        styles.raster_qml("support")
    root = ET.fromstring(styles.raster_qml("support", classes=styles.support_classes(10)))
    items = root.findall("pipe/rasterrenderer/rastershader/colorrampshader/item")
    assert [i.get("value") for i in items] == ["9", "inf"]  # fewer than 10: up to 9


@pytest.mark.parametrize("kind", ["kinematics", "labels", "boreholes", "holdout_blocks",
                                  "rock_glaciers"])
def test_vector_styles_are_qgis_xml(kind):
    root = ET.fromstring(styles.vector_qml(kind))
    r = root.find("renderer-v2")
    assert r is not None
    assert len(r.findall("symbols/symbol")) == len(styles.layer(kind).classes)


def test_velocity_classes_are_the_rgik_classes_in_the_reports_colours():
    from permafrost.kinematics import RGIK_CLASS_EDGES_CM_YR

    root = ET.fromstring(styles.vector_qml("kinematics"))
    ranges = root.findall("renderer-v2/ranges/range")
    inner = [float(r.get("upper")) for r in ranges[:-1]]
    assert inner == list(RGIK_CLASS_EDGES_CM_YR)
    colours = [s.find("layer/Option/Option[@name='color']").get("value")
               for s in root.findall("renderer-v2/symbols/symbol")]
    assert colours == [",".join(map(str, styles.hex_rgba(c))) for c in styles.VELOCITY_COLOURS]


# ------------------------------------------------------------------------------ writers
def _points(n=4):
    return gpd.GeoDataFrame({"label": [1, 0] * (n // 2)},
                            geometry=gpd.points_from_xy(np.linspace(99, 99.1, n),
                                                        np.linspace(38.4, 38.5, n)),
                            crs="EPSG:4326")


def test_a_styled_geopackage_holds_one_layer_and_its_default_style(tmp_path):
    from permafrost.io.vectors import read_vector, write_vector

    p = write_vector(_points(), tmp_path / "labels.gpkg", layer="labels", style="labels")
    with sqlite3.connect(p) as con:
        rows = con.execute("SELECT f_table_name, f_geometry_column, useAsDefault, styleQML "
                           "FROM layer_styles").fetchall()
        kind = con.execute("SELECT data_type FROM gpkg_contents WHERE table_name = "
                           "'layer_styles'").fetchone()
    assert [(r[0], r[1], r[2]) for r in rows] == [("labels", "geom", 1)]
    assert ET.fromstring(rows[0][3]).find("renderer-v2").get("attr") == "label"
    assert kind == ("attributes",)
    assert len(read_vector(p)) == 4  # the style table is not a second layer
    spatial = [n for n, g in pyogrio.list_layers(p) if g]
    assert spatial == ["labels"]
    # the same features give the same bytes (no time stamp in the style row)
    q = write_vector(_points(), tmp_path / "again.gpkg", layer="labels", style="labels")
    with sqlite3.connect(p) as a, sqlite3.connect(q) as b:
        assert a.execute("SELECT * FROM layer_styles").fetchall() == \
            b.execute("SELECT * FROM layer_styles").fetchall()


def test_a_layer_cog_has_its_unit_description_and_style(tmp_path):
    import xarray as xr

    from permafrost.io.styles import qml_path, write_layer_cog

    da = xr.DataArray(np.linspace(0, 1, 64, dtype="float32").reshape(8, 8), dims=("y", "x"),
                      coords={"y": 38.5 - np.arange(8) * 0.01, "x": 99 + np.arange(8) * 0.01})
    da = da.rio.write_crs(4326)
    out = write_layer_cog(da, tmp_path / "pzi.tif", "pzi", nodata=np.nan, dtype="float32")
    with rasterio.open(out) as ds:
        assert ds.units == ("1",)
        assert ds.descriptions == (styles.layer("pzi").description,)
    assert qml_path(out) == tmp_path / "pzi.qml"
    assert ET.fromstring(qml_path(out).read_text()).find("pipe/rasterrenderer") is not None


def test_the_blocking_frame_is_a_named_crs_with_the_same_coordinates():
    from pyproj import CRS, Transformer

    from permafrost.cv import metric_crs

    lon = np.array([98.9, 99.0, 99.2])
    lat = np.array([38.40, 38.50, 38.62])
    frame = metric_crs(lon, lat, 4326)
    assert frame.name.startswith("permafrost blocking frame") and "unknown" not in \
        frame.to_wkt("WKT1_GDAL").split(",")[0]
    assert frame.geodetic_crs.name == "WGS 84"
    bare = CRS.from_proj4(f"+proj=aeqd +lat_0={lat.mean()} +lon_0={lon.mean()} +datum=WGS84 "
                          "+units=m")
    x = np.random.default_rng(0).uniform(98, 100, 500)
    y = np.random.default_rng(1).uniform(37, 40, 500)
    a = Transformer.from_crs(4326, frame, always_xy=True).transform(x, y)
    b = Transformer.from_crs(4326, bare, always_xy=True).transform(x, y)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def test_provenance_paths_are_relative_to_the_run_folder(tmp_path):
    from permafrost.io.guard import (
        RELATIVE_TO_FILE,
        RELATIVE_TO_RUN,
        RUN_FOLDER,
        mark_folder,
        provenance_base,
        run_root,
    )

    run = tmp_path / "run"
    deep = run / "steps" / "predict" / "abc"
    deep.mkdir(parents=True)
    (run / "baseline").mkdir()
    assert run_root(deep / "pzi.tif") is None
    assert provenance_base(deep / "pzi.tif") == (deep, RELATIVE_TO_FILE)
    mark_folder(run, RUN_FOLDER)
    mark_folder(deep, "block cache")  # another marker is not a run
    for f in (deep / "pzi.tif", run / "baseline" / "pzi.tif"):
        assert provenance_base(f) == (run, RELATIVE_TO_RUN)


# ------------------------------------------------------------------------ sample geometries
def test_the_sample_basins_are_plain_polygons():
    gdf = gpd.read_file(ROOT / "data_samples" / "regions" / "basins.gpkg")
    assert set(gdf.geom_type) == {"Polygon"}
    from permafrost.io.catalog import mixed_geometry_warning

    assert mixed_geometry_warning(gdf.geometry) is None


def test_mixed_geometry_types_are_warned_of():
    from permafrost.io.catalog import mixed_geometry_warning

    poly = box(0, 0, 1, 1)
    coll = GeometryCollection([poly, LineString([(1, 0), (1, 1)])])
    w = mixed_geometry_warning([coll, box(1, 0, 2, 1)])
    assert w and "1 LineString" in w and "GeometryCollection" in w
    assert mixed_geometry_warning([poly, MultiPolygon([box(2, 2, 3, 3)])]) is None
    assert "Point" in mixed_geometry_warning([poly, Polygon(poly).centroid])


def test_inspect_reads_one_file_and_warns_of_mixed_geometries(tmp_path):
    coll = GeometryCollection([box(99, 38, 99.1, 38.1), LineString([(99, 38), (99.2, 38.2)])])
    p = tmp_path / "regions.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[coll], crs=4326).to_file(p)
    res = runner.invoke(app, ["inspect", str(p)])
    assert res.exit_code == 0, res.output
    assert "regions.gpkg" in res.output and "mixed geometry types" in res.output
    dem = ROOT / "data_samples" / "covariates" / "dem.tif"
    res = runner.invoke(app, ["inspect", str(dem), "--json"])
    assert res.exit_code == 0, res.output
    assert '"kind": "raster"' in res.stdout and "dem.tif" in res.stdout
    res = runner.invoke(app, ["inspect", str(tmp_path / "missing.tif")])
    assert res.exit_code == 2 and "file not found" in res.output


# ------------------------------------------------------------------------- CLI paper cuts
def test_run_comes_first_in_the_help():
    res = runner.invoke(app, ["--help"])
    commands = res.output.split("Commands:")[1].split()
    assert commands[0] == "run"


def _complete(words: str) -> list[str]:
    env = {**os.environ, "_PERMAFROST_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}
    # the console script (completion goes by its name: _PERMAFROST_COMPLETE)
    exe = Path(sys.executable).with_name("permafrost")
    proc = subprocess.run([str(exe)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    return proc.stdout.split()


def test_completion_of_steps_scenarios_models_and_devices():
    from permafrost.backends import DEVICES
    from permafrost.models import MODEL_KINDS
    from permafrost.pipeline import STEP_NAMES

    assert _complete("permafrost run pipelines/demo.toml --only ") == STEP_NAMES
    assert _complete("permafrost run pipelines/demo.toml --scenario p") == \
        ["plus1", "plus2", "plus4"]
    assert _complete("permafrost train --model ") == list(MODEL_KINDS)
    assert _complete("permafrost predict --device c") == [d for d in DEVICES
                                                          if d.startswith("c")]


def test_boreholes_crs_has_one_spelling_and_the_old_one_still_works():
    for cmd in ("labels", "validate"):
        help_text = runner.invoke(app, [cmd, "--help"]).output
        assert "--boreholes-crs" in help_text and "--borehole-crs " not in help_text
    from permafrost.cli._app import deprecated_alias

    assert deprecated_alias("--borehole-crs", "--boreholes-crs", "EPSG:32647", None) == \
        "EPSG:32647"
    assert deprecated_alias("--borehole-crs", "--boreholes-crs", None, "EPSG:4326") == \
        "EPSG:4326"


def test_library_warnings_are_one_log_line_not_a_raw_block(tmp_path):
    import rasterio as rio

    p = tmp_path / "nogeo.tif"
    with pytest.warns(rio.errors.NotGeoreferencedWarning), \
            rio.open(p, "w", driver="GTiff", width=4, height=4, count=1, dtype="float32") as d:
        d.write(np.ones((1, 4, 4), "float32"))
    proc = subprocess.run([sys.executable, "-m", "permafrost", "inspect", str(p)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    # the error alone: before, rasterio's and rioxarray's warnings came as four raw lines
    assert proc.stderr.splitlines() == [
        f"Error: {p}: the raster has no CRS; assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 "
        "FILE`"]
    verbose = subprocess.run([sys.executable, "-m", "permafrost", "-v", "inspect", str(p)],
                             capture_output=True, text=True, timeout=120)
    logged = [ln for ln in verbose.stderr.splitlines() if "permafrost.library" in ln]
    assert logged and all("identity matrix" in ln and ("(rasterio)" in ln or "(rioxarray)" in ln)
                          for ln in logged)
    assert "NotGeoreferencedWarning" not in verbose.stderr
    assert "site-packages" not in verbose.stderr


#: options of other programs the messages name (MintPy's geocode.py, GDAL's gdal_calc.py)
OTHER_PROGRAMS = {"--lalo-step", "--calc", "--type"}


def test_every_option_a_message_names_exists():
    """Advice names only options the tool has: every ``--flag`` in the package's messages
    outside the CLI is an option of a command (or of the other program the advice names).
    The warming step, which has no command, used to name ``--baseline``."""
    import re

    import typer.main

    cli = typer.main.get_command(app)
    flags = {o for cmd in cli.commands.values() for p in cmd.params
             for o in (*p.opts, *p.secondary_opts)}
    bad = []
    for f in sorted((ROOT / "permafrost").rglob("*.py")):
        if "cli" in f.relative_to(ROOT / "permafrost").parts:
            continue
        text = f.read_text()
        for m in re.finditer(r'(?<![\w-])(--[a-z][a-z0-9-]+)', text):
            if m.group(1) not in flags | OTHER_PROGRAMS:
                bad.append(f"{f.relative_to(ROOT)}:{text[:m.start()].count(chr(10)) + 1} "
                           f"{m.group(1)}")
    assert not bad, bad


def test_a_rerun_replaces_its_own_styled_geopackage_but_not_other_styles(tmp_path):
    from permafrost.errors import OutputError
    from permafrost.io.guard import Output, check_outputs
    from permafrost.io.vectors import write_vector

    p = write_vector(_points(), tmp_path / "labels.gpkg", layer="labels", style="labels")
    check_outputs([Output(p, "--out", layer="labels")])  # only its own style: replaceable
    with sqlite3.connect(p) as con:  # a user's style of another layer in the same table
        con.execute("INSERT INTO layer_styles (f_table_name, styleName, styleQML) "
                    "VALUES ('roads', 'mine', '<qgis/>')")
    with pytest.raises(OutputError, match="layer_styles"):
        check_outputs([Output(p, "--out", layer="labels")])
