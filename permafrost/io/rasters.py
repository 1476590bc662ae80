"""Raster edges: read covariate rasters into xarray with their CRS; write atomic COGs.

No science here.  Reading checks what the rest of the package relies on (a CRS, a
readable file, one band per covariate); writing always goes through a temporary file
and a rename (:mod:`permafrost.io._atomic`), and always produces a Cloud-Optimized
GeoTIFF written by GDAL's own COG driver.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from rasterio.errors import RasterioIOError

from permafrost.checks import expects
from permafrost.errors import CRSError, DataError, InputFileError, OutputError
from permafrost.io._atomic import atomic_path, atomic_write_text

__all__ = [
    "RASTER_SUFFIXES",
    "is_remote",
    "gdal_path",
    "vrt_sources",
    "read_raster",
    "write_cog",
    "set_gdal_cache",
]

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".nc", ".img")

#: GDAL block cache in MB; GDAL's default (5 % of RAM) inflates peak memory
DEFAULT_GDAL_CACHEMAX_MB = 256


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


def _stem(path) -> str:
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


@expects(path="path")
def read_raster(
    path: str | os.PathLike,
    *,
    name: str | None = None,
    chunks: int | Mapping | bool | None = None,
    band: int | None = 1,
    require_crs: bool = True,
    masked: bool = True,
) -> xr.DataArray:
    """Read one raster band as a 2-D :class:`xarray.DataArray` with its CRS.

    Parameters
    ----------
    path : path-like
        Any raster GDAL reads.
    name : str, optional
        Name of the returned array (default: the file stem).
    chunks : int, mapping or bool, optional
        Dask chunks (``None`` reads into memory).
    band : int or None
        1-based band to return; ``None`` keeps all bands (3-D array).
    require_crs : bool
        Raise :class:`~permafrost.errors.CRSError` when the file has no CRS.
    masked : bool
        Replace the nodata value by NaN (the encoded nodata stays in ``encoding``).

    Raises
    ------
    InputFileError
        Missing or unreadable file.
    CRSError
        The raster has no CRS and ``require_crs`` is true.
    """
    p = gdal_path(path)
    if not is_remote(p) and not p.exists():
        raise InputFileError("file not found", path=p, fix="check the path")
    try:
        da = rioxarray.open_rasterio(p, masked=masked, chunks=chunks)
    except (RasterioIOError, OSError, ValueError, RuntimeError) as exc:
        raise _open_error(p, exc) from None
    if isinstance(da, (list, xr.Dataset)):
        raise InputFileError("holds several subdatasets; give one of them", path=p,
                             fix="point at a single-variable raster")
    if require_crs and da.rio.crs is None:
        raise CRSError("the raster has no CRS", path=p,
                       fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
    if band is not None and not is_remote(p) and p.suffix.lower() in (".nc", ".nc4", ".cdf") \
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
    da.name = name or _stem(p)
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
