"""Borehole readers (permafrost.io.boreholes) and the ground-thermal science (permafrost.ground_thermal).

Synthetic records follow the analytic solution of periodic heat conduction in a
homogeneous half-space (Carslaw & Jaeger 1959; Williams & Smith 1989, eq. 4.7):

    T(z, t) = Tm + A0 exp(-z/d) sin(omega t - z/d)

so the annual maximum at depth z is Tm + A0 exp(-z/d), the active-layer thickness is
d ln(A0/|Tm|) when Tm < 0, and the annual range 2 A0 exp(-z/d) gives the depth of (near-)zero
annual amplitude.  Real-data tests use ../shared/realdata (skipped when absent).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permafrost.errors import CRSError, DataError, InputFileError
from permafrost.ground_thermal import (active_layer_thickness, annual_states, assess_borehole,
                                       clean_ground_temperatures)
from permafrost.io.boreholes import (PRESENCE_FALSE, PRESENCE_TRUE, parse_presence,
                                     read_borehole_coords, read_gtnp, read_permos,
                                     read_presence_table)


# --------------------------------------------------------------------------- factories
def synthetic_record(*, tm=-1.0, a0=10.0, d=2.0, depths=(0.5, 1, 2, 3, 4, 5, 6, 7.5, 10, 15),
                     start="2000-10-01", years=4) -> pd.DataFrame:
    """Daily temperatures of the analytic half-space solution (see module docstring)."""
    t = pd.date_range(start, periods=int(365.25 * years), freq="D")
    days = np.arange(len(t))
    z = np.asarray(depths, dtype=float)
    omega = 2 * np.pi / 365.25
    temp = tm + a0 * np.exp(-z[None, :] / d) * np.sin(omega * days[:, None] - z[None, :] / d)
    return pd.DataFrame(temp, index=t, columns=z)


# --------------------------------------------------------------------------- science
def test_alt_and_magt_match_the_analytic_half_space():
    # Tm = -1, A0 = 10, d = 2 m: ALT = 2 ln 10 = 4.605 m (Tmax crosses 0 there);
    # annual range 20 exp(-z/2) <= 0.1 (zero annual amplitude) from z = 2 ln 200 = 10.6 m ->
    # first such sensor 15 m, where the mean is Tm = -1 (the sinusoid averages out).
    v = assess_borehole(synthetic_record(), borehole_id="syn")
    assert v.status == "permafrost" and v.presence == 1
    assert v.reason_code == "frozen_two_years"
    # linear interpolation between 4 m (Tmax 0.353) and 5 m (Tmax -0.179) of an exponential
    z0 = 4 + 0.3533 / (0.3533 + 0.1792)
    assert v.alt_m == pytest.approx(z0, abs=0.02)
    assert abs(v.alt_m - 2 * math.log(10)) < 0.15
    assert v.magt_depth_m == 15.0 and v.magt_basis == "zero_annual_amplitude"
    assert v.zaa_depth_m == 15.0 and v.magt_range_c <= 0.1
    assert v.magt_c == pytest.approx(-1.0, abs=0.02)
    # 5 m is the shallowest sensor whose maximum (-1 + 10 e^-2.5 = -0.18) stays below 0
    assert v.permafrost_depth_m == 5.0


def test_unfrozen_below_seasonal_layer_is_no_permafrost():
    # Tm = +1: below z = 2 ln 10 = 4.6 m the minimum Tm - A0 e^{-z/d} stays above 0, and the
    # range is <= 1 °C from 2 ln 20 = 6 m: the 15 m sensor proves unfrozen ground at depth.
    v = assess_borehole(synthetic_record(tm=1.0), borehole_id="warm")
    assert v.status == "no_permafrost" and v.presence == 0
    assert v.reason_code == "unfrozen_below_seasonal_layer"
    assert v.magt_c == pytest.approx(1.0, abs=0.02)


def test_only_shallow_sensors_are_not_guessed():
    # Sensors at 0.25-1 m all thaw (Tmax = -1 + 10 e^{-0.5} = 5.1 °C at 1 m): all lie in the
    # active layer, so presence cannot be decided -- even though permafrost exists below.
    v = assess_borehole(synthetic_record(depths=(0.25, 0.5, 1.0)), borehole_id="shallow")
    assert v.status == "insufficient" and v.presence is None
    assert v.reason_code == "within_active_layer"
    assert "active layer" in v.reason


def test_short_record_is_insufficient_with_reason():
    # 1.5 years of data: at most one complete year, two consecutive are needed
    v = assess_borehole(synthetic_record(years=1.5), borehole_id="short")
    assert v.status == "insufficient" and v.reason_code == "too_short"
    assert "spans 1.5 years" in v.reason and "2 consecutive years" in v.reason


def test_gappy_record_is_insufficient_with_reason():
    # 6 years but every second year loses 60 days in winter: no two consecutive complete years
    rec = synthetic_record(years=6)
    for y in (2002, 2004, 2006):
        rec.loc[f"{y - 1}-12-01":f"{y}-01-29"] = np.nan
    v = assess_borehole(rec, borehole_id="gappy")
    assert v.status == "insufficient" and v.reason_code == "too_gappy"
    assert "gap" in v.reason


def test_spikes_and_impossible_values_are_removed_not_believed():
    # three isolated +6 °C spikes per year at every depth would make every depth "thawed"
    # (>= 3 readings above 0); the running-median rule removes them, the range check 999s.
    rec = synthetic_record()
    rng = np.random.default_rng(0)
    spike_rows = []
    for y in range(4):
        spike_rows += list(y * 365 + rng.choice(np.arange(20, 340, 40), 3, replace=False))
    rec.iloc[spike_rows, :] += 6.0
    rec.iloc[[5, 400], 3] = 999.0
    naive = assess_borehole(rec, borehole_id="spiky", min_spike_c=100.0, n_mad=1e9,
                            valid_range_c=(-1e9, 1e9))
    assert naive.status != "permafrost"  # without cleaning the spikes would win
    v = assess_borehole(rec, borehole_id="spiky")
    assert v.status == "permafrost"
    assert v.spikes >= len(spike_rows) * rec.shape[1] - 2 and v.out_of_range == 2
    assert v.magt_c == pytest.approx(-1.0, abs=0.05)


def test_clean_counts_match_the_mask():
    rec = synthetic_record(years=1)
    rec.iloc[100, 0] = -500.0
    cleaned, counts = clean_ground_temperatures(rec)
    assert counts.loc[0.5, "out_of_range"] == 1
    assert int(counts["valid"].sum()) == int(cleaned.notna().sum().sum())


def test_annual_states_thaw_needs_readings_frozen_needs_complete_year():
    rec = synthetic_record(years=2)
    rec.loc["2001-03-01":"2001-09-30"] = np.nan  # first year incomplete
    st_ = annual_states(rec)
    first = st_[(st_["year"] == 2001)]
    assert not first["complete"].any()
    # deep sensors (frozen, incomplete year) are unknown, not frozen
    assert (first.loc[first["depth_m"] >= 5, "state"] == "unknown").all()
    # shallow sensors thawed in Oct-Feb?  0.5 m: Tmax in that window > 0 -> proven thawed
    assert first.loc[first["depth_m"] == 0.5, "state"].item() == "thawed"


@pytest.mark.parametrize("profile,expected", [
    (([1, 2, 3], [2.0, 1.0, -1.0]), 2.5),   # linear crossing between 2 m and 3 m
    (([1, 2, 3], [-1.0, -2.0, -3.0]), np.nan),  # already frozen at the top sensor
    (([1, 2, 3], [3.0, 2.0, 1.0]), np.nan),  # thaw deeper than the sensors
    (([1, 2, 3], [3.0, np.nan, -1.0]), np.nan),  # missing value on the way
])
def test_active_layer_thickness_cases(profile, expected):
    z, t = profile
    got = active_layer_thickness(np.array(z, float), np.array(t, float))
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_assess_rejects_bad_tables():
    rec = synthetic_record(years=1)
    with pytest.raises(DataError, match="time index"):
        assess_borehole(rec.reset_index(drop=True), borehole_id="x")
    bad = rec.copy()
    bad.columns = ["a"] * 1 + list(bad.columns[1:])
    with pytest.raises(DataError, match="depths"):
        assess_borehole(bad, borehole_id="x")


# --------------------------------------------------------------------------- presence parser
def _random_case(draw, word):
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c for c, f in zip(word, flips))


@st.composite
def presence_token(draw):
    value = draw(st.sampled_from([1, 0]))
    word = draw(st.sampled_from(sorted(PRESENCE_TRUE if value else PRESENCE_FALSE)))
    pad = draw(st.sampled_from(["", " ", "  ", "\t"]))
    return value, pad + _random_case(draw, word) + pad


@settings(max_examples=200, deadline=None)
@given(st.lists(presence_token(), min_size=1, max_size=20))
def test_parse_presence_accepts_every_spelling(tokens):
    values = [t for _, t in tokens]
    got = parse_presence(values)
    assert got.tolist() == [v for v, _ in tokens]


_VOCAB = {" ".join(w.lower().split()) for w in PRESENCE_TRUE | PRESENCE_FALSE} | {
    "", "na", "nan", "none", "null", "n/a", "-"}


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=12).filter(lambda s: " ".join(s.lower().split()) not in _VOCAB),
       st.integers(min_value=0, max_value=5))
def test_parse_presence_names_unparseable_values_and_rows(bad, pos):
    values = ["yes"] * 6
    values[pos] = bad
    with pytest.raises(DataError) as exc:
        parse_presence(values, path="bh.csv")
    msg = str(exc.value)
    assert repr(bad) in msg and f"rows {pos}" in msg and "\n" not in msg


def test_parse_presence_missing_is_unknown():
    got = parse_presence(["", "NA", None, np.nan, "yes"])
    assert got.isna().tolist() == [True, True, True, True, False]


# --------------------------------------------------------------------------- presence tables
def test_presence_table_lonlat_and_options(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("borehole_id,lon,lat,presence,magt_c,year\n"
                 "A,99.1,38.5,Permafrost,-0.4,2010\nB,99.2,38.6,non-permafrost,,2011\n"
                 "C,99.3,38.7,,1.5,\n")
    gdf = read_presence_table(f)
    assert gdf.crs.to_epsg() == 4326
    assert gdf["presence"].tolist()[:2] == [1, 0] and pd.isna(gdf["presence"].iloc[2])
    assert gdf["magt_c"].iloc[2] == 1.5 and gdf.geometry.x.iloc[1] == pytest.approx(99.2)


def test_presence_table_xy_needs_crs(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("id,x,y,presence\nA,500000,4260000,1\n")
    with pytest.raises(CRSError, match="without a CRS"):
        read_presence_table(f)
    gdf = read_presence_table(f, crs="EPSG:32647")
    assert gdf.crs.to_epsg() == 32647


def test_presence_table_vector(tmp_path):
    import geopandas as gpd
    from shapely.geometry import Point
    g = gpd.GeoDataFrame({"borehole_id": ["A", "B"], "presence": ["yes", "no"]},
                         geometry=[Point(99, 38), Point(99.1, 38.1)], crs=4326)
    g.to_file(tmp_path / "bh.gpkg")
    gdf = read_presence_table(tmp_path / "bh.gpkg")
    assert gdf["presence"].tolist() == [1, 0]


@pytest.mark.parametrize("body,match", [
    ("borehole_id,lon,lat,presence\nA,99,38,1\nA,99.1,38.1,0\n", r"duplicate ids \['A'\] in rows 0, 1"),
    ("borehole_id,lon,lat,presence\nA,99,38,maybe\n", r"'maybe' in rows 0"),
    ("borehole_id,lon,lat,presence\nA,38.5,99.0,1\n", r"latitude outside ±90.*swapped"),
    ("borehole_id,lon,lat,presence\nA,,38,1\n", r"rows without a position: 0"),
    ("borehole_id,lon,lat\nA,99,38\n", r"neither a presence nor a MAGT column"),
    ("borehole_id,lon,lat,presence,magt_c\nA,99,38,1,warm\n", r"non-numeric values"),
])
def test_presence_table_bad_input_one_line(tmp_path, body, match):
    f = tmp_path / "bh.csv"
    f.write_text(body)
    with pytest.raises(DataError, match=match) as exc:
        read_presence_table(f)
    assert "\n" not in str(exc.value) and str(f) in str(exc.value)


def test_missing_file():
    with pytest.raises(InputFileError):
        read_presence_table("/nonexistent/bh.csv")


def test_coords_table(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("borehole_id,lon,lat,elevation_m\nX,7.8,46.5,2900\n")
    c = read_borehole_coords(f)
    assert c.loc["X", "elevation_m"] == 2900
    f.write_text("borehole_id,lon,lat\nX,7.8,46.5\nX,7.9,46.6\n")
    with pytest.raises(DataError, match="duplicate"):
        read_borehole_coords(f)


# --------------------------------------------------------------------------- GTN-P and PERMOS
def _write_gtnp(tmp_path, rec: pd.DataFrame, *, bid=77, name="SYN_01"):
    long = rec.stack().rename("temperature").reset_index()
    long.columns = ["date", "depth", "temperature"]
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    long.insert(0, "id", np.arange(len(long)))
    long["flag"] = ""
    long["dataset_id"] = 9000
    long["borehole_id"] = bid
    long["site_id"] = 1
    csv = tmp_path / "g.csv"
    long.to_csv(csv, index=False)
    meta = [{"id": 9000, "borehole": {"id": bid, "name": name, "site_name": "Synthetic",
                                      "location": {"latitude": 38.5, "longitude": 99.0,
                                                   "elevation": 4500.0}}}]
    mj = tmp_path / "g.json"
    mj.write_text(json.dumps(meta))
    return csv, mj


def test_gtnp_round_trip(tmp_path):
    rec = synthetic_record(years=3, depths=(1.0, 5.0, 10.0))
    csv, mj = _write_gtnp(tmp_path, rec)
    (r,) = read_gtnp(csv, mj)
    assert r.borehole_id == "SYN_01" and (r.lon, r.lat, r.elevation_m) == (99.0, 38.5, 4500.0)
    assert list(r.temperatures.columns) == [1.0, 5.0, 10.0]
    np.testing.assert_allclose(r.temperatures.to_numpy(), rec.to_numpy(), atol=1e-9)


def test_gtnp_missing_metadata(tmp_path):
    csv, mj = _write_gtnp(tmp_path, synthetic_record(years=1, depths=(1.0,)))
    mj.write_text(json.dumps([{"id": 1, "borehole": {"id": 5, "location": {}}}]))
    with pytest.raises(DataError, match=r"no metadata for borehole_id \['77'\]"):
        read_gtnp(csv, mj)


def test_permos_header_detection(tmp_path):
    body = "Time,0.5,5\n2002-01-01 00:00:00,-1.0,-0.5\n2002-01-02 00:00:00,NA,-999\n"
    f = tmp_path / "x.csv"
    f.write_text("Swiss Permafrost Monitoring Network PERMOS\npolicy\nBorehole ABC_1 FROM x\n\n"
                 + body)
    r = read_permos(f, lon=7.8, lat=46.5)
    assert r.borehole_id == "ABC_1" and r.temperatures.shape == (2, 2)
    assert r.temperatures.isna().sum().sum() == 2
    g = tmp_path / "y.csv"
    g.write_text(body)
    assert read_permos(g).borehole_id == "y"
    h = tmp_path / "z.csv"
    h.write_text("no header here\n1,2\n")
    with pytest.raises(DataError, match="Time"):
        read_permos(h)


# --------------------------------------------------------------------------- real data
SCHILTHORN = ["SCH_5000", "SCH_5198"]


@pytest.mark.realdata
@pytest.mark.parametrize("name", SCHILTHORN)
def test_schilthorn_is_warm_permafrost(realdata, name):
    """Both PERMOS Schilthorn boreholes: permafrost, MAGT a few tenths below 0 °C at depth.

    Why: Schilthorn (2900 m, Bernese Alps) is the classic warm-permafrost PERMOS site; below
    the ~4-9 m active layer (Hilbich et al. 2008, J. Geophys. Res. 113, F01S90, reported
    ~4-5 m and 8.6 m after the 2003 heat wave) ground stays between about -0.2 and -0.7 °C.
    The files hold spikes (SCH_5000 50 m reads up to +2.8 °C, 13 m +1.3 °C) and long gaps;
    the verdict must survive them.
    """
    r = read_permos(realdata / "permos_schilthorn_boreholes" / f"{name}.csv")
    assert r.borehole_id == name
    v = assess_borehole(r.temperatures, borehole_id=name)
    assert v.status == "permafrost" and v.presence == 1, v.reason
    assert -0.6 < v.magt_c < -0.1, v
    assert v.magt_depth_m >= 5.0
    # SCH_5000's sensors reach zero annual amplitude (<= 0.1 °C) at 20 m; SCH_5198's deepest
    # (13.7 m) does not, so its MAGT comes from the deepest sensor below the active layer
    assert v.magt_basis == {"SCH_5000": "zero_annual_amplitude",
                            "SCH_5198": "deepest_below_active_layer"}[name]
    assert 3.0 < v.alt_m < 10.0 and v.alt_years >= 5
    # thaw seasons: the 2003 heat wave belongs to 2003 (Hilbich et al. 2008: 8.6 m), and
    # its lagged maxima at depth no longer make 2004 read 8.65 m
    seasons = dict(v.alt_by_season)
    assert 8.0 < seasons[2003] < 10.0
    assert seasons.get(2004, 0.0) < 8.0
    assert v.permafrost_depth_m <= 10.0
    assert v.spikes > 0  # spikes were found and removed, not believed


@pytest.mark.realdata
def test_gtnp_excerpts_are_undecidable_with_reasons(realdata):
    """GTN-P excerpts hold only near-surface sensors: verdict 'insufficient' with the reason.

    Why: Murtèl-Corvatsch (0.25-1 m) and Flüela (0.25 m) sensors thaw every summer (they lie
    within the active layer; permafrost, if any, lies deeper); Muragl has a winter-only
    surface series and one reading each at 2.59 m and 59.59 m.  None of these can show ground
    at or below 0 °C for two consecutive years, nor rule it out.
    """
    d = realdata / "tsp_gtnp_permos_boreholes"
    recs = {r.borehole_id: r for r in read_gtnp(d / "gtnp2026-multi.csv",
                                                 d / "gtnp2026-multi_metadata.json")}
    assert set(recs) == {"COR_0315", "FLU_0102", "MUR_0499"}
    assert recs["COR_0315"].lat == pytest.approx(46.42879)
    verdicts = {k: assess_borehole(r.temperatures, borehole_id=k) for k, r in recs.items()}
    for k in ("COR_0315", "FLU_0102"):
        assert verdicts[k].status == "insufficient" and verdicts[k].presence is None
        assert verdicts[k].reason_code == "within_active_layer"
        assert "active layer" in verdicts[k].reason
    mur = verdicts["MUR_0499"]
    assert mur.status == "insufficient" and mur.reason_code == "too_few_readings"
    assert "2.59 m: 1 reading" in mur.reason and "59.59 m: 1 reading" in mur.reason


@pytest.mark.realdata
def test_example_permos_week_is_too_short(realdata):
    # 7 days (2002-11-18..24): no complete year at any depth
    r = read_permos(realdata / "tsp_gtnp_permos_boreholes" / "example_permos.csv")
    assert r.temperatures.shape == (7, 11) and r.temperatures[0.0].isna().all()
    v = assess_borehole(r.temperatures, borehole_id=r.borehole_id)
    assert v.status == "insufficient" and v.reason_code == "too_short"
    assert "spans 0.0 years" in v.reason


def test_presence_table_explicit_lonlat_names_and_magt_alias(tmp_path):
    f = tmp_path / "bh.csv"
    f.write_text("name,Longitude,Latitude,MAGT\nA,99.1,38.5,-0.2\n")
    gdf = read_presence_table(f, x_column="Longitude", y_column="Latitude")
    assert gdf.crs.to_epsg() == 4326 and gdf["magt_c"].iloc[0] == -0.2
    assert pd.isna(gdf["presence"].iloc[0])
