"""Pipelines: the chain of steps from a pipeline file to maps, statistics and a report.

* :mod:`permafrost.pipeline.spec` -- the types: a step's specification
  (:class:`StepSpec`), what its function gets (:class:`StepContext`), a finished step
  (:class:`StepRecord`), a run (:class:`PipelineResult`), a plan's line
  (:class:`PlannedStep`).
* :mod:`permafrost.pipeline.steps` -- the catalogue (:data:`STEPS`): kinematics, labels,
  train, predict, stats, validate, report, each an adapter from the configuration to one
  workflow (:mod:`permafrost.workflows`).
* :mod:`permafrost.pipeline.preflight` -- everything knowable checked before any work
  (columns, block size against the extent, features, kinds, workers), every problem at
  once (:func:`check_pipeline`).
* :mod:`permafrost.pipeline.engine` -- runs the steps, each only when its content-based
  key changed (:func:`run_pipeline`), or says what a run would do (:func:`plan_pipeline`);
  writes the manifests.

The pipeline file's schema is :mod:`permafrost.config`.
"""

from __future__ import annotations

from permafrost.pipeline.engine import code_digest, plan_pipeline, run_pipeline
from permafrost.pipeline.preflight import Preflight, check_pipeline, preflight
from permafrost.pipeline.spec import PipelineResult, PlannedStep, StepContext, StepRecord, StepSpec
from permafrost.pipeline.steps import STEP_NAMES, STEPS

__all__ = [
    "run_pipeline",
    "plan_pipeline",
    "code_digest",
    "check_pipeline",
    "preflight",
    "Preflight",
    "STEPS",
    "STEP_NAMES",
    "StepSpec",
    "StepContext",
    "StepRecord",
    "PipelineResult",
    "PlannedStep",
]
