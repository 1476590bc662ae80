"""Labels from files: :func:`labels_from_files` reads the inventories, borehole tables and
records, the grid and the DEM, runs :func:`permafrost.labels.build_labels` and writes the
labels; :func:`training_labels_from_files` adds what the pipeline's labels step does around it
(InSAR evidence weighed against the inventories, the spatial hold-out of boreholes, and the
accounting of every candidate label).  The ``labels`` command and the pipeline's labels step
both call :func:`training_labels_from_files`, so they give the same labels."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from permafrost.cv import covariate_ranges
from permafrost.defaults import CHUNK
from permafrost.errors import DataError, ParameterError, format_message
from permafrost.io.atomic import atomic_write_text
from permafrost.io.boreholes import (
    read_borehole_coords,
    read_gtnp,
    read_permos,
    read_presence_table,
    read_table_rows,
)
from permafrost.io.guard import Output, check_outputs
from permafrost.io.rasters import read_raster
from permafrost.io.results import write_json
from permafrost.io.vectors import read_vector, write_vector
from permafrost.labels import (
    LabelSet,
    NoLabelsError,
    account_candidates,
    apply_holdout,
    build_labels,
    combine_activity,
    covariate_quantiles,
    holdout_block_size,
    holdout_split,
    insar_changes,
    inventories_with_evidence,
)
from permafrost.options import check_crs, check_options
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.kinematics import run_kinematics

__all__ = ["labels_from_files", "training_labels_from_files", "hold_out_boreholes",
           "inventories_from_kinematics", "LabelFiles", "TrainingLabels",
           "IN_MEMORY_DEM_BYTES"]

#: DEMs up to this size [bytes] are read into memory by :func:`labels_from_files`; larger ones
#: stay lazy (Dask) and only the windows around outlines are read.
IN_MEMORY_DEM_BYTES = 256 * 2**20


#: the tables written beside the labels (``<stem>_<name>.csv``)
SIDE_TABLES = ("summary", "dropped", "conflicts", "verdicts")


def side_file(out, name: str) -> Path:
    """The side table ``name`` of the labels output ``out``: ``<stem>_<name>.csv``."""
    out = Path(out)
    return out.with_name(f"{out.stem}_{name}.csv")


# --------------------------------------------------------------------------- files in, files out
def labels_from_files(
    *,
    inventories=(),
    boreholes=(),
    gtnp=(),
    permos=(),
    permos_coords=None,
    grid=None,
    dem=None,
    out=None,
    borehole_crs=None,
    borehole_columns=None,
    **options,
) -> LabelSet:
    """Read the inputs, run :func:`build_labels` and write the result (the ``labels`` CLI step).

    All file handling goes through :mod:`permafrost.io`; this function only wires readers,
    :func:`permafrost.labels.build_labels` and writers together.

    Parameters
    ----------
    inventories : list of path or GeoDataFrame
        Rock glacier inventories (any vector format).
    boreholes : list of path or GeoDataFrame
        Presence tables (CSV or vector).
    gtnp : list of (csv path, metadata JSON path)
        GTN-P long-format records.
    permos : list of path
        PERMOS wide-format files; positions from ``permos_coords``.
    permos_coords : path, optional
        CSV ``borehole_id, lon, lat[, elevation_m]`` for the PERMOS files (ids from their
        header ``Borehole <id>`` or the file stem).
    grid, dem : path, optional
        Reference grid raster (default: the DEM) and DEM [m].
    out : path, optional
        Output GeoPackage of the points (layer ``labels``); the summary, dropped inputs,
        conflicts and temperature verdicts are written beside it as ``<stem>_summary.csv``,
        ``<stem>_dropped.csv``, ``<stem>_conflicts.csv``, ``<stem>_verdicts.csv``.
    borehole_crs : optional
        CRS of x/y columns in presence tables.
    borehole_columns : dict, optional
        Column names by role in presence tables (and the PERMOS coordinates table): ``id``,
        ``x``, ``y``, ``presence``, ``magt``, ``elevation``, ``year``; see
        :func:`permafrost.io.boreholes.read_presence_table`.
    **options
        Passed to :func:`permafrost.labels.build_labels` (``activity_column``,
        ``sampling``, ``spacing_m``, weights, ``outside`` ...).

    Returns
    -------
    LabelSet
        The points, summary, dropped inputs, conflicts and temperature verdicts.

    Raises
    ------
    NoLabelsError
        No label is left; with ``out``, the reasons are written beside it first and the
        error names them (``written``).
    """
    # bounds of the options and a known CRS, before any file is read
    check_options(**{k: options[k] for k in ("spacing_m", "rock_glacier_weight",
                                             "borehole_weight") if k in options})
    if borehole_crs is not None:
        check_crs(borehole_crs, field="borehole_crs")
    if out is not None:
        check_outputs([Output(out, "--out", layer="labels", what="labels"),
                       *(Output(side_file(out, name), f"the {name} table beside --out")
                         for name in SIDE_TABLES)],
                      {"--inventory": inventories, "--boreholes": boreholes, "--gtnp": gtnp,
                       "--permos": permos, "--permos-coords": permos_coords, "--grid": grid,
                       "--dem": dem})
    # paths, or already-read GeoDataFrames (``attrs["source"]`` names their origin)
    invs = [p if isinstance(p, gpd.GeoDataFrame) else read_vector(p) for p in inventories]
    tables = [p if isinstance(p, gpd.GeoDataFrame)
              else read_presence_table(p, crs=borehole_crs, columns=borehole_columns)
              for p in boreholes]
    records = []
    for csv, meta in gtnp:
        records += read_gtnp(csv, meta)
    if permos:
        if permos_coords is None:
            raise ParameterError("PERMOS files carry no coordinates", path=permos[0],
                                 param="permos_coords",
                                 fix="give {permos_coords} (CSV borehole_id,lon,lat"
                                     "[,elevation_m])")
        coords = read_borehole_coords(permos_coords, columns=borehole_columns)
        for p in permos:
            rec = read_permos(p, coords=coords)
            if rec.borehole_id not in coords.index:
                raise DataError(f"no coordinates for borehole {rec.borehole_id!r}",
                                path=permos_coords, field="borehole_id",
                                fix=f"add a row for {rec.borehole_id} (ids in the table: "
                                    f"{', '.join(coords.index[:8])})")
            records.append(rec)
    # lazy (Dask) reads: only the windows around outlines and the sampled cells are loaded
    dem_da = (read_raster(dem, name="dem", chunks=CHUNK, role="elevation") if dem is not None
              else None)
    if dem_da is not None and dem_da.nbytes <= IN_MEMORY_DEM_BYTES:
        dem_da = dem_da.load()  # small DEM: one read beats hundreds of window reads
    grid_da = read_raster(grid, name="grid", chunks=CHUNK) if grid is not None else None
    try:
        result = build_labels(inventories=invs, borehole_tables=tables,
                              temperature_records=records, grid=grid_da, dem=dem_da, **options)
    except NoLabelsError as exc:
        # the reasons are the answer: write them, say where, and still fail (exit 2)
        if out is not None:
            out = Path(out)
            written = []
            for name, df in (("summary", exc.partial.summary), ("dropped", exc.partial.dropped),
                             ("verdicts", exc.partial.verdicts)):
                if name == "verdicts" and not records:
                    continue
                f = side_file(out, name)
                atomic_write_text(f, df.to_csv(index=False))
                written.append(f.name)
            exc.written = [out.parent / w for w in written]
            exc.fix = f"{exc.fix}; reasons written to {', '.join(written)} in {out.parent}"
            exc.args = (format_message(exc.problem, path=exc.path, field=exc.field,
                                       fix=exc.fix),)
        raise
    if out is not None:
        out = Path(out)
        write_vector(result.points, out, layer="labels", style="labels")
        for name, df in (("summary", result.summary), ("dropped", result.dropped),
                         ("conflicts", result.conflicts), ("verdicts", result.verdicts)):
            atomic_write_text(side_file(out, name), df.to_csv(index=False))
    return result


# --------------------------------------------------------------------------- the training labels
@dataclass(frozen=True)
class LabelFiles:
    """The files :func:`training_labels_from_files` writes besides the labels and their side
    tables (:data:`SIDE_TABLES`).

    Attributes
    ----------
    labels : Path
        The labelled points (GeoPackage, layer ``labels``).
    activity : Path
        The outlines with the activity InSAR gave them (:func:`permafrost.labels.
        combine_activity`; layer ``rock_glaciers``), when InSAR was weighed in.
    holdout : Path
        The held-out boreholes: the input rows as they were for a CSV table (this path
        with ``.csv``), else a GeoPackage (``.gpkg``).
    holdout_blocks : Path
        The held-out blocks (GeoPackage, layer ``holdout_blocks``).
    candidates : Path
        One row per candidate label (CSV, :func:`permafrost.labels.account_candidates`).
    accounting : Path
        The accounting (JSON): counts by kind, status and reason, weights, what InSAR
        changed, the covariate quantiles.  The report reads it beside the labels.
    """

    labels: Path
    activity: Path
    holdout: Path
    holdout_blocks: Path
    candidates: Path
    accounting: Path

    @classmethod
    def beside(cls, out) -> LabelFiles:
        """``<stem>_activity.gpkg``, ``<stem>_holdout.csv|gpkg``,
        ``<stem>_holdout_blocks.gpkg``, ``<stem>_candidates.csv`` and
        ``<stem>_accounting.json`` beside ``out`` (the ``labels`` command's files)."""
        out = Path(out)
        return cls(labels=out, activity=out.with_name(f"{out.stem}_activity.gpkg"),
                   holdout=out.with_name(f"{out.stem}_holdout.csv"),
                   holdout_blocks=out.with_name(f"{out.stem}_holdout_blocks.gpkg"),
                   candidates=side_file(out, "candidates"),
                   accounting=accounting_file(out))


def accounting_file(labels) -> Path:
    """The accounting JSON beside a labels file: ``<stem>_accounting.json``."""
    labels = Path(labels)
    return labels.with_name(f"{labels.stem}_accounting.json")


@dataclass
class TrainingLabels:
    """The result of :func:`training_labels_from_files`.

    Attributes
    ----------
    labels : LabelSet
        The training labels (after the hold-out, if any).
    holdout : dict or None
        The hold-out's summary (block sizes and rules, counts, the covariate ranges that
        chose the block size); None without a hold-out.
    files : dict
        What was written, by name (``labels``, ``summary``, ``activity``, ``holdout``,
        ``holdout_blocks``, ``candidates``, ``accounting``).
    accounting : dict
        The accounting written to ``files["accounting"]``.
    """

    labels: LabelSet
    holdout: dict | None = None
    files: dict = field(default_factory=dict)
    accounting: dict = field(default_factory=dict)


def inventories_from_kinematics(kinematics, inventories: Sequence, *, outlines=None,
                                activity_column: str = "activity", activity_out=None
                                ) -> list[gpd.GeoDataFrame]:
    """The inventories to label from, with InSAR evidence weighed in.

    The kinematics (the output of ``permafrost kinematics``, a path or a GeoDataFrame)
    go through :func:`permafrost.labels.combine_activity`.  When they were computed on
    the first inventory's outlines (``outlines`` is None or that file), the combined
    outlines replace it; otherwise :func:`permafrost.labels.inventories_with_evidence`
    matches them to the inventories by rock glacier id.  Label the result with
    ``activity_column="activity_evidence"``.

    Parameters
    ----------
    kinematics : path-like or geopandas.GeoDataFrame
        The kinematics of the outlines.
    inventories : sequence of path-like
        The rock glacier inventories.
    outlines : path-like, optional
        The outline file the kinematics were computed on (default: the first inventory).
    activity_column : str
        The inventories' activity column.
    activity_out : path-like, optional
        Where to write the combined outlines (layer ``rock_glaciers``).

    Returns
    -------
    list of geopandas.GeoDataFrame
    """
    kin = kinematics if isinstance(kinematics, gpd.GeoDataFrame) else read_vector(kinematics)
    combined = combine_activity(kin, inventory_column=activity_column)
    if activity_out is not None:
        write_vector(combined, activity_out, layer="rock_glaciers", style="rock_glaciers")
    inventories = list(inventories)
    first = inventories[0] if inventories else None
    outlines = first if outlines is None else outlines
    combined.attrs["source"] = str(outlines)  # the labels name the input outlines
    if first is not None and _same_file(outlines, first):
        # the kinematics carry every outline of the first inventory
        return [combined, *inventories[1:]]
    return inventories_with_evidence(combined, [read_vector(p) for p in inventories],
                                     activity_column)


def _same_file(a, b) -> bool:
    if a is None or b is None:
        return False
    if Path(a) == Path(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def hold_out_boreholes(labels: LabelSet, boreholes, *, holdout_fraction: float,
                       holdout_block_m: float | None = None, block_size: float | None = None,
                       seed: int = 0, covariates=None, features=None,
                       borehole_columns=None, borehole_crs=None, holdout_out=None,
                       blocks_out=None) -> tuple[LabelSet, Path | None, dict]:
    """Hold out whole blocks of boreholes for validation, and every label near them.

    The block side is :func:`permafrost.labels.holdout_block_size` (at least the
    spatial-CV block: ``block_size`` given, else the larger of the labels' variogram range
    and the covariates' median range of autocorrelation,
    :func:`permafrost.cv.covariate_ranges`, when ``covariates`` are given); the blocks are
    drawn by :func:`permafrost.labels.holdout_split` with the rows of the borehole table
    as candidates, and :func:`permafrost.labels.apply_holdout` drops every label of any
    source inside a held-out block, in a group reaching into one, or at a held-out site
    (Roberts et al. 2017).

    Parameters
    ----------
    labels : LabelSet
        All labels (:func:`labels_from_files`), every source.
    boreholes : path-like
        The borehole presence table the labels read (the candidates).
    holdout_fraction : float
        Share of the boreholes to hold out [-], in (0, 1).
    holdout_block_m : float, optional
        Side of the held-out blocks [m] (default: the CV block side).
    block_size : float, optional
        Side of the spatial-CV blocks [m] (default: derived, see above).
    seed : int
        Seed of the variogram samples and of the block draw.
    covariates : path-like, optional
        Covariate directory or stack file (their autocorrelation range, when
        ``block_size`` is None).
    features : list of str, optional
        Covariates of the range (default: all).
    borehole_columns, borehole_crs : optional
        How the table is read (:func:`permafrost.io.boreholes.read_presence_table`).
    holdout_out, blocks_out : path-like, optional
        The held-out rows (suffix ``.csv`` for a CSV table, the rows as they were; else
        ``.gpkg``) and the held-out blocks (GeoPackage).

    Returns
    -------
    training, held, info
        The training labels, the held-out file (None when not written) and the summary.

    References
    ----------
    Roberts, D. R. et al. (2017). Ecography 40, 913-929, doi:10.1111/ecog.02881.
    """
    table = read_presence_table(boreholes, columns=borehole_columns, crs=borehole_crs)
    cov = None
    if block_size is None and covariates is not None:  # "auto": the covariates' range counts
        stack = build_stack(covariates, chunks=CHUNK)
        cov = covariate_ranges(stack, features, seed=seed)
    hold_m, cv_m, rule = holdout_block_size(labels.points, cv_block_m=block_size,
                                            holdout_block_m=holdout_block_m, seed=seed,
                                            covariate_range_m=cov["median_m"] if cov else None)
    split = holdout_split(labels.points, candidates=table, seed=seed, block_m=hold_m,
                          fraction=holdout_fraction)
    hold = split.holdout
    training = apply_holdout(labels, split)
    held = None
    if holdout_out is not None:
        src = Path(boreholes)
        raw = None
        if src.suffix.lower() == ".csv":  # the held-out rows of the input, as the table read them
            raw, sep = read_table_rows(src, what="borehole table")
        if raw is not None and len(raw) == len(table):
            held = Path(holdout_out).with_suffix(".csv")
            atomic_write_text(held, raw[hold].to_csv(index=False, sep=sep))
        else:
            held = Path(holdout_out).with_suffix(".gpkg")
            vec = table if raw is not None else read_vector(src)
            write_vector(vec[hold], held, layer="boreholes_holdout", style="boreholes")
    if blocks_out is not None:
        write_vector(split.blocks, blocks_out, layer="holdout_blocks", style="holdout_blocks")
    left = labels.points[~split.train]
    pres = pd.to_numeric(table["presence"], errors="coerce")[hold]
    info = {"block_m": hold_m, "cv_block_m": cv_m, "cv_block_rule": rule,
            "covariate_ranges": cov,
            "blocks_held_out": len(split.blocks), "blocks_with_boreholes": split.n_candidate_blocks,
            "boreholes": int(hold.sum()), "boreholes_permafrost": int((pres == 1).sum()),
            "boreholes_no_permafrost": int((pres == 0).sum()),
            "dropped_from_training": {k: int(v) for k, v in
                                      left["source"].value_counts().sort_index().items()},
            "note": split.note,
            # the ids of the held-out boreholes (the accounting's "held out")
            "_ids": table["borehole_id"].astype(str)[hold].tolist()}
    return training, held, info


def training_labels_from_files(
    *,
    out,
    inventories: Sequence = (),
    boreholes: Sequence = (),
    gtnp: Sequence = (),
    permos: Sequence = (),
    permos_coords=None,
    grid=None,
    dem=None,
    borehole_crs=None,
    borehole_columns=None,
    kinematics=None,
    tracks: Sequence = (),
    outlines=None,
    holdout_fraction: float = 0.0,
    holdout_block_m: float | None = None,
    block_size: float | None = None,
    seed: int = 0,
    covariates=None,
    features: Sequence[str] | None = None,
    activity_column: str = "activity",
    id_column: str | None = None,
    files: LabelFiles | None = None,
    **options: Any,
) -> TrainingLabels:
    """The labels a model trains on, from files: what ``permafrost labels`` and the
    pipeline's labels step both do.

    1. **InSAR evidence** (with ``kinematics``, the output of ``permafrost kinematics``, or
       ``tracks``, which are run through :func:`permafrost.workflows.kinematics.
       run_kinematics` on ``outlines`` with the default thresholds): the inventories'
       activity weighed against InSAR (:func:`inventories_from_kinematics`).
    2. **Labels** of every source: :func:`labels_from_files`.
    3. **Hold-out** (``holdout_fraction`` > 0): whole blocks of the borehole table held
       out for validation and every label near them left out of training
       (:func:`hold_out_boreholes`).
    4. **Accounting**: every candidate label kept, held out or dropped, by reason and
       source, with its weight (:func:`permafrost.labels.account_candidates`), what InSAR
       changed (:func:`permafrost.labels.insar_changes`) and, with ``covariates``, the
       training labels' covariate quantiles against the landscape's
       (:func:`permafrost.labels.covariate_quantiles`).

    Parameters
    ----------
    out : path-like
        The labels GeoPackage; the side tables and ``files`` are written beside it.
    inventories, boreholes, gtnp, permos, permos_coords, grid, dem, borehole_crs, \
borehole_columns
        As :func:`labels_from_files`.
    kinematics : path-like, optional
        The GeoPackage of ``permafrost kinematics`` (or the pipeline's kinematics step).
    tracks : sequence, optional
        MintPy tracks (folders, ``velocity.h5`` files or track specs), instead of
        ``kinematics``.
    outlines : path-like, optional
        The outlines the kinematics were (or are) computed on (default: the first
        inventory).
    holdout_fraction : float
        Share of the table's boreholes held out for validation [-]; 0: no hold-out.
    holdout_block_m, block_size : float, optional
        Held-out and spatial-CV block sides [m] (see :func:`hold_out_boreholes`).
    seed : int
        Seed of the hold-out and of the landscape sample.
    covariates : path-like, optional
        Covariate directory or stack file: the block size's autocorrelation range and
        the covariate quantiles.
    features : sequence of str, optional
        The covariates used (default: all).
    activity_column, id_column : str
        The inventories' activity and id columns.
    files : LabelFiles, optional
        Where the other outputs go (default :meth:`LabelFiles.beside` ``out``).
    **options
        Passed to :func:`permafrost.labels.build_labels` (``sampling``, ``spacing_m``,
        weights, ``outside``).

    Returns
    -------
    TrainingLabels

    Raises
    ------
    ParameterError
        Both ``kinematics`` and ``tracks``; InSAR without inventories; a hold-out without
        exactly one borehole table.
    NoLabelsError
        As :func:`labels_from_files`.
    """
    files = files or LabelFiles.beside(out)
    if kinematics is not None and len(tracks):
        raise ParameterError("both kinematics and tracks given", param="kinematics",
                             fix="give {kinematics} (computed) or {tracks} (computed here)")
    insar = kinematics is not None or bool(len(tracks))
    if insar and not len(inventories) and outlines is None:
        raise ParameterError("InSAR evidence needs outlines", param="tracks",
                             fix="give {inventories} (or {outlines})")
    holds = holdout_fraction is not None and holdout_fraction > 0
    check_options(holdout_fraction=holdout_fraction, holdout_block_m=holdout_block_m,
                  block_size=block_size, seed=seed)
    if holds and (len(boreholes) != 1 or isinstance(boreholes[0], gpd.GeoDataFrame)):
        raise ParameterError(f"a hold-out needs one borehole table, got {len(boreholes)}",
                             param="holdout_fraction",
                             fix="give one {boreholes} table, or set {holdout_fraction} to 0")
    extra = [Output(files.candidates, "the candidates table beside --out"),
             Output(files.accounting, "the accounting beside --out")]
    if insar:
        extra.append(Output(files.activity, "the activity outlines beside --out",
                            layer="rock_glaciers"))
    if holds:
        extra += [Output(files.holdout.with_suffix(".csv"), "the held-out boreholes beside --out"),
                  Output(files.holdout.with_suffix(".gpkg"), "the held-out boreholes beside --out",
                         layer="boreholes_holdout"),
                  Output(files.holdout_blocks, "the held-out blocks beside --out",
                         layer="holdout_blocks")]
    check_outputs(extra, {"--inventory": inventories, "--boreholes": boreholes,
                          "--kinematics": kinematics, "--outlines": outlines,
                          "--covariates": covariates})
    invs = list(inventories)
    column = activity_column
    written: dict = {}
    if insar:
        kin = kinematics
        if len(tracks):
            kin = run_kinematics(list(tracks), outlines if outlines is not None else invs[0],
                                 dem=dem).outlines
        invs = inventories_from_kinematics(kin, invs, outlines=outlines,
                                           activity_column=activity_column,
                                           activity_out=files.activity)
        column = "activity_evidence"
        written["activity"] = files.activity
    everything = labels_from_files(inventories=invs, boreholes=boreholes, gtnp=gtnp,
                                   permos=permos, permos_coords=permos_coords, grid=grid,
                                   dem=dem, out=out, borehole_crs=borehole_crs,
                                   borehole_columns=borehole_columns, activity_column=column,
                                   id_column=id_column, **options)
    out = Path(out)
    written.update(labels=out, summary=side_file(out, "summary"))
    training, info, held_ids = everything, None, []
    if holds:  # labels of every source, then whole blocks held out of training
        training, held, info = hold_out_boreholes(
            everything, boreholes[0], holdout_fraction=holdout_fraction,
            holdout_block_m=holdout_block_m, block_size=block_size, seed=seed,
            covariates=covariates, features=None if features is None else list(features),
            borehole_columns=borehole_columns, borehole_crs=borehole_crs,
            holdout_out=files.holdout, blocks_out=files.holdout_blocks)
        held_ids = info.pop("_ids")
        write_vector(training.points, out, layer="labels", style="labels")
        for name, df in (("summary", training.summary), ("dropped", training.dropped)):
            atomic_write_text(side_file(out, name), df.to_csv(index=False))
        written.update(holdout=held, holdout_blocks=files.holdout_blocks)
    # the accounting: the same inputs the labels read, read again (small vector files)
    acc_invs = [p if isinstance(p, gpd.GeoDataFrame) else read_vector(p) for p in invs]
    tables = [p if isinstance(p, gpd.GeoDataFrame)
              else read_presence_table(p, crs=borehole_crs, columns=borehole_columns)
              for p in boreholes]
    table, acc = account_candidates(everything, training, inventories=acc_invs,
                                    activity_column=column, id_column=id_column,
                                    borehole_tables=tables, held_out=held_ids)
    acc["weights"] = {k: options[k] for k in ("rock_glacier_weight", "borehole_weight")
                      if k in options}
    acc["insar"] = insar_changes(acc_invs, activity_column) if insar else None
    if covariates is not None and len(training.points):
        stack = build_stack(covariates, chunks=CHUNK)
        acc["covariates"] = covariate_quantiles(stack, training.points, features, seed=seed)
    else:
        acc["covariates"] = None
    acc["holdout"] = info
    atomic_write_text(files.candidates, table.to_csv(index=False))
    write_json(acc, files.accounting)
    written.update(candidates=files.candidates, accounting=files.accounting)
    return TrainingLabels(labels=training, holdout=info, files=written, accounting=acc)
