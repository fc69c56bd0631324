"""Multi-start local optimisation of a PEtab objective within bounds on the parameter scale.

Groups of starts are tasks ``run_starts(shared, indices, X0)`` run with
:func:`her2sim.executors.map_tasks`, so starts go to this process, local processes or a Dask
cluster. Starting points are a Latin hypercube over the bounds (McKay, Beckman & Conover,
Technometrics 1979) from a seeded generator. With Gaussian noise and normal (or no) priors the
local optimiser works on the residuals: ``optimizer="fides"`` is the trust-region optimiser of
Fröhlich & Sorger (PLoS Comput Biol 2022) with the Gauss-Newton Hessian ``J^T J``,
``optimizer="trf"`` scipy's trust-region reflective least squares (Branch, Coleman & Li, SIAM J
Sci Comput 1999); ``"auto"`` (default) is fides when it is installed (the ``[fit]`` extra), else
trf. Otherwise (Laplace noise, other priors) L-BFGS-B on the negative log-likelihood. All use
the batched central-difference derivatives of :class:`~her2sim.fit.objective.Objective`.

With ``out`` each finished start is written to ``out/starts/start_NNNN.json`` as it finishes;
``resume=True`` reuses them, so an interrupted fit continues where it stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Her2simError, InvalidArgument
from .objective import Objective
from .problem import PetabProblem


@dataclass(frozen=True)
class StartResult:
    """One local optimisation: start and end points (parameter scale), final nllh, status."""

    index: int
    x0: tuple
    x: tuple
    nllh: float
    status: str          # "converged", "max_evaluations", "failed"
    message: str
    n_evaluations: int
    wall_time_s: float


@dataclass(frozen=True)
class FitResult:
    """All starts of a multi-start fit, sorted by final negative log-likelihood.

    ``free`` names the estimated parameters; ``x_best`` their best values on the parameter scale;
    ``theta_best`` the full parameter-table vector (linear scale). ``attrs`` holds the settings and
    ``attrs["certificate"]``: the accuracy certificate (:mod:`her2sim.solvers.certify`) of the best
    parameters' simulations (None on the scipy path).
    """

    free: tuple
    scales: tuple
    starts: tuple
    theta_best: np.ndarray = field(repr=False)
    attrs: dict = field(default_factory=dict)

    @property
    def best(self) -> StartResult:
        return self.starts[0]

    @property
    def x_best(self) -> np.ndarray:
        return np.array(self.best.x)

    @property
    def nllh_best(self) -> float:
        return self.best.nllh

    def share_within(self, tolerance: float = 0.1, reference: float | None = None) -> float:
        """Share of starts whose final nllh is within ``tolerance`` of ``reference`` (default: best)."""
        ref = self.nllh_best if reference is None else reference
        vals = np.array([s.nllh for s in self.starts])
        return float(np.mean(vals <= ref + tolerance))

    def summary(self) -> str:
        ok = sum(s.status != "failed" for s in self.starts)
        return (f"{len(self.starts)} starts ({ok} finished), best nllh {self.nllh_best:.6g}, "
                f"{100 * self.share_within(0.1):.0f}% of starts within 0.1 of it")

    def to_dataframe(self):
        """One row per start: index, nllh, status, evaluations, wall time, final parameters."""
        import pandas as pd

        rows = []
        for s in self.starts:
            row = {"start": s.index, "nllh": s.nllh, "status": s.status, "n_evaluations": s.n_evaluations,
                   "wall_time_s": s.wall_time_s, "message": s.message}
            row.update({f"{p}": v for p, v in zip(self.free, s.x)})
            rows.append(row)
        return pd.DataFrame(rows)


def latin_hypercube(n: int, lower, upper, *, seed=None) -> np.ndarray:
    """(n, d) points: one per stratum in every coordinate, randomly paired, inside [lower, upper]."""
    lower, upper = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    rng = np.random.default_rng(seed)
    d = len(lower)
    u = (np.stack([rng.permutation(n) for _ in range(d)], axis=1) + rng.random((n, d))) / n
    return lower + u * (upper - lower)


def _options(objective: Objective) -> dict:
    return {"method": objective.method, "rtol": objective.rtol, "atol": objective.atol,
            "fd_step": objective.fd_step, "max_steps": objective.max_steps, "kernels": objective.kernels}


class Lockstep:
    """Evaluate the requests of several optimiser threads together, in one batch.

    Each thread calls :meth:`call` with its point and blocks; when every running thread has a
    request waiting, the last one to arrive evaluates all of them with ``fn_many(points)`` (one
    batch-path integration for all starts and perturbations) and wakes the others. A thread that
    finishes calls :meth:`leave`. With one thread this is a plain call.
    """

    def __init__(self, fn_many, threads: int):
        import threading

        self.fn_many, self.running = fn_many, threads
        self.cond = threading.Condition()
        self.pending: dict = {}
        self.results: dict = {}
        self.error = None

    def _flush(self) -> None:
        keys = list(self.pending)
        try:
            values = self.fn_many([self.pending[k] for k in keys])
        except BaseException as exc:  # re-raised in every waiting thread
            self.error = exc
            values = [None] * len(keys)
        self.results.update(zip(keys, values))
        self.pending.clear()
        self.cond.notify_all()

    def call(self, key, x):
        with self.cond:
            self.pending[key] = x
            if len(self.pending) >= self.running:
                self._flush()
            while key not in self.results and self.error is None:
                self.cond.wait()
            if self.error is not None:
                raise self.error
            return self.results.pop(key)

    def leave(self) -> None:
        with self.cond:
            self.running -= 1
            if self.pending and len(self.pending) >= self.running:
                self._flush()


OPTIMIZERS = ("auto", "fides", "trf")


def resolve_optimizer(optimizer: str) -> str:
    """"fides" or "trf" for ``optimizer`` ("auto": fides when importable, else trf)."""
    if optimizer not in OPTIMIZERS:
        raise InvalidArgument(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    if optimizer != "auto":
        if optimizer == "fides":
            try:
                import fides  # noqa: F401
            except ImportError:
                raise Her2simError("optimizer 'fides' is not installed: pip install 'her2sim[fit]' "
                                   "(or pip install fides), or use optimizer='trf'") from None
        return optimizer
    try:
        import fides  # noqa: F401
    except ImportError:
        return "trf"
    return "fides"


def _fides_minimize(both, y0, lo, hi, max_evaluations: int):
    """Minimise with fides from y0 within [lo, hi]; ``both(y) -> (r, J, nllh)``.
    Returns (y, status, message)."""
    import logging

    import fides

    def fun(y):
        r, J, value = both(y)
        if not np.isfinite(value):
            return np.inf, np.full(len(y), np.nan), np.full((len(y), len(y)), np.nan)
        return value, J.T @ r, J.T @ J

    opt = fides.Optimizer(fun, ub=hi, lb=lo, verbose=logging.ERROR, hessian_update=None,
                          options={fides.Options.MAXITER: int(max_evaluations)})
    with np.errstate(invalid="ignore"):  # fides' subproblem solver can take sqrt of a negative number (a warning from its own code)
        _, y, *_ = opt.minimize(y0)
    flag = opt.exitflag
    if flag in (fides.ExitFlag.FTOL, fides.ExitFlag.GTOL, fides.ExitFlag.XTOL):
        status = "converged"
    elif flag in (fides.ExitFlag.MAXITER, fides.ExitFlag.MAXTIME):
        status = "max_evaluations"
    else:
        status = "failed"
    return np.asarray(y, dtype=float), status, f"fides: {flag.name}"


def split_noise(objective: Objective, active=None, closed_form_noise: bool = True) -> tuple:
    """(indices the optimiser moves (array), closed-form noise groups) for the ``active`` indices:
    the noise parameters of :attr:`Objective.noise_groups` among them are not optimised but set to
    their closed-form optimum at every point (``closed_form_noise``)."""
    act = np.arange(len(objective.free_index)) if active is None else np.asarray(active, dtype=np.intp)
    groups = tuple(g for g in objective.noise_groups if g[0] in set(act.tolist())) if closed_form_noise else ()
    closed = {g[0] for g in groups}
    return np.array([i for i in act if i not in closed], dtype=np.intp), groups


def local_fit(objective: Objective, x0, *, index: int = 0, max_evaluations: int = 200,
              active=None, evaluate=None, closed_form_noise: bool = True, optimizer: str = "auto") -> StartResult:
    """One bounded local optimisation from ``x0`` (parameter scale) over the ``active`` indices
    (default: all; the others stay at their ``x0`` values, as in a profile). ``evaluate(x)``
    returns (r, J, nllh) or (f, g) for the optimiser; default: the objective's batched differences.
    With ``closed_form_noise`` the noise parameters of :attr:`Objective.noise_groups` among the
    active ones are set to their closed-form optimum at every point instead (see
    :func:`split_noise`); ``evaluate`` must then differentiate over the other active indices only.
    ``optimizer``: "fides", "trf" or "auto" for least-squares problems (module docstring)."""
    from scipy.optimize import least_squares, minimize

    clock = time.perf_counter()
    x0 = np.clip(np.asarray(x0, dtype=float), objective.lower, objective.upper)
    act, groups = split_noise(objective, active, closed_form_noise)
    lo, hi = objective.lower[act], objective.upper[act]
    squares = not objective.least_squares_refusal()
    optimizer = resolve_optimizer(optimizer)
    if evaluate is None:
        evaluate = (lambda x: objective.residuals_and_jacobian(x, act, groups)) if squares else \
            (lambda x: objective.nllh_and_gradient(x, act, groups))
    if len(act) == 0:  # only closed-form noise parameters: nothing to iterate
        x = objective.optimal_noise_x(x0, groups)
        value = float(objective.nllh(x))
        return StartResult(int(index), tuple(map(float, x0)), tuple(map(float, x)), value,
                           "converged" if np.isfinite(value) else "failed", "closed-form noise parameters only", 1,
                           time.perf_counter() - clock)

    def full(y):
        x = x0.copy()
        x[act] = y
        return x

    count = [0]
    y0 = x0[act]
    try:
        if squares:
            memo: dict = {}

            def both(y):
                key = y.tobytes()
                if key not in memo:
                    memo.clear()
                    count[0] += 1
                    r, J, value = evaluate(full(y))
                    memo[key] = (r, np.nan_to_num(J, nan=0.0, posinf=0.0, neginf=0.0), value)
                return memo[key]

            if not np.all(np.isfinite(both(y0)[0])):
                raise Her2simError("the model cannot be simulated at the start point")
            if optimizer == "fides":
                y, status, message = _fides_minimize(both, y0, lo, hi, max_evaluations)
            else:
                res = least_squares(lambda y: both(y)[0], y0, jac=lambda y: both(y)[1], bounds=(lo, hi),
                                    method="trf", max_nfev=max_evaluations, x_scale=1.0, xtol=1e-10, ftol=1e-10,
                                    gtol=1e-8)
                status = "converged" if res.status > 0 else ("max_evaluations" if res.status == 0 else "failed")
                y, message = res.x, str(res.message)
        else:
            def fg(y):
                count[0] += 1
                f, g = evaluate(full(y))
                return (f, g) if np.isfinite(f) else (1e30, np.zeros_like(y))

            res = minimize(fg, y0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)),
                           options={"maxfun": max_evaluations, "maxiter": max_evaluations})
            status = "converged" if res.success else ("max_evaluations" if res.status == 1 else "failed")
            y, message = res.x, str(res.message)
        x = full(y)
        value = float(evaluate(x)[2 if squares else 0])
        if groups:  # the noise parameters at their optimum for the final point (the value above)
            x = objective.optimal_noise_x(x, groups)
        if not np.isfinite(value):
            status, message = "failed", "the model cannot be simulated at the end point"
    except Her2simError as exc:
        x, value, status, message = x0, float("inf"), "failed", str(exc)
    return StartResult(int(index), tuple(map(float, x0)), tuple(map(float, x)), value, status, message, count[0],
                       time.perf_counter() - clock)


def local_fits(objective: Objective, X0, *, indices=None, max_evaluations: int = 200,
               closed_form_noise: bool = True, optimizer: str = "auto") -> list:
    """Local fits from every row of X0 (S, n_free), run in lockstep threads: each round of
    objective evaluations of all S optimisers is one batch-path integration."""
    import threading

    X0 = np.atleast_2d(np.asarray(X0, dtype=float))
    indices = list(range(len(X0))) if indices is None else list(indices)
    squares = not objective.least_squares_refusal()
    act, groups = split_noise(objective, None, closed_form_noise)
    fn = objective.residuals_and_jacobian_many if squares else objective.nllh_and_gradient_many
    step = Lockstep(lambda xs: fn(xs, act, groups), len(X0))
    results: list = [None] * len(X0)

    def worker(k):
        try:
            results[k] = local_fit(objective, X0[k], index=indices[k], max_evaluations=max_evaluations,
                                   evaluate=lambda x: step.call(k, x), closed_form_noise=closed_form_noise,
                                   optimizer=optimizer)
        finally:
            step.leave()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(X0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if step.error is not None:
        raise step.error
    return results


def run_starts(shared, indices, X0) -> list:
    """Task for :func:`her2sim.executors.map_tasks`: a group of starts in lockstep.
    ``shared = (problem, options, max_evaluations[, closed_form_noise[, optimizer]])``; returns one dict
    per start."""
    problem, options, max_evaluations, *rest = shared
    fits = local_fits(Objective(problem, **options), np.asarray(X0), indices=indices,
                      max_evaluations=max_evaluations, closed_form_noise=bool(rest[0]) if rest else True,
                      optimizer=rest[1] if len(rest) > 1 else "auto")
    return [asdict(r) for r in fits]


def start_points(objective: Objective, starts: int, seed) -> np.ndarray:
    """(starts, n_free) Latin hypercube starts over the bounds (parameter scale)."""
    return latin_hypercube(starts, objective.lower, objective.upper, seed=seed)


def fit(problem: PetabProblem, *, starts: int = 20, seed=0, scheduler=None, out=None, resume: bool = False,
        objective: Objective | None = None, max_evaluations: int = 200, progress: bool = False,
        group: int | None = None, closed_form_noise: bool = True, optimizer: str = "auto") -> FitResult:
    """Multi-start fit of a PEtab problem.

    Parameters
    ----------
    problem : from :func:`her2sim.fit.read_problem`.
    starts : number of local optimisations; starts are a Latin hypercube drawn with ``seed``.
    scheduler : None/"local", "processes" or a Dask address/client (see :mod:`her2sim.executors`).
    out : directory for per-start JSON files (``starts/``); with ``resume`` finished starts are reused.
    objective : an :class:`Objective` (for its tolerances and step); default ``Objective(problem)``.
    max_evaluations : objective+derivative evaluations per start.
    group : starts optimised together in lockstep per task (default: all starts in this process;
        one group per core on other schedulers). With ``out``, groups are also the unit of saving.
    closed_form_noise : noise parameters that only scale a normal noise (``Objective.noise_groups``)
        are set to their closed-form optimum at every point instead of being optimised (Loos et al.,
        Bioinformatics 2018); False: every estimated parameter is optimised.
    optimizer : "auto" (fides when installed, else "trf"), "fides" or "trf": the local optimiser of
        least-squares problems (see the module docstring); the one used is ``attrs["optimizer"]``.
    """
    from ..executors import Progress, map_tasks

    if int(starts) < 1:
        raise InvalidArgument(f"starts must be >= 1, got {starts!r}")
    optimizer = resolve_optimizer(optimizer)
    objective = objective or Objective(problem)
    if not problem.free:
        raise Her2simError("parameter table: no parameter has estimate = 1; nothing to fit")
    X0 = start_points(objective, int(starts), seed)
    done: dict = {}
    folder = None
    if out is not None:
        folder = Path(out) / "starts"
        folder.mkdir(parents=True, exist_ok=True)
        if resume:
            for f in folder.glob("start_*.json"):
                d = json.loads(f.read_text())
                if d.get("seed") == _seed_key(seed) and d["index"] < starts:
                    done[d["index"]] = StartResult(**{k: v for k, v in d.items() if k != "seed"})
    todo = [(i, X0[i]) for i in range(int(starts)) if i not in done]
    # the objective's compiled C kernels (Objective(kernels=KernelCache())), if any, serve every start
    # and worker; none by default: the C path rounds differently (~1e-13 per evaluation) and whether a
    # start ends on a tolerance or on max_evaluations is sensitive to that (README "Compiled kernels")
    shared = (problem, _options(objective), int(max_evaluations), bool(closed_form_noise), optimizer)
    bar = Progress(len(todo), enabled=progress, what="fit", unit="starts") if progress else None
    # groups of starts run in lockstep (one batch integration per round of evaluations); with an
    # output folder each group's starts are written when it finishes, so an interruption loses one group
    from ..executors import cores

    if group is None:
        group = max(1, len(todo) if scheduler in (None, "local") else -(-len(todo) // cores()))
        if folder is not None:
            group = min(group, 10)
    groups = [todo[lo:lo + group] for lo in range(0, len(todo), max(int(group), 1))]
    rounds = [groups] if folder is None else [[g] for g in groups]
    results = []
    for batch in rounds:
        tasks = [([i for i, _ in g], np.array([x for _, x in g])) for g in batch]
        for got in map_tasks(run_starts, shared, tasks, scheduler=scheduler):
            for r in got:
                if folder is not None:
                    (folder / f"start_{r['index']:04d}.json").write_text(json.dumps({**r, "seed": _seed_key(seed)}))
                if bar is not None:
                    bar.update(1, failed=int(r["status"] == "failed"))
            results.extend(got)
    if bar is not None:
        bar.close()
    for r in results:
        done[r["index"]] = StartResult(**{k: tuple(v) if isinstance(v, list) else v for k, v in r.items()})
    ordered = tuple(sorted(done.values(), key=lambda s: (not np.isfinite(s.nllh), s.nllh, s.index)))
    best = np.array(ordered[0].x)
    theta = objective.theta(best)[0]
    # how accurate the best fit's simulations are, measured: every condition re-integrated at a tighter tolerance
    cert = objective.certificate(theta) if np.isfinite(ordered[0].nllh) else None
    return FitResult(problem.free, objective.scales, ordered, theta,
                     {"seed": seed, "starts": int(starts), "method": objective.method, "rtol": objective.rtol,
                      "atol": objective.atol, "fd_step": objective.fd_step, "max_steps": objective.max_steps,
                      "max_evaluations": int(max_evaluations),
                      "optimizer": optimizer if not objective.least_squares_refusal() else "L-BFGS-B",
                      "closed_form_noise": [problem.free[k] for k, *_ in objective.noise_groups]
                      if closed_form_noise else [], "certificate": cert})


def _seed_key(seed):
    return seed if isinstance(seed, (int, type(None))) else str(seed)


def parameter_table(problem: PetabProblem, theta) -> "pandas.DataFrame":  # noqa: F821
    """The problem's parameter table with nominal values replaced by ``theta`` (linear scale)."""
    import pandas as pd

    rows = []
    for p, v in zip(problem.parameters, np.asarray(theta, dtype=float)):
        row = {"parameterId": p.id, "parameterScale": p.scale, "lowerBound": p.lower, "upperBound": p.upper,
               "nominalValue": float(v), "estimate": int(p.estimate)}
        if p.prior_type:
            row["objectivePriorType"] = p.prior_type
            row["objectivePriorParameters"] = ";".join(repr(a) for a in p.prior_parameters)
        rows.append(row)
    return pd.DataFrame(rows)


__all__ = ["OPTIMIZERS", "StartResult", "FitResult", "Lockstep", "latin_hypercube", "resolve_optimizer", "local_fit", "local_fits", "split_noise", "fit",
           "parameter_table"]
