"""Potential incoming solar radiation (PISR): annual mean clear-sky irradiance on a slope.

The sun's position is sampled every ``day_step`` days and every ``time_step_h`` hours
over one (365-day) year; for each position the beam irradiance on the inclined surface
(``cos i = n . s``, the dot product of the surface normal and the sun vector) and the
isotropic diffuse irradiance are summed, night and self-shadow included as zero, and
divided by the number of samples: the result is the annual mean irradiance [W m-2].

* Extraterrestrial irradiance ``I0 E0`` with the solar constant 1361 W m-2 (Kopp & Lean
  2011) and Spencer's (1971) eccentricity factor and declination series.
* Clear-sky beam transmission ``tau ** m`` with a bulk transmissivity ``tau`` and the
  relative optical air mass ``m`` of Kasten & Young (1989), scaled by the station
  pressure of the standard atmosphere (``p/p0``) so that high terrain gets more beam.
* Diffuse irradiance on the horizontal ``I0 E0 cos z (0.271 - 0.294 tau**m)`` (Liu &
  Jordan 1960), seen by the slope through the isotropic sky-view factor
  ``(1 + cos beta) / 2``.
* ``transmissivity=None`` gives the top-of-atmosphere value (no atmosphere, no diffuse):
  on a horizontal surface it matches the closed-form daily insolation (Berger 1978).
* Optional terrain shading: a horizon-angle table per azimuth (:func:`horizon_angles`);
  beam irradiance is zero when the sun is below the local horizon (diffuse is kept).

References
----------
Spencer, J. W. (1971). Fourier series representation of the position of the Sun.
Search 2(5), 172.

Kasten, F. & Young, A. T. (1989). Revised optical air mass tables and approximation
formula. Applied Optics 28(22), 4735-4738.

Liu, B. Y. H. & Jordan, R. C. (1960). The interrelationship and characteristic
distribution of direct, diffuse and total solar radiation. Solar Energy 4(3), 1-19.

Kopp, G. & Lean, J. L. (2011). A new, lower value of total solar irradiance. Geophys.
Res. Lett. 38, L01706.

Duffie, J. A. & Beckman, W. A. (2013). Solar Engineering of Thermal Processes, 4th ed.
Wiley, eqs. 1.6.2 (angle of incidence), 1.10.3 (daily extraterrestrial insolation).

Berger, A. L. (1978). Long-term variations of daily insolation and Quaternary climatic
changes. J. Atmos. Sci. 35, 2362-2367.

Dozier, J. & Frew, J. (1990). Rapid calculation of terrain parameters for radiation
modeling from digital elevation data. IEEE Trans. Geosci. Remote Sens. 28(5), 963-969
(horizon angles).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "SOLAR_CONSTANT",
    "solar_declination",
    "eccentricity_factor",
    "daily_toa_insolation",
    "pisr_annual",
    "horizon_angles",
]

#: total solar irradiance [W m-2] (Kopp & Lean 2011)
SOLAR_CONSTANT = 1361.0


def _day_angle(doy):
    return 2.0 * np.pi * (np.asarray(doy, dtype=np.float64) - 1.0) / 365.0


def solar_declination(doy) -> np.ndarray:
    """Solar declination [rad] for day of year ``doy`` [1-365] (Spencer 1971).

    References
    ----------
    Spencer (1971); Duffie & Beckman (2013), eq. 1.6.1b.
    """
    g = _day_angle(doy)
    return (0.006918 - 0.399912 * np.cos(g) + 0.070257 * np.sin(g) - 0.006758 * np.cos(2 * g)
            + 0.000907 * np.sin(2 * g) - 0.002697 * np.cos(3 * g) + 0.00148 * np.sin(3 * g))


def eccentricity_factor(doy) -> np.ndarray:
    """Earth-Sun distance factor ``(r0/r)^2`` [-] for day of year ``doy`` (Spencer 1971).

    References
    ----------
    Spencer (1971); Duffie & Beckman (2013), eq. 1.4.1b.
    """
    g = _day_angle(doy)
    return (1.000110 + 0.034221 * np.cos(g) + 0.001280 * np.sin(g) + 0.000719 * np.cos(2 * g)
            + 0.000077 * np.sin(2 * g))


def daily_toa_insolation(lat_deg, doy) -> np.ndarray:
    """Closed-form daily-mean top-of-atmosphere irradiance on a horizontal surface [W m-2].

    Parameters
    ----------
    lat_deg : array-like
        Latitude [deg].
    doy : array-like
        Day of year [1-365].

    Returns
    -------
    ndarray
        ``I0 E0 / pi (h0 sin phi sin delta + cos phi cos delta sin h0)``, with ``h0`` the
        sunset hour angle (polar day and night handled).

    References
    ----------
    Berger (1978); Duffie & Beckman (2013), eq. 1.10.3.
    """
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    dec = solar_declination(doy)
    c = np.clip(-np.tan(phi) * np.tan(dec), -1.0, 1.0)
    h0 = np.arccos(c)
    return SOLAR_CONSTANT * eccentricity_factor(doy) / np.pi * (
        h0 * np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.sin(h0))


def _air_mass(cos_z, pressure_ratio):
    zdeg = np.degrees(np.arccos(np.clip(cos_z, -1.0, 1.0)))
    m = 1.0 / (np.maximum(cos_z, 0.0) + 0.50572 * np.maximum(96.07995 - zdeg, 1e-3) ** -1.6364)
    return m * pressure_ratio


def pisr_annual(slope_deg, aspect_deg, lat_deg, *, elevation_m=0.0,
                transmissivity: float | None = 0.7, day_step: int = 5,
                time_step_h: float = 0.25, horizon_deg=None, horizon_azimuths_deg=None,
                ) -> np.ndarray:
    """Annual mean clear-sky potential incoming solar radiation on an inclined surface.

    Parameters
    ----------
    slope_deg : array-like
        Slope [deg].
    aspect_deg : array-like
        Aspect (downslope direction) [deg], clockwise from north; NaN (flat) is treated
        as 0 (irrelevant when the slope is 0).
    lat_deg : array-like
        Latitude [deg].
    elevation_m : array-like
        Elevation [m] (scales the air mass by the standard-atmosphere pressure).
    transmissivity : float or None
        Clear-sky bulk transmissivity [-] (0.7 is a common clear-sky value, e.g. ArcGIS
        Solar Analyst uses 0.5 for generally clear sky with diffuse 0.3); ``None``: top of
        atmosphere, beam only.
    day_step : int
        Sampling step in days [d].
    time_step_h : float
        Sampling step within a day [h].
    horizon_deg : ndarray, shape (n_az, ...), optional
        Horizon elevation angles [deg] per azimuth (from :func:`horizon_angles`), same
        trailing shape as the surfaces; beam irradiance is zero below the horizon.
    horizon_azimuths_deg : array-like, optional
        Azimuths [deg, clockwise from north] of ``horizon_deg`` (default: equally spaced
        from 0).

    Returns
    -------
    ndarray
        Annual mean irradiance [W m-2], float64, broadcast shape of the inputs.

    References
    ----------
    Spencer (1971); Kasten & Young (1989); Liu & Jordan (1960); Duffie & Beckman (2013),
    eq. 1.6.2; see module docstring.
    """
    beta = np.radians(np.asarray(slope_deg, dtype=np.float64))
    asp = np.radians(np.nan_to_num(np.asarray(aspect_deg, dtype=np.float64), nan=0.0))
    phi = np.radians(np.asarray(lat_deg, dtype=np.float64))
    elev = np.asarray(elevation_m, dtype=np.float64)
    shape = np.broadcast_shapes(beta.shape, asp.shape, phi.shape, elev.shape)
    if horizon_deg is not None:  # the horizons are per surface: flat arrays
        beta, asp, phi, elev = (a.reshape(-1) for a in np.broadcast_arrays(beta, asp, phi, elev))
    # otherwise each term keeps the shape of what it depends on (the sun and the air mass
    # on latitude and elevation only, the surface normal on slope and aspect only), so a
    # table over (lat, elevation) x (slope, aspect) computes the sun once per node pair;
    # the per-element arithmetic is the same either way
    n_e, n_n, n_u = np.sin(beta) * np.sin(asp), np.sin(beta) * np.cos(asp), np.cos(beta)
    sky = 0.5 * (1.0 + np.cos(beta))
    pr = ((288.15 - 0.0065 * elev) / 288.15) ** 5.255
    sinphi, cosphi = np.sin(phi), np.cos(phi)
    hz = None
    if horizon_deg is not None:
        hz = np.asarray(horizon_deg, dtype=np.float64).reshape(
            np.asarray(horizon_deg).shape[0], -1)
        naz = hz.shape[0]
        az_nodes = (np.arange(naz) * 360.0 / naz if horizon_azimuths_deg is None
                    else np.asarray(horizon_azimuths_deg, dtype=np.float64))
        hz_t = np.tan(np.radians(hz))
    omegas = np.radians(np.arange(-180.0 + 7.5 * time_step_h, 180.0, 15.0 * time_step_h))
    days = np.arange(1 + day_step / 2.0, 366, day_step)
    total = np.zeros(shape if hz is None else beta.shape, dtype=np.float64)
    nsamp = 0
    for doy in days:
        dec = solar_declination(doy)
        i0 = SOLAR_CONSTANT * eccentricity_factor(doy)
        sd, cd = np.sin(dec), np.cos(dec)
        for om in omegas:
            nsamp += 1
            s_u = sinphi * sd + cosphi * cd * np.cos(om)
            up = s_u > 0
            if not up.any():
                continue
            s_e = -cd * np.sin(om) * np.ones_like(s_u)
            s_n = cosphi * sd - sinphi * cd * np.cos(om)
            cos_i = np.maximum(n_e * s_e + n_n * s_n + n_u * s_u, 0.0)
            if transmissivity is None:
                beam = i0 * cos_i
                diff = 0.0
            else:
                tm = transmissivity ** _air_mass(s_u, pr)
                beam = i0 * tm * cos_i
                diff = i0 * s_u * np.maximum(0.271 - 0.294 * tm, 0.0) * sky
            if hz is not None:
                az = np.degrees(np.arctan2(s_e, s_n)) % 360.0
                tan_el = s_u / np.maximum(np.hypot(s_e, s_n), 1e-12)
                k = az / (360.0 / naz) if horizon_azimuths_deg is None else np.interp(
                    az, az_nodes, np.arange(naz))
                k0 = np.floor(k).astype(int) % naz
                k1 = (k0 + 1) % naz
                fr = k - np.floor(k)
                idx = np.arange(hz_t.shape[1])
                h_t = (1 - fr) * hz_t[k0, idx] + fr * hz_t[k1, idx]
                beam = np.where(tan_el >= h_t, beam, 0.0)
            total += np.where(up, beam + diff, 0.0)
    return (total / nsamp).reshape(shape)


def horizon_angles(dem, *, dx, dy, n_directions: int = 16,
                   max_distance_m: float = 5000.0) -> np.ndarray:
    """Horizon elevation angle [deg] in ``n_directions`` azimuths by ray marching.

    Parameters
    ----------
    dem : ndarray, shape (ny, nx)
        Elevation [m], rows north to south.
    dx, dy : float or ndarray broadcastable to (ny, nx)
        Cell sizes [m].
    n_directions : int
        Azimuths ``k * 360 / n`` [deg] clockwise from north.
    max_distance_m : float
        Search distance [m].

    Returns
    -------
    ndarray, shape (n_directions, ny, nx)
        Horizon angle [deg] (0 when no terrain rises above the cell; cells beyond the
        array edge are ignored).

    References
    ----------
    Dozier & Frew (1990) (horizon angles for radiation modelling).
    """
    z = np.asarray(dem, dtype=np.float64)
    ny, nx = z.shape
    dxa = np.broadcast_to(np.asarray(dx, dtype=np.float64), z.shape)
    dya = np.broadcast_to(np.asarray(dy, dtype=np.float64), z.shape)
    step = float(min(np.nanmin(dxa), np.nanmin(dya)))
    nsteps = max(1, int(max_distance_m / step))
    rows, cols = np.mgrid[0:ny, 0:nx]
    out = np.zeros((n_directions, ny, nx))
    for k in range(n_directions):
        az = np.radians(k * 360.0 / n_directions)
        best = np.zeros((ny, nx))
        for s in range(1, nsteps + 1):
            dist = s * step
            r = np.rint(rows - dist * np.cos(az) / dya).astype(int)
            c = np.rint(cols + dist * np.sin(az) / dxa).astype(int)
            ok = (r >= 0) & (r < ny) & (c >= 0) & (c < nx)
            if not ok.any():
                break
            zz = np.where(ok, z[np.clip(r, 0, ny - 1), np.clip(c, 0, nx - 1)], -np.inf)
            best = np.maximum(best, (zz - z) / dist)
        out[k] = np.degrees(np.arctan(best))
    return out
