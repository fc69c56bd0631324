"""Profile likelihoods of the mechanistic parameters at a fitted point.

``python models/calibration/signalling_timecourses/profile_fit.py PROBLEM.yaml BEST.json OUT.tsv NAME [NAME ...]``
(worktree root). Each profile is :func:`her2sim.fit.profiles.profile` at rtol 1e-6 / atol 1e-9
(the fit's tolerances): steps of 0.15 log10 units at first, adapted to ~0.6 nllh per step, every
other parameter re-optimised by fides (up to 12 evaluations per point, warm-started from the
previous point), at most 8 points per side. A point that is not fully re-optimised lies above the
true profile, so the intervals can only be too narrow. Writes one row per profile point.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from her2sim.fit import read_problem
from her2sim.fit.objective import Objective
from her2sim.fit.profiles import profile

HERE = Path(__file__).resolve().parent


def main(yaml: str, best_json: str, out: str, names: list) -> None:
    best = json.loads(Path(best_json).read_text())
    problem = read_problem(HERE / yaml)
    obj = Objective(problem, rtol=1e-6, atol=1e-9, max_steps=20000)
    x = np.array(best["x"], dtype=float)
    rows = []
    for name in names:
        p = profile(obj, x, list(problem.free).index(name), max_points=8, first_step=0.15,
                    target_increase=0.6, max_evaluations=12)
        for v, d in zip(p.values, p.delta_nllh):
            rows.append({"parameter": name, "log10_value": v, "delta_nllh": d, "lower95": p.lower, "upper95": p.upper})
        pd.DataFrame(rows).to_csv(out, sep="\t", index=False)
        print(name, p.lower, p.upper, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
