"""Map tiles and map values out of the run's files, for the viewer (``permafrost serve``).

- Raster tiles: XYZ tiles of the web-mercator tiling scheme (EPSG:3857, 256 px, tile (0, 0)
  at the north-west corner; the scheme of OpenStreetMap and Leaflet), cut from a COG by
  rasterio's :class:`~rasterio.vrt.WarpedVRT`.  The source level is the coarsest of the
  file's overviews whose cells are no larger than the tile's pixels (GDAL's ``-ovr AUTO``
  rule), so a zoomed-out tile reads a few overview blocks, never the full-resolution image.
- Values at a point: the package's one point-sampling rule,
  :func:`permafrost.grid.sample_at_points` (the value of the cell holding the point).
- Vectors as GeoJSON in EPSG:4326 (RFC 7946 coordinates: longitude, latitude).
- PNG encoding of an RGBA tile (zlib, no imaging library).

No science and no colours here: :mod:`permafrost.workflows.viewer` colours the values.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from permafrost.grid import sample_at_points
from permafrost.io.rasters import read_raster, scale_offset
from permafrost.io.vectors import read_vector

__all__ = ["TILE_SIZE", "MERCATOR_HALF_M", "tile_bounds", "RasterTiles", "vector_geojson",
           "encode_png"]

#: tile edge [px]
TILE_SIZE = 256
#: half the extent of the web-mercator square [m]: pi times the WGS84 semi-major axis
MERCATOR_HALF_M = math.pi * 6378137.0
#: the deepest zoom served (about 0.15 m pixels at the equator)
MAX_ZOOM = 20


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Web-mercator bounds (left, bottom, right, top) [m] of XYZ tile ``z/x/y``."""
    size = 2 * MERCATOR_HALF_M / 2 ** z
    left = -MERCATOR_HALF_M + x * size
    top = MERCATOR_HALF_M - y * size
    return left, top - size, left + size, top


def tile_centre_lat(z: int, y: int) -> float:
    """Latitude [degrees] of the centre of a tile row."""
    merc_y = MERCATOR_HALF_M - (y + 0.5) * 2 * MERCATOR_HALF_M / 2 ** z
    return math.degrees(2 * math.atan(math.exp(merc_y / 6378137.0)) - math.pi / 2)


@dataclass
class RasterTiles:
    """One single-band raster served as tiles and sampled at points.

    Parameters
    ----------
    path : Path
        The raster (a COG with overviews; any GDAL raster works, a file without overviews is
        read at full resolution).
    resampling : str
        ``nearest`` (classes, and values shown as they are) or ``bilinear`` (a DEM).
    """

    path: Path
    resampling: str = "nearest"
    crs: object = field(init=False)
    bounds_3857: tuple = field(init=False)
    res: float = field(init=False)
    overviews: list = field(init=False)
    _scale: tuple = field(init=False)
    _lazy: object = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        with rasterio.open(self.path) as src:
            self.crs = src.crs
            self.res = float(min(abs(src.res[0]), abs(src.res[1])))
            self.overviews = list(src.overviews(1))
            self.bounds_3857 = transform_bounds(src.crs, "EPSG:3857", *src.bounds,
                                                densify_pts=21)
        self._scale = scale_offset(self.path)

    def overview_level(self, z: int, x: int, y: int) -> int | None:
        """Index of the overview a tile is read from (``None``: full resolution): the
        coarsest overview whose cells are no larger than the tile's pixels."""
        l, b, r, t = transform_bounds("EPSG:3857", self.crs, *tile_bounds(z, x, y),
                                      densify_pts=21)
        need = min(r - l, t - b) / TILE_SIZE
        level = None
        for i, factor in enumerate(self.overviews):
            if self.res * factor <= need:
                level = i
        return level

    def intersects(self, z: int, x: int, y: int) -> bool:
        l, b, r, t = tile_bounds(z, x, y)
        L, B, R, T = self.bounds_3857
        return l < R and r > L and b < T and t > B

    def read(self, z: int, x: int, y: int, *, buffer: int = 0) -> np.ndarray | None:
        """Values of tile ``z/x/y`` as float64 ``(256 + 2 buffer)²`` (NaN: nodata or outside
        the raster), or ``None`` when the tile misses the raster.  ``buffer`` pixels of the
        neighbouring tiles are added on each side (for a hillshade without seams)."""
        if not self.intersects(z, x, y):
            return None
        l, b, r, t = tile_bounds(z, x, y)
        px = (r - l) / TILE_SIZE
        n = TILE_SIZE + 2 * buffer
        transform = from_bounds(l - buffer * px, b - buffer * px, r + buffer * px,
                                t + buffer * px, n, n)
        level = self.overview_level(z, x, y)
        opts = {} if level is None else {"overview_level": level}
        with rasterio.open(self.path, **opts) as src:
            with WarpedVRT(src, crs="EPSG:3857", transform=transform, width=n, height=n,
                           resampling=Resampling[self.resampling], add_alpha=src.nodata is None,
                           src_nodata=src.nodata, nodata=src.nodata) as vrt:
                arr = vrt.read(1, masked=True)
                valid = ~np.ma.getmaskarray(arr)
                if src.nodata is None:
                    valid &= vrt.read(vrt.count) > 0
        out = np.where(valid, np.ma.getdata(arr).astype("float64"), np.nan)
        scale, offset = self._scale
        if (scale, offset) != (1.0, 0.0):
            out = out * scale + offset
        return out

    def values_at(self, lon, lat) -> np.ndarray:
        """Values [the raster's units] at points given in longitude, latitude [degrees]
        (:func:`permafrost.grid.sample_at_points`: the cell holding each point; NaN off the
        grid and at nodata)."""
        if self._lazy is None:
            self._lazy = read_raster(self.path, chunks={"band": 1, "x": 1024, "y": 1024})
        vals, _ = sample_at_points(self._lazy, np.atleast_1d(lon), np.atleast_1d(lat),
                                   crs="EPSG:4326")
        return vals


def vector_geojson(path: Path, *, columns: tuple[str, ...] = ()) -> bytes:
    """A vector file as a GeoJSON FeatureCollection in EPSG:4326 [bytes, UTF-8], with only
    the given attribute columns (those present)."""
    gdf = read_vector(path, allow_empty=True)
    keep = [c for c in columns if c in gdf.columns]
    gdf = gdf[keep + [gdf.geometry.name]].to_crs("EPSG:4326")
    return json.dumps(json.loads(gdf.to_json(na="null", drop_id=True)),
                      separators=(",", ":"), allow_nan=False).encode()


def encode_png(rgba: np.ndarray) -> bytes:
    """An ``(h, w, 4)`` uint8 RGBA array as PNG bytes (8-bit truecolour with alpha)."""
    rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
    h, w, _ = rgba.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rgba.reshape(h, w * 4)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b""))
