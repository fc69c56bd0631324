"""Noise models and priors of PEtab v1: negative log-likelihoods with every normalisation constant.

For a measurement ``m``, simulated observable ``y`` and noise parameter ``sigma`` (on the scale of
the observable transformation), with ``h`` the transformation (lin: identity, log: ln, log10):

- normal:  ``0.5 * log(2 pi sigma^2) + 0.5 * ((h(m) - h(y)) / sigma)^2 + log|h'(m)|``
- laplace: ``log(2 sigma) + |h(m) - h(y)| / sigma + log|h'(m)|``

where ``log|h'(m)|`` is 0 (lin), ``log m`` (log) or ``log(m ln 10)`` (log10): the density of the
measurement on its linear scale, as in AMICI and the PEtab specification. Residuals are
``(h(m) - h(y)) / sigma`` (normal noise; the sign of PEtab's ``residual`` column).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InvalidArgument

LOG_2PI = math.log(2.0 * math.pi)


def transform(values, transformation: str) -> np.ndarray:
    """h(values) for lin, log, log10 (non-positive values give NaN/-inf on the log scales)."""
    v = np.asarray(values, dtype=float)
    if transformation == "lin":
        return v
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(v) if transformation == "log" else np.log10(v)


def log_jacobian(measured, transformation: str) -> np.ndarray:
    """log|h'(m)| term that returns the density to the linear scale of the measurement."""
    m = np.asarray(measured, dtype=float)
    if transformation == "lin":
        return np.zeros_like(m)
    if transformation == "log":
        return np.log(m)
    return np.log(m * math.log(10.0))


def nllh_terms(simulated, measured, sigma, transformation: str, distribution: str) -> np.ndarray:
    """Per-measurement negative log-likelihood; arrays broadcast, shape of the broadcast."""
    d = transform(measured, transformation) - transform(simulated, transformation)
    sigma = np.asarray(sigma, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if distribution == "normal":
            out = 0.5 * (LOG_2PI + 2.0 * np.log(sigma)) + 0.5 * (d / sigma) ** 2
        elif distribution == "laplace":
            out = np.log(2.0 * sigma) + np.abs(d) / sigma
        else:
            raise InvalidArgument(f"distribution must be 'normal' or 'laplace', got {distribution!r}")
    return out + log_jacobian(measured, transformation)


def residuals(simulated, measured, sigma, transformation: str) -> np.ndarray:
    """Weighted residuals ``(h(m) - h(y)) / sigma``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (transform(measured, transformation) - transform(simulated, transformation)) / np.asarray(sigma)


def prior_nllh(value_lin: float, value_scaled: float, prior_type: str, params: tuple) -> float:
    """Negative log-density of one parameter's objective prior (PEtab v1 prior types).

    ``parameterScale*`` priors act on the scaled value; ``normal``/``laplace``/``uniform`` on the
    linear value; ``logNormal``/``logLaplace`` on ``ln`` of the linear value (density of the
    linear value, so ``+ ln x``). Uniform priors contribute their constant ``log(b - a)``.
    """
    if not prior_type:
        return 0.0
    a, b = (params + (math.nan, math.nan))[:2]
    x = value_scaled if prior_type.startswith("parameterScale") else value_lin
    kind = prior_type[len("parameterScale"):].lower() if prior_type.startswith("parameterScale") else prior_type
    if kind == "uniform":
        if not params:
            return 0.0
        return math.log(b - a) if a <= x <= b else math.inf
    if kind == "normal":
        return 0.5 * (LOG_2PI + 2 * math.log(b)) + 0.5 * ((x - a) / b) ** 2
    if kind == "laplace":
        return math.log(2 * b) + abs(x - a) / b
    if kind == "lognormal":
        lx = math.log(x)
        return 0.5 * (LOG_2PI + 2 * math.log(b)) + 0.5 * ((lx - a) / b) ** 2 + lx
    if kind == "loglaplace":
        lx = math.log(x)
        return math.log(2 * b) + abs(lx - a) / b + lx
    raise InvalidArgument(f"unknown prior type {prior_type!r}")
