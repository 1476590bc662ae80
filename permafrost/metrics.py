"""Skill metrics of probabilistic binary predictions (permafrost yes/no), optionally weighted.

The one home of the scores used by cross-validation (:mod:`permafrost.cv`,
:mod:`permafrost.models`, weighted by the label weights) and by the validation against
boreholes and prior maps (:mod:`permafrost.validation`, unweighted points or cell areas as
weights): confusion counts, Cohen's kappa, ROC AUC and curve, Brier score, reliability
curve, and :func:`binary_metrics` that gathers them.

Conventions follow scikit-learn so that every value can be checked against it
(``tests/test_metrics.py`` does): arguments are ``(y_true, p)``; ``sample_weight`` weights
each item; ROC thresholds and the Brier score as in ``sklearn.metrics``; reliability bins
as in :func:`sklearn.calibration.calibration_curve` (``strategy="uniform"``: equal-width
bins on [0, 1], a value exactly on an inner edge goes to the *lower* bin, i.e. bin ``i``
holds ``edges[i] < p <= edges[i+1]`` and bin 0 also holds 0).  Undefined values (AUC or
balanced accuracy with one class, kappa with ``p_e = 1``) are ``None`` (JSON ``null``).

References
----------
Brier, G. W. (1950). Verification of forecasts expressed in terms of probability. Mon.
    Weather Rev. 78, 1-3.
Cohen, J. (1960). A coefficient of agreement for nominal scales. Educ. Psychol. Meas. 20,
    37-46.
Hanley, J. A. & McNeil, B. J. (1982). The meaning and use of the area under a receiver
    operating characteristic (ROC) curve. Radiology 143, 29-36.
Fawcett, T. (2006). An introduction to ROC analysis. Pattern Recogn. Lett. 27, 861-874.
Brodersen, K. H., Ong, C. S., Stephan, K. E. & Buhmann, J. M. (2010). The balanced
    accuracy and its posterior distribution. Proc. ICPR 2010, 3121-3124.
Murphy, A. H. & Winkler, R. L. (1977). Reliability of subjective probability forecasts of
    precipitation and temperature. J. R. Stat. Soc. C 26(1), 41-47.
Niculescu-Mizil, A. & Caruana, R. (2005). Predicting good probabilities with supervised
    learning. Proc. ICML 2005, 625-632 (reliability diagrams, Sect. 4).
"""

from __future__ import annotations

import math

import numpy as np

from permafrost.checks import expects
from permafrost.errors import DataError

__all__ = [
    "confusion_counts",
    "cohen_kappa",
    "roc_auc",
    "roc_curve",
    "brier_score",
    "reliability_curve",
    "binary_metrics",
]


def _weights(sample_weight, shape) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype="float64")
    if w.shape != shape:
        raise DataError(f"sample_weight has shape {w.shape}, the labels {shape}",
                        field="sample_weight", fix="give one weight per label")
    return w


def confusion_counts(y_true, y_pred, *, sample_weight=None) -> dict:
    """2 x 2 confusion counts (or weighted sums, e.g. areas) of binary labels.

    Parameters
    ----------
    y_true, y_pred : array_like of {0, 1}
        Observed and predicted presence [-].
    sample_weight : array_like, optional
        Weight of each item (e.g. a label weight [-] or a cell area [m2]); default 1.

    Returns
    -------
    dict
        ``tp``, ``fp``, ``fn``, ``tn``: counts (int) without weights, weight sums (float)
        with weights.

    References
    ----------
    Fawcett (2006), Fig. 1 (the confusion matrix).
    """
    t = np.asarray(y_true).astype(bool)
    p = np.asarray(y_pred).astype(bool)
    w = _weights(sample_weight, t.shape)
    if w is None:
        return {"tp": int((t & p).sum()), "fp": int((~t & p).sum()),
                "fn": int((t & ~p).sum()), "tn": int((~t & ~p).sum())}
    return {"tp": float(w[t & p].sum()), "fp": float(w[~t & p].sum()),
            "fn": float(w[t & ~p].sum()), "tn": float(w[~t & ~p].sum())}


def cohen_kappa(tp: float, fp: float, fn: float, tn: float) -> float | None:
    """Cohen's kappa from a 2 x 2 table of counts, weights or areas.

    Parameters
    ----------
    tp, fp, fn, tn : float
        Both positive, predicted only, observed only, both negative [count, - or m2].

    Returns
    -------
    float or None
        ``(p_o - p_e) / (1 - p_e)`` [-]; None when undefined (empty table or ``p_e = 1``).

    References
    ----------
    Cohen (1960), eq. 1.
    """
    n = tp + fp + fn + tn
    if n <= 0:
        return None
    po = (tp + tn) / n
    pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (n * n)
    if 1 - pe <= 1e-15:
        return None
    return (po - pe) / (1 - pe)


def _ranked(y_true, score, sample_weight):
    """Distinct scores in decreasing order with the positive/negative weight at each."""
    y = np.asarray(y_true).astype(bool)
    s = np.asarray(score, dtype="float64")
    w = _weights(sample_weight, y.shape)
    w = np.ones(y.shape) if w is None else w
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s)), y.size - 1] if y.size else np.array([], int)
    tps = np.cumsum(w * y)[last]
    fps = np.cumsum(w * ~y)[last]
    return s[last], tps, fps


def roc_auc(y_true, score, *, sample_weight=None) -> float | None:
    """Area under the ROC curve: the (weighted) Mann-Whitney probability, ties counted 1/2.

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    score : array_like
        Predicted probability or any score [-].
    sample_weight : array_like, optional
        Weight of each item [-].

    Returns
    -------
    float or None
        AUC [-], the probability that a random positive scores above a random negative
        (ties 1/2), each pair weighted by the product of the two weights; equal to the
        trapezoidal area under :func:`roc_curve`.  None when one class (or its weight)
        is absent.

    References
    ----------
    Hanley & McNeil (1982), eq. 1 (AUC = Wilcoxon-Mann-Whitney statistic).
    """
    _, tps, fps = _ranked(y_true, score, sample_weight)
    if tps.size == 0 or tps[-1] <= 0 or fps[-1] <= 0:
        return None
    neg_above = np.r_[0.0, fps[:-1]]          # negative weight with a strictly higher score
    pos_here = np.diff(np.r_[0.0, tps])
    neg_here = np.diff(np.r_[0.0, fps])
    # pairs won by positives: negatives below = total - above - tied
    won = np.sum(pos_here * (fps[-1] - neg_above - neg_here + 0.5 * neg_here))
    return float(won / (tps[-1] * fps[-1]))


def roc_curve(y_true, score, *, sample_weight=None) -> dict:
    """ROC curve points: false and true positive rates at each distinct score.

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    score : array_like
        Predicted probability [-].
    sample_weight : array_like, optional
        Weight of each item [-].

    Returns
    -------
    dict
        ``fpr``, ``tpr`` (from (0, 0) to (1, 1)) and ``thresholds`` (score >= threshold is
        positive; the first is +inf), as ``sklearn.metrics.roc_curve(...,
        drop_intermediate=False)``.

    References
    ----------
    Fawcett (2006), Algorithm 1.
    """
    thr, tps, fps = _ranked(y_true, score, sample_weight)
    P = tps[-1] if tps.size and tps[-1] > 0 else 1.0
    N = fps[-1] if fps.size and fps[-1] > 0 else 1.0
    return {"fpr": np.r_[0.0, fps / N].tolist(), "tpr": np.r_[0.0, tps / P].tolist(),
            "thresholds": [math.inf] + thr.tolist()}


def brier_score(y_true, p, *, sample_weight=None) -> float:
    """Brier score, the (weighted) mean squared difference between probability and outcome.

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    p : array_like
        Predicted probability of presence [-], in [0, 1].
    sample_weight : array_like, optional
        Weight of each item [-].

    Returns
    -------
    float
        Brier score [-] in [0, 1].

    References
    ----------
    Brier (1950), eq. 1 (two-category form divided by 2, as ``sklearn.metrics.brier_score_loss``).
    """
    y = np.asarray(y_true, dtype="float64")
    q = np.asarray(p, dtype="float64")
    w = _weights(sample_weight, y.shape)
    if w is None:
        return float(np.mean((q - y) ** 2))
    return float(np.average((q - y) ** 2, weights=w))


@expects(y_true="array1d", p="array1d")
def reliability_curve(y_true, p, *, n_bins: int = 10, sample_weight=None) -> dict:
    """Reliability (calibration) curve in equal-width probability bins.

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    p : array_like
        Predicted probability [-] in [0, 1] (finite).
    n_bins : int
        Number of equal-width bins on [0, 1] [-].  Bin ``i`` holds
        ``edges[i] < p <= edges[i+1]`` (bin 0 also 0): a value on an inner edge goes to
        the lower bin, the rule of :func:`sklearn.calibration.calibration_curve`
        (``np.searchsorted(edges[1:-1], p)``).
    sample_weight : array_like, optional
        Weight of each item [-].

    Returns
    -------
    dict
        ``bin_edges``, and per bin ``count`` (items), ``weight`` (summed weight; the count
        without weights), ``mean_predicted`` and ``observed_frequency`` (weighted means;
        None for bins with no weight), JSON-ready.

    References
    ----------
    Murphy & Winkler (1977); Niculescu-Mizil & Caruana (2005), Sect. 4.
    """
    y = np.asarray(y_true, dtype="float64")
    q = np.asarray(p, dtype="float64")
    w = _weights(sample_weight, y.shape)
    w = np.ones(y.shape) if w is None else w
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], q)
    cnt = np.bincount(ids, minlength=n_bins)
    sw = np.bincount(ids, weights=w, minlength=n_bins)
    sp = np.bincount(ids, weights=w * q, minlength=n_bins)
    sy = np.bincount(ids, weights=w * y, minlength=n_bins)
    ok = sw > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        mp = np.where(ok, sp / np.where(ok, sw, 1.0), np.nan)
        of = np.where(ok, sy / np.where(ok, sw, 1.0), np.nan)
    return {"bin_edges": edges.tolist(), "count": cnt.tolist(),
            "weight": [float(v) for v in sw],
            "mean_predicted": [None if np.isnan(v) else float(v) for v in mp],
            "observed_frequency": [None if np.isnan(v) else float(v) for v in of]}


@expects(y_true="array1d", p="array1d")
def binary_metrics(y_true, p, *, sample_weight=None, threshold: float = 0.5,
                   n_bins: int = 10, probabilistic: bool = True, curves: bool = True) -> dict:
    """All skill metrics of a map or model at labelled points.

    Confusion matrix, accuracy, sensitivity, specificity, balanced accuracy, Cohen's kappa,
    ROC AUC, Brier score, and (``curves=True``) the ROC and reliability curves.

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    p : array_like
        Predicted probability [-] (or a 0/1 class for categorical maps).
    sample_weight : array_like, optional
        Weight of each label [-]; every metric is then weighted (as scikit-learn's
        ``sample_weight``); ``n``, ``n_pos`` and ``n_neg`` stay counts.
    threshold : float
        Presence when ``p >= threshold`` [-] (fixed, never tuned on test data).
    n_bins : int
        Reliability bins [-].
    probabilistic : bool
        Whether ``p`` is a probability in [0, 1] (Brier and reliability only then).
    curves : bool
        Include the ``roc`` and ``reliability`` curves.

    Returns
    -------
    dict
        ``n, n_pos, n_neg, tp, fp, fn, tn, accuracy, sensitivity, specificity,
        balanced_accuracy, kappa, auc, brier, threshold`` and, with ``curves``, ``roc``
        and ``reliability`` (None where undefined).

    References
    ----------
    Cohen (1960); Hanley & McNeil (1982); Brier (1950); Brodersen et al. (2010);
    Niculescu-Mizil & Caruana (2005).
    """
    y = np.asarray(y_true).astype(int)
    q = np.asarray(p, dtype="float64")
    if y.shape != q.shape:
        raise DataError(f"labels and predictions differ in length ({y.size} vs {q.size})",
                        field="p", fix="give one prediction per label")
    w = _weights(sample_weight, y.shape)
    c = confusion_counts(y, q >= threshold, sample_weight=w)
    n = y.size
    total = c["tp"] + c["fp"] + c["fn"] + c["tn"]
    sens = c["tp"] / (c["tp"] + c["fn"]) if (c["tp"] + c["fn"]) else None
    spec = c["tn"] / (c["tn"] + c["fp"]) if (c["tn"] + c["fp"]) else None
    out = {
        "n": int(n), "n_pos": int(y.sum()), "n_neg": int(n - y.sum()), **c,
        "accuracy": (c["tp"] + c["tn"]) / total if total else None,
        "sensitivity": sens, "specificity": spec,
        "balanced_accuracy": (sens + spec) / 2 if sens is not None and spec is not None else None,
        "kappa": cohen_kappa(c["tp"], c["fp"], c["fn"], c["tn"]),
        "auc": roc_auc(y, q, sample_weight=w) if n else None,
        "brier": brier_score(y, q, sample_weight=w) if (probabilistic and n) else None,
        "threshold": threshold,
    }
    if curves:
        out["roc"] = roc_curve(y, q, sample_weight=w) if out["auc"] is not None else None
        out["reliability"] = (reliability_curve(y, q, n_bins=n_bins, sample_weight=w)
                              if (probabilistic and n) else None)
    return out
