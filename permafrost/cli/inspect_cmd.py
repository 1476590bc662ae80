"""`permafrost inspect`: read every dataset in a directory (or one file) and print a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, console, emit_json, make_table


@app.command("inspect")
def inspect_cmd(
    directory: Path = typer.Argument(..., metavar="PATH",
                                     help="Directory of inputs (e.g. data_samples/) or one "
                                          "file."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first unreadable file."),
) -> None:
    """Read every raster, vector, MintPy HDF5, NetCDF, CSV and JSON file under PATH (a
    directory, or one file) and summarise it.

    MintPy tracks (folders with velocity.h5, or geo/geo_velocity.h5 as geocode.py writes
    it) get their own table: the files a run would read, the dates, the reference point
    and the velocity range, as MintPy's info.py reports them.
    """
    from permafrost.io.catalog import describe_directory, describe_file, describe_tracks

    skipped: list[str]
    if not directory.is_dir():  # one file: its summary (an unreadable one is an error)
        summaries, skipped, tracks = [describe_file(directory)], [], []
    else:
        summaries, skipped = describe_directory(directory, strict=strict)
        tracks = describe_tracks(directory)
    if as_json:
        emit_json({"datasets": [s.as_dict() for s in summaries], "skipped": skipped,
                   "tracks": tracks})
    else:
        table = make_table(f"Datasets in {directory}")
        for col in ("file", "kind", "CRS", "size", "details"):
            table.add_column(col, overflow="fold")
        root = Path(directory) if directory.is_dir() else Path(directory).parent
        for s in summaries:
            size = "x".join(map(str, s.shape)) if s.shape else ""
            det = s.error or _short(s)
            table.add_row(str(Path(s.path).relative_to(root)), s.kind, s.crs or "", size, det)
        console.print(table)
        if tracks:
            console.print(_track_table(tracks, Path(directory)))
        from rich.markup import escape

        for s in summaries:
            for w in s.details.get("warnings") or []:
                console.print(f"[yellow]warning[/yellow]: {Path(s.path).relative_to(root)}: "
                              f"{escape(w)}")
        bad = [s for s in summaries if s.error]
        console.print(f"{len(summaries)} datasets read, {len(bad)} unreadable, "
                      f"{len(skipped)} other files skipped.")
    if any(s.error for s in summaries) or any(t.get("error") for t in tracks):
        raise typer.Exit(2)


def _rel(p, root: Path) -> str:
    try:
        return str(Path(p).relative_to(root))
    except ValueError:
        return str(p)


def _track_table(tracks: list[dict], root: Path):
    table = make_table("MintPy tracks (as kinematics and pipelines read them)")
    for col in ("track", "files", "dates", "reference", "velocity (m/year)"):
        table.add_column(col, overflow="fold")
    for t in tracks:
        if t.get("error"):
            table.add_row(t["track"], t["error"], "", "", "")
            continue
        files = "; ".join(f"{k} {_rel(v, root)}" for k, v in t["files"].items() if v)
        d = t["dates"]
        dates = f"{d['start'] or '?'}..{d['end'] or '?'}" + (
            f" (ref {d['ref_date']})" if d["ref_date"] else "")
        r = t["reference"]
        ref = ", ".join(x for x in (
            f"lat {r['lat']:.5f} lon {r['lon']:.5f}" if r["lat"] is not None
            and r["lon"] is not None else "",
            f"y {r['y']} x {r['x']}" if r["y"] is not None and r["x"] is not None else "")
            if x) or "none"
        v = t["velocity"]
        vel = ("no valid pixel" if v["min"] is None else
               f"{v['min']:.4g}..{v['max']:.4g} (1-99 %: {v['p01']:.4g}..{v['p99']:.4g})")
        coded = "geocoded" if t["geocoded"] else "radar coordinates"
        table.add_row(f"{t['track']} ({coded}, {t['orbit'] or 'orbit ?'})", files, dates,
                      ref, vel)
    return table


def _short(s) -> str:
    d = s.details
    if s.kind == "raster":
        rng = "" if d["min"] is None else f"{d['min']:.4g}..{d['max']:.4g}"
        return f"{d['dtype']} res {d['resolution'][0]:.3g} range {rng} nodata {d['nodata']}"
    if s.kind == "vector":
        return f"{','.join(d['geometry_types'])}; columns {', '.join(d['columns'][:6])}"
    if s.kind.startswith("mintpy"):
        out = f"{', '.join(d['datasets'][:6])} [{d['unit'] or ''}] {d['orbit'] or ''}"
        dates = d.get("dates") or {}
        if dates.get("start") or dates.get("end"):
            out += f"; {dates.get('start') or '?'}..{dates.get('end') or '?'}"
        if d.get("reference"):
            out += f"; ref lat/lon {d['reference'][0]}, {d['reference'][1]}"
        if d.get("reference_yx"):
            out += f"; ref y/x {d['reference_yx'][0]}, {d['reference_yx'][1]}"
        if d.get("velocity_range"):
            lo, hi = d["velocity_range"]
            out += f"; velocity {lo:.4g}..{hi:.4g} m/year"
        from rich.markup import escape

        return escape(out)
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
