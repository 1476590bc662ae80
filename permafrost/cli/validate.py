"""`permafrost validate`: score a PZI map on boreholes and compare it with prior maps."""

from __future__ import annotations

from pathlib import Path

import typer

from permafrost.cli._app import app, bounded, console, crs_option, emit_json, make_table
from permafrost.defaults import BOOTSTRAP_RESAMPLES, CI_LEVEL, SITE_M


@app.command("validate")
def validate_cmd(
    pzi: Path = typer.Argument(..., help="PZI raster (probability of permafrost, 0-1)."),
    boreholes: Path | None = typer.Option(None, "--boreholes",
                                          help="Borehole presence table (CSV or vector)."),
    boreholes_crs: str | None = typer.Option(None, "--boreholes-crs", callback=crs_option,
                                             help="CRS of x/y columns of the borehole table."),
    borehole_column: list[str] = typer.Option(
        [], "--borehole-column", metavar="ROLE=NAME", help="Column of the borehole table by role, ROLE=NAME "
        "(roles id, x, y, presence, magt, elevation, year); repeatable."),
    prior: list[str] = typer.Option(
        [], "--prior",
        help="Prior map: NAME=FILE:categorical:PF_CODES[:OTHER_CODES] or "
             "NAME=FILE:continuous:THRESHOLD (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Output directory."),
    threshold: float = typer.Option(0.5, "--threshold",
                                    callback=bounded("threshold"),
                                    help="PZI threshold for permafrost."),
    mask: Path | None = typer.Option(None, "--mask",
                                     help="Cells excluded from map agreement (polygons/raster)."),
    n_bins: int = typer.Option(10, "--bins",
                               callback=bounded("n_bins"), help="Reliability curve bins."),
    bootstrap: int = typer.Option(BOOTSTRAP_RESAMPLES, "--bootstrap",
                                  callback=bounded("bootstrap_resamples"),
                                  help="Resamples of the percentile bootstrap of every "
                                       "borehole metric."),
    ci_level: float = typer.Option(CI_LEVEL, "--ci-level", callback=bounded("ci_level"),
                                   help="Confidence level of the bootstrap intervals."),
    site_m: float = typer.Option(SITE_M, "--site-m", callback=bounded("site_m"),
                                 help="Boreholes closer than this to a neighbour form one site, "
                                      "the bootstrap's resampling unit [m]."),
    seed: int = typer.Option(0, "--seed",
                             callback=bounded("seed"), help="Random seed of the bootstrap."),
    as_json: bool = typer.Option(False, "--json", help="Print the results as JSON, no table."),
    model: Path | None = typer.Option(
        None, "--model", help="Model directory that made the map: compares the held-out AUC "
        "with its spatial-CV AUC and adds its per-source and leave-one-source-out skill."),
) -> None:
    """Borehole metrics side by side for the model and each prior; area agreement with priors."""
    from permafrost.io.boreholes import parse_column_options
    from permafrost.validation import parse_prior_spec
    from permafrost.workflows.validate import validate_from_files

    specs = [parse_prior_spec(s) for s in prior]
    res = validate_from_files(pzi, boreholes_path=boreholes, boreholes_crs=boreholes_crs,
                              boreholes_columns=parse_column_options(borehole_column),
                              priors=specs, out_dir=out,
                              threshold=threshold, mask_path=mask, n_bins=n_bins,
                              bootstrap_resamples=bootstrap, ci_level=ci_level, site_m=site_m,
                              seed=seed, model_path=model).as_dict()
    if as_json:
        emit_json(res)
        return
    if "boreholes" in res:
        b = res["boreholes"]
        t = make_table(f"Boreholes ({b['n_common']} valid in every map of {b['n_read']})")
        cols = ["map", "n", "accuracy", "balanced_accuracy", "kappa", "auc", "brier"]
        for c in cols:
            t.add_column(c.replace("balanced_accuracy", "bal.acc"),
                         justify="left" if c == "map" else "right")
        for r in b["table"]:
            t.add_row(*[_fmt(r.get(c)) for c in cols])
        console.print(t)
        for name, ex in b["excluded"].items():
            if ex["outside"] or ex["nodata"]:
                console.print(f"{name}: {len(ex['outside'])} boreholes outside the map, "
                              f"{len(ex['nodata'])} on nodata")
    for p in res.get("priors", []):
        a = p["agreement"]
        console.print(
            f"{p['name']}: kappa {_fmt(a['kappa'])}, agreement {_fmt(a['overall_agreement'])}, "
            f"missed {a['missed_km2']:,.2f} km2, excess {a['excess_km2']:,.2f} km2, "
            f"IoR {_fmt(a['intersection_over_reference'])}, "
            f"IoM {_fmt(a['intersection_over_model'])} (of {a['common_km2']:,.2f} km2 common)")
    tr = res.get("transfer") or {}
    for r in tr.get("leave_one_source_out") or []:
        if "skipped" in r:
            console.print(f"leave-one-source-out, {r['held_out']}: skipped ({r['skipped']})")
        else:
            iv = (r.get("ci") or {}).get("auc") or {}
            ci = f" [{iv['low']:.2f}, {iv['high']:.2f}]" if iv.get("low") is not None else ""
            console.print(f"leave-one-source-out: trained on {' + '.join(r['trained_on'])}, "
                          f"{r['held_out']} AUC {_fmt(r.get('auc'))}{ci} (n={r['n_test']})")
    for w in res.get("warnings") or []:
        console.print(f"[bold yellow]WARNING[/bold yellow] {w}")
    console.print(f"wrote {out / 'validation.json'}")


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)
