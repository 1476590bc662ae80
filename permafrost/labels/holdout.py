"""Spatial hold-out: whole blocks of label points held out for validation, and their size."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from permafrost.cv import block_boxes, block_index, default_block_size, metric_crs, metric_xy
from permafrost.defaults import SITE_M
from permafrost.errors import CRSError, DataError
from permafrost.labels.fusion import LabelSet

log = logging.getLogger(__package__)  # "permafrost.labels", as before the split


@dataclass
class HoldOut:
    """The result of :func:`holdout_split`.

    Attributes
    ----------
    train : numpy.ndarray of bool
        Over the label points: kept for training (outside every held-out block, in no
        group that reaches into one, and farther than ``site_m`` from every held-out
        candidate).
    holdout : numpy.ndarray of bool
        Over the candidates: held out for validation (inside a held-out block).
    inside : numpy.ndarray of bool
        Over the label points: inside a held-out block.
    block_m : float
        Block side [m].
    blocks : geopandas.GeoDataFrame
        The held-out blocks as squares (``ix``, ``iy``) in the metric CRS of the split.
    n_candidate_blocks : int
        Blocks holding at least one candidate with a known class.
    note : str
        Empty, or why the held-out set is not what was asked (one class only).
    """

    train: np.ndarray
    holdout: np.ndarray
    inside: np.ndarray
    block_m: float
    blocks: gpd.GeoDataFrame
    n_candidate_blocks: int
    note: str = ""


def _class_of(frame: pd.DataFrame) -> np.ndarray | None:
    for col in ("presence", "label"):
        if col in frame.columns:
            return pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
    return None


def holdout_split(
    points: gpd.GeoDataFrame,
    *,
    fraction: float,
    block_m: float,
    seed: int = 0,
    candidates: gpd.GeoDataFrame | None = None,
    group_col: str | None = "group",
    site_m: float = SITE_M,
    draws: int = 200,
) -> HoldOut:
    """Hold out whole spatial blocks: their candidates validate, none of their labels train.

    The label points (every source) and the validation candidates (e.g. the rows of a
    borehole presence table; default: the label points) are put in one local azimuthal
    equidistant frame (:func:`permafrost.cv.metric_crs` of their longitudes and latitudes)
    and binned into square blocks of side ``block_m`` by
    :func:`permafrost.cv.block_index`, the blocking rule of the spatial CV.  Whole blocks
    holding candidates are drawn at random (seeded) until at least ``fraction`` of the
    candidates with a known class is held out; of ``draws`` such draws the one whose
    held-out class mix is closest to the whole set's (and has both classes) is kept.

    Then no training label may sit where it would leak into the held-out set (a held-out
    point next to a training point measures interpolation, not skill: Roberts et al.
    2017): a label point is dropped from training when it lies inside a held-out block,
    when its group (e.g. the points of one rock glacier) reaches into one, or when it lies
    within ``site_m`` of a held-out candidate (the rest of a borehole site cut by a block
    edge).  ``block_m`` should be at least the spatial-CV block size, itself the label
    variogram's range (:func:`permafrost.cv.default_block_size`), so that held-out points
    are as independent of the training points as the CV folds are of each other.

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        Label points with a CRS (:func:`build_labels`), all sources.
    fraction : float
        Share of candidates to hold out [-], in (0, 1).
    block_m : float
        Block side [m].
    seed : int
        Random seed.
    candidates : geopandas.GeoDataFrame, optional
        Points to validate on, with a CRS and a ``presence`` (or ``label``) column of 1/0
        (unknown values are allowed and never count); default ``points``.
    group_col : str, optional
        Group column of ``points``; a group reaching into a held-out block leaves training
        whole.
    site_m : float
        Training labels closer than this to a held-out candidate are dropped [m].
    draws : int
        Number of random block draws compared [-].

    Returns
    -------
    HoldOut

    Raises
    ------
    DataError
        Bad fraction or block size, no candidate with a known class, or a hold-out that
        would take every block holding candidates.

    References
    ----------
    Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal,
    spatial, hierarchical, or phylogenetic structure. Ecography 40, 913-929,
    doi:10.1111/ecog.02881.
    """
    if not 0 < fraction < 1:
        raise DataError(f"hold-out fraction must be in (0, 1), got {fraction}",
                        field="holdout_fraction", fix="e.g. 0.25")
    if not (np.isfinite(block_m) and block_m > 0):
        raise DataError(f"hold-out block size must be positive, got {block_m}",
                        field="holdout_block_m", fix="give a size in metres or leave it out")
    cand = points if candidates is None else candidates
    for what, frame in (("label points", points), ("hold-out candidates", cand)):
        if frame.crs is None:
            raise CRSError(f"{what} have no CRS", field="geometry", fix="assign a CRS")
    cls = _class_of(cand)
    if cls is None:
        raise DataError("hold-out candidates have no presence or label column",
                        field="presence", fix="give 1/0 presence values")
    known = np.isin(cls, (0.0, 1.0))
    if not known.any():
        raise DataError("no hold-out candidate has a known presence", field="presence",
                        fix="fill in presence (1/0) or give inputs.validation_boreholes")
    # one metric frame and one block grid for labels and candidates
    ll_p = points.geometry.to_crs(4326)
    ll_c = cand.geometry.to_crs(4326)
    lon = np.r_[ll_p.x.to_numpy(), ll_c.x.to_numpy()]
    lat = np.r_[ll_p.y.to_numpy(), ll_c.y.to_numpy()]
    frame = metric_crs(lon, lat, 4326)
    mx, my = metric_xy(lon, lat, 4326)
    mx, my = np.asarray(mx), np.asarray(my)
    ix, iy = block_index(mx, my, block_m)
    key = ix * 1_000_003 + iy
    n_p = len(points)
    kp, kc = key[:n_p], key[n_p:]
    cand_blocks = np.unique(kc[known])
    if len(cand_blocks) < 2:
        raise DataError(f"all {int(known.sum())} hold-out candidates lie in one block of "
                        f"{block_m:.0f} m: holding it out leaves nothing to compare with",
                        field="holdout_block_m",
                        fix="give inputs.validation_boreholes, or set validate.holdout_fraction "
                            "= 0")
    y_known = cls[known]
    share = float(np.mean(y_known == 1))
    need = int(math.ceil(fraction * int(known.sum())))
    rng = np.random.default_rng(seed)
    best: list = []
    best_score = np.inf
    for _ in range(max(1, int(draws))):  # draws of whole blocks; keep the closest class mix
        chosen: list = []
        held_known = 0
        for b in rng.permutation(cand_blocks):
            if held_known >= need:
                break
            chosen.append(b)
            held_known += int((kc[known] == b).sum())
        h = cls[known & np.isin(kc, chosen)]
        score = abs(float(np.mean(h == 1)) - share) + (0.0 if len(np.unique(h)) == 2 else 1.0)
        if score < best_score:
            best, best_score = sorted(chosen), score
    if len(best) == len(cand_blocks):
        raise DataError(f"holding out {fraction:.0%} of the candidates takes all "
                        f"{len(cand_blocks)} blocks of {block_m:.0f} m that hold them",
                        field="holdout_fraction",
                        fix="lower validate.holdout_fraction, or give "
                            "inputs.validation_boreholes")
    held = np.array(best)
    holdout = np.isin(kc, held)
    inside = np.isin(kp, held)
    drop = inside.copy()
    if group_col and group_col in points.columns and inside.any():
        g = points[group_col].astype(object)
        valid = (g.notna() & (g.astype(str) != "")).to_numpy()
        reach = set(g[inside & valid].astype(str))
        drop |= valid & g.astype(str).isin(reach).to_numpy()
    if site_m > 0 and holdout.any():
        tree = cKDTree(np.column_stack([mx[n_p:][holdout], my[n_p:][holdout]]))
        d, _ = tree.query(np.column_stack([mx[:n_p], my[:n_p]]), k=1)
        drop |= d < site_m
    hy = cls[holdout & known]
    note = ""
    if len(np.unique(hy)) < 2:
        note = (f"the held-out set has one class only ({int((hy == 1).sum())} permafrost, "
                f"{int((hy == 0).sum())} none): whole blocks of {block_m:.0f} m allow no "
                "other draw; AUC, balanced accuracy and kappa are undefined")
        log.warning("hold-out: %s", note)
    bx, by = held // 1_000_003, held % 1_000_003
    blocks = gpd.GeoDataFrame({"ix": bx.astype(np.int64), "iy": by.astype(np.int64),
                               "block_m": float(block_m)},
                              geometry=block_boxes(mx, my, block_m, bx, by), crs=frame)
    return HoldOut(train=~drop, holdout=holdout, inside=inside, block_m=float(block_m),
                   blocks=blocks, n_candidate_blocks=int(len(cand_blocks)), note=note)


def apply_holdout(labels: LabelSet, split: HoldOut) -> LabelSet:
    """The training labels of a hold-out: points left out of training, counted by source.

    Parameters
    ----------
    labels : LabelSet
        All labels (:func:`build_labels`), the ``points`` that :func:`holdout_split` split.
    split : HoldOut
        The split.

    Returns
    -------
    LabelSet
        ``points`` kept for training; ``dropped`` gains one row per point left out (stage
        ``holdout``); ``summary`` gains ``held out: <source>`` rows (rock glaciers,
        boreholes from tables, boreholes from temperature records) and the points kept.
    """
    pts = labels.points
    if len(split.train) != len(pts):
        raise DataError(f"the split covers {len(split.train)} points, the labels "
                        f"{len(pts)}", field="holdout", fix="split the same labels")
    out = pts[~split.train]
    evidence = (out["evidence"].astype(str) if "evidence" in out.columns
                else pd.Series("", index=out.index))
    kind = np.where(out["source"].astype(str) != "borehole", out["source"].astype(str),
                    np.where(evidence.str.startswith("temperature"),
                             "borehole (temperature record)", "borehole (table)"))
    reason = np.where(split.inside[~split.train], "inside a held-out block",
                      "group or site reaching into a held-out block")
    dropped = pd.DataFrame({"source": out["source"].astype(str).to_numpy(),
                            "source_id": out["source_id"].astype(str).to_numpy(),
                            "reason": reason, "stage": "holdout"})
    kept = pts[split.train].reset_index(drop=True)
    rows = []
    for k in ("rock_glacier", "borehole (table)", "borehole (temperature record)"):
        rows.append((f"held out: {k}", int((kind == k).sum()),
                     f"left out of training: in or touching one of {len(split.blocks)} "
                     f"held-out blocks of {split.block_m:.0f} m"))
    rows += [("training points", len(kept), "points kept after the hold-out"),
             ("training points: label 1", int((kept["label"] == 1).sum()), "permafrost"),
             ("training points: label 0", int((kept["label"] == 0).sum()), "no permafrost")]
    if split.note:
        rows.append(("hold-out warning", 0, split.note))
    summary = pd.concat([labels.summary, pd.DataFrame(rows, columns=["item", "count", "note"])],
                        ignore_index=True)
    all_dropped = pd.concat([d for d in (labels.dropped, dropped) if len(d)], ignore_index=True) \
        if len(labels.dropped) or len(dropped) else labels.dropped
    return LabelSet(points=kept, summary=summary, dropped=all_dropped,
                    conflicts=labels.conflicts, verdicts=labels.verdicts)


def holdout_block_size(points: gpd.GeoDataFrame, *, cv_block_m: float | None = None,
                       holdout_block_m: float | None = None,
                       seed: int = 0,
                       covariate_range_m: float | None = None) -> tuple[float, float, str]:
    """Side of the hold-out blocks: the spatial-CV block size, or a larger one given.

    The CV block size is the one :func:`permafrost.models.train_model` would use: the
    value given, else :func:`permafrost.cv.default_block_size` on all label points (the
    larger of the label variogram's range and ``covariate_range_m``, the covariates' range
    of autocorrelation from :func:`permafrost.cv.covariate_ranges`).  Held-out blocks
    smaller than that would sit
    within the autocorrelation range of the training points around them and make the
    validation optimistic (Roberts et al. 2017), so a smaller ``holdout_block_m`` is an
    error.

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        All label points (before any hold-out), with a CRS and a 0/1 ``label``.
    cv_block_m : float, optional
        Spatial-CV block side given by the user [m].
    holdout_block_m : float, optional
        Hold-out block side given by the user [m]; default: the CV block side.
    seed : int
        Seed of the variogram subsample.
    covariate_range_m : float, optional
        Median range of spatial autocorrelation of the covariates [m].

    Returns
    -------
    (float, float, str)
        Hold-out block side [m], CV block side [m], the rule that chose the CV block side.

    References
    ----------
    Roberts, D. R. et al. (2017). Ecography 40, 913-929.
    """
    if cv_block_m is not None:
        cv_m, rule = float(cv_block_m), "given (train.block_size_m)"
    else:
        mx, my = metric_xy(points.geometry.x.to_numpy(), points.geometry.y.to_numpy(),
                           points.crs)
        cv_m, rule = default_block_size(mx, my, points["label"].to_numpy(), seed=seed,
                                        covariate_range_m=covariate_range_m)
    if holdout_block_m is None:
        return float(cv_m), float(cv_m), rule
    if holdout_block_m < cv_m:
        raise DataError(f"hold-out blocks of {holdout_block_m:.0f} m are smaller than the "
                        f"spatial-CV blocks of {cv_m:.0f} m ({rule})",
                        field="validate.holdout_block_m",
                        fix=f"leave it out (it follows the CV block size) or give at least "
                            f"{math.ceil(cv_m)}")
    return float(holdout_block_m), float(cv_m), rule

