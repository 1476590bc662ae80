"""Boreholes along the road (presence table) and GTN-P ground-temperature records."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import optimize
from shapely.geometry import LineString

from samplegen.grid import (
    EAST,
    NORTH,
    SOUTH,
    WEST,
    logit,
    metres_per_degree,
    rowcol,
    to_lonlat,
)
from samplegen.terrain import ROAD_KM


def road_points(spacing_km=0.25):
    """Points every ``spacing_km`` along the road [km coordinates]."""
    line = LineString(ROAD_KM)
    s = np.arange(0.0, line.length, spacing_km)
    pts = [line.interpolate(v) for v in s]
    return np.array([[p.x, p.y] for p in pts]), s


def make_boreholes(rng, dem, p_truth, maat, exclude, n_sites=34, target_ratio=4.0, ttop=None,
                   sigma=None):
    """Boreholes clustered along the road, presence ~ Bernoulli(p_truth), ~4:1 imbalance.

    Sites are drawn along the road with weights (p_road + 0.03)^k, where the exponent k is
    chosen (from a fixed list) so that the expected share of permafrost boreholes is closest to
    target_ratio / (1 + target_ratio); each site has 3-6 boreholes placed 50-500 m from the
    site point in a random direction (drilling along a road follows its accessibility).
    MAGT [deg C] is drawn consistent with the presence: with permafrost
    -(0.1 + Exp(0.35) + 0.12 max(logit p, 0)), without +(0.1 + Exp(0.45) + 0.15 max(-logit p, 0)).

    With ``ttop`` and ``sigma`` (rasters [deg C], the ``ttop`` region's truth, where
    p_truth = Phi(-TTOP / sigma)) each borehole's own ground temperature is drawn,
    TTOP_local = TTOP + sigma e with e ~ N(0, 1), presence = TTOP_local < 0 (the same
    Bernoulli(p_truth), drawn through the temperature) and MAGT = TTOP_local, kept at least
    0.02 deg C from 0 on its side (MAGT at the depth of zero annual amplitude ~ TTOP: Smith &
    Riseborough 2002 neglect the small geothermal gradient across the permafrost table).
    """
    pts_km, s = road_points()
    lon_r, lat_r = to_lonlat(pts_km[:, 0], pts_km[:, 1])
    inside = ((lon_r > WEST + 0.01) & (lon_r < EAST - 0.01)
              & (lat_r > SOUTH + 0.01) & (lat_r < NORTH - 0.01))
    lon_r, lat_r = lon_r[inside], lat_r[inside]
    rr, cc = rowcol(lon_r, lat_r)
    p_road = p_truth[rr, cc]
    target = target_ratio / (1 + target_ratio)
    best = None
    for k in np.arange(-2.0, 3.01, 0.25):
        seed_k = int(rng.integers(2**32))
        sub = np.random.default_rng(seed_k)
        w = (p_road + 0.03) ** k
        sites = sub.choice(p_road.size, size=n_sites, replace=False, p=w / w.sum())
        bh = []
        for si in np.sort(sites):
            nb = int(sub.integers(3, 7))
            mx, my = metres_per_degree(np.array(lat_r[si]))
            for _ in range(nb):
                for _try in range(20):
                    dist = sub.uniform(50, 500)
                    ang = sub.uniform(0, 2 * np.pi)
                    lo = lon_r[si] + dist * np.sin(ang) / mx
                    la = lat_r[si] + dist * np.cos(ang) / my
                    r, c = rowcol(lo, la)
                    if not exclude[r, c]:
                        break
                bh.append((si, lo, la))
        bh = np.array(bh)
        r, c = rowcol(bh[:, 1], bh[:, 2])
        mean_p = p_truth[r, c].mean()
        if best is None or abs(mean_p - target) < abs(best[0] - target):
            best = (mean_p, k, seed_k, bh)
    mean_p, k, _, bh = best
    r, c = rowcol(bh[:, 1], bh[:, 2])
    p = p_truth[r, c]
    # presence ~ Bernoulli(p); the first draw whose permafrost count lies within half a binomial
    # standard deviation of its expectation is kept (documented, so the sample is typical)
    sd = math.sqrt(float((p * (1 - p)).sum()))
    if ttop is None:
        for n_draw in range(1, 101):  # noqa: B007 (n_draw is reported)
            presence = (rng.uniform(size=p.size) < p).astype(int)
            if abs(presence.sum() - p.sum()) <= 0.5 * sd:
                break
        lg = logit(p)
        magt = np.where(presence == 1,
                        -(0.1 + rng.exponential(0.35, p.size) + 0.12 * np.maximum(lg, 0)),
                        0.1 + rng.exponential(0.45, p.size) + 0.15 * np.maximum(-lg, 0))
    else:
        t_b, s_b = ttop[r, c], sigma[r, c]
        for n_draw in range(1, 101):  # noqa: B007 (n_draw is reported)
            t_local = t_b + s_b * rng.standard_normal(p.size)
            presence = (t_local < 0).astype(int)
            if abs(presence.sum() - p.sum()) <= 0.5 * sd:
                break
        magt = np.where(presence == 1, np.minimum(t_local, -0.02), np.maximum(t_local, 0.02))
    site_year = {int(si): int(rng.integers(2009, 2019)) for si in np.unique(bh[:, 0])}
    year = np.array([site_year[int(si)] for si in bh[:, 0]])
    site_ids = {s: i + 1 for i, s in enumerate(sorted(set(bh[:, 0].astype(int))))}
    df = pd.DataFrame({
        "borehole_id": [f"QL{site_ids[int(s)]:02d}-{j + 1:02d}" for j, s in enumerate(bh[:, 0])],
        "lon": np.round(bh[:, 1], 6), "lat": np.round(bh[:, 2], 6),
        "elevation_m": np.round(dem[r, c], 1), "presence": presence,
        "magt_c": np.round(magt, 2), "year": year,
    })
    # number boreholes within each site 1..n
    df["borehole_id"] = [f"QL{site_ids[int(s)]:02d}-{n:02d}" for s, n in
                         zip(bh[:, 0], pd.Series(bh[:, 0]).groupby(bh[:, 0]).cumcount() + 1,
                             strict=True)]
    truth = {"n": int(len(df)), "n_permafrost": int(presence.sum()),
             "n_no_permafrost": int((presence == 0).sum()), "n_sites": int(len(site_ids)),
             "site_weight_exponent": float(k), "mean_p_truth": round(float(p.mean()), 4),
             "expected_n_permafrost": round(float(p.sum()), 2), "binomial_sd": round(sd, 3),
             "presence_draws_until_typical": n_draw,
             "p_truth": [round(float(v), 4) for v in p]}
    return df, truth


# --- GTN-P long-format records -----------------------------------------------------------------
GTNP_DEPTHS = [0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0]
KAPPA = 4.0e-7          # effective thermal diffusivity [m2 s-1]
OMEGA = 2 * np.pi / (365.25 * 86400.0)  # annual angular frequency [s-1]
DAMP = math.sqrt(2 * KAPPA / OMEGA)     # damping depth [m]
GEO_GRAD = 0.025        # geothermal gradient [deg C m-1]
Z_REF = 15.0            # depth at which MAGT is defined [m]


def conduction_temperature(z, t_days, magt, a0, t_peak_day=200.0):
    """Ground temperature [deg C] of the periodic 1-D conduction solution.

    T(z, t) = MAGT + G (z - z_ref) + A0 exp(-z/d) cos(w (t - t_peak) - z/d), d = sqrt(2 kappa/w)
    (Carslaw & Jaeger 1959, sec. 2.6; Williams & Smith 1989, *The Frozen Earth*, eq 4.5);
    ``z`` [m], ``t_days`` [days], ``magt`` [deg C] at z_ref = 15 m, ``a0`` surface amplitude
    [deg C]; latent heat is ignored (A0 is an effective amplitude).
    """
    w = 2 * np.pi / 365.25
    return (magt + GEO_GRAD * (z - Z_REF)
            + a0 * np.exp(-z / DAMP) * np.cos(w * (t_days - t_peak_day) - z / DAMP))


def active_layer_thickness(magt, a0):
    """Depth [m] where the annual maximum of :func:`conduction_temperature` is 0 deg C.

    ``None`` when there is no permafrost (or the whole profile is frozen).
    """
    def tmax(z):
        return magt + GEO_GRAD * (z - Z_REF) + a0 * np.exp(-z / DAMP)
    if tmax(0.0) <= 0 or tmax(Z_REF) > 0:
        return None
    return float(optimize.brentq(tmax, 0.0, Z_REF))


GTNP_SPECS = [
    # name, kind, magt, a0, start, end, gaps [(start, end, as_rows)]
    ("QL-EB1", "permafrost", -1.9, 7.0, "2013-01-01", "2019-12-31", []),
    ("QL-EB2", "permafrost", -1.1, 7.5, "2013-01-01", "2019-12-31", []),
    ("QL-EB3", "permafrost", -0.4, 4.9, "2014-01-01", "2019-12-31", []),
    ("QL-DB1", "no_permafrost", 0.9, 9.0, "2013-01-01", "2019-12-31", []),
    ("QL-SH1", "too_short", -0.8, 6.5, "2018-03-15", "2018-11-30", []),
    ("QL-GP1", "gaps", -0.7, 6.5, "2012-01-01", "2019-12-31",
     [("2014-05-01", "2015-02-28", False), ("2016-09-01", "2017-06-30", True),
      ("2018-02-01", "2018-08-31", False)]),
]


def make_gtnp(rng, dem, p_truth, magt_field=None):
    """A few boreholes as GTN-P long-format daily records plus a GTN-P-like metadata JSON.

    Columns and JSON structure mirror the GTN-P export (``id,date,depth,temperature,flag,
    dataset_id,borehole_id,site_id``; a list of dataset objects with ``statistics`` and a
    ``borehole`` object holding ``location``).  Temperatures from
    :func:`conduction_temperature` plus day-to-day noise (AR(1), sd 0.6 deg C damped with
    depth as exp(-z/0.7 m)) and sensor noise (sd 0.02 deg C), rounded to 0.01 deg C.
    Gaps are either missing rows or rows with an empty temperature and flag
    ``no data entry`` (both occur in real GTN-P exports).

    With ``magt_field`` (a raster [deg C], the ``ttop`` region's TTOP) each record sits by the
    road point whose ``magt_field`` is closest to the record's MAGT, so that the records agree
    with the truth at their sites (instead of matching a target probability).
    """
    # each record sits 100 m east of the road point whose truth probability is closest to a
    # target matching its thermal state (warm permafrost near the limit, cold at the pass),
    # at least 1.5 km from the other records
    pts_km, _ = road_points()
    lon_r, lat_r = to_lonlat(pts_km[:, 0], pts_km[:, 1])
    ok = ((lon_r > WEST + 0.01) & (lon_r < EAST - 0.01)
          & (lat_r > SOUTH + 0.01) & (lat_r < NORTH - 0.01))
    pts_km, lon_r, lat_r = pts_km[ok], lon_r[ok], lat_r[ok]
    p_r = p_truth[rowcol(lon_r, lat_r)]
    t_r = None  # the field at the record's own site, 100 m east of the road point
    if magt_field is not None:
        t_r = magt_field[rowcol(lon_r + 100.0 / metres_per_degree(lat_r)[0], lat_r)]
    places, used = [], []
    for spec in GTNP_SPECS:
        target = {"QL-EB1": 0.99, "QL-EB2": 0.95, "QL-EB3": 0.75, "QL-DB1": 0.03,
                  "QL-SH1": 0.9, "QL-GP1": 0.85}[spec[0]]
        cost = np.abs(p_r - target) if t_r is None else np.abs(t_r - spec[2])
        for u in used:
            cost[np.hypot(*(pts_km - pts_km[u]).T) < 1.5] = np.inf
        k = int(np.argmin(cost))
        used.append(k)
        mx, _ = metres_per_degree(np.array(lat_r[k]))
        places.append(pd.Series({"lon": lon_r[k] + 100.0 / mx, "lat": lat_r[k]}))
    rows, meta, truth = [], [], []
    row_id = 7_000_001
    for i, (spec, place) in enumerate(zip(GTNP_SPECS, places, strict=True)):
        name, kind, magt, a0, start, end, gaps = spec
        dataset_id, borehole_id, site_id = 9101 + i, 8101 + i, 701 + (i // 2)
        dates = pd.date_range(start, end, freq="D")
        t = (dates - pd.Timestamp("2000-01-01")).days.to_numpy(dtype=float)
        ar = np.zeros(t.size)
        e = rng.normal(0, 0.6 * math.sqrt(1 - 0.8**2), t.size)
        for j in range(1, t.size):
            ar[j] = 0.8 * ar[j - 1] + e[j]
        lon_b = round(float(place.lon), 6)
        lat_b = round(float(place.lat), 6)
        r, c = rowcol(lon_b, lat_b)
        elev = round(float(dem[r, c]), 1)
        drop = np.zeros(t.size, bool)
        empty = np.zeros(t.size, bool)
        for g0, g1, as_rows in gaps:
            sel = (dates >= g0) & (dates <= g1)
            (empty if as_rows else drop)[sel] = True
        keep = ~drop
        vals_all = []
        for z in GTNP_DEPTHS:
            temp = conduction_temperature(z, t, magt, a0) + ar * math.exp(-z / 0.7) \
                + rng.normal(0, 0.02, t.size)
            temp = np.round(temp, 2)
            for d, v, em in zip(dates[keep], temp[keep], empty[keep], strict=True):
                rows.append((row_id, d.strftime("%Y-%m-%d"), z, "" if em else f"{v:.2f}",
                             "no data entry" if em else "", dataset_id, borehole_id, site_id))
                row_id += 1
            vals_all.append(temp[keep & ~empty])
        vals = np.concatenate(vals_all)
        alt = active_layer_thickness(magt, a0)
        truth.append({"borehole_id": borehole_id, "dataset_id": dataset_id, "name": name,
                      "kind": kind, "presence": int(magt < 0), "magt_c_at_15m": magt,
                      "surface_amplitude_c": a0,
                      "mean_temperature_c_by_depth": {
                          str(z): round(magt + GEO_GRAD * (z - Z_REF), 4) for z in GTNP_DEPTHS},
                      "alt_m": None if alt is None else round(alt, 3),
                      "start": start, "end": end,
                      "gaps": [{"start": g0, "end": g1,
                                "written_as": "empty rows flagged 'no data entry'" if ar_
                                else "missing rows"} for g0, g1, ar_ in gaps],
                      "lon": lon_b, "lat": lat_b, "elevation_m": elev,
                      "p_truth": round(float(p_truth[r, c]), 4),
                      **({} if magt_field is None else
                         {"ttop_truth_c": round(float(magt_field[r, c]), 3)})})
        n_days = int(keep.sum())
        meta.append(_gtnp_metadata(dataset_id, borehole_id, site_id, name, start, end, vals,
                                   int(empty[keep].sum()) * len(GTNP_DEPTHS), n_days,
                                   lon_b, lat_b, elev, magt))
    df = pd.DataFrame(rows, columns=["id", "date", "depth", "temperature", "flag", "dataset_id",
                                     "borehole_id", "site_id"])
    return df, meta, truth


def _gtnp_metadata(dataset_id, borehole_id, site_id, name, start, end, vals, n_null, n_days,
                   lon, lat, elev, magt):
    """One dataset object in the structure of the GTN-P metadata export."""
    stamp = "2026-01-01T00:00:00"
    return {
        "id": dataset_id,
        "data_access": f"synthetic://permafrost/data_samples/gtnp/{dataset_id}",
        "description": "Synthetic record generated by data_samples/generate.py (not real data).",
        "policy": "Open", "quality": "Raw Data", "medium": "Soil",
        "created": stamp, "modified": stamp, "variable": "Ground Temperature",
        "unit": {"name": "Degree Celsius", "abbreviation": "degC"},
        "method": {"name": "Thermistor Automated",
                   "description": "Measurements from a thermistor that are collected with a "
                                  "datalogger or other recording device."},
        "datatype": "Average", "frequency": "Daily",
        "statistics": {"date_start": f"{start}T00:00:00", "date_end": f"{end}T00:00:00",
                       "min_value": float(vals.min()), "max_value": float(vals.max()),
                       "avg_value": round(float(vals.mean()), 6), "data_points": int(vals.size),
                       "null_values": int(n_null), "max_depth": max(GTNP_DEPTHS),
                       "sensors_count": len(GTNP_DEPTHS), "day_count": n_days},
        "borehole": {
            "id": borehole_id, "name": name, "description": None, "site_id": site_id,
            "site_name": f"Qilian sample site {site_id}", "country_name": "China",
            "active": False, "has_data": True, "date_start": f"{start}T00:00:00",
            "date_end": f"{end}T00:00:00", "datasets_count": 1, "timezone": "+08:00",
            "created": stamp, "modified": stamp,
            "accessibility": {"type": "road", "distance_from_road": None},
            "disturbance": {"disturbance": {"type": None, "distance": None},
                            "disturbance_other": {"type": None, "distance": None}},
            "location": {"elevation": elev, "latitude": lat, "longitude": lon},
            "contacts": [],
            "generic_citation": f"permafrost sample region: synthetic Permafrost Temperature (PT) "
                                f"at \"{name}\" (China). Not real data.",
            "citations": [], "related_publications": [], "pictures": [],
            "gtnp_code": None, "additional_code": None,
            "drilling": {"drilling_method": None, "date_drilled": f"{start[:4]}-01-01T00:00:00",
                         "depth": 20.0, "drilling_angle": 90.0, "diameter": None,
                         "deepest_sensor": max(GTNP_DEPTHS)},
        },
    }
