"""Version-6 tumour structure (models/calibration.md "Version 6"): direction tests on paired virtual
patients (the same rates and patients, one mechanism switched).

- cell loss: a drug that only stops proliferation shrinks a lesion once in-vivo cell loss is
  modelled, and leaves it unchanged without it;
- a separate loss of the chemotherapy effect: a faster one shortens the chemotherapy response
  (earlier regrowth) without touching signalling-only arms.
"""

import numpy as np
import pytest

from her2sim.errors import InvalidArgument
from her2sim.trial.tumour import DailyRates, grow, load_tumour

N, DAYS = 3, 240                      # patients, days
BASE = float(np.float32(0.005))       # in-vitro drug-free rate 1/h (float32 like the stored rates)
SITE = np.array([0, 0, 1])


def _rates(signal=0.0, chemo=0.0, base=BASE):
    dS = np.zeros((N, DAYS, 2, 3), np.float32)
    dS[..., 0], dS[..., 2] = signal, chemo
    return DailyRates(dS, dS.copy(), np.zeros((N, DAYS, 2), np.float32), base=np.full((N, 2), base))


def _grow(rates, **kw):
    g = np.array([0.0002, 0.0004, 0.0008])      # 1/h: volume doubling ~145, 72, 36 days
    d0 = np.full((N, 3), 20.0)
    kw.setdefault("scales", (0.15, 0.05, 1.0))
    kw.setdefault("resistance_rate", 0.0)
    return grow(rates, load_tumour(), g, np.full(N, 0.1), d0, SITE, **kw)[0]


def test_stopping_proliferation_shrinks_lesions_only_with_cell_loss():
    stop = _rates(signal=-BASE)                  # in vitro: growth to exactly zero, no kill
    none = _grow(stop, cell_loss_factor=0.0)     # no loss: proliferation stopped -> net growth 0
    np.testing.assert_allclose(none[:, -1], none[:, 0], rtol=1e-9)
    loss = _grow(stop, cell_loss_factor=0.8)
    assert (loss[:, -1] < 0.7 * loss[:, 0]).all()             # partial response (>= 30 % smaller)
    # faster-proliferating tumours shrink faster under the same block
    assert loss[0, -1, 0] > loss[1, -1, 0] > loss[2, -1, 0]
    # more cell loss, more shrinkage
    assert (_grow(stop, cell_loss_factor=0.9)[:, -1] < loss[:, -1]).all()


def test_cell_loss_keeps_in_vitro_kill_beyond_zero_growth():
    loss = _grow(_rates(signal=-BASE), cell_loss_factor=0.8)
    kill = _grow(_rates(signal=-2 * BASE), cell_loss_factor=0.8)   # stops growth and kills as much again
    assert (kill[:, -1] < loss[:, -1]).all()
    # a background that does not grow in vitro has no cytostatic part: the v5 absolute effect
    flat = _rates(signal=-BASE, base=0.0)
    np.testing.assert_allclose(_grow(flat, cell_loss_factor=0.8), _grow(flat), rtol=1e-12)


def test_cell_loss_needs_the_drug_free_base_rate():
    r = _rates(signal=-BASE)
    with pytest.raises(InvalidArgument, match="base"):
        _grow(DailyRates(r.dS, r.dR, r.byst), cell_loss_factor=0.8)


def test_separate_chemotherapy_loss_of_effect():
    chemo = _rates(chemo=0.004)
    same = _grow(chemo, resistance_rate=0.0003)
    fast = _grow(chemo, resistance_rate=0.0003, chemo_resistance_rate=0.001)
    np.testing.assert_allclose(_grow(chemo, resistance_rate=0.0003, chemo_resistance_rate=0.0003), same, rtol=1e-12)
    # the first weeks nearly alike (depth), then the faster loss regrows earlier (duration)
    assert (fast[:, 14] / same[:, 14] < 1.1).all()
    nadir_same, nadir_fast = same[:, :, 0].argmin(axis=1), fast[:, :, 0].argmin(axis=1)
    assert (nadir_fast < nadir_same).all() and (fast[:, -1] > same[:, -1]).all()
    # signalling-only rates do not see the chemotherapy loss of effect
    sig = _rates(signal=-0.003)
    np.testing.assert_array_equal(_grow(sig, resistance_rate=0.0003, chemo_resistance_rate=0.001),
                                  _grow(sig, resistance_rate=0.0003))


def test_structure_6_start_and_knobs():
    from types import SimpleNamespace

    from her2sim.trial.calibrate import (CELL_LOSS_FACTOR_V6, NEUTRAL_START_V6, PARAMETERS_V6, knobs,
                                         parameter_names, prior_penalty)
    from her2sim.trial.calibrate_cli import check_calibrate_args

    args = SimpleNamespace(patients=None, seed=None, max_evaluations=10, restarts=0, fit_workers=1, trials=None,
                           leave_one_out=False, out=None, folds=None, start="neutral", structure=6)
    assert check_calibrate_args(args)["start"] == NEUTRAL_START_V6 and len(NEUTRAL_START_V6) == len(PARAMETERS_V6)
    args.start = "shipped"                  # the chemotherapy loss of effect starts at the signalling one
    shipped = check_calibrate_args(args)["start"]
    assert len(shipped) == 9 and shipped[8] == shipped[4]
    kn = knobs(dict(zip(PARAMETERS_V6, NEUTRAL_START_V6)))
    assert kn["cell_loss_factor"] == CELL_LOSS_FACTOR_V6
    assert kn["chemo_resistance_rate"] == pytest.approx(0.053 / 168)
    # the new knob has its prior: moving it away from Claret's value costs
    x = np.log(NEUTRAL_START_V6)
    assert prior_penalty(x + np.eye(9)[8]) > prior_penalty(x)
    with pytest.raises(InvalidArgument, match="version 6"):
        parameter_names(7)
