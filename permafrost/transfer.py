"""Validation that tests transfer: skill per evidence source, leave-one-source-out, and the
warning when held-out skill is at chance or far below the cross-validated skill.

Why
    Rock glacier fronts speak for coarse debris and boreholes cluster along roads: the
    evidence sources sample different parts of the landscape.  A spatial CV that mixes
    them can score well while a model learnt from one source does not transfer to the
    ground the other speaks for (Roberts et al. 2017; Meyer & Pebesma 2021).  So skill is
    scored *per source* (on the out-of-fold predictions and on the held-out boreholes),
    each source is predicted by a model trained on the others only (leave-one-source-out,
    the "leave-one-group-out" design of Roberts et al. 2017, Sect. "Blocking"), and the
    held-out skill is compared with the CV skill (:func:`transfer_check`).

Evidence sources (:func:`evidence_sources`)
    ``rock_glacier`` (points of rock glacier outlines), ``gtnp`` (boreholes whose label
    was derived from ground-temperature records, GTN-P / PERMOS: ``evidence`` starting with
    "temperature") and ``borehole`` (presence tables).

Intervals
    Percentile bootstrap, resampled by site (:func:`permafrost.validation.bootstrap_metrics`;
    sites from :func:`permafrost.cv.site_ids`).

The warning rule (:func:`transfer_check`)
    The held-out AUC is *at chance* when its bootstrap interval holds 0.5, and *far below*
    the CV skill when the spatial-CV AUC (fold mean) exceeds it by more than
    :data:`MAX_AUC_GAP` (0.15) or lies above its interval.  0.15 is the step between the
    conventional AUC classes of Hosmer & Lemeshow (2000, p. 162: 0.7 acceptable, 0.8
    excellent) taken with some margin: a drop that large changes what the map can be used
    for.  Either fires a warning.

References
----------
Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal, spatial,
hierarchical, or phylogenetic structure. Ecography 40, 913-929.
Meyer, H. & Pebesma, E. (2021). Predicting into unknown space? Estimating the area of
applicability of spatial prediction models. Methods Ecol. Evol. 12, 1620-1633.
Hosmer, D. W. & Lemeshow, S. (2000). Applied Logistic Regression, 2nd ed. Wiley.
Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from permafrost.defaults import BOOTSTRAP_RESAMPLES, CI_LEVEL
from permafrost.metrics import binary_metrics
from permafrost.validation import bootstrap_metrics

__all__ = ["MAX_AUC_GAP", "SOURCES", "evidence_sources", "skill_by_source", "attach_transfer",
           "leave_one_source_out", "transfer_check"]

log = logging.getLogger(__name__)

#: largest accepted drop from the spatial-CV AUC to the held-out AUC [-] (module docstring)
MAX_AUC_GAP = 0.15
#: the evidence sources, in report order
SOURCES = ("rock_glacier", "borehole", "gtnp")
_SCORED = ("auc", "balanced_accuracy", "kappa", "brier")


def evidence_sources(points) -> np.ndarray:
    """The evidence source of each label point: ``rock_glacier``, ``borehole`` or ``gtnp``.

    Parameters
    ----------
    points : pandas.DataFrame
        Label points with ``source`` (rock_glacier / borehole) and optionally ``evidence``
        (``temperature (...)`` for labels derived from GTN-P / PERMOS records), as
        :func:`permafrost.labels.build_labels` writes them.  Without ``source``, every
        point is a ``borehole`` (a presence table).

    Returns
    -------
    ndarray of str
    """
    n = len(points)
    if "source" not in points.columns:
        return np.full(n, "borehole", dtype=object)
    src = points["source"].astype(str).to_numpy(dtype=object)
    if "evidence" in points.columns:
        ev = points["evidence"].astype(str).str.lower().to_numpy(dtype=object)
        temp = np.array([e.startswith("temperature") for e in ev], dtype=bool)
        src = np.where((src == "borehole") & temp, "gtnp", src)
    return src.astype(object)


def _order(sources) -> list[str]:
    present = list(dict.fromkeys(str(s) for s in sources))
    return [s for s in SOURCES if s in present] + sorted(s for s in present if s not in SOURCES)


def skill_by_source(y, p, sources, *, sites=None, threshold: float = 0.5,
                    probabilistic: bool = True, n_resamples: int = BOOTSTRAP_RESAMPLES,
                    level: float = CI_LEVEL, seed: int = 0) -> dict:
    """Skill of predictions ``p`` on each evidence source, with bootstrap intervals.

    Parameters
    ----------
    y : array-like of {0, 1}
        Labels [-].
    p : array-like
        Predicted probabilities [-] (e.g. out-of-fold calibrated PZI).
    sources : array-like of str
        Evidence source per point (:func:`evidence_sources`).
    sites : array-like, optional
        Site id per point (the bootstrap's resampling unit; default each point).
    threshold : float
        Presence where ``p >= threshold`` [-].
    probabilistic : bool
        Whether ``p`` is a probability (Brier score only then).
    n_resamples, level, seed : int, float, int
        Bootstrap (:func:`permafrost.validation.bootstrap_metrics`).

    Returns
    -------
    dict
        ``{source: {"n", "n_pos", "n_neg", "auc", "balanced_accuracy", "kappa", "brier",
        "ci": {metric: {"low", "high"}}, "bootstrap_unit", "note"}}``.  A source with one
        class only has no AUC (``None``, and a note).

    References
    ----------
    Hanley & McNeil (1982) (AUC); Efron & Tibshirani (1993), Ch. 13.
    """
    y = np.asarray(y).astype(int)
    q = np.asarray(p, dtype=np.float64)
    src = np.asarray(sources, dtype=object)
    st = np.arange(len(y)) if sites is None else np.asarray(sites)
    out = {}
    for s in _order(src):
        sel = (src == s) & np.isfinite(q)
        ys, qs = y[sel], q[sel]
        n_pos = int(ys.sum())
        e: dict[str, Any] = {"n": int(sel.sum()), "n_pos": n_pos,
                             "n_neg": int(sel.sum() - n_pos)}
        if e["n"] == 0:
            continue
        m = binary_metrics(ys, qs, threshold=threshold, probabilistic=probabilistic,
                           curves=False)
        e.update({k: m.get(k) for k in _SCORED})
        if n_pos == 0 or n_pos == e["n"]:
            e.update({"auc": None, "ci": {}, "bootstrap_unit": None,
                      "note": "one class only: AUC, balanced accuracy and kappa undefined"})
        else:
            b = bootstrap_metrics(ys, qs, threshold=threshold, probabilistic=probabilistic,
                                  sites=st[sel], n_resamples=n_resamples, level=level,
                                  seed=seed)
            e["ci"] = {k: {"low": b["intervals"][k]["low"], "high": b["intervals"][k]["high"]}
                       for k in _SCORED}
            e["bootstrap_unit"] = b["unit"]
            e["note"] = b["note"]
        out[s] = e
    return out


def leave_one_source_out(fit_predict: Callable, y, sources, *, sites=None,
                         min_per_class: int = 5, threshold: float = 0.5,
                         n_resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
                         seed: int = 0) -> list[dict]:
    """Train on every source but one and score the one left out, for each source.

    With rock glaciers and boreholes only, this is "train on rock glaciers, score the
    boreholes" and the other way round.  A source is skipped (with the reason) when the
    others hold fewer than ``min_per_class`` labels of either class, or it holds one class
    only (no AUC).

    Parameters
    ----------
    fit_predict : callable
        ``fit_predict(train_idx, test_idx) -> probabilities at test_idx`` (a model fitted
        on ``train_idx`` only; its own probabilities, not calibrated on the labels: the AUC
        does not depend on a monotone calibration).
    y : array-like of {0, 1}
        Labels [-].
    sources : array-like of str
        Evidence source per point (:func:`evidence_sources`).
    sites : array-like, optional
        Site id per point (bootstrap unit).
    min_per_class : int
        Fewest training labels of each class [-].
    threshold, n_resamples, level, seed
        As :func:`skill_by_source`.

    Returns
    -------
    list of dict
        One entry per source: ``held_out``, ``trained_on`` (list), ``n_train``, and the
        scores of :func:`skill_by_source` (``auc``, ``ci``, ...) or ``skipped`` (reason).

    References
    ----------
    Roberts et al. (2017), Sect. "Blocking" (leave-one-group-out by a structuring factor).
    """
    y = np.asarray(y).astype(int)
    src = np.asarray(sources, dtype=object)
    st = np.arange(len(y)) if sites is None else np.asarray(sites)
    out = []
    order = _order(src)
    for s in order:
        te = np.flatnonzero(src == s)
        tr = np.flatnonzero(src != s)
        entry = {"held_out": s, "trained_on": [o for o in order if o != s],
                 "n_train": int(tr.size), "n_test": int(te.size)}
        n1 = int(y[tr].sum())
        if min(n1, tr.size - n1) < min_per_class:
            entry["skipped"] = (f"the other sources hold {n1} permafrost and {tr.size - n1} "
                                f"no-permafrost labels (fewer than {min_per_class} of a class)")
        elif y[te].min() == y[te].max():
            entry["skipped"] = "the source left out holds one class only (no AUC)"
        else:
            p = np.asarray(fit_predict(tr, te), dtype=np.float64)
            sk = skill_by_source(y[te], p, src[te], sites=st[te], threshold=threshold,
                                 n_resamples=n_resamples, level=level, seed=seed)[s]
            entry.update(sk)
        out.append(entry)
    return out


def _ci_text(ci: Mapping | None) -> str:
    if not ci or ci.get("low") is None:
        return ""
    return f" [{ci['low']:.2f}, {ci['high']:.2f}]"


def transfer_check(cv_auc: float | None, heldout_auc: float | None,
                   heldout_ci: Mapping | None, *, max_gap: float = MAX_AUC_GAP) -> dict:
    """Does the held-out skill confirm the CV skill?  (The rule: module docstring.)

    Parameters
    ----------
    cv_auc : float or None
        Spatial-CV AUC (fold mean) [-].
    heldout_auc : float or None
        AUC on the held-out boreholes [-].
    heldout_ci : mapping or None
        Its bootstrap interval ``{"low", "high"}`` [-].
    max_gap : float
        Largest accepted ``cv_auc - heldout_auc`` [-].

    Returns
    -------
    dict
        ``cv_auc``, ``heldout_auc``, ``heldout_ci``, ``gap``, ``at_chance``, ``far_below``,
        ``rule`` and ``warnings`` (list of str, empty when the held-out skill holds).
    """
    lo = (heldout_ci or {}).get("low")
    hi = (heldout_ci or {}).get("high")
    at_chance = bool(lo is not None and hi is not None and lo <= 0.5 <= hi)
    gap = (None if cv_auc is None or heldout_auc is None else float(cv_auc - heldout_auc))
    far = bool(gap is not None and (gap > max_gap or (hi is not None and cv_auc > hi)))
    warnings = []
    held = ("n/a" if heldout_auc is None else f"{heldout_auc:.2f}") + _ci_text(heldout_ci)
    cv = "n/a" if cv_auc is None else f"{cv_auc:.2f}"
    if at_chance:
        warnings.append(f"held-out boreholes: AUC {held} holds 0.5, no better than chance "
                        f"(spatial-CV AUC {cv}); the map does not transfer to the ground "
                        "the held-out boreholes sample")
    if far:
        warnings.append(f"held-out AUC {held} is far below the spatial-CV AUC {cv} (drop "
                        f"{gap:.2f} > {max_gap:.2f}, or the CV AUC above the held-out "
                        "interval): the CV skill is optimistic for this map")
    return {"cv_auc": cv_auc, "heldout_auc": heldout_auc,
            "heldout_ci": dict(heldout_ci) if heldout_ci else None, "gap": gap,
            "at_chance": at_chance, "far_below": far, "max_gap": max_gap,
            "rule": ("warn when the held-out AUC's bootstrap interval holds 0.5 (chance), or "
                     f"when the spatial-CV AUC (fold mean) exceeds the held-out AUC by more "
                     f"than {max_gap} or lies above its interval"),
            "warnings": warnings}


def attach_transfer(result, cv: Mapping | None) -> dict:
    """Add the transfer section to a validation (:class:`permafrost.validation.ValidationResult`).

    The held-out skill is the model's AUC on every held-out borehole valid in the map
    (``boreholes.model_all``, with its bootstrap interval); the CV skill is the spatial-CV
    AUC (fold mean) of the model's metadata ``cv``.  The section also carries the model's
    out-of-fold skill per evidence source, its leave-one-source-out runs and the ranges of
    autocorrelation behind its CV block size, so that ``validation.json`` holds them side
    by side.  The warnings (:func:`transfer_check`) are logged.

    Parameters
    ----------
    result : ValidationResult
        The validation (its ``transfer`` is set).
    cv : mapping or None
        The model's ``metadata["cv"]`` (None: the held-out skill is checked for chance only).

    Returns
    -------
    dict
        The section (also ``result.transfer``).
    """
    cv = cv or {}
    bh = result.boreholes or {}
    model_all = bh.get("model_all") or {}
    held_ci = (model_all.get("ci") or {}).get("auc")
    cv_auc = (((cv.get("spatial") or {}).get("summary") or {}).get("auc") or {}).get("mean")
    check = transfer_check(cv_auc, model_all.get("auc"), held_ci)
    section = {
        **check,
        "heldout_by_source": ({"borehole": {
            "n": model_all.get("n"), "n_pos": model_all.get("n_pos"),
            "n_neg": model_all.get("n_neg"),
            **{k: model_all.get(k) for k in _SCORED},
            "ci": {k: (model_all.get("ci") or {}).get(k) for k in _SCORED}}}
            if model_all else {}),
        "heldout_note": "the held-out set is drawn from the borehole table only",
        "cv_by_source": (cv.get("per_source") or {}).get("scores"),
        "leave_one_source_out": (cv.get("leave_one_source_out") or {}).get("runs"),
        "block_size_m": cv.get("block_size_m"), "block_size_rule": cv.get("block_size_rule"),
        "autocorrelation": cv.get("autocorrelation"),
    }
    for w in check["warnings"]:
        log.warning("%s", w)
    result.transfer = section
    return section
