"""`permafrost predict`: a trained model + a covariate stack -> PZI COG (zones, uncertainty)."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import (
    app,
    bounded,
    complete_devices,
    console,
    emit_json,
    err_console,
    make_table,
    scheduler_option,
)
from permafrost.defaults import CHUNK


def _progress_columns() -> list:
    """Progress bar columns, with pixels per second of the prediction stage."""
    from rich.progress import (
        BarColumn,
        ProgressColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _PixelRate(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            if speed is None or task.fields.get("unit") != "px":
                return Text("")
            return Text(f"{speed / 1e6:,.2f} Mpx/s", style="progress.data.speed")

    return [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
            _PixelRate(), TimeElapsedColumn(), TimeRemainingColumn()]


@app.command("predict")
def predict_cmd(
    model: Path = typer.Option(..., "--model", help="Model directory written by `permafrost train`."),
    covariates: Path = typer.Option(..., "--covariates",
                                    help="Directory of covariate rasters (one per file, named "
                                         "by feature) or a stack file."),
    out: Path = typer.Option(..., "--out", help="PZI output (Cloud-Optimized GeoTIFF)."),
    zones: Path = typer.Option(None, "--zones", help="Also write the zone raster here."),
    uncertainty: Path = typer.Option(None, "--uncertainty",
                                     help="Also write the fold-model spread here."),
    mask: Path = typer.Option(None, "--mask",
                              help="Areas to exclude: polygons (glaciers, lakes) or a raster "
                                   "(any grid, nearest neighbour; non-zero = excluded)."),
    chunk: int = typer.Option(CHUNK, "--chunk",
                              callback=bounded("chunk"), help="Block side in pixels."),
    device: str = typer.Option("auto", "--device", autocompletion=complete_devices,
                               help="auto, cpu or cuda."),
    workers: int = typer.Option(None, "--workers", callback=bounded("workers"),
                                help="Run on a local Dask cluster of N worker processes."),
    scheduler: str = typer.Option(None, "--scheduler", callback=scheduler_option,
                                  help="Run on an existing Dask cluster (scheduler address)."),
    threads: int = typer.Option(None, "--threads",
                                callback=bounded("threads"), help="Threads (default: all CPUs)."),
    no_resume: bool = typer.Option(False, "--no-resume",
                                   help="Recompute every block, ignoring an interrupted run's."),
    extrapolation: Path = typer.Option(
        None, "--extrapolation", help="Also write the bit mask of cells where a covariate "
        "lies beyond the range of the training labels here (the share is always printed)."),
    landcover: Path = typer.Option(
        None, "--landcover", help="A categorical land-cover (surface) raster with a `classes` "
        "tag: label counts and map shares per surface class (need not be a covariate)."),
    support: Path = typer.Option(
        None, "--support", help="Also write the label support map here (training labels in "
        "each cell's least supported surface class or covariate decile)."),
    applicability: Path = typer.Option(
        None, "--applicability", help="Also write the applicability check (training ranges, "
        "label support, warnings) here as JSON, as a pipeline run's applicability.json."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Predict the permafrost zonation index (PZI) of a whole region, block by block.

    And check its domain of applicability in the same pass over the map: the share of the
    mapped area where a covariate lies beyond the range of the model's training labels,
    and where the labels are too few.
    """
    from rich.progress import Progress, TaskID

    from permafrost.applicability import DOMAIN_WARN_SHARE
    from permafrost.io.guard import Output, check_outputs
    from permafrost.workflows.applicability import predict_with_applicability
    from permafrost.workflows.covariates import covariate_files

    # every output at once, before any work: --extrapolation is written after the PZI
    check_outputs([Output(out, "--out", what="PZI"), Output(zones, "--zones", what="zones"),
                   Output(uncertainty, "--uncertainty", what="uncertainty"),
                   Output(extrapolation, "--extrapolation", what="extrapolation map"),
                   Output(support, "--support", what="label support map"),
                   Output(applicability, "--applicability", what="applicability")],
                  {"--model": model, "--covariates": covariate_files(covariates), "--mask": mask,
                   "--landcover": landcover})
    with Progress(*_progress_columns(), console=err_console._get(), transient=as_json,
                  disable=not err_console.is_terminal) as bar:
        tasks: dict[str, TaskID] = {}

        def _progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                label = "predicting" if stage == "predict" else "writing COGs"
                tasks[stage] = bar.add_task(label, total=total,
                                            unit="px" if stage == "predict" else "file")
            bar.update(tasks[stage], completed=done, total=total)

        # the PZI and the applicability check in one pass over the map
        res, app = predict_with_applicability(
            model, covariates, out, zones=zones, uncertainty=uncertainty, mask=mask,
            chunk=chunk, device=device, workers=workers, scheduler=scheduler, threads=threads,
            resume=not no_resume, progress=_progress, out_map=extrapolation,
            landcover=landcover, out_support=support, out_json=applicability)
    if as_json:
        emit_json({**res.as_dict(), "applicability": app.as_dict()})
        return
    table = make_table(f"PZI written to {res.pzi}")
    table.add_column("item")
    table.add_column("value", overflow="fold")
    ny, nx = res.shape
    rows = [
        ("grid", (f"{ny} x {nx} = {res.pixels:,} pixels, {res.blocks} blocks "
                  f"({res.blocks_reused} reused)")),
        ("predicted", f"{res.valid:,}"),
        ("nodata: a covariate missing", f"{res.missing:,}" + (
            f" (of which {res.unseen_class:,} in a class without training labels)"
            if res.unseen_class else "")),
        ("nodata: masked", f"{res.masked:,}"),
        ("device / backend", f"{res.device} / {res.backend}"),
        ("trees", res.inference or "-"),
        ("time", (f"{res.seconds:.1f} s ({res.pixels_per_second / 1e6:.2f} Mpx/s; predict "
                  f"{res.predict_seconds:.1f} s, write {res.write_seconds:.1f} s)")),
    ]
    if res.zones:
        rows.append(("zones", str(res.zones)))
    if res.uncertainty:
        rows.append(("uncertainty", str(res.uncertainty)))
    ext = app.extrapolation
    if ext is not None:
        side = ", ".join(f"{f} {_side(c)} {100 * c['share']:.1f} %"
                         for f, c in ext["covariates"].items() if c["share"])
        rows.append(("beyond the training range", f"{100 * ext['outside_share']:.1f} % of the "
                     f"mapped area" + (f" ({side})" if side else "")
                     + (f"; map: {extrapolation}" if extrapolation else "")))
    else:
        rows.append(("beyond the training range", "unknown: the model records no training "
                     "ranges (retrain it)"))
    sup = app.support
    if sup is not None:
        rows.append(("labels", ", ".join(f"{n} {s}" for s, n in sup["sources"].items())))
        for c in (sup.get("surface") or {}).get("classes") or []:
            by = ", ".join(f"{s} {n}" for s, n in c["by_source"].items())
            rows.append((f"class {c['name']}", f"{100 * (c['map_share'] or 0):.1f} % of the "
                         f"map, {c['labels']} labels ({by})"
                         + ("; too few" if c["supported"] is False else "")))
        rows.append(("area with too few labels", f"{100 * sup['unsupported_share']:.1f} % "
                     "of the mapped area" + (f"; map: {support}" if support else "")))
    for r in rows:
        table.add_row(*r)
    console.print(table)
    for w in app.warnings:
        if w.get("kind") in ("label_support", "debris_only"):
            err_console.print(f"Warning: {w['message']}.")
    if ext is not None and ext["outside_share"] and ext["outside_share"] >= DOMAIN_WARN_SHARE:
        err_console.print(f"Warning: {100 * ext['outside_share']:.1f} % of the map lies beyond "
                          "the covariate range of the training labels: the PZI there is an "
                          "extrapolation (docs/pipelines.md, \"Scenarios\").")


def _side(c: dict) -> str:
    """Which way a covariate leaves its training domain (a class for a categorical one)."""
    if c.get("kind") == "categorical":
        return "class not seen in training"
    return "below" if c["below_km2"] >= c["above_km2"] else "above"
