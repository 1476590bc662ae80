"""MintPy HDF5 reader: grids, CRS, no-data, units, reference point, missing angles."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from mintpy.utils import readfile, utils0, writefile

from permafrost.errors import CRSError, DataError, GridMismatchError, InputFileError
from permafrost.io.mintpy import (
    MissingGeometryWarning,
    TrackFiles,
    find_track_files,
    mintpy_crs,
    parse_track_spec,
    read_mintpy,
    read_track,
)
from mintpy_factory import make_track


@pytest.fixture
def geo_track(tmp_path):
    return make_track(tmp_path / "asc", crs="geo")


def test_geocoded_degrees_grid_crs_and_centres(geo_track):
    da = read_mintpy(geo_track.velocity, "velocity")
    assert da.rio.crs.to_epsg() == 4326
    t = da.rio.transform()
    assert t.almost_equals(geo_track.transform)
    # coordinates are pixel centres: X_FIRST is the outer corner of the first pixel
    assert da.x.values[0] == pytest.approx(geo_track.transform.c + 0.5 * geo_track.transform.a)
    assert da.y.values[0] == pytest.approx(geo_track.transform.f + 0.5 * geo_track.transform.e)
    assert da.attrs["units"] == "m/year"


def test_nodata_zero_and_nan_masked_but_reference_pixel_kept(geo_track):
    da = read_mintpy(geo_track.velocity, "velocity")
    v = da.values
    assert np.isnan(v[:3, :]).all()           # zero border
    assert np.isnan(v[-4:, -4:]).all()        # NaN corner
    ry, rx = da.attrs["ref_y"], da.attrs["ref_x"]
    assert v[ry, rx] == 0.0                   # the reference itself is not no-data
    assert da.attrs["ref_consistent"] == 1
    raw, _ = readfile.read(str(geo_track.velocity), datasetName="velocity", print_msg=False)
    inner = ~np.isnan(v)
    np.testing.assert_array_equal(v[inner], raw[inner])
    std = read_mintpy(geo_track.velocity, "velocityStd")
    assert np.isnan(std.values[:3]).all() and std.values[ry, rx] == 0.0


def test_utm_with_epsg_and_with_utm_zone_only(tmp_path):
    t = make_track(tmp_path / "a", crs="utm")
    assert read_mintpy(t.velocity).rio.crs.to_epsg() == 32647
    t2 = make_track(tmp_path / "b", crs="utm", epsg_attr=False, utm_zone_attr=True)
    assert read_mintpy(t2.velocity).rio.crs.to_epsg() == 32647


def test_metric_grid_without_crs_is_an_error(tmp_path):
    t = make_track(tmp_path / "a", crs="utm", epsg_attr=False)
    with pytest.raises(CRSError, match="EPSG"):
        read_mintpy(t.velocity)


def test_degrees_without_epsg_is_wgs84():
    assert mintpy_crs({"Y_FIRST": "1", "X_FIRST": "1", "X_UNIT": "degrees"}).to_epsg() == 4326
    assert mintpy_crs({"LENGTH": "3"}) is None  # radar coordinates


def test_units_converted_and_implausible_refused(tmp_path):
    t = make_track(tmp_path / "a")
    data, atr = readfile.read(str(t.velocity), datasetName="velocity", print_msg=False)
    f = tmp_path / "mm.h5"
    writefile.write({"velocity": data * 1000}, str(f), metadata={**atr, "UNIT": "mm/year"},
                    print_msg=False)
    mm = read_mintpy(f, "velocity")
    ok = np.isfinite(mm.values)
    np.testing.assert_allclose(mm.values[ok], read_mintpy(t.velocity).values[ok], rtol=1e-5,
                               atol=1e-9)
    wrong = tmp_path / "wrong.h5"   # values in mm but labelled m/year
    writefile.write({"velocity": data * 1000 + 100}, str(wrong), metadata=atr, print_msg=False)
    with pytest.raises(DataError, match="UNIT"):
        read_mintpy(wrong, "velocity")
    bad = tmp_path / "bad.h5"
    writefile.write({"velocity": data}, str(bad), metadata={**atr, "UNIT": "furlong"},
                    print_msg=False)
    with pytest.raises(DataError, match="unknown velocity unit"):
        read_mintpy(bad, "velocity")


def test_missing_and_corrupt_files(tmp_path, geo_track):
    with pytest.raises(InputFileError, match="not found"):
        read_mintpy(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5 at all")
    with pytest.raises(InputFileError, match="HDF5"):
        read_mintpy(junk)
    with pytest.raises(DataError, match="dataset missing"):
        read_mintpy(geo_track.velocity, "timeseries")


def test_read_track_layers(geo_track):
    ds = read_track(find_track_files(geo_track.folder))
    for k in ("velocity", "velocity_std", "incidence", "azimuth", "height", "coherence", "mask",
              "shadow", "water"):
        assert k in ds, k
    assert ds.attrs["azimuth_source"] == "layer"
    assert np.isnan(ds["incidence"].values[:3]).all()   # 0 = no data in incidenceAngle
    assert not ds["water"].values.any()                 # waterMask 1 = land
    assert ds.attrs["orbit_direction"] == "ascending"


def test_heading_fallback_warns_and_matches_mintpy(tmp_path):
    t = make_track(tmp_path / "d", orbit="DESCENDING", with_azimuth=False)
    with pytest.warns(MissingGeometryWarning, match="HEADING"):
        ds = read_track(find_track_files(t.folder))
    assert ds.attrs["azimuth_source"] == "HEADING"
    expected = utils0.heading2azimuth_angle(float(t.attrs["HEADING"]))
    np.testing.assert_allclose(ds["azimuth"].values, expected, atol=1e-4)
    np.testing.assert_allclose(ds["azimuth"].values, -102.0, atol=1e-4)


def test_no_azimuth_and_no_heading_is_a_clear_error(tmp_path):
    t = make_track(tmp_path / "d", with_azimuth=False)
    for f in (t.velocity, t.geometry):
        import h5py

        with h5py.File(f, "r+") as h:
            del h.attrs["HEADING"]
    with pytest.raises(DataError, match="azimuthAngle") as exc:
        read_track(find_track_files(t.folder))
    assert "\n" not in str(exc.value)


def test_geometry_on_another_grid_is_refused(tmp_path):
    a = make_track(tmp_path / "a")
    b = make_track(tmp_path / "b", shape=(100, 160))
    files = TrackFiles(velocity=a.velocity, geometry=b.geometry, name="x")
    with pytest.raises(GridMismatchError, match="grid"):
        read_track(files)


def test_radar_coordinates_with_lat_lon(tmp_path):
    h, w = 20, 30
    rng = np.random.default_rng(1)
    v = rng.normal(0, 0.01, (h, w)).astype(np.float32)
    atr = {"FILE_TYPE": "velocity", "UNIT": "m/year", "LENGTH": str(h), "WIDTH": str(w),
           "HEADING": "-12.0", "ORBIT_DIRECTION": "ASCENDING", "REF_Y": "2", "REF_X": "3"}
    v[2, 3] = 0
    writefile.write({"velocity": v}, str(tmp_path / "velocity.h5"), metadata=atr,
                    print_msg=False)
    lat = np.linspace(38.6, 38.5, h)[:, None] + np.zeros((1, w))
    lon = np.linspace(99.0, 99.1, w)[None, :] + np.linspace(0, 0.01, h)[:, None]
    geo = {"latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32),
           "incidenceAngle": np.full((h, w), 35, np.float32),
           "azimuthAngle": np.full((h, w), 102, np.float32),
           "height": np.full((h, w), 4000, np.float32)}
    geo["latitude"][0, 0] = 0  # ISCE no-data
    writefile.write(geo, str(tmp_path / "geometryRadar.h5"),
                    metadata={**atr, "FILE_TYPE": "geometry"}, print_msg=False)
    ds = read_track(find_track_files(tmp_path))
    assert ds.attrs["geocoded"] == 0 and ds.rio.crs is None
    assert ds["latitude"].shape == (h, w) and np.isnan(ds["latitude"].values[0, 0])
    np.testing.assert_allclose(ds["longitude"].values[1:, 1:], lon[1:, 1:], atol=1e-5)


def test_parse_track_spec(tmp_path, geo_track):
    spec = f"velocity={geo_track.velocity},geometry={geo_track.geometry},name=A"
    tf = parse_track_spec(spec)
    assert tf.name == "A" and tf.geometry == geo_track.geometry and tf.coherence is None
    assert parse_track_spec(str(geo_track.folder)).coherence == geo_track.coherence
    from permafrost.errors import ConfigError

    with pytest.raises(ConfigError):
        parse_track_spec(f"velocity={geo_track.velocity},colour=red")
    with pytest.raises(InputFileError):
        parse_track_spec(f"velocity={tmp_path / 'missing.h5'}")
    with pytest.raises(InputFileError, match="no velocity.h5"):
        find_track_files(tmp_path)


@pytest.mark.realdata
def test_realdata_kirishima(realdata):
    d = realdata / "mintpy_alos2_kirishima"
    vel = read_mintpy(d / "velocity.h5", "velocity")
    with rasterio.open(d / "height.tif") as src:
        # pixel for pixel with height.tif
        assert vel.shape == (src.height, src.width)
        assert vel.rio.transform().almost_equals(src.transform, precision=1e-9)
        assert vel.rio.crs.to_epsg() == src.crs.to_epsg() == 4326
        xs = (src.transform @ (np.arange(src.width) + 0.5, np.full(src.width, 0.5)))[0]
        np.testing.assert_allclose(vel.x.values, xs, rtol=0, atol=1e-9)
    assert vel.attrs["units"] == "m/year"
    # reference point: REF_Y/REF_X is the pixel whose centre is REF_LAT/REF_LON
    ry, rx = vel.attrs["ref_y"], vel.attrs["ref_x"]
    assert (ry, rx) == (346, 162)
    assert vel.y.values[ry] == pytest.approx(vel.attrs["ref_lat"], abs=1e-7)
    assert vel.x.values[rx] == pytest.approx(vel.attrs["ref_lon"], abs=1e-7)
    assert vel.attrs["ref_consistent"] == 1
    assert vel.values[ry, rx] == 0.0
    # no-data (the file writes 0 outside the valid area) is masked, nothing else
    raw, _ = readfile.read(str(d / "velocity.h5"), datasetName="velocity", print_msg=False)
    assert np.isnan(vel.values).sum() == (raw == 0).sum() - 1   # minus the reference pixel
    assert np.nanmax(np.abs(vel.values)) < 0.1
    # the whole track: HEADING fallback (no geometry file), coherence on the same grid
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        ds = read_track(find_track_files(d))
    assert any(issubclass(r.category, MissingGeometryWarning) and "HEADING" in str(r.message)
               for r in rec)
    assert ds.attrs["azimuth_source"] == "HEADING" and ds.attrs["orbit_direction"] == "descending"
    # HEADING -169.6 (descending, right-looking) -> LOS azimuth about -100.4 deg
    np.testing.assert_allclose(ds["azimuth"].values, utils0.heading2azimuth_angle(-169.61518096923828),
                               atol=1e-4)
    assert 0 < float(ds["coherence"].min()) and float(ds["coherence"].max()) <= 1
    assert "velocity_std" in ds and float(ds["velocity_std"].median()) < 0.02
