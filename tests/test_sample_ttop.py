"""The ttop sample region (``data_samples/``, ``generate.py``'s default): a ground-temperature truth.

Unit tests of the formulas (degree-days of a sinusoidal year, TTOP, PZI from TTOP) and the
checks of the committed region's files run fast.  That regenerating reproduces the committed
``data_samples/`` byte for byte is ``tests/test_data_samples.py::
test_regeneration_is_byte_identical``; the second, small case (``--truth logistic``, generated
into a temporary folder by the ``logistic_region`` fixture, marked ``slow``) is checked here
against the hashes of the logistic region committed before issue 22.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples"
if str(SAMPLE) not in sys.path:
    sys.path.insert(0, str(SAMPLE))

from samplegen import ttop as T  # noqa: E402


# ----------------------------------------------------------------------------------------------
# formulas
# ----------------------------------------------------------------------------------------------
def _numeric_degree_days(maat, amp, period=365.0, n=400_001):
    t = np.linspace(0.0, period, n)
    temp = maat + amp * np.sin(2 * np.pi * t / period)
    return (np.trapezoid(np.maximum(temp, 0.0), t), np.trapezoid(np.maximum(-temp, 0.0), t))


@pytest.mark.parametrize("maat", [-15.0, -12.5, -8.0, -4.5, -1.0, 0.0, 0.7, 3.0, 12.5, 14.0])
@pytest.mark.parametrize("amp", [6.0, 12.5])
def test_degree_days_are_the_integral_of_the_sinusoidal_year(maat, amp):
    tdd, fdd = T.degree_days(np.array([maat]), amp)
    tdd_n, fdd_n = _numeric_degree_days(maat, amp)
    assert tdd[0] == pytest.approx(tdd_n, abs=1e-3)
    assert fdd[0] == pytest.approx(fdd_n, abs=1e-3)
    assert tdd[0] >= 0 and fdd[0] >= 0
    assert tdd[0] - fdd[0] == pytest.approx(365.0 * maat, abs=1e-6)


def test_degree_days_at_zero_maat_are_a_over_pi_per_year():
    tdd, fdd = T.degree_days(np.array([0.0]), 10.0)
    assert tdd[0] == pytest.approx(365.0 * 10.0 / np.pi)
    assert fdd[0] == pytest.approx(tdd[0])


def test_ttop_with_unit_factors_is_maat():
    maat = np.linspace(-14, 6, 41)
    tdd, fdd = T.degree_days(maat)
    np.testing.assert_allclose(T.ttop(tdd, fdd, 1.0, 1.0, 1.0), maat, atol=1e-9)


def test_n_factors_and_conductivity_ratio_move_ttop_the_physical_way():
    maat = np.linspace(-12, 4, 33)  # all with both a thaw and a freeze season at A = 12.5
    tdd, fdd = T.degree_days(maat)
    base = T.ttop(tdd, fdd, 1.0, 1.0, 1.0)
    assert (T.ttop(tdd, fdd, 0.8, 1.0, 1.0) < base).all()      # less summer heat: colder
    assert (T.ttop(tdd, fdd, 1.0, 0.5, 1.0) > base).all()      # snow insulates: warmer
    assert (T.ttop(tdd, fdd, 1.0, 1.0, 0.7) < base).all()      # thermal offset: colder
    # the TTOP equation by hand at MAAT -4, nt 1.2, nf 0.4, rk 0.9
    td, fd = T.degree_days(np.array([-4.0]))
    assert T.ttop(td, fd, 1.2, 0.4, 0.9)[0] == pytest.approx((0.9 * 1.2 * td[0]
                                                              - 0.4 * fd[0]) / 365.0)


def test_pzi_from_ttop_is_the_normal_tail():
    assert T.pzi_from_ttop(0.0, 1.0) == pytest.approx(0.5)
    assert T.pzi_from_ttop(-1.0, 1.0) == pytest.approx(0.841344746)
    assert T.pzi_from_ttop(1.0, 2.0) == pytest.approx(0.308537539)
    p = T.pzi_from_ttop(np.linspace(-5, 5, 101), 0.8)
    assert (np.diff(p) < 0).all()


def test_snow_lowers_nf_and_vegetation_lowers_nt():
    nf = T.freezing_n_factor(np.array([0.0, 0.2, 0.5, 1.0, 3.0]))
    assert nf[0] == pytest.approx(1.0) and (np.diff(nf) < 0).all() and nf[-1] > T.NF_MIN
    lc = np.array([T.BEDROCK, T.DEBRIS, T.FINE, T.MEADOW], np.uint8)
    nt = T.thawing_n_factor(lc, np.full(4, 250.0), 250.0)
    assert nt[3] < nt[2] and nt[3] == min(nt)
    rk = T.class_values(lc, "rk")
    assert rk[3] < 1.0 and rk[0] == 1.0


def test_balch_cooling_stays_within_one_to_three_degrees():
    b = T.balch_field(np.random.default_rng(0), (200, 200))
    assert b.min() >= 1.0 and b.max() <= 3.0
    assert abs(b.mean() - 2.0) < 0.1


def test_cold_air_pools_in_hollows_only():
    y, x = np.mgrid[0:120, 0:120]
    dem = 4000.0 - 200.0 * np.exp(-((x - 60) ** 2 + (y - 60) ** 2) / (2 * 15.0**2))
    cap = T.cold_air_pooling(dem, np.zeros_like(dem))
    assert cap[60, 60] < -1.0 and cap.max() <= 0.0 and cap.min() >= -T.CAP_MAX_C
    assert cap[60, 60] < cap[60, 90] <= 0.0


# ----------------------------------------------------------------------------------------------
# the generated region
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def region(sample_dir) -> Path:
    """The committed ttop region."""
    return sample_dir


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1), src.transform, src.tags()


def _rowcol(transform, lon, lat):
    col = np.floor((np.asarray(lon) - transform.c) / transform.a).astype(int)
    row = np.floor((np.asarray(lat) - transform.f) / transform.e).astype(int)
    return row, col


def test_truth_is_ttop_of_the_surface(region):
    truth = json.loads((region / "truth" / "truth.json").read_text())
    assert truth["truth_kind"] == "ttop" and truth["truth_model"]["kind"] == "ttop"
    p, _, _ = _read(region / "truth" / "pzi_truth.tif")
    t, _, _ = _read(region / "truth" / "ttop_truth.tif")
    lc, _, _ = _read(region / "truth" / "landcover_truth.tif")
    land = np.isin(lc, T.LAND)
    sigma = T.class_values(lc, "sigma_c")
    np.testing.assert_allclose(p[land], T.pzi_from_ttop(t[land], sigma[land]), atol=2e-6)
    pc = truth["truth_model"]["per_class"]
    # debris is colder than fine ground and meadow: the landform bias the labels carry
    assert pc["coarse debris (blocky)"]["mean_pzi"] > pc["fine debris / soil"]["mean_pzi"] + 0.1
    assert pc["coarse debris (blocky)"]["mean_pzi"] > pc["alpine meadow (vegetated)"]["mean_pzi"]
    area = truth["truth_model"]["area"]
    assert 0.3 < area["pzi_weighted_km2"] / area["denominator_km2"] < 0.85


def test_truth_areas_agree_with_the_package_statistics(region):
    from permafrost.workflows.stats import stats_from_files

    truth = json.loads((region / "truth" / "truth.json").read_text())
    mask = region / "masks" / "glaciers_lakes.gpkg"
    for name, rec in [("pzi_truth.tif", truth["truth_model"]["area"])] + [
            (f"pzi_truth_{k}.tif", truth["warming"][k]) for k in ("plus1", "plus2", "plus4")]:
        whole = stats_from_files(region / "truth" / name, mask_path=mask).whole
        assert rec["pzi_weighted_km2"] == pytest.approx(whole["pzi_weighted_km2"], abs=0.1)
        assert rec["pzi_ge_0_5_km2"] == pytest.approx(whole["pzi_ge_0.5_km2"], abs=0.1)
        assert rec["denominator_km2"] == pytest.approx(whole["denominator_km2"], abs=0.1)


def test_rock_glacier_fronts_are_on_coarse_debris(region):
    rgt = pd.read_csv(region / "truth" / "rock_glaciers_truth.csv")
    lc, _, _ = _read(region / "truth" / "landcover_truth.tif")
    p, _, _ = _read(region / "truth" / "pzi_truth.tif")
    assert len(rgt) > 100
    assert (lc[rgt.front_row, rgt.front_col] == T.DEBRIS).all()
    np.testing.assert_allclose(p[rgt.front_row, rgt.front_col], rgt.p_truth_front, atol=6e-5)
    assert 0 < (rgt.intact_true == 0).sum() < len(rgt)


def test_boreholes_sit_along_the_road_and_agree_with_the_truth(region):
    from samplegen.grid import NORTH, SOUTH, WEST, metres_per_degree
    from samplegen.terrain import road_distance_km

    bh = pd.read_csv(region / "boreholes" / "boreholes.csv")
    mx, my = metres_per_degree(np.array(0.5 * (NORTH + SOUTH)))  # as samplegen's km_coords
    x = (bh.lon.to_numpy() - WEST) * mx / 1000
    y = (bh.lat.to_numpy() - SOUTH) * my / 1000
    d = road_distance_km(x, y)
    assert d.max() < 0.55  # 50-500 m from a site point on the road
    assert np.median(d) < 0.35
    # presence agrees with the sign of each borehole's MAGT, and the set follows the truth
    assert ((bh.presence == 1) == (bh.magt_c < 0)).all()
    p, tr, _ = _read(region / "truth" / "pzi_truth.tif")
    r, c = _rowcol(tr, bh.lon, bh.lat)
    truth = json.loads((region / "truth" / "truth.json").read_text())
    sd = truth["boreholes"]["binomial_sd"]
    assert abs(bh.presence.sum() - p[r, c].sum()) <= 0.5 * sd + 1
    t, _, _ = _read(region / "truth" / "ttop_truth.tif")
    for g in truth["gtnp"]["boreholes"]:
        rr, cc = _rowcol(tr, g["lon"], g["lat"])
        assert abs(float(t[rr, cc]) - g["magt_c_at_15m"]) < 0.5, g["name"]
        assert (g["magt_c_at_15m"] < 0) == (float(t[rr, cc]) < 0), g["name"]


def test_warmed_truths_never_gain_permafrost(region):
    p0, _, _ = _read(region / "truth" / "pzi_truth.tif")
    truth = json.loads((region / "truth" / "truth.json").read_text())
    prev = p0
    w_prev = truth["truth_model"]["area"]["pzi_weighted_km2"]
    for name in ("plus1", "plus2", "plus4"):
        pw, _, _ = _read(region / "truth" / f"pzi_truth_{name}.tif")
        assert (pw <= prev).all(), name
        assert (pw < p0).mean() > 0.5, name
        w = truth["warming"][name]["pzi_weighted_km2"]
        assert w < w_prev
        prev, w_prev = pw, w


def test_landcover_covariate_is_a_classified_map_with_errors(region):
    obs, tr, tags = _read(region / "covariates" / "landcover.tif")
    true, _, _ = _read(region / "truth" / "landcover_truth.tif")
    with rasterio.open(region / "covariates" / "landcover.tif") as src:
        assert src.dtypes[0] == "uint8" and src.nodata == 255
    assert "1=bedrock" in tags["classes"] and tags["kind"] == "categorical"
    assert set(np.unique(obs)) <= {1, 2, 3, 4, 5, 6}
    land = np.isin(true, T.LAND)
    wrong = (obs != true)[land].mean()
    assert wrong == pytest.approx(T.CONFUSION_RATE, abs=0.01)
    assert (obs[~land] == true[~land]).all()
    truth = json.loads((region / "truth" / "truth.json").read_text())
    assert truth["truth_model"]["landcover_observed"]["accuracy"] == pytest.approx(1 - wrong,
                                                                                   abs=1e-3)
    assert (region / "covariates" / "landcover.tif").read_bytes() == \
        (SAMPLE / "covariates" / "landcover.tif").read_bytes()


def test_logistic_case_shares_the_four_covariates(region, logistic_region):
    """The second (logistic) case is the same landscape: the four shared covariates byte for
    byte; it has no land-cover map (its truth does not know one)."""
    for name in ("dem", "maat", "pisr", "ndvi"):
        assert (region / "covariates" / f"{name}.tif").read_bytes() == \
            (logistic_region / "covariates" / f"{name}.tif").read_bytes()
    assert not (logistic_region / "covariates" / "landcover.tif").exists()


#: sha256 of every file of the logistic region as committed in data_samples/ before issue 22
#: (main 4c5b5f0), but for the basins (polygons only since issue 26): ``generate.py --truth
#: logistic`` must keep reproducing it byte for byte
LOGISTIC_SHA256 = {
    "boreholes/boreholes.csv": "f6e8fafa2de6fa9974fcf1e71ba789a4ebe3bbb729fb90c72345dea85c9fea8d",
    "boreholes/gtnp_long.csv": "8a0b069924ec7ebf426c561979040a50968e04db65fae15138765c05ec45769e",
    "boreholes/gtnp_metadata.json": "1699f95bd9463823513315f0d2eb63c0be4483becb02fd1ee8291045c49891a6",
    "climate/elevation_coarse.tif": "39afa00155a41fe25c7cf052f5c1c0941ff54181eca690748d672ef6dd48329f",
    "climate/maat_coarse.tif": "aa1d606d29163a86a8932657d1c5d7be01c1d0b6760c166fa44a049f1d7352d7",
    "covariates/dem.tif": "bb306ede77211fca363dec03ed6b0dd05b25d757e0c1434595d68edcda982dfd",
    "covariates/maat.tif": "33f553b4d3ffe5f61a3801cff8aa14acd8e006a1f6cc64de0870e563c1712380",
    "covariates/ndvi.tif": "5f00323a06d5ddcb1b10416cf20f4c16340ce91476a1fff5eac6737a6820b557",
    "covariates/pisr.tif": "181c46714367a1c8190356e3fe8cbbac5d6aafe254d48fddddfa9be1226154ba",
    "insar/asc/geometryGeo.h5": "64d3b1a712930249958884615c87f93a2f404b3b86d23c0692f54b8f27e40d89",
    "insar/asc/maskTempCoh.h5": "6e90822baad6e8550ec7214ccf99d5d044c773b3b72eb02e2bd5b5275606ed0a",
    "insar/asc/temporalCoherence.h5": "24a62799d5ab1c862db588c869b2d47a60cb72f4c838ee93d54e96acbada1b69",
    "insar/asc/velocity.h5": "86ecf57b4757f0a7c53c2d650e7ee3be293649f36dfc2864e947c88a3a4ecd88",
    "insar/desc/geometryGeo.h5": "f202ae5dfcfb59063f8ba1add133248eaf9e961bc310a18092bf5e21fe086ace",
    "insar/desc/maskTempCoh.h5": "307e15ea55d24df157f1f92a2b9e5421da160306c6de87d6d05833d37c1f8861",
    "insar/desc/temporalCoherence.h5": "8bc1bdc76240080cf8ec866cce9f412c4c943c4f57524f09d22d28d750c13004",
    "insar/desc/velocity.h5": "3d2fc20c9b8d7902ea40c3250704e57245a69d0da0bc217dd2bc3c7fcb083299",
    "inventory/rock_glaciers.gpkg": "da80c2ca2778b656c2c424eb902c5a440b8ce7c5451fa361f5810c0fc5115a65",
    "masks/glaciers_lakes.gpkg": "210bc3b5855c27e53549e2db02c3c46024207b6f734de1d2f0835c2c800af1ce",
    "priors/pzi_prior.tif": "c339eb46ca985a1214a5e60f316564e12cd514b0dffb0d01e629ec5f189fdaaf",
    "priors/survey_map.tif": "0581551c44873cbd63d1c8ae19b9768387912ec408e76c907837efd9594698f6",
    # changed on purpose (issue 26): the basins are polygons only, no GeometryCollection
    "regions/basins.gpkg": "59cec651abb9f22010a32d33499a8e65694621cba88641f69f8e4009481fb856",
    "truth/pzi_truth.tif": "7cfd542c0dbf78286a2e67aabaf4c1de20777719ea63e664210c18b0301fcaa6",
    "truth/pzi_truth_plus1.tif": "377d17398f53b733af5f484a31e4421b63efc926282065fb76d62815839fb154",
    "truth/pzi_truth_plus2.tif": "9c6343d9d448c3803664937c7fce190489eafe066b4922230e2be98bcea12f83",
    "truth/pzi_truth_plus4.tif": "c0fd88496549cc0f60c73d977433d4f1d6ae80cfa73950ac8a056f5bfaa68b7a",
    "truth/rock_glaciers_truth.csv": "2336fe12fece598150a5c97effd8d76675e251d10f100b913b4114c9207b4388",
    "truth/truth.json": "3550efe2c987e70a8359d164724892f123cd5a2f2a09f94be41d9332df48e89a",
}


def _hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_logistic_case_is_byte_identical_to_the_former_demo_region(logistic_region):
    assert _hashes(logistic_region) == LOGISTIC_SHA256


def test_logistic_case_refuses_to_overwrite_the_committed_region():
    res = subprocess.run([sys.executable, str(SAMPLE / "generate.py"), "--truth", "logistic"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--out" in res.stderr
