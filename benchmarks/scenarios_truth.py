"""Demo areas today and under warming against the sample generator's truth, as JSON.

Reads the outputs of a demo run (``uv run permafrost run pipelines/demo.toml
--all-scenarios``) and compares every run's whole-map areas with the truth that
``data_samples/generate.py`` wrote for it (``truth/pzi_truth.tif`` today,
``truth/pzi_truth_plus{1,2,4}.tif`` at air MAAT + 1, 2, 4 °C), on the same grid, mask and
denominator (:func:`permafrost.workflows.stats.stats_from_files`).

    uv run python benchmarks/scenarios_truth.py [--out runs/demo] [--region data_samples]

``--region DIR`` takes another generated region (e.g. ``data_samples/generate.py --truth
logistic --out DIR``, or another seed) with the run made on it.  Where the region has a true
land cover (``truth/landcover_truth.tif``, the ``ttop`` region, ``data_samples/`` itself), each
run also gets the mean PZI on coarse
debris and on the other ground, the model's against the truth's; and the baseline's spatial-CV
AUC is set beside the AUC on the held-out boreholes (``metadata.json``, ``validation.json``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import rasterio

from permafrost.workflows.stats import stats_from_files

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples"
TRUTH = {"baseline": "pzi_truth.tif", "reference": "pzi_truth.tif",
         "plus1": "pzi_truth_plus1.tif", "plus2": "pzi_truth_plus2.tif",
         "plus4": "pzi_truth_plus4.tif"}


#: land-cover classes of the ttop region (data_samples/samplegen/ttop.py)
DEBRIS, LAND = 2, (1, 2, 3, 4)


def _read(path: Path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True).astype(np.float64).filled(np.nan)


def surface_means(pzi_path: Path, truth_path: Path, landcover_path: Path) -> dict:
    """Mean PZI on coarse debris and on the other land cells, model and truth (same grid)."""
    lc = _read(landcover_path)
    pm, pt = _read(pzi_path), _read(truth_path)
    if pm.shape != lc.shape:
        return {"note": "PZI not on the truth's grid"}
    land = np.isin(lc, LAND) & np.isfinite(pm)
    deb = land & (lc == DEBRIS)
    oth = land & (lc != DEBRIS)
    return {"debris_mean_pzi": round(float(pm[deb].mean()), 4),
            "truth_debris_mean_pzi": round(float(pt[deb].mean()), 4),
            "other_mean_pzi": round(float(pm[oth].mean()), 4),
            "truth_other_mean_pzi": round(float(pt[oth].mean()), 4)}


def skill(run_dir: Path) -> dict | None:
    """The run's spatial-CV AUC and its held-out borehole AUC (with its interval)."""
    meta_f, val_f = run_dir / "metadata.json", run_dir / "validation.json"
    out: dict = {}
    if meta_f.is_file():
        cv = json.loads(meta_f.read_text()).get("cv", {})
        if cv.get("block_size_m") is not None:
            out["cv_block_size_m"] = round(cv["block_size_m"], 1)
        else:  # a surface-aware model: one block size per part (permafrost.surface)
            out["cv_block_size_m"] = {p: round(c["block_size_m"], 1)
                                      for p, c in (cv.get("parts") or {}).items()
                                      if c and c.get("block_size_m") is not None}
        out["cv_spatial_auc_mean"] = round(cv["spatial"]["summary"]["auc"]["mean"], 4) \
            if "spatial" in cv else None
        out["cv_oof_calibrated_auc"] = round(cv["oof_calibrated"]["auc"], 4) \
            if "oof_calibrated" in cv else None
    if val_f.is_file():
        ma = (json.loads(val_f.read_text()).get("boreholes") or {}).get("model_all") or {}
        if ma:
            ci = ma.get("ci", {}).get("auc", {})
            out["holdout_boreholes_auc"] = round(ma["auc"], 4)
            out["holdout_boreholes_auc_ci"] = [round(ci.get("low", float("nan")), 4),
                                               round(ci.get("high", float("nan")), 4)]
            out["holdout_boreholes_n_pos_neg"] = [ma.get("n_pos"), ma.get("n_neg")]
    return out or None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "demo",
                    help="output_dir of the demo run")
    ap.add_argument("--region", type=Path, default=SAMPLE,
                    help="the generated region the run was made on (default data_samples/)")
    args = ap.parse_args()
    region = args.region
    mask = region / "masks" / "glaciers_lakes.gpkg"
    landcover = region / "truth" / "landcover_truth.tif"
    rows = {}
    truth_cache: dict[str, dict] = {}
    for run, tfile in TRUTH.items():
        st = args.out / run / "stats.json"
        if not st.is_file():
            continue
        model = json.loads(st.read_text())["units"][0]
        if tfile not in truth_cache:
            truth_cache[tfile] = stats_from_files(region / "truth" / tfile,
                                                  mask_path=mask).whole
        truth = truth_cache[tfile]
        app_file = args.out / run / "applicability.json"
        app = json.loads(app_file.read_text()) if app_file.is_file() else {}
        rows[run] = {
            "model": app.get("model"),
            "weighted_km2": round(model["pzi_weighted_km2"], 1),
            "truth_weighted_km2": round(truth["pzi_weighted_km2"], 1),
            "weighted_vs_truth": round(model["pzi_weighted_km2"] / truth["pzi_weighted_km2"] - 1,
                                       4),
            "ge05_km2": round(model["pzi_ge_0.5_km2"], 1),
            "truth_ge05_km2": round(truth["pzi_ge_0.5_km2"], 1),
            "ge05_vs_truth": round(model["pzi_ge_0.5_km2"] / truth["pzi_ge_0.5_km2"] - 1, 4),
            "outside_training_range": (app.get("extrapolation") or {}).get("outside_share"),
            "warnings": [w.get("kind") for w in app.get("warnings", [])],
        }
        if landcover.is_file() and (args.out / run / "pzi.tif").is_file():
            rows[run].update(surface_means(args.out / run / "pzi.tif", region / "truth" / tfile,
                                           landcover))
    if not rows:
        raise SystemExit(f"no demo run in {args.out} (no <run>/stats.json): run "
                         "`uv run permafrost run pipelines/demo.toml --all-scenarios` first")
    ref = rows.get("reference") or rows.get("baseline")
    for run, r in rows.items():
        if run in ("baseline", "reference") or ref is None:
            continue
        loss = r["weighted_km2"] - ref["weighted_km2"]
        true_loss = r["truth_weighted_km2"] - ref["truth_weighted_km2"]
        r["loss_vs_true_loss"] = round(loss / true_loss, 4) if true_loss else None
    print(json.dumps({"region": str(region),
                      "denominator_km2": round(next(iter(truth_cache.values()))
                                                ["denominator_km2"], 1) if truth_cache else None,
                      "runs": rows, "skill_baseline": skill(args.out / "baseline")}, indent=1))


if __name__ == "__main__":
    main()
