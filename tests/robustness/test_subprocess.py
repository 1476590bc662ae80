"""A few malformed inputs through the real entry point (`python -m permafrost ...`), where
the interpreter, warnings filters and logging are those a user gets."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

from .conftest import ROOT, Outputs, assert_clean_failure, demo_pipeline_text


def _cli(*args) -> SimpleNamespace:
    p = subprocess.run([sys.executable, "-m", "permafrost", *map(str, args)], cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    return SimpleNamespace(exit_code=p.returncode, stdout=p.stdout, stderr=p.stderr,
                           exception=None)


def test_unknown_activity_class(make_inventory, make_covariates, tmp_path):
    inv = make_inventory(activity=["active", "relict", "rock glacier?", "relict", "active",
                                   "relict"])
    out = tmp_path / "labels.gpkg"
    res = _cli("labels", "--inventory", inv, "--dem", make_covariates() / "dem.tif",
               "--out", out)
    assert_clean_failure(res, names=inv, field="activity", outputs=Outputs.take(out))


def test_pzi_without_crs(make_pzi, tmp_path):
    pzi = make_pzi(crs=None)
    out = tmp_path / "stats.json"
    out.write_text("{}\n")
    res = _cli("stats", pzi, "--out-json", out)
    assert_clean_failure(res, names=pzi, outputs=Outputs.take(out))


def test_pipeline_typo(tmp_path):
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(tmp_path / "out").replace("[predict]", "[predcit]"))
    res = _cli("run", p)
    line = assert_clean_failure(res, names=p, field="predcit")
    assert "predict" in line
    assert not (tmp_path / "out").exists()


def test_truncated_mintpy_velocity(make_track, tmp_path):
    t = make_track()
    t.velocity.write_bytes(t.velocity.read_bytes()[:2048])
    out = tmp_path / "kin.gpkg"
    res = _cli("kinematics", "--track", t.folder, "--outlines", t.folder / "outlines.gpkg",
               "--out", out)
    assert_clean_failure(res, names=t.velocity, outputs=Outputs.take(out))
