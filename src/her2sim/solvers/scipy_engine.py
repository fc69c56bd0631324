"""The scipy engine: :func:`scipy.integrate.solve_ivp` with the analytic Jacobian, one condition at
a time or all together as one block-diagonal system with a sparse Jacobian; drug-free steady states.

Doses change piecewise-constantly at event times and the integration restarts at each event (a
discontinuity is never stepped over). Inputs are in internal units (nM, h); user input (``"1 uM"``,
model names) is read by :mod:`her2sim.solvers.solve`, which sits above this module and the batch engine.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from ..errors import IntegrationError, UnitError
from ..experiments.cache import RestCache
from ..experiments.condition import Condition, dosed, doses_at, input_free, same_schedule, segments
from ..model.network import Network
from .status import Status, StatusMessage

__all__ = ["DEFAULT_MAX_STEPS", "METHODS", "cached_steady_state", "integrate_conditions", "model_event_times",
           "preequilibrate_all", "relative_drift", "steady_state"]

METHODS = ("LSODA", "BDF", "Radau")
#: cap on right-hand-side evaluations per integration segment (scipy path)
DEFAULT_MAX_STEPS = 200_000


class _Budget:
    """Counts right-hand-side evaluations and stops a runaway integration."""

    def __init__(self, max_steps: int):
        self.left = max_steps
        self.max_steps = max_steps

    def spend(self, t: float) -> None:
        self.left -= 1
        if self.left < 0:
            raise IntegrationError(
                f"gave up at t={t:.6g} h after {self.max_steps} right-hand-side evaluations (max_steps): the "
                "problem is too stiff or blows up. Check parameter values, or raise max_steps.")


def _solve_one(network: Network, x0, p, t_span, t_eval, method, rtol, atol, mask=None, max_steps=DEFAULT_MAX_STEPS):
    n = network.n_species
    budget = _Budget(max_steps)

    if mask is None:
        def fun(t, y):
            budget.spend(t)
            return network.rhs(y, p)

        def jac(t, y):
            return network.jacobian(y, p)
    else:
        def fun(t, y):
            budget.spend(t)
            return network.rhs(y, p) * mask

        def jac(t, y):
            return network.jacobian(y, p) * mask[:, None]

    kwargs = {"jac": jac} if method in ("BDF", "Radau", "LSODA") else {}
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="lsoda:", category=UserWarning)  # its failure is raised below
        sol = solve_ivp(fun, t_span, x0, method=method, t_eval=t_eval, rtol=rtol, atol=atol, **kwargs)
    if not sol.success:
        raise IntegrationError(
            f"{method} failed between t={t_span[0]:g} h and {t_span[1]:g} h: {sol.message}. "
            "Try method='Radau' or a looser rtol, and check parameter values.")
    y = sol.y.T if t_eval is not None else sol.y[:, -1:].T
    if not np.all(np.isfinite(y)):
        raise IntegrationError(f"{method} produced non-finite values; check parameters (division by zero?)")
    return y.reshape(-1, n)


class _BlockSystem:
    """B copies of the network as one block-diagonal ODE with a sparse CSC Jacobian."""

    def __init__(self, network: Network, P: np.ndarray, mask=None, max_steps: int = DEFAULT_MAX_STEPS):
        self.network, self.P, self.mask = network, P, mask
        self.budget = _Budget(max_steps)
        B, n = P.shape[0], network.n_species
        self.B, self.n = B, n
        nnz = len(network.jac_rows)
        rows = (np.arange(B)[:, None] * n + network.jac_rows[None, :]).ravel()
        cols = (np.arange(B)[:, None] * n + network.jac_cols[None, :]).ravel()
        order = np.lexsort((rows, cols))  # CSC order: by column then row
        self.perm = order
        self.indices = rows[order].astype(np.int32)
        counts = np.bincount(cols, minlength=B * n)
        self.indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
        self.shape = (B * n, B * n)
        self.mask_vals = None if mask is None else np.tile(mask[network.jac_rows], B)[order]
        self._nnz = nnz

    def fun(self, t, y):
        self.budget.spend(t)
        dx = self.network.rhs(y.reshape(self.B, self.n), self.P)
        if self.mask is not None:
            dx = dx * self.mask
        return dx.ravel()

    def jac(self, t, y):
        vals = self.network.jacobian_values(y.reshape(self.B, self.n), self.P).ravel()[self.perm]
        if self.mask_vals is not None:
            vals = vals * self.mask_vals
        return sp.csc_matrix((vals, self.indices, self.indptr), shape=self.shape)


def _solve_block(network: Network, X0, P, t_span, t_eval, method, rtol, atol, mask=None,
                 max_steps=DEFAULT_MAX_STEPS):
    if method == "LSODA":
        method = "BDF"  # LSODA cannot use a sparse Jacobian
    system = _BlockSystem(network, P, mask, max_steps)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        sol = solve_ivp(system.fun, t_span, X0.ravel(), method=method, t_eval=t_eval, rtol=rtol, atol=atol,
                        jac=system.jac)
    if not sol.success:
        raise IntegrationError(f"block {method} failed: {sol.message}")
    y = sol.y if t_eval is not None else sol.y[:, -1:]
    return y.T.reshape(-1, system.B, network.n_species).transpose(1, 0, 2)  # (B, T, n)


def steady_state(network: Network, x0, p, *, method: str = "LSODA", rtol: float = 1e-8, atol: float = 1e-10,
                 tol: float = 1e-7, max_time_h: float = 1e6) -> np.ndarray:
    """Integrate with doses as given in ``p`` until max |dx/dt| / (|x| + atol) < ``tol`` per hour.

    Species with ``preequilibrate = false`` are held at their value. Raises IntegrationError if
    no steady state is reached by ``max_time_h`` (oscillation or unbounded growth).
    """
    mask = network.preequilibrate_mask
    x = np.asarray(x0, dtype=float)
    t, horizon = 0.0, 100.0
    while t < max_time_h:
        x = _solve_one(network, x, p, (0.0, horizon), None, method, rtol, atol, mask=mask)[-1]
        t += horizon
        drift = float(relative_drift(network, x, p, floor=atol * 1e3))
        if drift < tol:
            return x
        horizon *= 4
    raise IntegrationError(
        f"pre-equilibration did not reach a steady state within {max_time_h:g} h (max relative drift {drift:.2e}/h). "
        "The model may oscillate or grow without bound; pass preequilibrate=False or fix the model.")


def relative_drift(network: Network, X: np.ndarray, P: np.ndarray, *, floor: float = 1e-7) -> np.ndarray:
    """The steady-state test of every engine: max over moving species of |dx/dt| / (|x| + floor)
    (1/h; species marked ``preequilibrate = false`` are held and do not count). X, P: (n,) or (m, n)."""
    X = np.asarray(X, dtype=float)
    f = network.rhs(X, P) * network.preequilibrate_mask
    if X.ndim == 1:
        return np.max(np.abs(f) / (np.abs(X) + floor))
    return np.max(np.abs(f) / (np.abs(X) + floor), axis=1) if len(X) else np.zeros(0)


def cached_steady_state(network: Network, x0: np.ndarray, p: np.ndarray, cache: RestCache | None = None) -> np.ndarray:
    """steady_state() looked up in (and stored to) ``cache``, an explicit
    :class:`~her2sim.experiments.RestCache` keyed by the network's digest; without one, computed."""
    if cache is None:
        return steady_state(network, x0, p)
    key = cache.key(network, "scipy", x0, p)
    x = cache.get(key)
    if x is None:
        x = steady_state(network, x0, p)
        cache.put(key, x)
    return x.copy()


def integrate_conditions(network: Network, X0: np.ndarray, P: np.ndarray, conds: Sequence[Condition],
                         grid: np.ndarray, *, t_end: float | None = None, method: str = "LSODA", block: bool = False,
                         rtol: float = 1e-6, atol: float = 1e-9, max_steps: int = DEFAULT_MAX_STEPS,
                         status: list | None = None, single: bool = False):
    """The scipy engine: integrate conditions from their states ``X0`` (C, n) with parameters ``P``
    (C, n_params; overrides, doses from ``conds``) over ``grid`` (T,) up to ``t_end`` (default grid[-1]).

    ``block``: one block-diagonal solve (conditions sharing a dose schedule; falls back to one at a
    time to find failing members). ``status``: per-condition :class:`~her2sim.solvers.status.StatusMessage`
    list, updated in place (members already failed are skipped); ``single``: raise instead of recording a failure.
    Returns (states (C, T, n) with NaN for failed members, parameters in force (C, T, n_params),
    whether block mode ran).
    """
    grid = np.asarray(grid, dtype=float)
    t_end = float(grid[-1]) if t_end is None else float(t_end)
    status = [StatusMessage(Status.OK) for _ in conds] if status is None else status
    out = np.full((len(conds), len(grid), network.n_species), np.nan)
    use_block = block
    if network.spec.events:  # model events: one condition at a time (each has its own event times)
        use_block = False
        P_model = np.empty((len(conds), len(grid), network.n_params))
    same = same_schedule(conds)
    if use_block and same and len(conds) > 1:
        ok = [i for i, s in enumerate(status) if s.is_successful]
        try:
            out[ok] = _run_schedule_block(network, X0[ok], P[ok], [conds[i] for i in ok], grid, t_end, method, rtol,
                                          atol, max_steps)
        except IntegrationError:
            use_block = False  # find the failing members one by one
    if not (use_block and same and len(conds) > 1):
        for i, c in enumerate(conds):
            if not status[i].is_successful:
                continue
            try:
                if network.spec.events:
                    out[i], P_model[i] = _run_schedule_events(network, X0[i], P[i], c, grid, t_end, method, rtol,
                                                              atol, max_steps)
                    continue
                out[i] = _run_schedule(network, X0[i], P[i], c, grid, t_end, method, rtol, atol, max_steps)
            except IntegrationError as exc:
                if single:
                    raise
                status[i] = StatusMessage(Status.FAILED, str(exc))
    if network.time_index is not None:  # model time is the output time, not its integrated copy
        out[:, :, network.time_index] = grid
    P_t = P_model if network.spec.events else _parameters_over_time(network, P, conds, grid)
    return out, P_t, use_block


def _parameters_over_time(network: Network, P: np.ndarray, conds, grid) -> np.ndarray:
    """(C, T, n_params): the parameters (doses) in force at each output time."""
    out = np.empty((len(conds), len(grid), network.n_params))
    for i, c in enumerate(conds):
        for k, t in enumerate(grid):
            out[i, k] = dosed(network, P[i], doses_at(c, t))
    return out


def preequilibrate_all(network: Network, X0: np.ndarray, P: np.ndarray, status: list, single: bool,
                       cache: RestCache | None = None) -> np.ndarray:
    """Drug-free steady states of the rows of X0 (C, n) with parameters P (C, n_params; doses are
    set to 0), each distinct (x0, p) computed once; failures go to ``status`` (raised if ``single``)."""
    out = X0.copy()
    done: dict = {}
    for i in range(len(X0)):
        p = input_free(network, P[i])
        key = (X0[i].tobytes(), p.tobytes())
        if key not in done:
            try:
                done[key] = cached_steady_state(network, X0[i], p, cache)
            except IntegrationError as exc:
                if single:
                    raise
                done[key] = exc
        if isinstance(done[key], IntegrationError):
            status[i] = StatusMessage(Status.PREEQUILIBRATION, f"pre-equilibration: {done[key]}")
        else:
            out[i] = done[key]
    return out


def _run_schedule(network, x0, p, cond: Condition, grid, t_end, method, rtol, atol, max_steps):
    out = np.empty((len(grid), network.n_species))
    x = x0
    for t0, t1, doses in segments(t_end, cond):
        pd = dosed(network, p, doses)
        sel = (grid >= t0) & ((grid < t1) | ((t1 == t_end) & (grid <= t1)))
        pts = np.unique(np.concatenate([[t0], grid[sel], [t1]]))
        y = _solve_one(network, x, pd, (t0, t1), pts, method, rtol, atol, max_steps=max_steps)
        keep = np.isin(pts, grid[sel])
        out[sel] = y[keep]
        x = y[-1]
    return out


def model_event_times(network: Network, p: np.ndarray) -> list[tuple[float, list[int]]]:
    """[(t, [event indices])] of the model's timed events for parameters ``p``, ascending; events
    at the same time are grouped (they fire together). Raises for a time <= 0 or NaN."""
    times = network.event_times(p)
    for k, t in enumerate(times):
        if not t > 0:
            raise UnitError(f"event {network.event_names[k]!r} fires at t = {t!r} <= 0 for these parameters; "
                            "events at or before the start are not supported")
    groups: dict[float, list[int]] = {}
    for k in np.argsort(times, kind="stable"):
        if np.isfinite(times[k]):
            groups.setdefault(float(times[k]), []).append(int(k))
    return sorted(groups.items())


def _run_schedule_events(network, x0, p, cond: Condition, grid, t_end, method, rtol, atol, max_steps):
    """Like _run_schedule, also stopping at the model's timed events and applying them: their
    parameter changes persist; output at an event time shows the values after it (before it for
    a strict event, which fires just after its time). Returns (states (T, n), parameters (T, n_params))."""
    out = np.empty((len(grid), network.n_species))
    p_out = np.empty((len(grid), network.n_params))
    model_events = dict(model_event_times(network, dosed(network, p, doses_at(cond, 0.0))))
    strict = network.event_strict
    stops = sorted({te for te, _ in cond.events if 0 < te < t_end} | {te for te in model_events if te < t_end})
    x, p_cur, t0 = np.asarray(x0, dtype=float), p.copy(), 0.0
    for t1 in stops + [t_end]:
        pd = dosed(network, p_cur, doses_at(cond, t0))
        sel = ((grid > t0) | ((t0 == 0.0) & (grid == 0.0))) & (grid < t1)  # outputs at stops are written below
        pts = np.unique(np.concatenate([[t0], grid[sel], [t1]]))
        y = _solve_one(network, x, pd, (t0, t1), pts, method, rtol, atol, max_steps=max_steps)
        keep = np.isin(pts, grid[sel])
        out[sel], p_out[sel] = y[keep], pd
        x = y[-1]
        fired = model_events.get(t1, [])
        now, later = [k for k in fired if not strict[k]], [k for k in fired if strict[k]]
        if now:
            xs, ps = network.apply_events(now, x, dosed(network, p_cur, doses_at(cond, t1)))
            x, p_cur = xs[0], ps[0]
        at = grid == t1
        out[at], p_out[at] = x, dosed(network, p_cur, doses_at(cond, t1))
        if later and t1 < t_end:
            xs, ps = network.apply_events(later, x, dosed(network, p_cur, doses_at(cond, t1)))
            x, p_cur = xs[0], ps[0]
        t0 = t1
    return out, p_out


def _run_schedule_block(network, X0, P, conds, grid, t_end, method, rtol, atol, max_steps):
    out = np.empty((len(conds), len(grid), network.n_species))
    X = X0
    template = conds[0]
    for t0, t1, _ in segments(t_end, template):
        Pd = np.array([dosed(network, P[i], dict(doses_at(c, t0))) for i, c in enumerate(conds)])
        sel = (grid >= t0) & ((grid < t1) | ((t1 == t_end) & (grid <= t1)))
        pts = np.unique(np.concatenate([[t0], grid[sel], [t1]]))
        Y = _solve_block(network, X, Pd, (t0, t1), pts, method, rtol, atol, max_steps=max_steps)
        keep = np.isin(pts, grid[sel])
        out[:, sel] = Y[:, keep]
        X = Y[:, -1]
    return out
