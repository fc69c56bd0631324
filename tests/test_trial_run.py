"""End-to-end virtual trials: determinism, CLI handler, table checks (calibration reproduction:
test_trial_reproduce.py)."""

import argparse
import json

import numpy as np
import pytest

from her2sim.trial import load_trial, run_trial
from her2sim.trial.arms import TableCache
from her2sim.trial.cli import add_parser, handle


@pytest.fixture(scope="module")
def db03_tables():
    """Exposure-response tables of destiny_breast03_like, built once for the tests below (they are
    content-keyed and independent of the seed; the first run of the determinism test builds its own)."""
    return TableCache()


def test_same_seed_same_trial_and_different_seed_differs(db03_tables):
    a = run_trial("destiny_breast03_like", patients=40, seed=5)                    # its own tables
    b = run_trial("destiny_breast03_like", patients=40, seed=5, cache=db03_tables)
    c = run_trial("destiny_breast03_like", patients=40, seed=6, cache=db03_tables)
    assert a.patients.equals(b.patients)
    assert not a.patients.pfs_months.equals(c.patients.pfs_months)
    assert set(a.patients.arm) == {"T-DXd", "T-DM1"}


def test_different_seeds_give_statistically_consistent_trials(db03_tables):
    """Two seeds (different cohorts, randomisation, PK variability): each arm's median PFS lies in the
    other run's 95% CI, and the log hazard ratios differ by less than 3 standard errors."""
    a = run_trial("destiny_breast03_like", patients=160, seed=11, cache=db03_tables)
    b = run_trial("destiny_breast03_like", patients=160, seed=12, cache=db03_tables)
    assert not a.patients.pfs_months.equals(b.patients.pfs_months)
    for arm in ("T-DXd", "T-DM1"):
        ma, mb = a.summary["arms"][arm], b.summary["arms"][arm]
        for med, (lo, hi) in ((ma["median_pfs"], mb["median_pfs_ci"]), (mb["median_pfs"], ma["median_pfs_ci"])):
            if np.isfinite(med):
                assert lo <= med and (not np.isfinite(hi) or med <= hi), (arm, med, lo, hi)
    ca, cb = a.summary["comparisons"]["T-DXd"], b.summary["comparisons"]["T-DXd"]

    def se(c):
        return (np.log(c["ci"][1]) - np.log(c["ci"][0])) / (2 * 1.96)

    assert abs(np.log(ca["hazard_ratio"] / cb["hazard_ratio"])) < 3 * np.hypot(se(ca), se(cb))


# The calibration-trial reproduction test (EMILIA against the version-4 residuals) moved to
# tests/test_trial_reproduce.py, which reads the stated residuals from the shipped fit record.


def test_cli_handler_writes_outputs(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["trial", "destiny_breast03_like", "--patients", "40", "--seed", "1",
                              "--out", str(tmp_path)])
    assert args.handler is handle
    assert handle(args) == 0
    for name in ("patients.csv", "summary.json", "summary.txt", "trial.png"):
        assert (tmp_path / name).exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["arms"]) == {"T-DXd", "T-DM1"}
    assert "HR T-DXd vs T-DM1" in capsys.readouterr().out


def test_cli_block_and_scheduler_options_do_not_change_results(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    runs = {}
    for label, extra in (("default", []), ("blocks", ["--block", "9", "--scheduler", "local"])):
        out = tmp_path / label
        assert handle(parser.parse_args(["trial", "emilia_like", "--patients", "30", "--seed", "2", "--out", str(out),
                                         *extra])) == 0
        runs[label] = (out / "patients.csv").read_text()
    assert runs["default"] == runs["blocks"]
    assert handle(parser.parse_args(["trial", "emilia_like", "--block", "0"])) == 2
    assert "--block must be >= 1" in capsys.readouterr().err


def test_held_out_specs_have_no_outcomes():
    held_out = ("her2climb_like", "nala_like", "sophia_like", "bolero1_like", "bolero3_like", "monarcher_like",
                "patina_like", "panacea_like", "kate2_like", "destiny_breast01_like")
    for name in held_out:
        spec = load_trial(name)
        assert spec.role == "held_out" and spec.targets == ()


def test_calibrate_refuses_held_out_trials():
    from her2sim.trial.calibrate import calibrate

    with pytest.raises(ValueError, match="held-out"):
        calibrate(("emilia_like", "her2climb_like"), patients=10)


SMALL_SPEC = """
[trial]
name = "small"
description = "two-arm test trial with one signalling background"
source = "test fixture"
role = "held_out"
population = "her2_low_mbc"
follow_up = "12 month"
assessment_interval = "6 week"
subgroups = ["cd16a"]
[trial.eligibility.hr_positive]
value = 0.0
source = "test"
[trial.eligibility.pik3ca]
value = 0.0
source = "test"
[trial.eligibility.pten_loss]
value = 0.0
source = "test"
[[trial.arm]]
name = "T-DXd"
regimens = ["tdxd_5.4mgkg_q3w"]
[[trial.arm]]
name = "capecitabine"
regimens = ["capecitabine_1250mgm2_bid_14of21"]
control = true
"""


@pytest.mark.slow
def test_run_trial_task_in_another_process_equals_the_local_run(tmp_path):
    """The scale-out hook: a task dict run in a fresh (spawned) worker gives the local summary exactly."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from her2sim.trial import run_trial_task

    spec = tmp_path / "small.toml"
    spec.write_text(SMALL_SPEC)
    task = {"spec": str(spec), "patients": 30, "seed": 4}
    local = run_trial_task(task)
    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        remote = pool.submit(run_trial_task, task).result()
    dump = lambda r: json.dumps(r["summary"], default=float, sort_keys=True)  # noqa: E731
    assert dump(remote) == dump(local)


def test_drop_outs_are_censored_at_their_last_scan():
    """A patient who drops out (at -ln(u) / dropout_hazard) is censored at the last scan before it:
    his outcome is the no-drop-out outcome censored there (an event only if progression was seen by
    then). Untreated lesions (all drug effects 0) grow and progress at spread-out times; drop-out
    times are set across the follow-up so that many fall before a progression."""
    from her2sim.trial.trial import HOURS_PER_MONTH, arm_outcomes, assessment_times_h, sample_trial, tumour_inputs
    from her2sim.trial.tumour import DailyRates

    spec = load_trial("destiny_breast03_like")
    s = sample_trial(spec, 60, 5)
    n, days = s.cohort.n, int(spec.follow_up_h // 24) + 1
    inputs = tumour_inputs(spec, s.cohort, s.z_growth, s.z_resistant, s.split)
    untreated = DailyRates(np.zeros((n, days, 2, 3), np.float32), np.zeros((n, days, 2, 3), np.float32),
                           np.zeros((n, days, 2), np.float32))

    def outcome(u):
        o = arm_outcomes(spec, untreated, inputs, np.arange(n), s.cohort["brain_mets"], np.asarray(u, float))
        return o["pfs_months"] * HOURS_PER_MONTH, o["progressed"]

    hazard, scans = spec.tumour.dropout_hazard, assessment_times_h(spec)
    pfs_full, event_full = outcome(np.full(n, 1e-300))     # t_drop ~ 1e8 h: nobody drops out
    t_drop = np.linspace(0.0, 1.2 * scans[-1], n)
    pfs, event = outcome(np.exp(-hazard * t_drop))
    last = scans[np.searchsorted(scans, t_drop, side="right") - 1]
    expected = event_full & (pfs_full <= last)
    np.testing.assert_array_equal(event, expected)
    np.testing.assert_allclose(pfs, np.where(expected, pfs_full, last), rtol=1e-12)
    assert (event_full & ~expected).sum() >= 5           # progressions the drop-outs hide
    # the trial's own draws: nobody's PFS runs past his last scan before drop-out
    pfs, _ = outcome(s.dropout_u)
    assert (pfs <= scans[np.searchsorted(scans, -np.log(s.dropout_u) / hazard, side="right") - 1] + 1e-6).all()
    # everyone leaves before the first scan after baseline: no event, PFS 0
    pfs, event = outcome(np.ones(n))
    assert not event.any() and (pfs == 0).all()
