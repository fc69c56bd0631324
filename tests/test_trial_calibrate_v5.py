"""Calibration version 5: every calibration trial and read-out kind in the objective, unknown metrics
refused, leave-one-trial-out folds that exclude their trial and resume from their files."""

import argparse
import importlib
import json
from types import SimpleNamespace

import numpy as np
import pytest

from her2sim.errors import InvalidArgument
from her2sim.trial import loto
from her2sim.trial.cli import add_parser, handle
from her2sim.trial.trial import METRICS, Target, load_trial
from her2sim.trial.files import trial_models_dir

cal = importlib.import_module("her2sim.trial.calibrate")   # the package exports a function of the same name


def _all_specs():
    return [load_trial(p) for p in sorted((trial_models_dir() / "trials").glob("*.toml"))]


def test_every_calibration_spec_and_no_held_out_one_is_discovered():
    specs = _all_specs()
    found = cal.calibration_trials()
    assert set(found) == {s.name for s in specs if s.role == "calibration"}
    assert not set(found) & {s.name for s in specs if s.role == "held_out"}
    assert set(cal.CALIBRATION_TRIALS) < set(found)          # version 5 fits more than the five of v1-v4


def test_objective_scores_orr_and_every_calibration_trial(monkeypatch):
    """Every read-out of every calibration trial is one term; ORR terms follow the declared formula."""
    specs = [load_trial(t) for t in cal.calibration_trials()]
    sims = {"log": 1.1, "proportion": 0.35}
    # the objective reads the patient columns (stacked_columns, target_value_columns: no DataFrame since
    # the trialcal speed-up); the simulated read-outs are replaced at that point
    monkeypatch.setattr(cal, "stacked_columns", lambda ct, **kw: None)
    monkeypatch.setattr(cal, "target_value_columns", lambda spec, cols, t: sims[cal.READOUT_KINDS[t.metric]] *
                        (t.value if cal.READOUT_KINDS[t.metric] == "log" else 1.0))
    cts = [cal.CalibrationTrial(SimpleNamespace(spec=s), np.arange(0), None) for s in specs]
    theta = np.log(cal.NEUTRAL_START)
    rs = cal.residuals(theta, cts)
    assert {r.trial for r in rs} == {s.name for s in specs}
    assert len(rs) == sum(len(s.targets) for s in specs)
    orr = [(r, t) for r, t in zip(rs, [t for s in specs for t in s.targets]) if r.metric == "orr"]
    assert orr and all(r.kind == "proportion" and r.arm == t.arm for r, t in orr)
    for r, t in orr:
        # the binomial SE uses the read-out's published n where the spec gives one (objective change of
        # 2026-11-28, models/calibration.md "Objective change: arm sizes"), else the reference size
        p = min(max(r.observed, 0.02), 0.98)
        s = np.sqrt(p * (1 - p) / (t.n or cal.PROPORTION_N_REF)) / cal.LOG_SE_REF
        assert r.term == pytest.approx(r.weight * ((0.35 - r.observed) / s) ** 2)
    logs = [r for r in rs if r.kind == "log"]
    assert all(r.residual == pytest.approx(np.log(1.1)) for r in logs)
    assert cal.objective_value(rs, theta) == pytest.approx(sum(r.term for r in rs) + cal.prior_penalty(theta))


def test_verification_weights_follow_the_source_text():
    assert cal.verification_weight("Sledge 2017 (clinical_calibration.csv, verified)") == 1.0
    assert cal.verification_weight("parameters.md 3 [R]: DB-03 PFS HR 0.28") == 1.0
    assert cal.verification_weight("Perez 2017 (clinical_calibration.csv, secondary)") == cal.WEIGHT_SECONDARY
    assert cal.verification_weight("(clinical_calibration.csv, UNVERIFIED: recalled)") == cal.WEIGHT_UNVERIFIED


def test_every_metric_has_a_residual_kind_and_an_unknown_one_is_refused():
    assert set(METRICS) <= set(cal.READOUT_KINDS)
    spec = SimpleNamespace(name="x_like", targets=(Target("tumour_volume", "A", 1.0),))
    with pytest.raises(InvalidArgument, match="'tumour_volume'.*READOUT_KINDS"):
        cal.check_readouts([spec])


def test_cli_calibrate_refuses_held_out_trials_and_bad_options_before_work(capsys):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    for argv, msg in ((["--trials", "emilia_like,her2climb_like"], "held-out"),
                      (["--leave-one-out"], "needs --out"),
                      (["--max-evaluations", "0"], "--max-evaluations")):
        assert handle(parser.parse_args(["trial", "calibrate", *argv])) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and msg in err, err
    assert handle(parser.parse_args(["trial", "emilia_like", "--leave-one-out"])) == 2
    assert "calibration option" in capsys.readouterr().err


def _fake_folds(monkeypatch, calls):
    """loto.run_folds with its heavy stages replaced: records the trials each fit sees."""
    monkeypatch.setattr(loto, "prepare_calibration", lambda trials, **kw: [SimpleNamespace(name=t) for t in trials])
    monkeypatch.setattr(loto, "stack_arms", lambda p: SimpleNamespace(spec=p))

    def fake_fit(train, **kw):
        names = tuple(t.spec.name for t in train)
        calls.append(names)
        return SimpleNamespace(trials=names, parameters=dict(zip(cal.PARAMETERS, cal.NEUTRAL_START)),
                               objective=1.0, evaluations=3)

    monkeypatch.setattr(loto, "fit", fake_fit)
    monkeypatch.setattr(loto, "trial_residuals", lambda ct, theta: [
        cal.Residual(ct.spec.name, "orr", "A", "", 0.3, 0.2, -0.1, "proportion", 1.0, 0.5)])


def test_loto_fold_excludes_its_trial_and_resumes_from_its_file(tmp_path, monkeypatch):
    calls = []
    _fake_folds(monkeypatch, calls)
    trials = ("a_like", "b_like", "c_like")
    folds = loto.run_folds(trials, out=tmp_path, only=("a_like", "c_like"), patients=10, seed=1)
    assert set(folds) == {"a_like", "c_like"}
    for name, d in folds.items():
        assert d["fitted_on"] == [t for t in trials if t != name]      # the objective never sees trial k
        assert {r.trial for r in d["residuals"]} == {name}
        assert loto.fold_path(tmp_path, name).exists()
    assert calls == [("b_like", "c_like"), ("a_like", "b_like")]
    assert json.loads(loto.fold_path(tmp_path, "a_like").read_text())["settings"]["start"] == list(cal.NEUTRAL_START)
    # re-run: the two finished folds are read back, only b is fitted
    again = loto.run_folds(trials, out=tmp_path, patients=10, seed=1)
    assert calls[2:] == [("a_like", "c_like")]
    assert again["a_like"]["residuals"] == folds["a_like"]["residuals"]
    assert "3 of 3 folds" in loto.format_loto(again)
    # folds written with other settings are refused, not mixed in
    with pytest.raises(InvalidArgument, match="other settings"):
        loto.run_folds(trials, out=tmp_path, patients=20, seed=1)
