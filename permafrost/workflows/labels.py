"""Labels from files: :func:`labels_from_files` reads the inventories, borehole tables and
records, the grid and the DEM, runs :func:`permafrost.labels.build_labels` and writes the labels
(the ``labels`` command and pipeline step)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from permafrost.defaults import CHUNK
from permafrost.errors import DataError, ParameterError, format_message
from permafrost.io.atomic import atomic_write_text
from permafrost.io.boreholes import (
    read_borehole_coords,
    read_gtnp,
    read_permos,
    read_presence_table,
)
from permafrost.io.guard import Output, check_outputs
from permafrost.io.rasters import read_raster
from permafrost.io.vectors import read_vector, write_vector
from permafrost.labels import LabelSet, NoLabelsError, build_labels
from permafrost.options import check_crs, check_options

__all__ = ["labels_from_files", "IN_MEMORY_DEM_BYTES"]

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
