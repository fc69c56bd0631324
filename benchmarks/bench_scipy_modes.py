"""Scipy path: one simulation and a batch of conditions through each mode (loop/block x method).

Prints conditions/s, the ratio to the loop-LSODA baseline measured in the same run, the maximum
relative error against a tight Radau reference (rtol 1e-10) on a subset, and peak memory.

    python benchmarks/bench_scipy_modes.py [--n 1000] [--model default] [--rtol 1e-6]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402

import her2sim  # noqa: E402
from her2sim.solvers.solve import steady_state  # noqa: E402


def varied_conditions(net, n: int, seed: int = 0, n_params: int = 8):
    """n conditions with n_params rate constants log-uniform within x/2..x2 of nominal (seeded)."""
    rng = np.random.default_rng(seed)
    candidates = [p.name for p in net.spec.parameters if p.internal_unit in ("1/h", "1/nM/h") and p.value > 0
                  and not p.is_input]
    names = list(rng.choice(candidates, size=min(n_params, len(candidates)), replace=False))
    factors = np.exp(rng.uniform(np.log(0.5), np.log(2.0), (n, len(names))))
    base = {name: net.spec.parameter(name).value for name in names}
    return names, [{"parameters": {nm: base[nm] * f for nm, f in zip(names, row)}} for row in factors]


def timed(fn):
    """(result, wall seconds). Timed without tracemalloc, which slows Python-heavy code ~30x."""
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def peak_memory_mb(fn) -> float:
    """Peak traced Python/NumPy allocation of one call, in MB (a separate, untimed run)."""
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def max_rel_error(result, reference, idx) -> float:
    a, b = result.species[idx], reference.species
    return float(np.nanmax(np.abs(a - b) / np.maximum(np.abs(b), 1e-6)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="conditions in the batch (default 1000)")
    parser.add_argument("--model", default="default")
    parser.add_argument("--rtol", type=float, default=1e-6)
    parser.add_argument("--atol", type=float, default=1e-9)
    parser.add_argument("--n-ref", type=int, default=10, help="conditions checked against the tight reference")
    parser.add_argument("--crossover", action="store_true",
                        help="only time loop-LSODA vs block-BDF at B = 1..64 (chooses BLOCK_MIN_CONDITIONS)")
    args = parser.parse_args()
    if args.crossover:
        crossover(args)
        return

    net = her2sim.compile_network(her2sim.load_model(args.model))
    x_rest = steady_state(net, net.x0, net.p0)
    names, conds = varied_conditions(net, args.n)
    t_eval = np.linspace(0, 72, 73)
    common = dict(time="72 h", t_eval=t_eval, rtol=args.rtol, atol=args.atol, preequilibrate=False,
                  initial_state=x_rest)
    ref_idx = np.arange(min(args.n_ref, args.n))
    reference, ref_wall = timed(lambda: her2sim.simulate(
        net, conditions=[conds[i] for i in ref_idx], mode="loop", method="Radau", time="72 h", t_eval=t_eval,
        rtol=1e-10, atol=1e-12, preequilibrate=False, initial_state=x_rest))

    print(f"# her2sim scipy modes | model {args.model}: {net.n_species} species, {len(net.reaction_names)} reactions,"
          f" {len(net.jac_rows)} Jacobian non-zeros | varied: {', '.join(names)}")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()},"
          f" numpy {np.__version__}, scipy {scipy.__version__}; rtol {args.rtol:g}, atol {args.atol:g}, 72 h, 73 outputs")
    print(f"# reference: Radau rtol 1e-10 on {len(ref_idx)} conditions ({ref_wall:.1f} s)")

    one, one_wall = timed(lambda: her2sim.simulate(net, **common))
    print(f"one simulation (LSODA, no pre-equilibration): {one_wall * 1e3:.1f} ms")
    with_pre, pre_wall = timed(lambda: her2sim.simulate(args.model, drugs=None, time="72 h"))
    print(f"one simulation incl. model load, compile and pre-equilibration: {pre_wall * 1e3:.1f} ms")

    rows = []
    plans = [("loop", "LSODA"), ("loop", "BDF"), ("loop", "Radau"), ("block", "BDF"), ("block", "Radau")]
    for mode, method in plans:
        n = args.n if (mode, method) != ("loop", "Radau") else min(args.n, 100)
        batch = conds[:n]
        run = lambda: her2sim.simulate(net, conditions=batch, mode=mode, method=method, **common)  # noqa: E731
        result, wall = timed(run)
        peak = peak_memory_mb(lambda: her2sim.simulate(net, conditions=batch[:100], mode=mode, method=method,
                                                        **common))
        err = max_rel_error(result, reference, ref_idx) if n >= len(ref_idx) else float("nan")
        failed = sum(not s.is_successful for s in result.status)
        rows.append((mode, method, n, n / wall, err, peak, failed))
    base = rows[0][3]
    print("\n| mode | method | conditions | conditions/s | ratio vs loop LSODA | max rel. error "
          "| peak MB (first 100) | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for mode, method, n, rate, err, peak, failed in rows:
        print(f"| {mode} | {method} | {n} | {rate:.1f} | {rate / base:.2f} | {err:.1e} | {peak:.0f} | {failed} |")


def crossover(args) -> None:
    net = her2sim.compile_network(her2sim.load_model(args.model))
    x_rest = steady_state(net, net.x0, net.p0)
    _, conds = varied_conditions(net, 64)
    common = dict(time="72 h", t_eval=np.linspace(0, 72, 73), rtol=args.rtol, atol=args.atol,
                  preequilibrate=False, initial_state=x_rest)
    print("| conditions | loop LSODA cond/s | block BDF cond/s | block / loop |")
    print("|---|---|---|---|")
    for B in (1, 2, 4, 8, 16, 32, 64):
        rates = []
        for mode, method in (("loop", "LSODA"), ("block", "BDF")):
            _, wall = timed(lambda: her2sim.simulate(net, conditions=conds[:B], mode=mode, method=method, **common))
            rates.append(B / wall)
        print(f"| {B} | {rates[0]:.1f} | {rates[1]:.1f} | {rates[1] / rates[0]:.2f} |")


if __name__ == "__main__":
    main()
