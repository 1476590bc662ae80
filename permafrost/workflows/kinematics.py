"""Rock glacier kinematics from files: read the MintPy tracks, the outlines and the DEM, run
:func:`permafrost.kinematics.compute_kinematics` and write the GeoPackage (the ``kinematics``
command and pipeline step)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import asdict

from permafrost.checks import expects
from permafrost.errors import ConfigError, DataError
from permafrost.io.guard import Output, check_outputs
from permafrost.io.mintpy import TrackFiles, find_track_files, read_track, track_summary
from permafrost.io.rasters import read_raster
from permafrost.io.vectors import read_vector, write_vector
from permafrost.kinematics import (
    NOT_COVERED,
    PREFIX,
    KinematicsConfig,
    KinematicsResult,
    compute_kinematics,
)

__all__ = ["run_kinematics", "track_summaries"]


def track_summaries(tracks: Sequence[str | os.PathLike | TrackFiles]) -> dict[str, dict]:
    """What an InSAR reader asks first of each track, by track name: its period (first and
    last acquisition), reference point, orbit and heading, and the line-of-sight velocity
    range over its valid pixels (:func:`permafrost.io.mintpy.track_summary`, as MintPy's
    ``info.py`` tells them); the files' paths are left out."""
    out = {}
    for t in tracks:
        s = track_summary(t if isinstance(t, TrackFiles) else find_track_files(t))
        out[s["track"]] = {k: s[k] for k in ("dates", "reference", "velocity", "orbit",
                                             "heading", "platform", "geocoded", "shape")}
    return out


@expects(outlines="path")
def run_kinematics(
    tracks: Sequence[str | os.PathLike | TrackFiles],
    outlines: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    dem: str | os.PathLike | None = None,
    layer: str | None = None,
    config: KinematicsConfig = KinematicsConfig(),
) -> KinematicsResult:
    """Read tracks, outlines and DEM, compute the kinematics and write the GeoPackage.

    Parameters
    ----------
    tracks : sequence
        Track folders, ``velocity.h5`` paths or :class:`~permafrost.io.mintpy.TrackFiles`.
    outlines : path-like
        Rock glacier outlines (any vector format, with a CRS).
    out : path-like, optional
        Output GeoPackage (written atomically); nothing written when None.
    dem : path-like, optional
        DEM GeoTIFF [m]; default each track's geometry ``height``.
    layer : str, optional
        Layer of the outline file.
    config : KinematicsConfig
        Thresholds.

    Returns
    -------
    KinematicsResult
        As :func:`permafrost.kinematics.compute_kinematics`; ``outlines.attrs["config"]``
        holds the thresholds used.

    Raises
    ------
    ConfigError
        No track, or one track given twice.
    DataError
        None of the outlines lies in any track's footprint.

    References
    ----------
    See :func:`permafrost.kinematics.compute_kinematics`.
    """
    if not tracks:
        raise ConfigError("no track given", field="track",
                          fix="give at least one MintPy track (a folder, or its files)")
    files = [t if isinstance(t, TrackFiles) else find_track_files(t) for t in tracks]
    seen: dict[str, int] = {}
    for i, f in enumerate(files):  # one track twice would count its pixels twice
        j = seen.setdefault(os.path.realpath(f.velocity), i)
        if j != i:
            raise ConfigError(f"the same track is given twice (tracks {j + 1} and {i + 1})",
                              path=f.velocity, field="track", fix="give each track once")
    if out is not None:
        check_outputs([Output(out, "--out", layer="kinematics", what="kinematics")],
                      {"--track": files, "--outlines": outlines, "--dem": dem})
    gdf = read_vector(outlines, layer=layer)
    dem_da = read_raster(dem, role="elevation") if dem is not None else None
    data = []
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        for f in files:
            data.append(read_track(f))
    res = compute_kinematics(gdf, data, dem=dem_da, config=config)
    reasons = res.outlines[PREFIX + "reason"].astype(str)
    if len(reasons) and reasons.str.startswith(NOT_COVERED).all():
        raise DataError(f"none of the {len(reasons)} outlines lies in any track's footprint",
                        path=outlines, field="geometry",
                        fix="check the outlines' CRS and that the tracks cover the region")
    res.outlines.attrs["config"] = asdict(config)
    if out is not None:
        write_vector(res.outlines, out, layer="kinematics", style="kinematics")
    return res
