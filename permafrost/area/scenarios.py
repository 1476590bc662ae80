"""Scenario comparison: the area change of each warming scenario against the baseline,
per zone and per region, from the statistics of each scenario
(:func:`permafrost.area.statistics.zone_statistics`)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from permafrost.area.statistics import ZoneStatistics
from permafrost.errors import DataError, InputError

__all__ = ["COMPARED", "compare_scenarios"]


#: the area figures compared between scenarios [km2]
COMPARED = ("pzi_ge_0.5_km2", "pzi_weighted_km2", "region_km2", "continuous_km2",
            "discontinuous_km2", "sporadic_km2", "isolated_km2")


def compare_scenarios(stats: Mapping[str, ZoneStatistics], *, baseline: str = "baseline",
                      units: tuple[str, ...] = ("all", "region")) -> dict:
    """Area change of each scenario against the baseline, per zone and per region.

    Parameters
    ----------
    stats : mapping
        ``{scenario: ZoneStatistics}`` (:func:`permafrost.area.zone_statistics`; a
        ``stats.json`` read back with :meth:`ZoneStatistics.from_dict`), all computed over
        the same grid, mask and regions.
    baseline : str
        The scenario the others are compared with.
    units : tuple of str
        Which units to compare (``all``, ``region``, ``elevation_band``).

    Returns
    -------
    dict
        ``{"baseline": name, "figures": [...], "scenarios": {name: [row, ...]}}``; each row
        has ``unit``, ``name`` and for each figure ``<figure>`` (scenario value [km2]),
        ``<figure>_change`` (scenario - baseline [km2]) and ``<figure>_change_pct``
        (relative to the baseline [%], None when the baseline is 0).

    Raises
    ------
    InputError
        A value that is not a :class:`ZoneStatistics`.
    DataError
        No baseline, or a scenario whose denominators differ from the baseline's (then
        the areas are not comparable: different grids, masks or regions).
    """
    for name, result in stats.items():
        if not isinstance(result, ZoneStatistics):
            raise InputError(f"expected a ZoneStatistics for scenario {name!r}, got "
                             f"{type(result).__name__}", field="stats",
                             fix="give zone_statistics results (a stats.json: "
                                 "ZoneStatistics.from_dict(read_json(path)))")
    if baseline not in stats:
        raise DataError(f"no {baseline!r} statistics to compare with", field="scenarios",
                        fix="run the baseline too")
    def keyed(result):
        return {(u["unit"], u["name"]): u for u in result.units if u["unit"] in units}

    base = keyed(stats[baseline])
    out = {"baseline": baseline, "figures": list(COMPARED), "scenarios": {}}
    for name, result in stats.items():
        if name == baseline:
            continue
        rows = []
        for key, u in keyed(result).items():
            b = base.get(key)
            if b is None:
                raise DataError(f"scenario {name!r} has a unit {key} the baseline lacks",
                                field="scenarios", fix="use the same regions and bands")
            if not math.isclose(u["denominator_km2"], b["denominator_km2"], rel_tol=1e-9,
                                abs_tol=1e-9):
                raise DataError(f"scenario {name!r} has another denominator for {key} "
                                f"({u['denominator_km2']} vs {b['denominator_km2']} km2)",
                                field="scenarios", fix="use the same grid and mask")
            row = {"unit": u["unit"], "name": u["name"]}
            for f in COMPARED:
                v, v0 = u.get(f), b.get(f)
                row[f] = v
                row[f + "_change"] = None if v is None or v0 is None else v - v0
                row[f + "_change_pct"] = (None if v is None or not v0 else 100.0 * (v - v0) / v0)
            rows.append(row)
        out["scenarios"][name] = rows
    return out
