"""The batch path: ``simulate_batch()``, a pure-NumPy Rosenbrock integrator for many conditions at once.

Every member of the batch (one condition: initial state and parameter vector) is integrated with
its own adaptive step size; all active members advance together, one vectorised NumPy operation
per stage over the whole active set, and members leave the active set when they finish or fail.
The linear algebra uses :mod:`her2sim.solvers.sparse_lu`: one symbolic LU per network, then one numeric
LU of ``I/(h*gamma) - J`` per step shared by all stages.

Methods (tableaus are data in :mod:`her2sim.solvers.tableaus`, :data:`TABLEAUS`; ``method="auto"`` picks one by rtol, :func:`auto_method`):

- ``"rodas4"``: Hairer & Wanner's RODAS, order 4 with an embedded order-3 error estimate,
  stiffly accurate and L-stable, six stages (one LU, six solves, six right-hand sides per step)
  and a third-order dense output. E. Hairer and G. Wanner, *Solving Ordinary Differential
  Equations II*, 2nd ed., Springer 1996, Sec. IV.7 (coefficients of rodas.f, METH=1).
- ``"rodas5p"``: Steinebach's Rodas5P (BIT Numer. Math. 63:27, 2023), order 5 with an embedded
  order-4 estimate, stiffly accurate, eight stages (one LU, eight solves, eight right-hand sides)
  and a fourth-order dense output. Fewer steps than Rodas4 at equal error on the HER2 model.

Two cheaper order-3 methods were tried and rejected (see benchmarks/README.md): ROS3P (Lang &
Verwer 2001), whose embedded order-2 estimate is identically zero on linear problems (the step
size then grows unchecked), and RODAS3 (Sandu et al. 1997), which has no order-3 dense output
from its stages (Hermite interpolation missed the tolerance by up to 100x) and needed 2-3x the
steps of RODAS4. The integrator is generic in the tableau, so adding a method is adding data.

Step-size control: the predictive (Gustafsson) controller of Hairer & Wanner (IV.8, eq. 8.21),
``0.2 <= h_new/h <= 6``, safety factor 0.9; error measured in the RMS norm with weights
``atol + rtol * max(|y0|, |y1|)``. Output times are served by the dense output (the integrator
never steps onto an output time); parameter changes (doses, washouts) are breakpoints that the
integrator steps to exactly before continuing with the new parameters.

Failures are per member: step-size underflow, ``max_steps``, a non-finite right-hand side or
Jacobian, or a blow-up (|x| > 1e15 nM or a large negative concentration) stop that member with
a status code and message; the rest of the batch goes on.
"""

from __future__ import annotations

import itertools
import sys
import time as _time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .backend import resolve_backend
from .batch_xp import integrate_array
from .ckernels import CpuKernels, KernelCache, cpu_kernels
from .fused import fused_ops
from .certify import CertifyOptions, certify_batch, certify_options
from ..errors import InvalidArgument
from ..executors import fork_map, shared_empty
from ..model.network import Network
from .result import Result, status_message as Status  # Status(code, message) -> a StatusMessage pair
from ..experiments.condition import Condition, dosed, doses_at
from .sparse_lu import SparseLU, symbolic_lu
from .stepping import (BLOWUP, COMPACT_FRACTION, DIVERGED, FAC_DOWN, FAC_UP, MAX_STEPS, NOT_FINITE, OK, SAFE, UNDERFLOW,
                       Schedule, Work, apply_breakpoints, as_schedule, check_output_buffer, dense, initial_step,
                       next_stop, rms0)
from .tableaus import RODAS4, RODAS5P, TABLEAUS, RosenbrockTableau, auto_method  # noqa: F401 (re-exported)
from ..validate import MAX_OUTPUT_BYTES, check_count, check_real, check_size, check_tolerances

#: status codes of :class:`BatchResult` (``status_code``)
STATUS_CODES = {0: "ok", 1: "max_steps", 2: "step_size_underflow", 3: "not_finite", 4: "diverged"}


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True, eq=False)
class BatchResult:
    """Trajectories of a batch.

    Attributes
    ----------
    time : (T,) output times in h.
    states : (B, T, n_species) nM; rows of failed members hold NaN from the failure on.
    status_code : (B,) int, keys of :data:`STATUS_CODES` (0 = ok).
    messages : (B,) str, empty for members that finished.
    steps, rejected : (B,) attempted steps and rejected steps per member.
    parameters : (B, n_params) parameters in force at t_span[0].
    species_names : names of the state columns.  attrs : method, tolerances, timings.
    """

    time: np.ndarray
    states: np.ndarray
    status_code: np.ndarray
    messages: tuple
    steps: np.ndarray
    rejected: np.ndarray
    parameters: np.ndarray
    species_names: tuple
    attrs: dict = field(default_factory=dict)
    #: (B, T, n_params) parameters in force at each output time, for models with timed events
    parameter_trajectory: np.ndarray | None = None

    @property
    def n_members(self) -> int:
        return self.states.shape[0]

    @property
    def ok(self) -> np.ndarray:
        """(B,) True for members that reached the end."""
        return self.status_code == OK

    @property
    def status(self) -> tuple:
        """Per-member :class:`her2sim.Status` ('ok' or 'failed' with the reason)."""
        return tuple(Status() if c == OK else Status("failed", f"{STATUS_CODES[int(c)]}: {m}")
                     for c, m in zip(self.status_code, self.messages))

    def to_result(self, network: Network, conditions: Sequence[Condition] | None = None) -> Result:
        """A :class:`her2sim.Result` with observables. ``conditions`` (as built by
        :func:`her2sim.solvers.solve.make_condition`) supply the doses in force at each output time;
        without them the parameters are taken as constant."""
        B, T, n = self.states.shape
        states = self.states
        if network.time_index is not None:  # model time is the output time, not its integrated copy
            states = states.copy()
            states[:, :, network.time_index] = self.time
        if self.parameter_trajectory is not None:
            P_t = self.parameter_trajectory
        elif conditions is None:
            P_t = np.broadcast_to(self.parameters[:, None, :], (B, T, network.n_params))
        else:
            P_t = np.array([[dosed(network, self.parameters[i], doses_at(c, t)) for t in self.time]
                            for i, c in enumerate(conditions)])
        obs = network.observables(states.reshape(-1, n), P_t.reshape(B * T, network.n_params))
        labels = tuple({**c.doses, **c.parameters} for c in conditions) if conditions else ()
        return Result(self.time, states, obs.reshape(B, T, -1), network.species_names,
                      network.observable_names, network.observable_units, labels, self.status,
                      {**self.attrs, "time_unit": "h", "concentration_unit": "nM"}, network.species_units)


# ----------------------------------------------------------------------------- inputs
def breakpoints_from_conditions(network: Network, conditions: Sequence[Condition]):
    """(P, breakpoints) for :func:`simulate_batch` from scipy-path :class:`~her2sim.solvers.solve.Condition`\\ s.

    ``P`` (B, n_params) has each condition's parameter overrides and its doses at t = 0;
    ``breakpoints`` lists every event time of any condition, with per-member times (``inf``
    where a member has fewer events) and the doses in force after it.
    """
    B = len(conditions)
    P = np.array([dosed(network, network.parameters_with(c.parameters), c.doses) for c in conditions])
    K = max((len(c.events) for c in conditions), default=0)
    dose_params = sorted({d for c in conditions for _, ch in c.events for d in ch})
    bps = []
    for k in range(K):
        t = np.full(B, np.inf)
        vals = {d: np.full(B, np.nan) for d in dose_params}
        for i, c in enumerate(conditions):
            if k < len(c.events):
                t[i] = c.events[k][0]
                for d, v in c.events[k][1].items():
                    vals[d][i] = v
        bps.append((t, vals))
    return P, bps


# ----------------------------------------------------------------------------- the program
_PLANS: weakref.WeakKeyDictionary[Network, dict] = weakref.WeakKeyDictionary()


def lu_plan(network: Network, ordering: str = "markowitz") -> SparseLU:
    """The symbolic LU of ``I/(h*gamma) - J`` for this network (computed once, cached)."""
    plans = _PLANS.setdefault(network, {})
    if ordering not in plans:
        plans[ordering] = symbolic_lu(network.n_species, network.jac_rows, network.jac_cols, ordering=ordering)
    return plans[ordering]


def simulate_batch(network: Network, X0=None, P=None, *, t_eval, t_span=None, method: str = "rodas4",
                   rtol: float = 1e-6, atol: float = 1e-9, max_steps: int = 100000, breakpoints=None,
                   workers: int = 1, progress: bool = False, ordering: str = "markowitz",
                   fixed_step: float | None = None,
                   certify: float | CertifyOptions | None = CertifyOptions(), backend="numpy",
                   slab: int | None = None, fused="auto", out: np.ndarray | None = None) -> BatchResult:
    """Integrate B conditions of one network together with a stiff Rosenbrock method.

    Parameters
    ----------
    network : a compiled :class:`~her2sim.Network`.
    X0 : (B, n_species) or (n_species,) initial states in nM; default ``network.initial_state(P)``
        (the model's initial state for each member's parameters, e.g. SBML initial assignments).
    P : (B, n_params) or (n_params,) parameters (internal units); default ``network.p0``.
        B is taken from whichever of X0, P has a leading batch axis (they must agree).
    t_eval : (T,) increasing output times in h, inside ``t_span``.
    t_span : (t0, t_end) in h; default ``(0, t_eval[-1])``.
    method : "rodas4" (order 4, third-order dense output), "rodas5p" (order 5, fourth-order dense
        output) or "auto" (:func:`auto_method`: the one measured cheaper at equal error for rtol).
    rtol, atol : relative and absolute (nM) tolerances of the local error.
    max_steps : attempted steps per member before it fails with status "max_steps".
    breakpoints : piecewise-constant parameter changes, ``[(time_h, {parameter: value}), ...]``.
        ``time_h`` is a scalar or (B,) array (``inf``/NaN: no change for that member); values are
        scalars or (B,) arrays (NaN: unchanged for that member). The integrator steps exactly to
        each time and continues with the new values; see :func:`breakpoints_from_conditions`.
    workers : processes (fork start method, Linux/macOS). The batch is integrated in slabs of at
        most :data:`SLAB` members (cache-sized work arrays); workers take slabs from a queue, with
        BLAS pinned to one thread each (threadpoolctl, if installed).
    progress : print progress to stderr.
    ordering : fill-reducing ordering of the sparse LU (see :func:`her2sim.solvers.sparse_lu.symbolic_lu`).
    fixed_step : integrate with this constant step (h) and no error control; for convergence
        studies. Steps still end exactly on breakpoints and at t_end.
    certify : accuracy certificate (:mod:`her2sim.solvers.certify`): a seeded random sample of the
        finished members (default 0.5 %, at least 2) is re-integrated with scipy's Radau at a
        20x tighter tolerance and the largest relative error goes to ``attrs["certificate"]``.
        A fraction, a :class:`~her2sim.solvers.certify.CertifyOptions`, or None/0 to skip it.
    backend : "numpy" (default), "cupy" (GPU), "array-api-strict" or an array namespace
        (:mod:`her2sim.solvers.backend`); other than "numpy" it runs :mod:`her2sim.solvers.batch_xp` (no
        breakpoints, model events, fixed_step or workers there). Results are NumPy arrays.
    slab : members integrated together on a non-NumPy backend (default :data:`DEVICE_SLAB`).
    out : a caller-owned float64 C-contiguous (B, T, n_species) array for the states (all overwritten;
        ``result.states`` is it), reused across calls of one size so the system does not zero fresh
        output pages again (see README); with ``workers > 1``: :func:`her2sim.executors.shared_empty`.
    fused : run the right-hand side, Jacobian, LU factor and LU solve (and, on the NumPy backend,
        the error norm and dense output) as compiled code, one call each per step. NumPy backend: C
        built with the system compiler (:mod:`her2sim.solvers.ckernels`, checked against NumPy before
        use; a warning line and the NumPy path if that fails).
        ``"auto"`` (default): build them when B >= :func:`auto_fused_members` (10,000 at rtol <= 1e-6,
        else 20,000; below that the compile time, ~3.7 CPU-s, outweighs the gain); True: build them for any
        B; False: NumPy operations; a :class:`~her2sim.solvers.ckernels.CpuKernels` (built once by
        :func:`~her2sim.solvers.ckernels.cpu_kernels`) or a :class:`~her2sim.solvers.ckernels.KernelCache`: use or
        build-and-keep those (for many calls on one network). ``backend="cupy"``: True/"auto" run
        one CUDA kernel each (:mod:`her2sim.solvers.fused`), False the array-API operations. Results agree
        with the NumPy operations to rounding (~1e-13 per evaluation).

    Returns
    -------
    BatchResult with states (B, T, n_species), per-member status, steps and rejections;
    ``attrs["certificate"]`` holds the accuracy certificate (None when skipped).
    A member that fails never raises; it gets a status code and message.

    Examples
    --------
    >>> import numpy as np, her2sim
    >>> from her2sim.solvers.batch import simulate_batch
    >>> net = her2sim.compile_network(her2sim.load_model("tests/models/binding.toml"))  # doctest: +SKIP
    >>> P = np.tile(net.p0, (100, 1)); P[:, net.parameter_index("kdeg")] *= np.linspace(0.5, 2, 100)  # doctest: +SKIP
    >>> res = simulate_batch(net, P=P, t_eval=np.linspace(0, 24, 25))  # doctest: +SKIP
    >>> res.states.shape, bool(res.ok.all())  # doctest: +SKIP
    ((100, 25, 4), True)
    """
    if not isinstance(network, Network):
        raise InvalidArgument(f"network must be a compiled her2sim.Network, got {type(network).__name__}")
    if method != "auto" and method not in TABLEAUS:
        raise InvalidArgument(f"method must be one of {('auto', *TABLEAUS)}, got {method!r}")
    check_tolerances(rtol, atol)
    check_count(max_steps, "max_steps", fix="right-hand-side evaluations per member, e.g. 100000")
    if fixed_step is not None:
        check_real(fixed_step, "fixed_step", low=0.0, low_open=True, fix="a step in hours, or None for adaptive steps")
    check_count(workers, "workers", fix="processes, e.g. 1 or the number of cores")
    cert_options = certify_options(certify)
    bk = resolve_backend(backend)
    if not bk.is_numpy:
        for used, what in ((breakpoints, "breakpoints"), (network.spec.events, "timed model events"),
                           (fixed_step is not None, "fixed_step"), (workers != 1, "workers > 1")):
            if used:
                raise InvalidArgument(f"{what} are not supported with backend={bk.name!r}; use backend='numpy'")
        if slab is not None:
            check_count(slab, "slab", fix="members integrated together on the device, e.g. 100000")
    if not (isinstance(fused, (bool, np.bool_, CpuKernels, KernelCache)) or (isinstance(fused, str)
                                                                             and fused == "auto")):
        raise InvalidArgument(f"fused must be True or False, 'auto', a her2sim.solvers.ckernels.CpuKernels or a KernelCache; "
                              f"got {fused!r}")
    if isinstance(fused, (CpuKernels, KernelCache)) and not bk.is_numpy:
        raise InvalidArgument(f"fused={type(fused).__name__} is for backend='numpy'; use True with backend={bk.name!r}")
    if isinstance(fused, CpuKernels) and (fused.n, fused.n_params, fused.n_jac) != (
            network.n_species, network.n_params, len(network.jac_rows)):
        raise InvalidArgument("fused: these CpuKernels were built for another network; build them with "
                              "her2sim.solvers.ckernels.cpu_kernels(network, lu_plan(network, ordering))")
    n, p = network.n_species, network.n_params
    try:
        P = np.asarray(network.p0 if P is None else P, dtype=float)
        if X0 is None:
            if P.shape[-1:] != (p,) or P.ndim > 2:
                raise InvalidArgument(f"P must have shape (B, {p}) or ({p},), got {P.shape}")
            X0 = network.initial_state(P)
        X0 = np.asarray(X0, dtype=float)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        raise InvalidArgument("X0 and P must be numeric arrays (B, n_species) and (B, n_params)") from None
    if X0.shape[-1:] != (n,) or X0.ndim > 2:
        raise InvalidArgument(f"X0 must have shape (B, {n}) or ({n},), got {X0.shape}")
    if P.shape[-1:] != (p,) or P.ndim > 2:
        raise InvalidArgument(f"P must have shape (B, {p}) or ({p},), got {P.shape}")
    B = max(X0.shape[0] if X0.ndim == 2 else 1, P.shape[0] if P.ndim == 2 else 1)
    if (X0.ndim == 2 and X0.shape[0] not in (1, B)) or (P.ndim == 2 and P.shape[0] not in (1, B)):
        raise InvalidArgument(f"X0 and P disagree on the batch size: {X0.shape} and {P.shape}")
    X0 = np.array(np.broadcast_to(X0, (B, n)))
    P = np.array(np.broadcast_to(P, (B, p)))
    check_size(B * len(np.atleast_1d(t_eval)) * n, "the output (members x times x species)", MAX_OUTPUT_BYTES // 8,
               "fewer output times (t_eval) or split the members into batches (a sweep does this in chunks)",
               bytes_each=8)
    try:
        grid = np.asarray(t_eval, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise InvalidArgument(f"t_eval must be a 1-D array of hours, got {type(t_eval).__name__}") from None
    if grid.ndim != 1 or len(grid) == 0 or np.any(np.diff(grid) <= 0) or not np.all(np.isfinite(grid)):
        raise InvalidArgument(f"t_eval must be a non-empty increasing 1-D array of hours, got {t_eval!r}")
    t0, t_end = (0.0, float(grid[-1])) if t_span is None else (float(t_span[0]), float(t_span[1]))
    if not t_end > t0 or grid[0] < t0 or grid[-1] > t_end:
        raise InvalidArgument(f"t_span must be (t0, t_end) with t0 < t_end containing t_eval; got t_span={t_span!r} "
                         f"and t_eval in [{grid[0]:g}, {grid[-1]:g}]")
    schedule = as_schedule(network, breakpoints, B)
    method = auto_method(rtol) if method == "auto" else method
    if network.spec.events:
        schedule = _with_model_events(network, schedule, P, t0)
    tab = TABLEAUS[method]
    plan = lu_plan(network, ordering)

    # written by the integrator (each worker its own rows; outputs a failed member never reached are
    # set to NaN when it leaves the active set): no up-front fill, whose first touch cost page faults
    if out is not None:
        check_output_buffer(out, (B, len(grid), n), workers > 1 and B > 1 and bk.is_numpy)
        states = out
    else:
        states = shared_empty((B, len(grid), n)) if workers > 1 and B > 1 else np.empty((B, len(grid), n))
    p_traj = None
    if network.spec.events:
        p_traj = shared_empty((B, len(grid), p)) if workers > 1 and B > 1 else np.empty((B, len(grid), p))
        p_traj.fill(np.nan)
    status = np.zeros(B, dtype=np.int8)
    steps = np.zeros(B, dtype=np.int64)
    rejected = np.zeros(B, dtype=np.int64)
    messages = [""] * B
    clock = _time.perf_counter()
    kernels, compile_s = _cpu_kernels(network, plan, fused, B, ordering, rtol) if bk.is_numpy else (None, 0.0)
    job = _Job(network, plan, tab, X0, P, schedule, t0, t_end, grid, rtol, atol, int(max_steps), progress, states,
               p_traj,
               None if fixed_step is None else float(fixed_step), kernels)
    ops = None
    if not bk.is_numpy:
        ops = fused_ops(bk, network, plan) if fused else None  # "auto" or True
        size = int(slab or DEVICE_SLAB)
        for lo in range(0, B, size):
            hi = min(B, lo + size)
            with np.errstate(all="ignore"):
                st, sp_, rj, msgs = integrate_array(bk, network, plan, tab, X0[lo:hi], P[lo:hi], t0, t_end, grid,
                                                    rtol, atol, int(max_steps), states[lo:hi], offset=lo,
                                                    progress=progress, ops=ops)
            status[lo:hi], steps[lo:hi], rejected[lo:hi] = st, sp_, rj
            for i, msg in msgs.items():
                messages[i] = msg
    elif workers > 1 and B > 1:
        _run_parallel(job, int(workers), status, steps, rejected, messages)
    else:
        with np.errstate(all="ignore"):
            slabs = slab_ranges(B, 1, kernels is not None)
            work = work_arrays(job, max(hi - lo for lo, hi in slabs))  # one set for every slab
            for lo, hi in slabs:
                for i, msg in _integrate(job, lo, hi, status, steps, rejected, work=work).items():
                    messages[i] = msg
    attrs = {"method": method, "backend": bk.name, "rtol": rtol, "atol": atol, "ordering": ordering,
             "workers": int(workers),
             "wall_time_s": _time.perf_counter() - clock, "lu_nnz": plan.nnz, "lu_fill": plan.n_fill,
             "certificate": None}
    attrs["fused"] = (ops if not bk.is_numpy else kernels) is not None
    if bk.is_numpy:
        attrs["kernels_compile_s"] = compile_s  # building the C kernels in this call (0: none or passed in)
    if cert_options is not None:
        attrs["certificate"] = certify_batch(network, states, status == OK, X0, P, schedule, t0, grid, rtol, atol,
                                             cert_options, workers=int(workers))
    return BatchResult(grid, states, status, tuple(messages), steps, rejected, P, network.species_names, attrs,
                       None if p_traj is None else np.array(p_traj))


# ----------------------------------------------------------------------------- worker processes
#: most members integrated together in one process: the step's work arrays (~400 rows of B floats)
#: then stay in cache. Measured on the HER2 model, rtol 1e-4, 8,000 members in one process (CPU
#: time, best of 4, busy machine): slabs of 8,000 / 4,000 / 2,000 / 1,000 gave 3,326 / 3,927 /
#: 3,827 / 3,141 conditions/s. Smaller slabs pay more per-call overhead (~1 us per NumPy call).
SLAB = 4000
#: members integrated together by a non-NumPy backend (:mod:`her2sim.solvers.batch_xp`): large, so each
#: device operation has enough work to hide its launch cost (not yet tuned on a GPU)
DEVICE_SLAB = 262144


#: most members integrated together with the compiled C kernels: their (rows, B) work arrays
#: (~900 rows) then stay in the L2/L3 cache; a slab of a power of two would put every row of a
#: member in the same few L1 sets, so this is not one
C_SLAB = 1000
#: ``fused="auto"`` builds the C kernels from this many members on (half as many at rtol <= 1e-6):
#: one build costs ~3.7 CPU-s of compiler time (HER2 model, loaded 2-core machine); measured savings
#: per member (CPU time, B = 2000, 2026-11-27): 0.17-0.18 ms at rtol 1e-4, 0.33-0.40 ms at 1e-6
#: (Rodas4, Rodas5P), so the build pays from ~22,000 (1e-4) and ~10,000 (1e-6) members
AUTO_FUSED_MEMBERS = 20000


def auto_fused_members(rtol: float) -> int:
    """Members from which ``fused="auto"`` (and :func:`run_kernels`) builds the C kernels at ``rtol``."""
    return AUTO_FUSED_MEMBERS if rtol > 1e-6 else max(1, AUTO_FUSED_MEMBERS // 2)


def run_kernels(networks: Sequence[Network], members: int, rtol: float,
                ordering: str = "markowitz") -> KernelCache | None:
    """The compiled C kernels of a run (a sweep, screen, trial or fit) of about ``members`` member
    integrations of ``networks`` at ``rtol``: a :class:`KernelCache` with them built now, once, if
    that many members pay for a build (:func:`auto_fused_members`), else None (then each
    ``simulate_batch`` call decides by its own size). The run owns the cache and passes it down
    (``kernels=`` of :func:`her2sim.experiments.run_conditions`); its workers re-open the built
    libraries (it pickles)."""
    if members < auto_fused_members(rtol):
        return None
    cache = KernelCache()
    for net in networks:
        cache.get(net, lu_plan(net, ordering), ordering)
    return cache


def _cpu_kernels(network: Network, plan: SparseLU, fused, B: int, ordering: str, rtol: float):
    """(the C kernels ``fused`` asks for (see :func:`simulate_batch`) or None, seconds spent building them now)."""
    if isinstance(fused, CpuKernels):
        return fused, 0.0
    if isinstance(fused, KernelCache):
        if fused.has(network, ordering):
            return fused.get(network, plan, ordering), 0.0
        build = True
    else:
        build = bool(fused) if isinstance(fused, (bool, np.bool_)) else B >= auto_fused_members(rtol)  # "auto"
    if not build:
        return None, 0.0
    clock = _time.perf_counter()
    kernels = fused.get(network, plan, ordering) if isinstance(fused, KernelCache) else cpu_kernels(network, plan)
    return kernels, _time.perf_counter() - clock


def slab_ranges(B: int, workers: int, compiled: bool = False) -> list[tuple[int, int]]:
    """Member ranges [lo, hi) of at most SLAB (C_SLAB with the ``compiled`` kernels) members:
    equal sizes, their number a multiple of ``workers`` (workers take the next slab when they
    finish one; unequal slabs, e.g. 4000 + 4000 + 2000 for 2 workers, left one worker idle)."""
    cap = C_SLAB if compiled else SLAB
    count = max(1, min(B, workers * -(-B // (workers * cap))))
    size = -(-B // count)
    edges = list(range(0, B, size)) + [B]
    return list(itertools.pairwise(edges))


def _slab_task(job, bounds):
    """Integrate one slab of the job in a worker process (:func:`her2sim.executors.fork_map`)."""
    lo, hi = bounds
    status = np.zeros(hi - lo, dtype=np.int8)
    steps = np.zeros(hi - lo, dtype=np.int64)
    rejected = np.zeros(hi - lo, dtype=np.int64)
    with np.errstate(all="ignore"):
        msgs = _integrate(job, lo, hi, status, steps, rejected, offset=lo)
    return lo, status, steps, rejected, msgs


def _run_parallel(job, workers, status, steps, rejected, messages) -> None:
    slabs = slab_ranges(len(status), workers, job.kernels is not None)
    for lo, st, sp_, rj, msgs in fork_map(_slab_task, job, slabs, workers):
        status[lo:lo + len(st)] = st
        steps[lo:lo + len(st)] = sp_
        rejected[lo:lo + len(st)] = rj
        for i, msg in msgs.items():
            messages[i] = msg


# ----------------------------------------------------------------------------- the integrator
@dataclass(frozen=True, eq=False)
class _Job:
    network: Network
    plan: SparseLU
    tab: RosenbrockTableau
    X0: np.ndarray
    P: np.ndarray
    schedule: Schedule
    t0: float
    t_end: float
    grid: np.ndarray
    rtol: float
    atol: float
    max_steps: int
    progress: bool
    states: np.ndarray
    params_out: np.ndarray | None  # (B, T, n_params) parameters at the output times (models with events)
    fixed_step: float | None = None
    kernels: object = None  # her2sim.solvers.ckernels.CpuKernels, or None for the NumPy operations


def work_arrays(job: _Job, capacity: int) -> Work:
    """The work arrays of :func:`_integrate` for up to ``capacity`` members of the job."""
    net, plan, kern, tab = job.network, job.plan, job.kernels, job.tab
    n = net.n_species
    return Work(capacity, n, tab.stages, len(net.jac_rows), plan.nnz if kern is None else 0,
                2 * n + plan.max_terms if kern is None else 0, len(tab.dense),
                plan.gather_rows if kern is None else kern.factor_rows, net.n_params)


def _integrate(job: _Job, lo: int, hi: int, status, steps, rejected, offset: int = 0, work: Work | None = None) -> dict:
    """Integrate members lo..hi-1 of the job, writing job.states rows; fills status/steps/rejected
    (indexed from ``offset``) and returns {member: message} for failures. ``work``: arrays to reuse
    (:func:`work_arrays`), else allocated here."""
    net, plan, tab = job.network, job.plan, job.tab
    n = net.n_species
    grid, T = job.grid, len(job.grid)
    t_end, rtol, atol = job.t_end, job.rtol, job.atol
    sched = job.schedule
    s_count = tab.stages
    expo = 1.0 / (tab.error_order + 1)
    sources = [tab.rhs_source(i) for i in range(tab.stages)]
    stiffly_accurate = (sources[-1] == "new" and tuple(tab.m[:-1]) == tuple(tab.a[-1])[:s_count - 1]
                        and tab.m[-1] == 1.0)
    error_is_last = tuple(tab.e) == (0.0,) * (s_count - 1) + (1.0,)
    dense_coef = np.asarray(tab.dense, dtype=float)
    stage_coef = [np.array([tab.a[i][:i], tab.c[i][:i]], dtype=float) for i in range(tab.stages)]
    messages: dict[int, str] = {}
    out = job.states  # written where a member's output exists; the rest set to NaN when it leaves (no up-front fill)
    grid = np.ascontiguousarray(grid)
    span = t_end - job.t0
    eps16 = 16 * np.finfo(float).eps
    h_floor = eps16 * span  # plus 16 eps |t| below: the spacing of floats near t

    kern = job.kernels  # compiled C (her2sim.solvers.ckernels) or None (NumPy)
    rhs_into = net.rhs_T if kern is None else kern.rhs
    jac_into = net.jacobian_values_T if kern is None else kern.jac

    def rhs(y, P):
        return rhs_into(y, P)

    def jac(y, P):
        return jac_into(y, P)

    # --- active-set arrays (species-major: (n, Ba)); the (n, Ba)-sized work arrays are views of
    # buffers allocated once for the slab, or passed in for all the slabs of a process (fresh pages
    # cost the kernel's zeroing on first touch; no large temporaries inside the loop) ---
    if work is None or work.capacity < hi - lo:
        work = work_arrays(job, hi - lo)
    idx = np.arange(lo, hi)
    y = work.y(hi - lo)
    y[...] = job.X0[lo:hi].T
    P = work.view("P", net.n_params, hi - lo)
    P[...] = job.P[lo:hi].T
    Ba = hi - lo
    t = np.full(Ba, job.t0)
    nbp = np.zeros(Ba, dtype=np.intp)
    # breakpoints at or before t0 take effect at once
    if sched.K:
        while True:
            due = (nbp < sched.K) & (sched.times[idx, np.minimum(nbp, sched.K - 1)] <= job.t0)
            if not due.any():
                break
            apply_breakpoints(P, sched, idx, nbp, np.nonzero(due)[0])
    t_stop = next_stop(sched, idx, nbp, t_end)
    nout = np.full(Ba, np.searchsorted(grid, job.t0, side="left"), dtype=np.intp)
    at_start = grid == job.t0
    if at_start.any():
        out[lo:hi, np.nonzero(at_start)[0][0]] = job.X0[lo:hi]
        if job.params_out is not None:
            job.params_out[lo:hi, np.nonzero(at_start)[0][0]] = P.T
        nout += 1
    f0 = rhs_into(y, P, out=work.view("f0", n, Ba))
    h = (initial_step(np, rhs, y, P, f0, t_stop - t, rtol, atol, tab.order, rms0) if job.fixed_step is None
         else np.full(Ba, job.fixed_step))
    hacc = np.zeros(Ba)
    erracc = np.ones(Ba)
    have_acc = np.zeros(Ba, dtype=bool)   # an accepted step since the last breakpoint (for the predictor)
    rej_last = np.zeros(Ba, dtype=bool)
    done = np.zeros(Ba, dtype=bool)
    nstep = np.zeros(Ba, dtype=np.int64)
    nrej = np.zeros(Ba, dtype=np.int64)
    last_report = _time.perf_counter()
    fresh = True  # f0 is valid for the current (y, P)

    while Ba:
        f0 = work.view("f0", n, Ba)
        if not fresh:
            rhs_into(y, P, out=f0)
        fresh = False
        Jv = jac_into(y, P, out=work.view("jv", work.njac, Ba))
        remaining = t_stop - t
        last = t + 1.0001 * h >= t_stop
        hh = np.where(last, remaining, h)
        if kern is None:
            V = plan.assemble(Jv, 1.0 / (hh * tab.gamma), scale=-1.0, out=work.view("V", plan.nnz, Ba))
            G = plan.gather_factors(V, plan.factor(V), out=work.view("G", work.ngather, Ba))
        else:  # LU values and reciprocal pivots of I/(h gamma) - J
            G = kern.factor(Jv, 1.0 / (hh * tab.gamma), out=work.view("G", work.ngather, Ba))
        inv_h = 1.0 / hh
        U = work.view("U", s_count, n, Ba)
        U2 = U.reshape(s_count, n * Ba)
        ac = work.view("ac", 2, n, Ba)  # stage point sum_j a_ij u_j (+ y0), and the right-hand side
        fi = work.view("f", n, Ba)
        scratch = work.view("solve", 2 * n + plan.max_terms, Ba) if kern is None else None
        for i in range(s_count):
            if i == 0:
                r = f0
            else:
                np.dot(stage_coef[i], U2[:i], out=ac.reshape(2, n * Ba))  # one pass for both sums
                src = sources[i]
                if src == "new":
                    ac[0] += y
                    rhs_into(ac[0], P, out=fi)
                f_i = f0 if src == "y0" else fi
                r = ac[1]
                r *= inv_h
                r += f_i
            if kern is None:
                plan.solve_into(G, r, U[i], scratch)
            else:
                kern.solve(G, r, U[i])
        y1 = work.y1(Ba)
        if stiffly_accurate:  # y1 is the last stage's point plus its increment
            np.add(ac[0], U[s_count - 1], out=y1)
        else:
            np.dot(np.asarray(tab.m, dtype=float), U2, out=y1.reshape(-1))
            y1 += y
        if error_is_last:
            err_vec = U[s_count - 1]
        else:
            err_vec = work.view("err", n, Ba)
            np.dot(np.asarray(tab.e, dtype=float), U2, out=err_vec.reshape(-1))
        if kern is None:
            w, abs_y1 = work.view("w", n, Ba), work.view("w2", n, Ba)
            np.abs(y, out=w)
            np.abs(y1, out=abs_y1)
            np.maximum(w, abs_y1, out=w)
            w *= rtol
            w += atol
            np.divide(err_vec, w, out=w)
            err = rms0(w, inplace=True)
            ymax = ymin = None
        else:  # the same norm in one pass, with the blow-up test's max |y1| and min y1
            err, ymax, ymin = np.empty(Ba), np.empty(Ba), np.empty(Ba)
            kern.error(y, y1, err_vec, rtol, atol, err, ymax, ymin)
        err[~np.isfinite(err)] = np.inf
        if job.fixed_step is not None:
            err[np.isfinite(err)] = 0.0
        err[done] = np.inf  # members waiting for compaction never accept
        accept = err <= 1.0
        nstep += ~done
        nrej += ~accept & ~done
        if accept.any() and ymax is None:  # blow-up test on the new values (= y after the update, for accepted members)
            ymax = np.max(abs_y1, axis=0)
            ymin = np.min(y1, axis=0)

        # --- step-size control (predictive controller, Hairer & Wanner IV.8) ---
        fac = np.clip(err ** expo / SAFE, FAC_UP, FAC_DOWN)
        gus = accept & have_acc
        if gus.any():
            fg = (hacc / hh) * (err * err / erracc) ** expo / SAFE
            fac = np.where(gus, np.maximum(fac, np.clip(fg, FAC_UP, FAC_DOWN)), fac)
        h_new = hh / fac
        h_new = np.where(accept & rej_last, np.minimum(h_new, hh), h_new)
        h_new = np.minimum(h_new, span) if job.fixed_step is None else np.full(Ba, job.fixed_step)
        hacc = np.where(accept, hh, hacc)
        erracc = np.where(accept, np.maximum(0.01, err), erracc)
        have_acc |= accept
        rej_last = ~accept

        # --- dense output at the requested times inside accepted steps ---
        t_new = np.where(last, t_stop, t + hh)
        pend = accept & (nout < T)
        pend[pend] = grid[nout[pend]] <= t_new[pend]
        if pend.any():  # the dense-output vectors of every member in one pass over the stages
            D = work.view("dense", len(tab.dense), n, Ba)
            np.dot(dense_coef, U2, out=D.reshape(len(tab.dense), -1))
            if kern is not None and job.params_out is None:  # in C, straight into the output rows
                kern.dense(D, y, y1, np.nonzero(pend)[0], t, hh, t_new, grid, nout, idx, out)
                pend[:] = False
        while pend.any():
            sel = np.nonzero(pend)[0]
            theta = (grid[nout[sel]] - t[sel]) / hh[sel]
            vals = dense(D[:, :, sel], y[:, sel], y1[:, sel], theta)
            out[idx[sel], nout[sel]] = vals.T
            if job.params_out is not None:
                job.params_out[idx[sel], nout[sel]] = P[:, sel].T
            nout[sel] += 1
            more = nout[sel] < T
            more[more] = grid[nout[sel][more]] <= t_new[sel][more]
            pend[:] = False
            pend[sel[more]] = True

        if accept.all():
            y = work.swap(Ba)
        else:
            np.copyto(y, y1, where=accept[None, :])
        t = np.where(accept, t_new, t)
        h = h_new

        # --- failures ---
        bad = ~done & ~accept & ~np.isfinite(err)
        if bad.any():  # distinguish a non-finite model from a too-large step
            sel = np.nonzero(bad)[0]
            f_chk = rhs(y[:, sel], P[:, sel])
            j_chk = jac(y[:, sel], P[:, sel])
            broken = ~(np.isfinite(f_chk).all(axis=0) & np.isfinite(j_chk).all(axis=0))
            for k in sel[broken]:
                messages[int(idx[k])] = (f"right-hand side or Jacobian not finite at t={t[k]:.6g} h "
                                         "(check parameters: NaN, inf or division by zero)")
                status[idx[k] - offset] = NOT_FINITE
                done[k] = True
        if accept.any():
            blown = ymax > BLOWUP
            if job.fixed_step is None and job.network.spec.nonnegative:  # with error control, a large negative
                # value is a blow-up (not for models whose states may be negative, e.g. imported SBML)
                blown |= ymin < -np.maximum(1e-2 * ymax, 1e6 * atol)
            blown &= accept & ~done
            for k in np.nonzero(blown)[0]:
                messages[int(idx[k])] = (f"solution diverged at t={t[k]:.6g} h (max |x| = {ymax[k]:.3g} nM, "
                                         f"min x = {ymin[k]:.3g} nM); check for an unphysical parameter")
                status[idx[k] - offset] = DIVERGED
                done[k] = True
        tiny = ~done & (h < np.maximum(h_floor, eps16 * np.abs(t)))
        for k in np.nonzero(tiny)[0]:
            messages[int(idx[k])] = (f"step size underflow (h={h[k]:.3g} h) at t={t[k]:.6g} h: the tolerance "
                                     "cannot be met; try a looser rtol/atol or check parameters")
            status[idx[k] - offset] = UNDERFLOW
            done[k] = True
        over = ~done & (nstep >= job.max_steps) & ~(accept & last & (t_stop >= t_end))
        for k in np.nonzero(over)[0]:
            messages[int(idx[k])] = f"max_steps={job.max_steps} reached at t={t[k]:.6g} h"
            status[idx[k] - offset] = MAX_STEPS
            done[k] = True

        # --- breakpoints reached: new parameters ---
        hit = accept & last & ~done
        finished = hit & (t_stop >= t_end)
        done |= finished
        at_bp = np.nonzero(hit & ~finished)[0]
        if sched.event is not None:  # timed events at t_end still change the last output
            ends = np.nonzero(finished)[0]
            due = (nbp[ends] < sched.K) & (sched.times[idx[ends], np.minimum(nbp[ends], sched.K - 1)] <= t[ends])
            at_bp = np.concatenate([at_bp, ends[due]])
        if len(at_bp):
            fired: dict[int, list] = {}
            while len(at_bp):
                if sched.event is not None:
                    for m, k in zip(at_bp, sched.event[idx[at_bp], nbp[at_bp]]):
                        if k >= 0:
                            fired.setdefault(int(m), []).append(int(k))
                apply_breakpoints(P, sched, idx, nbp, at_bp)
                k_next = np.minimum(nbp[at_bp], sched.K - 1)
                again = (nbp[at_bp] < sched.K) & (sched.times[idx[at_bp], k_next] <= t[at_bp])
                at_bp = at_bp[again]
            if fired:
                _fire_events(job, fired, y, P, t, idx, nout)
            t_stop = next_stop(sched, idx, nbp, t_end)
            have_acc[hit] = False
            rej_last[hit] = False

        # --- compaction of the active set ---
        n_done = int(done.sum())
        if n_done and (n_done >= COMPACT_FRACTION * Ba or n_done == Ba):
            keep = ~done
            rows = idx[done]
            for k in np.nonzero(done & (nout < T))[0]:  # outputs never reached (a failure): NaN
                out[idx[k], nout[k]:] = np.nan
            steps[rows - offset] = nstep[done]
            rejected[rows - offset] = nrej[done]
            y_kept = y[:, keep]
            y = work.y(y_kept.shape[1])
            y[...] = y_kept
            (idx, P, t, h, t_stop, nbp, nout, hacc, erracc, have_acc, rej_last, nstep, nrej) = (
                idx[keep], np.ascontiguousarray(P[:, keep]), t[keep], h[keep],
                t_stop[keep], nbp[keep], nout[keep], hacc[keep], erracc[keep], have_acc[keep], rej_last[keep],
                nstep[keep], nrej[keep])
            done = np.zeros(len(idx), dtype=bool)
            Ba = len(idx)
        if job.progress and _time.perf_counter() - last_report > 2.0:
            last_report = _time.perf_counter()
            print(f"simulate_batch: {hi - lo - Ba}/{hi - lo} members done, {Ba} active, "
                  f"min t = {t.min() if Ba else t_end:.4g} h", file=sys.stderr, flush=True)
    return messages


def _with_model_events(network: Network, sched: Schedule, P: np.ndarray, t0: float) -> Schedule:
    """The schedule plus one breakpoint per timed event of the model, at its time for each member."""
    times = network.event_times(P)  # (B, K_model)
    bad = ~(times > t0)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise InvalidArgument(f"event {network.event_names[k]!r} fires at t = {times[i, k]!r} <= t0 = {t0:g} for member "
                         f"{i}; events at or before the start are not supported")
    B, K = sched.times.shape
    event = np.concatenate([np.full((B, K), -1), np.tile(np.arange(times.shape[1]), (B, 1))], axis=1)
    all_times = np.concatenate([sched.times, times], axis=1)
    values = np.concatenate([sched.values, np.full((B, times.shape[1], sched.values.shape[2]), np.nan)], axis=1)
    order = np.argsort(all_times, axis=1, kind="stable")
    return Schedule(np.take_along_axis(all_times, order, axis=1), sched.index,
                     np.take_along_axis(values, order[:, :, None], axis=1), np.take_along_axis(event, order, axis=1))


def _fire_events(job, fired: dict, y, P, t, idx, nout) -> None:
    """Apply the model's timed events that fired together for each member (active-set positions
    in ``fired``); rewrite an output at exactly the event time with the values after it."""
    groups: dict[tuple, list] = {}
    for m, ks in fired.items():
        groups.setdefault(tuple(ks), []).append(m)
    grid, strict = job.grid, job.network.event_strict
    for ks, members in groups.items():
        sel = np.array(members)
        now, later = [k for k in ks if not strict[k]], [k for k in ks if strict[k]]
        if now:  # fire at the time: an output at exactly that time shows the values after them
            x_new, p_new = job.network.apply_events(now, y[:, sel].T, P[:, sel].T)
            y[:, sel], P[:, sel] = x_new.T, p_new.T
            pos = np.searchsorted(grid, t[sel])
            hit = (pos < len(grid)) & (pos < nout[sel])
            hit[hit] = grid[pos[hit]] == t[sel][hit]
            if hit.any():
                job.states[idx[sel[hit]], pos[hit]] = x_new[hit]
                if job.params_out is not None:
                    job.params_out[idx[sel[hit]], pos[hit]] = p_new[hit]
        if later:  # strict events fire just after the time: the output there precedes them
            x_new, p_new = job.network.apply_events(later, y[:, sel].T, P[:, sel].T)
            y[:, sel], P[:, sel] = x_new.T, p_new.T
