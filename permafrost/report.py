"""The report: one self-contained HTML file (figures embedded as PNG) plus the same numbers as JSON.

This module renders; it computes nothing.  Its input is a plain dict (a *bundle*) of what the
other steps wrote — statistics JSON (:mod:`permafrost.area`), validation JSON
(:mod:`permafrost.validation`), the model's ``metadata.json`` (CV metrics, reliability,
importance), a provenance manifest — plus decimated map previews (arrays) for the figures.
Every key is optional; a section whose input is absent is left out and listed as such.
:func:`permafrost.workflows.report.report_from_files` builds the bundle from the files the
steps wrote and writes the HTML and JSON.

Bundle keys
-----------
``title`` (str), ``provenance`` (dict), ``stats`` (stats JSON), ``validation`` (validation
JSON), ``model`` (model metadata JSON), ``scenarios`` ({name: stats JSON}), ``profile``
(``profile.json``: :class:`permafrost.area.ElevationProfile`, the PZI against elevation by
aspect and the lower limit of permafrost),
``kinematics`` (counts from the kinematics GeoPackage: ``class_activity``,
``inventory_vs_insar``, ``insar_change``, ``uncertain_reasons``, ``tracks``,
``track_pixels``), ``maps``: ``{"pzi": {"array", "extent", "crs"}, "uncertainty": {...},
"dem": {...}, "agreement": {name: {...}}, "mask": {"geometries", "name"},
"kinematics": {"geometries", "v_cm_yr", "activity", "extent", "crs"}}``
(``extent`` = ``[left, right, bottom, top]`` in the map CRS), ``labels``:
``{"x": [...], "y": [...], "label": [...], "source": [...]}`` in the map CRS.

Every map has a hillshade of the DEM (computed with the pixel spacing in metres), axis labels
in °E/°N or metres with the CRS named, a scale bar, and legend entries for nodata and masked
cells; every figure is the page width.

The HTML needs no network, no script and no external file: it opens offline in any browser.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from permafrost.area import REGION_THRESHOLD, ZONE_LIMITS, ZONES, zone_range_text
from permafrost.errors import InputError
from permafrost.kinematics import RGIK_CLASS_EDGES_CM_YR
from permafrost.styles import (
    AGREEMENT_CLASSES,
    LABEL_COLOURS,
    NODATA_COLOUR,
    RAMPS,
    VELOCITY_COLOURS,
)
from permafrost.styles import ZONE_COLOURS as _ALL_ZONE_COLOURS

__all__ = ["render_report", "report_json", "ZONE_COLOURS"]

#: zone colours (Brown et al. 1997 classes), light to dark blue (:mod:`permafrost.styles`;
#: cells below the lowest zone are left transparent in the figures)
ZONE_COLOURS = {n: c for n, c in _ALL_ZONE_COLOURS.items() if n != "none"}
AGREEMENT_COLOURS = AGREEMENT_CLASSES

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #2171b5;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.4em 0 .4em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
p.cap{margin:1em 0 .2em}table:not(.wrap) td.l{white-space:nowrap}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right}
th{background:#eef3fa;vertical-align:bottom}td.l,th.l{text-align:left}
.kpi{display:inline-block;margin:.3em 1.2em .3em 0;padding:.5em .8em;background:#eef3fa;
border-radius:4px}.kpi b{font-size:1.3em;display:block}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.note{color:#555;font-size:.85em}
figure img{width:100%;height:auto}
.warn{background:#fff4e5;border-left:4px solid #e6550d;padding:.4em .8em;
margin:.4em 0}img{max-width:100%}
nav.toc{background:#f7f9fc;border:1px solid #dde5f0;border-radius:4px;padding:.4em 1em;
margin:1.2em 0;font-size:.9em}nav.toc ol{margin:.3em 0;columns:2}nav.toc a{color:#2171b5}
"""

#: width of every figure [inch]: at 100 dpi, the page width (1100 px)
_FIG_W = 11.0
_DPI = 100
#: colours of cells without a value in map figures
_NODATA_COLOUR = NODATA_COLOUR
_MASK_STYLE = {"facecolor": "#ffffff", "edgecolor": "#7f7f7f", "hatch": "////",
               "linewidth": 0.4}


# --------------------------------------------------------------------------- formatting
def _e(v) -> str:
    return html.escape(str(v), quote=True)


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if not math.isfinite(f):
            return "–"
        if abs(f) >= 100:
            return f"{f:,.1f}"
        if abs(f) >= 1:
            return f"{f:,.2f}"
        return f"{f:.{digits}f}"
    return _e(v)


class _Raw(str):
    """Already-escaped HTML cell content."""


def _f(v, digits: int = 3) -> _Raw:
    """A number with a fixed number of decimals (thousands separated); '–' when missing.

    Every column of a table uses one precision: areas [km²] 2 decimals, fractions and
    metrics 3, counts none.
    """
    if v is None or isinstance(v, bool):
        return _Raw("–" if v is None else str(v))
    try:
        x = float(v)
    except (TypeError, ValueError):
        return _Raw(_e(v))
    if not math.isfinite(x):
        return _Raw("–")
    if digits == 0:
        return _Raw(f"{round(x):,}")
    return _Raw(f"{x:,.{digits}f}")


def _km2(v) -> _Raw:
    return _f(v, 2)


def _count(v) -> _Raw:
    return _f(v, 0)


def _txt(v) -> _Raw:
    return _Raw(_e(v))


#: human labels of the keys in the results JSON
_LABELS = {
    "auc": "AUC", "balanced_accuracy": "Balanced accuracy", "brier": "Brier score",
    "kappa": "Cohen's κ", "accuracy": "Accuracy", "sensitivity": "Sensitivity (TPR)",
    "specificity": "Specificity (TNR)", "threshold": "Threshold [PZI]", "n": "Points",
    "n_pos": "Permafrost points", "n_neg": "No-permafrost points",
    "tp": "True positives", "fp": "False positives", "fn": "False negatives",
    "tn": "True negatives", "all": "Whole map", "region": "Region",
    "elevation_band": "Elevation band", "rock_glacier": "Rock glacier", "borehole": "Borehole",
    "gtnp": "GTN-P borehole", "permos": "PERMOS borehole", "pzi": "PZI",
    "categorical": "categorical", "continuous": "continuous",
    "shadow_layover": "Shadow/layover", "low_sensitivity": "Low sensitivity |C|",
    "nodata": "No data", "valid": "Valid", "low_coherence": "Low coherence",
}


def _label(key) -> str:
    """Human label of a JSON key (``balanced_accuracy`` -> ``Balanced accuracy``)."""
    k = str(key)
    if k in _LABELS:
        return _LABELS[k]
    s = k.replace("_", " ")
    return s[:1].upper() + s[1:]


def _file_name(value) -> str:
    """A file's name without its folder (a report names no machine's directories: the
    provenance section gives inputs relative to the pipeline file); other text as it is."""
    text = "" if value is None else str(value)
    return text.replace("\\", "/").rsplit("/", 1)[-1] if "/" in text or "\\" in text \
        else text


def _table(header: list, rows: list, *, left: int = 1, caption: str | None = None,
           wrap: bool = False) -> str:
    """An HTML table; the caption goes above it as a note (as wide as the page, not the
    table); ``left`` columns are left-aligned text (not wrapped unless ``wrap``)."""
    out = [f"<p class='note cap'>{_e(caption)}</p>"] if caption else []
    out.append("<table class='wrap'>" if wrap else "<table>")
    out.append("<tr>" + "".join(f"<th class='{'l' if i < left else ''}'>{_e(h)}</th>"
                                for i, h in enumerate(header)) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td class='{'l' if i < left else ''}'>{v if isinstance(v, _Raw) else _num(v)}</td>"
            for i, v in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def _png(fig) -> str:
    from PIL import Image

    buf = io.BytesIO()
    # no Software/date chunk: the same inputs give the same bytes
    fig.savefig(buf, format="png", dpi=_DPI, bbox_inches="tight", metadata={"Software": None})
    # a 256-colour palette (median cut, deterministic) keeps the report a few MB
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = io.BytesIO()
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        out, format="PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode("ascii")


def _figure(fig, caption: str, alt: str) -> str:
    return (f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{_png(fig)}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _new_fig(w: float = _FIG_W, h: float = 4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


# --------------------------------------------------------------------------- map furniture
_WGS84_A = 6378137.0
_WGS84_E2 = 6.69437999014e-3


def _is_geographic(m: Mapping) -> bool:
    crs = str(m.get("crs") or "")
    if not crs:
        return False
    try:
        from pyproj import CRS

        return bool(CRS.from_user_input(crs).is_geographic)
    except Exception:  # noqa: BLE001 - an unreadable CRS string: judge by its text
        return "4326" in crs or "+proj=longlat" in crs or crs.upper().startswith("GEOGCS")


def _crs_label(m: Mapping) -> str:
    crs = m.get("crs")
    if not crs:
        return "CRS unknown"
    try:
        from pyproj import CRS

        c = CRS.from_user_input(crs)
        code = c.to_epsg()
        return f"EPSG:{code} ({c.name})" if code else c.name
    except Exception:  # noqa: BLE001
        return str(crs)[:60]


def _metres_per_unit(m: Mapping) -> tuple[float, float]:
    """Metres per map unit along x and y at the map's centre (WGS84 radii of curvature on
    geographic grids; the axis unit of a projected CRS, metres when unknown)."""
    ext = m["extent"]
    if _is_geographic(m):
        phi = math.radians(0.5 * (ext[2] + ext[3]))
        w = math.sqrt(1 - _WGS84_E2 * math.sin(phi) ** 2)
        n = _WGS84_A / w
        mm = _WGS84_A * (1 - _WGS84_E2) / w**3
        return n * math.cos(phi) * math.pi / 180, mm * math.pi / 180
    try:
        from pyproj import CRS

        f = CRS.from_user_input(m["crs"]).axis_info[0].unit_conversion_factor
        return float(f), float(f)
    except Exception:  # noqa: BLE001
        return 1.0, 1.0


def _aspect(m: Mapping) -> float:
    mx, my = _metres_per_unit(m)
    return my / mx if mx > 0 else 1.0


def _map_fig(m: Mapping, *, ncols: int = 1, legend_w: float = 3.0, extra_h: float = 0.9):
    """A page-wide figure with ``ncols`` map axes sized to the map's shape."""
    ext = m["extent"]
    ratio = abs(ext[3] - ext[2]) * _aspect(m) / max(abs(ext[1] - ext[0]), 1e-12)
    ax_w = (_FIG_W - legend_w) / ncols - (0.6 if ncols > 1 else 0.0)
    h = min(max(ax_w * ratio, 2.5), 11.0) + extra_h
    fig = _new_fig(_FIG_W, h)
    return fig


def _nice_length(target_m: float) -> float:
    if not math.isfinite(target_m) or target_m <= 0:
        return 0.0
    k = 10 ** math.floor(math.log10(target_m))
    return max(c * k for c in (1, 2, 5) if c * k <= target_m)


def _scale_bar(ax, m: Mapping) -> None:
    from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar

    ext = m["extent"]
    mx, _ = _metres_per_unit(m)
    length = _nice_length(0.25 * abs(ext[1] - ext[0]) * mx)
    if length <= 0:
        return
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    bar = AnchoredSizeBar(ax.transData, length / mx, label, "lower right", pad=0.4,
                          sep=3, frameon=True, size_vertical=0, fontproperties={"size": 8})
    bar.patch.set_alpha(0.85)
    ax.add_artist(bar)


def _decorate(ax, m: Mapping, title: str | None = None) -> None:
    """Limits, aspect, axis labels in °E/°N or metres with the CRS named, and a scale bar."""
    from matplotlib.ticker import ScalarFormatter

    ext = m["extent"]
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect(_aspect(m))
    crs = _crs_label(m)
    if _is_geographic(m):
        ax.set_xlabel(f"Longitude [°E] — {crs}", fontsize=8)
        ax.set_ylabel("Latitude [°N]", fontsize=8)
    else:
        unit = "m"
        ax.set_xlabel(f"Easting [{unit}] — {crs}", fontsize=8)
        ax.set_ylabel(f"Northing [{unit}]", fontsize=8)
        for axis in (ax.xaxis, ax.yaxis):
            fmt = ScalarFormatter(useOffset=False)
            fmt.set_scientific(False)
            axis.set_major_formatter(fmt)
    ax.tick_params(labelsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    _scale_bar(ax, m)


def _hillshade_array(dem: Mapping) -> np.ndarray | None:
    """Hillshade [0, 1] of a DEM preview, with its pixel spacing in metres (on a geographic
    grid, degrees times the metres per degree at the map's centre): elevations in metres
    over spacings in degrees would make every slope near vertical and the shade saturate."""
    from matplotlib.colors import LightSource

    z = np.asarray(dem["array"], dtype="float64")
    if not np.isfinite(z).any():
        return None
    zf = np.where(np.isfinite(z), z, np.nanmean(z))
    ext = dem["extent"]
    mx, my = _metres_per_unit(dem)
    dx = abs(ext[1] - ext[0]) / z.shape[1] * mx
    dy = abs(ext[3] - ext[2]) / z.shape[0] * my
    hs = LightSource(azdeg=315, altdeg=45).hillshade(zf, vert_exag=1.0, dx=dx, dy=dy)
    return np.where(np.isfinite(z), hs, np.nan)


def _hillshade(ax, dem: Mapping | None) -> bool:
    """Draw the hillshade of the DEM preview (see :func:`_hillshade_array`)."""
    hs = _hillshade_array(dem) if dem is not None else None
    if hs is None:
        return False
    ax.imshow(np.ma.masked_invalid(hs), cmap="gray", extent=dem["extent"],
              interpolation="nearest", vmin=0, vmax=1)
    return True


def _nodata(ax, arr: np.ndarray, ext) -> bool:
    """Cells without a value, in one flat colour (drawn over the hillshade)."""
    from matplotlib.colors import ListedColormap

    bad = ~np.isfinite(arr)
    if bad.any():
        ax.imshow(np.ma.masked_where(~bad, np.ones_like(arr)), extent=ext,
                  cmap=ListedColormap([_NODATA_COLOUR]), interpolation="nearest", vmin=0,
                  vmax=1)
    return bool(bad.any())


def _paths(geoms) -> list:
    """Matplotlib paths (holes kept) of polygon geometries."""
    from matplotlib.path import Path as MPath

    out = []
    for g in geoms:
        if g is None or g.is_empty:
            out.append(None)
            continue
        polys = getattr(g, "geoms", [g])
        verts, codes = [], []
        for p in polys:
            if p.geom_type != "Polygon":
                continue
            for ring in (p.exterior, *p.interiors):
                xy = np.asarray(ring.coords)[:, :2]
                if len(xy) < 3:
                    continue
                verts.append(xy)
                codes.append([MPath.MOVETO] + [MPath.LINETO] * (len(xy) - 2) + [MPath.CLOSEPOLY])
        out.append(MPath(np.concatenate(verts), np.concatenate(codes)) if verts else None)
    return out


def _polygons(ax, geoms, **style):
    from matplotlib.collections import PathCollection

    paths = [p for p in _paths(geoms) if p is not None]
    if paths:
        ax.add_collection(PathCollection(paths, **style))


def _mask(ax, maps: Mapping) -> str | None:
    """Masked areas (e.g. glaciers and lakes) hatched; their name, or None."""
    mk = maps.get("mask")
    if not mk or not mk.get("geometries"):
        return None
    _polygons(ax, mk["geometries"], zorder=2.5, **_MASK_STYLE)
    return mk.get("name") or "mask"


def _legend_extras(has_mask: str | None, has_nodata: bool, none_label: str | None = None):
    from matplotlib.patches import Patch

    out = []
    if none_label:
        out.append(Patch(facecolor="none", edgecolor="#555", label=none_label))
    if has_mask:
        out.append(Patch(label=f"masked ({has_mask})", **_MASK_STYLE))
    out.append(Patch(facecolor=_NODATA_COLOUR, edgecolor="#555",
                     label="nodata" if has_mask else "nodata or masked"))
    return out


# --------------------------------------------------------------------------- figures
def _pzi_map(maps: Mapping, labels: Mapping | None) -> str:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pzi = maps["pzi"]
    arr = np.asarray(pzi["array"], dtype="float64")
    ext = pzi["extent"]
    fig = _map_fig(pzi)
    ax = fig.add_subplot(1, 1, 1)
    shaded = _hillshade(ax, maps.get("dem"))
    cmap = ListedColormap(["#ffffff00"] + list(ZONE_COLOURS.values()))
    norm = BoundaryNorm([0.0, *ZONE_LIMITS, 1.0 + 1e-9], cmap.N)
    shown = np.ma.masked_where(~np.isfinite(arr) | (arr < REGION_THRESHOLD), arr)
    ax.imshow(shown, cmap=cmap, norm=norm, extent=ext, interpolation="nearest",
              alpha=0.75 if shaded else 1.0)
    has_nodata = _nodata(ax, arr, ext)
    masked = _mask(ax, maps)
    handles = [Patch(color=c, label=f"{n} ({zone_range_text(n)})")
               for n, c in reversed(ZONE_COLOURS.items())]
    handles += _legend_extras(masked, has_nodata, f"none (PZI < {REGION_THRESHOLD:g})" + (
        ": hillshade" if shaded else ""))
    if labels and len(labels.get("x", [])):
        lab = np.asarray(labels["label"])
        x, y = np.asarray(labels["x"]), np.asarray(labels["y"])
        for v, (name, col) in LABEL_COLOURS.items():
            sel = lab == v
            if sel.any():
                ax.scatter(x[sel], y[sel], s=9, c=col, edgecolors="k", linewidths=0.4, zorder=3)
                handles.append(Line2D([], [], marker="o", ls="", color=col, mec="k", label=name))
    _decorate(ax, pzi, "Permafrost zonation index: zones")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
              frameon=False, title="PZI zone", title_fontsize=8)
    return _figure(fig, "PZI zones (Brown et al. 1997 classes, as in Obu et al. 2019) over a "
                        "hillshade of the DEM, with the labelled points. Nodata: no "
                        "prediction (outside the covariates); masked: excluded by the mask.",
                   "PZI zone map")


def _continuous_panel(fig, ax, maps: Mapping, m: Mapping, *, cmap: str, vmax: float | None,
                      label: str, title: str):
    arr = np.asarray(m["array"], dtype="float64")
    ext = m["extent"]
    shaded = _hillshade(ax, maps.get("dem"))
    top = vmax if vmax is not None else (float(np.nanmax(arr)) if np.isfinite(arr).any() else 1)
    im = ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, vmin=0.0, vmax=top or 1.0,
                   extent=ext, interpolation="nearest", alpha=0.85 if shaded else 1.0)
    has_nodata = _nodata(ax, arr, ext)
    masked = _mask(ax, maps)
    _decorate(ax, m, title)
    cb = fig.colorbar(im, ax=ax, orientation="horizontal", fraction=0.05, pad=0.12,
                      aspect=35)
    cb.set_label(label, fontsize=8)
    cb.ax.tick_params(labelsize=7)
    return masked, has_nodata


def _continuous_maps(maps: Mapping) -> str:
    """The PZI as a continuous probability and, when given, the spread of the fold models."""
    panels = [("pzi", RAMPS["pzi"].name, RAMPS["pzi"].vmax, "PZI: permafrost probability [-]",
               "Permafrost zonation index (continuous)")]
    if maps.get("uncertainty"):
        panels.append(("uncertainty", RAMPS["uncertainty"].name, RAMPS["uncertainty"].vmax,
                       "PZI spread: standard deviation of the fold models [-]",
                       "Uncertainty of the PZI"))
    fig = _map_fig(maps["pzi"], ncols=len(panels), legend_w=0.0 if len(panels) > 1 else 3.0,
                   extra_h=1.6)
    extras = (None, False)
    for i, (key, cmap, vmax, label, title) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        masked, nod = _continuous_panel(fig, ax, maps, maps[key], cmap=cmap, vmax=vmax,
                                        label=label, title=title)
        extras = (extras[0] or masked, extras[1] or nod)
    fig.legend(handles=_legend_extras(*extras), loc="lower center", ncol=3, fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, -0.02))
    cap = ("Left: the calibrated permafrost probability (PZI) over a hillshade. "
           if len(panels) > 1 else "The calibrated permafrost probability (PZI) over a "
                                   "hillshade. ")
    if len(panels) > 1:
        cap += ("Right: its uncertainty, the standard deviation of the PZI of the spatial-CV "
                "fold models (large where the models disagree: extrapolation, few labels).")
    return _figure(fig, cap, "continuous PZI and uncertainty maps")


def _curves(validation: Mapping | None, model: Mapping | None) -> str:
    curves = (validation or {}).get("boreholes", {}).get("curves", {})
    roc = {k: v["roc"] for k, v in curves.items() if v.get("roc")}
    rel = {k: v["reliability"] for k, v in curves.items() if v.get("reliability")}
    cv_rel = ((model or {}).get("calibration") or {}).get("reliability")
    if cv_rel:
        rel = {"model (spatial CV, out-of-fold)": cv_rel, **{f"{k} (boreholes)": v
                                                              for k, v in rel.items()}}
    panels = [p for p, ok in (("roc", bool(roc)), ("rel", bool(rel))) if ok]
    if not panels:
        return ""
    fig = _new_fig(_FIG_W, 5.0)
    caps = []
    for i, kind in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        if kind == "roc":
            rows = {r["map"]: r for r in validation["boreholes"]["table"]}
            for name, c in roc.items():
                auc = rows.get(name, {}).get("auc")
                ax.plot(c["fpr"], c["tpr"], lw=1.2, label=f"{name} (AUC {_f(auc, 3)})")
            ax.set_xlabel("False positive rate [-]")
            ax.set_ylabel("True positive rate [-]")
            ax.set_title("ROC on boreholes", fontsize=10)
            ax.legend(fontsize=7, loc="lower right")
            caps.append("ROC curves of each map on the same boreholes")
        else:
            for name, r in rel.items():
                pts = [(p, o) for p, o in zip(r["mean_predicted"], r["observed_frequency"],
                                              strict=False) if p is not None and o is not None]
                if pts:
                    ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
            ax.set_xlabel("Mean predicted probability [-]")
            ax.set_ylabel("Observed frequency [-]")
            ax.set_title("Reliability", fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
            caps.append("reliability curves (equal-width bins; the diagonal is perfect "
                        "calibration)")
    return _figure(fig, "; ".join(caps)[:1].upper() + "; ".join(caps)[1:] + ".",
                   "ROC and reliability curves")


def _surface_section(sf: Mapping) -> str:
    """The surface-aware model: its parts, what each part's level rests on, their spatial
    CV skill and class offsets (permafrost.surface; docs/method.md "Surface-aware model")."""
    rows = []
    for p, v in (sf.get("parts") or {}).items():
        auc = ((v.get("spatial_cv") or {}).get("auc") or {}).get("mean")
        rows.append([_txt(p), _txt(v.get("rests_on")), _f(auc), _f(v.get("label_prevalence")),
                     _txt(", ".join(v.get("offsets") or {}) or "–"),
                     _txt(v.get("reference_class") or "–")])
    cap = (f"{sf.get('method', '')}; mode {sf.get('mode')}. {sf.get('label_rule', '')}. "
           f"Prediction: {sf.get('prediction_rule', '')}.")
    return _table(["Part", "Level rests on", "Spatial CV AUC", "Label prevalence [-]",
                   "Class offsets", "Reference class"], rows, caption=cap)


def _importance(model: Mapping) -> str:
    imp = model.get("importance") or {}
    key = next((k for k in ("mean_abs_shap", "gain", "coefficient_standardised")
                if imp.get(k) and any(v is not None for v in imp[k].values())), None)
    if key is None:
        return ""
    names = {"mean_abs_shap": "Mean |SHAP value| [log-odds]", "gain": "Gain [-]",
             "coefficient_standardised": "Standardised coefficient [log-odds per SD]"}
    items = sorted(((k, v) for k, v in imp[key].items() if v is not None),
                   key=lambda kv: abs(kv[1]))
    fig = _new_fig(_FIG_W, 0.32 * len(items) + 1.3)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([k for k, _ in items], [v for _, v in items], color="#2171b5")
    ax.set_xlabel(names[key])
    ax.set_title("Feature importance", fontsize=10)
    return _figure(fig, f"Feature importance ({names[key].split(' [')[0].lower()}).",
                   "feature importance")


def _covariates_table(model: Mapping) -> str:
    """Each model covariate's kind and, for a categorical one, its classes (those with
    training labels, and those without, whose cells get no PZI) and coding."""
    rows = []
    for name, c in (model.get("covariates") or {}).items():
        if c.get("kind") != "categorical":
            rows.append([_txt(name), _txt("continuous"), _txt("–"), _txt("–")])
            continue
        names = c.get("class_names") or {}
        trained = "; ".join(f"{k} {names.get(str(k), '')}".strip()
                            for k in c.get("codes_trained") or [])
        none = ", ".join(str(k) for k in c.get("codes_without_labels") or [])
        rows.append([_txt(name), _txt("categorical"),
                     _txt(trained + (f" (no labels, no PZI: {none})" if none else "")),
                     _txt(c.get("coding") or "–")])
    return _table(["Covariate", "Kind", "Classes (code name)", "Coding"], rows, left=4,
                  wrap=True, caption="Covariates of the model. A categorical covariate's "
                  "codes are classes, not numbers; a cell of a class without training labels "
                  "gets no PZI (docs/method.md, \"Categorical covariates\").")


def _agreement_map(name: str, m: Mapping, maps: Mapping | None = None) -> str:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    maps = maps or {}
    arr = np.asarray(m["array"], dtype="float64")
    arr = np.where(arr > 3, np.nan, arr)
    fig = _map_fig(m)
    ax = fig.add_subplot(1, 1, 1)
    shaded = _hillshade(ax, maps.get("dem"))
    cmap = ListedColormap([c for _, c in AGREEMENT_COLOURS.values()])
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], cmap.N)
    ax.imshow(np.ma.masked_invalid(arr), cmap=cmap, norm=norm, extent=m["extent"],
              interpolation="nearest", alpha=0.8 if shaded else 1.0)
    has_nodata = _nodata(ax, arr, m["extent"])
    masked = _mask(ax, maps)
    _decorate(ax, m, f"Agreement with {name}")
    handles = [Patch(color=c, label=n) for n, c in AGREEMENT_COLOURS.values()]
    handles += _legend_extras(masked, has_nodata)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False)
    return _figure(fig, f"Model (PZI ≥ threshold) against {name}: where they agree and "
                        "differ. Nodata: no value in either map.", f"agreement map {name}")


def _kinematics_map(maps: Mapping) -> str:
    """Rock glacier outlines coloured by their downslope velocity in RGIK classes."""
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    k = maps["kinematics"]
    base = maps.get("pzi") or k
    v = np.asarray(k["v_cm_yr"], dtype="float64")
    activity = np.asarray(k.get("activity") or ["?"] * len(v), dtype=object)
    geoms = list(k["geometries"])
    fig = _map_fig(base)
    ax = fig.add_subplot(1, 1, 1)
    _hillshade(ax, maps.get("dem"))
    edges = list(RGIK_CLASS_EDGES_CM_YR)
    cmap = ListedColormap(list(VELOCITY_COLOURS))
    norm = BoundaryNorm([-1e9, *edges, 1e12], cmap.N)
    has = np.isfinite(v)
    unc = activity == "uncertain"
    for sel, hatch, lw in ((has & ~unc, None, 0.5), (has & unc, "....", 0.5)):
        idx = np.flatnonzero(sel)
        if len(idx):
            from matplotlib.collections import PathCollection

            paths = _paths([geoms[i] for i in idx])
            keep = [j for j, p in enumerate(paths) if p is not None]
            coll = PathCollection([paths[j] for j in keep], cmap=cmap, norm=norm,
                                  edgecolor="#333", linewidth=lw, zorder=3)
            coll.set_array(np.maximum(v[idx][keep], -1e8))
            if hatch:
                coll.set_hatch(hatch)
            ax.add_collection(coll)
    none = np.flatnonzero(~has)
    if len(none):
        _polygons(ax, [geoms[i] for i in none], facecolor="#ffffff", edgecolor="#333",
                  linewidth=0.5, zorder=3)
    _decorate(ax, base, "Rock glaciers: downslope velocity")
    labels = ["< 1", "1–3", "3–10", "10–30", "30–100", "100–300", "> 300"]
    handles = [Patch(facecolor=c, edgecolor="#333", linewidth=0.5, label=f"{lab} cm/yr")
               for c, lab in zip(VELOCITY_COLOURS, labels, strict=True)]
    handles += [Patch(facecolor="#fed976", edgecolor="#333", hatch="....", linewidth=0.5,
                      label="activity uncertain"),
                Patch(facecolor="#ffffff", edgecolor="#333", linewidth=0.5,
                      label="no velocity (not covered,\ntoo few valid pixels)")]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False, title=f"{k.get('velocity_label', 'Velocity')} (RGIK class)",
              title_fontsize=8)
    return _figure(fig, "Downslope velocity of each rock glacier outline in the RGIK kinematic "
                        "classes (semi-orders of magnitude, cm/yr), over a hillshade; dotted: "
                        "the activity is uncertain (see the reasons below). Small outlines "
                        "are a few pixels wide at this scale.", "kinematics map")


# --------------------------------------------------------------------------- sections
def _provenance(prov: Mapping) -> str:
    def flat(d, pre=""):
        for k, v in d.items():
            if isinstance(v, Mapping):
                yield from flat(v, f"{pre}{k}.")
            else:
                yield f"{pre}{k}", v
    rows = [(_Raw(_e(k[:1].upper() + k[1:])), _Raw(_e(v if not isinstance(v, (list, tuple))
                                                      else ", ".join(map(str, v)))))
            for k, v in flat(prov)]
    return _table(["Item", "Value"], rows, left=2, wrap=True)


def _labels_table(lab: Mapping) -> str:
    srcs = lab.get("source") or ["all"] * len(lab["label"])
    keys = sorted(set(map(str, srcs)))
    rows = [[_txt(_label(s)),
             _count(sum(1 for a, b in zip(srcs, lab["label"], strict=True)
                        if str(a) == s and int(b) == 1)),
             _count(sum(1 for a, b in zip(srcs, lab["label"], strict=True)
                        if str(a) == s and int(b) == 0))] for s in keys]
    return _table(["Source", "Permafrost [points]", "No permafrost [points]"], rows)


_REGION_HEADER = f"Permafrost region, PZI ≥ {REGION_THRESHOLD:g} [km²]"
_STATS_COLUMNS = [  # (key, header) of the area tables
    ("denominator_km2", "Denominator [km²]"), ("pzi_ge_0.5_km2", "PZI ≥ 0.5 [km²]"),
    ("fraction_pzi_ge_0.5", "Fraction PZI ≥ 0.5 [-]"),
    ("pzi_weighted_km2", "PZI-weighted area [km²]"),
    ("region_km2", _REGION_HEADER),
    ("continuous_km2", "Continuous [km²]"), ("discontinuous_km2", "Discontinuous [km²]"),
    ("sporadic_km2", "Sporadic [km²]"), ("isolated_km2", "Isolated [km²]"),
]


def _stats_tables(stats: Mapping) -> str:
    meta = stats.get("meta", {})
    mask = meta.get("mask")
    note = (f"Denominator: {meta.get('denominator')}; "
            + (f"mask {Path(str(mask.get('source'))).name} ({_f(mask.get('masked_km2'), 2)} "
               "km² excluded)" if mask else "no mask")
            + f". Cell areas: {meta.get('cell_area_method')}. Zones: "
              + ", ".join(f"{n}{' PZI' if hi is None else ''} {zone_range_text(n)}"
                          for n, _, hi in ZONES) + ".")
    head = ["Unit", "Name"] + [h for _, h in _STATS_COLUMNS]
    rows = [[_txt(_label(u["unit"])), _txt(u["name"] if u["unit"] != "all" else "–")]
            + [(_f(u.get(k), 3) if k.startswith("fraction") else _km2(u.get(k)))
               for k, _ in _STATS_COLUMNS] for u in stats.get("units", [])]
    out = _table(head, rows, left=2) + f"<p class='note'>{_e(note)}</p>"
    out += ("<p class='note'>The PZI-weighted area Σ PZI·A is the area estimate (the expected "
            "area of permafrost under the model; Gruber 2012's permafrost area). The area with "
            "PZI ≥ 0.5 counts each cell as all or nothing: a map statistic that depends on how "
            "sharp the probabilities are, not an area estimate.</p>")
    agg = meta.get("zones_aggregated")
    if agg:
        cols = ["continuous", "discontinuous", "sporadic", "isolated", "none"]
        out += _table(["Cells"] + [f"{c.capitalize()} [km²]" for c in cols]
                      + ["PZI ≥ 0.5 [km²]"],
                      [[_txt(f"{agg['cells']} cells of ~{agg['cell_m'] / 1000:g} km "
                             f"({agg['pixels_per_cell'][0]} × {agg['pixels_per_cell'][1]} "
                             "pixels)")]
                       + [_km2(agg.get(f"{c}_km2")) for c in cols] + [_km2(agg["pzi_ge_0.5_km2"])]],
                      caption="Zones on aggregated cells (the ~1 km semantics of Brown et al. "
                              "1997 and Obu et al. 2019: the zone of a cell is the share of it "
                              "underlain by permafrost, here its mean PZI)")
    return out


_PROFILE_STYLE = {"north": ("#2166ac", "-", "o"), "south": ("#b2182b", "-", "s"),
                  "all": ("#444444", ":", ".")}


def _profile_section(prof: Mapping) -> str:
    """The PZI against elevation, north- and south-facing and all cells, with the 0.5 line,
    the lower limits and the highest label marked; the table of band means; the warnings."""
    bands = prof.get("bands") or []
    meta = prof.get("meta") or {}
    if not bands:
        return ""
    min_cells = meta.get("min_band_cells", 1)
    lims = prof.get("lower_limits") or {}
    fig = _new_fig(_FIG_W, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for cls, (color, ls, mk) in _PROFILE_STYLE.items():
        pts = [(b[f"{cls}_mean_pzi"], b["centre_m"]) for b in bands
               if b.get(f"{cls}_mean_pzi") is not None and b.get(f"{cls}_cells", 0) >= min_cells]
        if not pts:
            continue
        ax.plot([p for p, _ in pts], [z for _, z in pts], ls, marker=mk, color=color, ms=4,
                label=f"{cls.replace('_', '/')}-facing" if cls != "all" else "all cells")
        z = (lims.get(cls) or {}).get("elevation_m")
        if z is not None:
            ax.plot([0.5], [z], marker="D", ms=8, mfc="none", mew=1.5, color=color,
                    label=f"lower limit, {cls}: {z:.0f} m")
    ax.axvline(0.5, color="k", lw=0.8, ls="--", label="PZI = 0.5")
    top = meta.get("highest_label_m")
    if top is not None:
        ax.axhline(top, color="#7f7f7f", lw=0.8, ls="-.",
                   label=f"highest label ({top:.0f} m)")
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean PZI of the band [-]")
    ax.set_ylabel("elevation (band centre) [m]")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    width = meta.get("band_width_m")
    cls_txt = meta.get("aspect_classes") or {}
    out = [_figure(fig, f"PZI against elevation by aspect ({_num(width, 0)} m bands, "
                        f"area-weighted band means; bands with at least {min_cells} cells). "
                        f"North: {cls_txt.get('north', '')}; south: {cls_txt.get('south', '')}; "
                        f"{cls_txt.get('flat', 'flat cells')} apart.", "PZI elevation profile")]
    names = [("north", "North-facing"), ("south", "South-facing"), ("east_west", "East/west"),
             ("flat", "Flat"), ("all", "All cells")]
    rows = []
    for cls, label in names:
        lim = lims.get(cls) or {}
        rows.append([_txt(label), _txt("–" if lim.get("elevation_m") is None
                                       else f"{lim['elevation_m']:.0f}"),
                     _txt(str(lim.get("status", "–")).replace("_", " ")),
                     _count(lim.get("crossings"))])
    out.append(_table(["Aspect class", "Lower limit [m]", "How", "Crossings of 0.5"], rows,
                      caption="Lower limit of permafrost (PZI = 0.5) by aspect: "
                              + str(meta.get("lower_limit_rule", ""))))
    head = ["Band [m]"] + [f"{label} PZI" for _, label in names] + ["All [km²]"]
    trows = []
    for b in bands:
        trows.append([_txt(f"{b['band_min_m']:.0f}–{b['band_max_m']:.0f}")]
                     + [_f(b.get(f"{c}_mean_pzi")) for c, _ in names]
                     + [_km2(b.get("all_km2"))])
    out.append(_table(head, trows, caption="Area-weighted mean PZI per elevation band and "
                                           "aspect class"))
    warns = prof.get("warnings") or []
    if warns:
        out.insert(0, "<p class='cap'><b>Warning</b></p><ul>"
                   + "".join(f"<li>{_e(w)}</li>" for w in warns) + "</ul>")
    return "\n".join(out)


_CONFUSION = ("tp", "fp", "fn", "tn")


def _cv_tables(model: Mapping) -> str:
    cv = model.get("cv") or {}
    out = []
    for kind in ("spatial", "random"):
        summ = (cv.get(kind) or {}).get("summary")
        if summ:
            rows = [[_txt(_label(m))] + [_f(v.get(s), 3) for s in ("mean", "std", "min", "max")]
                    for m, v in summ.items() if isinstance(v, Mapping)]
            out.append(_table(["Metric [-]", "Mean", "Std", "Min", "Max"], rows,
                              caption=f"{kind.capitalize()} cross-validation: each metric over "
                                      "the folds (weighted by the label weights)."))
    oof = cv.get("oof_calibrated")
    if oof:
        scal = {k: v for k, v in oof.items() if not isinstance(v, (Mapping, list))}
        counts = [k for k in ("n", "n_pos", "n_neg") if k in scal]
        conf = [k for k in _CONFUSION if k in scal]
        metrics = [k for k in scal if k not in counts and k not in conf]
        rows = [[_txt(_label(k)), _count(scal[k])] for k in counts]
        rows += [[_txt(_label(k)), _f(scal[k], 3)] for k in metrics]
        total = sum(float(scal[k] or 0) for k in conf)
        rows += [[_txt(_label(k) + " (weighted)"), _f(scal[k], 1)] for k in conf]
        note = ""
        if conf:
            note = (f" True/false positives/negatives are sums of the label weights, not "
                    f"point counts: they add up to the total weight {total:,.1f} of the "
                    f"{_count(scal.get('n'))} points; all metrics use the same weights.")
        out.append(_table(["Out-of-fold, calibrated", "Value"], rows,
                          caption="Out-of-fold calibrated predictions of all labels at PZI "
                                  f"threshold {_f(scal.get('threshold'), 2)}." + note))
    if cv.get("block_size_m") is not None:
        out.append(f"<p class='note'>Spatial blocks {_f(cv['block_size_m'] / 1000, 2)} km "
                   f"({_e(cv.get('block_size_rule', ''))}), {_e(cv.get('folds', ''))} folds."
                   "</p>")
    return "\n".join(out)


def _ci_cell(e: Mapping, m: str = "auc", digits: int = 2) -> _Raw:
    """A metric and its bootstrap interval, e.g. ``0.51 [0.31, 0.69]``; an interval that is
    none (validation.bootstrap_metrics ``degenerate``) shows as ``[–]`` with its reason as
    the cell's tooltip (the tables' captions list the reasons)."""
    iv = (e.get("ci") or {}).get(m) or {}
    if e.get(m) is None:
        return _txt("-")
    if iv.get("degenerate"):
        return _Raw(f"{_f(e[m], digits)} <span title='{_e(iv['degenerate'])}'>[–]</span>")
    if iv.get("low") is None:
        return _f(e[m], digits)
    return _Raw(f"{_f(e[m], digits)} [{_f(iv['low'], digits)}, "
                f"{_f(iv['high'], digits)}]")


def _degenerate_note(rows: list[Mapping], key: str, metrics: list[str]) -> str:
    """One line per reason why an interval of these rows is shown as "–"."""
    why: dict[str, list[str]] = {}
    for r in rows:
        for m in metrics:
            reason = ((r.get("ci") or {}).get(m) or {}).get("degenerate")
            if reason and r.get(m) is not None:
                why.setdefault(reason, []).append(f"{r.get(key)}: {_label(m)}")
    return "".join(f"<p class='note'>[–] ({_e('; '.join(v))}): {_e(k)}.</p>"
                   for k, v in why.items())


def _paired_table(b: Mapping) -> str:
    """The model against each prior on the same boreholes: paired bootstrap differences
    (validation.paired_bootstrap) and the sentences where a prior scores higher."""
    out = []
    rows = []
    for pb in b.get("paired") or []:
        for m, d in pb["differences"].items():
            iv = ("–" if d.get("low") is None else
                  f"[{_f(d['low'], 3)}, {_f(d['high'], 3)}]")
            rows.append([_txt(pb["prior"]), _txt(_label(m)), _f(d.get("estimate")), _txt(iv),
                         _f(d.get("share_a_better"), 2)])
    if rows:
        pb0 = b["paired"][0]
        out.append(_table(
            ["Prior", "Metric", "Model − prior", f"{pb0['level']:.0%} interval",
             "Share of resamples where the model scores higher"], rows, left=2,
            caption="The model against each prior on the same boreholes: both maps scored on "
                    f"the same {pb0['resamples']:,} resamples (by {pb0['unit']}), the percentile "
                    "interval of the difference (a paired comparison: maps that err on the same "
                    "boreholes differ less than their separate intervals suggest; Efron & "
                    "Tibshirani 1993; DeLong et al. 1988). A categorical prior's AUC is that "
                    "of its one operating point."))
    for f in b.get("findings") or []:
        out.append(f"<p class='warn'>{_e(f)}</p>")
    return "\n".join(out)


def _transfer_tables(tr: Mapping) -> str:
    """Skill per evidence source, leave-one-source-out, and the CV block's ranges
    (validation.json ``transfer``, :mod:`permafrost.transfer`)."""
    out = []
    rows = []
    for where, scores in (("spatial CV (out of fold)", tr.get("cv_by_source") or {}),
                          ("held-out", tr.get("heldout_by_source") or {})):
        for s, e in scores.items():
            rows.append([_txt(where), _txt(s), _count(e.get("n")), _count(e.get("n_pos")),
                         _count(e.get("n_neg")), _ci_cell(e, "auc"),
                         _ci_cell(e, "balanced_accuracy")])
    if rows:
        out.append(_table(["Scored on", "Evidence source", "Labels", "Permafrost",
                           "No permafrost", "AUC [-] [95 % CI]",
                           "Balanced accuracy [-] [95 % CI]"], rows, left=2,
                          caption="Skill per evidence source, with percentile bootstrap "
                                  "intervals resampled by site."))
    loso = tr.get("leave_one_source_out") or []
    if loso:
        rows = [[_txt(" + ".join(r.get("trained_on") or [])), _txt(r["held_out"]),
                 _count(r.get("n_train")), _count(r.get("n_test")),
                 _txt(r["skipped"]) if "skipped" in r else _ci_cell(r, "auc")] for r in loso]
        out.append(_table(["Trained on", "Scored on", "Training labels", "Scored labels",
                           "AUC [-] [95 % CI]"], rows, left=2,
                          caption="Leave-one-source-out: each evidence source predicted by a "
                                  "model trained on the other sources only. An AUC near 0.5 "
                                  "means what one source teaches does not transfer to the "
                                  "ground the other samples."))
    ac = tr.get("autocorrelation") or {}
    if ac:
        cov = ac.get("covariates") or {}
        per = ", ".join(f"{k} {_num(v / 1000, 2) if v is not None else 'no sill'}"
                        for k, v in (cov.get("ranges_m") or {}).items())
        lab, med = ac.get("label_range_m"), ac.get("covariate_range_m")
        out.append(f"<p class='note'>Ranges of spatial autocorrelation: labels "
                   f"{_e(_num(lab / 1000, 2) if lab is not None else 'none')} km; covariates "
                   f"(median) {_e(_num(med / 1000, 2) if med is not None else 'none')} km "
                   f"({_e(per)} km). CV block "
                   f"{_e(_num((tr.get('block_size_m') or 0) / 1000, 2))} km: "
                   f"{_e(tr.get('block_size_rule') or '')}.</p>")
    if tr.get("rule"):
        out.append(f"<p class='note'>Warning rule: {_e(tr['rule'])}.</p>")
    return "\n".join(out)


def _level_record(model: Mapping) -> Mapping:
    """The model's ``calibration.level`` record (permafrost.level), or ``{}``."""
    return ((model or {}).get("calibration") or {}).get("level") or {}


def _level_warning(model: Mapping) -> str:
    """The warning that the PZI's level rests on the label mix, shown at the top."""
    w = _level_record(model).get("warning")
    return f"<p class='warn'><b>Warning:</b> {_e(w)}.</p>" if w else ""


def _level_line(model: Mapping) -> str:
    """One line of the model section: what the calibrated PZI's level rests on."""
    lev = _level_record(model)
    if not lev:
        return ""
    n = lev.get("n")
    prev = lev.get("prevalence_of_set")
    mix = lev.get("label_prevalence")
    nums = (f" ({n} labels, prevalence {_num(prev, 2)}; label mix {_num(mix, 2)})"
            if n is not None and prev is not None else "")
    return (f"<p class='note'><b>PZI level:</b> {_e(lev.get('rests_on', ''))}{_e(nums)}. "
            f"{_e(lev.get('rule', ''))}.</p>")


def _top_warnings(val: Mapping) -> str:
    """The validation's warnings, shown at the top of the report."""
    ws = val.get("warnings") or []
    return "".join(f"<div class='warn'><b>Warning:</b> {_e(w)}</div>" for w in ws)


def _class_names(p: Mapping) -> dict[str, str]:
    """Name of each class code of a categorical prior (its own names, else its role)."""
    names = {str(k): str(v) for k, v in (p.get("class_names") or {}).items()}
    for c in p.get("permafrost_codes") or []:
        names.setdefault(str(c), f"permafrost (code {c})")
    for c in p.get("other_codes") or []:
        names.setdefault(str(c), f"no permafrost (code {c})")
    return names


def _validation_tables(val: Mapping) -> str:
    out = []
    b = val.get("boreholes")
    if b:
        head = ["Map", "Kind", "Boreholes", "TP", "FP", "FN", "TN", "Accuracy [-]",
                "Balanced accuracy [-]", "Cohen's κ [-]", "AUC [-]", "Brier score [-]"]
        def _ci(r, m):  # the value and its bootstrap interval (validation.bootstrap_metrics)
            return _f(r.get(m)) if r.get(m) is None else _ci_cell(r, m, 3)

        rows = [[_txt(r["map"]), _txt(_label(r["kind"])), _count(r["n"]), _count(r["tp"]),
                 _count(r["fp"]), _count(r["fn"]), _count(r["tn"]), _ci(r, "accuracy"),
                 _ci(r, "balanced_accuracy"), _ci(r, "kappa"), _ci(r, "auc"), _ci(r, "brier")]
                for r in b.get("table", [])]
        bs = b.get("bootstrap") or {}
        boot = (f" In brackets: {bs['level']:.0%} percentile bootstrap intervals "
                f"({bs['resamples']:,} resamples, seed {bs['seed']}, resampled by "
                f"{bs['unit']}; Efron & Tibshirani 1993)."
                + (f" Note: {bs['note']}." if bs.get("note") else "")) if bs else ""
        out.append(_table(head, rows, left=2,
                          caption=f"All maps on the same {b.get('n_common')} boreholes "
                                  f"({b.get('common_rule')}); {b.get('n_read')} read, "
                                  f"{b.get('n_unknown_presence')} with unknown presence. "
                                  "TP/FP/FN/TN: borehole counts at each map's threshold "
                                  "(unweighted)." + boot))
        out.append(_degenerate_note(b.get("table", []), "map",
                                    ["accuracy", "balanced_accuracy", "kappa", "auc", "brier"]))
        out.append(_paired_table(b))
        ex = [[_txt(k), _count(len(v["outside"])), _count(len(v["nodata"]))]
              for k, v in b.get("excluded", {}).items()]
        out.append(_table(["Map", "Boreholes outside", "Boreholes on nodata"], ex))
    pri = val.get("priors") or []
    if pri:
        head = ["Prior", "Kind", "Common area [km²]", "Cohen's κ [-]", "Agreement [-]",
                "Model permafrost [km²]", "Prior permafrost [km²]", "Missed [km²]",
                "Excess [km²]", "IoR [-]", "IoM [-]"]
        rows = [[_txt(p["name"]), _txt(_label(p["kind"])), _km2(a["common_km2"]),
                 _f(a["kappa"]), _f(a["overall_agreement"]), _km2(a["model_permafrost_km2"]),
                 _km2(a["prior_permafrost_km2"]), _km2(a["missed_km2"]), _km2(a["excess_km2"]),
                 _f(a["intersection_over_reference"]), _f(a["intersection_over_model"])]
                for p in pri for a in [p["agreement"]]]
        out.append(_table(head, rows, left=2, caption=(
            "Area agreement on the model grid (priors by nearest neighbour). Missed = prior "
            "permafrost not mapped by the model; excess = model permafrost not in the prior; "
            "IoR = intersection / prior area; IoM = intersection / model area.")))
        for p in pri:
            m = p.get("agreement_matrix")
            if m:
                names = _class_names(p) if p.get("kind") == "categorical" else {}
                cols = [names.get(str(c), str(c)) for c in m["columns"]]
                col_label = str(m["column_label"]).replace(" code", "")
                rows = [[_txt(r)] + [_km2(x) for x in v] for r, v in zip(m["rows"], m["km2"],
                                                                        strict=True)]
                out.append(_table([f"{_label(m['row_label'])} \\ {col_label} [km²]"] + cols,
                                  rows, caption=f"Agreement matrix with {p['name']} (km²)"))
            z = p.get("zones")
            if z and z.get("prior"):
                order = ["continuous", "discontinuous", "sporadic", "isolated", "none"]
                keys = [k for k in order if k in z["model"]] + [
                    k for k in z["model"] if k not in order]
                rows = [[_txt(k), _km2(z["model"].get(k)), _km2(z["prior"].get(k))]
                        for k in keys]
                out.append(_table(["Zone", "Model [km²]", f"{p['name']} [km²]"], rows,
                                  caption=f"Zone areas side by side ({z.get('denominator')})"))
    pw = val.get("pairwise")
    if pw:
        rows = [[_txt(n)] + [_f(x) for x in r] for n, r in zip(pw["maps"], pw["kappa"],
                                                               strict=True)]
        out.append(_table(["Cohen's κ [-]"] + pw["maps"], rows,
                          caption=f"Pairwise kappa ({pw['rule']})"))
    return "\n".join(out)


def _kinematics_tables(kin: Mapping) -> str:
    out = []
    ca = kin.get("class_activity")
    if ca:
        rows = [[_txt(r)] + [_count(x) for x in v] + [_count(sum(v))]
                for r, v in zip(ca["rows"], ca["counts"], strict=True)]
        tot = [sum(c) for c in zip(*ca["counts"], strict=True)] if ca["counts"] else []
        rows.append([_Raw("<b>Total</b>")] + [_count(x) for x in tot] + [_count(sum(tot))])
        out.append(_table(["RGIK kinematic class \\ activity [outlines]"]
                          + [_label(c) for c in ca["columns"]] + ["Total"], rows,
                          caption=f"{_count(kin.get('n_outlines'))} rock glacier outlines by "
                                  "RGIK kinematic class (downslope velocity) and activity "
                                  "(active ≥ 10 cm/yr, transitional 1–10 cm/yr, intact: "
                                  "moving, active or transitional; relict < 1 cm/yr; "
                                  "uncertain: see the reasons)."))
    iv = kin.get("inventory_vs_insar")
    if iv:
        rows = [[_txt(_label(r))] + [_count(x) for x in v]
                for r, v in zip(iv["rows"], iv["counts"], strict=True)]
        out.append(_table([f"Inventory ({iv['column']}) \\ InSAR activity [outlines]"]
                          + [_label(c) for c in iv["columns"]], rows,
                          caption="What InSAR changed: the inventory's activity against the "
                                  "activity measured by InSAR (off the diagonal: changed; "
                                  "InSAR uncertain: the inventory's activity is kept)."))
    ch = kin.get("insar_change")
    if ch:
        rows = [[_txt(c), _txt(r or "–"), _count(n)] for c, r, n in ch["rows"]]
        out.append(_table(["InSAR change", "Reason", "Outlines"], rows, left=2,
                          caption=f"Changes recorded by the kinematics step "
                                  f"({ch['columns']})."))
    reasons = kin.get("uncertain_reasons")
    if reasons:
        out.append(_table(["Why the activity is uncertain", "Outlines"],
                          [[_txt(r), _count(n)] for r, n in reasons],
                          caption="Reasons given for uncertain outlines (most frequent)."))
    tp = kin.get("track_pixels")
    if tp:
        keys = [k for k in ("valid", "nodata", "low_sensitivity", "flat", "shadow_layover",
                            "water", "low_coherence") if any(k in v for v in tp.values())]
        rows = [[_txt(t), _count(v.get("pixels"))]
                + [_Raw(f"{_count(v.get(k))} ({_f(100 * v[k] / v['pixels'], 1)} %)")
                   if v.get("pixels") and v.get(k) is not None else _count(v.get(k))
                   for k in keys] for t, v in tp.items()]
        out.append(_table(["Track", "Pixels"] + [f"{_label(k)} [pixels]" for k in keys], rows,
                          caption="Per-track masks over the whole scene: valid pixels and "
                                  "pixels masked per reason (a pixel may have several)."))
    tr = kin.get("tracks")
    if tr:
        keys = [k for k in tr[0] if k not in ("track", "outlines")]
        rows = [[_txt(r["track"] or "none (not covered)"), _count(r["outlines"])]
                + [_count(r[k]) for k in keys] for r in tr]
        out.append(_table(["Track used", "Outlines"] + [f"{_label(k)} [pixels]" for k in keys],
                          rows, caption="Outlines by the track(s) their velocity comes from, "
                                        "with the pixels inside them, valid and masked per "
                                        "reason (counted on the reported track)."))
    return "\n".join(out)


def _scenarios(sc: Mapping) -> str:
    head = ["Scenario", "Denominator [km²]", "PZI ≥ 0.5 [km²]", "Fraction PZI ≥ 0.5 [-]",
            "PZI-weighted area [km²]", _REGION_HEADER]
    rows = []
    for name, s in sc.items():
        u = next((u for u in s.get("units", []) if u.get("unit") == "all"), {})
        rows.append([_txt(name), _km2(u.get("denominator_km2")), _km2(u.get("pzi_ge_0.5_km2")),
                     _f(u.get("fraction_pzi_ge_0.5")), _km2(u.get("pzi_weighted_km2")),
                     _km2(u.get("region_km2"))])
    return _table(head, rows, caption="Whole-map figures of each scenario")


def _scenario_changes(cmp: Mapping) -> str:
    """Tables of area change against the baseline (computed by area.compare_scenarios)."""
    labels = {"pzi_ge_0.5_km2": "PZI ≥ 0.5", "pzi_weighted_km2": "PZI-weighted",
              "region_km2": "region", "continuous_km2": "continuous",
              "discontinuous_km2": "discontinuous", "sporadic_km2": "sporadic",
              "isolated_km2": "isolated"}
    out = []
    for name, rows in (cmp.get("scenarios") or {}).items():
        head = ["Unit", "Name"] + [f"Δ {labels.get(f, f)} [km²]" for f in cmp["figures"]] + [
            "Δ PZI ≥ 0.5 [%]"]
        body = [[_txt(_label(r["unit"])), _txt(r["name"] if r["unit"] != "all" else "–")]
                + [_km2(r.get(f + "_change")) for f in cmp["figures"]]
                + [_f(r.get("pzi_ge_0.5_km2_change_pct"), 1)] for r in rows]
        out.append(_table(head, body, left=2,
                          caption=f"{name}: change against {cmp.get('baseline', 'baseline')} "
                                  f"({name} − {cmp.get('baseline', 'baseline')})"))
    return "\n".join(out)


_SCENARIO_MEANING = (
    "Each scenario is an equilibrium PZI: the probability of permafrost the model gives for "
    "a climate whose air temperature is ΔT warmer than today's, every covariate not changed "
    "held at today's values. No time is attached to it. Ground temperatures follow air "
    "temperature with a lag of years near the surface to decades and centuries at depth, and "
    "warm, ice-rich permafrost lags most (latent heat of its ice), so a map at +ΔT shows where "
    "permafrost would no longer be in balance with that climate, not where it will have thawed "
    "by a given date (Riseborough et al. 2008; Harris et al. 2009).")


def _run_rows(bundle: Mapping) -> list:
    runs = bundle.get("scenario_runs") or {}
    stats = bundle.get("scenarios") or {}
    cmp = bundle.get("scenario_changes") or {}
    ref = cmp.get("baseline")
    ref_w = None
    if ref in stats:
        ref_w = next((u for u in stats[ref]["units"] if u.get("unit") == "all"), {}).get(
            "pzi_weighted_km2")
    method = set(cmp.get("method_runs") or [])  # method sensitivity: its own section
    rows = []
    for name, st in stats.items():
        if name in method:
            continue
        u = next((u for u in st.get("units", []) if u.get("unit") == "all"), {})
        app = (runs.get(name) or {}).get("applicability") or {}
        ext = app.get("extrapolation") or {}
        w = u.get("pzi_weighted_km2")
        iv = (st.get("meta") or {}).get("pzi_weighted_km2_interval") or {}
        change = None if ref_w in (None, 0) or w is None or name == ref else 100 * (w / ref_w - 1)
        run = runs.get(name) or {}
        rows.append({"cv_auc": run.get("cv_auc"), "holdout": run.get("holdout"),
                     "name": name, "delta_t": app.get("delta_t"), "model": app.get("model"),
                     "features": app.get("features") or [], "weighted": w,
                     "ge05": u.get("pzi_ge_0.5_km2"), "change_pct": change,
                     "interval": (iv["low"], iv["high"]) if "low" in iv else None,
                     "outside": ext.get("outside_share"), "warnings": app.get("warnings") or [],
                     "extrapolation": ext})
    return rows


def _scenario_overview(rows: list, ref: str | None) -> str:
    head = ["Run", "ΔT [°C]", "Model", "Features", "Spatial-CV AUC [-]",
            "Held-out boreholes: AUC / κ [-]", "Area estimate, PZI-weighted [km²]",
            f"Change against {ref or 'baseline'} [%]", "Map area PZI ≥ 0.5 [km²]",
            "Area beyond the training range [-]", "Warnings",
            "Interval, PZI-weighted [km²]"]

    def held(r):
        h = r.get("holdout") or {}
        return _txt("–" if h.get("auc") is None else
                    f"{_num(h['auc'], 3)} / {_num(h.get('kappa'), 3)} (n = {h.get('n')})")

    body = [[_txt(r["name"]), _f(r["delta_t"], 1), _txt(r["model"] or "–"),
             _txt(", ".join(r["features"]) or "–"), _f(r.get("cv_auc")), held(r),
             _km2(r["weighted"]), _f(r["change_pct"], 1), _km2(r["ge05"]), _f(r["outside"]),
             _count(len(r["warnings"])),
             _txt("–" if not r.get("interval") else
                  f"{_num(r['interval'][0], 1)} – {_num(r['interval'][1], 1)}")] for r in rows]
    return _table(head, body, left=4, caption="Runs: the PZI-weighted area is the area "
                  "estimate, the area with PZI ≥ 0.5 a map statistic (see Area statistics)")


def _scenario_warnings(rows: list) -> str:
    items = [f"<li><b>{_e(r['name'])}</b>: {_e(w['message'])}</li>"
             for r in rows for w in r["warnings"]]
    feats = list(dict.fromkeys(f for r in rows
                               for f in ((r["extrapolation"] or {}).get("covariates") or {})))
    out = ""
    if items:
        out += ("<p class='cap'><b>What each run holds fixed or extrapolates</b></p><ul>"
                + "".join(items) + "</ul>")
    if feats:
        def cell(r, f):
            c = ((r["extrapolation"] or {}).get("covariates") or {}).get(f)
            if not c:
                return _txt("–")
            return _txt(f"{_num(c.get('share'), 3)} ({_num(c.get('below_km2'), 1)} / "
                        f"{_num(c.get('above_km2'), 1)})")

        rule = next((r["extrapolation"].get("rule") for r in rows if r["extrapolation"]), "")
        out += _table(["Run", "Any covariate [-]"] + [f"{f}: share (below / above km²)"
                                                      for f in feats],
                      [[_txt(r["name"]), _f(r["outside"])] + [cell(r, f) for f in feats]
                       for r in rows if r["extrapolation"]],
                      caption=f"Share of the mapped area beyond the training range ({rule}); "
                              "map: extrapolation.tif of each run")
    return out


def _area_vs_warming(rows: list, ref: str | None) -> str:
    pts = [r for r in rows if r["delta_t"] is not None and r["weighted"] is not None
           and r["name"] != "baseline"]
    if len(pts) < 2:
        return ""
    pts.sort(key=lambda r: r["delta_t"])
    fig = _new_fig(_FIG_W, 4.0)
    ax = fig.add_subplot(1, 1, 1)
    x = [r["delta_t"] for r in pts]
    ax.plot(x, [r["weighted"] for r in pts], "o-", color="#08306b",
            label="area estimate (PZI-weighted)")
    ivs = [r.get("interval") for r in pts]
    if all(ivs):  # the physical method's interval (n-factor ranges and sigma interval)
        ax.fill_between(x, [i[0] for i in ivs], [i[1] for i in ivs], color="#08306b",
                        alpha=0.15, label="interval (n-factors, sigma)")
    ax.plot(x, [r["ge05"] for r in pts], "s--", color="#6baed6", label="map area PZI ≥ 0.5")
    base = next((r for r in rows if r["name"] == "baseline"), None)
    if base is not None and ref not in (None, "baseline") and base["weighted"] is not None:
        ax.plot([0], [base["weighted"]], "o", mfc="none", color="#d6604d",
                label="baseline model today (PZI-weighted)")
    for r in pts:
        ax.annotate(r["name"], (r["delta_t"], r["weighted"]), textcoords="offset points",
                    xytext=(4, 4), fontsize=7)
    ax.set_xlabel("ΔT, change of mean annual air temperature [°C]")
    ax.set_ylabel("area [km²]")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _figure(fig, "Permafrost area against warming (equilibrium, no time attached). "
                        "Every point uses the same model, so the differences are the "
                        "climate's effect as the model sees it.", "area against warming")


def _scenario_maps(maps: Mapping, rows: list, ref: str | None) -> str:
    sm = maps.get("scenarios") or {}
    names = [r["name"] for r in rows if r["name"] in sm and r["name"] != "baseline"]
    if not names:
        return ""
    n = len(names)
    first = sm[names[0]]
    ext = first["extent"]
    ratio = abs(ext[3] - ext[2]) * _aspect(first) / max(abs(ext[1] - ext[0]), 1e-12)
    ax_w = (_FIG_W - 0.8) / n
    fig = _new_fig(_FIG_W, 2 * min(ax_w * ratio, 5.0) + 1.9)
    fig.subplots_adjust(left=0.06, right=0.99, top=0.95, bottom=0.17, wspace=0.18,
                        hspace=0.3)
    refarr = np.asarray(sm[ref]["array"], dtype="float64") if ref in sm else None
    ims = {}
    labelled = False
    for i, name in enumerate(names):
        m = sm[name]
        arr = np.asarray(m["array"], dtype="float64")
        ax = fig.add_subplot(2, n, i + 1)
        ims["pzi"] = ax.imshow(np.ma.masked_invalid(arr), cmap=RAMPS["pzi"].name, vmin=0, vmax=1,
                               extent=m["extent"], interpolation="nearest")
        _nodata(ax, arr, m["extent"])
        _decorate(ax, m, name)
        ax2 = fig.add_subplot(2, n, n + i + 1)
        if refarr is not None and refarr.shape == arr.shape and name != ref:
            d = arr - refarr
            ims["d"] = ax2.imshow(np.ma.masked_invalid(d), cmap=RAMPS["change"].name, vmin=-1,
                                  vmax=1, extent=m["extent"], interpolation="nearest")
            _nodata(ax2, d, m["extent"])
            _decorate(ax2, m, f"{name} − {ref}")
        else:
            ax2.set_axis_off()
        for a in (ax, ax2):  # the CRS once, under the first change map
            if a is not ax2 or labelled:
                a.set_xlabel("")
            if i:
                a.set_ylabel("")
        labelled = labelled or ax2.axison
    for k, (key, label) in enumerate((("pzi", "PZI [-]"),
                                      ("d", f"PZI change against {ref} [-]"))):
        if key in ims:
            cax = fig.add_axes([0.08 + 0.47 * k, 0.05, 0.4, 0.018])
            cb = fig.colorbar(ims[key], cax=cax, orientation="horizontal")
            cb.set_label(label, fontsize=8)
            cb.ax.tick_params(labelsize=7)
    return _figure(fig, f"Top: the PZI of each run. Bottom: its change against {ref} "
                        "(blue gains, red losses; grey: nodata).", "scenario maps")


def _scenarios_section(bundle: Mapping) -> str:
    """The Scenarios section: what a scenario means, each run's model, areas, warnings and
    extrapolation, area against ΔT, the scenario and change maps, and the change tables
    (bundle keys ``scenarios``, ``scenario_runs``, ``scenario_changes``,
    ``maps['scenarios']``)."""
    if not bundle.get("scenarios"):
        return ""
    ref = (bundle.get("scenario_changes") or {}).get("baseline")
    rows = _run_rows(bundle)
    out = [f"<p>{_e(_SCENARIO_MEANING)}</p>"]
    if ref and ref != "baseline":
        out.append(f"<p class='note'>The scenarios run with the scenario model; "
                   f"{_e(ref)} is that model on today's covariates, and every change is "
                   f"measured against it, so it shows the climate's effect, not the "
                   f"difference between two models. The baseline is today's map of the "
                   f"baseline model; its row compares the two models today.</p>")
    gate = (bundle.get("scenario_changes") or {}).get("reference_gate")
    if gate:
        out.append(_gate_section(gate))
    out.append(_scenario_overview(rows, ref))
    out.append(_scenario_warnings(rows))
    out.append(_area_vs_warming(rows, ref))
    out.append(_scenario_maps(bundle.get("maps") or {}, rows, ref))
    method = set((bundle.get("scenario_changes") or {}).get("method_runs") or [])
    out.append(_scenarios({n: v for n, v in bundle["scenarios"].items() if n not in method}))
    if bundle.get("scenario_changes"):
        out.append(_scenario_changes(bundle["scenario_changes"]))
    return "\n".join(x for x in out if x)


def _gate_section(gate: Mapping) -> str:
    """The gate on the scenario model's map of today (permafrost.area.reference_gate)."""
    names = {"auc": "Held-out AUC [-]", "brier": "Held-out Brier score [-]",
             "area": "PZI-weighted area [km²]"}
    state = {True: "passed", False: "FAILED", None: "not checked"}
    rows = []
    for c in gate.get("checks") or []:
        lim = c.get("limit")
        lim_txt = ("–" if lim is None else f"within ±{100 * lim:.0f} %" if c["name"] == "area"
                   else f"≥ {_num(lim, 3)}" if c["name"] == "auc" else f"≤ {_num(lim, 3)}")
        if c["name"] == "auc" and c.get("reference_ci_high") is not None:
            lim_txt += f"; interval's upper end {_num(c['reference_ci_high'], 3)} ≥ baseline"
        digits = 1 if c["name"] == "area" else 3
        rows.append([_txt(names.get(c["name"], c["name"])), _f(c.get("reference"), digits),
                     _f(c.get("baseline"), digits), _txt(lim_txt), _txt(state[c.get("passed")])])
    verdict = state[gate.get("passed")]
    out = (f"<p class='note'><b>Gate on the scenario model ({_e(verdict)}):</b> "
           f"{_e(gate.get('rule', ''))}.</p>")
    out += _table(["Check", "Reference", "Baseline", "Rule", "Result"], rows,
                  caption="The scenario model's map of today against the baseline's, on the "
                          "baseline's held-out boreholes")
    out += "".join(f"<div class='warn'><b>Warning:</b> {_e(w)}</div>"
                   for w in gate.get("warnings") or [])
    return out


def _gate_warnings(b: Mapping) -> str:
    """The gate's warnings, at the top of the report."""
    gate = (b.get("scenario_changes") or {}).get("reference_gate") or {}
    return "".join(f"<div class='warn'><b>Warning (scenario model):</b> {_e(w)} (see "
                   f"Scenarios)</div>" for w in gate.get("warnings") or [])


def _method_section(bundle: Mapping) -> str:
    """Method sensitivity: runs that change options only (model, features, sampling),
    against the baseline: area and held-out skill (permafrost.area.method_sensitivity)."""
    ms = (bundle.get("scenario_changes") or {}).get("method_sensitivity") or {}
    if not ms.get("runs"):
        return ""
    base = ms.get("baseline") or {}

    def ci(r):
        iv = r.get("auc_ci") or []
        return _txt("–" if r.get("auc") is None else
                    f"{_num(r['auc'], 3)}" + (f" ({_num(iv[0], 3)}–{_num(iv[1], 3)})"
                                              if len(iv) == 2 else "")
                    + (f", n = {r.get('n')}" if r.get("n") is not None else ""))

    rows = [[_txt("baseline"), _txt("the configuration as written"),
             _km2(base.get("pzi_weighted_km2")), _txt("–"), _km2(base.get("pzi_ge_0.5_km2")),
             ci(base), _txt("–"), _f(base.get("brier")), _txt("–")]]
    for name, r in ms["runs"].items():
        rows.append([_txt(name), _txt("; ".join(r.get("changes") or []) or "–"),
                     _km2(r.get("pzi_weighted_km2")), _f(r.get("pzi_weighted_km2_change_pct"), 1),
                     _km2(r.get("pzi_ge_0.5_km2")), ci(r), _f(r.get("auc_change")),
                     _f(r.get("brier")), _f(r.get("brier_change"))])
    head = ["Run", "Changes", "Area estimate, PZI-weighted [km²]", "Change against baseline [%]",
            "Map area PZI ≥ 0.5 [km²]", "Held-out AUC (interval) [-]", "Δ AUC [-]",
            "Held-out Brier [-]", "Δ Brier [-]"]
    return ("<p>Runs that change the method only (model, features, sampling), not the "
            "climate. Each is compared with the baseline on today's covariates and the "
            "held-out boreholes: the spread is how much the map depends on the method. "
            "They are not climate scenarios and are not compared with the scenario model's "
            "reference.</p>"
            + _table(head, rows, left=2, caption="Method sensitivity: each run against the "
                     "baseline (a run that changes the labels' sampling may hold out other "
                     "boreholes; see n)"))


def _support_warnings(b: Mapping) -> str:
    """The label-support warnings (permafrost.applicability.support_warnings), at the top."""
    ws = [w for w in ((b.get("applicability") or {}).get("warnings") or [])
          if w.get("kind") in ("label_support", "debris_only")]
    return "".join(f"<p class='warn'><b>Warning:</b> {_e(w['message'])}.</p>" for w in ws)


def _support_section(app: Mapping) -> str:
    """Representativeness: label counts per surface class (by source) and per covariate
    decile against the map's share (permafrost.applicability.label_support)."""
    sup = app.get("support") or {}
    if not sup:
        return ""
    out = [(f"<p>{_e(sup.get('rule', ''))}. Covariate bins: {_e(sup.get('bin_rule', ''))}. "
            f"Area with too few labels: <b>{_num(sup.get('unsupported_share'), 3)}</b> of the "
            f"mapped area ({_num(sup.get('denominator_km2'), 1)} km²); map: "
            f"{_e(sup.get('map') or '–')}.</p>")]
    srcs = list(sup.get("sources") or {})
    surf = sup.get("surface")
    if surf:
        head = ["Surface class", "Map share [-]", "Area [km²]", "Labels"] + [
            f"{s} labels" for s in srcs] + ["Label share [-]", "Label / map share [-]",
                                         "Supported"]
        body = [[_txt(c["name"]), _f(c["map_share"]), _km2(c["map_km2"]), _count(c["labels"])]
                + [_count(c["by_source"].get(s, 0)) for s in srcs]
                + [_f(c["label_share"]), _f(c.get("representation"), 2),
                   _txt({True: "yes", False: "no"}.get(c["supported"],
                                                                              "–"))]
                for c in surf["classes"]]
        out.append(_table(head, body, caption="Training labels per surface class "
                          f"(land cover: {_file_name(sup.get('landcover'))}); unsupported share "
                          f"{_num(surf.get('unsupported_share'), 3)}"))
    else:
        out.append("<p class='note'>No land-cover map was given: the labels cannot be "
                   "compared with the surface classes of the map.</p>")
    rows = []
    for f, cv in (sup.get("covariates") or {}).items():
        bad = [b for b in cv["bins"] if not b["supported"]]
        rows.append([_txt(f), _count(len(cv["bins"])), _count(len(bad)),
                     _f(cv.get("unsupported_share")),
                     _txt(", ".join(f"{_num(b['low'], 4)}–{_num(b['high'], 4)} "
                                    f"({b['labels']})" for b in bad) or "–")])
    if rows:
        out.append(_table(["Covariate", "Bins", "Unsupported bins", "Map share unsupported [-]",
                           "Unsupported ranges (labels)"], rows, left=1,
                          caption="Training labels per covariate decile of the map"))
    rg = sup.get("rock_glacier") or {}
    if rg.get("n"):
        txt = (f"{rg['n']} rock glacier fronts (coarse debris only); share of the map outside "
               f"the covariate ranges they span: {_num(rg.get('outside_ranges_share'), 3)}")
        if rg.get("classes_share") is not None:
            txt += (f"; in surface classes with fewer than {sup.get('min_labels')} fronts: "
                    f"{_num(rg['classes_share'], 3)}")
        out.append(f"<p>{_e(txt)}.</p>")
    return "\n".join(out)


def _kpis(b: Mapping) -> str:
    out = []
    st = b.get("stats")
    if st:
        u = next((u for u in st.get("units", []) if u.get("unit") == "all"), None)
        if u:
            out.append(("area estimate (PZI-weighted)", f"{_km2(u['pzi_weighted_km2'])} km²"))
            out.append(("map area with PZI ≥ 0.5", f"{_km2(u['pzi_ge_0.5_km2'])} km²"))
            out.append(("fraction PZI ≥ 0.5 of the denominator", _f(u["fraction_pzi_ge_0.5"])))
    summ = (((b.get("model") or {}).get("cv") or {}).get("spatial") or {}).get("summary") or {}
    if isinstance(summ.get("auc"), Mapping) and summ["auc"].get("mean") is not None:
        out.append(("spatial-CV AUC", _f(summ["auc"]["mean"])))
    val = b.get("validation") or {}
    rows = {r["map"]: r for r in (val.get("boreholes") or {}).get("table", [])}
    if "model" in rows:
        out.append(("borehole AUC", _f(rows["model"]["auc"])))
        out.append(("borehole Cohen's κ", _f(rows["model"]["kappa"])))
    return "".join(f"<span class='kpi'>{_e(k)}<b>{v}</b></span>" for k, v in out)


def _slug(name: str) -> str:
    return "sec-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


# --------------------------------------------------------------------------- public
def _literal_text(func):
    """Show every string in the figures literally: matplotlib would parse ``$...$`` in a
    user's name (a prior map called ``price $x$ map``) as TeX, and fail on bad TeX."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib  # noqa: PLC0415

        with matplotlib.rc_context({"text.parse_math": False}):
            return func(*args, **kwargs)

    return wrapper


@_literal_text
def render_report(bundle: Mapping) -> str:
    """Render a bundle (see module docstring) as one self-contained HTML page.

    Parameters
    ----------
    bundle : mapping
        Results of the other steps (plain dicts/lists) and map previews (arrays).

    Returns
    -------
    str
        The HTML text (figures as base64 PNG, inline CSS, no script, no external link).

    Raises
    ------
    InputError
        ``bundle`` is not a mapping (e.g. a path).
    """
    _require_bundle(bundle)
    title = bundle.get("title") or "Permafrost map report"
    maps = bundle.get("maps") or {}
    model = bundle.get("model") or {}
    val = bundle.get("validation") or {}
    sec: list[tuple[str, str]] = []
    missing = []

    def add(name, body):
        if body:
            sec.append((name, body))
        else:
            missing.append(name)

    add("Maps", (_pzi_map(maps, bundle.get("labels")) + "\n" + _continuous_maps(maps))
        if maps.get("pzi") else "")
    kin = bundle.get("kinematics") or {}
    kbody = ""
    if kin:
        kbody = (_kinematics_map(maps) if (maps.get("kinematics") or {}).get("geometries")
                 else "") + "\n" + _kinematics_tables(kin)
    add("Kinematics", kbody.strip())
    lab = bundle.get("labels") or {}
    add("Labels", _labels_table(lab) if lab.get("label") is not None
        and len(lab.get("label", [])) else "")
    add("Cross-validation", (_cv_tables(model) + "\n" + _level_line(model)).strip()
        if model else "")
    if model.get("surface"):  # the surface-aware model (permafrost.surface)
        add("Surface-aware model", _surface_section(model["surface"]))
    add("ROC and reliability", _curves(val, model))
    add("Feature importance", _importance(model) if model else "")
    if model.get("covariates"):  # each covariate's kind; a categorical one's classes
        add("Covariates", _covariates_table(model))
    add("Area statistics", _stats_tables(bundle["stats"]) if bundle.get("stats") else "")
    if (bundle.get("applicability") or {}).get("support"):
        add("Representativeness", _support_section(bundle["applicability"]))
    add("Elevation profile", _profile_section(bundle["profile"]) if bundle.get("profile")
        else "")
    add("Validation", _validation_tables(val) if val else "")
    if val.get("transfer"):  # validated with the model (validate --model, or a pipeline)
        add("Transfer", _transfer_tables(val["transfer"]))
    add("Agreement maps", "\n".join(_agreement_map(n, m, maps)
                                    for n, m in (maps.get("agreement") or {}).items()))
    add("Scenarios", _scenarios_section(bundle))
    if ((bundle.get("scenario_changes") or {}).get("method_sensitivity") or {}).get("runs"):
        add("Method sensitivity", _method_section(bundle))
    add("Provenance", _provenance(bundle["provenance"]) if bundle.get("provenance") else "")
    toc = "".join(f"<li><a href='#{_slug(n)}'>{_e(n)}</a></li>" for n, _ in sec)
    body = [f"<h1>{_e(title)}</h1>", _top_warnings(val), _top_warnings(model),
            _gate_warnings(bundle), f"<div>{_kpis(bundle)}</div>", _support_warnings(bundle),
            _level_warning(model)]
    pw = (bundle.get("profile") or {}).get("warnings") or []
    if pw:  # a map whose PZI falls with elevation above its labels: said at the top
        body.append("<p class='cap'><b>Warnings</b></p><ul>"
                    + "".join(f"<li>{_e(w)} (see Elevation profile)</li>" for w in pw)
                    + "</ul>")
    if sec:
        body.append(f"<nav class='toc'><b>Contents</b><ol>{toc}</ol></nav>")
    body += [f"<section id='{_slug(n)}'><h2>{_e(n)}</h2>\n{b}</section>" for n, b in sec]
    if missing:
        body.append(f"<p class='note'>Sections without input: {_e(', '.join(missing))}.</p>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def report_json(bundle: Mapping) -> dict:
    """The numbers of the report (the bundle without the map arrays), JSON-ready.

    Raises
    ------
    InputError
        ``bundle`` is not a mapping (e.g. a path).
    """
    _require_bundle(bundle)
    out = {k: v for k, v in bundle.items() if k not in ("maps", "labels")}
    lab = bundle.get("labels") or {}
    if lab.get("label") is not None:
        labels = [int(v) for v in lab["label"]]
        out["labels"] = {"n": len(labels), "n_permafrost": sum(labels),
                         "n_no_permafrost": len(labels) - sum(labels)}

    def src(v):
        if isinstance(v, Mapping) and ("array" in v or "geometries" in v):
            return v.get("source")
        return {n: m.get("source") for n, m in v.items()}

    out["maps"] = {k: src(v) for k, v in (bundle.get("maps") or {}).items()}
    return out


def _require_bundle(bundle) -> None:
    if not isinstance(bundle, Mapping):
        raise InputError(f"expected the report bundle as a mapping, got {type(bundle).__name__}",
                         field="bundle", fix="see the keys in permafrost.report's docstring, "
                                             "or render from files with "
                                             "permafrost.report_from_files(...)")
