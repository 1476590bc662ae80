"""Loading a model and reading a pipeline file never execute code from them."""

from __future__ import annotations

import json
import os
import pickle

import pytest

from permafrost.config import load_pipeline
from permafrost.errors import ModelError
from permafrost.io.model import load_model

from .conftest import assert_clean_failure, demo_pipeline_text, invoke


class _Boom:
    """Unpickling this creates ``SENTINEL`` (a stand-in for arbitrary code)."""

    def __init__(self, sentinel: str) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return (os.mkdir, (self.sentinel,))


def _evil_pickle(path, sentinel) -> None:
    path.write_bytes(pickle.dumps(_Boom(str(sentinel))))


def test_the_sentinel_pickle_really_runs_code(tmp_path):
    """Check of the check: unpickling the file *does* run code."""
    p, s = tmp_path / "x.pkl", tmp_path / "RAN"
    _evil_pickle(p, s)
    pickle.loads(p.read_bytes())
    assert s.exists()


def test_pickle_files_in_a_model_directory_are_ignored(model_copy, make_covariates, tmp_path):
    sentinel = tmp_path / "PICKLE_RAN"
    for name in ("model.pkl", "predictor.pkl", "model.joblib", "calibration.pickle"):
        _evil_pickle(model_copy / name, sentinel)
    model = load_model(model_copy)
    assert model.feature_names == ["dem", "maat", "pisr", "ndvi"]
    res = invoke(["predict", "--model", model_copy, "--covariates", make_covariates(),
                  "--out", tmp_path / "pzi.tif", "--device", "cpu", "--threads", "1"])
    assert res.exit_code == 0, res.stderr
    assert not sentinel.exists()


@pytest.mark.parametrize("target", ["predictor.json", "calibration.json", "metadata.json",
                                    "fold"])
def test_a_pickle_in_place_of_a_model_file_is_refused(model_copy, make_covariates, tmp_path,
                                                      target):
    sentinel = tmp_path / "PICKLE_RAN"
    if target == "fold":
        meta = json.loads((model_copy / "metadata.json").read_text())
        name = meta["files"]["folds"][0]
    else:
        name = target
    _evil_pickle(model_copy / name, sentinel)
    with pytest.raises(ModelError):
        load_model(model_copy)
    out = tmp_path / "pzi.tif"
    res = invoke(["predict", "--model", model_copy, "--covariates", make_covariates(),
                  "--out", out, "--device", "cpu", "--threads", "1"])
    assert_clean_failure(res, names=os.path.basename(name))
    assert not sentinel.exists()
    assert not out.exists()


def test_metadata_pointing_the_predictor_type_at_pickle_is_refused(model_copy, tmp_path):
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["predictor_type"] = "pickle"
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="predictor_type|predictor type"):
        load_model(model_copy)


def test_code_like_strings_in_model_json_stay_strings(model_copy, tmp_path):
    sentinel = tmp_path / "EVAL_RAN"
    code = f"__import__('os').mkdir({str(sentinel)!r})"
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["note"] = code
    meta["versions"] = {"permafrost": code}
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    model = load_model(model_copy)
    assert model.metadata["note"] == code
    assert not sentinel.exists()
    cal = json.loads((model_copy / "calibration.json").read_text())
    cal["method"] = code
    (model_copy / "calibration.json").write_text(json.dumps(cal))
    with pytest.raises(ModelError):
        load_model(model_copy)
    assert not sentinel.exists()


def test_code_like_strings_in_a_pipeline_stay_strings(tmp_path):
    sentinel = tmp_path / "TOML_RAN"
    code = f"__import__('os').mkdir({str(sentinel)!r})"
    shell = f"$(mkdir {sentinel}) `mkdir {sentinel}`"
    text = demo_pipeline_text(tmp_path / "out", scenarios=False)
    text = text.replace('name = "demo"', f"name = {json.dumps(code)}")
    text = text.replace('description = "Generated', f"description = {json.dumps(shell)[:-1]} Generated")
    text += f'\n[scenarios.warm]\ndescription = {json.dumps(code)}\ncovariates.maat = {{ offset = 1.0 }}\n'
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    cfg = load_pipeline(p)
    assert cfg.pipeline.name == code
    assert cfg.scenarios["warm"].description == code
    res = invoke(["scenarios", p, "--json"])
    assert res.exit_code == 0, res.stderr
    assert not sentinel.exists()


def test_a_pipeline_cannot_smuggle_a_python_object(tmp_path):
    """TOML has no tags: a YAML-style object tag is just an invalid value or a string."""
    text = demo_pipeline_text(tmp_path / "out", scenarios=False)
    text = text.replace("seed = 42", 'seed = "!!python/object/apply:os.system [\'true\']"')
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field="pipeline.seed")
    assert "python/object" in line
