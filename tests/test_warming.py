"""permafrost.warming: the TTOP sensitivity and the warmed PZI against independent references
(numerical integration of a sinusoidal year; the sample generator's own TTOP model,
data_samples/samplegen/ttop.py; the Gaussian ground-temperature reading of the PZI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from permafrost.errors import DataError
from permafrost.warming import (
    implied_ground_temperature,
    spread_from_magt,
    thaw_fraction,
    ttop_sensitivity,
    warmed_pzi,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data_samples"))
from samplegen import ttop as T  # noqa: E402


@pytest.mark.parametrize("maat,amp", [(-8.0, 12.5), (-2.0, 10.0), (0.0, 12.0), (3.0, 9.0),
                                      (-15.0, 12.0), (14.0, 12.0)])
def test_thaw_fraction_is_the_share_of_a_sampled_sinusoidal_year_above_zero(maat, amp):
    t = np.linspace(0.0, 1.0, 2_000_001)[:-1]
    share = np.mean(maat + amp * np.sin(2 * np.pi * t) > 0)
    assert thaw_fraction(maat, amp) == pytest.approx(share, abs=2e-6)


@pytest.mark.parametrize("maat", [-12.0, -7.5, -4.0, -1.0, 0.5, 3.0])
@pytest.mark.parametrize("nf,nt,rk", [(0.2, 1.15, 1.0), (0.6, 1.0, 0.85), (1.0, 1.0, 1.0)])
def test_sensitivity_is_the_derivative_of_the_generators_ttop(maat, nf, nt, rk):
    """Central difference of an independent implementation of TTOP (the sample generator's
    degree days and TTOP) against the closed form s = rk nt f + nf (1 - f)."""
    amp, h = 12.5, 1e-4

    def ttop(t):
        tdd, fdd = T.degree_days(t, amp)
        return float(T.ttop(tdd, fdd, nt, nf, rk))

    numeric = (ttop(maat + h) - ttop(maat - h)) / (2 * h)
    assert ttop_sensitivity(maat, amp, nf=nf, nt=nt, rk=rk) == pytest.approx(numeric, abs=1e-6)


def test_bare_ground_warms_with_the_air_and_snow_damps_it():
    assert ttop_sensitivity(-5.0, 12.0, nf=1.0, nt=1.0) == pytest.approx(1.0)
    s_snow = ttop_sensitivity(-5.0, 12.0, nf=0.2, nt=1.0)
    assert 0.2 < s_snow < 0.6


def test_warmed_pzi_shifts_the_implied_ground_temperature():
    mu = np.linspace(-4.0, 3.0, 50)
    sigma = np.full_like(mu, 1.3)
    p0 = norm.cdf(-mu / sigma)
    np.testing.assert_allclose(implied_ground_temperature(p0, sigma), mu, atol=1e-9)
    s, dt = 0.45, 2.0
    np.testing.assert_allclose(warmed_pzi(p0, dt, sensitivity=s, sigma=sigma),
                               norm.cdf(-(mu + s * dt) / sigma), atol=1e-12)
    np.testing.assert_allclose(warmed_pzi(p0, 0.0, sensitivity=s, sigma=sigma), p0, atol=1e-12)


def test_warming_never_raises_the_pzi_and_nan_stays_nan():
    rng = np.random.default_rng(1)
    p0 = np.r_[rng.uniform(0, 1, 1000), 0.0, 1.0, np.nan]
    s = rng.uniform(0, 1.2, p0.size)
    for dt in (0.5, 1.0, 4.0):
        p1 = warmed_pzi(p0, dt, sensitivity=s, sigma=1.0)
        assert np.isnan(p1[-1])
        ok = np.isfinite(p0)
        assert np.all(p1[ok] <= np.clip(p0[ok], 1e-6, 1 - 1e-6) + 1e-15)
    # a PZI of exactly 1 can still thaw under enough warming
    assert warmed_pzi(1.0, 8.0, sensitivity=1.0, sigma=1.0) < 0.5


def test_bad_sigma_and_sensitivity_are_one_line_errors():
    with pytest.raises(DataError, match="sigma"):
        warmed_pzi([0.5], 1.0, sensitivity=0.5, sigma=0.0)
    with pytest.raises(DataError, match="sensitivity"):
        warmed_pzi([0.5], 1.0, sensitivity=-0.1, sigma=1.0)
    with pytest.raises(DataError, match="amplitude"):
        thaw_fraction(-3.0, 0.0)


def test_spread_recovers_the_sigma_of_generated_records():
    rng = np.random.default_rng(4)
    sigma = 1.3
    mu = rng.uniform(-4, 2, 400)
    p = norm.cdf(-mu / sigma)
    magt = mu + rng.normal(0, 0.3, mu.size)
    sp = spread_from_magt(p, magt, seed=0)
    assert sp.n == 400 and sp.r > 0.95
    assert sp.interval[0] < sigma < sp.interval[1]
    assert sp.sigma == pytest.approx(sigma, rel=0.03)
    with pytest.raises(DataError, match="at least 3"):
        spread_from_magt([0.5, 0.2], [1.0, 2.0])
