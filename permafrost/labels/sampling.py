"""Evidence -> points: rock glacier front / centroid / interior sampling, borehole presence
tables and temperature records."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio.windows
import shapely
import xarray as xr
from pyproj import CRS
from rasterio.transform import Affine
from rasterio.windows import Window, from_bounds
from shapely.geometry import Point

from permafrost.cv import metric_crs
from permafrost.defaults import BOREHOLE_WEIGHT, ROCK_GLACIER_WEIGHT
from permafrost.errors import CRSError, DataError, ParameterError
from permafrost.grid import sample_at_points
from permafrost.ground_thermal import assess_borehole
from permafrost.rasterize import Shapes, burn

SAMPLING_STRATEGIES = ("front", "centroid", "interior")


# --------------------------------------------------------------------------- rock glaciers
def _front_point(geom, dem: xr.DataArray, dem_transform: Affine) -> tuple[Point, float] | None:
    """The centre of the lowest DEM cell inside ``geom`` (all touched when no centre inside).

    Only the window around the outline is read, so a Dask-backed DEM stays lazy.
    """
    h, w = dem.shape[-2:]
    minx, miny, maxx, maxy = geom.bounds
    win = from_bounds(minx, miny, maxx, maxy, transform=dem_transform)
    r0 = max(int(math.floor(win.row_off)) - 1, 0)
    c0 = max(int(math.floor(win.col_off)) - 1, 0)
    r1 = min(int(math.ceil(win.row_off + win.height)) + 1, h)
    c1 = min(int(math.ceil(win.col_off + win.width)) + 1, w)
    if r1 <= r0 or c1 <= c0:
        return None
    sub = np.asarray(dem.isel({dem.rio.y_dim: slice(r0, r1), dem.rio.x_dim: slice(c0, c1)})
                     .values, dtype=float).reshape(r1 - r0, c1 - c0)
    wt = rasterio.windows.transform(Window(c0, r0, c1 - c0, r1 - r0), dem_transform)
    shapes = Shapes(np.array([geom], dtype=object))
    for touched in (False, True):
        inside = burn(shapes, dem_transform, (r0, c0, r1 - r0, c1 - c0), all_touched=touched,
                      dtype="uint8").astype(bool)
        vals = np.where(inside & np.isfinite(sub), sub, np.inf)
        if np.isfinite(vals).any():
            k = int(np.argmin(vals))  # first minimum in row-major order: deterministic
            r, c = divmod(k, sub.shape[1])
            x, y = wt @ (c + 0.5, r + 0.5)
            return Point(x, y), float(sub[r, c])
    return None


def _interior_points(geom, spacing: float) -> list[Point]:
    """Points of a square lattice (origin at multiples of ``spacing``) that fall inside ``geom``."""
    minx, miny, maxx, maxy = geom.bounds
    xs = np.arange(math.floor(minx / spacing), math.ceil(maxx / spacing) + 1) * spacing
    ys = np.arange(math.ceil(maxy / spacing), math.floor(miny / spacing) - 1, -1) * spacing
    if len(xs) * len(ys) > 1_000_000:
        raise ParameterError(f"interior spacing {spacing:g} m gives over a million candidate "
                             "points for one outline", param="spacing_m",
                             fix="use a larger {spacing_m}")
    gx, gy = np.meshgrid(xs, ys)
    pts = shapely.points(gx.ravel(), gy.ravel())
    inside = shapely.contains(geom, pts)
    return list(pts[inside])


def sample_rock_glaciers(
    rock_glaciers: gpd.GeoDataFrame,
    *,
    strategy: str = "front",
    dem: xr.DataArray | None = None,
    spacing_m: float = 100.0,
    weight: float = ROCK_GLACIER_WEIGHT,
    crs=None,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Turn labelled rock glaciers into weighted points.

    Parameters
    ----------
    rock_glaciers : geopandas.GeoDataFrame
        Output of :func:`rock_glacier_labels` (uncertain rows are skipped and reported).
    strategy : {"front", "centroid", "interior"}
        ``front``: centre of the lowest DEM cell inside the outline (needs ``dem``);
        ``centroid``: the centroid (the representative point when the centroid falls outside
        a curved outline); ``interior``: lattice points every ``spacing_m`` inside the outline
        (the representative point for outlines smaller than the spacing).  Point
        inventories give their points for every strategy.
    dem : xarray.DataArray, optional
        Elevation [m] with a CRS (rioxarray); needed by ``front``; also gives each point's
        ``elevation_m``.
    spacing_m : float
        Lattice spacing for ``interior`` [m], in the inventory's metric frame
        (:func:`permafrost.cv.metric_crs`: its own CRS when projected in metres, else an
        azimuthal equidistant projection centred on the outlines).
    weight : float
        Total weight of one rock glacier [-], shared equally by its points.
    crs : optional
        CRS of the output points (default: the DEM's, else the inventory's).

    Returns
    -------
    points : geopandas.GeoDataFrame
        ``label, source="rock_glacier", source_id, group, weight, activity, sampling,
        elevation_m`` and geometry.
    dropped : pandas.DataFrame
        ``source, source_id, reason`` of rock glaciers left out.

    References
    ----------
    Boeckli, L., Brenning, A., Gruber, S., Noetzli, J. (2012). A statistical approach to
    modelling permafrost distribution in the European Alps or similar mountain ranges.
    The Cryosphere 6, 125-140 (rock glacier fronts as presence/absence evidence, weighting).
    Schmid, M.-O. et al. (2015). Assessment of permafrost distribution maps in the Hindu Kush
    Himalayan region using rock glaciers mapped in Google Earth. The Cryosphere 9, 2089-2099.
    """
    if strategy not in SAMPLING_STRATEGIES:
        raise DataError(f"unknown sampling strategy {strategy!r}", field="sampling",
                        fix=f"use one of {', '.join(SAMPLING_STRATEGIES)}")
    if strategy == "front" and dem is None:
        raise ParameterError("front sampling needs a DEM", param="dem",
                             fix="give {dem}, or set {sampling} to centroid")
    if spacing_m <= 0 or not np.isfinite(spacing_m):
        raise DataError(f"spacing must be > 0 m, got {spacing_m}", field="spacing",
                        fix="give a positive spacing in metres")
    path = rock_glaciers.attrs.get("source")
    dropped = []
    empty = (rock_glaciers.geometry.isna() | rock_glaciers.geometry.is_empty).to_numpy()
    for rid in rock_glaciers.loc[rock_glaciers["label"].isna().to_numpy(), "rg_id"]:
        dropped.append(("rock_glacier", rid, "activity uncertain"))
    for rid in rock_glaciers.loc[rock_glaciers["label"].notna().to_numpy() & empty, "rg_id"]:
        dropped.append(("rock_glacier", rid, "empty geometry"))
    keep = rock_glaciers[rock_glaciers["label"].notna().to_numpy() & ~empty]
    dem_crs = None
    if dem is not None:
        dem_crs = dem.rio.crs
        if dem_crs is None:
            raise CRSError("the DEM has no CRS", field="dem", fix="give a georeferenced DEM")
    out_crs = CRS.from_user_input(crs) if crs is not None else (dem_crs or keep.crs)
    if keep.crs is None:
        raise CRSError("the inventory has no CRS", path=path, fix="assign one")
    recs = []
    if len(keep):
        if strategy == "front":
            assert dem is not None  # refused above without one
            work = keep.to_crs(dem_crs)
            tr = dem.rio.transform()
            for rid, lab, act, g in zip(work["rg_id"], work["label"], work["activity"],
                                        work.geometry):
                if g.geom_type in ("Point", "MultiPoint"):
                    pts = [(p, np.nan) for p in getattr(g, "geoms", [g])]
                else:
                    fp = _front_point(g, dem, tr)
                    if fp is None:
                        dropped.append(("rock_glacier", rid, "no DEM value inside the outline "
                                        "(outside the DEM or all nodata)"))
                        continue
                    pts = [fp]
                for p, z in pts:
                    recs.append((rid, int(lab), act, p, z, len(pts)))
            pts_crs = dem_crs
        else:
            b = keep.geometry.bounds  # the frame's centre: the outlines' mean position
            metric = metric_crs((b["minx"] + b["maxx"]) / 2, (b["miny"] + b["maxy"]) / 2,
                                keep.crs)
            work = keep.to_crs(metric)
            for rid, lab, act, g in zip(work["rg_id"], work["label"], work["activity"],
                                        work.geometry):
                if g.geom_type in ("Point", "MultiPoint"):
                    pts = list(getattr(g, "geoms", [g]))
                elif strategy == "centroid":
                    c = g.centroid
                    pts = [c if g.contains(c) else g.representative_point()]
                else:
                    pts = _interior_points(g, spacing_m) or [g.representative_point()]
                for p in pts:
                    recs.append((rid, int(lab), act, p, np.nan, len(pts)))
            pts_crs = metric
    if not recs:
        pts = gpd.GeoDataFrame({c: [] for c in ["label", "source", "source_id", "group",
                                                "weight", "activity", "sampling", "elevation_m"]},
                               geometry=[], crs=out_crs)
        return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])
    rid, lab, act, geom, zs, n = zip(*recs)
    pts = gpd.GeoDataFrame({
        "label": np.asarray(lab, dtype=np.int8),
        "source": "rock_glacier",
        "source_id": list(rid),
        "group": [f"rg:{r}" for r in rid],
        "weight": weight / np.asarray(n, dtype=float),
        "activity": list(act),
        "sampling": strategy,
        "elevation_m": np.asarray(zs, dtype=float),
    }, geometry=list(geom), crs=pts_crs).to_crs(out_crs)
    if dem is not None and strategy != "front":
        pts["elevation_m"] = sample_at_points(dem, pts.geometry.x.to_numpy(),
                                              pts.geometry.y.to_numpy(), crs=pts.crs)[0]
    pts["dataset"] = path or ""
    return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])


# --------------------------------------------------------------------------- boreholes
def borehole_points(
    table: gpd.GeoDataFrame,
    *,
    weight: float = BOREHOLE_WEIGHT,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Boreholes from a presence table (:func:`permafrost.read_presence_table`).

    Presence is taken as given; where it is missing and MAGT is given, presence = MAGT <= 0 °C
    (MAGT at depth below 0 °C means perennially frozen ground).  Rows with neither are left
    out and reported.

    Parameters
    ----------
    table : geopandas.GeoDataFrame
        ``borehole_id, presence, magt_c, year`` and point geometry.
    weight : float
        Weight of each borehole point [-].

    Returns
    -------
    points, dropped
        As :func:`sample_rock_glaciers`, with ``source="borehole"`` and ``evidence``
        ("presence" or "magt").

    References
    ----------
    van Everdingen, R. (ed.) (1998, rev. 2005). Multi-language glossary of permafrost and
    related ground-ice terms. NSIDC (permafrost definition).
    """
    path = table.attrs.get("source", "")
    pres = table["presence"].astype("Int8")
    magt = table["magt_c"].astype(float)
    from_magt = pres.isna() & magt.notna()
    label = pres.copy()
    label[from_magt] = (magt[from_magt] <= 0.0).astype("int8")
    evidence = np.where(from_magt, "magt", "presence")
    missing = label.isna()
    dropped = [("borehole", b, "no presence value and no MAGT")
               for b in table.loc[missing, "borehole_id"]]
    t = table[~missing.to_numpy()]
    pts = gpd.GeoDataFrame({
        "label": label[~missing].astype("int8").to_numpy(),
        "source": "borehole",
        "source_id": t["borehole_id"].to_numpy(),
        "group": [f"bh:{b}" for b in t["borehole_id"]],
        "weight": float(weight),
        "magt_c": magt[~missing].to_numpy(),
        "elevation_m": (t["elevation_m"].astype(float).to_numpy() if "elevation_m" in t
                        else np.nan),
        "evidence": evidence[~missing.to_numpy()],
        "year": t["year"].to_numpy() if "year" in t else np.nan,
        "dataset": path,
    }, geometry=t.geometry.to_numpy(), crs=table.crs)
    return pts, pd.DataFrame(dropped, columns=["source", "source_id", "reason"])


def temperature_borehole_points(
    records: list,
    *,
    weight: float = BOREHOLE_WEIGHT,
    **assess_options,
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """Judge temperature records and turn decided ones into borehole points.

    Parameters
    ----------
    records : list of BoreholeRecord
        Temperature records with positions (lon/lat, WGS84).
    weight : float
        Weight of each borehole point [-].
    **assess_options
        Passed to :func:`permafrost.ground_thermal.assess_borehole`.

    Returns
    -------
    points, dropped, verdicts
        ``verdicts`` has one row per record (every field of the verdict plus lon/lat).

    Raises
    ------
    DataError
        A record without a position, or duplicate borehole ids.

    References
    ----------
    See :func:`permafrost.ground_thermal.assess_borehole`.
    """
    ids = [r.borehole_id for r in records]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise DataError(f"duplicate borehole ids among temperature records: {dup}",
                        field="borehole_id", fix="give each record once (or rename one)")
    rows, pts, dropped = [], [], []
    for r in records:
        if not (np.isfinite(r.lon) and np.isfinite(r.lat)):
            raise ParameterError(f"borehole {r.borehole_id!r} has no coordinates",
                                 path=r.source, param="permos_coords",
                                 fix="give them alongside ({permos_coords}: a table with "
                                     "borehole_id,lon,lat)")
        v = assess_borehole(r.temperatures, borehole_id=r.borehole_id, **assess_options)
        d = v.as_dict()
        d.update(lon=r.lon, lat=r.lat, elevation_m=r.elevation_m, dataset=r.source)
        rows.append(d)
        if v.presence is None:
            dropped.append(("borehole", r.borehole_id, f"insufficient record: {v.reason}"))
            continue
        pts.append({"label": np.int8(v.presence), "source": "borehole",
                    "source_id": r.borehole_id, "group": f"bh:{r.borehole_id}",
                    "weight": float(weight), "magt_c": v.magt_c,
                    "evidence": f"temperature ({v.reason_code})", "elevation_m": r.elevation_m,
                    "dataset": r.source, "geometry": Point(r.lon, r.lat)})
    gdf = gpd.GeoDataFrame(pts, geometry="geometry", crs="EPSG:4326") if pts else \
        gpd.GeoDataFrame({"label": [], "source": [], "source_id": []}, geometry=[],
                         crs="EPSG:4326")
    return (gdf, pd.DataFrame(dropped, columns=["source", "source_id", "reason"]),
            pd.DataFrame(rows))

