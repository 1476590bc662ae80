"""n-factors by surface class: how the ground surface's degree days relate to the air's.

The freezing n-factor ``nf`` (ground-surface over air freezing degree days) is set by the
snow: thick, early snow insulates the ground in winter (nf 0.2-0.4), wind-swept ridges and
steep rock keep little snow (nf 0.7-1.0).  The thawing n-factor ``nt`` is set by the
surface in summer: sunlit bare rock and gravel are warmer than the air (nt > 1), a
vegetation or a coarse blocky layer is cooler (nt < 1).  ``rk`` is the thawed over frozen
thermal conductivity of the ground (Smith & Riseborough 2002): about 1 in rock and dry
debris, lower in moist fine and organic soils, whose frozen conductivity is higher.

The table gives one central value and a range (low, high) per class.  They are typical
values and ranges from field studies, not measurements of any region; the ranges carry
the uncertainty into the scenario's interval (permafrost.workflows.warming).

===================  ==============  ==============  ==============
class                nf (low-high)   nt (low-high)   rk (low-high)
===================  ==============  ==============  ==============
bedrock              0.8 (0.6-1.0)   1.2 (1.0-1.5)   1.0 (0.9-1.0)
coarse debris        0.6 (0.4-0.9)   0.9 (0.7-1.1)   1.0 (0.9-1.0)
fine debris / soil   0.4 (0.25-0.7)  1.1 (0.9-1.4)   0.9 (0.7-1.0)
vegetated            0.3 (0.15-0.5)  0.8 (0.6-1.0)   0.7 (0.5-0.9)
unknown              0.5 (0.2-0.9)   1.0 (0.7-1.3)   0.9 (0.7-1.0)
===================  ==============  ==============  ==============

Sources: Lunardini (1978): n-factors of bare surfaces, gravel and snow-covered ground
(nt of gravel pavements above 1, nf under snow 0.3-0.6); Klene et al. (2001): nt of
tundra vegetation 0.6-1.1 (Alaska); Karunaratne & Burn (2003): nf and nt of bare, grass
and forest surfaces in the discontinuous zone (Yukon), nf 0.3-0.6 under snow; Juliussen &
Humlum (2007): nf of bedrock and blockfields 0.3-1.0 in the Norwegian mountains, higher
where the wind removes the snow; Gisnås et al. (2016): nf from snow depth in Norway, 0.2-0.3
under deep snow to near 1 on wind-exposed ground; Riseborough et al. (2008): the TTOP model
and its parameters; Smith & Riseborough (2002): rk below 1 in organic and moist soils.

Class names are matched to a surface by words (:data:`SURFACE_PATTERNS`); a class that
matches none, and any cell without a land cover, gets the ``unknown`` row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["NFactors", "N_FACTORS", "SURFACE_PATTERNS", "UNKNOWN", "surface_of",
           "factor_tables", "lookup"]

UNKNOWN = "unknown"


@dataclass(frozen=True)
class NFactors:
    """Central value and range (low, high) of nf, nt and rk [-] of one surface class."""

    nf: tuple[float, float, float]  # central, low, high
    nt: tuple[float, float, float]
    rk: tuple[float, float, float]

    def as_dict(self) -> dict:
        return {k: {"value": v[0], "low": v[1], "high": v[2]}
                for k, v in (("nf", self.nf), ("nt", self.nt), ("rk", self.rk))}


#: the table of the module docstring
N_FACTORS: dict[str, NFactors] = {
    "bedrock": NFactors(nf=(0.8, 0.6, 1.0), nt=(1.2, 1.0, 1.5), rk=(1.0, 0.9, 1.0)),
    "coarse debris": NFactors(nf=(0.6, 0.4, 0.9), nt=(0.9, 0.7, 1.1), rk=(1.0, 0.9, 1.0)),
    "fine debris / soil": NFactors(nf=(0.4, 0.25, 0.7), nt=(1.1, 0.9, 1.4),
                                   rk=(0.9, 0.7, 1.0)),
    "vegetated": NFactors(nf=(0.3, 0.15, 0.5), nt=(0.8, 0.6, 1.0), rk=(0.7, 0.5, 0.9)),
    UNKNOWN: NFactors(nf=(0.5, 0.2, 0.9), nt=(1.0, 0.7, 1.3), rk=(0.9, 0.7, 1.0)),
}

#: a land-cover class name -> surface, first match wins (case-insensitive)
SURFACE_PATTERNS: tuple[tuple[str, re.Pattern], ...] = (
    ("coarse debris", re.compile(r"coarse|block|talus|scree|boulder", re.I)),
    ("bedrock", re.compile(r"bedrock|\brock\b|cliff|outcrop", re.I)),
    ("vegetated", re.compile(r"vegetat|meadow|grass|shrub|forest|tundra|steppe|wood", re.I)),
    ("fine debris / soil", re.compile(r"fine|soil|sand|silt|gravel|moraine|debris|bare",
                                      re.I)),
)


def surface_of(class_name: str) -> str:
    """The surface (a key of :data:`N_FACTORS`) a land-cover class name stands for."""
    for surface, pattern in SURFACE_PATTERNS:
        if pattern.search(str(class_name)):
            return surface
    return UNKNOWN


def factor_tables(classes: Mapping[int, str]) -> dict[str, dict[str, dict[int, float]]]:
    """``{which: {param: {code: value}}}`` for ``which`` in value/low/high and ``param`` in
    nf/nt/rk, for land-cover codes with these class names."""
    out: dict[str, dict[str, dict[int, float]]] = {w: {"nf": {}, "nt": {}, "rk": {}}
                                                  for w in ("value", "low", "high")}
    for code, name in classes.items():
        nfac = N_FACTORS[surface_of(name)]
        for param in ("nf", "nt", "rk"):
            for i, which in enumerate(("value", "low", "high")):
                out[which][param][int(code)] = getattr(nfac, param)[i]
    return out


def lookup(codes, table: Mapping[int, float], default: float) -> np.ndarray:
    """The value of each land-cover code (``default`` for codes not in the table and NaN)."""
    c = np.asarray(codes, dtype=np.float64)
    out = np.full(c.shape, float(default))
    for code, v in table.items():
        out[c == code] = v
    return out
