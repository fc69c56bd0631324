"""Errors, Wald intervals and residual table of a fitted point of this problem.

``python models/calibration/signalling_timecourses/evaluate_fit.py BEST.json OUTDIR [SUFFIX]`` (worktree
root; SUFFIX ``_rev2`` uses ``problem_train_rev2.yaml`` / ``problem_validation_rev2.yaml``).
BEST.json holds ``free`` and ``x`` (parameter scale, as written by ``refit.py``). Writes to OUTDIR:
``parameters_fitted.tsv`` (PEtab table), ``residuals.tsv`` (every train and validation point, rtol
1e-8 / atol 1e-12), ``errors.tsv`` (RMSE per set, cell line, ligand and observable) and
``wald_ci.tsv`` (95 % Wald intervals on the parameter scale from the Gauss-Newton Fisher
information J^T J of the training residuals at rtol 1e-6, central differences).
"""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from her2sim.fit import read_problem
from her2sim.fit.objective import Objective
from her2sim.fit.optimize import parameter_table

HERE = Path(__file__).resolve().parent


def main(best_json: str, out: str, suffix: str = "") -> None:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    best = json.loads(Path(best_json).read_text())
    train = read_problem(HERE / f"problem_train{suffix}.yaml")
    assert list(train.free) == best["free"], "parameter order differs from the problem's"
    x = np.array(best["x"], dtype=float)
    tight = Objective(train, rtol=1e-8, atol=1e-12)
    theta = tight.theta(x)[0]
    parameter_table(train, theta).to_csv(out / "parameters_fitted.tsv", sep="\t", index=False)
    frames = []
    for name, yaml in (("train", f"problem_train{suffix}.yaml"), ("validation", f"problem_validation{suffix}.yaml")):
        prob = read_problem(HERE / yaml)
        obj = tight if name == "train" else Objective(prob, rtol=1e-8, atol=1e-12)
        sim = obj.simulation_table(theta)
        sim["measurement"] = [m.value for m in prob.measurements]
        sim["residual"] = sim["simulation"] - sim["measurement"]
        sim["set"] = name
        print(name, "nllh (rtol 1e-8)", float(obj.evaluate(theta[None]).nllh[0]))
        frames.append(sim)
    res = pd.concat(frames, ignore_index=True)
    res.to_csv(out / "residuals.tsv", sep="\t", index=False)
    res["line"] = res["simulationConditionId"].str.split("_").str[0]
    res["ligand"] = res["simulationConditionId"].str.split("_").str[1]
    rows = []
    for keys, g in [(("set",), res.groupby("set"))] + [(("set", "line", "ligand", "observableId"),
                                                        res.groupby(["set", "line", "ligand", "observableId"]))]:
        for k, gg in g:
            k = k if isinstance(k, tuple) else (k,)
            rows.append({**dict(zip(("set", "line", "ligand", "observable"), k)), "points": len(gg),
                         "rmse": float(np.sqrt(np.mean(gg["residual"] ** 2)))})
    err = pd.DataFrame(rows)
    err.to_csv(out / "errors.tsv", sep="\t", index=False)
    print(err.to_string())
    loose = Objective(train, rtol=1e-6, atol=1e-9)
    r, J, _ = loose.residuals_and_jacobian(x)
    cov = np.linalg.pinv(J.T @ J)
    se = np.sqrt(np.maximum(np.diag(cov), 0.0))
    wald = pd.DataFrame({"parameter": train.free, "scale": loose.scales, "best": x, "se": se,
                         "lo95": x - 1.96 * se, "hi95": x + 1.96 * se})
    wald.to_csv(out / "wald_ci.tsv", sep="\t", index=False)
    print(wald.to_string())


if __name__ == "__main__":
    main(*sys.argv[1:4])
