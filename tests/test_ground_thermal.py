"""Ground-thermal details (permafrost.ground_thermal): zero annual amplitude, thaw seasons
with the lag of the annual wave, no MAGT inside the active layer, and the minimum depth of a
"no permafrost" verdict.

Synthetic records use the periodic conduction solution in a half-space (Carslaw & Jaeger
1959 §2.6; Williams & Smith 1989): T(z, t) = Tm + A exp(-z/d) cos(ω (t - t_peak) - z/d), whose
maximum at depth z lags the surface maximum by (z/d)/ω, and whose annual maximum crosses 0 °C
at z = d ln(A/|Tm|) when Tm < 0.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from permafrost.errors import DataError
from permafrost.ground_thermal import active_layer_by_season, annual_ranges, assess_borehole

OMEGA = 2 * np.pi / 365.25


def wave_record(*, tm=-1.0, d=2.0, depths=(0.5, 1, 2, 3, 4, 5, 6, 7, 8, 10, 15),
                start="2000-04-01", years=6, amplitude=None, peak_doy=200) -> pd.DataFrame:
    """Daily temperatures of the lagged annual wave; ``amplitude(t_surface)`` -> A [°C]
    (default 10) is taken at the time the wave left the surface, so one hot summer
    reaches each depth with its own lag."""
    t = pd.date_range(start, periods=int(365.25 * years), freq="D")
    z = np.asarray(depths, dtype=float)
    days = (t - pd.Timestamp("2000-01-01")).days.to_numpy(float)
    lag = (z / d) / OMEGA                                  # days
    ts = days[:, None] - lag[None, :]                      # surface time of the wave
    amp = np.full(ts.shape, 10.0)
    if amplitude is not None:
        amp = amplitude(pd.Timestamp("2000-01-01") + pd.to_timedelta(ts.ravel(), "D"))
        amp = np.asarray(amp, float).reshape(ts.shape)
    temp = tm + amp * np.exp(-z / d) * np.cos(OMEGA * (days[:, None] - peak_doy) - z / d)
    return pd.DataFrame(temp, index=t, columns=z)


def test_zero_annual_amplitude_is_the_0_1_degree_depth_and_is_reported():
    rec = wave_record(depths=(1, 2, 4, 6, 8, 10, 11, 12, 15))
    v = assess_borehole(rec, borehole_id="zaa")
    # monthly-mean range 20 e^{-z/2} x 0.989 <= 0.1 from z = 2 ln(197.8) = 10.57 m -> 11 m
    assert v.zaa_depth_m == 11.0 and v.magt_depth_m == 11.0
    assert v.magt_basis == "zero_annual_amplitude" and v.magt_range_c <= 0.1
    assert v.magt_c == pytest.approx(-1.0, abs=0.01)
    # the old 0.5 °C criterion stops much higher, inside the annual wave
    loose = assess_borehole(rec, borehole_id="zaa", zaa_range_c=0.5)
    assert loose.zaa_depth_m == 8.0


def test_sensor_noise_does_not_hide_zero_annual_amplitude():
    rec = wave_record(depths=(1, 2, 4, 15))
    rng = np.random.default_rng(0)
    rec[15.0] += rng.normal(0, 0.05, len(rec))            # sensor noise at depth
    raw = rec[15.0].groupby(rec.index.year).agg(lambda s: s.max() - s.min())
    assert (raw > 0.2).all()                               # single readings: never 0.1 °C
    ranges = annual_ranges(rec)
    assert (ranges.loc[ranges.depth_m == 15.0, "range_c"] <= 0.1).all()
    assert assess_borehole(rec, borehole_id="noisy").zaa_depth_m == 15.0


def test_active_layer_per_thaw_season_follows_the_lag():
    """A hot summer (A = 20, thaw to 2 ln 20 = 6.0 m) in 2002 between normal ones
    (A = 10, 2 ln 10 = 4.6 m): its heat reaches 6 m about 170 days after the surface peak
    (January 2003), so an October-September year labelled 2003 mixes it with the 2003
    summer; thaw seasons that start in April keep it in 2002."""
    hot = (lambda ts: np.where(ts.year == 2002, 20.0, 10.0))
    rec = wave_record(amplitude=hot, years=6)
    seasons = active_layer_by_season(rec).set_index("season")["alt_m"]
    # linear interpolation of an exponential between sensors 1 m apart
    assert seasons[2002] == pytest.approx(2 * math.log(20), abs=0.15)
    for y in (2001, 2003, 2004):
        assert seasons[y] == pytest.approx(2 * math.log(10), abs=0.15)
    v = assess_borehole(rec, borehole_id="hot")
    assert dict(v.alt_by_season)[2002] == pytest.approx(seasons[2002])
    assert v.alt_max_m == pytest.approx(seasons[2002])
    # the October-September year mixes two summers: Oct 2002-Sep 2003 (hydrological year
    # "2003", labelled here by the summer it ends with minus one) holds the normal 2003
    # summer near the surface but reads the 2002 heat at depth
    mixed = active_layer_by_season(rec, season_start_month=10).set_index("season")["alt_m"]
    assert mixed[2002] == pytest.approx(2 * math.log(20), abs=0.15)
    assert seasons[2003] < mixed[2002] - 1.0
    # the season starts three months before the warmest month at the top sensor (0.5 m:
    # the July surface peak arrives there in early August): the site's own annual cycle,
    # so a southern-hemisphere record (January peak) starts in spring there
    assert v.thaw_season_start_month == 5
    south = wave_record(peak_doy=15, years=4)
    assert assess_borehole(south, borehole_id="s").thaw_season_start_month == 10
    # a season whose frozen sensor is missing after the thawed sensor's peak has no ALT
    gap = rec.copy()
    gap.loc["2002-09-01":"2003-03-31", [5.0, 6.0, 7.0]] = np.nan
    assert 2002 not in set(active_layer_by_season(gap)["season"])


def test_no_magt_without_a_sensor_below_the_active_layer():
    v = assess_borehole(wave_record(depths=(0.5, 1.0, 2.0, 3.0)), borehole_id="shallow")
    assert v.status == "insufficient" and v.reason_code == "within_active_layer"
    assert math.isnan(v.magt_c) and math.isnan(v.magt_depth_m) and v.magt_basis == ""
    # one sensor below the active layer (5 m, frozen all year) gives a MAGT, named as such
    v = assess_borehole(wave_record(depths=(0.5, 1.0, 2.0, 3.0, 5.0, 6.0)), borehole_id="b")
    assert v.status == "permafrost" and v.magt_basis == "deepest_below_active_layer"
    assert v.magt_depth_m == 6.0 and v.magt_c == pytest.approx(-1.0, abs=0.02)
    assert math.isnan(v.zaa_depth_m)


def test_no_permafrost_needs_a_deep_enough_sensor():
    # Tm = +1 °C: unfrozen all year below 4.6 m; range <= 1 °C from 6 m
    shallow = wave_record(tm=1.0, depths=(0.5, 1, 2, 4, 6, 7))
    v = assess_borehole(shallow, borehole_id="warm6")
    assert v.status == "insufficient" and v.reason_code == "too_shallow"
    assert "shallower than 10 m" in v.reason
    assert assess_borehole(shallow, borehole_id="warm6",
                           min_no_permafrost_depth_m=5.0).status == "no_permafrost"
    deep = wave_record(tm=1.0, depths=(0.5, 1, 2, 4, 6, 7, 10, 15))
    v = assess_borehole(deep, borehole_id="warm15")
    assert v.status == "no_permafrost" and "15 m" in v.reason


def test_bad_options_are_one_line_errors():
    rec = wave_record(years=2)
    with pytest.raises(DataError, match="months"):
        assess_borehole(rec, borehole_id="x", thaw_year_start_month=13)
    with pytest.raises(DataError, match="min_no_permafrost_depth_m"):
        assess_borehole(rec, borehole_id="x", min_no_permafrost_depth_m=-1.0)
