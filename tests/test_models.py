"""Models: estimators, spatial CV, calibration, the artefact, the train CLI.

The reference throughout is a generated truth: labels drawn with a seeded RNG from a known
probability field, so the truth's own AUC and Brier score on the same points bound what any
model can reach.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.metrics import brier_score_loss, roc_auc_score
from typer.testing import CliRunner

from permafrost.calibration import apply_calibration, fit_calibration
from permafrost.cli import app
from permafrost.cv import block_ids, make_folds, merge_groups, variogram_range
from permafrost.backends import resolve_device, xgboost_gpu_usable
from permafrost.errors import DataError, InputError, ModelError
from permafrost.io.model import load_model, save_model
from permafrost.metrics import reliability_curve
from permafrost.models import (
    LogisticPZI,
    RandomForestPZI,
    XGBoostPZI,
    balanced_weights,
    train_model,
)

FAST = {"n_estimators": 60}


# ---------------------------------------------------------------------------------------
# factory: a smooth synthetic region with a known permafrost probability
# ---------------------------------------------------------------------------------------
def _field(X, Y, rng, n, kmin, kmax):
    """Sum of ``n`` random plane waves with wavenumbers in [kmin, kmax] rad/deg."""
    k = rng.uniform(kmin, kmax, n)
    th = rng.uniform(0, 2 * np.pi, n)
    ph = rng.uniform(0, 2 * np.pi, n)
    return sum(np.sin(kk * (np.cos(t) * (X - 99) + np.sin(t) * (Y - 38.5)) + p) for kk, t, p
               in zip(k, th, ph)) / np.sqrt(n / 2)


def make_region(ny=200, nx=260, res=1 / 1200, *, b_maat=-1.8, b_latent=0.0):
    x = 99.0 + res * (np.arange(nx) + 0.5)
    y = 38.6 - res * (np.arange(ny) + 0.5)
    X, Y = np.meshgrid(x, y)
    rng = np.random.default_rng(42)
    dem = 3800 + 500 * _field(X, Y, rng, 8, 30, 120) + 150 * _field(X, Y, rng, 8, 150, 500)
    maat = 1.0 - 0.0065 * (dem - 3500)
    pisr = 230 + 30 * _field(X, Y, rng, 8, 200, 700)
    ndvi = np.clip(0.4 - 0.0003 * (dem - 3500) + 0.05 * _field(X, Y, rng, 6, 100, 400), 0, 1)

    def da_(a, name):
        return xr.DataArray(a.astype("float32"), dims=("y", "x"), coords={"y": y, "x": x},
                            name=name).rio.write_crs(4326)

    ds = xr.Dataset({"maat": da_(maat, "maat"), "pisr": da_(pisr, "pisr"),
                     "ndvi": da_(ndvi, "ndvi")}).rio.write_crs(4326)
    # a spatially autocorrelated part that no covariate explains (snow, debris cover...):
    # it is what makes random folds over-optimistic for clustered labels
    latent = _field(X, Y, rng, 8, 150, 400)
    truth = 1.0 / (1.0 + np.exp(-(b_maat * (maat + 1.0) - 0.03 * (pisr - 230)
                                  + b_latent * latent)))
    return ds, truth


def sample_labels(ds, truth, *, n_clusters=150, per_cluster=8, seed=0):
    """Clustered points (like several points per rock glacier), labels ~ Bernoulli(truth)."""
    rng = np.random.default_rng(seed)
    ny, nx = truth.shape
    ci, cj = rng.integers(5, ny - 5, n_clusters), rng.integers(5, nx - 5, n_clusters)
    i = np.clip(np.repeat(ci, per_cluster) + rng.integers(-3, 4, n_clusters * per_cluster), 0,
                ny - 1)
    j = np.clip(np.repeat(cj, per_cluster) + rng.integers(-3, 4, n_clusters * per_cluster), 0,
                nx - 1)
    p = truth[i, j]
    lab = (rng.random(len(p)) < p).astype(int)
    gdf = gpd.GeoDataFrame(
        {"label": lab, "group": np.repeat([f"rg{k}" for k in range(n_clusters)], per_cluster),
         "weight": 1.0, "p_truth": p},
        geometry=gpd.points_from_xy(ds.x.values[j], ds.y.values[i]), crs=4326)
    return gdf


@pytest.fixture(scope="module")
def region():
    return make_region()


@pytest.fixture(scope="module")
def labels(region):
    ds, truth = region
    return sample_labels(ds, truth)


@pytest.fixture(scope="module")
def trained(region, labels):
    ds, _ = region
    return train_model(labels, ds, model="xgboost", device="cpu", seed=0, params=FAST)


# ---------------------------------------------------------------------------------------
# the must-hold checks on a generated truth
# ---------------------------------------------------------------------------------------
def test_spatial_cv_close_to_truth(trained, labels):
    model, rep = trained.model, trained.report
    y, p = labels["label"].to_numpy(), labels["p_truth"].to_numpy()
    auc_truth = roc_auc_score(y, p)
    brier_truth = brier_score_loss(y, p)
    auc_sp = rep.spatial_summary["auc"]["mean"]
    # truth = logistic function of the covariates: spatial-CV AUC within 0.03 of the truth's
    # own AUC on the same points (measured 0.975 vs 0.982 for 1200 clustered points)
    assert auc_truth - 0.03 < auc_sp <= auc_truth + 0.01, (auc_sp, auc_truth)
    # calibrated (cross-fitted, out-of-fold) Brier score: at most 0.025 above the truth's
    # own Brier score (measured 0.058 vs 0.053) and not meaningfully below it
    assert brier_truth - 0.01 < rep.oof_metrics["brier"] < brier_truth + 0.025
    assert rep.device == "cpu" and model.metadata["device"] == "cpu"
    assert len(rep.spatial_folds) == 5 and all(np.isfinite(f["auc"]) for f in rep.spatial_folds)
    for m in ("auc", "balanced_accuracy", "kappa", "brier"):
        assert rep.spatial_summary[m]["std"] >= 0


def test_random_cv_more_optimistic_with_unexplained_spatial_structure():
    # truth with a spatially autocorrelated term that no covariate explains; clustered labels:
    # random folds put cluster-mates in training and test and overstate skill
    ds, truth = make_region(b_maat=-0.8, b_latent=1.5)
    lab = sample_labels(ds, truth, seed=1)
    rep = train_model(lab, ds, device="cpu", seed=1, params=FAST).report
    assert rep.random_summary["auc"]["mean"] > rep.spatial_summary["auc"]["mean"]
    assert rep.random_summary["brier"]["mean"] < rep.spatial_summary["brier"]["mean"]


def test_groups_stay_in_one_fold(region, labels):
    ds, _ = region
    from permafrost.cv import metric_xy

    mx, my = metric_xy(labels.geometry.x, labels.geometry.y, labels.crs)
    merged = merge_groups(block_ids(mx, my, 1500.0), labels["group"].to_numpy(object))
    folds = make_folds(labels["label"].to_numpy(), n_splits=5, groups=merged, seed=0)
    fold_of = np.empty(len(labels), int)
    for k, (_tr, te) in enumerate(folds):
        fold_of[te] = k
    per_group = labels.assign(f=fold_of).groupby("group")["f"].nunique()
    assert (per_group == 1).all()
    # and every CV unit (block, with groups moved whole) stays in one fold
    assert (labels.assign(f=fold_of, u=merged).groupby("u")["f"].nunique() == 1).all()
    # folds are of comparable size (no chaining of blocks into one giant unit)
    sizes = [len(te) for _tr, te in folds]
    assert max(sizes) < 3 * min(sizes)


def test_merge_groups_moves_groups_whole():
    blocks = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    groups = np.array(["a", None, "a", "a", None, "b", "b", "b"], dtype=object)
    m = merge_groups(blocks, groups)
    assert m[0] == m[2] == m[3] == m[4]  # group a: mostly in block 1
    assert m[1] != m[0]  # ungrouped point stays in block 0
    assert m[5] == m[6] == m[7]  # group b joins block 3


def test_variogram_range_recovers_simulated_range():
    # Gaussian field with exponential covariance, practical range 3a = 3000 m
    rng = np.random.default_rng(5)
    n = 900
    x, y = rng.uniform(0, 20000, n), rng.uniform(0, 20000, n)
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    cov = np.exp(-d / 1000.0)
    z = np.linalg.cholesky(cov + 1e-8 * np.eye(n)) @ rng.standard_normal(n)
    r = variogram_range(x, y, z, seed=0)
    assert r is not None and 1500 < r < 6000  # within a factor of 2 of 3000 m


def test_deterministic_model_files(region, labels, tmp_path):
    ds, _ = region
    outs = []
    for k in range(2):
        m = train_model(labels, ds, model="xgboost", device="cpu", seed=3, params=FAST,
                        random_cv=False).model
        outs.append(save_model(m, tmp_path / f"m{k}"))
    files = sorted(p.relative_to(outs[0]) for p in outs[0].rglob("*") if p.is_file())
    assert {"metadata.json", "predictor.json", "calibration.json"} <= {str(f) for f in files}
    assert any(str(f).startswith("folds/") for f in files)
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
    # a different seed gives a different model (the check above can fail)
    m = train_model(labels, ds, model="xgboost", device="cpu", seed=4, params=FAST,
                    random_cv=False).model
    other = save_model(m, tmp_path / "m_other")
    assert (other / "predictor.json").read_bytes() != (outs[0] / "predictor.json").read_bytes()


@pytest.mark.parametrize("kind", ["logistic", "rf"])
def test_other_models_train_save_load(region, labels, tmp_path, kind):
    ds, _ = region
    params = {"n_estimators": 30, "max_depth": 6} if kind == "rf" else None
    trained = train_model(labels, ds, model=kind, device="cpu", seed=0, params=params,
                          calibration="sigmoid", random_cv=False)
    m, rep = trained.model, trained.report
    assert rep.spatial_summary["auc"]["mean"] > 0.75
    out = save_model(m, tmp_path / kind)
    m2 = load_model(out)
    from permafrost.covariates import extract_at_points

    Xdf = extract_at_points(ds[m2.feature_names], labels).values
    Xa = Xdf.to_numpy("float32")
    np.testing.assert_array_equal(m.predict_pzi(Xa), m2.predict_pzi(Xa))
    assert m2.metadata["model_kind"] == kind
    assert set(m2.metadata["importance"]["mean_abs_shap"]) == set(m2.feature_names)
    if kind == "logistic":
        # Boeckli et al. (2012): colder -> more permafrost: negative standardised MAAT term
        assert m2.metadata["importance"]["coefficient_standardised"]["maat"] < 0
    else:
        assert sum(m2.metadata["importance"]["gain"].values()) == pytest.approx(1.0)


def test_importance_ranks_the_driving_covariate(trained):
    _, rep = trained.model, trained.report
    shap = rep.importance["mean_abs_shap"]
    gain = rep.importance["gain"]
    assert max(shap, key=shap.get) in ("maat", "ndvi")  # ndvi is a proxy of elevation too
    assert shap["maat"] + shap["ndvi"] > shap["pisr"]
    assert sum(gain.values()) == pytest.approx(1.0)


# ---------------------------------------------------------------------------------------
# the artefact and its contract
# ---------------------------------------------------------------------------------------
def test_contract_predict_raw_calibrate_pzi(trained, tmp_path):
    model, _ = trained.model, trained.report
    out = save_model(model, tmp_path / "model")
    m = load_model(out)
    assert m.feature_names == ["maat", "pisr", "ndvi"]
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-6, 6, 500), rng.uniform(180, 280, 500),
                         rng.uniform(0, 0.6, 500)]).astype("float32")
    X[:5, 0] = np.nan
    raw = m.predict_raw(X)
    assert raw.dtype == np.float32 and raw.shape == (500,)
    pzi = m.predict_pzi(X)
    assert pzi.dtype == np.float32 and (pzi >= 0).all() and (pzi <= 1).all()
    np.testing.assert_array_equal(pzi, m.calibrate(raw))
    np.testing.assert_array_equal(raw, model.predict_raw(X))
    # colder -> higher PZI on average
    assert pzi[X[:, 0] < -3].mean() > pzi[X[:, 0] > 3].mean()
    assert len(m.fold_models) == 5
    assert m.fold_models[0].predict(X).shape == (500,)
    with pytest.raises(ModelError, match="shape"):
        m.predict_raw(X[:, :2])
    m.check_features(["ndvi", "maat", "pisr", "dem"])
    with pytest.raises(ModelError) as ei:
        m.check_features(["maat", "dem"], source="stack.toml")
    assert "['pisr', 'ndvi']" in str(ei.value) and "stack.toml" in str(ei.value)
    assert "\n" not in str(ei.value)


def test_metadata_contents(trained, tmp_path):
    model, rep = trained.model, trained.report
    out = save_model(model, tmp_path / "model")
    meta = json.loads((out / "metadata.json").read_text())
    for key in ("feature_names", "grid", "training", "cv", "versions", "device", "calibration",
                "importance", "format_version"):
        assert key in meta
    assert meta["grid"]["epsg"] == 4326 and meta["grid"]["width"] == 260
    assert len(meta["training"]["data_sha256"]) == 64
    assert meta["cv"]["spatial"]["summary"]["auc"]["mean"] == pytest.approx(
        rep.spatial_summary["auc"]["mean"])
    rel = meta["calibration"]["reliability"]
    assert sum(rel["count"]) == rep.n_labels_used
    # no pickle anywhere; loading reads JSON only
    assert all(p.suffix == ".json" for p in out.rglob("*") if p.is_file())


def test_incomplete_and_incompatible_model_dirs(trained, tmp_path):
    model, _ = trained.model, trained.report
    out = save_model(model, tmp_path / "model")
    bad = tmp_path / "incomplete"
    shutil.copytree(out, bad)
    (bad / "calibration.json").unlink()
    with pytest.raises(ModelError, match=r"incomplete model directory, missing \['calibration"):
        load_model(bad)
    old = tmp_path / "old"
    shutil.copytree(out, old)
    meta = json.loads((old / "metadata.json").read_text())
    meta["format_version"] = 99
    (old / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ModelError, match="format version 99.*incompatible") as ei:
        load_model(old)
    assert "\n" not in str(ei.value)
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / "predictor.json").write_text("{not json")
    with pytest.raises(ModelError, match="predictor.json"):
        load_model(broken)
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nothing")


def test_save_is_atomic_and_overwrites(trained, tmp_path):
    model, _ = trained.model, trained.report
    out = save_model(model, tmp_path / "model")
    save_model(model, out)  # overwrite in place
    assert load_model(out).feature_names == model.feature_names
    assert not [p for p in tmp_path.iterdir() if ".pftmp-" in p.name]


# ---------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------
def test_too_few_labels_of_a_class(region, labels):
    ds, _ = region
    few = labels[(labels.label == 1) | (np.arange(len(labels)) < 40)].copy()
    few = few[(few.label == 1) | (few.index.isin(few[few.label == 0].index[:3]))]
    with pytest.raises(DataError) as ei:
        train_model(few, ds, device="cpu", params=FAST, labels_source="labels.gpkg")
    msg = str(ei.value)
    assert "too few labels of class no permafrost (0): 3" in msg and "labels.gpkg" in msg
    assert "\n" not in msg


def test_covariate_all_nodata_at_labels(region, labels):
    ds, _ = region
    ds2 = ds.assign(lst=ds.maat * np.nan)
    with pytest.raises(DataError, match="'lst' is no-data at all"):
        train_model(labels, ds2, device="cpu", params=FAST, covariates_source="cov/")


def test_non_binary_labels(region, labels):
    ds, _ = region
    bad = labels.assign(label=labels.label.astype(float))
    bad.loc[bad.index[:2], "label"] = 2
    with pytest.raises(DataError, match="2 labels are not 0/1"):
        train_model(bad, ds, device="cpu", params=FAST)


def test_device_resolution_never_silently_falls_back():
    ok, why = xgboost_gpu_usable()
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto", purpose="train") == ("cuda" if ok else "cpu")
    if not ok:
        with pytest.raises(InputError, match="no CUDA GPU is usable"):
            resolve_device("cuda", purpose="train")
    with pytest.raises(InputError, match="unknown device"):
        resolve_device("tpu")


# ---------------------------------------------------------------------------------------
# estimators and calibration
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [XGBoostPZI, RandomForestPZI, LogisticPZI])
def test_sklearn_contract(cls):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype("float32")
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0.8).astype(int)
    est = cls(device="cpu") if cls is not LogisticPZI else cls()
    if cls is not LogisticPZI:
        est.set_params(n_estimators=20)
    est2 = clone(est)
    assert est2.get_params() == est.get_params()
    assert est.fit(X, y) is est
    proba = est.predict_proba(X)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(axis=1), 1)
    assert roc_auc_score(y, proba[:, 1]) > 0.8
    assert set(est.predict(X)) <= {0, 1}


def test_balanced_weights():
    y = np.array([1, 1, 1, 0])
    w = balanced_weights(y, np.array([1.0, 1.0, 2.0, 1.0]))
    assert w[y == 1].sum() == pytest.approx(w[y == 0].sum())
    assert w[2] == pytest.approx(2 * w[0])


def test_sigmoid_calibration_recovers_known_curve():
    rng = np.random.default_rng(2)
    p = rng.uniform(0.01, 0.99, 20000)
    logit = np.log(p / (1 - p))
    true_p = 1 / (1 + np.exp(-(0.5 * logit - 1.0)))
    y = (rng.random(len(p)) < true_p).astype(int)
    c = fit_calibration(p, y, method="sigmoid")
    assert c["a"] == pytest.approx(0.5, abs=0.05) and c["b"] == pytest.approx(-1.0, abs=0.06)
    out = apply_calibration(c, p.astype("float32"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, true_p, atol=0.03)


@given(st.lists(st.floats(0, 1), min_size=2, max_size=50), st.sampled_from(["isotonic", "sigmoid"]))
@settings(max_examples=40, deadline=None)
def test_calibration_is_monotone_and_bounded(q, method):
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 400)
    y = (rng.random(400) < p).astype(int)
    c = fit_calibration(p, y, method=method)
    out = apply_calibration(c, np.sort(np.asarray(q, dtype="float32")))
    assert out.dtype == np.float32
    assert (out >= 0).all() and (out <= 1).all()
    assert (np.diff(out) >= -1e-6).all()


def test_isotonic_calibration_knots_and_reliability():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, 5000)
    y = (rng.random(5000) < p ** 2).astype(int)
    c = fit_calibration(p, y, method="isotonic")
    assert np.all(np.diff(c["x"]) >= 0) and np.all(np.diff(c["y"]) >= 0)
    q = apply_calibration(c, np.array([0.1, 0.5, 0.9, np.nan], dtype="float32"))
    assert np.isnan(q[3])
    np.testing.assert_allclose(q[:3], [0.01, 0.25, 0.81], atol=0.07)
    rel = reliability_curve(y, apply_calibration(c, p.astype("float32")), n_bins=10)
    assert sum(rel["count"]) == 5000
    ok = [i for i, v in enumerate(rel["mean_predicted"]) if v is not None and rel["count"][i] > 100]
    for i in ok:
        assert rel["observed_frequency"][i] == pytest.approx(rel["mean_predicted"][i], abs=0.06)


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------
def test_cli_train(region, labels, tmp_path):
    ds, _ = region
    cov = tmp_path / "cov"
    cov.mkdir()
    for v in ds.data_vars:
        ds[v].rio.write_nodata(-9999.0).rio.to_raster(cov / f"{v}.tif")
    lab = tmp_path / "labels.gpkg"
    labels.drop(columns=["p_truth"]).to_file(lab)
    out = tmp_path / "model"
    r = CliRunner().invoke(app, ["train", "--labels", str(lab), "--covariates", str(cov),
                                 "--out", str(out), "--device", "cpu", "--folds", "4",
                                 "--n-estimators", "40", "--seed", "1"])
    assert r.exit_code == 0, r.output
    assert "device cpu" in r.output and "auc" in r.output and "spatial folds" in r.output
    assert load_model(out).metadata["cv"]["folds"] == 4
    r = CliRunner().invoke(app, ["train", "--labels", str(lab), "--covariates", str(cov),
                                 "--out", str(out), "--model", "svm"])
    assert r.exit_code == 2
    assert "unknown model kind 'svm'" in r.output and "--model" in r.output
    assert "Traceback" not in r.output


# ---------------------------------------------------------------------------------------
# the logistic sample case (data_samples/generate.py --truth logistic, into tmp)
# ---------------------------------------------------------------------------------------
def _sample_labels_from_truth(sample_dir: Path, *, n_clusters=300, per_cluster=8, seed=0):
    """Clustered points (like rock glaciers) on valid truth cells, labels ~ Bernoulli(truth)."""
    from permafrost.io.rasters import read_raster

    truth = read_raster(sample_dir / "truth" / "pzi_truth.tif")
    vals = truth.values
    ny, nx = vals.shape
    rng = np.random.default_rng(seed)
    ci, cj = rng.integers(4, ny - 4, n_clusters), rng.integers(4, nx - 4, n_clusters)
    i = np.repeat(ci, per_cluster) + rng.integers(-4, 5, n_clusters * per_cluster)
    j = np.repeat(cj, per_cluster) + rng.integers(-4, 5, n_clusters * per_cluster)
    p = vals[i, j]
    ok = np.isfinite(p)
    i, j, p = i[ok], j[ok], p[ok]
    lab = (rng.random(len(p)) < p).astype(int)
    groups = np.repeat(np.arange(n_clusters), per_cluster)[ok]
    return gpd.GeoDataFrame({"label": lab, "group": groups, "p_truth": p},
                            geometry=gpd.points_from_xy(truth.x.values[j], truth.y.values[i]),
                            crs=truth.rio.crs)


def test_sample_region_against_truth(logistic_region):
    """On the logistic case (a truth of the covariates' own logistic form; data_samples/'s ttop
    truth depends on land cover, snow and debris the four covariates do not carry, so a model
    of them cannot reach the truth's own AUC there -- measured 0.77 against 0.89)."""
    from permafrost.workflows.covariates import build_stack

    sample_dir = logistic_region
    ds = build_stack(sample_dir / "covariates")
    gdf = _sample_labels_from_truth(sample_dir)
    rep = train_model(gdf, ds, device="cpu", seed=0, params={"n_estimators": 150}).report
    assert rep.dropped == {} and rep.n_labels_used == len(gdf)
    y, p = gdf["label"].to_numpy(), gdf["p_truth"].to_numpy()
    auc_truth, brier_truth = roc_auc_score(y, p), brier_score_loss(y, p)
    auc_sp = rep.spatial_summary["auc"]["mean"]
    # the truth is a logistic function of the four covariates: spatial-CV AUC within 0.03
    # of the truth's own AUC on the same points, calibrated Brier within 0.02 of the truth's
    # (measured: AUC 0.923 vs 0.936, Brier 0.098 vs 0.093)
    assert auc_truth - 0.03 < auc_sp < auc_truth + 0.01, (auc_sp, auc_truth)
    assert brier_truth - 0.01 < rep.oof_metrics["brier"] < brier_truth + 0.02
    assert rep.random_summary["auc"]["mean"] >= auc_sp - 0.01


def test_sample_region_with_fused_labels(logistic_region):
    """Labels made by permafrost.labels from the inventory and boreholes (interior sampling),
    on the logistic case, whose truth the model's covariates can express (on the ttop region
    the gap is the one issue 22 is about: measured AUC 0.70 against the truth's 0.85)."""
    from permafrost.covariates import extract_at_points
    from permafrost.workflows.covariates import build_stack
    from permafrost.io.rasters import read_raster
    from permafrost.workflows.labels import labels_from_files

    sample_dir = logistic_region
    ls = labels_from_files(inventories=[sample_dir / "inventory" / "rock_glaciers.gpkg"],
                           boreholes=[sample_dir / "boreholes" / "boreholes.csv"],
                           dem=sample_dir / "covariates" / "dem.tif", sampling="interior")
    g = ls.points
    ds = build_stack(sample_dir / "covariates")
    rep = train_model(g, ds, device="cpu", seed=0, params={"n_estimators": 150}).report
    truth = read_raster(sample_dir / "truth" / "pzi_truth.tif").to_dataset(name="t")
    at = extract_at_points(truth, g)
    tv, keep = at.values, at.keep
    y, w = g["label"].to_numpy()[keep], g["weight"].to_numpy()[keep]
    p = tv["t"].to_numpy()
    auc_truth = roc_auc_score(y, p, sample_weight=w)
    brier_truth = brier_score_loss(y, p, sample_weight=w)
    auc_sp = rep.spatial_summary["auc"]["mean"]
    # the labels carry the generator's sampling noise (activity drawn from the truth, points
    # of one rock glacier share one label): measured gap 0.045 in AUC, 0.006 in Brier;
    # stated tolerances 0.08 and 0.04
    assert auc_truth - 0.08 < auc_sp <= auc_truth + 0.01, (auc_sp, auc_truth)
    assert rep.oof_metrics["brier"] < brier_truth + 0.04
    # many points per rock glacier: random folds are clearly over-optimistic
    assert rep.random_summary["auc"]["mean"] > auc_sp


# ---------------------------------------------------------------------------------------
# GPU (skipped where no GPU is usable)
# ---------------------------------------------------------------------------------------
@pytest.mark.gpu
def test_cuda_training_and_cupy_prediction(region, labels, tmp_path):
    if not xgboost_gpu_usable()[0]:
        pytest.skip("no usable CUDA GPU")
    cupy = pytest.importorskip("cupy")
    ds, _ = region
    trained = train_model(labels, ds, device="cuda", seed=0, params=FAST, random_cv=False)
    m, rep = trained.model, trained.report
    assert rep.device == "cuda" and m.metadata["device"] == "cuda"
    rep_cpu = train_model(labels, ds, device="cpu", seed=0, params=FAST, random_cv=False).report
    # GPU and CPU hist differ in floating-point order only: same skill within 0.02 AUC
    assert rep.spatial_summary["auc"]["mean"] == pytest.approx(
        rep_cpu.spatial_summary["auc"]["mean"], abs=0.02)
    loaded = load_model(save_model(m, tmp_path / "gpu_model"))
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(-6, 6, 1000), rng.uniform(180, 280, 1000),
                         rng.uniform(0, 0.6, 1000)]).astype("float32")
    p_np = loaded.predict_pzi(X)
    p_cp = loaded.predict_pzi(cupy.asarray(X))
    assert isinstance(p_cp, cupy.ndarray) and p_cp.dtype == cupy.float32
    np.testing.assert_allclose(cupy.asnumpy(p_cp), p_np, atol=1e-5)


def test_monotone_constraint_makes_pzi_non_increasing_in_maat():
    """With {maat: -1} the PZI cannot rise with MAAT anywhere, whatever the noise in labels."""
    import geopandas as gpd
    import xarray as xr

    from permafrost.models import train_model

    rng = np.random.default_rng(3)
    n = 60
    y_, x_ = np.mgrid[0:n, 0:n]
    maat = (-6 + 8 * x_ / n + rng.normal(0, 0.3, (n, n))).astype("float32")
    other = rng.normal(0, 1, (n, n)).astype("float32")
    ds = xr.Dataset({"maat": (("y", "x"), maat), "other": (("y", "x"), other)},
                    coords={"y": 38.6 - 0.001 * (np.arange(n) + 0.5),
                            "x": 99.0 + 0.001 * (np.arange(n) + 0.5)}).rio.write_crs(4326)
    idx = rng.choice(n * n, 900, replace=False)
    r, c = np.unravel_index(idx, (n, n))
    p = 1 / (1 + np.exp(1.5 * (maat[r, c] + 2)))
    labels = gpd.GeoDataFrame({"label": (rng.random(len(idx)) < p).astype(int)},
                              geometry=gpd.points_from_xy(ds.x.values[c], ds.y.values[r]), crs=4326)
    model = train_model(labels, ds, model="xgboost", device="cpu", seed=0, folds=3,
                           block_size=2000.0, random_cv=False,
                           params={"n_estimators": 60, "monotone_constraints": {"maat": -1}}).model
    grid_maat = np.linspace(-8, 4, 200, dtype="float32")
    for o in (-1.0, 0.0, 1.5):
        X = np.column_stack([grid_maat, np.full_like(grid_maat, o)])
        raw = model.predict_raw(X)
        assert np.all(np.diff(raw) <= 1e-7), "raw probability rises with MAAT"
        assert np.all(np.diff(model.predict_pzi(X)) <= 1e-7)
    with pytest.raises(Exception, match="unknown features"):
        train_model(labels, ds, model="xgboost", device="cpu", seed=0, folds=3, block_size=2000.0,
                    random_cv=False, params={"n_estimators": 5, "monotone_constraints": {"mat": -1}})


def test_prior_shift_moves_the_prevalence_by_bayes_rule():
    """Saerens et al. (2002) eq. 2.4: odds scale by the ratio of the prevalence odds; the
    shift is the identity at equal prevalences and keeps the order of probabilities."""
    from permafrost.calibration import apply_calibration, prior_shift

    p = np.array([0.0, 0.1, 0.5, 0.9, 1.0, np.nan])
    np.testing.assert_allclose(prior_shift(p, 0.3, 0.3), p)
    q = prior_shift(p, 0.5, 0.2)
    assert q[2] == pytest.approx(0.2)  # a coin at a balanced prior is the new prior
    assert q[3] == pytest.approx(0.9 * 0.25 / (0.9 * 0.25 + 0.1))
    assert np.all(np.diff(q[:5]) >= 0) and np.isnan(q[5]) and q[0] == 0 and q[4] == 1
    params = {"method": "none", "prior_shift": {"from": 0.5, "to": 0.2}}
    np.testing.assert_allclose(apply_calibration(params, p[:5]), q[:5], rtol=1e-6)
