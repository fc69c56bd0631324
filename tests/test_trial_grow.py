"""The vectorised lesion growth (tumour.grow) equals the day-by-day loop it replaced (grow_reference)
to round-off, on random daily rates with and without bystander kill, T-cell kill and cross-resistance."""

import numpy as np
import pytest

from her2sim.trial.tumour import DailyRates, grow, grow_reference, load_tumour


def _rates(rng, n, days, bystander):
    dS = rng.normal(0.0, 0.002, (n, days, 2, 3))
    dS[..., 1:] = 0.1 * np.abs(dS[..., 1:])                 # kill rates are >= 0
    dS[..., 0] += rng.normal(0.0, 0.004, (n, 1, 1))         # a lasting effect per patient
    dS = dS.astype(np.float32)
    dR = (dS * rng.uniform(0.2, 1.0, dS.shape)).astype(np.float32)
    byst = np.zeros((n, days, 2), np.float32)
    if bystander:
        byst[: n // 2] = rng.uniform(0.0, 0.002, (n // 2, days, 2))   # half the patients coupled
    xS = (dS[..., 0] * rng.uniform(0, 1, (n, days, 2))).astype(np.float32)
    xR = (dR[..., 0] * rng.uniform(0, 1, (n, days, 2))).astype(np.float32)
    return DailyRates(dS, dR, byst, xS, xR)


@pytest.mark.parametrize("bystander,tcell,rho", [(False, False, 1.0), (True, False, 0.6), (True, True, 0.4)])
def test_grow_matches_the_daily_loop(bystander, tcell, rho):
    rng = np.random.default_rng(7)
    n, days = 40, 120
    tp = load_tumour()
    rates = _rates(rng, n, days, bystander)
    g = rng.lognormal(np.log(0.0003), 0.8, n)
    f = rng.uniform(0.01, 0.4, n)
    d0 = rng.uniform(10, 40, (n, 3))
    d0[::3, 1] = np.nan                                     # some patients have fewer lesions
    site = np.array([0, 0, 1])
    kw = dict(scales=(0.2, 0.05, 1.5), resistance_rate=0.0004, pretreated_signal_factor=rho,
              tcell=rng.uniform(0, 1e-4, n) if tcell else None)
    d_new, s_new = grow(rates, tp, g, f, d0, site, **kw)
    d_ref, s_ref = grow_reference(rates, tp, g, f, d0, site, **kw)
    assert d_new.shape == d_ref.shape == (n, days + 1, 3)
    np.testing.assert_array_equal(np.isnan(d_new), np.isnan(d_ref))
    np.testing.assert_allclose(d_new, d_ref, rtol=1e-12, atol=0)
    np.testing.assert_allclose(s_new, s_ref, rtol=1e-12, atol=1e-300)
    # the case is not trivial: lesions both shrink and grow, and bystander kill moves the R share
    assert np.nanmin(d_new[:, -1] / d0) < 0.7 and np.nanmax(d_new[:, -1] / d0) > 1.3

