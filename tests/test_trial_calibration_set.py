"""Calibration machinery of version 2: CNS and response read-outs, leave-one-trial-out (tiny cohorts)."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from her2sim.trial.calibrate import (NEUTRAL_START, current_values, evaluate_stacked, fit, knobs, prepare_calibration,
                                     stack_arms, stacked_columns)
from her2sim.trial.loto import format_leave_one_out, leave_one_trial_out   # moved from calibrate in version 5
from her2sim.trial.trial import METRICS, Target, evaluate, target_value, target_value_columns


def _result():
    df = pd.DataFrame({
        "arm": ["A"] * 6,
        "brain_mets": [True, True, True, True, False, False],
        "cns_best_change_pct": [-50.0, -30.0, -29.0, 10.0, np.nan, np.nan],
        "cns_pfs_months": [9.0, 3.0, 6.0, 2.0, 4.0, 12.0],
        "cns_progressed": [True, True, False, True, True, False],
        "pfs_months": [5.0, 4.0, 6.0, 2.0, 3.0, 12.0],
        "progressed": [True, True, True, False, True, False],
        "best_response": ["PR", "PR", "SD", "PD", "PD", "SD"],
    })
    return SimpleNamespace(patients=df, spec=SimpleNamespace(control=SimpleNamespace(name="A")))


def test_cns_read_outs():
    res = _result()
    assert {"orr", "cns_orr", "cns_first_progression", "median_cns_pfs"} <= set(METRICS)
    # RANO-BM partial response: >= 30% shrinkage, among the 4 patients with brain metastases
    assert target_value(res, Target("cns_orr", "A", 0.5)) == pytest.approx(2 / 4)
    # first progression in the brain: patients 1 (3 <= 4), 3 (no body PD) and 4 (4 > 3: body first -> no);
    # patient 0 progressed in the body at 5 before the brain at 9
    assert target_value(res, Target("cns_first_progression", "A", 0.3)) == pytest.approx(2 / 6)
    assert target_value(res, Target("orr", "A", 0.3)) == pytest.approx(2 / 6)
    assert np.isfinite(target_value(res, Target("median_cns_pfs", "A", 5.0)))


@pytest.mark.slow
def test_leave_one_trial_out_fits_without_the_trial_it_predicts():
    trials = ("emilia_like", "destiny_breast03_like")
    kw = {"patients": 24, "seed": 5, "max_evaluations": 20, "restarts": 0}   # > 8 simplex points: the fits move
    loo = leave_one_trial_out(trials, **kw)
    assert set(loo) == set(trials)
    for name, d in loo.items():
        assert d["residuals"] and {r[0] for r in d["residuals"]} == {name}   # predicts only the left-out trial
    # the parameters used for EMILIA come from a fit on DESTINY-Breast03 alone (and vice versa), from the
    # folds' common NEUTRAL_START (version 5: the shipped values were fitted with every trial, so starting
    # there would leak the left-out trial into its fold)
    preps = prepare_calibration(trials, patients=24, seed=5)
    alone = fit([preps[1]], max_evaluations=20, restarts=0, start=NEUTRAL_START)
    start = fit([preps[1]], max_evaluations=1, restarts=0, start=NEUTRAL_START).parameters
    assert alone.parameters != pytest.approx(start, rel=1e-6)            # the fit moved from the start
    assert loo["emilia_like"]["parameters"] == pytest.approx(alone.parameters, rel=1e-12)
    both = fit(preps, max_evaluations=20, restarts=0)
    assert both.parameters != pytest.approx(alone.parameters, rel=1e-6)
    assert "emilia_like" in format_leave_one_out(loo)
    # the calibration's tumour stage (all arms of a trial in one call) gives evaluate()'s patients exactly
    kn = knobs(dict(zip(alone.parameters, current_values([preps[0].spec]))))
    assert evaluate_stacked(stack_arms(preps[0]), **kn).patients.equals(evaluate(preps[0], **kn).patients)
    # the objective reads the patient columns without a DataFrame (stacked_columns, target_value_columns):
    # the same numbers as target_value on evaluate_stacked's table, for every read-out kind
    ct = stack_arms(preps[0])
    res, cols = evaluate_stacked(ct, **kn), stacked_columns(ct, **kn)
    arm = ct.spec.arms[0].name
    targets = list(ct.spec.targets) + [Target(m, arm, 0.5) for m in ("orr", "cns_orr", "median_cns_pfs",
                                                                     "cns_first_progression")]
    targets.append(Target("median_pfs", arm, 5.0, subgroup={"brain_mets": True}))
    for t in targets:
        a, b = target_value(res, t), target_value_columns(ct.spec, cols, t)
        assert (np.isnan(a) and np.isnan(b)) or a == b, (t, a, b)


def test_leave_one_trial_out_refuses_held_out_trials():
    with pytest.raises(ValueError, match="held-out"):
        leave_one_trial_out(("emilia_like", "her2climb_like"), patients=4)
