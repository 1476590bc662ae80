"""The generated sample region (data_samples/) checked against its own documented truth.

``data_samples/`` is the ttop region (a ground-temperature truth, ``generate.py`` default): the
checks of its TTOP law, land cover and warmed truths are in ``tests/test_sample_ttop.py``; the
second, small case (``generate.py --truth logistic``, generated once per session into a
temporary folder by the ``logistic_region`` fixture) is checked against its logistic law here.

Every check recomputes what it needs from the files with an independent method (pyproj.Geod
for metric pixel sizes, MintPy's own reader and unit-vector helper, scipy interpolation), so a
change in the generator that breaks a documented property fails here.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
from pyproj import Geod
from shapely.strtree import STRtree

GEOD = Geod(ellps="WGS84")
COVARIATES = ("dem", "maat", "pisr", "ndvi")
GTNP_COLUMNS = ["id", "date", "depth", "temperature", "flag", "dataset_id", "borehole_id",
                "site_id"]


# ----------------------------------------------------------------------------------------------
# helpers (independent of the generator)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def truth(sample_dir):
    return json.loads((sample_dir / "truth" / "truth.json").read_text())


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1).astype(np.float64), src.profile


@pytest.fixture(scope="module")
def cov(sample_dir):
    return {n: _read(sample_dir / "covariates" / f"{n}.tif")[0] for n in COVARIATES}


@pytest.fixture(scope="module")
def grid(sample_dir):
    with rasterio.open(sample_dir / "covariates" / "dem.tif") as src:
        return src.transform, src.height, src.width


def _slope_aspect(dem, transform):
    """Slope and downslope aspect [deg] with metric spacings from pyproj.Geod per row."""
    ny, nx = dem.shape
    lat = transform.f + (np.arange(ny) + 0.5) * transform.e
    lon0 = transform.c
    dx = np.array([GEOD.inv(lon0, la, lon0 + transform.a, la)[2] for la in lat])
    dy = np.array([GEOD.inv(lon0, la - transform.a / 2, lon0, la + transform.a / 2)[2]
                   for la in lat])
    gr, gc = np.gradient(dem)
    dzde = gc / dx[:, None]
    dzdn = -gr / dy[:, None]
    slope = np.degrees(np.arctan(np.hypot(dzde, dzdn)))
    aspect = np.degrees(np.arctan2(-dzde, -dzdn)) % 360
    return slope, aspect


@pytest.fixture(scope="module")
def terrain(cov, grid):
    return _slope_aspect(cov["dem"], grid[0])


def _rowcol(transform, lon, lat):
    col = np.floor((np.asarray(lon) - transform.c) / transform.a).astype(int)
    row = np.floor((np.asarray(lat) - transform.f) / transform.e).astype(int)
    return row, col


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------------------------
# grid, covariates, climate, truth
# ----------------------------------------------------------------------------------------------
def test_covariates_share_the_documented_grid(sample_dir, truth):
    g = truth["grid"]
    for name in COVARIATES + ("../truth/pzi_truth",):
        with rasterio.open(sample_dir / "covariates" / f"{name}.tif") as src:
            assert src.crs.to_epsg() == 4326
            assert (src.height, src.width) == (g["height"], g["width"])
            t = src.transform
            assert t.a == pytest.approx(g["pixel_deg"], rel=1e-12)
            assert t.e == pytest.approx(-g["pixel_deg"], rel=1e-12)
            assert (t.c, t.f) == (pytest.approx(g["west"], abs=1e-12),
                                  pytest.approx(g["north"], abs=1e-12))
            assert src.dtypes[0] == "float32" and src.nodata == -9999
            assert src.tags()["units"]
            assert src.profile.get("tiled") and src.overviews(1), "a COG has tiles and overviews"


def test_terrain_is_mountainous_not_noise(cov, terrain):
    dem = cov["dem"]
    slope, _ = terrain
    assert 2750 <= dem.min() and dem.max() <= 5250 and dem.max() - dem.min() > 2000
    med = np.median(slope)
    assert 8 < med < 30 and np.percentile(slope, 95) < 50
    # spatially correlated relief: neighbouring pixels differ far less than the field varies
    assert np.abs(np.diff(dem, axis=1)).mean() < 0.05 * dem.std()


def test_maat_is_the_lapse_rate_downscaling_of_the_coarse_grid(sample_dir, cov, truth):
    from scipy.ndimage import map_coordinates

    tc, prof = _read(sample_dir / "climate" / "maat_coarse.tif")
    zc, _ = _read(sample_dir / "climate" / "elevation_coarse.tif")
    t = prof["transform"]
    assert t.a == pytest.approx(0.05) and prof["crs"].to_epsg() == 4326
    lapse = truth["climate"]["lapse_rate_c_per_km"] / 1000.0
    assert lapse == pytest.approx(-6.0e-3)
    ny, nx = cov["dem"].shape
    g = truth["grid"]
    lon = g["west"] + (np.arange(nx) + 0.5) * g["pixel_deg"]
    lat = g["north"] - (np.arange(ny) + 0.5) * g["pixel_deg"]
    ci = (lon - t.c) / t.a - 0.5
    ri = (lat - t.f) / t.e - 0.5
    rr, cc = np.meshgrid(ri, ci, indexing="ij")
    inner = (rr >= 0) & (rr <= tc.shape[0] - 1) & (cc >= 0) & (cc <= tc.shape[1] - 1)
    interp = map_coordinates(tc - lapse * zc, [rr, cc], order=1)
    expect = interp + lapse * cov["dem"]
    assert np.abs(expect - cov["maat"])[inner].max() < 2e-3
    # the coarse grid itself follows the lapse rate (regression slope over its cells)
    slope = np.polyfit(zc.ravel(), tc.ravel(), 1)[0]
    assert slope == pytest.approx(lapse, rel=0.15)
    # anchor: about -2.7 degC at 3370 m
    near = np.abs(cov["dem"] - 3370) < 10
    assert np.median(cov["maat"][near]) == pytest.approx(-2.7, abs=0.6)


def test_pisr_follows_sun_geometry(cov, terrain):
    """Sunny slopes get more than shady ones; flat ground stays below the extraterrestrial value."""
    slope, aspect = terrain
    pisr = cov["pisr"]
    steep = (slope > 25) & (slope < 35)
    south = steep & (np.abs(aspect - 180) < 20)
    north = steep & ((aspect < 20) | (aspect > 340))
    assert pisr[south].mean() > pisr[north].mean() + 60
    # annual mean daily extraterrestrial irradiance on a horizontal plane at 38.5 N
    # (Duffie & Beckman 2013, eq. 1.10.3), an independent upper bound for clear-sky values
    phi = math.radians(38.5)
    h0 = []
    for n in range(1, 366):
        dec = math.radians(23.45 * math.sin(math.radians(360 * (284 + n) / 365)))
        ws = math.acos(-math.tan(phi) * math.tan(dec))
        g = 1367 * (1 + 0.033 * math.cos(math.radians(360 * n / 365)))
        h0.append(g / math.pi * (math.cos(phi) * math.cos(dec) * math.sin(ws)
                                 + ws * math.sin(phi) * math.sin(dec)))
    h0 = float(np.mean(h0))
    flat = slope < 3
    assert 0.6 * h0 < pisr[flat].mean() < h0


def test_truth_is_the_documented_logistic_function(logistic_region):
    """The second case's truth: sigmoid of the documented linear law of MAAT, PISR and NDVI."""
    truth = json.loads((logistic_region / "truth" / "truth.json").read_text())
    assert "truth_kind" not in truth
    cov = {n: _read(logistic_region / "covariates" / f"{n}.tif")[0] for n in COVARIATES}
    m = truth["truth_model"]
    lg = (m["b0"] + m["b_maat_per_c"] * cov["maat"]
          + m["b_pisr_per_100w"] * (cov["pisr"] - m["pisr_ref_w_m2"]) / 100
          + m["b_ndvi"] * cov["ndvi"])
    p, _ = _read(logistic_region / "truth" / "pzi_truth.tif")
    assert np.abs(_sigmoid(lg) - p).max() < 1e-5
    assert 0 < p.min() and p.max() < 1
    # the permafrost limit (p = 0.5) lies around 3500-3900 m
    band = (p > 0.45) & (p < 0.55)
    assert 3450 < np.median(cov["dem"][band]) < 3900


def test_ttop_truth_limit_lies_in_the_documented_band(sample_dir, cov, truth):
    """The committed region's truth is TTOP (tests/test_sample_ttop.py checks the law): its
    PZI = 0.5 cells lie around 3600-4200 m (meadow and fine ground keep thawing higher up than
    debris), and debris is colder than the rest of the ground."""
    assert truth["truth_kind"] == "ttop"
    p, _ = _read(sample_dir / "truth" / "pzi_truth.tif")
    band = (p > 0.45) & (p < 0.55)
    assert 3600 < np.median(cov["dem"][band]) < 4200
    area = truth["truth_model"]["area"]
    assert area["mean_pzi_debris"] > area["mean_pzi_other_ground"] + 0.2


# ----------------------------------------------------------------------------------------------
# rock glaciers
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rgs(sample_dir):
    gdf = pyogrio.read_dataframe(sample_dir / "inventory" / "rock_glaciers.gpkg")
    t = pd.read_csv(sample_dir / "truth" / "rock_glaciers_truth.csv")
    return gdf, t


def test_rock_glacier_inventory_matches_its_truth(rgs):
    gdf, t = rgs
    assert len(gdf) >= 300 and gdf.crs.to_epsg() == 4326
    assert {"rg_id", "activity", "area_m2"} <= set(gdf.columns)
    assert list(gdf.rg_id) == list(t.rg_id)
    assert set(gdf.activity) == {"active", "transitional", "relict"}
    assert (gdf.activity.to_numpy() == t.activity_true.to_numpy()).all()
    assert ((t.activity_true != "relict") == (t.intact_true == 1)).all()
    v = t.set_index("activity_true").v_downslope_m_yr
    assert v["relict"].eq(0).all()
    assert v["transitional"].between(0.02, 0.07).all()
    assert v["active"].between(0.15, 1.5).all()
    areas = np.array([abs(GEOD.geometry_area_perimeter(g)[0]) for g in gdf.geometry])
    np.testing.assert_allclose(areas, gdf.area_m2, rtol=1e-3)


def test_rock_glaciers_are_separate_elongated_tongues_outside_masks(sample_dir, rgs):
    gdf, _ = rgs
    geoms = list(gdf.geometry)
    assert all(g.is_valid and g.geom_type == "Polygon" for g in geoms)
    tree = STRtree(geoms)
    for i, g in enumerate(geoms):
        assert [j for j in tree.query(g, predicate="intersects") if j != i] == []
    masks = pyogrio.read_dataframe(sample_dir / "masks" / "glaciers_lakes.gpkg")
    mtree = STRtree(list(masks.geometry))
    assert all(len(mtree.query(g, predicate="intersects")) == 0 for g in geoms)
    # elongation and size from the minimum rotated rectangle, in metres
    ratios, lengths = [], []
    for g in geoms:
        rect = g.minimum_rotated_rectangle.exterior.coords
        sides = [GEOD.inv(*rect[k], *rect[k + 1])[2] for k in range(2)]
        ratios.append(max(sides) / min(sides))
        lengths.append(max(sides))
    assert np.mean(np.array(ratios) > 1.3) > 0.9
    assert 150 < np.min(lengths) and np.max(lengths) < 1600


def test_rock_glacier_fronts_lie_on_slopes_near_the_limit(rgs, cov, terrain, grid, truth):
    gdf, t = rgs
    slope, _ = terrain
    transform = grid[0]
    r, c = _rowcol(transform, t.front_lon, t.front_lat)
    assert (r == t.front_row).all() and (c == t.front_col).all()
    np.testing.assert_allclose(cov["dem"][r, c], t.front_elev_m, atol=0.01)
    assert (slope[r, c] > 5).mean() > 0.9
    # the front is the lowest pixel centre inside the outline
    from rasterio.features import geometry_mask

    for _, row in t.sample(40, random_state=0).iterrows():
        geom = gdf.geometry[gdf.rg_id == row.rg_id].iloc[0]
        inside = ~geometry_mask([geom], out_shape=cov["dem"].shape, transform=transform)
        assert cov["dem"][inside].min() == pytest.approx(row.front_elev_m, abs=0.01)
    # fronts sit in the documented MAAT window (centre -5 degC), many in the truth's transition
    # (on debris, colder than the ground around it) and some relict
    centre = truth["truth_model"]["rock_glacier_maat_window_centre_c"]
    assert abs(t.front_maat_c.median() - centre) < 0.5
    assert t.p_truth_front.between(0.1, 0.9).mean() > 0.4
    assert 0.05 < (t.intact_true == 0).mean() < 0.5


def test_intact_fraction_rises_as_front_maat_falls(rgs):
    _, t = rgs
    terciles = pd.qcut(t.front_maat_c, 3, labels=["cold", "mid", "warm"])
    frac = t.groupby(terciles, observed=True).intact_true.mean()
    assert frac["cold"] > frac["mid"] > frac["warm"]
    # intact ~ Bernoulli(p_truth at the front): counts agree within 3 binomial sd
    p = t.p_truth_front.to_numpy()
    assert abs(t.intact_true.sum() - p.sum()) < 3 * math.sqrt((p * (1 - p)).sum())


# ----------------------------------------------------------------------------------------------
# boreholes
# ----------------------------------------------------------------------------------------------
def test_boreholes_presence_matches_truth_probability(sample_dir, cov, grid, truth):
    b = pd.read_csv(sample_dir / "boreholes" / "boreholes.csv")
    assert list(b.columns) == ["borehole_id", "lon", "lat", "elevation_m", "presence", "magt_c",
                               "year"]
    assert len(b) >= 100 and b.borehole_id.is_unique
    n1, n0 = int(b.presence.sum()), int((b.presence == 0).sum())
    # the road runs through valley floors and meadow: about two thirds with permafrost
    assert 1.5 <= n1 / n0 <= 3.0
    assert (n1, n0) == (truth["boreholes"]["n_permafrost"], truth["boreholes"]["n_no_permafrost"])
    p_img, _ = _read(sample_dir / "truth" / "pzi_truth.tif")
    r, c = _rowcol(grid[0], b.lon, b.lat)
    p = p_img[r, c]
    assert abs(n1 - p.sum()) < 3 * math.sqrt((p * (1 - p)).sum())
    # MAGT consistent with presence (MAGT = the borehole's own TTOP, TTOP + sigma e); it scatters
    # around the truth's TTOP at the cell by the class sigma (0.6-1.3 degC); elevation from the DEM
    assert (b.magt_c[b.presence == 1] < 0).all() and (b.magt_c[b.presence == 0] > 0).all()
    ttop, _ = _read(sample_dir / "truth" / "ttop_truth.tif")
    dev = b.magt_c.to_numpy() - ttop[r, c]
    assert np.abs(dev).max() < 4 * 1.3 and abs(dev.mean()) < 0.5
    assert np.corrcoef(b.magt_c, ttop[r, c])[0, 1] > 0.7
    np.testing.assert_allclose(b.elevation_m, cov["dem"][r, c], atol=0.06)


def test_boreholes_are_clustered(sample_dir):
    b = pd.read_csv(sample_dir / "boreholes" / "boreholes.csv")
    lon, lat = b.lon.to_numpy(), b.lat.to_numpy()
    nn = []
    for i in range(len(b)):
        d = GEOD.inv(np.full(len(b), lon[i]), np.full(len(b), lat[i]), lon, lat)[2]
        d[i] = np.inf
        nn.append(d.min())
    # a random scatter of this many points over ~1150 km2 would have a median NN of ~1.4 km
    assert np.median(nn) < 500


def test_gtnp_records_follow_the_real_format_and_their_truth(sample_dir, truth):
    df = pd.read_csv(sample_dir / "boreholes" / "gtnp_long.csv", dtype={"flag": str})
    assert list(df.columns) == GTNP_COLUMNS
    meta = json.loads((sample_dir / "boreholes" / "gtnp_metadata.json").read_text())
    assert isinstance(meta, list) and len(meta) == len(truth["gtnp"]["boreholes"]) >= 5
    for m, tb in zip(meta, truth["gtnp"]["boreholes"], strict=True):
        assert m["id"] == tb["dataset_id"] and m["borehole"]["id"] == tb["borehole_id"]
        loc = m["borehole"]["location"]
        assert (loc["longitude"], loc["latitude"]) == (tb["lon"], tb["lat"])
        rec = df[df.dataset_id == tb["dataset_id"]]
        dates = pd.to_datetime(rec.date)
        span = (dates.max() - dates.min()).days
        deep = rec[(rec.depth == 15.0) & rec.temperature.notna()]
        if tb["kind"] == "too_short":
            assert span < 365
            continue
        assert span > 5 * 365
        # MAGT at 15 m (no annual wave left there) equals the documented truth
        assert deep.temperature.mean() == pytest.approx(tb["magt_c_at_15m"], abs=0.05)
        # presence: the shallowest sensor below the ALT stays <= 0 degC all along
        yearly_max = rec.dropna(subset=["temperature"]).groupby("depth").temperature.max()
        if tb["presence"]:
            below = [z for z in yearly_max.index if z > tb["alt_m"] + 0.6]
            above = [z for z in yearly_max.index if z < tb["alt_m"] - 0.6]
            assert (yearly_max[below] < 0).all() and (yearly_max[above] > 0).all()
        else:
            assert (yearly_max > 0).all()
        if tb["kind"] == "gaps":
            days = np.sort(dates.unique())
            assert np.diff(days).max() > np.timedelta64(150, "D")
            assert (rec.flag == "no data entry").sum() > 100
            assert rec.temperature[rec.flag == "no data entry"].isna().all()


@pytest.mark.realdata
def test_gtnp_format_mirrors_real_exports(sample_dir, realdata):
    real_dir = realdata / "tsp_gtnp_permos_boreholes"
    real_cols = pd.read_csv(real_dir / "gtnp2026.csv", nrows=2).columns.tolist()
    ours = pd.read_csv(sample_dir / "boreholes" / "gtnp_long.csv", nrows=2).columns.tolist()
    assert ours == real_cols

    def keys(d, prefix=""):
        out = set()
        for k, v in d.items():
            out.add(prefix + k)
            if isinstance(v, dict):
                out |= keys(v, prefix + k + ".")
        return out

    real = json.loads((real_dir / "gtnp2026_metadata.json").read_text())[0]
    mine = json.loads((sample_dir / "boreholes" / "gtnp_metadata.json").read_text())[0]
    assert keys(real) == keys(mine)


# ----------------------------------------------------------------------------------------------
# InSAR (MintPy)
# ----------------------------------------------------------------------------------------------
MINTPY_FILES = {"velocity.h5": "velocity", "temporalCoherence.h5": "temporalCoherence",
                "maskTempCoh.h5": "mask", "geometryGeo.h5": "geometry"}


@pytest.mark.parametrize("track", ["asc", "desc"])
def test_mintpy_files_read_back_with_documented_grid(sample_dir, truth, track):
    from mintpy.utils import readfile

    info = truth["insar"][track]
    g = truth["grid"]
    for fname, ftype in MINTPY_FILES.items():
        path = str(sample_dir / "insar" / track / fname)
        atr = readfile.read_attribute(path)
        assert atr["FILE_TYPE"] == ftype
        assert (int(atr["LENGTH"]), int(atr["WIDTH"])) == (info["length"], info["width"])
        assert float(atr["X_FIRST"]) == pytest.approx(info["x_first"], abs=1e-12)
        assert float(atr["Y_FIRST"]) == pytest.approx(info["y_first"], abs=1e-12)
        assert float(atr["X_STEP"]) == pytest.approx(g["pixel_deg"], rel=1e-12)
        assert float(atr["Y_STEP"]) == pytest.approx(-g["pixel_deg"], rel=1e-12)
        # the MintPy grid is the covariate grid cropped: whole-pixel offsets
        off_x = (float(atr["X_FIRST"]) - g["west"]) / g["pixel_deg"]
        off_y = (g["north"] - float(atr["Y_FIRST"])) / g["pixel_deg"]
        assert off_x == pytest.approx(round(off_x), abs=1e-6)
        assert off_y == pytest.approx(round(off_y), abs=1e-6)
        assert atr["X_UNIT"] == atr["Y_UNIT"] == "degrees"
        assert ("EPSG" in atr) == info["has_epsg_attribute"]
        assert atr["PLATFORM"] == "Sen" and atr["ORBIT_DIRECTION"].lower().startswith(track[:3])
        data, _ = readfile.read(path)
        assert data.shape == (info["length"], info["width"])
    atr = readfile.read_attribute(str(sample_dir / "insar" / track / "velocity.h5"))
    assert atr["UNIT"] == "m/year"
    assert ("EPSG" in atr) == (track == "asc")
    az = readfile.read(str(sample_dir / "insar" / track / "geometryGeo.h5"),
                       datasetName="azimuthAngle")[0]
    from mintpy.utils import utils0

    assert np.nanmedian(az[az != 0]) == pytest.approx(
        utils0.heading2azimuth_angle(float(atr["HEADING"])), abs=1.0)


@pytest.mark.parametrize("track", ["asc", "desc"])
def test_mintpy_nodata_reference_and_mask(sample_dir, truth, track):
    from mintpy.utils import readfile

    d = str(sample_dir / "insar" / track)
    vel, atr = readfile.read(d + "/velocity.h5", datasetName="velocity")
    coh = readfile.read(d + "/temporalCoherence.h5")[0]
    mask = readfile.read(d + "/maskTempCoh.h5")[0]
    inc = readfile.read(d + "/geometryGeo.h5", datasetName="incidenceAngle")[0]
    ry, rx = int(atr["REF_Y"]), int(atr["REF_X"])
    assert vel[ry, rx] == 0 and mask[ry, rx]
    lat = float(atr["Y_FIRST"]) + (ry + 0.5) * float(atr["Y_STEP"])
    assert float(atr["REF_LAT"]) == pytest.approx(lat, abs=1e-9)
    if truth["insar"][track]["nodata_outside_swath"] == "NaN":
        outside = np.isnan(inc)
        assert np.isnan(vel[outside]).all() and np.isnan(coh[outside]).all()
    else:
        outside = inc == 0
        assert not np.isnan(vel).any() and (vel[outside] == 0).all()
    assert outside.sum() > 1000 and not mask[outside].any()
    inside = ~outside
    np.testing.assert_array_equal(mask[inside], coh[inside] >= 0.7)
    assert np.nanmedian(coh[inside & (coh > 0)]) > 0.75
    assert 0.8 < np.nanstd(vel[mask]) * 1000 < 40      # mm/yr scatter on stable ground
    assert (inc[inside] > 30).all() and (inc[inside] < 46).all()


def _track_arrays(sample_dir, track, shape):
    """velocity, mask, inc, az placed on the full covariate grid (NaN outside the crop)."""
    from mintpy.utils import readfile

    d = str(sample_dir / "insar" / track)
    atr = readfile.read_attribute(d + "/velocity.h5")
    r0 = round((38.65 - float(atr["Y_FIRST"])) * 1800)
    c0 = round((float(atr["X_FIRST"]) - 98.85) * 1800)
    out = {}
    for key, f, ds in [("vel", "velocity.h5", "velocity"), ("mask", "maskTempCoh.h5", "mask"),
                       ("inc", "geometryGeo.h5", "incidenceAngle"),
                       ("az", "geometryGeo.h5", "azimuthAngle")]:
        a = readfile.read(d + "/" + f, datasetName=ds)[0].astype(np.float64)
        full = np.full(shape, np.nan)
        full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]] = a
        out[key] = full
    return out


@pytest.mark.parametrize("track", ["asc", "desc"])
def test_los_velocity_is_downslope_motion_projected(sample_dir, rgs, terrain, grid, track):
    """V_LOS = C V_downslope with C from MintPy's own ENU->LOS unit vector (Notti et al. 2014)."""
    from mintpy.utils import utils0
    from rasterio.features import rasterize

    gdf, t = rgs
    slope, aspect = terrain
    shape_ = slope.shape
    a = _track_arrays(sample_dir, track, shape_)
    le, ln, lu = utils0.get_unit_vector4component_of_interest(a["inc"], a["az"], comp="enu2los")
    b, asp = np.deg2rad(slope), np.deg2rad(aspect)
    c = le * np.cos(b) * np.sin(asp) + ln * np.cos(b) * np.cos(asp) - lu * np.sin(b)
    ids = rasterize([(g, i + 1) for i, g in enumerate(gdf.geometry)], out_shape=shape_,
                    transform=grid[0], fill=0, dtype="int32")
    v_true = np.zeros(shape_)
    for i, v in enumerate(t.v_downslope_m_yr):
        v_true[ids == i + 1] = v
    v_los = c * v_true
    good = (a["mask"] == 1) & np.isfinite(a["vel"]) & (ids > 0)
    n_checked, n_ok = 0, 0
    for i, row in t.iterrows():
        pix = good & (ids == i + 1)
        if row.activity_true != "active" or pix.sum() < 5:
            continue
        resid = np.median(a["vel"][pix] - v_los[pix])
        n_checked += 1
        n_ok += abs(resid) < 0.01 + 0.05 * np.abs(np.median(v_los[pix]))
    assert n_checked >= 20 and n_ok / n_checked > 0.9
    relict = good & np.isin(ids, np.nonzero(t.activity_true.to_numpy() == "relict")[0] + 1)
    assert abs(np.median(a["vel"][relict])) < 0.005
    # fast areas decorrelate: most pixels with |V_LOS| > 0.5 m/yr are masked out
    inside = np.isfinite(a["vel"]) & (np.abs(v_los) > 0.5)
    if inside.sum():
        assert (a["mask"][inside] == 0).mean() > 0.9


def test_tracks_cover_different_parts(rgs):
    _, t = rgs
    both = (t.asc_coverage > 0.5) & (t.desc_coverage > 0.5)
    only_one = (t.asc_coverage > 0.5) ^ (t.desc_coverage > 0.5)
    none = (t.asc_coverage == 0) & (t.desc_coverage == 0)
    assert both.sum() > 50 and only_one.sum() > 50 and 1 <= none.sum() <= 20


# ----------------------------------------------------------------------------------------------
# priors, regions, masks
# ----------------------------------------------------------------------------------------------
def test_prior_maps_have_their_documented_bias(sample_dir, truth):
    p, _ = _read(sample_dir / "truth" / "pzi_truth.tif")
    with rasterio.open(sample_dir / "priors" / "survey_map.tif") as src:
        survey = src.read(1)
        assert src.transform.a == pytest.approx(0.005) and src.nodata == 255
        assert src.dtypes[0] == "uint8"
    assert set(np.unique(survey)) == {1, 2, 255}
    k = 9
    pm = p.reshape(p.shape[0] // k, k, p.shape[1] // k, k).mean(axis=(1, 3))
    valid = survey != 255
    assert (survey[valid] == 1).mean() > (pm[valid] >= 0.5).mean() + 0.03  # overestimates
    np.testing.assert_array_equal(survey[valid] == 1, pm[valid] >= 0.35 - 1e-6)
    prior, prof = _read(sample_dir / "priors" / "pzi_prior.tif")
    assert prof["transform"].a == pytest.approx(0.01)
    k = 18
    pm2 = p.reshape(p.shape[0] // k, k, p.shape[1] // k, k).mean(axis=(1, 3))
    bias = (prior - pm2).mean()
    assert bias < -0.03
    assert bias == pytest.approx(truth["priors"]["pzi_prior_mean_minus_truth_block_mean"], abs=1e-3)


def test_basins_tile_the_domain_and_masks_are_sensible(sample_dir, cov, grid, truth):
    basins = pyogrio.read_dataframe(sample_dir / "regions" / "basins.gpkg")
    assert len(basins) == 3 and basins.name.is_unique and basins.crs.to_epsg() == 4326
    g = truth["grid"]
    from shapely.geometry import box
    from shapely.ops import unary_union

    dom = box(g["west"], g["south"], g["east"], g["north"])
    assert unary_union(list(basins.geometry)).symmetric_difference(dom).area < 1e-10
    geoms = list(basins.geometry)
    for i in range(3):
        for j in range(i + 1, 3):
            assert geoms[i].intersection(geoms[j]).area < 1e-12
    masks = pyogrio.read_dataframe(sample_dir / "masks" / "glaciers_lakes.gpkg")
    assert set(masks.kind) == {"glacier", "lake"}
    assert 3 <= (masks.kind == "lake").sum() <= 6
    from rasterio.features import geometry_mask

    dem = cov["dem"]
    for geom, kind in zip(masks.geometry, masks.kind, strict=True):
        inside = ~geometry_mask([geom], out_shape=dem.shape, transform=grid[0])
        if kind == "glacier":
            assert np.median(dem[inside]) > 4700
        elif inside.any():
            assert dem[inside].std() < 0.01     # a lake surface is flat


# ----------------------------------------------------------------------------------------------
# size and determinism
# ----------------------------------------------------------------------------------------------
def _hashes(root: Path) -> dict[str, str]:
    """sha256 of every generated file (the generator's code and README excluded)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix not in (".py", ".pyc", ".md")
            and "__pycache__" not in p.parts}


def test_sample_region_is_small(sample_dir):
    # 25 MiB for the logistic region before issue 22; the ttop region adds three rasters (the
    # land-cover covariate, its true map and the TTOP truth, about 2.2 MiB)
    total = sum(p.stat().st_size for p in sample_dir.rglob("*") if p.is_file()
                and "__pycache__" not in p.parts)
    assert total < 28 * 2**20


@pytest.mark.slow
def test_regeneration_is_byte_identical(sample_dir, tmp_path):
    """Regenerating with the default (ttop) truth (about 15-20 s) reproduces every committed
    file byte for byte.  The logistic case's byte identity is in tests/test_sample_ttop.py."""
    script = sample_dir / "generate.py"
    subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], check=True,
                   capture_output=True, timeout=300)
    assert _hashes(tmp_path) == _hashes(sample_dir)
