"""The output guard (permafrost.io.guard): no command or pipeline writes onto an input, onto
another output, onto a GeoPackage holding other layers or into a folder it did not write.

Each data-loss case of issue 21 is refused before any work, with one line naming the path,
and every input is checked byte for byte afterwards; the tool's own folders (a model, a run
folder) stay replaceable, so reruns still work.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
from shapely.geometry import Point

from permafrost.errors import OutputError

from .conftest import ROOT, Outputs, assert_clean_failure, demo_pipeline_text, invoke

TRAIN_FAST = ["--device", "cpu", "--folds", "2", "--n-estimators", "5", "--no-random-cv",
              "--block-size", "500"]
PREDICT_FAST = ["--device", "cpu", "--threads", "1"]


def _train(labels, cov, out) -> list:
    return ["train", "--labels", labels, "--covariates", cov, "--out", out, *TRAIN_FAST]


def _other_layers_gpkg(path, *layers: str):
    """A GeoPackage holding the user's own layers."""
    for name in layers:
        gpd.GeoDataFrame({"name": [name]}, geometry=[Point(100.0, 38.0)],
                         crs="EPSG:4326").to_file(path, layer=name, driver="GPKG")
    return path


# ----------------------------------------------------------------------------- an output is an input


def test_train_out_onto_the_covariate_folder(make_covariates, make_labels):
    cov, labels = make_covariates(), make_labels()
    kept = Outputs.take(cov, labels)
    res = invoke(_train(labels, cov, cov))
    line = assert_clean_failure(res, names=[cov.name, "--covariates"], outputs=kept)
    assert "--out" in line


def test_train_out_onto_a_folder_that_holds_the_covariates(make_covariates, make_labels,
                                                           tmp_path):
    """The covariate folder inside the model folder: renaming the folder away loses it."""
    cov, labels = make_covariates("project/cov"), make_labels()
    kept = Outputs.take(tmp_path / "project", labels)
    res = invoke(_train(labels, cov, tmp_path / "project"))
    assert_clean_failure(res, names=["project", "contains the input --covariates"], outputs=kept)


def test_train_out_onto_a_project_folder(make_covariates, make_labels, tmp_path):
    proj = tmp_path / "project"
    (proj / "notes").mkdir(parents=True)
    (proj / "thesis.tex").write_text("three years of work")
    (proj / "notes" / "field.csv").write_text("site,depth\nA,12\n")
    kept = Outputs.take(proj)
    res = invoke(_train(make_labels(), make_covariates(), proj))
    assert_clean_failure(res, names=[proj.name, "did not write"], outputs=kept)


def test_train_out_dot(make_covariates, make_labels, tmp_path, monkeypatch):
    proj = tmp_path / "here"
    proj.mkdir()
    (proj / "keep.txt").write_text("mine")
    monkeypatch.chdir(proj)
    kept = Outputs.take(proj)
    res = invoke(_train(make_labels(), make_covariates(), "."))
    assert_clean_failure(res, names=[proj.name, "current folder"], outputs=kept)


def test_predict_out_onto_a_covariate(model_dir, make_covariates):
    cov = make_covariates()
    kept = Outputs.take(cov)
    res = invoke(["predict", "--model", model_dir, "--covariates", cov, "--out",
                  cov / "maat.tif", *PREDICT_FAST])
    assert_clean_failure(res, names=["maat.tif", "--covariates"], outputs=kept)


def test_predict_out_onto_a_raster_a_stack_file_names(model_dir, make_covariates, tmp_path):
    """A stack file's rasters are inputs too: the guard reads the file's names."""
    cov = make_covariates()
    stack = tmp_path / "stack.toml"
    stack.write_text("".join(f'[covariates.{n}]\npath = "{cov / n}.tif"\n'
                             for n in ("maat", "pisr", "ndvi", "dem")))
    kept = Outputs.take(cov, stack)
    res = invoke(["predict", "--model", model_dir, "--covariates", stack, "--out",
                  cov / "ndvi.tif", *PREDICT_FAST])
    assert_clean_failure(res, names=["ndvi.tif", "--covariates"], outputs=kept)


def test_predict_extrapolation_is_the_out(model_dir, make_covariates, tmp_path):
    out = tmp_path / "pzi.tif"
    res = invoke(["predict", "--model", model_dir, "--covariates", make_covariates(),
                  "--out", out, "--extrapolation", out, *PREDICT_FAST])
    assert_clean_failure(res, names=["pzi.tif", "--extrapolation", "--out"])
    assert not out.exists(), "the prediction ran before the outputs were checked"


def test_labels_out_onto_the_inventory(make_inventory, make_boreholes):
    inv, bh = make_inventory(), make_boreholes()
    kept = Outputs.take(inv, bh)
    res = invoke(["labels", "--inventory", inv, "--boreholes", bh, "--sampling", "centroid",
                  "--out", inv])
    assert_clean_failure(res, names=[inv.name, "--inventory"], outputs=kept)
    assert not list(inv.parent.glob("inventory_*.csv")), "side tables written before the check"


def test_labels_out_onto_a_geopackage_with_other_layers(make_inventory, make_boreholes,
                                                        tmp_path):
    gpkg = _other_layers_gpkg(tmp_path / "project.gpkg", "roads", "huts")
    kept = Outputs.take(gpkg)
    res = invoke(["labels", "--inventory", make_inventory(), "--boreholes", make_boreholes(),
                  "--sampling", "centroid", "--out", gpkg])
    assert_clean_failure(res, names=["project.gpkg", "roads", "huts"], outputs=kept)


def test_labels_rerun_onto_its_own_geopackage(make_inventory, make_boreholes, tmp_path):
    """The command's own layer only: the file is the tool's output, a rerun replaces it."""
    args = ["labels", "--inventory", make_inventory(), "--boreholes", make_boreholes(),
            "--sampling", "centroid", "--out", tmp_path / "labels.gpkg"]
    for _ in range(2):
        res = invoke(args)
        assert res.exit_code == 0, res.stderr


def test_stats_out_json_onto_the_pzi(make_pzi):
    pzi = make_pzi()
    kept = Outputs.take(pzi)
    res = invoke(["stats", pzi, "--out-json", pzi])
    assert_clean_failure(res, names=[pzi.name, "--out-json", "PZI"], outputs=kept)


def test_stats_json_and_csv_are_one_file(make_pzi, tmp_path):
    out = tmp_path / "stats.txt"
    res = invoke(["stats", make_pzi(), "--out-json", out, "--out-csv", out])
    assert_clean_failure(res, names=["stats.txt", "--out-json", "--out-csv"])
    assert not out.exists()


def test_kinematics_out_onto_the_outlines(make_track):
    t = make_track()
    outlines = t.folder / "outlines.gpkg"
    kept = Outputs.take(outlines)
    res = invoke(["kinematics", "--track", t.folder, "--outlines", outlines, "--out", outlines])
    assert_clean_failure(res, names=["outlines.gpkg", "--outlines"], outputs=kept)


def test_validate_out_where_a_side_file_is_the_input(make_pzi, make_boreholes, tmp_path):
    """``validate --out DIR`` writes DIR/boreholes.csv: the input table of that name."""
    bh = make_boreholes()  # tmp_path / boreholes.csv
    kept = Outputs.take(bh)
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", tmp_path])
    assert_clean_failure(res, names=["boreholes.csv", "--boreholes"], outputs=kept)
    assert not (tmp_path / "validation.json").exists()


def test_report_default_json_is_the_stats_json(make_pzi, tmp_path):
    """``report --out report.html`` writes report.json beside it by default."""
    pzi = make_pzi()
    stats = tmp_path / "report.json"
    assert invoke(["stats", pzi, "--out-json", stats]).exit_code == 0
    kept = Outputs.take(stats)
    res = invoke(["report", "--pzi", pzi, "--stats", stats, "--out", tmp_path / "report.html"])
    assert_clean_failure(res, names=["report.json", "--stats", "--out-json"], outputs=kept)
    assert not (tmp_path / "report.html").exists()


# ----------------------------------------------------------------------------- names and folders


def test_a_300_byte_output_name(make_pzi, tmp_path):
    out = tmp_path / ("s" * 295 + ".json")
    res = invoke(["stats", make_pzi(), "--out-json", out])
    assert_clean_failure(res, names=["--out-json", "300 bytes"])


def test_a_300_byte_model_folder_name(make_covariates, make_labels, tmp_path):
    res = invoke(_train(make_labels(), make_covariates(), tmp_path / ("m" * 300)))
    assert_clean_failure(res, names=["--out", "300 bytes"])


def test_train_out_onto_a_file(make_covariates, make_labels, tmp_path):
    f = tmp_path / "model"
    f.write_text("not a folder")
    kept = Outputs.take(f)
    res = invoke(_train(make_labels(), make_covariates(), f))
    assert_clean_failure(res, names=["model", "a file is in the way"], outputs=kept)


def test_train_reruns_onto_its_own_model_folder(make_covariates, make_labels, tmp_path):
    """The tool's own model folder is replaceable (recognised by its metadata.json); an
    empty folder may be used."""
    out = tmp_path / "model"
    out.mkdir()
    cov, labels = make_covariates(), make_labels()
    for _ in range(2):
        res = invoke(_train(labels, cov, out))
        assert res.exit_code == 0, res.stderr
    assert (out / "metadata.json").is_file()


def test_save_model_keeps_a_folder_it_did_not_write(model_dir, tmp_path):
    """The library API too: the old folder is renamed away and deleted only if a model."""
    from permafrost.io.model import load_model, save_model

    target = tmp_path / "data"
    target.mkdir()
    (target / "precious.txt").write_text("x")
    kept = Outputs.take(target)
    with pytest.raises(OutputError, match="did not write"):
        save_model(load_model(model_dir), target)
    kept.assert_untouched()


def test_block_cache_prunes_only_its_own_runs(tmp_path):
    from permafrost.io.block_cache import prepare_cache

    root = tmp_path / "cache"
    (root / ("a" * 32)).mkdir(parents=True)  # an earlier run's blocks
    (root / "mine.txt").write_text("a user's file")
    cache = root / ("b" * 32)
    prepare_cache(root, cache, resume=False, prune_others=True)
    assert sorted(p.name for p in root.iterdir()) == sorted(["mine.txt", cache.name])


def test_predict_cache_dir_onto_a_user_folder(model_dir, make_covariates, tmp_path):
    from permafrost.workflows.predict import predict_raster

    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    kept = Outputs.take(mine)
    with pytest.raises(OutputError, match="did not write"):
        predict_raster(model_dir, make_covariates(), tmp_path / "pzi.tif", cache_dir=mine,
                       device="cpu", threads=1)
    kept.assert_untouched()


# ----------------------------------------------------------------------------- pipelines


def _pipeline(tmp_path, output_dir: str) -> object:
    text = demo_pipeline_text(tmp_path / "out")
    text = text.replace(f'output_dir = "{(tmp_path / "out").as_posix()}"',
                        f'output_dir = "{output_dir}"')
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    return p


def test_a_file_where_the_run_folder_goes(tmp_path):
    f = tmp_path / "results"
    f.write_text("a file of the user's")
    p = _pipeline(tmp_path, f.as_posix())
    kept = Outputs.take(f)
    for args in (["run", p], ["run", p, "--dry-run"]):
        res = invoke(args)
        assert_clean_failure(res, names=["results", "pipeline.output_dir", "a file"],
                             outputs=kept)


def test_run_into_a_folder_it_did_not_write(tmp_path):
    proj = tmp_path / "project"
    proj.mkdir()
    (proj / "report.html").write_text("the user's own report")
    kept = Outputs.take(proj)
    res = invoke(["run", _pipeline(tmp_path, proj.as_posix())])
    assert_clean_failure(res, names=["project", "pipeline.output_dir", "did not write"],
                         outputs=kept)


def test_run_output_dir_that_holds_an_input(tmp_path):
    """The boreholes table inside output_dir: the run folder is the tool's to replace."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".permafrost").write_text("{}")  # even a run folder of the tool's
    demo_bh = ROOT / "data_samples" / "boreholes" / "boreholes.csv"
    bh = out / "boreholes.csv"
    bh.write_bytes(demo_bh.read_bytes())
    p = tmp_path / "pipe.toml"
    p.write_text(demo_pipeline_text(out).replace(demo_bh.as_posix(), bh.as_posix()))
    kept = Outputs.take(bh)
    res = invoke(["run", p])
    assert_clean_failure(res, names=["out", "inputs.boreholes"], outputs=kept)


@pytest.mark.parametrize("spelling", ["~/runs/x", "$HOME/runs/x", "${HOME}/runs/x"])
def test_home_in_output_dir_is_expanded(spelling, tmp_path, monkeypatch):
    from permafrost.config import load_pipeline

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline(_pipeline(tmp_path, spelling))
    assert cfg.pipeline.output_dir == home / "runs" / "x"
    res = invoke(["run", _pipeline(tmp_path, spelling), "--dry-run"])
    assert res.exit_code == 0, res.stderr
    assert not (tmp_path / "~").exists() and not (tmp_path / "$HOME").exists()


def test_undefined_variable_in_output_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PF_NO_SUCH_VAR", raising=False)
    p = _pipeline(tmp_path, "$PF_NO_SUCH_VAR/runs")
    res = invoke(["run", p])
    assert_clean_failure(res, names=["pipe.toml", "PF_NO_SUCH_VAR", "pipeline.output_dir"])
    assert not (tmp_path / "$PF_NO_SUCH_VAR").exists()


def test_pipeline_reruns_into_its_own_output_dir(tmp_path):
    """A demo-style run, rerun into its own output_dir (marked), and into a run folder
    from before the marker existed (recognised by its .cache)."""
    out = tmp_path / "out"
    p = _pipeline(tmp_path, out.as_posix())
    res = invoke(["run", p, "--only", "kinematics"])
    assert res.exit_code == 0, res.stderr
    assert (out / ".permafrost").is_file()
    kin = sorted((out / "steps" / "kinematics").iterdir())
    res = invoke(["run", p, "--only", "kinematics"])
    assert res.exit_code == 0, res.stderr
    assert "up to date" in res.stdout + res.stderr
    (out / ".permafrost").unlink()  # a run folder written before the marker
    res = invoke(["run", p, "--only", "kinematics"])
    assert res.exit_code == 0, res.stderr
    assert sorted((out / "steps" / "kinematics").iterdir()) == kin
    assert (out / ".permafrost").is_file()
