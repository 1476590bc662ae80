"""Rock glacier kinematics from MintPy line-of-sight velocities.

Pure science, in four steps (no file I/O; :func:`run_kinematics` at the bottom wires
the readers of :mod:`permafrost.io` to them):

1. **Terrain** -- slope and downslope aspect from a DEM, computed in metres on the
   ellipsoid (geographic grids) or in the projection corrected for its scale factor
   and meridian convergence (projected grids), by central differences after a light
   Gaussian smoothing (:func:`permafrost.terrain.terrain_gradient` with
   ``method="central"``, :func:`permafrost.terrain.gradient_to_slope_aspect`).
2. **Projection** -- the LOS unit vector ``l = [-sin θ sin α, sin θ cos α, cos θ]``
   (E, N, U; θ incidence, α azimuth of the ground-to-satellite vector, anticlockwise
   from north, as MintPy defines them), the downslope unit vector
   ``s = [cos β sin A, cos β cos A, -sin β]`` (β slope, A downslope aspect clockwise
   from north), the sensitivity ``C = l · s`` and ``V_downslope = V_LOS / C``
   (Notti et al. 2014).
3. **Masks** -- low sensitivity (``|C| < min_sensitivity``), flat terrain, radar
   shadow/layover (from the geometry file and from the DEM), water, low temporal
   coherence / ``maskTempCoh``, no data; every reason is counted.
4. **Per outline** -- pixel statistics by :mod:`permafrost.zonal`, tracks combined by
   inverse-variance weighting, RGIK kinematic class, activity and reliability.

References
----------
Notti, D., Herrera, G., Bianchini, S., Meisina, C., García-Davalillo, J. C. and
Zucca, F. (2014). A methodology for improving landslide PSI data analysis.
International Journal of Remote Sensing 35(6), 2186-2214,
doi:10.1080/01431161.2014.889864.

RGIK (2023). Guidelines for inventorying rock glaciers: baseline and practical
concepts (version 1.0). IPA Action Group Rock glacier inventories and kinematics,
doi:10.51363/unifr.srr.2023.002.

RGIK (2023). InSAR-based kinematic attribute in rock glacier inventories. Practical
InSAR guidelines (version 4.0). IPA Action Group Rock glacier inventories and
kinematics.

Yunjun, Z., Fattahi, H. and Amelung, F. (2019). Small baseline InSAR time series
analysis: unwrapping error correction and noise reduction. Computers & Geosciences
133, 104331 (MintPy; ``mintpy.utils.utils0`` unit-vector conventions).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

from permafrost.errors import ConfigError, DataError
from permafrost.terrain import gradient_to_slope_aspect, terrain_gradient

__all__ = [
    "KinematicsConfig",
    "KinematicsResult",
    "RGIK_CLASS_EDGES_CM_YR",
    "RGIK_CLASS_LABELS",
    "los_unit_vector",
    "downslope_unit_vector",
    "los_sensitivity",
    "downslope_velocity",
    "sample_gradient",
    "pixel_masks",
    "kinematic_class",
    "classify_activity",
    "track_pixels",
    "outline_statistics",
    "combine_tracks",
    "compute_kinematics",
    "run_kinematics",
]

log = logging.getLogger(__name__)

#: RGIK kinematic attribute class edges [cm/yr] and labels
RGIK_CLASS_EDGES_CM_YR = (1.0, 3.0, 10.0, 30.0, 100.0, 300.0)
RGIK_CLASS_LABELS = ("<1 cm/yr", "1-3 cm/yr", "3-10 cm/yr", "10-30 cm/yr", "30-100 cm/yr",
                     "100-300 cm/yr", ">300 cm/yr")
UNDEFINED = "undefined"
NOT_COVERED = "not covered by any track"


# --------------------------------------------------------------------------- configuration
@dataclass(frozen=True)
class KinematicsConfig:
    """Thresholds of the kinematic analysis (all configurable; defaults documented).

    Attributes
    ----------
    min_sensitivity : float
        Pixels with ``|C|`` below this are masked [-]; 0.3 (DESIGN §4; Notti et al.
        2014 use comparable cuts: below it V_LOS/C amplifies noise more than 3x).
    min_slope_deg : float
        Flatter pixels are masked: the downslope direction is undefined [deg].
    min_coherence : float
        Pixels with temporal coherence below this are masked [-]; 0.7 is MintPy's
        default ``minTempCoh``.
    smooth_sigma_px : float
        Gaussian smoothing of the DEM before the gradient [DEM pixels]; 0 = none.
    active_min_m_yr : float
        Downslope velocity from which a rock glacier is *active* [m/yr]; 0.10
        (RGIK 2023: active rock glaciers move by decimetres to metres per year).
    transitional_min_m_yr : float
        Lowest detectable movement of a *transitional* rock glacier [m/yr]; 0.01
        (RGIK 2023: transitional = low movement, cm/yr; below the lowest RGIK
        kinematic class, < 1 cm/yr, movement is not detectable -> *relict*).
    los_noise_floor_m_yr : float
        Spatially correlated LOS error that averaging over an outline does not reduce
        (reference-point noise, residual troposphere, orbit) [m/yr]; 0.003, the order
        of the residual tropospheric noise of multi-year Sentinel-1 velocities after
        correction (Yunjun et al. 2019).  Divided by the mean ``|C|`` of the outline's
        valid pixels and added in quadrature to the uncertainty.
    k_sigma : float
        Significance multiplier [-]: ``v < -k u`` is significant upslope motion
        (uncertain); ``v ± k u`` spanning both activity thresholds is uncertain;
        crossing one threshold lowers the reliability to medium.
    min_valid_pixels : int
        Fewer valid pixels -> activity uncertain [-].
    min_valid_fraction : float
        Lower valid fraction of the outline's pixels -> uncertain [-].
    good_valid_fraction : float
        Valid fraction from which reliability can be high [-].
    good_sensitivity : float
        Mean ``|C|`` from which reliability can be high [-].
    all_touched : bool
        Count every pixel an outline touches (default: pixel centres inside).
    chunk_rows : int
        Rows per band in the zonal statistics [pixels].
    """

    min_sensitivity: float = 0.3
    min_slope_deg: float = 5.0
    min_coherence: float = 0.7
    smooth_sigma_px: float = 1.0
    active_min_m_yr: float = 0.10
    transitional_min_m_yr: float = 0.01
    los_noise_floor_m_yr: float = 0.003
    k_sigma: float = 2.0
    min_valid_pixels: int = 5
    min_valid_fraction: float = 0.25
    good_valid_fraction: float = 0.5
    good_sensitivity: float = 0.5
    all_touched: bool = False
    chunk_rows: int = 512

    def __post_init__(self) -> None:
        checks = [
            ("min_sensitivity", 0 <= self.min_sensitivity < 1),
            ("min_slope_deg", 0 <= self.min_slope_deg < 90),
            ("min_coherence", 0 <= self.min_coherence <= 1),
            ("smooth_sigma_px", self.smooth_sigma_px >= 0),
            ("transitional_min_m_yr", 0 < self.transitional_min_m_yr < self.active_min_m_yr),
            ("k_sigma", self.k_sigma > 0),
            ("los_noise_floor_m_yr", self.los_noise_floor_m_yr >= 0),
            ("min_valid_pixels", self.min_valid_pixels >= 1),
            ("min_valid_fraction", 0 <= self.min_valid_fraction <= 1),
            ("good_valid_fraction", 0 <= self.good_valid_fraction <= 1),
            ("good_sensitivity", 0 <= self.good_sensitivity <= 1),
            ("chunk_rows", self.chunk_rows >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"invalid value {getattr(self, name)!r}", field=name,
                                  fix="see docs/kinematics.md for the allowed range")


# --------------------------------------------------------------------------- projection
def los_unit_vector(incidence, azimuth):
    """Unit vector from the ground to the satellite (E, N, U).

    Parameters
    ----------
    incidence : array_like
        Incidence angle from vertical [deg].
    azimuth : array_like
        Azimuth of the ground-to-satellite vector, anticlockwise from north [deg]
        (Sentinel-1: about +102 ascending, -102 descending).

    Returns
    -------
    tuple of ndarray
        ``(e, n, u)`` components [-].

    References
    ----------
    Notti et al. (2014), Eq. 1-3; MintPy ``utils0.get_unit_vector4component_of_interest``
    (``comp='enu2los'``).
    """
    th = np.deg2rad(np.asarray(incidence, dtype=np.float64))
    al = np.deg2rad(np.asarray(azimuth, dtype=np.float64))
    return -np.sin(th) * np.sin(al), np.sin(th) * np.cos(al), np.cos(th)


def downslope_unit_vector(slope, aspect):
    """Unit vector pointing down the steepest slope (E, N, U).

    Parameters
    ----------
    slope : array_like
        Slope angle β [deg].
    aspect : array_like
        Downslope direction A, clockwise from north [deg].

    Returns
    -------
    tuple of ndarray
        ``(e, n, u)`` = ``(cos β sin A, cos β cos A, -sin β)`` [-].

    References
    ----------
    Notti et al. (2014), Eq. 4-6 (slope-parallel movement assumption).
    """
    b = np.deg2rad(np.asarray(slope, dtype=np.float64))
    a = np.deg2rad(np.asarray(aspect, dtype=np.float64))
    return np.cos(b) * np.sin(a), np.cos(b) * np.cos(a), -np.sin(b)


def los_sensitivity(incidence, azimuth, slope, aspect):
    """Sensitivity ``C = l · s`` of the LOS to downslope movement.

    Parameters
    ----------
    incidence : array_like
        Incidence angle from vertical [deg].
    azimuth : array_like
        Ground-to-satellite azimuth, anticlockwise from north [deg].
    slope : array_like
        Slope [deg].
    aspect : array_like
        Downslope aspect, clockwise from north [deg].

    Returns
    -------
    ndarray
        C in [-1, 1] [-]: the LOS velocity (+ toward the satellite) that a
        downslope movement of 1 produces.  Negative where downslope movement goes
        away from the satellite.

    References
    ----------
    Notti et al. (2014), Eq. 7 (the "C index" as the dot product of the LOS and
    slope unit vectors).
    """
    le, ln, lu = los_unit_vector(incidence, azimuth)
    se, sn, su = downslope_unit_vector(slope, aspect)
    return le * se + ln * sn + lu * su


def downslope_velocity(v_los, sensitivity):
    """Velocity along the downslope direction, ``V_LOS / C``.

    Parameters
    ----------
    v_los : array_like
        LOS velocity, positive toward the satellite [m/yr].
    sensitivity : array_like
        C from :func:`los_sensitivity` [-].

    Returns
    -------
    ndarray
        Downslope velocity [m/yr] (positive = downslope); NaN where C is 0.

    References
    ----------
    Notti et al. (2014), Eq. 8.
    """
    v = np.asarray(v_los, dtype=np.float64)
    c = np.asarray(sensitivity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c != 0, v / c, np.nan)


# --------------------------------------------------------------------------- terrain
def sample_gradient(grad_e, grad_n, *, transform: Affine, crs, x, y, xy_crs):
    """Bilinearly sample gradient components at points (e.g. InSAR pixel centres).

    Gradients (not slope/aspect) are interpolated, so that aspect is never averaged
    across its 0/360 wrap.

    Parameters
    ----------
    grad_e, grad_n : ndarray
        Gradient rasters [m/m].
    transform : Affine
        Their grid [CRS units].
    crs : CRS
        Their CRS.
    x, y : ndarray
        Point coordinates [``xy_crs`` units].
    xy_crs : CRS
        CRS of the points.

    Returns
    -------
    tuple of ndarray
        Sampled ``(dz/dE, dz/dN)`` [m/m], NaN outside the DEM.

    References
    ----------
    Bilinear interpolation (scipy.ndimage.map_coordinates, order 1).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if CRS.from_user_input(xy_crs) != CRS.from_user_input(crs):
        tr = Transformer.from_crs(xy_crs, crs, always_xy=True)
        x, y = tr.transform(x, y)
    col, row = (~transform) @ (x, y)
    coords = np.stack([np.asarray(row) - 0.5, np.asarray(col) - 0.5])
    out = []
    for g in (grad_e, grad_n):
        out.append(ndimage.map_coordinates(np.asarray(g, dtype=np.float64), coords, order=1,
                                           mode="constant", cval=np.nan))
    return out[0], out[1]


# --------------------------------------------------------------------------- masks
def pixel_masks(
    *,
    velocity,
    incidence,
    azimuth,
    slope,
    aspect,
    sensitivity,
    coherence=None,
    reliable=None,
    shadow=None,
    water=None,
    config: KinematicsConfig = KinematicsConfig(),
) -> dict[str, np.ndarray]:
    """Reasons to distrust each pixel (True = masked for that reason).

    Parameters
    ----------
    velocity : ndarray
        LOS velocity [m/yr], NaN = no data.
    incidence, azimuth : ndarray
        Viewing geometry [deg].
    slope, aspect : ndarray
        Terrain [deg].
    sensitivity : ndarray
        C [-].
    coherence : ndarray, optional
        Temporal coherence [-].
    reliable : ndarray of bool, optional
        ``maskTempCoh`` (True = reliable).
    shadow : ndarray of bool, optional
        Shadow/layover from the geometry file (True = shadow or layover).
    water : ndarray of bool, optional
        Water (True).
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    dict of str to ndarray of bool
        ``nodata``, ``low_sensitivity``, ``flat``, ``shadow_layover``, ``water``,
        ``low_coherence`` and ``valid`` (none of them).

    Notes
    -----
    Shadow/layover is also derived from the DEM: with ``β_r`` the terrain slope along
    the horizontal ground-to-satellite direction (positive when the ground rises
    toward the satellite, i.e. a back slope), layover where ``-β_r > θ`` (a slope
    facing the radar steeper than the incidence angle) and shadow where
    ``β_r > 90° - θ`` (e.g. Cigna et al. 2014).

    References
    ----------
    Cigna, F., Bateson, L. B., Jordan, C. J. and Dashwood, C. (2014). Simulating SAR
    geometric distortions and predicting Persistent Scatterer densities for ERS-1/2
    and ENVISAT C-band SAR and InSAR applications. Remote Sensing of Environment 152,
    441-466.
    """
    v = np.asarray(velocity)
    inc = np.asarray(incidence, dtype=np.float64)
    c = np.asarray(sensitivity)
    nodata = ~np.isfinite(v) | ~np.isfinite(inc) | ~np.isfinite(np.asarray(azimuth)) | \
        ~np.isfinite(np.asarray(slope))
    with np.errstate(invalid="ignore"):
        low_sens = np.abs(c) < config.min_sensitivity
        flat = np.asarray(slope) < config.min_slope_deg
        # slope component along the horizontal ground->satellite direction
        az = np.deg2rad(np.asarray(azimuth, dtype=np.float64))
        he, hn = -np.sin(az), np.cos(az)
        sl = np.tan(np.deg2rad(np.asarray(slope, dtype=np.float64)))
        asp = np.deg2rad(np.asarray(aspect, dtype=np.float64))
        # gradient (uphill) = -downslope direction * tan(slope)
        rise = -(np.sin(asp) * he + np.cos(asp) * hn) * sl
        beta_r = np.degrees(np.arctan(rise))
        # facing the radar more steeply than the incidence: layover; facing away more
        # steeply than the grazing angle: shadow
        geo_shadow = (-beta_r > inc) | (beta_r > 90.0 - inc)
        sh = geo_shadow if shadow is None else (geo_shadow | np.asarray(shadow, dtype=bool))
        wt = np.zeros(v.shape, bool) if water is None else np.asarray(water, dtype=bool)
        lowc = np.zeros(v.shape, bool)
        if coherence is not None:
            coh = np.asarray(coherence)
            lowc |= ~(coh >= config.min_coherence)
        if reliable is not None:
            lowc |= ~np.asarray(reliable, dtype=bool)
    masks = {"nodata": nodata, "low_sensitivity": low_sens & ~nodata, "flat": flat & ~nodata,
             "shadow_layover": sh & ~nodata, "water": wt & ~nodata,
             "low_coherence": lowc & ~nodata}
    valid = ~nodata
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        valid &= ~masks[k]
    masks["valid"] = valid
    return masks


# --------------------------------------------------------------------------- classes
def kinematic_class(v_downslope_m_yr, uncertainty_m_yr=None, *, k_sigma: float = 2.0):
    """RGIK kinematic attribute (semi-order-of-magnitude velocity class).

    Parameters
    ----------
    v_downslope_m_yr : array_like
        Representative downslope velocity [m/yr].
    uncertainty_m_yr : array_like, optional
        Its uncertainty [m/yr]; an upslope velocity larger than ``k_sigma`` times it
        and than 1 cm/yr is ``undefined`` (not slope-parallel creep); a smaller
        negative one counts as no movement (``<1 cm/yr``).
    k_sigma : float
        Significance multiplier [-].

    Returns
    -------
    ndarray of str
        One of :data:`RGIK_CLASS_LABELS` or ``"undefined"`` (NaN input).

    References
    ----------
    RGIK (2023), InSAR-based kinematic attribute, version 4.0: classes <1, 1-3,
    3-10, 10-30, 30-100, 100-300, >300 cm/yr, and undefined.
    """
    v = np.atleast_1d(np.asarray(v_downslope_m_yr, dtype=np.float64)) * 100.0
    u = (np.zeros_like(v) if uncertainty_m_yr is None
         else np.atleast_1d(np.asarray(uncertainty_m_yr, dtype=np.float64)) * 100.0)
    idx = np.digitize(np.where(v < 0, 0.0, v), RGIK_CLASS_EDGES_CM_YR)
    labels = np.array(RGIK_CLASS_LABELS, dtype=object)[np.clip(idx, 0, len(RGIK_CLASS_LABELS) - 1)]
    undefined = ~np.isfinite(v) | ((v < -k_sigma * np.nan_to_num(u, nan=np.inf))
                                   & (v <= -RGIK_CLASS_EDGES_CM_YR[0]))
    labels[undefined] = UNDEFINED
    return labels


def classify_activity(v_downslope_m_yr, uncertainty_m_yr, *,
                      config: KinematicsConfig = KinematicsConfig()):
    """RGIK activity from a downslope velocity and its uncertainty.

    Parameters
    ----------
    v_downslope_m_yr : array_like
        Representative downslope velocity [m/yr].
    uncertainty_m_yr : array_like
        Its uncertainty [m/yr].
    config : KinematicsConfig
        ``active_min_m_yr``, ``transitional_min_m_yr``, ``k_sigma``.

    Returns
    -------
    tuple of ndarray
        Activity (``active``, ``transitional``, ``relict``, ``uncertain``), a reason
        (str, empty when nothing to say) and ``near_threshold`` (bool: the interval
        ``v ± k u`` crosses one class threshold, so the class is less reliable).

    Notes
    -----
    The class follows the velocity: ``v >= active_min`` active,
    ``transitional_min <= v < active_min`` transitional, ``v < transitional_min``
    relict (no detectable movement).  It is ``uncertain`` when

    * the interval ``v ± k u`` spans both thresholds (the noise allows relict as well
      as active), or
    * ``v < -k u`` and ``v <= -transitional_min``: significant upslope velocity, which
      slope-parallel creep cannot produce (wrong geometry, unwrapping or reference
      problems); smaller upslope values are no detectable movement, or
    * ``v`` is not finite (no valid pixel).

    References
    ----------
    RGIK (2023), baseline concepts v1.0, section "Activity" (active: decimetres to
    metres per year; transitional: low movement, cm/yr; relict: no detectable
    movement); RGIK (2023), InSAR kinematic attribute v4.0 (class limits in cm/yr).
    """
    v = np.atleast_1d(np.asarray(v_downslope_m_yr, dtype=np.float64))
    u = np.atleast_1d(np.asarray(uncertainty_m_yr, dtype=np.float64))
    u = np.where(np.isfinite(u), u, np.inf)
    k = config.k_sigma
    lo_t, hi_t = config.transitional_min_m_yr, config.active_min_m_yr
    act = np.full(v.shape, "uncertain", dtype=object)
    why = np.full(v.shape, "", dtype=object)
    with np.errstate(invalid="ignore"):
        fin = np.isfinite(v)
        act[fin & (v >= hi_t)] = "active"
        act[fin & (v >= lo_t) & (v < hi_t)] = "transitional"
        act[fin & (v < lo_t)] = "relict"
        low, high = v - k * u, v + k * u
        both = fin & (low < lo_t) & (high >= hi_t)
        upslope = fin & (v < -k * u) & (v <= -lo_t)
        near = fin & ~both & (((low < lo_t) & (high >= lo_t)) | ((low < hi_t) & (high >= hi_t)))
    act[both | upslope | ~fin] = "uncertain"
    why[both] = (f"noise too large: v ± {k:g}u spans relict to active")
    why[upslope] = "significant upslope velocity (not slope-parallel creep)"
    why[~fin] = "no valid pixels"
    for i in np.flatnonzero(near & ~upslope):
        t = lo_t if low[i] < lo_t <= high[i] else hi_t
        why[i] = f"within {k:g}u of the {t * 100:g} cm/yr threshold"
    return act, why, near & ~upslope


# --------------------------------------------------------------------------- per track
def track_pixels(track: xr.Dataset, *, dem: xr.DataArray | None = None,
                 config: KinematicsConfig = KinematicsConfig()) -> tuple[dict, dict]:
    """Per-pixel downslope velocity, sensitivity and masks of one track.

    Parameters
    ----------
    track : xarray.Dataset
        From :func:`permafrost.io.mintpy.read_track`: ``velocity`` [m/yr],
        ``incidence``, ``azimuth`` [deg], optional ``velocity_std`` [m/yr],
        ``height`` [m], ``coherence`` [-], ``mask``, ``shadow``, ``water``.
    dem : xarray.DataArray, optional
        Elevation [m] with a CRS; default the track's ``height``.
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    tuple of dict
        Pixel arrays (``v_downslope``, ``v_los`` [m/yr] NaN where masked,
        ``sigma_los``, ``sigma_downslope`` [m/yr], ``sensitivity``, ``coherence``,
        ``slope``, ``aspect`` and one 0/1 array per mask reason) and the scene
        counts of each mask reason.

    References
    ----------
    Notti et al. (2014); see the module docstring.
    """
    geocoded = bool(track.attrs.get("geocoded", 1))
    shape = track["velocity"].shape
    if dem is None:
        if not geocoded or "height" not in track:
            raise DataError("no DEM: the track has no height layer" if geocoded else
                            "a radar-coordinate track needs a DEM",
                            path=track.attrs.get("geometry_file") or track.attrs.get("source"),
                            field="height", fix="give --dem")
        h = track["height"]
        ge, gn = terrain_gradient(h.values, transform=track.rio.transform(), crs=track.rio.crs,
                                  method="central", smooth_sigma_px=config.smooth_sigma_px)
    else:
        dge, dgn = terrain_gradient(dem.values, transform=dem.rio.transform(), crs=dem.rio.crs,
                                    method="central", smooth_sigma_px=config.smooth_sigma_px)
        if geocoded:
            xs, ys = np.meshgrid(track["x"].values, track["y"].values)
            xy_crs = track.rio.crs
        else:
            xs, ys = track["longitude"].values, track["latitude"].values
            xy_crs = CRS.from_epsg(4326)
        ge, gn = sample_gradient(dge, dgn, transform=dem.rio.transform(), crs=dem.rio.crs,
                                 x=xs, y=ys, xy_crs=xy_crs)
        has_v = np.isfinite(track["velocity"].values)
        if has_v.any() and not np.isfinite(ge[has_v]).any():
            raise DataError(f"the DEM does not cover track {track.attrs.get('track')!r}",
                            path=dem.attrs.get("source"), field="extent",
                            fix="give a DEM that covers the InSAR scene")
    slope, aspect = gradient_to_slope_aspect(ge, gn)
    inc = track["incidence"].values
    az = track["azimuth"].values
    c = los_sensitivity(inc, az, slope, aspect)
    vlos = track["velocity"].values.astype(np.float64)
    get = (lambda k: track[k].values if k in track else None)
    masks = pixel_masks(velocity=vlos, incidence=inc, azimuth=az, slope=slope, aspect=aspect,
                        sensitivity=c, coherence=get("coherence"), reliable=get("mask"),
                        shadow=get("shadow"), water=get("water"), config=config)
    valid = masks["valid"]
    vds = downslope_velocity(vlos, c)
    sig = get("velocity_std")
    sig = np.full(shape, np.nan) if sig is None else sig.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sig_ds = sig / np.abs(c)
    pix = {
        "v_downslope": np.where(valid, vds, np.nan),
        "v_los": np.where(valid, vlos, np.nan),
        "sigma_los": np.where(valid, sig, np.nan),
        "sigma_downslope": np.where(valid, sig_ds, np.nan),
        "sensitivity": np.where(valid, np.abs(c), np.nan),
        "sensitivity_all": np.where(np.isfinite(vlos), np.abs(c), np.nan),
        "coherence": (get("coherence").astype(np.float64) if "coherence" in track
                      else np.full(shape, np.nan)),
        "has_data": np.isfinite(vlos).astype(np.float32),
        "slope": slope, "aspect": aspect,
    }
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        pix[f"masked_{k}"] = masks[k].astype(np.float32)
    counts = {k: int(m.sum()) for k, m in masks.items()}
    counts["pixels"] = int(np.prod(shape))
    log.info("track %s: %s", track.attrs.get("track"), counts)
    return pix, counts


_PIXEL_SPEC = {
    "v_downslope": ("count", "median", "p25", "p75", "p90"),
    "v_los": ("p10", "median", "p90"),
    "sigma_los": ("median",),
    "sigma_downslope": ("median",),
    "sensitivity": ("mean",),
    "sensitivity_all": ("mean",),
    "coherence": ("mean",),
    "has_data": ("sum",),
    "masked_low_sensitivity": ("sum",),
    "masked_flat": ("sum",),
    "masked_shadow_layover": ("sum",),
    "masked_water": ("sum",),
    "masked_low_coherence": ("sum",),
}


def outline_statistics(geoms: Sequence, track: xr.Dataset, pixels: Mapping[str, np.ndarray], *,
                       config: KinematicsConfig = KinematicsConfig()) -> pd.DataFrame:
    """Per-outline statistics of one track's pixel arrays.

    Parameters
    ----------
    geoms : sequence of shapely geometries
        Outlines in the track's CRS (WGS84 lon/lat for radar-coordinate tracks).
    track : xarray.Dataset
        The track (grid and coordinates).
    pixels : mapping
        From :func:`track_pixels`.
    config : KinematicsConfig
        ``all_touched``, ``chunk_rows``.

    Returns
    -------
    pandas.DataFrame
        One row per outline: ``n_pixels``, ``n_valid``, ``n_data``, velocity
        percentiles [m/yr], ``sigma_*`` [m/yr], ``sensitivity_mean``,
        ``coherence_mean``, ``masked_*`` counts and ``uncertainty`` [m/yr] of the
        median downslope velocity: the standard error of the median,
        ``1.2533 * max(σ_pixel, s_robust) / sqrt(n)`` (``σ_pixel`` the median
        velocityStd/|C|, ``s_robust`` = IQR/1.349 of the pixel downslope velocities,
        pixels taken as independent), added in quadrature to the correlated floor
        ``los_noise_floor_m_yr / |mean C|``.

    References
    ----------
    Kenney, J. F. and Keeping, E. S. (1962). Mathematics of Statistics, Part 1, 3rd
    ed., §15.12 (standard error of the median, sqrt(π/2) σ/√n).
    """
    from permafrost.zonal import ZonalSpec, zonal_statistics, zonal_statistics_points

    spec = ZonalSpec(_PIXEL_SPEC)
    if track.attrs.get("geocoded", 1):
        res = zonal_statistics(geoms, pixels, transform=track.rio.transform(),
                               shape=track["velocity"].shape, spec=spec,
                               all_touched=config.all_touched, chunk_rows=config.chunk_rows)
    else:
        res = zonal_statistics_points(geoms, track["longitude"].values, track["latitude"].values,
                                      pixels, spec=spec)
    df = pd.DataFrame({
        "n_pixels": res["n_pixels"],
        "n_data": res["has_data_sum"].astype(np.int64),
        "n_valid": res["v_downslope_count"],
        "v_downslope_median": res["v_downslope_median"],
        "v_downslope_p25": res["v_downslope_p25"],
        "v_downslope_p75": res["v_downslope_p75"],
        "v_downslope_p90": res["v_downslope_p90"],
        "v_los_p10": res["v_los_p10"],
        "v_los_median": res["v_los_median"],
        "v_los_p90": res["v_los_p90"],
        "sigma_los": res["sigma_los_median"],
        "sigma_downslope": res["sigma_downslope_median"],
        "sensitivity_mean": res["sensitivity_mean"],
        "sensitivity_all_mean": res["sensitivity_all_mean"],
        "coherence_mean": res["coherence_mean"],
    })
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        df[f"masked_{k}"] = res[f"masked_{k}_sum"].astype(np.int64)
    n = df["n_valid"].to_numpy(np.float64)
    robust = (df["v_downslope_p75"] - df["v_downslope_p25"]).to_numpy() / 1.349
    formal = df["sigma_downslope"].to_numpy()
    spread = np.fmax(np.nan_to_num(formal, nan=0.0), np.nan_to_num(robust, nan=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        sem = 1.2533 * spread / np.sqrt(n)
        floor = config.los_noise_floor_m_yr / np.abs(df["sensitivity_mean"].to_numpy())
        df["uncertainty"] = np.where(n > 0, np.hypot(sem, np.nan_to_num(floor, nan=0.0)), np.nan)
    return df


def combine_tracks(per_track: Mapping[str, pd.DataFrame], *,
                   config: KinematicsConfig = KinematicsConfig()) -> pd.DataFrame:
    """Combine per-track outline statistics into one value per outline.

    Tracks with adequate coverage (``n_valid >= min_valid_pixels`` and valid fraction
    ``>= min_valid_fraction``) are combined by the inverse-variance weighted mean of
    their median downslope velocities, ``u = (Σ u_i^-2)^-1/2``; the other statistics
    come from the adequate track with the smallest uncertainty.  Without an adequate
    track, the track with the most valid pixels is reported and the activity is
    uncertain.

    Parameters
    ----------
    per_track : mapping of str to DataFrame
        Track name -> :func:`outline_statistics` (same outline order).
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    pandas.DataFrame
        The output columns (see docs/kinematics.md), without the ``kin_`` prefix.

    References
    ----------
    Taylor, J. R. (1997). An Introduction to Error Analysis, 2nd ed., §7.2
    (weighted average); RGIK (2023) for the classes.
    """
    names = list(per_track)
    n_out = len(next(iter(per_track.values()))) if names else 0
    rows = []
    for i in range(n_out):
        stats = {t: per_track[t].iloc[i] for t in names}
        covering = [t for t in names if stats[t]["n_data"] > 0]
        adequate = [t for t in covering if _adequate(stats[t], config)]
        rows.append(_combine_one(stats, covering, adequate, config))
    df = pd.DataFrame(rows)
    if n_out == 0:
        df = pd.DataFrame(columns=_OUT_COLUMNS)
    return df[_OUT_COLUMNS]


_OUT_COLUMNS = [
    "track", "combination", "n_tracks_covering", "n_pixels", "n_valid", "valid_fraction",
    "v_downslope_median_m_yr", "v_downslope_p75_m_yr", "v_downslope_p90_m_yr",
    "v_downslope_unc_m_yr", "v_los_p10_m_yr", "v_los_median_m_yr", "v_los_p90_m_yr",
    "v_los_std_m_yr", "sensitivity_mean", "sensitivity_all_mean", "coherence_mean", "snr",
    "masked_low_sensitivity", "masked_flat", "masked_shadow_layover", "masked_water",
    "masked_low_coherence", "rgik_class", "activity", "reliability", "reason",
]


def _adequate(s: pd.Series, config: KinematicsConfig) -> bool:
    n, nv = s["n_pixels"], s["n_valid"]
    return bool(nv >= config.min_valid_pixels and n > 0 and nv / n >= config.min_valid_fraction)


def _combine_one(stats, covering, adequate, config) -> dict:
    out = {c: np.nan for c in _OUT_COLUMNS}
    out.update(track="", combination="none", n_tracks_covering=len(covering), n_pixels=0,
               n_valid=0, rgik_class=UNDEFINED, activity="uncertain", reliability="low")
    for k in ("masked_low_sensitivity", "masked_flat", "masked_shadow_layover", "masked_water",
              "masked_low_coherence"):
        out[k] = 0
    if not covering:
        out["reason"] = NOT_COVERED
        return out
    pool = adequate or covering
    best = min(pool, key=lambda t: (np.nan_to_num(stats[t]["uncertainty"], nan=np.inf),
                                    -stats[t]["n_valid"], t))
    b = stats[best]
    out.update(
        n_pixels=int(b["n_pixels"]), n_valid=int(b["n_valid"]),
        v_downslope_p75_m_yr=b["v_downslope_p75"], v_downslope_p90_m_yr=b["v_downslope_p90"],
        v_los_p10_m_yr=b["v_los_p10"], v_los_median_m_yr=b["v_los_median"],
        v_los_p90_m_yr=b["v_los_p90"], v_los_std_m_yr=b["sigma_los"],
        sensitivity_mean=b["sensitivity_mean"], sensitivity_all_mean=b["sensitivity_all_mean"],
        coherence_mean=b["coherence_mean"],
    )
    for k in ("masked_low_sensitivity", "masked_flat", "masked_shadow_layover", "masked_water",
              "masked_low_coherence"):
        out[k] = int(b[k])
    out["valid_fraction"] = b["n_valid"] / b["n_pixels"] if b["n_pixels"] else 0.0
    reasons = []
    if len(adequate) >= 2:
        v = np.array([stats[t]["v_downslope_median"] for t in adequate], dtype=np.float64)
        u = np.array([stats[t]["uncertainty"] for t in adequate], dtype=np.float64)
        u = np.where(u > 0, u, np.nanmin(np.where(u > 0, u, np.inf)) if (u > 0).any() else 1e-6)
        w = 1.0 / u**2
        vm = float(np.sum(w * v) / np.sum(w))
        um = float(np.sqrt(1.0 / np.sum(w)))
        out.update(track="+".join(adequate),
                   combination=f"inverse-variance mean of {len(adequate)} tracks",
                   v_downslope_median_m_yr=vm, v_downslope_unc_m_yr=um)
        chi = np.abs(v - vm) / u
        if np.any(chi > 3.0):
            reasons.append("tracks disagree (" + ", ".join(
                f"{t} {x:.3f}" for t, x in zip(adequate, v)) + " m/yr)")
    else:
        out.update(track=best, combination="single track",
                   v_downslope_median_m_yr=b["v_downslope_median"],
                   v_downslope_unc_m_yr=b["uncertainty"])
    v, u = out["v_downslope_median_m_yr"], out["v_downslope_unc_m_yr"]
    out["snr"] = abs(v) / u if np.isfinite(v) and np.isfinite(u) and u > 0 else np.nan
    out["rgik_class"] = str(kinematic_class(v, u, k_sigma=config.k_sigma)[0])
    if not adequate:
        masked = {k: out[f"masked_{k}"] for k in ("low_sensitivity", "flat", "shadow_layover",
                                                   "water", "low_coherence")}
        top = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in masked.items() if n)
        detail = f" (masked: {top})" if top else ""
        out.update(activity="uncertain", reliability="low", rgik_class=UNDEFINED,
                   reason=f"too few valid pixels: {out['n_valid']} of {out['n_pixels']}"
                          f"{detail}")
        return out
    act, why, near = classify_activity(v, u, config=config)
    out["activity"] = str(act[0])
    if out["activity"] == "uncertain":
        out["reliability"] = "low"
        out["rgik_class"] = UNDEFINED if why[0].startswith("significant") else out["rgik_class"]
        reasons.insert(0, str(why[0]))
    else:
        if near[0]:
            reasons.append(str(why[0]))
        good = (out["valid_fraction"] >= config.good_valid_fraction
                and abs(out["sensitivity_mean"]) >= config.good_sensitivity)
        if not good:
            if out["valid_fraction"] < config.good_valid_fraction:
                reasons.append(f"valid fraction {out['valid_fraction']:.2f}")
            if abs(out["sensitivity_mean"]) < config.good_sensitivity:
                reasons.append(f"mean sensitivity {out['sensitivity_mean']:.2f}")
        out["reliability"] = "high" if good and not reasons else "medium"
    out["reason"] = "; ".join(reasons)
    return out


# --------------------------------------------------------------------------- orchestration
@dataclass
class KinematicsResult:
    """Result of :func:`compute_kinematics`.

    Attributes
    ----------
    outlines : geopandas.GeoDataFrame
        The input outlines, all columns kept, with the ``kin_*`` columns added.
    pixel_counts : dict
        Track -> scene counts of each mask reason.
    summary : pandas.DataFrame
        Counts of outlines per activity and per RGIK class.
    config : KinematicsConfig
        The thresholds used.
    """

    outlines: gpd.GeoDataFrame
    pixel_counts: dict = field(default_factory=dict)
    summary: pd.DataFrame | None = None
    config: KinematicsConfig = field(default_factory=KinematicsConfig)


PREFIX = "kin_"


def _prepare_geometries(outlines: gpd.GeoDataFrame) -> tuple[np.ndarray, list[str]]:
    geoms = np.asarray(outlines.geometry.values, dtype=object)
    notes = [""] * len(geoms)
    fixed = geoms.copy()
    for i, g in enumerate(geoms):
        if g is None or shapely.is_empty(g):
            fixed[i] = None
            notes[i] = "empty geometry"
            continue
        if not shapely.is_valid(g):
            why = shapely.is_valid_reason(g)
            r = shapely.make_valid(g)
            if r.geom_type == "GeometryCollection":
                polys = [p for p in r.geoms if p.geom_type in ("Polygon", "MultiPolygon")]
                r = shapely.union_all(polys) if polys else r
            fixed[i] = r
            notes[i] = f"invalid geometry repaired ({why})"
    return fixed, notes


def compute_kinematics(
    outlines: gpd.GeoDataFrame,
    tracks: Sequence[xr.Dataset],
    *,
    dem: xr.DataArray | None = None,
    config: KinematicsConfig = KinematicsConfig(),
) -> KinematicsResult:
    """Kinematics of every outline from one or more tracks.

    Parameters
    ----------
    outlines : geopandas.GeoDataFrame
        Rock glacier outlines (polygons; points burn one pixel) with a CRS.
    tracks : sequence of xarray.Dataset
        From :func:`permafrost.io.mintpy.read_track` (``attrs['track']`` names them;
        names must be unique).
    dem : xarray.DataArray, optional
        Elevation [m] with a CRS; default each track's ``height`` layer.
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    KinematicsResult
        Every input outline, in input order, with all its columns and the
        ``kin_*`` columns (see docs/kinematics.md).

    References
    ----------
    Notti et al. (2014); RGIK (2023).
    """
    if outlines.crs is None:
        raise DataError("the outlines have no CRS", path=outlines.attrs.get("source"),
                        field="crs", fix="assign the CRS of the outlines (e.g. save with a .prj)")
    names = [str(t.attrs.get("track", f"track{i + 1}")) for i, t in enumerate(tracks)]
    if len(set(names)) != len(names):
        names = [f"{n}_{i + 1}" for i, n in enumerate(names)]
    fixed, notes = _prepare_geometries(outlines)
    n_bad = sum(1 for s in notes if s)
    if n_bad:
        log.warning("%d outline(s) with empty or invalid geometry (repaired or reported per "
                    "outline)", n_bad)
    base = gpd.GeoSeries(fixed, crs=outlines.crs)
    per_track: dict[str, pd.DataFrame] = {}
    counts: dict[str, dict] = {}
    for name, tr in zip(names, tracks):
        pix, cnt = track_pixels(tr, dem=dem, config=config)
        counts[name] = cnt
        target = tr.rio.crs if tr.attrs.get("geocoded", 1) else CRS.from_epsg(4326)
        geoms = base.to_crs(target).values
        per_track[name] = outline_statistics(list(geoms), tr, pix, config=config)
    if per_track:
        comb = combine_tracks(per_track, config=config)
    else:
        comb = combine_tracks({"none": _empty_stats(len(outlines))}, config=config)
    empty = np.array([s == "empty geometry" for s in notes])
    if empty.any():
        comb.loc[empty, "reason"] = "empty geometry"
        comb.loc[empty, ["activity", "reliability", "rgik_class"]] = ["uncertain", "low",
                                                                      UNDEFINED]
    comb["geometry_note"] = notes
    out = outlines.copy()
    clash = [c for c in comb.columns if PREFIX + c in out.columns]
    if clash:
        log.warning("replacing existing columns %s", [PREFIX + c for c in clash])
    for c in comb.columns:
        out[PREFIX + c] = comb[c].to_numpy()
    summary = summarise(out)
    return KinematicsResult(outlines=out, pixel_counts=counts, summary=summary, config=config)


def _empty_stats(n: int) -> pd.DataFrame:
    cols = ["n_pixels", "n_data", "n_valid"] + [c for c in (
        "v_downslope_median", "v_downslope_p25", "v_downslope_p75", "v_downslope_p90",
        "v_los_p10", "v_los_median", "v_los_p90", "sigma_los", "sigma_downslope",
        "sensitivity_mean", "sensitivity_all_mean", "coherence_mean", "uncertainty")]
    df = pd.DataFrame({c: np.zeros(n) if c.startswith("n_") else np.full(n, np.nan)
                       for c in cols})
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        df[f"masked_{k}"] = 0
    return df


def summarise(out: gpd.GeoDataFrame) -> pd.DataFrame:
    """Counts of outlines per activity x RGIK class (rows) with totals."""
    act = pd.Categorical(out[PREFIX + "activity"],
                         categories=["active", "transitional", "relict", "uncertain"])
    cls = pd.Categorical(out[PREFIX + "rgik_class"],
                         categories=list(RGIK_CLASS_LABELS) + [UNDEFINED])
    tab = pd.crosstab(cls, act, dropna=False)
    tab.index.name = "rgik_class"
    tab.columns.name = "activity"
    return tab


def run_kinematics(
    tracks: Sequence[str | os.PathLike | object],
    outlines: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    dem: str | os.PathLike | None = None,
    layer: str | None = None,
    config: KinematicsConfig = KinematicsConfig(),
) -> KinematicsResult:
    """Read tracks, outlines and DEM, compute the kinematics and write the GeoPackage.

    Parameters
    ----------
    tracks : sequence
        Track folders, ``velocity.h5`` paths or :class:`~permafrost.io.mintpy.TrackFiles`.
    outlines : path-like
        Rock glacier outlines (any vector format, with a CRS).
    out : path-like, optional
        Output GeoPackage (written atomically); nothing written when None.
    dem : path-like, optional
        DEM GeoTIFF [m]; default each track's geometry ``height``.
    layer : str, optional
        Layer of the outline file.
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    KinematicsResult

    References
    ----------
    See :func:`compute_kinematics`.
    """
    from permafrost.io.mintpy import TrackFiles, find_track_files, read_track
    from permafrost.io.rasters import read_raster
    from permafrost.io.vectors import read_vector, write_vector

    if not tracks:
        raise ConfigError("no track given", field="track", fix="give at least one --track DIR")
    files = [t if isinstance(t, TrackFiles) else find_track_files(t) for t in tracks]
    gdf = read_vector(outlines, layer=layer)
    dem_da = read_raster(dem) if dem is not None else None
    data = []
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for f in files:
            data.append(read_track(f))
    res = compute_kinematics(gdf, data, dem=dem_da, config=config)
    reasons = res.outlines[PREFIX + "reason"].astype(str)
    if len(reasons) and reasons.str.startswith(NOT_COVERED).all():
        raise DataError(f"none of the {len(reasons)} outlines lies in any track's footprint",
                        path=outlines, field="geometry",
                        fix="check the outlines' CRS and that the tracks cover the region")
    res.outlines.attrs["config"] = asdict(config)
    if out is not None:
        write_vector(res.outlines, out, layer="kinematics")
    return res
