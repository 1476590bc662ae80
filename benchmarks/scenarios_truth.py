"""Demo areas today and under warming against the sample generator's truth, as JSON.

Reads the outputs of a demo run (``uv run permafrost run pipelines/demo.toml
--all-scenarios``) and compares every run's whole-map areas with the truth that
``data_samples/generate.py`` wrote for it (``truth/pzi_truth.tif`` today,
``truth/pzi_truth_plus{1,2,4}.tif`` at air MAAT + 1, 2, 4 °C), on the same grid, mask and
denominator (:func:`permafrost.workflows.stats.stats_from_files`).

    uv run python benchmarks/scenarios_truth.py [--out runs/demo]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from permafrost.workflows.stats import stats_from_files

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data_samples"
TRUTH = {"baseline": "pzi_truth.tif", "reference": "pzi_truth.tif",
         "plus1": "pzi_truth_plus1.tif", "plus2": "pzi_truth_plus2.tif",
         "plus4": "pzi_truth_plus4.tif"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "demo",
                    help="output_dir of the demo run")
    args = ap.parse_args()
    mask = SAMPLE / "masks" / "glaciers_lakes.gpkg"
    rows = {}
    truth_cache: dict[str, dict] = {}
    for run, tfile in TRUTH.items():
        st = args.out / run / "stats.json"
        if not st.is_file():
            continue
        model = json.loads(st.read_text())["units"][0]
        if tfile not in truth_cache:
            truth_cache[tfile] = stats_from_files(SAMPLE / "truth" / tfile,
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
    print(json.dumps({"denominator_km2": round(next(iter(truth_cache.values()))
                                                ["denominator_km2"], 1) if truth_cache else None,
                      "runs": rows}, indent=1))


if __name__ == "__main__":
    main()
