"""Sweeps at scale: ``run_sweep()`` runs a :class:`~her2sim.sweep.spec.SweepSpec` chunk by chunk on the
batch path and writes each chunk's readouts to disk as it finishes; ``open_sweep()`` reads them back
lazily as a labelled :class:`xarray.Dataset`.

Per chunk (``spec.chunk`` consecutive conditions, enumerated from their indices): every condition
is brought to its own drug-free rest state, then dosed at t = 0 and integrated with
:func:`her2sim.solvers.batch.simulate_batch`; only the readouts are kept. The rest state is found either by
scipy's :func:`~her2sim.solvers.solve.steady_state` once per variant set (when only variants and doses
vary: one rest state per network, cached) or, when parameters vary, on the batch path: the unique
drug-free parameter sets of the chunk are integrated together over 1e4 h (then 1e6 h for any
member still drifting) with the species marked ``preequilibrate = false`` held fixed. Measured on
the default model during development: 58 ms per parameter set with scipy, ~2 ms per member on the
batch path at B = 1000 (rtol 1e-6, 1e4 h), the two states agreeing to 2e-9.

Output directory::

    manifest.json            what the sweep is (spec, axes, readouts, digest) and its runs; atomic
    samples.npy              the sample block's parameter values (if any), one row per sample
    chunks/chunk_0000012.npz readouts (B, R), status (B,), messages of failed members; atomic

Every file is written to a temporary name, flushed, fsynced and renamed, so a crash leaves either
the whole file or none: ``resume=True`` re-runs exactly the chunks without a finished file, and
the results equal an uninterrupted run's bit for bit (each chunk is a pure function of the spec).
The files are written and read by :mod:`her2sim.sweep.store`; chunks run on the schedulers of
:mod:`her2sim.executors` (this process, a process pool / dask LocalCluster, or a dask cluster).
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from ..io.atomic import clean_stale
from ..errors import InvalidArgument
from ..executors import Progress, check_scheduler, duration, open_executor
from ..experiments import Condition, ConditionBatch
from ..experiments.runner import run_condition_arrays
from ..experiments.reststate import HORIZONS, TOLERANCE, RestStates
from ..model.network import compile_network
from ..solvers.batch import run_kernels
from ..solvers.ckernels import KernelCache
from .load import load_sweep_spec
from .spec import SweepSpec
from .store import (CHUNK_FAILED, MANIFEST, NO_STEADY_STATE, NOT_RUN, OK, PREEQUILIBRATION,  # noqa: F401
                          READOUT_NOT_FINITE, SAMPLES, STATUS_CODES, DamagedManifestError, SweepDirectoryError,
                          accuracy_summary, chunk_path, finished_chunks, load_chunk, merge_certificates, new_manifest,
                          open_sweep, read_manifest, verify_chunks, write_chunk, write_manifest, write_samples)
from ..validate import MAX_CHUNK, check_count, check_writable_folder

#: horizons (h) of the batch-path equilibration; a member still drifting after the last one fails
EQUILIBRATION_HORIZONS = HORIZONS
#: steady state: max |dx/dt| / (|x| + 1e-7 nM) below this (1/h), as in :func:`her2sim.solvers.solve.steady_state`
EQUILIBRATION_TOL = TOLERANCE
#: a test hook: "CHUNK:N,..." makes chunk CHUNK raise on its first N attempts
FAULTS_ENV = "HER2SIM_SWEEP_FAULTS"


# ----------------------------------------------------------------------------- chunk computation
@dataclass(frozen=True, eq=False)
class _Context:
    """What every worker needs, shipped once: the spec, one compiled network per variant set,
    the rest-state service (each worker keeps its own cache) and the run's compiled C kernels
    (a :class:`~her2sim.solvers.ckernels.KernelCache` built once by :func:`run_sweep`, or None)."""

    spec: SweepSpec
    networks: tuple
    rest_states: RestStates = field(default_factory=RestStates)
    kernels: KernelCache | None = None


@dataclass(eq=False)
class ChunkOutput:
    """The readouts of one chunk: values (B, R), status codes (B,), {member: message}."""

    chunk: int
    lo: int
    hi: int
    values: np.ndarray
    status: np.ndarray
    messages: dict
    wall_time_s: float = 0.0
    steps: int = 0
    failed: bool = False
    attempts: int = 1
    certificate: dict | None = None


def _inject_fault(chunk: int, attempt: int) -> None:
    for item in filter(None, os.environ.get(FAULTS_ENV, "").split(",")):
        c, _, n = item.partition(":")
        if int(c) == chunk and attempt < int(n or 1):
            raise RuntimeError(f"injected fault in chunk {chunk} (attempt {attempt + 1}; {FAULTS_ENV})")


def _compute_chunk(ctx: _Context, chunk: int, attempt: int = 0) -> ChunkOutput:
    """Run one chunk: rest states, simulation, readouts. Never raises for a bad condition."""
    _inject_fault(chunk, attempt)
    clock = time.perf_counter()
    spec = ctx.spec
    lo, hi = spec.chunk_bounds(chunk)
    block = spec.block(lo, hi)
    values = np.full((hi - lo, len(spec.readouts)), np.nan)
    status = np.zeros(hi - lo, dtype=np.int8)
    messages: dict[int, str] = {}
    steps = 0
    certificates: list = []
    with np.errstate(all="ignore"):
        for v in np.unique(block.variant):
            sel = np.nonzero(block.variant == v)[0]
            steps += _run_members(ctx, int(v), block, sel, values, status, messages, certificates)
    return ChunkOutput(chunk, lo, hi, values, status, messages, time.perf_counter() - clock, steps,
                       attempts=attempt + 1, certificate=merge_certificates(certificates, lo))


def _run_members(ctx: _Context, v: int, block, sel: np.ndarray, values, status, messages, certificates: list) -> int:
    """Members ``sel`` of the chunk's block (variant set ``v``) through
    :func:`her2sim.experiments.runner.run_condition_arrays` (no xarray in workers); fills
    values/status/messages in place."""
    spec, net = ctx.spec, ctx.networks[v]
    dose_names = list(block.doses)
    param_names = list(block.parameters)
    scale = {name: (net.p0[net.parameter_index(name)] if name in spec.relative else 1.0) for name in param_names}
    conds = tuple(Condition({d: float(block.doses[d][i]) for d in dose_names},
                            {n: float(block.parameters[n][i] * scale[n]) for n in param_names}) for i in sel)
    solver = spec.solver
    run = run_condition_arrays(net, ConditionBatch(conds, preequilibrate=solver.preequilibrate), spec.readouts,
                               engine="batch", method=solver.method, rtol=solver.rtol, atol=solver.atol,
                               max_steps=solver.max_steps, output_step=solver.output_step,
                               rest_engine="batch" if spec.varies_rest_state else "scipy", rest_states=ctx.rest_states,
                               kernels=ctx.kernels)
    values[sel] = run.value
    status[sel] = run.code
    for k in np.nonzero(run.code != OK)[0]:
        messages[int(sel[k])] = run.message[k]
    certificates.extend((cert, sel[members]) for cert, members in run.certificate_parts)
    return run.steps


def _failed_chunk(spec: SweepSpec, chunk: int, exc: BaseException, attempts: int) -> ChunkOutput:
    lo, hi = spec.chunk_bounds(chunk)
    text = f"chunk {chunk} raised {type(exc).__name__}: {exc} (after {attempts} attempts)"
    return ChunkOutput(chunk, lo, hi, np.full((hi - lo, len(spec.readouts)), np.nan),
                       np.full(hi - lo, CHUNK_FAILED, dtype=np.int8), dict.fromkeys(range(hi - lo), text),
                       failed=True, attempts=attempts)


# ----------------------------------------------------------------------------- the driver
@dataclass(frozen=True)
class ChunkInfo:
    """Passed to ``run_sweep(callback=...)`` after each chunk is on disk."""

    chunk: int
    lo: int
    hi: int
    failed: bool
    attempts: int
    n_failed: int
    wall_time_s: float
    chunks_done: int
    n_chunks: int


@dataclass(frozen=True)
class SweepResult:
    """What a run did. The readouts themselves are on disk: ``open()`` (or :func:`open_sweep`)."""

    out_dir: Path
    name: str
    n_conditions: int
    n_chunks: int
    chunks_run: int
    chunks_skipped: int
    chunks_failed: tuple
    chunks_retried: tuple
    failures: Mapping[str, int]
    examples: tuple
    conditions_run: int
    wall_time_s: float
    scheduler: str
    complete: bool = True

    @property
    def n_failed(self) -> int:
        """Conditions whose status is not ok (this run and resumed ones)."""
        return int(sum(self.failures.values()))

    @property
    def conditions_per_s(self) -> float:
        return self.conditions_run / self.wall_time_s if self.wall_time_s > 0 else float("nan")

    def open(self):
        """The readouts as a lazily loaded :class:`xarray.Dataset` (see :func:`open_sweep`)."""
        return open_sweep(self.out_dir)

    def summary(self) -> str:
        lines = [f"sweep {self.name!r}: {self.n_conditions:,} conditions in {self.n_chunks:,} chunks -> {self.out_dir}",
                 f"  ran {self.chunks_run:,} chunks ({self.conditions_run:,} conditions) in "
                 f"{duration(self.wall_time_s)} on {self.scheduler}: {self.conditions_per_s:,.0f} conditions/s"
                 + (f"; {self.chunks_skipped:,} chunks already done (resumed)" if self.chunks_skipped else "")]
        if self.n_failed:
            parts = ", ".join(f"{k} {v:,}" for k, v in sorted(self.failures.items(), key=lambda kv: -kv[1]))
            lines.append(f"  failed conditions: {self.n_failed:,} ({parts}); status and message per condition "
                         "are in the dataset")
            lines += [f"    e.g. {m}" for m in self.examples]
        else:
            lines.append("  failed conditions: 0")
        if self.chunks_retried:
            ok = len(set(self.chunks_retried) - set(self.chunks_failed))
            lines.append(f"  chunks retried after an exception: {len(self.chunks_retried)} ({ok} succeeded on retry)")
        if self.chunks_failed:
            shown = ", ".join(map(str, self.chunks_failed[:10])) + (" ..." if len(self.chunks_failed) > 10 else "")
            lines.append(f"  failed chunks (retried once, all their conditions flagged): {shown}; --resume retries them")
        lines.append(f"  open with her2sim.sweep.sweep.open_sweep({str(self.out_dir)!r})")
        return "\n".join(lines)


def run_sweep(spec: str | Path | Mapping | SweepSpec, out_dir: str | Path, *, resume: bool = False, scheduler=None,
              chunk: int | None = None, progress: bool | None = None,
              callback: Callable[[ChunkInfo], None] | None = None) -> SweepResult:
    """Run a sweep, writing each chunk's readouts to ``out_dir`` as it finishes.

    Parameters
    ----------
    spec : path to a sweep TOML file, a dict of the same structure, or a SweepSpec.
    out_dir : output directory (created; must be new or empty unless ``resume``).
    resume : continue a sweep in ``out_dir``: chunks with a finished file are skipped, missing or
        failed ones run. The spec (and the model files) must be unchanged.
    scheduler : None or "local" (in this process), "processes" (a dask LocalCluster with one
        single-threaded worker per core; a process pool if dask is missing), "dask://HOST:PORT"
        (an existing dask scheduler, e.g. from dask-jobqueue), or a ``distributed.Client``.
    chunk : conditions per chunk (default: the spec's, or the existing sweep's when resuming).
    progress : progress line on stderr; None: only when stderr is a terminal.
    callback : called with a :class:`ChunkInfo` after each chunk is written (may raise, e.g.
        KeyboardInterrupt, to stop the sweep; finished chunks stay on disk).

    Returns
    -------
    SweepResult (counts, failures by status, timings); ``.open()`` gives the Dataset.

    A condition that fails is recorded with a status code and message, never dropped; a chunk
    that raises is retried once, then recorded as failed (every condition flagged with the
    exception) and the sweep goes on. KeyboardInterrupt stops the run after writing the manifest.
    """
    check_scheduler(scheduler)
    if chunk is not None:
        check_count(chunk, "chunk", limit=MAX_CHUNK, fix="conditions per chunk, e.g. 2000",
                    split="every condition of a chunk is held in memory at once; use e.g. 2000")
    if isinstance(out_dir, bool) or not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise InvalidArgument(f"out_dir must be a directory path, got {out_dir!r}")
    out = Path(out_dir)
    _check_out_dir(out)
    damaged_manifest = None
    try:
        old = read_manifest(out) if (out / MANIFEST).exists() else None
    except DamagedManifestError as exc:
        if not resume:
            raise
        old, damaged_manifest = None, str(exc)
    if old is None and damaged_manifest is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise SweepDirectoryError(f"{out} exists and is not an empty directory or a sweep; choose a new --out")
    if old is not None and not resume:
        done = len(finished_chunks(out))
        raise SweepDirectoryError(f"{out} already holds sweep {old.get('name')!r} ({done} of {old['n_chunks']} chunks "
                                  "done); pass resume=True (--resume) to continue it, or choose another output "
                                  "directory")
    if chunk is None and old is not None:
        chunk = int(old["chunk"])
    spec = load_sweep_spec(spec, chunk=chunk)
    if old is not None and old["spec_digest"] != spec.digest:
        hint = (f" It was started with chunk = {old['chunk']}; resume with the same --chunk."
                if old["chunk"] != spec.chunk else "")
        raise SweepDirectoryError(f"{out} holds a different sweep (the spec or the model files changed since it "
                                  f"started).{hint} Use a new output directory to run the changed spec.")
    networks = _networks(spec)
    ctx = _Context(spec, networks, kernels=run_kernels(networks, spec.n_conditions, spec.solver.rtol))  # built once, for every chunk
    executor = open_executor(scheduler, _compute_chunk, ctx, who="her2sim sweep")  # fails fast, before any write
    try:
        done_status, damaged = verify_chunks(out, spec, finished_chunks(out)) if resume else ({}, {})
        for c, why in damaged.items():
            print(f"her2sim sweep: {chunk_path(out, c).relative_to(out)} is damaged ({why}); it was renamed to "
                  "*.damaged and runs again", file=sys.stderr)
        (out / "chunks").mkdir(parents=True, exist_ok=True)
        for folder in (out, out / "chunks"):
            clean_stale(folder)
        manifest = old if old is not None else new_manifest(spec, networks[0])
        if damaged_manifest is not None:
            print(f"her2sim sweep: {out / MANIFEST} was damaged; rebuilt it from the spec, keeping "
                  f"{len(done_status)} verified chunk file(s) (the earlier runs' history is lost)", file=sys.stderr)
        manifest["state"] = "running"
        write_manifest(out, manifest)
        write_samples(out, spec)
    except BaseException:
        executor.close(cancel=True)
        raise

    done = set(done_status)
    todo = [c for c in range(spec.n_chunks) if c not in done]
    show = sys.stderr.isatty() if progress is None else bool(progress)
    already = sum(spec.chunk_bounds(c)[1] - spec.chunk_bounds(c)[0] for c in done)
    bar = Progress(spec.n_conditions, already, show)
    failures: dict[str, int] = {}
    examples: list[str] = []
    chunks_failed: list[int] = []
    chunks_retried: list[int] = []
    run_conditions = 0
    clock = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    state = "interrupted"
    inflight: dict = {}
    try:
        pending = list(reversed(todo))
        while pending or inflight:
            while pending and len(inflight) < executor.slots:
                c = pending.pop()
                inflight[executor.submit(c, 0)] = (c, 0)
            for future in executor.wait(list(inflight)):
                c, attempt = inflight.pop(future)
                try:
                    result = future.result()
                except Exception as exc:
                    if attempt == 0:
                        chunks_retried.append(c)
                        inflight[executor.submit(c, 1)] = (c, 1)
                        continue
                    result = _failed_chunk(spec, c, exc, attempt + 1)
                    chunks_failed.append(c)
                write_chunk(out, result, spec.digest)
                n_bad = _tally(result.status, result.messages, failures, examples)
                run_conditions += result.hi - result.lo
                done.add(c)
                bar.update(result.hi - result.lo, n_bad)
                info = ChunkInfo(c, result.lo, result.hi, result.failed, result.attempts, n_bad, result.wall_time_s,
                                 len(done), spec.n_chunks)
                del result, future
                if callback is not None:
                    callback(info)
        state = "complete" if not chunks_failed else "incomplete"
    finally:
        bar.close()
        for future in inflight if state == "interrupted" else ():
            future.cancel()
        executor.close(cancel=state == "interrupted")
        wall = time.perf_counter() - clock
        for c in sorted(done_status):
            _tally(done_status[c], None, failures, examples)
        manifest["state"] = state
        manifest["runs"].append({"started": started, "wall_time_s": wall, "scheduler": executor.label,
                                 "chunks_run": len(todo) if state != "interrupted" else None,
                                 "conditions_run": run_conditions, "chunks_failed": chunks_failed, "state": state,
                                 "chunks_damaged": sorted(damaged), "manifest_rebuilt": damaged_manifest is not None})
        manifest["summary"] = {"failures": failures, "chunks_failed": chunks_failed, "chunks_retried": chunks_retried,
                               "accuracy": accuracy_summary(out, sorted(finished_chunks(out)))}
        write_manifest(out, manifest)
    return SweepResult(out, spec.name, spec.n_conditions, spec.n_chunks, len(todo), spec.n_chunks - len(todo),
                       tuple(chunks_failed), tuple(chunks_retried), failures, tuple(examples), run_conditions, wall, executor.label,
                       state == "complete")


def _check_out_dir(out: Path) -> None:
    """The output directory, or the nearest folder above it that exists, must be a writable folder."""
    if out.exists() and not out.is_dir():
        raise SweepDirectoryError(f"{out} exists and is not a directory; choose a new --out")
    existing = out
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    check_writable_folder(existing, "--out", what=str(out))


def _tally(status: np.ndarray, messages, failures: dict, examples: list) -> int:
    codes, counts = np.unique(status[status != OK], return_counts=True)
    for code, count in zip(codes, counts):
        name = STATUS_CODES[int(code)]
        failures[name] = failures.get(name, 0) + int(count)
    for i in sorted(messages or ()):
        if len(examples) >= 3:
            break
        if messages[i] not in examples:
            examples.append(messages[i])
    return int(counts.sum())


def _networks(spec: SweepSpec) -> tuple:
    from ..model.load import load_model

    drugs = [d for d, _ in spec.drugs]
    return tuple(compile_network(load_model(spec.model, variants=s, drugs=drugs)) for s in spec.variant_sets)


# ----------------------------------------------------------------------------- analysis
def sobol_indices(values, parameters: Sequence[str] | int, *, dim: str = "sample", n_boot: int = 200,
                  seed: int = 0):
    """First-order and total Sobol' indices from a Saltelli design (``[samples] method = "saltelli"``).

    Estimators: first order ``S_i = mean(f(B) (f(AB_i) - f(A))) / V`` (Saltelli et al. 2010,
    Comput. Phys. Commun. 181:259, Table 2 b) and total ``ST_i = mean((f(A) - f(AB_i))^2) / (2V)``
    (Jansen 1999), V the variance of f over A and B; 95 % intervals from ``n_boot`` bootstrap
    resamples of the base points. Base points with a failed (NaN) member are left out.

    Parameters
    ----------
    values : readout along the sample axis, in design order (rows A, B, AB_1 .. AB_d per base
        point): an xarray DataArray with dimension ``dim`` or an array with it last.
    parameters : the sampled parameter names in spec order (``ds.attrs["sample_parameters"]``),
        or their number d.

    Returns
    -------
    xarray Dataset (for a DataArray) or dict of arrays with S1, ST, S1_conf, ST_conf on a last
    ``parameter`` axis, and ``n_used`` (base points used).
    """
    names = [f"x{i}" for i in range(parameters)] if isinstance(parameters, int) else list(parameters)
    d = len(names)
    labelled = hasattr(values, "dims")
    Y = np.asarray(values.transpose(..., dim).values if labelled else values, dtype=float)
    if Y.shape[-1] % (d + 2):
        raise InvalidArgument(f"values: the {dim} axis has {Y.shape[-1]} entries, not a multiple of d + 2 = {d + 2} "
                         "(is this a Saltelli design with these parameters?)")
    Y = Y.reshape(Y.shape[:-1] + (-1, d + 2))
    Y = np.where(np.isfinite(Y).all(axis=-1, keepdims=True), Y, np.nan)
    n = Y.shape[-2]

    def estimate(Z):
        A, B, AB = Z[..., 0], Z[..., 1], Z[..., 2:]
        var = np.nanvar(np.concatenate([A, B], axis=-1), axis=-1)[..., None]
        with np.errstate(invalid="ignore", divide="ignore"):
            s1 = np.nanmean(B[..., None] * (AB - A[..., None]), axis=-2) / var
            st = 0.5 * np.nanmean((A[..., None] - AB) ** 2, axis=-2) / var
        return s1, st

    s1, st = estimate(Y)
    rng = np.random.default_rng(seed)
    boots = [estimate(Y[..., rng.integers(0, n, n), :]) for _ in range(n_boot)]
    s1_conf = 1.96 * np.nanstd([b[0] for b in boots], axis=0)
    st_conf = 1.96 * np.nanstd([b[1] for b in boots], axis=0)
    used = np.isfinite(Y[..., 0]).sum(axis=-1)
    out = {"S1": s1, "ST": st, "S1_conf": s1_conf, "ST_conf": st_conf, "n_used": used}
    if not labelled:
        return out
    import xarray as xr

    other = tuple(x for x in values.dims if x != dim)
    coords = {k: v for k, v in values.coords.items() if set(v.dims) <= set(other)}
    return xr.Dataset({k: (other + ("parameter",), v) for k, v in out.items() if k != "n_used"}
                      | {"n_used": (other, used)}, coords={**coords, "parameter": names})
