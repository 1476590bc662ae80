"""Everything knowable checked before any work (issue 26 items 1, 3 and 7's strict types):
the templates pointed at the sample region laid out another way, every problem at once
with its TOML key and the pipeline file, and the same error from the CLI naming the flag."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from affine import Affine
from factories import write_tif
from shapely.geometry import box
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.config import load_pipeline
from permafrost.cv import block_ids, make_folds
from permafrost.errors import ConfigError, ParameterError, ProblemsError
from permafrost.options import for_cli, for_pipeline, option_names
from permafrost.pipeline import StepSpec, preflight, run_pipeline
from permafrost.pipeline.preflight import largest_fitting_block, max_blocks

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
runner = CliRunner()


def _relaid(tmp: Path) -> dict[str, Path]:
    """The sample region as a user might hold it: other folders, other file names."""
    d = tmp / "my data"
    (d / "grids").mkdir(parents=True)
    for n in ("maat", "pisr", "ndvi", "landcover"):
        shutil.copy(SAMPLES / "covariates" / f"{n}.tif", d / "grids" / f"{n}.tif")
    (d / "elevation").mkdir()
    shutil.copy(SAMPLES / "covariates" / "dem.tif", d / "elevation" / "srtm_30m.tif")
    shutil.copytree(SAMPLES / "insar" / "asc", d / "sar" / "track_128")
    shutil.copytree(SAMPLES / "insar" / "desc", d / "sar" / "track_33")
    (d / "vectors").mkdir()
    shutil.copy(SAMPLES / "inventory" / "rock_glaciers.gpkg", d / "vectors" / "rg_v2.gpkg")
    shutil.copy(SAMPLES / "regions" / "basins.gpkg", d / "vectors" / "catchments.gpkg")
    shutil.copy(SAMPLES / "masks" / "glaciers_lakes.gpkg", d / "vectors" / "ice.gpkg")
    (d / "tables").mkdir()
    shutil.copy(SAMPLES / "boreholes" / "boreholes.csv", d / "tables" / "bh_2024.csv")
    shutil.copy(SAMPLES / "priors" / "pzi_prior.tif", d / "prior_continuous.tif")
    shutil.copy(SAMPLES / "priors" / "survey_map.tif", d / "prior_classes.tif")
    return {"covariates": d / "grids", "dem": d / "elevation" / "srtm_30m.tif",
            "tracks": [d / "sar" / "track_128", d / "sar" / "track_33"],
            "inventories": [d / "vectors" / "rg_v2.gpkg"],
            "boreholes": d / "tables" / "bh_2024.csv",
            "regions": d / "vectors" / "catchments.gpkg", "mask": d / "vectors" / "ice.gpkg",
            "prior_continuous": d / "prior_continuous.tif",
            "prior_classes": d / "prior_classes.tif"}


def _toml(v) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\") + '"'


def _set(text: str, key: str, value: str) -> str:
    """The first line ``key = ...`` given ``value`` (TOML text)."""
    new, n = re.subn(rf"(?m)^{re.escape(key)} = .*$", lambda m: f"{key} = {value}", text,
                     count=1)
    assert n == 1, key
    return new


def _point(template: str, tmp: Path, *, field: str | None = None) -> Path:
    """A copy of a template whose inputs are the relaid sample region (the template's own
    region field kept unless ``field`` is given)."""
    files = _relaid(tmp)
    text = (ROOT / "pipelines" / template).read_text()
    for key in ("covariates", "dem", "tracks", "inventories", "boreholes", "mask"):
        text = _set(text, key, _toml(files[key]))
    keep = re.search(r'(?m)^regions = \{ path = ".*", field = "(.*)" \}$', text).group(1)
    text = _set(text, "regions", f'{{ path = {_toml(files["regions"])}, field = '
                                 f'"{field or keep}" }}')
    text = _set(text, "output_dir", _toml(tmp / "out"))
    text = re.sub(r'(?m)^path = "/data/priors/obu.*"$', f"path = {_toml(files['prior_continuous'])}",
                  text)
    text = re.sub(r'(?m)^path = "/data/priors/zou.*"$', f"path = {_toml(files['prior_classes'])}",
                  text)
    assert "/data/" not in text
    p = tmp / "pipelines" / template
    p.parent.mkdir(exist_ok=True)
    p.write_text(text)
    return p


# ------------------------------------------------------------------------------ done when


def test_template_on_relaid_sample_reports_every_problem_before_any_step(tmp_path):
    """issue 26, done when: the Qilian template pointed at the sample region (another
    layout) with its region field `basin` (the sample's is `name`) and its 20 km blocks for
    10 folds (the sample is 35 x 33 km: 2 x 2 blocks): `scenarios` reports both, naming the
    TOML keys and the file, exit 2, before any step runs; so do `run --dry-run` and `run`."""
    p = _point("qilian.toml", tmp_path)
    res = runner.invoke(app, ["scenarios", str(p)])
    assert res.exit_code == 2, res.output
    out = res.output
    assert "2 problems found before any work" in out
    assert "field 'inputs.regions.field': no region name column 'basin'" in out
    assert "columns: basin_id, name, area_km2" in out
    assert "field 'train.block_size_m'" in out and "fewer than the 10 folds" in out
    assert "train.folds" in out  # the fix names the other key too
    lines = [ln for ln in out.splitlines() if "field '" in ln]
    assert len(lines) == 2 and all(str(p.resolve()) in ln for ln in lines)
    assert "--" not in out  # no CLI flag advice to a pipeline user
    assert "Traceback" not in out
    for args in (["run", str(p), "--dry-run"], ["run", str(p), "--all-scenarios"]):
        r = runner.invoke(app, args)
        assert r.exit_code == 2, r.output
        assert "inputs.regions.field" in r.output and "train.block_size_m" in r.output
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_fix_of_block_size_is_the_largest_that_fits(tmp_path):
    """The block size the message offers fits: with it (and the region field fixed) the
    same pipeline passes every check."""
    p = _point("qilian.toml", tmp_path, field="name")
    with pytest.raises(ProblemsError) as exc:
        preflight(load_pipeline(p)).raise_errors(p)
    (err,) = exc.value.problems
    size = float(re.search(r"at most ([\d,]+) m", str(err)).group(1).replace(",", ""))
    p.write_text(_set(p.read_text(), "block_size_m", f"{size:.0f}"))
    assert preflight(load_pipeline(p)).errors == []


@pytest.mark.parametrize("template", ["small_region.toml", "qilian.toml"])
def test_templates_pass_the_checks_on_the_sample(tmp_path, template):
    """Both templates pass where their inputs exist: the small-region one as it is, the
    Qilian one with its region field and its CV blocks set for this small extent (the only
    settings of it that are about the region's size)."""
    p = _point(template, tmp_path, field="name")
    if template == "qilian.toml":
        text = _set(p.read_text(), "block_size_m", "5000")
        p.write_text(_set(text, "folds", "5"))
    res = runner.invoke(app, ["scenarios", str(p)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["run", str(p), "--dry-run", "--all-scenarios"])
    assert res.exit_code == 0, res.output
    assert "would run; nothing was run or written" in res.output
    assert not (tmp_path / "out").exists()


def test_templates_keep_workers_out():
    """issue 26: `workers = 4` made predict 9x slower on 2 cores; the templates leave it
    out (one process with threads) and say why."""
    for t in ("qilian.toml", "small_region.toml"):
        text = (ROOT / "pipelines" / t).read_text()
        assert not re.search(r"(?m)^workers\s*=", text), t
        assert re.search(r"9x\s+(#\s*)?slower", text), t


# ------------------------------------------------------------------------------ each check


def test_every_column_feature_and_kind_problem_at_once(tmp_path):
    p = _point("small_region.toml", tmp_path, field="name")
    text = p.read_text()
    text = _set(text, "activity_column", '"status"')
    text = text.replace('[train]\n', '[train]\nfeatures = ["maat", "pisr", "landcover"]\n'
                        'monotone = { maat = -1, ndvi = 1, landcover = 1 }\n')
    # monotone constraints need a kind that takes them (the template's logistic has none)
    text = text.replace('model = "logistic"', 'model = "xgboost"')
    p.write_text(text)
    shutil.copy(SAMPLES / "covariates" / "maat.tif", tmp_path / "not_classes.tif")
    p.write_text(p.read_text().replace(
        "mask = ", f"landcover = {_toml(tmp_path / 'not_classes.tif')}\nmask = ", 1))
    found = preflight(load_pipeline(p))
    text = "\n".join(map(str, found.errors))
    assert "field 'labels.activity_column': no activity column 'status'" in text
    assert "monotone constraint on 'ndvi', which is not a feature" in text
    assert "monotone constraint on the categorical covariate 'landcover'" in text
    assert "field 'inputs.landcover'" in text and "not a categorical raster" in text
    assert len(found.errors) == 4, text
    assert all(str(p.resolve()) in str(e) for e in found.errors)


def test_scenario_override_is_named_by_its_own_key(tmp_path):
    p = _point("small_region.toml", tmp_path, field="name")
    p.write_text(p.read_text() + '\n[scenarios.big_blocks]\ntrain = { block_size_m = 40000 }\n')
    found = preflight(load_pipeline(p))
    (err,) = found.errors
    assert "field 'scenarios.big_blocks.train.block_size_m'" in str(err)
    assert "train.folds" in str(err)


def test_borehole_role_missing_names_the_column_key(tmp_path):
    p = _point("small_region.toml", tmp_path, field="name")
    p.write_text(p.read_text().replace(
        "boreholes = ", 'borehole_columns = { presence = "frozen" }\nboreholes = ', 1))
    (err,) = preflight(load_pipeline(p)).errors
    assert "inputs.borehole_columns.presence" in str(err) and "frozen" in str(err)


def test_workers_above_the_cores_warn_not_fail(tmp_path):
    p = _point("small_region.toml", tmp_path, field="name")
    cores = os.cpu_count() or 1
    p.write_text(p.read_text().replace("[predict]\n", f"[predict]\nworkers = {cores + 1}\n"))
    found = preflight(load_pipeline(p))
    assert found.errors == []
    assert any(w.startswith(f"predict.workers = {cores + 1} worker processes on {cores}")
               for w in found.warnings)
    res = runner.invoke(app, ["scenarios", str(p)])
    assert res.exit_code == 0 and "WARNING" in res.output and "predict.workers" in res.output


def test_wrong_toml_type_is_an_error_not_coerced(tmp_path):
    """issue 26 item 7: `folds = "5"` (or 5.0) is refused naming the key, not coerced."""
    p = _point("small_region.toml", tmp_path, field="name")
    base = p.read_text()
    for k, v, key in (("folds", '"5"', "train.folds"), ("folds", "5.0", "train.folds"),
                      ("block_size_m", '"5000"', "train.block_size_m"),
                      ("seed", '"1"', "pipeline.seed"), ("uncertainty", '"true"',
                                                         "predict.uncertainty")):
        p.write_text(_set(base, k, v))
        with pytest.raises(ConfigError, match=rf"field '{re.escape(key)}': Input should be a "
                                              "valid") as exc:
            load_pipeline(p)
        assert str(p) in str(exc.value)
    p.write_text(_set(base, "block_size_m", "5000"))  # an integer where a float is due
    assert load_pipeline(p).train.block_size_m == 5000.0


# ------------------------------------------------------------------------------ blocks


def test_max_blocks_is_the_extent_count_and_bounds_any_labels():
    """Analytic: 35 x 33 km in blocks of 20 km: 2 x 2; of 11 km: 4 x 4 (blocks anchored at
    the minimum, floor(w / s) + 1 a side); random points inside never fall into more."""
    x, y = [500_000.0, 535_000.0], [4_250_000.0, 4_283_000.0]
    crs = "EPSG:32647"
    assert max_blocks(x, y, crs, 20_000, 10) == 4
    assert max_blocks(x, y, crs, 11_000, 20) == 16
    assert max_blocks(x, y, crs, 11_000, 16) is None
    assert max_blocks(x, y, crs, 12_000, 10) == 9
    rng = np.random.default_rng(0)
    for size in (3_000.0, 7_500.0, 11_000.0, 20_000.0):
        bound = max_blocks(x, y, crs, size, 10**6)
        for _ in range(20):
            px = rng.uniform(*x, rng.integers(5, 400))
            py = rng.uniform(*y, px.size)
            assert len(np.unique(block_ids(px, py, size))) <= bound
    fit = largest_fitting_block(x, y, crs, 10, 20_000)
    assert max_blocks(x, y, crs, fit, 10) is None
    assert max_blocks(x, y, crs, fit * 1.02, 10) is not None


# ------------------------------------------------------------------------------ one error


def test_one_error_three_audiences():
    """A science error names the parameter; the pipeline shows its TOML key and file, the
    CLI the command's flag; the advice names the same parameter each time."""
    y = np.array([0, 1] * 10)
    with pytest.raises(ParameterError) as exc:
        make_folds(y, n_splits=5, groups=np.repeat([0, 1], 10))
    lib = exc.value
    assert str(lib) == ("field 'block_size': only 2 spatial blocks/groups for 5 folds; use a "
                        "smaller block_size or fewer folds")
    pipe = for_pipeline(lib, "/x/p.toml")
    assert str(pipe) == ("/x/p.toml: field 'train.block_size_m': only 2 spatial blocks/groups "
                         "for 5 folds; use a smaller train.block_size_m or fewer train.folds")
    cli = for_cli(lib, "train")
    assert str(cli) == ("field '--block-size': only 2 spatial blocks/groups for 5 folds; use "
                        "a smaller --block-size or fewer --folds")
    assert for_cli(pipe, "train") is pipe  # translated once
    assert option_names("block_size").toml[0] == "train.block_size_m"
    assert option_names("region_field").flag("stats") == "--region-field"


def _regions(tmp_path) -> Path:
    t = Affine(0.01, 0, 10.0, 0, -0.01, 60.0)
    write_tif(tmp_path / "pzi.tif", np.full((30, 20), 0.7, "float32"), t, nodata=-1)
    gpd.GeoDataFrame({"basin": ["A"]}, geometry=[box(10, 59.7, 10.2, 60)],
                     crs="EPSG:4326").to_file(tmp_path / "r.gpkg")
    return tmp_path / "r.gpkg"


def test_same_error_from_the_cli_names_the_flag(tmp_path):
    """The region column missing: `permafrost stats` names --region-field (the library
    names region_field, a pipeline inputs.regions.field)."""
    r = _regions(tmp_path)
    res = runner.invoke(app, ["stats", str(tmp_path / "pzi.tif"), "--regions", str(r),
                              "--out-json", str(tmp_path / "s.json")])
    assert res.exit_code == 2, res.output
    assert "field '--region-field': no region name column 'name'" in res.output
    assert "name one with --region-field (columns: ['basin'])" in res.output
    assert "inputs.regions" not in res.output and "region_field" not in res.output


def test_same_error_inside_a_pipeline_run_names_the_key_and_file(tmp_path):
    """A step that meets the science error: the run reports the TOML key and the pipeline
    file, not the library's parameter nor a flag."""
    (tmp_path / "cov").mkdir()
    (tmp_path / "cov" / "maat.tif").write_bytes(b"x")
    (tmp_path / "bh.csv").write_text("id,lon,lat,presence\n1,99,38.5,1\n")
    p = tmp_path / "p.toml"
    p.write_text('[pipeline]\nname = "t"\noutput_dir = "out"\n[inputs]\ncovariates = "cov"\n'
                 'boreholes = "bh.csv"\n')

    def train(ctx):
        make_folds(np.array([0, 1] * 5), n_splits=5, groups=np.repeat([0, 1], 5))

    steps = [StepSpec("train", (), lambda c, ch: c.train, lambda c, ch: {}, train)]
    with pytest.raises(ParameterError) as exc:
        run_pipeline(load_pipeline(p), steps=steps)
    assert str(exc.value).startswith(f"{p.resolve()}: field 'train.block_size_m': only 2")
    assert str(exc.value).endswith("use a smaller train.block_size_m or fewer train.folds")


def test_blocks_counted_over_the_evidence_not_only_the_grid(tmp_path):
    """Rock glaciers and boreholes in one 0.1 x 0.1 degree corner (about 8.7 x 11 km) of the
    35 x 33 km grid: 5 km blocks for 10 folds fit the grid (49 blocks) but not the corner
    where the labels can come from (at most 3 x 3); the message says so."""
    p = _point("small_region.toml", tmp_path, field="name")
    d = tmp_path / "my data"
    inv = gpd.read_file(d / "vectors" / "rg_v2.gpkg")
    (d / "vectors" / "rg_v2.gpkg").unlink()
    inv.cx[99.0:99.1, 38.4:38.5].to_file(d / "vectors" / "rg_v2.gpkg")
    lines = (d / "tables" / "bh_2024.csv").read_text().splitlines()
    keep = [ln for ln in lines[1:] if 99.0 <= float(ln.split(",")[1]) <= 99.1
            and 38.4 <= float(ln.split(",")[2]) <= 38.5]
    assert keep and len(inv.cx[99.0:99.1, 38.4:38.5])
    (d / "tables" / "bh_2024.csv").write_text("\n".join([lines[0], *keep]) + "\n")
    assert preflight(load_pipeline(p)).errors == []  # 5 folds: the corner holds enough
    p.write_text(_set(p.read_text(), "folds", "10"))
    (err,) = preflight(load_pipeline(p)).errors
    assert "the labels' evidence (inventories, boreholes)" in str(err)
    sub = inv.cx[99.0:99.1, 38.4:38.5].total_bounds
    lon = [float(ln.split(",")[1]) for ln in keep] + [sub[0], sub[2]]
    lat = [float(ln.split(",")[2]) for ln in keep] + [sub[1], sub[3]]
    n = max_blocks([min(lon), max(lon)], [min(lat), max(lat)], "EPSG:4326", 5000, 10)
    assert n is not None and n <= 9  # within the 0.1 degree box: at most 3 x 3
    assert f"at most {n} spatial blocks of 5,000 m, fewer than the 10 folds" in str(err)


def test_validate_without_evidence_names_the_commands_flags(tmp_path):
    """'nothing to validate against': the library names boreholes and priors, `permafrost
    validate` its --boreholes and --prior."""
    write_tif(tmp_path / "pzi.tif", np.full((30, 20), 0.7, "float32"),
              Affine(0.01, 0, 10.0, 0, -0.01, 60.0), nodata=-1)
    res = runner.invoke(app, ["validate", str(tmp_path / "pzi.tif"), "--out",
                              str(tmp_path / "v")])
    assert res.exit_code == 2, res.output
    assert ("field '--boreholes': nothing to validate against; give --boreholes and/or "
            "--prior") in res.output


def test_holdout_blocks_are_checked_against_the_boreholes_and_the_cv_blocks(tmp_path):
    """validate.holdout_block_m: smaller than train.block_size_m, or so large that the
    boreholes' box holds a single block, is reported before any work, naming the key."""
    p = _point("small_region.toml", tmp_path, field="name")
    text = p.read_text().replace("holdout_fraction = 0.25",
                                 "holdout_fraction = 0.25\nholdout_block_m = 2000.0")
    p.write_text(text)
    text2 = "\n".join(map(str, preflight(load_pipeline(p)).errors))
    assert "field 'validate.holdout_block_m': hold-out blocks of 2,000 m are smaller than " \
           "the spatial-CV blocks of 5,000 m" in text2
    p.write_text(text.replace("holdout_block_m = 2000.0", "holdout_block_m = 400000.0"))
    found = preflight(load_pipeline(p)).errors
    msg = "\n".join(map(str, found))
    assert "field 'validate.holdout_block_m': the boreholes span a box that holds at most 1 " \
           "hold-out block of 400,000 m" in msg
    assert len(found) == 1, msg
    # the suggested size fits: with it the check is silent
    fit = float(re.search(r"give at most ([\d,]+) m", msg).group(1).replace(",", ""))
    p.write_text(text.replace("holdout_block_m = 2000.0", f"holdout_block_m = {fit}"))
    assert not [e for e in preflight(load_pipeline(p)).errors
                if "holdout_block_m" in str(e)]
