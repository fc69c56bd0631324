"""The PEtab objective: negative log-likelihood (+ priors), residuals and their derivatives.

Everything is evaluated for a *batch* of parameter vectors at once: ``K`` vectors times ``C``
simulation conditions become one call of :func:`her2sim.solvers.batch.simulate_batch` (``K*C`` members),
so a finite-difference gradient (``2n`` perturbations) or several optimiser starts cost one
integrator call. ``method="scipy"`` integrates each member with ``scipy.integrate.solve_ivp``
(Radau, analytic Jacobian) instead: the tight-tolerance reference.

Conventions: ``theta`` is the full vector of parameter-table values on the linear scale, shape
(K, n_parameters); ``x`` is the vector of *estimated* parameters on their parameter scale, shape
(K, n_free) (or (n_free,)). Simulation conditions are the unique (preequilibration, simulation)
pairs of the measurement table.

Pre-equilibration and ``time = inf`` measurements integrate to ``T_STEADY`` and require
``max_i |dx_i/dt| / (atol + rtol_ss |x_i|) < 1`` there (otherwise the member fails).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from ..model import expr as ex
from ..solvers.batch import simulate_batch
from ..solvers.ckernels import KernelCache
from ..model.network import compile_network
from . import noise
from .problem import PetabError, PetabProblem, from_scale, placeholder_names, to_scale

T_STEADY = 1e8
RTOL_STEADY = 1e-6
#: offset of the sigma residuals ``sqrt(2 log sigma + SIGMA_OFFSET)`` (valid for sigma > 1e-12)
SIGMA_OFFSET = 2.0 * np.log(1e12)


@dataclass(frozen=True)
class Evaluation:
    """Outputs for K parameter vectors.

    simulated, sigma : (K, M) observable values and noise parameters per measurement row.
    nllh_data : (K,) data part of the negative log-likelihood; prior : (K,) prior part.
    ok : (K,) all conditions simulated; message : (K,) first failure message or ''.
    """

    simulated: np.ndarray
    sigma: np.ndarray
    nllh_data: np.ndarray
    prior: np.ndarray
    ok: np.ndarray
    message: tuple

    @property
    def nllh(self) -> np.ndarray:
        """(K,) negative log-likelihood plus priors (inf where a simulation failed)."""
        return np.where(self.ok, self.nllh_data + self.prior, np.inf)

    @property
    def llh(self) -> np.ndarray:
        """(K,) log-likelihood of the data (no priors)."""
        return np.where(self.ok, -self.nllh_data, -np.inf)


def _walk(node):
    """Every node of an expression tree (depth first)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if isinstance(n, ex.Bin) or isinstance(n, ex.Cmp):
            stack += [n.left, n.right]
        elif isinstance(n, ex.Neg):
            stack.append(n.arg)
        elif isinstance(n, ex.Call):
            stack += list(n.args)
        elif isinstance(n, ex.Select):
            stack += [n.a, n.b, n.if_less, n.otherwise]
        elif isinstance(n, ex.Piecewise):
            stack += [v for pair in n.pieces for v in pair] + [n.otherwise]


def _rebuild(node, mapping: dict):
    """``node`` with every subtree found in ``mapping`` replaced."""
    if node in mapping:
        return mapping[node]
    if isinstance(node, (ex.Num, ex.Sym)):
        return node
    if isinstance(node, ex.Bin):
        return ex.Bin(node.op, _rebuild(node.left, mapping), _rebuild(node.right, mapping))
    if isinstance(node, ex.Cmp):
        return ex.Cmp(node.op, _rebuild(node.left, mapping), _rebuild(node.right, mapping))
    if isinstance(node, ex.Neg):
        return ex.Neg(_rebuild(node.arg, mapping))
    if isinstance(node, ex.Call):
        return ex.Call(node.fn, tuple(_rebuild(a, mapping) for a in node.args))
    if isinstance(node, ex.Select):
        return ex.Select(*(_rebuild(n, mapping) for n in (node.a, node.b, node.if_less, node.otherwise)))
    return ex.Piecewise(tuple((_rebuild(v, mapping), _rebuild(c, mapping)) for v, c in node.pieces),
                        _rebuild(node.otherwise, mapping))


_CMP_TRUTH = {"<": lambda g: g < 0, "<=": lambda g: g <= 0, ">": lambda g: g > 0, ">=": lambda g: g >= 0}


def _time_switches(spec):
    """Replace comparisons ``g(time, p) <op> 0`` that are linear in model time (SBML piecewise
    inputs switched on at a time) by 0/1 switch parameters, and return the switching times.

    Returns (spec', switches) with switches ``[(parameter name, f(xT, pT) -> time, before, after)]``:
    the integrator gets a breakpoint at each time, so it steps exactly onto the discontinuity
    (a state ``time`` compared inside the right-hand side would make the step size underflow).
    """
    from dataclasses import replace

    from ..model.spec import Parameter

    clock = next((sp.name for sp in spec.species if getattr(sp, "quantity", "") == "time"), None)
    if clock is None:
        return spec, []
    params = {p.name for p in spec.parameters}
    inlined: dict = {}
    for e in spec.expressions:
        inlined[e.name] = ex.substitute(e.node, inlined)
    mapping, switches, new_params = {}, [], []
    pidx = {p.name: j for j, p in enumerate(spec.parameters)}
    roots = [e.node for e in spec.expressions] + [r.rate for r in spec.reactions]
    for root in roots:
        for node in _walk(root):
            if not isinstance(node, ex.Cmp) or node in mapping or node.op not in _CMP_TRUTH:
                continue
            g = ex.simplify(ex.expand(ex.substitute(ex.Bin("-", node.left, node.right), inlined)))
            if clock not in ex.free_names(g) or ex.free_names(g) - params - {clock}:
                continue
            slope = ex.diff(g, clock)
            if not (isinstance(slope, ex.Num) and slope.value != 0):
                continue
            at = ex.simplify(ex.Neg(ex.Bin("/", ex.substitute(g, {clock: ex.ZERO}), slope)))
            name = f"time_switch_{len(switches)}"
            while name in params:
                name += "_"
            sign = 1.0 if slope.value > 0 else -1.0
            before, after = float(_CMP_TRUTH[node.op](-sign)), float(_CMP_TRUTH[node.op](sign))
            mapping[node] = ex.Sym(name)
            switches.append((name, ex.compile_expr(at, {}, pidx), before, after))
            new_params.append(Parameter(name, before, "1", "1", f"her2sim.fit: 0/1 switch replacing {ex.to_text(node)}"))
    if not mapping:
        return spec, []
    exprs = tuple(replace(e, node=_rebuild(e.node, mapping)) for e in spec.expressions)
    rxns = tuple(replace(r, rate=_rebuild(r.rate, mapping)) for r in spec.reactions)
    out = replace(spec, parameters=spec.parameters + tuple(new_params), expressions=exprs, reactions=rxns)
    return out, switches


def _lookup(values, pindex: dict, default: float = np.nan):
    """(index array, constant array): index >= 0 selects a theta column, else the constant."""
    idx = np.full(len(values), -1, dtype=np.intp)
    const = np.full(len(values), default, dtype=float)
    for k, v in enumerate(values):
        if isinstance(v, str):
            idx[k] = pindex[v]
        elif v is not None:
            const[k] = float(v)
    return idx, const


def _take(theta: np.ndarray, idx: np.ndarray, const: np.ndarray) -> np.ndarray:
    """theta (K, n) with (idx, const) of shape S -> values (K, *S)."""
    return np.where(idx >= 0, theta[:, np.clip(idx, 0, None)], const)


class Objective:
    """Negative log-likelihood of a :class:`PetabProblem` on the batch path.

    Parameters
    ----------
    problem : a validated PetabProblem.
    method : "batch" (:func:`her2sim.solvers.batch.simulate_batch`, default) or "scipy" (reference).
    rtol, atol : integrator tolerances (atol in the model's amount/concentration unit).
    fd_step : central-difference step on the parameter scale (``h * max(1, |x|)`` for lin-scale
        parameters); see ``benchmarks/bench_fit.py`` for the measured accuracy.
    kernels : the fit's :class:`~her2sim.solvers.ckernels.KernelCache` (compiled C kernels built once
        for every evaluation; :func:`her2sim.fit.fit` makes one per run), or None (``simulate_batch``'s
        ``fused="auto"``).
    """

    def __init__(self, problem: PetabProblem, *, method: str = "batch", rtol: float = 1e-8, atol: float = 1e-12,
                 fd_step: float = 1e-4, max_steps: int = 200000, kernels: KernelCache | None = None):
        if method not in ("batch", "scipy"):
            raise InvalidArgument(f"method must be 'batch' or 'scipy', got {method!r}")
        if kernels is not None and not isinstance(kernels, KernelCache):
            raise InvalidArgument(f"kernels must be a her2sim.solvers.ckernels.KernelCache or None, got "
                                  f"{type(kernels).__name__}")
        self.kernels = kernels
        self.problem, self.method = problem, method
        self.rtol, self.atol, self.fd_step, self.max_steps = float(rtol), float(atol), float(fd_step), int(max_steps)
        spec, self._switches = _time_switches(problem.model)
        self.network = net = compile_network(spec)
        self.pindex = {p: k for k, p in enumerate(problem.parameter_ids)}
        self.free_index = np.array([self.pindex[p] for p in problem.free], dtype=np.intp)
        self.scales = tuple(problem.parameter(p).scale for p in problem.free)
        self.lower = np.array([to_scale(problem.parameter(p).lower, s) for p, s in zip(problem.free, self.scales)])
        self.upper = np.array([to_scale(problem.parameter(p).upper, s) for p, s in zip(problem.free, self.scales)])
        self.conditions = problem.simulation_conditions()
        #: the model-time state of an imported SBML model (d/dt = 1); reset to 0 after pre-equilibration
        self.time_index = getattr(net, "time_index", None)
        if method == "scipy" and (self._switches or getattr(spec, "events", ())):
            raise PetabError("model: method='scipy' does not apply SBML events or time-switched inputs; "
                             "use the batch path")
        self._build_conditions()
        self._build_observables()
        self.noise_groups = self._closed_form_noise()

    # ------------------------------------------------------------------ set-up
    def _condition_maps(self, cid: str):
        """(param idx, param const, species idx, species const) for one condition id."""
        net, prob = self.network, self.problem
        pidx = np.full(net.n_params, -1, dtype=np.intp)
        pconst = net.p0.copy()
        for j, name in enumerate(net.parameter_names):
            if name in self.pindex:
                pidx[j] = self.pindex[name]
        sidx = np.full(net.n_species, -1, dtype=np.intp)
        sconst = np.full(net.n_species, np.nan)
        for target, value in (prob.conditions.get(cid, {}) if cid else {}).items():
            if not isinstance(value, str) and np.isnan(value):
                continue
            if target in net.parameter_names:
                j = net.parameter_index(target)
                pidx[j], pconst[j] = (self.pindex[value], np.nan) if isinstance(value, str) else (-1, value)
            elif target in net.species_names:
                i = net.species_index(target)
                sidx[i], sconst[i] = (self.pindex[value], np.nan) if isinstance(value, str) else (-1, value)
            else:
                raise PetabError(f"condition table row ({cid}) column {target!r}: setting a compartment size that "
                                 "is not a model parameter is not supported")
        return pidx, pconst, sidx, sconst

    def _build_conditions(self) -> None:
        sim = [self._condition_maps(c) for _, c in self.conditions]
        pre = [self._condition_maps(p) if p else None for p, _ in self.conditions]
        self.has_preeq = np.array([p is not None for p in pre])
        fill = [p if p is not None else s for p, s in zip(pre, sim)]
        self.sim_maps = tuple(np.stack([m[k] for m in sim]) for k in range(4))
        self.pre_maps = tuple(np.stack([m[k] for m in fill]) for k in range(4))
        for mp in (self.sim_maps, self.pre_maps):
            if self.problem.parameter_ids:
                continue
            if np.any(mp[0] >= 0) or np.any(mp[2] >= 0):
                raise PetabError("parameter table is empty")

    def _switch_values(self, P: np.ndarray):
        """Per switch: (column, switching times (B,), value after) for parameters P (B, n_params)."""
        out = []
        pT = np.ascontiguousarray(P.T)
        for name, f, before, after in self._switches:
            with np.errstate(all="ignore"):
                t = np.broadcast_to(np.asarray(f(np.zeros((0, P.shape[0])), pT), float), (P.shape[0],)).copy()
            out.append((self.network.parameter_index(name), t, before, after))
        return out

    def _set_switches(self, P: np.ndarray) -> np.ndarray:
        """P with each switch at its value at t = 0 (the value after the switch if it switched at t <= 0)."""
        P = P.copy()
        for j, t, before, after in self._switch_values(P):
            P[:, j] = np.where(t > 0, before, after)
        return P

    def _breakpoints(self, P: np.ndarray, t_end: float):
        """Breakpoints that flip each switch at its time in (0, t_end]."""
        out = []
        for j, t, before, after in self._switch_values(P):
            t = np.where((t > 0) & (t <= t_end), t, np.inf)
            if np.isfinite(t).any():
                out.append((t, {j: np.full(P.shape[0], after)}))
        return out or None

    def _inline_expressions(self) -> dict:
        out: dict = {}
        for e in self.problem.model.expressions:  # topological order
            out[e.name] = ex.substitute(e.node, out)
        return out

    def _build_observables(self) -> None:
        prob, net = self.problem, self.network
        inlined = self._inline_expressions()
        rows = {oid: [] for oid in prob.observables}
        for k, m in enumerate(prob.measurements):
            rows[m.observable].append(k)
        cond_of = {c: i for i, c in enumerate(self.conditions)}
        finite = sorted({m.time for m in prob.measurements if np.isfinite(m.time)})
        self.t_eval = np.array(finite if finite else [0.0])
        tpos = {t: i for i, t in enumerate(self.t_eval)}
        self.needs_steady = any(np.isinf(m.time) for m in prob.measurements)
        self.M = len(prob.measurements)
        self.measured = np.array([m.value for m in prob.measurements])
        self._obs = []
        self.sigma_depends = np.zeros(self.M, dtype=bool)
        for oid, ks in rows.items():
            if not ks:
                continue
            o = prob.observables[oid]
            ks = np.array(ks, dtype=np.intp)
            ms = [prob.measurements[k] for k in ks]
            cidx = np.array([cond_of[(m.preequilibration, m.condition)] for m in ms], dtype=np.intp)
            tidx = np.array([len(self.t_eval) if np.isinf(m.time) else tpos[m.time] for m in ms], dtype=np.intp)
            compiled = []
            for kind, node, attr in (("observable", o.formula, "observable_parameters"),
                                     ("noise", o.noise, "noise_parameters")):
                holders = placeholder_names(oid, kind, node)
                if kind == "noise":
                    holders = placeholder_names(oid, "observable", node) + holders
                node = ex.simplify(ex.expand(ex.substitute(node, inlined)))
                names = sorted(ex.free_names(node) - set(net.species_names) - set(net.parameter_names))
                extra_idx = np.full((len(names), len(ms)), -1, dtype=np.intp)
                extra_const = np.full((len(names), len(ms)), np.nan)
                for e, name in enumerate(names):
                    if name in holders:
                        for r, m in enumerate(ms):
                            if name.startswith("observableParameter"):
                                values = m.observable_parameters
                                pos = placeholder_names(oid, "observable", o.formula).index(name) \
                                    if name in placeholder_names(oid, "observable", o.formula) else None
                            else:
                                values = m.noise_parameters
                                pos = placeholder_names(oid, "noise", o.noise).index(name)
                            if pos is None:
                                raise PetabError(f"observable table row ({oid}) column 'noiseFormula': {name!r} "
                                                 "is not used in the observable formula")
                            v = values[pos]
                            if isinstance(v, str):
                                extra_idx[e, r] = self.pindex[v]
                            else:
                                extra_const[e, r] = v
                    elif name in self.pindex:
                        extra_idx[e, :] = self.pindex[name]
                    else:
                        raise PetabError(f"observable table row ({oid}) column 'observableFormula'/'noiseFormula': {name!r} is not a species, parameter or "
                                         "parameter-table id of the model (compartments and time are not supported "
                                         "in formulas)")
                pj = {p: j for j, p in enumerate(net.parameter_names)}
                pj.update({n: net.n_params + e for e, n in enumerate(names)})
                sj = {s: i for i, s in enumerate(net.species_names)}
                try:
                    fn = ex.compile_expr(node, sj, pj)
                except ex.ExpressionError as exc:
                    raise PetabError(f"observable table row ({oid}): {exc}") from None
                compiled.append((fn, extra_idx, extra_const))
                if kind == "noise":
                    theta_dep = bool(np.any(extra_idx >= 0)) or bool(
                        ex.free_names(node) & (set(net.species_names) | set(net.parameter_names)))
                    self.sigma_depends[ks] = theta_dep
            self._obs.append((o, ks, cidx, tidx, compiled))

    def _closed_form_noise(self) -> tuple:
        """Estimated noise parameters with a closed-form optimum given the simulation.

        A parameter qualifies when it has no prior, is not a model parameter, appears in no
        observable formula, condition or observable override, and every measurement row that uses
        it has normal noise whose sigma *is* that parameter (the noise formula is the parameter or
        a placeholder overridden by it). Then, for fixed dynamics, the nllh in sigma,
        ``n log sigma + RSS / (2 sigma^2)``, is minimal at ``sigma^2 = RSS / n`` (clipped to the
        bounds): the hierarchical optimisation of Loos, Krause & Hasenauer (Bioinformatics 2018).
        Returns ``((free position, parameter-table index, measurement rows (array)), ...)``.
        """
        prob = self.problem
        blocked = set(self.network.parameter_names)
        for o in prob.observables.values():
            blocked |= ex.free_names(o.formula)
        for row in prob.conditions.values():
            blocked |= {v for v in row.values() if isinstance(v, str)}
        for m in prob.measurements:
            blocked |= {v for v in m.observable_parameters if isinstance(v, str)}
        rows: dict = {}
        for k, m in enumerate(prob.measurements):
            o = prob.observables[m.observable]
            names = ex.free_names(o.noise) | {v for v in m.noise_parameters if isinstance(v, str)}
            sigma = None
            if isinstance(o.noise, ex.Sym) and o.distribution == "normal":
                holders = placeholder_names(o.id, "noise", o.noise)
                sigma = m.noise_parameters[0] if holders else o.noise.name
            for name in names:
                rows.setdefault(name, []).append(k if name == sigma else -1)
        out = []
        for k, pid in enumerate(prob.free):
            p = prob.parameter(pid)
            ks = rows.get(pid, [])
            if p.prior_type or pid in blocked or not ks or min(ks) < 0:
                continue
            out.append((k, self.pindex[pid], np.array(ks, dtype=np.intp)))
        return tuple(out)

    def _nllh_data(self, simulated: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        """(K,) data nllh of simulated observables and noise values (K, M)."""
        out = np.zeros(simulated.shape[0])
        for o, ks, *_ in self._obs:
            out += noise.nllh_terms(simulated[:, ks], self.measured[ks], sigma[:, ks], o.transformation,
                                    o.distribution).sum(axis=1)
        return out

    def with_optimal_noise(self, theta: np.ndarray, ev: Evaluation, groups=None) -> tuple:
        """(theta', ev'): the closed-form noise parameters (:meth:`_closed_form_noise`, or the given
        subset ``groups``) set to their optimum for the simulation in ``ev`` (no new integration:
        they do not enter the model)."""
        groups = self.noise_groups if groups is None else groups
        if not groups:
            return theta, ev
        theta, sig = np.array(theta, dtype=float), ev.sigma.copy()
        d = np.empty_like(ev.simulated)
        for o, ks, *_ in self._obs:
            d[:, ks] = noise.transform(self.measured[ks], o.transformation) - \
                noise.transform(ev.simulated[:, ks], o.transformation)
        for _, j, ks in groups:
            p = self.problem.parameters[j]
            with np.errstate(invalid="ignore"):
                s = np.clip(np.sqrt(np.mean(d[:, ks] ** 2, axis=1)), p.lower, p.upper)
            theta[:, j] = s
            sig[:, ks] = s[:, None]
        ok = ev.ok & np.all(np.isfinite(sig), axis=1)
        return theta, Evaluation(ev.simulated, sig, self._nllh_data(ev.simulated, sig), self._priors(theta), ok,
                                 ev.message)

    def optimal_noise_x(self, x, groups=None) -> np.ndarray:
        """x (n_free,) or (K, n_free) with the closed-form noise parameters at their optimum."""
        x = np.asarray(x, dtype=float)
        X = np.atleast_2d(x).copy()
        groups = self.noise_groups if groups is None else groups
        if groups:
            theta, _ = self.with_optimal_noise(self.theta(X), self.evaluate(self.theta(X)), groups)
            for k, j, _ in groups:
                X[:, k] = to_scale(theta[:, j], self.scales[k])
        return X[0] if x.ndim == 1 else X

    # ------------------------------------------------------------------ parameters
    def theta(self, x) -> np.ndarray:
        """Estimated parameters on their scale (K, n_free) -> full linear theta (K, n_parameters)."""
        x = np.atleast_2d(np.asarray(x, dtype=float))
        th = np.tile(self.problem.nominal(), (x.shape[0], 1))
        for k, (j, s) in enumerate(zip(self.free_index, self.scales)):
            th[:, j] = from_scale(x[:, k], s)
        return th

    def x_nominal(self) -> np.ndarray:
        """(n_free,) nominal values of the estimated parameters on their scale."""
        nom = self.problem.nominal()
        return np.array([to_scale(nom[j], s) for j, s in zip(self.free_index, self.scales)])

    # ------------------------------------------------------------------ simulation
    def _initial_states(self, P: np.ndarray) -> np.ndarray:
        """P (B, n_params) -> X0 (B, n_species): the model's (symbolic) initial values."""
        return self.network.initial_state(P)

    def _integrate(self, X0, P, t_eval, trajectory: bool = False):
        """(states (B, T, n), ok (B,), messages[, parameters in force (B, T, n_params)])."""
        if self.method == "batch":
            t_span = (0.0, max(float(t_eval[-1]), 1e-9))
            res = simulate_batch(self.network, X0, P, t_eval=t_eval, t_span=t_span, rtol=self.rtol, atol=self.atol,
                                 max_steps=self.max_steps, breakpoints=self._breakpoints(P, t_span[1]),
                                 certify=None,  # per evaluation it would double a fit's cost
                                 fused="auto" if self.kernels is None else self.kernels)
            if not trajectory:
                return res.states, res.ok, res.messages
            Pt = getattr(res, "parameter_trajectory", None)
            if Pt is None:
                Pt = np.repeat(P[:, None, :], len(t_eval), axis=1)
                for j, t, before, after in self._switch_values(P):
                    Pt[:, :, j] = np.where((t[:, None] > 0) & (t_eval[None, :] >= t[:, None]), after, Pt[:, :, j])
            return res.states, res.ok, res.messages, np.nan_to_num(Pt, nan=0.0)
        from scipy.integrate import solve_ivp

        net = self.network
        B = X0.shape[0]
        states = np.full((B, len(t_eval), net.n_species), np.nan)
        ok = np.zeros(B, dtype=bool)
        msgs = [""] * B
        for b in range(B):
            p = P[b]
            if t_eval[-1] <= 0:
                states[b, :] = X0[b]
                ok[b] = True
                continue
            sol = solve_ivp(lambda t, y: net.rhs(y, p), (0.0, float(t_eval[-1])), X0[b], method="Radau",
                            t_eval=t_eval, jac=lambda t, y: net.jacobian(y, p), rtol=self.rtol, atol=self.atol)
            if sol.success and sol.y.shape[1] == len(t_eval):
                states[b] = sol.y.T
                ok[b] = True
            else:
                msgs[b] = sol.message
        if trajectory:
            return states, ok, tuple(msgs), np.repeat(P[:, None, :], len(t_eval), axis=1)
        return states, ok, tuple(msgs)

    def _steady(self, X0, P):
        """Integrate to T_STEADY; (states (B, n), ok, messages)."""
        states, ok, msgs = self._integrate(X0, P, np.array([T_STEADY]))
        X = states[:, -1, :]
        with np.errstate(all="ignore"):
            f = self.network.rhs(np.nan_to_num(X), P)
            if self.time_index is not None:  # model time never settles; it is not part of the state
                f[:, self.time_index] = 0.0
            converged = np.all(np.abs(f) <= self.atol + RTOL_STEADY * np.abs(X), axis=1)
        msgs = tuple(m if not o else ("" if c else "no steady state within t = 1e8") for m, o, c in zip(msgs, ok, converged))
        return X, ok & converged, msgs

    def _main_start(self, theta: np.ndarray):
        """(X0 (K*C, n), P (K*C, n_params), ok (K*C,), messages (K*C,)) of the main simulations:
        condition settings applied, pre-equilibrated where the condition asks for it."""
        K, C = theta.shape[0], len(self.conditions)
        net = self.network
        pidx, pconst, sidx, sconst = self.sim_maps
        P = self._set_switches(_take(theta, pidx, pconst).reshape(K * C, net.n_params))
        X0 = self._initial_states(P)
        Xs = _take(theta, sidx, sconst).reshape(K * C, net.n_species)
        messages = np.full(K * C, "", dtype=object)
        ok = np.ones(K * C, dtype=bool)
        if self.has_preeq.any():
            qidx, qconst, qsidx, qsconst = self.pre_maps
            Pq = self._set_switches(_take(theta, qidx, qconst).reshape(K * C, net.n_params))
            Xq = self._initial_states(Pq)
            Xqs = _take(theta, qsidx, qsconst).reshape(K * C, net.n_species)
            Xq = np.where(np.isnan(Xqs), Xq, Xqs)
            pre = np.tile(self.has_preeq, K)
            Xss, okq, mq = self._steady(Xq[pre], Pq[pre])
            if self.time_index is not None:
                Xss[:, self.time_index] = X0[pre, self.time_index]  # the main simulation starts at t = 0
            X0[pre] = Xss
            ok[pre] &= okq
            messages[np.flatnonzero(pre)] = [f"pre-equilibration: {m}" if m else "" for m in mq]
        return np.where(np.isnan(Xs), X0, Xs), P, ok, messages

    def simulate_states(self, theta: np.ndarray):
        """theta (K, n_parameters) -> (states (K, C, T[+1], n_species), ok (K, C), messages (K, C),
        parameters in force (K, C, T[+1], n_params)).

        The last time slot holds the steady state when any measurement is at ``time = inf``.
        """
        theta = np.atleast_2d(theta)
        K, C = theta.shape[0], len(self.conditions)
        X0, P, ok, messages = self._main_start(theta)
        states, ok_main, msgs, Pt = self._integrate(X0, P, self.t_eval, trajectory=True)
        ok &= ok_main
        messages = np.where(messages == "", np.array(msgs, dtype=object), messages)
        if self.needs_steady:
            Xinf, ok_inf, mi = self._steady(X0, P)
            states = np.concatenate([states, Xinf[:, None, :]], axis=1)
            Pt = np.concatenate([Pt, P[:, None, :]], axis=1)
            ok &= ok_inf
            messages = np.where(messages == "", np.array(mi, dtype=object), messages)
        return (states.reshape(K, C, *states.shape[1:]), ok.reshape(K, C), messages.reshape(K, C),
                Pt.reshape(K, C, *Pt.shape[1:]))

    def certificate(self, theta, fraction: float = 1.0) -> dict | None:
        """Accuracy certificate (:mod:`her2sim.solvers.certify`) of the main simulations of all conditions at
        theta (n_parameters,): a share ``fraction`` of the conditions (at least 2) re-integrated with
        scipy Radau at a 20x tighter tolerance. None on the scipy path (it is the reference) or when
        no condition simulates. Steady states (pre-equilibration, ``time = inf``) are not re-checked.
        """
        from ..solvers.certify import CertifyOptions

        if self.method != "batch":
            return None
        theta = np.atleast_2d(np.asarray(theta, dtype=float))[:1]
        X0, P, ok, _ = self._main_start(theta)
        if not ok.any():
            return None
        t_eval = self.t_eval
        t_span = (0.0, max(float(t_eval[-1]), 1e-9))
        res = simulate_batch(self.network, X0[ok], P[ok], t_eval=t_eval, t_span=t_span, rtol=self.rtol,
                             atol=self.atol, max_steps=self.max_steps,
                             breakpoints=self._breakpoints(P[ok], t_span[1]),
                             certify=CertifyOptions(fraction=float(fraction), minimum=2),
                             fused="auto" if self.kernels is None else self.kernels)
        return res.attrs.get("certificate")

    def evaluate(self, theta) -> Evaluation:
        """Simulate and score K parameter vectors theta (K, n_parameters) (linear scale)."""
        theta = np.atleast_2d(np.asarray(theta, dtype=float))
        K = theta.shape[0]
        states, ok_kc, msg_kc, P = self.simulate_states(theta)
        y = np.full((K, self.M), np.nan)
        sig = np.full((K, self.M), np.nan)
        nllh = np.zeros(K)
        for o, ks, cidx, tidx, compiled in self._obs:
            n = len(ks)
            xT = np.ascontiguousarray(states[:, cidx, tidx, :].reshape(K * n, -1).T)
            pm = P[:, cidx, tidx, :].reshape(K * n, -1).T
            outs = []
            for fn, eidx, econst in compiled:
                extra = _take(theta, eidx, econst)  # (K, E, n)
                pT = np.vstack([pm, np.transpose(extra, (1, 0, 2)).reshape(len(eidx), K * n)])
                with np.errstate(all="ignore"):
                    v = fn(xT, pT)
                outs.append(np.broadcast_to(np.asarray(v, dtype=float), (K * n,)).reshape(K, n))
            y[:, ks], sig[:, ks] = outs
            nllh += noise.nllh_terms(outs[0], self.measured[ks], outs[1], o.transformation, o.distribution).sum(axis=1)
        finite = np.isfinite(y) & np.isfinite(sig)
        ok = ok_kc.all(axis=1) & finite.all(axis=1)
        msg = tuple(self._failure(msg_kc[k], finite[k]) if not ok[k] else "" for k in range(K))
        return Evaluation(y, sig, nllh, self._priors(theta), ok, msg)

    def _failure(self, messages, finite: np.ndarray) -> str:
        """One line naming the measurement row, column and condition of the first failure."""
        meas = self.problem.measurements
        for c, m in enumerate(messages):
            if m:
                pre, cid = self.conditions[c]
                row = next(x.row for x in meas if (x.preequilibration, x.condition) == (pre, cid))
                col = "preequilibrationConditionId" if m.startswith("pre-equilibration") else "simulationConditionId"
                return f"measurement table row {row} column {col!r} (condition {pre + ' -> ' if pre else ''}{cid}): " \
                       f"the simulation failed: {m}"
        if finite.all():
            return "the simulation failed"
        bad = int(np.flatnonzero(~finite)[0])
        x = meas[bad]
        return (f"measurement table row {x.row} column 'observableId' ({x.observable}, condition {x.condition}, "
                f"time {x.time:g}): the simulated observable or its noise value is not finite")

    def _priors(self, theta: np.ndarray) -> np.ndarray:
        out = np.zeros(theta.shape[0])
        for j, p in enumerate(self.problem.parameters):
            if p.estimate and p.prior_type:
                for k in range(theta.shape[0]):
                    v = theta[k, j]
                    out[k] += noise.prior_nllh(v, float(to_scale(v, p.scale)), p.prior_type, p.prior_parameters)
        return out

    # ------------------------------------------------------------------ objective on x
    def nllh(self, x) -> np.ndarray | float:
        """Negative log-likelihood + priors at x (n_free,) -> float, or (K, n_free) -> (K,)."""
        x = np.asarray(x, dtype=float)
        v = self.evaluate(self.theta(x)).nllh
        return float(v[0]) if x.ndim == 1 else v

    def perturbations(self, x, active=None) -> tuple:
        """(X (2n+1, n_free), steps (n,)): x, then x +- h_i e_i (central differences) for the n
        ``active`` indices (default: all)."""
        x = np.asarray(x, dtype=float)
        idx = np.arange(len(x)) if active is None else np.asarray(active, dtype=np.intp)
        n = len(idx)
        lin = np.array([self.scales[i] == "lin" for i in idx], dtype=bool)
        h = self.fd_step * np.where(lin, np.maximum(1.0, np.abs(x[idx])), 1.0)
        X = np.tile(x, (2 * n + 1, 1))
        X[1 + np.arange(n), idx] += h
        X[n + 1 + np.arange(n), idx] -= h
        return X, h

    def nllh_and_gradient(self, x, active=None, noise_groups=()) -> tuple:
        """(nllh, gradient (n,)) at x by central differences over ``active``, 2n+1 points in one batch."""
        return self.nllh_and_gradient_many([x], active, noise_groups)[0]

    def _scored(self, X: np.ndarray, noise_groups) -> tuple:
        """(theta, Evaluation) at X (K, n_free); ``noise_groups`` at their closed-form optimum."""
        theta = self.theta(X)
        ev = self.evaluate(theta)
        return self.with_optimal_noise(theta, ev, noise_groups) if noise_groups else (theta, ev)

    def nllh_and_gradient_many(self, xs, active=None, noise_groups=()) -> list:
        """[(nllh, gradient)] for several points, all (2n+1) x len(xs) evaluations in one batch.

        ``noise_groups`` (from :attr:`noise_groups`; not among ``active``) are set to their
        closed-form optimum at every point, so the gradient is that of the profiled objective."""
        parts = [self.perturbations(x, active) for x in xs]
        v = self._scored(np.vstack([X for X, _ in parts]), noise_groups)[1].nllh
        out, at = [], 0
        for X, h in parts:
            n, w = len(h), v[at:at + len(X)]
            out.append((float(w[0]), (w[1:n + 1] - w[n + 1:]) / (2 * h)))
            at += len(X)
        return out

    def residual_parts(self, ev: Evaluation) -> np.ndarray:
        """(K, R) least-squares residuals with 0.5 * sum(r^2) = nllh + constant (normal noise only).

        Data residuals ``(h(m) - h(y)) / sigma``, then ``sqrt(2 log sigma + SIGMA_OFFSET)`` for rows
        whose sigma depends on parameters, then ``(x - mean) / sd`` for normal priors.
        """
        K = ev.simulated.shape[0]
        parts = []
        for o, ks, *_ in self._obs:
            parts.append((ks, noise.residuals(ev.simulated[:, ks], self.measured[ks], ev.sigma[:, ks],
                                              o.transformation)))
        r = np.empty((K, self.M))
        for ks, v in parts:
            r[:, ks] = v
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt(np.maximum(2.0 * np.log(ev.sigma[:, self.sigma_depends]) + SIGMA_OFFSET, 0.0))
        return np.concatenate([r, s], axis=1)

    def least_squares_refusal(self) -> str:
        """'' when every noise model is normal and priors are normal (or none); else the reason."""
        for o in self.problem.observables.values():
            if o.distribution != "normal":
                return f"observable {o.id!r} has {o.distribution} noise"
        for p in self.problem.parameters:
            if p.estimate and p.prior_type and p.prior_type not in ("parameterScaleNormal",):
                return f"parameter {p.id!r} has a {p.prior_type} prior"
        return ""

    def prior_residuals(self, x: np.ndarray) -> np.ndarray:
        """(K, n_prior) residuals of parameterScaleNormal priors on x (K, n_free)."""
        cols = []
        for k, pid in enumerate(self.problem.free):
            p = self.problem.parameter(pid)
            if p.prior_type == "parameterScaleNormal":
                a, b = p.prior_parameters
                cols.append((x[:, k] - a) / b)
        return np.stack(cols, axis=1) if cols else np.zeros((x.shape[0], 0))

    def residuals_and_jacobian(self, x, active=None, noise_groups=()) -> tuple:
        """(r (R,), J (R, n), nllh) at x; J by central differences over ``active`` in one batch."""
        return self.residuals_and_jacobian_many([x], active, noise_groups)[0]

    def residuals_and_jacobian_many(self, xs, active=None, noise_groups=()) -> list:
        """[(r, J, nllh)] for several points, all (2n+1) x len(xs) evaluations in one batch
        (``noise_groups`` as in :meth:`nllh_and_gradient_many`)."""
        parts = [self.perturbations(x, active) for x in xs]
        X = np.vstack([X for X, _ in parts])
        ev = self._scored(X, noise_groups)[1]
        R = np.concatenate([self.residual_parts(ev), self.prior_residuals(X)], axis=1)
        out, at = [], 0
        for Xk, h in parts:
            n, Rk = len(h), R[at:at + len(Xk)]
            out.append((Rk[0], (Rk[1:n + 1] - Rk[n + 1:]).T / (2 * h), float(ev.nllh[at])))
            at += len(Xk)
        return out

    def simulation_table(self, theta) -> "pandas.DataFrame":  # noqa: F821
        """PEtab simulation table (the measurement table with ``simulation`` instead of ``measurement``)."""
        import pandas as pd

        ev = self.evaluate(np.atleast_2d(theta)[:1])

        def join(values):
            return ";".join(v if isinstance(v, str) else repr(float(v)) for v in values)

        rows = [{"observableId": m.observable, "preequilibrationConditionId": m.preequilibration,
                 "simulationConditionId": m.condition, "simulation": float(ev.simulated[0, k]), "time": m.time,
                 "observableParameters": join(m.observable_parameters), "noiseParameters": join(m.noise_parameters)}
                for k, m in enumerate(self.problem.measurements)]
        return pd.DataFrame(rows)
