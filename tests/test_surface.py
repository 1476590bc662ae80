"""The surface-aware model (permafrost.surface): debris evidence does not set the PZI of
other ground (Boeckli et al. 2012), checked on generated data with a known truth."""

from __future__ import annotations

import logging

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr

from permafrost.errors import OptionError, ParameterError
from permafrost.io.model import load_model, save_model
from permafrost.models import train_model
from permafrost.predict import predict_pzi
from permafrost.surface import (
    SurfaceModel,
    debris_class_codes,
    find_surface,
    label_surfaces,
    train_surface_model,
)

CLASSES = ("1=bedrock;2=coarse debris (blocky);3=fine debris / soil;4=alpine meadow "
           "(vegetated);5=water;255=nodata")
#: logit offsets of the truth per class: debris colder (Balch effect), meadow warmer
OFFSET = {1: 0.0, 2: 2.5, 3: -0.5, 4: -2.0}
N = 80
CELL = 100.0


def _world(seed: int = 0, n_rg: int = 260, n_insitu: int = 300):
    """A grid with a MAAT gradient, random land-cover patches and a logistic truth with class
    offsets; rock-glacier labels only on debris, in-situ labels on the other classes."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:N, 0:N]
    maat = -4.0 + 6.0 * yy / (N - 1) + rng.normal(0, 0.3, (N, N))   # [degC]
    pisr = 150.0 + 40.0 * np.sin(xx / 7.0) + rng.normal(0, 5, (N, N))  # [W m-2]
    # land cover in 8x8-cell patches; one water patch
    patch = rng.choice([1, 2, 3, 4], size=(N // 8, N // 8), p=[0.15, 0.25, 0.35, 0.25])
    lc = np.kron(patch, np.ones((8, 8), dtype=int)).astype(np.float32)
    lc[:8, :8] = 5
    off = np.vectorize(lambda c: OFFSET.get(int(c), np.nan))(lc)
    z = -1.3 * maat - 0.01 * (pisr - 150.0) + off
    truth = 1.0 / (1.0 + np.exp(-z))
    ys = 5e6 - (np.arange(N) + 0.5) * CELL
    xs = 4e5 + (np.arange(N) + 0.5) * CELL
    ds = xr.Dataset({"maat": (("y", "x"), maat.astype(np.float32)),
                     "pisr": (("y", "x"), pisr.astype(np.float32)),
                     "landcover": (("y", "x"), lc)},
                    coords={"y": ys, "x": xs}).rio.write_crs("EPSG:32632")
    ds["landcover"].attrs.update(kind="categorical", classes=CLASSES)

    def draw(cells, k, source):
        pick = rng.choice(len(cells[0]), size=k, replace=False)
        r, c = cells[0][pick], cells[1][pick]
        y = (rng.random(k) < truth[r, c]).astype(int)
        return gpd.GeoDataFrame(
            {"label": y, "source": source, "evidence": "generated",
             "cell_row": r, "cell_col": c},
            geometry=gpd.points_from_xy(xs[c], ys[r]), crs="EPSG:32632")

    deb = np.nonzero(lc == 2)
    other = np.nonzero(np.isin(lc, [1, 3, 4]))
    labels = gpd.GeoDataFrame(
        __import__("pandas").concat([draw(deb, n_rg, "rock_glacier"),
                                     draw(other, n_insitu, "borehole")], ignore_index=True),
        crs="EPSG:32632")
    return ds, labels, truth, lc


def _class_means(pzi: np.ndarray, truth: np.ndarray, lc: np.ndarray) -> dict:
    return {c: (float(np.nanmean(pzi[lc == c])), float(np.mean(truth[lc == c])))
            for c in OFFSET}


KW = dict(model="logistic", seed=0, random_cv=False, calibration="sigmoid")


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def trained(world):
    ds, labels, _t, _lc = world
    return train_surface_model(labels, ds, **KW)


def test_surface_model_gets_each_class_and_the_pooled_model_does_not(world, trained):
    ds, labels, truth, lc = world
    model = trained.model
    assert isinstance(model, SurfaceModel)
    assert model.metadata["surface"]["mode"] == "separate"
    pzi = predict_pzi(model, ds).values
    assert np.all(np.isnan(pzi[lc == 5]))  # water: no PZI
    means = _class_means(pzi, truth, lc)
    for c, (got, want) in means.items():
        assert abs(got - want) < 0.08, (c, got, want)
    # the pooled model on the same labels (no land cover) cannot get every class: with its
    # level from the label mix the rock glaciers set other ground too high; with its level
    # from the in-situ labels (permafrost.level, the default) debris comes out far too low
    for level in ("labels", "auto"):
        pooled = train_model(labels, ds, features=["maat", "pisr"], level=level, **KW).model
        pm = _class_means(predict_pzi(pooled, ds).values, truth, lc)
        assert max(abs(g - w) for c, (g, w) in pm.items()) > 0.12, (level, pm)
    pm = _class_means(predict_pzi(train_model(labels, ds, features=["maat", "pisr"],
                                              level="labels", **KW).model, ds).values,
                      truth, lc)
    assert max(abs(g - w) for c, (g, w) in pm.items() if c != 2) > 0.12, pm
    # both parts' levels are recorded with what they rest on
    parts = model.metadata["surface"]["parts"]
    assert parts["debris"]["rests_on"].startswith("260 rock-glacier front labels")
    assert parts["ground"]["rests_on"] == "300 in-situ labels on other ground"
    assert parts["ground"]["reference_class"] == "fine debris / soil"
    assert set(parts["ground"]["offsets"]) == {"bedrock", "alpine meadow (vegetated)"}
    assert parts["ground"]["spatial_cv"]["auc"]["mean"] > 0.6
    assert {e["part"] for e in model.metadata["cv"]["spatial"]["per_fold"]} == {"debris",
                                                                                 "ground"}
    assert set(model.metadata["cv"]["per_source"]["scores"]) == {"rock_glacier", "borehole"}


def test_save_load_round_trip_and_uncertainty(world, trained, tmp_path):
    ds = world[0]
    model = trained.model
    a = predict_pzi(model, ds).values
    save_model(model, tmp_path / "m")
    back = load_model(tmp_path / "m")
    assert isinstance(back, SurfaceModel)
    b = predict_pzi(back, ds).values
    np.testing.assert_array_equal(a, b)
    from permafrost.predict import pzi_uncertainty

    s = pzi_uncertainty(back, ds).values
    assert np.isfinite(s[np.isfinite(b)]).all() and np.nanmax(s) > 0
    assert np.isnan(s[np.isnan(b)]).all()
    # a part's files swapped: refused
    meta = tmp_path / "m" / "ground" / "metadata.json"
    meta.write_text(meta.read_text().replace('"seed": 0', '"seed": 1'))
    with pytest.raises(Exception, match="differs"):
        load_model(tmp_path / "m")


def test_few_insitu_labels_fall_back_loudly(caplog):
    ds, labels, _t, _lc = _world(seed=1, n_insitu=20)
    with caplog.at_level(logging.WARNING):
        res = train_surface_model(labels, ds, **KW)
    m = res.model
    assert m.metadata["surface"]["mode"] == "pooled"
    assert list(m.parts) == ["pooled"]
    w = m.metadata["warnings"][0]
    assert "20 in-situ labels on other ground (fewer than 30)" in w
    assert "Fell back to one model on all labels" in w
    assert w in caplog.text and w in res.report.surface["warnings"]
    assert set(m.indicators["pooled"])  # the class offsets are in the pooled model


def test_labels_speak_for_their_surface():
    src = np.array(["rock_glacier", "rock_glacier", "borehole", "gtnp", "borehole"], object)
    lc = np.array([3.0, 2.0, 2.0, 4.0, 1.0])
    assert label_surfaces(src, lc, [2]).tolist() == ["debris", "debris", "debris", "ground",
                                                     "ground"]


def test_options_fail_in_one_line(world):
    ds, labels, _t, _lc = world
    assert find_surface(ds, "auto") == "landcover"
    assert find_surface(ds, "none") is None
    assert find_surface(ds.drop_vars("landcover")) is None
    for bad, msg in (("elevation", "not in the stack"), ("maat", "not categorical")):
        with pytest.raises(OptionError, match=msg) as ei:
            find_surface(ds, bad)
        assert "\n" not in str(ei.value.args[0])
    assert debris_class_codes({1: "rock", 2: "Blocky debris"}) == [2]
    with pytest.raises(OptionError, match="not in the land-cover table"):
        debris_class_codes({1: "rock", 2: "coarse debris"}, [7])
    with pytest.raises(ParameterError, match="names no coarse-debris class") as ei:
        debris_class_codes({1: "rock", 3: "meadow"})
    assert ei.value.param == "debris_classes" and "{1: 'rock', 3: 'meadow'}" in str(ei.value)
    with pytest.raises(OptionError, match="without a land-cover covariate"):
        train_surface_model(labels, ds, surface="none", debris_classes=[2], **KW)


def test_predict_raster_and_report_with_the_composite(world, trained, tmp_path):
    """The file-facing prediction (PZI, fold spread) and the report take the composite; water
    cells count as missing, and the report shows the parts and the warnings at the top."""
    import rasterio

    from permafrost.report import render_report
    from permafrost.workflows.predict import predict_raster

    ds, _labels, _truth, lc = world
    save_model(trained.model, tmp_path / "m")
    r = predict_raster(tmp_path / "m", ds, tmp_path / "pzi.tif",
                       uncertainty=tmp_path / "unc.tif", chunk=256)
    assert r.missing == int((lc == 5).sum()) and r.valid == N * N - r.missing
    with rasterio.open(tmp_path / "pzi.tif") as s:
        got = s.read(1)
    np.testing.assert_allclose(got, predict_pzi(trained.model, ds).values, atol=1e-6)
    # the applicability counts labels per class of the model's own land cover: no "without
    # a land-cover map" warning
    from permafrost.workflows.applicability import applicability_from_files

    world[1].to_file(tmp_path / "labels.gpkg", layer="labels")
    app = applicability_from_files(tmp_path / "m", ds, tmp_path / "pzi.tif",
                                   labels=tmp_path / "labels.gpkg").as_dict()
    assert app["support"]["landcover"] == "covariate landcover (surface-aware model)"
    cls = {c["name"]: c["by_source"] for c in app["support"]["surface"]["classes"]}
    assert cls["coarse debris (blocky)"] == {"borehole": 0, "rock_glacier": 260}
    assert not any("Without a land-cover map" in w["message"] for w in app["warnings"])
    meta = load_model(tmp_path / "m").metadata
    meta = {**meta, "warnings": ["a surface warning"]}
    html = render_report({"model": meta})
    assert "Surface-aware model" in html and "300 in-situ labels on other ground" in html
    assert html.index("a surface warning") < html.index("Surface-aware model")


def test_train_cli_options(world, tmp_path):
    """`permafrost train --surface/--debris-class`: a land cover written with its kind and
    classes tags trains the surface model; a bad choice is one line; a land cover without
    the categorical tags is refused by name."""
    from typer.testing import CliRunner

    from permafrost.cli import app

    ds, labels, _t, _lc = world
    cov = tmp_path / "covs"
    cov.mkdir()
    for v in ds.data_vars:  # the land cover as integer codes with its kind/classes tags
        (ds[v].astype("uint8", keep_attrs=True) if v == "landcover" else ds[v]).rio.to_raster(
            cov / f"{v}.tif")
    labels.to_file(tmp_path / "labels.gpkg", layer="labels")
    base = ["train", "--labels", str(tmp_path / "labels.gpkg"), "--covariates", str(cov),
            "--out", str(tmp_path / "model"), "--model", "logistic", "--no-random-cv"]
    runner = CliRunner()
    res = runner.invoke(app, base + ["--debris-class", "2"])
    assert res.exit_code == 0, res.output
    assert "Surface-aware model (separate" in res.output
    assert isinstance(load_model(tmp_path / "model"), SurfaceModel)
    import shutil

    shutil.rmtree(tmp_path / "model")
    plain = ds["landcover"].copy()
    plain.attrs = {}
    plain.rio.to_raster(cov / "landcover.tif")  # no tags: not categorical
    for extra, msg in ((["--surface", "landcover"], "is not categorical"),
                       (["--surface", "snow"], "is not in the stack"),
                       (["--debris-class", "2"], "without a land-cover covariate")):
        res = runner.invoke(app, base + extra)
        assert res.exit_code != 0, res.output
        err = " ".join(res.output.split())
        assert msg in err, res.output
        assert not (tmp_path / "model").exists()
    res = runner.invoke(app, base + ["--surface", "none", "--features", "maat,pisr"])
    assert res.exit_code == 0, res.output
    assert load_model(tmp_path / "model").metadata.get("surface") is None


def test_a_given_block_size_too_large_for_a_part_falls_back_to_its_own(world):
    """The pipeline hands one block size to both parts; a part whose labels it cuts into
    fewer blocks than folds gets its own (auto) blocks, and the run says so."""
    ds, labels, _t, _lc = world
    res = train_surface_model(labels, ds, block_size=4000.0, **KW)
    w = [m for m in res.model.metadata["warnings"] if "spatial blocks of the given" in m]
    assert w and "4,000 m for 5 folds" in w[0]
    rules = {p: v["block_size_m"] for p, v in res.model.metadata["surface"]["parts"].items()}
    assert all(b < 4000.0 for b in rules.values())


def test_xgboost_parts_round_trip(world, tmp_path):
    """Booster parts (with the indicator columns as features) save, load and predict the
    same; the booster's own feature names are checked against the routing."""
    ds, labels, _t, lc = world
    res = train_surface_model(labels, ds, model="xgboost", device="cpu", seed=0,
                              random_cv=False, params={"n_estimators": 30})
    assert res.model.parts["ground"].feature_names == ["maat", "pisr", "landcover_1",
                                                       "landcover_4"]
    a = predict_pzi(res.model, ds).values
    save_model(res.model, tmp_path / "x")
    b = predict_pzi(load_model(tmp_path / "x"), ds).values
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a[lc != 5]).all() and np.isnan(a[lc == 5]).all()
