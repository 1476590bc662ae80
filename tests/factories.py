"""The test factories, in one place every test sees: a small synthetic world (grid
constants), raster writers, covariate generators, a small trained model, vectors, borehole
tables, MintPy file surgery, the demo pipeline text and run-output comparison.

Plain functions live here; ``tests/conftest.py`` wraps the ones that write into
``tmp_path`` as fixtures (``make_covariates``, ``make_pzi``, ``model_dir``, ``make_inventory``,
``make_labels``, ``make_boreholes``, ``make_track``).  Import the functions with
``from factories import write_raster, ...`` (``tests/`` is on ``sys.path`` under pytest).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import rasterio
import shapely
from rasterio.transform import from_origin

ROOT = Path(__file__).resolve().parents[1]

#: the small synthetic world the factories share: a geographic grid of 2" pixels
RES = 1 / 1800
X0, Y0 = 99.0, 38.6
NY, NX = 60, 80
FEATURES = ("dem", "maat", "pisr", "ndvi")


# ----------------------------------------------------------------------------- rasters


def write_raster(path: Path, data: np.ndarray, *, crs="EPSG:4326", transform=None,
                 nodata=-9999.0, dtype="float32", fill_nan: bool = True) -> Path:
    """A single-band GeoTIFF (``crs=None`` writes one without a CRS).

    ``transform`` defaults to the shared grid's; with ``fill_nan`` NaN is written as
    ``nodata`` (float rasters with a nodata value), else NaN stays NaN.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.asarray(data)
    transform = transform or from_origin(X0, Y0, RES, RES)
    kw = dict(driver="GTiff", width=data.shape[1], height=data.shape[0], count=1, dtype=dtype,
              transform=transform, nodata=nodata)
    if crs is not None:
        kw["crs"] = crs
    with rasterio.open(path, "w", **kw) as dst:
        arr = data.astype(dtype)
        if fill_nan and nodata is not None and np.dtype(dtype).kind == "f":
            arr = np.where(np.isnan(arr), nodata, arr).astype(dtype)
        dst.write(arr, 1)
    return path


def write_tif(path, arr, transform, crs="EPSG:4326", nodata=None, dtype=None) -> Path:
    """A single-band GeoTIFF of ``arr`` as given: its own dtype, NaN kept, no nodata unless
    asked for."""
    arr = np.asarray(arr)
    return write_raster(path, arr, crs=crs, transform=transform, nodata=nodata,
                        dtype=dtype or arr.dtype, fill_nan=False)


def da_on_grid(arr, transform, crs="EPSG:4326"):
    """A float32 DataArray on the grid of ``transform`` (pixel-centre coordinates, CRS and
    transform written)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    arr = np.asarray(arr, dtype="float32")
    ny, nx = arr.shape
    xs = transform.c + transform.a * (np.arange(nx) + 0.5)
    ys = transform.f + transform.e * (np.arange(ny) + 0.5)
    da = xr.DataArray(arr, dims=("y", "x"), coords={"y": ys, "x": xs})
    return da.rio.write_crs(crs).rio.write_transform(transform)


def covariate_arrays(ny: int = NY, nx: int = NX, seed: int = 0) -> dict[str, np.ndarray]:
    """Plausible covariates: DEM [m], MAAT [deg C] falling with it, PISR [W m-2], NDVI [-]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ny, 0:nx].astype("float64")
    dem = (3000 + 1800 * (np.sin(xx / 19.0) * np.cos(yy / 13.0) + 1) / 2
           + rng.normal(0, 20, (ny, nx)))
    maat = 18.0 - 0.006 * dem + rng.normal(0, 0.3, (ny, nx))
    pisr = 200 + 50 * np.sin(xx / 7.0 + yy / 11.0)
    ndvi = np.clip(0.6 - (dem - 3000) / 4000, 0.02, 0.7)
    return {"dem": dem, "maat": maat, "pisr": pisr, "ndvi": ndvi}


def default_pzi() -> np.ndarray:
    """A PZI ramp over the shared grid, 0.01 .. 0.99 from west to east."""
    yy, xx = np.mgrid[0:NY, 0:NX]
    return (xx / (NX - 1)) * 0.98 + 0.01 * (yy / NY)


# ----------------------------------------------------------------------------- models


def train_small_model(out: Path, seed: int = 0) -> Path:
    """A real, small model directory (XGBoost JSON boosters + calibration + 2 fold models)."""
    import xgboost as xgb

    from permafrost.calibration import fit_calibration
    from permafrost.io.model import save_model
    from permafrost.pzi_model import BoosterPredictor, PZIModel

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
    return save_model(model, out)


# ----------------------------------------------------------------------------- vectors


def cell_box(row: float, col: float, size: float = 4) -> shapely.Polygon:
    """A square polygon of ``size`` pixels with its top-left corner at (row, col)."""
    x = X0 + col * RES
    y = Y0 - row * RES
    return shapely.box(x, y - size * RES, x + size * RES, y)


def cell_point(row: float, col: float) -> shapely.Point:
    return shapely.Point(X0 + (col + 0.5) * RES, Y0 - (row + 0.5) * RES)


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


# ----------------------------------------------------------------------------- MintPy


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
    text = text.replace('"demo_covariates.toml"',
                        f'"{ROOT.as_posix()}/pipelines/demo_covariates.toml"')
    text = text.replace(f'output_dir = "{ROOT.as_posix()}/runs/demo"',
                        f'output_dir = "{output_dir.as_posix()}"')
    assert output_dir.as_posix() in text, "demo.toml changed its output_dir line"
    # n_estimators applies where the demo trains trees (its baseline is logistic now, so
    # there it changes nothing); each replacement must find its line when it matters
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
    assert fa == fb, (f"different files: only in a {set(fa) - set(fb)}, "
                      f"only in b {set(fb) - set(fa)}")
    counts: dict[str, int] = {}
    for rel in fa:
        na = normalised(a / rel, a, others=others_a)
        nb = normalised(b / rel, b, others=others_b)
        assert na == nb, f"{rel} differs between the two runs"
        kind = Path(rel).suffix.lower() or "other"
        counts[kind] = counts.get(kind, 0) + 1
    return counts
