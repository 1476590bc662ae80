"""Rock glacier kinematics from MintPy line-of-sight velocities.

Pure science, in four steps (no file I/O; the workflow
:func:`permafrost.workflows.kinematics.run_kinematics` reads the files, calls
:func:`compute_kinematics` and writes the result):

1. **Terrain** -- the flow direction (slope and downslope aspect) from the DEM smoothed at
   the landform's scale (Gaussian σ = ``flow_smoothing_m``, 100 m: :func:`flow_scale_dem`),
   and a pixel-scale slope for the shadow/layover test; both computed in metres on the
   ellipsoid (geographic grids) or in the projection corrected for its scale factor and
   meridian convergence (projected grids), by central differences
   (:func:`permafrost.terrain.terrain_gradient` with ``method="central"``,
   :func:`permafrost.terrain.gradient_to_slope_aspect`).
2. **Projection** -- the LOS unit vector ``l = [-sin θ sin α, sin θ cos α, cos θ]``
   (E, N, U; θ incidence, α azimuth of the ground-to-satellite vector, anticlockwise
   from north, as MintPy defines them), the downslope unit vector
   ``s = [cos β sin A, cos β cos A, -sin β]`` (β slope, A downslope aspect clockwise
   from north), the sensitivity ``C = l · s`` and ``V_downslope = V_LOS / C``
   (Notti et al. 2014).
3. **Masks** -- low sensitivity (``|C| < min_sensitivity``), flat terrain, radar
   shadow/layover (from the geometry file and from the DEM), water, low temporal
   coherence / ``maskTempCoh``, no data; every reason is counted.
4. **Per outline** -- each outline re-referenced to a ring of stable ground around it
   (:func:`reference_rings`, :func:`ring_statistics`; the LOS offset is reported), pixel
   statistics by :mod:`permafrost.zonal`, the *moving part* (a high percentile of the
   downslope velocities and the share of significantly moving pixels), tracks combined
   by inverse-variance weighting, RGIK kinematic class, and activity as *evidence*:
   only significant movement (``v - k u`` above the limit) says moving, and "no
   detectable movement" is not "relict" (:func:`classify_activity`); how that evidence
   meets an inventory is :func:`permafrost.labels.combine_activity`.

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

Bertone, A., Barboux, C., Bodin, X., et al. (2022). Incorporating InSAR kinematics into
rock glacier inventories: insights from 11 regions worldwide. The Cryosphere 16,
2769-2792 (moving areas and the kinematic attribute of a rock glacier unit).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS, Transformer
from scipy import ndimage

from permafrost.checks import expects
from permafrost.errors import ConfigError, DataError
from permafrost.options import check_options
from permafrost.rasterize import Shapes, burn, points_in_polygons
from permafrost.terrain import geographic_cell_size, gradient_to_slope_aspect, terrain_gradient
from permafrost.zonal import (
    ZonalSpec,
    overlap_layers,
    zonal_statistics,
    zonal_statistics_points,
)

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
    "flow_scale_dem",
    "track_pixels",
    "quantile_se_factor",
    "reference_rings",
    "ring_statistics",
    "outline_statistics",
    "combine_tracks",
    "compute_kinematics",
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
        Light Gaussian smoothing of the DEM for the *local* slope used by the geometric
        shadow/layover test [DEM pixels]; 0 = none.
    flow_smoothing_m : float
        Standard deviation of the Gaussian that smooths the DEM before the *flow
        direction* (slope and aspect of the LOS -> downslope projection and of the flat
        mask) is taken [m]; 100 m, so the kernel (±2σ = 400 m) spans the landform: a rock
        glacier creeps down the slope of the whole tongue (100-300 m wide), not down the
        pixel-scale ridges and furrows on its surface (scale dependence of terrain
        attributes: Wilson and Gallant 2000, ch. 1).  0 = use ``smooth_sigma_px``.
    moving_percentile : float
        Percentile of the outline's downslope velocities that represents its *moving
        part* [%]; 75: the faster quarter of the outline (RGIK 2023 and Bertone et al.
        2022 assign the kinematic attribute from the moving area, not the whole
        outline, whose stagnant margins and rooting zone pull a median down).
    min_moving_fraction : float
        Share of the valid pixels that must move significantly (``v_i > k σ_i``) before
        the outline counts as moving [-]; 0.25, consistent with the 75th percentile.
    reference_ring_m : tuple of float
        Inner and outer distance of the ring of stable ground around each outline
        [m]; (60, 300): one pixel clear of the outline edge, within the range over
        which the residual troposphere is correlated.  Other outlines (buffered by the
        inner distance) are cut out of every ring.
    min_reference_pixels : int
        Fewer stable pixels in the ring -> the outline is not re-referenced (offset
        NaN, said in ``kin_reason``) [-].
    active_min_m_yr : float
        Downslope velocity from which a rock glacier is *active* [m/yr]; 0.10
        (RGIK 2023: active rock glaciers move by decimetres to metres per year).
    transitional_min_m_yr : float
        Lower limit of a *transitional* rock glacier's movement [m/yr]; 0.01 (RGIK
        2023: transitional = low movement, cm/yr; relict = no detectable movement, the
        lowest RGIK kinematic class being < 1 cm/yr).  Movement counts only when
        ``v_move - k u_move`` exceeds it; InSAR says *relict* only when
        ``v_move + k u_move`` stays below it (:func:`classify_activity`).
    los_noise_floor_m_yr : float
        Spatially correlated LOS error that averaging over an outline does not reduce
        (reference-point noise, residual troposphere, orbit) [m/yr]; 0.003, the order
        of the residual tropospheric noise of multi-year Sentinel-1 velocities after
        correction (Yunjun et al. 2019).  Divided by the mean ``|C|`` of the outline's
        valid pixels and added in quadrature to the uncertainty.
    k_sigma : float
        Significance multiplier [-] (2: one-sided false-alarm rate about 2 % for one
        outline under Gaussian noise): movement is *significant* when
        ``v_move - k u_move`` exceeds ``transitional_min_m_yr``; see
        :func:`classify_activity`.
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
    block_rows : int, optional
        Rows per band in the zonal statistics [pixels] (default: about
        :data:`permafrost.defaults.BLOCK_CELLS` cells,
        :func:`permafrost.defaults.auto_block_rows`).
    """

    min_sensitivity: float = 0.3
    min_slope_deg: float = 5.0
    min_coherence: float = 0.7
    smooth_sigma_px: float = 1.0
    flow_smoothing_m: float = 100.0
    moving_percentile: float = 75.0
    min_moving_fraction: float = 0.25
    reference_ring_m: tuple = (60.0, 300.0)
    min_reference_pixels: int = 10
    active_min_m_yr: float = 0.10
    transitional_min_m_yr: float = 0.01
    los_noise_floor_m_yr: float = 0.003
    k_sigma: float = 2.0
    min_valid_pixels: int = 5
    min_valid_fraction: float = 0.25
    good_valid_fraction: float = 0.5
    good_sensitivity: float = 0.5
    all_touched: bool = False
    block_rows: int | None = None

    def __post_init__(self) -> None:
        # the options of the CLI and the pipeline: bounds from permafrost.options
        check_options(**{k: getattr(self, k) for k in (
            "min_sensitivity", "min_slope_deg", "min_coherence", "smooth_sigma_px",
            "active_min_m_yr", "transitional_min_m_yr", "los_noise_floor_m_yr", "k_sigma",
            "min_valid_pixels", "min_valid_fraction", "block_rows")})
        checks = [
            ("flow_smoothing_m", self.flow_smoothing_m >= 0),
            ("moving_percentile", 50 <= self.moving_percentile < 100),
            ("min_moving_fraction", 0 <= self.min_moving_fraction <= 1),
            ("reference_ring_m", _ring_ok(self.reference_ring_m)),
            ("min_reference_pixels", self.min_reference_pixels >= 1),
            ("transitional_min_m_yr", self.transitional_min_m_yr < self.active_min_m_yr),
            ("good_valid_fraction", 0 <= self.good_valid_fraction <= 1),
            ("good_sensitivity", 0 <= self.good_sensitivity <= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"invalid value {getattr(self, name)!r}", field=name,
                                  fix="see docs/kinematics.md for the allowed range")


def _ring_ok(ring) -> bool:
    """``(inner, outer)`` distances with 0 <= inner < outer [m]."""
    try:
        inner, outer = (float(x) for x in ring)
    except (TypeError, ValueError):
        return False
    return bool(0 <= inner < outer)


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
    local_slope=None,
    local_aspect=None,
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
        Terrain at the flow scale [deg] (flat mask).
    sensitivity : ndarray
        C [-].
    local_slope, local_aspect : ndarray, optional
        Pixel-scale terrain for the geometric shadow/layover test [deg]; default
        ``slope``/``aspect``.
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
        sl = np.tan(np.deg2rad(np.asarray(slope if local_slope is None else local_slope,
                                          dtype=np.float64)))
        asp = np.deg2rad(np.asarray(aspect if local_aspect is None else local_aspect,
                                    dtype=np.float64))
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


def classify_activity(v_moving_m_yr, uncertainty_m_yr, *, moving_fraction=None,
                      v_median_m_yr=None, median_uncertainty_m_yr=None,
                      config: KinematicsConfig = KinematicsConfig()):
    """What InSAR says about a rock glacier's activity: significant evidence only.

    Parameters
    ----------
    v_moving_m_yr : array_like
        Downslope velocity of the moving part of the outline (its
        ``moving_percentile``, re-referenced to stable ground) [m/yr].
    uncertainty_m_yr : array_like
        Its uncertainty u [m/yr].
    moving_fraction : array_like, optional
        Share of the valid pixels that move significantly [-]; movement is only
        claimed when it is at least ``min_moving_fraction`` (None: not checked).
    v_median_m_yr, median_uncertainty_m_yr : array_like, optional
        Median downslope velocity of the whole outline and its uncertainty [m/yr], for
        the upslope check (default: the moving-part values).
    config : KinematicsConfig
        ``active_min_m_yr``, ``transitional_min_m_yr``, ``k_sigma``,
        ``min_moving_fraction``.

    Returns
    -------
    tuple of ndarray
        Activity and a reason (str) per outline.

    Notes
    -----
    With ``lo`` = ``transitional_min_m_yr`` (1 cm/yr), ``hi`` = ``active_min_m_yr``
    (10 cm/yr), ``k`` = ``k_sigma`` and enough moving pixels:

    * ``active`` when ``v - k u >= hi`` (significantly faster than 10 cm/yr);
    * ``transitional`` when ``v - k u >= lo`` and ``v + k u < hi``;
    * ``intact`` when ``v - k u >= lo`` but the interval reaches ``hi`` (moving, speed
      class open);
    * ``relict`` only when ``v + k u < lo``: even the moving part is bounded below
      the lowest RGIK class by the measurement (rare: u is at least
      ``los_noise_floor_m_yr / |C|``);
    * ``uncertain`` otherwise -- in particular when movement is not significant:
      *no detectable movement is a statement about the measurement, not about the
      ice* (at |C| = 0.3 a 3 mm/yr LOS floor is already 1 cm/yr downslope) -- and for a
      significant upslope median (``v_med < -k u_med`` and ``<= -lo``: not
      slope-parallel creep) or no valid pixel.

    The velocity class never decides by itself: an interval that straddles a limit
    leaves the class open.  :func:`permafrost.labels.combine_activity` decides how this
    evidence meets an inventory's own class.

    References
    ----------
    RGIK (2023), baseline concepts v1.0, section "Activity" (active: decimetres to
    metres per year; transitional: low movement, cm/yr; relict: no detectable
    movement); RGIK (2023), InSAR kinematic attribute v4.0 (class limits in cm/yr);
    Bertone et al. (2022) (kinematic attribute from the moving areas).
    """
    v = np.atleast_1d(np.asarray(v_moving_m_yr, dtype=np.float64))
    u = np.atleast_1d(np.asarray(uncertainty_m_yr, dtype=np.float64))
    u = np.where(np.isfinite(u), u, np.inf)
    vm = v if v_median_m_yr is None else np.atleast_1d(np.asarray(v_median_m_yr, np.float64))
    um = u if median_uncertainty_m_yr is None else np.atleast_1d(
        np.asarray(median_uncertainty_m_yr, np.float64))
    um = np.where(np.isfinite(um), um, np.inf)
    f = (np.ones_like(v) if moving_fraction is None
         else np.atleast_1d(np.asarray(moving_fraction, dtype=np.float64)))
    k = config.k_sigma
    lo_t, hi_t = config.transitional_min_m_yr, config.active_min_m_yr
    fmin = config.min_moving_fraction
    act = np.full(v.shape, "uncertain", dtype=object)
    why = np.full(v.shape, "", dtype=object)
    q = f"v{config.moving_percentile:g}"
    for i in range(v.size):
        low, high = v[i] - k * u[i], v[i] + k * u[i]
        if not np.isfinite(v[i]):
            why[i] = "no valid pixels"
        elif np.isfinite(vm[i]) and vm[i] < -k * um[i] and vm[i] <= -lo_t:
            why[i] = "significant upslope velocity (not slope-parallel creep)"
        elif low >= lo_t and not f[i] >= fmin:
            why[i] = (f"{q} - {k:g}u = {low:.4f} m/yr but only {f[i]:.2f} of the pixels move "
                      f"significantly (< {fmin:g})")
        elif low >= hi_t:
            act[i] = "active"
            why[i] = (f"moving part {q} - {k:g}u = {low:.4f} m/yr >= {hi_t:g} m/yr "
                      f"(moving fraction {f[i]:.2f})")
        elif low >= lo_t:
            act[i] = "transitional" if high < hi_t else "intact"
            why[i] = (f"significant movement: {q} - {k:g}u = {low:.4f} m/yr >= {lo_t:g} m/yr"
                      + (f", {q} + {k:g}u = {high:.4f} < {hi_t:g} m/yr" if high < hi_t else
                         f", class open: {q} + {k:g}u = {high:.4f} >= {hi_t:g} m/yr")
                      + f" (moving fraction {f[i]:.2f})")
        elif high < lo_t:
            act[i] = "relict"
            why[i] = (f"movement excluded: {q} + {k:g}u = {high:.4f} m/yr < {lo_t:g} m/yr")
        else:
            why[i] = (f"no significant movement: {q} - {k:g}u = {low:.4f} m/yr < {lo_t:g} m/yr "
                      f"(not detectable is not the same as not moving)")
    return act, why


# --------------------------------------------------------------------------- per track
def flow_scale_dem(dem, *, transform: Affine, crs, sigma_m: float) -> np.ndarray:
    """The DEM smoothed at the landform's scale, for the flow direction of creep.

    Parameters
    ----------
    dem : ndarray
        Elevation [m], NaN = no data.
    transform : Affine
        Its grid [CRS units].
    crs : CRS
        Its CRS (geographic grids: pixel sizes from the WGS84 radii of curvature at
        the grid's central latitude).
    sigma_m : float
        Standard deviation of the Gaussian [m] (0: the DEM unchanged).

    Returns
    -------
    ndarray
        Smoothed elevation [m]; NaN stays NaN (normalised convolution, so no-data does
        not pull the surface down).

    References
    ----------
    Wilson, J. P. and Gallant, J. C. (eds) (2000). Terrain Analysis: Principles and
    Applications. Wiley, ch. 1 (terrain attributes depend on the scale at which the
    surface is differentiated); Knutsson, H. and Westin, C.-F. (1993). Normalized and
    differential convolution. Proc. IEEE CVPR, 515-523.
    """
    z = np.asarray(dem, dtype=np.float64)
    if sigma_m <= 0:
        return z
    crs = CRS.from_user_input(crs)
    dx: float | np.ndarray
    dy: float | np.ndarray
    if crs.is_geographic:
        lat = transform.f + 0.5 * z.shape[0] * transform.e
        dx, dy = geographic_cell_size(lat, transform.a, transform.e)
    else:
        unit = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
        dx, dy = abs(transform.a) * unit, abs(transform.e) * unit
    sig = (float(sigma_m / dy), float(sigma_m / dx))
    valid = np.isfinite(z)
    num = ndimage.gaussian_filter(np.where(valid, z, 0.0), sig, mode="nearest")
    den = ndimage.gaussian_filter(valid.astype(np.float64), sig, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[~valid] = np.nan
    return out


def _flow_and_local_gradients(z, transform, crs, config: KinematicsConfig):
    """(flow-scale gradient, pixel-scale gradient), each (dz/dE, dz/dN) [m/m]."""
    local = terrain_gradient(z, transform=transform, crs=crs, method="central",
                             smooth_sigma_px=config.smooth_sigma_px)
    if config.flow_smoothing_m <= 0:
        return local, local
    zs = flow_scale_dem(z, transform=transform, crs=crs, sigma_m=config.flow_smoothing_m)
    flow = terrain_gradient(zs, transform=transform, crs=crs, method="central",
                            smooth_sigma_px=0.0)
    return flow, local


def track_pixels(track: xr.Dataset, *, dem: xr.DataArray | None = None,
                 config: KinematicsConfig = KinematicsConfig()) -> tuple[dict, dict]:
    """Per-pixel downslope velocity, sensitivity and masks of one track.

    Parameters
    ----------
    track : xarray.Dataset
        From :func:`permafrost.read_track`: ``velocity`` [m/yr],
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
        ``sigma_los``, ``sigma_downslope`` [m/yr], ``sensitivity`` (|C|), ``c_signed``
        (C of the valid pixels), ``coherence``, ``slope``, ``aspect`` (flow scale),
        ``v_los_stable`` (LOS of pixels with data, coherent, not water, not in
        shadow/layover: the reference rings) and one 0/1 array per mask reason) and the
        scene counts of each mask reason.

    References
    ----------
    Notti et al. (2014); see the module docstring.
    """
    geocoded = bool(track.attrs.get("geocoded", 1))
    shape = _grid_shape(track)
    if dem is None:
        if not geocoded or "height" not in track:
            raise DataError("no DEM: the track has no height layer" if geocoded else
                            "a radar-coordinate track needs a DEM",
                            path=track.attrs.get("geometry_file") or track.attrs.get("source"),
                            field="height",
                            fix="give a DEM" if geocoded else
                            "give a DEM, or run MintPy's geocode.py and give the geo/ folder "
                            "(geo_geometryRadar.h5 holds the height)")
        h = track["height"]
        (ge, gn), (le, ln) = _flow_and_local_gradients(h.values, track.rio.transform(),
                                                       track.rio.crs, config)
    else:
        (dge, dgn), (dle, dln) = _flow_and_local_gradients(dem.values, dem.rio.transform(),
                                                           dem.rio.crs, config)
        if geocoded:
            xs, ys = np.meshgrid(track["x"].values, track["y"].values)
            xy_crs = track.rio.crs
        else:
            xs, ys = track["longitude"].values, track["latitude"].values
            xy_crs = CRS.from_epsg(4326)
        ge, gn = sample_gradient(dge, dgn, transform=dem.rio.transform(), crs=dem.rio.crs,
                                 x=xs, y=ys, xy_crs=xy_crs)
        le, ln = sample_gradient(dle, dln, transform=dem.rio.transform(), crs=dem.rio.crs,
                                 x=xs, y=ys, xy_crs=xy_crs)
        has_v = np.isfinite(track["velocity"].values)
        if has_v.any() and not np.isfinite(ge[has_v]).any():
            raise DataError(f"the DEM does not cover track {track.attrs.get('track')!r}",
                            path=dem.attrs.get("source"), field="extent",
                            fix="give a DEM that covers the InSAR scene")
    slope, aspect = gradient_to_slope_aspect(ge, gn)
    local_slope, local_aspect = gradient_to_slope_aspect(le, ln)
    inc = track["incidence"].values
    az = track["azimuth"].values
    c = los_sensitivity(inc, az, slope, aspect)
    vlos = track["velocity"].values.astype(np.float64)
    get = (lambda k: track[k].values if k in track else None)
    masks = pixel_masks(velocity=vlos, incidence=inc, azimuth=az, slope=slope, aspect=aspect,
                        sensitivity=c, coherence=get("coherence"), reliable=get("mask"),
                        shadow=get("shadow"), water=get("water"), local_slope=local_slope,
                        local_aspect=local_aspect, config=config)
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
        "coherence": (track["coherence"].values.astype(np.float64) if "coherence" in track
                      else np.full(shape, np.nan)),
        "has_data": np.isfinite(vlos).astype(np.float32),
        "slope": slope, "aspect": aspect,
        # signed C of the valid pixels (re-referenced velocities are (v_LOS - offset) / C)
        "c_signed": np.where(valid, c, np.nan),
        # LOS of trustworthy ground whatever the slope direction: the reference rings
        "v_los_stable": np.where(~masks["nodata"] & ~masks["low_coherence"] & ~masks["water"]
                                 & ~masks["shadow_layover"], vlos, np.nan),
    }
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        pix[f"masked_{k}"] = masks[k].astype(np.float32)
    counts = {k: int(m.sum()) for k, m in masks.items()}
    counts["pixels"] = int(np.prod(shape))
    log.info("track %s: %s", track.attrs.get("track"), counts)
    return pix, counts


_PIXEL_SPEC = {
    "v_downslope": ("count", "median", "p25", "p75", "p90"),
    "moving": ("mean",),
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


def _pct_name(q: float) -> str:
    return f"p{q:g}"


def quantile_se_factor(q: float) -> float:
    """Large-sample standard error of a sample quantile, in units of ``σ/√n``.

    Parameters
    ----------
    q : float
        Quantile in (0, 1) [-].

    Returns
    -------
    float
        ``sqrt(q (1 - q)) / φ(Φ⁻¹(q))`` for Gaussian samples [-]: 1.2533 for the median,
        1.3626 for the quartiles, 1.7094 for the 10th/90th percentiles.

    References
    ----------
    Kenney, J. F. and Keeping, E. S. (1962). Mathematics of Statistics, Part 1, 3rd ed.,
    §15.12; Stuart, A. and Ord, J. K. (1994). Kendall's Advanced Theory of Statistics,
    vol. 1, 6th ed., §10.10 (variance q(1-q)/(n f(x_q)²) of a sample quantile).
    """
    from scipy.stats import norm

    return float(np.sqrt(q * (1.0 - q)) / norm.pdf(norm.ppf(q)))


def reference_rings(outlines: gpd.GeoSeries, *, inner_m: float, outer_m: float) -> gpd.GeoSeries:
    """A ring of surrounding ground per outline, clear of every outline.

    Parameters
    ----------
    outlines : geopandas.GeoSeries
        Outlines with a CRS (None/empty allowed: empty ring).
    inner_m, outer_m : float
        Inner and outer distance from the outline [m], measured in the local UTM zone
        of the outlines (``GeoSeries.estimate_utm_crs``) or in the outlines' own CRS
        when it is projected in metres.

    Returns
    -------
    geopandas.GeoSeries
        ``buffer(outer) - buffer(inner) - union(all outlines buffered by inner)``, in the
        outlines' CRS.

    References
    ----------
    The stable-reference practice of InSAR rock glacier studies: velocities are read
    relative to surrounding stable ground, which removes the long-wavelength residual
    of the scene reference and the troposphere (RGIK 2023, InSAR kinematic attribute
    v4.0; Bertone et al. 2022).
    """
    crs = CRS.from_user_input(outlines.crs)
    ok = ~(outlines.isna() | outlines.is_empty)
    if crs.is_projected and crs.axis_info and crs.axis_info[0].unit_name in ("metre", "meter"):
        metric = outlines
    else:
        try:
            metric = outlines.to_crs(outlines[ok].estimate_utm_crs())
        except (RuntimeError, ValueError):  # nothing, or nothing on Earth: no ring
            return gpd.GeoSeries([None] * len(outlines), index=outlines.index, crs=outlines.crs)
    g = np.asarray(metric.values, dtype=object)
    good = np.asarray(ok, dtype=bool)
    rings = np.full(len(g), None, dtype=object)
    if good.any():
        others = shapely.union_all(shapely.buffer(g[good], inner_m)) if inner_m > 0 else \
            shapely.union_all(g[good])
        outer = shapely.buffer(g[good], outer_m)
        rings[good] = shapely.difference(outer, others)
    return gpd.GeoSeries(rings, index=outlines.index, crs=metric.crs).to_crs(outlines.crs)


def _grid_shape(track: xr.Dataset) -> tuple[int, int]:
    """``(rows, cols)`` of a track's grid (its velocity layer is 2-D)."""
    rows, cols = track["velocity"].shape
    return rows, cols


def _index_grid(geoms: Sequence | np.ndarray, track: xr.Dataset, all_touched: bool) -> np.ndarray:
    """Index (0..n-1) of the outline holding each pixel, -1 for none (disjoint outlines).

    Geocoded tracks burn the outlines (:func:`permafrost.rasterize.burn`), radar-geometry
    tracks test each pixel's centre (:func:`permafrost.rasterize.points_in_polygons`).
    """
    shape = _grid_shape(track)
    geoms = np.asarray(list(geoms), dtype=object)
    if track.attrs.get("geocoded", 1):
        shapes = Shapes(geoms, np.arange(1, len(geoms) + 1))
        lab = burn(shapes, track.rio.transform(), (0, 0, *shape), all_touched=all_touched)
        return lab.astype(np.int64) - 1
    ig, pix = points_in_polygons(geoms, track["longitude"].values, track["latitude"].values)
    idx = np.full(shape, -1, dtype=np.int64)
    idx.ravel()[pix] = ig
    return idx


def ring_statistics(rings: Sequence, track: xr.Dataset, pixels: Mapping[str, np.ndarray], *,
                    config: KinematicsConfig = KinematicsConfig()) -> pd.DataFrame:
    """LOS offset of each outline's stable-ground ring.

    Parameters
    ----------
    rings : sequence of shapely geometries
        From :func:`reference_rings`, in the track's CRS.
    track : xarray.Dataset
        The track.
    pixels : mapping
        From :func:`track_pixels` (``v_los_stable``: LOS [m/yr] of pixels with data,
        coherent, not water, not in shadow/layover).
    config : KinematicsConfig
        ``min_reference_pixels``, ``block_rows``.

    Returns
    -------
    pandas.DataFrame
        ``ref_n`` (stable pixels), ``ref_offset`` (their median LOS [m/yr]; NaN with
        fewer than ``min_reference_pixels``), ``ref_spread`` (IQR/1.349 [m/yr], the
        local pixel noise) and ``ref_se`` (standard error of the median,
        1.2533 spread/√n [m/yr]).

    References
    ----------
    Kenney and Keeping (1962), §15.12 (standard error of the median).
    """
    spec = ZonalSpec({"v_los_stable": ("count", "median", "p25", "p75")})
    arrays = {"v_los_stable": pixels["v_los_stable"]}
    if track.attrs.get("geocoded", 1):
        res = zonal_statistics(list(rings), arrays, transform=track.rio.transform(),
                               shape=_grid_shape(track), spec=spec, all_touched=False,
                               block_rows=config.block_rows)
    else:
        res = zonal_statistics_points(list(rings), track["longitude"].values,
                                      track["latitude"].values, arrays, spec=spec)
    n = np.asarray(res["v_los_stable_count"], dtype=np.float64)
    enough = n >= config.min_reference_pixels
    spread = (res["v_los_stable_p75"] - res["v_los_stable_p25"]) / 1.349
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 1.2533 * spread / np.sqrt(n)
    return pd.DataFrame({
        "ref_n": n.astype(np.int64),
        "ref_offset": np.where(enough, res["v_los_stable_median"], np.nan),
        "ref_spread": np.where(enough, spread, np.nan),
        "ref_se": np.where(enough, se, np.nan),
    })


def outline_statistics(geoms: Sequence | np.ndarray, track: xr.Dataset, pixels: Mapping[str, np.ndarray], *,
                       reference: pd.DataFrame | None = None,
                       config: KinematicsConfig = KinematicsConfig()) -> pd.DataFrame:
    """Per-outline statistics of one track's pixel arrays, re-referenced to stable ground.

    Parameters
    ----------
    geoms : sequence of shapely geometries
        Outlines in the track's CRS (WGS84 lon/lat for radar-coordinate tracks).
    track : xarray.Dataset
        The track (grid and coordinates).
    pixels : mapping
        From :func:`track_pixels`.
    reference : pandas.DataFrame, optional
        From :func:`ring_statistics` (one row per outline).  Each outline's LOS
        velocities are re-referenced by subtracting its ring's ``ref_offset`` before
        the downslope projection, ``v_i = (V_LOS,i - offset) / C_i``; NaN offset (or no
        ``reference``): not re-referenced.
    config : KinematicsConfig
        ``all_touched``, ``block_rows``, ``k_sigma``, ``moving_percentile``,
        ``los_noise_floor_m_yr``.

    Returns
    -------
    pandas.DataFrame
        One row per outline: ``n_pixels``, ``n_valid``, ``n_data``, downslope velocity
        percentiles [m/yr] (median, p25, p75, p90 and ``v_moving`` = the
        ``moving_percentile``), ``moving_fraction`` (share of valid pixels moving
        significantly downslope, ``v_i - k σ_i > 0`` with ``σ_i`` the ring's robust LOS
        spread, else the pixel's velocityStd, over ``|C_i|``), LOS percentiles
        (not re-referenced) [m/yr], ``sigma_*`` [m/yr], ``sensitivity_mean``,
        ``coherence_mean``, ``masked_*`` counts, the reference columns, and
        ``uncertainty`` / ``moving_uncertainty`` [m/yr]: the standard error of the
        median (resp. of the moving percentile), ``f_q max(σ_pixel, s_robust) / √n``
        (``f_q`` from :func:`quantile_se_factor`; ``σ_pixel`` the median
        velocityStd/|C|, ``s_robust`` = IQR/1.349 of the pixel downslope velocities,
        pixels taken as independent), added in quadrature to the correlated floor
        ``los_noise_floor_m_yr / |mean C|`` and to the ring's ``ref_se / |mean C|``.

    References
    ----------
    Kenney, J. F. and Keeping, E. S. (1962). Mathematics of Statistics, Part 1, 3rd
    ed., §15.12 (standard error of the median, sqrt(π/2) σ/√n); Bertone et al. (2022)
    and RGIK (2023) (the moving area of a rock glacier carries its kinematic attribute).
    """
    garr = np.asarray(list(geoms), dtype=object)
    n_out = len(garr)
    q = float(config.moving_percentile)
    pname = _pct_name(q)
    spec_map = dict(_PIXEL_SPEC)
    spec_map["v_downslope"] = tuple(dict.fromkeys(("count", "median", "p25", "p75", "p90",
                                                   pname)))
    spec = ZonalSpec(spec_map)
    if reference is None:
        reference = pd.DataFrame({"ref_n": np.zeros(n_out, np.int64),
                                  "ref_offset": np.full(n_out, np.nan),
                                  "ref_spread": np.full(n_out, np.nan),
                                  "ref_se": np.full(n_out, np.nan)})
    offset = reference["ref_offset"].to_numpy(np.float64)
    ring_spread = reference["ref_spread"].to_numpy(np.float64)
    shape = _grid_shape(track)
    c = np.asarray(pixels["c_signed"], dtype=np.float64)
    v_los = np.asarray(pixels["v_los"], dtype=np.float64)
    sig_los = np.asarray(pixels["sigma_los"], dtype=np.float64)
    k = config.k_sigma
    keys = ["n_pixels"] + [f"{name}_{op}" for name, ops in spec.stats.items() for op in ops]
    res = {key: np.full(n_out, np.nan) for key in keys}
    ok = ~shapely.is_missing(garr) & ~shapely.is_empty(garr) if n_out else np.zeros(0, bool)
    layers = overlap_layers(np.where(ok, garr, np.array(None, dtype=object))) if ok.any() else [np.arange(n_out)]
    for layer in layers:
        sub = np.full(n_out, None, dtype=object)
        sub[layer] = garr[layer]
        idx = _index_grid(sub, track, config.all_touched)
        inside = idx >= 0
        off_px = np.zeros(shape)
        off_px[inside] = np.nan_to_num(offset[idx[inside]], nan=0.0)
        s_px = np.full(shape, np.nan)
        s_px[inside] = ring_spread[idx[inside]]
        s_px = np.where(np.isfinite(s_px), s_px, sig_los)
        with np.errstate(invalid="ignore", divide="ignore"):
            vds = (v_los - off_px) / c
            moving = np.where(np.isfinite(vds), (vds - k * s_px / np.abs(c) > 0), np.nan)
        arrays = dict(pixels)
        arrays["v_downslope"] = vds
        arrays["moving"] = moving.astype(np.float64)
        if track.attrs.get("geocoded", 1):
            r = zonal_statistics(list(sub), arrays, transform=track.rio.transform(), shape=shape,
                                 spec=spec, all_touched=config.all_touched,
                                 block_rows=config.block_rows)
        else:
            r = zonal_statistics_points(list(sub), track["longitude"].values,
                                        track["latitude"].values, arrays, spec=spec)
        for key in keys:
            res[key][layer] = np.asarray(r[key], dtype=np.float64)[layer]
    res["n_pixels"] = np.nan_to_num(res["n_pixels"]).astype(np.int64)
    df = pd.DataFrame({
        "n_pixels": res["n_pixels"],
        "n_data": np.nan_to_num(res["has_data_sum"]).astype(np.int64),
        "n_valid": np.nan_to_num(res["v_downslope_count"]).astype(np.int64),
        "v_downslope_median": res["v_downslope_median"],
        "v_downslope_p25": res["v_downslope_p25"],
        "v_downslope_p75": res["v_downslope_p75"],
        "v_downslope_p90": res["v_downslope_p90"],
        "v_moving": res[f"v_downslope_{pname}"],
        "moving_fraction": res["moving_mean"],
        "v_los_p10": res["v_los_p10"],
        "v_los_median": res["v_los_median"],
        "v_los_p90": res["v_los_p90"],
        "sigma_los": res["sigma_los_median"],
        "sigma_downslope": res["sigma_downslope_median"],
        "sensitivity_mean": res["sensitivity_mean"],
        "sensitivity_all_mean": res["sensitivity_all_mean"],
        "coherence_mean": res["coherence_mean"],
        "ref_n": reference["ref_n"].to_numpy(np.int64),
        "ref_offset": offset,
        "ref_spread": ring_spread,
    })
    for key in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        df[f"masked_{key}"] = np.nan_to_num(res[f"masked_{key}_sum"]).astype(np.int64)
    n = df["n_valid"].to_numpy(np.float64)
    robust = (df["v_downslope_p75"] - df["v_downslope_p25"]).to_numpy() / 1.349
    formal = df["sigma_downslope"].to_numpy()
    spread = np.fmax(np.nan_to_num(formal, nan=0.0), np.nan_to_num(robust, nan=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        cm = np.abs(df["sensitivity_mean"].to_numpy())
        floor = np.nan_to_num(config.los_noise_floor_m_yr / cm, nan=0.0)
        ring = np.nan_to_num(reference["ref_se"].to_numpy(np.float64) / cm, nan=0.0)
        for col, f in (("uncertainty", 1.2533), ("moving_uncertainty",
                                                  quantile_se_factor(q / 100.0))):
            sem = f * spread / np.sqrt(n)
            df[col] = np.where(n > 0, np.sqrt(sem**2 + floor**2 + ring**2), np.nan)
    return df


def combine_tracks(per_track: Mapping[str, pd.DataFrame], *,
                   config: KinematicsConfig = KinematicsConfig()) -> pd.DataFrame:
    """Combine per-track outline statistics into one value per outline.

    Tracks with adequate coverage (``n_valid >= min_valid_pixels`` and valid fraction
    ``>= min_valid_fraction``) are combined by the inverse-variance weighted mean of
    their median and of their moving-part downslope velocities, ``u = (Σ u_i^-2)^-1/2``,
    and the valid-pixel-weighted mean of their moving fractions; the other statistics
    come from the adequate track with the smallest moving-part uncertainty.  Without an
    adequate track, the best covering track is reported and the activity is uncertain.
    The activity is :func:`classify_activity` of the combined moving part.

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
    "v_downslope_unc_m_yr", "v_moving_m_yr", "v_moving_unc_m_yr", "moving_fraction",
    "v_los_p10_m_yr", "v_los_median_m_yr", "v_los_p90_m_yr",
    "v_los_std_m_yr", "sensitivity_mean", "sensitivity_all_mean", "coherence_mean", "snr",
    "masked_low_sensitivity", "masked_flat", "masked_shadow_layover", "masked_water",
    "masked_low_coherence", "rgik_class", "activity", "reliability", "reason",
]
_MASKS = ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence")


def _adequate(s: pd.Series, config: KinematicsConfig) -> bool:
    n, nv = s["n_pixels"], s["n_valid"]
    return bool(nv >= config.min_valid_pixels and n > 0 and nv / n >= config.min_valid_fraction)


def _ivw(v, u) -> tuple[float, float]:
    """Inverse-variance weighted mean and its standard error (Taylor 1997, §7.2)."""
    v = np.asarray(v, dtype=np.float64)
    u = np.asarray(u, dtype=np.float64)
    pos = u > 0
    u = np.where(pos, u, np.nanmin(np.where(pos, u, np.inf)) if pos.any() else 1e-6)
    w = 1.0 / u**2
    return float(np.sum(w * v) / np.sum(w)), float(np.sqrt(1.0 / np.sum(w)))


def _combine_one(stats, covering, adequate, config) -> dict[str, Any]:
    out: dict[str, Any] = {c: np.nan for c in _OUT_COLUMNS}  # one row: numbers and strings
    out.update(track="", combination="none", n_tracks_covering=len(covering), n_pixels=0,
               n_valid=0, rgik_class=UNDEFINED, activity="uncertain", reliability="low")
    for k in _MASKS:
        out[f"masked_{k}"] = 0
    if not covering:
        out["reason"] = NOT_COVERED
        return out
    pool = adequate or covering
    best = min(pool, key=lambda t: (np.nan_to_num(stats[t]["moving_uncertainty"], nan=np.inf),
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
    for k in _MASKS:
        out[f"masked_{k}"] = int(b[f"masked_{k}"])
    out["valid_fraction"] = b["n_valid"] / b["n_pixels"] if b["n_pixels"] else 0.0
    reasons = []
    if len(adequate) >= 2:
        med = [stats[t]["v_downslope_median"] for t in adequate]
        vm, um = _ivw(med, [stats[t]["uncertainty"] for t in adequate])
        mv = [stats[t]["v_moving"] for t in adequate]
        mu = [stats[t]["moving_uncertainty"] for t in adequate]
        vq, uq = _ivw(mv, mu)
        nv = np.array([stats[t]["n_valid"] for t in adequate], dtype=np.float64)
        fr = np.array([stats[t]["moving_fraction"] for t in adequate], dtype=np.float64)
        out.update(track="+".join(adequate),
                   combination=f"inverse-variance mean of {len(adequate)} tracks",
                   v_downslope_median_m_yr=vm, v_downslope_unc_m_yr=um,
                   v_moving_m_yr=vq, v_moving_unc_m_yr=uq,
                   moving_fraction=float(np.nansum(nv * fr) / np.sum(nv)))
        chi = np.abs(np.asarray(mv) - vq) / np.asarray(mu)
        if np.any(chi > 3.0):
            reasons.append("tracks disagree (" + ", ".join(
                f"{t} {x:.3f}" for t, x in zip(adequate, mv)) + " m/yr)")
    else:
        out.update(track=best, combination="single track",
                   v_downslope_median_m_yr=b["v_downslope_median"],
                   v_downslope_unc_m_yr=b["uncertainty"], v_moving_m_yr=b["v_moving"],
                   v_moving_unc_m_yr=b["moving_uncertainty"],
                   moving_fraction=b["moving_fraction"])
    if adequate and not all(np.isfinite(stats[t]["ref_offset"]) for t in adequate):
        reasons.append("not re-referenced: fewer than "
                       f"{config.min_reference_pixels} stable pixels around the outline ("
                       + ", ".join(t for t in adequate if not np.isfinite(stats[t]["ref_offset"]))
                       + ")")
    v, u = out["v_moving_m_yr"], out["v_moving_unc_m_yr"]
    out["snr"] = abs(v) / u if np.isfinite(v) and np.isfinite(u) and u > 0 else np.nan
    out["rgik_class"] = str(kinematic_class(v, u, k_sigma=config.k_sigma)[0])
    if not adequate:
        masked = {k: out[f"masked_{k}"] for k in _MASKS}
        top = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in masked.items() if n)
        detail = f" (masked: {top})" if top else ""
        out.update(activity="uncertain", reliability="low", rgik_class=UNDEFINED,
                   reason=f"too few valid pixels: {out['n_valid']} of {out['n_pixels']}"
                          f"{detail}")
        return out
    act, why = classify_activity(v, u, moving_fraction=out["moving_fraction"],
                                 v_median_m_yr=out["v_downslope_median_m_yr"],
                                 median_uncertainty_m_yr=out["v_downslope_unc_m_yr"],
                                 config=config)
    out["activity"] = str(act[0])
    reasons.insert(0, str(why[0]))
    if out["activity"] == "uncertain":
        out["reliability"] = "low"
        if why[0].startswith("significant upslope"):
            out["rgik_class"] = UNDEFINED
    else:
        good = (out["valid_fraction"] >= config.good_valid_fraction
                and abs(out["sensitivity_mean"]) >= config.good_sensitivity)
        if out["valid_fraction"] < config.good_valid_fraction:
            reasons.append(f"valid fraction {out['valid_fraction']:.2f}")
        if abs(out["sensitivity_mean"]) < config.good_sensitivity:
            reasons.append(f"mean sensitivity {out['sensitivity_mean']:.2f}")
        out["reliability"] = "high" if good and len(reasons) == 1 else "medium"
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


@expects(outlines="geodataframe")
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
        From :func:`permafrost.read_track` (``attrs['track']`` names them;
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
    inner, outer = (float(x) for x in config.reference_ring_m)
    rings = reference_rings(base, inner_m=inner, outer_m=outer)
    per_track: dict[str, pd.DataFrame] = {}
    counts: dict[str, dict] = {}
    for name, tr in zip(names, tracks):
        pix, cnt = track_pixels(tr, dem=dem, config=config)
        counts[name] = cnt
        target = tr.rio.crs if tr.attrs.get("geocoded", 1) else CRS.from_epsg(4326)
        geoms = base.to_crs(target).values
        ref = ring_statistics(list(rings.to_crs(target).values), tr, pix, config=config)
        per_track[name] = outline_statistics(list(geoms), tr, pix, reference=ref,
                                             config=config)
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
    # the stable-ground reference of every track: LOS offset subtracted, stable pixels used
    for name, st in per_track.items():
        out[f"{PREFIX}ref_offset_{name}_m_yr"] = st["ref_offset"].to_numpy(np.float64)
        out[f"{PREFIX}ref_n_{name}"] = st["ref_n"].to_numpy(np.int64)
    summary = summarise(out)
    return KinematicsResult(outlines=out, pixel_counts=counts, summary=summary, config=config)


def _empty_stats(n: int) -> pd.DataFrame:
    cols = ["n_pixels", "n_data", "n_valid", "ref_n"] + [c for c in (
        "v_downslope_median", "v_downslope_p25", "v_downslope_p75", "v_downslope_p90",
        "v_moving", "moving_fraction", "v_los_p10", "v_los_median", "v_los_p90", "sigma_los",
        "sigma_downslope", "sensitivity_mean", "sensitivity_all_mean", "coherence_mean",
        "uncertainty", "moving_uncertainty", "ref_offset", "ref_spread")]
    df = pd.DataFrame({c: np.zeros(n) if c.startswith("n_") else np.full(n, np.nan)
                       for c in cols})
    for k in ("low_sensitivity", "flat", "shadow_layover", "water", "low_coherence"):
        df[f"masked_{k}"] = 0
    return df


def summarise(out: gpd.GeoDataFrame) -> pd.DataFrame:
    """Counts of outlines per activity x RGIK class (rows) with totals."""
    act = pd.Categorical(out[PREFIX + "activity"],
                         categories=["active", "transitional", "intact", "relict",
                                     "uncertain"])
    cls = pd.Categorical(out[PREFIX + "rgik_class"],
                         categories=list(RGIK_CLASS_LABELS) + [UNDEFINED])
    tab = pd.crosstab(cls, act, dropna=False)
    tab.index.name = "rgik_class"
    tab.columns.name = "activity"
    return tab
