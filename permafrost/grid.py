"""The raster grid: CRS, affine transform and shape, in one small immutable object.

Every module that needs the geometry of a raster (cell areas, covariate alignment,
validation sampling, terrain) uses :class:`Grid` and :func:`grid_of` from here.  The
transform maps (column, row) of a cell's outer corner to CRS coordinates (GDAL/rasterio
convention: ``transform.c, transform.f`` is the outer corner of the first pixel).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyproj
import rioxarray  # noqa: F401  (registers the .rio accessor)
from affine import Affine

from permafrost.errors import CRSError

__all__ = ["Grid", "grid_of"]


@dataclass(frozen=True)
class Grid:
    """A raster grid: CRS, affine transform (outer corner of the first pixel), shape.

    Parameters
    ----------
    crs : pyproj.CRS
        The grid's CRS.
    transform : affine.Affine
        Pixel (column, row) corner -> CRS coordinates [CRS units].
    shape : tuple of int
        ``(height, width)`` = (rows, columns) [cells].
    """

    crs: pyproj.CRS
    transform: Affine
    shape: tuple[int, int]

    def __post_init__(self):
        object.__setattr__(self, "shape", (int(self.shape[0]), int(self.shape[1])))

    @property
    def height(self) -> int:
        """Number of rows [cells]."""
        return self.shape[0]

    @property
    def width(self) -> int:
        """Number of columns [cells]."""
        return self.shape[1]

    def coords(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre x (per column) and y (per row) [CRS units]."""
        t = self.transform
        x = t.c + t.a * (np.arange(self.width) + 0.5)
        y = t.f + t.e * (np.arange(self.height) + 0.5)
        return x, y

    def block_transform(self, row0: int) -> Affine:
        """Transform of the block of rows that starts at row ``row0``."""
        return self.transform @ Affine.translation(0, row0)

    @classmethod
    def from_dataarray(cls, obj) -> Grid:
        """The grid of a DataArray or Dataset with a ``rio`` CRS (see :func:`grid_of`)."""
        return grid_of(obj)


def grid_of(obj) -> Grid:
    """The :class:`Grid` of a 2-D DataArray (or a Dataset) with a ``rio`` CRS.

    Parameters
    ----------
    obj : xarray.DataArray or xarray.Dataset
        Raster with ``.rio`` CRS and transform.

    Raises
    ------
    CRSError
        The raster has no CRS.
    """
    if obj.rio.crs is None:
        raise CRSError("the raster has no CRS", path=obj.attrs.get("source"), field="crs",
                       fix="assign one, e.g. `gdal_edit.py -a_srs EPSG:4326 FILE`")
    return Grid(pyproj.CRS.from_user_input(obj.rio.crs.to_wkt()), obj.rio.transform(),
                (int(obj.rio.height), int(obj.rio.width)))
