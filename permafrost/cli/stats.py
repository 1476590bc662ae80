"""`permafrost stats`: permafrost area statistics of a PZI raster (whole map, regions, bands)."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import (app, bounded, console, emit_json, make_table,
                                  write_json_or_stdout)


@app.command("stats")
def stats_cmd(
    pzi: Path = typer.Argument(..., help="PZI raster (probability of permafrost, 0-1)."),
    regions: Path | None = typer.Option(None, "--regions", help="Polygons of regions."),
    region_field: str = typer.Option("name", "--region-field", help="Region name column."),
    dem: Path | None = typer.Option(None, "--dem", help="DEM for elevation bands [m]."),
    band_width: float = typer.Option(200.0, "--band-width",
                                     callback=bounded("band_width"),
                                     help="Elevation band width [m]."),
    mask: Path | None = typer.Option(None, "--mask",
                                     help="Cells to exclude: polygons (glaciers, lakes) or a "
                                          "raster (any grid, nearest neighbour; non-zero = "
                                          "excluded)."),
    out_json: Path | None = typer.Option(None, "--out-json",
                                         help="Write the results as JSON ('-': to stdout)."),
    out_csv: Path | None = typer.Option(None, "--out-csv", help="Write the table as CSV."),
    out_profile: Path | None = typer.Option(
        None, "--out-profile", help="With --dem: write the PZI-elevation profile by aspect and "
                                    "the lower limit of permafrost (profile.json)."),
    labels: Path | None = typer.Option(
        None, "--labels", help="With --out-profile: the training labels, to check the PZI "
                               "above the highest one."),
    block_rows: int | None = typer.Option(None, "--block-rows", callback=bounded("block_rows"),
                                          help="Rows per block (default: ~1M cells a block)."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON, no table."),
) -> None:
    """Area with PZI >= 0.5, PZI-weighted area, permafrost region and zone areas (km2)."""
    from permafrost.io.guard import Output, check_outputs
    from permafrost.workflows.stats import stats_from_files, write_stats

    if out_profile is not None and dem is None:  # before any work
        from permafrost.errors import InputError

        raise InputError("--out-profile needs a DEM", field="--dem",
                         fix="give --dem DEM.tif (the profile is PZI against elevation)")
    check_outputs([Output(out_json, "--out-json", what="statistics"),
                   Output(out_csv, "--out-csv", what="table"),
                   Output(out_profile, "--out-profile", what="profile")],
                  {"PZI": pzi, "--regions": regions, "--dem": dem, "--mask": mask,
                   "--labels": labels})
    stats = stats_from_files(pzi, regions_path=regions, region_field=region_field,
                             dem_path=dem, band_width=band_width, mask_path=mask,
                             block_rows=block_rows)
    result = stats.as_dict()
    prof = None
    if out_profile is not None:
        from permafrost.io.results import write_json
        from permafrost.workflows.stats import profile_from_files

        prof = profile_from_files(pzi, dem, band_width=band_width, mask_path=mask,
                                  labels_path=labels, block_rows=block_rows)
        write_json(prof.as_dict(), out_profile)
    to_stdout = out_json is not None and write_json_or_stdout(result, out_json)
    if out_csv:
        write_stats(stats, out_csv=out_csv)
    if as_json and not to_stdout:
        emit_json(result)
    if as_json or to_stdout:
        return
    meta = result["meta"]
    mask_txt = (f"mask {meta['mask']['source']} ({meta['mask']['masked_km2']:.2f} km2 excluded)"
                if meta["mask"] else "no mask")
    table = make_table(f"Permafrost area of {pzi.name} (km2)")
    kind = {"all": "all", "region": "region", "elevation_band": "band"}
    table.add_column("unit")
    table.add_column("name")
    for head in ("denominator", "PZI>=0.5", "fraction", "PZI-weighted", "region"):
        table.add_column(head, justify="right")
    zones = make_table("Zone areas (km2)")
    zones.add_column("name")
    for head in ("continuous", "discontinuous", "sporadic", "isolated"):
        zones.add_column(head, justify="right")
    for u in result["units"]:
        table.add_row(kind.get(u["unit"], u["unit"]), u["name"],
                      *[_fmt(u.get(k)) for k in ("denominator_km2", "pzi_ge_0.5_km2",
                                                 "fraction_pzi_ge_0.5", "pzi_weighted_km2",
                                                 "region_km2")])
        zones.add_row(u["name"], *[_fmt(u.get(f"{z}_km2")) for z in
                                   ("continuous", "discontinuous", "sporadic", "isolated")])
    console.print(table)
    console.print(zones)
    w = result["units"][0]
    frac = "-" if w["fraction_pzi_ge_0.5"] is None else f"{w['fraction_pzi_ge_0.5']:.4f}"
    console.print(f"Headline: {w['pzi_ge_0.5_km2']:,.2f} km2 with PZI >= 0.5 (fraction {frac} "
                  f"of {w['denominator_km2']:,.2f} km2); PZI-weighted "
                  f"{w['pzi_weighted_km2']:,.2f} km2; region {w['region_km2']:,.2f} km2.")
    console.print(f"Denominator: {meta['denominator']}; {mask_txt}.")
    console.print(f"Cell areas: {meta['cell_area_method']}.")
    if prof is not None:
        zs = {c: prof.lower_limits[c]["elevation_m"] for c in ("all", "north", "south")}
        console.print("Lower limit of permafrost (PZI = 0.5): " + ", ".join(
            f"{c} {'none' if z is None else f'{z:.0f} m'}" for c, z in zs.items()) + ".")
        for w in prof.warnings:
            console.print(f"[yellow]warning:[/yellow] {w}")
    for p in (out_json, out_csv, out_profile):
        if p:
            console.print(f"wrote {p}")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) <= 1 else f"{v:,.2f}"
    return str(v)
