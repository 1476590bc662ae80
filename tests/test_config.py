"""Pipeline files: validated before any work, with messages that name the key."""

from __future__ import annotations

import textwrap

import pytest

from permafrost.config import BASELINE, load_pipeline, resolve_scenario
from permafrost.errors import ConfigError


@pytest.fixture
def tree(tmp_path):
    cov = tmp_path / "cov"
    cov.mkdir()
    for name in ("dem", "maat"):
        (cov / f"{name}.tif").write_bytes(b"")
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n")
    return tmp_path


def write(tree, body: str):
    p = tree / "p.toml"
    base = """
        [pipeline]
        name = "t"
        output_dir = "out"
        [inputs]
        covariates = "cov"
        boreholes = "bh.csv"
    """
    p.write_text(textwrap.dedent(base) + textwrap.dedent(body))
    return p


def test_valid_file_resolves_paths_relative_to_itself(tree):
    cfg = load_pipeline(write(tree, """
        [train]
        model = "logistic"
        [scenarios.plus2]
        description = "+2 °C"
        covariates.maat = { offset = 2.0 }
        predict = { chunk = 256 }
    """))
    assert cfg.inputs.covariates == tree / "cov"
    assert cfg.pipeline.output_dir == tree / "out"
    assert cfg.train.model == "logistic"
    assert cfg.scenario_names() == [BASELINE, "plus2"]
    sc, changes = resolve_scenario(cfg, "plus2")
    from permafrost.defaults import CHUNK

    assert sc.predict.chunk == 256 and cfg.predict.chunk == CHUNK
    assert changes["maat"].offset == 2.0


@pytest.mark.parametrize(
    ("body", "key", "hint"),
    [
        ("[train]\nmodle = 'rf'\n", "train.modle", "did you mean 'model'"),
        ("[trian]\nmodel = 'rf'\n", "trian", "did you mean 'train'"),
        ("[train]\nfolds = 'five'\n", "train.folds", "integer"),
        ("[train]\nmodel = 'svm'\n", "train.model", "xgboost"),
        ("[predict]\nchunk = 8\n", "predict.chunk", "greater than or equal"),
        ("[scenarios.w]\ncovariates.maaat = { offset = 1.0 }\n", "scenarios.w.covariates.maaat",
         "did you mean 'maat'"),
        ("[scenarios.w]\ntrain = { modell = 'rf' }\n", "scenarios.w.train.modell", "did you mean 'model'"),
        ("[scenarios.w]\ncovariates.maat = { ofset = 1.0 }\n", "scenarios.w.covariates.maat.ofset",
         "did you mean 'offset'"),
        ("[scenarios.w]\ncovariates.maat = {}\n", "scenarios.w.covariates.maat", "changes nothing"),
        ("[scenarios.baseline]\ndescription = 'x'\n", "scenarios.baseline", "reserved"),
        ("[scenarios.\"../../etc\"]\ndescription = 'x'\n", "scenarios.../../etc", "directory"),
        ("[scenarios.\"a/b\"]\ndescription = 'x'\n", "scenarios.a/b", "directory"),
        ("[scenarios.steps]\ndescription = 'x'\n", "scenarios.steps", "reserved"),
    ],
)
def test_bad_keys_are_named_with_a_suggestion(tree, body, key, hint):
    with pytest.raises(ConfigError) as exc:
        load_pipeline(write(tree, body))
    msg = str(exc.value)
    assert f"'{key}'" in msg, msg
    assert hint in msg, msg
    assert "p.toml" in msg and "\n" not in msg


def test_missing_input_is_named(tree):
    (tree / "bh.csv").unlink()
    with pytest.raises(ConfigError) as exc:
        load_pipeline(write(tree, ""))
    assert "inputs.boreholes" in str(exc.value) and "bh.csv" in str(exc.value)


def test_missing_required_and_bad_toml(tree):
    p = tree / "x.toml"
    p.write_text("[pipeline]\nname = 't'\n")
    with pytest.raises(ConfigError, match="pipeline.output_dir"):
        load_pipeline(p)
    p.write_text("[pipeline\nname=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_pipeline(p)
    with pytest.raises(ConfigError, match="not found"):
        load_pipeline(tree / "nope.toml")


def test_unknown_scenario_name_suggests(tree):
    cfg = load_pipeline(write(tree, "[scenarios.plus2]\ncovariates.maat = { offset = 2.0 }\n"))
    with pytest.raises(ConfigError, match="did you mean 'plus2'"):
        resolve_scenario(cfg, "plus3")


def test_reading_a_pipeline_never_executes_code(tree):
    """TOML has no code: a file that tries to smuggle some is only a bad value."""
    with pytest.raises(ConfigError):
        load_pipeline(write(tree, "[train]\nmodel = \"__import__('os').system('touch pwned')\"\n"))
    assert not (tree / "pwned").exists()


def test_scenarios_are_checked_against_a_stack_file(tmp_path):
    """A TOML stack file's covariates (derived ones included) are what scenarios may change."""
    import numpy as np
    import xarray as xr

    from permafrost.io.rasters import write_cog

    n = 64
    dem = xr.DataArray(np.linspace(3000, 4000, n * n, dtype="float32").reshape(n, n),
                       dims=("y", "x"), coords={"y": 38.6 - 0.001 * (np.arange(n) + 0.5),
                                                "x": 99.0 + 0.001 * (np.arange(n) + 0.5)})
    write_cog(dem.rio.write_crs(4326), tmp_path / "dem.tif", nodata=-9999.0)
    (tmp_path / "stack.toml").write_text('[covariates.dem]\npath = "dem.tif"\n'
                                         '[derived.slope]\nfunction = "slope"\n')
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n")
    body = ('[pipeline]\nname = "t"\noutput_dir = "out"\n[inputs]\ncovariates = "stack.toml"\n'
            'boreholes = "bh.csv"\n[scenario_method]\nmethod = "cross-section"\n'
            '[scenarios.s]\ncovariates.{} = {{ offset = 1.0 }}\n')
    p = tmp_path / "p.toml"
    p.write_text(body.format("slope"))
    assert "s" in load_pipeline(p).scenarios
    p.write_text(body.format("slop"))
    with pytest.raises(ConfigError, match="did you mean 'slope'"):
        load_pipeline(p)


def test_one_set_of_defaults_across_cli_config_library_and_pipelines():
    """The borehole weight and the chunk size have one default (permafrost.defaults) that
    the schema, the CLI and the library all use, and no pipeline file overrides it."""
    import inspect
    import tomllib
    from pathlib import Path

    from permafrost.cli.labels import labels_cmd
    from permafrost.cli.predict import predict_cmd
    from permafrost.config import LabelsOptions, PredictOptions
    from permafrost.defaults import BOREHOLE_WEIGHT, CHUNK, ROCK_GLACIER_WEIGHT
    from permafrost.labels import (borehole_points, build_labels, sample_rock_glaciers,
                                   temperature_borehole_points)
    from permafrost.predict import predict_pzi, pzi_uncertainty
    from permafrost.workflows.predict import predict_raster
    from permafrost.pipeline.steps import covariates_for_scenario
    from permafrost.workflows.applicability import applicability_from_files
    from permafrost.workflows.train import train_from_files

    def default(func, name):
        d = inspect.signature(func).parameters[name].default
        return getattr(d, "default", d)  # a typer Option carries its default

    weights = {"config": LabelsOptions().borehole_weight,
               "cli": default(labels_cmd, "borehole_weight"),
               "build_labels": default(build_labels, "borehole_weight"),
               "borehole_points": default(borehole_points, "weight"),
               "temperature_borehole_points": default(temperature_borehole_points, "weight")}
    assert set(weights.values()) == {BOREHOLE_WEIGHT}, weights
    rg = {"config": LabelsOptions().rock_glacier_weight,
          "cli": default(labels_cmd, "rock_glacier_weight"),
          "build_labels": default(build_labels, "rock_glacier_weight"),
          "sample_rock_glaciers": default(sample_rock_glaciers, "weight")}
    assert set(rg.values()) == {ROCK_GLACIER_WEIGHT}, rg
    chunks = {"config": PredictOptions().chunk, "cli": default(predict_cmd, "chunk"),
              "predict_raster": default(predict_raster, "chunk"),
              "predict_pzi": default(predict_pzi, "chunk"),
              "pzi_uncertainty": default(pzi_uncertainty, "chunk"),
              "covariates_for_scenario": default(covariates_for_scenario, "chunk"),
              "train_from_files": default(train_from_files, "chunk"),
              "applicability_from_files": default(applicability_from_files, "chunk")}
    assert set(chunks.values()) == {CHUNK}, chunks
    from permafrost.cli.train import train_cmd
    from permafrost.config import TrainOptions
    from permafrost.defaults import CALIBRATION
    from permafrost.models import train_model

    cal = {"config": TrainOptions().calibration, "cli": default(train_cmd, "calibration"),
           "train_model": default(train_model, "calibration")}
    assert set(cal.values()) == {CALIBRATION}, cal
    from permafrost.cli.validate import validate_cmd
    from permafrost.config import ValidateOptions
    from permafrost.defaults import BOOTSTRAP_RESAMPLES, CI_LEVEL, SITE_M
    from permafrost.labels import holdout_split
    from permafrost.validation import bootstrap_metrics, validate
    from permafrost.workflows.validate import validate_from_files

    boot = {"config": ValidateOptions().bootstrap_resamples,
            "cli": default(validate_cmd, "bootstrap"),
            "validate": default(validate, "bootstrap_resamples"),
            "validate_from_files": default(validate_from_files, "bootstrap_resamples"),
            "bootstrap_metrics": default(bootstrap_metrics, "n_resamples")}
    assert set(boot.values()) == {BOOTSTRAP_RESAMPLES}, boot
    level = {"config": ValidateOptions().ci_level, "cli": default(validate_cmd, "ci_level"),
             "validate": default(validate, "ci_level"),
             "validate_from_files": default(validate_from_files, "ci_level"),
             "bootstrap_metrics": default(bootstrap_metrics, "level")}
    assert set(level.values()) == {CI_LEVEL}, level
    site = {"cli": default(validate_cmd, "site_m"), "validate": default(validate, "site_m"),
            "validate_from_files": default(validate_from_files, "site_m"),
            "holdout_split": default(holdout_split, "site_m")}
    assert set(site.values()) == {SITE_M}, site
    for p in sorted((Path(__file__).resolve().parents[1] / "pipelines").glob("*.toml")):
        raw = tomllib.loads(p.read_text())
        assert "chunk" not in raw.get("predict", {}), p.name
        assert "borehole_weight" not in raw.get("labels", {}), p.name
