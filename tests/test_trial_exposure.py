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
    from her2sim.solvers.batch import simulate_batch
    from her2sim.solvers.solve import input_free, steady_state
    from her2sim.trial.exposure import background_parameters, network_for
    from her2sim.trial.hooks import load_hooks

    hooks = load_hooks("default")
    net = network_for(drugs)
    p = background_parameters(net, BG)
    p[net.parameter_index("CD16A_158V_fraction")] = hooks.host_levels("cd16a")["VF"]
    p[net.parameter_index("PDL1_level")] = hooks.host_levels("pdl1")["positive"]
    x0 = steady_state(net, net.x0, input_free(net, p))
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
    from her2sim.model.load import load_model
    from her2sim.model.network import compile_network

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


def test_payload_kill_ceilings_only_change_the_cell_count_equations():
    """The bystander reporter run sets the ADC kill ceilings to zero to keep the payload source
    standing: valid only if the ceilings change no payload, uptake or transport equation."""
    from her2sim.model.load import load_model
    from her2sim.model.network import compile_network
    from her2sim.trial.exposure import kill_parameters
    from her2sim.trial.hooks import load_hooks

    net = compile_network(load_model("default", drugs=["tdm1", "tdxd"]))
    rng = np.random.default_rng(1)
    x = net.x0 * rng.uniform(0.5, 1.5, net.n_species) + rng.uniform(0, 1, net.n_species)
    p = net.p0.copy()
    p[net.parameter_index("tdm1")] = p[net.parameter_index("tdxd")] = 10.0
    q = p.copy()
    q[kill_parameters(net, load_hooks("default"))[0]] = 0.0
    changed = {net.species_names[i] for i in np.flatnonzero(np.abs(net.rhs(x, q) - net.rhs(x, p)) > 1e-12)}
    assert changed == {"viable_cells", "viable_cells_her2low"}


@pytest.fixture(scope="module")
def adc_tables():
    """T-DXd and T-DM1 alone at about their clinical free tumour concentrations (80 and 36 nM)."""
    bgs = [BG, Background("zero", "wt", False)]
    return {d: compute_table([d], [c], bgs, hosts=[("VF", "positive")], multiples=(0.0, 1.0))
            for d, c in (("tdxd", 80.0), ("tdm1", 36.0))}


def test_bystander_is_measured_with_a_standing_source(adc_tables):
    """In vitro T-DXd kills its HER2-high source cells within a day; the bystander channel must
    report what neighbours get while the source is there (tumour.py weights it by the source
    share), i.e. the same order as the payload kill of the source cells, not the ~1/10 seen on the
    ordinary co-culture after the source has died."""
    v = adc_tables["tdxd"].values[0, 0, 1]            # HER2-high background, drug on
    payload, bystander = v[1], v[3]
    assert 0.3 * payload < bystander < 3.0 * payload


def test_permeable_payload_has_a_far_larger_bystander_effect(adc_tables):
    """Ogitani et al. 2016 Cancer Sci 107:1039: DXd kills HER2-negative cells co-cultured with
    HER2-positive cells, T-DM1's Lys-MCC-DM1 does not."""
    tdxd, tdm1 = adc_tables["tdxd"].values[0, 0, 1, 3], adc_tables["tdm1"].values[0, 0, 1, 3]
    assert tdxd > 10.0 * tdm1 > 0.0


def test_bystander_source_scales_with_antigen(adc_tables):
    """The payload pool comes from HER2-mediated uptake: a HER2-zero source releases far less.

    Since the version-2 ADC module, HER2-zero cells also take ADC up by fluid-phase pinocytosis
    (`adc_k_nonspecific` 0.01/h, models/network/adc.toml, assumed); the HER2-zero share is then
    about that rate over pinocytosis plus HER2-mediated uptake (measured 0.11; version 1 had no
    HER2-independent uptake, hence its 0.1 bound). "Far less" is kept as at least 5-fold."""
    v = adc_tables["tdxd"].values[:, 0, 1, 3]
    assert v[1] < 0.2 * v[0]


def test_pretreated_factor_scales_only_the_cross_resistant_signalling():
    from her2sim.trial.tumour import DailyRates

    rng = np.random.default_rng(0)
    dS, dR = rng.normal(size=(3, 4, 2, 3)).astype(np.float32), rng.normal(size=(3, 4, 2, 3)).astype(np.float32)
    byst = np.zeros((3, 4, 2), np.float32)
    every = DailyRates(dS, dR, byst)                      # all drugs cross-resistant
    s, r = every.signalling(0.25)
    np.testing.assert_allclose(s[..., 0], 0.25 * dS[..., 0], rtol=1e-6)
    np.testing.assert_array_equal(s[..., 1:], dS[..., 1:])
    np.testing.assert_allclose(r[..., 0], 0.25 * dR[..., 0], rtol=1e-6)
    xS, xR = 0.5 * dS[..., 0], np.zeros_like(dR[..., 0])
    part = DailyRates(dS, dR, byst, xS, xR)               # half of S's effect from a cross-resistant drug
    s, r = part.signalling(0.25)
    np.testing.assert_allclose(s[..., 0], dS[..., 0] - 0.75 * xS, rtol=1e-6)
    np.testing.assert_allclose(r[..., 0], dR[..., 0], rtol=1e-6)
    np.testing.assert_array_equal(part.signalling(1.0)[0], dS.astype(float))
