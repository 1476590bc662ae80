"""PZI prediction from files to Cloud-Optimized GeoTIFFs, resumable after a kill.

:func:`predict_raster` opens the model, the covariates and the mask, cuts the region into
square blocks (``chunk`` pixels a side), predicts every block with
:func:`permafrost.predict.predict_block` (the science) and saves it to a block cache
(:mod:`permafrost.io.block_cache`); the PZI, the optional zone raster and the optional
uncertainty raster are then streamed from the cache into COGs by
:func:`permafrost.io.rasters.write_cog` (tiled GeoTIFF with a lock, then GDAL's COG copy,
atomically).  Peak memory depends on the block size and the number of threads or workers,
not on the size of the region.  :func:`permafrost.predict.predict_pzi` gives the same
values as a lazy DataArray, without files.

Why a block cache: a run killed at any point leaves the target untouched (outputs are
written through a temporary file and a rename) and the finished blocks on disk; the
rerun reuses them (the cache is keyed by the model's hash, the covariate files, the mask,
the grid, the block size and the device) and produces the same bytes, because every
pixel's value depends only on its own covariates and the output bytes only on the
values and tags.  The cache is removed once the outputs are written.  Each output is
locked while the run lasts (:func:`permafrost.io.locks.output_locks`).

Where the work runs (NumPy / CuPy, threads / local cluster / remote cluster) is chosen
in :mod:`permafrost.backends`; this module only calls it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dask
import dask.array as dsa
import numpy as np
import rasterio
import xarray as xr
from affine import Affine
from rasterio.errors import RasterioIOError

from permafrost.area import ZONE_CODES, ZONE_LIMITS, classify_zones
from permafrost.backends import check_scheduler_address, open_executor, resolve_device
from permafrost.checks import expects
from permafrost.defaults import CHUNK
from permafrost.errors import DataError, InputError, InputFileError, ModelError
from permafrost.io.locks import output_locks
from permafrost.io.block_cache import (
    block_file,
    cache_dir,
    cache_key,
    cached_extra,
    cached_layer,
    default_cache_root,
    is_cache_root,
    prepare_cache,
    read_counts,
    read_extra,
    remove_cache,
    remove_stale_temporaries,
    save_block,
    source_fingerprints,
)
from permafrost.io.guard import RELATIVE_TO_FILE, Output, check_outputs, provenance_base
from permafrost.io.maps import read_mask
from permafrost.io.model import load_model
from permafrost.io.rasters import set_gdal_cache
from permafrost.io.styles import qml_path, write_layer_cog
from permafrost.options import check_options
from permafrost.predict import (
    as_blocks,
    check_chunk,
    check_covariates,
    check_model,
    predict_block,
    prepare_model,
)
from permafrost.provenance import file_digest, model_fingerprint, relative_path, versions
from permafrost.rasterize import Shapes, burn
from permafrost.styles import ZONE_COLOUR_TABLE, ZONE_NODATA
from permafrost.workflows.covariates import build_stack, covariate_files

__all__ = [
    "TAG_VERSION_PACKAGES",
    "ZONE_COLOUR_TABLE",
    "ZONE_NODATA",
    "CachedBlocks",
    "PredictResult",
    "ProgressCallback",
    "predict_raster",
]

log = logging.getLogger(__name__)


#: the library versions the PZI_VERSIONS tag names (:func:`permafrost.provenance.versions`)
TAG_VERSION_PACKAGES = ("permafrost", "xgboost", "numpy", "dask", "rasterio", "gdal")


def write_zones(pzi_da, path, tags: dict) -> None:
    """The zone COG of a PZI map (Brown et al. 1997 limits, :mod:`permafrost.area.zones`):
    uint8 codes with GDAL category names and colours, ``tags`` plus the legend."""
    zda = pzi_da.copy(data=pzi_da.data.map_blocks(classify_zones, dtype=np.uint8))
    legend = ", ".join(f"{c}={n}" for n, c in sorted(ZONE_CODES.items(), key=lambda kv: kv[1]))
    write_layer_cog(zda, path, "zones", nodata=ZONE_NODATA, dtype="uint8",
                    overview_resampling="nearest", colormap=ZONE_COLOUR_TABLE,
                    category_names=_zone_category_names(),
                    tags={**tags, "PZI_CONTENT": f"permafrost zones (Brown et al. 1997): "
                          f"{legend}, {ZONE_NODATA}=nodata; limits "
                          f"{'/'.join(f'{lo:g}' for lo in ZONE_LIMITS)}, lower bound "
                          "inclusive"})


def _zone_category_names() -> list[str]:
    """GDAL category names of the zone codes 0, 1, 2... (nodata 255 needs none)."""
    names = [""] * (max(ZONE_CODES.values()) + 1)
    for name, code in ZONE_CODES.items():
        names[code] = name
    return names


@dataclass
class PredictResult:
    """What :func:`predict_raster` wrote and counted.

    Pixel counts partition the grid: ``valid + missing + masked == pixels``.
    """

    pzi: Path
    zones: Path | None
    uncertainty: Path | None
    device: str
    backend: str
    shape: tuple[int, int]
    pixels: int
    valid: int
    missing: int
    masked: int
    blocks: int
    blocks_reused: int
    seconds: float
    predict_seconds: float
    write_seconds: float
    features: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)
    #: of the missing pixels: those whose categorical covariate holds a class the model
    #: never saw in training (no PZI there; permafrost.categorical)
    unseen_class: int = 0
    #: how the raw probabilities were computed (PZIModel.inference_path, tag PZI_INFERENCE)
    inference: str = ""

    @property
    def pixels_per_second(self) -> float:
        """End-to-end speed [pixels s-1] (all pixels of the grid over the whole run)."""
        return self.pixels / self.seconds if self.seconds > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready dict (``permafrost predict --json``): paths as strings, plus
        ``pixels_per_second``."""
        d = {k: (str(v) if isinstance(v, Path) else v) for k, v in self.__dict__.items()}
        d["pixels_per_second"] = self.pixels_per_second
        return d


ProgressCallback = Callable[[str, int, int], None]


@dataclass
class CachedBlocks:
    """The finished blocks of one prediction, as lazy arrays on its grid (what a ``check``
    of :func:`predict_raster` reduces before the cache is removed)."""

    cache: Path
    chunks: tuple
    name: str
    coords: dict
    crs: Any
    transform: Affine
    #: the PZI (cached layer 0)
    pzi: xr.DataArray

    def _da(self, arr) -> xr.DataArray:
        return xr.DataArray(arr, dims=("y", "x"), coords=self.coords).rio.write_crs(self.crs)\
            .rio.write_transform(self.transform)

    def extra(self, extra: str, dtype) -> xr.DataArray:
        """The named extra saved with every block (:func:`permafrost.io.block_cache.
        cached_extra`) as a lazy DataArray on the grid."""
        return self._da(cached_extra(self.cache, extra, self.chunks, dtype,
                                     name=f"pzi-extra-{self.name}-{extra}"))

    def blocks(self, extra: str):
        """``((iy, ix), array)`` of the named extra of every block, in block order."""
        for iy in range(len(self.chunks[0])):
            for ix in range(len(self.chunks[1])):
                yield (iy, ix), read_extra(block_file(self.cache, iy, ix), extra)


@expects(model="model", covariates="covariates", out="path", zones="path?", uncertainty="path?", mask="path?")
def predict_raster(
    model: Any,
    covariates: Any,
    out: str | os.PathLike,
    *,
    zones: str | os.PathLike | None = None,
    uncertainty: str | os.PathLike | None = None,
    mask: str | os.PathLike | None = None,
    chunk: int = CHUNK,
    device: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    resume: bool = True,
    progress: ProgressCallback | None = None,
    check: Any = None,
) -> PredictResult:
    """Predict the PZI of a whole region block by block and write it as a COG.

    Parameters
    ----------
    model : path-like or PZIModel
        A model directory (loaded with :func:`permafrost.load_model`) or a loaded model.
    covariates : path-like, sequence of paths, xarray.Dataset or callable
        A directory of covariate rasters on one grid (one per file, named by its stem),
        a list of files, a ``.toml`` stack file, a Dataset (with a CRS), or a callable
        ``f(chunks=...)`` returning such a Dataset (e.g. a stack file's builder).
    out : path-like
        Destination of the PZI COG (float32 [-] in [0, 1], nodata NaN).
    zones : path-like, optional
        Also write the zone raster (uint8 codes of :data:`permafrost.area.ZONE_CODES`,
        from :func:`permafrost.area.classify_zones`; nodata 255).
    uncertainty : path-like, optional
        Also write the spread (population standard deviation [-]) of the calibrated
        PZI of the model's fold models; needs a model with fold models.
    mask : path-like, optional
        Areas to exclude (nodata in every output), read by
        :func:`permafrost.io.maps.read_mask`: polygons (glaciers, lakes; any vector
        format, any CRS; pixel centres inside a polygon are excluded) or a raster (any
        grid, put on the covariates' grid by nearest neighbour; non-zero, non-nodata
        pixels are excluded).
    chunk : int
        Block side [pixels]; peak memory grows with ``chunk**2`` times the number of
        covariates and of threads or workers.
    device : {"auto", "cpu", "cuda"}
        Where XGBoost predicts.
    workers : int, optional
        Run on a local Dask cluster of this many worker processes.
    scheduler : str, optional
        Run on an existing Dask cluster (scheduler address); its workers must share the
        file system.
    threads : int, optional
        Threads of the default threaded scheduler (default: all usable CPUs).
    cache_dir : path-like, optional
        Block cache directory (default ``.<out name>.pfblocks`` beside ``out``); it is
        removed after a successful run and kept after a failure so that a rerun reuses
        the finished blocks.  Needs 4 bytes per pixel (8 with ``uncertainty``).
    resume : bool
        Reuse finished blocks of an interrupted run with the same inputs.
    progress : callable, optional
        ``progress(stage, done, total)``: stage ``"predict"`` counts pixels, stage
        ``"write"`` counts output files.
    check : optional
        A check computed in the same block tasks from the covariate blocks they hold
        (:class:`permafrost.workflows.applicability.OnePassCheck`, the applicability
        check): ``check.bind(ds, features, chunk)`` gives the per-block part (a callable
        ``(covariate blocks, pzi, window) -> {name: array}``, saved with the block in the
        cache), ``check.key()`` joins the cache key, ``check.outputs`` are locked,
        ``check.writes`` (known after ``bind``) are counted as written files, and
        ``check.finish(blocks, wrote)`` reduces the cached blocks (:class:`CachedBlocks`)
        before the cache is removed.

    Returns
    -------
    PredictResult

    Raises
    ------
    ModelError
        The covariates lack features of the model, or an uncertainty raster is asked
        for a model without fold models.
    InputError, DataError, GridMismatchError, CRSError
        Bad options or inputs (named in the message).
    OutputError
        Another process writes one of the outputs, or they cannot be written.
    """
    # the options' bounds and the scheduler address's form, before anything is read
    checked = check_options(chunk=chunk, workers=workers, threads=threads)
    chunk, workers, threads = checked["chunk"], checked["workers"], checked["threads"]
    if scheduler is not None:
        check_scheduler_address(scheduler)
    _check_outputs(model, covariates, out, zones, uncertainty, mask, cache_dir)
    targets: list[str | os.PathLike] = [p for p in (out, zones, uncertainty) if p is not None]
    targets += [Path(p) for p in (getattr(check, "outputs", None) or [])]
    # two predictions to one target would share its block cache and temporary files
    with output_locks(targets):
        return _predict_raster(model, covariates, out, zones=zones, uncertainty=uncertainty,
                               mask=mask, chunk=chunk, device=device, workers=workers,
                               scheduler=scheduler, threads=threads, cache_root=cache_dir,
                               resume=resume, progress=progress, check=check)


def _check_outputs(model, covariates, out, zones, uncertainty, mask, cache_dir) -> None:
    """The outputs (and the block cache) checked by the output guard, before the locks."""
    outputs = [Path(p) for p in (out, zones, uncertainty) if p is not None]
    if len({p.resolve() for p in outputs}) != len(outputs):
        raise InputError("the PZI, zone and uncertainty outputs must be different files",
                         path=out, fix="give each output its own path")
    root = default_cache_root(out) if cache_dir is None else Path(cache_dir)
    check_outputs([Output(out, "--out", what="PZI"), Output(zones, "--zones", what="zones"),
                   Output(uncertainty, "--uncertainty", what="uncertainty"),
                   Output(root, "the block cache", "owned", recognise=is_cache_root,
                          what="block cache")],
                  {"--model": model, "--covariates": covariate_files(covariates), "--mask": mask})


def _predict_raster(model, covariates, out, *, zones, uncertainty, mask, chunk, device,
                    workers, scheduler, threads, cache_root, resume, progress, check=None
                    ) -> PredictResult:
    t0 = time.perf_counter()
    set_gdal_cache()  # GDAL_CACHEMAX: 256 MB unless the environment sets it (DESIGN §6)
    chunk = check_chunk(chunk)
    out = Path(out)
    outputs = [Path(p) for p in (out, zones, uncertainty) if p is not None]
    pzi_model, model_path = _load(model)
    if uncertainty is not None and not list(getattr(pzi_model, "fold_models", None) or []):
        raise ModelError("the model has no fold models, so no uncertainty raster can be made",
                         path=model_path, field="fold_models",
                         fix="train with the fold models kept, or leave the uncertainty raster "
                             "out")
    dev = resolve_device(device)  # once: every block gets the resolved value

    ds, cov_source = _open_covariates(covariates, chunk=chunk)
    features = check_covariates(pzi_model, ds, source=cov_source)
    ny, nx = int(ds.rio.height), int(ds.rio.width)
    transform = ds.rio.transform()
    # the boosters go to the device once, here, before threads share them
    prepare_model(pzi_model, dev, uncertainty=uncertainty is not None)
    arrays = [as_blocks(ds[f], chunk) for f in features]
    chunks_yx = arrays[0].chunks
    excluded, mask_info = _open_mask(mask, ds[features[0]], chunk=chunk)
    block_check = check.bind(ds, features, chunk) if check is not None else None

    model_sha = model_fingerprint(pzi_model, model_path)  # once: it reads the whole model
    key = cache_key({
        "model": model_sha,
        "features": list(features),
        "covariates": source_fingerprints(ds, features),
        "mask": mask_info,
        "grid": [list(transform)[:6], [ny, nx], str(ds.rio.crs)],
        "chunk": chunk,
        "device": dev,
        "uncertainty": uncertainty is not None,
        # a check's blocks hold its layers too (the key of a plain prediction is unchanged)
        **({"check": check.key()} if check is not None else {}),
    })
    default_cache = cache_root is None
    root = default_cache_root(out) if default_cache else Path(cache_root)
    cache = cache_dir(root, key)
    prepare_cache(root, cache, resume=resume, prune_others=default_cache)
    # and those of GDAL's sidecars (the zone raster's category names, written after it)
    # and of the QGIS styles beside the rasters (permafrost.io.styles)
    check_outputs_ = [Path(p) for p in (getattr(check, "outputs", None) or [])]
    remove_stale_temporaries(outputs + check_outputs_
                             + [Path(f"{p}.aux.xml") for p in outputs]
                             + [qml_path(p) for p in outputs + check_outputs_])

    # --- phase 1: predict every block not yet in the cache
    offs_y = np.concatenate([[0], np.cumsum(chunks_yx[0])]).astype(int)
    offs_x = np.concatenate([[0], np.cumsum(chunks_yx[1])]).astype(int)
    cov_delayed = [a.to_delayed(optimize_graph=False) for a in arrays]
    mask_delayed = (excluded.to_delayed(optimize_graph=False)
                    if isinstance(excluded, dsa.Array) else None)
    model_d = dask.delayed(pzi_model, name=f"pzi-model-{key[:16]}", traverse=False)
    geoms_d = (dask.delayed(excluded, name=f"pzi-maskgeoms-{key[:16]}", traverse=False)
               if isinstance(excluded, Shapes) else None)
    check_d = (dask.delayed(block_check, name=f"pzi-check-{key[:16]}", traverse=False)
               if block_check is not None else None)
    counts_total = {"pixels": 0, "valid": 0, "missing": 0, "masked": 0, "unseen_class": 0}
    tasks, task_pixels = [], []
    n_blocks = reused = 0
    done_pixels = 0
    for iy in range(len(chunks_yx[0])):
        for ix in range(len(chunks_yx[1])):
            n_blocks += 1
            bfile = block_file(cache, iy, ix)
            cached = read_counts(bfile)
            if cached is not None:
                reused += 1
                _add(counts_total, cached)
                done_pixels += cached["pixels"]
                continue
            window = (int(offs_y[iy]), int(offs_x[ix]), int(chunks_yx[0][iy]),
                      int(chunks_yx[1][ix]))
            if mask_delayed is not None:
                mblock = mask_delayed[iy, ix]
            elif geoms_d is not None:
                mblock = geoms_d
            else:
                mblock = None
            task = dask.delayed(_block_task, pure=False)(
                model_d, [c[iy, ix] for c in cov_delayed], mblock, window, tuple(transform),
                dev, uncertainty is not None, str(bfile), check_d,
                dask_key_name=f"pzi-block-{key[:16]}-{iy}-{ix}")
            tasks.append(task)
            task_pixels.append(window[2] * window[3])
    total_pixels = ny * nx
    if reused:
        log.info("reusing %d of %d finished blocks from %s", reused, n_blocks, cache)
    if progress is not None:
        progress("predict", done_pixels, total_pixels)

    def _on_done(i: int, counts: dict[str, int]) -> None:
        nonlocal done_pixels
        done_pixels += task_pixels[i]
        if progress is not None:
            progress("predict", done_pixels, total_pixels)

    with open_executor(workers=workers, scheduler=scheduler, threads=threads) as ex:
        backend = ex.backend
        try:
            results = ex.run(tasks, _on_done)
        except RasterioIOError as exc:
            raise _unreadable_covariate(ds, features, cov_source, exc) from None
    for c in results:
        _add(counts_total, c)
    t1 = time.perf_counter()
    if counts_total["valid"] == 0:
        raise DataError(f"no pixel could be predicted ({counts_total['missing']} missing a "
                        f"covariate, {counts_total['masked']} masked)", path=cov_source,
                        field="covariates", fix="check each covariate's coverage and nodata "
                        "value, and the mask")

    # --- phase 2: stream the cache into COGs (threads of this process)
    inference = str(getattr(pzi_model, "inference_path", "unknown"))
    tag_root, relative_to = provenance_base(out)
    tags = _provenance(model_sha, model_path, ds, features, cov_source, mask_info, dev,
                       root=tag_root, inference=inference, relative_to=relative_to)
    coords = {"y": ds["y"].values, "x": ds["x"].values}
    n_out = len(outputs) + (len(check.writes) if check is not None else 0)
    written = 0

    def _layer(i: int) -> xr.DataArray:
        arr = cached_layer(cache, i, chunks_yx, name=f"pzi-cache-{key[:16]}-{i}")
        # write in blocks of >= 1024 pixels: each written chunk costs a file open/lock
        k = max(1, 1024 // chunk)
        if k > 1:
            arr = arr.rechunk((k * chunk, k * chunk))
        return xr.DataArray(arr, dims=("y", "x"), coords=coords).rio.write_crs(ds.rio.crs)\
            .rio.write_transform(transform)

    def _wrote() -> None:
        nonlocal written
        written += 1
        if progress is not None:
            progress("write", written, n_out)

    if progress is not None:
        progress("write", 0, n_out)
    with dask.config.set(scheduler="threads", num_workers=threads or None):
        pzi_da = _layer(0)
        write_layer_cog(pzi_da, out, "pzi", nodata=np.nan, dtype="float32",
                        tags={**tags, "PZI_CONTENT": "calibrated permafrost probability, "
                              "float32 [0, 1]"})
        _wrote()
        if zones is not None:
            write_zones(pzi_da, zones, tags)
            _wrote()
        if uncertainty is not None:
            # drawn up to 0.5: the largest population standard deviation values in [0, 1]
            # can have (the report scales its figure to the map's own maximum)
            write_layer_cog(_layer(1), uncertainty, "uncertainty", vmax=0.5, nodata=np.nan,
                            dtype="float32",
                            tags={**tags, "PZI_CONTENT": "population standard deviation of the "
                                  "calibrated PZI of the fold models [-]",
                                  "PZI_FOLD_MODELS": str(len(pzi_model.fold_models))})
            _wrote()
        if check is not None:
            check.finish(CachedBlocks(cache=cache, chunks=chunks_yx, name=key[:16],
                                      coords=coords, crs=ds.rio.crs, transform=transform,
                                      pzi=pzi_da), _wrote)
    remove_cache(root, cache, remove_root=default_cache)
    t2 = time.perf_counter()
    if counts_total["unseen_class"]:
        log.warning("%d pixels hold a class of a categorical covariate (%s) that no training "
                    "label is on: they get no PZI", counts_total["unseen_class"],
                    ", ".join(sorted(getattr(pzi_model, "categorical", {}))))
    return PredictResult(
        pzi=out, zones=Path(zones) if zones is not None else None,
        uncertainty=Path(uncertainty) if uncertainty is not None else None,
        device=dev, backend=backend, shape=(ny, nx), pixels=total_pixels,
        valid=counts_total["valid"], missing=counts_total["missing"],
        masked=counts_total["masked"], unseen_class=counts_total["unseen_class"],
        blocks=n_blocks, blocks_reused=reused,
        seconds=t2 - t0, predict_seconds=t1 - t0, write_seconds=t2 - t1,
        features=features, tags=tags, inference=inference,
    )


# ----------------------------------------------------------------------------- helpers


def _block_task(model, cov_blocks, mask_block, window, transform, device, uncertainty,
                cache_file, check=None):
    """One Dask task: predict a block and save it to the cache (with what ``check``
    computes from the same covariate block); returns its counts."""
    cov_blocks = [np.asarray(c) for c in cov_blocks]
    block = np.stack([np.asarray(c, dtype=np.float32) for c in cov_blocks])
    excluded: np.ndarray | None
    if isinstance(mask_block, Shapes):
        excluded = burn(mask_block, Affine(*transform[:6]), window, dtype="uint8").astype(bool)
    else:
        excluded = None if mask_block is None else np.asarray(mask_block, dtype=bool)
    pzi, spread, counts = predict_block(model, block, excluded=excluded, device=device,
                                        uncertainty=uncertainty)
    layers = pzi[None] if spread is None else np.stack([pzi, spread])
    extras = check(cov_blocks, pzi, window) if check is not None else None
    save_block(cache_file, layers, counts, extras)
    return counts


def _unreadable_covariate(ds: xr.Dataset, features: Sequence[str], cov_source: Any,
                          exc: Exception) -> InputFileError:
    """The error for a covariate raster whose blocks fail to read: find and name the file."""
    for f in features:
        src = ds[f].attrs.get("source")
        if not src:
            continue
        try:
            with rasterio.open(src) as r:
                for _, window in r.block_windows(1):
                    r.read(1, window=window)
        except RasterioIOError:
            return InputFileError("cannot read the raster's data (truncated or corrupt?)",
                                  path=src, field=f, fix="write or download the file again")
    first = (str(exc).splitlines() or [type(exc).__name__])[0]
    return InputFileError(f"a covariate raster cannot be read ({first})", path=cov_source,
                          fix="check the covariate files (truncated or corrupt?)")


def _add(total: dict[str, int], part: Mapping[str, int]) -> None:
    for k in total:
        total[k] += int(part.get(k, 0))


def _load(model: Any) -> tuple[Any, Path | None]:
    if isinstance(model, (str, os.PathLike)):
        return load_model(model), Path(model)
    return check_model(model), getattr(model, "path", None)


def _open_covariates(covariates: Any, *, chunk: int) -> tuple[xr.Dataset, str]:
    """The stack by the one opener (:func:`permafrost.workflows.covariates.build_stack`: rasters
    read from files must share one grid) and how the tags name its source."""
    if isinstance(covariates, xr.Dataset):
        source = "<in-memory covariate stack>"
    elif callable(covariates):
        source = getattr(covariates, "__name__", "<covariate builder>")
    elif isinstance(covariates, (str, os.PathLike)):
        source = str(covariates)
    else:
        covariates = [Path(f) for f in covariates]
        source = ",".join(str(f) for f in covariates)
    return build_stack(covariates, chunks={"y": chunk, "x": chunk}), source


def _open_mask(mask: Any, like: xr.DataArray, *, chunk: int
               ) -> tuple[Any, dict[str, Any] | None]:
    """The mask (:func:`permafrost.io.maps.read_mask`: a raster put on the covariates' grid
    by nearest neighbour, or polygons) as a boolean Dask array in the prediction's blocks,
    or as :class:`permafrost.rasterize.Shapes` burned block by block; and its provenance."""
    if mask is None:
        return None, None
    m = read_mask(mask, like, chunks={"y": chunk, "x": chunk})
    p = Path(mask)
    info = {**m.info, "fingerprint": file_digest(p) if p.exists() else None}
    if m.polygons is not None:
        return Shapes(m.polygons.geometry.to_numpy()), info
    assert m.excluded is not None  # exactly one of excluded and polygons is set
    return as_blocks(m.excluded, chunk), info


def _covariate_sources(ds: xr.Dataset, features: Sequence[str],
                       root: Path | None = None) -> dict[str, str]:
    return {f: relative_path(ds[f].attrs.get("source", ""), root) for f in features}


def _versions() -> str:
    return "; ".join(f"{'GDAL' if k == 'gdal' else k} {v}"
                     for k, v in versions(TAG_VERSION_PACKAGES).items())


def _provenance(model_sha: str, model_path, ds, features, cov_source, mask_info, device,
                root: Path | None = None, inference: str | None = None,
                relative_to: str = RELATIVE_TO_FILE) -> dict[str, str]:
    """Dataset tags: deterministic (no time stamp, no backend), so reruns give equal bytes.

    Paths are relative to ``root`` (:func:`permafrost.io.guard.provenance_base`: the run
    folder inside a pipeline run, else the output's directory; tag ``PZI_PATHS_RELATIVE_TO``
    says which) and the model carries its content hash: no tag names the machine or the
    checkout.
    """
    mask_tag = {k: (relative_path(v, root) if k == "path" else v)
                for k, v in (mask_info or {}).items() if k != "fingerprint"}
    return {
        "PZI_MODEL": relative_path(model_path, root) if model_path else "<in-memory model>",
        "PZI_MODEL_SHA256": model_sha,
        "PZI_FEATURES": ",".join(features),
        "PZI_COVARIATES": json.dumps(_covariate_sources(ds, features, root), sort_keys=True),
        "PZI_COVARIATE_SOURCE": relative_path(cov_source, root),
        "PZI_MASK": json.dumps(mask_tag, sort_keys=True) if mask_info else "none",
        "PZI_PATHS_RELATIVE_TO": relative_to if root is not None else "as given",
        "PZI_DEVICE": device,
        # how the trees were evaluated (permafrost.compiled_trees): equal values either way
        **({"PZI_INFERENCE": inference} if inference else {}),
        "PZI_VERSIONS": _versions(),
    }
