"""Compile a :class:`ModelSpec` into vectorised rate, right-hand-side and Jacobian functions.

Both solver paths (scipy in :mod:`her2sim.solvers.solve`, NumPy batch in :mod:`her2sim.solvers.batch`) see only a
:class:`Network`. Shapes: states ``x`` (B, n_species) and parameters ``p`` (B, n_params); every
function evaluates the whole batch with one NumPy call per expression node, no loop over members.

Named expressions are evaluated once per call as intermediate rows, and the analytic Jacobian is
built by forward-mode chain rule through them: dv/dx_j = dv/dx_j|direct + sum_e dv/de * de/dx_j.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Mapping, Sequence

import numpy as np

from . import expr as ex
from .codegen import Dag
from ..errors import InvalidArgument, UnknownNameError
from .spec import ModelSpec


#: the Network's array attributes, read-only after construction
_ARRAYS = ("stoichiometry", "x0", "p0", "jac_rows", "jac_cols", "conservation_laws", "preequilibrate_mask")


def _set(obj, name: str, value) -> None:
    """Assign during construction of a frozen Network (the only place anything is written)."""
    object.__setattr__(obj, name, value)


def _dname(expr_name: str, species: str) -> str:
    # '__' cannot appear in names from files (the parser rejects it), so these never collide
    return f"d__{expr_name}__{species}"


@dataclass
class _Compiled:
    """Evaluators synthesised from the spec; rebuilt after unpickling (functions do not pickle)."""

    rates_array: Callable
    rates_scalar: Callable
    rhs_array: Callable
    rhs_scalar: Callable
    jac_array: Callable
    jac_scalar: Callable
    observables_array: Callable
    initial_array: Callable
    event_times_array: Callable
    event_values: tuple
    dag: Dag            # kept for evaluators of other array namespaces (array_api_functions)
    rhs_ids: tuple
    jac_ids: tuple


@dataclass(eq=False, frozen=True)
class Network:
    """A compiled reaction network (internal units: nM, h); frozen: no attribute can be set after
    construction and its arrays are read-only.

    Attributes
    ----------
    spec : the ModelSpec it was compiled from.
    species_names, parameter_names, observable_names, reaction_names : tuples of str.
    stoichiometry : (n_species, n_reactions) float array N, with dx/dt = N @ v(x, p).
    x0 : (n_species,) initial state in nM (``initial_state(p0)``).  p0 : (n_params,) parameter values.
    observable_units, species_units : reported unit per observable / species ('dimensionless' for
    relative counts such as viable_cells, which are integrated as nM).
    jac_rows, jac_cols : structural non-zeros of the Jacobian d(dx/dt)/dx.
    conservation_laws : (n_laws, n_species) integer matrix C with C @ N = 0.
    preequilibrate_mask : (n_species,) 1.0 where the species evolves during pre-equilibration.
    time_index : index of the model-time state (imported SBML models that use ``time``) or None;
        results report it exactly as the output time.
    """

    spec: ModelSpec
    species_names: tuple = field(init=False)
    parameter_names: tuple = field(init=False)
    observable_names: tuple = field(init=False)
    reaction_names: tuple = field(init=False)
    stoichiometry: np.ndarray = field(init=False, repr=False)
    x0: np.ndarray = field(init=False, repr=False)
    p0: np.ndarray = field(init=False, repr=False)
    jac_rows: np.ndarray = field(init=False, repr=False)
    jac_cols: np.ndarray = field(init=False, repr=False)
    conservation_laws: np.ndarray = field(init=False, repr=False)
    preequilibrate_mask: np.ndarray = field(init=False, repr=False)
    observable_units: tuple = field(init=False, repr=False)
    species_units: tuple = field(init=False, repr=False)

    def __post_init__(self) -> None:
        spec = self.spec
        _set(self, "species_names", spec.species_names)
        _set(self, "parameter_names", spec.parameter_names)
        _set(self, "observable_names", spec.observable_names)
        _set(self, "observable_units", tuple(o.unit for o in spec.observables))
        _set(self, "species_units", tuple(s.unit for s in spec.species))
        _set(self, "reaction_names", tuple(r.name for r in spec.reactions))
        n, R = len(self.species_names), len(spec.reactions)
        sidx = {s: i for i, s in enumerate(self.species_names)}
        N = np.zeros((n, R))
        for r, rx in enumerate(spec.reactions):
            for s, c in rx.reactants:
                N[sidx[s], r] -= c
            for s, c in rx.products:
                N[sidx[s], r] += c
        _set(self, "stoichiometry", N)
        _set(self, "p0", np.array([p.value for p in spec.parameters], dtype=float))
        #: index of the model-time state (SBML ``time``; d/dt = 1 from 0) or None
        _set(self, "time_index", next((i for i, s in enumerate(spec.species) if s.quantity == "time"), None))
        _set(self, "preequilibrate_mask", np.array([1.0 if s.preequilibrate else 0.0 for s in spec.species]))
        _set(self, "conservation_laws", conservation_laws(N))
        self._build()
        _set(self, "x0", np.array([s.initial for s in spec.species], dtype=float))
        if any(s.initial_expr is not None for s in spec.species):
            _set(self, "x0", self.initial_state(self.p0))
        for name in _ARRAYS:  # frozen all the way down: callers copy before they change a row
            getattr(self, name).setflags(write=False)

    # -- compilation ---------------------------------------------------------------------
    def _build(self) -> None:
        spec = self.spec
        species = list(self.species_names)
        species_set = set(species)
        sidx = {s: i for i, s in enumerate(species)}
        pidx = {p: j for j, p in enumerate(self.parameter_names)}
        dag = Dag(sidx, pidx)
        env: dict[str, int] = {}
        expr_species: dict[str, set] = {}
        for e in spec.expressions:  # topological order (load.py)
            node = ex.simplify(ex.expand(e.node))
            deps = ex.free_names(node)
            expr_species[e.name] = (deps & species_set).union(*(expr_species[d] for d in deps if d in expr_species))
            env[e.name] = dag.intern(node, env)
            for s in sorted(expr_species[e.name], key=sidx.get):
                env[_dname(e.name, s)] = dag.intern(self._total_derivative(node, s, expr_species), env)
        rate_ids, entries = [], []  # entries: (reaction, species index, dag id)
        for r, rx in enumerate(spec.reactions):
            node = ex.simplify(ex.expand(rx.rate))
            rate_ids.append(dag.intern(node, env))
            deps = ex.free_names(node)
            sp_deps = (deps & species_set).union(*(expr_species[d] for d in deps if d in expr_species))
            for s in sorted(sp_deps, key=sidx.get):
                d = self._total_derivative(node, s, expr_species)
                if d != ex.ZERO:
                    entries.append((r, sidx[s], dag.intern(d, env)))
        obs_ids = [dag.intern(ex.simplify(ex.expand(o.node)), env) for o in spec.observables]
        # dx/dt = N v and J[i, j] = sum_r N[i, r] dv_r/dx_j are folded into the generated code
        N = self.stoichiometry
        rhs_ids = [dag.linear_combination([(N[i, r], rate_ids[r]) for r in np.nonzero(N[i])[0]])
                   for i in range(len(species))]
        pairs: dict[tuple[int, int], list] = {}
        for r, j, k in entries:
            for i in np.nonzero(N[:, r])[0]:
                pairs.setdefault((int(i), int(j)), []).append((N[i, r], k))
        jac_ids = [dag.linear_combination(terms) for terms in pairs.values()]
        _set(self, "jac_rows", np.array([i for i, _ in pairs], dtype=int))
        _set(self, "jac_cols", np.array([j for _, j in pairs], dtype=int))
        _set(self, "_eval", _Compiled(
            rates_array=dag.function(rate_ids, "array"),
            rates_scalar=dag.function(rate_ids, "scalar"),
            rhs_array=dag.function(rhs_ids, "array", into=True),
            rhs_scalar=dag.function(rhs_ids, "scalar"),
            jac_array=dag.function(jac_ids, "array", into=True),
            jac_scalar=dag.function(jac_ids, "scalar"),
            observables_array=dag.function(obs_ids, "array", into=True),
            initial_array=self._initial_function(pidx),
            event_times_array=self._event_time_function(pidx),
            event_values=tuple(tuple(ex.compile_expr(ex.simplify(ex.expand(node)), sidx, pidx)
                                     for _, node in e.assignments) for e in spec.events),
            dag=dag, rhs_ids=tuple(rhs_ids), jac_ids=tuple(jac_ids),
        ))
        _set(self, "_event_targets", tuple(tuple(("x", sidx[t]) if t in sidx else ("p", pidx[t])
                                                  for t, _ in e.assignments) for e in spec.events))
        _set(self, "dag_size", len(dag.nodes))

    def _initial_function(self, pidx: Mapping[str, int]) -> Callable:
        """``f(x, p, out)`` filling (n_species, B) initial states from parameter rows (no species)."""
        dag = Dag({}, pidx)
        ids = [dag.intern(ex.simplify(ex.expand(s.initial_expr)) if s.initial_expr is not None else ex.Num(s.initial))
               for s in self.spec.species]
        return dag.function(ids, "array", into=True)

    def _event_time_function(self, pidx: Mapping[str, int]) -> Callable:
        dag = Dag({}, pidx)
        ids = [dag.intern(ex.simplify(ex.expand(e.time))) for e in self.spec.events]
        return dag.function(ids, "array", into=True)

    @property
    def event_names(self) -> tuple:
        return tuple(e.name for e in self.spec.events)

    @property
    def event_strict(self) -> tuple:
        """Per timed event: True when it fires just after its time (output at that time precedes it)."""
        return tuple(e.strict for e in self.spec.events)

    def event_times(self, p) -> np.ndarray:
        """Times of the model's timed events: (n_params,) -> (K,), (B, n_params) -> (B, K)."""
        p = np.asarray(p, dtype=float)
        p2 = p[None, :] if p.ndim == 1 else p
        out = self._eval.event_times_array([], np.ascontiguousarray(p2.T), np.empty((len(self.spec.events), p2.shape[0])))
        return out[:, 0].copy() if p.ndim == 1 else out.T.copy()

    def apply_events(self, events, x, p) -> tuple[np.ndarray, np.ndarray]:
        """Apply the timed events ``events`` (indices) that fire together: every value is computed
        from ``x`` (B, n_species) and ``p`` (B, n_params) before any is assigned. Returns new arrays."""
        x2, p2 = np.array(x, dtype=float, ndmin=2), np.array(p, dtype=float, ndmin=2)
        xT, pT = np.ascontiguousarray(x2.T), np.ascontiguousarray(p2.T)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            values = [(kind, i, np.broadcast_to(f(xT, pT), (x2.shape[0],)).copy())
                      for k in events for (kind, i), f in zip(self._event_targets[k], self._eval.event_values[k])]
        for kind, i, v in values:
            (x2 if kind == "x" else p2)[:, i] = v
        return x2, p2

    def initial_state(self, p) -> np.ndarray:
        """Initial state for parameters ``p``: (n_params,) -> (n_species,), (B, n_params) -> (B, n_species).

        Species whose ``initial_expr`` depends on parameters (SBML initial assignments, amounts
        divided by a compartment size) follow ``p``; the others are their fixed ``initial``.
        """
        p = np.asarray(p, dtype=float)
        p2 = p[None, :] if p.ndim == 1 else p
        if p2.ndim != 2 or p2.shape[1] != self.n_params:
            raise InvalidArgument(f"parameters must have shape ({self.n_params},) or (B, {self.n_params}); got {p.shape}")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = self._eval.initial_array([], np.ascontiguousarray(p2.T), np.empty((self.n_species, p2.shape[0])))
        return out[:, 0].copy() if p.ndim == 1 else out.T.copy()

    @staticmethod
    def _total_derivative(node, s: str, expr_species: Mapping[str, set]):
        total = ex.diff(node, s)
        for e in sorted(ex.free_names(node)):
            if e in expr_species and s in expr_species[e]:
                total = ex.Bin("+", total, ex.Bin("*", ex.diff(node, e), ex.Sym(_dname(e, s))))
        return ex.simplify(total)

    def __getstate__(self):
        state = self.__dict__.copy()
        for key in ("_eval",):
            state.pop(key, None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)  # unpickling fills a fresh object; nothing else writes into it
        self._build()
        for name in _ARRAYS:
            getattr(self, name).setflags(write=False)

    # -- evaluation -------------------------------------------------------------------------
    @property
    def n_species(self) -> int:
        return len(self.species_names)

    @property
    def n_params(self) -> int:
        return len(self.parameter_names)

    def _prepare(self, x, p):
        x = np.asarray(x, dtype=float)
        p = np.asarray(p, dtype=float)
        x2 = x[None, :] if x.ndim == 1 else x
        B = x2.shape[0]
        p2 = np.broadcast_to(p, (B, self.n_params)) if p.ndim == 1 else p
        if x2.ndim != 2 or x2.shape[1] != self.n_species or p2.shape != (B, self.n_params):
            raise InvalidArgument(
                f"state must have shape (B, {self.n_species}) and parameters (B, {self.n_params}); "
                f"got {x.shape} and {p.shape}"
            )
        return x2, p2, x.ndim == 1

    @staticmethod
    def _stack(values: tuple, B: int) -> np.ndarray:
        out = np.empty((len(values), B))
        for k, v in enumerate(values):
            out[k] = v
        return out

    def _scalar(self, scalar_fn, x2, p2):
        """Outputs for one member as a (K,) array, or None after a division by zero (then the
        NumPy evaluator gives inf/nan like any batch)."""
        try:
            return np.array(scalar_fn(x2[0].tolist(), p2[0].tolist()), dtype=float)
        except (ZeroDivisionError, OverflowError):
            return None

    def rates(self, x, p) -> np.ndarray:
        """Reaction rates v, shape (B, n_reactions) in nM/h (or (n_reactions,) for 1-D x)."""
        x2, p2, flat = self._prepare(x, p)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            v = self._stack(self._eval.rates_array(np.ascontiguousarray(x2.T), np.ascontiguousarray(p2.T)),
                            x2.shape[0]).T
        return v[0] if flat else v

    def rhs(self, x, p) -> np.ndarray:
        """dx/dt = N v(x, p), shape like ``x`` (nM/h)."""
        x2, p2, flat = self._prepare(x, p)
        if x2.shape[0] == 1:
            dx = self._scalar(self._eval.rhs_scalar, x2, p2)
            if dx is not None:
                return dx if flat else dx[None, :]
        dx = self.rhs_T(np.ascontiguousarray(x2.T), np.ascontiguousarray(p2.T)).T
        return dx[0] if flat else dx

    def rhs_T(self, xT: np.ndarray, pT: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Column layout for batch integrators: xT (n_species, B), pT (n_params, B) -> (n_species, B)."""
        out = np.empty((self.n_species, xT.shape[1])) if out is None else out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._eval.rhs_array(xT, pT, out)

    def jacobian_values(self, x, p) -> np.ndarray:
        """Jacobian entries at (jac_rows, jac_cols), shape (B, nnz) (1/h)."""
        x2, p2, flat = self._prepare(x, p)
        if x2.shape[0] == 1:
            vals = self._scalar(self._eval.jac_scalar, x2, p2)
            if vals is not None:
                return vals if flat else vals[None, :]
        vals = self.jacobian_values_T(np.ascontiguousarray(x2.T), np.ascontiguousarray(p2.T)).T
        return vals[0] if flat else vals

    def jacobian_values_T(self, xT: np.ndarray, pT: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Column layout: xT (n_species, B), pT (n_params, B) -> (nnz, B) Jacobian values."""
        out = np.empty((len(self.jac_rows), xT.shape[1])) if out is None else out
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            return self._eval.jac_array(xT, pT, out)

    def array_api_functions(self, xp) -> tuple[Callable, Callable]:
        """``(rhs, jac)`` for array namespace ``xp`` (built on each call, a few ms): ``rhs(xT, pT,
        out)`` fills out (n_species, B) with dx/dt and ``jac(xT, pT, out)`` fills out (nnz, B) with
        the Jacobian values, xT (n_species, B), pT (n_params, B), using only array-API calls."""
        ev = self._eval
        return (ev.dag.function(ev.rhs_ids, "array-api", into=True, xp=xp),
                ev.dag.function(ev.jac_ids, "array-api", into=True, xp=xp))

    def expression_dag(self) -> tuple[Dag, tuple, tuple]:
        """``(dag, rhs_ids, jac_ids)``: the interned expression DAG of this network and the node ids
        of dx/dt (n_species) and of the Jacobian values (at jac_rows, jac_cols), for other code
        generators (:mod:`her2sim.solvers.codegen_c`). Read it only."""
        ev = self._eval
        return ev.dag, ev.rhs_ids, ev.jac_ids

    def jacobian(self, x, p) -> np.ndarray:
        """Dense Jacobian d(dx/dt)/dx, shape (B, n, n) (or (n, n) for 1-D x)."""
        vals = self.jacobian_values(x, p)
        flat = vals.ndim == 1
        vals = vals[None, :] if flat else vals
        J = np.zeros((vals.shape[0], self.n_species, self.n_species))
        J[:, self.jac_rows, self.jac_cols] = vals
        return J[0] if flat else J

    def observables(self, x, p) -> np.ndarray:
        """Observable values, shape (B, n_observables), in the units of ``observable_units``."""
        x2, p2, flat = self._prepare(x, p)
        if not self.observable_names:
            out = np.zeros((0, x2.shape[0]))
        else:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # 0/0 fractions are NaN
                out = self._eval.observables_array(np.ascontiguousarray(x2.T), np.ascontiguousarray(p2.T),
                                                   np.empty((len(self.observable_names), x2.shape[0])))
        return out[:, 0] if flat else out.T

    # -- parameters ----------------------------------------------------------------------------
    def parameter_index(self, name: str) -> int:
        try:
            return self.parameter_names.index(name)
        except ValueError:
            raise UnknownNameError("parameter", name, self.parameter_names) from None

    def species_index(self, name: str) -> int:
        try:
            return self.species_names.index(name)
        except ValueError:
            raise UnknownNameError("species", name, self.species_names) from None

    def observable_index(self, name: str) -> int:
        try:
            return self.observable_names.index(name)
        except ValueError:
            raise UnknownNameError("observable", name, self.observable_names + self.species_names,
                                   fix="List them with `her2sim models --observables`.") from None

    def parameters_with(self, overrides: Mapping[str, float] | None = None) -> np.ndarray:
        """Copy of p0 with ``{name: internal value}`` overrides applied."""
        p = self.p0.copy()
        for name, value in (overrides or {}).items():
            p[self.parameter_index(name)] = value
        return p


def compile_network(spec: ModelSpec) -> Network:
    """Compile a validated ModelSpec (see :func:`her2sim.model.load.load_model`)."""
    return Network(spec)


def conservation_laws(N: np.ndarray) -> np.ndarray:
    """Integer basis of the left null space of N (rows c with c @ N = 0), by exact elimination."""
    n, R = N.shape
    if n == 0:
        return np.zeros((0, 0), dtype=int)
    # sparse exact Gauss-Jordan elimination (rows: reactions); the reduced row echelon form is unique,
    # so the basis is the same as from dense elimination, at a fraction of the cost for large networks
    rows = [{j: Fraction(v).limit_denominator(10**6) for j, v in enumerate(col) if v != 0} for col in N.T.tolist()]
    col_rows: dict[int, set] = {}
    for i, row in enumerate(rows):
        for j in row:
            col_rows.setdefault(j, set()).add(i)
    used: set = set()
    pivot_row: dict[int, int] = {}
    for c in range(n):
        candidates = [i for i in col_rows.get(c, ()) if i not in used]
        if not candidates:
            continue
        i = min(candidates)
        inv = 1 / rows[i][c]
        row = rows[i] = {k: v * inv for k, v in rows[i].items()}
        for other in list(col_rows[c]):
            if other == i:
                continue
            o, f = rows[other], rows[other][c]
            for k, v in row.items():
                nv = o.get(k, 0) - f * v
                if nv == 0:
                    o.pop(k, None)
                    col_rows[k].discard(other)
                else:
                    if k not in o:
                        col_rows.setdefault(k, set()).add(other)
                    o[k] = nv
        used.add(i)
        pivot_row[c] = i
    free = [c for c in range(n) if c not in pivot_row]
    pivots = list(pivot_row)
    A = [rows[pivot_row[c]] for c in pivots]
    basis = []
    for fcol in free:
        vec = [Fraction(0)] * n
        vec[fcol] = Fraction(1)
        for row, pc in enumerate(pivots):
            vec[pc] = -A[row].get(fcol, Fraction(0))
        denom = np.lcm.reduce([v.denominator for v in vec])
        ints = np.array([int(v * denom) for v in vec])
        g = np.gcd.reduce(np.abs(ints[ints != 0])) if np.any(ints) else 1
        ints = ints // g
        if ints[ints != 0][0] < 0:
            ints = -ints
        basis.append(ints)
    return np.array(basis, dtype=int).reshape(len(basis), n)


def conserved_totals(network: Network, x: np.ndarray) -> np.ndarray:
    """Values of each conservation law, shape (..., n_laws)."""
    return np.asarray(x) @ network.conservation_laws.T.astype(float)


def describe_conservation(network: Network) -> list[str]:
    """Readable form of each conservation law, e.g. 'HER2 + HER2_HER3 = const'."""
    out = []
    for row in network.conservation_laws:
        terms = []
        for i, c in enumerate(row):
            if c:
                coeff = "" if abs(c) == 1 else f"{abs(c)} "
                sign = "-" if c < 0 else "+"
                terms.append(f"{sign} {coeff}{network.species_names[i]}")
        text = " ".join(terms)
        out.append((text[2:] if text.startswith("+ ") else text) + " = const")
    return out


def select_columns(names: Sequence[str], network: Network) -> list[tuple[str, int]]:
    """Resolve observable or species names to ('observable'|'species', index)."""
    out = []
    for name in names:
        if name in network.observable_names:
            out.append(("observable", network.observable_names.index(name)))
        elif name in network.species_names:
            out.append(("species", network.species_names.index(name)))
        else:
            network.observable_index(name)  # raises with hint
    return out
