"""Every numeric option has bounds, from one table (:data:`permafrost.options.BOUNDS`).

For each entry of the table and each of its bounds, a value just outside is refused with one
line naming the option: through the command line (at parse time, before a file is opened),
through a pipeline file (``permafrost scenarios``, before any work) and through the library.
Every numeric option of every command must be in the table, so a new option without bounds
fails here.  Then the cases that were mishandled: a CRS pyproj does not know, a scheduler
address that is no address, a DEM range that makes too many elevation bands, and names with
the separators of ``a=b,c=d`` lists.
"""

from __future__ import annotations

import math
import os
import re
import time

import numpy as np
import pytest
import typer

from permafrost.errors import ConfigError, CRSError, InputError, OptionError
from permafrost.options import BOUNDS, MAX_ELEVATION_BANDS, MAX_PARALLEL, Bound, bound_for_cli

from .conftest import (NX, NY, ROOT, Outputs, assert_clean_failure, demo_pipeline_text, invoke,
                       write_raster)

# ----------------------------------------------------------------------------- helpers


def _outside(b: Bound) -> list[tuple[str, float]]:
    """``(side, value)`` just outside each bound of ``b`` (and NaN, +inf for finite floats)."""
    out = []
    if b.lo is not None:
        if b.kind is int:
            out.append(("below", int(b.lo) - (0 if b.lo_open else 1)))
        else:
            out.append(("below", b.lo if b.lo_open else math.nextafter(b.lo, -math.inf)))
    if b.hi is not None:
        if b.kind is int:
            out.append(("above", int(b.hi) + (0 if b.hi_open else 1)))
        else:
            out.append(("above", b.hi if b.hi_open else math.nextafter(b.hi, math.inf)))
    if b.kind is float and b.finite:
        out += [("nan", math.nan), ("inf", math.inf)]
    return out


def _text(v: float) -> str:
    """A value as the command line and TOML write it (``nan``, ``inf``, repr of floats)."""
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return repr(v)


def _commands() -> dict:
    from permafrost.cli import app

    return typer.main.get_command(app).commands


def _numeric_options(cmd) -> list:
    """The options of a command that take an int or a float (not ``-v``'s count)."""
    return [p for p in cmd.params if p.param_type_name == "option" and not p.count
            and not p.is_flag and str(p.bare_type()) in ("int", "float")]


#: the required arguments of each command with a numeric option (paths that do not exist:
#: a bound is checked while the command line is parsed, before any file is opened)
def _base_args(command: str, tmp) -> list:
    return {
        "train": ["train", "--labels", tmp / "l.gpkg", "--covariates", tmp / "cov",
                  "--out", tmp / "model"],
        "predict": ["predict", "--model", tmp / "model", "--covariates", tmp / "cov",
                    "--out", tmp / "pzi.tif"],
        "validate": ["validate", tmp / "pzi.tif", "--out", tmp / "val"],
        "stats": ["stats", tmp / "pzi.tif"],
        "labels": ["labels", "--out", tmp / "labels.gpkg"],
        "kinematics": ["kinematics", "--track", tmp / "asc", "--outlines", tmp / "o.gpkg",
                       "--out", tmp / "kin.gpkg"],
        "serve": ["serve", tmp / "run"],
    }[command]


CLI_CASES = [pytest.param(b, spec, side, v, id=f"{spec.replace(' ', '')}-{side}")
             for b in BOUNDS for spec in b.cli for side, v in _outside(b)]

TOML_CASES = [pytest.param(b, key, side, v, id=f"{key}-{side}")
              for b in BOUNDS for key in b.toml for side, v in _outside(b)]


# ----------------------------------------------------------------------------- the table


def test_every_numeric_option_of_every_command_is_in_the_table():
    """A numeric option added without an entry of BOUNDS (or without its callback) fails."""
    missing, unchecked, seen = [], [], set()
    for name, cmd in _commands().items():
        for p in _numeric_options(cmd):
            flag = max(p.opts, key=len)
            seen.add(f"{name} {flag}")
            if bound_for_cli(name, flag) is None:
                missing.append(f"{name} {flag}")
            elif p.callback is None:
                unchecked.append(f"{name} {flag}")
    assert not missing, f"numeric options without bounds in permafrost.options: {missing}"
    assert not unchecked, f"options in the table whose Typer option does not check: {unchecked}"
    stale = [s for b in BOUNDS for s in b.cli if s not in seen]
    assert not stale, f"entries of BOUNDS for options that do not exist: {stale}"


def test_every_pipeline_key_of_the_table_exists_and_is_bounded():
    """The table's pipeline keys name fields of the schema whose bounds are the table's."""
    from permafrost import config

    sections = {"pipeline": config.PipelineSection, "kinematics": config.KinematicsOptions,
                "labels": config.LabelsOptions, "train": config.TrainOptions,
                "scenario_model": config.TrainOptions, "predict": config.PredictOptions,
                "stats": config.StatsOptions, "validate": config.ValidateOptions}
    for b in BOUNDS:
        for key in b.toml:
            head, _, field = key.partition(".")
            if head not in sections:
                continue
            info = sections[head].model_fields[field]
            limits = {k: getattr(m, k) for m in info.metadata for k in ("gt", "ge", "lt", "le")
                      if getattr(m, k, None) is not None}
            lo = limits.get("gt", limits.get("ge"))
            hi = limits.get("lt", limits.get("le"))
            assert (lo, hi) == (b.lo, b.hi), (key, limits)


def test_the_table_is_complete():
    for b in BOUNDS:
        assert b.kind in (int, float) and b.unit and b.why, b.name
        assert b.cli or b.toml, f"{b.name}: an entry that no option uses"
        assert b.lo is not None or b.hi is not None, b.name
    # ``--workers 1000`` is refused on any machine that has fewer than 500 CPUs
    assert MAX_PARALLEL == 2 * (os.cpu_count() or 1)


# ----------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("b,spec,side,value", CLI_CASES)
def test_cli_refuses_a_value_just_outside_each_bound(b, spec, side, value, tmp_path):
    command, flag = spec.split(" ")
    res = invoke([*_base_args(command, tmp_path), f"{flag}={_text(value)}"])
    line = assert_clean_failure(res, names=flag)
    assert "out of bounds" in line, line
    assert not list(tmp_path.iterdir()), "work started on a refused option"


@pytest.mark.parametrize("b", [b for b in BOUNDS if b.cli], ids=lambda b: b.name)
def test_cli_accepts_each_bound_itself(b, tmp_path):
    """The bounds given as inclusive are accepted: the command goes on to its inputs (and
    fails there, naming a missing file, not the option)."""
    command, flag = b.cli[0].split(" ")
    for v in (b.lo if not b.lo_open else None, b.hi if not b.hi_open else None):
        if v is None or (b.name == "transitional_min_m_yr" and v >= 0.1):
            continue  # transitional_min must also stay below active_min (a cross check)
        res = invoke([*_base_args(command, tmp_path), f"{flag}={_text(b.kind(v))}"])
        assert "out of bounds" not in res.stderr, (flag, v, res.stderr)


def test_n_estimators_zero_is_refused_not_the_default(tmp_path):
    """``--n-estimators 0`` was read as "not given" (400 trees); ``-3`` made a tree-less model."""
    for v in ("0", "-3"):
        res = invoke([*_base_args("train", tmp_path), "--n-estimators", v])
        line = assert_clean_failure(res, names="--n-estimators")
        assert "1 <= n_estimators" in line


def test_workers_above_the_cpu_cap_start_no_process(tmp_path):
    res = invoke([*_base_args("predict", tmp_path), "--workers", "1000"])
    line = assert_clean_failure(res, names="--workers")
    assert f"<= {MAX_PARALLEL}" in line and "CPUs" in line


# ----------------------------------------------------------------------------- pipeline


def _section_set(text: str, section: str, key: str, value: str) -> str:
    """``key = value`` in ``[section]`` of a TOML text (replaced, inserted, or a new table)."""
    header = f"[{section}]\n"
    found = re.search(rf"^{re.escape(header)}", text, flags=re.M)  # not in a comment
    if found is None:
        return text + f"\n{header}{key} = {value}\n"
    start = found.end()
    nxt = re.search(r"^\[", text[start:], flags=re.M)
    end = start + nxt.start() if nxt else len(text)
    body = text[start:end]
    line = re.compile(rf"^{re.escape(key)} = .*$", flags=re.M)
    body = line.sub(f"{key} = {value}", body, count=1) if line.search(body) \
        else f"{key} = {value}\n{body}"
    return text[:start] + body + text[end:]


def _pipeline_with(key: str, value: str, out) -> tuple[str, str]:
    """A demo pipeline text with ``key`` set to ``value``, and the key the error names."""
    text = demo_pipeline_text(out, scenarios=True)
    plus1 = "covariates.maat = { offset = 1.0 }"
    if key == "inputs.priors[*].threshold":
        assert text.count("threshold = 0.5") == 1
        return text.replace("threshold = 0.5", f"threshold = {value}"), "inputs.priors[1].threshold"
    if key == "scenarios.*.covariates.*.offset":
        return (text.replace(plus1, f"covariates.ndvi = {{ offset = {value} }}"),
                "scenarios.plus1.covariates.ndvi.offset")
    if key == "scenarios.*.covariates.maat*.offset":
        return (text.replace(plus1, f"covariates.maat = {{ offset = {value} }}"),
                "scenarios.plus1.covariates.maat.offset")
    if key == "scenarios.*.covariates.*.scale":
        return (text.replace(plus1, f"covariates.maat = {{ scale = {value} }}"),
                "scenarios.plus1.covariates.maat.scale")
    if key == "scenarios.*.delta_t":
        return _section_set(text, "scenarios.plus1", "delta_t", value), "scenarios.plus1.delta_t"
    section, _, name = key.rpartition(".")
    assert "*" not in key and "[" not in key, f"no TOML writer for {key}"
    return _section_set(text, section, name, value), key


def test_the_demo_pipeline_is_valid_as_written_here(tmp_path):
    """The texts below differ from a valid pipeline by the one key they set."""
    p = tmp_path / "pipe.toml"
    text, _ = _pipeline_with("train.folds", "5", tmp_path / "out")
    p.write_text(text)
    res = invoke(["scenarios", p])
    assert res.exit_code == 0, res.stderr


@pytest.mark.parametrize("b,key,side,value", TOML_CASES)
def test_pipeline_refuses_a_value_just_outside_each_bound(b, key, side, value, tmp_path):
    text, field = _pipeline_with(key, _text(b.kind(value) if math.isfinite(value) else value),
                                 tmp_path / "out")
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    before = Outputs.take(p)
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field=field, outputs=before)
    assert "bounds" in line or "finite" in line or "greater" in line or "less" in line, line
    assert not (tmp_path / "out").exists(), "work started on an invalid pipeline"


def test_scenario_offset_1e308_is_refused(tmp_path):
    text, field = _pipeline_with("scenarios.*.covariates.*.offset", "1e308", tmp_path / "out")
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field=field)
    assert "100" in line


def test_maat_offset_of_fifty_degrees_is_refused(tmp_path):
    """A MAAT offset within the generic ±100 but beyond any climate scenario."""
    text, field = _pipeline_with("scenarios.*.covariates.maat*.offset", "50.0", tmp_path / "out")
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field=field)
    assert "degC" in line and "30" in line


# ----------------------------------------------------------------------------- library


def _paths(tmp_path):
    return tmp_path / "missing.tif", tmp_path / "missing_dir"


@pytest.mark.parametrize("call", [
    "predict_raster(m, c, out, chunk=4)",
    "predict_raster(m, c, out, workers=1000)",
    "predict_raster(m, c, out, threads=-2)",
    "predict_raster(m, c, out, threads=0)",
    "stats_from_files(pzi, band_width=0.0001)",
    "stats_from_files(pzi, block_rows=0)",
    "validate_from_files(pzi, threshold=2.0)",
    "validate_from_files(pzi, threshold=float('nan'))",
    "validate_from_files(pzi, n_bins=-3)",
    "validate_from_files(pzi, seed=2**32)",
    "train_from_files(pzi, c, out, seed=-1)",
    "train_from_files(pzi, c, out, folds=1)",
    "train_from_files(pzi, c, out, params={'n_estimators': 0})",
    "labels_from_files(inventories=[pzi], spacing_m=0.0)",
    "KinematicsConfig(k_sigma=float('nan'))",
])
def test_library_calls_are_refused_before_any_file_is_read(call, tmp_path):
    """The same bounds for a library caller: one-line OptionError (a ConfigError and an
    InputError) naming the argument, before the (missing) inputs are looked at."""
    from permafrost.kinematics import KinematicsConfig  # noqa: F401
    from permafrost.workflows.labels import labels_from_files  # noqa: F401
    from permafrost.workflows.predict import predict_raster  # noqa: F401
    from permafrost.workflows.stats import stats_from_files  # noqa: F401
    from permafrost.workflows.train import train_from_files  # noqa: F401
    from permafrost.workflows.validate import validate_from_files  # noqa: F401

    pzi, c = _paths(tmp_path)
    m, out = tmp_path / "model", tmp_path / "out.tif"
    with pytest.raises(OptionError) as info:
        eval(call)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, InputError)
    arg = re.findall(r"(\w+)=", call)[-1]
    arg = "n_estimators" if "n_estimators" in call else arg
    assert f"field '{arg}'" in str(info.value) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_train_model_refuses_zero_trees(make_labels, make_covariates):
    """train_model itself (not only the CLI) refuses a model without trees."""
    import geopandas as gpd

    from permafrost.models import train_model
    from permafrost.workflows.covariates import build_stack

    labels = gpd.read_file(make_labels())
    ds = build_stack(make_covariates(), chunks=None)
    for params in ({"n_estimators": 0}, {"n_estimators": -3}):
        with pytest.raises(OptionError, match="n_estimators"):
            train_model(labels, ds, params=params)


# ----------------------------------------------------------------------------- band count


def test_band_width_that_makes_too_many_bands_is_refused_before_the_work(make_pzi, tmp_path):
    """``--band-width 1`` over a DEM spanning 3000 m would make 3000 bands (the JSON of
    ``--band-width 0.0001`` was 229 MB): refused from the DEM's range, naming the width
    it takes."""
    pzi = make_pzi()
    ny, nx = NY, NX
    dem = write_raster(tmp_path / "dem.tif",
                       np.linspace(2000.0, 5000.0, ny * nx, dtype="float32").reshape(ny, nx))
    out = tmp_path / "stats.json"
    before = Outputs.take(pzi, dem, out)
    res = invoke(["stats", pzi, "--dem", dem, "--band-width", "1", "--out-json", out])
    line = assert_clean_failure(res, names=[dem, "band_width"], outputs=before)
    assert f"more than {MAX_ELEVATION_BANDS}" in line and "at least 4 m" in line
    ok = invoke(["stats", pzi, "--dem", dem, "--band-width", "4", "--json"])
    assert ok.exit_code == 0, ok.stderr


def test_zone_statistics_stops_at_the_band_limit(make_pzi, tmp_path):
    """The library function on its own (no range check up front) stops at the limit too."""
    from permafrost import read_raster
    from permafrost.area import zone_statistics

    pzi = read_raster(make_pzi())
    dem = pzi.copy(data=np.linspace(0.0, 3000.0, pzi.size).reshape(pzi.shape))
    with pytest.raises(OptionError, match="elevation bands"):
        zone_statistics(pzi, dem=dem, band_width=1.0)


# ----------------------------------------------------------------------------- CRS


@pytest.mark.parametrize("crs", ["EPSG:99999999", "EPSG:0", "EPSG:-5", "EPSG:5000",
                                 "not a crs"])
def test_unknown_crs_options_are_one_line(crs, tmp_path):
    for args in (["validate", tmp_path / "pzi.tif", "--out", tmp_path / "v",
                  "--boreholes-crs", crs],
                 ["labels", "--out", tmp_path / "l.gpkg", "--borehole-crs", crs]):
        line = assert_clean_failure(invoke(args), names=args[-2])
        assert "CRS" in line or "EPSG" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("form", ["flat", "table"])
def test_unknown_crs_in_a_pipeline_is_one_line(form, tmp_path):
    text = demo_pipeline_text(tmp_path / "out")
    bh = '"' + (ROOT / "data_samples/boreholes/boreholes.csv").as_posix() + '"'
    assert f"boreholes = {bh}" in text
    new = (f'boreholes = {bh}\nborehole_crs = "EPSG:99999999"' if form == "flat"
           else f'boreholes = {{ path = {bh}, crs = "EPSG:99999999" }}')
    p = tmp_path / "pipe.toml"
    p.write_text(text.replace(f"boreholes = {bh}", new))
    field = "inputs.borehole_crs" if form == "flat" else "inputs.boreholes.crs"
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field=field)
    assert "99999999" in line


def test_library_refuses_an_unknown_crs_before_reading(tmp_path):
    from permafrost.workflows.validate import validate_from_files

    with pytest.raises(CRSError) as info:
        validate_from_files(tmp_path / "pzi.tif", boreholes_path=tmp_path / "b.csv",
                            boreholes_crs="EPSG:99999999")
    assert "boreholes_crs" in str(info.value)


# ----------------------------------------------------------------------------- scheduler


@pytest.mark.parametrize("address", ["not an address", "localhost", "http://host:8786",
                                     "tcp://host:", "tcp://host:99999"])
def test_a_bad_scheduler_address_is_refused_without_connecting(address, tmp_path):
    t0 = time.perf_counter()
    res = invoke([*_base_args("predict", tmp_path), "--scheduler", address])
    line = assert_clean_failure(res, names="scheduler")
    assert "Dask scheduler address" in line
    assert time.perf_counter() - t0 < 5, "it tried to connect"
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_within_the_timeout(tmp_path):
    """A well-formed address where nothing listens: one line after the short timeout (was a
    40 s hang and a traceback)."""
    from permafrost.backends import open_executor

    t0 = time.perf_counter()
    with pytest.raises(InputError, match="cannot reach the Dask scheduler") as info, \
            open_executor(scheduler="tcp://127.0.0.1:1"):
        pass
    assert time.perf_counter() - t0 < 30
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------- names


@pytest.mark.parametrize("name", ["survey,2019", "a=b"])
def test_prior_names_with_separators_are_refused(name, tmp_path):
    text = demo_pipeline_text(tmp_path / "out")
    p = tmp_path / "pipe.toml"
    p.write_text(text.replace('name = "PZI prior (biased low)"', f'name = "{name}"'))
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field="inputs.priors[1].name")
    assert "separators" in line
    if "=" not in name:  # NAME=FILE on the command line cannot hold '=' in the name
        res = invoke(["validate", tmp_path / "pzi.tif", "--out", tmp_path / "v", "--prior",
                      f"{name}={tmp_path / 'p.tif'}:continuous:0.5"])
        line = assert_clean_failure(res, names="--prior")
        assert "separators" in line


@pytest.mark.parametrize("stem", ["ndvi,2019", "a=b"])
def test_covariate_names_with_separators_are_refused(stem, make_covariates, tmp_path):
    cov = make_covariates()
    (cov / "ndvi.tif").rename(cov / f"{stem}.tif")
    text = demo_pipeline_text(tmp_path / "out")
    old = '"' + (ROOT / "pipelines/demo_covariates.toml").as_posix() + '"'
    assert f"covariates = {old}" in text
    p = tmp_path / "pipe.toml"
    p.write_text(text.replace(f"covariates = {old}", f'covariates = "{cov.as_posix()}"')
                 .replace('"ndvi"', '"slope"'))
    line = assert_clean_failure(invoke(["scenarios", p]), names=p, field="inputs.covariates")
    assert stem in line and "separators" in line
    from permafrost.workflows.covariates import build_stack

    with pytest.raises(OptionError, match="separators"):
        build_stack(cov, chunks=None)


@pytest.mark.parametrize("folder", ["asc,1", "asc=1"])
def test_track_names_with_separators_are_refused(folder, tmp_path):
    from permafrost.io.mintpy import find_track_files, parse_track_spec

    d = tmp_path / folder
    d.mkdir()
    (d / "velocity.h5").write_bytes(b"")
    with pytest.raises(OptionError, match="track name"):
        find_track_files(d)
    clean = tmp_path / "asc"
    clean.mkdir()
    (clean / "velocity.h5").write_bytes(b"")
    with pytest.raises(OptionError, match="track name"):
        parse_track_spec(f"velocity={clean / 'velocity.h5'},name=a=b")


def test_scenario_names_with_separators_are_refused(tmp_path):
    """Already refused by the scenario name rule (letters, digits, '_', '-', '.')."""
    text = demo_pipeline_text(tmp_path / "out", scenarios=True).replace(
        "[scenarios.plus1]", '[scenarios."plus,1"]')
    p = tmp_path / "pipe.toml"
    p.write_text(text)
    assert_clean_failure(invoke(["scenarios", p]), names=p, field="scenarios.plus,1")
