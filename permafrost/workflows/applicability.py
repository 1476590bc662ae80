"""The domain of applicability of one PZI map, from files: the model directory's training
ranges and covariate dependence, the covariates and the PZI raster in; the statistics, the
warnings and (optionally) the bit mask of cells beyond the training range out (the ``predict``
command and pipeline step).  The rules are :mod:`permafrost.applicability` and
:func:`permafrost.proxies.proxy_warnings`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from permafrost.applicability import (
    extrapolation_map,
    extrapolation_statistics,
    extrapolation_warnings,
    label_support,
    parse_class_table,
    support_map,
    support_warnings,
)
from permafrost.checks import expects
from permafrost.covariates import CHANGED_ATTR
from permafrost.defaults import CHUNK
from permafrost.errors import InputFileError
from permafrost.grid import sample_at_points
from permafrost.io.guard import Output, check_outputs
from permafrost.io.maps import read_aligned
from permafrost.io.rasters import read_raster, write_cog
from permafrost.io.results import read_json
from permafrost.io.vectors import read_vector
from permafrost.proxies import proxy_warnings
from permafrost.workflows.covariates import build_stack, covariate_files

__all__ = ["Applicability", "applicability_from_files"]


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
                   "--out": pzi_path, "--landcover": landcover, "--labels": labels})
    changes = dict(changes or {})
    meta = read_json(Path(model_dir) / "metadata.json")
    ds = covariates if isinstance(covariates, xr.Dataset) else build_stack(
        covariates, chunks=chunk, changes=changes)
    features = list(meta.get("feature_names") or [])
    changed = {str(v): ds[v].attrs[CHANGED_ATTR] for v in ds.data_vars
               if CHANGED_ATTR in ds[v].attrs}
    warnings = proxy_warnings(meta.get("dependence"), features, changed,
                              changes=sorted(changes))
    out = Applicability(features=features, model=meta.get("model_kind"),
                        changed_covariates=changed, warnings=warnings)
    pzi = read_raster(pzi_path, chunks=chunk, name="pzi")
    out.support = _support(model_dir, meta, ds, features, pzi, changes=changes, chunk=chunk,
                           landcover=landcover, labels=labels, out_support=out_support)
    warnings += support_warnings(out.support)
    ranges = (meta.get("training") or {}).get("ranges")
    if not ranges:
        return out
    categories = (meta.get("training") or {}).get("categories") or {}
    mask = extrapolation_map(ds, ranges, features, pzi=pzi, categories=categories)
    if out_map is not None:
        write_cog(mask, out_map, nodata=int(np.iinfo(mask.dtype).max), dtype=str(mask.dtype),
                  overview_resampling="nearest",
                  description="covariates outside the training range (bit mask)",
                  tags={"PZI_CONTENT": "bit mask of covariates outside the range of the "
                        "training labels: " + mask.attrs["legend"]})
    out.extrapolation = extrapolation_statistics(mask, features,
                                                 categorical=list(categories))
    out.extrapolation["ranges"] = {f: ranges[f] for f in features if f in ranges}
    if categories:  # a categorical covariate's domain: the classes seen in training
        out.extrapolation["categories"] = {f: categories[f] for f in features
                                           if f in categories}
    warnings += extrapolation_warnings(out.extrapolation, meta.get("model_kind"),
                                       [f for f in features if f in changed])
    return out


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


def _support(model_dir, meta, ds, features, pzi, *, changes, chunk, landcover, labels,
             out_support):
    """Label support of one map (:func:`permafrost.applicability.label_support`); the
    labels' covariate values are today's (the training stack), not a scenario's."""
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
    geom = pts.geometry.representative_point()
    vals, _ = sample_at_points(today[features], geom.x.to_numpy(), geom.y.to_numpy(),
                               crs=pts.crs)
    sources = (pts["source"].astype(str).to_numpy() if "source" in pts.columns
               else np.array(["unknown"] * len(pts), dtype=object))
    lc = lcls = names = None
    if landcover is not None:
        if not Path(landcover).exists():
            raise InputFileError("land-cover map not found", path=landcover,
                                 fix="check the path (inputs.landcover, --landcover)")
        names = parse_class_table(read_raster(landcover).attrs.get("classes"))
        lc = read_aligned(landcover, pzi, resampling="nearest", chunks=chunk, name="landcover")
        lcls, _ = sample_at_points(lc, geom.x.to_numpy(), geom.y.to_numpy(), crs=pts.crs)
    elif (meta.get("surface") or {}).get("covariate") in today.data_vars:
        # the surface-aware model's own land-cover covariate (permafrost.surface)
        cov = meta["surface"]["covariate"]
        names = parse_class_table(today[cov].attrs.get("classes"))
        lc = today[cov]
        lcls = vals.reshape(len(pts), len(features))[:, features.index(cov)]
    sup = label_support(ds, features, pzi, vals.reshape(len(pts), len(features)), sources,
                        landcover=lc, label_classes=lcls, class_names=names)
    sup["landcover"] = (str(landcover) if landcover is not None else
                        f"covariate {meta['surface']['covariate']} (surface-aware model)"
                        if lc is not None else None)
    if out_support is not None:
        m = support_map(ds, features, pzi, sup, landcover=lc)
        write_cog(m, out_support, nodata=-1, dtype="int32", overview_resampling="nearest",
                  description="training labels in the least supported stratum",
                  tags={"PZI_CONTENT": "label support: the number of training labels in the "
                        "cell's least supported stratum (its surface class, or the decile of "
                        "the map's distribution of any covariate it lies in); "
                        + sup["rule"]})
        sup["map"] = Path(out_support).name
    return sup
