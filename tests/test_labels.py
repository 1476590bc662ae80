"""Labels: inventories + boreholes -> weighted labelled points (permafrost.labels, `permafrost labels`).

Synthetic factories: a geographic DEM on the sample-region grid spacing (1/1800 deg) whose
elevation rises northward by a known gradient, and rectangular/curved outlines placed on it,
so the expected front cell, weights and cells are known independently.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (registers .rio)
import xarray as xr
from shapely.geometry import Point, Polygon
from typer.testing import CliRunner

from permafrost.cli import app
from permafrost.errors import DataError
from permafrost.labels import (build_labels, fuse_labels, rock_glacier_labels,
                               sample_rock_glaciers)

RES = 1 / 1800
X0, Y0 = 99.0, 38.5


def make_dem(n=120, gradient=2000.0):
    """Elevation = 3000 m + gradient * (lat - lower edge) [m per degree]: lowest at the south."""
    x = X0 + RES * (np.arange(n) + 0.5)
    y = Y0 - RES * (np.arange(n) + 0.5)
    elev = 3000.0 + gradient * (y[:, None] - (Y0 - n * RES)) + 0.0 * x[None, :]
    return xr.DataArray(elev.astype("float64"), dims=("y", "x"),
                        coords={"y": y, "x": x}).rio.write_crs(4326)


def box(x0, y0, dx, dy):
    return Polygon([(x0, y0), (x0 + dx, y0), (x0 + dx, y0 + dy), (x0, y0 + dy)])


def make_inventory(activities=("active", "relict", "uncertain"), **cols):
    geoms = [box(X0 + 0.005 + 0.012 * i, Y0 - 0.05, 0.006, 0.01) for i in range(len(activities))]
    data = {"rg_id": [f"rg{i}" for i in range(len(activities))], "activity": list(activities)}
    data.update(cols)
    g = gpd.GeoDataFrame(data, geometry=geoms, crs=4326)
    g.attrs["source"] = "inventory.gpkg"
    return g


def make_boreholes(rows):
    g = gpd.GeoDataFrame({"borehole_id": [r[0] for r in rows],
                          "presence": pd.array([r[3] for r in rows], dtype="Int8"),
                          "magt_c": [r[4] if len(r) > 4 else np.nan for r in rows],
                          "year": np.nan, "row": np.arange(len(rows))},
                         geometry=[Point(r[1], r[2]) for r in rows], crs=4326)
    g.attrs["source"] = "boreholes.csv"
    return g


# --------------------------------------------------------------------------- activity
def test_activity_mapping_is_case_insensitive():
    inv = make_inventory(["Active", " TRANSITIONAL", "relict", "Uncertain", "intact"])
    rg = rock_glacier_labels(inv)
    assert rg["label"].tolist()[:3] == [1, 1, 0]
    assert pd.isna(rg["label"].iloc[3]) and rg["label"].iloc[4] == 1


def test_unknown_activity_values_named_with_rows():
    inv = make_inventory(["active", "moving", "relict", "moving", "??"])
    with pytest.raises(DataError) as exc:
        rock_glacier_labels(inv)
    msg = str(exc.value)
    assert "'moving' in rows 1, 3" in msg and "'??' in rows 4" in msg
    assert "inventory.gpkg" in msg and "activity" in msg and "\n" not in msg


def test_activity_column_option_and_missing_column():
    inv = make_inventory(["active", "relict"])
    inv = inv.rename(columns={"activity": "Kin_Activity"})
    assert rock_glacier_labels(inv, activity_column="kin_activity")["label"].tolist() == [1, 0]
    with pytest.raises(DataError, match="no activity column 'activity'"):
        rock_glacier_labels(inv)


def test_duplicate_rock_glacier_ids():
    inv = make_inventory(["active", "relict"])
    inv["rg_id"] = ["a", "a"]
    with pytest.raises(DataError, match=r"duplicate rock glacier ids \['a'\] in rows 0, 1"):
        rock_glacier_labels(inv)


# --------------------------------------------------------------------------- sampling
def test_front_is_the_lowest_dem_cell_inside_the_outline():
    dem = make_dem()
    # a tilted outline, so the lowest cell is not simply the bbox corner
    poly = Polygon([(99.01, 38.46), (99.03, 38.45), (99.035, 38.47), (99.015, 38.48)])
    inv = gpd.GeoDataFrame({"rg_id": ["t"], "activity": ["active"]}, geometry=[poly], crs=4326)
    pts, dropped = sample_rock_glaciers(rock_glacier_labels(inv), strategy="front", dem=dem)
    # brute force: every cell centre inside the polygon, lowest elevation
    xx, yy = np.meshgrid(dem.x.values, dem.y.values)
    inside = np.array([poly.contains(Point(a, b)) for a, b in zip(xx.ravel(), yy.ravel())])
    zmin = dem.values.ravel()[inside].min()
    assert len(pts) == 1 and len(dropped) == 0
    assert pts["elevation_m"].iloc[0] == pytest.approx(zmin)
    assert poly.contains(pts.geometry.iloc[0])
    assert pts["weight"].iloc[0] == 1.0 and pts["group"].iloc[0] == "rg:t"


def test_empty_geometries_are_dropped_and_reported():
    inv = make_inventory(["active", "relict"])
    inv.loc[1, "geometry"] = None
    pts, dropped = sample_rock_glaciers(rock_glacier_labels(inv), strategy="centroid")
    assert pts["source_id"].tolist() == ["rg0"]
    assert dropped.values.tolist() == [["rock_glacier", "rg1", "empty geometry"]]


def test_front_needs_dem_and_reports_outlines_off_the_dem():
    inv = make_inventory(["active"])
    with pytest.raises(DataError, match="front sampling needs a DEM"):
        sample_rock_glaciers(rock_glacier_labels(inv), strategy="front")
    far = gpd.GeoDataFrame({"rg_id": ["far"], "activity": ["relict"]},
                           geometry=[box(120, 10, 0.01, 0.01)], crs=4326)
    pts, dropped = sample_rock_glaciers(rock_glacier_labels(far), strategy="front",
                                        dem=make_dem())
    assert len(pts) == 0 and dropped["reason"].str.contains("no DEM value").all()


def test_centroid_stays_inside_a_curved_outline():
    # a U shape: its centroid lies in the empty middle -> representative point instead
    u = Polygon([(99.01, 38.44), (99.04, 38.44), (99.04, 38.47), (99.035, 38.47),
                 (99.035, 38.445), (99.015, 38.445), (99.015, 38.47), (99.01, 38.47)])
    assert not u.contains(u.centroid)
    inv = gpd.GeoDataFrame({"rg_id": ["u"], "activity": ["active"]}, geometry=[u], crs=4326)
    pts, _ = sample_rock_glaciers(rock_glacier_labels(inv), strategy="centroid")
    assert u.contains(pts.geometry.iloc[0])


def test_interior_weights_sum_to_one_rock_glacier():
    inv = make_inventory(["active", "relict"])
    inv.loc[1, "geometry"] = box(X0 + 0.02, Y0 - 0.05, 0.002, 0.002)  # smaller outline
    pts, _ = sample_rock_glaciers(rock_glacier_labels(inv), strategy="interior", spacing_m=50.0,
                                  weight=3.0)
    per = pts.groupby("group")["weight"].sum()
    np.testing.assert_allclose(per.to_numpy(), 3.0)
    counts = pts.groupby("group").size()
    assert counts["rg:rg0"] > counts["rg:rg1"] >= 1  # big outline: more points, same total


# --------------------------------------------------------------------------- fusion
def test_borehole_outranks_rock_glacier_and_conflict_is_reported():
    dem = make_dem()
    inv = make_inventory(["relict"])
    rg = rock_glacier_labels(inv)
    pts, _ = sample_rock_glaciers(rg, strategy="front", dem=dem)
    fx, fy = pts.geometry.x.iloc[0], pts.geometry.y.iloc[0]
    bh = make_boreholes([("B1", fx + RES / 10, fy + RES / 10, 1)])  # same cell, presence 1
    res = build_labels(inventories=[inv], borehole_tables=[bh], dem=dem)
    assert len(res.points) == 1
    p = res.points.iloc[0]
    assert p["source"] == "borehole" and p["label"] == 1 and bool(p["conflict"])
    c = res.conflicts.iloc[0]
    assert (c["kept_id"], c["other_id"], c["other_label"]) == ("B1", "rg0", 0)
    assert "grid cell held by borehole" in res.dropped["reason"].tolist()


def test_same_cell_agreeing_points_merge_and_tie_is_dropped():
    dem = make_dem()
    cx, cy = float(dem.x[10]), float(dem.y[10])
    pts = gpd.GeoDataFrame({
        "label": np.array([1, 1, 1, 0], dtype=np.int8),
        "source": "rock_glacier", "source_id": ["a", "a", "b", "c"],
        "group": ["rg:a", "rg:a", "rg:b", "rg:c"], "weight": [0.5, 0.5, 1.0, 1.0]},
        geometry=[Point(cx, cy), Point(cx + RES / 4, cy), Point(float(dem.x[30]), cy),
                  Point(float(dem.x[30]) + RES / 4, cy)], crs=4326)
    fused, dropped, conflicts = fuse_labels(pts, dem)
    assert len(fused) == 1  # cell (10,10) merged; cell (10,30) tied 1 vs 1 -> dropped
    assert fused["weight"].iloc[0] == 1.0 and fused["n_merged"].iloc[0] == 2
    assert set(dropped["source_id"]) == {"b", "c"}
    assert conflicts["resolution"].iloc[0].startswith("tie")


def test_same_source_disagreement_goes_to_the_weighted_majority():
    dem = make_dem()
    cx, cy = float(dem.x[40]), float(dem.y[40])
    pts = gpd.GeoDataFrame({
        "label": np.array([1, 0], dtype=np.int8), "source": "borehole",
        "source_id": ["heavy", "light"], "group": ["bh:heavy", "bh:light"],
        "weight": [2.0, 0.5]}, geometry=[Point(cx, cy), Point(cx + RES / 4, cy)], crs=4326)
    fused, dropped, conflicts = fuse_labels(pts, dem)
    assert fused["source_id"].tolist() == ["heavy"] and fused["label"].tolist() == [1]
    assert bool(fused["conflict"].iloc[0])
    assert dropped["source_id"].tolist() == ["light"]
    assert conflicts["resolution"].tolist() == ["weighted majority"]


def test_lazy_dem_gives_the_same_front_points():
    inv = make_inventory(["active", "relict"])
    dem = make_dem()
    eager, _ = sample_rock_glaciers(rock_glacier_labels(inv), strategy="front", dem=dem)
    lazy, _ = sample_rock_glaciers(rock_glacier_labels(inv), strategy="front",
                                   dem=dem.chunk({"y": 16, "x": 16}))
    pd.testing.assert_frame_equal(pd.DataFrame(eager), pd.DataFrame(lazy))


def test_points_outside_grid_error_or_counted():
    dem = make_dem()
    bh = make_boreholes([("IN", 99.01, 38.47, 1), ("OUT", 99.5, 38.47, 0)])
    with pytest.raises(DataError, match=r"1 points fall outside the reference grid.*OUT"):
        build_labels(borehole_tables=[bh], grid=dem)
    res = build_labels(borehole_tables=[bh], grid=dem, outside="drop")
    assert res.points["source_id"].tolist() == ["IN"]
    assert res.dropped.set_index("source_id").loc["OUT", "reason"] == "outside the reference grid"
    row = res.summary[res.summary["note"] == "outside the reference grid"]
    assert row["count"].item() == 1


def test_swapped_lonlat_relative_to_region():
    dem = make_dem()
    bh = make_boreholes([("S", 38.47, 99.01, 1)])  # lat beyond 90 -> caught first
    with pytest.raises(DataError, match="latitude outside ±90"):
        build_labels(borehole_tables=[bh], grid=dem)
    # a region where both orders are valid latitudes: grid at 38.5 E / 45.x N
    g2 = dem.assign_coords(x=dem.x - 99.0 + 38.45, y=dem.y - 38.5 + 45.0).rio.write_crs(4326)
    bh2 = make_boreholes([("T", 44.98, 38.47, 1)])
    with pytest.raises(DataError, match="swapped"):
        build_labels(borehole_tables=[bh2], grid=g2)


def test_swapped_rock_glacier_outlines_and_duplicate_ids_across_inputs():
    dem = make_dem()
    g2 = dem.assign_coords(x=dem.x - 99.0 + 38.45, y=dem.y - 38.5 + 45.0).rio.write_crs(4326)
    swapped = gpd.GeoDataFrame({"rg_id": ["s"], "activity": ["active"]},
                               geometry=[box(44.96, 38.47, 0.005, 0.005)], crs=4326)
    with pytest.raises(DataError, match="rock glaciers: 1 points.*swapped"):
        build_labels(inventories=[swapped], dem=g2)
    inv = make_inventory(["active"])
    with pytest.raises(DataError, match=r"rock glacier ids \['rg0'\] also appear in inventory.gpkg"):
        build_labels(inventories=[inv, inv], dem=dem)
    a = make_boreholes([("B1", 99.01, 38.47, 1)])
    b = make_boreholes([("B1", 99.02, 38.47, 0)])
    with pytest.raises(DataError, match=r"borehole ids given more than once.*B1"):
        build_labels(borehole_tables=[a, b], grid=dem)


def test_empty_result_is_an_error():
    inv = make_inventory(["uncertain", "Uncertain"])
    with pytest.raises(DataError, match=r"no labelled point left.*activity uncertain"):
        build_labels(inventories=[inv], dem=make_dem())


def test_presence_from_magt_and_rows_without_evidence_reported():
    dem = make_dem()
    bh = make_boreholes([("M", 99.01, 38.47, pd.NA, -0.3), ("W", 99.02, 38.47, pd.NA, 0.8),
                         ("N", 99.03, 38.47, pd.NA, np.nan)])
    res = build_labels(borehole_tables=[bh], grid=dem)
    got = res.points.set_index("source_id")
    assert got.loc["M", "label"] == 1 and got.loc["W", "label"] == 0
    assert (got["evidence"] == "magt").all()
    assert res.dropped.set_index("source_id").loc["N", "reason"] == "no presence value and no MAGT"


def test_summary_counts_and_determinism():
    dem = make_dem()
    inv = make_inventory(["active", "transitional", "relict", "uncertain"])
    bh = make_boreholes([("B1", 99.055, 38.47, 1), ("B2", 99.06, 38.46, 0)])
    a = build_labels(inventories=[inv], borehole_tables=[bh], dem=dem, sampling="interior",
                     spacing_m=60.0)
    b = build_labels(inventories=[inv], borehole_tables=[bh], dem=dem, sampling="interior",
                     spacing_m=60.0)
    pd.testing.assert_frame_equal(pd.DataFrame(a.points), pd.DataFrame(b.points))
    s = a.summary.set_index("item")["count"]
    assert s["rock glaciers: intact"] == 2 and s["rock glaciers: relict"] == 1
    assert s["rock glaciers: uncertain"] == 1
    assert s["boreholes: permafrost"] == 1 and s["boreholes: no permafrost"] == 1
    # accounting: sampled = kept + merged + dropped after sampling
    post = a.dropped[a.dropped["stage"] == "fusion"]
    assert s["points sampled"] == s["points kept"] + s["merged"] + len(post)
    # borehole weight is heavier by default; each rock glacier sums to 1
    assert a.points.loc[a.points["source"] == "borehole", "weight"].eq(2.0).all()
    np.testing.assert_allclose(
        a.points[a.points["source"] == "rock_glacier"].groupby("group")["weight"].sum(), 1.0)
    assert set(a.points.columns) >= {"label", "source", "source_id", "group", "weight",
                                     "activity", "magt_c", "geometry"}


def test_temperature_records_enter_as_boreholes():
    from permafrost.io.boreholes import BoreholeRecord
    from tests.test_boreholes import synthetic_record
    recs = [BoreholeRecord("cold", synthetic_record(tm=-1.0), lon=99.01, lat=38.47),
            BoreholeRecord("warm", synthetic_record(tm=1.0), lon=99.02, lat=38.47),
            BoreholeRecord("short", synthetic_record(years=1), lon=99.03, lat=38.47)]
    res = build_labels(temperature_records=recs, grid=make_dem())
    got = res.points.set_index("source_id")["label"].to_dict()
    assert got == {"cold": 1, "warm": 0}
    assert res.dropped.set_index("source_id").loc["short", "reason"].startswith("insufficient")
    assert len(res.verdicts) == 3
    with pytest.raises(DataError, match="no coordinates"):
        build_labels(temperature_records=[BoreholeRecord("x", synthetic_record())])


# --------------------------------------------------------------------------- CLI
def _write_inputs(tmp_path):
    dem = make_dem()
    dem.rio.to_raster(tmp_path / "dem.tif")
    make_inventory(["active", "relict", "uncertain"]).to_file(tmp_path / "inv.gpkg")
    (tmp_path / "bh.csv").write_text("borehole_id,lon,lat,presence\nB1,99.055,38.47,yes\n"
                                     "B2,99.06,38.46,non-permafrost\n")
    return tmp_path


def test_cli_labels_writes_points_and_prints_summary(tmp_path):
    d = _write_inputs(tmp_path)
    out = d / "out" / "labels.gpkg"
    r = CliRunner().invoke(app, ["labels", "--inventory", str(d / "inv.gpkg"), "--boreholes",
                                 str(d / "bh.csv"), "--dem", str(d / "dem.tif"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "rock glaciers: intact" in r.output and "points kept" in r.output
    got = gpd.read_file(out)
    assert sorted(got["source"].unique()) == ["borehole", "rock_glacier"] and len(got) == 4
    assert (d / "out" / "labels_summary.csv").exists()


def test_cli_bad_input_is_one_line(tmp_path):
    d = _write_inputs(tmp_path)
    (d / "bad.csv").write_text("borehole_id,lon,lat,presence\nB1,99.055,38.47,perhaps\n")
    r = CliRunner().invoke(app, ["labels", "--boreholes", str(d / "bad.csv"), "--dem",
                                 str(d / "dem.tif"), "--out", str(d / "x.gpkg")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "'perhaps' in rows 0" in lines[0]
    assert not (d / "x.gpkg").exists()


# --------------------------------------------------------------------------- real data via CLI
@pytest.mark.realdata
def test_cli_permos_needs_coordinates(realdata, tmp_path):
    f = realdata / "permos_schilthorn_boreholes" / "SCH_5198.csv"
    r = CliRunner().invoke(app, ["labels", "--permos", str(f), "--out", str(tmp_path / "l.gpkg")])
    assert r.exit_code == 2 and "--permos-coords" in r.output


# --------------------------------------------------------------------------- sample region
@pytest.fixture(scope="module")
def sample_labels(sample_dir):
    from permafrost.workflows.labels import labels_from_files
    s = sample_dir
    return labels_from_files(
        inventories=[s / "inventory" / "rock_glaciers.gpkg"],
        boreholes=[s / "boreholes" / "boreholes.csv"],
        gtnp=[(s / "boreholes" / "gtnp_long.csv", s / "boreholes" / "gtnp_metadata.json")],
        dem=s / "covariates" / "dem.tif")


def _truth_p(sample_dir, pts):
    from permafrost.io.rasters import read_raster
    truth = read_raster(sample_dir / "truth" / "pzi_truth.tif")
    return np.asarray(truth.values, float)[pts["cell_row"].to_numpy(), pts["cell_col"].to_numpy()]


@pytest.mark.parametrize("source", ["rock_glacier", "borehole"])
def test_sample_labels_agree_with_truth_within_binomial_tolerance(sample_dir, sample_labels,
                                                                  source):
    """Labels are Bernoulli draws of the truth p at their cell (generate.py, ttop truth: a
    rock glacier is intact ~ Bernoulli(PZI at its front), the front lying on coarse debris;
    a borehole has permafrost where its own TTOP_local = TTOP + sigma e < 0, which is
    Bernoulli(Phi(-TTOP / sigma)) = Bernoulli(PZI at its cell)).  So the number of
    label-1 points must lie within 3 binomial sd of sum(p) -- and a calibration check: points
    where p >= 0.5 carry label 1 far more often than points where p < 0.5."""
    pts = sample_labels.points
    pts = pts[pts["source"] == source]
    p = _truth_p(sample_dir, pts)
    lab = pts["label"].to_numpy()
    assert np.isfinite(p).all() and len(pts) >= 100
    sd = np.sqrt(np.sum(p * (1 - p)))
    assert abs(lab.sum() - p.sum()) <= 3 * sd, (lab.sum(), p.sum(), sd)
    hi, lo = p >= 0.5, p < 0.5
    if hi.sum() >= 10 and lo.sum() >= 10:
        assert lab[hi].mean() - lab[lo].mean() > 0.3
        # within each half the observed rate matches the mean p within 3 sd
        for m in (hi, lo):
            sdm = np.sqrt(np.sum(p[m] * (1 - p[m])))
            assert abs(lab[m].sum() - p[m].sum()) <= 3 * sdm + 1


def test_sample_front_points_are_the_generator_fronts(sample_dir, sample_labels):
    # the generator's front is the lowest DEM pixel inside the outline: front sampling must
    # pick exactly that cell (independent reimplementation in data_samples/generate.py)
    rgt = pd.read_csv(sample_dir / "truth" / "rock_glaciers_truth.csv").set_index("rg_id")
    pts = sample_labels.points
    rg = pts[pts["source"] == "rock_glacier"]
    ids = rg["source_id"].str.split(";").str[0]
    t = rgt.loc[ids]
    assert (rg["cell_row"].to_numpy() == t["front_row"].to_numpy()).all()
    assert (rg["cell_col"].to_numpy() == t["front_col"].to_numpy()).all()
    assert (rg["label"].to_numpy() == t["intact_true"].to_numpy()).all()


def test_sample_summary_accounts_for_every_input(sample_dir, sample_labels):
    s = sample_labels.summary.set_index("item")["count"]
    truth = json.loads((sample_dir / "truth" / "truth.json").read_text())
    rg = truth["rock_glaciers"]
    assert s["rock glaciers: intact"] == rg["n_intact"]
    assert s["rock glaciers: relict"] == rg["n_relict"]
    table = pd.read_csv(sample_dir / "boreholes" / "boreholes.csv")
    n_temp = len(sample_labels.verdicts)
    assert (s["boreholes: permafrost"] + s["boreholes: no permafrost"]
            + s["boreholes: insufficient record"]) == len(table) + n_temp
    post = sample_labels.dropped[sample_labels.dropped["stage"] == "fusion"]
    assert s["points sampled"] == s["points kept"] + s["merged"] + len(post)


def test_sample_gtnp_verdicts_match_the_generated_kinds(sample_dir, sample_labels):
    """GTN-P sample records: conduction solutions with known MAGT at 15 m, a 0.025 °C/m
    geothermal gradient and known ALT (truth.json).  MAGT is read at the zero-amplitude depth
    (10 m here), so expected = MAGT_15 + 0.025 (z - 15).  Linear interpolation of the convex
    Tmax profile between sparse sensors can only deepen the ALT, and not past the next sensor."""
    truth = json.loads((sample_dir / "truth" / "truth.json").read_text())["gtnp"]
    v = sample_labels.verdicts.set_index("borehole_id")
    sensors = np.array(truth["depths_m"])
    grad = truth["geothermal_gradient_c_per_m"]
    for b in truth["boreholes"]:
        got = v.loc[b["name"]]
        if b["kind"] == "too_short":
            assert got["status"] == "insufficient" and got["reason_code"] == "too_short"
            continue
        # the gappy record still holds 850 frozen days (2012-01..2014-04) at depth
        assert got["status"] == ("permafrost" if b["presence"] else "no_permafrost"), got["reason"]
        expect = b["magt_c_at_15m"] + grad * (got["magt_depth_m"] - 15.0)
        assert got["magt_c"] == pytest.approx(expect, abs=0.05)
        if b["alt_m"] is not None:
            below = sensors[sensors > b["alt_m"]].min()
            assert b["alt_m"] - 0.05 <= got["alt_m"] <= below


@pytest.mark.realdata
def test_cli_schilthorn_with_coordinates(realdata, tmp_path):
    # SCH_5198 is warm permafrost (see test_boreholes): one label-1 borehole point; the
    # position comes from the coordinates table (approximate Schilthorn summit area)
    coords = tmp_path / "coords.csv"
    coords.write_text("borehole_id,lon,lat,elevation_m\nSCH_5198,7.8347,46.5578,2909\n")
    out = tmp_path / "l.gpkg"
    r = CliRunner().invoke(app, ["labels", "--permos",
                                 str(realdata / "permos_schilthorn_boreholes" / "SCH_5198.csv"),
                                 "--permos-coords", str(coords), "--out", str(out)])
    assert r.exit_code == 0, r.output
    got = gpd.read_file(out)
    assert got["label"].tolist() == [1] and got["source_id"].tolist() == ["SCH_5198"]
    assert got.geometry.x.iloc[0] == pytest.approx(7.8347)
    v = pd.read_csv(tmp_path / "l_verdicts.csv")
    assert v["status"].tolist() == ["permafrost"] and -0.6 < v["magt_c"].iloc[0] < -0.1


def test_combine_activity_insar_is_evidence_not_verdict():
    from permafrost.labels import combine_activity

    inv = ["relict", "Active", "transitional", "relict", None, "uncertain", "transitional",
           "relict", None, "intact"]
    kin = ["active", "relict", "uncertain", "uncertain", "relict", "intact", "active",
           "transitional", "uncertain", "transitional"]
    gdf = gpd.GeoDataFrame(
        {"Activity": inv, "kin_activity": kin, "kin_reason": [f"why {i}" for i in range(10)]},
        geometry=[Point(i, 0).buffer(0.1) for i in range(10)], crs="EPSG:32647")
    out = combine_activity(gdf, inventory_column="activity")
    assert list(out["activity_evidence"]) == [
        "active",        # relict + significant movement: upgraded
        "active",        # intact never downgraded by InSAR
        "transitional",  # InSAR undecided: the inventory's
        "relict",        # relict kept
        "relict",        # no class: InSAR decides (movement excluded)
        "intact",        # 'uncertain' inventory: InSAR decides
        "active",        # transitional + significant > 10 cm/yr: upgraded
        "transitional",  # relict + significant movement: upgraded
        "uncertain",     # nobody knows
        "intact",        # intact + transitional evidence: kept
    ]
    assert list(out["insar_change"]) == ["upgraded", "none", "none", "none", "decided",
                                         "decided", "upgraded", "upgraded", "none", "none"]
    assert list(out["activity_source"]) == ["insar", "inventory", "inventory", "inventory",
                                            "insar", "insar", "insar", "insar", "none",
                                            "inventory"]
    assert "does not downgrade" in out["insar_reason"].iloc[1]
    assert out["insar_reason"].iloc[0].startswith("inventory relict upgraded to active: why 0")
    only_insar = combine_activity(gdf, inventory_column=None)
    assert list(only_insar["activity_evidence"]) == [
        "active", "relict", "uncertain", "uncertain", "relict", "intact", "active",
        "transitional", "uncertain", "transitional"]
    with pytest.raises(DataError, match="kin_activity"):
        combine_activity(gdf.drop(columns="kin_activity"))


def _holdout_region(seed=0):
    """Label points of every source (rock glaciers with several points each, table and
    temperature boreholes in sites) and the presence table the boreholes came from."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(120):  # rock glaciers, 3 points each within ~300 m, one group each
        lon, lat = rng.uniform([98.8, 38.3], [99.3, 38.7])
        lab = int(rng.random() < 0.5)
        for _ in range(3):
            rows.append(dict(lon=lon + rng.normal(0, 0.002), lat=lat + rng.normal(0, 0.002),
                             label=lab, source="rock_glacier", source_id=f"rg{i}",
                             group=f"rg:rg{i}", evidence="activity"))
    table = []
    for s in range(24):  # borehole sites: 5 boreholes within ~100 m, same presence
        lon, lat = rng.uniform([98.8, 38.3], [99.3, 38.7])
        pres = int(rng.random() < 0.75)
        for k in range(5):
            bid = f"S{s:02d}-{k}"
            blon, blat = lon + rng.normal(0, 0.0008), lat + rng.normal(0, 0.0008)
            table.append(dict(borehole_id=bid, lon=blon, lat=blat, presence=pres))
            rows.append(dict(lon=blon, lat=blat, label=pres, source="borehole",
                             source_id=bid, group=f"bh:{bid}", evidence="presence"))
    for t in range(6):  # GTN-P style temperature boreholes
        lon, lat = rng.uniform([98.8, 38.3], [99.3, 38.7])
        rows.append(dict(lon=lon, lat=lat, label=1, source="borehole", source_id=f"T{t}",
                         group=f"bh:T{t}", evidence="temperature (ok)"))
    df = pd.DataFrame(rows)
    pts = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326)
    tab = pd.DataFrame(table)
    tab = gpd.GeoDataFrame(tab, geometry=gpd.points_from_xy(tab.lon, tab.lat), crs=4326)
    return pts, tab


def test_holdout_split_drops_every_source_inside_held_out_blocks():
    from permafrost.labels import LabelSet, apply_holdout, holdout_split

    pts, tab = _holdout_region()
    split = holdout_split(pts, candidates=tab, fraction=0.25, seed=3, block_m=7000)
    assert len(split.blocks) >= 1 and (split.blocks["block_m"] == 7000).all()
    # no training label of any source lies inside a held-out block (checked geometrically)
    blocks = split.blocks.union_all()
    train_xy = pts[split.train].to_crs(split.blocks.crs).geometry
    assert not train_xy.covered_by(blocks).any()
    held_xy = tab[split.holdout].to_crs(split.blocks.crs).geometry
    assert held_xy.covered_by(blocks).all()
    inside = pts.to_crs(split.blocks.crs).geometry.covered_by(blocks).to_numpy()
    assert (inside == split.inside).all()
    # rock glaciers and temperature boreholes are dropped too, not only table boreholes
    assert set(pts.loc[split.inside, "source"]) == {"rock_glacier", "borehole"}
    # a rock glacier reaching into a held-out block leaves training whole
    gone = set(pts.loc[split.inside, "group"])
    assert not pts.loc[split.train, "group"].isin(gone).any()
    # no training label within 500 m of a held-out borehole (a site cut by a block edge)
    near = train_xy.apply(lambda g: held_xy.distance(g).min())
    assert (near >= 500.0).all()
    # the held-out boreholes: at least the fraction, both classes
    assert split.holdout.sum() >= 0.25 * len(tab)
    assert set(tab.loc[split.holdout, "presence"]) == {0, 1} and split.note == ""
    again = holdout_split(pts, candidates=tab, fraction=0.25, seed=3, block_m=7000)
    assert (again.train == split.train).all() and (again.holdout == split.holdout).all()
    # the training set and the counts by source in the summary
    ls = LabelSet(points=pts, summary=pd.DataFrame(columns=["item", "count", "note"]),
                  dropped=pd.DataFrame(columns=["source", "source_id", "reason", "stage"]),
                  conflicts=pd.DataFrame())
    tr = apply_holdout(ls, split)
    assert len(tr.points) == int(split.train.sum())
    counts = dict(zip(tr.summary["item"], tr.summary["count"]))
    left = pts[~split.train]
    temp = left["evidence"].str.startswith("temperature")
    assert counts["held out: rock_glacier"] == int((left["source"] == "rock_glacier").sum()) > 0
    assert counts["held out: borehole (table)"] == int(((left["source"] == "borehole")
                                                        & ~temp).sum()) > 0
    assert counts["held out: borehole (temperature record)"] == int(temp.sum())
    assert (tr.dropped["stage"] == "holdout").sum() == len(left)


def test_holdout_split_says_when_one_class_is_held_out_and_refuses_bad_input():
    from permafrost.labels import holdout_split

    pts, tab = _holdout_region()
    tab = tab.assign(presence=1)
    split = holdout_split(pts, candidates=tab, fraction=0.25, seed=0, block_m=7000)
    assert "one class only" in split.note
    with pytest.raises(DataError, match="fraction"):
        holdout_split(pts, candidates=tab, fraction=1.5, block_m=7000)
    with pytest.raises(DataError, match="takes all"):  # one huge block holds everything
        holdout_split(pts, candidates=tab, fraction=0.99, block_m=30000)
    with pytest.raises(DataError, match="one block"):
        holdout_split(pts, candidates=tab, fraction=0.25, block_m=500_000)


def test_holdout_blocks_are_at_least_the_cv_blocks():
    from permafrost.cv import default_block_size, metric_xy
    from permafrost.labels import holdout_block_size

    pts, _ = _holdout_region()
    mx, my = metric_xy(pts.geometry.x, pts.geometry.y, pts.crs)
    cv_m, rule = default_block_size(mx, my, pts["label"].to_numpy(), seed=5)
    hold_m, cv2, rule2 = holdout_block_size(pts, seed=5)
    assert hold_m == cv2 == cv_m and rule2 == rule   # default: follows the CV block size
    assert holdout_block_size(pts, cv_block_m=3000.0)[:2] == (3000.0, 3000.0)
    assert holdout_block_size(pts, cv_block_m=3000.0, holdout_block_m=5000.0)[0] == 5000.0
    with pytest.raises(DataError, match="smaller than the spatial-CV blocks"):
        holdout_block_size(pts, cv_block_m=3000.0, holdout_block_m=2000.0)
