"""The steps of a pipeline run: adapters from the configuration to the library functions.

Each step declares what its key depends on (its options, its input files, upstream steps)
and calls one library function that writes into the step's own directory.  No science
here: the rules live in the modules the steps call.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from permafrost.config import BASELINE, CovariateChange, PipelineConfig
from permafrost.pipeline import StepContext, StepSpec

__all__ = ["STEPS", "STEP_NAMES", "covariates_for_scenario"]

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------
# helpers


def _outlines(cfg: PipelineConfig) -> Path | None:
    if cfg.inputs.outlines is not None:
        return cfg.inputs.outlines
    return cfg.inputs.inventories[0] if cfg.inputs.inventories else None


def _grid_raster(cfg: PipelineConfig) -> Path | None:
    """The reference grid of the labels: the DEM, else the first covariate raster."""
    if cfg.inputs.dem is not None:
        return cfg.inputs.dem
    cov = cfg.inputs.covariates
    if cov.is_dir():
        tifs = sorted(p for p in cov.iterdir() if p.suffix.lower() in (".tif", ".tiff"))
        return tifs[0] if tifs else None
    return None


def covariates_for_scenario(covariates: Path, changes: dict[str, CovariateChange], *,
                            chunks: int = 1024):
    """The covariate stack with a scenario's changes applied (lazily).

    An ``offset`` is added (e.g. MAAT + 2 °C), a ``scale`` multiplies, a ``file`` replaces
    the covariate by another raster aligned to the stack's grid (bilinear).
    """
    from permafrost.covariates import align_raster, build_stack
    from permafrost.grid import grid_of

    ds = build_stack(covariates, chunks=chunks)
    for name, ch in sorted(changes.items()):
        da = ds[name]
        if ch.file is not None:
            da = align_raster(ch.file, grid_of(ds), resampling="bilinear", chunks=chunks)
            da = da.rename(name)
        if ch.scale is not None:
            da = da * ch.scale
        if ch.offset is not None:
            da = da + ch.offset
        ds[name] = da.astype("float32")
    return ds


def _scenario_dependent(name: str) -> dict[str, Any]:
    return {"scenario_dependent": name}


# ---------------------------------------------------------------------------------------
# kinematics


def _kin_enabled(cfg: PipelineConfig) -> bool:
    return cfg.kinematics.enabled and bool(cfg.inputs.tracks) and _outlines(cfg) is not None


def _kin_inputs(cfg, ch):
    return {"tracks": list(cfg.inputs.tracks), "outlines": _outlines(cfg), "dem": cfg.inputs.dem}


def _kin_run(ctx: StepContext):
    from permafrost.kinematics import KinematicsConfig, run_kinematics

    cfg = ctx.config
    kc = KinematicsConfig(min_sensitivity=cfg.kinematics.sensitivity_cut,
                          min_coherence=cfg.kinematics.min_coherence)
    res = run_kinematics(cfg.inputs.tracks, _outlines(cfg), out=ctx.workdir / "kinematics.gpkg",
                         dem=cfg.inputs.dem, config=kc)
    counts = res.outlines["kin_activity"].value_counts().to_dict()
    return {"kinematics": "kinematics.gpkg"}, {"outlines": len(res.outlines),
                                               "activity": {k: int(v) for k, v in counts.items()}}


# ---------------------------------------------------------------------------------------
# labels


def _labels_inputs(cfg, ch):
    inp = cfg.inputs
    return {"inventories": list(inp.inventories), "boreholes": inp.boreholes,
            "gtnp": inp.gtnp.model_dump() if inp.gtnp else None, "grid": _grid_raster(cfg),
            "dem": inp.dem}


def _labels_options(cfg, ch):
    v = cfg.validate_
    holdout = {"fraction": v.holdout_fraction, "block_m": v.holdout_block_m} \
        if _holds_out(cfg) else None
    return {"labels": cfg.labels.model_dump(mode="json"), "holdout": holdout}


def _holds_out(cfg: PipelineConfig) -> bool:
    return (cfg.validate_.enabled and cfg.validate_.holdout_fraction > 0
            and cfg.inputs.boreholes is not None and cfg.inputs.validation_boreholes is None)


def _split_boreholes(cfg: PipelineConfig, workdir: Path, seed: int):
    """The training boreholes (read, with their origin) and the held-out ones (a file)."""
    import pandas as pd

    from permafrost.io._atomic import atomic_write_text
    from permafrost.io.boreholes import read_presence_table
    from permafrost.io.vectors import read_vector, write_vector
    from permafrost.labels import holdout_split

    src = cfg.inputs.boreholes
    table = read_presence_table(src)
    train, hold = holdout_split(table, fraction=cfg.validate_.holdout_fraction, seed=seed,
                                block_m=cfg.validate_.holdout_block_m)
    training = table[train].copy()
    training.attrs["source"] = str(src)  # labels name the input, not a working copy
    raw = None
    if src.suffix.lower() == ".csv":  # the held-out rows of the input, unchanged
        raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    if raw is not None and len(raw) == len(table):
        held = workdir / "boreholes_holdout.csv"
        atomic_write_text(held, raw[hold].to_csv(index=False))
    else:
        held = workdir / "boreholes_holdout.gpkg"
        vec = table if raw is not None else read_vector(src)
        write_vector(vec[hold], held, layer="boreholes_holdout")
    return training, held, int(hold.sum())


def _labels_run(ctx: StepContext):
    from permafrost.labels import labels_from_files

    cfg, opts = ctx.config, ctx.config.labels
    inventories = list(cfg.inputs.inventories)
    activity_column = opts.activity_column
    if opts.use_kinematics and "kinematics" in ctx.upstream:
        from permafrost.io.vectors import read_vector, write_vector
        from permafrost.labels import combine_activity

        kin = read_vector(ctx.upstream["kinematics"].output("kinematics"))
        combined = combine_activity(kin, inventory_column=opts.activity_column)
        write_vector(combined, ctx.workdir / "rock_glaciers_activity.gpkg", layer="rock_glaciers")
        combined.attrs["source"] = str(_outlines(cfg))  # labels name the input outlines
        # the kinematics output carries every outline of the first inventory
        inventories = [combined, *inventories[1:]] if _outlines(cfg) == (inventories or [None])[0] \
            else [combined, *inventories]
        activity_column = "activity_evidence"
    boreholes = [cfg.inputs.boreholes] if cfg.inputs.boreholes else []
    holdout = None
    if _holds_out(cfg):
        train_bh, holdout, n_holdout = _split_boreholes(cfg, ctx.workdir, ctx.seed)
        boreholes = [train_bh]
    ls = labels_from_files(
        inventories=inventories,
        boreholes=boreholes,
        gtnp=[(cfg.inputs.gtnp.csv, cfg.inputs.gtnp.metadata)] if cfg.inputs.gtnp else [],
        grid=_grid_raster(cfg), dem=cfg.inputs.dem, out=ctx.workdir / "labels.gpkg",
        activity_column=activity_column, sampling=opts.sampling, spacing_m=opts.spacing_m,
        borehole_weight=opts.borehole_weight, rock_glacier_weight=opts.rock_glacier_weight,
    )
    pts = ls.points
    summary = {"points": len(pts), "permafrost": int((pts["label"] == 1).sum()),
               "no_permafrost": int((pts["label"] == 0).sum()),
               "by_source": {k: int(v) for k, v in pts["source"].value_counts().items()},
               "dropped": len(ls.dropped), "conflicts": len(ls.conflicts)}
    outputs = {"labels": "labels.gpkg", "summary": "labels_summary.csv"}
    if (ctx.workdir / "rock_glaciers_activity.gpkg").exists():
        outputs["activity"] = "rock_glaciers_activity.gpkg"
    if holdout is not None:
        outputs["holdout"] = holdout.name
        summary["held_out_boreholes"] = n_holdout
    return outputs, summary


# ---------------------------------------------------------------------------------------
# train


def _train_run(ctx: StepContext):
    from permafrost.models import train_from_files

    t = ctx.config.train
    model, report = train_from_files(
        ctx.upstream["labels"].output("labels"), ctx.config.inputs.covariates,
        ctx.workdir / "model", model=t.model, device=t.device, seed=ctx.seed, folds=t.folds,
        block_size=t.block_size_m, calibration=t.calibration, features=t.features,
        params=({"n_estimators": t.n_estimators, "monotone_constraints": dict(t.monotone) or None}
                if t.model != "logistic" else None),
    )
    meta = model.metadata
    cv = meta.get("cv", {})
    summary = {"model": t.model, "device": meta.get("device"), "features": model.feature_names,
               "cv": {k: cv.get(k) for k in ("spatial", "random") if k in cv}}
    return {"model": "model/metadata.json"}, json.loads(json.dumps(summary, default=str))


# ---------------------------------------------------------------------------------------
# predict


def _predict_options(cfg, ch):
    p = cfg.predict
    return {"chunk": p.chunk, "device": p.device, "zones": p.zones, "uncertainty": p.uncertainty,
            "covariate_changes": {k: v.model_dump(mode="json", exclude_none=True,
                                                  exclude={"file"}) for k, v in sorted(ch.items())}}


def _predict_inputs(cfg, ch):
    return {"covariates": cfg.inputs.covariates, "mask": cfg.inputs.mask,
            "changed_files": {k: v.file for k, v in sorted(ch.items()) if v.file is not None}}


def _predict_run(ctx: StepContext):
    from permafrost.predict import predict_raster

    p = ctx.config.predict
    model_dir = ctx.upstream["train"].output("model").parent
    ds = covariates_for_scenario(ctx.config.inputs.covariates, ctx.covariate_changes,
                                 chunks=p.chunk)
    res = predict_raster(
        model_dir, ds, ctx.workdir / "pzi.tif",
        zones=ctx.workdir / "zones.tif" if p.zones else None,
        uncertainty=ctx.workdir / "pzi_uncertainty.tif" if p.uncertainty else None,
        mask=ctx.config.inputs.mask, chunk=p.chunk, device=p.device, workers=p.workers,
        cache_dir=ctx.workdir / ".blocks",
    )
    outputs = {"pzi": "pzi.tif"}
    if p.zones:
        outputs["zones"] = "zones.tif"
    if p.uncertainty:
        outputs["uncertainty"] = "pzi_uncertainty.tif"
    return outputs, {"device": res.device, "backend": res.backend, "pixels": res.pixels,
                     "valid": res.valid, "masked": res.masked, "missing": res.missing}


# ---------------------------------------------------------------------------------------
# stats


def _stats_inputs(cfg, ch):
    inp = cfg.inputs
    return {"regions": inp.regions.path if inp.regions else None, "dem": inp.dem, "mask": inp.mask}


def _stats_run(ctx: StepContext):
    from permafrost.area import stats_from_files, stats_rows, stats_table_columns
    from permafrost.io.results import write_csv, write_json

    cfg = ctx.config
    res = stats_from_files(
        ctx.upstream["predict"].output("pzi"),
        regions_path=cfg.inputs.regions.path if cfg.inputs.regions else None,
        region_field=cfg.inputs.regions.field if cfg.inputs.regions else "name",
        dem_path=cfg.inputs.dem, band_width=cfg.stats.band_width_m, mask_path=cfg.inputs.mask,
    )
    write_json(res, ctx.workdir / "stats.json")
    write_csv(stats_rows(res), ctx.workdir / "stats.csv",
              columns=stats_table_columns() + ["denominator"])
    whole = res["units"][0]
    return {"stats": "stats.json", "table": "stats.csv"}, {
        "pzi_ge_0.5_km2": whole["pzi_ge_0.5_km2"], "fraction_pzi_ge_0.5": whole["fraction_pzi_ge_0.5"],
        "pzi_weighted_km2": whole["pzi_weighted_km2"], "denominator_km2": whole["denominator_km2"]}


# ---------------------------------------------------------------------------------------
# validate (baseline only: today's boreholes and maps say nothing about a warmer climate)


def _validate_enabled(cfg: PipelineConfig) -> bool:
    inp = cfg.inputs
    return cfg.validate_.enabled and bool(inp.validation_boreholes or inp.boreholes or inp.priors)


def _validate_inputs(cfg, ch):
    inp = cfg.inputs
    return {"boreholes": inp.validation_boreholes or inp.boreholes,
            "priors": [p.model_dump() for p in inp.priors], "mask": inp.mask}


def _validate_run(ctx: StepContext):
    from permafrost.validation import PriorSpec, validate_from_files

    inp = ctx.config.inputs
    labels = ctx.upstream.get("labels")
    boreholes = (labels.outputs.get("holdout") if labels else None) or \
        inp.validation_boreholes or (None if _holds_out(ctx.config) else inp.boreholes)
    priors = [PriorSpec(name=p.name, path=p.path, kind=p.kind,
                        permafrost_codes=tuple(p.permafrost_codes),
                        other_codes=None if p.other_codes is None else tuple(p.other_codes),
                        threshold=p.threshold)
              for p in inp.priors]
    res = validate_from_files(ctx.upstream["predict"].output("pzi"),
                              boreholes_path=boreholes,
                              priors=priors, out_dir=ctx.workdir / "validation",
                              mask_path=inp.mask)
    rows = (res.get("boreholes") or {}).get("table") or []
    model_row = next((r for r in rows if r.get("kind") == "pzi"), {})
    summary = {k: model_row.get(k) for k in ("n", "auc", "balanced_accuracy", "kappa", "brier")
               if k in model_row}
    return {"validation": "validation/validation.json"}, json.loads(json.dumps(summary, default=str))


# ---------------------------------------------------------------------------------------
# report (one for all scenarios)


def _report_run(ctx: StepContext):
    from permafrost.io.results import write_json
    from permafrost.report import report_from_files

    base = ctx.scenarios.get(BASELINE, {})
    from permafrost.pipeline import versions

    provenance = {
        "pipeline": ctx.config.pipeline.name,
        "pipeline file": str(ctx.config.source),
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
    if len(scen) > 1 and BASELINE in scen:
        from permafrost.area import compare_scenarios
        from permafrost.io.results import read_json

        changes = ctx.workdir / "scenario_changes.json"
        write_json(compare_scenarios({n: read_json(p) for n, p in scen.items()}), changes)
    report_from_files(
        out_html=ctx.workdir / "report.html", out_json=ctx.workdir / "report.json",
        title=ctx.config.report.title or f"Permafrost map: {ctx.config.pipeline.name}",
        pzi=base["predict"].output("pzi") if "predict" in base else None,
        dem=ctx.config.inputs.dem,
        stats=base["stats"].output("stats") if "stats" in base else None,
        validation=base["validate"].output("validation") if "validate" in base else None,
        model=base["train"].output("model") if "train" in base else None,
        labels=base["labels"].output("labels") if "labels" in base else None,
        provenance=ctx.workdir / "provenance.json",
        scenarios=scen if len(scen) > 1 else None,
        scenario_changes=changes,
    )
    return {"html": "report.html", "json": "report.json"}, {"scenarios": sorted(scen),
                                                           "descriptions": descriptions}


def _dump(section: str):
    return lambda cfg, ch: getattr(cfg, section).model_dump(mode="json")


STEPS: list[StepSpec] = [
    StepSpec("kinematics", (), _dump("kinematics"), _kin_inputs, _kin_run, enabled=_kin_enabled),
    StepSpec("labels", ("kinematics",), _labels_options, _labels_inputs, _labels_run),
    StepSpec("train", ("labels",), _dump("train"), lambda c, ch: {"covariates": c.inputs.covariates},
             _train_run),
    StepSpec("predict", ("train",), _predict_options, _predict_inputs, _predict_run),
    StepSpec("stats", ("predict",), _dump("stats"), _stats_inputs, _stats_run),
    StepSpec("validate", ("labels", "predict"), _dump("validate_"), _validate_inputs, _validate_run,
             enabled=_validate_enabled, baseline_only=True),
    StepSpec("report", ("stats",), _dump("report"), lambda c, ch: {"dem": c.inputs.dem},
             _report_run, enabled=lambda c: c.report.enabled, across_scenarios=True),
]

STEP_NAMES = [s.name for s in STEPS]
