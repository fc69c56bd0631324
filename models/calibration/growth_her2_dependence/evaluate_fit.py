"""Residuals of the fitted parameters per split and Wald intervals of the estimated parameters.

Run from the repository root after a fit:
  python models/calibration/growth_her2_dependence/evaluate_fit.py FIT_DIR/parameters.tsv
Prints, per block, the measured and simulated 72-h relative cell number (treated / untreated of the
same line, simulated with the same parameters) and the fold-growth residual on the log scale, the
RMSE of the log residuals per split, and Wald 95 % intervals (noise SD held at its fit; log10
scale, from the Jacobian of the residuals by central differences). Writes residuals.tsv and
wald.tsv next to this file.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from her2sim.fit import Objective, read_problem

HERE = Path(__file__).parent


def main(parameters_tsv: str) -> None:
    fitted = {r["parameterId"]: float(r["nominalValue"])
              for r in csv.DictReader(open(parameters_tsv), delimiter="\t")}
    rows = []
    for split in ("train", "validation"):
        problem = read_problem(HERE / ("problem.yaml" if split == "train" else "validation.yaml"))
        theta = np.array([fitted[p] for p in problem.parameter_ids])
        ev = Objective(problem, rtol=1e-8, atol=1e-12).evaluate(theta)
        meas = list(csv.DictReader(open(HERE / f"measurements_{split}.tsv"), delimiter="\t"))
        for m, sim in zip(meas, ev.simulated[0]):
            rows.append({"split": split, "datasetId": m["datasetId"], "condition": m["simulationConditionId"],
                         "fold_measured": float(m["measurement"]), "fold_simulated": float(sim),
                         "log_residual": float(np.log(float(m["measurement"]) / float(sim)))})
    untreated = {r["condition"].split("_")[0]: r for r in rows if r["condition"].endswith("_untreated")}
    for r in rows:
        u = untreated[r["condition"].split("_")[0]]
        r["relative_measured"] = r["fold_measured"] / u["fold_measured"]
        r["relative_simulated"] = r["fold_simulated"] / u["fold_simulated"]
    with open(HERE / "residuals.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for r in rows:
        print(f"{r['split']:<10} {r['datasetId']:<10} fold data {r['fold_measured']:.3f} model {r['fold_simulated']:.3f}"
              f"  relative data {r['relative_measured']:.3f} model {r['relative_simulated']:.3f}"
              f"  log residual {r['log_residual']:+.3f}")
    for split in ("train", "validation"):
        res = np.array([r["log_residual"] for r in rows if r["split"] == split])
        print(f"{split}: n={len(res)} RMSE(log fold)={np.sqrt(np.mean(res ** 2)):.3f}")
    # Wald intervals (training problem)
    problem = read_problem(HERE / "problem.yaml")
    obj = Objective(problem, rtol=1e-6, atol=1e-9)
    bounds = (np.array([problem.parameter(p).lower for p in problem.free]),
              np.array([problem.parameter(p).upper for p in problem.free]))
    x = np.array([np.log10(fitted[p]) for p in problem.free])
    lower, upper = np.log10(bounds[0]), np.log10(bounds[1])
    # parameters on a bound are held there (a Wald interval assumes an interior optimum)
    active = [i for i, p in enumerate(problem.free)
              if not p.startswith("sigma_") and lower[i] + 1e-6 < x[i] < upper[i] - 1e-6]
    for i, p in enumerate(problem.free):
        if i not in active and not p.startswith("sigma_"):
            print(f"{p:<22} {fitted[p]:.4g}  on its bound (held)")
    r, J, nllh = obj.residuals_and_jacobian(x, active=active)
    JtJ = J.T @ J
    cov = np.linalg.pinv(JtJ)
    sd = np.sqrt(np.maximum(np.diag(cov), 0.0))
    ev = np.linalg.eigvalsh(JtJ)
    print(f"nllh {nllh:.4f}; J^T J eigenvalues {ev.min():.3g} .. {ev.max():.3g}")
    out = []
    for k, i in enumerate(active):
        pid = problem.free[i]
        lo, hi = 10 ** (x[i] - 1.96 * sd[k]), 10 ** (x[i] + 1.96 * sd[k])
        out.append({"parameterId": pid, "value": fitted[pid], "sd_log10": sd[k], "wald_lo": lo, "wald_hi": hi})
        print(f"{pid:<22} {fitted[pid]:.4g}  Wald 95 % {lo:.3g} - {hi:.3g}  (sd log10 {sd[k]:.3g})")
    with open(HERE / "wald.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, list(out[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(out)


if __name__ == "__main__":
    main(sys.argv[1])
