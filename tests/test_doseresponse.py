"""Tests for her2sim.screen.doseresponse: 4PL curve and fit, IC50, Emax, GR metrics, input checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2sim.screen import doseresponse as dr

DOSES = np.r_[0.0, np.geomspace(1e-2, 1e2, 11)]

hill_params = st.tuples(
    st.floats(0.0, 0.4),  # bottom (fraction unaffected at infinite dose)
    st.floats(0.05, 20.0),  # ec50
    st.floats(0.5, 4.0),  # hill
)


def test_curve_special_points():
    assert dr.loglogistic4(0.0, 0.2, 1.0, 3.0, 1.5) == 1.0
    assert dr.loglogistic4(3.0, 0.2, 1.0, 3.0, 1.5) == pytest.approx(0.6)
    assert dr.loglogistic4(1e12, 0.2, 1.0, 3.0, 1.5) == pytest.approx(0.2)
    assert dr.loglogistic4(0.0, 0.2, 1.0, 3.0, -1.5) == 0.2  # negative slope flips the ends
    assert dr.loglogistic4(np.zeros((2, 3)), 0.0, 1.0, 1.0, 1.0).shape == (2, 3)


@pytest.mark.parametrize(
    "params",
    [(0.1, 1.0, 1.3, 1.7), (0.0, 1.0, 0.05, 0.7), (-0.2, 1.0, 20.0, 3.0), (0.9, 0.0, 2.0, 1.1)],
    ids=["partial", "potent-shallow", "kill-steep", "increasing-inhibition"],
)
def test_fit_recovers_noiseless_parameters(params):
    fit = dr.fit_loglogistic4(DOSES, dr.loglogistic4(DOSES, *params))
    assert fit.converged
    assert (fit.bottom, fit.top, fit.ec50, fit.hill) == pytest.approx(params, rel=1e-6, abs=1e-8)
    assert fit.residual_rms < 1e-8
    assert fit.predict(0.0) == pytest.approx(params[1])


def test_fit_with_fixed_parameters_and_replicates():
    d = np.repeat(DOSES, 3)
    y = dr.loglogistic4(d, 0.3, 1.0, 2.0, 1.2)
    fit = dr.fit_loglogistic4(d, y, fixed={"top": 1.0})
    assert fit.top == 1.0
    assert (fit.bottom, fit.ec50, fit.hill) == pytest.approx((0.3, 2.0, 1.2), rel=1e-6)


def test_inverse_round_trip_and_unreachable():
    y = np.array([0.9, 0.5, 0.2])
    d = dr.inverse_loglogistic4(y, 0.1, 1.0, 1.3, 1.7)
    assert dr.loglogistic4(d, 0.1, 1.0, 1.3, 1.7) == pytest.approx(y)
    assert np.isnan(dr.inverse_loglogistic4(np.array([0.05, 1.0, 1.2]), 0.1, 1.0, 1.3, 1.7)).all()


@settings(max_examples=40, deadline=None)
@given(hill_params)
def test_ic50_methods_agree_with_analytic(params):
    bottom, ec50, hill = params
    analytic = float(dr.inverse_loglogistic4(0.5, bottom, 1.0, ec50, hill))
    f = lambda d: float(dr.loglogistic4(d, bottom, 1.0, ec50, hill))
    root = dr.find_ic50(f, 1e-4, 1e4)
    assert root.crossed and root.value == pytest.approx(analytic, rel=1e-9)
    fine = np.r_[0.0, np.geomspace(1e-4, 1e4, 801)]
    interp = dr.interpolate_ic50(fine, dr.loglogistic4(fine, bottom, 1.0, ec50, hill))
    assert interp.crossed and interp.value == pytest.approx(analytic, rel=2e-3)
    # with a coarse grid the log-linear interpolation still brackets the truth
    coarse = dr.interpolate_ic50(DOSES, dr.loglogistic4(DOSES, bottom, 1.0, ec50, hill))
    if coarse.crossed:
        assert coarse.value == pytest.approx(analytic, rel=0.6)


def test_ic50_not_crossed_flags():
    weak = dr.loglogistic4(DOSES, 0.7, 1.0, 1.0, 1.0)
    est = dr.interpolate_ic50(DOSES, weak)
    assert math.isnan(est.value) and est.status == "not_reached" and not est.crossed
    potent = dr.loglogistic4(DOSES, 0.0, 1.0, 1e-5, 1.0)
    assert dr.interpolate_ic50(DOSES, potent).status == "below_range"
    assert dr.find_ic50(lambda d: 0.9, 1e-3, 1e3).status == "not_reached"
    assert dr.find_ic50(lambda d: 0.1, 1e-3, 1e3).status == "below_range"
    # dose order does not matter; an exact hit returns that dose
    order = np.arange(DOSES.size)[::-1]
    curve = dr.loglogistic4(DOSES, 0.0, 1.0, 1.0, 1.0)
    assert dr.interpolate_ic50(DOSES[order], curve[order]).value == pytest.approx(1.0)


def test_emax_helpers():
    y = dr.loglogistic4(DOSES, 0.25, 1.0, 1.0, 2.0)
    assert dr.emax(y) == pytest.approx(1 - y.min())
    assert dr.emax_fitted(dr.fit_loglogistic4(DOSES, y)) == pytest.approx(0.75, rel=1e-6)


def test_gr_value_reference_points():
    x0, xc = 100.0, 400.0
    assert dr.gr_value(xc, xc, x0) == pytest.approx(1.0)  # no effect
    assert dr.gr_value(x0, xc, x0) == pytest.approx(0.0)  # cytostasis
    assert dr.gr_value(50.0, xc, x0) < 0  # kill
    assert dr.gr_value(200.0, xc, x0) == pytest.approx(2**0.5 - 1)  # half the doublings
    assert dr.gr_value(np.array([x0, xc]), xc, x0) == pytest.approx([0.0, 1.0])


@settings(max_examples=30, deadline=None)
@given(st.floats(-0.9, 0.45), st.floats(0.05, 5.0), st.floats(0.6, 3.0))
def test_gr_metrics_recover_sigmoid(gr_inf, gec50, h):
    d = np.geomspace(1e-3, 1e2, 10)
    g = dr.loglogistic4(d, gr_inf, 1.0, gec50, h)
    m = dr.gr_metrics(d, g)
    assert m.fit_type == "sigmoid" and m.converged
    assert (m.gr_inf, m.gec50, m.h_gr) == pytest.approx((gr_inf, gec50, h), rel=1e-4, abs=1e-6)
    assert m.gr50 == pytest.approx(float(dr.inverse_loglogistic4(0.5, gr_inf, 1.0, gec50, h)), rel=1e-4)
    assert m.grmax == pytest.approx(g[-2:].min())
    x = np.log10(d)
    assert m.gr_aoc == pytest.approx(np.sum(np.diff(x) * (2 - g[1:] - g[:-1]) / 2))


def test_gr_metrics_flat_and_constant_aoc():
    d = np.r_[0.0, np.geomspace(0.01, 10, 7)]
    g = np.r_[1.0, 0.8 + 0.01 * np.cos(np.arange(7))]
    m = dr.gr_metrics(d, g)
    assert m.fit_type == "flat" and m.gec50 == 0.0 and math.isinf(m.gr50)
    const = dr.gr_metrics(d, np.r_[1.0, np.full(7, 0.6)])
    assert const.gr_aoc == pytest.approx(0.4 * 3.0)  # (1 - GR) * decades tested


def _err(fn, *args, **kwargs):
    return lambda: fn(*args, **kwargs)


BAD_INPUTS = [
    ("negative-dose", _err(dr.fit_loglogistic4, [0, -1, 2, 3], [1, 0.9, 0.5, 0.2]), r"doses: .*negative"),
    ("nan-response", _err(dr.fit_loglogistic4, [0, 1, 2, 3], [1, np.nan, 0.5, 0.2]), r"responses: .*NaN"),
    ("shape-mismatch", _err(dr.fit_loglogistic4, [0, 1, 2, 3], [1, 0.5, 0.2]), r"responses: shape"),
    ("too-few-doses", _err(dr.fit_loglogistic4, [0, 0, 1], [1, 1, 0.5]), r"doses: need at least 2 distinct"),
    ("unknown-fixed", _err(dr.fit_loglogistic4, DOSES, DOSES * 0, fixed={"emax": 1}), r"unknown parameter"),
    ("2d-doses", _err(dr.interpolate_ic50, [[0, 1]], [[1, 0.5]]), r"doses: expected a 1-D"),
    ("repeated-doses", _err(dr.interpolate_ic50, [0, 1, 1], [1, 0.6, 0.4]), r"doses: contains repeated"),
    ("ic50-nan", _err(dr.interpolate_ic50, [0, 1, 2], [1, np.nan, 0.4]), r"fraction_unaffected: .*NaN"),
    ("bad-bracket", _err(dr.find_ic50, lambda d: 0.5, 0.0, 1.0), r"lo, hi: need finite 0 < lo < hi"),
    ("not-callable", _err(dr.find_ic50, 0.5, 1e-3, 1.0), r"f: must be a callable"),
    ("f-returns-nan", _err(dr.find_ic50, lambda d: np.nan, 1e-3, 1.0), r"f: returned nan"),
    ("gr-zero-count", _err(dr.gr_value, 0.0, 400.0, 100.0), r"x_treated: cell counts must be > 0"),
    ("gr-no-growth", _err(dr.gr_value, 50.0, 100.0, 100.0), r"x_control: must exceed x0"),
    ("gr-broadcast", _err(dr.gr_value, [1.0, 2.0], [3.0, 4.0, 5.0], 0.5), r"do not broadcast"),
    ("gr-few-doses", _err(dr.gr_metrics, [0, 1, 2], [1, 0.5, 0.2]), r"at least 3 distinct positive"),
    ("gr-negative-dose", _err(dr.gr_metrics, [-1, 1, 2, 3], [1, 0.5, 0.2, 0.1]), r"doses: .*negative"),
    ("text-input", _err(dr.fit_loglogistic4, ["a", "b"], [1, 2]), r"doses: cannot be read as numbers"),
]


@pytest.mark.parametrize("call, pattern", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        call()
    assert isinstance(info.value, dr.DoseResponseInputError)
