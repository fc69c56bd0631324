"""Calibration trials reproduce their data within the residuals stated for the shipped calibration;
read-out arm sizes (``n`` on ``[[trial.observed]]``) and the binomial SE of share read-outs.

The stated residuals are read from the shipped calibration's record,
``models/calibration/shipped/fit.json`` (written by ``her2sim.trial.calibrate.summarise_fit`` through
``prepare_calibration``: the calibration's own path), never copied into this file; ``her2sim trial``
(``run_trial``: the scale-out path, patient blocks) at the record's patients and seed must reproduce
every read-out of the trials the record covers within its stated residual.
"""

import importlib
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from her2sim.errors import ModelFileError
from her2sim.trial import load_trial, run_trial
from her2sim.trial.arms import TableCache
from her2sim.trial.files import trial_models_dir
from her2sim.trial.trial import Target, target_value

cal = importlib.import_module("her2sim.trial.calibrate")   # the package exports a function of the same name

RECORD = trial_models_dir() / "calibration" / "shipped" / "fit.json"
#: margins on top of a stated residual: round-off of a log ratio (as the EMILIA test this replaces
#: allowed) and of a share (6 of 300 patients)
LOG_MARGIN, SHARE_MARGIN = 0.05, 0.02
#: the record's trial run on the fast path; the others are `slow` (about 8 s each on a quiet core)
FAST_TRIAL = "emilia_like"


def _record():
    return cal.result_from_dict(json.loads(RECORD.read_text()))


def _key(trial, metric, arm, subgroup):
    return (trial, metric, arm, subgroup)


def _target_key(spec, t):
    return _key(spec.name, t.metric, t.arm, ",".join(f"{k}={v}" for k, v in t.subgroup.items()))


@pytest.fixture(scope="module")
def tables():
    return TableCache()   # arms shared between trials (T-DM1 in EMILIA and DESTINY-Breast03) build once


def _reproduce(name, tables):
    rec = _record()
    assert name in rec.trials
    res = run_trial(name, patients=rec.patients, seed=rec.seed, cache=tables)
    spec = res.spec
    assert spec.role == "calibration"
    # the record's parameters are the shipped ones (tumour file and populations): a new calibration
    # must ship its record with its values
    assert rec.parameters == pytest.approx(dict(zip(cal.PARAMETERS, cal.current_values([spec]))), rel=1e-9)
    # every read-out of the trial has a stated residual, at the value the spec holds now
    stated = {_key(r.trial, r.metric, r.arm, r.subgroup): r for r in rec.residuals if r.trial == name}
    assert set(stated) == {_target_key(spec, t) for t in spec.targets}
    for t in spec.targets:
        s = stated[_target_key(spec, t)]
        assert s.observed == pytest.approx(t.value, rel=1e-9), (t.metric, t.arm)
        r = cal.score(spec, t, target_value(res, t))
        margin = LOG_MARGIN if r.kind == "log" else SHARE_MARGIN
        assert abs(r.residual) <= abs(s.residual) + margin, (t.metric, t.arm, t.subgroup, r.simulated, s)


def test_fast_trial_reproduces_its_read_outs_within_the_stated_residual(tables):
    _reproduce(FAST_TRIAL, tables)


@pytest.mark.slow
@pytest.mark.parametrize("name", [t for t in json.loads(RECORD.read_text())["trials"] if t != FAST_TRIAL])
def test_calibration_trial_reproduces_its_read_outs_within_the_stated_residual(name, tables):
    _reproduce(name, tables)


# ----------------------------------------------------------------------------- arm sizes of the read-outs
def test_a_small_arms_share_counts_less_than_a_large_arms():
    spec = SimpleNamespace(name="x_like", follow_up_h=24 * 730.5)
    small = cal.score(spec, Target("orr", "A", 0.4, n=45, source="verified"), 0.5)
    large = cal.score(spec, Target("orr", "A", 0.4, n=397, source="verified"), 0.5)
    ref = cal.score(spec, Target("orr", "A", 0.4, source="verified"), 0.5)
    assert small.residual == large.residual == pytest.approx(0.1)
    assert small.term < ref.term < large.term
    # binomial SE: the term scales with n (0.1 / (sqrt(0.24 / n) / LOG_SE_REF))^2
    assert large.term / small.term == pytest.approx(397 / 45)
    assert ref.term == pytest.approx((0.1 / (np.sqrt(0.24 / cal.PROPORTION_N_REF) / cal.LOG_SE_REF)) ** 2)


def test_specs_carry_the_published_denominators():
    emilia = {(t.metric, t.arm, tuple(t.subgroup.items())): t.n for t in load_trial("emilia_like").targets}
    assert emilia[("orr", "T-DM1", ())] == 397                      # 173/397 with measurable disease
    assert emilia[("cns_first_progression", "T-DM1", (("brain_mets", "True"),))] == 45


@pytest.mark.parametrize("bad", ["0", "-3", "39.5", "true", '"397"'])
def test_bad_read_out_size_is_refused_in_one_line(tmp_path, bad):
    text = Path(load_trial("emilia_like").path).read_text()
    assert "\nn = 397\n" in text
    path = tmp_path / "emilia_bad_n.toml"
    path.write_text(text.replace("\nn = 397\n", f"\nn = {bad}\n"))
    with pytest.raises(ModelFileError) as exc:
        load_trial(path)
    msg = str(exc.value)
    assert "\n" not in msg and "n must be" in msg and "trial.observed[" in msg, msg
