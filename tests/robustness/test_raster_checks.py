"""The read checks on raster data (issue 21, item 4): band count, real dtypes, GDAL
scale/offset, undeclared sentinels, plausible ranges by role, the tool's own outputs as
covariates, coordinates within the CRS, rotated grids, derived VRT bands, MintPy angles,
and GDAL's locale noise.  Each bad input is refused by the command that reads it (exit 2,
one line naming the file, no output); plausible real data is accepted."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.transform import from_origin

from .conftest import (
    NX,
    NY,
    RES,
    X0,
    Y0,
    Outputs,
    assert_clean_failure,
    covariate_arrays,
    invoke,
    rewrite_h5,
    write_raster,
)


def _predict(model, cov, out, *extra):
    return invoke(["predict", "--model", model, "--covariates", cov, "--out", out,
                   "--device", "cpu", "--threads", "1", *extra])


def _train(labels, cov, out, *extra):
    return invoke(["train", "--labels", labels, "--covariates", cov, "--out", out,
                   "--device", "cpu", "--folds", "2", "--n-estimators", "10", "--no-random-cv",
                   "--block-size", "500", *extra])


def _refused_by_predict(model, cov, bad, tmp_path, *, field=None, words=()):
    """predict refuses the covariates: one line naming ``bad``, no PZI written, inputs kept."""
    out = tmp_path / "pzi.tif"
    inputs = Outputs.take(cov, model)
    line = assert_clean_failure(_predict(model, cov, out), names=bad, field=field,
                                outputs=Outputs.take(out))
    inputs.assert_untouched()
    for w in words:
        assert w in line, f"{w!r} not in: {line}"
    return line


def _refused_by_train(labels, cov, bad, tmp_path, *, field=None, words=()):
    out = tmp_path / "m"
    inputs = Outputs.take(cov, labels)
    line = assert_clean_failure(_train(labels, cov, out), names=bad, field=field,
                                outputs=Outputs.take(out))
    inputs.assert_untouched()
    for w in words:
        assert w in line, f"{w!r} not in: {line}"
    return line


def _write(path, bands, *, dtype="float32", nodata=-9999.0, transform=None, crs="EPSG:4326",
           scale=None, offset=None, tags=None, description=None):
    """A GeoTIFF of one or several bands (``bands``: a 2-D array or a list of them)."""
    bands = [bands] if np.ndim(bands) == 2 else list(bands)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    kw = dict(driver="GTiff", width=bands[0].shape[1], height=bands[0].shape[0],
              count=len(bands), dtype=dtype, transform=transform or from_origin(X0, Y0, RES, RES),
              crs=crs, nodata=nodata)
    with rasterio.open(path, "w", **kw) as dst:
        for i, b in enumerate(bands, start=1):
            dst.write(np.asarray(b).astype(dtype), i)
        if scale is not None:
            dst.scales = (scale,) * len(bands)
        if offset is not None:
            dst.offsets = (offset,) * len(bands)
        if tags:
            dst.update_tags(**tags)
        if description:
            dst.set_band_description(1, description)
    return path


def _pzi_values(path):
    with rasterio.open(path) as src:
        return src.read(1)


# ----------------------------------------------------------------------------- band count


def test_multi_band_covariate_is_refused(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    arr = covariate_arrays()
    _write(cov / "ndvi.tif", [arr["ndvi"], arr["ndvi"] * 0.5, arr["ndvi"] * 0.1])
    _refused_by_predict(model_dir, cov, cov / "ndvi.tif", tmp_path, field="bands",
                        words=("3 bands", "band = N"))


def test_stack_file_names_the_band(model_dir, make_covariates, tmp_path):
    """``band = N`` in a stack file reads that band: the same map as the single-band file."""
    cov = make_covariates()
    ref = tmp_path / "ref.tif"
    assert _predict(model_dir, cov, ref).exit_code == 0
    arr = covariate_arrays()
    _write(tmp_path / "bands.tif", [np.full((NY, NX), 0.9), arr["ndvi"]])
    stack = tmp_path / "stack.toml"
    stack.write_text("".join(f'[covariates.{k}]\npath = "{cov / (k + ".tif")}"\n'
                             for k in ("dem", "maat", "pisr"))
                     + f'[covariates.ndvi]\npath = "{tmp_path / "bands.tif"}"\nband = 2\n')
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, stack, out)
    assert res.exit_code == 0, res.stderr
    np.testing.assert_array_equal(_pzi_values(out), _pzi_values(ref))


def test_stack_file_band_out_of_range(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    _write(tmp_path / "bands.tif", [covariate_arrays()["ndvi"]] * 2)
    stack = tmp_path / "stack.toml"
    stack.write_text("".join(f'[covariates.{k}]\npath = "{cov / (k + ".tif")}"\n'
                             for k in ("dem", "maat", "pisr"))
                     + f'[covariates.ndvi]\npath = "{tmp_path / "bands.tif"}"\nband = 5\n')
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, stack, out), names="bands.tif", field="band",
                         outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- dtypes


def test_complex_covariate_is_refused(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    ndvi = covariate_arrays()["ndvi"]
    _write(cov / "ndvi.tif", ndvi + 1j * ndvi, dtype="complex64", nodata=None)
    _refused_by_predict(model_dir, cov, cov / "ndvi.tif", tmp_path, field="dtype",
                        words=("complex",))


# ----------------------------------------------------------------------------- scale / offset


def test_scale_and_offset_are_applied(model_dir, make_covariates, tmp_path):
    """MAAT stored as int16 hundredths (scale 0.01) and the DEM as metres above 3000 m
    (offset 3000) predict the same map as the float originals."""
    arr = covariate_arrays()
    maat = np.round(arr["maat"], 2)
    dem = np.round(arr["dem"])
    floats = make_covariates("floats", maat=maat, dem=dem)
    ref = tmp_path / "ref.tif"
    assert _predict(model_dir, floats, ref).exit_code == 0
    packed = make_covariates("packed")
    _write(packed / "maat.tif", np.round(maat * 100), dtype="int16", nodata=-32768, scale=0.01)
    _write(packed / "dem.tif", dem - 3000, dtype="int16", nodata=-32768, offset=3000.0)
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, packed, out)
    assert res.exit_code == 0, res.stderr
    np.testing.assert_array_equal(_pzi_values(out), _pzi_values(ref))


def test_scale_applies_to_a_read_raster(tmp_path):
    from permafrost.io.maps import read_aligned, read_preview
    from permafrost.io.rasters import read_raster

    maat = np.round(covariate_arrays()["maat"], 2)
    p = _write(tmp_path / "maat.tif", np.round(maat * 100), dtype="int16", nodata=-32768,
               scale=0.01)
    da = read_raster(p, role="maat")
    np.testing.assert_array_equal(da.values, maat.astype("float32"))
    al = read_aligned(p, da, resampling="nearest")
    np.testing.assert_array_equal(al.values, maat.astype("float32"))
    np.testing.assert_allclose(read_preview(p)[0], maat, atol=1e-6)


# ----------------------------------------------------------------------------- sentinels


@pytest.mark.parametrize("sentinel,dtype", [(-9999.0, "float32"), (-32768, "int16"),
                                            (-3.4028234663852886e38, "float32"),
                                            (65535, "uint16")])
def test_undeclared_sentinel_is_refused(make_covariates, make_labels, tmp_path, sentinel,
                                        dtype):
    dem = np.round(covariate_arrays()["dem"])
    dem[:10, :20] = sentinel
    cov = make_covariates()
    _write(cov / "dem.tif", dem, dtype=dtype, nodata=None)
    shown = "-3.40282e+38" if sentinel < -1e30 else f"{sentinel:.6g}"
    _refused_by_train(make_labels(), cov, cov / "dem.tif", tmp_path, field="nodata",
                      words=(f"gdal_edit.py -a_nodata {shown}",))


def test_zero_elevation_and_a_wide_range_are_not_sentinels(make_covariates, make_labels,
                                                           tmp_path):
    """An elevation of exactly 0 (sea level) and a legitimate range 0..5000 m are data."""
    yy, xx = np.mgrid[0:NY, 0:NX]
    dem = np.round(5000.0 * xx / (NX - 1))
    dem[:, :3] = 0.0
    arr = covariate_arrays()
    cov = make_covariates(dem=dem, maat=np.clip(10.0 - 0.006 * dem, -20, 10))
    out = tmp_path / "m"
    res = _train(make_labels(), cov, out)
    assert res.exit_code == 0, res.stderr
    assert (out / "metadata.json").is_file()
    assert arr  # the factory's other covariates are plausible too


# ----------------------------------------------------------------------------- ranges


def test_maat_in_kelvin_is_refused(make_covariates, make_labels, tmp_path):
    cov = make_covariates(maat=covariate_arrays()["maat"] + 273.15)
    _refused_by_train(make_labels(), cov, cov / "maat.tif", tmp_path, field="maat",
                      words=("kelvin", "-273.15"))


def test_dem_in_kilometres_is_refused(model_dir, make_covariates, tmp_path):
    cov = make_covariates(dem=covariate_arrays()["dem"] / 1000.0)
    _refused_by_predict(model_dir, cov, cov / "dem.tif", tmp_path, field="dem",
                        words=("kilometres", "-scale 1000"))


@pytest.mark.parametrize("name,values,word", [
    ("ndvi", lambda a: np.round(a["ndvi"] * 10000), "-scale 0.0001"),
    ("maat", lambda a: np.round(a["maat"] * 10), "tenths"),
])
def test_scaled_integers_without_scale_are_refused(model_dir, make_covariates, tmp_path, name,
                                                   values, word):
    cov = make_covariates(**{name: values(covariate_arrays())})
    _refused_by_predict(model_dir, cov, cov / f"{name}.tif", tmp_path, field=name,
                        words=(word,))


def test_stack_file_coarse_maat_in_kelvin(make_covariates, make_labels, tmp_path):
    """The coarse MAAT of ``downscale_maat`` in K, as a GeoTIFF in a stack file."""
    cov = make_covariates()
    coarse_t = tmp_path / "coarse_t.tif"
    coarse_z = tmp_path / "coarse_z.tif"
    tr = from_origin(X0, Y0, RES * 10, RES * 10)
    z = np.linspace(3000, 4500, 48).reshape(6, 8)
    _write(coarse_z, z, transform=tr)
    _write(coarse_t, 273.15 + 18.0 - 0.006 * z, transform=tr)
    stack = tmp_path / "stack.toml"
    stack.write_text(f'[grid]\nlike = "{cov / "dem.tif"}"\n'
                     f'[covariates.dem]\npath = "{cov / "dem.tif"}"\n'
                     f'[covariates.pisr]\npath = "{cov / "pisr.tif"}"\n'
                     f'[covariates.ndvi]\npath = "{cov / "ndvi.tif"}"\n'
                     f'[derived.maat]\nfunction = "downscale_maat"\ncoarse = "{coarse_t}"\n'
                     f'coarse_elevation = "{coarse_z}"\nlapse_rate = -0.006\n')
    _refused_by_train(make_labels(), stack, coarse_t, tmp_path, words=("kelvin",))


def test_stack_file_elevation_in_km_under_another_name(make_covariates, make_labels, tmp_path):
    """A covariate named ``z`` is an elevation because ``slope`` derives from it."""
    cov = make_covariates()
    km = _write(tmp_path / "z.tif", covariate_arrays()["dem"] / 1000.0)
    stack = tmp_path / "stack.toml"
    stack.write_text(f'[covariates.z]\npath = "{km}"\n'
                     f'[covariates.maat]\npath = "{cov / "maat.tif"}"\n'
                     f'[derived.slope]\nfunction = "slope"\ndem = "z"\n')
    _refused_by_train(make_labels(), stack, km, tmp_path, words=("kilometres",))


def test_plausible_dem_and_maat_are_accepted(make_covariates, make_labels, tmp_path):
    """A real DEM spanning 0..5000 m and a MAAT of -20..10 degC train a model."""
    yy, xx = np.mgrid[0:NY, 0:NX]
    dem = 5000.0 * (xx + yy) / (NX + NY - 2)
    maat = 10.0 - 30.0 * (dem / 5000.0)
    cov = make_covariates(dem=dem, maat=maat)
    res = _train(make_labels(), cov, tmp_path / "m")
    assert res.exit_code == 0, res.stderr


# ----------------------------------------------------------------------------- own outputs


def test_own_pzi_as_a_covariate_is_refused(model_dir, make_covariates, make_labels, tmp_path):
    cov = make_covariates()
    pzi = tmp_path / "pzi_out" / "pzi.tif"
    pzi.parent.mkdir()
    assert _predict(model_dir, cov, pzi).exit_code == 0
    shutil.copy(pzi, cov / "pzi.tif")
    _refused_by_train(make_labels(), cov, cov / "pzi.tif", tmp_path,
                      words=("output of permafrost", "leak"))


@pytest.mark.parametrize("tags,description", [
    ({"PZI_CONTENT": "permafrost zones"}, "permafrost zone"),
    ({}, "agreement: 0 neither, 1 both, 2 model only, 3 prior only"),
])
def test_other_outputs_as_covariates_are_refused(model_dir, make_covariates, tmp_path, tags,
                                                 description):
    cov = make_covariates()
    _write(cov / "ndvi.tif", covariate_arrays()["ndvi"], tags=tags, description=description)
    _refused_by_predict(model_dir, cov, cov / "ndvi.tif", tmp_path,
                        words=("output of permafrost",))


# ----------------------------------------------------------------------------- grids and CRS


def test_rotated_grid_is_refused(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    rotated = from_origin(X0, Y0, RES, RES) * Affine.rotation(5.0)
    _write(cov / "pisr.tif", covariate_arrays()["pisr"], transform=rotated)
    _refused_by_predict(model_dir, cov, cov / "pisr.tif", tmp_path, field="transform",
                        words=("rotated", "gdalwarp"))


def test_utm_coordinates_labelled_wgs84_are_refused(make_pzi, tmp_path):
    """``stats`` of a PZI whose UTM coordinates say EPSG:4326 (was: 0 km2, exit 0)."""
    pzi = make_pzi(transform=from_origin(500000, 4270000, 50, 50))
    out = tmp_path / "stats.json"
    line = assert_clean_failure(invoke(["stats", pzi, "--out-json", out]), names=pzi,
                                field="crs", outputs=Outputs.take(out))
    assert "outside longitude/latitude" in line


def test_degrees_labelled_utm_are_refused(model_dir, make_covariates, tmp_path):
    cov = tmp_path / "cov"
    for k, v in covariate_arrays().items():
        write_raster(cov / f"{k}.tif", v, crs="EPSG:32647")
    _refused_by_predict(model_dir, cov, "dem.tif", tmp_path, field="crs",
                        words=("look like degrees",))


# ----------------------------------------------------------------------------- derived VRTs

_PY_VRT = """<VRTDataset rasterXSize="{nx}" rasterYSize="{ny}">
  <SRS>EPSG:4326</SRS>
  <GeoTransform>{x0}, {res}, 0, {y0}, 0, -{res}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1" subClass="VRTDerivedRasterBand">
    <PixelFunctionType>touch</PixelFunctionType>
    <PixelFunctionLanguage>Python</PixelFunctionLanguage>
    <PixelFunctionCode><![CDATA[
def touch(in_ar, out_ar, *args, **kwargs):
    open({marker!r}, "w").write("ran")
    out_ar[:] = in_ar[0]
]]></PixelFunctionCode>
    <SimpleSource>
      <SourceFilename relativeToVRT="0">{src}</SourceFilename>
      <SourceBand>1</SourceBand>
    </SimpleSource>
  </VRTRasterBand>
</VRTDataset>
"""

_PLAIN_VRT = """<VRTDataset rasterXSize="{nx}" rasterYSize="{ny}">
  <SRS>EPSG:4326</SRS>
  <GeoTransform>{x0}, {res}, 0, {y0}, 0, -{res}</GeoTransform>
  <VRTRasterBand dataType="Float32" band="1">
    <SimpleSource>
      <SourceFilename relativeToVRT="1">{src}</SourceFilename>
      <SourceBand>1</SourceBand>
    </SimpleSource>
  </VRTRasterBand>
</VRTDataset>
"""


@pytest.mark.parametrize("nested", [False, True])
def test_vrt_with_a_python_pixel_function_is_refused(model_dir, make_covariates, tmp_path,
                                                     monkeypatch, nested):
    """Refused before GDAL opens it, even where GDAL_VRT_ENABLE_PYTHON=YES: no code runs."""
    monkeypatch.setenv("GDAL_VRT_ENABLE_PYTHON", "YES")
    cov = make_covariates()
    src = cov / "pisr.tif"
    keep = tmp_path / "pisr_src.tif"
    src.rename(keep)
    marker = tmp_path / "code_ran"
    grid = dict(nx=NX, ny=NY, x0=X0, y0=Y0, res=RES)
    derived = tmp_path / "derived.vrt"
    derived.write_text(_PY_VRT.format(src=keep, marker=str(marker), **grid))
    if nested:
        (cov / "pisr.vrt").write_text(_PLAIN_VRT.format(src=os.path.relpath(derived, cov),
                                                        **grid))
    else:
        shutil.copy(derived, cov / "pisr.vrt")
        derived = cov / "pisr.vrt"
    _refused_by_predict(model_dir, cov, derived, tmp_path, field="VRTDerivedRasterBand",
                        words=("Python",))
    assert not marker.exists(), "the VRT's pixel function ran"


def test_plain_vrt_is_read(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    ref = tmp_path / "ref.tif"
    assert _predict(model_dir, cov, ref).exit_code == 0
    keep = tmp_path / "pisr_src.tif"
    (cov / "pisr.tif").rename(keep)
    (cov / "pisr.vrt").write_text(_PLAIN_VRT.format(src=os.path.relpath(keep, cov), nx=NX, ny=NY,
                                                    x0=X0, y0=Y0, res=RES))
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, cov, out)
    assert res.exit_code == 0, res.stderr
    np.testing.assert_array_equal(_pzi_values(out), _pzi_values(ref))


# ----------------------------------------------------------------------------- MintPy angles


def _kinematics(track, out):
    return invoke(["kinematics", "--track", track.folder, "--outlines",
                   track.folder / "outlines.gpkg", "--out", out])


def _geometry(path, name):
    import h5py

    with h5py.File(path, "r") as f:
        return f[name][()]


def test_mintpy_incidence_in_radians_is_refused(make_track, tmp_path):
    t = make_track()
    inc = _geometry(t.geometry, "incidenceAngle")
    rewrite_h5(t.geometry, t.geometry, data={"incidenceAngle": np.deg2rad(inc)})
    out = tmp_path / "kin.gpkg"
    line = assert_clean_failure(_kinematics(t, out), names=t.geometry, field="incidenceAngle",
                                outputs=Outputs.take(out))
    assert "radians" in line


@pytest.mark.parametrize("orbit", ["ASCENDING", "DESCENDING"])
def test_mintpy_azimuth_holding_the_heading_is_refused(make_track, tmp_path, orbit):
    from permafrost.io.mintpy import read_mintpy_attributes

    t = make_track(orbit=orbit)
    heading = float(read_mintpy_attributes(t.velocity)["HEADING"])
    az = _geometry(t.geometry, "azimuthAngle")
    rewrite_h5(t.geometry, t.geometry, data={"azimuthAngle": np.full_like(az, heading)})
    out = tmp_path / "kin.gpkg"
    line = assert_clean_failure(_kinematics(t, out), names=t.geometry, field="azimuthAngle",
                                outputs=Outputs.take(out))
    assert "heading" in line


def test_mintpy_azimuth_in_radians_is_refused(make_track, tmp_path):
    t = make_track()
    az = _geometry(t.geometry, "azimuthAngle")
    rewrite_h5(t.geometry, t.geometry, data={"azimuthAngle": np.deg2rad(az)})
    out = tmp_path / "kin.gpkg"
    line = assert_clean_failure(_kinematics(t, out), names=t.geometry, field="azimuthAngle",
                                outputs=Outputs.take(out))
    assert "radians" in line


# ----------------------------------------------------------------------------- locale


def _turkish_locale(tmp_path) -> dict | None:
    """Environment variables for a Turkish UTF-8 locale: the system's, or one compiled into
    ``tmp_path`` with localedef; None when neither is possible."""
    listed = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.split()
    for name in listed:
        if name.lower().replace("-", "") in ("tr_tr.utf8",):
            return {"LC_ALL": name}
    localedef = shutil.which("localedef")
    if localedef is None:
        return None
    loc = tmp_path / "locale"
    loc.mkdir()
    r = subprocess.run([localedef, "-i", "tr_TR", "-f", "UTF-8", str(loc / "tr_TR.UTF-8")],
                       capture_output=True, text=True)
    if not (loc / "tr_TR.UTF-8").exists():
        return None
    assert r.returncode in (0, 1), r.stderr
    return {"LOCPATH": str(loc), "LC_ALL": "tr_TR.UTF-8"}


def test_turkish_locale_prints_no_raw_gdal_lines(make_covariates, tmp_path):
    """Under tr_TR.UTF-8, GDAL's start-up check printed 57 raw lines on stderr."""
    env = _turkish_locale(tmp_path)
    if env is None:
        pytest.skip("no Turkish locale and no localedef to compile one")
    cov = make_covariates()
    probe = subprocess.run([sys.executable, "-c", "import locale; print(locale.setlocale("
                            "locale.LC_ALL, ''))"], env={**os.environ, **env},
                           capture_output=True, text=True)
    if probe.returncode != 0 or "tr_TR" not in probe.stdout:
        pytest.skip(f"the Turkish locale cannot be set here ({probe.stderr.strip()})")
    r = subprocess.run([sys.executable, "-m", "permafrost", "inspect", str(cov)],
                       env={**os.environ, **env}, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == "", f"raw lines on stderr:\n{r.stderr[:2000]}"
    assert "dem.tif" in r.stdout


# ----------------------------------------------------------------------------- priors


def test_validate_prior_in_percent_is_refused(make_pzi, tmp_path):
    """A continuous prior compared at 0.5 but stored in percent (was: accepted)."""
    prior = make_pzi("prior.tif", values=np.linspace(0, 100, NY * NX).reshape(NY, NX))
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"obu={prior}:continuous:0.5",
                  "--out", out])
    line = assert_clean_failure(res, names=prior, field="obu", outputs=Outputs.take(out))
    assert "percent" in line


def test_validate_prior_as_probability_is_accepted(make_pzi, tmp_path):
    prior = make_pzi("prior.tif", values=np.linspace(0, 1, NY * NX).reshape(NY, NX))
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"obu={prior}:continuous:0.5",
                  "--out", out])
    assert res.exit_code == 0, res.stderr
