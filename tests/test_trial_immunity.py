"""Checkpoint inhibitors act through a T-cell kill channel that depends on PD-L1 status and TILs
(her2sim.trial.immunity), separately from the network's NK-cell ADCC.

Paired design: the same virtual patients (same seed) on pembrolizumab + trastuzumab, with the
T-cell channel on (shipped ``tcell_kill_rate``) and off (rate 0); the NK/ADCC part of pembrolizumab
is in the exposure tables and identical in both.
"""

from dataclasses import replace

import numpy as np
import pytest

from her2sim.trial.arms import model_drugs
from her2sim.trial.immunity import TIL_REFERENCE, is_checkpoint_arm, load_tils, sample_tils, tcell_kill
from her2sim.trial.population import load_population, sample_population
from her2sim.trial.trial import evaluate, load_trial, prepare_trial

SPEC = """
[trial]
name = "tcell_channel_test"
description = "pembrolizumab + trastuzumab, half the patients PD-L1-positive"
source = "test fixture"
role = "held_out"
population = "her2_mbc_pretreated"
follow_up = "12 month"
assessment_interval = "6 week"
subgroups = ["pdl1_positive"]

[trial.eligibility.pdl1_positive]
value = 0.5
source = "test"
[trial.eligibility.hr_positive]
value = 0.0
source = "test: one signalling background keeps the exposure tables small"
[trial.eligibility.pik3ca]
value = 0.0
source = "test"
[trial.eligibility.pten_loss]
value = 0.0
source = "test"
[trial.eligibility.brain_mets]
value = 0.0
source = "test"

[[trial.arm]]
name = "pembrolizumab + trastuzumab"
regimens = ["pembrolizumab_200mg_q3w", "trastuzumab_8_6mgkg_q3w"]
"""
PATIENTS, SEED = 40, 11


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    path = tmp_path_factory.mktemp("immunity") / "tcell.toml"
    path.write_text(SPEC)
    return prepare_trial(path, PATIENTS, SEED)


@pytest.fixture(scope="module")
def paired(prepared):
    """(T-cell channel on, off) on the same patients."""
    on = evaluate(prepared)
    off_spec = replace(prepared.spec, tumour=replace(prepared.spec.tumour, tcell_kill_rate=0.0))
    off = evaluate(replace(prepared, spec=off_spec))
    return on.patients, off.patients


def test_checkpoint_drugs_are_recognised_by_their_targets():
    kate2 = load_trial("kate2_like")
    assert [a.checkpoint for a in kate2.arms] == [True, False]
    assert not any(a.checkpoint for a in load_trial("emilia_like").arms)
    drugs = model_drugs("default")
    assert is_checkpoint_arm(kate2.arms[0].regimens, drugs) and not is_checkpoint_arm(kate2.arms[1].regimens, drugs)


def test_kill_rate_follows_pdl1_and_tils():
    k = tcell_kill(np.array([True, True, False]), np.array([10.0, 30.0, 50.0]), 1e-3)
    np.testing.assert_allclose(k, [1e-3, 3e-3, 0.0])
    assert TIL_REFERENCE == 10.0


def test_pdl1_negative_patients_get_no_t_cell_benefit(paired):
    on, off = paired
    neg = ~on.pdl1_positive.values.astype(bool)
    assert neg.sum() >= 5
    np.testing.assert_array_equal(on.pfs_months.values[neg], off.pfs_months.values[neg])
    np.testing.assert_array_equal(on.best_change_pct.values[neg], off.best_change_pct.values[neg])


def test_pdl1_positive_high_til_patients_benefit_more(paired):
    """PD-L1-positive lesions shrink more with the channel on, never less, and the patients with more
    TILs gain more (best change of the sum of diameters, percentage points). PFS improves on average,
    not in every patient: a lesion driven below the detection limit and regrowing counts as
    progression against the deeper nadir (RECIST 1.1)."""
    on, off = paired
    pos = on.pdl1_positive.values.astype(bool)
    assert pos.sum() >= 5
    gain = off.best_change_pct.values[pos] - on.best_change_pct.values[pos]
    assert np.all(gain >= -1e-9) and np.mean(gain) > 0
    assert np.mean(on.pfs_months.values[pos]) > np.mean(off.pfs_months.values[pos])
    tils = on.tils.values[pos]
    high = tils >= np.median(tils)
    assert np.mean(gain[high]) > np.mean(gain[~high])


def test_no_t_cell_kill_without_a_checkpoint_inhibitor(prepared):
    """The same patients on an arm flagged as having no checkpoint inhibitor: the T-cell rate has no effect."""
    spec = prepared.spec
    no_cp = replace(spec, arms=tuple(replace(a, checkpoint=False) for a in spec.arms))
    a = evaluate(replace(prepared, spec=no_cp)).patients
    b = evaluate(replace(prepared, spec=replace(no_cp, tumour=replace(spec.tumour, tcell_kill_rate=0.0)))).patients
    np.testing.assert_array_equal(a.pfs_months.values, b.pfs_months.values)
    np.testing.assert_array_equal(a.best_change_pct.values, b.best_change_pct.values)


def test_tils_are_sampled_from_the_population_without_changing_other_draws():
    pop = load_population("her2_mbc_pretreated")
    assert pop.tils == (10.0, 1.86)
    c = sample_population(pop, 4000, 7)
    assert np.median(c["tils"]) == pytest.approx(10.0, rel=0.1)
    assert c["tils"].max() <= 100.0
    none = sample_population(replace(pop, tils=None), 4000, 7)
    assert np.all(none["tils"] == 0)
    for k in ("hr_positive", "baseline_sld", "occult_brain", "brain_threshold"):
        np.testing.assert_array_equal(c[k], none[k])
    np.testing.assert_array_equal(sample_tils((10.0, 0.0), 3, np.random.default_rng(0)), [10.0] * 3)


def test_bad_tils_table_is_refused():
    from her2sim.errors import ModelFileError

    with pytest.raises(ModelFileError, match="tils"):
        load_tils({"tils": {"median": 150, "cv": 1.0, "source": "s"}})
    with pytest.raises(ModelFileError):
        load_tils({"tils": {"median": 10, "cv": 1.0}})
