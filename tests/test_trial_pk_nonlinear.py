"""PK with Michaelis-Menten elimination: both engines vs an independent solve_ivp reference, order,
the linear limit, linear models unchanged, and the file validation table."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp

import her2sim.trial.pk as pk_module
from her2sim.errors import ModelFileError
from her2sim.trial.pk import PKModel, PKStepper, load_pk, simulate_pk, superpose

DAY = 24.0


def mm_model(oral=False, Km=2.0, Vmax=0.5, two=True):
    """A Michaelis-Menten model (h, L, mg) with strong saturation over the dosed range."""
    values = {"CL": 0.01, "V1": 3.0, "Vmax": Vmax, "Km": Km, "fu": 1.0, "kp_tumour": 0.3, "kp_uu_brain": 0.005}
    if two:
        values.update(Q=0.03, V2=3.0)
    if oral:
        values.update(ka=2.0, F=0.7)
    return PKModel("mm_test", "trastuzumab", "two_compartment" if two else "one_compartment", values,
                   {"CL": 0.3, "V1": 0.2, "Km": 1.0}, 148000.0)


def reference(pk, p, dose_times, doses, t_eval, route="iv", infusion_h=0.0):
    """(N, T) mg/L written out independently of pk.py's integrator: one solve_ivp per patient and segment."""
    N = len(p["CL"])
    absorbed = "ka" in p
    c = 1 if absorbed else 0
    n = c + (2 if "Q" in p else 1)
    out = np.zeros((N, len(t_eval)))
    for i in range(N):
        g = {k: v[i] for k, v in p.items()}
        F = g.get("F", 1.0) if route != "iv" else 1.0
        edges = sorted(set(dose_times) | ({d + infusion_h for d in dose_times} if infusion_h else set()))

        def rhs(_t, x, rate, g=g):
            C = x[c] / g["V1"]
            dx = np.zeros(n)
            if absorbed:
                dx[0] = -g["ka"] * x[0]
                dx[c] += g["ka"] * x[0]
            dx[c] += rate - g["CL"] * C - g["Vmax"] * C / (g["Km"] + C)
            if "Q" in g:
                flow = g["Q"] * (C - x[c + 1] / g["V2"])
                dx[c] -= flow
                dx[c + 1] = flow
            return dx

        x = np.zeros(n)
        for k, a in enumerate(edges):
            b = edges[k + 1] if k + 1 < len(edges) else max(t_eval.max(), a)
            rate = 0.0
            for td, d in zip(dose_times, doses[i]):
                if infusion_h and td <= a < td + infusion_h:
                    rate += d / infusion_h
                elif not infusion_h and td == a:
                    x[0 if route != "iv" else c] += d * F
            sel = (t_eval >= a) & ((t_eval <= b) if k + 1 == len(edges) else (t_eval < b))
            if b > a:
                sol = solve_ivp(rhs, (a, b), x, args=(rate,), method="Radau", rtol=1e-12, atol=1e-14,
                                dense_output=True)
                out[i, sel] = sol.sol(t_eval[sel])[c] / g["V1"]
                x = sol.y[:, -1]
    return out


def stepped(pk, p, route, schedule, hours, dt_h=1.0):
    """(N, hours) concentration after each step of the hourly trial path."""
    st = PKStepper(pk, p, route, dt_h=dt_h)
    got = []
    for h in range(hours):
        st.step(schedule.get(h))
        got.append(st.concentration())
    return np.array(got).T


@pytest.mark.parametrize("oral, rtol", [(False, 1e-7), (True, 1e-5)], ids=["iv_two_compartment", "oral_absorption"])
def test_stepper_matches_solve_ivp_through_saturation_and_washout(oral, rtol):
    """Integrating-factor RK4 hour by hour vs Radau at rtol 1e-12, from saturation (C >> Km) to washout
    (C << Km), with IIV (Km from 0.3 to 10 mg/L), while C > 1e-4 mg/L. Oral: C rises through Km within
    minutes of each dose (ka 2/h), the worst case for the saturable term."""
    pk = mm_model(oral=oral)
    p = pk.individual(4, np.random.default_rng(3))
    p["Km"] = np.array([0.3, 1.0, 3.0, 10.0])
    n_doses = 2 if oral else 4   # (the oral reference is slow: Radau through every absorption phase)
    doses = np.full((4, n_doses), 300.0)
    times = 7 * DAY * np.arange(n_doses)
    hours = int((7 * n_doses + 21) * DAY)
    route = "oral" if oral else "iv"
    got = stepped(pk, p, route, {int(t): doses[:, k] for k, t in enumerate(times)}, hours)
    ref = reference(pk, p, times, doses, np.arange(1.0, hours + 1) - 1e-9, route=route)
    m = ref > 1e-4
    assert m.sum() > 0.5 * m.size and ref.min() < 1e-2 * ref.max()   # the washout is in the comparison
    assert np.max(np.abs(got[m] / ref[m] - 1)) < rtol


@pytest.mark.parametrize("infusion_h", [0.0, 1.5])
def test_superpose_dispatches_to_numerical_integration(infusion_h):
    """For a Michaelis-Menten model superpose() equals simulate_pk() and the independent reference
    (bolus and zero-order infusion), including the value at a dose time (the bolus counts)."""
    pk = mm_model()
    p = pk.individual(3, np.random.default_rng(5))
    times = np.array([0.0, 10 * DAY, 17.5 * DAY])
    doses = np.array([[500.0, 200.0, 200.0]] * 3)
    t = np.concatenate([np.linspace(0, 40 * DAY, 301), times])
    got = superpose(pk, p, times, doses, t, infusion_h=infusion_h)
    np.testing.assert_array_equal(got, simulate_pk(pk, p, times, doses, t, infusion_h=infusion_h))
    ref = reference(pk, p, times, doses, t, infusion_h=infusion_h)
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=1e-12)
    if infusion_h == 0:
        assert got[0, -3] == pytest.approx(500.0 / p["V1"][0], rel=1e-12)


def test_simulate_pk_equals_closed_forms_for_a_linear_model():
    """The numerical path also serves linear models: it matches the analytic superposition."""
    pk = load_pk("pertuzumab")
    p = pk.individual(3, np.random.default_rng(0))
    times = np.arange(0.0, 10 * 21 * DAY, 21 * DAY)
    doses = np.array([840.0] + [420.0] * 9)
    t = np.linspace(0.0, 230 * DAY, 700)
    np.testing.assert_allclose(simulate_pk(pk, p, times, doses, t, infusion_h=1.0),
                               superpose(pk, p, times, doses, t, infusion_h=1.0), rtol=1e-8, atol=1e-10)


def test_lawson_rk4_converges_at_fourth_order(monkeypatch):
    """Error of one sub-step per step shrinks ~16x per halving of the step (h = 8, 4, 2 h)."""
    monkeypatch.setattr(pk_module, "MM_STEP_RATE", 1e9)   # no sub-steps: the step is the method's h
    pk = mm_model(Km=1.0, Vmax=1.0)
    p = pk.individual(1)
    T = 96.0
    ref = reference(pk, p, [0.0], np.array([[40.0]]), np.array([T]))[0, 0]
    errors = []
    for dt in (8.0, 4.0, 2.0):
        st = PKStepper(pk, p, "iv", dt_h=dt)
        st.step(np.array([40.0]))
        for _ in range(int(T / dt) - 1):
            st.step(None)
        errors.append(abs(st.concentration()[0] - ref))
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 3.7), (errors, orders)


def test_vmax_zero_equals_the_linear_model():
    """Vmax = 0 runs the Michaelis-Menten engines and reproduces the linear model."""
    lin = load_pk("pertuzumab")
    mm = replace(lin, values={**lin.values, "Vmax": 0.0, "Km": 1.0})
    assert mm.michaelis_menten and not lin.michaelis_menten
    p_lin = lin.individual(3, np.random.default_rng(2))
    p_mm = {**p_lin, "Vmax": np.zeros(3), "Km": np.ones(3)}
    times = np.array([0.0, 21 * DAY, 42 * DAY])
    doses = np.array([840.0, 420.0, 420.0])
    t = np.linspace(0.0, 70 * DAY, 400)
    np.testing.assert_allclose(superpose(mm, p_mm, times, doses, t), superpose(lin, p_lin, times, doses, t),
                               rtol=1e-9, atol=1e-12)
    sched = {int(x): np.full(3, d) for x, d in zip(times, doses)}
    np.testing.assert_allclose(stepped(mm, p_mm, "iv", sched, int(70 * DAY)),
                               stepped(lin, p_lin, "iv", sched, int(70 * DAY)), rtol=1e-12)


@pytest.mark.parametrize("drug, route", [("pertuzumab", "iv"), ("tucatinib", "oral"), ("tdm1", "iv")])
def test_linear_models_keep_the_exact_propagator(drug, route):
    """Linear models are stepped by expm(K dt) exactly as before (bit for bit) and never integrated numerically."""
    pk = load_pk(drug)
    assert not pk.michaelis_menten
    p = pk.individual(5, np.random.default_rng(1))
    M = scipy.linalg.expm(pk.rate_matrix(p))
    F = pk.input_fraction(p, route)
    inp = pk.central if route == "iv" else 0
    x = np.zeros((5, pk.n_compartments))
    st = PKStepper(pk, p, route)
    for h in range(24 * 30):
        dose = np.full(5, 100.0) if h % 24 == 0 else None
        if dose is not None:
            x[:, inp] += dose * F
        x = np.einsum("nij,nj->ni", M, x)
        st.step(dose)
        np.testing.assert_array_equal(st.concentration(), x[:, pk.central] / p["V1"])


def test_linear_superpose_does_not_integrate(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a linear model must use the closed forms")

    monkeypatch.setattr(pk_module, "simulate_pk", boom)
    pk = load_pk("pertuzumab")
    superpose(pk, pk.individual(1), np.array([0.0]), np.array([840.0]), np.linspace(0, 500, 11))


def test_half_life_limits():
    """Linear pathway alone for large C; CL + Vmax/Km at C = 0; one-compartment closed form."""
    pk = mm_model(two=False)
    p = pk.individual(1)
    np.testing.assert_allclose(pk.half_life(p), np.log(2) * 3.0 / 0.01)
    np.testing.assert_allclose(pk.half_life(p, 0.0), np.log(2) * 3.0 / (0.01 + 0.5 / 2.0))
    np.testing.assert_allclose(pk.half_life(p, 1e9), pk.half_life(p), rtol=1e-6)


def test_trastuzumab_is_the_label_model():
    """The bundled trastuzumab file carries the Quartino 2019 / Herceptin-label parameters, in internal units."""
    pk = load_pk("trastuzumab")
    assert pk.michaelis_menten
    assert pk.values["CL"] * DAY == pytest.approx(0.127)
    assert pk.values["Vmax"] * DAY == pytest.approx(8.81)
    assert pk.values["Km"] == pytest.approx(8.92)
    assert pk.values["V1"] == pytest.approx(2.62)
    # saturable share of elimination at Cmin,ss (~50 mg/L) is large, at 1000 mg/L small
    p = pk.individual(1)
    for c, lo, hi in ((50.0, 0.5, 0.6), (1000.0, 0.0, 0.07)):
        share = pk.saturable_elimination(p, np.array([c]))[0] / (pk.saturable_elimination(p, np.array([c]))[0]
                                                                 + p["CL"][0] * c)
        assert lo < share < hi


# ----------------------------------------------------------------------------- file validation
def _write(tmp_path: Path, edit) -> Path:
    text = (Path(pk_module.__file__).parents[3] / "models" / "pk" / "trastuzumab.toml").read_text()
    path = tmp_path / "bad.toml"
    path.write_text(edit(text))
    return path


def _drop(entry):
    def edit(text):
        head, rest = text.split(f"[pk.{entry}]\n", 1)
        return head + rest.split("\n\n", 1)[1]
    return edit


BAD_FILES = [
    ("vmax_without_km", _drop("Km"), "pk.Vmax", "add [pk.Km]"),
    ("km_without_vmax", _drop("Vmax"), "pk.Km", "add [pk.Vmax]"),
    ("negative_vmax", lambda s: s.replace('"8.81 mg/day"', '"-1 mg/day"'), "pk.Vmax", "must be >= 0"),
    ("zero_km", lambda s: s.replace('"8.92 mg/L"', '"0 mg/L"'), "pk.Km", "must be > 0"),
    ("vmax_as_clearance", lambda s: s.replace('"8.81 mg/day"', '"8.81 L/day"'), "pk.Vmax", "expected mg/h"),
    ("km_as_amount", lambda s: s.replace('"8.92 mg/L"', '"8.92 mg"'), "pk.Km", "expected mg/L"),
    ("vmax_without_source", lambda s: s.replace('value = "8.81 mg/day"\nsource', 'value = "8.81 mg/day"\nsrc'),
     "pk.Vmax", "source"),
]


@pytest.mark.parametrize("edit, entry, fix", [pytest.param(*row[1:], id=row[0]) for row in BAD_FILES])
def test_bad_michaelis_menten_entries_name_the_entry_and_the_fix(tmp_path, edit, entry, fix):
    with pytest.raises(ModelFileError) as info:
        load_pk(_write(tmp_path, edit))
    assert info.value.entry == entry
    assert fix in str(info.value)


def test_vmax_zero_is_a_valid_file(tmp_path):
    pk = load_pk(_write(tmp_path, lambda s: s.replace('"8.81 mg/day"', '"0 mg/day"')))
    assert pk.michaelis_menten and pk.values["Vmax"] == 0.0
