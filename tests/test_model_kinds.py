"""The model kinds' one table (permafrost.model_kinds) and the training defaults it anchors:
each kind's capabilities hold for its estimator, an option a kind lacks is an error naming it,
and the pipeline, the CLI and the library share one default per training option."""

from __future__ import annotations

import inspect

import pytest
import typer.main

from permafrost import compiled_trees
from permafrost.cli import app
from permafrost.config import TrainOptions
from permafrost.errors import ParameterError
from permafrost.model_kinds import MODEL_KIND_TABLE, MODEL_KINDS, kind_params
from permafrost.models import make_estimator, train_model
from permafrost.options import option_names


def _params(cls) -> dict:
    return inspect.signature(cls).parameters


def _same(a, b) -> bool:
    """Equal defaults; a repeatable flag's empty list and None both mean "none given"."""
    none = (None, [], ())
    return a == b or (a in none and b in none)


@pytest.mark.parametrize("name", MODEL_KINDS)
def test_each_kind_can_do_what_its_entry_says(name):
    kind = MODEL_KIND_TABLE[name]
    cls = kind.estimator_class()
    assert type(make_estimator(name, device="cpu")) is cls
    assert ("n_estimators" in _params(cls)) is kind.trees
    assert ("monotone_constraints" in _params(cls)) is kind.monotone
    assert "categorical" in _params(cls)
    if kind.trees:
        assert kind.default("n_estimators") > 0
        # compiled inference covers the kind's default depth, or the entry says XGBoost
        depth = kind.default("max_depth")
        assert ("compiled" in kind.inference and "else" in kind.inference) \
            is (depth <= compiled_trees.MAX_DEPTH)


def test_an_option_the_kind_lacks_is_an_error_naming_it():
    assert kind_params("logistic") is None
    assert kind_params("xgboost", n_estimators=50, monotone={"maat": -1}) == {
        "n_estimators": 50, "monotone_constraints": {"maat": -1}}
    with pytest.raises(ParameterError, match="no trees") as e:
        kind_params("logistic", n_estimators=50)
    assert e.value.param == "n_estimators"
    with pytest.raises(ParameterError, match="no monotone") as e:
        kind_params("logistic", monotone={"maat": -1})
    assert e.value.param == "monotone"
    with pytest.raises(ParameterError, match="unknown model kind 'svm'"):
        kind_params("svm")
    with pytest.raises(Exception, match="train.n_estimators|n_estimators"):
        TrainOptions.model_validate({"model": "logistic", "n_estimators": 10})


def test_training_defaults_agree_in_the_pipeline_the_cli_and_the_library():
    """For every `[train]` key: the TOML default, the `permafrost train` flag's default and
    the library's (`train_model`) are one value.  `n_estimators` is None in all three
    (the kind's own default: xgboost 400, rf 300); it was 300 in the pipeline and 400 in the
    CLI and library for XGBoost (issue 25)."""
    cmd = typer.main.get_command(app).commands["train"]
    by_flag = {opt: p for p in cmd.params for opt in getattr(p, "opts", [])}
    lib = _params(train_model)
    compared = 0
    for field, info in TrainOptions.model_fields.items():
        if info.default_factory is not None:
            continue
        param = next((n for n in (field, field.removesuffix("_m"))
                      if f"train.{field}" in option_names(n).toml), field)
        flag = option_names(param).flag("train") or f"--{field.replace('_', '-')}"
        toml_default = info.default
        if flag in by_flag:
            assert _same(by_flag[flag].default, toml_default), (field, flag)
            compared += 1
        if param in lib:
            assert _same(lib[param].default, toml_default), (field, param)
            compared += 1
    assert compared >= 10
    assert TrainOptions().n_estimators is None
    assert MODEL_KIND_TABLE["xgboost"].default("n_estimators") == 400
    assert MODEL_KIND_TABLE["rf"].default("n_estimators") == 300
