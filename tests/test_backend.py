"""The array backends of the batch path (her2sim.solvers.backend, her2sim.solvers.batch_xp, ArrayLU, the array-API
code generator), run on CPU with array-api-strict: the reference implementation of the array API
standard, which rejects any call outside the standard (NumPy-only functions, implicit trailing
axes, NumPy scalars mixed with arrays, integer-array setitem). The same code runs on CuPy."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from her2sim import compile_network, load_model
from her2sim.model import expr as ex
from her2sim.solvers.backend import BACKENDS, resolve_backend
from her2sim.solvers.batch import simulate_batch
from her2sim.model.codegen import Dag
from her2sim.errors import InvalidArgument
from her2sim.solvers.sparse_lu import symbolic_lu

xp = pytest.importorskip("array_api_strict")
MODELS = Path(__file__).parent / "models"
_NETS = {}


def network(name):
    if name not in _NETS:
        _NETS[name] = compile_network(load_model(name if name == "default" else MODELS / name))
    return _NETS[name]


def varied(net, B, spread, seed=0):
    rng = np.random.default_rng(seed)
    return np.tile(net.p0, (B, 1)) * np.exp(rng.uniform(-spread, spread, (B, net.n_params)))


def agree(a, b):
    """Both runs took the same steps and their states agree to 1e-10 relative (1e-12 nM absolute,
    a thousandth of the integrator's atol, for states near zero)."""
    assert (a.status_code == b.status_code).all()
    assert (a.steps == b.steps).all() and (a.rejected == b.rejected).all()
    np.testing.assert_allclose(b.states, a.states, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- resolving
def test_resolve_names():
    assert resolve_backend("numpy").is_numpy and resolve_backend().is_numpy
    strict = resolve_backend("array-api-strict")
    assert strict.xp is xp and not strict.is_numpy
    assert resolve_backend(np).name == "numpy-array-api"  # a namespace: the array-API loop on NumPy
    assert resolve_backend(xp).xp is xp
    assert set(BACKENDS) == {"numpy", "cupy", "array-api-strict"}


@pytest.mark.parametrize("bad", ["torch", "CUPY", 3, object()])
def test_resolve_rejects_unknown(bad):
    with pytest.raises(InvalidArgument, match="backend must be one of") as info:
        resolve_backend(bad)
    assert "\n" not in str(info.value)


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_missing_is_one_line():
    with pytest.raises(InvalidArgument, match="pip install cupy") as info:
        simulate_batch(network("binding.toml"), t_eval=[1.0], backend="cupy")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kwargs, what", [
    ({"breakpoints": [(1.0, {"kdeg": 1.0})]}, "breakpoints"),
    ({"fixed_step": 0.1}, "fixed_step"),
    ({"workers": 2}, "workers"),
    ({"slab": 0}, "slab"),
])
def test_unsupported_options_fail_before_work(kwargs, what):
    with pytest.raises(InvalidArgument, match=what):
        simulate_batch(network("binding.toml"), P=varied(network("binding.toml"), 3, 0.1), t_eval=[1.0, 2.0],
                       backend="array-api-strict", **kwargs)


# ----------------------------------------------------------------------------- agreement with NumPy
@pytest.mark.parametrize("method", ["rodas4", "rodas5p"])
@pytest.mark.parametrize("backend", ["array-api-strict", np])  # np: array-api-compat's NumPy, as for CuPy
def test_strict_matches_numpy_small_model(method, backend):
    net = network("binding.toml")
    P = varied(net, 6, 0.5)
    t = np.linspace(0.0, 6.0, 7)
    a = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, method=method, certify=None)
    b = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, method=method, certify=None, backend=backend,
                       slab=4)  # two slabs
    assert b.attrs["backend"] == resolve_backend(backend).name != "numpy" and isinstance(b.states, np.ndarray)
    assert a.ok.all()
    agree(a, b)


def test_strict_matches_numpy_default_model():
    """The HER2 model: 3 members, 2 h, output at the start and in between (dense output)."""
    net = network("default")
    P = varied(net, 3, 0.3)
    t = np.linspace(0.0, 2.0, 3)
    a = simulate_batch(net, P=P, t_eval=t, rtol=1e-4, method="rodas5p", certify=None)
    b = simulate_batch(net, P=P, t_eval=t, rtol=1e-4, method="rodas5p", certify=None, backend="array-api-strict")
    assert a.ok.all()
    agree(a, b)


def test_failures_match_numpy():
    """A member with a NaN parameter fails (not finite), one hits max_steps, the rest finish: the
    same statuses, steps and outputs as the NumPy path."""
    net = network("binding.toml")
    P = varied(net, 5, 0.5)
    P[1, net.parameter_index("kdeg")] = np.nan
    t = np.linspace(0.0, 4.0, 5)
    a = simulate_batch(net, P=P, t_eval=t, rtol=1e-5, certify=None)
    b = simulate_batch(net, P=P, t_eval=t, rtol=1e-5, certify=None, backend="array-api-strict")
    assert a.status_code[1] == 3 and b.messages[1] == a.messages[1]
    agree(a, b)
    a = simulate_batch(net, P=P[[0, 2]], t_eval=t, max_steps=5, certify=None)
    b = simulate_batch(net, P=P[[0, 2]], t_eval=t, max_steps=5, certify=None, backend="array-api-strict")
    assert (a.status_code == 1).all() and b.messages == a.messages
    agree(a, b)


def test_strict_rejects_numpy_idioms():
    """The strict namespace really is strict: the NumPy-flavoured evaluator (implicit trailing axes)
    fails on its arrays, so a non-standard call in the array-API path could not pass unnoticed."""
    net = network("binding.toml")
    x, p = xp.asarray(np.tile(net.x0[:, None], (1, 3))), xp.asarray(np.tile(net.p0[:, None], (1, 3)))
    with pytest.raises(IndexError):
        net.rhs_T(x, p, xp.empty((net.n_species, 3)))
    rhs, _ = net.array_api_functions(xp)
    np.testing.assert_allclose(np.from_dlpack(rhs(x, p, xp.empty((net.n_species, 3)))),
                               net.rhs_T(np.tile(net.x0[:, None], (1, 3)), np.tile(net.p0[:, None], (1, 3))))


# ----------------------------------------------------------------------------- building blocks
FORMULAS = ["exp(-x0) * p0 + sqrt(x1)", "min(x0, p0) - max(x1, 0.5)", "x0**2.5 / (1 + x1**2)",
            "piecewise(x0, x0 < x1, p0, x1 >= 3, 0.25)", "piecewise(1, x0 < x1, 0.5) + piecewise(2, p0 > 1, x1)", "log(x0 + 1) + log10(p0 + 1) + abs(x0 - x1)",
            "hill(x0, p0 + 0.5, 2) + inhibit(x1, 1.5) + mm(x0, p0 + 2)",
            "tanh(x0) + atan(x1) + floor(x0 * 3) + ceil(p0) + acosh(x1 + 1)"]


@pytest.mark.parametrize("formula", FORMULAS)
def test_codegen_array_api_matches_numpy(formula):
    dag = Dag({"x0": 0, "x1": 1}, {"p0": 0})
    ids = [dag.intern(ex.simplify(ex.expand(ex.parse(formula))))]
    rng = np.random.default_rng(1)
    x, p = rng.uniform(0.1, 4.0, (2, 50)), rng.uniform(0.0, 2.0, (1, 50))
    want = dag.function(ids, "array", into=True)(x, p, np.empty((1, 50)))
    got = dag.function(ids, "array-api", into=True, xp=xp)(xp.asarray(x), xp.asarray(p), xp.empty((1, 50)))
    np.testing.assert_allclose(np.from_dlpack(got), want, rtol=1e-14)


@pytest.mark.parametrize("seed", range(4))
def test_array_lu_matches_numpy_lu(seed):
    rng = np.random.default_rng(seed)
    n, B = 12, 7
    mask = rng.random((n, n)) < 0.25
    rows, cols = np.nonzero(mask)
    lu = symbolic_lu(n, rows, cols)
    vals = rng.normal(size=(len(rows), B))
    shift = 5.0 + rng.random(B)
    b = rng.normal(size=(n, B))
    V = lu.assemble(vals, shift, scale=-1.0)
    want = lu.solve(V, lu.factor(V), b.copy())
    alu = lu.on(xp)
    Vx = alu.assemble(xp.asarray(vals), xp.asarray(shift), scale=-1.0)
    got = alu.solve(Vx, alu.factor(Vx), xp.asarray(b))
    np.testing.assert_allclose(np.from_dlpack(got), want, rtol=1e-12, atol=1e-14)
    A = -np.zeros((B, n, n))
    A[:, rows, cols] = -vals.T
    A[:, np.arange(n), np.arange(n)] += shift[:, None]
    np.testing.assert_allclose(np.einsum("bij,jb->ib", A, np.from_dlpack(got)), b, atol=1e-10)
