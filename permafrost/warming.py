"""Warming applied to a PZI map through ground temperature (a physical sensitivity).

The PZI is read as the probability that the mean annual ground temperature (MAGT, or the
temperature at the top of permafrost, TTOP) lies below 0 degC, with a Gaussian spread
``sigma`` [degC] about its expected value ``mu`` (Gruber 2012, eq. 5; Obu et al. 2019):

    PZI = Phi(-mu / sigma)      so      mu = -sigma * Phi^-1(PZI).

A warming of the air by ``dT`` [degC] moves ``mu`` by ``s * dT``, where ``s`` [degC/degC] is the
sensitivity of TTOP to air temperature.  With the TTOP model (Smith & Riseborough 1996, 2002)

    TTOP = (rk nt TDD - nf FDD) / P

and the degree days of a sinusoidal year of mean ``T`` and amplitude ``A`` (thawing season a
share ``f`` of the year, f = (pi - 2 phi0) / (2 pi), sin(phi0) = -T / A), the derivatives are
dTDD/dT = P f and dFDD/dT = -P (1 - f), so

    s = dTTOP/dT = rk nt f + nf (1 - f)        (this module, eq. W1)

(the boundary terms vanish because the integrand is zero at the thaw and freeze dates).  Snow
(nf < 1) and a short thaw season (f small) make ``s`` well below 1: insulated cold ground warms
less than the air.  The warmed map is then (eq. W2)

    PZI' = Phi(Phi^-1(PZI) - s dT / sigma)

applied cell by cell to the validated baseline map, so the scenario inherits the baseline's
level and pattern and changes only through the shift.  PZI' <= PZI whenever s dT >= 0.

References
----------
Smith, M. W. & Riseborough, D. W. (1996). Permafrost monitoring and detection of climate
change. Permafrost Periglac. Process. 7, 301-309.
Smith, M. W. & Riseborough, D. W. (2002). Climate and the limits of permafrost: a zonal
analysis. Permafrost Periglac. Process. 13, 1-15.
Riseborough, D. et al. (2008). Recent advances in permafrost modelling. Permafrost Periglac.
Process. 19, 137-156 (the sinusoidal degree-day model).
Gruber, S. (2012). Derivation and analysis of a high-resolution estimate of global permafrost
zonation. The Cryosphere 6, 221-233.
Obu, J. et al. (2019). Northern Hemisphere permafrost map based on TTOP modelling for
2000-2016 at 1 km2 scale. Earth-Science Reviews 193, 299-316.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr, ndtri

from permafrost.errors import DataError

__all__ = [
    "PZI_CLIP",
    "thaw_fraction",
    "ttop_sensitivity",
    "warmed_pzi",
    "implied_ground_temperature",
    "Spread",
    "spread_from_magt",
    "spread_from_magt_ml",
    "cross_section_warning",
]

#: PZI values are clipped to [PZI_CLIP, 1 - PZI_CLIP] before Phi^-1 (0 and 1 map to +-inf);
#: 1e-6 is ~4.75 sigma, far beyond any calibrated probability a label set supports
PZI_CLIP = 1e-6


def thaw_fraction(maat, amplitude):
    """Share of the year [-] whose air temperature is above 0 degC, for a sinusoidal year.

    ``f = (pi - 2 phi0) / (2 pi)`` with ``sin(phi0) = -MAAT / A``: 0 when MAAT <= -A, 1 when
    MAAT >= A (Riseborough et al. 2008; the sinusoid of Smith & Riseborough 2002).

    Parameters
    ----------
    maat : array-like
        Mean annual air temperature [degC].
    amplitude : array-like
        Half the annual range of monthly air temperature [degC], > 0.

    Returns
    -------
    ndarray of float64, in [0, 1]; NaN where an input is NaN.
    """
    t = np.asarray(maat, dtype=np.float64)
    a = np.asarray(amplitude, dtype=np.float64)
    if np.any(a[np.isfinite(a)] <= 0):
        raise DataError("air temperature amplitude must be > 0 degC", field="amplitude",
                        fix="give half the annual range of monthly means, e.g. 12")
    with np.errstate(invalid="ignore", divide="ignore"):
        phi0 = np.arcsin(np.clip(-t / a, -1.0, 1.0))
    return (np.pi - 2.0 * phi0) / (2.0 * np.pi)


def ttop_sensitivity(maat, amplitude, *, nf, nt, rk=1.0):
    """Sensitivity of TTOP to air temperature, dTTOP/dMAAT [degC per degC] (eq. W1).

    ``s = rk nt f + nf (1 - f)`` with ``f`` the thaw fraction (:func:`thaw_fraction`): the
    derivative of TTOP = (rk nt TDD - nf FDD)/P (Smith & Riseborough 2002) for a sinusoidal
    year.  Holds the surface (n-factors, thermal conductivity ratio) fixed, as a scenario of
    air temperature alone does.

    Parameters
    ----------
    maat, amplitude : array-like
        Mean annual air temperature and its annual amplitude [degC].
    nf, nt : array-like
        Freezing and thawing n-factors [-] (ground-surface over air degree days).
    rk : array-like
        Thawed over frozen thermal conductivity of the ground [-].

    Returns
    -------
    ndarray of float64 [degC/degC]
    """
    f = thaw_fraction(maat, amplitude)
    return np.asarray(rk, dtype=np.float64) * np.asarray(nt, dtype=np.float64) * f \
        + np.asarray(nf, dtype=np.float64) * (1.0 - f)


def implied_ground_temperature(pzi, sigma):
    """Expected ground temperature [degC] a PZI implies: ``mu = -sigma Phi^-1(PZI)``
    (inverse of Gruber 2012, eq. 5); PZI clipped to [PZI_CLIP, 1 - PZI_CLIP]."""
    p = np.clip(np.asarray(pzi, dtype=np.float64), PZI_CLIP, 1.0 - PZI_CLIP)
    return -np.asarray(sigma, dtype=np.float64) * ndtri(p)


def warmed_pzi(pzi, delta_t, *, sensitivity, sigma):
    """The PZI after an air warming ``delta_t`` [degC] (eq. W2).

    ``PZI' = Phi(Phi^-1(PZI) - s dT / sigma)``: the ground temperature each PZI implies
    (:func:`implied_ground_temperature`) moved by ``s dT`` (:func:`ttop_sensitivity`), read
    back as a probability with the same spread.  NaN stays NaN; a PZI of exactly 0 or 1
    is clipped to [PZI_CLIP, 1 - PZI_CLIP] first, so it can move.

    Parameters
    ----------
    pzi : array-like
        Baseline PZI [-].
    delta_t : float
        Air temperature change [degC] (warming > 0).
    sensitivity : array-like
        dTTOP/dMAAT [degC/degC], >= 0.
    sigma : array-like
        Spread of the ground temperature about its expectation [degC], > 0.

    Returns
    -------
    ndarray of float64 [-]
    """
    s = np.asarray(sensitivity, dtype=np.float64)
    sg = np.asarray(sigma, dtype=np.float64)
    if np.any(sg[np.isfinite(sg)] <= 0):
        raise DataError("the ground-temperature spread sigma must be > 0 degC", field="sigma",
                        fix="give sigma in degC, e.g. 1.0")
    if np.any(s[np.isfinite(s)] < 0):
        raise DataError("a TTOP sensitivity must be >= 0", field="sensitivity",
                        fix="check the n-factors (>= 0)")
    p = np.asarray(pzi, dtype=np.float64)
    z = ndtri(np.clip(p, PZI_CLIP, 1.0 - PZI_CLIP))
    out = ndtr(z - s * float(delta_t) / sg)
    return np.where(np.isnan(p), np.nan, out)


@dataclass(frozen=True)
class Spread:
    """The ground-temperature spread sigma [degC] fitted from in-situ MAGT.

    ``sigma``: least-squares slope of MAGT on ``-Phi^-1(PZI)`` through the origin;
    ``interval``: its percentile bootstrap interval; ``n``: records used; ``r``: the
    correlation of MAGT with ``-Phi^-1(PZI)`` (near 1 when the PZI orders the ground
    temperatures well; a low or negative value means the map and the records disagree).
    """

    sigma: float
    interval: tuple[float, float]
    n: int
    r: float

    def as_dict(self) -> dict:
        return {"sigma_c": self.sigma, "interval_c": list(self.interval), "n": self.n,
                "r": self.r,
                "rule": "least squares of MAGT on -Phi^-1(PZI) through the origin (Gruber "
                        "2012, eq. 5 read backwards); percentile bootstrap interval"}


def _records(pzi, magt) -> tuple[np.ndarray, np.ndarray]:
    """``z = -Phi^-1(PZI)`` and MAGT [degC] of the records that have both (at least 3)."""
    p = np.asarray(pzi, dtype=np.float64)
    m = np.asarray(magt, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(m)
    if ok.sum() < 3:
        raise DataError(f"{int(ok.sum())} ground-temperature records with a PZI, need at "
                        "least 3", field="magt", fix="give more records or a sigma")
    return -ndtri(np.clip(p[ok], PZI_CLIP, 1.0 - PZI_CLIP)), m[ok]


def _spread(z, m, sigma: float, boots, level: float) -> Spread:
    """A :class:`Spread` from an estimate, its bootstrap replicates (percentile interval)
    and the records' correlation."""
    boots = boots[np.isfinite(boots)]
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2]) if len(boots) else (np.nan,
                                                                                        np.nan)
    r = float(np.corrcoef(z, m)[0, 1]) if np.std(z) > 0 and np.std(m) > 0 else float("nan")
    return Spread(sigma=sigma, interval=(float(lo), float(hi)), n=int(len(z)), r=r)


def spread_from_magt(pzi, magt, *, n_boot: int = 2000, level: float = 0.95,
                     seed: int = 0) -> Spread:
    """Estimate the spread sigma [degC] from ground temperatures measured where the PZI is known.

    Under PZI = Phi(-mu/sigma) (Gruber 2012, eq. 5), a record's MAGT is ``mu + e`` with
    ``mu = sigma z``, ``z = -Phi^-1(PZI)``; the slope of MAGT on ``z`` through the origin
    estimates sigma (ordinary least squares; the records' own noise e averages out).

    Parameters
    ----------
    pzi : array-like
        The map's PZI at the records [-].
    magt : array-like
        Their mean annual ground temperature [degC] (e.g. GTN-P, PERMOS at the
        zero-amplitude depth).
    n_boot, level, seed
        Percentile bootstrap of sigma over the records.

    Returns
    -------
    Spread
    """
    z, m = _records(pzi, magt)

    def slope(zz, mm):
        d = float(np.sum(zz * zz))
        return float(np.sum(zz * mm) / d) if d > 0 else np.nan

    s = slope(z, m)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(z), size=(n_boot, len(z)))
    boots = np.array([slope(z[i], m[i]) for i in idx])
    return _spread(z, m, s, boots, level)


def spread_from_magt_ml(pzi, magt, *, n_boot: int = 2000, level: float = 0.95,
                        seed: int = 0) -> Spread:
    """The spread sigma [degC] by maximum likelihood: MAGT ~ N(sigma z, sigma^2).

    Under PZI = Phi(-mu/sigma) (Gruber 2012, eq. 5) a record's MAGT is drawn from a normal
    distribution of mean ``mu = sigma z`` (``z = -Phi^-1(PZI)``) *and* standard deviation
    sigma: both the slope of MAGT on z and the records' spread about it carry sigma.  The
    slope alone (:func:`spread_from_magt`) ignores the spread.  Setting the derivative of
    the log-likelihood ``n log sigma + sum (m - sigma z)^2 / (2 sigma^2)`` to zero gives

        n sigma^2 + S_zm sigma - S_mm = 0,   sigma = (-S_zm + sqrt(S_zm^2 + 4 n S_mm)) / (2 n)

    with ``S_zm = sum z m`` and ``S_mm = sum m^2``.  Parameters and return as
    :func:`spread_from_magt` (percentile bootstrap interval over the records).
    """
    z, m = _records(pzi, magt)

    def ml(zz, mm):
        n = zz.shape[-1]
        szm, smm = np.sum(zz * mm, axis=-1), np.sum(mm * mm, axis=-1)
        return (-szm + np.sqrt(szm * szm + 4.0 * n * smm)) / (2.0 * n)

    s = float(ml(z, m))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(z), size=(n_boot, len(z)))
    boots = ml(z[idx], m[idx])
    return _spread(z, m, s, boots, level)


def cross_section_warning(cross_loss: float, physical_loss: float, delta_t: float, *,
                          factor: float) -> str | None:
    """The warning of a cross-section scenario whose response to warming differs from the
    physical expectation by more than ``factor`` either way (issue 23 item 4), else None.

    Parameters
    ----------
    cross_loss, physical_loss : float
        Relative loss of PZI-weighted area at ``delta_t`` [-] (0.15 = 15 % lost): the
        cross-section's (its scenario against its map of today) and the physical method's
        on the baseline map (:func:`warmed_pzi`).
    delta_t : float
        The warming [degC].
    factor : float
        permafrost.defaults.SENSITIVITY_FACTOR or ``[scenario_method] warn_factor``.

    Returns
    -------
    str or None
        One line with both figures. A cross-section that loses nothing (or gains) while the
        physics expects a loss always warns; a physical loss of 0 is not judged (no
        expectation to compare with).
    """
    phys, cross = float(physical_loss), float(cross_loss)
    if not phys > 0:
        return None
    if cross > 0 and 1 / factor <= cross / phys <= factor:
        return None
    return (f"cross-section response to MAAT {delta_t:+g} degC: {cross:.1%} of the "
            f"PZI-weighted area lost, against {phys:.1%} by the physical (TTOP) expectation "
            f"on the baseline map; they differ by more than a factor {factor:g}")
