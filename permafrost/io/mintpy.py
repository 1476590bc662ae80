"""MintPy HDF5 edges: velocity, geometry and coherence files into xarray with coordinates and CRS.

No science here.  Files are read through MintPy's own reader
(:func:`mintpy.utils.readfile.read`), then turned into :class:`xarray.DataArray` /
:class:`xarray.Dataset` objects that carry what the rest of the package relies on:

* **Geocoded grids** (``Y_FIRST`` present): ``x``/``y`` coordinates at pixel centres
  (``X_FIRST``/``Y_FIRST`` are the outer corner of the first pixel, ``Y_STEP`` is
  negative), the affine transform, and the CRS from ``EPSG``, else ``UTM_ZONE``, else
  geographic WGS84 when ``X_UNIT`` is degrees.  A metric grid without ``EPSG`` or
  ``UTM_ZONE`` is an error (the CRS is never guessed).
* **Radar-coordinate files** (no ``Y_FIRST``): ``y``/``x`` are row/column numbers; a
  ``geometryRadar.h5`` adds 2-D ``latitude``/``longitude`` coordinates (WGS84).
* **No-data**: NaN, the ``NO_DATA_VALUE`` attribute and, for the datasets MintPy pads
  with zeros (velocity, velocityStd, temporal coherence, incidence angle, latitude,
  longitude, slant range), exact 0 become NaN -- except at the reference pixel,
  where a velocity of exactly 0 is the reference itself.
* **Units**: velocities are returned in m/year (``UNIT`` m/year, m/yr, cm/year or
  mm/year are converted); an unknown unit is an error.
* **Reference point**: ``REF_Y``/``REF_X`` and ``REF_LAT``/``REF_LON`` (in the file's own
  units) are kept in ``attrs`` and checked against each other.
* **Angles in degrees**: an ``incidenceAngle`` layer within 0..1.6 (radians) or outside
  0..90, and an ``azimuthAngle`` layer in radians or holding the heading (about -12 or
  -168 deg, not the ground-to-satellite azimuth of about +-102 deg) are refused.
* **Missing angles**: without an ``azimuthAngle`` layer, it is derived from ``HEADING``
  for the radar's look side (:func:`mintpy.utils.utils0.heading2azimuth_angle`) with a
  warning; without either, reading stops with a clear error.  Without an
  ``incidenceAngle`` layer, the scene-centre incidence angle from the metadata
  (:func:`mintpy.utils.utils0.incidence_angle`) is used, also with a warning.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from pyproj import CRS

from permafrost.checks import expects
from permafrost.errors import ConfigError, CRSError, DataError, GridMismatchError, InputFileError
from permafrost.options import check_name

__all__ = [
    "TrackFiles",
    "find_track_files",
    "parse_track_spec",
    "track_name",
    "track_summary",
    "mintpy_dates",
    "read_mintpy_attributes",
    "mintpy_crs",
    "mintpy_transform",
    "read_mintpy",
    "read_track",
    "MissingGeometryWarning",
]

log = logging.getLogger(__name__)

VELOCITY_NAMES = ("velocity.h5",)
GEOMETRY_NAMES = ("geometryGeo.h5", "geometryRadar.h5")
COHERENCE_NAMES = ("temporalCoherence.h5",)
MASK_NAMES = ("maskTempCoh.h5", "maskConnComp.h5")
#: the prefix and folder of MintPy's geocode.py outputs (``geo/geo_velocity.h5``, ...)
GEO_PREFIX = "geo_"
GEO_FOLDER = "geo"
#: folder names of MintPy's own layout, skipped when a track is named after its folder
LAYOUT_FOLDERS = ("geo", "inputs", "mintpy")

#: datasets MintPy pads with exact zeros outside the valid area
ZERO_IS_NODATA = frozenset({
    "velocity", "velocityStd", "temporalCoherence", "incidenceAngle", "slantRangeDistance",
    "latitude", "longitude",
})

#: velocity units understood, with their factor to m/year
VELOCITY_UNITS = {
    "m/year": 1.0, "m/yr": 1.0, "m/a": 1.0, "m": 1.0,
    "cm/year": 0.01, "cm/yr": 0.01, "mm/year": 0.001, "mm/yr": 0.001,
}

#: |velocity| above this (99th percentile) [m/year] means the unit attribute is wrong
MAX_PLAUSIBLE_VELOCITY = 50.0
#: the median |velocity| of a scene (mostly stable ground) above this [m/year] means the
#: values are not in m/year (mm/year read as m/year gives medians of a few m/year)
MAX_PLAUSIBLE_MEDIAN_VELOCITY = 0.5


class MissingGeometryWarning(UserWarning):
    """An angle layer is missing and was derived from the metadata."""


@dataclass(frozen=True)
class TrackFiles:
    """The files of one InSAR track (one MintPy run).

    Attributes
    ----------
    velocity : Path
        ``velocity.h5`` (datasets ``velocity`` and optionally ``velocityStd``, m/year).
    geometry : Path or None
        ``geometryGeo.h5`` or ``geometryRadar.h5``.
    coherence : Path or None
        ``temporalCoherence.h5``.
    mask : Path or None
        ``maskTempCoh.h5`` (1 = reliable pixel).
    name : str
        Track name used in outputs (default: the folder name).
    """

    velocity: Path
    geometry: Path | None = None
    coherence: Path | None = None
    mask: Path | None = None
    name: str = ""

    def __post_init__(self) -> None:
        # a track name is written into NAME=VALUE lists (track specs): no ',' or '='
        check_name(self.name, what="track", field="track", path=self.velocity)


def find_track_files(source: str | os.PathLike, *, name: str | None = None) -> TrackFiles:
    """Find the MintPy files of one track in a folder (or from a velocity file's path).

    MintPy's layouts, as ``smallbaselineApp.py`` and ``geocode.py`` write them:

    * a MintPy work folder: ``velocity.h5``, ``temporalCoherence.h5``,
      ``maskTempCoh.h5`` and the geometry in ``inputs/`` (``geometryRadar.h5`` for a
      radar-coded stack, ``geometryGeo.h5`` for a geocoded one) or beside them;
    * its ``geo/`` folder: ``geo_velocity.h5``, ``geo_geometryRadar.h5`` (the radar
      geometry geocoded; ``geo_geometryGeo.h5`` also accepted), ``geo_temporalCoherence.h5``,
      ``geo_maskTempCoh.h5``.  A work folder whose ``velocity.h5`` is in radar coordinates
      and that holds ``geo/geo_velocity.h5`` gives the geocoded track (what
      ``geocode.py`` made it for); a geocoded ``velocity.h5`` is used as it is.

    A file path (``velocity.h5`` or ``geo_velocity.h5``) takes its siblings of the same
    layout.  The track is named after its folder, skipping ``geo``, ``inputs`` and
    ``mintpy`` (``T41_asc/mintpy/geo`` -> ``T41_asc``); a plain ``velocity.h5`` path keeps
    its stem, as before.

    Raises
    ------
    InputFileError
        The folder or its velocity file is missing.
    """
    p = Path(source)
    if not p.exists():
        raise InputFileError("track folder or file not found", path=p, fix="check the path")
    velocity: Path | None
    if p.is_file():
        if not h5py.is_hdf5(p):
            raise InputFileError("not a MintPy HDF5 file (a track is a MintPy folder, its geo/ "
                                 "folder or its velocity .h5)", path=p,
                                 fix="give the MintPy folder or its velocity.h5")
        folder, velocity = p.parent, p
    else:
        folder = p
        velocity = _first(folder, VELOCITY_NAMES + (GEO_PREFIX + VELOCITY_NAMES[0],))
        geo = folder / GEO_FOLDER / (GEO_PREFIX + VELOCITY_NAMES[0])
        if geo.is_file() and (velocity is None or not _h5_is_geocoded(velocity)):
            if velocity is not None:
                log.info("%s is in radar coordinates: using the geocoded %s", velocity, geo)
            folder, velocity = geo.parent, geo
    if velocity is None:
        raise InputFileError("no velocity.h5 or geo/geo_velocity.h5 in the track folder",
                             path=folder, fix="give the MintPy folder (or its geo/ folder) "
                             "after MintPy's velocity step, or the velocity file")
    if velocity.name.startswith(GEO_PREFIX):
        geometry = (_first(folder, tuple(GEO_PREFIX + n for n in
                                         ("geometryRadar.h5", "geometryGeo.h5")))
                    or _first(folder, ("geometryGeo.h5",))
                    or _first(folder.parent / "inputs", ("geometryGeo.h5",)))
        coherence = _first(folder, tuple(GEO_PREFIX + n for n in COHERENCE_NAMES))
        mask = _first(folder, tuple(GEO_PREFIX + n for n in MASK_NAMES))
    else:
        geometry = _first(folder, GEOMETRY_NAMES) or _first(folder / "inputs", GEOMETRY_NAMES)
        coherence = _first(folder, COHERENCE_NAMES)
        mask = _first(folder, MASK_NAMES)
    if not name:
        name = (track_name(folder) if p.is_dir() or velocity.name.startswith(GEO_PREFIX)
                else velocity.stem)
    return TrackFiles(velocity=velocity, geometry=geometry, coherence=coherence, mask=mask,
                      name=name)


def track_name(folder: str | os.PathLike) -> str:
    """A track's default name: its folder's, skipping MintPy's own ``geo``, ``inputs`` and
    ``mintpy`` folders (``T41_asc/mintpy/geo`` -> ``T41_asc``)."""
    f = Path(folder).resolve()
    while f.name.lower() in LAYOUT_FOLDERS and f.parent != f:
        f = f.parent
    return f.name or Path(folder).name


def _h5_is_geocoded(path: Path) -> bool:
    """Whether a MintPy file is geocoded (``Y_FIRST`` in its root attributes); unreadable
    files count as geocoded (the reader reports them)."""
    try:
        with h5py.File(path, "r") as f:
            return "Y_FIRST" in f.attrs
    except OSError:
        return True


def parse_track_spec(spec: str | os.PathLike) -> TrackFiles:
    """Track files from a folder, a ``velocity.h5`` path, or explicit ``key=path`` pairs.

    ``"velocity=v.h5,geometry=geometryGeo.h5,coherence=tc.h5,mask=m.h5,name=asc"``
    names the files explicitly (only ``velocity`` is required); anything else is
    handed to :func:`find_track_files`.

    Raises
    ------
    ConfigError
        An unknown key or a missing ``velocity`` in an explicit spec.
    InputFileError
        A named file does not exist.
    """
    text = str(spec)
    if "=" not in text:
        return find_track_files(text)
    parts: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("velocity", "geometry", "coherence", "mask", "name"):
            raise ConfigError(f"cannot parse {item!r} in track spec {text!r}", field="track",
                              fix="use DIR, velocity.h5, or velocity=PATH[,geometry=PATH]"
                                  "[,coherence=PATH][,mask=PATH][,name=NAME]")
        parts[key] = value.strip()
    if "velocity" not in parts:
        raise ConfigError(f"track spec {text!r} names no velocity file", field="track",
                          fix="add velocity=PATH")
    paths = {}
    for key in ("velocity", "geometry", "coherence", "mask"):
        if key in parts:
            p = Path(parts[key])
            if not p.is_file():
                raise InputFileError("file not found", path=p, field=key, fix="check the path")
            paths[key] = p
    name = parts.get("name") or track_name(paths["velocity"].parent)
    return TrackFiles(name=name, **paths)


def _iso_date(text: str | None) -> str | None:
    """MintPy's ``YYYYMMDD`` (or ``YYMMDD``) as ``YYYY-MM-DD``; anything else as given."""
    t = (text or "").strip()
    if len(t) == 6 and t.isdigit():
        t = ("19" if int(t[:2]) > 90 else "20") + t
    if len(t) == 8 and t.isdigit():
        return f"{t[:4]}-{t[4:6]}-{t[6:]}"
    return t or None


def mintpy_dates(atr: dict) -> dict:
    """The time span of a MintPy product from its metadata, as ``info.py`` reports it.

    ``START_DATE``/``END_DATE`` (velocity files of ``timeseries2velocity.py``), else the
    first ``DATE12`` pair (``YYYYMMDD_YYYYMMDD``, interferogram-based products);
    ``REF_DATE`` is the time series' reference date.  Returns ``{"start", "end",
    "ref_date"}`` as ISO dates (None where the file does not say)."""
    start, end = atr.get("START_DATE"), atr.get("END_DATE")
    if not (start and end) and atr.get("DATE12"):
        pair = str(atr["DATE12"]).replace("-", "_").split("_")
        if len(pair) == 2:
            start, end = start or pair[0], end or pair[1]
    return {"start": _iso_date(start), "end": _iso_date(end),
            "ref_date": _iso_date(atr.get("REF_DATE"))}


def track_summary(files: TrackFiles | str | os.PathLike) -> dict:
    """What MintPy's ``info.py`` tells about a track, from the files this package reads.

    Parameters
    ----------
    files : TrackFiles or path-like
        A track (folder, velocity file or :class:`TrackFiles`).

    Returns
    -------
    dict
        ``track``; ``files`` (velocity, geometry, coherence, mask; None where absent);
        ``geocoded``; ``crs``; ``shape`` (rows, columns); ``dates`` (:func:`mintpy_dates`);
        ``reference`` (``lat``, ``lon``, ``y``, ``x`` from ``REF_LAT``/``REF_LON``/
        ``REF_Y``/``REF_X``; None where absent); ``velocity`` (``min``, ``p01``,
        ``median``, ``p99``, ``max`` [m/year] over the valid pixels, and their count:
        the no-data rules of :func:`read_mintpy`); ``orbit``, ``heading`` [deg],
        ``platform``.
    """
    if not isinstance(files, TrackFiles):
        files = find_track_files(files)
    atr = read_mintpy_attributes(files.velocity)
    vel = read_mintpy(files.velocity, "velocity", attrs=atr, check_plausible=False)
    v = vel.values[np.isfinite(vel.values)].astype(np.float64)
    stats = dict(zip(("min", "p01", "median", "p99", "max"),
                     (float(x) for x in np.percentile(v, [0, 1, 50, 99, 100])))) if v.size \
        else dict.fromkeys(("min", "p01", "median", "p99", "max"))
    crs = vel.rio.crs if vel.attrs.get("geocoded") else None

    def num(key, kind=float):
        try:
            return kind(float(atr[key]))
        except (KeyError, ValueError):
            return None

    return {
        "track": files.name,
        "files": {k: (str(getattr(files, k)) if getattr(files, k) else None)
                  for k in ("velocity", "geometry", "coherence", "mask")},
        "geocoded": bool(vel.attrs.get("geocoded")),
        "crs": crs.to_string() if crs is not None else None,
        "shape": list(vel.shape),
        "dates": mintpy_dates(atr),
        "reference": {"lat": num("REF_LAT"), "lon": num("REF_LON"), "y": num("REF_Y", int),
                      "x": num("REF_X", int)},
        "velocity": {**stats, "units": "m/year", "valid_pixels": int(v.size)},
        "orbit": (atr.get("ORBIT_DIRECTION") or "").lower() or None,
        "heading": num("HEADING"),
        "platform": atr.get("PLATFORM") or atr.get("mission") or None,
    }


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    return None


def _check_h5(path: Path) -> None:
    if not path.exists():
        raise InputFileError("file not found", path=path, fix="check the path")
    try:
        with h5py.File(path, "r"):
            pass
    except OSError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputFileError(f"not a readable HDF5 file ({first})", path=path,
                             fix="give a MintPy .h5 file (it may be truncated or corrupt)") from None


def read_mintpy_attributes(path: str | os.PathLike) -> dict[str, str]:
    """Return a MintPy file's metadata (``readfile.read_attribute``) as a dict of strings."""
    from mintpy.utils import readfile

    p = Path(path)
    _check_h5(p)
    try:
        atr = readfile.read_attribute(str(p))
    except Exception as exc:  # noqa: BLE001 - MintPy raises bare Exceptions
        raise InputFileError(f"MintPy cannot read its metadata ({exc})", path=p,
                             fix="give a file written by MintPy") from None
    return {str(k): str(v) for k, v in atr.items()}


def _is_geocoded(atr: dict) -> bool:
    return "Y_FIRST" in atr and "X_FIRST" in atr


def mintpy_crs(atr: dict, *, path: str | os.PathLike | None = None) -> CRS | None:
    """CRS of a geocoded MintPy file; ``None`` for radar coordinates.

    ``EPSG`` wins; else ``UTM_ZONE`` (e.g. ``45N``); else geographic WGS84 when
    ``X_UNIT`` is degrees (MintPy's own default).  A metric grid without either is an
    error: the CRS is never guessed.
    """
    if not _is_geocoded(atr):
        return None
    epsg = atr.get("EPSG", "").strip()
    if epsg and epsg.lower() not in ("none", "nan"):
        try:
            return CRS.from_epsg(int(float(epsg)))
        except Exception:  # noqa: BLE001
            raise CRSError(f"unknown EPSG code {epsg!r}", path=path, field="EPSG",
                           fix="set the attribute to a valid EPSG code") from None
    utm = atr.get("UTM_ZONE", "").strip()
    if utm:
        from mintpy.utils import utils0

        try:
            return CRS.from_epsg(int(utils0.utm_zone2epsg_code(utm)))
        except Exception:  # noqa: BLE001
            raise CRSError(f"unknown UTM zone {utm!r}", path=path, field="UTM_ZONE",
                           fix="set EPSG instead") from None
    unit = atr.get("X_UNIT", "degrees").lower()
    if unit.startswith("deg"):
        return CRS.from_epsg(4326)
    raise CRSError(f"a geocoded grid in {unit!r} without EPSG or UTM_ZONE", path=path,
                   field="EPSG", fix="add the EPSG attribute (e.g. with MintPy's info.py/ "
                   "h5py) so the CRS is not guessed")


def mintpy_transform(atr: dict) -> Affine | None:
    """Affine transform of a geocoded MintPy grid (``X_FIRST``/``Y_FIRST`` = outer corner)."""
    if not _is_geocoded(atr):
        return None
    return Affine(float(atr["X_STEP"]), 0.0, float(atr["X_FIRST"]),
                  0.0, float(atr["Y_STEP"]), float(atr["Y_FIRST"]))


def _ref_pixel(atr: dict) -> tuple[int, int] | None:
    try:
        return int(float(atr["REF_Y"])), int(float(atr["REF_X"]))
    except (KeyError, ValueError):
        return None


@expects(path="path")
def read_mintpy(
    path: str | os.PathLike,
    dataset: str | None = None,
    *,
    attrs: dict | None = None,
    check_plausible: bool = True,
) -> xr.DataArray:
    """Read one dataset of a MintPy HDF5 file as a 2-D DataArray with coordinates.

    Parameters
    ----------
    path : path-like
        A MintPy HDF5 file (``velocity.h5``, ``geometryGeo.h5``, ...).
    dataset : str, optional
        Dataset name (default: the one named by ``FILE_TYPE``, else the first).
    attrs : dict, optional
        Metadata already read (saves reading it again).
    check_plausible : bool
        For velocities, refuse magnitudes that cannot be m/year (wrong ``UNIT``).

    Returns
    -------
    xarray.DataArray
        float32 (masks: uint8/bool as stored), dims ``(y, x)``; geocoded grids carry
        pixel-centre coordinates, the transform and the CRS (``.rio``); ``attrs`` hold
        ``units``, ``source``, ``dataset``, ``geocoded``, the reference point
        (``ref_y``, ``ref_x``, ``ref_lat``, ``ref_lon`` when given) and the full
        MintPy metadata under ``mintpy``.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    DataError
        Missing dataset, unknown or implausible velocity unit (99th percentile of
        |velocity| above 50 m/year, or median above 0.5 m/year), a velocity without any
        valid pixel.
    CRSError
        A metric grid without ``EPSG``/``UTM_ZONE``.
    """
    from mintpy.utils import readfile

    p = Path(path)
    atr = dict(attrs) if attrs is not None else read_mintpy_attributes(p)
    try:
        names = [str(n) for n in readfile.get_dataset_list(str(p))]
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"MintPy cannot list its datasets ({exc})", path=p,
                             fix="give a file written by MintPy") from None
    if dataset is None:
        ftype = atr.get("FILE_TYPE", "")
        dataset = ftype if ftype in names else (names[0] if names else None)
    if dataset not in names:
        raise DataError(f"dataset missing (the file holds {names})", path=p, field=dataset,
                        fix="give the file that holds it")
    try:
        data, _ = readfile.read(str(p), datasetName=dataset, print_msg=False)
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(f"MintPy cannot read the dataset ({exc})", path=p, field=dataset,
                             fix="the file may be truncated or corrupt") from None
    data = np.asarray(data)
    if data.ndim != 2:
        raise DataError(f"expected a 2-D dataset, got shape {data.shape}", path=p, field=dataset,
                        fix="give a velocity, geometry or coherence file, not a time series")
    length, width = data.shape
    ref = _ref_pixel(atr)
    units = atr.get("UNIT", "")
    if data.dtype.kind == "f" or dataset in ZERO_IS_NODATA:
        data = data.astype(np.float32, copy=False)
        nodata = _nodata_value(atr)
        if nodata is not None and not np.isnan(nodata):
            data[data == nodata] = np.nan
        if dataset in ZERO_IS_NODATA:
            keep = None
            if ref is not None and 0 <= ref[0] < length and 0 <= ref[1] < width:
                keep = data[ref]
            data[data == 0] = np.nan
            if keep is not None and dataset.startswith("velocity"):
                data[ref] = keep
        data[~np.isfinite(data)] = np.nan
        if dataset.startswith("velocity"):
            unit_key = units.strip().lower().replace(" ", "")
            if unit_key not in VELOCITY_UNITS:
                raise DataError(f"unknown velocity unit {units!r}", path=p, field="UNIT",
                                fix=f"set UNIT to one of {sorted(VELOCITY_UNITS)}")
            factor = VELOCITY_UNITS[unit_key]
            if factor != 1.0:
                log.info("%s: converting %s from %s to m/year", p, dataset, units)
                data *= np.float32(factor)
            units = "m/year"
            if dataset == "velocity" and np.count_nonzero(np.isfinite(data)) <= 1:
                raise DataError("no valid pixel (every value is NaN, infinite, 0 or the no-data "
                                "value)", path=p, field=dataset,
                                fix="give the velocity file of a successful MintPy run")
            if check_plausible and np.isfinite(data).any():
                p99 = float(np.nanpercentile(np.abs(data), 99))
                med = float(np.nanmedian(np.abs(data)))
                if med > MAX_PLAUSIBLE_MEDIAN_VELOCITY:
                    raise DataError(
                        f"the median |{dataset}| is {med:.3g} m/year: stable ground cannot move "
                        f"that fast (values in mm or cm?)", path=p, field="UNIT",
                        fix="set the UNIT attribute to the unit the values are in (e.g. mm/year)")
                if p99 > MAX_PLAUSIBLE_VELOCITY:
                    raise DataError(
                        f"99% of |{dataset}| reach {p99:.3g} m/year: not plausible velocities "
                        f"in m/year", path=p, field="UNIT",
                        fix="set the UNIT attribute to the unit the values are in (e.g. mm/year)")
    da = xr.DataArray(data, dims=("y", "x"), name=dataset)
    geocoded = _is_geocoded(atr)
    if geocoded:
        tr = mintpy_transform(atr)
        assert tr is not None  # geocoded
        xs = tr.c + (np.arange(width) + 0.5) * tr.a
        ys = tr.f + (np.arange(length) + 0.5) * tr.e
        da = da.assign_coords(x=("x", xs), y=("y", ys))
        crs = mintpy_crs(atr, path=p)
        da = da.rio.write_crs(crs).rio.write_transform(tr)
    else:
        da = da.assign_coords(y=("y", np.arange(length)), x=("x", np.arange(width)))
    da.attrs.update(units=units or "", source=str(p), dataset=dataset, geocoded=int(geocoded))
    da.attrs.update(_reference_attrs(atr, p, da, geocoded))
    da.attrs["mintpy"] = atr
    return da


def _nodata_value(atr: dict) -> float | None:
    v = atr.get("NO_DATA_VALUE", "none").strip().lower()
    if v in ("", "none", "nan"):
        return None
    try:
        return float(v)
    except ValueError:
        return None


def _reference_attrs(atr: dict, path: Path, da: xr.DataArray, geocoded: bool) -> dict:
    out: dict = {}
    ref = _ref_pixel(atr)
    if ref is None:
        return out
    out["ref_y"], out["ref_x"] = ref
    for k in ("REF_LAT", "REF_LON"):
        if k in atr:
            try:
                out[k.lower()] = float(atr[k])
            except ValueError:
                pass
    if geocoded and "ref_lat" in out and "ref_lon" in out:
        tr = da.rio.transform()
        cy = tr.f + (ref[0] + 0.5) * tr.e
        cx = tr.c + (ref[1] + 0.5) * tr.a
        ok = abs(cy - out["ref_lat"]) <= abs(tr.e) and abs(cx - out["ref_lon"]) <= abs(tr.a)
        out["ref_consistent"] = int(ok)
        if not ok:
            log.warning("%s: REF_Y/REF_X (%d, %d) lie at (%.6f, %.6f), not at REF_LAT/REF_LON "
                        "(%.6f, %.6f)", path, ref[0], ref[1], cy, cx, out["ref_lat"],
                        out["ref_lon"])
    return out


def _same_grid(a: xr.DataArray, b: xr.DataArray) -> bool:
    if a.shape != b.shape or a.attrs.get("geocoded") != b.attrs.get("geocoded"):
        return False
    if not a.attrs.get("geocoded"):
        return True
    ta, tb = a.rio.transform(), b.rio.transform()
    tol = 1e-6 * max(abs(ta.a), abs(ta.e))
    return a.rio.crs == b.rio.crs and all(abs(u - v) <= tol for u, v in zip(ta[:6], tb[:6]))


def _grid_text(da: xr.DataArray) -> str:
    if da.attrs.get("geocoded"):
        t = da.rio.transform()
        return f"{da.shape[0]}x{da.shape[1]} from ({t.c:.6f}, {t.f:.6f}) step ({t.a:.6g}, {t.e:.6g})"
    return f"{da.shape[0]}x{da.shape[1]} radar grid"


def _require_grid(ref: xr.DataArray, other: xr.DataArray) -> None:
    if not _same_grid(ref, other):
        raise GridMismatchError(
            f"grid {_grid_text(other)} differs from {Path(ref.attrs['source']).name} "
            f"({_grid_text(ref)})", path=other.attrs["source"], field=other.attrs["dataset"],
            fix="geocode both with the same lookup table/grid (MintPy geocode.py --lalo-step)")


def _look_direction(atr: dict) -> str:
    # ISCE/MintPy: ANTENNA_SIDE -1 = right-looking, +1 = left-looking
    side = atr.get("ANTENNA_SIDE", "-1").strip()
    try:
        return "left" if int(float(side)) == 1 else "right"
    except ValueError:
        return "right"


@expects(files="track")
def read_track(files: TrackFiles | str | os.PathLike, *,
               check_plausible: bool = True) -> xr.Dataset:
    """Read one track's velocity, uncertainty, viewing geometry and quality layers.

    Parameters
    ----------
    files : TrackFiles or path-like
        A track folder or its ``velocity.h5`` (found with :func:`find_track_files`, as
        the command line does), or a :class:`TrackFiles` built by hand.
    check_plausible : bool
        Refuse velocities whose magnitude cannot be m/year.

    Returns
    -------
    xarray.Dataset
        On the velocity grid: ``velocity`` [m/year, + toward the satellite],
        ``velocity_std`` [m/year] (when present), ``incidence`` [deg from vertical],
        ``azimuth`` [deg, ground-to-satellite, anticlockwise from north], and when
        available ``height`` [m], ``shadow`` (True = shadow/layover),
        ``water`` (True = water), ``coherence`` [-], ``mask`` (True = reliable);
        radar-coordinate tracks get 2-D ``latitude``/``longitude`` coordinates.
        ``attrs``: ``track``, ``orbit_direction``, ``look_direction``,
        ``azimuth_source`` (``layer`` or ``HEADING``), ``incidence_source``,
        the reference point and the file paths.

    Warns
    -----
    MissingGeometryWarning
        Azimuth derived from ``HEADING``, or incidence from the metadata.

    Raises
    ------
    DataError
        Neither ``azimuthAngle`` nor ``HEADING``; no incidence angle at all; a
        radar-coordinate track without latitude/longitude.
    GridMismatchError
        The geometry, coherence or mask file is on another grid than the velocity.
    """
    from mintpy.utils import utils0

    if not isinstance(files, TrackFiles):
        files = find_track_files(files)
    vatr = read_mintpy_attributes(files.velocity)
    vel = read_mintpy(files.velocity, "velocity", attrs=vatr, check_plausible=check_plausible)
    v = vel.copy()
    v.attrs = {"units": "m/year", "long_name": "LOS velocity, + toward satellite"}
    ds = xr.Dataset({"velocity": v})
    vnames = _datasets(files.velocity)
    if "velocityStd" in vnames:
        std = read_mintpy(files.velocity, "velocityStd", attrs=vatr, check_plausible=False)
        ds["velocity_std"] = (("y", "x"), std.values)
        ds["velocity_std"].attrs = {"units": "m/year"}
    gatr: dict = {}
    if files.geometry is not None:
        gatr = read_mintpy_attributes(files.geometry)
        gnames = _datasets(files.geometry)
        layers = {"incidenceAngle": "incidence", "azimuthAngle": "azimuth", "height": "height",
                  "shadowMask": "shadow", "waterMask": "water", "latitude": "latitude",
                  "longitude": "longitude"}
        for src, dst in layers.items():
            if src not in gnames:
                continue
            g = read_mintpy(files.geometry, src, attrs=gatr)
            _require_grid(vel, g)
            values = g.values
            if dst == "shadow":
                values = np.nan_to_num(values.astype(np.float32)) > 0
            elif dst == "water":
                # MintPy waterMask: 1/True = land (valid), 0 = water
                values = np.nan_to_num(values.astype(np.float32), nan=1.0) == 0
            else:
                values = values.astype(np.float32)
            if dst in ("latitude", "longitude"):
                ds = ds.assign_coords({dst: (("y", "x"), values)})
            else:
                ds[dst] = (("y", "x"), values)
    # radar coordinates are usable only with each pixel's latitude/longitude: said first,
    # before any angle is derived from the metadata
    if not vel.attrs.get("geocoded") and not ("latitude" in ds.coords and "longitude" in ds.coords):
        raise DataError("radar-coordinate velocity without latitude/longitude layers",
                        path=files.geometry or files.velocity, field="latitude",
                        fix="run MintPy's geocode.py on velocity.h5, temporalCoherence.h5 and "
                            "inputs/geometryRadar.h5 and give the geo/ folder, or give "
                            "inputs/geometryRadar.h5 (with latitude/longitude)")
    meta = {**gatr, **vatr}
    if "incidence" in ds:
        _check_incidence(ds["incidence"].values, files.geometry)
    # azimuth angle
    if "azimuth" in ds:
        _check_azimuth(ds["azimuth"].values, files.geometry, meta)
        az_source = "layer"
    else:
        if "HEADING" not in meta:
            raise DataError(
                "no azimuthAngle layer and no HEADING attribute: the line of sight is unknown",
                path=files.geometry or files.velocity, field="azimuthAngle",
                fix="give the geometry file (geometryGeo.h5) or add HEADING to the metadata")
        look = _look_direction(meta)
        heading = float(meta["HEADING"])
        az = float(utils0.heading2azimuth_angle(heading, look_direction=look))
        warnings.warn(
            f"{files.geometry or files.velocity}: no azimuthAngle layer; using azimuth {az:.2f} deg "
            f"derived from HEADING {heading:.2f} deg ({look}-looking) for every pixel",
            MissingGeometryWarning, stacklevel=2)
        ds["azimuth"] = (("y", "x"), np.full(vel.shape, az, np.float32))
        az_source = "HEADING"
    if "incidence" in ds:
        inc_source = "layer"
    else:
        try:
            inc = float(utils0.incidence_angle(meta, dimension=0, print_msg=False))
        except Exception:  # noqa: BLE001 - missing metadata keys
            inc = float("nan")
        if not np.isfinite(inc) or not 0 < inc < 90:
            raise DataError(
                "no incidenceAngle layer and no usable CENTER_INCIDENCE_ANGLE / STARTING_RANGE, "
                "RANGE_PIXEL_SIZE, HEIGHT metadata", path=files.geometry or files.velocity,
                field="incidenceAngle", fix="give the geometry file (geometryGeo.h5)")
        warnings.warn(
            f"{files.geometry or files.velocity}: no incidenceAngle layer; using the scene-centre "
            f"incidence {inc:.2f} deg from the metadata for every pixel",
            MissingGeometryWarning, stacklevel=2)
        ds["incidence"] = (("y", "x"), np.full(vel.shape, inc, np.float32))
        inc_source = "metadata"
    if files.coherence is not None:
        coh = read_mintpy(files.coherence, "temporalCoherence")
        _require_grid(vel, coh)
        ds["coherence"] = (("y", "x"), coh.values)
    if files.mask is not None:
        m = read_mintpy(files.mask)
        _require_grid(vel, m)
        ds["mask"] = (("y", "x"), np.nan_to_num(m.values.astype(np.float32)) > 0)
    if vel.attrs.get("geocoded"):
        ds = ds.rio.write_crs(vel.rio.crs).rio.write_transform(vel.rio.transform())
    ds.attrs.update({k: v for k, v in vel.attrs.items() if k != "mintpy"})
    ds.attrs.update(
        track=files.name or files.velocity.parent.name,
        orbit_direction=meta.get("ORBIT_DIRECTION", "unknown").lower(),
        look_direction=_look_direction(meta),
        azimuth_source=az_source, incidence_source=inc_source,
        velocity_file=str(files.velocity), geometry_file=str(files.geometry or ""),
        coherence_file=str(files.coherence or ""), mask_file=str(files.mask or ""),
    )
    return ds


#: the largest |azimuthAngle| that holds the ground-to-satellite azimuth of a near-polar
#: orbit, and the smallest: the look direction is within 45 deg of east or west (Sentinel-1
#: +-102 deg, ALOS-2 and TerraSAR-X alike); a heading (about -12 or -168 deg) is not
AZIMUTH_RANGE = (45.0, 135.0)


def _check_incidence(values: np.ndarray, path) -> None:
    """Refuse incidence angles in radians or outside 0..90 deg (from vertical)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    if 0.0 <= lo and hi <= 1.6:
        raise DataError(f"incidence angles span {lo:.3g}..{hi:.3g}: radians, not degrees",
                        path=path, field="incidenceAngle",
                        fix="write the layer in degrees (x 180/pi), as MintPy does")
    if lo < 0.0 or hi > 90.0:
        raise DataError(f"incidence angles span {lo:.3g}..{hi:.3g}, outside 0..90 deg from "
                        "vertical", path=path, field="incidenceAngle",
                        fix="give MintPy's incidenceAngle layer (degrees from vertical)")


def _check_azimuth(values: np.ndarray, path, meta: dict) -> None:
    """Refuse an azimuthAngle layer in radians or one that holds the heading: MintPy's
    azimuthAngle is the ground-to-satellite azimuth, anticlockwise from north (DESIGN §4)."""
    from mintpy.utils import utils0

    v = values[np.isfinite(values)]
    if v.size == 0:
        return
    wrapped = (v + 180.0) % 360.0 - 180.0
    med = float(np.median(wrapped))
    fix = ("write the ground-to-satellite azimuth, anticlockwise from north (about +102 deg "
           "ascending, -102 deg descending for Sentinel-1; "
           "mintpy.utils.utils0.heading2azimuth_angle converts a heading), or drop the layer "
           "so it is derived from HEADING")
    if float(np.abs(v).max()) <= 2 * np.pi + 1e-6:
        raise DataError(f"azimuth angles span {float(v.min()):.3g}..{float(v.max()):.3g}: "
                        "radians, not degrees", path=path, field="azimuthAngle", fix=fix)
    heading = meta.get("HEADING", "")  # none: float("") fails as a bad value does
    near_heading = False
    try:
        h = float(heading)
        near_heading = abs(((med - h) + 180.0) % 360.0 - 180.0) <= 5.0
        expected = float(utils0.heading2azimuth_angle(h, look_direction=_look_direction(meta)))
        expected_txt = f" (HEADING {h:.4g} deg gives {expected:.4g} deg)"
    except (TypeError, ValueError):
        expected_txt = ""
    if near_heading or not AZIMUTH_RANGE[0] <= abs(med) <= AZIMUTH_RANGE[1]:
        raise DataError(f"azimuth angles around {med:.4g} deg: this is the satellite heading, "
                        f"not the ground-to-satellite azimuth{expected_txt}", path=path,
                        field="azimuthAngle", fix=fix)


def _datasets(path: Path) -> list[str]:
    from mintpy.utils import readfile

    return [str(n) for n in readfile.get_dataset_list(str(path))]
