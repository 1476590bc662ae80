"""The model artefact: a directory that holds a fitted PZI model without pickle.

Layout of ``MODEL_DIR/``::

    metadata.json      format, model kind, feature names (in order), grid and CRS,
                       training-data hash, CV metrics, importance, versions, device
    predictor.json     XGBoost booster in XGBoost's own JSON (xgboost, rf), or the
                       coefficients of the logistic model (logistic)
    calibration.json   calibrator parameters (isotonic knots or sigmoid a, b)
    folds/fold_KK.json the spatial-CV fold models (raw predictors, same format as
                       predictor.json) -- used by ``predict`` for a spread of predictions

Loading reads JSON and hands the booster file to XGBoost's JSON loader: it never
executes code.  Saving writes everything into a temporary directory beside the target and
renames it into place, so a crash never leaves a half model.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from permafrost.backends import array_module_of
from permafrost.calibration import apply_calibration, validate_calibration
from permafrost.errors import ModelError, OutputError
from permafrost.io._atomic import tmp_prefix
from permafrost.provenance import canonical_json

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "PZIModel",
    "BoosterPredictor",
    "LinearPredictor",
    "load_model",
    "hash_training_data",
    "to_json_text",
]

FORMAT = "permafrost-pzi-model"
FORMAT_VERSION = 1
_REQUIRED = ("metadata.json", "predictor.json", "calibration.json")


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
    """Raw probability from an XGBoost booster (gradient-boosted trees or random forest)."""

    kind = "booster"

    def __init__(self, booster) -> None:
        self.booster = booster
        self._device = None

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

        ``device`` defaults to the one that holds ``X`` (CuPy: ``cuda``, else ``cpu``).
        """
        xp = array_module_of(X)
        self.use_device(device or ("cuda" if xp is not np else "cpu"))
        if X.shape[0] == 0:
            return xp.zeros(0, dtype=xp.float32)
        out = self.booster.inplace_predict(X, missing=np.nan)
        return xp.asarray(out).reshape(-1).astype(xp.float32)

    def to_bytes(self) -> bytes:
        return bytes(self.booster.save_raw(raw_format="json"))

    @classmethod
    def from_file(cls, path: Path) -> BoosterPredictor:
        import xgboost as xgb  # noqa: PLC0415

        b = xgb.Booster()
        try:
            b.load_model(str(path))
        except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
            # a binary file (e.g. a pickle): xgboost fails to decode its own error message
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise ModelError(f"not a readable XGBoost model ({first})", path=path,
                             fix="retrain the model with `permafrost train`") from None
        return cls(b)


class LinearPredictor:
    """Raw probability of a logistic model on standardised covariates (JSON-stored).

    ``p = 1 / (1 + exp(-(intercept + sum_j coef_j * (x_j - mean_j) / scale_j)))``, with
    missing values replaced by the training medians ``fill_j``.
    """

    kind = "linear"

    def __init__(self, *, coef, intercept, mean, scale, fill) -> None:
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = float(intercept)
        self.mean = np.asarray(mean, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        self.fill = np.asarray(fill, dtype=np.float64)

    def predict(self, X, *, device: str | None = None):
        """Probability of class 1 [-], 1-D float32, same array library as ``X``."""
        xp = array_module_of(X)
        X = xp.asarray(X, dtype=xp.float64)
        fill = xp.asarray(self.fill)
        X = xp.where(xp.isnan(X), fill[None, :], X)
        z = ((X - xp.asarray(self.mean)) / xp.asarray(self.scale)) @ xp.asarray(self.coef)
        z = z + self.intercept
        return (1.0 / (1.0 + xp.exp(-z))).astype(xp.float32)

    def to_dict(self) -> dict:
        return {"type": "logistic", "coef": self.coef.tolist(), "intercept": self.intercept,
                "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "fill": self.fill.tolist()}

    def to_bytes(self) -> bytes:
        return to_json_text(self.to_dict()).encode()

    @classmethod
    def from_file(cls, path: Path, n_features: int) -> LinearPredictor:
        d = _read_json(path)
        try:
            if d.get("type") != "logistic":
                raise KeyError("type")
            obj = cls(coef=d["coef"], intercept=d["intercept"], mean=d["mean"],
                      scale=d["scale"], fill=d["fill"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"logistic model file lacks or mangles {exc}", path=path,
                             fix="retrain the model") from None
        if not (len(obj.coef) == len(obj.mean) == len(obj.scale) == len(obj.fill) == n_features):
            raise ModelError("coefficient count differs from the feature count", path=path,
                             field="coef", fix="retrain the model")
        return obj


def _read_json(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
    except FileNotFoundError:
        raise ModelError("file missing from the model directory", path=path,
                         fix="give a complete model directory written by `permafrost train`") \
            from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                         path=path, fix="retrain the model") from None
    if not isinstance(d, dict):
        raise ModelError("expected a JSON object", path=path, fix="retrain the model")
    return d


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
        Everything else worth keeping (see :mod:`permafrost.model_io`).
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

    # -- prediction -------------------------------------------------------------------
    def _check_X(self, X):
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ModelError(
                f"X has shape {tuple(X.shape)}, the model needs (n, {len(self.feature_names)}) "
                f"columns in the order {self.feature_names}", field="X",
                fix="stack the covariates in model.feature_names order")

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
            Covariates [feature units] in :attr:`feature_names` order; NaN allowed.
        device : {"cpu", "cuda"}, optional
            Where XGBoost predicts (default: ``cuda`` for CuPy input, else ``cpu``).
        """
        self._check_X(X)
        return self.predictor.predict(X, device=device)

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

    # -- persistence ------------------------------------------------------------------
    def save(self, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
        """Write the model directory atomically (temporary directory, then rename).

        Returns the directory path.  Output bytes depend only on the model.
        """
        target = Path(path)
        if target.exists() and not target.is_dir():
            raise OutputError("exists and is not a directory", path=target,
                              fix="choose a directory path for the model")
        if target.exists() and not overwrite:
            raise OutputError("model directory exists", path=target,
                              fix="remove it or pass overwrite")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(target), dir=target.parent))
        except OSError as exc:
            raise OutputError(f"cannot write here ({exc.strerror})", path=target.parent,
                              fix="choose a writable output directory") from None
        try:
            files = {"predictor": "predictor.json", "calibration": "calibration.json",
                     "folds": []}
            (tmp / "predictor.json").write_bytes(self.predictor.to_bytes())
            (tmp / "calibration.json").write_text(to_json_text(self.calibration))
            if self.fold_models:
                (tmp / "folds").mkdir()
                for i, fm in enumerate(self.fold_models):
                    name = f"folds/fold_{i:02d}.json"
                    (tmp / name).write_bytes(fm.to_bytes())
                    files["folds"].append(name)
            meta = dict(self.metadata)
            meta.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                         "feature_names": self.feature_names, "files": files,
                         "predictor_type": self.predictor.kind})
            (tmp / "metadata.json").write_text(to_json_text(meta))
            os.chmod(tmp, 0o755)
            if target.exists():
                old = target.with_name(f"{tmp_prefix(target)}old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise OutputError(f"cannot write the model directory ({exc.strerror or exc}); "
                              "nothing was written", path=target,
                              fix="free space or choose another output directory") from None
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.metadata = meta
        return target


def load_model(path: str | os.PathLike) -> PZIModel:
    """Load a model directory written by :meth:`PZIModel.save` (JSON only, no code runs).

    Raises
    ------
    ModelError
        The directory is missing or incomplete, from an incompatible format version, or
        its files are unreadable.
    """
    d = Path(path)
    if not d.is_dir():
        raise ModelError("model directory not found", path=d,
                         fix="give the MODEL_DIR written by `permafrost train`")
    missing = [f for f in _REQUIRED if not (d / f).is_file()]
    if missing:
        raise ModelError(f"incomplete model directory, missing {missing}", path=d,
                         fix="retrain with `permafrost train` (or copy the whole directory)")
    meta = _read_json(d / "metadata.json")
    if meta.get("format") != FORMAT:
        raise ModelError(f"not a permafrost model (format {meta.get('format')!r})",
                         path=d / "metadata.json", field="format",
                         fix="give a directory written by `permafrost train`")
    ver = meta.get("format_version")
    if not isinstance(ver, int) or ver != FORMAT_VERSION:
        made = meta.get("versions", {}).get("permafrost", "unknown")
        raise ModelError(
            f"model format version {ver!r} (written by permafrost {made}) is incompatible "
            f"with this permafrost, which reads version {FORMAT_VERSION}",
            path=d / "metadata.json", field="format_version",
            fix="retrain the model with this version of `permafrost train`")
    names = meta.get("feature_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelError("feature_names missing or empty", path=d / "metadata.json",
                         field="feature_names", fix="retrain the model")
    ptype = meta.get("predictor_type")
    files = meta.get("files", {})
    fold_files = files.get("folds", []) if isinstance(files, dict) else []

    def read_pred(p: Path):
        if not p.is_file():
            raise ModelError("file listed in metadata.json is missing", path=p,
                             fix="copy the whole model directory or retrain")
        if ptype == "booster":
            return BoosterPredictor.from_file(p)
        if ptype == "linear":
            return LinearPredictor.from_file(p, len(names))
        raise ModelError(f"unknown predictor type {ptype!r}", path=d / "metadata.json",
                         field="predictor_type", fix="retrain the model")

    predictor = read_pred(d / "predictor.json")
    if ptype == "booster":
        nf = predictor.booster.num_features()
        if nf != len(names):
            raise ModelError(f"booster has {nf} features, metadata lists {len(names)}",
                             path=d / "predictor.json", fix="retrain the model")
    cal = validate_calibration(_read_json(d / "calibration.json"), path=d / "calibration.json")
    folds = [read_pred(d / f) for f in fold_files]
    return PZIModel(predictor=predictor, calibration=cal, feature_names=names, metadata=meta,
                    fold_models=folds)
