"""PK: closed forms, superposition vs the hourly stepper, accumulation, brain exposure."""

import numpy as np
import pytest

from her2sim.trial.pk import PKModel, PKStepper, accumulation_factor, load_pk, superpose
from her2sim.trial.regimen import list_regimens, load_regimen


def one_cmt(oral=False, CL=2.0, V=20.0, ka=1.0, F=0.5):
    values = {"CL": CL, "V1": V, "fu": 0.1, "kp_tumour": 1.0, "kp_uu_brain": 0.6}
    if oral:
        values.update(ka=ka, F=F)
    return PKModel("test", "lapatinib", "one_compartment", values, {}, 500.0)


def params(pk, n=1):
    return pk.individual(n)


def test_iv_bolus_matches_closed_form():
    pk = one_cmt()
    t = np.linspace(0, 48, 97)
    c = superpose(pk, params(pk), np.array([0.0]), np.array([100.0]), t)[0]
    k = 2.0 / 20.0
    np.testing.assert_allclose(c, 100 / 20 * np.exp(-k * t), rtol=1e-10)


def test_iv_infusion_matches_closed_form():
    pk = one_cmt()
    T, D, k, V = 2.0, 100.0, 0.1, 20.0
    t = np.linspace(0, 24, 49)
    c = superpose(pk, params(pk), np.array([0.0]), np.array([D]), t, infusion_h=T)[0]
    R = D / T
    during = R / (k * V) * (1 - np.exp(-k * t))
    after = R / (k * V) * (1 - np.exp(-k * T)) * np.exp(-k * (t - T))
    np.testing.assert_allclose(c, np.where(t <= T, during, after), rtol=1e-10, atol=1e-12)


def test_oral_absorption_matches_bateman_function():
    pk = one_cmt(oral=True)
    t = np.linspace(0, 48, 97)
    c = superpose(pk, params(pk), np.array([0.0]), np.array([100.0]), t, route="oral")[0]
    ka, k, F, V = 1.0, 0.1, 0.5, 20.0
    np.testing.assert_allclose(c, F * 100 * ka / (V * (ka - k)) * (np.exp(-k * t) - np.exp(-ka * t)), rtol=1e-9,
                               atol=1e-12)


def test_repeated_doses_reach_the_accumulation_factor():
    pk = one_cmt()
    tau, k = 12.0, 0.1
    times = np.arange(0, 30 * tau, tau)
    peak_first = superpose(pk, params(pk), times[:1], np.array([100.0]), np.array([0.0]))[0, 0]
    peak_ss = superpose(pk, params(pk), times, np.full(len(times), 100.0), np.array([times[-1]]))[0, 0]
    assert peak_ss / peak_first == pytest.approx(accumulation_factor(k, tau), rel=1e-6)


def test_hourly_stepper_equals_superposition_two_compartment():
    pk = load_pk("trastuzumab")
    p = pk.individual(3, np.random.default_rng(0))
    reg = load_regimen("trastuzumab_8_6mgkg_q3w")
    times, doses = reg.amounts_mg(24 * 84, np.array([60.0, 70.0, 90.0]), np.array([1.6, 1.8, 2.0]))
    st = PKStepper(pk, p, "iv")
    sched = {round(t): doses[:, k] for k, t in enumerate(times)}
    got = []
    for h in range(24 * 84):
        st.step(sched.get(h))
        got.append(st.concentration())
    ref = superpose(pk, p, times, doses, np.arange(1, 24 * 84 + 1, dtype=float) - 1e-9)  # just before the next dose
    np.testing.assert_allclose(np.array(got).T, ref, rtol=1e-8)


def test_oral_stepper_equals_superposition():
    pk = load_pk("tucatinib")
    p = pk.individual(2, np.random.default_rng(1))
    times = np.arange(0, 24 * 7, 12.0)
    doses = np.full((2, len(times)), 300.0)
    st = PKStepper(pk, p, "oral")
    got = []
    for h in range(24 * 7):
        st.step(doses[:, 0] if h % 12 == 0 else None)
        got.append(st.concentration())
    ref = superpose(pk, p, times, doses, np.arange(1, 24 * 7 + 1, dtype=float) - 1e-9, route="oral")
    np.testing.assert_allclose(np.array(got).T, ref, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("drug, kp", [("tucatinib", 0.6), ("trastuzumab", 0.005), ("lapatinib", 0.075)])
def test_brain_exposure_is_kpuu_times_free_plasma(drug, kp):
    pk = load_pk(drug)
    assert pk.values["kp_uu_brain"] == pytest.approx(kp)
    # the trial path scales the same plasma concentration: brain / body = kp_uu / kp_tumour
    body = pk.values["fu"] * pk.values["kp_tumour"]
    brain = pk.values["fu"] * pk.values["kp_uu_brain"]
    assert brain / (pk.values["fu"]) == pytest.approx(kp)
    assert brain / body == pytest.approx(kp / pk.values["kp_tumour"])


def test_trastuzumab_q3w_steady_state_matches_label():
    """Herceptin SmPC popPK: q3w 8 -> 6 mg/kg Cmin,ss 44.2 ug/mL, Cmax,ss 179 ug/mL (parameters.md 2.8)."""
    pk = load_pk("trastuzumab")
    reg = load_regimen("trastuzumab_8_6mgkg_q3w")
    times, doses = reg.amounts_mg(24 * 7 * 30, np.array([68.0]), np.array([1.8]))
    t = np.arange(24 * 7 * 27, 24 * 7 * 30, 1.0)
    c = superpose(pk, pk.individual(1), times, doses, t)[0]
    assert 30 < c.min() < 70
    assert 140 < c.max() < 230


def test_every_bundled_regimen_has_a_pk_file_and_doses():
    for name in list_regimens():
        reg = load_regimen(name)
        pk = load_pk(reg.drug)
        t, a, _ = reg.dose_events(24 * 56)
        assert len(t) > 0 and np.all(a > 0), name
        if reg.route != "iv":
            assert pk.absorbed, name


def test_on_off_cycle_and_loading_phase():
    cape = load_regimen("capecitabine_1000mgm2_bid_14of21")
    t, _a, _b = cape.dose_events(24 * 42)
    assert len(t) == 2 * 28  # 14 days x BID in each of two 21-day cycles
    assert not np.any((t >= 24 * 14) & (t < 24 * 21))
    ful = load_regimen("fulvestrant_500mg")
    t, _, _ = ful.dose_events(24 * 100)
    np.testing.assert_allclose(t / 24, [0, 14, 28, 56, 84])
    tra = load_regimen("trastuzumab_8_6mgkg_q3w")
    _, doses = tra.amounts_mg(24 * 50, np.array([50.0]), np.array([1.5]))
    np.testing.assert_allclose(doses[0], [400, 300, 300])
