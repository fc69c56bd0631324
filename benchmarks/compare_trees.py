"""Before/after: the same workloads on two source trees, interleaved, in CPU seconds.

A refactoring must not slow anything down. This runs a fixed set of end-to-end workloads (each a
fresh ``python`` process, so start-up and imports count) against two checkouts of her2sim, in the
order base, new, base, new, ... and reports the median CPU seconds (user + system of the child,
from ``resource.getrusage``) of each and their ratio. CPU time, not wall time, because on a shared
machine wall time includes other people's jobs; interleaving spreads any drift over both trees.

    python benchmarks/compare_trees.py --base /path/to/old/checkout --new . [--repeats 3]

Workloads (all on the bundled default model; all use public entry points that exist in both trees):

- ``simulate``: ``her2sim simulate`` (one scipy-path simulation, start-up included);
- ``batch``: ``simulate_batch`` of 2,000 members (bench_batch's 8 varied parameters, factors 0.5-2), 72 h, rtol 1e-4;
- ``screen``: ``her2sim screen`` lapatinib x alpelisib 4 x 4 doses, batch engine, viable cells;
- ``sweep``: ``her2sim sweep`` of the bundled Saltelli spec cut to 64 base points (576 conditions);
- ``trial``: ``her2sim trial emilia_like --patients 1000`` (exposure tables, PK, lesions, statistics).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BATCH = """
import sys
import numpy as np
import her2sim
from her2sim import simulate_batch  # the top-level name exists in every layout
sys.path.insert(0, "benchmarks")
from bench_batch import varied_parameters
net = her2sim.compile_network(her2sim.load_model("default"))
names, P = varied_parameters(net, 2000, seed=7)
X0 = np.tile(net.x0, (len(P), 1))
r = simulate_batch(net, X0, P, t_eval=np.linspace(0.0, 72.0, 73), rtol=1e-4, atol=1e-9)
"""


def workloads(tmp: Path) -> dict[str, list[str]]:
    spec = tmp / "sweep.toml"
    text = Path(__file__).resolve().parents[1].joinpath("models", "sweeps", "lapatinib_sensitivity.toml").read_text()
    spec.write_text(text.replace("n = 256", "n = 64"))
    py = sys.executable
    return {
        "simulate": [py, "-m", "her2sim", "simulate"],
        "batch": [py, "-c", BATCH],
        "screen": [py, "-m", "her2sim", "screen", "--drugs", "lapatinib,alpelisib", "--doses", "lapatinib=0,10,100,1000nM",
                   "--doses", "alpelisib=0,10,100,1000nM", "--engine", "batch"],
        "sweep": [py, "-m", "her2sim", "sweep", str(spec), "--out", "{out}", "--quiet"],
        "trial": [py, "-m", "her2sim", "trial", "emilia_like", "--patients", "1000"],
    }


def run_once(cmd: list[str], tree: Path, tmp: Path) -> tuple[float, float]:
    """(CPU seconds of the child, wall seconds) of one run of ``cmd`` with ``tree``'s sources first."""
    out = tempfile.mkdtemp(dir=tmp)
    env = dict(os.environ, PYTHONPATH=str(tree / "src"), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
               PYTHONWARNINGS="ignore::DeprecationWarning")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([c.replace("{out}", out + "/s") for c in cmd], cwd=tree, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[2:5]} failed in {tree} (exit {proc.returncode}): {proc.stderr.strip()[-400:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), wall


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", type=Path, required=True, help="checkout before the change")
    ap.add_argument("--new", type=Path, default=Path("."), help="checkout after the change (default: here)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated workload names")
    args = ap.parse_args(argv)
    trees = {"base": args.base.resolve(), "new": args.new.resolve()}
    for name, tree in trees.items():
        if not (tree / "src" / "her2sim").is_dir():
            raise SystemExit(f"--{name} {tree}: no src/her2sim there")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        jobs = workloads(tmp)
        if args.only:
            jobs = {k: v for k, v in jobs.items() if k in args.only.split(",")}
        print(f"base {trees['base']}\nnew  {trees['new']}\nrepeats {args.repeats}, interleaved; CPU s = user + sys "
              f"of the child; load average at start {os.getloadavg()[0]:.1f}\n")
        print(f"| workload | base CPU s (median) | new CPU s (median) | new / base | base wall s | new wall s |")
        print("|---|---|---|---|---|---|")
        for name, cmd in jobs.items():
            cpu = {"base": [], "new": []}
            wall = {"base": [], "new": []}
            for _ in range(args.repeats):
                for which in ("base", "new"):
                    c, w = run_once(cmd, trees[which], tmp)
                    cpu[which].append(c)
                    wall[which].append(w)
            mb, mn = statistics.median(cpu["base"]), statistics.median(cpu["new"])
            print(f"| {name} | {mb:.2f} | {mn:.2f} | {mn / mb:.3f} | {statistics.median(wall['base']):.2f} | "
                  f"{statistics.median(wall['new']):.2f} |", flush=True)


if __name__ == "__main__":
    main()
