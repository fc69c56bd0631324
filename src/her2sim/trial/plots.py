"""Figures of a virtual trial: Kaplan-Meier curves, waterfall plot, subgroup forest plot.

Functions take a :class:`~her2sim.trial.trial.TrialResult` and an optional Axes and return the
Axes; matplotlib is imported lazily; nothing calls ``show()``.
"""

from __future__ import annotations

import numpy as np


def _plt():
    """pyplot, imported lazily; the user's backend is never switched (headless sessions fall back to
    Agg by themselves)."""
    import matplotlib.pyplot as plt

    return plt


#: readable names of subgroup levels ("hr_positive=True" -> "HR-positive") for figure labels
_FEATURES = {"hr_positive": ("HR-positive", "HR-negative"), "pik3ca": ("PIK3CA mutant", "PIK3CA wild type"),
             "pten_loss": ("PTEN loss", "PTEN intact"), "pdl1_positive": ("PD-L1 positive", "PD-L1 negative"),
             "brain_mets": ("brain metastases", "no brain metastases"),
             "occult_brain": ("occult brain disease", "no occult brain disease")}


def subgroup_label(text: str) -> str:
    """'hr_positive=True' -> 'HR-positive', 'cd16a=FF' -> 'CD16A F/F', 'her2=low' -> 'HER2-low'; other text unchanged."""
    name, sep, level = text.partition("=")
    if not sep:
        return text
    if name in _FEATURES and level in ("True", "False", "1", "0"):
        return _FEATURES[name][0 if level in ("True", "1") else 1]
    if name == "cd16a" and len(level) == 2:
        return f"CD16A {level[0]}/{level[1]}"
    if name == "her2":
        return f"HER2-{level}"
    return f"{name.replace('_', ' ')} {level}"


def plot_km(result, *, ax=None):
    """PFS Kaplan-Meier curves per arm with censoring ticks, medians and the HR in the legend."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    df = result.patients
    for k, arm in enumerate(result.spec.arms):
        km = result.curves[arm.name]
        t = np.concatenate([[0.0], km.time])
        s = np.concatenate([[1.0], km.survival])
        a = result.summary["arms"][arm.name]
        ax.step(t, s, where="post", color=f"C{k}", label=f"{arm.name} (median {a['median_pfs']:.1f} mo)")
        cens = df[(df.arm == arm.name) & ~df.progressed].pfs_months.values
        ax.plot(cens, [km.at(c) for c in cens], "|", color=f"C{k}", ms=4, alpha=0.5)
    for c in result.summary["comparisons"].values():
        ax.plot([], [], " ", label=f"HR {c['hazard_ratio']:.2f} ({c['ci'][0]:.2f}-{c['ci'][1]:.2f})")
    ax.set_xlabel("time (months)")
    ax.set_ylabel("progression-free survival (fraction)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), frameon=False)  # below: covers no curve
    ax.set_title("PFS (Kaplan-Meier)", fontsize=10)
    return ax


def plot_waterfall(result, *, ax=None):
    """Best % change of the sum of diameters from baseline, per patient, sorted, coloured by arm."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    df = result.patients.dropna(subset=["best_change_pct"]).sort_values("best_change_pct", ascending=False)
    names = [a.name for a in result.spec.arms]
    colors = [f"C{names.index(a)}" for a in df.arm]
    ax.bar(np.arange(len(df)), np.clip(df.best_change_pct.values, -100, 100), color=colors, width=1.0)
    ax.axhline(20, color="0.5", lw=0.6, ls="--")
    ax.axhline(-30, color="0.5", lw=0.6, ls="--")
    ax.set_ylabel("best change in SLD (%)")
    ax.set_xticks([])
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=f"C{k}", label=n) for k, n in enumerate(names)], fontsize=8,
              loc="upper center", bbox_to_anchor=(0.5, -0.04), frameon=False)
    ax.set_title("waterfall (RECIST 1.1: -30% PR, +20% PD)", fontsize=10)
    return ax


def plot_forest(result, *, ax=None, arm: str | None = None):
    """Subgroup hazard ratios with 95% CI (log scale) for one experimental arm vs control."""
    plt = _plt()
    ax = ax or plt.subplots(figsize=(5, 4))[1]
    subs = result.summary["subgroups"]
    if not subs:
        ax.text(0.5, 0.5, "single-arm trial: no comparison", ha="center", transform=ax.transAxes)
        return ax
    arm = arm or next(iter(subs))
    rows = [("overall", result.summary["comparisons"][arm], None)] + [(k, v, v.get("n")) for k, v in subs[arm].items()]
    for i, (label, c, n) in enumerate(rows):
        y = len(rows) - i
        if np.isfinite(c["hazard_ratio"]):
            ax.plot([c["ci"][0], c["ci"][1]], [y, y], color="k", lw=1)
            ax.plot(c["hazard_ratio"], y, "s", color="C3" if label == "overall" else "k", ms=4)
    ax.set_yticks([len(rows) - i for i in range(len(rows))])
    ax.set_yticklabels([subgroup_label(r[0]) + (f" (n={r[2]})" if r[2] else "") for r in rows], fontsize=9)
    ax.axvline(1.0, color="0.5", lw=0.6)
    ax.set_xscale("log")
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator([0.1, 0.2, 0.5, 1, 2, 5]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    import textwrap

    ax.set_xlabel("PFS hazard ratio (log scale)\n< 1 favours the experimental arm", fontsize=9)
    ax.set_title(textwrap.fill(f"subgroups: {arm} vs {result.spec.control.name}", 42), fontsize=10)
    return ax


def trial_figure(result, path=None):
    """A three-panel figure (KM, waterfall, forest); saved to ``path`` if given. Returns the Figure."""
    plt = _plt()
    fig, ax = plt.subplots(1, 3, figsize=(15, 5.5))
    plot_km(result, ax=ax[0])
    plot_waterfall(result, ax=ax[1])
    plot_forest(result, ax=ax[2])
    role = "calibration trial" if result.spec.role == "calibration" else "held-out prediction (not tuned)"
    fig.suptitle(f"{result.spec.name}: {role}, {len(result.patients)} virtual patients", fontsize=10)
    fig.tight_layout()
    if path is not None:
        from ..io.atomic import atomic_path

        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format=str(path).rsplit(".", 1)[-1].lower() if "." in str(path) else "png")
        plt.close(fig)
    return fig
