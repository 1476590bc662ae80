"""The domain of applicability of one PZI map, from files: the model directory's training
ranges and covariate dependence, the covariates and the PZI raster in; the statistics, the
warnings and (optionally) the bit mask of cells beyond the training range out (the ``predict``
command and pipeline step).  The rules are :mod:`permafrost.applicability` and
:func:`permafrost.proxies.proxy_warnings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from permafrost.applicability import (
    SUPPORT_MIN_LABELS,
    BlockCheck,
    extrapolation_bounds,
    extrapolation_legend,
    extrapolation_map,
    extrapolation_statistics,
    extrapolation_warnings,
    label_support,
    mask_dtype,
    parse_class_table,
    support_map,
    support_warnings,
)
from permafrost.checks import expects
from permafrost.covariates import CHANGED_ATTR
from permafrost.defaults import CHUNK
from permafrost.errors import InputFileError, ModelError
from permafrost.grid import cells_at_points, grid_of, sample_at_points
from permafrost.io.guard import Output, check_outputs
from permafrost.io.maps import read_aligned
from permafrost.io.rasters import read_raster
from permafrost.io.results import read_json, write_json
from permafrost.io.styles import write_layer_cog
from permafrost.io.vectors import read_vector
from permafrost.proxies import proxy_warnings
from permafrost.styles import support_classes
from permafrost.workflows.covariates import build_stack, covariate_files
from permafrost.workflows.predict import predict_raster

__all__ = ["Applicability", "OnePassCheck", "applicability_from_files",
           "predict_with_applicability", "write_applicability"]


@dataclass
class Applicability:
    """What one PZI map can be trusted for (:func:`applicability_from_files`).

    Attributes
    ----------
    features : list of str
        The model's features, in order (the bit order of the extrapolation mask).
    model : str or None
        The model's kind (``xgboost``, ``rf``, ``logistic``).
    changed_covariates : dict
        ``{covariate: what changed it}`` for the covariates a scenario changed.
    warnings : list of dict
        :func:`permafrost.proxies.proxy_warnings` and
        :func:`permafrost.applicability.extrapolation_warnings`, each with a ``message``.
    extrapolation : dict or None
        :func:`permafrost.applicability.extrapolation_statistics` (areas [km²], shares [-])
        plus the training ``ranges``; None for a model trained before ranges were recorded.
    support : dict or None
        :func:`permafrost.applicability.label_support` (label counts per surface class and
        covariate decile, unsupported shares) plus ``landcover`` (the map used, or None)
        and ``labels``; None where the training labels cannot be found.
    """

    features: list
    model: str | None
    changed_covariates: dict
    warnings: list
    extrapolation: dict | None = None
    support: dict | None = None

    def as_dict(self) -> dict:
        """The JSON-ready dict (the body of ``applicability.json``)."""
        return {"features": self.features, "model": self.model,
                "changed_covariates": self.changed_covariates, "warnings": self.warnings,
                "extrapolation": self.extrapolation, "support": self.support}


@expects(model_dir="path", covariates="covariates", pzi_path="path")
def applicability_from_files(model_dir, covariates, pzi_path, *, out_map=None,
                             changes: Mapping | None = None,
                             chunk: int = CHUNK, landcover=None, labels=None,
                             out_support=None) -> Applicability:
    """The domain of applicability of one PZI map: proxies held fixed and cells beyond
    the training range.

    Parameters
    ----------
    model_dir : path-like
        The model directory (its ``metadata.json`` holds the training ranges and the
        covariate dependence).
    covariates : path-like or xarray.Dataset
        The covariates the PZI was predicted from (a stack built with the scenario's
        ``changes``, or a path built here with them).
    pzi_path : path-like
        The PZI raster (cells without a PZI are left out).
    out_map : path-like, optional
        Write the bit mask (:func:`permafrost.applicability.extrapolation_map`) here as a
        COG.
    changes : mapping, optional
        The scenario's covariate changes by input name (empty: today's covariates).
    chunk : int
        Side of the square Dask chunks the covariates and the PZI are read in [pixels].
    landcover : path-like, optional
        A categorical land-cover (surface) raster, any grid (nearest neighbour), its
        ``classes`` tag naming the codes (``1=bedrock;2=coarse debris;...``): label counts
        and map shares per surface class.  It need not be a model covariate.  Default:
        the land-cover covariate of a surface-aware model (:mod:`permafrost.surface`).
    labels : path-like, optional
        The training labels (default: the model's ``inputs.labels``, relative to the model
        directory); without them there is no label support.
    out_support : path-like, optional
        Write the label support map (:func:`permafrost.applicability.support_map`) here as
        a COG.

    Returns
    -------
    Applicability
        Features, model kind, changed covariates, warnings and the extrapolation
        statistics (None for a model trained before ranges were recorded).

    References
    ----------
    Meyer, H., Pebesma, E. (2021), see :mod:`permafrost.applicability`.
    """
    check_outputs([Output(out_map, "--extrapolation", what="extrapolation map"),
                   Output(out_support, "--support", what="label support map")],
                  {"--model": model_dir, "--covariates": covariate_files(covariates),
                   "--out": pzi_path, "--landcover": landcover,
                   "the model's training labels": labels})
    changes = dict(changes or {})
    meta = read_json(Path(model_dir) / "metadata.json")
    ds = covariates if isinstance(covariates, xr.Dataset) else build_stack(
        covariates, chunks=chunk, changes=changes)
    out = _start(meta, ds, changes)
    features = out.features
    pzi = read_raster(pzi_path, chunks=chunk, name="pzi")
    out.support = _support(model_dir, meta, ds, features, pzi, changes=changes, chunk=chunk,
                           landcover=landcover, labels=labels, out_support=out_support)
    out.warnings += support_warnings(out.support)
    ranges = (meta.get("training") or {}).get("ranges")
    if not ranges:
        return out
    categories = (meta.get("training") or {}).get("categories") or {}
    mask = extrapolation_map(ds, ranges, features, pzi=pzi, categories=categories)
    _extrapolation(out, meta, mask, out_map)
    return out


def _start(meta: Mapping, ds: xr.Dataset, changes: Mapping) -> Applicability:
    """The model's features and kind, the changed covariates and the proxy warnings."""
    features = list(meta.get("feature_names") or [])
    changed = {str(v): ds[v].attrs[CHANGED_ATTR] for v in ds.data_vars
               if CHANGED_ATTR in ds[v].attrs}
    warnings = proxy_warnings(meta.get("dependence"), features, changed,
                              changes=sorted(changes))
    return Applicability(features=features, model=meta.get("model_kind"),
                         changed_covariates=changed, warnings=warnings)


def _extrapolation(out: Applicability, meta: Mapping, mask: xr.DataArray, out_map, *,
                   areas=None) -> None:
    """The extrapolation map (written to ``out_map``), its statistics and warnings into
    ``out``; ``areas`` as for :func:`permafrost.applicability.extrapolation_statistics`."""
    features = out.features
    ranges = meta["training"]["ranges"]
    categories = (meta.get("training") or {}).get("categories") or {}
    if out_map is not None:
        write_layer_cog(mask, out_map, "extrapolation", nodata=int(np.iinfo(mask.dtype).max),
                        dtype=str(mask.dtype), overview_resampling="nearest",
                        tags={"PZI_CONTENT": "bit mask of covariates outside the range of the "
                        "training labels: " + mask.attrs["legend"]})
    out.extrapolation = extrapolation_statistics(mask, features, categorical=list(categories),
                                                 areas=areas)
    out.extrapolation["ranges"] = {f: ranges[f] for f in features if f in ranges}
    if categories:  # a categorical covariate's domain: the classes seen in training
        out.extrapolation["categories"] = {f: categories[f] for f in features
                                           if f in categories}
    out.warnings += extrapolation_warnings(out.extrapolation, meta.get("model_kind"),
                                           [f for f in features if f in out.changed_covariates])


def _training_labels(model_dir, meta: Mapping, labels):
    """The training labels: the path given, else the model's ``inputs.labels``."""
    if labels is None:
        rel = (meta.get("inputs") or {}).get("labels")
        if not rel:
            return None
        labels = Path(model_dir) / rel
        if not Path(labels).exists():
            return None
    return read_vector(labels)


@dataclass
class _Labels:
    """The training labels of a label support check, read before the map's passes."""

    features: list  # the continuous features (the label support's strata)
    pts: Any
    sources: np.ndarray
    today: xr.Dataset  # the stack the labels' values come from (today's, not a scenario's)
    lc: xr.DataArray | None = None
    lcls: np.ndarray | None = None
    lcls_col: int | None = None  # the labels' classes are this column of their values
    names: dict | None = None
    landcover: str | None = None

    def xy(self) -> tuple[np.ndarray, np.ndarray]:
        geom = self.pts.geometry.representative_point()
        return geom.x.to_numpy(), geom.y.to_numpy()


def _support_labels(model_dir, meta, ds, features, like, *, changes, chunk, landcover,
                    labels) -> _Labels | None:
    """The labels, their sources and surface classes, and the land-cover map on the
    grid of ``like``; None where there is no label support (no labels, no continuous
    feature, a scenario without today's stack)."""
    pts = _training_labels(model_dir, meta, labels)
    # covariate deciles are strata of continuous covariates; a categorical one's strata are
    # its classes (the land-cover map's surface classes)
    cats = meta.get("features_categorical") or {}
    features = [f for f in features if f not in cats]
    if pts is None or not features:
        return None
    today = ds
    if changes:
        rel = (meta.get("inputs") or {}).get("covariates")
        src = Path(model_dir) / rel if rel else None
        if src is None or not src.exists():
            return None
        today = build_stack(src, chunks=chunk)
    sources = (pts["source"].astype(str).to_numpy() if "source" in pts.columns
               else np.array(["unknown"] * len(pts), dtype=object))
    lab = _Labels(features=features, pts=pts, sources=sources, today=today)
    if landcover is not None:
        if not Path(landcover).exists():
            raise InputFileError("land-cover map not found", path=landcover,
                                 fix="check the path (inputs.landcover, --landcover)")
        lab.names = parse_class_table(read_raster(landcover).attrs.get("classes"))
        lab.lc = read_aligned(landcover, like, resampling="nearest", chunks=chunk,
                              name="landcover")
        x, y = lab.xy()
        lab.lcls, _ = sample_at_points(lab.lc, x, y, crs=pts.crs)
        lab.landcover = str(landcover)
    elif (meta.get("surface") or {}).get("covariate") in today.data_vars:
        # the surface-aware model's own land-cover covariate (permafrost.surface)
        cov = meta["surface"]["covariate"]
        lab.names = parse_class_table(today[cov].attrs.get("classes"))
        lab.lc = today[cov]
        lab.lcls_col = features.index(cov)
        lab.landcover = f"covariate {cov} (surface-aware model)"
    return lab


def _support_stats(lab: _Labels, ds, pzi, vals, *, out_support, areas=None) -> dict:
    """Label support of one map (:func:`permafrost.applicability.label_support`) from the
    labels' covariate values ``vals`` (n, features), and its map written to
    ``out_support``."""
    features = lab.features
    vals = vals.reshape(len(lab.pts), len(features))
    lcls = lab.lcls if lab.lcls_col is None else vals[:, lab.lcls_col]
    sup = label_support(ds, features, pzi, vals, lab.sources, landcover=lab.lc,
                        label_classes=lcls, class_names=lab.names, areas=areas)
    sup["landcover"] = lab.landcover
    if out_support is not None:
        m = support_map(ds, features, pzi, sup, landcover=lab.lc)
        write_layer_cog(m, out_support, "support",
                        classes=support_classes(sup.get("min_labels", SUPPORT_MIN_LABELS)),
                        nodata=-1, dtype="int32", overview_resampling="nearest",
                        tags={"PZI_CONTENT": "label support: the number of training labels in "
                              "the cell's least supported stratum (its surface class, or the "
                              "decile of the map's distribution of any covariate it lies in); "
                              + sup["rule"]})
        sup["map"] = Path(out_support).name
    return sup


def _support(model_dir, meta, ds, features, pzi, *, changes, chunk, landcover, labels,
             out_support):
    """Label support of one map (:func:`permafrost.applicability.label_support`); the
    labels' covariate values are today's (the training stack), not a scenario's."""
    lab = _support_labels(model_dir, meta, ds, features, pzi, changes=changes, chunk=chunk,
                          landcover=landcover, labels=labels)
    if lab is None:
        return None
    x, y = lab.xy()
    vals, _ = sample_at_points(lab.today[lab.features], x, y, crs=lab.pts.crs)
    return _support_stats(lab, ds, pzi, vals, out_support=out_support)


# ---------------------------------------------------------------------------------------
# one pass: the check computed in the prediction's block tasks


class OnePassCheck:
    """The applicability check of a prediction, computed from the covariate blocks the
    prediction's block tasks already hold (:func:`permafrost.workflows.predict.
    predict_raster`'s ``check``): the stack is read, and its derived covariates computed,
    once per block.

    Each block task adds to its cache entry (:class:`permafrost.applicability.BlockCheck`)
    the extrapolation bits, the cell areas (projected grids), the values of the
    covariates the label support stratifies and the covariate values at the training
    labels in the block.  Once every block is done, the extrapolation map is streamed from
    the cache into its COG and the statistics are reduced from the cached layers by the
    same functions and in the same row stripes as :func:`applicability_from_files`, so
    ``applicability.json`` holds the same numbers, bit for bit, and the maps the same
    bytes.  A resumed run reuses the cached blocks' layers with their PZI.

    The price is disk: the cache holds, per pixel, the bit mask (1–8 bytes), the area
    (8 bytes, projected grids) and each continuous covariate (its dtype's bytes) while
    the run lasts.

    After :func:`predict_raster` returns, :attr:`result` is the :class:`Applicability`.
    """

    def __init__(self, model_dir, *, changes: Mapping | None = None, chunk: int = CHUNK,
                 landcover=None, labels=None, out_map=None, out_support=None):
        self.model_dir = Path(model_dir)
        self.changes = dict(changes or {})
        self.chunk = chunk
        self.landcover, self.labels = landcover, labels
        self.out_map, self.out_support = out_map, out_support
        self.outputs = [Path(p) for p in (out_map, out_support) if p is not None]
        self.result: Applicability | None = None
        self._key: dict = {}

    def bind(self, ds: xr.Dataset, features, chunk: int) -> BlockCheck:
        """Read the model's ranges and the labels against the prediction's stack ``ds``
        (in the order ``features`` of its block tasks); the per-block part."""
        self.meta = meta = read_json(self.model_dir / "metadata.json")
        self.ds = ds
        self.app = app = _start(meta, ds, self.changes)
        feats = app.features
        missing = [f for f in feats if f not in features]
        if missing:
            raise ModelError(f"the model's metadata names features the prediction does not "
                             f"use: {missing or 'none'}", path=self.model_dir,
                             field="feature_names", fix="retrain the model")
        order = [list(features).index(f) for f in feats]
        training = meta.get("training") or {}
        self.ranges = training.get("ranges") if feats else None
        grid = grid_of(ds)
        check = BlockCheck(order=order)
        if self.ranges:
            check.lo, check.hi, check.codes = extrapolation_bounds(
                self.ranges, feats, training.get("categories") or {})
        self.lab = _support_labels(self.model_dir, meta, ds, feats, ds[feats[0]],
                                   changes=self.changes, chunk=chunk,
                                   landcover=self.landcover, labels=self.labels
                                   ) if feats else None
        self.label_cells = None
        if self.lab is not None:
            check.keep = [feats.index(f) for f in self.lab.features]
            if self.lab.today is ds:  # the labels' values: read in the block tasks too
                x, y = self.lab.xy()
                row, col, inside = cells_at_points(grid, x, y, crs=self.lab.pts.crs)
                self.label_cells = np.flatnonzero(inside)
                check.label_rows, check.label_cols = row[inside], col[inside]
        # the maps this check will write (its progress counts them)
        self.writes = [p for p, yes in ((self.out_map, bool(self.ranges)),
                                        (self.out_support, self.lab is not None))
                       if p is not None and yes]
        if grid.crs.is_projected and (self.ranges or self.lab is not None):
            check.grid = grid  # each cell's area once, in its block
        self._key = {"features": feats, "order": order,
                     "lo": None if check.lo is None else check.lo.tolist(),
                     "hi": None if check.hi is None else check.hi.tolist(),
                     "codes": {str(k): v for k, v in check.codes.items()},
                     "keep": check.keep, "areas": check.grid is not None,
                     "labels": None if check.label_rows is None or check.label_cols is None
                     else [check.label_rows.tolist(), check.label_cols.tolist()]}
        return check

    def key(self) -> dict:
        """What the cached blocks' check layers depend on (joins the cache key)."""
        return self._key

    def finish(self, blocks, wrote) -> Applicability:
        """Reduce the cached blocks (:class:`permafrost.workflows.predict.CachedBlocks`):
        the maps, the statistics and the warnings; ``wrote()`` after each map."""
        app, meta, ds, feats = self.app, self.meta, self.ds, self.app.features
        areas = None
        if self._key.get("areas"):
            area = blocks.extra("area", np.float64)
            areas = lambda rows: area.isel(y=rows).values  # noqa: E731
        pzi = blocks.pzi
        if self.lab is not None:
            lab = self.lab
            cached = xr.Dataset({f: blocks.extra(f"x{feats.index(f)}", ds[f].dtype)
                                 for f in lab.features})
            cached = cached.rio.write_crs(ds.rio.crs).rio.write_transform(ds.rio.transform())
            if self.label_cells is not None:
                vals = np.full((len(lab.pts), len(lab.features)), np.nan)
                for _, got in blocks.blocks("labels"):
                    vals[self.label_cells[got[:, 0].astype(np.int64)]] = got[:, 1:]
                for j, f in enumerate(lab.features):  # as sample_at_points does
                    nodata = ds[f].rio.nodata
                    if nodata is not None and not np.isnan(nodata):
                        vals[vals[:, j] == nodata, j] = np.nan
            else:  # a scenario: today's values at the labels
                x, y = lab.xy()
                vals, _ = sample_at_points(lab.today[lab.features], x, y, crs=lab.pts.crs)
            app.support = _support_stats(lab, cached, pzi, vals, out_support=self.out_support,
                                         areas=areas)
            if self.out_support is not None:
                wrote()
        app.warnings += support_warnings(app.support)
        if self.ranges:
            lo, hi, codes = extrapolation_bounds(
                self.ranges, feats, (meta.get("training") or {}).get("categories") or {})
            mask = blocks.extra("bits", mask_dtype(len(feats))).rename("extrapolation")
            mask.attrs["legend"] = extrapolation_legend(feats, lo, hi, codes)
            _extrapolation(app, meta, mask, self.out_map, areas=areas)
            if self.out_map is not None:
                wrote()
        self.result = app
        return app


@expects(model_dir="path", covariates="covariates", out="path")
def predict_with_applicability(model_dir, covariates, out, *, zones=None, uncertainty=None,
                               mask=None, chunk: int = CHUNK, device: str = "auto",
                               workers=None, scheduler=None, threads=None, cache_dir=None,
                               resume: bool = True, progress=None,
                               changes: Mapping | None = None, out_map=None, landcover=None,
                               labels=None, out_support=None, out_json=None,
                               json_extra: Mapping | None = None):
    """Predict the PZI and check its domain of applicability in one pass over the map:
    the ``predict`` command's and pipeline step's one orchestration.

    The prediction is :func:`permafrost.workflows.predict.predict_raster` (its
    parameters); the check, computed in the same block tasks (:class:`OnePassCheck`), is
    the one of :func:`applicability_from_files` (its parameters ``changes``, ``out_map``,
    ``landcover``, ``labels``, ``out_support``), with the same results.

    Parameters
    ----------
    out_json : path-like, optional
        Write ``applicability.json`` here (:func:`write_applicability`).
    json_extra : mapping, optional
        Keys put before the check's in that file (a pipeline run's scenario).

    Returns
    -------
    (PredictResult, Applicability)
    """
    check_outputs([Output(out, "--out", what="PZI"), Output(zones, "--zones", what="zones"),
                   Output(uncertainty, "--uncertainty", what="uncertainty"),
                   Output(out_map, "--extrapolation", what="extrapolation map"),
                   Output(out_support, "--support", what="label support map"),
                   Output(out_json, "--applicability", what="applicability")],
                  {"--model": model_dir, "--covariates": covariate_files(covariates),
                   "--mask": mask, "--landcover": landcover,
                   "the model's training labels": labels})
    check = OnePassCheck(model_dir, changes=changes, chunk=chunk, landcover=landcover,
                         labels=labels, out_map=out_map, out_support=out_support)
    res = predict_raster(model_dir, covariates, out, zones=zones, uncertainty=uncertainty,
                         mask=mask, chunk=chunk, device=device, workers=workers,
                         scheduler=scheduler, threads=threads, cache_dir=cache_dir,
                         resume=resume, progress=progress, check=check)
    if out_json is not None:
        assert check.result is not None  # set by the prediction's last block
        write_applicability(check.result, out_json, extra=json_extra)
    return res, check.result


def write_applicability(app: Applicability, path, *, extra: Mapping | None = None) -> dict:
    """Write ``applicability.json``: ``extra`` (e.g. a pipeline run's scenario), then
    :meth:`Applicability.as_dict`; returns what was written."""
    out = {**dict(extra or {}), **app.as_dict()}
    write_json(out, path)
    return out
