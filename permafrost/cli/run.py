"""`permafrost run`: the whole chain for a region and its scenarios, from a pipeline file."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from permafrost.cli._app import (
    app,
    complete_scenarios,
    complete_steps,
    console,
    emit_json,
    err_console,
    make_table,
)


@app.command("run")
def run_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file (TOML), e.g. pipelines/demo.toml."),
    scenario: list[str] = typer.Option([], "--scenario", "-s",
                                       autocompletion=complete_scenarios,
                                       help="Also run this scenario (repeatable)."),
    all_scenarios: bool = typer.Option(False, "--all-scenarios",
                                       help="Run every scenario of the pipeline."),
    force: bool = typer.Option(False, "--force", help="Rerun steps even when up to date."),
    only: str | None = typer.Option(None, "--only", autocompletion=complete_steps,
                                    help="Run only this step (and what it needs): kinematics, "
                                         "labels, train, predict, stats, validate, report."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print which steps would run and "
                                 "why (changed options or inputs, missing outputs, upstream "
                                 "changes); run nothing, write nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the result (or the plan) as "
                                 "JSON on stdout; progress goes to stderr."),
) -> None:
    """Run kinematics → labels → train → predict → stats → validate → report.

    Each step reruns only when its inputs or its part of the configuration changed; the
    file is validated completely before any work starts.
    """
    from permafrost.config import load_pipeline
    from permafrost.pipeline import plan_pipeline, run_pipeline

    cfg = load_pipeline(pipeline)
    names = list(cfg.scenarios) if all_scenarios else scenario
    for n in names:  # validate names before any work
        from permafrost.config import resolve_scenario

        resolve_scenario(cfg, n)
    preflight(cfg)  # every scenario's problems, all at once, before any work
    if dry_run:
        plan = plan_pipeline(cfg, scenarios=names, force=force, only=only, preflight=False)
        if as_json:
            emit_json({"output_dir": str(cfg.pipeline.output_dir),
                       "steps": [p.as_dict() for p in plan]})
            return
        _print_plan(plan, cfg.pipeline.output_dir)
        return
    out = err_console if as_json else console
    t0 = time.perf_counter()
    status = out.status("starting", spinner="dots")

    def on_event(kind: str, info: dict) -> None:
        label = f"{info['scenario']:>10} · {info['step']:<10}"
        if kind == "start":
            status.update(f"{label} running")
        elif kind == "skip":
            out.print(f"[dim]  {label} up to date[/dim]")
        elif kind == "done":
            summ = _short(info.get("summary") or {})
            out.print(f"[green]✓[/green] {label} ran in {info['seconds']:.1f} s  {summ}")

    with status:
        res = run_pipeline(cfg, scenarios=names, force=force, only=only,
                           on_event=on_event, preflight=False)
    secs = time.perf_counter() - t0
    if as_json:
        emit_json(_result_dict(res, secs))
        return
    _print_model_warnings(res)
    _print_checks(res)
    _print_profiles(res)
    ran = len(res.ran)
    console.print(f"{ran} step(s) ran, the rest were up to date; {secs:.1f} s.")
    for sc, path in res.manifests.items():
        console.print(f"manifest ({sc}): {path}")
    if res.report is not None:
        # the gate on the scenario model's map of today (permafrost.area.reference_gate)
        for w in (res.report.summary or {}).get("warnings") or []:
            console.print(f"[bold yellow]WARNING[/bold yellow] (reference, scenario model) {w}")
        console.print(f"Report: {res.report_path}")


def preflight(cfg) -> None:
    """Everything knowable of the pipeline checked before any work
    (:func:`permafrost.pipeline.preflight.preflight`): every error at once (exit code 2),
    each naming the pipeline file and the TOML key; the warnings on stderr."""
    from permafrost.pipeline.preflight import preflight as check

    found = check(cfg)
    found.raise_errors(cfg.source)
    for w in found.warnings:
        err_console.print(f"[bold yellow]WARNING[/bold yellow] {w}", highlight=False)


def _print_model_warnings(res) -> None:
    """The training step's warnings, each once with the runs it concerns: what the PZI's
    level rests on where it is the label mix (permafrost.level), the surface-aware model's
    pooled fallback and classes without an offset (permafrost.surface)."""
    seen: dict[str, list[str]] = {}
    for sc, recs in res.scenarios.items():
        summ = recs["train"].summary if "train" in recs else {}
        for w in (summ or {}).get("warnings") or []:
            seen.setdefault(w, []).append(sc)
    for w, runs in seen.items():
        console.print(f"[bold yellow]WARNING[/bold yellow] ({', '.join(runs)}, model) {w}")


def _print_checks(res) -> None:
    """What each run's map can be trusted for, whether its steps ran now or were up to
    date: the share beyond the training range and the warnings (proxies held fixed, a
    change the model cannot see, a tree model past its range)."""
    rows = [(sc, recs["predict"].summary) for sc, recs in res.scenarios.items()
            if "predict" in recs]
    if not rows:
        return
    table = make_table("Domain of applicability (docs/pipelines.md, \"Scenarios\")")
    for col in ("run", "area beyond the training range", "area with too few labels",
                "warnings"):
        table.add_column(col)
    for sc, summ in rows:
        share = summ.get("outside_training_range")
        unsup = summ.get("unsupported_by_labels")
        table.add_row(sc, "-" if share is None else f"{100 * share:.1f} %",
                      "-" if unsup is None else f"{100 * unsup:.1f} %",
                      "\n".join(summ.get("warnings") or []) or "none")
    console.print(table)
    for sc, recs in res.scenarios.items():  # transfer: held-out skill vs CV skill
        val = recs["validate"].summary if "validate" in recs else None
        for w in (val or {}).get("warnings") or []:
            console.print(f"[bold yellow]WARNING[/bold yellow] ({sc}, validation) {w}")


def _print_profiles(res) -> None:
    """The lower limit of permafrost (PZI = 0.5) by aspect of each run, and the warning where
    a run's mean PZI falls with elevation above its highest label (profile.json)."""
    for sc, recs in res.scenarios.items():
        summ = recs["stats"].summary if "stats" in recs else {}
        lim = summ.get("lower_limit_m")
        if lim:
            txt = ", ".join(f"{k} {'none' if v is None else f'{v:.0f} m'}"
                            for k, v in lim.items())
            console.print(f"lower limit of permafrost, PZI = 0.5 ({sc}): {txt}")
        for w in summ.get("warnings") or []:
            console.print(f"[yellow]warning ({sc}):[/yellow] {w}")


def _print_plan(plan, output_dir: Path) -> None:
    table = make_table(f"Dry run: {output_dir}")
    for col in ("scenario", "step", "key", "action", "why"):
        table.add_column(col)
    for p in plan:
        table.add_row(p.scenario, p.step, p.key[:16], p.action, "; ".join(p.reasons) or "-",
                      style=None if p.action == "run" else "dim")
    console.print(table)
    n = sum(p.action == "run" for p in plan)
    console.print(f"{n} of {len(plan)} step(s) would run; nothing was run or written.")


def _result_dict(res, seconds: float) -> dict:
    steps = []
    for sc, recs in res.scenarios.items():
        for r in recs.values():
            steps.append({"scenario": sc, "step": r.name, "key": r.key[:16], "status": r.status,
                          "seconds": round(r.seconds, 3), "summary": r.summary,
                          "outputs": {k: str(v) for k, v in r.outputs.items()}})
    if res.report is not None:
        r = res.report
        steps.append({"scenario": "all", "step": r.name, "key": r.key[:16], "status": r.status,
                      "seconds": round(r.seconds, 3), "summary": r.summary,
                      "outputs": {k: str(v) for k, v in r.outputs.items()}})
    return {"output_dir": str(res.output_dir), "seconds": round(seconds, 3),
            "ran": res.ran, "steps": steps,
            "manifests": {sc: str(p) for sc, p in res.manifests.items()},
            "report": str(res.report_path) if res.report is not None else None}


def _short(summary: dict) -> str:
    parts = []
    for k, v in summary.items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts[:5])
