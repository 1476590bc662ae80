"""Slope and aspect of a ground plane on conformal and non-conformal grids: the projection's
local Jacobian (permafrost.terrain.ground_jacobian) against the former single scale factor
and meridian convergence (convergence_and_scale + to_true_north), as errors against the
plane's known slope and aspect.  Not a timing: an accuracy table for docs/method.md.

    uv run python benchmarks/terrain_projections.py

The planes are those of tests/test_terrain_jacobian.py: 30 deg, every 15 deg of aspect,
48 x 48 cells of 30 m, elevations from true east/north distances (pyproj.Geod).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_terrain_jacobian import CRSS, INNER, _angle_diff, ground_plane  # noqa: E402

from permafrost import terrain  # noqa: E402


def main() -> None:
    slope = 30.0
    t = np.tan(np.radians(slope))
    for name, (crs, lon, lat) in CRSS.items():
        old_tan, old_asp, new_tan, new_asp = [], [], [], []
        for asp in range(0, 360, 15):
            dem, tr = ground_plane(crs, lon, lat, slope, float(asp))
            gx, gy = terrain.horn_gradient(dem.values, dx=tr.a, dy=-tr.e)
            g, k = terrain.convergence_and_scale(crs, tr, dem.shape)
            oe, on = terrain.to_true_north(gx, gy, convergence=g, scale=k)
            ne, nn = terrain.to_ground(gx, gy, terrain.ground_jacobian(crs, tr, dem.shape))
            _, ao = terrain.gradient_to_slope_aspect(oe, on)
            _, an = terrain.gradient_to_slope_aspect(ne, nn)
            old_tan.append(np.abs(np.hypot(oe, on)[INNER] / t - 1).ravel())
            old_asp.append(_angle_diff(ao[INNER], asp).ravel())
            new_tan.append(np.abs(np.hypot(ne, nn)[INNER] / t - 1).ravel())
            new_asp.append(_angle_diff(an[INNER], asp).ravel())
        ot, oa, nt, na = (np.concatenate(x) for x in (old_tan, old_asp, new_tan, new_asp))
        print(f"{name:14s} one scale factor: |tan slope| error median {np.median(ot):.2%}, "
              f"max {ot.max():.2%}, aspect max {oa.max():.2f} deg | Jacobian: tan max "
              f"{nt.max():.1e}, aspect max {na.max():.3f} deg")


if __name__ == "__main__":
    main()
