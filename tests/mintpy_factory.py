"""Factory for small synthetic MintPy tracks over a planar slope with known velocities.

Writes real MintPy HDF5 files (``mintpy.utils.writefile``) and a DEM GeoTIFF, so the
readers and the science are exercised end to end against a known truth:

* the DEM is a plane with slope ``slope_deg`` facing ``aspect_deg`` (downslope,
  clockwise from north) in true east/north metres;
* each outline (a rectangle) moves downslope at a known speed, so its LOS velocity is
  ``C * v`` with ``C`` from the geometry (plus Gaussian noise of ``noise`` m/yr);
* no-data is written the way MintPy writes it: 0 in a border and NaN in a corner.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Transformer

LON0, LAT0 = 99.0, 38.5


@dataclass
class SyntheticTrack:
    folder: Path
    velocity: Path
    geometry: Path | None
    coherence: Path
    mask: Path
    dem: Path
    outlines: gpd.GeoDataFrame
    speeds: np.ndarray
    sensitivity: float
    transform: Affine
    crs: CRS
    attrs: dict


def _plane(e, n, slope_deg, aspect_deg, z0=4000.0):
    t = np.tan(np.deg2rad(slope_deg))
    a = np.deg2rad(aspect_deg)
    return z0 - t * (e * np.sin(a) + n * np.cos(a))


def make_track(
    folder: Path,
    *,
    orbit: str = "ASCENDING",
    incidence: float = 39.0,
    azimuth: float | None = None,
    slope_deg: float = 20.0,
    aspect_deg: float = 90.0,
    crs: str = "geo",
    shape: tuple[int, int] = (120, 160),
    speeds=(0.0, 0.005, 0.05, 0.4, 1.5),
    noise: float = 0.002,
    seed: int = 0,
    with_geometry: bool = True,
    with_azimuth: bool = True,
    epsg_attr: bool = True,
    utm_zone_attr: bool = False,
    coherence_low_outline: int | None = None,
) -> SyntheticTrack:
    """Write velocity.h5, geometryGeo.h5, temporalCoherence.h5, maskTempCoh.h5 and dem.tif."""
    from mintpy.utils import utils0, writefile

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = shape
    if azimuth is None:
        azimuth = 102.0 if orbit == "ASCENDING" else -102.0
    heading = float(utils0.azimuth2heading_angle(azimuth))
    if crs == "geo":
        step = 1.0 / 1800.0
        tr = Affine(step, 0, LON0, 0, -step, LAT0 + h * step)
        crs_obj = CRS.from_epsg(4326)
    else:
        step = 30.0
        crs_obj = CRS.from_epsg(32647)  # UTM 47N, central meridian 99 E
        x0, y0 = Transformer.from_crs(4326, crs_obj, always_xy=True).transform(LON0, LAT0)
        tr = Affine(step, 0, round(x0), 0, -step, round(y0) + h * step)
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    xs, ys = tr @ (cols, rows)
    lon, lat = Transformer.from_crs(crs_obj, 4326, always_xy=True).transform(xs, ys)
    # local true east/north metres around the scene centre (azimuthal equidistant)
    aeqd = CRS.from_proj4(f"+proj=aeqd +lat_0={lat.mean()} +lon_0={lon.mean()} +datum=WGS84")
    e, n = Transformer.from_crs(4326, aeqd, always_xy=True).transform(lon, lat)
    dem = _plane(e, n, slope_deg, aspect_deg).astype(np.float32)

    th, al = np.deg2rad(incidence), np.deg2rad(azimuth)
    b, a = np.deg2rad(slope_deg), np.deg2rad(aspect_deg)
    c = (-np.sin(th) * np.sin(al) * np.cos(b) * np.sin(a)
         + np.sin(th) * np.cos(al) * np.cos(b) * np.cos(a)
         - np.cos(th) * np.sin(b))

    # outlines: rectangles in a row across the scene (pixel units -> map units)
    polys, v_true = [], []
    vel = np.zeros(shape, np.float64)
    k = len(speeds)
    for i, v in enumerate(speeds):
        c0 = 10 + i * (w - 20) // k
        c1 = c0 + (w - 20) // k - 6
        r0, r1 = 20, h - 20
        x_a, y_a = tr @ (c0, r0)
        x_b, y_b = tr @ (c1, r1)
        polys.append(shapely.box(min(x_a, x_b), min(y_a, y_b), max(x_a, x_b), max(y_a, y_b)))
        vel[r0:r1, c0:c1] = v
        v_true.append(v)
    vlos = c * vel + rng.normal(0, noise, shape)
    std = np.full(shape, noise, np.float32)
    coh = np.clip(rng.normal(0.95, 0.02, shape), 0, 1).astype(np.float32)
    if coherence_low_outline is not None:
        i = coherence_low_outline
        c0 = 10 + i * (w - 20) // k
        coh[20:h - 20, c0:c0 + (w - 20) // k - 6] = 0.3
    # reference point: a stable pixel; MintPy sets it to exactly 0
    ref_y, ref_x = 5, w // 2
    vlos -= vlos[ref_y, ref_x]
    vlos = vlos.astype(np.float32)
    # MintPy-style no-data: zero border rows, NaN corner
    vlos[:3, :] = 0.0
    std[:3, :] = 0.0
    coh[:3, :] = 0.0
    vlos[-4:, -4:] = np.nan
    vlos[ref_y, ref_x] = 0.0
    std[ref_y, ref_x] = 0.0

    attrs = {
        "FILE_TYPE": "velocity", "UNIT": "m/year", "LENGTH": str(h), "WIDTH": str(w),
        "X_FIRST": repr(tr.c), "Y_FIRST": repr(tr.f), "X_STEP": repr(tr.a), "Y_STEP": repr(tr.e),
        "X_UNIT": "degrees" if crs == "geo" else "meters",
        "Y_UNIT": "degrees" if crs == "geo" else "meters",
        "ORBIT_DIRECTION": orbit, "HEADING": repr(heading), "ANTENNA_SIDE": "-1",
        "PLATFORM": "Sen", "WAVELENGTH": "0.05546576", "CENTER_INCIDENCE_ANGLE": repr(incidence),
        "REF_Y": str(ref_y), "REF_X": str(ref_x),
        "REF_LAT": repr(float(tr.f + (ref_y + 0.5) * tr.e)),
        "REF_LON": repr(float(tr.c + (ref_x + 0.5) * tr.a)),
        "START_DATE": "20170101", "END_DATE": "20211231",
    }
    if epsg_attr:
        attrs["EPSG"] = str(crs_obj.to_epsg())
    if utm_zone_attr:
        attrs["UTM_ZONE"] = "47N"
    kw = dict(print_msg=False)
    vfile = folder / "velocity.h5"
    writefile.write({"velocity": vlos, "velocityStd": std}, str(vfile), metadata=dict(attrs), **kw)
    cfile = folder / "temporalCoherence.h5"
    writefile.write({"temporalCoherence": coh}, str(cfile),
                    metadata={**attrs, "FILE_TYPE": "temporalCoherence", "UNIT": "1"}, **kw)
    mfile = folder / "maskTempCoh.h5"
    writefile.write({"mask": coh >= 0.7}, str(mfile),
                    metadata={**attrs, "FILE_TYPE": "mask", "UNIT": "1"}, **kw)
    gfile = None
    if with_geometry:
        gfile = folder / "geometryGeo.h5"
        inc = np.full(shape, incidence, np.float32)
        inc[:3, :] = 0.0
        geo = {"height": dem, "incidenceAngle": inc,
               "slantRangeDistance": np.full(shape, 850000.0, np.float32),
               "shadowMask": np.zeros(shape, np.bool_), "waterMask": np.ones(shape, np.bool_)}
        if with_azimuth:
            geo["azimuthAngle"] = np.full(shape, azimuth, np.float32)
        writefile.write(geo, str(gfile), metadata={**attrs, "FILE_TYPE": "geometry", "UNIT": "1"},
                        **kw)
    dfile = folder / "dem.tif"
    with rasterio.open(dfile, "w", driver="GTiff", height=h, width=w, count=1,
                       dtype="float32", crs=crs_obj, transform=tr, nodata=-9999.0) as dst:
        dst.write(dem, 1)
    gdf = gpd.GeoDataFrame({"rg_id": [f"RG{i:03d}" for i in range(k)],
                            "name": [f"glacier {i}" for i in range(k)],
                            "v_true": v_true}, geometry=polys, crs=crs_obj)
    return SyntheticTrack(folder=folder, velocity=vfile, geometry=gfile, coherence=cfile,
                          mask=mfile, dem=dfile, outlines=gdf, speeds=np.asarray(v_true),
                          sensitivity=float(c), transform=tr, crs=crs_obj, attrs=attrs)
