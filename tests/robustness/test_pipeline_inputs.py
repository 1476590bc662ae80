"""`permafrost run` / `permafrost scenarios` with malformed pipeline files.

Every case is refused while the file is validated, before any work starts: the output
directory is never created.
"""

from __future__ import annotations

import pathlib

import pytest

from .conftest import ROOT, assert_clean_failure, demo_pipeline_text, invoke


@pytest.fixture
def pipeline(tmp_path):
    """``pipeline(replace={old: new}, extra="") -> Path`` of a demo pipeline copy."""

    def make(replace: dict | None = None, extra: str = "", scenarios: bool = True):
        text = demo_pipeline_text(tmp_path / "out", scenarios=scenarios, extra=extra)
        for old, new in (replace or {}).items():
            assert old in text, old
            text = text.replace(old, new, 1)
        p = tmp_path / "pipe.toml"
        p.write_text(text)
        return p

    return make


def _both(p, *extra):
    """Run and scenarios both refuse the file (run also must not create the output dir)."""
    return invoke(["run", p, *extra]), invoke(["scenarios", p])


def test_valid_pipeline_lists_its_scenarios(pipeline):
    res = invoke(["scenarios", pipeline()])
    assert res.exit_code == 0, res.stderr
    assert "plus2" in res.stdout


CASES = {
    # name: (replace, extra, field, also a word the message must contain)
    "typo_in_section": ({"[kinematics]": "[kinematic]"}, "", "kinematic", "kinematics"),
    "typo_in_key": ({"folds = 5": "fold = 5"}, "", "train.fold", "folds"),
    "typo_in_scenario_option": ({'covariates.maat = { offset = 2.0 }':
                                 'covariates.maat = { ofset = 2.0 }'}, "",
                                "scenarios.plus2.covariates.maat.ofset", "offset"),
    "wrong_type": ({"folds = 5": 'folds = "five"'}, "", "train.folds", "five"),
    "out_of_range": ({"sensitivity_cut = 0.3": "sensitivity_cut = 3.0"}, "",
                     "kinematics.sensitivity_cut", "3.0"),
    "unknown_choice": ({'model = "logistic"\ndevice': 'model = "logistik"\ndevice'}, "",
                       "train.model", "logistik"),
    "missing_required": ({'name = "demo"\n': ""}, "", "pipeline.name", "missing"),
    "missing_input_file": ({"boreholes/boreholes.csv": "boreholes/boreholes_2019.csv"}, "",
                           "inputs.boreholes", "boreholes_2019.csv"),
    "scenario_unknown_covariate": ({"covariates.maat = { offset = 1.0 }":
                                    "covariates.mat = { offset = 1.0 }"}, "",
                                   "scenarios.plus1.covariates.mat", "maat"),
    "scenario_overrides_unknown_option": ({}, '\n[scenarios.cold]\ntrain = { n_trees = 5 }\n',
                                          "scenarios.cold.train", "n_trees"),
    "scenario_changes_nothing": ({}, '\n[scenarios.same]\ncovariates.maat = {}\n',
                                 "scenarios.same.covariates.maat", "changes nothing"),
    "reserved_scenario_name": ({}, '\n[scenarios.baseline]\ndescription = "x"\n',
                               "scenarios.baseline", "reserved"),
    "duplicate_prior_names": ({'name = "PZI prior (biased low)"':
                               'name = "survey map (biased high)"'}, "", "inputs.priors",
                              "share a name"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_pipeline_is_refused_before_any_work(case, pipeline, tmp_path):
    replace, extra, field, word = CASES[case]
    p = pipeline(replace, extra)
    run, scen = _both(p)
    for res in (run, scen):
        line = assert_clean_failure(res, names=p, field=field)
        assert word in line
    assert not (tmp_path / "out").exists(), "work started on an invalid pipeline"


def test_not_toml(tmp_path):
    p = tmp_path / "pipe.toml"
    p.write_text('[pipeline]\nname = "demo\noutput_dir = "out"\n')
    for res in _both(p):
        assert_clean_failure(res, names=p)


def test_pipeline_file_is_binary(tmp_path):
    p = tmp_path / "pipe.toml"
    p.write_bytes(b"\xff\xfe\x00[pipeline]\x00")
    for res in _both(p):
        assert_clean_failure(res, names=p)


def test_pipeline_file_missing(tmp_path):
    p = tmp_path / "nope.toml"
    for res in _both(p):
        assert_clean_failure(res, names=p)


def test_unknown_scenario_on_the_command_line(pipeline, tmp_path):
    p = pipeline()
    res = invoke(["run", p, "--scenario", "plus3"])
    line = assert_clean_failure(res, names=p, field="scenarios")
    assert "plus" in line
    assert not (tmp_path / "out").exists()


def test_unknown_step_for_only(pipeline, tmp_path):
    p = pipeline(scenarios=False)
    res = invoke(["run", p, "--only", "predcit"])
    line = assert_clean_failure(res, names="--only")
    assert "predict" in line


def test_output_dir_under_a_regular_file(pipeline, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("file")
    p = pipeline({f'output_dir = "{(tmp_path / "out").as_posix()}"':
                  f'output_dir = "{(blocker / "out").as_posix()}"'}, scenarios=False)
    res = invoke(["run", p])
    assert_clean_failure(res, names=blocker.name, field="pipeline.output_dir")
    assert blocker.read_text() == "file"


def test_relative_paths_start_at_the_pipeline_file(tmp_path):
    """A copy of the demo file elsewhere does not silently pick up other files: its
    relative inputs are missing there and that is what the error says."""
    p = tmp_path / "demo.toml"
    p.write_text((ROOT / "pipelines" / "demo.toml").read_text())
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field="inputs.covariates")
    assert str(tmp_path.parent) in line or "data_samples" in line


@pytest.mark.parametrize("name", ["../escape", "a/b", "/abs", "..\\\\x", ".", "", "plus 2",
                                  ".hidden"])
def test_scenario_names_cannot_leave_the_output_dir(name, pipeline, tmp_path):
    """A scenario name becomes ``<output_dir>/<name>/``: separators, '..' and leading dots
    are refused before any work."""
    p = pipeline(extra=f'\n[scenarios."{name}"]\ncovariates.maat = {{ offset = 1.0 }}\n')
    for res in _both(p):
        assert_clean_failure(res, names=p, field="scenarios.")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "escape").exists() and not pathlib.Path("/abs").exists()
