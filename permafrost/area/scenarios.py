"""Scenario comparison: the area change of each warming scenario against the baseline,
per zone and per region, from the statistics of each scenario
(:func:`permafrost.area.statistics.zone_statistics`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from permafrost.area.statistics import ZoneStatistics
from permafrost.defaults import (
    DENOMINATOR_TOLERANCE,
    REFERENCE_AREA_SHARE,
    REFERENCE_AUC_MARGIN,
    REFERENCE_BRIER_MARGIN,
)
from permafrost.errors import DataError, InputError

__all__ = ["COMPARED", "compare_scenarios", "method_sensitivity", "reference_gate"]


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
        No baseline, or a scenario whose denominators differ from the baseline's by more
        than :data:`permafrost.defaults.DENOMINATOR_TOLERANCE` of it (then the areas are not
        comparable: different grids, masks or regions); a smaller difference (a few cells one
        model leaves without a value) is stated in each row as ``denominator_difference_km2``.
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
    out: dict[str, Any] = {"baseline": baseline, "figures": list(COMPARED), "scenarios": {}}
    for name, result in stats.items():
        if name == baseline:
            continue
        rows = []
        for key, u in keyed(result).items():
            b = base.get(key)
            if b is None:
                raise DataError(f"scenario {name!r} has a unit {key} the baseline lacks",
                                field="scenarios", fix="use the same regions and bands")
            diff = u["denominator_km2"] - b["denominator_km2"]
            if abs(diff) > DENOMINATOR_TOLERANCE * abs(b["denominator_km2"]) + 1e-9:
                raise DataError(f"scenario {name!r} has another denominator for {key} "
                                f"({u['denominator_km2']} vs {b['denominator_km2']} km2, more "
                                f"than {DENOMINATOR_TOLERANCE:.1%} apart)",
                                field="scenarios", fix="use the same grid and mask")
            row = {"unit": u["unit"], "name": u["name"], "denominator_difference_km2": diff}
            for f in COMPARED:
                v, v0 = u.get(f), b.get(f)
                row[f] = v
                row[f + "_change"] = None if v is None or v0 is None else v - v0
                row[f + "_change_pct"] = (None if v is None or not v0 else 100.0 * (v - v0) / v0)
            rows.append(row)
        out["scenarios"][name] = rows
    return out


#: the rule of :func:`reference_gate`, as the report and the JSON state it
GATE_RULE = ("the scenario model's map of today (reference) must be as good as the baseline's on "
             "the same held-out boreholes: its AUC not below the baseline's by more than "
             "{auc:g}, and the upper end of its bootstrap interval not below the baseline's "
             "AUC; its Brier score not above the baseline's by more than {brier:g}; and its "
             "PZI-weighted area within {area:.0%} of the baseline's")


def _num(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def reference_gate(baseline: Mapping, reference: Mapping, *,
                   auc_margin: float = REFERENCE_AUC_MARGIN,
                   brier_margin: float = REFERENCE_BRIER_MARGIN,
                   area_share: float = REFERENCE_AREA_SHARE) -> dict:
    """Whether the scenario model's map of today is as good as the baseline's.

    The cross-section method takes each scenario's absolute map from a second model (the
    scenario model); its map of today, the *reference*, must be shown to be as good as the
    validated baseline's on the same held-out evidence (issue 23, docs/pipelines.md
    "Scenarios"). It fails when any of

    - AUC: ``ref_auc < base_auc - auc_margin``, or the upper end of the reference's
      bootstrap interval lies below the baseline's AUC (worse beyond the resampling noise);
    - Brier: ``ref_brier > base_brier + brier_margin``;
    - area: ``|ref_area / base_area - 1| > area_share`` (PZI-weighted areas);

    holds. A figure missing on either side is not checked and said so (then the gate has
    not shown the reference to be as good: ``passed`` is None unless a check failed).

    Parameters
    ----------
    baseline, reference : mapping
        ``auc``, ``auc_ci`` (``[low, high]``), ``brier``, ``n`` (held-out boreholes, the
        validate step's summary) and ``pzi_weighted_km2`` of each map.
    auc_margin, brier_margin, area_share : float
        Thresholds (permafrost.defaults.REFERENCE_*).

    Returns
    -------
    dict
        ``passed`` (True, False, or None when not every check could be made), ``checks``
        (name, reference, baseline, limit, passed), ``warnings`` (one line each, figures
        given), ``rule``.
    """
    checks, warnings = [], []
    b_auc, r_auc = _num(baseline.get("auc")), _num(reference.get("auc"))
    ci = reference.get("auc_ci") or [None, None]
    r_hi = _num(ci[1]) if len(ci) > 1 else None
    if b_auc is None or r_auc is None:
        checks.append({"name": "auc", "reference": r_auc, "baseline": b_auc,
                       "limit": None, "passed": None})
        warnings.append("the scenario model's map of today (reference) was not checked "
                        "against the baseline's held-out AUC: no held-out boreholes for "
                        + ("either" if b_auc is None and r_auc is None else
                           "the baseline" if b_auc is None else "the reference"))
    else:
        ok = r_auc >= b_auc - auc_margin and (r_hi is None or r_hi >= b_auc)
        checks.append({"name": "auc", "reference": r_auc, "baseline": b_auc,
                       "reference_ci_high": r_hi, "limit": b_auc - auc_margin, "passed": ok})
        if not ok:
            iv = f", interval up to {r_hi:.3f}" if r_hi is not None else ""
            warnings.append(f"the scenario model's map of today (reference) is less skilful "
                            f"than the baseline's on the held-out boreholes: AUC "
                            f"{r_auc:.3f}{iv} against {b_auc:.3f} (allowed: {auc_margin:g} "
                            f"below, interval reaching it); its scenarios' absolute maps "
                            f"rest on a weaker map of today")
    b_br, r_br = _num(baseline.get("brier")), _num(reference.get("brier"))
    if b_br is not None and r_br is not None:
        ok = r_br <= b_br + brier_margin
        checks.append({"name": "brier", "reference": r_br, "baseline": b_br,
                       "limit": b_br + brier_margin, "passed": ok})
        if not ok:
            warnings.append(f"the scenario model's map of today (reference) has a held-out "
                            f"Brier score of {r_br:.3f} against the baseline's {b_br:.3f} "
                            f"(allowed: {brier_margin:g} above)")
    b_a, r_a = _num(baseline.get("pzi_weighted_km2")), _num(reference.get("pzi_weighted_km2"))
    if b_a is None or r_a is None or b_a <= 0:
        checks.append({"name": "area", "reference": r_a, "baseline": b_a, "limit": area_share,
                       "passed": None})
        warnings.append("the scenario model's map of today (reference) was not checked "
                        "against the baseline's PZI-weighted area (missing)")
    else:
        rel = r_a / b_a - 1
        ok = abs(rel) <= area_share
        checks.append({"name": "area", "reference": r_a, "baseline": b_a,
                       "difference_share": rel, "limit": area_share, "passed": ok})
        if not ok:
            warnings.append(f"the scenario model's map of today (reference) has a "
                            f"PZI-weighted area of {r_a:.1f} km2 against the baseline's "
                            f"{b_a:.1f} km2 ({rel:+.1%}, allowed: ±{area_share:.0%}); every "
                            f"scenario's absolute area inherits that difference")
    states = [c["passed"] for c in checks]
    passed = False if False in states else (None if None in states else True)
    return {"passed": passed, "checks": checks, "warnings": warnings,
            "rule": GATE_RULE.format(auc=auc_margin, brier=brier_margin, area=area_share)}


def method_sensitivity(baseline: Mapping, runs: Mapping[str, Mapping]) -> dict:
    """Method-sensitivity runs (option changes only: model, features, sampling) against
    the baseline: area and held-out skill, never against a scenario model's reference.

    Parameters
    ----------
    baseline : mapping
        ``pzi_weighted_km2``, ``pzi_ge_0.5_km2``, ``auc``, ``auc_ci``, ``brier``, ``n``.
    runs : mapping
        ``{name: same keys (+ "changes": list of str)}``.

    Returns
    -------
    dict
        ``{"baseline": {...}, "runs": {name: {... , "<figure>_change",
        "pzi_weighted_km2_change_pct", "auc_change", "brier_change"}}}``.
    """
    def pick(d):
        return {k: d.get(k) for k in ("pzi_weighted_km2", "pzi_ge_0.5_km2", "auc", "auc_ci",
                                      "brier", "n", "changes") if k in d}

    out = {"baseline": pick(baseline), "runs": {}}
    for name, r in runs.items():
        row = pick(r)
        for k in ("pzi_weighted_km2", "pzi_ge_0.5_km2", "auc", "brier"):
            a, b = _num(r.get(k)), _num(baseline.get(k))
            row[f"{k}_change"] = None if a is None or b is None else a - b
        a, b = _num(r.get("pzi_weighted_km2")), _num(baseline.get("pzi_weighted_km2"))
        row["pzi_weighted_km2_change_pct"] = 100 * (a / b - 1) if a is not None and b else None
        out["runs"][name] = row
    return out
