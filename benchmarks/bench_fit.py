"""Benchmark her2sim.fit on PEtab Benchmark Collection problems (../shared/data/petab-benchmarks).

Usage:  python benchmarks/bench_fit.py [--problems Boehm_JProteomeRes2014,...] [--starts 50]
        [--skip-fit] [--skip-accuracy] [--skip-speed] [--repeat 3] [--noise closed-form|optimised|both]
        [--seed S] [--chen-roadrunner]

1. Speed per problem (batch path, rtol 1e-8, atol 1e-12, BLAS pinned to one thread, this process):
   objective evaluations/s (one parameter vector, all conditions), gradient evaluations/s (central
   differences: 2n+1 vectors in one batch), and the lockstep throughput: gradients/s when 10
   optimisers ask together (10 x (2n+1) vectors in one batch), as a multi-start fit does.
2. Gradient accuracy (Boehm): the batched central differences at several steps against a tight
   reference (scipy Radau at rtol 1e-12, atol 1e-16, central differences with Richardson
   extrapolation), at the nominal point and two random points; error = |g - g_ref|_inf / |g_ref|_inf.
3. A multi-start fit of Boehm from Latin hypercube starts (seed 0, all starts in lockstep, at most
   --max-evaluations each, max_steps 20000 as in `her2sim fit`): wall time, the share of starts
   within 0.1 of the best known nllh 138.222, peak memory (ru_maxrss).
A peer (pyPESTO + AMICI) is run where installed; otherwise the script says so.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse
import platform
import resource
import time
from pathlib import Path

import numpy as np

from her2sim.fit import Objective, fit, read_problem

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "petab-benchmarks"
BOEHM_BEST = 138.22199693517703


def _yaml(name):
    return DATA / name / f"{name}.yaml"


def speed(name: str, repeat: int) -> dict:
    t = time.perf_counter()
    problem = read_problem(_yaml(name))
    obj = Objective(problem)
    setup = time.perf_counter() - t
    x = obj.x_nominal()
    obj.nllh(x)  # first call builds the LU plan
    rng = np.random.default_rng(0)

    def rate(fn, n):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        return n / (time.perf_counter() - t)

    xs = [x + rng.normal(0, 0.05, len(x)) for _ in range(10)]
    return {"problem": name, "n_free": len(x), "states": obj.network.n_species, "conditions": len(obj.conditions),
            "setup_s": setup, "objective_per_s": rate(lambda: obj.nllh(x), repeat),
            "gradient_per_s": rate(lambda: obj.nllh_and_gradient(x), repeat),
            "lockstep10_gradients_per_s": 10 * rate(lambda: obj.nllh_and_gradient_many(xs), max(1, repeat // 2))}


def gradient_accuracy(name: str = "Boehm_JProteomeRes2014", steps=(1e-2, 1e-3, 1e-4, 1e-5)) -> list:
    problem = read_problem(_yaml(name))
    ref = Objective(problem, method="scipy", rtol=1e-12, atol=1e-16)
    x0 = ref.x_nominal()
    rng = np.random.default_rng(1)
    points = [x0] + [np.clip(x0 + rng.normal(0, 0.3, len(x0)), ref.lower, ref.upper) for _ in range(2)]
    rows = []
    for k, x in enumerate(points):
        g_ref = np.empty(len(x))
        for i in range(len(x)):
            def d(h):
                e = np.zeros_like(x)
                e[i] = h
                return (ref.nllh(x + e) - ref.nllh(x - e)) / (2 * h)
            g_ref[i] = (4 * d(5e-4) - d(1e-3)) / 3
        for h in steps:
            _, g = Objective(problem, fd_step=h).nllh_and_gradient(x)
            rows.append({"point": k, "step": h, "rel_error": float(np.max(np.abs(g - g_ref)) / np.max(np.abs(g_ref))),
                         "grad_norm": float(np.max(np.abs(g_ref)))})
    return rows


def boehm_fit(starts: int, max_evaluations: int, closed_form_noise: bool = True, seed: int = 0,
              optimizer: str = "auto") -> dict:
    problem = read_problem(_yaml("Boehm_JProteomeRes2014"))
    objective = Objective(problem, max_steps=20000)  # as `her2sim fit` does
    t = time.perf_counter()
    result = fit(problem, starts=starts, seed=seed, objective=objective, max_evaluations=max_evaluations,
                 closed_form_noise=closed_form_noise, optimizer=optimizer)
    wall = time.perf_counter() - t
    vals = np.array([s.nllh for s in result.starts])
    return {"starts": starts, "max_evaluations": max_evaluations, "wall_s": wall, "best_nllh": float(vals.min()),
            "noise": "closed form" if closed_form_noise else "optimised", "seed": seed,
            "optimizer": result.attrs["optimizer"],
            "plateau_249.75": int(sum(abs(v - 249.746) < 0.01 for v in vals)),
            "distinct_optima": sorted({round(float(v), 2) for v in vals})[:8],
            "certificate": (result.attrs.get("certificate") or {}).get("max_rel_error"),
            "share_within_0.1_of_138.22": float(np.mean(vals <= BOEHM_BEST + 0.1)),
            "converged": int(sum(s.status == "converged" for s in result.starts)),
            "median_evaluations": float(np.median([s.n_evaluations for s in result.starts])),
            "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def chen_roadrunner(rtol: float, atol: float) -> dict:
    """Chen 2009 at the nominal parameters: her2sim's batch path vs libRoadRunner (CVODE) on the same
    SBML and tables, both at (rtol, atol); libRoadRunner's states go through her2sim's observable and
    noise code, so the two log-likelihoods differ only by the integrators."""
    import roadrunner

    name = "Chen_MSB2009"
    problem = read_problem(_yaml(name))
    obj = Objective(problem, rtol=rtol, atol=atol)
    theta = problem.nominal()
    t = time.perf_counter()
    ours = obj.evaluate(theta[None])
    ours_s = time.perf_counter() - t
    rr = roadrunner.RoadRunner(str(DATA / name / f"model_{name}.xml"))
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = rtol, atol
    rr.integrator.maximum_num_steps = 10**6
    globals_, species = set(rr.model.getGlobalParameterIds()), list(rr.model.getFloatingSpeciesIds())
    T, C = len(obj.t_eval), len(obj.conditions)
    states = np.zeros((1, C, T, obj.network.n_species))
    grid = np.concatenate([[0.0], obj.t_eval]) if obj.t_eval[0] > 0 else obj.t_eval
    t = time.perf_counter()
    for c, (pre, cid) in enumerate(obj.conditions):
        if pre:
            raise SystemExit("chen_roadrunner: pre-equilibration is not handled here")
        rr.resetAll()
        for j, pid in enumerate(problem.parameter_ids):
            if pid in globals_:
                rr[pid] = theta[j]
        for target, value in problem.conditions[cid].items():
            rr[f"init([{target}])" if target in species else target] = float(value)
        out = np.asarray(rr.simulate(times=grid, selections=["time"] + [f"[{x}]" for x in species]))[-T:]
        for k, x in enumerate(species):
            states[0, c, :, obj.network.species_index(x)] = out[:, k + 1]
        if obj.time_index is not None:
            states[0, c, :, obj.time_index] = out[:, 0]
    rr_s = time.perf_counter() - t
    # the parameters in force are the condition's (Chen's observables use no time-switched parameter)
    pidx, pconst = obj.sim_maps[0], obj.sim_maps[1]
    P = np.where(pidx >= 0, theta[np.clip(pidx, 0, None)], pconst)[None, :, None, :].repeat(T, axis=2)
    # this objective's own simulation is done; from here it scores libRoadRunner's states instead
    obj.simulate_states = lambda th: (states, np.ones((1, C), bool), np.full((1, C), "", object), P)
    theirs = obj.evaluate(theta[None])
    y, z = ours.simulated[0], theirs.simulated[0]
    rel = np.abs(y - z) / np.maximum(np.abs(z), 1e-6 * np.abs(z).max())
    return {"rtol": rtol, "atol": atol, "llh_her2sim": float(ours.llh[0]), "llh_roadrunner": float(theirs.llh[0]),
            "max_rel_observable_difference": float(rel.max()), "her2sim_s": ours_s, "roadrunner_s": rr_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="Boehm_JProteomeRes2014,Fiedler_BMCSystBiol2016,Chen_MSB2009")
    ap.add_argument("--starts", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-evaluations", type=int, default=200)
    ap.add_argument("--skip-fit", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--chen-roadrunner", action="store_true",
                    help="also compare Chen 2009's log-likelihood with libRoadRunner (rtol 1e-6, atol 1e-8; ~15 min)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the Latin hypercube starts")
    ap.add_argument("--optimizer", choices=["auto", "fides", "trf"], default="auto",
                    help="local optimiser of the Boehm fit (auto: fides when installed)")
    ap.add_argument("--noise", choices=["closed-form", "optimised", "both"], default="closed-form",
                    help="noise parameters of the Boehm fit: closed-form optimum (default) or optimised")
    args = ap.parse_args()
    print(f"# bench_fit on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__}")
    for name in ([] if args.skip_speed else args.problems.split(",")):
        r = speed(name, args.repeat)
        print(f"{r['problem']}: {r['states']} states, {r['conditions']} conditions, {r['n_free']} free; setup "
              f"{r['setup_s']:.1f} s; objective {r['objective_per_s']:.2f}/s; gradient {r['gradient_per_s']:.2f}/s; "
              f"lockstep x10 {r['lockstep10_gradients_per_s']:.2f} gradients/s", flush=True)
    if not args.skip_accuracy:
        for r in gradient_accuracy():
            print(f"gradient accuracy Boehm point {r['point']} step {r['step']:g}: rel error {r['rel_error']:.2e} "
                  f"(|g_ref|_inf {r['grad_norm']:.3g})", flush=True)
    if args.chen_roadrunner:
        r = chen_roadrunner(1e-6, 1e-8)
        print(f"Chen 2009 at rtol {r['rtol']:g}, atol {r['atol']:g}: llh her2sim {r['llh_her2sim']!r} "
              f"({r['her2sim_s']:.0f} s), libRoadRunner {r['llh_roadrunner']!r} ({r['roadrunner_s']:.0f} s); "
              f"observables within {r['max_rel_observable_difference']:.2g} relative", flush=True)
    modes = {"closed-form": [True], "optimised": [False], "both": [True, False]}[args.noise]
    for closed in ([] if args.skip_fit else modes):
        r = boehm_fit(args.starts, args.max_evaluations, closed, args.seed, args.optimizer)
        print(f"Boehm {r['starts']}-start fit ({r['optimizer']}, seed {r['seed']}, noise parameters {r['noise']}, "
              f"<= {r['max_evaluations']} "
              f"evaluations each): {r['wall_s']:.0f} s wall, best nllh {r['best_nllh']:.4f}, "
              f"{100 * r['share_within_0.1_of_138.22']:.0f}% of starts within 0.1 of 138.22, "
              f"{r['converged']} converged, median {r['median_evaluations']:.0f} evaluations, "
              f"certificate max rel error {r['certificate']:.2g}, peak RSS {r['peak_rss_MiB']:.0f} MiB; "
              f"{r['plateau_249.75']} starts on the plateau 249.75; lowest final values {r['distinct_optima']}",
              flush=True)
    try:
        import amici  # noqa: F401
        import pypesto  # noqa: F401
        print("pyPESTO + AMICI installed: peer comparison not implemented in this run")
    except ImportError:
        print("peer: pyPESTO + AMICI not installed here (AMICI compiles each model with a C++ toolchain); skipped")


if __name__ == "__main__":
    main()
