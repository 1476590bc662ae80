"""Response curves of a fitted model: partial dependence of the PZI on each covariate.

Science only (arrays in, arrays out). The report draws the curves
(:mod:`permafrost.report`); :mod:`permafrost.workflows.report` samples the covariates at the
training labels and calls :func:`partial_dependence`.

References
----------
Friedman, J. H. (2001). Greedy function approximation: a gradient boosting machine. Annals of
    Statistics 29(5), 1189–1232 (Sect. 8.2, partial dependence, Eq. 40).
Goldstein, A., Kapelner, A., Bleich, J., Pitkin, E. (2015). Peeking inside the black box:
    visualizing statistical learning with plots of individual conditional expectation.
    JCGS 24(1), 44–65.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["partial_dependence", "response_grid"]


def response_grid(values, *, n: int = 25, low: float = 0.02, high: float = 0.98) -> np.ndarray:
    """Grid of a covariate for its response curve: ``n`` equally spaced values between the
    ``low`` and ``high`` quantiles of its sample (the tails, where a few labels decide the
    curve, left out) [the covariate's unit].

    Returns an empty array when the sample has no finite value.
    """
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return np.zeros(0)
    a, b = np.quantile(v, [low, high])
    return np.linspace(a, b, n) if b > a else np.array([a])


def partial_dependence(predict: Callable[[np.ndarray], np.ndarray], X, feature: int,
                       grid) -> np.ndarray:
    """Partial dependence of a model's output on one covariate (Friedman 2001, Eq. 40).

    ``PD(g) = mean_i f(x_i with covariate `feature` set to g)`` over the rows of ``X``: the
    model's average response when that covariate alone takes the value ``g`` and the others
    keep the joint distribution of the sample. Rows whose prediction is NaN (e.g. a class no
    part of a surface model predicts) are left out of the mean.

    Parameters
    ----------
    predict : callable
        ``f(X) -> (n,)`` array, e.g. the calibrated PZI [-].
    X : array_like, shape (n, p)
        The sample (e.g. the covariates at the training labels) [covariate units].
    feature : int
        Column of the covariate.
    grid : array_like
        Values of the covariate [its unit].

    Returns
    -------
    numpy.ndarray
        PD at each grid value [unit of ``f``]; NaN where no row has a prediction.

    Notes
    -----
    Where covariates are correlated the grid combines values that do not occur together (a
    warm MAAT at a high elevation), and the curve extrapolates there (Apley & Zhu 2020,
    J. R. Stat. Soc. B 82(4), 1059–1086, propose ALE for that case); the report states it.
    """
    X = np.asarray(X, dtype=np.float64)
    g = np.asarray(grid, dtype=np.float64)
    n = X.shape[0]
    if n == 0 or g.size == 0:
        return np.full(g.shape, np.nan)
    big = np.repeat(X[None, :, :], g.size, axis=0)
    big[:, :, feature] = g[:, None]
    f = np.asarray(predict(big.reshape(-1, X.shape[1])), dtype=np.float64).reshape(g.size, n)
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(f)
        s = np.where(ok, f, 0.0).sum(axis=1)
        c = ok.sum(axis=1)
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)
