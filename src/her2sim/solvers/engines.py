"""Both integrators behind one signature: ``integrate(network, X0, P, t_eval, breakpoints, options)``.

- ``"batch"``: the NumPy batch Rosenbrock integrator (:func:`her2sim.solvers.batch.simulate_batch`);
- ``"scipy"``: :func:`scipy.integrate.solve_ivp` (:func:`her2sim.solvers.scipy_engine.integrate_conditions`),
  block-diagonal BDF for several members, LSODA for one.

Inputs are internal units: states X0 (B, n_species) nM at t = 0, parameters P (B, n_params) in force
at t = 0, output times ``t_eval`` (T,) h from 0, and ``breakpoints`` ``[(t, {parameter: value}), ...]``
(per-member times (B,) with ``inf`` where a member has no change, per-member values (B,) with NaN
where a member keeps its value), as built by :func:`her2sim.solvers.batch.breakpoints_from_conditions`.
Both return an :class:`EngineRun`; a member that fails keeps its row (NaN) with a
:class:`~her2sim.solvers.status.Status` and a message. :func:`her2sim.simulate` (``engine=``) and
:func:`her2sim.experiments.run_conditions` sit above this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .batch import TABLEAUS, simulate_batch
from .certify import CertifyOptions
from .ckernels import KernelCache
from ..errors import InvalidArgument
from ..experiments.condition import Condition
from ..model.network import Network
from .scipy_engine import DEFAULT_MAX_STEPS, METHODS, integrate_conditions
from .status import Status, StatusMessage
from ..validate import check_choice, check_count, check_tolerances

__all__ = ["ENGINES", "EngineRun", "SolverOptions", "integrate", "parameters_over_time"]

ENGINES = ("batch", "scipy")
#: default cap of each engine: steps per member (batch), right-hand sides per segment (scipy)
DEFAULT_STEPS = {"batch": 100_000, "scipy": DEFAULT_MAX_STEPS}


@dataclass(frozen=True)
class SolverOptions:
    """Settings of one integration.

    engine : "batch" or "scipy".  method : batch: a tableau of :data:`her2sim.solvers.batch.TABLEAUS` or
    "auto" (default "rodas4"); scipy: "LSODA", "BDF" or "Radau" (default BDF in block mode, else LSODA).
    rtol, atol : tolerances (atol in nM).  max_steps : batch: steps per member; scipy: right-hand
    sides per segment (None: :data:`DEFAULT_STEPS`).  block : scipy only: one block-diagonal solve
    (None: when there are several members).  certify : batch only: the accuracy certificate
    (:func:`her2sim.solvers.batch.simulate_batch`).  kernels : batch only: a
    :class:`~her2sim.solvers.ckernels.KernelCache` owned by the run (the compiled C kernels, built once
    for all its calls), or None (``simulate_batch``'s ``fused="auto"``: C from a large batch on).
    """

    engine: str = "batch"
    method: str | None = None
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int | None = None
    block: bool | None = None
    certify: object = field(default=CertifyOptions(), compare=False)
    kernels: KernelCache | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        engine = check_choice(self.engine, "engine", ENGINES)
        methods = ("auto", *TABLEAUS) if engine == "batch" else METHODS
        if self.method is not None:
            object.__setattr__(self, "method", check_choice(self.method, "method", methods))
        rtol, atol = check_tolerances(self.rtol, self.atol)
        object.__setattr__(self, "rtol", rtol)
        object.__setattr__(self, "atol", atol)
        if self.max_steps is not None:
            object.__setattr__(self, "max_steps", check_count(self.max_steps, "max_steps",
                                                              fix="e.g. 100000"))
        if self.kernels is not None and not isinstance(self.kernels, KernelCache):
            raise InvalidArgument(f"kernels must be a her2sim.solvers.ckernels.KernelCache or None, got "
                                  f"{type(self.kernels).__name__}")
        if self.block is not None and not isinstance(self.block, (bool, np.bool_)):
            raise InvalidArgument(f"block must be True, False or None, got {self.block!r}")


@dataclass(frozen=True, eq=False)
class EngineRun:
    """What an engine returns.

    states : (B, T, n_species) nM, NaN rows for failed members.  parameters : (B, T, n_params) in
    force at each output time.  status : (B,) int8 :class:`~her2sim.solvers.status.Status` codes.
    messages : (B,) why a member failed ('' otherwise).  steps : total steps (batch engine; 0 on
    scipy).  certificate : the batch engine's accuracy certificate (None on scipy).
    """

    states: np.ndarray
    parameters: np.ndarray
    status: np.ndarray
    messages: tuple
    steps: int = 0
    certificate: dict | None = None
    attrs: dict = field(default_factory=dict)  # scipy: {"block": whether block mode ran}

    @property
    def ok(self) -> np.ndarray:
        """(B,) True for members that reached the end."""
        return self.status == Status.OK

    def status_messages(self) -> tuple:
        """Per-member :class:`~her2sim.solvers.status.StatusMessage` pairs."""
        return tuple(StatusMessage(Status(int(c)), m) for c, m in zip(self.status, self.messages))


def _schedule(network: Network, breakpoints, B: int):
    """(times (B, K) ascending per member, inf = none; parameter indices (J,); values (B, K, J), NaN = unchanged)."""
    items = list(breakpoints or ())
    index: dict[int, int] = {}
    for _, change in items:
        for name in change:
            j = network.parameter_index(name) if isinstance(name, str) else int(name)
            index.setdefault(j, len(index))
    K = len(items)
    times, values = np.full((B, K), np.inf), np.full((B, K, len(index)), np.nan)
    for k, (t, change) in enumerate(items):
        tt = np.broadcast_to(np.asarray(t, dtype=float), (B,))
        times[:, k] = np.where(np.isnan(tt), np.inf, tt)
        for name, v in change.items():
            j = network.parameter_index(name) if isinstance(name, str) else int(name)
            values[:, k, index[j]] = np.broadcast_to(np.asarray(v, dtype=float), (B,))
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    values = np.take_along_axis(values, order[:, :, None], axis=1)
    return times, np.array(list(index), dtype=np.intp), values


def parameters_over_time(network: Network, P: np.ndarray, breakpoints, t_eval) -> np.ndarray:
    """(B, T, n_params): ``P`` (B, n_params) with every breakpoint at or before each output time applied
    (a read-only view of P when there are no breakpoints)."""
    P = np.asarray(P, dtype=float)
    grid = np.asarray(t_eval, dtype=float)
    if not breakpoints:
        return np.broadcast_to(P[:, None, :], (len(P), len(grid), P.shape[1]))
    out = np.repeat(P[:, None, :], len(grid), axis=1)
    times, index, values = _schedule(network, breakpoints, len(P))
    for k in range(times.shape[1]):
        reached = times[:, k, None] <= grid[None, :]  # (B, T)
        for c, j in enumerate(index):
            v = values[:, k, c]
            out[:, :, j] = np.where(reached & ~np.isnan(v)[:, None], v[:, None], out[:, :, j])
    return out


def _conditions(network: Network, breakpoints, B: int) -> list[Condition]:
    """The breakpoints as per-member scipy-path Conditions (parameter changes as events, no doses)."""
    times, index, values = _schedule(network, breakpoints, B)
    names = [network.parameter_names[j] for j in index]
    conds = []
    for i in range(B):
        events = tuple((float(times[i, k]), {n: float(v) for n, v in zip(names, values[i, k]) if not np.isnan(v)})
                       for k in range(times.shape[1]) if np.isfinite(times[i, k]))
        conds.append(Condition({}, {}, tuple(e for e in events if e[1])))
    return conds


def integrate(network: Network, X0: np.ndarray, P: np.ndarray, t_eval, breakpoints=None,
              options: SolverOptions = SolverOptions()) -> EngineRun:
    """Integrate B members from X0 (B, n) with parameters P (B, n_params) over ``t_eval`` (T,) h on
    ``options.engine``; see the module docstring for the arguments."""
    if not isinstance(options, SolverOptions):
        raise InvalidArgument(f"options must be a her2sim.solvers.engines.SolverOptions, got {type(options).__name__}")
    X0, P = np.atleast_2d(np.asarray(X0, dtype=float)), np.atleast_2d(np.asarray(P, dtype=float))
    grid = np.asarray(t_eval, dtype=float)
    if X0.shape != (len(P), network.n_species) or P.shape[1] != network.n_params:
        raise InvalidArgument(f"X0 must be (B, {network.n_species}) and P (B, {network.n_params}); got {X0.shape} "
                              f"and {P.shape}")
    if grid.ndim != 1 or not len(grid) or grid[0] < 0 or np.any(np.diff(grid) <= 0):
        raise InvalidArgument("t_eval must be increasing times >= 0 (h)")
    if options.engine == "batch":
        return _integrate_batch(network, X0, P, grid, breakpoints, options)
    return _integrate_scipy(network, X0, P, grid, breakpoints, options)


def _integrate_batch(network, X0, P, grid, breakpoints, options: SolverOptions) -> EngineRun:
    res = simulate_batch(network, X0, P, t_eval=grid, t_span=(0.0, float(grid[-1])), breakpoints=breakpoints or None,
                         method=options.method or "rodas4", rtol=options.rtol, atol=options.atol,
                         max_steps=options.max_steps or DEFAULT_STEPS["batch"], certify=options.certify,
                         fused="auto" if options.kernels is None else options.kernels)
    states = res.states  # the result's own array: written in place (one chunk in memory)
    if network.time_index is not None:  # model time is the output time, not its integrated copy
        states[:, :, network.time_index] = grid
    states[~res.ok] = np.nan  # a failed member keeps no values
    messages = tuple("" if c == Status.OK else f"{Status(int(c)).label}: {m}"
                     for c, m in zip(res.status_code, res.messages))
    P_t = res.parameter_trajectory if res.parameter_trajectory is not None else \
        parameters_over_time(network, P, breakpoints, grid)
    return EngineRun(states, P_t, res.status_code.astype(np.int8), messages, int(res.steps.sum()),
                     res.attrs.get("certificate"))


def _integrate_scipy(network, X0, P, grid, breakpoints, options: SolverOptions) -> EngineRun:
    B = len(P)
    conds = _conditions(network, breakpoints, B)
    block = options.block if options.block is not None else B > 1
    method = options.method or ("BDF" if block else "LSODA")
    status = [StatusMessage(Status.OK) for _ in range(B)]
    states, P_t, ran_block = integrate_conditions(network, X0, P, conds, grid, method=method, block=block, rtol=options.rtol,
                                          atol=options.atol, max_steps=options.max_steps or DEFAULT_STEPS["scipy"],
                                          status=status)
    for k, s in enumerate(status):
        if not s.is_successful:
            states[k] = np.nan
    return EngineRun(states, P_t, np.array([int(s.status) for s in status], dtype=np.int8),
                     tuple(s.message for s in status), attrs={"block": bool(ran_block)})
