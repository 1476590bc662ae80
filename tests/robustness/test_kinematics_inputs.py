"""`permafrost kinematics` with malformed MintPy files, outlines and outputs."""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from .conftest import Outputs, assert_clean_failure, invoke, rewrite_h5


def _run(track, out, outlines=None, *extra):
    return invoke(["kinematics", "--track", track.folder, "--outlines",
                   outlines or track.folder / "outlines.gpkg", "--out", out, *extra])


def test_valid_track_works(make_track, tmp_path):
    """The baseline the malformed cases are derived from succeeds."""
    t = make_track()
    res = _run(t, tmp_path / "kin.gpkg")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "kin.gpkg").is_file()


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_velocity_h5(make_track, tmp_path, keep):
    t = make_track()
    data = t.velocity.read_bytes()
    t.velocity.write_bytes(data[: int(len(data) * keep)])
    out = tmp_path / "kin.gpkg"
    snap = Outputs.take(out)
    assert_clean_failure(_run(t, out), names=t.velocity, outputs=snap)


def test_corrupt_geometry_h5(make_track, tmp_path):
    t = make_track()
    data = bytearray(t.geometry.read_bytes())
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 64, 40)  # the superblock and signature
    for i in idx:
        data[int(i)] ^= 0xFF
    t.geometry.write_bytes(bytes(data))
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.geometry, outputs=Outputs.take(out))


def test_velocity_file_is_not_hdf5(make_track, tmp_path):
    t = make_track()
    t.velocity.write_text("velocity,m/year\n0.1\n")
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, outputs=Outputs.take(out))


def test_velocity_dataset_missing(make_track, tmp_path):
    t = make_track()
    rewrite_h5(t.velocity, t.velocity, drop=("velocity",))
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="velocity",
                         outputs=Outputs.take(out))


def test_no_azimuth_layer_and_no_heading(make_track, tmp_path):
    t = make_track(with_azimuth=False)
    for f in (t.velocity, t.geometry, t.coherence, t.mask):
        rewrite_h5(f, f, drop_attrs=("HEADING",))
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.geometry, field="azimuthAngle",
                         outputs=Outputs.take(out))


def test_unknown_velocity_unit(make_track, tmp_path):
    t = make_track()
    rewrite_h5(t.velocity, t.velocity, attrs={"UNIT": "furlong/fortnight"})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="UNIT", outputs=Outputs.take(out))


def test_velocities_in_mm_labelled_m_per_year(make_track, tmp_path):
    """Wrong units: the values are mm/year but UNIT says m/year (implausible magnitudes)."""
    import h5py

    t = make_track()
    with h5py.File(t.velocity, "r") as f:
        v = f["velocity"][()]
    # a realistic scene: most pixels move (noise, seasonal residuals of a few cm)
    rng = np.random.default_rng(1)
    v_mm = (v + rng.normal(0, 0.06, v.shape).astype("float32")) * 1000.0
    rewrite_h5(t.velocity, t.velocity, data={"velocity": v_mm.astype("float32")})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="UNIT", outputs=Outputs.take(out))


def test_metric_grid_without_epsg(make_track, tmp_path):
    t = make_track(crs="utm", epsg_attr=False)
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="EPSG", outputs=Outputs.take(out))


def test_geometry_on_another_grid(make_track, tmp_path):
    t = make_track()
    shift = 7 / 1800  # the reference point moves with the grid: only the grids disagree
    rewrite_h5(t.geometry, t.geometry,
               attrs={"X_FIRST": repr(float(t.attrs["X_FIRST"]) + shift),
                      "REF_LON": repr(float(t.attrs["REF_LON"]) + shift)})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.geometry, outputs=Outputs.take(out))


def test_coherence_with_another_shape(make_track, tmp_path):
    t = make_track()
    coh = np.full((30, 80), 0.9, "float32")
    rewrite_h5(t.coherence, t.coherence, data={"temporalCoherence": coh},
               attrs={"LENGTH": "30"})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.coherence, outputs=Outputs.take(out))


def test_time_series_instead_of_velocity(make_track, tmp_path):
    t = make_track()
    stack = np.zeros((3, 60, 80), "float32")
    rewrite_h5(t.velocity, t.velocity, data={"velocity": stack})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="velocity",
                         outputs=Outputs.take(out))


def test_outlines_without_crs(make_track, tmp_path):
    t = make_track()
    shp = tmp_path / "nocrs.shp"  # a shapefile without .prj (GeoJSON would imply WGS84)
    t.outlines.set_crs(None, allow_override=True).to_file(shp)
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out, shp), names=shp, outputs=Outputs.take(out))


def test_outlines_empty_layer(make_track, tmp_path):
    t = make_track()
    p = tmp_path / "empty.gpkg"
    t.outlines.iloc[:0].to_file(p, driver="GPKG")
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out, p), names=p, outputs=Outputs.take(out))


def test_outlines_with_self_intersecting_polygon_are_repaired_and_reported(make_track,
                                                                          tmp_path):
    """A bow-tie outline is repaired (shapely.make_valid) and the repair is recorded per
    outline in ``kin_geometry_note`` -- never dropped silently."""
    import geopandas as gpd

    t = make_track()
    bad = t.outlines.copy()
    b = bad.geometry.iloc[1].bounds
    bowtie = shapely.Polygon([(b[0], b[1]), (b[2], b[3]), (b[2], b[1]), (b[0], b[3])])
    bad.loc[bad.index[1], "geometry"] = bowtie
    p = tmp_path / "bowtie.gpkg"
    bad.to_file(p, driver="GPKG")
    out = tmp_path / "kin.gpkg"
    res = _run(t, out, p)
    assert res.exit_code == 0, res.stderr
    got = gpd.read_file(out)
    assert len(got) == len(bad)
    from permafrost.kinematics import PREFIX

    notes = got.set_index("rg_id")[PREFIX + "geometry_note"]
    assert "invalid geometry repaired" in notes[bad["rg_id"].iloc[1]]
    assert (notes.drop(bad["rg_id"].iloc[1]).fillna("") == "").all()


def test_track_folder_without_velocity(make_track, tmp_path):
    t = make_track()
    t.velocity.unlink()
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.folder.name, outputs=Outputs.take(out))


def test_output_parent_is_a_file(make_track, tmp_path):
    t = make_track()
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("I am a file")
    out = blocker / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=blocker.name)
    assert blocker.read_text() == "I am a file"


def test_unknown_epsg_code(make_track, tmp_path):
    t = make_track()
    for f in (t.velocity, t.geometry, t.coherence, t.mask):
        rewrite_h5(f, f, attrs={"EPSG": "999999"})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="EPSG", outputs=Outputs.take(out))


def test_radar_coordinates_without_latitude_longitude(make_track, tmp_path):
    t = make_track()
    geo_keys = ("X_FIRST", "Y_FIRST", "X_STEP", "Y_STEP", "X_UNIT", "Y_UNIT", "EPSG")
    for f in (t.velocity, t.geometry, t.coherence, t.mask):
        rewrite_h5(f, f, drop_attrs=geo_keys)
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.geometry, field="latitude",
                         outputs=Outputs.take(out))


def test_no_incidence_anywhere(make_track, tmp_path):
    t = make_track()
    rewrite_h5(t.geometry, t.geometry, drop=("incidenceAngle",),
               drop_attrs=("CENTER_INCIDENCE_ANGLE",))
    rewrite_h5(t.velocity, t.velocity, drop_attrs=("CENTER_INCIDENCE_ANGLE",))
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.geometry, field="incidenceAngle",
                         outputs=Outputs.take(out))


def test_mask_on_another_grid(make_track, tmp_path):
    t = make_track()
    rewrite_h5(t.mask, t.mask, data={"mask": np.ones((60, 70), bool)}, attrs={"WIDTH": "70"})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.mask, outputs=Outputs.take(out))


def test_bad_track_spec(make_track, tmp_path):
    t = make_track()
    out = tmp_path / "kin.gpkg"
    res = invoke(["kinematics", "--track", f"velocity={t.velocity},geometyr={t.geometry}",
                  "--outlines", t.folder / "outlines.gpkg", "--out", out])
    assert_clean_failure(res, names="geometyr", field="track", outputs=Outputs.take(out))


def test_dem_without_crs(make_track, tmp_path):
    from .conftest import write_raster

    t = make_track()
    dem = write_raster(tmp_path / "dem.tif", np.full((60, 80), 4000.0), crs=None)
    out = tmp_path / "kin.gpkg"
    res = _run(t, out, None, "--dem", dem)
    assert_clean_failure(res, names=dem, outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- found by this suite


def test_velocity_all_nan_and_infinite(make_track, tmp_path):
    """No usable velocity at all (NaN and +-inf): an error, not a table of 'undefined'."""
    import h5py

    t = make_track()
    with h5py.File(t.velocity, "r") as f:
        v = f["velocity"][()]
    v[:] = np.nan
    v[::2, ::3] = np.inf
    v[1::2, ::5] = -np.inf
    rewrite_h5(t.velocity, t.velocity, data={"velocity": v})
    out = tmp_path / "kin.gpkg"
    assert_clean_failure(_run(t, out), names=t.velocity, field="velocity",
                         outputs=Outputs.take(out))


def test_velocities_in_mm_on_a_realistic_scene(sample_dir, tmp_path):
    """The sample region's ascending track written in mm/year but labelled m/year: most
    pixels are stable ground (|v| of a few mm), so the 99th percentile alone (16 'm/year')
    does not give it away; the median of a scene's |v| does."""
    import shutil

    import h5py

    track = tmp_path / "asc"
    shutil.copytree(sample_dir / "insar" / "asc", track)
    vfile = track / "velocity.h5"
    with h5py.File(vfile, "r") as f:
        v, s = f["velocity"][()], f["velocityStd"][()]
    rewrite_h5(vfile, vfile, data={"velocity": v * 1000, "velocityStd": s * 1000})
    out = tmp_path / "kin.gpkg"
    res = invoke(["kinematics", "--track", track, "--outlines",
                  sample_dir / "inventory" / "rock_glaciers.gpkg", "--out", out])
    line = assert_clean_failure(res, names=vfile, field="UNIT", outputs=Outputs.take(out))
    assert "mm" in line
