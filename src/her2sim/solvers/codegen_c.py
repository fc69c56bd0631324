"""C code for one batch member, emitted from the expression DAG and the sparse LU's program.

Why: on a GPU the array-API integrator spends its time launching hundreds of tiny element-wise
kernels per right-hand side, Jacobian and LU solve. Here the same computations become four
straight-line C functions with one thread (or loop iteration) per batch member, so each is one
kernel launch: ``h2_rhs`` (dx/dt), ``h2_jac`` (the Jacobian values at the network's pattern),
``h2_factor`` (the LU of ``W = shift * I - J``) and ``h2_solve`` (``W x = b``).

Safety: nothing from a model file reaches the C text. The code is emitted from the interned DAG of
:class:`her2sim.model.codegen.Dag` (built by the whitelisting parser): identifiers are generated
(``t<N>``, ``lu<N>``, ``fw<N>``, ``bw<N>``; none is a C library name such as ``y0``), numbers are printed with ``repr`` (shortest text that
reads back to the same double), and only the fixed operators and the functions of :data:`C_FUNCTIONS`
appear. A node outside that set is refused (:class:`~her2sim.errors.ExpressionError`) before any
text is produced.

Layout (structure of arrays, as the (rows, B) arrays of :mod:`her2sim.solvers.batch_xp`): every function
has the signature ``(const double *a, const double *b, double *out, long long B)`` and member ``i``
reads row ``k`` of ``a`` at ``a[k*B + i]``. rhs/jac: a = x (n_species, B), b = p (n_params, B),
out (n_species, B) / (n_jac, B). factor: a = J values (n_jac, B), b = shift (B,), out (nnz + n, B):
the LU values then the reciprocal pivots. solve: a = factor's out, b (n, B), out (n, B).
:func:`c_library` wraps the bodies in loops (plain C, e.g. for gcc); :func:`cuda_source` in
``__global__`` kernels (one thread per member; compiled with CuPy's NVRTC in :mod:`her2sim.solvers.fused`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

from ..model.codegen import Dag
from ..errors import ExpressionError
from .sparse_lu import EliminationProgram

#: DAG function names the emitter supports, and their C spelling (``h2_*`` are defined in :data:`HELPERS`)
C_FUNCTIONS = {
    "exp": "exp", "log": "log", "log10": "log10", "sqrt": "sqrt", "abs": "fabs", "sign": "h2_sign",
    "min": "h2_min", "max": "h2_max", "pow": "pow", "floor": "floor", "ceil": "ceil",
    "sin": "sin", "cos": "cos", "tan": "tan", "asin": "asin", "acos": "acos", "atan": "atan",
    "sinh": "sinh", "cosh": "cosh", "tanh": "tanh", "asinh": "asinh", "acosh": "acosh", "atanh": "atanh",
}
_COMPARE = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "==", "ne": "!="}
_LOGIC = ("and", "or", "xor", "not")
_BINARY = ("+", "-", "*", "/")

#: helper functions, with NumPy's semantics (min/max propagate NaN, sign(NaN) = NaN)
HELPERS = """\
#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define H2_FN static __device__ __forceinline__
#else
#define H2_FN static inline
#endif
H2_FN double h2_min(double a, double b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }
H2_FN double h2_max(double a, double b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
H2_FN double h2_sign(double a) { return a > 0.0 ? 1.0 : (a < 0.0 ? -1.0 : a); }
"""
_SIGNATURE = "(const double *{r}a, const double *{r}b, double *{r}out, const long long B)"
FUNCTION_NAMES = ("h2_rhs", "h2_jac", "h2_factor", "h2_solve")


def c_number(value: float) -> str:
    """C text of a double that reads back to exactly ``value`` (``repr``: shortest round trip)."""
    value = float(value)
    if math.isnan(value):
        return "(0.0 / 0.0)"
    if math.isinf(value):
        return "(1.0 / 0.0)" if value > 0 else "(-1.0 / 0.0)"
    text = repr(value)
    return f"({text})" if value < 0 else text


def _row(array: str, k: int) -> str:
    return f"{array}[{int(k)}LL * B + i]"


#: the libm functions of :data:`C_FUNCTIONS` (and ``pow`` for ``**``) that compilers do not vectorise themselves
LIBM = tuple(sorted({v for v in C_FUNCTIONS.values() if not v.startswith("h2_")} - {"fabs", "sqrt", "floor", "ceil"}
                    | {"pow"}))
#: the same functions behind ``h2v_`` wrappers that a loop under ``#pragma omp simd`` can call
#: (GCC gives them SIMD clones that call libm lane by lane; without them it vectorises no loop
#: that calls libm, short of -ffast-math). Plain C, CPU only: prepend to code from
#: ``expression_body(..., functions=SIMD_FUNCTIONS)`` (:func:`simd_helpers`: the ones a body uses).
SIMD_HELPERS = {f"h2v_{f}": (f"#pragma omp declare simd notinbranch\n__attribute__((noinline)) static double h2v_{f}"
                             + ("(double a, double b) { return pow(a, b); }\n" if f == "pow"
                                else f"(double a) {{ return {f}(a); }}\n")) for f in LIBM}
SIMD_FUNCTIONS = {k: (f"h2v_{v}" if v in LIBM else v) for k, v in {**C_FUNCTIONS, "**": "pow"}.items()}


def expression_body(dag: Dag, outputs: Sequence[int], x: str = "a", p: str = "b", out: str = "out",
                    functions: dict | None = None) -> list[str]:
    """C statements computing the DAG nodes ``outputs`` into rows 0.. of ``out`` for member ``i``:
    one ``const double t<k>`` per reachable operation node (ids are topological), then the stores.
    ``functions``: C spelling of each function (default :data:`C_FUNCTIONS`, ``"**"``: ``pow``).
    Raises ExpressionError for a node the emitter does not support (before emitting anything)."""
    functions = {**C_FUNCTIONS, "**": "pow"} if functions is None else functions
    nodes = dag.nodes
    reachable = sorted(_reachable(nodes, outputs))
    for k in reachable:  # refuse first, emit after
        kind, payload, kids = nodes[k]
        ok = (kind in ("const", "x", "p", "neg") or (kind == "bin" and payload in (*_BINARY, "**"))
              or (kind == "call" and (payload in C_FUNCTIONS or payload in _COMPARE or payload in _LOGIC
                                      or payload in ("select", "piecewise"))))
        if not ok:
            raise ExpressionError(f"the C emitter does not support the {kind} node {payload!r}; "
                                  "use the unfused path (fused=False)")

    def ref(k: int) -> str:
        kind, payload, _ = nodes[k]
        if kind == "const":
            return c_number(payload)
        if kind == "x":
            return _row(x, payload)
        if kind == "p":
            return _row(p, payload)
        return f"t{k}"

    def truth(k: int) -> str:
        return f"({ref(k)} != 0.0)"

    lines = []
    for k in reachable:
        kind, payload, kids = nodes[k]
        if kind in ("const", "x", "p"):
            continue
        args = [ref(c) for c in kids]
        if kind == "neg":
            value = f"-{args[0]}"
        elif kind == "bin" and payload == "**":
            exponent = nodes[kids[1]]
            square = exponent[0] == "const" and exponent[1] == 2.0  # as codegen: x*x, not pow(x, 2)
            value = f"{args[0]} * {args[0]}" if square else f"{functions['**']}({args[0]}, {args[1]})"
        elif kind == "bin":
            value = f"{args[0]} {payload} {args[1]}"
        elif payload in C_FUNCTIONS:
            value = f"{functions[payload]}({', '.join(args)})"
        elif payload in _COMPARE:
            value = f"({args[0]} {_COMPARE[payload]} {args[1]}) ? 1.0 : 0.0"
        elif payload == "not":
            value = f"({args[0]} == 0.0) ? 1.0 : 0.0"
        elif payload in ("and", "or"):
            value = "(" + (" && " if payload == "and" else " || ").join(truth(c) for c in kids) + ") ? 1.0 : 0.0"
        elif payload == "xor":
            value = "(" + " ^ ".join(f"(int){truth(c)}" for c in kids) + ") ? 1.0 : 0.0"
        elif payload == "select":  # a < b ? c : d
            value = f"({args[0]} < {args[1]}) ? {args[2]} : {args[3]}"
        else:  # piecewise(v1, c1, ..., otherwise): first value whose condition is non-zero
            value = args[-1]
            for j in range(len(kids) - 3, -1, -2):
                value = f"{truth(kids[j + 1])} ? {args[j]} : ({value})"
        lines.append(f"const double t{k} = {value};")
    lines.extend(f"{_row(out, row)} = {ref(k)};" for row, k in enumerate(outputs))
    return lines


def simd_helpers(body: Sequence[str]) -> str:
    """The :data:`SIMD_HELPERS` definitions that the C statements ``body`` call."""
    used = set(re.findall(r"\bh2v_[a-z0-9]+", "\n".join(body)))
    return "".join(text for name, text in SIMD_HELPERS.items() if name in used)


def _sum(terms: Sequence[str]) -> str:
    return " + ".join(terms)


def factor_body(prog: EliminationProgram, n_jac: int) -> list[str]:
    """C statements of the LU of ``W = b[i] * I - J`` (J values in rows of ``a``, at the pattern
    ``prog.positions``) into rows of ``out``: the nnz values, then the n reciprocal pivots."""
    if len(prog.positions) != n_jac:
        raise ValueError(f"the LU pattern has {len(prog.positions)} input entries, the Jacobian {n_jac}")
    source = {pos: k for k, pos in enumerate(prog.positions)}
    diagonal = set(prog.diagonal)
    lines = ["const double shift = b[i];"]
    for e in range(prog.nnz):
        value = f"-{_row('a', source[e])}" if e in source else "0.0"
        if e in diagonal:
            value = f"{value} + shift"
        lines.append(f"double lu{e} = {value};")
    for op in prog.factor:
        if op[0] == "update":
            _, e, terms = op
            lines.append(f"lu{e} -= {_sum([f'lu{l} * lu{r}' for l, r in terms])};")
        else:
            _, e, piv = op
            lines.append(f"lu{e} = lu{e} / lu{piv};")
    lines.extend(f"{_row('out', e)} = lu{e};" for e in range(prog.nnz))
    lines.extend(f"{_row('out', prog.nnz + s)} = 1.0 / lu{pv};" for s, pv in enumerate(prog.pivot_bwd))
    return lines


def solve_body(prog: EliminationProgram) -> list[str]:
    """C statements solving ``W x = b`` with the factor rows in ``a`` (from :func:`factor_body`),
    b (n, B) in ``b``, x into ``out``."""
    nnz = prog.nnz
    lines = [f"double fw{s} = {_row('b', k)};" for s, k in enumerate(prog.fwd_in)]
    for s, terms in prog.forward:
        lines.append(f"fw{s} -= {_sum([_row('a', val) + f' * fw{col}' for val, col in terms])};")
    lines.extend(f"double bw{s} = fw{k};" for s, k in enumerate(prog.fwd_to_bwd))
    for op in prog.backward:
        if op[0] == "update":
            _, s, terms = op
            lines.append(f"bw{s} -= {_sum([_row('a', val) + f' * bw{col}' for val, col in terms])};")
        else:
            lines.extend(f"bw{s} *= {_row('a', nnz + s)};" for s in range(op[1], op[2]))
    lines.extend(f"{_row('out', i)} = bw{s};" for i, s in enumerate(prog.bwd_out))
    return lines


@dataclass(frozen=True)
class KernelSource:
    """Bodies of the four per-member functions (C statements reading ``i`` and ``B``) and the row
    counts of their arrays: n species, n_params, n_jac Jacobian values, nnz LU values."""

    rhs: tuple
    jac: tuple
    factor: tuple
    solve: tuple
    n: int
    n_params: int
    n_jac: int
    nnz: int

    @property
    def bodies(self) -> dict:
        return dict(zip(FUNCTION_NAMES, (self.rhs, self.jac, self.factor, self.solve)))


def kernel_source(network, plan, functions: dict | None = None) -> KernelSource:
    """The four bodies for a compiled :class:`~her2sim.Network` and its
    :class:`~her2sim.solvers.sparse_lu.SparseLU` (built on ``network.jac_rows, jac_cols``); ``functions``
    as in :func:`expression_body` (e.g. :data:`SIMD_FUNCTIONS`)."""
    dag, rhs_ids, jac_ids = network.expression_dag()
    prog = plan.program()
    return KernelSource(rhs=tuple(expression_body(dag, rhs_ids, functions=functions)),
                        jac=tuple(expression_body(dag, jac_ids, functions=functions)),
                        factor=tuple(factor_body(prog, len(jac_ids))), solve=tuple(solve_body(prog)),
                        n=network.n_species, n_params=network.n_params, n_jac=len(jac_ids), nnz=prog.nnz)


def c_library(ks: KernelSource) -> str:
    """Plain C99 source: each function loops over the B members (compile without -ffast-math)."""
    parts = ["#include <math.h>", HELPERS]
    for name, body in ks.bodies.items():
        parts.append(f"void {name}{_SIGNATURE.format(r='restrict ')} {{\n"
                     "  for (long long i = 0; i < B; ++i) {\n"
                     + "".join(f"    {line}\n" for line in body) + "  }\n}\n")
    return "\n".join(parts)


def cuda_source(ks: KernelSource) -> str:
    """CUDA source for NVRTC: one ``extern "C" __global__`` kernel per function, one thread per member."""
    parts = [HELPERS]
    for name, body in ks.bodies.items():
        parts.append(f'extern "C" __global__ void {name}{_SIGNATURE.format(r="__restrict__ ")} {{\n'
                     "  const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n"
                     "  if (i >= B) return;\n"
                     + "".join(f"  {line}\n" for line in body) + "}\n")
    return "\n".join(parts)


def _reachable(nodes, outputs) -> set[int]:
    seen: set[int] = set()
    stack = list(outputs)
    while stack:
        k = stack.pop()
        if k not in seen:
            seen.add(k)
            stack.extend(nodes[k][2])
    return seen


#: Hand-written C of the rest of a Rosenbrock step (model-independent; CPU only), the same arithmetic
#: in the same order as the NumPy integrator of :mod:`her2sim.solvers.batch`: arrays are species-major
#: (rows, B) as there, ``U`` is (stages, rows, B). (The stage sums stay NumPy's ``dot`` in both
#: paths: a C loop was slower on the HER2 model and rounds differently.) ``h2_error``: per member
#: the RMS of ``e / (atol + rtol max(|y|, |y1|))`` (rows summed in order), max |y1| and min y1
#: (NaN propagates, as NumPy's maximum). ``h2_dense``: the dense output (vectors D (K, rows, B), from NumPy's
#: ``dot`` as in the NumPy path) of the members ``sel`` at every output time ``grid[nout[i]] <= t_new[i]``, written to ``out[(row[i] * T + nout[i]) * rows + k]``
#: (the (B, T, rows) output array), ``nout`` advanced.
STEP_SOURCE = """\
#include <math.h>
static inline double h2_nanmax(double a, double b) { return (a != a || b != b) ? a + b : (a > b ? a : b); }
static inline double h2_nanmin(double a, double b) { return (a != a || b != b) ? a + b : (a < b ? a : b); }

void h2_error(const double *restrict y, const double *restrict y1, const double *restrict e, const double rtol,
              const double atol, double *restrict err, double *restrict ymax, double *restrict ymin,
              const long long rows, const long long B)
{
  for (long long k = 0; k < rows; ++k) {
    const double *restrict yk = y + k * B, *restrict y1k = y1 + k * B, *restrict ek = e + k * B;
    if (k == 0) {
      _Pragma("omp simd")
      for (long long i = 0; i < B; ++i) {
        const double a1 = fabs(y1k[i]);
        const double q = ek[i] / (h2_nanmax(fabs(yk[i]), a1) * rtol + atol);
        err[i] = q * q;
        ymax[i] = a1;
        ymin[i] = y1k[i];
      }
    } else {
      _Pragma("omp simd")
      for (long long i = 0; i < B; ++i) {
        const double a1 = fabs(y1k[i]);
        const double q = ek[i] / (h2_nanmax(fabs(yk[i]), a1) * rtol + atol);
        err[i] = err[i] + q * q;
        ymax[i] = h2_nanmax(ymax[i], a1);
        ymin[i] = h2_nanmin(ymin[i], y1k[i]);
      }
    }
  }
  for (long long i = 0; i < B; ++i) err[i] = sqrt(err[i] / (double)rows);
}

void h2_dense(const double *restrict D, const long long K, const double *restrict y, const double *restrict y1,
              const long long rows, const long long B, const long long *restrict sel, const long long m,
              const double *restrict t, const double *restrict hh, const double *restrict t_new,
              const double *restrict grid, const long long T, long long *restrict nout,
              const long long *restrict row, double *restrict out)
{
  for (long long s = 0; s < m; ++s) {
    const long long i = sel[s];
    for (long long g = nout[i]; g < T && grid[g] <= t_new[i]; ++g) {
      const double th = (grid[g] - t[i]) / hh[i];
      double *restrict o = out + (row[i] * T + g) * rows;
      for (long long k = 0; k < rows; ++k) {
        double inner = D[((K - 1) * rows + k) * B + i];
        for (long long l = K - 2; l >= 0; --l) inner = D[(l * rows + k) * B + i] + th * inner;
        o[k] = (1 - th) * y[k * B + i] + th * (y1[k * B + i] + (1 - th) * inner);
      }
      nout[i] = g + 1;
    }
  }
}
"""
