"""Where a model is asked about covariate values it never saw: its domain of applicability.

A statistical permafrost model only knows the covariate values of its training labels.
Beyond them a tree ensemble (XGBoost, random forest) predicts the value of its outermost
leaf, i.e. it stops responding, and any model extrapolates a relation it could not check
(Meyer & Pebesma 2021).  Warming scenarios move large areas past the warmest label, and a
region larger than the labels' may hold colder, higher or sunnier cells than any label.
So every PZI map gets a map of the cells where a covariate lies outside the range of the
training labels, and the share of the area where that happens, per covariate and side.

The rule is the simplest defensible one, per covariate: a cell is *outside* where a
covariate is below the smallest or above the largest value at the training labels
(a bounding box in covariate space).  It does not detect new combinations of in-range
values (Meyer & Pebesma's dissimilarity index does); the report says so.  The workflow
:func:`permafrost.workflows.applicability.applicability_from_files` applies it to one PZI map
and its files.

The map is an unsigned integer bit mask: for the model's i-th feature, bit ``2 i`` is
set where the value is below the training range and bit ``2 i + 1`` where it is above;
0 means inside on every covariate; the largest value of the type is nodata (no PZI).

A categorical covariate (land cover) has no range: its domain is the set of class codes
seen at the training labels (``metadata["training"]["categories"]``), and bit ``2 i`` is
set where a cell's class is not one of them.  Such cells get no PZI
(:mod:`permafrost.categorical`), but they are mapped and counted here as outside the
domain, not as nodata.

References
----------
Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the area of
    applicability of spatial prediction models. Methods in Ecology and Evolution 12,
    1620–1633.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dask.array as dsa
import numpy as np
import xarray as xr

from permafrost.area import cell_areas
from permafrost.checks import expects
from permafrost.defaults import CHUNK, auto_block_rows
from permafrost.errors import ModelError
from permafrost.grid import Grid, grid_of

__all__ = [
    "BlockCheck",
    "training_ranges",
    "outside_range",
    "extrapolation_map",
    "extrapolation_bounds",
    "extrapolation_legend",
    "extrapolation_statistics",
    "mask_dtype",
    "extrapolation_warnings",
    "FLAT_MODELS",
    "DOMAIN_WARN_SHARE",
    "WARN_SHARE",
    "label_support",
    "support_map",
    "support_warnings",
    "stratum_supported",
    "parse_class_table",
    "SUPPORT_MIN_LABELS",
    "SUPPORT_MIN_RATIO",
    "SUPPORT_BINS",
    "SUPPORT_WARN_SHARE",
]

#: models that predict a constant beyond the range of their training data (trees)
FLAT_MODELS = ("xgboost", "rf")

#: share of the mapped area [-] beyond the training range from which a changed covariate
#: of a tree model is reported as not responding
WARN_SHARE = 0.01

#: share of the mapped area [-] beyond the training range from which `permafrost predict`
#: warns that the map is largely an extrapolation
DOMAIN_WARN_SHARE = 0.05


def training_ranges(values: np.ndarray, names: Sequence[str]) -> dict[str, list[float]]:
    """The range [min, max] of each covariate at the training labels [its units].

    For continuous covariates: a categorical covariate's domain is the set of its class
    codes at the labels (:func:`permafrost.categorical.levels_of`), kept apart in a model's
    ``metadata["training"]["categories"]``.

    Parameters
    ----------
    values : ndarray, shape (n, p)
        Covariate values of the training labels (NaN ignored).
    names : sequence of str
        The p feature names.
    """
    x = np.asarray(values, dtype=np.float64)
    out = {}
    for j, nm in enumerate(names):
        col = x[:, j][np.isfinite(x[:, j])]
        out[str(nm)] = [float(col.min()), float(col.max())] if col.size else [np.nan, np.nan]
    return out


def mask_dtype(n_features: int) -> np.dtype:
    """The smallest unsigned type with two bits per feature and a spare nodata value."""
    for dt in (np.uint8, np.uint16, np.uint32, np.uint64):
        if 2 * n_features < np.iinfo(dt).bits:
            return np.dtype(dt)
    raise ModelError(f"{n_features} features are too many for an extrapolation bit mask",
                     field="features", fix="use at most 31 features")


def outside_range(block: np.ndarray, lo: np.ndarray, hi: np.ndarray, *,
                  valid: np.ndarray | None = None,
                  codes: Mapping[int, Sequence[int]] | None = None) -> np.ndarray:
    """Bit mask of the covariates outside their training range, for one block.

    Parameters
    ----------
    block : ndarray, shape (p, ny, nx)
        Covariates in feature order [their units].
    lo, hi : ndarray, shape (p,)
        Training minimum and maximum of each feature.
    valid : ndarray of bool, shape (ny, nx), optional
        Cells with a PZI; the others get the nodata value (the type's maximum), except
        cells with every covariate present whose class is unseen (they are outside).
    codes : mapping, optional
        ``{i: class codes seen in training}`` of the categorical features (their ``lo`` and
        ``hi`` are ignored): bit ``2 i`` is set where the class is not among them.

    Returns
    -------
    ndarray, shape (ny, nx)
        Bit ``2 i`` set below, ``2 i + 1`` above the range of feature ``i`` (categorical:
        bit ``2 i`` for a class not seen in training).
    """
    p = block.shape[0]
    dt = mask_dtype(p)
    codes = dict(codes or {})
    out = np.zeros(block.shape[1:], dtype=dt)
    unseen = np.zeros(block.shape[1:], dtype=bool)
    with np.errstate(invalid="ignore"):
        for i in range(p):
            if i in codes:
                u = np.isfinite(block[i]) & ~np.isin(block[i], np.asarray(codes[i], float))
                unseen |= u
                out |= u.astype(dt) << dt.type(2 * i)
                continue
            out |= (block[i] < lo[i]).astype(dt) << dt.type(2 * i)
            out |= (block[i] > hi[i]).astype(dt) << dt.type(2 * i + 1)
    if valid is not None:
        valid = valid | (unseen & np.isfinite(block).all(axis=0))
        out[~valid] = np.iinfo(dt).max
    return out


@expects(ds="dataset", ranges="mapping")
def extrapolation_map(ds: xr.Dataset, ranges: Mapping[str, Sequence[float]],
                      features: Sequence[str], *, pzi: xr.DataArray | None = None,
                      categories: Mapping[str, Sequence[int]] | None = None
                      ) -> xr.DataArray:
    """Lazy bit mask of the cells where a covariate leaves its training range.

    Parameters
    ----------
    ds : xarray.Dataset
        The covariates the PZI was predicted from (a scenario's, changed).
    ranges : mapping
        ``{feature: [min, max]}`` of the training labels (the model's
        ``metadata["training"]["ranges"]``).
    features : sequence of str
        The model's features, in order (bit order of the mask).
    pzi : xarray.DataArray, optional
        The PZI on the same grid: cells without a PZI (masked, missing) become nodata,
        but for those of a class not seen in training (outside).
    categories : mapping, optional
        ``{feature: class codes seen in training}`` of the categorical features
        (``metadata["training"]["categories"]``); they need no range.

    Returns
    -------
    xarray.DataArray
        Unsigned integers (:func:`mask_dtype`), with the stack's CRS and transform; the
        attribute ``legend`` names each bit.
    """
    lo, hi, codes = extrapolation_bounds(ranges, features, categories)
    dt = mask_dtype(len(features))
    stack = dsa.stack([_dask(ds[f]) for f in features])
    if pzi is not None:
        valid = dsa.isfinite(_dask(pzi).rechunk(stack.chunks[1:]))
        data = dsa.map_blocks(lambda b, v: outside_range(b, lo, hi, valid=v, codes=codes),
                              stack, valid, drop_axis=0, dtype=dt)
    else:
        data = dsa.map_blocks(lambda b: outside_range(b, lo, hi, codes=codes), stack,
                              drop_axis=0, dtype=dt)
    out = xr.DataArray(data, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]},
                       name="extrapolation")
    out.attrs["legend"] = extrapolation_legend(features, lo, hi, codes)
    return out.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())


def extrapolation_bounds(ranges: Mapping[str, Sequence[float]], features: Sequence[str],
                         categories: Mapping[str, Sequence[int]] | None = None
                         ) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
    """The arguments of :func:`outside_range` for a model's features: training minima
    ``lo`` and maxima ``hi`` [the features' units] (NaN for a categorical feature) and
    ``{i: class codes seen in training}``.

    Raises
    ------
    ModelError
        A continuous feature has no training range.
    """
    categories = dict(categories or {})
    missing = [f for f in features if f not in ranges and f not in categories]
    if missing:
        raise ModelError(f"the model has no training range for {missing}", field="ranges",
                         fix="retrain the model with this version of permafrost")
    codes = {i: [int(c) for c in categories[f]] for i, f in enumerate(features)
             if f in categories}
    lo = np.array([np.nan if i in codes else ranges[f][0] for i, f in enumerate(features)],
                  dtype=np.float64)
    hi = np.array([np.nan if i in codes else ranges[f][1] for i, f in enumerate(features)],
                  dtype=np.float64)
    return lo, hi, codes


def extrapolation_legend(features: Sequence[str], lo: np.ndarray, hi: np.ndarray,
                         codes: Mapping[int, Sequence[int]]) -> str:
    """What each bit of the extrapolation mask means (the COG's ``PZI_CONTENT`` tag)."""
    dt = mask_dtype(len(features))
    return "; ".join(
        (f"bit {2 * i}: {f} a class not seen in training (seen: "
         f"{','.join(str(c) for c in codes[i])})") if i in codes else
        f"bit {2 * i}: {f} below {lo[i]:.6g}, bit {2 * i + 1}: {f} above {hi[i]:.6g}"
        for i, f in enumerate(features)) + f"; 0: inside; {np.iinfo(dt).max}: nodata"


@dataclass
class BlockCheck:
    """The applicability check's share of one prediction block task: what it computes from
    the covariate block the task already holds, so the stack is read (and its derived
    covariates computed) once per block (:mod:`permafrost.workflows.applicability`).

    Everything here is per cell, so a block's result does not depend on the block grid,
    and the statistics reduced from the blocks' layers are the ones
    :func:`extrapolation_statistics` and :func:`label_support` give on the whole stack.

    Attributes
    ----------
    order : list of int
        Position in the task's covariate blocks of each feature of the check (the model's
        ``feature_names``, the bit order).
    lo, hi, codes
        :func:`extrapolation_bounds`; ``lo`` None: no extrapolation bits (no ranges).
    grid : Grid or None
        The whole grid, to compute each cell's area [m²] once (projected grids; None when
        areas are not kept: geographic grids, whose areas are per row and cheap).
    keep : list of int
        Features (indices into ``order``) whose block values are kept for the label
        support's passes over the map.
    label_rows, label_cols : ndarray or None
        Grid cells of the training labels whose covariate values are read in the block
        (the label support's ``label_values``; None: none read here).
    """

    order: list
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    codes: dict = field(default_factory=dict)
    grid: Grid | None = None
    keep: list = field(default_factory=list)
    label_rows: np.ndarray | None = None
    label_cols: np.ndarray | None = None

    def __call__(self, blocks: Sequence[np.ndarray], pzi: np.ndarray,
                 window: tuple[int, int, int, int]) -> dict[str, np.ndarray]:
        """The block's named layers: ``bits`` (:func:`outside_range`, nodata where no PZI),
        ``area`` (cell areas [m²], :func:`permafrost.area.cell_areas`), ``x<i>`` (the
        kept features' values, native dtype) and ``labels`` (rows: label index, then the
        kept features' values at the labels in this block, float64)."""
        r0, c0, h, w = window
        native = [np.asarray(blocks[k]) for k in self.order]
        out: dict[str, np.ndarray] = {}
        if self.lo is not None and self.hi is not None:  # set together
            out["bits"] = outside_range(np.stack(native), self.lo, self.hi,
                                        valid=np.isfinite(pzi), codes=self.codes)
        if self.grid is not None:
            out["area"] = cell_areas(self.grid, slice(r0, r0 + h), slice(c0, c0 + w))
        for i in self.keep:
            out[f"x{i}"] = native[i]
        if self.label_rows is not None and self.label_cols is not None:  # set together
            r, c = self.label_rows, self.label_cols
            idx = np.flatnonzero((r >= r0) & (r < r0 + h) & (c >= c0) & (c < c0 + w))
            vals = np.empty((len(idx), 1 + len(self.keep)))
            vals[:, 0] = idx
            for k, i in enumerate(self.keep):
                vals[:, 1 + k] = native[i][r[idx] - r0, c[idx] - c0]
            out["labels"] = vals
        return out


def extrapolation_statistics(mask: xr.DataArray, features: Sequence[str], *,
                             block_rows: int | None = None,
                             categorical: Sequence[str] = (),
                             areas: Callable[[slice], np.ndarray] | None = None) -> dict:
    """Area and share of the mapped area outside the training range, per covariate.

    Parameters
    ----------
    mask : xarray.DataArray
        :func:`extrapolation_map` (with a PZI, so nodata cells are left out).
    features : sequence of str
        The features in bit order.
    block_rows : int, optional
        Rows per block [-] (memory is bounded by one block; default: about
        :data:`permafrost.defaults.BLOCK_CELLS` cells,
        :func:`permafrost.defaults.auto_block_rows`).
    categorical : sequence of str
        The categorical features: their ``below_km2`` is the area of classes not seen in
        training (also given as ``unseen_class_km2``, with ``kind`` = ``categorical``).
    areas : callable, optional
        ``areas(rows)`` -> the cell areas [m²] of a slice of rows (broadcasting over the
        columns), e.g. read back from where they were computed once; default
        :func:`permafrost.area.cell_areas` of the mask's grid.

    Returns
    -------
    dict
        ``denominator_km2`` (cells with a PZI), ``outside_km2`` and ``outside_share``
        (any covariate outside), and per feature ``below_km2``, ``above_km2`` and
        ``share`` [-]; areas on the ellipsoid (:func:`permafrost.area.cell_areas`).
    """
    grid = grid_of(mask)
    ny, nx = grid.shape
    rows = block_rows or auto_block_rows(nx)
    nodata = np.iinfo(mask.dtype).max
    total = anyout = 0.0
    below = np.zeros(len(features))
    above = np.zeros(len(features))
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        m = np.asarray(mask.isel(y=slice(r0, r1)).values)
        a = np.broadcast_to(_areas(grid, areas, slice(r0, r1)), m.shape)
        ok = m != nodata
        total += float(a[ok].sum())
        anyout += float(a[ok & (m != 0)].sum())
        for i in range(len(features)):
            below[i] += float(a[ok & ((m >> (2 * i)) & 1).astype(bool)].sum())
            above[i] += float(a[ok & ((m >> (2 * i + 1)) & 1).astype(bool)].sum())
    km2 = 1e-6

    def share(v):
        return v / total if total > 0 else None

    return {
        "rule": "a covariate below the smallest or above the largest value at the "
                "training labels",
        "denominator_km2": total * km2,
        "outside_km2": anyout * km2,
        "outside_share": share(anyout),
        "covariates": {f: {"below_km2": below[i] * km2, "above_km2": above[i] * km2,
                           "share": share(below[i] + above[i]),
                           **({"kind": "categorical", "unseen_class_km2": below[i] * km2}
                              if f in categorical else {})}
                       for i, f in enumerate(features)},
        **({"categorical_rule": "a categorical covariate is outside where its class is not "
                                "one seen at the training labels (no PZI there)"}
           if categorical else {}),
    }


def extrapolation_warnings(stats: Mapping | None, model_kind: str | None,
                           changed: Sequence[str]) -> list[dict]:
    """Where a scenario's changed covariates leave the training range of a tree model.

    A tree ensemble predicts the value of its outermost leaf beyond the training range,
    so in those cells the map does not respond to a further change at all (a logistic
    model keeps responding, Boeckli et al. 2012).  One record per changed feature whose
    out-of-range share reaches :data:`WARN_SHARE`.

    Parameters
    ----------
    stats : mapping or None
        :func:`extrapolation_statistics` of the run.
    model_kind : str or None
        The model's kind (``xgboost``, ``rf``, ``logistic``).
    changed : sequence of str
        The model's features that the scenario changed.
    """
    if not stats or model_kind not in FLAT_MODELS:
        return []
    out = []
    for f in changed:
        c = stats["covariates"].get(f)
        if not c or c["share"] is None or c["share"] < WARN_SHARE:
            continue
        out.append({"kind": "flat_beyond_range", "covariate": f, "share": c["share"],
                    "message": f"{c['share']:.1%} of the mapped area has {f} beyond the range "
                               f"of the training labels, where a tree model ({model_kind}) "
                               "stops responding: the PZI there is the one at the edge of the "
                               "range, not an extrapolation (use model = \"logistic\" for "
                               "scenarios, see docs/pipelines.md)"})
    return out


def _dask(arr: xr.DataArray) -> dsa.Array:
    d = arr.data
    return d if isinstance(d, dsa.Array) else dsa.from_array(np.asarray(d), chunks=CHUNK)


# ---------------------------------------------------------------------------------------
# representativeness: where the labels are against the landscape they are mapped onto

#: fewest labels [-] a surface class or covariate bin needs to count as supported.  With
#: fewer than 10 labels the share of permafrost in a stratum is not known to better than
#: about ±0.3 (95 % binomial interval at p = 0.5: ±1.96·√(0.25/10) = ±0.31), i.e. the
#: labels say nothing a model could check there.
SUPPORT_MIN_LABELS = 10

#: smallest ratio [-] of a stratum's share of the labels to its share of the map: below a
#: fifth, the fit sees the stratum at under 20 % of the weight the map gives it (a design
#: weight above 5), and the CV score, an average over the labels, hides its error.  A
#: choice, in the spirit of Meyer & Pebesma's (2021) area of applicability: judge a map
#: by where its training data are, not by the CV score alone.
SUPPORT_MIN_RATIO = 0.2

#: covariate bins: deciles of the map's (area-weighted) distribution of each covariate
SUPPORT_BINS = 10

#: share of the mapped area [-] in unsupported strata from which the run warns
SUPPORT_WARN_SHARE = 0.05

#: the label source that speaks for coarse debris only (permafrost.labels)
ROCK_GLACIER = "rock_glacier"

#: fine bins [-] of the area-weighted histogram the decile edges are read from
_FINE_BINS = 2048

SUPPORT_RULE = (f"a surface class or covariate decile is unsupported when it holds fewer "
                f"than {SUPPORT_MIN_LABELS} training labels or a share of the labels below "
                f"{SUPPORT_MIN_RATIO:g} times its share of the map (Meyer & Pebesma 2021: "
                "a map holds where its training data are)")


def parse_class_table(tag: str | None) -> dict[int, str]:
    """``{code: name}`` of a categorical raster's ``classes`` tag (``1=bedrock;2=...``)."""
    out: dict[int, str] = {}
    for part in (tag or "").split(";"):
        code, sep, name = part.partition("=")
        try:
            if sep:
                out[int(code.strip())] = name.strip()
        except ValueError:
            continue
    return out


def stratum_supported(n_labels: int, n_total: int, map_share: float) -> bool:
    """Whether a stratum (surface class, covariate bin) has enough labels.

    Supported when it holds at least :data:`SUPPORT_MIN_LABELS` labels and its share of the
    labels is at least :data:`SUPPORT_MIN_RATIO` times its share of the map.

    Parameters
    ----------
    n_labels : int
        Training labels in the stratum [-].
    n_total : int
        Training labels in all strata of the partition [-].
    map_share : float
        The stratum's share of the mapped area [-].

    References
    ----------
    Meyer, H., Pebesma, E. (2021), Methods Ecol. Evol. 12, 1620–1633.
    """
    if n_labels < SUPPORT_MIN_LABELS:
        return False
    return n_total > 0 and n_labels / n_total >= SUPPORT_MIN_RATIO * map_share


def _areas(grid, areas, rows: slice) -> np.ndarray:
    """Cell areas [m²] of a slice of rows: ``areas(rows)`` when given, else computed."""
    return cell_areas(grid, rows) if areas is None else np.asarray(areas(rows))


def _blocks(ds, features, pzi, landcover, rows, areas=None):
    grid = grid_of(pzi)
    ny = grid.shape[0]
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        sl = slice(r0, r1)
        valid = np.isfinite(np.asarray(pzi.isel(y=sl).values))
        x = np.stack([np.asarray(ds[f].isel(y=sl).values, dtype=np.float64)
                      for f in features]) if features else np.zeros((0,) + valid.shape)
        cls = None if landcover is None else np.asarray(landcover.isel(y=sl).values)
        area = np.broadcast_to(_areas(grid, areas, sl), valid.shape)
        yield x, valid, cls, area


def _class_codes(cls: np.ndarray) -> np.ndarray:
    """Integer class codes, -1 where no class (NaN)."""
    c = np.asarray(cls, dtype=np.float64)
    out = np.full(c.shape, -1, dtype=np.int64)
    ok = np.isfinite(c)
    out[ok] = np.rint(c[ok]).astype(np.int64)
    return out


def _bin_index(values: np.ndarray, inner: np.ndarray) -> np.ndarray:
    return np.searchsorted(inner, values, side="right")


def label_support(ds: xr.Dataset, features: Sequence[str], pzi: xr.DataArray,
                  label_values: np.ndarray, label_sources: Sequence[str] | np.ndarray, *,
                  landcover: xr.DataArray | None = None,
                  label_classes: np.ndarray | None = None,
                  class_names: Mapping[int, str] | None = None,
                  bins: int = SUPPORT_BINS, block_rows: int | None = None,
                  areas: Callable[[slice], np.ndarray] | None = None) -> dict:
    """Where the training labels are against the landscape the map covers.

    Strata are the surface classes of a land-cover map (when given) and, per covariate,
    the deciles of the map's area-weighted distribution.  For each stratum: its share of
    the mapped area, its label count (per source for the classes) and whether it is
    supported (:func:`stratum_supported`).  The unsupported share is the share of the
    mapped area in at least one unsupported stratum.  Rock glacier fronts speak for coarse
    debris only (Boeckli et al. 2012), so their evidence is *extrapolated* to the map's
    classes holding fewer than :data:`SUPPORT_MIN_LABELS` fronts (with land cover) and, in
    any case, to the cells outside the covariate ranges the fronts span.

    Three passes over the rows in blocks (memory bounded by one block): covariate
    minima and maxima, an area-weighted histogram of 2048 bins per covariate (the decile
    edges, interpolated on its cumulative area), and the stratum areas.

    Parameters
    ----------
    ds : xarray.Dataset
        The covariates the PZI was predicted from [their units].
    features : sequence of str
        The model's features.
    pzi : xarray.DataArray
        The PZI on the same grid (cells without one are left out).
    label_values : ndarray, shape (n, p)
        Covariate values of the training labels (feature order; NaN: not on the stack).
    label_sources : sequence of str
        Each label's source (``rock_glacier``, ``borehole``...).
    landcover : xarray.DataArray, optional
        Surface class codes on the same grid (NaN: no class).
    label_classes : ndarray, shape (n,), optional
        Each label's class code (NaN: none); required with ``landcover``.
    class_names : mapping, optional
        ``{code: name}`` (:func:`parse_class_table`).
    bins : int
        Bins per covariate (quantiles of the map's distribution) [-].
    block_rows : int, optional
        Rows per block [-] (default :func:`permafrost.defaults.auto_block_rows`).
    areas : callable, optional
        ``areas(rows)`` -> cell areas [m²] of a slice of rows, as for
        :func:`extrapolation_statistics`.

    Returns
    -------
    dict
        ``rule``, thresholds, ``n_labels``, ``sources``, ``surface`` (per class: area [km²],
        map share, labels by source, label share, ``supported``; the unsupported share) or
        None, ``covariates`` (per covariate: bin edges, per-bin map share, labels,
        ``supported``; the unsupported share), ``unsupported_share``,
        ``rock_glacier`` (fronts, their covariate ranges, the share of the map outside them,
        and with land cover the share in classes without enough fronts).

    References
    ----------
    Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the area of
        applicability of spatial prediction models. Methods Ecol. Evol. 12, 1620–1633.
    Boeckli, L., Brenning, A., Gruber, S., Noetzli, J. (2012). A statistical approach to
        modelling permafrost distribution in the European Alps or similar mountain ranges.
        The Cryosphere 6, 125–140.
    """
    features = [str(f) for f in features]
    p = len(features)
    grid = grid_of(pzi)
    rows = block_rows or auto_block_rows(grid.shape[1])
    lv = np.asarray(label_values, dtype=np.float64).reshape(-1, p)
    src = np.asarray([str(s) for s in label_sources], dtype=object)
    n = len(src)
    names = {int(k): str(v) for k, v in (class_names or {}).items()}
    if landcover is not None and label_classes is None:
        raise ModelError("land cover given without the labels' classes", field="label_classes",
                         fix="sample the land-cover map at the labels")
    # pass 1: covariate range over the mapped cells, class areas
    lo = np.full(p, np.inf)
    hi = np.full(p, -np.inf)
    class_area: dict[int, float] = {}
    total = 0.0
    for x, valid, cls, area in _blocks(ds, features, pzi, landcover, rows, areas):
        total += float(area[valid].sum())
        for j in range(p):
            v = x[j][valid & np.isfinite(x[j])]
            if v.size:
                lo[j] = min(lo[j], float(v.min()))
                hi[j] = max(hi[j], float(v.max()))
        if cls is not None:
            codes = _class_codes(cls)[valid]
            a = area[valid]
            for c in np.unique(codes):
                class_area[int(c)] = class_area.get(int(c), 0.0) + float(a[codes == c].sum())
    # pass 2: area-weighted histograms -> quantile edges
    hist = np.zeros((p, _FINE_BINS))
    if p:
        for x, valid, _cls, area in _blocks(ds, features, pzi, None, rows, areas):
            for j in range(p):
                if not np.isfinite(lo[j]) or hi[j] <= lo[j]:
                    continue
                ok = valid & np.isfinite(x[j])
                h, _ = np.histogram(x[j][ok], bins=_FINE_BINS, range=(lo[j], hi[j]),
                                    weights=area[ok])
                hist[j] += h
    inner = []
    for j in range(p):
        if not np.isfinite(lo[j]) or hi[j] <= lo[j] or hist[j].sum() <= 0:
            inner.append(np.array([]))
            continue
        cum = np.concatenate([[0.0], np.cumsum(hist[j])]) / hist[j].sum()
        fine = np.linspace(lo[j], hi[j], _FINE_BINS + 1)
        q = np.interp(np.arange(1, bins) / bins, cum, fine)
        inner.append(np.unique(q[(q > lo[j]) & (q < hi[j])]))
    # labels per bin and per class
    lab_ok = np.isfinite(lv).all(axis=1) if p else np.ones(n, bool)
    n_cov = int(lab_ok.sum())
    bin_counts = [np.bincount(_bin_index(lv[lab_ok, j], inner[j]), minlength=len(inner[j]) + 1)
                  for j in range(p)]
    rg = src == ROCK_GLACIER
    rg_ok = rg & lab_ok
    rg_lo = lv[rg_ok].min(axis=0) if rg_ok.any() else np.full(p, np.nan)
    rg_hi = lv[rg_ok].max(axis=0) if rg_ok.any() else np.full(p, np.nan)
    lcodes = None if label_classes is None else _class_codes(np.asarray(label_classes))
    # pass 3: areas per bin, unsupported areas
    bin_area = [np.zeros(len(inner[j]) + 1) for j in range(p)]
    mapped_total = total
    class_share = {c: a / mapped_total for c, a in class_area.items() if c >= 0} \
        if mapped_total > 0 else {}
    n_cls = int((lcodes >= 0).sum()) if lcodes is not None else 0
    class_ok = {c: stratum_supported(int((lcodes == c).sum()), n_cls, s)
                for c, s in class_share.items()} if lcodes is not None else {}
    rg_class_ok = {c: int(((lcodes == c) & rg).sum()) >= SUPPORT_MIN_LABELS
                   for c in class_share} if lcodes is not None else {}
    for x, valid, _cls, area in _blocks(ds, features, pzi, None, rows, areas):
        for j in range(p):
            ok = valid & np.isfinite(x[j])
            bin_area[j] += np.bincount(_bin_index(x[j][ok], inner[j]), weights=area[ok],
                                       minlength=len(inner[j]) + 1)
    bin_share = [ba / mapped_total if mapped_total > 0 else ba * 0 for ba in bin_area]
    bin_ok = [np.array([stratum_supported(int(bin_counts[j][b]), n_cov, float(bin_share[j][b]))
                        for b in range(len(bin_area[j]))]) for j in range(p)]
    un_any = un_surface = un_cov = rg_out = rg_cls_out = 0.0
    un_cov_j = np.zeros(p)
    for x, valid, cls, area in _blocks(ds, features, pzi, landcover, rows, areas):
        bad_cov = np.zeros(valid.shape, bool)
        out_rg = np.zeros(valid.shape, bool)
        for j in range(p):
            ok = np.isfinite(x[j])
            bj = np.zeros(valid.shape, bool)
            bj[ok] = ~bin_ok[j][_bin_index(x[j][ok], inner[j])]
            un_cov_j[j] += float(area[valid & bj].sum())
            bad_cov |= bj
            if rg_ok.any():
                with np.errstate(invalid="ignore"):
                    out_rg |= (x[j] < rg_lo[j]) | (x[j] > rg_hi[j])
        bad_cls = np.zeros(valid.shape, bool)
        rg_cls = np.zeros(valid.shape, bool)
        if cls is not None:
            codes = _class_codes(cls)
            for c, good in class_ok.items():
                if not good:
                    bad_cls |= codes == c
                if not rg_class_ok.get(c, False):
                    rg_cls |= codes == c
        un_any += float(area[valid & (bad_cov | bad_cls)].sum())
        un_surface += float(area[valid & bad_cls].sum())
        un_cov += float(area[valid & bad_cov].sum())
        rg_out += float(area[valid & out_rg].sum())
        rg_cls_out += float(area[valid & rg_cls].sum())

    def share(v):
        return v / mapped_total if mapped_total > 0 else None

    sources = sorted({str(s) for s in src})
    surface = None
    if landcover is not None:
        assert lcodes is not None  # a land cover comes with the labels' classes (checked above)
        classes = []
        for c in sorted(class_area):
            m = lcodes == c
            k = int(m.sum())
            classes.append({
                "code": None if c < 0 else c,
                "name": "no class" if c < 0 else names.get(c, str(c)),
                "map_km2": class_area[c] * 1e-6, "map_share": share(class_area[c]),
                "labels": k, "by_source": {s: int((m & (src == s)).sum()) for s in sources},
                "label_share": k / n_cls if n_cls and c >= 0 else None,
                # label share / map share: 1 = sampled in proportion to its area
                "representation": (k / n_cls) / share(class_area[c])
                if n_cls and c >= 0 and class_area[c] > 0 else None,
                "supported": class_ok.get(c)})
        for c in sorted(set(lcodes.tolist()) - set(class_area)):  # labels off the map
            m = lcodes == c
            classes.append({"code": None if c < 0 else c,
                            "name": "no class" if c < 0 else names.get(c, str(c)),
                            "map_km2": 0.0, "map_share": 0.0, "labels": int(m.sum()),
                            "by_source": {s: int((m & (src == s)).sum()) for s in sources},
                            "label_share": int(m.sum()) / n_cls if n_cls and c >= 0 else None,
                            "representation": None, "supported": None})
        surface = {"classes": classes, "unsupported_share": share(un_surface),
                   "unsupported_km2": un_surface * 1e-6}
    covs = {}
    for j, f in enumerate(features):
        edges = [lo[j], *inner[j].tolist(), hi[j]] if np.isfinite(lo[j]) else []
        covs[f] = {"bins": [{"low": float(edges[b]), "high": float(edges[b + 1]),
                             "map_share": float(bin_share[j][b]),
                             "labels": int(bin_counts[j][b]),
                             "supported": bool(bin_ok[j][b])}
                            for b in range(len(edges) - 1)],
                   "unsupported_share": share(un_cov_j[j])}
    rock = {"n": int(rg.sum()),
            "ranges": {f: [float(rg_lo[j]), float(rg_hi[j])] for j, f in enumerate(features)}
            if rg_ok.any() else None,
            "outside_ranges_share": share(rg_out) if rg_ok.any() else None,
            "basis": "land cover" if landcover is not None else "covariate ranges",
            "classes_share": share(rg_cls_out) if landcover is not None and rg.any() else None}
    return {"rule": SUPPORT_RULE, "min_labels": SUPPORT_MIN_LABELS,
            "min_ratio": SUPPORT_MIN_RATIO, "bins": bins,
            "bin_rule": f"{bins} quantiles of the map's area-weighted distribution",
            "denominator_km2": mapped_total * 1e-6, "n_labels": n,
            "sources": {s: int((src == s).sum()) for s in sources},
            "surface": surface, "covariates": covs,
            "covariate_unsupported_share": share(un_cov),
            "unsupported_share": share(un_any), "rock_glacier": rock}


def _support_block(x, valid, cls, features_inner, bin_counts, class_counts):
    out = np.full(valid.shape, np.iinfo(np.int32).max, dtype=np.int64)
    for j, inner in enumerate(features_inner):
        ok = np.isfinite(x[j])
        cnt = np.zeros(valid.shape, dtype=np.int64)
        cnt[ok] = bin_counts[j][_bin_index(x[j][ok], inner)]
        out = np.minimum(out, np.where(ok, cnt, out))
    if cls is not None:
        codes = _class_codes(cls)
        cnt = np.zeros(valid.shape, dtype=np.int64)
        for c, k in class_counts.items():
            cnt[codes == c] = k
        out = np.where(codes >= 0, np.minimum(out, cnt), out)
    out = out.astype(np.int32)
    out[~valid] = -1
    return out


def support_map(ds: xr.Dataset, features: Sequence[str], pzi: xr.DataArray, support: Mapping,
                *, landcover: xr.DataArray | None = None) -> xr.DataArray:
    """Lazy map of label support: the number of training labels in the cell's least
    supported stratum (its surface class or the decile of any covariate it lies in).

    Parameters
    ----------
    ds, features, pzi, landcover
        As for :func:`label_support`.
    support : mapping
        :func:`label_support` of the same map.

    Returns
    -------
    xarray.DataArray
        int32 label counts [-]; -1 where there is no PZI.  Compare with
        :data:`SUPPORT_MIN_LABELS`.

    References
    ----------
    Meyer, H., Pebesma, E. (2021), Methods Ecol. Evol. 12, 1620–1633.
    """
    features = [str(f) for f in features]
    inner = [np.array([b["high"] for b in support["covariates"][f]["bins"][:-1]])
             for f in features]
    counts = [np.array([b["labels"] for b in support["covariates"][f]["bins"]] or [0])
              for f in features]
    ccounts = {}
    if landcover is not None and support.get("surface"):
        ccounts = {c["code"]: c["labels"] for c in support["surface"]["classes"]
                   if c["code"] is not None}
    stack = dsa.stack([_dask(ds[f]) for f in features])
    valid = dsa.isfinite(_dask(pzi).rechunk(stack.chunks[1:]))
    if landcover is not None:
        lc = _dask(landcover).rechunk(stack.chunks[1:])
        data = dsa.map_blocks(lambda b, v, c: _support_block(b, v, c, inner, counts, ccounts),
                              stack, valid, lc, drop_axis=0, dtype=np.int32)
    else:
        data = dsa.map_blocks(lambda b, v: _support_block(b, v, None, inner, counts, ccounts),
                              stack, valid, drop_axis=0, dtype=np.int32)
    out = xr.DataArray(data, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]},
                       name="label_support")
    return out.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())


def support_warnings(support: Mapping | None) -> list[dict]:
    """The warnings of :func:`label_support`: too few labels over much of the map
    (:data:`SUPPORT_WARN_SHARE`), and, without a land-cover map, that rock glacier evidence
    speaks for coarse debris only (Boeckli et al. 2012) with the share of the map it is
    extrapolated to."""
    if not support:
        return []
    out = []
    un = support.get("unsupported_share")
    if un is not None and un >= SUPPORT_WARN_SHARE:
        parts = []
        for c in (support.get("surface") or {}).get("classes") or []:
            if c["supported"] is False and (c["map_share"] or 0) >= 0.001:
                parts.append(f"class '{c['name']}' {100 * c['map_share']:.1f} % of the map, "
                             f"{c['labels']} labels")
        for f, cv in (support.get("covariates") or {}).items():
            if (cv["unsupported_share"] or 0) >= 0.001:
                parts.append(f"{f}: {100 * cv['unsupported_share']:.1f} % of the map in "
                             "deciles with too few labels")
        out.append({"kind": "label_support", "share": un,
                    "message": f"{100 * un:.1f} % of the mapped area lies in surface classes "
                               f"or covariate deciles with too few labels (fewer than "
                               f"{SUPPORT_MIN_LABELS}, or under {SUPPORT_MIN_RATIO:g} of their "
                               "share of the map): " + "; ".join(parts)
                               + ". The PZI there rests on labels from elsewhere "
                               "(label support map: support.tif of a pipeline run, "
                               "`permafrost predict --support`; docs/method.md, "
                               "\"Representativeness\")"})
    rg = support.get("rock_glacier") or {}
    if support.get("surface") is None and rg.get("n"):
        sh = rg.get("outside_ranges_share")
        out.append({"kind": "debris_only", "share": sh,
                    "message": f"Rock-glacier evidence speaks for coarse debris only: "
                               f"{rg['n']} of {support['n_labels']} training labels are rock "
                               "glacier fronts, yet the map applies them to every surface. "
                               "Without a land-cover map the share of the map outside debris "
                               "is unknown; "
                               + ("" if sh is None else
                                  f"{100 * sh:.1f} % of the mapped area lies outside the "
                                  "covariate ranges spanned by the rock glacier fronts. ")
                               + "Give a land-cover map (inputs.landcover, --landcover) to "
                               "see the share in each surface class"})
    return out
