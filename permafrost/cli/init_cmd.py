"""`permafrost init`: draft a pipeline file from a folder of data."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console, make_table


@app.command("init")
def init_cmd(
    directory: Path = typer.Argument(..., help="Folder of your data (rasters, MintPy tracks, "
                                     "inventories, borehole tables, NetCDF climate)."),
    out: Path = typer.Option(None, "--out", "-o", help="Pipeline file to write (default: "
                             "./pipeline.toml; its stack file goes beside it as "
                             "<stem>_covariates.toml). Never overwritten."),
    name: str = typer.Option(None, "--name", help="Pipeline name (default: the folder's name)."),
) -> None:
    """Read DIRECTORY with inspect's readers and draft a pipeline file for it.

    Each dataset gets a role (DEM, covariate, land cover, prior map, inventory, boreholes,
    mask, regions, MintPy track); block size and folds are chosen to fit the evidence;
    MAAT warming scenarios (+1/+2/+4 degC) are added. Lines marked `# DECIDE:` need a person.
    Check the result with `permafrost scenarios FILE`.
    """
    from permafrost.errors import OutputError
    from permafrost.workflows.init import init_pipeline

    given = out is not None
    out = Path(out) if given else Path.cwd() / "pipeline.toml"
    data = Path(directory).resolve()
    if not given and (out.resolve().parent == data or data in out.resolve().parents):
        raise OutputError("the default output ./pipeline.toml lies inside the data folder",
                          path=out, field="--out",
                          fix="run init from another folder, or name the file with --out")
    res = init_pipeline(directory, out, name=name)
    table = make_table(f"Inputs found in {directory}")
    for col in ("file", "role", "CRS", "why / decide"):
        table.add_column(col, overflow="fold")
    for f in res.survey.found:
        note = f.why + "".join(f"\nDECIDE: {d}" for d in f.decide)
        table.add_row(str(f.path.relative_to(res.survey.root)), f.role, f.crs or "", note)
    for t in res.survey.tracks:
        table.add_row(str(Path(t["folder"]).relative_to(res.survey.root)) or ".",
                      "track", "", t.get("error") or "MintPy track")
    console.print(table)
    size = ("auto rule" if res.block_size_m is None
            else f"{res.block_size_m / 1000:g} km blocks")
    console.print(f"Blocks: {size}, {res.folds} folds ({res.block_rule}).")
    console.print(f"Wrote {res.pipeline} and {res.stack}.")
    # the draft through the checks a run makes before any work (pipeline/preflight.py)
    from rich.markup import escape

    from permafrost.config import load_pipeline
    from permafrost.pipeline.preflight import preflight

    found = preflight(load_pipeline(res.pipeline))
    for w in found.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(w)}")
    if found.errors:
        console.print(f"[yellow]The draft needs {len(found.errors)} edit(s) before it runs:"
                      "[/yellow]")
        for e in found.errors:
            console.print(f"  {escape(str(e))}")
    else:
        console.print("The draft passes the checks made before any work.")
    console.print(f"After editing, check it with `permafrost scenarios {res.pipeline}`.")
