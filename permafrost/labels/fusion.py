"""Fusion: labelled points of every source -> one label per grid cell (:func:`build_labels`,
:class:`LabelSet` and its summary)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from pyproj import CRS, Transformer

from permafrost.defaults import BOREHOLE_WEIGHT, ROCK_GLACIER_WEIGHT
from permafrost.errors import CRSError, DataError, ParameterError
from permafrost.grid import cells_at_points, grid_of, sample_at_points
from permafrost.labels.activity import rock_glacier_labels
from permafrost.labels.sampling import (
    borehole_points,
    sample_rock_glaciers,
    temperature_borehole_points,
)
from permafrost.options import check_options

log = logging.getLogger(__package__)  # "permafrost.labels", as before the split

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
    h, w = grid.shape[-2:]
    rows, cols, ok = cells_at_points(grid_of(grid), p.geometry.x.to_numpy(),
                                     p.geometry.y.to_numpy())
    dropped = []
    if not ok.all():
        bad = p.loc[~ok]
        names = [f"{s}:{i}" for s, i in zip(bad["source"], bad["source_id"])]
        if outside == "error":
            raise ParameterError(f"{len(bad)} points fall outside the reference grid: "
                                 f"{sorted(set(names))[:8]}",
                                 path=(bad["dataset"].iloc[0] if "dataset" in bad else None)
                                 or None, param="outside",
                                 fix="give a grid that covers them, or set {outside} to drop "
                                     "to drop and count them")
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
    inventories: Sequence[gpd.GeoDataFrame] = (),
    borehole_tables: Sequence[gpd.GeoDataFrame] = (),
    temperature_records: Sequence = (),
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
        Presence tables (:func:`permafrost.read_presence_table`).
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
    checked = check_options(rock_glacier_weight=rock_glacier_weight,
                            borehole_weight=borehole_weight, spacing_m=spacing_m)
    rock_glacier_weight, borehole_weight = (checked["rock_glacier_weight"],
                                            checked["borehole_weight"])
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
            sub = fused.loc[miss]
            fused.loc[miss, "elevation_m"] = sample_at_points(
                dem, sub.geometry.x.to_numpy(), sub.geometry.y.to_numpy(), crs=sub.crs)[0]
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
        #: the files the reasons were written to (by
        #: :func:`permafrost.workflows.labels.labels_from_files`)
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

