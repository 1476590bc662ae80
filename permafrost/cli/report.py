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
    profile: Path | None = typer.Option(None, "--profile",
                                        help="profile.json of the stats step (PZI against "
                                             "elevation; with --uncertainty, the fold spread)."),
    covariates: Path | None = typer.Option(None, "--covariates",
                                           help="Covariate directory or stack file: with "
                                                "--model and --labels, the response curves."),
    holdout_blocks: Path | None = typer.Option(None, "--holdout-blocks",
                                               help="holdout_blocks.gpkg of the labels step "
                                                    "(with --labels: the CV and hold-out map)."),
    holdout_boreholes: Path | None = typer.Option(None, "--holdout-boreholes",
                                                  help="boreholes_holdout.csv of the labels "
                                                       "step."),
    gtnp: Path | None = typer.Option(None, "--gtnp",
                                     help="GTN-P long CSV: MAGT and active layer per record "
                                          "(with --gtnp-metadata)."),
    gtnp_metadata: Path | None = typer.Option(None, "--gtnp-metadata",
                                              help="GTN-P metadata JSON of --gtnp."),
) -> None:
    """Render the run's maps, kinematics, labels, CV, curves, areas, validation and scenarios
    as one HTML page."""
    if (gtnp is None) != (gtnp_metadata is None):
        raise ConfigError("--gtnp needs --gtnp-metadata and the other way round",
                          fix="give both the GTN-P CSV and its metadata JSON")
    inputs = (pzi, stats, validation, model, labels, provenance, uncertainty, kinematics,
              profile, gtnp)
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
                      kinematics=kinematics, activity_column=activity_column, mask=mask,
                      profile=profile, covariates=covariates, holdout_blocks=holdout_blocks,
                      holdout_boreholes=holdout_boreholes,
                      gtnp=[(gtnp, gtnp_metadata)] if gtnp and gtnp_metadata else None)
    console.print(f"wrote {out} and {js_path}")
