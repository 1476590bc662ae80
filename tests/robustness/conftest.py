"""Factory fixtures that build small valid inputs in ``tmp_path`` (and break them), and the
assertion every malformed-input test ends with (:func:`assert_clean_failure`).

Every factory writes a *valid* input first; the tests then damage one thing (truncate a file,
drop a dataset, swap two columns, ...) so that each test checks exactly one defect.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin
from typer.testing import CliRunner

from permafrost.io._atomic import TMP_MARK

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tests") not in sys.path:  # mintpy_factory lives in tests/
    sys.path.insert(0, str(ROOT / "tests"))

#: the small synthetic world every factory shares: a geographic grid of 2" pixels
RES = 1 / 1800
X0, Y0 = 99.0, 38.6
NY, NX = 60, 80
FEATURES = ("dem", "maat", "pisr", "ndvi")


# ----------------------------------------------------------------------------- CLI helpers


def invoke(args: list) -> object:
    """Run the CLI in-process (stdout and stderr kept apart)."""
    from permafrost.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


@dataclass
class Outputs:
    """A snapshot of output paths: which existed, with which bytes, and the temporaries."""

    paths: list[Path]
    before: dict

    @classmethod
    def take(cls, *paths) -> Outputs:
        ps = [Path(p) for p in paths]
        return cls(ps, {p: _digest(p) for p in ps})

    def assert_untouched(self) -> None:
        for p in self.paths:
            now = _digest(p)
            assert now == self.before[p], (
                f"{p}: partial or changed output after a failed command "
                f"(before: {self.before[p]}, after: {now})")
            parent = p.parent
            if parent.is_dir():
                left = [q.name for q in parent.iterdir() if TMP_MARK in q.name]
                assert not left, f"temporary files left behind in {parent}: {left}"


def _digest(p: Path):
    if p.is_dir():
        return ("dir", sorted(str(q.relative_to(p)) + ":" + hashlib.sha256(q.read_bytes())
                              .hexdigest() for q in p.rglob("*") if q.is_file()))
    if p.is_file():
        return ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return None


#: malformed inputs refused cleanly in this session (the figure docs/reliability.md quotes)
REFUSED: list[str] = []
#: (command, when and what state) of every SIGKILL a later rerun recovered from
INTERRUPTIONS: list[tuple[str, str]] = []
#: files found identical between two full demo runs, by suffix (tests/test_determinism.py)
IDENTICAL: dict[str, int] = {}


def assert_clean_failure(result, *, names, field: str | None = None, outputs: Outputs | None = None,
                         exit_code: int = 2) -> str:
    """The contract for a bad input: exit code, exactly one line on stderr naming the file
    (and the field), no traceback, no partial output.  Returns the line."""
    out, err = result.stdout, result.stderr
    assert result.exit_code == exit_code, (
        f"exit code {result.exit_code} (expected {exit_code});\nstdout: {out}\nstderr: {err}\n"
        f"exception: {result.exception!r}")
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    for n in ([names] if isinstance(names, (str, Path)) else names):
        n = Path(n).name if isinstance(n, Path) else n
        assert n in line, f"{n!r} not named in the error: {line}"
    if field is not None:
        assert field in line, f"field {field!r} not named in the error: {line}"
    if outputs is not None:
        outputs.assert_untouched()
    REFUSED.append(os.environ.get("PYTEST_CURRENT_TEST", "?").split(" ")[0])
    return line


def pytest_terminal_summary(terminalreporter):
    if REFUSED:
        terminalreporter.write_line(
            f"robustness: {len(REFUSED)} malformed inputs refused cleanly "
            f"(exit code, one named line on stderr, no traceback, no partial output) "
            f"in {len(set(REFUSED))} test cases")
    if INTERRUPTIONS:
        by = {}
        for cmd, _ in INTERRUPTIONS:
            by[cmd] = by.get(cmd, 0) + 1
        terminalreporter.write_line(
            f"robustness: {len(INTERRUPTIONS)} SIGKILLs survived (rerun gave identical bytes): "
            + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
        for cmd, state in INTERRUPTIONS:
            terminalreporter.write_line(f"  killed {cmd} after {state}")
    if IDENTICAL:
        terminalreporter.write_line(
            f"determinism: {sum(IDENTICAL.values())} files identical between two demo runs ("
            + ", ".join(f"{v} {k}" for k, v in sorted(IDENTICAL.items())) + ")")


# ----------------------------------------------------------------------------- rasters


def write_raster(path: Path, data: np.ndarray, *, crs="EPSG:4326", transform=None,
                 nodata=-9999.0, dtype="float32") -> Path:
    """A single-band GeoTIFF (``crs=None`` writes one without a CRS)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    transform = transform or from_origin(X0, Y0, RES, RES)
    kw = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype,
              transform=transform, nodata=nodata)
    if crs is not None:
        kw["crs"] = crs
    with rasterio.open(path, "w", **kw) as dst:
        arr = data.astype(dtype)
        if nodata is not None and np.dtype(dtype).kind == "f":
            arr = np.where(np.isnan(arr), nodata, arr).astype(dtype)
        dst.write(arr, 1)
    return path


def covariate_arrays(ny: int = NY, nx: int = NX, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible covariates: DEM [m], MAAT [deg C] falling with it, PISR [W m-2], NDVI [-]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype("float64")
    dem = 3000 + 1800 * (np.sin(xx / 19.0) * np.cos(yy / 13.0) + 1) / 2 + rng.normal(0, 20, (ny, nx))
    maat = 18.0 - 0.006 * dem + rng.normal(0, 0.3, (ny, nx))
    pisr = 200 + 50 * np.sin(xx / 7.0 + yy / 11.0)
    ndvi = np.clip(0.6 - (dem - 3000) / 4000, 0.02, 0.7)
    return {"dem": dem, "maat": maat, "pisr": pisr, "ndvi": ndvi}


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
        if values is None:
            yy, xx = np.mgrid[0:NY, 0:NX]
            values = (xx / (NX - 1)) * 0.98 + 0.01 * (yy / NY)
        return write_raster(tmp_path / name, values, **kw)

    return make


# ----------------------------------------------------------------------------- models


def _train_small_model(out: Path, seed: int = 0) -> Path:
    import xgboost as xgb

    from permafrost.calibration import fit_calibration
    from permafrost.model_io import BoosterPredictor, PZIModel

    rng = np.random.default_rng(seed)
    arr = covariate_arrays(40, 50, seed=seed + 1)
    X = np.stack([arr[f].ravel() for f in FEATURES], axis=1)
    logit = -(X[:, 1] + 1.0) * 1.5
    y = (rng.random(len(X)) < 1 / (1 + np.exp(-logit))).astype(int)
    params = {"max_depth": 3, "eta": 0.3, "objective": "binary:logistic", "seed": seed,
              "nthread": 1}

    def fit(idx):
        return xgb.train(params, xgb.DMatrix(X[idx], y[idx], missing=np.nan), 15)

    main = BoosterPredictor(fit(np.arange(len(X))))
    folds = [BoosterPredictor(fit(np.flatnonzero(np.arange(len(X)) % 2 != k))) for k in range(2)]
    cal = fit_calibration(main.predict(X), y, method="isotonic")
    model = PZIModel(predictor=main, calibration=cal, feature_names=list(FEATURES),
                     metadata={"note": "robustness test model"}, fold_models=folds)
    return model.save(out)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory) -> Path:
    """A real, small model directory (XGBoost JSON boosters + calibration + metadata)."""
    return _train_small_model(tmp_path_factory.mktemp("model") / "model")


@pytest.fixture
def model_copy(model_dir, tmp_path):
    """A private copy of :func:`model_dir` that a test may damage."""
    import shutil

    dst = tmp_path / "model"
    shutil.copytree(model_dir, dst)
    return dst


# ----------------------------------------------------------------------------- vectors


def cell_box(row: float, col: float, size: float = 4) -> shapely.Polygon:
    """A square polygon of ``size`` pixels with its top-left corner at (row, col)."""
    x = X0 + col * RES
    y = Y0 - row * RES
    return shapely.box(x, y - size * RES, x + size * RES, y)


def cell_point(row: float, col: float) -> shapely.Point:
    return shapely.Point(X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES)


@pytest.fixture
def make_inventory(tmp_path):
    """``make_inventory(name, activity=[...], geoms=None, ids=None, crs=...) -> Path`` (GeoPackage)."""

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


# ----------------------------------------------------------------------------- tables


BOREHOLE_HEADER = "borehole_id,lon,lat,elevation_m,presence,magt_c,year"


def borehole_rows(n: int = 12) -> list[str]:
    rows = []
    for i in range(n):
        r, c = 5 + (i * 7) % (NY - 10), 5 + (i * 11) % (NX - 10)
        lon, lat = X0 + (c + 0.5) * RES, Y0 - (r + 0.5) * RES
        pres = i % 3 != 0
        rows.append(f"BH{i:02d},{lon:.6f},{lat:.6f},{3500 + 10 * i},{int(pres)},"
                    f"{-0.5 if pres else 0.8},2015")
    return rows


@pytest.fixture
def make_boreholes(tmp_path):
    """``make_boreholes(name, rows=None, header=BOREHOLE_HEADER) -> Path`` (CSV text)."""

    def make(name: str = "boreholes.csv", rows: list[str] | None = None,
             header: str = BOREHOLE_HEADER) -> Path:
        p = tmp_path / name
        p.write_text("\n".join([header, *(borehole_rows() if rows is None else rows)]) + "\n")
        return p

    return make


# ----------------------------------------------------------------------------- MintPy


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


def rewrite_h5(src: Path, dst: Path, *, drop: tuple = (), attrs: dict | None = None,
               drop_attrs: tuple = (), data: dict | None = None) -> Path:
    """Copy a MintPy HDF5 file with datasets/attributes dropped, changed or replaced."""
    import h5py

    with h5py.File(src, "r") as f:
        atr = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        dsets = {k: f[k][()] for k in f.keys() if k not in drop}
    for k in drop_attrs:
        atr.pop(k, None)
    atr.update(attrs or {})
    dsets.update(data or {})
    tmp = dst.with_name(dst.name + ".new")
    with h5py.File(tmp, "w") as f:
        for k, v in dsets.items():
            f.create_dataset(k, data=v)
        for k, v in atr.items():
            f.attrs[k] = v
    tmp.replace(dst)
    return dst


# ----------------------------------------------------------------------------- pipelines


def demo_pipeline_text(output_dir: Path, *, scenarios: bool = False, n_estimators: int = 200,
                       folds: int = 5, extra: str = "") -> str:
    """pipelines/demo.toml with absolute input paths, ``output_dir`` moved, optionally cut down."""
    text = (ROOT / "pipelines" / "demo.toml").read_text()
    text = text.replace('"../', f'"{ROOT.as_posix()}/')
    text = text.replace(f'output_dir = "{ROOT.as_posix()}/runs/demo"',
                        f'output_dir = "{output_dir.as_posix()}"')
    assert output_dir.as_posix() in text, "demo.toml changed its output_dir line"
    text = text.replace("n_estimators = 200", f"n_estimators = {n_estimators}")
    text = text.replace("folds = 5", f"folds = {folds}")
    if not scenarios:
        text = text.split("[scenarios.")[0]
    return text + extra


# ----------------------------------------------------------------------------- run outputs

#: JSON keys whose values are wall-clock measurements (they differ between identical runs)
TIMING_KEYS = frozenset({"seconds", "timings", "wall_seconds", "predict_seconds",
                         "write_seconds", "pixels_per_second", "elapsed_s", "elapsed"})
#: what a run keeps for itself: the input-hash cache holds absolute paths and mtimes
PRIVATE = (".cache",)


def _strip_timings(obj):
    if isinstance(obj, dict):
        return {k: _strip_timings(v) for k, v in obj.items() if k not in TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip_timings(v) for v in obj]
    return obj


def normalised(path: Path, root: Path, *, others: dict | None = None) -> bytes:
    """A file's bytes with the run's own root (and other named paths) replaced by a
    placeholder, and for JSON the wall-clock timings removed."""
    import json

    data = path.read_bytes()
    if path.suffix.lower() not in (".json", ".csv", ".html", ".txt", ".toml"):
        return data
    text = data.decode("utf-8")
    for old, new in {str(root): "<OUT>", **(others or {})}.items():
        text = text.replace(str(old), new)
    if path.suffix.lower() == ".json":
        obj = _strip_timings(json.loads(text))
        return json.dumps(obj, sort_keys=True).encode()
    return text.encode()


def run_files(root: Path) -> list[str]:
    """Relative paths of a run's files (without its private cache)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if p.is_file() and not str(p.relative_to(root)).startswith(PRIVATE))


def compare_runs(a: Path, b: Path, *, others_a: dict | None = None,
                 others_b: dict | None = None) -> dict:
    """Assert two run directories hold the same files with the same (normalised) bytes.
    Returns counts by kind for the report."""
    fa, fb = run_files(a), run_files(b)
    assert fa == fb, f"different files: only in a {set(fa) - set(fb)}, only in b {set(fb) - set(fa)}"
    counts: dict[str, int] = {}
    for rel in fa:
        na = normalised(a / rel, a, others=others_a)
        nb = normalised(b / rel, b, others=others_b)
        assert na == nb, f"{rel} differs between the two runs"
        kind = Path(rel).suffix.lower() or "other"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
