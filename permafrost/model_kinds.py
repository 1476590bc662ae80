"""The model kinds: one table of the classifiers the package trains and what each can do.

A kind is one estimator class (scikit-learn API, in :mod:`permafrost.models`) and one entry of
:data:`MODEL_KIND_TABLE`: whether it has trees (``n_estimators``), takes monotone
constraints, trains on a GPU, how categorical covariates enter it and how it predicts on the
CPU.  The pipeline's ``train.model``, the CLI's ``--model``, :func:`permafrost.models.
make_estimator` and the options each kind accepts (:func:`kind_params`) follow it, and each
option's default is the estimator's own (:meth:`ModelKind.default`).  This module imports no
scientific library, so the configuration and the CLI can use it at no cost; the estimator
class is imported when it is asked for.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from permafrost.errors import ParameterError

__all__ = ["ModelKind", "MODEL_KIND_TABLE", "MODEL_KINDS", "kind_params"]


@dataclass(frozen=True)
class ModelKind:
    """One kind of classifier and what it can do."""

    #: ``module:Class`` of its estimator (imported on demand)
    estimator: str
    #: an ensemble of trees: ``n_estimators`` applies (boosting rounds or forest size)
    trees: bool
    #: takes monotone constraints (``{feature: -1|0|1}``)
    monotone: bool
    #: trains on a CUDA GPU when one is usable (:func:`permafrost.backends.resolve_device`)
    gpu: bool
    #: how categorical covariates enter: ``native`` (splits on sets of classes) or
    #: ``one-hot`` (dummy columns, :func:`permafrost.categorical.one_hot`)
    categorical: str
    #: what predicts on the CPU
    inference: str
    #: one line for the docs and the help
    doc: str

    def estimator_class(self) -> type:
        """The estimator class (its module imported now)."""
        module, name = self.estimator.split(":")
        return getattr(importlib.import_module(module), name)

    def default(self, param: str) -> Any:
        """The estimator's own default of ``param`` (its constructor's signature): the one
        default of the library, the CLI and the pipeline."""
        return inspect.signature(self.estimator_class()).parameters[param].default


#: Every model kind: a new one is one estimator class and one entry.
MODEL_KIND_TABLE: dict[str, ModelKind] = {
    "xgboost": ModelKind("permafrost.models:XGBoostPZI", trees=True, monotone=True, gpu=True,
                         categorical="native",
                         inference="compiled trees (depth <= 6, permafrost.compiled_trees), "
                                   "else XGBoost",
                         doc="gradient-boosted trees (XGBoost; Chen & Guestrin 2016)"),
    "logistic": ModelKind("permafrost.models:LogisticPZI", trees=False, monotone=False,
                          gpu=False, categorical="one-hot", inference="NumPy (linear)",
                          doc="logistic regression on standardised covariates"),
    "rf": ModelKind("permafrost.models:RandomForestPZI", trees=True, monotone=True, gpu=True,
                    categorical="native",
                    inference="XGBoost (its depth 8 is beyond the compiled trees' 6)",
                    doc="random forest (XGBoost's num_parallel_tree; Breiman 2001)"),
}

#: the kinds' names, in the table's order
MODEL_KINDS: tuple[str, ...] = tuple(MODEL_KIND_TABLE)


def kind_params(model: str, *, n_estimators: int | None = None,
                monotone: Mapping[str, int] | None = None) -> dict | None:
    """The estimator parameters of the options given for a model kind.

    An option the kind does not have (``n_estimators`` for the logistic model, monotone
    constraints for a kind without them) is an error naming it, never dropped silently.

    Parameters
    ----------
    model : str
        A key of :data:`MODEL_KIND_TABLE`.
    n_estimators : int, optional
        Trees (boosting rounds or forest size) [-]; ``None``: the kind's default
        (:meth:`ModelKind.default`).
    monotone : mapping, optional
        ``{feature: -1|0|1}``; empty or ``None``: none.

    Returns
    -------
    dict or None
        ``n_estimators`` and ``monotone_constraints`` as given, or None when neither is.

    Raises
    ------
    ParameterError
        An unknown kind, or an option the kind does not take.
    """
    kind = MODEL_KIND_TABLE.get(model)
    if kind is None:
        raise ParameterError(f"unknown model kind {model!r}", param="model",
                             fix=f"use one of {', '.join(MODEL_KINDS)}")
    params: dict = {}
    if n_estimators is not None:
        if not kind.trees:
            raise ParameterError(f"the {model} model has no trees, so n_estimators does not "
                                 "apply", param="n_estimators",
                                 fix="leave {n_estimators} out, or set {model} to a tree model "
                                     "(xgboost, rf)")
        params["n_estimators"] = int(n_estimators)
    if monotone:
        if not kind.monotone:
            raise ParameterError(f"the {model} model takes no monotone constraints",
                                 param="monotone",
                                 fix="leave {monotone} out, or set {model} to xgboost or rf")
        params["monotone_constraints"] = dict(monotone)
    return params or None
