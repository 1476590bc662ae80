"""Borehole readers: presence tables, GTN-P long-format temperatures, PERMOS wide-format temperatures.

No science here: readers parse, check and hand back tables.  Presence from temperatures is
decided in :mod:`permafrost.ground_thermal`.

Formats
-------
* **Presence table** (CSV or any vector format): an id column, a position (``lon``/``lat``,
  or ``x``/``y`` with a CRS; or point geometries in a vector file), a presence column
  (1/0, true/false, yes/no, y/n, permafrost/non-permafrost, present/absent; case- and
  whitespace-insensitive; empty = unknown) and optionally MAGT [°C] and year.
* **GTN-P long CSV** ``id,date,depth,temperature,flag,dataset_id,borehole_id,site_id`` plus
  the GTN-P metadata JSON (a list of dataset records, each with ``borehole.location``).
* **PERMOS wide CSV**: optional free-text header lines, then ``Time,<depth_m>,...`` and one
  row per timestamp; empty, ``NA`` or -999 = missing.  Coordinates are not in the files and
  are given alongside (arguments or a small coordinates table).

Text tables are read by :func:`read_table_text`: only a regular file of at most
:data:`MAX_TABLE_BYTES` (a link to ``/dev/zero`` is refused before a byte is read); UTF-8
(with or without BOM) or UTF-16/UTF-32 with a BOM (Excel's "Unicode text"); any other
bytes are refused with the line and the fix (save as "CSV UTF-8"), never guessed (a legacy
code page is Windows-1252 on one machine and GBK on the next, and a wrong guess would
change ids silently).  Rows whose every field is empty (Excel's trailing ``,,,,`` rows) are
not data and are skipped.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError
from permafrost.io.results import load_json
from permafrost.io.vectors import (
    VECTOR_SUFFIXES,
    check_coordinates,
    check_input_file,
    read_vector,
    split_layer,
)

__all__ = [
    "BoreholeRecord",
    "COLUMN_SPELLINGS",
    "COLUMN_ROLES",
    "normalise_column",
    "parse_column_options",
    "PRESENCE_TRUE",
    "PRESENCE_FALSE",
    "parse_presence",
    "read_presence_table",
    "read_table_text",
    "read_table_rows",
    "MAX_TABLE_BYTES",
    "read_borehole_coords",
    "read_gtnp",
    "read_permos",
]

log = logging.getLogger(__name__)

#: the largest text table read [bytes]: it is read into memory whole (a presence table of
#: a million boreholes is about 100 MB; GTN-P long files of many sensors are larger)
MAX_TABLE_BYTES = 1 * 2**30

PRESENCE_TRUE = frozenset({"1", "1.0", "true", "t", "yes", "y", "permafrost", "present",
                           "presence"})
PRESENCE_FALSE = frozenset({"0", "0.0", "false", "f", "no", "n", "non-permafrost",
                            "nonpermafrost", "non permafrost", "non_permafrost", "no permafrost",
                            "no-permafrost", "absent", "absence", "seasonally frozen"})
_MISSING = frozenset({"", "na", "nan", "none", "null", "n/a", "-"})
_MISSING_NUMBERS = (-999.0, -9999.0)

#: Column spellings recognised in borehole tables, per role, compared after
#: :func:`normalise_column` (case-insensitive; spaces, brackets and units' punctuation
#: folded to ``_``), first match wins.  Any other name is given with ``columns={ROLE: NAME}``
#: (pipeline files) or ``--borehole-column ROLE=NAME`` (CLI).
COLUMN_SPELLINGS: dict[str, tuple[str, ...]] = {
    "id": ("borehole_id", "id", "name", "site", "borehole", "borehole_name", "bh_id",
           "site_id", "station", "station_id", "code"),
    "lon": ("lon", "longitude", "long", "lng", "lon_deg", "longitude_deg", "lon_wgs84",
            "longitude_e", "lon_e"),
    "lat": ("lat", "latitude", "lat_deg", "latitude_deg", "lat_wgs84", "latitude_n", "lat_n"),
    "x": ("x", "easting", "east", "x_m", "easting_m", "x_coord"),
    "y": ("y", "northing", "north", "y_m", "northing_m", "y_coord"),
    "presence": ("presence", "permafrost", "pf", "pf_presence", "permafrost_presence",
                 "permafrost_present", "has_permafrost", "pf_status", "permafrost_status"),
    "magt": ("magt_c", "magt", "magt_degc", "magt_deg_c", "mean_annual_ground_temperature",
             "t_zaa", "tzaa", "ttop"),
    "elevation": ("elevation_m", "elevation", "elev", "elev_m", "altitude", "altitude_m",
                  "height", "height_m", "z", "dem"),
    "year": ("year", "yr", "obs_year", "observation_year", "survey_year", "drilling_year"),
}
#: the roles a column mapping may name (``x``/``y`` stand for lon/lat too)
COLUMN_ROLES = ("id", "x", "y", "presence", "magt", "elevation", "year")

_ID_COLUMNS = COLUMN_SPELLINGS["id"]
_LON_COLUMNS = COLUMN_SPELLINGS["lon"]
_LAT_COLUMNS = COLUMN_SPELLINGS["lat"]


def normalise_column(name) -> str:
    """A column name compared case- and punctuation-insensitively: ``'Elevation (m)'`` ->
    ``'elevation_m'``, ``'MAGT [°C]'`` -> ``'magt_c'``."""
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower()).strip("_")


def parse_column_options(items) -> dict[str, str]:
    """``["presence=Permafrost", "x=Longitude"]`` (CLI ``--borehole-column``) -> a mapping.

    Raises
    ------
    DataError
        An item without ``=`` or a role that is not one of :data:`COLUMN_ROLES`.
    """
    out: dict[str, str] = {}
    for it in items or ():
        role, sep, name = str(it).partition("=")
        role = role.strip().lower()
        role = {"lon": "x", "longitude": "x", "lat": "y", "latitude": "y",
                "magt_c": "magt"}.get(role, role)
        if not sep or not name.strip() or role not in COLUMN_ROLES:
            raise DataError(f"bad column mapping {it!r}", field="--borehole-column",
                            fix=f"give ROLE=COLUMN with ROLE one of {', '.join(COLUMN_ROLES)}")
        out[role] = name.strip()
    return out


@dataclass
class BoreholeRecord:
    """A borehole's ground-temperature record with its position.

    Attributes
    ----------
    borehole_id : str
    temperatures : pandas.DataFrame
        Ground temperature [°C], time index, one column per depth [m] (float column names).
    lon, lat : float
        Position [degrees, WGS84]; NaN when not known.
    elevation_m : float
        Elevation [m] (NaN when not known).
    name : str
        Human-readable name (site, borehole code).
    source : str
        File it came from.
    meta : dict
        Extra metadata (dataset id, citation, ...).
    """

    borehole_id: str
    temperatures: pd.DataFrame
    lon: float = float("nan")
    lat: float = float("nan")
    elevation_m: float = float("nan")
    name: str = ""
    source: str = ""
    meta: dict = field(default_factory=dict)


def _norm_token(v) -> str:
    return " ".join(str(v).strip().lower().split())


def parse_presence(values, *, path=None, field: str = "presence") -> pd.Series:
    """Parse presence values to a nullable integer Series (1, 0, <NA>).

    Accepts 1/0, true/false, yes/no, y/n, t/f, permafrost/non-permafrost, present/absent,
    case- and whitespace-insensitive; empty / NA / NaN -> <NA> (unknown).

    Raises
    ------
    DataError
        Naming every unparseable value and the rows (0-based data rows) where it occurs.
    """
    s = pd.Series(values)
    out = pd.Series(pd.array([pd.NA] * len(s), dtype="Int8"), index=s.index)
    bad: dict[str, list] = {}
    for i, (idx, v) in enumerate(s.items()):
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            continue
        if isinstance(v, (bool, np.bool_)):
            out.iloc[i] = int(v)
            continue
        tok = _norm_token(v)
        if tok in _MISSING:
            continue
        if tok in PRESENCE_TRUE:
            out.iloc[i] = 1
        elif tok in PRESENCE_FALSE:
            out.iloc[i] = 0
        else:
            bad.setdefault(str(v), []).append(idx)
    if bad:
        shown = "; ".join(f"{k!r} in rows {_rows(v)}" for k, v in list(bad.items())[:8])
        more = f" (+{len(bad) - 8} more values)" if len(bad) > 8 else ""
        raise DataError(f"unparseable presence values: {shown}{more}", path=path, field=field,
                        fix="use 1/0, true/false, yes/no or permafrost/non-permafrost")
    return out


def _rows(idx: list, limit: int = 10) -> str:
    head = ", ".join(str(i) for i in idx[:limit])
    return head + (f", ... ({len(idx)} rows)" if len(idx) > limit else "")


def _pick(columns, wanted, given: str | None, *, path, what: str, required: bool = True,
          option: str | None = None):
    """The column for one role: the name given (exact, else case-insensitive, else an error),
    else the first recognised spelling (:func:`normalise_column`), else None or an error that
    lists the spellings looked for and the columns there are."""
    if given is not None:
        if given in columns:
            return given
        lower = {str(c).lower(): c for c in columns}
        if given.lower() in lower:
            return lower[given.lower()]
        norm = {normalise_column(c): c for c in columns}
        if normalise_column(given) in norm:
            return norm[normalise_column(given)]
        raise DataError(f"no {what} column {given!r} (columns: {', '.join(map(str, columns))})",
                        path=path, field=given, fix=f"name the {what} column that the file has")
    norm = {}
    for c in columns:
        norm.setdefault(normalise_column(c), c)
    for w in wanted:
        if w in norm:
            return norm[w]
    if required:
        how = (f"name it with columns = {{{option} = \"NAME\"}} or --borehole-column "
               f"{option}=NAME" if option else "add one or pass its name")
        raise DataError(f"no {what} column (looked for {', '.join(wanted)}, any case; columns: "
                        f"{', '.join(map(str, columns))})", path=path, field=what, fix=how)
    return None


def _numeric(s: pd.Series, *, path, field: str) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce")
    bad = s.notna() & num.isna() & ~s.astype(str).str.strip().str.lower().isin(_MISSING)
    if bad.any():
        vals = sorted(set(map(str, s[bad])))[:5]
        raise DataError(f"non-numeric values {vals} in rows {_rows(list(s.index[bad]))}",
                        path=path, field=field, fix="give numbers (empty = missing)")
    return num.replace(list(_MISSING_NUMBERS), np.nan).astype(float)


#: a number written with a decimal comma (``46,5``, ``-0,25``)
_DECIMAL_COMMA = r"^(\s*[-+]?\d+),(\d+\s*)$"


def _separator(text: str) -> str:
    """The CSV's field separator from its header line: ``;`` (the European dialect, with
    decimal commas), tab, or ``,``."""
    head = text.split("\n", 1)[0]
    counts = {sep: head.count(sep) for sep in (",", ";", "\t")}
    best = max(counts, key=counts.__getitem__)
    return best if counts[best] > counts[","] else ","


#: byte-order marks and their codecs, longest first (the UTF-32 LE mark begins with UTF-16's)
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
         (codecs.BOM_UTF16_BE, "utf-16"))

_NOT_UTF8_FIX = ("save it as 'CSV UTF-8 (Comma delimited)' in Excel (or convert it, e.g. "
                 "iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv, naming its real encoding)")


def read_table_text(path: str | os.PathLike, *, max_bytes: int = MAX_TABLE_BYTES,
                    what: str = "table") -> str:
    """The text of a CSV table, decoded: UTF-8 (BOM or not), or UTF-16/32 with a BOM.

    Parameters
    ----------
    path : path-like
        The file (a regular file: :func:`permafrost.io.vectors.check_input_file`).
    max_bytes : int
        The largest size read [bytes].
    what : str
        What the file is, for messages.

    Raises
    ------
    InputFileError
        Missing, not a regular file, too large, binary (NUL bytes), or not UTF-8 and
        without a BOM (the message names the line and says how to save it as UTF-8).
    """
    p = check_input_file(path, max_bytes=max_bytes, what=what)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise InputFileError(f"unreadable ({exc.strerror or exc})", path=p,
                             fix="check the file and its permissions") from None
    enc = next((e for bom, e in _BOMS if raw.startswith(bom)), "utf-8")
    if enc == "utf-8" and raw[:200].count(b"\x00") * 3 >= len(raw[:200]) > 0:
        # ASCII in UTF-16: every second byte is NUL
        raise InputFileError("looks like UTF-16 text without a byte-order mark", path=p,
                             fix=_NOT_UTF8_FIX)
    try:
        text = raw.decode(enc)
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        byte = raw[exc.start:exc.start + 1].hex()
        if enc == "utf-8":
            problem = (f"not UTF-8 text (byte 0x{byte} on line {line}): it was saved in a "
                       "legacy code page (Excel's plain 'CSV', e.g. Windows-1252/Latin-1)")
        else:
            problem = f"not valid {enc.upper()} text although it starts with its mark " \
                      f"(line {line})"
        raise InputFileError(problem, path=p, fix=_NOT_UTF8_FIX) from None
    if "\x00" in text:
        raise InputFileError(f"a binary file, not a text {what} (it holds NUL bytes)", path=p,
                             fix=f"give the {what} as CSV text")
    if enc != "utf-8":
        log.info("%s: read as %s (byte-order mark)", p, enc.upper())
    return text.lstrip("\ufeff")


def read_table_rows(path: str | os.PathLike, *, what: str = "table") -> tuple[pd.DataFrame, str]:
    """A CSV table as strings, as :func:`read_presence_table` reads it: decoded by
    :func:`read_table_text`, its separator found from the header (``,``, ``;`` or tab),
    rows whose every field is empty dropped (the index keeps the data row of the others).

    Returns
    -------
    (pandas.DataFrame, str)
        The table (every value a str, "" where empty; column names stripped) and its
        separator.

    Raises
    ------
    InputFileError
        Every error of :func:`read_table_text`; not a parseable CSV.
    """
    p = Path(path)
    text = read_table_text(p, what=what)
    sep = _separator(text)
    try:
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False,
                         skipinitialspace=True, sep=sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=p,
                             fix=f"give a {what} as comma-separated text with a header "
                                 "line") from None
    df.columns = [str(c).strip() for c in df.columns]
    blank = (df.apply(lambda c: c.str.strip()) == "").all(axis=1) if len(df.columns) else \
        pd.Series(False, index=df.index)
    if blank.any():
        log.info("%s: %d empty row(s) skipped (every field empty)", p, int(blank.sum()))
        df = df[~blank.to_numpy()]
    return df, sep


@expects(path="path")
def read_presence_table(
    path: str | os.PathLike,
    *,
    columns: dict[str, str] | None = None,
    id_column: str | None = None,
    presence_column: str | None = None,
    magt_column: str | None = None,
    year_column: str | None = None,
    elevation_column: str | None = None,
    x_column: str | None = None,
    y_column: str | None = None,
    crs=None,
    layer: str | int | None = None,
) -> gpd.GeoDataFrame:
    """Read a borehole presence table (CSV or vector) into points.

    Every column is found by role: the name given (in ``columns`` or the ``*_column``
    arguments), else the first of the common spellings in :data:`COLUMN_SPELLINGS`
    (case-insensitive: ``ID, Longitude, Latitude, Elevation_m, Permafrost`` is read as it
    is).  A column named but absent is an error; so is a table with neither a presence nor
    a MAGT column (the error lists the spellings looked for).

    Parameters
    ----------
    path : path-like
        CSV (``.csv``, ``.txt``) or a vector file (GeoPackage, GeoJSON, ...).
    columns : dict, optional
        Column names by role: ``id``, ``x`` (or lon), ``y`` (or lat), ``presence``, ``magt``
        [°C], ``elevation`` [m], ``year``; roles not given are recognised.
    id_column, presence_column, magt_column, year_column, elevation_column : str, optional
        The same, one role each (``columns`` wins).
    x_column, y_column : str, optional
        Coordinate columns of a CSV; default lon/lat (any usual spelling), else x/y.
    crs : optional
        CRS of x/y columns (required for x/y; lon/lat default to EPSG:4326).
    layer : str or int, optional
        Layer of a vector file.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``borehole_id`` (str), ``presence`` (Int8, <NA> = unknown), ``magt_c`` [°C],
        ``elevation_m`` [m], ``year`` (float, NaN when absent), ``row`` (row in the file),
        geometry; ``attrs["columns"]`` records which file column filled each role.

    Raises
    ------
    DataError
        Duplicate ids, unparseable presence, non-numeric coordinates, latitude outside
        ±90 (coordinates look swapped), rows without position, a named column missing.
    """
    given = {"id": id_column, "x": x_column, "y": y_column, "presence": presence_column,
             "magt": magt_column, "elevation": elevation_column, "year": year_column}
    for role, name in (columns or {}).items():
        role = {"lon": "x", "lat": "y", "magt_c": "magt"}.get(role, role)
        if role not in given:
            raise DataError(f"unknown column role {role!r}", path=path, field="columns",
                            fix=f"use {', '.join(COLUMN_ROLES)}")
        if name:
            given[role] = str(name)
    p, named = split_layer(path)
    layer = named if layer is None else layer
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    if p.is_dir() and p.suffix.lower() != ".gdb":
        raise InputFileError("a file is expected, this is a folder", path=p,
                             fix="give the borehole table inside it")
    used: dict[str, str] = {}
    if p.suffix.lower() in VECTOR_SUFFIXES or p.suffix.lower() == ".gdb":
        gdf = read_vector(p, layer=layer)
        df = pd.DataFrame(gdf.drop(columns=gdf.geometry.name))
        geom = gdf.geometry
        if not (geom.geom_type == "Point").all():
            raise DataError("borehole geometries must be points", path=p, field="geometry",
                            fix="store one point per borehole")
        xs, ys, src_crs = geom.x.to_numpy(), geom.y.to_numpy(), gdf.crs
    else:
        df, sep = read_table_rows(p, what="borehole table")
        if sep == ";":  # the European dialect: decimal commas are unambiguous there
            df = df.apply(lambda c: c.str.replace(_DECIMAL_COMMA, r"\1.\2", regex=True))
        xcol = _pick(df.columns, _LON_COLUMNS, given["x"], path=p, what="longitude/x",
                     required=False)
        ycol = _pick(df.columns, _LAT_COLUMNS, given["y"], path=p, what="latitude/y",
                     required=False)
        geographic = (xcol is not None and ycol is not None
                      and normalise_column(xcol) in _LON_COLUMNS
                      and normalise_column(ycol) in _LAT_COLUMNS)
        if xcol is None or ycol is None:
            try:
                xcol = _pick(df.columns, COLUMN_SPELLINGS["x"], given["x"], path=p, what="x",
                             option="x")
                ycol = _pick(df.columns, COLUMN_SPELLINGS["y"], given["y"], path=p, what="y",
                             option="y")
            except DataError:
                raise DataError(
                    f"no position columns (looked for lon: {', '.join(_LON_COLUMNS)}; lat: "
                    f"{', '.join(_LAT_COLUMNS)}; or x/y: {', '.join(COLUMN_SPELLINGS['x'])} / "
                    f"{', '.join(COLUMN_SPELLINGS['y'])}, any case; columns: "
                    f"{', '.join(map(str, df.columns))})", path=p, field="x/y",
                    fix="name them with columns = {x = \"...\", y = \"...\"} or "
                        "--borehole-column x=NAME --borehole-column y=NAME") from None
            geographic = False
        if crs is None:
            if not geographic:
                raise CRSError("x/y coordinates without a CRS", path=p, field=xcol,
                               fix="give the CRS of the x/y columns (--boreholes-crs EPSG:32647, "
                                   "or boreholes = {path = ..., crs = \"EPSG:32647\"})")
            crs = "EPSG:4326"
        xs = _numeric(df[xcol], path=p, field=xcol).to_numpy()
        ys = _numeric(df[ycol], path=p, field=ycol).to_numpy()
        nopos = ~(np.isfinite(xs) & np.isfinite(ys))
        if nopos.any():
            raise DataError(f"rows without a position: {_rows(list(df.index[nopos]))}", path=p,
                            field=f"{xcol}/{ycol}", fix="give coordinates for every borehole")
        src_crs = crs
        geom = gpd.points_from_xy(xs, ys)
        used.update(x=str(xcol), y=str(ycol))
    idc = _pick(df.columns, _ID_COLUMNS, given["id"], path=p, what="id", option="id")
    ids = df[idc].astype(str).str.strip()
    empty = ids.isin(["", "nan", "None"])
    if empty.any():
        raise DataError(f"empty ids in rows {_rows(list(df.index[empty]))}", path=p, field=idc,
                        fix="give every borehole an id")
    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        names = sorted(set(dup))[:8]
        raise DataError(f"duplicate ids {names} in rows {_rows(list(dup.index))}", path=p,
                        field=idc, fix="make borehole ids unique (one row per borehole)")

    def find(role):
        return _pick(df.columns, COLUMN_SPELLINGS[role], given[role], path=p, what=role,
                     required=False)

    pcol, mcol, ecol, ycolumn = find("presence"), find("magt"), find("elevation"), find("year")
    if pcol is None and mcol is None:
        raise DataError(
            "neither a presence nor a MAGT column (looked for presence: "
            f"{', '.join(COLUMN_SPELLINGS['presence'])}; MAGT: "
            f"{', '.join(COLUMN_SPELLINGS['magt'])}; any case; columns: "
            f"{', '.join(map(str, df.columns))})", path=p, field="presence",
            fix="name the column with columns = {presence = \"NAME\"} in the pipeline file "
                "or --borehole-column presence=NAME (magt=NAME for MAGT in °C)")
    used.update({k: str(v) for k, v in (("id", idc), ("presence", pcol), ("magt", mcol),
                                        ("elevation", ecol), ("year", ycolumn)) if v})
    presence = (parse_presence(df[pcol], path=p, field=pcol) if pcol
                else pd.Series(pd.array([pd.NA] * len(df), dtype="Int8"), index=df.index))
    nan = pd.Series(np.nan, index=df.index)
    magt = _numeric(df[mcol], path=p, field=mcol) if mcol else nan
    elev = _numeric(df[ecol], path=p, field=ecol) if ecol else nan
    year = _numeric(df[ycolumn], path=p, field=ycolumn) if ycolumn else nan
    out = gpd.GeoDataFrame({
        "borehole_id": ids.to_numpy(),
        "presence": presence.to_numpy(),
        "magt_c": magt.to_numpy(),
        "elevation_m": elev.to_numpy(),
        "year": year.to_numpy(),
        "row": np.asarray(df.index, dtype=np.int64),
    }, geometry=geom, crs=src_crs)
    out["presence"] = out["presence"].astype("Int8")
    if out.crs is not None and out.crs.is_geographic:
        _check_latlon(out.geometry.x.to_numpy(), out.geometry.y.to_numpy(), ids.to_numpy(), p)
    elif out.crs is not None and len(out):  # projected x/y: within the CRS's range
        check_coordinates(out.total_bounds, out.crs, path=p,
                          field=f"{used.get('x', 'x')}/{used.get('y', 'y')}", what="boreholes")
    if len(out) == 0:
        raise DataError("holds no boreholes", path=p, fix="check the file")
    out.attrs["source"] = str(p)
    out.attrs["columns"] = used
    return out


def _check_latlon(lon, lat, ids, path) -> None:
    bad = np.flatnonzero(np.abs(lat) > 90)
    if len(bad):
        names = [str(ids[i]) for i in bad[:5]]
        swap = " (they look like lon/lat swapped)" if np.all(np.abs(lon[bad]) <= 90) else ""
        raise DataError(f"latitude outside ±90° for {len(bad)} boreholes {names}{swap}",
                        path=path, field="lat", fix="check the lon/lat column order")
    bad = np.flatnonzero(np.abs(lon) > 360)
    if len(bad):
        raise DataError(f"longitude outside ±360° for boreholes {[str(ids[i]) for i in bad[:5]]}",
                        path=path, field="lon", fix="give degrees, or x/y with their CRS")


def read_borehole_coords(path: str | os.PathLike, *,
                         columns: dict[str, str] | None = None) -> pd.DataFrame:
    """Read a small coordinates table: ``borehole_id, lon, lat[, elevation_m]`` (CSV).

    Columns are recognised as in :func:`read_presence_table` (``columns`` names others:
    roles ``id``, ``x``/``lon``, ``y``/``lat``, ``elevation``).  Returns a DataFrame indexed
    by ``borehole_id`` with float ``lon``, ``lat`` [degrees WGS84], ``elevation_m`` [m] (NaN
    when absent).  Duplicate ids and latitudes outside ±90 are errors.
    """
    cols = {{"lon": "x", "lat": "y"}.get(k, k): v for k, v in (columns or {}).items()}
    p = Path(path)
    df, _ = read_table_rows(p, what="coordinates table")
    idc = _pick(df.columns, _ID_COLUMNS, cols.get("id"), path=p, what="id", option="id")
    lonc = _pick(df.columns, _LON_COLUMNS, cols.get("x"), path=p, what="longitude", option="x")
    latc = _pick(df.columns, _LAT_COLUMNS, cols.get("y"), path=p, what="latitude", option="y")
    elc = _pick(df.columns, COLUMN_SPELLINGS["elevation"], cols.get("elevation"), path=p,
                what="elevation", required=False)
    ids = df[idc].astype(str).str.strip()
    if ids.duplicated().any():
        raise DataError(f"duplicate ids {sorted(set(ids[ids.duplicated()]))}", path=p, field=idc,
                        fix="one row per borehole")
    out = pd.DataFrame({
        "lon": _numeric(df[lonc], path=p, field=lonc).to_numpy(),
        "lat": _numeric(df[latc], path=p, field=latc).to_numpy(),
        "elevation_m": (_numeric(df[elc], path=p, field=elc).to_numpy() if elc
                        else np.full(len(df), np.nan)),
    }, index=pd.Index(ids, name="borehole_id"))
    _check_latlon(out["lon"].to_numpy(), out["lat"].to_numpy(), ids.to_numpy(), p)
    return out


@expects(csv_path="path", metadata_path="path")
def read_gtnp(
    csv_path: str | os.PathLike,
    metadata_path: str | os.PathLike,
) -> list[BoreholeRecord]:
    """Read GTN-P long-format ground temperatures with their metadata JSON.

    Parameters
    ----------
    csv_path : path-like
        Long CSV with columns ``date, depth, temperature`` and ``borehole_id`` and/or
        ``dataset_id`` (``id``, ``flag``, ``site_id`` are carried but not needed).
    metadata_path : path-like
        GTN-P metadata JSON: a list (or one object) of dataset records with ``id`` (dataset id)
        and ``borehole`` {``id``, ``name``, ``site_name``, ``location`` {latitude, longitude,
        elevation}}.

    Returns
    -------
    list of BoreholeRecord
        One per borehole, ordered by borehole id; ``borehole_id`` is the GTN-P borehole
        name (e.g. ``COR_0315``) when the metadata has one, else its numeric id.

    Raises
    ------
    DataError
        Missing columns, unparseable dates/depths/temperatures, boreholes without metadata.
    """
    cp, mp = Path(csv_path), Path(metadata_path)
    for q in (cp, mp):
        if not q.exists():
            raise InputFileError("file not found", path=q, fix="check the path")
    meta = load_json(mp, fix="give the GTN-P metadata JSON", error=InputFileError)
    if isinstance(meta, dict):
        meta = [meta]
    by_borehole: dict[str, dict] = {}
    by_dataset: dict[str, dict] = {}
    for rec in meta:
        bh = rec.get("borehole") if isinstance(rec, dict) else None
        if not isinstance(bh, dict) or "location" not in bh:
            raise DataError("metadata record without borehole.location", path=mp,
                            field="borehole", fix="give the GTN-P metadata JSON")
        by_borehole[str(bh.get("id"))] = rec
        by_dataset[str(rec.get("id"))] = rec
    text = read_table_text(cp, what="GTN-P table")
    try:
        df = pd.read_csv(io.StringIO(text),
                         dtype={"borehole_id": str, "dataset_id": str, "flag": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=cp,
                             fix="give the GTN-P long CSV") from None
    for col in ("date", "depth", "temperature"):
        if col not in df.columns:
            raise DataError(f"missing column {col!r} (columns: {', '.join(df.columns)})", path=cp,
                            field=col, fix="give a GTN-P long CSV "
                            "(id,date,depth,temperature,flag,dataset_id,borehole_id,site_id)")
    key = "borehole_id" if "borehole_id" in df.columns else "dataset_id"
    if key not in df.columns:
        raise DataError("neither borehole_id nor dataset_id column", path=cp, field="borehole_id",
                        fix="give a GTN-P long CSV")
    dates = pd.to_datetime(df["date"], errors="coerce")
    if dates.isna().any():
        raise DataError(f"unparseable dates in rows {_rows(list(df.index[dates.isna()]))}",
                        path=cp, field="date", fix="use ISO dates (YYYY-MM-DD)")
    depth = _numeric(df["depth"].astype(object), path=cp, field="depth")
    if depth.isna().any():
        raise DataError(f"missing depths in rows {_rows(list(df.index[depth.isna()]))}", path=cp,
                        field="depth", fix="give the sensor depth [m] on every row")
    temp = _numeric(df["temperature"].astype(object), path=cp, field="temperature")
    lookup = by_borehole if key == "borehole_id" else by_dataset
    missing = sorted(set(df[key].astype(str)) - set(lookup))
    if missing:
        raise DataError(f"no metadata for {key} {missing}", path=mp, field=key,
                        fix="give the metadata JSON that belongs to this CSV")
    long = pd.DataFrame({"key": df[key].astype(str).to_numpy(), "date": dates.to_numpy(),
                         "depth": depth.to_numpy(), "t": temp.to_numpy()})
    records = []
    for k, g in long.groupby("key", sort=True):
        rec = lookup[k]
        bh = rec["borehole"]
        loc = bh.get("location") or {}
        wide = g.pivot_table(index="date", columns="depth", values="t", aggfunc="mean",
                             dropna=False)
        wide = wide.sort_index().sort_index(axis=1)
        wide.columns = [float(c) for c in wide.columns]
        wide.index.name = "time"
        name = str(bh.get("name") or k)
        records.append(BoreholeRecord(
            borehole_id=name,
            temperatures=wide,
            lon=float(loc.get("longitude", np.nan) or np.nan),
            lat=float(loc.get("latitude", np.nan) or np.nan),
            elevation_m=float(loc.get("elevation", np.nan) or np.nan),
            name=f"{bh.get('site_name', '')} {name}".strip(),
            source=str(cp),
            meta={"gtnp_borehole_id": str(bh.get("id")), "dataset_id": str(rec.get("id")),
                  "citation": rec.get("borehole", {}).get("generic_citation", "")},
        ))
    ids = [r.borehole_id for r in records]
    if len(set(ids)) != len(ids):
        raise DataError(f"duplicate borehole names {sorted({i for i in ids if ids.count(i) > 1})}",
                        path=mp, field="borehole.name", fix="borehole names must be unique")
    for r in records:
        if np.isfinite(r.lat):
            _check_latlon(np.array([r.lon]), np.array([r.lat]), [r.borehole_id], mp)
    return records


_HEADER_RE = re.compile(r"^\s*\"?(time|date|date/depth|datetime|timestamp)\"?\s*[,;]", re.I)


@expects(path="path")
def read_permos(
    path: str | os.PathLike,
    *,
    borehole_id: str | None = None,
    lon: float = float("nan"),
    lat: float = float("nan"),
    elevation_m: float = float("nan"),
    coords: pd.DataFrame | None = None,
) -> BoreholeRecord:
    """Read a PERMOS wide-format temperature file (free-text header lines, then ``Time,<depths>``).

    Parameters
    ----------
    path : path-like
        The CSV.  Lines before the first line starting with ``Time``/``Date`` are a header
        (4 lines in PERMOS exports; none in some); ``Borehole <ID>`` in it names the borehole.
    borehole_id : str, optional
        Id (default: from the header, else the file stem).
    lon, lat, elevation_m : float
        Position [degrees WGS84] and elevation [m], when not taken from ``coords``.
    coords : pandas.DataFrame, optional
        A table from :func:`read_borehole_coords`; the borehole's row is used when present.

    Returns
    -------
    BoreholeRecord
    """
    p = Path(path)
    if not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    text = read_table_text(p, what="PERMOS table")
    lines = text.splitlines()
    skip = next((i for i, ln in enumerate(lines[:50]) if _HEADER_RE.match(ln)), None)
    if skip is None:
        raise DataError("no 'Time,<depth>,...' header line in the first 50 lines", path=p,
                        field="Time", fix="give a PERMOS wide CSV (Time column, one column per depth)")
    head_id = None
    for ln in lines[:skip]:
        m = re.search(r"\bBorehole\s+([A-Za-z0-9_\-/]+)", ln)
        if m:
            head_id = m.group(1)
    bid = str(borehole_id or head_id or p.stem)
    try:
        df = pd.read_csv(io.StringIO(text), skiprows=skip,
                         na_values=["NA", "NaN", "", "-999", "-999.0"], keep_default_na=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"not a readable CSV ({str(exc).splitlines()[0]})", path=p,
                             fix="give a PERMOS wide CSV (Time column, one column per "
                                 "depth)") from None
    tcol = df.columns[0]
    times = pd.to_datetime(df[tcol], errors="coerce")
    if times.isna().any():
        raise DataError(f"unparseable timestamps in data rows {_rows(list(df.index[times.isna()]))}",
                        path=p, field=str(tcol), fix="use ISO timestamps")
    try:
        depths = [float(c) for c in df.columns[1:]]
    except ValueError:
        raise DataError(f"column names after {tcol!r} must be depths in metres",
                        path=p, field="header", fix="e.g. Time,0.2,0.4,0.8") from None
    wide = df.iloc[:, 1:].apply(lambda s: _numeric(s.astype(object), path=p, field=str(s.name)))
    wide.columns = depths
    wide.index = pd.DatetimeIndex(times, name="time")
    wide = wide.sort_index()
    if coords is not None and bid in coords.index:
        row = coords.loc[bid]
        lon, lat = float(row["lon"]), float(row["lat"])
        elevation_m = float(row.get("elevation_m", np.nan))
    if np.isfinite(lat):
        _check_latlon(np.array([lon]), np.array([lat]), [bid], p)
    return BoreholeRecord(borehole_id=bid, temperatures=wide, lon=float(lon), lat=float(lat),
                          elevation_m=float(elevation_m), name=bid, source=str(p))
