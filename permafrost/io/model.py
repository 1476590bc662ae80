"""The model artefact on disk: a directory that holds a fitted PZI model without pickle.

Layout of ``MODEL_DIR/``::

    metadata.json      format, model kind, feature names (in order), grid and CRS,
                       training-data hash, CV metrics, importance, versions, device
    predictor.json     XGBoost booster in XGBoost's own JSON (xgboost, rf), or the
                       coefficients of the logistic model (logistic)
    calibration.json   calibrator parameters (isotonic knots or sigmoid a, b)
    folds/fold_KK.json the spatial-CV fold models (raw predictors, same format as
                       predictor.json) -- used by ``predict`` for a spread of predictions

The surface-aware model (:mod:`permafrost.surface`, ``predictor_type`` ``"surface"``) is a
``metadata.json`` with the routing by land-cover class (``composite``) and one such model
directory per part (``debris/``, ``ground/`` or ``pooled/``), whose ``metadata.json``
digests the top ``metadata.json`` records.

``metadata.json`` also records the SHA-256 of every other file (``sha256``: relative name ->
hex digest).

Loading (:func:`load_model`) reads JSON and hands the booster file to XGBoost's JSON loader:
it never executes code.  It reads only files inside the model directory: every name under
``files`` in ``metadata.json`` must be a plain relative name (no absolute path, no ``..``, no
symbolic link that leads out of the directory).  Each file's bytes must match the digest
that ``metadata.json`` records (a swapped predictor, a fold file from another model or an
edited calibration is refused); a model saved before digests were recorded loads with a
logged warning.  Categorical covariates: ``metadata.json`` lists their class codes seen in
training (``features_categorical``), a booster file carries XGBoost's own feature types
(``"c"``), and the logistic model's file its dummy coding (``categorical``: column index ->
levels, :class:`permafrost.pzi_model.LinearPredictor`).
A booster's own feature names (XGBoost JSON ``learner.feature_names``) must
equal ``feature_names`` in ``metadata.json``, in order: otherwise the map would be computed
from scrambled columns.  (The logistic model's coefficient file carries no names; its
coefficient count is checked.)  Saving (:func:`save_model`) writes everything into a temporary
directory beside the target and renames it into place, so a crash never leaves a half model.
The model in memory is :class:`permafrost.pzi_model.PZIModel`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import xgboost as xgb

from permafrost.calibration import validate_calibration
from permafrost.checks import expects
from permafrost.errors import ModelError, OutputError
from permafrost.io.atomic import tmp_prefix
from permafrost.io.guard import check_replaceable
from permafrost.pzi_model import BoosterPredictor, LinearPredictor, PZIModel, to_json_text
from permafrost.surface import KIND as SURFACE_KIND
from permafrost.surface import SurfaceModel, indicator_name

__all__ = ["FORMAT", "FORMAT_VERSION", "save_model", "load_model", "is_model_dir"]

log = logging.getLogger(__name__)

FORMAT = "permafrost-pzi-model"
FORMAT_VERSION = 1
_META = "metadata.json"
#: the files a model directory holds when ``metadata.json`` does not list them (and the
#: names :func:`save_model` writes)
_DEFAULT_FILES = {"predictor": "predictor.json", "calibration": "calibration.json"}
_FIX_NAMES = ("a model's files stay inside its directory, named as `permafrost train` "
              "writes them: copy the whole model directory (not links out of it) or retrain")
_FIX_DIGEST = ("copy the whole model directory again from where it was trained, or retrain "
               "with `permafrost train`")


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
def save_model(model: PZIModel | SurfaceModel, path: str | os.PathLike, *,
               overwrite: bool = True) -> Path:
    """Write the model directory atomically (temporary directory, then rename).

    Parameters
    ----------
    model : PZIModel or SurfaceModel
        The fitted model (a :class:`~permafrost.surface.SurfaceModel` is written as its
        parts' model directories plus the routing); its ``metadata`` becomes the written ``metadata.json`` (with
        ``format``, ``format_version``, ``feature_names``, ``files``, ``sha256`` (of each
        file) and ``predictor_type`` added).  A booster without feature names gets the
        model's ``feature_names`` (so that loading can check their order).
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
    ModelError
        A booster's own feature names differ from the model's ``feature_names``.
    OutputError
        The path is a file or a folder that is not a model directory, exists without
        ``overwrite``, or cannot be written (nothing is written then; an existing model
        stays untouched).
    """
    if isinstance(model, SurfaceModel):  # the surface-aware composite (kind "surface")
        return _save_surface(model, path, overwrite=overwrite)
    target = Path(os.path.abspath(path))  # `.` and `..` have no parent to rename within
    for pred in (model.predictor, *model.fold_models):
        _name_booster(pred, model.feature_names)

    def fill(tmp: Path) -> dict:
        files: dict[str, Any] = {**_DEFAULT_FILES, "folds": []}
        digests: dict[str, str] = {}

        def put(name: str, data: bytes) -> None:
            (tmp / name).write_bytes(data)
            digests[name] = hashlib.sha256(data).hexdigest()

        put(files["predictor"], model.predictor.to_bytes())
        put(files["calibration"], to_json_text(model.calibration).encode())
        if model.fold_models:
            (tmp / "folds").mkdir()
            for i, fm in enumerate(model.fold_models):
                name = f"folds/fold_{i:02d}.json"
                put(name, fm.to_bytes())
                files["folds"].append(name)
        meta = dict(model.metadata)
        meta.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                     "feature_names": model.feature_names, "files": files,
                     "sha256": digests, "predictor_type": model.predictor.kind})
        return meta

    model.metadata = _write_model_dir(target, fill, overwrite=overwrite)
    return target


def _write_model_dir(target: Path, fill, *, overwrite: bool) -> dict:
    """Write a model directory atomically: ``fill(tmp) -> metadata`` writes the files into a
    temporary folder beside ``target``, this writes ``metadata.json`` and renames the folder
    into place (an existing model directory is renamed away first, then removed).  Nothing
    is left behind on failure, and an existing model stays untouched.  Returns the
    metadata written."""
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
        meta = fill(tmp)
        (tmp / _META).write_text(to_json_text(meta))
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
    return meta


@expects(path="path")
def load_model(path: str | os.PathLike) -> PZIModel | SurfaceModel:
    """Load a model directory written by :func:`save_model` (JSON only, no code runs).

    A surface-aware model (``predictor_type`` ``"surface"``) loads as a
    :class:`permafrost.surface.SurfaceModel`, each part as a model directory of its own.

    Parameters
    ----------
    path : path-like
        The model directory.

    Returns
    -------
    PZIModel or SurfaceModel

    Raises
    ------
    ModelError
        The directory is missing or incomplete, from an incompatible format version, or
        its files are unreadable; ``metadata.json`` names a file outside the directory; a
        file's SHA-256 differs from the one ``metadata.json`` records; a booster's feature
        names differ from ``feature_names``; the calibration is not increasing.
    """
    d = Path(path)
    if not d.is_dir():
        raise ModelError("model directory not found", path=d,
                         fix="give the MODEL_DIR written by `permafrost train`")
    if not (d / _META).is_file():
        raise ModelError(f"incomplete model directory, missing {[_META]}", path=d,
                         fix="retrain with `permafrost train` (or copy the whole directory)")
    meta_path = _inside(d, _META, field=None,
                        fix="copy the whole model directory (its files, not links to them)")
    meta = _read_json(meta_path, _read_bytes(meta_path))
    if meta.get("format") != FORMAT:
        raise ModelError(f"not a permafrost model (format {meta.get('format')!r})",
                         path=meta_path, field="format",
                         fix="give a directory written by `permafrost train`")
    ver = meta.get("format_version")
    if not isinstance(ver, int) or ver != FORMAT_VERSION:
        made = meta.get("versions", {}).get("permafrost", "unknown")
        raise ModelError(
            f"model format version {ver!r} (written by permafrost {made}) is incompatible "
            f"with this permafrost, which reads version {FORMAT_VERSION}",
            path=meta_path, field="format_version",
            fix="retrain the model with this version of `permafrost train`")
    names = meta.get("feature_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ModelError("feature_names missing or empty", path=meta_path,
                         field="feature_names", fix="retrain the model")
    ptype = meta.get("predictor_type")
    if ptype == SURFACE_KIND:  # debris and ground parts (permafrost.surface)
        return _load_surface(d, meta)
    if ptype not in ("booster", "linear"):
        raise ModelError(f"unknown predictor type {ptype!r}", path=meta_path,
                         field="predictor_type", fix="retrain the model")
    files = _listed_files(d, meta)
    listed = [files["predictor"], files["calibration"], *files["folds"]]
    missing = [f for f in listed if not (d / f).is_file()]
    if missing:
        raise ModelError(f"incomplete model directory, missing {missing}", path=d,
                         fix="retrain with `permafrost train` (or copy the whole directory)")
    digests = _recorded_digests(d, meta, listed)

    def read(rel: str) -> tuple[Path, bytes]:
        p = d / rel
        data = _read_bytes(p)
        if digests is not None and hashlib.sha256(data).hexdigest() != digests[rel]:
            raise ModelError(
                "the file's SHA-256 differs from the one metadata.json records (it was "
                "replaced, edited or truncated after the model was saved)", path=p,
                fix=_FIX_DIGEST)
        return p, data

    def read_pred(rel: str):
        p, data = read(rel)
        if ptype == "booster":
            pred = _read_booster(p, data)
            _check_booster_names(pred, names, p)
            _check_booster_types(pred, names, cats, p)
            return pred
        lin = _read_linear(p, data, len(names))
        if sorted(lin.categorical) != sorted(names.index(n) for n in cats if n in names):
            raise ModelError("the logistic model's dummy-coded columns differ from "
                             "features_categorical in metadata.json", path=p,
                             field="features_categorical",
                             fix="metadata.json and the predictor do not belong together: "
                                 "retrain the model")
        return lin

    cats = meta.get("features_categorical") or {}
    if not isinstance(cats, dict) or not all(
            isinstance(v, list) and all(isinstance(c, int) for c in v) for v in cats.values()):
        raise ModelError("features_categorical is not a mapping of feature -> class codes",
                         path=meta_path, field="features_categorical", fix="retrain the model")
    predictor = read_pred(files["predictor"])
    cal_path, cal_bytes = read(files["calibration"])
    cal = validate_calibration(_read_json(cal_path, cal_bytes), path=cal_path)
    folds = [read_pred(f) for f in files["folds"]]
    return PZIModel(predictor=predictor, calibration=cal, feature_names=names, metadata=meta,
                    fold_models=folds)


def _name_booster(pred, names: list[str]) -> None:
    """Give a booster without feature names the model's; refuse a booster whose own names
    differ (its columns would be fed in another order)."""
    if getattr(pred, "kind", None) != "booster":
        return
    own = pred.booster.feature_names
    if own is None:
        pred.booster.feature_names = list(names)
    elif list(own) != list(names):
        raise ModelError(f"the booster's own feature names {list(own)} differ from the "
                         f"model's feature_names {list(names)}", field="feature_names",
                         fix="build the PZIModel with feature_names in the booster's order")


def _check_booster_names(pred: BoosterPredictor, names: list[str], path: Path) -> None:
    """The booster's feature count and own names (``learner.feature_names``) must be
    metadata.json's ``feature_names``, in order (a booster saved without names is checked by
    count only)."""
    nf = pred.booster.num_features()
    if nf != len(names):
        raise ModelError(f"booster has {nf} features, metadata.json lists {len(names)}",
                         path=path, field="feature_names", fix="retrain the model")
    own = pred.booster.feature_names
    if own is None or list(own) == names:
        return
    if sorted(own) == sorted(names):
        problem = (f"the booster takes its features in the order {list(own)}, metadata.json "
                   f"lists {names}: it would predict a scrambled map")
    else:
        problem = f"the booster was trained on features {list(own)}, metadata.json lists {names}"
    raise ModelError(problem, path=path, field="feature_names",
                     fix="metadata.json and the predictor do not belong together: retrain "
                         "the model")


def _check_booster_types(pred: BoosterPredictor, names: list[str], cats: dict,
                         path: Path) -> None:
    """The booster's categorical features (XGBoost feature type ``"c"``) must be the ones
    ``features_categorical`` in metadata.json lists (else codes would be read as numbers)."""
    types = pred.booster.feature_types or ["q"] * len(names)
    own = sorted(n for n, t in zip(names, types) if t == "c")
    if own != sorted(cats):
        raise ModelError(f"the booster takes {own or 'no'} feature(s) as categorical, "
                         f"metadata.json lists {sorted(cats) or 'none'}", path=path,
                         field="features_categorical",
                         fix="metadata.json and the predictor do not belong together: retrain "
                             "the model")


def _listed_files(d: Path, meta: dict) -> dict:
    """metadata.json's ``files``, each name checked to stay inside the model directory."""
    files = meta.get("files", {})
    if not isinstance(files, dict):
        raise ModelError("'files' is not a mapping of the model's files", path=d / _META,
                         field="files", fix=_FIX_NAMES)
    out: dict[str, Any] = {k: _inside(d, files.get(k, v), field=f"files.{k}").relative_to(d).as_posix()
           for k, v in _DEFAULT_FILES.items()}
    folds = files.get("folds", [])
    if not isinstance(folds, list):
        raise ModelError("'files.folds' is not a list of file names", path=d / _META,
                         field="files.folds", fix=_FIX_NAMES)
    out["folds"] = [_inside(d, f, field=f"files.folds[{i}]").relative_to(d).as_posix()
                    for i, f in enumerate(folds)]
    return out


def _inside(d: Path, name, *, field: str | None, fix: str = _FIX_NAMES) -> Path:
    """``d / name`` for a plain relative ``name`` (no absolute path, ``..``, ``.`` or empty
    part, no backslash) that resolves, symbolic links followed, inside ``d``."""
    where = d / _META
    if (not isinstance(name, str) or not name or "\\" in name or "\0" in name
            or any(part in ("", ".", "..") for part in name.split("/"))):
        raise ModelError(f"{name!r} is not a plain relative file name inside the model "
                         "directory", path=where, field=field, fix=fix)
    p = d / name
    try:
        real, root = p.resolve(), d.resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic-link loop
        raise ModelError(f"{name!r} cannot be resolved ({exc})", path=where, field=field,
                         fix=fix) from None
    if real == root or not real.is_relative_to(root):
        raise ModelError(f"{name!r} leads outside the model directory (to {real})",
                         path=where, field=field, fix=fix)
    return p


def _recorded_digests(d: Path, meta: dict, listed: list[str]) -> dict | None:
    """metadata.json's ``sha256`` for each listed file; None (and a warning) for a model
    saved before digests were recorded."""
    digests = meta.get("sha256")
    if digests is None:
        log.warning("%s: the model was saved without file digests (by an earlier permafrost), "
                    "so its files cannot be checked against mix-ups; retrain it to record "
                    "them", d)
        return None
    bad = None if isinstance(digests, dict) else "sha256"
    for rel in listed if bad is None else ():
        v = digests.get(rel)
        if not (isinstance(v, str) and len(v) == 64
                and all(c in "0123456789abcdef" for c in v)):
            bad = f"sha256.{rel}"
            break
    if bad is not None:
        raise ModelError("no SHA-256 (64 hex digits) recorded for each of the model's files",
                         path=d / _META, field=bad, fix=_FIX_DIGEST)
    return digests


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelError("file missing from the model directory", path=path,
                         fix="give a complete model directory written by `permafrost train`") \
            from None
    except OSError as exc:
        raise ModelError(f"cannot read ({exc.strerror or exc})", path=path,
                         fix="check the file's permissions, or retrain") from None


def _read_booster(path: Path, data: bytes) -> BoosterPredictor:
    """An XGBoost JSON booster file's bytes (XGBoost's own loader; never unpickles)."""
    b = xgb.Booster()
    try:
        b.load_model(bytearray(data))
    except (xgb.core.XGBoostError, UnicodeDecodeError) as exc:
        # a binary file (e.g. a pickle): xgboost fails to decode its own error message
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelError(f"not a readable XGBoost model ({first})", path=path,
                         fix="retrain the model with `permafrost train`") from None
    return BoosterPredictor(b)


def _read_linear(path: Path, data: bytes, n_features: int) -> LinearPredictor:
    """A logistic model's coefficient file (:meth:`LinearPredictor.to_dict` as JSON)."""
    d = _read_json(path, data)
    try:
        if d.get("type") != "logistic":
            raise KeyError("type")
        obj = LinearPredictor(coef=d["coef"], intercept=d["intercept"], mean=d["mean"],
                              scale=d["scale"], fill=d["fill"],
                              categorical=d.get("categorical"))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelError(f"logistic model file lacks or mangles {exc}", path=path,
                         fix="retrain the model") from None
    if any(not 0 <= j < n_features or not lv for j, lv in obj.categorical.items()):
        raise ModelError("categorical column index outside the features, or no levels",
                         path=path, field="categorical", fix="retrain the model")
    # with categorical covariates, one coefficient per dummy column (treatment coding)
    if not (len(obj.coef) == len(obj.mean) == len(obj.scale) == len(obj.fill)
            and obj.n_inputs() == n_features):
        raise ModelError("coefficient count differs from the feature count", path=path,
                         field="coef", fix="retrain the model")
    return obj


def _read_json(path: Path, data: bytes) -> dict:
    """A JSON object from a model file's bytes (``path`` names it in errors)."""
    try:
        d = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                         path=path, fix="retrain the model") from None
    if not isinstance(d, dict):
        raise ModelError("expected a JSON object", path=path, fix="retrain the model")
    return d


# ----------------------------------------------------------------------------- the surface model


def _save_surface(model: SurfaceModel, path, *, overwrite: bool = True) -> Path:
    """Write the composite model directory atomically: ``PART/`` (one model directory per
    part, :func:`permafrost.io.model.save_model`) and a ``metadata.json`` with the routing
    and the SHA-256 of each part's ``metadata.json`` (which records its own files')."""
    target = Path(os.path.abspath(path))

    def fill(tmp: Path) -> dict:
        digests = {}
        for p, part in model.parts.items():
            save_model(part, tmp / p)
            digests[f"{p}/metadata.json"] = hashlib.sha256(
                (tmp / p / "metadata.json").read_bytes()).hexdigest()
        meta = dict(model.metadata)
        meta.update({"format": FORMAT, "format_version": FORMAT_VERSION,
                     "feature_names": model.feature_names, "predictor_type": SURFACE_KIND,
                     "composite": model.to_dict(),
                     "files": {"parts": {p: p for p in model.parts}}, "sha256": digests})
        return meta

    model.metadata = _write_model_dir(target, fill, overwrite=overwrite)
    return target


def _load_surface(d: Path, meta: dict) -> SurfaceModel:
    """Load a composite written by :func:`save_surface_model` (``meta``: its checked
    ``metadata.json``); each part by :func:`load_model`."""
    comp = meta.get("composite")
    fix = "retrain with `permafrost train` (or copy the whole directory)"
    if not isinstance(comp, dict) or not isinstance(comp.get("parts"), list):
        raise ModelError("composite model without its routing", path=d / "metadata.json",
                         field="composite", fix=fix)
    digests = meta.get("sha256") or {}
    parts = {}
    for p in comp["parts"]:
        if not isinstance(p, str) or p not in ("debris", "ground", "pooled"):
            raise ModelError(f"unknown model part {p!r}", path=d / "metadata.json",
                             field="composite", fix=fix)
        mp = d / p / "metadata.json"
        if not mp.is_file():
            raise ModelError(f"incomplete model directory, missing {p}/", path=d, fix=fix)
        rec = digests.get(f"{p}/metadata.json")
        if rec is None or hashlib.sha256(mp.read_bytes()).hexdigest() != rec:
            raise ModelError("the part's metadata.json differs from the one the composite's "
                             "metadata.json records", path=mp,
                             fix="copy the whole model directory again or retrain")
        parts[p] = load_model(d / p)
    try:
        model = SurfaceModel(parts=parts, surface=comp["surface"], numeric=comp["numeric"],
                             indicators=comp["indicators"], route=comp["route"],
                             metadata=meta)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"composite routing unreadable ({exc})", path=d / "metadata.json",
                         field="composite", fix=fix) from None
    if model.feature_names != meta.get("feature_names"):
        raise ModelError("feature_names differ from the composite's routing",
                         path=d / "metadata.json", field="feature_names", fix=fix)
    for p, part in parts.items():
        want = [*model.numeric, *(indicator_name(model.surface, c)
                                  for c in model.indicators.get(p, []))]
        if part.feature_names != want:
            raise ModelError(f"part {p!r} has features {part.feature_names}, the routing "
                             f"needs {want}", path=d / p, field="feature_names", fix=fix)
    return model
