"""One runner: :func:`run_conditions` takes a network, a :class:`ConditionBatch` and readouts and
returns a labelled :class:`xarray.Dataset`; screens and sweeps call it.

The corridor, for every member: model initial state -> drug-free rest state (:class:`RestStates`,
its own status) -> dosing at t = 0 and the dose events, integrated on one engine (the batch
Rosenbrock integrator :func:`her2sim.solvers.batch.simulate_batch` or scipy's
:func:`her2sim.solvers.solve.integrate_conditions`) on the readouts' output grid -> readouts (one grammar
and quadrature, :mod:`.readouts`) -> steady states with the drugs on for ``steady:`` readouts. A
member that fails keeps its row with NaN values, a :class:`~her2sim.solvers.status.Status` and a message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..solvers.batch import breakpoints_from_conditions
from ..solvers.certify import CertifyOptions
from ..errors import InvalidArgument, UnknownNameError
from ..executors import check_scheduler, cores, map_tasks
from ..model.network import Network
from ..solvers.engines import ENGINES, SolverOptions, integrate
from ..validate import check_count, check_tolerances
from .condition import Condition, ConditionBatch, same_schedule
from .readouts import (DEFAULT_OUTPUT_STEP, TIMED_KINDS, Readout, ReadoutError, output_grid, parse_readout,
                       time_index, window_points, window_value)
from .reststate import RestStates
from ..solvers.status import Status

#: rest-state engine "auto": scipy's LSODA for up to this many distinct drug-free rows, else the batch engine
REST_SCIPY_MAX_ROWS = 16


@dataclass(frozen=True)
class RunOptions:
    """Solver settings of :func:`run_conditions` (see there)."""

    engine: str = "batch"
    rest_engine: str = "auto"
    steady_engine: str | None = None
    method: str | None = None
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int | None = None
    output_step: float = DEFAULT_OUTPUT_STEP
    certify: object = CertifyOptions()
    block: bool | None = None
    kernels: object = field(default=None, compare=False)  # a her2sim.solvers.ckernels.KernelCache owned by the run


def readout_unit(network: Network, r: Readout) -> str:
    """Unit of a readout's value: the observable's or species' unit (x h for auc)."""
    base = (network.observable_units[network.observable_names.index(r.name)]
            if r.name in network.observable_names else network.species_units[network.species_names.index(r.name)])
    return f"({base})*h" if r.kind == "auc" else base


def check_readouts(network: Network, readouts, end_time_h: float | None) -> tuple:
    """Parsed readouts, each time resolved and checked against ``network`` (names) and the run."""
    if isinstance(readouts, (str, Readout)):
        readouts = [readouts]
    out = tuple(parse_readout(r, end_time_h=end_time_h) for r in readouts)
    if not out:
        raise ReadoutError("readouts: give at least one, e.g. ['pAKT@24h']")
    known = tuple(network.observable_names) + tuple(network.species_names)
    for r in out:
        if r.name not in known:
            raise UnknownNameError("observable", r.name, known,
                                   fix="Readouts name an observable or species (`her2sim models --observables`).")
        if r.kind in TIMED_KINDS and r.time_h is None:
            raise ReadoutError(f"readout {r.label!r} needs a time: write {r.name}@24h or pass time=")
        if end_time_h is not None and r.kind in TIMED_KINDS and r.time_h > end_time_h + 1e-9:
            raise ReadoutError(f"readout {r.label!r}: {r.time_h:g} h is beyond the run ({end_time_h:g} h); pass "
                               f"time='{r.time_h:g} h' or read out earlier")
    labels = [r.label for r in out]
    if len(set(labels)) != len(labels):
        raise ReadoutError(f"readouts {labels} repeat a readout; give each once")
    return out


@dataclass(frozen=True, eq=False)
class ConditionRun:
    """The arrays of :func:`run_conditions` without labels (what :func:`run_condition_arrays`
    returns; no xarray, e.g. inside sweep workers). Shapes: (B, R) for value/initial/drift,
    (B,) for the rest; ``certificate_parts`` is a list of (certificate, member indices)."""

    readouts: tuple
    value: np.ndarray
    initial: np.ndarray
    drift: np.ndarray
    code: np.ndarray
    message: tuple
    rest_code: np.ndarray
    rest_message: tuple
    steps: int
    certificate_parts: list
    options: RunOptions

    def to_dataset(self, network: Network):
        """The labelled :class:`xarray.Dataset` described in :func:`run_conditions`."""
        return _dataset(network, self)


def run_conditions(network: Network, batch: ConditionBatch, readouts, *, engine: str = "batch", scheduler=None,
                   time: float | None = None, rtol: float = 1e-6, atol: float = 1e-9, method: str | None = None,
                   max_steps: int | None = None, output_step: float = DEFAULT_OUTPUT_STEP, rest_engine: str = "auto",
                   rest_states: RestStates | None = None, certify=CertifyOptions(), chunk: int | None = None,
                   kernels=None):
    """Run a batch of conditions and read them out.

    Parameters
    ----------
    network : a compiled :class:`~her2sim.model.network.Network`.
    batch : a :class:`ConditionBatch` (or a list of :class:`Condition`, pre-equilibrated).
    readouts : readout texts or :class:`Readout` s (:mod:`her2sim.experiments.readouts`).
    engine : "batch" (Rosenbrock, :func:`her2sim.solvers.batch.simulate_batch`) or "scipy"
        (:func:`her2sim.solvers.solve.integrate_conditions`: block-diagonal BDF for several members,
        LSODA for one).
    scheduler : None / "local" (this process), "processes", "dask://HOST:PORT" or a dask Client
        (:mod:`her2sim.executors`): the batch is split into ``chunk`` conditions per task.
    time : run length (h) for readouts without a time. rtol, atol (nM), method, max_steps : the
        engine's (defaults: rodas4 / 100000 steps on the batch engine; BDF or LSODA / 200000
        right-hand sides per segment on scipy). output_step : largest mean/auc quadrature spacing (h).
    rest_engine : engine of the drug-free rest states: "scipy", "batch" or "auto" (scipy for up
        to :data:`REST_SCIPY_MAX_ROWS` distinct rows, else the batch engine).
    rest_states : a :class:`RestStates` whose cache to use (e.g. shared across calls).
    certify : the batch engine's accuracy certificate (:func:`her2sim.solvers.batch.simulate_batch`).
    kernels : a :class:`~her2sim.solvers.ckernels.KernelCache` the caller owns: the batch engine builds
        the compiled C kernels into it once and every chunk (any scheduler: it pickles) reuses them;
        None: ``simulate_batch``'s ``fused="auto"`` per call.

    Returns
    -------
    xarray.Dataset with dims (condition, readout): ``value`` (NaN where it failed), ``initial``
    (the readout's target at dosing, for GR), ``drift`` (steady readouts: relative drift at the
    state found, 1/h); per condition ``code`` (:class:`~her2sim.solvers.status.Status`), ``status`` (its name),
    ``message``, and the pre-equilibration part's own ``rest_code`` / ``rest_message``. Attributes:
    engine settings, ``steps`` and the batch engine's ``certificate`` (``certificate_parts``: a list
    of (certificate, member indices) when the batch ran in several tasks).
    """
    return run_condition_arrays(network, batch, readouts, engine=engine, scheduler=scheduler, time=time, rtol=rtol,
                                atol=atol, method=method, max_steps=max_steps, output_step=output_step,
                                rest_engine=rest_engine, rest_states=rest_states, certify=certify,
                                chunk=chunk, kernels=kernels).to_dataset(network)


def run_condition_arrays(network: Network, batch: ConditionBatch, readouts, *, engine: str = "batch",
                         scheduler=None, time: float | None = None, rtol: float = 1e-6, atol: float = 1e-9,
                         method: str | None = None, max_steps: int | None = None,
                         output_step: float = DEFAULT_OUTPUT_STEP, rest_engine: str = "auto",
                         rest_states: RestStates | None = None, certify=CertifyOptions(),
                         chunk: int | None = None, kernels=None) -> ConditionRun:
    """:func:`run_conditions` as plain arrays (a :class:`ConditionRun`); same arguments."""
    if not isinstance(network, Network):
        raise InvalidArgument(f"network must be a compiled her2sim Network (her2sim.compile_network), got "
                              f"{type(network).__name__}")
    if not isinstance(batch, ConditionBatch):
        if isinstance(batch, (list, tuple)) and all(isinstance(c, Condition) for c in batch):
            batch = ConditionBatch(tuple(batch))
        else:
            raise InvalidArgument("batch must be a ConditionBatch or a list of Conditions "
                                  "(her2sim.solvers.solve.make_condition)")
    if engine not in ENGINES:
        raise InvalidArgument(f"engine must be one of {ENGINES}, got {engine!r}")
    if rest_engine not in ("auto", "scipy", "batch"):
        raise InvalidArgument(f"rest_engine must be 'auto', 'scipy' or 'batch', got {rest_engine!r}")
    rtol, atol = check_tolerances(rtol, atol)
    if max_steps is not None:
        max_steps = check_count(max_steps, "max_steps", fix="steps per member, e.g. 100000")
    if not (isinstance(output_step, (int, float)) and math.isfinite(output_step) and output_step > 0):
        raise InvalidArgument(f"output_step must be a number of hours > 0, got {output_step!r}")
    if time is not None and not (isinstance(time, (int, float)) and math.isfinite(time) and time > 0):
        raise InvalidArgument(f"time must be a number of hours > 0, got {time!r}")
    check_scheduler(scheduler)
    rds = check_readouts(network, readouts, time)
    opts = RunOptions(engine, rest_engine, None, method, rtol, atol, max_steps, float(output_step), certify,
                      kernels=kernels)
    solver_options(opts)  # the engine's settings are checked before any work
    rest_states = RestStates() if rest_states is None else rest_states
    if scheduler is None or scheduler == "local" or len(batch) <= 1:
        parts = [_run((network, rds, opts, rest_states), batch)]
        bounds = [(0, len(batch))]
    else:
        size = chunk or max(1, math.ceil(len(batch) / (2 * cores())))
        bounds = [(lo, min(lo + size, len(batch))) for lo in range(0, len(batch), size)]
        parts = map_tasks(_run, (network, rds, opts, rest_states), [(batch[lo:hi],) for lo, hi in bounds],
                          scheduler=scheduler)
    R = len(rds)

    def cat(key, shape):
        return np.concatenate([p[key] for p in parts]).reshape(shape)

    cert_parts = [(p["certificate"], p["certificate_members"] + lo) for p, (lo, _) in zip(parts, bounds)
                  if p["certificate"] is not None]
    return ConditionRun(rds, cat("value", (-1, R)), cat("initial", (-1, R)), cat("drift", (-1, R)),
                        cat("code", (-1,)).astype(np.int8), tuple(m for p in parts for m in p["message"]),
                        cat("rest_code", (-1,)).astype(np.int8), tuple(m for p in parts for m in p["rest_message"]),
                        int(sum(p["steps"] for p in parts)), cert_parts, opts)


def _dataset(network: Network, run: ConditionRun):
    import xarray as xr

    rds, opts = run.readouts, run.options
    dims = ("condition", "readout")
    data = {
        "value": (dims, run.value),
        "initial": (dims, run.initial, {"long_name": "the readout's target at dosing (t = 0)"}),
        "drift": (dims, run.drift, {"long_name": "steady readouts: relative drift at the state found", "units": "1/h"}),
        "code": ("condition", run.code, {"flag_values": [int(o) for o in Status],
                                         "flag_meanings": " ".join(o.label for o in Status)}),
        "status": ("condition", np.array([Status(int(c)).label for c in run.code], dtype=object).astype(str)),
        "message": ("condition", np.array(run.message, dtype=object).astype(str)),
        "rest_code": ("condition", run.rest_code),
        "rest_message": ("condition", np.array(run.rest_message, dtype=object).astype(str)),
    }
    coords = {"condition": np.arange(len(run.code)), "readout": [r.label for r in rds],
              "kind": ("readout", [r.kind for r in rds]), "target": ("readout", [r.name for r in rds]),
              "unit": ("readout", [readout_unit(network, r) for r in rds])}
    attrs = {"engine": opts.engine, "rtol": opts.rtol, "atol": opts.atol, "model": network.spec.name,
             "steps": run.steps, "certificate": run.certificate_parts[0][0] if len(run.certificate_parts) == 1 else None,
             "certificate_parts": run.certificate_parts}
    return xr.Dataset(data, coords=coords, attrs=attrs)


class _Series:
    """Values of readout targets from states (m, T, n) and parameters in force (m, T, n_params);
    observables are evaluated once per time index and only the targets' columns are kept (memory
    stays one chunk's states)."""

    def __init__(self, network: Network, states: np.ndarray, P_t: np.ndarray, targets):
        self.net, self.states, self.P_t = network, states, P_t
        self.columns = {t: network.observable_names.index(t) for t in targets if t in network.observable_names}
        self._obs: dict[tuple, np.ndarray] = {}

    def at(self, target: str, k: int) -> np.ndarray:
        if target not in self.columns:
            return self.states[:, k, self.net.species_names.index(target)]
        if (target, k) not in self._obs:
            obs = self.net.observables(self.states[:, k, :], self.P_t[:, k, :])
            self._obs.update({(t, k): obs[:, j].copy() for t, j in self.columns.items()})
        return self._obs[(target, k)]

    def window(self, target: str, ks: np.ndarray) -> np.ndarray:
        return np.stack([self.at(target, int(k)) for k in ks], axis=1)


def _run(shared, batch: ConditionBatch) -> dict:
    """Run one batch (module level: a scheduler task). Never raises for a failing member."""
    network, rds, opts, rest_states = shared
    B, R = len(batch), len(rds)
    value, initial, drift = np.full((B, R), np.nan), np.full((B, R), np.nan), np.full((B, R), np.nan)
    code, rest_code = np.zeros(B, dtype=np.int8), np.zeros(B, dtype=np.int8)
    message, rest_message = [""] * B, [""] * B
    out = {"value": value, "initial": initial, "drift": drift, "code": code, "rest_code": rest_code,
           "message": message, "rest_message": rest_message, "steps": 0, "certificate": None,
           "certificate_members": np.zeros(0, dtype=int)}
    if not B:
        return out
    conds = batch.conditions
    P_base = np.array([network.parameters_with(c.parameters) for c in conds])
    X0 = network.initial_state(P_base)
    P_rest = batch.rest_parameters(network)
    batch_kwargs = {"method": opts.method or "rodas4", "rtol": opts.rtol, "atol": opts.atol,
                    "max_steps": opts.max_steps or 100_000}
    with np.errstate(all="ignore"):
        if batch.preequilibrate:
            rows = len(np.unique(np.hstack([X0, P_rest]), axis=0))
            engine = opts.rest_engine if opts.rest_engine != "auto" else (
                "scipy" if opts.engine == "scipy" or rows <= REST_SCIPY_MAX_ROWS else "batch")
            rest = rest_states.solve(network, X0, P_rest, engine=engine, kernels=opts.kernels, **batch_kwargs)
            X0 = rest.states
            for k, why in rest.messages.items():
                rest_code[k] = code[k] = Status.PREEQUILIBRATION
                rest_message[k] = message[k] = f"pre-equilibration: {why}"
        alive = code == Status.OK
        targets = {r.name for r in rds}
        timed = [r for r in rds if r.kind in TIMED_KINDS]
        if timed and alive.any():
            run = np.nonzero(alive)[0]
            grid = output_grid(timed, opts.output_step)
            states, P_t = _integrate(network, batch[run], X0[run], P_base[run], grid, opts, code, message, run, out,
                                     batch_kwargs)
            series = _Series(network, states, P_t, targets)
            at_dosing = _Series(network, X0[run][:, None, :], P_t[:, :1, :], targets)
            for j, r in enumerate(rds):
                if r.kind in ("at", "gr"):
                    value[run, j] = series.at(r.name, time_index(grid, r.time_h))
                    # the state at dosing is X0 itself, not the integrator's interpolant at t = 0 (which
                    # may differ in the last bit); NaN where the member failed, as for the values
                    initial[run, j] = np.where(np.isnan(value[run, j]), np.nan, at_dosing.at(r.name, 0))
                elif r.kind in ("mean", "auc"):
                    ks = window_points(grid, r.start_h, r.time_h)
                    value[run, j] = window_value(r.kind, series.window(r.name, ks), grid[ks], r.start_h, r.time_h)
                    initial[run, j] = series.at(r.name, 0)
        if any(r.kind == "rest" for r in rds) and alive.any():
            rest_series = _Series(network, X0[:, None, :], P_rest[:, None, :], targets)
            for j, r in enumerate(rds):
                if r.kind == "rest":
                    value[alive, j] = rest_series.at(r.name, 0)[alive]
        steady = [j for j, r in enumerate(rds) if r.kind == "steady"]
        live = np.nonzero(code == Status.OK)[0]
        if steady and len(live):
            P0 = batch[live].parameters(network)
            for j in steady:  # one search per horizon (usually all None: one search)
                horizon = rds[j].time_h
                engine = opts.steady_engine or opts.engine
                found = rest_states.solve(network, X0[live], P0, engine=engine, max_time_h=horizon,
                                          kernels=opts.kernels, **batch_kwargs)
                ss = _Series(network, found.states[:, None, :], P0[:, None, :], targets)
                value[live, j] = np.where(found.ok, ss.at(rds[j].name, 0), np.nan)
                initial[live, j] = _Series(network, X0[live][:, None, :], P0[:, None, :], targets).at(rds[j].name, 0)
                drift[live, j] = found.drift
                for k, why in found.messages.items():
                    if code[live[k]] == Status.OK:
                        code[live[k]] = Status.NO_STEADY_STATE
                        message[live[k]] = f"steady state with the drugs on: {why}"
    bad = (code == Status.OK) & ~np.isfinite(value).all(axis=1)
    for i in np.nonzero(bad)[0]:
        names = [r.label for r, x in zip(rds, value[i]) if not np.isfinite(x)]
        code[i] = Status.READOUT_NOT_FINITE
        message[i] = (f"readout {', '.join(names)} is not finite although the integration succeeded "
                      "(an observable dividing by zero at these parameters?)")
    return out


def _integrate(network, sub: ConditionBatch, X0, P_base, grid, opts, code, message, run, out, batch_kwargs):
    """Integrate the members ``run`` from X0 on the chosen engine (:func:`her2sim.solvers.engines.integrate`);
    returns (states (m, T, n) with NaN rows for failures, parameters in force (m, T, n_params)) and
    records failures."""
    P, bps = breakpoints_from_conditions(network, list(sub.conditions))
    res = integrate(network, X0, P, grid, bps or None, solver_options(opts, sub.conditions))
    if opts.engine == "batch":
        out["steps"] += res.steps
        out["certificate"] = res.certificate
        out["certificate_members"] = run
    for k in np.nonzero(~res.ok)[0]:
        code[run[k]] = res.status[k]
        message[run[k]] = res.messages[k]
    return res.states, res.parameters


def solver_options(opts: RunOptions, conds=()) -> SolverOptions:
    """The engine's settings of a run of ``conds``. scipy: BDF for several members, LSODA for one;
    one block-diagonal system when they share a dose schedule (:func:`.condition.same_schedule`)."""
    if opts.engine != "scipy":
        return SolverOptions(opts.engine, opts.method, opts.rtol, opts.atol, opts.max_steps, None, opts.certify,
                             opts.kernels)
    several = opts.block if opts.block is not None else len(conds) > 1
    method = opts.method or ("BDF" if several else "LSODA")
    return SolverOptions("scipy", method, opts.rtol, opts.atol, opts.max_steps, bool(several and same_schedule(conds)),
                         opts.certify)
