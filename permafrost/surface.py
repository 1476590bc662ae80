"""The surface-aware PZI model: a debris model and a ground model with land-cover offsets.

Rock glaciers exist only in coarse, blocky debris (Haeberli 1985; Barsch 1996), whose
ventilated, open-work ground is colder than fine or vegetated ground at the same air
temperature (the Balch effect: Harris & Pedersen 1998).  A model fitted on rock-glacier
fronts therefore speaks for debris; fed with the covariates of meadows or fine debris it
maps permafrost too far down.  Boeckli et al. (2012) answer this with separate models: a
*debris* model fitted on rock glaciers and a *rock* model fitted on rock-surface
temperatures, with offsets for other terrain.  This module does the same with the tool's
evidence:

* every label is given the surface it speaks for (:func:`label_surfaces`): a rock-glacier
  front speaks for coarse debris whatever class the land-cover map gives its cell (a
  classified map is wrong in places); an in-situ label (borehole, GTN-P/PERMOS record;
  :func:`permafrost.transfer.evidence_sources`) speaks for the class of its cell;
* the **debris model** (the chosen estimator) is trained on the labels that speak for
  debris;
* the **ground model** is trained on the in-situ labels of the other classes, with the
  land-cover class as a model term: one indicator column per class that holds at least
  :data:`~permafrost.defaults.SURFACE_MIN_CLASS_LABELS` of its labels, the most-labelled
  class being the reference (no column) -- the class offsets of Boeckli et al. (2012);
* :class:`SurfaceModel` predicts each cell with the debris model where the land cover is a
  debris class and with the ground model elsewhere.  Each part is calibrated on its own
  spatial-CV out-of-fold predictions (:func:`permafrost.models.train_model`), so each
  part's level rests on its own labels, and the metadata says on which.

Cells of a class the ground model holds no offset for (too few or no labels) are predicted
as its reference class; classes whose name says water, lake, glacier or ice get no PZI
(NaN): the ground model knows nothing of them (:data:`NOT_GROUND_PATTERN`).  Where the
in-situ labels on other ground are too few (:data:`~permafrost.defaults.SURFACE_MIN_INSITU`
or fewer of a 0/1 class than training needs), one model is trained on all labels with the
class indicators (pooled fallback) and a warning says that rock-glacier evidence then sets
the level of the other ground too.

References
----------
Barsch, D. (1996). Rockglaciers: Indicators for the Present and Former Geoecology in High
    Mountain Environments. Springer, Berlin.
Boeckli, L., Brenning, A., Gruber, S., Noetzli, J. (2012). A statistical approach to
    modelling permafrost distribution in the European Alps or similar mountain ranges. The
    Cryosphere 6, 125-140 (Sect. 3: debris and rock models, offsets for other terrain).
Haeberli, W. (1985). Creep of mountain permafrost: internal structure and flow of alpine
    rock glaciers. Mitt. VAW ETH Zürich 77.
Harris, S. A., Pedersen, D. E. (1998). Thermal regimes beneath coarse blocky materials.
    Permafrost Periglac. Process. 9, 107-120.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import xarray as xr

from permafrost.applicability import parse_class_table
from permafrost.backends import array_module_of
from permafrost.checks import expects
from permafrost.covariates import extract_at_points
from permafrost.cv import block_ids, merge_groups, metric_xy, site_ids, summarise_folds
from permafrost.defaults import (
    LEVEL,
    SITE_M,
    SURFACE_MIN_CLASS_LABELS,
    SURFACE_MIN_INSITU,
)
from permafrost.errors import DataError, ModelError, OptionError, ParameterError
from permafrost.metrics import binary_metrics
from permafrost.models import TrainReport, TrainResult, train_model
from permafrost.transfer import evidence_sources, skill_by_source

__all__ = [
    "DEBRIS_PATTERN",
    "too_few_blocks",
    "NOT_GROUND_PATTERN",
    "SURFACE_CHOICES",
    "SurfaceModel",
    "debris_class_codes",
    "find_surface",
    "label_surfaces",
    "surface_classes",
    "train_surface_model",
]

log = logging.getLogger(__name__)

#: a class whose name matches this is coarse debris (``train.debris_classes`` default):
#: "coarse debris (blocky)", "blocky debris", "block field"...
DEBRIS_PATTERN = re.compile(r"coarse|block", re.IGNORECASE)
#: classes whose name matches this get no PZI from the surface model (no labels speak for
#: them; they are masked in a permafrost map anyway)
NOT_GROUND_PATTERN = re.compile(r"water|lake|glacier|\bice\b", re.IGNORECASE)
_NODATA = re.compile(r"no[ _-]?data|none|missing", re.IGNORECASE)
#: the special values of ``train.surface``
SURFACE_CHOICES = ("auto", "none")
#: the composite's ``predictor_type`` in ``metadata.json``
KIND = "surface"
_FIX_SURFACE = ("give train.surface = \"auto\", \"none\" or the name of a categorical "
                "covariate (attrs kind=categorical and a classes table)")


# ----------------------------------------------------------------------------- options


def surface_classes(da: xr.DataArray) -> dict[int, str]:
    """``{code: name}`` of a categorical covariate (its ``classes`` attribute,
    :func:`permafrost.applicability.parse_class_table`), without the class named nodata;
    empty when it is not categorical."""
    if str(da.attrs.get("kind", "")).lower() != "categorical":
        return {}
    return {k: v for k, v in parse_class_table(da.attrs.get("classes")).items()
            if not _NODATA.fullmatch(v.strip())}


def find_surface(ds: xr.Dataset, surface: str | None = "auto",
                 features: Sequence[str] | None = None) -> str | None:
    """The land-cover covariate the surface-aware model routes by, or None.

    Parameters
    ----------
    ds : xarray.Dataset
        The covariate stack.
    surface : str
        ``"auto"``: the first categorical covariate (``attrs["kind"] == "categorical"``)
        whose classes table names a coarse-debris class (:data:`DEBRIS_PATTERN`), None when
        there is none; ``"none"`` (or None): no surface model; else the covariate's name.
    features : sequence of str, optional
        The covariates training may use (default: all of the stack).

    Raises
    ------
    OptionError
        A named covariate that is not in the stack, not categorical or has no classes.
    """
    if surface is None or surface == "none":
        return None
    names = list(features) if features is not None else [str(v) for v in ds.data_vars]
    if surface == "auto":
        for n in names:
            if n in ds.data_vars and any(DEBRIS_PATTERN.search(v)
                                         for v in surface_classes(ds[n]).values()):
                return n
        return None
    if not isinstance(surface, str) or surface not in ds.data_vars:
        raise OptionError(f"surface covariate {surface!r} is not in the stack",
                          field="train.surface", fix=_FIX_SURFACE)
    if features is not None and surface not in names:
        raise OptionError(f"surface covariate {surface!r} is not among the features",
                          field="train.surface", fix="add it to train.features")
    if not surface_classes(ds[surface]):
        raise OptionError(f"covariate {surface!r} is not categorical (no kind=categorical "
                          "and classes attributes)", field="train.surface", fix=_FIX_SURFACE)
    return surface


def debris_class_codes(classes: dict[int, str], given: Sequence[int] | None = None
                       ) -> list[int]:
    """The land-cover codes of coarse debris: ``given`` (checked against the table), else
    the classes whose name matches :data:`DEBRIS_PATTERN`.

    Raises
    ------
    OptionError
        A given code not in the table, or no debris class at all.
    """
    if given:
        codes = []
        for c in given:
            try:
                ci = int(c)
            except (TypeError, ValueError):
                raise OptionError(f"debris class {c!r} is not an integer code",
                                  field="train.debris_classes",
                                  fix=f"use codes of the land-cover table {classes}") from None
            if ci not in classes or ci != c:
                raise OptionError(f"debris class {c!r} is not in the land-cover table",
                                  field="train.debris_classes",
                                  fix=f"use codes of the land-cover table {classes}")
            codes.append(ci)
        return sorted(set(codes))
    codes = sorted(k for k, v in classes.items() if DEBRIS_PATTERN.search(v))
    if not codes:
        raise ParameterError("the land-cover table names no coarse-debris class",
                             param="debris_classes",
                             fix="give the debris codes ({debris_classes}) from "
                                 + str(classes))
    return codes


# ----------------------------------------------------------------------------- labels


def label_surfaces(sources: np.ndarray, landcover: np.ndarray, debris: Sequence[int]
                   ) -> np.ndarray:
    """The surface each label speaks for: ``"debris"`` or ``"ground"``.

    A rock-glacier front speaks for coarse debris whatever the land-cover map says at its
    cell (rock glaciers are landforms of coarse debris: Haeberli 1985; Barsch 1996; a
    classified map is wrong in places); an in-situ label (borehole, GTN-P/PERMOS) speaks
    for the class of its cell.

    Parameters
    ----------
    sources : array of str
        :func:`permafrost.transfer.evidence_sources` of the labels.
    landcover : array of float
        Land-cover code at each label (NaN: none).
    debris : sequence of int
        The debris codes.
    """
    lc = np.asarray(landcover, dtype=np.float64)
    on_debris = np.isin(lc, np.asarray(list(debris), dtype=np.float64))
    rg = np.asarray(sources, dtype=object) == "rock_glacier"
    return np.where(rg | on_debris, "debris", "ground").astype(object)


def indicator_name(surface: str, code: int) -> str:
    return f"{surface}_{code}"


def _with_indicators(ds: xr.Dataset, numeric: list[str], surface: str, codes: list[int]
                     ) -> tuple[xr.Dataset, list[str]]:
    """``ds[numeric]`` plus one 0/1 column per code (NaN where the land cover is missing)."""
    lc = ds[surface]
    have = lc.notnull()
    out = ds[numeric].copy()
    names = []
    for c in codes:
        nm = indicator_name(surface, c)
        if nm in ds.data_vars and nm != surface:
            raise DataError(f"the indicator column {nm!r} clashes with a covariate",
                            field="features", fix="rename that covariate")
        col = (lc == c).astype(np.float32).where(have)
        col.attrs = {"long_name": f"{surface} is class {c}", "units": "1"}
        out[nm] = col
        names.append(nm)
    return out, names


# ----------------------------------------------------------------------------- the model


class SurfaceModel:
    """A PZI model made of parts routed by land-cover class (Boeckli et al. 2012).

    Parameters
    ----------
    parts : dict
        ``{name: PZIModel}``: ``debris`` and ``ground`` (or ``pooled`` for the fallback).
        Each part's features are ``numeric`` plus its indicator columns.
    surface : str
        The land-cover covariate (the last of :attr:`feature_names`).
    numeric : list of str
        The other covariates, in the order the parts take them.
    indicators : dict
        ``{part: [codes]}``: the classes with an indicator column in that part.
    route : dict
        ``{code: part}``: the part that predicts cells of each class; a class not in it
        gets NaN (:data:`NOT_GROUND_PATTERN`, codes not in the table).
    metadata : dict
        What training recorded (``surface`` section: parts, label counts, rules).
    """

    kind = KIND

    def __init__(self, *, parts: dict, surface: str, numeric: Sequence[str],
                 indicators: dict, route: dict, metadata: dict) -> None:
        self.parts = dict(parts)
        self.surface = surface
        self.numeric = list(numeric)
        self.indicators = {k: [int(c) for c in v] for k, v in indicators.items()}
        self.route = {int(k): str(v) for k, v in route.items()}
        self.metadata = dict(metadata)
        self.feature_names = [*self.numeric, surface]
        bad = sorted(set(self.route.values()) - set(self.parts))
        if bad:
            raise ModelError(f"the route names parts {bad} the model lacks", field="route",
                             fix="retrain the model")

    # -- interface of permafrost.predict -----------------------------------------------
    @property
    def fold_models(self) -> list:
        """One entry per fold that every part has (their spread: :meth:`fold_pzi`)."""
        n = min(len(p.fold_models) for p in self.parts.values())
        return [tuple(p.fold_models[k] for p in self.parts.values()) for k in range(n)]

    def use_device(self, device: str) -> None:
        """Put every part's predictors on ``device`` once, before threads share them, and
        let each finish its configuration with a one-row prediction
        (:func:`permafrost.predict.prepare_model` predicts one pixel of code 0, which no
        part sees)."""
        for p in self.parts.values():
            p.use_device(device)
            one = np.zeros((1, len(p.feature_names)), dtype=np.float32)
            for pred in (p.predictor, *p.fold_models):
                pred.predict(one, device=device)

    def check_features(self, available: Sequence[str], *, source=None) -> None:
        """Raise :class:`ModelError` naming the covariates the model needs but lacks."""
        missing = [f for f in self.feature_names if f not in set(available)]
        if missing:
            raise ModelError(
                f"the covariate stack lacks feature(s) {missing} that the model needs",
                path=source, field="covariates",
                fix=f"provide all of {self.feature_names} (available: {sorted(available)})")

    def _check_X(self, X) -> None:
        if X.ndim != 2 or X.shape[1] != len(self.feature_names):
            raise ModelError(
                f"X has shape {tuple(X.shape)}, the model needs (n, {len(self.feature_names)}) "
                f"columns in the order {self.feature_names}", field="X",
                fix="stack the covariates in model.feature_names order")

    def _part_rows(self, X):
        """``{part: (rows, X_part)}``: the rows each part predicts and their design."""
        xp = array_module_of(X)
        lc = X[:, -1]
        num = X[:, :-1]
        out = {}
        for name in self.parts:
            codes = [c for c, p in self.route.items() if p == name]
            rows = xp.zeros(X.shape[0], dtype=bool)
            for c in codes:
                rows |= lc == c
            sub_lc = lc[rows]
            cols = [num[rows]] + [(sub_lc == c).astype(X.dtype)[:, None]
                                  for c in self.indicators.get(name, [])]
            out[name] = (rows, xp.ascontiguousarray(xp.concatenate(cols, axis=1)))
        return out

    def predict_pzi(self, X, *, device: str | None = None):
        """Calibrated PZI [-], 1-D float32 (NumPy or CuPy like ``X``): each row by the part
        its land-cover class routes to, calibrated by that part's own calibrator; NaN for a
        class no part predicts.

        Parameters
        ----------
        X : ndarray, shape (n, n_features)
            Covariates in :attr:`feature_names` order, the land-cover code last.
        """
        self._check_X(X)
        xp = array_module_of(X)
        out = xp.full(X.shape[0], np.nan, dtype=np.float32)
        for name, (rows, Xp) in self._part_rows(X).items():
            if Xp.shape[0]:
                out[rows] = xp.asarray(self.parts[name].predict_pzi(Xp, device=device),
                                       dtype=np.float32)
        return out

    def fold_pzi(self, X, *, device: str | None = None):
        """Calibrated PZI of each fold [-], shape (n_folds, n): fold k of every part, each
        calibrated by its part's calibrator (the spread of :func:`permafrost.predict.
        pzi_uncertainty`)."""
        self._check_X(X)
        xp = array_module_of(X)
        n = len(self.fold_models)
        out = xp.full((n, X.shape[0]), np.nan, dtype=np.float64)
        for name, (rows, Xp) in self._part_rows(X).items():
            if not Xp.shape[0]:
                continue
            part = self.parts[name]
            for k in range(n):
                raw = part.fold_models[k].predict(Xp, device=device)
                out[k, rows] = xp.asarray(part.calibrate(raw), dtype=np.float64)
        return out

    def to_dict(self) -> dict:
        """The routing (what :func:`permafrost.io.model.save_model` writes in ``metadata.json``)."""
        return {"surface": self.surface, "numeric": self.numeric,
                "parts": list(self.parts), "indicators": self.indicators,
                "route": {str(k): v for k, v in sorted(self.route.items())}}


# ----------------------------------------------------------------------------- training


@expects(labels_gdf="geodataframe", covariates_ds="dataset")
def train_surface_model(labels_gdf, covariates_ds, *, surface: str | None = "auto",
                        debris_classes: Sequence[int] | None = None,
                        features: Sequence[str] | None = None, label_col: str = "label",
                        min_per_class: int = 10, folds: int = 5, threshold: float = 0.5,
                        seed: int = 0, labels_source=None, covariates_source=None,
                        **kwargs):
    """Train the surface-aware model (debris model + ground model with class offsets), or
    :func:`permafrost.models.train_model` when the stack holds no land-cover covariate.

    Parameters
    ----------
    labels_gdf : geopandas.GeoDataFrame
        Labels as for :func:`~permafrost.models.train_model` (``source``/``evidence``
        columns say which are rock-glacier fronts and which in-situ).
    covariates_ds : xarray.Dataset
        The covariates; the land cover is a variable with ``attrs["kind"] ==
        "categorical"`` and a ``classes`` table.
    surface : str
        ``"auto"``, ``"none"`` or a covariate name (:func:`find_surface`).
    debris_classes : sequence of int, optional
        The debris codes (default: :func:`debris_class_codes` from the class names).
    features : list of str, optional
        Covariates (default: all of the stack); the land cover is routed by, not fitted.
    label_col, min_per_class, folds, threshold, seed, labels_source, covariates_source,
    **kwargs
        As for :func:`~permafrost.models.train_model` (each part is trained by it, with its
        own spatial CV folds, block size and calibration on its own out-of-fold
        predictions).

    Returns
    -------
    permafrost.models.TrainResult
        ``model``: a :class:`SurfaceModel` (or a plain PZIModel when no surface is used);
        ``report``: the composite's report, with ``surface`` (parts, label counts,
        warnings).

    Raises
    ------
    OptionError
        A bad ``surface`` or ``debris_classes``.
    """
    common = dict(label_col=label_col, min_per_class=min_per_class, folds=folds,
                  threshold=threshold, seed=seed, labels_source=labels_source,
                  covariates_source=covariates_source, **kwargs)
    name = find_surface(covariates_ds, surface, features)
    if name is None:
        if debris_classes:
            raise OptionError("debris classes given without a land-cover covariate",
                              field="train.debris_classes",
                              fix="give train.surface (a categorical covariate) or drop "
                                  "the debris classes")
        return train_model(labels_gdf, covariates_ds, features=features, **common)
    classes = surface_classes(covariates_ds[name])
    debris = debris_class_codes(classes, debris_classes)
    feats = list(features) if features is not None else [str(v) for v in covariates_ds.data_vars]
    numeric = [f for f in feats if f != name and not surface_classes(covariates_ds[f])]
    if not numeric:
        raise DataError("the surface model needs covariates besides the land cover",
                        path=covariates_source, field="features",
                        fix="add numeric covariates (maat, pisr...)")
    if label_col not in labels_gdf.columns:
        raise DataError("label column not found", path=labels_source, field=label_col,
                        fix=f"columns are {list(labels_gdf.columns)}")

    at = extract_at_points(covariates_ds[[name, *numeric]], labels_gdf,
                           source=covariates_source)
    labs = labels_gdf.loc[at.keep].reset_index(drop=True)
    lc = at.values[name].to_numpy(dtype=np.float64)
    sources = evidence_sources(labs)
    surf = label_surfaces(sources, lc, debris)
    y = labs[label_col].astype(float).to_numpy()
    need = max(min_per_class, folds)
    ground = surf == "ground"
    insitu = ground  # every ground label is in situ (rock glaciers speak for debris)
    per_class = {int(c): int(np.sum(lc[ground] == c)) for c in sorted(classes)
                 if np.sum(lc[ground] == c)}
    n_pos_g, n_neg_g = int(np.sum(y[ground] == 1)), int(np.sum(y[ground] == 0))
    n_pos_d, n_neg_d = int(np.sum(y[~ground] == 1)), int(np.sum(y[~ground] == 0))
    warnings: list[str] = []
    reasons = []
    if int(insitu.sum()) < SURFACE_MIN_INSITU:
        reasons.append(f"{int(insitu.sum())} in-situ labels on other ground (fewer than "
                       f"{SURFACE_MIN_INSITU})")
    if min(n_pos_g, n_neg_g) < need:
        reasons.append(f"{n_pos_g} permafrost / {n_neg_g} no-permafrost in-situ labels on "
                       f"other ground (training needs {need} of each)")
    if min(n_pos_d, n_neg_d) < need:
        reasons.append(f"{n_pos_d} permafrost / {n_neg_d} no-permafrost labels on debris "
                       f"(training needs {need} of each)")
    not_ground = sorted(c for c, v in classes.items() if NOT_GROUND_PATTERN.search(v))
    counts = {"debris": {"rock_glacier": int(np.sum((surf == "debris")
                                                    & (sources == "rock_glacier"))),
                         "in_situ": int(np.sum((surf == "debris")
                                               & (sources != "rock_glacier")))},
              "ground": {"in_situ": int(insitu.sum()),
                         "by_class": {classes[c]: n for c, n in per_class.items()}}}

    def offsets(sel) -> tuple[list[int], int | None]:
        """Indicator codes (classes with enough labels, the most-labelled one left out as
        the reference) among the labels ``sel``."""
        cnt = {int(c): int(np.sum(lc[sel] == c)) for c in classes if c not in not_ground}
        ok = sorted((c for c, n in cnt.items() if n >= SURFACE_MIN_CLASS_LABELS),
                    key=lambda c: (-cnt[c], c))
        return sorted(ok[1:]), (ok[0] if ok else None)

    parts, indicators, oofs, route = {}, {}, {}, {}
    reports = {}
    if reasons:
        msg = ("surface-aware model not possible: " + "; ".join(reasons) + ". Fell back to "
               "one model on all labels with the land-cover class as offsets: rock-glacier "
               "evidence then also sets the level of fine and vegetated ground")
        warnings.append(msg)
        log.warning("%s", msg)
        mode = "pooled"
        sel = np.ones(len(y), dtype=bool)
        codes, ref = offsets(sel)
        plan = {"pooled": (sel, codes, ref)}
        for c in classes:
            if c not in not_ground:
                route[int(c)] = "pooled"
    else:
        mode = "separate"
        codes, ref = offsets(ground)
        plan = {"debris": (~ground, [], None), "ground": (ground, codes, ref)}
        for c in classes:
            if c in not_ground:
                continue
            route[int(c)] = "debris" if c in debris else "ground"
    references: dict[str, int | None] = {}
    for part, (sel, codes, ref) in plan.items():
        ds_p, ind_names = _with_indicators(covariates_ds, numeric, name, codes)
        log.info("training the %s part on %d labels", part, int(sel.sum()))
        opts = dict(common)
        few = too_few_blocks(labs.loc[sel], opts.get("block_size"), folds,
                              opts.get("group_col", "group"))
        if few is not None:  # a block size set for all labels can leave a part too few
            opts["block_size"], opts["block_size_rule"] = None, None
            msg = (f"the {part} part's labels fall into only {few} spatial blocks of the "
                   f"given {common['block_size']:,.0f} m for {folds} folds; its CV blocks "
                   "are chosen from its own labels instead (auto rule)")
            warnings.append(msg)
            log.warning("%s", msg)
        if part == "debris" and opts.get("level", LEVEL) == "auto":
            # rock-glacier fronts are the debris part's designated evidence: its level rests
            # on them (with any in-situ labels on debris), not on in-situ labels alone
            opts["level"] = "labels"
        res = train_model(labs.loc[sel], ds_p, features=[*numeric, *ind_names], **opts)
        parts[part] = res.model
        indicators[part] = codes
        references[part] = ref
        oofs[part] = (np.flatnonzero(sel), res.oof)
        reports[part] = res.report
    unseen = sorted(c for c, p in route.items()
                    if c not in indicators[p] and c != references[p]
                    and not (p == "debris"))
    if unseen:
        for p in set(route[c] for c in unseen):
            ref = references[p]
            ref_name = None if ref is None else classes.get(ref, ref)
            cl = [classes[c] for c in unseen if route[c] == p]
            msg = (f"{p} part: no or too few (< {SURFACE_MIN_CLASS_LABELS}) labels on "
                   f"{', '.join(cl)}; predicted as the reference class "
                   f"{ref_name!r} (no offset of their own)")
            warnings.append(msg)
            log.warning("%s", msg)
    model, report = _compose(parts, reports, oofs, indicators, references, route, name,
                             numeric, classes, debris, not_ground, counts, mode, warnings,
                             labs, sources, y, threshold, seed, len(labels_gdf), at.dropped)
    return TrainResult(model=model, report=report)


def too_few_blocks(labels, block_size, folds: int, group_col) -> int | None:
    """The number of CV units (blocks of ``block_size`` [m], groups kept whole) of
    ``labels`` when it is below ``folds``, else None (also when no block size is given)."""
    if block_size is None:
        return None
    mx, my = metric_xy(labels.geometry.x.to_numpy(), labels.geometry.y.to_numpy(), labels.crs)
    groups = (labels[group_col].to_numpy(dtype=object)
              if group_col and group_col in labels.columns else None)
    n = len(np.unique(merge_groups(block_ids(mx, my, float(block_size)), groups)))
    return n if n < folds else None


def _compose(parts, reports, oofs, indicators, references, route, name, numeric, classes,
             debris, not_ground, counts, mode, warnings, labs, sources, y, threshold, seed,
             n_in, dropped):
    """The composite's metadata and report from its parts' (see :func:`train_surface_model`)."""
    n = len(y)
    cal = np.full(n, np.nan)
    w = np.ones(n)
    used = np.zeros(n, dtype=bool)
    for _part, (_rows, oof) in oofs.items():
        loc = np.asarray(oof["index"], dtype=int)  # labs has a 0..n-1 index
        cal[loc] = oof["cal"]
        w[loc] = oof["w"]
        used[loc] = True
    yy, cc, ww, ss = y[used].astype(int), cal[used], w[used], sources[used]
    geom = labs.geometry[used]
    mx, my = metric_xy(geom.x.to_numpy(), geom.y.to_numpy(), labs.crs)
    per_source = skill_by_source(yy, cc, ss, sites=site_ids(mx, my, SITE_M),
                                 threshold=threshold, seed=seed)
    oof_metrics = binary_metrics(yy, cc, sample_weight=ww, threshold=threshold, curves=False)
    sp = [{**f, "part": p} for p, r in reports.items() for f in r.spatial_folds]
    rd = [{**f, "part": p} for p, r in reports.items() for f in r.random_folds]
    loso = [{**e, "part": p} for p, r in reports.items() for e in r.leave_one_source_out]
    pmeta = {p: m.metadata for p, m in parts.items()}
    skill = {}
    for p, (_rows, oof) in oofs.items():
        # the part's own out-of-fold ranking skill (uncalibrated: a calibrator that fell
        # back to a constant leaves the ranking), interval by site bootstrap
        sk = skill_by_source(oof["y"], oof["raw"], np.full(len(oof["y"]), p, dtype=object),
                             sites=site_ids(oof["x"], oof["y_m"], SITE_M),
                             threshold=threshold, seed=seed)[p]
        skill[p] = sk
        ci = (sk.get("ci") or {}).get("auc") or {}
        if sk.get("auc") is not None and ci.get("low") is not None and ci["low"] <= 0.5:
            prev = pmeta[p].get("calibration", {}).get("label_prevalence")
            msg = (f"the {p} part's out-of-fold AUC {sk['auc']:.2f} [{ci['low']:.2f}, "
                   f"{ci['high']:.2f}] holds 0.5 (chance): its covariates barely rank its "
                   f"{len(oof['y'])} labels, so its PZI rests mostly on their prevalence"
                   + (f" ({prev:.3f})" if isinstance(prev, float) else "") + (" and the class offsets" if indicators.get(p) else ""))
            warnings.append(msg)
            log.warning("%s", msg)
    level = {}
    for p in parts:
        c = counts.get(p, {})
        if p == "debris":
            rests = (f"{c['rock_glacier']} rock-glacier front labels and {c['in_situ']} "
                     "in-situ labels on debris")
        elif p == "ground":
            rests = f"{c['in_situ']} in-situ labels on other ground"
        else:
            rests = f"all {int(used.sum())} labels (pooled fallback)"
        level[p] = {
            "rests_on": rests,
            "calibration": pmeta[p].get("calibration", {}).get("method"),
            "label_prevalence": pmeta[p].get("calibration", {}).get("label_prevalence"),
            "spatial_cv": reports[p].spatial_summary,
            "oof_skill": skill[p],
            "block_size_m": reports[p].block_size_m,
            "n_labels": reports[p].n_labels_used,
            "offsets": {classes[c]: indicator_name(name, c) for c in indicators[p]},
            "reference_class": classes.get(references[p]) if references[p] is not None
            else None,
            "pzi_meaning": pmeta[p].get("pzi_meaning"),
            # the part's level rule (permafrost.level): the debris part's rests on its
            # labels (rock-glacier fronts), the ground part's on its in-situ labels
            "level": pmeta[p].get("calibration", {}).get("level")}
    rule = ("per cell: the debris model where the land cover is a debris class, the ground "
            "model (with its class offset) elsewhere; a class without its own offset "
            "(fewer than %d labels) is predicted as the reference class; classes named "
            "water/lake/glacier/ice get no PZI (NaN)" % SURFACE_MIN_CLASS_LABELS
            if mode == "separate" else
            "pooled fallback: one model on all labels with the land-cover class offsets; "
            "classes named water/lake/glacier/ice get no PZI (NaN)")
    surface_meta = {
        "method": "Boeckli et al. (2012): separate debris and ground models, class offsets",
        "mode": mode, "covariate": name,
        "classes": {str(k): v for k, v in sorted(classes.items())},
        "debris_classes": debris, "not_ground_classes": not_ground,
        "label_rule": "rock-glacier fronts speak for coarse debris whatever the land-cover "
                      "class at their cell; in-situ labels (borehole, gtnp) for the class "
                      "of their cell",
        "labels": counts, "parts": level, "prediction_rule": rule, "warnings": warnings}
    first = next(iter(parts.values())).metadata
    ranges: dict[str, list[float]] = {}
    for m in pmeta.values():
        for f, (lo, hi) in m.get("training", {}).get("ranges", {}).items():
            if f in numeric:
                a, b = ranges.get(f, [lo, hi])
                ranges[f] = [min(a, lo), max(b, hi)]
    codes = sorted(route)
    ranges[name] = [float(min(codes)), float(max(codes))] if codes else [np.nan, np.nan]
    cv = {"block_size_m": None,
          "block_size_rule": "per part: " + "; ".join(
              f"{p} {r.block_size_m:,.0f} m ({r.block_size_rule})" for p, r in reports.items()),
          "folds": reports[next(iter(reports))].n_folds, "threshold": threshold,
          "spatial": {"per_fold": sp, "summary": summarise_folds(sp)},
          "random": {"per_fold": rd, "summary": summarise_folds(rd) if rd else {}},
          "oof_calibrated": oof_metrics,
          "autocorrelation": {
              "label_range_m": None, "covariate_range_m": None,
              "block_rule": "each part's own (parts)",
              "parts": {p: m.get("cv", {}).get("autocorrelation") for p, m in pmeta.items()}},
          "per_source": {"scores": per_source,
                         "rule": "out-of-fold calibrated predictions of each part (its own "
                                 "spatial CV), scored per evidence source over all parts; "
                                 f"percentile bootstrap intervals by site ({SITE_M:.0f} m)"},
          "leave_one_source_out": {
              "runs": loso,
              "rule": "within each part: each source predicted by that part's estimator "
                      "trained on the part's other sources (the parts themselves never "
                      "predict the other surface)"},
          "parts": {p: m.get("cv") for p, m in pmeta.items()}}
    metadata = {
        "model_kind": first.get("model_kind"), "device": first.get("device"),
        "seed": seed, "hyperparameters": first.get("hyperparameters"),
        "grid": first.get("grid"),
        "training": {"n_labels_in": n_in, "n_labels_used": int(used.sum()),
                     "dropped": {k: int(v) for k, v in dropped.items()},
                     "n_positive": int(yy.sum()), "n_negative": int(len(yy) - yy.sum()),
                     "ranges": ranges, "label_column": first["training"].get("label_column")},
        "cv": cv,
        "pzi_meaning": "calibrated probability of permafrost per surface: " + "; ".join(
            f"{p}: {v['pzi_meaning']}" for p, v in level.items()),
        "calibration": {"method": first.get("calibration", {}).get("method"),
                        "fitted_on": "each part on its own spatial-CV out-of-fold predictions"},
        "importance": {**_merged_importance(reports),
                       "parts": {p: m.get("importance") for p, m in pmeta.items()}},
        "dependence": first.get("dependence"),
        "fold_models": "each part's spatial-CV fold models in PART/folds/",
        "versions": first.get("versions"),
        "surface": surface_meta,
        "warnings": list(warnings)}
    model = SurfaceModel(parts=parts, surface=name, numeric=numeric,
                         indicators={p: indicators[p] for p in parts}, route=route,
                         metadata=metadata)
    r0 = next(iter(reports.values()))
    report = TrainReport(
        model=r0.model, device=r0.device, device_reason=r0.device_reason,
        n_labels_in=n_in, n_labels_used=int(used.sum()),
        n_positive=int(yy.sum()), n_negative=int(len(yy) - yy.sum()),
        dropped={k: sum(d.get(k, 0) for d in (dropped, *(r.dropped for r in reports.values())))
                 for k in sorted({*dropped, *(k for r in reports.values() for k in r.dropped)})},
        block_size_m=max(r.block_size_m for r in reports.values()),
        block_size_rule=cv["block_size_rule"], n_folds=r0.n_folds,
        spatial_folds=sp, spatial_summary=cv["spatial"]["summary"],
        random_folds=rd, random_summary=cv["random"]["summary"],
        oof_metrics=oof_metrics, oof_metrics_raw={}, reliability={}, reliability_raw={},
        importance=_merged_importance(reports), calibration=r0.calibration,
        threshold=threshold,
        seconds={p: r.seconds.get("total") for p, r in reports.items()},
        autocorrelation=cv["autocorrelation"], per_source=per_source,
        leave_one_source_out=loso, surface=surface_meta)
    return model, report


def _merged_importance(reports) -> dict:
    """Mean |SHAP| of each part, keyed ``part:feature`` (for the CLI's one line)."""
    out: dict = {"mean_abs_shap": {}}
    for p, r in reports.items():
        for f, v in (r.importance.get("mean_abs_shap") or {}).items():
            out["mean_abs_shap"][f"{p}:{f}"] = v
    return out
