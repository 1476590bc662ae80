"""The PZI–elevation profile by aspect class and the lower limit of permafrost.

The first figure the mountain-permafrost literature reports for a region is the *lower limit
of permafrost*: the elevation above which permafrost is probable, given separately for
north- and south-facing slopes because radiation shifts it by hundreds of metres (Haeberli
1973, BTS; Lambiel & Reynard 2001; Boeckli et al. 2012).  This module computes it from
a PZI map and a DEM on the same grid:

* **aspect classes** (downslope aspect from true north, :func:`permafrost.terrain.
  terrain_gradient`, Horn's stencil, no smoothing): ``north`` = aspect within ±45° of 0°
  (``[315°, 45°)``), ``south`` within ±45° of 180° (``[135°, 225°)``), ``east_west`` the
  rest, and ``flat`` the cells with a slope below :data:`FLAT_SLOPE_DEG`, whose aspect is set
  by DEM noise rather than by the sun; the whole map is the class ``all``;
* **elevation bands** as in :func:`permafrost.area.zone_statistics`: band ``k`` holds
  ``k w <= z < (k + 1) w``;
* per band and class the **area-weighted mean PZI** [-] (ellipsoidal cell areas,
  :func:`permafrost.area.cell_areas`) over the valid, unmasked cells;
* the **lower limit** per class (:func:`lower_limit`): the elevation where the band-mean PZI
  crosses 0.5, by linear interpolation between band centres.  Where the mean crosses 0.5 more
  than once, the limit is the lowest elevation above which it stays >= 0.5 (and
  ``crossings`` says how many times it crossed); none where it never crosses.

It also flags where the mean PZI **falls with elevation above the highest label**
(:func:`falls_above`): beyond the labels a tree ensemble predicts its outermost leaves, and
covariates that keep changing with elevation (vegetation, radiation) can pull the PZI down
while air temperature, which a tree no longer resolves there, keeps falling.  Physically the
PZI of the high bands cannot fall by more than sampling noise (:data:`FALL_TOLERANCE`).

Everything is accumulated row block by row block (one halo row each side for the slope), so
memory is bounded by one block of each input, as for the area statistics.

References
----------
Haeberli, W. (1973), Z. Gletscherk. Glazialgeol. 9, 221–227 (BTS and the lower limit of
permafrost by aspect); Lambiel, C. & Reynard, E. (2001), Norsk Geogr. Tidsskr. 55, 219–223;
Boeckli, L. et al. (2012), The Cryosphere 6, 807–820 (APIM: permafrost index against
elevation and aspect); Horn, B. K. P. (1981), Proc. IEEE 69, 14–47 (slope and aspect).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr
from affine import Affine

from permafrost.area.ellipsoid import cell_areas
from permafrost.checks import require_geodataframe, require_xarray
from permafrost.defaults import auto_block_rows
from permafrost.errors import DataError
from permafrost.grid import grid_of
from permafrost.rasterize import Shapes, burn, polygons_in_crs
from permafrost.terrain import gradient_to_slope_aspect, terrain_gradient

__all__ = [
    "ASPECT_CLASSES",
    "FALL_TOLERANCE",
    "FLAT_SLOPE_DEG",
    "LIMIT_PZI",
    "MIN_BAND_CELLS",
    "ElevationProfile",
    "aspect_class",
    "elevation_profile",
    "falls_above",
    "lower_limit",
]

#: the classes of the profile, in output order (``all`` is the whole map)
ASPECT_CLASSES = ("all", "north", "south", "east_west", "flat")
#: slope [deg] below which a cell is ``flat``: on gentler slopes the aspect of a 30–100 m
#: DEM is dominated by noise and the radiation hardly depends on it (a 5° slope changes the
#: clear-sky noon irradiance by under 10 % between north and south at 38° N)
FLAT_SLOPE_DEG = 5.0
#: the PZI [-] of the lower limit: permafrost more likely than not (Boeckli et al. 2012)
LIMIT_PZI = 0.5
#: fewest valid cells [-] a band of a class needs to enter the lower limit and the fall check
#: (a band of a few cells at a summit says nothing about a belt of elevation)
MIN_BAND_CELLS = 30
#: largest fall [-] of the band-mean PZI from one band to the next above the highest label
#: that is not flagged (issue 22: "never falls by more than 0.02")
FALL_TOLERANCE = 0.02

_CODES = {"north": 1, "south": 2, "east_west": 3, "flat": 4}


def aspect_class(aspect_deg, slope_deg, *, flat_slope_deg: float = FLAT_SLOPE_DEG) -> np.ndarray:
    """Aspect class code of each cell: 1 north, 2 south, 3 east/west, 4 flat, 0 no data.

    Parameters
    ----------
    aspect_deg : array_like
        Downslope aspect [deg clockwise from true north].
    slope_deg : array_like
        Slope [deg]; NaN = no data.
    flat_slope_deg : float
        Slope [deg] below which a cell is flat (:data:`FLAT_SLOPE_DEG`).

    Returns
    -------
    numpy.ndarray
        int8 codes; north = aspect in [315, 360) or [0, 45), south = [135, 225).

    References
    ----------
    The ±45° sectors of the north/south contrast of Haeberli (1973) and Boeckli et al. (2012).
    """
    a = np.mod(np.asarray(aspect_deg, dtype=np.float64), 360.0)
    s = np.asarray(slope_deg, dtype=np.float64)
    code = np.full(a.shape, _CODES["east_west"], dtype=np.int8)
    code[(a >= 315.0) | (a < 45.0)] = _CODES["north"]
    code[(a >= 135.0) & (a < 225.0)] = _CODES["south"]
    code[s < flat_slope_deg] = _CODES["flat"]
    code[~(np.isfinite(s) & np.isfinite(a))] = 0
    return code


def lower_limit(centres, means, *, level: float = LIMIT_PZI) -> dict:
    """The elevation where a band-mean PZI profile crosses ``level`` (the lower limit).

    Parameters
    ----------
    centres : array_like
        Band centres [m], increasing.
    means : array_like
        Band-mean PZI [-] (NaN = no band: skipped).
    level : float
        The PZI of the limit [-] (:data:`LIMIT_PZI`).

    Returns
    -------
    dict
        ``elevation_m`` (None when the profile never crosses ``level``), ``crossings`` (how
        many times the profile crosses it), ``status`` (``crossed``, ``crossed_more_than_once``,
        ``above_everywhere``: the limit lies below the lowest band, ``below_everywhere``: no
        band reaches it, ``no_bands``), ``rule``.

    Notes
    -----
    Linear interpolation between the centres of the two bands that bracket the lowest
    elevation above which the mean stays >= ``level``; with one crossing that is the
    crossing.  Lower limit as the "elevation of a 0.5 permafrost probability" of Boeckli
    et al. (2012) and the BTS-derived lower limits of Haeberli (1973) and Lambiel & Reynard
    (2001).
    """
    c = np.asarray(centres, dtype=np.float64)
    m = np.asarray(means, dtype=np.float64)
    ok = np.isfinite(c) & np.isfinite(m)
    c, m = c[ok], m[ok]
    rule = (f"elevation where the band-mean PZI crosses {level:g}, linear between band centres; "
            f"if it crosses more than once, the lowest elevation above which it stays >= "
            f"{level:g}")
    if c.size == 0:
        return {"elevation_m": None, "crossings": 0, "status": "no_bands", "rule": rule}
    above = m >= level
    crossings = int(np.count_nonzero(above[1:] != above[:-1]))
    if not above[-1]:
        return {"elevation_m": None, "crossings": crossings, "status": "below_everywhere"
                if not above.any() else "below_at_the_top", "rule": rule}
    j = int(np.flatnonzero(~above)[-1]) + 1 if (~above).any() else 0
    if j == 0:
        return {"elevation_m": None, "crossings": crossings, "status": "above_everywhere",
                "rule": rule}
    z = c[j - 1] + (level - m[j - 1]) / (m[j] - m[j - 1]) * (c[j] - c[j - 1])
    return {"elevation_m": float(z), "crossings": crossings,
            "status": "crossed" if crossings == 1 else "crossed_more_than_once", "rule": rule}


def falls_above(centres, means, highest_label_m: float | None, *,
                tolerance: float = FALL_TOLERANCE) -> list[dict]:
    """The steps where the band-mean PZI falls by more than ``tolerance`` with elevation above
    the highest label.

    Parameters
    ----------
    centres, means : array_like
        Band centres [m] (increasing) and band-mean PZI [-] (NaN: skipped).
    highest_label_m : float or None
        Elevation of the highest training label [m]; None: nothing is checked.
    tolerance : float
        Largest fall [-] between consecutive bands that is not flagged.

    Returns
    -------
    list of dict
        ``{"from_m", "to_m", "from_pzi", "to_pzi", "fall"}`` per flagged step (band centres
        [m]), for the pairs of consecutive bands whose upper band's centre lies above the
        highest label.

    Notes
    -----
    Air temperature falls with elevation (lapse rate about 6 K km-1) and the probability of
    permafrost with it (Haeberli 1973; Boeckli et al. 2012): a band mean that falls where no
    label constrains the model is an artefact of the model's extrapolation.
    """
    if highest_label_m is None or not np.isfinite(highest_label_m):
        return []
    c = np.asarray(centres, dtype=np.float64)
    m = np.asarray(means, dtype=np.float64)
    ok = np.isfinite(c) & np.isfinite(m)
    c, m = c[ok], m[ok]
    out = []
    for i in range(1, c.size):
        if c[i] > highest_label_m and m[i - 1] - m[i] > tolerance + 1e-9:  # float noise
            out.append({"from_m": float(c[i - 1]), "to_m": float(c[i]),
                        "from_pzi": float(m[i - 1]), "to_pzi": float(m[i]),
                        "fall": float(m[i - 1] - m[i])})
    return out


@dataclass(frozen=True)
class ElevationProfile:
    """The PZI–elevation profile by aspect class (the result of :func:`elevation_profile`).

    Attributes
    ----------
    bands : list of dict
        One row per elevation band: ``band_min_m``, ``band_max_m``, ``centre_m`` and, per
        class of :data:`ASPECT_CLASSES`, ``<class>_mean_pzi`` [-] (None with no cell),
        ``<class>_km2`` and ``<class>_cells``.
    lower_limits : dict
        Per class, the result of :func:`lower_limit` on the bands with at least
        :data:`MIN_BAND_CELLS` cells.
    falls_above_labels : dict
        Per class, :func:`falls_above` (empty lists without a highest label).
    meta : dict
        Definitions: band width, aspect classes, flat slope, the limit's rule, the highest
        label, the mask.
    """

    bands: list[dict]
    lower_limits: dict
    falls_above_labels: dict
    meta: dict

    def series(self, cls: str, *, min_cells: int = MIN_BAND_CELLS):
        """``(centres [m], mean PZI [-])`` of a class over the bands with >= ``min_cells``."""
        c = np.array([b["centre_m"] for b in self.bands], dtype=np.float64)
        m = np.array([np.nan if b[f"{cls}_mean_pzi"] is None or b[f"{cls}_cells"] < min_cells
                      else b[f"{cls}_mean_pzi"] for b in self.bands], dtype=np.float64)
        return c, m

    @property
    def warnings(self) -> list[str]:
        """One sentence where the mean PZI falls with elevation above the highest label: of
        all cells if it falls there, else of the first aspect class where it does (the other
        classes that fall are named)."""
        falling = [c for c in ASPECT_CLASSES if self.falls_above_labels.get(c)]
        if not falling:
            return []
        falls = self.falls_above_labels[falling[0]]
        worst = max(falls, key=lambda f: f["fall"])
        who = "all cells" if falling[0] == "all" else f"{falling[0]}-facing cells"
        others = [c.replace("_", "/") for c in falling[1:]]
        return [f"the mean PZI ({who}) falls with elevation above the highest label "
                f"({self.meta['highest_label_m']:.0f} m): {worst['from_pzi']:.2f} at "
                f"{worst['from_m']:.0f} m to {worst['to_pzi']:.2f} at {worst['to_m']:.0f} m "
                f"(band centres; {len(falls)} step(s) falling by more than {FALL_TOLERANCE:g}"
                + (f"; also on {', '.join(others)} cells" if others else "")
                + "), although air temperature keeps falling there: the model extrapolates "
                "beyond its labels. Use a model that extrapolates along MAAT (model = "
                "\"logistic\") or drop the covariates that pull it down (docs/method.md, "
                "\"Beyond the highest label\")"]

    def as_dict(self) -> dict:
        """The content of ``profile.json``."""
        return {"bands": self.bands, "lower_limits": self.lower_limits,
                "falls_above_labels": self.falls_above_labels, "warnings": self.warnings,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, d) -> ElevationProfile:
        """The profile from its :meth:`as_dict` form (``profile.json`` read back)."""
        return cls(bands=list(d["bands"]), lower_limits=dict(d["lower_limits"]),
                   falls_above_labels=dict(d["falls_above_labels"]), meta=dict(d["meta"]))


def elevation_profile(
    pzi: xr.DataArray,
    dem: xr.DataArray,
    *,
    band_width: float = 200.0,
    highest_label_m: float | None = None,
    mask_vector=None,
    mask_raster: xr.DataArray | None = None,
    flat_slope_deg: float = FLAT_SLOPE_DEG,
    block_rows: int | None = None,
) -> ElevationProfile:
    """Area-weighted mean PZI per elevation band and aspect class, and the lower limits.

    Parameters
    ----------
    pzi : xarray.DataArray
        PZI [-] in [0, 1], NaN = nodata, 2-D with a CRS; may be Dask-backed.
    dem : xarray.DataArray
        Elevation [m] on the PZI grid.
    band_width : float
        Elevation band width [m] (bands ``[k w, (k + 1) w)``, as the area statistics).
    highest_label_m : float, optional
        Elevation of the highest training label [m]: the profile is checked for falls above it
        (:func:`falls_above`).
    mask_vector : geopandas.GeoDataFrame, optional
        Polygons to exclude (cell centre inside), as :func:`permafrost.area.zone_statistics`.
    mask_raster : xarray.DataArray, optional
        Raster on the PZI grid; non-zero, non-NaN cells are excluded.
    flat_slope_deg : float
        Slope [deg] below which a cell is ``flat``.
    block_rows : int, optional
        Rows per block (default :func:`permafrost.defaults.auto_block_rows`).

    Returns
    -------
    ElevationProfile

    Raises
    ------
    DataError
        Not 2-D, a DEM on another grid, a band width <= 0.

    References
    ----------
    Module docstring: Haeberli (1973); Lambiel & Reynard (2001); Boeckli et al. (2012);
    Horn (1981).
    """
    require_xarray(pzi, "pzi")
    require_xarray(dem, "dem")
    require_xarray(mask_raster, "mask_raster", optional=True)
    require_geodataframe(mask_vector, "mask_vector")
    if pzi.ndim != 2:
        raise DataError(f"the PZI raster must be 2-D, got dims {pzi.dims}",
                        path=pzi.attrs.get("source"), fix="give a single-band raster")
    grid = grid_of(pzi)
    nrows, ncols = grid.shape
    for other, what in ((dem, "DEM"), (mask_raster, "mask raster")):
        if other is not None and tuple(other.shape) != (nrows, ncols):
            raise DataError(f"the {what} is not on the PZI grid (shape {tuple(other.shape)} vs "
                            f"{(nrows, ncols)})", path=other.attrs.get("source"),
                            fix="read it with permafrost.read_aligned(path, like=pzi)")
    if not band_width > 0:
        raise DataError(f"band width must be > 0 m, got {band_width}", field="band_width",
                        fix="give e.g. 200")
    block_rows = block_rows or auto_block_rows(ncols)
    mask_shapes = Shapes([])
    if mask_vector is not None:
        mv, _ = polygons_in_crs(mask_vector, grid.crs, "mask")
        mask_shapes = Shapes(mv.geometry.to_numpy())

    ncls = len(ASPECT_CLASSES)
    area_sum: dict[int, np.ndarray] = {}
    wsum: dict[int, np.ndarray] = {}
    nsum: dict[int, np.ndarray] = {}

    def rows(arr, a, b):
        return np.asarray(arr.isel({arr.dims[0]: slice(a, b)}).values, dtype=np.float64)

    for r0 in range(0, nrows, block_rows):
        r1 = min(nrows, r0 + block_rows)
        h0, h1 = max(0, r0 - 1), min(nrows, r1 + 1)  # one halo row each side for the slope
        z_h = rows(dem, h0, h1)
        ge, gn = terrain_gradient(z_h, transform=grid.transform * Affine.translation(0, h0),
                                  crs=grid.crs, method="horn", smooth_sigma_px=0.0)
        slope_h, aspect_h = gradient_to_slope_aspect(ge, gn)
        sl = slice(r0 - h0, r0 - h0 + (r1 - r0))
        code = aspect_class(aspect_h[sl], slope_h[sl], flat_slope_deg=flat_slope_deg)
        z = z_h[sl]
        p = rows(pzi, r0, r1)
        area = np.broadcast_to(cell_areas(grid, slice(r0, r1)), p.shape)
        masked = np.zeros(p.shape, dtype=bool)
        if len(mask_shapes):
            masked |= burn(mask_shapes, grid.transform, (r0, 0, r1 - r0, ncols)) > 0
        if mask_raster is not None:
            masked |= np.nan_to_num(rows(mask_raster, r0, r1), nan=0.0) != 0
        ok = np.isfinite(p) & np.isfinite(z) & ~masked
        if not ok.any():
            continue
        k = np.floor(z[ok] / band_width).astype(np.int64)
        cls = code[ok].astype(np.int64)
        a, w = area[ok], area[ok] * p[ok]
        for kk in np.unique(k):
            if kk not in area_sum:
                area_sum[kk], wsum[kk] = np.zeros(ncls), np.zeros(ncls)
                nsum[kk] = np.zeros(ncls, dtype=np.int64)
            sel = k == kk
            c_sel = cls[sel]
            # slots 1-4: the aspect classes; slot 0 ("all"): every cell of the band (cells
            # without an aspect, code 0, count there only)
            ba = np.bincount(c_sel, weights=a[sel], minlength=ncls)
            bw = np.bincount(c_sel, weights=w[sel], minlength=ncls)
            bn = np.bincount(c_sel, minlength=ncls)
            ba[0], bw[0], bn[0] = a[sel].sum(), w[sel].sum(), sel.sum()
            area_sum[kk] += ba
            wsum[kk] += bw
            nsum[kk] += bn

    bands = []
    for kk in sorted(area_sum):
        lo, hi = kk * band_width, (kk + 1) * band_width
        row: dict[str, float | None] = {"band_min_m": float(lo), "band_max_m": float(hi),
                                        "centre_m": float(lo + hi) / 2}
        for i, name in enumerate(ASPECT_CLASSES):
            row[f"{name}_km2"] = float(area_sum[kk][i]) / 1e6
            row[f"{name}_cells"] = int(nsum[kk][i])
            row[f"{name}_mean_pzi"] = (float(wsum[kk][i] / area_sum[kk][i])
                                       if area_sum[kk][i] > 0 else None)
        bands.append(row)
    prof = ElevationProfile(bands=bands, lower_limits={}, falls_above_labels={}, meta={})
    limits, falls = {}, {}
    for name in ASPECT_CLASSES:
        c, m = prof.series(name)
        limits[name] = lower_limit(c, m)
        falls[name] = falls_above(c, m, highest_label_m)
    meta = {
        "band_width_m": float(band_width),
        "band_rule": "band k holds k*w <= elevation < (k+1)*w; mean PZI area-weighted over "
                     "the valid, unmasked cells of the band and class",
        "aspect_classes": {
            "north": "downslope aspect within ±45° of 0° (315° <= aspect < 45°)",
            "south": "downslope aspect within ±45° of 180° (135° <= aspect < 225°)",
            "east_west": "the other aspects (45–135° and 225–315°)",
            "flat": f"slope < {flat_slope_deg:g}° (aspect not defined by the sun)",
            "all": "every valid, unmasked cell"},
        "aspect_method": "Horn (1981) gradient of the DEM on the PZI grid, from true north, "
                         "no smoothing",
        "flat_slope_deg": float(flat_slope_deg),
        "limit_pzi": LIMIT_PZI,
        "min_band_cells": MIN_BAND_CELLS,
        "lower_limit_rule": next(iter(limits.values()))["rule"],
        "highest_label_m": None if highest_label_m is None else float(highest_label_m),
        "fall_tolerance": FALL_TOLERANCE,
        "fall_rule": (f"flagged where the band-mean PZI falls by more than {FALL_TOLERANCE:g} "
                      "from one band to the next and the upper band's centre lies above the "
                      "highest label"),
        "mask": None if mask_vector is None and mask_raster is None else "excluded",
        "source": pzi.attrs.get("source"),
        "dem": dem.attrs.get("source"),
        "references": "Haeberli (1973); Lambiel & Reynard (2001); Boeckli et al. (2012); "
                      "Horn (1981)",
    }
    return ElevationProfile(bands=bands, lower_limits=limits, falls_above_labels=falls,
                            meta=meta)
