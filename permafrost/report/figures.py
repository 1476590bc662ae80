"""The report's figures (matplotlib) and their encoding as images embedded in the page.

Every map has a hillshade of the DEM (computed with the pixel spacing in metres), axis labels
in °E/°N or metres with the CRS named, a scale bar, and legend entries for nodata and masked
cells; every figure is the page width. Colours come from :mod:`permafrost.styles`.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Mapping

import numpy as np

import permafrost.report as _package  # the package's _figure: the one hook (see _embed)
from permafrost.area import REGION_THRESHOLD, ZONE_LIMITS, zone_range_text
from permafrost.kinematics import RGIK_CLASS_EDGES_CM_YR
from permafrost.report.page import _e, _f, _num
from permafrost.styles import (
    AGREEMENT_CLASSES,
    LABEL_COLOURS,
    NODATA_COLOUR,
    RAMPS,
    VELOCITY_COLOURS,
    series_colours,
)
from permafrost.styles import ZONE_COLOURS as _ALL_ZONE_COLOURS

#: zone colours (Brown et al. 1997 classes), light to dark blue (:mod:`permafrost.styles`;
#: cells below the lowest zone are left transparent in the figures)
ZONE_COLOURS = {n: c for n, c in _ALL_ZONE_COLOURS.items() if n != "none"}


AGREEMENT_COLOURS = AGREEMENT_CLASSES


#: width of every figure [inch]: at 100 dpi, the page width (1100 px)
_FIG_W = 11.0


_DPI = 100


#: colours of cells without a value in map figures
_NODATA_COLOUR = NODATA_COLOUR


_MASK_STYLE = {"facecolor": "#ffffff", "edgecolor": "#7f7f7f", "hatch": "////",
               "linewidth": 0.4}


#: pixels per CSS pixel of the embedded images (2: sharp on HiDPI screens and in print)
_SCALE = 2


def _encode(fig) -> tuple[str, str, int]:
    """The figure as a full-colour image: (MIME type, base64 data, CSS width [px]).

    Rendered at ``_SCALE`` times the page's 100 px per inch and shown at its CSS width, so a
    HiDPI screen gets one image pixel per device pixel. The colours are kept exactly (no
    palette quantisation: ramps and colour bars stay smooth); the file stays small because
    the maps' rasters are decimated previews (``max_size`` of the report workflow). Encoded as
    an RGB PNG (colour type 2) or lossless WebP, whichever is smaller; both are
    deterministic (no date or software chunk). WebP at effort 2 of 6: the
    higher efforts save a third of the bytes at five times the time.
    """
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI * _SCALE, bbox_inches="tight",
                metadata={"Software": None}, facecolor="white")
    img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    png = io.BytesIO()
    img.save(png, format="PNG")
    webp = io.BytesIO()  # lossless; quality 80 / method 2: the effort, not the fidelity
    img.save(webp, format="WEBP", lossless=True, quality=80, method=2)
    mime, data = min((("image/png", png.getvalue()), ("image/webp", webp.getvalue())),
                     key=lambda kv: len(kv[1]))
    return mime, base64.b64encode(data).decode("ascii"), round(img.width / _SCALE)


def _figure(fig, caption: str, alt: str) -> str:
    mime, data, width = _encode(fig)
    return (f"<figure><img alt='{_e(alt)}' width='{width}' src='data:{mime};base64,{data}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _embed(fig, caption: str, alt: str) -> str:
    """A figure as HTML through the package's one hook, ``permafrost.report._figure`` (tests
    replace it there to capture the matplotlib figures instead of encoding them)."""
    return _package._figure(fig, caption, alt)


def _new_fig(w: float = _FIG_W, h: float = 4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


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


def _fit(ax, arr, ext, *, categorical: bool = False):
    """The raster at the resolution it is shown: one cell per CSS pixel of the axes (2 × 2
    device pixels at ``_SCALE`` 2), by block means (continuous values; NaN cells left out)
    or the block's centre cell (classes, masks). Text and lines stay at the full 2×; the
    image stays small because the raster is decimated, not its colours. Returns the array
    and its extent (grown to whole blocks; the axes' limits clip it back)."""
    import warnings

    nx = arr.shape[1]
    w_css = ax.figure.get_figwidth() * _DPI * ax.get_position().width
    k = int(math.ceil(nx / max(int(w_css), 16)))
    if k <= 1:
        return arr, ext
    ny = arr.shape[0]
    py, px = -ny % k, -nx % k
    left, right, bottom, top = ext
    dx, dy = (right - left) / nx, (top - bottom) / ny
    new_ext = [left, right + px * dx, bottom - py * dy, top]
    if categorical:
        return arr[k // 2::k, k // 2::k], [left, left + len(range(k // 2, nx, k)) * k * dx,
                                          top - len(range(k // 2, ny, k)) * k * dy, top]
    a = np.ma.filled(np.ma.asarray(arr, dtype="float64"), np.nan)
    a = np.pad(a, ((0, py), (0, px)), constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # blocks without a value: NaN
        out = np.nanmean(a.reshape(a.shape[0] // k, k, a.shape[1] // k, k), axis=(1, 3))
    return np.ma.masked_invalid(out), new_ext


def _imshow(ax, arr, *, extent, categorical: bool = False, **kw):
    """``ax.imshow`` of a raster decimated to its display size (:func:`_fit`)."""
    a, e = _fit(ax, arr, extent, categorical=categorical)
    return ax.imshow(a, extent=e, **kw)


def _coarse(dem: Mapping | None, k: int = 2) -> Mapping | None:
    """A DEM preview with every ``k``-th cell: the background hillshade of maps whose
    subject is vectors (outlines, blocks, points), where relief is context only."""
    if dem is None:
        return None
    return {**dem, "array": np.asarray(dem["array"])[::k, ::k]}


def _hillshade(ax, dem: Mapping | None) -> bool:
    """Draw the hillshade of the DEM preview (see :func:`_hillshade_array`)."""
    hs = _hillshade_array(dem) if dem is not None else None
    if hs is None:
        return False
    _imshow(ax, np.ma.masked_invalid(hs), cmap="gray", extent=dem["extent"],
              interpolation="nearest", vmin=0, vmax=1)
    return True


def _nodata(ax, arr: np.ndarray, ext) -> bool:
    """Cells without a value, in one flat colour (drawn over the hillshade)."""
    from matplotlib.colors import ListedColormap

    bad = ~np.isfinite(arr)
    if bad.any():
        _imshow(ax, np.ma.masked_where(~bad, np.ones_like(arr)), extent=ext, categorical=True,
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
    _imshow(ax, shown, cmap=cmap, norm=norm, extent=ext, interpolation="nearest", categorical=True,
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
    return _embed(fig, "PZI zones (Brown et al. 1997 classes, as in Obu et al. 2019) over a "
                        "hillshade of the DEM, with the labelled points. Nodata: no "
                        "prediction (outside the covariates); masked: excluded by the mask.",
                   "PZI zone map")


def _continuous_panel(fig, ax, maps: Mapping, m: Mapping, *, cmap: str, vmax: float | None,
                      label: str, title: str):
    arr = np.asarray(m["array"], dtype="float64")
    ext = m["extent"]
    shaded = _hillshade(ax, maps.get("dem"))
    top = vmax if vmax is not None else (float(np.nanmax(arr)) if np.isfinite(arr).any() else 1)
    im = _imshow(ax, np.ma.masked_invalid(arr), cmap=cmap, vmin=0.0, vmax=top or 1.0,
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
    return _embed(fig, cap, "continuous PZI and uncertainty maps")


def _curves(validation: Mapping | None, model: Mapping | None) -> str:
    """ROC and reliability on the boreholes, one colour per map in both panels
    (:func:`permafrost.styles.series_colours`); a categorical map has one operating point,
    drawn as a point on the ROC (not the diagonal through it); each reliability point carries
    its bin's number of labels."""
    b = (validation or {}).get("boreholes", {})
    curves = b.get("curves", {})
    rows = {r["map"]: r for r in b.get("table", [])}
    roc = {k: v["roc"] for k, v in curves.items() if v.get("roc")}
    rel = {k: v["reliability"] for k, v in curves.items() if v.get("reliability")}
    cv_rel = ((model or {}).get("calibration") or {}).get("reliability")
    colours = series_colours(["model", *roc, *rel])
    series = []  # (label, map, reliability, line style)
    if cv_rel:
        series.append(("model (spatial CV, out-of-fold)", "model", cv_rel, "--"))
    series += [(f"{k} (boreholes)" if cv_rel else k, k, v, "-") for k, v in rel.items()]
    panels = [p for p, ok in (("roc", bool(roc)), ("rel", bool(series))) if ok]
    if not panels:
        return ""
    fig = _new_fig(_FIG_W, 5.0)
    caps = []
    for i, kind in enumerate(panels):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        if kind == "roc":
            for name, c in roc.items():
                auc = rows.get(name, {}).get("auc")
                col = colours[name]
                if rows.get(name, {}).get("kind") == "categorical":
                    fpr, tpr = _operating_point(c)
                    ax.plot([fpr], [tpr], "D", ms=7, color=col, mec="k", mew=0.6,
                            label=f"{name}: operating point (AUC {_f(auc, 3)})")
                    continue
                ax.plot(c["fpr"], c["tpr"], lw=1.4, color=col,
                        label=f"{name} (AUC {_f(auc, 3)})")
            ax.set_xlabel("False positive rate [-]")
            ax.set_ylabel("True positive rate [-]")
            ax.set_title("ROC on boreholes", fontsize=10)
            ax.legend(fontsize=7, loc="lower right")
            caps.append("ROC curves of each map on the same boreholes (a categorical map "
                        "has one operating point, drawn as a point; its AUC is that point's "
                        "balanced accuracy)")
        else:
            for label, name, r, ls in series:
                cnt = r.get("count") or [None] * len(r["mean_predicted"])
                pts = [(p, o, n) for p, o, n in zip(r["mean_predicted"],
                                                    r["observed_frequency"], cnt, strict=False)
                       if p is not None and o is not None]
                if not pts:
                    continue
                col = colours[name]
                ax.plot([p for p, _, _ in pts], [o for _, o, _ in pts], ls, marker="o", ms=3,
                        color=col, label=label)
                for p, o, n in pts:
                    if n is not None:
                        ax.annotate(f"{int(n)}", (p, o), textcoords="offset points",
                                    xytext=(3, -8 if ls == "--" else 4), fontsize=6,
                                    color=col)
            ax.set_xlabel("Mean predicted probability [-]")
            ax.set_ylabel("Observed frequency [-]")
            ax.set_title("Reliability", fontsize=10)
            ax.legend(fontsize=7, loc="upper left")
            caps.append("reliability curves (equal-width bins; the number by each point is "
                        "the bin's number of labels; the dotted diagonal is perfect "
                        "calibration)")
    return _embed(fig, "; ".join(caps)[:1].upper() + "; ".join(caps)[1:] + ".",
                  "ROC and reliability curves")


def _operating_point(c: Mapping) -> tuple[float, float]:
    """The one (FPR, TPR) point of a categorical map's ROC: the point off the corners."""
    pts = [(f, t) for f, t in zip(c["fpr"], c["tpr"], strict=False)
           if f is not None and t is not None and (f, t) not in ((0, 0), (1, 1))]
    return pts[0] if pts else (float(c["fpr"][-1]), float(c["tpr"][-1]))


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
    return _embed(fig, f"Feature importance ({names[key].split(' [')[0].lower()}).",
                   "feature importance")


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
    _imshow(ax, np.ma.masked_invalid(arr), cmap=cmap, norm=norm, extent=m["extent"],
            categorical=True,
              interpolation="nearest", alpha=0.8 if shaded else 1.0)
    has_nodata = _nodata(ax, arr, m["extent"])
    masked = _mask(ax, maps)
    _decorate(ax, m, f"Agreement with {name}")
    handles = [Patch(color=c, label=n) for n, c in AGREEMENT_COLOURS.values()]
    handles += _legend_extras(masked, has_nodata)
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False)
    return _embed(fig, f"Model (PZI ≥ threshold) against {name}: where they agree and "
                        "differ. Nodata: no value in either map.", f"agreement map {name}")


def _cv_map(maps: Mapping) -> str:
    """The held-out blocks and the CV blocks with the training labels and the held-out
    boreholes (bundle ``maps['cv']``), over a hillshade."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    cv = maps.get("cv") or {}
    base = maps.get("pzi") or maps.get("dem")
    if not base or not (cv.get("held_out") or cv.get("cv_blocks")):
        return ""
    fig = _map_fig(base)
    ax = fig.add_subplot(1, 1, 1)
    _hillshade(ax, _coarse(maps.get("dem")))
    handles = []
    if cv.get("cv_blocks"):
        _polygons(ax, cv["cv_blocks"], facecolor="none", edgecolor="#0072b2", linewidth=0.7,
                  zorder=2.6)
        handles.append(Patch(facecolor="none", edgecolor="#0072b2",
                             label=f"CV block ({_num((cv.get('block_m') or 0) / 1000, 2)} km) "
                                   "holding labels"))
    if cv.get("held_out"):
        _polygons(ax, cv["held_out"], facecolor="#e69f0055", edgecolor="#d55e00",
                  linewidth=1.4, hatch="\\\\", zorder=2.7)
        handles.append(Patch(facecolor="#e69f0055", edgecolor="#d55e00", hatch="\\\\",
                             label="held-out block (validation only)"))
    tr = cv.get("train") or {}
    if tr.get("x"):
        x, y = np.asarray(tr["x"]), np.asarray(tr["y"])
        src = np.asarray(tr.get("source") or ["label"] * len(x), dtype=object)
        for s_, (mk, col, size) in {"rock_glacier": ("^", "#7f7f7f", 10),
                                    "borehole": ("o", "#0072b2", 18),
                                    "gtnp": ("s", "#0072b2", 18),
                                    "permos": ("s", "#0072b2", 18)}.items():
            sel = src == s_
            if sel.any():
                ax.scatter(x[sel], y[sel], s=size, marker=mk, c=col, edgecolors="white",
                           linewidths=0.3, zorder=3)
                handles.append(Line2D([], [], marker=mk, ls="", color=col, mec="white",
                                      label=f"training: {s_.replace('_', ' ')}"))
    ho = cv.get("held_out_boreholes") or {}
    if ho.get("x"):
        ax.scatter(ho["x"], ho["y"], s=30, marker="D", c="#000000", edgecolors="white",
                   linewidths=0.5, zorder=3.5)
        handles.append(Line2D([], [], marker="D", ls="", color="#000000", mec="white",
                              label=f"held-out borehole ({len(ho['x'])})"))
    _decorate(ax, base, "Spatial cross-validation and hold-out")
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              frameon=False)
    return _embed(fig, "Where the model was validated: the held-out blocks (their boreholes "
                       "score the map and never train it) and the squares of the spatial "
                       "cross-validation laid over the training labels (Roberts et al. 2017; "
                       "whole blocks go to one fold; the points of one rock glacier stay "
                       "together). The per-label fold numbers are not saved by the train "
                       "step, so the folds themselves are not coloured.", "CV and hold-out map")


def _response_figure(resp: Mapping) -> str:
    """Response curves: the partial dependence of the PZI on each covariate, one panel per
    covariate, one colour per model (the baseline solid, the scenario model dashed)."""
    models = {n: c for n, c in (resp.get("models") or {}).items() if c}
    feats = list(dict.fromkeys(f for c in models.values() for f in c))
    if not feats:
        return ""
    units = resp.get("units") or {}
    ncol = min(4, len(feats))
    nrow = math.ceil(len(feats) / ncol)
    fig = _new_fig(_FIG_W, 2.6 * nrow + 0.6)
    colours = series_colours(["model", *[n for n in models if n != "baseline"]])
    style = {n: (colours["model"] if n == "baseline" else colours[n],
                 "-" if n == "baseline" else "--") for n in models}
    for k, f in enumerate(feats):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        for n, c in models.items():
            cur = c.get(f)
            if not cur:
                continue
            pts = [(x, y) for x, y in zip(cur["x"], cur["pzi"], strict=True) if y is not None]
            if pts:
                col, ls = style[n]
                ax.plot([x for x, _ in pts], [y for _, y in pts], ls, color=col, lw=1.5,
                        label=n)
        u = units.get(f)
        u = "-" if str(u) == "1" else u  # UDUNITS "1": dimensionless
        ax.set_xlabel(f"{f} [{u}]" if u else f"{f} [unit not recorded]", fontsize=8)
        ax.set_ylim(0, 1)
        if k % ncol == 0:
            ax.set_ylabel("partial dependence: PZI [-]", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if k == 0 and len(models) > 1:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return _embed(fig, "Response curves: the PZI the model gives, averaged over "
                       f"{resp.get('points')} training labels, when one covariate alone is set "
                       "to each value (partial dependence, Friedman 2001); "
                       + ("solid: baseline model, dashed: the scenario model. " if len(models)
                          > 1 else "") + "Monotone constraints show as curves that never turn. "
                       "Where covariates are correlated (MAAT with elevation and NDVI) the "
                       "curve combines values that do not occur together and extrapolates "
                       "there.", "response curves")


def _ground_thermal_figure(gt: Mapping) -> str:
    """MAGT and active-layer thickness of each temperature record against elevation."""
    rows = [r for r in gt.get("boreholes") or [] if r.get("elevation_m") is not None]
    if not any(r.get("magt_c") is not None or r.get("alt_m") is not None for r in rows):
        return ""
    fig = _new_fig(_FIG_W, 3.8)
    style = {"permafrost": ("#0072b2", "o"), "no_permafrost": ("#d55e00", "s"),
             "insufficient": ("#7f7f7f", "x")}
    for k, (key, label) in enumerate((("magt_c", "MAGT [°C]"),
                                      ("alt_m", "active-layer thickness [m]"))):
        ax = fig.add_subplot(1, 2, k + 1)
        for st, (col, mk) in style.items():
            pts = [(r[key], r["elevation_m"]) for r in rows
                   if r.get(key) is not None and r.get("status") == st]
            if pts:
                ax.plot([p for p, _ in pts], [z for _, z in pts], mk, color=col, ms=5,
                        ls="", label=st.replace("_", " "))
        if key == "magt_c":
            ax.axvline(0, color="k", lw=0.8, ls="--")
        ax.set_xlabel(label)
        ax.set_ylabel("elevation [m]")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _embed(fig, "Ground-thermal results of the temperature records (GTN-P): left, the "
                       "mean annual ground temperature (MAGT) against elevation, right, the "
                       "mean active-layer thickness; colour: the record's verdict.",
                  "ground thermal")


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
    _hillshade(ax, _coarse(maps.get("dem")))
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
    return _embed(fig, "Downslope velocity of each rock glacier outline in the RGIK kinematic "
                        "classes (semi-orders of magnitude, cm/yr), over a hillshade; dotted: "
                        "the activity is uncertain (see the reasons below). Small outlines "
                        "are a few pixels wide at this scale.", "kinematics map")


_PROFILE_STYLE = {"north": ("#2166ac", "-", "o"), "south": ("#b2182b", "-", "s"),
                  "all": ("#444444", ":", ".")}


def _profile_figure(prof: Mapping) -> str:
    """The PZI against elevation, north- and south-facing and all cells, with the 0.5 line,
    the lower limits and the highest label marked."""
    bands = prof.get("bands") or []
    meta = prof.get("meta") or {}
    min_cells = meta.get("min_band_cells", 1)
    lims = prof.get("lower_limits") or {}
    fig = _new_fig(_FIG_W, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    spread = prof.get("fold_spread") or {}
    for cls, (color, _, _) in _PROFILE_STYLE.items():
        lo, hi = ({(b["centre_m"]): b.get(f"{cls}_mean_pzi") for b in
                   (spread.get(k) or {}).get("bands") or []
                   if b.get(f"{cls}_cells", 0) >= min_cells} for k in ("low", "high"))
        zs = sorted(z for z in lo if lo[z] is not None and hi.get(z) is not None)
        if zs and cls != "all":
            ax.fill_betweenx(zs, [lo[z] for z in zs], [hi[z] for z in zs], color=color,
                             alpha=0.15, lw=0,
                             label=f"{cls}: fold spread (PZI ± σ of the fold models)")
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
    return _embed(fig, f"PZI against elevation by aspect ({_num(width, 0)} m bands, "
                        f"area-weighted band means; bands with at least {min_cells} cells). "
                        f"North: {cls_txt.get('north', '')}; south: {cls_txt.get('south', '')}; "
                        f"{cls_txt.get('flat', 'flat cells')} apart."
                  + (" Shaded: the band means of PZI − σ and PZI + σ, σ the spread (standard "
                     "deviation) of the spatial-CV fold models' PZI." if spread else ""),
                  "PZI elevation profile")


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
    return _embed(fig, "Permafrost area against warming (equilibrium, no time attached). "
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
        ims["pzi"] = _imshow(ax, np.ma.masked_invalid(arr), cmap=RAMPS["pzi"].name, vmin=0, vmax=1,
                               extent=m["extent"], interpolation="nearest")
        _nodata(ax, arr, m["extent"])
        _decorate(ax, m, name)
        ax2 = fig.add_subplot(2, n, n + i + 1)
        if refarr is not None and refarr.shape == arr.shape and name != ref:
            d = arr - refarr
            ims["d"] = _imshow(ax2, np.ma.masked_invalid(d), cmap=RAMPS["change"].name, vmin=-1,
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
    return _embed(fig, f"Top: the PZI of each run. Bottom: its change against {ref} "
                        "(blue gains, red losses; grey: nodata).", "scenario maps")


def _literal_text(func):
    """Show every string in the figures literally: matplotlib would parse ``$...$`` in a
    user's name (a prior map called ``price $x$ map``) as TeX, and fail on bad TeX."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        import matplotlib  # noqa: PLC0415

        with matplotlib.rc_context({"text.parse_math": False}):
            return func(*args, **kwargs)

    return wrapper
