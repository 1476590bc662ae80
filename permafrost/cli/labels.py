"""`permafrost labels`: fuse rock glacier inventories and boreholes into labelled points."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, bounded, console, crs_option, deprecated_alias, make_table
from permafrost.defaults import BOREHOLE_WEIGHT, ROCK_GLACIER_WEIGHT


@app.command("labels")
def labels_cmd(
    inventory: list[Path] = typer.Option([], "--inventory", help="Rock glacier inventory "
                                         "(any vector format); repeatable."),
    activity_column: str = typer.Option("activity", "--activity-column",
                                        help="Activity column of the inventories."),
    id_column: str = typer.Option(None, "--id-column", help="Rock glacier id column "
                                  "(default: rg_id, id, pk or name)."),
    boreholes: list[Path] = typer.Option([], "--boreholes", help="Borehole presence table "
                                         "(CSV or vector); repeatable."),
    boreholes_crs: str = typer.Option(None, "--boreholes-crs", callback=crs_option,
                                      help="CRS of x/y columns in presence tables (lon/lat "
                                           "are EPSG:4326)."),
    # the old spelling, kept for scripts that use it (hidden; `validate` has --boreholes-crs)
    old_borehole_crs: str = typer.Option(None, "--borehole-crs", callback=crs_option,
                                         hidden=True),
    borehole_column: list[str] = typer.Option(
        [], "--borehole-column", metavar="ROLE=NAME", help="Column of the borehole tables by role, ROLE=NAME "
        "(roles id, x, y, presence, magt, elevation, year), e.g. presence=Permafrost; "
        "repeatable. Common spellings are recognised without it."),
    gtnp: list[Path] = typer.Option([], "--gtnp", help="GTN-P long CSV; repeatable, each "
                                    "with one --gtnp-metadata."),
    gtnp_metadata: list[Path] = typer.Option([], "--gtnp-metadata",
                                             help="GTN-P metadata JSON for each --gtnp."),
    permos: list[Path] = typer.Option([], "--permos", help="PERMOS wide CSV; repeatable."),
    permos_coords: Path = typer.Option(None, "--permos-coords", help="CSV borehole_id,lon,lat"
                                       "[,elevation_m] for the PERMOS files."),
    grid: Path = typer.Option(None, "--grid", help="Reference grid raster (default: --dem)."),
    dem: Path = typer.Option(None, "--dem", help="DEM [m] (needed by front sampling)."),
    sampling: str = typer.Option("front", "--sampling", help="front, centroid or interior."),
    spacing: float = typer.Option(100.0, "--spacing", callback=bounded("spacing_m"),
                                  help="Interior point spacing [m]."),
    rock_glacier_weight: float = typer.Option(ROCK_GLACIER_WEIGHT, "--rock-glacier-weight",
                                              callback=bounded("rock_glacier_weight"),
                                              help="Total weight per rock glacier."),
    borehole_weight: float = typer.Option(BOREHOLE_WEIGHT, "--borehole-weight",
                                          callback=bounded("borehole_weight"),
                                          help="Weight per borehole."),
    outside: str = typer.Option("error", "--outside", help="Points outside the grid: error "
                                "or drop (dropped points are counted)."),
    track: list[str] = typer.Option(
        [], "--track", help="A MintPy track, as `permafrost kinematics --track` takes it; "
        "repeatable. The kinematics of --outlines (default thresholds) are weighed against the "
        "inventories' activity. For other thresholds run `permafrost kinematics` and give "
        "its output with --kinematics."),
    kinematics: Path = typer.Option(None, "--kinematics", help="The GeoPackage of "
                                    "`permafrost kinematics` (what the pipeline's kinematics "
                                    "step hands its labels step); instead of --track."),
    outlines: Path = typer.Option(None, "--outlines", help="The outlines the kinematics are "
                                  "(or were) computed on (default: the first --inventory); "
                                  "other outlines are matched to the inventories by id."),
    holdout_fraction: float = typer.Option(
        0.0, "--holdout-fraction", callback=bounded("holdout_fraction"),
        help="Share of the --boreholes table held out for validation in whole spatial "
             "blocks (every label near them leaves training); 0: none [-]. The pipeline's "
             "validate.holdout_fraction."),
    holdout_block_m: float = typer.Option(
        None, "--holdout-block-m", callback=bounded("holdout_block_m"),
        help="Side of the held-out blocks [m] (default: the CV block side)."),
    block_size: float = typer.Option(
        None, "--block-size", callback=bounded("block_size"),
        help="Side of the spatial-CV blocks [m], as `permafrost train --block-size` (default: "
             "the labels' variogram range, or the covariates' range when larger)."),
    seed: int = typer.Option(0, "--seed", callback=bounded("seed"),
                             help="Seed of the hold-out and the landscape sample."),
    covariates: Path = typer.Option(None, "--covariates", help="Covariate directory or stack "
                                    "file: the hold-out's block size and the labels' "
                                    "covariate quantiles against the landscape's."),
    features: str | None = typer.Option(None, "--features", help="Comma-separated covariates "
                                        "of --covariates to use (default: all)."),
    out: Path = typer.Option(..., "--out", help="Output GeoPackage of labelled points."),
) -> None:
    """Label permafrost presence (1) / absence (0) from inventories and boreholes.

    With --track or --kinematics, InSAR evidence is weighed against the inventories'
    activity; with --holdout-fraction, boreholes are held out for validation. The same
    inputs and values as a pipeline give the pipeline's labels (docs/cli/labels.md).
    """
    from permafrost.io.boreholes import parse_column_options
    from permafrost.io.mintpy import parse_track_spec
    from permafrost.workflows.labels import training_labels_from_files

    if len(gtnp) != len(gtnp_metadata):
        raise typer.BadParameter("give one --gtnp-metadata for each --gtnp")
    feats = [f.strip() for f in features.split(",") if f.strip()] if features else None
    res = training_labels_from_files(
        inventories=inventory, boreholes=boreholes, gtnp=list(zip(gtnp, gtnp_metadata)),
        permos=permos, permos_coords=permos_coords, grid=grid, dem=dem, out=out,
        borehole_crs=deprecated_alias("--borehole-crs", "--boreholes-crs", old_borehole_crs,
                                      boreholes_crs),
        borehole_columns=parse_column_options(borehole_column),
        kinematics=kinematics, tracks=[parse_track_spec(t) for t in track], outlines=outlines,
        holdout_fraction=holdout_fraction, holdout_block_m=holdout_block_m,
        block_size=block_size, seed=seed, covariates=covariates, features=feats,
        activity_column=activity_column, id_column=id_column,
        sampling=sampling, spacing_m=spacing, rock_glacier_weight=rock_glacier_weight,
        borehole_weight=borehole_weight, outside=outside)
    result = res.labels
    table = make_table(f"Labels written to {out}")
    for col in ("item", "count", "note"):
        table.add_column(col, overflow="fold")
    for item, count, note in result.summary.itertuples(index=False):
        table.add_row(str(item), str(count), str(note))
    console.print(table)
    if len(result.verdicts):
        vt = make_table("Borehole temperature records")
        for col in ("borehole", "verdict", "MAGT [°C]", "depth [m]", "ALT [m]", "reason"):
            vt.add_column(col, overflow="fold")
        for v in result.verdicts.itertuples(index=False):
            vt.add_row(v.borehole_id, v.status, f"{v.magt_c:.2f}", f"{v.magt_depth_m:g}",
                       f"{v.alt_m:.1f}", v.reason)
        console.print(vt)
    others = ", ".join(f"{k} {Path(v).name}" for k, v in res.files.items()
                       if k not in ("labels", "summary") and v is not None)
    console.print(f"Also written: {others}", markup=False, highlight=False)
