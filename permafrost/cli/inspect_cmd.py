"""`permafrost inspect`: read every dataset in a directory and print a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console, emit_json, make_table


@app.command("inspect")
def inspect_cmd(
    directory: Path = typer.Argument(..., help="Directory of inputs, e.g. data_samples/."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unreadable file."),
) -> None:
    """Read every raster, vector, MintPy HDF5, NetCDF, CSV and JSON file under DIRECTORY and summarise it."""
    from permafrost.io.catalog import describe_directory

    summaries, skipped = describe_directory(directory, strict=strict)
    if as_json:
        emit_json({"datasets": [s.as_dict() for s in summaries], "skipped": skipped})
    else:
        table = make_table(f"Datasets in {directory}")
        for col in ("file", "kind", "CRS", "size", "details"):
            table.add_column(col, overflow="fold")
        root = Path(directory)
        for s in summaries:
            size = "x".join(map(str, s.shape)) if s.shape else ""
            det = s.error or _short(s)
            table.add_row(str(Path(s.path).relative_to(root)), s.kind, s.crs or "", size, det)
        console.print(table)
        bad = [s for s in summaries if s.error]
        console.print(f"{len(summaries)} datasets read, {len(bad)} unreadable, "
                      f"{len(skipped)} other files skipped.")
    if any(s.error for s in summaries):
        raise typer.Exit(2)


def _short(s) -> str:
    d = s.details
    if s.kind == "raster":
        rng = "" if d["min"] is None else f"{d['min']:.4g}..{d['max']:.4g}"
        return f"{d['dtype']} res {d['resolution'][0]:.3g} range {rng} nodata {d['nodata']}"
    if s.kind == "vector":
        return f"{','.join(d['geometry_types'])}; columns {', '.join(d['columns'][:6])}"
    if s.kind.startswith("mintpy"):
        return f"{', '.join(d['datasets'][:6])} [{d['unit'] or ''}] {d['orbit'] or ''}"
    if s.kind == "netcdf":
        t = d.get("time")
        span = f"; time {t['start']}..{t['end']} ({t['steps']} steps)" if t else ""
        from rich.markup import escape

        return escape("; ".join(f"{k}({', '.join(v['dims'])}) [{v.get('units') or '?'}]"
                                + (f" {v['min']:.4g}..{v['max']:.4g}"
                                   if v.get("min") is not None else "")
                                for k, v in d["variables"].items()) + span)
    if s.kind == "table":
        return ", ".join(d["columns"][:8])
    if s.kind == "json":
        return ", ".join(map(str, d["keys"] or []))
    return ""
