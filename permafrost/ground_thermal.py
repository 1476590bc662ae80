"""Permafrost presence, MAGT and active-layer thickness from borehole ground-temperature records.

Pure science, no I/O: every function takes a *wide* temperature table -- a
:class:`pandas.DataFrame` indexed by timestamps (daily or finer) with one column per
sensor depth [m] holding ground temperatures [°C], NaN where missing -- and returns
numbers or a :class:`ThermalVerdict`.

The rules (documented in ``docs/labels.md``):

1. **Cleaning** (:func:`clean_ground_temperatures`): values outside a physical range are
   removed; then a rolling-median despiking rule removes values that depart from the
   centred running median of ``window_days`` by more than
   ``max(n_mad * 1.4826 * MAD, min_spike_c)`` (Hampel filter).  Every removal is counted.
2. **Years** are hydrological years (1 October - 30 September by default, the PERMOS
   convention), labelled by the calendar year in which they end.
3. **Per depth and year** (:func:`annual_states`): a year is *complete* when its data cover
   at least ``min_coverage`` of its days and no gap exceeds ``max_gap_days``.  A depth-year
   is ``frozen`` when complete and its maximum is <= 0 °C; ``thawed`` when at least
   ``min_thaw_readings`` cleaned readings exceed 0 °C (a thaw is proven by the readings
   themselves, even in an incomplete year); otherwise ``unknown``.
4. **Presence** (:func:`assess_borehole`): *permafrost* when some depth is ``frozen`` in at
   least two consecutive years, or its readings stay at or below 0 °C without interruption
   (no gap over ``max_gap_days``) for at least two years (730 days) across year boundaries --
   the definition of permafrost (ground at or below 0 °C for at least two consecutive years;
   van Everdingen 1998).  *No permafrost* only when a sensor at least
   ``min_no_permafrost_depth_m`` deep (10 m), below the seasonally influenced layer (annual
   range <= ``deep_range_c``), stays above 0 °C all year for two consecutive complete years
   and no deeper sensor was ever frozen through a complete year: shallower sensors cannot
   exclude permafrost under a deep active layer.  Anything else is *insufficient*, with the
   reason -- never a guess.
5. **MAGT** at the depth of zero annual amplitude: the shallowest depth whose annual range
   (max - min of monthly means, median over complete years) is <= ``zaa_range_c`` (0.1 °C,
   van Everdingen 1998), reported as ``zaa_depth_m``; else at the deepest depth below the
   active layer (perennially frozen or perennially unfrozen in most complete years, with at
   least ``min_years`` of them); else no MAGT: a record whose sensors all lie within the
   active layer (or the seasonally frozen layer) has none.
6. **Active-layer thickness** per *thaw season* (the 12 months from the onset of warming,
   three months before the warmest month at the top sensor, labelled by the summer's
   calendar year; :func:`thaw_season_start`, :func:`active_layer_by_season`), so that the
   maximum of one summer, which reaches the deeper sensors months later, is read with the
   same summer's maxima above it: the depth of the 0 °C isotherm of the season's
   maximum-temperature profile, interpolated linearly between the deepest thawed sensor above
   it and the first frozen one.  An October-September year would mix two summers (the lagged
   heat of summer Y at depth with the near-surface maxima of summer Y+1).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from permafrost.errors import DataError

__all__ = [
    "ThermalVerdict",
    "clean_ground_temperatures",
    "annual_states",
    "annual_ranges",
    "active_layer_thickness",
    "thaw_season_start",
    "active_layer_by_season",
    "assess_borehole",
]

log = logging.getLogger(__name__)

#: Physical range of ground temperatures accepted by default [°C].
DEFAULT_VALID_RANGE_C = (-60.0, 60.0)


@dataclass(frozen=True)
class ThermalVerdict:
    """What a temperature record says about permafrost at one borehole.

    Attributes
    ----------
    borehole_id : str
    status : str
        ``"permafrost"``, ``"no_permafrost"`` or ``"insufficient"``.
    presence : int or None
        1, 0, or None when ``status == "insufficient"``.
    reason_code : str
        ``"frozen_two_years"``, ``"unfrozen_below_seasonal_layer"``,
        ``"within_active_layer"``, ``"too_shallow"``, ``"too_few_readings"``,
        ``"too_short"`` or ``"too_gappy"``.
    reason : str
        A sentence a scientist can read: why this verdict.
    permafrost_depth_m : float
        Shallowest depth frozen through two consecutive complete years [m] (NaN if none).
    magt_c : float
        Mean annual ground temperature [°C] (NaN when no depth has a complete year).
    magt_depth_m : float
        Depth of the MAGT [m].
    magt_basis : str
        ``"zero_annual_amplitude"``, ``"deepest_below_active_layer"`` or ``""`` (no MAGT:
        no sensor below the active layer).
    magt_range_c : float
        Annual range (max - min of monthly means, median over complete years) at the MAGT
        depth [°C].
    zaa_depth_m : float
        Shallowest sensor depth whose annual range is <= ``zaa_range_c`` [m]; NaN when the
        sensors do not reach the depth of zero annual amplitude.
    alt_m : float
        Mean active-layer thickness over the thaw seasons where the profile allows it [m].
    alt_max_m : float
        Largest active-layer thickness of those seasons [m].
    alt_years : int
        Number of thaw seasons behind ``alt_m``.
    alt_by_season : tuple of (int, float)
        ``(season, thickness [m])`` per thaw season, labelled by the calendar year of the
        summer.
    thaw_season_start_month : int
        First month of the thaw seasons [1-12] (0 when not computed).
    complete_years : int
        Largest number of complete years at any depth.
    depths_m : tuple of float
        Sensor depths with at least one valid reading [m].
    out_of_range : int
        Readings removed by the physical range check.
    spikes : int
        Readings removed by the despiking rule.
    """

    borehole_id: str
    status: str
    presence: int | None
    reason_code: str
    reason: str
    permafrost_depth_m: float = float("nan")
    magt_c: float = float("nan")
    magt_depth_m: float = float("nan")
    magt_basis: str = ""
    magt_range_c: float = float("nan")
    zaa_depth_m: float = float("nan")
    alt_m: float = float("nan")
    alt_max_m: float = float("nan")
    alt_years: int = 0
    alt_by_season: tuple = field(default_factory=tuple)
    thaw_season_start_month: int = 0
    complete_years: int = 0
    depths_m: tuple = field(default_factory=tuple)
    out_of_range: int = 0
    spikes: int = 0

    def as_dict(self) -> dict:
        """The verdict as a plain dict (depths joined into a string)."""
        d = asdict(self)
        d["depths_m"] = ",".join(f"{z:g}" for z in self.depths_m)
        d["alt_by_season"] = ";".join(f"{y}:{a:.2f}" for y, a in self.alt_by_season)
        return d


def _check_wide(temps: pd.DataFrame, borehole_id: str) -> pd.DataFrame:
    if not isinstance(temps, pd.DataFrame):
        raise DataError("temperatures must be a DataFrame (time x depth)", field=borehole_id,
                        fix="use permafrost.io.boreholes readers")
    if not isinstance(temps.index, pd.DatetimeIndex):
        raise DataError("temperature table index is not a time index", field=borehole_id,
                        fix="index the table by timestamps")
    try:
        depths = np.asarray([float(c) for c in temps.columns])
    except (TypeError, ValueError):
        raise DataError(f"column names are not depths in metres: {list(temps.columns)[:5]}",
                        field=borehole_id, fix="name each column by its sensor depth [m]") from None
    if np.any(depths < 0) or len(set(depths)) != len(depths):
        raise DataError("sensor depths must be unique and >= 0 m", field=borehole_id,
                        fix="check the depth header")
    out = temps.copy()
    out.columns = depths
    out = out.sort_index(axis=1).sort_index()
    if out.index.has_duplicates:
        out = out.groupby(level=0).mean()
    return out.astype(float)


def clean_ground_temperatures(
    temps: pd.DataFrame,
    *,
    valid_range_c: tuple[float, float] = DEFAULT_VALID_RANGE_C,
    window_days: int = 7,
    n_mad: float = 5.0,
    min_spike_c: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Remove physically impossible values and isolated spikes from a ground-temperature record.

    Parameters
    ----------
    temps : pandas.DataFrame
        Ground temperatures [°C], time index (daily or finer), one column per depth [m].
    valid_range_c : (float, float)
        Physical range [°C]; values outside it are removed.
    window_days : int
        Length of the centred running-median window [days] (daily readings are assumed;
        the window counts readings).
    n_mad : float
        Spike threshold in robust standard deviations (1.4826 x median absolute deviation
        within the window) [-].
    min_spike_c : float
        Smallest departure from the running median that counts as a spike [°C]; it keeps
        the rule from flagging sensor noise at depth where the MAD is near zero.

    Returns
    -------
    cleaned : pandas.DataFrame
        Same shape, removed values set to NaN.
    counts : pandas.DataFrame
        Per depth: ``valid`` readings kept, ``out_of_range`` and ``spikes`` removed.

    References
    ----------
    Hampel, F. R. (1974). The influence curve and its role in robust estimation.
    J. Am. Stat. Assoc. 69, 383-393 (the running-median / MAD outlier rule).
    Pearson, R. K. et al. (2016). Generalized Hampel filters. EURASIP J. Adv. Signal
    Process. 2016:87.
    """
    lo, hi = valid_range_c
    t = temps.astype(float)
    bad_range = (t < lo) | (t > hi)
    t = t.mask(bad_range)
    w = int(window_days)
    if w < 3:
        raise DataError("window_days must be >= 3", field="window_days", fix="use e.g. 7")
    med = t.rolling(w, center=True, min_periods=3).median()
    mad = (t - med).abs().rolling(w, center=True, min_periods=3).median()
    thresh = np.maximum(n_mad * 1.4826 * mad, min_spike_c)
    spikes = (t - med).abs() > thresh
    cleaned = t.mask(spikes)
    counts = pd.DataFrame({
        "valid": cleaned.notna().sum(),
        "out_of_range": bad_range.sum(),
        "spikes": spikes.sum(),
    })
    return cleaned, counts


def _hydro_year(index: pd.DatetimeIndex, start_month: int) -> np.ndarray:
    if start_month == 1:
        return index.year.to_numpy()
    return (index.year + (index.month >= start_month)).to_numpy()


def annual_states(
    cleaned: pd.DataFrame,
    *,
    year_start_month: int = 10,
    min_coverage: float = 0.8,
    max_gap_days: float = 31.0,
    min_thaw_readings: int = 3,
) -> pd.DataFrame:
    """Per depth and hydrological year: coverage, extremes and frozen/thawed state.

    Parameters
    ----------
    cleaned : pandas.DataFrame
        Cleaned ground temperatures [°C] (time x depth [m]), see
        :func:`clean_ground_temperatures`.
    year_start_month : int
        First month of the year [1-12]; 10 = hydrological year Oct-Sep (PERMOS practice).
    min_coverage : float
        Fraction of the year's days that must have a reading for the year to be complete [-].
    max_gap_days : float
        Longest allowed gap between readings inside a complete year [days], counting
        the year's start and end as boundaries.
    min_thaw_readings : int
        Readings above 0 °C needed to call a depth-year thawed [-].

    Returns
    -------
    pandas.DataFrame
        One row per (depth_m, year): ``n``, ``coverage``, ``max_gap_days``, ``complete``,
        ``tmin``, ``tmax``, ``tmean``, ``n_above0`` and ``state`` (frozen / thawed / unknown).

    References
    ----------
    van Everdingen, R. (ed.) (1998, rev. 2005). Multi-language glossary of permafrost and
    related ground-ice terms. NSIDC, Boulder (definition of permafrost: ground at or below
    0 °C for at least two consecutive years).
    Noetzli, J. et al. (2021). Best practice for measuring permafrost temperature in
    boreholes based on the experience in the Swiss Alps. Front. Earth Sci. 9, 607875.
    """
    years = _hydro_year(cleaned.index, year_start_month)
    rows = []
    for year in np.unique(years):
        sel = cleaned[years == year]
        y_start = pd.Timestamp(year=int(year) - (year_start_month != 1), month=year_start_month, day=1)
        y_end = pd.Timestamp(year=int(year) + (year_start_month == 1), month=year_start_month, day=1)
        ndays = (y_end - y_start).days
        for depth in cleaned.columns:
            s = sel[depth].dropna()
            n = len(s)
            if n == 0:
                continue
            days = s.index.normalize().unique()
            day_nums = days.to_numpy().astype("datetime64[D]").astype(np.int64)
            edges = np.concatenate([
                [np.datetime64(y_start.date(), "D").astype(np.int64) - 1], day_nums,
                [np.datetime64(y_end.date(), "D").astype(np.int64)]])
            gaps = np.diff(edges).astype(float) - 1.0
            gap = float(gaps.max())
            coverage = len(days) / ndays
            complete = bool(coverage >= min_coverage and gap <= max_gap_days)
            tmax = float(s.max())
            n_above = int((s > 0.0).sum())
            if n_above >= min_thaw_readings:
                state = "thawed"
            elif complete and tmax <= 0.0:
                state = "frozen"
            else:
                state = "unknown"
            # daily means so sub-daily records do not weight some days more than others
            daily = s.groupby(s.index.normalize()).mean()
            rows.append({
                "depth_m": float(depth), "year": int(year), "n": n, "days": len(days),
                "coverage": coverage, "max_gap_days": gap, "complete": complete,
                "tmin": float(s.min()), "tmax": tmax, "tmean": float(daily.mean()),
                "n_above0": n_above, "state": state,
            })
    cols = ["depth_m", "year", "n", "days", "coverage", "max_gap_days", "complete", "tmin",
            "tmax", "tmean", "n_above0", "state"]
    return pd.DataFrame(rows, columns=cols).sort_values(["depth_m", "year"], ignore_index=True)


def annual_ranges(
    cleaned: pd.DataFrame,
    *,
    year_start_month: int = 10,
    min_days_per_month: int = 15,
    min_months: int = 10,
) -> pd.DataFrame:
    """Annual temperature range per depth and year, from monthly means.

    Parameters
    ----------
    cleaned : pandas.DataFrame
        Cleaned ground temperatures [°C] (time x depth [m]).
    year_start_month : int
        First month of the year [1-12].
    min_days_per_month : int
        Days with readings needed for a monthly mean [days].
    min_months : int
        Monthly means needed for a year's range [-].

    Returns
    -------
    pandas.DataFrame
        ``depth_m``, ``year``, ``range_c`` [°C]: the largest minus the smallest monthly
        mean of the year.  Monthly means keep the annual wave and drop sensor noise and
        short events, which would otherwise hold the max - min of single readings above
        0.1 °C at any depth (e.g. 0.3-0.5 °C at 60-100 m in Schilthorn 50/00, where the
        annual wave has long died out).

    References
    ----------
    van Everdingen (1998): depth of zero annual amplitude, where the annual fluctuation
    of ground temperature is practically nil (< 0.1 °C).
    """
    daily = cleaned.groupby(cleaned.index.normalize()).mean()
    month = daily.index.to_period("M")
    n = daily.notna().groupby(month).sum()
    mean = daily.groupby(month).mean().where(n >= min_days_per_month)
    starts = mean.index.to_timestamp()
    mean.index = _hydro_year(pd.DatetimeIndex(starts), year_start_month)
    g = mean.groupby(level=0)
    rng = (g.max() - g.min()).where(g.count() >= min_months)
    out = rng.stack().dropna().rename("range_c").reset_index()
    out.columns = ["year", "depth_m", "range_c"]
    return out[["depth_m", "year", "range_c"]].sort_values(["depth_m", "year"],
                                                           ignore_index=True)


def active_layer_thickness(depths_m: np.ndarray, tmax_c: np.ndarray) -> float:
    """Depth of the 0 °C isotherm of an annual-maximum temperature profile.

    Parameters
    ----------
    depths_m : array of float
        Sensor depths, increasing [m].
    tmax_c : array of float
        Annual maximum temperature at each depth [°C] (NaN = unknown).

    Returns
    -------
    float
        Active-layer thickness [m]: linear interpolation between the last thawed sensor
        (Tmax > 0) and the first frozen one below it (Tmax <= 0), scanning from the top.
        NaN when the top sensor is already frozen (thaw shallower than the sensors), when no
        sensor below the thawed ones is frozen (thaw deeper than the sensors), or when a
        needed value is missing.

    References
    ----------
    van Everdingen (1998): active layer = the top layer of ground subject to annual thawing
    and freezing in areas underlain by permafrost; its thickness is the maximum thaw depth.
    Noetzli, J. et al. (2021), Front. Earth Sci. 9, 607875 (ALT from the 0 °C isotherm of the
    annual maximum temperature profile, linear interpolation between sensors).
    """
    z = np.asarray(depths_m, dtype=float)
    t = np.asarray(tmax_c, dtype=float)
    if len(z) < 2 or not np.isfinite(t[0]) or t[0] <= 0.0:
        return float("nan")
    for i in range(len(z) - 1):
        if not np.isfinite(t[i + 1]):
            return float("nan")
        if t[i] > 0.0 and t[i + 1] <= 0.0:
            return float(z[i] + (0.0 - t[i]) * (z[i + 1] - z[i]) / (t[i + 1] - t[i]))
    return float("nan")


def thaw_season_start(cleaned: pd.DataFrame) -> int:
    """First month of the thaw season: three months before the warmest month at the top.

    Parameters
    ----------
    cleaned : pandas.DataFrame
        Cleaned ground temperatures [°C] (time x depth [m]).

    Returns
    -------
    int
        Month [1-12]: the warmest calendar month of the shallowest sensor with readings
        (mean of its monthly means over the record) minus three; 4 (April) when no sensor
        has readings in at least 10 calendar months.

    References
    ----------
    Williams and Smith (1989), ch. 4: the surface warms for about a quarter period before
    its maximum; the annual wave then takes (z/d)/ω to reach depth z, so a season that
    starts at the onset of warming holds one summer's maxima at every depth of the active
    layer.
    """
    for z in cleaned.columns:
        col = cleaned[z].dropna()
        if col.empty:
            continue
        monthly = col.groupby(col.index.to_period("M")).mean()
        clim = monthly.groupby(monthly.index.month).mean()
        if len(clim) >= 10:
            return int((int(clim.idxmax()) - 1 - 3) % 12 + 1)
        break
    return 4


def active_layer_by_season(
    cleaned: pd.DataFrame,
    *,
    season_start_month: int = 4,
    min_thaw_readings: int = 3,
    max_gap_days: float = 31.0,
) -> pd.DataFrame:
    """Active-layer thickness per thaw season, following the lag of the heat with depth.

    Parameters
    ----------
    cleaned : pandas.DataFrame
        Cleaned ground temperatures [°C] (time x depth [m]).
    season_start_month : int
        First month of a thaw season [1-12]; 4 (April).  A season runs 12 months and is
        labelled by the calendar year of its summer.
    min_thaw_readings : int
        Readings above 0 °C that prove a sensor thawed in the season [-].
    max_gap_days : float
        Longest gap allowed in the frozen sensor's record after the thawed sensor's
        maximum [days].

    Returns
    -------
    pandas.DataFrame
        ``season``, ``alt_m`` [m], ``thawed_m`` and ``frozen_m`` (the bracketing sensors
        [m]), one row per season where the profile shows the thaw front.

    Notes
    -----
    Scanning down from the top sensor, every sensor must be proven thawed in the season
    (``min_thaw_readings`` readings above 0 °C) down to the last thawed one; the next one
    must stay at or below 0 °C, and its record must cover the season from the date of the
    thawed sensor's maximum to the season's end with no gap over ``max_gap_days``: the
    heat reaches a deeper sensor later than a shallower one, so this is the time in which
    its maximum can fall (a gap earlier in the season, e.g. in spring, does not hide it).
    The thickness is the 0 °C crossing of the seasonal-maximum profile, linearly
    interpolated (:func:`active_layer_thickness`).  Seasons start in spring so that one
    summer's heat, which reaches 5-10 m in autumn-winter, is read with that summer's
    maxima above it (an October-September year would mix two summers).

    References
    ----------
    van Everdingen (1998): active layer, maximum thaw depth; Noetzli, J. et al. (2021),
    Front. Earth Sci. 9, 607875 (ALT from the maximum temperature profile); Williams, P. J.
    and Smith, M. W. (1989). The Frozen Earth, ch. 4 (phase lag of the annual wave grows
    with depth, z/d).
    """
    if cleaned.empty:
        return pd.DataFrame(columns=["season", "alt_m", "thawed_m", "frozen_m"])
    depths = np.asarray([float(c) for c in cleaned.columns])
    label = _hydro_year(cleaned.index, season_start_month) - (season_start_month > 1)
    rows = []
    for season in np.unique(label):
        sel = cleaned[label == season]
        end = pd.Timestamp(year=int(season) + 1, month=season_start_month, day=1) \
            if season_start_month > 1 else pd.Timestamp(year=int(season) + 1, month=1, day=1)
        tmax = np.full(len(depths), np.nan)
        for j, z in enumerate(depths):
            col = sel[z].dropna()
            if len(col) == 0:
                break
            if (col > 0.0).sum() >= min_thaw_readings:
                tmax[j] = float(col.max())
                continue
            if j == 0 or not np.isfinite(tmax[j - 1]) or col.max() > 0.0:
                break
            # the frozen sensor below the last thawed one: covered from the thawed
            # sensor's maximum to the season's end
            t0 = sel[depths[j - 1]].idxmax()
            after = col[col.index >= t0]
            days = after.index.normalize().unique()
            if len(days) == 0:
                break
            edges = np.concatenate([[t0.normalize().to_datetime64()], days.to_numpy(),
                                    [end.to_datetime64()]]).astype("datetime64[D]")
            if (np.diff(edges).astype(float) - 1.0).max() > max_gap_days:
                break
            tmax[j] = float(col.max())
            a = active_layer_thickness(depths[: j + 1], tmax[: j + 1])
            if np.isfinite(a):
                rows.append({"season": int(season), "alt_m": a, "thawed_m": depths[j - 1],
                             "frozen_m": z})
            break
    return pd.DataFrame(rows, columns=["season", "alt_m", "thawed_m", "frozen_m"])


def _longest_run(years: list[int]) -> tuple[int, int]:
    """Longest run of consecutive integers; returns (length, first year)."""
    best, best_start, run, start, prev = 0, 0, 0, 0, None
    for y in sorted(years):
        if prev is not None and y == prev + 1:
            run += 1
        else:
            run, start = 1, y
        if run > best:
            best, best_start = run, start
        prev = y
    return best, best_start


def _longest_frozen_period(series: pd.Series, max_gap_days: float):
    """Longest period of readings all <= 0 °C with no gap over ``max_gap_days``.

    Returns (days from first to last reading of the period, first, last timestamps).
    """
    s = series.dropna()
    if s.empty:
        return 0, None, None
    t = s.index.to_numpy().astype("datetime64[s]").astype(np.int64) / 86400.0
    frozen = s.to_numpy() <= 0.0
    best, best_i, best_j = 0.0, None, None
    i = None
    for k in range(len(s)):
        if not frozen[k]:
            i = None
            continue
        if i is None or t[k] - t[k - 1] > max_gap_days + 1:
            i = k
        if t[k] - t[i] > best:
            best, best_i, best_j = t[k] - t[i], i, k
    if best_i is None:
        return 0, None, None
    return int(round(best)), s.index[best_i], s.index[best_j]


def _fmt_depths(depths) -> str:
    return ", ".join(f"{d:g}" for d in depths)


def assess_borehole(
    temps: pd.DataFrame,
    *,
    borehole_id: str = "",
    valid_range_c: tuple[float, float] = DEFAULT_VALID_RANGE_C,
    window_days: int = 7,
    n_mad: float = 5.0,
    min_spike_c: float = 0.25,
    year_start_month: int = 10,
    min_coverage: float = 0.8,
    max_gap_days: float = 31.0,
    min_thaw_readings: int = 3,
    min_years: int = 2,
    zaa_range_c: float = 0.1,
    deep_range_c: float = 1.0,
    min_no_permafrost_depth_m: float = 10.0,
    thaw_year_start_month: int | None = None,
) -> ThermalVerdict:
    """Decide permafrost presence from a borehole temperature record, or say why it cannot.

    Parameters
    ----------
    temps : pandas.DataFrame
        Ground temperatures [°C], time index, one column per sensor depth [m].
    borehole_id : str
        Identifier carried into the verdict and messages.
    valid_range_c, window_days, n_mad, min_spike_c
        Cleaning rule, see :func:`clean_ground_temperatures` ([°C], [days], [-], [°C]).
    year_start_month, min_coverage, max_gap_days, min_thaw_readings
        Data-sufficiency rule, see :func:`annual_states` ([1-12], [-], [days], [-]).
    min_years : int
        Consecutive frozen years that define permafrost [years] (2 by definition).
    zaa_range_c : float
        Annual range (max - min of monthly means, median over complete years; see
        :func:`annual_ranges`) at or below which a depth is at zero annual amplitude, where
        MAGT is read [°C]; 0.1, the "practically no annual fluctuation (< 0.1 °C)" of the
        IPA glossary (van Everdingen 1998).
    deep_range_c : float
        Annual range below which a sensor counts as beneath the seasonally influenced
        layer, so that a year-round unfrozen reading there means no permafrost [°C].
    min_no_permafrost_depth_m : float
        Shallowest sensor that may say "no permafrost" [m]; 10 m: below the deepest
        active layers in the PERMOS records used here (Schilthorn reached 8.6 m in the
        2003 heat wave, Hilbich et al. 2008), so unfrozen ground there is not a deep
        active layer over permafrost.  A choice of this package, documented in
        docs/labels.md.
    thaw_year_start_month : int, optional
        First month of the thaw season for the active-layer thickness [1-12].  Default
        (None): :func:`thaw_season_start`, three months before the warmest month of the
        shallowest sensor's mean annual cycle (May at Schilthorn, whose 0.2 m sensor peaks
        in August; spring months of the southern hemisphere there): thaw starts in spring,
        and the summer's heat reaches the deeper sensors months later (autumn-winter at
        5-10 m), within the same 12 months.

    Returns
    -------
    ThermalVerdict

    References
    ----------
    van Everdingen, R. (ed.) (1998, rev. 2005). Multi-language glossary of permafrost and
    related ground-ice terms. NSIDC (permafrost: ground <= 0 °C for >= 2 consecutive years;
    depth of zero annual amplitude; active layer).
    Noetzli, J. et al. (2021). Best practice for measuring permafrost temperature in
    boreholes based on the experience in the Swiss Alps. Front. Earth Sci. 9, 607875.
    Biskaborn, B. K. et al. (2019). Permafrost is warming at a global scale. Nat. Commun.
    10, 264 (MAGT near the depth of zero annual amplitude, GTN-P practice).
    Hilbich, C. et al. (2008). Monitoring mountain permafrost evolution using electrical
    resistivity tomography: a 7-year study of seasonal, annual, and long-term variations
    at Schilthorn, Swiss Alps. J. Geophys. Res. 113, F01S90.
    """
    if (thaw_year_start_month is not None and not 1 <= int(thaw_year_start_month) <= 12) \
            or not 1 <= int(year_start_month) <= 12:
        raise DataError("year_start_month and thaw_year_start_month must be months (1-12)",
                        field=str(borehole_id), fix="e.g. 10 (hydrological year), 4 (thaw)")
    if min_no_permafrost_depth_m < 0 or zaa_range_c <= 0:
        raise DataError("min_no_permafrost_depth_m must be >= 0 m and zaa_range_c > 0 °C",
                        field=str(borehole_id), fix="e.g. 10 m and 0.1 °C")
    bid = str(borehole_id)
    wide = _check_wide(temps, bid)
    cleaned, counts = clean_ground_temperatures(
        wide, valid_range_c=valid_range_c, window_days=window_days, n_mad=n_mad,
        min_spike_c=min_spike_c)
    n_range = int(counts["out_of_range"].sum())
    n_spike = int(counts["spikes"].sum())
    depths = [float(d) for d in cleaned.columns if cleaned[d].notna().any()]
    # keyword arguments of ThermalVerdict, filled in as the assessment goes
    base: dict[str, Any] = dict(borehole_id=bid, depths_m=tuple(depths), out_of_range=n_range,
                                spikes=n_spike)
    if not depths:
        return ThermalVerdict(status="insufficient", presence=None, reason_code="too_few_readings",
                              reason="no valid reading at any depth", **base)
    if n_range or n_spike:
        log.debug("%s: removed %d out-of-range and %d spike readings", bid, n_range, n_spike)
    st = annual_states(cleaned, year_start_month=year_start_month, min_coverage=min_coverage,
                       max_gap_days=max_gap_days, min_thaw_readings=min_thaw_readings)
    by_depth = {d: g for d, g in st.groupby("depth_m")}
    complete_years = max(int(g["complete"].sum()) for g in by_depth.values())
    base["complete_years"] = complete_years

    # annual range per depth (monthly means, median over complete years) and MAGT
    comp = st[st["complete"]]
    rng = annual_ranges(cleaned, year_start_month=year_start_month)
    rng = rng.merge(comp[["depth_m", "year"]], on=["depth_m", "year"], how="inner")
    prof = comp.groupby("depth_m").agg(tmean=("tmean", "mean"), years=("year", "size"))
    prof["rng"] = rng.groupby("depth_m")["range_c"].median().reindex(prof.index)
    # below the active layer (or the seasonally frozen layer): in most complete years the
    # depth never crossed 0 °C (frozen all year, or above 0 °C all year)
    steady = comp.assign(steady=(comp["state"] == "frozen") | (comp["tmin"] > 0.0))
    prof["below_active"] = steady.groupby("depth_m")["steady"].mean().reindex(prof.index) > 0.5
    magt = dict(magt_c=float("nan"), magt_depth_m=float("nan"), magt_basis="")
    zaa = prof[prof["rng"] <= zaa_range_c]
    below = prof[prof["below_active"] & (prof["years"] >= min_years)]
    if len(zaa):
        z = float(zaa.index.min())
        base["zaa_depth_m"] = z
        magt = dict(magt_c=float(zaa.loc[z, "tmean"]), magt_depth_m=z,
                    magt_basis="zero_annual_amplitude", magt_range_c=float(zaa.loc[z, "rng"]))
    elif len(below):
        z = float(below.index.max())
        magt = dict(magt_c=float(below.loc[z, "tmean"]), magt_depth_m=z,
                    magt_basis="deepest_below_active_layer",
                    magt_range_c=float(below.loc[z, "rng"]))
    base.update(magt)

    # active-layer thickness per thaw season (the lag with depth stays inside one season)
    if thaw_year_start_month is None:
        thaw_year_start_month = thaw_season_start(cleaned[depths])
    base["thaw_season_start_month"] = int(thaw_year_start_month)
    seasons = active_layer_by_season(cleaned[depths], season_start_month=thaw_year_start_month,
                                     min_thaw_readings=min_thaw_readings,
                                     max_gap_days=max_gap_days)
    if len(seasons):
        vals = seasons["alt_m"].to_numpy(np.float64)
        base.update(alt_m=float(np.mean(vals)), alt_max_m=float(np.max(vals)),
                    alt_years=len(vals),
                    alt_by_season=tuple((int(y), float(a)) for y, a in
                                        zip(seasons["season"], vals)))

    # 1. permafrost: some depth frozen for >= min_years consecutive years
    frozen_runs = {}
    for d, g in by_depth.items():
        run, first = _longest_run(g.loc[g["state"] == "frozen", "year"].tolist())
        if run >= min_years:
            frozen_runs[d] = (run, first)
    if not frozen_runs:
        # the definition is a duration: a continuous frozen period >= min_years x 365 days
        # counts even when it straddles incomplete hydrological years
        spans = {}
        for d in depths:
            days, t0, t1 = _longest_frozen_period(cleaned[d], max_gap_days)
            if days >= 365 * min_years:
                spans[d] = (days, t0, t1)
        if spans:
            z = min(spans)
            days, t0, t1 = spans[z]
            reason = (f"ground at {z:g} m stayed at or below 0 °C for {days} days without "
                      f"interruption ({t0:%Y-%m-%d}..{t1:%Y-%m-%d}, no gap over "
                      f"{max_gap_days:g} days); frozen >= {min_years} years at {len(spans)} "
                      f"depth(s) ({_fmt_depths(sorted(spans))} m)")
            return ThermalVerdict(status="permafrost", presence=1,
                                  reason_code="frozen_two_years", reason=reason,
                                  permafrost_depth_m=z, **base)
    if frozen_runs:
        z = min(frozen_runs)
        run, first = frozen_runs[z]
        reason = (f"ground at {z:g} m stayed at or below 0 °C through {run} consecutive complete "
                  f"years ({first}-{first + run - 1}); frozen for >= {min_years} years at "
                  f"{len(frozen_runs)} depth(s) ({_fmt_depths(sorted(frozen_runs))} m)")
        return ThermalVerdict(status="permafrost", presence=1, reason_code="frozen_two_years",
                              reason=reason, permafrost_depth_m=z, **base)

    # 2. no permafrost: unfrozen year-round below the seasonally influenced layer, deep enough
    ever_frozen = [d for d, g in by_depth.items() if (g["state"] == "frozen").any()]
    shallow_unfrozen = []
    for d in sorted(by_depth, reverse=True):
        g = by_depth[d]
        gc = g[g["complete"] & (g["tmin"] > 0.0)]
        run, first = _longest_run(gc["year"].tolist())
        if run < min_years or d not in prof.index or not prof.loc[d, "rng"] <= deep_range_c:
            continue
        if any(f >= d for f in ever_frozen):
            continue
        if d < min_no_permafrost_depth_m:
            shallow_unfrozen.append(d)
            continue
        reason = (f"ground at {d:g} m stayed above 0 °C all year through {run} consecutive "
                  f"complete years ({first}-{first + run - 1}) with a mean annual range of "
                  f"{prof.loc[d, 'rng']:.2f} °C (below the seasonally frozen layer) and no "
                  f"sensor below it was frozen through a year")
        return ThermalVerdict(status="no_permafrost", presence=0,
                              reason_code="unfrozen_below_seasonal_layer", reason=reason, **base)

    # 3. insufficient: say why
    if shallow_unfrozen:
        d = max(shallow_unfrozen)
        reason = (f"ground at {_fmt_depths(sorted(shallow_unfrozen))} m stayed above 0 °C all "
                  f"year through >= {min_years} consecutive complete years, but the deepest "
                  f"such sensor ({d:g} m) is shallower than {min_no_permafrost_depth_m:g} m: "
                  "permafrost under a deep active layer can be neither confirmed nor excluded")
        return ThermalVerdict(status="insufficient", presence=None, reason_code="too_shallow",
                              reason=reason, **base)
    thawed_all = []
    sparse = []
    undecided = []
    for d, g in by_depth.items():
        n = int(g["n"].sum())
        if g["complete"].sum() == 0 and not (g["state"] == "thawed").any():
            first = cleaned[d].first_valid_index()
            last = cleaned[d].last_valid_index()
            sparse.append(f"{d:g} m: {n} reading{'s' if n != 1 else ''}"
                          + (f" ({first:%Y-%m-%d}..{last:%Y-%m-%d}) in no complete year and "
                             "never proven thawed" if n > 1 else ""))
        elif (g["state"] == "thawed").all():
            thawed_all.append(d)
        else:
            undecided.append(d)
    parts = []
    span = (cleaned.last_valid_index() - cleaned.first_valid_index()).days / 365.25
    if span < min_years:
        code = "too_short"
        parts.append(f"the record spans {span:.1f} years ({cleaned.first_valid_index():%Y-%m-%d}.."
                     f"{cleaned.last_valid_index():%Y-%m-%d}); the definition needs ground at or "
                     f"below 0 °C for {min_years} consecutive years")
        if thawed_all:
            parts.append(f"{_fmt_depths(thawed_all)} m thawed")
        if sparse:
            parts.append("too few readings at " + "; ".join(sparse))
    elif thawed_all and not undecided:
        code = "within_active_layer"
        parts.append(f"every sensor with usable data ({_fmt_depths(thawed_all)} m) thawed in "
                     "every year it recorded, so all lie within the active layer (or seasonally "
                     "frozen ground) and permafrost below them can be neither confirmed nor "
                     "excluded")
        if sparse:
            parts.append("too few readings elsewhere (" + "; ".join(sparse) + ")")
    elif sparse and not thawed_all and not undecided:
        code = "too_few_readings"
        parts.append("too few readings to decide at any depth (" + "; ".join(sparse) + ")")
        if complete_years == 0:
            parts.append("no depth has a complete year")
    else:
        longest = max(_longest_run(g.loc[g["complete"], "year"].tolist())[0]
                      for g in by_depth.values())
        if longest < min_years:
            code = "too_gappy"
            gap = st["max_gap_days"].max()
            parts.append(f"no depth has {min_years} consecutive complete years (record spans "
                         f"{span:.1f} years, longest run of complete years {longest}; a complete "
                         f"year needs >= {min_coverage:.0%} coverage and no gap > "
                         f"{max_gap_days:g} days; longest gap {gap:.0f} days)")
        else:
            code = "too_gappy"
            parts.append(f"no depth is frozen through {min_years} consecutive complete years and "
                         "no sensor shows year-round unfrozen ground below the seasonal layer "
                         "(frozen years are interrupted by thawed or incomplete years)")
        if thawed_all:
            parts.append(f"{_fmt_depths(thawed_all)} m thawed every year")
        if sparse:
            parts.append("too few readings at " + "; ".join(sparse))
    return ThermalVerdict(status="insufficient", presence=None, reason_code=code,
                          reason="; ".join(parts), **base)
