"""``permafrost init``: a pipeline file drafted from a folder of a user's data.

The folder is read with the readers of ``permafrost inspect``
(:func:`permafrost.io.catalog.describe_directory` and
:func:`permafrost.io.catalog.describe_tracks`; borehole tables through
:func:`permafrost.io.boreholes.read_presence_table`, GTN-P through
:func:`permafrost.io.boreholes.read_gtnp`), so every input the draft names is one the
pipeline can read.  Each dataset gets a *role* (DEM, covariate, land cover, prior map,
inventory, boreholes, mask, regions, MintPy track, coarse climate) from its kind, its name,
its tags and its columns (:func:`survey_directory`); where the evidence leaves a choice
(two elevation rasters, two borehole tables, a polygon layer that could be a mask or the
regions) the draft says so in a ``# DECIDE:`` comment.

Two files are written (:func:`init_pipeline`): the pipeline file and, beside it, a covariate
stack file (docs/method.md, "Stack file") on the DEM's grid, because a user's rasters seldom
share one folder and one grid.  The pipeline file is validated by
:func:`permafrost.config.load_pipeline` before it takes its name; nothing is overwritten and
nothing is written inside the data folder unless the output path says so.

Spatial-CV blocks (:func:`choose_blocks`): the largest round block side for which the
evidence points (one per inventory feature, one per borehole) fall into at least
``3 x folds`` CV units, counted with the package's one blocking rule
(:func:`permafrost.cv.block_ids`, :func:`permafrost.cv.merge_groups` in the metric frame of
:func:`permafrost.cv.metric_xy`), so that each fold holds about three blocks (Roberts et al.
2017; Valavi et al. 2019: blocks as large as the data allow, enough of them per fold).
"""

from __future__ import annotations

import json
import logging
import os
import re
import textwrap
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pandas.api.types import is_object_dtype, is_string_dtype
from pandas.errors import DtypeWarning
from pyproj import CRS, Transformer

from permafrost.applicability import parse_class_table
from permafrost.config import load_pipeline
from permafrost.cv import block_ids, merge_groups, metric_xy
from permafrost.defaults import AIR_AMPLITUDE_C
from permafrost.errors import ConfigError, CRSError, InputFileError, OutputError, PermafrostError
from permafrost.io.boreholes import read_gtnp, read_presence_table
from permafrost.io.catalog import describe_directory, describe_tracks
from permafrost.io.rasters import check_raster, raster_classes, role_of
from permafrost.io.results import load_json
from permafrost.io.vectors import read_vector
from permafrost.labels.activity import ACTIVITY_LABELS
from permafrost.workflows.covariates import changeable_inputs

__all__ = ["Found", "Survey", "survey_directory", "choose_blocks", "render_pipeline",
           "init_pipeline", "InitResult", "BLOCK_SIDES_M", "BLOCKS_PER_FOLD",
           "SCENARIO_WARMING_C"]

log = logging.getLogger(__name__)

#: candidate block sides [m], largest first: round numbers a reader can check on a map
BLOCK_SIDES_M = (50_000.0, 20_000.0, 10_000.0, 5_000.0, 2_000.0, 1_000.0, 500.0)
#: CV units wanted per fold [-]: about three blocks per fold keep each fold's test set spread
#: over the region rather than one patch (Roberts et al. 2017, "Blocking")
BLOCKS_PER_FOLD = 3
#: folds tried, most first [-] (5, the package's default, down to 3)
FOLDS_TRIED = (5, 4, 3)
#: the warming scenarios of the draft [degC]: the demo's +1/+2/+4 degC (docs/pipelines.md)
SCENARIO_WARMING_C = (1.0, 2.0, 4.0)

_POLYGONS = {"Polygon", "MultiPolygon"}
_POINTS = {"Point", "MultiPoint"}
_MASK_WORDS = re.compile(r"\b(glacier|lake|water|ice|mask|reservoir|snow|firn)s?\b", re.I)
_REGION_FIELDS = ("name", "basin", "region", "catchment", "unit", "zone", "label")
_PRIOR_WORDS = re.compile(r"prior|permafrost|pzi|pf_?map|zonation", re.I)
_LANDCOVER_WORDS = re.compile(r"land_?cover|landcover|lulc|surface|lc\b|cover", re.I)
_PISR_WORDS = re.compile(r"pisr|radiation|solar|insolation", re.I)
_GTNP_COLUMNS = {"date", "depth", "temperature"}
#: the files a covariate stack takes (the readers of permafrost.io.rasters)
_TEMPERATURE_UNITS = {"k", "kelvin", "degc", "deg_c", "celsius", "degrees_celsius", "°c", "c"}


@dataclass
class Found:
    """One dataset of the folder and the role the draft gives it.

    ``role`` is one of ``dem``, ``elevation_coarse``, ``maat``, ``maat_coarse``,
    ``covariate``, ``landcover``, ``prior``, ``inventory``, ``boreholes``,
    ``validation_boreholes``, ``gtnp_csv``,
    ``gtnp_metadata``, ``mask``, ``regions``, ``climate_netcdf`` or ``unused``.
    """

    path: Path
    kind: str
    role: str
    crs: str | None = None
    details: dict = field(default_factory=dict)
    #: why this role (shown as a comment)
    why: str = ""
    #: what a person must decide (shown as a ``# DECIDE:`` comment)
    decide: list[str] = field(default_factory=list)


@dataclass
class Survey:
    """Every dataset of a folder with its role, the MintPy tracks and what was skipped."""

    root: Path
    found: list[Found]
    tracks: list[dict]
    skipped: list[str]

    def of(self, role: str) -> list[Found]:
        return [f for f in self.found if f.role == role]


@dataclass
class InitResult:
    pipeline: Path
    stack: Path
    survey: Survey
    block_size_m: float | None
    folds: int
    block_rule: str


# --------------------------------------------------------------------------------------
# roles
# --------------------------------------------------------------------------------------
def _res(f: Found) -> float:
    r = f.details.get("resolution") or [np.inf]
    return float(abs(r[0]))


def _raster_role(s, decide: list[str]) -> tuple[str, str]:
    p = Path(s.path)
    stem = p.stem
    info = raster_classes(p, 1)
    integer = np.dtype(info.dtype).kind in "iu"
    classes = parse_class_table(_class_tag(p))
    if classes and integer and any("permafrost" in n.lower() for n in classes.values()):
        return "prior", "an integer class map whose classes name permafrost"
    if info.categorical:
        return "landcover", "a categorical raster (kind=categorical or a class table)"
    if integer and _LANDCOVER_WORDS.search(stem):
        decide.append("an integer raster named like a land cover without a class table: "
                      "set kind = \"categorical\" and its classes in the stack file if it is one")
    role = _role_by_name(stem)
    if role == "probability" or (_PRIOR_WORDS.search(stem) and not role):
        return "prior", "a continuous raster named like a permafrost map (PZI/prior)"
    if role == "elevation":
        return "dem", f"named like an elevation ({stem!r})"
    if role == "maat":
        return "maat", f"named like a mean annual air temperature ({stem!r})"
    return "covariate", "a continuous raster (a covariate)"


def _role_by_name(stem: str) -> str | None:
    """The role the name implies (:func:`permafrost.io.rasters.role_of`), of the whole stem
    or else of one of its ``_``/``-`` separated words (``era_maat_coarse`` is a MAAT)."""
    return role_of(stem) or next((r for w in re.split(r"[_\-\s.]+", stem)
                                  if (r := role_of(w))), None)


def _class_tag(p: Path) -> str:
    """The raster's class table: declared (:func:`raster_classes`), else a ``classes`` tag
    on a raster not declared categorical (a class map such as a prior survey map)."""
    info = raster_classes(p, 1)
    return info.classes or str(check_raster(p, band=1).tags.get("classes") or "")


def _activity_column(gdf) -> str | None:
    """The column whose values are activity classes (ACTIVITY_LABELS), by name first."""
    cols = [c for c in gdf.columns if c != gdf.geometry.name]
    named = [c for c in cols if str(c).lower() == "activity"]
    for c in named + [c for c in cols if c not in named]:
        vals = gdf[c].dropna().astype(str).str.strip().str.lower()
        if len(vals) and vals.isin(list(ACTIVITY_LABELS)).mean() >= 0.9:
            return str(c)
    return None


def _vector_role(s, decide: list[str]) -> tuple[str, str, dict]:
    p = Path(s.path)
    gdf = read_vector(p)
    types = set(gdf.geom_type.dropna())
    extra: dict = {}
    act = _activity_column(gdf)
    if act is not None:
        extra["activity_column"] = act
        extra["points"] = _points_4326(gdf.representative_point(), gdf.crs)
        return "inventory", f"features with an activity column ({act!r})", extra
    if types and types <= _POINTS:
        try:
            tab = read_presence_table(p)
        except PermafrostError as exc:
            return "unused", f"points that are neither an inventory nor boreholes ({exc.problem})", extra
        extra["columns"] = dict(tab.attrs.get("columns", {}))
        extra["points"] = _points_4326(tab.geometry, tab.crs)
        return "boreholes", "points with a presence or MAGT column", extra
    if types and types <= _POLYGONS | {"GeometryCollection"}:
        text_cols = [str(c) for c in gdf.columns if c != gdf.geometry.name
                     and (is_string_dtype(gdf[c]) or is_object_dtype(gdf[c]))]
        words = " ".join([p.stem.replace("_", " ")] + [str(v) for c in text_cols
                                     for v in gdf[c].dropna().astype(str).unique()[:50]])
        if _MASK_WORDS.search(words):
            return "mask", "polygons of glaciers, lakes or water (masked out of the map)", extra
        fields = [c for c in text_cols if gdf[c].is_unique and gdf[c].notna().all()]
        pick = next((c for w in _REGION_FIELDS for c in fields if w in c.lower()),
                    fields[0] if fields else None)
        if pick is None:
            return "unused", "polygons without a name column (regions need one)", extra
        extra["field"] = pick
        if len(fields) > 1:
            decide.append(f"the region name column: {pick!r} of {', '.join(map(repr, fields))}")
        return "regions", f"polygons with a unique name column ({pick!r}): the regions of the statistics", extra
    return "unused", f"geometries {', '.join(sorted(types)) or 'none'} (no role)", extra


def _points_4326(geoms, crs) -> np.ndarray:
    """(n, 2) lon/lat of points [deg]."""
    x = np.asarray(geoms.x, float)
    y = np.asarray(geoms.y, float)
    if crs is not None and not CRS.from_user_input(crs).equals(CRS.from_epsg(4326)):
        x, y = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(x, y)
    return np.column_stack([x, y])


def _table_role(s, crs_guess) -> tuple[str, str, dict]:
    p = Path(s.path)
    cols = {c.strip().lower() for c in s.details.get("columns", [])}
    if _GTNP_COLUMNS <= cols:
        return "gtnp_csv", "a long table of ground temperatures (date, depth, temperature: GTN-P)", {}
    extra: dict = {}
    try:
        tab = read_presence_table(p)
    except CRSError as exc:  # x/y columns, no CRS: the DEM's, if it is projected
        if crs_guess is None:
            return "unused", (f"{exc.problem}: no projected DEM whose CRS they could be in; "
                              "give boreholes = {path, crs} by hand"), extra
        try:
            tab = read_presence_table(p, crs=crs_guess)
        except PermafrostError as exc2:
            return "unused", f"not a borehole table ({exc2.problem})", extra
        extra["crs"] = crs_guess
    except PermafrostError as exc:
        return "unused", f"not a borehole table ({exc.problem})", extra
    extra["columns"] = dict(tab.attrs.get("columns", {}))
    extra["points"] = _points_4326(tab.geometry, tab.crs)
    return "boreholes", "a table of boreholes with a presence or MAGT column", extra


def _json_role(s) -> tuple[str, str]:
    obj = load_json(s.path, fix="give valid JSON", error=InputFileError)
    recs = obj if isinstance(obj, list) else [obj]
    if recs and all(isinstance(r, dict) and isinstance(r.get("borehole"), dict)
                    and "location" in r["borehole"] for r in recs):
        return "gtnp_metadata", "GTN-P dataset records with borehole locations"
    return "unused", "JSON that is not GTN-P metadata"


def _netcdf_temperature(s) -> str | None:
    for name, v in (s.details.get("variables") or {}).items():
        units = str(v.get("units") or "").strip().lower().replace(" ", "_")
        if units in _TEMPERATURE_UNITS:
            return name
    return None


def survey_directory(directory: str | os.PathLike, *, exclude=()) -> Survey:
    """Every dataset under ``directory`` with its role (see :class:`Found`).

    Read with the readers of ``permafrost inspect``; an unreadable file, a file inside a
    MintPy track (read as the track) and files under ``exclude`` are not given a role.
    """
    root = Path(directory)
    with warnings.catch_warnings():  # pandas' guess at a mixed column: not about the data
        warnings.simplefilter("ignore", DtypeWarning)
        summaries, skipped = describe_directory(root)
    tracks = describe_tracks(root)
    track_dirs = {Path(t["folder"]).resolve() for t in tracks}
    exclude = [Path(e).resolve() for e in exclude]
    found: list[Found] = []
    # the CRS of x/y columns without one: the finest projected elevation raster's
    dems = sorted((s for s in summaries if s.kind == "raster" and not s.error and s.crs
                   and _role_by_name(Path(s.path).stem) == "elevation"
                   and s.crs.startswith("EPSG:")
                   and not CRS.from_user_input(s.crs).is_geographic),
                  key=lambda s: abs(s.details["resolution"][0]))
    crs_guess = dems[0].crs if dems else None
    for s in summaries:
        p = Path(s.path)
        rp = p.resolve()
        if any(rp == e or e in rp.parents for e in exclude):
            continue
        if s.error:
            found.append(Found(p, "unreadable", "unused", why=s.error))
            continue
        if s.kind.startswith("mintpy") or any(d in rp.parents for d in track_dirs):
            continue
        f = Found(p, s.kind, "unused", crs=s.crs, details=dict(s.details))
        f.details["bounds"] = s.bounds
        if s.kind == "raster":
            f.role, f.why = _raster_role(s, f.decide)
        elif s.kind == "vector":
            f.role, f.why, extra = _vector_role(s, f.decide)
            f.details.update(extra)
        elif s.kind == "table":
            f.role, f.why, extra = _table_role(s, crs_guess)
            f.details.update(extra)
        elif s.kind == "json":
            f.role, f.why = _json_role(s)
        elif s.kind == "netcdf":
            var = _netcdf_temperature(s)
            if var:
                f.role, f.why = "climate_netcdf", f"a NetCDF climate grid with a temperature ({var!r})"
                f.details["variable"] = var
            else:
                f.why = "NetCDF without an air-temperature variable"
        found.append(f)
    survey = Survey(root=root, found=found, tracks=tracks, skipped=skipped)
    _settle(survey)
    return survey


def _settle(sv: Survey) -> None:
    """Choices between datasets of one role: the DEM (the finest elevation raster), fine
    against coarse MAAT and elevation, the land cover, the borehole tables."""
    dems = sorted(sv.of("dem"), key=_res)
    if dems:
        dem = dems[0]
        for other in dems[1:]:
            if _res(other) > 2 * _res(dem):
                other.role, other.why = ("elevation_coarse", "an elevation raster coarser "
                                         "than the DEM: the cell elevations of the coarse climate")
            else:
                other.role = "covariate"
                other.why = "a second elevation raster at the DEM's resolution"
                dem.decide.append(f"two elevation rasters at one resolution: {dem.path.name} "
                                  f"is the DEM, {other.path.name} a covariate; swap if wrong")
        fine = _res(dem)
        for m in sv.of("maat"):
            if _res(m) > 5 * fine:
                m.role, m.why = "maat_coarse", "a MAAT grid far coarser than the DEM (coarse climate)"
        for c in sv.of("covariate"):
            if _res(c) > 5 * fine:
                c.decide.append(f"{_res(c) / fine:.0f} times coarser than the DEM: bilinear "
                                "to the DEM grid; drop it if it is not a model covariate")
    else:
        for m in sv.of("maat"):
            m.decide.append("no DEM found: the stack's grid is this raster's")
    fine_maat = sv.of("maat")
    if len(fine_maat) > 1:
        fine_maat[0].decide.append("several MAAT rasters: "
                                   f"{', '.join(m.path.name for m in fine_maat)}; keep one")
        for m in fine_maat[1:]:
            m.role = "covariate"
    lcs = sv.of("landcover")
    if len(lcs) > 1:
        named = [f for f in lcs if _LANDCOVER_WORDS.search(f.path.stem)] or lcs
        main = sorted(named, key=_res)[0]
        for f in lcs:
            if f is not main:
                f.role, f.why = "unused", "a second categorical raster (not used)"
                main.decide.append(f"two categorical rasters: {main.path.name} is the land "
                                   f"cover, {f.path.name} is not used; swap if wrong")
    bhs = sv.of("boreholes")
    if len(bhs) > 1:
        bhs[1].role, bhs[1].why = ("validation_boreholes", "a second borehole table: held "
                                   "out for validation only")
        bhs[0].decide.append(f"two borehole tables: {bhs[0].path.name} trains, "
                             f"{bhs[1].path.name} validates; swap if wrong")
        for f in bhs[2:]:
            f.role, f.why = "unused", "a third borehole table (pipelines take two)"
    for b in sv.of("boreholes") + sv.of("validation_boreholes"):
        if "presence" not in b.details.get("columns", {}):
            b.decide.append("no presence column recognised: presence is read from MAGT < 0; "
                            "name the presence column in columns.presence if there is one")
    invs = sv.of("inventory")
    # polygons first: the first inventory is the kinematics' outlines
    invs.sort(key=lambda f: 0 if "Polygon" in " ".join(f.details.get("geometry_types", [])) else 1)
    cols = {f.details["activity_column"] for f in invs}
    if len(cols) > 1:
        invs[0].decide.append(f"inventories name activity differently ({', '.join(sorted(cols))});"
                              " labels.activity_column takes one")
    if not sv.of("gtnp_csv") or not sv.of("gtnp_metadata"):
        for f in sv.of("gtnp_csv") + sv.of("gtnp_metadata"):
            f.role, f.why = "unused", f.why + " without its pair (GTN-P needs the CSV and the metadata)"


# --------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------
def choose_blocks(points: dict[str, np.ndarray], *, sides=BLOCK_SIDES_M, folds_tried=FOLDS_TRIED,
                  per_fold: int = BLOCKS_PER_FOLD) -> tuple[float | None, int, str]:
    """The spatial-CV block side [m] and folds that the evidence can fill.

    For each number of folds (most first) and each candidate side (largest first), the
    evidence points (lon/lat [deg] by source, e.g. ``{"inventory": ..., "boreholes": ...}``)
    are put into square blocks with the package's blocking rule
    (:func:`permafrost.cv.block_ids` in the frame of :func:`permafrost.cv.metric_xy`, each
    point its own group: :func:`permafrost.cv.merge_groups`); the first side whose blocks
    hold points in at least ``per_fold * folds`` CV units is taken, preferring, in this
    order, a side for which every source fills that many blocks on its own, then one for
    which every source fills ``folds`` (the surface-aware model runs a CV per part, the
    debris part on the inventory, the ground part on the boreholes, and the validation
    holds out whole blocks of boreholes: docs/method.md, "Surface-aware model").

    Returns
    -------
    (float or None, int, str)
        Block side [m] (None: no side fits, leave it to the auto rule), folds [-] and the
        reasoning in one sentence.

    References
    ----------
    Roberts, D. R. et al. (2017). Cross-validation strategies for data with temporal,
    spatial, hierarchical, or phylogenetic structure. Ecography 40, 913-929.
    Valavi, R. et al. (2019). blockCV. Methods Ecol. Evol. 10, 225-232.
    """
    srcs = {k: np.asarray(v, float).reshape(-1, 2) for k, v in points.items() if len(v)}
    if not srcs:
        return None, folds_tried[0], "no evidence points: block size left to the auto rule"
    allp = np.concatenate(list(srcs.values()))
    mx, my = metric_xy(allp[:, 0], allp[:, 1], "EPSG:4326")
    extent = max(float(np.ptp(mx)), float(np.ptp(my)))
    starts = np.cumsum([0] + [len(v) for v in srcs.values()])

    def units(side: float) -> tuple[int, dict[str, int]]:
        ids = block_ids(mx, my, side)
        n_all = len(np.unique(merge_groups(ids)))
        by = {k: len(np.unique(ids[a:b])) for k, a, b in zip(srcs, starts[:-1], starts[1:])}
        return n_all, by

    sides_km = ", ".join(f"{s / 1000:g}" for s in sides)
    for folds in folds_tried:
        need = per_fold * folds
        best: dict[int, tuple] = {}
        for side in sides:
            if side > extent:  # one block would hold everything along that axis
                continue
            n_all, by = units(side)
            if n_all < need:
                continue
            # 2: every source fills `need` units on its own; 1: every source `folds`; 0: all
            level = (2 if all(n >= need for n in by.values()) else
                     1 if all(n >= folds for n in by.values()) else 0)
            counts = ", ".join(f"{k} {n}" for k, n in by.items())
            text = (f"{side / 1000:g} km, the largest of {sides_km} km for which "
                    + ("each evidence source" if level == 2 else "the evidence")
                    + f" falls into at least {per_fold} blocks per fold x {folds} folds = {need}"
                    f" blocks ({counts}; {n_all} in all; the evidence spans "
                    f"{extent / 1000:.1f} km)")
            if level < 2:
                text += ("; a source with fewer gets blocks of its own (the auto rule) in "
                         "the surface-aware model")
            best.setdefault(level, (side, folds, text))
            if level == 2:
                break
        for level in (2, 1, 0):
            if level in best:
                return best[level]
    return None, folds_tried[-1], (f"no side of {sides_km} km "
                                   f"gives {per_fold} x {folds_tried[-1]} CV units: left to the "
                                   "auto rule (permafrost.cv.default_block_size)")


# --------------------------------------------------------------------------------------
# the files
# --------------------------------------------------------------------------------------
def _q(v) -> str:
    """A TOML value (strings as JSON strings, which TOML's basic strings accept)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_q(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_q(x)}" for k, x in v.items()) + " }"
    return json.dumps(str(v), ensure_ascii=False)


def _rel(p: Path, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(p).resolve(), base.resolve())).as_posix()
    except ValueError:  # another drive
        return Path(p).resolve().as_posix()


def _note(f: Found) -> str:
    bits = [f.role, f.crs or "no CRS"]
    if f.details.get("columns") and f.kind == "vector":
        cols = f.details["columns"]
        bits.append("columns " + ", ".join(map(str, cols if isinstance(cols, list) else cols.values())))
    return "; ".join(bits) + (f": {f.why}" if f.why else "")


def _decide(f: Found, indent: str = "") -> list[str]:
    return [f"{indent}# DECIDE: {d}" for d in f.decide]


def _safe_name(text: str) -> str:
    out = re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_")
    return out or "region"


def _covariate_names(sv: Survey) -> dict[str, Found]:
    """Covariate name (the file stem, made unique) -> dataset."""
    names: dict[str, Found] = {}
    for f in sv.of("dem") + sv.of("maat") + sv.of("covariate") + sv.of("landcover"):
        base = {"dem": "dem", "maat": "maat", "landcover": "landcover"}.get(f.role) or \
            _safe_name(f.path.stem.lower())
        name, i = base, 2
        while name in names:
            name, i = f"{base}_{i}", i + 1
        names[name] = f
    return names


def render_stack(sv: Survey, stack_path: Path) -> tuple[str, list[str]]:
    """The covariate stack file's text and the names of the stack's model features."""
    base = stack_path.parent
    names = _covariate_names(sv)
    dems = sv.of("dem")
    dem = dems[0] if dems else None
    coarse_m, coarse_z = sv.of("maat_coarse"), sv.of("elevation_coarse")
    nc = sv.of("climate_netcdf")
    downscale = dem is not None and not sv.of("maat") and bool(coarse_m or nc)
    #: a MAAT map or one downscaled from the DEM: either follows elevation
    has_maat = bool(sv.of("maat")) or downscale
    lines = ["# The covariate stack drafted by `permafrost init` (docs/method.md, \"Stack file\").",
             "# Paths start at this file's directory. Check every entry; delete what is not a",
             "# covariate of permafrost in your region.", ""]
    grid_src = dem or next(iter(names.values()), None)
    if grid_src is not None:
        lines += ["[grid]",
                  f"# every covariate is put on this raster's grid ({grid_src.crs}, cells of "
                  f"{_res(grid_src):.6g} CRS units)",
                  f"like = {_q(_rel(grid_src.path, base))}", ""]
    features: list[str] = []
    for name, f in names.items():
        lines.append(f"# {f.path.name}: {_note(f)}")
        lines += _decide(f)
        lines.append(f"[covariates.{name}]")
        lines.append(f"path = {_q(_rel(f.path, base))}")
        if f.role == "landcover":
            lines.append('kind = "categorical"')
        if f.role == "dem" and has_maat:
            lines.append("# Elevation is not a feature where there is a MAAT map: MAAT is downscaled")
            lines.append("# from elevation, and a model given both splits one effect between two")
            lines.append("# collinear terms. It stays the input of the derived covariates below.")
            lines.append("# DECIDE: set use = true if your MAAT does not follow elevation")
            lines.append("use = false")
        else:
            features.append(name)
        lines.append("")
    if downscale:
        src = coarse_m[0] if coarse_m else nc[0]
        lines += ["# MAAT downscaled to the DEM from the coarse climate grid: reduced to sea level with",
                  "# the cells' elevations, bilinear, lifted with the lapse rate (Gruber 2012;",
                  "# docs/method.md, \"Derived covariates\"); \"fit\": least squares over the cells",
                  "[derived.maat]", 'function = "downscale_maat"', 'dem = "dem"',
                  f"coarse = {_q(_rel(src.path, base))}"]
        if src.role == "climate_netcdf":
            lines += [f"variable = {_q(src.details['variable'])}",
                      "# DECIDE: the climate period, e.g. period = \"1991-2020\" (default: all "
                      "complete years)"]
        if coarse_z:
            lines.append(f"coarse_elevation = {_q(_rel(coarse_z[0].path, base))}")
        elif src.role != "climate_netcdf":
            lines.append("# DECIDE: no coarse elevation raster found: give coarse_elevation")
        lines += ['lapse_rate = "fit"', ""]
        features.append("maat")
    if dem is not None:
        lines += ["# Cold-air pooling: hollows and valley floors (TPI < 0) are colder than their",
                  "# elevation says, ridges (TPI > 0) lose their snow to the wind (Weiss 2001;",
                  "# docs/method.md). DECIDE: delete it if the region has no such relief.",
                  "[derived.tpi]", 'function = "tpi"', 'dem = "dem"', "radius_m = 500", ""]
        features.append("tpi")
        if not any(_PISR_WORDS.search(n) for n in names):
            lines += ["# No radiation raster found: the annual clear-sky potential incoming solar",
                      "# radiation [W m-2] from the DEM (docs/method.md, \"PISR\")",
                      "[derived.pisr]", 'function = "pisr"', 'dem = "dem"', ""]
            features.append("pisr")
    return _wrapped(lines), features


def render_pipeline(sv: Survey, out: Path, stack: Path, *, name: str,
                    block: tuple[float | None, int, str]) -> str:
    """The pipeline file's text (schema: permafrost.config.PipelineConfig)."""
    base = out.parent
    r = lambda p: _q(_rel(p, base))  # noqa: E731
    side, folds, why = block
    data = sv.root.resolve()
    run_dir = base / "runs" / name
    if run_dir.resolve() == data or data in run_dir.resolve().parents:
        run_dir = data.parent / f"{data.name}_runs" / name
    L = [f"# Drafted by `permafrost init {sv.root}`: check every `# DECIDE:` line, then",
         f"#   permafrost scenarios {out.name}      (checks it, runs nothing)",
         f"#   permafrost run {out.name} --all-scenarios",
         "# Relative paths start at this file's directory.", "",
         "[pipeline]", f"name = {_q(name)}",
         f"description = {_q(f'Drafted from {sv.root.name}/ by permafrost init')}",
         f"output_dir = {r(run_dir)}", "seed = 42", "", "[inputs]",
         f"covariates = {r(stack)}   # the stack file beside this one"]
    dem = sv.of("dem")
    if dem:
        L += [f"# {dem[0].path.name}: {_note(dem[0])}", *_decide(dem[0]),
              f"dem = {r(dem[0].path)}"]
    invs = sv.of("inventory")
    tracks = [t for t in sv.tracks if not t.get("error")]
    if tracks:
        L.append("# MintPy tracks (folders as MintPy writes them; inspect lists their dates and "
                 "reference points)")
        for t in tracks:
            L.append(f"#   {t.get('track', Path(t['folder']).name)}: "
                     f"{'geocoded' if t.get('geocoded') else 'radar coordinates'}, "
                     f"{t.get('orbit') or 'orbit ?'}")
        L.append(f"tracks = [{', '.join(r(Path(t['folder'])) for t in tracks)}]")
        if not invs or "Polygon" not in " ".join(invs[0].details.get("geometry_types", [])):
            L.append("# DECIDE: the kinematics need rock glacier outlines (polygons): "
                     "give outlines = FILE")
    for t in sv.tracks:
        if t.get("error"):
            L.append(f"# not a usable MintPy track: {t['folder']} ({t['error']})")
    if invs:
        for f in invs:
            L += [f"# {f.path.name}: {_note(f)}", *_decide(f)]
        L.append(f"inventories = [{', '.join(r(f.path) for f in invs)}]")
    for key, role in (("boreholes", "boreholes"), ("validation_boreholes", "validation_boreholes")):
        for f in sv.of(role):
            cols = {k: v for k, v in f.details.get("columns", {}).items() if v}
            L += [f"# {f.path.name}: {_note(f)}; columns by role {cols}", *_decide(f)]
            tab = {"path": _rel(f.path, base), "columns": cols}
            if f.details.get("crs"):
                tab["crs"] = f.details["crs"]
                L.append(f"# DECIDE: x/y columns read in the DEM's CRS ({f.details['crs']}); check it")
            L.append(f"{key} = {_q(tab)}")
    gc, gm = sv.of("gtnp_csv"), sv.of("gtnp_metadata")
    if gc and gm:
        L += [f"# {gc[0].path.name} + {gm[0].path.name}: GTN-P ground temperatures and their "
              "boreholes (presence and MAGT from the records)",
              f"gtnp = {_q({'csv': _rel(gc[0].path, base), 'metadata': _rel(gm[0].path, base)})}"]
    reg = sv.of("regions")
    if reg:
        f = reg[0]
        L += [f"# {f.path.name}: {_note(f)}", *_decide(f),
              f"regions = {_q({'path': _rel(f.path, base), 'field': f.details['field']})}"]
        for o in reg[1:]:
            L.append(f"# DECIDE: another polygon layer with names, not used: {_rel(o.path, base)}")
    masks = sv.of("mask")
    if masks:
        L += [f"# {masks[0].path.name}: {_note(masks[0])}", f"mask = {r(masks[0].path)}"]
        for o in masks[1:]:
            L.append(f"# DECIDE: one mask is read; merge {_rel(o.path, base)} into it if needed")
    lc = sv.of("landcover")
    if lc:
        L += ["# the land-cover map: label counts per surface class and the label support map;",
              "# also a covariate in the stack (the surface-aware model's classes)",
              f"landcover = {r(lc[0].path)}"]
    for f in sv.of("prior"):
        L += ["", f"# {f.path.name}: {_note(f)}", *_decide(f), "[[inputs.priors]]",
              f"name = {_q(f.path.stem)}", f"path = {r(f.path)}"]
        info = raster_classes(f.path, 1)
        tag = _class_tag(f.path)
        classes = parse_class_table(tag)
        if classes and np.dtype(info.dtype).kind in "iu":
            pf = [c for c, n in classes.items() if "permafrost" in n.lower()
                  and not re.search(r"\bno|non|seasonal", n.lower())]
            other = [c for c, n in classes.items() if c not in pf and "nodata" not in
                     n.lower().replace(" ", "").replace("_", "")]
            L += ['kind = "categorical"', f"# classes: {tag}",
                  f"permafrost_codes = {_q(pf or [1])}"]
            if other:
                L.append(f"other_codes = {_q(other)}")
        else:
            L += ['kind = "continuous"', "threshold = 0.5   # permafrost where the value is at least this"]
    unused = [f for f in sv.found if f.role == "unused"]
    if unused:
        L += ["", "# Not used (no role found; a person may know better):"]
        L += [f"#   {_rel(f.path, base)}: {f.why}" for f in unused]
    act = invs[0].details["activity_column"] if invs else "activity"
    L += ["", "[labels]", f"activity_column = {_q(act)}",
          'sampling = "front"   # one label at each rock glacier front (docs/labels.md)',
          f"use_kinematics = {_q(bool(tracks))}", "",
          "[train]",
          "# The logistic model of Boeckli et al. (2012): it keeps responding to air temperature",
          "# above the highest label, where a tree ensemble (model = \"xgboost\") goes flat",
          "# (docs/method.md, \"Beyond the highest label\").",
          'model = "logistic"', f"folds = {folds}"]
    if side is not None:
        L += [f"# Spatial-CV blocks: {why}. Omit block_size_m for the auto rule (the larger "
              "of the label and covariate autocorrelation ranges, permafrost.cv).",
              f"block_size_m = {side!r}"]
    else:
        L.append(f"# Spatial-CV blocks: {why}.")
    L += ["", "[predict]", "zones = true", "uncertainty = false   # true adds the spread map (slower)",
          "", "[stats]", "band_width_m = 200.0   # elevation bands of the statistics [m]"]
    stack_names = changeable_inputs(stack)
    if "maat" in stack_names:
        L += ["", "# Warming scenarios: MAAT + dT, made by the physical method (the default): the",
              "# baseline's ground temperature shifted by the TTOP sensitivity (docs/pipelines.md,",
              "# \"Scenarios\"). Equilibrium maps, no time attached.",
              "[scenario_method]", 'method = "physical"',
              "# DECIDE: half the difference of the warmest and coldest monthly mean air",
              f"# temperature of your region [degC] (default {AIR_AMPLITUDE_C:g}; the continental",
              "# mountains of central Asia have about 11-14)",
              f"amplitude_c = {AIR_AMPLITUDE_C!r}"]
        for dt in SCENARIO_WARMING_C:
            L += ["", f"[scenarios.plus{dt:g}]", f"description = {_q(f'MAAT + {dt:g} °C')}",
                  f"covariates.maat = {{ offset = {dt!r} }}"]
    else:
        L += ["", "# No MAAT in the stack: no warming scenarios drafted. Add a `maat` covariate",
              "# (or a downscale_maat derived one) and scenarios as in pipelines/demo.toml."]
    return _wrapped(L)


def _wrapped(lines: list[str], width: int = 92) -> str:
    """The lines joined; a comment line longer than ``width`` wrapped onto ``#`` lines."""
    out: list[str] = []
    for line in lines:
        head, sep, tail = line.partition("# ")
        if len(line) <= width or not sep or head.strip():
            out.append(line)
            continue
        out += textwrap.wrap(tail, width, initial_indent=head + "# ",
                             subsequent_indent=head + "#   ", break_on_hyphens=False)
    return "\n".join(out).rstrip() + "\n"


def _evidence_points(sv: Survey) -> dict[str, np.ndarray]:
    pts: dict[str, list] = {"inventory": [], "boreholes": []}
    for f in sv.of("inventory"):
        pts["inventory"].append(f.details["points"])
    for f in sv.of("boreholes"):
        pts["boreholes"].append(f.details["points"])
    gc, gm = sv.of("gtnp_csv"), sv.of("gtnp_metadata")
    if gc and gm:
        recs = read_gtnp(gc[0].path, gm[0].path)
        pts["boreholes"].append(np.array([[r.lon, r.lat] for r in recs], float).reshape(-1, 2))
    return {k: np.concatenate(v) for k, v in pts.items() if v}


def init_pipeline(directory: str | os.PathLike, out: str | os.PathLike, *,
                  name: str | None = None) -> InitResult:
    """Survey ``directory`` and write a pipeline file ``out`` and its stack file beside it.

    The stack file is ``<out stem>_covariates.toml``.  Neither may exist (nothing is
    overwritten); the pipeline file is validated with :func:`permafrost.config.load_pipeline`
    before it takes its name, and on any failure neither file is left behind.

    Raises
    ------
    OutputError
        ``out`` or the stack file exists, or ``out``'s folder does not.
    InputFileError
        ``directory`` is not a folder.
    ConfigError
        No evidence (inventory, boreholes, GTN-P) or no raster was found, or the draft does
        not validate.
    """
    out = Path(out)
    stack = out.with_name(f"{out.stem}_covariates.toml")
    for p in (out, stack):
        if p.exists() or p.is_symlink():
            raise OutputError("exists; init never overwrites a file", path=p,
                              fix="choose another --out, or move the file away")
    if not out.parent.is_dir():
        raise OutputError("the output folder does not exist", path=out.parent,
                          fix="create it, or choose another --out")
    sv = survey_directory(directory, exclude=[out, stack])
    if not (sv.of("dem") or sv.of("maat") or sv.of("covariate")):
        raise ConfigError("no covariate raster found (a DEM, MAAT, ...)", path=directory,
                          field="inputs.covariates", fix="add the rasters to the folder")
    if not (sv.of("inventory") or sv.of("boreholes") or
            (sv.of("gtnp_csv") and sv.of("gtnp_metadata"))):
        raise ConfigError("no evidence found (a rock glacier inventory with an activity "
                          "column, a borehole table or GTN-P records)", path=directory,
                          field="inputs", fix="add them to the folder")
    block = choose_blocks(_evidence_points(sv))
    name = _safe_name(name or Path(directory).resolve().name)
    stack_text, _ = render_stack(sv, stack)
    tmp = out.with_name(f".{out.name}.init-{os.getpid()}.toml")
    try:
        with open(stack, "x", encoding="utf-8") as fh:
            fh.write(stack_text)
    except FileExistsError:
        raise OutputError("exists; init never overwrites a file", path=stack,
                          fix="choose another --out, or move the file away") from None
    try:
        text = render_pipeline(sv, out, stack, name=name, block=block)
        tmp.write_text(text, encoding="utf-8")
        try:
            load_pipeline(tmp)
        except PermafrostError as exc:
            raise ConfigError(f"the drafted pipeline does not validate ({exc.problem})",
                              path=out, field=exc.field, fix=exc.fix or
                              "report it; edit the draft by hand meanwhile") from None
        try:
            os.link(tmp, out)  # fails where `out` appeared meanwhile: never overwrites
        except FileExistsError:
            raise OutputError("exists; init never overwrites a file", path=out,
                              fix="choose another --out, or move the file away") from None
        except OSError:  # a file system without hard links
            if out.exists():
                raise
            os.replace(tmp, out)
    except BaseException:
        stack.unlink(missing_ok=True)
        raise
    finally:
        tmp.unlink(missing_ok=True)
    log.info("wrote %s and %s", out, stack)
    return InitResult(pipeline=out, stack=stack, survey=sv, block_size_m=block[0],
                      folds=block[1], block_rule=block[2])
