"""The model artefact on disk: a directory that holds a fitted PZI model without pickle.

Layout of ``MODEL_DIR/``::

    metadata.json      format, model kind, feature names (in order), grid and CRS,
                       training-data hash, CV metrics, importance, versions, device
    predictor.json     XGBoost booster in XGBoost's own JSON (xgboost, rf), or the
                       coefficients of the logistic model (logistic)
    calibration.json   calibrator parameters (isotonic knots or sigmoid a, b)
    folds/fold_KK.json the spatial-CV fold models (raw predictors, same format as
                       predictor.json) -- used by ``predict`` for a spread of predictions

Loading (:func:`load_model`) reads JSON and hands the booster file to XGBoost's JSON loader:
it never executes code.  Saving (:func:`save_model`) writes everything into a temporary
directory beside the target and renames it into place, so a crash never leaves a half model.
The model in memory is :class:`permafrost.pzi_model.PZIModel`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import xgboost as xgb

from permafrost.calibration import validate_calibration
from permafrost.checks import expects
from permafrost.errors import ModelError, OutputError
from permafrost.io._atomic import tmp_prefix
from permafrost.io.guard import check_replaceable
from permafrost.pzi_model import BoosterPredictor, LinearPredictor, PZIModel, to_json_text

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "load_model", "is_model_dir"]

FORMAT = "permafrost-pzi-model"
FORMAT_VERSION = 1
_REQUIRED = ("metadata.json", "predictor.json", "calibration.json")


def is_model_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is a model directory written by :func:`save_model` (its
    ``metadata.json`` names :data:`FORMAT`): the folders ``train --out`` may replace.

    The model directory carries no marker file of its own: its files are hashed into every
    PZI's ``PZI_MODEL_SHA256`` tag, which must stay comparable with earlier maps."""
    try:
        meta = json.loads((Path(path) / "metadata.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


@expects(model="model", path="path")
def save_model(model: PZIModel, path: str | os.PathLike, *, overwrite: bool = True) -> Path:
    """Write the model directory atomically (temporary directory, then rename).

    Parameters
    ----------
    model : PZIModel
        The fitted model; its ``metadata`` becomes the written ``metadata.json`` (with
        ``format``, ``format_version``, ``feature_names``, ``files`` and
        ``predictor_type`` added).
    path : path-like
        The model directory; an existing model directory is replaced (unless ``overwrite``
        is False).  Any other existing folder is refused unless it is empty: the tool
        deletes only what it wrote (:func:`permafrost.io.guard.check_replaceable`).
    overwrite : bool
        Replace an existing model directory.

    Returns
    -------
    pathlib.Path
        The directory.  Its bytes depend only on the model.

    Raises
    ------
    OutputError
        The path is a file or a folder that is not a model directory, exists without
        ``overwrite``, or cannot be written (nothing is written then; an existing model
        stays untouched).
    """
    target = Path(os.path.abspath(path))  # `.` and `..` have no parent to rename within
    check_replaceable(target, what="model directory", recognise=is_model_dir)
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
        (tmp / "predictor.json").write_bytes(model.predictor.to_bytes())
        (tmp / "calibration.json").write_text(to_json_text(model.calibration))
        if model.fold_models:
            (tmp / "folds").mkdir()
            for i, fm in enumerate(model.fold_models):
                name = f"folds/fold_{i:02d}.json"
                (tmp / name).write_bytes(fm.to_bytes())
                files["folds"].append(name)
        meta = dict(model.metadata)
        meta.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                     "feature_names": model.feature_names, "files": files,
                     "predictor_type": model.predictor.kind})
        (tmp / "metadata.json").write_text(to_json_text(meta))
        os.chmod(tmp, 0o755)
        if target.exists():
            # checked again right before the old folder goes: only a model (or an empty
            # folder) is renamed away and removed
            check_replaceable(target, what="model directory", recognise=is_model_dir)
            old = target.with_name(f"{tmp_prefix(target)}old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OutputError):
            raise
        raise OutputError(f"cannot write the model directory ({exc.strerror or exc}); "
                          "nothing was written", path=target,
                          fix="free space or choose another output directory") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    model.metadata = meta
    return target


@expects(path="path")
def load_model(path: str | os.PathLike) -> PZIModel:
    """Load a model directory written by :func:`save_model` (JSON only, no code runs).

    Parameters
    ----------
    path : path-like
        The model directory.

    Returns
    -------
    PZIModel

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
            return _read_booster(p)
        if ptype == "linear":
            return _read_linear(p, len(names))
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


def _read_booster(path: Path) -> BoosterPredictor:
    """An XGBoost JSON booster file (XGBoost's own loader; never unpickles)."""
    b = xgb.Booster()
    try:
        b.load_model(str(path))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
        # a binary file (e.g. a pickle): xgboost fails to decode its own error message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"not a readable XGBoost model ({first})", path=path,
                         fix="retrain the model with `permafrost train`") from None
    return BoosterPredictor(b)


def _read_linear(path: Path, n_features: int) -> LinearPredictor:
    """A logistic model's coefficient file (:meth:`LinearPredictor.to_dict` as JSON)."""
    d = _read_json(path)
    try:
        if d.get("type") != "logistic":
            raise KeyError("type")
        obj = LinearPredictor(coef=d["coef"], intercept=d["intercept"], mean=d["mean"],
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
