"""Ellipsoidal cell areas, permafrost zones, and area statistics streamed over large rasters.

One module per concept; every public name is re-exported here, so
``from permafrost.area import X`` works for each of them:

* :mod:`permafrost.area.ellipsoid`: ellipsoidal cell areas (Snyder 1987; Karney 2013);
* :mod:`permafrost.area.zones`: the zone limits, codes and names, zone classification
  (Brown et al. 1997 classes as used by Obu et al. 2019; Gruber 2012);
* :mod:`permafrost.area.statistics`: area statistics per map, region and elevation band,
  streamed in row blocks;
* :mod:`permafrost.area.profile`: the PZI–elevation profile by aspect class and the lower
  limit of permafrost (Haeberli 1973; Boeckli et al. 2012), streamed in row blocks;
* :mod:`permafrost.area.scenarios`: area change of warming scenarios against the baseline.

The references are given in each module.
"""

from __future__ import annotations

from permafrost.area import ellipsoid, profile, scenarios, statistics, zones  # noqa: E402
from permafrost.area.ellipsoid import (
    authalic_q,
    authalic_radius,
    cell_areas,
    ellipsoid_area,
    geographic_row_areas,
)
from permafrost.area.profile import (
    ASPECT_CLASSES,
    FALL_TOLERANCE,
    FLAT_SLOPE_DEG,
    LIMIT_PZI,
    MIN_BAND_CELLS,
    ElevationProfile,
    aspect_class,
    elevation_profile,
    falls_above,
    lower_limit,
)
from permafrost.area.scenarios import (
    COMPARED,
    compare_scenarios,
    method_sensitivity,
    reference_gate,
)
from permafrost.area.statistics import (
    CLASSES,
    ZoneStatistics,
    stats_rows,
    stats_table_columns,
    zone_statistics,
)
from permafrost.area.zones import (
    AGGREGATE_M,
    HEADLINE_THRESHOLD,
    REGION_THRESHOLD,
    ZONE_CODES,
    ZONE_LIMITS,
    ZONE_NAMES,
    ZONES,
    aggregation_factors,
    classify_zones,
    zone_range_text,
)

#: every public name of the concept modules (each module's ``__all__`` is the one list)
__all__ = [*zones.__all__, *ellipsoid.__all__, *statistics.__all__, *profile.__all__,
           *scenarios.__all__]
