"""The engine: run a pipeline's steps in order, each rerun only when its inputs or
configuration changed, and plan a run without running it.

Every step's *key* is a SHA-256 over its name, its part of the configuration, the content
hashes of its input files (and of every file a stack file or VRT among them names), its
seed, the keys of the steps it depends on and the package's own source code (MintPy's
run-or-skip rule, made content-based).  A step's outputs live in
``<output_dir>/steps/<step>/<key>/``; a step is done when that directory exists and its
files are those its ``step.json`` records (size and SHA-256), and it only comes into
existence by renaming a complete temporary directory, so a run killed at any point leaves
no half-finished step behind and a rerun simply does the missing work.  Scenarios that
share a step's inputs share its directory: a warming scenario recomputes only prediction
and what follows it.

Each scenario gets ``<output_dir>/<scenario>/manifest.json`` (inputs with hashes, resolved
configuration, versions, device, step keys and timings) and copies of its main outputs; a
later run removes the copies it no longer makes, and only those.
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Literal

from permafrost import __version__
from permafrost.checks import expects
from permafrost.config import (
    BASELINE,
    PipelineConfig,
    load_pipeline,
    pipeline_dir,
    resolve_scenario,
)
from permafrost.errors import ConfigError, OutputError, ParameterError, PermafrostError
from permafrost.io.atomic import atomic_write_text
from permafrost.io.locks import exclusive_lock, pid_alive
from permafrost.io.block_cache import remove_stale_temporaries
from permafrost.io.guard import RUN_FOLDER, Output, check_outputs, mark_folder
from permafrost.io.rasters import RASTER_SUFFIXES, gdal_path, is_remote, vrt_sources
from permafrost.io.vectors import split_layer
from permafrost.options import for_pipeline
from permafrost.pipeline.preflight import check_pipeline
from permafrost.pipeline.spec import PipelineResult, PlannedStep, StepContext, StepRecord, StepSpec
from permafrost.pipeline.steps import STEPS
from permafrost.provenance import canonical_json, file_digest, json_default, relative_path, versions
from permafrost.workflows.covariates import stack_file_inputs

__all__ = ["run_pipeline", "plan_pipeline", "code_digest", "step_key", "STEP_FORMAT"]

log = logging.getLogger(__name__)

#: bump when the layout of step outputs changes, so old step directories are not reused
STEP_FORMAT = 1
_PARTIAL = ".partial-"


# ---------------------------------------------------------------------------------------
# hashing


class _HashCache:
    """Content digests of files, kept between runs in ``<output_dir>/.cache/hashes.json``.

    The policy (docs/reliability.md, "Content keys"): a file's recorded SHA-256 is reused
    only while its size, modification time, inode and status-change time
    (``st_size, st_mtime_ns, st_ino, st_ctime_ns``) are all those recorded; any other file
    is read and hashed.  A rewrite that keeps the size and puts the mtime back (``os.utime``,
    ``cp -p``, ``rsync -t``) still changes the ctime, which no user call can set, and a
    rewrite by rename changes the inode.  A file whose ctime lies within
    :data:`_RACY_NS` of the moment it was hashed is not recorded (a second write in the
    same timestamp tick would look unchanged), only remembered for the rest of the run: it
    is hashed again next run.  The cost is
    one ``stat`` per file for a warm cache and one read of the file for a cold one.

    :meth:`digest` (the step keys) covers what a file names as well: the rasters of a
    covariate stack file and the sources of a VRT, recursively (:func:`_named_files`).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.data = json.loads(path.read_text())
        except (OSError, ValueError):
            self.data = {}
        if not isinstance(self.data, dict):
            self.data = {}
        self.dirty = False
        self._deep: dict[str, str] = {}  # this run's step-key digests, by resolved path
        self._fresh: dict[str, list] = {}  # this run's records too recent to keep

    def content(self, p: Path) -> str:
        """SHA-256 of the file's bytes, from the record when the file's stat matches it."""
        st = p.stat()
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        key = str(p.resolve())
        for hit in (self.data.get(key), self._fresh.get(key)):
            if isinstance(hit, list) and len(hit) == 5 and hit[:4] == stamp:
                return hit[4]
        with open(p, "rb") as fh:
            d = hashlib.file_digest(fh, "sha256").hexdigest()
        self.record(p, d, st)
        return d

    def record(self, p: Path, digest: str, st: os.stat_result | None = None) -> None:
        """Remember ``digest`` for the file as it is now (``st``: its stat when hashed)."""
        st = st or p.stat()
        key = str(p.resolve())
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns, digest]
        if st.st_ctime_ns > time.time_ns() - _RACY_NS:  # changed just now: not kept
            self._fresh[key] = entry  # (this run only: a step's outputs, just written)
            if self.data.pop(key, None) is not None:
                self.dirty = True
            return
        self.data[key] = entry
        self.dirty = True

    def digest(self, p: Path, _seen: frozenset = frozenset()) -> str:
        """What a step key holds for an input: its content and that of every file it names."""
        if is_remote(p):  # a /vsi*/ path or URL: keyed by its address, not its bytes
            return "url:" + str(gdal_path(p))
        p, layer = split_layer(p)  # FILE::LAYER: the file's bytes and the layer's name
        if layer is not None:
            return f"layer:{layer}:" + self.digest(p, _seen)
        p = Path(p).resolve()
        key = str(p)
        if key in self._deep:
            return self._deep[key]
        if key in _seen:  # a VRT that names itself (GDAL refuses it when read)
            return "loop:" + key
        if not p.exists():  # a file a stack file or VRT names: the step reports it when run
            return "missing:" + key
        if p.is_dir():
            h = hashlib.sha256()
            for f in sorted(x for x in p.rglob("*") if x.is_file() and not x.name.startswith(".")):
                h.update(str(f.relative_to(p)).encode())
                h.update(self.digest(f, _seen | {key}).encode())
            d = "dir:" + h.hexdigest()
        else:
            d = self.content(p)
            named = _named_files(p)
            if named:
                h = hashlib.sha256(d.encode())
                for f in named:  # named relative to the file: a moved project keeps its keys
                    h.update(relative_path(f, p.parent).encode())
                    h.update(self.digest(f, _seen | {key}).encode())
                d = "with-files:" + h.hexdigest()
        self._deep[key] = d
        return d

    def save(self) -> None:
        if self.dirty:
            atomic_write_text(self.path, json.dumps(self.data, sort_keys=True))
            self.dirty = False


#: a file changed this close [ns] before it was hashed is hashed again next time: file
#: system timestamps are coarse (a kernel tick; 2 s on FAT, 1 s on some network shares)
_RACY_NS = 2_000_000_000


#: files GDAL reads beside a raster: its PAM metadata (scale, offset, nodata, categories),
#: an external mask, external overviews
_SIDECARS = (".aux.xml", ".msk", ".ovr")


def _named_files(p: Path) -> list:
    """The files that a covariate stack file or a VRT reads, as the readers resolve them,
    and the side files GDAL reads with a raster."""
    suffix = p.suffix.lower()
    if suffix == ".toml":
        return stack_file_inputs(p)
    found = vrt_sources(p) if suffix == ".vrt" else []
    if suffix in RASTER_SUFFIXES:
        found += [s for s in (p.with_name(p.name + x) for x in _SIDECARS) if s.is_file()]
    return found


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
    """SHA-256 over the package's own source: a change of code is a change of every step.

    Every ``*.py`` file under the ``permafrost`` package, by path relative to it.
    :func:`step_key` calls it by this module's global name: replacing
    ``permafrost.pipeline.engine.code_digest`` pins it (as the output-identity checks do).
    """
    root = Path(__file__).resolve().parents[1]  # permafrost/, not permafrost/pipeline/
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def step_key(spec: StepSpec, options: Any, input_hashes: Any, upstream: dict[str, str], seed: int) -> str:
    payload = {"step": spec.name, "format": STEP_FORMAT, "version": __version__,
               "code": code_digest(),
               "options": options, "inputs": input_hashes, "upstream": upstream, "seed": seed}
    key = hashlib.sha256(canonical_json(payload).encode()).hexdigest()
    _BASIS[key] = json.loads(canonical_json(payload))  # kept in step.json: `run --dry-run` says why
    return key


#: what each key computed in this process was made of (key -> payload), for step.json
_BASIS: dict[str, Any] = {}


def _load_record(spec: StepSpec, key: str, d: Path, cache: _HashCache,
                 why: list[str] | None = None, *, verify: bool = True) -> StepRecord | None:
    """The finished step in ``d``, or None; where its outputs are not those it wrote (one
    truncated, edited or gone), the reason goes to ``why``.  ``verify=False``: the step
    has just written them (they were hashed then)."""
    meta = d / "step.json"
    if not meta.is_file():
        return None
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict) or info.get("key") != key:
        return None
    outputs = {k: d / v for k, v in info["outputs"].items()}
    problem = _changed_output(d, info, cache) if verify else None
    if problem is not None:
        if why is not None:
            why.append(problem)
        return None
    if not all(p.exists() for p in outputs.values()):
        return None
    return StepRecord(spec.name, key, d, outputs, info.get("summary", {}), "up to date",
                      info.get("seconds", 0.0))


def _output_files(d: Path) -> dict[str, dict[str, Any]]:
    """Size and SHA-256 of every file a step wrote into ``d`` (not step.json, not hidden
    ones such as the block cache), by path relative to ``d``: kept in step.json."""
    files = {}
    for f in sorted(d.rglob("*")):
        rel = f.relative_to(d)
        if not f.is_file() or rel.as_posix() == "step.json" or \
                any(part.startswith(".") for part in rel.parts):
            continue
        with open(f, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
        files[rel.as_posix()] = {"size": f.stat().st_size, "sha256": digest}
    return files


def _changed_output(d: Path, info: dict, cache: _HashCache) -> str | None:
    """Why the step's files are not those it wrote (None when they are): each is compared
    with step.json's size and SHA-256, the digest taken from the hash cache while the
    file's stat is the one recorded (docs/reliability.md, "Content keys")."""
    files = info.get("files")
    if not isinstance(files, dict):
        return "its step.json records no output digests (an older version wrote it)"
    for rel, want in sorted(files.items()):
        f = d / rel
        try:
            size = f.stat().st_size
            if size != want.get("size"):
                return f"its output {rel} has {size} bytes, not the {want.get('size')} written"
            if cache.content(f) != want.get("sha256"):
                return f"its output {rel} was changed after it was written"
        except FileNotFoundError:
            return f"its output {rel} is missing"
        except (OSError, AttributeError):
            return f"its output {rel} cannot be read"
    return None


def _execute(spec: StepSpec, ctx_args: dict, key: str, final: Path, force: bool,
             on_event: Callable[[str, dict], None], cache: _HashCache) -> StepRecord:
    if not force:
        why: list[str] = []
        rec = _load_record(spec, key, final, cache, why)
        if rec is not None:
            log.info("%s · %s: up to date (%s)", ctx_args["scenario"], spec.name, final)
            on_event("skip", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key})
            return rec
        if why:
            log.warning("%s · %s: %s; running the step again", ctx_args["scenario"], spec.name,
                        why[0])
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_dead_partials(final)
    work = final.parent / f"{final.name}{_PARTIAL}{os.getpid()}"
    work.mkdir()
    log.info("%s · %s: running, key %s, into %s", ctx_args["scenario"], spec.name, key[:16], work)
    log.debug("%s · %s: key made of %s", ctx_args["scenario"], spec.name, _BASIS.get(key))
    on_event("start", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key})
    t0 = time.perf_counter()
    try:
        try:
            outputs, summary = spec.run(StepContext(workdir=work, **ctx_args))
        except ParameterError as exc:  # the library's parameter -> the pipeline's TOML key
            raise for_pipeline(exc, ctx_args["config"].source) from None
        seconds = time.perf_counter() - t0
        for label, rel in outputs.items():
            if not (work / rel).exists():
                raise OutputError(f"step {spec.name!r} did not write its output {label!r}",
                                  path=work / rel)
        files = _output_files(work)
        meta = {"key": key, "step": spec.name, "outputs": outputs, "summary": summary,
                "seconds": round(seconds, 3), "basis": _BASIS.get(key), "files": files}
        (work / "step.json").write_text(json.dumps(meta, indent=2, sort_keys=True,
                                                   default=json_default))
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
    for rel, f in files.items():  # renaming the directory keeps each file's stat
        cache.record(final / rel, f["sha256"])
    rec = _load_record(spec, key, final, cache, verify=False)
    assert rec is not None
    rec.status = "ran"
    rec.seconds = seconds
    on_event("done", {"step": spec.name, "scenario": ctx_args["scenario"], "key": key,
                      "seconds": seconds, "summary": summary})
    return rec


def _partial_owner(d: Path, final: Path) -> int | None:
    """The pid in ``<key>.partial-<pid>`` or ``<key>.partial-old-<pid>`` (None if not ours)."""
    tail = d.name[len(final.name) + len(_PARTIAL):]
    tail = tail.removeprefix("old-")
    return int(tail) if tail.isdigit() else None


def _remove_dead_partials(final: Path) -> None:
    """Remove the temporary directories of ``final`` whose owner process is dead.

    A live owner's directory is never touched (another process may be writing into it);
    our own pid's is a leftover of a dead earlier process that had the same pid, because
    a step runs once at a time in a process.
    """
    for stale in final.parent.glob(final.name + _PARTIAL + "*"):
        pid = _partial_owner(stale, final)
        if pid is None or (pid != os.getpid() and pid_alive(pid)):
            continue
        log.info("removing a temporary step directory left by a dead process: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)


def _needed(specs: list[StepSpec], only: str | None) -> set[str]:
    names = {s.name for s in specs}
    if only is None:
        return names
    if only not in names:
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


@expects(config="pipeline")
def run_pipeline(
    config: PipelineConfig | str | os.PathLike,
    *,
    steps: list[StepSpec] | None = None,
    scenarios: list[str] | Literal["all"] | None = None,
    force: bool = False,
    only: str | None = None,
    on_event: Callable[[str, dict], None] | None = None,
    preflight: bool = True,
) -> PipelineResult:
    """Run ``steps`` for the baseline and the given scenarios; skip what is up to date.

    Parameters
    ----------
    config : PipelineConfig or path-like
        A validated pipeline (:func:`permafrost.config.load_pipeline`) or the path of a
        pipeline file (validated here).
    steps : list of StepSpec, optional
        The chain, in dependency order (default: :data:`permafrost.pipeline.steps.STEPS`).
    scenarios : list of str or "all", optional
        Scenario names to run besides the baseline (default: none; ``"all"``: every
        scenario of the pipeline).
    force : bool
        Rerun the selected steps even when up to date.
    only : str, optional
        Run only this step (and whatever it needs that is not up to date).
    on_event : callable, optional
        ``on_event(kind, info)`` for progress: kinds ``start``, ``skip``, ``done``.
    preflight : bool
        Check everything knowable before the first step
        (:func:`permafrost.pipeline.preflight.check_pipeline`: columns, block size against
        the extent, features, kinds; every problem at once), for the catalogue's steps
        (not for ``steps`` given here, whose needs it does not know).  False: the caller
        did.
    """
    if not isinstance(config, PipelineConfig):
        config = load_pipeline(config)
    steps = STEPS if steps is None else steps
    if scenarios == "all":
        scenarios = list(config.scenarios)
    if preflight and steps is STEPS:  # the checks of the catalogue's steps, not of others
        check_pipeline(config, scenarios)
    on_event = on_event or (lambda kind, info: None)
    out = config.pipeline.output_dir
    guard_output_dir(config)
    try:
        out.mkdir(parents=True, exist_ok=True)
        mark_folder(out, RUN_FOLDER)  # first: the folder is never unmarked
        (out / ".cache").mkdir(exist_ok=True)
    except OSError as exc:
        if isinstance(exc, PermafrostError):
            raise
        raise _output_dir_error(exc, out) from None
    # one run at a time per output directory: a second one refuses with one line
    with exclusive_lock(out / ".cache" / "lock", what="output directory", target=out,
                        field="pipeline.output_dir"):
        try:
            return _run_locked(config, out, steps=steps, scenarios=scenarios, force=force,
                               only=only, on_event=on_event)
        except OSError as exc:
            if isinstance(exc, PermafrostError) or exc.errno not in _FS_ERRNOS:
                raise
            raise _output_dir_error(exc, Path(exc.filename) if exc.filename else out) from None


def is_run_dir(path: Path) -> bool:
    """A run folder written before the marker file existed (its private ``.cache``)."""
    return (path / ".cache" / "hashes.json").is_file() or (path / ".cache" / "lock").is_file()


def guard_output_dir(config: PipelineConfig) -> None:
    """The output guard (:mod:`permafrost.io.guard`) for a pipeline: ``output_dir`` must be
    new, empty, or a run folder permafrost wrote, and hold none of the pipeline's inputs.
    The steps write only under it (``steps/``, ``.cache/``, a folder per scenario)."""
    inputs = {f"inputs.{k}": list(_flatten_inputs(v))
              for k, v in config.inputs.model_dump().items()}
    inputs.update({f"scenarios.{n}": list(_flatten_inputs(s.model_dump()))
                   for n, s in config.scenarios.items()})
    check_outputs([Output(config.pipeline.output_dir, "pipeline.output_dir", "owned",
                          recognise=is_run_dir, what="run folder")], inputs)


#: errno values that say the output's file system cannot take the write
_FS_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _output_dir_error(exc: OSError, where: Path) -> OutputError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError("the disk is full; finished steps are kept", path=where,
                           field="pipeline.output_dir",
                           fix="free space or choose another output_dir, then rerun")
    if exc.errno == errno.EROFS:
        return OutputError("the file system is read-only", path=where,
                           field="pipeline.output_dir",
                           fix="choose an output_dir on a writable file system")
    return OutputError(f"cannot write the output directory ({exc.strerror or exc})", path=where,
                       field="pipeline.output_dir", fix="choose a writable directory")


def _run_locked(config: PipelineConfig, out: Path, *, steps: list[StepSpec],
                scenarios: list[str] | None, force: bool, only: str | None,
                on_event: Callable[[str, dict], None]) -> PipelineResult:
    # temporaries of a run killed while saving the digests (this run holds the lock)
    remove_stale_temporaries([out / ".cache" / "hashes.json"])
    cache = _HashCache(out / ".cache" / "hashes.json")
    need = _needed(steps, only)
    names = config.runs(scenarios)
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
            if spec.present_only and changes:
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
                       upstream={d: recs[d] for d in spec.deps if d in recs}, seed=seed,
                       # the runs before this one (the baseline, the reference): a physical
                       # scenario warms the baseline's map (its key covers the same inputs)
                       scenarios={k: v for k, v in results.items()})
            recs[spec.name] = _execute(spec, ctx, key, final, force and (only in (None, spec.name)),
                                       on_event, cache)
            cache.save()
        results[sc] = recs
    report = None
    for spec in steps:
        if spec.across_scenarios and spec.name in need and spec.enabled(config):
            opts = spec.options(config, {})
            # every scenario of the pipeline whose results are up to date on disk, not only
            # the ones run now: a baseline-only rerun keeps the scenarios in the report
            shown = _scenarios_for_report(config, steps, spec, results, cache, seed, out)
            upstream_keys = {f"{sc}:{n}": r.key for sc, recs in shown.items() for n, r in recs.items()}
            key = step_key(spec, opts, _hash_inputs(spec.inputs(config, {}), cache), upstream_keys, seed)
            final = out / "steps" / spec.name / key[:16]
            ctx = dict(config=config, scenario=BASELINE, covariate_changes={},
                       upstream=results.get(BASELINE, {}), seed=seed, scenarios=shown)
            report = _execute(spec, ctx, key, final, force, on_event, cache)
    cache.save()
    if report is not None:  # a stable address for the latest report
        _remove_stale_links(out)
        for label, p in report.outputs.items():
            _publish(p, out / p.name, cache)
    manifests = {sc: _write_manifest(out, sc, resolved[sc], changes_by[sc], results[sc], cache,
                                     report) for sc in names}
    return PipelineResult(out, results, report, manifests)


def _dep_enabled(steps: list[StepSpec], name: str, cfg: PipelineConfig) -> bool:
    return any(s.name == name and s.enabled(cfg) for s in steps)


def _scenarios_for_report(config: PipelineConfig, steps: list[StepSpec], spec: StepSpec,
                          results: dict[str, dict[str, StepRecord]], cache: _HashCache, seed: int,
                          out: Path) -> dict[str, dict[str, StepRecord]]:
    """The records an across-scenario step (the report) shows: the scenarios run now, plus
    every other scenario of the pipeline whose steps up to ``spec.deps`` are complete and up
    to date on disk (same keys as a run would compute; nothing is run). Pipeline order."""
    shown: dict[str, dict[str, StepRecord]] = {}
    for sc in [*config.runs(list(config.scenarios)), *results]:
        if sc in shown:
            continue
        if sc in results:
            shown[sc] = results[sc]
            continue
        try:
            recs = _records_on_disk(config, steps, sc, cache, seed, out)
        except (OSError, PermafrostError):  # e.g. a scenario's changed input is gone
            continue
        if all(d in recs for d in spec.deps):
            shown[sc] = recs
    return shown


def _records_on_disk(config: PipelineConfig, steps: list[StepSpec], scenario: str,
                     cache: _HashCache, seed: int, out: Path) -> dict[str, StepRecord]:
    """A scenario's step records that exist and are up to date, in chain order, stopping
    at the first that is not (its key computed as in a run; nothing is executed)."""
    cfg, changes = resolve_scenario(config, scenario)
    recs: dict[str, StepRecord] = {}
    for s in steps:
        if s.across_scenarios or not s.enabled(cfg) or (s.present_only and changes):
            continue
        if any(d not in recs and _dep_enabled(steps, d, cfg) for d in s.deps):
            break
        key = step_key(s, s.options(cfg, changes), _hash_inputs(s.inputs(cfg, changes), cache),
                       {d: recs[d].key for d in s.deps if d in recs}, seed)
        rec = _load_record(s, key, out / "steps" / s.name / key[:16], cache)
        if rec is None:
            break
        recs[s.name] = rec
    return recs


_LINK_MARK = ".link-"  # a published copy being written


def _publish(src: Path, dst: Path, cache: _HashCache) -> str:
    """Put a copy of ``src`` at ``dst``, atomically, and return its SHA-256.

    A copy, not a link: editing a published file (``baseline/pzi.tif``) leaves the step's
    own output, and so every later step and rerun, untouched; the next run puts the step's
    bytes back.  Skipped when ``dst`` already holds those bytes (its digest from the hash
    cache: a ``stat`` while unchanged).
    """
    digest = cache.content(src)
    with contextlib.suppress(OSError):
        if dst.is_file() and not dst.is_symlink() and not os.path.samefile(src, dst) \
                and cache.content(dst) == digest:
            return digest
    tmp = dst.with_name(dst.name + f"{_LINK_MARK}{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        shutil.copyfile(src, tmp)  # the kernel's copy (sendfile) where it can
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    cache.record(dst, digest)
    return digest


def _remove_unpublished(d: Path, before: Any, now: dict[str, str], cache: _HashCache) -> None:
    """Remove from the scenario folder ``d`` what an earlier run published there and this
    run did not (e.g. ``zones.tif`` after zones were switched off): only names the earlier
    manifest lists as published, and only while the file still holds the bytes published
    (a file the user replaced or edited is left, with a warning); nothing else in the
    folder is touched."""
    if not isinstance(before, dict):
        return
    for name, digest in sorted(before.items()):
        if name in now or not isinstance(name, str) or Path(name).name != name \
                or name.startswith(".") or name == "manifest.json":
            continue
        f = d / name
        if not f.is_file() or f.is_symlink():
            continue
        try:
            ours = cache.content(f) == digest
        except OSError:
            continue
        if ours:
            f.unlink()
            log.info("removed %s: an earlier run published it, this run did not", f)
        else:
            log.warning("left %s in place: an earlier run published it, but it was changed "
                        "since", f)


def _remove_stale_links(d: Path) -> None:
    """Temporary links left by a run killed between link and rename."""
    for stale in d.glob(f"*{_LINK_MARK}*"):
        with contextlib.suppress(OSError):
            stale.unlink()


def _input_digests(paths: list[Path], cache: _HashCache, base: Path) -> dict[str, str]:
    """The manifest's inputs: each local input file's SHA-256, and that of every file a
    stack file or VRT among them names (recursively); a folder's digest over its files."""
    found: dict[str, str] = {}
    todo, seen = list(paths), set()
    while todo:
        p = todo.pop(0)
        if is_remote(p):
            continue
        p, layer = split_layer(p)  # FILE::LAYER: the file's digest
        if not p.exists() or str(p.resolve()) in seen:
            continue
        seen.add(str(p.resolve()))
        if p.is_dir():
            found[relative_path(p, base)] = cache.digest(p)
            continue
        found[relative_path(p, base)] = cache.content(p)
        todo.extend(_named_files(p))
    return found


def _read_json_or_none(path: Path, key: str) -> Any:
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def _relative_paths(obj: Any, base: Path) -> Any:
    if isinstance(obj, Path):
        return relative_path(obj, base)
    if isinstance(obj, dict):
        return {k: _relative_paths(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_relative_paths(v, base) for v in obj]
    return obj


def _write_manifest(out: Path, scenario: str, cfg: PipelineConfig, changes: dict,
                    recs: dict[str, StepRecord], cache: _HashCache, report: StepRecord | None) -> Path:
    d = out / scenario
    d.mkdir(parents=True, exist_ok=True)
    _remove_stale_links(d)
    # paths relative to the pipeline file: the manifest does not depend on where it lives
    base = pipeline_dir(cfg)
    inputs = _input_digests(sorted(set(_flatten_inputs(cfg.inputs.model_dump())), key=str),
                            cache, base)
    steps_info, links, published = {}, {}, {}
    for name, r in recs.items():
        steps_info[name] = {"key": r.key, "directory": str(r.directory.relative_to(out)),
                            "outputs": {k: str(v.relative_to(out)) for k, v in r.outputs.items()},
                            "summary": r.summary}
        for label, p in r.outputs.items():
            if p.is_file():
                dst = d / p.name
                published[dst.name] = _publish(p, dst, cache)
                links[label] = str(dst.relative_to(out))
    _remove_unpublished(d, _read_json_or_none(d / "manifest.json", "published"), published, cache)
    manifest = {
        "pipeline": cfg.pipeline.name,
        "scenario": scenario,
        "source": cfg.source.name if cfg.source else None,
        "source_sha256": file_digest(cfg.source) if cfg.source and cfg.source.is_file() else None,
        "paths_relative_to": ("the pipeline file's directory" if cfg.source
                              else "the output directory"),
        "configuration": json.loads(canonical_json(_relative_paths(
            cfg.model_dump(by_alias=True, exclude={"scenarios"}), base))),
        "covariate_changes": {k: v.model_dump(mode="json", exclude_none=True) for k, v in changes.items()},
        "inputs": inputs,
        "steps": steps_info,
        "outputs": links,
        "published": published,  # name -> SHA-256: what a later run may remove from here
        "report": str(report.outputs["html"].relative_to(out)) if report and "html" in report.outputs else None,
        "report_step": {"key": report.key, "directory": str(report.directory.relative_to(out))}
        if report else None,
        "versions": versions(),
        "timings": {name: {"status": r.status, "seconds": round(r.seconds, 3)} for name, r in recs.items()},
    }
    path = d / "manifest.json"
    remove_stale_temporaries([path])  # of a run killed while writing it
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True, default=json_default))
    return path


# ---------------------------------------------------------------------------------------
# planning (read-only): `permafrost run --dry-run`


def plan_pipeline(
    config: PipelineConfig,
    *,
    steps: list[StepSpec] | None = None,
    scenarios: list[str] | None = None,
    force: bool = False,
    only: str | None = None,
    preflight: bool = True,
) -> list[PlannedStep]:
    """Which steps :func:`run_pipeline` would run with these arguments, and why; runs nothing.

    Reads the input files (to hash them) and the output directory; writes nothing, takes no
    lock.  A step runs when its directory for the key it would get is missing or incomplete.
    The reasons compare that key's makings with the step's latest run for the scenario (its
    ``manifest.json``): changed options, changed input contents, an upstream step that
    changes, other code or seed, or outputs missing.

    Parameters
    ----------
    config : PipelineConfig
        A validated pipeline (:func:`permafrost.config.load_pipeline`).
    steps, scenarios, force, only, preflight
        As for :func:`run_pipeline` (``scenarios`` a list of names).

    Returns
    -------
    list of PlannedStep
        In run order: each scenario's steps, then the across-scenario steps (the report).
    """
    steps = STEPS if steps is None else steps
    if preflight and steps is STEPS:  # the checks of the catalogue's steps, not of others
        check_pipeline(config, scenarios)
    out = config.pipeline.output_dir
    guard_output_dir(config)
    cache = _HashCache(out / ".cache" / "hashes.json")  # read, never saved here
    need = _needed(steps, only)
    plan: list[PlannedStep] = []
    keys: dict[str, dict[str, str]] = {}
    changed: set[str] = set()  # "scenario:step" whose key differs from the last run's
    for sc in config.runs(scenarios):
        cfg, changes = resolve_scenario(config, sc)
        previous = _previous_bases(out, sc)
        keys[sc] = {}
        for spec in steps:
            if spec.across_scenarios or spec.name not in need or not spec.enabled(cfg):
                continue
            if getattr(spec, "present_only", False) and changes:
                continue
            up = {d: keys[sc][d] for d in spec.deps if d in keys[sc]}
            key = step_key(spec, spec.options(cfg, changes),
                           _hash_inputs(spec.inputs(cfg, changes), cache), up, config.pipeline.seed)
            keys[sc][spec.name] = key
            final = out / "steps" / spec.name / key[:16]
            p = _plan_one(sc, spec, key, final,
                          previous.get(spec.name) or _newest_run(out, spec.name),
                          force and only in (None, spec.name),
                          [d for d in spec.deps if f"{sc}:{d}" in changed], cache)
            if p.action == "run" and previous.get(spec.name, {}).get("key") != key:
                changed.add(f"{sc}:{spec.name}")
            plan.append(p)
    for spec in steps:
        if spec.across_scenarios and spec.name in need and spec.enabled(config):
            # the upstream keys of the report also cover scenarios not named here (they stay in
            # the report when up to date on disk); the plan names the ones asked for
            up = {f"{sc}:{n}": k for sc, ks in keys.items() for n, k in ks.items()}
            key = step_key(spec, spec.options(config, {}),
                           _hash_inputs(spec.inputs(config, {}), cache), up, config.pipeline.seed)
            final = out / "steps" / spec.name / key[:16]
            prev = _previous_bases(out, BASELINE).get(spec.name) or _newest_run(out, spec.name)
            p = _plan_one("all", spec, key, final, prev, force, sorted(changed), cache)
            plan.append(p)
    return plan


def _previous_bases(out: Path, scenario: str) -> dict[str, dict[str, Any]]:
    """Step name -> {"key", "basis"} of the scenario's latest run (from its manifest)."""
    try:
        manifest = json.loads((out / scenario / "manifest.json").read_text())
    except (OSError, ValueError):
        return {}
    found: dict[str, dict[str, Any]] = {}
    entries = dict(manifest.get("steps") or {})
    if manifest.get("report_step"):
        entries["report"] = manifest["report_step"]
    for name, info in entries.items():
        if not isinstance(info, dict) or "key" not in info:
            continue
        basis = None
        d = info.get("directory")
        if d:
            try:
                basis = json.loads((out / d / "step.json").read_text()).get("basis")
            except (OSError, ValueError):
                basis = None
        found[name] = {"key": info["key"], "basis": basis}
    return found


def _newest_run(out: Path, step: str) -> dict[str, Any] | None:
    """The newest finished run of ``step`` in the output directory (any scenario): the
    comparison when the scenario's manifest does not list the step (e.g. after ``--only``)."""
    metas = [m for m in (out / "steps" / step).glob("*/step.json") if _PARTIAL not in m.parent.name]
    if not metas:
        return None
    newest = max(metas, key=lambda m: m.stat().st_mtime_ns)
    try:
        info = json.loads(newest.read_text())
    except (OSError, ValueError):
        return None
    return {"key": info.get("key"), "basis": info.get("basis"), "newest": True}


def _plan_one(scenario: str, spec: StepSpec, key: str, final: Path,
              prev: dict[str, Any] | None, force: bool, upstream_changed: list[str],
              cache: _HashCache) -> PlannedStep:
    changed: list[str] = []
    on_disk = _load_record(spec, key, final, cache, changed) is not None
    if on_disk and not force:
        return PlannedStep(scenario, spec.name, key, "up to date", [])
    reasons: list[str] = []
    if force:
        reasons.append("--force")
    if on_disk:
        return PlannedStep(scenario, spec.name, key, "run", reasons)
    if changed:
        reasons.append(changed[0])
    elif prev is None:
        reasons.append("no earlier run")
    elif prev["key"] == key:
        reasons.append("outputs missing")
    else:
        why = _why_key_changed(prev.get("basis"), _BASIS.get(key) or {}, upstream_changed)
        if prev.get("newest"):  # not this scenario's recorded run: say what it is compared with
            why = [f"against this step's newest run: {why[0]}", *why[1:]] if why else why
        reasons.extend(why)
    if final.parent.is_dir() and any(final.parent.glob(final.name + _PARTIAL + "*")):
        reasons.append("an interrupted run left partial outputs")
    return PlannedStep(scenario, spec.name, key, "run", reasons or ["its key changed"])


def _why_key_changed(old: dict[str, Any] | None, new: dict[str, Any],
                     upstream_changed: list[str]) -> list[str]:
    if not old:
        return ["its key changed (the earlier run did not record why)"]
    reasons = []
    oo, no = old.get("options"), new.get("options")
    if oo != no:
        if isinstance(oo, dict) and isinstance(no, dict):
            fo, fn = _flat(oo), _flat(no)
            diff = [f"{k} {_short(fo, k)} -> {_short(fn, k)}"
                    for k in sorted(set(fo) | set(fn))
                    if k not in fo or k not in fn or fo[k] != fn[k]]
            reasons.append("options changed: " + "; ".join(diff))
        else:
            reasons.append("options changed")
    oi, ni = old.get("inputs"), new.get("inputs")
    if oi != ni:
        if isinstance(oi, dict) and isinstance(ni, dict):
            names = [k for k in sorted(set(oi) | set(ni)) if oi.get(k) != ni.get(k)]
            reasons.append("input changed (content hash): " + ", ".join(names))
        else:
            reasons.append("input changed (content hash)")
    if old.get("upstream") != new.get("upstream"):
        reasons.append("upstream changed: " + (", ".join(upstream_changed) or ", ".join(
            k for k in sorted(set(old.get("upstream") or {}) | set(new.get("upstream") or {}))
            if (old.get("upstream") or {}).get(k) != (new.get("upstream") or {}).get(k))))
    if old.get("code") != new.get("code") or old.get("version") != new.get("version") \
            or old.get("format") != new.get("format"):
        reasons.append("permafrost's code changed")
    if old.get("seed") != new.get("seed"):
        reasons.append(f"seed {old.get('seed')} -> {new.get('seed')}")
    return reasons


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    """``{"labels": {"sampling": "front"}}`` -> ``{"labels.sampling": "front"}``."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _short(d: dict[str, Any], k: str) -> str:
    if k not in d:
        return "(none)"
    text = json.dumps(d[k], sort_keys=True, default=str)
    return text if len(text) <= 40 else text[:37] + "..."

