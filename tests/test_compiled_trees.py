"""Compiled tree inference (permafrost.compiled_trees): bit-identical to XGBoost's
``inplace_predict``, per-model fallback, self-check, recorded path."""

from __future__ import annotations

import builtins
import pickle
import sys

import numpy as np
import pytest

xgb = pytest.importorskip("xgboost")
pytest.importorskip("numba")

from permafrost import compiled_trees as ct  # noqa: E402
from permafrost.pzi_model import BoosterPredictor  # noqa: E402


def _data(seed, n=2000, k=5, nan=0.1):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, k)) * rng.uniform(0.1, 100, size=k)).astype(np.float32)
    y = (X[:, 0] + rng.normal(size=n) * X[:, 0].std() > 0).astype(int)
    X[rng.random(X.shape) < nan] = np.nan
    return X, y


def _booster(seed, rounds=30, **params):
    X, y = _data(seed)
    p = {"objective": "binary:logistic", "nthread": 1, "seed": seed, **params}
    return xgb.train(p, xgb.DMatrix(X, y, missing=np.nan), rounds), X


def _bits(a):
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


CASES = [
    dict(max_depth=1),
    dict(max_depth=3),
    dict(max_depth=4, base_score=0.2),
    dict(max_depth=6, base_score=0.85, subsample=0.7),
    dict(max_depth=6, min_child_weight=0.1, learning_rate=0.5),  # deep: uint64 masks
    dict(max_depth=2, learning_rate=0.9),
    dict(max_depth=4, monotone_constraints="(1,-1,0,0,0)"),
    dict(max_depth=5, tree_method="exact", base_score=0.5),
    dict(max_depth=3, objective="reg:logistic"),
]


@pytest.mark.parametrize("seed,params", list(enumerate(CASES)))
def test_compiled_probabilities_are_bit_identical(seed, params):
    b, X = _booster(seed, **params)
    c = ct.compile_booster(b)
    Xs = np.concatenate([X, ct.sample_for(c, n=20000, seed=seed)])
    Xs[::97] = np.nan  # all-missing rows: every default direction
    Xs[1::101, 0], Xs[2::101, 1] = np.inf, -np.inf  # infinities: plain comparisons
    ref = b.inplace_predict(Xs, missing=np.nan)
    assert np.array_equal(_bits(ref), _bits(c.predict(Xs)))
    assert ct.self_check(c, b, Xs[:3000]) is None
    # float64 input: XGBoost reads it as float32, so does the evaluator
    assert np.array_equal(_bits(b.inplace_predict(Xs.astype(np.float64), missing=np.nan)),
                          _bits(c.predict(Xs.astype(np.float64))))


def test_random_forest_is_covered_and_bit_identical():
    b, X = _booster(11, rounds=1, max_depth=6, num_parallel_tree=25, subsample=0.6,
                    colsample_bynode=0.6, learning_rate=1.0)
    c = ct.compile_booster(b)
    assert c.feat.shape[0] == 25
    Xs = np.concatenate([X, ct.sample_for(c, n=10000)])
    assert np.array_equal(_bits(b.inplace_predict(Xs, missing=np.nan)), _bits(c.predict(Xs)))


def test_the_models_random_forest_uses_the_compiled_path():
    from permafrost.models import RandomForestPZI, XGBoostPZI

    X, y = _data(3, n=600)
    for est in (XGBoostPZI(n_estimators=20, max_depth=3),
                RandomForestPZI(n_estimators=20, max_depth=5)):
        est.fit(X, y)
        pred = BoosterPredictor(est.booster_, compiled=True)
        p = pred.predict(X, device="cpu")
        assert pred.inference_path == ct.PATH_COMPILED
        ref = BoosterPredictor(est.booster_, compiled=False).predict(X, device="cpu")
        assert np.array_equal(_bits(p), _bits(ref))


def test_predictions_do_not_depend_on_the_number_of_rows_or_threads():
    from concurrent.futures import ThreadPoolExecutor

    b, X = _booster(5, max_depth=5)
    c = ct.compile_booster(b)
    Xs = ct.sample_for(c, n=50000)
    full = c.predict(Xs)
    # a tile boundary (1024 rows) crossed at other offsets: the same bytes per row
    assert np.array_equal(_bits(full[:777]), _bits(c.predict(Xs[:777])))
    assert np.array_equal(_bits(full[1500:4000]), _bits(c.predict(Xs[1500:4000])))
    # threads sharing one compiled model (as a block-wise prediction's do)
    parts = np.array_split(np.arange(len(Xs)), 7)
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda i: c.predict(Xs[i]), parts))
    assert np.array_equal(_bits(full), _bits(np.concatenate(got)))


def test_categorical_model_falls_back():
    X, y = _data(2, n=800)
    X[:, 0] = np.random.default_rng(0).integers(0, 4, len(X))
    d = xgb.DMatrix(X, y, feature_types=["c", "q", "q", "q", "q"], enable_categorical=True)
    b = xgb.train({"objective": "binary:logistic", "max_depth": 3}, d, 10)
    with pytest.raises(ct.Unsupported, match="categorical"):
        ct.compile_booster(b)
    pred = BoosterPredictor(b, compiled=True)
    pred.predict(X, device="cpu")
    assert pred.inference_path.startswith("xgboost inplace_predict (categorical")


def test_other_objective_and_depth_cap_fall_back():
    X, y = _data(4, n=800)
    b = xgb.train({"objective": "reg:squarederror", "max_depth": 3}, xgb.DMatrix(X, y), 5)
    with pytest.raises(ct.Unsupported, match="objective"):
        ct.compile_booster(b)
    b, _ = _booster(4, max_depth=6, rounds=5)
    with pytest.raises(ct.Unsupported, match="depth"):
        ct.compile_booster(b, max_depth=2)
    # beyond depth 6 XGBoost's own walk is faster: its path, with the reason recorded
    b, X = _booster(9, max_depth=8, min_child_weight=0.1, rounds=5)
    with pytest.raises(ct.Unsupported, match="depth 8 > 6"):
        ct.compile_booster(b)
    pred = BoosterPredictor(b)
    pred.predict(X, device="cpu")
    assert pred.inference_path.startswith("xgboost inplace_predict (tree depth 8 > 6")


def _assert_xgboost_computes(b, X, reason):
    """A predictor asked for compiled trees falls back to XGBoost for ``reason``: its path
    says so and its probabilities are inplace_predict's."""
    pred = BoosterPredictor(b, compiled=True)
    p = pred.predict(X, device="cpu")
    assert pred.inference_path.startswith(f"xgboost inplace_predict ({reason}")
    assert np.array_equal(_bits(p), _bits(b.inplace_predict(X, missing=np.nan)))


def test_missing_numba_falls_back(monkeypatch):
    real_import = builtins.__import__

    def no_numba(name, *a, **k):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("No module named 'numba'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(ct, "_kernels", None)
    monkeypatch.delitem(sys.modules, "permafrost._tree_kernels", raising=False)
    monkeypatch.delattr(sys.modules["permafrost"], "_tree_kernels", raising=False)
    monkeypatch.setattr(builtins, "__import__", no_numba)
    b, X = _booster(6, max_depth=3, rounds=5)
    _assert_xgboost_computes(b, X, "numba not installed")


def test_self_check_difference_falls_back(monkeypatch):
    b, X = _booster(7, max_depth=3, rounds=5)
    real = ct.CompiledTrees.predict

    def off_by_one_ulp(self, X):
        p = real(self, X)
        p[len(p) // 2] = np.nextafter(p[len(p) // 2], np.float32(2))
        return p

    monkeypatch.setattr(ct.CompiledTrees, "predict", off_by_one_ulp)
    _assert_xgboost_computes(b, X, "self-check: 1 of")


def test_path_recorded_switch_and_pickle(monkeypatch):
    b, X = _booster(8, max_depth=3, rounds=5)
    pred = BoosterPredictor(b)  # on by default
    assert pred.inference_path == ct.PATH_COMPILED
    monkeypatch.setenv("PERMAFROST_COMPILED_TREES", "0")
    off = BoosterPredictor(b)
    assert off.inference_path == "xgboost inplace_predict (compiled trees switched off)"
    assert BoosterPredictor(b, compiled=True).inference_path == ct.PATH_COMPILED
    again = pickle.loads(pickle.dumps(pred))
    assert np.array_equal(_bits(again.predict(X, device="cpu")), _bits(pred.predict(X)))


@pytest.mark.parametrize("depth", [1, 2, 4, 6])
def test_leftmost_alive_leaf_is_the_walks_exit(depth):
    """QuickScorer's theorem on the padded layout: for any outcome of the splits, the
    leftmost leaf not cleared by a right-going split is the leaf a walk reaches."""
    keep = ct.keep_masks(depth)
    n_inner = 2 ** depth - 1
    rng = np.random.default_rng(depth)
    for _ in range(300):
        right = rng.random(n_inner) < 0.5
        k = 0
        for _ in range(depth):
            k = 2 * k + 1 + int(right[k])
        alive = int(np.iinfo(keep.dtype).max)
        for j in np.flatnonzero(right):
            alive &= int(keep[j])
        assert (alive & -alive).bit_length() - 1 == k - n_inner
