"""benchmarks/region_scale.py: its region is what it says (DEM, stack file, boreholes against
their closed-form truth) and the real chain runs on it at a tiny size."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("region_scale",
                                                  ROOT / "benchmarks" / "region_scale.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["region_scale"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_region_builder_matches_its_closed_form_truth(tmp_path):
    rs = _bench()
    from permafrost.workflows.covariates import build_stack

    info = rs.build_region(tmp_path, 128, boreholes=300)
    assert info["cells"] == 128 * 128 and info["n_boreholes"] == 300
    assert 0.1 < info["presence_share"] < 0.9  # both classes, for training
    ds = build_stack(info["stack"]).compute()
    assert sorted(ds.data_vars) == ["maat", "northness", "pisr", "slope"]  # dem: use = false
    assert ds.rio.crs.to_epsg() == rs.EPSG and ds.rio.resolution() == (rs.RES, -rs.RES)
    x, y = np.meshgrid(ds.x.values, ds.y.values)
    z = rs.dem_at(x, y)
    # Horn's slope of the written DEM against the analytic gradient (inner cells)
    inner = (slice(1, -1), slice(1, -1))
    diff = ds["slope"].values[inner] - rs.slope_at(x, y)[inner]
    assert np.abs(diff).mean() < 0.5
    # the downscaled MAAT: the truth is linear in easting at sea level and the coarse
    # grid's elevations are its cells' mean elevations, so bilinear + lapse rate gives it back
    np.testing.assert_allclose(ds["maat"].values, rs.maat_at(x, z), atol=0.02)
    bh = pd.read_csv(info["boreholes"])
    assert len(bh) == 300 and set(bh["presence"]) == {0, 1}
    np.testing.assert_allclose(bh["elevation_m"], rs.dem_at(bh["x"].to_numpy(),
                                                            bh["y"].to_numpy()), atol=0.05)
    # colder boreholes hold permafrost more often (the truth's sign)
    t = rs.maat_at(bh["x"].to_numpy(), bh["elevation_m"].to_numpy())
    assert t[bh["presence"] == 1].mean() < t[bh["presence"] == 0].mean()


@pytest.mark.slow
def test_region_scale_runs_the_real_chain_at_a_tiny_size(tmp_path):
    rs = _bench()
    out = tmp_path / "scale.json"
    assert rs.main(["--sizes", "128", "--boreholes", "300", "--keep", str(tmp_path),
                    "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    steps = doc["runs"][0]["steps"]
    assert list(steps) == ["labels", "train", "predict", "stats"]
    for s in steps.values():
        assert s["rc"] == 0 and s["cpu_s"] > 0 and s["peak_rss_bytes"] > 50e6
    region = tmp_path / "region_128"
    stats = json.loads((region / "stats.json").read_text())
    assert stats  # the PZI's area statistics were written
    assert (region / "pzi.tif").exists() and (region / "model" / "metadata.json").exists()
    assert set(doc["projection"]) == {"predict", "stats", "predict+stats"}


def test_bytecode_environment_is_that_of_a_usual_install(tmp_path, monkeypatch):
    """``--bytecode DIR``: the steps write and read bytecode under DIR, whatever this
    process's environment says; without it they inherit the environment."""
    rs = _bench()
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    assert rs.child_env(None) is None
    env = rs.child_env(tmp_path / "pyc")
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["PYTHONPYCACHEPREFIX"] == str((tmp_path / "pyc").resolve())
    assert env["PATH"] == os.environ["PATH"]
