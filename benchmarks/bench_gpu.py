"""Conditions per second of the batch path on a GPU (CuPy backend) against NumPy on the same machine.

Usage (her2sim need not be installed; run from the repository root):

    PYTHONPATH=src python benchmarks/bench_gpu.py --out OUT_DIR [--budget-s 420] [--sizes 1e4,1e5,1e6] [--no-fused]
    PYTHONPATH=src python benchmarks/bench_gpu.py --backend numpy --sizes 200,400 --budget-s 60 --out /tmp/b

Problem (as benchmarks/bench_batch.py): the bundled HER2 model, 72 h, 73 output times, atol 1e-9 nM,
8 parameters varied log-uniformly within +-2x of nominal (seed 0), every member starting from the
drug-free steady state of the nominal model. For each rtol (1e-4, 1e-6) and batch size the device
backend integrates the batch (``method="auto"``, in chunks of --chunk members per
``simulate_batch`` call, by default the most whose (B, 73, 36) float64 states fit one in-memory
result (4 GiB, ~204k members), so host memory stays bounded; each chunk in device slabs of at most
--slab members); the NumPy backend runs B = --numpy-size on one process and on all cores (workers) as the
baseline, in the same run. Beside every speed: the largest relative error, max |x - ref| /
max(|ref|, 1e-3 nM), over --refs members sampled (seed 1) from the first --numpy-size members,
against Radau at rtol 1e-10, atol 1e-12. The first device call compiles kernels: a warm-up run
precedes the timings, and the device is synchronised before every clock read. Sizes whose predicted
time exceeds the remaining --budget-s, or whose predicted device memory exceeds the free memory, are
skipped and listed as such. With CuPy, each size runs twice in the same run: with the fused CUDA
kernels (``simulate_batch(fused=True)``: one kernel per right-hand side, Jacobian, LU factor and
LU solve, :mod:`her2sim.solvers.fused`) and with the unfused array-API path (``fused=False``); --no-fused
runs only the latter. Writes bench_gpu.json and bench_gpu.md to --out and prints the table.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy is imported: one BLAS thread per process

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import scipy

import her2sim
from her2sim.solvers.backend import resolve_backend
from her2sim.solvers.batch import simulate_batch
from her2sim.errors import InvalidArgument
from her2sim.validate import MAX_OUTPUT_BYTES

from bench_batch import varied_parameters  # the same problem as bench_batch (benchmarks/ is on sys.path)

T_EVAL = np.linspace(0.0, 72.0, 73)
ATOL = 1e-9
FLOOR = 1e-3  # nM


def rest_state(net):
    from her2sim.solvers.solve import input_free, steady_state

    return np.maximum(steady_state(net, net.x0, input_free(net, net.p0)), 0.0)


def reference(net, names, P, x_rest):
    conds = [{"parameters": {n: float(p[net.parameter_index(n)]) for n in names}} for p in P]
    res = her2sim.simulate(net, conditions=conds, time="72 h", t_eval=T_EVAL, preequilibrate=False,
                           initial_state=x_rest, method="Radau", mode="loop", rtol=1e-10, atol=1e-12)
    return np.asarray(res.species)


def max_err(states, ref) -> float:
    return float(np.max(np.abs(states - ref) / np.maximum(np.abs(ref), FLOOR)))


class Device:
    """Device facts and memory accounting (CuPy), or nothing for the NumPy backend."""

    def __init__(self, bk):
        self.bk = bk
        self.cupy = None
        if bk.name == "cupy":
            import cupy

            self.cupy = cupy

    def info(self) -> dict:
        out = {"backend": self.bk.name, "numpy": np.__version__, "scipy": scipy.__version__,
               "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "host": platform.node()}
        if self.cupy is not None:
            cp = self.cupy
            props = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)
            name = props["name"]
            out.update(device=name.decode() if isinstance(name, bytes) else str(name), cupy=cp.__version__,
                       device_memory_gb=props["totalGlobalMem"] / 1e9,
                       cuda_runtime=cp.cuda.runtime.runtimeGetVersion(), driver=cp.cuda.runtime.driverGetVersion())
        else:
            out["device"] = "CPU (NumPy backend)"
        return out

    def reset(self) -> None:
        if self.cupy is not None:
            self.bk.synchronize()
            self.cupy.get_default_memory_pool().free_all_blocks()

    def pool_bytes(self) -> int:
        """Bytes the CuPy pool holds: it keeps freed blocks, so after a run this is its peak."""
        return int(self.cupy.get_default_memory_pool().total_bytes()) if self.cupy is not None else 0

    def free_bytes(self) -> int:
        return int(self.cupy.cuda.runtime.memGetInfo()[0]) if self.cupy is not None else 1 << 62


def run(net, x_rest, P, rtol, method, backend, *, chunk, slab, workers, ref_idx, fused=False):
    """Integrate P in chunks; returns (seconds, states of ref_idx members, mean steps, failed,
    whether the fused kernels ran)."""
    bk = resolve_backend(backend)
    B = len(P)
    keep = {int(i): None for i in ref_idx if i < B}
    steps, failed, seconds, ran_fused = 0.0, 0, 0.0, False
    for lo in range(0, B, chunk):
        hi = min(B, lo + chunk)
        bk.synchronize()
        t0 = time.perf_counter()
        res = simulate_batch(net, X0=x_rest, P=P[lo:hi], t_eval=T_EVAL, rtol=rtol, atol=ATOL, method=method,
                             certify=None, backend=backend, workers=workers,
                             slab=None if bk.is_numpy else slab, fused=fused)
        seconds += time.perf_counter() - t0  # the states are NumPy arrays: the device has finished
        steps += float(res.steps.sum())
        failed += int((~res.ok).sum())
        ran_fused = bool(res.attrs.get("fused", False))
        for i in keep:
            if lo <= i < hi:
                keep[i] = res.states[i - lo].copy()
        del res
    kept = [keep[i] for i in sorted(keep)]
    return seconds, (np.stack(kept) if kept else None), steps / B, failed, ran_fused


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder for bench_gpu.json and bench_gpu.md")
    ap.add_argument("--backend", default="cupy", help="device backend: cupy (default) or numpy (CPU check)")
    ap.add_argument("--sizes", default="1e4,1e5,1e6", help="device batch sizes, comma-separated")
    ap.add_argument("--rtols", default="1e-4,1e-6")
    ap.add_argument("--method", default="auto", help="rodas4, rodas5p or auto (rodas5p at rtol <= 1e-3)")
    ap.add_argument("--budget-s", type=float, default=420.0, help="total wall-time budget of this script")
    ap.add_argument("--refs", type=int, default=20, help="members with a Radau reference")
    ap.add_argument("--numpy-size", type=int, default=10000, help="B of the NumPy baseline")
    ap.add_argument("--numpy-workers", type=int, default=os.cpu_count() or 1,
                    help="processes of the all-cores NumPy baseline (1: skip it)")
    ap.add_argument("--chunk", type=float, default=0,
                    help="members per simulate_batch call (default: the most whose states fit one in-memory result, "
                         "her2sim.validate.MAX_OUTPUT_BYTES = 4 GiB: 204,288 here)")
    ap.add_argument("--slab", type=float, default=1e6, help="members integrated together on the device")
    ap.add_argument("--fused", action=argparse.BooleanOptionalAction, default=True,
                    help="also run the fused CUDA kernels (her2sim.solvers.fused) beside the unfused array-API path, same "
                         "sizes, same run (default); --no-fused: the unfused path only")
    args = ap.parse_args()
    clock = time.perf_counter()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        bk = resolve_backend(args.backend)
    except InvalidArgument as exc:
        print(f"bench_gpu: {exc}", file=sys.stderr)
        return 2
    dev = Device(bk)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    rtols = [float(r) for r in args.rtols.split(",")]
    net = her2sim.compile_network(her2sim.load_model("default"))
    chunk = int(args.chunk) or MAX_OUTPUT_BYTES // (8 * len(T_EVAL) * net.n_species)
    slab = min(int(args.slab), chunk)
    nb = args.numpy_size

    def left() -> float:
        return args.budget_s - (time.perf_counter() - clock)

    names, P_all = varied_parameters(net, max(sizes + [nb]))
    x_rest = rest_state(net)
    rng = np.random.default_rng(1)
    ref_idx = np.sort(rng.choice(min(nb, min(sizes)), size=min(args.refs, nb, min(sizes)), replace=False))
    t0 = time.perf_counter()
    ref = reference(net, names, P_all[ref_idx], x_rest)
    info = dev.info()
    info.update(model="default", species=net.n_species, reactions=len(net.reaction_names), varied=names,
                reference=f"Radau rtol 1e-10 atol 1e-12 on {len(ref_idx)} members ({time.perf_counter() - t0:.1f} s)",
                budget_s=args.budget_s, chunk=chunk, slab=slab)
    rows, skipped = [], []
    print(f"# {info['device']} | backend {bk.name} | numpy {np.__version__} | cupy {info.get('cupy', '-')} | "
          f"{info['reference']}", flush=True)

    def record(engine, rtol, B, seconds, states, steps, failed, mem_mb, ref_sub):
        err = max_err(states, ref_sub)
        rows.append({"engine": engine, "rtol": rtol, "conditions": B, "seconds": seconds, "cond_per_s": B / seconds,
                     "max_rel_error": err, "steps_per_member": steps, "failed": failed, "peak_memory_mb": mem_mb})
        print(f"  {engine} rtol {rtol:g} B {B}: {B / seconds:,.0f} cond/s, error {err:.1e}, {seconds:.1f} s",
              flush=True)

    # NumPy baseline first (forked workers before any CUDA context is created)
    for rtol in rtols:
        for workers in sorted({1, max(1, args.numpy_workers)}):
            engine = f"NumPy batch, {workers} process{'es' if workers > 1 else ''}"
            guess = 2.0 * nb / 1500.0 / workers  # ~1,500 cond/s per core measured on the 2-core dev machine
            if guess > left():
                skipped.append(f"{engine}, rtol {rtol:g}, B = {nb}: predicted {guess:.0f} s > {left():.0f} s left")
                continue
            sec, st, steps, failed, _ = run(net, x_rest, P_all[:nb], rtol, args.method, "numpy", chunk=nb, slab=nb,
                                            workers=workers, ref_idx=ref_idx)
            record(engine, rtol, nb, sec, st, steps, failed, None, ref)
    if bk.is_numpy:
        engine_dev = "array-API loop on NumPy (CPU check of the device code)"
        dev_backend = np  # the namespace: the array-API integrator, not the tuned NumPy one
    else:
        engine_dev = f"{bk.name} on {info['device']}"
        dev_backend = args.backend
    variants = [False]  # fused kernels: CuPy only (the CPU check runs the unfused loop)
    if args.fused and not bk.is_numpy:
        variants = [True, False]
    elif args.fused:
        skipped.append("fused kernels: they need the CuPy backend")
    t0 = time.perf_counter()  # warm-up: the first calls compile CuPy's kernels (and NVRTC the fused ones)
    for fused in variants:
        for rtol in (rtols[0], rtols[-1]):
            run(net, x_rest, P_all[:256], rtol, args.method, dev_backend, chunk=256, slab=256, workers=1, ref_idx=[],
                fused=fused)
    bk.synchronize()
    info["warmup_s"] = time.perf_counter() - t0
    for rtol in rtols:
        rate = {f: None for f in variants}  # from the previous size: cond/s and device bytes per member
        per_member = {f: None for f in variants}
        for B in sizes:  # both variants at each size before the next size, so a short budget cuts both alike
            for fused in variants:
                name = engine_dev + (", fused kernels" if fused else ", unfused" if len(variants) > 1 else "")
                label = f"{name}, rtol {rtol:g}, B = {B}"
                if rate[fused] is not None and B / rate[fused] > left():
                    skipped.append(f"{label}: predicted {B / rate[fused]:.0f} s > {left():.0f} s left in the budget")
                    continue
                if rate[fused] is None and left() < 5:
                    skipped.append(f"{label}: budget spent")
                    continue
                dev.reset()
                pm = per_member[fused]
                if pm is not None and pm * min(B, slab, chunk) > 0.9 * dev.free_bytes():
                    skipped.append(f"{label}: predicted {pm * min(B, slab, chunk) / 1e9:.0f} GB device memory > "
                                   f"free {dev.free_bytes() / 1e9:.0f} GB")
                    continue
                sec, st, steps, failed, ran_fused = run(net, x_rest, P_all[:B], rtol, args.method, dev_backend,
                                                        chunk=chunk, slab=slab, workers=1, ref_idx=ref_idx,
                                                        fused=fused)
                if fused and not ran_fused:
                    name += " requested, fell back to unfused (see the warning above)"
                peak = dev.pool_bytes()
                record(name, rtol, B, sec, st, steps, failed, peak / 2**20 if dev.cupy is not None else None, ref)
                rate[fused] = B / sec
                per_member[fused] = peak / min(B, slab, chunk) if peak else None
    info["total_s"] = time.perf_counter() - clock

    base = {r["rtol"]: r["cond_per_s"] for r in rows if r["engine"] == "NumPy batch, 1 process"}
    lines = [f"Device: {info['device']}; backend {bk.name}; NumPy {np.__version__}, CuPy {info.get('cupy', '-')}, "
             f"SciPy {scipy.__version__}, Python {info['python']}, {info['cpus']} CPUs. Default model "
             f"({net.n_species} species), 72 h, 73 outputs, atol {ATOL:g} nM, method {args.method}; "
             f"errors vs {info['reference']}. Command: `{' '.join(sys.argv)}`.", "",
             "| engine | rtol | conditions | cond/s | vs NumPy 1 process | max rel. error | steps/member | "
             "peak GPU MB |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        vs = f"{r['cond_per_s'] / base[r['rtol']]:.1f}" if r["rtol"] in base else ""
        mem = "" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
        lines.append(f"| {r['engine']} | {r['rtol']:g} | {r['conditions']} | {r['cond_per_s']:.0f} | {vs} | "
                     f"{r['max_rel_error']:.1e} | {r['steps_per_member']:.1f} | {mem} |"
                     + (f" {r['failed']} failed" if r["failed"] else ""))
    rate_of = {(r["engine"], r["rtol"], r["conditions"]): r["cond_per_s"] for r in rows}
    ratios = []
    for (engine, rtol, B), rate in rate_of.items():
        if engine.endswith(", fused kernels"):
            other = rate_of.get((engine[:-len(", fused kernels")] + ", unfused", rtol, B))
            if other:
                ratios.append(f"rtol {rtol:g}, B = {B}: {rate / other:.1f}x")
    if ratios:
        lines += ["", "Fused kernels vs unfused, same run: " + "; ".join(ratios) + "."]
    if skipped:
        lines += ["", "Skipped: " + "; ".join(skipped) + "."]
    text = "\n".join(lines)
    print(text)
    (out_dir / "bench_gpu.md").write_text(text + "\n")
    (out_dir / "bench_gpu.json").write_text(json.dumps({"info": info, "rows": rows, "skipped": skipped}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
