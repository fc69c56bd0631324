"""Benefit beyond independent drug action (Palmer & Sorger 2017 Cell 171:1678).

Under independent drug action a patient given a combination gets the benefit of the single drug
that works best for that patient, and nothing more; many approved combinations in oncology are
explained by it, across patients, without any drug interaction. A model can compute that
counterfactual exactly, on the same virtual patients: for every combination arm (two or more
regimens), each regimen is also given alone to the arm's patients (same cohort, same individual PK
parameters, same tumour parameters and drop-out times), and a patient's independent-action PFS is
the longest of his monotherapy PFS times (progression or censoring as in that monotherapy). The
combination's Kaplan-Meier median is then compared with the independent-action median: a
difference means the model predicts an interaction (additivity or synergy within patients), not
just the pooling of patients who respond to different drugs.
"""

from __future__ import annotations

import numpy as np

from .arms import TableCache, exposure, plan_arm
from .exposure import scheduler_for
from .survival import kaplan_meier, median_survival
from .trial import Arm, TrialResult, TrialSpec, arm_outcomes, load_trial, sample_trial, tumour_inputs


def independent_action(spec: TrialSpec | str, patients: int, seed: int, *, result: TrialResult | None = None,
                       cache: TableCache | None = None, scheduler=None, workers: int | None = None,
                       **overrides) -> dict:
    """Per combination arm: combination vs independent-action PFS on the same virtual patients.

    ``patients`` and ``seed`` are those of the trial (the cohort and every random draw are
    re-created from them); ``result`` (that trial's :class:`TrialResult`) supplies the combination
    outcomes instead of recomputing them; ``overrides`` are the calibration knobs of
    :func:`~her2sim.trial.trial.tumour_inputs`. Returns ``{arm: {"median_pfs", "median_pfs_independent",
    "monotherapy_median_pfs": {regimen: months}, "best_single": {regimen: share of patients},
    "share_longer_than_independent": share of patients whose combination PFS exceeds their best
    single drug's, "n"}}``; arms with a single regimen are left out.
    """
    if not isinstance(spec, TrialSpec):
        spec = load_trial(spec)
    scheduler = scheduler_for(workers, scheduler)
    cache = TableCache() if cache is None else cache
    s = sample_trial(spec, int(patients), seed)
    inputs = tumour_inputs(spec, s.cohort, s.z_growth, s.z_resistant, s.split, **overrides)
    out = {}
    for a, arm in enumerate(spec.arms):
        if len(arm.regimens) < 2:
            continue
        rows = np.flatnonzero(s.arm_index == a)
        sub = s.cohort.subset(rows)
        plan = plan_arm(arm, sub, tumour=spec.tumour, scheduler=scheduler, population=spec.population, cache=cache,
                        model=spec.model)
        pk = plan.sample_pk(len(rows), np.random.default_rng([seed, a]))  # the trial's own PK draws
        if result is not None:
            df = result.patients.iloc[rows]
            combo_t, combo_e = df.pfs_months.values.astype(float), df.progressed.values.astype(bool)
        else:
            o = arm_outcomes(spec, exposure(plan, sub, pk, spec.follow_up_h), inputs, rows, sub["brain_mets"],
                             s.dropout_u[rows], arm=arm)
            combo_t, combo_e = o["pfs_months"], o["progressed"]
        mono_t, mono_e, mono_med = [], [], {}
        for j, reg in enumerate(arm.regimens):
            mono = Arm(f"{reg.name} alone", (reg,), True)
            mplan = plan_arm(mono, sub, tumour=spec.tumour, scheduler=scheduler, population=spec.population,
                             cache=cache, model=spec.model)
            o = arm_outcomes(spec, exposure(mplan, sub, [pk[j]], spec.follow_up_h), inputs, rows, sub["brain_mets"],
                             s.dropout_u[rows], arm=mono)
            mono_t.append(o["pfs_months"])
            mono_e.append(o["progressed"])
            mono_med[reg.name] = median_survival(kaplan_meier(o["pfs_months"], o["progressed"]))[0]
        T, E = np.array(mono_t), np.array(mono_e)
        best = np.argmax(T, axis=0)
        idx = np.arange(len(rows))
        ida_t, ida_e = T[best, idx], E[best, idx]
        names = [r.name for r in arm.regimens]
        out[arm.name] = {
            "n": int(len(rows)),
            "median_pfs": median_survival(kaplan_meier(combo_t, combo_e))[0],
            "median_pfs_independent": median_survival(kaplan_meier(ida_t, ida_e))[0],
            "monotherapy_median_pfs": mono_med,
            "best_single": {n: float(np.mean(best == j)) for j, n in enumerate(names)},
            "share_longer_than_independent": float(np.mean(combo_t > ida_t + 1e-9)),
        }
    return out


def format_independent_action(ida: dict) -> str:
    """Text table of :func:`independent_action`'s result."""
    if not ida:
        return "benefit beyond independent drug action: no combination arm"
    lines = ["benefit beyond independent drug action (Palmer & Sorger 2017; same virtual patients):"]
    for arm, d in ida.items():
        gain = d["median_pfs"] - d["median_pfs_independent"]
        lines.append(f"  {arm}: median PFS {d['median_pfs']:.1f} mo vs {d['median_pfs_independent']:.1f} mo from each "
                     f"patient's best single drug ({gain:+.1f} mo); combination longer in "
                     f"{d['share_longer_than_independent']:.0%} of {d['n']} patients")
        for reg, med in d["monotherapy_median_pfs"].items():
            lines.append(f"    {reg:<40} alone: median PFS {med:5.1f} mo, best single drug for "
                         f"{d['best_single'][reg]:.0%}")
    return "\n".join(lines)


def calibration_independent_action(parameters: dict, trials, *, patients: int = 300, seed: int = 2024,
                                   scheduler=None) -> dict:
    """:func:`independent_action` for every combination arm of the calibration ``trials`` at fitted
    ``parameters`` (keyed by :data:`her2sim.trial.calibrate.PARAMETERS`; the fit's cohorts:
    ``patients`` per trial, ``seed``); ``{trial: {arm: ...}}``, trials without a combination arm
    left out. Refuses held-out trials before any work."""
    from ..errors import InvalidArgument
    from .calibrate import knobs

    specs = [load_trial(t) for t in trials]
    held = [s.name for s in specs if s.role != "calibration"]
    if held:
        raise InvalidArgument(f"trials: {held} are held-out trials; the calibration report runs calibration trials only")
    kn = knobs(parameters)
    cache = TableCache()
    out = {}
    for spec in specs:
        if any(len(a.regimens) > 1 for a in spec.arms):
            out[spec.name] = independent_action(spec, patients, seed, cache=cache, scheduler=scheduler, **kn)
    return out


def format_calibration_independent_action(ida: dict) -> str:
    """Markdown table of :func:`calibration_independent_action` (months; benefit = combination
    median minus the median of each patient's best single regimen)."""
    lines = ["| trial | combination arm | median PFS | independent action | benefit beyond IDA | longer than best "
             "single | monotherapy medians |", "|---|---|---|---|---|---|---|"]
    for trial, arms in ida.items():
        for arm, d in arms.items():
            mono = "; ".join(f"{r} {m:.1f}" for r, m in d["monotherapy_median_pfs"].items())
            lines.append(f"| {trial} | {arm} | {d['median_pfs']:.1f} | {d['median_pfs_independent']:.1f} | "
                         f"{d['median_pfs'] - d['median_pfs_independent']:+.1f} | "
                         f"{d['share_longer_than_independent']:.0%} | {mono} |")
    return "\n".join(lines)
