"""The level of the PZI from in-situ evidence (permafrost.level; issue 22, item 3).

A generated landscape whose truth is known: P(permafrost | t) = expit(0.2 - 1.6 t) on a
smooth covariate t.  Rock-glacier-like labels sample the classes, not the places (85 %
permafrost, as fronts on cold debris do); in-situ labels (boreholes) sample places at
random.  Class-conditional sampling keeps the logistic slope and shifts only the intercept
(Prentice & Pyke 1979), so the in-situ labels can set the right level and the label mix
cannot.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from factories import RES, X0, Y0, da_on_grid
from rasterio.transform import from_origin
from shapely.geometry import Point
from typer.testing import CliRunner

from permafrost.calibration import apply_calibration
from permafrost.cli import app
from permafrost.errors import DataError, ModelError
from permafrost.level import fit_level_calibration, with_given_prevalence
from permafrost.models import train_model

N = 120
runner = CliRunner()


def _world(n_in_situ: int = 300, n_rg: int = 600, seed: int = 3):
    """Covariate stack, labels (rock glaciers at 85 % permafrost + random boreholes) and the
    landscape's true mean probability."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:N, 0:N].astype(float)
    t = (xx - N / 2) / (N / 4) + 0.4 * np.sin(yy / 9.0) + rng.normal(0, 0.1, (N, N))
    p_true = 1.0 / (1.0 + np.exp(-(0.2 - 1.6 * t)))
    y_true = rng.random((N, N)) < p_true  # one realisation of the ground
    tr = from_origin(X0, Y0, RES, RES)
    ds = xr.Dataset({"t": da_on_grid(t, tr)})

    def point(r, c):
        return Point(X0 + (c + 0.5) * RES, Y0 - (r + 0.5) * RES)

    rows = []
    cells = np.arange(4 * N, N * N - 4 * N)  # away from the edges
    flat = y_true.ravel()
    npos = int(round(0.85 * n_rg))
    pos = rng.choice(cells[flat[cells]], npos, replace=False)
    neg = rng.choice(cells[~flat[cells]], n_rg - npos, replace=False)
    for i, k in enumerate(np.concatenate([pos, neg])):
        r, c = divmod(int(k), N)
        rows.append({"label": int(flat[k]), "source": "rock_glacier", "evidence": "intact",
                     "group": f"rg{i}", "weight": 1.0, "geometry": point(r, c)})
    for i, k in enumerate(rng.choice(cells, n_in_situ, replace=False)):
        r, c = divmod(int(k), N)
        rows.append({"label": int(flat[k]), "source": "borehole", "evidence": "presence",
                     "group": f"bh{i}", "weight": 1.0, "geometry": point(r, c)})
    labels = gpd.GeoDataFrame(rows, crs="EPSG:4326")
    return ds, labels, t, float(p_true.mean())


def _train(ds, labels, **kw):
    return train_model(labels, ds, model="logistic", random_cv=False, seed=0, **kw)


def _landscape_mean(model, t) -> float:
    return float(np.mean(model.predict_pzi(t.reshape(-1, 1).astype(np.float32))))


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_in_situ_level_gives_the_true_level_the_label_mix_does_not(world, calibration):
    ds, labels, t, truth = world
    new = _train(ds, labels, calibration=calibration)
    old = _train(ds, labels, calibration=calibration, level="labels")
    lev = new.model.metadata["calibration"]["level"]
    assert lev["rests_on"] == "in-situ (boreholes, GTN-P)" and lev["warning"] is None
    assert old.model.metadata["calibration"]["level"]["rests_on"] == "all labels (label mix)"
    # the landscape: the in-situ level is the truth's (within two standard errors of the
    # share of permafrost in 300 random boreholes, 2 sqrt(0.25 / 300) = 0.058), the label
    # mix's is far above it (the old rule)
    m_new, m_old = _landscape_mean(new.model, t), _landscape_mean(old.model, t)
    assert abs(m_new - truth) < 0.06, (m_new, truth)
    assert m_old - truth > 0.1, (m_old, truth)
    # at the in-situ points: the mean PZI is their observed share of permafrost
    bh = labels[labels.source == "borehole"]
    tb = t[((Y0 - bh.geometry.y) / RES).astype(int), ((bh.geometry.x - X0) / RES).astype(int)]
    at = float(np.mean(new.model.predict_pzi(tb.reshape(-1, 1).astype(np.float32))))
    assert abs(at - bh.label.mean()) < 0.05
    assert abs(lev["prevalence_of_set"] - bh.label.mean()) < 1e-9
    assert lev["label_prevalence"] > 0.7 and lev["n"] == len(bh)


def test_the_offset_fit_returns_the_in_situ_prevalence_exactly():
    # the score equation of the logit offset: weighted mean calibrated PZI over the in-situ
    # labels = their weighted prevalence (recalibration in the large)
    rng = np.random.default_rng(0)
    raw = rng.random(400)
    src = np.where(np.arange(400) < 100, "borehole", "rock_glacier")
    y = (rng.random(400) < np.where(src == "borehole", 0.3 + 0.4 * raw, 0.9)).astype(int)
    w = rng.uniform(0.5, 2.0, 400)
    for method in ("sigmoid", "isotonic"):
        fit = fit_level_calibration(raw, y, src, method=method, sample_weight=w)
        q = apply_calibration(fit.params, raw[:100].astype(np.float32)).astype(float)
        prev = np.sum(w[:100] * y[:100]) / np.sum(w[:100])
        tol = 1e-4 if method == "sigmoid" else 2e-3  # isotonic: float32 knots, flat ends
        assert abs(np.sum(w[:100] * q) / np.sum(w[:100]) - prev) < tol
        assert fit.level["rests_on"].startswith("in-situ")
        # the shape is the all-labels calibrator's: a sigmoid keeps its slope
        if method == "sigmoid":
            mix = fit_level_calibration(raw, y, src, method=method, sample_weight=w,
                                        level="labels")
            assert fit.params["a"] == pytest.approx(mix.params["a"])
            assert fit.params["b"] - mix.params["b"] == pytest.approx(
                fit.level["offset_logit"])


def test_too_few_in_situ_labels_warn_with_the_label_prevalence():
    ds, labels, t, truth = _world(n_in_situ=12)
    res = _train(ds, labels)
    lev = res.model.metadata["calibration"]["level"]
    assert lev["rests_on"] == "all labels (label mix)"
    prev = lev["label_prevalence"]
    assert prev > 0.75
    assert lev["warning"] and f"prevalence {prev:.2f}" in lev["warning"]
    assert "12 in-situ labels" in lev["warning"] and "need 30" in lev["warning"]
    assert res.report.level["warning"] == lev["warning"]
    assert "label mix" in res.model.metadata["pzi_meaning"]
    # the thresholds count each class: 40 in-situ labels, all permafrost, are too few
    y = np.r_[np.ones(40), np.ones(50), np.zeros(50)]
    src = np.r_[["borehole"] * 40, ["rock_glacier"] * 100]
    raw = np.linspace(0.05, 0.95, 140)
    fit = fit_level_calibration(raw, y, src)
    assert fit.level["rests_on"].startswith("all labels") and "0 none" in fit.level["warning"]
    # forced in-situ with one class: an error, not an infinite offset
    with pytest.raises(DataError, match="both classes"):
        fit_level_calibration(raw, y, src, level="in-situ")


def test_metadata_keys_and_the_given_prevalence_wins(world):
    ds, labels, t, truth = world
    res = _train(ds, labels, prevalence=0.3, prevalence_source="survey map")
    meta = res.model.metadata
    lev = meta["calibration"]["level"]
    for k in ("rests_on", "n", "n_positive", "prevalence_of_set", "label_prevalence", "rule",
              "warning", "in_situ", "offset_logit"):
        assert k in lev
    assert lev["rests_on"] == "given prevalence 0.300 (survey map)"
    assert lev["calibrated_on"].startswith("in-situ")
    shift = res.model.calibration["prior_shift"]
    # from the in-situ set's prevalence (the level it rests on), not the label mix's
    assert shift["from"] == pytest.approx(lev["prevalence_of_set"])
    assert shift["from"] != pytest.approx(lev["label_prevalence"])
    assert shift["to"] == 0.3 and "0.300" in meta["pzi_meaning"]
    assert lev["warning"] is None
    # the order is documented in the rule
    assert "a given prevalence wins" in lev["rule"]
    with pytest.raises(ModelError):
        with_given_prevalence(fit_level_calibration(np.r_[0.2, 0.8], [0, 1], ["a", "b"]), 1.5)
    # calibration "none": the raw scores refer to balanced classes, shifted from 0.5
    raw_fit = fit_level_calibration(np.r_[0.2, 0.8], [0, 1], ["a", "b"], method="none")
    shifted = with_given_prevalence(raw_fit, 0.2).params
    assert shifted["prior_shift"]["from"] == 0.5
    assert float(apply_calibration(shifted, np.float32([0.5]))[0]) == pytest.approx(0.2)


def test_the_level_option(world, tmp_path):
    ds, labels, t, truth = world
    # in-situ asked for with few labels: used, with a warning that they are few
    few = labels[(labels.source != "borehole") | (labels.index % 25 == 0)]
    lev = _train(ds, few, level="in-situ").model.metadata["calibration"]["level"]
    assert lev["rests_on"].startswith("in-situ") and "was asked for" in lev["warning"]
    with pytest.raises(ModelError, match="unknown level"):
        _train(ds, labels, level="boreholes")
    # the pipeline schema and the CLI
    from permafrost.config import TrainOptions

    assert TrainOptions().level == "auto"
    assert TrainOptions(level="in-situ").level == "in-situ"
    with pytest.raises(Exception, match="level"):
        TrainOptions(level="boreholes")
    cov = tmp_path / "cov"
    cov.mkdir()
    ds["t"].rio.to_raster(cov / "t.tif")
    lpath = tmp_path / "labels.gpkg"
    _world(n_in_situ=12)[1].to_file(lpath)
    out = runner.invoke(app, ["train", "--labels", str(lpath), "--covariates", str(cov),
                              "--out", str(tmp_path / "m"), "--model", "logistic",
                              "--no-random-cv"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "WARNING" in out.output and "level rests on the label mix" in out.output
    assert "PZI level: all labels (label mix)" in out.output
    out = runner.invoke(app, ["train", "--labels", str(lpath), "--covariates", str(cov),
                              "--out", str(tmp_path / "m2"), "--model", "logistic",
                              "--no-random-cv", "--level", "labels"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "WARNING" not in out.output and "chosen by the user" in out.output
    bad = runner.invoke(app, ["train", "--labels", str(lpath), "--covariates", str(cov),
                              "--out", str(tmp_path / "m3"), "--level", "x"])
    assert bad.exit_code != 0


def test_the_report_says_what_the_level_rests_on(world):
    from permafrost.report import render_report

    ds, labels, t, truth = world
    few = labels[(labels.source != "borehole") | (labels.index % 20 == 0)]
    meta = _train(ds, few).model.metadata
    html = render_report({"title": "t", "model": meta})
    warn = html.index("level rests on the label mix")
    assert warn < html.index("<section")
    assert "PZI level" in html[html.index("<section"):]
    meta = _train(ds, labels).model.metadata
    html = render_report({"title": "t", "model": meta})
    assert "level rests on the label mix" not in html
    assert "in-situ (boreholes, GTN-P)" in html


def test_the_pipeline_closing_output_prints_the_level_warning(monkeypatch):
    from io import StringIO
    from types import SimpleNamespace

    from rich.console import Console

    import permafrost.cli.run as run

    buf = StringIO()
    monkeypatch.setattr(run, "console", Console(file=buf, width=400))
    w = "the PZI's level rests on the label mix (weighted prevalence 0.83, ...)"
    rec = SimpleNamespace(summary={"level": "all labels (label mix)", "warnings": [w]})
    ok = SimpleNamespace(summary={"level": "in-situ (boreholes, GTN-P)"})
    run._print_model_warnings(SimpleNamespace(scenarios={"baseline": {"train": rec},
                                                         "plus1": {"train": rec},
                                                         "reference": {"train": ok}}))
    out = buf.getvalue()
    assert out.count("WARNING") == 1 and "(baseline, plus1, model)" in out and w in out
