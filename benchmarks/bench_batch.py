"""Benchmark the batch path (simulate_batch) against the scipy path, at measured accuracy.

Usage:  python benchmarks/bench_batch.py [--full] [--write] [--model NAME_OR_PATH] [--refs N] [--fused both]

Problem: the bundled HER2 model ("default"; falls back to tests/models/batch_chain.toml if it does
not load), 72 h, 73 output times, atol 1e-9, 8 parameters varied log-uniformly within +-2x of
nominal (seed 0); every engine starts from the drug-free steady state of the nominal model (cells at
rest), so the perturbed parameters drive real dynamics. libRoadRunner (if installed) integrates the
SBML export of the same model from the same state with the same conditions. A tight
reference (Radau, rtol 1e-10, atol 1e-12) is computed first for the first --refs conditions;
every engine's error is measured on those conditions as max |x - ref| / max(|ref|, 1e-3 nM)
(relative above 1 pM, absolute in nM below). Speeds are conditions per second, measured in
this process, with BLAS pinned to one thread. --full adds B = 1e5. --write replaces the
results section of benchmarks/README.md. The cProfile of one B = 1e4 run is printed at the end.
Batch rows run with the NumPy operations ("numpy") and/or the compiled C kernels ("C",
her2sim.solvers.ckernels, built once before the timings: the build time is printed on its own line and
is not in any cond/s); --fused picks numpy, c or both. --reuse-output adds C rows (one worker) timing
a call that writes into an earlier call's output array (``simulate_batch(out=...)``), as a run's
later calls of one size do: the operating system's zeroing of a fresh B x T x n output (system time,
10-40 % of a C-path run here, depending on the machine's load) is then not paid; libRoadRunner's
loop, whose per-condition results are small, recycles its memory the same way.

Worker scaling only (about a minute on a quiet 2-core machine; nothing else runs):
    python benchmarks/bench_batch.py --scaling 100000 [--rtols 1e-4] [--methods rodas4] [--repeats 2]
prints, per worker count (1, 2; --workers), the wall time of one simulate_batch call with the C
kernels (no certificate), its CPU seconds per member (the integrating process and its workers,
RUSAGE_SELF + RUSAGE_CHILDREN) and the speed-up of each worker count over one worker (best wall
time of --repeats alternating runs).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported: one BLAS thread per process

import argparse
import cProfile
import datetime
import io
import multiprocessing as mp
import platform
import pstats
import resource
import sys
import time
from pathlib import Path

import numpy as np
import scipy

import her2sim
import her2sim.solvers.certify
from her2sim.solvers.batch import lu_plan, simulate_batch
from her2sim.solvers.ckernels import cpu_kernels
from her2sim.solvers.tableaus import auto_method

ROOT = Path(__file__).resolve().parents[1]
T_EVAL = np.linspace(0.0, 72.0, 73)
ATOL = 1e-9
FLOOR = 1e-3  # nM
N_VARIED = 8


def load(model: str):
    try:
        return her2sim.compile_network(her2sim.load_model(model)), model
    except Exception as exc:  # noqa: BLE001 - report and fall back
        fallback = str(ROOT / "tests" / "models" / "batch_chain.toml")
        print(f"# {model!r} does not load ({exc}); falling back to {fallback}", file=sys.stderr)
        return her2sim.compile_network(her2sim.load_model(fallback)), fallback


def varied_parameters(net, n_conditions: int, seed: int = 0):
    """The N_VARIED non-input parameters with non-zero values, evenly spaced in name order."""
    inputs = {d.dose_parameter for d in net.spec.drugs} | {p.name for p in net.spec.parameters
                                                            if getattr(p, "input", False)}
    names = sorted(n for n, v in zip(net.parameter_names, net.p0) if v != 0 and n not in inputs)
    chosen = [names[int(k)] for k in np.linspace(0, len(names) - 1, N_VARIED)]
    rng = np.random.default_rng(seed)
    factors = np.exp(rng.uniform(-np.log(2), np.log(2), (n_conditions, N_VARIED)))
    P = np.tile(net.p0, (n_conditions, 1))
    for k, name in enumerate(chosen):
        P[:, net.parameter_index(name)] *= factors[:, k]
    return chosen, P


def max_err(states, ref):
    return float(np.max(np.abs(states - ref) / np.maximum(np.abs(ref), FLOOR)))


def rest_state(net):
    """Drug-free steady state of the nominal model: the common starting point of every engine."""
    from her2sim.solvers.solve import input_free, steady_state

    return np.maximum(steady_state(net, net.x0, input_free(net, net.p0)), 0.0)


def scipy_path(net, names, P, rtol, method, mode, x_rest, atol=ATOL):
    conds = [{"parameters": {n: float(p[net.parameter_index(n)]) for n in names}} for p in P]
    t0 = time.perf_counter()
    res = her2sim.simulate(net, conditions=conds, time="72 h", t_eval=T_EVAL, preequilibrate=False,
                           initial_state=x_rest, method=method, mode=mode, rtol=rtol, atol=atol)
    return res.species, time.perf_counter() - t0


def roadrunner_path(model, net, names, P, rtol):
    """libRoadRunner loop on the SBML export (None if libroadrunner / libsbml are missing)."""
    try:
        import roadrunner  # noqa: F401

        sys.path.insert(0, str(Path(__file__).parent))
        from bench_roadrunner import prepare, roadrunner_throughput
    except ImportError:
        return None
    values = np.array([[p[net.parameter_index(n)] for n in names] for p in P])
    setup = prepare(model, len(P), parameters=names, values=values, n_reference=1)
    out = roadrunner_throughput(setup=setup, rtol=rtol, atol=ATOL, check_error=False, return_states=True)
    return out["states"], out["seconds"], out["version"], out["cpu_seconds"]


def _cpu_with_children() -> float:
    """CPU seconds of this process and its reaped children (forked workers)."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                 resource.getrusage(resource.RUSAGE_CHILDREN)))


def _child(conn, net, P, rtol, workers, x_rest, method, certify, fused, reuse=False):
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = None
    if reuse:  # as a run's later calls of one size: the output array of an earlier call (untimed), its pages touched
        out = np.empty((len(P), len(T_EVAL), net.n_species))
        simulate_batch(net, X0=x_rest, P=P, t_eval=T_EVAL, rtol=rtol, atol=ATOL, method=method, certify=None,
                       fused=fused, out=out)
    t0, c0, call = time.perf_counter(), time.process_time(), _cpu_with_children()
    res = simulate_batch(net, X0=x_rest, P=P, t_eval=T_EVAL, rtol=rtol, atol=ATOL, workers=workers, method=method,
                         certify=certify, fused=fused, out=out)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0  # cpu: this process only (workers=1)
    cpu_all = _cpu_with_children() - call  # with the forked workers' CPU (workers > 1)
    if certify is not None:  # report the certificate and its share of the wall time
        conn.send((dt, res.attrs["certificate"]))
        conn.close()
        return
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
               resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    conn.send((dt, res.states[:64].copy(), res.steps.mean(), res.rejected.mean(), int(res.ok.sum()),
               (peak - base) / 1024.0, cpu, cpu_all))
    conn.close()


def batch_path(net, P, rtol, workers, x_rest, method="rodas4", certify=None, fused=False, reuse=False):
    """Run in a forked child so peak memory is measured per configuration (without the accuracy
    certificate unless ``certify`` is given: its cost is reported separately). ``fused``: False
    (NumPy operations) or built CpuKernels (inherited by the fork). ``reuse``: time a second call
    writing into the first one's output array (``out=``)."""
    parent, child = mp.get_context("fork").Pipe()
    proc = mp.get_context("fork").Process(target=_child, args=(child, net, P, rtol, workers, x_rest, method,
                                                               certify, fused, reuse))
    proc.start()
    out = parent.recv()
    proc.join()
    return out


def profile_run(net, P, rtol, x_rest, fused=False):
    prof = cProfile.Profile()
    prof.enable()
    t0 = time.perf_counter()
    simulate_batch(net, X0=x_rest, P=P, t_eval=T_EVAL, rtol=rtol, atol=ATOL, certify=None, fused=fused)
    wall = time.perf_counter() - t0
    prof.disable()
    st = pstats.Stats(prof)
    cum = {}
    for (file, _, func), (_, _, tt, ct, _) in st.stats.items():
        cum[(Path(file).name, func)] = (tt, ct)

    def c(file, func):
        return cum.get((file, func), (0.0, 0.0))[1]

    rhs = c("network.py", "rhs_T") + c("ckernels.py", "rhs")
    jac = c("network.py", "jacobian_values_T") + c("ckernels.py", "jac")
    parts = {
        "right-hand side (6-8 per step)": rhs,
        "Jacobian": jac,
        "LU: assemble I/(h*gamma) - J": c("sparse_lu.py", "assemble"),
        "LU: numeric factorisation": c("sparse_lu.py", "factor") + c("ckernels.py", "factor"),
        "triangular solves (6-8 per step) and gathering their factors": (
            c("sparse_lu.py", "solve") + c("sparse_lu.py", "solve_into") + c("sparse_lu.py", "gather_factors")
            + c("ckernels.py", "solve")),
        # cProfile sees einsum but not np.dot's C work (only its Python dispatcher): the stage sums
        # by np.dot count in the rest of the loop
        "stage combinations (einsum)": sum(v[1] for (f, fn), v in cum.items() if f == "~" and "c_einsum" in fn),
        "dense output": c("stepping.py", "dense") + c("ckernels.py", "dense"),
        "error norm and extremes (C)": c("ckernels.py", "error"),
        "NaN-filling the output (only rows never written, since 2026-11-27)": sum(
            v[1] for (f, fn), v in cum.items() if f == "~" and "'fill'" in fn),
    }
    integ = c("batch.py", "_integrate")
    parts["controller, error norm, bookkeeping (rest of the loop)"] = integ - sum(parts.values())
    buf = io.StringIO()
    st.stream = buf
    st.sort_stats("tottime").print_stats(12)
    return wall, integ, parts, buf.getvalue()


def scaling(net, B: int, rtols, methods, workers, repeats: int, x_rest) -> None:
    """--scaling: wall time and CPU per member of one simulate_batch call per worker count (C kernels)."""
    kernels = cpu_kernels(net, lu_plan(net))
    if kernels is None:
        print("C kernels not available: scaling measured on the NumPy path")
    print(f"# worker scaling, B = {B}, {os.cpu_count()} CPUs, load average before: {os.getloadavg()[0]:.2f}; "
          f"kernels built in {0.0 if kernels is None else kernels.compile_s:.1f} s (not timed)")
    print("| method | rtol | workers | wall s (best) | cond/s | CPU ms/member (all processes) | speed-up vs 1 worker |")
    print("|---|---|---|---|---|---|---|")
    _, P = varied_parameters(net, B)
    for method in methods:
        for rtol in rtols:
            best: dict = {}
            for _ in range(repeats):
                for w in workers:  # alternating, so a change in the machine's load hits every count
                    dt, *_, cpu_all = batch_path(net, P, rtol, w, x_rest, method, fused=kernels or False)
                    if w not in best or dt < best[w][0]:
                        best[w] = (dt, cpu_all)
            for w in workers:
                dt, cpu_all = best[w]
                print(f"| {method} | {rtol:g} | {w} | {dt:.2f} | {B / dt:.0f} | {1e3 * cpu_all / B:.3f} | "
                      f"{best[workers[0]][0] / dt:.2f}x |", flush=True)
    print(f"# load average after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also B = 1e5")
    ap.add_argument("--write", action="store_true", help="write the table into benchmarks/README.md")
    ap.add_argument("--model", default="default")
    ap.add_argument("--refs", type=int, default=8, help="conditions with a tight reference")
    ap.add_argument("--loop", type=int, default=16, help="conditions for the scipy loop timings")
    ap.add_argument("--sizes", default="100,1000,10000", help="batch sizes, comma-separated")
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--rr", type=int, default=200, help="conditions for the libRoadRunner loop (0: skip)")
    ap.add_argument("--methods", default="rodas4,rodas5p", help="batch-path tableaus, comma-separated")
    ap.add_argument("--fused", default="both", choices=("numpy", "c", "both"),
                    help="batch rows with the NumPy operations, the compiled C kernels, or both")
    ap.add_argument("--rtols", default="1e-6,1e-4", help="tolerances, comma-separated")
    ap.add_argument("--no-certificate", action="store_true", help="skip the accuracy-certificate runs")
    ap.add_argument("--reuse-output", action="store_true",
                    help="also time C rows (one worker) whose call writes into an earlier call's output array "
                         "(simulate_batch(out=...), as a run's later calls of one size: no fresh pages to zero)")
    ap.add_argument("--workers", default="1,2", help="worker counts of the batch rows (B >= 1000), comma-separated")
    ap.add_argument("--scaling", type=int, default=0, metavar="B",
                    help="only the worker-scaling table at this batch size (see the module docstring)")
    ap.add_argument("--repeats", type=int, default=2, help="--scaling: alternating runs per worker count")
    args = ap.parse_args()

    net, model = load(args.model)
    if args.scaling:
        scaling(net, args.scaling, [float(r) for r in args.rtols.split(",")] if args.rtols != "1e-6,1e-4" else [1e-4],
                args.methods.split(",") if args.methods != "rodas4,rodas5p" else ["rodas4"],
                [int(w) for w in args.workers.split(",")], args.repeats, rest_state(net))
        return
    sizes = [int(float(b)) for b in args.sizes.split(",")] + ([100000] if args.full else [])
    names, P_all = varied_parameters(net, max(sizes))
    x_rest = rest_state(net)
    plan = lu_plan(net)
    lines = []

    def say(text=""):
        print(text, flush=True)
        lines.append(text)

    say(f"Model `{Path(model).stem if model != 'default' else 'default'}`: {net.n_species} species, "
        f"{len(net.reaction_names)} reactions, {net.n_params} parameters; Jacobian {len(net.jac_rows)} "
        f"non-zeros, LU {plan.nnz} entries ({plan.n_fill} fill-ins, Markowitz order), "
        f"{plan.n_levels} factorisation levels, {plan.n_solve_levels[0]}+{plan.n_solve_levels[1]} solve levels.")
    say(f"Varied (x in [1/2, 2], log-uniform, seed 0): {', '.join(names)}.")
    variants = []  # (label, fused argument)
    if args.fused in ("numpy", "both"):
        variants.append(("numpy", False))
    if args.fused in ("c", "both"):
        kernels = cpu_kernels(net, plan)
        if kernels is None:
            say("C kernels: not available (see the warning above); NumPy rows only.")
        else:
            say(f"C kernels (her2sim.solvers.ckernels): built in {kernels.compile_s:.1f} s wall, once, before the timings "
                f"(not in any cond/s below); flags: rhs/jac `{kernels.flags['h2_rhs']}`, "
                f"factor `{kernels.flags['h2_factor']}`, solve `{kernels.flags['h2_solve']}`.")
            variants.append(("C", kernels))
    t0 = time.perf_counter()
    ref, _ = scipy_path(net, names, P_all[:args.refs], 1e-10, "Radau", "loop", x_rest, atol=1e-12)
    say(f"Reference: Radau rtol 1e-10 atol 1e-12 on {args.refs} conditions ({time.perf_counter() - t0:.1f} s).")
    say()
    say("| engine | rtol | conditions | cond/s | vs LSODA loop | max rel. error | steps/member | peak RSS MB |")
    say("|---|---|---|---|---|---|---|---|")
    base = {}
    rr_curve = []  # (rtol, error, cond/s) of libRoadRunner for the equal-error comparison
    batch_rows = []  # (method, rtol, B, workers, error, cond/s)
    certs = []
    for rtol in (float(r) for r in args.rtols.split(",")):
        n = max(args.loop, args.refs)
        Y, dt = scipy_path(net, names, P_all[:n], rtol, "LSODA", "loop", x_rest)
        base[rtol] = n / dt
        say(f"| scipy loop LSODA | {rtol:g} | {n} | {n / dt:.1f} | 1.0 | {max_err(Y[:args.refs], ref):.1e} | | |")
        nb = max(args.refs, n // 2)
        Y, dt = scipy_path(net, names, P_all[:nb], rtol, "BDF", "loop", x_rest)
        say(f"| scipy loop BDF | {rtol:g} | {nb} | {nb / dt:.1f} | {nb / dt / base[rtol]:.2f} | "
            f"{max_err(Y[:args.refs], ref):.1e} | | |")
        Y, dt = scipy_path(net, names, P_all[:n], rtol, "BDF", "block", x_rest)
        say(f"| scipy block BDF | {rtol:g} | {n} | {n / dt:.1f} | {n / dt / base[rtol]:.2f} | "
            f"{max_err(Y[:args.refs], ref):.1e} | | |")
        rr = roadrunner_path(model, net, names, P_all[:max(args.rr, args.refs)], rtol) if args.rr else None
        if rr is None and args.rr:
            say(f"| libRoadRunner (not installed: pip install libroadrunner python-libsbml) | {rtol:g} | | | | | | |")
        elif rr is None:
            pass  # --rr 0: not run
        else:
            Y, dt, version, cpu = rr
            nr = len(Y)
            say(f"| libRoadRunner {version} loop (CVODE, atol {ATOL:g} nM per species) | {rtol:g} | {nr} | "
                f"{nr / dt:.0f} | {nr / dt / base[rtol]:.1f} | {max_err(Y[:args.refs], ref):.1e} | | |")
            rr_curve.append((rtol, max_err(Y[:args.refs], ref), nr / dt, nr / cpu))
        worker_counts = [int(w) for w in args.workers.split(",")]
        for method in args.methods.split(","):
            for label, fused in variants:
                for B in sizes:
                    for workers in (worker_counts if B >= 1000 else (1,)):
                        dt, Y, steps, rej, n_ok, mem, cpu, _ = batch_path(net, P_all[:B], rtol, workers, x_rest,
                                                                          method, fused=fused)
                        err = max_err(Y[:args.refs], ref)
                        batch_rows.append((f"{method} {label}", rtol, B, workers, err, B / dt, B / cpu))
                        say(f"| batch {method} {label}, workers={workers} | {rtol:g} | {B} | {B / dt:.0f} | "
                            f"{B / dt / base[rtol]:.1f} | {err:.1e} | {steps:.0f} (+{rej:.1f} rej.) | {mem:.0f} |"
                            + ("" if n_ok == B else f" {B - n_ok} failed"))
                for B in (sizes if label == "C" and args.reuse_output else ()):  # one worker
                    dt, Y, steps, rej, n_ok, mem, cpu, _ = batch_path(net, P_all[:B], rtol, 1, x_rest, method,
                                                                      fused=fused, reuse=True)
                    err = max_err(Y[:args.refs], ref)
                    batch_rows.append((f"{method} C, out= reused", rtol, B, 1, err, B / dt, B / cpu))
                    say(f"| batch {method} C, output array reused (out=), workers=1 | {rtol:g} | {B} | {B / dt:.0f} | "
                        f"{B / dt / base[rtol]:.1f} | {err:.1e} | {steps:.0f} (+{rej:.1f} rej.) | {mem:.0f} |"
                        + ("" if n_ok == B else f" {B - n_ok} failed"))
            if args.no_certificate:
                continue
            B = sizes[-1]
            label, fused = variants[-1]
            dt_c, cert = batch_path(net, P_all[:B], rtol, 1, x_rest, method, certify=her2sim.solvers.certify.CertifyOptions(),
                                    fused=fused)
            certs.append((f"{method} {label}", rtol, B, dt_c, cert))
    if certs:
        say()
        say("Accuracy certificate (default: 0.5 % of the batch, at least 2, re-integrated with Radau at rtol/20), one "
            "worker, same conditions as above:")
        say()
        say("| method | rtol | conditions | members checked | certified max rel. error | certificate s | "
            "share of the run |")
        say("|---|---|---|---|---|---|---|")
    for method, rtol, B, dt_c, cert in certs:
        say(f"| {method} | {rtol:g} | {B} | {len(cert['members'])} | {cert['max_rel_error']:.1e} | "
            f"{cert['seconds']:.2f} | {100 * cert['seconds'] / dt_c:.0f} % |")
    if rr_curve and args.rr:
        for rtol in (1e-5, 1e-7, 1e-8):  # the rest of libRoadRunner's error-throughput curve
            rr = roadrunner_path(model, net, names, P_all[:max(args.rr, args.refs)], rtol)
            Y, dt, _, cpu = rr
            rr_curve.append((rtol, max_err(Y[:args.refs], ref), len(Y) / dt, len(Y) / cpu))
        rr_curve.sort(key=lambda r: r[1])
        say()
        say("libRoadRunner's error-throughput curve (rtol 1e-4..1e-8, same run): "
            + ", ".join(f"rtol {r:g}: error {e:.1e} at {v:.0f}/s ({vc:.0f}/CPU-s)"
                        for r, e, v, vc in sorted(rr_curve, reverse=True)) + ".")
        say("At equal error (libRoadRunner's throughput interpolated log-log at the batch path's error). Wall-clock "
            "cond/s, and per CPU second of the integrating process (workers = 1 only: robust to other load on "
            "the machine, blind to parallel speed-up):")
        say()
        say("| batch | rtol | conditions | workers | error | cond/s | libRoadRunner at that error | ratio | "
            "cond/CPU-s | libRoadRunner cond/CPU-s | ratio (CPU) |")
        say("|---|---|---|---|---|---|---|---|---|---|---|")
        le, lv = np.log([r[1] for r in rr_curve]), np.log([r[2] for r in rr_curve])
        lvc = np.log([r[3] for r in rr_curve])
        chosen = []
        for method, rtol, B, workers, err, speed, cpu_speed in batch_rows:
            if B != sizes[-1] and B != 10000:
                continue
            inside = le[0] <= np.log(err) <= le[-1]
            rr_speed = float(np.exp(np.interp(np.log(err), le, lv)))
            rr_cpu = float(np.exp(np.interp(np.log(err), le, lvc)))
            cpu_cols = (f"{cpu_speed:.0f} | {rr_cpu:.0f} | {cpu_speed / rr_cpu:.1f}x" if workers == 1 else " | | ")
            say(f"| {method} | {rtol:g} | {B} | {workers} | {err:.1e} | {speed:.0f} | {rr_speed:.0f}"
                f"{'' if inside else ' (outside its curve: its end value)'} | {speed / rr_speed:.1f}x | {cpu_cols} |")
            if workers == 1 and method.split()[0] == auto_method(rtol):
                chosen.append(f"{method} at rtol {rtol:g} (error {err:.1e}): {speed / rr_speed:.1f}x wall, "
                              f"{cpu_speed / rr_cpu:.1f}x per CPU-s")
        if chosen:
            say()
            say("The methods `method=\"auto\"` chooses (her2sim.solvers.tableaus.auto_method), one worker, at equal "
                "error vs libRoadRunner: " + "; ".join(chosen) + ".")
    if args.no_profile:
        return
    say()
    for label, fused in variants:
        wall, integ, parts, text = profile_run(net, P_all[:10000], 1e-6, x_rest, fused)
        say(f"Profile of one B = 10000 run, rtol 1e-6, rodas4, {label} operations, one process ({wall:.1f} s wall "
            "under cProfile):")
        say()
        say("| part | s | share |")
        say("|---|---|---|")
        for k, v in parts.items():
            say(f"| {k} | {v:.2f} | {100 * v / integ:.0f} % |")
        say()
        print(text)

    if args.write:
        readme = ROOT / "benchmarks" / "README.md"
        head = readme.read_text().split("<!-- results -->")[0] if readme.exists() else ""
        stamp = (f"Measured {datetime.date.today().isoformat()} on {platform.node() or 'unknown'} "
                 f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs), Python "
                 f"{platform.python_version()}, NumPy {np.__version__}, SciPy {scipy.__version__}, "
                 "BLAS pinned to 1 thread; command `python benchmarks/bench_batch.py --write`.")
        readme.write_text(head + "<!-- results -->\n\n" + stamp + "\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
