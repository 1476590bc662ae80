"""Rock glacier outlines, their true activity and downslope velocity."""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from shapely.geometry import Polygon
from shapely.strtree import STRtree

from samplegen.grid import (
    EAST,
    GEOD,
    NORTH,
    NX,
    NY,
    PIX,
    SOUTH,
    WEST,
    lat_centres,
    lon_centres,
    metres_per_degree,
    polygon_mask,
    polygon_pixels,
    rowcol,
    slope_aspect,
)


def _tongue(rng, head_lon, head_lat, asp_s, slope_s, dem_s, length, width):
    """Trace a tongue-shaped outline downslope from a head point; None when it fails.

    The centreline follows the smoothed downslope aspect in 40 m steps with inertia (the
    direction is 70 % the previous one), the half-width grows from 0.55 to 1.0 of W/2 toward
    a lobate (half-elliptic) front, the root is rounded.  Returns (polygon [lon/lat],
    centreline [lon/lat], centreline elevations [m], centreline slopes [deg]).
    """
    mx, my = metres_per_degree(np.array(head_lat))
    step = 40.0
    n = max(int(length / step), 4)
    lon, lat = [head_lon], [head_lat]
    r, c = rowcol(head_lon, head_lat)
    a = math.radians(asp_s[r, c])
    d = np.array([math.sin(a), math.cos(a)])
    for _ in range(n):
        r = min(max(int((NORTH - lat[-1]) // PIX), 0), NY - 1)
        c = min(max(int((lon[-1] - WEST) // PIX), 0), NX - 1)
        a = math.radians(asp_s[r, c])
        d = 0.7 * d + 0.3 * np.array([math.sin(a), math.cos(a)])
        d /= np.linalg.norm(d)
        lon.append(lon[-1] + d[0] * step / mx)
        lat.append(lat[-1] + d[1] * step / my)
    lon, lat = np.array(lon), np.array(lat)
    if lon.min() < WEST + 0.004 or lon.max() > EAST - 0.004 or lat.min() < SOUTH + 0.004 \
            or lat.max() > NORTH - 0.004:
        return None
    rr, cc = rowcol(lon, lat)
    zs, ss = dem_s[rr, cc], slope_s[rr, cc]
    # centreline in metres
    e = (lon - lon[0]) * mx
    nn = (lat - lat[0]) * my
    u = np.r_[0, np.cumsum(np.hypot(np.diff(e), np.diff(nn)))]
    tx, ty = np.gradient(e), np.gradient(nn)
    tn = np.hypot(tx, ty)
    tx, ty = tx / tn, ty / tn
    nx_, ny_ = -ty, tx
    half = width / 2.0 * (0.55 + 0.45 * (u / u[-1]) ** 0.6)
    half *= 1 + 0.06 * np.sin(u / u[-1] * np.pi * rng.uniform(1, 3) + rng.uniform(0, 6))
    left = np.c_[e + nx_ * half, nn + ny_ * half]
    right = np.c_[e - nx_ * half, nn - ny_ * half]
    # lobate front: half ellipse ahead of the last point
    th = np.linspace(0, np.pi, 15)[1:-1]
    fa = 0.45 * half[-1]
    front = np.c_[e[-1] + nx_[-1] * half[-1] * np.cos(th) + tx[-1] * fa * np.sin(th),
                  nn[-1] + ny_[-1] * half[-1] * np.cos(th) + ty[-1] * fa * np.sin(th)]
    rootc = np.c_[e[0] - nx_[0] * half[0] * np.cos(th) - tx[0] * 0.6 * half[0] * np.sin(th),
                  nn[0] - ny_[0] * half[0] * np.cos(th) - ty[0] * 0.6 * half[0] * np.sin(th)]
    ring = np.vstack([left, front, right[::-1], rootc])
    poly = Polygon(np.c_[lon[0] + ring[:, 0] / mx, lat[0] + ring[:, 1] / my])
    if not poly.is_valid:
        poly = poly.buffer(0)
    if not isinstance(poly, Polygon) or poly.is_empty:
        return None
    return poly, (lon, lat), zs, ss


def make_rock_glaciers(rng, dem, slope, aspect, maat, p_truth, exclude, n_target=380,
                       head_ok=None, maat_centre=-5.0):
    """Rock glacier outlines with their true activity and downslope velocity.

    Heads are drawn among pixels with smoothed slope 12-32 deg, preferring those below a
    steep wall (smoothed slope > 30 deg 250 m upslope) and fronts near the permafrost limit
    (acceptance exp(-((MAAT_head - (-5.0)) / 2)^2 / 2)).  W ~ U(100, 330) m, L = W U(1.5, 4)
    clipped to 200-1200 m.  Outlines keep >= 120 m from each other and from glaciers/lakes.
    Front = the lowest DEM pixel (pixel centre) inside the outline.
    intact ~ Bernoulli(p_truth(front)); intact -> active with probability
    clip(0.35 + 0.1 (-MAAT_front - 2), 0.2, 0.85), else transitional; not intact -> relict.
    Downslope speed: active lognormal (median 0.45 m/yr, sigma_log 0.6) clipped to
    0.15-1.5 m/yr; transitional U(0.02, 0.07) m/yr; relict 0.

    ``head_ok`` (optional boolean raster) restricts the heads to its cells: the ``ttop``
    region passes its coarse-debris class, so that rock glaciers grow only out of talus below
    walls.  ``maat_centre`` [deg C] is the centre of the MAAT acceptance window.
    """
    dem_s = ndimage.gaussian_filter(dem, 3.0)
    slope_s, asp_s = slope_aspect(dem_s)
    lon_c, lat_c = lon_centres(), lat_centres()
    mx, my = metres_per_degree(lat_c)
    # upslope wall test: smoothed slope 250 m uphill
    cand = (slope_s > 12) & (slope_s < 32) & (maat > -8.5) & (maat < 0.5) & ~exclude
    if head_ok is not None:
        cand &= head_ok
    cand[:12, :] = cand[-12:, :] = cand[:, :12] = cand[:, -12:] = False
    rows, cols = np.nonzero(cand)
    order = rng.permutation(rows.size)
    occupied = np.zeros_like(exclude)
    excl_buf = ndimage.binary_dilation(exclude, iterations=3)
    accepted = []
    for idx in order:
        if len(accepted) >= n_target:
            break
        r, c = rows[idx], cols[idx]
        if occupied[r, c]:
            continue
        a = math.radians(asp_s[r, c])
        ur = int(round(r + 250.0 * math.cos(a) / (my[r] * PIX)))
        uc = int(round(c - 250.0 * math.sin(a) / (mx[r] * PIX)))
        wall = 0 <= ur < NY and 0 <= uc < NX and slope_s[ur, uc] > 30
        w_acc = math.exp(-0.5 * ((maat[r, c] - maat_centre) / 2.0) ** 2) * (1.0 if wall else 0.25)
        if rng.uniform() > w_acc:
            continue
        width = rng.uniform(100, 330)
        length = float(np.clip(width * rng.uniform(1.5, 4.0), 200, 1200))
        res = _tongue(rng, lon_c[c], lat_c[r], asp_s, slope_s, dem_s, length, width)
        if res is None:
            continue
        poly, (clon, clat), zs, ss = res
        if not (8 <= ss.mean() <= 30) or zs[-1] > zs[0] - 0.1 * length or ss.min() < 7:
            continue
        rr, cc = polygon_pixels(poly)
        if rr.size < 8 or excl_buf[rr, cc].any():
            continue
        br, bc = polygon_pixels(poly.buffer(120.0 / mx[r]))
        if occupied[br, bc].any():
            continue
        rr, cc = np.nonzero(polygon_mask([poly]))  # the definitive pixels: full-grid rasterising
        k = np.argmin(dem[rr, cc])
        fr, fc = rr[k], cc[k]
        if not (-7.5 <= maat[fr, fc] <= 1.0):
            continue
        occupied[br, bc] = True
        accepted.append((poly, fr, fc, rr, cc))
    # final geometric check (no overlaps)
    polys = [a[0] for a in accepted]
    tree = STRtree(polys)
    for i, p in enumerate(polys):
        hits = [j for j in tree.query(p, predicate="intersects") if j != i]
        assert not hits, "overlapping rock glaciers"
    records = []
    for i, (poly, fr, fc, rr, cc) in enumerate(accepted):
        p_front = float(p_truth[fr, fc])
        m_front = float(maat[fr, fc])
        intact = bool(rng.uniform() < p_front)
        if intact:
            p_act = float(np.clip(0.35 + 0.1 * (-m_front - 2.0), 0.2, 0.85))
            activity = "active" if rng.uniform() < p_act else "transitional"
        else:
            activity = "relict"
        if activity == "active":
            v = float(np.clip(rng.lognormal(np.log(0.45), 0.6), 0.15, 1.5))
        elif activity == "transitional":
            v = float(rng.uniform(0.02, 0.07))
        else:
            v = 0.0
        # mean slope/aspect over the outline (aspect as a circular mean)
        asp = np.deg2rad(aspect[rr, cc])
        mean_asp = float(np.degrees(np.arctan2(np.sin(asp).mean(), np.cos(asp).mean())) % 360)
        area = abs(GEOD.geometry_area_perimeter(poly)[0])
        records.append({
            "rg_id": f"RG{i + 1:04d}", "geometry": poly, "activity_true": activity,
            "intact_true": int(intact), "v_downslope_m_yr": round(v, 4),
            "front_lon": float(lon_c[fc]), "front_lat": float(lat_c[fr]),
            "front_row": int(fr), "front_col": int(fc),
            "front_elev_m": round(float(dem[fr, fc]), 2), "front_maat_c": round(m_front, 3),
            "p_truth_front": round(p_front, 4), "front_slope_deg": round(float(slope[fr, fc]), 2),
            "mean_slope_deg": round(float(slope[rr, cc].mean()), 2),
            "mean_aspect_deg": round(mean_asp, 1), "area_m2": round(area, 1),
            "n_pixels": int(rr.size), "_rows": rr, "_cols": cc,
        })
    return records
