"""What content keys cost: hashing a pipeline's inputs with a cold and a warm hash cache,
and planning (`permafrost run --dry-run`) as the number of scenarios grows.

    uv run python benchmarks/content_keys.py                        # demo; 10, 100, 1000
    uv run python benchmarks/content_keys.py --scenarios 10,100,1000,10000
    uv run python benchmarks/content_keys.py --pipeline pipelines/demo.toml

Hashing: every input file of every step of the baseline (and each file a stack file or VRT
names), once with an empty cache (every byte read) and once with the cache the first
pass saved (one ``stat`` per file; docs/reliability.md, "Content keys").  Planning: the
pipeline with N generated scenarios (``covariates.maat`` offsets) loaded and planned in
this process (no CLI start-up), nothing run.  Prints JSON; nothing asserts a time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _inputs(cfg) -> list[Path]:
    from permafrost.pipeline.engine import _flatten_inputs
    from permafrost.pipeline.steps import STEPS

    found: dict[str, Path] = {}
    for spec in STEPS:
        for p in _flatten_inputs(spec.inputs(cfg, {})):
            found.setdefault(str(p), p)
    return [p for p in found.values() if p.exists()]


def hashing(pipeline: Path) -> dict:
    from permafrost.config import load_pipeline
    from permafrost.pipeline.engine import _HashCache

    cfg = load_pipeline(pipeline)
    paths = _inputs(cfg)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "hashes.json"
        out = {}
        for label in ("cold", "warm"):
            cache = _HashCache(store)
            t0 = time.perf_counter()
            digests = [cache.digest(p) for p in paths]
            out[f"{label}_seconds"] = round(time.perf_counter() - t0, 4)
            cache.save()
        files = len(json.loads(store.read_text()))
    size = sum(f.stat().st_size for p in paths
               for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())
    return {"inputs": len(paths), "files_hashed": files, "megabytes": round(size / 1e6, 1),
            **out, "distinct_digests": len(set(digests))}


def planning(pipeline: Path, counts: list[int]) -> list[dict]:
    from permafrost.config import load_pipeline
    from permafrost.pipeline.engine import plan_pipeline

    sys.path.insert(0, str(ROOT / "tests"))
    from factories import demo_pipeline_text

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            d = Path(tmp) / f"n{n}"
            d.mkdir()
            text = (demo_pipeline_text(d / "out") if pipeline == ROOT / "pipelines" / "demo.toml"
                    else pipeline.read_text())
            text += "".join(f"\n[scenarios.s{i}]\ncovariates.maat = {{ offset = {i / 1000:.3f} }}\n"
                            for i in range(n))
            (d / "p.toml").write_text(text)
            t0 = time.perf_counter()
            try:
                cfg = load_pipeline(d / "p.toml")
            except Exception as exc:  # noqa: BLE001 - a refusal is a result here
                rows.append({"scenarios": n, "refused": str(exc)})
                continue
            t1 = time.perf_counter()
            plan = plan_pipeline(cfg, scenarios=list(cfg.scenarios))
            t2 = time.perf_counter()
            rows.append({"scenarios": n, "planned_steps": len(plan),
                         "load_seconds": round(t1 - t0, 3), "plan_seconds": round(t2 - t1, 3),
                         "ms_per_scenario": round(1000 * (t2 - t0) / n, 2)})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pipeline", type=Path, default=ROOT / "pipelines" / "demo.toml")
    ap.add_argument("--scenarios", default="10,100,1000",
                    help="comma-separated scenario counts to plan")
    a = ap.parse_args()
    pipeline = a.pipeline.resolve()
    print(json.dumps({"hashing": hashing(pipeline),
                      "planning": planning(pipeline, [int(n) for n in a.scenarios.split(",")])},
                     indent=2))


if __name__ == "__main__":
    main()
