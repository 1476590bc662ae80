"""The bounds of every numeric option, in one table: CLI, pipeline file and library.

Each :class:`Bound` of :data:`BOUNDS` names an option the way the library spells it, the
``permafrost`` commands and flags that set it (``"predict --workers"``), the pipeline keys
that set it (``"predict.workers"``; ``*`` stands for any scenario or covariate name), its
lowest and highest value (inclusive or not), whether NaN and infinity are refused, its unit
and why the bounds are where they are.  The three front doors take their checks from here:

* the pydantic schema of :mod:`permafrost.config` builds its ``Field(ge=.., lt=..)`` with
  :meth:`Bound.field`;
* the Typer options of :mod:`permafrost.cli` get :func:`permafrost.cli._app.bounded` as
  their callback, which calls :meth:`Bound.check` while the command line is parsed (before
  any file is opened);
* the library's public functions call :func:`check_options` on their arguments.

A value outside its bounds is an :class:`~permafrost.errors.OptionError`: one line naming
the option (``--n-estimators``, ``train.n_estimators`` or ``n_estimators``), the bounds and
the reason, exit code 2 from the CLI.  ``tests/robustness/test_option_bounds.py`` tries a
value just outside each bound of each entry, through the CLI and through a pipeline file,
and checks that every numeric option of every command is in the table.

Besides numbers, this module checks the two kinds of option text that were let through:
a CRS that pyproj does not know (:func:`check_crs`), and names that are later written
into ``a=b,c=d`` lists (:func:`check_name`: scenario, covariate, prior and track names).
"""

from __future__ import annotations

import math
import operator
import os
import re
from dataclasses import dataclass
from typing import Any

from permafrost.errors import CRSError, OptionError, ParameterError

__all__ = ["Bound", "BOUNDS", "MAX_PARALLEL", "MAX_ELEVATION_BANDS", "bound", "check_options",
           "check_band_count", "check_crs", "check_name", "bound_for_cli", "bound_for_key",
           "offset_bound", "OptionNames", "option_names",
           "for_pipeline", "for_cli"]

#: most worker processes or threads of one prediction: twice the machine's CPUs (more only
#: queue on the same cores; a thousand processes each load the model and a Python)
MAX_PARALLEL: int = 2 * (os.cpu_count() or 1)

#: most elevation bands one ``stats`` run makes (``--band-width`` against the DEM's range)
MAX_ELEVATION_BANDS: int = 1000

#: a seed is an unsigned 32-bit integer: what numpy's legacy seeding, scikit-learn's
#: ``random_state`` and XGBoost's ``seed`` all accept
_SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class Bound:
    """The allowed range of one numeric option.

    ``lo``/``hi`` of None: no bound on that side.  ``lo_open``/``hi_open``: the bound itself
    is refused (``0 < x``).  ``finite``: NaN and ±inf are refused (always for ``int``).
    """

    name: str
    kind: type
    lo: float | None
    hi: float | None
    unit: str
    why: str
    lo_open: bool = False
    hi_open: bool = False
    finite: bool = True
    cli: tuple[str, ...] = ()
    toml: tuple[str, ...] = ()

    def describe(self, label: str | None = None) -> str:
        """``"0 < threshold < 1"``, ``"workers >= 1"``."""
        label = label or self.name
        out = label
        if self.lo is not None:
            out = f"{_num(self.lo)} {'<' if self.lo_open else '<='} {out}"
        if self.hi is not None:
            out = f"{out} {'<' if self.hi_open else '<='} {_num(self.hi)}"
        return out

    def ok(self, value: float) -> bool:
        """Whether a number (already of the right kind) lies inside the bounds."""
        if isinstance(value, float) and not math.isfinite(value):
            return not self.finite and not math.isnan(value) and self._inside(value)
        return self._inside(value)

    def _inside(self, v: float) -> bool:
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def check(self, value: Any, *, field: str | None = None, path=None) -> Any:
        """``value`` as an int or float, else :class:`~permafrost.errors.OptionError`."""
        field = field or self.name
        v: float | None
        if self.kind is int:
            try:
                if isinstance(value, bool):
                    raise TypeError
                v = operator.index(value)
            except TypeError:
                f = _as_float(value)
                if f is None or not math.isfinite(f) or not f.is_integer():
                    raise OptionError(f"must be a whole number, got {value!r}", path=path,
                                      field=field, fix=self._fix()) from None
                v = int(f)
        else:
            v = _as_float(value)
            if v is None:
                raise OptionError(f"must be a number, got {value!r}", path=path, field=field,
                                  fix=self._fix())
        if not self.ok(v):
            what = "NaN" if isinstance(v, float) and math.isnan(v) else _num(v)
            raise OptionError(f"{what} is out of bounds: {self.describe()}"
                              f"{'' if self.unit == '-' else f' [{self.unit}]'}", path=path,
                              field=field, fix=self._fix())
        return v

    def _fix(self) -> str:
        return f"give a value in these bounds ({self.why})"

    def field(self, default: Any = ..., **kwargs):
        """A pydantic ``Field`` with these bounds (``ge``/``gt``, ``le``/``lt``, no NaN)."""
        from pydantic import Field

        b: dict[str, Any] = {}
        if self.lo is not None:
            b["gt" if self.lo_open else "ge"] = self.kind(self.lo)
        if self.hi is not None:
            b["lt" if self.hi_open else "le"] = self.kind(self.hi)
        if self.kind is float:
            b["allow_inf_nan"] = not self.finite
        return Field(default, **b, **kwargs)


def _num(v: float) -> str:
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e15:
        return str(int(v)) if abs(v) >= 1e4 or v == 0 else f"{v:g}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _as_float(value: Any) -> float | None:
    if isinstance(value, (bool, str, bytes)) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_KIN = "see docs/kinematics.md"

#: every numeric option of the CLI, the pipeline file and the public functions
BOUNDS: tuple[Bound, ...] = (
    # ---- shared
    Bound("seed", int, 0, _SEED_MAX, "-",
          "an unsigned 32-bit integer: what numpy, scikit-learn and XGBoost take as a seed",
          cli=("train --seed", "validate --seed", "labels --seed"), toml=("pipeline.seed",)),
    # ---- labels
    Bound("spacing_m", float, 1.0, 10_000.0, "m",
          "interior points closer than 1 m repeat one DEM cell (and a tiny spacing makes "
          "billions of points); wider than 10 km leaves a rock glacier without points",
          cli=("labels --spacing",), toml=("labels.spacing_m",)),
    Bound("rock_glacier_weight", float, 0.0, 1000.0, "-",
          "a sample weight: 0 or less drops the rock glaciers, and weights are relative, so "
          "more than 1000 times the other source is a typo", lo_open=True,
          cli=("labels --rock-glacier-weight",), toml=("labels.rock_glacier_weight",)),
    Bound("borehole_weight", float, 0.0, 1000.0, "-",
          "a sample weight: 0 or less drops the boreholes, and weights are relative, so more "
          "than 1000 times the other source is a typo", lo_open=True,
          cli=("labels --borehole-weight",), toml=("labels.borehole_weight",)),
    # ---- train
    Bound("folds", int, 2, 20, "-",
          "cross-validation needs 2 folds; beyond 20 the spatial blocks of a region become "
          "too few per fold to hold both classes",
          cli=("train --folds",), toml=("train.folds", "scenario_model.folds")),
    Bound("block_size", float, 0.0, 1_000_000.0, "m",
          "the side of a spatial CV block: positive, and a block wider than 1000 km holds a "
          "whole mountain region (no spatial cross-validation left)", lo_open=True,
          cli=("train --block-size", "labels --block-size"),
          toml=("train.block_size_m", "scenario_model.block_size_m")),
    Bound("n_estimators", int, 1, 100_000, "-",
          "a model needs at least one tree; beyond 100 000 trees training takes hours and "
          "gains nothing at the learning rate used",
          cli=("train --n-estimators",),
          toml=("train.n_estimators", "scenario_model.n_estimators")),
    Bound("prevalence", float, 0.0, 1.0, "-",
          "a share of the landscape, strictly between 0 and 1 (0 or 1 makes the prior shift "
          "infinite)", lo_open=True, hi_open=True,
          toml=("train.prevalence", "scenario_model.prevalence")),
    # ---- predict
    Bound("chunk", int, 16, 16_384, "pixels",
          "a block side: below 16 pixels the per-block overhead dominates; memory grows "
          "with its square (16 384 pixels: 1 GB per covariate)",
          cli=("predict --chunk",), toml=("predict.chunk",)),
    Bound("workers", int, 1, MAX_PARALLEL, "processes",
          f"at least one; at most twice this machine's CPUs ({MAX_PARALLEL}): each worker "
          "is a process that loads the model, and more only queue on the same cores",
          cli=("predict --workers",), toml=("predict.workers",)),
    Bound("threads", int, 1, MAX_PARALLEL, "threads",
          f"at least one; at most twice this machine's CPUs ({MAX_PARALLEL}): more threads "
          "only hold more blocks in memory",
          cli=("predict --threads",)),
    # ---- stats
    Bound("band_width", float, 1.0, 10_000.0, "m",
          "an elevation band: finer than 1 m is below any DEM's accuracy, wider than 10 km "
          f"is one band; a DEM range that gives more than {MAX_ELEVATION_BANDS} bands is "
          "also refused",
          cli=("stats --band-width",), toml=("stats.band_width_m",)),
    Bound("block_rows", int, 1, 1_048_576, "rows",
          "rows of a stripe: at least one; 2**20 rows already exceed any raster's height",
          cli=("stats --block-rows",)),
    # ---- validate
    Bound("threshold", float, 0.0, 1.0, "-",
          "a PZI threshold: at 0 or 1 every cell, or none, is permafrost", lo_open=True,
          hi_open=True, cli=("validate --threshold",)),
    Bound("n_bins", int, 2, 100, "-",
          "a reliability curve needs 2 bins; more than 100 leave most bins empty with a few "
          "hundred boreholes", cli=("validate --bins",)),
    Bound("bootstrap_resamples", int, 1000, 1_000_000, "-",
          "Efron & Tibshirani (1993) recommend at least 1000 resamples for percentile "
          "intervals; beyond a million the Monte Carlo error no longer shrinks visibly",
          cli=("validate --bootstrap",), toml=("validate.bootstrap_resamples",)),
    Bound("ci_level", float, 0.5, 0.999, "-",
          "a confidence level: below 0.5 the interval excludes the estimate's own half; "
          "above 0.999 the percentile limits rest on a handful of resamples",
          cli=("validate --ci-level",), toml=("validate.ci_level",)),
    Bound("site_m", float, 0.0, 100_000.0, "m",
          "0 makes each borehole its own site; a site wider than 100 km joins campaigns",
          cli=("validate --site-m",)),
    Bound("holdout_fraction", float, 0.0, 1.0, "-",
          "a share of the boreholes: 0 holds none out, 1 would train on none", hi_open=True,
          cli=("labels --holdout-fraction",), toml=("validate.holdout_fraction",)),
    Bound("holdout_block_m", float, 0.0, 1_000_000.0, "m",
          "the side of a held-out block: positive, and wider than 1000 km holds out a whole "
          "region", lo_open=True, cli=("labels --holdout-block-m",),
          toml=("validate.holdout_block_m",)),
    Bound("prior_threshold", float, 0.0, 1.0, "-",
          "a continuous prior map is a probability or an index in 0..1",
          toml=("inputs.priors[*].threshold",)),
    # ---- scenarios
    Bound("offset", float, -100.0, 100.0, "the covariate's unit",
          "a scenario changes a covariate within its physical range: a hundred of any unit "
          "(degC, W m-2, mm, m) is beyond any climate scenario and 1e308 overflows the "
          "float32 stack; a MAAT offset is bounded more tightly (maat_offset)",
          toml=("scenarios.*.covariates.*.offset",)),
    Bound("maat_offset", float, -30.0, 30.0, "degC",
          "an air temperature change: IPCC AR6 projects up to about +6 degC by 2100 "
          "globally (+10 in the Arctic); a few tens of degrees is the most any scenario means",
          toml=("scenarios.*.covariates.maat*.offset",)),
    Bound("scale", float, 0.0, 10.0, "-",
          "a factor on a covariate: 0 or less erases or reverses it, more than 10 is a unit "
          "mistake", lo_open=True, toml=("scenarios.*.covariates.*.scale",)),
    Bound("delta_t", float, -30.0, 30.0, "degC",
          "the warming a scenario stands for, as maat_offset",
          toml=("scenarios.*.delta_t",)),
    Bound("air_amplitude", float, 0.5, 40.0, "degC",
          "half the annual range of monthly mean air temperature: a few degrees in oceanic "
          "tropics, about 30 in Siberia; 40 is beyond any climate on Earth",
          toml=("scenario_method.amplitude_c",)),
    Bound("ground_spread", float, 0.05, 10.0, "degC",
          "the spread of ground temperature about the value a PZI implies: below 0.05 degC "
          "the PZI would be a step, above 10 degC it says nothing",
          toml=("scenario_method.sigma_c",)),
    Bound("min_magt_records", int, 3, 100_000, "-",
          "records to fit a spread from: a slope needs at least 3",
          toml=("scenario_method.min_magt_records",)),
    Bound("sensitivity_factor", float, 1.0, 100.0, "-",
          "a ratio of two sensitivities: 1 warns at any difference",
          toml=("scenario_method.warn_factor",)),
    # ---- kinematics (permafrost.kinematics.KinematicsConfig)
    Bound("min_sensitivity", float, 0.0, 1.0, "-",
          f"|C| is a cosine, below 1; {_KIN}", hi_open=True,
          cli=("kinematics --min-sensitivity",), toml=("kinematics.sensitivity_cut",)),
    Bound("min_slope_deg", float, 0.0, 90.0, "deg",
          f"a slope angle; {_KIN}", hi_open=True, cli=("kinematics --min-slope",)),
    Bound("min_coherence", float, 0.0, 1.0, "-",
          f"temporal coherence lies in 0..1; {_KIN}",
          cli=("kinematics --min-coherence",), toml=("kinematics.min_coherence",)),
    Bound("smooth_sigma_px", float, 0.0, 100.0, "pixels",
          f"0 is no smoothing; beyond 100 pixels the DEM is flat; {_KIN}",
          cli=("kinematics --smooth",)),
    Bound("active_min_m_yr", float, 0.0, 100.0, "m/yr",
          f"a velocity: positive, and no rock glacier moves 100 m a year; {_KIN}",
          lo_open=True, cli=("kinematics --active-min",)),
    Bound("transitional_min_m_yr", float, 0.0, 100.0, "m/yr",
          f"a velocity: positive, and below active_min_m_yr; {_KIN}", lo_open=True,
          cli=("kinematics --transitional-min",)),
    Bound("los_noise_floor_m_yr", float, 0.0, 1.0, "m/yr",
          f"an InSAR noise floor: mm to cm a year, never a metre; {_KIN}",
          cli=("kinematics --noise-floor",)),
    Bound("k_sigma", float, 0.0, 10.0, "-",
          f"a significance multiplier: positive, and 10 sigma detects nothing; {_KIN}",
          lo_open=True, cli=("kinematics --k-sigma",)),
    Bound("min_valid_pixels", int, 1, 1_000_000, "pixels",
          f"at least one pixel; {_KIN}", cli=("kinematics --min-valid-pixels",)),
    Bound("min_valid_fraction", float, 0.0, 1.0, "-",
          f"a fraction; {_KIN}", cli=("kinematics --min-valid-fraction",)),
    # ---- serve
    Bound("port", int, 0, 65_535, "-",
          "a TCP port: 0 lets the system pick a free one; 65535 is the largest",
          cli=("serve --port",)),
)

_BY_NAME = {b.name: b for b in BOUNDS}
assert len(_BY_NAME) == len(BOUNDS), "two entries of BOUNDS share a name"


def bound(name: str) -> Bound:
    """The entry of :data:`BOUNDS` named ``name``."""
    return _BY_NAME[name]


def bound_for_cli(command: str, flag: str) -> Bound | None:
    """The entry that bounds ``permafrost COMMAND FLAG`` (None: none does)."""
    key = f"{command} {flag}"
    return next((b for b in BOUNDS if key in b.cli), None)


def bound_for_key(key: str) -> Bound | None:
    """The entry that bounds a pipeline key such as ``train.n_estimators`` or
    ``scenarios.plus1.covariates.maat.offset`` (the most specific pattern; None: none)."""
    hits = [(len(pattern.replace("*", "")), b) for b in BOUNDS for pattern in b.toml
            if re.fullmatch(re.escape(pattern).replace(r"\*", "[^.]*"), key)]
    return max(hits, key=lambda h: h[0])[1] if hits else None


@dataclass(frozen=True)
class OptionNames:
    """The names one library parameter goes by: its pipeline keys and its CLI flags
    (``"train --block-size"``: command and flag)."""

    param: str
    toml: tuple[str, ...] = ()
    cli: tuple[str, ...] = ()

    def flag(self, command: str | None) -> str | None:
        """The flag of ``permafrost COMMAND`` that sets the parameter (None: it has none;
        no command: the first command's flag)."""
        for spec in self.cli:
            cmd, _, flag = spec.partition(" ")
            if command is None or cmd == command:
                return flag
        return None


#: options that are not numbers (no entry in BOUNDS): the pipeline keys and the flags that
#: set them; the numeric ones take theirs from BOUNDS
_TEXT_OPTIONS: tuple[OptionNames, ...] = (
    OptionNames("region_field", ("inputs.regions.field",), ("stats --region-field",)),
    OptionNames("regions", ("inputs.regions.path",), ("stats --regions",)),
    OptionNames("activity_column", ("labels.activity_column",),
                ("labels --activity-column", "report --activity-column")),
    OptionNames("features", ("train.features", "scenario_model.features"),
                ("train --features", "labels --features")),
    OptionNames("monotone", ("train.monotone", "scenario_model.monotone"),
                ("train --monotone",)),
    OptionNames("surface", ("train.surface",), ("train --surface",)),
    OptionNames("debris_classes", ("train.debris_classes",), ("train --debris-class",)),
    OptionNames("model", ("train.model", "scenario_model.model"), ("train --model",)),
    OptionNames("device", ("train.device", "predict.device"),
                ("train --device", "predict --device")),
    OptionNames("dem", ("inputs.dem",), ("labels --dem", "kinematics --dem", "stats --dem",
                                         "report --dem")),
    OptionNames("sampling", ("labels.sampling",), ("labels --sampling",)),
    OptionNames("covariates", ("inputs.covariates",),
                ("train --covariates", "predict --covariates", "labels --covariates")),
    OptionNames("boreholes", ("inputs.boreholes",),
                ("labels --boreholes", "validate --boreholes")),
    OptionNames("priors", ("inputs.priors",), ("validate --prior",)),
    OptionNames("scheduler", (), ("predict --scheduler",)),
    OptionNames("outside", (), ("labels --outside",)),
    OptionNames("borehole_columns", ("inputs.borehole_columns",),
                ("labels --borehole-column", "validate --borehole-column")),
    OptionNames("inventories", ("inputs.inventories",), ("labels --inventory",)),
    OptionNames("tracks", ("inputs.tracks",), ("labels --track", "kinematics --track")),
    OptionNames("outlines", ("inputs.outlines",), ("labels --outlines", "kinematics --outlines")),
    # the kinematics step's output, which the pipeline hands to its labels step
    OptionNames("kinematics", (), ("labels --kinematics",)),
    OptionNames("id_column", (), ("labels --id-column",)),
    OptionNames("landcover", ("inputs.landcover",), ("predict --landcover",)),
    OptionNames("permos_coords", (), ("labels --permos-coords",)),
)


def _all_names() -> dict[str, OptionNames]:
    out = {b.name: OptionNames(b.name, b.toml, b.cli) for b in BOUNDS}
    for o in _TEXT_OPTIONS:
        assert o.param not in out, f"{o.param} is both numeric and text"
        out[o.param] = o
    return out


_NAMES = _all_names()


def option_names(param: str) -> OptionNames:
    """The pipeline keys and CLI flags of the library parameter ``param``: the one mapping
    the pipeline and the CLI translate a :class:`~permafrost.errors.ParameterError` with
    (numeric options from :data:`BOUNDS`, the others from a short table beside it).  An
    unknown parameter has neither (it keeps its own name)."""
    return _NAMES.get(param) or OptionNames(param)


def for_pipeline(exc: ParameterError, pipeline_file) -> ParameterError:
    """A library :class:`~permafrost.errors.ParameterError` as a pipeline user reads it: the
    TOML keys (:func:`option_names`) and the pipeline file; the data file, if any, moves
    into the problem.  Translated once: an error already translated is returned as it is."""
    if exc.audience != "library":
        return exc
    names = {p: option_names(p).toml[0] for p in exc.params() if option_names(p).toml}
    problem = exc.problem if exc.data_path is None else f"{exc.problem} ({exc.data_path})"
    return exc.translated(names, audience="pipeline", problem=problem,
                          path=pipeline_file if pipeline_file is not None else exc.data_path)


def for_cli(exc: ParameterError, command: str | None) -> ParameterError:
    """A library :class:`~permafrost.errors.ParameterError` as a user of ``permafrost
    COMMAND`` reads it: the command's flags (a parameter the command has no flag for keeps
    its name: advice names only options the command has)."""
    if exc.audience != "library":
        return exc
    names = {}
    for p in exc.params():
        flag = option_names(p).flag(command)
        if flag:
            names[p] = flag
    return exc.translated(names, audience="cli", path=exc.data_path)


def check_options(*, path=None, **values: Any) -> dict[str, Any]:
    """Check library arguments by their names (None: not given); returns them converted.

    Raises
    ------
    OptionError
        A value outside its bounds, naming the argument.
    """
    return {k: (v if v is None else _BY_NAME[k].check(v, field=k, path=path))
            for k, v in values.items()}


def offset_bound(covariate: str) -> Bound:
    """The bound of a scenario offset of this covariate: MAAT (``maat``, ``maat_*``, and
    the coarse grid of a downscaled MAAT, ``maat.coarse``) in degC, any other in its unit."""
    base = covariate.split(".")[0].lower()
    coarse_elev = covariate.lower().endswith(".coarse_elevation")
    return _BY_NAME["maat_offset" if base.startswith("maat") and not coarse_elev else "offset"]


def check_band_count(lo: float, hi: float, band_width: float, *, path=None,
                     field: str = "band_width") -> int:
    """The number of elevation bands of ``band_width`` between the DEM's lowest and highest
    elevation ``lo``..``hi`` [m], else :class:`~permafrost.errors.OptionError` when it
    exceeds :data:`MAX_ELEVATION_BANDS` (each band is a row of the tables and the JSON)."""
    n = int(math.floor(hi / band_width) - math.floor(lo / band_width)) + 1
    if n > MAX_ELEVATION_BANDS:
        need = (hi - lo) / (MAX_ELEVATION_BANDS - 1)
        raise OptionError(f"bands of {band_width:g} m over the DEM's {lo:.0f} to {hi:.0f} m "
                          f"make {n} elevation bands, more than {MAX_ELEVATION_BANDS}",
                          path=path, field=field,
                          fix=f"give a band width of at least {math.ceil(need)} m")
    return n


# ----------------------------------------------------------------------------- text options


def check_crs(value: Any, *, field: str, path=None) -> str:
    """A CRS as given (``EPSG:32647``, a WKT or PROJ string) when pyproj knows it, else a
    one-line :class:`~permafrost.errors.CRSError` naming the option."""
    from pyproj import CRS
    from pyproj.exceptions import CRSError as _ProjError

    text = str(value).strip()
    m = re.fullmatch(r"(?i)epsg:\s*(-?\d+)", text)
    if m and not 1024 <= int(m.group(1)) <= 32767:  # the EPSG dataset's code range
        raise CRSError(f"EPSG code {m.group(1)} is out of range (EPSG codes are 1024-32767)",
                       path=path, field=field, fix="give a known code, e.g. EPSG:32647")
    try:
        CRS.from_user_input(text)
    except (_ProjError, ValueError, TypeError):
        raise CRSError(f"unknown CRS {text[:80]!r}", path=path, field=field,
                       fix="give an EPSG code that pyproj knows (e.g. EPSG:32647 or "
                           "EPSG:4326), or a WKT/PROJ string") from None
    return text


#: characters a name may not hold: names are written into ``a=b,c=d`` lists (track specs,
#: --monotone FEATURE=-1, --features a,b, --prior NAME=FILE, JSON tags key=value,...)
_NAME_BAD = re.compile(r"[,=]")


def check_name(name: Any, *, what: str, field: str, path=None) -> str:
    """A scenario, covariate, prior or track name without ``,`` or ``=``, else a one-line
    :class:`~permafrost.errors.OptionError`."""
    text = str(name)
    bad = sorted(set(_NAME_BAD.findall(text)))
    if bad:
        raise OptionError(f"the {what} name {text!r} holds {' and '.join(map(repr, bad))}, "
                          "which lists of NAME=VALUE pairs use as separators", path=path,
                          field=field, fix=f"rename the {what} (letters, digits, '_', '-', '.')")
    return text
