"""Calibration of the patient-level parameters on the calibration trials only (strict train/test split).

Fitted (models/calibration.md lists the values, data, method and residuals):

- ``growth_rate``: median untreated in-vivo net growth rate (models/populations/tumour.toml),
  with a prior from the tumour growth inhibition model of Claret et al. 2009 (parameters.md
  anchor 10: KL 0.021 per week on the sum of diameters, i.e. 3 x 0.021 / 7 = 0.009 per day on
  volume);
- ``signal_scale``, ``payload_scale``, ``chemo_scale``: the class-specific in-vitro -> in-vivo
  scales of :mod:`her2sim.trial.tumour` (signalling-driven growth change, ADC payload kill,
  chemotherapy kill);
- ``resistance_rate``: Claret's loss of drug effect lambda, with the Claret 2009 value (0.053 per
  week) as prior;
- ``pretreated_signal_factor``: the signalling response of populations that progressed on prior
  therapy of the same classes, relative to treatment-naive ones (cross-resistance);
- ``resistant_fraction``: the baseline share of the HER2-lower clone (median), one value shared by
  every population (models/populations/*.toml).

Seven parameters for seventeen read-outs. Data: the observed read-outs written in the
calibration trial specs (``role = "calibration"``, parameters.md section 3: CLEOPATRA, EMILIA,
DESTINY-Breast03/04, BOLERO-2). A held-out trial is refused. Objective: sum of squared log ratios
simulated/observed over all read-outs (median PFS, hazard ratios, PFS rates; a median not reached
is replaced by 1.5 x the follow-up) plus the two log-normal prior terms
``((log x - log x_prior) / sd)^2``. Method: Nelder-Mead on log parameters (scipy), common random
numbers (the prepared trials, i.e. cohorts, PK and exposure, are fixed; only the tumour stage is
re-run). Residual: root-mean-square of the log ratios, reported overall and per read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument
from .arms import TableCache
from .exposure import scheduler_for
from .trial import HOURS_PER_MONTH, PreparedTrial, evaluate, load_trial, prepare_trial, target_value

CALIBRATION_TRIALS = ("cleopatra_like", "emilia_like", "destiny_breast03_like", "destiny_breast04_like",
                      "bolero2_like")
PARAMETERS = ("growth_rate_per_day", "signal_scale", "payload_scale", "chemo_scale", "resistance_rate_per_week",
              "pretreated_signal_factor", "resistant_fraction")
#: log-normal priors (median, sd of the log): Claret 2009 TGI values (parameters.md anchor 10)
PRIORS = {"growth_rate_per_day": (3 * 0.021 / 7, np.log(2.0)), "resistance_rate_per_week": (0.053, np.log(3.0))}


@dataclass(frozen=True)
class CalibrationResult:
    parameters: dict
    rms_log_residual: float
    residuals: list        # (trial, metric, arm, subgroup, observed, simulated, log ratio)
    evaluations: int
    patients: int
    seed: int
    prior_penalty: float = 0.0


def _knobs(theta: np.ndarray, prep: PreparedTrial) -> dict:
    g, a_sig, a_pay, a_chem, lam, rho, f = np.exp(theta)
    return {"growth_rate": g / 24.0, "signal_scale": a_sig, "payload_scale": a_pay, "chemo_scale": a_chem,
            "resistance_rate": lam / (7 * 24.0), "pretreated_signal_factor": rho, "resistant_fraction": min(f, 0.5)}


def prior_penalty(theta: np.ndarray) -> float:
    """Sum of the squared standardised log deviations from :data:`PRIORS`."""
    out = 0.0
    for name, (med, sd) in PRIORS.items():
        out += ((theta[PARAMETERS.index(name)] - np.log(med)) / sd) ** 2
    return float(out)


def current_values(specs) -> tuple:
    """The shipped values in the order of :data:`PARAMETERS` (the tumour file and the populations)."""
    tp = specs[0].tumour
    f = specs[0].population.continuous["resistant_fraction"][0]
    return (tp.growth_rate * 24, tp.signal_scale, tp.payload_scale, tp.chemo_scale, tp.resistance_rate * 24 * 7,
            tp.pretreated_signal_factor, f)


def residuals(theta, preps) -> list:
    out = []
    for prep in preps:
        res = evaluate(prep, **_knobs(theta, prep))
        for t in prep.spec.targets:
            sim = target_value(res, t)
            if not np.isfinite(sim):
                sim = 1.5 * prep.spec.follow_up_h / HOURS_PER_MONTH if t.metric.startswith("median") else 1e-3
            sim = max(sim, 1e-3)
            out.append((prep.spec.name, t.metric, t.arm, ",".join(f"{k}={v}" for k, v in t.subgroup.items()),
                        t.value, float(sim), float(np.log(sim / t.value))))
    return out


def prepare_calibration(trials=CALIBRATION_TRIALS, *, patients: int = 400, seed: int = 2024, scheduler=None,
                        progress: bool = False, workers: int | None = None) -> list:
    """The prepared calibration trials (cohorts, PK and exposure: common random numbers for every fit).
    Refuses held-out trials before any work. ``scheduler``: where the exposure tables' integrations
    run (``workers``: deprecated alias, > 1 means "processes")."""
    specs = [load_trial(t) for t in trials]
    held = [s.name for s in specs if s.role != "calibration"]
    if held:
        raise InvalidArgument(f"calibrate: {held} are held-out trials; only role = 'calibration' specs may be "
                              "fitted")
    cache = TableCache()
    scheduler = scheduler_for(workers, scheduler)
    return [prepare_trial(s, patients, seed, scheduler=scheduler, progress=progress, cache=cache) for s in specs]


def fit(preps, *, start=None, max_evaluations: int = 250, restarts: int = 2, progress: bool = False) -> CalibrationResult:
    """Nelder-Mead fit of :data:`PARAMETERS` to the read-outs of the prepared trials ``preps`` (see
    :func:`calibrate`)."""
    from scipy.optimize import minimize

    if start is None:
        start = current_values([p.spec for p in preps])
    x = np.log(np.asarray(start, float))
    count = [0]

    def objective(theta):
        count[0] += 1
        r = residuals(theta, preps)
        val = float(sum(v[-1] ** 2 for v in r)) + prior_penalty(theta)
        if progress and count[0] % 20 == 0:
            print(f"  eval {count[0]}: objective {val:.4f} at {np.round(np.exp(theta), 4)}", flush=True)
        return val

    for _ in range(1 + max(int(restarts), 0)):
        simplex = np.vstack([x, x + 0.5 * np.eye(len(x))])
        opt = minimize(objective, x, method="Nelder-Mead",
                       options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-3, "initial_simplex": simplex})
        x = opt.x
    r = residuals(x, preps)
    rms = float(np.sqrt(np.mean([v[-1] ** 2 for v in r])))
    n = preps[0].cohort.n if preps else 0
    seed = preps[0].seed if preps else 0
    return CalibrationResult(dict(zip(PARAMETERS, map(float, np.exp(x)))), rms, r, count[0], n, seed,
                             prior_penalty(x))


def calibrate(trials=CALIBRATION_TRIALS, *, patients: int = 400, seed: int = 2024, start=None,
              max_evaluations: int = 250, restarts: int = 2, scheduler=None,
              progress: bool = False, workers: int | None = None) -> CalibrationResult:
    """Fit the patient-level parameters to the calibration trials' read-outs (see the module docstring).

    ``start``: initial values in the order of :data:`PARAMETERS` (default: the shipped values).
    Nelder-Mead is restarted ``restarts`` times from its last point with a fresh simplex (steps of
    0.5 in log units): the objective is piecewise constant (PFS is read at scan times), and a
    collapsed simplex stalls on its plateaus. ``max_evaluations`` applies to each round.
    Read-outs: every ``observed`` entry of the specs (:data:`~her2sim.trial.trial.METRICS`: median
    PFS, HR, PFS rate, ORR and the CNS read-outs).
    """
    preps = prepare_calibration(trials, patients=patients, seed=seed, scheduler=scheduler, progress=progress,
                                workers=workers)
    return fit(preps, start=start, max_evaluations=max_evaluations, restarts=restarts, progress=progress)


def leave_one_trial_out(trials=CALIBRATION_TRIALS, *, patients: int = 400, seed: int = 2024, start=None,
                        max_evaluations: int = 250, restarts: int = 2, scheduler=None,
                        progress: bool = False, workers: int | None = None) -> dict:
    """Honest predictive error: for every trial k, fit on the other trials and predict trial k.

    Returns ``{trial: {"parameters": fitted without it, "residuals": its read-outs predicted (same
    tuples as :attr:`CalibrationResult.residuals`), "rms_log_residual"}}``. The trials are prepared
    once (common random numbers); every fold is a full :func:`fit`.
    """
    preps = prepare_calibration(trials, patients=patients, seed=seed, scheduler=scheduler, progress=progress,
                                workers=workers)
    if len(preps) < 2:
        raise InvalidArgument("trials: leave_one_trial_out needs at least two calibration trials")
    out = {}
    for k, prep in enumerate(preps):
        res = fit([p for j, p in enumerate(preps) if j != k], start=start, max_evaluations=max_evaluations,
                  restarts=restarts, progress=progress)
        theta = np.log([res.parameters[name] for name in PARAMETERS])
        r = residuals(theta, [prep])
        out[prep.spec.name] = {"parameters": res.parameters, "residuals": r,
                               "rms_log_residual": float(np.sqrt(np.mean([v[-1] ** 2 for v in r]))) if r else np.nan}
    return out


def format_leave_one_out(loo: dict) -> str:
    """Markdown table of :func:`leave_one_trial_out`: every read-out predicted without its trial."""
    lines = ["| trial (left out) | read-out | arm | subgroup | published | predicted | log ratio |", "|---|---|---|---|---|---|---|"]
    for name, d in loo.items():
        for tr, m, arm, sub, obs, sim, lr in d["residuals"]:
            lines.append(f"| {tr} | {m} | {arm} | {sub} | {obs:.3g} | {sim:.3g} | {lr:+.2f} |")
    return "\n".join(lines)


def format_calibration(res: CalibrationResult) -> str:
    lines = [f"calibration: {res.evaluations} evaluations, {res.patients} patients per trial, seed {res.seed}",
             "parameters:"]
    lines += [f"  {k:<34} {v:.5g}" for k, v in res.parameters.items()]
    lines.append(f"RMS log residual {res.rms_log_residual:.3f} (prior penalty {res.prior_penalty:.3f})")
    lines.append("| trial | read-out | arm | subgroup | observed | simulated | log ratio |")
    lines.append("|---|---|---|---|---|---|---|")
    for tr, m, arm, sub, obs, sim, lr in res.residuals:
        lines.append(f"| {tr} | {m} | {arm} | {sub} | {obs:.3g} | {sim:.3g} | {lr:+.2f} |")
    return "\n".join(lines)
