"""``simulate()``: user input (names, doses with units, conditions) -> one engine -> a :class:`Result`.

Cells are pre-equilibrated to a steady state with every drug dose at zero; doses then change
piecewise-constantly at event times. The integration runs on either engine behind
:func:`her2sim.solvers.engines.integrate`: scipy's ``solve_ivp`` (:mod:`her2sim.solvers.scipy_engine`; one condition
at a time, ``mode="loop"``, or one block-diagonal system, ``mode="block"``; it restarts at each
event) or the batch Rosenbrock integrator (:mod:`her2sim.solvers.batch`). The scipy engine's functions
(``steady_state``, ``integrate_conditions``, ...) stay importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from .batch import TABLEAUS, breakpoints_from_conditions
from .engines import ENGINES, SolverOptions, integrate
from ..errors import IntegrationError, InvalidArgument, QuantityRangeError, UnitError
from ..experiments.cache import RestCache
from ..experiments.condition import Condition, dosed, doses_at, input_free, same_schedule
from ..model.load import load_model
from ..model.network import Network, compile_network
from .result import Result
from ..model.spec import ModelSpec
from .scipy_engine import (DEFAULT_MAX_STEPS, METHODS, cached_steady_state, integrate_conditions, model_event_times,
                           preequilibrate_all, relative_drift, steady_state)
from .status import Status, StatusMessage
from ..model.units import convert, parse_quantity, parse_unit, to_internal
from ..validate import (MAX_OUTPUT_BYTES, check_choice, check_conditions, check_count, check_mapping, check_names,
                       check_size, check_time, check_tolerances)

__all__ = ["Condition", "DEFAULT_MAX_STEPS", "METHODS", "as_network", "cached_steady_state", "dose_nM", "dosed", "doses_at", "hours", "input_free",
           "integrate_conditions", "make_condition", "model_event_times", "model_time", "parameter_value", "preequilibrate_all",
           "relative_drift", "simulate", "steady_state"]

#: block mode pays off from this many conditions on: measured crossover on the default model
#: (benchmarks/bench_scipy_modes.py --crossover: block/loop 0.9 at 8, 1.5 at 16, 4.0 at 64 conditions)
BLOCK_MIN_CONDITIONS = 16


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


def simulate(model="default", *, drugs: Mapping[str, str | float] | None = None, variants: Sequence[str] = (),
             time: str | float = "72 h", t_eval: Sequence[float] | None = None,
             parameters: Mapping[str, str | float] | None = None, events: Sequence = (),
             conditions: Sequence[Mapping] | None = None, preequilibrate: bool | None = None,
             initial_state: np.ndarray | None = None,
             method: str = "auto", mode: str = "auto", rtol: float = 1e-6, atol: float = 1e-9,
             max_steps: int = DEFAULT_MAX_STEPS, rest_cache: RestCache | None = None,
             engine: str = "scipy") -> Result:
    """Simulate a model on the scipy engine (default) or the batch integrator.

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
        combined with the shared ``drugs``/``parameters``. A failed member gets a failing
        :class:`~her2sim.solvers.status.Status` and a message (``Result.messages``).
    preequilibrate : integrate to steady state with all doses 0 before t = 0; None (default): the
        model's choice (``ModelSpec.preequilibrate``: True for her2sim models, False for imported
        SBML models, which start at t = 0 from their initial state as SBML prescribes).
    initial_state : (n_species,) or (C, n_species) state in nM to start from instead of the model's
        initial state ``network.initial_state(p)`` of each condition's parameters (pre-equilibration,
        if on, starts from it).
    method : scipy: "LSODA", "BDF", "Radau" or "auto" (LSODA per condition; BDF for block mode);
        batch: "rodas4", "rodas5p" or "auto" (:func:`her2sim.solvers.batch.auto_method`).
    mode : scipy only: "loop", "block" (one block-diagonal solve_ivp call) or "auto" (block from
        ``BLOCK_MIN_CONDITIONS`` conditions on).
    rtol, atol : solver tolerances (atol in nM).
    max_steps : scipy: cap on right-hand-side evaluations per integration segment; batch: steps per
        member. A member that needs more is stopped and reported (raised for a single condition).
    engine : "scipy" or "batch" (the NumPy Rosenbrock integrator, :mod:`her2sim.solvers.batch`); both run
        behind :func:`her2sim.solvers.engines.integrate`. Pre-equilibration runs on scipy for both.
    rest_cache : a :class:`her2sim.experiments.RestCache` that keeps drug-free rest states between
        calls (keyed by the network's digest); None: computed afresh (once per distinct condition).

    Returns
    -------
    Result with time (T,) in h, species (C, T, n) in nM, observables (C, T, m).
    A single condition that fails raises IntegrationError.
    """
    engine = check_choice(engine, "engine", ENGINES)  # every argument before any work
    method = check_choice(method, "method", METHODS + ("auto",) if engine == "scipy" else ("auto", *TABLEAUS))
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
    if engine == "scipy":
        chosen = method if method != "auto" else ("BDF" if use_block else "LSODA")
    else:
        chosen = method

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
    out = np.full((len(conds), len(grid), network.n_species), np.nan)
    P_t = np.empty((len(conds), len(grid), network.n_params))  # parameters (doses) in force at each output time
    live = [i for i, s in enumerate(status) if s.is_successful]
    for i in set(range(len(conds))) - set(live):  # members that failed before dosing
        P_t[i] = [dosed(network, P[i], doses_at(conds[i], t)) for t in grid]
    if live:
        # the integration runs to t_end even when the last output time is earlier
        run_grid = grid if grid[-1] >= t_end else np.append(grid, t_end)
        P_dosed, bps = breakpoints_from_conditions(network, [conds[i] for i in live])
        # block mode for conditions with one dose schedule (the scipy engine sees only parameters)
        block = use_block and same_schedule(conds) if engine == "scipy" else None
        options = SolverOptions(engine, chosen, rtol, atol, max_steps, block)
        run = integrate(network, X0[live], P_dosed, run_grid, bps or None, options)
        if single and not run.ok[0]:
            raise IntegrationError(run.messages[0])
        out[live], P_t[live] = run.states[:, :len(grid)], run.parameters[:, :len(grid)]
        for k, i in enumerate(live):
            status[i] = run.status_messages()[k]
        use_block = run.attrs.get("block", use_block)
    obs = network.observables(out.reshape(-1, network.n_species), P_t.reshape(out.shape[0] * out.shape[1], network.n_params))
    obs = obs.reshape(len(conds), len(grid), -1)
    labels = tuple({**c.doses, **c.parameters} for c in conds)
    return Result(grid, out, obs, network.species_names, network.observable_names, network.observable_units,
                  labels, tuple(status),
                  {"model": network.spec.name, "variants": ",".join(v.name for v in network.spec.variants),
                   "solver_engine": engine, "solver_method": chosen,
                   "solver_mode": "batch" if engine == "batch" else "block" if use_block else "loop", "rtol": rtol, "atol": atol,
                   "time_unit": network.spec.time_unit, "concentration_unit": "nM"}, network.species_units)
