"""her2sim vs Chen 2009 on the Imoto EGF/HRG time courses (her2sim.fit.erbb_comparison)."""

import numpy as np
import pytest

from her2sim.errors import InvalidArgument
from her2sim.fit import erbb_comparison as ec

PATHS = ec.default_paths()
needs_data = pytest.mark.skipif(not (PATHS["chen_dir"] / "model_Chen_MSB2009.xml").is_file(),
                                reason="Chen_MSB2009 not found in ../shared/data")


@pytest.fixture(scope="module")
def chen():
    pytest.importorskip("libsbml", reason="python-libsbml is not installed")
    return ec.ChenModel.load(PATHS["chen_dir"])


@pytest.fixture(scope="module")
def skbr3(chen):
    """SK-BR-3, both ligands, her2sim and Chen nominal (the Chen run is line-independent)."""
    return ec.compare(lines=["SKBR3"], ligands=("EGF", "HRG"), line_specific_chen=False, chen=chen, points=5)


def test_observation_fit_recovers_scale_and_offset_and_never_inverts():
    rng = np.random.default_rng(0)
    sim = rng.random(20)
    assert ec.observation_fit(sim, 3.0 * sim - 0.5) == pytest.approx((3.0, -0.5))
    # an anti-correlated simulation gets scale 0 and the data mean, not a negative scale
    assert ec.observation_fit(sim, 1.0 - sim) == pytest.approx((0.0, float(np.mean(1.0 - sim))))


def test_unknown_line_or_ligand_is_refused_before_any_simulation():
    with pytest.raises(InvalidArgument, match="lines: 'HeLa'"):
        ec.compare(lines=["HeLa"])
    with pytest.raises(InvalidArgument, match="ligands: 'TGFa'"):
        ec.compare(lines=["SKBR3"], ligands=("TGFa",))


@needs_data
def test_comparison_gives_finite_rmse_for_both_models_and_fits_no_held_out_point(skbr3):
    c = skbr3
    assert set(c.rmse["model"]) == {"her2sim", "Chen nominal"}
    assert np.isfinite(c.rmse["rmse"]).all() and (c.rmse["rmse"] > 0).all()
    # SK-BR-3's HRG arm is the signalling problem's validation set: the scale/offset come from its
    # 24 EGF points (8 times x 3 replicates) only, and the HRG rows are scored as 'validation'
    assert (c.observation["points"] == 24).all()
    assert set(c.rmse.loc[c.rmse["ligand"] == "HRG", "split"]) == {"validation"}
    assert set(c.rmse.loc[c.rmse["ligand"] == "EGF", "split"]) == {"train"}


@needs_data
@pytest.mark.optional
@pytest.mark.slow  # libRoadRunner's JIT of the 500-species model alone takes 9-13 s here
def test_chen_through_the_sbml_import_matches_libroadrunner_on_10_nM_hrg(chen, skbr3):
    roadrunner = pytest.importorskip("roadrunner", reason="libroadrunner is not installed")
    curves = skbr3.curves[(skbr3.curves["model"] == "Chen nominal") & (skbr3.curves["ligand"] == "HRG")]
    times = np.unique(curves["time_min"])
    got = {oid: curves.loc[curves["observable"] == oid, "raw"].to_numpy()[None] for oid in ec.OBSERVABLES}
    rr = roadrunner.RoadRunner(str(chen.sbml))
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = 1e-7, 1e-4
    rr["c514"] = 1e-8
    ids = list(rr.model.getFloatingSpeciesIds())
    grid = np.concatenate([[0.0], ec.CHEN_T_LIGAND_S + 60.0 * times])
    states = np.asarray(rr.simulate(times=grid, selections=[f"[{s}]" for s in ids]))[1:]
    x = np.zeros((len(times), chen.network.n_species))
    x[:, [chen.network.species_index(s) for s in ids]] = states
    p = chen.network.p0.copy()
    p[chen.network.parameter_index("c514")] = 1e-8
    want = ec.evaluate_observables(chen.network, chen.observables, x, p)
    for oid in ec.OBSERVABLES:
        assert np.ptp(want[oid]) > 0.05 * np.max(want[oid])  # HRG moves both read-outs
        assert np.max(np.abs(got[oid][0] - want[oid])) < 1e-4 * np.max(np.abs(want[oid]))


def test_demo_all_takes_a_folder_and_refuses_the_single_figure_options(capsys, tmp_path):
    """`her2sim demo all --out DIR` (docs/demos); --plot with 'all' and --out with one demo are
    refused with one line before any simulation."""
    from her2sim.cli import main

    assert main(["demo", "all", "--plot", str(tmp_path / "x.png")]) != 0
    assert "--out DIR" in capsys.readouterr().err
    assert main(["demo", "her2_blockade", "--out", str(tmp_path)]) != 0
    assert "--plot FILE.png" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert main(["demo", "all", "--out", str(tmp_path / "file")]) != 0
    assert "is a file" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.png"))
