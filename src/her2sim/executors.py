"""Where work runs: this process, a local process pool / dask LocalCluster, or an existing dask cluster.

One small interface shared by sweeps (:mod:`her2sim.sweep.sweep`) and virtual trials
(:mod:`her2sim.trial`): a task is ``fn(shared, *args)``, where ``shared`` (the compiled networks, a
prepared trial plan, ...) is shipped to every worker once and ``args`` are small. Schedulers:

- ``None`` or ``"local"``: one task after another in this process (the default; no extra memory);
- ``"processes"``: a dask ``LocalCluster`` with one single-threaded worker per core, or a
  ``concurrent.futures`` process pool when dask is not installed;
- ``"dask://HOST:PORT"`` / ``"tcp://..."``: an existing dask scheduler (e.g. started by
  dask-jobqueue on a SLURM cluster);
- a ``distributed.Client``.

:func:`map_tasks` runs a list of tasks and returns their results in task order; :func:`open_executor`
is the lower-level handle (submit / wait / close) that sweeps use for retries and streaming writes.
"""

from __future__ import annotations

import concurrent.futures as cf
import mmap
import multiprocessing as mp
import os
import sys
import time
from typing import Callable, Iterable, Sequence

import numpy as np

from .errors import SchedulerError, TaskError

SCHEDULER_HELP = ("None or 'local' (this process), 'processes' (a dask LocalCluster with one worker per core, or a "
                  "process pool without dask), 'dask://HOST:PORT' (an existing dask scheduler) or a distributed.Client")


#: seconds to wait for an existing dask scheduler before giving up (it answers in milliseconds when up)
CONNECT_TIMEOUT_S = 10


def check_scheduler(scheduler) -> None:
    """Raise :class:`SchedulerError` unless ``scheduler`` has an accepted form (nothing is started
    or contacted: call it before work whose results a bad scheduler would waste)."""
    if scheduler is None or scheduler in ("local", "processes"):
        return
    if isinstance(scheduler, str) and scheduler.startswith(("dask://", "tcp://", "tls://")):
        return
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "scatter"):
        return
    raise SchedulerError(f"scheduler must be {SCHEDULER_HELP}; got {scheduler!r}")


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LocalExecutor:
    """Tasks one after another in this process; futures are already resolved when returned."""

    slots = 1

    def __init__(self, fn: Callable, shared):
        self.fn, self.shared, self.label = fn, shared, "local"

    def submit(self, *args):
        future: cf.Future = cf.Future()
        try:
            future.set_result(self.fn(self.shared, *args))
        except Exception as exc:  # handed to the caller through the future, as the other executors do
            future.set_exception(exc)
        return future

    def wait(self, futures):
        return list(futures)

    def close(self, cancel: bool = False) -> None:
        pass


_WORKER_TASK: tuple | None = None   # (fn, shared) of a pool worker process, set once by its initializer


def limit_blas_threads() -> None:
    """One BLAS/OpenMP thread in this process (threadpoolctl, if installed; else the caller pins
    BLAS through OPENBLAS_NUM_THREADS etc.): worker processes must not each start a thread per core."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def shared_empty(shape) -> np.ndarray:
    """An uninitialised float64 array in anonymous shared memory: forked workers write into it and
    the parent sees the values (no copy back)."""
    size = 1
    for s in shape:
        size *= int(s)
    buf = mmap.mmap(-1, max(size * 8, 8))
    return np.frombuffer(buf, dtype=np.float64, count=size).reshape(shape)


_FORKED: tuple | None = None   # (fn, shared) of fork_map, inherited by its forked workers


def _fork_call(item):
    fn, shared = _FORKED
    return fn(shared, item)


def fork_map(fn: Callable, shared, items: Sequence, workers: int, *, pin_blas: bool = True):
    """``fn(shared, item)`` for each item in ``workers`` forked processes, yielded in completion
    order. ``shared`` (e.g. a batch job with its input arrays and compiled kernels) is inherited
    through fork, never pickled; items and results are pickled. Each worker pins BLAS to one
    thread once, at start, unless ``pin_blas`` is False (then a worker's dense LAPACK calls round
    exactly as the parent's would: the accuracy certificate must not depend on ``workers``).
    Linux/macOS only (the fork start method)."""
    global _FORKED
    if "fork" not in mp.get_all_start_methods():
        raise RuntimeError("workers > 1 needs the 'fork' start method (Linux or macOS); use workers=1")
    _FORKED = (fn, shared)
    try:
        with mp.get_context("fork").Pool(min(workers, len(items)),
                                         initializer=limit_blas_threads if pin_blas else None) as pool:
            yield from pool.imap_unordered(_fork_call, items)
    finally:
        _FORKED = None


def _init_pool_worker(fn: Callable, shared) -> None:
    global _WORKER_TASK
    _WORKER_TASK = (fn, shared)
    limit_blas_threads()


def _run_in_pool(*args):
    fn, shared = _WORKER_TASK
    return fn(shared, *args)


class PoolExecutor:
    """A ``concurrent.futures`` process pool (fork where available); ``shared`` goes to each worker once."""

    def __init__(self, fn: Callable, shared, workers: int):
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=mp.get_context(method),
                                           initializer=_init_pool_worker, initargs=(fn, shared))
        self.slots, self.label = 2 * workers, f"process pool ({workers} workers)"

    def submit(self, *args):
        return self.pool.submit(_run_in_pool, *args)

    def wait(self, futures):
        return list(cf.wait(futures, return_when=cf.FIRST_COMPLETED).done)

    def close(self, cancel: bool = False) -> None:
        self.pool.shutdown(wait=not cancel, cancel_futures=cancel)


_MALLOC_TUNED = False  # per worker process: set once by tune_malloc


def tune_malloc() -> None:
    """Undo the effect of ``MALLOC_TRIM_THRESHOLD_`` (set by dask's nannies in every worker) once per
    process: any such variable switches off glibc's adaptive mmap threshold, so every NumPy
    temporary above 128 kB is mmap'ed and unmapped again. Measured: one 2000-condition chunk of the
    default model took 5.1 s with the variable set and 3.1 s without or after this call."""
    global _MALLOC_TUNED
    if _MALLOC_TUNED or not any(k in os.environ for k in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")):
        return
    _MALLOC_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-3, 32 * 2**20)  # M_MMAP_THRESHOLD: glibc's own adaptive maximum
    libc.mallopt(-1, 64 * 2**20)  # M_TRIM_THRESHOLD


def _dask_call(fn: Callable, shared, *args):
    """Run a task on a dask worker (module level, so it pickles), tuning malloc first."""
    tune_malloc()
    return fn(shared, *args)


class DaskExecutor:
    """A dask.distributed client; ``shared`` is scattered to every worker once."""

    def __init__(self, fn: Callable, shared, client, cluster=None, own_client: bool = False):
        self.fn, self.client, self.cluster, self.own_client = fn, client, cluster, own_client
        self.shared = client.scatter(shared, broadcast=True, hash=False)
        workers = max(1, sum(client.nthreads().values()))
        self.slots = 2 * workers
        self.label = f"dask ({client.scheduler.address}, {workers} threads)"

    def submit(self, *args):
        return self.client.submit(_dask_call, self.fn, self.shared, *args, pure=False)

    def wait(self, futures):
        from distributed import wait

        return list(wait(futures, return_when="FIRST_COMPLETED").done)

    def close(self, cancel: bool = False) -> None:
        if self.own_client:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def open_executor(scheduler, fn: Callable, shared, *, who: str = "her2sim"):
    """An executor that runs ``fn(shared, *args)`` for each ``submit(*args)`` on ``scheduler``.

    ``fn`` must be a module-level function (picklable) for the process and dask schedulers.
    ``who`` names the caller in the message printed when dask is missing.
    """
    check_scheduler(scheduler)
    if scheduler is None or scheduler == "local":
        return LocalExecutor(fn, shared)
    if isinstance(scheduler, str) and scheduler == "processes":
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            print(f"{who}: dask is not installed: using a process pool of {cores()} workers "
                  "(pip install 'her2sim[dask]' for dask.distributed)", file=sys.stderr)
            return PoolExecutor(fn, shared, cores())
        cluster = LocalCluster(n_workers=cores(), threads_per_worker=1, processes=True, dashboard_address=None)
        return DaskExecutor(fn, shared, Client(cluster), cluster, own_client=True)
    if isinstance(scheduler, str) and scheduler.startswith(("dask://", "tcp://", "tls://")):
        try:
            from distributed import Client
        except ImportError:
            from .errors import OptionalDependencyError

            raise OptionalDependencyError("distributed", "dask", f"scheduler {scheduler!r}") from None
        address = "tcp://" + scheduler[len("dask://"):] if scheduler.startswith("dask://") else scheduler
        try:
            client = Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError) as exc:  # distributed raises OSError subclasses / TimeoutError
            raise SchedulerError(f"cannot reach the dask scheduler {scheduler!r} within {CONNECT_TIMEOUT_S} s "
                                 f"({type(exc).__name__}); check that it runs and the address, or use "
                                 "--scheduler local / processes. Nothing was written.") from None
        return DaskExecutor(fn, shared, client, own_client=True)
    return DaskExecutor(fn, shared, scheduler)


def map_tasks(fn: Callable, shared, tasks: Iterable[Sequence], *, scheduler=None, progress: "Progress | None" = None,
              weights: Sequence[int] | None = None) -> list:
    """``[fn(shared, *task) for task in tasks]`` on ``scheduler``, results in task order.

    At most ``2 x workers`` tasks are in flight, so results stream back as they finish. A task
    that raises stops the map (the others are cancelled) with a :class:`TaskError` naming its
    index and arguments. ``progress`` (a :class:`Progress`) is advanced by ``weights[k]`` (default
    1) when task k finishes.
    """
    tasks = [tuple(t) for t in tasks]
    weights = [1] * len(tasks) if weights is None else list(weights)
    results: list = [None] * len(tasks)
    executor = open_executor(scheduler, fn, shared)
    inflight: dict = {}
    pending = list(range(len(tasks) - 1, -1, -1))
    ok = False
    try:
        while pending or inflight:
            while pending and len(inflight) < executor.slots:
                k = pending.pop()
                inflight[executor.submit(*tasks[k])] = k
            for future in executor.wait(list(inflight)):
                k = inflight.pop(future)
                try:
                    results[k] = future.result()
                except Exception as exc:
                    shown = ", ".join(_short(a) for a in tasks[k])
                    raise TaskError(f"task {k} ({fn.__name__}({shown})) failed on {executor.label}: "
                                    f"{type(exc).__name__}: {exc}") from exc
                if progress is not None:
                    progress.update(weights[k])
        ok = True
    finally:
        for future in () if ok else inflight:
            future.cancel()
        executor.close(cancel=not ok)
        if progress is not None:
            progress.close()
    return results


def _short(value, width: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


class Progress:
    """One stderr line: items done, items/s, ETA and failures (redrawn in place on a terminal,
    every 10 s otherwise)."""

    def __init__(self, total: int, done: int = 0, enabled: bool = True, stream=None, *, what: str = "sweep",
                 unit: str = "conditions"):
        self.stream = stream or sys.stderr
        self.total, self.done, self.enabled, self.what, self.unit = total, done, enabled, what, unit
        self.start_done, self.failed = done, 0
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.clock = self.last = time.perf_counter()

    def update(self, n: int, failed: int = 0) -> None:
        self.done += n
        self.failed += failed
        now = time.perf_counter()
        if self.enabled and (now - self.last > (0.2 if self.tty else 10.0) or self.done == self.total):
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        rate = (self.done - self.start_done) / max(now - self.clock, 1e-9)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        text = (f"{self.what} {100 * self.done / max(self.total, 1):5.1f}% {self.done:,}/{self.total:,} {self.unit}  "
                f"{rate:,.0f} {self.unit}/s  ETA {duration(eta)}  failed {self.failed:,}")
        print(("\r" + text + "\x1b[K") if self.tty else text, end="" if self.tty else "\n", file=self.stream,
              flush=True)

    def close(self) -> None:
        if self.enabled and self.tty:
            print(file=self.stream, flush=True)
            self.enabled = False


def duration(seconds: float) -> str:
    """``3m07s``-style text for a number of seconds (``?`` if not finite)."""
    if not np.isfinite(seconds):
        return "?"
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"
