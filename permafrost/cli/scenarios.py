"""`permafrost scenarios`: list a pipeline's scenarios and what each changes."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console, emit_json, make_table


@app.command("scenarios")
def scenarios_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the scenarios of PIPELINE and what each changes relative to the baseline.

    The file is checked as `run` checks it before any work (columns, block size against
    the extent, features, kinds): every problem at once, exit code 2."""
    from permafrost.cli.run import preflight
    from permafrost.config import describe_scenarios, load_pipeline

    cfg = load_pipeline(pipeline)
    preflight(cfg)
    rows = describe_scenarios(cfg)
    if as_json:
        emit_json(rows)
        return
    table = make_table(f"Scenarios in {pipeline}")
    table.add_column("scenario")
    table.add_column("description")
    table.add_column("changes")
    for r in rows:
        table.add_row(r["name"], r["description"], "\n".join(r["changes"]) or "—")
    console.print(table)
