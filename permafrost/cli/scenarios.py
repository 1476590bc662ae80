"""`permafrost scenarios`: list a pipeline's scenarios and what each changes."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from permafrost.cli._app import app, console
from permafrost.config import describe_scenarios, load_pipeline


@app.command("scenarios")
def scenarios_cmd(
    pipeline: Path = typer.Argument(..., help="Pipeline file (TOML)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """List the scenarios of PIPELINE and what each changes relative to the baseline."""
    rows = describe_scenarios(load_pipeline(pipeline))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"Scenarios in {pipeline}")
    table.add_column("scenario")
    table.add_column("description")
    table.add_column("changes")
    for r in rows:
        table.add_row(r["name"], r["description"], "\n".join(r["changes"]) or "—")
    console.print(table)
