"""Climate covariates: the coarse MAAT grid, its lapse-rate downscaling, and NDVI."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.interpolate import RegularGridInterpolator

from samplegen.grid import (
    COARSE,
    COARSE_BLOCK,
    EAST,
    NORTH,
    NX,
    NY,
    SOUTH,
    WEST,
    lat_centres,
    lon_centres,
)

#: MAAT anchor (Tuole-like station in the Heihe headwaters) [deg C] at ANCHOR_Z [m]
ANCHOR_MAAT, ANCHOR_Z = -2.7, 3370.0
#: air temperature lapse rate [deg C per m]
LAPSE = -6.0e-3


def make_climate(rng, dem):
    """Coarse MAAT (0.05 deg) with its cell elevations, and the downscaled 2 arcsec MAAT [deg C].

    Coarse cell elevation z_c = block mean of the DEM over the 90 x 90 pixels of each cell.
    Coarse MAAT T_c = ANCHOR_MAAT + LAPSE (z_c - ANCHOR_Z) + g(lon, lat) + e_c, where g is a
    weak regional gradient (+0.5 deg C from NW to SE across the domain) and e_c a small
    reanalysis-like cell error (N(0, 0.1 deg C)).  Fine MAAT = bilinear(T_c) + LAPSE
    (z - bilinear(z_c)) with bilinear interpolation between coarse cell centres (linear
    extrapolation in the outer half cells); the usual lapse-rate downscaling (e.g. Fiddes &
    Gruber 2014, TopoSCALE, without the radiation terms).
    """
    cy, cx = NY // COARSE_BLOCK, NX // COARSE_BLOCK
    zc = dem.reshape(cy, COARSE_BLOCK, cx, COARSE_BLOCK).mean(axis=(1, 3))
    clon = WEST + (np.arange(cx) + 0.5) * COARSE
    clat = NORTH - (np.arange(cy) + 0.5) * COARSE
    glon, glat = np.meshgrid(clon, clat)
    grad = 0.5 * (((glon - WEST) / (EAST - WEST) + (NORTH - glat) / (NORTH - SOUTH)) / 2.0) - 0.25
    tc = ANCHOR_MAAT + LAPSE * (zc - ANCHOR_Z) + grad + rng.normal(0, 0.1, zc.shape)
    tc = tc.astype(np.float32).astype(np.float64)
    zc = zc.astype(np.float32).astype(np.float64)
    lon, lat = np.meshgrid(lon_centres(), lat_centres())
    pts = np.stack([lat.ravel(), lon.ravel()], axis=1)

    def interp(a):
        f = RegularGridInterpolator((clat[::-1], clon), a[::-1], method="linear",
                                    bounds_error=False, fill_value=None)
        return f(pts).reshape(NY, NX)

    maat = interp(tc) + LAPSE * (dem - interp(zc))
    info = {"coarse_res_deg": COARSE, "coarse_shape": [cy, cx],
            "regional_gradient_c": "0.5*((lon-W)/(E-W)+(N-lat)/(N-S))/2 - 0.25",
            "cell_error_sd_c": 0.1}
    return tc, zc, maat, info


def make_ndvi(rng, dem, slope, lakes_mask, glacier_mask):
    """Peak-season NDVI [-]: alpine meadow below ~3900 m thinning upward, less on steep slopes.

    ndvi = 0.62 / (1 + exp((z - 3900 m) / 180 m)) * (1 - 0.6 (slope / 45 deg)^1.5)
    + 0.05 * correlated noise (Gaussian-filtered, sigma 4 px), clipped to 0.02-0.7; glaciers
    0.02, lakes -0.12 (open water).
    """
    base = 0.62 / (1.0 + np.exp((dem - 3900.0) / 180.0))
    base *= 1.0 - 0.6 * np.clip(slope / 45.0, 0, 1) ** 1.5
    noise = ndimage.gaussian_filter(rng.standard_normal(dem.shape), 4.0)
    noise /= noise.std()
    nd = np.clip(base + 0.05 * noise + 0.03, 0.02, 0.7)
    nd[glacier_mask] = 0.02
    nd[lakes_mask] = -0.12
    return nd
