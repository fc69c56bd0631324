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


def test_the_brain_advantage_comes_from_tucatinib_kp_uu(specs, prepared, monkeypatch):
    """Counterfactual: with an antibody-like Kp,uu (0.005) for tucatinib, the regimen's brain effect
    falls by at least a third while its body effect is unchanged."""
    real_load = pk_module.load_pk

    def low_kpuu(name):
        pk = real_load(name)
        if pk.name == "tucatinib":
            from dataclasses import replace

            pk = replace(pk, values={**pk.values, "kp_uu_brain": 0.005})
        return pk

    monkeypatch.setattr(arms_module, "load_pk", low_kpuu)   # stage 2 (and its load_pk) lives in trial.arms
    low = prepare_trial(specs["tucatinib"], PATIENTS, SEED)
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
