"""MintPy as MintPy users hold it (issue 26, item 4): the geo/geo_*.h5 names geocode.py
writes, a radar-coded work folder with inputs/geometryRadar.h5, explicit file tables in
pipeline tracks, and what `inspect` tells about a track (dates, reference point, velocity
range, as MintPy's info.py)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from mintpy.utils import readfile, writefile
from mintpy_factory import make_track
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.config import TrackInput, load_pipeline, track_files
from permafrost.errors import ConfigError, DataError, InputFileError
from permafrost.io.catalog import describe_tracks
from permafrost.io.mintpy import find_track_files, read_track, track_summary

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

#: a geocoded file -> its name in geo/ (geocode.py: "geo_" + the input's name)
GEO_NAMES = {"velocity.h5": "geo_velocity.h5", "geometryGeo.h5": "geo_geometryRadar.h5",
             "temporalCoherence.h5": "geo_temporalCoherence.h5",
             "maskTempCoh.h5": "geo_maskTempCoh.h5"}


def _radar_files(work: Path, *, h=20, w=30, geometry=True) -> None:
    """A radar-coded velocity.h5 (no X_FIRST/Y_FIRST) and, optionally,
    inputs/geometryRadar.h5 with latitude/longitude, as smallbaselineApp.py writes them."""
    rng = np.random.default_rng(3)
    v = rng.normal(0, 0.01, (h, w)).astype(np.float32)
    v[2, 3] = 0
    atr = {"FILE_TYPE": "velocity", "UNIT": "m/year", "LENGTH": str(h), "WIDTH": str(w),
           "HEADING": "-12.0", "ORBIT_DIRECTION": "ASCENDING", "REF_Y": "2", "REF_X": "3",
           "START_DATE": "20170101", "END_DATE": "20211231"}
    work.mkdir(parents=True, exist_ok=True)
    writefile.write({"velocity": v}, str(work / "velocity.h5"), metadata=atr, print_msg=False)
    if geometry:
        (work / "inputs").mkdir(exist_ok=True)
        lat = np.linspace(38.6, 38.5, h)[:, None] + np.zeros((1, w))
        lon = np.linspace(99.0, 99.1, w)[None, :] + np.zeros((h, 1))
        geo = {"latitude": lat.astype(np.float32), "longitude": lon.astype(np.float32),
               "incidenceAngle": np.full((h, w), 35, np.float32),
               "azimuthAngle": np.full((h, w), 102, np.float32),
               "height": np.full((h, w), 4000, np.float32)}
        writefile.write(geo, str(work / "inputs" / "geometryRadar.h5"),
                        metadata={**atr, "FILE_TYPE": "geometry"}, print_msg=False)


def geo_layout(src: Path, work: Path, *, radar: bool = True) -> Path:
    """A MintPy work folder ``work`` whose ``geo/`` holds the geocoded files of the track
    ``src`` under geocode.py's names; with ``radar``, the radar-coded velocity.h5 and
    inputs/geometryRadar.h5 beside it, as after smallbaselineApp.py's geocode step."""
    (work / "geo").mkdir(parents=True, exist_ok=True)
    for a, b in GEO_NAMES.items():
        if (src / a).is_file():
            shutil.copy(src / a, work / "geo" / b)
    if radar:
        _radar_files(work)
    return work / "geo"


@pytest.fixture
def track(tmp_path):
    return make_track(tmp_path / "made", crs="geo", shape=(60, 80), speeds=(0.0, 0.05, 0.4))


def test_geo_folder_work_folder_and_file_find_the_geocoded_files(tmp_path, track):
    work = tmp_path / "T41_asc" / "mintpy"
    geo = geo_layout(track.folder, work)
    for source in (geo, work, geo / "geo_velocity.h5"):
        f = find_track_files(source)
        assert f.velocity == geo / "geo_velocity.h5", source
        assert f.geometry == geo / "geo_geometryRadar.h5"
        assert f.coherence == geo / "geo_temporalCoherence.h5"
        assert f.mask == geo / "geo_maskTempCoh.h5"
        assert f.name == "T41_asc"   # MintPy's own folder names skipped
    # the geocoded track reads as the original, layer by layer
    a, b = read_track(track.folder), read_track(geo)
    for k in ("velocity", "incidence", "azimuth", "height", "coherence", "mask"):
        np.testing.assert_array_equal(a[k].values, b[k].values)
    assert b.rio.crs == a.rio.crs and b.attrs["geocoded"] == 1


def test_geo_geometry_geo_name_is_accepted(tmp_path, track):
    geo = tmp_path / "geo"
    geo.mkdir()
    shutil.copy(track.velocity, geo / "geo_velocity.h5")
    shutil.copy(track.geometry, geo / "geo_geometryGeo.h5")
    f = find_track_files(geo)
    assert f.geometry == geo / "geo_geometryGeo.h5" and f.coherence is None
    assert read_track(f)["incidence"].shape == (60, 80)


def test_a_geocoded_velocity_in_the_work_folder_is_used_as_it_is(tmp_path, track):
    """A geocoded stack (velocity.h5 with Y_FIRST) next to a geo/ folder: the work folder's
    own file, not geo/."""
    work = tmp_path / "work"
    shutil.copytree(track.folder, work)
    geo_layout(track.folder, work, radar=False)
    assert find_track_files(work).velocity == work / "velocity.h5"


def test_radar_coded_work_folder_with_inputs_geometry_radar(tmp_path):
    work = tmp_path / "desc" / "mintpy"
    _radar_files(work)
    f = find_track_files(work)
    assert f.velocity == work / "velocity.h5"
    assert f.geometry == work / "inputs" / "geometryRadar.h5"
    ds = read_track(f)
    assert ds.attrs["geocoded"] == 0 and ds["latitude"].shape == (20, 30)
    assert f.name == "desc"


def test_radar_coded_without_latitude_longitude_says_run_geocode(tmp_path):
    work = tmp_path / "w"
    _radar_files(work, geometry=False)
    with pytest.raises(DataError) as e:
        read_track(work)
    assert "geocode.py" in e.value.fix and "\n" not in str(e.value)


def test_no_velocity_anywhere_is_a_clear_error(tmp_path):
    (tmp_path / "geo").mkdir()
    with pytest.raises(InputFileError, match="geo_velocity.h5"):
        find_track_files(tmp_path)


def test_track_summary_tells_dates_reference_and_velocity_range(tmp_path, track):
    geo = geo_layout(track.folder, tmp_path / "asc")
    s = track_summary(geo)
    assert s["dates"] == {"start": "2017-01-01", "end": "2021-12-31", "ref_date": None}
    vel = read_track(geo)["velocity"].values
    assert s["velocity"]["min"] == pytest.approx(float(np.nanmin(vel)))
    assert s["velocity"]["max"] == pytest.approx(float(np.nanmax(vel)))
    assert s["velocity"]["valid_pixels"] == int(np.isfinite(vel).sum())
    atr = readfile.read_attribute(str(geo / "geo_velocity.h5"))
    assert (s["reference"]["y"], s["reference"]["x"]) == (int(atr["REF_Y"]), int(atr["REF_X"]))
    assert s["reference"]["lat"] == pytest.approx(float(atr["REF_LAT"]))
    assert s["geocoded"] and s["crs"] == "EPSG:4326" and s["orbit"] == "ascending"


def test_date12_when_no_start_end_dates(tmp_path, track):
    v, atr = readfile.read(str(track.velocity), datasetName="velocity", print_msg=False)
    atr = {k: v_ for k, v_ in atr.items() if k not in ("START_DATE", "END_DATE")}
    atr["DATE12"] = "20180105_20190630"
    writefile.write({"velocity": v}, str(tmp_path / "velocity.h5"), metadata=atr,
                    print_msg=False)
    d = track_summary(tmp_path / "velocity.h5")["dates"]
    assert (d["start"], d["end"]) == ("2018-01-05", "2019-06-30")


def test_inspect_lists_each_track_once_with_info(tmp_path, track):
    geo = geo_layout(track.folder, tmp_path / "data" / "T41" / "mintpy")
    r = runner.invoke(app, ["inspect", str(tmp_path / "data"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert len(out["tracks"]) == 1   # work folder and its geo/ are one track
    t = out["tracks"][0]
    assert t["track"] == "T41" and t["files"]["velocity"] == str(geo / "geo_velocity.h5")
    assert t["dates"]["start"] == "2017-01-01"
    v = [d for d in out["datasets"] if d["path"].endswith("geo_velocity.h5")][0]
    assert v["details"]["dates"]["end"] == "2021-12-31"
    assert v["details"]["reference_yx"] == [track.attrs["REF_Y"], track.attrs["REF_X"]]
    assert v["details"]["velocity_range"][0] == pytest.approx(t["velocity"]["min"])
    r = runner.invoke(app, ["inspect", str(tmp_path / "data")])
    assert r.exit_code == 0 and "MintPy tracks" in r.stdout and "2017-01-01..2021-12-31" in r.stdout


def _pipeline(tmp: Path, tracks_toml: str) -> Path:
    """The demo pipeline with absolute paths and ``tracks`` replaced."""
    demo = ROOT / "pipelines" / "demo.toml"
    text = demo.read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('"demo_covariates.toml"', f'"{demo.parent}/demo_covariates.toml"')
    text = re.sub(r'output_dir = ".*"', f'output_dir = "{tmp / "out"}"', text)
    text = re.sub(r"^tracks = .*$", tracks_toml, text, flags=re.M)
    p = tmp / "p.toml"
    p.write_text(text)
    return p


def _sample_geo(tmp: Path) -> tuple[Path, Path]:
    """The sample region's two tracks laid out as MintPy's geo/ folders."""
    asc = geo_layout(ROOT / "data_samples" / "insar" / "asc", tmp / "asc" / "mintpy",
                     radar=False)
    desc = geo_layout(ROOT / "data_samples" / "insar" / "desc", tmp / "desc" / "mintpy",
                      radar=False)
    return asc, desc


def test_pipeline_tracks_take_folders_files_and_tables(tmp_path):
    asc, desc = _sample_geo(tmp_path)
    p = _pipeline(tmp_path, f'tracks = ["{asc.parent}", {{velocity = "{desc}/geo_velocity.h5", '
                            f'geometry = "{desc}/geo_geometryRadar.h5", name = "D"}}]')
    cfg = load_pipeline(p)
    a, d = (track_files(t) for t in cfg.inputs.tracks)
    assert a.velocity == asc / "geo_velocity.h5" and a.name == "asc"
    assert isinstance(cfg.inputs.tracks[1], TrackInput)
    assert d.name == "D" and d.geometry == desc / "geo_geometryRadar.h5" and d.coherence is None


def test_pipeline_track_errors_name_the_key_before_any_work(tmp_path):
    asc, _ = _sample_geo(tmp_path)
    p = _pipeline(tmp_path, f'tracks = [{{velocity = "{asc}/missing.h5"}}]')
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    assert e.value.field == "inputs.tracks[0].velocity"
    empty = tmp_path / "empty"
    empty.mkdir()
    p = _pipeline(tmp_path, f'tracks = ["{empty}"]')
    with pytest.raises(ConfigError, match="no velocity.h5") as e:
        load_pipeline(p)
    assert e.value.field == "inputs.tracks[0]"
    # the same track twice: once as its folder, once as a table
    p = _pipeline(tmp_path, f'tracks = ["{asc}", {{velocity = "{asc}/geo_velocity.h5"}}]')
    with pytest.raises(ConfigError, match="twice"):
        load_pipeline(p)
    p = _pipeline(tmp_path, f'tracks = [{{velocity = "{asc}/geo_velocity.h5", colour = 1}}]')
    with pytest.raises(ConfigError):
        load_pipeline(p)


def test_sample_geo_folders_run_through_kinematics_and_a_pipeline(tmp_path):
    """The sample generator's tracks as geo/ folders (one given as its MintPy work folder,
    one as a table of files): the pipeline's kinematics step gives the same outlines as the
    sample folders do through `permafrost kinematics`."""
    asc, desc = _sample_geo(tmp_path)
    p = _pipeline(tmp_path, f'tracks = ["{asc.parent}", {{velocity = "{desc}/geo_velocity.h5", '
                            f'geometry = "{desc}/geo_geometryRadar.h5", '
                            f'coherence = "{desc}/geo_temporalCoherence.h5", '
                            f'mask = "{desc}/geo_maskTempCoh.h5", name = "desc"}}]')
    r = runner.invoke(app, ["run", str(p), "--only", "kinematics"])
    assert r.exit_code == 0, r.output
    import geopandas as gpd  # noqa: PLC0415

    got = sorted((tmp_path / "out").rglob("kinematics.gpkg"))
    assert got
    new = gpd.read_file(got[0])
    s = ROOT / "data_samples"
    ref_out = tmp_path / "ref.gpkg"
    r = runner.invoke(app, ["kinematics", "-t", str(s / "insar" / "asc"), "-t",
                            str(s / "insar" / "desc"), "--outlines",
                            str(s / "inventory" / "rock_glaciers.gpkg"), "--dem",
                            str(s / "covariates" / "dem.tif"), "--min-sensitivity", "0.3", "--min-coherence", "0.7",
                            "--out", str(ref_out)])
    assert r.exit_code == 0, r.output
    ref = gpd.read_file(ref_out)
    assert len(new) == len(ref)
    for col in ("kin_v_downslope_median_m_yr", "kin_v_downslope_unc_m_yr", "kin_n_valid"):
        np.testing.assert_allclose(new[col].to_numpy(float), ref[col].to_numpy(float),
                                   equal_nan=True)
    for col in ("kin_activity", "kin_track"):   # the tracks keep their names: asc, desc
        assert (new[col].to_numpy() == ref[col].to_numpy()).all()


@pytest.mark.realdata
def test_realdata_kirishima_as_geo_folder(realdata, tmp_path):
    """The real MintPy files under geocode.py's names: found, read, summarised as info.py
    would (dates, reference point, velocity range)."""
    d = realdata / "mintpy_alos2_kirishima"
    geo = tmp_path / "kirishima" / "mintpy" / "geo"
    geo.mkdir(parents=True)
    shutil.copy(d / "velocity.h5", geo / "geo_velocity.h5")
    shutil.copy(d / "temporalCoherence.h5", geo / "geo_temporalCoherence.h5")
    f = find_track_files(geo.parent)
    assert f.velocity == geo / "geo_velocity.h5" and f.coherence is not None
    assert f.name == "kirishima" and f.geometry is None
    s = describe_tracks(tmp_path)[0]
    assert s["dates"] == {"start": "2015-02-09", "end": "2017-09-18", "ref_date": "2015-02-23"}
    assert (s["reference"]["y"], s["reference"]["x"]) == (346, 162)
    assert s["reference"]["lat"] == pytest.approx(31.91592599)
    assert s["orbit"] == "descending" and s["crs"] == "EPSG:4326"
    raw, atr = readfile.read(str(d / "velocity.h5"), datasetName="velocity", print_msg=False)
    ok = (raw != 0) & np.isfinite(raw)
    assert s["velocity"]["min"] == pytest.approx(float(raw[ok].min()))
    assert s["velocity"]["max"] == pytest.approx(float(raw[ok].max()))
    assert s["velocity"]["valid_pixels"] == int(ok.sum()) + 1   # and the reference pixel
