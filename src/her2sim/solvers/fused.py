"""The four per-step operations of the array-API integrator: unfused (array-API calls) or fused
(one CuPy kernel each, compiled from :mod:`her2sim.solvers.codegen_c`).

:mod:`her2sim.solvers.batch_xp` calls ``ops.rhs(y, P)`` (n, B), ``ops.jac(y, P)`` (n_jac, B),
``fac = ops.factor(J, shift)`` (the LU of ``shift * I - J``, shift (B,)) and ``ops.solve(fac, r)``
(n, B). :class:`ArrayOps` does this with the generated array-API functions and
:class:`~her2sim.solvers.sparse_lu.ArrayLU` (hundreds of element-wise operations each; any namespace).
:class:`CupyOps` launches one kernel per call, one thread per member, on the same (rows, B)
device arrays. :func:`fused_ops` builds and checks the CuPy kernels and falls back to the unfused
path with one warning line if anything fails (no compiler, NVRTC error, a mismatch).
"""

from __future__ import annotations

import warnings

import numpy as np

from .codegen_c import FUNCTION_NAMES, cuda_source, kernel_source

#: threads per block of the fused kernels
BLOCK = 128
#: members of the self-check of freshly compiled kernels, and its tolerance (relative, against the
#: unfused path on the same device: both are IEEE double, the GPU may contract a*b+c into FMAs)
CHECK_MEMBERS, CHECK_RTOL = 64, 1e-9


class ArrayOps:
    """The unfused operations: generated array-API functions and the array-API sparse LU."""

    fused = False

    def __init__(self, xp, network, plan):
        self.xp = xp
        self._rhs, self._jac = network.array_api_functions(xp)
        self._lu = plan.on(xp)
        self._n, self._njac = network.n_species, len(network.jac_rows)

    def rhs(self, y, P):
        return self._rhs(y, P, self.xp.empty((self._n, y.shape[1]), dtype=self.xp.float64))

    def jac(self, y, P):
        return self._jac(y, P, self.xp.empty((self._njac, y.shape[1]), dtype=self.xp.float64))

    def factor(self, J, shift):
        V = self._lu.assemble(J, shift, scale=-1.0)
        return V, self._lu.factor(V)

    def solve(self, fac, r):
        return self._lu.solve(fac[0], fac[1], r)


class CupyOps:
    """Fused operations: one CuPy kernel per call (compiled once per network with NVRTC; CuPy
    caches the binary by source text)."""

    fused = True

    def __init__(self, network, plan):
        import cupy

        self._cp = cupy
        ks = kernel_source(network, plan)
        self.source = cuda_source(ks)
        module = cupy.RawModule(code=self.source)
        self._kernels = {name: module.get_function(name) for name in FUNCTION_NAMES}  # compiles
        self._rows = dict(zip(FUNCTION_NAMES, (ks.n, ks.n_jac, ks.nnz + ks.n, ks.n)))

    def _launch(self, name, a, b):
        cp = self._cp
        B = int(a.shape[-1])
        out = cp.empty((self._rows[name], B), dtype=cp.float64)
        if B:
            args = (cp.ascontiguousarray(a, dtype=cp.float64), cp.ascontiguousarray(b, dtype=cp.float64), out,
                    np.int64(B))
            self._kernels[name](((B + BLOCK - 1) // BLOCK,), (BLOCK,), args)
        return out

    def rhs(self, y, P):
        return self._launch("h2_rhs", y, P)

    def jac(self, y, P):
        return self._launch("h2_jac", y, P)

    def factor(self, J, shift):
        return self._launch("h2_factor", J, shift)

    def solve(self, fac, r):
        return self._launch("h2_solve", fac, r)


def check_ops(bk, ops, reference, network, *, members: int = CHECK_MEMBERS, rtol: float = CHECK_RTOL,
              seed: int = 0) -> None:
    """Compare ``ops`` with ``reference`` (both on backend ``bk``) on random members near the
    model's initial state. The right-hand side and Jacobian must agree to ``rtol`` (relative to
    each member's largest value); the LU solve of ``(shift I - J) u = f`` is judged by its backward
    error (scaled residual, with the reference's J, on the host), which rounding-order differences
    such as GPU FMAs cannot inflate on an ill-conditioned matrix: at most 10x the reference's plus
    1e-13. Raises RuntimeError on a mismatch."""
    rng = np.random.default_rng(seed)
    x = np.abs(network.x0)[:, None] * np.exp(rng.uniform(-0.5, 0.5, (network.n_species, members)))
    x = x + rng.uniform(0.0, 1.0, x.shape)
    p = network.p0[:, None] * np.exp(rng.uniform(-0.3, 0.3, (network.n_params, members)))
    y, P = bk.asarray(x), bk.asarray(p)
    shift = 10.0 ** rng.uniform(-1, 3, members)  # 1/(h gamma) for h from ~1e-3 to ~10 h
    shift_d = bk.asarray(shift)
    results = []
    for o in (ops, reference):
        J = o.jac(y, P)
        r = o.rhs(y, P)
        results.append([bk.to_numpy(r), bk.to_numpy(J), bk.to_numpy(o.solve(o.factor(J, shift_d), r))])
    for name, a, b in zip(("right-hand side", "Jacobian"), results[0][:2], results[1][:2]):
        scale = np.maximum(np.max(np.abs(b), axis=0, keepdims=True), 1e-300)
        if a.shape != b.shape or not np.allclose(a, b, rtol=rtol, atol=rtol * scale, equal_nan=True):
            worst = float(np.nanmax(np.abs(a - b) / scale)) if a.shape == b.shape else float("nan")
            raise RuntimeError(f"fused {name} differs from the unfused one (max rel. difference {worst:.2g})")
    f, Jv = results[1][0], results[1][1]
    rows, cols = np.asarray(network.jac_rows), np.asarray(network.jac_cols)

    def backward_error(u):
        Ju, Jabs = np.zeros_like(u), np.zeros_like(u)
        np.add.at(Ju, rows, Jv * u[cols])
        np.add.at(Jabs, rows, np.abs(Jv * u[cols]))
        res = np.max(np.abs(shift * u - Ju - f), axis=0)
        return res / (np.max(shift * np.abs(u) + Jabs, axis=0) + np.max(np.abs(f), axis=0) + 1e-300)

    fused_be, ref_be = backward_error(results[0][2]), backward_error(results[1][2])
    if results[0][2].shape != f.shape or not np.all(fused_be <= 10.0 * ref_be + 1e-13):
        raise RuntimeError(f"fused LU solve differs from the unfused one (backward error {np.nanmax(fused_be):.2g}, "
                           f"unfused {np.nanmax(ref_be):.2g})")


def fused_ops(bk, network, plan):
    """:class:`CupyOps` for the CuPy backend, checked against :class:`ArrayOps`; on any failure
    (or another backend) a one-line RuntimeWarning and None (the caller runs unfused)."""
    if bk.name != "cupy":
        return None
    try:
        ops = CupyOps(network, plan)
        check_ops(bk, ops, ArrayOps(bk.xp, network, plan), network)
    except Exception as exc:  # noqa: BLE001 - CuPy/NVRTC errors have no common base; fall back, say why
        text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        warnings.warn(f"fused CuPy kernels unavailable, using the unfused array-API path ({text})",
                      RuntimeWarning, stacklevel=3)
        return None
    return ops
