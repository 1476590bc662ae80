"""Tests of permafrost.metrics against scikit-learn (unweighted, weighted, bin edges)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve

from permafrost.metrics import (
    binary_metrics,
    brier_score,
    cohen_kappa,
    confusion_counts,
    reliability_curve,
    roc_auc,
    roc_curve,
)


# ------------------------------------------------------- unweighted (moved from test_validation.py)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(8, 200), st.sampled_from([None, 1, 2]))
def test_metrics_match_sklearn(seed, n, decimals):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.uniform(size=n) * 0.6 + y * 0.3, 0, 1)
    if decimals is not None:
        p = np.round(p, decimals)  # ties
    m = binary_metrics(y, p, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p))
    if 0 < y.sum() < n:
        assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p))
        fpr, tpr, thr = skm.roc_curve(y, p, drop_intermediate=False)
        np.testing.assert_allclose(m["roc"]["fpr"], fpr)
        np.testing.assert_allclose(m["roc"]["tpr"], tpr)
        np.testing.assert_allclose(m["roc"]["thresholds"][1:], thr[1:])
        assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    else:
        assert m["auc"] is None
    k = skm.cohen_kappa_score(y, pred)
    if np.isnan(k):
        assert m["kappa"] is None
    else:
        assert m["kappa"] == pytest.approx(k, abs=1e-12)
    pt, pp = calibration_curve(y, p, n_bins=10, strategy="uniform")
    rel = m["reliability"]
    got_t = [v for v in rel["observed_frequency"] if v is not None]
    got_p = [v for v in rel["mean_predicted"] if v is not None]
    np.testing.assert_allclose(got_t, pt)
    np.testing.assert_allclose(got_p, pp)
    assert sum(rel["count"]) == n


def test_weighted_kappa_matches_sklearn():
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 2, 500), rng.integers(0, 2, 500)
    w = rng.uniform(1, 5, 500)
    tp, fp = w[(a == 1) & (b == 1)].sum(), w[(a == 1) & (b == 0)].sum()
    fn, tn = w[(a == 0) & (b == 1)].sum(), w[(a == 0) & (b == 0)].sum()
    assert cohen_kappa(tp, fp, fn, tn) == pytest.approx(
        skm.cohen_kappa_score(b, a, sample_weight=w), abs=1e-12)


def test_degenerate_metrics():
    assert roc_auc([1, 1, 1], [0.1, 0.5, 0.9]) is None
    assert cohen_kappa(10, 0, 0, 0) is None
    m = binary_metrics([1, 1], [0.9, 0.8])
    assert m["auc"] is None and m["roc"] is None and m["specificity"] is None
    r = roc_curve([0, 1, 1, 0], [0.2, 0.8, 0.8, 0.9])
    assert r["fpr"][0] == 0 and r["tpr"][-1] == 1
    rel = reliability_curve([0, 1], [0.5, 1.0], n_bins=2)
    assert rel["count"] == [1, 1]  # 0.5 sits on the inner edge -> lower bin, like sklearn


# ----------------------------------------------------------------------------- weighted
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(8, 200), st.sampled_from([None, 1, 2]))
def test_weighted_metrics_match_sklearn(seed, n, decimals):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.uniform(size=n) * 0.6 + y * 0.3, 0, 1)
    if decimals is not None:
        p = np.round(p, decimals)  # ties
    w = rng.uniform(0.1, 5.0, n)
    m = binary_metrics(y, p, sample_weight=w, threshold=0.5)
    pred = (p >= 0.5).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1], sample_weight=w).ravel()
    np.testing.assert_allclose([m["tn"], m["fp"], m["fn"], m["tp"]], [tn, fp, fn, tp])
    assert (m["n"], m["n_pos"]) == (n, int(y.sum()))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred, sample_weight=w))
    assert m["brier"] == pytest.approx(skm.brier_score_loss(y, p, sample_weight=w))
    if 0 < y.sum() < n:
        assert m["auc"] == pytest.approx(skm.roc_auc_score(y, p, sample_weight=w))
        fpr, tpr, thr = skm.roc_curve(y, p, sample_weight=w, drop_intermediate=False)
        np.testing.assert_allclose(m["roc"]["fpr"], fpr)
        np.testing.assert_allclose(m["roc"]["tpr"], tpr)
        np.testing.assert_allclose(m["roc"]["thresholds"][1:], thr[1:])
        assert m["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y, pred, sample_weight=w))
    else:
        assert m["auc"] is None and m["balanced_accuracy"] is None
    k = skm.cohen_kappa_score(y, pred, sample_weight=w)
    if np.isnan(k):
        assert m["kappa"] is None
    else:
        assert m["kappa"] == pytest.approx(k, abs=1e-12)


def test_weighted_reliability_is_the_weighted_mean_per_bin():
    rng = np.random.default_rng(5)
    p = rng.uniform(0, 1, 400)
    y = (rng.random(400) < p).astype(int)
    w = rng.uniform(0.5, 3.0, 400)
    rel = reliability_curve(y, p, n_bins=5, sample_weight=w)
    ids = np.searchsorted(np.linspace(0, 1, 6)[1:-1], p)
    for b in range(5):
        s = ids == b
        assert rel["count"][b] == int(s.sum())
        assert rel["weight"][b] == pytest.approx(w[s].sum())
        assert rel["mean_predicted"][b] == pytest.approx(np.average(p[s], weights=w[s]))
        assert rel["observed_frequency"][b] == pytest.approx(np.average(y[s], weights=w[s]))
    # integer weights equal repeating the items
    wi = rng.integers(1, 4, 400)
    a = reliability_curve(y, p, n_bins=5, sample_weight=wi)
    b = reliability_curve(np.repeat(y, wi), np.repeat(p, wi), n_bins=5)
    np.testing.assert_allclose(a["mean_predicted"], b["mean_predicted"])
    np.testing.assert_allclose(a["observed_frequency"], b["observed_frequency"])
    assert a["weight"] == pytest.approx(b["weight"])


@pytest.mark.parametrize("n_bins", [2, 4, 5, 10])
def test_reliability_bins_follow_sklearn_on_edges(n_bins):
    # every probability sits exactly on a bin edge (plus 0 and 1): the edge rule decides
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    p = np.repeat(edges, 3)
    y = np.tile([0, 1, 1], n_bins + 1)
    pt, pp = calibration_curve(y, p, n_bins=n_bins, strategy="uniform")
    rel = reliability_curve(y, p, n_bins=n_bins)
    np.testing.assert_allclose([v for v in rel["observed_frequency"] if v is not None], pt)
    np.testing.assert_allclose([v for v in rel["mean_predicted"] if v is not None], pp)
    # an inner edge goes to the lower bin; 0 to the first, 1 to the last
    assert rel["count"][0] == 6 and rel["count"][-1] == 3
    assert rel["count"][1:-1] == [3] * (n_bins - 2)


def test_weighted_auc_equals_repeated_items_and_area_counts():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.uniform(size=300), 1)
    wi = rng.integers(1, 5, 300)
    assert roc_auc(y, s, sample_weight=wi) == pytest.approx(
        roc_auc(np.repeat(y, wi), np.repeat(s, wi)), abs=1e-12)
    assert brier_score(y, s, sample_weight=wi) == pytest.approx(
        brier_score(np.repeat(y, wi), np.repeat(s, wi)))
    c = confusion_counts(y, s >= 0.5, sample_weight=wi)
    r = confusion_counts(np.repeat(y, wi), np.repeat(s, wi) >= 0.5)
    assert {k: int(v) for k, v in c.items()} == r
    assert isinstance(r["tp"], int) and isinstance(c["tp"], float)


def test_mismatched_lengths_are_a_data_error():
    from permafrost.errors import DataError

    with pytest.raises(DataError, match="differ in length"):
        binary_metrics([0, 1, 1], [0.2, 0.7])
    with pytest.raises(DataError, match="sample_weight"):
        binary_metrics([0, 1], [0.2, 0.7], sample_weight=[1.0])
