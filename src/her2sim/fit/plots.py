"""Figures of a fit: waterfall of the starts, data vs fit, residuals, profile likelihoods.

Each function returns a matplotlib Figure and draws only from its arguments.
"""

from __future__ import annotations

import numpy as np

from .objective import Objective
from .optimize import FitResult


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover - backend already fixed by the user
            pass
    import matplotlib.pyplot as plt

    return plt


def waterfall(result: FitResult, *, tolerance: float = 0.1):
    """Final nllh of every start, sorted (failed starts omitted), shifted by the best + 1 on a log axis."""
    plt = _plt()
    vals = np.array([s.nllh for s in result.starts if np.isfinite(s.nllh)])
    fig, ax = plt.subplots(figsize=(5, 3.5))
    if len(vals):
        shifted = vals - vals.min() + 1.0
        close = vals <= vals.min() + tolerance
        ax.plot(np.arange(1, len(vals) + 1), shifted, "-", color="0.6", lw=1)
        ax.scatter(np.flatnonzero(close) + 1, shifted[close], color="C3", zorder=3,
                   label=f"within {tolerance:g} of best ({close.sum()}/{len(result.starts)})")
        ax.scatter(np.flatnonzero(~close) + 1, shifted[~close], color="C0", zorder=3)
        ax.set_yscale("log")
        ax.legend(frameon=False, fontsize=8)
    ax.set_xlabel("start (sorted)")
    ax.set_ylabel("nllh - best + 1")
    ax.set_title(f"waterfall: best nllh {result.nllh_best:.6g}")
    fig.tight_layout()
    return fig


def _groups(objective: Objective):
    out: dict = {}
    for k, m in enumerate(objective.problem.measurements):
        out.setdefault((m.observable, m.preequilibration, m.condition), []).append(k)
    return out


def data_vs_fit(objective: Objective, theta, *, max_panels: int = 24):
    """Measurements (dots) and the simulation at ``theta`` (line) per observable and condition."""
    plt = _plt()
    ev = objective.evaluate(np.atleast_2d(theta)[:1])
    groups = list(_groups(objective).items())[:max_panels]
    n = max(len(groups), 1)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    times = np.array([m.time for m in objective.problem.measurements])
    for ax, ((obs, pre, cond), ks) in zip(axes.flat, groups):
        ks = np.array(ks)
        t = times[ks]
        order = np.argsort(t)
        ax.plot(t, objective.measured[ks], "o", ms=3, color="k", label="data")
        ax.plot(t[order], ev.simulated[0, ks][order], "-", color="C3", label="fit")
        ax.set_title(f"{obs}\n{(pre + ' -> ') if pre else ''}{cond}", fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    axes.flat[0].legend(frameon=False, fontsize=7)
    fig.supxlabel("time (model unit)", fontsize=8)
    fig.tight_layout()
    return fig


def residual_plot(objective: Objective, theta):
    """Weighted residuals ``(h(m) - h(y)) / sigma`` against time, one colour per observable, and their histogram."""
    plt = _plt()
    ev = objective.evaluate(np.atleast_2d(theta)[:1])
    r = objective.residual_parts(ev)[0, :objective.M]
    times = np.array([m.time for m in objective.problem.measurements])
    obs = [m.observable for m in objective.problem.measurements]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
    for k, oid in enumerate(sorted(set(obs))):
        sel = np.array([o == oid for o in obs])
        a1.plot(times[sel], r[sel], ".", ms=4, color=f"C{k % 10}", label=oid if k < 10 else None)
    a1.axhline(0, color="0.5", lw=0.8)
    a1.set_xlabel("time")
    a1.set_ylabel("weighted residual")
    if len(set(obs)) <= 10:
        a1.legend(frameon=False, fontsize=6)
    finite = r[np.isfinite(r)]
    a2.hist(finite, bins=30, density=True, color="C0", alpha=0.7)
    x = np.linspace(-4, 4, 200)
    a2.plot(x, np.exp(-x ** 2 / 2) / np.sqrt(2 * np.pi), color="k", lw=1, label="N(0, 1)")
    a2.set_xlabel("weighted residual")
    a2.legend(frameon=False, fontsize=7)
    fig.tight_layout()
    return fig


def profile_plot(profiles):
    """One panel per profile: nllh - best against the parameter (its scale) and the threshold."""
    plt = _plt()
    n = max(len(profiles), 1)
    cols = min(4, n)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3 * cols, 2.4 * rows), squeeze=False)
    for ax, pr in zip(axes.flat, profiles):
        ax.plot(pr.values, pr.delta_nllh, "-o", ms=2, color="C0")
        ax.axhline(pr.threshold, color="C3", lw=0.8, ls="--")
        for b in (pr.lower, pr.upper):
            if np.isfinite(b):
                ax.axvline(b, color="0.5", lw=0.6)
        ax.set_title(pr.parameter, fontsize=8)
        ax.set_xlabel(pr.scale, fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(profiles):]:
        ax.axis("off")
    fig.supylabel("nllh - best", fontsize=8)
    fig.tight_layout()
    return fig
