"""Ten demonstrations of HER2-positive breast cancer signalling and drug resistance.

Each demo runs the bundled ``default`` model (BT-474-like background) and returns a
:class:`DemoResult` with a one-sentence claim, measured metrics and the literature value the
effect is compared to. ``result.plot(path)`` writes a before/after (with/without) figure.

Literature the demos are compared to (qualitative direction, plus the size where one exists):

1. ``her2_blockade``: lapatinib growth IC50 0.010-18.6 uM over 31 breast lines, HER2-amplified
   lines at the sensitive end (Konecny 2006 Cancer Res 66:1630); trastuzumab lowers pAKT in
   HER2-amplified cells by disrupting ligand-independent HER2/HER3 (Junttila 2009 Cancer Cell).
2. ``pi3k_resistance``: PTEN loss and PIK3CA mutation confer trastuzumab resistance (Nagata 2004
   Cancer Cell; Faratian 2009 Cancer Res; Baselga 2014 JCO: PFS 13.8 vs 8.6 months WT vs mutant);
   everolimus restores trastuzumab benefit (BOLERO-3, Andre 2014 Lancet Oncol).
3. ``her3_feedback``: lapatinib induces FOXO3a-dependent HER3 2-5-fold over 24-48 h with
   pHER3/pAKT recovery (Garrett 2011 PNAS; Chandarlapaty 2011 Cancer Cell for AKT inhibitors).
4. ``mtor_feedback``: rapalogs raise pAKT 1.5-3-fold by relieving S6K -| IRS-1 (O'Reilly 2006
   Cancer Res).
5. ``er_escape``: lapatinib raises ER expression/activity in ER+/HER2+ tumours (Giuliano 2015
   Clin Cancer Res: ER rises in 2 weeks, 18% ER- -> ER+); anti-HER2 + endocrine is better.
6. ``cdk46``: CDK4/6 inhibition lowers pRb and arrests G1 and re-sensitises anti-HER2-resistant
   cells (Goel 2016 Cancer Cell; Finn 2009 Breast Cancer Res, palbociclib).
7. ``pertuzumab_heregulin``: pertuzumab, not trastuzumab, blocks HRG-driven HER2/HER3
   signalling; the two together are best (Junttila 2009 Cancer Cell; Nami 2019 Cancers).
8. ``margetuximab_adcc``: margetuximab raises ADCC, with the largest gain for CD16A-158F
   effectors (Nordstrom 2011 Breast Cancer Res 13:R123).
9. ``adc_bystander``: T-DM1 benefit does not depend on PIK3CA status (Baselga 2016 Clin Cancer
   Res, EMILIA); T-DXd kills HER2-negative cells in co-culture with HER2-positive cells, T-DM1
   does not (Ogitani 2016 Cancer Sci 107:1039).
10. ``tki_washout``: neratinib inhibition persists after washout (irreversible; Rabindran 2004
    Cancer Res); tucatinib is >1000-fold HER2-selective over EGFR in cells (Kulukian 2020 Mol
    Cancer Ther 19:976).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

__all__ = ["DemoResult", "DEMOS", "SUMMARIES", "run_demo"]

#: in-vitro experiments have no NK cells
IN_VITRO = {"NK_activity": 0}


@dataclass(frozen=True)
class DemoResult:
    """Outcome of one demonstration.

    name, claim (one sentence), metrics (floats), literature (value compared to and source);
    ``plot(path)`` writes a PNG with with/without panels and returns the path.
    """

    name: str
    claim: str
    metrics: Mapping[str, float]
    literature: str
    make_figure: Callable = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.make_figure is not None:
            object.__setattr__(self, "make_figure", _titled(self.make_figure, self.claim))

    def plot(self, path: str | Path) -> Path:
        from .io.atomic import atomic_path
        from .plot import pyplot

        plt = pyplot()
        path = Path(path)
        fig = self.make_figure()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format=path.suffix[1:].lower() or "png")
        plt.close(fig)
        return path


#: type sizes for figures that are projected (a 12.8 x ~5 inch figure shown at 1280x720)
STYLE = {"font.size": 11, "axes.titlesize": 12, "axes.labelsize": 11, "xtick.labelsize": 10,
         "ytick.labelsize": 10, "legend.fontsize": 10, "figure.titlesize": 13}


def _titled(make: Callable, claim: str) -> Callable:
    """Wrap a figure builder: projection type sizes and the claim as the title (wrapped)."""
    import textwrap

    def build():
        from .plot import pyplot

        with pyplot().rc_context(STYLE):
            fig = make()
            fig.suptitle(textwrap.fill(claim, 120))  # constrained layout (see _fig) makes room for it
        return fig

    return build


# ----------------------------------------------------------------------------- helpers
def _sim(drugs=None, variants=(), params=None, hours=72.0, events=(), points=None):
    from .solvers.solve import simulate

    n = points or int(hours) + 1
    return simulate("default", drugs=drugs, variants=variants, parameters=params, time=f"{hours} h",
                    t_eval=np.linspace(0.0, hours, n), events=events)


def _batch(conditions, variants=(), params=None, hours=72.0, points=None):
    """One simulate call for many conditions: list of {'drugs':..., 'parameters':...}."""
    from .solvers.solve import simulate

    n = points or int(hours) + 1
    return simulate("default", variants=variants, parameters=params, time=f"{hours} h",
                    t_eval=np.linspace(0.0, hours, n), conditions=conditions)


def _ic50(doses, response):
    """Dose at which a decreasing response crosses halfway between its max and min (log-interp)."""
    doses, r = np.asarray(doses, float), np.asarray(response, float)
    half = 0.5 * (r[0] + r[-1])
    for i in range(len(r) - 1):
        if (r[i] - half) * (r[i + 1] - half) <= 0 and r[i] != r[i + 1]:
            f = (r[i] - half) / (r[i] - r[i + 1])
            return float(10 ** (np.log10(doses[i]) + f * (np.log10(doses[i + 1]) - np.log10(doses[i]))))
    return float("nan")


def _fig(ncols=2, nrows=1, w=6.2, h=4.8):
    from .plot import pyplot

    plt = pyplot()
    fig, axes = plt.subplots(nrows, ncols, figsize=(w * ncols, h * nrows), squeeze=False, layout="constrained")
    return fig, axes.ravel()


def _bars(ax, labels, values, title, ylabel, colors=None):
    ax.bar(range(len(values)), values, color=colors or ["0.6"] + ["C0", "C1", "C2", "C3", "C4", "C5"][: len(values) - 1])
    ax.set_xticks(range(len(values)))
    ax.set_xticklabels(labels)
    ax.set_title(title)
    ax.set_ylabel(ylabel)


def _legend_below(ax, ncol=2):
    """A legend under the axes and their x label (covers no data)."""
    below = -0.2 if ax.get_xlabel() else -0.17
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, below), ncol=ncol, frameon=False)


# ----------------------------------------------------------------------------- 1
def her2_blockade(*, fast: bool = False) -> DemoResult:
    """Trastuzumab and lapatinib lower pAKT, pERK and growth dose-dependently (BT-474-like, in vitro).

    Compared to: lapatinib growth IC50 0.010-18.6 uM across 31 breast lines, HER2-amplified
    lines at the sensitive end, ~0.01-0.3 uM (Konecny 2006 Cancer Res 66:1630); trastuzumab
    partially inhibits BT-474 growth (30-60%) with sub-nM to low-nM potency (Carter 1992 PNAS Kd
    ~0.1 nM; Junttila 2009 Cancer Cell).
    """
    lap = [1, 10, 100, 1000, 10000] if fast else [1, 3, 10, 30, 100, 300, 1000, 3000, 10000]
    tra = [0.01, 0.1, 1, 10, 100] if fast else [0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100]
    out = {}
    for drug, doses in (("lapatinib", lap), ("trastuzumab", tra)):
        conds = [{"drugs": {}}] + [{"drugs": {drug: f"{d} nM"}} for d in doses]
        r = _batch(conds, params=IN_VITRO, hours=72.0, points=25)
        growth = np.log(r.values("viable_cells")[:, -1])
        out[drug] = {k: r.values(k)[:, -1] for k in ("pAKT", "pERK", "proliferation_rate")}
        out[drug]["growth"] = growth / growth[0]
    m = {
        "lapatinib_growth_IC50_nM": _ic50(lap, out["lapatinib"]["growth"][1:]),
        "lapatinib_pAKT_IC50_nM": _ic50(lap, out["lapatinib"]["pAKT"][1:]),
        "lapatinib_max_pAKT_fraction": float(out["lapatinib"]["pAKT"][-1] / out["lapatinib"]["pAKT"][0]),
        "lapatinib_max_pERK_fraction": float(out["lapatinib"]["pERK"][-1] / out["lapatinib"]["pERK"][0]),
        "lapatinib_max_proliferation_fraction": float(out["lapatinib"]["proliferation_rate"][-1] / out["lapatinib"]["proliferation_rate"][0]),
        "trastuzumab_pAKT_IC50_nM": _ic50(tra, out["trastuzumab"]["pAKT"][1:]),
        "trastuzumab_growth_IC50_nM": _ic50(tra, out["trastuzumab"]["growth"][1:]),
        "trastuzumab_max_pAKT_fraction": float(out["trastuzumab"]["pAKT"][-1] / out["trastuzumab"]["pAKT"][0]),
        "trastuzumab_max_pERK_fraction": float(out["trastuzumab"]["pERK"][-1] / out["trastuzumab"]["pERK"][0]),
        "trastuzumab_max_proliferation_fraction": float(out["trastuzumab"]["proliferation_rate"][-1] / out["trastuzumab"]["proliferation_rate"][0]),
    }

    def figure():
        fig, ax = _fig(2)
        for a, (drug, doses) in zip(ax, (("trastuzumab", tra), ("lapatinib", lap))):
            for k, lab in (("pAKT", "pAKT"), ("pERK", "pERK"), ("proliferation_rate", "proliferation rate"),
                           ("growth", "log growth over 72 h")):
                v = out[drug][k]
                a.semilogx(doses, v[1:] / v[0], "o-", label=lab)
            a.axhline(1, color="0.5", lw=1, ls="--", label="untreated control")
            a.set_ylim(bottom=min(0.0, a.get_ylim()[0]))
            a.set_xlabel(f"{drug} dose (nM, log scale)")
            a.set_ylabel("fraction of untreated control")
            a.set_title(f"{drug}, 72 h, BT-474-like cells in vitro")
            _legend_below(a, ncol=3)
        return fig

    return DemoResult("her2_blockade",
                      "Trastuzumab and lapatinib lower pAKT, pERK and growth dose-dependently in HER2-amplified cells.",
                      m, "Lapatinib growth IC50 0.010-18.6 uM across breast lines, HER2-amplified lines ~0.01-0.3 uM "
                         "(Konecny 2006 Cancer Res 66:1630); trastuzumab partial (30-60%) growth inhibition of BT-474 with "
                         "sub-nM-to-nM potency (Carter 1992 PNAS, Junttila 2009 Cancer Cell).", figure)


# ----------------------------------------------------------------------------- 2
def pi3k_resistance(*, fast: bool = False) -> DemoResult:
    """PIK3CA H1047R and PTEN loss blunt trastuzumab; alpelisib (pAKT) and everolimus (growth) restore it.

    Compared to: PTEN loss -> trastuzumab resistance (Nagata 2004 Cancer Cell; Faratian 2009
    Cancer Res); CLEOPATRA PFS 13.8 vs 8.6 months WT vs PIK3CA-mutant (Baselga 2014 JCO);
    everolimus restores benefit in PTEN-low/PI3K-active tumours (BOLERO-3, Andre 2014).
    """
    T = {"trastuzumab": "10 nM"}
    rows = {}
    for bg in ("wild type", "pik3ca_h1047r", "pten_loss"):
        v = () if bg == "wild type" else (bg,)
        conds = [{"drugs": {}}, {"drugs": T}, {"drugs": {**T, "alpelisib": "1 uM"}}, {"drugs": {**T, "everolimus": "10 nM"}}]
        r = _batch(conds, variants=v, params=IN_VITRO, hours=72.0, points=13)
        pakt = r.values("pAKT")[:, -1]
        prol = r.values("proliferation_rate")[:, -1]
        rows[bg] = {"pAKT": pakt / pakt[0], "prolif": prol / prol[0]}
    m = {}
    for bg, key in (("wild type", "wt"), ("pik3ca_h1047r", "pik3ca"), ("pten_loss", "pten")):
        m[f"{key}_trastuzumab_pAKT_fraction"] = float(rows[bg]["pAKT"][1])
        m[f"{key}_trastuzumab_proliferation_fraction"] = float(rows[bg]["prolif"][1])
        m[f"{key}_T_alpelisib_pAKT_fraction"] = float(rows[bg]["pAKT"][2])
        m[f"{key}_T_everolimus_proliferation_fraction"] = float(rows[bg]["prolif"][3])
        m[f"{key}_T_alpelisib_proliferation_fraction"] = float(rows[bg]["prolif"][2])

    def figure():
        fig, ax = _fig(2)
        labels = ["untreated", "T", "T +\nalpelisib 1 uM", "T +\neverolimus 10 nM"]
        names = {"wild type": "wild type", "pik3ca_h1047r": "PIK3CA H1047R", "pten_loss": "PTEN loss"}
        x = np.arange(4)
        for a, k, title in ((ax[0], "pAKT", "pAKT at 72 h"), (ax[1], "prolif", "proliferation rate at 72 h")):
            for i, bg in enumerate(rows):
                a.bar(x + (i - 1) * 0.27, rows[bg][k], width=0.27, label=names[bg])
            a.set_xticks(x)
            a.set_xticklabels(labels)
            a.set_ylabel("fraction of own untreated control")
            a.set_title(title + " (T = trastuzumab 10 nM)")
            _legend_below(a, ncol=3)
        return fig

    return DemoResult("pi3k_resistance",
                      "PIK3CA mutation and PTEN loss blunt trastuzumab's effect on pAKT and proliferation; alpelisib or everolimus restores it.",
                      m, "PTEN loss / PIK3CA mutation -> trastuzumab resistance (Nagata 2004 Cancer Cell; Faratian 2009 Cancer Res; "
                         "CLEOPATRA PFS 13.8 vs 8.6 mo WT vs PIK3CA-mut, Baselga 2014 JCO); everolimus restores benefit (BOLERO-3, Andre 2014 Lancet Oncol).",
                      figure)


# ----------------------------------------------------------------------------- 3
def her3_feedback(*, fast: bool = False) -> DemoResult:
    """Lapatinib raises HER3 and pHER3 over 24-72 h with a pAKT rebound; + alpelisib or trastuzumab keeps pAKT down.

    Compared to: FOXO3a-dependent HER3 up-regulation 2-5-fold within 24-48 h of lapatinib with
    pHER3/pAKT recovery (Garrett 2011 PNAS 108:5021); trastuzumab + lapatinib still raise HER3
    (Garrett 2013 Clin Cancer Res) but pAKT stays low.
    """
    arms = {"lapatinib 1 uM": {"lapatinib": "1 uM"},
            "+ alpelisib 1 uM": {"lapatinib": "1 uM", "alpelisib": "1 uM"},
            "+ trastuzumab 70 nM": {"lapatinib": "1 uM", "trastuzumab": "70 nM"},
            "+ pertuzumab 70 nM": {"lapatinib": "1 uM", "pertuzumab": "70 nM"}}
    res = {k: _sim(d, params=IN_VITRO, hours=72.0, points=73) for k, d in arms.items()}
    base = res["lapatinib 1 uM"]
    pakt0 = base["pAKT"][0]
    m = {"HER3_total_fold_72h": float(base.at("HER3_total", 72) / base.at("HER3_total", 0)),
         "pHER3_48h_over_4h": float(base.at("pHER3", 48) / base.at("pHER3", 4)),
         "pAKT_48h_over_4h": float(base.at("pAKT", 48) / base.at("pAKT", 4)),
         "pAKT_4h_fraction_of_untreated": float(base.at("pAKT", 4) / pakt0)}
    for k, key in (("lapatinib 1 uM", "lapatinib"), ("+ alpelisib 1 uM", "with_alpelisib"),
                   ("+ trastuzumab 70 nM", "with_trastuzumab"), ("+ pertuzumab 70 nM", "with_pertuzumab")):
        r = res[k]
        m[f"{key}_rebound_pct_of_untreated"] = float(100 * (r.at("pAKT", 48) - r.at("pAKT", 4)) / pakt0)
        m[f"{key}_pAKT_48h_fraction"] = float(r.at("pAKT", 48) / pakt0)

    def figure():
        fig, ax = _fig(3, w=4.6, h=5.2)
        t = base.time
        ax[0].plot(t, base["HER3_total"] / base["HER3_total"][0], label="HER3 total")
        ax[0].plot(t, base["pHER3"] / base["pHER3"][0], label="pHER3")
        ax[0].plot(t, base["FOXO_nuclear"] / base["FOXO_nuclear"][0], label="nuclear FOXO")
        ax[0].axhline(1, color="0.5", lw=1, ls="--", label="untreated (t = 0)")
        ax[0].set_title("lapatinib 1 uM: FOXO -> HER3")
        ax[0].set_ylabel("fold change from t = 0")
        ax[1].axhline(1, color="0.5", lw=1, ls="--", label="untreated")
        for k, r in res.items():
            ax[1].plot(t, r["pAKT"] / pakt0, label=k)
        ax[1].set_ylim(0, None)
        ax[1].set_title("pAKT under lapatinib 1 uM +/- a second drug")
        ax[1].set_ylabel("pAKT, fraction of untreated")
        ax[2].bar(range(len(res)), [m[f"{key}_rebound_pct_of_untreated"] for key in
                                    ("lapatinib", "with_alpelisib", "with_trastuzumab", "with_pertuzumab")],
                  color=["C0", "C1", "C2", "C3"])
        ax[2].set_xticks(range(len(res)))
        ax[2].set_xticklabels(["lapatinib\nalone", "+ alpelisib", "+ trastu-\nzumab", "+ pertu-\nzumab"])
        ax[2].set_title("pAKT rebound from 4 h to 48 h")
        ax[2].set_ylabel("rebound (% of untreated pAKT)")
        for a in ax[:2]:
            a.set_xlabel("time after dosing (h)")
            _legend_below(a, ncol=2)
        return fig

    return DemoResult("her3_feedback",
                      "Lapatinib raises HER3 and pHER3 over 24-72 h with a pAKT rebound; adding a PI3K inhibitor or trastuzumab keeps pAKT down.",
                      m, "HER3 mRNA/protein up 2-5-fold within 24-48 h of lapatinib via FOXO3a, with pHER3/pAKT recovery "
                         "(Garrett 2011 PNAS 108:5021); trastuzumab + lapatinib still raise HER3 (Garrett 2013 Clin Cancer Res).",
                      figure)


# ----------------------------------------------------------------------------- 4
def mtor_feedback(*, fast: bool = False) -> DemoResult:
    """Everolimus lowers pS6 but raises pAKT (relief of S6K -| PI3K feedback).

    Compared to: rapamycin/RAD001 raise AKT Ser473 phosphorylation ~1.5-3-fold within hours via
    IRS-1 (O'Reilly 2006 Cancer Res 66:1500).
    """
    r0 = _sim(None, params=IN_VITRO, hours=24.0, points=49)
    r = _sim({"everolimus": "10 nM"}, params=IN_VITRO, hours=24.0, points=49)
    m = {"pAKT_fold_24h": float(r.at("pAKT", 24) / r0.at("pAKT", 24)),
         "pS6_fraction_24h": float(r.at("pS6", 24) / r0.at("pS6", 24)),
         "p4EBP1_fraction_24h": float(r.at("p4EBP1", 24) / r0.at("p4EBP1", 24))}

    def figure():
        fig, ax = _fig(2)
        for a, k, what in zip(ax, ("pAKT", "pS6"), ("pAKT rises (feedback relieved)", "pS6 falls (mTORC1 target)")):
            a.plot(r0.time, r0[k], color="0.5", ls="--", lw=2, label="untreated control")
            a.plot(r.time, r[k], color="C3", lw=2, label="everolimus 10 nM")
            a.set_ylim(0, None)
            a.set_title(f"{what}, BT-474-like, in vitro")
            a.set_xlabel("time after dosing (h)")
            a.set_ylabel(f"{k} (fraction phosphorylated)")
            _legend_below(a)
        return fig

    return DemoResult("mtor_feedback", "Everolimus alone suppresses pS6 but raises pAKT by relieving S6K negative feedback.",
                      m, "Rapalogs raise pAKT(S473) ~1.5-3-fold via S6K -| IRS-1 relief (O'Reilly 2006 Cancer Res 66:1500).", figure)


# ----------------------------------------------------------------------------- 5
def er_escape(*, fast: bool = False) -> DemoResult:
    """In ER+ BT-474-like cells HER2 blockade raises ER activity; lapatinib + fulvestrant beats either alone.

    Compared to: ER and Bcl2 rise after 2 weeks of neoadjuvant lapatinib, 18% of ER- tumours turn
    ER+ (Giuliano 2015 Clin Cancer Res 21:3995); FOXO3a drives ESR1 (Guo & Sonenshein 2004 MCB).
    """
    arms = {"control": {}, "lapatinib": {"lapatinib": "1 uM"}, "fulvestrant": {"fulvestrant": "100 nM"},
            "lapatinib+fulvestrant": {"lapatinib": "1 uM", "fulvestrant": "100 nM"}}
    r = _batch([{"drugs": d} for d in arms.values()], params=IN_VITRO, hours=96.0, points=49)
    er = r.values("ER_activity")
    pr = r.values("proliferation_rate")[:, -1]
    vc = r.values("viable_cells")[:, -1]
    m = {"ER_activity_fold_lapatinib_48h": float(np.interp(48, r.time, er[1]) / er[0, 0]),
         "proliferation_fraction_lapatinib": float(pr[1] / pr[0]),
         "proliferation_fraction_fulvestrant": float(pr[2] / pr[0]),
         "proliferation_fraction_combination": float(pr[3] / pr[0]),
         "viable_cells_96h_lapatinib": float(vc[1]), "viable_cells_96h_fulvestrant": float(vc[2]),
         "viable_cells_96h_combination": float(vc[3]), "viable_cells_96h_control": float(vc[0])}

    def figure():
        fig, ax = _fig(2)
        styles = {"control": dict(color="0.5", ls="--", label="untreated control"),
                  "lapatinib": dict(color="C0", label="lapatinib 1 uM"), "fulvestrant": dict(color="C1", label="fulvestrant 100 nM"),
                  "lapatinib+fulvestrant": dict(color="C3", label="lapatinib + fulvestrant")}
        for i, k in enumerate(arms):
            ax[0].plot(r.time, er[i], lw=2, **styles[k])
            ax[1].plot(r.time, r.values("viable_cells")[i], lw=2, **styles[k])
        ax[0].set_title("ER activity rises when HER2 is blocked")
        ax[0].set_ylabel("ER activity (nM active ER)")
        ax[1].set_title("viable cells: the combination wins")
        ax[1].set_ylabel("viable cells (relative, 1 = at dosing)")
        for a in ax:
            a.set_ylim(0, None)
            a.set_xlabel("time after dosing (h)")
            _legend_below(a)
        return fig

    return DemoResult("er_escape", "In ER-positive cells HER2 blockade raises ER activity, and HER2 blockade plus fulvestrant suppresses proliferation more than either alone.",
                      m, "ER rises after 2 weeks of lapatinib; 18% of ER- tumours convert to ER+ (Giuliano 2015 Clin Cancer Res 21:3995).", figure)


# ----------------------------------------------------------------------------- 6
def cdk46(*, fast: bool = False) -> DemoResult:
    """Palbociclib lowers pRb and arrests G1; CCND1 amplification resists lapatinib but not lapatinib + palbociclib.

    Compared to: palbociclib CDK4-cyclin D1 IC50 11 nM (npj Breast Cancer 2019 Table 2) and G1
    arrest of Rb-proficient luminal/HER2+ lines (Finn 2009 Breast Cancer Res); cyclin D1-CDK4/6
    mediates anti-HER2 resistance, reversed by CDK4/6 inhibition (Goel 2016 Cancer Cell 29:255).
    """
    doses = [1, 10, 100, 1000] if fast else [1, 3, 10, 30, 100, 300, 1000]
    r = _batch([{"drugs": {}}] + [{"drugs": {"palbociclib": f"{d} nM"}} for d in doses], params=IN_VITRO, hours=24.0, points=9)
    prb = r.values("pRb")[:, -1]
    arms = {"control": {}, "lapatinib": {"lapatinib": "1 uM"}, "lapatinib+palbociclib": {"lapatinib": "1 uM", "palbociclib": "300 nM"}}
    out = {}
    for bg in ("wild type", "ccnd1_amp"):
        rr = _batch([{"drugs": d} for d in arms.values()], variants=() if bg == "wild type" else (bg,), params=IN_VITRO,
                    hours=72.0, points=13)
        out[bg] = rr.values("proliferation_rate")[:, -1]
    m = {"pRb_fraction_palbociclib_300nM": float(np.interp(np.log10(300), np.log10(doses), prb[1:]) / prb[0]),
         "palbociclib_pRb_IC50_nM": _ic50(doses, prb[1:]),
         "wt_lapatinib_proliferation_fraction": float(out["wild type"][1] / out["wild type"][0]),
         "ccnd1_lapatinib_proliferation_fraction": float(out["ccnd1_amp"][1] / out["ccnd1_amp"][0]),
         "ccnd1_lapatinib_palbociclib_proliferation_fraction": float(out["ccnd1_amp"][2] / out["ccnd1_amp"][0])}

    def figure():
        fig, ax = _fig(2)
        ax[0].semilogx(doses, prb[1:] / prb[0], "o-", color="C3", label="palbociclib")
        ax[0].axhline(1, color="0.5", lw=1, ls="--", label="untreated control")
        ax[0].set_ylim(0, None)
        ax[0].set_xlabel("palbociclib dose (nM, log scale)")
        ax[0].set_ylabel("pRb at 24 h, fraction of untreated")
        ax[0].set_title("CDK4/6 inhibition lowers pRb")
        _legend_below(ax[0])
        x = np.arange(3)
        for i, bg in enumerate(out):
            ax[1].bar(x + (i - 0.5) * 0.4, out[bg] / out[bg][0], width=0.4,
                      label={"wild type": "parent line", "ccnd1_amp": "CCND1 amplified"}[bg])
        ax[1].set_xticks(x)
        ax[1].set_xticklabels(["untreated", "lapatinib 1 uM", "lapatinib +\npalbociclib 300 nM"])
        ax[1].set_ylabel("proliferation rate at 72 h,\nfraction of own untreated")
        ax[1].set_title("CCND1 amplification resists lapatinib alone")
        _legend_below(ax[1])
        return fig

    return DemoResult("cdk46", "CDK4/6 inhibition lowers pRb and arrests G1; CCND1-amplified cells resist HER2 blockade but not HER2 blockade plus palbociclib.",
                      m, "Palbociclib CDK4-cyclin D1 IC50 11 nM (npj Breast Cancer 2019); CDK4/6 inhibition re-sensitises anti-HER2-resistant "
                         "cells (Goel 2016 Cancer Cell 29:255).", figure)


# ----------------------------------------------------------------------------- 7
def pertuzumab_heregulin(*, fast: bool = False) -> DemoResult:
    """With 1 nM heregulin, pertuzumab lowers pHER3/pAKT where trastuzumab does not; together they are best.

    Compared to: trastuzumab fails to block HRG-induced HER2/HER3 signalling while pertuzumab
    blocks it (Junttila 2009 Cancer Cell 15:429; Nami 2019 Cancers 11:375).
    """
    arms = {"HRG only": {}, "trastuzumab": {"trastuzumab": "70 nM"}, "pertuzumab": {"pertuzumab": "70 nM"},
            "T + P": {"trastuzumab": "70 nM", "pertuzumab": "70 nM"}}
    r = _batch([{"drugs": d} for d in arms.values()], params={**IN_VITRO, "HRG": "1 nM"}, hours=72.0, points=13)
    v = {k: r.values(k)[:, -1] for k in ("pHER3", "pAKT", "proliferation_rate")}
    m = {}
    for i, k in enumerate(("trastuzumab", "pertuzumab", "combination"), start=1):
        for o in v:
            m[f"{k}_{o}_fraction"] = float(v[o][i] / v[o][0])

    def figure():
        fig, ax = _fig(3, w=4.3, h=4.6)
        what = {"pHER3": "pHER3", "pAKT": "pAKT", "proliferation_rate": "proliferation rate"}
        for a, o in zip(ax, v):
            _bars(a, ["HRG only\n(no drug)", "trastu-\nzumab", "pertu-\nzumab", "both"], v[o] / v[o][0],
                  f"{what[o]}, 1 nM heregulin, 72 h", "fraction of HRG-only control")
        return fig

    return DemoResult("pertuzumab_heregulin", "With heregulin present, pertuzumab blocks HER2/HER3 signalling where trastuzumab falls short, and the two together are best.",
                      m, "Trastuzumab does not block HRG-driven HER2/HER3 whereas pertuzumab does (Junttila 2009 Cancer Cell 15:429; Nami 2019 Cancers 11:375).",
                      figure)


# ----------------------------------------------------------------------------- 8
def margetuximab_adcc(*, fast: bool = False) -> DemoResult:
    """Margetuximab gives more ADCC than trastuzumab; the gain is larger for CD16A-158F effectors.

    Compared to: margetuximab enhances ADCC with both alleles, most with 158F low-binders
    (Nordstrom 2011 Breast Cancer Res 13:R123); 158F binds IgG1 ~4-5-fold less (Koene 1997 Blood).
    """
    out = {}
    for geno in ("cd16a_158v", "cd16a_158f"):
        r = _batch([{"drugs": {"trastuzumab": "70 nM"}}, {"drugs": {"margetuximab": "70 nM"}}, {"drugs": {}}],
                   variants=(geno,), hours=72.0, points=13)
        out[geno] = {"adcc": r.values("adcc_rate_obs")[:, -1], "cells": r.values("viable_cells")[:, -1]}
    m = {}
    for geno, key in (("cd16a_158v", "158V"), ("cd16a_158f", "158F")):
        a = out[geno]["adcc"]
        m[f"adcc_trastuzumab_{key}"] = float(a[0])
        m[f"adcc_margetuximab_{key}"] = float(a[1])
        m[f"gain_{key}"] = float(a[1] / a[0])
        m[f"viable_cells_72h_trastuzumab_{key}"] = float(out[geno]["cells"][0])
        m[f"viable_cells_72h_margetuximab_{key}"] = float(out[geno]["cells"][1])

    def figure():
        fig, ax = _fig(2)
        x = np.arange(3)
        order = [2, 0, 1]  # no antibody, trastuzumab, margetuximab
        for i, (geno, lab) in enumerate((("cd16a_158v", "CD16A 158V/V host"), ("cd16a_158f", "CD16A 158F/F host"))):
            ax[0].bar(x + (i - 0.5) * 0.4, out[geno]["adcc"][order], width=0.4, label=lab)
            ax[1].bar(x + (i - 0.5) * 0.4, out[geno]["cells"][order], width=0.4, label=lab)
        for a, t, yl in zip(ax, ("NK-cell ADCC kill rate at 72 h", "viable cells at 72 h"),
                            ("ADCC kill rate (1/h)", "viable cells (relative, 1 = at dosing)")):
            a.set_xticks(x)
            a.set_xticklabels(["no antibody", "trastuzumab\n70 nM", "margetuximab\n70 nM"])
            a.set_title(t)
            a.set_ylabel(yl)
            _legend_below(a)
        return fig

    return DemoResult("margetuximab_adcc", "Margetuximab gives more ADCC than trastuzumab, and the gain is larger in CD16A-158F carriers.",
                      m, "Margetuximab (Fc-optimised) enhances ADCC for both CD16A alleles, most for 158F (Nordstrom 2011 Breast Cancer Res 13:R123).",
                      figure)


# ----------------------------------------------------------------------------- 9
def adc_bystander(*, fast: bool = False) -> DemoResult:
    """T-DM1 kills regardless of PIK3CA/PTEN status; T-DXd's permeable payload kills co-cultured HER2-low cells, T-DM1 spares them.

    Compared to: PIK3CA mutation shortens PFS with capecitabine+lapatinib but not with T-DM1
    (Baselga 2016 Clin Cancer Res 22:3755, EMILIA); T-DXd (not T-DM1) kills HER2-negative
    MDA-MB-468 cells in co-culture with HER2-positive cells (Ogitani 2016 Cancer Sci 107:1039).
    """
    logkill = {}
    for bg in ("wild type", "pik3ca_h1047r", "pten_loss"):
        r = _batch([{"drugs": {}}, {"drugs": {"tdm1": "10 nM"}}, {"drugs": {"lapatinib": "300 nM"}}],
                   variants=() if bg == "wild type" else (bg,), params=IN_VITRO, hours=72.0, points=13)
        c = r.values("viable_cells")[:, -1]
        logkill[bg] = {"tdm1": float(np.log(c[0] / c[1])), "lapatinib": float(np.log(c[0] / c[2])),
                       "payload_kill": float(r.values("apoptosis_rate")[1, -1] - r.values("apoptosis_rate")[0, -1])}
    co = _batch([{"drugs": {}}, {"drugs": {"tdm1": "10 nM"}}, {"drugs": {"tdxd": "10 nM"}}], params=IN_VITRO, hours=72.0, points=37)
    low = co.values("viable_cells_her2low")
    high = co.values("viable_cells")
    m = {"tdm1_logkill_retained_pik3ca": logkill["pik3ca_h1047r"]["tdm1"] / logkill["wild type"]["tdm1"],
         "tdm1_logkill_retained_pten": logkill["pten_loss"]["tdm1"] / logkill["wild type"]["tdm1"],
         "lapatinib_logkill_retained_pik3ca": logkill["pik3ca_h1047r"]["lapatinib"] / logkill["wild type"]["lapatinib"],
         "lapatinib_logkill_retained_pten": logkill["pten_loss"]["lapatinib"] / logkill["wild type"]["lapatinib"],
         "her2low_fraction_of_control_tdm1": float(low[1, -1] / low[0, -1]),
         "her2low_fraction_of_control_tdxd": float(low[2, -1] / low[0, -1]),
         "her2high_fraction_of_control_tdm1": float(high[1, -1] / high[0, -1]),
         "her2high_fraction_of_control_tdxd": float(high[2, -1] / high[0, -1])}

    def figure():
        fig, ax = _fig(2, h=5.4)
        x = np.arange(3)
        ax[0].bar(x - 0.2, [logkill[b]["tdm1"] for b in logkill], width=0.4, label="T-DM1 10 nM")
        ax[0].bar(x + 0.2, [logkill[b]["lapatinib"] for b in logkill], width=0.4, label="lapatinib 300 nM")
        ax[0].set_xticks(x)
        ax[0].set_xticklabels(["wild type", "PIK3CA H1047R", "PTEN loss"])
        ax[0].set_ylabel("log cell kill at 72 h,\nln(untreated / treated cells)")
        ax[0].set_title("T-DM1 kill does not depend on PI3K status")
        _legend_below(ax[0])
        for i, (lab, col) in enumerate((("untreated", "0.5"), ("T-DM1 10 nM", "C0"), ("T-DXd 10 nM", "C3"))):
            ax[1].plot(co.time, low[i], color=col, lw=2, label=f"HER2-low cells, {lab}")
            ax[1].plot(co.time, high[i], color=col, lw=2, ls=":", label=f"HER2-high cells, {lab}")
        ax[1].set_yscale("log")
        ax[1].set_xlabel("time after dosing (h)")
        ax[1].set_ylabel("viable cells (relative, 1 = at dosing; log)")
        ax[1].set_title("co-culture: T-DXd's payload reaches HER2-low cells")
        _legend_below(ax[1])
        return fig

    return DemoResult("adc_bystander", "T-DM1 kills independently of PIK3CA/PTEN status, and in co-culture T-DXd's permeable payload kills HER2-low cells that T-DM1 spares.",
                      m, "EMILIA: PIK3CA mutation shortens PFS on capecitabine+lapatinib but not on T-DM1 (Baselga 2016 Clin Cancer Res); "
                         "T-DXd, not T-DM1, kills HER2-negative cells co-cultured with HER2-positive cells (Ogitani 2016 Cancer Sci 107:1039).",
                      figure)


# ----------------------------------------------------------------------------- 10
def tki_washout(*, fast: bool = False) -> DemoResult:
    """After washout at 24 h neratinib's inhibition of pHER2 persists while lapatinib's fades; tucatinib spares pEGFR.

    Compared to: irreversible neratinib inhibition outlasts drug removal (Rabindran 2004 Cancer
    Res 64:3958); tucatinib >1000-fold HER2 over EGFR selectivity in cells (Kulukian 2020 MCT).
    """
    ctrl = _sim(None, params=IN_VITRO, hours=48.0, points=97)
    lap = _sim({"lapatinib": "1 uM"}, params=IN_VITRO, hours=48.0, points=97, events=[("24 h", {"lapatinib": 0})])
    ner = _sim({"neratinib": "100 nM"}, params=IN_VITRO, hours=48.0, points=97, events=[("24 h", {"neratinib": 0})])
    p0 = ctrl.at("pHER2", 30)
    egf = {**IN_VITRO, "EGF": "1 nM"}
    r = _batch([{"drugs": {}}, {"drugs": {"lapatinib": "300 nM"}}, {"drugs": {"tucatinib": "300 nM"}}], params=egf, hours=24.0, points=7)
    ph2, pe = r.values("pHER2")[:, -1], r.values("pEGFR")[:, -1]
    m = {"lapatinib_pHER2_before_washout": float(lap.at("pHER2", 23.5) / p0),
         "neratinib_pHER2_before_washout": float(ner.at("pHER2", 23.5) / p0),
         "lapatinib_pHER2_6h_after_washout": float(lap.at("pHER2", 30) / p0),
         "neratinib_pHER2_6h_after_washout": float(ner.at("pHER2", 30) / p0),
         "lapatinib_pAKT_6h_after_washout": float(lap.at("pAKT", 30) / ctrl.at("pAKT", 30)),
         "neratinib_pAKT_6h_after_washout": float(ner.at("pAKT", 30) / ctrl.at("pAKT", 30)),
         "lapatinib_pHER2_fraction_with_EGF": float(ph2[1] / ph2[0]), "tucatinib_pHER2_fraction_with_EGF": float(ph2[2] / ph2[0]),
         "lapatinib_pEGFR_fraction_with_EGF": float(pe[1] / pe[0]), "tucatinib_pEGFR_fraction_with_EGF": float(pe[2] / pe[0])}

    def figure():
        fig, ax = _fig(2)
        ax[0].plot(ctrl.time, ctrl["pHER2"] / ctrl["pHER2"][0], color="0.5", ls="--", lw=2, label="untreated control")
        ax[0].plot(lap.time, lap["pHER2"] / ctrl["pHER2"][0], lw=2, label="lapatinib 1 uM (reversible)")
        ax[0].plot(ner.time, ner["pHER2"] / ctrl["pHER2"][0], lw=2, label="neratinib 100 nM (covalent)")
        ax[0].axvline(24, color="k", ls=":", lw=1)
        ax[0].text(24.5, 0.5, "washout", rotation=90, va="center")
        ax[0].set_ylim(0, None)
        ax[0].set_xlabel("time after dosing (h)")
        ax[0].set_ylabel("pHER2, fraction of untreated")
        ax[0].set_title("pHER2 before and after washout at 24 h")
        _legend_below(ax[0])
        x = np.arange(3)
        ax[1].bar(x - 0.2, [1.0, ph2[1] / ph2[0], ph2[2] / ph2[0]], width=0.4, label="pHER2")
        ax[1].bar(x + 0.2, [1.0, pe[1] / pe[0], pe[2] / pe[0]], width=0.4, label="pEGFR")
        ax[1].set_xticks(x)
        ax[1].set_xticklabels(["untreated", "lapatinib 300 nM", "tucatinib 300 nM"])
        ax[1].set_ylabel("fraction of untreated at 24 h")
        ax[1].set_title("with 1 nM EGF: tucatinib spares EGFR")
        _legend_below(ax[1])
        return fig

    return DemoResult("tki_washout", "After washout, neratinib's irreversible inhibition persists while lapatinib's fades; tucatinib spares EGFR at equal HER2 inhibition.",
                      m, "Neratinib covalent, sustained inhibition (Rabindran 2004 Cancer Res 64:3958); tucatinib >1000-fold HER2/EGFR selectivity "
                         "in cells (Kulukian 2020 Mol Cancer Ther 19:976).", figure)


DEMOS: dict[str, Callable[..., DemoResult]] = {
    "her2_blockade": her2_blockade,
    "pi3k_resistance": pi3k_resistance,
    "her3_feedback": her3_feedback,
    "mtor_feedback": mtor_feedback,
    "er_escape": er_escape,
    "cdk46": cdk46,
    "pertuzumab_heregulin": pertuzumab_heregulin,
    "margetuximab_adcc": margetuximab_adcc,
    "adc_bystander": adc_bystander,
    "tki_washout": tki_washout,
}


#: one line per demonstration (``her2sim demo --list``, the explorer's lesson list)
SUMMARIES: dict[str, str] = {
    "her2_blockade": "trastuzumab vs lapatinib dose-response of pAKT, pERK and growth (HER2-amplified cells)",
    "pi3k_resistance": "PIK3CA mutation / PTEN loss blunt trastuzumab; alpelisib or everolimus restore it",
    "her3_feedback": "lapatinib -> FOXO -> HER3 up-regulation and pAKT rebound; a second drug holds pAKT down",
    "mtor_feedback": "everolimus lowers pS6 but raises pAKT (relief of S6K negative feedback)",
    "er_escape": "HER2 blockade raises ER activity in ER+ cells; lapatinib + fulvestrant beats either alone",
    "cdk46": "palbociclib lowers pRb; CCND1 amplification resists lapatinib but not lapatinib + palbociclib",
    "pertuzumab_heregulin": "with heregulin, pertuzumab (not trastuzumab) blocks HER2/HER3; both together best",
    "margetuximab_adcc": "NK-cell ADCC: margetuximab beats trastuzumab, most for CD16A-158F carriers",
    "adc_bystander": "T-DM1 kills regardless of PI3K status; T-DXd's payload also kills HER2-low neighbours",
    "tki_washout": "neratinib's covalent inhibition outlasts washout, lapatinib's fades; tucatinib spares EGFR",
}


def run_demo(name: str, *, fast: bool = False) -> DemoResult:
    """Run a demo by name (see ``DEMOS``)."""
    if name not in DEMOS:
        from .errors import UnknownNameError

        raise UnknownNameError("demo", name, list(DEMOS))
    return DEMOS[name](fast=fast)
