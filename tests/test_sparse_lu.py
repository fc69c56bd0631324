"""The batched sparse LU: symbolic analysis once, numeric factorisation and solves for a batch."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from her2sim import compile_network, load_model
from her2sim.solvers.sparse_lu import GROUPINGS, ORDERINGS, symbolic_lu

MODELS = sorted((Path(__file__).parent / "models").glob("*.toml"))
_NETS = {}


def network(path):
    if path not in _NETS:
        _NETS[path] = compile_network(load_model(path))
    return _NETS[path]


def dense_batch(n, rows, cols, vals, shift):
    """(B, n, n) matrices with entries ``vals`` (nnz, B) at the pattern plus diag(shift)."""
    B = vals.shape[1]
    A = np.zeros((B, n, n))
    np.add.at(A, (slice(None), rows, cols), vals.T)
    A[:, np.arange(n), np.arange(n)] += shift[:, None]
    return A


@st.composite
def patterns(draw):
    n = draw(st.integers(1, 25))
    density = draw(st.floats(0.0, 0.4))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    mask = rng.random((n, n)) < density
    if draw(st.booleans()):  # some patterns without the diagonal: it must be added
        mask[np.arange(n), np.arange(n)] = False
    rows, cols = np.nonzero(mask)
    return n, rows, cols, seed


@settings(max_examples=60, deadline=None)
@given(pattern=patterns(), ordering=st.sampled_from(ORDERINGS), grouping=st.sampled_from(GROUPINGS))
def test_solve_equals_numpy_on_random_patterns(pattern, ordering, grouping):
    n, rows, cols, seed = pattern
    rng = np.random.default_rng(seed + 1)
    lu = symbolic_lu(n, rows, cols, ordering=ordering, grouping=grouping)
    B = 6
    vals = rng.normal(size=(len(rows), B))
    shift = n + rng.uniform(1, 5, B)  # diagonally dominant: no pivoting needed
    V = lu.assemble(vals, shift)
    rpiv = lu.factor(V)
    b = rng.normal(size=(n, B))
    x = lu.solve(V, rpiv, b)
    expect = np.linalg.solve(dense_batch(n, rows, cols, vals, shift), b.T[..., None])[..., 0].T
    np.testing.assert_allclose(x, expect, rtol=1e-10, atol=1e-12)
    # the allocation-free path with factors gathered once gives the same solution
    G = lu.gather_factors(V, rpiv)
    out = np.full((n, B), np.nan)
    work = np.full((2 * n + lu.max_terms, B), np.nan)
    assert lu.solve_into(G, b, out, work) is out
    np.testing.assert_allclose(out, expect, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("path", MODELS, ids=[p.stem for p in MODELS])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), h_gamma=st.floats(1e-4, 1e3))
def test_rosenbrock_matrix_of_each_network_solves_like_numpy(path, seed, h_gamma):
    """I/(h*gamma) - J with the network's own pattern and random values, over a wide h range."""
    net = network(path)
    n = net.n_species
    rng = np.random.default_rng(seed)
    lu = symbolic_lu(n, net.jac_rows, net.jac_cols)
    B = 5
    J = rng.normal(size=(len(net.jac_rows), B))
    J[net.jac_rows == net.jac_cols] = -np.abs(J[net.jac_rows == net.jac_cols]) - n  # stable-ish diagonal
    shift = np.full(B, 1.0 / h_gamma)
    V = lu.assemble(J, shift, scale=-1.0)
    x = lu.solve(V, lu.factor(V), b := rng.normal(size=(n, B)))
    A = dense_batch(n, net.jac_rows, net.jac_cols, -J, shift)
    np.testing.assert_allclose(np.einsum("bij,jb->ib", A, x), b, rtol=1e-9, atol=1e-9 * np.abs(b).max())


def test_diagonal_is_always_in_the_pattern():
    lu = symbolic_lu(4, [0, 1], [1, 2])  # no diagonal given at all
    assert len(set(lu.diagonal.tolist())) == 4
    V = lu.assemble(np.array([[2.0], [3.0]]), np.array([1.0]))
    x = lu.solve(V, lu.factor(V), np.ones((4, 1)))
    A = np.eye(4)
    A[0, 1], A[1, 2] = 2.0, 3.0
    np.testing.assert_allclose(x[:, 0], np.linalg.solve(A, np.ones(4)))


def test_factors_reproduce_the_permuted_matrix():
    rng = np.random.default_rng(3)
    n = 12
    rows, cols = np.nonzero(rng.random((n, n)) < 0.25)
    lu = symbolic_lu(n, rows, cols)
    vals = rng.normal(size=(len(rows), 1))
    V = lu.assemble(vals, np.array([10.0]))
    A = dense_batch(n, rows, cols, vals, np.array([10.0]))[0]
    lu.factor(V)
    L, U = lu.to_dense(V)
    np.testing.assert_allclose(L @ U, A[np.ix_(lu.perm, lu.perm)], atol=1e-12)


def test_markowitz_order_has_no_more_fill_than_natural_on_an_arrow_matrix():
    n = 10  # arrow pointing up-left: natural order fills in completely, the right order not at all
    rows = np.r_[np.zeros(n, int), np.arange(n)]
    cols = np.r_[np.arange(n), np.zeros(n, int)]
    natural = symbolic_lu(n, rows, cols, ordering="natural")
    best = symbolic_lu(n, rows, cols, ordering="markowitz")
    assert natural.n_fill == (n - 1) * (n - 2)
    assert best.n_fill == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"ordering": "amd"}, "ordering must be one of"),
    ({"grouping": "pivot"}, "grouping must be one of"),
])
def test_invalid_options_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        symbolic_lu(3, [0], [1], **kwargs)


def test_out_of_range_pattern_is_rejected():
    with pytest.raises(ValueError, match="pattern indices"):
        symbolic_lu(3, [0, 3], [1, 1])
