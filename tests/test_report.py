"""Tests of permafrost.report: self-contained HTML, JSON numbers, CLI, a real headless browser."""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from PIL import Image
from shapely.geometry import Point, box
from typer.testing import CliRunner

from permafrost.report import render_report, report_json
from permafrost.workflows.report import report_from_files

from factories import write_tif

CHROMIUM = Path("/usr/bin/chromium")


# ----------------------------------------------------------------------------- factories
def _bundle(n: int = 40) -> dict:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:n, 0:n]
    pzi = 1 / (1 + np.exp(-(xx + yy - n) / 6))
    pzi[0, 0] = np.nan
    dem = 3000 + 20 * yy + 50 * np.sin(xx / 4)
    ext = [99.0, 99.0 + n * 0.01, 38.0, 38.0 + n * 0.01]
    roc = {"fpr": [0, 0.2, 1], "tpr": [0, 0.8, 1], "thresholds": [None, 0.5, 0.1]}
    rel = {"bin_edges": list(np.linspace(0, 1, 11)), "count": [1] * 10,
           "mean_predicted": [0.05 + 0.1 * i for i in range(10)],
           "observed_frequency": [0.1 * i for i in range(10)]}
    unit = {"unit": "all", "name": "all", "denominator_km2": 1234.5678, "masked_km2": 10.0,
            "pzi_ge_0.5_km2": 777.25, "fraction_pzi_ge_0.5": 0.6296, "pzi_weighted_km2": 701.5,
            "region_km2": 1200.0, "continuous_km2": 500.0, "discontinuous_km2": 277.25,
            "sporadic_km2": 300.0, "isolated_km2": 122.75}
    stats = {"units": [unit, {**unit, "unit": "region", "name": "<b>Heihe</b>"}],
             "meta": {"denominator": "valid (not nodata) and unmasked area of each unit",
                      "mask": {"source": "masks.gpkg", "masked_km2": 10.0},
                      "cell_area_method": "exact"}}
    ag = {"common_km2": 1000.0, "kappa": 0.6123, "overall_agreement": 0.81,
          "model_permafrost_km2": 700.0, "prior_permafrost_km2": 650.0, "missed_km2": 88.5,
          "excess_km2": 138.5, "intersection_over_reference": 0.86,
          "intersection_over_model": 0.80}
    val = {"boreholes": {"n_common": 99, "n_read": 100, "n_unknown_presence": 1,
                         "common_rule": "inside and valid in every map",
                         "excluded": {"model": {"outside": ["B1"], "nodata": []}},
                         "table": [{"map": "model", "kind": "pzi", "n": 99, "tp": 60, "fp": 9,
                                    "fn": 10, "tn": 20, "accuracy": 0.808, "kappa": 0.5432,
                                    "balanced_accuracy": 0.77, "auc": 0.8765, "brier": 0.141}],
                         "curves": {"model": {"roc": roc, "reliability": rel}}},
           "priors": [{"name": "survey", "kind": "categorical", "agreement": ag,
                       "permafrost_codes": [1], "other_codes": [2],
                       "agreement_matrix": {"rows": ["none", "isolated", "sporadic",
                                                     "discontinuous", "continuous"],
                                            "columns": ["1", "2"], "row_label": "model zone",
                                            "column_label": "prior class code",
                                            "km2": [[1, 2]] * 5},
                       "zones": {"model": {"continuous": 1.0}, "prior": None}}],
           "pairwise": {"maps": ["model", "survey"], "kappa": [[1.0, 0.6123], [0.6123, 1.0]],
                        "rule": "pairwise"}}
    model = {"cv": {"spatial": {"summary": {"auc": {"mean": 0.8421, "std": 0.05, "min": 0.7,
                                                    "max": 0.9}}},
                    "oof_calibrated": {"n": 492, "n_pos": 273, "n_neg": 219, "auc": 0.831,
                                       "balanced_accuracy": 0.732, "threshold": 0.5,
                                       "tp": 538.0, "fp": 125.0, "fn": 87.0, "tn": 190.0},
                    "block_size_m": 2000.0, "folds": 5, "block_size_rule": "range"},
             "calibration": {"reliability": rel},
             "importance": {"mean_abs_shap": {"dem": 0.5, "maat": 0.9, "pisr": 0.1}}}
    agr = rng.integers(0, 4, (n, n)).astype(float)
    return {"title": "Test report", "provenance": {"run": "abc123", "inputs": {"pzi": "p.tif"}},
            "maps": {"pzi": {"array": pzi, "extent": ext, "crs": "EPSG:4326", "source": "p.tif"},
                     "dem": {"array": dem, "extent": ext, "crs": "EPSG:4326"},
                     "uncertainty": {"array": 0.2 * pzi * (1 - pzi), "extent": ext,
                                     "crs": "EPSG:4326", "source": "u.tif"},
                     "mask": {"geometries": [box(99.05, 38.05, 99.1, 38.1)],
                              "name": "glaciers lakes", "source": "masks.gpkg"},
                     "agreement": {"survey": {"array": agr, "extent": ext, "crs": "EPSG:4326",
                                              "source": "a.tif"}}},
            "labels": {"x": [99.1, 99.2], "y": [38.1, 38.2], "label": [1, 0],
                       "source": ["borehole", "rock_glacier"]},
            "stats": stats, "validation": val, "model": model,
            "scenarios": {"baseline": stats, "maat_plus_2": {"units": [
                {**unit, "pzi_ge_0.5_km2": 512.75}]}}}


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r"src='data:image/(?:png|webp);base64,([^']+)'",
                                                        html)]


# ----------------------------------------------------------------------------- rendering
def test_render_self_contained_with_numbers():
    b = _bundle()
    html = render_report(b)
    imgs = _images(html)
    # zone map, continuous PZI + uncertainty, ROC + reliability, importance, agreement map
    assert len(imgs) == 5
    assert html.count("<img") == 5
    for data in imgs:
        im = Image.open(io.BytesIO(data))
        im.verify()
        assert im.format in ("PNG", "WEBP") and im.size[0] > 100
    # nothing external, no script
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)=['\"](?!data:|#)", html)  # in-page links only
    assert "http://" not in html and "https://" not in html
    for text in ("777.25", "0.630", "0.612", "88.50", "138.50", "0.876", "0.842", "512.75",
                 "abc123", "maat_plus_2", "masks.gpkg", "1,234.57"):
        assert text in html, text
    # names are escaped
    assert "<b>Heihe</b>" not in html and "&lt;b&gt;Heihe&lt;/b&gt;" in html
    for section in ("Provenance", "Maps", "Labels", "Cross-validation", "ROC and reliability",
                    "Feature importance", "Area statistics", "Validation", "Agreement maps",
                    "Scenarios"):
        assert f"<h2>{section}</h2>" in html
        # ...each listed in the table of contents, linking to its section
        slug = "sec-" + "".join(c if c.isalnum() else "-" for c in section.lower())
        assert f"<a href='#{slug}'>{section}</a>" in html and f"<section id='{slug}'>" in html
    assert "Sections without input: Kinematics, Elevation profile." in html


def test_tables_have_human_labels_units_and_explained_weights():
    import html as htmllib

    html = htmllib.unescape(render_report(_bundle()))
    for raw in ("balanced_accuracy", "n_pos", "pzi_ge_0.5_km2", "elevation_band",
                "prior class code"):
        assert raw not in html, raw
    for text in ("Balanced accuracy", "Brier score", "Cohen's κ", "Denominator [km²]",
                 "Fraction PZI ≥ 0.5 [-]", "permafrost (code 1)", "no permafrost (code 2)",
                 "True positives (weighted)", "Permafrost points"):
        assert text in html, text
    # the weighted confusion counts are explained: they sum to the weight, not to n
    assert "sums of the label weights" in html and "940.0" in html and "492" in html
    # one precision per column: km² with 2 decimals, fractions with 3
    assert "1,234.57" in html and "1,200.00" in html and "0.630" in html


def _capture_figures(monkeypatch):
    import permafrost.report as rep

    figs = {}

    def grab(fig, caption, alt):
        figs[alt] = fig
        return "<figure></figure>"

    monkeypatch.setattr(rep, "_figure", grab)
    return figs


def test_every_map_has_axes_crs_scale_bar_and_legend(monkeypatch):
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    figs = _capture_figures(monkeypatch)
    render_report(_bundle())
    maps = {k: f for k, f in figs.items() if "map" in k}
    assert set(maps) == {"PZI zone map", "continuous PZI and uncertainty maps",
                         "agreement map survey"}
    for name, fig in figs.items():
        assert fig.get_size_inches()[0] == pytest.approx(11.0), name  # the page width
    for name, fig in maps.items():
        axes = [ax for ax in fig.axes if ax.get_xlabel().startswith("Longitude")]
        assert axes, name
        for ax in axes:
            assert ax.get_xlabel() == "Longitude [°E] — EPSG:4326 (WGS 84)"
            assert ax.get_ylabel() == "Latitude [°N]"
            assert sum(isinstance(a, AnchoredSizeBar) for a in ax.artists) == 1, name
        legend = [ax.get_legend() for ax in axes if ax.get_legend()] + list(fig.legends)
        texts = [t.get_text() for lg in legend for t in lg.get_texts()]
        assert "masked (glaciers lakes)" in texts and "nodata" in texts, (name, texts)
    zone_texts = [t.get_text() for t in figs["PZI zone map"].axes[0].get_legend().get_texts()]
    assert "none (PZI < 0.01): hillshade" in zone_texts
    assert "continuous (≥ 0.9)" in zone_texts and "label: permafrost" in zone_texts
    # two colour bars (PZI, uncertainty) with units
    cbars = [ax.get_xlabel() for ax in figs["continuous PZI and uncertainty maps"].axes
             if not ax.get_xlabel().startswith("Longitude")]
    assert cbars == ["PZI: permafrost probability [-]",
                     "PZI spread: standard deviation of the fold models [-]"]


def test_hillshade_uses_the_pixel_spacing_in_metres():
    from pyproj import Geod

    import permafrost.report as rep

    n = 50
    yy, xx = np.mgrid[0:n, 0:n]
    dem = 3000 + 8.0 * xx + 3.0 * yy + 20 * np.sin(xx / 5)  # ~100 m pixels: gentle slopes
    geo = {"array": dem, "extent": [99.0, 99.0 + n * 0.001, 38.0, 38.0 + n * 0.001],
           "crs": "EPSG:4326"}
    mx, my = rep._metres_per_unit(geo)
    lat = 38.0 + n * 0.0005
    g = Geod(ellps="WGS84")
    assert mx == pytest.approx(g.inv(99.0, lat, 99.001, lat)[2] * 1000, rel=1e-4)
    assert my == pytest.approx(g.inv(99.0, lat - 0.0005, 99.0, lat + 0.0005)[2] * 1000,
                               rel=1e-4)
    hs = rep._hillshade_array(geo)
    # not the saturated shade of spacings in degrees taken as metres (every slope near
    # vertical: the shade is the aspect alone, near black or white)
    from matplotlib.colors import LightSource

    naive = LightSource(azdeg=315, altdeg=45).hillshade(dem, vert_exag=1.0)
    assert np.mean(np.abs(hs - naive)) > 0.05
    # the same surface on a metric grid with the same pixel size in metres shades the same
    proj = {"array": dem, "extent": [0, n * 0.001 * mx, 0, n * 0.001 * my],
            "crs": "EPSG:32647"}
    np.testing.assert_allclose(hs, rep._hillshade_array(proj), atol=1e-9)
    assert rep._nice_length(8760) == 5000 and rep._nice_length(1999) == 1000


def test_validation_reads_as_statistics():
    """Degenerate intervals print as [–] with their reason; the paired comparison with each
    prior is a table; a prior that beats the model gets its sentence."""
    import html as htmllib

    b = _bundle()
    bh = b["validation"]["boreholes"]
    bh["table"][0]["ci"] = {
        "auc": {"low": 0.81, "high": 0.93},
        "kappa": {"low": 0.778, "high": 0.778,
                  "degenerate": "every resample gives the same value: the map puts every "
                                "resampled borehole on the same side"}}
    bh["paired"] = [{"prior": "survey", "level": 0.95, "resamples": 2000, "unit": "site",
                     "differences": {"auc": {"estimate": -0.061, "low": -0.12, "high": -0.004,
                                             "share_a_better": 0.02},
                                     "kappa": {"estimate": -0.21, "low": None, "high": None,
                                               "share_a_better": None}}}]
    bh["findings"] = ["On the same 99 boreholes the prior map 'survey' has a higher AUC than "
                      "the model (0.938 against 0.877; ...)."]
    page = htmllib.unescape(render_report(b))
    assert re.search(r"0\.543 <span title='[^']*same side'>\[–\]</span>", page)
    assert "0.778, 0.778" not in page
    assert "[–] (model: Cohen's κ): every resample gives the same value" in page
    assert "0.876 [0.810, 0.930]" in page
    assert "Model − prior" in page and "[-0.120, -0.004]" in page and "-0.061" in page
    assert "prior map 'survey' has a higher AUC than the model" in page


def test_labels_are_fully_accounted():
    """The Labels section lists every candidate kept, held out or dropped by source, the
    reasons, what InSAR changed and the labels' covariates against the map's."""
    import html as htmllib

    b = _bundle()
    b["labels_accounting"] = {
        "candidates": 10, "kept": 6, "held_out": 2, "dropped": 2, "training_weight": 8.0,
        "rule": "kept when one of its points trains", "weights": {"borehole_weight": 2.0},
        "by_kind": {"borehole (table)": {"candidates": 5, "kept": 2, "held out": 2,
                                         "dropped": 1, "kept_label_1": 1, "kept_label_0": 1,
                                         "weight": 4.0, "weight_per_kept": 2.0},
                    "rock glacier (intact)": {"candidates": 5, "kept": 4, "held out": 0,
                                              "dropped": 1, "kept_label_1": 4,
                                              "kept_label_0": 0, "weight": 4.0,
                                              "weight_per_kept": 1.0}},
        "dropped_reasons": [{"kind": "rock glacier (intact)", "stage": "holdout",
                             "reason": "inside a held-out block", "n": 1}],
        "insar": {"rows": ["relict"], "columns": ["active", "relict"], "counts": [[1, 3]],
                  "outlines": 4, "label_changes": {"0 -> 1": 1}, "rule": "upgrades only"},
        "covariates": {"quantiles": [0.05, 0.5, 0.95], "n_map_cells": 100, "rule": "cells",
                       "covariates": {"maat": {"kind": "continuous", "units": "degC",
                                               "map": {"n": 100, "q05": -9.0, "q50": -5.0,
                                                       "q95": -1.0},
                                               "labels": {"n": 6, "q05": -7.5, "q50": -4.0,
                                                          "q95": -2.0}}}}}
    page = htmllib.unescape(render_report(b))
    text = re.sub(r"<[^>]+>", " ", page)
    assert re.search(r"borehole \(table\)\s+5\s+2\s+2\s+1\s+1\s+1\s+2\.00\s+4\.0", text)
    assert re.search(r"Total\s+10\s+6\s+2\s+2", text)
    assert "inside a held-out block" in text and "0 -> 1: 1" in text
    assert re.search(r"maat \[degC\]\s+labels\s+6\s+-7\.50\s+-4\.00\s+-2\.00", text)


def test_render_is_deterministic_and_partial():
    b = _bundle()
    assert render_report(b) == render_report(b)
    html = render_report({"stats": b["stats"]})
    assert "<h2>Area statistics</h2>" in html and "<img" not in html
    assert "Sections without input: Maps, Kinematics, Labels" in html


def test_report_json_has_the_numbers_not_the_arrays():
    b = _bundle()
    js = report_json(b)
    text = json.dumps(js)
    assert "array" not in text
    assert js["stats"]["units"][0]["pzi_ge_0.5_km2"] == 777.25
    assert js["labels"] == {"n": 2, "n_permafrost": 1, "n_no_permafrost": 1}
    assert js["maps"]["pzi"] == "p.tif" and js["maps"]["agreement"] == {"survey": "a.tif"}


def test_a_bundle_that_is_not_a_mapping_is_the_packages_error(tmp_path):
    from permafrost.errors import InputError

    for f in (render_report, report_json):
        with pytest.raises(InputError, match="field 'bundle'.*got PosixPath.*report_from_files"):
            f(tmp_path / "stats.json")


# ----------------------------------------------------------------------------- from files
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small run: PZI, DEM, labels, a prior, then `stats` and `validate` outputs."""
    from permafrost.io.results import write_json
    from permafrost.validation import parse_prior_spec
    from permafrost.workflows.stats import stats_from_files
    from permafrost.workflows.validate import validate_from_files

    d = tmp_path_factory.mktemp("run")
    n = 60
    t = Affine(0.002, 0, 99.0, 0, -0.002, 38.6)
    yy, xx = np.mgrid[0:n, 0:n]
    pzi = (1 / (1 + np.exp(-(xx - yy) / 8))).astype("float32")
    write_tif(d / "pzi.tif", pzi, t, nodata=-9999.0)
    write_tif(d / "dem.tif", (3000 + 30 * (n - yy) + 40 * np.sin(xx / 5)).astype("float32"),
              t, nodata=-9999.0)
    write_tif(d / "prior.tif", np.where(pzi >= 0.4, 1, 2).astype("uint8"), t, nodata=255)
    rng = np.random.default_rng(2)
    r, c = rng.integers(0, n, 80), rng.integers(0, n, 80)
    pd.DataFrame({"borehole_id": [f"B{i}" for i in range(80)],
                  "lon": 99.0 + 0.002 * (c + 0.5), "lat": 38.6 - 0.002 * (r + 0.5),
                  "presence": (rng.uniform(size=80) < pzi[r, c]).astype(int)}).to_csv(
        d / "bh.csv", index=False)
    gpd.GeoDataFrame({"label": [1, 0, 1], "source": ["borehole", "rock_glacier", "borehole"]},
                     geometry=[Point(99.05, 38.55), Point(99.02, 38.52),
                               box(99.08, 38.56, 99.09, 38.57)],
                     crs="EPSG:4326").to_file(d / "labels.gpkg")
    write_json(stats_from_files(d / "pzi.tif", dem_path=d / "dem.tif", band_width=300).as_dict(),
               d / "stats.json")
    validate_from_files(d / "pzi.tif", boreholes_path=d / "bh.csv",
                        priors=[parse_prior_spec(f"survey={d / 'prior.tif'}:categorical:1:2")],
                        out_dir=d / "val")
    write_json({"run_id": "r-42", "config": "pipelines/demo.toml"}, d / "manifest.json")
    return d


def test_report_from_files(run_dir, tmp_path):
    js = report_from_files(out_html=tmp_path / "r.html", out_json=tmp_path / "r.json",
                           pzi=run_dir / "pzi.tif", dem=run_dir / "dem.tif",
                           stats=run_dir / "stats.json", validation=run_dir / "val",
                           labels=run_dir / "labels.gpkg", provenance=run_dir / "manifest.json",
                           scenarios={"baseline": run_dir / "stats.json"})
    html = (tmp_path / "r.html").read_text()
    assert len(_images(html)) == 4  # zone map, continuous map, ROC + reliability, agreement
    head = js["stats"]["units"][0]
    assert f"{head['pzi_ge_0.5_km2']:,.2f}" in html
    k = js["validation"]["priors"][0]["agreement"]["kappa"]
    assert f"{k:.3f}" in html and "r-42" in html
    assert json.loads((tmp_path / "r.json").read_text())["labels"]["n"] == 3
    # the held-out borehole metrics are shown with their bootstrap intervals
    model = next(r for r in js["validation"]["boreholes"]["table"] if r["map"] == "model")
    ci = model["ci"]["auc"]
    assert f"{model['auc']:.3f} [{ci['low']:.3f}, {ci['high']:.3f}]" in html
    assert "95% percentile bootstrap intervals (2,000 resamples" in html


def test_cli_report(run_dir, tmp_path):
    from permafrost.cli import app

    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "rep.html"), "--pzi",
                                   str(run_dir / "pzi.tif"), "--stats",
                                   str(run_dir / "stats.json"), "--validation",
                                   str(run_dir / "val" / "validation.json"),
                                   "--scenario", f"base={run_dir / 'stats.json'}"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "rep.html").exists() and (tmp_path / "rep.json").exists()
    bad = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "x.html"), "--stats",
                                   str(tmp_path / "nope.json")])
    assert bad.exit_code == 2 and "nope.json: file not found" in bad.output
    bad = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "x.html"), "--scenario",
                                   "oops"])
    assert bad.exit_code == 2 and "NAME=STATS_JSON" in bad.output


def _kinematics_gpkg(path: Path, *, insar_columns: bool) -> Path:
    """Outlines as `permafrost kinematics` writes them (kin_* columns), inside run_dir's map."""
    geoms = [box(99.01 + 0.01 * i, 38.49, 99.015 + 0.01 * i, 38.495) for i in range(6)]
    df = gpd.GeoDataFrame({
        "rg_id": [f"RG{i}" for i in range(6)],
        "activity": ["active", "active", "relict", "transitional", "relict", "active"],
        "kin_track": ["asc", "asc+desc", "desc", "desc", "", "asc"],
        "kin_n_pixels": [10, 12, 9, 8, 0, 7], "kin_n_valid": [9, 12, 8, 2, 0, 7],
        "kin_masked_low_sensitivity": [1, 0, 1, 6, 0, 0],
        "kin_masked_low_coherence": [0, 0, 0, 0, 0, 0],
        "kin_v_downslope_median_m_yr": [0.35, 0.12, 0.004, np.nan, np.nan, 0.02],
        "kin_rgik_class": ["30-100 cm/yr", "10-30 cm/yr", "<1 cm/yr", "undefined",
                           "undefined", "1-3 cm/yr"],
        "kin_activity": ["active", "active", "relict", "uncertain", "uncertain",
                         "transitional"],
        "kin_reason": ["", "", "", "too few valid pixels: 2 of 8 (masked: low sensitivity 6)",
                       "not covered by any track", ""]}, geometry=geoms, crs="EPSG:4326")
    if insar_columns:
        df["insar_change"] = ["", "", "", "", "", "active -> transitional"]
        df["insar_reason"] = ["", "", "", "", "", "moves 2 cm/yr"]
    df.to_file(path)
    (path.parent / "kinematics_tracks.json").write_text(json.dumps({"tracks": {
        "asc": {"pixels": 1000, "valid": 600, "nodata": 100, "low_sensitivity": 250,
                "flat": 20, "shadow_layover": 5, "water": 0, "low_coherence": 40}},
        "summaries": {"asc": {
            "dates": {"start": "2017-01-05", "end": "2021-12-28"}, "orbit": "ascending",
            "heading": -12.08, "reference": {"lat": 38.509722, "lon": 99.0175, "y": 252,
                                             "x": 301},
            "velocity": {"p01": -0.0314, "median": -0.0029, "p99": 0.0076,
                         "valid_pixels": 270597}}}}))
    return path


@pytest.mark.parametrize("insar_columns", [True, False])
def test_kinematics_section(run_dir, tmp_path, insar_columns):
    import html as htmllib

    k = _kinematics_gpkg(tmp_path / "kinematics.gpkg", insar_columns=insar_columns)
    js = report_from_files(out_html=tmp_path / "r.html", pzi=run_dir / "pzi.tif",
                           dem=run_dir / "dem.tif", kinematics=k)
    html = htmllib.unescape((tmp_path / "r.html").read_text())
    assert "<h2>Kinematics</h2>" in html
    assert len(_images(html)) == 3  # zone map, continuous map, kinematics map
    kin = js["kinematics"]
    assert kin["n_outlines"] == 6 and "geometries" not in json.dumps(js)
    ca = kin["class_activity"]
    assert sum(map(sum, ca["counts"])) == 6
    assert ca["counts"][ca["rows"].index("30-100 cm/yr")][ca["columns"].index("active")] == 1
    iv = kin["inventory_vs_insar"]  # what InSAR changed, against the inventory's activity
    assert iv["rows"] == ["active", "transitional", "relict"]
    assert iv["counts"][0][iv["columns"].index("transitional")] == 1
    assert "What InSAR changed" in html and "Inventory (activity) \\ InSAR activity" in html
    assert kin["uncertain_reasons"] == [["not covered by any track", 1],
                                        ["too few valid pixels", 1]]
    assert [r["track"] for r in kin["tracks"]] == ["asc", "asc+desc", "desc", ""]
    assert kin["tracks"][2]["low_sensitivity"] == 7 and "none (not covered)" in html
    assert kin["track_pixels"]["asc"]["low_sensitivity"] == 250 and "250 (25.0 %)" in html
    # each track's period, reference point and LOS velocity range (track_summaries)
    assert kin["track_info"]["asc"]["dates"]["start"] == "2017-01-05"
    row = re.sub(r"<[^>]+>", " ", html[html.index("2017-01-05"):][:600])
    assert re.search(r"2017-01-05 – 2021-12-28\s+38\.50972° N, 99\.01750° E\s+-0\.031\s+"
                     r"-0\.003\s+0\.008\s+270,597", row), row
    if insar_columns:
        assert kin["insar_change"]["rows"][1] == ["active -> transitional", "moves 2 cm/yr", 1]
        assert "active -> transitional" in html and "moves 2 cm/yr" in html
    else:
        assert "insar_change" not in kin and "<th class='l'>InSAR change</th>" not in html


def test_cli_report_without_inputs_refuses(tmp_path):
    from permafrost.cli import app

    res = CliRunner().invoke(app, ["report", "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 2
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "nothing to report" in lines[0]
    assert not (tmp_path / "r.html").exists()


# ----------------------------------------------------------------------------- browser
_CHECK = ("<script>window.addEventListener('load',()=>{const b=[...document.images].filter("
          "i=>!(i.complete&&i.naturalWidth>0)).length;document.body.insertAdjacentHTML("
          "'beforeend','<p id=\"pf-check\">broken='+b+' total='+document.images.length+"
          "'</p>')})</script>")


def _browse(page: Path, tmp: Path) -> tuple[str, str]:
    """Open a page in headless chromium; return (DOM after load, browser log)."""
    html = page.read_text()
    probe = page.with_name(page.stem + "_probe.html")
    probe.write_text(html.replace("</body>", _CHECK + "</body>"))
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp / 'profile'}", "--enable-logging=stderr",
           "--v=0", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return res.stdout, res.stderr


def _check(dom: str) -> tuple[int, int]:
    m = re.search(r'id="pf-check">broken=(\d+) total=(\d+)<', dom)
    assert m, "the page did not finish loading in chromium"
    return int(m.group(1)), int(m.group(2))


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
def test_report_in_headless_chromium(run_dir, tmp_path):
    # negative control: the probe does catch broken images and console errors
    neg = tmp_path / "neg.html"
    neg.write_text("<!DOCTYPE html><html><body><img src='data:image/png;base64,AAAA'>"
                   "<img src='missing.png'><script>console.error('boom')</script></body></html>")
    dom, log = _browse(neg, tmp_path)
    assert _check(dom) == (2, 2)
    assert "CONSOLE" in log and "boom" in log
    # the report
    js = report_from_files(out_html=tmp_path / "r.html", pzi=run_dir / "pzi.tif",
                           dem=run_dir / "dem.tif", stats=run_dir / "stats.json",
                           validation=run_dir / "val", labels=run_dir / "labels.gpkg",
                           provenance=run_dir / "manifest.json")
    dom, log = _browse(tmp_path / "r.html", tmp_path)
    broken, total = _check(dom)
    assert total == 4 and broken == 0
    console = [ln for ln in log.splitlines() if "CONSOLE" in ln]
    assert console == []
    head = js["stats"]["units"][0]
    assert f"{head['pzi_ge_0.5_km2']:,.2f}" in dom
    assert f"{js['validation']['priors'][0]['agreement']['kappa']:.3f}" in dom
    assert "<h2>Validation</h2>" in dom

