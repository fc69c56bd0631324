"""Drug-combination synergy scores on a dose matrix (SynergyFinder conventions).

Input convention, shared by every function here:

* ``doses_a`` shape (n_a,), ``doses_b`` shape (n_b,): strictly increasing
  concentrations, each starting with 0 (row 0 / column 0 are the single agents).
* ``inhibition`` shape (n_a, n_b): effect of drug A at ``doses_a[i]`` combined with
  drug B at ``doses_b[j]``, as a **fraction inhibited** in [0, 1] (not %), with
  ``inhibition[0, 0] == 0`` (untreated baseline). Convert viability first:
  ``inhibition = 1 - fraction_unaffected``.

Scores are in the same fraction units (SynergyFinder reports percent: multiply
by 100 to compare). Sign: **positive = synergy**, negative = antagonism
(observed inhibition above the reference). Score matrices are NaN on the
single-agent row 0 and column 0, and ``summary`` is the mean over the
combination cells (both doses > 0), as SynergyFinder's summary score.

References
----------
.. [1] Ianevski A, He L, Aittokallio T, Tang J. SynergyFinder: a web application
   for analyzing drug combination dose-response matrix data. Bioinformatics
   33:2413-2415 (2017); Ianevski A, Giri AK, Aittokallio T. SynergyFinder 2.0.
   Nucleic Acids Res 48:W488-W493 (2020); SynergyFinder 3.0, NAR 50:W739-W743 (2022).
.. [2] Yadav B, Wennerberg K, Aittokallio T, Tang J. Searching for drug synergy in
   complex dose-response landscapes using an interaction potency model.
   Comput Struct Biotechnol J 13:504-513 (2015).
.. [3] Chou TC. Theoretical basis, experimental design, and computerized
   simulation of synergism and antagonism in drug combination studies.
   Pharmacol Rev 58:621-681 (2006).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from her2sim.screen.doseresponse import DoseResponseInputError, LogLogisticFit, as_array, fit_loglogistic4

__all__ = [
    "INHIBITION_TOLERANCE",
    "CombinationIndex",
    "MedianEffectFit",
    "SynergyScore",
    "bliss",
    "combination_index",
    "fit_median_effect",
    "fitted_emax",
    "hsa",
    "loewe",
    "zip",
]

#: Slack allowed outside [0, 1] for ``inhibition`` and on the ``inhibition[0, 0] == 0`` baseline.
INHIBITION_TOLERANCE = 1e-4
_MIN_FIT_DOSES = 3  # non-zero doses per drug needed for the curve-fitting methods


@dataclass(frozen=True, eq=False)
class SynergyScore:
    """Synergy scores of one dose matrix under one reference model.

    Attributes
    ----------
    method : str
        ``"hsa"``, ``"bliss"``, ``"loewe"`` or ``"zip"``.
    scores : numpy.ndarray, shape (n_a, n_b)
        ``observed - expected`` per cell (fraction units, > 0 = synergy); NaN on row/column 0.
    summary : float
        Mean of ``scores`` over the combination cells (both doses > 0).
    expected : numpy.ndarray, shape (n_a, n_b)
        Reference (non-interaction) inhibition; NaN on row/column 0.
    observed : numpy.ndarray, shape (n_a, n_b)
        Inhibition compared against ``expected``: the input itself, except for ZIP where
        it is the averaged row/column Hill fits; NaN on row/column 0.
    """

    method: str
    scores: np.ndarray
    summary: float
    expected: np.ndarray
    observed: np.ndarray


def _check_matrix(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike):
    a = as_array("doses_a", doses_a, nonneg=True)
    b = as_array("doses_b", doses_b, nonneg=True)
    for name, d in (("doses_a", a), ("doses_b", b)):
        if d.size < 2:
            raise DoseResponseInputError(f"{name}: need the 0 control plus at least one positive dose.")
        if d[0] != 0:
            raise DoseResponseInputError(
                f"{name}: must start with 0 (the single-agent row/column), got {d[0]!r}; "
                "prepend the untreated dose and its responses."
            )
        if np.any(np.diff(d) <= 0):
            raise DoseResponseInputError(f"{name}: must be strictly increasing; sort doses and the matrix together.")
    e = as_array("inhibition", inhibition, ndim=2)
    if e.shape != (a.size, b.size):
        raise DoseResponseInputError(
            f"inhibition: shape {e.shape} does not match (len(doses_a), len(doses_b)) = {(a.size, b.size)}; "
            "rows follow doses_a, columns follow doses_b."
        )
    tol = INHIBITION_TOLERANCE
    if e.min() < -tol or e.max() > 1 + tol:
        raise DoseResponseInputError(
            f"inhibition: values must be fractions in [0, 1] (found {e.min():.4g}..{e.max():.4g}); "
            "pass inhibition = 1 - fraction_unaffected, not percent or viability."
        )
    if abs(e[0, 0]) > tol:
        raise DoseResponseInputError(
            f"inhibition: inhibition[0, 0] must be 0 (untreated baseline), got {e[0, 0]:.4g}; "
            "normalise responses to the untreated control."
        )
    return a, b, e


def _combo_only(m: np.ndarray) -> np.ndarray:
    out = np.array(m, dtype=float, copy=True)
    out[0, :] = np.nan
    out[:, 0] = np.nan
    out.setflags(write=False)
    return out


def _score(method: str, observed: np.ndarray, expected: np.ndarray) -> SynergyScore:
    obs, exp_ = _combo_only(observed), _combo_only(expected)
    scores = _combo_only(obs - exp_)
    cells = scores[1:, 1:]
    summary = float(np.nanmean(cells)) if np.isfinite(cells).any() else math.nan
    return SynergyScore(method, scores, summary, exp_, obs)


def hsa(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike) -> SynergyScore:
    r"""Highest single agent: :math:`E_{exp} = \max(E_A(d_a), E_B(d_b))`, score :math:`E_{AB} - E_{exp}`.

    Single-agent effects are the observed row/column 0 (no fitting), as in SynergyFinder [1]_.
    """
    _, _, e = _check_matrix(doses_a, doses_b, inhibition)
    return _score("hsa", e, np.maximum(e[:, :1], e[:1, :]))


def bliss(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike) -> SynergyScore:
    r"""Bliss independence: :math:`E_{exp} = E_A + E_B - E_A E_B`, score :math:`E_{AB} - E_{exp}`.

    Equivalent to multiplying fractions unaffected, :math:`f_{exp} = f_A f_B`. Single-agent
    effects are the observed row/column 0 (no fitting), as in SynergyFinder [1]_.
    """
    _, _, e = _check_matrix(doses_a, doses_b, inhibition)
    ea, eb = e[:, :1], e[:1, :]
    return _score("bliss", e, ea + eb - ea * eb)


def _fit_single_agents(a: np.ndarray, b: np.ndarray, e: np.ndarray, method: str):
    for name, d in (("doses_a", a), ("doses_b", b)):
        if d.size - 1 < _MIN_FIT_DOSES:
            raise DoseResponseInputError(
                f"{name}: {method} fits a 4-parameter Hill curve per drug and needs >= {_MIN_FIT_DOSES} "
                f"non-zero doses, got {d.size - 1}; use hsa/bliss for smaller matrices."
            )
    return fit_loglogistic4(a, e[:, 0]), fit_loglogistic4(b, e[0, :])


def _bisect(g, lo: np.ndarray, hi: np.ndarray, iterations: int = 100) -> np.ndarray:
    """Vectorised bisection for a root of ``g`` given ``sign(g(lo)) != sign(g(hi))`` elementwise."""
    glo = np.sign(g(lo))
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        same = np.sign(g(mid)) == glo
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    return 0.5 * (lo + hi)


def _loewe_expected(da: np.ndarray, db: np.ndarray, fa: LogLogisticFit, fb: LogLogisticFit) -> np.ndarray:
    """Loewe reference on the grid ``da x db`` (broadcast shapes), SynergyFinder fallback included."""
    lo = max(min(fa.top, fa.bottom), min(fb.top, fb.bottom))
    hi = min(max(fa.top, fa.bottom), max(fb.top, fb.bottom))

    def g(y):
        with np.errstate(divide="ignore", invalid="ignore"):
            return da / fa.inverse(y) + db / fb.inverse(y) - 1.0

    shape = np.broadcast_shapes(np.shape(da), np.shape(db))
    y = np.full(shape, np.nan)
    if hi > lo:
        eps = 1e-12 * (hi - lo)
        ylo, yhi = np.full(shape, lo + eps), np.full(shape, hi - eps)
        glo, ghi = g(ylo), g(yhi)
        ok = np.isfinite(glo) & np.isfinite(ghi) & (np.sign(glo) * np.sign(ghi) < 0)
        y = np.where(ok, _bisect(g, ylo, yhi), np.nan)
    total = da + db
    fallback = np.maximum(fa.predict(total), fb.predict(total))
    return np.minimum(np.where(np.isfinite(y), y, fallback), 1.0)


def loewe(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike) -> SynergyScore:
    r"""Loewe additivity: score :math:`E_{AB} - y` where the expected effect :math:`y` solves

    .. math:: \frac{d_a}{D_A(y)} + \frac{d_b}{D_B(y)} = 1, \qquad
              D_X(y) = \mathrm{EC50}_X \left(\frac{y - E_{0,X}}{E_{max,X} - y}\right)^{1/h_X}

    with :math:`D_X` the inverse of a 4PL curve fitted to drug X's single-agent
    data (row/column 0 including the control; :func:`her2sim.screen.doseresponse.fit_loglogistic4`,
    :math:`E_{0,X}` = its ``top``, :math:`E_{max,X}` = its ``bottom``). The root is
    bracketed on the effect range both curves reach and found by bisection.

    Unreachable effects, SynergyFinder 2 convention (``CalculateLoewe``): where no
    root exists (e.g. ``y`` would exceed the weaker drug's :math:`E_{max}`), the
    reference falls back to :math:`\max(f_A(d_a + d_b), f_B(d_a + d_b))`, i.e. each
    fitted curve evaluated at the summed dose as if the mixture were that drug
    alone (an HSA-like bound; note it adds doses of different drugs). The reference
    is finally clipped at 1 (100 % inhibition).

    Raises
    ------
    DoseResponseInputError
        Fewer than 3 non-zero doses for either drug, or the checks of every method.
    """
    a, b, e = _check_matrix(doses_a, doses_b, inhibition)
    fa, fb = _fit_single_agents(a, b, e, "loewe")
    return _score("loewe", e, _loewe_expected(a[:, None], b[None, :], fa, fb))


def _slice_fit(doses: np.ndarray, response: np.ndarray, baseline: float) -> np.ndarray:
    """Hill fit of one matrix slice with response ``baseline`` at dose 0 and 1 at infinite dose."""
    fit = fit_loglogistic4(doses, response, fixed={"top": float(baseline), "bottom": 1.0})
    return fit.predict(doses) if fit.converged else response


def zip(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike) -> SynergyScore:
    r"""Zero interaction potency (ZIP) delta score (Yadav et al. 2015 [2]_, SynergyFinder [1]_).

    1. Fit a 4PL curve :math:`y_A, y_B` to each drug's single-agent data.
    2. Expected: :math:`y_{ZIP}(d_a, d_b) = y_A + y_B - y_A y_B` on the fitted curves.
    3. Observed: for each row (fixed :math:`d_a`) fit, over the non-zero :math:`d_b`,
       :math:`y_{B|A}(d_b) = \frac{y_A(d_a) + (d_b/m)^{\lambda}}{1 + (d_b/m)^{\lambda}}`, a Hill
       curve whose dose-0 value is fixed at the other drug's fitted effect and whose maximum
       is fixed at 1 (100 %), with free :math:`m, \lambda`; likewise each column. A slice fit
       that does not converge uses the raw responses (SynergyFinder).
    4. :math:`\delta = (y_{B|A} + y_{A|B})/2 - y_{ZIP}`.

    On a Bliss-independent surface built from full-range Hill curves (0 -> 1), delta is 0.

    Raises
    ------
    DoseResponseInputError
        Fewer than 3 non-zero doses for either drug (the fits are under-determined),
        or the checks of every method.
    """
    a, b, e = _check_matrix(doses_a, doses_b, inhibition)
    fa, fb = _fit_single_agents(a, b, e, "zip")
    ya, yb = fa.predict(a), fb.predict(b)
    expected = ya[:, None] + yb[None, :] - ya[:, None] * yb[None, :]
    rows = np.full(e.shape, np.nan)
    cols = np.full(e.shape, np.nan)
    for i in range(1, a.size):
        rows[i, 1:] = _slice_fit(b[1:], e[i, 1:], ya[i])
    for j in range(1, b.size):
        cols[1:, j] = _slice_fit(a[1:], e[1:, j], yb[j])
    return _score("zip", 0.5 * (rows + cols), expected)


@dataclass(frozen=True)
class MedianEffectFit:
    r"""Chou's median-effect fit :math:`\log(f_a/f_u) = m \log D - m \log D_m`.

    Attributes
    ----------
    dm : float
        Median-effect dose (dose units).
    m : float
        Shape (slope) parameter.
    r : float
        Linear correlation coefficient of the median-effect plot.
    """

    dm: float
    m: float
    r: float

    def dose_for(self, fa: ArrayLike) -> np.ndarray:
        r""":math:`D_x = D_m (f_a / (1 - f_a))^{1/m}`; NaN where ``fa`` is not in (0, 1)."""
        f = np.asarray(fa, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = self.dm * np.power(f / (1.0 - f), 1.0 / self.m)
        return np.where((f > 0) & (f < 1), dx, np.nan)


def fit_median_effect(doses: ArrayLike, fraction_affected: ArrayLike) -> MedianEffectFit:
    r"""Least-squares line through the median-effect plot (Chou 2006 [3]_, eq. 6).

    Regresses :math:`y = \log_{10}(f_a/(1-f_a))` on :math:`x = \log_{10} D` over the points
    with :math:`D > 0` and :math:`0 < f_a < 1`; :math:`m` = slope, :math:`D_m = 10^{-b/m}`.

    Raises
    ------
    DoseResponseInputError
        Fewer than 2 usable points (need distinct positive doses with 0 < fa < 1).
    """
    d = as_array("doses", doses, nonneg=True)
    fa = as_array("fraction_affected", fraction_affected)
    if d.shape != fa.shape:
        raise DoseResponseInputError(f"fraction_affected: shape {fa.shape} does not match doses {d.shape}.")
    use = (d > 0) & (fa > 0) & (fa < 1)
    if np.unique(d[use]).size < 2:
        raise DoseResponseInputError(
            "fraction_affected: the median-effect fit needs >= 2 distinct positive doses with 0 < fa < 1; "
            "add doses in the responsive range."
        )
    x, y = np.log10(d[use]), np.log10(fa[use] / (1 - fa[use]))
    m, b = np.polyfit(x, y, 1)
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(y) > 0 else math.nan
    return MedianEffectFit(float(10.0 ** (-b / m)) if m != 0 else math.nan, float(m), r)


@dataclass(frozen=True, eq=False)
class CombinationIndex:
    """Chou-Talalay combination index per cell; see :func:`combination_index`.

    Attributes
    ----------
    ci : numpy.ndarray, shape (n_a, n_b)
        CI per combination cell (< 1 synergy, 1 additive, > 1 antagonism); NaN on
        row/column 0 and where the observed inhibition is not in (0, 1).
    summary : float
        Geometric mean of the finite combination-cell CIs (NaN if none).
    fit_a, fit_b : MedianEffectFit
        Median-effect fits of drug A (column 0, B absent) and drug B (row 0, A absent).
    """

    ci: np.ndarray
    summary: float
    fit_a: MedianEffectFit
    fit_b: MedianEffectFit


def combination_index(doses_a: ArrayLike, doses_b: ArrayLike, inhibition: ArrayLike) -> CombinationIndex:
    r"""Chou-Talalay combination index (Chou 2006 [3]_, eq. 13):

    .. math:: CI = \frac{d_a}{D_{x,A}} + \frac{d_b}{D_{x,B}}, \qquad
              D_{x,X} = D_{m,X} \left(\frac{f_a}{1 - f_a}\right)^{1/m_X}

    where :math:`f_a` is the observed combination inhibition of the cell and
    :math:`D_{m,X}, m_X` come from :func:`fit_median_effect` on drug X's single-agent
    column/row. CI < 1: synergy (the opposite sign convention to the delta scores).
    """
    a, b, e = _check_matrix(doses_a, doses_b, inhibition)
    fit_a, fit_b = fit_median_effect(a, e[:, 0]), fit_median_effect(b, e[0, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        ci = a[:, None] / fit_a.dose_for(e) + b[None, :] / fit_b.dose_for(e)
    ci = _combo_only(ci)
    cells = ci[1:, 1:]
    good = np.isfinite(cells) & (cells > 0)
    summary = float(np.exp(np.mean(np.log(cells[good])))) if good.any() else math.nan
    return CombinationIndex(ci, summary, fit_a, fit_b)


def fitted_emax(doses: ArrayLike, inhibition: ArrayLike) -> float:
    """Maximal inhibition of one drug alone, in [0, 1].

    The asymptote of a 4PL fit (:func:`her2sim.screen.doseresponse.fit_loglogistic4`) when ``doses`` (shape
    (n,), starting with 0) has at least three non-zero doses and the fit converges, else the
    largest observed inhibition. Loewe additivity and the Chou-Talalay CI assume drugs that reach
    full effect (Emax ~1); below ~0.9 read Bliss or HSA instead [1]_.
    """
    d, e = as_array("doses", doses), as_array("inhibition", inhibition)
    observed = float(np.max(e))
    if d.size - 1 < _MIN_FIT_DOSES:
        return observed
    try:
        fit = fit_loglogistic4(d, e)
    except DoseResponseInputError:
        return observed
    if not fit.converged or not np.isfinite(fit.bottom):
        return observed
    return float(np.clip(max(fit.bottom, fit.top), 0.0, 1.0))
