"""Categorical covariates end to end: recognised in every covariate source, coded by every
model (native XGBoost set splits, treatment coding in the logistic model), saved and loaded,
predicted (a class without training labels gets no PZI and is counted), in applicability,
proxies and the report.

The generated truth: ``logit p = -1.2 maat + offset[class]`` with offsets that are not
monotone in the class code (2 < 4 < 1 < 3), so a model that reads the codes as numbers
cannot rank the classes right.
"""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import rioxarray  # noqa: F401
import xarray as xr
from factories import write_raster
from rasterio.transform import from_origin
from shapely.geometry import Point

from permafrost.applicability import extrapolation_map, extrapolation_statistics, outside_range
from permafrost.categorical import correlation_ratio, levels_of, one_hot, unseen_mask
from permafrost.errors import ConfigError, DataError, ModelError, PermafrostError
from permafrost.io.model import load_model, save_model
from permafrost.io.rasters import raster_classes
from permafrost.models import train_model
from permafrost.predict import predict_block
from permafrost.proxies import covariate_dependence, proxy_warnings
from permafrost.pzi_model import LinearPredictor
from permafrost.report import render_report
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.predict import predict_raster

#: class offsets [log-odds], not monotone in the code
OFFSETS = {1: 0.0, 2: -3.0, 3: 2.0, 4: -1.0}
CLASSES = "1=bedrock;2=coarse debris;3=fine debris;4=meadow;5=water;255=nodata"
NY = NX = 90
RES = 30.0
X0, Y0 = 600_000.0, 5_100_000.0


def _grid():
    x = X0 + (np.arange(NX) + 0.5) * RES
    y = Y0 - (np.arange(NY) + 0.5) * RES
    return x, y


def make_stack(*, categorical: bool = True, seed: int = 0) -> xr.Dataset:
    """MAAT rising west to east, land cover in random 3x3-cell patches of classes 1-4."""
    rng = np.random.default_rng(seed)
    x, y = _grid()
    maat = np.tile(np.linspace(-4.0, 4.0, NX), (NY, 1)).astype(np.float32)
    patches = rng.choice(list(OFFSETS), (NY // 3, NX // 3))
    lc = np.kron(patches, np.ones((3, 3))).astype(np.float32)
    ds = xr.Dataset({"maat": (("y", "x"), maat), "landcover": (("y", "x"), lc)},
                    coords={"y": y, "x": x})
    ds = ds.rio.write_crs("EPSG:32632").rio.write_transform(from_origin(X0, Y0, RES, RES))
    ds["maat"].attrs["kind"] = "continuous"
    if categorical:
        ds["landcover"].attrs.update(kind="categorical", classes=CLASSES)
    return ds


def make_labels(ds: xr.Dataset, n: int = 1500, seed: int = 1) -> gpd.GeoDataFrame:
    """Labels drawn from the truth ``logit p = -1.2 maat + OFFSETS[class]``."""
    rng = np.random.default_rng(seed)
    r = rng.integers(0, NY, n)
    c = rng.integers(0, NX, n)
    maat = ds["maat"].values[r, c]
    lc = ds["landcover"].values[r, c]
    eta = -1.2 * maat + np.array([OFFSETS[int(k)] for k in lc])
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-eta))).astype(int)
    x, yy = _grid()
    return gpd.GeoDataFrame({"label": y}, geometry=[Point(x[j], yy[i]) for i, j in zip(r, c)],
                            crs="EPSG:32632")


FAST = {"xgboost": {"n_estimators": 120}, "rf": {"n_estimators": 100}, "logistic": None}


def _train(kind, ds, labels, seed=0):
    return train_model(labels, ds, model=kind, folds=3, random_cv=False, seed=seed,
                       params=FAST[kind], block_size=600.0)


def _pzi_per_class(model, maat: float = 0.0) -> np.ndarray:
    X = np.array([[maat, k] for k in OFFSETS], dtype=np.float32)
    return np.asarray(model.predict_pzi(X), dtype=np.float64)


@pytest.fixture(scope="module")
def stack():
    return make_stack()


@pytest.fixture(scope="module")
def labels(stack):
    return make_labels(stack)


@pytest.fixture(scope="module")
def trained(stack, labels):
    return {k: _train(k, stack, labels) for k in ("logistic", "xgboost", "rf")}


# ----------------------------------------------------------------------------- models


@pytest.mark.parametrize("kind", ["logistic", "xgboost", "rf"])
def test_each_model_ranks_the_classes_as_the_truth(trained, kind):
    res = trained[kind]
    m = res.model
    assert m.metadata["features_categorical"] == {"landcover": [1, 2, 3, 4]}
    cov = m.metadata["covariates"]
    assert cov["maat"] == {"kind": "continuous"}
    assert cov["landcover"]["kind"] == "categorical"
    assert cov["landcover"]["classes"] == CLASSES
    assert cov["landcover"]["codes_without_labels"] == [5]  # 255 = nodata left out
    # the domain: a range for maat, the classes seen for land cover
    assert set(m.metadata["training"]["ranges"]) == {"maat"}
    assert m.metadata["training"]["categories"] == {"landcover": [1, 2, 3, 4]}
    p = _pzi_per_class(m)
    truth_order = np.argsort([OFFSETS[k] for k in OFFSETS])  # 2 < 4 < 1 < 3
    assert list(np.argsort(p)) == list(truth_order), p
    # one importance per covariate, not per dummy column
    assert set(res.report.importance["mean_abs_shap"]) == {"maat", "landcover"}


def test_logistic_recovers_the_class_offsets(trained):
    off = trained["logistic"].report.importance["class_offsets"]["landcover"]
    assert off["1"] == 0.0  # the reference class: the smallest code
    for k in (2, 3, 4):
        assert abs(off[str(k)] - (OFFSETS[k] - OFFSETS[1])) < 0.6, off


def test_boosters_split_natively_on_classes(trained):
    for kind in ("xgboost", "rf"):
        b = trained[kind].model.predictor.booster
        assert list(b.feature_types) == ["q", "c"]


def test_reading_the_codes_as_numbers_fails_the_ranking(stack, labels):
    """The check above can fail: without the categorical declaration, the logistic
    model reads the codes as a number and ranks the classes by code."""
    res = _train("logistic", make_stack(categorical=False), labels)
    assert res.model.metadata["features_categorical"] == {}
    p = _pzi_per_class(res.model)
    truth_order = np.argsort([OFFSETS[k] for k in OFFSETS])
    assert list(np.argsort(p)) != list(truth_order)


@pytest.mark.parametrize("kind", ["logistic", "xgboost"])
def test_round_trip_and_prediction_identical(trained, stack, kind, tmp_path):
    m = trained[kind].model
    save_model(m, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert back.categorical == {"landcover": [1, 2, 3, 4]}
    block = np.stack([stack["maat"].values, stack["landcover"].values]).astype(np.float32)
    a, _, ca = predict_block(m, block, device="cpu")
    b, _, cb = predict_block(back, block, device="cpu")
    np.testing.assert_array_equal(a, b)
    assert ca == cb and ca["unseen_class"] == 0
    # the files of the predict path: byte-identical rasters from the saved and the memory model
    r1 = predict_raster(m, stack, tmp_path / "a.tif", device="cpu", chunk=32)
    r2 = predict_raster(tmp_path / "m", stack, tmp_path / "b.tif", device="cpu", chunk=64)
    with rasterio.open(r1.pzi) as s1, rasterio.open(r2.pzi) as s2:
        np.testing.assert_array_equal(s1.read(1), s2.read(1))


def test_same_seed_same_model_files(stack, labels, tmp_path):
    for i in (0, 1):
        save_model(_train("xgboost", stack, labels, seed=3).model, tmp_path / f"m{i}")
    for name in ("predictor.json", "calibration.json"):
        assert (tmp_path / "m0" / name).read_bytes() == (tmp_path / "m1" / name).read_bytes()


def test_logistic_file_is_json_with_its_coding(trained, tmp_path):
    save_model(trained["logistic"].model, tmp_path / "m")
    d = json.loads((tmp_path / "m" / "predictor.json").read_text())
    assert d["categorical"] == {"1": [1, 2, 3, 4]}
    assert len(d["coef"]) == 1 + 3  # maat + three dummies (reference class 1)


def test_load_refuses_a_metadata_that_disagrees_on_categorical(trained, tmp_path):
    for kind in ("logistic", "xgboost"):
        d = tmp_path / kind
        save_model(trained[kind].model, d)
        meta = json.loads((d / "metadata.json").read_text())
        meta["features_categorical"] = {}
        (d / "metadata.json").write_text(json.dumps(meta))
        with pytest.raises(ModelError, match="categorical"):
            load_model(d)


# ----------------------------------------------------------------------------- unseen classes


def test_unseen_class_gets_no_pzi_and_is_counted(trained, stack, tmp_path):
    ds = stack.copy(deep=True)
    lc = ds["landcover"].values.copy()
    lc[:10, :10] = 5  # water: in the class table, but no label is on it
    lc[10:12, :10] = 9  # a code in no table at all
    ds["landcover"].values[:] = lc
    for kind in ("logistic", "xgboost", "rf"):
        m = trained[kind].model
        res = predict_raster(m, ds, tmp_path / f"{kind}.tif", device="cpu", chunk=32)
        assert res.unseen_class == 120
        assert res.valid + res.missing + res.masked == res.pixels
        with rasterio.open(res.pzi) as src:
            p = src.read(1)
        assert np.isnan(p[:12, :10]).all() and np.isfinite(p[12:, :]).all()
    # applicability: those cells are outside the domain (bit 2 of land cover), not nodata
    pzi = xr.DataArray(p, dims=("y", "x"), coords={"y": ds.y, "x": ds.x}).rio.write_crs(
        ds.rio.crs).rio.write_transform(ds.rio.transform())
    meta = trained["xgboost"].model.metadata["training"]
    mask = extrapolation_map(ds, meta["ranges"], ["maat", "landcover"], pzi=pzi,
                             categories=meta["categories"]).values
    assert (mask[:12, :10] == 1 << 2).all()
    assert (mask[12:, :] == 0).all()
    st = extrapolation_statistics(xr.DataArray(mask, dims=("y", "x"), coords=pzi.coords)
                                  .rio.write_crs(ds.rio.crs)
                                  .rio.write_transform(ds.rio.transform()),
                                  ["maat", "landcover"], categorical=["landcover"])
    lc_stat = st["covariates"]["landcover"]
    assert lc_stat["kind"] == "categorical"
    assert lc_stat["share"] == pytest.approx(120 / (NY * NX), rel=1e-3)


def test_outside_range_analytic():
    block = np.array([[[0.5, 3.0], [-1.0, 0.0]], [[1.0, 2.0], [7.0, np.nan]]])
    out = outside_range(block, np.array([0.0, np.nan]), np.array([2.0, np.nan]),
                        codes={1: [1, 2]})
    assert out.tolist() == [[0, 2], [1 | 4, 0]]


# ----------------------------------------------------------------------------- science helpers


def test_one_hot_treatment_coding_and_unseen():
    X = np.array([[0.5, 3.0], [1.0, 1.0], [2.0, 7.0], [3.0, np.nan]])
    out = one_hot(X, {1: [1, 3, 4]})
    np.testing.assert_array_equal(out[:2], [[0.5, 1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.isnan(out[2:, 1:]).all()
    assert unseen_mask(X, {1: [1, 3, 4]}).tolist() == [False, False, True, False]


def test_levels_refuse_non_integer_codes():
    assert levels_of(np.array([2.0, 1.0, np.nan, 2.0])) == [1, 2]
    with pytest.raises(DataError, match="not class codes"):
        levels_of(np.array([1.0, 1.5]), "landcover")


def test_linear_predictor_json_round_trip():
    lp = LinearPredictor(coef=[1.0, 2.0, -1.0], intercept=0.1, mean=[0, 0, 0],
                         scale=[1, 1, 1], fill=[0, 0, 0], categorical={1: [2, 5, 7]})
    d = json.loads(lp.to_bytes())
    back = LinearPredictor(**{k: v for k, v in d.items() if k != "type"})
    X = np.array([[1.0, 2.0], [1.0, 5.0], [1.0, 7.0], [1.0, 3.0]], dtype=np.float32)
    p = back.predict(X)
    z = np.array([1.0, 3.0, 0.0]) + 0.1
    np.testing.assert_allclose(p[:3], 1 / (1 + np.exp(-z)), rtol=1e-6)
    assert np.isnan(p[3])


def test_correlation_ratio_analytic():
    codes = np.repeat([1, 2, 3], 100)
    assert correlation_ratio(codes, codes * 0 + np.repeat([5.0, -1.0, 2.0], 100)) == \
        pytest.approx(1.0)
    rng = np.random.default_rng(0)
    assert correlation_ratio(codes, rng.normal(size=300)) < 0.2
    assert correlation_ratio(codes, np.ones(300)) == 0.0


def test_proxies_do_not_correlate_codes_as_numbers(stack):
    ds = stack.copy()
    ds["ndvi"] = ds["landcover"].where(ds["landcover"] != 2, 0.0) * 0.1 + 0 * ds["maat"]
    dep = covariate_dependence(ds, ["maat", "landcover", "ndvi"])
    assert "landcover" not in dep["spearman"]
    assert set(dep["categorical"]["landcover"]) == {"maat", "ndvi"}
    assert dep["categorical"]["landcover"]["ndvi"] == pytest.approx(1.0)
    assert dep["categorical"]["landcover"]["maat"] < 0.2
    w = proxy_warnings(dep, ["maat", "landcover", "ndvi"], {"ndvi": "ndvi"})
    assert any(x["held"] == "landcover" and "η" in x["message"] for x in w)


# ----------------------------------------------------------------------------- stacks


def _write_pair(d, *, lc_dtype="uint8", tags=None, transform=None):
    x = np.linspace(-3, 3, 40)
    maat = np.tile(x, (30, 1))
    lc = (np.arange(40)[None, :] // 10 + 1).repeat(30, axis=0)
    transform = transform or from_origin(X0, Y0, RES, RES)
    write_raster(d / "maat.tif", maat, crs="EPSG:32632", transform=transform)
    p = write_raster(d / "landcover.tif", lc, crs="EPSG:32632", transform=transform,
                     dtype=lc_dtype, nodata=255 if lc_dtype == "uint8" else -9999.0)
    if tags:
        with rasterio.open(p, "r+") as dst:
            dst.update_tags(**tags)
    return p


def test_directory_stack_reads_a_tagged_raster_as_categorical_nearest(tmp_path):
    d = tmp_path / "cov"
    _write_pair(d, tags={"kind": "categorical", "classes": CLASSES})
    # a target grid offset by a third of a cell and finer: bilinear would mix the codes
    like = write_raster(tmp_path / "like.tif", np.zeros((50, 70)), crs="EPSG:32632",
                        transform=from_origin(X0 + 10.0, Y0 - 10.0, 17.0, 17.0))
    ds = build_stack(d, like=like, chunks=None)
    lc = ds["landcover"]
    assert lc.attrs["kind"] == "categorical"
    assert lc.attrs["classes"] == CLASSES
    assert lc.attrs["resampling"] == "nearest"
    vals = lc.values[np.isfinite(lc.values)]
    assert set(np.unique(vals).tolist()) <= {1.0, 2.0, 3.0, 4.0}
    assert ds["maat"].attrs["kind"] == "continuous"
    assert ds["maat"].attrs["resampling"] == "bilinear"
    # on its own grid too
    same = build_stack(d, chunks=None)
    assert same["landcover"].attrs["kind"] == "categorical"


def test_category_names_and_attribute_table_declare_categorical(tmp_path):
    p = _write_pair(tmp_path / "a")
    assert not raster_classes(p).categorical
    (tmp_path / "a" / "landcover.tif.aux.xml").write_text(
        "<PAMDataset><PAMRasterBand band=\"1\"><CategoryNames><Category></Category>"
        "<Category>rock</Category><Category>debris</Category></CategoryNames>"
        "</PAMRasterBand></PAMDataset>")
    info = raster_classes(p)
    assert info.categorical and info.classes == "1=rock;2=debris"
    ds = build_stack(tmp_path / "a", chunks=None)
    assert ds["landcover"].attrs["kind"] == "categorical"
    q = _write_pair(tmp_path / "b")
    (tmp_path / "b" / "landcover.tif.aux.xml").write_text(
        "<PAMDataset><PAMRasterBand band=\"1\"><GDALRasterAttributeTable>"
        "<FieldDefn index=\"0\"><Name>Value</Name><Type>0</Type><Usage>5</Usage></FieldDefn>"
        "<FieldDefn index=\"1\"><Name>Class</Name><Type>2</Type><Usage>2</Usage></FieldDefn>"
        "<Row index=\"0\"><F>1</F><F>bedrock</F></Row><Row index=\"1\"><F>4</F><F>meadow</F>"
        "</Row></GDALRasterAttributeTable></PAMRasterBand></PAMDataset>")
    assert raster_classes(q).classes == "1=bedrock;4=meadow"


def test_float_categorical_is_refused_in_one_line(tmp_path):
    _write_pair(tmp_path / "cov", lc_dtype="float32", tags={"kind": "categorical"})
    with pytest.raises(DataError) as e:
        build_stack(tmp_path / "cov", chunks=None)
    msg = str(e.value)
    assert "\n" not in msg and "landcover.tif" in msg and "integer" in msg
    assert e.value.fix


def test_stack_file_kind_categorical(tmp_path):
    d = tmp_path / "cov"
    _write_pair(d)  # untagged uint8
    (tmp_path / "s.toml").write_text(
        "[covariates.maat]\npath = 'cov/maat.tif'\n"
        "[covariates.landcover]\npath = 'cov/landcover.tif'\nkind = 'categorical'\n"
        "classes = '1=a;2=b;3=c;4=d'\n")
    ds = build_stack(tmp_path / "s.toml", chunks=None)
    assert ds["landcover"].attrs["kind"] == "categorical"
    assert ds["landcover"].attrs["classes"] == "1=a;2=b;3=c;4=d"
    assert ds["maat"].attrs["kind"] == "continuous"
    # a tagged raster is categorical in a stack file without `kind`; `kind` overrides it
    with rasterio.open(d / "landcover.tif", "r+") as dst:
        dst.update_tags(kind="categorical", classes=CLASSES)
    (tmp_path / "t.toml").write_text("[covariates.landcover]\npath = 'cov/landcover.tif'\n")
    assert build_stack(tmp_path / "t.toml", chunks=None)["landcover"].attrs["classes"] == CLASSES
    (tmp_path / "u.toml").write_text(
        "[covariates.landcover]\npath = 'cov/landcover.tif'\nkind = 'continuous'\n")
    assert build_stack(tmp_path / "u.toml", chunks=None)["landcover"].attrs["kind"] == \
        "continuous"
    (tmp_path / "v.toml").write_text(
        "[covariates.landcover]\npath = 'cov/landcover.tif'\nkind = 'categorical'\n"
        "resampling = 'bilinear'\n")
    with pytest.raises(ConfigError, match="resampling"):
        build_stack(tmp_path / "v.toml", chunks=None)
    _write_pair(tmp_path / "f", lc_dtype="float32")
    (tmp_path / "w.toml").write_text(
        "[covariates.landcover]\npath = 'f/landcover.tif'\nkind = 'categorical'\n")
    with pytest.raises(DataError) as e:
        build_stack(tmp_path / "w.toml", chunks=None)
    assert e.value.field == "covariates.landcover.kind"


def test_non_integer_codes_in_memory_refused_at_training(stack, labels):
    ds = stack.copy(deep=True)
    ds["landcover"].values[:] = ds["landcover"].values + 0.5
    with pytest.raises(PermafrostError, match="not class codes"):
        _train("logistic", ds, labels)


# ----------------------------------------------------------------------------- report


def test_report_lists_kind_and_classes(trained, tmp_path):
    html = render_report({"model": trained["logistic"].model.metadata})
    assert "Covariates" in html
    assert "coarse debris" in html and "categorical" in html
    assert "treatment (dummy) coding" in html


def test_model_without_categorical_still_loads(tmp_path):
    from factories import train_small_model

    m = load_model(train_small_model(tmp_path / "m"))
    assert m.categorical == {}
    shutil.rmtree(tmp_path / "m")


def test_scenario_cannot_shift_class_codes_but_may_replace_the_map(tmp_path):
    from permafrost.config import CovariateChange

    d = tmp_path / "cov"
    _write_pair(d, tags={"kind": "categorical", "classes": CLASSES})
    with pytest.raises(ConfigError, match="class codes"):
        build_stack(d, chunks=None, changes={"landcover": CovariateChange(offset=1.0)})
    new = write_raster(tmp_path / "lc2.tif", np.full((30, 40), 3), crs="EPSG:32632",
                       transform=from_origin(X0, Y0, RES, RES), dtype="uint8", nodata=255)
    ds = build_stack(d, chunks=None, changes={"landcover": CovariateChange(file=new)})
    assert ds["landcover"].attrs["kind"] == "categorical"
    assert np.unique(ds["landcover"].values).tolist() == [3.0]
