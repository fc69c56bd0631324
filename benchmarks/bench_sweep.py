"""Benchmark chunked sweeps (her2sim.sweep.sweep.run_sweep): speed, Dask overhead, memory and accuracy.

Usage:  python benchmarks/bench_sweep.py [--quick] [--sizes 10000,100000] [--rtol 1e-6] [--chunk 2000]
                                         [--chunks 500,1000,5000] [--modes local,dask2,dask1] [--refs 6]
                                         [--json FILE]

Problem: the bundled default model (36 species), 72 h after dosing, readouts pAKT@24h, pERK@24h,
viable_cells@72h and auc:pAKT (the AUC adds a ~160-point quadrature grid per condition); a Latin
hypercube over 8 kinetic parameters (1/2..2x nominal, log-uniform, seed 0) times 8 lapatinib
doses (0 and 10 nM..10 uM), so every sampled parameter set has its own drug-free rest state,
pre-equilibrated on the batch path and shared by its 8 doses. Sizes are conditions (n_samples x 8).

Each run is a fresh child process, so peak RSS (ru_maxrss) is that run's own: "in-process" is
``scheduler=None``; "dask 2w" / "dask 1w" pass a ``distributed.Client`` on a LocalCluster of 2 / 1
single-threaded worker processes (cluster start-up timed separately; worker peak RSS collected with
``client.run``). The Dask overhead ratio is dask-1-worker wall / in-process wall (1.0 = free); the
2-worker speed-up is in-process wall / dask-2-worker wall (2.0 = perfect on 2 cores). "other load"
is the CPU (in cores) that other processes used during the run, from /proc/stat: on a shared
machine, runs with other load > 0.1 are contaminated.

Accuracy first: for --refs conditions of the first size, the readouts are recomputed on the scipy
path (Radau rtol 1e-10 / atol 1e-12 after scipy pre-equilibration, AUC by the trapezoid rule on a
0.005 h grid) and the sweep's max error is reported per readout as |x - ref| / max(|ref|, 1e-3).
--quick: sizes 2000,10000, no chunk-size study. BLAS is pinned to one thread per process.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before NumPy is imported: one BLAS thread per process

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PARAMETERS = ("AKT_total", "HER4_expression", "RAF_total", "k_CycE_syn", "k_RAS_gap", "k_immune_basal", "kr_22",
              "w_RSK_S6")
READOUTS = ["pAKT@24h", "pERK@24h", "viable_cells@72h", "auc:pAKT"]
N_DOSES = 8
FLOOR = 1e-3


def make_spec(n_conditions: int, rtol: float, chunk: int) -> dict:
    n_samples = max(1, n_conditions // N_DOSES)
    return {
        "sweep": {"name": f"bench_{n_conditions}", "model": "default", "time": "72 h", "readouts": READOUTS,
                  "chunk": chunk},
        "drugs": {"lapatinib": {"doses": {"start": "10 nM", "stop": "10 uM", "num": N_DOSES - 1, "scale": "log",
                                          "zero": True}}},
        "samples": {"method": "lhs", "n": n_samples, "seed": 0,
                    "parameters": {p: {"start": 0.5, "stop": 2.0, "scale": "log", "relative": True}
                                   for p in PARAMETERS}},
        "solver": {"rtol": rtol, "atol": 1e-9},
    }


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _machine_busy_s() -> float:
    """CPU seconds all processes on the machine have used (from /proc/stat; 0 where unavailable)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def child(mode: str, n: int, rtol: float, chunk: int, out: str) -> dict:
    """One run in this (fresh) process; returns timings and peak memory."""
    from her2sim.sweep.sweep import _networks, run_sweep
    from her2sim.sweep.load import load_sweep_spec

    spec = load_sweep_spec(make_spec(n, rtol, chunk))
    _networks(spec)  # imports and compilation count in the baseline, not in the sweep
    baseline = _maxrss_mb()
    info = {"mode": mode, "n": spec.n_conditions, "chunk": chunk, "baseline_mb": baseline}
    busy0, cpu0 = _machine_busy_s(), _cpu_s()
    if mode == "local":
        result = run_sweep(spec, out, progress=False)
        workers_mb, workers_cpu = [], 0.0
    else:
        from distributed import Client, LocalCluster

        clock = time.perf_counter()
        cluster = LocalCluster(n_workers=int(mode[-1]), threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
        info["startup_s"] = time.perf_counter() - clock
        result = run_sweep(spec, out, scheduler=client, progress=False)
        workers_mb = sorted(client.run(_maxrss_mb).values())
        workers_cpu = sum(client.run(_cpu_s).values())
        client.close()
        cluster.close()
    # cores' worth of CPU that other processes took meanwhile (the machine may be shared)
    others = (_machine_busy_s() - busy0 - (_cpu_s() - cpu0) - workers_cpu) / max(result.wall_time_s, 1e-9)
    info.update(wall_s=result.wall_time_s, cond_s=result.conditions_per_s, failed=result.n_failed,
                driver_mb=_maxrss_mb(), workers_mb=workers_mb, other_cores=max(others, 0.0))
    return info


def run_child(mode: str, n: int, rtol: float, chunk: int, keep: Path | None = None) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_sweep_")) / "out"
    code = [sys.executable, __file__, "--child", mode, str(n), str(rtol), str(chunk), str(out)]
    proc = subprocess.run(code, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"child {mode} {n} failed:\n{proc.stderr[-3000:]}")
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    if keep is not None:
        shutil.copytree(out, keep)
    shutil.rmtree(out.parent, ignore_errors=True)
    return info


def accuracy(out: Path, refs: int) -> tuple[dict, float]:
    """Max error per readout of the sweep in ``out`` against Radau rtol 1e-10 on ``refs`` conditions."""
    import her2sim
    from her2sim.sweep.sweep import open_sweep

    ds = open_sweep(out)
    net = her2sim.compile_network(her2sim.load_model("default", drugs=["lapatinib"]))
    rng = np.random.default_rng(1)
    picks = [(int(s), int(d)) for s, d in zip(rng.integers(0, ds.sizes["sample"], refs),
                                              np.linspace(0, N_DOSES - 1, refs).round().astype(int))]
    grid = np.linspace(0, 72, 14401)
    worst = dict.fromkeys(READOUTS, 0.0)
    clock = time.perf_counter()
    for s, d in picks:
        point = ds.isel(sample=s, lapatinib=d)
        params = {p: float(point[p]) * float(net.p0[net.parameter_index(p)]) for p in PARAMETERS}
        ref = her2sim.simulate(net, drugs={"lapatinib": float(point.lapatinib)}, parameters=params, time="72 h",
                               t_eval=grid, method="Radau", rtol=1e-10, atol=1e-12)
        expected = {"pAKT@24h": ref.values("pAKT")[0, 4800], "pERK@24h": ref.values("pERK")[0, 4800],
                    "viable_cells@72h": ref.values("viable_cells")[0, -1],
                    "auc:pAKT": np.trapezoid(ref.values("pAKT")[0], grid)}
        for name, value in expected.items():
            worst[name] = max(worst[name], abs(float(point[name]) - value) / max(abs(value), FLOOR))
    return worst, time.perf_counter() - clock


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sizes 2000,10000 and no chunk-size study")
    ap.add_argument("--sizes", default=None, help="conditions, comma-separated (default 10000,100000)")
    ap.add_argument("--rtol", type=float, default=1e-6)
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--chunks", default=None, help="chunk sizes to compare in-process at the first size "
                                                    "(default 500,1000,5000; none with --quick)")
    ap.add_argument("--refs", type=int, default=6, help="conditions with a tight scipy reference")
    ap.add_argument("--modes", default="local,dask2,dask1", help="runs: local, dask2, dask1 (dask1 at the first size "
                                                               "only)")
    ap.add_argument("--json", default=None, metavar="FILE", help="also write the raw results as JSON")
    ap.add_argument("--child", nargs=5, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        mode, n, rtol, chunk, out = args.child
        print(json.dumps(child(mode, int(n), float(rtol), int(chunk), out)))
        return
    sizes = [int(float(s)) for s in (args.sizes or ("2000,10000" if args.quick else "10000,100000")).split(",")]
    chunks = [] if args.quick and args.chunks is None else [int(c) for c in (args.chunks or "500,1000,5000").split(",")]

    import dask
    import distributed
    import scipy

    import her2sim

    print(f"# bench_sweep: {time.strftime('%Y-%m-%d')} on {platform.node()} ({platform.machine()}, "
          f"{os.cpu_count()} CPUs), Python {platform.python_version()}, NumPy {np.__version__}, SciPy "
          f"{scipy.__version__}, dask {dask.__version__}, distributed {distributed.__version__}, her2sim "
          f"{her2sim.__version__}; rtol {args.rtol:g}, atol 1e-9, chunk {args.chunk}", flush=True)
    rows = []
    keep = Path(tempfile.mkdtemp(prefix="bench_sweep_ref_")) / "first"
    modes = args.modes.split(",")
    for i, n in enumerate(sizes):
        for mode in [m for m in modes if m != "dask1" or i == 0]:
            info = run_child(mode, n, args.rtol, args.chunk, keep if (i == 0 and mode == modes[0]) else None)
            rows.append(info)
            print(f"#   {mode:<6} {info['n']:>7,} conditions: {info['wall_s']:7.1f} s, {info['cond_s']:6.0f} cond/s, "
                  f"driver peak {info['driver_mb']:.0f} MB, workers {info['workers_mb']}, other processes "
                  f"{info['other_cores']:.2f} cores", flush=True)
    for c in chunks:
        if c != args.chunk:
            info = run_child("local", sizes[0], args.rtol, c)
            rows.append(info)
            print(f"#   chunk {c}: {info['cond_s']:.0f} cond/s, driver peak {info['driver_mb']:.0f} MB", flush=True)
    worst, ref_s = accuracy(keep, args.refs) if args.refs else ({}, 0.0)
    shutil.rmtree(keep.parent, ignore_errors=True)

    local = {r["n"]: r for r in rows if r["mode"] == "local" and r["chunk"] == args.chunk}
    print("\n| run | conditions | chunk | wall s | cond/s | vs in-process | driver peak RSS MB (+ over baseline) "
          "| worker peak RSS MB | failed | other load (cores) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    label = {"local": "in-process", "dask2": "dask LocalCluster, 2 workers", "dask1": "dask LocalCluster, 1 worker"}
    for r in rows:
        base = local.get(r["n"])
        ratio = f"{r['cond_s'] / base['cond_s']:.2f}" if base else ""
        workers = ", ".join(f"{w:.0f}" for w in r["workers_mb"])
        print(f"| {label[r['mode']]} | {r['n']:,} | {r['chunk']:,} | {r['wall_s']:.1f} | {r['cond_s']:.0f} | {ratio} | "
              f"{r['driver_mb']:.0f} (+{r['driver_mb'] - r['baseline_mb']:.0f}) | {workers} | {r['failed']} | "
              f"{r['other_cores']:.2f} |")
    startup = [r["startup_s"] for r in rows if "startup_s" in r]
    d1 = [r for r in rows if r["mode"] == "dask1"]
    print()
    if startup:
        print(f"- Dask LocalCluster start-up (not in the walls above): {min(startup):.1f}-{max(startup):.1f} s")
    if d1 and d1[0]["n"] in local:
        print(f"- Dask overhead ratio (1-worker cluster wall / in-process wall, {d1[0]['n']:,} conditions): "
              f"{d1[0]['wall_s'] / local[d1[0]['n']]['wall_s']:.2f}")
    for r in rows:
        if r["mode"] == "dask2" and r["n"] in local:
            s = local[r["n"]]["wall_s"] / r["wall_s"]
            print(f"- 2-worker speed-up at {r['n']:,}: {s:.2f}x (parallel efficiency {s / 2:.0%})")
    if len(local) > 1:
        a, b = sorted(local)[:2]
        print(f"- Driver peak RSS, in-process: {local[a]['driver_mb']:.0f} MB at {a:,} vs {local[b]['driver_mb']:.0f} MB "
              f"at {b:,} conditions (bounded by the chunk, not the sweep)")
    if worst:
        print(f"- Accuracy vs Radau rtol 1e-10 on {args.refs} conditions ({ref_s:.0f} s): "
              + ", ".join(f"{k} {v:.1e}" for k, v in worst.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "accuracy": worst}, indent=1))


if __name__ == "__main__":
    main()
