"""Accuracy certificate of a batch: a seeded random sample of members re-integrated independently.

:func:`her2sim.solvers.batch.simulate_batch` calls :func:`certify_batch` after integrating (unless told not
to): a random sample of the members that finished (default 0.5 %, at least 2; seeded, so the same
call checks the same members) is integrated again, one member at a time, with scipy's Radau IIA
(order 5, a different method and code from the batch Rosenbrock integrator) at a tolerance 20x
tighter than the batch's, with the analytic Jacobian and the same parameter breakpoints. The
largest deviation is stored in ``BatchResult.attrs["certificate"]`` (and from there in
``Result.attrs``, sweep chunk files and the sweep manifest), so every result says how accurate it
is, measured, not assumed.

Error measure (the one the benchmarks use): ``max |x - x_ref| / max(|x_ref|, floor)`` over the
sampled members, output times and species; relative above ``floor`` (default 1e-3 nM = 1 pM),
absolute in nM below it. A sample bounds the typical error, not the worst member's: the
certificate says how many members it checked.
"""

from __future__ import annotations

import math
import time as _time
from dataclasses import asdict, dataclass

import multiprocessing as mp

import numpy as np
from scipy.integrate import solve_ivp

from ..errors import CertifyError
from ..executors import fork_map
from ..model.network import Network

#: default share of the batch that is re-integrated
DEFAULT_FRACTION = 0.005
#: the reference tolerances are the batch's divided by this (Radau's error is about half its rtol
#: here, so the reference is off by a few per cent of the batch's error at most)
REFERENCE_FACTOR = 20.0


@dataclass(frozen=True)
class CertifyOptions:
    """How to certify a batch.

    fraction : share of the members re-integrated (0 < fraction <= 1).
    minimum : at least this many members (or all the finished ones, if fewer).
    seed : seed of the sample (the same seed picks the same members).
    rtol, atol : reference tolerances; None: the batch run's divided by :data:`REFERENCE_FACTOR`
        (rtol at least 1e-12).
    floor : nM; errors are relative above it and absolute below it.
    """

    fraction: float = DEFAULT_FRACTION
    minimum: int = 2
    seed: int = 0
    rtol: float | None = None
    atol: float | None = None
    floor: float = 1e-3

    def __post_init__(self):
        if not (0.0 < self.fraction <= 1.0) or not math.isfinite(self.fraction):
            raise CertifyError(f"certify fraction must be in (0, 1], got {self.fraction!r}")
        if int(self.minimum) < 0:
            raise CertifyError(f"certify minimum must be >= 0, got {self.minimum!r}")
        if not self.floor > 0:
            raise CertifyError(f"certify floor must be > 0 nM, got {self.floor!r}")
        for name in ("rtol", "atol"):
            v = getattr(self, name)
            if v is not None and not v > 0:
                raise CertifyError(f"certify {name} must be > 0 or None, got {v!r}")


def certify_options(certify) -> CertifyOptions | None:
    """Normalise ``simulate_batch(certify=...)``: None/False/0 (off), True (defaults), a fraction,
    or a :class:`CertifyOptions`."""
    if certify is None or certify is False:
        return None
    if certify is True:
        return CertifyOptions()
    if isinstance(certify, CertifyOptions):
        return certify
    if isinstance(certify, (int, float)) and not isinstance(certify, bool):
        return None if certify == 0 else CertifyOptions(fraction=float(certify))
    raise CertifyError(f"certify must be None, a fraction in (0, 1] or a CertifyOptions, got {certify!r}")


def sample_members(ok: np.ndarray, options: CertifyOptions) -> np.ndarray:
    """Sorted indices of the members to re-integrate, drawn from those with ``ok`` True."""
    pool = np.nonzero(ok)[0]
    k = min(len(pool), max(int(options.minimum), math.ceil(options.fraction * len(ok))))
    rng = np.random.default_rng(options.seed)
    return np.sort(rng.choice(pool, size=k, replace=False)) if k else pool[:0]


def certify_batch(network: Network, states: np.ndarray, ok: np.ndarray, X0: np.ndarray, P: np.ndarray,
                  schedule, t0: float, grid: np.ndarray, rtol: float, atol: float,
                  options: CertifyOptions, workers: int = 1) -> dict:
    """Re-integrate a sample of the batch and measure the batch's error on it.

    ``states`` (B, T, n) of the batch run, ``ok`` (B,), ``X0`` (B, n), ``P`` (B, n_params) at t0,
    ``schedule`` the batch's breakpoints (times (B, K), index, values (B, K, m)), ``grid`` (T,) h;
    ``workers`` > 1 shares the members among forked processes. Returns the certificate (a
    JSON-able dict): ``max_rel_error`` (NaN if no member could be checked), ``members`` (checked
    indices) and their ``per_member`` errors, ``reference`` and ``measure`` (how it was
    computed), ``seconds``; members whose reference integration failed are listed in
    ``reference_failed`` and left out.
    """
    clock = _time.perf_counter()
    r_rtol = options.rtol if options.rtol is not None else max(rtol / REFERENCE_FACTOR, 1e-12)
    r_atol = options.atol if options.atol is not None else atol / REFERENCE_FACTOR
    sample = sample_members(ok, options)
    args = [(network, X0[i], P[i], schedule, int(i), t0, grid, r_rtol, r_atol) for i in sample]
    if workers > 1 and len(sample) > 1 and "fork" in mp.get_all_start_methods():
        refs = [None] * len(args)
        for k, ref in fork_map(_reference_of, args, range(len(args)), workers, pin_blas=False):
            refs[k] = ref
    else:
        refs = [_reference(*a) for a in args]
    errors, checked, failed = [], [], []
    for i, ref in zip(sample, refs):
        if ref is None:
            failed.append(int(i))
            continue
        err = np.abs(states[i] - ref) / np.maximum(np.abs(ref), options.floor)
        checked.append(int(i))
        errors.append(float(np.max(err)) if err.size else 0.0)
    return {
        "max_rel_error": max(errors) if errors else float("nan"),
        "members": checked,
        "per_member": errors,
        "n_members": int(len(ok)),
        "reference": f"scipy Radau, rtol {r_rtol:g}, atol {r_atol:g} nM, analytic Jacobian, one member at a time",
        "measure": f"max over members, output times and species of |x - x_ref| / max(|x_ref|, {options.floor:g} nM)",
        "options": asdict(options),
        "reference_failed": failed,
        "seconds": _time.perf_counter() - clock,
    }


def _reference_of(args, k: int):
    """(k, reference of the k-th sampled member): the task of one forked worker."""
    return k, _reference(*args[k])


def _reference(network: Network, x0, p0, schedule, i: int, t0: float, grid: np.ndarray, rtol: float, atol: float):
    """(T, n) Radau trajectory of member i with its breakpoints, or None if Radau fails."""
    p = np.array(p0, dtype=float)
    times = schedule.times[i] if schedule.K else np.zeros(0)
    k = 0
    while k < len(times) and times[k] <= t0:  # breakpoints at t0 act at once (as in the batch path)
        _apply(p, schedule, i, k)
        k += 1
    out = np.full((len(grid), network.n_species), np.nan)
    out[grid == t0] = x0
    x = np.array(x0, dtype=float)
    a, t_end = t0, float(grid[-1])
    with np.errstate(all="ignore"):
        while a < t_end:
            b = min(float(times[k]), t_end) if k < len(times) else t_end
            if b > a:
                want = np.nonzero((grid > a) & (grid <= b))[0]
                sol = solve_ivp(lambda t, y, p=p: network.rhs(y, p), (a, b), x, method="Radau",
                                t_eval=np.unique(np.r_[grid[want], b]), rtol=rtol, atol=atol,
                                jac=lambda t, y, p=p: network.jacobian(y, p))
                if sol.status != 0 or not np.all(np.isfinite(sol.y)):
                    return None
                at = {float(t): j for j, t in enumerate(sol.t)}
                for w in want:
                    out[w] = sol.y[:, at[float(grid[w])]]
                x = sol.y[:, -1].copy()
                a = b
            if k < len(times) and float(times[k]) <= a:
                _apply(p, schedule, i, k)
                k += 1
    return out


def _apply(p: np.ndarray, schedule, i: int, k: int) -> None:
    vals = schedule.values[i, k]
    for c, j in enumerate(schedule.index):
        if not np.isnan(vals[c]):
            p[j] = vals[c]
