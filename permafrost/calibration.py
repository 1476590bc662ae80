"""Probability calibration: turn a classifier's raw scores into a probability of permafrost.

Two calibrators, both fitted on *out-of-fold* predictions (never on the data a model was
trained on) and both stored as plain numbers so that applying them needs no pickle and
runs on NumPy or CuPy arrays alike:

* ``isotonic`` -- a non-decreasing step function fitted by pool-adjacent-violators
  (Zadrozny & Elkan 2002), stored as increasing knots ``x``/``y`` and applied by linear
  interpolation (``xp.interp``), values outside the knots clamped to the end knots;
* ``sigmoid`` -- Platt scaling on the logit of the raw probability (Platt 1999):
  ``p_cal = 1 / (1 + exp(-(a * logit(p) + b)))``; increasing for ``a > 0``.  A fit that
  finds ``a < 0`` (the model ranks the labels the wrong way round out of fold) falls back
  to the best non-decreasing sigmoid, ``a = 0`` (a constant, as isotonic gives then), with
  a warning; a stored ``a < 0`` is refused.

References
----------
Platt, J. (1999). Probabilistic outputs for support vector machines and comparisons to
regularized likelihood methods. Advances in Large Margin Classifiers, 61-74.

Zadrozny, B. & Elkan, C. (2002). Transforming classifier scores into accurate multiclass
probability estimates. Proc. KDD 2002, 694-699.

Saerens, M., Latinne, P. & Decaestecker, C. (2002). Adjusting the outputs of a classifier
to new a priori probabilities: a simple procedure. Neural Computation 14, 21-41.

Elkan, C. (2001). The foundations of cost-sensitive learning. Proc. IJCAI 2001, 973-978.

An optional *prior shift* follows the calibrator: when the labels' mix of permafrost and
no permafrost is known to differ from the landscape's for reasons of sampling alone
(boreholes drilled where permafrost was expected), the calibrated probability is moved
from the labels' prevalence to a landscape prevalence given from an independent source,
``odds' = odds * [pi' / (1 - pi')] / [pi / (1 - pi)]`` (Saerens et al. 2002, eq. 2.4;
Elkan 2001, theorem 2).  It is off by default: see docs/method.md, "What the PZI means".

Niculescu-Mizil, A. & Caruana, R. (2005). Predicting good probabilities with supervised
learning. Proc. ICML 2005, 625-632.

The reliability curve that checks a calibration is :func:`permafrost.metrics.reliability_curve`.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy.optimize import minimize

from permafrost.backends import array_module_of
from permafrost.errors import ModelError

__all__ = [
    "CALIBRATION_METHODS",
    "fit_calibration",
    "apply_calibration",
    "validate_calibration",
    "prior_shift",
]

log = logging.getLogger(__name__)

CALIBRATION_METHODS = ("isotonic", "sigmoid", "none")
_EPS = 1e-6


def _logit(p, xp=np):
    p = xp.clip(p, _EPS, 1.0 - _EPS)
    return xp.log(p) - xp.log1p(-p)


def fit_calibration(p, y, *, method: str = "isotonic", sample_weight=None) -> dict:
    """Fit a calibrator on out-of-fold raw probabilities.

    Parameters
    ----------
    p : array-like of float, shape (n,)
        Raw (uncalibrated) probabilities [-], out of fold.
    y : array-like of {0, 1}, shape (n,)
        Observed labels [-].
    method : {"isotonic", "sigmoid", "none"}
        Calibrator (see module docstring).
    sample_weight : array-like of float, optional
        Label weights [-] (the *label* weights, not class-balancing weights: a
        calibrated probability returns the labels' weighted prevalence, see
        :func:`prior_shift` for moving it to a landscape's).

    Returns
    -------
    dict
        JSON-ready parameters: ``{"method": "isotonic", "x": [...], "y": [...]}``,
        ``{"method": "sigmoid", "a": float, "b": float}`` or ``{"method": "none"}``.

    References
    ----------
    Platt (1999); Zadrozny & Elkan (2002), see module docstring.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    w = np.ones_like(p) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if method not in CALIBRATION_METHODS:
        raise ModelError(f"unknown calibration method {method!r}", field="calibration",
                         fix=f"use one of {list(CALIBRATION_METHODS)}")
    if method == "none":
        return {"method": "none"}
    ok = np.isfinite(p)
    p, y, w = p[ok], y[ok], w[ok]
    if method == "isotonic":
        from sklearn.isotonic import IsotonicRegression  # noqa: PLC0415

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
        iso.fit(p, y, sample_weight=w)
        xs = np.asarray(iso.X_thresholds_, dtype=np.float64)
        ys = np.asarray(iso.y_thresholds_, dtype=np.float64)
        return {"method": "isotonic", "x": [float(v) for v in xs], "y": [float(v) for v in ys]}
    f = _logit(p)

    def loss(ab):
        a, b = ab
        z = a * f + b
        # weighted log-loss, numerically stable
        nll = np.sum(w * (np.logaddexp(0.0, z) - y * z))
        s = 1.0 / (1.0 + np.exp(-z))
        g = w * (s - y)
        return nll, np.array([np.sum(g * f), np.sum(g)])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    a, b = (float(v) for v in res.x)
    if a < 0:
        # the raw scores rank the labels the wrong way round out of fold: a broken model.
        # Fall back as isotonic (fitted non-decreasing) does: the best non-decreasing
        # sigmoid, which for a convex loss with its minimum at a < 0 lies at a = 0, the
        # constant at the labels' weighted prevalence
        prevalence = float(np.sum(w * y) / np.sum(w))
        log.warning("sigmoid calibration fitted a decreasing map (a = %.3g): the model's "
                    "out-of-fold scores rank the labels the wrong way round; calibrated to "
                    "the constant %.3f (the labels' prevalence) instead", a, prevalence)
        a, b = 0.0, float(_logit(prevalence))
    if not (math.isfinite(a) and math.isfinite(b)):
        raise ModelError(f"sigmoid calibration did not converge (a = {a}, b = {b})",
                         field="calibration", fix="use calibration 'isotonic', or check that "
                         "the labels hold both classes in every fold")
    return {"method": "sigmoid", "a": a, "b": b}


def _is_real(v) -> bool:
    """A finite int or float (not a bool, not NaN or inf)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_calibration(params: dict, *, path=None) -> dict:
    """Check stored calibration parameters; raise :class:`ModelError` when unusable.

    Both calibrators must be non-decreasing maps, as :func:`fit_calibration` fits them:
    isotonic knots ``x`` and ``y`` finite, in [0, 1] and non-decreasing; the sigmoid's
    slope ``a >= 0`` (``a > 0`` increasing, ``a = 0`` the constant that a fit falls back to)
    and ``a``, ``b`` finite.  A decreasing calibration would turn the model's ranking upside
    down: refused.
    """
    method = params.get("method") if isinstance(params, dict) else None
    if method not in CALIBRATION_METHODS:
        raise ModelError(f"unknown or missing calibration method {method!r}", path=path,
                         field="method", fix="retrain the model with `permafrost train`")
    if method == "isotonic":
        x, y = params.get("x"), params.get("y")
        if (not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y)
                or len(x) < 1):
            raise ModelError("isotonic knots x/y missing or of different lengths", path=path,
                             field="x", fix="retrain the model")
        for k, v in (("x", x), ("y", y)):
            if not all(_is_real(t) and 0.0 <= t <= 1.0 for t in v):
                raise ModelError(f"isotonic knots {k!r} must be probabilities, finite numbers "
                                 "in [0, 1]", path=path, field=k, fix="retrain the model")
            if np.any(np.diff(np.asarray(v, dtype=np.float64)) < 0):
                raise ModelError(f"isotonic knots {k!r} are not increasing (a calibration "
                                 "must not reverse the model's ranking)", path=path, field=k,
                                 fix="retrain the model")
    elif method == "sigmoid":
        for k in ("a", "b"):
            if not _is_real(params.get(k)):
                raise ModelError(f"sigmoid parameter {k!r} missing or not a finite number",
                                 path=path, field=k, fix="retrain the model")
        if params["a"] < 0:
            raise ModelError(f"sigmoid slope a = {params['a']} < 0 is a decreasing "
                             "calibration: it would turn the model's ranking upside down",
                             path=path, field="a", fix="retrain the model")
    shift = params.get("prior_shift")
    if shift is not None:
        ok = isinstance(shift, dict) and all(
            isinstance(shift.get(k), (int, float)) and 0.0 < shift[k] < 1.0 for k in ("from", "to"))
        if not ok:
            raise ModelError("prior_shift needs prevalences 'from' and 'to' in (0, 1)",
                             path=path, field="prior_shift", fix="retrain the model")
    return params


def prior_shift(p, prevalence_from: float, prevalence_to: float):
    """Move probabilities from one class prevalence to another (NumPy or CuPy).

    Parameters
    ----------
    p : ndarray
        Probabilities [-] calibrated at ``prevalence_from``; NaN stays NaN.
    prevalence_from, prevalence_to : float
        Share of permafrost [-] in the labels and in the target population, in (0, 1).

    Returns
    -------
    ndarray
        ``p' = r p / (r p + 1 - p)`` with the odds ratio
        ``r = [pi' / (1 - pi')] / [pi / (1 - pi)]`` (float64).

    References
    ----------
    Saerens et al. (2002), eq. 2.4; Elkan (2001), theorem 2.
    """
    xp = array_module_of(p)
    p = xp.asarray(p, dtype=xp.float64)
    r = (prevalence_to / (1.0 - prevalence_to)) / (prevalence_from / (1.0 - prevalence_from))
    return r * p / (r * p + (1.0 - p))


def apply_calibration(params: dict, p):
    """Map raw probabilities to calibrated probabilities (NumPy or CuPy, float32 in [0, 1]).

    Parameters
    ----------
    params : dict
        Output of :func:`fit_calibration`.
    p : ndarray (NumPy or CuPy)
        Raw probabilities [-]; NaN stays NaN.

    Returns
    -------
    ndarray
        Calibrated probabilities [-], float32, same array library as ``p``.

    References
    ----------
    Platt (1999); Zadrozny & Elkan (2002), see module docstring.
    """
    xp = array_module_of(p)
    p = xp.asarray(p)
    method = params["method"]
    if method == "none":
        out = p.astype(xp.float64)
    elif method == "isotonic":
        kx = xp.asarray(params["x"], dtype=xp.float64)
        ky = xp.asarray(params["y"], dtype=xp.float64)
        out = xp.interp(p.astype(xp.float64), kx, ky)
        out = xp.where(xp.isnan(p), xp.nan, out)
    else:
        z = params["a"] * _logit(p.astype(xp.float64), xp) + params["b"]
        out = 1.0 / (1.0 + xp.exp(-z))
    shift = params.get("prior_shift")
    if shift:
        out = prior_shift(out, shift["from"], shift["to"])
    return xp.clip(out, 0.0, 1.0).astype(xp.float32)
