"""Fuse rock glacier inventories and borehole evidence into weighted, labelled training points.

Rules (see ``docs/labels.md`` for the reasoning and references):

* Rock glaciers: RGIK activity ``active`` / ``transitional`` (= ``intact``) -> 1 (permafrost),
  ``relict`` -> 0; ``uncertain`` -> left out and counted.  Unknown values are an error naming
  them and their rows.
* Sampling: ``front`` (default; the lowest DEM cell inside the outline, which marks the lower
  limit of permafrost, Boeckli et al. 2012), ``centroid``, or ``interior`` points at a spacing.
  Every point carries ``group`` = its rock glacier id and a weight; the weights of one rock
  glacier sum to the rock-glacier source weight, so big outlines do not dominate.
* Boreholes: presence tables (1/0 or derived from MAGT <= 0 °C when presence is missing) and
  temperature records judged by :func:`permafrost.ground_thermal.assess_borehole`
  (insufficient records are left out with their reason).
* Fusion: one label per cell of a reference grid; in a cell, boreholes outrank rock
  glaciers; inside one source, the weighted majority wins (a tie drops the cell); every
  conflict is reported.

One concept per module: :mod:`~permafrost.labels.activity` (activity values -> labels, InSAR
evidence), :mod:`~permafrost.labels.sampling` (rock glaciers and boreholes -> points),
:mod:`~permafrost.labels.fusion` (one label per cell, :class:`LabelSet` and its summary) and
:mod:`~permafrost.labels.holdout` (spatial hold-out blocks) and
:mod:`~permafrost.labels.accounting` (every candidate label kept, held out or dropped; what
InSAR changed; the labels' covariates against the landscape's).  Their public names are re-exported
here.  Reading the inputs from files and writing the labels is the workflow
:func:`permafrost.workflows.labels.labels_from_files`.
"""

# re-exported: `from permafrost.labels import X` works for every public name of the modules
# (names beyond __all__ are the ones the CLI, the pipeline steps and tests import)
from permafrost.labels.accounting import (
                                      account_candidates,
                                      covariate_quantiles,
                                      insar_changes,
)
from permafrost.labels.activity import (
                                      ACTIVITY_LABELS,
                                      RG_ID_COLUMNS,
                                      combine_activity,
                                      inventories_with_evidence,
                                      rock_glacier_labels,
)
from permafrost.labels.fusion import (  # noqa: F401
                                      OUTPUT_COLUMNS,
                                      SOURCE_RANK,
                                      LabelSet,
                                      NoLabelsError,
                                      build_labels,
                                      fuse_labels,
)
from permafrost.labels.holdout import HoldOut, apply_holdout, holdout_block_size, holdout_split
from permafrost.labels.sampling import (
                                      SAMPLING_STRATEGIES,
                                      borehole_points,
                                      sample_rock_glaciers,
                                      temperature_borehole_points,
)

__all__ = [
    "ACTIVITY_LABELS",
    "SAMPLING_STRATEGIES",
    "LabelSet",
    "rock_glacier_labels",
    "sample_rock_glaciers",
    "borehole_points",
    "temperature_borehole_points",
    "fuse_labels",
    "build_labels",
    "combine_activity",
    "inventories_with_evidence",
    "RG_ID_COLUMNS",
    "account_candidates",
    "insar_changes",
    "covariate_quantiles",
    "holdout_split",
    "apply_holdout",
    "holdout_block_size",
    "HoldOut",
]

