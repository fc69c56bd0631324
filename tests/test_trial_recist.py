"""RECIST 1.1 classification table and vectorised assessment."""

import numpy as np
import pytest

from her2sim.trial.recist import assess, classify, rates

CASES = [
    # id, sld, baseline, nadir, new lesion, all gone, expected
    ("complete_response", 0.0, 50.0, 0.0, False, True, "CR"),
    ("partial_response_at_minus_30pct", 35.0, 50.0, 35.0, False, False, "PR"),
    ("stable_at_minus_29pct", 35.5, 50.0, 35.5, False, False, "SD"),
    ("progression_plus_20pct_and_5mm", 60.0, 50.0, 50.0, False, False, "PD"),
    ("no_progression_plus_20pct_below_5mm", 12.0, 10.0, 10.0, False, False, "SD"),
    ("progression_over_nadir_not_baseline", 30.0, 50.0, 24.0, False, False, "PD"),
    ("new_lesion_is_progression", 10.0, 50.0, 10.0, True, False, "PD"),
    ("regrowth_after_disappearance", 6.0, 50.0, 0.0, False, False, "PD"),
]


@pytest.mark.parametrize("sld, base, nadir, new, gone, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_classify(sld, base, nadir, new, gone, expected):
    assert classify(sld, base, nadir, new, gone) == expected


def test_assess_best_response_and_progression_index():
    sld = np.array([[50, 40, 30, 28, 40], [50, 52, 61, 70, 80], [50, 45, 45, 45, 45]], float)
    gone = np.zeros_like(sld, dtype=bool)
    new = np.zeros_like(gone)
    new[2, 3] = True
    r = assess(sld, gone, new)
    np.testing.assert_array_equal(r["progression_index"], [4, 2, 3])
    assert list(r["best"]) == ["PR", "SD", "SD"]
    assert r["best_change"][0] == pytest.approx(-44.0)


def test_rates():
    out = rates(np.array(["CR", "PR", "SD", "PD"]), np.array([0, 0, 30, 0]))
    assert out["ORR"] == 0.5 and out["DCR"] == 0.75 and out["CBR"] == 0.75
