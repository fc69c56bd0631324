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
        a.set_ylabel(axis_label(result, name))
    for a in list(axes)[len(names):]:
        a.set_visible(False)
    if result.n_conditions > 1:
        axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def unit_label(unit: str, *, relative_count: bool = False) -> str:
    """Axis text for a unit; relative counts (viable cells) say what 1 means."""
    if relative_count:
        return "relative to dosing (1 = at t=0)"
    return {"dimensionless": "dimensionless", "1/h": "rate (1/h)"}.get(unit, unit)


def axis_label(result, name: str) -> str:
    """'pAKT (dimensionless)', 'pHER2 (nM)', 'viable_cells (relative to dosing (1 = at t=0))'."""
    unit = result.unit_of(name)
    relative = name in result.species_names and unit == "dimensionless"
    return f"{name} ({unit_label(unit, relative_count=relative)})" if not relative else \
        f"{name}, {unit_label(unit, relative_count=True)}"


def plot_simulation(result, observe: Sequence[str], *, control=None, title: str = ""):
    """Figure for one simulated condition (``her2sim simulate --plot``): one panel per observable,
    the treated run in colour and, if given, the untreated ``control`` Result dashed grey; one
    legend below the panels (covers no data); ``title`` says what was simulated. Up to ten panels
    fit 12.8 x 7.2 inches (1280x720 at 100 dpi)."""
    plt = pyplot()
    names = list(observe)
    cols = min(5, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(min(12.8, 2.6 * cols + 0.8), min(7.2, 2.9 * rows + 1.3)),
                             squeeze=False)
    axes = axes.ravel()
    for k, name in enumerate(names):
        a = axes[k]
        if control is not None:
            a.plot(control.time, control.values(name)[0], color="0.5", lw=2, ls="--", label="untreated control")
        a.plot(result.time, result.values(name)[0], color="C3", lw=2.2, label="treated")
        a.set_title(name, fontsize=12)
        a.set_xlabel("time after dosing (h)", fontsize=10)
        unit = result.unit_of(name)
        relative = name in result.species_names and unit == "dimensionless"
        a.set_ylabel(unit_label(unit, relative_count=relative), fontsize=10)
        a.tick_params(labelsize=9.5)
        lo, hi = a.get_ylim()
        lo = min(0.0, lo)
        a.set_ylim(lo, hi + 0.04 * (hi - lo))  # lines at the top stay off the frame
    for a in axes[len(names):]:
        a.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=13)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=11, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 0.95 if title else 1), h_pad=1.2)
    return fig
