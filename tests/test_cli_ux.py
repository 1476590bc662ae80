"""What a user of the command line sees: start-up imports, help text, --json, -v, warnings,
tables in a pipe, shell completion and ``run --dry-run``."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from permafrost.cli import app

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "pipelines" / "demo.toml"
runner = CliRunner()

HEAVY = ("numpy", "pandas", "xarray", "rioxarray", "rasterio", "geopandas", "xgboost",
         "sklearn", "dask", "scipy", "h5py", "mintpy", "matplotlib", "pydantic", "rich")


def command_names() -> list[str]:
    return sorted(typer.main.get_command(app).commands)


# --------------------------------------------------------------------------- start-up


def test_importing_the_cli_loads_no_heavy_library():
    """--version, --help and shell completion import the CLI only: it must stay light."""
    code = ("import sys, permafrost, permafrost.cli; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split()
    assert out == []


def test_version_runs_as_a_process_without_heavy_imports():
    code = ("import sys; sys.argv = ['permafrost', '--version']; from permafrost.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.startswith("permafrost ")
    assert proc.stderr.split() == []


def test_kinematics_help_defaults_are_the_library_defaults():
    from permafrost.cli.kinematics import _D
    from permafrost.kinematics import KinematicsConfig

    lib = KinematicsConfig()
    names = {f.name for f in fields(KinematicsConfig)}
    for name, value in vars(_D).items():
        assert name in names, name
        assert getattr(lib, name) == value, name


# --------------------------------------------------------------------------- help text


@pytest.mark.parametrize("name", command_names())
def test_help_has_no_placeholder_braces_or_bool_metavars(name):
    result = runner.invoke(app, [name, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "<list[" not in result.output
    assert not re.search(r"\{[a-z_]+\}", result.output), result.output
    assert "-v, --verbose" in result.output  # accepted after the command too


def test_units_in_square_brackets_survive_in_help():
    out = runner.invoke(app, ["kinematics", "--help"], terminal_width=100).output
    for unit in ("[deg]", "[m/yr]", "[pixels]", "[-]"):
        assert unit in out, unit
    assert "flatter pixels ." not in out
    stats = runner.invoke(app, ["stats", "--help"], terminal_width=100).output
    assert "Usage: permafrost stats [OPTIONS] PZI" in stats
    assert "[m]" in stats


def test_root_help_offers_shell_completion():
    out = runner.invoke(app, ["--help"]).output
    assert "--install-completion" in out and "--show-completion" in out


def test_shell_completion_completes_commands_and_options():
    import os

    def complete(words: str, cword: int) -> list[str]:
        env = {**os.environ, "_PERMAFROST_COMPLETE": "complete_bash", "COMP_WORDS": words,
               "COMP_CWORD": str(cword)}
        code = "import sys; sys.argv = ['permafrost']; from permafrost.cli import main; main()"
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, timeout=120).stdout.split()

    assert complete("permafrost st", 1) == ["stats"]
    assert "--dry-run" in complete("permafrost run --dr", 2)


# --------------------------------------------------------------------------- -v


def test_verbose_after_the_command_sets_logging(tmp_path):
    logger = logging.getLogger("permafrost")
    before = logger.level
    try:
        res = runner.invoke(app, ["inspect", str(tmp_path), "-vv"])
        assert res.exit_code == 0, res.output
        assert logger.level == logging.DEBUG
    finally:
        logger.setLevel(before)
        from permafrost.cli._app import state

        state.verbose = 0


# --------------------------------------------------------------------------- --json


@pytest.fixture()
def pzi_tif(tmp_path):
    import numpy as np
    import rasterio
    from affine import Affine

    arr = np.zeros((30, 20), dtype="float32")
    arr[10:20] = 0.95
    p = tmp_path / "pzi.tif"
    with rasterio.open(p, "w", driver="GTiff", width=20, height=30, count=1, dtype="float32",
                       crs="EPSG:4326", transform=Affine(0.01, 0, 10.0, 0, -0.01, 60.0),
                       nodata=-1) as dst:
        dst.write(arr, 1)
    return p


def test_stats_json_and_out_json_dash_write_json_to_stdout(pzi_tif, tmp_path):
    res = runner.invoke(app, ["stats", str(pzi_tif), "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert js["units"][0]["name"] == "all" and js["units"][0]["pzi_ge_0.5_km2"] > 0
    dash = runner.invoke(app, ["stats", str(pzi_tif), "--out-json", "-"])
    assert dash.exit_code == 0, dash.output
    assert json.loads(dash.stdout) == js
    assert not Path("-").exists() and not (tmp_path / "-").exists()


def test_validate_json_prints_the_result(pzi_tif, tmp_path):
    bh = tmp_path / "bh.csv"
    bh.write_text("id,lon,lat,presence\n" + "\n".join(
        f"b{i},{10.01 + 0.01 * (i % 18)},{59.95 - 0.01 * (i % 28)},{int(12 <= i % 28 < 18)}"
        for i in range(40)) + "\n")
    res = runner.invoke(app, ["validate", str(pzi_tif), "--boreholes", str(bh), "--out",
                              str(tmp_path / "val"), "--json"])
    assert res.exit_code == 0, res.output
    js = json.loads(res.stdout)
    assert "boreholes" in js and js["boreholes"]["table"]


def test_tables_piped_are_not_cut(pzi_tif):
    """Not a terminal, no COLUMNS: a fixed wide table, so no header is cut to 'denomina…'."""
    proc = subprocess.run([sys.executable, "-m", "permafrost", "stats", str(pzi_tif)],
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in __import__("os").environ.items()
                               if k != "COLUMNS"})
    assert proc.returncode == 0, proc.stderr
    assert "denominator" in proc.stdout and "…" not in proc.stdout
    assert "discontinuous" in proc.stdout


# --------------------------------------------------------------------------- warnings


def test_library_deprecation_warnings_are_not_shown_to_cli_users(tmp_path):
    code = (
        "import sys, warnings\n"
        "import permafrost.io.catalog as c\n"
        "def fake(d, strict=False):\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter('default')\n"
        "        warnings.warn('use @ not *', PendingDeprecationWarning)\n"
        "        warnings.warn('a data problem', UserWarning)\n"
        "    return [], []\n"
        "c.describe_directory = fake\n"
        "from permafrost.cli import main\n"
        "sys.argv = ['permafrost', 'inspect', sys.argv[1]] + sys.argv[2:]\n"
        "main()\n")
    quiet = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                           text=True, timeout=300)
    assert quiet.returncode == 0, quiet.stderr
    assert "PendingDeprecationWarning" not in quiet.stderr
    assert "a data problem" in quiet.stderr  # other warnings still reach the user
    loud = subprocess.run([sys.executable, "-c", code, str(tmp_path), "-vv"],
                          capture_output=True, text=True, timeout=300)
    assert "PendingDeprecationWarning" in loud.stderr


# --------------------------------------------------------------------------- run --dry-run


def _pipeline(tmp: Path, boreholes: Path, *, edit=None) -> Path:
    text = DEMO.read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('"demo_covariates.toml"', f'"{ROOT}/pipelines/demo_covariates.toml"')
    text = re.sub(r'output_dir = ".*"', f'output_dir = "{tmp / "out"}"', text)
    text = text.replace(f'"{ROOT}/data_samples/boreholes/boreholes.csv"', f'"{boreholes}"')
    if edit:
        text = edit(text)
    p = tmp / "demo.toml"
    p.write_text(text)
    return p


def _plan(p: Path) -> dict[str, dict]:
    res = runner.invoke(app, ["run", str(p), "--only", "labels", "--dry-run", "--json"])
    assert res.exit_code == 0, res.output
    return {s["step"]: s for s in json.loads(res.stdout)["steps"]}


@pytest.mark.slow
def test_dry_run_says_which_steps_would_run_and_why(tmp_path):
    bh = tmp_path / "boreholes.csv"
    bh.write_bytes((ROOT / "data_samples" / "boreholes" / "boreholes.csv").read_bytes())
    p = _pipeline(tmp_path, bh)
    first = _plan(p)
    assert {n: s["action"] for n, s in first.items()} == {"kinematics": "run", "labels": "run"}
    assert first["labels"]["reasons"] == ["no earlier run"]
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    text = runner.invoke(app, ["run", str(p), "--only", "labels", "--dry-run"])
    assert "would run" in text.stdout and "nothing was run" in text.stdout

    res = runner.invoke(app, ["run", str(p), "--only", "labels"])
    assert res.exit_code == 0, res.output
    assert {s["action"] for s in _plan(p).values()} == {"up to date"}

    # an option of labels changes: labels reruns, kinematics does not
    p = _pipeline(tmp_path, bh, edit=lambda t: t.replace('sampling = "front"',
                                                          'sampling = "centroid"'))
    plan = _plan(p)
    assert plan["kinematics"]["action"] == "up to date"
    assert plan["labels"]["action"] == "run"
    assert plan["labels"]["reasons"] == ['options changed: labels.sampling "front" -> "centroid"']

    # an input's content changes
    p = _pipeline(tmp_path, bh)
    bh.write_text(bh.read_text() + "\n")
    plan = _plan(p)
    assert any(r.startswith("input changed") and "boreholes" in r
               for r in plan["labels"]["reasons"]), plan
    bh.write_bytes((ROOT / "data_samples" / "boreholes" / "boreholes.csv").read_bytes())

    # upstream: a kinematics option changes, so labels follows
    p = _pipeline(tmp_path, bh, edit=lambda t: t.replace("sensitivity_cut = 0.3",
                                                          "sensitivity_cut = 0.35"))
    plan = _plan(p)
    assert any("sensitivity_cut" in r for r in plan["kinematics"]["reasons"]), plan
    assert "upstream changed: kinematics" in plan["labels"]["reasons"], plan

    # missing outputs
    p = _pipeline(tmp_path, bh)
    (lab,) = (tmp_path / "out" / "steps" / "labels").glob("*/labels.gpkg")
    lab.unlink()
    plan = _plan(p)
    assert plan["labels"]["action"] == "run"
    assert plan["labels"]["reasons"] == ["its output labels.gpkg is missing"]
