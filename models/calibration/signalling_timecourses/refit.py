"""Revision 1 fit (2026-11-27): the six version-1 trf starts continued with fides to convergence.

Run from the worktree root: ``python models/calibration/signalling_timecourses/refit.py OUTDIR [MAXEVAL]``.
Starts are the end points of the six starts in ``results/starts.tsv`` (trf, 60 evaluations each,
not converged); every start runs fides (Gauss-Newton trust region, batched central-difference
Jacobian) at rtol 1e-6 / atol 1e-9 in lockstep. Writes ``OUTDIR/starts_fides.tsv`` and
``OUTDIR/best.json`` (best point on the parameter scale).
"""

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from her2sim.fit import read_problem
from her2sim.fit.objective import Objective
from her2sim.fit.optimize import local_fits

HERE = Path(__file__).resolve().parent


def main(out: str, max_evaluations: int = 150) -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    problem = read_problem(HERE / "problem_train.yaml")
    obj = Objective(problem, rtol=1e-6, atol=1e-9, max_steps=20000)
    prev = pd.read_csv(HERE / "results" / "starts.tsv", sep="\t")
    X0 = prev[list(problem.free)].to_numpy(float)
    clock = time.perf_counter()
    fits = local_fits(obj, X0, indices=list(prev["start"]), max_evaluations=max_evaluations, optimizer="fides")
    rows = []
    for f in sorted(fits, key=lambda f: f.nllh):
        rows.append({"start": f.index, "nllh": f.nllh, "status": f.status, "n_evaluations": f.n_evaluations,
                     "wall_time_s": f.wall_time_s, "message": f.message, **dict(zip(problem.free, f.x))})
    pd.DataFrame(rows).to_csv(out / "starts_fides.tsv", sep="\t", index=False)
    best = min(fits, key=lambda f: f.nllh)
    (out / "best.json").write_text(json.dumps({"free": list(problem.free), "x": list(best.x), "nllh": best.nllh,
                                               "wall_s": time.perf_counter() - clock}, indent=1))
    print(pd.DataFrame(rows)[["start", "nllh", "status", "n_evaluations"]].to_string())


if __name__ == "__main__":
    main(sys.argv[1], *(int(a) for a in sys.argv[2:3]))
