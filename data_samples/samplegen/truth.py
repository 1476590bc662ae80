"""The true permafrost probability: a logistic function of the covariates."""

from __future__ import annotations

import numpy as np


def truth_coefficients(pisr, ndvi, dem):
    """Coefficients of the true permafrost probability (logistic, Boeckli et al. 2012 form).

    logit(p) = b0 + b_maat MAAT + b_pisr (PISR - pisr_ref) / 100 + b_ndvi NDVI.
    b_maat = -1.2 per deg C; b_pisr = -1.0 per 100 W m-2 (sunny slopes are warmer);
    b_ndvi = +1.5 (meadow vegetation and organic soils insulate the ground); b0 is chosen so
    that p = 0.5 at MAAT = -4.5 deg C (about 3670 m) at the reference radiation and at the
    median NDVI of the band 3500-3700 m (the air-to-ground surface offset puts the limit at
    an air MAAT below the -2 to -3 deg C of ground-based definitions).

    References
    ----------
    Boeckli, L. et al. (2012): A statistical approach to modelling permafrost distribution in
    the European Alps or similar mountain ranges. The Cryosphere 6, 125-140.
    """
    pisr_ref = float(np.round(np.median(pisr)))
    band = (dem > 3500) & (dem < 3700)
    ndvi_ref = float(np.round(np.median(ndvi[band]), 2))
    coef = {"b_maat_per_c": -1.2, "b_pisr_per_100w": -1.0, "b_ndvi": 1.5,
            "pisr_ref_w_m2": pisr_ref, "maat_at_p50_c": -4.5, "ndvi_ref": ndvi_ref}
    coef["b0"] = float(np.round(-(coef["b_maat_per_c"] * coef["maat_at_p50_c"]
                                  + coef["b_ndvi"] * ndvi_ref), 4))
    return coef


def truth_logit(coef, maat, pisr, ndvi):
    """The truth's logit [-] from covariates (MAAT [deg C], PISR [W m-2], NDVI [-])."""
    return (coef["b0"] + coef["b_maat_per_c"] * maat
            + coef["b_pisr_per_100w"] * (pisr - coef["pisr_ref_w_m2"]) / 100.0
            + coef["b_ndvi"] * ndvi)
