"""The physical scenario method (issue 23, item 1): the baseline map warmed through ground
temperature, block by block (permafrost.workflows.warming), its spread from in-situ MAGT, its
options and its one-line errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from factories import NX, NY, demo_pipeline_text, write_raster
from scipy.special import ndtr

from permafrost.config import REFERENCE, load_pipeline, resolve_scenario
from permafrost.defaults import GROUND_SPREAD_C, SCENARIO_METHOD
from permafrost.errors import ConfigError
from permafrost.nfactors import N_FACTORS, UNKNOWN, surface_of
from permafrost.warming import spread_from_magt_ml, ttop_sensitivity, warmed_pzi
from permafrost.workflows.warming import spread_for_warming, warm_pzi_raster

CLASSES = "1=bedrock;2=coarse debris (blocky);3=fine debris / soil;4=alpine meadow (vegetated)"


def _write_tags(path, **tags):
    with rasterio.open(path, "r+") as dst:
        dst.update_tags(**tags)


@pytest.fixture
def world(tmp_path):
    """An analytic baseline: PZI a smooth function of MAAT, four land-cover classes in
    quarters, a masked (NaN) corner and a NaN MAAT cell."""
    yy, xx = np.mgrid[0:NY, 0:NX]
    maat = (-6.0 + 8.0 * xx / (NX - 1) + 0.5 * np.sin(yy / 7.0)).astype("float32")
    pzi = ndtr(-(maat + 1.5) / 1.2)
    pzi[:5, :5] = np.nan
    maat[10, 10] = np.nan
    lc = (1 + (yy >= NY // 2) * 2 + (xx >= NX // 2)).astype("uint8")
    cov = tmp_path / "cov"
    write_raster(cov / "maat.tif", maat)
    write_raster(cov / "landcover.tif", lc, dtype="uint8", nodata=255)
    _write_tags(cov / "landcover.tif", kind="categorical", classes=CLASSES)
    base = write_raster(tmp_path / "pzi.tif", pzi, nodata=None, fill_nan=False)
    return tmp_path, cov, base, pzi, maat, lc


def _expected(pzi, maat, lc, dt, sigma, amplitude, which=0):
    names = dict(p.split("=") for p in CLASSES.split(";"))
    out = np.full(pzi.shape, np.nan)
    for code, name in names.items():
        nfac = N_FACTORS[surface_of(name)]
        sel = lc == int(code)
        s = [ttop_sensitivity(maat[sel] + u, amplitude, nf=nfac.nf[which], nt=nfac.nt[which],
                              rk=nfac.rk[which]) for u in (0.0, dt / 2, dt)]
        s_mean = (s[0] + 4 * s[1] + s[2]) / 6
        out[sel] = warmed_pzi(pzi[sel], dt, sensitivity=s_mean, sigma=sigma)
    out[~np.isfinite(maat) | ~np.isfinite(pzi)] = np.nan
    return out


def _read(path):
    with rasterio.open(path) as src:
        return src.read(1, masked=True).filled(np.nan).astype(np.float64)


def test_the_step_maps_an_analytic_baseline_to_the_expected_warmed_map(world):
    tmp, cov, base, pzi, maat, lc = world
    res = warm_pzi_raster(base, cov, tmp / "w.tif", delta_t=2.0, amplitude=11.0, sigma=1.2,
                          sigma_interval=(1.0, 1.5), zones=tmp / "z.tif", chunk=32)
    got = _read(tmp / "w.tif")
    want = _expected(pzi, maat.astype(np.float64), lc, 2.0, 1.2, 11.0)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    ok = np.isfinite(want)
    assert np.allclose(got[ok], want[ok], atol=1e-6)  # float32 on disk
    # the interval brackets the central area; the baseline's area is the largest
    a = res.areas_km2
    assert a["low"] < a["central"] < a["high"] < a["baseline"]
    assert res.cells_raised == 0
    with rasterio.open(tmp / "z.tif") as src:
        assert src.read(1)[0, 0] == 255 and src.read(1).max() <= 255


def test_warming_never_raises_the_pzi_and_cooling_never_lowers_it(world):
    tmp, cov, base, pzi, maat, lc = world
    for dt in (0.5, 4.0, 10.0):
        warm_pzi_raster(base, cov, tmp / f"w{dt}.tif", delta_t=dt, sigma=0.8)
        got = _read(tmp / f"w{dt}.tif")
        ok = np.isfinite(got)
        assert np.all(got[ok] <= pzi[ok] + 1e-6)
    warm_pzi_raster(base, cov, tmp / "cool.tif", delta_t=-1.0, sigma=0.8)
    got = _read(tmp / "cool.tif")
    ok = np.isfinite(got)
    assert np.all(got[ok] >= pzi[ok] - 1e-6)


def test_zero_warming_returns_the_baseline(world):
    tmp, cov, base, pzi, maat, lc = world
    warm_pzi_raster(base, cov, tmp / "w0.tif", delta_t=0.0)
    got = _read(tmp / "w0.tif")
    ok = np.isfinite(got)
    assert np.allclose(got[ok], pzi[ok], atol=1e-6)


def test_the_warmed_map_is_deterministic_and_independent_of_the_chunk(world):
    tmp, cov, base, *_ = world
    for name, chunk in (("a", 16), ("b", 16), ("c", 64)):
        warm_pzi_raster(base, cov, tmp / f"{name}.tif", delta_t=1.0, chunk=chunk)
    a, b, c = ((tmp / f"{n}.tif").read_bytes() for n in "abc")
    assert a == b and np.array_equal(_read(tmp / "a.tif"), _read(tmp / "c.tif"), equal_nan=True)


def test_without_a_land_cover_every_cell_takes_the_unknown_n_factors(world):
    tmp, cov, base, pzi, maat, lc = world
    (cov / "landcover.tif").unlink()
    warm_pzi_raster(base, cov, tmp / "w.tif", delta_t=2.0, sigma=1.0)
    u = N_FACTORS[UNKNOWN]
    s = [ttop_sensitivity(maat.astype(float) + d, 12.0, nf=u.nf[0], nt=u.nt[0], rk=u.rk[0])
         for d in (0.0, 1.0, 2.0)]
    want = warmed_pzi(pzi, 2.0, sensitivity=np.nan_to_num((s[0] + 4 * s[1] + s[2]) / 6),
                      sigma=1.0)
    got = _read(tmp / "w.tif")
    ok = np.isfinite(got)
    assert np.allclose(got[ok], want[ok], atol=1e-6)


def test_the_output_guard_refuses_to_overwrite_the_baseline(world):
    tmp, cov, base, *_ = world
    with pytest.raises(Exception, match="(?i)baseline|input"):
        warm_pzi_raster(base, cov, base, delta_t=1.0)


def _records(tmp, n, sigma, seed=0):
    """Boreholes with MAGT drawn from the model the PZI map implies, on the world's grid."""
    rng = np.random.default_rng(seed)
    with rasterio.open(tmp / "pzi.tif") as src:
        t, shape = src.transform, src.shape
    rows, cols = rng.integers(6, shape[0], n), rng.integers(6, shape[1], n)
    x, y = rasterio.transform.xy(t, rows, cols)
    pzi = _read(tmp / "pzi.tif")[rows, cols]
    from scipy.special import ndtri
    mu = -sigma * ndtri(np.clip(pzi, 1e-6, 1 - 1e-6))
    magt = mu + rng.normal(0, sigma, n)
    return gpd.GeoDataFrame({"magt_c": magt}, geometry=gpd.points_from_xy(x, y),
                            crs="EPSG:4326")


def test_sigma_is_fitted_from_records_and_defaults_with_a_warning(world):
    tmp, *_ = world
    # the world's map is PZI = Phi(-(MAAT+1.5)/1.2): records drawn with that spread
    fit = spread_for_warming(tmp / "pzi.tif", _records(tmp, 400, 1.2), min_records=10)
    assert fit["source"] == "in-situ MAGT" and fit["warning"] is None
    assert fit["sigma_c"] == pytest.approx(1.2, rel=0.1)
    assert fit["interval_c"][0] < fit["sigma_c"] < fit["interval_c"][1]
    few = spread_for_warming(tmp / "pzi.tif", _records(tmp, 5, 1.2), min_records=10)
    assert few["source"] == "default" and few["sigma_c"] == GROUND_SPREAD_C
    assert "5 MAGT records" in few["warning"] and "\n" not in few["warning"]
    given = spread_for_warming(tmp / "pzi.tif", None, sigma=0.9)
    assert given["sigma_c"] == 0.9 and given["source"] == "given"


def test_the_maximum_likelihood_spread_recovers_sigma():
    rng = np.random.default_rng(3)
    for sigma in (0.5, 1.3, 2.5):
        mu = sigma * rng.uniform(-3, 3, 3000)  # PZI within the clip (|z| < 4.75)
        magt = mu + rng.normal(0, sigma, mu.size)
        fit = spread_from_magt_ml(ndtr(-mu / sigma), magt)
        assert fit.sigma == pytest.approx(sigma, rel=0.05)


def test_surface_names_map_to_the_n_factor_table():
    assert surface_of("coarse debris (blocky)") == "coarse debris"
    assert surface_of("bedrock") == "bedrock"
    assert surface_of("alpine meadow (vegetated)") == "vegetated"
    assert surface_of("fine debris / soil") == "fine debris / soil"
    assert surface_of("glacier") == UNKNOWN
    for nfac in N_FACTORS.values():  # each value inside its range
        for v, lo, hi in (nfac.nf, nfac.nt, nfac.rk):
            assert lo <= v <= hi


def _pipeline(tmp_path, extra="", method_block=None):
    text = demo_pipeline_text(tmp_path / "out", scenarios=True)
    if method_block is not None:
        start = text.index("[scenario_method]")
        end = text.index("\n\n", start)
        text = text[:start] + method_block + text[end:]
    p = tmp_path / "p.toml"
    p.write_text(text + extra)
    return p


def test_physical_is_the_default_and_the_demo_has_no_reference_run(tmp_path):
    assert SCENARIO_METHOD == "physical"
    cfg = load_pipeline(_pipeline(tmp_path, method_block="[scenario_method]"))
    assert cfg.physical() and cfg.scenario_method.amplitude_c == 12.0
    assert REFERENCE not in cfg.runs(list(cfg.scenarios))
    # a physical scenario keeps the baseline's model: its train options are the baseline's
    sc, changes = resolve_scenario(cfg, "plus2")
    assert sc.train == cfg.train and changes["maat"].offset == 2.0


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ("[scenarios.wet]\ncovariates.pisr = { offset = 10.0 }\n", "air temperature offset"),
        ("[scenarios.x]\ncovariates.maat = { scale = 1.1 }\n", "air temperature offset"),
        ("[scenarios.y]\ncovariates.maat = { offset = 1.0 }\ncovariates.pisr = { offset = 1.0 }\n",
         "covariate 'pisr'"),
        ("[scenarios.z]\ncovariates.maat = { offset = 1.0 }\ntrain = { model = 'rf' }\n",
         "[train] options"),
    ],
)
def test_a_physical_scenario_that_changes_more_than_maat_is_refused_in_one_line(
        tmp_path, extra, needle):
    with pytest.raises(ConfigError) as exc:
        load_pipeline(_pipeline(tmp_path, extra))
    msg = str(exc.value)
    assert needle in msg and "cross-section" in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ('[scenario_method]\nmethod = "space-for-time"', "scenario_method.method"),
        ("[scenario_method]\namplitude_c = 0.0", "scenario_method.amplitude_c"),
        ("[scenario_method]\nsigma_c = -1.0", "scenario_method.sigma_c"),
        ("[scenario_method]\nsigmaa = 1.0", "scenario_method.sigmaa"),
    ],
)
def test_bad_method_options_are_named(tmp_path, block, key):
    with pytest.raises(ConfigError) as exc:
        load_pipeline(_pipeline(tmp_path, method_block=block))
    assert key in str(exc.value)


def test_cross_section_keeps_the_scenario_model_and_its_reference(tmp_path):
    block = ('[scenario_method]\nmethod = "cross-section"\n\n[scenario_model]\n'
             'features = ["maat", "pisr", "tpi", "landcover"]\nmodel = "logistic"')
    cfg = load_pipeline(_pipeline(tmp_path, "[scenarios.wet]\ncovariates.pisr = { offset = 10.0 }\n",
                                  method_block=block))
    assert not cfg.physical()
    assert REFERENCE in cfg.runs(list(cfg.scenarios))
    sc, _ = resolve_scenario(cfg, "plus2")
    assert sc.train.features == ["maat", "pisr", "tpi", "landcover"]


def test_a_cross_section_response_flattened_by_a_hidden_driver_is_warned_with_both_figures(
        world):
    """A cross-sectional MAAT coefficient flattened by a driver that varies with elevation
    and is missing from the stack (here: the scenario map responds to a third of the
    warming, as when snow thickening downslope offsets the air's gradient) is warned about,
    with its loss and the physical expectation; the note on missing drivers always comes."""
    from types import SimpleNamespace

    from permafrost.config import CovariateChange, ScenarioMethodOptions
    from permafrost.pipeline.steps import CROSS_SECTION_NOTE, _cross_section_check

    tmp, cov, base, pzi, maat, lc = world
    warm_pzi_raster(base, cov, tmp / "flat.tif", delta_t=1.0, sigma=1.0)  # a third of +3
    rec = SimpleNamespace(output=lambda label: base)
    cfg = SimpleNamespace(scenario_method=ScenarioMethodOptions(sigma_c=1.0),
                          inputs=SimpleNamespace(covariates=cov),
                          predict=SimpleNamespace(chunk=64))
    ctx = SimpleNamespace(config=cfg, scenario="plus3", seed=0,
                          covariate_changes={"maat": CovariateChange(offset=3.0)},
                          scenarios={"baseline": {"predict": rec}})
    warnings = _cross_section_check(ctx, tmp / "flat.tif")
    assert warnings[0] == CROSS_SECTION_NOTE and "MAAT coefficient" in warnings[0]
    assert len(warnings) == 2 and "physical (TTOP) expectation" in warnings[1]
    assert "factor 1.5" in warnings[1] and warnings[1].count("%") == 2
    # a cross-section map that follows the physics raises only the note
    warm_pzi_raster(base, cov, tmp / "same.tif", delta_t=3.0, sigma=1.0)
    assert _cross_section_check(ctx, tmp / "same.tif") == [CROSS_SECTION_NOTE]


def test_a_scenario_model_the_physical_method_does_not_use_is_said(tmp_path, caplog):
    block = ('[scenario_method]\n\n[scenario_model]\nfeatures = ["maat", "pisr"]\n'
             'model = "logistic"')
    with caplog.at_level("WARNING", logger="permafrost.config"):
        cfg = load_pipeline(_pipeline(tmp_path, method_block=block))
    assert cfg.physical() and REFERENCE not in cfg.runs(list(cfg.scenarios))
    assert any("cross-section scenario method only" in r.getMessage() for r in caplog.records)
