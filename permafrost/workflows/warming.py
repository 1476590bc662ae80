"""Warming scenarios of the physical method: the validated baseline PZI map warmed through
ground temperature (permafrost.warming), block by block.

For each cell, ``PZI' = Phi(Phi^-1(PZI) - dTTOP / sigma)`` (Gruber 2012, eq. 5) with the
shift of the temperature at the top of permafrost

    dTTOP = integral over 0..dT of s(MAAT + u) du       (Simpson's rule: s at 0, dT/2, dT)

and ``s = rk nt f + nf (1 - f)`` the TTOP sensitivity (Smith & Riseborough 2002) at the
cell's MAAT, the air temperature amplitude A and the n-factors of its surface class
(permafrost.nfactors).  ``sigma`` [degC] comes from in-situ MAGT records against the baseline
PZI (permafrost.warming.spread_from_magt), else a default.  The low and high ends of the
area interval take the n-factor ranges and the sigma interval together: the least loss is
the lowest sensitivity with the widest spread, the most loss the highest sensitivity with
the narrowest spread.  Cells that are NaN in the baseline (masked, nodata) stay NaN.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as darr
import numpy as np
import xarray as xr

from permafrost.area.ellipsoid import cell_areas
from permafrost.checks import expects
from permafrost.defaults import (
    AIR_AMPLITUDE_C,
    CHUNK,
    GROUND_SPREAD_C,
    GROUND_SPREAD_RANGE_C,
    MIN_MAGT_RECORDS,
)
from permafrost.errors import DataError
from permafrost.grid import grid_of, sample_at_points
from permafrost.io.guard import Output, check_outputs
from permafrost.io.rasters import read_raster
from permafrost.io.styles import write_layer_cog
from permafrost.io.vectors import read_vector
from permafrost.nfactors import N_FACTORS, UNKNOWN, factor_tables, lookup, surface_of
from permafrost.surface import find_surface, surface_classes
from permafrost.warming import (
    spread_from_magt,
    spread_from_magt_ml,
    ttop_sensitivity,
    warmed_pzi,
)
from permafrost.workflows.covariates import build_stack, covariate_files
from permafrost.workflows.predict import write_zones

__all__ = ["WarmingResult", "spread_for_warming", "warm_pzi_raster", "physical_loss"]

log = logging.getLogger(__name__)

_WHICH = ("value", "low", "high")


@dataclass
class WarmingResult:
    """A warmed map: its files, the PZI-weighted areas [km2] of the baseline and of the
    central, least-loss ("high" area) and most-loss ("low" area) warmed maps, the
    sensitivity's median, the spread used and the surfaces' n-factors."""

    pzi: Path
    zones: Path | None
    delta_t: float
    areas_km2: dict[str, float]
    sensitivity: dict[str, float]
    sigma: dict[str, Any]
    surfaces: dict[str, Any] = field(default_factory=dict)
    cells_raised: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"delta_t": self.delta_t, "pzi_weighted_km2": self.areas_km2,
                "sensitivity": self.sensitivity, "sigma": self.sigma,
                "surfaces": self.surfaces, "cells_raised": self.cells_raised,
                "rule": "PZI' = Phi(Phi^-1(PZI) - dTTOP/sigma), dTTOP = integral of "
                        "s = rk nt f + nf (1 - f) over the warming (Simpson); interval: "
                        "n-factor ranges and sigma interval together"}


@expects(baseline_pzi="path")
def spread_for_warming(baseline_pzi, labels=None, *, sigma: float | None = None,
                       min_records: int = MIN_MAGT_RECORDS, seed: int = 0) -> dict[str, Any]:
    """The ground-temperature spread sigma [degC] of the physical method.

    Given: ``sigma`` (interval that value).  Else fitted from the labels' ``magt_c`` column
    (boreholes, GTN-P/PERMOS) against the baseline PZI at the records
    by maximum likelihood (:func:`permafrost.warming.spread_from_magt_ml`; the slope-only fit
    :func:`~permafrost.warming.spread_from_magt` is recorded beside it) when there are at
    least ``min_records`` and the records correlate positively with the map; else :data:`~permafrost.defaults.GROUND_SPREAD_C` with the range
    :data:`~permafrost.defaults.GROUND_SPREAD_RANGE_C` and a warning.

    Returns
    -------
    dict with ``sigma_c``, ``interval_c``, ``source``, ``n``, ``r`` and ``warning`` (or None).
    """
    if sigma is not None:
        return {"sigma_c": float(sigma), "interval_c": [float(sigma), float(sigma)],
                "source": "given", "n": 0, "r": None, "warning": None}
    n, why = 0, "no labels with a MAGT"
    if labels is not None:
        pts = read_vector(labels) if not hasattr(labels, "geometry") else labels
        if "magt_c" in pts.columns:
            pts = pts[np.isfinite(pts["magt_c"].astype(float))]
            n = len(pts)
            if n >= min_records:
                da = read_raster(baseline_pzi, chunks=CHUNK)
                p, _ = sample_at_points(da, pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy(),
                                        crs=pts.crs)
                ok = np.isfinite(p)
                n = int(ok.sum())
                if n >= min_records:
                    magt = pts["magt_c"].astype(float).to_numpy()[ok]
                    fit = spread_from_magt_ml(p[ok], magt, seed=seed)
                    slope = spread_from_magt(p[ok], magt, seed=seed)  # for the record
                    lo, hi = fit.interval
                    if np.isfinite(fit.sigma) and fit.sigma > 0 and lo > 0 and fit.r > 0:
                        return {"sigma_c": fit.sigma, "interval_c": [lo, hi],
                                "source": "in-situ MAGT", "n": fit.n, "r": fit.r,
                                "rule": "maximum likelihood of MAGT ~ N(sigma z, sigma^2), "
                                        "z = -Phi^-1(PZI) (permafrost.warming."
                                        "spread_from_magt_ml)",
                                "slope_only_c": slope.sigma, "warning": None}
                    why = (f"the fit from {n} MAGT records gives sigma {fit.sigma:.2f} degC "
                           f"(interval {lo:.2f}..{hi:.2f}): the map and the records disagree")
                else:
                    why = f"{n} MAGT records on the map"
            else:
                why = f"{n} MAGT records"
    lo, hi = GROUND_SPREAD_RANGE_C
    warning = (f"ground-temperature spread sigma: {why}, fewer than the {min_records} needed "
               f"to fit it; the default {GROUND_SPREAD_C:g} degC ({lo:g}..{hi:g}) is used"
               if "disagree" not in why else
               f"ground-temperature spread sigma: {why}; the default {GROUND_SPREAD_C:g} degC "
               f"({lo:g}..{hi:g}) is used")
    return {"sigma_c": GROUND_SPREAD_C, "interval_c": [lo, hi], "source": "default", "n": n,
            "r": None, "warning": warning + " (give [scenario_method] sigma_c, or more "
            "boreholes with magt_c)"}


def _sensitivity_integral(maat, amplitude, delta_t, nf, nt, rk):
    """The mean TTOP sensitivity over the warming 0..dT (Simpson's rule) [degC/degC]."""
    s = [ttop_sensitivity(maat + u, amplitude, nf=nf, nt=nt, rk=rk)
         for u in (0.0, delta_t / 2.0, delta_t)]
    return (s[0] + 4.0 * s[1] + s[2]) / 6.0


def _warm_block(pzi, maat, codes, *, delta_t, amplitude, sigmas, tables):
    """Central, most-loss and least-loss warmed PZI of one block, shape (3, ny, nx)."""
    out = np.empty((3, *pzi.shape), dtype=np.float64)
    unknown = N_FACTORS[UNKNOWN]
    for i, (which, sig) in enumerate((("value", sigmas[0]), ("high", sigmas[1]),
                                      ("low", sigmas[2]))):
        j = _WHICH.index(which)
        par = {p: lookup(codes, tables[which][p], getattr(unknown, p)[j])
               if codes is not None else np.full(pzi.shape, getattr(unknown, p)[j])
               for p in ("nf", "nt", "rk")}
        m = np.where(np.isfinite(maat), maat, np.nan)
        s = _sensitivity_integral(m, amplitude, delta_t, par["nf"], par["nt"], par["rk"])
        # no MAAT: no shift can be computed, the cell gets no PZI
        w = warmed_pzi(pzi, delta_t, sensitivity=np.where(np.isfinite(s), s, 0.0), sigma=sig)
        out[i] = np.where(np.isfinite(s) & np.isfinite(pzi), w, np.nan)
    return out


def _surface_layer(ds: xr.Dataset):
    """The land-cover covariate of the stack (categorical with a classes table) and its
    ``{code: name}``, else (None, {})."""
    name = find_surface(ds, "auto")
    if name is None:
        name = next((str(v) for v in ds.data_vars if surface_classes(ds[v])), None)
    return (ds[name], surface_classes(ds[name])) if name is not None else (None, {})


@expects(baseline_pzi="path", covariates="covariates", out="path", zones="path?")
def warm_pzi_raster(baseline_pzi, covariates, out, *, delta_t: float, covariate: str = "maat",
                    amplitude: float = AIR_AMPLITUDE_C, sigma: float = GROUND_SPREAD_C,
                    sigma_interval: tuple[float, float] | None = None, zones=None,
                    chunk: int = CHUNK) -> WarmingResult:
    """Warm a baseline PZI map by ``delta_t`` [degC] of air temperature; write the warmed PZI
    (and zones) as COGs, block by block.

    Parameters
    ----------
    baseline_pzi : path-like
        The validated baseline map (``pzi.tif``).
    covariates : path-like
        The covariate stack (directory or stack file) on the map's grid: today's air
        temperature ``covariate`` and, when it has one, a categorical land cover.
    out, zones : path-like
        The warmed PZI and (optional) zone COGs.
    delta_t : float
        Air warming [degC].
    covariate : str
        The MAAT covariate [degC].
    amplitude : float
        Annual air temperature amplitude A [degC].
    sigma : float
        Ground-temperature spread [degC]; ``sigma_interval`` its (low, high).
    chunk : int
        Block side [pixels]; the result does not depend on it.

    Returns
    -------
    WarmingResult
    """
    out = Path(out)
    # no command of its own (the pipeline's predict step of a physical scenario): the paths
    # are named by what they are, not by options no command has
    check_outputs([Output(out, "the warmed PZI", what="warmed PZI"),
                   Output(zones, "the warmed zones", what="zones")],
                  {"the baseline PZI": baseline_pzi,
                   "inputs.covariates": covariate_files(covariates)})
    lo_s, hi_s = sigma_interval or (sigma, sigma)
    base = read_raster(baseline_pzi, chunks=chunk)
    ds = build_stack(covariates, chunks=chunk)
    if covariate not in ds.data_vars:
        raise DataError(f"the stack has no air temperature covariate {covariate!r}",
                        path=covariates, field=covariate,
                        fix="name the MAAT covariate the scenario offsets")
    grid, sgrid = grid_of(base), grid_of(ds)
    if grid.shape != sgrid.shape or not np.allclose(tuple(grid.transform)[:6],
                                                    tuple(sgrid.transform)[:6]):
        raise DataError("the baseline map and the covariate stack are not on one grid",
                        path=baseline_pzi, fix="predict the baseline from this stack")
    maat = ds[covariate].data.rechunk(base.data.chunks)
    lc, classes = _surface_layer(ds)
    codes = lc.data.rechunk(base.data.chunks) if lc is not None else None
    tables = factor_tables(classes)
    args = dict(delta_t=float(delta_t), amplitude=float(amplitude),
                sigmas=(float(sigma), float(lo_s), float(hi_s)), tables=tables)

    def block(p, m, *c):
        return _warm_block(p, m, c[0] if c else None, **args)

    ins = [base.data.astype(np.float64), maat.astype(np.float64)]
    if codes is not None:
        ins.append(codes)
    warm3 = darr.map_blocks(block, *ins, dtype=np.float64, new_axis=0,
                            chunks=((3,), *base.data.chunks))
    central = warm3[0]
    area = cell_areas(grid)  # m2: (rows, 1) geographic, (rows, cols) projected
    area_da = darr.from_array(np.broadcast_to(area, grid.shape), chunks=base.data.chunks)
    b = base.data.astype(np.float64)

    def wsum(x):
        return darr.nansum(x * area_da) / 1e6

    raised = darr.sum((central > b + 1e-12) & darr.isfinite(b))
    with dask.config.set(scheduler="threads"):
        a0, ac, a_most, a_least, n_up = dask.compute(wsum(b), wsum(central), wsum(warm3[1]),
                                                     wsum(warm3[2]), raised)
        da = xr.DataArray(central.astype(np.float32), dims=("y", "x"),
                          coords={"y": base["y"].values, "x": base["x"].values})
        da = da.rio.write_crs(base.rio.crs).rio.write_transform(grid.transform)
        tags = {"PZI_CONTENT": "warmed permafrost probability, float32 [0, 1]",
                "PZI_WARMING": f"dT={float(delta_t):g} degC, A={float(amplitude):g} degC, "
                               f"sigma={float(sigma):.4g} degC, method=physical (TTOP)"}
        write_layer_cog(da, out, "warmed_pzi", nodata=np.nan, dtype="float32", tags=tags)
        if zones is not None:
            write_zones(da, zones, tags)
        s_med = _sensitivity_summary(ins[1], codes, args)
    surfaces = {str(code): {"class": name, "surface": surface_of(name)}
                for code, name in sorted(classes.items())}
    return WarmingResult(
        pzi=out, zones=Path(zones) if zones is not None else None, delta_t=float(delta_t),
        areas_km2={"baseline": float(a0), "central": float(ac), "low": float(a_most),
                   "high": float(a_least)},
        sensitivity=s_med, sigma={"sigma_c": float(sigma), "interval_c": [float(lo_s),
                                                                         float(hi_s)]},
        surfaces={"classes": surfaces,
                  "n_factors": {k: v.as_dict() for k, v in N_FACTORS.items()}},
        cells_raised=int(n_up))


def _sensitivity_summary(maat, codes, args) -> dict[str, float]:
    """Median of the mean sensitivity over the map (central, low and high n-factors), from
    a strided sample of at most about 250 000 cells (bounded memory)."""
    ny, nx = maat.shape
    step = max(1, int(np.ceil(np.sqrt(ny * nx / 250_000))))
    m = np.asarray(maat[::step, ::step].compute(), dtype=np.float64)
    c = np.asarray(codes[::step, ::step].compute()) if codes is not None else None
    out = {}
    unknown = N_FACTORS[UNKNOWN]
    for j, which in enumerate(_WHICH):
        par = {p: lookup(c, args["tables"][which][p], getattr(unknown, p)[j])
               if c is not None else np.full(m.shape, getattr(unknown, p)[j])
               for p in ("nf", "nt", "rk")}
        s = _sensitivity_integral(m, args["amplitude"], args["delta_t"], par["nf"], par["nt"],
                                  par["rk"])
        out[f"median_{which}"] = float(np.nanmedian(s)) if np.isfinite(s).any() else float("nan")
    return out


def physical_loss(baseline_pzi, covariates, *, delta_t: float, covariate: str = "maat",
                  amplitude: float = AIR_AMPLITUDE_C, sigma: float = GROUND_SPREAD_C,
                  chunk: int = CHUNK) -> tuple[float, float]:
    """(baseline, warmed) PZI-weighted area [km2] the physical method expects, without
    writing a map: the comparison figure of a cross-section scenario."""
    base = read_raster(baseline_pzi, chunks=chunk)
    ds = build_stack(covariates, chunks=chunk)
    grid = grid_of(base)
    maat = ds[covariate].data.rechunk(base.data.chunks)
    lc, classes = _surface_layer(ds)
    codes = lc.data.rechunk(base.data.chunks) if lc is not None else None
    args = dict(delta_t=float(delta_t), amplitude=float(amplitude),
                sigmas=(float(sigma),) * 3, tables=factor_tables(classes))
    ins = [base.data.astype(np.float64), maat.astype(np.float64)]
    if codes is not None:
        ins.append(codes)
    central = darr.map_blocks(lambda p, m, *c: _warm_block(p, m, c[0] if c else None,
                                                            **args)[0],
                              *ins, dtype=np.float64)
    area = darr.from_array(np.broadcast_to(cell_areas(grid), grid.shape),
                           chunks=base.data.chunks)
    with dask.config.set(scheduler="threads"):
        a0, a1 = dask.compute(darr.nansum(ins[0] * area) / 1e6, darr.nansum(central * area) / 1e6)
    return float(a0), float(a1)
