"""Revision 2 fit: fides from the best ``refit.py`` points and Latin-hypercube starts, with a
stopping rule on the nllh change per step.

``python models/calibration/signalling_timecourses/refit_continue.py STARTS.tsv OUTDIR N [MAXITER [PROBLEM.yaml [LHS SEED]]]``
continues the N best rows of STARTS.tsv (from ``refit.py``; parameters the problem does not estimate
are ignored) plus LHS Latin-hypercube starts drawn with SEED, in lockstep with fides (Gauss-Newton
``J^T J``; noise SDs in closed form as in ``her2sim fit``). fides' default gradient tolerance
(gatol 1e-6, with function tolerances 1e-8) was met by no start of ``refit.py`` in 150
iterations (presumably below the integration noise of central-difference gradients at rtol 1e-6; not
measured); here a start stops when an accepted step changes the nllh by less
than 1e-4 (``fatol``) or the gradient norm falls below 1e-3 (``gatol``), else at MAXITER.
Writes OUTDIR/starts_continued.tsv and OUTDIR/best.json.
"""

import json
import logging
import sys
import threading
import time
from pathlib import Path

import fides
import numpy as np
import pandas as pd

from her2sim.fit import read_problem
from her2sim.fit.objective import Objective
from her2sim.fit.optimize import Lockstep, latin_hypercube, split_noise

HERE = Path(__file__).resolve().parent


def main(starts_tsv: str, out: str, n: int, maxiter: int = 150, yaml: str = "problem_train.yaml",
         lhs: int = 0, seed: int = 0) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = read_problem(HERE / yaml)
    obj = Objective(problem, rtol=1e-6, atol=1e-9, max_steps=20000)
    prev = pd.read_csv(starts_tsv, sep="\t").sort_values("nllh").head(int(n))
    X0 = prev[list(problem.free)].to_numpy(float)
    labels = [f"continued {int(s)}" for s in prev["start"]]
    if int(lhs):
        X0 = np.vstack([X0, latin_hypercube(int(lhs), obj.lower, obj.upper, seed=int(seed))])
        labels += [f"lhs {i} (seed {seed})" for i in range(int(lhs))]
    act, groups = split_noise(obj)
    step = Lockstep(lambda xs: obj.residuals_and_jacobian_many(xs, act, groups), len(X0))
    results = [None] * len(X0)

    def worker(k):
        x0 = X0[k].copy()
        count = [0]

        def full(y):
            x = x0.copy()
            x[act] = y
            return x

        def fun(y):
            count[0] += 1
            r, J, value = step.call(k, full(y))
            if not np.isfinite(value):
                return np.inf, np.full(len(y), np.nan), np.full((len(y), len(y)), np.nan)
            J = np.nan_to_num(J)
            return value, J.T @ r, J.T @ J

        clock = time.perf_counter()
        try:
            opt = fides.Optimizer(fun, ub=obj.upper[act], lb=obj.lower[act], verbose=logging.ERROR,
                                  hessian_update=None,
                                  options={fides.Options.MAXITER: int(maxiter), fides.Options.FATOL: 1e-4,
                                           fides.Options.FRTOL: 0.0, fides.Options.GATOL: 1e-3})
            with np.errstate(invalid="ignore"):
                _, y, *_ = opt.minimize(x0[act])
            results[k] = (full(np.asarray(y)), opt.exitflag.name, count[0], time.perf_counter() - clock)
        finally:
            step.leave()

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(len(X0))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = []
    for k, (x, flag, count, wall) in enumerate(results):
        x = obj.optimal_noise_x(x, groups)
        rows.append({"start": labels[k], "nllh_start": float(obj.nllh(obj.optimal_noise_x(X0[k], groups))),
                     "nllh": float(obj.nllh(x)), "exitflag": flag, "n_evaluations": count, "wall_time_s": wall,
                     **dict(zip(problem.free, x))})
    df = pd.DataFrame(rows).sort_values("nllh")
    df.to_csv(out / "starts_continued.tsv", sep="\t", index=False)
    b = df.iloc[0]
    (out / "best.json").write_text(json.dumps({"free": list(problem.free), "x": [float(b[p]) for p in problem.free],
                                               "nllh": float(b["nllh"])}, indent=1))
    print(df[["start", "nllh_start", "nllh", "exitflag", "n_evaluations"]].to_string())


if __name__ == "__main__":
    a = sys.argv
    main(a[1], a[2], int(a[3]), *([int(a[4])] if len(a) > 4 else []), *a[5:6], *(int(v) for v in a[6:8]))
