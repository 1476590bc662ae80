"""`train`, `predict`, `stats`, `validate` and `report` with malformed rasters, models,
label files and JSON results."""

from __future__ import annotations

import json

import numpy as np
from rasterio.transform import from_origin

from .conftest import (
    NX,
    NY,
    RES,
    X0,
    Y0,
    Outputs,
    assert_clean_failure,
    covariate_arrays,
    invoke,
    write_raster,
)


def _predict(model, cov, out, *extra):
    return invoke(["predict", "--model", model, "--covariates", cov, "--out", out,
                   "--device", "cpu", "--threads", "1", *extra])


def _train(labels, cov, out, *extra):
    return invoke(["train", "--labels", labels, "--covariates", cov, "--out", out,
                   "--device", "cpu", "--folds", "2", "--n-estimators", "10", "--no-random-cv",
                   "--block-size", "500", *extra])


# ----------------------------------------------------------------------------- baselines


def test_valid_predict_and_train_work(model_dir, make_covariates, make_labels, tmp_path):
    cov = make_covariates()
    res = _predict(model_dir, cov, tmp_path / "pzi.tif")
    assert res.exit_code == 0, res.stderr
    res = _train(make_labels(), cov, tmp_path / "m")
    assert res.exit_code == 0, res.stderr
    assert (tmp_path / "m" / "metadata.json").is_file()


# ----------------------------------------------------------------------------- covariates


def test_covariate_without_crs(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    write_raster(cov / "maat.tif", np.zeros((NY, NX)), crs=None)
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, cov, out), names="maat.tif",
                         outputs=Outputs.take(out))


def test_covariates_on_mismatched_grids(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    write_raster(cov / "pisr.tif", np.full((NY, NX), 200.0),
                 transform=from_origin(X0 + 3 * RES, Y0, RES, RES))
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, cov, out), names="pisr.tif",
                         outputs=Outputs.take(out))


def test_covariate_in_another_crs(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    write_raster(cov / "ndvi.tif", np.full((NY, NX), 0.3), crs="EPSG:32647",
                 transform=from_origin(500000, 4270000, 50, 50))
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, cov, out), names="ndvi.tif",
                         outputs=Outputs.take(out))


def test_all_nodata_covariate_train(make_covariates, make_labels, tmp_path):
    cov = make_covariates(ndvi=np.full((NY, NX), np.nan))
    out = tmp_path / "m"
    assert_clean_failure(_train(make_labels(), cov, out), names="ndvi",
                         outputs=Outputs.take(out))


def test_covariate_directory_missing_a_feature(model_dir, make_covariates, tmp_path):
    cov = make_covariates()
    (cov / "pisr.tif").unlink()
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, cov, out), names="pisr", outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- models


def test_model_without_metadata(model_copy, make_covariates, tmp_path):
    (model_copy / "metadata.json").unlink()
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_copy, make_covariates(), out), names=model_copy.name,
                         outputs=Outputs.take(out))


def test_model_with_truncated_booster(model_copy, make_covariates, tmp_path):
    p = model_copy / "predictor.json"
    p.write_bytes(p.read_bytes()[:500])
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_copy, make_covariates(), out), names="predictor.json",
                         outputs=Outputs.take(out))


def test_model_from_a_future_format(model_copy, make_covariates, tmp_path):
    meta = json.loads((model_copy / "metadata.json").read_text())
    meta["format_version"] = 99
    (model_copy / "metadata.json").write_text(json.dumps(meta))
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_copy, make_covariates(), out), names="metadata.json",
                         field="format_version", outputs=Outputs.take(out))


def test_model_calibration_not_json(model_copy, make_covariates, tmp_path):
    (model_copy / "calibration.json").write_text("isotonic: [0, 1]\n")
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_copy, make_covariates(), out),
                         names="calibration.json", outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- labels for train


def test_labels_with_non_binary_classes(make_covariates, make_labels, tmp_path):
    labels = make_labels(label=np.arange(120) % 3)
    out = tmp_path / "m"
    assert_clean_failure(_train(labels, make_covariates(), out), names=labels, field="label",
                         outputs=Outputs.take(out))


def test_labels_of_one_class_only(make_covariates, make_labels, tmp_path):
    labels = make_labels(label=np.ones(120, int))
    out = tmp_path / "m"
    assert_clean_failure(_train(labels, make_covariates(), out), names=labels, field="label",
                         outputs=Outputs.take(out))


def test_labels_with_negative_weights(make_covariates, make_labels, tmp_path):
    w = np.ones(120)
    w[7] = -3.0
    labels = make_labels(weight=w)
    out = tmp_path / "m"
    assert_clean_failure(_train(labels, make_covariates(), out), names=labels, field="weight",
                         outputs=Outputs.take(out))


def test_train_output_is_an_existing_file(make_covariates, make_labels, tmp_path):
    out = tmp_path / "model"
    out.write_text("keep me")
    assert_clean_failure(_train(make_labels(), make_covariates(), out), names=out.name)
    assert out.read_text() == "keep me"


# ----------------------------------------------------------------------------- PZI maps


def test_stats_pzi_in_percent(make_pzi, tmp_path):
    """Wrong units: PZI given in percent (0-100) instead of a probability."""
    pzi = make_pzi(values=np.linspace(0, 100, NY * NX).reshape(NY, NX))
    out = tmp_path / "stats.json"
    res = invoke(["stats", pzi, "--out-json", out])
    assert_clean_failure(res, names=pzi, outputs=Outputs.take(out))


def test_stats_pzi_without_crs(make_pzi, tmp_path):
    pzi = make_pzi(crs=None)
    out = tmp_path / "stats.json"
    assert_clean_failure(invoke(["stats", pzi, "--out-json", out]), names=pzi,
                         outputs=Outputs.take(out))


def test_stats_regions_missing_the_name_field(make_pzi, tmp_path):
    import geopandas as gpd

    from .conftest import cell_box

    reg = tmp_path / "regions.gpkg"
    gpd.GeoDataFrame({"basin": ["a"]}, geometry=[cell_box(5, 5, 20)],
                     crs="EPSG:4326").to_file(reg, driver="GPKG")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", reg, "--out-json", out])
    assert_clean_failure(res, names=reg, field="name", outputs=Outputs.take(out))


def test_validate_boreholes_with_unparseable_presence(make_pzi, make_boreholes, tmp_path):
    from .conftest import borehole_rows

    rows = borehole_rows()
    rows[2] = rows[2].replace(",1,", ",ja,").replace(",0,", ",ja,")
    bh = make_boreholes(rows=rows)
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert_clean_failure(res, names=bh, field="presence", outputs=Outputs.take(out))


def test_validate_prior_with_unknown_codes(make_pzi, tmp_path):
    prior = write_raster(tmp_path / "prior.tif", np.full((NY, NX), 7), dtype="uint8", nodata=255)
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"survey={prior}:categorical:1:2",
                  "--out", out])
    assert_clean_failure(res, names=prior, outputs=Outputs.take(out))


def test_validate_bad_prior_spec(make_pzi, tmp_path):
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", "survey:categorical", "--out", out])
    assert_clean_failure(res, names="survey:categorical", outputs=Outputs.take(out))


# ----------------------------------------------------------------------------- report


def test_report_stats_json_truncated(make_pzi, tmp_path):
    stats = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--out-json", stats])
    assert res.exit_code == 0, res.stderr
    stats.write_text(stats.read_text()[:120])
    out = tmp_path / "report.html"
    res = invoke(["report", "--out", out, "--stats", stats])
    assert_clean_failure(res, names=stats, outputs=Outputs.take(out, out.with_suffix(".json")))


def test_report_model_directory_is_empty(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    out = tmp_path / "report.html"
    res = invoke(["report", "--out", out, "--model", model])
    assert_clean_failure(res, names=model.name, outputs=Outputs.take(out, out.with_suffix(".json")))


def test_inspect_strict_stops_at_a_corrupt_file(make_covariates, tmp_path):
    cov = make_covariates()
    (cov / "broken.tif").write_bytes(b"II*\x00" + b"\x00" * 64)
    res = invoke(["inspect", cov, "--strict"])
    assert_clean_failure(res, names="broken.tif")


def test_inspect_missing_directory(tmp_path):
    res = invoke(["inspect", tmp_path / "nowhere"])
    assert_clean_failure(res, names="nowhere")


def test_predict_mask_without_crs(model_dir, make_covariates, tmp_path):
    import geopandas as gpd

    from .conftest import cell_box

    mask = tmp_path / "mask.shp"
    gpd.GeoDataFrame({"kind": ["lake"]}, geometry=[cell_box(5, 5, 10)]).to_file(mask)
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, make_covariates(), out, "--mask", mask)
    assert_clean_failure(res, names=mask, outputs=Outputs.take(out))


def test_predict_mask_raster_with_another_crs(model_dir, make_covariates, tmp_path):
    mask = write_raster(tmp_path / "mask.tif", np.zeros((NY, NX)), crs=None, dtype="uint8",
                        nodata=None)
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, make_covariates(), out, "--mask", mask)
    assert_clean_failure(res, names=mask, outputs=Outputs.take(out))


def test_stats_dem_on_another_crs_without_crs(make_pzi, tmp_path):
    dem = write_raster(tmp_path / "dem.tif", np.full((NY, NX), 4000.0), crs=None)
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--dem", dem, "--out-json", out])
    assert_clean_failure(res, names=dem, outputs=Outputs.take(out))


def test_stats_band_width_zero(make_pzi, make_covariates, tmp_path):
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--dem", make_covariates() / "dem.tif",
                  "--band-width", "0", "--out-json", out])
    assert_clean_failure(res, names="band_width", outputs=Outputs.take(out))


def test_validate_prior_without_crs(make_pzi, tmp_path):
    prior = write_raster(tmp_path / "prior.tif", np.full((NY, NX), 0.5), crs=None)
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--prior", f"p={prior}:continuous:0.5", "--out", out])
    assert_clean_failure(res, names=prior, outputs=Outputs.take(out))


def test_validate_boreholes_all_unknown_presence(make_pzi, make_boreholes, tmp_path):
    from .conftest import borehole_rows

    rows = [",".join(r.split(",")[:4] + ["", "", "2015"]) for r in borehole_rows()]
    bh = make_boreholes(rows=rows)
    out = tmp_path / "val"
    res = invoke(["validate", make_pzi(), "--boreholes", bh, "--out", out])
    assert_clean_failure(res, names=bh, outputs=Outputs.take(out))


def test_train_stack_file_with_a_typo(make_covariates, make_labels, tmp_path):
    cov = make_covariates()
    stack = tmp_path / "stack.toml"
    stack.write_text(f'[grid]\nlike = "{(cov / "dem.tif").as_posix()}"\n\n'
                     f'[covariates.dem]\npaht = "{(cov / "dem.tif").as_posix()}"\n')
    out = tmp_path / "m"
    res = _train(make_labels(), stack, out)
    assert_clean_failure(res, names=stack, outputs=Outputs.take(out))


def test_train_labels_missing_the_label_column(make_covariates, make_labels, tmp_path):
    labels = make_labels()
    out = tmp_path / "m"
    res = _train(labels, make_covariates(), out, "--label-column", "presence")
    assert_clean_failure(res, names=labels, field="presence", outputs=Outputs.take(out))


def test_report_validation_directory_without_json(tmp_path):
    val = tmp_path / "val"
    val.mkdir()
    out = tmp_path / "report.html"
    res = invoke(["report", "--out", out, "--validation", val])
    assert_clean_failure(res, names="val", outputs=Outputs.take(out, out.with_suffix(".json")))


# ----------------------------------------------------------------------------- found by this suite


def test_all_nodata_covariate_predict(model_dir, make_covariates, tmp_path):
    """No pixel can be predicted: an error, not an all-nodata map and exit 0."""
    cov = make_covariates(maat=np.full((NY, NX), np.nan))
    out = tmp_path / "pzi.tif"
    line = assert_clean_failure(_predict(model_dir, cov, out), names=cov.name,
                                field="covariates", outputs=Outputs.take(out))
    assert "no pixel" in line


def test_infinite_covariate_values_are_nodata_not_values(model_dir, make_covariates, tmp_path):
    """+-inf in a covariate is no value: those pixels are nodata and counted as missing."""
    import rasterio

    dem = covariate_arrays()["dem"]
    dem[10:20, 10:20] = np.inf
    dem[30:32, 40:45] = -np.inf
    cov = make_covariates(dem=dem)
    out = tmp_path / "pzi.tif"
    res = _predict(model_dir, cov, out, "--json")
    assert res.exit_code == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["missing"] == 100 + 10
    with rasterio.open(out) as src:
        p = src.read(1, masked=True).filled(np.nan)
    assert np.isnan(p[10:20, 10:20]).all() and np.isnan(p[30:32, 40:45]).all()
    assert np.isfinite(p).sum() == NY * NX - 110


def test_truncated_covariate(model_dir, make_covariates, tmp_path):
    cov = make_covariates(ny=300, nx=300)  # several GeoTIFF strips: the header survives
    data = (cov / "dem.tif").read_bytes()
    (cov / "dem.tif").write_bytes(data[: len(data) // 2])
    out = tmp_path / "pzi.tif"
    assert_clean_failure(_predict(model_dir, cov, out), names="dem.tif", field="dem",
                         outputs=Outputs.take(out))


def test_stats_pzi_with_infinite_values(make_pzi, tmp_path):
    v = np.full((NY, NX), 0.4)
    v[:5] = np.inf
    pzi = make_pzi(values=v, nodata=None)
    out = tmp_path / "stats.json"
    res = invoke(["stats", pzi, "--out-json", out])
    line = assert_clean_failure(res, names=pzi, outputs=Outputs.take(out))
    assert "infinite" in line


def test_stats_all_nodata_pzi(make_pzi, tmp_path):
    pzi = make_pzi(values=np.full((NY, NX), np.nan))
    out = tmp_path / "stats.json"
    assert_clean_failure(invoke(["stats", pzi, "--out-json", out]), names=pzi,
                         outputs=Outputs.take(out))


def test_stats_regions_with_mixed_geometries(make_pzi, tmp_path):
    """A point among the region polygons has no area: refused, not counted as one cell."""
    import geopandas as gpd

    from .conftest import cell_box, cell_point

    reg = tmp_path / "regions.geojson"
    gpd.GeoDataFrame({"name": ["a", "b"]}, geometry=[cell_box(5, 5, 20), cell_point(40, 40)],
                     crs="EPSG:4326").to_file(reg, driver="GeoJSON")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--regions", reg, "--out-json", out])
    assert_clean_failure(res, names=reg, field="geometry", outputs=Outputs.take(out))


def test_stats_mask_with_lines(make_pzi, tmp_path):
    import geopandas as gpd
    import shapely

    from .conftest import X0, Y0

    mask = tmp_path / "mask.gpkg"
    gpd.GeoDataFrame({"kind": ["glacier"]}, geometry=[shapely.LineString(
        [(X0, Y0 - 0.01), (X0 + 0.02, Y0 - 0.02)])], crs="EPSG:4326").to_file(mask, driver="GPKG")
    out = tmp_path / "stats.json"
    res = invoke(["stats", make_pzi(), "--mask", mask, "--out-json", out])
    assert_clean_failure(res, names=mask, field="geometry", outputs=Outputs.take(out))


def test_report_stats_json_of_the_wrong_kind(tmp_path):
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps([1, 2, 3]))
    out = tmp_path / "report.html"
    res = invoke(["report", "--out", out, "--stats", stats])
    assert_clean_failure(res, names=stats, outputs=Outputs.take(out, out.with_suffix(".json")))
