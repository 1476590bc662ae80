"""QGIS styles out: a ``.qml`` beside each raster, a ``layer_styles`` table in each GeoPackage.

The styles themselves (colours, classes, units) are :mod:`permafrost.styles`'s; this module
only writes them where QGIS looks:

* a raster ``pzi.tif`` gets ``pzi.qml`` beside it (QGIS loads ``<name>.qml`` as the layer's
  default style when it opens ``<name>.tif``);
* a GeoPackage layer gets a row in the GeoPackage's ``layer_styles`` table (the table QGIS
  itself writes with "Save style to datasource database", ``useAsDefault`` = 1), registered
  in ``gpkg_contents`` as an attribute table. Readers of this tool do not count it as a
  second layer (:func:`permafrost.io.vectors.read_vector`).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from permafrost.io.atomic import atomic_write_text
from permafrost.io.rasters import write_cog
from permafrost.styles import layer, raster_qml, vector_qml

__all__ = ["qml_path", "write_gpkg_style", "write_layer_cog", "write_raster_style"]

#: the time recorded with a GeoPackage style (fixed: the same features give the same bytes)
_FIXED_TIME = "2000-01-01T00:00:00.000Z"

_LAYER_STYLES = (
    "CREATE TABLE IF NOT EXISTS layer_styles (id INTEGER PRIMARY KEY AUTOINCREMENT, "
    "f_table_catalog TEXT(256), f_table_schema TEXT(256), f_table_name TEXT(256), "
    "f_geometry_column TEXT(256), styleName TEXT(30), styleQML TEXT, styleSLD TEXT, "
    "useAsDefault BOOLEAN, description TEXT, owner TEXT(30), ui TEXT(30), "
    "update_time DATETIME)")


def qml_path(raster: str | os.PathLike) -> Path:
    """Where QGIS looks for a raster's default style: ``<stem>.qml`` beside it."""
    p = Path(raster)
    return p.with_suffix(".qml")


def write_raster_style(raster: str | os.PathLike, kind: str, *, vmax: float | None = None,
                       classes: dict | None = None) -> Path:
    """Write the QGIS style of ``kind`` (:data:`permafrost.styles.LAYERS`) beside ``raster``,
    atomically; returns the ``.qml`` path."""
    return atomic_write_text(qml_path(raster), raster_qml(kind, vmax=vmax, classes=classes))


def write_layer_cog(data, path: str | os.PathLike, kind: str, *, vmax: float | None = None,
                    classes: dict | None = None, **kwargs) -> Path:
    """Write a COG of the layer ``kind`` (:func:`permafrost.io.rasters.write_cog` with the
    layer's band unit and description, :data:`permafrost.styles.LAYERS`) and its QGIS style
    beside it (``vmax`` and ``classes`` as for :func:`permafrost.styles.raster_qml`)."""
    lay = layer(kind)
    kwargs.setdefault("description", lay.description)
    out = write_cog(data, path, units=lay.unit, **kwargs)
    write_raster_style(out, kind, vmax=vmax, classes=classes)
    return out


def write_gpkg_style(gpkg: str | os.PathLike, layer: str, kind: str) -> Path:
    """Put the QGIS style of ``kind`` into ``gpkg``'s ``layer_styles`` table as ``layer``'s
    default style (replacing an earlier one of the same layer)."""
    path = Path(gpkg)
    con = sqlite3.connect(path)
    try:
        with con:
            geom = con.execute("SELECT column_name FROM gpkg_geometry_columns "
                               "WHERE table_name = ?", (layer,)).fetchone()
            con.execute(_LAYER_STYLES)
            con.execute("DELETE FROM layer_styles WHERE f_table_name = ?", (layer,))
            con.execute(
                "INSERT INTO layer_styles (f_table_catalog, f_table_schema, f_table_name, "
                "f_geometry_column, styleName, styleQML, styleSLD, useAsDefault, description, "
                "owner, ui, update_time) VALUES ('', '', ?, ?, ?, ?, '', 1, ?, '', '', ?)",
                (layer, geom[0] if geom else "geom", layer, vector_qml(kind),
                 f"permafrost style: {kind}", _FIXED_TIME))
            con.execute("INSERT OR REPLACE INTO gpkg_contents (table_name, data_type, "
                        "identifier, description, last_change) VALUES ('layer_styles', "
                        "'attributes', 'layer_styles', '', ?)", (_FIXED_TIME,))
    finally:
        con.close()
    return path
