"""Figures of screens (:mod:`her2sim.screen.screen`): each function returns a Figure and never calls show().

- :func:`plot_dose_response`: single-agent curves, one line per background.
- :func:`plot_dose_matrix`: effect heatmap per background (sequential colormap).
- :func:`plot_synergy_map`: synergy score heatmap per background (diverging colormap centred at 0).
- :func:`plot_isobologram`: iso-effect contour (e.g. 50% inhibition) with the additivity line.
- :func:`plot_screen_summary`: effect and synergy maps, one column per background.

Matrices are drawn with drug A on the vertical axis and drug B on the horizontal axis, doses
increasing up and to the right, one cell per tested dose (labels in nM / uM).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidArgument

__all__ = ["plot_dose_matrix", "plot_dose_response", "plot_isobologram", "plot_screen_summary", "plot_synergy_map"]


def _pyplot():
    """matplotlib.pyplot, imported on first use (the backend stays the user's choice)."""
    import matplotlib.pyplot as plt

    return plt


def format_dose(nM: float) -> str:
    """'0', '30 nM', '1 uM' (for tick labels)."""
    if nM == 0:
        return "0"
    if nM >= 1000:
        return f"{nM / 1000:.3g} \u00b5M"
    return f"{nM:.3g} nM"


def _matrix_dims(ds) -> tuple[str, str]:
    dose_dims = [d for d in ds.readout.dims if d.startswith("dose_")] if "readout" in ds else \
        [d for d in ds.dims if str(d).startswith("dose_")]
    if dose_dims[:2] != ["dose_A", "dose_B"] or len(dose_dims) != 2:
        raise InvalidArgument(f"need a two-drug matrix with dims (background, dose_A, dose_B), got dose dims {dose_dims}; "
                         "for three drugs select a slice first, e.g. ds.isel(dose_C=2)")
    return "dose_A", "dose_B"


def _panels(n: int, axes, width: float = 4.0, height: float = 3.6, rows: int = 1):
    plt = _pyplot()
    if axes is None:
        fig, grid = plt.subplots(rows, n, figsize=(width * n + 1.0, height * rows), squeeze=False, layout="constrained")
        return fig, list(grid[0])
    axes = list(np.ravel(axes))
    if len(axes) < n:
        raise InvalidArgument(f"axes: need {n} axes (one per background), got {len(axes)}")
    return axes[0].figure, axes


def _drug(ds, letter: str) -> str:
    return ds.attrs.get(f"drug_{letter}", letter)


def _heatmap(ax, values: np.ndarray, ds, cmap, norm, annotate: bool, fmt: str):
    dims = _matrix_dims(ds)
    a, b = ds[dims[0]].values, ds[dims[1]].values
    image = ax.imshow(np.ma.masked_invalid(values), origin="lower", cmap=cmap, norm=norm, aspect="auto")
    ax.set_xticks(range(b.size))
    ax.set_xticklabels([format_dose(x) for x in b], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(a.size))
    ax.set_yticklabels([format_dose(x) for x in a], fontsize=7)
    ax.set_xlabel(_drug(ds, "B"))
    ax.set_ylabel(_drug(ds, "A"))
    if annotate and values.size <= 100:
        colours = image.get_cmap()
        for i in range(a.size):
            for j in range(b.size):
                if np.isfinite(values[i, j]):
                    r, g, bl, _ = colours(norm(values[i, j]))
                    dark = 0.299 * r + 0.587 * g + 0.114 * bl < 0.5
                    ax.text(j, i, format(values[i, j], fmt), ha="center", va="center", fontsize=6.5,
                            color="white" if dark else "black")
    return image


def plot_dose_response(ds, *, var: str = "fraction_unaffected", drug: str = "A", ax=None):
    """Dose-response curve of one drug alone, one line per background (log dose axis).

    ``ds`` is a :func:`~her2sim.screen.screen.dose_response` or :func:`~her2sim.screen.screen.dose_matrix`
    Dataset (then ``drug`` = "A", "B" or "C" picks the single-agent edge). The untreated control
    (dose 0) is drawn as a dotted line at its value. Failed members are marked with an x.
    """
    plt = _pyplot()
    dim = f"dose_{drug}"
    if dim not in ds.dims:
        raise InvalidArgument(f"drug must name a dose dim of the Dataset ({[d for d in ds.dims if str(d).startswith('dose_')]}),"
                         f" got {drug!r}")
    edge = ds.isel({d: 0 for d in ds.readout.dims if d.startswith("dose_") and d != dim})
    fig, ax = (plt.subplots(figsize=(5.2, 3.8)) if ax is None else (ax.figure, ax))
    doses = edge[dim].values
    pos = doses > 0
    for k, bg in enumerate(edge.background.values):
        y = edge[var].sel(background=bg).values
        line, = ax.semilogx(doses[pos], y[pos], "o-", label=str(bg))
        ax.axhline(y[0], color=line.get_color(), ls=":", lw=0.8)
        bad = edge.status.sel(background=bg).values[pos] != "ok"
        if bad.any():
            ax.plot(doses[pos][bad], np.nan_to_num(y[pos][bad], nan=0.0), "x", color="red", ms=8)
    ax.set_xlabel(f"{_drug(ds, drug)} (nM)")
    ax.set_ylabel(var.replace("_", " "))
    ax.set_title(f"{ds.attrs.get('readout', '')}: {_drug(ds, drug)}", fontsize=9)
    ax.legend(fontsize=7, title="background", title_fontsize=7)
    fig.tight_layout()
    return fig


def plot_dose_matrix(ds, *, var: str = "inhibition", axes=None, annotate: bool = True, cmap: str = "viridis"):
    """Heatmap of ``var`` (default inhibition) over the dose grid, one panel per background.

    Inhibition panels share the colour range [min(0, data), max(1, data)] so backgrounds compare.
    """
    _matrix_dims(ds)
    plt = _pyplot()
    bgs = list(ds.background.values)
    fig, axs = _panels(len(bgs), axes)
    data = ds[var].values
    finite = data[np.isfinite(data)]
    lo, hi = (min(0.0, finite.min()), max(1.0, finite.max())) if var == "inhibition" and finite.size else (
        (finite.min(), finite.max()) if finite.size else (0.0, 1.0))
    norm = plt.Normalize(lo, hi)
    for k, bg in enumerate(bgs):
        image = _heatmap(axs[k], data[k], ds, cmap, norm, annotate, ".2f")
        axs[k].set_title(f"{bg}: {var.replace('_', ' ')}\n{ds.attrs.get('readout', '')}", fontsize=9)
    fig.colorbar(image, ax=axs[: len(bgs)], shrink=0.85, label=var.replace("_", " "))
    return fig


def plot_synergy_map(scores, method: str = "bliss", *, axes=None, annotate: bool = True, cmap: str = "RdBu_r"):
    """Heatmap of per-cell synergy scores (observed - expected inhibition), one panel per background.

    Diverging colormap centred at 0 (red = synergy, blue = antagonism) with a symmetric range
    shared by all panels; single-agent row/column (no score) in grey; the summary in the title.
    """
    from matplotlib.colors import TwoSlopeNorm

    if method not in scores:
        raise InvalidArgument(f"method {method!r} is not in these scores; available: {scores.attrs.get('methods')}")
    _matrix_dims(scores)
    plt = _pyplot()
    bgs = list(scores.background.values)
    fig, axs = _panels(len(bgs), axes)
    data = scores[method].values
    finite = np.abs(data[np.isfinite(data)])
    v = max(float(finite.max()) if finite.size else 0.0, 0.02)
    colours = plt.get_cmap(cmap).with_extremes(bad="0.85")
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-v, vmax=v)
    for k, bg in enumerate(bgs):
        image = _heatmap(axs[k], data[k], scores, colours, norm, annotate, "+.2f")
        summary = float(scores[f"{method}_summary"].values[k])
        axs[k].set_title(f"{bg}: {method.upper()} synergy\nmean {summary:+.3f}" if math.isfinite(summary)
                         else f"{bg}: {method.upper()}\n{scores.synergy_status.values[k]}", fontsize=9)
    fig.colorbar(image, ax=axs[: len(bgs)], shrink=0.85, label=f"{method} score (> 0 synergy)")
    return fig


def _iso_lines(z: np.ndarray, a: np.ndarray, b: np.ndarray, level: float) -> list[np.ndarray]:
    """Contour ``z == level`` on a log-dose grid (dose 0 one step below the first dose), in doses.

    Between 0 and the first positive dose the coordinate is linear in dose, above it log-linear,
    so the contour interpolates like :func:`her2sim.screen.doseresponse.interpolate_ic50`.
    """
    import contourpy

    def coords(d):
        u = np.log10(np.where(d > 0, d, 1.0))
        u[d == 0] = u[1] - 1.0 if d.size > 1 else 0.0
        return u

    def back(u, d):
        u0, u1 = coords(d)[0], math.log10(d[1])
        return np.where(u >= u1, 10.0 ** u, d[1] * (u - u0) / (u1 - u0))

    ua, ub = coords(a), coords(b)
    gen = contourpy.contour_generator(ub, ua, np.ma.masked_invalid(z))
    return [np.column_stack([back(line[:, 0], b), back(line[:, 1], a)]) for line in gen.lines(level)]


def plot_isobologram(ds, *, level: float = 0.5, ax=None):
    """Isobologram: the dose pairs giving ``level`` inhibition (default 50%), one line per background.

    Doses are normalised by each drug's own single-agent dose for that effect (IC50 when
    ``level=0.5``), so the additivity (Loewe) line is ``d_A/IC50_A + d_B/IC50_B = 1`` in every
    background: an isobole below it means synergy, above it antagonism. A background where a drug
    alone never reaches ``level`` is drawn in raw doses on a separate panel.
    """
    from .doseresponse import interpolate_ic50

    _matrix_dims(ds)
    plt = _pyplot()
    a, b = ds.dose_A.values, ds.dose_B.values
    normalised, raw = [], []
    for bg in ds.background.values:
        sub = ds.sel(background=bg)
        ia = interpolate_ic50(a, sub.fraction_unaffected.isel(dose_B=0).values, 1 - level) \
            if np.all(np.isfinite(sub.fraction_unaffected.isel(dose_B=0))) else None
        ib = interpolate_ic50(b, sub.fraction_unaffected.isel(dose_A=0).values, 1 - level) \
            if np.all(np.isfinite(sub.fraction_unaffected.isel(dose_A=0))) else None
        lines = _iso_lines(sub.inhibition.values, a, b, level)
        if ia is not None and ib is not None and ia.crossed and ib.crossed:
            normalised.append((str(bg), [ln / [ib.value, ia.value] for ln in lines]))
        else:
            raw.append((str(bg), lines))
    panels = 1 + bool(raw) if normalised else 1
    if ax is None:
        fig, axs = plt.subplots(1, panels, figsize=(4.6 * panels, 4.2), squeeze=False)
        axs = list(axs[0])
    elif panels > 1:
        raise InvalidArgument(f"backgrounds {[bg for bg, _ in raw]} cannot be normalised (a drug alone does not reach "
                         f"{100 * level:g}%) and need a second panel; pass ax=None")
    else:
        fig, axs = ax.figure, [ax]
    pct = f"{100 * level:g}% inhibition"
    if normalised:
        main = axs[0]
        main.plot([0, 1], [1, 0], "k--", lw=1, label="additivity")
        for k, (bg, lines) in enumerate(normalised):
            for n, ln in enumerate(lines):
                main.plot(ln[:, 0], ln[:, 1], "-", color=f"C{k}", lw=2, label=bg if n == 0 else None)
        main.set_xlabel(f"{_drug(ds, 'B')} / its IC{100 * level:g}")
        main.set_ylabel(f"{_drug(ds, 'A')} / its IC{100 * level:g}")
        main.set_xlim(0, 1.6)
        main.set_ylim(0, 1.6)
        main.set_aspect("equal")
        main.set_title(f"isobologram, {pct}\n(below the dashed line = synergy)", fontsize=9)
        main.legend(fontsize=7)
    if raw:
        target = axs[-1]
        for k, (bg, lines) in enumerate(raw):
            for n, ln in enumerate(lines):
                target.plot(ln[:, 0], ln[:, 1], "-", color=f"C{len(normalised) + k}", lw=2,
                            label=bg if n == 0 else None)
            if not lines:
                target.plot([], [], color=f"C{len(normalised) + k}", label=f"{bg}: {pct} not reached")
        target.set_xscale("symlog", linthresh=float(b[1]), linscale=0.5)
        target.set_yscale("symlog", linthresh=float(a[1]), linscale=0.5)
        target.set_xlim(0, b[-1])
        target.set_ylim(0, a[-1])
        target.set_xlabel(f"{_drug(ds, 'B')} (nM)")
        target.set_ylabel(f"{_drug(ds, 'A')} (nM)")
        target.set_title(f"{pct} (a drug alone does not reach it: no additivity line)", fontsize=8)
        target.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_screen_summary(ds, scores, *, method: str | None = None, annotate: bool = True):
    """Effect heatmaps (top row) and synergy maps (bottom row), one column per background."""
    plt = _pyplot()
    methods: Sequence[str] = scores.attrs["methods"].split(",")
    method = method or ("bliss" if "bliss" in methods else methods[0])
    n = ds.background.size
    fig, axs = plt.subplots(2, n, figsize=(4.2 * n + 1.0, 7.6), squeeze=False, layout="constrained")
    plot_dose_matrix(ds, axes=axs[0], annotate=annotate)
    plot_synergy_map(scores, method, axes=axs[1], annotate=annotate)
    fig.suptitle(f"{_drug(ds, 'A')} x {_drug(ds, 'B')}: {ds.attrs.get('readout', '')}", fontsize=10)
    return fig
