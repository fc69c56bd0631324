"""PK: closed forms, superposition vs the hourly stepper, accumulation, brain exposure, published read-outs.

Michaelis-Menten (saturable) elimination has its own file, ``test_trial_pk_nonlinear.py``.
"""

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


# lapatinib 0.075 -> 0.15 (issue 15): the file's own source, Taskar et al. 2012 Pharm Res 29:770, measured
# brain-metastasis levels at 10-20% of peripheral metastases; 0.075 was a default below that range
@pytest.mark.parametrize("drug, kp", [("tucatinib", 0.6), ("trastuzumab", 0.005), ("lapatinib", 0.15)])
def test_brain_exposure_is_kpuu_times_free_plasma(drug, kp):
    pk = load_pk(drug)
    assert pk.values["kp_uu_brain"] == pytest.approx(kp)
    # the trial path scales the same plasma concentration: brain / body = kp_uu / kp_tumour
    body = pk.values["fu"] * pk.values["kp_tumour"]
    brain = pk.values["fu"] * pk.values["kp_uu_brain"]
    assert brain / (pk.values["fu"]) == pytest.approx(kp)
    assert brain / body == pytest.approx(kp / pk.values["kp_tumour"])


# Published PK read-outs that the bundled PK files + regimens must reproduce (typical patient, no
# IIV, doses as boluses). Columns: id, drug, regimen (bundled name or inline phases), body weight
# (kg), metric, published value, relative tolerance, source. Tolerances: 25% for read values
# [R] (the PK files mix parameters from different popPK analyses, and the published numbers are
# population summaries), 15% for half-lives read from the source, 50% for [recalled, unverified]
# values; a value reported as a range is compared as its midpoint with the half-width as tolerance.
# Half-lives of Michaelis-Menten models are measured at Cavg,ss (see _simulated). Concentrations in
# ug/mL (= mg/L), AUC in ug.day/mL, half-lives in days.
WEEKLY_TRASTUZUMAB = ((4.0, 7, 1), (2.0, 7, None))  # mg/kg, interval (days), repeats
PUBLISHED_PK = [
    ("trastuzumab_q3w_cmin_ss", "trastuzumab", "trastuzumab_8_6mgkg_q3w", 68.0, "cmin_ss", 44.2, 0.25,
     "Herceptin SmPC popPK: q3w 8 -> 6 mg/kg MBC Cmin,ss 44.2 ug/mL (parameters.md 2.8 [R])"),
    ("trastuzumab_q3w_cmax_ss", "trastuzumab", "trastuzumab_8_6mgkg_q3w", 68.0, "cmax_ss", 179.0, 0.25,
     "Herceptin SmPC popPK: Cmax,ss 179 ug/mL (parameters.md 2.8 [R])"),
    ("trastuzumab_weekly_cmin_ss", "trastuzumab", WEEKLY_TRASTUZUMAB, 68.0, "cmin_ss", 63.1, 0.25,
     "Herceptin SmPC popPK: weekly 4 -> 2 mg/kg Cmin,ss 63.1 ug/mL (parameters.md 2.8 [R])"),
    pytest.param("trastuzumab_t_half", "trastuzumab", "trastuzumab_8_6mgkg_q3w", 68.0, "t_half", 28.5, 0.15,
                 "Bruno 2005 CCP: t1/2 28.5 d (parameters.md anchor 3 [R])",
                 marks=pytest.mark.xfail(strict=True, reason=(
                     "Bruno 2005's 28.5 d is the terminal t1/2 of its own linear model (CL 0.225 L/d, weekly "
                     "data). The label's model (Quartino 2019: linear CL 0.127 L/d + Michaelis-Menten Vmax 8.81 "
                     "mg/d, Km 8.92 mg/L), which reproduces the SmPC Cmin,ss/Cmax,ss, has a concentration-dependent "
                     "t1/2 of 16.4 d at Cmin,ss, 20.2 d at Cavg,ss and 25.2 d at Cmax,ss (32.6 d for its linear "
                     "pathway alone): 28.5 d is not a property of the label model. The q3w estimate of "
                     "trastuzumab_t_half_q3w (18-27 d) is met. Recorded in models/calibration.md"))),
    ("trastuzumab_t_half_q3w", "trastuzumab", "trastuzumab_8_6mgkg_q3w", 68.0, "t_half", 22.5, 0.2,
     "Phase II q3w trastuzumab (8 -> 6 mg/kg) + paclitaxel, J Clin Oncol 2003 (Leyland-Jones et al., "
     "authors/journal [recalled, unverified]), abstract [R]: 'half-life estimated to be 18 to 27 days'; "
     "published = midpoint, tolerance = half-width of that range"),
    ("tdm1_cycle1_cmax", "tdm1", "tdm1_3.6mgkg_q3w", 70.0, "cmax_c1", 74.4, 0.25,
     "MARIANNE popPK (CCP 2019 84:175): cycle-1 Cmax 74.4 +- 10.1 ug/mL (parameters.md 2.8 [R])"),
    ("tdm1_cycle1_ctrough", "tdm1", "tdm1_3.6mgkg_q3w", 70.0, "ctrough_c1", 1.34, 0.6,
     "MARIANNE popPK: cycle-1 Ctrough 1.34 +- 0.80 ug/mL (parameters.md 2.8 [R]; tolerance = the reported SD)"),
    ("tdm1_cycle1_auc_inf", "tdm1", "tdm1_3.6mgkg_q3w", 70.0, "auc_inf_c1", 338.0, 0.25,
     "MARIANNE popPK: AUCinf 338 +- 69.5 ug.day/mL (parameters.md 2.8 [R])"),
    ("tdm1_t_half", "tdm1", "tdm1_3.6mgkg_q3w", 70.0, "t_half", 3.94, 0.15,
     "Lu 2014 CCP 74:399: t1/2 3.94 d (parameters.md anchor 4 [R])"),
    ("tdxd_auc_ss", "tdxd", "tdxd_5.4mgkg_q3w", 57.8, "auc_ss", 735.0, 0.25,
     "Yin 2021 CPT Fig. 4 reference patient (57.8 kg): AUCtau,ss ~735 ug.day/mL, read off the figure as "
     "reported in the nlmixr2lib Yin_2021_trastuzumabDeruxtecan vignette [R]"),
    ("tdxd_cmax_ss", "tdxd", "tdxd_5.4mgkg_q3w", 57.8, "cmax_ss", 122.0, 0.25, "same source: Cmax,ss ~122 ug/mL [R]"),
    ("tdxd_cmin_ss", "tdxd", "tdxd_5.4mgkg_q3w", 57.8, "cmin_ss", 9.7, 0.3, "same source: Cmin,ss ~9.7 ug/mL [R]"),
    ("palbociclib_t_half", "palbociclib", "palbociclib_125mg_qd_21of28", 70.0, "t_half", 29.0 / 24, 0.15,
     "npj Breast Cancer 2019 (s41523-019-0121-y): t1/2 29 +- 5 h (parameters.md 2.8 [R])"),
    ("abemaciclib_t_half", "abemaciclib", "abemaciclib_150mg_bid", 70.0, "t_half", 18.3 / 24, 0.15,
     "npj Breast Cancer 2019: t1/2 18.3 h (parameters.md 2.8 [R])"),
    ("lapatinib_cmax_ss", "lapatinib", "lapatinib_1250mg_qd", 70.0, "cmax_ss", 2.4, 0.5,
     "parameters.md 2.8: Cmax,ss ~2.4 ug/mL at 1250 mg [recalled, unverified]"),
    ("lapatinib_t_half", "lapatinib", "lapatinib_1250mg_qd", 70.0, "t_half", 24.0 / 24, 0.5,
     "parameters.md 2.8: t1/2 ~24 h [recalled, unverified]"),
    ("tucatinib_t_half", "tucatinib", "tucatinib_300mg_bid", 70.0, "t_half", 8.5 / 24, 0.5,
     "parameters.md 2.8: t1/2 ~8.5 h [recalled, unverified]"),
    ("neratinib_t_half", "neratinib", "neratinib_240mg_qd", 70.0, "t_half", 14.0 / 24, 0.5,
     "parameters.md 2.8: t1/2 ~14 h [recalled, unverified]"),
    ("everolimus_t_half", "everolimus", "everolimus_10mg_qd", 70.0, "t_half", 30.0 / 24, 0.5,
     "parameters.md 2.8: t1/2 ~30 h [recalled, unverified]"),
    ("fulvestrant_t_half", "fulvestrant", "fulvestrant_500mg", 70.0, "t_half", 40.0, 0.5,
     "parameters.md 2.8: t1/2 ~40 d (absorption-limited) [recalled, unverified]"),
    ("margetuximab_t_half", "margetuximab", "margetuximab_15mgkg_q3w", 70.0, "t_half", 19.0, 0.5,
     "parameters.md 2.8: t1/2 ~19 d [recalled, unverified]"),
]


def _profile(drug, regimen, weight, t_end_d, step_h=0.5, single=False):
    """(t in days, typical-patient plasma concentration in mg/L) on a grid of ``step_h`` hours."""
    from her2sim.trial.regimen import Phase, Regimen

    pk = load_pk(drug)
    if isinstance(regimen, tuple):
        reg = Regimen("inline", drug, "iv", tuple(Phase(d, "weight", 24.0 * i, r) for d, i, r in regimen))
    else:
        reg = load_regimen(regimen)
    times, doses = reg.amounts_mg(24.0 * t_end_d, np.array([weight]), np.array([1.8]))
    if single:
        times, doses = times[:1], doses[:, :1]
    t = np.arange(0.0, 24.0 * t_end_d, step_h)
    return t / 24.0, superpose(pk, pk.individual(1), times, doses, t, route=reg.route)[0], reg


def _simulated(drug, regimen, weight, metric):
    if metric == "t_half" and load_pk(drug).michaelis_menten:
        # Saturable elimination: the half-life depends on the concentration. As the Herceptin label
        # does ("t1/2 at clinically relevant concentrations", tabulated from Cmin,ss to Cmax,ss), take
        # the terminal half-life of the model with its total clearance CL + Vmax / (Km + C) at the
        # clinical concentration C = Cavg,ss, the time-averaged concentration of the last dosing
        # interval at steady state (PKModel.half_life).
        pk = load_pk(drug)
        t, c, reg = _profile(drug, regimen, weight, 21 * 31)
        m = t >= t[-1] - reg.phases[-1].interval_h / 24.0 + 1e-9
        c_avg = np.trapezoid(c[m], t[m]) / (t[m][-1] - t[m][0])
        return pk.half_life(pk.individual(1), c_avg)[0] / 24.0
    if metric == "t_half":
        # log-linear slope of the washout after one dose, over a window that starts once absorption
        # and distribution are over (10 x the fastest time constant) and spans two half-lives
        pk = load_pk(drug)
        rates = np.sort(np.abs(np.linalg.eigvals(pk.rate_matrix(pk.individual(1))[0])))
        start_d = 10.0 / rates[-1] / 24.0 if len(rates) > 1 else 0.1
        span_d = 2.0 * np.log(2) / rates[0] / 24.0
        t, c, _ = _profile(drug, regimen, weight, start_d + span_d + 1, step_h=0.1, single=True)
        m = (t >= start_d) & (t <= start_d + span_d)
        slope = np.polyfit(t[m], np.log(c[m]), 1)[0]
        return np.log(2) / -slope
    t, c, reg = _profile(drug, regimen, weight, 21 * 31 if metric.endswith("_ss") else 200)
    tau = reg.phases[-1].interval_h / 24.0
    if metric.endswith("_ss"):   # the last full dosing interval after >= 30 x 21 days
        m = t >= t[-1] - tau + 1e-9
    else:                        # first interval
        m = t < reg.phases[0].interval_h / 24.0
    if metric in ("cmax_ss", "cmax_c1"):
        return c[m].max()
    if metric == "cmin_ss":
        return c[m].min()
    if metric == "ctrough_c1":
        return c[m][-1]
    if metric == "auc_ss":
        return np.trapezoid(c[m], t[m])
    if metric == "auc_inf_c1":
        tt, cc, _ = _profile(drug, regimen, weight, 200, single=True)
        return np.trapezoid(cc, tt)
    raise ValueError(metric)


def _cases():
    for row in PUBLISHED_PK:
        if hasattr(row, "marks"):   # a pytest.param: keep its marks, drop the id column
            yield pytest.param(*row.values[1:], marks=row.marks, id=row.values[0])
        else:
            yield pytest.param(*row[1:], id=row[0])


@pytest.mark.parametrize("drug, regimen, weight, metric, published, tol, source", list(_cases()))
def test_simulated_pk_matches_published_values(drug, regimen, weight, metric, published, tol, source):
    """Plasma profiles of the bundled PK files reproduce label / popPK read-outs within the stated tolerance."""
    sim = _simulated(drug, regimen, weight, metric)
    assert abs(sim / published - 1) <= tol, f"{drug} {metric}: simulated {sim:.4g} vs published {published:.4g} ({source})"


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
