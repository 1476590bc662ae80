"""`permafrost report`: one self-contained HTML report (and its numbers as JSON)."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console
from permafrost.errors import ConfigError, DataError


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
    uncertainty: Path | None = typer.Option(None, "--uncertainty",
                                            help="PZI uncertainty raster (pzi_uncertainty.tif "
                                                 "of `permafrost predict --uncertainty`)."),
    kinematics: Path | None = typer.Option(None, "--kinematics",
                                           help="GeoPackage of `permafrost kinematics`."),
    activity_column: str = typer.Option("activity", "--activity-column",
                                        help="Inventory activity column in the kinematics "
                                             "GeoPackage, compared with the InSAR activity."),
    mask: Path | None = typer.Option(None, "--mask",
                                     help="Mask polygons (glaciers, lakes), hatched on the "
                                          "maps."),
) -> None:
    """Render the run's maps, kinematics, labels, CV, curves, areas, validation and scenarios
    as one HTML page."""
    inputs = (pzi, stats, validation, model, labels, provenance, uncertainty, kinematics)
    if not any(v is not None for v in inputs) and not scenario:
        raise ConfigError("nothing to report: no input given",
                          fix="give at least one of --pzi, --stats, --validation, --model, "
                              "--labels, --kinematics, --uncertainty, --provenance, --scenario")
    from permafrost.workflows.report import report_from_files

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
                      provenance=provenance, scenarios=sc or None, uncertainty=uncertainty,
                      kinematics=kinematics, activity_column=activity_column, mask=mask)
    console.print(f"wrote {out} and {js_path}")
