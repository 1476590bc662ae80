"""The report's sections: each turns one part of the bundle into HTML (tables, notes and
the figures of :mod:`permafrost.report.figures`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from permafrost.area import REGION_THRESHOLD, ZONES, zone_range_text
from permafrost.report.figures import (
    _area_vs_warming,
    _ground_thermal_figure,
    _profile_figure,
    _scenario_maps,
)
from permafrost.report.page import (
    _count,
    _e,
    _f,
    _file_name,
    _km2,
    _label,
    _num,
    _Raw,
    _table,
    _txt,
)


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


def _labels_accounting(acc: Mapping) -> str:
    """Every candidate label kept, held out or dropped, by reason and source; the weights;
    what InSAR changed; the labels' covariates against the map's (labels_accounting.json,
    :func:`permafrost.workflows.labels.training_labels_from_files`)."""
    out = []
    kinds = acc.get("by_kind") or {}
    if kinds:
        rows = [[_txt(k), _count(v.get("candidates")), _count(v.get("kept")),
                 _count(v.get("held out")), _count(v.get("dropped")),
                 _count(v.get("kept_label_1")), _count(v.get("kept_label_0")),
                 _f(v.get("weight_per_kept"), 2), _f(v.get("weight"), 1)]
                for k, v in kinds.items()]
        rows.append([_Raw("<b>Total</b>"), _count(acc.get("candidates")),
                     _count(acc.get("kept")), _count(acc.get("held_out")),
                     _count(acc.get("dropped")), _txt(""), _txt(""), _txt(""),
                     _f(acc.get("training_weight"), 1)])
        w = acc.get("weights") or {}
        out.append(_table(
            ["Candidate labels", "Candidates", "Kept", "Held out", "Dropped",
             "Kept: permafrost", "Kept: no permafrost", "Weight per kept [-]",
             "Training weight [-]"], rows,
            caption="Every candidate label, by source: kept for training, held out for "
                    "validation, or dropped (" + str(acc.get("rule", "")) + "). Weights: "
                    + ", ".join(f"{k} {_num(v, 2)}" for k, v in w.items())
                    + ". Each candidate's row is in labels_candidates.csv beside the labels."))
    reasons = acc.get("dropped_reasons") or []
    if reasons:
        out.append(_table(["Source", "Stage", "Why dropped", "Candidates"],
                          [[_txt(r.get("kind")), _txt(r.get("stage")), _txt(r.get("reason")),
                            _count(r.get("n"))] for r in reasons], left=3,
                          caption="Why candidates were dropped (input: unreadable or "
                                  "insufficient; fusion: conflicts and duplicates; holdout: "
                                  "inside or reaching into a held-out block)."))
    ins = acc.get("insar")
    if ins and ins.get("counts"):
        changes = ins.get("label_changes") or {}
        change_text = (", ".join(f"{k}: {v:,}" for k, v in changes.items())
                       if changes else "no label changed")
        rows = [[_txt(_label(r))] + [_count(x) for x in c]
                for r, c in zip(ins["rows"], ins["counts"], strict=True)]
        out.append(_table(["Inventory class \\ class used [outlines]"]
                          + [_label(c) for c in ins["columns"]], rows,
                          caption=f"What InSAR changed on {ins.get('outlines')} "
                                  f"outlines: {change_text}. {ins.get('rule', '')}."))
    cov = acc.get("covariates") or {}
    qs = cov.get("quantiles") or []
    rows = []
    for name, c in (cov.get("covariates") or {}).items():
        if c.get("kind") == "categorical" or not c.get("map") or not c.get("labels"):
            continue
        keys = [f"q{round(100 * q):02d}" for q in qs]
        unit = c.get("units") or "-"
        for who in ("map", "labels"):
            rows.append([_txt(f"{name} [{unit}]"), _txt(who), _count((c[who] or {}).get("n"))]
                        + [_f((c[who] or {}).get(k), 2) for k in keys])
    if rows:
        out.append(_table(
            ["Covariate", "Where", "Cells / labels"] + [f"{round(100 * q)} %" for q in qs],
            rows, left=2,
            caption=f"The labels' covariates against the landscape's: {cov.get('rule', '')}. "
                    "Where the labels' range is narrower "
                    "than the map's, the PZI there is extrapolated (see Label support)."))
    return "\n".join(out)


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


def _profile_section(prof: Mapping) -> str:
    """The profile figure; the table of lower limits and of band means; the warnings."""
    bands = prof.get("bands") or []
    meta = prof.get("meta") or {}
    if not bands:
        return ""
    lims = prof.get("lower_limits") or {}
    out = [_profile_figure(prof)]
    names = [("north", "North-facing"), ("south", "South-facing"), ("east_west", "East/west"),
             ("flat", "Flat"), ("all", "All cells")]
    rows = []
    for cls, label in names:
        lim = lims.get(cls) or {}
        rows.append([_txt(label), _txt("–" if lim.get("elevation_m") is None
                                       else f"{lim['elevation_m']:.0f}"),
                     _txt(str(lim.get("status", "–")).replace("_", " ")),
                     _count(lim.get("crossings"))])
    spread = prof.get("fold_spread") or {}
    if spread:
        for r, (cls, _) in zip(rows, names, strict=True):
            zz = [((spread.get(k) or {}).get("lower_limits") or {}).get(cls, {}).get(
                "elevation_m") for k in ("high", "low")]
            r.append(_txt("–" if None in zz else f"{zz[0]:.0f}–{zz[1]:.0f}"))
    out.append(_table(["Aspect class", "Lower limit [m]", "How", "Crossings of 0.5"]
                      + (["Fold spread: limit of PZI + σ – of PZI − σ [m]"] if spread else []),
                      rows,
                      caption="Lower limit of permafrost (PZI = 0.5) by aspect: "
                              + str(meta.get("lower_limit_rule", ""))
                              + (f". Fold spread: {spread.get('rule')}" if spread else "")))
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
    info = kin.get("track_info")
    if info:
        rows = []
        for t, s in info.items():
            d, ref, v = s.get("dates") or {}, s.get("reference") or {}, s.get("velocity") or {}
            period = (f"{d.get('start')} – {d.get('end')}" if d.get("start") and d.get("end")
                      else "not recorded")
            refpt = (f"{ref['lat']:.5f}° N, {ref['lon']:.5f}° E"
                     if ref.get("lat") is not None and ref.get("lon") is not None
                     else ("row {y}, column {x}".format(**ref) if ref.get("y") is not None
                           else "not recorded"))
            rows.append([_txt(t), _txt(s.get("orbit") or "–"), _f(s.get("heading"), 1),
                         _txt(period), _txt(refpt), _f(v.get("p01"), 3), _f(v.get("median"), 3),
                         _f(v.get("p99"), 3), _count(v.get("valid_pixels"))])
        out.append(_table(["Track", "Orbit", "Heading [°]", "Period", "Reference point",
                           "LOS velocity 1 % [m/yr]", "median [m/yr]", "99 % [m/yr]",
                           "Valid pixels"], rows, left=5,
                          caption="Each InSAR track as MintPy's info.py tells it: the "
                                  "acquisition period (first and last date), the reference "
                                  "point every velocity is relative to, and the line-of-sight "
                                  "velocity over the valid pixels (positive towards the "
                                  "satellite)."))
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


def _ground_thermal_section(gt: Mapping) -> str:
    """Each temperature record's verdict, MAGT and active-layer thickness (bundle
    ``ground_thermal``, :func:`permafrost.ground_thermal.assess_borehole`)."""
    rows = gt.get("boreholes") or []
    if not rows:
        return ""
    body = [[_txt(r["borehole"]), _f(r.get("elevation_m"), 0),
             _txt(str(r.get("status", "")).replace("_", " ")), _f(r.get("magt_c"), 2),
             _f(r.get("magt_depth_m"), 1),
             _txt(str(r.get("magt_basis") or "–").replace("_", " ")),
             _f(r.get("alt_m"), 2), _f(r.get("alt_max_m"), 2), _count(r.get("alt_years")),
             _count(r.get("complete_years"))] for r in rows]
    return (_ground_thermal_figure(gt) + "\n"
            + _table(["Borehole", "Elevation [m]", "Verdict", "MAGT [°C]", "MAGT depth [m]",
                      "MAGT basis", "Active layer, mean [m]", "Active layer, max [m]",
                      "Thaw seasons", "Complete years"], body, left=1,
                     caption=f"Temperature records: {gt.get('rule', '')}"))
