"""MintPy products of an ascending and a descending Sentinel-1 track."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
from scipy import ndimage

from permafrost.io.atomic import atomic_path
from samplegen.grid import NORTH, NX, NY, PIX, WEST, km_coords

TRACKS = {
    "asc": {"ORBIT_DIRECTION": "ASCENDING", "HEADING": -12.08, "inc_near": 38.4, "inc_far": 40.1,
            "az_near": 101.7, "az_far": 102.5, "fill": 0.0, "epsg": True,
            "CENTER_LINE_UTC": "41123.482917", "PROJECT_NAME": "QilianSenAT128",
            "trackNumber": "128", "START_DATE": "20170105", "END_DATE": "20211228",
            "noise_sd": 0.0025, "resid_sd": 0.003},
    "desc": {"ORBIT_DIRECTION": "DESCENDING", "HEADING": -167.93, "inc_near": 36.2,
             "inc_far": 37.9, "az_near": -101.6, "az_far": -102.4, "fill": np.nan, "epsg": False,
             "CENTER_LINE_UTC": "84297.164583", "PROJECT_NAME": "QilianSenDT33",
             "trackNumber": "33", "START_DATE": "20170111", "END_DATE": "20211222",
             "noise_sd": 0.003, "resid_sd": 0.0035},
}
WAVELENGTH = 0.05546576
SAT_HEIGHT = 693000.0


def los_unit_vector(inc_deg, az_deg):
    """Ground-to-satellite unit vector (E, N, U) from incidence and azimuth angle [deg].

    l = [-sin(inc) sin(az), sin(inc) cos(az), cos(inc)] with the azimuth angle of the LOS
    vector measured from north anti-clockwise (ISCE/MintPy convention; Notti et al. 2014; same
    as ``mintpy.utils.utils0.get_unit_vector4component_of_interest(comp='enu2los')``).
    """
    inc, az = np.deg2rad(inc_deg), np.deg2rad(az_deg)
    return -np.sin(inc) * np.sin(az), np.sin(inc) * np.cos(az), np.cos(inc)


def downslope_sensitivity(inc_deg, az_deg, slope_deg, aspect_deg):
    """C = l . s: LOS velocity per unit downslope velocity [-] (Notti et al. 2014, IJRS 35:2186).

    s = [cos b sin A, cos b cos A, -sin b] is the downslope unit vector for slope b and
    downslope aspect A (clockwise from north).  V_LOS = C V_downslope (positive = toward the
    satellite, as in MintPy).
    """
    le, ln, lu = los_unit_vector(inc_deg, az_deg)
    b, a = np.deg2rad(slope_deg), np.deg2rad(aspect_deg)
    return le * np.cos(b) * np.sin(a) + ln * np.cos(b) * np.cos(a) - lu * np.sin(b)


def track_footprint(name, x_km, y_km):
    """Boolean swath of a track on the covariate grid: edges tilted along the flight heading."""
    w_km = x_km.max()
    tilt = math.tan(math.radians(12.0))
    ymid = 0.5 * y_km.max()
    if name == "asc":
        # heading N12W: the far-range (east) edge drifts west going north
        east_edge = 0.70 * w_km - (y_km - ymid) * tilt
        swath = x_km < east_edge
        # a frame boundary (perpendicular to the track) leaves the far south-west uncovered
        swath &= (y_km - 0.0) + (x_km - 0.0) * tilt > 1.2
    else:
        # heading S12W (line orientation N12E): the far-range (west) edge drifts east going north
        west_edge = 0.30 * w_km + (y_km - ymid) * tilt
        swath = x_km > west_edge
        # the frame ends in the north-east (line perpendicular to the track)
        swath &= (y_km - 1.02 * y_km.max()) + (x_km - 0.5 * w_km) * tilt < 0.0
    return swath


def mintpy_attributes(name, tr, crop_row0, crop_col0, length, width, ref_yx):
    """MintPy-style attributes of a geocoded Sentinel-1 product (strings, like MintPy writes)."""
    x_first = WEST + crop_col0 * PIX
    y_first = NORTH - crop_row0 * PIX
    ref_y, ref_x = ref_yx
    atr = {
        "ALOOKS": "3", "RLOOKS": "15", "ANTENNA_SIDE": "-1",
        "AZIMUTH_PIXEL_SIZE": "41.95738402391218", "RANGE_PIXEL_SIZE": "34.94343171946411",
        "CENTER_LINE_UTC": tr["CENTER_LINE_UTC"], "DATA_TYPE": "float32",
        "EARTH_RADIUS": "6370183.412719541", "HEIGHT": str(SAT_HEIGHT),
        "HEADING": repr(tr["HEADING"]), "ORBIT_DIRECTION": tr["ORBIT_DIRECTION"],
        "PLATFORM": "Sen", "POLARIZATION": "VV", "PRF": "486.4863103151924",
        "PROCESSOR": "isce", "PROJECT_NAME": tr["PROJECT_NAME"],
        "STARTING_RANGE": "800140.2917578435" if name == "asc" else "799212.5104113284",
        "WAVELENGTH": repr(WAVELENGTH), "beam_mode": "IW", "trackNumber": tr["trackNumber"],
        "LENGTH": str(length), "WIDTH": str(width),
        "X_FIRST": repr(float(x_first)), "Y_FIRST": repr(float(y_first)),
        "X_STEP": repr(PIX), "Y_STEP": repr(-PIX), "X_UNIT": "degrees", "Y_UNIT": "degrees",
        "START_DATE": tr["START_DATE"], "END_DATE": tr["END_DATE"],
        "DATE12": f"{tr['START_DATE']}_{tr['END_DATE']}", "REF_DATE": tr["START_DATE"],
        "REF_Y": str(ref_y), "REF_X": str(ref_x),
        "REF_LAT": repr(float(y_first - (ref_y + 0.5) * PIX)),
        "REF_LON": repr(float(x_first + (ref_x + 0.5) * PIX)),
        "LAT_REF1": "38.12", "LAT_REF2": "38.23", "LAT_REF3": "39.05", "LAT_REF4": "39.16",
        "LON_REF1": "98.31", "LON_REF2": "99.74", "LON_REF3": "98.12", "LON_REF4": "99.55",
        "FILE_PATH": f"/data/{tr['PROJECT_NAME']}/mintpy/timeseries_ERA5_ramp_demErr.h5",
        "mintpy.load.processor": "isce", "mintpy.reference.lalo": "auto",
        "mintpy.networkInversion.minTempCoh": "0.7", "mintpy.troposphericDelay.method": "pyaps",
        "mintpy.troposphericDelay.weatherModel": "ERA5", "mintpy.deramp": "linear",
        "mintpy.topographicResidual": "yes", "mintpy.velocity.startDate": tr["START_DATE"],
        "mintpy.velocity.endDate": tr["END_DATE"], "mintpy.geocode.laloStep": f"{-PIX}, {PIX}",
    }
    if name == "asc":
        atr["LAT_REF1"], atr["LAT_REF2"] = "37.98", "38.12"
        atr["LAT_REF3"], atr["LAT_REF4"] = "39.02", "39.17"
    if tr["epsg"]:
        atr["EPSG"] = "4326"
    return atr


def write_mintpy(path: Path, datasets: dict, atr: dict, units: dict | None = None) -> None:
    """Write one HDF5 file with MintPy's own writer (atomic, quiet, gzip)."""
    from mintpy.utils import writefile

    with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        writefile.write(datasets, out_file=str(tmp), metadata=atr, compression="gzip",
                        ds_unit_dict=units, print_msg=False)


def make_insar(rng, out: Path, dem, slope, aspect, ndvi, rg_records, rg_ids, lakes_mask,
               glacier_mask):
    """MintPy products of an ascending and a descending track, and their truth.

    Per pixel: V_LOS_true = C V_downslope inside rock glaciers (C from
    :func:`downslope_sensitivity` with the pixel's slope/aspect from :func:`slope_aspect`),
    0 elsewhere.  Observed velocity = V_LOS_true + correlated residual (Gaussian-filtered
    noise, sigma 12 px, sd ``resid_sd``) + white noise (sd ``noise_sd`` / sqrt(coherence)),
    referenced to REF_Y/REF_X (0 there).  Temporal coherence: 0.97 - 0.35 NDVI - (slope
    beyond 35 deg) - 0.25 glacier, plus noise; where |V_LOS_true| > 0.5 m/yr the pixel
    decorrelates: coherence U(0.3, 0.68) and the velocity underestimated (x U(0.35, 0.9))
    with extra noise (sd 0.1 |V|).  maskTempCoh = coherence >= 0.7.  Lakes (water mask)
    are 0 in velocity, std and coherence (pixels MintPy does not invert); outside the swath
    the asc files hold 0 and the desc files NaN (geocoding fill value).
    """
    x_km, y_km = km_coords()
    v_down = np.zeros((NY, NX))
    for rec in rg_records:
        v_down[rg_ids == int(rec["rg_id"][2:])] = rec["v_downslope_m_yr"]
    info = {}
    for name, tr in TRACKS.items():
        foot = track_footprint(name, x_km, y_km)
        rows = np.nonzero(foot.any(axis=1))[0]
        cols = np.nonzero(foot.any(axis=0))[0]
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        sl = (slice(r0, r1), slice(c0, c1))
        fp = foot[sl]
        length, width = fp.shape
        # geometry: incidence grows with range (east for asc, west for desc), azimuth too
        frac = np.linspace(0.0, 1.0, NX)[None, :] * np.ones((NY, 1))
        if name == "desc":
            frac = frac[:, ::-1]
        inc = tr["inc_near"] + (tr["inc_far"] - tr["inc_near"]) * frac
        az = tr["az_near"] + (tr["az_far"] - tr["az_near"]) * frac
        slant = SAT_HEIGHT / np.cos(np.deg2rad(inc)) + 0.5 * (dem.mean() - dem)
        c_sens = downslope_sensitivity(inc, az, slope, aspect)
        v_los = c_sens * v_down
        # shadow / layover from the terrain slope toward the radar
        le, ln, lu = los_unit_vector(inc, az)
        hz = np.hypot(le, ln)
        toward = (np.tan(np.deg2rad(slope)) * (np.sin(np.deg2rad(aspect)) * le
                                               + np.cos(np.deg2rad(aspect)) * ln) / hz)
        slope_toward_deg = np.degrees(np.arctan(toward))
        shadow = slope_toward_deg < -(90.0 - inc)
        # coherence
        noise_c = ndimage.gaussian_filter(rng.standard_normal((NY, NX)), 2.0)
        noise_c /= noise_c.std()
        coh = (0.97 - 0.35 * np.clip(ndvi, 0, None) - 0.012 * np.clip(slope - 35, 0, None)
               - 0.25 * glacier_mask + 0.03 * noise_c
               - 0.02 * np.abs(rng.standard_normal((NY, NX))))
        coh -= 0.6 * np.clip(np.abs(v_los) - 0.2, 0, 0.3)
        fast = np.abs(v_los) > 0.5
        coh[fast] = rng.uniform(0.3, 0.68, fast.sum())
        coh[shadow] = np.minimum(coh[shadow], rng.uniform(0.2, 0.5, shadow.sum()))
        coh = np.clip(coh, 0.05, 0.995)
        resid = ndimage.gaussian_filter(rng.standard_normal((NY, NX)), 12.0)
        resid *= tr["resid_sd"] / resid.std()
        white = rng.standard_normal((NY, NX)) * tr["noise_sd"] / np.sqrt(coh)
        v_obs = v_los + resid + white
        v_obs[fast] = (v_los[fast] * rng.uniform(0.35, 0.9, fast.sum())
                       + rng.normal(0, 1, fast.sum()) * 0.1 * np.abs(v_los[fast]))
        v_std = 0.0008 + 0.6 * tr["noise_sd"] * (1.0 - coh) / 0.3 + 0.1 * np.abs(v_obs - v_los)
        # reference point: a stable, coherent, gentle pixel inside the swath near its centre
        stable = (foot & (v_down == 0) & (coh > 0.9) & (slope < 12) & ~lakes_mask & ~glacier_mask
                  & ~ndimage.binary_dilation(rg_ids > 0, iterations=15))
        rr, cc = np.nonzero(stable)
        cy, cx = 0.5 * (r0 + r1), 0.5 * (c0 + c1)
        k = np.argmin((rr - cy) ** 2 + (cc - cx) ** 2)
        ref_r, ref_c = rr[k], cc[k]
        v_obs -= v_obs[ref_r, ref_c]
        v_std[ref_r, ref_c] = 0.0
        coh[ref_r, ref_c] = max(coh[ref_r, ref_c], 0.95)
        # water: not inverted -> 0
        v_obs[lakes_mask] = 0.0
        v_std[lakes_mask] = 0.0
        coh[lakes_mask] = 0.0
        fill = tr["fill"]

        def crop(a, fillv=fill, dtype=np.float32, sl=sl, fp=fp):
            b = a[sl].astype(dtype).copy()
            b[~fp] = fillv
            return b

        atr = mintpy_attributes(name, tr, r0, c0, length, width, (ref_r - r0, ref_c - c0))
        d = out / "insar" / name
        a_vel = dict(atr, FILE_TYPE="velocity", UNIT="m/year")
        write_mintpy(d / "velocity.h5", {"velocity": crop(v_obs), "velocityStd": crop(v_std)},
                     a_vel, units={"velocity": "m/year", "velocityStd": "m/year"})
        a_coh = dict(atr, FILE_TYPE="temporalCoherence", UNIT="1")
        write_mintpy(d / "temporalCoherence.h5", {"temporalCoherence": crop(coh)}, a_coh)
        mask = crop(coh >= 0.7, fillv=False, dtype=np.bool_)
        a_mask = dict(atr, FILE_TYPE="mask", UNIT="1", DATA_TYPE="bool")
        write_mintpy(d / "maskTempCoh.h5", {"mask": mask}, a_mask)
        a_geo = {k: v for k, v in atr.items() if not k.startswith("REF_")}
        a_geo.update(FILE_TYPE="geometry", UNIT="1")
        geo = {"height": crop(dem), "incidenceAngle": crop(inc), "azimuthAngle": crop(az),
               "slantRangeDistance": crop(slant),
               "shadowMask": crop(shadow, fillv=False, dtype=np.bool_),
               "waterMask": crop(~lakes_mask, fillv=False, dtype=np.bool_)}
        write_mintpy(d / "geometryGeo.h5", geo, a_geo,
                     units={"height": "m", "incidenceAngle": "degree", "azimuthAngle": "degree",
                            "slantRangeDistance": "m", "shadowMask": "1", "waterMask": "1"})
        covered = foot
        info[name] = {
            "crop_row0": int(r0), "crop_col0": int(c0), "length": int(length), "width": int(width),
            "x_first": float(WEST + c0 * PIX), "y_first": float(NORTH - r0 * PIX),
            "nodata_outside_swath": "0" if fill == 0 else "NaN",
            "swath_pixels": int(fp.sum()), "ref_y": int(ref_r - r0), "ref_x": int(ref_c - c0),
            "heading_deg": tr["HEADING"], "incidence_range_deg": [tr["inc_near"], tr["inc_far"]],
            "azimuth_angle_range_deg": [tr["az_near"], tr["az_far"]],
            "white_noise_sd_m_yr": tr["noise_sd"], "correlated_residual_sd_m_yr": tr["resid_sd"],
            "decorrelation_threshold_m_yr": 0.5, "mask_threshold": 0.7,
            "has_epsg_attribute": bool(tr["epsg"]),
        }
        for rec in rg_records:
            rid = int(rec["rg_id"][2:])
            pix = rg_ids == rid
            cov = float((pix & covered).sum() / pix.sum())
            rec[f"{name}_coverage"] = round(cov, 3)
            cvals = c_sens[pix]
            rec[f"{name}_c_median"] = round(float(np.median(cvals)), 4)
            rec[f"{name}_vlos_median_m_yr"] = round(float(np.median(v_los[pix])), 4)
    return info
