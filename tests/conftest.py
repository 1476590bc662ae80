"""Shared fixtures: paths to the sample region and to the real data, and the factory
fixtures that write small synthetic inputs into ``tmp_path`` (the plain factory functions
and grid constants are in ``tests/factories.py``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factories import (
    BOREHOLE_HEADER,
    NX,
    NY,
    borehole_rows,
    cell_box,
    cell_point,
    covariate_arrays,
    default_pzi,
    train_small_model,
    write_raster,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
REALDATA = Path(os.environ.get("PERMAFROST_REALDATA", ROOT.parent / "shared" / "realdata")).resolve()


#: fixtures that run the whole demo pipeline once per module, or generate the logistic sample
#: region once per session (tens of seconds): the tests that use them are marked ``slow`` here,
#: so ``pytest -m "not slow"`` skips them
SLOW_FIXTURES = frozenset({"demo_run", "logistic_region"})


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The generated sample region (``data_samples/``)."""
    if not (SAMPLES / "covariates" / "dem.tif").exists():
        pytest.fail("data_samples/ is not generated: run `python data_samples/generate.py`")
    return SAMPLES


@pytest.fixture(scope="session")
def logistic_region(tmp_path_factory) -> Path:
    """The second, small sample case: ``generate.py --truth logistic`` into a temporary folder.

    The same terrain, climate, radiation and NDVI as ``data_samples/`` (byte for byte), with a
    truth that is a logistic function of MAAT, radiation and NDVI (the form of Boeckli et al.
    2012; coefficients in its ``truth/truth.json``).  For the tests that need a truth of the
    logistic model's own form (a model recovering its coefficients); generated once per session
    (about 15 s of CPU).  Not committed: ``data_samples/`` holds the ttop region only.
    """
    out = tmp_path_factory.mktemp("logistic_region")
    res = subprocess.run([sys.executable, str(SAMPLES / "generate.py"), "--truth", "logistic",
                          "--out", str(out)], capture_output=True, text=True, timeout=900)
    if res.returncode != 0:
        pytest.fail(f"generate.py --truth logistic failed:\n{res.stderr[-2000:]}")
    return out


@pytest.fixture(scope="session")
def realdata() -> Path:
    """``../shared/realdata`` (skips the test cleanly when the folder is absent)."""
    if not REALDATA.is_dir():
        pytest.skip(f"real data folder not available at {REALDATA}")
    return REALDATA


# ----------------------------------------------------------------------------- factory fixtures


@pytest.fixture
def make_covariates(tmp_path):
    """``make_covariates(name="cov", **arrays_overrides) -> Path`` of a covariate directory."""

    def make(name: str = "cov", ny: int = NY, nx: int = NX, **override) -> Path:
        d = tmp_path / name
        arrays = covariate_arrays(ny, nx)
        arrays.update(override)
        for k, v in arrays.items():
            write_raster(d / f"{k}.tif", v)
        return d

    return make


@pytest.fixture
def make_pzi(tmp_path):
    """``make_pzi(name, values=None, **kw) -> Path`` of a PZI GeoTIFF on the shared grid."""

    def make(name: str = "pzi.tif", values: np.ndarray | None = None, **kw) -> Path:
        return write_raster(tmp_path / name, default_pzi() if values is None else values, **kw)

    return make


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A real, small model directory (XGBoost JSON boosters + calibration + metadata)."""
    return train_small_model(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def model_copy(model_dir, tmp_path):
    """A private copy of :func:`model_dir` that a test may damage."""
    dst = tmp_path / "model"
    shutil.copytree(model_dir, dst)
    return dst


@pytest.fixture
def make_inventory(tmp_path):
    """``make_inventory(name, activity=[...], geoms=None, ids=None, crs=...) -> Path``
    (GeoPackage)."""
    import geopandas as gpd

    def make(name: str = "inventory.gpkg", activity=None, geoms=None, ids=None,
             crs="EPSG:4326", extra: dict | None = None) -> Path:
        if activity is None:
            activity = ["active", "relict", "transitional", "relict", "active", "relict"]
        n = len(activity)
        if geoms is None:
            geoms = [cell_box(8 + 8 * (i % 3), 8 + 14 * (i // 3) + 3 * (i % 3)) for i in range(n)]
        if ids is None:
            ids = [f"RG{i:03d}" for i in range(n)]
        data = {"rg_id": ids, "activity": activity, **(extra or {})}
        gdf = gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        gdf.to_file(p, driver="GPKG" if p.suffix == ".gpkg" else None)
        return p

    return make


@pytest.fixture
def make_labels(tmp_path):
    """``make_labels(name, n=120) -> Path``: labelled points (label/weight/group) on the grid."""
    import geopandas as gpd

    def make(name: str = "labels.gpkg", n: int = 120, **cols) -> Path:
        rng = np.random.default_rng(4)
        rows = rng.uniform(1, NY - 2, n)
        cols_ = rng.uniform(1, NX - 2, n)
        arr = covariate_arrays()
        maat = arr["maat"][rows.astype(int), cols_.astype(int)]
        label = (maat < np.median(maat)).astype(int)
        data = {"label": label, "weight": np.ones(n), "group": [f"g{i % 30}" for i in range(n)],
                "source": ["borehole"] * n}
        data.update(cols)
        gdf = gpd.GeoDataFrame(data, geometry=[cell_point(r, c) for r, c in zip(rows, cols_)],
                               crs="EPSG:4326")
        p = tmp_path / name
        gdf.to_file(p, driver="GPKG")
        return p

    return make


@pytest.fixture
def make_boreholes(tmp_path):
    """``make_boreholes(name, rows=None, header=BOREHOLE_HEADER) -> Path`` (CSV text)."""

    def make(name: str = "boreholes.csv", rows: list[str] | None = None,
             header: str = BOREHOLE_HEADER) -> Path:
        p = tmp_path / name
        p.write_text("\n".join([header, *(borehole_rows() if rows is None else rows)]) + "\n")
        return p

    return make


@pytest.fixture
def make_track(tmp_path):
    """``make_track(name, **kw) -> SyntheticTrack`` (tests/mintpy_factory.py) with the outlines
    written to ``<folder>/outlines.gpkg``."""
    from mintpy_factory import make_track as _make

    def make(name: str = "track", **kw):
        t = _make(tmp_path / name, shape=(60, 80), speeds=(0.0, 0.05, 0.4), **kw)
        t.outlines.to_file(t.folder / "outlines.gpkg", driver="GPKG")
        return t

    return make
