"""Matplotlib figures. Functions take a result and return a Figure; they never call show()."""

from __future__ import annotations

from typing import Sequence


def pyplot():
    """matplotlib.pyplot, imported on first use. The backend is the user's choice: matplotlib
    falls back to Agg on machines without a display, notebooks keep their inline backend."""
    import matplotlib.pyplot as plt

    return plt


def plot_timecourses(result, observe: Sequence[str] | None = None, *, ax=None):
    """One panel per observable, one line per condition; x axis in hours."""
    plt = pyplot()
    names = list(observe) if observe else list(result.observable_names)[:6]
    if ax is None:
        cols = min(3, len(names))
        rows = -(-len(names) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
        axes = axes.ravel()
    else:
        axes = [ax] * len(names)
        fig = ax.figure
    labels = result._labels()
    for k, name in enumerate(names):
        a = axes[k]
        vals = result.values(name)
        for c in range(result.n_conditions):
            a.plot(result.time, vals[c], label=labels[c] if result.n_conditions > 1 else None)
        a.set_title(name)
        a.set_xlabel("time after dosing (h)")
        a.set_ylabel(result.unit_of(name))
    for a in list(axes)[len(names):]:
        a.set_visible(False)
    if result.n_conditions > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig
