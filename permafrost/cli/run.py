"""`permafrost run`: the whole chain for a region and its scenarios, from a pipeline file."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from permafrost.cli._app import app, console
from permafrost.config import load_pipeline


@app.command("run")
def run_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file (TOML), e.g. pipelines/demo.toml."),
    scenario: list[str] = typer.Option([], "--scenario", "-s",
                                       help="Also run this scenario (repeatable)."),
    all_scenarios: bool = typer.Option(False, "--all-scenarios",
                                       help="Run every scenario of the pipeline."),
    force: bool = typer.Option(False, "--force", help="Rerun steps even when up to date."),
    only: str | None = typer.Option(None, "--only",
                                    help="Run only this step (and what it needs): kinematics, "
                                         "labels, train, predict, stats, validate, report."),
) -> None:
    """Run kinematics → labels → train → predict → stats → validate → report.

    Each step reruns only when its inputs or its part of the configuration changed; the
    file is validated completely before any work starts.
    """
    from permafrost.pipeline import run_pipeline
    from permafrost.steps import STEPS

    cfg = load_pipeline(pipeline)
    names = list(cfg.scenarios) if all_scenarios else scenario
    for n in names:  # validate names before any work
        from permafrost.config import resolve_scenario

        resolve_scenario(cfg, n)
    t0 = time.perf_counter()
    status = console.status("starting", spinner="dots")

    def on_event(kind: str, info: dict) -> None:
        label = f"{info['scenario']:>10} · {info['step']:<10}"
        if kind == "start":
            status.update(f"{label} running")
        elif kind == "skip":
            console.print(f"[dim]  {label} up to date[/dim]")
        elif kind == "done":
            summ = _short(info.get("summary") or {})
            console.print(f"[green]✓[/green] {label} ran in {info['seconds']:.1f} s  {summ}")

    with status:
        res = run_pipeline(cfg, steps=STEPS, scenarios=names, force=force, only=only,
                           on_event=on_event)
    secs = time.perf_counter() - t0
    ran = len(res.ran)
    console.print(f"{ran} step(s) ran, the rest were up to date; {secs:.1f} s.")
    for sc, path in res.manifests.items():
        console.print(f"manifest ({sc}): {path}")
    if res.report is not None:
        console.print(f"Report: {res.report_path}")


def _short(summary: dict) -> str:
    parts = []
    for k, v in summary.items():
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            parts.append(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts[:5])
