"""Prior permafrost maps with known biases, and the basins."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
from shapely.geometry import MultiPolygon, Polygon, box

from samplegen.grid import (
    EAST,
    NORTH,
    PZI_PRIOR_BLOCK,
    SOUTH,
    SURVEY_BLOCK,
    WEST,
    km_coords,
    sigmoid,
    to_lonlat,
)
from samplegen.terrain import crest_north


def block_mean(a, k):
    ny, nx = a.shape
    return a.reshape(ny // k, k, nx // k, k).mean(axis=(1, 3))


def make_priors(p_truth, logit_truth, coef, p_warm=None):
    """Two prior maps with known biases against the truth.

    survey_map (0.005 deg): 1 where the block-mean truth >= 0.35 (overestimates permafrost:
    a survey map drawn with the 0.5 threshold would use 0.5), else 2; 255 over a block of
    unsurveyed cells.  pzi_prior (0.01 deg): block mean of sigmoid(logit_truth +
    b_maat * 0.8), i.e. the truth for an air 0.8 deg C warmer (underestimates permafrost).
    ``p_warm`` (optional): that warmer truth given directly (the ``ttop`` region's PZI for air
    MAAT + 0.8 deg C); ``logit_truth`` and ``coef`` are then not used.
    """
    pm = block_mean(p_truth, SURVEY_BLOCK)
    survey = np.where(pm >= 0.35, 1, 2).astype(np.uint8)
    survey[-8:, :10] = 255            # an unsurveyed corner (SW)
    survey[20:24, 60:66] = 255        # and a gap in the east
    if p_warm is None:
        shift = coef["b_maat_per_c"] * 0.8
        prior = block_mean(sigmoid(logit_truth + shift), PZI_PRIOR_BLOCK)
    else:
        shift = None
        prior = block_mean(p_warm, PZI_PRIOR_BLOCK)
    return survey, prior, {"survey_threshold_on_block_mean_p": 0.35,
                           "survey_nodata_cells": int((survey == 255).sum()),
                           "pzi_prior_maat_warm_bias_c": 0.8,
                           "pzi_prior_logit_shift": None if shift is None else round(shift, 4)}


def _polygonal(geom):
    """The polygons of a geometry (one Polygon, or a MultiPolygon), without the lines and
    points an overlay may leave in a GeometryCollection."""
    parts = [g for g in getattr(geom, "geoms", [geom]) if g.geom_type in ("Polygon",
                                                                         "MultiPolygon")]
    polys = [p for g in parts for p in getattr(g, "geoms", [g])]
    return polys[0] if len(polys) == 1 else MultiPolygon(polys)


BASINS = ["Heihe headwaters", "Shule headwaters", "Datong headwaters"]


def make_basins():
    """Three basins covering the domain: north of the main crest; south of it split at 99.05 E."""
    xs = np.linspace(-0.5, km_coords()[0].max() + 0.5, 200)
    lon, lat = to_lonlat(xs, crest_north(xs))
    lon = np.clip(lon, WEST, EAST)
    dom = box(WEST, SOUTH, EAST, NORTH)
    north = Polygon(list(zip(lon, lat, strict=True)) + [(EAST, NORTH), (WEST, NORTH)])
    # the crest polygon touches the domain's edge along a few segments: keep the polygon
    # (an intersection may add them as lines, a GeometryCollection GIS show as mixed types)
    north = _polygonal(north.intersection(dom))
    south = _polygonal(dom.difference(north))
    split = 99.05
    sw = _polygonal(south.intersection(box(WEST, SOUTH, split, NORTH)))
    se = _polygonal(south.intersection(box(split, SOUTH, EAST, NORTH)))
    return gpd.GeoDataFrame({"basin_id": [1, 2, 3], "name": BASINS},
                            geometry=[north, sw, se], crs="EPSG:4326")
