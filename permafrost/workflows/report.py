"""`report` on files: read what the other steps wrote, render the report, write HTML and JSON.

The rendering is :mod:`permafrost.report` (:func:`~permafrost.report.render_report` and
:func:`~permafrost.report.report_json` from a *bundle*, see that module); this module
builds the bundle from files: the statistics, validation and model JSON, decimated map
previews of the rasters, the mask, labels and kinematics vectors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr

from permafrost.area import elevation_profile
from permafrost.checks import expects
from permafrost.cv import block_boxes, block_index, metric_crs, metric_xy
from permafrost.errors import DataError
from permafrost.grid import sample_at_points
from permafrost.ground_thermal import assess_borehole
from permafrost.io.atomic import atomic_write_text
from permafrost.io.boreholes import read_gtnp
from permafrost.io.guard import Output, check_outputs
from permafrost.io.maps import read_aligned, read_mask, read_preview
from permafrost.io.model import load_model
from permafrost.io.rasters import read_raster
from permafrost.io.results import read_json, write_json
from permafrost.io.vectors import read_vector
from permafrost.kinematics import summarise
from permafrost.report import render_report, report_json
from permafrost.response import partial_dependence, response_grid
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.labels import accounting_file

__all__ = ["report_from_files"]

#: activity classes in the order of the kinematics tables
_ACTIVITIES = ["active", "transitional", "intact", "relict", "uncertain"]


def _read_output(path, column: str, command: str, map_crs):
    """A vector file written by ``permafrost <command>`` (it must have ``column``), in the
    map's CRS."""
    gdf = read_vector(path, allow_empty=True)
    if column not in gdf.columns:
        raise DataError(f"no {column!r} column", path=path, field=column,
                        fix=f"give the file written by `permafrost {command}`")
    if map_crs is not None and gdf.crs is not None:
        gdf = gdf.to_crs(map_crs.to_wkt())
    return gdf


def _kinematics_bundle(path, map_crs, activity_column: str | None,
                       tracks_json=None) -> tuple[dict, dict]:
    """Counts for the Kinematics section and the outlines for its map (from the GeoPackage
    of `permafrost kinematics`; ``insar_change``/``insar_reason`` columns when present)."""
    gdf = _read_output(path, "kin_activity", "kinematics", map_crs)
    act = gdf["kin_activity"].astype("string").str.strip().str.lower().fillna("uncertain")
    kin: dict = {"source": str(path), "n_outlines": len(gdf)}
    if "kin_rgik_class" in gdf.columns:
        tab = summarise(gdf)
        kin["class_activity"] = {"rows": [str(i) for i in tab.index],
                                 "columns": [str(c) for c in tab.columns],
                                 "counts": tab.to_numpy().astype(int).tolist()}
    lower = {str(c).lower(): c for c in gdf.columns}
    col = lower.get((activity_column or "").lower())
    if col is not None and not str(col).startswith("kin_"):
        inv = gdf[col].astype("string").str.strip().str.lower().fillna("none")
        ct = pd.crosstab(inv, act)
        rows = [r for r in _ACTIVITIES if r in ct.index] + sorted(
            r for r in ct.index if r not in _ACTIVITIES)
        cols = [c for c in _ACTIVITIES if c in ct.columns] + sorted(
            c for c in ct.columns if c not in _ACTIVITIES)
        ct = ct.reindex(index=rows, columns=cols, fill_value=0)
        kin["inventory_vs_insar"] = {"column": str(col), "rows": rows, "columns": cols,
                                     "counts": ct.to_numpy().astype(int).tolist()}
    cc = next((lower[c] for c in ("insar_change", "kin_insar_change") if c in lower), None)
    if cc is not None:
        rc = next((lower[c] for c in ("insar_reason", "kin_insar_reason") if c in lower), None)
        ch = gdf[cc].astype("string").fillna("").str.strip()
        rs = gdf[rc].astype("string").fillna("").str.strip() if rc is not None else ch.where(
            False, "")
        # group on the reason's kind, not on its per-outline numbers
        rs = rs.map(lambda v: re.split(r"[:(;]", str(v))[0].strip())
        cnt = pd.DataFrame({"c": ch, "r": rs}).value_counts().reset_index(name="n")
        cnt = cnt.sort_values(["n", "c", "r"], ascending=[False, True, True]).head(25)
        kin["insar_change"] = {"columns": ", ".join(str(c) for c in (cc, rc) if c is not None),
                               "rows": [[str(c), str(r), int(n)] for c, r, n in
                                        cnt.itertuples(index=False)]}
    if "kin_reason" in gdf.columns:
        why = gdf.loc[act == "uncertain", "kin_reason"].astype("string").fillna("")
        why = why.map(lambda s: re.split(r"[:(;]", str(s))[0].strip() or "–")
        vc = why.value_counts()
        kin["uncertain_reasons"] = sorted(([str(k), int(n)] for k, n in vc.items()),
                                          key=lambda kv: (-kv[1], kv[0]))[:8]
    if "kin_track" in gdf.columns:
        tcols = [c for c in ("kin_n_pixels", "kin_n_valid") if c in gdf.columns] + sorted(
            c for c in gdf.columns if str(c).startswith("kin_masked_"))
        g = gdf.assign(_t=gdf["kin_track"].astype("string").fillna(""))
        rows = []
        for t, part in sorted(g.groupby("_t"), key=lambda kv: (kv[0] == "", kv[0])):
            r = {"track": str(t), "outlines": len(part)}
            for c in tcols:
                name = str(c).removeprefix("kin_").removeprefix("masked_")
                r[{"n_pixels": "pixels", "n_valid": "valid"}.get(name, name)] = int(
                    pd.to_numeric(part[c], errors="coerce").fillna(0).sum())
            rows.append(r)
        kin["tracks"] = rows
    side = Path(tracks_json) if tracks_json else Path(path).with_name("kinematics_tracks.json")
    if side.exists():
        side_json = read_json(side)
        kin["track_pixels"] = side_json.get("tracks") or None
        kin["track_info"] = side_json.get("summaries") or None
    vcol = next((c for c in ("kin_v_moving_m_yr", "kin_v_downslope_median_m_yr")
                 if c in gdf.columns), None)
    mp = {}
    if vcol is not None and len(gdf):
        b = gdf.total_bounds
        mp = {"geometries": list(gdf.geometry.values),
              "v_cm_yr": (pd.to_numeric(gdf[vcol], errors="coerce") * 100).tolist(),
              "activity": act.astype(str).tolist(),
              "velocity_label": ("Velocity of the moving part" if "moving" in vcol
                                 else "Median downslope velocity"),
              "extent": [b[0], b[2], b[1], b[3]],
              "crs": gdf.crs.to_string() if gdf.crs is not None else None,
              "source": str(path)}
    return kin, mp


def _cv_map(labels, blocks_path, holdout_path, block_m, map_crs) -> dict:
    """The hold-out and CV blocks with the boreholes, for the report's map: the held-out
    blocks (``holdout_blocks.gpkg`` of the labels step), the squares of side ``block_m`` that
    :func:`permafrost.cv.block_index` lays over the training labels (the CV's units before
    groups are merged), the training labels by source and the held-out boreholes
    (``boreholes_holdout.csv``), in the map's CRS."""
    out: dict = {"block_m": block_m}
    crs = map_crs.to_wkt() if map_crs is not None else None
    if blocks_path:
        hb = read_vector(blocks_path, allow_empty=True)
        if crs is not None and hb.crs is not None:
            hb = hb.to_crs(crs)
        out["held_out"] = list(hb.geometry.values)
        out["source"] = str(blocks_path)
    if labels is not None and len(labels) and block_m and labels.crs is not None:
        pts = labels.geometry.representative_point()
        mx, my = metric_xy(pts.x.to_numpy(), pts.y.to_numpy(), labels.crs)
        ix, iy = block_index(mx, my, block_m)
        cells = sorted(set(zip(ix.tolist(), iy.tolist(), strict=True)))
        boxes = block_boxes(mx, my, block_m, [c[0] for c in cells], [c[1] for c in cells])
        frame = metric_crs(pts.x.to_numpy(), pts.y.to_numpy(), labels.crs)
        g = gpd.GeoSeries(boxes, crs=frame)
        out["cv_blocks"] = list((g.to_crs(crs) if crs is not None else g).values)
        src = labels["source"].astype(str) if "source" in labels.columns else None
        out["train"] = {"x": pts.x.tolist(), "y": pts.y.tolist(),
                        "source": src.tolist() if src is not None else None}
    if holdout_path and Path(holdout_path).exists():
        h = pd.read_csv(holdout_path)
        if {"lon", "lat"} <= set(h.columns):
            g = gpd.GeoSeries(shapely.points(h["lon"], h["lat"]), crs="EPSG:4326")
            if crs is not None:
                g = g.to_crs(crs)
            out["held_out_boreholes"] = {"x": g.x.tolist(), "y": g.y.tolist(),
                                         "presence": h.get("presence", pd.Series(
                                             [None] * len(h))).tolist()}
    return out


def _profile_spread(pzi, uncertainty, dem, mask, band_width) -> dict:
    """The profile of PZI − σ and PZI + σ (σ: the spread of the fold models,
    ``pzi_uncertainty.tif``), each clipped to [0, 1]: their band means and lower limits
    bound those of the PZI by the fold models' disagreement."""
    p = read_raster(pzi, name="pzi")
    sd = read_aligned(uncertainty, p, resampling="nearest", name="sd")
    z = read_aligned(dem, p, resampling="bilinear", name="dem")
    mk = read_mask(mask, p) if mask else None
    out = {"rule": "band means and lower limits of clip(PZI − σ) and clip(PZI + σ), σ the "
                   "per-cell standard deviation of the spatial-CV fold models' PZI "
                   "(pzi_uncertainty.tif): an envelope of the fold models' disagreement, not "
                   "the profiles of the fold models themselves (their maps are not saved)"}
    for key, sign in (("low", -1.0), ("high", 1.0)):
        arr = xr.where(sd.notnull(), (p + sign * sd).clip(0.0, 1.0), p)
        prof = elevation_profile(arr, z, band_width=band_width,
                                 mask_vector=mk.polygons if mk is not None else None,
                                 mask_raster=mk.excluded if mk is not None else None)
        d = prof.as_dict()
        out[key] = {"bands": d["bands"], "lower_limits": d["lower_limits"]}
    return out


def _ground_thermal(gtnp) -> dict:
    """Each GTN-P borehole's verdict, MAGT and active-layer thickness
    (:func:`permafrost.ground_thermal.assess_borehole` with its defaults, as the labels step
    assesses them), from ``[(csv, metadata)]`` pairs."""
    rows = []
    for csv, meta in gtnp:
        for r in read_gtnp(csv, meta):
            v = assess_borehole(r.temperatures, borehole_id=r.borehole_id)

            def num(x):
                return None if x is None or not np.isfinite(x) else float(x)

            rows.append({"borehole": r.borehole_id, "name": r.name, "lon": num(r.lon),
                         "lat": num(r.lat), "elevation_m": num(r.elevation_m),
                         "status": v.status, "reason": v.reason,
                         "magt_c": num(v.magt_c), "magt_depth_m": num(v.magt_depth_m),
                         "magt_basis": v.magt_basis, "zaa_depth_m": num(v.zaa_depth_m),
                         "alt_m": num(v.alt_m), "alt_max_m": num(v.alt_max_m),
                         "alt_years": int(v.alt_years), "complete_years": int(v.complete_years),
                         "source": str(csv)})
    return {"rule": "permafrost: ground at or below 0 °C for two consecutive years; MAGT at "
                    "the depth of zero annual amplitude (annual range ≤ 0.1 °C), else at the "
                    "deepest sensor below the active layer; active-layer thickness: the "
                    "deepest 0 °C isotherm of each thaw season, interpolated between sensors "
                    "(van Everdingen 1998; permafrost.ground_thermal)", "boreholes": rows}


#: labels sampled for the response curves (a bounded, seeded sample: the curves cost
#: points × grid values predictions per covariate)
RESPONSE_POINTS = 300


def _response_curves(models: Mapping[str, object], covariates, labels_path, *,
                     points: int = RESPONSE_POINTS, seed: int = 0) -> dict:
    """Partial dependence of each model's calibrated PZI on each continuous covariate
    (:func:`permafrost.response.partial_dependence`), on a seeded sample of at most
    ``points`` training labels' covariates (the categorical land cover kept as it is)."""
    labels = read_vector(labels_path, allow_empty=True)
    stack = build_stack(covariates)
    pts = labels.geometry.representative_point()
    vals, _ = sample_at_points(stack, pts.x.to_numpy(), pts.y.to_numpy(), crs=labels.crs)
    names = [str(v) for v in stack.data_vars]
    units = {n: stack[n].attrs.get("units") for n in names}
    out: dict = {"method": "partial dependence (Friedman 2001, Eq. 40) of the calibrated PZI "
                           "on a seeded sample of the training labels' covariates; grid "
                           "between the 2nd and 98th percentiles of the sample",
                 "points": 0, "units": units, "models": {}}
    for name, path in models.items():
        if not path:
            continue
        model = load_model(Path(path).parent if Path(path).name == "metadata.json" else path)
        feats = list(model.feature_names)
        if any(f not in names for f in feats):
            continue
        X = vals[:, [names.index(f) for f in feats]]
        X = X[np.isfinite(X).all(axis=1)]
        if len(X) > points:
            X = X[np.sort(np.random.default_rng(seed).choice(len(X), points, replace=False))]
        out["points"] = int(len(X))
        cats = set(getattr(model, "categorical", {}) or {})
        surface = getattr(model, "surface", None)
        curves = {}
        for j, f in enumerate(feats):
            if f in cats or f == surface:
                continue
            grid = response_grid(X[:, j])
            pd_ = partial_dependence(lambda A: model.predict_pzi(A.astype("float32")), X, j,
                                     grid)
            curves[f] = {"x": grid.tolist(),
                         "pzi": [None if not np.isfinite(v) else float(v) for v in pd_]}
        out["models"][name] = curves
    return out


@expects(out_html="path", out_json="path?", pzi="path?", dem="path?", stats="path?",
         validation="path?", model="path?", labels="path?", kinematics="path?", mask="path?")
def report_from_files(
    *,
    out_html,
    out_json=None,
    title: str | None = None,
    pzi=None,
    dem=None,
    stats=None,
    profile=None,
    validation=None,
    model=None,
    labels=None,
    provenance=None,
    scenarios: Mapping[str, object] | None = None,
    scenario_changes=None,
    scenario_runs: Mapping[str, Mapping[str, object]] | None = None,
    uncertainty=None,
    kinematics=None,
    kinematics_tracks=None,
    activity_column: str | None = "activity",
    mask=None,
    applicability=None,
    holdout_blocks=None,
    holdout_boreholes=None,
    covariates=None,
    response_models: Mapping[str, object] | None = None,
    gtnp=None,
    max_size: int = 800,
) -> dict:
    """Read what the other steps wrote, render the report and write HTML (+ JSON).

    Parameters
    ----------
    out_html, out_json : path-like
        Outputs.
    pzi, dem : path-like, optional
        Rasters for the map figures (read decimated to ``max_size`` pixels); the DEM gives
        the hillshade under every map.
    stats : path-like, optional
        ``permafrost stats --out-json`` file.
    profile : path-like, optional
        ``profile.json`` (:func:`permafrost.workflows.stats.profile_from_files`): the PZI
        against elevation by aspect and the lower limit of permafrost.
    validation : path-like, optional
        ``validation.json`` or the ``permafrost validate --out`` directory (its agreement
        rasters are drawn).
    model : path-like, optional
        Model directory or its ``metadata.json``.
    labels : path-like, optional
        Labelled points (vector with a ``label`` column); the ``<stem>_accounting.json``
        beside them (``permafrost labels``, the pipeline's labels step) becomes the
        bundle's ``labels_accounting``.
    provenance : path-like, optional
        A JSON manifest.
    scenarios : mapping, optional
        ``{name: stats JSON path}``.
    scenario_changes : path-like, optional
        JSON from :func:`permafrost.area.compare_scenarios` (area change per zone and
        region against the baseline).
    scenario_runs : mapping, optional
        ``{name: {"pzi": path, "applicability": path}}`` of each run: its PZI (for the
        scenario and change maps) and its ``applicability.json`` (warming, model, proxy
        warnings, extrapolation).
    uncertainty : path-like, optional
        ``pzi_uncertainty.tif`` of ``permafrost predict --uncertainty`` (spread of the
        fold models) [-].
    kinematics : path-like, optional
        GeoPackage of ``permafrost kinematics`` (a ``kinematics_tracks.json`` beside it
        adds the per-track scene masks).
    kinematics_tracks : path-like, optional
        The kinematics step's ``kinematics_tracks.json`` (per-track scene masks and each
        track's period, reference point and velocity range), where it does not lie beside
        ``kinematics`` (the pipeline gives the labels step's activity GeoPackage).
    activity_column : str, optional
        The inventory's activity column in the kinematics GeoPackage (compared with the
        InSAR activity).
    mask : path-like, optional
        The mask polygons (glaciers, lakes) of the run, hatched on the maps.
    applicability : path-like, optional
        The baseline run's ``applicability.json``: its label support (counts per surface
        class and covariate decile, unsupported shares) and warnings.
    holdout_blocks, holdout_boreholes : path-like, optional
        ``holdout_blocks.gpkg`` and ``boreholes_holdout.csv`` of the labels step: the map of
        the hold-out and CV blocks with the boreholes.
    covariates : path-like, optional
        The covariate source of the run (directory, files or stack file): with ``labels``
        and a model, the response curves (partial dependence on each covariate).
    response_models : mapping, optional
        ``{name: model directory}`` of the models whose response curves are drawn (default:
        ``{"baseline": model}``).
    gtnp : sequence of (path-like, path-like), optional
        GTN-P ``(csv, metadata)`` pairs: each borehole's MAGT and active-layer thickness.
    max_size : int
        Longest side of map previews [pixels].

    Returns
    -------
    dict
        The report JSON.
    """
    check_outputs(
        [Output(out_html, "--out", what="HTML report"),
         Output(out_json, "--out-json", what="JSON report")],
        {"--pzi": pzi, "--dem": dem, "--stats": stats, "--model": model,
         "--labels": [labels] + ([accounting_file(labels)] if labels else []),
         "--validation": [validation] + ([Path(validation) / "validation.json"]
                                         if validation and Path(validation).is_dir() else []),
         "--provenance": provenance, "--scenario": scenarios,
         "scenario changes": scenario_changes, "scenario runs": scenario_runs,
         "--uncertainty": uncertainty, "--mask": mask, "--profile": profile,
         "--covariates": covariates, "--holdout-blocks": holdout_blocks,
         "--holdout-boreholes": holdout_boreholes,
         "--gtnp": [p for pair in gtnp or [] for p in pair],
         "--kinematics": [kinematics] + ([Path(kinematics).with_name("kinematics_tracks.json")]
                                         if kinematics else [])
         + ([kinematics_tracks] if kinematics_tracks else [])})
    b: dict = {"title": title or "Permafrost map report", "maps": {}}
    if provenance:
        b["provenance"] = read_json(provenance)
    map_crs = None

    def preview(path, resampling="average"):
        arr, (left, bo, r, t), crs = read_preview(path, max_size=max_size, resampling=resampling)
        return {"array": arr, "extent": [left, r, bo, t], "crs": crs.to_string() if crs else None,
                "source": str(path)}, crs

    if pzi:
        b["maps"]["pzi"], map_crs = preview(pzi)
    if uncertainty:
        b["maps"]["uncertainty"], crs = preview(uncertainty)
        map_crs = map_crs or crs
    if dem:
        b["maps"]["dem"], crs = preview(dem, "bilinear")
        map_crs = map_crs or crs
    if mask:
        mg = read_vector(mask, allow_empty=True)
        if map_crs is not None and mg.crs is not None:
            mg = mg.to_crs(map_crs.to_wkt())
        b["maps"]["mask"] = {"geometries": list(mg.geometry.values), "source": str(mask),
                             "name": Path(mask).stem.replace("_", " ")}
    if stats:
        b["stats"] = read_json(stats)
    if profile:
        b["profile"] = read_json(profile)
    if validation:
        vp = Path(validation)
        vdir = vp if vp.is_dir() else vp.parent
        b["validation"] = read_json(vp / "validation.json" if vp.is_dir() else vp)
        ag = {}
        for p in b["validation"].get("priors", []):
            f = vdir / p.get("agreement_raster", "")
            if p.get("agreement_raster") and f.exists():
                ag[p["name"]], _ = preview(f, "nearest")
        if ag:
            b["maps"]["agreement"] = ag
    if model:
        mp = Path(model)
        b["model"] = read_json(mp / "metadata.json" if mp.is_dir() else mp)
    if kinematics:
        b["kinematics"], kmap = _kinematics_bundle(kinematics, map_crs, activity_column,
                                                   kinematics_tracks)
        if kmap:
            b["maps"]["kinematics"] = kmap
    if labels:
        gdf = _read_output(labels, "label", "labels", map_crs)
        pts = gdf.geometry.representative_point()
        b["labels"] = {"x": pts.x.tolist(), "y": pts.y.tolist(),
                       "label": gdf["label"].astype(int).tolist(),
                       "source": (gdf["source"].astype(str).tolist() if "source" in gdf.columns
                                  else None)}
        # every candidate label kept, held out or dropped, the weights, what InSAR changed
        # and the covariate quantiles (permafrost.workflows.labels, beside the labels)
        acc = accounting_file(labels)
        if acc.exists():
            b["labels_accounting"] = read_json(acc)
    if applicability:
        b["applicability"] = read_json(applicability)
    if labels and (holdout_blocks or holdout_boreholes):
        md = b.get("model") or {}
        parts = (md.get("surface") or {}).get("parts") or {}
        block_m = ((md.get("cv") or {}).get("block_size_m")
                   or next((v.get("block_size_m") for v in parts.values()
                            if v.get("block_size_m")), None))
        b["maps"]["cv"] = _cv_map(gdf, holdout_blocks, holdout_boreholes, block_m, map_crs)
    if gtnp:
        b["ground_thermal"] = _ground_thermal(gtnp)
    if covariates and labels and (response_models or model):
        b["response"] = _response_curves(response_models or {"baseline": model}, covariates,
                                         labels)
    if b.get("profile") and uncertainty and pzi and dem:
        bw = (b["profile"].get("meta") or {}).get("band_width_m") or 200.0
        b["profile"]["fold_spread"] = _profile_spread(pzi, uncertainty, dem, mask, bw)
    if scenarios:
        b["scenarios"] = {n: read_json(p) for n, p in scenarios.items()}
    if scenario_changes:
        b["scenario_changes"] = read_json(scenario_changes)
    if scenario_runs:
        b["scenario_runs"] = {}
        for n, r in scenario_runs.items():
            run = {"applicability": read_json(r["applicability"]) if r.get("applicability")
                   else {}}
            if r.get("model"):  # each run's model is cross-validated; present-day runs are
                cv = ((read_json(r["model"]).get("cv") or {}).get("spatial") or {})  # validated
                run["cv_auc"] = ((cv.get("summary") or {}).get("auc") or {}).get("mean")
            if r.get("validation"):
                rows = (read_json(r["validation"]).get("boreholes") or {}).get("table") or []
                row = next((x for x in rows if x.get("kind") == "pzi"), None)
                if row:
                    run["holdout"] = {k: row.get(k) for k in ("n", "auc", "kappa", "brier")}
            b["scenario_runs"][n] = run
        b["maps"]["scenarios"] = {n: preview(r["pzi"])[0] for n, r in scenario_runs.items()
                                  if r.get("pzi")}
    atomic_write_text(out_html, render_report(b))
    js = report_json(b)
    if out_json:
        write_json(js, out_json)
    return js
