"""Validation of a PZI map against boreholes and against prior permafrost maps.

Boreholes
    Each map is sampled at the boreholes on its own native grid (the cell that contains the
    borehole; no resampling) and scored with the confusion matrix at a threshold (PZI ≥ 0.5
    = permafrost), accuracy, balanced accuracy, Cohen's kappa, ROC AUC, Brier score and a
    reliability curve.  All maps are also scored on the *same* boreholes (those inside and
    valid in every map) for the side-by-side table.  The metrics themselves live in
    :mod:`permafrost.metrics`.

Prior maps
    A prior is categorical (class codes; a mapping says which codes are permafrost) or
    continuous (permafrost where value ≥ a threshold).  It is put on the model grid by
    nearest neighbour (GDAL warper): class-preserving (no invented mixed classes), no
    smoothing of the model, and every comparison is made cell by cell on the model grid
    where exact ellipsoidal cell areas are known (:mod:`permafrost.area`).  A coarse prior
    cell is thus replicated over the model cells whose centres it contains.  The
    agreement is area-weighted: a 2 × 2 area matrix, Cohen's kappa, missed and excess
    area, intersection over reference and over model, the zone-by-class agreement matrix
    and zone areas side by side over the common valid area.

See ``docs/validation.md`` for every definition and its reference.

References
----------
Cohen, J. (1960). A coefficient of agreement for nominal scales. Educ. Psychol. Meas. 20, 37–46.
Brier, G. W. (1950). Verification of forecasts expressed in terms of probability. Mon. Weather
    Rev. 78, 1–3.
Hanley, J. A., McNeil, B. J. (1982). The meaning and use of the area under a ROC curve.
    Radiology 143, 29–36.
Brodersen, K. H. et al. (2010). The balanced accuracy and its posterior distribution. ICPR.
Niculescu-Mizil, A., Caruana, R. (2005). Predicting good probabilities with supervised
    learning. ICML (reliability diagrams).
Congalton, R. G. (1991). A review of assessing the accuracy of classifications of remotely
    sensed data. Remote Sens. Environ. 37, 35–46 (agreement matrices, kappa for maps).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from permafrost.area import ZONE_NAMES as _ZONE_NAMES
from permafrost.area import cell_areas, classify_zones
from permafrost.checks import expects, require_geodataframe, require_xarray
from permafrost.cv import metric_xy, site_ids
from permafrost.defaults import BOOTSTRAP_RESAMPLES, CI_LEVEL, SITE_M, auto_block_rows
from permafrost.errors import CRSError, DataError, InputError, ParameterError
from permafrost.grid import grid_of, sample_at_points
from permafrost.metrics import binary_metrics, cohen_kappa
from permafrost.options import bound, check_name, check_options
from permafrost.rasterize import Shapes, burn, polygons_in_crs

__all__ = [
    "PriorSpec",
    "parse_prior_spec",
    "prior_to_binary",
    "map_agreement",
    "bootstrap_metrics",
    "paired_bootstrap",
    "PAIRED_METRICS",
    "CI_METRICS",
    "ValidationResult",
    "validate",
    "check_prior_names",
    "agreement_file_name",
]

log = logging.getLogger(__name__)

#: zone names by zone code (:data:`permafrost.area.ZONE_NAMES`, as a list)
ZONE_NAMES = list(_ZONE_NAMES)


# --------------------------------------------------------------------------- bootstrap
#: metrics given a bootstrap interval
CI_METRICS = ("auc", "balanced_accuracy", "kappa", "brier", "accuracy", "sensitivity",
              "specificity")
#: fewest sites for a site (cluster) bootstrap; with fewer, boreholes are resampled
MIN_BOOTSTRAP_SITES = 10


def _metrics_weighted(y: np.ndarray, q: np.ndarray, w: np.ndarray, *, threshold: float,
                      probabilistic: bool) -> dict[str, np.ndarray]:
    """The metrics of :func:`permafrost.metrics.binary_metrics` for many weight vectors.

    ``w`` is ``(B, n)`` (bootstrap counts); each row gives the metrics of one resample,
    with NaN where a metric is undefined (the same rules as ``binary_metrics``).
    """
    yb = y.astype(bool)
    pred = q >= threshold
    tp = w @ (yb & pred).astype(float)
    fp = w @ (~yb & pred).astype(float)
    fn = w @ (yb & ~pred).astype(float)
    tn = w @ (~yb & ~pred).astype(float)
    total = tp + fp + fn + tn
    with np.errstate(invalid="ignore", divide="ignore"):
        sens = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        spec = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
        acc = np.where(total > 0, (tp + tn) / total, np.nan)
        po = acc
        pe = ((tp + fp) * (tp + fn) + (tn + fn) * (tn + fp)) / (total * total)
        kappa = np.where((total > 0) & (1 - pe > 1e-15), (po - pe) / (1 - pe), np.nan)
        # AUC: weighted Mann-Whitney with ties 1/2 (metrics.roc_auc), one sort for all rows
        order = np.argsort(-q, kind="mergesort")
        qs, ys, ws = q[order], yb[order], w[:, order]
        last = np.r_[np.flatnonzero(np.diff(qs)), qs.size - 1]
        tps = np.cumsum(ws * ys, axis=1)[:, last]
        fps = np.cumsum(ws * ~ys, axis=1)[:, last]
        P, F = tps[:, -1:], fps[:, -1:]
        neg_above = np.concatenate([np.zeros_like(F), fps[:, :-1]], axis=1)
        pos_here = np.diff(np.concatenate([np.zeros_like(P), tps], axis=1), axis=1)
        neg_here = np.diff(np.concatenate([np.zeros_like(F), fps], axis=1), axis=1)
        won = np.sum(pos_here * (F - neg_above - 0.5 * neg_here), axis=1)
        auc = np.where((P[:, 0] > 0) & (F[:, 0] > 0), won / (P[:, 0] * F[:, 0]), np.nan)
        brier = (w @ (q - y) ** 2 / total if probabilistic
                 else np.full(w.shape[0], np.nan))
    return {"auc": auc, "balanced_accuracy": (sens + spec) / 2, "kappa": kappa,
            "brier": brier, "accuracy": acc, "sensitivity": sens, "specificity": spec}


def _resample_counts(rng: np.random.Generator, n_resamples: int, members: np.ndarray,
                     n_units: int) -> np.ndarray:
    """``(B, n_units)`` counts of ``n_units`` draws with replacement among ``members``."""
    idx = members[rng.integers(0, len(members), size=(n_resamples, len(members)))]
    flat = (idx + n_units * np.arange(n_resamples)[:, None]).ravel()
    return np.bincount(flat, minlength=n_resamples * n_units).reshape(n_resamples, n_units)


def _resample_weights(y: np.ndarray, site: np.ndarray, by_site: bool,
                      rng: np.random.Generator, n_resamples: int):
    """Batches of ``(b, n)`` bootstrap weights (counts) of the boreholes: whole sites
    (``by_site``) or boreholes within each class; fixed batches, so the same seed gives the
    same draws whatever is computed from them (several maps on the same resamples)."""
    n = y.size
    n_sites = int(site.max()) + 1
    classes = [np.flatnonzero(y == c) for c in (0, 1)]
    batch = max(1, 2_000_000 // max(n, 1))  # resamples per batch: bounded memory
    for start in range(0, n_resamples, batch):
        b = min(batch, n_resamples - start)
        if by_site:
            yield _resample_counts(rng, b, np.arange(n_sites), n_sites)[:, site].astype(float)
        else:
            w = np.zeros((b, n))
            for members in classes:
                if len(members):
                    w += _resample_counts(rng, b, members, n).astype(float)
            yield w


def _degenerate(v: np.ndarray, ok: bool, n_resamples: int) -> str | None:
    """Why a bootstrap interval is no interval (None when it is one)."""
    if not ok:
        return (f"the metric is undefined in {n_resamples - v.size} of {n_resamples} "
                "resamples (a resample without one of the classes)")
    if v.size and float(np.min(v)) == float(np.max(v)):
        return ("every resample gives the same value: the map puts every resampled borehole "
                "on the same side, so resampling cannot show its uncertainty")
    return None


def _bootstrap_setup(y, sites, *, n_resamples, level, seed, min_sites):
    """The checked options, site ids and resampling unit shared by the bootstraps."""
    checked = check_options(bootstrap_resamples=n_resamples, ci_level=level, seed=seed)
    n = y.size
    if n == 0:
        raise DataError("no borehole to resample", field="boreholes", fix="give boreholes")
    site = (np.arange(n) if sites is None
            else np.unique(np.asarray(sites), return_inverse=True)[1].reshape(-1))
    n_sites = int(site.max()) + 1
    by_site = n_sites >= min_sites and sites is not None
    return checked["bootstrap_resamples"], checked["ci_level"], site, n_sites, by_site


#: metrics compared map against map on the same resamples (:func:`paired_bootstrap`);
#: higher is better for all three
PAIRED_METRICS = ("auc", "kappa", "balanced_accuracy")


def paired_bootstrap(y_true, p_a, p_b, *, threshold_a: float = 0.5, threshold_b: float = 0.5,
                     sites=None, n_resamples: int = BOOTSTRAP_RESAMPLES,
                     level: float = CI_LEVEL, seed: int = 0,
                     min_sites: int = MIN_BOOTSTRAP_SITES) -> dict:
    """Paired bootstrap of the difference of two maps' borehole metrics (a − b).

    Both maps are scored on the *same* resamples of the same boreholes (whole sites, or
    boreholes within each class, as :func:`bootstrap_metrics`), so the interval of the
    difference accounts for their correlation: two maps that err on the same boreholes
    differ less than their separate intervals suggest (Efron & Tibshirani 1993, Sect. 13;
    the paired comparison of AUCs on one sample, DeLong et al. 1988, here by resampling).
    ``share_a_better`` is the share of resamples where ``a`` scores higher (a one-sided
    bootstrap support, not a p-value).

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    p_a, p_b : array_like
        Each map's value at the boreholes (a probability, or 0/1 classes) [-].
    threshold_a, threshold_b : float
        Presence where the value ≥ the threshold [-].
    sites, n_resamples, level, seed, min_sites
        As :func:`bootstrap_metrics`.

    Returns
    -------
    dict
        ``unit``, ``n_units``, ``resamples``, ``level``, ``seed`` and ``differences``: per
        metric of :data:`PAIRED_METRICS` ``{"estimate", "low", "high", "valid",
        "share_a_better"}`` (None bounds where fewer than half the resamples define both).

    References
    ----------
    Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap, Ch. 13.
    DeLong, E. R., DeLong, D. M. & Clarke-Pearson, D. L. (1988). Comparing the areas under
    two or more correlated receiver operating characteristic curves. Biometrics 44, 837-845.
    """
    y = np.asarray(y_true).astype(int)
    a = np.asarray(p_a, dtype="float64")
    b = np.asarray(p_b, dtype="float64")
    if not (y.shape == a.shape == b.shape) or y.ndim != 1:
        raise DataError("labels and the two maps' values differ in shape", field="p",
                        fix="give one value per borehole for each map")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise DataError("map values must be finite", field="p",
                        fix="keep the boreholes valid in both maps")
    B, level, site, n_sites, by_site = _bootstrap_setup(
        y, sites, n_resamples=n_resamples, level=level, seed=seed, min_sites=min_sites)
    rng = np.random.default_rng(seed)
    diffs = []
    for w in _resample_weights(y, site, by_site, rng, B):
        ma = _metrics_weighted(y, a, w, threshold=threshold_a, probabilistic=False)
        mb = _metrics_weighted(y, b, w, threshold=threshold_b, probabilistic=False)
        diffs.append({m: ma[m] - mb[m] for m in PAIRED_METRICS})
    one = np.ones((1, y.size))
    ea = _metrics_weighted(y, a, one, threshold=threshold_a, probabilistic=False)
    eb = _metrics_weighted(y, b, one, threshold=threshold_b, probabilistic=False)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    out = {}
    for m in PAIRED_METRICS:
        d = np.concatenate([x[m] for x in diffs])
        v = d[np.isfinite(d)]
        ok = v.size >= B / 2
        e = float(ea[m][0] - eb[m][0])
        out[m] = {"estimate": e if np.isfinite(e) else None,
                  "low": float(np.quantile(v, lo_q)) if ok else None,
                  "high": float(np.quantile(v, hi_q)) if ok else None,
                  "valid": int(v.size),
                  "share_a_better": float(np.mean(v > 0)) if v.size else None}
    return {"method": "paired percentile", "unit": ("site" if by_site else
                                                    "borehole (stratified by class)"),
            "n_units": int(n_sites if by_site else y.size), "resamples": int(B),
            "level": float(level), "seed": int(seed), "differences": out}


def bootstrap_metrics(y_true, p, *, threshold: float = 0.5, probabilistic: bool = True,
                      sites=None, n_resamples: int = BOOTSTRAP_RESAMPLES, level: float = CI_LEVEL,
                      seed: int = 0, min_sites: int = MIN_BOOTSTRAP_SITES) -> dict:
    """Percentile bootstrap confidence intervals of the borehole metrics.

    Resampling unit: whole *sites* (``sites`` ids; boreholes a few hundred metres apart
    share their ground and are not independent, so the cluster is resampled, Davison &
    Hinkley 1997, Sect. 3.8) when there are at least ``min_sites`` of them; with fewer, a
    cluster bootstrap is unreliable (Cameron et al. 2008) and boreholes are resampled one
    by one within each class (stratified: the class counts stay fixed, so AUC, balanced
    accuracy and kappa stay defined), an interval that ignores the correlation within sites
    and is therefore too narrow; the result says which was used.  Each resample's metrics
    are those of :func:`permafrost.metrics.binary_metrics` with the resample counts as
    weights; the interval is the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of
    the resamples where the metric is defined (Efron & Tibshirani 1993, Ch. 13).

    Parameters
    ----------
    y_true : array_like of {0, 1}
        Observed presence [-].
    p : array_like
        Predicted probability (or 0/1 class) at each borehole [-].
    threshold : float
        Presence when ``p >= threshold`` [-].
    probabilistic : bool
        Whether ``p`` is a probability (Brier score only then).
    sites : array_like, optional
        Site id per borehole (:func:`permafrost.cv.site_ids`); default: every borehole its
        own site.
    n_resamples : int
        Bootstrap resamples [-] (at least 1000).
    level : float
        Confidence level [-], in (0, 1).
    seed : int
        Random seed (same inputs and seed, same interval).
    min_sites : int
        Fewest sites for the site bootstrap [-].

    Returns
    -------
    dict
        ``method`` ("percentile"), ``unit`` ("site" or "borehole (stratified by class)"),
        ``n_units``, ``n_sites``, ``resamples``, ``level``, ``seed``, ``note`` and
        ``intervals``: per metric ``{"estimate", "low", "high", "valid"}`` (``valid``:
        resamples where the metric is defined; None bounds where fewer than half are).

    References
    ----------
    Efron, B. & Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall,
    Ch. 13 (percentile intervals).
    Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application.
    Cambridge University Press, Sect. 3.8 (hierarchical / clustered data).
    Cameron, A. C., Gelbach, J. B. & Miller, D. L. (2008). Bootstrap-based improvements for
    inference with clustered errors. Rev. Econ. Stat. 90, 414-427.
    """
    y = np.asarray(y_true).astype(int)
    q = np.asarray(p, dtype="float64")
    if y.shape != q.shape or y.ndim != 1:
        raise DataError(f"labels and predictions differ in shape ({y.shape} vs {q.shape})",
                        field="p", fix="give one prediction per borehole")
    if not np.all(np.isfinite(q)):
        raise DataError("predictions must be finite", field="p", fix="drop no-data boreholes")
    n = y.size
    B, level, site, n_sites, by_site = _bootstrap_setup(
        y, sites, n_resamples=n_resamples, level=level, seed=seed, min_sites=min_sites)
    rng = np.random.default_rng(seed)
    B = int(B)
    if by_site:
        unit, n_units, note = "site", n_sites, ""
    else:
        unit, n_units = "borehole (stratified by class)", n
        note = ("" if sites is None else
                f"only {n_sites} sites (fewer than {min_sites}): boreholes resampled one by "
                "one; the interval ignores the correlation within sites and is too narrow")
    parts = [_metrics_weighted(y, q, w, threshold=threshold, probabilistic=probabilistic)
             for w in _resample_weights(y, site, by_site, rng, B)]
    boot = {m: np.concatenate([p_[m] for p_ in parts]) for m in CI_METRICS}
    est = _metrics_weighted(y, q, np.ones((1, n)), threshold=threshold,
                            probabilistic=probabilistic)
    lo_q, hi_q = (1 - level) / 2, (1 + level) / 2
    intervals: dict[str, dict[str, Any]] = {}
    for m in CI_METRICS:
        v = boot[m][np.isfinite(boot[m])]
        e = float(est[m][0])
        ok = v.size >= B / 2
        intervals[m] = {"estimate": e if np.isfinite(e) else None,
                        "low": float(np.quantile(v, lo_q)) if ok else None,
                        "high": float(np.quantile(v, hi_q)) if ok else None,
                        "valid": int(v.size)}
        why = ("a map of classes, not of probabilities, has no Brier score"
               if m == "brier" and not probabilistic else _degenerate(v, ok, B))
        if why:
            intervals[m]["degenerate"] = why
    return {"method": "percentile", "unit": unit, "n_units": int(n_units),
            "n_sites": n_sites, "resamples": B, "level": float(level), "seed": int(seed),
            "note": note, "intervals": intervals}


# --------------------------------------------------------------------------- priors
_SPEC = re.compile(r"^(?P<name>[^=]+)=(?P<path>.+?):(?P<kind>categorical|continuous)"
                   r"(?::(?P<a>[^:]*))?(?::(?P<b>[^:]*))?$")


@dataclass(frozen=True)
class PriorSpec:
    """A prior map and how to read it as permafrost / not permafrost.

    ``kind='categorical'``: ``permafrost_codes`` are permafrost; ``other_codes`` (if given)
    are not, and any other code is an error; without ``other_codes`` every other valid code
    is non-permafrost.  ``kind='continuous'``: permafrost where value ≥ ``threshold``.
    """

    name: str
    path: Path
    kind: str
    permafrost_codes: tuple = ()
    other_codes: tuple | None = None
    threshold: float = 0.5
    meta: dict = field(default_factory=dict, compare=False)


def _codes(text: str, spec: str) -> tuple:
    try:
        return tuple(int(float(v)) for v in text.split(",") if v.strip())
    except ValueError:
        raise DataError(f"class codes must be integers separated by commas, got {text!r}",
                        field="--prior",
                        fix=f"e.g. NAME=FILE:categorical:1 (in {spec!r})") from None


def parse_prior_spec(spec: str) -> PriorSpec:
    """Parse ``NAME=FILE:categorical:CODES[:OTHER_CODES]`` or ``NAME=FILE:continuous:THRESHOLD``.

    Examples: ``survey=maps/survey.tif:categorical:1``, ``survey=s.tif:categorical:1:2``,
    ``obu=obu2019.tif:continuous:0.5``.
    """
    m = _SPEC.match(spec.strip())
    if not m:
        raise DataError(f"cannot parse prior map {spec!r}", field="--prior",
                        fix="write NAME=FILE:categorical:1[:2] or NAME=FILE:continuous:0.5")
    name, path, kind, a, b = (m.group(k) for k in ("name", "path", "kind", "a", "b"))
    if kind == "categorical":
        pf = _codes(a or "", spec)
        if not pf:
            raise DataError(f"no permafrost class code given in {spec!r}", field="--prior",
                            fix="e.g. NAME=FILE:categorical:1")
        other = _codes(b, spec) if b else None
        if other and set(pf) & set(other):
            raise DataError(f"codes {sorted(set(pf) & set(other))} are both permafrost and not "
                            f"in {spec!r}", field="--prior", fix="list each code once")
        return PriorSpec(name.strip(), Path(path), kind, pf, other)
    try:
        thr = float(a) if a else 0.5
    except ValueError:
        raise DataError(f"threshold must be a number, got {a!r}", field="--prior",
                        fix="e.g. NAME=FILE:continuous:0.5") from None
    bound("prior_threshold").check(thr, field="--prior")
    return PriorSpec(name.strip(), Path(path), kind, threshold=thr)


def prior_to_binary(values, spec: PriorSpec) -> np.ndarray:
    """Permafrost (1.0) / not (0.0) / unknown (NaN) from prior map values.

    Parameters
    ----------
    values : array_like
        Prior map values (class codes or continuous values; NaN = nodata).
    spec : PriorSpec
        How to read the map.
    """
    v = np.asarray(values, dtype="float64")
    out = np.full(v.shape, np.nan)
    ok = ~np.isnan(v)
    if spec.kind == "categorical":
        out[ok] = np.isin(v[ok], spec.permafrost_codes).astype("float64")
        if spec.other_codes is not None:
            out[ok & ~np.isin(v, spec.permafrost_codes) & ~np.isin(v, spec.other_codes)] = np.nan
    else:
        out[ok] = (v[ok] >= spec.threshold).astype("float64")
    return out


def check_prior_codes(da: xr.DataArray, spec: PriorSpec, *,
                      block_rows: int | None = None) -> dict:
    """Class codes present in a categorical prior (streamed); unknown codes are an error.

    Parameters
    ----------
    da : xarray.DataArray
        The prior map [class codes], 2-D.
    spec : PriorSpec
        Its declared codes.
    block_rows : int, optional
        Rows per block [-] (default: about :data:`permafrost.defaults.BLOCK_CELLS` cells,
        :func:`permafrost.defaults.auto_block_rows`).

    Returns
    -------
    dict
        ``{code: cell_count}`` of the valid codes.

    Raises
    ------
    DataError
        A code not declared (when ``other_codes`` is given), a permafrost code that never
        occurs, or non-integer values.
    """
    counts: dict = {}
    n = da.shape[0]
    if block_rows is None:
        block_rows = auto_block_rows(da.shape[-1])
    for r0 in range(0, n, block_rows):
        v = np.asarray(da.isel({da.dims[0]: slice(r0, r0 + block_rows)}).values)
        v = v[~np.isnan(v)] if v.dtype.kind == "f" else v.ravel()
        if v.size and np.any(v != np.round(v)):
            raise DataError("a categorical prior map has non-integer values", path=spec.path,
                            field=spec.name,
                            fix="declare it NAME=FILE:continuous:THRESHOLD instead")
        u, c = np.unique(v.astype("int64"), return_counts=True)
        for a, b in zip(u.tolist(), c.tolist(), strict=True):
            counts[a] = counts.get(a, 0) + b
    if not counts:
        raise DataError("the prior map holds only nodata", path=spec.path, field=spec.name,
                        fix="check the file and its nodata value")
    if spec.other_codes is not None:
        unknown = sorted(set(counts) - set(spec.permafrost_codes) - set(spec.other_codes))
        if unknown:
            cells = ", ".join(f"{k}: {counts[k]} cells" for k in unknown[:5])
            raise DataError(
                f"unknown class codes {unknown} ({cells}); declared permafrost "
                f"{list(spec.permafrost_codes)}, other {list(spec.other_codes)}",
                path=spec.path, field=spec.name,
                fix="add the codes to the mapping (NAME=FILE:categorical:PF_CODES:OTHER_CODES) "
                    "or set them as the file's nodata")
    missing = sorted(set(spec.permafrost_codes) - set(counts))
    if missing and not (set(spec.permafrost_codes) & set(counts)):
        raise DataError(f"permafrost class codes {missing} do not occur in the map "
                        f"(codes present: {sorted(counts)})", path=spec.path, field=spec.name,
                        fix="check the class mapping, e.g. NAME=FILE:categorical:1")
    return counts


# --------------------------------------------------------------------------- map agreement
def _binary_agreement(both, model_only, prior_only, neither) -> dict:
    n = both + model_only + prior_only + neither
    model, ref = both + model_only, both + prior_only
    return {
        "common_km2": n / 1e6,
        "both_km2": both / 1e6, "model_only_km2": model_only / 1e6,
        "prior_only_km2": prior_only / 1e6, "neither_km2": neither / 1e6,
        "model_permafrost_km2": model / 1e6, "prior_permafrost_km2": ref / 1e6,
        "missed_km2": prior_only / 1e6, "excess_km2": model_only / 1e6,
        "intersection_over_reference": both / ref if ref > 0 else None,
        "intersection_over_model": both / model if model > 0 else None,
        "overall_agreement": (both + neither) / n if n > 0 else None,
        "kappa": cohen_kappa(both, model_only, prior_only, neither),
    }


@expects(model="dataarray", priors="mapping")
def map_agreement(
    model: xr.DataArray,
    priors: Mapping[str, tuple[xr.DataArray, PriorSpec]],
    *,
    threshold: float = 0.5,
    mask: xr.DataArray | None = None,
    mask_vector=None,
    block_rows: int | None = None,
) -> dict:
    """Area-weighted agreement of a PZI map with prior maps on the model grid, streamed.

    Parameters
    ----------
    model : xarray.DataArray
        PZI [-], 2-D with a CRS (Dask-backed for large maps).
    priors : mapping
        ``name -> (aligned prior on the model grid, PriorSpec)``.
    threshold : float
        Model permafrost where PZI ≥ threshold [-].
    mask : xarray.DataArray, optional
        Non-zero cells excluded (glaciers, lakes), on the model grid.
    mask_vector : geopandas.GeoDataFrame, optional
        Polygons excluded (cell centre inside), rasterised block by block.
    block_rows : int, optional
        Rows per block [-] (default: about :data:`permafrost.defaults.BLOCK_CELLS` cells,
        :func:`permafrost.defaults.auto_block_rows`).

    Returns
    -------
    dict
        ``per_prior`` (binary agreement, agreement matrix model zones × prior classes [km²],
        zone areas side by side) and ``pairwise`` kappa between every two maps (cells valid
        in both).

    References
    ----------
    Cohen (1960); Congalton (1991).
    """
    grid = grid_of(model)
    mask_shapes = Shapes([])
    if mask_vector is not None:
        mv, _ = polygons_in_crs(mask_vector, grid.crs, "mask")
        mask_shapes = Shapes(mv.geometry.to_numpy())
    names = ["model"] + list(priors)
    k = len(names)
    pair = np.zeros((k, k, 4))  # both, i_only, j_only, neither
    mats: dict = {n: {} for n in priors}  # (zone, prior class) -> m2
    prior_zone_area = {n: np.zeros(5) for n in priors}
    nrows = grid.shape[0]
    if block_rows is None:
        block_rows = auto_block_rows(grid.shape[1])
    for r0 in range(0, nrows, block_rows):
        r1 = min(nrows, r0 + block_rows)
        sl = {model.dims[0]: slice(r0, r1)}
        pm = np.asarray(model.isel(sl).values, dtype="float64")
        area = np.broadcast_to(cell_areas(grid, slice(r0, r1)), pm.shape)
        excl = np.zeros(pm.shape, bool)
        if mask is not None:
            excl = np.nan_to_num(np.asarray(mask.isel(sl).values, dtype="float64")) != 0
        if mask_shapes:
            excl = excl | (burn(mask_shapes, grid.transform, (r0, 0, r1 - r0, grid.width)) > 0)
        bins = [np.where(np.isnan(pm) | excl, np.nan, (pm >= threshold).astype("float64"))]
        raw = {}
        for n, (da, spec) in priors.items():
            v = np.asarray(da.isel(sl).values, dtype="float64")
            v[excl] = np.nan
            raw[n] = v
            bins.append(prior_to_binary(v, spec))
        for i in range(k):
            for j in range(i + 1, k):
                a, b = bins[i], bins[j]
                ok = ~np.isnan(a) & ~np.isnan(b)
                ai, bj, w = a[ok] > 0.5, b[ok] > 0.5, area[ok]
                pair[i, j] += [w[ai & bj].sum(), w[ai & ~bj].sum(), w[~ai & bj].sum(),
                               w[~ai & ~bj].sum()]
        zm = classify_zones(pm)
        for idx, (n, (_, spec)) in enumerate(priors.items(), start=1):
            v = raw[n]
            ok = ~np.isnan(bins[0]) & ~np.isnan(bins[idx])
            cls = (v[ok].astype("int64") if spec.kind == "categorical"
                   else classify_zones(v[ok]).astype("int64"))
            zz = zm[ok].astype("int64")
            w = area[ok]
            key = zz * 100000 + cls
            u, inv = np.unique(key, return_inverse=True)
            s = np.bincount(inv, weights=w)
            for kk, ss in zip(u.tolist(), s.tolist(), strict=True):
                mats[n][(kk // 100000, kk % 100000)] = mats[n].get((kk // 100000, kk % 100000),
                                                                    0.0) + ss
            if spec.kind == "continuous":
                prior_zone_area[n] += np.bincount(cls, weights=w, minlength=256)[[0, 1, 2, 3, 4]]
    per_prior = {}
    for idx, (n, (_, spec)) in enumerate(priors.items(), start=1):
        ag = _binary_agreement(*pair[0, idx])
        if ag["common_km2"] == 0:
            raise DataError("has no valid cell in common with the PZI map", path=spec.path,
                            field=n, fix="check that the maps cover the same area and their "
                                         "nodata values")
        classes = sorted({c for _, c in mats[n]})
        cls_names = ([str(c) for c in classes] if spec.kind == "categorical"
                     else [ZONE_NAMES[c] for c in classes])
        codes = range(len(ZONE_NAMES))
        matrix = [[mats[n].get((z, c), 0.0) / 1e6 for c in classes] for z in codes]
        model_zones = {ZONE_NAMES[z]: sum(matrix[z]) for z in codes}
        zones = {"model": model_zones,
                 "prior": ({ZONE_NAMES[z]: prior_zone_area[n][z] / 1e6 for z in codes}
                           if spec.kind == "continuous" else None),
                 "denominator_km2": ag["common_km2"],
                 "denominator": "area valid in both maps and unmasked"}
        per_prior[n] = {"agreement": ag,
                        "agreement_matrix": {"rows": ZONE_NAMES, "columns": cls_names,
                                             "row_label": "model zone",
                                             "column_label": ("prior class code"
                                                              if spec.kind == "categorical"
                                                              else "prior zone"),
                                             "km2": matrix},
                        "zones": zones}
    kappa: list[list[float | None]] = [[None] * k for _ in range(k)]
    common: list[list[float | None]] = [[None] * k for _ in range(k)]
    for i in range(k):
        kappa[i][i] = 1.0
        for j in range(i + 1, k):
            b, io, jo, ne = pair[i, j]
            kappa[i][j] = kappa[j][i] = cohen_kappa(b, io, jo, ne)
            common[i][j] = common[j][i] = float(pair[i, j].sum() / 1e6)
    return {"per_prior": per_prior,
            "pairwise": {"maps": names, "kappa": kappa, "common_km2": common,
                         "rule": "cells valid in both maps of a pair, unmasked"}}


# --------------------------------------------------------------------------- orchestration
def _agreement_raster(model: xr.DataArray, prior: xr.DataArray, spec: PriorSpec,
                      threshold: float) -> xr.DataArray:
    """Lazily: 1 both, 2 model only, 3 prior only, 0 neither, 255 nodata."""
    def f(pm, pv):
        b = prior_to_binary(pv, spec)
        m = pm >= threshold
        out = np.where(m & (b == 1), 1, np.where(m & (b == 0), 2, np.where(~m & (b == 1), 3, 0)))
        return np.where(np.isnan(pm) | np.isnan(b), 255, out).astype("uint8")
    out = xr.apply_ufunc(f, model, prior, dask="parallelized", output_dtypes=["uint8"])
    return out.rio.write_crs(model.rio.crs).rio.write_transform(model.rio.transform())


@dataclass
class ValidationResult:
    """The validation of a PZI map (the result of :func:`validate`).

    Attributes
    ----------
    meta : dict
        PZI source, threshold, CRS, alignment rule (and the mask, with prior maps).
    boreholes : dict or None
        Borehole scores (None without boreholes): ``source``, ``n_read``,
        ``n_unknown_presence``, ``n_common``, ``common_rule``, ``excluded``, ``table`` (one
        row per map, scored on the common boreholes, each with ``ci``), ``curves``,
        ``model_all`` (the model on every borehole valid in it) and ``bootstrap``.
    pairwise : dict or None
        Kappa between every two maps (None without prior maps).
    priors : list of dict or None
        Per prior map: how it is read, its codes and the area agreement (None without
        prior maps).
    agreement : dict
        ``{prior name: agreement raster}`` on the PZI grid (lazy, uint8: 1 both, 2 model
        only, 3 prior only, 0 neither, 255 nodata); not part of :meth:`as_dict`.
    transfer : dict or None
        Does the held-out skill confirm the model's CV skill, per evidence source and
        leave-one-source-out (:func:`permafrost.transfer.attach_transfer`); its
        ``warnings`` are also the top-level ``warnings`` of :meth:`as_dict`.
    """

    meta: dict
    boreholes: dict | None = None
    pairwise: dict | None = None
    priors: list[dict] | None = None
    agreement: dict[str, xr.DataArray] = field(default_factory=dict, repr=False)
    transfer: dict | None = None

    @property
    def warnings(self) -> list[str]:
        """What the user must see (the transfer check's warnings)."""
        return list((self.transfer or {}).get("warnings") or [])

    def as_dict(self) -> dict:
        """The JSON-ready result: the content of ``validation.json``."""
        out: dict = {"meta": self.meta}
        if self.transfer is not None:  # the warnings first: what the user must see
            out["warnings"] = self.warnings
            out["transfer"] = self.transfer
        if self.boreholes is not None:
            out["boreholes"] = self.boreholes
        if self.priors is not None:
            out["pairwise"] = self.pairwise
            out["priors"] = self.priors
        return out


def agreement_file_name(name: str) -> str:
    """File name of a prior map's agreement raster: ``agreement_<name>.tif`` (characters
    other than letters, digits, ``_``, ``.`` and ``-`` replaced by ``_``)."""
    return f"agreement_{_safe(name)}.tif"


def check_prior_names(names: Sequence[str]) -> None:
    """Refuse prior map names that repeat, are ``model``, or would share an agreement
    raster's file name (:func:`agreement_file_name`, case-insensitive).

    Raises
    ------
    DataError
        Such a name.
    """
    names = list(names)
    for n in names:
        check_name(n, what="prior map", field="--prior")
    dup = sorted({n for n in names if names.count(n) > 1} | ({"model"} & set(names)))
    if dup:
        raise DataError(f"prior map names must be unique and not 'model': {dup}",
                        field="--prior", fix="rename them (NAME=FILE:...)")
    files: dict[str, str] = {}
    for n in names:  # names become file names: 'survey map' and 'survey_map' would share one
        other = files.setdefault(agreement_file_name(n).lower(), n)
        if other != n:
            raise DataError(f"the prior maps {other!r} and {n!r} would write one file "
                            f"({agreement_file_name(n)})", field="--prior",
                            fix="rename one of them so that the names differ in a letter or digit")


def _prior_maps(priors) -> list[tuple[PriorSpec, xr.DataArray, xr.DataArray | None]]:
    """``priors`` as ``(spec, native, on_grid or None)`` triples, types checked."""
    out = []
    for i, item in enumerate(priors):
        if not (isinstance(item, (tuple, list)) and len(item) in (2, 3)):
            raise InputError(f"prior {i}: expected a (PriorSpec, DataArray) pair or a "
                             f"(PriorSpec, DataArray, DataArray on the PZI grid) triple, got "
                             f"{type(item).__name__}", field="priors",
                             fix="give e.g. [(parse_prior_spec('a=a.tif:continuous:0.5'), "
                                 "permafrost.read_raster('a.tif'))]")
        spec, native, on_grid = (*item, None)[:3]
        if not isinstance(spec, PriorSpec):
            raise InputError(f"prior {i}: expected a PriorSpec, got {type(spec).__name__}",
                             field="priors", fix="make it with parse_prior_spec(...) or "
                                                 "PriorSpec(...)")
        require_xarray(native, f"priors[{i}]")
        require_xarray(on_grid, f"priors[{i}] (on the PZI grid)", optional=True)
        out.append((spec, native, on_grid))
    return out


def _require_boreholes(bh) -> None:
    require_geodataframe(bh, "boreholes", optional=False, what="of boreholes",
                         fix="read it with permafrost.read_presence_table(path)")
    missing = [c for c in ("borehole_id", "presence") if c not in bh.columns]
    if missing:
        raise InputError(f"the boreholes lack the columns {missing}", field="boreholes",
                         path=bh.attrs.get("source"),
                         fix="read them with permafrost.read_presence_table(path)")
    if bh.crs is None:
        raise CRSError("the boreholes have no CRS", path=bh.attrs.get("source"),
                       field="boreholes", fix="set one (GeoDataFrame.set_crs)")


def validate(
    pzi: xr.DataArray,
    *,
    boreholes=None,
    priors: Sequence = (),
    mask: xr.DataArray | None = None,
    mask_vector=None,
    threshold: float = 0.5,
    n_bins: int = 10,
    block_rows: int | None = None,
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES,
    ci_level: float = CI_LEVEL,
    seed: int = 0,
    site_m: float = SITE_M,
) -> ValidationResult:
    """Validate a PZI map against boreholes and prior maps.

    Boreholes are sampled on each map's own grid
    (:func:`permafrost.grid.sample_at_points`) and scored with
    :func:`permafrost.metrics.binary_metrics`, side by side on the boreholes valid in every
    map, with percentile bootstrap intervals (:func:`bootstrap_metrics`, resampled by site,
    :func:`permafrost.cv.site_ids`).  Prior maps are compared cell by cell on the PZI grid,
    area-weighted (:func:`map_agreement`).

    Parameters
    ----------
    pzi : xarray.DataArray
        PZI [-] in [0, 1], NaN for nodata, 2-D with a CRS (may be Dask-backed).
    boreholes : geopandas.GeoDataFrame, optional
        Points with ``borehole_id`` and ``presence`` (1/0, missing = unknown) and a CRS, as
        :func:`permafrost.read_presence_table` reads them.
    priors : sequence of tuple
        ``(PriorSpec, prior)`` or ``(PriorSpec, prior, prior_on_grid)`` per prior map:
        ``prior`` on its own grid (boreholes are sampled there; categorical codes are
        checked there), ``prior_on_grid`` the same map put on the PZI grid by nearest
        neighbour (e.g. ``permafrost.read_aligned(path, like=pzi, resampling="nearest")``)
        for the map agreement; without it ``prior`` must be on the PZI grid.
    mask : xarray.DataArray, optional
        Non-zero cells excluded from the map agreement, on the PZI grid.
    mask_vector : geopandas.GeoDataFrame, optional
        Polygons excluded from the map agreement (cell centre inside).
    threshold : float
        Model permafrost where PZI ≥ threshold [-].
    n_bins : int
        Reliability bins [-].
    block_rows : int, optional
        Rows per block [-] (default: about 2**20 cells a block).
    bootstrap_resamples, ci_level, seed : int, float, int
        Percentile bootstrap of every borehole metric (:func:`bootstrap_metrics`):
        resamples [-], confidence level [-], random seed.
    site_m : float
        Boreholes linked by neighbours closer than this form one site, the bootstrap's
        resampling unit [m] (:func:`permafrost.cv.site_ids`).

    Returns
    -------
    ValidationResult
        ``as_dict()`` is the content of ``validation.json``; ``agreement`` holds the
        agreement raster of each prior map.

    Raises
    ------
    InputError
        An input of the wrong type (e.g. a path where a DataArray is expected).
    DataError
        Nothing to validate against, PZI values outside [0, 1], no borehole inside the
        map, a prior with no overlap or unknown codes, duplicate names.

    References
    ----------
    Cohen (1960); Brier (1950); Hanley & McNeil (1982); Brodersen et al. (2010);
    Congalton (1991); Efron & Tibshirani (1993).
    """
    require_xarray(pzi, "pzi")
    check_options(threshold=threshold, n_bins=n_bins, block_rows=block_rows,
                  bootstrap_resamples=bootstrap_resamples, ci_level=ci_level, seed=seed,
                  site_m=site_m)
    if pzi.ndim != 2:
        raise DataError(f"the PZI raster must be 2-D, got dims {pzi.dims}",
                        path=pzi.attrs.get("source"), fix="give a single-band raster")
    if boreholes is not None:
        _require_boreholes(boreholes)
    maps = _prior_maps(priors)
    require_xarray(mask, "mask", optional=True)
    require_geodataframe(mask_vector, "mask_vector")
    if boreholes is None and not maps:
        raise ParameterError("nothing to validate against", param="boreholes",
                             fix="give {boreholes} and/or {priors}")
    check_prior_names([s.name for s, _, _ in maps])
    if block_rows is None:
        block_rows = auto_block_rows(pzi.shape[-1])
    src = pzi.attrs.get("source")
    _check_probability_range(pzi, src)
    result = ValidationResult(meta={
        "pzi": src, "threshold": threshold, "crs": grid_of(pzi).crs.to_string(),
        "alignment": "each prior map put on the PZI grid by nearest neighbour (GDAL warper); "
                     "boreholes sampled on each map's own grid"})
    native = {}
    for spec, da, _ in maps:
        if spec.kind == "continuous":  # a probability prior, read against thresholds in [0, 1]
            _check_probability_range(da, spec.path or da.attrs.get("source"), field=spec.name,
                                     what="continuous prior")
        codes = (check_prior_codes(da, spec, block_rows=block_rows)
                 if spec.kind == "categorical" else None)
        native[spec.name] = (da, spec, codes)

    # ---- boreholes
    if boreholes is not None:
        bh_src = boreholes.attrs.get("source")
        unknown = boreholes["presence"].isna().to_numpy()
        bh = boreholes[~unknown]
        if len(bh) == 0:
            raise DataError("no borehole has a known presence", path=bh_src,
                            field="presence", fix="fill in presence (1/0)")
        x, y = bh.geometry.x.to_numpy(), bh.geometry.y.to_numpy()
        yv = bh["presence"].astype(int).to_numpy()
        ids = bh["borehole_id"].astype(str).to_numpy()
        values, excluded = {}, {}
        for name, da in [("model", pzi)] + [(n, v[0]) for n, v in native.items()]:
            v, inside = sample_at_points(da, x, y, crs=bh.crs)
            if name == "model" and not inside.any():
                lb = ", ".join(f"{b:.4f}" for b in pzi.rio.bounds())
                raise DataError(f"none of the {len(ids)} boreholes lies inside the PZI map "
                                f"(map bounds {lb})", path=bh_src, field="lon/lat",
                                fix="check the coordinates and their CRS")
            if name != "model":
                v = (prior_to_binary(v, native[name][1]) if native[name][1].kind == "categorical"
                     else v)
            values[name] = v
            excluded[name] = {"outside": ids[~inside].tolist(),
                              "nodata": ids[inside & np.isnan(v)].tolist()}
            if (~inside).any():
                log.warning("%s: %d boreholes outside the map", name, int((~inside).sum()))
        common = np.logical_and.reduce([~np.isnan(v) for v in values.values()])
        ll = bh.geometry.to_crs(4326)
        sx, sy = metric_xy(ll.x.to_numpy(), ll.y.to_numpy(), 4326)
        sites = site_ids(sx, sy, site_m)

        def _boot(sel, v, thr, prob):
            return bootstrap_metrics(yv[sel], v[sel], threshold=thr, probabilistic=prob,
                                     sites=sites[sel], n_resamples=bootstrap_resamples,
                                     level=ci_level, seed=seed)

        def _ci(boot):
            return {m: {"low": iv["low"], "high": iv["high"],
                        **({"degenerate": iv["degenerate"]} if "degenerate" in iv else {})}
                    for m, iv in boot["intervals"].items()}

        rows, curves = [], {}
        for name, v in values.items():
            prior = native[name][1] if name != "model" else None
            prob = prior is None or (prior.kind == "continuous" and np.nanmin(
                np.r_[v, 0.0]) >= 0 and np.nanmax(np.r_[v, 1.0]) <= 1)
            thr = threshold if prior is None else (prior.threshold if prior.kind == "continuous"
                                                   else 0.5)
            if common.any():
                m = binary_metrics(yv[common], v[common], threshold=thr, n_bins=n_bins,
                                   probabilistic=bool(prob))
                curves[name] = {"roc": m.pop("roc"), "reliability": m.pop("reliability")}
                boot = _boot(common, v, thr, bool(prob))
                rows.append({"map": name, "kind": "pzi" if prior is None else prior.kind, **m,
                             "ci": _ci(boot)})
        paired, findings = [], []
        for name, v in values.items():
            if name == "model" or not common.any():
                continue
            spec = native[name][1]
            thr = spec.threshold if spec.kind == "continuous" else 0.5
            pb = paired_bootstrap(yv[common], values["model"][common], v[common],
                                  threshold_a=threshold, threshold_b=thr, sites=sites[common],
                                  n_resamples=bootstrap_resamples, level=ci_level, seed=seed)
            paired.append({"prior": name, **pb})
            findings += _prior_beats_model(name, pb, rows, int(common.sum()))
        own = ~np.isnan(values["model"])
        model_all = binary_metrics(yv[own], values["model"][own], threshold=threshold,
                                   n_bins=n_bins)
        boot_all = _boot(own, values["model"], threshold, True) if own.any() else None
        if boot_all is not None:
            model_all["ci"] = _ci(boot_all)
        result.boreholes = {
            "source": bh_src, "n_read": int(len(ids) + unknown.sum()),
            "n_unknown_presence": int(unknown.sum()), "n_common": int(common.sum()),
            "common_rule": "boreholes inside and valid in every map",
            "excluded": excluded, "table": rows, "curves": curves, "model_all": model_all,
            "paired": paired, "findings": findings,
            "bootstrap": None if boot_all is None else {
                k: boot_all[k] for k in ("method", "unit", "n_units", "n_sites", "resamples",
                                         "level", "seed", "note")} | {
                "site_m": site_m, "rule": "every row and model_all carry `ci`: percentile "
                "bootstrap intervals (Efron & Tibshirani 1993, Ch. 13); resampled by site "
                "when there are enough sites, else by borehole within each class"},
        }
        if not common.any():
            log.warning("no borehole is valid in every map; side-by-side table is empty")

    # ---- prior maps
    if maps:
        aligned = {s.name: (da if on_grid is None else on_grid, s) for s, da, on_grid in maps}
        for n, (da, _) in aligned.items():
            if tuple(da.shape) != tuple(pzi.shape):
                raise DataError(f"the prior map is not on the PZI grid (shape "
                                f"{tuple(da.shape)} vs {tuple(pzi.shape)})",
                                path=da.attrs.get("source"), field=n,
                                fix="give it on the PZI grid as well: (spec, prior, "
                                    "permafrost.read_aligned(path, like=pzi, "
                                    "resampling='nearest'))")
        ag = map_agreement(pzi, aligned, threshold=threshold, mask=mask,
                           mask_vector=mask_vector, block_rows=block_rows)
        result.pairwise = ag["pairwise"]
        result.priors = []
        for n, (da, s, codes) in native.items():
            entry = {"name": n,
                     "source": str(s.path) if s.path is not None else da.attrs.get("source"),
                     "kind": s.kind,
                     "permafrost_codes": (list(s.permafrost_codes) if s.kind == "categorical"
                                          else None),
                     "other_codes": (list(s.other_codes) if s.other_codes is not None
                                     else ("all other valid codes" if s.kind == "categorical"
                                           else None)),
                     "threshold": s.threshold if s.kind == "continuous" else None,
                     "codes_present": ({str(k): v for k, v in codes.items()} if codes else None),
                     **ag["per_prior"][n]}
            result.agreement[n] = _agreement_raster(pzi, aligned[n][0], s, threshold)
            result.priors.append(entry)
        if mask is not None or mask_vector is not None:
            result.meta["mask"] = (mask if mask is not None else mask_vector).attrs.get("source")
    return result


def _prior_beats_model(name: str, paired: dict, rows: list[dict], n: int) -> list[str]:
    """A sentence for each of AUC and κ where the prior scores higher than the model on the
    same boreholes, with the paired interval of the difference and what it allows one to say."""
    est = {r["map"]: r for r in rows}
    out = []
    for m, label in (("auc", "AUC"), ("kappa", "κ")):
        d = paired["differences"].get(m) or {}
        mod, pri = est.get("model", {}).get(m), est.get(name, {}).get(m)
        if mod is None or pri is None or not pri > mod:
            continue
        lvl = f"{100 * paired['level']:g} %"
        if d.get("low") is None:
            verdict = "the resamples cannot bound the difference"
        elif d["high"] < 0:
            verdict = "the prior is better on these boreholes beyond resampling uncertainty"
        else:
            verdict = "the difference is within resampling uncertainty"
        interval = ("" if d.get("low") is None else
                    f", {lvl} interval [{d['low']:+.3f}, {d['high']:+.3f}]")
        out.append(f"On the same {n} boreholes the prior map {name!r} has a higher {label} than "
                   f"the model ({pri:.3f} against {mod:.3f}; paired difference model − prior "
                   f"{mod - pri:+.3f}{interval}): {verdict}. Boreholes are not a random sample "
                   "of the landscape (they follow roads and sites), so this speaks for these "
                   "sites, not for the whole map.")
    return out


def _check_probability_range(pzi, path, *, field: str = "pzi", what: str = "PZI") -> None:
    """Refuse a probability raster (the PZI, a continuous prior) whose valid values leave
    [0, 1]: a categorical 1/2 map, or a map in percent (0..100), as ``stats`` does
    (:func:`permafrost.area.zone_statistics`)."""
    data = pzi.data
    lo, hi = (dask.compute(dsa.nanmin(data), dsa.nanmax(data))
              if hasattr(data, "dask") else (np.nanmin(data), np.nanmax(data)))
    lo, hi = float(lo), float(hi)
    if np.isfinite(lo) and (lo < -1e-6 or hi > 1 + 1e-6):
        percent = lo >= -1e-6 and 1 + 1e-6 < hi <= 100 + 1e-6
        kind = ("it looks like percent" if percent
                else "a categorical map is not a probability")
        fix = ("divide it by 100 (e.g. gdal_calc.py -A FILE --calc=\"A/100\" --type=Float32)"
               if percent else "give a probability raster (nodata set for no-data cells)")
        raise DataError(f"{what} values must lie in [0, 1], found {lo:.4g} to {hi:.4g} "
                        f"({kind})", path=path, field=field,
                        fix=f"{fix}; compare a categorical map as a categorical prior "
                            "(NAME=FILE:categorical:CODES)")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
