"""Benefit beyond independent drug action (Palmer & Sorger 2017): the combination vs each virtual
patient's best single drug, computed on the same patients."""

import argparse

import numpy as np
import pytest

from her2sim.trial import run_trial
from her2sim.trial.arms import TableCache
from her2sim.trial.cli import add_parser, handle
from her2sim.trial.ida import format_independent_action, independent_action

ARM = "lapatinib + capecitabine"


@pytest.fixture(scope="module")
def runs():
    cache = TableCache()
    res = run_trial("emilia_like", patients=40, seed=3, cache=cache)
    given = independent_action("emilia_like", 40, 3, result=res, cache=cache)
    recomputed = independent_action("emilia_like", 40, 3, cache=cache)
    return res, given, recomputed


def test_only_combination_arms_and_the_trial_own_combination_outcomes(runs):
    res, given, recomputed = runs
    assert set(given) == {ARM}                      # T-DM1 alone is not a combination
    d = given[ARM]
    assert d["n"] == int((res.patients.arm == ARM).sum())
    assert d["median_pfs"] == pytest.approx(res.summary["arms"][ARM]["median_pfs"])
    assert recomputed[ARM]["median_pfs"] == pytest.approx(d["median_pfs"])   # same patients, same draws
    assert recomputed[ARM]["median_pfs_independent"] == pytest.approx(d["median_pfs_independent"])


def test_independent_action_is_each_patient_best_single_drug(runs):
    _res, given, _ = runs
    d = given[ARM]
    assert set(d["monotherapy_median_pfs"]) == {"lapatinib_1250mg_qd", "capecitabine_1250mgm2_bid_14of21"} or \
        len(d["monotherapy_median_pfs"]) == 2
    assert sum(d["best_single"].values()) == pytest.approx(1.0)
    # the per-patient maximum is at least as long as either monotherapy (Kaplan-Meier medians, same censoring)
    assert d["median_pfs_independent"] >= max(d["monotherapy_median_pfs"].values()) - 1e-9
    assert 0.0 <= d["share_longer_than_independent"] <= 1.0
    assert "best single drug" in format_independent_action(given)


def test_cli_reports_independent_action(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["trial", "emilia_like", "--patients", "12", "--seed", "1", "--out", str(tmp_path),
                              "--independent-action"])
    assert handle(args) == 0
    out = capsys.readouterr().out
    assert "benefit beyond independent drug action" in out
    import json

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert ARM in summary["independent_action"]
    assert np.isfinite(summary["independent_action"][ARM]["n"])
