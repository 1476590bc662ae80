"""The pipeline and scenario schema (pydantic), with messages that name the key.

A pipeline file is TOML.  Relative paths are resolved against the file's own directory.
Validation happens entirely before any work starts: unknown keys (with the nearest valid
key suggested), wrong types, missing input files and scenarios that override something
that does not exist are all reported as one :class:`~permafrost.errors.ConfigError`
naming the file and the key.
"""

from __future__ import annotations

import copy
import difflib
import logging
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError, field_validator

from permafrost.checks import expects
from permafrost.defaults import (
    AIR_AMPLITUDE_C,
    BOOTSTRAP_RESAMPLES,
    BOREHOLE_WEIGHT,
    CALIBRATION,
    CHUNK,
    CI_LEVEL,
    LEVEL,
    MIN_MAGT_RECORDS,
    ROCK_GLACIER_WEIGHT,
    SCENARIO_METHOD,
    SENSITIVITY_FACTOR,
)
from permafrost.errors import ConfigError, PermafrostError
from permafrost.io.guard import expand_path
from permafrost.io.mintpy import TrackFiles, find_track_files, track_name
from permafrost.io.rasters import is_remote
from permafrost.io.toml_files import read_toml
from permafrost.io.vectors import VECTOR_SUFFIXES, check_layer, split_layer
from permafrost.model_kinds import MODEL_KINDS, kind_params
from permafrost.options import bound, bound_for_key, check_crs, check_name, offset_bound
from permafrost.workflows.covariates import changeable_inputs

log = logging.getLogger(__name__)

__all__ = [
    "PipelineConfig",
    "Scenario",
    "ScenarioMethodOptions",
    "CovariateChange",
    "load_pipeline",
    "resolve_scenario",
    "is_method_variant",
    "pipeline_dir",
    "BASELINE",
    "REFERENCE",
]

BASELINE = "baseline"
#: the scenario model applied to today's covariates: what scenario changes are measured
#: against when a pipeline has a ``[scenario_model]`` (see docs/pipelines.md)
REFERENCE = "reference"


def _as_value_error(check, *args, **kwargs):
    """A check of :mod:`permafrost.options` inside a pydantic validator: its problem and fix
    as the ValueError pydantic reports under the key."""
    try:
        return check(*args, **kwargs)
    except PermafrostError as exc:
        raise ValueError(f"{exc.problem}; {exc.fix}") from None


#: a path in a pipeline file is TOML text: the one field kind converted from a string
_Path = Annotated[Path, Strict(False)]


class _Strict(BaseModel):
    """Strict types (issue 26): ``folds = "5"`` or ``folds = 5.0`` is an error naming the
    key, not a value coerced behind the user's back (an integer is still taken for a
    float, and a string for a path)."""

    model_config = ConfigDict(extra="forbid", frozen=False, validate_assignment=True,
                              strict=True)


class PriorMap(_Strict):
    """A prior permafrost map to compare with (e.g. Obu 2019, Ran 2021)."""

    name: str
    path: _Path
    kind: Literal["categorical", "continuous"]
    #: categorical maps: codes that mean permafrost
    permafrost_codes: list[int] = Field(default_factory=lambda: [1])
    #: categorical maps: codes that mean no permafrost (any other code is then an error);
    #: when omitted every other valid code means no permafrost
    other_codes: list[int] | None = None
    #: continuous maps: permafrost where the value is at least this
    threshold: float = bound("prior_threshold").field(0.5)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v):
        return _as_value_error(check_name, v, what="prior map", field="name")


class RegionsInput(_Strict):
    path: _Path
    field: str = "name"


class GtnpInput(_Strict):
    csv: _Path
    metadata: _Path


class TableColumns(_Strict):
    """Column names of a borehole table by role; a role not given is recognised from its
    common spellings (``permafrost.io.boreholes.COLUMN_SPELLINGS``, any case)."""

    id: str | None = None
    #: x or longitude
    x: str | None = Field(None, alias="lon")
    #: y or latitude
    y: str | None = Field(None, alias="lat")
    presence: str | None = None
    #: mean annual ground temperature [°C]
    magt: str | None = None
    #: elevation [m]
    elevation: str | None = None
    year: str | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    def mapping(self) -> dict[str, str]:
        """The roles given, as ``{role: column}``."""
        return {k: v for k, v in self.model_dump().items() if v}


class BoreholeTable(_Strict):
    """The table form of a borehole input: ``{path = FILE, columns = {...}, crs = "..."}``."""

    path: _Path
    columns: TableColumns = Field(default_factory=TableColumns)
    #: CRS of x/y columns (lon/lat columns are EPSG:4326)
    crs: str | None = None

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, v):
        return v if v is None else _as_value_error(check_crs, v, field="crs")


#: input keys that take a file or a BoreholeTable, and the flat keys the table form fills
_TABLE_INPUTS = {"boreholes": ("borehole_columns", "borehole_crs"),
                 "validation_boreholes": ("validation_borehole_columns",
                                          "validation_borehole_crs")}


class TrackInput(_Strict):
    """One MintPy track named file by file: the table form of the CLI's
    ``-t velocity=PATH,geometry=PATH,coherence=PATH,mask=PATH,name=NAME``
    (``tracks = [{velocity = "asc/geo/geo_velocity.h5", geometry = "..."}]``); only
    ``velocity`` is required."""

    velocity: _Path
    geometry: _Path | None = None
    coherence: _Path | None = None
    mask: _Path | None = None
    name: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v):
        return v if v is None else _as_value_error(check_name, v, what="track", field="name")


class Inputs(_Strict):
    """Every input file of a pipeline."""

    covariates: _Path
    dem: _Path | None = None
    #: MintPy tracks: a folder (a MintPy work folder, its geo/ folder, or any folder with
    #: velocity.h5), a velocity file, or a table naming the files (TrackInput)
    tracks: list[_Path | TrackInput] = Field(default_factory=list)
    outlines: _Path | None = None
    inventories: list[_Path] = Field(default_factory=list)
    boreholes: _Path | None = None
    #: column names of `boreholes` by role (also given as boreholes = {path=..., columns={...}})
    borehole_columns: TableColumns = Field(default_factory=TableColumns)
    borehole_crs: str | None = None
    gtnp: GtnpInput | None = None
    validation_boreholes: _Path | None = None
    validation_borehole_columns: TableColumns = Field(default_factory=TableColumns)
    validation_borehole_crs: str | None = None
    priors: list[PriorMap] = Field(default_factory=list)
    regions: RegionsInput | None = None
    mask: _Path | None = None
    #: a categorical land-cover (surface) raster with a `classes` tag: label support per
    #: surface class in applicability.json (not a model covariate by itself)
    landcover: _Path | None = None

    @field_validator("borehole_crs", "validation_borehole_crs")
    @classmethod
    def _known_crs(cls, v, info):
        return v if v is None else _as_value_error(check_crs, v, field=info.field_name)


class KinematicsOptions(_Strict):
    enabled: bool = True
    sensitivity_cut: float = bound("min_sensitivity").field(0.3)
    min_coherence: float = bound("min_coherence").field(0.7)


class LabelsOptions(_Strict):
    activity_column: str = "activity"
    sampling: Literal["front", "centroid", "interior"] = "front"
    spacing_m: float = bound("spacing_m").field(100.0)
    #: one default everywhere (permafrost.defaults, docs/pipelines.md "One set of defaults")
    borehole_weight: float = bound("borehole_weight").field(BOREHOLE_WEIGHT)
    rock_glacier_weight: float = bound("rock_glacier_weight").field(ROCK_GLACIER_WEIGHT)
    use_kinematics: bool = True


class TrainOptions(_Strict):
    #: a key of permafrost.model_kinds.MODEL_KIND_TABLE
    model: str = "xgboost"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    folds: int = bound("folds").field(5)
    #: CV block side [m]; None ("auto"): the larger of the label variogram's range and the
    #: covariates' median autocorrelation range (permafrost.cv.default_block_size)
    block_size_m: float | None = bound("block_size").field(None)
    calibration: Literal["isotonic", "sigmoid"] = CALIBRATION
    #: trees (boosting rounds or forest size); None: the model kind's own default
    #: (permafrost.model_kinds: xgboost 400, rf 300; the CLI's and the library's too)
    n_estimators: int | None = bound("n_estimators").field(None)
    features: list[str] | None = None
    #: share of permafrost in the landscape [-] from an independent source: moves the PZI
    #: from the labels' prevalence to it (Saerens et al. 2002); default none, see
    #: docs/method.md "What the PZI means"
    prevalence: float | None = bound("prevalence").field(None)
    prevalence_source: str | None = None
    #: what the calibrated PZI's level rests on (permafrost.level): "auto" the in-situ
    #: labels (boreholes, GTN-P) when there are enough, else the label mix (with a warning);
    #: "in-situ" or "labels" to choose; a given prevalence wins over either
    level: Literal["auto", "in-situ", "labels"] = LEVEL

    #: monotone constraints by covariate (+1 increasing, -1 decreasing), e.g. {maat = -1}:
    #: physical knowledge that keeps warming scenarios from raising the PZI
    monotone: dict[str, Literal[-1, 0, 1]] = Field(default_factory=dict)
    #: the surface-aware model (permafrost.surface; docs/method.md "Surface-aware model"):
    #: "auto" (the categorical covariate whose classes name coarse/blocky debris), "none"
    #: (one model on all labels) or a covariate name
    surface: str = "auto"
    #: land-cover codes of coarse debris (default: the classes named coarse|block)
    debris_classes: list[int] | None = None

    @field_validator("model")
    @classmethod
    def _known_model(cls, v):
        if v not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {v!r}; use one of {', '.join(MODEL_KINDS)}")
        return v

    @field_validator("n_estimators", "monotone")
    @classmethod
    def _an_option_of_the_kind(cls, v, info):
        """An option the model kind does not take is an error (permafrost.model_kinds)."""
        model = info.data.get("model")
        if model in MODEL_KINDS:
            try:
                kind_params(model, **{info.field_name: v})
            except PermafrostError as exc:
                raise ValueError(exc.problem) from None
        return v

    @field_validator("features")
    @classmethod
    def _features_once(cls, v):
        twice = sorted({f for f in v or [] if v.count(f) > 1})
        if twice:
            raise ValueError(f"features listed more than once: {', '.join(twice)}")
        return v


class PredictOptions(_Strict):
    chunk: int = bound("chunk").field(CHUNK)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    zones: bool = True
    uncertainty: bool = False
    workers: int | None = bound("workers").field(None)


class StatsOptions(_Strict):
    band_width_m: float = bound("band_width").field(200.0)


class ValidateOptions(_Strict):
    enabled: bool = True
    #: share of boreholes held out of training (whole spatial blocks) to validate on;
    #: 0 trains on all of them (then give `inputs.validation_boreholes`)
    holdout_fraction: float = bound("holdout_fraction").field(0.25)
    #: side of the held-out blocks [m]; default (None): the spatial-CV block size
    #: (train.block_size_m, else the larger of the label and covariate autocorrelation
    #: ranges, permafrost.cv.default_block_size); a smaller value is an error
    holdout_block_m: float | None = bound("holdout_block_m").field(None)
    #: percentile bootstrap of every held-out metric: resamples and confidence level
    bootstrap_resamples: int = bound("bootstrap_resamples").field(BOOTSTRAP_RESAMPLES)
    ci_level: float = bound("ci_level").field(CI_LEVEL)


class ReportOptions(_Strict):
    enabled: bool = True
    title: str | None = None


class CovariateChange(_Strict):
    """How a scenario changes one covariate: an offset, a factor, or another file."""

    #: bounds: permafrost.options ("offset"; a MAAT offset "maat_offset", checked with the
    #: covariate's name in _check_scenarios)
    offset: float | None = bound("offset").field(None)
    scale: float | None = bound("scale").field(None)
    file: _Path | None = None

    @field_validator("file")
    @classmethod
    def _no_both(cls, v, info):
        if v is not None and (info.data.get("offset") is not None or info.data.get("scale") is not None):
            raise ValueError("give either `file` or `offset`/`scale`, not both")
        return v


class ScenarioMethodOptions(_Strict):
    """How warming scenarios are made (docs/pipelines.md, "Scenarios").

    ``physical`` (default): a scenario that offsets MAAT by dT shifts the ground temperature
    the validated baseline PZI implies by the TTOP sensitivity times dT (permafrost.warming,
    n-factors by surface class: permafrost.nfactors).  ``cross-section``: the scenario model
    (``[scenario_model]``, else ``[train]``) predicts the changed covariates (space for time).
    """

    method: Literal["physical", "cross-section"] = SCENARIO_METHOD
    #: annual amplitude of air temperature [degC]: half the difference of the warmest and
    #: the coldest monthly means of the region
    amplitude_c: float = bound("air_amplitude").field(AIR_AMPLITUDE_C)
    #: the ground-temperature spread [degC]; None: fitted from in-situ MAGT records when
    #: there are at least min_magt_records, else permafrost.defaults.GROUND_SPREAD_C
    sigma_c: float | None = bound("ground_spread").field(None)
    min_magt_records: int = bound("min_magt_records").field(MIN_MAGT_RECORDS)
    #: a cross-section scenario's loss of area beyond this factor of the physical one warns
    warn_factor: float = bound("sensitivity_factor").field(SENSITIVITY_FACTOR)


class Scenario(_Strict):
    """A named variant of the pipeline: covariate changes and option overrides."""

    description: str = ""
    #: the change of mean annual air temperature this scenario stands for [degC], for
    #: the report's area-against-warming plot; by default the offset of the scenario's
    #: one offset-changed covariate, if it has exactly one
    delta_t: float | None = bound("delta_t").field(None)
    covariates: dict[str, CovariateChange] = Field(default_factory=dict)
    labels: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    predict: dict[str, Any] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)


class PipelineSection(_Strict):
    name: str
    output_dir: _Path
    seed: int = bound("seed").field(0)
    description: str = ""


class PipelineConfig(_Strict):
    """A whole pipeline file."""

    pipeline: PipelineSection
    inputs: Inputs
    kinematics: KinematicsOptions = Field(default_factory=KinematicsOptions)
    labels: LabelsOptions = Field(default_factory=LabelsOptions)
    train: TrainOptions = Field(default_factory=TrainOptions)
    predict: PredictOptions = Field(default_factory=PredictOptions)
    stats: StatsOptions = Field(default_factory=StatsOptions)
    validate_: ValidateOptions = Field(default_factory=ValidateOptions, alias="validate")
    report: ReportOptions = Field(default_factory=ReportOptions)
    #: overrides of [train] for the model that scenarios run with (e.g. climate,
    #: radiation and substrate covariates, no elevation; see docs/pipelines.md)
    scenario_model: dict[str, Any] = Field(default_factory=dict)
    #: how warming scenarios are made: physical (default) or cross-section
    scenario_method: ScenarioMethodOptions = Field(default_factory=ScenarioMethodOptions)
    scenarios: dict[str, Scenario] = Field(default_factory=dict)

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: where the file was read from (set by :func:`load_pipeline`)
    source: _Path | None = Field(None, exclude=True)

    def physical(self) -> bool:
        """Whether warming scenarios use the physical method."""
        return self.scenario_method.method == "physical"

    def scenario_names(self) -> list[str]:
        return [BASELINE, *self.scenarios]

    def runs(self, scenarios: list[str] | None = None) -> list[str]:
        """The runs for these scenarios: the baseline, the reference when the pipeline has
        a ``[scenario_model]`` and a scenario that changes covariates is asked for, then the
        scenarios."""
        asked = [s for s in (scenarios or []) if s not in (BASELINE, REFERENCE)]
        changing = any(self.scenarios[s].covariates for s in asked if s in self.scenarios)
        ref = [REFERENCE] if changing and self.scenario_model and not self.physical() else []
        return [BASELINE, *ref, *dict.fromkeys(asked)]


def pipeline_dir(cfg: PipelineConfig) -> Path:
    """The directory that recorded paths are relative to: the pipeline file's (or, for a
    configuration built in memory, the output directory)."""
    return Path(cfg.source).resolve().parent if cfg.source else Path(cfg.pipeline.output_dir)


# ---------------------------------------------------------------------------------------
# error messages


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the key at ``loc`` (for suggestions)."""
    import typing

    current: Any = model
    skip_next = False
    for part in loc[:-1]:
        if skip_next:  # the key of a dict-valued field (a scenario or covariate name)
            skip_next = False
            continue
        if isinstance(part, int) or current is None:
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = _field_by_key(current, part)
        if field is None:
            return None
        skip_next = typing.get_origin(field.annotation) is dict
        current = _inner_model(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _field_by_key(model: type[BaseModel], key: str):
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f
    return None


def _inner_model(annotation) -> Any:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if inner is not None:
            return inner
    return None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items() if n != "source"]


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _explain(exc: ValidationError, path: Path, model: type[BaseModel], prefix: tuple = ()) -> ConfigError:
    err = exc.errors()[0]
    loc = prefix + tuple(err["loc"])
    key = _dotted(loc)
    more = f" (and {len(exc.errors()) - 1} more problem(s))" if len(exc.errors()) > 1 else ""
    if err["type"] == "extra_forbidden":
        owner = _model_at(model, tuple(err["loc"]))
        valid = _keys_of(owner) if owner else []
        near = difflib.get_close_matches(str(loc[-1]), valid, n=1, cutoff=0.5)
        fix = f"did you mean {near[0]!r}?" if near else f"valid keys here: {', '.join(valid)}"
        return ConfigError(f"unknown key{more}", path=path, field=key, fix=fix)
    if err["type"] == "missing":
        return ConfigError(f"required key is missing{more}", path=path, field=key,
                           fix="add it (see docs/pipelines.md)")
    msg = err["msg"].replace("\n", " ")
    given = err.get("input")
    shown = "" if isinstance(given, (dict, list)) else f" (got {given!r})"
    # a value out of bounds: the reason from the table of permafrost.options
    entry = bound_for_key(key) or bound_for_key(".".join(key.split(".")[-2:]))
    fix = (f"give a value in these bounds ({entry.why})" if entry is not None
           and err["type"] in _BOUND_ERRORS else "see docs/pipelines.md")
    return ConfigError(f"{msg}{shown}{more}", path=path, field=key, fix=fix)


#: pydantic's error types of a number outside its bounds
_BOUND_ERRORS = {"greater_than", "greater_than_equal", "less_than", "less_than_equal",
                 "finite_number"}


# ---------------------------------------------------------------------------------------
# loading


def _resolve_paths(obj: Any, base: Path, source: Path | None = None, key: str = "") -> Any:
    """Paths made absolute (relative ones start at ``base``), after ``~`` and ``$VAR`` are
    expanded as a shell would (:func:`permafrost.io.guard.expand_path`)."""
    if isinstance(obj, BaseModel):
        for name in obj.__class__.model_fields:
            if name == "source":
                continue
            value = getattr(obj, name)
            new = _resolve_paths(value, base, source, f"{key}.{name}".lstrip("."))
            if new is not value:
                object.__setattr__(obj, name, new)
        return obj
    if isinstance(obj, Path):
        if is_remote(obj):  # a GDAL virtual file system path or URL: kept as given
            return obj
        obj = expand_path(obj, where=source, field=key or None)
        return obj if obj.is_absolute() else (base / obj).resolve()
    if isinstance(obj, list):
        return [_resolve_paths(v, base, source, f"{key}[{i}]") for i, v in enumerate(obj)]
    if isinstance(obj, dict):
        return {k: _resolve_paths(v, base, source, f"{key}.{k}") for k, v in obj.items()}
    return obj


def track_files(track: Path | TrackInput):
    """The :class:`permafrost.io.mintpy.TrackFiles` of a pipeline track: a folder or file
    found in MintPy's layouts (:func:`permafrost.io.mintpy.find_track_files`), or the
    files a table names."""
    if not isinstance(track, TrackInput):
        return find_track_files(track)
    return TrackFiles(velocity=track.velocity, geometry=track.geometry,
                      coherence=track.coherence, mask=track.mask,
                      name=track.name or track_name(track.velocity.parent))


def _check_inputs_exist(cfg: PipelineConfig, path: Path) -> None:
    def check(p: Path | None, key: str, kind: str | None = "file") -> None:
        """``kind``: "file", "vector" (a file, or a FileGDB folder), "dir" or None (either)."""
        if p is None or is_remote(p):
            return
        if kind == "vector":  # FILE::LAYER names a layer of a multi-layer source
            if split_layer(p)[0].suffix.lower() in (*VECTOR_SUFFIXES, ".gdb") and (
                    split_layer(p)[0].exists()):
                check_layer(p)  # one layer, or the layer named: known before any work
            p = split_layer(p)[0]
        if not p.exists():
            raise ConfigError(f"input not found: {p}", path=path, field=key,
                              fix="fix the path (relative paths start at the pipeline file)")
        if kind == "dir" and not p.is_dir():
            raise ConfigError(f"a folder is expected, {p} is a file", path=path, field=key,
                              fix="give the folder that holds the files")
        if kind in ("file", "vector") and p.is_dir() and not (
                kind == "vector" and p.suffix.lower() == ".gdb"):
            raise ConfigError(f"a file is expected, {p} is a folder", path=path, field=key,
                              fix="give the file inside it")
        if kind in ("file", "vector") and not p.is_dir() and not p.is_file():
            raise ConfigError(f"{p} is not a regular file", path=path, field=key,
                              fix="give a regular file")

    inp = cfg.inputs
    check(inp.covariates, "inputs.covariates", None)  # a folder of rasters or a stack file
    check(inp.dem, "inputs.dem")
    tracks = []
    for i, t in enumerate(inp.tracks):
        if isinstance(t, TrackInput):
            for k in ("velocity", "geometry", "coherence", "mask"):
                check(getattr(t, k), f"inputs.tracks[{i}].{k}", "file")
        else:
            check(t, f"inputs.tracks[{i}]", None)
        try:  # the files a run will read, found now (MintPy's layouts), not after hours
            tracks.append(track_files(t).velocity.resolve())
        except PermafrostError as exc:
            where = f" ({exc.path})" if exc.path else ""
            raise ConfigError(f"{exc.problem}{where}", path=path, field=f"inputs.tracks[{i}]",
                              fix=exc.fix or "give a MintPy folder, its geo/ folder or the "
                                             "files") from None
    for i, t in enumerate(tracks):
        if tracks.index(t) != i:
            raise ConfigError(f"the same track is given twice (tracks[{tracks.index(t)}] and "
                              f"tracks[{i}]): its pixels would count twice", path=path,
                              field=f"inputs.tracks[{i}]", fix="give each track once")
    check(inp.outlines, "inputs.outlines", "vector")
    for i, t in enumerate(inp.inventories):
        check(t, f"inputs.inventories[{i}]", "vector")
    check(inp.boreholes, "inputs.boreholes", "vector")
    if inp.gtnp:
        check(inp.gtnp.csv, "inputs.gtnp.csv")
        check(inp.gtnp.metadata, "inputs.gtnp.metadata")
    check(inp.validation_boreholes, "inputs.validation_boreholes", "vector")
    for i, p in enumerate(inp.priors):
        check(p.path, f"inputs.priors[{i}].path")
    if inp.regions:
        check(inp.regions.path, "inputs.regions.path", "vector")
    check(inp.mask, "inputs.mask", "vector")
    check(inp.landcover, "inputs.landcover", "file")
    # an output directory inside an input folder changes that input with every run: the
    # run would never be up to date, and would hash its own outputs as inputs
    out = cfg.pipeline.output_dir.resolve()
    folders = [("inputs.covariates", inp.covariates)] + [
        (f"inputs.tracks[{i}]", t) for i, t in enumerate(inp.tracks) if isinstance(t, Path)]
    for key, d in folders:
        if is_remote(d):
            continue
        d = d.resolve()
        if d.is_dir() and (out == d or d in out.parents):
            raise ConfigError(f"the output directory {out} is inside the input folder of "
                              f"{key} ({d})", path=path, field="pipeline.output_dir",
                              fix="choose an output_dir outside the input folders")
    if not inp.inventories and not inp.boreholes and not inp.gtnp:
        raise ConfigError("no evidence to learn from", path=path, field="inputs",
                          fix="give `inventories`, `boreholes` or `gtnp`")
    names = [p.name for p in inp.priors]
    if len(set(names)) != len(names):
        raise ConfigError("two prior maps share a name", path=path, field="inputs.priors",
                          fix="give each prior map its own `name`")
    files: dict[str, str] = {}
    for n in names:  # the agreement raster's file name (validation._safe), case-insensitive
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", n).lower()
        other = files.setdefault(stem, n)
        if other != n:
            raise ConfigError(f"the prior maps {other!r} and {n!r} would write one file "
                              f"(agreement_{stem}.tif)", path=path, field="inputs.priors",
                              fix="rename one so that the names differ in a letter or digit")


#: scenario names become directory names under output_dir: no separators, no '..'
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,63}")

#: names of entries of output_dir that a scenario directory must not shadow
_RESERVED = {"steps", "report.html", "report.json", REFERENCE}

_OPTION_SECTIONS: dict[str, type[BaseModel]] = {
    "labels": LabelsOptions, "train": TrainOptions, "predict": PredictOptions,
    "stats": StatsOptions}


def _check_scenarios(cfg: PipelineConfig, path: Path) -> None:
    available = changeable_inputs(cfg.inputs.covariates)
    if cfg.scenario_model:
        try:
            TrainOptions.model_validate({**cfg.train.model_dump(), **cfg.scenario_model})
        except ValidationError as exc:
            raise _explain(exc, path, TrainOptions, prefix=("scenario_model",)) from None
    if cfg.physical() and cfg.scenario_model and any(sc.covariates
                                                     for sc in cfg.scenarios.values()):
        log.warning("[scenario_model] is used by the cross-section scenario method only; "
                    "this pipeline's scenarios are physical (set [scenario_method] method = "
                    "\"cross-section\" to use it)")
    covariates = [n for n in available if "." not in n]  # not the coarse inputs
    for n in available:  # listed later as `features = [...]`, `--monotone NAME=-1`
        check_name(n, what="covariate", field="inputs.covariates", path=path)
    for key, feats in (("train.features", cfg.train.features),
                       ("scenario_model.features", cfg.scenario_model.get("features"))):
        for f in feats or []:
            if covariates and f not in covariates:
                near = difflib.get_close_matches(str(f), covariates, n=1, cutoff=0.5)
                raise ConfigError(f"feature {f!r} is not a covariate of the stack", path=path,
                                  field=key, fix=f"did you mean {near[0]!r}?" if near
                                  else f"covariates: {', '.join(covariates)}")
    for name, sc in cfg.scenarios.items():
        if not _SAFE_NAME.fullmatch(name):
            raise ConfigError("a scenario name must be letters, digits, '_', '-' or '.', not "
                              "starting with '.' (it names a directory under output_dir)",
                              path=path, field=f"scenarios.{name}", fix="rename the scenario")
        if name == BASELINE or name in _RESERVED:
            raise ConfigError(f"the name {name!r} is reserved", path=path,
                              field=f"scenarios.{name}", fix="rename the scenario")
        for cov, change in sc.covariates.items():
            key = f"scenarios.{name}.covariates.{cov}"
            if cov not in available:
                near = difflib.get_close_matches(cov, available, n=1, cutoff=0.5)
                fix = f"did you mean {near[0]!r}?" if near else f"covariates: {', '.join(available)}"
                raise ConfigError("changes a covariate that the stack does not have",
                                  path=path, field=key, fix=fix)
            if change.offset is None and change.scale is None and change.file is None:
                raise ConfigError("changes nothing", path=path, field=key,
                                  fix="give `offset`, `scale` or `file`")
            if change.offset is not None and not offset_bound(cov).ok(change.offset):
                b = offset_bound(cov)
                raise ConfigError(f"offset {change.offset:g} is out of bounds: "
                                  f"{b.describe('offset')} [{b.unit}]", path=path,
                                  field=f"{key}.offset", fix=f"give an offset in these bounds "
                                  f"({b.why})")
            if change.file is not None and not change.file.exists():
                raise ConfigError(f"file not found: {change.file}", path=path,
                                  field=f"{key}.file", fix="fix the path")
        if cfg.physical() and sc.covariates:
            _check_physical(cfg, name, sc, path)
        # option overrides must name existing options, with valid values
        for section, model in _OPTION_SECTIONS.items():
            overrides = getattr(sc, section)
            if not overrides:
                continue
            base = getattr(cfg, section).model_dump()
            try:
                model.model_validate({**base, **overrides})
            except ValidationError as exc:
                raise _explain(exc, path, model, prefix=("scenarios", name, section)) from None


def _check_physical(cfg: PipelineConfig, name: str, sc: Scenario, path: Path) -> None:
    """A scenario of the physical method changes one air-temperature offset, nothing else."""
    fix = ('give only `covariates.maat = { offset = dT }`, or set [scenario_method] method = '
           '"cross-section"')
    bad = [c for c, ch in sc.covariates.items()
           if ch.offset is None or ch.scale is not None or ch.file is not None
           or offset_bound(c).name != "maat_offset"]
    # options of the model (labels, train) would need a model of their own; prediction and
    # statistics options (chunk, zones, bands) do not change the warmed map's physics
    overrides = [s for s in ("labels", "train") if getattr(sc, s)]
    if bad or len(sc.covariates) > 1 or overrides:
        what = (f"covariate {bad[0]!r} by more than an air-temperature offset" if bad
                else "more than one covariate" if len(sc.covariates) > 1
                else f"[{overrides[0]}] options as well")
        raise ConfigError(f"the physical scenario method warms the baseline map by an air "
                          f"temperature offset only; this scenario changes {what}", path=path,
                          field=f"scenarios.{name}", fix=fix)


def _flatten_table_inputs(raw: dict, path: Path) -> None:
    """``boreholes = {path=..., columns={...}, crs=...}`` -> ``boreholes``,
    ``borehole_columns`` and ``borehole_crs`` (the plain-path form stays as it is)."""
    inputs = raw.get("inputs")
    if not isinstance(inputs, dict):
        return
    for key, (cols_key, crs_key) in _TABLE_INPUTS.items():
        value = inputs.get(key)
        if not isinstance(value, dict):
            continue
        try:
            table = BoreholeTable.model_validate(value)
        except ValidationError as exc:
            raise _explain(exc, path, BoreholeTable, prefix=("inputs", key)) from None
        for k in (cols_key, crs_key):
            if k in inputs:
                raise ConfigError(f"given twice: as `{k}` and inside `{key}`", path=path,
                                  field=f"inputs.{k}", fix="keep one of them")
        inputs[key] = str(table.path)
        inputs[cols_key] = table.columns.model_dump()
        if table.crs is not None:
            inputs[crs_key] = table.crs


#: scenarios in one pipeline file: planning costs about 8 ms a scenario (linear;
#: benchmarks/content_keys.py), and each is a prediction and a column of the report
MAX_SCENARIOS = 1000


@expects(path="path")
def load_pipeline(path: str | os.PathLike) -> PipelineConfig:
    """Read and fully validate a pipeline file; no work is started.

    Raises
    ------
    ConfigError
        Unreadable TOML, an unknown key (with a suggestion), a wrong type or value, a
        missing input file, or a scenario that overrides something that does not exist.
    """
    p = Path(path)
    if not p.is_file():
        raise ConfigError("pipeline file not found", path=p, fix="check the path")
    raw = read_toml(p, what="pipeline file")
    n = len(raw["scenarios"]) if isinstance(raw.get("scenarios"), dict) else 0
    if n > MAX_SCENARIOS:
        raise ConfigError(f"{n} scenarios; one pipeline file runs at most {MAX_SCENARIOS}",
                          path=p, field="scenarios",
                          fix="split them over several pipeline files (each its own output_dir)")
    _flatten_table_inputs(raw, p)
    try:
        cfg = PipelineConfig.model_validate(raw)
    except ValidationError as exc:
        raise _explain(exc, p, PipelineConfig) from None
    base = p.resolve().parent
    _resolve_paths(cfg, base, p)
    cfg.source = p.resolve()
    _check_inputs_exist(cfg, p)
    _check_scenarios(cfg, p)
    return cfg


def _copy_of(cfg: PipelineConfig) -> PipelineConfig:
    """A deep copy of the configuration that shares its (read-only) scenarios: copying them
    for each scenario made resolving every scenario quadratic in their number."""
    shallow = copy.copy(cfg)
    object.__setattr__(shallow, "scenarios", {})  # not validated again: copied as they are
    out = copy.deepcopy(shallow)
    object.__setattr__(out, "scenarios", cfg.scenarios)
    return out


def resolve_scenario(cfg: PipelineConfig, name: str) -> tuple[PipelineConfig, dict[str, CovariateChange]]:
    """The configuration of one scenario (options overridden) and its covariate changes."""
    if name == BASELINE:
        return cfg, {}
    if name == REFERENCE and cfg.scenario_model and not cfg.physical():
        out = _copy_of(cfg)
        out.train = TrainOptions.model_validate({**cfg.train.model_dump(), **cfg.scenario_model})
        return out, {}
    if name not in cfg.scenarios:
        near = difflib.get_close_matches(name, cfg.scenario_names(), n=1)
        fix = f"did you mean {near[0]!r}?" if near else f"scenarios: {', '.join(cfg.scenario_names())}"
        raise ConfigError(f"no scenario named {name!r}", path=cfg.source, field="scenarios",
                          fix=fix)
    sc = cfg.scenarios[name]
    out = _copy_of(cfg)
    for section in _OPTION_SECTIONS:
        overrides = getattr(sc, section)
        if section == "train" and sc.covariates and not cfg.physical():
            # a changed climate, space for time: the scenario model
            overrides = {**cfg.scenario_model, **overrides}
        if overrides:
            merged = {**getattr(cfg, section).model_dump(), **overrides}
            setattr(out, section, _OPTION_SECTIONS[section].model_validate(merged))
    return out, dict(sc.covariates)


def describe_scenarios(cfg: PipelineConfig) -> list[dict[str, Any]]:
    """What each scenario changes relative to the baseline, as plain records."""
    rows = [{"name": BASELINE, "description": "the configuration as written", "changes": []}]
    model_changes = [f"train.{k} = {v!r} (was {getattr(cfg.train, k)!r})"
                     for k, v in cfg.scenario_model.items() if v != getattr(cfg.train, k)]
    if cfg.physical():
        model_changes = []
    if cfg.scenario_model and not cfg.physical():
        rows.append({"name": REFERENCE, "description": "the scenario model on today's "
                     "covariates: scenario changes are measured against it",
                     "changes": list(model_changes)})
    for name, sc in cfg.scenarios.items():
        changes = list(model_changes) if sc.covariates else []
        for cov, ch in sc.covariates.items():
            if ch.file is not None:
                changes.append(f"covariate {cov} := {ch.file}")
            if ch.scale is not None:
                changes.append(f"covariate {cov} × {ch.scale:g}")
            if ch.offset is not None:
                changes.append(f"covariate {cov} {ch.offset:+g}")
        for section in _OPTION_SECTIONS:
            for key, value in getattr(sc, section).items():
                changes.append(f"{section}.{key} = {value!r} (was {getattr(getattr(cfg, section), key)!r})")
        rows.append({"name": name, "description": sc.description, "changes": changes})
    return rows


def is_method_variant(cfg: PipelineConfig, name: str) -> bool:
    """Whether a run is a *method sensitivity* run: a scenario that changes options only
    (model, features, sampling: ``train``/``labels``/``predict``/``stats``) and no
    covariate. It is compared with the baseline, in its own table (docs/pipelines.md,
    "Method sensitivity"), never with the scenario model's reference."""
    sc = cfg.scenarios.get(name) if name not in (BASELINE, REFERENCE) else None
    return sc is not None and not sc.covariates


def scenario_delta_t(cfg: PipelineConfig, name: str) -> float | None:
    """The warming [degC] a run stands for: 0 for the baseline and the reference, the
    scenario's ``delta_t``, else the offset of its only offset-changed covariate."""
    if name in (BASELINE, REFERENCE):
        return 0.0
    sc = cfg.scenarios.get(name)
    if sc is None:
        return None
    if sc.delta_t is not None:
        return float(sc.delta_t)
    offsets = [ch.offset for ch in sc.covariates.values()
               if ch.offset is not None and ch.scale is None and ch.file is None]
    return float(offsets[0]) if len(offsets) == 1 and len(sc.covariates) == 1 else None
