"""Rock glacier activity: inventory values -> labels, and InSAR evidence weighed against them.

:data:`ACTIVITY_LABELS` and :func:`rock_glacier_labels` turn an inventory's activity class into
a label; :func:`combine_activity` weighs InSAR kinematic evidence against that class.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd

from permafrost.errors import DataError, ParameterError

#: Activity class (lower case) -> label (None = left out).  ``inactive`` (intact, Barsch 1996)
#: and ``fossil`` (= relict) are accepted as older synonyms.
ACTIVITY_LABELS: dict[str, int | None] = {
    "active": 1, "transitional": 1, "intact": 1, "inactive": 1,
    "relict": 0, "fossil": 0,
    "uncertain": None,
}


# --------------------------------------------------------------------------- activity evidence
#: Inventory activity values, lower case -> the coarse class InSAR evidence is weighed against
_INTACT = ("active", "transitional", "intact", "inactive")
_RELICT = ("relict", "fossil")
_KIN_DECIDED = ("active", "transitional", "intact", "relict")

#: the columns a rock glacier id is looked for in (case-insensitive, first found), when no
#: id column is named
RG_ID_COLUMNS = ("rg_id", "id", "pk", "name")

#: the columns :func:`combine_activity` adds
EVIDENCE_COLUMNS = ("activity_evidence", "activity_source", "insar_change", "insar_reason")


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


def _id_column(gdf: gpd.GeoDataFrame) -> str | None:
    lower = {str(c).lower(): c for c in gdf.columns}
    return next((lower[c] for c in RG_ID_COLUMNS if c in lower), None)


def inventories_with_evidence(
    combined: gpd.GeoDataFrame,
    inventories: list[gpd.GeoDataFrame],
    activity_column: str,
) -> list[gpd.GeoDataFrame]:
    """The inventories to label from when InSAR ran on separate outlines.

    ``combined`` is :func:`combine_activity` of the kinematics of an outline file that is
    not the first inventory (e.g. a newer mapping of the same rock glaciers).  Every
    inventory gets the ``activity_evidence`` column: its own activity, weighed against
    InSAR by :func:`combine_activity` (the same rules, RGIK 2023) where its rock glacier
    id (:data:`RG_ID_COLUMNS`) is also an outline's id; those outlines are then not counted
    a second time.  Outlines that no inventory names come in first, with their InSAR-only
    evidence (an ``uncertain`` one is then left out and counted by
    :func:`permafrost.labels.build_labels`).

    Parameters
    ----------
    combined : geopandas.GeoDataFrame
        :func:`combine_activity` of the kinematics of the outlines;
        ``attrs["source"]`` names the outline file.
    inventories : list of geopandas.GeoDataFrame
        The inventories, read (``attrs["source"]`` names each file).
    activity_column : str
        The inventories' activity column (case-insensitive).

    Returns
    -------
    list of geopandas.GeoDataFrame
        ``[outlines no inventory names (if any), *inventories]``, each with
        ``activity_evidence`` (label them with ``activity_column="activity_evidence"``).

    Raises
    ------
    ParameterError
        An inventory has no ``activity_column``.

    References
    ----------
    RGIK (2023). InSAR-based kinematic attribute in rock glacier inventories (version 4.0);
    see :func:`combine_activity`.
    """
    kin_id = _id_column(combined)
    kin_ids = combined[kin_id].astype(str).str.strip() if kin_id else None
    taken: set[str] = set()
    out = []
    for inv in inventories:
        path = inv.attrs.get("source")
        lower = {str(c).lower(): c for c in inv.columns}
        col = lower.get(activity_column.lower())
        if col is None:
            raise ParameterError(f"no activity column {activity_column!r} (columns: "
                                 f"{', '.join(map(str, inv.columns))})", path=path,
                                 param="activity_column",
                                 fix="name the inventory's activity column with "
                                     "{activity_column}")
        evidence = inv[col].astype(object)
        iid = _id_column(inv)
        if kin_ids is not None and iid:
            ids = inv[iid].astype(str).str.strip()
            own = dict(zip(ids, inv[col]))
            both = combined[kin_ids.isin(set(ids))].drop(
                columns=[c for c in EVIDENCE_COLUMNS if c in combined.columns])
            both = both.drop(columns=[c for c in both.columns
                                      if str(c).lower() == activity_column.lower()])
            both[activity_column] = both[kin_id].astype(str).str.strip().map(own)
            weighed = combine_activity(both, inventory_column=activity_column)
            kin = dict(zip(weighed[kin_id].astype(str).str.strip(),
                           weighed["activity_evidence"]))
            evidence = pd.Series(np.where(ids.isin(kin), ids.map(kin), evidence),
                                 index=inv.index, dtype=object)
            taken |= set(kin)
        inv = inv.copy()
        inv["activity_evidence"] = evidence
        inv.attrs["source"] = path
        out.append(inv)
    rest = combined[~kin_ids.isin(taken)] if kin_ids is not None else combined
    rest.attrs["source"] = combined.attrs.get("source")
    return [rest, *out] if len(rest) else out


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
    lower = {str(c).lower(): c for c in inventory.columns}
    if activity_column.lower() not in lower:
        raise ParameterError(f"no activity column {activity_column!r} (columns: "
                             f"{', '.join(map(str, inventory.columns))})", path=path,
                             param="activity_column",
                             fix="name the inventory's activity column with {activity_column}")
    col = lower[activity_column.lower()]
    idc: str | None
    if id_column is not None:
        idc = _find_column(inventory.columns, id_column, path=path, what="id",
                           fix="pass the id column name")
        ids = inventory[idc].astype(str).str.strip()
    else:
        lower = {str(c).lower(): c for c in inventory.columns}
        idc = next((lower[c] for c in RG_ID_COLUMNS if c in lower), None)
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
        bad: dict[str, list[int]] = {}
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
