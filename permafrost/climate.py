"""Climate covariates: MAAT downscaled with a lapse rate, degree-days, frost number.

References
----------
Rolland, C. (2003). Spatial and seasonal variations of air temperature lapse rates in
Alpine regions. Journal of Climate 16, 1032-1046.

Nelson, F. E. & Outcalt, S. I. (1987). A computational method for prediction and
regionalization of permafrost. Arctic and Alpine Research 19(3), 279-288.

Gruber, S. (2012). Derivation and analysis of a high-resolution estimate of global
permafrost zonation. The Cryosphere 6, 221-233 (MAAT downscaled with lapse rates).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "STANDARD_LAPSE_RATE",
    "sea_level_temperature",
    "lapse_rate_downscale",
    "estimate_lapse_rate",
    "degree_days",
    "frost_number",
]

#: ICAO standard-atmosphere lapse rate [degC m-1]
STANDARD_LAPSE_RATE = -0.0065


def sea_level_temperature(t_c, z_m, *, lapse_rate: float = STANDARD_LAPSE_RATE) -> np.ndarray:
    """Reduce a temperature to elevation 0: ``T0 = T - lapse_rate * z``.

    Parameters
    ----------
    t_c : array-like
        Temperature [degC] at elevation ``z_m``.
    z_m : array-like
        Elevation [m].
    lapse_rate : float
        Temperature change with height [degC m-1] (negative when cooling upwards).

    References
    ----------
    Gruber (2012), Sect. 2.2.
    """
    return np.asarray(t_c, dtype=np.float64) - lapse_rate * np.asarray(z_m, dtype=np.float64)


def lapse_rate_downscale(t0_interp_c, z_fine_m, *,
                         lapse_rate: float = STANDARD_LAPSE_RATE) -> np.ndarray:
    """Temperature at fine-grid elevations from an interpolated sea-level field.

    The coarse temperatures are first reduced to sea level (:func:`sea_level_temperature`)
    with their own cell elevations, interpolated to the fine grid (bilinear, done by the
    caller), and lifted here to the fine elevations: ``T = T0 + lapse_rate * z``.

    Parameters
    ----------
    t0_interp_c : array-like
        Sea-level temperature interpolated to the fine grid [degC].
    z_fine_m : array-like
        Fine-grid elevation [m].
    lapse_rate : float
        [degC m-1].

    Returns
    -------
    ndarray
        Temperature [degC] on the fine grid.

    References
    ----------
    Gruber (2012), Sect. 2.2; Rolland (2003) for Alpine lapse rates (annual mean about
    -0.0054 to -0.0058 degC m-1).
    """
    return (np.asarray(t0_interp_c, dtype=np.float64)
            + lapse_rate * np.asarray(z_fine_m, dtype=np.float64))


def estimate_lapse_rate(t_c, z_m, *, weights=None) -> tuple[float, float]:
    """Least-squares lapse rate from temperatures and elevations of grid cells or stations.

    Parameters
    ----------
    t_c : array-like
        Temperatures [degC].
    z_m : array-like
        Elevations [m].
    weights : array-like, optional
        Weights [-].

    Returns
    -------
    (float, float)
        Lapse rate [degC m-1] and its standard error [degC m-1].

    References
    ----------
    Rolland (2003), Sect. 3 (regression of temperature on elevation).
    """
    t = np.asarray(t_c, dtype=np.float64).ravel()
    z = np.asarray(z_m, dtype=np.float64).ravel()
    w = np.ones_like(t) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(z) & np.isfinite(w)
    t, z, w = t[ok], z[ok], w[ok]
    zm = np.sum(w * z) / w.sum()
    tm = np.sum(w * t) / w.sum()
    sxx = np.sum(w * (z - zm) ** 2)
    b = np.sum(w * (z - zm) * (t - tm)) / sxx
    resid = t - (tm + b * (z - zm))
    dof = max(len(t) - 2, 1)
    se = np.sqrt(np.sum(w * resid ** 2) / dof / sxx)
    return float(b), float(se)


def degree_days(monthly_t_c, *, days_in_month=None, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Freezing and thawing degree-days from monthly mean temperatures.

    Parameters
    ----------
    monthly_t_c : array-like
        Monthly mean temperatures [degC] along ``axis`` (12 values per year, or a
        multiple: the result is the mean per year).
    days_in_month : array-like, optional
        Days per month [d] (default: 31, 28.25, 31, 30, ... repeated).
    axis : int
        Month axis.

    Returns
    -------
    (ndarray, ndarray)
        DDF (sum of -T over freezing months) and DDT (sum of T over thawing months)
        [degC d per year], both >= 0.

    References
    ----------
    Nelson & Outcalt (1987), eq. 1-2 (degree-day sums from monthly means).
    """
    t = np.moveaxis(np.asarray(monthly_t_c, dtype=np.float64), axis, 0)
    n = t.shape[0]
    if n % 12:
        raise ValueError("monthly temperatures must cover whole years (12 per year)")
    if days_in_month is None:
        dim = np.array([31, 28.25, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.float64)
        dim = np.tile(dim, n // 12)
    else:
        dim = np.asarray(days_in_month, dtype=np.float64)
    dim = dim.reshape((n,) + (1,) * (t.ndim - 1))
    years = n // 12
    ddf = np.sum(np.maximum(-t, 0.0) * dim, axis=0) / years
    ddt = np.sum(np.maximum(t, 0.0) * dim, axis=0) / years
    return ddf, ddt


def frost_number(ddf, ddt) -> np.ndarray:
    """Air frost number ``F = sqrt(DDF) / (sqrt(DDF) + sqrt(DDT))`` [-].

    ``F > 0.5`` indicates permafrost (continuous above about 0.67, sporadic near 0.5).

    Parameters
    ----------
    ddf : array-like
        Freezing degree-days [degC d].
    ddt : array-like
        Thawing degree-days [degC d].

    Returns
    -------
    ndarray
        Frost number in [0, 1]; NaN where both are 0 or either is negative or NaN.

    References
    ----------
    Nelson & Outcalt (1987), eq. 5.
    """
    f = np.asarray(ddf, dtype=np.float64)
    t = np.asarray(ddt, dtype=np.float64)
    bad = (f < 0) | (t < 0) | ~np.isfinite(f) | ~np.isfinite(t) | ((f == 0) & (t == 0))
    sf = np.sqrt(np.where(bad, 0.0, f))
    st = np.sqrt(np.where(bad, 0.0, t))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = sf / (sf + st)
    return np.where(bad, np.nan, out)
