"""Content keys (issue 21, item 3): a step is up to date only while everything it reads and
everything it wrote is unchanged, and a run's published folder holds what it made.

- the files a covariate stack file or a VRT names are in the step key (recursively);
- an input rewritten with the same size and mtime is hashed again (inode and ctime);
- published outputs are copies: editing ``baseline/pzi.tif`` leaves the step's file alone,
  and the next run puts the step's bytes back;
- a truncated or edited step output makes its step run again, with a one-line note;
- outputs an earlier run published and this run did not are removed, a user's file is not;
- a pipeline file with NUL characters, nesting 2000 levels deep or 10 000 scenarios is
  refused in one line, and resolving a scenario does not copy all the others.

The steps are toy steps (bytes in, bytes out) run by the real engine: what is tested is the
engine's bookkeeping, not the science.
"""

from __future__ import annotations

import json
import logging
import os
import textwrap
import time
from pathlib import Path

import pytest

from permafrost.config import MAX_SCENARIOS, load_pipeline, resolve_scenario
from permafrost.pipeline import StepSpec, plan_pipeline, run_pipeline
from permafrost.pipeline import engine

from .conftest import Outputs, assert_clean_failure, invoke

CALLS: list[str] = []


def toy_steps() -> list[StepSpec]:
    """``predict`` writes pzi.tif (and zones.tif when zones are on) from the bytes of its
    inputs as the engine sees them; ``stats`` reads pzi.tif."""

    def predict(ctx):
        CALLS.append(f"{ctx.scenario}:predict")
        (ctx.workdir / "pzi.tif").write_bytes(b"pzi of " + ctx.config.inputs.boreholes.read_bytes())
        outputs = {"pzi": "pzi.tif"}
        if ctx.config.predict.zones:
            (ctx.workdir / "zones.tif").write_bytes(b"zones")
            outputs["zones"] = "zones.tif"
        return outputs, {}

    def stats(ctx):
        CALLS.append(f"{ctx.scenario}:stats")
        pzi = ctx.upstream["predict"].output("pzi").read_bytes()
        (ctx.workdir / "stats.json").write_text(f'{{"bytes": {len(pzi)}}}')
        return {"stats": "stats.json"}, {}

    return [
        StepSpec("predict", (), lambda c, ch: {"zones": c.predict.zones},
                 lambda c, ch: {"covariates": c.inputs.covariates, "boreholes": c.inputs.boreholes},
                 predict),
        StepSpec("stats", ("predict",), lambda c, ch: {}, lambda c, ch: {}, stats),
    ]


def pipeline(tmp_path: Path, covariates: str, *, zones: bool = True, extra: str = "") -> Path:
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n1,99,38.5,1\n")
    p = tmp_path / "p.toml"
    p.write_text(textwrap.dedent(f"""
        [pipeline]
        name = "keys"
        output_dir = "out"
        [inputs]
        covariates = "{covariates}"
        boreholes = "bh.csv"
        [predict]
        zones = {"true" if zones else "false"}
    """) + extra)
    return p


def run(p: Path) -> list[str]:
    CALLS.clear()
    run_pipeline(load_pipeline(p), steps=toy_steps())
    return list(CALLS)


def step_file(p: Path, name: str = "pzi.tif") -> Path:
    """The predict step's own file of the latest run (from the baseline's manifest)."""
    out = p.parent / "out"
    manifest = json.loads((out / "baseline" / "manifest.json").read_text())
    return out / manifest["steps"]["predict"]["directory"] / name


# ----------------------------------------------------------------------- what a step reads


STACK = """
[grid]
like = "grid/dem.tif"
[covariates.dem]
path = "grid/dem.tif"
[covariates.maat]
path = "rasters/maat.tif"
[derived.maat_fine]
function = "downscale_maat"
coarse = "coarse/maat.tif"
coarse_elevation = "coarse/elevation.tif"
"""


@pytest.mark.parametrize("changed", ["rasters/maat.tif", "grid/dem.tif", "coarse/maat.tif",
                                     "coarse/elevation.tif"])
def test_a_raster_a_stack_file_names_changing_reruns_the_steps(tmp_path, changed):
    for rel in ("grid/dem.tif", "rasters/maat.tif", "coarse/maat.tif", "coarse/elevation.tif"):
        (tmp_path / rel).parent.mkdir(exist_ok=True)
        (tmp_path / rel).write_bytes(b"v1 " + rel.encode())
    (tmp_path / "stack.toml").write_text(STACK)
    p = pipeline(tmp_path, "stack.toml")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []
    stack = Outputs.take(tmp_path / "stack.toml")
    (tmp_path / changed).write_bytes(b"v2 " + changed.encode())  # the TOML is unchanged
    assert run(p) == ["baseline:predict", "baseline:stats"]
    stack.assert_untouched()
    inputs = json.loads((tmp_path / "out" / "baseline" / "manifest.json").read_text())["inputs"]
    assert set(inputs) == {"stack.toml", "bh.csv", "grid/dem.tif", "rasters/maat.tif",
                           "coarse/maat.tif", "coarse/elevation.tif"}
    plan = plan_pipeline(load_pipeline(p), steps=toy_steps())
    assert [s.action for s in plan] == ["up to date", "up to date"]


def test_the_keys_of_a_stack_file_project_do_not_depend_on_where_it_lives(tmp_path):
    keys = []
    for home in (tmp_path / "a", tmp_path / "b" / "much" / "deeper"):
        home.mkdir(parents=True)
        for rel in ("grid/dem.tif", "rasters/maat.tif", "coarse/maat.tif", "coarse/elevation.tif"):
            (home / rel).parent.mkdir(exist_ok=True)
            (home / rel).write_bytes(b"v1 " + rel.encode())
        (home / "stack.toml").write_text(STACK)
        plan = plan_pipeline(load_pipeline(pipeline(home, "stack.toml")), steps=toy_steps())
        keys.append([s.key for s in plan])
    assert keys[0] == keys[1]


def test_the_side_file_of_a_raster_changing_reruns_the_steps(tmp_path):
    """GDAL reads scale, offset and nodata from ``NAME.aux.xml`` beside the raster."""
    (tmp_path / "rasters").mkdir()
    (tmp_path / "rasters" / "maat.tif").write_bytes(b"maat")
    (tmp_path / "stack.toml").write_text('[covariates.maat]\npath = "rasters/maat.tif"\n')
    p = pipeline(tmp_path, "stack.toml")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    (tmp_path / "rasters" / "maat.tif.aux.xml").write_text("<PAMDataset/>")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []


def _vrt(path: Path, source: str, relative: bool) -> None:
    path.write_text(textwrap.dedent(f"""\
        <VRTDataset rasterXSize="2" rasterYSize="2">
          <VRTRasterBand dataType="Float32" band="1">
            <SimpleSource>
              <SourceFilename relativeToVRT="{int(relative)}">{source}</SourceFilename>
              <SourceBand>1</SourceBand>
            </SimpleSource>
          </VRTRasterBand>
        </VRTDataset>
    """))


def test_a_source_of_a_vrt_changing_reruns_the_steps(tmp_path):
    """A covariate folder holds a VRT naming a VRT elsewhere (absolute path), which names
    a GeoTIFF beside it (relative to the VRT): neither file lies in the folder."""
    (tmp_path / "cov").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "maat.tif").write_bytes(b"maat v1")
    _vrt(tmp_path / "src" / "inner.vrt", "maat.tif", relative=True)
    _vrt(tmp_path / "cov" / "maat.vrt", str(tmp_path / "src" / "inner.vrt"), relative=False)
    p = pipeline(tmp_path, "cov")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []
    (tmp_path / "src" / "maat.tif").write_bytes(b"maat v2")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []


def test_a_vrt_that_names_itself_does_not_loop(tmp_path):
    _vrt(tmp_path / "loop.vrt", "loop.vrt", relative=True)
    p = pipeline(tmp_path, "loop.vrt")
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []


@pytest.mark.parametrize("how", ["in place", "by rename"])
def test_an_input_rewritten_with_the_same_size_and_mtime_reruns(tmp_path, monkeypatch, how):
    # records are trusted at once here (no 2 s racy window): only the stat decides
    monkeypatch.setattr(engine, "_RACY_NS", 0)
    p = pipeline(tmp_path, "cov")
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    bh = tmp_path / "bh.csv"
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert run(p) == []
    before = bh.stat()
    new = bh.read_bytes().replace(b",1\n", b",0\n")
    assert len(new) == before.st_size
    time.sleep(0.05)  # past the kernel's timestamp tick
    if how == "in place":
        with open(bh, "r+b") as fh:
            fh.write(new)
    else:
        (tmp_path / "bh.new").write_bytes(new)
        os.replace(tmp_path / "bh.new", bh)
    os.utime(bh, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = bh.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert step_file(p).read_bytes().endswith(b",0\n")


# ----------------------------------------------------------------------- what a step wrote


def test_editing_a_published_file_leaves_the_step_output_alone(tmp_path):
    p = pipeline(tmp_path, "cov")
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    run(p)
    published, cached = tmp_path / "out" / "baseline" / "pzi.tif", step_file(p)
    original = cached.read_bytes()
    assert published.read_bytes() == original
    assert not os.path.samefile(published, cached)  # a copy, not a hard link
    with open(published, "r+b") as fh:  # edited in place, as a GIS "save" does
        fh.write(b"EDITED")
    assert cached.read_bytes() == original
    assert run(p) == []  # the step's own output is intact: nothing reruns
    assert published.read_bytes() == original  # ... and the published copy is put back


def test_a_truncated_step_output_makes_the_step_run_again(tmp_path, caplog):
    p = pipeline(tmp_path, "cov")
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    run(p)
    cached = step_file(p)
    original = cached.read_bytes()
    with open(cached, "r+b") as fh:
        fh.truncate(3)
    plan = plan_pipeline(load_pipeline(p), steps=toy_steps())
    assert plan[0].action == "run" and "pzi.tif" in plan[0].reasons[0], plan[0]
    assert plan[1].action == "up to date"  # the rerun writes the same bytes: same key
    with caplog.at_level(logging.WARNING, logger="permafrost"):
        assert run(p) == ["baseline:predict"]
    notes = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(notes) == 1 and "pzi.tif" in notes[0] and "\n" not in notes[0], notes
    assert step_file(p).read_bytes() == original
    assert (tmp_path / "out" / "baseline" / "pzi.tif").read_bytes() == original


def test_an_edited_step_output_of_the_same_size_makes_the_step_run_again(tmp_path):
    p = pipeline(tmp_path, "cov")
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    run(p)
    with open(step_file(p, "zones.tif"), "r+b") as fh:
        fh.write(b"Z")
    assert run(p) == ["baseline:predict"]
    assert step_file(p, "zones.tif").read_bytes() == b"zones"


def test_outputs_no_longer_made_are_removed_and_a_users_file_is_kept(tmp_path):
    p = pipeline(tmp_path, "cov", zones=True)
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    run(p)
    folder = tmp_path / "out" / "baseline"
    assert (folder / "zones.tif").is_file()
    (folder / "notes.txt").write_text("my notes")  # the user's own file
    (folder / "zones_mine.tif").write_bytes(b"mine")
    p.write_text(p.read_text().replace("zones = true", "zones = false"))
    assert run(p) == ["baseline:predict", "baseline:stats"]
    assert not (folder / "zones.tif").exists()
    assert (folder / "notes.txt").read_text() == "my notes"
    assert (folder / "zones_mine.tif").read_bytes() == b"mine"
    assert sorted(json.loads((folder / "manifest.json").read_text())["published"]) == \
        ["pzi.tif", "stats.json"]


def test_a_published_file_the_user_changed_is_not_removed(tmp_path, caplog):
    p = pipeline(tmp_path, "cov", zones=True)
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    run(p)
    zones = tmp_path / "out" / "baseline" / "zones.tif"
    zones.write_bytes(b"the user's own zones")
    p.write_text(p.read_text().replace("zones = true", "zones = false"))
    with caplog.at_level(logging.WARNING, logger="permafrost"):
        run(p)
    assert zones.read_bytes() == b"the user's own zones"
    assert any("zones.tif" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------- the pipeline file


def _scenarios(n: int) -> str:
    return "".join(f"\n[scenarios.s{i}]\ncovariates.maat = {{ offset = {i / 1000:.3f} }}\n"
                   for i in range(n))


def test_ten_thousand_scenarios_are_refused_in_one_line(tmp_path):
    p = pipeline(tmp_path, "cov", extra=_scenarios(10_000))
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    files = Outputs.take(p, tmp_path / "bh.csv", tmp_path / "out")
    line = assert_clean_failure(invoke(["run", p, "--dry-run"]), names=p, field="scenarios",
                                outputs=files)
    assert str(MAX_SCENARIOS) in line


def test_planning_the_most_scenarios_allowed_is_linear(tmp_path):
    """Resolving a scenario copied every other scenario (quadratic in their number:
    1000 scenarios took 82 s to plan); it shares them now."""
    p = pipeline(tmp_path, "cov", extra=_scenarios(MAX_SCENARIOS))
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"maat")
    cfg = load_pipeline(p)
    resolved, changes = resolve_scenario(cfg, "s7")
    assert resolved.scenarios is cfg.scenarios and changes["maat"].offset == 0.007
    assert resolved.predict is not cfg.predict  # the scenario's own options are its own
    plan = plan_pipeline(cfg, steps=toy_steps(), scenarios=list(cfg.scenarios))
    assert len(plan) == 2 * (MAX_SCENARIOS + 1)


@pytest.mark.parametrize("case", ["escaped NUL in a path", "NUL byte", "NUL in a key",
                                  "2000 levels of arrays", "2000 levels of tables",
                                  "40 levels of arrays"])
def test_nul_characters_and_deep_nesting_are_refused_in_one_line(tmp_path, case):
    head = '[pipeline]\nname = "x"\n'
    text = {
        "escaped NUL in a path": head + 'output_dir = "o\\u0000ut"\n',
        "NUL byte": head + 'output_dir = "o\x00ut"\n',
        "NUL in a key": head + '"output\\u0000dir" = "out"\n',
        "2000 levels of arrays": head + "output_dir = " + "[" * 2000 + "]" * 2000 + "\n",
        "2000 levels of tables": head + "output_dir = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n",
        "40 levels of arrays": head + "output_dir = " + "[" * 40 + "]" * 40 + "\n",
    }[case]
    p = tmp_path / "bad.toml"
    p.write_text(text)
    files = Outputs.take(p)
    line = assert_clean_failure(invoke(["run", p, "--dry-run"]), names=p, outputs=files)
    assert ("NUL" in line or "\\x00" in line) if "NUL" in case else "nested" in line


@pytest.mark.parametrize("case", ["2000 levels of tables", "NUL in a path"])
def test_a_stack_file_with_deep_nesting_or_nul_is_refused_in_one_line(
        tmp_path, case, model_dir):
    """The covariate stack file goes through the same TOML reader as the pipeline file
    (`permafrost.io.toml_files.read_toml`): tomllib's RecursionError is not an internal error."""
    text = {"2000 levels of tables": "[grid]\nlike = " + "{a = " * 2000 + "1" + "}" * 2000 + "\n",
            "NUL in a path": '[covariates.maat]\npath = "ma\\u0000at.tif"\n'}[case]
    p = tmp_path / "stack.toml"
    p.write_text(text)
    files = Outputs.take(p)
    line = assert_clean_failure(invoke(["predict", "--model", model_dir, "--covariates", p,
                                        "--out", tmp_path / "pzi.tif"]),
                                names=p, outputs=files)
    assert ("NUL" in line) if "NUL" in case else "nested" in line
