"""Categorical covariates (land cover, surface class): class codes, levels, one-hot coding.

A categorical covariate holds class codes (``1 = bedrock``, ``2 = coarse debris``...), not
quantities: code 4 is not "twice" code 2, and a model that reads the codes as numbers
imposes an order and a spacing the classes do not have.  A covariate is categorical when
its stack variable carries ``attrs["kind"] == "categorical"`` (set by
:func:`permafrost.workflows.covariates.build_stack` from a raster's ``kind=categorical``
tag, its GDAL category names or attribute table, or a stack file's ``kind``); its
``attrs["classes"]`` is the class table (``"1=bedrock;2=coarse debris;..."``, parsed by
:func:`permafrost.applicability.parse_class_table`).

How the models code them (docs/method.md, "Categorical covariates"):

* gradient-boosted trees and the random forest (both grown by XGBoost) split natively on
  sets of classes (XGBoost ``feature_types="c"``: a split sends a subset of the classes one
  way; Chen & Guestrin 2016; XGBoost documentation "Categorical Data");
* logistic regression uses treatment (dummy) coding: one 0/1 column per class but the
  reference class, the smallest code seen in training, so each coefficient is the log-odds
  offset of its class against the reference (Hastie, Tibshirani & Friedman 2009, Sect. 3.2
  and 4.4; :func:`one_hot`).

The levels of a covariate are the codes seen at the training labels
(:func:`levels_of`).  A model knows nothing of a class without labels: a cell of such a
class (or of a code not in the table at all) gets no PZI (NaN), is counted
(``unseen_class``) and is outside the domain of applicability
(:func:`permafrost.applicability.extrapolation_map`).  This is the rule for every model:
XGBoost would otherwise send an unseen class down one branch, and the dummy coding would
give it the reference class's offset, both a number without evidence.

References
----------
Chen, T. & Guestrin, C. (2016). XGBoost: a scalable tree boosting system. Proc. KDD 2016.
Hastie, T., Tibshirani, R. & Friedman, J. (2009). The Elements of Statistical Learning,
    2nd ed. Springer (Sect. 3.2: dummy variables; 4.4: logistic regression).
Fisher, R. A. (1925). Statistical Methods for Research Workers (the correlation ratio).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from permafrost.errors import DataError

__all__ = [
    "CATEGORICAL",
    "CONTINUOUS",
    "is_categorical",
    "categorical_names",
    "check_codes",
    "levels_of",
    "unseen_mask",
    "one_hot",
    "one_hot_names",
    "correlation_ratio",
]

#: the ``kind`` attribute of a categorical covariate
CATEGORICAL = "categorical"
#: the ``kind`` attribute of every other covariate read from files
CONTINUOUS = "continuous"


def is_categorical(da) -> bool:
    """Whether a stack variable is categorical (``attrs["kind"] == "categorical"``)."""
    return str(getattr(da, "attrs", {}).get("kind", "")).lower() == CATEGORICAL


def categorical_names(ds, names: Sequence[str]) -> list[str]:
    """The categorical ones of ``names`` (variables of the stack ``ds``), in order."""
    return [str(n) for n in names if is_categorical(ds[n])]


def check_codes(values, name: str, *, source=None) -> None:
    """Refuse non-integer class codes (a float raster declared categorical, a resampled map).

    Parameters
    ----------
    values : array-like
        Values of the categorical covariate (NaN: no value, allowed).
    name : str
        The covariate (for the message).
    source : path-like, optional
        Where it was read (for the message).

    Raises
    ------
    DataError
        A finite value is not an integer, or is negative.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    bad = v[(v != np.rint(v)) | (v < 0)]
    if bad.size:
        raise DataError(f"categorical covariate {name!r} holds {bad.size} value(s) that are not "
                        f"class codes (non-negative integers), e.g. {bad[0]:g}",
                        path=source, field=name,
                        fix="give the class map as integers (uint8/uint16/int) read with "
                            "nearest-neighbour resampling, or declare it kind = \"continuous\"")


def levels_of(values, name: str = "covariate", *, source=None) -> list[int]:
    """The class codes seen in ``values`` (NaN ignored), sorted: a covariate's levels.

    Raises :class:`~permafrost.errors.DataError` for non-integer codes (:func:`check_codes`).
    """
    check_codes(values, name, source=source)
    v = np.asarray(values, dtype=np.float64).ravel()
    return sorted({int(c) for c in np.rint(v[np.isfinite(v)]).tolist()})


def unseen_mask(X, columns: Mapping[int, Sequence[int]], *, xp=np):
    """Rows of ``X`` (n, p) whose code in a categorical column is not one of its levels.

    Parameters
    ----------
    X : ndarray (NumPy or CuPy), shape (n, p)
        Covariates in feature order.
    columns : mapping
        ``{column index: levels}`` of the categorical columns.
    xp : module
        The array library of ``X``.

    Returns
    -------
    ndarray of bool, shape (n,)
        True where some categorical code is finite but not a level (NaN codes are missing
        values, not unseen classes).
    """
    out = xp.zeros(X.shape[0], dtype=bool)
    for j, levels in columns.items():
        col = X[:, int(j)]
        known = xp.isin(col, xp.asarray(np.asarray(levels, dtype=col.dtype)))
        out |= xp.isfinite(col) & ~known
    return out


def one_hot(X, columns: Mapping[int, Sequence[int]], *, xp=np):
    """Treatment (dummy) coding of the categorical columns of ``X``.

    Every continuous column is kept in place; each categorical column ``j`` with levels
    ``l_0 < l_1 < ... < l_k`` is replaced by ``k`` 0/1 columns ``x == l_1 ... x == l_k``
    (the reference class ``l_0`` is all zeros; Hastie et al. 2009, Sect. 3.2).  A code
    that is not a level, or NaN, gives NaN in all of its dummy columns.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Covariates in feature order.
    columns : mapping
        ``{column index: levels}`` of the categorical columns.
    xp : module
        The array library of ``X`` (NumPy or CuPy).

    Returns
    -------
    ndarray of float64, shape (n, p - len(columns) + sum(len(levels) - 1))
    """
    X = xp.asarray(X, dtype=xp.float64)
    cols = []
    for j in range(X.shape[1]):
        if j not in columns:
            cols.append(X[:, j:j + 1])
            continue
        levels = [float(v) for v in columns[j]]
        x = X[:, j]
        bad = ~xp.isin(x, xp.asarray(levels))
        for lev in levels[1:]:
            cols.append(xp.where(bad, xp.nan, (x == lev).astype(xp.float64))[:, None])
    if not cols:
        return xp.zeros((X.shape[0], 0))
    return xp.concatenate(cols, axis=1)


def one_hot_names(names: Sequence[str], columns: Mapping[int, Sequence[int]]) -> list[str]:
    """The column names of :func:`one_hot` (``landcover=2`` for the dummy of class 2)."""
    out = []
    for j, n in enumerate(names):
        if j in columns:
            out += [f"{n}={int(v)}" for v in list(columns[j])[1:]]
        else:
            out.append(str(n))
    return out


def correlation_ratio(codes, values) -> float:
    """Fisher's correlation ratio η [-] of a numeric covariate on a categorical one.

    ``η² = Σ_c n_c (ȳ_c − ȳ)² / Σ_i (y_i − ȳ)²``: the share of the variance of ``values``
    explained by the classes (Fisher 1925).  It is what |r| is for two numeric covariates
    (η equals |r| for a linear relation), so it compares with the proxy threshold.

    Parameters
    ----------
    codes : array-like
        Class codes (NaN rows dropped).
    values : array-like
        The numeric covariate [its units] (NaN rows dropped).

    Returns
    -------
    float
        η in [0, 1]; 0 when the numeric covariate is constant.
    """
    c = np.asarray(codes, dtype=np.float64).ravel()
    y = np.asarray(values, dtype=np.float64).ravel()
    ok = np.isfinite(c) & np.isfinite(y)
    c, y = c[ok], y[ok]
    if y.size < 2:
        return 0.0
    tot = float(((y - y.mean()) ** 2).sum())
    if tot <= 0:
        return 0.0
    _, inv = np.unique(c, return_inverse=True)
    n = np.bincount(inv).astype(np.float64)
    means = np.bincount(inv, weights=y) / n
    between = float((n * (means - y.mean()) ** 2).sum())
    return float(np.sqrt(min(1.0, max(0.0, between / tot))))
