"""Where prediction runs: the device (CPU or CUDA GPU) and the Dask scheduler.

This is the one place that knows about the execution backends of the prediction
(:mod:`permafrost.predict`, :mod:`permafrost.workflows.predict`) and of training:

* **device** -- ``"cpu"`` (NumPy arrays) or ``"cuda"`` (CuPy arrays handed straight to
  XGBoost on the GPU).  CuPy is imported lazily, only when a GPU is asked for or probed,
  never at module import: the package must import and run on machines without CUDA.
  XGBoost asked for ``device="cuda"`` without a GPU silently falls back to the CPU
  (DESIGN §6), so the GPU is detected here and the device actually used is reported.
  :func:`resolve_device` turns the ``device`` option into ``"cpu"`` or ``"cuda"`` once per
  call of the library; the resolved value is what every block and predictor receives.
* **scheduler** -- Dask's threaded scheduler in this process (the default), a
  :class:`distributed.LocalCluster` of ``workers`` processes, or an existing cluster
  at a scheduler address.  :class:`Executor` runs a list of :class:`dask.delayed`
  tasks on the chosen one and reports each finished task to a callback.

No science here.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import subprocess
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from permafrost.errors import InputError, ParameterError
from permafrost.options import check_options

__all__ = [
    "DEVICES",
    "Executor",
    "array_module",
    "array_module_of",
    "gpu_available",
    "open_executor",
    "resolve_device",
    "to_host",
    "xgboost_gpu_usable",
]

log = logging.getLogger(__name__)

#: accepted values of the ``device`` option
DEVICES = ("auto", "cpu", "cuda")


def _import_cupy() -> ModuleType | None:
    try:
        import cupy
    except Exception:  # noqa: BLE001 - ImportError, or a CUDA library that fails to load
        return None
    return cupy


def gpu_available() -> bool:
    """True when CuPy imports and sees at least one CUDA device."""
    cupy = _import_cupy()
    if cupy is None:
        return False
    try:
        return int(cupy.cuda.runtime.getDeviceCount()) > 0
    except Exception:  # noqa: BLE001 - no driver, no device
        return False


@functools.lru_cache(maxsize=1)
def xgboost_gpu_usable() -> tuple[bool, str]:
    """Whether XGBoost can really run on a CUDA GPU here, and why (not).

    XGBoost given ``device="cuda"`` without a GPU silently falls back to the CPU (DESIGN
    §6), so this trains a one-tree booster on the GPU and reads back the device the booster
    used.
    """
    import numpy as np
    import xgboost as xgb

    if not xgb.build_info().get("USE_CUDA", False):
        return False, "this xgboost build has no CUDA support"
    try:
        r = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
        if r.returncode != 0 or "GPU" not in r.stdout:
            return False, "nvidia-smi lists no GPU"
    except (OSError, subprocess.SubprocessError):
        return False, "nvidia-smi not available (no NVIDIA driver)"
    X = np.arange(32, dtype=np.float32).reshape(16, 2)
    y = (X[:, 0] > 15).astype(np.float32)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        try:
            b = xgb.train({"device": "cuda", "tree_method": "hist", "objective": "binary:logistic"},
                          xgb.DMatrix(X, label=y), num_boost_round=1)
            used = json.loads(b.save_config())["learner"]["generic_param"]["device"]
        except xgb.core.XGBoostError as exc:
            return False, f"xgboost CUDA test failed ({str(exc).splitlines()[0][:120]})"
    if str(used).startswith("cuda"):
        return True, "xgboost trained a test booster on the GPU"
    return False, "xgboost fell back to the CPU (no visible GPU)"


def resolve_device(device: str = "auto", *, purpose: str = "predict") -> str:
    """Turn the ``device`` option into the device that will really be used.

    The one place where the package decides between CPU and GPU: XGBoost must really run
    on the GPU (:func:`xgboost_gpu_usable`), and prediction also needs CuPy to keep
    covariate blocks on the device (:func:`gpu_available`).

    Parameters
    ----------
    device : {"auto", "cpu", "cuda"}
        ``auto`` picks ``cuda`` when the GPU is usable for ``purpose``, else ``cpu``.
    purpose : {"predict", "train"}
        What the device is for.

    Returns
    -------
    str
        ``"cpu"`` or ``"cuda"``.

    Raises
    ------
    InputError
        Unknown value, or ``cuda`` asked for on a machine without a usable GPU (we never
        let XGBoost fall back silently).
    """
    dev = str(device).lower()
    if dev.startswith("cuda:") or dev == "gpu":
        dev = "cuda"
    if dev not in DEVICES:
        raise InputError(f"unknown device {device!r}", field="device",
                         fix=f"use one of {', '.join(DEVICES)}")
    if dev == "cpu":
        return "cpu"
    ok, why = xgboost_gpu_usable()
    if ok and purpose == "predict" and not gpu_available():
        ok, why = False, "CuPy is missing or sees no device"
    if dev == "auto":
        log.info("device auto -> %s (%s)", "cuda" if ok else "cpu", why)
        return "cuda" if ok else "cpu"
    if not ok:
        raise ParameterError(f"device 'cuda' asked for but no CUDA GPU is usable here ({why})",
                             param="device",
                             fix="set {device} to cpu (or auto), or install the 'gpu' extra "
                                 "(cupy-cuda12x) on a machine with an NVIDIA GPU")
    return "cuda"


def array_module(device: str) -> ModuleType:
    """NumPy for ``cpu``, CuPy for ``cuda`` (imported here, lazily)."""
    if device == "cuda":
        cupy = _import_cupy()
        if cupy is None:  # pragma: no cover - resolve_device checked it
            raise ParameterError("CuPy is not importable", param="device",
                                 fix="set {device} to cpu")
        return cupy
    import numpy

    return numpy


def array_module_of(array: Any) -> ModuleType:
    """CuPy for a CuPy array, else NumPy (CuPy is only imported when it is already in use)."""
    if type(array).__module__.startswith("cupy"):
        return array_module("cuda")
    import numpy

    return numpy


def to_host(array: Any) -> Any:
    """A NumPy array from a NumPy or CuPy array (no copy for NumPy)."""
    if hasattr(array, "get") and type(array).__module__.startswith("cupy"):
        return array.get()
    return array


@dataclass
class Executor:
    """Runs Dask tasks on one backend and reports each finished one.

    Use :func:`open_executor` to build one; it closes what it opened.

    Attributes
    ----------
    backend : str
        ``"threads"``, ``"local-cluster"`` or ``"cluster"``.
    threads : int
        Threads of the threaded scheduler (threads backend only).
    client : distributed.Client or None
        The client of a (local or remote) cluster.
    """

    backend: str
    threads: int = 1
    client: Any = None

    def run(self, tasks: Sequence[Any], on_done: Callable[[int, Any], None] | None = None
            ) -> list[Any]:
        """Compute ``tasks`` (dask.delayed) and return their results in order.

        ``on_done(index, result)`` is called in this thread as each task finishes.
        """
        if not tasks:
            return []
        if self.client is not None:
            return self._run_distributed(tasks, on_done)
        return self._run_threads(tasks, on_done)

    def _run_threads(self, tasks, on_done):
        """A pool of threads, each computing one task's graph synchronously.

        At most ``2 * threads`` tasks are in flight, so only their inputs are in memory,
        whatever order a scheduler would pick ready reading tasks in.
        """
        from dask.highlevelgraph import HighLevelGraph
        from dask.local import get_sync
        from dask.optimization import cull

        # the merged graph is built once; each task then runs only its own dependencies
        # (culling per task from the shared dict costs O(task), not O(graph))
        graph = dict(HighLevelGraph.merge(*[t.__dask_graph__() for t in tasks]))

        def one(task):
            sub, _ = cull(graph, [task.key])
            return get_sync(sub, task.key)

        results: list[Any] = [None] * len(tasks)
        window = 2 * self.threads
        with ThreadPoolExecutor(max_workers=self.threads,
                                thread_name_prefix="permafrost-predict") as pool:
            pending: dict[Future, int] = {}
            nxt = 0
            try:
                while nxt < len(tasks) or pending:
                    while nxt < len(tasks) and len(pending) < window:
                        pending[pool.submit(one, tasks[nxt])] = nxt
                        nxt += 1
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for fut in sorted(done, key=pending.__getitem__):
                        i = pending.pop(fut)
                        results[i] = fut.result()
                        if on_done is not None:
                            on_done(i, results[i])
            except BaseException:
                for fut in pending:
                    fut.cancel()
                raise
        return results

    def _run_distributed(self, tasks, on_done):
        from distributed import as_completed

        futures = self.client.compute(list(tasks))
        position = {f.key: i for i, f in enumerate(futures)}
        results: list[Any] = [None] * len(futures)
        try:
            for fut in as_completed(futures, loop=self.client.loop):
                i = position[fut.key]
                results[i] = fut.result()
                if on_done is not None:
                    on_done(i, results[i])
        except BaseException:
            self.client.cancel(futures)
            raise
        return results


def default_threads() -> int:
    """Threads for the threaded scheduler: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: how long to wait for a Dask scheduler to answer (a running one answers in milliseconds)
SCHEDULER_TIMEOUT = "10s"

def check_scheduler_address(address: Any) -> str:
    """A Dask scheduler address (``tcp://HOST:PORT``, ``tls://...``, ``inproc://...``), its
    form checked by distributed's own parser before any connection is tried, else a
    one-line :class:`InputError`."""
    from distributed.comm.addressing import get_address_host_port, parse_address

    text = str(address).strip()
    try:
        scheme, _ = parse_address(text, strict=False)
        if scheme != "inproc":  # an in-process cluster has no host and port
            host, port = get_address_host_port(text)
            if not host or any(c.isspace() for c in host) or not 0 < int(port) < 65536:
                raise ValueError(text)
    except (ValueError, TypeError):
        raise InputError(f"not a Dask scheduler address: {text[:80]!r}", field="scheduler",
                         fix="give PROTOCOL://HOST:PORT, e.g. tcp://10.0.0.5:8786, as "
                             "printed by `dask scheduler`") from None
    return text


@contextmanager
def open_executor(*, workers: int | None = None, scheduler: str | None = None,
                  threads: int | None = None) -> Iterator[Executor]:
    """Open the execution backend, yield an :class:`Executor`, close what was opened.

    Parameters
    ----------
    workers : int, optional
        Start a :class:`distributed.LocalCluster` with this many worker processes (one
        thread each).
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); its workers must see
        the same file system (inputs, outputs and the block cache).
    threads : int, optional
        Threads of the default threaded scheduler (default: the usable CPUs).

    Raises
    ------
    InputError
        Both ``workers`` and ``scheduler`` given, a bad worker count, or a scheduler that
        cannot be reached.
    """
    if workers is not None and scheduler is not None:
        raise ParameterError("give either a worker count or a scheduler address, not both",
                             param="workers", fix="drop {workers} or {scheduler}")
    checked = check_options(workers=workers, threads=threads)
    workers, threads = checked["workers"], checked["threads"]
    if scheduler is not None:
        scheduler = check_scheduler_address(scheduler)
    if workers is None and scheduler is None:
        yield Executor(backend="threads", threads=threads or default_threads())
        return
    from distributed import Client, LocalCluster

    if workers is not None:
        # processes with one thread each: XGBoost's OpenMP threads are set to 1 per worker
        # by the nanny (OMP_NUM_THREADS), so N workers use N cores
        cluster = LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        try:
            client = Client(cluster, set_as_default=False)
            try:
                yield Executor(backend="local-cluster", client=client)
            finally:
                client.close()
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, set_as_default=False, timeout=SCHEDULER_TIMEOUT)
    except (OSError, TimeoutError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"cannot reach the Dask scheduler at {scheduler!r} within "
                         f"{SCHEDULER_TIMEOUT} ({first})", field="scheduler",
                         fix="start it (`dask scheduler`) or check the address") from None
    try:
        yield Executor(backend="cluster", client=client)
    finally:
        client.close()
