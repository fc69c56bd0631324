"""The scipy path: ``simulate()`` over :func:`scipy.integrate.solve_ivp` with the analytic Jacobian.

Conditions are integrated either one at a time (``mode="loop"``) or all together as one
block-diagonal system with a sparse Jacobian (``mode="block"``). Cells are pre-equilibrated to a
steady state with every drug dose at zero; doses then change piecewise-constantly at event times,
and the integration restarts at each event (a discontinuity is never stepped over).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import scipy.sparse as sp
from scipy.integrate import solve_ivp

from .errors import IntegrationError, InvalidArgument, QuantityRangeError, UnitError
from .experiments.cache import RestCache
from .experiments.condition import Condition, dosed, doses_at, input_free, segments
from .load import load_model
from .network import Network, compile_network
from .result import Result
from .spec import ModelSpec
from .status import Status, StatusMessage
from .units import convert, parse_quantity, parse_unit, to_internal
from .validate import (MAX_OUTPUT_BYTES, check_choice, check_conditions, check_count, check_mapping, check_names,
                       check_size, check_time, check_tolerances)

__all__ = ["Condition", "as_network", "cached_steady_state", "dose_nM", "dosed", "doses_at", "hours", "input_free",
           "integrate_conditions", "make_condition", "model_time", "parameter_value", "preequilibrate_all",
           "relative_drift", "simulate", "steady_state"]

METHODS = ("LSODA", "BDF", "Radau")
#: block mode pays off from this many conditions on: measured crossover on the default model
#: (benchmarks/bench_scipy_modes.py --crossover: block/loop 0.9 at 8, 1.5 at 16, 4.0 at 64 conditions)
BLOCK_MIN_CONDITIONS = 16
#: cap on right-hand-side evaluations per integration segment (scipy path)
DEFAULT_MAX_STEPS = 200_000


# ----------------------------------------------------------------------------- inputs
def as_network(model, *, variants: Sequence[str] = (), drugs: Sequence[str] = ()) -> Network:
    """A Network from a name/path, ModelSpec or Network (variants/drugs only for names/paths)."""
    if isinstance(model, Network):
        if variants:
            raise InvalidArgument("variants cannot be applied to a compiled Network; pass the model name or path")
        return model
    if isinstance(model, ModelSpec):
        if variants:
            raise InvalidArgument("variants cannot be applied to a ModelSpec; use load_model(name, variants=...)")
        return compile_network(model)
    if isinstance(model, (str, Path)) and str(model).strip():
        return compile_network(load_model(model, variants=variants, drugs=drugs))
    raise InvalidArgument(f"model must be a bundled name such as 'default', a path, a ModelSpec or a Network, got "
                          f"{type(model).__name__} {model!r}"[:200])


def hours(value, *, what: str = "time") -> float:
    """'72 h', '3 day', '30 min' or a number of hours -> float hours (>= 0)."""
    h = convert(value, "h", what=what)
    if h < 0:
        raise UnitError(f"{what}: {value!r} is negative; times must be >= 0")
    return h


def model_time(network: Network, value, *, what: str = "time") -> float:
    """A time in the model's time unit: hours for her2sim models (:func:`hours`); for an imported
    SBML model numbers are its own time unit and '30 min'-style strings are converted to it
    (refused when the model's unit is undeclared)."""
    unit = network.spec.time_unit
    if unit == "h":
        return hours(value, what=what)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            q = parse_quantity(value, what=what)
            try:
                value = q.to(parse_unit(unit, what="model time unit")).magnitude
            except Exception:
                raise UnitError(f"{what}: {value!r} has a unit, but this model's time unit is {unit!r}; "
                                "give a plain number in the model's time unit") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise UnitError(f"{what}: expected a number or a time such as '72 h', got {value!r}")
    if value < 0:
        raise UnitError(f"{what}: {value!r} is negative; times must be >= 0")
    return float(value)


def dose_nM(network: Network, drug: str, dose) -> tuple[str, float]:
    """Resolve a drug name/alias and convert its dose to nM; returns (dose_parameter, nM)."""
    d = network.spec.drug(drug)
    if d.drug_class == "SBML input parameter":  # an imported model's parameter, in its own unit
        try:
            nm = float(dose)
        except (TypeError, ValueError):
            raise UnitError(f"dose of {drug}: {dose!r} is not a number; an SBML input parameter takes a plain "
                            "number in the parameter's own unit") from None
        if not np.isfinite(nm) or nm < 0:
            raise UnitError(f"dose of {drug}: {dose!r} is negative or not finite; doses must be >= 0")
        return d.dose_parameter, nm
    nm = convert(dose, "nM", what=f"dose of {drug}", molecular_weight=d.molecular_weight_g_per_mol)
    if not np.isfinite(nm) or nm < 0:
        raise UnitError(f"dose of {drug}: {dose!r} is negative or not finite; doses must be >= 0 (use 0 for no drug)")
    return d.dose_parameter, nm


def parameter_value(network: Network, name: str, value) -> float:
    """Convert a parameter override to internal units, checking the dimension."""
    spec = network.spec.parameter(name)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value) if isinstance(value, float) or abs(value) < 2**1000 else float("inf")
    else:
        q = parse_quantity(value, what=f"parameter {name}")
        # compare with the internal unit (a plain unit such as 'nM'): the written unit may carry a
        # scaling factor ('molecule / (2 pL)') that pint cannot parse as a Unit
        expected = parse_unit(spec.internal_unit, what=f"parameter {name}") if spec.internal_unit != "dimensionless" else None
        if expected is not None and q.dimensionality != expected.dimensionality:
            raise UnitError(f"parameter {name}: {value!r} does not have the dimension of {spec.internal_unit} "
                            f"(the model writes it as {spec.unit}); e.g. write '1 {spec.internal_unit}'")
        if expected is None and not q.dimensionless:
            raise UnitError(f"parameter {name} is dimensionless, got {value!r}")
        v = to_internal(q)
    if not np.isfinite(v) or v < 0:
        raise UnitError(f"parameter {name}: {value!r} must be finite and >= 0")
    return v


def make_condition(network: Network, drugs=None, parameters=None, events=()) -> Condition:
    doses = dict(dose_nM(network, k, v) for k, v in (drugs or {}).items())
    params = {k: parameter_value(network, k, v) for k, v in (parameters or {}).items()}
    evs = []
    for t, change in events:
        evs.append((model_time(network, t, what="event time"), dict(dose_nM(network, k, v) for k, v in change.items())))
    return Condition(doses, params, tuple(sorted(evs, key=lambda e: e[0])))


def _check_events(events, name: str = "events") -> list:
    """[(time, {drug: dose}), ...]: each a pair of a time and a mapping (checked before any work)."""
    if events is None:
        return []
    if isinstance(events, (str, bytes, Mapping)) or not hasattr(events, "__iter__"):
        raise InvalidArgument(f"{name} must be a list of (time, {{drug: dose}}) pairs, e.g. [('24 h', "
                              f"{{'lapatinib': 0}})], got {type(events).__name__}")
    out = []
    for k, e in enumerate(events):
        if isinstance(e, (str, bytes)) or not hasattr(e, "__len__") or len(e) != 2:
            raise InvalidArgument(f"{name}[{k}] must be a (time, {{drug: dose}}) pair, got {e!r}")
        check_time(e[0], f"{name}[{k}] time", positive=False)
        out.append((e[0], check_mapping(e[1], f"{name}[{k}] doses", "{'lapatinib': 0}")))
    return out


def _drug_names_in(drugs, events, conditions) -> list[str]:
    names = list((drugs or {}).keys())
    for _, change in events or ():
        names += list(change)
    for c in conditions or ():
        names += list((c.get("drugs") or {}).keys())
        for _, change in c.get("events", ()):
            names += list(change)
    return list(dict.fromkeys(names))


# ----------------------------------------------------------------------------- core integration
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


def simulate(model="default", *, drugs: Mapping[str, str | float] | None = None, variants: Sequence[str] = (),
             time: str | float = "72 h", t_eval: Sequence[float] | None = None,
             parameters: Mapping[str, str | float] | None = None, events: Sequence = (),
             conditions: Sequence[Mapping] | None = None, preequilibrate: bool | None = None,
             initial_state: np.ndarray | None = None,
             method: str = "auto", mode: str = "auto", rtol: float = 1e-6, atol: float = 1e-9,
             max_steps: int = DEFAULT_MAX_STEPS, rest_cache: RestCache | None = None) -> Result:
    """Simulate a model on the scipy path.

    Parameters
    ----------
    model : bundled name ("default"), path to a TOML model, ModelSpec or Network.
    drugs : {drug name or alias: dose}, doses like "1 uM", "2 ug/mL" (uses the drug's molecular
        weight) or numbers in nM; given at t = 0 after pre-equilibration.
    variants : variant/background names applied (only when ``model`` is a name or path).
    time : end time ("72 h", "3 day" or hours). t_eval : output times in hours (default: hourly).
        Imported SBML models use their own time unit (``spec.time_unit``) for numbers.
    parameters : {parameter: value} overrides, e.g. {"HRG": "1 nM"}; numbers are internal units.
    events : [(time, {drug: dose}), ...] piecewise-constant dose changes, e.g. a washout.
    conditions : list of {"drugs": ..., "parameters": ..., "events": ...} for a batch; each is
        combined with the shared ``drugs``/``parameters``. Failed members get ``Status.FAILED`` and a
        message (``Result.messages``).
    preequilibrate : integrate to steady state with all doses 0 before t = 0; None (default): the
        model's choice (``ModelSpec.preequilibrate``: True for her2sim models, False for imported
        SBML models, which start at t = 0 from their initial state as SBML prescribes).
    initial_state : (n_species,) or (C, n_species) state in nM to start from instead of the model's
        initial state ``network.initial_state(p)`` of each condition's parameters (pre-equilibration,
        if on, starts from it).
    method : "LSODA", "BDF", "Radau" or "auto" (LSODA per condition; BDF for block mode).
    mode : "loop", "block" (one block-diagonal solve_ivp call) or "auto" (block from
        ``BLOCK_MIN_CONDITIONS`` conditions on).
    rtol, atol : solver tolerances (atol in nM).
    max_steps : cap on right-hand-side evaluations per integration segment; a member that needs
        more is stopped and reported (raised for a single condition).
    rest_cache : a :class:`her2sim.experiments.RestCache` that keeps drug-free rest states between
        calls (keyed by the network's digest); None: computed afresh (once per distinct condition).

    Returns
    -------
    Result with time (T,) in h, species (C, T, n) in nM, observables (C, T, m).
    A single condition that fails raises IntegrationError.
    """
    method = check_choice(method, "method", METHODS + ("auto",))  # every argument before any work
    mode = check_choice(mode, "mode", ("auto", "loop", "block"))
    rtol, atol = check_tolerances(rtol, atol)
    max_steps = check_count(max_steps, "max_steps", fix="right-hand-side evaluations per segment, e.g. 200000")
    drugs = check_mapping(drugs, "drugs", "{'lapatinib': '1 uM'}")
    parameters = check_mapping(parameters, "parameters", "{'HRG': '1 nM'}")
    variants = check_names(variants, "variants", "['pik3ca_h1047r']")
    events = _check_events(events)
    conditions = check_conditions(conditions)
    if conditions is not None:
        conditions = [{"drugs": check_mapping(c.get("drugs"), f"conditions[{k}]['drugs']", "{'lapatinib': 1}"),
                       "parameters": check_mapping(c.get("parameters"), f"conditions[{k}]['parameters']",
                                                   "{'HRG': 1}"),
                       "events": _check_events(c.get("events", ()), f"conditions[{k}]['events']")}
                      for k, c in enumerate(conditions)]
    if rest_cache is not None and not isinstance(rest_cache, RestCache):
        raise InvalidArgument(f"rest_cache must be a her2sim.experiments.RestCache or None, got "
                              f"{type(rest_cache).__name__}")
    if preequilibrate is not None and not isinstance(preequilibrate, (bool, np.bool_)):
        raise InvalidArgument(f"preequilibrate must be True, False or None (the model's choice), got {preequilibrate!r}")
    check_time(time, "time")  # finite and > 0 whatever the model's time unit
    network = as_network(model, variants=variants, drugs=_drug_names_in(drugs, events, conditions))
    t_end = model_time(network, time, what="time")  # hours, or an imported SBML model's own time unit
    if t_end <= 0:
        raise QuantityRangeError(f"time must be > 0, got {time!r}")
    if t_eval is not None:
        try:
            grid = np.asarray(t_eval, dtype=float)
        except (TypeError, ValueError, OverflowError):
            raise InvalidArgument(f"t_eval must be a 1-D array of times, got {type(t_eval).__name__}") from None
        if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(np.diff(grid) <= 0) \
                or grid[0] < 0 or grid[-1] > t_end + 1e-12:
            raise InvalidArgument(f"t_eval must be increasing times within [0, {t_end:g}]")
    else:
        grid = np.linspace(0.0, t_end, int(min(t_end, 1000)) + 1)
    n_cond = len(conditions) if conditions is not None else 1
    per_point = network.n_species + network.n_params + len(network.observable_names)  # states, doses, readouts
    check_size(n_cond * len(grid) * per_point, "the output (conditions x times x (species + parameters + "
               "observables))",
               MAX_OUTPUT_BYTES // 8, "use fewer output times (t_eval) or split the conditions over several "
               "calls, or run them as a sweep (her2sim sweep), which writes chunk by chunk", bytes_each=8)
    base = make_condition(network, drugs, parameters, events)
    specs = conditions if conditions is not None else [{}]
    conds = []
    for c in specs:
        extra = make_condition(network, c.get("drugs"), c.get("parameters"), c.get("events", ()))
        conds.append(Condition({**base.doses, **extra.doses}, {**base.parameters, **extra.parameters},
                               tuple(sorted(base.events + extra.events, key=lambda e: e[0]))))
    single = conditions is None
    use_block = mode == "block" or (mode == "auto" and len(conds) >= BLOCK_MIN_CONDITIONS)
    chosen = method if method != "auto" else ("BDF" if use_block else "LSODA")

    if preequilibrate is None:
        preequilibrate = network.spec.preequilibrate
    P = np.array([network.parameters_with(c.parameters) for c in conds])
    X0 = network.initial_state(P)
    if initial_state is not None:
        given = np.asarray(initial_state, dtype=float)
        if given.shape not in ((network.n_species,), (len(conds), network.n_species)):
            raise InvalidArgument(f"initial_state must have shape ({network.n_species},) or ({len(conds)}, "
                             f"{network.n_species}), got {given.shape}")
        if not network.spec.nonnegative:  # imported SBML models: states may be negative
            if not np.all(np.isfinite(given)):
                raise InvalidArgument("initial_state must be finite")
            X0 = np.array(np.broadcast_to(given, X0.shape))
        else:
            if not np.all(np.isfinite(given)) or np.any(given < -1e-6):
                raise InvalidArgument("initial_state must be finite and >= 0 (amounts in nM)")
            X0 = np.maximum(np.broadcast_to(given, X0.shape), 0.0)  # round-off below zero from a solve
    status = [StatusMessage(Status.OK) for _ in conds]
    if preequilibrate:
        X0 = preequilibrate_all(network, X0, P, status, single, rest_cache)
    out, P_t, use_block = integrate_conditions(network, X0, P, conds, grid, t_end=t_end, method=chosen,
                                               block=use_block, rtol=rtol, atol=atol, max_steps=max_steps,
                                               status=status, single=single)
    obs = network.observables(out.reshape(-1, network.n_species), P_t.reshape(out.shape[0] * out.shape[1], network.n_params))
    obs = obs.reshape(len(conds), len(grid), -1)
    labels = tuple({**c.doses, **c.parameters} for c in conds)
    return Result(grid, out, obs, network.species_names, network.observable_names, network.observable_units,
                  labels, tuple(status),
                  {"model": network.spec.name, "variants": ",".join(v.name for v in network.spec.variants),
                   "solver_method": chosen, "solver_mode": "block" if use_block else "loop", "rtol": rtol, "atol": atol,
                   "time_unit": network.spec.time_unit, "concentration_unit": "nM"}, network.species_units)


def integrate_conditions(network: Network, X0: np.ndarray, P: np.ndarray, conds: Sequence[Condition],
                         grid: np.ndarray, *, t_end: float | None = None, method: str = "LSODA", block: bool = False,
                         rtol: float = 1e-6, atol: float = 1e-9, max_steps: int = DEFAULT_MAX_STEPS,
                         status: list | None = None, single: bool = False):
    """The scipy engine: integrate conditions from their states ``X0`` (C, n) with parameters ``P``
    (C, n_params; overrides, doses from ``conds``) over ``grid`` (T,) up to ``t_end`` (default grid[-1]).

    ``block``: one block-diagonal solve (conditions sharing a dose schedule; falls back to one at a
    time to find failing members). ``status``: per-condition :class:`~her2sim.status.StatusMessage`
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
    same_schedule = all(c.events == conds[0].events and set(c.doses) == set(conds[0].doses) for c in conds)
    if use_block and same_schedule and len(conds) > 1:
        ok = [i for i, s in enumerate(status) if s.is_successful]
        try:
            out[ok] = _run_schedule_block(network, X0[ok], P[ok], [conds[i] for i in ok], grid, t_end, method, rtol,
                                          atol, max_steps)
        except IntegrationError:
            use_block = False  # find the failing members one by one
    if not (use_block and same_schedule and len(conds) > 1):
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
