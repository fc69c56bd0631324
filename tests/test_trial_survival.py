"""Kaplan-Meier, median CI, log-rank and Cox against hand-computed values and simulation."""

import numpy as np
import pytest

from her2sim.trial.survival import cox_single, kaplan_meier, logrank, median_survival


def test_kaplan_meier_hand_example():
    km = kaplan_meier([1, 2, 2, 3, 4, 5], [1, 1, 0, 1, 0, 1])
    np.testing.assert_allclose(km.time, [1, 2, 3, 5])
    np.testing.assert_allclose(km.survival, [5 / 6, 4 / 6, 4 / 9, 0.0])
    np.testing.assert_allclose(km.at_risk, [6, 5, 3, 1])
    np.testing.assert_allclose(km.greenwood[:2], [1 / 30, 1 / 30 + 1 / 20])
    assert km.at(0.5) == 1.0 and km.at(2.5) == pytest.approx(4 / 6)
    assert median_survival(km)[0] == 3.0


def test_logrank_hand_example():
    # group 1 events at 1 and 3, group 0 at 2 and 4: O-E = 2/3, V = 1/4 + 2/9 + 1/4
    chi2, p = logrank([1, 3, 2, 4], [1, 1, 1, 1], [1, 1, 0, 0])
    assert chi2 == pytest.approx((2 / 3) ** 2 / (0.25 + 2 / 9 + 0.25))
    assert 0 < p < 1


def test_cox_exact_small_example():
    # partial likelihood r/(2r+2) * 1/(r+2) * r/(r+1): maximum at r^2 - r - 4 = 0
    res = cox_single([1, 3, 2, 4], [1, 1, 1, 1], [1, 1, 0, 0])
    assert res.hazard_ratio == pytest.approx((1 + np.sqrt(17)) / 2, rel=1e-8)
    assert res.ci_low < res.hazard_ratio < res.ci_high


def test_cox_and_logrank_recover_a_known_hazard_ratio():
    rng = np.random.default_rng(7)
    n, hr = 3000, 0.6
    x = rng.integers(0, 2, n)
    t = rng.exponential(1.0 / (0.1 * np.where(x == 1, hr, 1.0)))
    c = rng.uniform(0, 30, n)
    time, event = np.minimum(t, c), t <= c
    res = cox_single(time, event, x)
    assert res.ci_low < hr < res.ci_high
    assert res.hazard_ratio == pytest.approx(hr, rel=0.1)
    assert logrank(time, event, x)[1] < 1e-6
    # heavy ties (times rounded up to 6-week scans): Efron stays close, Breslow is biased toward 1
    tied = np.ceil(time / 1.5) * 1.5
    efron = cox_single(tied, event, x).hazard_ratio
    breslow = cox_single(tied, event, x, ties="breslow").hazard_ratio
    assert abs(np.log(efron / hr)) < 0.1
    assert abs(np.log(breslow)) <= abs(np.log(efron)) + 1e-9


def test_median_ci_covers_the_exponential_median():
    rng = np.random.default_rng(3)
    t = rng.exponential(10.0, 400)
    km = kaplan_meier(t, np.ones_like(t))
    med, lo, hi = median_survival(km)
    assert lo <= med <= hi
    assert lo < 10 * np.log(2) < hi


def test_median_ci_when_the_curve_steps_across_one_half():
    # S = 0.9 (significantly above 1/2) then 0.1 (significantly below) at t = 2: every bound is 2
    t = np.r_[np.full(10, 1.0), np.full(80, 2.0), np.full(10, 3.0)]
    e = np.r_[np.ones(90, bool), np.zeros(10, bool)]
    assert median_survival(kaplan_meier(t, e)) == (2.0, 2.0, 2.0)


def test_no_events_is_a_clear_error():
    with pytest.raises(ValueError, match="no events"):
        cox_single([1, 2], [0, 0], [0, 1])


def _censored(time, event):
    from scipy import stats

    time, event = np.asarray(time, float), np.asarray(event, bool)
    return stats.CensoredData(uncensored=time[event], right=time[~event])


def _tied_sample(seed=4, n=80):
    """Times rounded up to 6-week scans (many ties), ~30% censored, two groups."""
    rng = np.random.default_rng(seed)
    t = np.ceil(rng.exponential(8.0, n) / 1.5) * 1.5
    return t, rng.random(n) < 0.7, rng.integers(0, 2, n)


def test_kaplan_meier_and_greenwood_ci_equal_scipy_ecdf():
    """scipy.stats.ecdf on censored data is the Kaplan-Meier estimator; its log-log CI uses Greenwood."""
    import warnings

    from scipy import stats

    t, e, _ = _tied_sample()
    km = kaplan_meier(t, e)
    sf = stats.ecdf(_censored(t, e)).sf
    np.testing.assert_allclose(km.survival, sf.evaluate(km.time), atol=1e-14)
    with warnings.catch_warnings():  # scipy warns where the CI is undefined (S = 0)
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = sf.confidence_interval(0.95, method="log-log")
    lo, hi = km.ci()
    ref_lo, ref_hi = ci.low.evaluate(km.time), ci.high.evaluate(km.time)
    ok = np.isfinite(ref_lo) & np.isfinite(ref_hi)
    assert ok.sum() >= len(ok) - 1
    np.testing.assert_allclose(lo[ok], ref_lo[ok], atol=1e-12)
    np.testing.assert_allclose(hi[ok], ref_hi[ok], atol=1e-12)


def test_logrank_equals_scipy_logrank_with_ties():
    from scipy import stats

    t, e, g = _tied_sample(seed=9, n=120)
    chi2, p = logrank(t, e, g)
    ref = stats.logrank(_censored(t[g == 1], e[g == 1]), _censored(t[g == 0], e[g == 0]))
    assert chi2 == pytest.approx(ref.statistic ** 2, rel=1e-10)
    assert p == pytest.approx(ref.pvalue, rel=1e-10)


def test_cox_fit_equals_a_direct_maximisation_of_the_partial_likelihood():
    """No ties: the Newton-Raphson estimate and its SE equal scipy's maximum of the Cox partial
    log-likelihood sum_events [b x_i - log sum_risk exp(b x_j)] and its numerical curvature."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(12)
    x = rng.integers(0, 2, 300).astype(float)
    t = rng.exponential(1.0 / np.where(x == 1, 0.7, 1.0))
    c = rng.uniform(0, 3, 300)
    time, event = np.minimum(t, c), t <= c

    def nll(b):
        order = np.argsort(-time)  # risk-set sums as reverse cumulative sums
        risk = np.cumsum(np.exp(b * x[order]))[np.argsort(order)]
        return -np.sum((b * x - np.log(risk))[event])

    ref = minimize_scalar(nll, bounds=(-3, 3), method="bounded", options={"xatol": 1e-10})
    h = 1e-4
    curvature = (nll(ref.x + h) - 2 * nll(ref.x) + nll(ref.x - h)) / h ** 2
    res = cox_single(time, event, x)
    assert res.beta == pytest.approx(ref.x, abs=1e-7)
    assert res.se == pytest.approx(1 / np.sqrt(curvature), rel=1e-4)
