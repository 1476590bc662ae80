"""permafrost: map mountain permafrost from rock glacier inventories, boreholes and InSAR.

The public API is re-exported here; the command-line app (``permafrost``) is a thin
layer over it (:mod:`permafrost.cli`).
"""

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

__all__ = [
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
