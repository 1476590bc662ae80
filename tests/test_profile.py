"""The PZI–elevation profile by aspect class and the lower limit of permafrost
(permafrost/area/profile.py), on analytic cases whose limits are known exactly."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from factories import da_on_grid
from permafrost.area.profile import (
    aspect_class,
    elevation_profile,
    falls_above,
    lower_limit,
)

CRS = "EPSG:32647"  # UTM 47N: metres, near the Qilian Shan
CELL = 30.0
N = 401
Z_TOP, GRADE = 5000.0, 0.2      # cone: z = Z_TOP - GRADE r, slope atan(0.2) = 11.3°
Z50 = {"north": 3800.0, "south": 4200.0, "east_west": 4000.0}
SCALE = 60.0                    # logistic scale [m]


def _cone():
    tr = Affine(CELL, 0, 500_000.0, 0, -CELL, 4_200_000.0)
    j, i = np.meshgrid(np.arange(N), np.arange(N))
    dx, dy = (j - N // 2) * CELL, -(i - N // 2) * CELL   # east, north of the summit [m]
    r = np.hypot(dx, dy)
    z = Z_TOP - GRADE * r
    downslope = np.degrees(np.arctan2(dx, dy)) % 360.0    # away from the summit
    return tr, z, downslope


def _pzi_by_sector(z, downslope):
    z50 = np.full(z.shape, Z50["east_west"])
    z50[(downslope >= 315) | (downslope < 45)] = Z50["north"]
    z50[(downslope >= 135) & (downslope < 225)] = Z50["south"]
    return 1.0 / (1.0 + np.exp(-(z - z50) / SCALE))


@pytest.mark.parametrize("band", [100.0, 200.0])
def test_lower_limit_by_aspect_on_a_cone(band):
    tr, z, downslope = _cone()
    pzi = _pzi_by_sector(z, downslope)
    prof = elevation_profile(da_on_grid(pzi, tr, CRS), da_on_grid(z, tr, CRS),
                             band_width=band, block_rows=37)  # many blocks: halos exercised
    for cls, z50 in Z50.items():
        lim = prof.lower_limits[cls]
        assert lim["status"] == "crossed", (cls, lim)
        # the logistic is symmetric about z50: the band means cross 0.5 there up to the
        # interpolation between centres and the sector edges' pixels
        assert abs(lim["elevation_m"] - z50) < 0.25 * band, (cls, lim, band)
    assert prof.lower_limits["north"]["elevation_m"] < prof.lower_limits["south"]["elevation_m"]
    # the cone has no flat cell except at the summit: classes by area
    b = next(r for r in prof.bands if r["band_min_m"] == 4000.0)
    share = {c: b[f"{c}_km2"] / b["all_km2"] for c in ("north", "south", "east_west")}
    assert share["north"] == pytest.approx(0.25, abs=0.02)
    assert share["south"] == pytest.approx(0.25, abs=0.02)
    assert share["east_west"] == pytest.approx(0.5, abs=0.02)
    assert prof.falls_above_labels["all"] == [] and prof.warnings == []


def test_profile_is_independent_of_the_block_size():
    tr, z, downslope = _cone()
    pzi = _pzi_by_sector(z, downslope)
    a = elevation_profile(da_on_grid(pzi, tr, CRS), da_on_grid(z, tr, CRS), block_rows=11)
    b = elevation_profile(da_on_grid(pzi, tr, CRS), da_on_grid(z, tr, CRS), block_rows=N)
    assert [r["north_cells"] for r in a.bands] == [r["north_cells"] for r in b.bands]
    for ra, rb in zip(a.bands, b.bands, strict=True):
        for c in ("all", "north", "south"):
            if ra[f"{c}_mean_pzi"] is not None:
                assert ra[f"{c}_mean_pzi"] == pytest.approx(rb[f"{c}_mean_pzi"], abs=1e-9)


def test_flat_cells_are_a_class_of_their_own():
    tr = Affine(CELL, 0, 500_000.0, 0, -CELL, 4_200_000.0)
    z = np.full((50, 60), 4100.0)
    prof = elevation_profile(da_on_grid(np.full(z.shape, 0.7), tr, CRS), da_on_grid(z, tr, CRS))
    (row,) = prof.bands
    assert row["flat_cells"] == row["all_cells"] == z.size and row["north_cells"] == 0
    assert row["north_mean_pzi"] is None


def test_lower_limit_rules():
    c = np.array([100.0, 300.0, 500.0, 700.0])
    assert lower_limit(c, [0.1, 0.3, 0.7, 0.9])["elevation_m"] == pytest.approx(400.0)
    # crosses up, down, up again: the lowest elevation above which it stays >= 0.5
    lim = lower_limit(c, [0.2, 0.6, 0.4, 0.8])
    assert lim["status"] == "crossed_more_than_once" and lim["crossings"] == 3
    assert lim["elevation_m"] == pytest.approx(500.0 + 200.0 * 0.1 / 0.4)
    assert lower_limit(c, [0.1, 0.2, 0.3, 0.4])["elevation_m"] is None
    assert lower_limit(c, [0.6, 0.7, 0.8, 0.9])["status"] == "above_everywhere"
    assert lower_limit(c, [0.2, 0.6, 0.7, 0.4])["status"] == "below_at_the_top"
    # a band without cells (NaN) is skipped
    assert lower_limit(c, [0.1, np.nan, 0.7, 0.9])["elevation_m"] == pytest.approx(
        100.0 + 400.0 * 0.4 / 0.6)


def test_aspect_class_sectors():
    a = np.array([0.0, 44.9, 45.0, 134.9, 135.0, 224.9, 225.0, 315.0, 359.9, 180.0])
    s = np.array([10.0] * 9 + [1.0])
    assert aspect_class(a, s).tolist() == [1, 1, 3, 3, 2, 2, 3, 1, 1, 4]


def test_falling_pzi_above_the_highest_label_is_flagged():
    """A synthetic PZI that rises with elevation up to 4400 m and falls above it, as a tree
    ensemble's does beyond its highest label: flagged above the label, not below it."""
    tr, z, downslope = _cone()
    pzi = np.clip((z - 3300.0) / 1100.0, 0, 1) - np.clip((z - 4400.0) / 600.0 * 0.15, 0, None)
    pzi = np.clip(pzi, 0, 1)
    prof = elevation_profile(da_on_grid(pzi, tr, CRS), da_on_grid(z, tr, CRS),
                             highest_label_m=4300.0)
    falls = prof.falls_above_labels["all"]
    assert falls and all(f["to_m"] > 4300.0 and f["fall"] > 0.02 for f in falls)
    assert any("falls with elevation above the highest label (4300 m)" in w
               for w in prof.warnings)
    d = prof.as_dict()
    assert d["warnings"] == prof.warnings and d["meta"]["highest_label_m"] == 4300.0
    # the same map with the highest label at the summit: nothing lies above it
    top = elevation_profile(da_on_grid(pzi, tr, CRS), da_on_grid(z, tr, CRS),
                            highest_label_m=Z_TOP)
    assert top.warnings == []
    # a rising profile is never flagged, whatever the label
    assert falls_above([100, 300, 500], [0.2, 0.5, 0.51], 0.0) == []
    assert falls_above([100, 300, 500], [0.9, 0.88, 0.80], 200.0) == [
        {"from_m": 300.0, "to_m": 500.0, "from_pzi": 0.88, "to_pzi": 0.80,
         "fall": pytest.approx(0.08)}]


def test_profile_from_files_finds_the_highest_label_and_the_report_shows_it(tmp_path):
    """The workflow: the highest label is the DEM at the labels; profile.json's warning goes
    into the report (its own section and the top of the page)."""
    import geopandas as gpd
    import shapely

    from factories import write_tif
    from permafrost.report import render_report
    from permafrost.workflows.stats import profile_from_files

    tr, z, downslope = _cone()
    pzi = np.clip((z - 3300.0) / 1100.0, 0, 1) - np.clip((z - 4400.0) / 600.0 * 0.15, 0, None)
    write_tif(tmp_path / "pzi.tif", np.clip(pzi, 0, 1).astype("float32"), tr, crs=CRS)
    write_tif(tmp_path / "dem.tif", z.astype("float32"), tr, crs=CRS)
    # two labels: at the summit's foot and at row 150, col 200 (r = 50 cells, z = 4700 m)
    pts = [shapely.Point(tr * (10.5, 10.5)), shapely.Point(tr * (200.5, 150.5))]
    gpd.GeoDataFrame({"label": [0, 1]}, geometry=pts, crs=CRS).to_file(tmp_path / "lab.gpkg")
    prof = profile_from_files(tmp_path / "pzi.tif", tmp_path / "dem.tif",
                              labels_path=tmp_path / "lab.gpkg")
    assert prof.meta["highest_label_m"] == pytest.approx(Z_TOP - GRADE * 50 * CELL, abs=1.0)
    assert prof.warnings  # the PZI falls above 4400 m, and bands above 4700 m remain
    html = render_report({"profile": prof.as_dict()})
    assert "Elevation profile" in html and "Lower limit of permafrost" in html
    top = html.index("<h1>")
    assert html.index("falls with elevation above the highest label") < html.index(
        "id='sec-elevation-profile'") and top < html.index("Warnings")


def test_stats_command_writes_the_profile_and_warns(tmp_path):
    import json

    import geopandas as gpd
    import shapely
    from typer.testing import CliRunner

    from factories import write_tif
    from permafrost.cli import app

    tr, z, downslope = _cone()
    pzi = np.clip((z - 3300.0) / 1100.0, 0, 1) - np.clip((z - 4400.0) / 600.0 * 0.15, 0, None)
    write_tif(tmp_path / "pzi.tif", np.clip(pzi, 0, 1).astype("float32"), tr, crs=CRS)
    write_tif(tmp_path / "dem.tif", z.astype("float32"), tr, crs=CRS)
    gpd.GeoDataFrame({"label": [1]}, geometry=[shapely.Point(tr * (200.5, 150.5))],
                     crs=CRS).to_file(tmp_path / "lab.gpkg")
    out = tmp_path / "profile.json"
    res = CliRunner().invoke(app, ["stats", str(tmp_path / "pzi.tif"), "--dem",
                                   str(tmp_path / "dem.tif"), "--out-profile", str(out),
                                   "--labels", str(tmp_path / "lab.gpkg")])
    assert res.exit_code == 0, res.output
    assert "Lower limit of permafrost (PZI = 0.5): all " in res.output
    assert "falls with elevation above the highest label" in " ".join(res.output.split())
    prof = json.loads(out.read_text())
    # the synthetic PZI is 0.5 at z = 3300 + 550 = 3850 m on every aspect
    assert prof["lower_limits"]["all"]["elevation_m"] == pytest.approx(3850.0, abs=50.0)
    assert prof["warnings"]
    bad = CliRunner().invoke(app, ["stats", str(tmp_path / "pzi.tif"), "--out-profile",
                                   str(out)])
    assert bad.exit_code != 0 and "--dem" in bad.output
