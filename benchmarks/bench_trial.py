"""Virtual-trial wall time: a 1,000-patient, two-arm, 24-month trial (HER2CLIMB-like spec).

Reports the stages separately (exposure-response tables on the batch path, hourly PK + table
reads, lesion growth + RECIST + statistics) and, first, the accuracy of the default 2-h table-read
window against a 1-h reference on the same patients (so a speed-up cannot hide an accuracy loss).

Then the scale-out: ``run_trial`` in patient blocks in this process and on a 2-worker dask
LocalCluster (``scheduler="processes"``), on ``--scale`` patients, checked equal to each other,
with patients/s, the ratio and peak resident memory of the driver and the workers.

    python benchmarks/bench_trial.py [--patients 1000] [--spec her2climb_like] [--workers 1] [--scale 4000]
"""

import argparse
import os
import platform
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--spec", default="her2climb_like")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scale", type=int, default=4000, help="patients for the scale-out comparison (0: skip)")
    ap.add_argument("--scale-only", action="store_true", help="only the scale-out comparison")
    args = ap.parse_args()
    import scipy

    from her2sim.trial.population import sample_population
    from her2sim.trial.trial import _TABLES, arm_exposure, evaluate, load_trial, prepare_trial

    spec = load_trial(args.spec)
    if args.scale_only:
        scale_out(spec, args.scale)
        return
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}, "
          f"numpy {np.__version__}, scipy {scipy.__version__}")
    # accuracy reference: 1-h vs 2-h windows for 100 patients of the experimental arm
    coh = sample_population(spec.population, 100, 1)
    ref, _ = arm_exposure(spec.arms[0], coh, spec.follow_up_h, np.random.default_rng(0), window_h=1)
    got, _ = arm_exposure(spec.arms[0], coh, spec.follow_up_h, np.random.default_rng(0), window_h=2)
    err = np.abs(got.dS - ref.dS).max()
    print(f"2-h vs 1-h window: max |delta rate| {err:.2e} 1/h (typical |rate| {np.abs(ref.dS).mean():.2e})")
    _TABLES.clear()  # time the tables from scratch
    t0 = time.perf_counter()
    prep = prepare_trial(spec, args.patients, seed=1, workers=args.workers)
    t1 = time.perf_counter()
    res = evaluate(prep)
    t2 = time.perf_counter()
    tables = sum(v for k, v in prep.timings.items() if k.endswith("_table_s"))
    print(f"{args.spec}: {args.patients} patients, {len(spec.arms)} arms, {spec.follow_up_h / 730.5:.0f} months")
    print(f"  exposure-response tables (batch path): {tables:6.1f} s")
    print(f"  PK + table reads:                      {t1 - t0 - tables:6.1f} s")
    print(f"  lesions + RECIST + statistics:         {t2 - t1:6.1f} s")
    print(f"  total:                                 {t2 - t0:6.1f} s")
    print(res.report())
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
    from her2sim.trial.scaleout import DEFAULT_BLOCK

    run_trial(spec, 2 * len(spec.arms), seed=1)  # tables of these drug sets are cached from here on
    base_mb = _peak_rss_mb()
    from distributed import Client, LocalCluster

    rows = []
    t0 = time.perf_counter()
    res = run_trial(spec, patients, seed=2)
    rows.append(("this process", time.perf_counter() - t0, res))
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        t0 = time.perf_counter()
        res = run_trial(spec, patients, seed=2, scheduler=client)
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


if __name__ == "__main__":
    main()
