"""Estimators for permafrost presence and their training: spatial CV, calibration, importance.

Three estimators, each with the scikit-learn contract (hyper-parameters in ``__init__``,
``fit`` returns ``self``, fitted attributes end in ``_``):

* :class:`XGBoostPZI` -- gradient-boosted trees (Chen & Guestrin 2016), the default; runs
  on the GPU when one is really usable (:func:`permafrost.backends.resolve_device`);
* :class:`RandomForestPZI` -- a random forest (Breiman 2001) grown by XGBoost's
  random-forest mode (``num_parallel_tree``, one round), so it is saved in XGBoost JSON too;
* :class:`LogisticPZI` -- logistic regression on standardised covariates with linear terms,
  as in the Alpine permafrost index map (Boeckli et al. 2012).

Class imbalance is handled explicitly: the training weight of a point is its label weight
times a class weight ``W / (2 W_c)`` (``W`` the summed label weights, ``W_c`` those of its
class), so both classes carry equal total weight (King & Zeng 2001 "weighting").  The raw
probabilities therefore refer to a balanced prior; the out-of-fold calibration (fitted with
label weights only) maps them back to a prevalence: that of the in-situ labels (boreholes,
GTN-P) when there are enough of them, else the labels' weighted prevalence
(:mod:`permafrost.level`: the calibrator's shape from all labels, its level from the
in-situ labels; ``level`` chooses).  The PZI is then the probability of permafrost given
the covariates *as those labels sample it*: it equals the landscape's probability where
they sample places without regard to their class (a borehole's site), which is the
default assumption.  Where the sampling favoured one class, ``prevalence`` moves the PZI to
a landscape prevalence given from an independent source
(:func:`permafrost.calibration.prior_shift`); it wins over ``level``.

:func:`train_model` runs the whole chain: extraction of covariates at the labels, spatial
block CV and random CV, cross-fitted calibration, importance, and returns a
a :class:`TrainResult`: the :class:`~permafrost.pzi_model.PZIModel` and a
:class:`TrainReport`.  Reading the labels and
covariates from files and saving the model directory is the workflow
:func:`permafrost.workflows.train.train_from_files`.

References
----------
Boeckli, L., Brenning, A., Gruber, S. & Noetzli, J. (2012). A statistical approach to
modelling permafrost distribution in the European Alps or similar mountain ranges. The
Cryosphere 6, 125-140.

Breiman, L. (2001). Random forests. Machine Learning 45, 5-32.

Chen, T. & Guestrin, C. (2016). XGBoost: a scalable tree boosting system. Proc. KDD 2016.

King, G. & Zeng, L. (2001). Logistic regression in rare events data. Political Analysis
9, 137-163.

Lundberg, S. M. et al. (2020). From local explanations to global understanding with
explainable AI for trees. Nature Machine Intelligence 2, 56-67 (TreeSHAP).
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from permafrost.applicability import parse_class_table, training_ranges
from permafrost.backends import resolve_device, xgboost_gpu_usable
from permafrost.calibration import CALIBRATION_METHODS, apply_calibration, fit_calibration
from permafrost.categorical import categorical_names, levels_of, one_hot, one_hot_names
from permafrost.checks import expects
from permafrost.covariates import extract_at_points, grid_metadata
from permafrost.cv import (
    block_ids,
    covariate_ranges,
    default_block_size,
    make_folds,
    merge_groups,
    metric_xy,
    site_ids,
    summarise_folds,
    variogram_range,
)
from permafrost.defaults import CALIBRATION, LEVEL, SITE_M
from permafrost.errors import DataError, ModelError, ParameterError
from permafrost.level import (
    fit_level_calibration,
    fold_calibrator,
    uses_in_situ,
    with_given_prevalence,
)
from permafrost.metrics import binary_metrics, reliability_curve
from permafrost.model_kinds import MODEL_KIND_TABLE, MODEL_KINDS
from permafrost.options import check_options
from permafrost.provenance import versions
from permafrost.proxies import covariate_dependence
from permafrost.pzi_model import BoosterPredictor, LinearPredictor, PZIModel, hash_training_data
from permafrost.transfer import evidence_sources, leave_one_source_out, skill_by_source

__all__ = [
    "MODEL_KINDS",
    "XGBoostPZI",
    "RandomForestPZI",
    "LogisticPZI",
    "make_estimator",
    "check_training_options",
    "balanced_weights",
    "TrainReport",
    "TrainResult",
    "train_model",
    "covariate_kinds",
]

log = logging.getLogger(__name__)



# --------------------------------------------------------------------------------------
# device
# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# estimators
# --------------------------------------------------------------------------------------
def balanced_weights(y, sample_weight=None) -> np.ndarray:
    """Label weight x class weight ``W / (2 W_c)`` (both classes get equal total weight).

    Parameters
    ----------
    y : array-like of {0, 1}
        Labels [-].
    sample_weight : array-like, optional
        Label weights [-] (default 1).

    Returns
    -------
    ndarray of float64

    References
    ----------
    King & Zeng (2001), see module docstring.
    """
    y = np.asarray(y).astype(int)
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    total = w.sum()
    out = w.copy()
    for c in (0, 1):
        wc = w[y == c].sum()
        if wc > 0:
            out[y == c] *= total / (2.0 * wc)
    return out


def _as_matrix(X):
    names = list(X.columns) if hasattr(X, "columns") else None
    return np.ascontiguousarray(np.asarray(X, dtype=np.float32)), names


def _check_y(y):
    y = np.asarray(y)
    vals = set(np.unique(y).tolist())
    if not vals <= {0, 1} or len(vals) < 2:
        raise DataError(f"labels must hold both 0 and 1, found {sorted(vals)}", field="label",
                        fix="give presence (1) and absence (0) labels")
    return y.astype(np.int32)


def _threads(n_jobs: int | None, n_samples: int) -> int:
    """CPU threads for XGBoost: ``n_jobs``, or by default one thread per 50 000 samples
    (at most the core count).  On small data, thread start-up and OpenMP spinning cost more
    than they save -- twenty times more on a loaded machine (measured: 20 000 samples,
    400 trees, 2 busy cores: 1.2 s on one thread, 26 s on two)."""
    if n_jobs is not None and n_jobs > 0:
        return int(n_jobs)
    return int(min(os.cpu_count() or 1, max(1, n_samples // 50_000)))


def _categorical_columns(categorical, names) -> dict[int, list[int]]:
    """``{column index: levels}`` of the categorical features (``{name: levels}``) among
    ``names``; a categorical feature the matrix lacks is an error."""
    if not categorical:
        return {}
    if names is None:
        raise ModelError("categorical covariates need named features", field="categorical",
                         fix="train from a covariate stack (named covariates)")
    unknown = sorted(set(categorical) - set(names))
    if unknown:
        raise ModelError(f"categorical features {unknown} are not among the features",
                         field="categorical", fix=f"features: {', '.join(names)}")
    return {j: [int(v) for v in categorical[n]] for j, n in enumerate(names)
            if n in categorical}


def _monotone_tuple(constraints, names, n_features: int, categorical=None) -> str | None:
    """XGBoost's ``monotone_constraints`` string from ``{feature: -1|0|1}``.

    Physical knowledge as a constraint: the probability of permafrost cannot rise with air
    temperature (or radiation) all else equal, so a model constrained that way cannot make
    a warming scenario gain permafrost through a quirk of the trees (Chen & Guestrin 2016,
    XGBoost "Monotonic Constraints" documentation).
    """
    if not constraints:
        return None
    if names is None:
        raise ModelError("monotone constraints need named features", field="monotone",
                         fix="train from a covariate stack (named covariates)")
    unknown = sorted(set(constraints) - set(names))
    if unknown:
        raise ModelError(f"monotone constraints name unknown features {unknown}",
                         field="monotone", fix=f"features: {', '.join(names)}")
    cats = sorted(n for n in constraints if constraints[n] and n in (categorical or {}))
    if cats:
        raise ModelError(f"monotone constraints on categorical covariates {cats}: class codes "
                         "have no order", field="monotone",
                         fix="constrain continuous covariates only")
    return "(" + ",".join(str(int(constraints.get(n, 0))) for n in names) + ")"


class _XGBBase(ClassifierMixin, BaseEstimator):
    def _xgb_params(self, n_features: int) -> tuple[dict, int]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n, p) [feature units], ``y`` {0, 1}, optional label weights."""
        X, names = _as_matrix(X)
        y = _check_y(y)
        w = balanced_weights(y, sample_weight) if self.class_weight == "balanced" else (
            np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float))
        self.device_ = resolve_device(self.device, purpose="train")
        params, rounds = self._xgb_params(X.shape[1])
        cats = getattr(self, "categorical", None) or {}
        ccols = _categorical_columns(cats, names)
        mono = _monotone_tuple(getattr(self, "monotone_constraints", None), names, X.shape[1],
                               cats)
        if mono is not None:
            params["monotone_constraints"] = mono
        params.update({"objective": "binary:logistic", "tree_method": "hist",
                       "device": self.device_, "seed": int(self.random_state),
                       "nthread": _threads(self.n_jobs, len(y)), "eval_metric": "logloss",
                       "base_score": 0.5})
        # categorical covariates: native partition splits on sets of classes (XGBoost
        # feature type "c"; Chen & Guestrin 2016, XGBoost docs "Categorical Data")
        ftypes = ["c" if j in ccols else "q" for j in range(X.shape[1])] if ccols else None
        dtrain = xgb.DMatrix(X, label=y, weight=w, missing=np.nan, feature_names=names,
                             feature_types=ftypes, enable_categorical=bool(ccols))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.booster_ = xgb.train(params, dtrain, num_boost_round=rounds)
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        if names is not None:
            self.feature_names_in_ = np.array(names, dtype=object)
        return self

    def raw_predictor(self) -> BoosterPredictor:
        """The fitted booster as a :class:`~permafrost.pzi_model.BoosterPredictor` (one
        wrapper per booster, so the booster's device is set once, not on every call)."""
        pred = getattr(self, "_raw_predictor", None)
        if pred is None or pred.booster is not self.booster_:
            pred = self._raw_predictor = BoosterPredictor(self.booster_)
        return pred

    def predict_proba(self, X):
        """Class probabilities (n, 2) [-]."""
        X, _ = _as_matrix(X)
        p = self.raw_predictor().predict(X, device="cpu").astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Class labels at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class XGBoostPZI(_XGBBase):
    """Gradient-boosted trees (XGBoost ``hist``) for permafrost presence.

    Parameters
    ----------
    n_estimators : int
        Boosting rounds.
    learning_rate : float
        Shrinkage [-].
    max_depth : int
        Tree depth.
    min_child_weight : float
        Minimum summed Hessian in a leaf.
    subsample, colsample_bytree : float
        Row and column subsampling fractions [-].
    reg_lambda : float
        L2 penalty on leaf weights.
    class_weight : {"balanced", None}
        Class-imbalance handling (see module docstring).
    device : {"auto", "cpu", "cuda"}
        Training device; ``auto`` uses the GPU only when
        :func:`permafrost.backends.xgboost_gpu_usable`.
    random_state : int
        Seed.
    n_jobs : int or None
        CPU threads (None: one per 50 000 samples, at most the core count).
    monotone_constraints : dict, optional
        ``{feature: -1|0|1}`` (continuous features only).
    categorical : dict, optional
        ``{feature: class codes}`` of the categorical features: split natively on sets of
        classes (XGBoost feature type ``"c"``).

    References
    ----------
    Chen & Guestrin (2016), see module docstring.
    """

    def __init__(self, *, n_estimators: int = 400, learning_rate: float = 0.05,
                 max_depth: int = 4, min_child_weight: float = 1.0, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, reg_lambda: float = 1.0,
                 class_weight: str | None = "balanced", device: str = "auto",
                 random_state: int = 0, n_jobs: int | None = None,
                 monotone_constraints: dict | None = None,
                 categorical: dict | None = None) -> None:
        self.n_estimators = n_estimators
        self.monotone_constraints = monotone_constraints
        self.categorical = categorical
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_child_weight = min_child_weight
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _xgb_params(self, n_features):
        return ({"learning_rate": self.learning_rate, "max_depth": self.max_depth,
                 "min_child_weight": self.min_child_weight, "subsample": self.subsample,
                 "colsample_bytree": self.colsample_bytree, "reg_lambda": self.reg_lambda},
                int(self.n_estimators))


class RandomForestPZI(_XGBBase):
    """Random forest grown with XGBoost's random-forest mode (one round of parallel trees).

    Parameters
    ----------
    n_estimators : int
        Number of trees (``num_parallel_tree``).
    max_depth : int
        Tree depth.
    subsample : float
        Bootstrap-like row fraction per tree [-] (sampling without replacement).
    max_features : float or None
        Fraction of features tried per split [-] (None: ``sqrt(p)/p``, Breiman 2001).
    min_child_weight : float
        Minimum summed Hessian in a leaf.
    class_weight, device, random_state, n_jobs, monotone_constraints, categorical
        As :class:`XGBoostPZI` (categorical features: native set splits in every tree, as
        XGBoost grows this forest; see docs/method.md "Categorical covariates").

    References
    ----------
    Breiman (2001); XGBoost documentation, "Random Forests in XGBoost".
    """

    def __init__(self, *, n_estimators: int = 300, max_depth: int = 8, subsample: float = 0.632,
                 max_features: float | None = None, min_child_weight: float = 1.0,
                 class_weight: str | None = "balanced", device: str = "auto",
                 random_state: int = 0, n_jobs: int | None = None,
                 monotone_constraints: dict | None = None,
                 categorical: dict | None = None) -> None:
        self.n_estimators = n_estimators
        self.monotone_constraints = monotone_constraints
        self.categorical = categorical
        self.max_depth = max_depth
        self.subsample = subsample
        self.max_features = max_features
        self.min_child_weight = min_child_weight
        self.class_weight = class_weight
        self.device = device
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _xgb_params(self, n_features):
        mf = self.max_features if self.max_features is not None else (
            max(1.0, np.sqrt(n_features)) / n_features)
        return ({"learning_rate": 1.0, "num_parallel_tree": int(self.n_estimators),
                 "max_depth": self.max_depth, "subsample": self.subsample,
                 "colsample_bynode": float(mf), "min_child_weight": self.min_child_weight,
                 "reg_lambda": 1e-5}, 1)


class LogisticPZI(ClassifierMixin, BaseEstimator):
    """Logistic regression with linear terms on standardised covariates (Boeckli et al. 2012).

    Missing covariates are replaced by training medians; coefficients refer to
    standardised covariates (z-scores), so their magnitudes compare.

    Parameters
    ----------
    C : float
        Inverse L2 penalty (large: effectively the unpenalised GLM of Boeckli et al.).
    class_weight : {"balanced", None}
        Class-imbalance handling (see module docstring).
    max_iter : int
        L-BFGS iterations.
    random_state : int
        Unused by the deterministic solver; kept for a uniform interface.
    device : str
        Accepted for a uniform interface; fitting always runs on the CPU.
    categorical : dict, optional
        ``{feature: class codes}`` of the categorical features: treatment (dummy) coding,
        one 0/1 column per class but the reference (the smallest code), so the coefficient
        of a class is its log-odds offset from the reference (Hastie et al. 2009, Sect.
        3.2; :func:`permafrost.categorical.one_hot`).

    References
    ----------
    Boeckli et al. (2012), Sect. 3 (logistic regression, predictors MAAT and PISR).
    """

    def __init__(self, *, C: float = 1e4, class_weight: str | None = "balanced",
                 max_iter: int = 1000, random_state: int = 0, device: str = "auto",
                 categorical: dict | None = None) -> None:
        self.C = C
        self.categorical = categorical
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.random_state = random_state
        self.device = device

    def fit(self, X, y, sample_weight=None):
        """Fit on ``X`` (n, p) [feature units], ``y`` {0, 1}, optional label weights."""
        X, names = _as_matrix(X)
        self.categorical_columns_ = _categorical_columns(self.categorical, names)
        X = one_hot(X, self.categorical_columns_) if self.categorical_columns_ else \
            X.astype(np.float64)
        y = _check_y(y)
        w = balanced_weights(y, sample_weight) if self.class_weight == "balanced" else (
            np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float))
        fill = np.nanmedian(X, axis=0)
        fill = np.where(np.isfinite(fill), fill, 0.0)
        Xf = np.where(np.isnan(X), fill[None, :], X)
        mean = Xf.mean(axis=0)
        scale = Xf.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, solver="lbfgs")
        lr.fit((Xf - mean) / scale, y, sample_weight=w)
        self.coef_ = lr.coef_[0].copy()
        self.intercept_ = float(lr.intercept_[0])
        self.mean_, self.scale_, self.fill_ = mean, scale, fill
        self.classes_ = np.array([0, 1])
        self.n_features_in_ = X.shape[1]
        self.device_ = "cpu"
        if names is not None:
            self.feature_names_in_ = np.array(names, dtype=object)
        return self

    def raw_predictor(self) -> LinearPredictor:
        """The fitted model as a :class:`~permafrost.pzi_model.LinearPredictor`."""
        return LinearPredictor(coef=self.coef_, intercept=self.intercept_, mean=self.mean_,
                               scale=self.scale_, fill=self.fill_,
                               categorical=self.categorical_columns_)

    def predict_proba(self, X):
        """Class probabilities (n, 2) [-]."""
        X, _ = _as_matrix(X)
        p = self.raw_predictor().predict(X).astype(np.float64)
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """Class labels at probability 0.5."""
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


def make_estimator(model: str = "xgboost", *, device: str = "auto", seed: int = 0,
                   params: dict | None = None, categorical: dict | None = None):
    """An unfitted estimator of kind ``model`` (``xgboost``, ``rf`` or ``logistic``);
    ``categorical`` (``{feature: class codes}``) names the categorical features."""
    params = dict(params or {})
    if categorical:
        params["categorical"] = {str(k): [int(c) for c in v] for k, v in categorical.items()}
    kind = MODEL_KIND_TABLE.get(model)
    if kind is None:
        raise ModelError(f"unknown model {model!r}", field="model",
                         fix=f"use one of {list(MODEL_KINDS)}")
    return kind.estimator_class()(device=device, random_state=seed, **params)


# --------------------------------------------------------------------------------------
# training workflow
# --------------------------------------------------------------------------------------
@dataclass
class TrainReport:
    """What training measured (everything JSON-ready in :meth:`to_dict`)."""

    model: str
    device: str
    device_reason: str
    n_labels_in: int
    n_labels_used: int
    n_positive: int
    n_negative: int
    dropped: dict
    block_size_m: float
    block_size_rule: str
    n_folds: int
    spatial_folds: list
    spatial_summary: dict
    random_folds: list
    random_summary: dict
    oof_metrics: dict
    oof_metrics_raw: dict
    reliability: dict
    reliability_raw: dict
    importance: dict
    calibration: str
    threshold: float
    seconds: dict = field(default_factory=dict)
    #: ranges of spatial autocorrelation behind the block size (cv.default_block_size)
    autocorrelation: dict = field(default_factory=dict)
    #: out-of-fold skill per evidence source, with bootstrap intervals (transfer.skill_by_source)
    per_source: dict = field(default_factory=dict)
    #: train on all sources but one, score that one (transfer.leave_one_source_out)
    leave_one_source_out: list = field(default_factory=list)
    #: what the calibrated PZI's level rests on, and its warning (permafrost.level)
    level: dict = field(default_factory=dict)
    #: the surface-aware model's parts, label counts and warnings (permafrost.surface)
    surface: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain dict (for JSON)."""
        return asdict(self)


@dataclass
class TrainResult:
    """What :func:`train_model` (and :func:`permafrost.workflows.train.train_from_files`)
    returns: the fitted model and what training measured."""

    model: PZIModel
    report: TrainReport
    #: per used label: ``index`` (of the input labels), ``y``, ``w``, ``raw`` and ``cal``
    #: (spatial-CV out-of-fold predictions), ``sources`` -- for composite models
    #: (:mod:`permafrost.surface`); not saved
    oof: dict | None = field(default=None, repr=False)


#: the library versions a model's metadata records (:func:`permafrost.provenance.versions`)
MODEL_VERSION_PACKAGES = ("permafrost", "xgboost", "scikit-learn", "numpy", "python")


def _importance(est, X: np.ndarray, names: list[str], *, seed: int,
                max_rows: int = 2000) -> dict:
    """Gain and mean |SHAP| per feature (TreeSHAP via ``pred_contribs``; exact for linear).

    One value per covariate, also for a categorical one: XGBoost splits on it natively (one
    feature), and the logistic model's dummy columns are summed per covariate (the SHAP
    value of a group of features is the sum of theirs; Lundberg & Lee 2017) before the
    absolute value is taken.  The logistic model also gives each class's log-odds offset
    from the reference class (``class_offsets``)."""
    rng = np.random.default_rng(seed)
    Xs = X if len(X) <= max_rows else X[np.sort(rng.choice(len(X), max_rows, replace=False))]
    if isinstance(est, LogisticPZI):
        cols = est.categorical_columns_
        Xe = one_hot(Xs, cols) if cols else Xs.astype(np.float64)
        Xf = np.where(np.isnan(Xe), est.fill_[None, :], Xe)
        z = (Xf - est.mean_) / est.scale_
        # linear SHAP with independent features: phi_j = b_j (z_j - E z_j) (Lundberg & Lee 2017)
        phi = est.coef_[None, :] * (z - z.mean(axis=0))
        owner = [n.split("=")[0] if j_is_dummy else n for n, j_is_dummy in zip(
            one_hot_names(names, cols), _dummy_flags(names, cols))]
        shap = {n: float(np.abs(phi[:, [k for k, o in enumerate(owner) if o == n]]
                                .sum(axis=1)).mean()) for n in names}
        coef = {n: None if j in cols else float(est.coef_[owner.index(n)])
                for j, n in enumerate(names)}
        offsets = {}
        for j, lv in cols.items():
            ks = [k for k, o in enumerate(owner) if o == names[j]]
            # unstandardised: coef / scale is the log-odds offset of the class (0/1 column)
            offsets[names[j]] = {str(lv[0]): 0.0, **{
                str(c): float(est.coef_[k] / est.scale_[k]) for c, k in zip(lv[1:], ks)}}
        out = {"gain": {n: None for n in names}, "coefficient_standardised": coef,
               "mean_abs_shap": shap}
        if offsets:
            out["class_offsets"] = offsets
            out["class_offsets_rule"] = ("log-odds offset of each class from the reference "
                                         "class (the smallest code), treatment coding")
        return out
    b = est.booster_
    gain = b.get_score(importance_type="total_gain")
    tot = sum(gain.values()) or 1.0
    ccols = _categorical_columns(getattr(est, "categorical", None), names)
    ftypes = ["c" if j in ccols else "q" for j in range(len(names))] if ccols else None
    contribs = b.predict(xgb.DMatrix(Xs, missing=np.nan, feature_names=names,
                                     feature_types=ftypes, enable_categorical=bool(ccols)),
                         pred_contribs=True)
    shap = np.abs(contribs[:, :-1]).mean(axis=0)
    return {"gain": {n: float(gain.get(n, 0.0) / tot) for n in names},
            "mean_abs_shap": {n: float(s) for n, s in zip(names, shap)}}


def covariate_kinds(ds, names, categorical: dict, model: str) -> dict:
    """Each feature's kind and, for a categorical one, its classes and coding (metadata).

    ``{name: {"kind": "continuous"}}`` or ``{name: {"kind": "categorical", "classes": the
    stack's class table (tag string), "class_names": {code: name}, "codes_trained": codes
    seen at the labels (the levels), "codes_without_labels": classes of the table no label
    is on (their cells get no PZI), "coding": how the model codes it}}``."""
    out: dict[str, dict[str, Any]] = {}
    for f in names:
        if f not in categorical:
            out[f] = {"kind": "continuous"}
            continue
        tag = ds[f].attrs.get("classes")
        table = parse_class_table(tag)
        codes = categorical[f]
        coding = (f"treatment (dummy) coding, reference class {codes[0]} (the smallest code "
                  "seen in training)" if model == "logistic" and codes else
                  "native set splits (XGBoost categorical feature)")
        out[f] = {"kind": "categorical", "classes": tag,
                  "class_names": {str(c): table.get(c, str(c)) for c in codes},
                  "codes_trained": codes,
                  "codes_without_labels": sorted(c for c, nm in table.items()
                                                 if c not in codes
                                                 and nm.strip().lower() != "nodata"),
                  "coding": coding,
                  "unseen_rule": "a cell whose class is not among codes_trained gets no PZI "
                                 "(NaN) and is counted (unseen_class)"}
    return out


def _dummy_flags(names, cols) -> list[bool]:
    """For each column of :func:`permafrost.categorical.one_hot`: whether it is a dummy."""
    out = []
    for j, _n in enumerate(names):
        out += [True] * (len(cols[j]) - 1) if j in cols else [False]
    return out


def _cross_fit(estimator_factory, X, y, w, folds, *, calibration, threshold, names,
               calibrate=None):
    """Fit per fold; return OOF raw, cross-fitted calibrated OOF, per-fold metrics, fold models.

    ``calibrate(raw, mask) -> params`` fits the calibrator of a fold on the labels in
    ``mask`` (default: :func:`~permafrost.calibration.fit_calibration` on them; the level
    rule of :func:`permafrost.level.fold_calibrator` in :func:`train_model`)."""
    n = len(y)
    raw = np.full(n, np.nan)
    fold_of = np.full(n, -1)
    fold_models = []
    for k, (tr, te) in enumerate(folds):
        est = estimator_factory().fit(pd.DataFrame(X[tr], columns=names), y[tr],
                                     sample_weight=w[tr])
        pred = est.raw_predictor()
        raw[te] = pred.predict(X[te], device="cpu")
        fold_of[te] = k
        fold_models.append(pred)
    cal = np.full(n, np.nan)
    per_fold = []
    for k, (_tr, te) in enumerate(folds):
        other = fold_of != k
        params = (calibrate(raw, other) if calibrate is not None else
                  fit_calibration(raw[other], y[other], method=calibration,
                                  sample_weight=w[other]))
        cal[te] = apply_calibration(params, raw[te].astype(np.float32))
        m = binary_metrics(y[te], cal[te], sample_weight=w[te], threshold=threshold,
                           curves=False)
        m["fold"] = k
        per_fold.append(m)
    return raw, cal, per_fold, fold_models


def _pzi_meaning(lev: dict) -> str:
    """The metadata's ``pzi_meaning``: what the calibrated PZI is and what its level rests
    on (:mod:`permafrost.level`)."""
    head = "calibrated probability of permafrost given the covariates"
    mix = lev["label_prevalence"]
    if lev.get("given_prevalence") is not None:
        return (f"{head}, moved from the prevalence {lev['prevalence_of_set']:.3f} of "
                f"{lev['calibrated_on']} to a given landscape prevalence of "
                f"{lev['given_prevalence']:.3f} ({lev['rests_on']}; Saerens et al. 2002)")
    if lev["rests_on"].startswith("in-situ"):
        return (f"{head}; its level set by {lev['n']} in-situ labels (boreholes, GTN-P; "
                f"prevalence {lev['prevalence_of_set']:.3f}), not by the label mix "
                f"(prevalence {mix:.3f})")
    if lev["rests_on"].startswith("all labels"):
        return (f"{head}, at the labels' weighted prevalence {mix:.3f} (the label mix sets "
                "its level: labels taken to sample places, not classes)")
    return f"{head}: {lev['rests_on']}"


def check_training_options(*, params: dict | None = None, **values) -> None:
    """The bounds (:mod:`permafrost.options`) of :func:`train_model`'s numeric arguments and
    of ``params["n_estimators"]``: one-line :class:`~permafrost.errors.OptionError`."""
    check_options(**values)
    if params and params.get("n_estimators") is not None:
        check_options(n_estimators=params["n_estimators"])


@expects(labels_gdf="geodataframe", covariates_ds="dataset")
def train_model(labels_gdf, covariates_ds, *, model: str = "xgboost", device: str = "auto",
                seed: int = 0, folds: int = 5, block_size: float | None = None,
                block_size_rule: str | None = None,
                calibration: str = CALIBRATION, label_col: str = "label",
                group_col: str | None = "group", weight_col: str | None = "weight",
                features: Sequence[str] | None = None, params: dict | None = None,
                random_cv: bool = True, threshold: float = 0.5, min_per_class: int = 10,
                prevalence: float | None = None, prevalence_source: str | None = None,
                keep_fold_models: bool = True, batch_size: int = 100_000,
                labels_source=None, covariates_source=None,
                level: str = LEVEL) -> TrainResult:
    """Train a calibrated, spatially cross-validated permafrost model.

    Parameters
    ----------
    labels_gdf : geopandas.GeoDataFrame
        Point labels with a CRS and a 0/1 ``label_col``; optional ``group_col`` (e.g.
        rock glacier id; points of one group stay in one fold) and ``weight_col`` [-].
    covariates_ds : xarray.Dataset
        Covariates on one grid (:func:`permafrost.workflows.covariates.build_stack`).
    model : {"xgboost", "rf", "logistic"}
        Estimator.
    device : {"auto", "cpu", "cuda"}
        Training device for the tree models (the device used is recorded).
    seed : int
        Seed for folds, subsampling and the estimators.
    folds : int
        Number of CV folds.
    block_size : float, optional
        Side of the spatial CV blocks [m]; default ("auto"): the larger of the label
        variogram's range and the covariates' median range of autocorrelation
        (:func:`permafrost.cv.default_block_size`, :func:`permafrost.cv.covariate_ranges`).
        Both ranges are recorded in the report and the metadata (``cv.autocorrelation``)
        whichever block size is used.
    block_size_rule : str, optional
        How a given ``block_size`` was chosen (recorded in the metadata; default "given").
    calibration : {"isotonic", "sigmoid", "none"}
        Calibrator fitted on out-of-fold predictions.
    label_col, group_col, weight_col : str
        Column names (group and weight optional).
    features : list of str, optional
        Covariates to use (default: all variables of the stack, in stack order).
    params : dict, optional
        Estimator hyper-parameters.
    random_cv : bool
        Also run random (non-spatial) folds for comparison.
    threshold : float
        Fixed PZI threshold [-] for balanced accuracy and kappa (not tuned).
    prevalence : float, optional
        Share of permafrost [-] in the landscape, from an independent source; the
        calibrated PZI is moved from the labels' weighted prevalence to it (Saerens et al.
        2002).  Default: none.  It wins over ``level``: the PZI is moved from the
        prevalence of the set the level rests on to it.
    prevalence_source : str, optional
        Where ``prevalence`` comes from (recorded in the model's metadata).
    min_per_class : int
        Fewest labels of each class accepted.
    keep_fold_models : bool
        Keep the spatial-CV fold models in the artefact (for prediction spread).
    batch_size : int
        Points per extraction batch.
    labels_source, covariates_source : path-like, optional
        Used in messages and metadata only.
    level : {"auto", "in-situ", "labels"}
        What the calibrated PZI's level rests on (:mod:`permafrost.level`): ``auto`` the
        in-situ labels (boreholes, GTN-P) when there are enough
        (:data:`~permafrost.defaults.MIN_IN_SITU_LABELS`, with
        :data:`~permafrost.defaults.MIN_IN_SITU_PER_CLASS` of each class), else the label
        mix, with a warning (``report.level["warning"]``, metadata ``calibration.level``).

    Returns
    -------
    TrainResult
        ``model``: the calibrated :class:`~permafrost.pzi_model.PZIModel` (not saved; see
        :func:`permafrost.io.model.save_model`); ``report``: what training measured.
    """
    t0 = time.perf_counter()
    if model not in MODEL_KINDS:
        raise ModelError(f"unknown model {model!r}", field="model",
                         fix=f"use one of {list(MODEL_KINDS)}")
    if calibration not in CALIBRATION_METHODS:
        raise ModelError(f"unknown calibration {calibration!r}", field="calibration",
                         fix=f"use one of {list(CALIBRATION_METHODS)}")
    check_training_options(seed=seed, folds=folds, block_size=block_size, threshold=threshold,
                           prevalence=prevalence, params=params)
    uses_in_situ([], [], level=level)  # an unknown level fails before any work
    if label_col not in labels_gdf.columns:
        raise DataError("label column not found", path=labels_source, field=label_col,
                        fix=f"columns are {list(labels_gdf.columns)}")
    names = list(features) if features is not None else [str(v) for v in covariates_ds.data_vars]
    twice = sorted({f for f in names if names.count(f) > 1})
    if twice:
        raise DataError(f"features listed more than once: {', '.join(twice)}",
                        path=covariates_source, field="features", fix="list each feature once")
    missing = [f for f in names if f not in covariates_ds.data_vars]
    if missing:
        raise DataError(f"covariates {missing} not in the stack", path=covariates_source,
                        field="features", fix=f"available: {list(covariates_ds.data_vars)}")
    refused = [f for f in names if any(c in f for c in "[]<")] if model == "xgboost" else []
    if refused:  # XGBoost refuses these characters in feature names
        raise DataError(f"covariate names with '[', ']' or '<' cannot be used by XGBoost: "
                        f"{', '.join(refused)}", path=covariates_source, field="features",
                        fix="rename the covariate files (e.g. ndvi_2019.tif)")
    lab = labels_gdf[label_col]
    try:
        yall = lab.astype(float).to_numpy()
    except (TypeError, ValueError):
        raise DataError("labels must be 0/1", path=labels_source, field=label_col,
                        fix="use 1 for permafrost and 0 for no permafrost") from None
    bad = ~np.isin(yall, [0.0, 1.0])
    if bad.any():
        rows = np.flatnonzero(bad)[:5].tolist()
        raise DataError(f"{int(bad.sum())} labels are not 0/1 (rows {rows})",
                        path=labels_source, field=label_col,
                        fix="use 1 for permafrost and 0 for no permafrost")

    if model == "logistic":
        device_used, device_reason = "cpu", "logistic regression always fits on the CPU"
    else:
        device_used = resolve_device(device, purpose="train")
        device_reason = xgboost_gpu_usable()[1] if device != "cpu" else "cpu requested"

    at = extract_at_points(covariates_ds[names], labels_gdf, batch_size=batch_size,
                           source=covariates_source)
    X_df, keep, dropped = at.values, at.keep, at.dropped
    n_in = len(labels_gdf)
    sub = labels_gdf.loc[keep]
    X = np.ascontiguousarray(X_df.to_numpy(dtype=np.float32))
    y = yall[keep].astype(np.int32)
    # categorical covariates (stack attrs["kind"]): their levels are the codes at the labels
    categorical = {f: levels_of(X[:, names.index(f)], f, source=covariates_source)
                   for f in categorical_names(covariates_ds, names)}
    if weight_col and weight_col in sub.columns:
        w = sub[weight_col].astype(float).to_numpy()
        if not np.all(np.isfinite(w)) or np.any(w < 0):
            raise DataError("weights must be finite and >= 0", path=labels_source,
                            field=weight_col, fix="fix the weight column")
    else:
        w = np.ones(len(y))
    npos, nneg = int(y.sum()), int(len(y) - y.sum())
    need = max(min_per_class, folds)
    for cls_name, cnt in (("permafrost (1)", npos), ("no permafrost (0)", nneg)):
        if cnt < need:
            raise ParameterError(
                f"too few labels of class {cls_name}: {cnt} usable (after dropping "
                f"{sum(dropped.values())} on no-data), need at least {need} for the folds",
                path=labels_source, param="folds",
                fix="add labels of that class or use fewer {folds}")

    geom = sub.geometry
    mx, my = metric_xy(geom.x.to_numpy(), geom.y.to_numpy(), sub.crs)
    cov_ranges = covariate_ranges(covariates_ds, names, seed=seed)
    label_range = variogram_range(mx, my, y, seed=seed)
    autocorrelation = {
        "label_range_m": label_range,
        "label_rule": "effective range (3a) of an exponential variogram of the 0/1 labels",
        "covariate_range_m": cov_ranges["median_m"], "covariates": cov_ranges,
        "block_rule": "auto: the larger of the label and covariate ranges, bounded to 1/100-1/2 "
                      "of the labels' extent (permafrost.cv.default_block_size; Roberts et al. "
                      "2017; Valavi et al. 2019)"}
    if block_size is None:
        bsize, rule = default_block_size(mx, my, y, seed=seed,
                                         covariate_range_m=cov_ranges["median_m"],
                                         min_blocks=2 * folds)
    else:
        bsize, rule = float(block_size), block_size_rule or "given"
    groups = None
    if group_col and group_col in sub.columns:
        groups = sub[group_col].to_numpy(dtype=object)
    merged = merge_groups(block_ids(mx, my, bsize), groups)
    spatial_folds = make_folds(y, n_splits=folds, groups=merged, seed=seed, kind="spatial")

    def factory():
        est = make_estimator(model, device=device_used, seed=seed, params=params,
                             categorical=categorical)
        return est

    # the level of the PZI: in-situ labels or the label mix (permafrost.level); each fold's
    # calibrator is fitted as the final one is
    sources = evidence_sources(sub)
    sites = site_ids(mx, my, SITE_M)
    calibrate = fold_calibrator(y, sources, method=calibration, sample_weight=w,
                                rests_on_in_situ=uses_in_situ(y, sources, level=level))
    t1 = time.perf_counter()
    raw, cal, sp_folds, fold_models = _cross_fit(factory, X, y, w, spatial_folds,
                                                 calibration=calibration, threshold=threshold,
                                                 names=names, calibrate=calibrate)
    t2 = time.perf_counter()
    rd_folds: list = []
    if random_cv:
        rfolds = make_folds(y, n_splits=folds, seed=seed, kind="random")
        _r, _c, rd_folds, _m = _cross_fit(factory, X, y, w, rfolds, calibration=calibration,
                                          threshold=threshold, names=names, calibrate=calibrate)
    t3 = time.perf_counter()
    final = factory().fit(pd.DataFrame(X, columns=names), y, sample_weight=w)
    # shape from all labels, level from the in-situ labels if enough, then a given
    # prevalence, which wins (permafrost.level, "The order with a given prevalence")
    leveled = with_given_prevalence(
        fit_level_calibration(raw, y, sources, method=calibration, level=level,
                              sample_weight=w, sites=sites),
        prevalence, prevalence_source)
    cal_params, level_record = leveled.params, leveled.level
    label_prevalence = level_record["label_prevalence"]
    if level_record["warning"]:
        log.warning("%s", level_record["warning"])
    importance = _importance(final, X, names, seed=seed)
    t4 = time.perf_counter()

    oof = binary_metrics(y, cal, sample_weight=w, threshold=threshold, curves=False)
    oof_raw = binary_metrics(y, raw, sample_weight=w, threshold=threshold, curves=False)
    # transfer: skill per evidence source (out of fold) and leave-one-source-out
    per_source = skill_by_source(y, cal, sources, sites=sites, threshold=threshold, seed=seed)

    def fit_predict(tr, te):
        est = factory().fit(pd.DataFrame(X[tr], columns=names), y[tr], sample_weight=w[tr])
        return est.raw_predictor().predict(X[te], device="cpu")

    loso = leave_one_source_out(fit_predict, y, sources, sites=sites, threshold=threshold,
                                seed=seed)
    t5 = time.perf_counter()
    report = TrainReport(
        model=model, device=device_used, device_reason=device_reason, n_labels_in=n_in,
        n_labels_used=int(len(y)), n_positive=npos, n_negative=nneg, dropped=dropped,
        block_size_m=float(bsize), block_size_rule=rule, n_folds=folds,
        spatial_folds=sp_folds, spatial_summary=summarise_folds(sp_folds),
        random_folds=rd_folds, random_summary=summarise_folds(rd_folds) if rd_folds else {},
        oof_metrics=oof, oof_metrics_raw=oof_raw,
        reliability=reliability_curve(y, cal, sample_weight=w),
        reliability_raw=reliability_curve(y, raw, sample_weight=w),
        importance=importance, calibration=calibration, threshold=threshold,
        seconds={"extract_and_folds": t1 - t0, "spatial_cv": t2 - t1, "random_cv": t3 - t2,
                 "final_fit": t4 - t3, "transfer": t5 - t4, "total": t5 - t0},
        autocorrelation=autocorrelation, per_source=per_source, leave_one_source_out=loso,
        level=level_record,
    )
    hp = {k: v for k, v in final.get_params().items() if k not in ("device", "categorical")}
    cont = [f for f in names if f not in categorical]
    metadata = {
        "model_kind": model,
        "device": device_used,
        "seed": seed,
        "hyperparameters": hp,
        "grid": grid_metadata(covariates_ds),
        "training": {"n_labels_in": n_in, "n_labels_used": int(len(y)), "n_positive": npos,
                     "n_negative": nneg, "dropped": dropped,
                     "data_sha256": hash_training_data(X, y, w, names),
                     # the domain of applicability (permafrost.applicability)
                     # (continuous covariates; a categorical one's domain is its classes)
                     "ranges": training_ranges(X[:, [names.index(f) for f in cont]], cont),
                     "categories": categorical,
                     "label_column": label_col, "group_column": group_col,
                     "weight_column": weight_col},
        "cv": {"block_size_m": float(bsize), "block_size_rule": rule, "folds": folds,
               "threshold": threshold, "spatial": {"per_fold": sp_folds,
                                                   "summary": report.spatial_summary},
               "random": {"per_fold": rd_folds, "summary": report.random_summary},
               "oof_calibrated": oof, "oof_raw": oof_raw,
               "autocorrelation": autocorrelation,
               "per_source": {"scores": per_source,
                              "rule": "out-of-fold calibrated predictions scored per evidence "
                                      "source; percentile bootstrap intervals resampled by "
                                      f"site ({SITE_M:.0f} m)"},
               "leave_one_source_out": {
                   "runs": loso,
                   "rule": "each source predicted by a model (same estimator and "
                           "hyper-parameters) trained on the other sources only, scored with "
                           "its uncalibrated probabilities (the AUC is unchanged by a monotone "
                           "calibration); percentile bootstrap intervals by site"}},
        "pzi_meaning": _pzi_meaning(level_record),
        "calibration": {"method": calibration, "fitted_on": "spatial-CV out-of-fold predictions",
                        "label_prevalence": label_prevalence,
                        # what the PZI's level rests on (permafrost.level)
                        "level": level_record,
                        "reliability": report.reliability,
                        "reliability_raw": report.reliability_raw},
        "importance": importance,
        # categorical covariates and their class codes seen in training (the interface of
        # permafrost.pzi_model.PZIModel.categorical); each covariate's kind and classes
        "features_categorical": categorical,
        "covariates": covariate_kinds(covariates_ds, names, categorical, model),
        # how the covariates stand in for each other (proxy warnings for scenarios)
        "dependence": covariate_dependence(covariates_ds, names),
        "fold_models": "spatial-CV fold models (raw predictors) in folds/" if keep_fold_models
        else "not kept",
        "versions": versions(MODEL_VERSION_PACKAGES),
    }
    pzi = PZIModel(predictor=final.raw_predictor(), calibration=cal_params, feature_names=names,
                   metadata=metadata, fold_models=fold_models if keep_fold_models else [])
    log.info("trained %s on %d labels (%s), spatial AUC %.3f", model, len(y), device_used,
             report.spatial_summary["auc"]["mean"] or float("nan"))
    return TrainResult(model=pzi, report=report,
                       oof={"index": sub.index.to_numpy(), "y": y, "w": w, "raw": raw,
                            "cal": cal, "sources": sources, "x": mx, "y_m": my})
