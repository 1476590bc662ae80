"""The report: one self-contained HTML file (figures embedded as full-colour images) plus JSON.

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
cells; every figure is the page width, rendered at 2× and shown at its CSS width.

The HTML needs no network, no script and no external file: it opens offline in any browser.
"""

from __future__ import annotations

from collections.abc import Mapping

from permafrost.errors import InputError
from permafrost.report.figures import (  # noqa: F401 - the hook and helpers tests reach here
    AGREEMENT_COLOURS,
    ZONE_COLOURS,
    _agreement_map,
    _continuous_maps,
    _curves,
    _cv_map,
    _figure,
    _hillshade_array,
    _importance,
    _kinematics_map,
    _literal_text,
    _metres_per_unit,
    _nice_length,
    _pzi_map,
    _response_figure,
)
from permafrost.report.page import _CSS, _e, _slug
from permafrost.report.sections import (
    _covariates_table,
    _cv_tables,
    _gate_warnings,
    _ground_thermal_section,
    _kinematics_tables,
    _kpis,
    _labels_accounting,
    _labels_table,
    _level_line,
    _level_warning,
    _method_section,
    _profile_section,
    _provenance,
    _scenarios_section,
    _stats_tables,
    _support_section,
    _support_warnings,
    _surface_section,
    _top_warnings,
    _transfer_tables,
    _validation_tables,
)

__all__ = ["render_report", "report_json", "ZONE_COLOURS"]


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
        The HTML text (figures as base64 lossless WebP or PNG at 2×, inline CSS, no script,
        no external link).

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
    add("Labels", ((_labels_table(lab) if lab.get("label") is not None
                    and len(lab.get("label", [])) else "")
                   + "\n" + _labels_accounting(bundle.get("labels_accounting") or {})).strip())
    add("Cross-validation", (_cv_map(maps) + "\n" + _cv_tables(model) + "\n"
                             + _level_line(model)).strip() if model else "")
    if model.get("surface"):  # the surface-aware model (permafrost.surface)
        add("Surface-aware model", _surface_section(model["surface"]))
    add("ROC and reliability", _curves(val, model))
    add("Feature importance", _importance(model) if model else "")
    if bundle.get("response"):  # needs the covariates and the model (a pipeline gives them)
        add("Response curves", _response_figure(bundle["response"]))
    if model.get("covariates"):  # each covariate's kind; a categorical one's classes
        add("Covariates", _covariates_table(model))
    add("Area statistics", _stats_tables(bundle["stats"]) if bundle.get("stats") else "")
    if (bundle.get("applicability") or {}).get("support"):
        add("Representativeness", _support_section(bundle["applicability"]))
    add("Elevation profile", _profile_section(bundle["profile"]) if bundle.get("profile")
        else "")
    if bundle.get("ground_thermal"):
        add("Ground temperatures", _ground_thermal_section(bundle["ground_thermal"]))
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
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
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

    out["maps"] = {k: src(v) for k, v in (bundle.get("maps") or {}).items() if k != "cv"}
    cv = (bundle.get("maps") or {}).get("cv")
    if cv:  # the validation map's numbers: block size, blocks, boreholes
        out["maps"]["cv"] = {"source": cv.get("source"), "cv_block_m": cv.get("block_m"),
                             "cv_blocks": len(cv.get("cv_blocks") or []),
                             "held_out_blocks": len(cv.get("held_out") or []),
                             "held_out_boreholes": len((cv.get("held_out_boreholes") or {})
                                                       .get("x") or []),
                             "training_labels": len((cv.get("train") or {}).get("x") or [])}
    return out


def _require_bundle(bundle) -> None:
    if not isinstance(bundle, Mapping):
        raise InputError(f"expected the report bundle as a mapping, got {type(bundle).__name__}",
                         field="bundle", fix="see the keys in permafrost.report's docstring, "
                                             "or render from files with "
                                             "permafrost.report_from_files(...)")
