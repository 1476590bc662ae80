"""A pipeline run folder as map layers: which rasters and vectors the run wrote, their
colours, their tiles (PNG), their values at a point and their vectors (GeoJSON).

What :func:`open_run` finds in a run folder (``permafrost run`` output, marked by its
``.permafrost`` file), from each run's ``manifest.json`` (never from a request):

- per run (``baseline``, each scenario): ``pzi.tif``, ``zones.tif``, ``pzi_uncertainty.tif``;
- per scenario: its change, scenario PZI − baseline PZI, computed tile by tile and point by
  point from the two rasters (the same grid);
- the validation step's agreement rasters (``agreement_<prior>.tif``, one per prior map);
- the baseline's labels, kinematics and hold-out blocks (GeoPackages) as GeoJSON;
- the run's inputs named in its manifest: the DEM (a hillshade, and elevation at a point) and
  the prior maps.  These are the only files outside the run folder the viewer reads; their
  paths come from the manifest's configuration (relative to the pipeline file's directory).

Every file written by the run must resolve (symbolic links followed) inside the run folder:
one that does not is left out and listed in :attr:`RunLayers.refused`.

Colours are the report's and the QGIS styles' (:mod:`permafrost.styles`): PZI ``YlGnBu``
0–1, uncertainty ``OrRd`` 0–max, change ``RdBu`` −1–1, the zone and agreement colours.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.warp import transform_bounds

from permafrost.area.zones import ZONE_CODES
from permafrost.errors import InputFileError
from permafrost.io.tiles import (
    MERCATOR_HALF_M,
    TILE_SIZE,
    RasterTiles,
    encode_png,
    tile_centre_lat,
    vector_geojson,
)
from permafrost.styles import AGREEMENT_CLASSES as AGREEMENT_COLOURS
from permafrost.styles import PRIOR_CLASS_COLOURS, RAMPS, ZONE_COLOURS
from permafrost.validation import agreement_file_name

__all__ = ["RasterLayer", "VectorLayer", "RunLayers", "open_run", "render_tile",
           "values_at", "EMPTY_TILE"]

#: the marker file of a pipeline output directory (permafrost.pipeline.engine)
RUN_MARKER = ".permafrost"
#: hillshade light: azimuth and altitude [degrees], as the report's maps
HILLSHADE_AZ_ALT = (315.0, 45.0)
#: attribute columns sent with each vector layer (the rest stays on disk)
LABEL_COLUMNS = ("label", "source", "source_id", "weight", "activity", "magt_c", "elevation_m")
KINEMATICS_COLUMNS = ("rg_id", "activity", "kin_activity", "kin_rgik_class",
                      "kin_v_downslope_median_m_yr", "kin_v_downslope_unc_m_yr",
                      "kin_reliability", "kin_track")


@dataclass
class RasterLayer:
    """One raster layer: ``sources`` are one raster, or (scenario, baseline) for a change."""

    id: str
    title: str
    group: str
    kind: str  # pzi | zones | uncertainty | change | agreement | prior | prior_classes | hillshade
    units: str
    sources: tuple[RasterTiles, ...]
    cmap: str | None = None
    vmin: float = 0.0
    vmax: float = 1.0
    #: code -> (name, "#rrggbb"; None: named but transparent)
    classes: dict[int, tuple[str, str | None]] = field(default_factory=dict)

    def legend(self) -> dict:
        if self.classes:
            return {"classes": [{"value": k, "label": n, "colour": c}
                                for k, (n, c) in sorted(self.classes.items()) if c is not None]}
        if self.cmap is None:
            return {}
        lut = _lut(self.cmap)
        stops = [lut[i] for i in np.linspace(0, 255, 9).astype(int)]
        return {"ramp": ["#%02x%02x%02x" % tuple(int(v) for v in s[:3]) for s in stops],
                "min": self.vmin, "max": self.vmax}

    def describe(self) -> dict:
        return {"id": self.id, "title": self.title, "group": self.group, "kind": self.kind,
                "units": self.units, "legend": self.legend()}


@dataclass
class VectorLayer:
    id: str
    title: str
    kind: str  # labels | kinematics | blocks
    path: Path
    columns: tuple[str, ...]

    def describe(self) -> dict:
        return {"id": self.id, "title": self.title, "kind": self.kind}


@dataclass
class RunLayers:
    """The layers of one run folder (:func:`open_run`)."""

    root: Path
    rasters: dict[str, RasterLayer]
    vectors: dict[str, VectorLayer]
    hillshade: RasterLayer | None
    bounds: tuple[float, float, float, float]  # west, south, east, north [degrees]
    refused: list[str]
    notes: list[str]

    def describe(self) -> dict:
        return {"name": self.root.name, "bounds": list(self.bounds),
                "hillshade": self.hillshade is not None,
                "rasters": [r.describe() for r in self.rasters.values()],
                "vectors": [v.describe() for v in self.vectors.values()]}


def _ramp(name: str, vmax: float | None = None) -> dict[str, Any]:
    """The RasterLayer options of a ramp of :data:`permafrost.styles.RAMPS` (its top from
    the data, ``vmax``, when the ramp has none)."""
    r = RAMPS[name]
    top = r.vmax if r.vmax is not None else vmax
    return {"cmap": r.name, "vmin": float(r.vmin), "vmax": 1.0 if top is None else float(top)}


def _lut(cmap: str) -> np.ndarray:
    """256 RGBA colours [0-255] of a Matplotlib colour map (the report's maps use them)."""
    import matplotlib

    return np.round(matplotlib.colormaps[cmap](np.linspace(0.0, 1.0, 256)) * 255).astype(
        np.uint8)


def _hex(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (symbolic links followed) lies inside ``root``."""
    try:
        return Path(os.path.realpath(path)).is_relative_to(Path(os.path.realpath(root)))
    except OSError:
        return False


def _pipeline_dir(root: Path, manifest: dict) -> Path | None:
    """The pipeline file's directory (the base of the manifest's input paths), from the run
    folder and the manifest's ``output_dir``, when one candidate holds the pipeline file."""
    out = (manifest.get("configuration", {}).get("pipeline", {}) or {}).get("output_dir")
    source = manifest.get("source")
    if not out or not source:
        return None
    out_p = Path(out)
    if out_p.is_absolute():
        return None
    parts = out_p.parts
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    rest = parts[ups:]
    base = root
    for name in reversed(rest):
        if base.name != name:
            return None
        base = base.parent
    cands = [base]
    for _ in range(ups):  # each ".." in output_dir: the pipeline lies one folder further down
        cands = [d for c in cands if c.is_dir() for d in sorted(c.iterdir()) if d.is_dir()]
    hits = [c for c in cands if (c / source).is_file()
            and Path(os.path.realpath(c / out)) == Path(os.path.realpath(root))]
    return hits[0] if len(hits) == 1 else None


def _tiles(path: Path, refused: list[str], root: Path, resampling: str = "nearest"
           ) -> RasterTiles | None:
    if not path.is_file():
        return None
    if not _inside(path, root):
        refused.append(f"{path.relative_to(root) if path.is_relative_to(root) else path}: "
                       "resolves outside the run folder")
        return None
    return RasterTiles(path, resampling=resampling)


def _max_of(t: RasterTiles) -> float:
    """The largest value of a raster, from its coarsest overview (the uncertainty's top)."""
    opts = {"overview_level": len(t.overviews) - 1} if t.overviews else {}
    with rasterio.open(t.path, **opts) as src:
        a = src.read(1, masked=True).astype("float64").filled(np.nan)
    top = float(np.nanmax(a)) if np.isfinite(a).any() else 1.0
    return math.ceil(top * 20) / 20 or 1.0


def open_run(run_dir: str | os.PathLike, *, dem: str | os.PathLike | None = None
             ) -> RunLayers:
    """The map layers of a pipeline run folder (see the module's docstring).

    Parameters
    ----------
    run_dir : path-like
        A ``permafrost run`` output directory (it holds ``.permafrost``).
    dem : path-like, optional
        The DEM for the hillshade (default: the run's ``inputs.dem``, else its covariate
        ``dem``, from the manifest).

    Raises
    ------
    InputFileError
        Not a pipeline output directory, or no run (``manifest.json``) in it.
    """
    root = Path(os.path.realpath(run_dir))
    if not (root / RUN_MARKER).is_file():
        raise InputFileError("is not a pipeline output directory (no .permafrost file)",
                             path=root, fix="give the output_dir of `permafrost run`")
    runs = sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and (d / "manifest.json").is_file() and _inside(d, root)),
                  key=lambda d: (d.name != "baseline", d.name))
    if not runs:
        raise InputFileError("holds no finished run (no <run>/manifest.json)", path=root,
                             fix="run `permafrost run PIPELINE` first")
    refused: list[str] = []
    notes: list[str] = []
    rasters: dict[str, RasterLayer] = {}
    vectors: dict[str, VectorLayer] = {}
    manifests = {d.name: json.loads((d / "manifest.json").read_text()) for d in runs}
    base_name = runs[0].name
    base_pzi = None
    pzi_ramp = _ramp("pzi")
    # code 0 ("none": PZI below the lowest zone) is named but not drawn, as in the report
    zone_classes: dict[int, tuple[str, str | None]] = {0: ("none", None), **{ZONE_CODES[n]: (n, c) for n, c in ZONE_COLOURS.items()
                                          if n != "none"}}
    for d in runs:
        outs = manifests[d.name].get("outputs", {})
        name = d.name

        def out(key: str, resampling: str = "nearest") -> RasterTiles | None:
            return _tiles(root / outs[key], refused, root, resampling) if key in outs else None

        pzi = out("pzi")
        if pzi is not None:
            rasters[f"{name}.pzi"] = RasterLayer(f"{name}.pzi", f"PZI · {name}", name, "pzi",
                                                 "-", (pzi,), **pzi_ramp)
            if name == base_name:
                base_pzi = pzi
            elif base_pzi is not None:
                rasters[f"{name}.change"] = RasterLayer(
                    f"{name}.change", f"Change · {name} − {base_name}", name, "change", "-",
                    (pzi, base_pzi), **_ramp("change"))
        zones = out("zones")
        if zones is not None:
            rasters[f"{name}.zones"] = RasterLayer(f"{name}.zones", f"Zones · {name}", name,
                                                   "zones", "class", (zones,),
                                                   classes=zone_classes)
        unc = out("uncertainty")
        if unc is not None:
            rasters[f"{name}.uncertainty"] = RasterLayer(
                f"{name}.uncertainty", f"Uncertainty · {name}", name, "uncertainty", "-",
                (unc,), **_ramp("uncertainty", _max_of(unc)))
        if name == base_name:
            for key, kind, title, cols in (("labels", "labels", "Labels", LABEL_COLUMNS),
                                           ("kinematics", "kinematics", "Kinematics",
                                            KINEMATICS_COLUMNS),
                                           ("holdout_blocks", "blocks", "Hold-out blocks", ())):
                if key in outs:
                    p = root / outs[key]
                    if not p.is_file():
                        continue
                    if not _inside(p, root):
                        refused.append(f"{outs[key]}: resolves outside the run folder")
                        continue
                    vectors[key] = VectorLayer(key, title, kind, p, cols)
    base_manifest = manifests[base_name]
    # the validation step's agreement rasters, one per prior map
    val = base_manifest.get("steps", {}).get("validate", {}).get("outputs", {}).get("validation")
    priors = (base_manifest.get("configuration", {}).get("inputs", {}) or {}).get("priors") or []
    if val:
        vdir = (root / val).parent
        for pr in priors:
            t = _tiles(vdir / agreement_file_name(pr["name"]), refused, root)
            if t is not None:
                lid = f"agreement.{agreement_file_name(pr['name'])[10:-4]}"
                rasters[lid] = RasterLayer(lid, f"Agreement · {pr['name']}", "validation",
                                           "agreement", "class", (t,),
                                           classes=dict(AGREEMENT_COLOURS))
    # the run's inputs: DEM and prior maps (outside the run folder by design)
    pdir = _pipeline_dir(root, base_manifest)
    cfg_inputs = base_manifest.get("configuration", {}).get("inputs", {}) or {}
    hill = None
    dem_path = Path(dem) if dem is not None else None
    if dem_path is None and pdir is not None and cfg_inputs.get("dem"):
        dem_path = pdir / cfg_inputs["dem"]
    if dem_path is None and pdir is not None and cfg_inputs.get("covariates"):
        cov = pdir / cfg_inputs["covariates"]
        if cov.is_dir() and (cov / "dem.tif").is_file():
            dem_path = cov / "dem.tif"
    if dem_path is not None and dem_path.is_file():
        t = RasterTiles(dem_path, resampling="bilinear")
        hill = RasterLayer("dem", "Elevation", "inputs", "hillshade", "m", (t,))
    else:
        notes.append("no DEM found for the hillshade (give --dem)")
    if pdir is not None:
        for i, pr in enumerate(priors):
            p = pdir / pr["path"]
            if not p.is_file():
                continue
            lid = f"prior.{i + 1}"
            if pr.get("kind") == "categorical":
                classes: dict[int, tuple[str, str | None]] = {
                    int(c): ("permafrost", PRIOR_CLASS_COLOURS[0])
                    for c in pr.get("permafrost_codes") or []}
                classes.update({int(c): ("no permafrost", PRIOR_CLASS_COLOURS[1])
                                for c in pr.get("other_codes") or []})
                rasters[lid] = RasterLayer(lid, f"Prior · {pr['name']}", "priors",
                                           "prior_classes", "class", (RasterTiles(p),),
                                           classes=classes)
            else:
                rasters[lid] = RasterLayer(lid, f"Prior · {pr['name']}", "priors", "prior",
                                           "-", (RasterTiles(p),), **pzi_ramp)
    elif priors:
        notes.append("the prior maps are not shown: the pipeline file's directory (the base "
                     "of the manifest's input paths) was not found")
    first = base_pzi or next((r.sources[0] for r in rasters.values()), None)
    if first is None:
        raise InputFileError("holds no raster the viewer shows (pzi.tif)", path=root,
                             fix="run `permafrost run PIPELINE` first")
    bounds = tuple(transform_bounds("EPSG:3857", "EPSG:4326", *first.bounds_3857))
    return RunLayers(root, rasters, vectors, hill, bounds, refused, notes)


def _colour(layer: RasterLayer, values: np.ndarray) -> np.ndarray:
    """RGBA [0-255] of values by the layer's colours; transparent where NaN."""
    rgba = np.zeros(values.shape + (4,), np.uint8)
    ok = np.isfinite(values)
    if layer.classes:
        for code, (_, col) in layer.classes.items():
            if col is None:  # named, not drawn
                continue
            m = ok & (values == code)
            rgba[m, :3] = _hex(col)
            rgba[m, 3] = 255
        return rgba
    assert layer.cmap is not None  # a layer without classes has a ramp
    lut = _lut(layer.cmap)
    idx = np.clip(np.round((values[ok] - layer.vmin) / (layer.vmax - layer.vmin) * 255), 0,
                  255).astype(int)
    rgba[ok] = lut[idx]
    rgba[ok, 3] = 255
    return rgba


def _hillshade(dem: np.ndarray, z: int, y: int) -> np.ndarray:
    """Hillshade [0, 1] of a buffered DEM tile (1 px each side), its pixel spacing the
    mercator pixel times cos(latitude) [m] (the report's light: azimuth 315°, altitude 45°)."""
    from matplotlib.colors import LightSource

    px = 2 * MERCATOR_HALF_M / 2 ** z / TILE_SIZE * math.cos(math.radians(tile_centre_lat(z, y)))
    zf = np.where(np.isfinite(dem), dem, np.nanmean(dem) if np.isfinite(dem).any() else 0.0)
    hs = LightSource(*HILLSHADE_AZ_ALT).hillshade(zf, vert_exag=1.0, dx=px, dy=px)
    ok = np.isfinite(dem)
    # a slope needs its neighbours: no shade on the edge cells of the DEM
    ok[1:-1, 1:-1] &= ok[:-2, 1:-1] & ok[2:, 1:-1] & ok[1:-1, :-2] & ok[1:-1, 2:]
    return np.where(ok, hs, np.nan)[1:-1, 1:-1]


#: a fully transparent tile (a tile that misses the layer)
EMPTY_TILE = encode_png(np.zeros((256, 256, 4), np.uint8))


def render_tile(layer: RasterLayer, z: int, x: int, y: int) -> bytes:
    """PNG of tile ``z/x/y`` of a layer (:data:`EMPTY_TILE` where it misses the layer)."""
    if layer.kind == "hillshade":
        dem = layer.sources[0].read(z, x, y, buffer=1)
        if dem is None or not np.isfinite(dem).any():
            return EMPTY_TILE
        hs = _hillshade(dem, z, y)
        rgba = np.zeros(hs.shape + (4,), np.uint8)
        ok = np.isfinite(hs)
        rgba[ok, :3] = np.round(hs[ok] * 255).astype(np.uint8)[:, None]
        rgba[ok, 3] = 255
        return encode_png(rgba)
    read = [s.read(z, x, y) for s in layer.sources]
    arrays = [a for a in read if a is not None]
    if len(arrays) < len(read):
        return EMPTY_TILE
    vals = arrays[0] - arrays[1] if layer.kind == "change" else arrays[0]
    return encode_png(_colour(layer, vals))


def values_at(run: RunLayers, lon: float, lat: float) -> dict:
    """Every raster layer's value at a point (longitude, latitude [degrees]), the cell holding
    it (:meth:`RasterTiles.values_at`); a change is the difference of its two values."""
    cache: dict[Path, float] = {}

    def val(t: RasterTiles) -> float:
        if t.path not in cache:
            cache[t.path] = float(t.values_at(lon, lat)[0])
        return cache[t.path]

    rows = []
    layers = ([run.hillshade] if run.hillshade is not None else []) + list(run.rasters.values())
    for layer in layers:
        vs = [val(s) for s in layer.sources]
        v = vs[0] - vs[1] if layer.kind == "change" else vs[0]
        row = {"id": layer.id, "title": layer.title, "units": layer.units,
               "value": v if math.isfinite(v) else None}
        if layer.classes and math.isfinite(v):
            row["class"] = layer.classes.get(int(v), (None,))[0]
        rows.append(row)
    return {"lon": lon, "lat": lat, "values": rows}


def layer_geojson(layer: VectorLayer) -> bytes:
    """A vector layer as GeoJSON in EPSG:4326 (its listed columns only)."""
    return vector_geojson(layer.path, columns=layer.columns)
