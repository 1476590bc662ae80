"""Fuse rock glacier inventories and borehole evidence into weighted, labelled training points.

Rules (see ``docs/labels.md`` for the reasoning and references):

* Rock glaciers: RGIK activity ``active`` / ``transitional`` (= ``intact``) -> 1 (permafrost),
  ``relict`` -> 0; ``uncertain`` -> left out and counted.  Unknown values are an error naming
  them and their rows.
* Sampling: ``front`` (default; the lowest DEM cell inside the outline, which marks the lower
  limit of permafrost, Boeckli et al. 2012), ``centroid``, or ``interior`` points at a spacing.
  Every point carries ``group`` = its rock glacier id and a weight; the weights of one rock
  glacier sum to the rock-glacier source weight, so big outlines do not dominate.
* Boreholes: presence tables (1/0 or derived from MAGT <= 0 °C when presence is missing) and
  temperature records judged by :func:`permafrost.ground_thermal.assess_borehole`
  (insufficient records are left out with their reason).
* Fusion: one label per cell of a reference grid; in a cell, boreholes outrank rock
  glaciers; inside one source, the weighted majority wins (a tie drops the cell); every
  conflict is reported.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.features
import shapely
import xarray as xr
from pyproj import CRS, Transformer
from rasterio.transform import Affine
from rasterio.windows import Window, from_bounds
from shapely.geometry import Point

from permafrost.defaults import BOREHOLE_WEIGHT, ROCK_GLACIER_WEIGHT
from permafrost.errors import CRSError, DataError, format_message

__all__ = [
    "ACTIVITY_LABELS",
    "SAMPLING_STRATEGIES",
    "LabelSet",
    "rock_glacier_labels",
    "sample_rock_glaciers",
    "borehole_points",
    "temperature_borehole_points",
    "fuse_labels",
    "build_labels",
    "combine_activity",
    "holdout_split",
    "apply_holdout",
    "holdout_block_size",
    "HoldOut",
]

log = logging.getLogger(__name__)

#: Activity class (lower case) -> label (None = left out).  ``inactive`` (intact, Barsch 1996)
#: and ``fossil`` (= relict) are accepted as older synonyms.
ACTIVITY_LABELS: dict[str, int | None] = {
    "active": 1, "transitional": 1, "intact": 1, "inactive": 1,
    "relict": 0, "fossil": 0,
    "uncertain": None,
}
SAMPLING_STRATEGIES = ("front", "centroid", "interior")
#: DEMs up to this size [bytes] are read into memory by :func:`labels_from_files`; larger ones
#: stay lazy (Dask) and only the windows around outlines are read.
IN_MEMORY_DEM_BYTES = 256 * 2**20
SOURCE_RANK = {"borehole": 0, "rock_glacier": 1}

OUTPUT_COLUMNS = ["label", "source", "source_id", "group", "weight", "activity", "magt_c",
                  "evidence", "sampling", "elevation_m", "n_merged", "conflict", "cell_row",
                  "cell_col", "dataset"]


@dataclass
class LabelSet:
    """The result of :func:`build_labels`.

    Attributes
    ----------
    points : geopandas.GeoDataFrame
        One labelled point per grid cell: ``label`` (1 permafrost, 0 none), ``source``
        (borehole / rock_glacier), ``source_id``, ``group``, ``weight``, evidence columns.
    summary : pandas.DataFrame
        ``item, count, note``: boreholes with / without permafrost, intact / relict rock
        glaciers, points kept and dropped with reasons.
    dropped : pandas.DataFrame
        Every input left out: ``source, source_id, reason, stage`` (``input``: before
        sampling, e.g. uncertain activity or an insufficient record; ``fusion``: a sampled
        point removed by the one-label-per-cell rule or outside the grid).
    conflicts : pandas.DataFrame
        Every cell where labels disagreed: ``cell_row, cell_col, kept_source, kept_id,
        kept_label, other_source, other_id, other_label, resolution``.
    verdicts : pandas.DataFrame
        One row per temperature record: the :class:`~permafrost.ground_thermal.ThermalVerdict`.
    """

    points: gpd.GeoDataFrame
    summary: pd.DataFrame
    dropped: pd.DataFrame
    conflicts: pd.DataFrame
    verdicts: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------- activity evidence
#: Inventory activity values, lower case -> the coarse class InSAR evidence is weighed against
_INTACT = ("active", "transitional", "intact", "inactive")
_RELICT = ("relict", "fossil")
_KIN_DECIDED = ("active", "transitional", "intact", "relict")


def _weigh_activity(inv: str | None, kin: str, why: str) -> tuple[str, str, str, str]:
    """(class, source, insar_change, insar_reason) of one outline; see :func:`combine_activity`."""
    if inv is None:
        if kin in _KIN_DECIDED:
            return kin, "insar", "decided", f"no inventory class; InSAR {kin}: {why}"
        return "uncertain", "none", "none", f"no inventory class and InSAR undecided: {why}"
    if inv in _RELICT and kin in ("active", "transitional", "intact"):
        return kin, "insar", "upgraded", f"inventory {inv} upgraded to {kin}: {why}"
    if inv in _INTACT and inv != "active" and kin == "active":
        return "active", "insar", "upgraded", f"inventory {inv} upgraded to active: {why}"
    # intact inventory classes are never downgraded; unknown values go on unchanged (and are
    # refused, with their rows, by rock_glacier_labels)
    note = (" (InSAR does not downgrade an intact rock glacier)"
            if inv in _INTACT and kin != inv else "")
    return inv, "inventory", "none", f"inventory {inv} kept{note} (InSAR {kin}: {why})"


def combine_activity(
    outlines: gpd.GeoDataFrame,
    *,
    inventory_column: str | None = "activity",
    kinematic_column: str = "kin_activity",
    out_column: str = "activity_evidence",
) -> gpd.GeoDataFrame:
    """Weigh InSAR activity evidence against an inventory's own activity, outline by outline.

    InSAR is evidence, not a verdict (RGIK 2023: the kinematic attribute complements the
    geomorphological activity assessment; "no detectable movement" is a statement about
    the measurement -- at |C| = 0.3 a 3 mm/yr LOS noise floor is already 1 cm/yr
    downslope, the relict/transitional limit).  The kinematic activity comes from
    :func:`permafrost.kinematics.classify_activity`: ``active``, ``transitional`` and
    ``intact`` only for *significant* movement of the moving part (``v - k u`` above the
    limit), ``relict`` only when movement is excluded (``v + k u`` below 1 cm/yr),
    ``uncertain`` otherwise.  The rules, by the inventory's class:

    * **intact** (active, transitional, intact, inactive): InSAR confirms or upgrades --
      ``active`` evidence upgrades a transitional/intact one to active; nothing
      downgrades it (never to relict, and an active one is not made transitional: fast
      creep decorrelates and its InSAR velocity is biased low).
    * **relict** (relict, fossil): upgraded to the InSAR class when InSAR shows
      significant movement (active, transitional or intact); kept otherwise.
    * **no class** (empty or ``uncertain``): the InSAR class when it decided (the same
      significance rule both ways), else ``uncertain``.

    Parameters
    ----------
    outlines : geopandas.GeoDataFrame
        The output of ``permafrost kinematics`` (every input column kept).
    inventory_column : str or None
        The inventory's activity column (case-insensitive; ``None``: no inventory, InSAR
        decides alone where it can).
    kinematic_column : str
        The kinematic activity column [-].
    out_column : str
        Name of the combined column [-].

    Returns
    -------
    geopandas.GeoDataFrame
        A copy with ``out_column``, ``activity_source`` (``inventory``, ``insar`` or
        ``none``: where the class came from), ``insar_change`` (``none``: the inventory's
        class kept, ``upgraded``: InSAR raised it, ``decided``: InSAR classified an
        outline without an inventory class) and ``insar_reason`` (a sentence: what InSAR
        measured and why it changed the class or not; from ``kin_reason``).

    References
    ----------
    RGIK (2023). Guidelines for inventorying rock glaciers: baseline and practical
    concepts (version 1.0), doi:10.51363/unifr.srr.2023.002, and InSAR-based kinematic
    attribute (version 4.0); Bertone, A. et al. (2022). Incorporating InSAR kinematics
    into rock glacier inventories: insights from 11 regions worldwide. The Cryosphere
    16, 2769-2792.
    """
    if kinematic_column not in outlines.columns:
        raise DataError("no kinematic activity column", path=outlines.attrs.get("source"),
                        field=kinematic_column, fix="give the output of `permafrost kinematics`")
    out = outlines.copy()
    kin = out[kinematic_column].astype("string").str.strip().str.lower().fillna("uncertain")
    why = (out["kin_reason"].astype("string").fillna("") if "kin_reason" in out.columns
           else pd.Series("", index=out.index, dtype="string"))
    inv = pd.Series(pd.NA, index=out.index, dtype="string")
    if inventory_column is not None:
        lower = {str(c).lower(): c for c in out.columns}
        col = lower.get(inventory_column.lower())
        if col is not None and col != kinematic_column:
            inv = out[col].astype("string").str.strip().str.lower()
    rows = [_weigh_activity(None if i is pd.NA or i in ("", "uncertain") else i, k,
                            str(w) if w else "no InSAR estimate")
             for k, i, w in zip(kin.tolist(), inv.tolist(), why.tolist())]
    combined, source, change, reason = (list(x) for x in zip(*rows)) if rows else ([],) * 4
    out[out_column] = pd.Series(combined, index=out.index, dtype=object)
    out["activity_source"] = pd.Series(source, index=out.index, dtype=object)
    out["insar_change"] = pd.Series(change, index=out.index, dtype=object)
    out["insar_reason"] = pd.Series(reason, index=out.index, dtype=object)
    return out


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
    site_m: float = 500.0,
    draws: int = 200,
) -> HoldOut:
    """Hold out whole spatial blocks: their candidates validate, none of their labels train.

    The label points (every source) and the validation candidates (e.g. the rows of a
    borehole presence table; default: the label points) are put in one local azimuthal
    equidistant frame and binned into square blocks of side ``block_m`` by
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
    from scipy.spatial import cKDTree

    from permafrost.cv import block_index, metric_xy

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
    lon0, lat0 = float(np.mean(lon)), float(np.mean(lat))
    mx, my = metric_xy(lon, lat, 4326)
    mx, my = np.asarray(mx), np.asarray(my)
    ix, iy = block_index(mx, my, block_m)
    x0, y0 = float(np.min(mx)), float(np.min(my))
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
    best, best_score = None, np.inf
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
    aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m")
    bx, by = held // 1_000_003, held % 1_000_003
    squares = [shapely.box(x0 + i * block_m, y0 + j * block_m, x0 + (i + 1) * block_m,
                           y0 + (j + 1) * block_m) for i, j in zip(bx, by, strict=True)]
    blocks = gpd.GeoDataFrame({"ix": bx.astype(np.int64), "iy": by.astype(np.int64),
                               "block_m": float(block_m)}, geometry=squares, crs=aeqd)
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
                       seed: int = 0) -> tuple[float, float, str]:
    """Side of the hold-out blocks: the spatial-CV block size, or a larger one given.

    The CV block size is the one :func:`permafrost.models.train_model` would use: the
    value given, else :func:`permafrost.cv.default_block_size` on all label points (the
    practical range of the label variogram).  Held-out blocks smaller than that would sit
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

    Returns
    -------
    (float, float, str)
        Hold-out block side [m], CV block side [m], the rule that chose the CV block side.

    References
    ----------
    Roberts, D. R. et al. (2017). Ecography 40, 913-929.
    """
    from permafrost.cv import default_block_size, metric_xy

    if cv_block_m is not None:
        cv_m, rule = float(cv_block_m), "given (train.block_size_m)"
    else:
        mx, my = metric_xy(points.geometry.x.to_numpy(), points.geometry.y.to_numpy(),
                           points.crs)
        cv_m, rule = default_block_size(mx, my, points["label"].to_numpy(), seed=seed)
    if holdout_block_m is None:
        return float(cv_m), float(cv_m), rule
    if holdout_block_m < cv_m:
        raise DataError(f"hold-out blocks of {holdout_block_m:.0f} m are smaller than the "
                        f"spatial-CV blocks of {cv_m:.0f} m ({rule})",
                        field="validate.holdout_block_m",
                        fix=f"leave it out (it follows the CV block size) or give at least "
                            f"{math.ceil(cv_m)}")
    return float(holdout_block_m), float(cv_m), rule


# --------------------------------------------------------------------------- rock glaciers
def _find_column(columns, name: str, *, path, what: str, fix: str) -> str:
    lower = {str(c).lower(): c for c in columns}
    if name.lower() in lower:
        return lower[name.lower()]
    raise DataError(f"no {what} column {name!r} (columns: {', '.join(map(str, columns))})",
                    path=path, field=name, fix=fix)


def rock_glacier_labels(
    inventory: gpd.GeoDataFrame,
    *,
    activity_column: str = "activity",
    id_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Label rock glaciers by activity: intact (active, transitional) 1, relict 0, uncertain NA.

    Parameters
    ----------
    inventory : geopandas.GeoDataFrame
        Outlines (polygons) or points with an activity column; ``attrs["source"]`` names the
        file in messages.
    activity_column : str
        Activity column (case-insensitive match of the name and of the values).
    id_column : str, optional
        Id column (default: ``rg_id``, ``id``, ``pk``, ``name``, else the row number).

    Returns
    -------
    geopandas.GeoDataFrame
        ``rg_id`` (str), ``activity`` (normalised lower case), ``label`` (Int8, <NA> for
        uncertain), ``row`` and the geometry.

    Raises
    ------
    DataError
        Missing column, unknown activity values (named with their rows), duplicate ids.
        (Empty geometries are dropped and reported by :func:`sample_rock_glaciers`.)

    References
    ----------
    RGIK (2023). Guidelines for inventorying rock glaciers: baseline and practical concepts,
    v1.0. IPA Action Group Rock glacier inventories and kinematics (activity classes; intact =
    active + transitional).
    """
    path = inventory.attrs.get("source")
    col = _find_column(inventory.columns, activity_column, path=path, what="activity",
                       fix="pass the activity column name (--activity-column)")
    if id_column is not None:
        idc = _find_column(inventory.columns, id_column, path=path, what="id",
                           fix="pass the id column name")
        ids = inventory[idc].astype(str).str.strip()
    else:
        lower = {str(c).lower(): c for c in inventory.columns}
        idc = next((lower[c] for c in ("rg_id", "id", "pk", "name") if c in lower), None)
        ids = (inventory[idc].astype(str).str.strip() if idc is not None
               else pd.Series([str(i) for i in range(len(inventory))], index=inventory.index))
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        raise DataError(f"duplicate rock glacier ids {sorted(set(dup))[:8]} in rows "
                        f"{_rows(_positions(inventory.index, dup.index))}", path=path,
                        field=idc or "id", fix="make the ids unique")
    raw = inventory[col]
    norm = raw.astype(str).str.strip().str.lower()
    known = norm.isin(list(ACTIVITY_LABELS))
    if not known.all():
        bad = {}
        for pos, (v, ok) in enumerate(zip(raw, known)):
            if not ok:
                bad.setdefault(str(v), []).append(pos)
        shown = "; ".join(f"{k!r} in rows {_rows(v)}" for k, v in bad.items())
        raise DataError(f"unknown activity values: {shown}", path=path, field=col,
                        fix="use active, transitional, relict, uncertain (or intact/relict)")
    geom = inventory.geometry
    labels = pd.array([ACTIVITY_LABELS[v] if ACTIVITY_LABELS[v] is not None else pd.NA
                       for v in norm], dtype="Int8")
    out = gpd.GeoDataFrame({"rg_id": ids.to_numpy(), "activity": norm.to_numpy(),
                            "label": labels, "row": np.arange(len(inventory))},
                           geometry=geom.to_numpy(), crs=inventory.crs)
    out.attrs["source"] = path
    return out


def _positions(index, sub_index) -> list[int]:
    pos = pd.Series(np.arange(len(index)), index=index)
    return sorted(set(int(p) for p in np.atleast_1d(pos.loc[sub_index].to_numpy())))


def _rows(idx: list, limit: int = 10) -> str:
    idx = list(idx)
    head = ", ".join(str(i) for i in idx[:limit])
    return head + (f", ... ({len(idx)} rows)" if len(idx) > limit else "")


def _metric_crs(gdf: gpd.GeoDataFrame) -> CRS:
    if gdf.crs is not None and not gdf.crs.is_geographic:
        return gdf.crs
    return gdf.estimate_utm_crs()


def _front_point(geom, dem: xr.DataArray, dem_transform: Affine) -> tuple[Point, float] | None:
    """The centre of the lowest DEM cell inside ``geom`` (all touched when no centre inside).

    Only the window around the outline is read, so a Dask-backed DEM stays lazy.
    """
    h, w = dem.shape[-2:]
    minx, miny, maxx, maxy = geom.bounds
    win = from_bounds(minx, miny, maxx, maxy, transform=dem_transform)
    r0 = max(int(math.floor(win.row_off)) - 1, 0)
    c0 = max(int(math.floor(win.col_off)) - 1, 0)
    r1 = min(int(math.ceil(win.row_off + win.height)) + 1, h)
    c1 = min(int(math.ceil(win.col_off + win.width)) + 1, w)
    if r1 <= r0 or c1 <= c0:
        return None
    sub = np.asarray(dem.isel({dem.rio.y_dim: slice(r0, r1), dem.rio.x_dim: slice(c0, c1)})
                     .values, dtype=float).reshape(r1 - r0, c1 - c0)
    wt = rasterio.windows.transform(Window(c0, r0, c1 - c0, r1 - r0), dem_transform)
    for touched in (False, True):
        inside = rasterio.features.geometry_mask([geom], out_shape=sub.shape, transform=wt,
                                                 invert=True, all_touched=touched)
        vals = np.where(inside & np.isfinite(sub), sub, np.inf)
        if np.isfinite(vals).any():
            k = int(np.argmin(vals))  # first minimum in row-major order: deterministic
            r, c = divmod(k, sub.shape[1])
            x, y = wt @ (c + 0.5, r + 0.5)
            return Point(x, y), float(sub[r, c])
    return None


def _interior_points(geom, spacing: float) -> list[Point]:
    """Points of a square lattice (origin at multiples of ``spacing``) that fall inside ``geom``."""
    minx, miny, maxx, maxy = geom.bounds
    xs = np.arange(math.floor(minx / spacing), math.ceil(maxx / spacing) + 1) * spacing
    ys = np.arange(math.ceil(maxy / spacing), math.floor(miny / spacing) - 1, -1) * spacing
    if len(xs) * len(ys) > 1_000_000:
        raise DataError(f"interior spacing {spacing:g} m gives over a million candidate points "
                        "for one outline", field="spacing", fix="use a larger --spacing")
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    inside = shapely.contains(geom, pts)
    return list(pts[inside])


def sample_rock_glaciers(
    rock_glaciers: gpd.GeoDataFrame,
    *,
    strategy: str = "front",
    dem: xr.DataArray | None = None,
    spacing_m: float = 100.0,
    weight: float = ROCK_GLACIER_WEIGHT,
    crs=None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Turn labelled rock glaciers into weighted points.

    Parameters
    ----------
    rock_glaciers : geopandas.GeoDataFrame
        Output of :func:`rock_glacier_labels` (uncertain rows are skipped and reported).
    strategy : {"front", "centroid", "interior"}
        ``front``: centre of the lowest DEM cell inside the outline (needs ``dem``);
        ``centroid``: the centroid (the representative point when the centroid falls outside
        a curved outline); ``interior``: lattice points every ``spacing_m`` inside the outline
        (the representative point for outlines smaller than the spacing).  Point
        inventories give their points for every strategy.
    dem : xarray.DataArray, optional
        Elevation [m] with a CRS (rioxarray); needed by ``front``; also gives each point's
        ``elevation_m``.
    spacing_m : float
        Lattice spacing for ``interior`` [m] (in a local UTM zone for geographic data).
    weight : float
        Total weight of one rock glacier [-], shared equally by its points.
    crs : optional
        CRS of the output points (default: the DEM's, else the inventory's).

    Returns
    -------
    points : geopandas.GeoDataFrame
        ``label, source="rock_glacier", source_id, group, weight, activity, sampling,
        elevation_m`` and geometry.
    dropped : pandas.DataFrame
        ``source, source_id, reason`` of rock glaciers left out.

    References
    ----------
    Boeckli, L., Brenning, A., Gruber, S., Noetzli, J. (2012). A statistical approach to
    modelling permafrost distribution in the European Alps or similar mountain ranges.
    The Cryosphere 6, 125-140 (rock glacier fronts as presence/absence evidence, weighting).
    Schmid, M.-O. et al. (2015). Assessment of permafrost distribution maps in the Hindu Kush
    Himalayan region using rock glaciers mapped in Google Earth. The Cryosphere 9, 2089-2099.
    """
    if strategy not in SAMPLING_STRATEGIES:
        raise DataError(f"unknown sampling strategy {strategy!r}", field="sampling",
                        fix=f"use one of {', '.join(SAMPLING_STRATEGIES)}")
    if strategy == "front" and dem is None:
        raise DataError("front sampling needs a DEM", field="dem",
                        fix="pass --dem (or --grid with elevations), or use --sampling centroid")
    if spacing_m <= 0 or not np.isfinite(spacing_m):
        raise DataError(f"spacing must be > 0 m, got {spacing_m}", field="spacing",
                        fix="give a positive spacing in metres")
    path = rock_glaciers.attrs.get("source")
    dropped = []
    empty = (rock_glaciers.geometry.isna() | rock_glaciers.geometry.is_empty).to_numpy()
    for rid in rock_glaciers.loc[rock_glaciers["label"].isna().to_numpy(), "rg_id"]:
        dropped.append(("rock_glacier", rid, "activity uncertain"))
    for rid in rock_glaciers.loc[rock_glaciers["label"].notna().to_numpy() & empty, "rg_id"]:
        dropped.append(("rock_glacier", rid, "empty geometry"))
    keep = rock_glaciers[rock_glaciers["label"].notna().to_numpy() & ~empty]
    dem_crs = None
    if dem is not None:
        dem_crs = dem.rio.crs
        if dem_crs is None:
            raise CRSError("the DEM has no CRS", field="dem", fix="give a georeferenced DEM")
    out_crs = CRS.from_user_input(crs) if crs is not None else (dem_crs or keep.crs)
    if keep.crs is None:
        raise CRSError("the inventory has no CRS", path=path, fix="assign one")
    recs = []
    if len(keep):
        if strategy == "front":
            work = keep.to_crs(dem_crs)
            tr = dem.rio.transform()
            for rid, lab, act, g in zip(work["rg_id"], work["label"], work["activity"],
                                        work.geometry):
                if g.geom_type in ("Point", "MultiPoint"):
                    pts = [(p, np.nan) for p in getattr(g, "geoms", [g])]
                else:
                    fp = _front_point(g, dem, tr)
                    if fp is None:
                        dropped.append(("rock_glacier", rid, "no DEM value inside the outline "
                                        "(outside the DEM or all nodata)"))
                        continue
                    pts = [fp]
                for p, z in pts:
                    recs.append((rid, int(lab), act, p, z, len(pts)))
            pts_crs = dem_crs
        else:
            metric = _metric_crs(keep)
            work = keep.to_crs(metric)
            for rid, lab, act, g in zip(work["rg_id"], work["label"], work["activity"],
                                        work.geometry):
                if g.geom_type in ("Point", "MultiPoint"):
                    pts = list(getattr(g, "geoms", [g]))
                elif strategy == "centroid":
                    c = g.centroid
                    pts = [c if g.contains(c) else g.representative_point()]
                else:
                    pts = _interior_points(g, spacing_m) or [g.representative_point()]
                for p in pts:
                    recs.append((rid, int(lab), act, p, np.nan, len(pts)))
            pts_crs = metric
    if not recs:
        pts = gpd.GeoDataFrame({c: [] for c in ["label", "source", "source_id", "group",
                                                "weight", "activity", "sampling", "elevation_m"]},
                               geometry=[], crs=out_crs)
        return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])
    rid, lab, act, geom, z, n = zip(*recs)
    pts = gpd.GeoDataFrame({
        "label": np.asarray(lab, dtype=np.int8),
        "source": "rock_glacier",
        "source_id": list(rid),
        "group": [f"rg:{r}" for r in rid],
        "weight": weight / np.asarray(n, dtype=float),
        "activity": list(act),
        "sampling": strategy,
        "elevation_m": np.asarray(z, dtype=float),
    }, geometry=list(geom), crs=pts_crs).to_crs(out_crs)
    if dem is not None and strategy != "front":
        pts["elevation_m"] = _sample_raster(dem, pts)
    pts["dataset"] = path or ""
    return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])


def _sample_raster(da: xr.DataArray, pts: gpd.GeoDataFrame) -> np.ndarray:
    p = pts.to_crs(da.rio.crs)
    rows, cols = rasterio.transform.rowcol(da.rio.transform(), p.geometry.x, p.geometry.y,
                                           op=math.floor)
    rows, cols = np.asarray(rows), np.asarray(cols)
    h, w = da.shape[-2:]
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    out = np.full(len(p), np.nan)
    if ok.any():  # point-wise indexing: only the needed cells are read (lazy DEMs stay lazy)
        picked = da.isel({da.rio.y_dim: xr.DataArray(rows[ok], dims="pt"),
                          da.rio.x_dim: xr.DataArray(cols[ok], dims="pt")})
        out[ok] = np.asarray(picked.values, dtype=float).reshape(-1)
    return out


# --------------------------------------------------------------------------- boreholes
def borehole_points(
    table: gpd.GeoDataFrame,
    *,
    weight: float = BOREHOLE_WEIGHT,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Boreholes from a presence table (:func:`permafrost.io.boreholes.read_presence_table`).

    Presence is taken as given; where it is missing and MAGT is given, presence = MAGT <= 0 °C
    (MAGT at depth below 0 °C means perennially frozen ground).  Rows with neither are left
    out and reported.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        ``borehole_id, presence, magt_c, year`` and point geometry.
    weight : float
        Weight of each borehole point [-].

    Returns
    -------
    points, dropped
        As :func:`sample_rock_glaciers`, with ``source="borehole"`` and ``evidence``
        ("presence" or "magt").

    References
    ----------
    van Everdingen, R. (ed.) (1998, rev. 2005). Multi-language glossary of permafrost and
    related ground-ice terms. NSIDC (permafrost definition).
    """
    path = table.attrs.get("source", "")
    pres = table["presence"].astype("Int8")
    magt = table["magt_c"].astype(float)
    from_magt = pres.isna() & magt.notna()
    label = pres.copy()
    label[from_magt] = (magt[from_magt] <= 0.0).astype("int8")
    evidence = np.where(from_magt, "magt", "presence")
    missing = label.isna()
    dropped = [("borehole", b, "no presence value and no MAGT")
               for b in table.loc[missing, "borehole_id"]]
    t = table[~missing.to_numpy()]
    pts = gpd.GeoDataFrame({
        "label": label[~missing].astype("int8").to_numpy(),
        "source": "borehole",
        "source_id": t["borehole_id"].to_numpy(),
        "group": [f"bh:{b}" for b in t["borehole_id"]],
        "weight": float(weight),
        "magt_c": magt[~missing].to_numpy(),
        "elevation_m": (t["elevation_m"].astype(float).to_numpy() if "elevation_m" in t
                        else np.nan),
        "evidence": evidence[~missing.to_numpy()],
        "year": t["year"].to_numpy() if "year" in t else np.nan,
        "dataset": path,
    }, geometry=t.geometry.to_numpy(), crs=table.crs)
    return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])


def temperature_borehole_points(
    records: list,
    *,
    weight: float = BOREHOLE_WEIGHT,
    **assess_options,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Judge temperature records and turn decided ones into borehole points.

    Parameters
    ----------
    records : list of permafrost.io.boreholes.BoreholeRecord
        Temperature records with positions (lon/lat, WGS84).
    weight : float
        Weight of each borehole point [-].
    **assess_options
        Passed to :func:`permafrost.ground_thermal.assess_borehole`.

    Returns
    -------
    points, dropped, verdicts
        ``verdicts`` has one row per record (every field of the verdict plus lon/lat).

    Raises
    ------
    DataError
        A record without a position, or duplicate borehole ids.

    References
    ----------
    See :func:`permafrost.ground_thermal.assess_borehole`.
    """
    from permafrost.ground_thermal import assess_borehole

    ids = [r.borehole_id for r in records]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise DataError(f"duplicate borehole ids among temperature records: {dup}",
                        field="borehole_id", fix="give each record once (or rename one)")
    rows, pts, dropped = [], [], []
    for r in records:
        if not (np.isfinite(r.lon) and np.isfinite(r.lat)):
            raise DataError(f"borehole {r.borehole_id!r} has no coordinates", path=r.source,
                            field="lon/lat",
                            fix="give them alongside (--permos-coords table with borehole_id,lon,lat)")
        v = assess_borehole(r.temperatures, borehole_id=r.borehole_id, **assess_options)
        d = v.as_dict()
        d.update(lon=r.lon, lat=r.lat, elevation_m=r.elevation_m, dataset=r.source)
        rows.append(d)
        if v.presence is None:
            dropped.append(("borehole", r.borehole_id, f"insufficient record: {v.reason}"))
            continue
        pts.append({"label": np.int8(v.presence), "source": "borehole",
                    "source_id": r.borehole_id, "group": f"bh:{r.borehole_id}",
                    "weight": float(weight), "magt_c": v.magt_c,
                    "evidence": f"temperature ({v.reason_code})", "elevation_m": r.elevation_m,
                    "dataset": r.source, "geometry": Point(r.lon, r.lat)})
    gdf = gpd.GeoDataFrame(pts, geometry="geometry", crs="EPSG:4326") if pts else \
        gpd.GeoDataFrame({"label": [], "source": [], "source_id": []}, geometry=[],
                         crs="EPSG:4326")
    return (gdf, pd.DataFrame(dropped, columns=["source", "source_id", "reason"]),
            pd.DataFrame(rows))


# --------------------------------------------------------------------------- checks
def _grid_lonlat_bounds(grid: xr.DataArray) -> tuple[float, float, float, float]:
    b = grid.rio.bounds()
    tr = Transformer.from_crs(grid.rio.crs, "EPSG:4326", always_xy=True)
    xs, ys = np.meshgrid(np.linspace(b[0], b[2], 5), np.linspace(b[1], b[3], 5))
    lon, lat = tr.transform(xs.ravel(), ys.ravel())
    return float(np.min(lon)), float(np.min(lat)), float(np.max(lon)), float(np.max(lat))


def _check_coordinates(pts: gpd.GeoDataFrame, grid: xr.DataArray | None, *, what: str) -> None:
    """Latitude beyond ±90 or lon/lat swapped relative to the grid's region -> DataError."""
    if len(pts) == 0 or pts.crs is None or not pts.crs.is_geographic:
        return
    x, y = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    ids = pts["source_id"].to_numpy()
    src = pts["dataset"].iloc[0] if "dataset" in pts and len(pts) else None
    bad = np.abs(y) > 90
    if bad.any():
        raise DataError(f"{what}: latitude outside ±90° for {int(bad.sum())} points "
                        f"{list(ids[bad][:5])} (lon/lat look swapped)", path=src or None,
                        field="lat", fix="check the lon/lat column order")
    if grid is None:
        return
    x0, y0, x1, y1 = _grid_lonlat_bounds(grid)
    inside = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
    swapped_inside = (y >= x0) & (y <= x1) & (x >= y0) & (x <= y1)
    sw = ~inside & swapped_inside
    if sw.any():
        raise DataError(f"{what}: {int(sw.sum())} points {list(ids[sw][:5])} fall outside the "
                        f"region (lon {x0:.3f}..{x1:.3f}, lat {y0:.3f}..{y1:.3f}) but inside it "
                        "with lon and lat swapped", path=src or None, field="lon/lat",
                        fix="swap the lon/lat columns")


# --------------------------------------------------------------------------- fusion
def fuse_labels(
    points: gpd.GeoDataFrame,
    grid: xr.DataArray,
    *,
    outside: str = "error",
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Keep one label per cell of a reference grid.

    Parameters
    ----------
    points : geopandas.GeoDataFrame
        Labelled points (``label, source, source_id, group, weight`` ...), any CRS.
    grid : xarray.DataArray
        Reference grid with a CRS (rioxarray), e.g. the DEM.
    outside : {"error", "drop"}
        Points outside the grid: raise a DataError naming them, or drop and report them.

    Returns
    -------
    fused, dropped, conflicts
        ``fused`` is in the grid's CRS with ``cell_row, cell_col, n_merged, conflict``;
        ``dropped`` lists every point left out with the reason; ``conflicts`` every
        disagreement and how it was resolved.

    Notes
    -----
    In a cell, points of the best-ranked source (borehole before rock glacier) are kept and
    the others dropped (reported as conflicts when their label differs).  Kept points of one
    source that agree merge into one: the first point (by source id) keeps its position and
    evidence, the weights add up (a rock glacier's total weight is preserved), ``source_id``
    lists all ids.  When they disagree the weighted majority wins and a tie drops the cell.
    """
    if outside not in ("error", "drop"):
        raise DataError(f"outside must be 'error' or 'drop', got {outside!r}", field="outside",
                        fix="use error or drop")
    gcrs = grid.rio.crs
    if gcrs is None:
        raise CRSError("the reference grid has no CRS", field="grid", fix="give a georeferenced raster")
    p = points.to_crs(gcrs).reset_index(drop=True)
    tr = grid.rio.transform()
    h, w = grid.shape[-2:]
    colf, rowf = (~tr) @ (p.geometry.x.to_numpy(), p.geometry.y.to_numpy())
    rows, cols = np.floor(rowf).astype(np.int64), np.floor(colf).astype(np.int64)
    ok = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    dropped = []
    if not ok.all():
        bad = p.loc[~ok]
        names = [f"{s}:{i}" for s, i in zip(bad["source"], bad["source_id"])]
        if outside == "error":
            raise DataError(f"{len(bad)} points fall outside the reference grid: "
                            f"{sorted(set(names))[:8]}", path=(bad["dataset"].iloc[0]
                                                             if "dataset" in bad else None) or None,
                            field="geometry",
                            fix="give a grid that covers them, or --outside drop to drop and count them")
        dropped += [(s, i, "outside the reference grid") for s, i in
                    zip(bad["source"], bad["source_id"])]
    p = p.loc[ok].copy()
    p["cell_row"], p["cell_col"] = rows[ok], cols[ok]
    p["_rank"] = p["source"].map(SOURCE_RANK).fillna(9).astype(int)
    p["source_id"] = p["source_id"].astype(str)
    p = p.sort_values(["cell_row", "cell_col", "_rank", "source_id"],
                      kind="mergesort").reset_index(drop=True)
    # plain arrays: one Python step per multi-point cell, single-point cells pass straight on
    cell = p["cell_row"].to_numpy(np.int64) * (w + 1) + p["cell_col"].to_numpy(np.int64)
    lab_a = p["label"].to_numpy().astype(int)
    w_a = p["weight"].to_numpy(float)
    rank_a = p["_rank"].to_numpy()
    src_a = p["source"].to_numpy(object)
    id_a = p["source_id"].to_numpy(object)
    grp_a = p["group"].to_numpy(object)
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]]) if len(p) else np.array([], int)
    ends = np.r_[starts[1:], len(p)] if len(p) else np.array([], int)
    keep_idx, overrides, conflicts = [], {}, []
    for a, b in zip(starts, ends):
        if b - a == 1:
            keep_idx.append(a)
            continue
        r, c = int(p.at[a, "cell_row"]), int(p.at[a, "cell_col"])
        idx = np.arange(a, b)
        top = idx[rank_a[idx] == rank_a[a]]  # sorted by rank: the first is the best
        low = idx[rank_a[idx] != rank_a[a]]
        w1 = float(w_a[top][lab_a[top] == 1].sum())
        w0 = float(w_a[top][lab_a[top] == 0].sum())
        if w1 > 0 and w0 > 0:
            lab = 1 if w1 > w0 else 0 if w0 > w1 else None
        else:
            lab = 1 if w1 > 0 else 0
        if lab is None:
            for k in top:
                dropped.append((src_a[k], id_a[k], "tied conflicting labels in one grid cell"))
            for k in low:
                dropped.append((src_a[k], id_a[k], "grid cell dropped for a tied conflict"))
            k0 = top[0]
            k1 = top[lab_a[top] != lab_a[k0]][0]
            conflicts.append((r, c, src_a[k0], id_a[k0], int(lab_a[k0]), src_a[k1], id_a[k1],
                              int(lab_a[k1]), "tie: cell dropped"))
            continue
        win = top[lab_a[top] == lab]
        lose = top[lab_a[top] != lab]
        first = win[0]
        gw: dict = {}
        for k in win:
            gw[grp_a[k]] = gw.get(grp_a[k], 0.0) + w_a[k]
        best_group = sorted(gw.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        kept_id = ";".join(dict.fromkeys(map(str, id_a[win])))
        overrides[first] = {"group": best_group, "weight": float(w_a[win].sum()),
                            "source_id": kept_id, "n_merged": len(win),
                            "conflict": bool(len(lose) or (lab_a[low] != lab).any())}
        keep_idx.append(first)
        for k in lose:
            dropped.append((src_a[k], id_a[k], f"outvoted in its grid cell ({src_a[k]} "
                            "labels disagree)"))
            conflicts.append((r, c, src_a[first], kept_id, lab, src_a[k], id_a[k],
                              int(lab_a[k]), "weighted majority"))
        for k in low:
            dropped.append((src_a[k], id_a[k], f"grid cell held by {src_a[first]}"))
            if lab_a[k] != lab:
                conflicts.append((r, c, src_a[first], kept_id, lab, src_a[k], id_a[k],
                                  int(lab_a[k]), f"{src_a[first]} outranks {src_a[k]}"))
    fused = p.iloc[keep_idx].copy()
    fused["n_merged"] = 1
    fused["conflict"] = False
    for k, ov in overrides.items():
        for col, val in ov.items():
            fused.at[k, col] = val
    fused = gpd.GeoDataFrame(fused, geometry=p.geometry.name, crs=gcrs)
    fused = fused.drop(columns="_rank").reset_index(drop=True)
    return (fused,
            pd.DataFrame(dropped, columns=["source", "source_id", "reason"]),
            pd.DataFrame(conflicts, columns=["cell_row", "cell_col", "kept_source", "kept_id",
                                             "kept_label", "other_source", "other_id",
                                             "other_label", "resolution"]))


# --------------------------------------------------------------------------- the whole step
def build_labels(
    *,
    inventories: list[gpd.GeoDataFrame] = (),
    borehole_tables: list[gpd.GeoDataFrame] = (),
    temperature_records: list = (),
    grid: xr.DataArray | None = None,
    dem: xr.DataArray | None = None,
    activity_column: str = "activity",
    id_column: str | None = None,
    sampling: str = "front",
    spacing_m: float = 100.0,
    rock_glacier_weight: float = ROCK_GLACIER_WEIGHT,
    borehole_weight: float = BOREHOLE_WEIGHT,
    outside: str = "error",
    assess_options: dict | None = None,
) -> LabelSet:
    """Fuse rock glacier inventories and borehole evidence into one labelled point set.

    Parameters
    ----------
    inventories : list of geopandas.GeoDataFrame
        Rock glacier inventories (outlines or points) with an activity column.
    borehole_tables : list of geopandas.GeoDataFrame
        Presence tables (:func:`permafrost.io.boreholes.read_presence_table`).
    temperature_records : list of BoreholeRecord
        GTN-P / PERMOS temperature records with positions.
    grid : xarray.DataArray, optional
        Reference grid for one-label-per-cell fusion and the region check (default: ``dem``).
    dem : xarray.DataArray, optional
        Elevation [m]; needed by front sampling.
    activity_column, id_column : str
        Inventory columns (see :func:`rock_glacier_labels`).
    sampling : {"front", "centroid", "interior"}
        Rock glacier sampling (see :func:`sample_rock_glaciers`).
    spacing_m : float
        Interior lattice spacing [m].
    rock_glacier_weight, borehole_weight : float
        Source weights [-]: total weight per rock glacier, weight per borehole.
    outside : {"error", "drop"}
        Points outside the grid (see :func:`fuse_labels`).
    assess_options : dict, optional
        Options of :func:`permafrost.ground_thermal.assess_borehole`.

    Returns
    -------
    LabelSet

    Raises
    ------
    DataError
        Bad input (see the readers and the functions above) or no labelled point left.

    References
    ----------
    Boeckli, L. et al. (2012). The Cryosphere 6, 125-140.
    Schmid, M.-O. et al. (2015). The Cryosphere 9, 2089-2099.
    van Everdingen, R. (ed.) (1998, rev. 2005). Glossary of permafrost and related ground-ice
    terms. NSIDC.
    """
    if not (len(inventories) or len(borehole_tables) or len(temperature_records)):
        raise DataError("no evidence given", field="inputs",
                        fix="give at least one inventory, presence table or temperature record")
    for name, val in (("rock_glacier_weight", rock_glacier_weight),
                      ("borehole_weight", borehole_weight)):
        if not (np.isfinite(val) and val > 0):
            raise DataError(f"{name} must be > 0, got {val}", field=name, fix="give a positive weight")
    grid = grid if grid is not None else dem
    out_crs = grid.rio.crs if grid is not None else CRS.from_epsg(4326)
    parts, dropped = [], []
    n_rg = {"intact": 0, "relict": 0, "uncertain": 0}
    seen_rg: dict[str, str] = {}
    for inv in inventories:
        rg = rock_glacier_labels(inv, activity_column=activity_column, id_column=id_column)
        src = str(inv.attrs.get("source", ""))
        again = sorted(set(rg["rg_id"]) & set(seen_rg))
        if again:
            raise DataError(f"rock glacier ids {again[:8]} also appear in "
                            f"{seen_rg[again[0]] or 'another inventory'}", path=src or None,
                            field="rg_id", fix="give each inventory once, or make ids unique "
                            "across inventories (they become the cross-validation groups)")
        seen_rg.update(dict.fromkeys(rg["rg_id"], src))
        n_rg["intact"] += int((rg["label"] == 1).sum())
        n_rg["relict"] += int((rg["label"] == 0).sum())
        n_rg["uncertain"] += int(rg["label"].isna().sum())
        if rg.crs is not None and rg.crs.is_geographic:
            c = rg.geometry.representative_point()
            chk = gpd.GeoDataFrame({"source_id": rg["rg_id"], "dataset": inv.attrs.get("source", "")},
                                   geometry=c, crs=rg.crs)
            _check_coordinates(chk, grid, what="rock glaciers")
        pts, dr = sample_rock_glaciers(rg, strategy=sampling, dem=dem, spacing_m=spacing_m,
                                       weight=rock_glacier_weight, crs=out_crs)
        parts.append(pts)
        dropped.append(dr)
    n_bh = {"table_1": 0, "table_0": 0, "temp_1": 0, "temp_0": 0, "insufficient": 0}
    for tab in borehole_tables:
        pts, dr = borehole_points(tab, weight=borehole_weight)
        _check_coordinates(pts, grid, what="boreholes")
        n_bh["table_1"] += int((pts["label"] == 1).sum())
        n_bh["table_0"] += int((pts["label"] == 0).sum())
        parts.append(pts.to_crs(out_crs))
        dropped.append(dr)
    verdicts = pd.DataFrame()
    if len(temperature_records):
        pts, dr, verdicts = temperature_borehole_points(
            list(temperature_records), weight=borehole_weight, **(assess_options or {}))
        _check_coordinates(pts, grid, what="boreholes")
        n_bh["temp_1"] += int((pts["label"] == 1).sum()) if len(pts) else 0
        n_bh["temp_0"] += int((pts["label"] == 0).sum()) if len(pts) else 0
        n_bh["insufficient"] += len(dr)
        parts.append(pts.to_crs(out_crs))
        dropped.append(dr)
    parts = [p for p in parts if len(p)]
    allpts = (pd.concat(parts, ignore_index=True) if parts else
              gpd.GeoDataFrame({"label": [], "source": [], "source_id": []}, geometry=[],
                               crs=out_crs))
    allpts = gpd.GeoDataFrame(allpts, geometry="geometry", crs=out_crs)
    # unique ids per source across files: a duplicate would double-count one object
    for src in ("borehole",):
        ids = allpts.loc[allpts["source"] == src, "source_id"]
        dup = sorted(set(ids[ids.duplicated()]))
        if dup:
            raise DataError(f"borehole ids given more than once across inputs: {dup[:8]}",
                            field="borehole_id", fix="give each borehole once")
    n_sampled = len(allpts)
    conflicts = pd.DataFrame(columns=["cell_row", "cell_col", "kept_source", "kept_id",
                                      "kept_label", "other_source", "other_id", "other_label",
                                      "resolution"])
    if grid is not None and len(allpts):
        fused, dr, conflicts = fuse_labels(allpts, grid, outside=outside)
        dropped.append(dr.assign(stage="fusion"))
    else:
        fused = allpts.copy()
        fused["n_merged"] = 1
        fused["conflict"] = False
        fused["cell_row"] = -1
        fused["cell_col"] = -1
    dropped = [d if "stage" in d else d.assign(stage="input") for d in dropped]
    dropped_df = (pd.concat([d for d in dropped if len(d)], ignore_index=True)
                  if any(len(d) for d in dropped) else
                  pd.DataFrame(columns=["source", "source_id", "reason", "stage"]))
    if len(fused) == 0:
        raise _no_labels_error(inventories, borehole_tables, temperature_records, dropped_df,
                               LabelSet(points=fused, summary=_summary(
                                   n_rg, n_bh, n_sampled, fused, dropped_df, conflicts),
                                   dropped=dropped_df, conflicts=conflicts, verdicts=verdicts))
    for col in OUTPUT_COLUMNS:
        if col not in fused:
            fused[col] = np.nan if col in ("magt_c", "elevation_m") else ""
    fused = fused[OUTPUT_COLUMNS + [fused.geometry.name]]
    fused = fused.astype({"label": "int8", "weight": float, "magt_c": float,
                          "elevation_m": float, "n_merged": int, "conflict": bool,
                          "cell_row": int, "cell_col": int})
    for col in ("source", "source_id", "group", "activity", "evidence", "sampling", "dataset"):
        fused[col] = fused[col].astype(object).where(fused[col].notna(), "").astype(str)
    if dem is not None:
        miss = ~np.isfinite(fused["elevation_m"].to_numpy())
        if miss.any():
            fused.loc[miss, "elevation_m"] = _sample_raster(dem, fused.loc[miss])
    summary = _summary(n_rg, n_bh, n_sampled, fused, dropped_df, conflicts)
    log.info("labels: %d points kept (%d permafrost, %d none), %d inputs dropped, %d conflicts",
             len(fused), int((fused["label"] == 1).sum()), int((fused["label"] == 0).sum()),
             len(dropped_df), len(conflicts))
    return LabelSet(points=fused, summary=summary, dropped=dropped_df, conflicts=conflicts,
                    verdicts=verdicts)


class NoLabelsError(DataError):
    """No labelled point is left; ``partial`` holds the summary, dropped inputs and verdicts
    so that they can still be written (they say why)."""

    def __init__(self, problem, *, partial: LabelSet, **kw) -> None:
        super().__init__(problem, **kw)
        self.partial = partial
        self.base_fix = self.fix
        #: the files the reasons were written to (by :func:`labels_from_files`)
        self.written: list = []


def _no_labels_error(inventories, borehole_tables, records, dropped: pd.DataFrame,
                     partial: LabelSet) -> NoLabelsError:
    """A message that says what was given and why each part was left out."""
    reasons = dropped["reason"].astype(str) if len(dropped) else pd.Series([], dtype=str)
    src = dropped["source"].astype(str) if len(dropped) else pd.Series([], dtype=str)
    parts, fixes = [], []
    n_temp = len(records)
    if n_temp:
        ins = reasons[(src == "borehole") & reasons.str.startswith("insufficient record")]
        why = ins.str.split(":", n=1).str[1].str.strip().str.split(r"[(;,]").str[0].str.strip()
        common = "; ".join(f"{k} ({v})" for k, v in why.value_counts().head(3).items())
        parts.append(f"{len(ins)} of {n_temp} borehole temperature records are undecidable"
                     + (f": {common}" if common else ""))
        fixes.append("see the verdicts for each record; give longer records (two or more "
                     "years of at least monthly readings at depth) or a presence table")
    if borehole_tables:
        n_tab = sum(len(t) for t in borehole_tables)
        nopres = int(reasons.str.startswith("no presence value").sum())
        if nopres:
            parts.append(f"{nopres} of {n_tab} table boreholes have neither presence nor MAGT")
            fixes.append("fill in presence (1/0) or MAGT")
    if inventories:
        unc = int(reasons.str.startswith("activity uncertain").sum())
        n_inv = sum(len(i) for i in inventories)
        if unc:
            parts.append(f"{unc} of {n_inv} rock glaciers left out as activity uncertain")
            fixes.append("give intact/relict (or RGIK) activity values")
    other = reasons[~reasons.str.startswith(("insufficient record", "no presence value",
                                             "activity uncertain"))]
    if len(other):
        counts = ", ".join(f"{k} ({v})" for k, v in other.str.split(":").str[0]
                           .value_counts().head(4).items())
        parts.append(f"other points dropped: {counts}")
        if other.str.contains("outside").any():
            fixes.append("check that the points lie on the grid")
    sources = [str(g.attrs["source"]) for g in [*inventories, *borehole_tables]
               if g.attrs.get("source")] + [str(r.source) for r in records if r.source]
    return NoLabelsError("no labelled point left: " + ("; ".join(parts) or "nothing given"),
                         path=", ".join(dict.fromkeys(sources)) or None, field="labels",
                         fix="; ".join(fixes) or "give inputs with decided labels",
                         partial=partial)


def _summary(n_rg, n_bh, n_sampled, fused, dropped, conflicts) -> pd.DataFrame:
    rows = [
        ("boreholes: permafrost", n_bh["table_1"] + n_bh["temp_1"],
         f"{n_bh['temp_1']} from temperature records"),
        ("boreholes: no permafrost", n_bh["table_0"] + n_bh["temp_0"],
         f"{n_bh['temp_0']} from temperature records"),
        ("boreholes: insufficient record", n_bh["insufficient"], "left out, reason in dropped"),
        ("rock glaciers: intact", n_rg["intact"], "active + transitional -> label 1"),
        ("rock glaciers: relict", n_rg["relict"], "label 0"),
        ("rock glaciers: uncertain", n_rg["uncertain"], "left out"),
        ("points sampled", n_sampled, "before one-label-per-cell fusion"),
    ]
    if len(dropped):
        reasons = dropped["reason"].where(~dropped["reason"].str.startswith("insufficient"),
                                          "insufficient record")
        reasons = reasons.where(~reasons.str.startswith("activity uncertain"), "activity uncertain")
        for (src, reason), n in dropped.groupby([dropped["source"], reasons]).size().items():
            rows.append((f"dropped: {src}", int(n), reason))
    rows += [
        ("merged", int((fused["n_merged"] - 1).sum()),
         "points merged into a kept point of the same cell and label (weights added)"),
        ("conflicts", len(conflicts), "cells where labels disagreed (see conflicts)"),
        ("points kept", len(fused), "one per grid cell (when a grid is given)"),
        ("points kept: label 1", int((fused["label"] == 1).sum()), "permafrost"),
        ("points kept: label 0", int((fused["label"] == 0).sum()), "no permafrost"),
    ]
    return pd.DataFrame(rows, columns=["item", "count", "note"])


# --------------------------------------------------------------------------- files in, files out
def labels_from_files(
    *,
    inventories=(),
    boreholes=(),
    gtnp=(),
    permos=(),
    permos_coords=None,
    grid=None,
    dem=None,
    out=None,
    borehole_crs=None,
    borehole_columns=None,
    **options,
) -> LabelSet:
    """Read the inputs, run :func:`build_labels` and write the result (the ``labels`` CLI step).

    All file handling goes through :mod:`permafrost.io`; this function only wires readers,
    :func:`build_labels` and writers together.

    Parameters
    ----------
    inventories : list of path or GeoDataFrame
        Rock glacier inventories (any vector format).
    boreholes : list of path or GeoDataFrame
        Presence tables (CSV or vector).
    gtnp : list of (csv path, metadata JSON path)
        GTN-P long-format records.
    permos : list of path
        PERMOS wide-format files; positions from ``permos_coords``.
    permos_coords : path, optional
        CSV ``borehole_id, lon, lat[, elevation_m]`` for the PERMOS files (ids from their
        header ``Borehole <id>`` or the file stem).
    grid, dem : path, optional
        Reference grid raster (default: the DEM) and DEM [m].
    out : path, optional
        Output GeoPackage of the points (layer ``labels``); the summary, dropped inputs,
        conflicts and temperature verdicts are written beside it as ``<stem>_summary.csv``,
        ``<stem>_dropped.csv``, ``<stem>_conflicts.csv``, ``<stem>_verdicts.csv``.
    borehole_crs : optional
        CRS of x/y columns in presence tables.
    borehole_columns : dict, optional
        Column names by role in presence tables (and the PERMOS coordinates table): ``id``,
        ``x``, ``y``, ``presence``, ``magt``, ``elevation``, ``year``; see
        :func:`permafrost.io.boreholes.read_presence_table`.
    **options
        Passed to :func:`build_labels` (``activity_column``, ``sampling``, ``spacing_m``,
        weights, ``outside`` ...).

    Returns
    -------
    LabelSet
    """
    from pathlib import Path

    from permafrost.io._atomic import atomic_write_text
    from permafrost.io.boreholes import (read_borehole_coords, read_gtnp, read_permos,
                                         read_presence_table)
    from permafrost.io.rasters import read_raster
    from permafrost.io.vectors import read_vector, write_vector

    # paths, or already-read GeoDataFrames (``attrs["source"]`` names their origin)
    invs = [p if isinstance(p, gpd.GeoDataFrame) else read_vector(p) for p in inventories]
    tables = [p if isinstance(p, gpd.GeoDataFrame)
              else read_presence_table(p, crs=borehole_crs, columns=borehole_columns)
              for p in boreholes]
    records = []
    for csv, meta in gtnp:
        records += read_gtnp(csv, meta)
    if permos:
        if permos_coords is None:
            raise DataError("PERMOS files carry no coordinates", path=permos[0],
                            field="permos-coords",
                            fix="give --permos-coords (CSV borehole_id,lon,lat[,elevation_m])")
        coords = read_borehole_coords(permos_coords, columns=borehole_columns)
        for p in permos:
            rec = read_permos(p, coords=coords)
            if rec.borehole_id not in coords.index:
                raise DataError(f"no coordinates for borehole {rec.borehole_id!r}",
                                path=permos_coords, field="borehole_id",
                                fix=f"add a row for {rec.borehole_id} (ids in the table: "
                                    f"{', '.join(coords.index[:8])})")
            records.append(rec)
    # lazy (Dask) reads: only the windows around outlines and the sampled cells are loaded
    dem_da = read_raster(dem, name="dem", chunks=1024) if dem is not None else None
    if dem_da is not None and dem_da.nbytes <= IN_MEMORY_DEM_BYTES:
        dem_da = dem_da.load()  # small DEM: one read beats hundreds of window reads
    grid_da = read_raster(grid, name="grid", chunks=1024) if grid is not None else None
    try:
        result = build_labels(inventories=invs, borehole_tables=tables,
                              temperature_records=records, grid=grid_da, dem=dem_da, **options)
    except NoLabelsError as exc:
        # the reasons are the answer: write them, say where, and still fail (exit 2)
        if out is not None:
            out = Path(out)
            written = []
            for name, df in (("summary", exc.partial.summary), ("dropped", exc.partial.dropped),
                             ("verdicts", exc.partial.verdicts)):
                if name == "verdicts" and not records:
                    continue
                f = out.with_name(f"{out.stem}_{name}.csv")
                atomic_write_text(f, df.to_csv(index=False))
                written.append(f.name)
            exc.written = [out.parent / w for w in written]
            exc.fix = f"{exc.fix}; reasons written to {', '.join(written)} in {out.parent}"
            exc.args = (format_message(exc.problem, path=exc.path, field=exc.field,
                                       fix=exc.fix),)
        raise
    if out is not None:
        out = Path(out)
        write_vector(result.points, out, layer="labels")
        for name, df in (("summary", result.summary), ("dropped", result.dropped),
                         ("conflicts", result.conflicts), ("verdicts", result.verdicts)):
            atomic_write_text(out.with_name(f"{out.stem}_{name}.csv"), df.to_csv(index=False))
    return result
