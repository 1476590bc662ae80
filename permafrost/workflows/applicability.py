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
)
from permafrost.checks import expects
from permafrost.covariates import CHANGED_ATTR
from permafrost.defaults import CHUNK
from permafrost.io.guard import Output, check_outputs
from permafrost.io.rasters import read_raster, write_cog
from permafrost.io.results import read_json
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
    """

    features: list
    model: str | None
    changed_covariates: dict
    warnings: list
    extrapolation: dict | None = None

    def as_dict(self) -> dict:
        """The JSON-ready dict (the body of ``applicability.json``)."""
        return {"features": self.features, "model": self.model,
                "changed_covariates": self.changed_covariates, "warnings": self.warnings,
                "extrapolation": self.extrapolation}


@expects(model_dir="path", covariates="covariates", pzi_path="path")
def applicability_from_files(model_dir, covariates, pzi_path, *, out_map=None,
                             changes: Mapping | None = None,
                             chunk: int = CHUNK) -> Applicability:
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

    Returns
    -------
    Applicability
        Features, model kind, changed covariates, warnings and the extrapolation
        statistics (None for a model trained before ranges were recorded).

    References
    ----------
    Meyer, H., Pebesma, E. (2021), see :mod:`permafrost.applicability`.
    """
    check_outputs([Output(out_map, "--extrapolation", what="extrapolation map")],
                  {"--model": model_dir, "--covariates": covariate_files(covariates), "--out": pzi_path})
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
    ranges = (meta.get("training") or {}).get("ranges")
    if not ranges:
        return out
    mask = extrapolation_map(ds, ranges, features,
                             pzi=read_raster(pzi_path, chunks=chunk, name="pzi"))
    if out_map is not None:
        write_cog(mask, out_map, nodata=int(np.iinfo(mask.dtype).max), dtype=str(mask.dtype),
                  overview_resampling="nearest",
                  description="covariates outside the training range (bit mask)",
                  tags={"PZI_CONTENT": "bit mask of covariates outside the range of the "
                        "training labels: " + mask.attrs["legend"]})
    out.extrapolation = extrapolation_statistics(mask, features)
    out.extrapolation["ranges"] = {f: ranges[f] for f in features}
    warnings += extrapolation_warnings(out.extrapolation, meta.get("model_kind"),
                                       [f for f in features if f in changed])
    return out
