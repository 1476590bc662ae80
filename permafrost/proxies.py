"""Covariates that stand in for each other, and what that means for a scenario.

Terrain and vegetation covariates (elevation, NDVI) are in mountains strongly related to
air temperature: a model can learn the temperature signal from either.  A scenario that
shifts MAAT and holds such a *proxy* fixed keeps the part of the response the model
learnt from the proxy at today's climate, so the map answers less than the warming asks
for (on a test region 73 % of the response was lost at +2 °C).  This module measures,
when a model is trained, how strongly the covariates depend on each other across the
landscape, and tells, for a scenario, which changed covariate has an unchanged proxy in
the model.

The dependence is measured on a regular sample of the whole covariate grid (the
landscape the scenario map covers), not at the labels: the proxy relation that matters
is the one the map is predicted on.  Beyond 4096 x 4096 cells the sample's lattice covers
16 windows of 1024 x 1024 cells spread from edge to edge (:func:`permafrost.grid.
sample_subgrid`), so ``train`` reads a bounded part of the stack, block by block.  Two figures are kept:

* Spearman's rank correlation ρ between every pair (monotone, robust to units and
  skew; Spearman 1904);
* for each covariate, the R² of a linear regression of its ranks on the ranks of all the
  others (how well the rest of the stack predicts it, i.e. 1 − 1/VIF on ranks; the
  variance inflation factor of Marquardt 1970).

A pair with |ρ| ≥ 0.7 counts as a strong proxy: the threshold above which collinearity
is commonly found to distort models and their extrapolation (Dormann et al. 2013).

Categorical covariates (land cover; ``attrs["kind"] == "categorical"``) are not ranked or
correlated as numbers: their codes have no order.  For each of them and each numeric
covariate the correlation ratio η (Fisher 1925; :func:`permafrost.categorical.correlation_ratio`:
the square root of the share of the numeric covariate's variance between the classes, equal
to |r| for a linear relation) is kept instead, and a held class map with η ≥ 0.7 on a
shifted covariate counts as its proxy as well.

References
----------
Fisher, R. A. (1925). Statistical Methods for Research Workers. Oliver & Boyd (the
    correlation ratio η).
Dormann, C. F. et al. (2013). Collinearity: a review of methods to deal with it and a
    simulation study evaluating their performance. Ecography 36, 27–46.
Marquardt, D. W. (1970). Generalized inverses, ridge regression, biased linear
    estimation, and nonlinear estimation. Technometrics 12, 591–612.
Spearman, C. (1904). The proof and measurement of association between two things.
    American Journal of Psychology 15, 72–101.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr

from permafrost.categorical import correlation_ratio, is_categorical
from permafrost.checks import expects
from permafrost.grid import read_cells, sample_subgrid

__all__ = [
    "PROXY_THRESHOLD",
    "covariate_dependence",
    "dependence_of_table",
    "proxy_warnings",
]

log = logging.getLogger(__name__)

#: |Spearman ρ| at or above which a held covariate counts as a proxy of a changed one
#: (Dormann et al. 2013: |r| > 0.7 as the collinearity threshold)
PROXY_THRESHOLD = 0.7

#: grid cells sampled (regularly) to measure the dependence
DEPENDENCE_CELLS = 50_000


def dependence_of_table(values: np.ndarray, names: Sequence[str]) -> dict:
    """Rank correlations and R² from the others of the columns of a table.

    Parameters
    ----------
    values : ndarray, shape (n, p)
        Covariate values [their own units]; rows with a NaN are dropped.
    names : sequence of str
        The p column names.

    Returns
    -------
    dict
        ``n`` (rows used), ``spearman`` ({a: {b: ρ}} [-]) and ``r2_from_others``
        ({a: R² [-]} of the ranks of ``a`` regressed on the ranks of all others; 0 for a
        single covariate).  Constant columns get ρ = 0 with every other column.
    """
    from scipy.stats import rankdata  # noqa: PLC0415

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    names = [str(n) for n in names]
    p = len(names)
    n = len(x)
    r = np.column_stack([rankdata(x[:, j]) for j in range(p)]) if n else np.zeros((0, p))
    sd = r.std(axis=0) if n else np.zeros(p)
    z = np.where(sd > 0, (r - r.mean(axis=0)) / np.where(sd > 0, sd, 1.0), 0.0)
    rho = (z.T @ z) / n if n else np.eye(p)
    rho = np.clip(rho, -1.0, 1.0)
    np.fill_diagonal(rho, 1.0)
    r2 = {}
    for j, nm in enumerate(names):
        others = [k for k in range(p) if k != j and sd[k] > 0]
        if not others or sd[j] == 0 or n <= len(others) + 1:
            r2[nm] = 0.0
            continue
        a = np.column_stack([np.ones(n), z[:, others]])
        coef, *_ = np.linalg.lstsq(a, z[:, j], rcond=None)
        resid = z[:, j] - a @ coef
        r2[nm] = float(max(0.0, 1.0 - resid.var() / z[:, j].var()))
    return {"n": int(n),
            "spearman": {a: {b: round(float(rho[i, k]), 4) for k, b in enumerate(names)}
                         for i, a in enumerate(names)},
            "r2_from_others": {k: round(v, 4) for k, v in r2.items()}}


@expects(ds="dataset")
def covariate_dependence(ds: xr.Dataset, features: Sequence[str], *,
                         max_cells: int = DEPENDENCE_CELLS) -> dict:
    """How strongly the covariates of a stack depend on each other across the landscape.

    Parameters
    ----------
    ds : xarray.Dataset
        The covariate stack (NumPy or Dask backed).
    features : sequence of str
        The covariates to relate (the model's features).
    max_cells : int
        At most this many cells, taken on a regular lattice (every k-th row and column,
        starting half a step in), so the sample is deterministic and spread evenly.  On a
        grid larger than 16 windows of 1024 x 1024 cells the lattice covers the crossings
        of 16 windows spread from edge to edge (:func:`permafrost.grid.sample_subgrid`), so
        at most 16.8 Mpx are read (block by block), whatever the grid's size; ρ from
        ~45 000 cells has a sampling error of ~0.005, far below the 0.7 threshold's margin.

    Returns
    -------
    dict
        :func:`dependence_of_table` of the sample's numeric covariates, plus ``sample`` (how
        it was taken) and ``threshold`` (:data:`PROXY_THRESHOLD`); with categorical
        covariates also ``categorical`` (``{class map: {numeric covariate: η}}``, rows where
        either is missing dropped) and ``categorical_rule``.
    """
    # the lattice over a bounded part of the grid (the whole grid up to 4096 x 4096 cells),
    # its cells read block by block: memory and time flat in the grid's size
    part_rows, part_cols = sample_subgrid((int(ds.sizes["y"]), int(ds.sizes["x"])))
    ny, nx = len(part_rows), len(part_cols)
    step = max(1, math.ceil(math.sqrt(ny * nx / max(1, max_cells))))
    rr, cc = np.meshgrid(part_rows[step // 2::step], part_cols[step // 2::step], indexing="ij")
    vals = read_cells(ds[list(features)], rr.ravel(), cc.ravel())
    cats = [str(f) for f in features if is_categorical(ds[f])]
    num = [str(f) for f in features if str(f) not in cats]
    cols = {f: vals[:, j] for j, f in enumerate(features)}
    out = dependence_of_table(np.column_stack([cols[f] for f in num]) if num
                              else np.zeros((0, 0)), num)
    whole = ny == int(ds.sizes["y"]) and nx == int(ds.sizes["x"])
    out["sample"] = (f"every {step}th row and column of the covariate grid" if whole else
                     f"every {step}th row and column of {ny} x {nx} cells of the covariate "
                     "grid: the crossings of evenly spread windows of 1024 x 1024 cells "
                     "(permafrost.grid.sample_subgrid)")
    out["threshold"] = PROXY_THRESHOLD
    if cats:
        out["categorical"] = {c: {f: round(correlation_ratio(cols[c], cols[f]), 4)
                                  for f in num} for c in cats}
        out["categorical_rule"] = ("class maps are not correlated as numbers: correlation "
                                   "ratio η of each numeric covariate on the classes "
                                   "(Fisher 1925)")
    return out


@expects(dependence="mapping?", changed="mapping")
def proxy_warnings(dependence: Mapping | None, features: Sequence[str],
                   changed: Mapping[str, str], *, changes: Sequence[str] = (),
                   threshold: float = PROXY_THRESHOLD) -> list[dict]:
    """What a scenario leaves unchanged that the model may have learnt its response from.

    Parameters
    ----------
    dependence : mapping or None
        The model's :func:`covariate_dependence` (``metadata["dependence"]``); None for a
        model trained before it was recorded (then only the unused-change check runs).
    features : sequence of str
        The model's features.
    changed : mapping
        ``{covariate: what changed it}`` for every stack covariate the scenario changed,
        directly or by recomputing it from a changed input.
    changes : sequence of str
        The inputs the scenario changes (as written in the pipeline).
    threshold : float
        |ρ| [-] from which a held feature counts as a proxy.

    Returns
    -------
    list of dict
        One record per finding, with ``kind`` (``proxy_held`` or ``change_unused``), the
        covariates, the figure and a one-line ``message``.
    """
    feats = [str(f) for f in features]
    moved = [f for f in feats if f in changed]
    held = [f for f in feats if f not in changed]
    out: list[dict] = []
    if changes and not moved:
        names = ", ".join(sorted(changes))
        out.append({"kind": "change_unused", "changed": sorted(changes),
                    "message": f"the model does not use {names} (nor anything computed from "
                               "it): this scenario cannot change the map"})
        return out
    if not dependence:
        return out
    rho = dependence.get("spearman", {})
    r2 = dependence.get("r2_from_others", {})
    eta = dependence.get("categorical") or {}
    for m in moved:
        for h in held:
            v = (eta.get(h) or {}).get(m)
            if v is None or v < threshold:
                continue
            out.append({
                "kind": "proxy_held", "shifted": m, "held": h, "eta": float(v),
                "message": f"the class map {h} is held at today's classes, but it stands in "
                           f"for {m} (correlation ratio η = {v:.2f} across the landscape): "
                           f"what the model learnt from {h} does not follow the change of "
                           f"{m}, which usually damps the response"})
    for m in moved:
        for h in held:
            v = rho.get(m, {}).get(h)
            if v is None or abs(v) < threshold:
                continue
            out.append({
                "kind": "proxy_held", "shifted": m, "held": h, "spearman": float(v),
                "r2_held_from_others": r2.get(h),
                "message": f"{h} is held at today's values, but it stands in for {m} "
                           f"(Spearman ρ = {v:+.2f} across the landscape): what the model "
                           f"learnt from {h} does not follow the change of {m}, which "
                           "usually damps the response"})
    return out
