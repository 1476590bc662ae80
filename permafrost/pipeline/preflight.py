"""Everything a pipeline file lets one know before any work (issue 26).

:func:`permafrost.config.load_pipeline` checks the file itself: keys, types, bounds, that
the inputs exist.  :func:`preflight` goes one step further and opens what can be opened
without reading pixels or running a step, for the baseline and every scenario:

* the covariate stack, lazily (:func:`permafrost.workflows.covariates.build_stack`): its
  names, kinds and grid (CRS and extent from the headers);
* feature names against the stack: ``train.features``, ``train.monotone`` (known,
  continuous covariates), the surface-aware model's covariate and debris classes
  (:func:`permafrost.surface.find_surface`), the same for ``[scenario_model]`` and every
  scenario's ``train`` overrides;
* categorical kinds: the land-cover input must be a categorical raster;
* columns: the region name field (``inputs.regions.field``), the inventories' activity
  column, the borehole tables' roles (read by the reader the labels step uses,
  :func:`permafrost.io.boreholes.read_presence_table`);
* spatial CV: a given ``block_size_m`` against the folds.  The labels are known only after
  the labels step, but they lie inside the covariate grid and inside the box of their
  evidence (inventories' bounds, boreholes), and square blocks laid over points inside a
  box are at most the blocks that box's own corners and edges fall into (the same counting, :func:`permafrost.surface.too_few_blocks` over
  :func:`permafrost.cv.block_ids`).  Fewer blocks than folds is certain to fail after the
  labels step; it is reported now, with the largest block size that fits;
* ``predict.workers`` against the machine's cores (a warning: more processes than cores
  only queue; issue 26 measured 9x slower with 4 workers on 2 cores).

Every problem is collected (not only the first) and raised as one
:class:`~permafrost.errors.ProblemsError`, each line naming the pipeline file and the TOML
key.  ``permafrost scenarios``, ``permafrost run --dry-run`` (:func:`plan_pipeline`) and
``run`` itself (:func:`run_pipeline`, before its first step) call :func:`check_pipeline`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
from pyproj import Transformer

from permafrost.categorical import is_categorical
from permafrost.config import (
    BASELINE,
    REFERENCE,
    PipelineConfig,
    resolve_scenario,
)
from permafrost.errors import ConfigError, ParameterError, PermafrostError, ProblemsError
from permafrost.io.boreholes import read_presence_table
from permafrost.io.rasters import raster_classes
from permafrost.io.vectors import split_layer
from permafrost.options import for_pipeline
from permafrost.surface import debris_class_codes, find_surface, surface_classes, too_few_blocks
from permafrost.workflows.covariates import build_stack

log = logging.getLogger(__name__)

__all__ = ["Preflight", "preflight", "check_pipeline", "max_blocks", "largest_fitting_block"]

#: points a side of the lattice laid over the grid's extent to count the blocks it holds
_LATTICE = 65


@dataclass
class Preflight:
    """What :func:`preflight` found: errors (each naming the pipeline file and the TOML key)
    and warnings (one line each)."""

    errors: list[PermafrostError]
    warnings: list[str]

    def raise_errors(self, path=None) -> None:
        if self.errors:
            raise ProblemsError(self.errors, path=path)


def _key_of(cfg: PipelineConfig, run: str, section: str, name: str) -> str:
    """The TOML key a resolved run's ``section.name`` was set by: the scenario's own
    override, else ``[scenario_model]`` (the reference and cross-section scenarios that
    change covariates), else the section itself."""
    sc = cfg.scenarios.get(run) if run not in (BASELINE, REFERENCE) else None
    if sc is not None and name in getattr(sc, section, {}):
        return f"scenarios.{run}.{section}.{name}"
    if section == "train" and name in cfg.scenario_model and not cfg.physical() and (
            run == REFERENCE or (sc is not None and sc.covariates)):
        return f"scenario_model.{name}"
    return f"{section}.{name}"


def max_blocks(x, y, crs, block_size: float, folds: int) -> int | None:
    """The most square CV blocks of ``block_size`` [m] that points inside the extent of
    ``x``, ``y`` (in ``crs``) can fall into, when fewer than ``folds``; else None.

    Blocks are anchored at the points' own minimum (:func:`permafrost.cv.block_index`), so
    any set of points inside the extent spans at most the columns and rows of the extent
    itself: a lattice over the extent, corners and edges included, counted with the
    package's one blocking rule (:func:`permafrost.surface.too_few_blocks`).
    """
    gx, gy = np.meshgrid(np.linspace(min(x), max(x), _LATTICE),
                         np.linspace(min(y), max(y), _LATTICE))
    pts = gpd.GeoDataFrame(geometry=gpd.points_from_xy(gx.ravel(), gy.ravel()), crs=crs)
    return too_few_blocks(pts, block_size, folds, None)


def largest_fitting_block(x, y, crs, folds: int, upper: float) -> float:
    """The largest block side [m] (to 1 %) below ``upper`` whose blocks over the extent
    number at least ``folds`` (bisection on :func:`max_blocks`)."""
    lo, hi = 0.0, float(upper)
    while hi - lo > 0.01 * hi:
        mid = 0.5 * (lo + hi)
        if mid <= 0 or max_blocks(x, y, crs, mid, folds) is None:
            lo = mid
        else:
            hi = mid
    return lo


def _round_down(v: float) -> float:
    """A round block size at or below ``v`` [m] (two significant digits)."""
    if v <= 0:
        return 0.0
    mag = 10 ** (np.floor(np.log10(v)) - 1)
    return float(np.floor(v / mag) * mag)


def preflight(cfg: PipelineConfig, scenarios: list[str] | None = None) -> Preflight:
    """Check everything knowable of a validated pipeline before any work; collect all
    problems.

    Parameters
    ----------
    cfg : PipelineConfig
        A pipeline (:func:`permafrost.config.load_pipeline`).
    scenarios : list of str, optional
        The scenarios a run asks for (default: every scenario of the pipeline: a problem in
        any of them is found now, not on the day it is run).

    Returns
    -------
    Preflight
        The errors (:class:`~permafrost.errors.PermafrostError`, naming the pipeline file
        and the TOML key) and warnings.
    """
    src = cfg.source
    errors: list[PermafrostError] = []
    warnings: list[str] = []

    def error(key: str, problem: str, fix: str | None) -> None:
        e = ConfigError(problem, path=src, field=key, fix=fix)
        if str(e) not in {str(x) for x in errors}:
            errors.append(e)

    def from_library(exc: PermafrostError, key: str) -> None:
        where = f" ({exc.path})" if exc.path and str(exc.path) != str(src) else ""
        error(key, f"{exc.problem}{where}", exc.fix)

    runs = cfg.runs(list(cfg.scenarios) if scenarios is None else scenarios)
    resolved = [(r, resolve_scenario(cfg, r)[0]) for r in runs]

    # ---- the stack: names, kinds, grid (headers only; dask arrays not computed)
    ds = None
    try:
        ds = build_stack(cfg.inputs.covariates)
    except PermafrostError as exc:
        from_library(exc, "inputs.covariates")
    if ds is not None:
        _check_features(cfg, resolved, ds, error, from_library)
        _check_blocks(cfg, resolved, ds, errors)
        _check_holdout(cfg, ds, errors)

    # ---- categorical kinds
    if cfg.inputs.landcover is not None:
        try:
            if not raster_classes(cfg.inputs.landcover).categorical:
                error("inputs.landcover", f"{cfg.inputs.landcover} is not a categorical raster "
                      "(no kind=categorical tag, category names or attribute table)",
                      "tag it kind=categorical with a classes table (code=name;...), or "
                      "leave inputs.landcover out")
        except PermafrostError as exc:
            from_library(exc, "inputs.landcover")

    # ---- columns
    _check_columns(cfg, resolved, error, from_library)

    # ---- workers against the cores (a warning)
    cores = os.cpu_count() or 1
    for run, c in resolved:
        w = c.predict.workers
        if w is not None and w > cores:
            msg = (f"{_key_of(cfg, run, 'predict', 'workers')} = {w} worker processes on "
                   f"{cores} CPU core(s): more processes than cores only queue (each loads "
                   "the model; 4 workers on 2 cores ran predict 9x slower than 1, issue 26); "
                   "leave predict.workers out, or give at most the number of cores")
            if msg not in warnings:
                warnings.append(msg)
    return Preflight(errors, warnings)


def check_pipeline(cfg: PipelineConfig, scenarios: list[str] | None = None) -> list[str]:
    """:func:`preflight`, raising every error at once (a
    :class:`~permafrost.errors.ProblemsError`, exit code 2 from the CLI); the warnings are
    logged and returned."""
    found = preflight(cfg, scenarios)
    found.raise_errors(cfg.source)
    for w in found.warnings:
        log.warning("%s", w)
    return found.warnings


def _check_features(cfg, resolved, ds, error, from_library) -> None:
    names = [str(v) for v in ds.data_vars]
    for run, c in resolved:
        t = c.train
        feats = list(t.features) if t.features else names
        for f in t.features or []:
            if f not in names:
                error(_key_of(cfg, run, "train", "features"),
                      f"feature {f!r} is not a covariate of the stack",
                      f"covariates: {', '.join(names)}")
        for f, sign in t.monotone.items():
            key = _key_of(cfg, run, "train", "monotone")
            if f not in feats:
                error(key, f"monotone constraint on {f!r}, which is not "
                      f"{'a feature' if t.features else 'a covariate of the stack'}",
                      f"features: {', '.join(feats)}")
            elif sign and is_categorical(ds[f]):
                error(key, f"monotone constraint on the categorical covariate {f!r}: class "
                      "codes have no order", "constrain continuous covariates only")
        try:
            s = find_surface(ds, t.surface, t.features)
            if s is not None:
                debris_class_codes(surface_classes(ds[s]), t.debris_classes)
        except PermafrostError as exc:
            key = _key_of(cfg, run, "train", "debris_classes" if t.debris_classes and
                          "debris" in str(exc) else "surface")
            from_library(exc, key)


def _evidence_box(cfg: PipelineConfig, crs, grid: tuple) -> tuple | None:
    """The box [grid CRS units] the labels can come from: the bounds of the inventories and
    the training boreholes (headers and the table itself, no raster), clipped to the
    covariates' extent; None when unknown (GTN-P records, an unreadable file) or empty."""
    if cfg.inputs.gtnp is not None or not (cfg.inputs.inventories or cfg.inputs.boreholes):
        return None
    boxes = []
    try:
        for inv in cfg.inputs.inventories:
            p, layer = split_layer(inv)
            info = pyogrio.read_info(p, layer=layer, force_total_bounds=True)
            if info.get("crs") is None or info.get("total_bounds") is None:
                return None
            boxes.append(Transformer.from_crs(info["crs"], crs, always_xy=True)
                         .transform_bounds(*info["total_bounds"]))
        if cfg.inputs.boreholes is not None:
            bh = read_presence_table(cfg.inputs.boreholes,
                                     columns=cfg.inputs.borehole_columns.mapping() or None,
                                     crs=cfg.inputs.borehole_crs)
            if len(bh) and bh.crs is not None:
                boxes.append(tuple(bh.to_crs(crs).total_bounds))
    except Exception:  # noqa: BLE001 - reported by the column checks; the grid's box stands
        return None
    if not boxes or not np.all(np.isfinite(boxes)):
        return None
    b = np.asarray(boxes, float)
    left, bottom = max(b[:, 0].min(), grid[0]), max(b[:, 1].min(), grid[1])
    right, top = min(b[:, 2].max(), grid[2]), min(b[:, 3].max(), grid[3])
    return (left, bottom, right, top) if left < right and bottom < top else None


def _check_blocks(cfg, resolved, ds, errors) -> None:
    crs = ds.rio.crs
    if crs is None:
        return
    grid = tuple(ds.rio.bounds())
    evidence = _evidence_box(cfg, crs, grid)
    left, bottom, right, top = evidence or grid
    x, y = [left, right], [bottom, top]
    where = ("the labels' evidence (inventories, boreholes) inside the covariates' extent "
             "spans a box that" if evidence else "the covariates' extent")
    for run, c in resolved:
        bs, folds = c.train.block_size_m, c.train.folds
        if bs is None:
            continue
        n = max_blocks(x, y, crs, bs, folds)
        if n is None:
            continue
        fit = _round_down(largest_fitting_block(x, y, crs, folds, bs))
        names = {"block_size": _key_of(cfg, run, "train", "block_size_m"),
                 "folds": _key_of(cfg, run, "train", "folds")}
        e = ParameterError(
            f"{where} holds at most {n} spatial blocks of {bs:,.0f} m, fewer than the "
            f"{folds} folds (the labels, inside it, can only fall into fewer)",
            param="block_size", path=cfg.source, names=names, audience="pipeline",
            fix=f"use a {{block_size}} of at most {fit:,.0f} m, fewer {{folds}}, or leave "
                "{block_size} out (chosen from the labels' autocorrelation)")
        if str(e) not in {str(other) for other in errors}:
            errors.append(e)


def _check_holdout(cfg, ds, errors) -> None:
    """The borehole hold-out's blocks (``validate.holdout_block_m``, when given): not smaller
    than the spatial-CV blocks (``train.block_size_m``; :func:`permafrost.labels.holdout.
    holdout_block_size` refuses it after the labels step), and at least two of them over the
    boreholes' box (:func:`permafrost.labels.holdout.holdout_split` needs a block to hold
    out and one to keep), counted as :func:`max_blocks` counts the CV blocks."""
    v, crs = cfg.validate_, ds.rio.crs
    hb = v.holdout_block_m
    if (hb is None or crs is None or not v.enabled or v.holdout_fraction <= 0
            or cfg.inputs.boreholes is None or cfg.inputs.validation_boreholes is not None):
        return
    key = "validate.holdout_block_m"
    cv_m = cfg.train.block_size_m
    if cv_m is not None and hb < cv_m:
        errors.append(ConfigError(
            f"hold-out blocks of {hb:,.0f} m are smaller than the spatial-CV blocks of "
            f"{cv_m:,.0f} m (train.block_size_m): a held-out borehole would sit beside "
            "training labels of its own CV block", path=cfg.source, field=key,
            fix=f"leave it out (it follows the CV block size) or give at least {cv_m:,.0f}"))
    try:
        bh = read_presence_table(cfg.inputs.boreholes,
                                 columns=cfg.inputs.borehole_columns.mapping() or None,
                                 crs=cfg.inputs.borehole_crs)
        left, bottom, right, top = bh.to_crs(crs).total_bounds
    except Exception:  # noqa: BLE001 - the column checks report an unreadable table
        return
    if not (len(bh) and np.all(np.isfinite([left, bottom, right, top]))):
        return
    n = max_blocks([left, right], [bottom, top], crs, hb, 2)
    if n is not None:
        fit = _round_down(largest_fitting_block([left, right], [bottom, top], crs, 2, hb))
        errors.append(ConfigError(
            f"the boreholes span a box that holds at most {n} hold-out block of {hb:,.0f} m: "
            "holding out whole blocks needs one to hold out and one to keep", path=cfg.source,
            field=key, fix=f"give at most {fit:,.0f} m, give inputs.validation_boreholes, or "
                           "set validate.holdout_fraction = 0"))


def _check_columns(cfg, resolved, error, from_library) -> None:
    inp = cfg.inputs
    if inp.regions is not None:
        cols = _vector_columns(inp.regions.path, error, "inputs.regions.path")
        if cols is not None and inp.regions.field not in cols:
            e = ParameterError(f"no region name column {inp.regions.field!r} in "
                               f"{inp.regions.path}", param="region_field",
                               fix=f"name one with {{region_field}} (columns: "
                                   f"{', '.join(cols) or 'none'})")
            e = for_pipeline(e, cfg.source)
            error(e.field, e.problem, e.fix)
    activity = {c.labels.activity_column: _key_of(cfg, run, "labels", "activity_column")
                for run, c in resolved}
    for i, inv in enumerate(inp.inventories):
        cols = _vector_columns(inv, error, f"inputs.inventories[{i}]")
        if cols is None:
            continue
        lower = {c.lower() for c in cols}
        for col, key in activity.items():
            if col.lower() not in lower:
                error(key, f"no activity column {col!r} in {inv} (columns: "
                      f"{', '.join(cols)})", "name the inventory's activity column")
    for file_key, cols_key, crs_key in (("boreholes", "borehole_columns", "borehole_crs"),
                                        ("validation_boreholes", "validation_borehole_columns",
                                         "validation_borehole_crs")):
        path = getattr(inp, file_key)
        if path is None:
            continue
        mapping = getattr(inp, cols_key).mapping()
        try:
            read_presence_table(path, columns=mapping or None, crs=getattr(inp, crs_key))
        except PermafrostError as exc:
            role = next((r for r, col in mapping.items() if exc.field in (col, r)), None)
            from_library(exc, f"inputs.{cols_key}.{role}" if role else f"inputs.{file_key}")


def _vector_columns(path: Path, error, key: str) -> list[str] | None:
    """The attribute columns of a vector file (its header; no feature is read)."""
    p, layer = split_layer(path)
    try:
        info = pyogrio.read_info(p, layer=layer)
    except Exception as exc:  # noqa: BLE001 - any reader failure is the input's problem
        error(key, f"cannot read the columns of {path} ({type(exc).__name__}: "
              f"{str(exc).splitlines()[0] if str(exc) else ''})", "check the file")
        return None
    return [str(c) for c in info["fields"]]
