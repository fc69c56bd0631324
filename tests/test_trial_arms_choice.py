"""Physician's-choice arms (issue 15): each patient of the arm gets one option by the trial's shares."""

import numpy as np
import pytest

from her2sim.errors import ModelFileError
from her2sim.trial.arms import MixPlan, assign_choices, mix_exposure
from her2sim.trial.population import Cohort
from her2sim.trial.trial import load_trial
from her2sim.trial.tumour import DailyRates


def test_assignment_meets_the_shares_and_is_deterministic_per_seed():
    shares = (0.685, 0.103, 0.033, 0.011, 0.168)
    for n in (7, 198, 1001):
        a = assign_choices(shares, n, np.random.default_rng([3, 1]))
        counts = np.bincount(a, minlength=len(shares))
        assert counts.sum() == n and np.all(np.abs(counts - n * np.array(shares) / sum(shares)) < 1), counts
    a = assign_choices(shares, 198, np.random.default_rng([3, 1]))
    np.testing.assert_array_equal(a, assign_choices(shares, 198, np.random.default_rng([3, 1])))
    assert not np.array_equal(a, assign_choices(shares, 198, np.random.default_rng([4, 1])))


def test_physicians_choice_specs_load_with_normalised_shares():
    for name, arm in (("destiny_breast02_like", "physician's choice"), ("th3resa_like", "physician's choice"),
                      ("sophia_like", "trastuzumab + chemotherapy"), ("monarcher_like", "trastuzumab + chemotherapy")):
        spec = load_trial(name)
        mix = next(a for a in spec.arms if a.name == arm)
        assert mix.regimens == () and len(mix.choices) >= 2
        assert sum(c.share for c in mix.choices) == pytest.approx(1.0)
        assert all(c.regimens and c.source for c in mix.choices)
    th3 = load_trial("th3resa_like")
    assert th3.role == "calibration" and th3.population.lines.prior[0] == ("trastuzumab", 2.0)
    assert {t.metric for t in th3.targets} == {"median_pfs", "hazard_ratio", "orr"}
    for name in ("sophia_like", "monarcher_like"):
        assert load_trial(name).targets == ()   # held out: design only


_ARM = '''[[trial.arm]]
name = "T-DXd"
regimens = ["tdxd_5.4mgkg_q3w"]
ratio = 2
'''


@pytest.mark.parametrize("choice, message", [
    ('regimens = ["capecitabine_1000mgm2_bid_14of21"]\n[[trial.arm.choice]]\nregimens = ["lapatinib_1250mg_qd"]\n'
     'share = 1\nsource = "s"\n', "either regimens or"),
    ('[[trial.arm.choice]]\nregimens = ["lapatinib_1250mg_qd"]\nshare = 1\nsource = "s"\n', "at least two"),
    ('[[trial.arm.choice]]\nregimens = ["lapatinib_1250mg_qd"]\nshare = -1\nsource = "s"\n'
     '[[trial.arm.choice]]\nregimens = ["capecitabine_1000mgm2_bid_14of21"]\nshare = 1\nsource = "s"\n',
     r"trial.arm\[1\].choice\[0\].*share must be a number > 0"),
    ('[[trial.arm.choice]]\nregimens = ["lapatinib_1250mg_qd"]\nshare = 1\n'
     '[[trial.arm.choice]]\nregimens = ["capecitabine_1000mgm2_bid_14of21"]\nshare = 1\nsource = "s"\n',
     r"choice\[0\].*source"),
])
def test_bad_choice_arm_is_a_clear_error(tmp_path, choice, message):
    p = tmp_path / "t.toml"
    p.write_text('[trial]\nname = "t"\nsource = "s"\nrole = "held_out"\npopulation = "her2_mbc_db02"\n'
                 'follow_up = "12 month"\nassessment_interval = "6 week"\n' + _ARM
                 + '[[trial.arm]]\nname = "choice"\ncontrol = true\n' + choice)
    with pytest.raises(ModelFileError, match=message):
        load_trial(p)


class _Plan:
    def __init__(self, k, cross):
        self.k, self.pairs, self.cross = k, ((None, None),), cross


def _stub(plan, cohort, pk, follow_up_h, **_kw):
    """Rates that encode the option (k) and the patient (their id), to check where they land."""
    days = int(np.ceil(follow_up_h / 24.0))
    v = (plan.k * 1000 + cohort["patient"])[:, None, None, None] * np.ones((1, days, 2, 3))
    x = None if plan.cross else -v[..., 0]
    assert np.all(pk[0]["id"] == cohort["patient"])   # each patient keeps their own PK parameters
    return DailyRates(v.astype(np.float32), v.astype(np.float32), v[..., 0].astype(np.float32), x, x)


def test_each_patient_gets_the_rates_of_their_own_option():
    n = 11
    coh = Cohort({"patient": np.arange(n)})
    choice = assign_choices((0.6, 0.4), n, np.random.default_rng(0))
    plan = MixPlan((_Plan(0, True), _Plan(1, False)), (0.6, 0.4), ("a", "b"))
    pk = [{"choice": choice}, {"id": np.arange(n)}, {"id": np.arange(n)}]
    r = mix_exposure(plan, coh, pk, 48.0, _stub)
    np.testing.assert_array_equal(r.dS[:, 0, 0, 0], choice * 1000 + np.arange(n))
    # option 0 carries no separate cross-resistant part (None = all of its signalling), option 1 does
    np.testing.assert_array_equal(r.xS[:, 0, 0], np.where(choice == 0, 1, -1) * (choice * 1000 + np.arange(n)))
    # blocks of patients (as scaleout slices them) give the same rows
    rows = np.arange(3, 9)
    sub = mix_exposure(plan, Cohort({"patient": rows}), [{k: v[rows] for k, v in d.items()} for d in pk], 48.0, _stub)
    np.testing.assert_array_equal(sub.dS, r.dS[rows])
