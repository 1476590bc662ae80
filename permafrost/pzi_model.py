"""The fitted PZI model in memory: raw predictor + calibrator + metadata (+ fold models).

:class:`PZIModel` is what :func:`permafrost.models.train_model` returns and what prediction
uses; its raw predictors are :class:`BoosterPredictor` (an XGBoost booster: gradient-boosted
trees or random forest) and :class:`LinearPredictor` (the logistic model's coefficients).
Each predictor serialises itself to bytes (:meth:`BoosterPredictor.to_bytes`: XGBoost's own
JSON; :meth:`LinearPredictor.to_bytes`: :func:`to_json_text`), which the model directory
stores and the PZI's provenance hashes.  Reading and writing the model directory is
:mod:`permafrost.io.model` (:func:`~permafrost.io.model.save_model`,
:func:`~permafrost.io.model.load_model`).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Sequence

import numpy as np

from permafrost import compiled_trees as ct
from permafrost.backends import array_module_of
from permafrost.calibration import apply_calibration, validate_calibration
from permafrost.categorical import one_hot, unseen_mask
from permafrost.errors import ModelError
from permafrost.provenance import canonical_json

__all__ = [
    "PZIModel",
    "BoosterPredictor",
    "LinearPredictor",
    "hash_training_data",
    "to_json_text",
]


def to_json_text(obj) -> str:
    """The model files' JSON: :func:`permafrost.provenance.canonical_json`, indent 1."""
    return canonical_json(obj, indent=1) + "\n"


def hash_training_data(X, y, w, feature_names: Sequence[str]) -> str:
    """SHA-256 of the training matrix, labels, weights and feature names (hex)."""
    h = hashlib.sha256()
    h.update(json.dumps(list(feature_names)).encode())
    for a, dt in ((X, np.float32), (y, np.int8), (w, np.float64)):
        arr = np.ascontiguousarray(np.asarray(a, dtype=dt))
        h.update(str(arr.shape).encode())
        h.update(arr.tobytes())
    return h.hexdigest()


class BoosterPredictor:
    """Raw probability from an XGBoost booster (gradient-boosted trees or random forest).

    On the CPU the trees are evaluated by :mod:`permafrost.compiled_trees` (Numba) when
    the booster is covered and the compiled probabilities equal ``inplace_predict``'s bit
    for bit on a sample (checked once, at first use), unless switched off (``compiled=False``
    or ``PERMAFROST_COMPILED_TREES=0``); otherwise, and always on CuPy input, by XGBoost's
    ``inplace_predict``.  :attr:`inference_path` says which, and why.
    """

    kind = "booster"

    def __init__(self, booster, *, compiled: bool | None = None) -> None:
        self.booster = booster
        self._device: str | None = None
        # compiled trees (:mod:`permafrost.compiled_trees`) on the CPU unless switched off
        # here or by PERMAFROST_COMPILED_TREES=0 (bit-identical, ~6x less CPU time than
        # inplace_predict at depth 4, docs/benchmarks.md); decided once, at first CPU use
        if compiled is None:
            compiled = os.environ.get("PERMAFROST_COMPILED_TREES", "1").strip().lower() not in (
                "0", "false", "no", "off")
        self.compiled = bool(compiled)
        self._compiled_trees: ct.CompiledTrees | None = None
        self._path: str | None = None
        self._lock = threading.Lock()

    def __getstate__(self):
        state = self.__dict__.copy()
        state.update(_lock=None, _compiled_trees=None, _path=None)  # decided again there
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def inference_path(self) -> str:
        """How :meth:`predict` computes on the CPU: ``"compiled (numba)"`` or
        ``"xgboost inplace_predict (<reason>)"``; decided (compiled and self-checked) on
        first use.  On ``cuda`` XGBoost always predicts."""
        if self._device == "cuda":
            return "xgboost inplace_predict (device cuda)"
        self._decide()
        assert self._path is not None  # decided
        return self._path

    def _decide(self, X=None) -> None:
        """Compile the trees and check them against ``inplace_predict`` (once)."""
        if self._path is not None:
            return
        with self._lock:
            if self._path is not None:
                return
            if not self.compiled:
                self._path = "xgboost inplace_predict (compiled trees switched off)"
                return
            try:
                trees = ct.compile_booster(self.booster)
                block = None
                if X is not None and np.asarray(X).shape[0] > 1:
                    block = np.asarray(X)
                why = ct.self_check(trees, self.booster, ct.sample_for(trees, block=block))
            except ct.Unsupported as e:
                why = str(e)
            except Exception as e:  # noqa: BLE001 - anything unforeseen: XGBoost computes
                why = f"not compiled: {type(e).__name__}: {e}"
            if why is not None:
                self._path = f"xgboost inplace_predict ({why})"
                return
            self._compiled_trees = trees
            self._path = ct.PATH_COMPILED

    def use_device(self, device: str) -> None:
        """Put the booster on ``device`` (``"cpu"`` or ``"cuda"``) once.

        Setting a booster parameter is not thread-safe, so :func:`permafrost.predict`
        calls this before threads share the predictor; :meth:`predict` then finds the
        booster already there and leaves it alone.
        """
        if device != self._device:
            self.booster.set_param({"device": device})
            self._device = device

    def predict(self, X, *, device: str | None = None):
        """Probability of class 1 [-], 1-D float32, same array library as ``X``.

        On first use the booster is put on ``device`` (default: the one that holds ``X``;
        CuPy: ``cuda``, else ``cpu``).  After that the booster stays where it is: changing a
        booster's device is not thread-safe, and threads share the predictor
        (:func:`permafrost.predict.prepare_model` places it once, before they start);
        XGBoost copies input held on the other device.  Call :meth:`use_device` to move it.
        """
        xp = array_module_of(X)
        if self._device is None:
            self.use_device(device or ("cuda" if xp is not np else "cpu"))
        if X.shape[0] == 0:
            return xp.zeros(0, dtype=xp.float32)
        if xp is np and self._device == "cpu":
            self._decide(X)
            if self._compiled_trees is not None:
                return self._compiled_trees.predict(X)
        out = self.booster.inplace_predict(X, missing=np.nan)
        return xp.asarray(out).reshape(-1).astype(xp.float32)

    def to_bytes(self) -> bytes:
        """The booster in XGBoost's own JSON (the model directory's ``predictor.json``)."""
        return bytes(self.booster.save_raw(raw_format="json"))


class LinearPredictor:
    """Raw probability of a logistic model on standardised covariates (JSON-stored).

    ``p = 1 / (1 + exp(-(intercept + sum_j coef_j * (x_j - mean_j) / scale_j)))``, with
    missing values replaced by the training medians ``fill_j``.  With ``categorical``
    (``{column index: levels}`` of the covariates in feature order), the ``x_j`` are the
    columns of the treatment (dummy) coding
    (:func:`permafrost.categorical.one_hot`: reference class the first level), so
    ``coef``, ``mean``, ``scale`` and ``fill`` have one entry per coded column; a row whose
    class code is not a level (or NaN) gets NaN.
    """

    kind = "linear"
    inference_path = "logistic (numpy)"

    def __init__(self, *, coef, intercept, mean, scale, fill, categorical=None) -> None:
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.fill = np.asarray(fill, dtype=np.float64)
        self.categorical = {int(j): [int(v) for v in lv]
                            for j, lv in dict(categorical or {}).items()}

    def n_inputs(self) -> int:
        """Columns of ``X`` the predictor takes (covariates, before the dummy coding)."""
        return len(self.coef) - sum(len(v) - 2 for v in self.categorical.values())

    def predict(self, X, *, device: str | None = None):
        """Probability of class 1 [-], 1-D float32, same array library as ``X``."""
        xp = array_module_of(X)
        X = xp.asarray(X, dtype=xp.float64)
        bad = None
        if self.categorical:
            bad = ~xp.isfinite(X[:, list(self.categorical)]).all(axis=1) | unseen_mask(
                X, self.categorical, xp=xp)
            X = one_hot(X, self.categorical, xp=xp)
        fill = xp.asarray(self.fill)
        X = xp.where(xp.isnan(X), fill[None, :], X)
        z = ((X - xp.asarray(self.mean)) / xp.asarray(self.scale)) @ xp.asarray(self.coef)
        z = z + self.intercept
        p = 1.0 / (1.0 + xp.exp(-z))
        if bad is not None:
            p = xp.where(bad, xp.nan, p)
        return p.astype(xp.float32)

    def to_dict(self) -> dict:
        """The coefficients as a JSON-ready dict (``type`` = ``"logistic"``; with
        categorical covariates also ``categorical``: ``{column index: levels}``)."""
        d = {"type": "logistic", "coef": self.coef.tolist(), "intercept": self.intercept,
             "mean": self.mean.tolist(), "scale": self.scale.tolist(),
             "fill": self.fill.tolist()}
        if self.categorical:
            d["categorical"] = {str(j): lv for j, lv in sorted(self.categorical.items())}
        return d

    def to_bytes(self) -> bytes:
        """:meth:`to_dict` as :func:`to_json_text` (the model directory's ``predictor.json``)."""
        return to_json_text(self.to_dict()).encode()


class PZIModel:
    """A fitted PZI model: raw predictor + calibrator + metadata (+ optional fold models).

    Parameters
    ----------
    predictor : BoosterPredictor or LinearPredictor
        The model fitted on all labels.
    calibration : dict
        Calibrator parameters (:func:`permafrost.calibration.fit_calibration`).
    feature_names : list of str
        Covariate names in the column order ``X`` must have.
    metadata : dict
        Everything else worth keeping (see :mod:`permafrost.io.model`).
    fold_models : list, optional
        Raw predictors of the spatial-CV folds (each trained on k-1 folds).  ``predict``
        may use their spread as an uncertainty of the raw probability; they are not
        calibrated separately (apply :meth:`calibrate` to their output).
    """

    def __init__(self, *, predictor, calibration: dict, feature_names: Sequence[str],
                 metadata: dict, fold_models: Sequence | None = None) -> None:
        self.predictor = predictor
        self.calibration = validate_calibration(dict(calibration))
        self.feature_names = list(feature_names)
        self.metadata = dict(metadata)
        self.fold_models = list(fold_models or [])

    @property
    def categorical(self) -> dict[str, list[int]]:
        """``{feature: class codes seen in training}`` of the categorical features
        (``metadata["features_categorical"]``; empty when there are none)."""
        return {str(k): [int(c) for c in v]
                for k, v in (self.metadata.get("features_categorical") or {}).items()}

    def unseen(self, X, *, xp=np):
        """Rows of ``X`` (feature order) with a class code the model never saw in training
        (:func:`permafrost.categorical.unseen_mask`): they get no PZI."""
        cats = self.categorical
        cols = {j: cats[f] for j, f in enumerate(self.feature_names) if f in cats}
        return unseen_mask(X, cols, xp=xp)

    # -- prediction -------------------------------------------------------------------
    def _check_X(self, X):
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ModelError(
                f"X has shape {tuple(X.shape)}, the model needs (n, {len(self.feature_names)}) "
                f"columns in the order {self.feature_names}", field="X",
                fix="stack the covariates in model.feature_names order")

    @property
    def inference_path(self) -> str:
        """How the raw predictor computes (:attr:`BoosterPredictor.inference_path`)."""
        return str(getattr(self.predictor, "inference_path", type(self.predictor).__name__))

    def use_device(self, device: str) -> None:
        """Put the predictor and the fold models on ``device`` (``"cpu"``/``"cuda"``) once,
        before threads share them."""
        for pred in (self.predictor, *self.fold_models):
            if hasattr(pred, "use_device"):
                pred.use_device(device)

    def predict_raw(self, X, *, device: str | None = None):
        """Uncalibrated probability of permafrost [-], 1-D float32 (NumPy or CuPy like ``X``).

        Parameters
        ----------
        X : ndarray, shape (n_samples, n_features)
            Covariates [feature units] in :attr:`feature_names` order; NaN allowed.  A row
            with a class code not seen in training (:attr:`categorical`) gets NaN.
        device : {"cpu", "cuda"}, optional
            Where XGBoost predicts (default: ``cuda`` for CuPy input, else ``cpu``).
        """
        self._check_X(X)
        p = self.predictor.predict(X, device=device)
        if self.categorical:  # a class without training labels: no PZI (NaN)
            xp = array_module_of(p)
            p = xp.where(self.unseen(X, xp=xp), xp.float32(np.nan), p)
        return p

    def calibrate(self, p):
        """Calibrated PZI [-] from raw probabilities (NumPy or CuPy), float32 in [0, 1]."""
        return apply_calibration(self.calibration, p)

    def predict_pzi(self, X, *, device: str | None = None):
        """Calibrated permafrost zonation index [-]: ``calibrate(predict_raw(X))``."""
        return self.calibrate(self.predict_raw(X, device=device))

    def check_features(self, available: Sequence[str], *, source=None) -> None:
        """Raise :class:`ModelError` naming the features the model needs but ``available`` lacks."""
        have = set(available)
        missing = [f for f in self.feature_names if f not in have]
        if missing:
            raise ModelError(
                f"the covariate stack lacks feature(s) {missing} that the model needs",
                path=source, field="covariates",
                fix=f"provide all of {self.feature_names} (available: {sorted(have)})")
