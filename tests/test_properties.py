"""Property-based tests (hypothesis) of the science invariants and of the parsers.

* downslope projection: permafrost's LOS unit vector is MintPy's, and projecting a known
  downslope velocity to the LOS with MintPy's vector and back gives it again;
* zone areas: zones + "none" make the valid area, regions tile the map, the whole map's
  footprint is the ellipsoidal area of its bounding box (pyproj.Geod);
* PZI from calibration and from a model is always in [0, 1] (or NaN where no value);
* the parsers (presence values, activity values, prior specs, track specs, pipeline files,
  borehole tables) never fail with anything but a PermafrostError.
"""

from __future__ import annotations

import string
import tomllib

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.transform import from_origin

from permafrost.errors import ConfigError, DataError, PermafrostError

FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOWER = settings(max_examples=25, deadline=None,
                  suppress_health_check=[HealthCheck.function_scoped_fixture])

angles = st.floats(allow_nan=False, allow_infinity=False)


# ----------------------------------------------------------------------------- kinematics


@FAST
@given(inc=angles.filter(lambda v: 15 <= v <= 55), az=angles.filter(lambda v: -180 <= v <= 180))
def test_los_unit_vector_is_mintpys(inc, az):
    from mintpy.utils import utils0

    from permafrost.kinematics import los_unit_vector

    ours = np.array(los_unit_vector(inc, az), dtype=float).ravel()
    ref = np.asarray(utils0.get_unit_vector4component_of_interest(inc, az, comp="enu2los"),
                     dtype=float).ravel()
    np.testing.assert_allclose(ours, ref, atol=1e-12)
    assert abs(np.linalg.norm(ours) - 1) < 1e-12


@FAST
@given(inc=st.floats(20, 50), az=st.floats(-180, 180), slope=st.floats(3, 60),
       aspect=st.floats(0, 360), v=st.floats(-3, 3))
def test_downslope_projection_round_trips_through_mintpy(inc, az, slope, aspect, v):
    """v_down -> ENU -> LOS (MintPy's unit vector) -> v_down (V_LOS / C) is the identity."""
    from mintpy.utils import utils0

    from permafrost.kinematics import downslope_unit_vector, downslope_velocity, los_sensitivity

    s = np.array(downslope_unit_vector(slope, aspect), dtype=float)
    enu = v * s
    unit = np.asarray(utils0.get_unit_vector4component_of_interest(inc, az, comp="enu2los"),
                      dtype=float).ravel()
    v_los = float(unit @ enu)
    c = float(los_sensitivity(inc, az, slope, aspect))
    assert -1 - 1e-12 <= c <= 1 + 1e-12
    assume(abs(c) > 0.05)
    back = float(downslope_velocity(v_los, c))
    assert back == pytest.approx(v, abs=1e-9, rel=1e-9)


@FAST
@given(v=arrays(np.float64, 8, elements=st.floats(-5, 5)),
       c=arrays(np.float64, 8, elements=st.floats(-1, 1, allow_subnormal=False)))
def test_downslope_velocity_is_nan_exactly_where_c_is_zero(v, c):
    from permafrost.kinematics import downslope_velocity

    out = np.asarray(downslope_velocity(v, c))
    assert np.array_equal(np.isnan(out), c == 0)


# ----------------------------------------------------------------------------- areas


def _pzi_da(values: np.ndarray, *, x0=99.0, y0=38.6, res=1 / 1800) -> xr.DataArray:
    ny, nx = values.shape
    tr = from_origin(x0, y0, res, res)
    da = xr.DataArray(values, dims=("y", "x"),
                      coords={"y": y0 - (np.arange(ny) + 0.5) * res,
                              "x": x0 + (np.arange(nx) + 0.5) * res})
    return da.rio.write_crs("EPSG:4326").rio.write_transform(tr)


pzi_values = st.one_of(st.floats(0, 1), st.just(float("nan")), st.sampled_from(
    [0.0, 0.01, 0.1, 0.5, 0.9, 1.0, 0.009999, 0.0999, 0.4999, 0.8999]))


@SLOWER
@given(data=st.data(), ny=st.integers(2, 12), nx=st.integers(2, 12),
       y0=st.floats(-80, 80), block_rows=st.integers(1, 5))
def test_zone_areas_sum_to_the_region_and_the_map(data, ny, nx, y0, block_rows):
    from pyproj import Geod

    from permafrost.area import zone_statistics

    vals = data.draw(arrays(np.float64, (ny, nx), elements=pzi_values))
    res = 0.01
    da = _pzi_da(vals, y0=y0, res=res)
    split = data.draw(st.integers(1, nx - 1))
    left = shapely.box(99.0, y0 - ny * res, 99.0 + split * res, y0)
    right = shapely.box(99.0 + split * res, y0 - ny * res, 99.0 + nx * res, y0)
    regions = gpd.GeoDataFrame({"name": ["left", "right"]}, geometry=[left, right],
                               crs="EPSG:4326")
    if np.isnan(vals).all():  # nothing to count: refused, never a table of zeros
        with pytest.raises(DataError, match="no valid cell"):
            zone_statistics(da, regions=regions, block_rows=block_rows)
        return
    out = zone_statistics(da, regions=regions, block_rows=block_rows)
    units = {u["name"]: u for u in out.units}
    whole = units["all"]
    zones = ("continuous", "discontinuous", "sporadic", "isolated")
    zsum = sum(whole[f"{z}_km2"] for z in zones)
    assert whole["region_km2"] == pytest.approx(zsum, rel=1e-9, abs=1e-12)
    assert whole["pzi_ge_0.5_km2"] == pytest.approx(
        whole["continuous_km2"] + whole["discontinuous_km2"], rel=1e-9, abs=1e-12)
    assert whole["region_km2"] <= whole["denominator_km2"] * (1 + 1e-12) + 1e-12
    assert whole["pzi_weighted_km2"] <= whole["denominator_km2"] * (1 + 1e-9) + 1e-12
    # the footprint is the geodesic area of the grid's bounding box
    geod = Geod(ellps="WGS84")
    box = shapely.box(99.0, y0 - ny * res, 99.0 + nx * res, y0)
    ref = abs(geod.geometry_area_perimeter(shapely.segmentize(box, res / 4))[0]) / 1e6
    assert whole["footprint_km2"] == pytest.approx(ref, rel=1e-6)
    # two regions that tile the map add up to it, class by class
    for key in ("footprint_km2", "denominator_km2", "nodata_km2", "region_km2",
                "pzi_ge_0.5_km2", "pzi_weighted_km2", *[f"{z}_km2" for z in zones]):
        assert units["left"][key] + units["right"][key] == pytest.approx(
            whole[key], rel=1e-9, abs=1e-12), key


# ----------------------------------------------------------------------------- PZI in [0, 1]


@SLOWER
@given(p=arrays(np.float64, st.integers(5, 60), elements=st.floats(0, 1)),
       seed=st.integers(0, 2**16), method=st.sampled_from(["isotonic", "sigmoid", "none"]),
       q=arrays(np.float64, 30, elements=st.one_of(st.floats(0, 1), st.just(float("nan")))))
def test_calibrated_pzi_is_a_probability(p, seed, method, q):
    from permafrost.calibration import apply_calibration, fit_calibration

    y = np.random.default_rng(seed).integers(0, 2, p.size)
    assume(0 < y.sum() < y.size)
    cal = fit_calibration(p, y, method=method)
    out = np.asarray(apply_calibration(cal, q))
    fin = ~np.isnan(q)
    assert np.isnan(out[~fin]).all()
    assert np.all((out[fin] >= 0) & (out[fin] <= 1))


@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    from factories import train_small_model
    from permafrost.io.model import load_model

    return load_model(train_small_model(tmp_path_factory.mktemp("m") / "model"))


@SLOWER
@given(X=arrays(np.float32, (40, 4), elements=st.one_of(
    st.floats(-1e6, 1e6, width=32), st.just(float("nan")))))
def test_model_pzi_is_a_probability_for_any_covariates(small_model, X):
    p = np.asarray(small_model.predict_pzi(X))
    assert p.shape == (40,)
    assert np.all((p >= 0) & (p <= 1)), p


# ----------------------------------------------------------------------------- parsers

any_value = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(),
                      st.text(max_size=12),
                      st.sampled_from(["1", "0", "Yes", " no ", "TRUE", "f", "Permafrost",
                                       "non-permafrost", "absent", "present", "NA", "", "nan",
                                       "1.0", "0.0", "2", "-1", "oui"]))


@FAST
@given(values=st.lists(any_value, max_size=20))
def test_presence_parser_returns_0_1_na_or_a_data_error(values):
    from permafrost.io.boreholes import parse_presence

    try:
        out = parse_presence(values, path="t.csv")
    except DataError as exc:
        assert "t.csv" in str(exc) and "presence" in str(exc)
        return
    assert len(out) == len(values)
    assert set(out.dropna().astype(int)) <= {0, 1}


activity_values = st.one_of(st.text(max_size=15), st.sampled_from(
    ["active", "Active ", "TRANSITIONAL", "relict", "Relict", "intact", "uncertain",
     "inactive", "fossil", "dormant", "", "nan"]), st.integers(), st.floats())


@FAST
@given(values=st.lists(activity_values, min_size=1, max_size=12))
def test_activity_parser_returns_labels_or_a_data_error(values):
    from permafrost.labels import rock_glacier_labels

    gdf = gpd.GeoDataFrame({"rg_id": [f"r{i}" for i in range(len(values))],
                            "activity": pd.Series(values, dtype=object)},
                           geometry=[shapely.Point(99 + i * 0.01, 38.5)
                                     for i in range(len(values))], crs="EPSG:4326")
    gdf.attrs["source"] = "inv.gpkg"
    try:
        out = rock_glacier_labels(gdf)
    except DataError as exc:
        assert "inv.gpkg" in str(exc) and "activity" in str(exc)
        return
    assert len(out) == len(values)
    assert set(out["label"].dropna().astype(int)) <= {0, 1}
    # uncertain (and only uncertain) has no label
    assert list(out["label"].isna()) == [str(v).strip().lower() == "uncertain" for v in values]


@FAST
@given(spec=st.one_of(st.text(max_size=40), st.builds(
    lambda n, f, k, a, b: f"{n}={f}:{k}:{a}{b}", st.text(max_size=6), st.text(max_size=8),
    st.sampled_from(["categorical", "continuous", "other"]), st.text(max_size=6),
    st.sampled_from(["", ":2", ":1", ":x"]))))
def test_prior_spec_parser_never_crashes(spec):
    from permafrost.validation import parse_prior_spec

    try:
        parse_prior_spec(spec)
    except DataError:
        pass


@FAST
@given(spec=st.text(alphabet=string.ascii_letters + "=,./_ ", max_size=40))
def test_track_spec_parser_never_crashes(spec, tmp_path):
    from permafrost.io.mintpy import parse_track_spec

    try:
        parse_track_spec(str(tmp_path / "nothing") + spec if "=" not in spec else spec)
    except PermafrostError:
        pass


toml_scalars = st.one_of(st.integers(-10, 10), st.floats(allow_nan=False, allow_infinity=False),
                         st.booleans(), st.text(max_size=8))


@SLOWER
@given(section=st.sampled_from(["pipeline", "inputs", "kinematics", "labels", "train",
                                "predict", "stats", "validate", "report", "scenarios.x",
                                "trian"]),
       key=st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=12),
       value=toml_scalars, garbage=st.text(max_size=20))
def test_pipeline_loader_only_raises_config_errors(tmp_path, section, key, value, garbage):
    """Any change to a valid pipeline is accepted or refused with a ConfigError."""
    import json

    from permafrost.config import load_pipeline
    from factories import demo_pipeline_text

    base = demo_pipeline_text(tmp_path / "out")
    lit = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
    for text in (base + f"\n[{section}]\n{key} = {lit}\n", base + garbage):
        p = tmp_path / "p.toml"
        p.write_text(text)
        try:
            tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            pass
        try:
            load_pipeline(p)
        except ConfigError as exc:
            assert "p.toml" in str(exc)


@SLOWER
@given(cells=st.lists(st.lists(st.one_of(st.text(alphabet=string.printable, max_size=8),
                                         st.floats().map(repr)), min_size=7, max_size=7),
                      max_size=6))
def test_borehole_table_reader_only_raises_permafrost_errors(tmp_path, cells):
    import csv
    import io

    from permafrost.io.boreholes import read_presence_table

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["borehole_id", "lon", "lat", "elevation_m", "presence", "magt_c", "year"])
    w.writerows(cells)
    p = tmp_path / "bh.csv"
    p.write_text(buf.getvalue())
    try:
        out = read_presence_table(p)
    except PermafrostError as exc:
        assert "bh.csv" in str(exc)
        return
    assert len(out) == len(cells)
    assert np.isfinite(out.geometry.x).all() and (out.geometry.y.abs() <= 90).all()
