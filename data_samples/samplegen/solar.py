"""Potential incoming solar radiation from slope, aspect and the sun's path."""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RegularGridInterpolator

from samplegen.grid import NORTH, SOUTH

SOLAR_CONSTANT = 1361.0  # [W m-2] (Kopp & Lean 2011)
TAU = 0.75               # clear-sky atmospheric transmissivity [-]


def sun_positions(lat_deg, day_step=5, minutes=10):
    """Sun unit vectors (E, N, U), eccentricity factors and weights over one year.

    Declination and eccentricity correction after Spencer (1971) as given by Iqbal (1983,
    *An Introduction to Solar Radiation*, eqs 1.2.1 and 1.3.1); hour angle from local solar
    time; sun vector from the standard spherical-astronomy relations (Iqbal 1983, ch. 1.5).
    Returns only positions above the horizon; ``weight`` is the fraction of the year each
    sample represents, so sum(weight * irradiance) is the annual mean.
    """
    phi = np.deg2rad(lat_deg)
    days = np.arange(1, 366, day_step)
    hours = np.arange(0, 24 * 60, minutes) / 60.0 + minutes / 120.0
    gam = 2 * np.pi * (days - 1) / 365.0
    dec = (0.006918 - 0.399912 * np.cos(gam) + 0.070257 * np.sin(gam)
           - 0.006758 * np.cos(2 * gam) + 0.000907 * np.sin(2 * gam)
           - 0.002697 * np.cos(3 * gam) + 0.00148 * np.sin(3 * gam))
    e0 = (1.000110 + 0.034221 * np.cos(gam) + 0.001280 * np.sin(gam)
          + 0.000719 * np.cos(2 * gam) + 0.000077 * np.sin(2 * gam))
    om = np.deg2rad(15.0 * (hours - 12.0))
    d, w = np.meshgrid(dec, om, indexing="ij")
    east = -np.cos(d) * np.sin(w)
    north = np.sin(d) * np.cos(phi) - np.cos(d) * np.cos(w) * np.sin(phi)
    up = np.sin(d) * np.sin(phi) + np.cos(d) * np.cos(w) * np.cos(phi)
    ecc = np.broadcast_to(e0[:, None], up.shape)
    above = up > 0.0
    weight = 1.0 / (days.size * hours.size)
    return east[above], north[above], up[above], ecc[above], weight


def clear_sky_irradiance_lut(lat_deg, slopes, aspects, elevations):
    """Annual-mean clear-sky irradiance [W m-2] on tilted planes: a lookup table.

    Beam: S0 E0 tau^m cos(i), m = (p/p0) / cos(Z), p/p0 = exp(-z / 8200 m) (Campbell &
    Norman 1998, *An Introduction to Environmental Biophysics*, eqs 3.7, 11.11, 11.12);
    cos(i) = n . s with the surface normal n = (sin b sin A, sin b cos A, cos b) for slope b
    and downslope aspect A (Duffie & Beckman 2013, eq 1.6.3 in vector form).
    Diffuse: 0.3 (1 - tau^m) S0 E0 cos(Z) on the horizontal (Campbell & Norman eq 11.13), on
    the slope times the isotropic sky-view factor (1 + cos b) / 2 (Liu & Jordan 1963).
    No terrain shading, no reflected radiation.
    """
    se, sn, su, ecc, weight = sun_positions(lat_deg)
    b = np.deg2rad(slopes)[:, None, None]
    a = np.deg2rad(aspects)[None, :, None]
    nE, nN, nU = np.sin(b) * np.sin(a), np.sin(b) * np.cos(a), np.cos(b)
    out = np.empty((len(slopes), len(aspects), len(elevations)))
    for k, z in enumerate(elevations):
        m = np.exp(-z / 8200.0) / su
        tm = TAU**m
        s0 = SOLAR_CONSTANT * ecc
        beam = s0 * tm
        diffuse_h = 0.3 * (1.0 - tm) * s0 * su
        total = np.zeros((len(slopes), len(aspects)))
        for i0 in range(0, su.size, 2000):
            sl = slice(i0, i0 + 2000)
            cosi = nE * se[sl] + nN * sn[sl] + nU * su[sl]
            total += (np.clip(cosi, 0, None) * beam[sl]).sum(axis=2)
            total += ((1 + np.cos(b[..., 0])) / 2.0) * diffuse_h[sl].sum()
        out[:, :, k] = total * weight
    return out


def make_pisr(dem, slope, aspect):
    """Potential incoming solar radiation, annual mean [W m-2], on the DEM's slopes and aspects.

    Computed on a lookup table (slope 0-86 deg by 2 deg, aspect 0-360 deg by 5 deg,
    elevation 2600-5400 m by 700 m) at the domain's central latitude, then interpolated
    (trilinear) to every pixel; see :func:`clear_sky_irradiance_lut`.
    """
    slopes = np.arange(0.0, 87.0, 2.0)
    aspects = np.arange(0.0, 361.0, 5.0)
    elevs = np.arange(2600.0, 5401.0, 700.0)
    lut = clear_sky_irradiance_lut(0.5 * (NORTH + SOUTH), slopes, aspects, elevs)
    f = RegularGridInterpolator((slopes, aspects, elevs), lut, method="linear")
    pts = np.stack([np.clip(slope, 0, 86).ravel(), aspect.ravel() % 360.0, dem.ravel()], axis=1)
    return f(pts).reshape(dem.shape), {"tau": TAU, "solar_constant_w_m2": SOLAR_CONSTANT,
                                       "latitude_deg": 0.5 * (NORTH + SOUTH),
                                       "day_step": 5, "minute_step": 10}
