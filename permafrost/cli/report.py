"""`permafrost report`: one self-contained HTML report (and its numbers as JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console
from permafrost.errors import DataError
from permafrost.report import report_from_files


@app.command("report")
def report_cmd(
    out: Path = typer.Option(..., "--out", help="HTML file to write."),
    out_json: Path | None = typer.Option(None, "--out-json",
                                         help="JSON with the same numbers (default: beside "
                                              "the HTML)."),
    title: str | None = typer.Option(None, "--title", help="Report title."),
    pzi: Path | None = typer.Option(None, "--pzi", help="PZI raster for the map."),
    dem: Path | None = typer.Option(None, "--dem", help="DEM for the hillshade."),
    stats: Path | None = typer.Option(None, "--stats", help="`permafrost stats --out-json` file."),
    validation: Path | None = typer.Option(None, "--validation",
                                           help="`permafrost validate --out` directory or its "
                                                "validation.json."),
    model: Path | None = typer.Option(None, "--model", help="Model directory or metadata.json."),
    labels: Path | None = typer.Option(None, "--labels", help="Labelled points (vector)."),
    provenance: Path | None = typer.Option(None, "--provenance", help="Provenance JSON."),
    scenario: list[str] = typer.Option([], "--scenario",
                                       help="NAME=STATS_JSON of a scenario (repeatable)."),
) -> None:
    """Render the run's provenance, map, labels, CV, curves, areas and validation as HTML."""
    sc = {}
    for s in scenario:
        if "=" not in s:
            raise DataError(f"cannot parse scenario {s!r}", field="--scenario",
                            fix="write NAME=STATS_JSON")
        name, path = s.split("=", 1)
        sc[name.strip()] = Path(path)
    js_path = out_json or out.with_suffix(".json")
    report_from_files(out_html=out, out_json=js_path, title=title, pzi=pzi, dem=dem,
                      stats=stats, validation=validation, model=model, labels=labels,
                      provenance=provenance, scenarios=sc or None)
    console.print(f"wrote {out} and {js_path}")
