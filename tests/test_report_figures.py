"""The report's figures: full colour at 2×, one colour per map, colour-blind-safe pairs,
categorical maps as operating points, counts on reliability bins."""

from __future__ import annotations

import base64
import io
import re
import subprocess
from itertools import combinations

import numpy as np
import pytest
from PIL import Image
from test_report import CHROMIUM, _bundle, _capture_figures

from permafrost.report import render_report
from permafrost.styles import AGREEMENT_CLASSES, delta_e, series_colours, simulate_cvd


def _images(html: str):
    for m in re.finditer(r"<img alt='([^']*)' width='(\d+)' src='data:image/(\w+);base64,"
                         r"([^']*)'", html):
        yield m.group(1), int(m.group(2)), m.group(3), base64.b64decode(m.group(4))


def _with_categorical_prior(b: dict) -> dict:
    val = b["validation"]["boreholes"]
    val["table"].append({"map": "survey", "kind": "categorical", "n": 99, "tp": 50, "fp": 12,
                         "fn": 20, "tn": 17, "accuracy": 0.68, "kappa": 0.3,
                         "balanced_accuracy": 0.65, "auc": 0.65, "brier": 0.3})
    val["curves"]["survey"] = {
        "roc": {"fpr": [0, 0.414, 1], "tpr": [0, 0.714, 1], "thresholds": [None, 1, 0]},
        "reliability": {"bin_edges": [0, 0.5, 1], "count": [37, 62],
                        "mean_predicted": [0.0, 1.0], "observed_frequency": [0.54, 0.81]}}
    return b


def test_figures_are_full_colour_at_twice_their_css_width():
    html = render_report(_bundle())
    imgs = list(_images(html))
    assert len(imgs) >= 5
    for alt, width, fmt, data in imgs:
        if fmt == "png":  # colour type (byte 25 of the IHDR): 2 RGB, 6 RGBA; 3 is a palette
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[25] in (2, 6), alt
        else:  # lossless WebP ('VP8L'), never the lossy 'VP8 ' nor a palette PNG
            assert fmt == "webp" and data[12:16] == b"VP8L", alt
        img = Image.open(io.BytesIO(data)).convert("RGB")
        assert img.width == pytest.approx(2 * width, abs=1), alt  # 2× for HiDPI, shown at CSS
        assert width <= 1100, alt  # never stretched beyond the page
    # the continuous maps keep their ramp: far more than a palette's 256 colours
    cont = next(d for a, _, _, d in imgs if a == "continuous PZI and uncertainty maps")
    rgb = np.asarray(Image.open(io.BytesIO(cont)).convert("RGB")).reshape(-1, 3)
    assert len(np.unique(rgb, axis=0)) > 256
    # the page shows each image at its CSS width, not stretched to 100 %
    assert "figure img{max-width:100%;height:auto}" in html


def test_one_colour_per_map_and_categorical_operating_point(monkeypatch):
    figs = _capture_figures(monkeypatch)
    render_report(_with_categorical_prior(_bundle()))
    roc_ax, rel_ax = figs["ROC and reliability curves"].axes[:2]
    roc = {ln.get_label().split(" (")[0].split(":")[0]: ln for ln in roc_ax.get_lines()[1:]}
    rel = {ln.get_label().split(" (")[0]: ln for ln in rel_ax.get_lines()[1:]}
    want = series_colours(["model", "survey"])
    assert want["model"] != want["survey"]
    for name in ("model", "survey"):
        assert roc[name].get_color() == want[name], name
    # the model's reliability (CV and boreholes) and the survey's share the ROC's colours
    for label, ln in rel.items():
        assert ln.get_color() == want["survey" if label.startswith("survey") else "model"]
    # a categorical map is one operating point, not a line through the corners
    x, y = roc["survey"].get_data()
    assert list(x) == [pytest.approx(0.414)] and list(y) == [pytest.approx(0.714)]
    assert roc["survey"].get_linestyle() in ("None", "")
    # each reliability point carries its bin's count
    counts = [t.get_text() for t in rel_ax.texts]
    assert "37" in counts and "62" in counts and counts.count("1") >= 10


@pytest.mark.parametrize("kind", ["protanopia", "deuteranopia"])
def test_agreement_colours_stay_distinct_for_colour_blind_readers(kind):
    """Machado et al. (2009) simulation: every pair of agreement classes stays ΔE*ab ≥ 20
    apart (distinct classes, not shades); the old red/green pair failed this."""
    cols = [c for _, c in AGREEMENT_CLASSES.values()]
    for a, b in combinations(cols, 2):
        assert delta_e(simulate_cvd(a, kind), simulate_cvd(b, kind)) >= 20, (a, b)
    # the check can fail: green (both) against red (excess), as the report drew them
    assert delta_e(simulate_cvd("#1b7837", kind), simulate_cvd("#d6604d", kind)) < 22
    assert delta_e("#1b7837", "#d6604d") > 60  # far apart for normal vision
    # neutral colours are unchanged by a dichromacy, and the simulation is a projection:
    # simulating twice changes nothing more
    for g in ("#000000", "#ffffff", "#808080"):
        assert delta_e(simulate_cvd(g, kind), g) < 1
    red = simulate_cvd("#d62728", kind)
    assert delta_e(simulate_cvd(red, kind), red) < 2
    # the series colours too: every pair of the first four maps stays distinct
    from permafrost.styles import SERIES_COLOURS

    for a, b in combinations(SERIES_COLOURS[:4], 2):
        assert delta_e(simulate_cvd(a, kind), simulate_cvd(b, kind)) >= 15, (a, b)


def test_delta_e_matches_a_reference_value():
    # CIELAB of sRGB red (255, 0, 0), D65: L* 53.24, a* 80.09, b* 67.20 (Lindbloom); white L* 100
    assert delta_e("#ff0000", "#ffffff") == pytest.approx(
        ((100 - 53.24) ** 2 + 80.09 ** 2 + 67.20 ** 2) ** 0.5, abs=0.2)


_OVERFLOW_PROBE = """<script>
window.addEventListener('load', function () {
  var w = window.innerWidth, bad = [];
  document.querySelectorAll('body *').forEach(function (el) {
    if (el.closest('div.tw') || el.tagName === 'SCRIPT') return;
    var r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) bad.push(el.tagName + '.' + el.className + ':' +
                                                 Math.round(r.right));
  });
  parent.postMessage('inner=' + w + ' scroll=' + document.documentElement.scrollWidth +
                     ' wrappers=' + document.querySelectorAll('div.tw').length +
                     ' bad=' + bad.slice(0, 20).join(','), '*');
});
</script>"""

#: the report in a frame of the tested width (headless Chromium's window is at least 500 px
#: wide); the frame's probe posts its findings to this page, which --dump-dom prints
_HOST = """<!DOCTYPE html><html><body style='margin:0'>
<iframe src='r.html' style='width:{w}px;height:900px;border:0'></iframe>
<script>window.addEventListener('message', function (e) {{
  var d = document.createElement('pre'); d.id = 'pf-overflow'; d.textContent = e.data;
  document.body.appendChild(d); }});</script></body></html>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium not installed")
@pytest.mark.parametrize("width", [1400, 390])
def test_no_horizontal_overflow_outside_table_wrappers(tmp_path, width):
    """Headless Chromium at a desktop and a phone width: the page never scrolls sideways;
    only the wide tables do, inside their wrappers."""
    b = _with_categorical_prior(_bundle())
    b["provenance"]["a_long_path"] = "/very/long/" + "directory_name_" * 12 + "file.tif"
    html = render_report(b)
    assert "<meta name='viewport' content='width=device-width, initial-scale=1'>" in html
    assert "@media print" in html and "break-after:avoid" in html
    page = tmp_path / "r.html"
    page.write_text(html.replace("</body>", _OVERFLOW_PROBE + "</body>"))
    host = tmp_path / "host.html"
    host.write_text(_HOST.format(w=width))
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
           "--window-size=1600,1000", "--hide-scrollbars", "--virtual-time-budget=8000",
           "--dump-dom", host.as_uri()]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    m = re.search(r'id="pf-overflow">inner=(\d+) scroll=(\d+) wrappers=(\d+) bad=([^<]*)<',
                  res.stdout)
    assert m, res.stderr[-2000:]
    inner, scroll, wrappers, bad = int(m[1]), int(m[2]), int(m[3]), m[4]
    assert inner == width
    assert wrappers >= 5
    assert scroll <= inner, (scroll, bad)
    assert bad == "", bad
