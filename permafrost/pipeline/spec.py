"""The types of a pipeline: a step's specification, what it gets and what a run returns.

:class:`StepSpec` declares one step of the chain (what its key depends on and the function
that runs it), :class:`StepContext` is what that function gets, :class:`StepRecord` is one
finished step, :class:`PipelineResult` a whole run and :class:`PlannedStep` one line of a
plan (``permafrost run --dry-run``).  No behaviour here: the engine
(:mod:`permafrost.pipeline.engine`) runs the steps, the catalogue
(:mod:`permafrost.pipeline.steps`) defines them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from permafrost.config import CovariateChange, PipelineConfig

__all__ = ["StepContext", "StepSpec", "StepRecord", "PipelineResult", "PlannedStep"]


@dataclass
class StepContext:
    """What a step function gets: its configuration, a directory to write into, upstream outputs."""

    config: PipelineConfig
    scenario: str
    covariate_changes: dict[str, CovariateChange]
    workdir: Path
    upstream: dict[str, StepRecord]
    seed: int
    scenarios: dict[str, dict[str, StepRecord]] = field(default_factory=dict)


@dataclass
class StepSpec:
    """One step of the chain.

    ``run(ctx)`` writes its outputs into ``ctx.workdir`` and returns
    ``(outputs, summary)``: file names relative to the workdir by label, and a small
    JSON-able summary for the manifest and the terminal.
    """

    name: str
    deps: tuple[str, ...]
    options: Callable[[PipelineConfig, dict[str, CovariateChange]], Any]
    inputs: Callable[[PipelineConfig, dict[str, CovariateChange]], dict[str, Any]]
    run: Callable[[StepContext], tuple[dict[str, str], dict[str, Any]]]
    enabled: Callable[[PipelineConfig], bool] = lambda cfg: True
    across_scenarios: bool = False  # the report: one for all scenarios
    #: run only where no covariate is changed (the baseline, the reference): today's
    #: boreholes and maps say nothing about a changed climate (validation)
    present_only: bool = False


@dataclass
class StepRecord:
    """One finished step: its key, its directory and outputs, its summary, whether it ran
    now or was up to date, and how long it took [s]."""

    name: str
    key: str
    directory: Path
    outputs: dict[str, Path]
    summary: dict[str, Any]
    status: str  # "ran" or "up to date"
    seconds: float

    def output(self, label: str) -> Path:
        return self.outputs[label]


@dataclass
class PipelineResult:
    """A run: each scenario's step records, the report step's, and each scenario's
    ``manifest.json``."""

    output_dir: Path
    scenarios: dict[str, dict[str, StepRecord]]
    report: StepRecord | None
    manifests: dict[str, Path]

    @property
    def report_path(self) -> Path | None:
        """``<output_dir>/report.html`` (a link to the report step's output)."""
        return self.output_dir / "report.html" if self.report is not None else None

    @property
    def ran(self) -> list[str]:
        out = [f"{sc}:{r.name}" for sc, recs in self.scenarios.items() for r in recs.values()
               if r.status == "ran"]
        if self.report and self.report.status == "ran":
            out.append("report")
        return out


@dataclass
class PlannedStep:
    """What a run would do with one step of one scenario, and why."""

    scenario: str
    step: str
    key: str
    action: str  # "run" or "up to date"
    reasons: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"scenario": self.scenario, "step": self.step, "key": self.key[:16],
                "action": self.action, "reasons": list(self.reasons)}

