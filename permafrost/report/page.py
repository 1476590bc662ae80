"""The report's HTML: the page's CSS, number and text formatting, tables.

Every table of the report goes through :func:`_table`; every number through :func:`_f` (a
fixed number of decimals per column) or :func:`_num`.
"""

from __future__ import annotations

import html
import math

import numpy as np

_CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;
color:#222;overflow-wrap:break-word;-webkit-text-size-adjust:100%;text-size-adjust:100%}
h1{font-size:1.6em}h2{border-bottom:2px solid #2171b5;padding-bottom:.2em;margin-top:2em}
h3{font-size:1.05em;margin:1.4em 0 .4em}
div.tw{overflow-x:auto;max-width:100%;margin:.6em 0}
table{border-collapse:collapse;margin:0;font-size:.85em}
p.cap{margin:1em 0 .2em}table:not(.wrap) td.l{white-space:nowrap}
table.wrap td{overflow-wrap:anywhere}
th,td{border:1px solid #bbb;padding:.25em .5em;text-align:right}
th{background:#eef3fa;vertical-align:bottom}td.l,th.l{text-align:left}
.kpi{display:inline-block;margin:.3em 1.2em .3em 0;padding:.5em .8em;background:#eef3fa;
border-radius:4px}.kpi b{font-size:1.3em;display:block}
figure{margin:1em 0}figcaption{font-size:.85em;color:#555}.note{color:#555;font-size:.85em}
figure img{max-width:100%;height:auto}
.warn{background:#fff4e5;border-left:4px solid #e6550d;padding:.4em .8em;
margin:.4em 0}img{max-width:100%}
nav.toc{background:#f7f9fc;border:1px solid #dde5f0;border-radius:4px;padding:.4em 1em;
margin:1.2em 0;font-size:.9em}nav.toc ol{margin:.3em 0;columns:2}nav.toc a{color:#2171b5}
@media (max-width:600px){body{margin:1em auto;padding:0 .6em}nav.toc ol{columns:1}
h1{font-size:1.3em}.kpi{margin:.2em .4em .2em 0}}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}
h1,h2,h3,p.cap,p.note.cap{break-after:avoid;page-break-after:avoid}
figure,img,.kpi,.warn,tr{break-inside:avoid;page-break-inside:avoid}
div.tw{overflow:visible}nav.toc{break-inside:avoid}a{color:inherit}}
"""


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
    # wide tables scroll inside their wrapper, never the page (phones)
    out.append("<div class='tw'><table class='wrap'>" if wrap else "<div class='tw'><table>")
    out.append("<tr>" + "".join(f"<th class='{'l' if i < left else ''}'>{_e(h)}</th>"
                                for i, h in enumerate(header)) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(
            f"<td class='{'l' if i < left else ''}'>{v if isinstance(v, _Raw) else _num(v)}</td>"
            for i, v in enumerate(r)) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def _slug(name: str) -> str:
    return "sec-" + "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
