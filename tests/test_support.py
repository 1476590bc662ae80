"""Representativeness (issue 22, item 5): label counts per surface class and covariate
decile against the map's shares, the unsupported share, the label support map and the
debris-only warning without land cover (permafrost.applicability.label_support)."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from factories import NX, NY, RES, X0, Y0, cell_point, da_on_grid, write_raster
from rasterio.transform import from_origin
from typer.testing import CliRunner

from permafrost.applicability import (
    SUPPORT_MIN_LABELS,
    label_support,
    parse_class_table,
    stratum_supported,
    support_map,
    support_warnings,
)

T = from_origin(X0, Y0, RES, RES)


def _ds(**arrays) -> xr.Dataset:
    return xr.Dataset({k: da_on_grid(v, T) for k, v in arrays.items()}).rio.write_crs(
        "EPSG:4326")


def test_parse_class_table_reads_the_ttop_tag():
    tag = ("1=bedrock;2=coarse debris (blocky);3=fine debris / soil;4=alpine meadow "
           "(vegetated);5=water;6=glacier;255=nodata")
    t = parse_class_table(tag)
    assert t[2] == "coarse debris (blocky)" and t[4] == "alpine meadow (vegetated)"
    assert parse_class_table(None) == {}


def test_stratum_rule_counts_and_ratio():
    assert not stratum_supported(SUPPORT_MIN_LABELS - 1, 1000, 0.0)
    assert stratum_supported(SUPPORT_MIN_LABELS, 100, 0.5)  # 0.1 >= 0.2 * 0.5
    assert not stratum_supported(SUPPORT_MIN_LABELS, 100, 0.6)  # 0.1 < 0.2 * 0.6


def test_half_a_half_b_labels_all_in_a():
    """West half class A (1), east half class B (2), labels only in A: the surface part of
    the map without support is exactly half (equal columns have equal areas), counts per
    class and source are right, and the warning fires and names class B."""
    _yy, xx = np.mgrid[0:NY, 0:NX]
    cls = np.where(xx < NX // 2, 1.0, 2.0)
    flat = np.full((NY, NX), 5.0)  # one covariate, constant: one bin, every label in it
    ds = _ds(flat=flat)
    pzi = da_on_grid(np.full((NY, NX), 0.5), T)
    lc = da_on_grid(cls, T)
    n_rg, n_bh = 150, 50
    lab_cls = np.ones(n_rg + n_bh)
    src = ["rock_glacier"] * n_rg + ["borehole"] * n_bh
    vals = np.full((n_rg + n_bh, 1), 5.0)
    sup = label_support(ds, ["flat"], pzi, vals, src, landcover=lc, label_classes=lab_cls,
                        class_names={1: "A", 2: "B"}, block_rows=7)
    classes = {c["name"]: c for c in sup["surface"]["classes"]}
    assert classes["A"]["labels"] == 200 and classes["B"]["labels"] == 0
    assert classes["A"]["by_source"] == {"borehole": 50, "rock_glacier": 150}
    assert classes["B"]["by_source"] == {"borehole": 0, "rock_glacier": 0}
    assert classes["A"]["map_share"] == pytest.approx(0.5, abs=1e-12)
    assert classes["A"]["supported"] is True and classes["B"]["supported"] is False
    assert sup["surface"]["unsupported_share"] == pytest.approx(0.5, abs=1e-12)
    assert sup["unsupported_share"] == pytest.approx(0.5, abs=1e-12)
    assert sup["covariate_unsupported_share"] == 0.0
    # rock glacier fronts: fewer than 10 in class B, so their evidence is extrapolated there
    assert sup["rock_glacier"]["classes_share"] == pytest.approx(0.5, abs=1e-12)
    ws = support_warnings(sup)
    assert [w["kind"] for w in ws] == ["label_support"]  # land cover given: no debris_only
    assert "50.0 %" in ws[0]["message"] and "class 'B'" in ws[0]["message"]
    # the support map: class B cells have 0 labels, class A cells 200 (class and bin)
    m = support_map(ds, ["flat"], pzi, sup, landcover=lc).values
    assert m[10, 5] == 200 and m[10, NX - 5] == 0 and m[NY - 1, NX // 2] == 0


def test_covariate_deciles_and_debris_only_without_land_cover():
    """col = column index: its area-weighted deciles are 8 columns each.  Labels (rock glacier
    fronts) only in columns 0-39: deciles 6-10 hold none, so half the map is unsupported,
    half lies outside the fronts' covariate range, and the debris-only warning says so."""
    _yy, xx = np.mgrid[0:NY, 0:NX]
    x = xx.astype(float)
    ds = _ds(col=x)
    pzi_arr = np.full((NY, NX), 0.5)
    pzi_arr[0, 0] = np.nan  # one cell without a PZI: nodata in the support map
    pzi = da_on_grid(pzi_arr, T)
    cols = np.repeat(np.arange(40), 3)  # 3 labels per column: 24 per decile
    vals = cols[:, None].astype(float)
    sup = label_support(ds, ["col"], pzi, vals, ["rock_glacier"] * len(cols), block_rows=11)
    bins = sup["covariates"]["col"]["bins"]
    assert len(bins) == 10
    assert [b["labels"] for b in bins] == [24] * 5 + [0] * 5
    assert [b["supported"] for b in bins] == [True] * 5 + [False] * 5
    assert sup["surface"] is None
    assert sup["unsupported_share"] == pytest.approx(0.5, abs=2e-3)
    assert sup["rock_glacier"]["ranges"]["col"] == [0.0, 39.0]
    assert sup["rock_glacier"]["outside_ranges_share"] == pytest.approx(0.5, abs=2e-3)
    ws = {w["kind"]: w for w in support_warnings(sup)}
    assert set(ws) == {"label_support", "debris_only"}
    msg = ws["debris_only"]["message"]
    assert "speaks for coarse debris only" in msg and "share of the map outside debris is " \
        "unknown" in msg
    assert f"{100 * sup['rock_glacier']['outside_ranges_share']:.1f} % of the mapped area" in msg
    m = support_map(ds, ["col"], pzi, sup).values
    assert m[5, 3] == 24 and m[5, 45] == 0 and m[0, 0] == -1
    # a decile in the middle: columns 16-23
    assert m[30, 16] == 24 and m[30, 23] == 24


def test_no_warning_where_labels_sample_the_map():
    """Labels spread over every class and decile in proportion to the map: nothing fires."""
    _yy, xx = np.mgrid[0:NY, 0:NX]
    ds = _ds(col=xx.astype(float))
    cls = np.where(xx < NX // 2, 1.0, 2.0)
    pzi = da_on_grid(np.full((NY, NX), 0.5), T)
    cols = np.repeat(np.arange(NX), 2)
    sup = label_support(ds, ["col"], pzi, cols[:, None].astype(float),
                        ["borehole"] * len(cols), landcover=da_on_grid(cls, T),
                        label_classes=np.where(cols < NX // 2, 1.0, 2.0))
    assert sup["unsupported_share"] == 0.0
    assert support_warnings(sup) == []


# --------------------------------------------------------------------------- files, CLI


@pytest.fixture
def world(tmp_path, make_covariates):
    """A covariate directory, a land-cover raster (west A, east B) and labels: rock glacier
    fronts and boreholes, all in the west half."""
    cov = make_covariates()
    _yy, xx = np.mgrid[0:NY, 0:NX]
    lc = write_raster(tmp_path / "landcover.tif", np.where(xx < NX // 2, 1, 2), dtype="uint8",
                      nodata=255)
    import rasterio

    with rasterio.open(lc, "r+") as f:
        f.update_tags(classes="1=coarse debris;2=meadow;255=nodata", kind="categorical")
    rng = np.random.default_rng(3)
    n = 120
    rows = rng.uniform(1, NY - 2, n)
    cols = rng.uniform(1, NX // 2 - 2, n)
    from factories import covariate_arrays

    maat = covariate_arrays()["maat"][rows.astype(int), cols.astype(int)]
    gdf = gpd.GeoDataFrame({"label": (maat < np.median(maat)).astype(int),
                            "weight": np.ones(n), "group": [f"g{i % 30}" for i in range(n)],
                            "source": ["rock_glacier"] * 90 + ["borehole"] * 30},
                           geometry=[cell_point(r, c) for r, c in zip(rows, cols)],
                           crs="EPSG:4326")
    labels = tmp_path / "labels.gpkg"
    gdf.to_file(labels, driver="GPKG")
    from permafrost.workflows.train import train_from_files

    train_from_files(labels, cov, tmp_path / "model", model="logistic", folds=3, seed=0)
    return {"cov": cov, "lc": lc, "labels": labels, "model": tmp_path / "model",
            "dir": tmp_path}


def test_predict_without_land_cover_prints_the_debris_only_warning(world):
    from permafrost.cli import app

    d = world["dir"]
    r = CliRunner().invoke(app, ["predict", "--model", str(world["model"]), "--covariates",
                                 str(world["cov"]), "--out", str(d / "pzi.tif"),
                                 "--support", str(d / "support.tif")])
    assert r.exit_code == 0, r.output
    out = " ".join(r.output.split())
    assert "Rock-glacier evidence speaks for coarse debris only" in out
    assert "90 of 120 training labels are rock glacier fronts" in out
    assert "outside the covariate ranges spanned by the rock glacier fronts" in out
    assert (d / "support.tif").exists()


def test_applicability_with_land_cover_counts_per_class(world):
    from permafrost.io.rasters import read_raster
    from permafrost.workflows.applicability import applicability_from_files
    from permafrost.workflows.predict import predict_raster

    d = world["dir"]
    predict_raster(world["model"], world["cov"], d / "pzi2.tif")
    app = applicability_from_files(world["model"], world["cov"], d / "pzi2.tif",
                                   landcover=world["lc"], out_support=d / "support2.tif")
    sup = json.loads(json.dumps(app.as_dict()))["support"]
    classes = {c["name"]: c for c in sup["surface"]["classes"]}
    assert classes["coarse debris"]["by_source"] == {"borehole": 30, "rock_glacier": 90}
    assert classes["meadow"]["labels"] == 0 and classes["meadow"]["supported"] is False
    assert sup["surface"]["unsupported_share"] == pytest.approx(0.5, abs=1e-9)
    kinds = [w["kind"] for w in app.warnings]
    assert "label_support" in kinds and "debris_only" not in kinds
    m = read_raster(d / "support2.tif").values
    assert np.all(m[:, NX // 2:] == 0)  # the meadow half: no label in its class
    assert np.all(m[:, : NX // 2] <= 120) and m[:, : NX // 2].max() > 0
