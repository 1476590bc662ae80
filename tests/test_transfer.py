"""Validation that tests transfer (issue 22, item 4): covariate autocorrelation ranges behind
the CV block size, skill per evidence source, leave-one-source-out, and the warning when the
held-out skill is at chance or far below the CV skill."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from factories import RES, X0, Y0, write_raster
from shapely.geometry import Point
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.cv import covariate_ranges, default_block_size
from permafrost.report import render_report
from permafrost.transfer import (
    evidence_sources,
    leave_one_source_out,
    skill_by_source,
    transfer_check,
)

runner = CliRunner()


def _grf(n: int, cell: float, a: float, seed: int) -> np.ndarray:
    """Gaussian random field with covariance exp(-h / a), by circulant embedding on a 2n
    torus (FFT; Dietrich & Newsam 1997): exact on the n x n window."""
    m = 2 * n
    i = np.minimum(np.arange(m), m - np.arange(m)) * cell
    lam = np.clip(np.real(np.fft.fft2(np.exp(-np.hypot(i[:, None], i[None, :]) / a))), 0, None)
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((m, m)) + 1j * rng.standard_normal((m, m))
    return np.real(np.fft.ifft2(np.sqrt(lam) * w) * m)[:n, :n]


def _metric_ds(fields: dict, cell: float) -> xr.Dataset:
    n = next(iter(fields.values())).shape[0]
    xs = 500_000 + cell * (np.arange(n) + 0.5)
    ys = 4_000_000 - cell * (np.arange(n) + 0.5)
    return xr.Dataset({k: (("y", "x"), v.astype("float32")) for k, v in fields.items()},
                      coords={"y": ys, "x": xs}).rio.write_crs("EPSG:32647")


def test_covariate_range_recovers_a_known_exponential_range():
    # exponential covariance exp(-h/a), a = 1 km: effective (practical) range 3a = 3 km
    cell, a = 100.0, 1000.0
    z = _grf(256, cell, a, seed=0)
    yy, xx = np.mgrid[0:256, 0:256]
    trend = (xx + yy) * 1.0  # a regional trend: no sill within the data
    res = covariate_ranges(_metric_ds({"z": z, "trend": trend}, cell), seed=0)
    r = res["ranges_m"]["z"]
    assert r is not None and abs(r - 3 * a) / (3 * a) < 0.3, r
    assert res["ranges_m"]["trend"] is None  # left out of the median
    assert res["median_m"] == pytest.approx(r)
    # a field of 3x the range gives a range about 3x as long (the fit follows the field)
    z3 = _grf(256, cell, 3 * a, seed=0)
    r3 = covariate_ranges(_metric_ds({"z": z3}, cell), seed=0)["ranges_m"]["z"]
    assert r3 is not None and 2.0 < r3 / r < 4.5


def test_block_size_is_the_larger_of_label_and_covariate_ranges():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(0, 60_000, 400), rng.uniform(0, 60_000, 400)
    lab = (rng.random(400) < 0.5).astype(int)  # independent labels: a short label range
    small, rule_small = default_block_size(x, y, lab, seed=0)
    size, rule = default_block_size(x, y, lab, seed=0, covariate_range_m=9000.0)
    assert size == pytest.approx(max(9000.0, small)) and size > small
    assert "covariate range 9.00 km" in rule and "the covariate range" in rule
    # a covariate range shorter than the label range does not shrink the blocks
    big_lab = (np.sin(x / 3000) * np.cos(y / 3000) > 0).astype(int)  # patches of ~5 km
    lab_size, rule1 = default_block_size(x, y, big_lab, seed=0)
    assert "the label range" in rule1 and 3000 < lab_size < 10_000
    both, rule2 = default_block_size(x, y, big_lab, seed=0, covariate_range_m=100.0)
    assert both == pytest.approx(lab_size) and "the label range" in rule2


def test_skill_by_source_and_intervals():
    rng = np.random.default_rng(2)
    n = 200
    y = rng.integers(0, 2, n)
    src = np.array(["rock_glacier"] * 100 + ["borehole"] * 100, dtype=object)
    p = np.where(src == "rock_glacier", y * 0.6 + 0.2 + rng.normal(0, 0.05, n),
                 rng.random(n))  # perfect on rock glaciers, random on boreholes
    out = skill_by_source(y, p, src, seed=0)
    assert out["rock_glacier"]["auc"] == pytest.approx(1.0)
    ci = out["borehole"]["ci"]["auc"]
    assert ci["low"] < 0.5 < ci["high"] and ci["low"] < out["borehole"]["auc"] < ci["high"]
    # GTN-P-derived labels are their own source
    pts = gpd.GeoDataFrame({"source": ["rock_glacier", "borehole", "borehole"],
                            "evidence": ["intact", "presence", "temperature (cold)"]},
                           geometry=[Point(0, 0)] * 3)
    assert list(evidence_sources(pts)) == ["rock_glacier", "borehole", "gtnp"]


def test_leave_one_source_out_trains_on_the_others_only():
    y = np.array([0, 1] * 30 + [0, 1] * 30)
    src = np.array(["rock_glacier"] * 60 + ["borehole"] * 60, dtype=object)
    seen = []

    def fit_predict(tr, te):
        seen.append((set(src[tr]), set(src[te])))
        return y[te] * 0.5 + 0.25  # a perfect ranking
    runs = leave_one_source_out(fit_predict, y, src, seed=0)
    assert seen == [({"borehole"}, {"rock_glacier"}), ({"rock_glacier"}, {"borehole"})]
    assert [r["held_out"] for r in runs] == ["rock_glacier", "borehole"]
    assert all(r["auc"] == 1.0 and r["ci"]["auc"]["low"] is not None for r in runs)


@pytest.mark.parametrize("cv,held,ci,chance,far", [
    (0.73, 0.51, (0.31, 0.69), True, True),   # the ttop region of issue 22
    (0.80, 0.78, (0.70, 0.86), False, False),  # transfer holds
    (0.95, 0.75, (0.70, 0.80), False, True),   # far below, not at chance
])
def test_transfer_check_rule(cv, held, ci, chance, far):
    out = transfer_check(cv, held, {"low": ci[0], "high": ci[1]})
    assert out["at_chance"] is chance and out["far_below"] is far
    assert len(out["warnings"]) == chance + far


# ------------------------------------------------------------ CV passes, transfer fails
N = 150  # pixels a side of the synthetic world (geographic grid of 2" pixels, ~4.6 km)


def _world(tmp_path, borehole_cov: str):
    """Covariates A and B (independent smooth fields); rock glacier labels follow A,
    borehole labels follow ``borehole_cov``; held-out boreholes (a CSV) follow it too."""
    rng = np.random.default_rng(7)
    a = _grf(N, 1.0, 6.0, seed=11)
    b = _grf(N, 1.0, 6.0, seed=12)
    cov = tmp_path / "cov"
    write_raster(cov / "a.tif", a)
    write_raster(cov / "b.tif", b)
    fields = {"a": a, "b": b}

    def cells(k):
        return rng.integers(2, N - 2, k), rng.integers(2, N - 2, k)

    def lonlat(r, c):
        return X0 + (c + 0.5) * RES, Y0 - (r + 0.5) * RES

    rows = []
    r, c = cells(300)
    for i, (ri, ci) in enumerate(zip(r, c)):
        rows.append({"label": int(a[ri, ci] > 0), "source": "rock_glacier",
                     "evidence": "intact", "group": f"rg{i}", "weight": 1.0,
                     "geometry": Point(*lonlat(ri, ci))})
    r, c = cells(60)
    f = fields[borehole_cov]
    for i, (ri, ci) in enumerate(zip(r, c)):
        rows.append({"label": int(f[ri, ci] > 0), "source": "borehole", "evidence": "presence",
                     "group": f"bh{i}", "weight": 1.0, "geometry": Point(*lonlat(ri, ci))})
    labels = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    lpath = tmp_path / "labels.gpkg"
    labels.to_file(lpath, layer="labels")
    r, c = cells(80)
    held = ["borehole_id,lon,lat,presence"] + [
        f"H{i},{lonlat(ri, ci)[0]:.6f},{lonlat(ri, ci)[1]:.6f},{int(f[ri, ci] > 0)}"
        for i, (ri, ci) in enumerate(zip(r, c))]
    hpath = tmp_path / "held.csv"
    hpath.write_text("\n".join(held) + "\n")
    return lpath, cov, hpath


def _train_predict_validate(tmp_path, borehole_cov, *, as_json: bool = True):
    from permafrost.workflows.covariates import build_stack
    from permafrost.workflows.predict import predict_raster

    lpath, cov, hpath = _world(tmp_path, borehole_cov)
    model_dir = tmp_path / "model"
    cli = runner.invoke(app, ["train", "--labels", str(lpath), "--covariates", str(cov),
                              "--out", str(model_dir), "--model", "logistic", "--no-random-cv"]
                        + (["--json"] if as_json else []), terminal_width=200)
    assert cli.exit_code == 0, cli.output
    res = json.loads(cli.output[cli.output.index("{"):]) if as_json else cli.output
    predict_raster(model_dir, build_stack(cov), tmp_path / "pzi.tif", device="cpu")
    out = tmp_path / "val"
    cli = runner.invoke(app, ["validate", str(tmp_path / "pzi.tif"), "--boreholes", str(hpath),
                              "--model", str(model_dir), "--out", str(out)],
                        terminal_width=200)
    assert cli.exit_code == 0, cli.output
    return res, json.loads((out / "validation.json").read_text()), cli.output


def test_cv_passes_transfer_fails_and_the_warning_shows(tmp_path):
    res, val, output = _train_predict_validate(tmp_path, "b")
    # CV passes: the fold mean AUC is high, carried by the rock glaciers (train's report)
    assert res["spatial_summary"]["auc"]["mean"] > 0.75
    assert res["per_source"]["rock_glacier"]["auc"] > 0.85
    assert {r["held_out"] for r in res["leave_one_source_out"]} == {"rock_glacier", "borehole"}
    # transfer fails: the held-out boreholes (following B) are not ranked by the model
    tr = val["transfer"]
    assert tr["far_below"] and tr["heldout_auc"] < 0.65
    assert val["warnings"] and val["warnings"] == tr["warnings"]
    # leave-one-source-out, with intervals: rock glaciers alone say nothing on boreholes
    loso = {r["held_out"]: r for r in tr["leave_one_source_out"]}
    assert set(loso) == {"rock_glacier", "borehole"}
    bh = loso["borehole"]
    assert bh["trained_on"] == ["rock_glacier"]
    assert bh["ci"]["auc"]["low"] < 0.5 < bh["ci"]["auc"]["high"] or bh["auc"] < 0.65
    assert all(r["ci"]["auc"]["low"] is not None for r in loso.values())
    # both ranges and the rule are recorded
    ac = tr["autocorrelation"]
    assert ac["covariate_range_m"] is not None and "label_range_m" in ac
    assert set(ac["covariates"]["ranges_m"]) == {"a", "b"}
    assert "covariate range" in tr["block_size_rule"]
    # the terminal
    assert "WARNING" in output and "far below the spatial-CV AUC" in output
    assert "leave-one-source-out: trained on rock_glacier, borehole AUC" in output
    # the report: the warning above everything else, the transfer section
    html = render_report({"title": "t", "validation": val})
    top = html.index("<div class='warn'>")
    assert top < html.index("<section") and "far below the spatial-CV AUC" in html
    assert "Leave-one-source-out" in html and "Evidence source" in html


def test_no_warning_when_the_sources_agree(tmp_path):
    # boreholes follow covariate A as the rock glaciers do: transfer holds, no warning
    train_out, val, output = _train_predict_validate(tmp_path, "a", as_json=False)
    # the train command's table: AUC per source, out of fold and trained on the others
    assert "Transfer: AUC [95 % CI] per evidence source" in train_out
    assert "rock_glacier" in train_out and "borehole" in train_out
    tr = val["transfer"]
    assert not tr["at_chance"] and not tr["far_below"] and tr["heldout_auc"] > 0.8
    assert val["warnings"] == [] and "WARNING" not in output
    loso = {r["held_out"]: r for r in tr["leave_one_source_out"]}
    assert loso["borehole"]["auc"] > 0.8
    assert "<div class='warn'>" not in render_report({"title": "t", "validation": val})
