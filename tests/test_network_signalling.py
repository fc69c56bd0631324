"""Directions of the version-2 signalling mechanisms (issue 14), each against its published source.

Every test compares the model with itself under two conditions (treated vs untreated, variant vs
wild type, mechanism on vs off), so it checks a direction and a minimum size, not fitted numbers.
"""

import csv
from pathlib import Path

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from her2sim.model.load import load_model
from her2sim.model.network import compile_network
from her2sim.solvers.solve import simulate, steady_state

IN_VITRO = {"NK_activity": 0}


def _final(conditions, variants=(), hours=72.0, params=None, names=("viable_cells",)):
    r = simulate("default", variants=list(variants), parameters={**IN_VITRO, **(params or {})},
                 time=f"{hours} h", t_eval=[0.0, hours], conditions=conditions)
    return {k: r.values(k)[:, -1] for k in names}


def _stimulate(stim: dict, hours=2.0, variants=(), base=None, net=None):
    """Observables after adding ``stim`` (internal units) to cells at their unstimulated steady state
    (``net``: the compiled default model with ``variants``, compiled here if not given)."""
    net = net or compile_network(load_model("default", variants=list(variants)))
    p = net.parameters_with(base or {})
    x0 = steady_state(net, net.initial_state(p), p)
    q = net.parameters_with({**(base or {}), **stim})
    t = np.linspace(0.0, hours, 25)
    sol = solve_ivp(lambda _t, x: net.rhs(x, q), (0.0, hours), x0, method="BDF", t_eval=t,
                    rtol=1e-8, atol=1e-10, jac=lambda _t, x: net.jacobian(x, q))
    obs = np.array([net.observables(sol.y[:, i], q) for i in range(t.size)])
    return {name: obs[:, net.observable_index(name)] for name in ("pAKT", "pERK", "pHER3")}


# ----------------------------------------------------------------------------- 1. HER2 dependence
@pytest.mark.xfail(strict=True, reason=(
    "known gap after merging the measured backgrounds: with BT-474 doubling in 80 h (k_prolif_max 0.0216/h) "
    "trastuzumab 10 nM inhibits the amplified line 34 % in 72 h (< 35 %), and HER2-low cells on this background "
    "barely grow (1.07-fold); on an MCF-7 background HER2-low cells grow (1.73-fold) but lose 29 % to lapatinib "
    "and trastuzumab, about as much as BT-474 in growth-rate terms. The growth fit that closes it "
    "(models/calibration/growth_her2_dependence, adopt_rev5.patch) breaks two demonstration sizes, so it is "
    "not adopted (models/CHANGELOG.md, growth / HER2-dependence record)"))
def test_her2_dependence_scales_with_her2_level():
    """HER2-low cells grow on the serum (IGF-1R/IRS-1) drive and are barely inhibited by HER2 drugs;
    HER2-amplified cells are strongly inhibited (Konecny 2006 Cancer Res 66:1630: lapatinib
    IC50s of HER2-amplified lines ~100-fold below non-amplified lines)."""
    conds = [{"drugs": {}}, {"drugs": {"lapatinib": "1 uM"}}, {"drugs": {"trastuzumab": "10 nM"}}]
    amp = _final(conds)["viable_cells"]
    low = _final(conds, variants=["her2_low"])["viable_cells"]
    assert low[0] > 1.2                          # HER2-low cells grow untreated
    for i in (1, 2):
        inhib_amp, inhib_low = 1 - amp[i] / amp[0], 1 - low[i] / low[0]
        assert inhib_amp > 0.35
        assert inhib_low < 0.25 and inhib_low < inhib_amp / 2  # amplified cells at least twice as inhibited


def test_serum_drive_carries_her2_low_growth():
    """Without serum IGF-1 HER2-low cells lose most of their RAS/ERK drive and grow less; HER2-amplified
    cells barely notice (their drive is HER2's)."""
    conds = [{"drugs": {}}, {"drugs": {}, "parameters": {**IN_VITRO, "IGF1": 0.0}}]
    names = ("pIRS1", "pERK", "proliferation_rate")
    low = _final(conds, variants=["her2_low"], names=names)
    amp = _final(conds, names=names)
    assert low["pIRS1"][1] < 0.05 * low["pIRS1"][0]
    assert low["pERK"][1] < 0.5 * low["pERK"][0]
    assert low["proliferation_rate"][1] < 0.8 * low["proliferation_rate"][0]
    assert amp["proliferation_rate"][1] > 0.9 * amp["proliferation_rate"][0]


# ----------------------------------------------------------------------------- 2. PI3K layer
def test_irs1_carries_the_s6k_feedback():
    """Everolimus lets IRS-1 re-accumulate and raises pAKT (O'Reilly 2006 Cancer Res 66:1500);
    without serum IGF-1 the IRS-1 route is silent and the rise is smaller."""
    conds = [{"drugs": {}}, {"drugs": {"everolimus": "10 nM"}}]
    serum = _final(conds, hours=24.0, names=("IRS1_total", "pIRS1", "pAKT"))
    starved = _final(conds, hours=24.0, params={"IGF1": 0.0}, names=("IRS1_total", "pAKT"))
    assert serum["IRS1_total"][1] > 1.3 * serum["IRS1_total"][0]
    assert serum["pIRS1"][1] > 1.5 * serum["pIRS1"][0]
    assert serum["pAKT"][1] / serum["pAKT"][0] > starved["pAKT"][1] / starved["pAKT"][0]


def test_everolimus_10nM_suppresses_pS6_by_90pct():
    """RAD001 inactivates S6K1 by >95 % at 20 nM (Boulay 2004 Cancer Res 64:252)."""
    r = simulate("default", drugs={"everolimus": "10 nM"}, parameters=IN_VITRO, time="24 h", t_eval=[0, 4, 24])
    c = simulate("default", parameters=IN_VITRO, time="1 h", t_eval=[0, 1])
    assert r.at("pS6", 4) < 0.1 * c.at("pS6", 1)
    assert r.at("pS6", 24) < 0.1 * c.at("pS6", 1)


def test_alpelisib_inhibits_h1047r_at_least_as_deeply_as_wild_type():
    """H1047R is a more active p110alpha that alpelisib inhibits like wild type, so mutant cells carry
    more of their PI3K output on the drug's target (Fritsch 2014 Mol Cancer Ther 13:1117)."""
    conds = [{"drugs": {}}, {"drugs": {"alpelisib": "1 uM"}}]
    wt = _final(conds, hours=24.0, names=("PIP3_level", "pAKT"))
    mut = _final(conds, variants=["pik3ca_h1047r"], hours=24.0, names=("PIP3_level", "pAKT"))
    assert mut["PIP3_level"][0] > 1.5 * wt["PIP3_level"][0]            # more active p110alpha
    assert mut["PIP3_level"][1] / mut["PIP3_level"][0] < 0.7 * (wt["PIP3_level"][1] / wt["PIP3_level"][0])
    assert mut["pAKT"][1] / mut["pAKT"][0] < wt["pAKT"][1] / wt["pAKT"][0]


def test_trastuzumab_activates_pten_through_src():
    """Trastuzumab releases Src from HER2 and activates PTEN (Nagata 2004 Cancer Cell 6:117); the
    effect is lost with PTEN loss, and so is most of trastuzumab's pAKT reduction."""
    # On SK-BR-3 (1.6e6 HER2/cell; Nagata 2004 used SK-BR-3 and BT-474): the Src released scales with
    # HER2, and the default BT-474 background now carries the measured 5.0e5 HER2/cell (PTEN +8.5 % there).
    conds = [{"drugs": {}}, {"drugs": {"trastuzumab": "10 nM"}}]
    wt = _final(conds, variants=["skbr3"], hours=24.0, names=("PTEN_active", "pAKT"))
    null = _final(conds, variants=["skbr3", "pten_loss"], hours=24.0, names=("PTEN_active", "pAKT"))
    assert wt["PTEN_active"][1] > 1.1 * wt["PTEN_active"][0]
    assert null["PTEN_active"][1] - null["PTEN_active"][0] < 0.1 * (wt["PTEN_active"][1] - wt["PTEN_active"][0])
    assert 1 - null["pAKT"][1] / null["pAKT"][0] < 0.7 * (1 - wt["pAKT"][1] / wt["pAKT"][0])


# ----------------------------------------------------------------------------- 3. ligands and feedback relief
def test_heregulin_rescues_lapatinib():
    """Heregulin restores pAKT and growth under lapatinib (Sergina 2007 Nature 445:437; Wilson 2012 Nature 487:505)."""
    hrg = {**IN_VITRO, "HRG": "1 nM"}
    r = _final([{"drugs": {}}, {"drugs": {"lapatinib": "1 uM"}}, {"drugs": {"lapatinib": "1 uM"}, "parameters": hrg}],
               hours=24.0, names=("pAKT", "proliferation_rate"))
    assert r["pAKT"][1] < 0.4 * r["pAKT"][0]
    assert r["pAKT"][2] > 0.6 * r["pAKT"][0]
    assert r["proliferation_rate"][2] > 1.5 * r["proliferation_rate"][1]


def test_heregulin_raises_pAKT_and_pERK_with_headroom():
    """Ligand stimulation raises pERK and pAKT well above the HER2-amplified baseline (HRG-induced
    pAKT/pERK rises in BT-474 and SK-BR-3, Imoto 2020 Cancers 12:2878 time courses)."""
    o = _stimulate({"HRG": 10.0}, base={"NK_activity": 0.0})
    assert o["pERK"].max() > 1.5 * o["pERK"][0]
    assert o["pAKT"].max() > 1.3 * o["pAKT"][0]


_CALIBRATION = Path(__file__).resolve().parents[1] / "models" / "calibration" / "signalling_timecourses"


@pytest.fixture(scope="module")
def calibration_net():
    """The compiled model of the signalling-calibration problem (receptors, IGF-1R, PI3K, MAPK)."""
    return compile_network(load_model(_CALIBRATION / "model.toml"))


def _stimulate_line(net, line: str, ligand: str, hours=2.0, params=None):
    """pAKT/pERK of the signalling-calibration model ``net`` after 10 nM ligand, cells of ``line`` (its
    conditions.tsv receptor numbers; ``params`` overrides, internal units), t = 0, 5, 10, ..., 120 min."""
    with open(_CALIBRATION / "conditions.tsv") as fh:
        row = next(r for r in csv.DictReader(fh, delimiter="\t") if r["conditionId"] == f"{line}_unstimulated")
    base = {**{k: float(v) for k, v in row.items() if k != "conditionId"}, **(params or {})}
    p = net.parameters_with(base)
    x0 = steady_state(net, net.initial_state(p), p)
    q = net.parameters_with({**base, ligand: 10.0})
    t = np.linspace(0.0, hours, 25)
    sol = solve_ivp(lambda _t, x: net.rhs(x, q), (0.0, hours), x0, method="BDF", t_eval=t,
                    rtol=1e-8, atol=1e-10, jac=lambda _t, x: net.jacobian(x, q))
    obs = np.array([net.observables(sol.y[:, i], q) for i in range(t.size)])
    return t * 60.0, {name: obs[:, net.observable_index(name)] for name in ("pAKT", "pERK")}


@pytest.mark.parametrize("line", ["BT474", "SKBR3"])
def test_egf_raises_pakt_in_her2_amplified_cells_within_15_min(calibration_net, line):
    """EGF reaches PI3K without HER3 through Gab1 on ligand-bound EGFR dimers (Rodrigues 2000 Mol Cell
    Biol 20:1448; Mattoon 2004 BMC Biol 2:24): in BT-474 and SK-BR-3 pAKT peaks 5-15 min after EGF
    (Imoto 2020 Cancers 12:2878). Without the Gab1 route (w_PI3K_Gab1 = 0, version 2) it barely moves."""
    minutes, o = _stimulate_line(calibration_net, line, "EGF")
    early = minutes <= 15.0
    assert o["pAKT"][early].max() > 1.15 * o["pAKT"][0]


def test_egf_perk_peak_is_early_and_transient(calibration_net):
    """pERK peaks 5-15 min after EGF and falls again by 2 h (Imoto 2020 Cancers 12:2878 in BT-474,
    SK-BR-3 and MCF-7): fast RAS/RAF activation, EGFR downregulation and the ERK -> SOS1 feedback
    (Kholodenko 2000 Eur J Biochem 267:1583; Waters 1995 J Biol Chem 270:20883). Version 2 peaked at
    20-30 min here (21-87 min across lines) and stayed up. Without the phospho-SOS1 feedback
    (f_SOS_fb = 0) less of the peak is lost by 60 min."""
    minutes, o = _stimulate_line(calibration_net, "SKBR3", "EGF")
    perk = o["pERK"]
    peak = int(np.argmax(perk))
    assert minutes[peak] <= 15.0
    rise = perk[peak] - perk[0]
    assert rise > 0.5 * perk[0]                       # a real peak, not noise
    assert perk[-1] - perk[0] < 0.5 * rise            # at 120 min more than half of the rise is gone
    _, off = _stimulate_line(calibration_net, "SKBR3", "EGF", params={"f_SOS_fb": 0.0})
    at60 = int(np.argmin(np.abs(minutes - 60.0)))

    def lost(p):
        return (p.max() - p[at60]) / (p.max() - p[0])

    assert lost(perk) > lost(off["pERK"])


def test_her3_is_phosphorylated_without_her2(calibration_net):
    """Ligand-bound HER3 pairs with EGFR and HER4 too (Chen 2009 Mol Syst Biol dimer set): with no
    HER2 at all, heregulin (+ EGF) still phosphorylates HER3, more with more HER4. Run on the
    signalling-calibration model (the same receptor module without ER, cell cycle, immune, ADC: ~2x
    cheaper; nothing there acts on receptors within 2 h)."""
    base = {"HER2_expression": 0.0}
    net = calibration_net
    lo = _stimulate({"HRG": 10.0, "EGF": 10.0}, base=base, net=net)
    hi = _stimulate({"HRG": 10.0, "EGF": 10.0}, base={**base, "HER4_expression": 40.0}, net=net)
    assert lo["pHER3"][-1] > 0.01
    assert hi["pHER3"][-1] > 2 * lo["pHER3"][-1]


def test_pi3k_inhibition_relieves_feedback_on_her3_and_erk():
    """Alpelisib raises HER3 (FOXO; Chandarlapaty 2011 Cancer Cell 19:58) and pERK (Serra 2011 Oncogene 30:2547)."""
    r = _final([{"drugs": {}}, {"drugs": {"alpelisib": "1 uM"}}], hours=24.0, names=("HER3_total", "pERK"))
    assert r["HER3_total"][1] > 1.15 * r["HER3_total"][0]
    assert r["pERK"][1] > 1.05 * r["pERK"][0]


# ----------------------------------------------------------------------------- 4. drug-target kinetics and cell death
def test_lapatinib_block_outlasts_washout_because_of_its_slow_off_rate():
    """Lapatinib's off-rate t1/2 >= 300 min (Wood 2004 Cancer Res 64:6652): 6 h after washout pHER2 is
    still well below control; a fast off-rate (koff 10/h) would let it recover."""
    ev = [("24 h", {"lapatinib": 0})]
    conds = [{"drugs": {}}, {"drugs": {"lapatinib": "1 uM"}, "events": ev},
             {"drugs": {"lapatinib": "1 uM"}, "events": ev, "parameters": {**IN_VITRO, "lapatinib_koff": "10 1/h"}}]
    r = simulate("default", parameters=IN_VITRO, time="30 h", t_eval=[0, 23.5, 30], conditions=conds)
    ph2 = r.values("pHER2")
    assert ph2[1, 1] < 0.1 * ph2[0, 1] and ph2[2, 1] < 0.1 * ph2[0, 1]   # same block while dosed
    assert ph2[1, 2] < 0.85 * ph2[0, 2]
    assert ph2[2, 2] > 0.9 * ph2[0, 2]


def test_neratinib_recovers_only_by_receptor_resynthesis():
    """Covalent neratinib (Rabindran 2004 Cancer Res 64:3958): recovery follows HER2 turnover (hours-days)."""
    ev = [("24 h", {"neratinib": 0})]
    r = simulate("default", drugs={"neratinib": "100 nM"}, events=ev, parameters=IN_VITRO, time="72 h",
                 t_eval=[0, 30, 48, 72])
    c = simulate("default", parameters=IN_VITRO, time="1 h", t_eval=[0, 1]).at("pHER2", 1)
    f = [r.at("pHER2", t) / c for t in (30, 48, 72)]
    assert f[0] < 0.6 and f[0] < f[1] < f[2]


def test_lapatinib_kills_her2_addicted_cells_only():
    """Lapatinib induces apoptosis in HER2-amplified BT-474 (Xia 2002 Oncogene 21:6255), not in HER2-low
    cells; the per-drug apoptosis capacity adds to the signal-loss death."""
    conds = [{"drugs": {}}, {"drugs": {"lapatinib": "1 uM"}},
             {"drugs": {"lapatinib": "1 uM"}, "parameters": {**IN_VITRO, "lapatinib_apoptosis_capacity": 0}}]
    amp = _final(conds, hours=24.0, names=("apoptosis_rate",))["apoptosis_rate"]
    low = _final(conds, variants=["her2_low"], hours=24.0, names=("apoptosis_rate",))["apoptosis_rate"]
    assert amp[1] > 2.0 * amp[0]
    assert amp[1] > amp[2] > amp[0]
    assert low[1] < 1.3 * low[0]
    v = _final(conds[:2], hours=72.0)["viable_cells"]
    assert v[1] < 1.0                          # net loss of cells: cytotoxic, not only cytostatic


# ----------------------------------------------------------------------------- 5. wiring (issue 10 item 6)
# These tests read the signed wiring from the model, so that a sign flipped or an edge dropped in
# models/ cannot pass (tests/MUTATIONS.md lists the breakages they were checked against).
@pytest.fixture(scope="module")
def rest():
    """The drug-free default model at its rest state: (network, spec, x (n,), p (n_params,))."""
    spec = load_model("default")
    net = compile_network(spec)
    return net, spec, steady_state(net, net.x0, net.p0), net.p0


#: (regulator, target, sign of d(d target/dt)/d regulator, source[, parameters that switch other routes
#: between the two off]): direct edges the literature states
SIGNED_EDGES = [
    ("ERK_p", "RAS_GTP", -1, "ERK phosphorylates SOS1 and dissociates Grb2-SOS (Langlois 1995 J Biol Chem "
                             "270:25320; Kholodenko 2000 Eur J Biochem 267:1583)",
     {"K_ERK_receptor_fb": 1e12}),  # ERK also reaches RAS through its feedback on the receptors: off
    ("ERK_p", "mTORC1_a", +1, "ERK/RSK phosphorylate TSC2 and Raptor and activate mTORC1 (Roux 2004 PNAS "
                              "101:13489; Carriere 2008 Curr Biol 18:1269)"),
    ("ERK_p", "S6_p", +1, "RSK phosphorylates S6 Ser235/236 independently of S6K (Roux 2007 J Biol Chem 282:14056)"),
    ("AKT_p", "RAF_a", -1, "AKT phosphorylates RAF-1 Ser259 and inhibits it (Zimmermann & Moelling 1999 Science "
                           "286:1741)"),
    ("S6K_p", "AKT_p", -1, "S6K1 phosphorylates Rictor Thr1135 and restrains AKT Ser473 (Julien 2010 Mol Cell Biol "
                           "30:908)"),
]


@pytest.mark.parametrize("edge", SIGNED_EDGES, ids=[f"{e[0]}->{e[1]}" for e in SIGNED_EDGES])
def test_signed_edges_of_the_network(rest, edge):
    """The Jacobian entry d(d target/dt)/d regulator at rest has the published sign and is not ~0
    (an edge removed from the rate law gives exactly 0)."""
    regulator, target, sign, source = edge[:4]
    net, _, x, p = rest
    J = net.jacobian(x, net.parameters_with(edge[4]) if len(edge) > 4 else p)
    entry = J[net.species_index(target), net.species_index(regulator)]
    scale = np.abs(J[net.species_index(target)]).max()
    assert sign * entry > 1e-6 * scale, f"{regulator} -> {target}: {entry:+.3g} ({source})"


def _nodes(node):
    """Every sub-node of an expression tree (her2sim.model.expr nodes)."""
    from her2sim.model import expr as ex

    yield node
    if isinstance(node, ex.Call):
        for a in node.args:
            yield from _nodes(a)
    elif isinstance(node, ex.Piecewise):
        for value, cond in node.pieces:
            yield from _nodes(value)
            yield from _nodes(cond)
        yield from _nodes(node.otherwise)
    else:
        for field in ("left", "right", "arg", "a", "b", "if_less", "otherwise"):
            if hasattr(node, field):
                yield from _nodes(getattr(node, field))


def negative_feedbacks(spec) -> list[tuple[str, str, str]]:
    """(K parameter, regulator species, target species) of every ``inhibit(regulator, K)`` in the
    model's expressions and rate laws that scales a reaction producing ``target`` while ``target``
    reaches the regulator again through the reaction graph (a closed loop), read from the model
    files as data."""
    from her2sim.model import expr as ex

    exprs = {e.name: e.node for e in spec.expressions}
    species = {s.name for s in spec.species}

    def closure(names):
        out, stack = set(), list(names)
        while stack:
            n = stack.pop()
            if n not in out:
                out.add(n)
                stack.extend(ex.free_names(exprs[n]) if n in exprs else ())
        return out

    graph = {s: set() for s in species}   # u -> v: u changes the rate of a reaction that makes or uses v
    for r in spec.reactions:
        for u in closure(ex.free_names(r.rate)) & species:
            graph[u] |= {v for v, _ in r.products + r.reactants}

    def reaches(a, b):
        seen, stack = {a}, [a]
        while stack:
            u = stack.pop()
            if u == b:
                return True
            stack.extend(v for v in graph[u] if v not in seen)
            seen |= graph[u]
        return False

    calls = [(e.name, n) for e in spec.expressions for n in _nodes(e.node)]
    calls += [(r.name, n) for r in spec.reactions for n in _nodes(r.rate)]
    found = set()
    for where, node in calls:
        if not (isinstance(node, ex.Call) and node.fn == "inhibit" and isinstance(node.args[1], ex.Sym)):
            continue
        regulators = closure(ex.free_names(node.args[0])) & species
        for r in spec.reactions:
            if r.name == where or where in closure(ex.free_names(r.rate)):
                for target, _ in r.products:
                    found |= {(node.args[1].name, g, target) for g in regulators if reaches(target, g)}
    return sorted(found)


def test_weakening_a_negative_feedback_raises_its_target(rest):
    """General rule: raising the K of ``inhibit(regulator, K)`` 4-fold weakens the inhibition, so the
    rest level of the species it makes must rise (a negative loop damps the rise, it cannot reverse
    it). The feedbacks come from the model files; the two the module descriptions name must be among
    them (ERK -| SOS, mapk.toml; S6K -| mTORC2/AKT, pi3k_akt_mtor.toml)."""
    net, spec, x, p = rest
    loops = negative_feedbacks(spec)
    assert {("K_ERK_SOS", "ERK_p", "RAS_GTP"), ("K_S6K_mTORC2", "S6K_p", "AKT_p")} <= set(loops), loops
    wrong = []
    for k, regulator, target in loops:
        q = p.copy()
        q[net.parameter_index(k)] *= 4.0
        y = steady_state(net, x, q)
        i = net.species_index(target)
        if not y[i] > x[i] * (1 + 1e-3):
            wrong.append(f"{regulator} -| {target} ({k} x4): {x[i]:.4g} -> {y[i]:.4g} nM")
    assert not wrong, wrong


def test_apoptosis_rises_when_survival_signalling_is_lost(rest):
    """Apoptosis responds to lost AKT/ERK survival signalling (lapatinib kills HER2-addicted cells,
    Xia 2002 Oncogene 21:6255) and to an acute loss relative to the level the cells are adapted to
    ('oncogenic shock', Sharma 2006 Cancer Cell 10:425); more survival signal never raises it."""
    net, _, x, p = rest
    k = net.observable_index("apoptosis_rate")

    def apoptosis(**scale):
        y = x.copy()
        for name, f in scale.items():
            y[net.species_index(name)] *= f
        return net.observables(y, p)[k]

    base = apoptosis()
    assert apoptosis(AKT_p=0.5, ERK_p=0.5) > 1.2 * base       # signal lost
    assert apoptosis(AKT_p=2.0, ERK_p=2.0) < base             # more signal: less death
    assert apoptosis(survival_adapted=2.0) > 1.2 * base       # same signal, adapted to twice as much
    assert apoptosis(survival_adapted=0.5) == pytest.approx(base, rel=1e-12)  # a gain is not a shock
