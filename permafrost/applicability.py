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

References
----------
Meyer, H., Pebesma, E. (2021). Predicting into unknown space? Estimating the area of
    applicability of spatial prediction models. Methods in Ecology and Evolution 12,
    1620–1633.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import dask.array as dsa
import numpy as np
import xarray as xr

from permafrost.area import cell_areas
from permafrost.checks import expects
from permafrost.defaults import CHUNK, auto_block_rows
from permafrost.errors import ModelError
from permafrost.grid import grid_of

__all__ = [
    "training_ranges",
    "outside_range",
    "extrapolation_map",
    "extrapolation_statistics",
    "mask_dtype",
    "extrapolation_warnings",
    "FLAT_MODELS",
    "DOMAIN_WARN_SHARE",
    "WARN_SHARE",
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
                  valid: np.ndarray | None = None) -> np.ndarray:
    """Bit mask of the covariates outside their training range, for one block.

    Parameters
    ----------
    block : ndarray, shape (p, ny, nx)
        Covariates in feature order [their units].
    lo, hi : ndarray, shape (p,)
        Training minimum and maximum of each feature.
    valid : ndarray of bool, shape (ny, nx), optional
        Cells with a PZI; the others get the nodata value (the type's maximum).

    Returns
    -------
    ndarray, shape (ny, nx)
        Bit ``2 i`` set below, ``2 i + 1`` above the range of feature ``i``.
    """
    p = block.shape[0]
    dt = mask_dtype(p)
    out = np.zeros(block.shape[1:], dtype=dt)
    with np.errstate(invalid="ignore"):
        for i in range(p):
            out |= (block[i] < lo[i]).astype(dt) << dt.type(2 * i)
            out |= (block[i] > hi[i]).astype(dt) << dt.type(2 * i + 1)
    if valid is not None:
        out[~valid] = np.iinfo(dt).max
    return out


@expects(ds="dataset", ranges="mapping")
def extrapolation_map(ds: xr.Dataset, ranges: Mapping[str, Sequence[float]],
                      features: Sequence[str], *, pzi: xr.DataArray | None = None
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
        The PZI on the same grid: cells without a PZI (masked, missing) become nodata.

    Returns
    -------
    xarray.DataArray
        Unsigned integers (:func:`mask_dtype`), with the stack's CRS and transform; the
        attribute ``legend`` names each bit.
    """
    missing = [f for f in features if f not in ranges]
    if missing:
        raise ModelError(f"the model has no training range for {missing}", field="ranges",
                         fix="retrain the model with this version of permafrost")
    lo = np.array([ranges[f][0] for f in features], dtype=np.float64)
    hi = np.array([ranges[f][1] for f in features], dtype=np.float64)
    dt = mask_dtype(len(features))
    stack = dsa.stack([_dask(ds[f]) for f in features])
    if pzi is not None:
        valid = dsa.isfinite(_dask(pzi).rechunk(stack.chunks[1:]))
        data = dsa.map_blocks(lambda b, v: outside_range(b, lo, hi, valid=v), stack, valid,
                              drop_axis=0, dtype=dt)
    else:
        data = dsa.map_blocks(lambda b: outside_range(b, lo, hi), stack, drop_axis=0, dtype=dt)
    out = xr.DataArray(data, dims=("y", "x"), coords={"y": ds["y"], "x": ds["x"]},
                       name="extrapolation")
    out.attrs["legend"] = "; ".join(
        f"bit {2 * i}: {f} below {lo[i]:.6g}, bit {2 * i + 1}: {f} above {hi[i]:.6g}"
        for i, f in enumerate(features)) + f"; 0: inside; {np.iinfo(dt).max}: nodata"
    return out.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())


def extrapolation_statistics(mask: xr.DataArray, features: Sequence[str], *,
                             block_rows: int | None = None) -> dict:
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
        a = np.broadcast_to(cell_areas(grid, slice(r0, r1)), m.shape)
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
                           "share": share(below[i] + above[i])}
                       for i, f in enumerate(features)},
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
