"""`validate` on files: read a PZI raster, boreholes and prior maps, validate, write the results.

The science is :func:`permafrost.validation.validate` (objects in, a
:class:`~permafrost.validation.ValidationResult` out); this module reads the inputs
lazily, in blocks (prior maps both on their own grid and put on the PZI grid by nearest
neighbour), and writes ``validation.json``, ``boreholes.csv``, ``priors.csv`` and one
agreement raster (COG) per prior map.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from permafrost.checks import expects
from permafrost.defaults import BOOTSTRAP_RESAMPLES, CI_LEVEL, SITE_M, auto_block_rows
from permafrost.errors import ParameterError
from permafrost.io.boreholes import read_presence_table
from permafrost.io.guard import Output, check_outputs, provenance_base
from permafrost.io.maps import read_aligned, read_mask
from permafrost.io.rasters import read_raster
from permafrost.io.results import read_json, write_csv, write_json
from permafrost.io.styles import write_layer_cog
from permafrost.options import check_crs, check_options
from permafrost.provenance import relative_path
from permafrost.styles import AGREEMENT_NODATA
from permafrost.transfer import attach_transfer
from permafrost.validation import (
    PriorSpec,
    ValidationResult,
    agreement_file_name,
    check_prior_names,
    validate,
)

__all__ = ["validate_from_files", "write_validation"]

#: the columns of ``boreholes.csv``: the metrics, then the bootstrap intervals
_CI_METRICS = ("auc", "balanced_accuracy", "kappa", "brier")
_BOREHOLE_COLUMNS = (["map", "kind", "n", "n_pos", "n_neg", "tp", "fp", "fn", "tn",
                      "accuracy", "balanced_accuracy", "sensitivity", "specificity", "kappa",
                      "auc", "brier", "threshold"]
                     + [f"{m}_ci_{b}" for m in _CI_METRICS for b in ("low", "high")])


@expects(pzi_path="path")
def validate_from_files(
    pzi_path,
    *,
    boreholes_path=None,
    boreholes_crs=None,
    boreholes_columns=None,
    priors: Sequence[PriorSpec] = (),
    out_dir=None,
    threshold: float = 0.5,
    mask_path=None,
    n_bins: int = 10,
    block_rows: int | None = None,
    bootstrap_resamples: int = BOOTSTRAP_RESAMPLES,
    ci_level: float = CI_LEVEL,
    seed: int = 0,
    site_m: float = SITE_M,
    model_path=None,
) -> ValidationResult:
    """Validate a PZI raster against boreholes and prior maps; write JSON, CSV and rasters.

    With the model (``model_path``), ``validation.json`` gets a ``transfer`` section and
    top-level ``warnings``: the held-out AUC against the model's spatial-CV AUC, the
    model's skill per evidence source and leave-one-source-out, and the ranges of
    autocorrelation behind its CV blocks (:func:`permafrost.transfer.attach_transfer`).
    Without it, the held-out AUC is still checked for chance.

    Parameters
    ----------
    pzi_path : path-like
        PZI raster [-].
    boreholes_path : path-like, optional
        Presence table (see :func:`permafrost.io.boreholes.read_presence_table`).
    boreholes_crs : CRS-like, optional
        CRS of x/y columns of a CSV table (lon/lat columns are EPSG:4326).
    boreholes_columns : dict, optional
        Column names by role (``id``, ``x``, ``y``, ``presence``, ...; see
        :func:`permafrost.io.boreholes.read_presence_table`).
    priors : sequence of PriorSpec
        Prior maps (any CRS/resolution; put on the model grid by nearest neighbour).
    out_dir : path-like, optional
        Where to write ``validation.json``, ``boreholes.csv``, ``priors.csv`` and
        ``agreement_<name>.tif`` (:func:`write_validation`).
    threshold : float
        Model permafrost where PZI ≥ threshold [-].
    mask_path : path-like, optional
        Polygons or raster of excluded cells (map agreement only), read by
        :func:`permafrost.io.maps.read_mask` (a raster on another grid is put on the PZI
        grid by nearest neighbour).
    n_bins : int
        Reliability bins [-].
    block_rows : int, optional
        Rows per block [-] (default: about 2**20 cells a block).
    bootstrap_resamples, ci_level, seed : int, float, int
        Percentile bootstrap of every borehole metric
        (:func:`permafrost.validation.bootstrap_metrics`): resamples [-], confidence level
        [-], random seed.
    site_m : float
        Boreholes linked by neighbours closer than this form one site, the bootstrap's
        resampling unit [m] (:func:`permafrost.cv.site_ids`).
    model_path : path-like, optional
        The model directory (or its ``metadata.json``) that made the map.

    Returns
    -------
    ValidationResult
        ``as_dict()`` is the content of ``validation.json`` (with the input paths as given).

    Raises
    ------
    DataError
        No borehole inside the map, a prior with no overlap or unknown codes, duplicate names.
    """
    check_options(threshold=threshold, n_bins=n_bins, block_rows=block_rows,
                  bootstrap_resamples=bootstrap_resamples, ci_level=ci_level, seed=seed,
                  site_m=site_m)
    if boreholes_crs is not None:
        check_crs(boreholes_crs, field="boreholes_crs")
    if boreholes_path is None and not priors:
        raise ParameterError("nothing to validate against", param="boreholes",
                             fix="give {boreholes} and/or {priors}")
    check_prior_names([p.name for p in priors])
    if out_dir is not None:
        out = Path(out_dir)
        check_outputs([Output(out, "--out", "folder", what="validation folder"),
                       *(Output(out / name, f"{name} in --out", what=name) for name in (
                           "validation.json",
                           "boreholes.csv" if boreholes_path is not None else None,
                           "priors.csv" if priors else None) if name),
                       *(Output(out / agreement_file_name(s.name),
                                f"{agreement_file_name(s.name)} in --out",
                                what="agreement raster") for s in priors)],
                      {"PZI": pzi_path, "--boreholes": boreholes_path,
                       "--prior": [s.path for s in priors], "--mask": mask_path})
    if block_rows is None:
        block_rows = auto_block_rows(read_raster(pzi_path, chunks={"y": 1, "x": -1}).shape[1])
    chunks = {"y": block_rows, "x": -1}
    model = read_raster(pzi_path, chunks=chunks, name="pzi")
    # a continuous prior compared at a threshold inside (0, 1) is a probability: read as one
    # (values in 0..1; a map in percent is refused, see permafrost.io.rasters.PLAUSIBLE)
    maps = [(s, read_raster(s.path, chunks=chunks, name=s.name,
                            role="probability" if s.kind == "continuous"
                            and 0.0 < s.threshold < 1.0 else None)) for s in priors]
    bh = (read_presence_table(boreholes_path, crs=boreholes_crs, columns=boreholes_columns)
          if boreholes_path is not None else None)
    mask = (read_mask(mask_path, model, chunks=chunks)
            if priors and mask_path is not None else None)
    aligned = [(s, da, read_aligned(s.path, model, resampling="nearest", chunks=chunks,
                                    name=s.name)) for s, da in maps]
    result = validate(model, boreholes=bh, priors=aligned,
                      mask=mask.excluded if mask is not None else None,
                      mask_vector=mask.polygons if mask is not None else None,
                      threshold=threshold, n_bins=n_bins, block_rows=block_rows,
                      bootstrap_resamples=bootstrap_resamples, ci_level=ci_level, seed=seed,
                      site_m=site_m)
    if result.boreholes is not None:
        cv = None
        if model_path is not None:
            meta = Path(model_path)
            meta = meta / "metadata.json" if meta.is_dir() else meta
            cv = read_json(meta).get("cv")
            result.meta["model"] = str(model_path)
        attach_transfer(result, cv)
    # the paths as given (not as the readers normalised them)
    result.meta["pzi"] = str(pzi_path)
    if result.boreholes is not None:
        result.boreholes["source"] = str(boreholes_path)
    if "mask" in result.meta:
        result.meta["mask"] = str(mask_path)
    if out_dir is not None:
        write_validation(result, out_dir, pzi_path=pzi_path,
                         prior_paths={s.name: s.path for s in priors})
    return result


def write_validation(result: ValidationResult, out_dir, *, pzi_path=None,
                     prior_paths=None) -> None:
    """Write a validation: one agreement COG per prior map, ``validation.json``,
    ``boreholes.csv`` (with borehole scores) and ``priors.csv`` (with prior maps).

    Each prior entry of the JSON gets ``agreement_raster``, the raster's file name.

    Parameters
    ----------
    result : ValidationResult
        The result of :func:`validate_from_files` or :func:`permafrost.validation.validate`.
    out_dir : path-like
        Output directory.
    pzi_path : path-like, optional
        The PZI raster, named in the agreement rasters' tags (relative to the raster).
    prior_paths : mapping, optional
        ``{prior name: path}``, named in the agreement rasters' tags likewise.
    """
    out = Path(out_dir)
    prior_paths = prior_paths or {}
    root, relative_to = provenance_base(out / "agreement.tif")
    for entry in result.priors or []:
        n = entry["name"]
        tif = out / agreement_file_name(n)
        tags = {"pzi": _tag_path(pzi_path, root), "prior": _tag_path(prior_paths.get(n), root),
                "paths_relative_to": relative_to, "threshold": result.meta["threshold"]}
        write_layer_cog(result.agreement[n], tif, "agreement", nodata=AGREEMENT_NODATA,
                        dtype="uint8", overview_resampling="nearest",
                        tags={k: v for k, v in tags.items() if v is not None})
        entry["agreement_raster"] = tif.name
    js = result.as_dict()
    write_json(js, out / "validation.json")
    if result.boreholes is not None:
        flat = [{**r, **{f"{m}_ci_{b}": (r.get("ci") or {}).get(m, {}).get(b)
                         for m in _CI_METRICS for b in ("low", "high")}}
                for r in result.boreholes["table"]]
        write_csv(flat, out / "boreholes.csv", columns=_BOREHOLE_COLUMNS)
    if result.priors is not None:
        write_csv([{"prior": p["name"], "kind": p["kind"], **p["agreement"]}
                   for p in result.priors], out / "priors.csv")


def _tag_path(path, out: Path) -> str | None:
    return None if path is None else relative_path(path, out)
