"""The accuracy certificate of every batch (her2sim.solvers.certify): it measures the batch's real error,
it catches an inaccurate run, and it checks only the sample it says it checks."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from her2sim import compile_network, load_model
from her2sim.solvers.batch import breakpoints_from_conditions, simulate_batch
from her2sim.solvers.certify import CertifyOptions, sample_members
from her2sim.solvers.solve import Condition

MODELS = Path(__file__).parent / "models"
FLOOR = 1e-3  # nM, the certificate's default floor
_NETS = {}


def net_of(name):
    if name not in _NETS:
        _NETS[name] = compile_network(load_model(MODELS / name))
    return _NETS[name]


def varied(net, B, seed):
    rng = np.random.default_rng(seed)
    return net.p0 * np.exp(rng.uniform(-np.log(2), np.log(2), (B, net.n_params)))


def true_error(net, states, p, t):
    """The batch member's error against an independent tight Radau run (rtol 1e-11)."""
    ref = solve_ivp(lambda _, y: net.rhs(y, p), (0.0, t[-1]), net.x0, method="Radau", t_eval=t, rtol=1e-11,
                    atol=1e-14, jac=lambda _, y: net.jacobian(y, p)).y.T
    return float(np.max(np.abs(states - ref) / np.maximum(np.abs(ref), FLOOR)))


@pytest.mark.parametrize("rtol", [1e-4, 1e-7])
def test_the_certificate_equals_the_true_error_of_the_sampled_members(rtol):
    net = net_of("batch_chain.toml")
    t = np.linspace(0, 48, 49)
    P = varied(net, 600, seed=3)
    res = simulate_batch(net, P=P, t_eval=t, rtol=rtol, atol=1e-9)
    cert = res.attrs["certificate"]
    assert len(cert["members"]) == 3 == math.ceil(0.005 * 600)  # 0.5 % of the batch
    assert cert["max_rel_error"] == max(cert["per_member"]) and cert["n_members"] == 600
    for i, e in zip(cert["members"], cert["per_member"]):
        exact = true_error(net, res.states[i], P[i], t)
        assert abs(e - exact) <= 0.1 * exact  # the reference is 20x tighter: within a few per cent
    assert "Radau" in cert["reference"] and "max(|x_ref|, 0.001 nM)" in cert["measure"]


def test_the_certificate_catches_an_inaccurate_run():
    """A loose tolerance and a too-large fixed step (no error control, nominal rtol 1e-6) are
    both flagged; the accurate run is certified near its tolerance."""
    net = net_of("batch_chain.toml")
    t = np.linspace(0, 48, 49)
    P = varied(net, 200, seed=4)
    good = simulate_batch(net, P=P, t_eval=t, rtol=1e-7).attrs["certificate"]["max_rel_error"]
    loose = simulate_batch(net, P=P, t_eval=t, rtol=1e-2).attrs["certificate"]["max_rel_error"]
    coarse = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, fixed_step=4.0).attrs["certificate"]["max_rel_error"]
    assert good < 1e-5
    assert loose > 1e-3 and loose > 100 * good
    assert coarse > 1e-4 and coarse > 100 * good


def test_the_sample_is_seeded_sized_and_drawn_from_finished_members():
    ok = np.ones(1000, dtype=bool)
    ok[::2] = False  # half the members failed
    a = sample_members(ok, CertifyOptions())
    assert len(a) == 5 and ok[a].all() and np.all(np.diff(a) > 0)
    np.testing.assert_array_equal(a, sample_members(ok, CertifyOptions()))
    assert not np.array_equal(a, sample_members(ok, CertifyOptions(seed=1)))
    assert len(sample_members(ok[:10], CertifyOptions())) == 2                 # at least 2
    assert len(sample_members(ok[:10], CertifyOptions(fraction=1.0))) == 5    # all finished ones
    assert len(sample_members(np.zeros(4, dtype=bool), CertifyOptions())) == 0


def test_a_failed_member_is_never_certified_and_workers_give_the_same_certificate():
    net = net_of("batch_chain.toml")
    P = varied(net, 8, seed=2)
    P[:, 0] = np.where(np.arange(8) % 2 == 0, np.nan, P[:, 0])  # every other member fails
    t = np.linspace(0, 12, 13)
    one = simulate_batch(net, P=P, t_eval=t, certify=CertifyOptions(fraction=1.0))
    two = simulate_batch(net, P=P, t_eval=t, certify=CertifyOptions(fraction=1.0), workers=2)
    c1, c2 = one.attrs["certificate"], two.attrs["certificate"]
    assert c1["members"] == [1, 3, 5, 7] == c2["members"]
    assert c1["per_member"] == c2["per_member"] and np.isfinite(c1["max_rel_error"])


def test_breakpoints_are_followed_by_the_reference():
    net = net_of("batch_chain.toml")
    t = np.linspace(0, 72, 73)
    conds = [Condition({"drug": 100.0}, {}, ((24.0, {"drug": 0.0}),)),
             Condition({"drug": 10.0}, {"kcat": 80.0}, ((12.5, {"drug": 0.0}), (40.0, {"drug": 50.0}))),
             Condition({"drug": 300.0}, {}, ((36.0, {"drug": 0.0}),))]
    P, bps = breakpoints_from_conditions(net, conds)
    res = simulate_batch(net, P=P, t_eval=t, breakpoints=bps, rtol=1e-6, certify=1.0)
    cert = res.attrs["certificate"]
    assert cert["members"] == [0, 1, 2] and cert["max_rel_error"] < 1e-5
    # without the washouts the reference would disagree with the batch by far more
    plain = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, certify=None)
    assert np.max(np.abs(plain.states - res.states)) > 1.0


def test_the_certificate_can_be_turned_off_and_reaches_result_attrs():
    net = net_of("binding.toml")
    t = np.linspace(0, 4, 5)
    for off in (None, 0, False):
        assert simulate_batch(net, t_eval=t, certify=off).attrs["certificate"] is None
    res = simulate_batch(net, t_eval=t)
    assert res.to_result(net).attrs["certificate"]["members"] == [0]


@pytest.mark.parametrize("certify, match", [(1.5, "fraction must be in"), (-0.1, "fraction must be in"),
                                             ("yes", "certify must be"),
                                             (CertifyOptions, "certify must be")])
def test_bad_certify_arguments_are_named(certify, match):
    net = net_of("binding.toml")
    with pytest.raises(ValueError, match=match):
        simulate_batch(net, t_eval=[0.0, 1.0], certify=certify)
    with pytest.raises(ValueError, match="floor"):
        CertifyOptions(floor=0.0)
