"""Provenance does not depend on where the checkout lives.

The demo (its pipeline file and the sample data) copied into two different directories
gives the same step keys, byte-identical PZI rasters, and manifests, model metadata,
COG tags and report provenance that name no absolute path.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _copy_demo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    shutil.copytree(ROOT / "pipelines", dest / "pipelines")
    shutil.copytree(ROOT / "data_samples", dest / "data_samples",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest / "pipelines" / "demo.toml"


@pytest.mark.slow
def test_demo_in_two_directories_gives_the_same_keys_and_bytes(tmp_path):
    import rasterio

    from permafrost.config import load_pipeline
    from permafrost.pipeline import STEPS, plan_pipeline, run_pipeline

    # one process: both runs see the same package code (the code is part of every key)
    homes = [tmp_path / "a", tmp_path / "somewhere" / "much" / "deeper"]
    cfgs = [load_pipeline(_copy_demo(h)) for h in homes]
    plans = [[(p.scenario, p.step, p.key) for p in plan_pipeline(c, steps=STEPS)]
             for c in cfgs]
    assert plans[0] == plans[1]
    results = [run_pipeline(c, steps=STEPS) for c in cfgs]
    keys = [{(sc, n): r.key for sc, recs in res.scenarios.items() for n, r in recs.items()}
            for res in results]
    assert keys[0] == keys[1]
    assert {(sc, st): k for sc, st, k in plans[0]} == {**keys[0], ("all", "report"):
                                                       results[0].report.key}
    pzi = [res.scenarios["baseline"]["predict"].output("pzi") for res in results]
    assert pzi[0].read_bytes() == pzi[1].read_bytes()
    for home, res in zip(homes, results):
        base = res.scenarios["baseline"]
        texts = {
            "manifest": res.manifests["baseline"].read_text(),
            "model metadata": base["train"].output("model").read_text(),
            "COG tags": json.dumps(rasterio.open(base["predict"].output("pzi")).tags()),
            "report provenance": (res.report.directory / "provenance.json").read_text(),
            "report": res.report.output("html").read_text(),
            "stats": base["stats"].output("stats").read_text(),
            "validation": base["validate"].output("validation").read_text(),
        }
        for tif in sorted(home.rglob("*.tif")):  # every raster the run wrote, and the inputs
            texts[f"tags of {tif.relative_to(home)}"] = json.dumps(rasterio.open(tif).tags())
        for what, text in texts.items():
            assert str(home) not in text, f"{what} names the checkout's directory"
            assert str(tmp_path) not in text, f"{what} names the checkout's directory"
    manifests = [json.loads(res.manifests["baseline"].read_text()) for res in results]
    for field in ("inputs", "configuration", "source", "source_sha256", "steps"):
        assert manifests[0][field] == manifests[1][field], field
    assert manifests[0]["inputs"]["../data_samples/covariates/dem.tif"]
