"""No code from inputs, and no silently wrong map from a mixed-up model (issue 21, item 2).

* ``GDAL_VRT_ENABLE_PYTHON`` is forced to ``NO`` when the package is imported, so a VRT's
  Python pixel function never runs, even when the environment says ``YES``.
* A model's ``metadata.json`` names its files by plain relative names inside the model
  directory: an absolute path, a ``..`` or a symbolic link that leads out is refused.
* Every model file is checked against the SHA-256 that ``metadata.json`` records: a swapped
  predictor, a fold file from another model or an edited calibration is refused.
* The booster's own feature names must be ``metadata.json``'s, in order.
* A calibration must not decrease (sigmoid ``a < 0``, isotonic knots falling or outside
  [0, 1]) and its parameters must be finite.

Each damaged model is refused by ``permafrost predict`` with exit code 2 and one line, the
model directory and the covariates left byte for byte as they were, and no PZI written.
Where a test damages one file, it rewrites the recorded digest to match, so that the check
under test (and not the digest) is what refuses it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from factories import train_small_model
from permafrost.calibration import fit_calibration
from permafrost.errors import ModelError
from permafrost.io.model import load_model, save_model

from .conftest import ROOT, Outputs, assert_clean_failure, invoke

FOLD = "folds/fold_00.json"


def _meta(model: Path) -> dict:
    return json.loads((model / "metadata.json").read_text())


def _write_meta(model: Path, meta: dict) -> None:
    (model / "metadata.json").write_text(json.dumps(meta))


def _rehash(model: Path, rel: str, source: Path | None = None) -> None:
    """Record the digest of ``source`` (default: ``model/rel``) for ``rel`` in metadata.json."""
    meta = _meta(model)
    meta["sha256"][rel] = hashlib.sha256((source or model / rel).read_bytes()).hexdigest()
    _write_meta(model, meta)


def _refused(model: Path, cov: Path, tmp_path: Path, *, names, field=None) -> str:
    """``permafrost predict`` refuses the model cleanly, before writing anything."""
    out = tmp_path / "pzi.tif"
    outputs = Outputs.take(out, model, cov)
    res = invoke(["predict", "--model", model, "--covariates", cov, "--out", out,
                  "--device", "cpu", "--threads", "1"])
    line = assert_clean_failure(res, names=names, field=field, outputs=outputs)
    assert not out.exists()
    return line


# ----------------------------------------------------------------------------- baseline


def test_a_saved_model_records_a_digest_of_each_file_and_named_boosters(model_dir,
                                                                        make_covariates,
                                                                        tmp_path):
    meta = _meta(model_dir)
    listed = [meta["files"]["predictor"], meta["files"]["calibration"], *meta["files"]["folds"]]
    assert sorted(meta["sha256"]) == sorted(listed) and len(listed) == 4
    for rel in listed:
        assert meta["sha256"][rel] == hashlib.sha256((model_dir / rel).read_bytes()).hexdigest()
    # the factory's boosters were trained without names: save_model gave them the model's
    for rel in (meta["files"]["predictor"], *meta["files"]["folds"]):
        learner = json.loads((model_dir / rel).read_text())["learner"]
        assert learner["feature_names"] == meta["feature_names"]
    res = invoke(["predict", "--model", model_dir, "--covariates", make_covariates(),
                  "--out", tmp_path / "pzi.tif", "--device", "cpu", "--threads", "1"])
    assert res.exit_code == 0, res.stderr


# ----------------------------------------------------------------------------- GDAL VRT code

_PROBE = "import {imports}, os; print(os.environ.get('GDAL_VRT_ENABLE_PYTHON'))"


def _python_vrt(d: Path, sentinel: Path) -> Path:
    """A VRT whose derived band's inline Python pixel function creates ``sentinel``."""
    vrt = d / "evil.vrt"
    vrt.write_text(textwrap.dedent(f"""\
        <VRTDataset rasterXSize="4" rasterYSize="4">
          <SRS>EPSG:32646</SRS>
          <GeoTransform>500000, 30, 0, 4200000, 0, -30</GeoTransform>
          <VRTRasterBand dataType="Float32" band="1" subClass="VRTDerivedRasterBand">
            <PixelFunctionType>evil</PixelFunctionType>
            <PixelFunctionLanguage>Python</PixelFunctionLanguage>
            <PixelFunctionCode><![CDATA[
        def evil(in_ar, out_ar, xoff, yoff, xsize, ysize, rxs, rys, radius, gt, **kw):
            open({str(sentinel)!r}, "w").write("ran")
            out_ar[:] = 1
        ]]></PixelFunctionCode>
          </VRTRasterBand>
        </VRTDataset>
        """))
    return vrt


def _read_in_child(vrt: Path, imports: str) -> subprocess.CompletedProcess:
    """Open and read ``vrt`` with rasterio in a fresh Python whose environment enables GDAL's
    VRT Python code (as HPC modules and conda recipes do), after ``import <imports>``."""
    code = textwrap.dedent(f"""\
        import {imports}
        import rasterio
        try:
            with rasterio.open({str(vrt)!r}) as src:
                src.read(1)
        except Exception as exc:
            print(type(exc).__name__, exc)
        """)
    env = {**os.environ, "GDAL_VRT_ENABLE_PYTHON": "YES"}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


def test_importing_permafrost_overrides_an_inherited_gdal_vrt_enable_python():
    env = {**os.environ, "GDAL_VRT_ENABLE_PYTHON": "YES"}
    for imports, want in (("sys", "YES"), ("permafrost", "NO")):  # check of the check first
        res = subprocess.run([sys.executable, "-c", _PROBE.format(imports=imports)], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == want, (imports, res.stdout, res.stderr)


@pytest.mark.parametrize("imports", ["permafrost", "rasterio, permafrost"])
def test_a_vrt_python_pixel_function_never_runs_after_import(tmp_path, imports):
    """``rasterio, permafrost``: rasterio (and GDAL) loaded before the package is."""
    sentinel = tmp_path / "PIXEL_FUNCTION_RAN"
    vrt = _python_vrt(tmp_path, sentinel)
    # check of the check: without the package's setting, GDAL runs the code
    control = _read_in_child(vrt, "os")
    if not sentinel.exists():
        pytest.skip("this GDAL build does not run VRT Python pixel functions at all "
                    f"(GDAL_VRT_ENABLE_PYTHON=YES did nothing: {control.stdout.strip()!r} "
                    f"{control.stderr.strip()[-300:]!r})")
    sentinel.unlink()
    before = vrt.read_bytes()
    res = _read_in_child(vrt, imports)
    assert res.returncode == 0, res.stderr
    assert not sentinel.exists(), f"the VRT's Python code ran: {res.stdout} {res.stderr}"
    assert vrt.read_bytes() == before


# ----------------------------------------------------------------------------- files inside


@pytest.mark.parametrize("where", ["absolute", "dotdot"])
def test_a_fold_file_outside_the_model_directory_is_refused(model_copy, make_covariates,
                                                            tmp_path, where):
    """A *valid* booster outside, its digest recorded: only the path is wrong."""
    outside = tmp_path / "elsewhere" / "fold.json"
    outside.parent.mkdir()
    shutil.copy(model_copy / FOLD, outside)
    name = str(outside) if where == "absolute" else os.path.relpath(outside, model_copy)
    assert where == "absolute" or name.startswith("..")
    meta = _meta(model_copy)
    meta["files"]["folds"][0] = name
    meta["sha256"][name] = meta["sha256"][FOLD]
    _write_meta(model_copy, meta)
    with pytest.raises(ModelError, match=r"files\.folds\[0\]"):
        load_model(model_copy)
    line = _refused(model_copy, make_covariates(), tmp_path, names="metadata.json",
                    field="files.folds[0]")
    assert "plain relative" in line or "outside" in line


@pytest.mark.parametrize("key", ["predictor", "calibration"])
def test_a_predictor_or_calibration_named_by_an_absolute_path_is_refused(model_copy,
                                                                         make_covariates,
                                                                         tmp_path, key):
    rel = f"{key}.json"
    outside = tmp_path / "elsewhere" / rel
    outside.parent.mkdir()
    shutil.copy(model_copy / rel, outside)
    meta = _meta(model_copy)
    meta["files"][key] = str(outside)
    meta["sha256"][str(outside)] = meta["sha256"][rel]
    _write_meta(model_copy, meta)
    _refused(model_copy, make_covariates(), tmp_path, names="metadata.json",
             field=f"files.{key}")


def test_a_symlink_that_leads_out_of_the_model_directory_is_refused(model_copy,
                                                                    make_covariates, tmp_path):
    """Same bytes, so the digest matches: the link's target is what is refused."""
    outside = tmp_path / "elsewhere" / "fold.json"
    outside.parent.mkdir()
    shutil.move(model_copy / FOLD, outside)
    (model_copy / FOLD).symlink_to(outside)
    line = _refused(model_copy, make_covariates(), tmp_path, names="metadata.json",
                    field="files.folds[0]")
    assert "outside" in line


def test_a_symlink_within_the_model_directory_is_fine(model_copy, make_covariates, tmp_path):
    (model_copy / "store").mkdir()
    shutil.move(model_copy / "predictor.json", model_copy / "store" / "predictor.json")
    (model_copy / "predictor.json").symlink_to(Path("store") / "predictor.json")
    assert load_model(model_copy).feature_names == _meta(model_copy)["feature_names"]


# ----------------------------------------------------------------------------- digests


def test_a_swapped_predictor_file_is_refused(model_copy, make_covariates, tmp_path):
    """A fold model in place of the final model: a valid booster on the same features."""
    shutil.copy(model_copy / FOLD, model_copy / "predictor.json")
    load_model_error = pytest.raises(ModelError, match="SHA-256")
    with load_model_error:
        load_model(model_copy)
    line = _refused(model_copy, make_covariates(), tmp_path, names="predictor.json")
    assert "SHA-256" in line and "metadata.json" in line


def test_a_fold_file_from_another_model_is_refused(model_copy, make_covariates, tmp_path):
    other = train_small_model(tmp_path / "other", seed=1)
    shutil.copy(other / FOLD, model_copy / FOLD)
    _refused(model_copy, make_covariates(), tmp_path, names="fold_00.json")


def test_an_edited_calibration_is_refused(model_copy, make_covariates, tmp_path):
    cal = json.loads((model_copy / "calibration.json").read_text())
    cal["y"] = [min(1.0, v + 0.1) for v in cal["y"]]  # still a valid, increasing calibration
    (model_copy / "calibration.json").write_text(json.dumps(cal))
    _refused(model_copy, make_covariates(), tmp_path, names="calibration.json")


def test_a_digest_missing_for_a_listed_file_is_refused(model_copy, make_covariates, tmp_path):
    meta = _meta(model_copy)
    del meta["sha256"][FOLD]
    _write_meta(model_copy, meta)
    _refused(model_copy, make_covariates(), tmp_path, names="metadata.json",
             field=f"sha256.{FOLD}")


def test_a_model_saved_before_digests_loads_with_a_warning(model_copy, caplog):
    meta = _meta(model_copy)
    del meta["sha256"]
    _write_meta(model_copy, meta)
    with caplog.at_level(logging.WARNING, logger="permafrost.io.model"):
        model = load_model(model_copy)
    assert model.feature_names == meta["feature_names"]
    assert any("without file digests" in r.getMessage() and "retrain" in r.getMessage()
               for r in caplog.records)


# ----------------------------------------------------------------------------- feature names


@pytest.mark.parametrize("target", ["predictor.json", FOLD])
def test_a_booster_whose_feature_order_differs_from_metadata_is_refused(model_copy,
                                                                        make_covariates,
                                                                        tmp_path, target):
    """Swapping two columns' names in the booster (digest rewritten): every covariate is
    present, so without the check the map is computed from scrambled columns."""
    doc = json.loads((model_copy / target).read_text())
    fn = doc["learner"]["feature_names"]
    fn[0], fn[1] = fn[1], fn[0]
    (model_copy / target).write_text(json.dumps(doc))
    _rehash(model_copy, target)
    line = _refused(model_copy, make_covariates(), tmp_path, names=Path(target).name,
                    field="feature_names")
    assert "scrambled" in line


def test_metadata_listing_the_features_in_another_order_is_refused(model_copy,
                                                                   make_covariates, tmp_path):
    meta = _meta(model_copy)
    names = meta["feature_names"]
    meta["feature_names"] = [names[1], names[0], *names[2:]]
    _write_meta(model_copy, meta)
    _refused(model_copy, make_covariates(), tmp_path, names="predictor.json",
             field="feature_names")


def test_saving_a_model_whose_booster_names_differ_is_refused(model_dir, tmp_path):
    model = load_model(model_dir)
    model.feature_names = [*reversed(model.feature_names)]
    with pytest.raises(ModelError, match="feature_names"):
        save_model(model, tmp_path / "m")
    assert list(tmp_path.iterdir()) == []  # no model, no temporary directory


# ----------------------------------------------------------------------------- calibration


@pytest.mark.parametrize("cal, field", [
    ('{"method": "sigmoid", "a": -1.5, "b": 0.2}', "a"),        # decreasing
    ('{"method": "sigmoid", "a": NaN, "b": 0.0}', "a"),         # a NaN calibration
    ('{"method": "sigmoid", "a": 1.0, "b": Infinity}', "b"),
    ('{"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.1, NaN, 0.9]}', "y"),
    ('{"method": "isotonic", "x": [0.0, 0.5, 1.5], "y": [0.1, 0.5, 0.9]}', "x"),
    ('{"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, 0.5, 1.2]}', "y"),
    ('{"method": "isotonic", "x": [0.0, 0.5, 1.0], "y": [0.0, true, 1.0]}', "y"),
], ids=["sigmoid-decreasing", "sigmoid-nan", "sigmoid-inf", "isotonic-nan", "isotonic-x-over-1",
        "isotonic-y-over-1", "isotonic-bool"])
def test_a_decreasing_or_non_finite_calibration_is_refused(model_copy, make_covariates,
                                                           tmp_path, cal, field):
    (model_copy / "calibration.json").write_text(cal)
    _rehash(model_copy, "calibration.json")
    _refused(model_copy, make_covariates(), tmp_path, names="calibration.json", field=field)


def test_an_increasing_sigmoid_calibration_is_accepted(model_copy):
    (model_copy / "calibration.json").write_text('{"method": "sigmoid", "a": 0.8, "b": -0.1}')
    _rehash(model_copy, "calibration.json")
    assert load_model(model_copy).calibration["a"] == 0.8


def test_a_sigmoid_fit_that_would_decrease_falls_back_to_a_constant(caplog):
    """Scores that rank the labels the wrong way round: the best non-decreasing sigmoid is
    the constant at the labels' weighted prevalence (as isotonic gives), with a warning."""
    rng = np.random.default_rng(0)
    p = rng.random(400)
    y = (rng.random(400) > p).astype(int)  # more permafrost where the score is low
    w = rng.uniform(0.5, 2.0, 400)
    with caplog.at_level(logging.WARNING, logger="permafrost.calibration"):
        cal = fit_calibration(p, y, method="sigmoid", sample_weight=w)
    assert cal["a"] == 0.0
    prevalence = np.sum(w * y) / np.sum(w)
    assert cal["b"] == pytest.approx(np.log(prevalence / (1 - prevalence)))
    assert any("decreasing" in r.getMessage() for r in caplog.records)
    # the right way round: an increasing fit, untouched and without a warning
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="permafrost.calibration"):
        assert fit_calibration(p, 1 - y, method="sigmoid", sample_weight=w)["a"] > 0.5
    assert not caplog.records
