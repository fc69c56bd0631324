"""Profile likelihoods and the confidence intervals they give.

The profile of parameter i is ``PL(c) = min over the others of nllh(x | x_i = c)``, traced from
the best fit in both directions with the other parameters re-optimised at each point (warm
start from the previous point). The (1 - alpha) interval is where ``PL(c) - nllh_best`` stays
below ``chi2_1(1 - alpha) / 2`` (1.92 for 95 %; Raue et al., Bioinformatics 2009;25:1923).
The step adapts so that consecutive points differ by about ``target_increase`` in nllh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .objective import Objective
from .optimize import local_fit


@dataclass(frozen=True)
class Profile:
    """One parameter's profile (parameter scale): values, nllh - nllh_best, interval bounds.

    ``lower``/``upper`` are -inf/inf where the profile stays under the threshold up to the bound.
    """

    parameter: str
    scale: str
    values: np.ndarray
    delta_nllh: np.ndarray
    threshold: float
    lower: float
    upper: float


def _crossing(values, deltas, threshold, best_value) -> float:
    """First crossing of ``threshold`` going away from the best value (linear interpolation)."""
    prev_v, prev_d = best_value, 0.0
    for v, d in zip(values, deltas):
        if d >= threshold:
            if d == prev_d:
                return float(v)
            return float(prev_v + (threshold - prev_d) * (v - prev_v) / (d - prev_d))
        prev_v, prev_d = v, d
    return float("nan")


def profile(objective: Objective, x_best, index: int, *, alpha: float = 0.05, max_points: int = 20,
            first_step: float = 0.05, target_increase: float = 0.5, max_evaluations: int = 100) -> Profile:
    """Profile of the ``index``-th estimated parameter from the optimum ``x_best`` (parameter scale)."""
    from scipy.stats import chi2

    x_best = np.asarray(x_best, dtype=float)
    threshold = float(chi2.ppf(1.0 - alpha, 1) / 2.0)
    f_best = float(objective.nllh(x_best))
    others = np.array([k for k in range(len(x_best)) if k != index], dtype=np.intp)
    lo, hi = objective.lower[index], objective.upper[index]
    points = {float(x_best[index]): 0.0}
    ends = {}
    for direction in (-1.0, 1.0):
        x, step, prev = x_best.copy(), first_step, 0.0
        for _ in range(max_points):
            c = float(np.clip(x[index] + direction * step, lo, hi))
            if c == x[index]:
                break
            trial = x.copy()
            trial[index] = c
            if len(others):
                r = local_fit(objective, trial, active=others, max_evaluations=max_evaluations)
                xt, f = np.array(r.x), r.nllh
            else:
                xt, f = trial, float(objective.nllh(trial))
            d = f - f_best
            if np.isfinite(d) and d - prev > 2 * target_increase and step > 1e-3:
                step /= 2.0
                continue
            points[c] = d
            x = xt if np.isfinite(f) else trial
            if not np.isfinite(d) or d > threshold + 1.0:
                break
            if d - prev < 0.2 * target_increase:
                step *= 2.0
            prev = d
        side = sorted((v for v in points if (v - x_best[index]) * direction > 0), key=lambda v: abs(v - x_best[index]))
        cross = _crossing(side, [points[v] for v in side], threshold, float(x_best[index]))
        ends[direction] = cross if np.isfinite(cross) else direction * np.inf
    vals = np.array(sorted(points))
    return Profile(objective.problem.free[index], objective.scales[index], vals, np.array([points[v] for v in vals]),
                   threshold, ends[-1.0], ends[1.0])


def profiles(objective: Objective, x_best, *, parameters=None, **kwargs) -> list:
    """Profiles of the named estimated parameters (default: all)."""
    names = list(objective.problem.free)
    chosen = names if parameters is None else list(parameters)
    return [profile(objective, x_best, names.index(p), **kwargs) for p in chosen]
