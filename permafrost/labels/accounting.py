"""Labels, fully accounted: every candidate label kept, held out or dropped (by reason and by
source, with its weight), what InSAR changed, and the labels' covariates against the
landscape's.

Pure functions on the objects :func:`permafrost.labels.build_labels`,
:func:`permafrost.labels.apply_holdout` and :func:`permafrost.labels.combine_activity` return;
:func:`permafrost.workflows.labels.training_labels_from_files` writes their results
(``<stem>_candidates.csv`` and ``<stem>_accounting.json`` beside the labels).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from permafrost.grid import read_cells, sample_at_points, sample_subgrid
from permafrost.labels.activity import ACTIVITY_LABELS, rock_glacier_labels
from permafrost.labels.fusion import LabelSet

__all__ = ["account_candidates", "insar_changes", "covariate_quantiles", "CANDIDATE_KINDS",
           "QUANTILES", "MAP_SAMPLE_CELLS"]

#: the kinds of candidate label, in the order of the tables
CANDIDATE_KINDS = ("rock glacier (intact)", "rock glacier (relict)",
                   "rock glacier (uncertain)", "borehole (table)",
                   "borehole (temperature record)")

#: the statuses of a candidate, in the order of the tables
STATUSES = ("kept", "held out", "dropped")

#: quantiles [-] of the covariate tables: the median, the quartiles and the 5-95 % range
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)

#: cells [-] of the landscape sample the covariate quantiles are read from: a bounded,
#: seeded sample (the standard error of a quantile of n draws is about sqrt(q(1-q)/n) in
#: probability, under 0.005 here), from :func:`permafrost.grid.sample_subgrid` on large grids
MAP_SAMPLE_CELLS = 10_000

_STAGE_ORDER = {"input": 0, "fusion": 1, "holdout": 2}


def _split_ids(source_id: str) -> list[str]:
    return [i for i in str(source_id).split(";") if i != ""]


def _weights_by_id(points: gpd.GeoDataFrame) -> tuple[dict, dict, dict]:
    """(weight, points, label) per ``(source, id)``: a point merged from several inputs
    (``source_id`` ``a;b``) shares its weight equally among them."""
    w: dict = {}
    n: dict = {}
    lab: dict = {}
    if len(points) == 0:
        return w, n, lab
    for src, sid, wt, lb in zip(points["source"].astype(str), points["source_id"].astype(str),
                                points["weight"].astype(float), points["label"].astype(int)):
        ids = _split_ids(sid)
        for i in ids:
            key = (src, i)
            w[key] = w.get(key, 0.0) + float(wt) / len(ids)
            n[key] = n.get(key, 0) + 1
            lab.setdefault(key, int(lb))
    return w, n, lab


def _file_name(source: str) -> str:
    """The file name of a dataset (outputs do not name the machine's folders)."""
    return re.split(r"[\\/]", str(source))[-1] if source else ""


def _reason_kind(reason: str) -> str:
    """The kind of a reason, without its per-input numbers (``insufficient record``)."""
    return re.split(r"[:(]", str(reason))[0].strip() or str(reason)


def account_candidates(
    labels: LabelSet,
    training: LabelSet | None = None,
    *,
    inventories: Sequence[gpd.GeoDataFrame] = (),
    activity_column: str = "activity",
    id_column: str | None = None,
    borehole_tables: Sequence[gpd.GeoDataFrame] = (),
    held_out: Sequence[str] = (),
) -> tuple[pd.DataFrame, dict]:
    """Every candidate label, kept, held out or dropped, with its reason and weight.

    A candidate is one input that could give a label: a rock glacier of an inventory (its
    class intact, relict or uncertain by :func:`permafrost.labels.rock_glacier_labels`), a
    row of a borehole presence table, or a borehole temperature record (GTN-P, PERMOS;
    judged by :func:`permafrost.ground_thermal.assess_borehole`).  Its status:

    * ``held out``: a table borehole of the held-out set (validation only);
    * ``kept``: at least one of its points trains (its ``weight`` is the training weight:
      the points of one rock glacier share the rock glacier's weight, Boeckli et al. 2012;
      a point merged from several inputs of one cell shares its weight equally);
    * ``dropped``: none of its points trains; ``stage`` says where it went (``input``:
      uncertain activity, an insufficient record, no presence value; ``fusion``: the
      one-label-per-cell rule or outside the grid; ``holdout``: inside a held-out block or
      touching one) and ``reason`` why (the reasons of
      :attr:`permafrost.labels.LabelSet.dropped`).

    Parameters
    ----------
    labels : LabelSet
        All labels (:func:`permafrost.labels.build_labels`), before any hold-out.
    training : LabelSet, optional
        The training labels (:func:`permafrost.labels.apply_holdout`); default ``labels``.
    inventories : sequence of geopandas.GeoDataFrame
        The inventories the labels were built from.
    activity_column, id_column : str
        Their activity and id columns, as given to ``build_labels``.
    borehole_tables : sequence of geopandas.GeoDataFrame
        The presence tables (:func:`permafrost.io.boreholes.read_presence_table`).
    held_out : sequence of str
        Ids of the held-out table boreholes.

    Returns
    -------
    table, summary
        ``table``: one row per candidate (``kind, source, source_id, label, status, stage,
        reason, weight, points, dataset`` (its file name)); ``summary``: counts by kind and status, the
        training weight by kind, and the dropped candidates by kind, stage and reason.

    References
    ----------
    Boeckli, L. et al. (2012). The Cryosphere 6, 125-140 (weights per rock glacier).
    """
    training = labels if training is None else training
    w_train, n_train, lab_all = _weights_by_id(training.points)
    _w_all, _n_all, lab_before = _weights_by_id(labels.points)
    lab_all = {**lab_before, **lab_all}
    dropped = training.dropped if len(training.dropped) else labels.dropped
    why: dict = {}
    if len(dropped):
        st = dropped["stage"] if "stage" in dropped else pd.Series("input", index=dropped.index)
        for src, sid, reason, stage in zip(dropped["source"].astype(str),
                                           dropped["source_id"].astype(str),
                                           dropped["reason"].astype(str), st.astype(str)):
            for i in _split_ids(sid):
                why.setdefault((src, i), []).append((stage, reason))
    held = {str(h) for h in held_out}
    rows = []

    def add(kind, source, sid, label, dataset):
        key = (source, sid)
        if source == "borehole" and sid in held and kind == "borehole (table)":
            status, stage, reason = "held out", "holdout", "in a held-out block: validation only"
        elif w_train.get(key, 0.0) > 0:
            status, stage, reason = "kept", "", ""
        else:
            status = "dropped"
            r = sorted(why.get(key, []), key=lambda sr: _STAGE_ORDER.get(sr[0], 9))
            stage = r[-1][0] if r else ""
            reason = "; ".join(dict.fromkeys(x[1] for x in r)) or "no point left"
        if label is None:
            label = lab_all.get(key)
        rows.append((kind, source, sid, label, status, stage, reason,
                     float(w_train.get(key, 0.0)), int(n_train.get(key, 0)),
                     _file_name(dataset)))

    for inv in inventories:
        rg = rock_glacier_labels(inv, activity_column=activity_column, id_column=id_column)
        for rid, lab in zip(rg["rg_id"].astype(str), rg["label"]):
            kind = ("rock glacier (uncertain)" if pd.isna(lab) else
                    "rock glacier (intact)" if int(lab) == 1 else "rock glacier (relict)")
            add(kind, "rock_glacier", rid, None if pd.isna(lab) else int(lab),
                str(inv.attrs.get("source") or ""))
    for tab in borehole_tables:
        for bid in tab["borehole_id"].astype(str):
            add("borehole (table)", "borehole", bid, None, str(tab.attrs.get("source") or ""))
    ver = labels.verdicts
    if len(ver) and "borehole_id" in ver:
        pres = ver["presence"] if "presence" in ver else pd.Series(None, index=ver.index)
        ds = ver["dataset"] if "dataset" in ver else pd.Series("", index=ver.index)
        for bid, p, d in zip(ver["borehole_id"].astype(str), pres, ds):
            add("borehole (temperature record)", "borehole", bid,
                None if p is None or pd.isna(p) else int(p), str(d or ""))
    table = pd.DataFrame(rows, columns=["kind", "source", "source_id", "label", "status",
                                        "stage", "reason", "weight", "points", "dataset"])
    table["label"] = table["label"].astype("Int8")
    by_kind = {}
    for kind in CANDIDATE_KINDS:
        part = table[table["kind"] == kind]
        if not len(part):
            continue
        kept = part[part["status"] == "kept"]
        by_kind[kind] = {
            "candidates": len(part),
            **{s: int((part["status"] == s).sum()) for s in STATUSES},
            "kept_label_1": int((kept["label"] == 1).sum()),
            "kept_label_0": int((kept["label"] == 0).sum()),
            "training_points": int(kept["points"].sum()),
            "weight": float(kept["weight"].sum()),
            "weight_per_kept": float(kept["weight"].mean()) if len(kept) else None,
        }
    drop = table[table["status"] == "dropped"]
    reasons = (drop.assign(reason_kind=drop["reason"].map(_reason_kind))
               .groupby(["kind", "stage", "reason_kind"]).size().reset_index(name="n"))
    reasons = reasons.sort_values(["kind", "n", "stage", "reason_kind"],
                                  ascending=[True, False, True, True])
    pts = training.points
    summary = {
        "rule": "a candidate is kept when one of its points trains, held out when it is a "
                "table borehole of the held-out set, else dropped at the stage that removed "
                "its last point (input, fusion, holdout); a point merged from several inputs "
                "shares its weight equally among them",
        "candidates": len(table),
        **{s.replace(" ", "_"): int((table["status"] == s).sum()) for s in STATUSES},
        "by_kind": by_kind,
        "dropped_reasons": [{"kind": k, "stage": s, "reason": r, "n": int(n)}
                            for k, s, r, n in reasons.itertuples(index=False)],
        "training_points": len(pts),
        "training_weight": float(pts["weight"].astype(float).sum()) if len(pts) else 0.0,
        "training_weight_by_source": {str(k): float(v) for k, v in
                                      pts.groupby("source")["weight"].sum().items()}
        if len(pts) else {},
    }
    return table, summary


def insar_changes(inventories: Sequence[gpd.GeoDataFrame], activity_column: str,
                  evidence_column: str = "activity_evidence") -> dict | None:
    """What InSAR changed in the labels: each outline's inventory class against the class
    its label was taken from (:func:`permafrost.labels.combine_activity`).

    Parameters
    ----------
    inventories : sequence of geopandas.GeoDataFrame
        The inventories the labels were built from, with ``evidence_column`` where InSAR
        was weighed in (outlines without it are not counted).
    activity_column : str
        The inventory's own activity column (case-insensitive; missing: ``none``).
    evidence_column : str
        The column the labels were taken from.

    Returns
    -------
    dict or None
        ``rows`` (inventory classes), ``columns`` (classes after InSAR), ``counts``; the
        outlines by ``insar_change`` (``none``, ``upgraded``, ``decided``: derived from the
        classes where the column is absent) and the label changes (``0 -> 1``: relict made
        intact; ``none -> 1``/``none -> 0``: an outline without an inventory class labelled
        by InSAR).  None when no inventory carries the evidence.

    References
    ----------
    RGIK (2023), InSAR-based kinematic attribute (version 4.0); see
    :func:`permafrost.labels.combine_activity`.
    """
    inv_cls, ev_cls = [], []
    for g in inventories:
        if evidence_column not in g.columns:
            continue
        lower = {str(c).lower(): c for c in g.columns}
        col = lower.get(activity_column.lower())
        own = (g[col].astype("string").str.strip().str.lower().fillna("")
               if col is not None and col != evidence_column
               else pd.Series("", index=g.index, dtype="string"))
        inv_cls += [v if v else "none" for v in own.tolist()]
        ev = g[evidence_column].astype("string").str.strip().str.lower().fillna("")
        ev_cls += [v if v else "none" for v in ev.tolist()]
    if not inv_cls:
        return None
    order = ["active", "transitional", "intact", "inactive", "relict", "fossil", "uncertain",
             "none"]
    ct = pd.crosstab(pd.Series(inv_cls, name="inventory"), pd.Series(ev_cls, name="insar"))
    rows = [r for r in order if r in ct.index] + sorted(r for r in ct.index if r not in order)
    cols = [c for c in order if c in ct.columns] + sorted(c for c in ct.columns
                                                          if c not in order)
    ct = ct.reindex(index=rows, columns=cols, fill_value=0)

    def lab(v):
        x = ACTIVITY_LABELS.get(v)
        return "none" if x is None else str(x)

    change: dict = {}
    labels: dict = {}
    for a, b in zip(inv_cls, ev_cls):
        kind = ("none" if a == b else "decided" if a in ("none", "uncertain") else "upgraded")
        change[kind] = change.get(kind, 0) + 1
        la, lb = lab(a), lab(b)
        if la != lb:
            labels[f"{la} -> {lb}"] = labels.get(f"{la} -> {lb}", 0) + 1
    return {"rows": rows, "columns": cols, "counts": ct.to_numpy().astype(int).tolist(),
            "outlines": len(inv_cls), "insar_change": dict(sorted(change.items())),
            "label_changes": dict(sorted(labels.items())),
            "rule": "InSAR upgrades (relict -> intact, intact -> active) or decides an outline "
                    "without an inventory class; it never downgrades an intact rock glacier "
                    "(permafrost.labels.combine_activity, RGIK 2023)"}


def covariate_quantiles(stack, points: gpd.GeoDataFrame, names: Sequence[str] | None = None,
                        *, n_cells: int = MAP_SAMPLE_CELLS, seed: int = 0,
                        quantiles: Sequence[float] = QUANTILES) -> dict:
    """The labels' covariate distributions against the landscape's.

    For each covariate, the quantiles of its values at the labels (all, and by source)
    beside the quantiles of a bounded random sample of the map's cells: ``n_cells`` cells
    drawn at random (seeded) from :func:`permafrost.grid.sample_subgrid` (the whole grid up
    to 16 windows of 1024 x 1024 cells, else 16 windows spread over it), read block by
    block (:func:`permafrost.grid.read_cells`).  Cells with NaN or nodata are left out.  A
    categorical covariate (``attrs["kind"] == "categorical"``) gets the share of each class
    instead.  Labels that sit where the landscape is not (rock glacier fronts on debris,
    boreholes along roads) show as shifted quantiles: a model fitted to them speaks for
    the landscape only where their distributions overlap (Meyer & Pebesma 2021).  The
    sample counts cells, not area: on a geographic grid high-latitude cells weigh as much
    as low ones.

    Parameters
    ----------
    stack : xarray.Dataset
        The covariates (:func:`permafrost.workflows.covariates.build_stack`) [their units].
    points : geopandas.GeoDataFrame
        The labels, with a CRS and a ``source`` column.
    names : sequence of str, optional
        Covariates (default: every variable).
    n_cells : int
        Cells of the landscape sample [-].
    seed : int
        Seed of the sample.
    quantiles : sequence of float
        Quantiles [-].

    Returns
    -------
    dict
        ``quantiles``, ``n_map_cells``, ``rule`` and ``covariates``: per covariate its
        ``units``, ``kind`` and either ``map``/``labels``/``by_source`` quantiles (keys
        ``q05`` ...) with counts, or class shares (``classes``).

    References
    ----------
    Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the area of
    applicability of spatial prediction models. Methods Ecol. Evol. 12, 1620-1633.
    """
    names = [str(v) for v in stack.data_vars] if names is None else [str(n) for n in names]
    sub = stack[names]
    part_rows, part_cols = sample_subgrid(sub[names[0]].shape[-2:])
    ny, nx = len(part_rows), len(part_cols)
    rng = np.random.default_rng(seed)
    flat = np.sort(rng.choice(ny * nx, min(ny * nx, int(n_cells)), replace=False))
    mvals = read_cells(sub, part_rows[flat // nx], part_cols[flat % nx])
    lvals, _inside = sample_at_points(sub, points.geometry.x.to_numpy(),
                                      points.geometry.y.to_numpy(), crs=points.crs)
    src = points["source"].astype(str).to_numpy() if "source" in points else \
        np.full(len(points), "", dtype=object)
    keys = [f"q{round(q * 100):02d}" for q in quantiles]

    def qs(v):
        v = v[np.isfinite(v)]
        return ({"n": int(v.size), **{k: float(x) for k, x in zip(keys, np.quantile(v, quantiles))}}
                if v.size else {"n": 0})

    def shares(v, codes):
        v = v[np.isfinite(v)]
        return {"n": int(v.size), **{str(c): float(np.mean(np.rint(v) == c)) if v.size else None
                                     for c in codes}}

    out = {}
    for j, name in enumerate(names):
        da = sub[name]
        m = mvals[:, j].copy()
        nod = da.rio.nodata if hasattr(da, "rio") else None
        if nod is not None and np.isfinite(nod):
            m[m == nod] = np.nan
        lv = lvals[:, j]
        cat = str(da.attrs.get("kind", "")).lower() == "categorical"
        entry = {"units": da.attrs.get("units"), "kind": "categorical" if cat else "numeric"}
        if cat:
            codes = sorted({int(c) for c in np.rint(np.r_[m[np.isfinite(m)],
                                                          lv[np.isfinite(lv)]])})
            entry["classes"] = da.attrs.get("classes")
            entry["map"] = shares(m, codes)
            entry["labels"] = shares(lv, codes)
            entry["by_source"] = {s: shares(lv[src == s], codes) for s in sorted(set(src))}
        else:
            entry["map"] = qs(m)
            entry["labels"] = qs(lv)
            entry["by_source"] = {s: qs(lv[src == s]) for s in sorted(set(src))}
        out[name] = entry
    return {"quantiles": list(map(float, quantiles)), "n_map_cells": int(len(flat)),
            "seed": int(seed),
            "rule": f"quantiles of the covariates at the training labels against those of "
                    f"{len(flat)} random cells of the map (seeded; cells, not area; NaN and "
                    "nodata left out); class shares for categorical covariates",
            "covariates": out}
