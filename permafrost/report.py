"""The report: one self-contained HTML file (figures embedded as PNG) plus the same numbers as JSON.

This module renders; it computes nothing.  Its input is a plain dict (a *bundle*) of what the
other steps wrote — statistics JSON (:mod:`permafrost.area`), validation JSON
(:mod:`permafrost.validation`), the model's ``metadata.json`` (CV metrics, reliability,
importance), a provenance manifest — plus decimated map previews (arrays) for the figures.
Every key is optional; a section whose input is absent is left out and listed as such.

Bundle keys
-----------
``title`` (str), ``provenance`` (dict), ``stats`` (stats JSON), ``validation`` (validation
JSON), ``model`` (model metadata JSON), ``scenarios`` ({name: stats JSON}),
``maps``: ``{"pzi": {"array", "extent", "crs"}, "dem": {...}, "agreement": {name: {...}}}``
(``extent`` = ``[left, right, bottom, top]`` in the map CRS), ``labels``:
``{"x": [...], "y": [...], "label": [...], "source": [...]}`` in the map CRS.

The HTML needs no network, no script and no external file: it opens offline in any browser.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["render_report", "report_json", "report_from_files", "ZONE_COLOURS"]

#: zone colours (Brown et al. 1997 classes), light to dark blue
ZONE_COLOURS = {
    "isolated": "#c6dbef",
    "sporadic": "#6baed6",
    "discontinuous": "#2171b5",
    "continuous": "#08306b",
}
AGREEMENT_COLOURS = {0: ("neither", "#f2f2f2"), 1: ("both", "#1b7837"),
                     2: ("model only (excess)", "#d6604d"), 3: ("prior only (missed)", "#4393c3")}

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.6em}h2{border-bottom:2px solid #2171b5;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.6em 0;font-size:.85em}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right}
th{background:#eef3fa}td.l,th.l{text-align:left}
.kpi{display:inline-block;margin:.3em 1.2em .3em 0;padding:.5em .8em;background:#eef3fa;
border-radius:4px}.kpi b{font-size:1.3em;display:block}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.note{color:#555;font-size:.85em}
img{max-width:100%}
"""


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


def _table(header: list, rows: list, *, left: int = 1, caption: str | None = None) -> str:
    out = ["<table>"]
    if caption:
        out.append(f"<caption class='note'>{_e(caption)}</caption>")
    out.append("<tr>" + "".join(f"<th class='{'l' if i < left else ''}'>{_e(h)}</th>"
                                for i, h in enumerate(header)) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td class='{'l' if i < left else ''}'>{v if isinstance(v, _Raw) else _num(v)}</td>"
            for i, v in enumerate(r)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


class _Raw(str):
    """Already-escaped HTML cell content."""


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight", metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return data


def _figure(fig, caption: str, alt: str) -> str:
    return (f"<figure><img alt='{_e(alt)}' src='data:image/png;base64,{_png(fig)}'>"
            f"<figcaption>{_e(caption)}</figcaption></figure>")


def _new_fig(w: float = 6.5, h: float = 4.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def _aspect(m: Mapping) -> float:
    crs = str(m.get("crs") or "")
    if "4326" in crs or "+proj=longlat" in crs or crs.upper().startswith("GEOGCS"):
        lat = 0.5 * (m["extent"][2] + m["extent"][3])
        return 1.0 / max(math.cos(math.radians(lat)), 1e-3)
    return 1.0


# --------------------------------------------------------------------------- figures
def _pzi_map(maps: Mapping, labels: Mapping | None) -> str:
    from matplotlib.colors import BoundaryNorm, LightSource, ListedColormap
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    pzi = maps["pzi"]
    arr = np.asarray(pzi["array"], dtype="float64")
    ext = pzi["extent"]
    fig = _new_fig(8, 6.5)
    ax = fig.add_subplot(1, 1, 1)
    dem = maps.get("dem")
    if dem is not None:
        z = np.asarray(dem["array"], dtype="float64")
        zf = np.where(np.isnan(z), np.nanmean(z) if np.isfinite(z).any() else 0.0, z)
        ls = LightSource(azdeg=315, altdeg=45)
        ax.imshow(ls.hillshade(zf, vert_exag=1.0), cmap="gray", extent=dem["extent"],
                  interpolation="nearest", vmin=0, vmax=1)
    cmap = ListedColormap(["#ffffff00"] + list(ZONE_COLOURS.values()))
    norm = BoundaryNorm([0.0, 0.01, 0.1, 0.5, 0.9, 1.0 + 1e-9], cmap.N)
    shown = np.ma.masked_where(~np.isfinite(arr) | (arr < 0.01), arr)
    ax.imshow(shown, cmap=cmap, norm=norm, extent=ext, interpolation="nearest",
              alpha=0.75 if dem is not None else 1.0)
    handles = [Patch(color=c, label=f"{n}") for n, c in reversed(ZONE_COLOURS.items())]
    if labels and len(labels.get("x", [])):
        lab = np.asarray(labels["label"])
        x, y = np.asarray(labels["x"]), np.asarray(labels["y"])
        for v, col, name in ((1, "#ffd92f", "label: permafrost"), (0, "#e7298a",
                                                                     "label: no permafrost")):
            sel = lab == v
            if sel.any():
                ax.scatter(x[sel], y[sel], s=9, c=col, edgecolors="k", linewidths=0.4, zorder=3)
                handles.append(Line2D([], [], marker="o", ls="", color=col, mec="k", label=name))
    ax.set_xlim(ext[0], ext[1])
    ax.set_ylim(ext[2], ext[3])
    ax.set_aspect(_aspect(pzi))
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)
    ax.set_title("Permafrost zonation index (zones)")
    ax.tick_params(labelsize=7)
    return _figure(fig, "PZI zones (continuous ≥ 0.9, discontinuous 0.5–0.9, sporadic 0.1–0.5, "
                        "isolated 0.01–0.1) over a hillshade, with the labelled points.",
                   "PZI map")


def _curves(validation: Mapping | None, model: Mapping | None) -> str:
    parts = []
    curves = (validation or {}).get("boreholes", {}).get("curves", {})
    roc = {k: v["roc"] for k, v in curves.items() if v.get("roc")}
    if roc:
        fig = _new_fig(5, 4.5)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        rows = {r["map"]: r for r in validation["boreholes"]["table"]}
        for name, c in roc.items():
            auc = rows.get(name, {}).get("auc")
            ax.plot(c["fpr"], c["tpr"], lw=1.2,
                    label=f"{name} (AUC {_num(auc)})")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC on boreholes")
        ax.legend(fontsize=8, loc="lower right")
        parts.append(_figure(fig, "ROC curves of each map on the same boreholes.", "ROC curves"))
    rel = {k: v["reliability"] for k, v in curves.items() if v.get("reliability")}
    cv_rel = ((model or {}).get("calibration") or {}).get("reliability")
    if cv_rel:
        rel = {"model (spatial CV, out-of-fold)": cv_rel, **{f"{k} (boreholes)": v
                                                              for k, v in rel.items()}}
    if rel:
        fig = _new_fig(5, 4.5)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls="--")
        for name, r in rel.items():
            pts = [(p, o) for p, o in zip(r["mean_predicted"], r["observed_frequency"],
                                          strict=False) if p is not None and o is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", ms=3, label=name)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed frequency")
        ax.set_title("Reliability")
        ax.legend(fontsize=7, loc="upper left")
        parts.append(_figure(fig, "Reliability curves (equal-width bins).", "reliability curves"))
    return "\n".join(parts)


def _importance(model: Mapping) -> str:
    imp = model.get("importance") or {}
    key = next((k for k in ("mean_abs_shap", "gain", "coefficient_standardised")
                if imp.get(k) and any(v is not None for v in imp[k].values())), None)
    if key is None:
        return ""
    items = sorted(((k, v) for k, v in imp[key].items() if v is not None),
                   key=lambda kv: abs(kv[1]))
    fig = _new_fig(5.5, 0.35 * len(items) + 1.2)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh([k for k, _ in items], [v for _, v in items], color="#2171b5")
    ax.set_xlabel(key.replace("_", " "))
    ax.set_title("Feature importance")
    return _figure(fig, f"Feature importance ({key.replace('_', ' ')}).", "feature importance")


def _agreement_map(name: str, m: Mapping) -> str:
    from matplotlib.colors import BoundaryNorm, ListedColormap
    from matplotlib.patches import Patch

    arr = np.asarray(m["array"], dtype="float64")
    fig = _new_fig(6, 5)
    ax = fig.add_subplot(1, 1, 1)
    cmap = ListedColormap([c for _, c in AGREEMENT_COLOURS.values()])
    norm = BoundaryNorm([-0.5, 0.5, 1.5, 2.5, 3.5], cmap.N)
    ax.imshow(np.ma.masked_where(~np.isfinite(arr) | (arr > 3), arr), cmap=cmap, norm=norm,
              extent=m["extent"], interpolation="nearest")
    ax.set_aspect(_aspect(m))
    ax.legend(handles=[Patch(color=c, label=n) for n, c in AGREEMENT_COLOURS.values()],
              fontsize=7, loc="upper left", framealpha=0.9)
    ax.set_title(f"Agreement with {name}")
    ax.tick_params(labelsize=7)
    return _figure(fig, f"Model (PZI ≥ threshold) vs {name}: where they agree and differ.",
                   f"agreement map {name}")


# --------------------------------------------------------------------------- sections
def _provenance(prov: Mapping) -> str:
    def flat(d, pre=""):
        for k, v in d.items():
            if isinstance(v, Mapping):
                yield from flat(v, f"{pre}{k}.")
            else:
                yield f"{pre}{k}", v
    rows = [(_Raw(_e(k)), _Raw(_e(v if not isinstance(v, (list, tuple)) else ", ".join(
        map(str, v))))) for k, v in flat(prov)]
    return _table(["item", "value"], rows, left=2)


def _stats_tables(stats: Mapping) -> str:
    meta = stats.get("meta", {})
    mask = meta.get("mask")
    note = (f"Denominator: {meta.get('denominator')}; "
            + (f"mask {mask.get('source')} ({_num(mask.get('masked_km2'))} km² excluded)"
               if mask else "no mask") + f". Cell areas: {meta.get('cell_area_method')}.")
    head = ["unit", "name", "denominator km²", "PZI ≥ 0.5 km²", "fraction", "PZI-weighted km²",
            "region km²", "continuous", "discontinuous", "sporadic", "isolated"]
    rows = [[_Raw(_e(u["unit"])), _Raw(_e(u["name"])), u.get("denominator_km2"),
             u.get("pzi_ge_0.5_km2"), u.get("fraction_pzi_ge_0.5"), u.get("pzi_weighted_km2"),
             u.get("region_km2"), u.get("continuous_km2"), u.get("discontinuous_km2"),
             u.get("sporadic_km2"), u.get("isolated_km2")] for u in stats.get("units", [])]
    return _table(head, rows, left=2) + f"<p class='note'>{_e(note)}</p>"


def _cv_tables(model: Mapping) -> str:
    cv = model.get("cv") or {}
    out = []
    for kind in ("spatial", "random"):
        summ = (cv.get(kind) or {}).get("summary")
        if summ:
            rows = [[_Raw(_e(m)), v.get("mean"), v.get("std"), v.get("min"), v.get("max")]
                    for m, v in summ.items() if isinstance(v, Mapping)]
            out.append(_table(["metric", "mean", "std", "min", "max"], rows,
                              caption=f"{kind} cross-validation over folds"))
    oof = cv.get("oof_calibrated")
    if oof:
        out.append(_table(["metric", "value"], [[_Raw(_e(k)), v] for k, v in oof.items()
                                                if not isinstance(v, (Mapping, list))],
                          caption="out-of-fold (calibrated) predictions, all labels"))
    if cv.get("block_size_m") is not None:
        out.append(f"<p class='note'>Spatial blocks {_num(cv['block_size_m'])} m "
                   f"({_e(cv.get('block_size_rule', ''))}), {_e(cv.get('folds', ''))} folds.</p>")
    return "\n".join(out)


def _validation_tables(val: Mapping) -> str:
    out = []
    b = val.get("boreholes")
    if b:
        head = ["map", "kind", "n", "TP", "FP", "FN", "TN", "accuracy", "balanced acc.", "kappa",
                "AUC", "Brier"]
        rows = [[_Raw(_e(r["map"])), _Raw(_e(r["kind"])), r["n"], r["tp"], r["fp"], r["fn"],
                 r["tn"], r["accuracy"], r["balanced_accuracy"], r["kappa"], r["auc"],
                 r["brier"]] for r in b.get("table", [])]
        out.append(_table(head, rows, left=2,
                          caption=f"All maps on the same {b.get('n_common')} boreholes "
                                  f"({b.get('common_rule')}); {b.get('n_read')} read, "
                                  f"{b.get('n_unknown_presence')} with unknown presence."))
        ex = [[_Raw(_e(k)), len(v["outside"]), len(v["nodata"])]
              for k, v in b.get("excluded", {}).items()]
        out.append(_table(["map", "boreholes outside", "boreholes on nodata"], ex))
    pri = val.get("priors") or []
    if pri:
        head = ["prior", "kind", "common km²", "kappa", "agreement", "model pf km²",
                "prior pf km²", "missed km²", "excess km²", "IoR", "IoM"]
        rows = [[_Raw(_e(p["name"])), _Raw(_e(p["kind"])), a["common_km2"], a["kappa"],
                 a["overall_agreement"], a["model_permafrost_km2"], a["prior_permafrost_km2"],
                 a["missed_km2"], a["excess_km2"], a["intersection_over_reference"],
                 a["intersection_over_model"]] for p in pri for a in [p["agreement"]]]
        out.append(_table(head, rows, left=2, caption=(
            "Area agreement on the model grid (priors by nearest neighbour). missed = prior "
            "permafrost not mapped by the model; excess = model permafrost not in the prior; "
            "IoR = intersection / prior area; IoM = intersection / model area.")))
        for p in pri:
            m = p.get("agreement_matrix")
            if m:
                rows = [[_Raw(_e(r))] + list(v) for r, v in zip(m["rows"], m["km2"],
                                                                 strict=True)]
                out.append(_table([f"{m['row_label']} \\ {m['column_label']}"] + m["columns"],
                                  rows, caption=f"Agreement matrix with {p['name']} (km²)"))
            z = p.get("zones")
            if z and z.get("prior"):
                order = ["continuous", "discontinuous", "sporadic", "isolated", "none"]
                keys = [k for k in order if k in z["model"]] + [
                    k for k in z["model"] if k not in order]
                rows = [[_Raw(_e(k)), z["model"].get(k), z["prior"].get(k)] for k in keys]
                out.append(_table(["zone", "model km²", f"{p['name']} km²"], rows,
                                  caption=f"Zone areas side by side ({z.get('denominator')})"))
    pw = val.get("pairwise")
    if pw:
        rows = [[_Raw(_e(n))] + list(r) for n, r in zip(pw["maps"], pw["kappa"], strict=True)]
        out.append(_table(["kappa"] + pw["maps"], rows, caption=f"Pairwise kappa ({pw['rule']})"))
    return "\n".join(out)


def _scenarios(sc: Mapping) -> str:
    head = ["scenario", "denominator km²", "PZI ≥ 0.5 km²", "fraction", "PZI-weighted km²",
            "region km²"]
    rows = []
    for name, s in sc.items():
        u = next((u for u in s.get("units", []) if u.get("unit") == "all"), {})
        rows.append([_Raw(_e(name)), u.get("denominator_km2"), u.get("pzi_ge_0.5_km2"),
                     u.get("fraction_pzi_ge_0.5"), u.get("pzi_weighted_km2"), u.get("region_km2")])
    return _table(head, rows, caption="Whole-map figures of each scenario")


def _scenario_changes(cmp: Mapping) -> str:
    """Tables of area change against the baseline (computed by area.compare_scenarios)."""
    labels = {"pzi_ge_0.5_km2": "PZI ≥ 0.5", "pzi_weighted_km2": "PZI-weighted",
              "region_km2": "region", "continuous_km2": "continuous",
              "discontinuous_km2": "discontinuous", "sporadic_km2": "sporadic",
              "isolated_km2": "isolated"}
    out = []
    for name, rows in (cmp.get("scenarios") or {}).items():
        head = ["unit", "name"] + [f"Δ {labels.get(f, f)} km²" for f in cmp["figures"]] + [
            "Δ PZI ≥ 0.5 %"]
        body = [[_Raw(_e(r["unit"])), _Raw(_e(r["name"]))] + [r.get(f + "_change") for f in
                                                              cmp["figures"]]
                + [r.get("pzi_ge_0.5_km2_change_pct")] for r in rows]
        out.append(_table(head, body, left=2,
                          caption=f"{name}: change against {cmp.get('baseline', 'baseline')} "
                                  "(scenario − baseline)"))
    return "\n".join(out)


def _kpis(b: Mapping) -> str:
    out = []
    st = b.get("stats")
    if st:
        u = next((u for u in st.get("units", []) if u.get("unit") == "all"), None)
        if u:
            out.append(("area with PZI ≥ 0.5", f"{_num(u['pzi_ge_0.5_km2'])} km²"))
            out.append(("fraction of denominator", _num(u["fraction_pzi_ge_0.5"])))
            out.append(("PZI-weighted area", f"{_num(u['pzi_weighted_km2'])} km²"))
    summ = (((b.get("model") or {}).get("cv") or {}).get("spatial") or {}).get("summary") or {}
    if isinstance(summ.get("auc"), Mapping) and summ["auc"].get("mean") is not None:
        out.append(("spatial-CV AUC", _num(summ["auc"]["mean"])))
    val = b.get("validation") or {}
    rows = {r["map"]: r for r in (val.get("boreholes") or {}).get("table", [])}
    if "model" in rows:
        out.append(("borehole AUC", _num(rows["model"]["auc"])))
        out.append(("borehole kappa", _num(rows["model"]["kappa"])))
    return "".join(f"<span class='kpi'>{_e(k)}<b>{v}</b></span>" for k, v in out)


# --------------------------------------------------------------------------- public
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
    """
    title = bundle.get("title") or "Permafrost map report"
    maps = bundle.get("maps") or {}
    model = bundle.get("model") or {}
    val = bundle.get("validation") or {}
    sec: list[tuple[str, str]] = []
    missing = []

    def add(name, body, present):
        if present and body:
            sec.append((name, body))
        else:
            missing.append(name)

    add("Provenance", _provenance(bundle["provenance"]) if bundle.get("provenance") else "",
        bool(bundle.get("provenance")))
    add("Map", _pzi_map(maps, bundle.get("labels")) if maps.get("pzi") else "",
        bool(maps.get("pzi")))
    lab = bundle.get("labels") or {}
    if lab.get("label") is not None and len(lab.get("label", [])):
        srcs = lab.get("source") or ["all"] * len(lab["label"])
        keys = sorted(set(map(str, srcs)))
        rows = [[_Raw(_e(s)), sum(1 for a, b in zip(srcs, lab["label"], strict=True)
                                  if str(a) == s and int(b) == 1),
                 sum(1 for a, b in zip(srcs, lab["label"], strict=True)
                     if str(a) == s and int(b) == 0)] for s in keys]
        add("Labels", _table(["source", "permafrost", "no permafrost"], rows), True)
    else:
        add("Labels", "", False)
    cvbody = _cv_tables(model) if model else ""
    add("Cross-validation", cvbody, bool(cvbody))
    curves = _curves(val, model)
    add("ROC and reliability", curves, bool(curves))
    imp = _importance(model) if model else ""
    add("Feature importance", imp, bool(imp))
    add("Area statistics", _stats_tables(bundle["stats"]) if bundle.get("stats") else "",
        bool(bundle.get("stats")))
    vt = _validation_tables(val) if val else ""
    add("Validation", vt, bool(vt))
    ag = "\n".join(_agreement_map(n, m) for n, m in (maps.get("agreement") or {}).items())
    add("Agreement maps", ag, bool(ag))
    sc_html = _scenarios(bundle["scenarios"]) if bundle.get("scenarios") else ""
    if bundle.get("scenario_changes"):
        sc_html += "\n" + _scenario_changes(bundle["scenario_changes"])
    add("Scenarios", sc_html, bool(bundle.get("scenarios")))
    body = [f"<h1>{_e(title)}</h1>", f"<div>{_kpis(bundle)}</div>"]
    body += [f"<section><h2>{_e(n)}</h2>\n{b}</section>" for n, b in sec]
    if missing:
        body.append(f"<p class='note'>Sections without input: {_e(', '.join(missing))}.</p>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def report_json(bundle: Mapping) -> dict:
    """The numbers of the report (the bundle without the map arrays), JSON-ready."""
    out = {k: v for k, v in bundle.items() if k not in ("maps", "labels")}
    lab = bundle.get("labels") or {}
    if lab.get("label") is not None:
        labels = [int(v) for v in lab["label"]]
        out["labels"] = {"n": len(labels), "n_permafrost": sum(labels),
                         "n_no_permafrost": len(labels) - sum(labels)}
    out["maps"] = {k: (v.get("source") if isinstance(v, Mapping) and "array" in v
                       else {n: m.get("source") for n, m in v.items()})
                   for k, v in (bundle.get("maps") or {}).items()}
    return out


def report_from_files(
    *,
    out_html,
    out_json=None,
    title: str | None = None,
    pzi=None,
    dem=None,
    stats=None,
    validation=None,
    model=None,
    labels=None,
    provenance=None,
    scenarios: Mapping[str, object] | None = None,
    scenario_changes=None,
    max_size: int = 800,
) -> dict:
    """Read what the other steps wrote, render the report and write HTML (+ JSON).

    Parameters
    ----------
    out_html, out_json : path-like
        Outputs.
    pzi, dem : path-like, optional
        Rasters for the map figure (read decimated to ``max_size`` pixels).
    stats : path-like, optional
        ``permafrost stats --out-json`` file.
    validation : path-like, optional
        ``validation.json`` or the ``permafrost validate --out`` directory (its agreement
        rasters are drawn).
    model : path-like, optional
        Model directory or its ``metadata.json``.
    labels : path-like, optional
        Labelled points (vector with a ``label`` column).
    provenance : path-like, optional
        A JSON manifest.
    scenarios : mapping, optional
        ``{name: stats JSON path}``.
    scenario_changes : path-like, optional
        JSON from :func:`permafrost.area.compare_scenarios` (area change per zone and
        region against the baseline).
    max_size : int
        Longest side of map previews [pixels].

    Returns
    -------
    dict
        The report JSON.
    """
    from permafrost.errors import DataError
    from permafrost.io._atomic import atomic_write_text
    from permafrost.io.maps import read_preview
    from permafrost.io.results import read_json, write_json
    from permafrost.io.vectors import read_vector

    b: dict = {"title": title or "Permafrost map report", "maps": {}}
    if provenance:
        b["provenance"] = read_json(provenance)
    map_crs = None

    def preview(path, resampling="average"):
        arr, (left, bo, r, t), crs = read_preview(path, max_size=max_size, resampling=resampling)
        return {"array": arr, "extent": [left, r, bo, t], "crs": crs.to_string() if crs else None,
                "source": str(path)}, crs

    if pzi:
        b["maps"]["pzi"], map_crs = preview(pzi)
    if dem:
        b["maps"]["dem"], _ = preview(dem, "bilinear")
    if stats:
        b["stats"] = read_json(stats)
    if validation:
        vp = Path(validation)
        vdir = vp if vp.is_dir() else vp.parent
        b["validation"] = read_json(vp / "validation.json" if vp.is_dir() else vp)
        ag = {}
        for p in b["validation"].get("priors", []):
            f = vdir / p.get("agreement_raster", "")
            if p.get("agreement_raster") and f.exists():
                ag[p["name"]], _ = preview(f, "nearest")
        if ag:
            b["maps"]["agreement"] = ag
    if model:
        mp = Path(model)
        b["model"] = read_json(mp / "metadata.json" if mp.is_dir() else mp)
    if labels:
        gdf = read_vector(labels, allow_empty=True)
        if "label" not in gdf.columns:
            raise DataError("no 'label' column", path=labels, field="label",
                            fix="give the labels file written by `permafrost labels`")
        if map_crs is not None and gdf.crs is not None:
            gdf = gdf.to_crs(map_crs.to_wkt())
        pts = gdf.geometry.representative_point()
        b["labels"] = {"x": pts.x.tolist(), "y": pts.y.tolist(),
                       "label": gdf["label"].astype(int).tolist(),
                       "source": (gdf["source"].astype(str).tolist() if "source" in gdf.columns
                                  else None)}
    if scenarios:
        b["scenarios"] = {n: read_json(p) for n, p in scenarios.items()}
    if scenario_changes:
        b["scenario_changes"] = read_json(scenario_changes)
    atomic_write_text(out_html, render_report(b))
    js = report_json(b)
    if out_json:
        write_json(js, out_json)
    return js
