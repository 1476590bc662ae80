"""The level of the PZI: which labels its calibration rests on.

Why
    A calibrator fitted on every label returns the labels' weighted prevalence.  Rock glacier
    fronts are not a random sample of the landscape: they exist only on coarse debris, whose
    ground is colder than the rest, so a label mix dominated by them sets the whole map's
    level too high (on the ttop sample region the calibrated PZI returns 0.83 where the
    landscape holds 0.66).  In-situ evidence -- boreholes and GTN-P / PERMOS temperature
    records (:func:`permafrost.transfer.evidence_sources`) -- is drilled where the road runs,
    not where permafrost is, so within a given model score it finds permafrost as often as
    the landscape does: it can set the level where rock glaciers cannot.

The rule (:func:`fit_level_calibration`)
    1. The configured calibrator (``sigmoid`` or ``isotonic``, :mod:`permafrost.calibration`)
       is fitted on the out-of-fold raw predictions of *all* labels: its *shape* (how fast
       the PZI rises with the model's score) uses every label.
    2. Its *level* -- one offset ``delta`` on the logit of the calibrated probability,
       ``logit p' = logit p + delta`` -- is fitted by weighted maximum likelihood on the
       out-of-fold predictions of the in-situ labels alone, when there are at least
       :data:`~permafrost.defaults.MIN_IN_SITU_LABELS` of them with at least
       :data:`~permafrost.defaults.MIN_IN_SITU_PER_CLASS` of each class ("auto"); else the
       level stays the label mix's, and a warning says so and gives the label prevalence
       the map inherits.  At the optimum the weighted mean PZI over the in-situ labels
       equals their weighted prevalence (the score equation of the offset).

    This is "recalibration in the large", the first and most robust step of updating a
    logistic prediction model to a new population (Steyerberg et al. 2004; Janssen et al.
    2008; Steyerberg 2009, ch. 20): with a small update set, re-estimating the intercept
    alone beats re-estimating intercept and slope, whose slope is too noisy.  Here the slope
    would also be biased: boreholes along a road sample a narrow band of the covariates and
    speak for their own ground, so a Platt slope fitted on them alone can flatten the map
    (on the ttop region the model ranks the held-out boreholes at chance, AUC 0.49).  For
    the same reason an ``isotonic`` calibrator is never fitted on the in-situ labels alone:
    its step function would overfit tens of points (Niculescu-Mizil & Caruana 2005); its
    knots are fitted on all labels and moved by the offset (``y' = expit(logit y + delta)``,
    still non-decreasing).  A ``sigmoid`` calibrator takes the offset in its intercept
    (``b' = b + delta``).  Either way the stored calibration has the form
    :mod:`permafrost.calibration` applies, so a model saved before this rule still loads.

The order with a given prevalence
    A landscape prevalence given by the user (``train.prevalence``) still wins: the PZI is
    moved by Bayes' rule on the odds (:func:`permafrost.calibration.prior_shift`) *from* the
    prevalence of the set the level rests on (the in-situ labels' or the label mix's) *to*
    the given one (:func:`with_given_prevalence`).  So: shape from all labels, then level
    from in-situ labels (if enough), then the given prevalence (if any).

The option ``level`` (``train.level``, ``permafrost train --level``)
    ``auto`` (default): the rule above; ``in-situ``: the in-situ labels set the level even
    below the thresholds (a warning says they are few; an error when a class is missing);
    ``labels``: the label mix sets it (the behaviour before this rule).

Thresholds (:mod:`permafrost.defaults`)
    ``MIN_IN_SITU_LABELS = 30``: the offset is one number; its standard error on the
    probability scale is about ``sqrt(pi (1 - pi) / n)``, 0.08 at ``pi = 0.75`` and
    ``n = 30`` -- below the 0.1 to which the issue asks the mean PZI per surface to be
    right.  ``MIN_IN_SITU_PER_CLASS = 5``: five events per estimated parameter, the lower
    bound at which Vittinghoff & McCulloch (2007) find logistic estimates acceptable; with a
    single class the offset has no finite maximum.

References
----------
Steyerberg, E. W., Borsboom, G. J., van Houwelingen, H. C., Eijkemans, M. J. & Habbema,
J. D. (2004). Validation and updating of predictive logistic regression models: a study on
sample size and shrinkage. Statistics in Medicine 23, 2567-2586.

Janssen, K. J. M., Moons, K. G. M., Kalkman, C. J., Grobbee, D. E. & Vergouwe, Y. (2008).
Updating methods improved the performance of a clinical prediction model in new patients.
Journal of Clinical Epidemiology 61, 76-86.

Steyerberg, E. W. (2009). Clinical Prediction Models. Springer, ch. 20 (updating).

Vittinghoff, E. & McCulloch, C. E. (2007). Relaxing the rule of ten events per variable in
logistic and Cox regression. American Journal of Epidemiology 165, 710-718.

Niculescu-Mizil, A. & Caruana, R. (2005). Predicting good probabilities with supervised
learning. Proc. ICML 2005, 625-632.

Saerens, M., Latinne, P. & Decaestecker, C. (2002). Adjusting the outputs of a classifier to
new a priori probabilities: a simple procedure. Neural Computation 14, 21-41.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

from permafrost.calibration import fit_calibration
from permafrost.defaults import CALIBRATION, MIN_IN_SITU_LABELS, MIN_IN_SITU_PER_CLASS
from permafrost.errors import DataError, ModelError

__all__ = ["LEVELS", "IN_SITU_SOURCES", "LevelFit", "in_situ_mask", "uses_in_situ",
           "fit_level_calibration", "with_given_prevalence", "fold_calibrator"]

#: the choices of the ``level`` option
LEVELS = ("auto", "in-situ", "labels")
#: evidence sources that measure the ground where they stand (permafrost.transfer)
IN_SITU_SOURCES = ("borehole", "gtnp")

_IN_SITU = "in-situ (boreholes, GTN-P)"
_MIX = "all labels (label mix)"
_EPS = 1e-6
_MAX_OFFSET = 20.0  # logit units; an offset this large means one class only


@dataclass
class LevelFit:
    """The calibration parameters (:mod:`permafrost.calibration` form) and the ``level``
    record: what the PZI's level rests on (JSON-ready)."""

    params: dict
    level: dict


def in_situ_mask(sources) -> np.ndarray:
    """True where a label's evidence source (:func:`permafrost.transfer.evidence_sources`)
    is in-situ: ``borehole`` or ``gtnp``."""
    return np.isin(np.asarray(sources, dtype=object).astype(str), IN_SITU_SOURCES)


def uses_in_situ(y, sources, *, level: str = "auto", min_labels: int = MIN_IN_SITU_LABELS,
                 min_per_class: int = MIN_IN_SITU_PER_CLASS) -> bool:
    """Whether the in-situ labels set the level: always for ``in-situ``, never for
    ``labels``, for ``auto`` when there are at least ``min_labels`` of them with at least
    ``min_per_class`` of each class (module docstring, "Thresholds")."""
    if level not in LEVELS:
        raise ModelError(f"unknown level {level!r}", field="level",
                         fix=f"use one of {list(LEVELS)}")
    if level != "auto":
        return level == "in-situ"
    y = np.asarray(y, dtype=np.float64)
    sel = in_situ_mask(sources)
    n, npos = int(sel.sum()), int(y[sel].sum())
    return n >= min_labels and min(npos, n - npos) >= min_per_class


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def _expit(z):
    return 1.0 / (1.0 + np.exp(-z))


def _shifted(params: dict, delta: float) -> dict:
    """``params`` with the logit offset ``delta`` folded in (sigmoid: the intercept;
    isotonic: the knots' values, which stay non-decreasing)."""
    out = dict(params)
    if params["method"] == "sigmoid":
        out["b"] = float(params["b"] + delta)
    elif params["method"] == "isotonic":
        ky = np.asarray(params["y"], dtype=np.float64)
        out["y"] = [float(v) for v in np.clip(_expit(_logit(ky) + delta), 0.0, 1.0)]
    else:
        raise ModelError("calibration 'none' has no level to fit", field="level",
                         fix="use calibration 'sigmoid' or 'isotonic', or level 'labels'")
    return out


def _calibrated(params: dict, p) -> np.ndarray:
    """Calibrated probabilities in float64 (as :func:`permafrost.calibration.
    apply_calibration`, without the cast to float32)."""
    p = np.asarray(p, dtype=np.float64)
    if params["method"] == "sigmoid":
        return _expit(params["a"] * _logit(p) + params["b"])
    return np.interp(p, np.asarray(params["x"], np.float64), np.asarray(params["y"], np.float64))


def _fit_offset(params: dict, p, y, w) -> float:
    """The logit offset [-] that maximises the weighted likelihood of ``y`` under the shifted
    calibrator (recalibration in the large, Steyerberg 2009, ch. 20)."""
    if params["method"] == "sigmoid":
        z = params["a"] * _logit(p) + params["b"]

        def loss(d):
            return float(np.sum(w * (np.logaddexp(0.0, z + d) - y * (z + d))))
    else:
        def loss(d):
            q = np.clip(_calibrated(_shifted(params, d), p), _EPS, 1.0 - _EPS)
            return float(-np.sum(w * (y * np.log(q) + (1.0 - y) * np.log1p(-q))))
    res = minimize_scalar(loss, bounds=(-_MAX_OFFSET, _MAX_OFFSET), method="bounded",
                          options={"xatol": 1e-7})
    return float(res.x)


def _counts(y, w, sel) -> tuple[int, int, float | None]:
    n = int(sel.sum())
    npos = int(y[sel].sum())
    ws = float(w[sel].sum())
    prev = float(np.sum(w[sel] * y[sel]) / ws) if ws > 0 else None
    return n, npos, prev


def fit_level_calibration(raw, y, sources, *, method: str = CALIBRATION, level: str = "auto",
                          sample_weight=None, sites=None,
                          min_labels: int = MIN_IN_SITU_LABELS,
                          min_per_class: int = MIN_IN_SITU_PER_CLASS) -> LevelFit:
    """Fit the calibrator and choose what its level rests on (module docstring, "The rule").

    Parameters
    ----------
    raw : array-like of float, shape (n,)
        Out-of-fold raw probabilities [-] of every label.
    y : array-like of {0, 1}
        Labels [-].
    sources : array-like of str
        Evidence source per label (:func:`permafrost.transfer.evidence_sources`).
    method : {"sigmoid", "isotonic", "none"}
        Calibrator (:func:`permafrost.calibration.fit_calibration`); ``none`` has no level
        to fit (the raw scores refer to balanced classes) and is recorded as such.
    level : {"auto", "in-situ", "labels"}
        What sets the level (module docstring).
    sample_weight : array-like, optional
        Label weights [-].
    sites : array-like, optional
        Site id per label (:func:`permafrost.cv.site_ids`): the number of in-situ sites is
        recorded (boreholes of one site repeat one piece of evidence).
    min_labels, min_per_class : int
        In-situ labels needed in all and of each class for ``auto`` to use them.

    Returns
    -------
    LevelFit
        ``params`` (stored with the model) and ``level``: ``{"rests_on", "choice", "n",
        "n_positive", "n_sites", "prevalence_of_set", "label_prevalence", "offset_logit",
        "in_situ": {"n", "n_positive", "prevalence", "need"}, "rule", "warning"}``.

    References
    ----------
    Steyerberg et al. (2004); Janssen et al. (2008); Steyerberg (2009), ch. 20.
    """
    use_in_situ = uses_in_situ(y, sources, level=level, min_labels=min_labels,
                               min_per_class=min_per_class)
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(raw) if sample_weight is None else np.asarray(sample_weight, np.float64)
    ok = np.isfinite(raw)
    insitu = in_situ_mask(sources) & ok
    everything = np.ones(len(y), dtype=bool)
    n_all, npos_all, label_prev = _counts(y, w, everything)
    n_is, npos_is, prev_is = _counts(y, w, insitu)
    nneg_is = n_is - npos_is
    enough = uses_in_situ(y, sources, level="auto", min_labels=min_labels,
                          min_per_class=min_per_class)
    need = (f"{min_labels} with at least {min_per_class} of each class "
            "(permafrost.defaults.MIN_IN_SITU_LABELS, MIN_IN_SITU_PER_CLASS)")
    n_sites = None
    if sites is not None and n_is:
        n_sites = int(len(set(np.asarray(sites, dtype=object)[insitu].tolist())))
    in_situ = {"n": n_is, "n_positive": npos_is, "prevalence": prev_is, "n_sites": n_sites,
               "need": need}
    params = fit_calibration(raw, y, method=method, sample_weight=w)
    if method == "none":
        return LevelFit(params, {
            "rests_on": "uncalibrated raw scores (classes balanced: prevalence 0.5)",
            "choice": level, "n": n_all, "n_positive": npos_all, "n_sites": None,
            "prevalence_of_set": 0.5, "label_prevalence": label_prev, "offset_logit": 0.0,
            "in_situ": in_situ, "rule": "calibration 'none': the raw scores refer to balanced "
            "classes, no level is fitted", "warning": None})
    warning = None
    if use_in_situ:
        if min(npos_is, nneg_is) < 1:
            raise DataError(
                f"level 'in-situ' needs in-situ labels of both classes: {n_is} in-situ labels "
                f"({npos_is} permafrost, {nneg_is} none)", field="level",
                fix="give boreholes or GTN-P records of both classes, or use level 'auto' "
                    "or 'labels'")
        delta = _fit_offset(params, raw[insitu], y[insitu], w[insitu])
        params = _shifted(params, delta)
        rests_on, n, npos, prev = _IN_SITU, n_is, npos_is, prev_is
        rule = (f"{method} calibrator fitted on the out-of-fold predictions of all {n_all} "
                f"labels (its shape); its level (a logit offset of {delta:+.3f}) fitted on the "
                f"{n_is} in-situ labels alone (recalibration in the large, Steyerberg 2009): "
                + ("chosen by the user" if level == "in-situ" else f"auto: at least {need}")
                + ("" if method == "sigmoid" else
                   "; the isotonic steps are not refitted on the in-situ labels, which are too "
                   "few for a step function (Niculescu-Mizil & Caruana 2005), only moved"))
        if not enough:
            warning = (f"the PZI's level rests on only {n_is} in-situ labels ({npos_is} "
                       f"permafrost, {nneg_is} none; auto needs {min_labels} with "
                       f"{min_per_class} of each class): level 'in-situ' was asked for, "
                       "its uncertainty is large")
    else:
        delta = 0.0
        rests_on, n, npos, prev = _MIX, n_all, npos_all, label_prev
        if level == "labels":
            rule = (f"{method} calibrator fitted on the out-of-fold predictions of all "
                    f"{n_all} labels: the level is the label mix's, chosen by the user")
        else:
            rule = (f"{method} calibrator fitted on the out-of-fold predictions of all "
                    f"{n_all} labels: too few in-situ labels to set the level (need {need})")
            warning = (f"the PZI's level rests on the label mix (weighted prevalence "
                       f"{label_prev:.2f}, which the map inherits), not on in-situ evidence: "
                       f"{n_is} in-situ labels ({npos_is} permafrost, {nneg_is} none), need "
                       f"{min_labels} with {min_per_class} of each class; add boreholes or "
                       "GTN-P records, or give train.prevalence (prevalence= in the "
                       "library) from an independent source")
    return LevelFit(params, {
        "rests_on": rests_on, "choice": level, "n": n, "n_positive": npos,
        "n_sites": n_sites if use_in_situ else None, "prevalence_of_set": prev,
        "label_prevalence": label_prev, "offset_logit": delta, "in_situ": in_situ,
        "rule": rule, "warning": warning})


def with_given_prevalence(fit: LevelFit, prevalence: float | None,
                          source: str | None = None) -> LevelFit:
    """Move the level to a landscape prevalence given by the user (it wins over the level's
    set): ``prior_shift`` from the set's prevalence to ``prevalence`` (Saerens et al. 2002,
    eq. 2.4; :func:`permafrost.calibration.prior_shift`).  ``None``: ``fit`` unchanged."""
    if prevalence is None:
        return fit
    if not 0.0 < prevalence < 1.0:
        raise ModelError(f"prevalence must lie in (0, 1), got {prevalence}",
                         field="prevalence", fix="give the landscape's share of permafrost")
    lev = dict(fit.level)
    params = dict(fit.params)
    src = source or "not given"
    # (calibration "none": from the balanced prior 0.5 the raw scores refer to)
    params["prior_shift"] = {"from": float(lev["prevalence_of_set"]),
                             "to": float(prevalence), "source": src}
    lev["calibrated_on"] = lev["rests_on"]
    lev["rests_on"] = f"given prevalence {prevalence:.3f} ({src})"
    lev["given_prevalence"] = float(prevalence)
    lev["rule"] = (lev["rule"] + f"; then moved from that set's prevalence "
                   f"{lev['prevalence_of_set']:.3f} to the given landscape prevalence "
                   f"{prevalence:.3f} (Saerens et al. 2002): a given prevalence wins")
    lev["warning"] = None
    return LevelFit(params, lev)


def fold_calibrator(y, sources, *, method: str, rests_on_in_situ: bool,
                    sample_weight=None) -> Callable:
    """The calibrator of one CV fold, fitted as the final one is (same set choice), for the
    cross-fitted out-of-fold predictions: ``f(raw, mask) -> params`` fitted on the labels
    in ``mask``.  A fold whose in-situ labels outside it lack a class keeps the label mix's
    level (the offset has no finite maximum there)."""
    y = np.asarray(y, dtype=np.float64)
    w = (np.ones_like(y) if sample_weight is None
         else np.asarray(sample_weight, dtype=np.float64))
    insitu = in_situ_mask(sources)

    def fit(raw, mask):
        mask = np.asarray(mask, dtype=bool)
        params = fit_calibration(raw[mask], y[mask], method=method, sample_weight=w[mask])
        if not rests_on_in_situ or method == "none":
            return params
        sel = mask & insitu & np.isfinite(raw)
        if sel.sum() == 0 or y[sel].min() == y[sel].max():
            return params
        return _shifted(params, _fit_offset(params, raw[sel], y[sel], w[sel]))

    return fit
