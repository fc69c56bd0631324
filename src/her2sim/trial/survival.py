"""Time-to-event statistics: Kaplan-Meier, median with CI, log-rank test, Cox proportional hazards.

Pure functions of (time, event[, group]) arrays; ``event`` is 1 for an observed event, 0 for
censoring. References: Kaplan & Meier, JASA 1958;53:457 (estimator) with Greenwood's variance;
Brookmeyer & Crowley, Biometrics 1982;38:29 (median CI by test inversion, here on the
complementary log-log scale of Kalbfleisch & Prentice 1980); Mantel, Cancer Chemother Rep
1966;50:163 (log-rank with the hypergeometric variance for ties); Cox, JRSS B 1972;34:187 with
Efron's tie correction (Efron, JASA 1977;72:557), maximised by Newton-Raphson, Wald CI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..errors import InvalidArgument


def _check(time, event):
    t = np.asarray(time, float)
    e = np.asarray(event).astype(bool)
    if t.ndim != 1 or t.shape != e.shape:
        raise InvalidArgument(f"time and event must be 1-D arrays of equal length, got {t.shape} and {e.shape}")
    if np.any(~np.isfinite(t)) or np.any(t < 0):
        raise InvalidArgument("time must be finite and >= 0")
    return t, e


@dataclass(frozen=True)
class KaplanMeier:
    """Survival curve: distinct event/censoring times, survival after each, Greenwood variance terms."""

    time: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    greenwood: np.ndarray   # cumulative sum d / (n (n - d))

    def at(self, t: float) -> float:
        """S(t): survival just after time t (right-continuous step function)."""
        k = np.searchsorted(self.time, t, side="right") - 1
        return 1.0 if k < 0 else float(self.survival[k])

    def ci(self, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
        """Pointwise log-log CI of S(t) at ``self.time``."""
        z = stats.norm.ppf(1 - alpha / 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            lnS = np.log(self.survival)
            se = np.sqrt(self.greenwood) / np.abs(lnS)
            lo = np.exp(-np.exp(np.log(-lnS) + z * se))
            hi = np.exp(-np.exp(np.log(-lnS) - z * se))
        return np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(hi), hi, 1.0)


def kaplan_meier(time, event) -> KaplanMeier:
    """Kaplan-Meier estimate; returns the curve at each distinct time with at least one event."""
    t, e = _check(time, event)
    ut = np.unique(t[e])
    n = np.array([(t >= u).sum() for u in ut], dtype=float)
    d = np.array([((t == u) & e).sum() for u in ut], dtype=float)
    S = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        gw = np.cumsum(np.where(n > d, d / (n * (n - d)), np.inf))
    return KaplanMeier(ut, S, n, d, gw)


def median_survival(km: KaplanMeier, alpha: float = 0.05) -> tuple[float, float, float]:
    """(median, lower, upper): smallest t with S(t) <= 0.5, and the Brookmeyer-Crowley CI: the set of
    t whose log-log-transformed test of S(t) = 0.5 is not rejected at ``alpha`` (NaN where not reached)."""
    def first_below(S):
        k = np.flatnonzero(S <= 0.5 + 1e-12)
        return float(km.time[k[0]]) if len(k) else float("nan")

    med = first_below(km.survival)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        lnS = np.log(km.survival)
        stat = (np.log(-lnS) - np.log(-np.log(0.5))) / (np.sqrt(km.greenwood) / np.abs(lnS))
    # lower limit: first time at which the curve is no longer significantly above 0.5 (when S drops
    # across 0.5 in one step, that is the step itself: the interval is then [t, ...], not NaN)
    not_above = stat >= -z
    lo = float(km.time[np.argmax(not_above)]) if not_above.any() else float("nan")
    # upper limit: first time after which the curve is significantly below 0.5
    below = stat > z  # log(-log S) large => S small
    hi = float(km.time[np.argmax(below)]) if below.any() else float("nan")
    return med, lo, hi


def logrank(time, event, group) -> tuple[float, float]:
    """Two-group log-rank test: (chi-square statistic with 1 df, p-value). ``group`` is 0/1."""
    t, e = _check(time, event)
    g = np.asarray(group).astype(bool)
    ut = np.unique(t[e])
    O1 = E1 = V = 0.0
    for u in ut:
        at = t >= u
        n, n1 = at.sum(), (at & g).sum()
        d = ((t == u) & e).sum()
        d1 = ((t == u) & e & g).sum()
        O1 += d1
        E1 += d * n1 / n
        if n > 1:
            V += d * (n1 / n) * (1 - n1 / n) * (n - d) / (n - 1)
    chi2 = (O1 - E1) ** 2 / V if V > 0 else 0.0
    return float(chi2), float(stats.chi2.sf(chi2, 1))


@dataclass(frozen=True)
class CoxResult:
    """Cox model with one covariate: hazard ratio exp(beta), Wald CI and p-value."""

    beta: float
    se: float
    hazard_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    iterations: int


def cox_single(time, event, x, *, ties: str = "efron", alpha: float = 0.05, max_iter: int = 50,
               tol: float = 1e-10) -> CoxResult:
    """Cox proportional-hazards fit of one covariate ``x`` (e.g. arm 0/1) by Newton-Raphson.

    ``ties`` = "efron" (default) or "breslow". Raises InvalidArgument (a ValueError) if no events or the estimate
    diverges (e.g. no events in one group: the HR is 0 or infinite).
    """
    if ties not in ("efron", "breslow"):
        raise InvalidArgument(f"ties must be 'efron' or 'breslow', got {ties!r}")
    t, e = _check(time, event)
    x = np.asarray(x, float)
    if not e.any():
        raise InvalidArgument("no events: the hazard ratio is not estimable")
    ut = np.unique(t[e])
    groups = [(t >= u, (t == u) & e) for u in ut]
    beta = 0.0
    for it in range(1, max_iter + 1):
        U = I = 0.0
        w = np.exp(beta * x)
        for risk, dead in groups:
            d = dead.sum()
            s0, s1, s2 = w[risk].sum(), (w * x)[risk].sum(), (w * x * x)[risk].sum()
            xd = x[dead].sum()
            if ties == "breslow" or d == 1:
                U += xd - d * s1 / s0
                I += d * (s2 / s0 - (s1 / s0) ** 2)
            else:
                a0, a1, a2 = w[dead].sum(), (w * x)[dead].sum(), (w * x * x)[dead].sum()
                for k in range(d):
                    f = k / d
                    q0, q1, q2 = s0 - f * a0, s1 - f * a1, s2 - f * a2
                    U -= q1 / q0
                    I += q2 / q0 - (q1 / q0) ** 2
                U += xd
        if I <= 0:
            raise InvalidArgument("Cox fit: information is zero (the covariate is constant among those at risk)")
        step = U / I
        beta += step
        if abs(beta) > 50:
            raise InvalidArgument("Cox fit diverged (|beta| > 50): probably no events in one group")
        if abs(step) < tol:
            break
    se = 1.0 / np.sqrt(I)
    z = stats.norm.ppf(1 - alpha / 2)
    p = 2 * stats.norm.sf(abs(beta / se))
    return CoxResult(float(beta), float(se), float(np.exp(beta)), float(np.exp(beta - z * se)),
                     float(np.exp(beta + z * se)), float(p), it)
