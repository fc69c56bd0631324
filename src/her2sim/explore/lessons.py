"""One guided lesson per resistance demonstration (:mod:`her2sim.demos`).

A :class:`Lesson` tells a teacher what to do, what to watch, the question to ask the class and
explains the mechanism in two paragraphs with the references that the demonstration and the model
files cite (the review: Rygiel K., EJMO 2020;4(2):126-134). ``steps`` are control settings, the
first one applied when the lesson is picked; controls are plain JSON (see :mod:`her2sim.explore.app`):
``{"drugs": {name: dose_nM}, "variants": [...], "hrg_nM": float, "egf_nM": float, "nk": bool,
"hours": float, "washout_h": float | None}``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["Lesson", "LESSONS", "lesson"]


@dataclass(frozen=True)
class Lesson:
    """A guided lesson; ``demo`` is the key in :data:`her2sim.demos.DEMOS`."""

    demo: str
    title: str
    do: str
    watch: str
    question: str
    explanation: tuple[str, str]
    references: tuple[str, ...]
    steps: tuple[tuple[str, dict], ...]
    panels: tuple[str, ...]

    def to_json(self) -> dict:
        out = asdict(self)
        out["steps"] = [{"label": label, "controls": controls} for label, controls in self.steps]
        return out


def _c(drugs=None, variants=(), hours=72.0, hrg_nM=0.0, egf_nM=0.0, nk=False, washout_h=None) -> dict:
    return {"drugs": dict(drugs or {}), "variants": list(variants), "hours": hours, "hrg_nM": hrg_nM,
            "egf_nM": egf_nM, "nk": nk, "washout_h": washout_h}


LESSONS: tuple[Lesson, ...] = (
    Lesson(
        "her2_blockade", "HER2 blockade: antibody versus kinase inhibitor",
        "Start with lapatinib 1 uM, then move its dose slider down to 10 nM and up again. Then switch "
        "lapatinib off and trastuzumab on, and move its dose over 0.01-100 nM.",
        "pHER2, pAKT and pERK on the diagram; the viable-cell curve against the grey untreated control.",
        "Why does trastuzumab, at any dose, leave more pAKT than lapatinib does?",
        ("In HER2-amplified cells (about a million receptors per cell) HER2 forms ligand-independent "
         "dimers, above all with HER3, and drives PI3K/AKT and RAS/MAPK continuously. Lapatinib is an "
         "ATP-competitive inhibitor of the EGFR and HER2 kinases, so with enough drug the receptor "
         "signal goes out; HER2-amplified lines sit at the sensitive end of its growth IC50 range "
         "(0.010-18.6 uM across 31 breast lines, Konecny 2006).",
         "Trastuzumab binds domain IV of HER2 and disrupts the ligand-independent HER2/HER3 complex, "
         "which lowers pAKT (Junttila 2009), but it is a partial inhibitor: it inhibits BT-474 growth "
         "by roughly 30-60 % with sub-nM to nM potency (Carter 1992). In the model, as in the cells, "
         "its effect levels off at partial inhibition whatever the dose, while lapatinib's keeps deepening."),
        ("Konecny 2006 Cancer Res 66:1630", "Junttila 2009 Cancer Cell 15:429", "Carter 1992 PNAS"),
        (("lapatinib 1 uM", _c({"lapatinib": 1000.0})),
         ("trastuzumab 10 nM", _c({"trastuzumab": 10.0}))),
        ("pHER2", "pAKT", "pERK", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "pi3k_resistance", "Downstream hyper-activation: PIK3CA mutation and PTEN loss",
        "Trastuzumab 10 nM is on in PIK3CA-H1047R cells. Compare with the wild type (untick PIK3CA), "
        "then tick PTEN loss. Finally add alpelisib 1 uM or everolimus 10 nM.",
        "pAKT and the proliferation rate: how much of trastuzumab's effect survives each lesion.",
        "If HER2 is blocked, where does the AKT signal in the mutant cells come from?",
        ("PTEN is the lipid phosphatase that removes PIP3; activating PIK3CA mutations such as H1047R "
         "make p110alpha active at the membrane without receptor input. Either lesion keeps "
         "PI3K/AKT/mTOR on regardless of HER2 blockade, and both are linked to trastuzumab "
         "resistance (Nagata 2004; Faratian 2009); in CLEOPATRA median PFS was 13.8 months with "
         "wild-type and 8.6 months with mutant PIK3CA (Baselga 2014).",
         "Drugs below the lesion restore the effect: alpelisib inhibits p110alpha itself, and "
         "everolimus inhibits mTORC1 and restored trastuzumab benefit in BOLERO-3 (Andre 2014). In "
         "the model alpelisib brings pAKT back down and everolimus mainly lowers proliferation, "
         "because mTORC1 sits between AKT and cyclin D1 translation."),
        ("Nagata 2004 Cancer Cell", "Faratian 2009 Cancer Res", "Baselga 2014 J Clin Oncol (CLEOPATRA)",
         "Andre 2014 Lancet Oncol (BOLERO-3)"),
        (("trastuzumab, PIK3CA H1047R", _c({"trastuzumab": 10.0}, ["pik3ca_h1047r"])),
         ("trastuzumab, wild type", _c({"trastuzumab": 10.0})),
         ("+ alpelisib 1 uM, PIK3CA", _c({"trastuzumab": 10.0, "alpelisib": 1000.0}, ["pik3ca_h1047r"]))),
        ("PIP3_level", "pAKT", "pS6", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "her3_feedback", "HER3 feedback: the pathway rebuilds itself",
        "Lapatinib 1 uM for 72 h. Watch the time courses, not only the end point. Then add alpelisib "
        "1 uM or trastuzumab 70 nM.",
        "HER3 total and pHER3 climbing after 4 h; pAKT falling, then rebounding; nuclear FOXO.",
        "What switches HER3 transcription on when AKT is blocked, and why does that undo the drug?",
        ("AKT keeps the FOXO transcription factors out of the nucleus. When lapatinib blocks "
         "HER2 -> PI3K -> AKT, FOXO3a enters the nucleus and drives HER3 transcription: HER3 mRNA and "
         "protein rise 2-5-fold within 24-48 h, pHER3 recovers and pAKT rebounds from its nadir "
         "(Garrett 2011). HER3 is the strongest activator of PI3K, so this loop is a resistance hub.",
         "Closing the loop needs a second drug: a PI3K inhibitor keeps pAKT down although HER3 still "
         "rises, and trastuzumab with lapatinib still raises HER3 but keeps pAKT low (Garrett 2013). "
         "Chandarlapaty 2011 showed the same relief of feedback with AKT inhibitors."),
        ("Garrett 2011 PNAS 108:5021", "Garrett 2013 Clin Cancer Res", "Chandarlapaty 2011 Cancer Cell"),
        (("lapatinib 1 uM", _c({"lapatinib": 1000.0})),
         ("+ alpelisib 1 uM", _c({"lapatinib": 1000.0, "alpelisib": 1000.0})),
         ("+ trastuzumab 70 nM", _c({"lapatinib": 1000.0, "trastuzumab": 70.0}))),
        ("FOXO_nuclear", "HER3_total", "pHER3", "pAKT", "viable_cells"),
    ),
    Lesson(
        "mtor_feedback", "mTOR inhibitors relieve S6K feedback",
        "Everolimus 10 nM over 24 h, nothing else.",
        "pS6 drops (blue) while pAKT rises above the control (red) on the diagram.",
        "An inhibitor that makes its own upstream pathway more active: how?",
        ("mTORC1 activates S6 kinase, and S6K phosphorylates IRS-1, which damps PI3K input: a "
         "negative feedback. Rapalogs such as everolimus inhibit mTORC1, so pS6 falls, but the brake on "
         "PI3K is released and AKT Ser473 phosphorylation rises about 1.5-3-fold within hours "
         "(O'Reilly 2006).",
         "The model reproduces this as S6K -| PI3K input. It is one reason rapalogs alone disappoint and "
         "are combined with upstream blockade (trastuzumab in BOLERO-3, Andre 2014). Try adding "
         "trastuzumab and see the pAKT rise disappear."),
        ("O'Reilly 2006 Cancer Res 66:1500", "Andre 2014 Lancet Oncol (BOLERO-3)"),
        (("everolimus 10 nM, 24 h", _c({"everolimus": 10.0}, hours=24.0)),
         ("+ trastuzumab 10 nM", _c({"everolimus": 10.0, "trastuzumab": 10.0}, hours=24.0))),
        ("pAKT", "pS6", "p4EBP1", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "er_escape", "Estrogen-receptor escape",
        "Lapatinib 1 uM for 96 h in the ER-positive BT-474-like cells. Then add fulvestrant 100 nM.",
        "ER activity rising under lapatinib (red on the diagram); the viable-cell curves of "
        "lapatinib alone and with fulvestrant against the untreated control.",
        "Why does blocking HER2 make these cells more dependent on estrogen signalling?",
        ("In tumours that express both HER2 and ER, HER2/PI3K signalling holds ER back and makes the "
         "tumour less sensitive to endocrine therapy (Rygiel 2020). AKT keeps "
         "FOXO3a out of the nucleus, and FOXO3a drives ESR1 (Guo & Sonenshein 2004); when HER2 is "
         "blocked, ER expression and activity rise and ER signalling carries proliferation. After two "
         "weeks of neoadjuvant lapatinib ER rose and 18 % of ER-negative tumours became ER-positive "
         "(Giuliano 2015).",
         "Blocking both pathways works better than either alone: here lapatinib plus the ER degrader "
         "fulvestrant suppresses proliferation more than either drug, which is why anti-HER2 therapy is "
         "combined with endocrine therapy in HR-positive disease (PATINA, monarcHER, in the review)."),
        ("Giuliano 2015 Clin Cancer Res 21:3995", "Guo & Sonenshein 2004 Mol Cell Biol",
         "Rygiel 2020 EJMO 4:126"),
        (("lapatinib 1 uM, 96 h", _c({"lapatinib": 1000.0}, hours=96.0)),
         ("lapatinib + fulvestrant", _c({"lapatinib": 1000.0, "fulvestrant": 100.0}, hours=96.0)),
         ("fulvestrant 100 nM alone", _c({"fulvestrant": 100.0}, hours=96.0))),
        ("FOXO_nuclear", "ER_activity", "pAKT", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "cdk46", "Cell-cycle escape: cyclin D1 and CDK4/6",
        "CCND1-amplified cells on lapatinib 1 uM. Then add palbociclib 300 nM. Untick CCND1 "
        "amplification to compare with the parent line.",
        "cyclin D1, CDK4/6 activity and pRb; the proliferation rate.",
        "Lapatinib still silences pAKT and pERK here: why do the cells keep dividing?",
        ("Cyclin D1-CDK4/6 phosphorylates Rb and releases E2F for the G1->S transition; HER2/MAPK, ER "
         "and mTOR all feed cyclin D1. When CCND1 is amplified, cyclin D1 stays high after the receptor "
         "signal is blocked, and cyclin D1-CDK4/6 activity mediates resistance to anti-HER2 therapy "
         "(Goel 2016).",
         "Palbociclib inhibits CDK4/6 (CDK4-cyclin D1 IC50 about 11 nM), lowers pRb and arrests "
         "Rb-proficient luminal and HER2-positive cells in G1 (Finn 2009); added to HER2 blockade it "
         "re-sensitises the resistant cells (Goel 2016)."),
        ("Goel 2016 Cancer Cell 29:255", "Finn 2009 Breast Cancer Res", "npj Breast Cancer 2019 (palbociclib IC50)"),
        (("lapatinib, CCND1 amplified", _c({"lapatinib": 1000.0}, ["ccnd1_amp"])),
         ("+ palbociclib 300 nM", _c({"lapatinib": 1000.0, "palbociclib": 300.0}, ["ccnd1_amp"])),
         ("lapatinib, parent line", _c({"lapatinib": 1000.0}))),
        ("cyclinD1", "CDK46_active", "pRb", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "pertuzumab_heregulin", "Ligand-driven HER2/HER3: pertuzumab versus trastuzumab",
        "Heregulin (HRG) 1 nM is in the medium and trastuzumab 70 nM is on. Switch to pertuzumab "
        "70 nM, then give both.",
        "pHER3 and pAKT on the diagram: which antibody turns them blue?",
        "Both antibodies bind HER2. Why does only one of them stop heregulin's signal?",
        ("Heregulin binds HER3, which then recruits HER2 into the most potent dimer, HER2/HER3. "
         "Trastuzumab binds domain IV of HER2 and disrupts ligand-independent dimers, but it does not "
         "block the heregulin-driven complex; pertuzumab binds the dimerisation arm in domain II and "
         "does (Junttila 2009).",
         "The two epitopes are complementary, so the combination is best (Nami 2019), as in the "
         "CLEOPATRA regimen. In the model (models/drugs/), pertuzumab blocks the ligand-driven "
         "heterodimers and is weak on ligand-independent ones; trastuzumab does the opposite."),
        ("Junttila 2009 Cancer Cell 15:429", "Nami 2019 Cancers 11:375"),
        (("trastuzumab 70 nM + HRG", _c({"trastuzumab": 70.0}, hrg_nM=1.0)),
         ("pertuzumab 70 nM + HRG", _c({"pertuzumab": 70.0}, hrg_nM=1.0)),
         ("both + HRG", _c({"trastuzumab": 70.0, "pertuzumab": 70.0}, hrg_nM=1.0))),
        ("pHER2", "pHER3", "pAKT", "proliferation_rate", "viable_cells"),
    ),
    Lesson(
        "margetuximab_adcc", "Host immunity: ADCC and the CD16A genotype",
        "NK cells are on, the host is CD16A-158F/F, trastuzumab 70 nM. Switch to margetuximab 70 nM, "
        "then change the genotype to 158V/V.",
        "the ADCC kill rate and the viable-cell curve.",
        "Why would the same antibody work less well in some patients?",
        ("Part of trastuzumab's effect is immune: NK cells bind the antibody's Fc through CD16A "
         "(FcgammaRIIIa) and kill the coated tumour cell (antibody-dependent cellular cytotoxicity). "
         "The CD16A-158F allele binds IgG1 about 4-5-fold less than 158V (Koene 1997), so carriers get "
         "less ADCC.",
         "Margetuximab has trastuzumab's epitope with an Fc engineered for higher CD16A affinity; it "
         "enhances ADCC with both alleles, most with 158F (Nordstrom 2011), the rationale of the SOPHIA "
         "trial. Immune effects need NK cells: with NK cells off (an in-vitro dish) ADCC is zero."),
        ("Nordstrom 2011 Breast Cancer Res 13:R123", "Koene 1997 Blood", "Rygiel 2020 EJMO 4:126 (SOPHIA)"),
        (("trastuzumab, 158F/F", _c({"trastuzumab": 70.0}, ["cd16a_158f"], nk=True)),
         ("margetuximab, 158F/F", _c({"margetuximab": 70.0}, ["cd16a_158f"], nk=True)),
         ("trastuzumab, 158V/V", _c({"trastuzumab": 70.0}, ["cd16a_158v"], nk=True))),
        ("Fc_CD16A_engagement", "adcc_rate_obs", "pAKT", "apoptosis_rate", "viable_cells"),
    ),
    Lesson(
        "adc_bystander", "Antibody-drug conjugates and the bystander effect",
        "T-DM1 10 nM on the co-culture of HER2-high cells with HER2-low neighbours. Switch to T-DXd "
        "10 nM. Tick PIK3CA H1047R with T-DM1 to see that its kill does not change.",
        "the HER2-low cells (viable_cells_low) and the HER2-high cells against the control.",
        "T-DXd and T-DM1 use the same antibody: why does only one kill HER2-low cells?",
        ("An antibody-drug conjugate is bound, internalised and digested, releasing a cytotoxic "
         "payload inside the HER2-positive cell, so its kill does not depend on PI3K signalling: in "
         "EMILIA PIK3CA mutation shortened PFS on capecitabine plus lapatinib but not on T-DM1 "
         "(Baselga 2016).",
         "T-DXd's topoisomerase-I payload is membrane-permeable and leaves the target cell to kill "
         "neighbours (the bystander effect); T-DM1's payload stays in the target cell. In co-culture "
         "T-DXd, not T-DM1, killed HER2-negative cells next to HER2-positive ones (Ogitani 2016), which "
         "is why T-DXd works in HER2-low and heterogeneous tumours."),
        ("Baselga 2016 Clin Cancer Res 22:3755 (EMILIA)", "Ogitani 2016 Cancer Sci 107:1039"),
        (("T-DM1 10 nM", _c({"tdm1": 10.0})),
         ("T-DXd 10 nM", _c({"tdxd": 10.0})),
         ("T-DM1, PIK3CA H1047R", _c({"tdm1": 10.0}, ["pik3ca_h1047r"]))),
        ("pAKT", "apoptosis_rate", "viable_cells_low", "viable_cells"),
    ),
    Lesson(
        "tki_washout", "Reversible versus irreversible kinase inhibitors",
        "Neratinib 100 nM, washed out at 24 h, 48 h run. Then lapatinib 1 uM with the same washout. "
        "Then tucatinib 300 nM with EGF 1 nM in the medium and compare pEGFR with lapatinib.",
        "pHER2 after the washout line: which drug's inhibition outlasts the drug?",
        "What does a covalent bond to the kinase change for a patient between doses?",
        ("Lapatinib binds the kinase reversibly: when the drug is removed it dissociates and pHER2 "
         "recovers within hours. Neratinib binds the EGFR, HER2 and HER4 kinases covalently "
         "(irreversibly), so inhibition persists after washout until new receptor is made (Rabindran 2004).",
         "Tucatinib is HER2-selective (over 1000-fold over EGFR in cells, Kulukian 2020): at equal HER2 "
         "inhibition it spares EGFR signalling, which is why it causes less EGFR-type toxicity; it also "
         "crosses the blood-brain barrier best of the TKIs (HER2CLIMB, in the review)."),
        ("Rabindran 2004 Cancer Res 64:3958", "Kulukian 2020 Mol Cancer Ther 19:976", "Rygiel 2020 EJMO 4:126"),
        (("neratinib, washout 24 h", _c({"neratinib": 100.0}, hours=48.0, washout_h=24.0)),
         ("lapatinib, washout 24 h", _c({"lapatinib": 1000.0}, hours=48.0, washout_h=24.0)),
         ("tucatinib 300 nM + EGF", _c({"tucatinib": 300.0}, hours=24.0, egf_nM=1.0)),
         ("lapatinib 300 nM + EGF", _c({"lapatinib": 300.0}, hours=24.0, egf_nM=1.0))),
        ("pEGFR", "pHER2", "pAKT", "pERK", "viable_cells"),
    ),
)


def lesson(demo: str) -> Lesson:
    """The lesson for a demonstration name (KeyError with the known names otherwise)."""
    for item in LESSONS:
        if item.demo == demo:
            return item
    from ..errors import UnknownNameError

    raise UnknownNameError("lesson", demo, [x.demo for x in LESSONS])
