"""Chen et al. 2009 (ErbB signalling, 500 species, 827 reactions) imported from SBML: wall time of
her2sim's scipy path and batch path vs libRoadRunner on the same file, and their agreement.

Usage::

    python benchmarks/bench_sbml.py [--end 1799] [--batch 1 8] [--rtol 1e-8]

``--end`` is the simulated time in the model's unit (seconds in the PEtab problem). The model
switches its ligand inputs on at t = 1800 with a 10 ms sine ramp (an almost discontinuous step
of 1e7), which every adaptive solver must resolve; ``--end 9000`` includes it (the PEtab time
course), the default stops before it. Import and compile times are reported separately.
Agreement: max relative deviation from libRoadRunner over all species and output times, with
values below 1e-6 of the largest value floored.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

CHEN = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "petab-benchmarks" / "Chen_MSB2009" / \
    "model_Chen_MSB2009.xml"


def deviation(got: np.ndarray, want: np.ndarray) -> float:
    floor = 1e-6 * np.abs(want).max()
    return float(np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)))


def main(argv=None) -> None:
    import roadrunner

    import her2sim
    from her2sim.solvers.batch import simulate_batch
    from her2sim.io.sbml_import import import_sbml

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--end", type=float, default=1799.0)
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--rtol", type=float, default=1e-8)
    ap.add_argument("--atol", type=float, default=1e-10)
    args = ap.parse_args(argv)
    grid = np.linspace(0.0, args.end, args.points)

    clock = time.perf_counter()
    spec = import_sbml(CHEN)
    t_import = time.perf_counter() - clock
    clock = time.perf_counter()
    net = her2sim.compile_network(spec)
    t_compile = time.perf_counter() - clock
    print(f"Chen 2009: {net.n_species} states, {len(net.reaction_names)} reactions, {net.n_params} parameters; "
          f"import {t_import:.2f} s, compile {t_compile:.2f} s")

    rr = roadrunner.RoadRunner(str(CHEN))
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = args.rtol, args.atol
    rr.integrator.maximum_num_steps = 500_000
    names = list(rr.model.getFloatingSpeciesIds())
    cols = [net.species_index(s) for s in names]
    clock = time.perf_counter()
    want = np.asarray(rr.simulate(times=grid, selections=[f"[{s}]" for s in names]))
    t_rr = time.perf_counter() - clock
    print(f"libRoadRunner (CVODE)        1 condition  {t_rr:8.2f} s")

    for method in ("LSODA", "BDF"):
        clock = time.perf_counter()
        x = her2sim.simulate(net, time=args.end, t_eval=grid, rtol=args.rtol, atol=args.atol, method=method)
        dt = time.perf_counter() - clock
        print(f"her2sim scipy {method:5s}          1 condition  {dt:8.2f} s   max rel. dev. vs RR "
              f"{deviation(x.species[0][:, cols], want):.2e}")
    for B in args.batch:
        P = np.tile(net.p0, (B, 1))
        clock = time.perf_counter()
        res = simulate_batch(net, P=P, t_eval=grid, rtol=args.rtol, atol=args.atol)
        dt = time.perf_counter() - clock
        dev = deviation(res.states[0][:, cols], want) if res.ok[0] else float("nan")
        print(f"her2sim batch rodas4     {B:4d} conditions {dt:8.2f} s   ({dt / B:.2f} s each; ok {int(res.ok.sum())}/{B}) "
              f"max rel. dev. vs RR {dev:.2e}")
        if B > 1:
            clock = time.perf_counter()
            for _ in range(B):
                rr.reset()
                rr.simulate(times=grid, selections=[f"[{s}]" for s in names])
            print(f"libRoadRunner             {B:4d} conditions {time.perf_counter() - clock:8.2f} s (sequential)")


if __name__ == "__main__":
    main()
