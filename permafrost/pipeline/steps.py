"""The steps of a pipeline run (the catalogue): adapters from the configuration to the
workflows.

Each step declares what its key depends on (its options, its input files, upstream steps)
and calls one library function that writes into the step's own directory.  No science
here: the rules live in the modules the steps call.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from permafrost.area import ZoneStatistics, compare_scenarios, method_sensitivity, reference_gate
from permafrost.config import (
    BASELINE,
    REFERENCE,
    CovariateChange,
    PipelineConfig,
    describe_scenarios,
    is_method_variant,
    pipeline_dir,
    scenario_delta_t,
    track_files,
)
from permafrost.defaults import CHUNK
from permafrost.errors import DataError, format_message
from permafrost.io.rasters import RASTER_SUFFIXES
from permafrost.io.results import read_json, write_json
from permafrost.kinematics import KinematicsConfig
from permafrost.labels import (
    NoLabelsError,
)
from permafrost.model_kinds import kind_params
from permafrost.options import offset_bound
from permafrost.pipeline.spec import StepContext, StepSpec
from permafrost.provenance import file_digest, relative_path, versions
from permafrost.validation import PriorSpec
from permafrost.warming import cross_section_warning
from permafrost.workflows.applicability import predict_with_applicability
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.kinematics import run_kinematics, track_summaries
from permafrost.workflows.labels import LabelFiles, training_labels_from_files
from permafrost.workflows.report import report_from_files
from permafrost.workflows.stats import profile_from_files, stats_from_files, write_stats
from permafrost.workflows.train import train_from_files
from permafrost.workflows.validate import validate_from_files
from permafrost.workflows.warming import physical_loss, spread_for_warming, warm_pzi_raster

__all__ = ["STEPS", "STEP_NAMES", "covariates_for_scenario"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# helpers


def _outlines(cfg: PipelineConfig) -> Path | None:
    if cfg.inputs.outlines is not None:
        return cfg.inputs.outlines
    return cfg.inputs.inventories[0] if cfg.inputs.inventories else None


def _grid_raster(cfg: PipelineConfig) -> Path | None:
    """The reference grid of the labels: the DEM, else the first raster of a covariate
    directory (the one whose grid :func:`permafrost.workflows.covariates.build_stack`
    takes)."""
    if cfg.inputs.dem is not None:
        return cfg.inputs.dem
    cov = cfg.inputs.covariates
    if cov.is_dir():
        rasters = sorted(p for p in cov.iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
        return rasters[0] if rasters else None
    return None


def covariates_for_scenario(covariates: Path, changes: dict[str, CovariateChange], *,
                            chunk: int = CHUNK):
    """The covariate stack with a scenario's changes applied (lazily).

    An ``offset`` is added (e.g. MAAT + 2 °C), a ``scale`` multiplies, a ``file`` replaces
    the input by another raster aligned to the stack's grid (bilinear).  In a stack file
    the changes apply to the inputs, so derived covariates are recomputed from them
    (:func:`permafrost.workflows.covariates.build_stack`).

    Parameters
    ----------
    covariates : path-like
        A covariate directory or stack file.
    changes : mapping of str to CovariateChange
        The scenario's changes by input name (empty: today's covariates).
    chunk : int
        Side of the square Dask chunks [pixels].
    """
    return build_stack(covariates, chunks=chunk, changes=changes)


# ---------------------------------------------------------------------------------------
# kinematics


def _kin_enabled(cfg: PipelineConfig) -> bool:
    return cfg.kinematics.enabled and bool(cfg.inputs.tracks) and _outlines(cfg) is not None


def _kin_inputs(cfg, ch):
    # a track is keyed by the files it reads, not by its whole folder (a MintPy work folder
    # holds the time series and interferograms too: gigabytes the step never opens)
    return {"tracks": [_track_key(t) for t in cfg.inputs.tracks], "outlines": _outlines(cfg),
            "dem": cfg.inputs.dem}


def _track_key(track) -> dict[str, Any]:
    f = track_files(track)
    return {"name": f.name, **{k: getattr(f, k) for k in ("velocity", "geometry", "coherence",
                                                          "mask")}}


def _kin_run(ctx: StepContext):
    cfg = ctx.config
    kc = KinematicsConfig(min_sensitivity=cfg.kinematics.sensitivity_cut,
                          min_coherence=cfg.kinematics.min_coherence)
    outlines = _outlines(cfg)
    assert outlines is not None  # the step runs only with outlines (_kin_enabled)
    res = run_kinematics([track_files(t) for t in cfg.inputs.tracks], outlines,
                         out=ctx.workdir / "kinematics.gpkg", dem=cfg.inputs.dem, config=kc)
    counts = res.outlines["kin_activity"].value_counts().to_dict()
    # per-track pixel masks and what each track is (period, reference point, velocity
    # range), for the report
    write_json({"tracks": res.pixel_counts,
                "summaries": track_summaries([track_files(t) for t in cfg.inputs.tracks])},
               ctx.workdir / "kinematics_tracks.json")
    return {"kinematics": "kinematics.gpkg", "tracks": "kinematics_tracks.json"}, {
        "outlines": len(res.outlines),
                                               "activity": {k: int(v) for k, v in counts.items()}}


# ---------------------------------------------------------------------------------------
# labels


def _labels_inputs(cfg, ch):
    inp = cfg.inputs
    return {"inventories": list(inp.inventories), "boreholes": inp.boreholes,
            "borehole_columns": inp.borehole_columns.mapping(), "borehole_crs": inp.borehole_crs,
            "gtnp": inp.gtnp.model_dump() if inp.gtnp else None, "grid": _grid_raster(cfg),
            "dem": inp.dem,
            # the labels' covariate quantiles against the landscape's (the accounting), and
            # the hold-out's block size follows the covariates' autocorrelation range
            "covariates": inp.covariates}


def _labels_options(cfg, ch):
    v = cfg.validate_
    holdout = {"fraction": v.holdout_fraction, "block_m": v.holdout_block_m,
               "cv_block_m": cfg.train.block_size_m, "drops": "every source"} \
        if _holds_out(cfg) else None
    # the covariates of the accounting's quantiles and of the hold-out's range
    return {"labels": cfg.labels.model_dump(mode="json"), "holdout": holdout,
            "features": cfg.train.features}


def _holds_out(cfg: PipelineConfig) -> bool:
    return (cfg.validate_.enabled and cfg.validate_.holdout_fraction > 0
            and cfg.inputs.boreholes is not None and cfg.inputs.validation_boreholes is None)


def _labels_keeping_reasons(ctx: StepContext, fn, **kwargs):
    """``fn(**kwargs)``; when no label is left, the reasons (summary, dropped inputs,
    temperature verdicts) are copied out of the step's working directory, which a failed
    step does not keep, to ``<output_dir>/<scenario>/labels_reasons/``, and the message
    says so."""
    try:
        return fn(**kwargs)
    except NoLabelsError as exc:
        if exc.written:
            keep = ctx.config.pipeline.output_dir / ctx.scenario / "labels_reasons"
            keep.mkdir(parents=True, exist_ok=True)
            for f in exc.written:
                shutil.copyfile(f, keep / f.name)
            exc.fix = (f"{exc.base_fix}; reasons written to "
                       f"{', '.join(f.name for f in exc.written)} in {keep}")
            exc.args = (format_message(exc.problem, path=exc.path, field=exc.field,
                                       fix=exc.fix),)
        raise


def _borehole_options(cfg: PipelineConfig, path) -> dict:
    """How to read a borehole table of this pipeline: the column names and CRS given for the
    file it is (``boreholes``, its held-out rows, or ``validation_boreholes``); none for a
    hold-out GeoPackage written from a CSV table in the standard columns."""
    inp = cfg.inputs
    if path is not None and inp.validation_boreholes is not None \
            and Path(path) == inp.validation_boreholes:
        return {"columns": inp.validation_borehole_columns.mapping(),
                "crs": inp.validation_borehole_crs}
    src_csv = inp.boreholes is not None and inp.boreholes.suffix.lower() == ".csv"
    if path is None or Path(path) == inp.boreholes or Path(path).suffix.lower() == ".csv" \
            or not src_csv:
        # the input, or its held-out rows unchanged (CSV rows of a CSV, features of a vector)
        return {"columns": inp.borehole_columns.mapping(), "crs": inp.borehole_crs}
    return {"columns": None, "crs": None}


def _labels_run(ctx: StepContext):
    cfg, opts = ctx.config, ctx.config.labels
    wd = ctx.workdir
    kin = ctx.upstream["kinematics"].output("kinematics") \
        if opts.use_kinematics and "kinematics" in ctx.upstream else None
    holds = _holds_out(cfg)
    res = _labels_keeping_reasons(
        ctx, training_labels_from_files,
        out=wd / "labels.gpkg",
        files=LabelFiles(labels=wd / "labels.gpkg", activity=wd / "rock_glaciers_activity.gpkg",
                         holdout=wd / "boreholes_holdout.csv",
                         holdout_blocks=wd / "holdout_blocks.gpkg",
                         candidates=wd / "labels_candidates.csv",
                         accounting=wd / "labels_accounting.json"),
        inventories=list(cfg.inputs.inventories),
        boreholes=[cfg.inputs.boreholes] if cfg.inputs.boreholes else [],
        gtnp=[(cfg.inputs.gtnp.csv, cfg.inputs.gtnp.metadata)] if cfg.inputs.gtnp else [],
        grid=_grid_raster(cfg), dem=cfg.inputs.dem,
        borehole_columns=cfg.inputs.borehole_columns.mapping(),
        borehole_crs=cfg.inputs.borehole_crs,
        kinematics=kin, outlines=_outlines(cfg) if kin is not None else None,
        holdout_fraction=cfg.validate_.holdout_fraction if holds else 0.0,
        holdout_block_m=cfg.validate_.holdout_block_m, block_size=cfg.train.block_size_m,
        seed=ctx.seed, covariates=cfg.inputs.covariates, features=cfg.train.features,
        activity_column=opts.activity_column, sampling=opts.sampling, spacing_m=opts.spacing_m,
        borehole_weight=opts.borehole_weight, rock_glacier_weight=opts.rock_glacier_weight,
    )
    ls, held_info = res.labels, res.holdout
    _rewrite_portable(wd / "labels_accounting.json", cfg)
    pts = ls.points
    summary = {"points": len(pts), "permafrost": int((pts["label"] == 1).sum()),
               "no_permafrost": int((pts["label"] == 0).sum()),
               "by_source": {k: int(v) for k, v in pts["source"].value_counts().items()},
               "dropped": len(ls.dropped), "conflicts": len(ls.conflicts)}
    outputs = {"labels": "labels.gpkg", "summary": "labels_summary.csv",
               "candidates": "labels_candidates.csv", "accounting": "labels_accounting.json"}
    if "activity" in res.files:
        outputs["activity"] = "rock_glaciers_activity.gpkg"
    if held_info is not None:
        outputs["holdout"] = res.files["holdout"].name
        outputs["holdout_blocks"] = "holdout_blocks.gpkg"
        summary["held_out_boreholes"] = held_info["boreholes"]
        summary["holdout"] = held_info
    return outputs, summary


# ---------------------------------------------------------------------------------------
# train


def _cv_block_size(ctx: StepContext) -> tuple[float | None, str | None]:
    """The CV block side and its rule: the one given, else the one the labels step chose
    for its hold-out on all labels (one blocking for both), else None (train_model derives
    it from the training labels)."""
    if ctx.config.train.block_size_m is not None:
        return ctx.config.train.block_size_m, None
    held = (ctx.upstream["labels"].summary or {}).get("holdout") or {}
    if held.get("cv_block_m") is None:
        return None, None
    return held["cv_block_m"], f"{held['cv_block_rule']}, all labels before the hold-out"


def _train_run(ctx: StepContext):
    t = ctx.config.train
    trained = train_from_files(
        ctx.upstream["labels"].output("labels"), ctx.config.inputs.covariates,
        ctx.workdir / "model", model=t.model, device=t.device, seed=ctx.seed, folds=t.folds,
        block_size=_cv_block_size(ctx)[0], block_size_rule=_cv_block_size(ctx)[1],
        calibration=t.calibration, features=t.features,
        prevalence=t.prevalence, prevalence_source=t.prevalence_source, level=t.level,
        surface=t.surface, debris_classes=t.debris_classes,
        params=kind_params(t.model, n_estimators=t.n_estimators, monotone=dict(t.monotone)),
    )
    model = trained.model
    meta = model.metadata
    cv = meta.get("cv", {})
    summary = {"model": t.model, "device": meta.get("device"), "features": model.feature_names,
               "cv": {k: cv.get(k) for k in ("spatial", "random") if k in cv}}
    lev = (meta.get("calibration") or {}).get("level") or {}
    if lev:  # what the PZI's level rests on (permafrost.level), and its warning
        summary["level"] = lev.get("rests_on")
    if meta.get("surface"):  # the surface-aware model (permafrost.surface)
        summary["surface"] = {"mode": meta["surface"]["mode"],
                              "parts": {p: v["rests_on"]
                                        for p, v in meta["surface"]["parts"].items()}}
    warns = ([lev["warning"]] if lev.get("warning") else []) + list(meta.get("warnings") or [])
    if warns:
        summary["warnings"] = list(dict.fromkeys(warns))
    return {"model": "model/metadata.json"}, json.loads(json.dumps(summary, default=str))


# ---------------------------------------------------------------------------------------
# predict


def _predict_options(cfg, ch):
    p = cfg.predict
    out = {"chunk": p.chunk, "device": p.device, "zones": p.zones, "uncertainty": p.uncertainty,
           "covariate_changes": {k: v.model_dump(mode="json", exclude_none=True,
                                                 exclude={"file"}) for k, v in sorted(ch.items())}}
    if ch:  # a changed climate: how its map is made (physical: from the baseline's map)
        out["scenario_method"] = cfg.scenario_method.model_dump(mode="json")
        if cfg.physical():  # the chunk does not change the warmed map's bytes
            out = {k: v for k, v in out.items() if k not in ("device", "uncertainty")}
    return out


def _predict_inputs(cfg, ch):
    return {"covariates": cfg.inputs.covariates, "mask": cfg.inputs.mask,
            "landcover": cfg.inputs.landcover,
            "changed_files": {k: v.file for k, v in sorted(ch.items()) if v.file is not None}}


def _baseline_record(ctx: StepContext, step: str, run: str = BASELINE):
    rec = (ctx.scenarios.get(run) or {}).get(step)
    if rec is None:
        raise DataError(f"the {ctx.scenario!r} scenario needs the {run}'s {step} step, which "
                        "did not run in this call", field="--only",
                        fix=f"run the {run} with it (leave out --only, or run {step} for all)")
    return rec


def _physical_run(ctx: StepContext):
    """A warming scenario of the physical method: the baseline's validated map warmed
    through ground temperature (permafrost.workflows.warming)."""
    cfg, p, opts = ctx.config, ctx.config.predict, ctx.config.scenario_method
    base = _baseline_record(ctx, "predict")
    labels = (ctx.scenarios.get(BASELINE) or {}).get("labels")
    spread = spread_for_warming(base.output("pzi"),
                                labels.output("labels") if labels is not None else None,
                                sigma=opts.sigma_c, min_records=opts.min_magt_records,
                                seed=ctx.seed)
    (changed, change), = ctx.covariate_changes.items()
    assert change.offset is not None  # a physical scenario is an offset (config checks it)
    cov = changed.split(".")[0]  # a coarse grid's offset ("maat.coarse") warms its MAAT
    res = warm_pzi_raster(base.output("pzi"), cfg.inputs.covariates, ctx.workdir / "pzi.tif",
                          delta_t=change.offset, covariate=cov, amplitude=opts.amplitude_c,
                          sigma=spread["sigma_c"], sigma_interval=tuple(spread["interval_c"]),
                          zones=ctx.workdir / "zones.tif" if p.zones else None, chunk=p.chunk)
    info = {"run": ctx.scenario, "method": "physical", **res.as_dict(),
            "sigma": {k: v for k, v in spread.items() if k != "warning"},
            "amplitude_c": opts.amplitude_c, "covariate": cov}
    warnings = [spread["warning"]] if spread["warning"] else []
    if res.cells_raised:
        warnings.append(f"{res.cells_raised} cells gained PZI on warming")
    for w in warnings:
        log.warning("%s: %s", ctx.scenario, w)
    info["warnings"] = warnings
    write_json(_portable(info, cfg), ctx.workdir / "warming.json")
    # what the report reads of each run (as the applicability.json of a model's run)
    a = res.areas_km2
    write_json({"run": ctx.scenario, "delta_t": scenario_delta_t(cfg, ctx.scenario),
                "model": "physical (TTOP shift of the baseline map)", "features": [cov],
                "method": "physical",
                "pzi_weighted_km2_interval": {"low": a["low"], "central": a["central"],
                                              "high": a["high"]},
                "extrapolation": None, "support": None,
                "warnings": [{"kind": "physical", "message": w} for w in warnings]},
               ctx.workdir / "applicability.json")
    outputs = {"pzi": "pzi.tif", "warming": "warming.json", "applicability": "applicability.json"}
    if p.zones:
        outputs["zones"] = "zones.tif"
        if (ctx.workdir / "zones.tif.aux.xml").exists():
            outputs["zone_names"] = "zones.tif.aux.xml"
    a = res.areas_km2
    summary = {"method": "physical", "sigma_c": round(spread["sigma_c"], 4),
               "sigma_source": spread["source"],
               "sensitivity_median": round(res.sensitivity["median_value"], 4),
               # the PZI-weighted area's interval, as shares of its central value (the stats
               # step scales its own area by them)
               "area_interval_ratio": [a["low"] / a["central"] if a["central"] else None,
                                       a["high"] / a["central"] if a["central"] else None]}
    if warnings:
        summary["warnings"] = warnings
    return _with_styles(ctx.workdir, outputs), summary


def _with_styles(workdir: Path, outputs: dict) -> dict:
    """``outputs`` and, for each raster among them, its QGIS style (``<stem>.qml`` beside it,
    :func:`permafrost.io.styles.write_raster_style`), published with it."""
    for label, name in list(outputs.items()):
        style = (workdir / name).with_suffix(".qml")
        if name.endswith(".tif") and style.is_file():
            outputs[f"{label}_style"] = style.name
    return outputs


#: said of every cross-section scenario (issue 23): what its sensitivity cannot see
CROSS_SECTION_NOTE = ("cross-section scenario: its response to warming is learnt across space "
                      "(space for time); drivers that vary with elevation and are not in the "
                      "stack (snow, vegetation, debris) stay inside the MAAT coefficient")


def _cross_section_check(ctx: StepContext, pzi: Path) -> list[str]:
    """The cross-section's note and, where the baseline's map is there, its loss of
    PZI-weighted area against the physical expectation (warned past the factor)."""
    warnings = [CROSS_SECTION_NOTE]
    cfg = ctx.config
    offs = [(c, ch.offset) for c, ch in ctx.covariate_changes.items()
            if ch.offset is not None and ch.scale is None and ch.file is None
            and offset_bound(c).name == "maat_offset"]
    base = (ctx.scenarios.get(BASELINE) or {}).get("predict")
    if len(offs) != 1 or len(ctx.covariate_changes) != 1 or base is None or not offs[0][1]:
        return warnings
    cov, dt = offs[0]
    opts = cfg.scenario_method
    labels = (ctx.scenarios.get(BASELINE) or {}).get("labels")
    spread = spread_for_warming(base.output("pzi"),
                                labels.output("labels") if labels is not None else None,
                                sigma=opts.sigma_c, min_records=opts.min_magt_records,
                                seed=ctx.seed)
    a0, a1 = physical_loss(base.output("pzi"), cfg.inputs.covariates, delta_t=dt,
                           covariate=cov, amplitude=opts.amplitude_c, sigma=spread["sigma_c"],
                           chunk=cfg.predict.chunk)
    ref = (ctx.scenarios.get(REFERENCE) or {}).get("predict") or base
    r0 = physical_loss(ref.output("pzi"), cfg.inputs.covariates, delta_t=0.0, covariate=cov,
                       chunk=cfg.predict.chunk)[0]
    c1 = physical_loss(pzi, cfg.inputs.covariates, delta_t=0.0, covariate=cov,
                       chunk=cfg.predict.chunk)[0]
    phys, cross = (a0 - a1) / a0 if a0 else 0.0, (r0 - c1) / r0 if r0 else 0.0
    w = cross_section_warning(cross, phys, dt, factor=opts.warn_factor)
    if w:
        warnings.append(w)
    return warnings


def _predict_run(ctx: StepContext):
    if ctx.covariate_changes and ctx.config.physical():
        return _physical_run(ctx)
    p = ctx.config.predict
    model_dir = ctx.upstream["train"].output("model").parent
    ds = covariates_for_scenario(ctx.config.inputs.covariates, ctx.covariate_changes,
                                 chunk=p.chunk)
    # the PZI and its applicability check in one pass over the map, applicability.json
    # written as `permafrost predict --applicability` writes it
    res, app = predict_with_applicability(
        model_dir, ds, ctx.workdir / "pzi.tif",
        zones=ctx.workdir / "zones.tif" if p.zones else None,
        uncertainty=ctx.workdir / "pzi_uncertainty.tif" if p.uncertainty else None,
        mask=ctx.config.inputs.mask, chunk=p.chunk, device=p.device, workers=p.workers,
        cache_dir=ctx.workdir / ".blocks", changes=ctx.covariate_changes,
        out_map=ctx.workdir / "extrapolation.tif", landcover=ctx.config.inputs.landcover,
        out_support=ctx.workdir / "support.tif",
        out_json=ctx.workdir / "applicability.json", json_extra=_applicability_context(ctx),
    )
    outputs = {"pzi": "pzi.tif"}
    if p.zones:
        outputs["zones"] = "zones.tif"
        if (ctx.workdir / "zones.tif.aux.xml").exists():  # zone names for QGIS & co.
            outputs["zone_names"] = "zones.tif.aux.xml"
    if p.uncertainty:
        outputs["uncertainty"] = "pzi_uncertainty.tif"
    summary = {"device": res.device, "backend": res.backend, "pixels": res.pixels,
               "valid": res.valid, "masked": res.masked, "missing": res.missing,
               "unseen_class": res.unseen_class}
    app = _applicability_log(ctx, {**_applicability_context(ctx), **app.as_dict()})
    outputs["applicability"] = "applicability.json"
    if (ctx.workdir / "extrapolation.tif").exists():
        outputs["extrapolation"] = "extrapolation.tif"
    if (ctx.workdir / "support.tif").exists():
        outputs["support"] = "support.tif"
    ext = app.get("extrapolation") or {}
    if ext.get("outside_share") is not None:
        summary["outside_training_range"] = round(ext["outside_share"], 4)
    sup = app.get("support") or {}
    if sup.get("unsupported_share") is not None:
        summary["unsupported_by_labels"] = round(sup["unsupported_share"], 4)
    if app["warnings"]:
        summary["warnings"] = [w["message"] for w in app["warnings"]]
    if ctx.covariate_changes and not ctx.config.physical():
        cross = _cross_section_check(ctx, ctx.workdir / "pzi.tif")
        for w in cross:
            log.warning("%s: %s", ctx.scenario, w)
        summary["warnings"] = [*summary.get("warnings", []), *cross]
        app_path = ctx.workdir / "applicability.json"
        app = read_json(app_path)
        app["method"] = "cross-section"
        app["warnings"] = [*app.get("warnings", []),
                           *({"kind": "cross_section", "message": w} for w in cross)]
        write_json(app, app_path)
    return _with_styles(ctx.workdir, outputs), summary


def _applicability_context(ctx: StepContext) -> dict:
    """The run's keys of ``applicability.json``, before the check's
    (:func:`permafrost.workflows.applicability.predict_with_applicability`)."""
    return {"run": ctx.scenario, "delta_t": scenario_delta_t(ctx.config, ctx.scenario),
            "changes": {k: v.model_dump(mode="json", exclude_none=True)
                        for k, v in sorted(ctx.covariate_changes.items())}}


def _applicability_log(ctx: StepContext, out: dict) -> dict:
    """Log what this run's map can be trusted for (``applicability.json``'s content)."""
    if out["extrapolation"] is None:
        log.warning("%s: the model records no training ranges; retrain it to map where "
                    "the covariates leave them", ctx.scenario)
    for w in out["warnings"]:
        log.warning("%s: %s", ctx.scenario, w["message"])
    return out


# ---------------------------------------------------------------------------------------
# stats


def _stats_inputs(cfg, ch):
    inp = cfg.inputs
    return {"regions": inp.regions.path if inp.regions else None, "dem": inp.dem, "mask": inp.mask}


def _stats_run(ctx: StepContext):
    cfg = ctx.config
    res = stats_from_files(
        ctx.upstream["predict"].output("pzi"),
        regions_path=cfg.inputs.regions.path if cfg.inputs.regions else None,
        region_field=cfg.inputs.regions.field if cfg.inputs.regions else "name",
        dem_path=cfg.inputs.dem, band_width=cfg.stats.band_width_m, mask_path=cfg.inputs.mask,
    )
    outputs = {"stats": "stats.json", "table": "stats.csv"}
    summary: dict[str, Any] = {}
    if cfg.inputs.dem is not None:
        # the PZI-elevation profile by aspect and the lower limit of permafrost, with the
        # falls of the PZI above the highest training label (permafrost.area.profile);
        # profile.json beside stats.json, whose meta names it and carries its warning
        labels = ctx.upstream["labels"].output("labels") if "labels" in ctx.upstream else None
        if (ctx.upstream["predict"].summary or {}).get("method") == "physical":
            # a warmed baseline map: its model's fall above the highest label is the
            # baseline's to report; here the profile follows each surface's sensitivity
            labels = None
        prof = profile_from_files(ctx.upstream["predict"].output("pzi"), cfg.inputs.dem,
                                  band_width=cfg.stats.band_width_m, mask_path=cfg.inputs.mask,
                                  labels_path=labels)
        write_json(_portable(prof.as_dict(), cfg), ctx.workdir / "profile.json")
        outputs["profile"] = "profile.json"
        summary["lower_limit_m"] = {c: prof.lower_limits[c]["elevation_m"]
                                    for c in ("all", "north", "south")}
        res.meta["profile"] = {"file": "profile.json", "lower_limit_m": summary["lower_limit_m"],
                               "highest_label_m": prof.meta["highest_label_m"],
                               "warnings": prof.warnings}
        if prof.warnings:
            summary["warnings"] = prof.warnings
    # paths relative to the pipeline file, as in the manifest
    whole = res.whole
    ratio = (ctx.upstream["predict"].summary or {}).get("area_interval_ratio")
    interval = None
    if ratio and None not in ratio:  # physical method: n-factor ranges and sigma interval
        interval = [whole["pzi_weighted_km2"] * ratio[0], whole["pzi_weighted_km2"] * ratio[1]]
        res.meta["pzi_weighted_km2_interval"] = {
            "low": interval[0], "high": interval[1],
            "rule": "the physical method's warmed map with the n-factor ranges and the sigma "
                    "interval together (most loss: high n-factors, low sigma)"}
    res = ZoneStatistics(units=_portable(res.units, cfg), meta=_portable(res.meta, cfg))
    write_stats(res, out_json=ctx.workdir / "stats.json", out_csv=ctx.workdir / "stats.csv")
    summary = {
        "pzi_ge_0.5_km2": whole["pzi_ge_0.5_km2"], "fraction_pzi_ge_0.5": whole["fraction_pzi_ge_0.5"],
        "pzi_weighted_km2": whole["pzi_weighted_km2"], "denominator_km2": whole["denominator_km2"],
        **summary}
    if interval is not None:
        summary["pzi_weighted_km2_interval"] = [round(v, 3) for v in interval]
    return outputs, summary


# ---------------------------------------------------------------------------------------
# validate (baseline only: today's boreholes and maps say nothing about a warmer climate)


def _validate_enabled(cfg: PipelineConfig) -> bool:
    inp = cfg.inputs
    return cfg.validate_.enabled and bool(inp.validation_boreholes or inp.boreholes or inp.priors)


def _validate_inputs(cfg, ch):
    inp = cfg.inputs
    return {"boreholes": inp.validation_boreholes or inp.boreholes,
            "borehole_read": _borehole_options(cfg, inp.validation_boreholes or inp.boreholes),
            "priors": [p.model_dump() for p in inp.priors], "mask": inp.mask}


def _validate_run(ctx: StepContext):
    inp = ctx.config.inputs
    labels = ctx.upstream.get("labels")
    boreholes = (labels.outputs.get("holdout") if labels else None) or \
        inp.validation_boreholes or (None if _holds_out(ctx.config) else inp.boreholes)
    priors = [PriorSpec(name=p.name, path=p.path, kind=p.kind,
                        permafrost_codes=tuple(p.permafrost_codes),
                        other_codes=None if p.other_codes is None else tuple(p.other_codes),
                        threshold=p.threshold)
              for p in inp.priors]
    read = _borehole_options(ctx.config, boreholes) if boreholes is not None else {}
    res = validate_from_files(ctx.upstream["predict"].output("pzi"),
                              boreholes_path=boreholes,
                              boreholes_columns=read.get("columns"),
                              boreholes_crs=read.get("crs"),
                              priors=priors, out_dir=ctx.workdir / "validation",
                              mask_path=inp.mask, seed=ctx.seed,
                              bootstrap_resamples=ctx.config.validate_.bootstrap_resamples,
                              ci_level=ctx.config.validate_.ci_level,
                              model_path=ctx.upstream["train"].output("model")
                              if "train" in ctx.upstream else None)
    _rewrite_portable(ctx.workdir / "validation" / "validation.json", ctx.config)
    rows = (res.boreholes or {}).get("table") or []
    model_row: dict[str, Any] = next((r for r in rows if r.get("kind") == "pzi"), {})
    heads = ("n", "auc", "balanced_accuracy", "kappa", "brier")
    summary: dict[str, Any] = {k: model_row.get(k) for k in heads if k in model_row}
    for k, iv in (model_row.get("ci") or {}).items():  # bootstrap intervals of the headline
        if k in ("auc", "balanced_accuracy", "kappa", "brier") and iv.get("low") is not None:
            summary[f"{k}_ci"] = [round(iv["low"], 4), round(iv["high"], 4)]
    if res.warnings:  # transfer: held-out skill at chance or far below the CV skill
        summary["warnings"] = res.warnings
    return {"validation": "validation/validation.json"}, json.loads(json.dumps(summary, default=str))


# ---------------------------------------------------------------------------------------
# report (one for all scenarios)


def _report_run(ctx: StepContext):
    base = ctx.scenarios.get(BASELINE, {})
    provenance = {
        "pipeline": ctx.config.pipeline.name,
        # its name and content hash, not where the checkout lives
        "pipeline file": _source_text(ctx.config.source),
        "seed": ctx.seed,
        "device (train / predict)": " / ".join(
            str(base[s].summary.get("device")) for s in ("train", "predict") if s in base),
        "step keys (baseline)": ", ".join(f"{n} {r.key[:12]}" for n, r in base.items()),
        "scenarios": ", ".join(f"{n}: {sc.description or 'changes'}"
                               for n, sc in ctx.config.scenarios.items()
                               if n in ctx.scenarios) or "none",
        "held-out boreholes": base["labels"].summary.get("held_out_boreholes")
        if "labels" in base else None,
        "versions": ", ".join(f"{k} {v}" for k, v in versions().items()),
    }
    write_json(provenance, ctx.workdir / "provenance.json")
    scen = {sc: recs["stats"].output("stats") for sc, recs in ctx.scenarios.items() if "stats" in recs}
    descriptions = {name: sc.description for name, sc in ctx.config.scenarios.items()}
    changes = None
    warnings: list[str] = []
    gate_state = None
    if len(scen) > 1 and BASELINE in scen:
        changes = ctx.workdir / "scenario_changes.json"
        # with a scenario model, changes are measured against it on today's covariates
        ref = REFERENCE if REFERENCE in scen else BASELINE
        stats = {n: ZoneStatistics.from_dict(read_json(p)) for n, p in scen.items()}
        # option-only runs (model, features, sampling) are method sensitivity: compared with
        # the baseline in their own table, not with the scenario model's reference
        method = [n for n in stats if is_method_variant(ctx.config, n)]
        cmp = compare_scenarios({n: st for n, st in stats.items() if n not in method},
                                baseline=ref)
        cmp["method_runs"] = method
        if method:
            ms = method_sensitivity(_run_figures(ctx, BASELINE, stats),
                                    {n: {**_run_figures(ctx, n, stats),
                                         "changes": _changes_of(ctx.config, n)}
                                     for n in method})
            try:  # per zone and region, where the runs map the same cells
                ms["compared"] = compare_scenarios({n: stats[n] for n in [BASELINE, *method]},
                                                   baseline=BASELINE)["scenarios"]
            except DataError as exc:  # e.g. a feature set without a categorical covariate
                ms["compared"] = None  # maps cells the baseline leaves out (unseen class)
                ms["compared_note"] = exc.problem
            cmp["method_sensitivity"] = ms
        if REFERENCE in stats:
            gate = reference_gate(_run_figures(ctx, BASELINE, stats),
                                  _run_figures(ctx, REFERENCE, stats))
            cmp["reference_gate"] = gate
            gate_state = {True: "passed", False: "failed", None: "not checked"}[gate["passed"]]
            for w in gate["warnings"]:
                log.warning("%s: %s", REFERENCE, w)
            warnings += gate["warnings"]
        # the physical method's interval of the PZI-weighted area (n-factors, sigma)
        cmp["pzi_weighted_km2_interval"] = {
            n: st.meta["pzi_weighted_km2_interval"] for n, st in stats.items()
            if st.meta.get("pzi_weighted_km2_interval")}
        cmp["method"] = ctx.config.scenario_method.method
        write_json(cmp, changes)
    report_from_files(
        out_html=ctx.workdir / "report.html", out_json=ctx.workdir / "report.json",
        title=ctx.config.report.title or f"Permafrost map: {ctx.config.pipeline.name}",
        pzi=base["predict"].output("pzi") if "predict" in base else None,
        dem=ctx.config.inputs.dem,
        stats=base["stats"].output("stats") if "stats" in base else None,
        profile=base["stats"].outputs.get("profile") if "stats" in base else None,
        validation=base["validate"].output("validation") if "validate" in base else None,
        model=base["train"].output("model") if "train" in base else None,
        labels=base["labels"].output("labels") if "labels" in base else None,
        provenance=ctx.workdir / "provenance.json",
        scenarios=scen if len(scen) > 1 else None,
        scenario_changes=changes,
        scenario_runs={sc: {"pzi": recs["predict"].output("pzi"),
                            "applicability": recs["predict"].outputs.get("applicability"),
                            "model": recs["train"].output("model") if "train" in recs else None,
                            "validation": recs["validate"].output("validation")
                            if "validate" in recs else None}
                       for sc, recs in ctx.scenarios.items() if "predict" in recs}
        if len(scen) > 1 else None,
        uncertainty=base["predict"].outputs.get("uncertainty") if "predict" in base else None,
        # the activity InSAR gave each outline, and what it changed (labels step), else
        # the kinematics alone
        kinematics=(base["labels"].outputs.get("activity") if "labels" in base else None)
        or (base["kinematics"].output("kinematics") if "kinematics" in base else None),
        kinematics_tracks=(base["kinematics"].output("tracks") if "kinematics" in base
                           else None),
        activity_column=ctx.config.labels.activity_column,
        mask=ctx.config.inputs.mask,
        applicability=base["predict"].outputs.get("applicability") if "predict" in base
        else None,
        holdout_blocks=base["labels"].outputs.get("holdout_blocks") if "labels" in base
        else None,
        holdout_boreholes=base["labels"].outputs.get("holdout") if "labels" in base else None,
        # response curves of the baseline model and, where there is one, the scenario model
        covariates=ctx.config.inputs.covariates,
        gtnp=[(ctx.config.inputs.gtnp.csv, ctx.config.inputs.gtnp.metadata)]
        if ctx.config.inputs.gtnp else None,
        response_models={n: recs["train"].output("model")
                         for n, recs in ((BASELINE, base),
                                         (REFERENCE, ctx.scenarios.get(REFERENCE) or {}))
                         if "train" in recs} or None,
    )
    _rewrite_portable(ctx.workdir / "report.json", ctx.config)
    summary = {"scenarios": sorted(scen), "descriptions": descriptions}
    if gate_state is not None:  # the closing line of the report step shows it
        summary["reference_gate"] = gate_state
    if warnings:  # the gate on the scenario model (printed by `permafrost run`)
        summary["warnings"] = warnings
    return {"html": "report.html", "json": "report.json"}, summary


def _run_figures(ctx: StepContext, name: str, stats: dict) -> dict:
    """A run's PZI-weighted areas and held-out skill (its validate step's summary)."""
    whole: dict[str, Any] = next((u for u in stats[name].units if u["unit"] == "all"), {})
    recs = ctx.scenarios.get(name) or {}
    val = (recs["validate"].summary or {}) if "validate" in recs else {}
    return {"pzi_weighted_km2": whole.get("pzi_weighted_km2"),
            "pzi_ge_0.5_km2": whole.get("pzi_ge_0.5_km2"),
            **{k: val.get(k) for k in ("auc", "auc_ci", "brier", "n")}}


def _changes_of(cfg: PipelineConfig, name: str) -> list[str]:
    return next((r["changes"] for r in describe_scenarios(cfg) if r["name"] == name), [])


def _portable(obj: Any, cfg: PipelineConfig) -> Any:
    """``obj`` (JSON-able) with every absolute path string that exists made relative to the
    pipeline file's directory: step outputs that do not name the machine or the checkout."""
    base = pipeline_dir(cfg)

    def walk(o: Any) -> Any:
        if isinstance(o, dict):
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, (list, tuple)):
            return [walk(v) for v in o]
        if isinstance(o, str) and os.path.isabs(o) and os.path.exists(o):
            return relative_path(o, base)
        return o

    return walk(obj)


def _rewrite_portable(path: Path, cfg: PipelineConfig) -> None:
    """Rewrite a JSON output of a library function with :func:`_portable` paths."""
    if path.is_file():
        write_json(_portable(read_json(path), cfg), path)


def _source_text(source: Path | None) -> str:
    """``demo.toml (sha256 1a2b3c4d5e6f)``: the pipeline file without the machine's path."""
    if source is None:
        return "none (built in memory)"
    p = Path(source)
    return f"{p.name} (sha256 {file_digest(p)[:12]})" if p.is_file() else p.name


def _dump(section: str):
    return lambda cfg, ch: getattr(cfg, section).model_dump(mode="json")


STEPS: list[StepSpec] = [
    StepSpec("kinematics", (), _dump("kinematics"), _kin_inputs, _kin_run, enabled=_kin_enabled),
    StepSpec("labels", ("kinematics",), _labels_options, _labels_inputs, _labels_run),
    StepSpec("train", ("labels",), _dump("train"), lambda c, ch: {"covariates": c.inputs.covariates},
             _train_run),
    StepSpec("predict", ("train",), _predict_options, _predict_inputs, _predict_run),
    StepSpec("stats", ("predict", "labels"), _dump("stats"), _stats_inputs, _stats_run),
    StepSpec("validate", ("labels", "train", "predict"), _dump("validate_"), _validate_inputs,
             _validate_run,
             enabled=_validate_enabled, present_only=True),
    StepSpec("report", ("stats",), _dump("report"), lambda c, ch: {"dem": c.inputs.dem},
             _report_run, enabled=lambda c: c.report.enabled, across_scenarios=True),
]

STEP_NAMES = [s.name for s in STEPS]
