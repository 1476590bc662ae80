"""PZI prediction: a trained model applied to covariates, block by block.

The science of the prediction, on objects (no files here):

* :func:`predict_block` -- one block of covariates (NumPy or CuPy) in the model's feature
  order: the pixels that have every covariate and lie outside the mask are predicted
  (XGBoost ``inplace_predict`` through :meth:`PZIModel.predict_raw`) and calibrated
  (:meth:`PZIModel.calibrate`); optionally the spread of the fold models too.
* :func:`predict_pzi` -- the PZI of a whole covariate :class:`xarray.Dataset` as a *lazy*
  :class:`xarray.DataArray`: a Dask ``map_blocks`` over the block predictor, on the
  covariates' grid, with the CRS, CF attributes and the zone legend of
  :mod:`permafrost.area.zones`.  Nothing is computed until asked (``.compute()``,
  ``.load()``, :func:`permafrost.write_cog`, ``.to_netcdf()``...).
* :func:`pzi_uncertainty` -- the same for the spread of the fold models.

Tree-ensemble predictions are row-independent, so every pixel's value depends only on its
own covariates: the values do not depend on the block size, the scheduler or the order of
the blocks, and equal those of one prediction on the whole in-memory array.

The device (NumPy on the CPU or CuPy on a CUDA GPU) is resolved once, by
:func:`permafrost.backends.resolve_device`, and the resolved value is passed down to every
block; :func:`prepare_model` puts the model's boosters on it once, before threads share
them.  The file-facing prediction (block cache, resume, COG outputs, provenance tags) is
:func:`permafrost.workflows.predict.predict_raster`.
"""

from __future__ import annotations

import logging
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from dask.base import tokenize

from permafrost.area import ZONE_LIMITS, ZONE_NAMES
from permafrost.backends import array_module, resolve_device, to_host
from permafrost.categorical import unseen_mask
from permafrost.checks import require_xarray
from permafrost.defaults import CHUNK
from permafrost.errors import CRSError, GridMismatchError, InputError, ModelError
from permafrost.grid import grids_equal
from permafrost.options import bound
from permafrost.rasterize import raster_mask_excluded

__all__ = [
    "MIN_CHUNK",
    "PZI_ATTRS",
    "UNCERTAINTY_ATTRS",
    "as_blocks",
    "check_chunk",
    "check_covariates",
    "check_model",
    "predict_block",
    "predict_pzi",
    "prepare_model",
    "pzi_uncertainty",
]

log = logging.getLogger(__name__)

#: smallest block side [pixels] (permafrost.options, "chunk")
_CHUNK_LO = bound("chunk").lo
assert _CHUNK_LO is not None  # options bounds the block side from below
MIN_CHUNK = int(_CHUNK_LO)

#: CF attributes of the PZI (:func:`predict_pzi`); the zone legend comes from the one zone
#: table, :mod:`permafrost.area.zones`
PZI_ATTRS: dict[str, Any] = {
    "long_name": "permafrost zonation index (PZI)",
    "units": "1",
    "valid_min": 0.0,
    "valid_max": 1.0,
    "comment": (
        "calibrated probability of permafrost given the covariates, as the training labels "
        "sample them (docs/method.md, 'What the PZI means'); the PZI-weighted area is the "
        "area estimate, the area with PZI >= 0.5 a map statistic; NaN where a covariate is "
        "missing or the mask excludes the pixel"),
    "zone_limits": list(ZONE_LIMITS),
    "zone_names": " ".join(ZONE_NAMES),
    "zone_rule": (
        "zone k of zone_names where zone_limits[k-1] <= PZI < zone_limits[k] (zone 0 below "
        "the first limit); lower bounds inclusive; Brown et al. (1997) classes as used by "
        "Obu et al. (2019)"),
}

#: CF attributes of the fold-model spread (:func:`pzi_uncertainty`)
UNCERTAINTY_ATTRS: dict[str, Any] = {
    "long_name": "spread of the PZI over the fold models",
    "units": "1",
    "valid_min": 0.0,
    "valid_max": 0.5,
    "comment": (
        "population standard deviation of the calibrated PZI of the model's fold models "
        "(each trained on k-1 spatial-CV folds): how much the PZI depends on which labels "
        "were used for training, not the error of the PZI; NaN where the PZI is NaN"),
}


# ----------------------------------------------------------------------------- one block


def predict_block(
    model: Any,
    block: Any,
    *,
    excluded: Any = None,
    device: str = "cpu",
    uncertainty: bool = False,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, int]]:
    """Predict the PZI of one block of covariates.

    Parameters
    ----------
    model : PZIModel
        A loaded model (:func:`permafrost.load_model`).
    block : array, shape (n_features, ny, nx)
        Covariates [their own units] in the model's feature order, float; NaN (or
        +-inf) where missing.  NumPy, or CuPy for ``device="cuda"``.
    excluded : array of bool, shape (ny, nx), optional
        True where the mask excludes the pixel (glaciers, lakes...).
    device : {"cpu", "cuda"}
        Where XGBoost predicts: a device already resolved by
        :func:`permafrost.backends.resolve_device` (put the model there first with
        :func:`prepare_model`); on ``cuda`` the block is moved to the GPU as a CuPy
        array and handed straight to ``inplace_predict``.
    uncertainty : bool
        Also return the spread of the fold models.

    Returns
    -------
    pzi : numpy.ndarray of float32, shape (ny, nx)
        Calibrated permafrost probability [-] in [0, 1]; NaN where a covariate is
        missing, a categorical covariate holds a class not seen in training, or the
        pixel is excluded.
    spread : numpy.ndarray of float32 or None
        Population standard deviation [-] of the calibrated PZI of the fold models.
    counts : dict
        ``pixels``, ``valid`` (predicted), ``missing`` (some covariate missing, a class
        not seen in training, or a class the model gives no PZI:
        :class:`permafrost.surface.SurfaceModel`), ``masked`` (all covariates present but
        excluded by the mask) and, for a model with categorical covariates,
        ``unseen_class`` (of the missing: a categorical covariate's class without training
        labels; ``model.categorical``).

    Notes
    -----
    Only valid pixels are passed to the model; tree-ensemble predictions are
    row-independent, so the values equal those of one prediction on the whole array.

    References
    ----------
    Chen, T., Guestrin, C. (2016). XGBoost: a scalable tree boosting system. KDD '16,
        785-794 (``inplace_predict``: each row's prediction is a sum over its own leaves).
    """
    pzi, spread, counts = _predict(model, block, excluded, device, pzi=True, spread=uncertainty)
    assert pzi is not None  # asked for (pzi=True)
    return pzi, spread, counts


def _predict(model: Any, block: Any, excluded: Any, device: str, *, pzi: bool, spread: bool
             ) -> tuple[np.ndarray | None, np.ndarray | None, dict[str, int]]:
    """:func:`predict_block`, computing only the layers asked for."""
    xp = array_module(device)
    b = xp.asarray(block)
    if b.dtype != np.float32:
        b = b.astype(np.float32)
    nf, ny, nx = b.shape
    missing = ~xp.isfinite(b).all(axis=0).ravel()  # NaN and +-inf: no value
    valid = ~missing
    n_masked = 0
    if excluded is not None:
        ex = xp.asarray(excluded).ravel().astype(bool)
        n_masked = int(xp.count_nonzero(ex & valid))
        valid &= ~ex
    n_unseen = 0
    cats = getattr(model, "categorical", None) or {}
    if cats:  # a class the model never saw in training: no PZI (permafrost.categorical)
        cols = {j: cats[f] for j, f in enumerate(model.feature_names) if f in cats}
        unseen = unseen_mask(b.reshape(nf, ny * nx).T, cols, xp=xp) & valid
        n_unseen = int(xp.count_nonzero(unseen))
        valid &= ~unseen
    n_valid = int(xp.count_nonzero(valid))
    n_nan = 0
    p_out = xp.full(ny * nx, np.nan, dtype=np.float32) if pzi else None
    s_out = xp.full(ny * nx, np.nan, dtype=np.float32) if spread else None
    if n_valid:
        X = xp.ascontiguousarray(b.reshape(nf, ny * nx)[:, valid].T)
        if pzi:
            assert p_out is not None
            p = (model.calibrate(model.predict_raw(X, device=device))
                 if hasattr(model, "predict_raw")  # else a composite (permafrost.surface)
                 else model.predict_pzi(X, device=device))
            p_out[valid] = xp.clip(xp.asarray(p, dtype=np.float32), 0.0, 1.0)
            # a class the model gives no PZI (the surface model: water, glacier): missing
            n_nan = int(xp.count_nonzero(xp.isnan(p_out[valid])))
            n_valid -= n_nan
        if spread:
            assert s_out is not None
            s_out[valid] = _fold_spread(model, X, xp=xp, device=device)
    counts = {"pixels": int(ny * nx), "valid": n_valid,
              "missing": int(xp.count_nonzero(missing)) + n_unseen + n_nan,
              "masked": n_masked}
    if cats:
        counts["unseen_class"] = n_unseen
    pzi_h = None if p_out is None else to_host(p_out).reshape(ny, nx)
    spread_h = None if s_out is None else to_host(s_out).reshape(ny, nx)
    return pzi_h, spread_h, counts


def _fold_spread(model: Any, X: Any, *, xp: Any, device: str) -> Any:
    """Population standard deviation of the calibrated predictions of the fold models."""
    if hasattr(model, "fold_pzi"):  # a composite: each part's own calibrator
        return xp.std(model.fold_pzi(X, device=device), axis=0).astype(np.float32)
    folds = list(getattr(model, "fold_models", None) or [])
    preds = []
    for fm in folds:
        if hasattr(fm, "predict"):  # the model's raw predictors (permafrost.pzi_model)
            raw = fm.predict(X, device=device)
        else:  # a bare xgboost.Booster
            raw = fm.inplace_predict(X)
        preds.append(xp.asarray(model.calibrate(raw), dtype=np.float64))
    stack = xp.stack(preds)
    return xp.std(stack, axis=0).astype(np.float32)


def prepare_model(model: Any, device: str, *, uncertainty: bool = False) -> Any:
    """Put the model's boosters on ``device`` once, before threads share them, and return it.

    Setting a booster's device is not thread-safe, and XGBoost finishes configuring a
    booster on its first prediction: both happen here, once, with a one-pixel prediction,
    so that the block predictions that follow (in threads or Dask tasks) leave the
    boosters alone.

    Parameters
    ----------
    model : PZIModel
        A loaded model.
    device : {"cpu", "cuda"}
        A resolved device (:func:`permafrost.backends.resolve_device`).
    uncertainty : bool
        Also prepare the fold models.
    """
    if hasattr(model, "use_device"):
        model.use_device(device)
    _predict(model, np.zeros((len(model.feature_names), 1, 1), np.float32), None, device,
             pzi=True, spread=uncertainty)
    return model


# ----------------------------------------------------------------------------- checks


def check_model(model: Any, *, path: Any = None) -> Any:
    """Return ``model`` when it is a PZI model, else raise :class:`ModelError`.

    A PZI model has ``feature_names``, ``predict_raw``, ``calibrate`` and
    ``check_features`` (:class:`permafrost.pzi_model.PZIModel`).
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        raise ModelError(f"expected a loaded PZI model, got the path {str(model)!r}",
                         path=path, field="model", fix="load it with permafrost.load_model(path)")
    needs = ("feature_names", "predict_pzi", "check_features") if hasattr(
        model, "predict_pzi") and not hasattr(model, "predict_raw") else (
        "feature_names", "predict_raw", "calibrate", "check_features")
    for attr in needs:
        if not hasattr(model, attr):
            raise ModelError(f"not a PZI model ({type(model).__name__} has no {attr!r})",
                             path=path, field="model",
                             fix="give a model directory or permafrost.load_model(...)")
    return model


def check_chunk(chunk: Any) -> int:
    """The block side [pixels] as an int within the bounds of :mod:`permafrost.options`
    (at least :data:`MIN_CHUNK`), else :class:`~permafrost.errors.OptionError` (an
    :class:`InputError`)."""
    return bound("chunk").check(chunk, field="chunk")


def check_covariates(model: Any, covariates: Any, *, source: Any = None) -> list[str]:
    """Check a covariate stack against a model and return the model's features, in order.

    Parameters
    ----------
    model : PZIModel
        A loaded model.
    covariates : xarray.Dataset
        One 2-D variable per covariate, named like the model's features, with a CRS.
    source : optional
        What the message names as the stack's origin (a path).

    Raises
    ------
    InputError
        Not a Dataset, or a needed variable that is not 2-D on the stack's y/x grid.
    ModelError
        The stack lacks features of the model (all of them named).
    CRSError
        The stack has no CRS.
    """
    require_xarray(covariates, "covariates", kind=xr.Dataset, path=source,
                   fix="read them with permafrost.build_stack(...)")
    features = list(model.feature_names)
    model.check_features(list(covariates.data_vars), source=source)
    extra = sorted(set(covariates.data_vars) - set(features))
    if extra:
        log.info("covariates not used by the model: %s", ", ".join(extra))
    if covariates.rio.crs is None:
        raise CRSError("the covariate stack has no CRS", path=source, field="covariates",
                       fix="write one to the rasters (or set it with .rio.write_crs(...))")
    y, x = _spatial_dims(covariates, source)
    for f in features:
        if set(covariates[f].dims) != {y, x}:
            raise InputError(f"covariate {f!r} has dimensions {covariates[f].dims}, expected "
                             f"({y!r}, {x!r})", path=source, field=f,
                             fix="give one 2-D variable per covariate (select a band)")
    return features


def _spatial_dims(ds: xr.Dataset | xr.DataArray, source: Any) -> tuple[str, str]:
    try:
        return ds.rio.y_dim, ds.rio.x_dim
    except Exception:  # noqa: BLE001 - rioxarray's MissingSpatialDimensionError
        raise InputError("the covariate stack has no y/x dimensions", path=source,
                         field="covariates",
                         fix="name the spatial dimensions y and x (or set them with "
                             ".rio.set_spatial_dims(...))") from None


def as_blocks(da: xr.DataArray, chunk: int) -> dsa.Array:
    """The data of a 2-D DataArray as a Dask array in square blocks of ``chunk`` pixels.

    In-memory data are wrapped, Dask data in other blocks rechunked; the blocks of a
    prediction are always ``chunk`` x ``chunk`` from the top-left corner.
    """
    arr = da.data
    if not isinstance(arr, dsa.Array):
        arr = dsa.from_array(np.asarray(arr), chunks=(chunk, chunk))
    elif arr.chunks != dsa.core.normalize_chunks((chunk, chunk), arr.shape):
        arr = arr.rechunk((chunk, chunk))
    return arr


def _excluded(mask: Any, ds: xr.Dataset, dims: tuple[str, str], chunk: int) -> dsa.Array:
    """The mask as a boolean Dask array on the covariates' blocks (True = excluded)."""
    require_xarray(mask, "mask", fix="give a boolean DataArray on the covariates' grid (True = "
                   "excluded), e.g. permafrost.read_mask(path, like=covariates[name]).excluded")
    y, x = dims
    if set(mask.dims) != {y, x}:
        raise InputError(f"the mask has dimensions {mask.dims}, expected ({y!r}, {x!r})",
                         field="mask", fix="give a 2-D mask on the covariates' grid")
    m = mask.transpose(y, x)
    # a mask without a CRS is taken on its coordinates (same shape, same transform)
    on_grid = m if m.rio.crs is not None else m.rio.write_crs(ds.rio.crs)
    if not grids_equal(on_grid, ds):
        raise GridMismatchError(
            f"the mask is not on the covariates' grid (shape {m.shape} vs "
            f"{(ds.sizes[y], ds.sizes[x])}, CRS {m.rio.crs} vs {ds.rio.crs})", field="mask",
            fix="resample the mask to the covariate grid (same CRS, transform and shape)")
    arr = as_blocks(m, chunk)
    if arr.dtype == bool:
        return arr
    if arr.dtype.kind not in "biuf":
        raise InputError(f"the mask has dtype {arr.dtype}, expected booleans or numbers",
                         field="mask", fix="give True (or non-zero) where pixels are excluded")
    return raster_mask_excluded(arr)


# ----------------------------------------------------------------------------- lazy maps


def predict_pzi(
    model: Any,
    covariates: xr.Dataset,
    *,
    device: str = "auto",
    mask: xr.DataArray | None = None,
    chunk: int = CHUNK,
) -> xr.DataArray:
    """The PZI of a covariate stack as a lazy DataArray (Dask, nothing computed yet).

    Each ``chunk`` x ``chunk`` block is one Dask task that calls :func:`predict_block` on
    that block's covariates only, so memory is bounded by the block size and the number
    of threads or workers; computing a part of the map computes only its blocks.  The
    values equal those of :func:`permafrost.workflows.predict.predict_raster` (its COG)
    bit for bit, for any block size.

    Parameters
    ----------
    model : PZIModel
        A loaded model (:func:`permafrost.load_model`).
    covariates : xarray.Dataset
        One 2-D variable per covariate [its own units], named like the model's features
        (extra variables are ignored), on one grid with a CRS; NaN (or +-inf) where
        missing.  NumPy- or Dask-backed (e.g. :func:`permafrost.build_stack`).
    device : {"auto", "cpu", "cuda"}
        Where XGBoost predicts; resolved once here
        (:func:`permafrost.backends.resolve_device`: ``cuda`` without a usable GPU is an
        error, never a silent CPU fallback).
    mask : xarray.DataArray, optional
        True (or non-zero, not NaN) where a pixel is excluded (glaciers, lakes), on the
        covariates' grid.
    chunk : int
        Block side [pixels] (at least 16).

    Returns
    -------
    xarray.DataArray
        ``pzi``, float32 [-] in [0, 1] on the covariates' y/x grid, Dask-backed in
        ``chunk`` x ``chunk`` blocks; NaN where a covariate is missing or the pixel is
        masked.  CRS and transform written (``.rio.crs``), nodata NaN (``_FillValue``,
        ``.rio.nodata``), CF attributes (:data:`PZI_ATTRS`: ``long_name``, ``units="1"``,
        ``valid_min``/``valid_max``, ``comment``) with the zone legend (``zone_limits``,
        ``zone_names``, ``zone_rule``: :mod:`permafrost.area.zones`), the model's
        ``features`` and the resolved ``device``.

    Raises
    ------
    ModelError
        ``model`` is not a loaded PZI model, or the stack lacks some of its features.
    InputError
        ``covariates`` is not a Dataset, a bad ``chunk``, ``device`` or ``mask``.
    CRSError, GridMismatchError
        The stack has no CRS; the mask is not on its grid.

    See Also
    --------
    pzi_uncertainty : the spread of the fold models, the same way.
    permafrost.workflows.predict.predict_raster : the same to COG files, resumable.

    Examples
    --------
    >>> stack = permafrost.build_stack("data_samples/covariates")        # doctest: +SKIP
    >>> pzi = permafrost.predict_pzi(permafrost.load_model("model"), stack)  # lazy
    >>> pzi.sel(x=slice(99.0, 99.1)).mean().item()                       # computes a part
    """
    return _lazy_layer(model, covariates, device=device, mask=mask, chunk=chunk, layer="pzi")


def pzi_uncertainty(
    model: Any,
    covariates: xr.Dataset,
    *,
    device: str = "auto",
    mask: xr.DataArray | None = None,
    chunk: int = CHUNK,
) -> xr.DataArray:
    """The spread of the fold models' PZI as a lazy DataArray (Dask, nothing computed yet).

    Same inputs, grid, blocks and checks as :func:`predict_pzi`; each block predicts with
    the fold models only.  The values equal those of ``predict_raster``'s uncertainty COG
    bit for bit.

    Returns
    -------
    xarray.DataArray
        ``pzi_uncertainty``, float32 [-]: population standard deviation of the calibrated
        PZI of the model's fold models (each trained on k-1 spatial-CV folds), NaN where
        the PZI is NaN; CRS, nodata and CF attributes (:data:`UNCERTAINTY_ATTRS`, plus
        ``fold_models``, the number of fold models).

    Raises
    ------
    ModelError
        As :func:`predict_pzi`, or the model has no fold models.
    """
    return _lazy_layer(model, covariates, device=device, mask=mask, chunk=chunk,
                       layer="spread")


def _lazy_layer(model: Any, covariates: Any, *, device: str, mask: Any, chunk: Any,
                layer: str) -> xr.DataArray:
    model = check_model(model)
    chunk = check_chunk(chunk)
    features = check_covariates(model, covariates)
    n_folds = len(list(getattr(model, "fold_models", None) or []))
    if layer == "spread" and not n_folds:
        raise ModelError("the model has no fold models, so it has no uncertainty",
                         path=getattr(model, "path", None), field="fold_models",
                         fix="train with the fold models kept")
    dev = resolve_device(device)  # once: every block gets the resolved value
    ds = covariates
    dims = _spatial_dims(ds, None)
    arrays = [as_blocks(ds[f].transpose(*dims), chunk) for f in features]
    if mask is not None:
        arrays.append(_excluded(mask, ds, dims, chunk))
    token = tokenize(*(a.name for a in arrays), id(model), dev, chunk, layer)
    # the model goes to the device in one task that every block depends on: it runs once,
    # before the blocks share the model
    ready = dask.delayed(prepare_model, pure=False)(
        model, dev, uncertainty=layer == "spread", dask_key_name=f"prepare-model-{token}")
    data = dsa.map_blocks(_layer_block, *arrays, model=ready, device=dev, layer=layer,
                          masked=mask is not None, dtype=np.float32,
                          meta=np.empty((0, 0), np.float32), name=f"predict-{layer}-{token}")
    y, x = dims
    coords = {d: ds[d] for d in dims if d in ds.coords}
    if layer == "pzi":
        name, attrs = "pzi", dict(PZI_ATTRS)
    else:
        name, attrs = "pzi_uncertainty", {**UNCERTAINTY_ATTRS, "fold_models": n_folds}
    attrs.update({"features": ",".join(features), "device": dev})
    out = xr.DataArray(data, dims=(y, x), coords=coords, name=name, attrs=attrs)
    out = out.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())
    return out.rio.write_nodata(np.nan, encoded=False)


def _layer_block(*blocks: np.ndarray, model: Any, device: str, layer: str, masked: bool
                 ) -> np.ndarray:
    """One Dask task of :func:`predict_pzi`/:func:`pzi_uncertainty`: one block's layer."""
    covs = blocks[:-1] if masked else blocks
    excluded = np.asarray(blocks[-1], dtype=bool) if masked else None
    block = np.stack([np.asarray(c, dtype=np.float32) for c in covs])
    pzi, spread, _ = _predict(model, block, excluded, device, pzi=layer == "pzi",
                              spread=layer == "spread")
    out = pzi if layer == "pzi" else spread
    assert out is not None  # the layer asked for
    return out

