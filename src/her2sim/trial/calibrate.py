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
  every population (models/populations/*.toml);
- ``growth_cv`` (version 5): the between-patient CV of the untreated growth rate, i.e. how far the
  responses of the patients of one arm spread; the response rates (ORR) and the shape of the PFS
  curves (PFS rate vs median) identify it; weak log-normal prior at the assumed 0.8 (sd log 2).

Version 6 (:data:`PARAMETERS_V6`, chosen by giving 9 start values; ``her2sim trial calibrate
--structure 6``): the same objective, the tumour structure of :mod:`her2sim.trial.tumour` version 6
(cell-loss factor fixed at :data:`CELL_LOSS_FACTOR_V6`) and one more knob,
``chemo_resistance_rate_per_week`` (the chemotherapy loss of effect, prior :data:`PRIOR_CHEMO_RESISTANCE`).

Data: the observed read-outs of every trial spec with ``role = "calibration"``
(:func:`calibration_trials` discovers them; a held-out trial is refused before any work).
Objective (version 5, models/calibration.md "Objective v5"): the sum over read-outs of
``weight x term`` plus the log-normal prior terms ``((log x - log x_prior) / sd)^2``, where

- a time or ratio read-out (:data:`READOUT_KINDS` "log": median PFS, hazard ratio, PFS rate,
  median CNS-PFS) has ``term = (log(simulated / observed))^2``; a median not reached is replaced
  by 1.5 x the follow-up;
- a share of patients ("proportion": ORR, CNS ORR, CNS-first progression) has
  ``term = ((p_sim - p_obs) / s)^2`` with ``s = se(p_obs) / LOG_SE_REF``: its binomial standard
  error ``se = sqrt(p(1 - p) / n)`` (:func:`proportion_se`; ``n`` the read-out's published
  denominator, ``n = ...`` in the spec, else :data:`PROPORTION_N_REF`) in units of the sampling
  error of a log-ratio read-out (:data:`LOG_SE_REF`), so that both kinds count one sampling error
  alike and a small arm's share counts less than a large arm's;
- ``weight`` (:func:`verification_weight`) is 1 for a number read in its publication, 1/2 for one
  read in a secondary summary and 1/4 for a recalled (unverified) one: the variance of the number
  is taken as 2x and 4x.

Method: Nelder-Mead on log parameters (scipy), common random numbers (the prepared trials, i.e.
cohorts, PK and exposure, are fixed; only the tumour stage is re-run, arms of one trial in one
call, trials optionally on forked workers: :func:`objective_parts`). The leave-one-trial-out
folds (``leave_one_trial_out``) are in :mod:`her2sim.trial.loto`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import InvalidArgument
from .arms import TableCache
from .exposure import scheduler_for
from .tumour import DailyRates
from .trial import (HOURS_PER_MONTH, PreparedTrial, TrialResult, arm_outcomes, load_trial, merge_outcomes,
                    patient_table, prepare_trial, target_value_columns, tumour_inputs)

#: the five trials of calibration versions 1-4 (version 5 fits every calibration trial: :func:`calibration_trials`)
CALIBRATION_TRIALS = ("cleopatra_like", "emilia_like", "destiny_breast03_like", "destiny_breast04_like",
                      "bolero2_like")
PARAMETERS = ("growth_rate_per_day", "signal_scale", "payload_scale", "chemo_scale", "resistance_rate_per_week",
              "pretreated_signal_factor", "resistant_fraction", "growth_cv")
#: log-normal priors (median, sd of the log): Claret 2009 TGI values (parameters.md anchor 10); growth_cv:
#: the assumed value of the tumour file (0.8), weak
PRIORS = {"growth_rate_per_day": (3 * 0.021 / 7, np.log(2.0)), "resistance_rate_per_week": (0.053, np.log(3.0)),
          "growth_cv": (0.8, np.log(2.0))}
#: the start of every leave-one-trial-out fold (and of ``--start neutral``): the Claret 2009 priors for
#: growth and lambda, the assumed growth CV, and one-significant-digit orders of magnitude for the rest
#: (the same for every fold, so no fold starts from an optimum that saw its left-out trial)
NEUTRAL_START = (0.009, 0.1, 0.01, 0.5, 0.053, 0.5, 0.1, 0.8)
#: version 6 (models/calibration.md "Version 6"): the version-5 knobs plus the loss of the
#: chemotherapy effect, separate from the signalling one, and a fixed cell-loss factor
#: (:func:`~her2sim.trial.tumour.in_vivo_effects`); the structure is chosen by the number of values
PARAMETERS_V6 = PARAMETERS + ("chemo_resistance_rate_per_week",)
NEUTRAL_START_V6 = NEUTRAL_START + (0.053,)
#: cell-loss factor of version 6, not fitted. Assumed: human carcinomas lose most of the cells they
#: make (cell-loss factor 1 - T_pot / T_d, typically 0.7-0.9: Steel GG 1977, Growth Kinetics of
#: Tumours, Clarendon Press; Tubiana M 1989 Acta Oncol 28:113; recalled, not re-read); 0.8 is mid-range
CELL_LOSS_FACTOR_V6 = 0.8
#: the prior of the version-6 chemotherapy loss of effect: Claret et al. 2009's lambda, which was
#: estimated on capecitabine (colorectal cancer), sd log 3 like the signalling one
PRIOR_CHEMO_RESISTANCE = (0.053, np.log(3.0))
#: residual kind of each read-out metric: "log" (log ratio) or "proportion" (difference of shares);
#: a metric of :data:`~her2sim.trial.trial.METRICS` missing here is refused by :func:`check_readouts`
READOUT_KINDS = {"median_pfs": "log", "hazard_ratio": "log", "pfs_rate": "log", "median_cns_pfs": "log",
                 "orr": "proportion", "cns_orr": "proportion", "cns_first_progression": "proportion"}
#: sampling standard error of a log median PFS or log hazard ratio of a typical calibration arm
#: (~150 events per arm: 1/sqrt(150) = 0.08 for a log median, 2/sqrt(300) = 0.12 for a log HR)
LOG_SE_REF = 0.1
#: patients behind the binomial standard error of a share read-out that gives no ``n`` (the
#: calibration arms have 37-406 patients, most 150-400); a read-out with ``n`` uses its own
PROPORTION_N_REF = 200
#: weights of unverified numbers (a variance 2x / 4x that of a number read in its publication)
WEIGHT_SECONDARY, WEIGHT_UNVERIFIED = 0.5, 0.25


class Residual(NamedTuple):
    """One read-out at one parameter set: ``residual`` is the log ratio ("log") or the difference of
    shares ("proportion"); ``term`` = weight x its standardised square (its share of the objective)."""

    trial: str
    metric: str
    arm: str
    subgroup: str
    observed: float
    simulated: float
    residual: float
    kind: str
    weight: float
    term: float


@dataclass(frozen=True)
class CalibrationResult:
    parameters: dict
    rms_log_residual: float          # RMS of the log ratios ("log" read-outs)
    residuals: list                  # Residual per read-out
    evaluations: int
    patients: int
    seed: int
    prior_penalty: float = 0.0
    objective: float = float("nan")
    trials: tuple = ()               # the trials in the objective
    profile: dict = field(default_factory=dict)   # parameter -> [(log step, objective)]
    mean_abs_proportion: float = float("nan")     # mean |p_sim - p_obs| of the "proportion" read-outs
    start: tuple = ()
    settings: dict = field(default_factory=dict)


def calibration_trials() -> tuple:
    """Names of the bundled trial specs with ``role = "calibration"`` (sorted); held-out ones never."""
    from .files import trial_models_dir

    paths = sorted((trial_models_dir() / "trials").glob("*.toml"))
    return tuple(p.stem for p in paths if load_trial(p).role == "calibration")


def verification_weight(source: str) -> float:
    """Weight of a read-out from its ``source`` text: 1/4 if it says recalled or unverified, 1/2 if
    read in a secondary summary, else 1 (read in the publication: the data's ``verified`` rows and
    parameters.md's ``[R]``)."""
    s = source.lower()
    if re.search(r"unverified|recalled", s):
        return WEIGHT_UNVERIFIED
    if "secondary" in s:
        return WEIGHT_SECONDARY
    return 1.0


def check_readouts(specs) -> None:
    """InvalidArgument (one line, before any work) for a read-out metric the objective cannot score."""
    for spec in specs:
        for t in spec.targets:
            if t.metric not in READOUT_KINDS:
                raise InvalidArgument(
                    f"calibrate: trial {spec.name!r} has read-out metric {t.metric!r}, which has no residual kind; "
                    f"add it to her2sim.trial.calibrate.READOUT_KINDS as 'log' (a time or ratio) or 'proportion' "
                    f"(a share of patients); known: {sorted(READOUT_KINDS)}")


def parameter_names(n: int) -> tuple:
    """:data:`PARAMETERS` (version 5) for 8 values, :data:`PARAMETERS_V6` for 9."""
    for names in (PARAMETERS, PARAMETERS_V6):
        if n == len(names):
            return names
    raise InvalidArgument(f"start: give {len(PARAMETERS)} values (version 5: {PARAMETERS}) or {len(PARAMETERS_V6)} "
                          f"(version 6: {PARAMETERS_V6}), got {n}")


def _knobs(theta: np.ndarray) -> dict:
    g, a_sig, a_pay, a_chem, lam, rho, f, cv = np.exp(theta[:8])
    out = {"growth_rate": g / 24.0, "signal_scale": a_sig, "payload_scale": a_pay, "chemo_scale": a_chem,
           "resistance_rate": lam / (7 * 24.0), "pretreated_signal_factor": rho, "resistant_fraction": min(f, 0.5),
           "growth_cv": cv}
    if len(theta) == len(PARAMETERS_V6):
        out["chemo_resistance_rate"] = float(np.exp(theta[8])) / (7 * 24.0)
        out["cell_loss_factor"] = CELL_LOSS_FACTOR_V6
    return out


def knobs(parameters: dict) -> dict:
    """:func:`~her2sim.trial.trial.tumour_inputs` overrides (internal units) from a parameter dict
    keyed by :data:`PARAMETERS` (user units: per day, per week)."""
    names = PARAMETERS_V6 if PARAMETERS_V6[-1] in parameters else PARAMETERS
    return _knobs(np.log([parameters[name] for name in names]))


def prior_penalty(theta: np.ndarray) -> float:
    """Sum of the squared standardised log deviations from :data:`PRIORS`."""
    names = parameter_names(len(theta))
    priors = dict(PRIORS, chemo_resistance_rate_per_week=PRIOR_CHEMO_RESISTANCE)
    out = 0.0
    for name, (med, sd) in priors.items():
        if name in names:
            out += ((theta[names.index(name)] - np.log(med)) / sd) ** 2
    return float(out)


def current_values(specs, version: int = 5) -> tuple:
    """The shipped values in the order of :data:`PARAMETERS` (version 6: :data:`PARAMETERS_V6`, the
    chemotherapy loss of effect equal to the signalling one where the tumour file has none)."""
    tp = specs[0].tumour
    f = specs[0].population.continuous["resistant_fraction"][0]
    out = (tp.growth_rate * 24, tp.signal_scale, tp.payload_scale, tp.chemo_scale, tp.resistance_rate * 24 * 7,
           tp.pretreated_signal_factor, f, tp.growth_cv)
    if version == 6:
        lam_c = getattr(tp, "chemo_resistance_rate", None)
        out += ((tp.resistance_rate if lam_c is None else lam_c) * 24 * 7,)
    return out


# ----------------------------------------------------------------------------- the tumour stage, all arms at once
@dataclass(frozen=True)
class CalibrationTrial:
    """A prepared trial with its arms' daily rates concatenated (cohort rows in arm order), so that
    one :func:`~her2sim.trial.trial.arm_outcomes` call grows every patient of the trial (each
    patient's outcome depends only on that patient's inputs: the same outcomes as
    :func:`~her2sim.trial.trial.evaluate`, in half the calls)."""

    prep: PreparedTrial
    rows: np.ndarray
    rates: DailyRates

    @property
    def spec(self):
        return self.prep.spec


def stack_arms(prep: PreparedTrial) -> CalibrationTrial:
    """:class:`CalibrationTrial` of ``prep`` (the rates are copied once, at preparation)."""
    rows = [np.flatnonzero(prep.arm_index == a) for a in range(len(prep.spec.arms))]
    rs = prep.rates

    def cross(r, clone):
        x = getattr(r, "x" + clone)
        return getattr(r, "d" + clone)[..., 0] if x is None else x

    any_x = any(r.xS is not None for r in rs)
    rates = DailyRates(np.concatenate([r.dS for r in rs]), np.concatenate([r.dR for r in rs]),
                       np.concatenate([r.byst for r in rs]),
                       np.concatenate([cross(r, "S") for r in rs]) if any_x else None,
                       np.concatenate([cross(r, "R") for r in rs]) if any_x else None,
                       np.concatenate([r.base for r in rs]) if all(getattr(r, "base", None) is not None for r in rs)
                       else None)
    return CalibrationTrial(prep, np.concatenate(rows), rates)


def _stacked_outcomes(ct: CalibrationTrial, overrides: dict) -> tuple:
    """(tumour inputs, per-patient outcomes) of every arm of ``ct`` at the knobs ``overrides``."""
    prep, spec = ct.prep, ct.spec
    inputs = tumour_inputs(spec, prep.cohort, prep.z_growth, prep.z_resistant, prep.split, **overrides)
    o = arm_outcomes(spec, ct.rates, inputs, ct.rows, prep.cohort["brain_mets"][ct.rows], prep.dropout_u[ct.rows])
    return inputs, merge_outcomes([(ct.rows, o)], prep.cohort.n)


def evaluate_stacked(ct: CalibrationTrial, **overrides) -> TrialResult:
    """The trial's per-patient outcomes at the knobs ``overrides`` (:func:`tumour_inputs`), without
    the summary statistics (``summary`` empty): what :func:`~her2sim.trial.trial.target_value` reads."""
    prep = ct.prep
    inputs, outcomes = _stacked_outcomes(ct, overrides)
    df = patient_table(ct.spec, prep.cohort, prep.arm_index, inputs, outcomes)
    return TrialResult(ct.spec, df, {}, {}, {}, dict(prep.timings))


def proportion_se(p_obs: float, n: int | None = None) -> float:
    """Binomial standard error of an observed share ``p_obs`` (clipped to 0.02-0.98) of ``n``
    patients (None: :data:`PROPORTION_N_REF`)."""
    p = min(max(float(p_obs), 0.02), 0.98)
    return float(np.sqrt(p * (1 - p) / (PROPORTION_N_REF if n is None else n)))


def stacked_columns(ct: CalibrationTrial, **overrides) -> dict:
    """The patient table of :func:`evaluate_stacked` as ``{column: (N,) array}`` (cohort features,
    arm, outcomes), without building a DataFrame: what
    :func:`~her2sim.trial.trial.target_value_columns` reads."""
    prep = ct.prep
    _inputs, outcomes = _stacked_outcomes(ct, overrides)
    cols = {k: np.asarray(v) for k, v in prep.cohort.features.items()}
    cols["arm"] = np.array([a.name for a in ct.spec.arms], dtype=object)[prep.arm_index]
    cols.update(outcomes)
    return cols


def score(spec, target, sim: float) -> Residual:
    """:class:`Residual` of one read-out ``target`` of ``spec`` at its ``sim`` value (what the
    objective scores; used to check a run against a fit record)."""
    kind = READOUT_KINDS[target.metric]
    w = verification_weight(target.source)
    sub = ",".join(f"{k}={v}" for k, v in target.subgroup.items())
    if kind == "log":
        if not np.isfinite(sim):
            sim = 1.5 * spec.follow_up_h / HOURS_PER_MONTH if target.metric.startswith("median") else 1e-3
        sim = max(sim, 1e-3)
        r = float(np.log(sim / target.value))
        term = w * r * r
    else:
        sim = 0.0 if not np.isfinite(sim) else sim   # no patient to score counts as no response
        s = proportion_se(target.value, getattr(target, "n", None)) / LOG_SE_REF
        r = float(sim - target.value)
        term = w * (r / s) ** 2
    return Residual(spec.name, target.metric, target.arm, sub, float(target.value), float(sim), r, kind, w,
                    float(term))


def trial_residuals(ct, theta) -> list:
    """:class:`Residual` of every read-out of one trial (a :class:`CalibrationTrial` or a
    :class:`~her2sim.trial.trial.PreparedTrial`) at log parameters ``theta``."""
    if isinstance(ct, PreparedTrial):
        ct = stack_arms(ct)
    cols = stacked_columns(ct, **_knobs(np.asarray(theta, float)))
    return [score(ct.spec, t, target_value_columns(ct.spec, cols, t)) for t in ct.spec.targets]


def _trial_task(shared, item):
    k, theta = item
    return k, trial_residuals(shared[k], theta)


def residuals(theta, trials, *, workers: int = 1) -> list:
    """:class:`Residual` of every read-out of ``trials`` (prepared or stacked), in trial order;
    ``workers`` > 1 runs the trials on forked processes (:func:`her2sim.executors.fork_map`; the
    same numbers, in the same order)."""
    cts = [t if isinstance(t, CalibrationTrial) else stack_arms(t) for t in trials]
    if workers > 1 and len(cts) > 1:
        from ..executors import fork_map

        parts = dict(fork_map(_trial_task, cts, [(k, np.asarray(theta, float)) for k in range(len(cts))], workers))
    else:
        parts = dict(_trial_task(cts, (k, theta)) for k in range(len(cts)))
    return [r for k in range(len(cts)) for r in parts[k]]


def objective_value(rs: list, theta) -> float:
    """Weighted sum of the residual terms plus the prior penalty."""
    return float(sum(r.term for r in rs)) + prior_penalty(np.asarray(theta, float))


def prepare_calibration(trials=None, *, patients: int = 300, seed: int = 2024, scheduler=None,
                        progress: bool = False, workers: int | None = None) -> list:
    """The prepared calibration trials (cohorts, PK and exposure: common random numbers for every fit);
    ``trials`` default :func:`calibration_trials`. Refuses held-out trials and read-outs the objective
    cannot score before any work. ``scheduler``: where the exposure tables' integrations run
    (``workers``: deprecated alias, > 1 means "processes")."""
    trials = calibration_trials() if trials is None else tuple(trials)
    if not trials:
        raise InvalidArgument("trials: give at least one calibration trial (e.g. emilia_like)")
    specs = [load_trial(t) for t in trials]
    held = [s.name for s in specs if s.role != "calibration"]
    if held:
        raise InvalidArgument(f"calibrate: {held} are held-out trials; only role = 'calibration' specs may be "
                              "fitted")
    check_readouts(specs)
    cache = TableCache()
    scheduler = scheduler_for(workers, scheduler)
    return [prepare_trial(s, patients, seed, scheduler=scheduler, progress=progress, cache=cache) for s in specs]


def profile(x, trials, steps=(-0.5, -0.2, 0.2, 0.5), *, workers: int = 1) -> dict:
    """Identifiability check: the objective along each log parameter at ``x`` + ``steps``, the others
    fixed; ``{parameter: [(step, objective)]}`` (a flat profile: the read-outs do not pin it)."""
    out = {}
    for i, name in enumerate(parameter_names(len(x))):
        row = []
        for h in steps:
            y = np.array(x, float)
            y[i] += h
            row.append((float(h), objective_value(residuals(y, trials, workers=workers), y)))
        out[name] = row
    return out


def summarise_fit(x, trials, evaluations: int, *, start=(), settings=None, do_profile: bool = False,
                  workers: int = 1) -> CalibrationResult:
    """:class:`CalibrationResult` at log parameters ``x`` on the prepared ``trials``."""
    cts = [t if isinstance(t, CalibrationTrial) else stack_arms(t) for t in trials]
    r = residuals(x, cts, workers=workers)
    logs = [v.residual for v in r if v.kind == "log"]
    props = [abs(v.residual) for v in r if v.kind == "proportion"]
    prep0 = cts[0].prep if cts else None
    return CalibrationResult(
        dict(zip(parameter_names(len(x)), map(float, np.exp(x)))), float(np.sqrt(np.mean(np.square(logs)))) if logs else np.nan,
        r, int(evaluations), prep0.cohort.n if prep0 else 0, prep0.seed if prep0 else 0, prior_penalty(x),
        objective_value(r, x), tuple(ct.spec.name for ct in cts),
        profile(x, cts, workers=workers) if do_profile else {}, float(np.mean(props)) if props else np.nan,
        tuple(map(float, start)), dict(settings or {}))


def fit(preps, *, start=None, max_evaluations: int = 250, restarts: int = 2, progress: bool = False,
        workers: int = 1, do_profile: bool = False) -> CalibrationResult:
    """Nelder-Mead fit of :data:`PARAMETERS` to the read-outs of the prepared trials ``preps`` (see
    :func:`calibrate`); ``workers`` > 1: the trials of each evaluation on forked processes."""
    from scipy.optimize import minimize

    cts = [p if isinstance(p, CalibrationTrial) else stack_arms(p) for p in preps]
    if start is None:
        start = current_values([c.spec for c in cts])
    names = parameter_names(len(start))
    if not all(np.isfinite(v) and v > 0 for v in start):
        raise InvalidArgument(f"start: give {len(names)} positive values in the order {names}, got {tuple(start)}")
    x = np.log(np.asarray(start, float))
    count = [0]

    def objective(theta):
        count[0] += 1
        val = objective_value(residuals(theta, cts, workers=workers), theta)
        if progress and count[0] % 20 == 0:
            print(f"  eval {count[0]}: objective {val:.4f} at {np.round(np.exp(theta), 4)}", flush=True)
        return val

    for _ in range(1 + max(int(restarts), 0)):
        simplex = np.vstack([x, x + 0.5 * np.eye(len(x))])
        opt = minimize(objective, x, method="Nelder-Mead",
                       options={"maxfev": max_evaluations, "xatol": 1e-3, "fatol": 1e-3, "initial_simplex": simplex})
        x = opt.x
    settings = {"max_evaluations": int(max_evaluations), "restarts": int(restarts)}
    return summarise_fit(x, cts, count[0], start=start, settings=settings, do_profile=do_profile, workers=workers)


def calibrate(trials=None, *, patients: int = 300, seed: int = 2024, start=None,
              max_evaluations: int = 250, restarts: int = 2, scheduler=None,
              progress: bool = False, workers: int | None = None, fit_workers: int = 1,
              do_profile: bool = False) -> CalibrationResult:
    """Fit the patient-level parameters to the calibration trials' read-outs (see the module docstring).

    ``trials``: default every calibration trial (:func:`calibration_trials`). ``start``: initial
    values in the order of :data:`PARAMETERS` (default: the shipped values). Nelder-Mead is
    restarted ``restarts`` times from its last point with a fresh simplex (steps of 0.5 in log
    units): the objective is piecewise constant (PFS is read at scan times), and a collapsed
    simplex stalls on its plateaus. ``max_evaluations`` applies to each round. ``fit_workers``:
    forked processes for the tumour stage; ``do_profile``: add :func:`profile` to the result.
    """
    preps = prepare_calibration(trials, patients=patients, seed=seed, scheduler=scheduler, progress=progress,
                                workers=workers)
    return fit(preps, start=start, max_evaluations=max_evaluations, restarts=restarts, progress=progress,
               workers=fit_workers, do_profile=do_profile)


def format_residuals(rs) -> list:
    """Markdown rows of :class:`Residual` (log ratio, or difference in points for shares)."""
    lines = ["| trial | read-out | arm | subgroup | observed | simulated | log ratio / difference | weight |",
             "|---|---|---|---|---|---|---|---|"]
    for v in rs:
        d = f"{v.residual:+.2f}" if v.kind == "log" else f"{100 * v.residual:+.0f} points"
        lines.append(f"| {v.trial} | {v.metric} | {v.arm} | {v.subgroup} | {v.observed:.3g} | {v.simulated:.3g} | "
                     f"{d} | {v.weight:g} |")
    return lines


def format_calibration(res: CalibrationResult) -> str:
    lines = [f"calibration: {len(res.trials)} trials, {len(res.residuals)} read-outs, {res.evaluations} evaluations, "
             f"{res.patients} patients per trial, seed {res.seed}", "parameters:"]
    lines += [f"  {k:<34} {v:.5g}" for k, v in res.parameters.items()]
    shares = (f"; mean |difference| of the response/CNS shares {100 * res.mean_abs_proportion:.0f} points"
              if np.isfinite(res.mean_abs_proportion) else "")
    lines.append(f"objective {res.objective:.4f} (read-out terms {res.objective - res.prior_penalty:.4f}, prior "
                 f"penalty {res.prior_penalty:.4f}); RMS log residual {res.rms_log_residual:.3f}{shares}")
    lines += format_residuals(res.residuals)
    if res.profile:
        steps = [h for h, _ in next(iter(res.profile.values()))]
        lines.append("identifiability: objective along each log parameter (others fixed) at log steps "
                     + ", ".join(f"{h:+g}" for h in steps) + f" (optimum {res.objective:.3f}); SE: sqrt(2 / curvature) "
                     "from the +-0.2 points, in log units")
        for name, row in res.profile.items():
            v = dict(row)
            note = ""
            if min(v.values()) < res.objective - 1e-9:
                note = "   lower than the optimum: not a minimum along this axis"
            elif min(v.get(-0.2, np.inf), v.get(0.2, np.inf)) - res.objective < 0.05:
                note = "   FLAT (rise < 0.05 at +-0.2)"
            curv = (v.get(-0.2, np.nan) + v.get(0.2, np.nan) - 2 * res.objective) / 0.04
            se = f"SE {np.sqrt(2 / curv):.2f}" if curv > 0 else "SE -"
            lines.append(f"  {name:<28} " + "  ".join(f"{x:8.3f}" for _, x in row) + f"   {se}{note}")
    return "\n".join(lines)


def result_dict(res: CalibrationResult) -> dict:
    """JSON-ready record of a fit (parameters, residual per read-out, prior penalty, evaluations, profile)."""
    d = dict(res.__dict__)
    d["residuals"] = [r._asdict() for r in res.residuals]
    d["trials"] = list(res.trials)
    d["start"] = list(res.start)
    d["profile"] = {k: [list(p) for p in v] for k, v in res.profile.items()}
    return d


def result_from_dict(d: dict) -> CalibrationResult:
    """Inverse of :func:`result_dict` (a fit.json read back)."""
    d = dict(d)
    d.pop("wall_s", None)
    d["residuals"] = [Residual(**r) for r in d["residuals"]]
    d["trials"], d["start"] = tuple(d["trials"]), tuple(d["start"])
    d["profile"] = {k: [tuple(p) for p in v] for k, v in d["profile"].items()}
    return CalibrationResult(**d)


def seed_spread(parameters: dict, trials=None, *, seeds=(2024, 2025, 2026), patients: int = 300,
                progress: bool = False) -> dict:
    """Monte-Carlo error of every read-out at ``parameters``: its simulated value on cohorts of
    ``patients`` drawn with each seed; ``{"trial|metric|arm|subgroup": {"values", "sd"}}`` (the
    seed-to-seed SD of the residual: log ratio or difference of shares)."""
    theta = np.log([parameters[p] for p in (PARAMETERS_V6 if PARAMETERS_V6[-1] in parameters else PARAMETERS)])
    runs = []
    for s in seeds:
        preps = prepare_calibration(trials, patients=patients, seed=s, progress=progress)
        runs.append(residuals(theta, preps))
    out = {}
    for rows in zip(*runs):
        key = "|".join((rows[0].trial, rows[0].metric, rows[0].arm, rows[0].subgroup))
        vals = [r.residual for r in rows]
        out[key] = {"kind": rows[0].kind, "simulated": [r.simulated for r in rows], "residuals": vals,
                    "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")}
    return out
