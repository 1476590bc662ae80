"""permafrost: map mountain permafrost from rock glacier inventories, boreholes and InSAR.

The public API is re-exported here; the command-line app (``permafrost``) is a thin
layer over it (:mod:`permafrost.cli`).
"""

import os as _os
import sys as _sys

# No code from inputs: a VRT's Python pixel function runs arbitrary code when GDAL is told
# GDAL_VRT_ENABLE_PYTHON=YES, which HPC modules and conda recipes set.  Set here, at import
# of the package, before any GDAL call, it overrides an inherited value for this process and
# the workers it starts (GDAL reads the environment on each VRT open).
_os.environ["GDAL_VRT_ENABLE_PYTHON"] = "NO"


def _c_case_mapping() -> None:
    """GDAL (in rasterio and pyogrio) compares names with the C library's case mapping;
    under a Turkish or Azeri ``LC_CTYPE`` ("I" lower-cases to a dotless "ı") its start-up
    check prints 57 raw "apszKnownConfigOptions[] isn't correctly sorted" lines on stderr
    and case-insensitive lookups can fail.  Those locales get the C case mapping (UTF-8
    kept); Python's own text handling does not depend on it."""
    import locale

    try:
        current = locale.setlocale(locale.LC_CTYPE) or ""
    except locale.Error:  # pragma: no cover - no locale support
        return
    if current.split("_", 1)[0].split(".", 1)[0].lower() not in ("tr", "az", "crh", "tt"):
        return
    for name in ("C.UTF-8", "C.utf8", "en_US.UTF-8"):
        try:
            locale.setlocale(locale.LC_CTYPE, name)
            return
        except locale.Error:
            continue


_c_case_mapping()


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt or has one in its cause/context chain (not a
    SystemExit: an exit already decided, e.g. by an inner start-up guard)."""
    if isinstance(exc, SystemExit):
        return False
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


try:
    from importlib.metadata import PackageNotFoundError, version

    from permafrost.errors import (
        ConfigError,
        CRSError,
        DataError,
        GridMismatchError,
        InputError,
        InputFileError,
        ModelError,
        OutputError,
        PermafrostError,
    )

    try:
        __version__ = version("permafrost")
    except PackageNotFoundError:  # pragma: no cover - source tree without install
        __version__ = "0.0.0+unknown"
except BaseException as _exc:
    # Ctrl-C while the command-line app starts (``permafrost ...`` or ``python -m
    # permafrost``): one line and exit code 130, as mid-run, not a traceback.  Python may
    # wrap the KeyboardInterrupt (a class body's ``__set_name__`` turns it into the cause of a
    # RuntimeError), so the chain is searched
    _argv = getattr(_sys, "orig_argv", [])
    if not _interrupted(_exc) or not (
            "permafrost" in _argv[1:3] and "-m" in _argv[1:3]
            or _sys.argv and _sys.argv[0].rsplit("/", 1)[-1] == "permafrost"):
        raise
    _sys.stderr.write("Interrupted during start-up; nothing was written.\n")
    raise SystemExit(130) from None

#: public API: name -> module; imported on first use (PEP 562) so that the command-line app
#: starts without loading XGBoost, Dask and MintPy
_LAZY = {
    "read_raster": "permafrost.io.rasters",
    "read_aligned": "permafrost.io.maps",
    "read_mask": "permafrost.io.maps",
    "write_cog": "permafrost.io.rasters",
    "read_vector": "permafrost.io.vectors",
    "write_vector": "permafrost.io.vectors",
    "read_mintpy": "permafrost.io.mintpy",
    "read_track": "permafrost.io.mintpy",
    "read_presence_table": "permafrost.io.boreholes",
    "read_gtnp": "permafrost.io.boreholes",
    "read_permos": "permafrost.io.boreholes",
    "compute_kinematics": "permafrost.kinematics",
    "run_kinematics": "permafrost.workflows.kinematics",
    "KinematicsConfig": "permafrost.kinematics",
    "assess_borehole": "permafrost.ground_thermal",
    "build_labels": "permafrost.labels",
    "labels_from_files": "permafrost.workflows.labels",
    "build_stack": "permafrost.workflows.covariates",
    "extract_at_points": "permafrost.covariates",
    "train_model": "permafrost.models",
    "TrainResult": "permafrost.models",
    "train_surface_model": "permafrost.surface",
    "SurfaceModel": "permafrost.surface",
    "train_from_files": "permafrost.workflows.train",
    "PZIModel": "permafrost.pzi_model",
    "save_model": "permafrost.io.model",
    "load_model": "permafrost.io.model",
    "predict_pzi": "permafrost.predict",
    "pzi_uncertainty": "permafrost.predict",
    "predict_raster": "permafrost.workflows.predict",
    "warm_pzi_raster": "permafrost.workflows.warming",
    "spread_for_warming": "permafrost.workflows.warming",
    "applicability_from_files": "permafrost.workflows.applicability",
    "predict_with_applicability": "permafrost.workflows.applicability",
    "Applicability": "permafrost.workflows.applicability",
    "extrapolation_map": "permafrost.applicability",
    "covariate_dependence": "permafrost.proxies",
    "proxy_warnings": "permafrost.proxies",
    "zone_statistics": "permafrost.area",
    "ZoneStatistics": "permafrost.area",
    "cell_areas": "permafrost.area",
    "stats_from_files": "permafrost.workflows.stats",
    "binary_metrics": "permafrost.metrics",
    "reliability_curve": "permafrost.metrics",
    "Grid": "permafrost.grid",
    "grid_of": "permafrost.grid",
    "sample_at_points": "permafrost.grid",
    "map_agreement": "permafrost.validation",
    "validate": "permafrost.validation",
    "ValidationResult": "permafrost.validation",
    "validate_from_files": "permafrost.workflows.validate",
    "report_from_files": "permafrost.workflows.report",
    "load_pipeline": "permafrost.config",
    "run_pipeline": "permafrost.pipeline",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'permafrost' has no attribute {name!r}")


__all__ = [
    *_LAZY,
    "__version__",
    "PermafrostError",
    "InputError",
    "InputFileError",
    "DataError",
    "CRSError",
    "GridMismatchError",
    "ConfigError",
    "ModelError",
    "OutputError",
]
