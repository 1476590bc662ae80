"""Raster edges: read covariate rasters into xarray with their CRS; write atomic COGs.

No science here.  Reading checks what the rest of the package relies on, in one place
(:func:`check_raster`, called by every reader of this package before it reads a pixel):
no derived VRT band (checked in the XML, before GDAL opens the file), a CRS whose bounds
hold the coordinates, a north-up grid (no rotation), real values (no complex type), one
band unless a band is named, no undeclared sentinel such as -9999, and, where the role of
the raster is known (MAAT, elevation, slope, a probability...), values in that role's
plausible range (:data:`PLAUSIBLE`).  The values checked are a decimated sample
(overviews when the file has them), read once per file version.  GDAL's scale and offset
are applied on read (:func:`read_raster`, :func:`scale_offset`).  Writing always goes
through a temporary file and a rename (:mod:`permafrost.io.atomic`), and always produces
a Cloud-Optimized GeoTIFF written by GDAL's own COG driver.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from affine import Affine
from rasterio.errors import RasterioIOError

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError, OutputError
from permafrost.io.atomic import atomic_path, atomic_write_text

__all__ = [
    "RASTER_SUFFIXES",
    "ONLY_BAND",
    "PLAUSIBLE",
    "RasterHeader",
    "check_raster",
    "role_of",
    "scale_offset",
    "apply_scale_offset",
    "is_remote",
    "gdal_path",
    "vrt_sources",
    "read_raster",
    "write_cog",
    "set_gdal_cache",
    "RasterClasses",
    "raster_classes",
]

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".nc", ".img")

#: GDAL block cache in MB; GDAL's default (5 % of RAM) inflates peak memory, and every
#: command reads block by block (a 1024² float32 block is 4 MB a file: 64 MB holds a block and
#: its neighbours of several files); at 256 MB the cache alone grew train's peak by ~0.45 GB
#: from 16 to 64 Mpx (issue 24)
DEFAULT_GDAL_CACHEMAX_MB = 64


_LIBTIFF_QUIET = False


def _quiet_libtiff() -> None:
    """Switch off libtiff's global error printer (in rasterio's bundled libtiff).

    GDAL routes libtiff's errors per file to its own handler, so they still become
    exceptions; but a failed write in a Dask thread (a full disk) is also printed raw on
    the process's stderr by libtiff's default handler ("_tiffWriteProc: No space left on
    device."), a second line beside the one-line error.
    """
    global _LIBTIFF_QUIET
    if _LIBTIFF_QUIET:
        return
    _LIBTIFF_QUIET = True
    import ctypes
    import glob

    libs = glob.glob(os.path.join(os.path.dirname(rasterio.__file__), os.pardir,
                                  "rasterio.libs", "libtiff*.so*"))
    for lib in libs:
        try:
            tiff = ctypes.CDLL(lib)
            tiff.TIFFSetErrorHandler.restype = ctypes.c_void_p
            tiff.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
            tiff.TIFFSetErrorHandler(None)
        except (OSError, AttributeError):  # another build of rasterio: leave it as it is
            pass


def set_gdal_cache(megabytes: int = DEFAULT_GDAL_CACHEMAX_MB) -> None:
    """Bound GDAL's block cache (see DESIGN §6); respects a user's GDAL_CACHEMAX."""
    os.environ.setdefault("GDAL_CACHEMAX", str(int(megabytes)))


set_gdal_cache()


#: a GDAL virtual file system path (/vsicurl/, /vsis3/, /vsizip/ ...) or a URL (s3://, https://);
#: also the form Path leaves of a URL (one slash after the scheme)
_REMOTE = re.compile(r"^(/vsi[a-z0-9_]+/|[a-z][a-z0-9+.-]+:/)", re.IGNORECASE)


def is_remote(path) -> bool:
    """True for a GDAL virtual file system path or a URL (not checked on the local disk)."""
    return bool(_REMOTE.match(os.fspath(path) if not isinstance(path, str) else path))


def gdal_path(path) -> str | Path:
    """The path to hand to GDAL/rasterio: a local :class:`~pathlib.Path`, or for a virtual
    file system path or URL the string itself, with the ``//`` after a scheme that
    :class:`~pathlib.Path` collapses put back (``s3:/b/k`` -> ``s3://b/k``,
    ``/vsicurl/https:/h/f.tif`` -> ``/vsicurl/https://h/f.tif``)."""
    s = os.fspath(path) if not isinstance(path, str) else path
    if not is_remote(s):
        return Path(s)
    return re.sub(r"^((?:/vsi[a-z0-9_]+/)?[a-z][a-z0-9+.-]+):/(?!/)", r"\1://", s,
                  flags=re.IGNORECASE)


def vrt_sources(path) -> list:
    """The files a GDAL VRT reads: its ``SourceFilename`` (and warped VRTs'
    ``SourceDataset``) elements, relative to the VRT where ``relativeToVRT="1"``, else as
    GDAL takes them (absolute, or relative to the working directory); remote ones as GDAL
    paths.  In document order, without repeats; not recursive (a source that is a VRT
    names its own).  A file that is not VRT XML names nothing.

    Parsed with the standard library's expat reader, which refuses entity expansion bombs
    (expat >= 2.4) and fetches no external entity.
    """
    import xml.etree.ElementTree as ET

    p = Path(path)
    try:
        root = ET.parse(p).getroot()
    except (OSError, ET.ParseError):
        return []
    found: list = []
    for el in root.iter():
        if el.tag not in ("SourceFilename", "SourceDataset"):
            continue
        name = (el.text or "").strip()
        if not name:
            continue
        if is_remote(name):
            found.append(gdal_path(name))
        elif el.get("relativeToVRT", "0").strip() == "1":
            found.append(p.parent / name)
        else:
            found.append(Path(name))
    return list(dict.fromkeys(found))


def file_stem(path) -> str:
    """File stem of a local path or a URL (query string dropped)."""
    return Path(str(path).split("?", 1)[0]).stem


def _open_error(path, exc: Exception) -> InputFileError:
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if is_remote(path):
        return InputFileError(f"GDAL cannot read the remote raster ({msg})", path=path,
                              fix="check the URL and the access settings (e.g. "
                                  "AWS_NO_SIGN_REQUEST=YES for a public bucket)")
    if not path.exists():
        return InputFileError("file not found", path=path, fix="check the path")
    if path.suffix.lower() in (".nc", ".nc4", ".cdf", ".netcdf"):
        # a CF climate file (time axis, several variables) is not one raster band
        return InputFileError(
            "a NetCDF climate grid cannot be read as a single raster band", path=path,
            fix="use it in a stack file: [derived.NAME] function = \"downscale_maat\", "
                "coarse = FILE, period = \"1981-2010\" (docs/data-formats.md); "
                "`permafrost inspect` lists its variables")
    return InputFileError(
        f"not a readable raster ({msg})", path=path,
        fix="give a GeoTIFF or another format GDAL reads",
    )


# --------------------------------------------------------------------------------------
# read checks: one place for every raster this package reads
# --------------------------------------------------------------------------------------
class _OnlyBand(int):
    """The default ``band`` of the readers: band 1 of a raster that has only one band."""

    def __repr__(self) -> str:
        return "ONLY_BAND"


#: ``band=ONLY_BAND`` (the default): the raster must hold exactly one band
ONLY_BAND = _OnlyBand(1)

#: plausible values of a raster by role: (low, high, unit, what the unit is called); the
#: decimated sample's 0.5th and 99.5th percentiles must lie inside
PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    "maat": (-60.0, 40.0, "degC"),
    "elevation": (-500.0, 9000.0, "m"),
    "slope": (0.0, 90.0, "deg"),
    "aspect": (-1.0, 360.0, "deg"),
    "unit_signed": (-1.0, 1.0, "-"),
    "probability": (0.0, 1.0, "-"),
    "degree_days": (0.0, 20000.0, "degC day"),
}

#: covariate names (lower case, up to the first ``_``) -> role
_ROLE_NAMES = {
    "maat": "maat",
    "dem": "elevation", "elevation": "elevation", "elev": "elevation", "height": "elevation",
    "altitude": "elevation", "srtm": "elevation",
    "slope": "slope", "aspect": "aspect",
    "northness": "unit_signed", "eastness": "unit_signed", "ndvi": "unit_signed",
    "pzi": "probability",
    "ddf": "degree_days", "ddt": "degree_days",
}

#: values that stand for "no data" in files that do not declare it (GDAL, ArcGIS, SRTM,
#: integer extremes); |value| >= 1e30 (float32's -3.4e38 and the like) also counts
SENTINELS = (-9999.0, 9999.0, -99999.0, -999.0, -32768.0, -32767.0, 32767.0, 65535.0,
             -2147483648.0, 2147483647.0, 4294967295.0)
_HUGE = 1e30

#: cells of the decimated sample the value checks look at (its longer side)
SAMPLE_SIDE = 512

#: band descriptions and tags of this tool's own outputs (predict, applicability, validate)
_OWN_TAGS = ("PZI_CONTENT", "PZI_MODEL_SHA256")
_OWN_DESCRIPTIONS = ("PZI", "permafrost zone", "agreement:", "covariates outside the training")


def role_of(name: str | None) -> str | None:
    """The role of a covariate by its name (``maat``, ``dem``, ``slope_30m`` ...), or None.

    The name up to its first ``_`` is looked up in :data:`_ROLE_NAMES`; a stack file also
    gives roles through its derived covariates (the ``dem`` of ``slope`` is an elevation).
    """
    if not name:
        return None
    key = str(name).lower().split("_", 1)[0].split(".", 1)[0]
    return _ROLE_NAMES.get(key)


@dataclass(frozen=True)
class RasterHeader:
    """What :func:`check_raster` read of a raster: the header and a decimated sample."""

    count: int
    dtypes: tuple[str, ...]
    nodata: float | None
    scales: tuple[float, ...]
    offsets: tuple[float, ...]
    crs: object
    transform: Affine
    bounds: tuple[float, float, float, float]
    shape: tuple[int, int]
    tags: dict
    descriptions: tuple
    #: valid raw values (no declared nodata, finite) of each band sampled, by band number
    samples: dict = field(default_factory=dict)


_HEADERS: dict = {}
_HEADERS_LOCK = threading.Lock()


def _file_key(p) -> tuple | None:
    if is_remote(p):
        return (str(p),)
    try:
        st = os.stat(p)
    except OSError:
        return None
    return (str(Path(p).resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _looks_like_vrt(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            head = fh.read(256)
    except OSError:
        return False
    return head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith((b"<VRTDataset", b"<vrtdataset"))


def _refuse_derived_vrt(p: Path, _seen: set | None = None) -> None:
    """Refuse a VRT (or a VRT it reads, recursively) with a derived band, before GDAL opens
    it: a pixel function may be Python code that GDAL would run."""
    import xml.etree.ElementTree as ET

    seen = set() if _seen is None else _seen
    key = str(p.resolve())
    if key in seen or not p.is_file() or not _looks_like_vrt(p):
        return
    seen.add(key)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as exc:
        raise InputFileError(f"not a readable VRT ({exc})", path=p,
                             fix="give a GeoTIFF or a valid VRT") from None
    for el in root.iter():
        derived = (el.tag == "VRTRasterBand"
                   and el.attrib.get("subClass", "") == "VRTDerivedRasterBand")
        if derived or el.tag in ("PixelFunctionType", "PixelFunctionLanguage",
                                 "PixelFunctionCode"):
            fn = root.find(".//PixelFunctionType")
            lang = root.find(".//PixelFunctionLanguage")
            what = (f"pixel function {fn.text.strip()!r}" if fn is not None and fn.text else
                    "a pixel function")
            if lang is not None and lang.text:
                what += f" in {lang.text.strip()}"
            raise DataError(f"a VRT with a derived band ({what}) is not read: it computes "
                            "values, possibly with code", path=p, field="VRTDerivedRasterBand",
                            fix="compute the band into a GeoTIFF yourself (gdal_translate) if "
                                "you trust it, and give that file")
    for el in root.iter():
        if el.tag in ("SourceFilename", "SourceDataset") and el.text:
            src = el.text.strip()
            if is_remote(src):
                continue
            q = Path(src)
            if el.attrib.get("relativeToVRT", "0") == "1" or (
                    el.tag == "SourceDataset" and not q.is_absolute()):
                q = p.parent / q
            _refuse_derived_vrt(q, seen)


def _sample(src, band: int) -> np.ndarray:
    """Valid raw values of ``band`` on a grid of at most :data:`SAMPLE_SIDE` cells a side
    (nearest; GDAL takes an overview when the file has one)."""
    h, w = src.height, src.width
    f = max(h, w) / SAMPLE_SIDE
    shape = (h, w) if f <= 1 else (max(1, int(round(h / f))), max(1, int(round(w / f))))
    arr = src.read(band, out_shape=shape, masked=True)
    vals = np.ma.compressed(arr).astype(np.float64)
    return vals[np.isfinite(vals)]


def _read_header(p) -> RasterHeader:
    """Open the raster once (after the VRT check) for its header and, for a single-band
    raster, a decimated sample (of a multi-band raster: the band asked for, on demand)."""
    key = _file_key(p)
    with _HEADERS_LOCK:
        if key is not None and key in _HEADERS:
            return _HEADERS[key]
    if not is_remote(p):
        _refuse_derived_vrt(Path(p))
    try:
        with rasterio.open(p) as src:
            hdr = RasterHeader(
                count=src.count, dtypes=tuple(src.dtypes), nodata=src.nodata,
                scales=tuple(float(s) for s in src.scales),
                offsets=tuple(float(o) for o in src.offsets), crs=src.crs,
                transform=src.transform, bounds=tuple(src.bounds),
                shape=(src.height, src.width), tags=dict(src.tags()),
                descriptions=tuple(src.descriptions))
            if src.count == 1 and np.dtype(hdr.dtypes[0]).kind != "c":
                hdr.samples[1] = _sample(src, 1)
    except (RasterioIOError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(p if is_remote(p) else Path(p), exc) from None
    with _HEADERS_LOCK:
        if key is not None:
            if len(_HEADERS) > 256:
                _HEADERS.clear()
            _HEADERS[key] = hdr
    return hdr


def scale_offset(path, band: int = 1) -> tuple[float, float]:
    """GDAL's scale and offset of a band (1.0, 0.0 when unset): value = raw * scale + offset."""
    hdr = _read_header(gdal_path(path))
    i = min(max(int(band), 1), max(hdr.count, 1)) - 1
    s = hdr.scales[i] if i < len(hdr.scales) else 1.0
    o = hdr.offsets[i] if i < len(hdr.offsets) else 0.0
    return (1.0 if not np.isfinite(s) or s == 0 else s), (o if np.isfinite(o) else 0.0)


def apply_scale_offset(arr: xr.DataArray, scale: float, offset: float) -> xr.DataArray:
    """``arr * scale + offset`` in float64, cast back to float32 (unchanged when 1 and 0)."""
    if scale == 1.0 and offset == 0.0:
        return arr
    out = (arr.astype(np.float64) * scale + offset).astype(np.float32)
    out.attrs = {k: v for k, v in arr.attrs.items() if k not in ("scale_factor", "add_offset")}
    out.attrs["scale_offset_applied"] = f"{scale!r}, {offset!r}"
    out.encoding = dict(arr.encoding)
    out.name = arr.name
    return out


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _check_sentinels(p, vals: np.ndarray, hdr: RasterHeader, band: int) -> None:
    """Refuse a value that equals a known sentinel, lies further from the other values than
    their whole range, and is not the declared nodata."""
    if vals.size == 0:
        return
    cand = np.isin(vals, SENTINELS) | (np.abs(vals) >= _HUGE)
    if not cand.any():
        return
    rest = vals[~cand]
    for v in np.unique(vals[cand]):
        if rest.size:
            lo, hi = float(rest.min()), float(rest.max())
            dist = lo - v if v < lo else (v - hi if v > hi else 0.0)
            if dist <= max(hi - lo, 0.0):
                continue
            share = f"{np.count_nonzero(vals == v) / vals.size:.1%} of the cells sampled, " \
                    f"the others lie in {_fmt(lo)}..{_fmt(hi)}"
        else:
            share = "every cell sampled"
        shown = _fmt(float(np.float32(v))) if abs(v) >= _HUGE else _fmt(v)
        declared = "no nodata value" if hdr.nodata is None else f"nodata {_fmt(hdr.nodata)}"
        raise DataError(f"band {band} holds {shown} in {share}: an undeclared no-data value "
                        f"({declared} is set)", path=p, field="nodata",
                        fix=f"set nodata with `gdal_edit.py -a_nodata {shown} FILE`")


def _check_range(p, vals: np.ndarray, role: str, field_name: str) -> None:
    lo_ok, hi_ok, unit = PLAUSIBLE[role]
    if vals.size == 0:
        return
    lo, hi = (float(v) for v in np.percentile(vals, [0.5, 99.5]))
    found = f"{_fmt(lo)}..{_fmt(hi)}"
    if role == "elevation" and 0 < hi < 9.0 and lo > -0.5:
        raise DataError(f"elevations span {found}: kilometres, not metres", path=p,
                        field=field_name, fix="convert to metres (e.g. "
                        "`gdal_edit.py -scale 1000 FILE`, which is applied on read)")
    if lo_ok <= lo and hi <= hi_ok:
        return
    fix = f"give {role.replace('_', ' ')} values in {unit}"
    if role == "maat" and 180.0 <= lo and hi <= 340.0:
        problem, fix = (f"MAAT values span {found}: this looks like kelvin",
                        "convert to degC (e.g. `gdal_edit.py -offset -273.15 FILE`, which is "
                        "applied on read)")
    elif role == "maat" and -600.0 <= lo and hi <= 400.0:
        problem, fix = (f"MAAT values span {found}: tenths of degC?",
                        "set the scale (e.g. `gdal_edit.py -scale 0.1 FILE`) or convert to degC")
    elif role == "probability" and 0.0 <= lo and hi <= 100.0:
        problem, fix = (f"values span {found}: this looks like percent, not a probability",
                        "divide by 100 (e.g. `gdal_edit.py -scale 0.01 FILE`)")
    elif role == "unit_signed" and -10000.0 <= lo and hi <= 10000.0:
        problem, fix = (f"values span {found}, outside -1..1: scaled integers?",
                        "set the scale, e.g. `gdal_edit.py -scale 0.0001 FILE` for NDVI x 10000")
    elif role == "slope" and 0.0 <= lo and hi > 90.0:
        problem = f"slopes span {found}, above 90 deg: percent?"
        fix = "give the slope in degrees (gdaldem slope without -p)"
    else:
        problem = (f"values span {found}, outside the plausible {_fmt(lo_ok)}..{_fmt(hi_ok)} "
                   f"{unit} of {role.replace('_', ' ')}")
    raise DataError(problem, path=p, field=field_name, fix=fix)


def check_raster(path, *, band: int | None = ONLY_BAND, role: str | None = None,
                 covariate: bool = False, name: str | None = None) -> RasterHeader:
    """The read checks of a raster, in one place (see the module docstring).

    Parameters
    ----------
    path : path-like
        The raster (local, ``/vsi...`` or a URL).
    band : int or None
        The band to be read; :data:`ONLY_BAND` (the default) requires a single-band file,
        ``None`` accepts any number of bands.
    role : str, optional
        A key of :data:`PLAUSIBLE`: the values must lie in that role's range.
    covariate : bool
        The raster is read as a covariate: this tool's own outputs (PZI, zones,
        uncertainty, extrapolation, agreement) are refused, they would leak the target.
    name : str, optional
        The name the raster is read under (named in the messages).

    Raises
    ------
    DataError
        A derived VRT band, a rotated grid, complex values, several bands, an undeclared
        sentinel, values outside the role's range, this tool's own output as a covariate.
    CRSError
        Coordinates outside the CRS's bounds.
    """
    p = gdal_path(path)
    hdr = _read_header(p)
    kinds = {np.dtype(d).kind for d in hdr.dtypes}
    if "c" in kinds:
        raise DataError(f"complex values ({', '.join(sorted(set(hdr.dtypes)))}) are not read",
                        path=p, field="dtype",
                        fix="give real values (e.g. the amplitude: `gdal_translate -ot Float32` "
                            "of a derived band, or numpy.abs)")
    t = hdr.transform
    if t.b != 0 or t.d != 0:
        raise DataError(f"the grid is rotated (affine rotation terms {_fmt(t.b)}, {_fmt(t.d)})",
                        path=p, field="transform",
                        fix="warp it to a north-up grid first (`gdalwarp FILE OUT.tif`)")
    _check_crs_bounds(p, hdr)
    if band is ONLY_BAND and hdr.count > 1:
        raise DataError(f"holds {hdr.count} bands; only single-band rasters are read "
                        "(band 1 would be taken silently)", path=p, field="bands",
                        fix="split the bands (`gdal_translate -b N FILE OUT.tif`), or name the "
                            "band in a stack file (band = N)")
    if band is not None and not 1 <= int(band) <= hdr.count:
        raise DataError(f"has no band {int(band)} (it holds {hdr.count})", path=p,
                        field="band", fix=f"give a band from 1 to {hdr.count}")
    if covariate:
        own = [k for k in _OWN_TAGS if k in hdr.tags]
        desc = next((d for d in hdr.descriptions if d and d.startswith(_OWN_DESCRIPTIONS)),
                    None)
        if own or desc:
            what = f"tag {own[0]}" if own else f"band description {desc!r}"
            raise DataError(f"is an output of permafrost ({what}), not a covariate: it would "
                            "leak the target into the model", path=p, field=name or "covariate",
                            fix="remove it from the covariates")
    b = 1 if band is None else int(band)
    if b not in hdr.samples:
        try:
            with rasterio.open(p) as src:
                hdr.samples[b] = _sample(src, b)
        except (RasterioIOError, OSError, ValueError, RuntimeError) as exc:
            raise _open_error(p, exc) from None
    vals = hdr.samples.get(b)
    if vals is not None:
        _check_sentinels(p, vals, hdr, b)
        if role is not None:
            s, o = scale_offset(p, b)
            _check_range(p, vals * s + o, role, name or role)
    return hdr


def _check_crs_bounds(p, hdr: RasterHeader) -> None:
    """Coordinates must lie within the CRS's bounds: longitude/latitude for a geographic
    CRS; for a projected CRS, not degrees, and near the CRS's area of use."""
    if hdr.crs is None:
        return
    from pyproj import CRS as PCRS

    try:
        crs = PCRS.from_user_input(hdr.crs)
    except Exception:  # noqa: BLE001 - an unknown CRS is reported by its readers
        return
    left, bottom, right, top = hdr.bounds
    res = max(abs(hdr.transform.a), abs(hdr.transform.e))
    extent = f"x {_fmt(left)}..{_fmt(right)}, y {_fmt(bottom)}..{_fmt(top)}"
    name = crs.to_string()
    if crs.is_geographic:
        tol = res + 1e-9
        if (min(left, right) < -360 - tol or max(left, right) > 360 + tol
                or min(bottom, top) < -90 - tol or max(bottom, top) > 90 + tol):
            raise CRSError(f"coordinates ({extent}) lie outside longitude/latitude, yet the CRS "
                           f"is {name}: projected coordinates with the wrong CRS?", path=p,
                           field="crs", fix="assign the right CRS, e.g. "
                                            "`gdal_edit.py -a_srs EPSG:32647 FILE`")
        return
    if not crs.is_projected:
        return
    unit = (crs.axis_info[0].unit_name if crs.axis_info else "").lower()
    if unit.startswith("met") and res < 1e-2 and max(abs(left), abs(right)) <= 360 \
            and max(abs(bottom), abs(top)) <= 90:
        raise CRSError(f"coordinates ({extent}) and cells of {_fmt(res)} m look like degrees, "
                       f"yet the CRS is {name}", path=p, field="crs",
                       fix="assign the right CRS, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
    aou = crs.area_of_use
    if aou is None:
        return
    try:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(hdr.crs, "EPSG:4326", left, bottom, right, top,
                                      densify_pts=21)
    except Exception:  # noqa: BLE001 - outside the projection's domain
        w = s = e = n = float("nan")
    margin = 10.0
    if not all(np.isfinite([w, s, e, n])) or (
            e < aou.west - margin or w > aou.east + margin
            or n < aou.south - margin or s > aou.north + margin):
        raise CRSError(f"coordinates ({extent}) lie outside the area of use of {name} "
                       f"({aou.name}: lon {_fmt(aou.west)}..{_fmt(aou.east)}, lat "
                       f"{_fmt(aou.south)}..{_fmt(aou.north)})", path=p, field="crs",
                       fix="assign the CRS the coordinates are in (`gdal_edit.py -a_srs ...`)")


@expects(path="path")
def read_raster(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    chunks: int | Mapping | bool | None = None,
    band: int | None = ONLY_BAND,
    require_crs: bool = True,
    masked: bool = True,
    role: str | None = None,
) -> xr.DataArray:
    """Read one raster band as a 2-D :class:`xarray.DataArray` with its CRS.

    The file passes :func:`check_raster` first; GDAL's scale and offset are applied
    (``raw * scale + offset``, float32).

    Parameters
    ----------
    path : path-like
        Any raster GDAL reads.
    name : str, optional
        Name of the returned array (default: the file stem).
    chunks : int, mapping or bool, optional
        Dask chunks (``None`` reads into memory).
    band : int or None
        1-based band to return; ``None`` keeps all bands (3-D array).  The default
        (:data:`ONLY_BAND`) reads a single-band raster and refuses one with several bands.
    require_crs : bool
        Raise :class:`~permafrost.errors.CRSError` when the file has no CRS.
    masked : bool
        Replace the nodata value by NaN (the encoded nodata stays in ``encoding``).
    role : str, optional
        What the values are (a key of :data:`PLAUSIBLE`: ``maat``, ``elevation``...): they
        must lie in that role's plausible range.

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    CRSError
        The raster has no CRS and ``require_crs`` is true; coordinates outside the CRS.
    DataError
        A read check failed (:func:`check_raster`).
    """
    p = gdal_path(path)
    if isinstance(p, Path) and not p.exists():  # a local path (gdal_path)
        raise InputFileError("file not found", path=p, fix="check the path")
    netcdf = isinstance(p, Path) and p.suffix.lower() in (".nc", ".nc4", ".cdf")
    if not netcdf:  # a NetCDF file is checked by permafrost.io.netcdf (units, time axis)
        check_raster(p, band=band, role=role, name=name)
    try:
        # rioxarray annotates chunks as int, tuple or dict; it documents (and takes) True too
        da = rioxarray.open_rasterio(p, masked=masked, chunks=chunks)  # type: ignore[arg-type]
    except (RasterioIOError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(p, exc) from None
    if isinstance(da, (list, xr.Dataset)):
        raise InputFileError("holds several subdatasets; give one of them", path=p,
                             fix="point at a single-variable raster")
    if require_crs and da.rio.crs is None:
        raise CRSError("the raster has no CRS", path=p,
                       fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
    if band is not None and isinstance(p, Path) and p.suffix.lower() in (".nc", ".nc4", ".cdf") \
            and da.sizes.get("band", 1) > 1:
        # band 1 of a NetCDF time series is its first time step, not a climatology
        raise InputFileError(
            f"a NetCDF file with {da.sizes['band']} time steps or levels is not one raster "
            "band", path=p, fix="use it in a stack file: [derived.NAME] function = "
            "\"downscale_maat\", coarse = FILE, period = \"1981-2010\" (docs/data-formats.md)")
    if band is not None:
        if band < 1 or band > da.sizes.get("band", 1):
            raise DataError(f"has no band {band}", path=p)
        da = da.isel(band=band - 1, drop=True)
        if masked:
            so = ((float(da.attrs.get("scale_factor", 1.0)), float(da.attrs.get("add_offset", 0.0)))
                  if netcdf else scale_offset(p, band))
            da = apply_scale_offset(da, *so)
    da.name = name or file_stem(p)
    da.attrs["source"] = str(p)
    return da


def _gtiff_profile(dtype: str) -> dict:
    predictor = 3 if np.dtype(dtype).kind == "f" else 2
    return dict(tiled=True, blockxsize=512, blockysize=512, compress="DEFLATE",
                predictor=predictor, BIGTIFF="IF_SAFER")


@expects(data="dataarray", path="path")
def write_cog(
    data: xr.DataArray,
    path: str | os.PathLike,
    *,
    nodata: float | int | None = None,
    description: str | None = None,
    tags: Mapping[str, object] | None = None,
    dtype: str | None = None,
    units: str | None = None,
    lock: object | bool | None = None,
    overview_resampling: str = "average",
    blocksize: int = 512,
    colormap: Mapping[int, Sequence[int]] | None = None,
    category_names: Sequence[str] | None = None,
) -> Path:
    """Write a 2-D (or band-first 3-D) array as a Cloud-Optimized GeoTIFF, atomically.

    The data are first written as a tiled GeoTIFF (with a lock when they are Dask
    arrays, so blocks stream to disk with bounded memory), then copied by GDAL's COG
    driver; both go to temporary files and only the finished COG is renamed onto
    ``path``.  Output bytes depend only on the data, nodata, description and tags.

    Parameters
    ----------
    data : xarray.DataArray
        With a CRS (``data.rio.crs``) and spatial coordinates.
    path : path-like
        Destination ``.tif``.
    nodata : number, optional
        Nodata value written to the file; NaN in float data becomes this value.
    description : str, optional
        Band description (for a 3-D array, one per band separated by ``|``).
    tags : mapping, optional
        Dataset-level metadata tags (provenance); values are turned into strings.
    units : str, optional
        Every band's unit (GDAL's band unit type, which QGIS and ``gdalinfo`` show; UDUNITS
        spelling, ``"1"`` for a dimensionless quantity such as a probability).
    dtype : str, optional
        Output data type (default: the array's).
    lock : optional
        A lock for Dask writes (default: a thread lock; pass a ``distributed.Lock``
        on a cluster).
    overview_resampling : str
        GDAL resampling for overviews (``average`` for continuous, ``nearest`` for
        classes).
    colormap : mapping, optional
        Colour table of a single-band 8-bit raster, ``{code: (r, g, b[, a])}`` (0-255),
        stored in the GeoTIFF itself.
    category_names : sequence of str, optional
        Name of each code from 0 (GDAL category names), written to the GDAL sidecar
        ``<path>.aux.xml`` (GeoTIFF has no tag for them); with a colour table, QGIS and
        ``gdalinfo`` show the classes by name and colour.
    """
    if data.rio.crs is None:
        raise CRSError("the array to write has no CRS", path=path,
                       fix="set one with .rio.write_crs()")
    out_dtype = np.dtype(dtype or data.dtype).name
    da = data
    if nodata is not None:
        if np.dtype(out_dtype).kind == "f":
            da = da.fillna(nodata)
        da = da.rio.write_nodata(nodata, encoded=False)
    if da.dtype != np.dtype(out_dtype):
        da = da.astype(out_dtype)
    da.attrs = {k: v for k, v in da.attrs.items() if k in ("_FillValue",)}
    da.encoding = {}
    da = da.rio.write_nodata(nodata, encoded=False) if nodata is not None else da
    is_dask = getattr(da.data, "dask", None) is not None
    if is_dask and lock is None:
        lock = threading.Lock()
    target = Path(path)
    _quiet_libtiff()
    with atomic_path(target, suffix=".tif") as tmp_cog:
        tmp_tiled = tmp_cog.with_name(tmp_cog.name + ".tiled.tif")
        try:
            da.rio.to_raster(tmp_tiled, lock=lock if is_dask else None,
                             windowed=False, **_gtiff_profile(out_dtype))
            with rasterio.open(tmp_tiled, "r+") as dst:
                if description:
                    descs = description.split("|")
                    for i in range(dst.count):
                        dst.set_band_description(i + 1, descs[min(i, len(descs) - 1)])
                dst.update_tags(**{str(k): _tag(v) for k, v in (tags or {}).items()})
                if units is not None:
                    for i in range(dst.count):
                        dst.set_band_unit(i + 1, units)
                if colormap:
                    dst.write_colormap(1, {int(k): tuple(int(c) for c in v)
                                           for k, v in colormap.items()})
            predictor = "FLOATING_POINT" if np.dtype(out_dtype).kind == "f" else "YES"
            try:
                rasterio.shutil.copy(
                    tmp_tiled, tmp_cog, driver="COG", COMPRESS="DEFLATE", PREDICTOR=predictor,
                    BLOCKSIZE=blocksize, OVERVIEW_RESAMPLING=overview_resampling.upper(),
                    BIGTIFF="IF_SAFER", NUM_THREADS="1",
                )
            except rasterio.errors.RasterioIOError as exc:
                raise OutputError(f"GDAL could not write the COG ({exc})", path=target) from None
        finally:
            if tmp_tiled.exists():
                tmp_tiled.unlink()
    if category_names:
        _write_category_names(target, category_names)
    return target


def _write_category_names(path: Path, names: Sequence[str]) -> Path:
    """GDAL's PAM sidecar (``<path>.aux.xml``) with the band's category names, atomically."""
    cats = "".join(f"      <Category>{escape(str(n))}</Category>\n" for n in names)
    xml = ("<PAMDataset>\n  <PAMRasterBand band=\"1\">\n    <CategoryNames>\n"
           f"{cats}    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n")
    return atomic_write_text(Path(str(path) + ".aux.xml"), xml)


def _tag(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class RasterClasses:
    """What a raster says of its classes (:func:`raster_classes`).

    Attributes
    ----------
    categorical : bool
        Declared categorical: a ``kind=categorical`` tag (dataset or band), GDAL category
        names or a raster attribute table (``<path>.aux.xml``).
    classes : str or None
        The class table as a ``classes`` tag string (``"1=bedrock;2=coarse debris"``): the
        tag itself, else built from the category names (code = index) or the attribute
        table's value and name columns.
    declared_by : str or None
        ``tag``, ``category names`` or ``attribute table``.
    dtype : str
        The band's data type.
    scaled : bool
        The band has a GDAL scale or offset (its codes would be changed on reading).
    """

    categorical: bool
    classes: str | None
    declared_by: str | None
    dtype: str
    scaled: bool


#: GDAL raster attribute table field usages (GDALRATFieldUsage): GFU_Name, GFU_Min, GFU_MinMax
_RAT_NAME, _RAT_MIN, _RAT_MINMAX = 2, 3, 5


def _pam_band(path, band: int):
    """The ``<PAMRasterBand band=...>`` element of a raster's GDAL sidecar, or None."""
    import xml.etree.ElementTree as ET  # noqa: PLC0415

    if is_remote(path):
        return None
    aux = Path(f"{path}.aux.xml")
    if not aux.is_file():
        return None
    try:
        root = ET.parse(aux).getroot()
    except (ET.ParseError, OSError):
        return None
    for b in root.iter("PAMRasterBand"):
        if int(b.get("band", "1")) == int(band):
            return b
    return None


def _rat_classes(rat) -> str | None:
    """``code=name;...`` from a GDAL raster attribute table element (value and name
    columns by their usage, else the column named ``value`` and the first text column)."""
    fields = []
    for f in rat.findall("FieldDefn"):
        fields.append(((f.findtext("Name") or "").strip(), int(f.findtext("Type") or 0),
                       int(f.findtext("Usage") or 0)))
    if not fields:
        return None
    val = next((i for i, f in enumerate(fields) if f[2] in (_RAT_MINMAX, _RAT_MIN)),
               next((i for i, f in enumerate(fields) if f[0].lower() == "value"), None))
    nam = next((i for i, f in enumerate(fields) if f[2] == _RAT_NAME),
               next((i for i, f in enumerate(fields) if f[1] == 2 and i != val), None))
    if val is None:
        return None
    parts = []
    for row in rat.findall("Row"):
        cells = [c.text or "" for c in row.findall("F")]
        try:
            code = int(float(cells[val]))
        except (IndexError, ValueError):
            continue
        name = cells[nam].strip() if nam is not None and nam < len(cells) else str(code)
        parts.append(f"{code}={name or code}")
    return ";".join(parts) or None


def raster_classes(path, band: int = ONLY_BAND) -> RasterClasses:
    """Whether a raster declares itself categorical, and its class table.

    A raster is categorical when its GDAL metadata (dataset or band) has
    ``kind=categorical`` (its ``classes`` tag, ``"1=bedrock;2=..."``, is the class table),
    or when GDAL's sidecar ``<path>.aux.xml`` gives the band category names (code = their
    index; empty names skipped) or a raster attribute table.  GeoTIFF stores neither of
    the last two in the file itself, so GDAL keeps them in the sidecar, which is read here
    as XML.

    Parameters
    ----------
    path : path-like
        A raster GDAL reads (local or remote; a remote one's sidecar is not read).
    band : int
        The band (1-based).
    """
    p = gdal_path(path)
    try:
        with rasterio.open(p) as src:
            tags = {**{k.lower(): v for k, v in src.tags().items()},
                    **{k.lower(): v for k, v in src.tags(int(band)).items()}}
            dtype = str(src.dtypes[int(band) - 1])
            i = int(band) - 1
            scaled = (src.scales[i] not in (None, 1.0) or src.offsets[i] not in (None, 0.0))
    except (RasterioIOError, IndexError) as exc:
        raise InputFileError(f"cannot read the raster ({exc})", path=p,
                             fix="check the file") from None
    kind = str(tags.get("kind", "")).strip().lower()
    if kind == "categorical":
        return RasterClasses(True, tags.get("classes"), "tag", dtype, scaled)
    b = _pam_band(p, band)
    if b is not None:
        names = [c.text or "" for c in b.findall("CategoryNames/Category")]
        if any(n.strip() for n in names):
            table = ";".join(f"{i}={n.strip()}" for i, n in enumerate(names) if n.strip())
            return RasterClasses(True, table, "category names", dtype, scaled)
        rat = b.find("GDALRasterAttributeTable")
        if rat is not None:
            return RasterClasses(True, _rat_classes(rat), "attribute table", dtype, scaled)
    return RasterClasses(False, None, None, dtype, scaled)

