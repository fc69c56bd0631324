"""The batch path: ``simulate_batch()``, a pure-NumPy Rosenbrock integrator for many conditions at once.

Every member of the batch (one condition: initial state and parameter vector) is integrated with
its own adaptive step size; all active members advance together, one vectorised NumPy operation
per stage over the whole active set, and members leave the active set when they finish or fail.
The linear algebra uses :mod:`her2sim.sparse_lu`: one symbolic LU per network, then one numeric
LU of ``I/(h*gamma) - J`` per step shared by all stages.

Methods (tableaus are data, :data:`TABLEAUS`):

- ``"rodas4"``: Hairer & Wanner's RODAS, order 4 with an embedded order-3 error estimate,
  stiffly accurate and L-stable, six stages (one LU, six solves, six right-hand sides per step)
  and a third-order dense output. E. Hairer and G. Wanner, *Solving Ordinary Differential
  Equations II*, 2nd ed., Springer 1996, Sec. IV.7 (coefficients of rodas.f, METH=1).

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
import mmap
import multiprocessing as mp
import sys
import time as _time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from .network import Network
from .result import Result, Status
from .solve import Condition, _dosed, _doses_at
from .sparse_lu import SparseLU, symbolic_lu


# ----------------------------------------------------------------------------- tableaus
@dataclass(frozen=True)
class RosenbrockTableau:
    """A Rosenbrock method in the transformed form of Hairer & Wanner (IV.7.25), autonomous:

    ``(I/(h*gamma) - J) u_i = f(y0 + sum_j a[i][j] u_j) + (1/h) sum_j c[i][j] u_j``,
    ``y1 = y0 + sum_i m[i] u_i``, error estimate ``sum_i e[i] u_i`` (= y1 - embedded solution).

    ``dense`` holds the two coefficient rows of a Rodas-type continuous output
    ``y(t0 + s h) = (1-s) y0 + s (y1 + (1-s) (D1 + s D2))`` with ``Dk = sum_i dense[k][i] u_i``.
    """

    name: str
    order: int
    error_order: int
    gamma: float
    a: tuple
    c: tuple
    m: tuple
    e: tuple
    dense: tuple
    reference: str

    @property
    def stages(self) -> int:
        return len(self.m)

    def rhs_source(self, i: int) -> str:
        """Where stage i gets f: "y0" (its point is y0: reuse f(y0)), "previous" (same point as
        stage i-1) or "new" (evaluate)."""
        if i == 0 or not any(self.a[i]):
            return "y0"
        if i >= 2 and tuple(self.a[i]) == tuple(self.a[i - 1]) + (0.0,):
            return "previous"
        return "new"


_R4 = dict(  # noqa: C408 - the coefficient names of rodas.f
    a21=1.544, a31=0.9466785280815826, a32=0.2557011698983284, a41=3.314825187068521,
           a42=2.896124015972201, a43=0.9986419139977817, a51=1.221224509226641, a52=6.019134481288629,
           a53=12.53708332932087, a54=-0.687886036105895, c21=-5.6688, c31=-2.430093356833875,
           c32=-0.2063599157091915, c41=-0.1073529058151375, c42=-9.594562251023355,
           c43=-20.47028614809616, c51=7.496443313967647, c52=-10.24680431464352, c53=-33.99990352819905,
           c54=11.7089089320616, c61=8.083246795921522, c62=-7.981132988064893, c63=-31.52159432874371,
           c64=16.31930543123136, c65=-6.058818238834054, d21=10.12623508344586, d22=-7.487995877610167,
           d23=-34.80091861555747, d24=-7.992771707568823, d25=1.025137723295662,
           d31=-0.6762803392801253, d32=6.087714651680015, d33=16.43084320892478, d34=24.76722511418386,
           d35=-6.594389125716872)

RODAS4 = RosenbrockTableau(
    name="rodas4", order=4, error_order=3, gamma=0.25,
    a=((), (_R4["a21"],), (_R4["a31"], _R4["a32"]), (_R4["a41"], _R4["a42"], _R4["a43"]),
       (_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"]),
       (_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"], 1.0)),
    c=((), (_R4["c21"],), (_R4["c31"], _R4["c32"]), (_R4["c41"], _R4["c42"], _R4["c43"]),
       (_R4["c51"], _R4["c52"], _R4["c53"], _R4["c54"]),
       (_R4["c61"], _R4["c62"], _R4["c63"], _R4["c64"], _R4["c65"])),
    m=(_R4["a51"], _R4["a52"], _R4["a53"], _R4["a54"], 1.0, 1.0),
    e=(0.0, 0.0, 0.0, 0.0, 0.0, 1.0),
    dense=((_R4["d21"], _R4["d22"], _R4["d23"], _R4["d24"], _R4["d25"], 0.0),
           (_R4["d31"], _R4["d32"], _R4["d33"], _R4["d34"], _R4["d35"], 0.0)),
    reference="Hairer & Wanner, Solving ODEs II (1996), Sec. IV.7; rodas.f METH=1",
)

#: the methods ``simulate_batch(method=...)`` accepts
TABLEAUS = {t.name: t for t in (RODAS4,)}

#: status codes of :class:`BatchResult` (``status_code``)
STATUS_CODES = {0: "ok", 1: "max_steps", 2: "step_size_underflow", 3: "not_finite", 4: "diverged"}
OK, MAX_STEPS, UNDERFLOW, NOT_FINITE, DIVERGED = range(5)

_SAFE, _FAC_UP, _FAC_DOWN = 0.9, 1.0 / 6.0, 5.0   # h_new/h in [0.2, 6] (rodas.f defaults)
_BLOWUP = 1e15                                      # nM: beyond any concentration in a cell
_COMPACT_FRACTION = 0.02                            # compact the active set when this share is done


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
        :func:`her2sim.solve.make_condition`) supply the doses in force at each output time;
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
            P_t = np.array([[_dosed(network, self.parameters[i], _doses_at(c, t)) for t in self.time]
                            for i, c in enumerate(conditions)])
        obs = network.observables(states.reshape(-1, n), P_t.reshape(B * T, network.n_params))
        labels = tuple({**c.doses, **c.parameters} for c in conditions) if conditions else ()
        return Result(self.time, states, obs.reshape(B, T, -1), network.species_names,
                      network.observable_names, network.observable_units, labels, self.status,
                      {**self.attrs, "time_unit": "h", "concentration_unit": "nM"})


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True, eq=False)
class _Schedule:
    """Breakpoints per member: times (B, K) ascending (inf = none), the parameter indices that
    change, and their new values (B, K, n_changed) (NaN = unchanged)."""

    times: np.ndarray
    index: np.ndarray
    values: np.ndarray
    event: np.ndarray | None = None  # (B, K) index of the model's timed event (-1: a parameter change)

    @property
    def K(self) -> int:
        return self.times.shape[1]


def _as_schedule(network: Network, breakpoints, B: int) -> _Schedule:
    if breakpoints is None or len(breakpoints) == 0:
        return _Schedule(np.full((B, 0), np.inf), np.zeros(0, dtype=np.intp), np.zeros((B, 0, 0)))
    names: dict[int, int] = {}
    entries = []
    for k, item in enumerate(breakpoints):
        try:
            t, change = item
        except (TypeError, ValueError):
            raise ValueError(f"breakpoints[{k}] must be a pair (time_h, {{parameter: value}}), got {item!r}") from None
        if not isinstance(change, Mapping) or not change:
            raise ValueError(f"breakpoints[{k}]: the change must be a non-empty mapping {{parameter: value}}, "
                             f"got {change!r}")
        tt = np.broadcast_to(np.asarray(t, dtype=float), (B,))
        cols = {}
        for name, v in change.items():
            j = network.parameter_index(name) if isinstance(name, str) else int(name)
            if not 0 <= j < network.n_params:
                raise ValueError(f"breakpoints[{k}]: parameter index {j} out of range [0, {network.n_params})")
            names.setdefault(j, len(names))
            vv = np.asarray(v, dtype=float)
            if vv.ndim > 1 or (vv.ndim == 1 and vv.shape[0] != B):
                raise ValueError(f"breakpoints[{k}][{name!r}]: values must be a scalar or shape ({B},), "
                                 f"got shape {vv.shape}")
            cols[j] = np.broadcast_to(vv, (B,))
        entries.append((tt, cols))
    K = len(entries)
    times = np.stack([np.where(np.isnan(e[0]), np.inf, e[0]) for e in entries], axis=1)
    values = np.full((B, K, len(names)), np.nan)
    for k, (_, cols) in enumerate(entries):
        for j, v in cols.items():
            values[:, k, names[j]] = v
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    values = np.take_along_axis(values, order[:, :, None], axis=1)
    return _Schedule(times, np.array(list(names), dtype=np.intp), values)


def breakpoints_from_conditions(network: Network, conditions: Sequence[Condition]):
    """(P, breakpoints) for :func:`simulate_batch` from scipy-path :class:`~her2sim.solve.Condition`\\ s.

    ``P`` (B, n_params) has each condition's parameter overrides and its doses at t = 0;
    ``breakpoints`` lists every event time of any condition, with per-member times (``inf``
    where a member has fewer events) and the doses in force after it.
    """
    B = len(conditions)
    P = np.array([_dosed(network, network.parameters_with(c.parameters), c.doses) for c in conditions])
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
                   fixed_step: float | None = None) -> BatchResult:
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
    method : "rodas4" (order 4 with a third-order dense output); see :data:`TABLEAUS`.
    rtol, atol : relative and absolute (nM) tolerances of the local error.
    max_steps : attempted steps per member before it fails with status "max_steps".
    breakpoints : piecewise-constant parameter changes, ``[(time_h, {parameter: value}), ...]``.
        ``time_h`` is a scalar or (B,) array (``inf``/NaN: no change for that member); values are
        scalars or (B,) arrays (NaN: unchanged for that member). The integrator steps exactly to
        each time and continues with the new values; see :func:`breakpoints_from_conditions`.
    workers : processes (one slab of the batch each; fork start method, Linux/macOS). Pin BLAS
        to one thread per process (``OPENBLAS_NUM_THREADS=1``) when using more than one.
    progress : print progress to stderr.
    ordering : fill-reducing ordering of the sparse LU (see :func:`her2sim.sparse_lu.symbolic_lu`).
    fixed_step : integrate with this constant step (h) and no error control; for convergence
        studies. Steps still end exactly on breakpoints and at t_end.

    Returns
    -------
    BatchResult with states (B, T, n_species), per-member status, steps and rejections.
    A member that fails never raises; it gets a status code and message.

    Examples
    --------
    >>> import numpy as np, her2sim
    >>> from her2sim.batch import simulate_batch
    >>> net = her2sim.compile_network(her2sim.load_model("tests/models/binding.toml"))  # doctest: +SKIP
    >>> P = np.tile(net.p0, (100, 1)); P[:, net.parameter_index("kdeg")] *= np.linspace(0.5, 2, 100)  # doctest: +SKIP
    >>> res = simulate_batch(net, P=P, t_eval=np.linspace(0, 24, 25))  # doctest: +SKIP
    >>> res.states.shape, bool(res.ok.all())  # doctest: +SKIP
    ((100, 25, 4), True)
    """
    if not isinstance(network, Network):
        raise TypeError(f"network must be a compiled her2sim.Network, got {type(network).__name__}")
    if method not in TABLEAUS:
        raise ValueError(f"method must be one of {tuple(TABLEAUS)}, got {method!r}")
    if not (0 < rtol < 1) or not (atol > 0):
        raise ValueError(f"rtol must be in (0, 1) and atol > 0, got rtol={rtol!r}, atol={atol!r}")
    if int(max_steps) < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps!r}")
    if fixed_step is not None and not (fixed_step > 0):
        raise ValueError(f"fixed_step must be > 0 hours or None, got {fixed_step!r}")
    if int(workers) < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    n, p = network.n_species, network.n_params
    P = np.asarray(network.p0 if P is None else P, dtype=float)
    if X0 is None:
        if P.shape[-1:] != (p,) or P.ndim > 2:
            raise ValueError(f"P must have shape (B, {p}) or ({p},), got {P.shape}")
        X0 = network.initial_state(P)
    X0 = np.asarray(X0, dtype=float)
    if X0.shape[-1:] != (n,) or X0.ndim > 2:
        raise ValueError(f"X0 must have shape (B, {n}) or ({n},), got {X0.shape}")
    if P.shape[-1:] != (p,) or P.ndim > 2:
        raise ValueError(f"P must have shape (B, {p}) or ({p},), got {P.shape}")
    B = max(X0.shape[0] if X0.ndim == 2 else 1, P.shape[0] if P.ndim == 2 else 1)
    if (X0.ndim == 2 and X0.shape[0] not in (1, B)) or (P.ndim == 2 and P.shape[0] not in (1, B)):
        raise ValueError(f"X0 and P disagree on the batch size: {X0.shape} and {P.shape}")
    X0 = np.array(np.broadcast_to(X0, (B, n)))
    P = np.array(np.broadcast_to(P, (B, p)))
    grid = np.asarray(t_eval, dtype=float)
    if grid.ndim != 1 or len(grid) == 0 or np.any(np.diff(grid) <= 0) or not np.all(np.isfinite(grid)):
        raise ValueError(f"t_eval must be a non-empty increasing 1-D array of hours, got {t_eval!r}")
    t0, t_end = (0.0, float(grid[-1])) if t_span is None else (float(t_span[0]), float(t_span[1]))
    if not t_end > t0 or grid[0] < t0 or grid[-1] > t_end:
        raise ValueError(f"t_span must be (t0, t_end) with t0 < t_end containing t_eval; got t_span={t_span!r} "
                         f"and t_eval in [{grid[0]:g}, {grid[-1]:g}]")
    schedule = _as_schedule(network, breakpoints, B)
    if network.spec.events:
        schedule = _with_model_events(network, schedule, P, t0)
    tab = TABLEAUS[method]
    plan = lu_plan(network, ordering)

    states = _shared_empty((B, len(grid), n)) if workers > 1 and B > 1 else np.empty((B, len(grid), n))
    states.fill(np.nan)
    p_traj = None
    if network.spec.events:
        p_traj = _shared_empty((B, len(grid), p)) if workers > 1 and B > 1 else np.empty((B, len(grid), p))
        p_traj.fill(np.nan)
    status = np.zeros(B, dtype=np.int8)
    steps = np.zeros(B, dtype=np.int64)
    rejected = np.zeros(B, dtype=np.int64)
    messages = [""] * B
    clock = _time.perf_counter()
    job = _Job(network, plan, tab, X0, P, schedule, t0, t_end, grid, rtol, atol, int(max_steps), progress, states,
               p_traj,
               None if fixed_step is None else float(fixed_step))
    if workers > 1 and B > 1:
        _run_parallel(job, int(workers), status, steps, rejected, messages)
    else:
        with np.errstate(all="ignore"):
            msgs = _integrate(job, 0, B, status, steps, rejected)
        for i, msg in msgs.items():
            messages[i] = msg
    attrs = {"method": method, "rtol": rtol, "atol": atol, "ordering": ordering, "workers": int(workers),
             "wall_time_s": _time.perf_counter() - clock, "lu_nnz": plan.nnz, "lu_fill": plan.n_fill}
    return BatchResult(grid, states, status, tuple(messages), steps, rejected, P, network.species_names, attrs,
                       None if p_traj is None else np.array(p_traj))


# ----------------------------------------------------------------------------- worker processes
def _shared_empty(shape) -> np.ndarray:
    """A float array in anonymous shared memory (inherited by forked workers)."""
    nbytes = max(int(np.prod(shape)) * 8, 8)
    buf = mmap.mmap(-1, nbytes)
    return np.frombuffer(buf, dtype=np.float64, count=int(np.prod(shape))).reshape(shape)


_FORKED_JOB = None


def _worker(bounds):
    lo, hi = bounds
    job = _FORKED_JOB
    _limit_blas_threads()
    status = np.zeros(hi - lo, dtype=np.int8)
    steps = np.zeros(hi - lo, dtype=np.int64)
    rejected = np.zeros(hi - lo, dtype=np.int64)
    with np.errstate(all="ignore"):
        msgs = _integrate(job, lo, hi, status, steps, rejected, offset=lo)
    return lo, status, steps, rejected, msgs


def _limit_blas_threads() -> None:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the caller pins BLAS through OPENBLAS_NUM_THREADS etc.
        return
    threadpool_limits(1)


def _run_parallel(job, workers, status, steps, rejected, messages) -> None:
    global _FORKED_JOB
    if "fork" not in mp.get_all_start_methods():
        raise RuntimeError("workers > 1 needs the 'fork' start method (Linux or macOS); use workers=1")
    B = len(status)
    edges = np.linspace(0, B, min(workers, B) + 1).astype(int)
    _FORKED_JOB = job
    try:
        with mp.get_context("fork").Pool(len(edges) - 1) as pool:
            for lo, st, sp_, rj, msgs in pool.map(_worker, list(itertools.pairwise(edges))):
                status[lo:lo + len(st)] = st
                steps[lo:lo + len(st)] = sp_
                rejected[lo:lo + len(st)] = rj
                for i, msg in msgs.items():
                    messages[i] = msg
    finally:
        _FORKED_JOB = None


# ----------------------------------------------------------------------------- the integrator
@dataclass(frozen=True, eq=False)
class _Job:
    network: Network
    plan: SparseLU
    tab: RosenbrockTableau
    X0: np.ndarray
    P: np.ndarray
    schedule: _Schedule
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


def _rms0(x: np.ndarray) -> np.ndarray:
    """Root mean square over axis 0 of (n, B), summed row by row whatever B is (a member's
    result must not depend on the batch it is in; NumPy pairwise-sums a lone column)."""
    sq = np.square(x)
    if sq.shape[1] == 1:
        sq = np.repeat(sq, 2, axis=1)
        return np.sqrt(np.add.reduce(sq, axis=0)[:1] / x.shape[0])
    return np.sqrt(np.add.reduce(sq, axis=0) / x.shape[0])


def _combine(coef, U: np.ndarray, k: int) -> np.ndarray:
    """sum_j coef[j] * U[j] over j < k, U (s, n, B) -> (n, B)."""
    coef = np.asarray(coef[:k], dtype=float)
    return np.einsum("k,knb->nb", coef, U[:k])


def _integrate(job: _Job, lo: int, hi: int, status, steps, rejected, offset: int = 0) -> dict:
    """Integrate members lo..hi-1 of the job, writing job.states rows; fills status/steps/rejected
    (indexed from ``offset``) and returns {member: message} for failures."""
    net, plan, tab = job.network, job.plan, job.tab
    n = net.n_species
    grid, T = job.grid, len(job.grid)
    t_end, rtol, atol = job.t_end, job.rtol, job.atol
    sched = job.schedule
    s_count = tab.stages
    expo = 1.0 / (tab.error_order + 1)
    sources = [tab.rhs_source(i) for i in range(tab.stages)]
    stage_coef = [np.array([tab.a[i][:i], tab.c[i][:i]], dtype=float) for i in range(tab.stages)]
    messages: dict[int, str] = {}
    out = job.states
    span = t_end - job.t0
    eps16 = 16 * np.finfo(float).eps
    h_floor = eps16 * span  # plus 16 eps |t| below: the spacing of floats near t

    def rhs(y, P):
        return net.rhs_T(y, P)

    def jac(y, P):
        return net.jacobian_values_T(y, P)

    # --- active-set arrays (species-major: (n, Ba)) ---
    idx = np.arange(lo, hi)
    y = np.array(job.X0[lo:hi].T, order="C")
    P = np.array(job.P[lo:hi].T, order="C")
    Ba = hi - lo
    t = np.full(Ba, job.t0)
    nbp = np.zeros(Ba, dtype=np.intp)
    # breakpoints at or before t0 take effect at once
    if sched.K:
        while True:
            due = (nbp < sched.K) & (sched.times[idx, np.minimum(nbp, sched.K - 1)] <= job.t0)
            if not due.any():
                break
            _apply_breakpoints(P, sched, idx, nbp, np.nonzero(due)[0])
    t_stop = _next_stop(sched, idx, nbp, t_end)
    nout = np.full(Ba, np.searchsorted(grid, job.t0, side="left"), dtype=np.intp)
    at_start = grid == job.t0
    if at_start.any():
        out[lo:hi, np.nonzero(at_start)[0][0]] = job.X0[lo:hi]
        if job.params_out is not None:
            job.params_out[lo:hi, np.nonzero(at_start)[0][0]] = P.T
        nout += 1
    f0 = rhs(y, P)
    h = (_initial_step(rhs, y, P, f0, t_stop - t, rtol, atol, tab.order) if job.fixed_step is None
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
        if not fresh:
            f0 = rhs(y, P)
        fresh = False
        Jv = jac(y, P)
        remaining = t_stop - t
        last = t + 1.0001 * h >= t_stop
        hh = np.where(last, remaining, h)
        V = plan.assemble(Jv, 1.0 / (hh * tab.gamma), scale=-1.0)
        rpiv = plan.factor(V)
        inv_h = 1.0 / hh
        U = np.empty((s_count, n, Ba))
        fi = None
        for i in range(s_count):
            if i == 0:
                r = f0
            else:
                ac = np.einsum("pk,knb->pnb", stage_coef[i], U[:i])  # sum_j a_ij u_j and sum_j c_ij u_j
                src = sources[i]
                if src == "y0":
                    fi = f0
                elif src == "new":
                    ac[0] += y
                    fi = rhs(ac[0], P)
                r = ac[1]
                r *= inv_h
                r += fi
            U[i] = plan.solve(V, rpiv, r)
        y1 = y + _combine(tab.m, U, s_count)
        err_vec = U[s_count - 1] if tab.e == (0.0,) * (s_count - 1) + (1.0,) else _combine(tab.e, U, s_count)
        scale = np.maximum(np.abs(y), np.abs(y1))
        scale *= rtol
        scale += atol
        err_vec = err_vec / scale
        err = _rms0(err_vec)
        err[~np.isfinite(err)] = np.inf
        if job.fixed_step is not None:
            err[np.isfinite(err)] = 0.0
        err[done] = np.inf  # members waiting for compaction never accept
        accept = err <= 1.0
        nstep += ~done
        nrej += ~accept & ~done

        # --- step-size control (predictive controller, Hairer & Wanner IV.8) ---
        fac = np.clip(err ** expo / _SAFE, _FAC_UP, _FAC_DOWN)
        gus = accept & have_acc
        if gus.any():
            fg = (hacc / hh) * (err * err / erracc) ** expo / _SAFE
            fac = np.where(gus, np.maximum(fac, np.clip(fg, _FAC_UP, _FAC_DOWN)), fac)
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
        while pend.any():
            sel = np.nonzero(pend)[0]
            theta = (grid[nout[sel]] - t[sel]) / hh[sel]
            vals = _dense(tab, y[:, sel], y1[:, sel], U[:, :, sel], theta)
            out[idx[sel], nout[sel]] = vals.T
            if job.params_out is not None:
                job.params_out[idx[sel], nout[sel]] = P[:, sel].T
            nout[sel] += 1
            more = nout[sel] < T
            more[more] = grid[nout[sel][more]] <= t_new[sel][more]
            pend[:] = False
            pend[sel[more]] = True

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
            ymax = np.max(np.abs(y), axis=0)
            ymin = np.min(y, axis=0)
            blown = ymax > _BLOWUP
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
                _apply_breakpoints(P, sched, idx, nbp, at_bp)
                k_next = np.minimum(nbp[at_bp], sched.K - 1)
                again = (nbp[at_bp] < sched.K) & (sched.times[idx[at_bp], k_next] <= t[at_bp])
                at_bp = at_bp[again]
            if fired:
                _fire_events(job, fired, y, P, t, idx, nout)
            t_stop = _next_stop(sched, idx, nbp, t_end)
            have_acc[hit] = False
            rej_last[hit] = False

        # --- compaction of the active set ---
        n_done = int(done.sum())
        if n_done and (n_done >= _COMPACT_FRACTION * Ba or n_done == Ba):
            keep = ~done
            rows = idx[done]
            steps[rows - offset] = nstep[done]
            rejected[rows - offset] = nrej[done]
            (idx, y, P, t, h, t_stop, nbp, nout, hacc, erracc, have_acc, rej_last, nstep, nrej) = (
                idx[keep], np.ascontiguousarray(y[:, keep]), np.ascontiguousarray(P[:, keep]), t[keep], h[keep],
                t_stop[keep], nbp[keep], nout[keep], hacc[keep], erracc[keep], have_acc[keep], rej_last[keep],
                nstep[keep], nrej[keep])
            done = np.zeros(len(idx), dtype=bool)
            Ba = len(idx)
        if job.progress and _time.perf_counter() - last_report > 2.0:
            last_report = _time.perf_counter()
            print(f"simulate_batch: {hi - lo - Ba}/{hi - lo} members done, {Ba} active, "
                  f"min t = {t.min() if Ba else t_end:.4g} h", file=sys.stderr, flush=True)
    return messages


def _with_model_events(network: Network, sched: _Schedule, P: np.ndarray, t0: float) -> _Schedule:
    """The schedule plus one breakpoint per timed event of the model, at its time for each member."""
    times = network.event_times(P)  # (B, K_model)
    bad = ~(times > t0)
    if bad.any():
        i, k = np.argwhere(bad)[0]
        raise ValueError(f"event {network.event_names[k]!r} fires at t = {times[i, k]!r} <= t0 = {t0:g} for member "
                         f"{i}; events at or before the start are not supported")
    B, K = sched.times.shape
    event = np.concatenate([np.full((B, K), -1), np.tile(np.arange(times.shape[1]), (B, 1))], axis=1)
    all_times = np.concatenate([sched.times, times], axis=1)
    values = np.concatenate([sched.values, np.full((B, times.shape[1], sched.values.shape[2]), np.nan)], axis=1)
    order = np.argsort(all_times, axis=1, kind="stable")
    return _Schedule(np.take_along_axis(all_times, order, axis=1), sched.index,
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


def _apply_breakpoints(P, sched: _Schedule, idx, nbp, sel) -> None:
    vals = sched.values[idx[sel], nbp[sel]]  # (m, n_changed)
    for c, j in enumerate(sched.index):
        v = vals[:, c]
        keep = np.isnan(v)
        P[j, sel] = np.where(keep, P[j, sel], v)
    nbp[sel] += 1


def _next_stop(sched: _Schedule, idx, nbp, t_end) -> np.ndarray:
    if not sched.K:
        return np.full(len(idx), t_end)
    tb = np.where(nbp < sched.K, sched.times[idx, np.minimum(nbp, sched.K - 1)], np.inf)
    return np.minimum(tb, t_end)


def _initial_step(rhs, y, P, f0, remaining, rtol, atol, order) -> np.ndarray:
    """Hairer, Norsett & Wanner (1993) II.4 starting step, per member."""
    sc = atol + rtol * np.abs(y)
    d0, d1 = _rms0(y / sc), _rms0(f0 / sc)
    h0 = np.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / np.maximum(d1, 1e-300))
    h0 = np.minimum(h0, remaining)
    f1 = rhs(y + h0 * f0, P)
    d2 = _rms0((f1 - f0) / sc) / h0
    dm = np.maximum(d1, d2)
    h1 = np.where(dm <= 1e-15, np.maximum(1e-6, h0 * 1e-3), (0.01 / np.maximum(dm, 1e-300)) ** (1.0 / (order + 1)))
    h = np.minimum(np.minimum(100 * h0, h1), remaining)
    return np.where(np.isfinite(h) & (h > 0), h, np.minimum(1e-6, remaining))


def _dense(tab, y0, y1, U, theta) -> np.ndarray:
    """Continuous output at t0 + theta*h for a few members: (n, m)."""
    D1 = _combine(tab.dense[0], U, tab.stages)
    D2 = _combine(tab.dense[1], U, tab.stages)
    return (1 - theta) * y0 + theta * (y1 + (1 - theta) * (D1 + theta * D2))
