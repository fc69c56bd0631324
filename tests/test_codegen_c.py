"""The C emitter (her2sim.solvers.codegen_c) and the fused operations (her2sim.solvers.fused), tested on CPU: the
emitted C is compiled with the system C compiler into a shared library (ctypes), one loop
iteration per member with the same (rows, B) layout the CUDA kernels use, and compared with the
NumPy path. The CuPy glue itself needs a GPU (benchmarks/bench_gpu.py runs it); its fallback is
tested here."""

import ctypes
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from her2sim import compile_network, load_model
from her2sim.model import expr as ex
from her2sim.solvers import fused
from her2sim.solvers.backend import Backend, resolve_backend
from her2sim.solvers.batch import lu_plan, simulate_batch
from her2sim.solvers.batch_xp import integrate_array
from her2sim.model.codegen import Dag
from her2sim.solvers.codegen_c import FUNCTION_NAMES, HELPERS, c_library, c_number, cuda_source, expression_body, kernel_source
from her2sim.errors import ExpressionError, InvalidArgument
from her2sim.solvers.tableaus import TABLEAUS

MODELS = Path(__file__).parent / "models"
CC = shutil.which("cc") or shutil.which("gcc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc/gcc) on PATH")
_NETS = {}


def network(name):
    if name not in _NETS:
        _NETS[name] = compile_network(load_model(name if name == "default" else MODELS / name))
    return _NETS[name]


def build(source: str, folder: Path) -> ctypes.CDLL:
    """Compile C source into a shared library (-O2, IEEE arithmetic: no -ffast-math)."""
    c_file, so_file = folder / "kernels.c", folder / "kernels.so"
    c_file.write_text(source)
    subprocess.run([CC, "-O2", "-std=c99", "-shared", "-fPIC", "-fno-fast-math", "-o", str(so_file), str(c_file),
                    "-lm"], check=True, capture_output=True)
    lib = ctypes.CDLL(str(so_file))
    for name in FUNCTION_NAMES:
        if hasattr(lib, name):
            getattr(lib, name).argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_longlong]
    return lib


def call(fn, rows, a, b):
    a, b = np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64)
    B = a.shape[-1]
    out = np.empty((rows, B))
    fn(a.ctypes.data, b.ctypes.data, out.ctypes.data, B)
    return out


class CtypesOps:
    """The fused operations on CPU: the emitted C in a shared library (the stand-in for CuPy)."""

    fused = True

    def __init__(self, net, plan, folder):
        ks = kernel_source(net, plan)
        self.lib = build(c_library(ks), folder)
        self.rows = dict(zip(FUNCTION_NAMES, (ks.n, ks.n_jac, ks.nnz + ks.n, ks.n)))

    def _f(self, name, a, b):
        return call(getattr(self.lib, name), self.rows[name], np.asarray(a), np.asarray(b))

    def rhs(self, y, P):
        return self._f("h2_rhs", y, P)

    def jac(self, y, P):
        return self._f("h2_jac", y, P)

    def factor(self, J, shift):
        return self._f("h2_factor", J, shift)

    def solve(self, fac, r):
        return self._f("h2_solve", fac, r)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """name -> (network, LU plan, CtypesOps), each model's C compiled once per test module."""
    built = {}

    def get(name):
        if name not in built:
            net = network(name)
            plan = lu_plan(net, "markowitz")
            built[name] = net, plan, CtypesOps(net, plan, tmp_path_factory.mktemp(name.split(".")[0]))
        return built[name]
    return get


def members(net, B, seed):
    rng = np.random.default_rng(seed)
    x = np.abs(net.x0)[:, None] * np.exp(rng.uniform(-1, 1, (net.n_species, B))) + rng.uniform(0, 5, (net.n_species, B))
    p = net.p0[:, None] * np.exp(rng.uniform(-0.7, 0.7, (net.n_params, B)))
    return x, p


def rel(a, b):
    """Largest |a - b| relative to the largest |b| of the same member (column)."""
    return float(np.max(np.abs(a - b) / np.maximum(np.max(np.abs(b), axis=0, keepdims=True), 1e-300)))


@needs_cc
@pytest.mark.parametrize("name", ["binding.toml", "default"])
def test_c_kernels_match_numpy(name, compiled):
    """rhs, Jacobian values and the LU solve of (shift I - J) x = b from the compiled C agree with
    the NumPy path to ~1e-13 for random states, parameters and shifts (1/(h gamma), h 1e-3..10 h)."""
    net, plan, ops = compiled(name)
    x, p = members(net, 40, seed=3)
    r = ops.rhs(x, p)
    assert rel(r, net.rhs_T(x, p)) < 1e-13
    J = ops.jac(x, p)
    Jn = net.jacobian_values_T(x, p)
    assert rel(J, Jn) < 1e-13
    rng = np.random.default_rng(4)
    shift, b = 10.0 ** rng.uniform(-1, 3, 40), rng.normal(size=(net.n_species, 40))
    V = plan.assemble(Jn, shift, scale=-1.0)
    want = plan.solve(V, plan.factor(V), b.copy())
    got = ops.solve(ops.factor(J, shift), b)
    assert rel(got, want) < 1e-13
    W = shift[None, None, :] * np.eye(net.n_species)[:, :, None] - net.jacobian(x.T, p.T).transpose(1, 2, 0)
    residual = np.einsum("ijb,jb->ib", W, got) - b  # and it really solves the system
    assert np.max(np.abs(residual)) < 1e-9 * np.max(np.abs(b))


FORMULAS = ["exp(-x0) * p0 + sqrt(x1)", "min(x0, p0) - max(x1, 0.5)", "x0**2.5 / (1 + x1**2) + x0**2",
            "piecewise(x0, x0 < x1, p0, x1 >= 3, 0.25)", "piecewise(1, x0 <= x1, 0.5) + piecewise(2, p0 > 1, x1)",
            "log(x0 + 1) + log10(p0 + 1) + abs(x0 - x1)", "hill(x0, p0 + 0.5, 2) + inhibit(x1, 1.5) + mm(x0, p0 + 2)",
            "tanh(x0) + atan(x1) + floor(x0 * 3) + ceil(p0) + acosh(x1 + 1) + asinh(x0) + atanh(p0 / 3)",
            "sin(x0) * cos(x1) + tan(p0) + asin(p0 / 2) + acos(p0 / 3) + sinh(x1) + cosh(p0)",
            "(x0 > 1 and x1 < 2) + (x0 == x1 or not (p0 != 1)) + xor(x0 > 2, x1 > 2, p0 > 1)",
            "abs(x0 - 2) * 1e-300 + (-1.5) * x1 + 1e300 * p0 - x0 / (p0 - p0)",
            "min(x0, log(p0 - 1)) + max(log(p0 - 1), x1)"]  # NaN propagates through min/max as NumPy's


@needs_cc
def test_every_supported_node_matches_numpy(tmp_path):
    """Each formula (all functions, comparisons, logic, piecewise, select via derivatives of abs,
    division by zero, NaN) as one C output, against the NumPy evaluator of the same DAG."""
    dag = Dag({"x0": 0, "x1": 1}, {"p0": 0})
    ids = [dag.intern(ex.simplify(ex.expand(ex.parse(f)))) for f in FORMULAS]
    ids.append(dag.intern(ex.simplify(ex.diff(ex.parse("abs(x0 - x1) + min(x0, p0)"), "x0"))))
    body = expression_body(dag, ids)
    source = "#include <math.h>\n" + HELPERS + ("void h2_rhs(const double *a, const double *b, double *out, "
                                                "const long long B) {\n for (long long i = 0; i < B; ++i) {\n"
                                                + "\n".join(body) + "\n }\n}\n")
    lib = build(source, tmp_path)
    rng = np.random.default_rng(1)
    x, p = rng.uniform(0.1, 4.0, (2, 64)), rng.uniform(0.0, 2.0, (1, 64))
    x[:, :4] = [[1.0, 2.0, 3.0, 0.5], [1.0, 2.0, 1.0, 0.5]]  # ties for ==, <=, piecewise
    p[0, :3] = [1.0, 2.0, 0.0]
    with np.errstate(all="ignore"):
        want = dag.function(ids, "array", into=True)(x, p, np.empty((len(ids), 64)))
    got = call(lib.h2_rhs, len(ids), x, p)
    assert np.array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)


def test_refuses_unsupported_node_before_emitting():
    dag = Dag({"x0": 0}, {})
    k = dag.intern(ex.parse("exp(x0)"))
    dag.nodes[k] = ("call", "gamma", dag.nodes[k][2])  # a node no model can produce today
    with pytest.raises(ExpressionError, match="does not support the call node 'gamma'") as info:
        expression_body(dag, [k])
    assert "\n" not in str(info.value)


def test_numbers_round_trip_and_names_are_generated():
    for v in (0.1, 1 / 3, 6.02214076e23, 5e-324, -2.5, 1e300):
        assert float(c_number(v).strip("()")) == v
    assert c_number(float("nan")) == "(0.0 / 0.0)" and c_number(float("-inf")) == "(-1.0 / 0.0)"
    net = network("binding.toml")
    src = cuda_source(kernel_source(net, lu_plan(net, "markowitz")))
    assert src.count('extern "C" __global__') == 4
    body = src[len(HELPERS):].replace("extern \"C\"", "")  # identifiers of the kernels: generated or fixed, never model names
    words = set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", body))
    generated = {w for w in words if re.fullmatch(r"(t|lu|fw|bw)[0-9]+|h2_[a-z]+|[0-9]*LL", w)}
    assert words - generated <= {"__global__", "void", "const", "double", "__restrict__", "a", "b", "out",
                                 "long", "B", "i", "blockIdx", "x", "blockDim", "threadIdx", "if", "return", "shift",
                                 "exp", "log", "pow", "sqrt", "e"}


@needs_cc
@pytest.mark.parametrize("name, t_end, rtol", [("binding.toml", 6.0, 1e-6), ("default", 2.0, 1e-4)])
def test_integrator_with_fused_ops_matches_unfused(name, t_end, rtol, compiled):
    """The array-API integrator driven by the compiled C operations takes the same steps as with
    the unfused array-API operations, and the states agree to 1e-10."""
    net, plan, c_ops = compiled(name)
    bk = resolve_backend(np)  # array-api-compat's NumPy namespace
    rng = np.random.default_rng(0)
    P = np.tile(net.p0, (6, 1)) * np.exp(rng.uniform(-0.3, 0.3, (6, net.n_params)))
    X0 = np.tile(net.x0, (6, 1))
    grid = np.linspace(0.0, t_end, 4)
    tab = TABLEAUS["rodas5p"]
    out = []
    for ops in (None, c_ops):
        states = np.empty((6, len(grid), net.n_species))
        with np.errstate(all="ignore"):
            st, steps, rej, msgs = integrate_array(bk, net, plan, tab, X0, P, 0.0, t_end, grid, rtol, 1e-9, 10000,
                                                   states, ops=ops)
        out.append((st, steps, rej, states))
    (s0, n0, r0, x0), (s1, n1, r1, x1) = out
    assert (s0 == 0).all() and (s1 == s0).all() and (n1 == n0).all() and (r1 == r0).all()
    np.testing.assert_allclose(x1, x0, rtol=1e-10, atol=1e-12)


@needs_cc
def test_check_ops_catches_a_wrong_kernel(compiled):
    net, plan, good = compiled("binding.toml")
    bk = resolve_backend(np)
    fused.check_ops(bk, good, fused.ArrayOps(bk.xp, net, plan), net)

    class Off(CtypesOps):
        def solve(self, fac, r):
            return super().solve(fac, r) * (1 + 1e-7)

    bad = Off.__new__(Off)
    bad.__dict__.update(good.__dict__)
    with pytest.raises(RuntimeError, match="fused LU solve differs"):
        fused.check_ops(bk, bad, fused.ArrayOps(bk.xp, net, plan), net)


def test_fused_falls_back_with_one_warning(monkeypatch):
    """If the CuPy kernels cannot be built, one RuntimeWarning line and the unfused path."""
    net = network("binding.toml")
    plan = lu_plan(net, "markowitz")

    def broken(*_):
        raise ImportError("No module named 'cupy'\n(second line)")

    monkeypatch.setattr(fused, "CupyOps", broken)
    fake = Backend("cupy", resolve_backend(np).xp)
    with pytest.warns(RuntimeWarning, match="fused CuPy kernels unavailable") as rec:
        assert fused.fused_ops(fake, net, plan) is None
    assert len(rec) == 1 and "\n" not in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert fused.fused_ops(resolve_backend(np), net, plan) is None  # other backends: unfused, silently


def test_fused_argument_checked():
    net = network("binding.toml")
    with pytest.raises(InvalidArgument, match="fused must be True or False"):
        simulate_batch(net, t_eval=[1.0], backend="array-api-strict", fused="yes")
    res = simulate_batch(net, t_eval=[1.0], backend=np, certify=None, fused=True)
    assert res.attrs["fused"] is False and res.ok.all()  # only CuPy has fused kernels


# ----------------------------------------------------------------------------- the CUDA text and the CuPy glue
CXX = shutil.which("c++") or shutil.which("g++")
#: the CUDA built-ins the kernels use, as a C++ shim: the kernel source compiles as C++ (NVRTC's
#: language) and a launcher runs every (block, thread) of a 1-D grid in turn
CUDA_SHIM = """\
#include <math.h>
#define __CUDACC__ 1
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__ __restrict
struct h2_dim3 { unsigned int x; };
static h2_dim3 blockIdx, blockDim, threadIdx;
"""
LAUNCHER = """
extern "C" void launch_{name}(unsigned grid, unsigned block, const double *a, const double *b, double *out,
                              long long B) {{
  blockDim.x = block;
  for (unsigned g = 0; g < grid; ++g)
    for (unsigned t = 0; t < block; ++t) {{ blockIdx.x = g; threadIdx.x = t; {name}(a, b, out, B); }}
}}
"""


class FakeCupy:
    """Just enough of CuPy for her2sim.solvers.fused.CupyOps, on NumPy arrays: RawModule compiles the CUDA
    source as C++ with the shim above; a kernel call runs the launcher over its grid."""

    float64 = np.float64
    empty = staticmethod(np.empty)
    ascontiguousarray = staticmethod(np.ascontiguousarray)

    def __init__(self, folder):
        self.folder, self.launches = folder, []

    def RawModule(self, code):  # noqa: N802 - CuPy's name
        src = CUDA_SHIM + code + "".join(LAUNCHER.format(name=n) for n in FUNCTION_NAMES)
        (self.folder / "k.cpp").write_text(src)
        subprocess.run([CXX, "-O1", "-shared", "-fPIC", "-o", str(self.folder / "k.so"), str(self.folder / "k.cpp")],
                       check=True, capture_output=True)
        lib = ctypes.CDLL(str(self.folder / "k.so"))
        fake = self

        class Module:
            def get_function(self, name):
                fn = getattr(lib, f"launch_{name}")
                fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [ctypes.c_void_p] * 3 + [ctypes.c_longlong]

                def kernel(grid, block, args):
                    a, b, out, B = args
                    assert isinstance(B, np.int64) and len(grid) == len(block) == 1 and grid[0] * block[0] >= B
                    for arr in (a, b, out):
                        assert arr.dtype == np.float64 and arr.flags.c_contiguous and arr.shape[-1] == B
                    fake.launches.append(name)
                    fn(grid[0], block[0], a.ctypes.data, b.ctypes.data, out.ctypes.data, int(B))
                return kernel
        return Module()


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (c++/g++) on PATH")
def test_cuda_source_and_cupy_glue(monkeypatch, tmp_path):
    """The CUDA kernels (compiled as C++ against a shim of blockIdx/threadIdx, every thread of the
    grid run in turn, including the out-of-range threads of the last block) driven by
    her2sim.solvers.fused.CupyOps through a fake CuPy: the integrator takes the same steps as unfused."""
    fake = FakeCupy(tmp_path)
    monkeypatch.setitem(sys.modules, "cupy", fake)
    net = network("binding.toml")
    plan = lu_plan(net, "markowitz")
    ops = fused.CupyOps(net, plan)
    bk = resolve_backend(np)
    fused.check_ops(bk, ops, fused.ArrayOps(bk.xp, net, plan), net, members=fused.BLOCK + 5)  # two blocks
    assert set(fake.launches) == set(FUNCTION_NAMES)
    P = np.tile(net.p0, (5, 1)) * np.exp(np.random.default_rng(2).uniform(-0.3, 0.3, (5, net.n_params)))
    X0, grid = np.tile(net.x0, (5, 1)), np.linspace(0.0, 6.0, 4)
    out = []
    for o in (None, ops):
        states = np.empty((5, len(grid), net.n_species))
        with np.errstate(all="ignore"):
            st, steps, rej, _ = integrate_array(bk, net, plan, TABLEAUS["rodas4"], X0, P, 0.0, 6.0, grid, 1e-6, 1e-9,
                                                10000, states, ops=o)
        out.append((st, steps, rej, states))
    assert (out[0][0] == 0).all() and all((a == b).all() for a, b in zip(out[0][:3], out[1][:3]))
    np.testing.assert_allclose(out[1][3], out[0][3], rtol=1e-10, atol=1e-12)
