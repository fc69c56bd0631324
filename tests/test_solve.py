"""The scipy path against closed-form solutions, conservation laws and its own modes."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.special import lambertw

from her2sim import IntegrationError, UnitError, compile_network, load_model, simulate
from her2sim.errors import UnknownNameError
from her2sim.model.network import conserved_totals

TIGHT = {"rtol": 1e-10, "atol": 1e-12, "preequilibrate": False}


def rel_err(a, b):
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-12))


@pytest.mark.parametrize("method", ["LSODA", "BDF", "Radau"])
def test_first_order_decay(test_models, method):
    t = np.linspace(0, 20, 41)
    r = simulate(test_models / "decay.toml", time="20 h", t_eval=t, method=method, **TIGHT)
    assert rel_err(r["X"], 100 * np.exp(-0.3 * t)) < 1e-6


def binding_closed_form(t, A0, B0, kon, koff):
    """C(t) for A + B <-> C from C(0) = 0: roots r1 < r2 of kon C^2 - (kon(A0+B0)+koff) C + kon A0 B0."""
    b = A0 + B0 + koff / kon
    disc = np.sqrt(b * b - 4 * A0 * B0)
    r1, r2 = (b - disc) / 2, (b + disc) / 2
    e = np.exp(-kon * (r2 - r1) * t)
    return r1 * r2 * (1 - e) / (r2 - r1 * e), r1


def test_reversible_binding_time_course_and_equilibrium(test_models):
    t = np.linspace(0, 5, 51)
    r = simulate(test_models / "binding.toml", time="5 h", t_eval=t, **TIGHT)
    A0, B0 = 10.0, 1e4 / 6.02214076e23 / 1e-12 * 1e9
    C, C_eq = binding_closed_form(t, A0, B0, kon=3.6, koff=3.6)
    assert rel_err(r["C"][1:], C[1:]) < 1e-6
    assert r["C"][-1] == pytest.approx(C_eq, rel=1e-6)


def test_michaelis_menten_rate_law_matches_lambert_w(test_models):
    t = np.linspace(0, 5, 26)
    r = simulate(test_models / "mm.toml", time="5 h", t_eval=t, **TIGHT)
    S0, Vmax, Km = 50.0, 20.0, 10.0
    S = Km * np.real(lambertw(S0 / Km * np.exp((S0 - Vmax * t) / Km)))
    assert rel_err(r["S"], S) < 1e-6
    assert rel_err(r["S"] + r["P"], np.full_like(t, S0)) < 1e-9


def test_mass_action_enzyme_approaches_quasi_steady_state(test_models):
    """E0 = 0.01 nM << S0 + Km: mass action follows the MM closed form to O(E0 / (S0 + Km))."""
    t = np.linspace(0.5, 200, 50)
    r = simulate(test_models / "mm_mass_action.toml", time="200 h", t_eval=t, **TIGHT)
    k1, km1, kcat, E0, S0 = 10.0, 60.0, 40.0, 0.01, 50.0
    Km, Vmax = (km1 + kcat) / k1, kcat * E0
    S_qss = Km * np.real(lambertw(S0 / Km * np.exp((S0 - Vmax * t) / Km)))
    S_free_plus_bound = r["S"] + r["ES"]
    assert rel_err(S_free_plus_bound, S_qss) < 5 * E0 / (S0 + Km) * 10
    assert np.allclose(r["E"] + r["ES"], E0, rtol=1e-8)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(A=st.floats(0, 100), B=st.floats(0, 100), C=st.floats(0, 100), kon=st.floats(1e-3, 10), koff=st.floats(1e-3, 10))
def test_conservation_and_non_negativity_along_trajectories(test_models, A, B, C, kon, koff):
    net = compile_network(load_model(test_models / "binding.toml"))
    x0 = np.array([A, B, C, 5.0])
    from her2sim.solvers.scipy_engine import _solve_one

    p = net.parameters_with({"kon": kon, "koff": koff})
    y = _solve_one(net, x0, p, (0, 10), np.linspace(0, 10, 21), "LSODA", 1e-8, 1e-10)
    totals = conserved_totals(net, y)
    scale = np.maximum(np.abs(totals[0]), 1.0)
    assert np.all(np.abs(totals - totals[0]) <= 1e-6 * scale)
    assert y.min() >= -1e-8


def test_block_mode_equals_loop_mode(test_models):
    conds = [{"parameters": {"kdeg": k, "kon": 3.6 * k}} for k in np.linspace(0.1, 2, 9)]
    loop = simulate(test_models / "binding.toml", conditions=conds, mode="loop", method="BDF", time="5 h", **TIGHT)
    block = simulate(test_models / "binding.toml", conditions=conds, mode="block", method="BDF", time="5 h", **TIGHT)
    assert block.attrs["solver_mode"] == "block" and loop.attrs["solver_mode"] == "loop"
    np.testing.assert_allclose(block.species, loop.species, rtol=1e-7, atol=1e-9)


def test_preequilibration_reaches_steady_state(test_models):
    r = simulate(test_models / "binding.toml", time="1 h", rtol=1e-8, atol=1e-10)
    net = compile_network(load_model(test_models / "binding.toml"))
    x = r.species[0, 0]
    assert np.max(np.abs(net.rhs(x, net.p0))) < 1e-5
    assert x[3] == pytest.approx(0.0, abs=1e-6)  # D decays fully during pre-equilibration


def test_parameter_overrides_with_units(test_models):
    fast = simulate(test_models / "decay.toml", parameters={"k": "1 1/min"}, time="1 h", **TIGHT)
    assert fast.final("X") == pytest.approx(100 * np.exp(-60), abs=1e-9)
    with pytest.raises(UnitError, match="dimension"):
        simulate(test_models / "decay.toml", parameters={"k": "1 nM"}, **TIGHT)
    with pytest.raises(UnitError, match=">= 0"):
        simulate(test_models / "decay.toml", parameters={"k": "-1 1/h"}, **TIGHT)
    with pytest.raises(UnknownNameError, match="Did you mean 'k'"):
        simulate(test_models / "decay.toml", parameters={"kk": 1.0}, **TIGHT)


def test_failed_member_is_reported_not_dropped(test_models):
    conds = [{"parameters": {"k": 0.3}}, {"parameters": {"k": 1e300}}, {"parameters": {"k": 0.5}}]
    r = simulate(test_models / "decay.toml", conditions=conds, mode="loop", time="10 h", max_steps=2000, **TIGHT)
    codes = [s.label for s in r.status]  # one her2sim.Status per member, its message beside it
    assert codes[0] == "ok" and codes[2] == "ok"
    if codes[1] == "failed":
        assert r.messages[1] and np.all(np.isnan(r.species[1]))
    else:  # the solver may legitimately cope with an instantaneous decay
        assert np.all(np.isfinite(r.species[1]))
    assert r.final("X")[0] == pytest.approx(100 * np.exp(-3), rel=1e-6)


def test_single_failure_raises_with_advice(test_models):
    with pytest.raises(IntegrationError, match="Radau|rtol|non-finite"):
        simulate(test_models / "decay.toml", parameters={"k": float("1e308")}, time="10 h", method="BDF",
                 preequilibrate=False, rtol=1e-6, atol=1e-300, max_steps=2000)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method must be"):
        simulate("tests/models/decay.toml", method="Euler")
    with pytest.raises(UnitError, match="must be > 0"):
        simulate("tests/models/decay.toml", time="0 h")
    with pytest.raises(UnitError, match="negative"):
        simulate("tests/models/decay.toml", time="-3 h")


def test_drug_dose_units_and_washout_event(test_models):
    model = test_models / "target.toml"
    t = np.linspace(0, 48, 49)
    # 10 nM with Ki 10 nM halves activation: steady p_fraction = 0.5/(0.5+1) = 1/3
    rested = {**TIGHT, "preequilibrate": True}
    dosed = simulate(model, drugs={"testinib": "10 nM"}, time="48 h", t_eval=t, **rested)
    assert dosed["p_fraction"][0] == pytest.approx(0.5, rel=1e-6)  # at rest before the drug acts
    assert dosed.final("p_fraction") == pytest.approx(1 / 3, rel=1e-6)
    by_mass = simulate(model, drugs={"test-inhibitor": "5 ng/mL"}, time="48 h", t_eval=t, **rested)
    np.testing.assert_allclose(by_mass.species, dosed.species, rtol=1e-8)  # 5 ng/mL / 500 g/mol = 10 nM
    washed = simulate(model, drugs={"testinib": "10 nM"}, events=[("24 h", {"testinib": 0})], time="48 h",
                      t_eval=t, **rested)
    np.testing.assert_allclose(washed["p_fraction"][:24], dosed["p_fraction"][:24], rtol=1e-8)
    # after washout: relaxes back to 1/2 with rate kact + kdeact = 2/h
    expected = 0.5 - (0.5 - washed["p_fraction"][24]) * np.exp(-2.0 * (t[24:] - 24))
    np.testing.assert_allclose(washed["p_fraction"][24:], expected, rtol=1e-6)


def test_negative_and_unknown_doses_are_rejected(test_models):
    with pytest.raises(UnitError, match="negative"):
        simulate(test_models / "target.toml", drugs={"testinib": "-1 nM"})
    with pytest.raises(UnknownNameError, match="unknown drug"):
        simulate(test_models / "target.toml", drugs={"nodrug": "1 nM"})
    with pytest.raises(UnitError, match="expected nM"):
        simulate(test_models / "target.toml", drugs={"testinib": "1 h"})
