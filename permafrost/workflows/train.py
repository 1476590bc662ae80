"""Training from files: read the labels and the covariate stack, train the model and save the
model directory (the ``train`` command and pipeline step)."""

from __future__ import annotations

from permafrost.checks import expects
from permafrost.defaults import CHUNK
from permafrost.io.guard import Output, check_outputs
from permafrost.io.model import is_model_dir, save_model
from permafrost.io.vectors import read_vector
from permafrost.models import TrainResult, check_training_options
from permafrost.options import check_options
from permafrost.provenance import relative_path
from permafrost.surface import train_surface_model
from permafrost.workflows.covariates import build_stack, covariate_files

__all__ = ["train_from_files"]


@expects(labels_path="path", covariates="covariates", out_dir="path")
def train_from_files(labels_path, covariates, out_dir, *, layer: str | None = None,
                     like=None, chunk: int = CHUNK, **kwargs) -> TrainResult:
    """Read labels and covariates from files, train (:func:`permafrost.surface.
    train_surface_model`, which is :func:`permafrost.models.train_model` without land cover)
    and save the model directory (:func:`permafrost.io.model.save_model`).

    Parameters
    ----------
    labels_path : path-like
        Point labels (GeoPackage or any vector format GDAL reads).
    covariates : path-like
        Directory of GeoTIFFs or a TOML stack file
        (:func:`permafrost.workflows.covariates.build_stack`).
    out_dir : path-like
        Model directory to write (atomically).
    layer : str, optional
        Layer of the labels file.
    like : path-like, optional
        Target-grid raster for a covariate directory.
    chunk : int
        Side of the square Dask chunks the covariate stack is read in [pixels].
    **kwargs
        Passed to :func:`permafrost.surface.train_surface_model` (``surface``,
        ``debris_classes``) and :func:`permafrost.models.train_model`: with a categorical
        land-cover covariate whose classes name coarse debris in the stack the default is
        the surface-aware model (debris and ground parts), else one model.

    Returns
    -------
    TrainResult
        The saved model (its ``metadata`` as written, with the ``inputs`` relative to the
        model directory) and the training report.
    """
    check_options(chunk=chunk)  # and train_model's, before anything is read
    check_training_options(**{k: kwargs[k] for k in ("seed", "folds", "block_size", "threshold",
                                                     "prevalence", "params") if k in kwargs})
    check_outputs([Output(out_dir, "--out", "owned", recognise=is_model_dir,
                          what="model directory")],
                  {"--labels": labels_path, "--covariates": covariate_files(covariates), "--like": like})
    labels = read_vector(labels_path, layer=layer)
    ds = build_stack(covariates, chunks=chunk, like=like)
    res = train_surface_model(labels, ds, labels_source=labels_path,
                              covariates_source=covariates, **kwargs)
    model = res.model
    # relative to the model directory: the metadata (and the model's hash in the PZI's tags)
    # does not depend on where the checkout lives
    model.metadata["inputs"] = {"labels": relative_path(labels_path, out_dir),
                                "covariates": relative_path(covariates, out_dir),
                                "paths_relative_to": "the model directory"}
    save_model(model, out_dir)
    return res
