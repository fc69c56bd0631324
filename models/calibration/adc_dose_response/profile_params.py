"""Profile-likelihood 95 % intervals of the fitted parameters on the data blocks they enter.

Run from the repository root after a fit:
  python models/calibration/adc_dose_response/profile_params.py FIT_DIR/parameters.tsv OUT.json \
      BLOCKS PARAMS NAME [NAME ...]
BLOCKS: comma-separated datasetIds (the training blocks the parameters enter); PARAMS: the
comma-separated parameters re-optimised along the profiles (the others stay at the fit; the shared Jurkat uptake is profiled on both Jurkat blocks with the payload constants held, and held itself in the payload profiles). The noise
SD is held at its fitted value. Each ADC's payload constants enter only its own blocks and the
Jurkat uptake only the Jurkat blocks, so profiling on those blocks is the full profile except that
the other ADC's constants are not re-optimised when the shared Jurkat uptake moves. Looser
integrator tolerance (rtol 1e-6) and at most 12 steps per direction (her2sim.fit.profile), so that
all profiles fit in the time of this calibration on two shared cores.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np

from her2sim.fit import Objective, read_problem
from her2sim.fit.profiles import profile

HERE = Path(__file__).parent


def main(parameters_tsv: str, out: str, blocks: list[str], active: list[str], names: list[str]) -> None:
    best = {r["parameterId"]: float(r["nominalValue"]) for r in csv.DictReader(open(parameters_tsv), delimiter="\t")}
    # a copy of the parameter table with the noise SD fixed at its fitted value
    rows = list(csv.DictReader(open(HERE / "parameters.tsv"), delimiter="\t"))
    tmp = Path(out).with_suffix(".parameters.tsv")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, list(rows[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        for r in rows:
            r = dict(r, nominalValue=repr(best[r["parameterId"]]))
            if r["parameterId"] not in active:
                r["estimate"] = "0"
            w.writerow(r)
    meas = list(csv.DictReader(open(HERE / "measurements_train.tsv"), delimiter="\t"))
    mfile = Path(out).with_suffix(".measurements.tsv")
    with open(mfile, "w", newline="") as f:
        w = csv.DictWriter(f, list(meas[0]), delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(m for m in meas if m["datasetId"] in blocks)
    text = (HERE / "problem.yaml").read_text().replace("parameters.tsv", str(tmp.resolve()))
    yaml = Path(out).with_suffix(".yaml")
    yaml.write_text(text.replace("[conditions.tsv]", f"[{(HERE / 'conditions.tsv').resolve()}]")
                    .replace("[measurements_train.tsv]", f"[{mfile.resolve()}]")
                    .replace("[observables.tsv]", f"[{(HERE / 'observables.tsv').resolve()}]")
                    .replace("[model.toml]", f"[{(HERE / 'model.toml').resolve()}]"))
    problem = read_problem(yaml)
    objective = Objective(problem, rtol=1e-6, atol=1e-9)
    x_best = np.log10([best[p] for p in problem.free])
    result = {}
    for name in names:
        p = profile(objective, x_best, list(problem.free).index(name), max_points=12, max_evaluations=50)
        result[name] = {"lower_log10": p.lower, "upper_log10": p.upper, "values_log10": p.values.tolist(),
                        "delta_nllh": p.delta_nllh.tolist(), "best_log10": float(np.log10(best[name]))}
        Path(out).write_text(json.dumps(result, indent=1))
        print(name, 10 ** p.lower if np.isfinite(p.lower) else "-inf", 10 ** p.upper if np.isfinite(p.upper) else "inf", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3].split(","), sys.argv[4].split(","), sys.argv[5:])
