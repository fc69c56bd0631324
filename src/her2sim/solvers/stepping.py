"""Pieces shared by the two batch Rosenbrock integrators (:mod:`her2sim.solvers.batch`, NumPy, and
:mod:`her2sim.solvers.batch_xp`, any array namespace): status codes, step-size controller constants, the
starting step, the dense output, the error norm; and, for the NumPy integrator, its work arrays
and its schedule of breakpoints (piecewise-constant parameter changes).

Both integrators use Hairer & Wanner's predictive controller (*Solving ODEs II*, 2nd ed., 1996,
IV.8, eq. 8.21) with the constants of rodas.f, and the starting step of Hairer, Norsett & Wanner
(*Solving ODEs I*, 1993, II.4); keeping them here keeps the two paths identical.
"""

from __future__ import annotations

import mmap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidArgument

#: per-member status codes (her2sim.solvers.batch.STATUS_CODES names them)
OK, MAX_STEPS, UNDERFLOW, NOT_FINITE, DIVERGED = range(5)
SAFE, FAC_UP, FAC_DOWN = 0.9, 1.0 / 6.0, 5.0   # h_new/h in [0.2, 6] (rodas.f defaults)
BLOWUP = 1e15                                   # nM: beyond any concentration in a cell
COMPACT_FRACTION = 0.02                         # compact the active set when this share is done


def rms0(x: np.ndarray, inplace: bool = False) -> np.ndarray:
    """Root mean square over axis 0 of a NumPy (n, B), summed row by row whatever B is (a member's
    result must not depend on the batch it is in; NumPy pairwise-sums a lone column).
    ``inplace`` squares x in place."""
    sq = np.square(x, out=x) if inplace else np.square(x)
    if sq.shape[1] == 1:
        sq = np.repeat(sq, 2, axis=1)
        return np.sqrt(np.add.reduce(sq, axis=0)[:1] / x.shape[0])
    return np.sqrt(np.add.reduce(sq, axis=0) / x.shape[0])


def initial_step(xp, rhs, y, P, f0, remaining, rtol, atol, order, rms=None):
    """Starting step per member (Hairer, Norsett & Wanner 1993, II.4): (B,) in h.

    ``xp``: the array namespace (``numpy`` for the NumPy path); ``rhs(y, P)`` -> (n, B);
    y, f0 (n, B); remaining (B,) time to the next stop; ``rms``: root mean square over axis 0
    (default ``sqrt(sum(v * v, axis=0) / n)``; the NumPy path passes :func:`rms0`).
    """
    n = y.shape[0]
    if rms is None:
        def rms(v):
            return xp.sqrt(xp.sum(v * v, axis=0) / n)
    sc = atol + rtol * xp.abs(y)
    d0, d1 = rms(y / sc), rms(f0 / sc)
    h0 = xp.where((d0 < 1e-5) | (d1 < 1e-5), 1e-6, 0.01 * d0 / xp.maximum(d1, 1e-300))
    h0 = xp.minimum(h0, remaining)
    f1 = rhs(y + h0 * f0, P)
    d2 = rms((f1 - f0) / sc) / h0
    dm = xp.maximum(d1, d2)
    h1 = xp.where(dm <= 1e-15, xp.maximum(h0 * 1e-3, 1e-6), (0.01 / xp.maximum(dm, 1e-300)) ** (1.0 / (order + 1)))
    h = xp.minimum(xp.minimum(100 * h0, h1), remaining)
    return xp.where(xp.isfinite(h) & (h > 0), h, xp.minimum(remaining, 1e-6))


def dense(D, y0, y1, theta):
    """Continuous output (n, m) at t0 + theta*h for a few members: ``D`` holds the tableau's
    dense-output vectors D1..DK (a (K, n, m) array or a list of (n, m)); theta (m,)."""
    inner = D[-1]
    for k in range(len(D) - 2, -1, -1):  # Horner: D1 + s (D2 + s (D3 ...))
        inner = D[k] + theta * inner
    return (1 - theta) * y0 + theta * (y1 + (1 - theta) * inner)


class Work:
    """Work arrays of one NumPy integration, allocated once for ``capacity`` members: ``view(name,
    *shape)`` is a C-contiguous view of the first prod(shape) elements of buffer ``name`` (the
    active set only shrinks). ``y``/``y1`` are two state buffers that swap roles when every member
    accepts its step. ``factor_rows``: rows of the factorisation the solves read; ``params``: rows of
    the parameter buffer ``P``."""

    def __init__(self, capacity: int, n: int, stages: int, njac: int, nnz: int, solve_rows: int, dense_rows: int,
                 factor_rows: int, params: int = 0):
        self.n, self.njac, self.ngather, self.capacity = n, njac, factor_rows, capacity
        rows = {"f0": n, "jv": njac, "V": nnz, "G": factor_rows, "U": stages * n, "ac": 2 * n, "f": n,
                "solve": solve_rows, "err": n, "w": n, "w2": n, "ya": n, "yb": n, "dense": dense_rows * n,
                "P": params}
        self._buf = {k: np.empty(r * capacity) for k, r in rows.items()}
        self._cur, self._next = "ya", "yb"

    def view(self, name: str, *shape: int) -> np.ndarray:
        size = 1
        for s in shape:
            size *= s
        return self._buf[name][:size].reshape(shape)

    def y(self, B: int) -> np.ndarray:
        return self.view(self._cur, self.n, B)

    def y1(self, B: int) -> np.ndarray:
        return self.view(self._next, self.n, B)

    def swap(self, B: int) -> np.ndarray:
        """Make y1 the current state; returns it."""
        self._cur, self._next = self._next, self._cur
        return self.y(B)


def check_output_buffer(out, shape: tuple, shared: bool) -> None:
    """Refuse an ``out=`` array of :func:`simulate_batch` that is not a writable C-contiguous float64
    array of ``shape``, or (``shared``: forked workers write it) not in shared memory."""
    if not (isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == shape
            and out.flags.c_contiguous and out.flags.writeable):
        what = (f"{out.dtype} array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__)
        raise InvalidArgument(f"out must be a writable C-contiguous float64 array of shape {shape} (members, times, "
                              f"species), got a {what}; e.g. np.empty({shape})")
    base = out
    while shared and base is not None and not isinstance(base, mmap.mmap):
        base = base.obj if isinstance(base, memoryview) else getattr(base, "base", None)
    if shared and base is None:
        raise InvalidArgument("out: with workers > 1 the output must be shared memory that forked workers can write "
                              "(her2sim.executors.shared_empty(shape)); or use workers=1")


# ----------------------------------------------------------------------------- breakpoints (NumPy path)
@dataclass(frozen=True, eq=False)
class Schedule:
    """Breakpoints per member: times (B, K) ascending (inf = none), the parameter indices that
    change, and their new values (B, K, n_changed) (NaN = unchanged)."""

    times: np.ndarray
    index: np.ndarray
    values: np.ndarray
    event: np.ndarray | None = None  # (B, K) index of the model's timed event (-1: a parameter change)

    @property
    def K(self) -> int:
        return self.times.shape[1]


def as_schedule(network, breakpoints, B: int) -> Schedule:
    """The schedule of ``simulate_batch(breakpoints=...)`` for B members of a compiled network."""
    if breakpoints is None or len(breakpoints) == 0:
        return Schedule(np.full((B, 0), np.inf), np.zeros(0, dtype=np.intp), np.zeros((B, 0, 0)))
    names: dict[int, int] = {}
    entries = []
    for k, item in enumerate(breakpoints):
        try:
            t, change = item
        except (TypeError, ValueError):
            raise InvalidArgument(f"breakpoints[{k}] must be a pair (time_h, {{parameter: value}}), got {item!r}") from None
        if not isinstance(change, Mapping) or not change:
            raise InvalidArgument(f"breakpoints[{k}]: the change must be a non-empty mapping {{parameter: value}}, "
                             f"got {change!r}")
        tt = np.broadcast_to(np.asarray(t, dtype=float), (B,))
        cols = {}
        for name, v in change.items():
            j = network.parameter_index(name) if isinstance(name, str) else int(name)
            if not 0 <= j < network.n_params:
                raise InvalidArgument(f"breakpoints[{k}]: parameter index {j} out of range [0, {network.n_params})")
            names.setdefault(j, len(names))
            vv = np.asarray(v, dtype=float)
            if vv.ndim > 1 or (vv.ndim == 1 and vv.shape[0] != B):
                raise InvalidArgument(f"breakpoints[{k}][{name!r}]: values must be a scalar or shape ({B},), "
                                 f"got shape {vv.shape}")
            cols[j] = np.broadcast_to(vv, (B,))
        entries.append((tt, cols))
    K = len(entries)
    times = np.stack([np.where(np.isnan(e[0]), np.inf, e[0]) for e in entries], axis=1)
    values = np.full((B, K, len(names)), np.nan)
    for k, (_, cols) in enumerate(entries):
        for j, v in cols.items():
            values[:, k, names[j]] = v
    order = np.argsort(times, axis=1, kind="stable")
    times = np.take_along_axis(times, order, axis=1)
    values = np.take_along_axis(values, order[:, :, None], axis=1)
    return Schedule(times, np.array(list(names), dtype=np.intp), values)


def apply_breakpoints(P, sched: Schedule, idx, nbp, sel) -> None:
    vals = sched.values[idx[sel], nbp[sel]]  # (m, n_changed)
    for c, j in enumerate(sched.index):
        v = vals[:, c]
        keep = np.isnan(v)
        P[j, sel] = np.where(keep, P[j, sel], v)
    nbp[sel] += 1


def next_stop(sched: Schedule, idx, nbp, t_end) -> np.ndarray:
    if not sched.K:
        return np.full(len(idx), t_end)
    tb = np.where(nbp < sched.K, sched.times[idx, np.minimum(nbp, sched.K - 1)], np.inf)
    return np.minimum(tb, t_end)
