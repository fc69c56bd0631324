"""Brain lesions: the blood-brain barrier (Kp,uu) and the antibody binding-site barrier make
antibody-only anti-HER2 therapy control brain metastases worse than a tucatinib-containing regimen.

Mechanism (parameters.md 2.9): free brain concentration = free plasma x Kp,uu; antibodies 0.005
(Stemmler 2007), tucatinib 0.6 (TBCRC049). At ~1-3 nM free in a brain lesion, HER2 antibodies reach
only a few per cent of the cells (``her2sim.trial.trial.reached_fraction``), while tucatinib, a
small molecule, reaches all of them at ~60% of its body concentration.
"""

from pathlib import Path

import numpy as np
import pytest

from her2sim.trial import arms as arms_module
from her2sim.trial import pk as pk_module
from her2sim.trial.trial import prepare_trial
from her2sim.trial.tumour import grow

SPEC = """
[trial]
name = "brain_mechanism_test"
description = "One anti-HER2 regimen, every patient with a brain metastasis"
source = "test fixture"
role = "held_out"
population = "her2_mbc_pretreated"
follow_up = "12 month"
assessment_interval = "6 week"
subgroups = ["cd16a"]

[trial.eligibility.brain_mets]
value = 1.0
source = "test: every patient has a measurable brain lesion"
[trial.eligibility.hr_positive]
value = 0.0
source = "test: one signalling background keeps the exposure tables small"
[trial.eligibility.pik3ca]
value = 0.0
source = "test"
[trial.eligibility.pten_loss]
value = 0.0
source = "test"

[[trial.arm]]
name = "{name}"
regimens = {regimens}
"""
#: single-arm specs with the same seed: the same virtual patients receive each regimen (paired)
REGIMENS = {"antibodies": ["trastuzumab_8_6mgkg_q3w", "pertuzumab_840_420mg_q3w"],
            "tucatinib": ["tucatinib_300mg_bid", "trastuzumab_8_6mgkg_q3w"]}
PATIENTS, SEED, WEEKS = 40, 3, 12


def _spec(tmp_path_factory, name) -> Path:
    import json

    path = tmp_path_factory.mktemp("brain") / f"{name}.toml"
    path.write_text(SPEC.format(name=name, regimens=json.dumps(REGIMENS[name])))
    return path


@pytest.fixture(scope="module")
def specs(tmp_path_factory) -> dict:
    return {name: _spec(tmp_path_factory, name) for name in REGIMENS}


@pytest.fixture(scope="module")
def prepared(specs) -> dict:
    return {name: prepare_trial(path, PATIENTS, SEED) for name, path in specs.items()}


def _in_vivo_signal(prep, site: int) -> np.ndarray:
    """(patients,) mean in-vivo signalling effect (1/day, negative = growth inhibition) of the
    sensitive clone over the first WEEKS weeks, with the shipped tumour parameters."""
    tp = prep.spec.tumour
    scale = tp.signal_scale * (tp.pretreated_signal_factor if prep.spec.population.pretreated else 1.0)
    return 24.0 * scale * prep.rates[0].dS[:, : 7 * WEEKS, site, 0].astype(float).mean(axis=1)


def _brain_growth(prep, months: float = 6.0) -> np.ndarray:
    """(patients,) log diameter change of the brain lesion after ``months`` (shipped parameters)."""
    tp, coh = prep.spec.tumour, prep.cohort
    assert coh["brain_mets"].all()
    g = tp.growth_rate * np.exp(np.sqrt(np.log1p(tp.growth_cv ** 2)) * prep.z_growth)
    f = np.full(coh.n, 0.05)
    d0 = np.full((coh.n, 1), tp.brain_lesion_diameter)
    scales = list(tp.scales)
    if prep.spec.population.pretreated:
        scales[0] *= tp.pretreated_signal_factor
    diam, _ = grow(prep.rates[0], tp, g, f, d0, np.array([1]), scales=scales)
    return np.log(diam[:, int(round(months * 30.44)), 0] / d0[:, 0])


def test_antibodies_barely_act_on_brain_lesions(prepared):
    """Antibody-only: the brain effect is a small fraction of the body effect (Kp,uu 0.005 + antigen sink)."""
    prep = prepared["antibodies"]
    body, brain = _in_vivo_signal(prep, 0), _in_vivo_signal(prep, 1)
    assert np.all(body < 0)
    assert np.mean(brain) / np.mean(body) < 0.25


@pytest.mark.xfail(strict=True, reason=(
    "known gap of the version-4 calibration on the version-2 network: tucatinib + trastuzumab inhibits "
    "brain-lesion growth 1.17x as much as the antibodies (needs >= 1.25x); the signalling "
    "scale fell 0.21 -> 0.17 in the recalibration (models/calibration.md)"))
def test_tucatinib_regimen_controls_brain_lesions_better_than_antibodies(prepared):
    """Quantitative, same patients: tucatinib + trastuzumab inhibits brain-lesion growth >= 25% more than
    trastuzumab + pertuzumab; over 6 months the brain lesion grows less in >= 90% of the patients and the
    median growth (log diameter) is >= 15% smaller (the margin is smaller than the effect because
    untreated growth, the same in both, dominates once the drug effect has waned, D(t))."""
    ab, tuc = _in_vivo_signal(prepared["antibodies"], 1), _in_vivo_signal(prepared["tucatinib"], 1)
    assert np.mean(tuc) <= 1.25 * np.mean(ab)          # both negative: tucatinib at least 25% stronger
    growth_ab, growth_tuc = _brain_growth(prepared["antibodies"]), _brain_growth(prepared["tucatinib"])
    assert np.mean(growth_tuc < growth_ab) >= 0.9       # paired: nearly every patient does better
    assert np.median(growth_tuc) <= 0.85 * np.median(growth_ab)


@pytest.fixture(scope="module")
def low_kpuu(specs):
    """The tucatinib regimen prepared with an antibody-like Kp,uu (0.005) for tucatinib (same patients)."""
    real_load = pk_module.load_pk

    def load(name):
        pk = real_load(name)
        if pk.name == "tucatinib":
            from dataclasses import replace

            pk = replace(pk, values={**pk.values, "kp_uu_brain": 0.005})
        return pk

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(arms_module, "load_pk", load)   # stage 2 (and its load_pk) lives in trial.arms
        return prepare_trial(specs["tucatinib"], PATIENTS, SEED)


def test_the_brain_advantage_comes_from_tucatinib_kp_uu(prepared, low_kpuu):
    """Counterfactual: with an antibody-like Kp,uu (0.005) for tucatinib, the regimen's brain effect
    falls by at least a third while its body effect is unchanged."""
    low = low_kpuu
    ref = prepared["tucatinib"]
    assert np.mean(_in_vivo_signal(low, 0)) == pytest.approx(np.mean(_in_vivo_signal(ref, 0)), rel=1e-6)
    assert np.mean(_in_vivo_signal(low, 1)) >= 2 / 3 * np.mean(_in_vivo_signal(ref, 1))


def test_cns_progression_is_its_own_event():
    """RANO-BM-like CNS progression: >= 20% over the nadir of a measured brain lesion, or a new brain
    lesion; censored like PFS; independent of what happens outside the brain."""
    from her2sim.trial.trial import CNS_PROGRESSION_INCREASE, cns_progression

    assess = np.array([0.0, 1000.0, 2000.0, 3000.0, 4000.0])
    d = np.array([[12.0, 10.0, 8.0, 9.0, 9.7],      # nadir 8; 9.7 >= 1.2 x 8 = 9.6 at scan 4
                  [12.0, 10.0, 8.0, 9.0, 9.5],      # 9.5 < 9.6: no CNS progression
                  [np.nan, 1.0, 2.0, 6.0, 8.0],     # occult lesion, called new at scan 3
                  [12.0, 20.0, 30.0, 40.0, 50.0]])  # grows at once, but the patient dropped out at 500 h
    target = np.array([True, True, False, True])
    new = np.zeros((4, 5), dtype=bool)
    new[2, 3:] = True
    cens = np.array([4000.0, 4000.0, 4000.0, 500.0])
    t, e = cns_progression(d, target, new, assess, cens)
    assert CNS_PROGRESSION_INCREASE == 0.20
    np.testing.assert_array_equal(e, [True, False, True, False])
    np.testing.assert_array_equal(t, [4000.0, 4000.0, 3000.0, 500.0])


# ----------------------------------------------------------------------------- issue 15: new brain lesions, CNS response
def _speed(prep, **overrides) -> np.ndarray:
    """(patients, days) relative speed of brain micrometastases (her2sim.trial.brain) with the shipped parameters."""
    from her2sim.trial.brain import micromet_speed
    from her2sim.trial.trial import tumour_inputs

    tp = prep.spec.tumour
    inp = tumour_inputs(prep.spec, prep.cohort, prep.z_growth, prep.z_resistant, prep.split, **overrides)
    return micromet_speed(prep.rates[0], inp.g, inp.f, tp.growth_rate, scales=inp.scales,
                          resistance_rate=tp.resistance_rate, pretreated_signal_factor=inp.pretreated_factor)


def test_brain_penetration_lowers_the_new_lesion_hazard(prepared, low_kpuu):
    """Same patients, same regimen: tucatinib at its Kp,uu (0.6) slows brain micrometastases (the new-lesion
    hazard) in every patient compared with an antibody-like Kp,uu (0.005); without any drug in the
    brain the speed is the untreated growth relative to the median (>= 0: the hazard never goes negative)."""
    real, low = _speed(prepared["tucatinib"]), _speed(low_kpuu)
    assert np.all(real >= 0) and np.all(low >= 0)
    cum_real, cum_low = real[:, :180].sum(axis=1), low[:, :180].sum(axis=1)   # first 6 months
    assert np.all(cum_real <= cum_low + 1e-12)
    assert np.mean(cum_real) < 0.98 * np.mean(cum_low)


def test_new_brain_lesions_occur_and_are_cns_progression(prepared):
    """Patients with brain disease develop new brain lesions at a rate of the order of the sourced hazard
    (untreated: ln 2 / 13.7 months); a new lesion is RECIST progression and CNS progression at the
    first scan after it appears."""
    from her2sim.trial.trial import evaluate

    res = evaluate(prepared["antibodies"])
    df = res.patients
    t_new = df.new_brain_lesion_months.values
    seen = np.isfinite(t_new)
    h = res.spec.tumour.new_brain_lesion_hazard * 730.5
    p_untreated = 1 - np.exp(-h * 12.0)          # 12-month follow-up
    assert 0.3 * p_untreated <= seen.mean() <= 1.0
    # the CNS event is never later than the scan that follows the new lesion
    follow = res.spec.assessment_h / 730.5
    ev = seen & (t_new + follow <= df.cns_pfs_months.max())
    assert np.all(df.cns_pfs_months.values[ev] <= t_new[ev] + follow + 1e-9)


def test_cns_first_progression_without_brain_metastases_at_entry(tmp_path):
    """CEREBEL-like entry (no brain metastases, here every patient with occult brain disease): CNS-first
    progression happens, only through new brain lesions, and is the read-out ``target_value`` scores."""
    from her2sim.trial.trial import Target, evaluate, target_value

    path = tmp_path / "cns_first.toml"
    text = SPEC.format(name="antibodies", regimens='["trastuzumab_8_6mgkg_q3w", "pertuzumab_840_420mg_q3w"]')
    text = text.replace("[trial.eligibility.brain_mets]\nvalue = 1.0",
                        "[trial.eligibility.occult_brain]\nvalue = 1.0\nsource = \"test\"\n"
                        "[trial.eligibility.brain_mets]\nvalue = 0.0")
    path.write_text(text)
    res = evaluate(prepare_trial(path, PATIENTS, SEED))
    df = res.patients
    assert not df.brain_mets.any() and df.occult_brain.all()
    share = target_value(res, Target("cns_first_progression", "antibodies", 0.05))
    assert 0 < share < 1
    assert share == res.summary["arms"]["antibodies"]["cns_first_progression"]
    assert np.all(np.isfinite(df.new_brain_lesion_months.values[df.cns_progressed.values]))


def test_volumetric_cns_response_criterion():
    """LANDSCAPE / TBCRC 022: >= 50% volumetric reduction = 1 - 0.5^(1/3) = 20.6% in diameter (a looser
    rule than RANO-BM's 30%); a malformed criterion is refused with one line."""
    from her2sim.errors import ModelFileError
    from her2sim.trial.brain import RANO_BM_DECREASE, cns_response_decrease
    from her2sim.trial.trial import load_trial

    assert cns_response_decrease({"volume_decrease": 0.5, "source": "s"}) == pytest.approx(0.2063, abs=1e-4)
    assert cns_response_decrease(None) == RANO_BM_DECREASE == 0.30
    assert load_trial("landscape_like").cns_response_decrease == pytest.approx(0.2063, abs=1e-4)
    assert load_trial("cerebel_like").cns_response_decrease == 0.30
    for bad in ({"volume_decrease": 1.5, "source": "s"}, {"volume_decrease": 0.5}, {"diameter_decrease": 0.3,
                                                                                   "volume_decrease": 0.5,
                                                                                   "source": "s"}):
        with pytest.raises(ModelFileError):
            cns_response_decrease(bad)


def test_cns_response_needs_brain_exposure(prepared, low_kpuu):
    """With in-vivo effects strong enough for responses (signal scale 0.5 instead of the calibrated value),
    brain lesions respond (CNS ORR > 0) and respond more often, and deeper, with tucatinib at its Kp,uu
    than with an antibody-like Kp,uu, on the same patients."""
    from her2sim.trial.trial import cns_response_rate, evaluate

    real = evaluate(prepared["tucatinib"], signal_scale=0.5).patients
    low = evaluate(low_kpuu, signal_scale=0.5).patients
    orr_real, orr_low = cns_response_rate(real, 0.30), cns_response_rate(low, 0.30)
    assert orr_real > 0
    assert orr_real >= orr_low
    # NaN: CNS progression at the first scan (no earlier measurement), the worst outcome
    worst = {"cns_best_change_pct": np.inf}
    assert np.median(real.fillna(worst).cns_best_change_pct) < np.median(low.fillna(worst).cns_best_change_pct)


def test_new_brain_lesions_are_the_same_in_any_patient_block(specs, prepared):
    """Determinism: the same seed gives the same new brain lesions and CNS events in process and in
    blocks of 7 patients (each patient's hazard threshold is drawn with the cohort, not per block)."""
    import pandas as pd

    from her2sim.trial import run_trial
    from her2sim.trial.trial import evaluate

    ref = evaluate(prepared["antibodies"]).patients
    blk = run_trial(specs["antibodies"], PATIENTS, SEED, block=7).patients
    assert np.isfinite(ref.new_brain_lesion_months).any()
    cols = ["new_brain_lesion_months", "cns_pfs_months", "cns_progressed", "pfs_months", "brain_threshold", "tils"]
    pd.testing.assert_frame_equal(ref[cols], blk[cols], check_exact=True)
