"""The run-or-skip engine, with toy steps: keys, sharing between scenarios, interruptions."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from permafrost.config import load_pipeline
from permafrost.pipeline import StepSpec, run_pipeline


def make_tree(tmp_path: Path) -> Path:
    cov = tmp_path / "cov"
    cov.mkdir()
    (cov / "maat.tif").write_bytes(b"maat-v1")
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n1,99,38.5,1\n")
    p = tmp_path / "p.toml"
    p.write_text(textwrap.dedent("""
        [pipeline]
        name = "toy"
        output_dir = "out"
        [inputs]
        covariates = "cov"
        boreholes = "bh.csv"
        [scenarios.warm]
        covariates.maat = { offset = 2.0 }
        [scenarios.chunky]
        predict = { chunk = 512 }
    """))
    return p


CALLS: list[str] = []


def toy_steps(fail_in: str | None = None) -> list[StepSpec]:
    def labels(ctx):
        CALLS.append(f"{ctx.scenario}:labels")
        text = ctx.config.inputs.boreholes.read_text()
        (ctx.workdir / "labels.txt").write_text(text.upper())
        return {"labels": "labels.txt"}, {"n": text.count("\n")}

    def predict(ctx):
        CALLS.append(f"{ctx.scenario}:predict")
        if fail_in == "predict":
            (ctx.workdir / "pzi.txt").write_text("half")
            raise KeyboardInterrupt
        lab = ctx.upstream["labels"].output("labels").read_text()
        off = sum(c.offset or 0 for c in ctx.covariate_changes.values())
        (ctx.workdir / "pzi.txt").write_text(f"{lab}|{ctx.config.predict.chunk}|{off}")
        return {"pzi": "pzi.txt"}, {}

    def report(ctx):
        CALLS.append("report")
        body = ";".join(f"{sc}={recs['predict'].output('pzi').read_text()}"
                        for sc, recs in sorted(ctx.scenarios.items()))
        (ctx.workdir / "report.html").write_text(body)
        return {"html": "report.html"}, {}

    return [
        StepSpec("labels", (), lambda c, ch: c.labels, lambda c, ch: {"b": c.inputs.boreholes}, labels),
        StepSpec("predict", ("labels",), lambda c, ch: {"p": c.predict, "cov": ch},
                 lambda c, ch: {"cov": c.inputs.covariates}, predict),
        StepSpec("report", ("predict",), lambda c, ch: {}, lambda c, ch: {}, report,
                 across_scenarios=True),
    ]


def test_second_run_does_nothing_and_scenarios_share_steps(tmp_path):
    cfg = load_pipeline(make_tree(tmp_path))
    CALLS.clear()
    res = run_pipeline(cfg, steps=toy_steps(), scenarios=["warm", "chunky"])
    # labels do not depend on the scenario: computed once, shared by all three
    assert CALLS == ["baseline:labels", "baseline:predict", "warm:predict", "chunky:predict", "report"]
    assert res.scenarios["warm"]["labels"].directory == res.scenarios["baseline"]["labels"].directory
    assert res.scenarios["warm"]["predict"].directory != res.scenarios["baseline"]["predict"].directory
    assert (res.output_dir / "warm" / "pzi.txt").read_text().endswith("|1024|2.0")
    CALLS.clear()
    again = run_pipeline(cfg, steps=toy_steps(), scenarios=["warm", "chunky"])
    assert CALLS == [] and again.ran == []
    m = json.loads((res.output_dir / "warm" / "manifest.json").read_text())
    assert m["covariate_changes"] == {"maat": {"offset": 2.0}}
    assert m["timings"]["predict"]["status"] == "up to date"
    assert m["report"].endswith("report.html")


def test_changing_an_input_or_one_scenario_reruns_only_what_depends_on_it(tmp_path):
    p = make_tree(tmp_path)
    cfg = load_pipeline(p)
    run_pipeline(cfg, steps=toy_steps(), scenarios=["warm", "chunky"])
    CALLS.clear()
    p.write_text(p.read_text().replace("offset = 2.0", "offset = 3.0"))
    run_pipeline(load_pipeline(p), steps=toy_steps(), scenarios=["warm", "chunky"])
    assert CALLS == ["warm:predict", "report"]
    CALLS.clear()
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n1,99,38.5,0\n")
    run_pipeline(load_pipeline(p), steps=toy_steps(), scenarios=["warm"])
    assert CALLS == ["baseline:labels", "baseline:predict", "warm:predict", "report"]


def test_force_and_only(tmp_path):
    cfg = load_pipeline(make_tree(tmp_path))
    run_pipeline(cfg, steps=toy_steps())
    CALLS.clear()
    run_pipeline(cfg, steps=toy_steps(), only="labels", force=True)
    assert CALLS == ["baseline:labels"]
    with pytest.raises(Exception, match="did you mean 'predict'"):
        run_pipeline(cfg, steps=toy_steps(), only="predcit")


def test_interrupted_step_leaves_nothing_and_rerun_completes(tmp_path):
    cfg = load_pipeline(make_tree(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg, steps=toy_steps(fail_in="predict"))
    steps_dir = cfg.pipeline.output_dir / "steps"
    assert list((steps_dir / "predict").iterdir()) == []  # no half step
    assert len(list((steps_dir / "labels").iterdir())) == 1  # finished work is kept
    CALLS.clear()
    res = run_pipeline(cfg, steps=toy_steps())
    assert CALLS == ["baseline:predict", "report"]
    assert res.scenarios["baseline"]["predict"].output("pzi").read_text().endswith("|1024|0")


@pytest.mark.slow
def test_sigkill_mid_step_then_rerun(tmp_path):
    p = make_tree(tmp_path)
    script = textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_pipeline_engine import toy_steps
        from permafrost.config import load_pipeline
        from permafrost.pipeline import run_pipeline
        steps = toy_steps()
        real = steps[1].run
        def die(ctx):
            (ctx.workdir / "pzi.txt").write_text("partial")
            os.kill(os.getpid(), signal.SIGKILL)
        steps[1].run = die
        run_pipeline(load_pipeline({str(p)!r}), steps=steps)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    cfg = load_pipeline(p)
    partial = list((cfg.pipeline.output_dir / "steps" / "predict").iterdir())
    assert partial and all(".partial-" in d.name for d in partial)
    CALLS.clear()
    res = run_pipeline(cfg, steps=toy_steps())
    assert CALLS == ["baseline:predict", "report"]
    assert [d.name for d in (cfg.pipeline.output_dir / "steps" / "predict").iterdir()] == [
        res.scenarios["baseline"]["predict"].directory.name]
    assert os.path.exists(res.report.output("html"))


def test_rerun_leaves_no_temporary_links(tmp_path):
    """Relinking an output onto the file it already is must not leave a temporary link."""
    cfg = load_pipeline(make_tree(tmp_path))
    for _ in range(2):
        run_pipeline(cfg, steps=toy_steps(), scenarios=["warm"])
    out = cfg.pipeline.output_dir
    for d in (out, out / "baseline", out / "warm"):
        assert not [p.name for p in d.iterdir() if ".link-" in p.name], d
    # one left by a run killed between link and rename is cleaned up by the next run
    (out / "warm" / "pzi.txt.link-99999").write_text("stale")
    run_pipeline(cfg, steps=toy_steps(), scenarios=["warm"])
    assert not (out / "warm" / "pzi.txt.link-99999").exists()


def test_rerun_removes_temporaries_of_the_digest_cache_and_manifests(tmp_path):
    """A run killed while saving the input digests (after every step) or a manifest leaves
    their temporaries; the next run removes them."""
    from permafrost.io.atomic import tmp_prefix

    cfg = load_pipeline(make_tree(tmp_path))
    run_pipeline(cfg, steps=toy_steps())
    out = cfg.pipeline.output_dir
    left = [p.parent / f"{tmp_prefix(p)}abc123.json"
            for p in (out / ".cache" / "hashes.json", out / "baseline" / "manifest.json")]
    for p in left:
        p.write_text("{")
    run_pipeline(cfg, steps=toy_steps())
    assert [p.name for p in left if p.exists()] == []


def test_baseline_only_rerun_keeps_the_scenarios_on_disk_in_the_report(tmp_path):
    p = make_tree(tmp_path)
    p.write_text(p.read_text().replace("chunk = 512", "chunk = 256"))  # its own predict
    cfg = load_pipeline(p)
    run_pipeline(cfg, steps=toy_steps(), scenarios=["warm", "chunky"])
    out = tmp_path / "out"
    html = (out / "report.html").read_text()
    assert "warm=" in html and "chunky=" in html
    CALLS.clear()
    res = run_pipeline(cfg, steps=toy_steps())  # baseline only
    assert CALLS == [] and res.report.status == "up to date"
    assert (out / "report.html").read_text() == html
    # a scenario whose results on disk are out of date is left out, never shown stale
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n1,99,38.5,0\n")
    CALLS.clear()
    run_pipeline(load_pipeline(p), steps=toy_steps(), scenarios=["warm"])
    assert CALLS == ["baseline:labels", "baseline:predict", "warm:predict", "report"]
    html = (out / "report.html").read_text()
    assert "warm=" in html and "chunky=" not in html
    # ...and comes back once it is run again, in a later baseline-only run too
    run_pipeline(load_pipeline(p), steps=toy_steps(), scenarios=["chunky"])
    CALLS.clear()
    run_pipeline(load_pipeline(p), steps=toy_steps())
    assert CALLS == []
    html = (out / "report.html").read_text()
    assert "warm=" in html and "chunky=" in html
