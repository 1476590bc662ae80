"""Run a pipeline: steps in order, each rerun only when its inputs or configuration changed.

Every step's *key* is a SHA-256 over its name, its part of the configuration, the content
hashes of its input files, its seed, the keys of the steps it depends on and the package's
own source code (MintPy's run-or-skip rule, made content-based).  A step's outputs live in
``<output_dir>/steps/<step>/<key>/``; a step is done when that directory exists, and it
only comes into existence by renaming a complete temporary directory, so a run killed at
any point leaves no half-finished step behind and a rerun simply does the missing work.
Scenarios that share a step's inputs share its directory: a warming scenario recomputes
only prediction and what follows it.

Each scenario gets ``<output_dir>/<scenario>/manifest.json`` (inputs with hashes, resolved
configuration, versions, device, step keys and timings) and hard links to its main outputs.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from permafrost import __version__
from permafrost.config import BASELINE, CovariateChange, PipelineConfig, resolve_scenario
from permafrost.errors import ConfigError, OutputError
from permafrost.io._atomic import atomic_write_text

__all__ = [
    "StepSpec",
    "StepContext",
    "StepRecord",
    "PipelineResult",
    "run_pipeline",
    "file_digest",
    "canonical_json",
]

log = logging.getLogger(__name__)

#: bump when the layout of step outputs changes, so old step directories are not reused
STEP_FORMAT = 1
_PARTIAL = ".partial-"


# ---------------------------------------------------------------------------------------
# hashing


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, paths as strings) for hashing and manifests."""
    return json.dumps(obj, sort_keys=True, default=_json_default, separators=(",", ":"))


def _json_default(o: Any) -> Any:
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "model_dump"):
        return o.model_dump(mode="json")
    if isinstance(o, (set, tuple)):
        return list(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


class _HashCache:
    """Content digests of input files, cached by (path, size, mtime) between runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            self.data = {}
        self.dirty = False

    def digest(self, p: Path) -> str:
        p = p.resolve()
        if p.is_dir():
            h = hashlib.sha256()
            for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
                h.update(str(f.relative_to(p)).encode())
                h.update(self.digest(f).encode())
            return "dir:" + h.hexdigest()
        st = p.stat()
        key = str(p)
        hit = self.data.get(key)
        if hit and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
            return hit[2]
        d = file_digest(p)
        self.data[key] = [st.st_size, st.st_mtime_ns, d]
        self.dirty = True
        return d

    def save(self) -> None:
        if self.dirty:
            atomic_write_text(self.path, json.dumps(self.data, sort_keys=True))
            self.dirty = False


def file_digest(path: str | os.PathLike, *, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# steps


@dataclass
class StepContext:
    """What a step function gets: its configuration, a directory to write into, upstream outputs."""

    config: PipelineConfig
    scenario: str
    covariate_changes: dict[str, CovariateChange]
    workdir: Path
    upstream: dict[str, StepRecord]
    seed: int
    scenarios: dict[str, dict[str, StepRecord]] = field(default_factory=dict)


@dataclass
class StepSpec:
    """One step of the chain.

    ``run(ctx)`` writes its outputs into ``ctx.workdir`` and returns
    ``(outputs, summary)``: file names relative to the workdir by label, and a small
    JSON-able summary for the manifest and the terminal.
    """

    name: str
    deps: tuple[str, ...]
    options: Callable[[PipelineConfig, dict[str, CovariateChange]], Any]
    inputs: Callable[[PipelineConfig, dict[str, CovariateChange]], dict[str, Any]]
    run: Callable[[StepContext], tuple[dict[str, str], dict[str, Any]]]
    enabled: Callable[[PipelineConfig], bool] = lambda cfg: True
    across_scenarios: bool = False  # the report: one for all scenarios
    baseline_only: bool = False  # e.g. validation against today's boreholes


@dataclass
class StepRecord:
    name: str
    key: str
    directory: Path
    outputs: dict[str, Path]
    summary: dict[str, Any]
    status: str  # "ran" or "up to date"
    seconds: float

    def output(self, label: str) -> Path:
        return self.outputs[label]


@dataclass
class PipelineResult:
    output_dir: Path
    scenarios: dict[str, dict[str, StepRecord]]
    report: StepRecord | None
    manifests: dict[str, Path]

    @property
    def report_path(self) -> Path | None:
        """``<output_dir>/report.html`` (a link to the report step's output)."""
        return self.output_dir / "report.html" if self.report is not None else None

    @property
    def ran(self) -> list[str]:
        out = [f"{sc}:{r.name}" for sc, recs in self.scenarios.items() for r in recs.values()
               if r.status == "ran"]
        if self.report and self.report.status == "ran":
            out.append("report")
        return out


def _flatten_inputs(obj: Any) -> Iterable[Path]:
    if isinstance(obj, Path):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _flatten_inputs(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _flatten_inputs(v)


def _hash_inputs(obj: Any, cache: _HashCache) -> Any:
    if isinstance(obj, Path):
        return cache.digest(obj)
    if isinstance(obj, dict):
        return {k: _hash_inputs(v, cache) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_hash_inputs(v, cache) for v in obj]
    return obj


@functools.lru_cache(maxsize=1)
def code_digest() -> str:
    """SHA-256 over the package's own source: a change of code is a change of every step."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def step_key(spec: StepSpec, options: Any, input_hashes: Any, upstream: dict[str, str], seed: int) -> str:
    payload = {"step": spec.name, "format": STEP_FORMAT, "version": __version__,
               "code": code_digest(),
               "options": options, "inputs": input_hashes, "upstream": upstream, "seed": seed}
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


def _load_record(spec: StepSpec, key: str, d: Path) -> StepRecord | None:
    meta = d / "step.json"
    if not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
    except json.JSONDecodeError:
        return None
    if info.get("key") != key:
        return None
    outputs = {k: d / v for k, v in info["outputs"].items()}
    if not all(p.exists() for p in outputs.values()):
        return None
    return StepRecord(spec.name, key, d, outputs, info.get("summary", {}), "up to date",
                      info.get("seconds", 0.0))


def _execute(spec: StepSpec, ctx_args: dict, key: str, final: Path, force: bool,
             on_event: Callable[[str, dict], None]) -> StepRecord:
    if not force:
        rec = _load_record(spec, key, final)
        if rec is not None:
            on_event("skip", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key})
            return rec
    final.parent.mkdir(parents=True, exist_ok=True)
    for stale in final.parent.glob(final.name + _PARTIAL + "*"):
        shutil.rmtree(stale, ignore_errors=True)
    work = final.parent / f"{final.name}{_PARTIAL}{os.getpid()}"
    work.mkdir()
    on_event("start", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key})
    t0 = time.perf_counter()
    try:
        outputs, summary = spec.run(StepContext(workdir=work, **ctx_args))
        seconds = time.perf_counter() - t0
        for label, rel in outputs.items():
            if not (work / rel).exists():
                raise OutputError(f"step {spec.name!r} did not write its output {label!r}",
                                  path=work / rel)
        meta = {"key": key, "step": spec.name, "outputs": outputs, "summary": summary,
                "seconds": round(seconds, 3)}
        (work / "step.json").write_text(json.dumps(meta, indent=2, sort_keys=True,
                                                   default=_json_default))
        if final.exists():  # forced rerun: replace the old directory
            trash = final.parent / f"{final.name}{_PARTIAL}old-{os.getpid()}"
            os.replace(final, trash)
            os.replace(work, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(work, final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    rec = _load_record(spec, key, final)
    assert rec is not None
    rec.status = "ran"
    rec.seconds = seconds
    on_event("done", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key,
                      "seconds": seconds, "summary": summary})
    return rec


def _needed(specs: list[StepSpec], only: str | None) -> set[str]:
    names = {s.name for s in specs}
    if only is None:
        return names
    if only not in names:
        import difflib

        near = difflib.get_close_matches(only, sorted(names), n=1)
        raise ConfigError(f"no step named {only!r}", field="--only",
                          fix=f"did you mean {near[0]!r}?" if near else f"steps: {', '.join(names)}")
    by = {s.name: s for s in specs}
    need, todo = set(), [only]
    while todo:
        n = todo.pop()
        if n not in need:
            need.add(n)
            todo.extend(by[n].deps)
    return need


def run_pipeline(
    config: PipelineConfig,
    *,
    steps: list[StepSpec],
    scenarios: list[str] | None = None,
    force: bool = False,
    only: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
) -> PipelineResult:
    """Run ``steps`` for the baseline and the given scenarios; skip what is up to date.

    Parameters
    ----------
    config : PipelineConfig
        A validated pipeline (:func:`permafrost.config.load_pipeline`).
    steps : list of StepSpec
        The chain, in dependency order (see :mod:`permafrost.steps`).
    scenarios : list of str, optional
        Scenario names to run besides the baseline (default: none).
    force : bool
        Rerun the selected steps even when up to date.
    only : str, optional
        Run only this step (and whatever it needs that is not up to date).
    on_event : callable, optional
        ``on_event(kind, info)`` for progress: kinds ``start``, ``skip``, ``done``.
    """
    on_event = on_event or (lambda kind, info: None)
    out = config.pipeline.output_dir
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create the output directory ({exc.strerror})", path=out,
                          field="pipeline.output_dir", fix="choose a writable directory") from None
    cache = _HashCache(out / ".cache" / "hashes.json")
    need = _needed(steps, only)
    names = [BASELINE, *[s for s in (scenarios or []) if s != BASELINE]]
    results: dict[str, dict[str, StepRecord]] = {}
    resolved: dict[str, PipelineConfig] = {}
    changes_by: dict[str, dict] = {}
    seed = config.pipeline.seed
    for sc in names:
        cfg, changes = resolve_scenario(config, sc)
        resolved[sc], changes_by[sc] = cfg, changes
        recs: dict[str, StepRecord] = {}
        for spec in steps:
            if spec.across_scenarios or spec.name not in need or not spec.enabled(cfg):
                continue
            if spec.baseline_only and sc != BASELINE:
                continue
            missing = [d for d in spec.deps if d not in recs and _dep_enabled(steps, d, cfg)]
            if missing:
                raise ConfigError(f"step {spec.name!r} needs {missing}", field="--only")
            opts = spec.options(cfg, changes)
            inputs = spec.inputs(cfg, changes)
            key = step_key(spec, opts, _hash_inputs(inputs, cache),
                           {d: recs[d].key for d in spec.deps if d in recs}, seed)
            final = out / "steps" / spec.name / key[:16]
            ctx = dict(config=cfg, scenario=sc, covariate_changes=changes,
                       upstream={d: recs[d] for d in spec.deps if d in recs}, seed=seed)
            recs[spec.name] = _execute(spec, ctx, key, final, force and (only in (None, spec.name)),
                                       on_event)
            cache.save()
        results[sc] = recs
    report = None
    for spec in steps:
        if spec.across_scenarios and spec.name in need and spec.enabled(config):
            opts = spec.options(config, {})
            upstream_keys = {f"{sc}:{n}": r.key for sc, recs in results.items() for n, r in recs.items()}
            key = step_key(spec, opts, _hash_inputs(spec.inputs(config, {}), cache), upstream_keys, seed)
            final = out / "steps" / spec.name / key[:16]
            ctx = dict(config=config, scenario=BASELINE, covariate_changes={},
                       upstream=results.get(BASELINE, {}), seed=seed, scenarios=results)
            report = _execute(spec, ctx, key, final, force, on_event)
    cache.save()
    if report is not None:  # a stable address for the latest report
        _remove_stale_links(out)
        for label, p in report.outputs.items():
            _link(p, out / p.name)
    manifests = {sc: _write_manifest(out, sc, resolved[sc], changes_by[sc], results[sc], cache,
                                     report) for sc in names}
    return PipelineResult(out, results, report, manifests)


def _dep_enabled(steps: list[StepSpec], name: str, cfg: PipelineConfig) -> bool:
    return any(s.name == name and s.enabled(cfg) for s in steps)


_LINK_MARK = ".link-"


def _link(src: Path, dst: Path) -> None:
    """Point ``dst`` at ``src`` (hard link, or copy across filesystems), atomically."""
    with contextlib.suppress(OSError):
        if os.path.samefile(src, dst):
            return  # already linked (rename() onto the same inode would do nothing)
    tmp = dst.with_name(dst.name + f"{_LINK_MARK}{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def _remove_stale_links(d: Path) -> None:
    """Temporary links left by a run killed between link and rename."""
    for stale in d.glob(f"*{_LINK_MARK}*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def versions() -> dict[str, str]:
    """Versions of Python, permafrost and the libraries that shape its outputs."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "permafrost": __version__}
    for pkg in ("numpy", "xarray", "rioxarray", "rasterio", "geopandas", "xgboost", "scikit-learn",
                "dask", "mintpy"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    try:
        from osgeo import gdal  # noqa: F401
    except ImportError:
        import rasterio

        out["gdal"] = rasterio.__gdal_version__
    return out


def _write_manifest(out: Path, scenario: str, cfg: PipelineConfig, changes: dict,
                    recs: dict[str, StepRecord], cache: _HashCache, report: StepRecord | None) -> Path:
    d = out / scenario
    d.mkdir(parents=True, exist_ok=True)
    _remove_stale_links(d)
    inputs = {str(p): cache.digest(p) for p in sorted(set(_flatten_inputs(
        cfg.inputs.model_dump())), key=str) if Path(p).exists()}
    steps_info, links = {}, {}
    for name, r in recs.items():
        steps_info[name] = {"key": r.key, "directory": str(r.directory.relative_to(out)),
                            "outputs": {k: str(v.relative_to(out)) for k, v in r.outputs.items()},
                            "summary": r.summary}
        for label, p in r.outputs.items():
            if p.is_file():
                dst = d / p.name
                _link(p, dst)
                links[label] = str(dst.relative_to(out))
    manifest = {
        "pipeline": cfg.pipeline.name,
        "scenario": scenario,
        "source": str(cfg.source) if cfg.source else None,
        "configuration": json.loads(canonical_json(cfg.model_dump(mode="json", by_alias=True,
                                                                  exclude={"scenarios"}))),
        "covariate_changes": {k: v.model_dump(mode="json", exclude_none=True) for k, v in changes.items()},
        "inputs": inputs,
        "steps": steps_info,
        "outputs": links,
        "report": str(report.outputs["html"].relative_to(out)) if report and "html" in report.outputs else None,
        "versions": versions(),
        "timings": {name: {"status": r.status, "seconds": round(r.seconds, 3)} for name, r in recs.items()},
    }
    path = d / "manifest.json"
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True, default=_json_default))
    return path
