"""Spatial cross-validation: the metric frame, block folds, the default block size, and fold
summaries.

The one home of spatial blocking: the metric frame of a set of points
(:func:`metric_crs`, :func:`metric_xy`) and the square blocks laid over them
(:func:`block_index`, :func:`block_ids`, :func:`block_boxes`), used by the spatial CV, the
spatial hold-out (:func:`permafrost.labels.holdout_split`), the borehole sites of the
validation bootstrap and the interior sampling of rock glaciers.

The fold metrics themselves are :func:`permafrost.metrics.binary_metrics`.

Points close together share their covariates *and* their label (spatial
autocorrelation), so random folds put near-copies of each test point in the training set
and overstate skill (Roberts et al. 2017).  Spatial block CV assigns square blocks of
side ``block_size`` to folds; every point of one group (e.g. one rock glacier) lands in
one fold, because a group straddling block edges is moved whole into one block.

Default block size (``block_size`` "auto", i.e. none given): the *larger* of two ranges of
spatial autocorrelation (:func:`default_block_size`),

* the **covariate range**: the median, over the numeric covariates, of the effective
  range of a variogram model fitted to each covariate on a bounded random sample of its
  valid cells (:func:`covariate_ranges`) -- the rule of ``blockCV``'s
  ``cv_spatial_autocor`` (Valavi et al. 2019), which takes the median of the per-layer
  ranges.  Test points closer than this to training points share their covariate values'
  neighbourhood, so a model that interpolates in covariate space is not tested on new
  ground (Roberts et al. 2017, "Blocking");
* the **label range**: the practical range of an exponential model fitted to the empirical
  semivariogram of the 0/1 label indicator (Matheron 1963; Cressie 1993).  Labels cluster
  (rock glacier points, borehole sites), and blocks narrower than this put near-copies of
  a test point in the training set.

Blocks no smaller than either keep test points independent of the training points in
both senses.  A covariate whose variogram reaches no sill within half the sample's extent
(a regional trend, e.g. elevation across a range) gives no range and is left out of the
median (the ranges of every covariate are reported).  The block side is bounded to
[1/100, 1/2] of the longer side of the labels' bounding box (so that folds exist); when
no range at all can be fitted the documented fallback is one tenth of that side.

References
----------
Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal,
spatial, hierarchical, or phylogenetic structure. Ecography 40, 913-929.

Valavi, R., Elith, J., Lahoz-Monfort, J. J. & Guillera-Arroita, G. (2019). blockCV: An r
package for generating spatially or environmentally separated folds for k-fold
cross-validation of species distribution models. Methods Ecol. Evol. 10, 225-232.

Cressie, N. (1993). Statistics for Spatial Data, revised ed. Wiley. (Sect. 2.3.1, 2.6.)
"""

from __future__ import annotations

import logging

import numpy as np
import shapely
from pyproj import CRS, Transformer
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AzimuthalEquidistantConversion
from scipy.optimize import curve_fit
from scipy.spatial.distance import pdist

from permafrost.errors import CRSError, DataError, ParameterError
from permafrost.grid import read_cells, sample_subgrid

__all__ = [
    "METRICS",
    "metric_crs",
    "metric_xy",
    "variogram_range",
    "covariate_ranges",
    "default_block_size",
    "block_index",
    "block_ids",
    "block_boxes",
    "site_ids",
    "merge_groups",
    "make_folds",
    "summarise_folds",
]

log = logging.getLogger(__name__)

METRICS = ("auc", "balanced_accuracy", "kappa", "brier")


def _is_metric(crs: CRS) -> bool:
    unit = crs.axis_info[0].unit_name if crs.axis_info else "metre"
    return not crs.is_geographic and unit in ("metre", "meter")


def metric_crs(x, y, crs) -> CRS:
    """The metric frame of a set of points: the one projection of the package's blocking.

    A projected CRS in metres is kept as it is.  Otherwise (geographic, or projected in
    other units) the frame is an azimuthal equidistant projection on the WGS84 ellipsoid
    centred on the points' mean longitude and latitude: distances from the centre are
    exact, and over a mountain region (a few hundred km) distances between points are
    within a fraction of a percent (Snyder 1987, pp. 191-202).

    Parameters
    ----------
    x, y : array-like
        Coordinates in ``crs`` units [deg or CRS units] (the centre's source).
    crs : pyproj-compatible CRS

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    CRSError
        ``crs`` is None.

    References
    ----------
    Snyder, J. P. (1987). Map Projections -- A Working Manual. USGS Professional Paper
    1395 (azimuthal equidistant projection).
    """
    if crs is None:
        raise CRSError("the label points have no CRS", field="geometry",
                       fix="set the CRS of the labels file")
    crs = CRS.from_user_input(crs)
    if _is_metric(crs):
        return crs
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not crs.is_geographic:  # projected in feet or the like: the centre in lon/lat
        x, y = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    lon0, lat0 = float(np.nanmean(x)), float(np.nanmean(y))
    # a named CRS on the WGS 84 datum (a bare PROJ string is "unknown" to QGIS in the
    # GeoPackages of the blocks); the same coordinates to the last bit
    return ProjectedCRS(AzimuthalEquidistantConversion(lat0, lon0), geodetic_crs=CRS(4326),
                        name=f"permafrost blocking frame: azimuthal equidistant at "
                             f"{lat0:.6f} N {lon0:.6f} E (WGS 84)")


def metric_xy(x, y, crs) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in metres, in the frame of :func:`metric_crs`.

    Parameters
    ----------
    x, y : array-like
        Coordinates in ``crs`` units [deg or CRS units].
    crs : pyproj-compatible CRS

    Returns
    -------
    (ndarray, ndarray)
        Easting and northing [m]: the coordinates themselves for a projected CRS in
        metres, else in the azimuthal equidistant frame centred on the points.
    """
    crs = CRS.from_user_input(crs) if crs is not None else None
    frame = metric_crs(x, y, crs)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if frame is crs:  # already metric
        return x, y
    t = Transformer.from_crs(crs, frame, always_xy=True)
    return t.transform(x, y)


def _exp_model(h, nugget, psill, a):
    return nugget + psill * (1.0 - np.exp(-h / a))


def _sph_model(h, nugget, psill, a):
    r = np.minimum(np.asarray(h, float) / a, 1.0)
    return nugget + psill * (1.5 * r - 0.5 * r ** 3)


#: variogram models: (function, effective range from the fitted range parameter)
_MODELS = {"exponential": (_exp_model, 3.0),  # practical range 3a: 95 % of the sill
           "spherical": (_sph_model, 1.0)}    # the sill is reached at a


def variogram_range(x, y, v, *, max_points: int = 2000, n_lags: int = 15,
                    seed: int = 0, model: str = "exponential") -> float | None:
    """Effective range of a variogram model fitted to the empirical semivariogram.

    Matheron's estimator in ``n_lags`` equal distance bins up to half the largest pair
    distance (bins with fewer than 30 pairs dropped), and a weighted least-squares fit
    (weights: the pair counts, the
    simplest form of Cressie's 1985 weights) of an exponential model
    ``c0 + c (1 - exp(-h / a))`` (effective range ``3 a``, where it reaches 95 % of its
    sill) or a spherical model (effective range ``a``, where it reaches its sill).

    Parameters
    ----------
    x, y : array-like
        Point coordinates [m].
    v : array-like
        Values (e.g. the 0/1 label) [-].
    max_points : int
        Random subsample size (seeded) to bound the O(n^2) pair count.
    n_lags : int
        Number of distance bins up to half the maximum pair distance.
    seed : int
        Seed of the subsample.
    model : {"exponential", "spherical"}
        Variogram model.

    Returns
    -------
    float or None
        Effective range [m] (``3 a`` exponential, ``a`` spherical), or ``None`` when no
        range can be fitted (fewer than 30 points, constant values, fewer than 4 bins, or
        no sill reached within the data).

    References
    ----------
    Cressie (1993), Sect. 2.4 (Matheron's estimator) and 2.6 (exponential and spherical
    models).  Cressie, N. (1985). Fitting variogram models by weighted least squares.
    Math. Geol. 17, 563-586.
    """
    if model not in _MODELS:
        raise DataError(f"unknown variogram model {model!r}", field="model",
                        fix=f"use one of {sorted(_MODELS)}")
    fun, factor = _MODELS[model]
    x, y, v = (np.asarray(a, dtype=np.float64) for a in (x, y, v))
    n = len(v)
    if n < 30 or np.nanvar(v) == 0:
        return None
    rng = np.random.default_rng(seed)
    if n > max_points:
        idx = np.sort(rng.choice(n, max_points, replace=False))
        x, y, v = x[idx], y[idx], v[idx]
    xy = np.column_stack([x, y])
    d = pdist(xy)
    g = 0.5 * pdist(v[:, None], metric="sqeuclidean")
    hmax = d.max() / 2.0
    if hmax <= 0:
        return None
    edges = np.linspace(0.0, hmax, n_lags + 1)
    which = np.digitize(d, edges) - 1
    keep = (which >= 0) & (which < n_lags)
    cnt = np.bincount(which[keep], minlength=n_lags)
    sg = np.bincount(which[keep], weights=g[keep], minlength=n_lags)
    sh = np.bincount(which[keep], weights=d[keep], minlength=n_lags)
    ok = cnt >= 30
    if ok.sum() < 4:
        return None
    h, gam = sh[ok] / cnt[ok], sg[ok] / cnt[ok]
    sill0 = float(np.var(v))
    try:
        popt, _ = curve_fit(
            fun, h, gam, p0=[0.0, sill0, hmax / 6.0],
            bounds=([0.0, 1e-12, hmax / 1000.0], [sill0 * 2 + 1e-9, sill0 * 4 + 1e-9, hmax * 10]),
            sigma=1.0 / np.sqrt(cnt[ok]), maxfev=5000,
        )
    except (RuntimeError, ValueError):
        return None
    rng_m = factor * float(popt[2])
    if not np.isfinite(rng_m) or rng_m >= 2 * hmax:  # no sill reached within the data
        return None
    return rng_m


def covariate_ranges(covariates, names=None, *, n_cells: int = 2000, seed: int = 0,
                     model: str = "exponential") -> dict:
    """Range of spatial autocorrelation of each covariate, and their median (``blockCV``).

    For each numeric covariate, ``n_cells`` valid cells are drawn at random (seeded; a
    bounded sample, as ``blockCV``'s ``cv_spatial_autocor`` samples its rasters; on a grid
    of more than 16 windows of 1024 x 1024 cells, from 16 windows spread over it,
    :func:`permafrost.grid.sample_subgrid`, read block by block), their
    centres put in the metric frame (:func:`metric_xy`) and :func:`variogram_range` fitted
    to their values.  Categorical covariates (``attrs["kind"] == "categorical"``) are
    skipped: a class code has no variogram.  The summary is the median of the ranges that
    could be fitted (Valavi et al. 2019 take the median over layers).

    Parameters
    ----------
    covariates : xarray.Dataset
        Covariates on one grid (2-D ``y``, ``x`` variables) with a CRS.
    names : list of str, optional
        Variables to use (default: all).
    n_cells : int
        Cells sampled per covariate [-] (bounds the O(n^2) pair count).
    seed : int
        Seed of the cell sample.
    model : {"exponential", "spherical"}
        Variogram model (:func:`variogram_range`).

    Returns
    -------
    dict
        ``ranges_m`` ({name: effective range [m] or None}), ``median_m`` (median of the
        fitted ranges [m], None when none could be fitted), ``largest_m``, ``model``,
        ``n_cells``, ``skipped`` (categorical covariates) and ``rule``.

    References
    ----------
    Valavi et al. (2019), ``cv_spatial_autocor``; Roberts et al. (2017); Cressie (1993).
    """
    names = [str(v) for v in covariates.data_vars] if names is None else list(names)
    crs = covariates.rio.crs
    rng = np.random.default_rng(seed)
    ranges: dict = {}
    skipped = []
    for name in names:
        da = covariates[name]
        if str(da.attrs.get("kind", "")).lower() == "categorical":
            skipped.append(name)
            continue
        # drawn from a bounded part of the grid (the whole grid up to 4096 x 4096 cells)
        part_rows, part_cols = sample_subgrid(da.shape[-2:])
        ny, nx = len(part_rows), len(part_cols)
        take = min(ny * nx, 4 * int(n_cells))
        flat = rng.choice(ny * nx, take, replace=False)  # random order: any prefix is random
        rows, cols = part_rows[flat // nx], part_cols[flat % nx]
        vals = read_cells(da, rows, cols)  # block by block: memory flat in the grid's size
        ok = np.isfinite(vals)
        nod = da.rio.nodata if hasattr(da, "rio") else None
        if nod is not None and np.isfinite(nod):
            ok &= vals != nod
        sel = np.flatnonzero(ok)[: int(n_cells)]
        if sel.size < 30:
            ranges[name] = None
            continue
        xs = np.asarray(da["x"].values, float)[cols[sel]]
        ys = np.asarray(da["y"].values, float)[rows[sel]]
        mx, my = metric_xy(xs, ys, crs)
        r = variogram_range(mx, my, vals[sel], max_points=int(n_cells), seed=seed, model=model)
        ranges[name] = None if r is None else float(r)
    fitted = [r for r in ranges.values() if r is not None]
    article = "an" if model[0] in "aeiou" else "a"
    return {"ranges_m": ranges, "median_m": float(np.median(fitted)) if fitted else None,
            "largest_m": float(max(fitted)) if fitted else None, "model": model,
            "n_cells": int(n_cells), "skipped": skipped,
            "rule": f"median over the covariates of the effective range of {article} {model} "
                    f"variogram fitted to {int(n_cells)} random cells each (blockCV "
                    "cv_spatial_autocor; Valavi et al. 2019); covariates without a sill left out"}


def default_block_size(x, y, label, *, seed: int = 0,
                       covariate_range_m: float | None = None,
                       min_blocks: int = 10) -> tuple[float, str]:
    """Default block side [m] and the rule that chose it (see module docstring).

    The block side is the larger of the label variogram's range (:func:`variogram_range`
    on ``label``) and ``covariate_range_m`` (:func:`covariate_ranges`' median), bounded to
    [1/100, 1/2] of the longer side of the points' bounding box; without either, one tenth
    of that side.  Where fewer than ``min_blocks`` blocks would hold points (too few for
    the folds), the side is shrunk by factors of 0.8 until they do, and the rule says so.

    Parameters
    ----------
    x, y : array-like
        Point coordinates [m].
    label : array-like of {0, 1}
        Labels [-].
    seed : int
        Seed for the variogram subsample.
    covariate_range_m : float, optional
        Range of spatial autocorrelation of the covariates [m] (median over covariates).
    min_blocks : int
        Fewest blocks holding points [-] (default 10: two per fold of a 5-fold CV).

    Returns
    -------
    (float, str)
        Block size [m] and a short description of the rule used (naming both ranges).

    References
    ----------
    Roberts et al. (2017); Valavi et al. (2019), see module docstring.
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    extent = max(np.ptp(x), np.ptp(y), 1.0)
    r_lab = variogram_range(x, y, label, seed=seed)
    r_cov = None if covariate_range_m is None else float(covariate_range_m)
    both = f"label range {_km(r_lab)}, covariate range {_km(r_cov)}"
    found = [r for r in (r_lab, r_cov) if r is not None]
    if not found:
        return extent / 10.0, ("fallback: 1/10 of the longer side of the labels' bounding box "
                               f"(no autocorrelation range could be fitted: {both})")
    r = max(found)
    which = ("covariate" if r_cov is not None and r == r_cov else "label")
    size = float(min(max(r, extent / 100.0), extent / 2.0))
    bounded = "" if size == r else f", bounded to {_km(size)} (1/100 to 1/2 of the extent)"
    shrunk = size
    while len(np.unique(block_ids(x, y, shrunk))) < min_blocks and shrunk > extent / 100.0:
        shrunk *= 0.8
    if shrunk != size:
        bounded += (f", shrunk to {_km(shrunk)} so that at least {min_blocks} blocks hold "
                    "labels")
        size = shrunk
    return size, (f"larger of the label and covariate autocorrelation (variogram) ranges "
                  f"({both}): the {which} range{bounded}")


def _km(v: float | None) -> str:
    return "none" if v is None else f"{v / 1000:.2f} km"


def block_index(x, y, block_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Column and row of the square block (side ``block_size`` [m]) holding each point.

    The one blocking rule of the package, used by spatial CV (:func:`block_ids`) and by the
    spatial hold-out (:func:`permafrost.labels.holdout_split`): squares of side
    ``block_size`` whose lower-left corner is the points' minimum ``(x, y)``; block
    ``(ix, iy)`` spans ``[x0 + ix * size, x0 + (ix + 1) * size)`` and the same in ``y``.

    Parameters
    ----------
    x, y : array-like
        Point coordinates [m].
    block_size : float
        Block side [m].

    Returns
    -------
    (ndarray, ndarray) of int64
        ``ix``, ``iy`` per point.

    References
    ----------
    Roberts et al. (2017), Sect. "Blocking"; Valavi et al. (2019) (square spatial blocks).
    """
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if not (np.isfinite(block_size) and block_size > 0):
        raise DataError(f"block size must be positive, got {block_size}", field="block_size",
                        fix="give a size in metres")
    if x.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ix = np.floor((x - np.min(x)) / block_size).astype(np.int64)
    iy = np.floor((y - np.min(y)) / block_size).astype(np.int64)
    return ix, iy


def block_ids(x, y, block_size: float) -> np.ndarray:
    """Integer id of the square block (side ``block_size`` [m]) holding each point.

    Blocks as :func:`block_index`; the id is ``iy * (max ix + 1) + ix``.
    """
    ix, iy = block_index(x, y, block_size)
    if ix.size == 0:
        return ix
    return iy * (int(ix.max()) + 1) + ix


def block_boxes(x, y, block_size: float, ix, iy) -> list:
    """The squares of blocks ``(ix, iy)`` as :func:`block_index` lays them over points.

    Parameters
    ----------
    x, y : array-like
        The point coordinates [m] that :func:`block_index` was given (they fix the origin).
    block_size : float
        Block side [m].
    ix, iy : array-like of int
        Block column and row.

    Returns
    -------
    list of shapely.Polygon
        One square per block, in the points' metric frame.
    """
    x0, y0 = float(np.min(np.asarray(x, float))), float(np.min(np.asarray(y, float)))
    return [shapely.box(x0 + i * block_size, y0 + j * block_size, x0 + (i + 1) * block_size,
                        y0 + (j + 1) * block_size)
            for i, j in zip(np.asarray(ix), np.asarray(iy), strict=True)]


def site_ids(x, y, distance: float) -> np.ndarray:
    """Sites: points linked by chains of neighbours closer than ``distance`` share an id.

    Boreholes drilled a few hundred metres apart sample the same ground (one site); they
    are kept on one side of a hold-out and resampled together by the cluster bootstrap
    (:func:`permafrost.validation.bootstrap_metrics`).

    Parameters
    ----------
    x, y : array-like
        Point coordinates [m].
    distance : float
        Linking distance [m] (single-linkage clustering cut at this height).

    Returns
    -------
    ndarray of int64
        Site id per point, numbered 0..k-1 in order of first appearance.

    References
    ----------
    Davison, A. C. & Hinkley, D. V. (1997). Bootstrap Methods and their Application.
    Cambridge University Press, Sect. 3.8 (clustered data are resampled by cluster).
    """
    from scipy.sparse import coo_matrix  # noqa: PLC0415
    from scipy.sparse.csgraph import connected_components  # noqa: PLC0415
    from scipy.spatial import cKDTree  # noqa: PLC0415

    xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    n = len(xy)
    if n == 0:
        return np.zeros(0, np.int64)
    pairs = cKDTree(xy).query_pairs(float(distance), output_type="ndarray")
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)
    order = np.argsort(np.argsort(first))  # renumber by first appearance (deterministic)
    return order[comp].astype(np.int64)


def merge_groups(blocks: np.ndarray, groups=None) -> np.ndarray:
    """CV unit per point: its block, except that all points of a group join one block.

    A group (e.g. the points of one rock glacier) that straddles block edges is moved as a
    whole into the block holding most of its points (ties: the lowest block id), so a group
    never spans two folds.  (Merging every block a group touches instead would chain
    neighbouring blocks into one giant unit when groups are dense.)

    Parameters
    ----------
    blocks : ndarray of int
        Block id per point (:func:`block_ids`).
    groups : array-like, optional
        Group label per point; missing values (None/NaN/"") are points without a group.

    Returns
    -------
    ndarray of int
        A unit id per point, numbered 0..k-1 in increasing block order.
    """
    import pandas as pd  # noqa: PLC0415

    blocks = np.asarray(blocks).copy()
    if groups is not None:
        g = pd.Series(np.asarray(groups, dtype=object))
        valid = (g.notna() & (g.astype(str) != "")).to_numpy()
        if valid.any():
            gi = np.flatnonzero(valid)
            df = pd.DataFrame({"g": g[valid].astype(str).to_numpy(), "b": blocks[gi]})
            counts = df.groupby(["g", "b"]).size().reset_index(name="n")
            counts = counts.sort_values(["g", "n", "b"], ascending=[True, False, True])
            target = counts.drop_duplicates("g").set_index("g")["b"]
            blocks[gi] = target.loc[df["g"]].to_numpy()
    _, out = np.unique(blocks, return_inverse=True)
    return out.astype(np.int64)


def make_folds(y, *, n_splits: int = 5, groups=None, seed: int = 0,
               kind: str = "spatial") -> list[tuple[np.ndarray, np.ndarray]]:
    """Train/test index pairs: stratified group folds (spatial) or stratified random folds.

    Parameters
    ----------
    y : array-like of {0, 1}
        Labels [-].
    n_splits : int
        Number of folds.
    groups : array-like of int, optional
        Merged block/group ids (:func:`merge_groups`); required for ``kind="spatial"``.
    seed : int
        Shuffling seed.
    kind : {"spatial", "random"}
        ``spatial`` keeps every group in one fold; ``random`` ignores space.

    Returns
    -------
    list of (ndarray, ndarray)
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold  # noqa: PLC0415

    y = np.asarray(y)
    dummy = np.zeros((len(y), 1))
    if kind == "random":
        splitter = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return [(tr, te) for tr, te in splitter.split(dummy, y)]
    if groups is None:
        raise ValueError("spatial folds need groups")
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise ParameterError(
            f"only {n_groups} spatial blocks/groups for {n_splits} folds", param="block_size",
            fix="use a smaller {block_size} or fewer {folds}")
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return [(tr, te) for tr, te in splitter.split(dummy, y, groups)]


def summarise_folds(per_fold: list[dict]) -> dict:
    """Mean, standard deviation, min and max of each metric over folds (undefined ones skipped)."""
    out: dict[str, dict[str, float | None]] = {}
    for m in METRICS:
        v = np.array([f[m] for f in per_fold], dtype=np.float64)
        v = v[np.isfinite(v)]
        if len(v) == 0:
            out[m] = {"mean": None, "std": None, "min": None, "max": None}
        else:
            out[m] = {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
                      "min": float(v.min()), "max": float(v.max())}
    return out
