"""A physics-based truth: the temperature at the top of permafrost (TTOP) and the land cover.

The truth of the ``--truth ttop`` region (``data_samples/generate.py --truth ttop``).  The
ground's temperature, not a logistic of the covariates, sets where permafrost is:

    TTOP = (rk nt TDDa - nf FDDa) / P - dT_debris          (Smith & Riseborough 1996, 2002)
    PZI  = Phi(-TTOP / sigma)                               (Gruber 2012; Obu et al. 2019)

with the air thawing/freezing degree-days TDDa/FDDa of a sinusoidal year around the
near-surface air temperature (the MAAT covariate plus a cold-air-pooling cooling), n-factors
from a snow field (nf) and from the land cover and radiation (nt), the conductivity ratio rk
per land-cover class, a Balch-effect cooling of coarse blocky debris (Harris & Pedersen 1998)
and an uncertainty sigma per class.  Every function states its units and its source; the
parameters are module constants, recorded in ``truth/truth.json``.

References
----------
Smith, M. W., Riseborough, D. W. (1996): Permafrost monitoring and detection of climate change.
    Permafrost and Periglacial Processes 7, 301-309.
Smith, M. W., Riseborough, D. W. (2002): Climate and the limits of permafrost: a zonal
    analysis. Permafrost and Periglacial Processes 13, 1-15.
Riseborough, D., Shiklomanov, N., Etzelmueller, B., Gruber, S., Marchenko, S. (2008): Recent
    advances in permafrost modelling. Permafrost and Periglacial Processes 19, 137-156.
Harris, S. A., Pedersen, D. E. (1998): Thermal regimes beneath coarse blocky materials.
    Permafrost and Periglacial Processes 9, 107-120.
Gruber, S. (2012): Derivation and analysis of a high-resolution estimate of global permafrost
    zonation. The Cryosphere 6, 221-233.
Obu, J. et al. (2019): Northern Hemisphere permafrost map based on TTOP modelling for
    2000-2016 at 1 km2 scale. Earth-Science Reviews 193, 299-316.
Boeckli, L., Brenning, A., Gruber, S., Noetzli, J. (2012): Permafrost distribution in the
    European Alps: calculation and evaluation of an index map and summary statistics.
    The Cryosphere 6, 807-820.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from scipy.special import ndtr

from samplegen.grid import slope_aspect

#: length of the year [days] (P in the TTOP equation)
PERIOD_D = 365.0
#: annual half-range of daily air temperature [deg C]: a continental Qilian climate (Tuole
#: station: January about -17 deg C, July about +9 deg C at MAAT -2.7 deg C)
AMPLITUDE_C = 12.5

# land-cover classes (the values of covariates/landcover.tif and truth/landcover_truth.tif)
BEDROCK, DEBRIS, FINE, MEADOW, WATER, GLACIER = 1, 2, 3, 4, 5, 6
LC_NODATA = 255
CLASS_NAMES = {BEDROCK: "bedrock", DEBRIS: "coarse debris (blocky)",
               FINE: "fine debris / soil", MEADOW: "alpine meadow (vegetated)",
               WATER: "water", GLACIER: "glacier"}
LAND = (BEDROCK, DEBRIS, FINE, MEADOW)

#: per-class surface parameters.  nt: thawing n-factor before the radiation factor [-];
#: rk: thawed/frozen thermal conductivity ratio [-]; sigma: uncertainty of TTOP [deg C];
#: balch: 1 where the Balch-effect cooling applies.  Water and glacier cells take the
#: fine-debris values (they are masked in every statistic; their PZI carries no meaning).
CLASS_PARAMS = {
    BEDROCK: {"nt": 1.40, "rk": 1.00, "sigma_c": 0.6, "balch": 0},
    DEBRIS: {"nt": 1.15, "rk": 1.00, "sigma_c": 0.8, "balch": 1},
    FINE: {"nt": 1.25, "rk": 0.95, "sigma_c": 1.0, "balch": 0},
    MEADOW: {"nt": 1.00, "rk": 0.85, "sigma_c": 1.3, "balch": 0},
    WATER: {"nt": 1.00, "rk": 0.90, "sigma_c": 1.0, "balch": 0},
    GLACIER: {"nt": 1.00, "rk": 0.90, "sigma_c": 1.0, "balch": 0},
}
#: Balch-effect cooling of coarse debris [deg C]: mean and the range it is clipped to
BALCH_MEAN_C, BALCH_RANGE_C = 2.0, (1.0, 3.0)
#: land-cover placement: bedrock slope, wall slope [deg], wall reach (share) (make_landcover)
BEDROCK_SLOPE, WALL_SLOPE, REACH = 32.0, 27.0, 0.05
#: snow depth at 3000 m and its gain to 4500 m [m] (see :func:`snow_depth`)
HS_BASE_M, HS_GAIN_M = 0.15, 0.55
#: snow: nf = NF_MIN + (1 - NF_MIN) exp(-HS / NF_HS_M)
NF_MIN, NF_HS_M = 0.1, 0.2
#: radiation factor on nt: 1 + NT_PISR_GAIN (PISR - PISR_REF) / PISR_REF, clipped 0.7-1.3
NT_PISR_GAIN = 0.5
#: cold-air pooling: cooling per 100 m below the neighbourhood mean, its cap, the neighbourhood
CAP_PER_100M_C, CAP_MAX_C, CAP_SIGMA_PX = 1.5, 2.5, 12.0
#: misclassification of the land-cover map users hold: share of land cells whose class is wrong
CONFUSION_RATE = 0.12
#: when a cell is wrong, which class it is read as (row: true class; probabilities)
CONFUSION = {BEDROCK: {DEBRIS: 0.7, FINE: 0.3},
             DEBRIS: {BEDROCK: 0.35, FINE: 0.65},
             FINE: {DEBRIS: 0.5, MEADOW: 0.5},
             MEADOW: {FINE: 1.0}}


# ----------------------------------------------------------------------------------------------
# air temperature
# ----------------------------------------------------------------------------------------------
def degree_days(maat, amplitude=AMPLITUDE_C, period=PERIOD_D):
    """Air thawing and freezing degree-days of a sinusoidal year.

    T(t) = MAAT + A sin(2 pi t / P).  With x = MAAT / A and, for |x| < 1,
    phi0 = arcsin(-x) (the phase where T crosses 0 deg C going up):

        TDD = P / (2 pi) [MAAT (pi - 2 phi0) + 2 A cos(phi0)]
        FDD = TDD - P MAAT

    (the integral of the sinusoid above 0 deg C over the thawed part of the year; FDD from
    TDD - FDD = integral of T over the year = P MAAT).  x >= 1: TDD = P MAAT, FDD = 0;
    x <= -1: TDD = 0, FDD = -P MAAT.  The sinusoidal year is the standard approximation of
    the annual air-temperature cycle in TTOP and Stefan-type models (Riseborough et al. 2008,
    and Smith & Riseborough 1996, on equilibrium models driven by degree-days).

    Parameters
    ----------
    maat : array_like
        Mean annual air temperature [deg C].
    amplitude : float or array_like
        Half the annual range of air temperature, A > 0 [deg C].
    period : float
        Length of the year [days].

    Returns
    -------
    (tdd, fdd) : numpy.ndarray
        Thawing and freezing degree-days, both >= 0 [deg C day].

    References
    ----------
    Smith & Riseborough (1996), PPP 7:301-309; Riseborough et al. (2008), PPP 19:137-156.
    """
    maat = np.asarray(maat, dtype=np.float64)
    a = np.broadcast_to(np.asarray(amplitude, dtype=np.float64), maat.shape)
    x = np.clip(maat / a, -1.0, 1.0)
    phi0 = np.arcsin(-x)
    tdd = period / (2 * np.pi) * (maat * (np.pi - 2 * phi0) + 2 * a * np.cos(phi0))
    tdd = np.where(x >= 1.0, period * maat, np.where(x <= -1.0, 0.0, tdd))
    tdd = np.maximum(tdd, 0.0)
    fdd = np.maximum(tdd - period * maat, 0.0)
    return tdd, fdd


def cold_air_pooling(dem, slope):
    """Cooling of the near-surface air in valley bottoms and concavities [deg C, <= 0].

    dT = -CAP_PER_100M_C * (max(-TPI, 0) / 100 m) * max(1 - slope / 25 deg, 0), capped at
    -CAP_MAX_C, with the topographic position index TPI = z - gaussian_filter(z, 12 px)
    (about 600-750 m) [m].  Cold air drains into and pools in depressions and flat valley
    floors on clear winter nights, so that such sites are colder than a lapse rate says (air
    temperature inversions in mountain permafrost terrain: e.g. Lewkowicz & Ednie 2004, PPP
    15:67-80).  The TPI form and its constants are a choice of this synthetic region.  A
    simplification: the cooling is applied to the whole year's air temperature, not to the
    winter inversions only.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevation [m].
    slope : numpy.ndarray
        Slope [deg].

    Returns
    -------
    numpy.ndarray
        Air-temperature change [deg C], in [-CAP_MAX_C, 0].
    """
    tpi = dem - ndimage.gaussian_filter(dem, CAP_SIGMA_PX)
    flat = np.clip(1.0 - slope / 25.0, 0.0, 1.0)
    return -np.minimum(CAP_PER_100M_C * np.maximum(-tpi, 0.0) / 100.0 * flat, CAP_MAX_C)


# ----------------------------------------------------------------------------------------------
# surface: snow, n-factors
# ----------------------------------------------------------------------------------------------
def snow_depth(dem, slope, aspect):
    """Mean winter snow depth HS [m] from elevation, wind exposure, aspect and slope.

    HS = hs(z) f_wind f_aspect f_slope with
    hs(z) = 0.12 + 0.28 clip((z - 3000 m) / 1500 m, 0, 1.4) (thin snow of a dry continental
    range, more with height); f_wind = clip(exp(-TPI / 40 m), 0.25, 2.5), TPI = z -
    gaussian_filter(z, 5 px) [m] (ridges and convexities are wind-scoured, hollows collect
    drift: the curvature/exposure control of mountain snow, e.g. Winstral et al. 2002, J.
    Hydrometeorol. 3:524); f_aspect = 1 + 0.3 cos(aspect) min(slope / 30 deg, 1) (snow lasts
    on shady slopes); f_slope = clip(1 - (slope - 30 deg) / 20 deg, 0.1, 1) (snow sloughs off
    steep rock).  An empirical field for a synthetic region, not a fitted model.

    Parameters
    ----------
    dem : numpy.ndarray
        Elevation [m].
    slope, aspect : numpy.ndarray
        Slope [deg] and downslope aspect, clockwise from north [deg].

    Returns
    -------
    numpy.ndarray
        Snow depth [m].
    """
    hs_z = HS_BASE_M + HS_GAIN_M * np.clip((dem - 3000.0) / 1500.0, 0.0, 1.4)
    tpi = dem - ndimage.gaussian_filter(dem, 5.0)
    f_wind = np.clip(np.exp(-tpi / 40.0), 0.25, 2.5)
    f_asp = 1.0 + 0.3 * np.cos(np.deg2rad(aspect)) * np.minimum(slope / 30.0, 1.0)
    f_slope = np.clip(1.0 - (slope - 30.0) / 20.0, 0.1, 1.0)
    return hs_z * f_wind * f_asp * f_slope


def freezing_n_factor(hs):
    """Freezing n-factor nf [-] from the snow depth HS [m].

    nf = NF_MIN + (1 - NF_MIN) exp(-HS / NF_HS_M), NF_MIN = 0.2, NF_HS_M = 0.3 m: 1 without
    snow, falling toward 0.2 under deep snow.  Snow insulates the ground in winter; observed
    nf range from about 0.9 on wind-blown ground to 0.2-0.4 under 0.5-1 m of snow (Smith &
    Riseborough 2002, their discussion of the surface offset; Riseborough et al. 2008; Klene et
    al. 2001, Arct. Antarct. Alp. Res. 33:140).  The exponential form and its two constants are
    a choice of this synthetic region, not a fitted relation.

    Parameters
    ----------
    hs : numpy.ndarray
        Winter snow depth [m].

    Returns
    -------
    numpy.ndarray
        nf [-], in (NF_MIN, 1].
    """
    return NF_MIN + (1.0 - NF_MIN) * np.exp(-np.maximum(hs, 0.0) / NF_HS_M)


def thawing_n_factor(landcover, pisr, pisr_ref):
    """Thawing n-factor nt [-] from the land cover and the potential radiation.

    nt = nt_class * clip(1 + NT_PISR_GAIN (PISR - PISR_ref) / PISR_ref, 0.7, 1.3), nt_class
    from :data:`CLASS_PARAMS` (bare rock 1.1: sun-heated surfaces are warmer than the air;
    coarse debris 0.9; fine debris 1.0; meadow 0.75: vegetation shades and cools the ground
    in summer).  Range of nt: Smith & Riseborough (2002); Riseborough et al. (2008); Klene et
    al. (2001), Arct. Antarct. Alp. Res. 33:140.  Values above 1 on bare ground stand for the
    strong summer radiation of a high, dry range.

    Parameters
    ----------
    landcover : numpy.ndarray of int
        Classes (:data:`CLASS_NAMES`).
    pisr : numpy.ndarray
        Potential incoming solar radiation [W m-2].
    pisr_ref : float
        Reference radiation [W m-2].

    Returns
    -------
    numpy.ndarray
        nt [-].
    """
    base = class_values(landcover, "nt")
    rad = np.clip(1.0 + NT_PISR_GAIN * (pisr - pisr_ref) / pisr_ref, 0.7, 1.3)
    return base * rad


def class_values(landcover, key):
    """Look up ``CLASS_PARAMS[class][key]`` for every cell of ``landcover`` [unit of ``key``]."""
    out = np.zeros(landcover.shape, np.float64)
    for cls, prm in CLASS_PARAMS.items():
        out[landcover == cls] = prm[key]
    return out


def balch_field(rng, shape):
    """Balch-effect cooling of coarse debris [deg C], varying in space within 1-3 deg C.

    BALCH_MEAN_C + 0.6 * g, g a unit-variance Gaussian-filtered noise field (sigma 6 px),
    clipped to 1-3 deg C.  Coarse blocky debris is 1-3 deg C colder than fine ground at
    the same air temperature: winter ventilation (convection through the open voids) and a
    thin, late snow cover (Harris & Pedersen 1998, PPP 9:107-120; the Balch effect).

    Parameters
    ----------
    rng : numpy.random.Generator
    shape : tuple of int

    Returns
    -------
    numpy.ndarray
        Cooling [deg C], >= 0 (applied where the class is coarse debris).
    """
    g = ndimage.gaussian_filter(rng.standard_normal(shape), 6.0)
    g /= g.std()
    return np.clip(BALCH_MEAN_C + 0.6 * g, *BALCH_RANGE_C)


# ----------------------------------------------------------------------------------------------
# TTOP and PZI
# ----------------------------------------------------------------------------------------------
def ttop(tdd, fdd, nt, nf, rk, period=PERIOD_D):
    """Temperature at the top of permafrost [deg C] (Smith & Riseborough 1996, 2002).

    TTOP = (rk nt TDDa - nf FDDa) / P.  Where it is positive the equation gives a mean
    surface-driven ground temperature (no permafrost) and the ratio rk then does not apply
    physically; as in Smith & Riseborough (2002) the sign decides, and the value is
    kept as the truth's temperature (rk < 1 only lowers TTOP).

    Parameters
    ----------
    tdd, fdd : array_like
        Air thawing and freezing degree-days [deg C day].
    nt, nf : array_like
        Thawing and freezing n-factors [-].
    rk : array_like
        Thawed/frozen thermal conductivity ratio [-].
    period : float
        Length of the year [days].

    Returns
    -------
    numpy.ndarray
        TTOP [deg C].

    References
    ----------
    Smith & Riseborough (2002), PPP 13:1-15; Riseborough et al. (2008), PPP 19:137-156.
    """
    return (np.asarray(rk) * np.asarray(nt) * np.asarray(tdd)
            - np.asarray(nf) * np.asarray(fdd)) / period


def pzi_from_ttop(t, sigma):
    """Permafrost probability [-] from TTOP [deg C] and its uncertainty sigma [deg C].

    PZI = P(TTOP + sigma e < 0) = Phi(-TTOP / sigma), e ~ N(0, 1): the probability reading of
    a zonation index (Gruber 2012, TC 6:221) and the ensemble share of MAGT < 0 of Obu et al.
    (2019, ESR 193:299).
    """
    return ndtr(-np.asarray(t) / np.asarray(sigma))


def surface_fields(rng, dem, slope, aspect, pisr):
    """The surface fields that do not depend on the land cover (held fixed under warming).

    Returns a dict of float64 arrays: ``pooling_c`` [deg C] (:func:`cold_air_pooling`),
    ``snow_m`` [m] (:func:`snow_depth`), ``nf`` [-] (:func:`freezing_n_factor`),
    ``balch_c`` [deg C] (:func:`balch_field`) and the reference radiation ``pisr_ref``.
    """
    dem_s = ndimage.gaussian_filter(dem, 1.0)
    slope_s, aspect_s = slope_aspect(dem_s)
    hs = snow_depth(dem, slope_s, aspect_s)
    return {"pooling_c": cold_air_pooling(dem, slope_s), "snow_m": hs,
            "nf": freezing_n_factor(hs), "balch_c": balch_field(rng, dem.shape),
            "pisr_ref": float(np.round(np.median(pisr)))}


def ttop_truth(maat, pisr, landcover, fields, delta_t=0.0):
    """TTOP [deg C], PZI [-] and sigma [deg C] of the truth for air temperature MAAT + delta_t.

    The surface (land cover, snow, n-factors, Balch cooling, pooling) is held fixed; only the
    air temperature changes with ``delta_t`` [deg C] (equilibrium warming: Riseborough et al.
    2008).  TTOP = (rk nt TDDa - nf FDDa)/P - balch (coarse debris only), with TDDa/FDDa from
    :func:`degree_days` of MAAT + pooling + delta_t and amplitude :data:`AMPLITUDE_C`.
    """
    tair = maat + fields["pooling_c"] + delta_t
    tdd, fdd = degree_days(tair)
    nt = thawing_n_factor(landcover, pisr, fields["pisr_ref"])
    rk = class_values(landcover, "rk")
    t = ttop(tdd, fdd, nt, fields["nf"], rk) - class_values(landcover, "balch") * fields["balch_c"]
    sigma = class_values(landcover, "sigma_c")
    return t, pzi_from_ttop(t, sigma), sigma


# ----------------------------------------------------------------------------------------------
# land cover
# ----------------------------------------------------------------------------------------------
def make_landcover(rng, dem, ndvi, lakes_mask, glacier_mask):
    """True land-cover classes placed by terrain (uint8, :data:`CLASS_NAMES`).

    - bedrock: smoothed slope (DEM Gaussian-filtered, sigma 2 px) >= 36 deg, or sharp ridges
      (TPI over sigma 4 px > 30 m) steeper than 25 deg;
    - coarse debris: talus and blocky debris below walls, i.e. within reach of a wall (a wall
      = smoothed slope >= 32 deg; reach = Gaussian-filtered wall share (sigma 5 px) > 0.06),
      lower than the wall zone's mean (TPI <= 15 m), slope 8-36 deg, NDVI < 0.35 and above
      3300 m, thinned at the margins by a correlated noise field (patchy talus);
    - alpine meadow: NDVI >= 0.33 on ground that is neither (vegetation cover; NDVI falls
      with elevation and slope in the covariate, so meadow sits low and on gentle slopes);
    - fine debris / soil: the rest;
    - water (lakes) and glacier from the masks.

    The placement follows the geomorphology of talus slopes and rock glaciers below
    rockwalls (Boeckli et al. 2012 use the same debris/bedrock split).  Rock glacier outlines
    are burned in as coarse debris afterwards (:func:`burn_debris`).
    """
    dem_s = ndimage.gaussian_filter(dem, 2.0)
    slope_s, _ = slope_aspect(dem_s)
    tpi = dem - ndimage.gaussian_filter(dem, 4.0)
    bedrock = (slope_s >= BEDROCK_SLOPE) | ((tpi > 25.0) & (slope_s > 22.0))
    wall = slope_s >= WALL_SLOPE
    reach = ndimage.gaussian_filter(wall.astype(np.float64), 5.0)
    noise = ndimage.gaussian_filter(rng.standard_normal(dem.shape), 3.0)
    noise /= noise.std()
    debris = ((reach > REACH + 0.04 * noise) & ~bedrock & (tpi <= 15.0) & (slope_s >= 8.0)
              & (ndvi < 0.35) & (dem > 3300.0))
    lc = np.full(dem.shape, FINE, np.uint8)
    lc[(ndvi >= 0.33) & ~bedrock & ~debris] = MEADOW
    lc[debris] = DEBRIS
    lc[bedrock] = BEDROCK
    lc[glacier_mask] = GLACIER
    lc[lakes_mask] = WATER
    return lc


def burn_debris(landcover, rows, cols):
    """Set the cells (rows, cols) to coarse debris (a rock glacier is coarse debris) in place."""
    keep = ~np.isin(landcover[rows, cols], (WATER, GLACIER))
    landcover[rows[keep], cols[keep]] = DEBRIS


def misclassify(rng, landcover, rate=CONFUSION_RATE):
    """The land-cover map as users hold one: a share ``rate`` of the land cells classed wrong.

    Errors come in small patches (a Gaussian-filtered noise field, sigma 1.5 px, above its
    (1 - rate) quantile over land), as in classified imagery where mixed pixels and class
    boundaries go wrong together; each wrong cell takes a confusable class drawn from
    :data:`CONFUSION` (debris <-> bedrock/fine, fine <-> meadow).  Water and glacier cells
    stay right.  Overall accuracies of 80-90 % are typical of mountain land-cover maps.

    Returns
    -------
    (observed, confusion) : (numpy.ndarray of uint8, dict)
        The observed map and the realised confusion counts {true: {observed: n}}.
    """
    land = np.isin(landcover, LAND)
    g = ndimage.gaussian_filter(rng.standard_normal(landcover.shape), 1.5)
    thr = np.quantile(g[land], 1.0 - rate)
    wrong = land & (g > thr)
    u = rng.uniform(size=landcover.shape)
    obs = landcover.copy()
    for cls, row in CONFUSION.items():
        sel = wrong & (landcover == cls)
        edges = np.cumsum(list(row.values()))
        targets = np.array(list(row.keys()), np.uint8)
        k = np.searchsorted(edges, u[sel] * edges[-1], side="right")
        obs[sel] = targets[np.minimum(k, targets.size - 1)]
    conf = {CLASS_NAMES[t]: {CLASS_NAMES[o]: int(((landcover == t) & (obs == o)).sum())
                             for o in LAND} for t in LAND}
    return obs, conf


def parameters() -> dict:
    """Every parameter of the TTOP truth, for ``truth.json``."""
    return {
        "period_days": PERIOD_D, "air_amplitude_c": AMPLITUDE_C,
        "classes": {str(k): v for k, v in CLASS_NAMES.items()},
        "class_params": {CLASS_NAMES[k]: v for k, v in CLASS_PARAMS.items()
                         if k in LAND},
        "balch_cooling_c": {"mean": BALCH_MEAN_C, "range": list(BALCH_RANGE_C),
                            "field": "mean + 0.6 * unit Gaussian-filtered noise (sigma 6 px), "
                                     "clipped"},
        "nf": {"formula": "nf = nf_min + (1 - nf_min) * exp(-HS / hs_scale_m)",
               "nf_min": NF_MIN, "hs_scale_m": NF_HS_M},
        "snow_depth_m": "HS = (0.12 + 0.28 clip((z - 3000)/1500, 0, 1.4)) * clip(exp(-TPI5/40 m),"
                        " 0.25, 2.5) * (1 + 0.3 cos(aspect) min(slope/30, 1)) * clip(1 - "
                        "(slope - 30)/20, 0.1, 1); TPI5 = z - gaussian(z, 5 px)",
        "nt": {"formula": "nt = nt_class * clip(1 + gain (PISR - PISR_ref)/PISR_ref, 0.7, 1.3)",
               "gain": NT_PISR_GAIN},
        "cold_air_pooling": {"formula": "dT = -min(k * max(-TPI, 0)/100 m * max(1 - slope/25, 0),"
                                        " cap); TPI = z - gaussian(z, sigma_px)",
                             "k_c_per_100m": CAP_PER_100M_C, "cap_c": CAP_MAX_C,
                             "sigma_px": CAP_SIGMA_PX},
        "degree_days": "sinusoidal year T = MAAT_air + A sin(2 pi t / P); phi0 = arcsin(-MAAT/A);"
                       " TDD = P/(2 pi) (MAAT (pi - 2 phi0) + 2 A cos phi0); FDD = TDD - P MAAT",
        "ttop": "TTOP = (rk nt TDD - nf FDD)/P - balch (coarse debris only); air temperature ="
                " MAAT covariate + cold-air pooling (+ warming)",
        "pzi": "PZI = Phi(-TTOP / sigma_class)",
        "landcover_confusion_rate": CONFUSION_RATE,
        "landcover_confusion_targets": {CLASS_NAMES[k]: {CLASS_NAMES[t]: p for t, p in v.items()}
                                        for k, v in CONFUSION.items()},
    }


def _check_degree_days():  # pragma: no cover - a quick manual check
    t = np.linspace(0, PERIOD_D, 200001)
    for m in (-8.0, -2.0, 0.0, 3.0):
        temp = m + AMPLITUDE_C * np.sin(2 * math.pi * t / PERIOD_D)
        print(m, degree_days(m), np.trapezoid(np.maximum(temp, 0), t),
              np.trapezoid(np.maximum(-temp, 0), t))
