"""Permafrost zones of a PZI map: the zone limits, codes and names in one place.

Zones (Brown et al. 1997 classes as used for PZI maps by Obu et al. 2019)
    continuous PZI ≥ 0.9, discontinuous 0.5 ≤ PZI < 0.9, sporadic 0.1 ≤ PZI < 0.5,
    isolated 0.01 ≤ PZI < 0.1.  The *permafrost region* is the union of the four zones,
    PZI ≥ 0.01 (Gruber 2012 uses "> 0.01"; the difference is only cells exactly at 0.01,
    and this choice keeps region = sum of zones).  The headline is the area with PZI ≥ 0.5;
    the *PZI-weighted area* Σ PZI·A is Gruber's (2012) "permafrost area".

References
----------
Brown, J., Ferrians, O. J., Heginbottom, J. A., Melnikov, E. S. (1997). Circum-Arctic map
    of permafrost and ground-ice conditions. USGS CP-45.
Gruber, S. (2012). Derivation and analysis of a high-resolution estimate of global
    permafrost zonation. The Cryosphere 6, 221–233.
Obu, J. et al. (2019). Northern Hemisphere permafrost map based on TTOP modelling for
    2000–2016 at 1 km² scale. Earth-Science Reviews 193, 299–316.
"""

from __future__ import annotations

import numpy as np

from permafrost.grid import Grid
from permafrost.styles import ZONE_NODATA
from permafrost.terrain import geographic_cell_size

__all__ = [
    "ZONES",
    "ZONE_NAMES",
    "ZONE_CODES",
    "ZONE_LIMITS",
    "zone_range_text",
    "HEADLINE_THRESHOLD",
    "REGION_THRESHOLD",
    "AGGREGATE_M",
    "classify_zones",
    "aggregation_factors",
]

#: (name, lower bound inclusive, upper bound exclusive or None)
#: Brown et al. 1997 / Obu et al. 2019
ZONES: tuple[tuple[str, float, float | None], ...] = (
    ("continuous", 0.9, None),
    ("discontinuous", 0.5, 0.9),
    ("sporadic", 0.1, 0.5),
    ("isolated", 0.01, 0.1),
)
#: zone names by code, from 0 = ``none`` (below the lowest limit) up (derived from ZONES)
ZONE_NAMES: tuple[str, ...] = ("none", *(name for name, _, _ in reversed(ZONES)))
#: zone codes in :func:`classify_zones` (0 = below 0.01, 255 = nodata)
ZONE_CODES = {name: code for code, name in enumerate(ZONE_NAMES)}
#: lower zone limits [-] from the bottom (isolated .. continuous), inclusive
ZONE_LIMITS: tuple[float, ...] = tuple(lo for _, lo, _ in reversed(ZONES))
HEADLINE_THRESHOLD = 0.5
REGION_THRESHOLD = ZONE_LIMITS[0]


def zone_range_text(name: str) -> str:
    """The PZI range of a zone as text: ``"≥ 0.9"``, ``"0.5–0.9"``..."""
    lo, hi = next((lo, hi) for n, lo, hi in ZONES if n == name)
    return f"≥ {lo:g}" if hi is None else f"{lo:g}–{hi:g}"


#: size [m] of the aggregated cells whose zones are reported beside the per-pixel zones
#: (the 1 km cells of Obu et al. 2019)
AGGREGATE_M = 1000.0


def classify_zones(pzi: np.ndarray) -> np.ndarray:
    """Zone code of each PZI value (:data:`ZONE_CODES`; 0 below 0.01, 255 NaN).

    Parameters
    ----------
    pzi : array_like
        Permafrost zonation index [-], in [0, 1], NaN for nodata.

    References
    ----------
    Brown et al. (1997); Obu et al. (2019), zone limits 0.9 / 0.5 / 0.1 / 0.01.
    """
    p = np.asarray(pzi, dtype="float64")
    out = np.zeros(p.shape, dtype="uint8")
    for code, lo in enumerate(ZONE_LIMITS, start=1):
        out[p >= lo] = code
    out[np.isnan(p)] = ZONE_NODATA
    return out


def aggregation_factors(grid: Grid, cell_m: float) -> tuple[int, int]:
    """Rows and columns of ``grid`` per aggregated cell of about ``cell_m`` [m] a side.

    The pixel size in metres is taken at the grid's centre (geographic grids: on the
    ellipsoid, :func:`permafrost.terrain.geographic_cell_size`); at least one pixel.
    """
    t = grid.transform
    if grid.crs.is_geographic:
        lat = t.f + t.e * grid.shape[0] / 2
        dx, dy = (float(np.asarray(v).ravel()[0])
                  for v in geographic_cell_size(lat, abs(t.a), abs(t.e)))
    else:
        unit = grid.crs.axis_info[0].unit_conversion_factor if grid.crs.axis_info else 1.0
        dx, dy = abs(t.a) * unit, abs(t.e) * unit
    return max(1, round(cell_m / dy)), max(1, round(cell_m / dx))
