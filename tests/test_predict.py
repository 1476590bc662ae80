"""Chunked PZI prediction: equality with in-memory prediction, determinism, backends,
masks, zones, uncertainty, interruption, bounded memory, CLI; the lazy API (predict_pzi)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rio_cogeo.cogeo import cog_validate
from typer.testing import CliRunner

from permafrost.area import ZONE_CODES, ZONE_LIMITS, ZONE_NAMES
from permafrost.backends import gpu_available, open_executor, resolve_device
from permafrost.calibration import fit_calibration
from permafrost.errors import CRSError, GridMismatchError, InputError, ModelError
from permafrost.io.atomic import TMP_MARK, tmp_prefix
from permafrost.io.model import load_model, save_model
from permafrost.io.rasters import read_raster, write_cog
from permafrost.predict import predict_block, predict_pzi, pzi_uncertainty
from permafrost.pzi_model import BoosterPredictor, PZIModel
from permafrost.workflows.covariates import build_stack
from permafrost.workflows.predict import predict_raster
from processes import kill_at_progress

ROOT = Path(__file__).resolve().parents[1]
FEATURES = ["dem", "maat", "pisr", "ndvi"]
RES = 1 / 1800
X0, Y0 = 98.9, 38.6


# ----------------------------------------------------------------------------- factories


def _covariate_arrays(ny: int, nx: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Smooth-ish synthetic covariates with NaN holes in different places per layer."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype("float32")
    dem = 3000 + 2000 * (np.sin(xx / 37.0) * np.cos(yy / 23.0) + 1) / 2 + rng.normal(0, 30, (ny, nx))
    maat = 25.0 - 0.0065 * dem + rng.normal(0, 0.5, (ny, nx))
    pisr = 180 + 60 * np.sin(xx / 11.0 + yy / 17.0) + rng.normal(0, 5, (ny, nx))
    ndvi = np.clip(0.6 - (dem - 3000) / 4000 + rng.normal(0, 0.05, (ny, nx)), 0, 1)
    arrays = {"dem": dem, "maat": maat, "pisr": pisr, "ndvi": ndvi}
    for i, a in enumerate(arrays.values()):
        a[(i * 7) % ny: (i * 7) % ny + 3, 5 + i: 9 + i] = np.nan
    return {k: v.astype("float32") for k, v in arrays.items()}


def write_stack(directory: Path, ny: int = 150, nx: int = 210, *, seed: int = 0,
                nodata: float = -9999.0) -> Path:
    """A covariate directory: one tiled float32 GeoTIFF per feature on a geographic grid."""
    directory.mkdir(parents=True, exist_ok=True)
    transform = from_origin(X0, Y0, RES, RES)
    for name, arr in _covariate_arrays(ny, nx, seed=seed).items():
        data = np.where(np.isnan(arr), nodata, arr).astype("float32")
        with rasterio.open(directory / f"{name}.tif", "w", driver="GTiff", width=nx, height=ny,
                           count=1, dtype="float32", crs="EPSG:4326", transform=transform,
                           nodata=nodata, tiled=True, blockxsize=64, blockysize=64,
                           compress="DEFLATE") as dst:
            dst.write(data, 1)
    return directory


def make_model(*, n_trees: int = 40, folds: int = 3, seed: int = 0,
               features=FEATURES) -> PZIModel:
    """A real PZIModel: XGBoost boosters trained on synthetic labels + isotonic calibration."""
    import xgboost as xgb

    rng = np.random.default_rng(seed)
    n = 3000
    arr = _covariate_arrays(60, 50, seed=seed + 1)
    X = np.stack([arr[f].ravel() for f in features], axis=1)[:n]
    logit = -(X[:, 1] + 1.0) * 1.5 + 0.01 * (X[:, 2] - 180)  # colder -> permafrost
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"max_depth": 4, "eta": 0.2, "objective": "binary:logistic", "seed": seed,
              "nthread": 1}

    def fit(idx):
        return xgb.train(params, xgb.DMatrix(X[idx], y[idx], missing=np.nan), n_trees)

    main = BoosterPredictor(fit(np.arange(len(X))))
    fold_id = np.arange(len(X)) % max(folds, 1)
    fold_models = [BoosterPredictor(fit(np.flatnonzero(fold_id != k))) for k in range(folds)]
    cal = fit_calibration(main.predict(X), y, method="isotonic")
    return PZIModel(predictor=main, calibration=cal, feature_names=list(features),
                    metadata={"note": "test model"}, fold_models=fold_models if folds else [])


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return save_model(make_model(), tmp_path_factory.mktemp("model") / "model")


@pytest.fixture(scope="module")
def stack_dir(tmp_path_factory) -> Path:
    return write_stack(tmp_path_factory.mktemp("cov") / "covariates")


def reference_pzi(model_dir: Path, cov_dir: Path, excluded: np.ndarray | None = None
                  ) -> np.ndarray:
    """The model's prediction on the whole in-memory array (independent of the block code)."""
    model = load_model(model_dir)
    ds = build_stack(cov_dir, chunks=None)
    arr = np.stack([ds[f].values for f in model.feature_names], axis=-1)
    ny, nx, nf = arr.shape
    X = arr.reshape(-1, nf)
    p = np.asarray(model.predict_pzi(X)).reshape(ny, nx)
    p[np.isnan(arr).any(axis=-1)] = np.nan
    if excluded is not None:
        p[excluded] = np.nan
    return p


def read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True).filled(np.nan) if src.dtypes[0] == "float32" \
            else src.read(1)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- tests


def test_pzi_matches_in_memory_prediction_pixel_for_pixel(model_dir, stack_dir, tmp_path):
    out = tmp_path / "pzi.tif"
    res = predict_raster(model_dir, stack_dir, out, chunk=64, device="cpu", threads=2)
    got = read(out)
    want = reference_pzi(model_dir, stack_dir)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(got, want)  # exact, not approximately
    assert res.pixels == got.size and res.valid == np.count_nonzero(~np.isnan(want))
    assert res.valid + res.missing + res.masked == res.pixels
    assert res.missing > 0 and res.masked == 0
    assert res.blocks == 3 * 4 and res.device == "cpu" and res.backend == "threads"
    assert np.nanmin(got) >= 0 and np.nanmax(got) <= 1
    valid, errors, _ = cog_validate(str(out))
    assert valid, errors
    with rasterio.open(out) as src:
        assert src.dtypes[0] == "float32" and np.isnan(src.nodata)
        assert src.units == ("1",)  # a probability: dimensionless (GDAL's band unit type)
        tags = src.tags()
    assert tags["PZI_FEATURES"] == ",".join(FEATURES)
    assert tags["PZI_DEVICE"] == "cpu"
    # relative to the PZI's directory: no tag names where the checkout lives
    assert tags["PZI_MODEL"] == Path(os.path.relpath(model_dir.resolve(),
                                                     out.resolve().parent)).as_posix()
    assert tags["PZI_PATHS_RELATIVE_TO"] == "this file's directory"
    assert str(tmp_path) not in json.dumps(tags)
    assert len(tags["PZI_MODEL_SHA256"]) == 64
    assert json.loads(tags["PZI_COVARIATES"])["dem"].endswith("dem.tif")
    assert "xgboost" in tags["PZI_VERSIONS"]
    assert not any(p.name.startswith(".pzi.tif.pfblocks") for p in tmp_path.iterdir()), \
        "the block cache is removed after success"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pzi.qml", "pzi.tif"]  # + its QGIS style
    assert tags["PZI_INFERENCE"] == res.inference  # compiled trees, or XGBoost and why


def test_compiled_trees_and_xgboost_give_the_same_pixels(model_dir, stack_dir, tmp_path,
                                                          monkeypatch):
    """The compiled trees (the default CPU path) and XGBoost's inplace_predict write the same
    pixel bytes; the PZI_INFERENCE tag says which one computed them."""
    pytest.importorskip("numba")
    monkeypatch.setenv("PERMAFROST_COMPILED_TREES", "1")
    a = predict_raster(model_dir, stack_dir, tmp_path / "a.tif", chunk=64, device="cpu")
    monkeypatch.setenv("PERMAFROST_COMPILED_TREES", "0")
    b = predict_raster(model_dir, stack_dir, tmp_path / "b.tif", chunk=64, device="cpu")
    assert a.inference == "compiled (numba)"
    assert b.inference == "xgboost inplace_predict (compiled trees switched off)"
    with rasterio.open(tmp_path / "a.tif") as sa, rasterio.open(tmp_path / "b.tif") as sb:
        assert sa.read().tobytes() == sb.read().tobytes()
        assert sb.tags()["PZI_INFERENCE"] == b.inference


def test_sample_region_matches_in_memory_prediction(sample_dir, model_dir, tmp_path):
    """The sample region's covariates, its glacier/lake mask, blocks not aligned with the grid."""
    import geopandas as gpd
    from rasterio.features import geometry_mask

    cov = sample_dir / "covariates"
    mask = sample_dir / "masks" / "glaciers_lakes.gpkg"
    res = predict_raster(model_dir, cov, tmp_path / "pzi.tif", zones=tmp_path / "z.tif",
                         mask=mask, chunk=200, device="cpu")
    with rasterio.open(cov / "dem.tif") as src:
        excluded = geometry_mask(gpd.read_file(mask).to_crs(src.crs).geometry,
                                 out_shape=src.shape, transform=src.transform, invert=True)
    want = reference_pzi(model_dir, cov, excluded)
    got = read(res.pzi)
    np.testing.assert_array_equal(got, want)
    assert res.masked > 0 and res.valid == np.count_nonzero(~np.isnan(want))
    assert res.valid + res.missing + res.masked == res.pixels == got.size


def test_output_independent_of_chunk_and_threads_and_deterministic(model_dir, stack_dir,
                                                                    tmp_path):
    a = predict_raster(model_dir, stack_dir, tmp_path / "a.tif", chunk=64, device="cpu",
                       threads=2).pzi
    b = predict_raster(model_dir, stack_dir, tmp_path / "b.tif", chunk=100, device="cpu",
                       threads=1).pzi
    c = predict_raster(model_dir, stack_dir, tmp_path / "a.tif", chunk=64, device="cpu",
                       threads=2).pzi  # overwrite the same target
    assert sha(a) == sha(b) == sha(c)


def test_zones_and_uncertainty(model_dir, stack_dir, tmp_path):
    res = predict_raster(model_dir, stack_dir, tmp_path / "pzi.tif", zones=tmp_path / "z.tif",
                         uncertainty=tmp_path / "u.tif", chunk=64, device="cpu")
    pzi, z, u = read(res.pzi), read(res.zones), read(res.uncertainty)
    assert z.dtype == np.uint8
    nan = np.isnan(pzi)
    assert (z[nan] == 255).all() and (z[~nan] != 255).all()
    p = pzi.astype("float64")
    for name, lo, hi in (("none", -1, 0.01), ("isolated", 0.01, 0.1), ("sporadic", 0.1, 0.5),
                         ("discontinuous", 0.5, 0.9), ("continuous", 0.9, 2)):
        sel = ~nan & (p >= lo) & (p < hi)
        assert (z[sel] == ZONE_CODES[name]).all(), name
    assert len(np.unique(z[~nan])) >= 3, "the synthetic model spans several zones"
    # uncertainty: std of the calibrated fold predictions, computed here independently
    model = load_model(model_dir)
    ds = build_stack(stack_dir, chunks=None)
    X = np.stack([ds[f].values.ravel() for f in model.feature_names], axis=1)
    folds = np.stack([model.calibrate(fm.predict(X)) for fm in model.fold_models]).astype("f8")
    want = folds.std(axis=0).astype("float32").reshape(pzi.shape)
    want[nan] = np.nan
    np.testing.assert_allclose(u, want, rtol=0, atol=1e-7)
    assert np.isnan(u[nan]).all() and (u[~nan] >= 0).all() and np.nanmax(u) > 0
    with rasterio.open(res.zones) as src:
        assert src.nodata == 255 and "continuous" in src.tags()["PZI_CONTENT"]
        # a colour table in the file and category names beside it: GIS show zones by name
        cmap = src.colormap(1)
        assert cmap[ZONE_CODES["continuous"]] == (8, 48, 107, 255) and cmap[255][3] == 0
    aux = Path(str(res.zones) + ".aux.xml").read_text()
    cats = re.findall(r"<Category>(.*?)</Category>", aux)
    assert cats == sorted(ZONE_CODES, key=ZONE_CODES.get)
    with rasterio.open(res.uncertainty) as src:
        assert src.tags()["PZI_FOLD_MODELS"] == "3"


def test_vector_mask_excludes_polygons(model_dir, stack_dir, tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    # a glacier in UTM (another CRS) and a lake in lon/lat, one straddling a block edge
    glacier = gpd.GeoSeries([box(X0 + 20 * RES, Y0 - 90 * RES, X0 + 80 * RES, Y0 - 50 * RES)],
                            crs="EPSG:4326").to_crs("EPSG:32647")
    lake = box(X0 + 150 * RES, Y0 - 30 * RES, X0 + 170 * RES, Y0 - 10 * RES)
    gdf = gpd.GeoDataFrame({"kind": ["glacier", "lake"]},
                           geometry=[glacier.iloc[0], None], crs="EPSG:32647")
    gdf.loc[1, "geometry"] = gpd.GeoSeries([lake], crs="EPSG:4326").to_crs("EPSG:32647").iloc[0]
    mask = tmp_path / "glaciers_lakes.gpkg"
    gdf.to_file(mask)
    res = predict_raster(model_dir, stack_dir, tmp_path / "pzi.tif", mask=mask, chunk=64,
                         device="cpu")
    # independent expectation: rasterize on the whole grid at once
    from rasterio.features import geometry_mask

    with rasterio.open(stack_dir / "dem.tif") as src:
        excluded = geometry_mask(gdf.to_crs(4326).geometry, out_shape=src.shape,
                                 transform=src.transform, invert=True)
    got = read(res.pzi)
    np.testing.assert_array_equal(got, reference_pzi(model_dir, stack_dir, excluded))
    want_masked = np.count_nonzero(excluded & ~np.isnan(reference_pzi(model_dir, stack_dir)))
    assert res.masked == want_masked > 1000
    assert res.valid + res.missing + res.masked == res.pixels


def test_raster_mask_on_the_grid_and_aligned_from_another_grid(model_dir, stack_dir, tmp_path):
    with rasterio.open(stack_dir / "dem.tif") as src:
        profile = src.profile | {"dtype": "uint8", "nodata": 255}
        shape = src.shape
    m = np.zeros(shape, "uint8")
    m[10:40, 100:200] = 1
    m[0:5, 0:5] = 255  # nodata in the mask does not exclude
    with rasterio.open(tmp_path / "mask.tif", "w", **profile) as dst:
        dst.write(m, 1)
    res = predict_raster(model_dir, stack_dir, tmp_path / "pzi.tif", mask=tmp_path / "mask.tif",
                         chunk=64, device="cpu")
    np.testing.assert_array_equal(read(res.pzi),
                                  reference_pzi(model_dir, stack_dir, m == 1))
    # off the grid (cells twice as large, same corner): put on the grid by nearest
    # neighbour, so each mask cell covers 2 x 2 covariate pixels (no centre on an edge)
    coarse = np.zeros((-(-shape[0] // 2), -(-shape[1] // 2)), "uint8")
    coarse[5:20, 50:100] = 1
    coarse[0:3, 0:3] = 255  # nodata still excludes nothing
    profile |= {"transform": from_origin(X0, Y0, 2 * RES, 2 * RES), "height": coarse.shape[0],
                "width": coarse.shape[1]}
    with rasterio.open(tmp_path / "off.tif", "w", **profile) as dst:
        dst.write(coarse, 1)
    res = predict_raster(model_dir, stack_dir, tmp_path / "p2.tif", mask=tmp_path / "off.tif",
                         chunk=64, device="cpu")
    want = np.kron(coarse == 1, np.ones((2, 2), bool))[:shape[0], :shape[1]]
    np.testing.assert_array_equal(read(res.pzi), reference_pzi(model_dir, stack_dir, want))
    assert res.masked == np.count_nonzero(want & ~np.isnan(reference_pzi(model_dir, stack_dir)))


@pytest.mark.slow
def test_local_cluster_backend_gives_the_same_bytes(model_dir, stack_dir, tmp_path):
    a = predict_raster(model_dir, stack_dir, tmp_path / "threads.tif", chunk=64, device="cpu",
                       zones=tmp_path / "zt.tif")
    b = predict_raster(model_dir, stack_dir, tmp_path / "cluster.tif", chunk=64, device="cpu",
                       workers=2, zones=tmp_path / "zc.tif")
    assert b.backend == "local-cluster"
    assert sha(a.pzi) == sha(b.pzi)
    assert sha(a.zones) == sha(b.zones)


@pytest.mark.slow
def test_existing_cluster_by_scheduler_address(model_dir, stack_dir, tmp_path):
    from distributed import LocalCluster

    ref = predict_raster(model_dir, stack_dir, tmp_path / "threads.tif", chunk=64, device="cpu")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None) as cluster:
        res = predict_raster(model_dir, stack_dir, tmp_path / "sched.tif", chunk=64,
                             device="cpu", scheduler=cluster.scheduler_address)
    assert res.backend == "cluster"
    assert sha(res.pzi) == sha(ref.pzi)


def test_in_memory_dataset_and_loaded_model_give_the_same_values(model_dir, stack_dir,
                                                                 tmp_path):
    ds = build_stack(stack_dir, chunks=None)  # numpy-backed, in memory
    res = predict_raster(load_model(model_dir), ds, tmp_path / "mem.tif", chunk=50,
                         device="cpu")
    np.testing.assert_array_equal(read(res.pzi), reference_pzi(model_dir, stack_dir))
    called = {}

    def builder(*, chunks):
        called["chunks"] = chunks
        return build_stack(stack_dir, chunks=chunks)

    res2 = predict_raster(model_dir, builder, tmp_path / "b.tif", chunk=64, device="cpu")
    assert called["chunks"] == {"y": 64, "x": 64}
    np.testing.assert_array_equal(read(res2.pzi), read(res.pzi))


def test_progress_reports_pixels_then_files(model_dir, stack_dir, tmp_path):
    events = []
    predict_raster(model_dir, stack_dir, tmp_path / "p.tif", zones=tmp_path / "z.tif", chunk=64,
                   device="cpu", progress=lambda *e: events.append(e))
    pix = [e for e in events if e[0] == "predict"]
    files = [e for e in events if e[0] == "write"]
    done = [d for _, d, _ in pix]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 150 * 210
    assert {t for _, _, t in pix} == {150 * 210}
    assert len(pix) == 1 + 12  # the start and one per block
    assert files == [("write", 0, 2), ("write", 1, 2), ("write", 2, 2)]


def test_toml_stack_file(model_dir, stack_dir, tmp_path):
    """A stack file naming the same rasters gives the same PZI as the directory."""
    toml = tmp_path / "stack.toml"
    toml.write_text("".join(f'[covariates.{f}]\npath = "{stack_dir / (f + ".tif")}"\n\n'
                            for f in FEATURES))
    res = predict_raster(model_dir, toml, tmp_path / "p.tif", chunk=64, device="cpu")
    np.testing.assert_array_equal(read(res.pzi), reference_pzi(model_dir, stack_dir))


def test_predict_block_counts_and_row_independence(model_dir):
    model = load_model(model_dir)
    arr = _covariate_arrays(20, 30, seed=5)
    block = np.stack([arr[f] for f in model.feature_names])
    ex = np.zeros((20, 30), bool)
    ex[:, :10] = True
    pzi, spread, counts = predict_block(model, block, excluded=ex, uncertainty=True)
    missing = np.isnan(block).any(axis=0)
    assert counts == {"pixels": 600, "valid": int((~missing & ~ex).sum()),
                      "missing": int(missing.sum()), "masked": int((~missing & ex).sum())}
    assert np.isnan(pzi[ex]).all() and np.isnan(spread[missing]).all()
    full = np.asarray(model.predict_pzi(block.reshape(len(FEATURES), -1).T)).reshape(20, 30)
    keep = ~missing & ~ex
    np.testing.assert_array_equal(pzi[keep], full[keep])


# ----------------------------------------------------------------------------- lazy API


def _raster_mask(stack_dir: Path, path: Path) -> np.ndarray:
    """A uint8 mask raster on the stack's grid (1 = excluded, 255 = nodata, not excluded)."""
    with rasterio.open(stack_dir / "dem.tif") as src:
        profile = src.profile | {"dtype": "uint8", "nodata": 255}
        shape = src.shape
    m = np.zeros(shape, "uint8")
    m[10:40, 100:200] = 1
    m[0:5, 0:5] = 255
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(m, 1)
    return m == 1


def test_predict_pzi_equals_the_cog_of_predict_raster_bit_for_bit(model_dir, stack_dir,
                                                                  tmp_path):
    """The lazy API and the file workflow give the same values, whatever the block size."""
    _raster_mask(stack_dir, tmp_path / "mask.tif")
    res = predict_raster(model_dir, stack_dir, tmp_path / "pzi.tif", mask=tmp_path / "mask.tif",
                         uncertainty=tmp_path / "u.tif", chunk=64, device="cpu")
    model = load_model(model_dir)
    mask = read_raster(tmp_path / "mask.tif") == 1
    for chunk, ds in ((64, build_stack(stack_dir, chunks={"y": 64, "x": 64})),
                      (50, build_stack(stack_dir, chunks=None))):  # Dask- and NumPy-backed
        pzi = predict_pzi(model, ds, device="cpu", mask=mask, chunk=chunk)
        np.testing.assert_array_equal(pzi.compute().values, read(res.pzi))
        u = pzi_uncertainty(model, ds, device="cpu", mask=mask, chunk=chunk)
        np.testing.assert_array_equal(u.values, read(res.uncertainty))
    # a numeric mask: non-zero and not NaN excluded (the mask raster's nodata is NaN here)
    pzi = predict_pzi(model, ds, device="cpu", mask=read_raster(tmp_path / "mask.tif"))
    np.testing.assert_array_equal(pzi.values, read(res.pzi))


class _CountingModel:
    """A PZIModel that records the rows of each raw prediction."""

    def __init__(self, model):
        self._model, self.rows = model, []

    def predict_raw(self, X, *, device=None):
        self.rows.append(len(X))
        return self._model.predict_raw(X, device=device)

    def __getattr__(self, name):
        return getattr(self._model, name)


def test_predict_pzi_is_lazy_and_computes_only_the_blocks_asked_for(model_dir, stack_dir):
    import dask.array as dsa

    model = _CountingModel(load_model(model_dir))
    ds = build_stack(stack_dir, chunks={"y": 64, "x": 64})
    pzi = predict_pzi(model, ds, device="cpu", chunk=64)
    assert isinstance(pzi.data, dsa.Array) and pzi.data.chunksize == (64, 64)
    assert model.rows == [], "nothing is predicted before it is asked for"
    block = pzi.isel(y=slice(0, 64), x=slice(0, 64)).values
    # one pixel to put the model on its device (once), then the one block's valid pixels
    assert model.rows == [1, np.count_nonzero(~np.isnan(block))]
    np.testing.assert_array_equal(block, pzi.values[:64, :64])


def test_predict_pzi_carries_crs_cf_attributes_and_the_zone_legend(model_dir, stack_dir,
                                                                  tmp_path):
    ds = build_stack(stack_dir, chunks={"y": 64, "x": 64})
    pzi = predict_pzi(load_model(model_dir), ds, device="cpu", chunk=64)
    assert pzi.name == "pzi" and pzi.dims == ("y", "x") and pzi.dtype == np.float32
    np.testing.assert_array_equal(pzi["x"], ds["x"])
    np.testing.assert_array_equal(pzi["y"], ds["y"])
    assert pzi.rio.crs == ds.rio.crs and pzi.rio.transform() == ds.rio.transform()
    assert np.isnan(pzi.rio.nodata)
    a = pzi.attrs
    assert a["units"] == "1" and (a["valid_min"], a["valid_max"]) == (0.0, 1.0)
    assert "probability of permafrost" in a["comment"] and a["long_name"]
    assert a["zone_limits"] == list(ZONE_LIMITS)
    assert a["zone_names"].split() == list(ZONE_NAMES)
    assert a["features"] == ",".join(FEATURES) and a["device"] == "cpu"
    u = pzi_uncertainty(load_model(model_dir), ds, device="cpu", chunk=64)
    assert u.name == "pzi_uncertainty" and u.attrs["units"] == "1" and u.attrs["fold_models"] == 3
    # the COG writer consumes it as it is
    write_cog(pzi, tmp_path / "lazy.tif", nodata=np.nan, dtype="float32")
    np.testing.assert_array_equal(read(tmp_path / "lazy.tif"), pzi.values)
    with rasterio.open(tmp_path / "lazy.tif") as src:
        assert src.crs == rasterio.crs.CRS.from_epsg(4326)


def test_predict_pzi_errors_are_the_packages(model_dir, stack_dir):
    model = load_model(model_dir)
    ds = build_stack(stack_dir, chunks=None)
    cases = [
        ({"model": str(model_dir)}, ModelError, "model", "permafrost.load_model"),
        ({"model": object()}, ModelError, "model", "not a PZI model"),
        ({"covariates": ds["dem"]}, InputError, "covariates", "xarray.Dataset"),
        ({"covariates": str(stack_dir)}, InputError, "covariates", "build_stack"),
        ({"covariates": ds.drop_vars("ndvi")}, ModelError, "covariates", r"\['ndvi'\]"),
        ({"covariates": ds.drop_vars("spatial_ref")}, CRSError, "covariates", "no CRS"),
        ({"mask": np.zeros((150, 210), bool)}, InputError, "mask", "DataArray"),
        ({"mask": ds["dem"].isel(x=slice(1, None)) > 0}, GridMismatchError, "mask",
         "not on the covariates' grid"),
        ({"chunk": 4}, InputError, "chunk", "16 <= chunk"),
        ({"device": "tpu"}, InputError, "device", "unknown device"),
    ]
    for change, error, fld, text in cases:
        kw = {"model": model, "covariates": ds, "device": "cpu"} | change
        with pytest.raises(error, match=text) as info:
            predict_pzi(kw.pop("model"), kw.pop("covariates"), **kw)
        assert info.value.field == fld and info.value.fix, change
    with pytest.raises(ModelError, match="no fold models") as info:
        pzi_uncertainty(make_model(folds=0), ds, device="cpu")
    assert info.value.field == "fold_models"


def test_missing_feature_is_a_model_error_naming_it(model_dir, stack_dir, tmp_path):
    partial = tmp_path / "cov"
    partial.mkdir()
    for f in ("dem", "maat", "pisr"):
        (partial / f"{f}.tif").write_bytes((stack_dir / f"{f}.tif").read_bytes())
    with pytest.raises(ModelError, match=r"lacks feature\(s\) \['ndvi'\]"):
        predict_raster(model_dir, partial, tmp_path / "pzi.tif")
    assert not (tmp_path / "pzi.tif").exists()


def test_uncertainty_needs_fold_models(stack_dir, tmp_path):
    mdir = save_model(make_model(folds=0), tmp_path / "nofolds")
    with pytest.raises(ModelError, match="fold_models.*no fold models"):
        predict_raster(mdir, stack_dir, tmp_path / "pzi.tif", uncertainty=tmp_path / "u.tif")


def test_bad_options(model_dir, stack_dir, tmp_path):
    with pytest.raises(InputError, match="device"):
        predict_raster(model_dir, stack_dir, tmp_path / "p.tif", device="tpu")
    with pytest.raises(InputError, match="chunk"):
        predict_raster(model_dir, stack_dir, tmp_path / "p.tif", chunk=4)
    with pytest.raises(InputError, match="different files"):
        predict_raster(model_dir, stack_dir, tmp_path / "p.tif", zones=tmp_path / "p.tif")
    with pytest.raises(InputError, match="not both"), \
            open_executor(workers=1, scheduler="tcp://127.0.0.1:1"):
        pass


@pytest.mark.skipif(gpu_available(), reason="checks the message on a machine without a GPU")
def test_cuda_without_gpu_is_a_clear_error_not_a_silent_fallback(model_dir, stack_dir, tmp_path):
    assert resolve_device("auto") == "cpu"
    with pytest.raises(InputError, match="no CUDA GPU"):
        predict_raster(model_dir, stack_dir, tmp_path / "p.tif", device="cuda")
    with pytest.raises(InputError, match="no CUDA GPU"):
        predict_pzi(load_model(model_dir), build_stack(stack_dir, chunks=None), device="cuda")
    assert predict_pzi(load_model(model_dir), build_stack(stack_dir, chunks=None),
                       device="auto").attrs["device"] == "cpu"  # resolved once, at the call


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="needs a CUDA GPU and CuPy")
def test_gpu_backend_matches_cpu(model_dir, stack_dir, tmp_path):
    cpu = predict_raster(model_dir, stack_dir, tmp_path / "cpu.tif", chunk=64, device="cpu")
    gpu = predict_raster(model_dir, stack_dir, tmp_path / "gpu.tif", chunk=64, device="cuda",
                         uncertainty=tmp_path / "u.tif")
    assert gpu.device == "cuda"
    a, b = read(cpu.pzi), read(gpu.pzi)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    # tree sums on the GPU may differ in the last bit from the CPU's
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    with rasterio.open(gpu.pzi) as src:
        assert src.tags()["PZI_DEVICE"] == "cuda"
    lazy = predict_pzi(load_model(model_dir), build_stack(stack_dir, chunks=None), device="cuda",
                       chunk=64)
    assert lazy.attrs["device"] == "cuda"
    np.testing.assert_allclose(lazy.values, a, rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- interruption

_RUNNER = textwrap.dedent("""
    import sys
    from permafrost.workflows.predict import predict_raster
    predict_raster(sys.argv[1], sys.argv[2], sys.argv[3], chunk=int(sys.argv[4]),
                   device="cpu", threads=1, zones=sys.argv[3] + ".zones.tif")
""")


def _finished_blocks(cache_root: Path) -> list[Path]:
    """Cached blocks under their final names (not the temporaries being written)."""
    if not cache_root.exists():
        return []
    return [f for f in cache_root.glob("*/*.npy") if TMP_MARK not in f.name]


def _run(args, **kw):
    return subprocess.Popen([sys.executable, "-c", _RUNNER, *map(str, args)], cwd=ROOT, **kw)


@pytest.mark.slow
@pytest.mark.parametrize("when", ["during-blocks", "while-writing"])
def test_sigkill_leaves_no_corrupt_output_and_rerun_gives_same_bytes(model_dir, tmp_path, when):
    cov = write_stack(tmp_path / "cov", 256, 256, seed=3)
    # the reference at the same depth as the output: tags hold paths relative to it
    (tmp_path / "ref").mkdir()
    ref = predict_raster(model_dir, cov, tmp_path / "ref" / "pzi.tif", chunk=32,
                         device="cpu").pzi
    out = tmp_path / "out" / "pzi.tif"
    out.parent.mkdir()
    old = b"previous content"
    out.write_bytes(old)
    cache_root = out.parent / ".pzi.tif.pfblocks"
    proc = _run([model_dir, cov, out, 32])

    def reached() -> bool | None:  # read while the process is frozen
        if when == "during-blocks":
            return True if len(_finished_blocks(cache_root)) >= 20 else None
        # the PZI's own temporary: the zones are written after the PZI is renamed
        return True if list(out.parent.glob(f"{tmp_prefix(out)}*")) else None

    killed = kill_at_progress(proc, reached)
    if not killed:
        assert proc.returncode == 0
        pytest.skip(f"the run finished before it could be killed {when}")
    assert out.read_bytes() == old, "a killed run must leave the previous file untouched"
    n_cached = len(_finished_blocks(cache_root))
    assert n_cached >= 20
    # every finished cached block is complete (written atomically): loads with its shape
    for f in _finished_blocks(cache_root):
        assert np.load(f).shape == (1, 32, 32)
    res = predict_raster(model_dir, cov, out, chunk=32, device="cpu",
                         zones=str(out) + ".zones.tif")
    assert res.blocks_reused == n_cached > 0
    assert sha(out) == sha(ref)
    assert not cache_root.exists(), "the cache is removed after the rerun succeeded"
    assert not list(out.parent.glob(f"*{TMP_MARK}*")), "temporaries of the killed run removed"


def test_rerun_removes_temporaries_of_outputs_and_sidecars(model_dir, stack_dir, tmp_path):
    """A run killed while writing leaves temporaries of its outputs, and of the zone raster's
    GDAL sidecar (category names, written right after the raster); the rerun removes them."""
    out, zones = tmp_path / "pzi.tif", tmp_path / "zones.tif"
    left = [tmp_path / f"{tmp_prefix(p)}abc123{p.suffix}"
            for p in (out, zones, Path(f"{zones}.aux.xml"))]
    for p in left:
        p.write_bytes(b"half")
    predict_raster(model_dir, stack_dir, out, zones=zones, chunk=64, device="cpu")
    assert [p.name for p in left if p.exists()] == []
    # and the rasters' QGIS styles (permafrost.io.styles)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pzi.qml", "pzi.tif", "zones.qml",
                                                          "zones.tif", "zones.tif.aux.xml"]


def test_changed_inputs_do_not_reuse_stale_blocks(model_dir, tmp_path):
    cov = write_stack(tmp_path / "cov", 120, 120, seed=1)
    out = tmp_path / "pzi.tif"
    # simulate an interrupted run: a cache under the default location with a foreign key
    stale = tmp_path / ".pzi.tif.pfblocks" / ("0" * 32)
    stale.mkdir(parents=True)
    np.save(stale / "0_0.npy", np.zeros((1, 64, 64), "float32"))
    (stale / "0_0.json").write_text('{"pixels": 4096, "valid": 4096, "missing": 0, "masked": 0}')
    res = predict_raster(model_dir, cov, out, chunk=64, device="cpu")
    assert res.blocks_reused == 0
    np.testing.assert_array_equal(read(out), reference_pzi(model_dir, cov))
    assert not (tmp_path / ".pzi.tif.pfblocks").exists()


# ----------------------------------------------------------------------------- memory

_MEM = textwrap.dedent("""
    import json, sys
    from permafrost.workflows.predict import predict_raster
    predict_raster(sys.argv[1], sys.argv[2], sys.argv[3], chunk=256, device="cpu", threads=2)
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forking parent
    hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0].split()[1]
    print(json.dumps({"maxrss_kb": int(hwm)}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM (Linux)")
def test_peak_memory_does_not_grow_with_the_region(model_dir, tmp_path):
    """Two regions 4x apart in pixels: peak RSS about the same (bounded by the block size).

    GDAL's block cache is bounded by GDAL_CACHEMAX, not by the region; it is set small here
    so that both regions fill it and the comparison shows what the code itself holds.
    """
    peaks = {}
    env = {**os.environ, "GDAL_CACHEMAX": "16"}
    for name, side in (("small", 1024), ("large", 2048)):
        cov = write_stack(tmp_path / name, side, side, seed=2)
        r = subprocess.run([sys.executable, "-c", _MEM, str(model_dir), str(cov),
                            str(tmp_path / f"{name}.tif")], cwd=ROOT, capture_output=True,
                           text=True, timeout=300, check=True, env=env)
        peaks[name] = json.loads(r.stdout.strip().splitlines()[-1])["maxrss_kb"] / 1024
    # the large region's covariates alone (4 float32 layers) are 64 MB, 48 MB more than the
    # small one's; holding the region (plus its feature matrix) would add over 100 MB
    grown = peaks["large"] - peaks["small"]
    assert grown < 0.1 * peaks["small"], f"peak RSS grew by {grown:.1f} MB: {peaks}"


# ----------------------------------------------------------------------------- CLI


def test_cli_predict(model_dir, stack_dir, tmp_path):
    from permafrost.cli import app

    runner = CliRunner()
    out = tmp_path / "pzi.tif"
    r = runner.invoke(app, ["predict", "--model", str(model_dir), "--covariates", str(stack_dir),
                            "--out", str(out), "--zones", str(tmp_path / "z.tif"),
                            "--chunk", "64", "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["pixels"] == 150 * 210 and d["device"] == "cpu" and Path(d["pzi"]) == out
    np.testing.assert_array_equal(read(out), reference_pzi(model_dir, stack_dir))
    r = runner.invoke(app, ["predict", "--model", str(model_dir), "--covariates", str(stack_dir),
                            "--out", str(tmp_path / "p2.tif"), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "predicted" in r.stdout and "masked" in r.stdout
    r = runner.invoke(app, ["predict", "--model", str(tmp_path / "nope"), "--covariates",
                            str(stack_dir), "--out", str(tmp_path / "p3.tif")])
    assert r.exit_code == 2 and "model directory not found" in r.output
    assert "Traceback" not in r.output


def test_shared_booster_is_placed_once_and_never_moved_by_predict():
    """Changing a booster's device is not thread-safe: only the first use (or use_device)
    sets it; later predictions with another device hint leave the booster alone."""
    calls = []

    class FakeBooster:
        def set_param(self, params):
            calls.append(params["device"])

        def inplace_predict(self, X, missing):
            return np.full(X.shape[0], 0.25, dtype=np.float32)

    pred = BoosterPredictor(FakeBooster())
    X = np.zeros((3, 2), dtype=np.float32)
    assert pred.predict(X).tolist() == [0.25] * 3
    pred.predict(X, device="cuda")
    pred.predict(X, device="cpu")
    assert calls == ["cpu"]
    pred.use_device("cuda")
    pred.use_device("cuda")
    assert calls == ["cpu", "cuda"]
