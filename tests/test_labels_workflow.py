"""The labels workflow: `permafrost labels` gives the pipeline's labels (InSAR evidence,
hold-out), and every candidate label is accounted for (issue 25 item 3, issue 27 item 2)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from factories import da_on_grid
from shapely.geometry import Point, box
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.errors import ParameterError
from permafrost.labels import (
    LabelSet,
    account_candidates,
    combine_activity,
    covariate_quantiles,
    insar_changes,
    inventories_with_evidence,
)
from permafrost.options import for_cli
from permafrost.pipeline import run_pipeline
from permafrost.workflows.labels import training_labels_from_files

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data_samples"
runner = CliRunner()


# ----------------------------------------------------------------------------- pure parts


def _outlines(ids, **cols) -> gpd.GeoDataFrame:
    g = gpd.GeoDataFrame({"rg_id": ids, **cols},
                         geometry=[box(i, 0, i + 0.5, 0.5) for i in range(len(ids))],
                         crs="EPSG:32647")
    g.attrs["source"] = "inv.gpkg"
    return g


def test_insar_evidence_upgrades_a_relict_inventory_outline_and_adds_the_unnamed_ones():
    inv = _outlines(["A", "B"], activity=["relict", "transitional"])
    kin = _outlines(["A", "B", "C"], kin_activity=["active", "relict", "relict"],
                    kin_reason=["fast", "still", "still"])
    combined = combine_activity(kin, inventory_column="activity")  # no inventory column there
    combined.attrs["source"] = "outlines.gpkg"
    out = inventories_with_evidence(combined, [inv], "activity")
    rest, own = out
    assert list(rest["rg_id"]) == ["C"]  # the outline no inventory names, InSAR-only
    assert list(rest["activity_evidence"]) == ["relict"]
    # A: relict upgraded to active by significant movement; B: intact never downgraded
    assert list(own["activity_evidence"]) == ["active", "transitional"]
    ch = insar_changes(out, "activity")
    assert ch["label_changes"] == {"0 -> 1": 1, "none -> 0": 1}
    assert ch["insar_change"] == {"decided": 1, "none": 1, "upgraded": 1}


def test_inventory_without_the_activity_column_names_the_flag():
    combined = _outlines(["A"], kin_activity=["active"], activity_evidence=["active"])
    with pytest.raises(ParameterError) as e:
        inventories_with_evidence(combined, [_outlines(["A"], state=["relict"])], "activity")
    assert "--activity-column" in str(for_cli(e.value, "labels"))


def _labelset(points, dropped):
    return LabelSet(points=points, summary=pd.DataFrame(columns=["item", "count", "note"]),
                    dropped=dropped, conflicts=pd.DataFrame())


def test_every_candidate_is_kept_held_out_or_dropped_with_its_weight():
    pts = gpd.GeoDataFrame(
        {"label": [1, 1, 0, 1], "source": ["rock_glacier", "rock_glacier", "borehole",
                                           "borehole"],
         "source_id": ["A", "B;C", "b1", "b3"], "weight": [1.0, 2.0, 2.0, 2.0]},
        geometry=[Point(0, 0), Point(1, 0), Point(2, 0), Point(3, 0)], crs="EPSG:32647")
    dropped = pd.DataFrame({"source": ["rock_glacier", "borehole", "borehole"],
                            "source_id": ["D", "b2", "b3"],
                            "reason": ["activity uncertain", "no presence value and no MAGT",
                                       "inside a held-out block"],
                            "stage": ["input", "input", "holdout"]})
    before = _labelset(pts, dropped.iloc[:2])
    after = _labelset(pts.iloc[:3], dropped)
    inv = _outlines(["A", "B", "C", "D"], activity=["active", "intact", "transitional",
                                                    "uncertain"])
    tab = gpd.GeoDataFrame({"borehole_id": ["b1", "b2", "b3"]},
                           geometry=[Point(2, 0), Point(5, 0), Point(3, 0)], crs="EPSG:32647")
    table, summary = account_candidates(before, after, inventories=[inv],
                                        borehole_tables=[tab], held_out=["b3"])
    got = {r.source_id: (r.status, r.weight) for r in table.itertuples()}
    # B and C merged into one point of weight 2: each keeps half
    assert got == {"A": ("kept", 1.0), "B": ("kept", 1.0), "C": ("kept", 1.0),
                   "D": ("dropped", 0.0), "b1": ("kept", 2.0), "b2": ("dropped", 0.0),
                   "b3": ("held out", 0.0)}
    assert summary["candidates"] == 7 and summary["kept"] == 4
    assert summary["held_out"] == 1 and summary["dropped"] == 2
    assert summary["by_kind"]["rock glacier (intact)"]["weight"] == 3.0
    assert summary["training_weight"] == sum(summary["training_weight_by_source"].values()) == 5
    reasons = {(d["kind"], d["stage"], d["reason"]) for d in summary["dropped_reasons"]}
    assert reasons == {("rock glacier (uncertain)", "input", "activity uncertain"),
                       ("borehole (table)", "input", "no presence value and no MAGT")}


def test_covariate_quantiles_of_a_ramp_against_labels_at_known_cells():
    from rasterio.transform import from_origin

    ny, nx = 50, 200
    tr = from_origin(0.0, 5000.0, 100.0, 100.0)
    ramp = np.tile(np.arange(nx, dtype="float32"), (ny, 1))  # value = column
    ds = da_on_grid(ramp, tr, crs="EPSG:32647").to_dataset(name="ramp")
    # labels at columns 10..19 (cell centres)
    xs = 100.0 * (np.arange(10, 20) + 0.5)
    pts = gpd.GeoDataFrame({"source": ["borehole"] * 10}, geometry=[Point(x, 2550.0) for x in xs],
                           crs="EPSG:32647")
    q = covariate_quantiles(ds, pts, n_cells=ny * nx, seed=1)  # the whole grid: exact
    c = q["covariates"]["ramp"]
    assert c["map"]["n"] == ny * nx
    assert c["map"]["q50"] == pytest.approx(np.quantile(np.arange(nx), 0.5))
    assert c["map"]["q05"] == pytest.approx(np.quantile(np.arange(nx), 0.05))
    assert c["labels"]["q50"] == pytest.approx(14.5)
    assert c["by_source"]["borehole"]["q95"] == pytest.approx(np.quantile(np.arange(10, 20), 0.95))
    # a bounded sample of the map stays close to the exact quantiles
    q2 = covariate_quantiles(ds, pts, n_cells=2000, seed=3)["covariates"]["ramp"]["map"]
    assert q2["n"] == 2000 and abs(q2["q50"] - 99.5) < 8


def test_a_holdout_needs_one_borehole_table(tmp_path):
    with pytest.raises(ParameterError) as e:
        training_labels_from_files(out=tmp_path / "l.gpkg",
                                   boreholes=[DATA / "boreholes" / "boreholes.csv"] * 2,
                                   holdout_fraction=0.25)
    msg = str(for_cli(e.value, "labels"))
    assert "--holdout-fraction" in msg and "--boreholes" in msg


# ----------------------------------------------------------------------------- the demo


def _demo(tmp: Path) -> Path:
    demo = ROOT / "pipelines" / "demo.toml"
    text = demo.read_text().replace('"../', f'"{ROOT}/')
    text = text.replace('"demo_covariates.toml"', f'"{demo.parent}/demo_covariates.toml"')
    text = re.sub(r'output_dir = ".*"', f'output_dir = "{tmp / "out"}"', text)
    p = tmp / "demo.toml"
    p.write_text(text)
    return p


@pytest.mark.slow
def test_the_labels_command_gives_the_pipelines_labels(tmp_path):
    """The demo pipeline's labels step (InSAR from two tracks, a quarter of the boreholes
    held out in blocks, seed 42) and `permafrost labels` with the same inputs and values
    give the same points, labels, weights and held-out boreholes, and the same accounting."""
    run_pipeline(_demo(tmp_path), only="labels")
    step = tmp_path / "out" / "baseline"
    cli = tmp_path / "cli"
    cli.mkdir()
    res = runner.invoke(app, [
        "labels", "--inventory", str(DATA / "inventory" / "rock_glaciers.gpkg"),
        "--boreholes", str(DATA / "boreholes" / "boreholes.csv"),
        "--gtnp", str(DATA / "boreholes" / "gtnp_long.csv"),
        "--gtnp-metadata", str(DATA / "boreholes" / "gtnp_metadata.json"),
        "--dem", str(DATA / "covariates" / "dem.tif"),
        "--track", str(DATA / "insar" / "asc"), "--track", str(DATA / "insar" / "desc"),
        "--holdout-fraction", "0.25", "--seed", "42",
        "--covariates", str(ROOT / "pipelines" / "demo_covariates.toml"),
        "--out", str(cli / "labels.gpkg")])
    assert res.exit_code == 0, res.output
    a = gpd.read_file(step / "labels.gpkg", layer="labels")
    b = gpd.read_file(cli / "labels.gpkg", layer="labels")
    assert len(a) == len(b) > 300
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                  pd.DataFrame(b.drop(columns="geometry")))
    assert a.geometry.geom_equals_exact(b.geometry, tolerance=0).all()
    # the same held-out boreholes, row for row as the input had them
    assert (step / "boreholes_holdout.csv").read_bytes() == \
        (cli / "labels_holdout.csv").read_bytes()
    assert (step / "labels_summary.csv").read_bytes() == (cli / "labels_summary.csv").read_bytes()
    pa = json.loads((step / "labels_accounting.json").read_text())
    pb = json.loads((cli / "labels_accounting.json").read_text())
    for key in ("by_kind", "dropped_reasons", "insar", "covariates", "candidates"):
        assert pa[key] == pb[key], key
    held = pa["holdout"]["boreholes"]
    assert held > 0 and pa["held_out"] == held
    # every candidate is counted once: rock glaciers, table rows, temperature records
    assert pa["candidates"] == pa["kept"] + pa["held_out"] + pa["dropped"]
    inv = gpd.read_file(DATA / "inventory" / "rock_glaciers.gpkg")
    n_table = len(pd.read_csv(DATA / "boreholes" / "boreholes.csv"))
    n_rec = len(pd.read_csv(step.parent / "steps" / "labels" / next(
        d.name for d in (step.parent / "steps" / "labels").iterdir()) / "labels_verdicts.csv"))
    assert pa["candidates"] == len(inv) + n_table + n_rec
    assert pa["training_points"] == len(a)


def test_the_report_bundles_the_accounting_beside_the_labels(tmp_path):
    from permafrost.io.vectors import write_vector
    from permafrost.workflows.report import report_from_files

    pts = gpd.GeoDataFrame({"label": [1, 0], "source": ["borehole", "rock_glacier"]},
                           geometry=[Point(0, 0), Point(1, 1)], crs="EPSG:32647")
    write_vector(pts, tmp_path / "labels.gpkg", layer="labels")
    acc = {"candidates": 3, "kept": 2, "held_out": 0, "dropped": 1}
    (tmp_path / "labels_accounting.json").write_text(json.dumps(acc))
    js = report_from_files(out_html=tmp_path / "r.html", out_json=tmp_path / "r.json",
                           labels=tmp_path / "labels.gpkg")
    assert js["labels_accounting"] == acc
    assert json.loads((tmp_path / "r.json").read_text())["labels_accounting"] == acc


@pytest.mark.slow
def test_labels_from_a_kinematics_file_on_separate_outlines_match_the_pipeline(tmp_path):
    """Outlines apart from a stale inventory (its active rock glaciers recorded relict): the
    pipeline's labels and `permafrost labels --kinematics K --outlines O` agree, and the
    accounting says what InSAR changed (relict outlines labelled permafrost)."""
    inv = gpd.read_file(DATA / "inventory" / "rock_glaciers.gpkg")
    outlines = tmp_path / "outlines.gpkg"
    inv.drop(columns=["activity"]).to_file(outlines)
    inv["activity"] = inv["activity"].replace({"active": "relict"})
    inventory = tmp_path / "inventory.gpkg"
    inv.to_file(inventory)
    p = _demo(tmp_path)
    text = p.read_text().replace(f'"{ROOT}/data_samples/inventory/rock_glaciers.gpkg"',
                                 f'"{inventory}"')
    p.write_text(text.replace("[inputs]\n", f'[inputs]\noutlines = "{outlines}"\n', 1))
    res = run_pipeline(p, only="labels")
    rec = res.scenarios["baseline"]
    kin = rec["kinematics"].output("kinematics")
    lab = rec["labels"]
    cli = tmp_path / "cli" / "labels.gpkg"
    cli.parent.mkdir()
    out = runner.invoke(app, [
        "labels", "--inventory", str(inventory), "--outlines", str(outlines),
        "--kinematics", str(kin),
        "--boreholes", str(DATA / "boreholes" / "boreholes.csv"),
        "--gtnp", str(DATA / "boreholes" / "gtnp_long.csv"),
        "--gtnp-metadata", str(DATA / "boreholes" / "gtnp_metadata.json"),
        "--dem", str(DATA / "covariates" / "dem.tif"),
        "--holdout-fraction", "0.25", "--seed", "42",
        "--covariates", str(ROOT / "pipelines" / "demo_covariates.toml"), "--out", str(cli)])
    assert out.exit_code == 0, out.output
    a = gpd.read_file(lab.output("labels"), layer="labels")
    b = gpd.read_file(cli, layer="labels")
    pd.testing.assert_frame_equal(pd.DataFrame(a.drop(columns="geometry")),
                                  pd.DataFrame(b.drop(columns="geometry")))
    assert lab.output("holdout").read_bytes() == cli.with_name("labels_holdout.csv").read_bytes()
    acc = json.loads(lab.output("accounting").read_text())
    assert acc == json.loads(cli.with_name("labels_accounting.json").read_text())
    # the stale relict outlines InSAR found moving are labelled permafrost, and counted
    assert acc["insar"]["label_changes"].get("0 -> 1", 0) >= 1
    # (an upgrade from transitional to active changes the class, not the label)
    assert acc["insar"]["insar_change"]["upgraded"] >= acc["insar"]["label_changes"]["0 -> 1"]
