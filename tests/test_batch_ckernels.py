"""The compiled C kernels of the NumPy batch integrator (her2sim.solvers.ckernels): built with the system C
compiler, checked against NumPy, used by simulate_batch(fused=...), with a one-line fallback."""

import glob
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from her2sim import compile_network, load_model
from her2sim.solvers import batch as batch_module
from her2sim.solvers import ckernels
from her2sim.model import expr as ex
from her2sim.solvers.batch import breakpoints_from_conditions, lu_plan, simulate_batch
from her2sim.model.codegen import Dag
from her2sim.solvers.codegen_c import SIMD_FUNCTIONS, expression_body
from her2sim.errors import InvalidArgument
from her2sim.solvers.solve import Condition

MODELS = Path(__file__).parent / "models"
needs_cc = pytest.mark.skipif(ckernels.find_compiler() is None, reason="no C compiler (cc/gcc) on PATH")
_NETS = {}


def network(name):
    if name not in _NETS:
        _NETS[name] = compile_network(load_model(name if name == "default" else MODELS / name))
    return _NETS[name]


@pytest.fixture(scope="module")
def kernels():
    """name -> CpuKernels for that model (built once per test module: the cache the caller owns)."""
    cache = ckernels.KernelCache()

    def get(name):
        net = network(name)
        k = cache.get(net, lu_plan(net), "markowitz")
        assert k is not None, "the kernels failed their build or self-check"
        return k
    return get


def rel(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.max(np.abs(b), axis=0, keepdims=True), 1e-300)))


@needs_cc
@pytest.mark.parametrize("name", ["binding.toml", "mm.toml", pytest.param("default", marks=pytest.mark.slow)])
def test_kernels_match_numpy(name, kernels):
    """rhs, Jacobian and the LU solve of (shift I - J) x = b agree with the NumPy path to 1e-13 on
    random states, parameters and shifts (other members than the build's self-check), on a batch
    size that is not a multiple of the vector width (the loop's scalar remainder runs too)."""
    net, k = network(name), kernels(name)
    plan = lu_plan(net)
    rng = np.random.default_rng(7)
    B = 37
    x = np.abs(net.x0)[:, None] * np.exp(rng.uniform(-1, 1, (net.n_species, B))) + rng.uniform(0, 5, (net.n_species, B))
    p = net.p0[:, None] * np.exp(rng.uniform(-0.7, 0.7, (net.n_params, B)))
    assert rel(k.rhs(x, p), net.rhs_T(x, p)) < 1e-13
    J = k.jac(x, p)
    Jn = net.jacobian_values_T(x, p)
    assert rel(J, Jn) < 1e-13
    shift, b = 10.0 ** rng.uniform(-1, 3, B), rng.normal(size=(net.n_species, B))
    V = plan.assemble(Jn, shift, scale=-1.0)
    want = plan.solve(V, plan.factor(V), b.copy())
    assert rel(k.solve(k.factor(J, shift), b), want) < 1e-13
    for b_size in (1, 8, 9):  # a member's result does not depend on its place in the vector loop
        np.testing.assert_array_equal(k.rhs(x[:, :b_size], p[:, :b_size]), k.rhs(x, p)[:, :b_size])


@needs_cc
def test_vectorised_library_functions_match_numpy(tmp_path):
    """Every libm function behind its SIMD wrapper (h2v_*), in a loop compiled with the flags of
    the right-hand side, against NumPy (exact for the correctly rounded ones, 1e-15 otherwise)."""
    import ctypes
    import subprocess

    formulas = ["exp(x0 - 2) + log(x1) + log10(p0 + 1) + x0**p0 + x0**2.5", "sin(x0) * cos(x1) + tan(p0)",
                "asin(p0 / 3) + acos(p0 / 3) + atan(x1) + sinh(x0) + cosh(p0) + tanh(x1)",
                "asinh(x0) + acosh(x1 + 1) + atanh(p0 / 3) + sqrt(x0) + abs(x1 - 2) + floor(x0) + ceil(x1)",
                "min(x0, log(p0 - 1)) + max(x1, 2)"]
    dag = Dag({"x0": 0, "x1": 1}, {"p0": 0})
    ids = [dag.intern(ex.simplify(ex.expand(ex.parse(f)))) for f in formulas]
    body = expression_body(dag, ids, functions=SIMD_FUNCTIONS)
    src = tmp_path / "h2_rhs.c"
    src.write_text(ckernels.function_source("h2_rhs", body))
    so = tmp_path / "h2_rhs.so"
    subprocess.run([ckernels.find_compiler(), *ckernels.BASE_FLAGS, *ckernels.EXTRA_FLAGS["h2_rhs"], "-o", str(so),
                    str(src), "-lm"], check=True, capture_output=True)
    fn = ctypes.CDLL(str(so)).h2_rhs
    fn.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_longlong]
    rng = np.random.default_rng(2)
    x, p = rng.uniform(0.1, 4.0, (2, 67)), rng.uniform(0.0, 2.0, (1, 67))
    out = np.empty((len(ids), 67))
    fn(x.ctypes.data, p.ctypes.data, out.ctypes.data, 67)
    with np.errstate(all="ignore"):
        want = dag.function(ids, "array", into=True)(x, p, np.empty_like(out))
    assert np.array_equal(np.isnan(out), np.isnan(want))
    np.testing.assert_allclose(out, want, rtol=1e-15, atol=0)


@needs_cc
def test_batch_with_kernels_takes_the_numpy_steps_and_matches_radau(kernels):
    """simulate_batch with the C kernels: the same steps and rejections as the NumPy operations,
    states within 1e-10, and within tolerance of a tight Radau reference."""
    net = network("mm.toml")
    rng = np.random.default_rng(0)
    P = net.p0 * np.exp(rng.uniform(-0.5, 0.5, (9, net.n_params)))
    t = np.linspace(0, 24, 25)
    for method in ("rodas5p", "rodas4"):
        c = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, method=method, fused=kernels("mm.toml"))
        n = simulate_batch(net, P=P, t_eval=t, rtol=1e-6, method=method, fused=False)
        assert c.attrs["fused"] and not n.attrs["fused"] and c.ok.all()
        np.testing.assert_array_equal(c.steps, n.steps)
        np.testing.assert_array_equal(c.rejected, n.rejected)
        np.testing.assert_allclose(c.states, n.states, rtol=1e-10, atol=1e-15)
        cc, cn = c.attrs["certificate"], n.attrs["certificate"]  # the accuracy certificate, as with NumPy
        assert cc["members"] == cn["members"] and np.isclose(cc["max_rel_error"], cn["max_rel_error"], rtol=1e-4)
    for b in (0, 8):
        ref = solve_ivp(lambda _, y, p=P[b]: net.rhs(y, p), (0, 24), net.x0, method="Radau", t_eval=t, rtol=1e-10,
                        atol=1e-12, jac=lambda _, y, p=P[b]: net.jacobian(y, p)).y.T
        assert np.max(np.abs(c.states[b] - ref) / np.maximum(np.abs(ref), 1e-3)) < 10 * 1e-6  # Rodas4, as test_batch


@needs_cc
def test_kernels_with_breakpoints_failures_and_workers(kernels):
    """Breakpoints (washout, re-dose), a NaN member and a blow-up, in one process and in two
    workers: statuses and messages as with NumPy, the finished members agree to 1e-10."""
    net = network("batch_chain.toml")
    k = kernels("batch_chain.toml")
    conds = [Condition({"drug": 100.0}, {}, ((24.0, {"drug": 0.0}),)),
             Condition({"drug": 10.0}, {"kcat": 80.0}, ((12.5, {"drug": 0.0}), (40.0, {"drug": 50.0}))),
             Condition({"drug": 0.0}, {}, ()), Condition({"drug": 300.0}, {}, ((36.0, {"drug": 0.0}),))] * 2
    P, bps = breakpoints_from_conditions(net, conds)
    P[1, net.parameter_index("k_phos")] = np.nan
    P[3, net.parameter_index("k_dim")] = -1e4
    t = np.linspace(0, 72, 73)
    n = simulate_batch(net, P=P, t_eval=t, breakpoints=bps, rtol=1e-6, fused=False, certify=None)
    for workers in (1, 2):
        c = simulate_batch(net, P=P, t_eval=t, breakpoints=bps, rtol=1e-6, fused=k, workers=workers, certify=None)
        np.testing.assert_array_equal(c.status_code, n.status_code)
        assert c.status_code[1] == 3 and c.status_code[3] in (2, 4) and c.ok.sum() == 6
        assert [m.split(" at t=")[0] for m in c.messages] == [m.split(" at t=")[0] for m in n.messages]
        np.testing.assert_allclose(c.states[c.ok], n.states[n.ok], rtol=1e-10, atol=1e-15)


@needs_cc
def test_auto_builds_only_for_large_batches_and_a_cache_builds_once(monkeypatch):
    net = network("binding.toml")
    small = simulate_batch(net, P=np.tile(net.p0, (3, 1)), t_eval=[1.0], certify=None)  # fused="auto"
    assert small.attrs["fused"] is False and small.attrs["kernels_compile_s"] == 0.0
    monkeypatch.setattr(batch_module, "AUTO_FUSED_MEMBERS", 3)
    big = simulate_batch(net, P=np.tile(net.p0, (3, 1)), t_eval=[1.0], certify=None)
    assert big.attrs["fused"] is True and big.attrs["kernels_compile_s"] > 0
    np.testing.assert_allclose(big.states, small.states, rtol=1e-10)
    cache = ckernels.KernelCache()
    first = simulate_batch(net, t_eval=[1.0], certify=None, fused=cache)
    second = simulate_batch(net, t_eval=[1.0], certify=None, fused=cache)
    assert first.attrs["fused"] and second.attrs["fused"] and len(cache) == 1
    assert second.attrs["kernels_compile_s"] == 0.0
    # the rest-state search gets the run's cache like the time course: used once it holds the held
    # network's kernels (binding.toml holds no species: the same source, no new build) or the
    # search is large enough to pay for a build; otherwise simulate_batch decides ("auto")
    from her2sim.experiments import reststate
    seen = []

    def spy(*args, **kwargs):
        seen.append(kwargs["fused"])
        return simulate_batch(*args, **kwargs)
    monkeypatch.setattr(reststate, "simulate_batch", spy)
    X = np.tile(net.x0, (2, 1))
    P = np.tile(net.p0, (2, 1)) * np.array([[1.0], [1.5]])
    monkeypatch.setattr(batch_module, "AUTO_FUSED_MEMBERS", 10**6)
    empty = ckernels.KernelCache()
    fresh = reststate.RestStates().solve(net, X, P, engine="batch", kernels=empty)
    assert seen and all(f == "auto" for f in seen) and len(empty) == 0
    seen.clear()
    monkeypatch.setattr(batch_module, "AUTO_FUSED_MEMBERS", 2)
    found = reststate.RestStates().solve(net, X, P, engine="batch", kernels=cache)
    assert seen and all(f is cache for f in seen) and len(cache) == 1 and found.ok.all()
    np.testing.assert_allclose(found.states, fresh.states, rtol=1e-8, atol=1e-12)


@needs_cc
def test_build_leaves_no_files_behind():
    net = network("binding.toml")
    pattern = os.path.join(tempfile.gettempdir(), "her2sim-ckernels-*")
    before = set(glob.glob(pattern))
    k = ckernels.cpu_kernels(net, lu_plan(net))
    assert k is not None and k.compile_s > 0 and set(glob.glob(pattern)) == before
    assert all("-ffast-math" not in f.split() and "-fno-fast-math" in f.split() for f in k.flags.values())


@pytest.mark.parametrize("how", ["no compiler", "compiler error", "mismatch"])
def test_falls_back_to_numpy_with_one_warning_line(how, monkeypatch, tmp_path):
    net = network("binding.toml")
    if how == "no compiler":
        monkeypatch.setattr(ckernels, "find_compiler", lambda: None)
    elif how == "compiler error":
        fake = tmp_path / "cc"
        fake.write_text("#!/bin/sh\necho 'cc: error: something broke' >&2\nexit 1\n")
        fake.chmod(0o755)
        monkeypatch.setattr(ckernels, "find_compiler", lambda: str(fake))
    else:
        if ckernels.find_compiler() is None:
            pytest.skip("no C compiler")

        def wrong(*_, **__):
            raise RuntimeError("fused right-hand side differs from the unfused one (max rel. difference 1e-3)")
        monkeypatch.setattr(ckernels, "check_ops", wrong)
    with pytest.warns(RuntimeWarning, match="compiled C kernels unavailable, using the NumPy path") as rec:
        res = simulate_batch(net, P=np.tile(net.p0, (4, 1)), t_eval=[1.0, 2.0], certify=None, fused=True)
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    assert res.ok.all() and res.attrs["fused"] is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # fused=False and small "auto" batches never try (nor warn)
        simulate_batch(net, t_eval=[1.0], certify=None, fused=False)
        simulate_batch(net, t_eval=[1.0], certify=None)


def test_fused_argument_is_checked():
    net = network("binding.toml")
    with pytest.raises(InvalidArgument, match="fused must be True or False, 'auto'"):
        simulate_batch(net, t_eval=[1.0], fused="yes")
    with pytest.raises(InvalidArgument, match="is for backend='numpy'"):
        simulate_batch(net, t_eval=[1.0], fused=ckernels.KernelCache(), backend="array-api-strict")


@needs_cc
def test_kernels_of_another_network_are_refused(kernels):
    with pytest.raises(InvalidArgument, match="built for another network"):
        simulate_batch(network("binding.toml"), t_eval=[1.0], fused=kernels("mm.toml"))
