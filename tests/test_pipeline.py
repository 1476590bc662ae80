"""The main job: the demo pipeline on the sample region, reruns, scenarios, bad files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.config import load_pipeline
from permafrost.pipeline import run_pipeline
from permafrost.steps import STEPS

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pipelines" / "demo.toml"
runner = CliRunner()


def demo_copy(tmp: Path, *, edit=None) -> Path:
    """The demo pipeline with absolute input paths and its output in ``tmp``."""
    text = DEMO.read_text().replace('"../', f'"{ROOT}/')
    text = re.sub(r'output_dir = ".*"', f'output_dir = "{tmp / "out"}"', text)
    if edit:
        text = edit(text)
    p = tmp / "demo.toml"
    p.write_text(text)
    return p


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    p = demo_copy(tmp)
    result = runner.invoke(app, ["run", str(p), "--all-scenarios"])
    assert result.exit_code == 0, result.output
    return tmp, p, result


def test_demo_runs_every_step_and_ends_with_the_report(demo_run):
    tmp, p, result = demo_run
    last = [ln for ln in result.stdout.splitlines() if ln.strip()][-1]
    assert last.startswith("Report: ") and last.endswith("report.html")
    report = Path(last.removeprefix("Report: "))
    assert report.is_file() and report.stat().st_size > 50_000
    for sc in ("baseline", "plus1", "plus2", "plus4"):
        m = json.loads((tmp / "out" / sc / "manifest.json").read_text())
        assert set(m["steps"]) >= {"labels", "train", "predict", "stats"}
        assert (tmp / "out" / sc / "pzi.tif").is_file()
        assert all(len(h.removeprefix("dir:")) == 64 for h in m["inputs"].values())
    base = json.loads((tmp / "out" / "baseline" / "manifest.json").read_text())
    assert set(base["steps"]) == {"kinematics", "labels", "train", "predict", "stats", "validate"}
    assert base["versions"]["xgboost"]


def test_warming_reduces_permafrost_area_monotonically(demo_run):
    tmp, _, _ = demo_run
    areas, weighted = [], []
    for sc in ("baseline", "plus1", "plus2", "plus4"):
        stats = json.loads((tmp / "out" / sc / "stats.json").read_text())
        whole = stats["units"][0]
        areas.append(whole["pzi_ge_0.5_km2"])
        weighted.append(whole["pzi_weighted_km2"])
    assert areas == sorted(areas, reverse=True) and areas[0] > areas[-1], areas
    assert weighted == sorted(weighted, reverse=True) and weighted[0] > weighted[-1], weighted


def test_rerun_does_nothing(demo_run):
    tmp, p, _ = demo_run
    result = runner.invoke(app, ["run", str(p), "--all-scenarios"])
    assert result.exit_code == 0, result.output
    assert "0 step(s) ran" in result.stdout
    assert " ran in " not in result.stdout


def test_changing_one_scenario_reruns_only_its_affected_steps(demo_run, tmp_path):
    tmp, p, _ = demo_run
    p.write_text(p.read_text().replace("offset = 2.0", "offset = 2.5"))
    cfg = load_pipeline(p)
    events = []
    res = run_pipeline(cfg, steps=STEPS, scenarios=list(cfg.scenarios),
                       on_event=lambda kind, info: events.append((kind, info["scenario"], info["step"])))
    ran = sorted((sc, st) for kind, sc, st in events if kind == "done")
    assert ran == [("baseline", "report"), ("plus2", "predict"), ("plus2", "stats")]
    assert res.report_path.is_file()


def test_scenarios_command_lists_changes(demo_run):
    _, p, _ = demo_run
    result = runner.invoke(app, ["scenarios", str(p)])
    assert result.exit_code == 0
    assert "plus4" in result.stdout and "maat +4" in result.stdout


@pytest.mark.parametrize(
    ("edit", "needle"),
    [
        (lambda t: t.replace("[train]", "[trian]"), "did you mean 'train'"),
        (lambda t: t.replace("folds = 5", "folds = 'five'"), "train.folds"),
        (lambda t: t.replace("covariates.maat = { offset = 4.0 }",
                             "covariates.maatt = { offset = 4.0 }"), "did you mean 'maat'"),
        (lambda t: t.replace("boreholes/boreholes.csv", "boreholes/nope.csv"), "inputs.boreholes"),
        (lambda t: t.replace("sampling = \"front\"", "sampling = \"edge\""), "labels.sampling"),
    ],
)
def test_bad_pipeline_fails_before_any_work(tmp_path, edit, needle):
    p = demo_copy(tmp_path, edit=edit)
    result = runner.invoke(app, ["run", str(p)])
    assert result.exit_code == 2
    assert needle in result.stderr and "demo.toml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
