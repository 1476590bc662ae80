"""Terrain: a fractal surface on two ranges, the road valley, lakes and glaciers."""

from __future__ import annotations

import numpy as np
import rasterio.features
from scipy import ndimage
from shapely.geometry import LineString, Point, Polygon, shape

from samplegen.grid import (
    NORTH,
    NX,
    NY,
    PIX,
    SOUTH,
    TRANSFORM,
    km_coords,
    lat_centres,
    lon_centres,
    metres_per_degree,
    sigmoid,
)

#: the road (G227-like): from the low northern valley over a pass into the central valley [km]
ROAD_KM = [(27.5, 33.4), (26.6, 30.5), (25.2, 27.8), (24.0, 25.2), (23.1, 22.6), (22.4, 20.4),
           (21.0, 18.2), (18.5, 16.4), (15.0, 15.2), (11.0, 14.6), (7.0, 14.2), (3.0, 13.6),
           (-0.2, 13.2)]


def crest_north(x_km):
    """Northing of the main (northern) range crest [km] at easting ``x_km`` [km]."""
    x = np.asarray(x_km)
    return 22.5 + 1.5 * np.sin(2 * np.pi * x / 30.0 + 0.7) - 0.05 * (x - 17)


def crest_south(x_km):
    """Northing of the southern range crest [km]."""
    return 6.5 + 1.2 * np.sin(2 * np.pi * np.asarray(x_km) / 22.0 + 2.0)


def spectral_surface(rng, ny, nx, dy_km, dx_km, beta, k_min):
    """Gaussian random surface with a power-law spectrum P(k) ~ k^-beta, unit variance.

    White noise filtered in the Fourier domain (the spectral synthesis of fractional Brownian
    surfaces, Saupe 1988 in Peitgen & Saupe, *The Science of Fractal Images*); a 2-D spectral
    exponent beta = 2H + 2 gives Hurst exponent H.  Synthesised on a grid 1.5x larger and
    cropped, so the periodic boundary of the FFT does not show.
    """
    py, px = int(ny * 1.5), int(nx * 1.5)
    white = rng.standard_normal((py, px))
    spec = np.fft.rfft2(white)
    ky = np.fft.fftfreq(py, dy_km)[:, None]
    kx = np.fft.rfftfreq(px, dx_km)[None, :]
    k = np.maximum(np.hypot(kx, ky), k_min)
    spec *= k ** (-beta / 2.0)
    surf = np.fft.irfft2(spec, s=(py, px))[:ny, :nx]
    return (surf - surf.mean()) / surf.std()


def road_distance_km(x, y):
    """Distance of every pixel to the road polyline [km] (exact, via rasterised Euclid)."""
    line = LineString(ROAD_KM)
    pts = np.stack([x.ravel(), y.ravel()], axis=1)
    # distance to a polyline: min over segments
    best = np.full(pts.shape[0], np.inf)
    coords = np.asarray(line.coords)
    for (ax, ay), (bx, by) in zip(coords[:-1], coords[1:], strict=True):
        vx, vy = bx - ax, by - ay
        t = np.clip(((pts[:, 0] - ax) * vx + (pts[:, 1] - ay) * vy) / (vx * vx + vy * vy), 0, 1)
        d = np.hypot(pts[:, 0] - ax - t * vx, pts[:, 1] - ay - t * vy)
        best = np.minimum(best, d)
    return best.reshape(x.shape)


def make_terrain(rng) -> tuple[np.ndarray, dict]:
    """DEM [m]: two WNW-ESE ranges with fractal relief, a road valley over a pass.

    z = ranges(x, y) + 560 m * f1 + 130 m * ridged(f2) - road valley, rescaled linearly to
    2800-5200 m.  f1 is a spectral surface with beta = 4.0 (H = 1; steeper spectra than the
    beta ~ 3 of natural landscapes at kilometre scales, e.g. Huang & Turcotte 1989, keep the
    2 arcsec slopes realistic, mostly 5-35 deg), f2 one with beta = 3.6 turned into sharp
    crests by 1 - |f2| ("ridged" noise, Musgrave in Ebert et al. 2003).  The road valley is
    a Gaussian trench (width 1.3 km) 150 m deep, 900 m where the road crosses the main crest.
    """
    x, y = km_coords()
    dx_km = x[0, 1] - x[0, 0]
    dy_km = y[0, 0] - y[1, 0]
    yn, ys = crest_north(x), crest_south(x)
    ranges = (3250.0
              + 1450.0 * np.exp(-(((y - yn) / 6.0) ** 2))
              + 1000.0 * np.exp(-(((y - ys) / 5.0) ** 2))
              - 550.0 * sigmoid((y - yn - 6.0) / 2.0)      # the low northern foreland
              - 9.0 * x)                                     # the central valley drains east
    f1 = spectral_surface(rng, NY, NX, dy_km, dx_km, beta=4.0, k_min=1 / 25.0)
    f2 = spectral_surface(rng, NY, NX, dy_km, dx_km, beta=3.6, k_min=1 / 8.0)
    ridged = 1.0 - np.abs(f2)
    ridged = (ridged - ridged.mean()) / ridged.std()
    z = ranges + 560.0 * f1 + 130.0 * ridged
    d = road_distance_km(x, y)
    # the valley the road follows: deeper where the road crosses the main range (the pass)
    near_crest = np.exp(-(((y - yn) / 3.0) ** 2))
    z -= (150.0 + 750.0 * near_crest) * np.exp(-((d / 1.3) ** 2))
    z = 2800.0 + (z - z.min()) / (z.max() - z.min()) * 2400.0
    return z, {"x_km": x, "y_km": y, "road_dist_km": d}


def make_lakes(rng, dem, slope_s, n_lakes=5) -> list[Polygon]:
    """3-6 small lakes (ellipses 250-650 m) in flat valley floors, away from the road."""
    x, y = km_coords()
    rel = dem - ndimage.gaussian_filter(dem, 25)
    d_road = road_distance_km(x, y)
    ok = (slope_s < 6) & (rel < -60) & (d_road > 0.8) & (dem < 4300)
    ok[:30, :] = ok[-30:, :] = False
    ok[:, :30] = ok[:, -30:] = False
    rows, cols = np.nonzero(ok)
    order = rng.permutation(rows.size)
    lakes: list[Polygon] = []
    lon, lat = lon_centres(), lat_centres()
    mx, my = metres_per_degree(np.array(0.5 * (NORTH + SOUTH)))
    for i in order:
        r, c = rows[i], cols[i]
        p = Point(lon[c], lat[r])
        if any(p.distance(lk.centroid) < 0.03 for lk in lakes):
            continue
        a, b = rng.uniform(150, 330), rng.uniform(100, 220)
        th = rng.uniform(0, np.pi)
        t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
        ex = a * np.cos(t) * np.cos(th) - b * np.sin(t) * np.sin(th)
        ey = a * np.cos(t) * np.sin(th) + b * np.sin(t) * np.cos(th)
        lakes.append(Polygon(np.c_[lon[c] + ex / mx, lat[r] + ey / my]))
        if len(lakes) == n_lakes:
            break
    return lakes


def make_glaciers(dem, slope) -> list[Polygon]:
    """Glaciers on the highest, not too steep summits: z > 4850 m, slope < 30 deg, >= 25 px."""
    cand = (dem > 4850) & (slope < 30)
    cand = ndimage.binary_opening(cand, iterations=1)
    lab, n = ndimage.label(cand)
    sizes = ndimage.sum(cand, lab, index=np.arange(1, n + 1))
    keep = np.isin(lab, 1 + np.nonzero(sizes >= 25)[0])
    keep = ndimage.binary_closing(keep, iterations=2) & (dem > 4700)
    out = []
    for geom, val in rasterio.features.shapes(keep.astype("uint8"), mask=keep, transform=TRANSFORM):
        if val == 1:
            p = shape(geom).simplify(PIX * 0.6, preserve_topology=True)
            if p.is_valid and not p.is_empty:
                out.append(p)
    return out
