"""Exposure-response tables: the three rate channels, host re-evaluation, the binding-site barrier."""

import numpy as np
import pytest

from her2sim.trial.exposure import OUTPUTS, Background, compute_table
from her2sim.trial.trial import her2_antibodies, reached_fraction

BG = Background("high", "wt", False)


@pytest.fixture(scope="module")
def table():
    """T-DXd (ADC) + capecitabine (chemotherapy) + lapatinib (signalling), two levels each."""
    return compute_table(["tdxd", "capecitabine", "lapatinib"], [80.0, 200.0, 25.0], [BG], hosts=[("VF", "positive")],
                         multiples=(0.0, 1.0))


def _net_rate(drugs, conc):
    """Independent reference: the network's mean per-capita net rate of the HER2-high cells over 24-72 h."""
    from her2sim.batch import simulate_batch
    from her2sim.solve import _input_free, steady_state
    from her2sim.trial.exposure import CD16A, PDL1, _network_for, background_parameters

    net = _network_for(drugs)
    p = background_parameters(net, BG)
    p[net.parameter_index("CD16A_158V_fraction")], p[net.parameter_index("PDL1_level")] = CD16A["VF"], PDL1["positive"]
    x0 = steady_state(net, net.x0, _input_free(net, p))
    for d, c in zip(drugs, conc):
        p[net.parameter_index(net.spec.drug(d).dose_parameter)] = c
    t = np.linspace(24.0, 72.0, 9)
    res = simulate_batch(net, x0[None, :], p[None, :], t_eval=t, t_span=(0.0, 72.0), rtol=1e-4, atol=1e-8)
    X = res.states[0]
    j = net.species_names.index("viable_cells")
    rate = net.rhs(X, np.tile(p, (len(t), 1)))[:, j] / X[:, j]
    return np.trapezoid(rate, t) / (t[-1] - t[0])


def test_channels_add_up_to_the_network_net_rate(table):
    v = table.values[0, 0]                       # (2, 2, 2, 4)
    assert OUTPUTS == ("signal", "payload", "chemo", "bystander")
    full = v[1, 1, 1]
    ref = _net_rate(["tdxd", "capecitabine", "lapatinib"], table.levels[:, 1])
    assert full[0] - full[1] - full[2] == pytest.approx(ref, rel=2e-3, abs=1e-6)


def test_each_kill_channel_belongs_to_its_drug_class(table):
    v = table.values[0, 0]
    np.testing.assert_allclose(v[0, 0, 0, 1:], 0.0, atol=1e-12)       # no drug: no kill, no bystander
    assert v[1, 0, 0, 1] > 0 and v[1, 0, 0, 2] == pytest.approx(0.0, abs=1e-12)   # T-DXd alone: payload only
    assert v[0, 1, 0, 2] > 0 and v[0, 1, 0, 1] == pytest.approx(0.0, abs=1e-12)   # capecitabine alone: chemo only
    assert v[0, 0, 1, 1] == v[0, 0, 1, 2] == pytest.approx(0.0, abs=1e-12)        # lapatinib: signalling only
    assert v[0, 0, 1, 0] < v[0, 0, 0, 0]                                          # ... and it slows growth


def test_binding_site_barrier():
    assert her2_antibodies(["tucatinib", "trastuzumab", "capecitabine", "tdxd", "pertuzumab", "atezolizumab"]) == [1, 3, 4]
    np.testing.assert_allclose(reached_fraction(np.array([0.0, 4.0, 40.0, 400.0]), np.full(4, 40.0)), [0, 0.1, 1, 1])


def test_host_parameters_only_change_the_cell_count_equations():
    """The exposure tables re-evaluate CD16A / PD-L1 settings on shared states: valid only if these
    parameters enter no equation but the cell counts'."""
    from her2sim.load import load_model
    from her2sim.network import compile_network

    net = compile_network(load_model("default", drugs=["trastuzumab", "tdxd"]))
    rng = np.random.default_rng(0)
    x = net.x0 * rng.uniform(0.5, 1.5, net.n_species) + rng.uniform(0, 1, net.n_species)
    p = net.p0.copy()
    p[net.parameter_index("trastuzumab")] = 10.0
    p[net.parameter_index("tdxd")] = 10.0
    allowed = {"viable_cells", "viable_cells_her2low"}
    for name in ("CD16A_158V_fraction", "PDL1_level"):
        q = p.copy()
        q[net.parameter_index(name)] = 0.123
        changed = {net.species_names[i] for i in np.flatnonzero(np.abs(net.rhs(x, q) - net.rhs(x, p)) > 1e-12)}
        assert changed <= allowed, (name, changed)
