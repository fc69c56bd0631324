"""Structural and qualitative checks of the bundled HER2 network, variants and drugs."""

import glob
import os

import numpy as np
import pytest

from her2sim.model.load import load_model, models_dir
from her2sim.model.network import compile_network
from her2sim.solvers.solve import simulate, steady_state

REQUIRED = ["pEGFR", "pHER2", "pHER3", "HER3_total", "pAKT", "pERK", "pS6", "ER_activity", "pRb",
            "proliferation_rate", "apoptosis_rate", "viable_cells"]
DRUGS = sorted(os.path.basename(f)[:-5] for f in glob.glob(str(models_dir() / "drugs" / "*.toml")))
VARIANTS = sorted(os.path.basename(f)[:-5] for f in glob.glob(str(models_dir() / "variants" / "*.toml")))
EXPECTED_VARIANTS = {"pik3ca_h1047r", "pten_loss", "her3_high", "er_positive", "ccnd1_amp", "cd16a_158f",
                     "cd16a_158v", "her2_low", "p95her2"}


@pytest.fixture(scope="module")
def net():
    return compile_network(load_model("default"))


def test_size_is_compact(net):
    assert 30 <= net.n_species <= 90


def test_required_observables_exist(net):
    names = set(net.observable_names) | set(net.species_names)
    missing = [n for n in REQUIRED if n not in names]
    assert not missing


def test_every_parameter_has_a_source():
    spec = load_model("default", drugs=DRUGS)
    assert not [p.name for p in spec.parameters if not p.source.strip()]
    assert not [s.name for s in spec.species if not s.source.strip()]


def test_steady_state_before_drug(net):
    p = net.p0
    x = steady_state(net, net.x0, p)
    dx = net.rhs(x, p) * net.preequilibrate_mask
    assert np.max(np.abs(dx) / (np.abs(x) + 1e-6)) < 1e-5
    assert np.all(x >= -1e-9)


def test_untreated_stays_flat_and_nonnegative():
    r = simulate("default", time="48 h", t_eval=np.linspace(0, 48, 7))
    assert np.all(r.species >= -1e-8)
    for name in ("pAKT", "pERK", "pHER2", "pRb"):
        v = r[name]
        assert np.allclose(v, v[0], rtol=1e-4)
    # cells grow when untreated
    assert r["viable_cells"][-1] > 1.2


def test_treated_stays_nonnegative():
    r = simulate("default", drugs={"lapatinib": "1 uM", "tdxd": "10 nM", "fulvestrant": "100 nM"}, time="72 h",
                 t_eval=np.linspace(0, 72, 7))
    assert np.all(r.species >= -1e-6)


def test_her2_amplified_baseline_is_active(net):
    x = steady_state(net, net.x0, net.p0)
    obs = dict(zip(net.observable_names, net.observables(x, net.p0)))
    assert 0.2 < obs["pAKT"] < 0.8
    assert 0.2 < obs["pERK"] < 0.8
    assert obs["ER_activity"] > 1.0          # BT-474 is ER-positive


@pytest.mark.parametrize("drug", DRUGS)
def test_every_drug_loads_with_default(drug):
    spec = load_model("default", drugs=[drug])
    d = spec.drugs[0]
    assert d.dose_parameter in spec.parameter_names
    p = spec.parameter(d.dose_parameter)
    assert p.is_input and p.value == 0.0
    assert d.molecular_weight_g_per_mol and d.molecular_weight_g_per_mol > 100
    assert all(a == a.lower() for a in d.aliases)
    assert all(q.name.startswith(d.dose_parameter) or q.name in _core_names()
               for q in spec.parameters)


_CORE: set = set()


def _core_names():
    if not _CORE:
        _CORE.update(load_model("default").parameter_names)
    return _CORE


def test_all_drugs_together():
    spec = load_model("default", drugs=DRUGS)
    assert len(spec.drugs) == len(DRUGS) >= 24


def test_aliases():
    for alias in ("t-dm1", "t-dxd", "syd985", "trastuzumab-deruxtecan"):
        assert load_model("default", drugs=[alias]).drugs


def test_variants_present_and_combinable():
    assert EXPECTED_VARIANTS <= set(VARIANTS)
    load_model("default", variants=VARIANTS)
    load_model("default", variants=["skbr3", "er_positive", "pik3ca_h1047r", "pten_loss", "p95her2"])


@pytest.mark.parametrize("variant", sorted(EXPECTED_VARIANTS) + ["skbr3"])
def test_variant_changes_an_existing_parameter(variant):
    # er_positive matters on an ER-negative background (BT-474 is ER-positive already)
    bg = ["skbr3"] if variant == "er_positive" else []
    base = load_model("default", variants=bg)
    v = load_model("default", variants=bg + [variant])
    changed = [p.name for p in v.parameters if p.value != base.parameter(p.name).value]
    assert changed, f"{variant} changes nothing"


def test_her2_low_lowers_pHER2():
    a = simulate("default", time="1 h")
    b = simulate("default", variants=["her2_low"], time="1 h")
    assert b.final("pHER2") < 0.2 * a.final("pHER2")


def test_skbr3_is_er_negative():
    a = simulate("default", time="1 h")
    b = simulate("default", variants=["skbr3"], time="1 h")
    assert b.final("ER_activity") < 0.1 * a.final("ER_activity")


def test_p95her2_resists_trastuzumab_not_lapatinib():
    conds = [{"drugs": {}}, {"drugs": {"trastuzumab": "70 nM"}}, {"drugs": {"lapatinib": "1 uM"}}]
    wt = simulate("default", conditions=conds, time="24 h", parameters={"NK_activity": 0})
    p95 = simulate("default", conditions=conds, variants=["p95her2"], time="24 h", parameters={"NK_activity": 0})
    f = lambda r, i: r.values("pAKT")[i, -1] / r.values("pAKT")[0, -1]  # noqa: E731
    assert f(p95, 1) > f(wt, 1) + 0.1
    assert f(p95, 2) < 0.4


def test_letrozole_lowers_er_activity():
    r = simulate("default", drugs={"letrozole": "100 nM"}, time="24 h")
    assert r.final("ER_activity") < 0.6 * r["ER_activity"][0]


def test_chemo_kills_cycling_cells():
    conds = [{"drugs": {}}, {"drugs": {"paclitaxel": "20 nM"}}, {"drugs": {"paclitaxel": "20 nM", "palbociclib": "1 uM"}}]
    r = simulate("default", conditions=conds, time="72 h", parameters={"NK_activity": 0})
    apo = r.values("apoptosis_rate")[:, -1]
    assert apo[1] > apo[0] + 0.005
    assert apo[2] < apo[1]          # arrested (non-cycling) cells escape taxane kill


def test_checkpoint_and_cd137_raise_adcc():
    conds = [{"drugs": {"trastuzumab": "70 nM"}}, {"drugs": {"trastuzumab": "70 nM", "pembrolizumab": "10 nM"}},
             {"drugs": {"trastuzumab": "70 nM", "utomilumab": "10 nM"}}]
    r = simulate("default", conditions=conds, time="2 h")
    a = r.values("adcc_rate_obs")[:, -1]
    assert a[1] > a[0] and a[2] > a[0]


RECEPTOR_UNITS = {
    "EGFR": {"EGFR": 1, "EGFR_L": 1, "D11": 2, "D12": 1, "D13": 1},
    "HER2": {"HER2": 1, "D12": 1, "D22": 2, "D23": 1, "D23L": 1, "D24L": 1},
    "HER3": {"HER3": 1, "HER3_L": 1, "D13": 1, "D23": 1, "D23L": 1, "D34L": 1},
    "HER4": {"HER4": 1, "HER4_L": 1, "D24L": 1, "D34L": 1},
}


@pytest.mark.parametrize("receptor", sorted(RECEPTOR_UNITS))
def test_binding_and_dimerisation_conserve_receptor_monomers(net, receptor):
    """Every reaction that is not synthesis or degradation keeps the count of each receptor
    (monomers + dimers x their copies) unchanged: c @ N_internal == 0."""
    N = net.stoichiometry
    internal = [r for r in range(N.shape[1]) if (N[:, r] < 0).any() and (N[:, r] > 0).any()]
    c = np.zeros(net.n_species)
    for name, copies in RECEPTOR_UNITS[receptor].items():
        c[net.species_index(name)] = copies
    assert np.all(c @ N[:, internal] == 0)
