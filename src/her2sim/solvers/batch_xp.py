"""The batch Rosenbrock integrator written against the Python array API standard.

:func:`her2sim.solvers.batch.simulate_batch` runs this with ``backend="cupy"`` (a GPU),
``"array-api-strict"`` (tests: any non-standard call fails) or another array namespace; the
default ``backend="numpy"`` keeps the tuned NumPy integrator of :mod:`her2sim.solvers.batch` (preallocated
work arrays, ``out=`` arguments, BLAS stage sums), which the standard cannot express. The
method, step-size controller, error norm, dense output and failure tests are the same as there
(Hairer & Wanner IV.7-8; tableaus in :mod:`her2sim.solvers.tableaus`), so both paths agree to rounding.

Device-side: the state (n, B), parameters, step sizes and per-member counters; the generated
right-hand side and Jacobian (:meth:`her2sim.Network.array_api_functions`); the sparse LU
(:class:`her2sim.solvers.sparse_lu.ArrayLU`). Host-side: the output array (B, T, n) NumPy, written by the
members that pass output times in a step (the standard has no scatter, so their dense-output
values are gathered on the device and copied back once per step), and the failure messages.
One small device-to-host copy of counters per step decides the rare branches.

Not supported here (the caller rejects them): breakpoints, timed model events, ``fixed_step``
and worker processes.
"""

from __future__ import annotations

import sys
import time as _time

import numpy as np

from .backend import Backend
from .fused import ArrayOps
from ..model.network import Network
from .sparse_lu import SparseLU
from .stepping import (BLOWUP, COMPACT_FRACTION, DIVERGED, FAC_DOWN, FAC_UP, MAX_STEPS, NOT_FINITE, OK, SAFE, UNDERFLOW,
                       dense, initial_step)
from .tableaus import RosenbrockTableau



def integrate_array(bk: Backend, network: Network, plan: SparseLU, tab: RosenbrockTableau, X0: np.ndarray,
                    P: np.ndarray, t0: float, t_end: float, grid: np.ndarray, rtol: float, atol: float,
                    max_steps: int, states: np.ndarray, *, offset: int = 0, progress: bool = False, ops=None):
    """Integrate members X0 (B, n) / P (B, n_params) (host arrays) from t0 to t_end on ``bk``.

    ``ops``: the right-hand side, Jacobian and LU operations (:mod:`her2sim.solvers.fused`; default the
    unfused :class:`~her2sim.solvers.fused.ArrayOps`, or e.g. the fused CuPy kernels).

    Writes ``states`` (B, T, n) host rows (NaN after a failure). Returns (status (B,) int8,
    steps (B,), rejected (B,), {offset + member: message}).
    """
    xp = bk.xp
    f64, i64 = xp.float64, xp.int64
    B, n = X0.shape
    T = len(grid)
    ops = ArrayOps(xp, network, plan) if ops is None else ops
    s_count = tab.stages
    expo = 1.0 / (tab.error_order + 1)
    sources = [tab.rhs_source(i) for i in range(s_count)]
    stiffly_accurate = (sources[-1] == "new" and tuple(tab.m[:-1]) == tuple(tab.a[-1])[:s_count - 1]
                        and tab.m[-1] == 1.0)
    nonnegative = network.spec.nonnegative
    status = np.zeros(B, dtype=np.int8)
    steps = np.zeros(B, dtype=np.int64)
    rejected = np.zeros(B, dtype=np.int64)
    messages: dict[int, str] = {}
    states.fill(np.nan)
    t0, t_end, rtol, atol = float(t0), float(t_end), float(rtol), float(atol)  # Python floats, not NumPy scalars
    span = t_end - t0
    eps16 = 16 * float(np.finfo(float).eps)
    h_floor = eps16 * span

    rhs, jac = ops.rhs, ops.jac

    def lin(coef, vecs):
        """sum_j coef[j] * vecs[j] over the non-zero coefficients (None if all are zero)."""
        acc = None
        for c, v in zip(coef, vecs):
            if c != 0.0:
                acc = c * v if acc is None else acc + c * v
        return acc

    gridd = bk.asarray(grid)
    y = bk.asarray(X0.T)
    Pd = bk.asarray(P.T)
    idx = xp.arange(B, dtype=i64)
    t = xp.full((B,), t0, dtype=f64)
    k0 = int(np.searchsorted(grid, t0, side="left"))
    if k0 < T and grid[k0] == t0:
        states[:, k0] = X0
        k0 += 1
    nout = xp.full((B,), k0, dtype=i64)
    f0 = rhs(y, Pd)
    h = initial_step(xp, rhs, y, Pd, f0, t_end - t, rtol, atol, tab.order)
    hacc = xp.zeros((B,), dtype=f64)
    erracc = xp.ones((B,), dtype=f64)
    have_acc = xp.zeros((B,), dtype=xp.bool)
    rej_last = xp.zeros((B,), dtype=xp.bool)
    done = xp.zeros((B,), dtype=xp.bool)
    nstep = xp.zeros((B,), dtype=i64)
    nrej = xp.zeros((B,), dtype=i64)
    last_report = _time.perf_counter()
    fresh = True
    Ba = B

    while Ba:
        if not fresh:
            f0 = rhs(y, Pd)
        fresh = False
        Jv = jac(y, Pd)
        last = t + 1.0001 * h >= t_end
        hh = xp.where(last, t_end - t, h)
        fac = ops.factor(Jv, 1.0 / (hh * tab.gamma))  # LU of I/(h gamma) - J
        inv_h = 1.0 / hh
        U = []
        point = y
        fi = f0
        for i in range(s_count):
            if i == 0:
                r = f0
            else:
                if sources[i] == "new":
                    a_sum = lin(tab.a[i], U)
                    point = y if a_sum is None else y + a_sum
                    fi = rhs(point, Pd)
                elif sources[i] == "y0":
                    fi = f0
                c_sum = lin(tab.c[i], U)
                r = fi if c_sum is None else fi + c_sum * inv_h
            U.append(ops.solve(fac, r))
        y1 = point + U[-1] if stiffly_accurate else y + lin(tab.m, U)
        err_vec = lin(tab.e, U)
        w = atol + rtol * xp.maximum(xp.abs(y), xp.abs(y1))
        q = err_vec / w
        err = xp.sqrt(xp.sum(q * q, axis=0) / n)
        err = xp.where(xp.isfinite(err) & ~done, err, xp.inf)
        accept = err <= 1.0
        nstep = nstep + xp.astype(~done, i64)
        nrej = nrej + xp.astype(~accept & ~done, i64)
        ymax = xp.max(xp.abs(y1), axis=0)
        ymin = xp.min(y1, axis=0)

        # --- step-size control (predictive controller, Hairer & Wanner IV.8) ---
        fac = xp.clip(err ** expo / SAFE, FAC_UP, FAC_DOWN)
        fg = (hacc / hh) * (err * err / erracc) ** expo / SAFE
        fac = xp.where(accept & have_acc, xp.maximum(fac, xp.clip(fg, FAC_UP, FAC_DOWN)), fac)
        h_new = hh / fac
        h_new = xp.where(accept & rej_last, xp.minimum(h_new, hh), h_new)
        h_new = xp.minimum(h_new, span)
        hacc = xp.where(accept, hh, hacc)
        erracc = xp.where(accept, xp.maximum(err, 0.01), erracc)
        have_acc = have_acc | accept
        rej_last = ~accept
        t_new = xp.where(last, t_end, t + hh)

        # --- the rare branches, decided by one small copy to the host ---
        pend = accept & (nout < T) & (xp.take(gridd, xp.clip(nout, 0, T - 1)) <= t_new)
        bad = ~done & ~accept & ~xp.isfinite(err)
        blown = ymax > BLOWUP
        if nonnegative:
            blown = blown | (ymin < -xp.maximum(1e-2 * ymax, 1e6 * atol))
        blown = blown & accept & ~done
        t_next = xp.where(accept, t_new, t)
        tiny = ~done & (h_new < xp.maximum(h_floor, eps16 * xp.abs(t_next)))
        over = ~done & (nstep >= max_steps) & ~(accept & last)
        counts = bk.to_numpy(xp.stack([xp.sum(xp.astype(m, i64)) for m in (pend, bad, blown, tiny, over)]))

        if counts[0]:  # dense output at the requested times inside accepted steps
            D = [lin(row, U) for row in tab.dense]
            while True:
                sel = xp.nonzero(pend)[0]
                if sel.shape[0] == 0:
                    break
                ks = xp.take(nout, sel)
                theta = (xp.take(gridd, ks) - xp.take(t, sel)) / xp.take(hh, sel)
                vals = dense([xp.take(d, sel, axis=1) for d in D], xp.take(y, sel, axis=1),
                              xp.take(y1, sel, axis=1), theta)
                rows, cols = bk.to_numpy(xp.take(idx, sel)), bk.to_numpy(ks)
                states[rows, cols] = bk.to_numpy(vals).T
                nout = nout + xp.astype(pend, i64)
                pend = pend & (nout < T) & (xp.take(gridd, xp.clip(nout, 0, T - 1)) <= t_new)

        y = xp.where(xp.reshape(accept, (1, Ba)), y1, y)
        t = t_next
        h = h_new

        # --- failures (rare): messages on the host ---
        if counts[1]:  # distinguish a non-finite model from a too-large step
            sel = xp.nonzero(bad)[0]
            ys, ps = xp.take(y, sel, axis=1), xp.take(Pd, sel, axis=1)
            ok = xp.all(xp.isfinite(rhs(ys, ps)), axis=0) & xp.all(xp.isfinite(jac(ys, ps)), axis=0)
            broken = xp.take(sel, xp.nonzero(~ok)[0])
            done = _fail(bk, done, broken, idx, t, offset, status, messages, NOT_FINITE,
                         lambda k, tk: (f"right-hand side or Jacobian not finite at t={tk:.6g} h "
                                        "(check parameters: NaN, inf or division by zero)"))
        if counts[2]:
            sel = xp.nonzero(blown & ~done)[0]
            big, small = bk.to_numpy(xp.take(ymax, sel)), bk.to_numpy(xp.take(ymin, sel))
            done = _fail(bk, done, sel, idx, t, offset, status, messages, DIVERGED,
                         lambda k, tk: (f"solution diverged at t={tk:.6g} h (max |x| = {big[k]:.3g} nM, "
                                        f"min x = {small[k]:.3g} nM); check for an unphysical parameter"))
        if counts[3]:
            sel = xp.nonzero(tiny & ~done)[0]
            hs = bk.to_numpy(xp.take(h, sel))
            done = _fail(bk, done, sel, idx, t, offset, status, messages, UNDERFLOW,
                         lambda k, tk: (f"step size underflow (h={hs[k]:.3g} h) at t={tk:.6g} h: the tolerance "
                                        "cannot be met; try a looser rtol/atol or check parameters"))
        if counts[4]:
            sel = xp.nonzero(over & ~done)[0]
            done = _fail(bk, done, sel, idx, t, offset, status, messages, MAX_STEPS,
                         lambda k, tk: f"max_steps={max_steps} reached at t={tk:.6g} h")
        done = done | (accept & last)

        # --- compaction of the active set ---
        n_done = int(xp.sum(xp.astype(done, i64)))
        if n_done and (n_done >= COMPACT_FRACTION * Ba or n_done == Ba):
            gone = xp.nonzero(done)[0]
            rows = bk.to_numpy(xp.take(idx, gone))
            steps[rows] = bk.to_numpy(xp.take(nstep, gone))
            rejected[rows] = bk.to_numpy(xp.take(nrej, gone))
            keep = xp.nonzero(~done)[0]
            y, Pd = xp.take(y, keep, axis=1), xp.take(Pd, keep, axis=1)
            (idx, t, h, nout, hacc, erracc, have_acc, rej_last, nstep, nrej) = (
                xp.take(a, keep) for a in (idx, t, h, nout, hacc, erracc, have_acc, rej_last, nstep, nrej))
            Ba = int(keep.shape[0])
            done = xp.zeros((Ba,), dtype=xp.bool)
        if progress and _time.perf_counter() - last_report > 2.0:
            last_report = _time.perf_counter()
            print(f"simulate_batch[{bk.name}]: {B - Ba}/{B} members done, {Ba} active", file=sys.stderr, flush=True)
    return status, steps, rejected, messages


def _fail(bk: Backend, done, sel, idx, t, offset, status, messages, code, text):
    """Mark active positions ``sel`` failed with ``code``; ``text(k, t_k)`` is the message of the
    k-th of them. Returns the new ``done`` mask."""
    xp = bk.xp
    if sel.shape[0] == 0:
        return done
    rows, ts = bk.to_numpy(xp.take(idx, sel)), bk.to_numpy(xp.take(t, sel))
    for k, (row, tk) in enumerate(zip(rows, ts)):
        if status[row] == OK:
            status[row] = code
            messages[offset + int(row)] = text(k, float(tk))
    return done | _mask_sorted(xp, sel, done.shape[0])


def _mask_sorted(xp, sel, size):
    """(size,) bool mask of the ascending positions ``sel`` (the standard has no scatter: a
    searchsorted of every position instead)."""
    pos = xp.arange(size, dtype=xp.int64)
    at = xp.searchsorted(sel, pos)
    return xp.take(sel, xp.clip(at, 0, sel.shape[0] - 1)) == pos
