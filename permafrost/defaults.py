"""Defaults shared by the library, the pipeline schema and the CLI (each defined once here).

The library functions, :mod:`permafrost.config` and the ``permafrost`` commands all take
their default from these constants, so a pipeline file, a CLI call and a library call that
leave an option out give the same result.  ``docs/pipelines.md`` ("One set of defaults")
gives the reasoning; in short:

``BOREHOLE_WEIGHT = 2``
    Sample weight of one borehole label, against ``ROCK_GLACIER_WEIGHT = 1`` for the whole
    of one rock glacier.  A borehole measures the ground thermal state where it stands,
    while a rock glacier's activity is geomorphological inference (an intact landform can be
    out of equilibrium with climate, a relict one can still hold patchy ice: Haeberli et
    al. 2006), so boreholes weigh more.  They do not weigh much more because they come in
    sites: boreholes drilled a few hundred metres apart (about 13 per site in the sample
    region) repeat one piece of evidence, so a site already counts many times; at 2 a
    site of 13 boreholes weighs as much as 26 rock glaciers, at 5 as much as 65, and the
    calibrated PZI drifts toward the boreholes' own (road-side) prevalence.  The factor is
    a convention, not a measurement.

``CHUNK = 1024``
    Side [pixels] of a square block: the blocks the PZI is predicted in, and the Dask
    chunks of covariate stacks and of the rasters read for them.  Every ``chunk`` option
    (``predict_pzi``, ``predict_raster``, ``train_from_files``, ``[predict] chunk``,
    ``permafrost predict --chunk``) takes its default from it.  The result does not depend
    on it (the tests check that any chunk size gives the same bytes); memory grows with its
    square and the per-block overhead (a model call, a mask rasterisation, a cache file)
    with the number of blocks.  At 1024 the documented peak (2 threads, 6 covariates) is
    about 0.8 GB and the measured throughput is the one in ``docs/predict.md``; the COG
    writer groups blocks to at least 1024 pixels anyway.

``BLOCK_CELLS = 2**20``
    Cells [-] of a stripe of whole rows that area statistics, validation, applicability and
    zonal statistics stream a raster in when their ``block_rows`` is not given
    (:func:`auto_block_rows`): about 50 MB of float64/int64 temporaries per stripe.  As
    with ``CHUNK``, results do not depend on it beyond the last bits of float sums.

``CALIBRATION = "sigmoid"``
    How the model's raw scores become a probability.  Platt (sigmoid) scaling fits two
    numbers; isotonic regression fits a step function with as many steps as the data
    support.  With calibration sets of a few hundred to a few thousand labels (the Qilian
    case: 495 boreholes, 1530 rock glaciers) isotonic regression overfits and Platt scaling
    calibrates better (Niculescu-Mizil & Caruana 2005, who find isotonic better only above
    about a thousand calibration points); Platt scaling is also monotone and unbounded, so a
    scenario that leaves the range of the training scores still moves the PZI, where an
    isotonic map goes flat.  On the sample region it gives a PZI-weighted area 3.4 % below
    the truth's, isotonic 5.3 % below (docs/benchmarks.md).  Give ``isotonic`` for large
    label sets.

``BOOTSTRAP_RESAMPLES = 2000``, ``CI_LEVEL = 0.95``
    Percentile bootstrap of every borehole metric (Efron & Tibshirani 1993, ch. 13):
    2000 resamples keep the Monte Carlo error of a 95 % percentile limit well below the
    width of the interval (Efron & Tibshirani recommend at least 1000 for percentile
    intervals; the schema refuses fewer).

``SITE_M = 500.0``
    Boreholes closer than this [m] to a neighbour form one *site*: the unit the bootstrap
    resamples (boreholes of one site repeat one piece of evidence) and the distance within
    which labels around a held-out borehole leave training (the rest of a site cut by a
    hold-out block would otherwise leak its answer).  Drilling campaigns place boreholes a
    few hundred metres apart along a road or a slope; 500 m joins those and separates
    campaigns.  A convention, reported with the results.

``LEVEL = "auto"``, ``MIN_IN_SITU_LABELS = 30``, ``MIN_IN_SITU_PER_CLASS = 5``
    What the calibrated PZI's level rests on (:mod:`permafrost.level`).  ``auto``: the
    in-situ labels (boreholes, GTN-P / PERMOS records) set it when there are at least 30 of
    them with at least 5 of each class, else the label mix does and the run says so.  The
    in-situ labels fit one number, a logit offset of the calibrator fitted on all labels
    (recalibration in the large, Steyerberg 2009): its standard error on the probability
    scale is about ``sqrt(pi (1 - pi) / n)``, 0.08 at a prevalence of 0.75 and 30 labels,
    below the 0.1 to which the mean PZI per surface is asked to be right; 5 per class is the
    lower bound of events per parameter at which Vittinghoff & McCulloch (2007) find
    logistic estimates acceptable (with one class missing the offset has no finite value).
    Boreholes come in sites (about 13 per site on the sample region): the number of sites
    is recorded beside the count, which a site-clustered set overstates.

References
----------
Steyerberg, E. W. (2009). Clinical Prediction Models. Springer, ch. 20.
Vittinghoff, E., McCulloch, C. E. (2007). Relaxing the rule of ten events per variable in
    logistic and Cox regression. Am. J. Epidemiol. 165, 710-718.
Efron, B., Tibshirani, R. J. (1993). An Introduction to the Bootstrap. Chapman & Hall.
Niculescu-Mizil, A., Caruana, R. (2005). Predicting good probabilities with supervised
    learning. Proc. ICML 2005, 625-632.
Peduzzi, P. et al. (1996). A simulation study of the number of events per variable in
    logistic regression analysis. J. Clin. Epidemiol. 49, 1373-1379.
Haeberli, W. et al. (2006). Permafrost creep and rock glacier dynamics. Permafrost
    Periglac. Process. 17, 189-214.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BOREHOLE_WEIGHT", "ROCK_GLACIER_WEIGHT", "CHUNK", "BLOCK_CELLS", "auto_block_rows",
           "CALIBRATION", "BOOTSTRAP_RESAMPLES", "CI_LEVEL", "SITE_M", "LEVEL",
           "MIN_IN_SITU_LABELS", "MIN_IN_SITU_PER_CLASS", "SURFACE_MIN_INSITU",
           "SURFACE_MIN_CLASS_LABELS"]

#: Sample weight of one borehole label [-].
BOREHOLE_WEIGHT: float = 2.0
#: Total sample weight of one rock glacier, split over its points [-].
ROCK_GLACIER_WEIGHT: float = 1.0
#: Side of a square block: prediction blocks, Dask chunks of covariate stacks [pixels].
CHUNK: int = 1024
#: Cells in a stripe of whole rows when ``block_rows`` is not given [-].
BLOCK_CELLS: int = 1 << 20
#: Calibration of the model's raw scores (``sigmoid``: Platt 1999; ``isotonic``).
CALIBRATION: Literal["isotonic", "sigmoid"] = "sigmoid"
#: What the PZI's level rests on: ``auto``, ``in-situ`` or ``labels`` (permafrost.level).
LEVEL: Literal["auto", "in-situ", "labels"] = "auto"
#: In-situ labels (boreholes, GTN-P) needed for ``auto`` to set the level from them [-].
MIN_IN_SITU_LABELS: int = 30
#: ... of which at least this many of each class [-].
MIN_IN_SITU_PER_CLASS: int = 5
#: Resamples of the percentile bootstrap of borehole metrics [-].
BOOTSTRAP_RESAMPLES: int = 2000
#: Confidence level of the bootstrap intervals [-].
CI_LEVEL: float = 0.95
#: Boreholes closer than this to a neighbour form one site [m].
SITE_M: float = 500.0
#: Fewest in-situ labels (borehole, GTN-P/PERMOS) on non-debris ground for the surface
#: model's separate ground model (permafrost.surface); fewer: one pooled model with class
#: offsets, and a warning.  30 labels with a handful of class offsets keep about 5-10
#: labels per coefficient (Peduzzi et al. 1996 ask for 10 events per variable).
SURFACE_MIN_INSITU: int = 30
#: Fewest labels of a land-cover class for its own offset in the surface model [-]; a class
#: with fewer is predicted as the reference class (permafrost.surface).
SURFACE_MIN_CLASS_LABELS: int = 5
#: How warming scenarios are made (docs/pipelines.md, "Scenarios"): ``physical`` shifts the
#: validated baseline map's ground temperature by the TTOP sensitivity (permafrost.warming);
#: ``cross-section`` predicts the warmed covariates with a model fitted across space.
SCENARIO_METHOD: Literal["physical", "cross-section"] = "physical"
#: Annual amplitude of air temperature [degC] of the physical method: half the difference of
#: the warmest and the coldest monthly means; take it from the region's climate (12 degC is
#: typical of continental mid-latitude mountains, e.g. the Qilian Shan and the inner Alps
#: have 10-14 degC).
AIR_AMPLITUDE_C: float = 12.0
#: Spread sigma [degC] of the ground temperature about the value a PZI implies, when too few
#: in-situ MAGT records are there to fit it: Gruber (2012) derives PZI from a ground-
#: temperature spread of the order of 1 degC; the interval below is its range.
GROUND_SPREAD_C: float = 1.0
GROUND_SPREAD_RANGE_C: tuple[float, float] = (0.7, 1.5)
#: Fewest in-situ MAGT records (boreholes' magt_c, GTN-P/PERMOS) with a baseline PZI to fit
#: sigma from them (permafrost.warming.spread_from_magt); fewer: GROUND_SPREAD_C, warned.
MIN_MAGT_RECORDS: int = 10
#: A cross-section scenario whose loss of PZI-weighted area differs from the physical
#: expectation by more than this factor (either way) is warned about, both figures given.
SENSITIVITY_FACTOR: float = 1.5


def auto_block_rows(ncols: int, *, cells: int = BLOCK_CELLS) -> int:
    """Rows of a stripe that holds about ``cells`` cells of a raster ``ncols`` wide.

    The default of every ``block_rows`` option (``None``).

    Parameters
    ----------
    ncols : int
        Width of the raster [pixels].
    cells : int
        Cells per stripe [-] (default :data:`BLOCK_CELLS`).

    Returns
    -------
    int
        Rows per stripe [-], at least one.
    """
    return max(1, int(cells) // max(1, int(ncols)))

#: largest difference of coverage between two runs' denominators (mapped area, km2) that a
#: scenario comparison accepts, as a share of the baseline's [-]: two models may leave a few
#: cells without a value where the other has one (a class the surface-aware model does not
#: map, a covariate missing for one feature set); 0.1 % changes an area change by at most
#: 0.1 % of the map, which each row states (``denominator_difference_km2``); beyond it the
#: maps do not cover the same ground and the comparison is refused
DENOMINATOR_TOLERANCE: float = 0.001

# the gate on the scenario model's map of today (cross-section method; issue 23 item 2;
# permafrost.area.scenarios.reference_gate, docs/pipelines.md "Scenarios")
#: the reference's held-out AUC may fall below the baseline's by at most this [-]: about one
#: bootstrap standard deviation of the AUC on the few dozen held-out boreholes of a region
#: (0.03-0.05), so a smaller drop is within the evidence's noise
REFERENCE_AUC_MARGIN: float = 0.05
#: the reference's held-out Brier score may exceed the baseline's by at most this [-]: a
#: fifth of the Brier score of an uninformed 0.5 forecast (0.25)
REFERENCE_BRIER_MARGIN: float = 0.05
#: the reference's PZI-weighted area may differ from the baseline's by at most this share:
#: every scenario's absolute area comes from the reference, so its bias today passes into
#: each scenario; 10 % keeps it under the 15 % the warmed areas must meet (issue 23)
REFERENCE_AREA_SHARE: float = 0.10
