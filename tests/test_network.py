"""The compiled network: stoichiometry, vectorised rates, analytic Jacobian, conservation laws."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2sim import compile_network, load_model
from her2sim.model.load import list_bundled, models_dir
from her2sim.model.network import conservation_laws, describe_conservation

TEST_MODELS = sorted((Path(__file__).parent / "models").glob("*.toml"))


def _bundled_networks():
    """Every bundled model, plus the default with every drug and with every variant."""
    out = [pytest.param(("path", str(p)), id=p.stem) for p in TEST_MODELS]
    listing = list_bundled()
    for name, _ in listing["models"]:
        out.append(pytest.param(("model", name), id=f"bundled-{name}"))
    if (models_dir() / "default.toml").exists():
        out.append(pytest.param(("all_drugs", "default"), id="default+all-drugs"))
        for name, _ in listing["variants"] + listing["backgrounds"]:
            out.append(pytest.param(("variant", name), id=f"default+{name}"))
    return out


_CACHE = {}


def network_for(case):
    if case not in _CACHE:
        kind, name = case
        if kind in ("path", "model"):
            spec = load_model(name)
        elif kind == "all_drugs":
            spec = load_model(name, drugs=[d for d, _ in list_bundled()["drugs"]])
        else:
            spec = load_model("default", variants=[name])
        _CACHE[case] = compile_network(spec)
    return _CACHE[case]


@pytest.mark.parametrize("case", _bundled_networks())
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1))
def test_jacobian_equals_finite_differences(case, seed):
    net = network_for(case)
    rng = np.random.default_rng(seed)
    scale = np.maximum(net.x0, 1.0)
    x = scale * rng.uniform(0.2, 1.5, net.n_species)
    p = net.p0 * rng.uniform(0.5, 1.5, net.n_params)
    for d in net.spec.drugs:  # exercise drug terms with a non-zero dose
        p[net.parameter_index(d.dose_parameter)] = rng.uniform(1, 100)
    J = net.jacobian(x, p)
    fd = np.empty_like(J)
    for j in range(net.n_species):
        h = 1e-6 * max(abs(x[j]), 1e-3)
        xp, xm = x.copy(), x.copy()
        xp[j] += h
        xm[j] -= h
        fd[:, j] = (net.rhs(xp, p) - net.rhs(xm, p)) / (2 * h)
    scale_rows = np.maximum(np.abs(J).max(axis=1, keepdims=True), 1e-8)
    np.testing.assert_allclose(J / scale_rows, fd / scale_rows, atol=2e-5)


@pytest.mark.parametrize("case", _bundled_networks()[: len(TEST_MODELS) + 1])
def test_batch_evaluation_equals_member_by_member(case):
    net = network_for(case)
    rng = np.random.default_rng(1)
    B = 7
    X = np.maximum(net.x0, 1.0) * rng.uniform(0.1, 2, (B, net.n_species))
    P = net.p0 * rng.uniform(0.5, 2, (B, net.n_params))
    rhs, jac, obs = net.rhs(X, P), net.jacobian_values(X, P), net.observables(X, P)
    for b in range(B):
        np.testing.assert_allclose(rhs[b], net.rhs(X[b], P[b]), rtol=1e-12, atol=0)
        np.testing.assert_allclose(jac[b], net.jacobian_values(X[b], P[b]), rtol=1e-12, atol=0)
        np.testing.assert_allclose(obs[b], net.observables(X[b], P[b]), rtol=1e-12, atol=0)


def test_stoichiometry_and_conservation_of_binding_model(test_models):
    net = compile_network(load_model(test_models / "binding.toml"))
    assert net.stoichiometry.shape == (4, 3)
    C = net.conservation_laws
    assert np.all(C @ net.stoichiometry == 0)
    assert sorted(describe_conservation(net)) == ["A + C = const", "A - B = const"]


@given(st.lists(st.lists(st.integers(-2, 2), min_size=5, max_size=5), min_size=1, max_size=8))
def test_conservation_laws_span_the_left_null_space(columns):
    N = np.array(columns, dtype=float).T  # (5 species, R reactions)
    C = conservation_laws(N)
    assert np.all(C @ N == 0)
    assert C.shape[0] == N.shape[0] - np.linalg.matrix_rank(N)


def test_network_pickles(test_models):
    import pickle

    net = compile_network(load_model(test_models / "binding.toml"))
    clone = pickle.loads(pickle.dumps(net))
    x = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(clone.rhs(x, net.p0), net.rhs(x, net.p0))


def test_network_is_frozen(test_models):
    """Nothing writes into a compiled Network: no attribute can be set or added, its arrays are
    read-only (also after a pickle round trip), and a rest-state cache lives elsewhere (RestCache)."""
    import dataclasses
    import pickle

    net = compile_network(load_model(test_models / "binding.toml"))
    for name, value in (("p0", np.zeros(net.n_params)), ("species_names", ()), ("_rest_cache", {})):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(net, name, value)
    with pytest.raises(dataclasses.FrozenInstanceError):
        del net.x0
    for clone in (net, pickle.loads(pickle.dumps(net))):
        for arr in (clone.p0, clone.x0, clone.stoichiometry, clone.jac_rows, clone.preequilibrate_mask):
            with pytest.raises(ValueError, match="read-only"):
                arr[0] = 1.0
    assert not hasattr(net, "_rest_cache") and net.p0[0] == load_model(test_models / "binding.toml").parameters[0].value


def test_shape_errors_are_clear(test_models):
    net = compile_network(load_model(test_models / "binding.toml"))
    with pytest.raises(ValueError, match=r"shape \(B, 4\)"):
        net.rhs(np.ones(3), net.p0)
