"""Single-agent dose-response math: 4PL curves, IC50, Emax and GR metrics.

Pure functions on numpy arrays; nothing here simulates a model. Doses are
concentrations in any one consistent unit (the outputs ``ec50``, ``ic50``,
``gec50``, ``gr50`` come back in that unit). Responses are dimensionless.

References
----------
.. [1] Ritz C, Baty F, Streibig JC, Gerhard D. Dose-response analysis using R.
   PLoS One 10:e0146021 (2015). (4-parameter log-logistic model, ``drc::LL.4``.)
.. [2] Hafner M, Niepel M, Chung M, Sorger PK. Growth rate inhibition metrics
   correct for confounders in measuring sensitivity to cancer drugs.
   Nat Methods 13:521-527 (2016).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize, stats

from her2sim.errors import DoseResponseInputError

__all__ = [
    "DoseResponseInputError",
    "GRMetrics",
    "IC50Estimate",
    "LogLogisticFit",
    "emax",
    "emax_fitted",
    "find_ic50",
    "fit_loglogistic4",
    "gr_metrics",
    "gr_value",
    "interpolate_ic50",
    "inverse_loglogistic4",
    "loglogistic4",
]

PARAMETER_NAMES = ("bottom", "top", "ec50", "hill")
_LSQ = {"method": "trf", "xtol": 1e-12, "ftol": 1e-12, "gtol": 1e-12, "max_nfev": 2000}


# ---------------------------------------------------------------- validation
def as_array(name: str, x: ArrayLike, *, ndim: int | None = 1, nonneg: bool = False) -> np.ndarray:
    """Float array, finite, optionally of fixed ``ndim`` and >= 0; else DoseResponseInputError."""
    try:
        arr = np.asarray(x, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DoseResponseInputError(f"{name}: cannot be read as numbers ({exc}); pass a numeric array.") from exc
    if ndim is not None and arr.ndim != ndim:
        raise DoseResponseInputError(
            f"{name}: expected a {ndim}-D array, got shape {arr.shape}; reshape it (e.g. np.ravel) first."
        )
    if arr.size == 0:
        raise DoseResponseInputError(f"{name}: is empty; pass at least one value.")
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.ravel()))[0]
        raise DoseResponseInputError(
            f"{name}: contains NaN or inf (first at flat index {bad}); drop or impute those points before calling."
        )
    if nonneg and np.any(arr < 0):
        bad = np.flatnonzero(arr.ravel() < 0)[0]
        raise DoseResponseInputError(
            f"{name}: contains a negative dose ({arr.ravel()[bad]!r} at flat index {bad}); "
            "doses are concentrations and must be >= 0 (0 = untreated control)."
        )
    return arr


def _same_shape(name_a: str, a: np.ndarray, name_b: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise DoseResponseInputError(
            f"{name_b}: shape {b.shape} does not match {name_a} shape {a.shape}; pass one value per dose."
        )


# ---------------------------------------------------------------- 4PL curve
def loglogistic4(dose: ArrayLike, bottom: float, top: float, ec50: float, hill: float) -> np.ndarray:
    r"""Four-parameter log-logistic (4PL, Hill) curve.

    .. math:: f(d) = \mathrm{bottom} + \frac{\mathrm{top} - \mathrm{bottom}}{1 + (d / \mathrm{EC50})^{h}}

    ``top`` is the response at dose 0 and ``bottom`` the response as dose -> inf
    (for ``hill > 0``), so a fraction-unaffected curve (1 -> Einf) is decreasing and
    an inhibition curve (0 -> Emax) is obtained with ``top < bottom``. Same as
    ``drc::LL.4`` [1]_ with ``b = -hill, c = bottom, d = top, e = ec50``.

    Parameters
    ----------
    dose : array_like
        Concentrations >= 0; dose 0 gives exactly ``top`` (``bottom`` if hill < 0).
    bottom, top : float or array_like
        Asymptotes at infinite and zero dose (response units).
    ec50 : float or array_like
        Dose of the half-way response, > 0 (dose units).
    hill : float or array_like
        Hill slope (dimensionless).

    Returns
    -------
    numpy.ndarray
        Response, shape of all arguments broadcast together.
    """
    d = np.asarray(dose, dtype=float)
    h = np.asarray(hill, dtype=float)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        z = h * (np.log(d) - np.log(ec50))
        z = np.where(d == 0, np.where(h == 0, 0.0, -np.inf * np.sign(h)), z)  # dose 0 -> top for hill > 0
        return bottom + (np.asarray(top) - bottom) / (1.0 + np.exp(z))


def inverse_loglogistic4(response: ArrayLike, bottom: float, top: float, ec50: float, hill: float) -> np.ndarray:
    r"""Dose giving ``response`` on a 4PL curve: :math:`d = \mathrm{EC50}\,((\mathrm{top}-y)/(y-\mathrm{bottom}))^{1/h}`.

    Returns NaN where ``response`` is not strictly between ``top`` and ``bottom``
    (the curve never reaches it). Shape follows ``response``.
    """
    y = np.asarray(response, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = (top - y) / (y - bottom)
        out = ec50 * np.power(ratio, 1.0 / hill)
    inside = (y > min(top, bottom)) & (y < max(top, bottom))
    return np.where(inside & (ratio > 0), out, np.nan)


@dataclass(frozen=True)
class LogLogisticFit:
    """Result of :func:`fit_loglogistic4` (parameters as in :func:`loglogistic4`).

    Attributes
    ----------
    bottom, top, ec50, hill : float
        Fitted (or fixed) 4PL parameters; ``ec50`` in dose units.
    residual_rms : float
        :math:`\\sqrt{\\mathrm{mean}((y - f(d))^2)}` over the fitted points (response units).
    converged : bool
        True if the least-squares solver reported success.
    """

    bottom: float
    top: float
    ec50: float
    hill: float
    residual_rms: float
    converged: bool

    def predict(self, dose: ArrayLike) -> np.ndarray:
        """Fitted curve at ``dose`` (see :func:`loglogistic4`)."""
        return loglogistic4(dose, self.bottom, self.top, self.ec50, self.hill)

    def inverse(self, response: ArrayLike) -> np.ndarray:
        """Dose reaching ``response`` on the fitted curve, NaN if unreachable."""
        return inverse_loglogistic4(response, self.bottom, self.top, self.ec50, self.hill)


def _default_bounds(d: np.ndarray, r: np.ndarray) -> dict[str, tuple[float, float]]:
    pos = d[d > 0]
    pad = max(5.0 * float(np.ptp(r)), 1.0)
    return {
        "bottom": (float(r.min()) - pad, float(r.max()) + pad),
        "top": (float(r.min()) - pad, float(r.max()) + pad),
        "ec50": (float(pos.min()) * 1e-4, float(pos.max()) * 1e4),
        "hill": (1e-2, 50.0),
    }


def _ec50_guesses(d: np.ndarray, r: np.ndarray, top: float, bottom: float) -> list[float]:
    pos = d > 0
    guesses = [float(np.exp(np.median(np.log(d[pos]))))]
    order = np.argsort(d[pos])
    xs, ys = np.log(d[pos][order]), r[pos][order] - 0.5 * (top + bottom)
    cross = np.flatnonzero(np.sign(ys[:-1]) != np.sign(ys[1:]))
    if cross.size:
        i = cross[0]
        t = ys[i] / (ys[i] - ys[i + 1]) if ys[i] != ys[i + 1] else 0.5
        guesses.insert(0, float(np.exp(xs[i] + t * (xs[i + 1] - xs[i]))))
    return guesses


def fit_loglogistic4(
    doses: ArrayLike,
    responses: ArrayLike,
    *,
    fixed: Mapping[str, float] | None = None,
    bounds: Mapping[str, tuple[float, float]] | None = None,
) -> LogLogisticFit:
    """Least-squares fit of :func:`loglogistic4` with ``scipy.optimize.curve_fit`` (TRF, bounded).

    ``ec50`` is fitted as log10(ec50), so dose-0 controls are used as-is (they inform
    ``top``) while only positive doses shape the log axis. ``hill`` is kept > 0, so
    the direction of the curve comes from ``top`` vs ``bottom``. Several starts
    (ec50 at the mid-response crossing and at the geometric-median dose, hill 0.5/1/2.5)
    are tried and the lowest residual wins (stopping early once two starts agree).

    Parameters
    ----------
    doses : array_like, shape (n,)
        Concentrations >= 0; replicates (repeated doses) are fine.
    responses : array_like, shape (n,)
        Response per dose (e.g. fraction unaffected, or inhibition).
    fixed : mapping, optional
        Parameters held constant, e.g. ``{"top": 1.0}``; keys from ``PARAMETER_NAMES``.
    bounds : mapping, optional
        ``name -> (lo, hi)`` overriding the defaults: bottom/top within
        ``[min(y) - pad, max(y) + pad]`` with ``pad = max(5 * ptp(y), 1)``,
        ec50 within ``[1e-4 * min positive dose, 1e4 * max dose]``, hill within ``[0.01, 50]``.

    Returns
    -------
    LogLogisticFit
        ``converged`` is False (with the best start's parameters) if every start failed.

    Raises
    ------
    DoseResponseInputError
        Negative/NaN doses, NaN responses, shape mismatch, unknown parameter names,
        fewer points than free parameters, or fewer than 2 distinct positive doses.
    """
    d = as_array("doses", doses, nonneg=True)
    r = as_array("responses", responses)
    _same_shape("doses", d, "responses", r)
    fixed = dict(fixed or {})
    unknown = (set(fixed) | set(bounds or {})) - set(PARAMETER_NAMES)
    if unknown:
        raise DoseResponseInputError(
            f"fixed/bounds: unknown parameter(s) {sorted(unknown)}; use names from {PARAMETER_NAMES}."
        )
    free = [p for p in PARAMETER_NAMES if p not in fixed]
    if np.unique(d[d > 0]).size < 2:
        raise DoseResponseInputError("doses: need at least 2 distinct positive doses to fit a 4PL curve.")
    if d.size < len(free):
        raise DoseResponseInputError(
            f"doses: {d.size} points cannot determine {len(free)} free parameters {free}; add doses or fix parameters."
        )
    bnd = _default_bounds(d, r)
    bnd.update(bounds or {})
    if "ec50" in fixed and fixed["ec50"] <= 0:
        raise DoseResponseInputError("fixed['ec50']: must be > 0.")

    def unpack(theta: np.ndarray) -> dict[str, float]:
        vals = dict(fixed)
        for name, v in zip(free, theta):
            vals[name] = float(10.0**v) if name == "ec50" else float(v)
        return vals

    def model(x: np.ndarray, *theta: float) -> np.ndarray:
        p = unpack(np.asarray(theta))
        return loglogistic4(x, p["bottom"], p["top"], p["ec50"], p["hill"])

    if not free:
        return LogLogisticFit(
            **unpack(np.empty(0)), residual_rms=float(np.sqrt(np.mean((r - model(d)) ** 2))), converged=True
        )

    lo = np.array([math.log10(bnd[p][0]) if p == "ec50" else bnd[p][0] for p in free])
    hi = np.array([math.log10(bnd[p][1]) if p == "ec50" else bnd[p][1] for p in free])
    low_d, high_d = d == d.min(), d == d.max()
    top0 = fixed.get("top", float(r[low_d].mean()))
    bottom0 = fixed.get("bottom", float(r[high_d].mean()))
    starts = [
        {"bottom": bottom0, "top": top0, "ec50": e, "hill": h}
        for e in _ec50_guesses(d, r, top0, bottom0)
        for h in (1.0, 0.5, 2.5)
    ]
    best: tuple[float, np.ndarray, bool] | None = None
    scale = max(float(np.abs(r).max()), 1e-12)
    for s in starts:
        p0 = np.array([math.log10(s[p]) if p == "ec50" else s[p] for p in free], dtype=float)
        p0 = np.clip(p0, lo + 1e-9 * (hi - lo), hi - 1e-9 * (hi - lo))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                theta, *_, ier = optimize.curve_fit(model, d, r, p0=p0, bounds=(lo, hi), full_output=True, **_LSQ)
                ok = ier in (1, 2, 3, 4)
            except (RuntimeError, ValueError, optimize.OptimizeWarning):
                theta, ok = p0, False
        rms = float(np.sqrt(np.mean((r - model(d, *theta)) ** 2)))
        # stop on an exact fit, or when two converged starts land on the same minimum
        same = best is not None and best[2] and abs(rms - best[0]) <= 1e-9 * max(rms, 1e-12 * scale)
        if best is None or (ok, -rms) > (best[2], -best[0]):
            best = (rms, theta, ok)
        if ok and (rms <= 1e-10 * scale or same):
            break
    assert best is not None
    p = unpack(best[1])
    return LogLogisticFit(p["bottom"], p["top"], p["ec50"], p["hill"], best[0], best[2])


# ---------------------------------------------------------------- IC50 / Emax
@dataclass(frozen=True)
class IC50Estimate:
    """Dose at which a curve crosses ``level``, with a status flag.

    Attributes
    ----------
    value : float
        The dose (dose units), or NaN when ``status`` is not ``"crossed"``.
    status : str
        ``"crossed"``; ``"not_reached"`` (response stays on the untreated side of
        ``level`` over the whole dose range); or ``"below_range"`` (already past
        ``level`` at the lowest positive dose, so the crossing cannot be placed on a log axis).
    """

    value: float
    status: str

    @property
    def crossed(self) -> bool:
        """True if the level was crossed inside the tested dose range."""
        return self.status == "crossed"


def interpolate_ic50(doses: ArrayLike, fraction_unaffected: ArrayLike, level: float = 0.5) -> IC50Estimate:
    r"""IC50 by log-linear interpolation on a sampled (e.g. simulated) curve.

    Finds the first dose interval :math:`[d_i, d_{i+1}]` (doses sorted, positive
    doses only) over which :math:`f - \mathrm{level}` changes sign and returns

    .. math:: \log_{10} \mathrm{IC50} = x_i + (\mathrm{level} - f_i)\,\frac{x_{i+1} - x_i}{f_{i+1} - f_i},
              \quad x = \log_{10} d .

    ``level=0.5`` gives the absolute IC50; pass ``(top + bottom) / 2`` for a relative one.
    Intended for monotone curves; for non-monotone ones the first crossing is used.

    Parameters
    ----------
    doses : array_like, shape (n,)
        Distinct concentrations >= 0, any order. A dose-0 control only tells which side of
        ``level`` is "untreated"; without one the curve is assumed to start above ``level``.
    fraction_unaffected : array_like, shape (n,)
        Response per dose (1 = no effect).
    level : float
        Response level to cross.

    Returns
    -------
    IC50Estimate
        NaN value with status ``"not_reached"`` or ``"below_range"`` if not crossed.
    """
    d = as_array("doses", doses, nonneg=True)
    f = as_array("fraction_unaffected", fraction_unaffected)
    _same_shape("doses", d, "fraction_unaffected", f)
    if np.unique(d).size != d.size:
        raise DoseResponseInputError("doses: contains repeated doses; average replicates per dose first.")
    pos = d > 0
    if pos.sum() < 1:
        raise DoseResponseInputError("doses: need at least one positive dose.")
    order = np.argsort(d[pos])
    x, y = np.log10(d[pos][order]), f[pos][order] - level
    start = np.sign(f[~pos][0] - level) if (~pos).any() else 1.0  # untreated side of the level
    if y[0] == 0.0:
        return IC50Estimate(float(10.0 ** x[0]), "crossed")
    if start != 0 and np.sign(y[0]) != start:
        return IC50Estimate(math.nan, "below_range")
    hits = np.flatnonzero((np.sign(y[1:]) != np.sign(y[:-1])) | (y[1:] == 0))
    if hits.size == 0:
        return IC50Estimate(math.nan, "not_reached")
    i = hits[0]
    t = y[i] / (y[i] - y[i + 1])
    return IC50Estimate(float(10.0 ** (x[i] + t * (x[i + 1] - x[i]))), "crossed")


def find_ic50(
    f: Callable[[float], float], lo: float, hi: float, level: float = 0.5, *, xtol: float = 1e-12
) -> IC50Estimate:
    r"""IC50 by root finding on the model itself: solve :math:`f(10^u) = \mathrm{level}` for
    :math:`u \in [\log_{10} lo, \log_{10} hi]` with ``scipy.optimize.brentq``.

    Parameters
    ----------
    f : callable
        ``f(dose) -> fraction unaffected`` (scalar in, finite scalar out), continuous in dose.
    lo, hi : float
        Positive dose bracket, ``0 < lo < hi`` (dose units).
    level : float
        Response level to cross (0.5 = absolute IC50).
    xtol : float
        Absolute tolerance on :math:`\log_{10}` dose.

    Returns
    -------
    IC50Estimate
        NaN value with status ``"not_reached"`` if ``f(lo) > level`` and ``f(hi) > level``,
        ``"below_range"`` if both are below ``level`` (no sign change to bracket).
    """
    if not callable(f):
        raise DoseResponseInputError("f: must be a callable f(dose) -> fraction unaffected.")
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        raise DoseResponseInputError(f"lo, hi: need finite 0 < lo < hi, got lo={lo!r}, hi={hi!r}.")

    def g(u: float) -> float:
        v = float(f(10.0**u))
        if not math.isfinite(v):
            raise DoseResponseInputError(f"f: returned {v!r} at dose {10.0**u:g}; it must return finite numbers.")
        return v - level

    ulo, uhi = math.log10(lo), math.log10(hi)
    glo, ghi = g(ulo), g(uhi)
    if glo == 0.0:
        return IC50Estimate(float(lo), "crossed")
    if ghi == 0.0:
        return IC50Estimate(float(hi), "crossed")
    if glo > 0 and ghi > 0:
        return IC50Estimate(math.nan, "not_reached")
    if glo < 0 and ghi < 0:
        return IC50Estimate(math.nan, "below_range")
    u = optimize.brentq(g, ulo, uhi, xtol=xtol, rtol=4 * np.finfo(float).eps)
    return IC50Estimate(float(10.0**u), "crossed")


def emax(fraction_unaffected: ArrayLike) -> float:
    """Maximal observed effect :math:`E_{max} = 1 - \\min_d f(d)` (fraction inhibited, dimensionless)."""
    return float(1.0 - as_array("fraction_unaffected", fraction_unaffected, ndim=None).min())


def emax_fitted(fit: LogLogisticFit) -> float:
    """Fitted maximal effect :math:`E_{max} = 1 - \\mathrm{bottom}` of a fraction-unaffected 4PL fit."""
    return float(1.0 - fit.bottom)


# ---------------------------------------------------------------- GR metrics
def gr_value(x_treated: ArrayLike, x_control: ArrayLike, x0: ArrayLike) -> np.ndarray:
    r"""Normalised growth-rate inhibition value (Hafner et al. 2016 [2]_, eq. 1).

    .. math:: GR = 2^{\log_2(x_{treated}/x_0) / \log_2(x_{control}/x_0)} - 1

    GR = 1: no effect; 0: complete cytostasis (``x_treated == x0``); < 0: cell kill
    (down to -1). Inputs broadcast; all are cell counts (or any proportional readout)
    at the end of the assay (``x_treated``, ``x_control``) and at treatment start (``x0``).

    Raises
    ------
    DoseResponseInputError
        Non-positive or non-finite counts, or ``x_control <= x0`` (no control growth:
        GR is undefined; lengthen the assay or check the time-zero count).
    """
    xt = as_array("x_treated", x_treated, ndim=None)
    xc = as_array("x_control", x_control, ndim=None)
    x0a = as_array("x0", x0, ndim=None)
    for name, arr in (("x_treated", xt), ("x_control", xc), ("x0", x0a)):
        if np.any(arr <= 0):
            raise DoseResponseInputError(f"{name}: cell counts must be > 0 (log2 is taken); check for empty wells.")
    try:
        xt, xc, x0a = np.broadcast_arrays(xt, xc, x0a)
    except ValueError as exc:
        raise DoseResponseInputError(f"x_treated, x_control, x0: shapes do not broadcast ({exc}).") from exc
    if np.any(xc <= x0a):
        raise DoseResponseInputError(
            "x_control: must exceed x0 (untreated cells must grow during the assay) for GR to be defined."
        )
    return np.exp2(np.log2(xt / x0a) / np.log2(xc / x0a)) - 1.0


@dataclass(frozen=True)
class GRMetrics:
    """GR metrics of one dose series (Hafner et al. 2016 [2]_).

    Attributes
    ----------
    gr50 : float
        Dose with GR = 0.5 on the fitted curve, ``GEC50 * (0.5 / (0.5 - GRinf))**(1/h)``;
        inf if GRinf >= 0.5. Flat fit: inf if mean GR > 0.5 else 0.
    grmax : float
        Lowest of the mean GR values at the two highest tested doses (observed).
    gr_inf : float
        Fitted GR at infinite dose (flat fit: mean GR).
    gec50 : float
        Dose of half-maximal effect on the fitted curve (flat fit: 0).
    h_gr : float
        Fitted Hill slope (flat fit: 0.01).
    gr_aoc : float
        Trapezoidal area over the observed mean-GR curve, :math:`\\int (1 - GR)\\, d\\log_{10} c`
        over the tested range (log10 dose units, not normalised by the range).
    residual_rms : float
        RMS residual of the sigmoid fit.
    converged : bool
        Solver success of the sigmoid fit.
    fit_type : str
        ``"sigmoid"`` or ``"flat"`` (sigmoid not better than a constant, F-test p > ``flat_pvalue``).
    f_pvalue : float
        p-value of the nested F-test sigmoid vs constant (NaN if n <= 3).
    """

    gr50: float
    grmax: float
    gr_inf: float
    gec50: float
    h_gr: float
    gr_aoc: float
    residual_rms: float
    converged: bool
    fit_type: str
    f_pvalue: float


def gr_metrics(doses: ArrayLike, gr_values: ArrayLike, *, flat_pvalue: float = 0.05) -> GRMetrics:
    r"""Fit :math:`GR(c) = GR_{inf} + (1 - GR_{inf}) / (1 + (c/GEC_{50})^{h})` and derive GR metrics.

    Bounds follow the GRmetrics package: :math:`GR_{inf} \in [-1, 1]`,
    :math:`\log_{10} GEC_{50}` within 2 decades of the tested range, :math:`h \in [0.1, 5]`.
    The sigmoid is kept only if it beats a constant by an F-test,
    :math:`F = ((RSS_0 - RSS_1)/2) / (RSS_1/(n - 3))` on (2, n - 3) degrees of freedom.
    Dose-0 entries (GR = 1 by definition) are ignored.

    Parameters
    ----------
    doses : array_like, shape (n,)
        Concentrations >= 0; replicates allowed; >= 3 distinct positive doses.
    gr_values : array_like, shape (n,)
        GR value per dose (see :func:`gr_value`).
    flat_pvalue : float
        F-test threshold above which the flat fit is reported.

    Returns
    -------
    GRMetrics
    """
    d = as_array("doses", doses, nonneg=True)
    g = as_array("gr_values", gr_values)
    _same_shape("doses", d, "gr_values", g)
    d, g = d[d > 0], g[d > 0]
    levels = np.unique(d)
    if levels.size < 3:
        raise DoseResponseInputError("doses: GR metrics need at least 3 distinct positive doses.")
    cc = np.log10(levels)
    mean_g = np.array([g[d == c].mean() for c in levels])
    grmax = float(mean_g[-2:].min())
    gr_aoc = float(np.sum(0.5 * ((1 - mean_g[1:]) + (1 - mean_g[:-1])) * np.diff(cc)))
    gr_bounds = {"bottom": (-1.0, 1.0), "ec50": (10 ** (cc[0] - 2), 10 ** (cc[-1] + 2)), "hill": (0.1, 5.0)}
    fit = fit_loglogistic4(d, g, fixed={"top": 1.0}, bounds=gr_bounds)
    n = g.size
    rss0 = float(np.sum((g - g.mean()) ** 2))
    rss1 = fit.residual_rms**2 * n
    if n <= 3:
        pval = math.nan
    elif rss1 <= 1e-300:
        pval = 0.0 if rss0 > 0 else 1.0
    else:
        fstat = ((rss0 - rss1) / 2.0) / (rss1 / (n - 3))
        pval = float(stats.f.sf(fstat, 2, n - 3))
    if pval > flat_pvalue:  # GRmetrics' flat-fit convention
        kind, gr_inf, gec50, h = "flat", float(g.mean()), 0.0, 0.01
        gr50 = math.inf if gr_inf > 0.5 else 0.0
    else:
        kind, gr_inf, gec50, h = "sigmoid", fit.bottom, fit.ec50, fit.hill
        gr50 = gec50 * (0.5 / (0.5 - gr_inf)) ** (1.0 / h) if gr_inf < 0.5 else math.inf
    return GRMetrics(float(gr50), grmax, gr_inf, gec50, h, gr_aoc, fit.residual_rms, fit.converged, kind, pval)
