"""``permafrost kinematics``: rock glacier movement and activity from MintPy tracks."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import typer

from permafrost.cli._app import app, bounded, console, make_table

#: the defaults of :class:`permafrost.kinematics.KinematicsConfig`, written out so that the
#: help does not import the library (tests/test_cli.py checks that they agree)
_D = SimpleNamespace(min_sensitivity=0.3, min_slope_deg=5.0, min_coherence=0.7,
                     smooth_sigma_px=1.0, active_min_m_yr=0.1, transitional_min_m_yr=0.01,
                     los_noise_floor_m_yr=0.003, k_sigma=2.0, min_valid_pixels=5,
                     min_valid_fraction=0.25)


@app.command("kinematics")
def kinematics(
    track: list[str] = typer.Option(
        ..., "--track", "-t",
        help="A MintPy track: a folder (velocity.h5 + geometryGeo.h5/geometryRadar.h5 "
             "[+ temporalCoherence.h5, maskTempCoh.h5]), a velocity.h5, or "
             "velocity=PATH,geometry=PATH[,coherence=PATH][,mask=PATH][,name=NAME]. Repeatable."),
    outlines: Path = typer.Option(..., "--outlines", "-o", help="Rock glacier outlines (any "
                                  "vector format, with a CRS)."),
    out: Path = typer.Option(..., "--out", help="Output GeoPackage."),
    dem: Path | None = typer.Option(None, "--dem", help="DEM GeoTIFF [m] (default: the "
                                    "geometry file's height)."),
    layer: str | None = typer.Option(None, "--layer", help="Layer of the outline file."),
    min_sensitivity: float = typer.Option(_D.min_sensitivity, callback=bounded("min_sensitivity"),
                                          help="Mask |C| below this [-]."),
    min_slope: float = typer.Option(_D.min_slope_deg, callback=bounded("min_slope_deg"),
                                    help="Mask flatter pixels [deg]."),
    min_coherence: float = typer.Option(_D.min_coherence, callback=bounded("min_coherence"),
                                        help="Mask lower temporal coherence [-]."),
    smooth: float = typer.Option(_D.smooth_sigma_px, callback=bounded("smooth_sigma_px"),
                                 help="DEM Gaussian smoothing [pixels]."),
    active_min: float = typer.Option(_D.active_min_m_yr, callback=bounded("active_min_m_yr"),
                                     help="Active from this downslope velocity [m/yr]."),
    transitional_min: float = typer.Option(
        _D.transitional_min_m_yr, callback=bounded("transitional_min_m_yr"),
        help="Lowest detectable (transitional) velocity [m/yr]."),
    noise_floor: float = typer.Option(_D.los_noise_floor_m_yr,
                                      callback=bounded("los_noise_floor_m_yr"),
                                      help="Correlated LOS noise floor [m/yr]."),
    k_sigma: float = typer.Option(_D.k_sigma, callback=bounded("k_sigma"),
                                  help="Significance multiplier [-]."),
    min_valid_pixels: int = typer.Option(_D.min_valid_pixels, callback=bounded("min_valid_pixels"),
                                         help="Fewer valid pixels -> uncertain."),
    min_valid_fraction: float = typer.Option(_D.min_valid_fraction,
                                             callback=bounded("min_valid_fraction"),
                                             help="Lower valid fraction -> uncertain."),
    all_touched: bool = typer.Option(False, "--all-touched", help="Use every pixel an outline "
                                     "touches (default: pixel centres inside)."),
) -> None:
    """Downslope velocity, RGIK kinematic class and activity of each rock glacier."""
    from permafrost.io.mintpy import parse_track_spec
    from permafrost.kinematics import KinematicsConfig
    from permafrost.workflows.kinematics import run_kinematics

    config = KinematicsConfig(
        min_sensitivity=min_sensitivity, min_slope_deg=min_slope, min_coherence=min_coherence,
        smooth_sigma_px=smooth, active_min_m_yr=active_min,
        transitional_min_m_yr=transitional_min, los_noise_floor_m_yr=noise_floor,
        k_sigma=k_sigma, min_valid_pixels=min_valid_pixels,
        min_valid_fraction=min_valid_fraction, all_touched=all_touched)
    res = run_kinematics([parse_track_spec(t) for t in track], outlines, out=out, dem=dem,
                         layer=layer, config=config)
    tab = res.summary
    assert tab is not None  # compute_kinematics always summarises
    table = make_table(f"{len(res.outlines)} outlines -> {out}")
    table.add_column("RGIK class")
    for c in tab.columns:
        table.add_column(str(c), justify="right")
    table.add_column("total", justify="right")
    for cls, row in tab.iterrows():
        table.add_row(str(cls), *[str(int(v)) for v in row], str(int(row.sum())))
    table.add_row("total", *[str(int(v)) for v in tab.sum()], str(int(tab.values.sum())),
                  style="bold")
    console.print(table)
    for name, cnt in res.pixel_counts.items():
        masked = ", ".join(f"{k} {v}" for k, v in cnt.items() if k not in ("valid", "pixels"))
        console.print(f"track {name}: {cnt['valid']} of {cnt['pixels']} pixels valid "
                      f"(masked: {masked})", markup=False, highlight=False)
