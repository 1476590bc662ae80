"""Compiled inference of an XGBoost booster's trees (Numba), bit-identical to ``inplace_predict``.

:func:`compile_booster` reads the booster's own JSON (``save_raw("json")``) and pads every
tree to full depth: per tree, arrays of split feature (int32), threshold (float32) and
default-direction flag over the ``2**D - 1`` internal slots and leaf values (float32) over
the ``2**D`` leaf slots; a leaf above depth ``D`` is repeated over its whole subtree (its
padding splits are never needed: every path below it ends on the same value).  The kernels
(:mod:`permafrost._tree_kernels`, QuickScorer's algorithm) evaluate every split of a tree
for a tile of rows as contiguous, branch-free SIMD comparisons that clear leaves from a
per-row bit mask; the exit leaf is the leftmost one left.  XGBoost's rule: ``x < threshold``
goes left, a missing value (NaN) the split's default direction.

The sum is XGBoost's: per row, start from the base margin (``base_score`` turned into a
margin in float32) and add the trees' leaves in tree order in float32, then the logistic
function in float32 (``1 / (1 + exp(-m))``).  One call runs on one thread and releases the
GIL, so the threads of a block-wise prediction run it side by side; rows are independent,
so the bytes do not depend on how the rows are split.

Covered: ``binary:logistic`` (and ``reg:logistic``), ``gbtree`` with numerical splits only,
one target, depth at most :data:`MAX_DEPTH` (6: the evaluator compares all ``2**D - 1``
splits, which beats XGBoost's walk up to that depth and loses beyond it); a random forest
(one round of parallel trees) is the same sum and is covered at those depths.  Anything
else raises :class:`Unsupported` with the reason; :class:`permafrost.pzi_model.
BoosterPredictor` then keeps ``inplace_predict`` and records why
(:attr:`~permafrost.pzi_model.BoosterPredictor.inference_path`).  Numba is optional (the
``fast`` extra): without it, :class:`Unsupported` says so.
"""

from __future__ import annotations

import json

import numpy as np

__all__ = ["CompiledTrees", "Unsupported", "compile_booster", "sample_for", "sample_rows",
           "self_check", "keep_masks", "MAX_DEPTH", "PATH_COMPILED"]

#: deepest tree compiled: every one of the 2**depth - 1 splits is evaluated, which costs
#: less than XGBoost's own walk up to depth 6 (~6x less at depth 4, ~2x at 6) and would
#: cost more beyond; the leaf masks fit a uint64 up to 6 (docs/predict.md, "Tree inference")
MAX_DEPTH = 6
#: the inference path's name when compiled trees are used
PATH_COMPILED = "compiled (numba)"
_OBJECTIVES = ("binary:logistic", "reg:logistic")
_TILE = 1024  # rows per tile: the tile's columns and bit masks stay in L1/L2

_kernels = None


class Unsupported(Exception):
    """The booster (or the environment) is outside what the compiled evaluator covers."""


def _get_kernels():
    """:mod:`permafrost._tree_kernels` (Numba); :class:`Unsupported` when Numba is absent."""
    global _kernels
    if _kernels is None:
        try:
            from permafrost import _tree_kernels
        except ImportError as e:  # optional dependency: the `fast` extra
            raise Unsupported(f"numba not installed ({e}; `pip install "
                              "permafrost[fast]` adds it)") from None
        _kernels = _tree_kernels
    return _kernels


def _float32_list(v):
    return np.asarray([float(s) for s in v], dtype=np.float32)


def _base_margin(base_score: float) -> np.float32:
    """``base_score`` (probability) as a logistic margin, formed as XGBoost forms it:
    ``-logf(1/b - 1)`` in float32 with the C library's ``logf`` (called through Numba:
    NumPy's float32 log is its own SIMD approximation, and float64 log rounded to float32
    is not always glibc's ``logf`` either)."""
    return np.float32(_get_kernels().base_margin(np.float32(base_score)))


class CompiledTrees:
    """An XGBoost booster's trees padded to full depth, evaluated by a Numba kernel."""

    def __init__(self, feat, thr, dleft, leaves, depth: int, base: np.float32,
                 n_features: int, used=None) -> None:
        self.feat, self.thr, self.dleft, self.leaves = feat, thr, dleft, leaves
        # the real splits (False: padding below a shallow leaf, never evaluated)
        self.used = np.ones(feat.shape, dtype=np.bool_) if used is None else used
        self.depth = int(depth)
        self.base = np.float32(base)
        self.n_features = int(n_features)
        self._kernels = _get_kernels()
        # the kernels take the missing-value default as "goes right" flags
        self._dright = np.ascontiguousarray(~self.dleft)
        self._keep = keep_masks(self.depth)
        self._ones = self._keep.dtype.type(np.iinfo(self._keep.dtype).max)

    def predict(self, X) -> np.ndarray:
        """Probability of class 1 [-], 1-D float32, for a NumPy ``X`` (n, n_features)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"X has shape {X.shape}, need (n, {self.n_features})")
        if X.shape[0] == 0:
            return np.zeros(0, dtype=np.float32)
        XT = np.ascontiguousarray(X.T)  # features x rows: each split reads one column
        out = np.empty(X.shape[0], dtype=np.float32)
        alive = np.empty(_TILE, dtype=self._keep.dtype)
        self._kernels.predict(XT, self.feat, self.thr, self._dright, self.used, self._keep,
                              self.leaves, self.base, _TILE, alive, self._ones, out)
        return out


def keep_masks(depth: int) -> np.ndarray:
    """Per internal slot ``k`` of a full tree of ``depth`` (breadth-first order), the bit mask
    of the leaves (bit ``j`` = leaf slot ``j``, left to right) that stay possible when a row
    goes right at ``k``: all but those of ``k``'s left subtree (QuickScorer's node bitvector,
    Lucchese et al. 2015, SIGIR, doi:10.1145/2766462.2767733).  ``uint32`` up to depth 5,
    ``uint64`` at depth 6."""
    dtype = np.uint32 if depth <= 5 else np.uint64
    n_inner = 2 ** depth - 1
    keep = np.empty(n_inner, dtype=dtype)
    full = int(np.iinfo(dtype).max)
    for k in range(n_inner):
        level = int(np.floor(np.log2(k + 1)))
        span = 2 ** (depth - level)  # the leaves below k
        first = (k - (2 ** level - 1)) * span
        left = ((1 << (span // 2)) - 1) << first
        keep[k] = full & ~left
    return keep


def compile_booster(booster, *, max_depth: int = MAX_DEPTH) -> CompiledTrees:
    """Compile ``booster`` (an ``xgboost.Booster``); :class:`Unsupported` names what is not
    covered (the caller keeps ``inplace_predict``)."""
    _get_kernels()  # numba first: its absence is the cheapest reason
    j = json.loads(bytes(booster.save_raw(raw_format="json")))
    learner = j["learner"]
    obj = learner["objective"]["name"]
    if obj not in _OBJECTIVES:
        raise Unsupported(f"objective {obj}")
    if any(str(t) == "c" for t in learner.get("feature_types", []) or []):
        raise Unsupported("categorical features")
    lmp = learner["learner_model_param"]
    if int(lmp.get("num_class", "0") or 0) > 1 or int(lmp.get("num_target", "1") or 1) != 1:
        raise Unsupported("multiple targets/classes")
    gb = learner["gradient_booster"]
    if gb["name"] != "gbtree":
        raise Unsupported(f"booster {gb['name']}")
    base_s = str(lmp["base_score"]).strip("[]").split(",")
    if len(base_s) != 1:
        raise Unsupported("vector base_score")
    base = _base_margin(float(base_s[0]))
    n_features = int(lmp["num_feature"])
    trees = gb["model"]["trees"]
    if not trees:
        raise Unsupported("no trees")
    if any(int(t) != 0 for t in gb["model"].get("tree_info", [])):
        raise Unsupported("multiple targets/classes")
    parsed = []
    depth = 0
    for t in trees:
        if int(t["tree_param"].get("size_leaf_vector", "1") or 1) > 1:
            raise Unsupported("vector leaves")
        if any(int(s) != 0 for s in t["split_type"]):
            raise Unsupported("categorical splits")
        left = np.asarray(t["left_children"], dtype=np.int64)
        right = np.asarray(t["right_children"], dtype=np.int64)
        cond = _float32_list(t["split_conditions"])
        feat = np.asarray(t["split_indices"], dtype=np.int64)
        dl = np.asarray(t["default_left"], dtype=np.uint8)
        # node depths (children always have larger ids in XGBoost's layout: walk a stack)
        d = np.zeros(len(left), dtype=np.int64)
        stack = [0]
        while stack:
            k = stack.pop()
            if left[k] >= 0:
                d[left[k]] = d[right[k]] = d[k] + 1
                stack += [int(left[k]), int(right[k])]
        depth = max(depth, int(d.max()))
        if depth > min(max_depth, MAX_DEPTH):
            raise Unsupported(f"tree depth {depth} > {min(max_depth, MAX_DEPTH)}: deeper "
                              "trees are faster in XGBoost's own walk")
        if (feat[left >= 0] >= n_features).any():
            raise Unsupported("split feature out of range")
        parsed.append((left, right, cond, feat, dl))
    depth = max(depth, 1)
    n_inner, n_leaf = 2 ** depth - 1, 2 ** depth
    F = np.zeros((len(parsed), n_inner), dtype=np.int32)
    T = np.full((len(parsed), n_inner), np.inf, dtype=np.float32)
    DL = np.ones((len(parsed), n_inner), dtype=np.bool_)
    U = np.zeros((len(parsed), n_inner), dtype=np.bool_)
    L = np.zeros((len(parsed), n_leaf), dtype=np.float32)
    for ti, (left, right, cond, feat, dl) in enumerate(parsed):
        nodes = [(0, 0, 0)]  # (xgboost node, padded slot, level)
        while nodes:
            k, s, lev = nodes.pop()
            if left[k] < 0:  # leaf: its value over every leaf slot of its subtree
                span = 2 ** (depth - lev)
                first = (s + 1) * span - 1 - n_inner  # leftmost descendant leaf slot
                L[ti, first:first + span] = cond[k]
                continue
            F[ti, s] = feat[k]
            T[ti, s] = cond[k]
            DL[ti, s] = bool(dl[k])
            U[ti, s] = True
            nodes += [(int(left[k]), 2 * s + 1, lev + 1), (int(right[k]), 2 * s + 2, lev + 1)]
    return CompiledTrees(F, T, DL, L, depth, base, n_features, used=U)


def sample_rows(n_features: int, *, lo=None, hi=None, n: int = 4096, seed: int = 0,
                block=None) -> np.ndarray:
    """Rows for :func:`self_check`: ``block``'s rows if given (at most ``n``, plus copies
    with NaNs), else uniform in ``[lo, hi]`` per feature (default ±1e3 when unknown), with
    about 10 % NaNs and exact copies of the thresholds so ties are exercised."""
    rng = np.random.default_rng(seed)
    if block is not None and len(block):
        B = np.asarray(block, dtype=np.float32)[:n]
        Bn = B.copy()
        Bn[rng.random(Bn.shape) < 0.1] = np.nan
        return np.concatenate([B, Bn])
    lo = np.full(n_features, -1e3) if lo is None else np.asarray(lo, dtype=np.float64)
    hi = np.full(n_features, 1e3) if hi is None else np.asarray(hi, dtype=np.float64)
    X = rng.uniform(lo, hi, size=(n, n_features)).astype(np.float32)
    X[rng.random(X.shape) < 0.1] = np.nan
    return X


def sample_for(compiled: CompiledTrees, *, block=None, n: int = 4096,
               seed: int = 0) -> np.ndarray:
    """Rows for :func:`self_check`: random rows over each feature's threshold range
    (widened by its span on both sides; ±1 around a lone threshold), about 10 % NaN, plus
    ``block``'s rows (at most ``n``, and a copy with NaNs) when given."""
    lo = np.full(compiled.n_features, -1.0)
    hi = np.full(compiled.n_features, 1.0)
    fin = np.isfinite(compiled.thr)
    for j in range(compiled.n_features):
        t = compiled.thr[fin & (compiled.feat == j)].astype(np.float64)
        if t.size:
            span = max(float(t.max() - t.min()), 1.0)
            lo[j], hi[j] = t.min() - span, t.max() + span
    X = sample_rows(compiled.n_features, lo=lo, hi=hi, n=n, seed=seed)
    if block is not None and len(block):
        X = np.concatenate([X, sample_rows(compiled.n_features, block=block, n=n,
                                           seed=seed)])
    return X


def self_check(compiled: CompiledTrees, booster, X) -> str | None:
    """``None`` when ``compiled`` reproduces ``booster.inplace_predict`` bit for bit on
    ``X``, else the reason (how many rows differ)."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    # thresholds as values: ties (x == threshold) and the values just around them
    thr = compiled.thr[np.isfinite(compiled.thr)]
    if thr.size:
        rng = np.random.default_rng(1)
        k = min(len(X), 512)
        Xt = X[:k].copy()
        j = rng.integers(0, compiled.n_features, size=k)
        Xt[np.arange(k), j] = rng.choice(thr, size=k)
        X = np.concatenate([X, Xt])
    ref = np.asarray(booster.inplace_predict(X, missing=np.nan)).reshape(-1).astype(np.float32)
    got = compiled.predict(X)
    bad = ref.view(np.uint32) != got.view(np.uint32)
    if bad.any():
        return f"self-check: {int(bad.sum())} of {len(X)} probabilities differ from XGBoost"
    return None
