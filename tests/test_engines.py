"""Both engines behind one signature: integrate(network, X0, P, t_eval, breakpoints, options)."""

from pathlib import Path

import numpy as np
import pytest

from her2sim import compile_network, load_model, simulate
from her2sim.solvers.engines import SolverOptions, integrate, parameters_over_time
from her2sim.errors import IntegrationError, InvalidArgument
from her2sim.solvers.status import Status

MODELS = Path(__file__).parent / "models"
TIGHT = {"rtol": 1e-9, "atol": 1e-12}


@pytest.fixture(scope="module")
def binding():
    return compile_network(load_model(MODELS / "binding.toml"))


def decay_closed_form(t, k1, k2, t_switch, d0=5.0):
    """D(t) for first-order decay at rate k1, then k2 from t_switch on (1/h, h, nM)."""
    t = np.asarray(t, dtype=float)
    before = d0 * np.exp(-k1 * t)
    after = d0 * np.exp(-k1 * t_switch) * np.exp(-k2 * (t - t_switch))
    return np.where(t < t_switch, before, after)


@pytest.mark.parametrize("engine", ["batch", "scipy"])
def test_both_engines_honour_per_member_breakpoints(binding, engine):
    """Member 0 switches kdeg at 1 h, member 1 at 2.5 h, member 2 never (time inf, value NaN)."""
    net = binding
    P = np.tile(net.p0, (3, 1))
    X0 = np.tile(net.x0, (3, 1))
    k1 = net.p0[net.parameter_index("kdeg")]
    switch = np.array([1.0, 2.5, np.inf])
    k2 = np.array([3.0, 0.1, np.nan])
    grid = np.linspace(0.0, 4.0, 17)
    run = integrate(net, X0, P, grid, [(switch, {"kdeg": k2})], SolverOptions(engine, **TIGHT))
    assert run.states.shape == (3, 17, net.n_species) and run.parameters.shape == (3, 17, net.n_params)
    assert run.ok.all() and run.messages == ("", "", "")
    D = run.states[:, :, net.species_index("D")]
    np.testing.assert_allclose(D[0], decay_closed_form(grid, k1, 3.0, 1.0), rtol=1e-6)
    np.testing.assert_allclose(D[1], decay_closed_form(grid, k1, 0.1, 2.5), rtol=1e-6)
    np.testing.assert_allclose(D[2], 5.0 * np.exp(-k1 * grid), rtol=1e-6)
    kd = run.parameters[:, :, net.parameter_index("kdeg")]  # the parameters in force at each output time
    np.testing.assert_array_equal(kd[0], np.where(grid >= 1.0, 3.0, k1))
    np.testing.assert_array_equal(kd[1], np.where(grid >= 2.5, 0.1, k1))
    np.testing.assert_array_equal(kd[2], np.full(17, k1))


def test_the_engines_agree_with_each_other(binding):
    net = binding
    P = np.tile(net.p0, (4, 1))
    P[:, net.parameter_index("kon")] *= np.array([0.5, 1.0, 2.0, 4.0])
    X0 = np.tile(net.x0, (4, 1))
    grid = np.linspace(0.0, 2.0, 9)
    bps = [(np.full(4, 0.75), {"koff": np.array([1.0, 2.0, 3.0, 4.0])})]
    a = integrate(net, X0, P, grid, bps, SolverOptions("batch", **TIGHT))
    b = integrate(net, X0, P, grid, bps, SolverOptions("scipy", **TIGHT))
    np.testing.assert_allclose(a.states, b.states, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(a.parameters, b.parameters)
    assert a.steps > 0 and b.steps == 0 and b.attrs["block"]


@pytest.mark.parametrize("engine", ["batch", "scipy"])
def test_a_failing_member_keeps_its_row_with_a_status(binding, engine):
    net = binding
    P = np.tile(net.p0, (2, 1))
    X0 = np.tile(net.x0, (2, 1))
    P[1, net.parameter_index("kdeg")] = np.inf  # d/dt of D is not finite
    run = integrate(net, X0, P, np.linspace(0.0, 1.0, 3), None, SolverOptions(engine, block=False))
    assert run.ok.tolist() == [True, False] and run.messages[0] == ""
    assert not Status(int(run.status[1])).is_successful and run.messages[1]
    assert np.isfinite(run.states[0]).all() and np.isnan(run.states[1]).all()


def test_parameters_over_time_applies_breakpoints_in_time_order(binding):
    net = binding
    P = np.tile(net.p0, (2, 1))
    j = net.parameter_index("kdeg")
    # given out of order: member 0's later change is listed first
    bps = [(np.array([2.0, np.inf]), {"kdeg": np.array([7.0, np.nan])}), (np.array([1.0, 1.0]), {"kdeg": 4.0})]
    out = parameters_over_time(net, P, bps, [0.0, 1.0, 1.5, 2.0, 3.0])
    np.testing.assert_array_equal(out[0, :, j], [P[0, j], 4.0, 4.0, 7.0, 7.0])
    np.testing.assert_array_equal(out[1, :, j], [P[1, j], 4.0, 4.0, 4.0, 4.0])


def test_solver_options_are_checked_before_any_work(binding):
    with pytest.raises(InvalidArgument, match="engine must be one of 'batch', 'scipy'"):
        SolverOptions("cvode")
    with pytest.raises(InvalidArgument, match="method must be one of 'auto', 'rodas4'"):
        SolverOptions("batch", method="LSODA")
    with pytest.raises(InvalidArgument, match="method must be one of 'LSODA'"):
        SolverOptions("scipy", method="rodas4")
    with pytest.raises(InvalidArgument, match="rtol"):
        SolverOptions(rtol=2.0)
    with pytest.raises(InvalidArgument, match="max_steps"):
        SolverOptions(max_steps=0)
    with pytest.raises(InvalidArgument, match="options must be a her2sim.solvers.engines.SolverOptions"):
        integrate(binding, binding.x0, binding.p0, [0.0, 1.0], None, {"rtol": 1e-6})
    with pytest.raises(InvalidArgument, match="X0 must be"):
        integrate(binding, np.ones(3), binding.p0, [0.0, 1.0])
    with pytest.raises(InvalidArgument, match="t_eval must be increasing"):
        integrate(binding, binding.x0, binding.p0, [1.0, 0.5])


def test_simulate_runs_on_either_engine_with_a_washout():
    """The user-facing simulate(engine=) sits above both engines; a washout at 6 h is honoured by both."""
    kwargs = {"drugs": {"lapatinib": "1 uM"}, "events": [(6.0, {"lapatinib": 0.0})], "time": "12 h",
              "t_eval": np.linspace(0.0, 12.0, 13), "rtol": 1e-8, "atol": 1e-10}
    s = simulate("default", engine="scipy", **kwargs)
    b = simulate("default", engine="batch", **kwargs)
    assert s.attrs["solver_engine"] == "scipy" and b.attrs["solver_engine"] == "batch"
    np.testing.assert_allclose(b.observables, s.observables, rtol=1e-4, atol=1e-7)
    held = simulate("default", engine="batch", **{**kwargs, "events": []})
    k = list(s.time).index(12.0)
    # without the washout the end point differs: the event is not ignored
    assert np.max(np.abs(held.observables[0, k] - b.observables[0, k])) > 1e-3


def test_simulate_batch_engine_checks_its_method_and_raises_for_a_single_failure(test_models):
    with pytest.raises(InvalidArgument, match="method must be one of 'auto', 'rodas4'"):
        simulate(test_models / "decay.toml", engine="batch", method="LSODA")
    with pytest.raises(IntegrationError, match="max_steps"):
        simulate(test_models / "decay.toml", engine="batch", parameters={"k": 1e300}, max_steps=5, time="10 h",
                 preequilibrate=False)
