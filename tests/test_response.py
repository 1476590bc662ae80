"""Partial dependence (permafrost.response) against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from permafrost.response import partial_dependence, response_grid


def _sigmoid(t):
    return 1.0 / (1.0 + np.exp(-t))


def test_partial_dependence_of_a_logistic_model_in_closed_form():
    """f = σ(a + b x0 + c x1) with x1 = ±d in equal shares: PD(g) = ½[σ(a + b g − c d) +
    σ(a + b g + c d)] exactly (Friedman 2001, Eq. 40); not σ(a + b g), the curve at the mean
    of x1, which a model's output at average covariates would give."""
    a, b, c, d = -1.0, 0.8, 2.0, 1.5
    rng = np.random.default_rng(1)
    x0 = rng.normal(0, 2, 200)
    x1 = np.repeat([-d, d], 100)
    X = np.column_stack([x0, x1])
    grid = np.linspace(-3, 3, 13)
    pd_ = partial_dependence(lambda A: _sigmoid(a + b * A[:, 0] + c * A[:, 1]), X, 0, grid)
    want = 0.5 * (_sigmoid(a + b * grid - c * d) + _sigmoid(a + b * grid + c * d))
    np.testing.assert_allclose(pd_, want, rtol=1e-12)
    assert np.max(np.abs(pd_ - _sigmoid(a + b * grid))) > 0.05
    # PD on x1 averages over x0's sample
    pd1 = partial_dependence(lambda A: _sigmoid(a + b * A[:, 0] + c * A[:, 1]), X, 1, [0.0])
    assert pd1[0] == pytest.approx(np.mean(_sigmoid(a + b * x0)), rel=1e-12)


def test_additive_model_and_rows_without_prediction():
    """f = h0(x0) + h1(x1): PD(g) = h0(g) + mean h1(x1); rows predicted NaN are left out."""
    X = np.column_stack([np.arange(6.0), np.array([0, 1, 2, 3, 4, 5.0])])

    def f(A):
        out = np.sin(A[:, 0]) + A[:, 1] ** 2
        return np.where(A[:, 1] == 5.0, np.nan, out)  # the last row: no prediction

    grid = np.array([0.0, 1.0, 2.0])
    np.testing.assert_allclose(partial_dependence(f, X, 0, grid),
                               np.sin(grid) + np.mean([0, 1, 4, 9, 16.0]))
    assert np.isnan(partial_dependence(lambda A: np.full(len(A), np.nan), X, 0, grid)).all()


def test_response_grid_spans_the_inner_quantiles():
    v = np.concatenate([np.arange(100.0), [np.nan]])
    g = response_grid(v, n=5)
    assert g[0] == pytest.approx(np.quantile(np.arange(100.0), 0.02))
    assert g[-1] == pytest.approx(np.quantile(np.arange(100.0), 0.98))
    assert len(g) == 5 and response_grid([np.nan]).size == 0
    assert list(response_grid([3.0, 3.0])) == [3.0]
