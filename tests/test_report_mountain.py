"""The report's mountain-permafrost figures: the fold spread of the lower limit of
permafrost by aspect (an analytic cone), the map of the hold-out and CV blocks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from factories import write_tif
from shapely.geometry import box
from test_profile import CRS, SCALE, Z50, _cone, _pzi_by_sector
from test_report import _bundle, _capture_figures

from permafrost.report import render_report, report_json
from permafrost.workflows.report import _profile_spread

SIGMA = 0.2  # the fold models' spread [-], constant


def test_fold_spread_of_the_lower_limit_on_a_cone(tmp_path):
    """PZI = logistic((z - z50(aspect)) / SCALE), σ constant: PZI ± σ crosses 0.5 where the
    logistic is 0.5 ∓ σ, i.e. at z50 + SCALE ln((0.5 ∓ σ) / (0.5 ± σ)), exactly."""
    tr, z, downslope = _cone()
    pzi = _pzi_by_sector(z, downslope)
    p = write_tif(tmp_path / "pzi.tif", pzi.astype("float32"), tr, CRS)
    u = write_tif(tmp_path / "sd.tif", np.full(pzi.shape, SIGMA, "float32"), tr, CRS)
    d = write_tif(tmp_path / "dem.tif", z.astype("float32"), tr, CRS)
    sp = _profile_spread(p, u, d, None, 100.0)
    shift = SCALE * math.log((0.5 + SIGMA) / (0.5 - SIGMA))  # 50.8 m
    for cls, z50 in Z50.items():
        hi = sp["high"]["lower_limits"][cls]["elevation_m"]  # PZI + σ: lower limit lower
        lo = sp["low"]["lower_limits"][cls]["elevation_m"]
        assert hi == pytest.approx(z50 - shift, abs=25.0), cls
        assert lo == pytest.approx(z50 + shift, abs=25.0), cls
        assert hi < z50 < lo
    assert "fold models" in sp["rule"]


def test_cv_map_and_profile_spread_in_the_report(monkeypatch):
    b = _bundle()
    ext = b["maps"]["pzi"]["extent"]
    b["maps"]["cv"] = {
        "block_m": 5000.0, "source": "holdout_blocks.gpkg",
        "held_out": [box(ext[0], ext[2], ext[0] + 0.1, ext[2] + 0.1)],
        "cv_blocks": [box(ext[0] + 0.1 * i, ext[2], ext[0] + 0.1 * (i + 1), ext[2] + 0.1)
                      for i in range(1, 4)],
        "train": {"x": [ext[0] + 0.15, ext[0] + 0.25], "y": [ext[2] + 0.05] * 2,
                  "source": ["borehole", "rock_glacier"]},
        "held_out_boreholes": {"x": [ext[0] + 0.05], "y": [ext[2] + 0.05], "presence": [1]}}
    figs = _capture_figures(monkeypatch)
    render_report(b)
    fig = figs["CV and hold-out map"]
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "held-out block (validation only)" in texts and "held-out borehole (1)" in texts
    assert "CV block (5.00 km) holding labels" in texts
    js = report_json(b)["maps"]["cv"]
    assert js == {"source": "holdout_blocks.gpkg", "cv_block_m": 5000.0, "cv_blocks": 3,
                  "held_out_blocks": 1, "held_out_boreholes": 1, "training_labels": 2}


def test_response_curves_with_units_per_model(monkeypatch):
    b = _bundle()
    b["response"] = {"points": 50, "units": {"maat": "degC", "ndvi": "1"},
                     "models": {"baseline": {"maat": {"x": [-6, -3, 0], "pzi": [0.9, 0.6, 0.2]},
                                             "ndvi": {"x": [0.1, 0.5], "pzi": [0.7, None]}},
                                "reference": {"maat": {"x": [-6, 0], "pzi": [0.8, 0.3]}}}}
    figs = _capture_figures(monkeypatch)
    render_report(b)
    fig = figs["response curves"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["maat [degC]", "ndvi [-]"]
    base, ref = fig.axes[0].get_lines()
    assert base.get_linestyle() == "-" and ref.get_linestyle() == "--"
    assert base.get_color() != ref.get_color()
    assert list(fig.axes[1].get_lines()[0].get_ydata()) == [0.7]  # no value: left out
    assert report_json(b)["response"]["units"]["maat"] == "degC"


def test_ground_thermal_results_of_an_analytic_record(tmp_path, monkeypatch):
    """A GTN-P record of the half-space solution (Tm = -1 °C, A0 = 10 °C, d = 2 m): MAGT
    -1 °C at 15 m (zero annual amplitude), active layer 2 ln 10 ≈ 4.6 m, in the bundle, the
    JSON and the report."""
    from test_boreholes import _write_gtnp, synthetic_record

    from permafrost.workflows.report import _ground_thermal

    csv, mj = _write_gtnp(tmp_path, synthetic_record())
    gt = _ground_thermal([(csv, mj)])
    (r,) = gt["boreholes"]
    assert r["borehole"] == "SYN_01" and r["status"] == "permafrost"
    assert r["magt_c"] == pytest.approx(-1.0, abs=0.02) and r["magt_depth_m"] == 15.0
    assert abs(r["alt_m"] - 2 * math.log(10)) < 0.15
    assert r["elevation_m"] == 4500.0
    b = _bundle()
    b["ground_thermal"] = gt
    figs = _capture_figures(monkeypatch)
    html = render_report(b)
    assert "<h2>Ground temperatures</h2>" in html and "SYN_01" in html and "-1.00" in html
    fig = figs["ground thermal"]
    assert [ax.get_xlabel() for ax in fig.axes] == ["MAGT [°C]", "active-layer thickness [m]"]
    assert report_json(b)["ground_thermal"]["boreholes"][0]["magt_c"] == r["magt_c"]
