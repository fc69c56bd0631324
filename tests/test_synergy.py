"""Tests for her2sim.screen.synergy: null surfaces score zero, symmetry, sign, errors, cross-check."""

from __future__ import annotations

import importlib.metadata
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from her2sim.screen import synergy as sy
from her2sim.screen.doseresponse import DoseResponseInputError, loglogistic4

A = np.r_[0.0, np.geomspace(0.1, 10.0, 6)]
B = np.r_[0.0, np.geomspace(0.3, 30.0, 7)]
METHODS = [sy.hsa, sy.bliss, sy.loewe, sy.zip]


def hill_inhibition(d, ec50, hill, emax=1.0):
    """Inhibition 0 -> emax of an exact Hill curve."""
    return loglogistic4(d, emax, 0.0, ec50, hill)


def bliss_surface(a, b, pa, pb):
    """Inhibition of independent drugs: fraction unaffected f_AB = f_A * f_B."""
    fa = 1.0 - hill_inhibition(a, *pa)[:, None]
    fb = 1.0 - hill_inhibition(b, *pb)[None, :]
    return 1.0 - fa * fb


def synergistic_surface(a, b, shift=3.0):
    """Bliss surface whose drug-B potency rises with drug A (a clear synergy)."""
    ia = hill_inhibition(a, 1.0, 1.2)[:, None]
    ec50_b = 3.0 / (1.0 + shift * ia)  # ec50 of B shrinks as A's effect grows
    ib = hill_inhibition(b[None, :], ec50_b, 0.9)
    return ia + ib - ia * ib


hill = st.tuples(st.floats(0.05, 20.0), st.floats(0.5, 3.0), st.floats(0.3, 1.0))


@settings(max_examples=50, deadline=None)
@given(hill, hill)
def test_bliss_zero_on_product_surface(pa, pb):
    s = sy.bliss(A, B, bliss_surface(A, B, pa, pb))
    assert np.allclose(s.scores[1:, 1:], 0.0, atol=1e-12)
    assert abs(s.summary) < 1e-12
    assert np.isnan(s.scores[0]).all() and np.isnan(s.scores[:, 0]).all()


@settings(max_examples=30, deadline=None)
@given(hill, hill)
def test_hsa_zero_when_combination_equals_stronger_agent(pa, pb):
    ia, ib = hill_inhibition(A, *pa), hill_inhibition(B, *pb)
    e = np.maximum(ia[:, None], ib[None, :])
    s = sy.hsa(A, B, e)
    assert np.allclose(s.scores[1:, 1:], 0.0, atol=0.0)
    assert np.array_equal(s.expected[1:, 1:], e[1:, 1:])


@pytest.mark.parametrize(
    "ec50, hill_slope, emax",
    [(1.0, 1.0, 1.0), (0.5, 2.5, 0.8), (4.0, 0.7, 0.95)],
    ids=["full", "steep-partial", "shallow"],
)
def test_loewe_zero_on_sham_combination(ec50, hill_slope, emax):
    e = hill_inhibition(A[:, None] + A[None, :], ec50, hill_slope, emax)  # drug combined with itself
    s = sy.loewe(A, A, e)
    assert np.nanmax(np.abs(s.scores)) < 1e-6
    assert abs(s.summary) < 1e-6


@pytest.mark.parametrize(
    "pa, pb", [((1.0, 1.3, 1.0), (3.0, 0.8, 1.0)), ((0.2, 2.0, 1.0), (10.0, 1.5, 1.0))], ids=["moderate", "steep"]
)
def test_zip_zero_on_bliss_surface_from_hill_curves(pa, pb):
    s = sy.zip(A, B, bliss_surface(A, B, pa, pb))
    assert np.nanmax(np.abs(s.scores)) < 1e-6
    assert abs(s.summary) < 1e-6


@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.__name__)
def test_positive_score_on_synergistic_surface(method):
    assert method(A, B, synergistic_surface(A, B)).summary > 0.01
    if method in (sy.bliss, sy.zip):  # Bliss-based; HSA and Loewe references differ in level
        assert method(A, B, synergistic_surface(A, B, shift=-0.7)).summary < -0.005


@settings(max_examples=6, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(-0.7, 5.0))
def test_swapping_drugs_leaves_summaries_unchanged(seed, shift):
    rng = np.random.default_rng(seed)
    e = synergistic_surface(A, B, shift)
    e[1:, 1:] = np.clip(e[1:, 1:] + rng.normal(0, 0.02, e[1:, 1:].shape), 0, 1)
    for method in METHODS:
        s, t = method(A, B, e), method(B, A, e.T)
        assert t.summary == pytest.approx(s.summary, abs=1e-6), method.__name__
        assert np.allclose(t.scores.T, s.scores, atol=1e-5, equal_nan=True), method.__name__
    c, ct = sy.combination_index(A, B, e), sy.combination_index(B, A, e.T)
    assert ct.summary == pytest.approx(c.summary, rel=1e-9)


def test_combination_index_is_one_for_sham_combination():
    e = hill_inhibition(A[:, None] + A[None, :], 1.5, 1.4)
    res = sy.combination_index(A, A, e)
    assert np.allclose(res.ci[1:, 1:], 1.0, rtol=1e-9)
    assert res.summary == pytest.approx(1.0)
    assert res.fit_a.dm == pytest.approx(1.5) and res.fit_a.m == pytest.approx(1.4)
    assert np.isnan(res.ci[0]).all() and np.isnan(res.ci[:, 0]).all()
    assert sy.combination_index(A, B, synergistic_surface(A, B)).summary < 1.0


def test_loewe_fallback_when_effect_unreachable():
    """Drug A plateaus at 30 %: cells beyond it use max(f_A, f_B) at the summed dose, clipped at 1."""
    ia = hill_inhibition(A, 1.0, 1.5, 0.3)[:, None]
    ib = hill_inhibition(B, 2.0, 1.2, 1.0)[None, :]
    e = ia + ib - ia * ib
    s = sy.loewe(A, B, e)
    total = A[:, None] + B[None, :]
    fallback = np.maximum(hill_inhibition(total, 1.0, 1.5, 0.3), hill_inhibition(total, 2.0, 1.2, 1.0))
    unreachable = ib > 0.3  # B alone already beyond A's maximum
    unreachable = np.broadcast_to(unreachable, e.shape).copy()
    unreachable[0, :] = unreachable[:, 0] = False
    assert unreachable.any()
    assert np.allclose(s.expected[unreachable], fallback[unreachable], atol=1e-6)
    assert np.all(s.expected[1:, 1:] <= 1.0)


def test_results_are_read_only():
    s = sy.bliss(A, B, bliss_surface(A, B, (1, 1, 1), (1, 1, 1)))
    with pytest.raises(ValueError):
        s.scores[1, 1] = 0.0


GOOD = bliss_surface(A, B, (1.0, 1.0, 1.0), (2.0, 1.0, 1.0))


def _with(matrix, index, value):
    out = np.array(matrix, dtype=float)
    out[index] = value
    return out


BAD_INPUTS = [
    ("dose-a-not-starting-at-0", sy.bliss, (A + 1, B, GOOD), r"doses_a: must start with 0"),
    ("dose-b-negative", sy.hsa, (A, -B, GOOD), r"doses_b: .*negative"),
    ("dose-unsorted", sy.bliss, (A[[0, 2, 1, 3, 4, 5, 6]], B, GOOD), r"doses_a: must be strictly increasing"),
    ("dose-nan", sy.bliss, (_with(A, 3, np.nan), B, GOOD), r"doses_a: .*NaN"),
    ("matrix-transposed", sy.bliss, (A, B, GOOD.T), r"inhibition: shape"),
    ("matrix-1d", sy.bliss, (A, B, GOOD.ravel()), r"inhibition: expected a 2-D"),
    ("percent-not-fraction", sy.bliss, (A, B, GOOD * 100), r"inhibition: values must be fractions"),
    ("negative-inhibition", sy.hsa, (A, B, _with(GOOD, (2, 2), -0.01)), r"inhibition: values must be fractions"),
    ("nan-inhibition", sy.loewe, (A, B, _with(GOOD, (2, 2), np.nan)), r"inhibition: .*NaN"),
    ("baseline-not-zero", sy.bliss, (A, B, _with(GOOD, (0, 0), 0.2)), r"inhibition\[0, 0\] must be 0"),
    ("zip-too-few-doses", sy.zip, (A[:3], B, GOOD[:3]), r"doses_a: zip .* needs >= 3 non-zero doses"),
    ("loewe-too-few-doses", sy.loewe, (A, B[:3], GOOD[:, :3]), r"doses_b: loewe .* needs >= 3"),
    (
        "ci-no-responsive-doses",
        sy.combination_index,
        (A, B, _with(GOOD, (slice(None), 0), 0.0)),
        r"fraction_affected: the median-effect fit needs",
    ),
    ("single-dose-only", sy.bliss, (A[:1], B, GOOD[:1]), r"doses_a: need the 0 control"),
]


@pytest.mark.parametrize("method, args, pattern", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise_value_error(method, args, pattern):
    with pytest.raises(ValueError, match=pattern) as info:
        method(*args)
    assert isinstance(info.value, DoseResponseInputError)


def test_tolerance_allows_tiny_numerical_overshoot():
    e = _with(GOOD, (1, 1), -0.5 * sy.INHIBITION_TOLERANCE)
    assert np.isfinite(sy.bliss(A, B, e).summary)


# --------------------------------------------------------------------- optional cross-check
def test_cross_check_against_synergy_package():
    """Compare with the GPL `synergy` package (test-only; written against synergy 1.0.0).

    `synergy` works on fraction unaffected E (drug lowers E) with flattened dose arrays;
    its delta scores are E_reference - E, the same sign as ours. Bliss/HSA must match
    exactly; Loewe (mode "delta_hsa", Hill fits) where the Loewe root exists; ZIP only
    approximately, because `synergy` fits each slice's maximum effect while
    SynergyFinder (and this module) fix it at 100 %.
    """
    pytest.importorskip("synergy")
    from synergy.combination import HSA, ZIP, Bliss, Loewe

    version = importlib.metadata.version("synergy")
    if not version.startswith("1."):
        pytest.skip(f"cross-check written for synergy 1.x, found {version}")
    e = synergistic_surface(A, B, shift=1.5)
    d1, d2 = (g.ravel() for g in np.meshgrid(A, B, indexing="ij"))
    cases = [
        (sy.bliss, Bliss(), 1e-12),
        (sy.hsa, HSA(), 1e-12),
        (sy.loewe, Loewe(mode="delta_hsa"), 1e-4),
        (sy.zip, ZIP(), 0.03),
    ]
    for ours, theirs, tol in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = np.asarray(theirs.fit(d1, d2, 1.0 - e.ravel())).reshape(e.shape)
        mine = ours(A, B, e)
        assert np.max(np.abs(mine.scores[1:, 1:] - ref[1:, 1:])) < tol, ours.__name__
        assert mine.summary == pytest.approx(ref[1:, 1:].mean(), abs=tol), ours.__name__


@pytest.mark.parametrize("emax", [0.42, 0.7, 1.0])
def test_fitted_emax_recovers_the_plateau_of_a_hill_curve(emax):
    doses = np.array([0.0, 1, 3, 10, 30, 100, 300, 1000])
    inhibition = loglogistic4(doses, emax, 0.0, 20.0, 1.2)  # 0 at dose 0, rising to emax
    assert sy.fitted_emax(doses, inhibition) == pytest.approx(emax, abs=0.02)


def test_fitted_emax_falls_back_to_the_observed_maximum_on_small_grids():
    assert sy.fitted_emax([0, 10, 100], [0.0, 0.2, 0.35]) == pytest.approx(0.35)


# --------------------------------------------------------------------- closed forms (issue 10 item 6)
def test_ci_summary_is_the_geometric_mean_so_ci_2_and_one_half_cancel():
    """Two copies of one Hill drug (Dm 1.5, m 1.4) whose combination at (a, b) acts like the dose
    s (a + b): then D_x = s (a + b) and CI = 1 / s exactly (Chou 2006 Pharmacol Rev 58:621, eq. 13).
    Cells alternate CI = 2 and CI = 1/2 in equal numbers: equal antagonism and synergy on the log
    scale, so the summary (geometric mean) is 1; an arithmetic mean would say 1.25 (antagonism)."""
    dm, m = 1.5, 1.4
    d = np.r_[0.0, np.geomspace(0.2, 5.0, 6)]
    ci_true = np.where(np.add.outer(np.arange(d.size), np.arange(d.size)) % 2 == 0, 2.0, 0.5)
    ci_true[0, :] = ci_true[:, 0] = 1.0  # the single agents themselves
    dose = np.add.outer(d, d) / ci_true
    e = dose ** m / (dose ** m + dm ** m)  # fraction affected
    res = sy.combination_index(d, d, e)
    assert res.fit_a.dm == pytest.approx(dm) and res.fit_a.m == pytest.approx(m)
    np.testing.assert_allclose(res.ci[1:, 1:], ci_true[1:, 1:], rtol=1e-9)
    assert res.summary == pytest.approx(1.0, rel=1e-9)
    # one cell's CI halved: the geometric mean over 36 cells falls by 2**(1/36)
    ci_true[3, 4] /= 2.0
    e = (np.add.outer(d, d) / ci_true) ** m / ((np.add.outer(d, d) / ci_true) ** m + dm ** m)
    assert sy.combination_index(d, d, e).summary == pytest.approx(2.0 ** (-1 / 36), rel=1e-9)


def test_combination_index_cells_match_the_synergy_package():
    """Per-cell Chou-Talalay CI against the `synergy` package's CombinationIndex (same median-effect
    fits of the single agents, same equation) on a synergistic surface."""
    pytest.importorskip("synergy")
    from synergy.combination import CombinationIndex as TheirCI

    e = synergistic_surface(A, B, shift=1.5)
    d1, d2 = (g.ravel() for g in np.meshgrid(A, B, indexing="ij"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.asarray(TheirCI().fit(d1, d2, 1.0 - e.ravel())).reshape(e.shape)
    mine = sy.combination_index(A, B, e).ci
    np.testing.assert_allclose(mine[1:, 1:], ref[1:, 1:], rtol=1e-6)
