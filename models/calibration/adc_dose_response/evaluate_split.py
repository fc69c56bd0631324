"""Residuals of the fitted parameters on the training and validation measurements, per block.

Run from the repository root after a fit:
  python models/calibration/adc_dose_response/evaluate_split.py FIT_DIR/parameters.tsv
Prints one line per block: split, block, points, RMSE and mean residual (data - model) in
relative-viability units, and writes residuals.tsv next to this file.
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
                         "measurement": float(m["measurement"]), "simulation": float(sim),
                         "residual": float(m["measurement"]) - float(sim)})
    with open(HERE / "residuals.tsv", "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    for split in ("train", "validation"):
        sub = [r for r in rows if r["split"] == split]
        res = np.array([r["residual"] for r in sub])
        print(f"{split:<10} {'ALL':<14} n={len(res):>2} RMSE={np.sqrt(np.mean(res ** 2)):.3f} mean={res.mean():+.3f}")
        for block in dict.fromkeys(r["datasetId"] for r in sub):
            res = np.array([r["residual"] for r in sub if r["datasetId"] == block])
            print(f"{split:<10} {block:<14} n={len(res):>2} RMSE={np.sqrt(np.mean(res ** 2)):.3f} mean={res.mean():+.3f}")


if __name__ == "__main__":
    main(sys.argv[1])
