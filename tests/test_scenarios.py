"""Scenarios: changed inputs recomputed through derived covariates, proxies held fixed,
cells beyond the training range, and the pipeline's scenario model and reference run."""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
from affine import Affine
from factories import da_on_grid
from scipy.stats import spearmanr
from sklearn.linear_model import LinearRegression

from permafrost.applicability import (
    extrapolation_map,
    extrapolation_statistics,
    extrapolation_warnings,
    mask_dtype,
    outside_range,
    training_ranges,
)
from permafrost.area import cell_areas
from permafrost.config import REFERENCE, load_pipeline, resolve_scenario, scenario_delta_t
from permafrost.covariates import CHANGED_ATTR
from permafrost.errors import ConfigError
from permafrost.grid import grid_of
from permafrost.io.rasters import write_cog
from permafrost.proxies import covariate_dependence, dependence_of_table, proxy_warnings
from permafrost.workflows.covariates import build_stack, changeable_inputs

ROOT = Path(__file__).resolve().parents[1]


def _raster(path: Path, data: np.ndarray, transform: Affine, crs: str = "EPSG:32647") -> Path:
    write_cog(da_on_grid(data, transform, crs), path, nodata=-9999.0)
    return path


@pytest.fixture
def stack_file(tmp_path):
    """A UTM stack: a DEM, a coarse climate grid downscaled onto it, slope from the DEM."""
    rng = np.random.default_rng(3)
    fine = Affine(100.0, 0, 500_000, 0, -100.0, 4_300_000)
    yy, xx = np.mgrid[0:60, 0:80]
    dem = 3000 + 8.0 * xx + 5.0 * yy + rng.normal(0, 20, (60, 80))
    _raster(tmp_path / "dem.tif", dem, fine)
    coarse = Affine(2000.0, 0, 500_000, 0, -2000.0, 4_300_000)
    zc = np.array([[3100.0, 3300.0, 3500.0, 3700.0], [3200.0, 3400.0, 3600.0, 3800.0],
                   [3300.0, 3500.0, 3700.0, 3900.0]])
    _raster(tmp_path / "tc.tif", -2.0 - 0.006 * (zc - 3000), coarse)
    _raster(tmp_path / "zc.tif", zc, coarse)
    p = tmp_path / "stack.toml"
    p.write_text(textwrap.dedent("""
        [grid]
        like = "dem.tif"
        [covariates.dem]
        path = "dem.tif"
        [derived.maat]
        function = "downscale_maat"
        coarse = "tc.tif"
        coarse_elevation = "zc.tif"
        [derived.slope]
        function = "slope"
    """))
    return p


def _change(offset=None, scale=None, file=None):
    return SimpleNamespace(offset=offset, scale=scale, file=file)


# ------------------------------------------------------------------ consistent scenarios


def test_changeable_inputs_of_a_stack_file_name_the_coarse_climate(stack_file):
    assert changeable_inputs(stack_file) == ["dem", "maat", "maat.coarse",
                                             "maat.coarse_elevation", "slope"]


def test_warming_the_coarse_grid_warms_the_downscaled_maat_by_the_same_amount(stack_file):
    base = build_stack(stack_file)
    warm = build_stack(stack_file, changes={"maat.coarse": _change(offset=2.0)})
    d = (warm["maat"] - base["maat"]).values
    # lapse-rate downscaling is linear in the coarse temperature: +2 everywhere
    np.testing.assert_allclose(d[np.isfinite(d)], 2.0, atol=1e-4)
    assert warm["maat"].attrs[CHANGED_ATTR] == "maat.coarse"
    assert CHANGED_ATTR not in warm["dem"].attrs and CHANGED_ATTR not in warm["slope"].attrs
    np.testing.assert_array_equal(warm["slope"].values, base["slope"].values)


def test_a_changed_input_recomputes_everything_derived_from_it(stack_file):
    base = build_stack(stack_file)
    steep = build_stack(stack_file, changes={"dem": _change(scale=2.0)})
    # slope and the downscaled MAAT are recomputed from the doubled DEM
    assert np.nanmean(steep["slope"].values) > np.nanmean(base["slope"].values) + 5
    lapse = -0.0065  # climate.STANDARD_LAPSE_RATE, the stack's default
    d = (steep["maat"] - base["maat"]).values
    np.testing.assert_allclose(d, lapse * base["dem"].values, rtol=1e-4)
    for name in ("dem", "slope", "maat"):
        assert steep[name].attrs[CHANGED_ATTR] == "dem"


def test_a_change_of_a_derived_covariate_applies_to_its_result(stack_file):
    base = build_stack(stack_file)
    warm = build_stack(stack_file, changes={"maat": _change(offset=1.5)})
    np.testing.assert_allclose((warm["maat"] - base["maat"]).values, 1.5, atol=1e-4)
    assert warm["maat"].attrs[CHANGED_ATTR] == "maat"


def test_an_unknown_change_is_refused_naming_what_can_change(stack_file):
    with pytest.raises(ConfigError, match="maat.coarse"):
        build_stack(stack_file, changes={"mat": _change(offset=1.0)})


def test_a_directory_stack_marks_what_the_scenario_changed(tmp_path):
    t = Affine(100.0, 0, 500_000, 0, -100.0, 4_300_000)
    _raster(tmp_path / "maat.tif", np.full((10, 12), -3.0), t)
    _raster(tmp_path / "dem.tif", np.full((10, 12), 4000.0), t)
    ds = build_stack(tmp_path, changes={"maat": _change(offset=2.0, scale=0.5)})
    np.testing.assert_allclose(ds["maat"].values, -3.0 * 0.5 + 2.0)  # scale, then offset
    assert ds["maat"].attrs[CHANGED_ATTR] == "maat" and CHANGED_ATTR not in ds["dem"].attrs


# ------------------------------------------------------------------ proxies


def test_dependence_equals_scipy_spearman_and_sklearn_r2():
    rng = np.random.default_rng(0)
    z = rng.normal(size=2000)
    x = np.column_stack([z, -z ** 3 + 0.3 * rng.normal(size=2000), rng.normal(size=2000)])
    x[5, 1] = np.nan  # dropped row
    dep = dependence_of_table(x, ["a", "b", "c"])
    ok = np.isfinite(x).all(axis=1)
    ref = spearmanr(x[ok]).statistic
    for i, a in enumerate("abc"):
        for k, b in enumerate("abc"):
            assert dep["spearman"][a][b] == pytest.approx(ref[i, k], abs=1e-4)
    from scipy.stats import rankdata

    r = np.column_stack([rankdata(x[ok][:, j]) for j in range(3)])
    r2 = LinearRegression().fit(r[:, 1:], r[:, 0]).score(r[:, 1:], r[:, 0])
    assert dep["r2_from_others"]["a"] == pytest.approx(r2, abs=1e-4)
    assert dep["n"] == int(ok.sum())


def test_a_held_proxy_of_the_changed_covariate_is_reported_with_its_figure():
    dep = {"spearman": {"maat": {"maat": 1, "dem": -0.99, "pisr": 0.1},
                        "dem": {"maat": -0.99, "dem": 1, "pisr": -0.1},
                        "pisr": {"maat": 0.1, "dem": -0.1, "pisr": 1}},
           "r2_from_others": {"maat": 0.98, "dem": 0.98, "pisr": 0.02}}
    w = proxy_warnings(dep, ["dem", "maat", "pisr"], {"maat": "maat"}, changes=["maat"])
    assert [x["held"] for x in w] == ["dem"] and w[0]["spearman"] == -0.99
    assert "dem" in w[0]["message"] and "-0.99" in w[0]["message"]
    # a proxy recomputed from the changed input is not held: no warning
    assert proxy_warnings(dep, ["dem", "maat"], {"maat": "maat", "dem": "maat"},
                          changes=["maat"]) == []
    # a change the model cannot see is said plainly
    w = proxy_warnings(dep, ["dem", "pisr"], {"maat": "maat"}, changes=["maat"])
    assert [x["kind"] for x in w] == ["change_unused"]


def test_dependence_is_measured_on_a_regular_landscape_sample(stack_file):
    ds = build_stack(stack_file)
    dep = covariate_dependence(ds, ["dem", "maat", "slope"], max_cells=600)
    assert dep["spearman"]["dem"]["maat"] < -0.95  # the downscaled MAAT follows the DEM
    assert 300 <= dep["n"] <= 600 and "every 3th row" in dep["sample"]


# ------------------------------------------------------------------ extrapolation


def test_outside_range_sets_one_bit_per_side_and_feature():
    block = np.array([[[0.0, 5.0, 11.0]], [[1.0, -2.0, 1.0]]])  # 2 features, 1 x 3 cells
    bits = outside_range(block, np.array([1.0, 0.0]), np.array([10.0, 2.0]),
                         valid=np.array([[True, True, False]]))
    assert bits.dtype == mask_dtype(2) == np.uint8
    assert bits.tolist() == [[0b0001, 0b0100, 255]]  # a below; b below; nodata
    assert mask_dtype(4) == np.uint16 and mask_dtype(31) == np.uint64


def test_extrapolation_areas_add_up_on_the_ellipsoid(tmp_path):
    t = Affine(0.01, 0, 99.0, 0, -0.01, 39.0)
    maat = np.tile(np.linspace(-8, 2, 20), (15, 1))
    x = 99.005 + 0.01 * np.arange(20)
    y = 38.995 - 0.01 * np.arange(15)
    ds = xr.Dataset({"maat": (("y", "x"), maat.astype(np.float32))}, coords={"x": x, "y": y})
    ds = ds.rio.write_crs("EPSG:4326").rio.write_transform(t)
    pzi = ds["maat"] * 0 + 0.5
    ranges = training_ranges(np.array([[-6.0], [0.0], [np.nan]]), ["maat"])
    assert ranges == {"maat": [-6.0, 0.0]}
    m = extrapolation_map(ds, ranges, ["maat"], pzi=pzi)
    st = extrapolation_statistics(m, ["maat"], block_rows=4)
    a = np.broadcast_to(cell_areas(grid_of(ds)), maat.shape) / 1e6
    assert st["denominator_km2"] == pytest.approx(a.sum())
    assert st["covariates"]["maat"]["below_km2"] == pytest.approx(a[maat < -6].sum())
    assert st["covariates"]["maat"]["above_km2"] == pytest.approx(a[maat > 0].sum())
    assert st["outside_share"] == pytest.approx(a[(maat < -6) | (maat > 0)].sum() / a.sum())
    w = extrapolation_warnings(st, "xgboost", ["maat"])
    assert len(w) == 1 and "stops responding" in w[0]["message"]
    assert extrapolation_warnings(st, "logistic", ["maat"]) == []


# ------------------------------------------------------------------ configuration


def _demo(tmp_path, extra: str = "", drop_model: bool = False) -> Path:
    """The demo with the cross-section method and its scenario model (the demo's own
    default is the physical method: tests/test_scenario_physical.py)."""
    text = (ROOT / "pipelines" / "demo.toml").read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('"demo_covariates.toml"', f'"{ROOT}/pipelines/demo_covariates.toml"')
    text = text.replace('output_dir = "../runs/demo"', f'output_dir = "{tmp_path / "out"}"')
    text = text.replace('[scenario_method]\nmethod = "physical"',
                        '[scenario_method]\nmethod = "cross-section"', 1)
    if not drop_model:
        text = text.replace("[scenarios.plus1]", '[scenario_model]\nfeatures = ["maat", "pisr", '
                            '"tpi", "landcover"]\nmodel = "logistic"\n\n[scenarios.plus1]', 1)
    p = tmp_path / "demo.toml"
    p.write_text(text + extra)
    return p


def test_scenarios_run_with_the_scenario_model_against_a_reference(tmp_path):
    cfg = load_pipeline(_demo(tmp_path))
    assert cfg.runs(["plus2"]) == ["baseline", REFERENCE, "plus2"]
    assert cfg.runs([]) == ["baseline"]
    ref, ch = resolve_scenario(cfg, REFERENCE)
    assert ch == {} and ref.train.features == ["maat", "pisr", "tpi", "landcover"]
    plus2, ch = resolve_scenario(cfg, "plus2")
    assert plus2.train.model == "logistic" and ch["maat"].offset == 2.0
    assert cfg.train.features is None  # the baseline keeps its own model
    assert scenario_delta_t(cfg, "plus4") == 4.0 and scenario_delta_t(cfg, REFERENCE) == 0.0
    bare = load_pipeline(_demo(tmp_path, drop_model=True))
    assert bare.runs(["plus2"]) == ["baseline", "plus2"]


def test_a_bad_scenario_model_is_refused_naming_the_key(tmp_path):
    p = _demo(tmp_path)
    head, sep, tail = p.read_text().partition("\n[scenario_model]")
    p.write_text(head + sep + tail.replace('model = "logistic"', 'modle = "logistic"', 1))
    with pytest.raises(ConfigError, match=r"scenario_model\.modle.*'model'"):
        load_pipeline(p)


def test_a_scenario_named_reference_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="reserved"):
        load_pipeline(_demo(tmp_path, '\n[scenarios.reference]\ncovariates.maat = {offset = 1.0}\n'))


def test_a_pipeline_can_warm_the_coarse_climate_of_a_stack_file(tmp_path, stack_file):
    bh = ROOT / "data_samples" / "boreholes" / "boreholes.csv"
    p = tmp_path / "p.toml"
    body = textwrap.dedent(f"""
        [pipeline]
        name = "s"
        output_dir = "{tmp_path / 'out'}"
        [inputs]
        covariates = "{stack_file}"
        boreholes = "{bh}"
        [scenarios.warm]
        covariates."maat.coarse" = {{ offset = 2.0 }}
    """)
    p.write_text(body)
    cfg = load_pipeline(p)
    assert resolve_scenario(cfg, "warm")[1]["maat.coarse"].offset == 2.0
    assert scenario_delta_t(cfg, "warm") == 2.0
    p.write_text(body.replace('"maat.coarse"', '"maat.coarse_elevatoin"'))
    with pytest.raises(ConfigError, match="maat.coarse_elevation"):
        load_pipeline(p)


def test_a_method_variant_keeps_the_baseline_model_options(tmp_path):
    extra = '\n[scenarios.forest]\ntrain = { model = "rf" }\n'
    cfg = load_pipeline(_demo(tmp_path, extra))
    forest, ch = resolve_scenario(cfg, "forest")
    assert ch == {} and forest.train.model == "rf" and forest.train.features is None
    assert cfg.runs(["forest"]) == ["baseline", "forest"]  # no climate change: no reference
    assert cfg.runs(["forest", "plus1"]) == ["baseline", REFERENCE, "forest", "plus1"]


def test_predict_reports_the_share_beyond_the_training_range(model_copy, make_covariates,
                                                             tmp_path):
    """`permafrost predict` on a region warmer than every training label says so."""
    import json

    from factories import covariate_arrays
    from typer.testing import CliRunner

    from permafrost.cli import app

    runner = CliRunner()
    cov = make_covariates("cov")
    args = ["predict", "--model", str(model_copy), "--covariates", str(cov), "--chunk", "64"]
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "a.tif")])
    assert res.exit_code == 0, res.output
    assert "unknown: the model records no training ranges" in res.stdout
    meta_path = model_copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    arr = covariate_arrays()
    meta.setdefault("training", {})["ranges"] = {
        f: [float(arr[f].min()), float(arr[f].max())] for f in meta["feature_names"]}
    meta["training"]["ranges"]["maat"][1] = float(np.percentile(arr["maat"], 50))
    meta_path.write_text(json.dumps(meta))
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "b.tif"), "--extrapolation",
                              str(tmp_path / "b_extra.tif"), "--json"])
    assert res.exit_code == 0, res.output
    ext = json.loads(res.stdout)["applicability"]["extrapolation"]
    assert ext["covariates"]["maat"]["share"] == pytest.approx(0.5, abs=0.02)
    assert ext["covariates"]["dem"]["share"] == 0.0
    assert (tmp_path / "b_extra.tif").is_file()
    res = runner.invoke(app, [*args, "--out", str(tmp_path / "c.tif")])
    assert "beyond the covariate range of the training labels" in res.stderr
    assert "maat above" in res.stdout


def test_applicability_is_one_dataclass_whose_dict_is_what_predict_prints(model_copy,
                                                                         make_covariates,
                                                                         tmp_path):
    """`applicability_from_files` returns an `Applicability`; its `as_dict()` is the JSON."""
    import json

    from factories import covariate_arrays
    from typer.testing import CliRunner

    from permafrost.cli import app
    from permafrost.workflows.applicability import Applicability, applicability_from_files

    cov = make_covariates("cov")
    meta_path = model_copy / "metadata.json"
    meta = json.loads(meta_path.read_text())
    arr = covariate_arrays()
    meta.setdefault("training", {})["ranges"] = {
        f: [float(arr[f].min()), float(np.percentile(arr[f], 50))] for f in meta["feature_names"]}
    meta_path.write_text(json.dumps(meta))
    res = CliRunner().invoke(app, ["predict", "--model", str(model_copy), "--covariates",
                                   str(cov), "--chunk", "64", "--out", str(tmp_path / "a.tif"),
                                   "--json"])
    assert res.exit_code == 0, res.output
    got = applicability_from_files(model_copy, cov, tmp_path / "a.tif", chunk=64)
    assert isinstance(got, Applicability)
    assert list(got.as_dict()) == ["features", "model", "changed_covariates", "warnings",
                                   "extrapolation", "support"]
    assert got.extrapolation["outside_share"] > 0
    assert json.loads(json.dumps(got.as_dict())) == json.loads(res.stdout)["applicability"]


def test_a_scenario_model_feature_the_stack_lacks_is_refused_before_any_work(tmp_path):
    p = _demo(tmp_path)
    p.write_text(p.read_text().replace('features = ["maat", "pisr", "tpi", "landcover"]',
                                       'features = ["maat", "pisr", "tpi", "landcovr"]'))
    with pytest.raises(ConfigError, match=r"scenario_model\.features.*did you mean 'landcover'"):
        load_pipeline(p)
    assert not (tmp_path / "out").exists()
