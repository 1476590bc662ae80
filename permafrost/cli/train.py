"""`permafrost train`: fit a calibrated, spatially cross-validated permafrost model."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import (
    app,
    bounded,
    complete_devices,
    complete_model_kinds,
    console,
    emit_json,
    make_table,
)
from permafrost.defaults import CALIBRATION, LEVEL
from permafrost.model_kinds import MODEL_KINDS, kind_params


@app.command("train")
def train_cmd(
    labels: Path = typer.Option(..., "--labels", help="Labelled points (GeoPackage, ...)."),
    covariates: Path = typer.Option(..., "--covariates",
                                    help="Directory of GeoTIFFs or a stack .toml file."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    model: str = typer.Option("xgboost", "--model", autocompletion=complete_model_kinds,
                              help=" | ".join(MODEL_KINDS)),
    device: str = typer.Option("auto", "--device", autocompletion=complete_devices,
                               help="auto | cpu | cuda"),
    block_size: float | None = typer.Option(None, "--block-size", callback=bounded("block_size"),
                                            help="Spatial CV block side [m] (default: the "
                                                 "larger of the label and covariate "
                                                 "variogram ranges)."),
    folds: int = typer.Option(5, "--folds", callback=bounded("folds"), help="Number of CV folds."),
    seed: int = typer.Option(0, "--seed", callback=bounded("seed"), help="Random seed."),
    calibration: str = typer.Option(CALIBRATION, "--calibration", help="isotonic | sigmoid | none"),
    label_column: str = typer.Option("label", "--label-column", help="0/1 label column."),
    group_column: str = typer.Option("group", "--group-column",
                                     help="Group column (rock glacier id), kept in one fold."),
    weight_column: str = typer.Option("weight", "--weight-column", help="Label weight column."),
    features: str | None = typer.Option(None, "--features",
                                        help="Comma-separated covariates to use (default: all)."),
    like: Path | None = typer.Option(None, "--like",
                                     help="Align a covariate directory to this raster's grid."),
    n_estimators: int | None = typer.Option(None, "--n-estimators",
                                            callback=bounded("n_estimators"),
                                            help="Trees (xgboost, rf)."),
    no_random_cv: bool = typer.Option(False, "--no-random-cv", help="Skip random-fold CV."),
    monotone: list[str] = typer.Option([], "--monotone",
                                       help="Monotone constraint FEATURE=-1|1 (repeatable), "
                                            "e.g. --monotone maat=-1 (xgboost, rf)."),
    level: str = typer.Option(LEVEL, "--level",
                              help="What the PZI's level rests on: auto (in-situ labels, "
                                   "boreholes and GTN-P, when there are enough, else the label "
                                   "mix) | in-situ | labels."),
    surface: str = typer.Option("auto", "--surface",
                                help="Surface-aware model: auto (the categorical land cover "
                                     "naming coarse/blocky debris), none, or a covariate."),
    debris_class: list[int] = typer.Option([], "--debris-class",
                                           help="Land-cover code of coarse debris "
                                                "(repeatable; default: classes named "
                                                "coarse|block)."),
    as_json: bool = typer.Option(False, "--json", help="Print the training report as JSON."),
) -> None:
    """Train a model; print the spatial and random CV table and the device used."""
    from rich.markup import escape

    from permafrost.workflows.train import train_from_files

    params = kind_params(model, n_estimators=n_estimators,
                         monotone=_parse_monotone(monotone) if monotone else None)
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else None
    r = train_from_files(
        labels, covariates, out, like=like, model=model, device=device, seed=seed, folds=folds,
        block_size=block_size, calibration=calibration, label_col=label_column,
        group_col=group_column, weight_col=weight_column, features=feats, params=params,
        random_cv=not no_random_cv, level=level, surface=surface,
        debris_classes=list(debris_class) or None).report
    if as_json:
        emit_json({**r.as_dict(), "out": str(out)})
        return
    console.print(f"Model {r.model} trained on {r.n_labels_used} of {r.n_labels_in} labels "
                  f"({r.n_positive} permafrost, {r.n_negative} none) on device "
                  f"[bold]{r.device}[/bold] ({r.device_reason}).")
    if r.dropped:
        console.print("Dropped: " + "; ".join(f"{k}: {v}" for k, v in r.dropped.items()))
    console.print(f"Spatial blocks {r.block_size_m:,.0f} m ({r.block_size_rule}); "
                  f"{r.n_folds} folds; calibration {r.calibration} (out of fold); "
                  f"class metrics at PZI >= {r.threshold}.")
    lev = r.level or {}
    if lev:  # what the calibrated PZI's level rests on (permafrost.level)
        console.print(escape(f"PZI level: {lev['rests_on']} ({lev['rule']})."))
        if lev.get("warning"):
            console.print("[bold yellow]WARNING[/bold yellow] (PZI level) "
                          + escape(lev["warning"]))
    t = make_table(escape("Cross-validation (mean ± sd over folds [min-max])"))
    t.add_column("metric")
    t.add_column("spatial folds", justify="right")
    t.add_column("random folds", justify="right")
    for m in ("auc", "balanced_accuracy", "kappa", "brier"):
        t.add_row(m, _cell(r.spatial_summary.get(m)), _cell(r.random_summary.get(m)))
    console.print(t)
    t = make_table(escape("Transfer: AUC [95 % CI] per evidence source"))
    for c in ("source", "labels", "out of fold (spatial CV)", "trained on the other sources"):
        t.add_column(c, justify="left" if c == "source" else "right")
    loso = {e["held_out"]: e for e in r.leave_one_source_out}
    for s, e in r.per_source.items():
        o = loso.get(s, {})
        t.add_row(s, str(e["n"]), _auc(e), "skipped" if "skipped" in o else _auc(o))
    console.print(t)
    if r.surface:
        _print_surface(r.surface)
    imp = r.importance["mean_abs_shap"]
    console.print("Mean |SHAP|: " + ", ".join(
        f"{k} {v:.3f}" for k, v in sorted(imp.items(), key=lambda kv: -kv[1])))
    console.print(f"wrote {out}")


def _print_surface(sf: dict) -> None:
    """The surface-aware model's parts: what each one's level rests on, its CV skill, and
    the warnings (pooled fallback, classes without an offset)."""
    from rich.markup import escape

    t = make_table(escape(f"Surface-aware model ({sf['mode']}; {sf['method']})"))
    for c in ("part", "level rests on", "spatial CV AUC", "offsets (reference)"):
        t.add_column(c)
    for p, v in sf["parts"].items():
        t.add_row(p, escape(v["rests_on"]), _cell((v.get("spatial_cv") or {}).get("auc")),
                  escape(", ".join(v["offsets"]) or "-")
                  + (f" ({escape(v['reference_class'])})" if v.get("reference_class") else ""))
    console.print(t)
    for w in sf.get("warnings") or []:
        console.print(f"[bold yellow]WARNING[/bold yellow] {escape(w)}")


def _cell(s) -> str:
    if not s or s.get("mean") is None:
        return "-"
    from rich.markup import escape

    return escape(f"{s['mean']:.3f} ± {s['std']:.3f} [{s['min']:.3f}-{s['max']:.3f}]")


def _parse_monotone(items: list[str]) -> dict[str, int]:
    from permafrost.errors import InputError

    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if value.strip() not in ("-1", "0", "1", "+1") or not name.strip():
            raise InputError(f"bad monotone constraint {item!r}", field="--monotone",
                             fix="write FEATURE=-1 or FEATURE=1, e.g. maat=-1")
        out[name.strip()] = int(value)
    return out


def _auc(e) -> str:
    if not e or e.get("auc") is None:
        return "-"
    from rich.markup import escape

    iv = (e.get("ci") or {}).get("auc") or {}
    ci = f" [{iv['low']:.2f}, {iv['high']:.2f}]" if iv.get("low") is not None else ""
    return escape(f"{e['auc']:.3f}{ci}")
