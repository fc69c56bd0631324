"""Calibration of the patient-level parameters on the calibration trials only (strict train/test split).

Fitted (models/calibration.md lists the values, data, method and residuals):

- ``growth_rate``: median untreated in-vivo net growth rate (models/populations/tumour.toml);
- ``kill_scale`` and ``kill_max``: the in-vitro -> in-vivo effect map of :mod:`her2sim.trial.tumour`;
- ``resistant_fraction``: the baseline share of the HER2-lower clone, one value for first-line
  populations and one for pre-treated ones (models/populations/*.toml).

Data: the observed read-outs written in the calibration trial specs (``role = "calibration"``,
parameters.md section 3: CLEOPATRA, EMILIA, DESTINY-Breast03/04, BOLERO-2). A held-out trial is
refused. Objective: sum of squared log ratios simulated/observed over all read-outs (median PFS,
hazard ratios, PFS rates); a median not reached is replaced by 1.5 x the follow-up. Method:
Nelder-Mead on log parameters (scipy), common random numbers (the prepared trials, i.e. cohorts,
PK and exposure, are fixed; only the tumour stage is re-run). Residual: root-mean-square of the
log ratios, reported overall and per read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .trial import HOURS_PER_MONTH, PreparedTrial, evaluate, load_trial, prepare_trial, target_value

CALIBRATION_TRIALS = ("cleopatra_like", "emilia_like", "destiny_breast03_like", "destiny_breast04_like",
                      "bolero2_like")
PARAMETERS = ("growth_rate_per_day", "kill_scale", "kill_max_per_day", "resistant_fraction_first_line",
              "resistant_fraction_pretreated")


@dataclass(frozen=True)
class CalibrationResult:
    parameters: dict
    rms_log_residual: float
    residuals: list        # (trial, metric, arm, subgroup, observed, simulated, log ratio)
    evaluations: int
    patients: int
    seed: int


def _knobs(theta: np.ndarray, prep: PreparedTrial) -> dict:
    g, s, kmax, f1, f2 = np.exp(theta)
    first = "first_line" in prep.spec.population.name
    return {"growth_rate": g / 24.0, "kill_scale": s, "kill_max": kmax / 24.0,
            "resistant_fraction": min(f1 if first else f2, 0.5)}


def residuals(theta, preps) -> list:
    out = []
    for prep in preps:
        res = evaluate(prep, **_knobs(theta, prep))
        for t in prep.spec.targets:
            sim = target_value(res, t)
            if not np.isfinite(sim):
                sim = 1.5 * prep.spec.follow_up_h / HOURS_PER_MONTH if t.metric == "median_pfs" else 1e-3
            sim = max(sim, 1e-3)
            out.append((prep.spec.name, t.metric, t.arm, ",".join(f"{k}={v}" for k, v in t.subgroup.items()),
                        t.value, float(sim), float(np.log(sim / t.value))))
    return out


def calibrate(trials=CALIBRATION_TRIALS, *, patients: int = 400, seed: int = 2024, start=None,
              max_evaluations: int = 150, workers: int = 1, progress: bool = False) -> CalibrationResult:
    """Fit the patient-level parameters to the calibration trials' read-outs (see the module docstring).

    ``start``: initial values in the order of :data:`PARAMETERS` (default: the shipped values).
    """
    from scipy.optimize import minimize

    specs = [load_trial(t) for t in trials]
    held = [s.name for s in specs if s.role != "calibration"]
    if held:
        raise ValueError(f"calibrate: {held} are held-out trials; only role = 'calibration' specs may be fitted")
    preps = [prepare_trial(s, patients, seed, workers=workers, progress=progress) for s in specs]
    if start is None:
        tp = specs[0].tumour
        f1 = next((s.population.continuous["resistant_fraction"][0] for s in specs
                   if "first_line" in s.population.name), 0.02)
        f2 = next((s.population.continuous["resistant_fraction"][0] for s in specs
                   if "first_line" not in s.population.name), 0.08)
        start = (tp.growth_rate * 24, tp.kill_scale, tp.kill_max * 24, f1, f2)
    x0 = np.log(np.asarray(start, float))
    count = [0]

    def objective(theta):
        count[0] += 1
        r = residuals(theta, preps)
        val = float(sum(x[-1] ** 2 for x in r))
        if progress and count[0] % 10 == 0:
            print(f"  eval {count[0]}: SSE {val:.4f} at {np.round(np.exp(theta), 4)}", flush=True)
        return val

    opt = minimize(objective, x0, method="Nelder-Mead",
                   options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-4, "initial_simplex": None})
    r = residuals(opt.x, preps)
    rms = float(np.sqrt(np.mean([x[-1] ** 2 for x in r])))
    return CalibrationResult(dict(zip(PARAMETERS, map(float, np.exp(opt.x)))), rms, r, count[0], patients, seed)


def format_calibration(res: CalibrationResult) -> str:
    lines = [f"calibration: {res.evaluations} evaluations, {res.patients} patients per trial, seed {res.seed}",
             "parameters:"]
    lines += [f"  {k:<34} {v:.5g}" for k, v in res.parameters.items()]
    lines.append(f"RMS log residual {res.rms_log_residual:.3f}")
    lines.append("| trial | read-out | arm | subgroup | observed | simulated | log ratio |")
    lines.append("|---|---|---|---|---|---|---|")
    for tr, m, arm, sub, obs, sim, lr in res.residuals:
        lines.append(f"| {tr} | {m} | {arm} | {sub} | {obs:.3g} | {sim:.3g} | {lr:+.2f} |")
    return "\n".join(lines)
