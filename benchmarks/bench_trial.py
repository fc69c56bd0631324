"""Virtual-trial wall time: a 1,000-patient, two-arm, 24-month trial (HER2CLIMB-like spec), before and after.

One run times both exposure paths on the same patients and PK draws, with the exposure-response
tables already built (they are timed separately, on the batch path):

- before: :func:`her2sim.trial.arms.exposure_stepped` (PK stepped hour by hour, table read per
  2-h window: the trial path of version 1);
- after: :func:`her2sim.trial.arms.exposure` (closed-form / coarse-step PK, one read of both clones
  per ``window_h``-hour window, default :data:`~her2sim.trial.arms.WINDOW_H`);

and reports the error of each against the hourly reference (``exposure_stepped`` with 1-h reads) on
the first 100 patients of each arm (max |delta daily rate| in 1/h), and the trial read-outs (median
PFS per arm, HR) of both paths, so a speed-up cannot hide an accuracy loss. CPU seconds of this
process (``time.process_time``) are printed next to wall seconds: on a shared machine wall time
includes other jobs.

Then the scale-out: ``run_trial`` in patient blocks in this process and on a 2-worker dask
LocalCluster (``scheduler="processes"``), on ``--scale`` patients, checked equal to each other,
with patients/s, the ratio and peak resident memory of the driver and the workers.

    python benchmarks/bench_trial.py [--patients 1000] [--spec her2climb_like] [--window 4] [--scale 0]

``--calibration``: CPU seconds of one evaluation of the calibration objective (every calibration
trial, 300 patients each, at the version-5 draft parameters; the trials prepared once, as in a
fit) for this tree and, with ``--before REV``, for the source of git revision REV on the same
prepared trials in the same run (objectives printed side by side: they must agree), and the CPU
time of a leave-one-trial-out fold it implies (400 evaluations: 200 per round, 2 rounds).

    python benchmarks/bench_trial.py --calibration --before 727ea98
"""

import argparse
import dataclasses
import os
import platform
import time

import numpy as np


def _clock():
    return time.perf_counter(), time.process_time()


def _since(c):
    return time.perf_counter() - c[0], time.process_time() - c[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--spec", default="her2climb_like")
    ap.add_argument("--scheduler", default=None, help="where the exposure tables' integrations run (her2sim.executors)")
    ap.add_argument("--window", type=int, default=None, help="table-read window of the new path (h)")
    ap.add_argument("--scale", type=int, default=0, help="patients for the scale-out comparison (0: skip)")
    ap.add_argument("--scale-only", action="store_true", help="only the scale-out comparison")
    ap.add_argument("--calibration", action="store_true", help="only the calibration-objective timing")
    ap.add_argument("--before", default=None, help="git revision to time the calibration objective against")
    ap.add_argument("--repeats", type=int, default=3, help="calibration objective evaluations per tree (min taken)")
    ap.add_argument("--prepared", default=None, help="pickle of prepare_calibration(patients=300, seed=2024) to reuse")
    args = ap.parse_args()
    if args.calibration:
        calibration_objective(args.before, args.repeats, args.prepared)
        return
    import scipy

    from her2sim.trial.arms import WINDOW_H, TableCache, exposure, exposure_stepped, plan_arm
    from her2sim.trial.trial import evaluate, load_trial, prepare_trial

    window = WINDOW_H if args.window is None else args.window
    spec = load_trial(args.spec)
    if args.scale_only:
        scale_out(spec, args.scale)
        return
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; load average {os.getloadavg()[0]:.1f}")
    cache = TableCache()
    c = _clock()
    prep = prepare_trial(spec, args.patients, seed=1, scheduler=args.scheduler, cache=cache)   # builds the tables
    tables = sum(v for k, v in prep.timings.items() if k.endswith("_table_s"))
    print(f"{args.spec}: {args.patients} patients, {len(spec.arms)} arms, {spec.follow_up_h / 730.5:.0f} months")
    print(f"  exposure-response tables (her2sim.experiments runner, batch engine, once per drug set): {tables:6.1f} s "
          f"wall, {_since(c)[1]:6.1f} s cpu (sampling and PK included)")
    arms = []
    for a, arm in enumerate(spec.arms):
        coh = prep.cohort.subset(prep.arm_index == a)
        plan = plan_arm(arm, coh, tumour=spec.tumour, population=spec.population, cache=cache)
        arms.append((coh, plan, plan.sample_pk(coh.n, np.random.default_rng([1, a]))))
    rows, rates = {}, {}
    for label, fn, kw in (("before (hourly PK steps, 2-h reads)", exposure_stepped, {"window_h": 2}),
                          (f"after (closed-form PK, {window}-h reads)", exposure, {"window_h": window})):
        c = _clock()
        rates[label] = [fn(plan, coh, pk, spec.follow_up_h, **kw) for coh, plan, pk in arms]
        t_pk = _since(c)
        c = _clock()
        res = evaluate(dataclasses.replace(prep, rates=rates[label]))
        rows[label] = (t_pk, _since(c), res)
    print("| path | PK + table reads s (cpu) | lesions + RECIST + stats s (cpu) | total s (cpu) |")
    print("|---|---|---|---|")
    for label, (t_pk, t_ev, _res) in rows.items():
        print(f"| {label} | {t_pk[0]:.1f} ({t_pk[1]:.1f}) | {t_ev[0]:.1f} ({t_ev[1]:.1f}) | "
              f"{t_pk[0] + t_ev[0]:.1f} ({t_pk[1] + t_ev[1]:.1f}) |")
    (b_pk, b_ev, before), (a_pk, a_ev, after) = rows.values()
    print(f"speed-up (cpu, PK + reads + evaluate): {(b_pk[1] + b_ev[1]) / (a_pk[1] + a_ev[1]):.1f}x")
    # accuracy: both paths against hourly reads, first 100 patients of each arm
    for label, rr in rates.items():
        err = 0.0
        for (coh, plan, pk), r in zip(arms, rr):
            m = min(100, coh.n)
            sub = coh.subset(np.arange(m))
            ref = exposure_stepped(plan, sub, [{k: v[:m] for k, v in p.items()} for p in pk], spec.follow_up_h,
                                   window_h=1)
            err = max(err, float(np.abs(r.dS[:m] - ref.dS).max()), float(np.abs(r.dR[:m] - ref.dR).max()))
        print(f"  {label}: max |daily rate - hourly reference| {err:.2e} 1/h")
    for name in before.summary["arms"]:
        print(f"  median PFS {name}: before {before.summary['arms'][name]['median_pfs']:.2f} mo, after "
              f"{after.summary['arms'][name]['median_pfs']:.2f} mo")
    for name in before.summary["comparisons"]:
        print(f"  HR {name}: before {before.summary['comparisons'][name]['hazard_ratio']:.3f}, after "
              f"{after.summary['comparisons'][name]['hazard_ratio']:.3f}")
    same = (before.patients.pfs_months.values == after.patients.pfs_months.values).mean()
    print(f"  patients with the same PFS on both paths: {same:.1%}")
    if args.scale:
        scale_out(spec, args.scale)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory (VmHWM: unlike ru_maxrss of a spawned child, it does
    not include the parent's memory at fork time)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024


def scale_out(spec, patients: int) -> None:
    import pandas as pd

    from her2sim.trial import run_trial
    from her2sim.trial.arms import TableCache
    from her2sim.trial.scaleout import DEFAULT_BLOCK

    cache = TableCache()
    run_trial(spec, 2 * len(spec.arms), seed=1, cache=cache)  # the tables of these drug sets, built once
    base_mb = _peak_rss_mb()
    from distributed import Client, LocalCluster

    rows = []
    t0 = time.perf_counter()
    res = run_trial(spec, patients, seed=2, cache=cache)
    rows.append(("this process", time.perf_counter() - t0, res))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        t0 = time.perf_counter()
        res = run_trial(spec, patients, seed=2, scheduler=client, cache=cache)
        rows.append(("dask LocalCluster, 2 workers", time.perf_counter() - t0, res))
        workers_mb = list(client.run(_peak_rss_mb).values())
    pd.testing.assert_frame_equal(rows[0][2].patients, rows[1][2].patients, check_exact=True)
    print(f"\nscale-out, {patients} patients (tables cached; results identical on both schedulers):")
    print("| scheduler | wall s | patients/s | vs this process |")
    print("|---|---|---|---|")
    for label, wall, _res in rows:
        print(f"| {label} | {wall:.1f} | {patients / wall:.0f} | {rows[0][1] / wall:.2f}x |")
    print(f"peak RSS: driver {_peak_rss_mb():.0f} MB (before the scale-out runs {base_mb:.0f} MB), "
          f"dask workers {', '.join(f'{m:.0f}' for m in workers_mb)} MB (block {DEFAULT_BLOCK} patients)")


_EVAL_CHILD = """
import json, pickle, sys, time
import numpy as np
from her2sim.trial.calibrate import PARAMETERS, objective_value, residuals
cts = pickle.load(open(sys.argv[1], "rb"))
d = json.load(open(sys.argv[2]))
x = np.log([d["parameters"][p] for p in PARAMETERS])
out = []
for _ in range(int(sys.argv[3])):
    c = time.process_time()
    v = objective_value(residuals(x, cts), x)
    out.append((v, time.process_time() - c))
print(json.dumps({"objective": out[0][0], "cpu_s": min(t for _, t in out)}))
"""


def calibration_objective(before: str | None, repeats: int, prepared: str | None = None) -> None:
    """One calibration-objective evaluation, this tree vs git revision ``before`` (module docstring)."""
    import json
    import pickle
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from her2sim.trial.calibrate import prepare_calibration, stack_arms

    root = Path(__file__).resolve().parents[1]
    fit_json = root / "models/calibration/v5_merged_draft/fit.json"
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}, "
          f"numpy {np.__version__}; load average {os.getloadavg()[0]:.1f}")
    c = _clock()
    if prepared:
        preps = pickle.loads(Path(prepared).read_bytes())
    else:
        preps = prepare_calibration(patients=300, seed=2024)
        print(f"prepared {len(preps)} calibration trials x 300 patients: {_since(c)[1]:.0f} s cpu")
    cts = [stack_arms(p) for p in preps]
    with tempfile.TemporaryDirectory() as tmp:
        pk = Path(tmp) / "cts.pkl"
        pk.write_bytes(pickle.dumps(cts))
        trees = [("this tree", root / "src")]
        if before:
            old = Path(tmp) / "before"
            old.mkdir()
            arch = subprocess.run(["git", "-C", str(root), "archive", before, "src"], check=True, capture_output=True)
            subprocess.run(["tar", "-x", "-C", str(old)], input=arch.stdout, check=True)
            trees.insert(0, (f"before ({before})", old / "src"))
        for name, src in trees:
            env = dict(os.environ, PYTHONPATH=str(src))
            r = subprocess.run([sys.executable, "-c", _EVAL_CHILD, str(pk), str(fit_json), str(repeats)], env=env,
                               check=True, capture_output=True, text=True)
            res = json.loads(r.stdout.strip().splitlines()[-1])
            print(f"  {name:<22} objective {res['objective']:.10f}   one evaluation {res['cpu_s']:.3f} s cpu "
                  f"(min of {repeats})   a 400-evaluation LOTO fold ~{400 * res['cpu_s'] / 60:.1f} min cpu")


if __name__ == "__main__":
    main()
