"""Tests for her2sim.screen.screen (dose-response / dose-matrix screens) and her2sim.screen.plots.

Closed forms come from tests/models/screen_product.toml: U and V are made at constant rates
divided by (1 + a/Ka) and (1 + (b/Kb)^2) and lost first-order, and R = U * V, so the fraction
unaffected of R is the product of a factor only drug A changes and one only drug B changes
(Bliss independence holds exactly).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
import xarray as xr

from her2sim import UnitError, UnknownNameError
from her2sim.screen.screen import (
    Readout,
    ScreenInputError,
    dose_matrix,
    dose_response,
    parse_dose_grid,
    parse_readout,
    single_agent_metrics,
    synergy_scores,
)
from her2sim.screen.cli import add_screen_parser, run_screen_cli

IN_VITRO = {"NK_activity": 0}
KA, KB = 10.0, 30.0  # screen_a_Ka, screen_b_Kb in the test drugs


@pytest.fixture(scope="module")
def product_model(request) -> str:
    from pathlib import Path

    return str(Path(__file__).parent / "models" / "screen_product.toml")


@pytest.fixture(scope="module")
def product_matrix(product_model):
    return dose_matrix(product_model, ["screen_a", "screen_b"],
                       {"screen_a": [0, 3, 10, 30, 100], "screen_b": [0, 10, 30, 60, 120]}, "R@24h")


# ----------------------------------------------------------------------------- readouts
@pytest.mark.parametrize("text, expected", [
    ("pAKT@24h", Readout("pAKT", "at", 24.0)),
    ("pAKT @ 24 h", Readout("pAKT", "at", 24.0)),
    ("pAKT", Readout("pAKT", "at", None)),
    ("at:pAKT@1 day", Readout("pAKT", "at", 24.0)),
    ("auc:pERK", Readout("pERK", "auc", None)),
    ("mean:pAKT@30min", Readout("pAKT", "mean", 0.5)),
    ("steady:pAKT", Readout("pAKT", "steady", None)),
    ("viable_cells@72h", Readout("viable_cells", "at", 72.0)),
    ("gr@72h", Readout("viable_cells", "gr", 72.0)),
    ("GR", Readout("viable_cells", "gr", None)),
    ("gr:cells@48h", Readout("cells", "gr", 48.0)),
], ids=lambda v: v if isinstance(v, str) else None)
def test_readout_text_is_parsed(text, expected):
    assert parse_readout(text) == expected
    assert parse_readout(str(expected)) == expected  # the canonical text round-trips


@pytest.mark.parametrize("text, error", [
    ("", ScreenInputError),
    ("pAKT@", ScreenInputError),
    ("foo:pAKT", ScreenInputError),
    ("auc:", ScreenInputError),
    ("p AKT", ScreenInputError),
    ("pAKT@24", UnitError),
    ("pAKT@24 nM", UnitError),
    ("pAKT@-3h", UnitError),
    ("pAKT@0h", ScreenInputError),
    ("1pAKT", ScreenInputError),
], ids=["empty", "at-without-time", "unknown-kind", "kind-without-name", "space-in-name", "time-without-unit",
        "time-in-nM", "negative-time", "zero-time", "name-starts-with-digit"])
def test_bad_readout_text_is_rejected(text, error):
    with pytest.raises(error):
        parse_readout(text)


def test_unknown_observable_error_suggests_the_close_match():
    with pytest.raises(UnknownNameError, match="Did you mean 'pAKT'"):
        dose_response("default", "lapatinib", [0, 100], "pAKTT@24h")


def test_readout_time_beyond_the_run_is_rejected():
    with pytest.raises(ScreenInputError, match="beyond the run"):
        dose_response("default", "lapatinib", [0, 100], "pAKT@96h", time="72 h")


# ----------------------------------------------------------------------------- dose grids and arguments
@pytest.mark.parametrize("text, drug, doses", [
    ("A=0,1,10,100nM", "A", ["0 nM", "1 nM", "10 nM", "100 nM"]),
    ("lapatinib=0,1uM,10", "lapatinib", ["0 nM", "1 uM", "10 nM"]),
    ("A=0:1nM..100nM:3", "A", [0.0, "1 nM", "10 nM", "100 nM"]),
    ("A=1nM..1uM:4", "A", ["1 nM", "10 nM", "100 nM", "1000 nM"]),
])
def test_dose_grid_text_is_parsed(text, drug, doses):
    assert parse_dose_grid(text) == (drug, doses)


@pytest.mark.parametrize("text", ["A", "=1,2", "A=", "A=1nM..10nM", "A=10nM..1nM:3", "A=1nM..10nM:1", "A=x,y"],
                         ids=["no-equals", "no-drug", "no-doses", "log-grid-without-count", "log-grid-reversed",
                              "log-grid-one-dose", "not-numbers"])
def test_bad_dose_grid_text_is_rejected(text):
    with pytest.raises(ScreenInputError):
        parse_dose_grid(text)


@pytest.mark.parametrize("kwargs, error", [
    ({"drugs": ["screen_a"], "doses": {"screen_a": [0, 1]}}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_a"], "doses": [[0, 1], [0, 1]]}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_b"], "doses": {"screen_a": [0, 1]}}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_b"], "doses": {"screen_a": [0, -1], "screen_b": [0, 1]}}, UnitError),
    ({"drugs": ["screen_a", "screen_b"], "doses": {"screen_a": [0, 1, 1], "screen_b": [0, 1]}}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_b"], "doses": {"screen_a": [0], "screen_b": [0, 1]}}, ScreenInputError),
    ({"drugs": ["screen_a", "nodrug"], "doses": {"screen_a": [0, 1], "nodrug": [0, 1]}}, UnknownNameError),
    ({"drugs": ["screen_a", "screen_b"], "doses": [[0, 1], [0, 1]], "engine": "gpu"}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_b"], "doses": [[0, 1], [0, 1]], "backgrounds": [[], []]}, ScreenInputError),
    ({"drugs": ["screen_a", "screen_b"], "doses": [[0, 1], [0, 1]], "backgrounds": "pten_loss"}, ScreenInputError),
], ids=["one-drug", "same-drug-twice", "doses-missing-a-drug", "negative-dose", "repeated-dose", "no-positive-dose",
        "unknown-drug", "unknown-engine", "repeated-background", "backgrounds-not-a-list"])
def test_bad_dose_matrix_arguments_are_rejected(product_model, kwargs, error):
    with pytest.raises(error):
        dose_matrix(product_model, readout="R@1h", **kwargs)


def test_doses_with_mass_units_are_stored_in_nM(product_model):
    ds = dose_response(product_model, "screen_a", ["1 ug/mL", 10], "R@1h")  # molecular weight 500 g/mol
    np.testing.assert_allclose(ds.dose_A.values, [0.0, 10.0, 2000.0])
    assert ds.dose_A.attrs["units"] == "nM" and ds.attrs["drug_A"] == "screen_a"


# ----------------------------------------------------------------------------- screens on the bundled model
def test_lapatinib_lowers_pakt_monotonically_and_the_control_is_one():
    ds = dose_response("default", "lapatinib", [0, 1, 10, 100, 1000, 10000], "pAKT@24h", parameters=IN_VITRO)
    fu = ds.fraction_unaffected.sel(background="wild_type").values
    assert fu[0] == 1.0
    assert np.all(np.diff(ds.readout.values[0]) <= 1e-9)
    assert np.all(np.diff(fu) <= 1e-9) and fu[-1] < 0.5
    np.testing.assert_allclose(ds.inhibition.values, 1 - ds.fraction_unaffected.values)
    assert (ds.status == "ok").all()
    assert "positive" in ds.attrs["sign_convention"] and ds.attrs["readout"] == "pAKT@24h"


def test_gr_is_one_without_drug_and_falls_with_lapatinib():
    ds = dose_response("default", "lapatinib", [0, 100, 10000], "gr@72h", parameters=IN_VITRO,
                       backgrounds=[[], ["pik3ca_h1047r"]])
    np.testing.assert_allclose(ds.readout.isel(dose_A=0).values, 1.0, rtol=0, atol=1e-12)
    assert np.all(np.diff(ds.readout.values, axis=1) < 0)
    assert (ds.cells_t0.values == 1.0).all()  # cells are counted relative to the time of dosing


def test_synergy_summary_is_symmetric_in_the_drug_order():
    grid = {"trastuzumab": [0, 0.3, 3, 30], "alpelisib": [0, 30, 300, 3000]}
    ab = dose_matrix("default", ["trastuzumab", "alpelisib"], grid, "viable_cells@72h", parameters=IN_VITRO)
    ba = dose_matrix("default", ["alpelisib", "trastuzumab"], grid, "viable_cells@72h", parameters=IN_VITRO)
    s_ab, s_ba = synergy_scores(ab), synergy_scores(ba)
    for m in ("hsa", "bliss", "loewe", "zip", "ci"):
        np.testing.assert_allclose(s_ab[f"{m}_summary"], s_ba[f"{m}_summary"], rtol=1e-4, atol=1e-5, err_msg=m)
    np.testing.assert_allclose(s_ab.bliss.values[0], s_ba.bliss.values[0].T, atol=1e-5)


# ----------------------------------------------------------------------------- closed forms on the test model
def test_bliss_and_zip_are_zero_for_drugs_acting_on_independent_factors(product_matrix):
    s = synergy_scores(product_matrix)
    assert abs(s.bliss_summary.item()) < 1e-5 and np.nanmax(np.abs(s.bliss.values)) < 1e-5
    assert abs(s.zip_summary.item()) < 1e-3  # ZIP fits Hill curves: 0 up to the fit accuracy
    assert np.isnan(s.bliss.values[0, 0, :]).all() and np.isnan(s.bliss.values[0, :, 0]).all()
    assert s.hsa_summary.item() > 0.05  # HSA counts independent action as synergy


def test_matrix_edges_equal_the_single_drug_curves(product_model, product_matrix):
    for letter, drug, grid in (("A", "screen_a", [3, 10, 30, 100]), ("B", "screen_b", [10, 30, 60, 120])):
        curve = dose_response(product_model, drug, grid, "R@24h")
        other = {"B": "dose_B", "A": "dose_A"}["B" if letter == "A" else "A"]
        edge = product_matrix.isel({other: 0})
        np.testing.assert_allclose(edge.fraction_unaffected.values, curve.fraction_unaffected.values, rtol=1e-6)


def test_steady_readout_matches_the_closed_form(product_model):
    ds = dose_response(product_model, "screen_a", [1, 10, 100], "steady:U")
    d = ds.dose_A.values
    np.testing.assert_allclose(ds.fraction_unaffected.values[0], 1 / (1 + d / KA), rtol=1e-5)
    assert (ds.status == "ok").all()


def test_mean_and_auc_readouts_match_the_closed_form(product_model):
    T = 4.0
    d = np.array([0.0, 10.0, 90.0])
    u_inf = 1 / (1 + d / KA)  # U(t) = u_inf + (1 - u_inf) exp(-t), rates 1/h
    mean = u_inf + (1 - u_inf) * (1 - math.exp(-T)) / T
    ds_mean = dose_response(product_model, "screen_a", d[1:], "mean:U@4h")
    ds_auc = dose_response(product_model, "screen_a", d[1:], "auc:U@4h")
    np.testing.assert_allclose(ds_mean.readout.values[0], mean, rtol=1e-4)
    np.testing.assert_allclose(ds_auc.readout.values[0], mean * T, rtol=1e-4)


def test_single_agent_metrics_recover_the_model_ic50_and_hill(product_model):
    ds = dose_response(product_model, "screen_b", [3, 10, 30, 100, 300, 1000], "steady:V")
    m = single_agent_metrics(ds).sel(background="wild_type", drug="screen_b")
    assert float(m.ic50) == pytest.approx(KB, rel=1e-4)  # root finding on the model
    assert float(m.ic50_interpolated) == pytest.approx(KB, rel=0.15)
    assert float(m.fit_ec50) == pytest.approx(KB, rel=1e-3) and float(m.fit_hill) == pytest.approx(2.0, rel=1e-3)
    assert float(m.emax) == pytest.approx(1 - 1 / (1 + (1000 / KB) ** 2))
    assert str(m.status.values) == "ok"


def test_three_drug_bliss_is_zero_with_an_inert_third_drug(product_model):
    ds = dose_matrix(product_model, ["screen_a", "screen_b", "screen_blowup"],
                     [[0, 10, 100], [0, 30, 100], [0, 1e-6, 1e-5]], "R@4h")
    assert ds.inhibition.dims == ("background", "dose_A", "dose_B", "dose_C")
    s = synergy_scores(ds, ("hsa", "bliss"))
    assert abs(s.bliss_summary.item()) < 1e-5
    with pytest.raises(ScreenInputError, match="three-drug"):
        synergy_scores(ds, ("loewe",))


def test_loewe_on_a_small_grid_asks_for_more_doses(product_model):
    ds = dose_matrix(product_model, ["screen_a", "screen_b"], [[0, 10], [0, 30]], "R@1h")
    with pytest.raises(ScreenInputError, match=">= 3 non-zero doses"):
        synergy_scores(ds)
    assert np.isfinite(synergy_scores(ds, ("hsa", "bliss")).bliss_summary).all()


def test_a_failed_condition_is_reported_in_status_not_dropped(product_model):
    ds = dose_matrix(product_model, ["screen_a", "screen_blowup"], [[0, 10], [0, 1e-3, 10]], "R@24h")
    assert ds.status.shape == (1, 2, 3)
    failed = ds.status.values[0] == "failed"
    np.testing.assert_array_equal(failed, [[False, False, True], [False, False, True]])
    assert all(ds.status_message.values[0][failed])
    assert np.isnan(ds.readout.values[0][failed]).all() and np.isfinite(ds.readout.values[0][~failed]).all()
    s = synergy_scores(ds, ("hsa", "bliss"))  # a screen with a failed member is reported, not raised
    assert str(s.synergy_status.values[0]).startswith("not scored") and np.isnan(s.bliss_summary).all()


def test_batch_engine_agrees_with_scipy(product_model, product_matrix):
    ds = dose_matrix(product_model, ["screen_a", "screen_b"],
                     {"screen_a": [0, 3, 10, 30, 100], "screen_b": [0, 10, 30, 60, 120]}, "R@24h", engine="batch")
    np.testing.assert_allclose(ds.readout.values, product_matrix.readout.values, rtol=1e-5)
    assert ds.attrs["engine"] == "batch"


# ----------------------------------------------------------------------------- plots, files, CLI
def test_plots_write_files(tmp_path, product_model, product_matrix):
    import matplotlib.pyplot as plt

    from her2sim.screen import plots as sp

    scores = synergy_scores(product_matrix)
    curve = dose_response(product_model, "screen_a", [3, 30, 300], "R@24h", backgrounds=[[]])
    figures = {"curve": sp.plot_dose_response(curve), "matrix": sp.plot_dose_matrix(product_matrix),
               "synergy": sp.plot_synergy_map(scores, "bliss"), "iso": sp.plot_isobologram(product_matrix),
               "summary": sp.plot_screen_summary(product_matrix, scores)}
    for name, fig in figures.items():
        path = tmp_path / f"{name}.png"
        fig.savefig(path, dpi=50)
        plt.close(fig)
        assert path.stat().st_size > 1000, name


def test_cli_screen_prints_a_synergy_table_and_writes_files(tmp_path, product_model, capsys):
    parser = argparse.ArgumentParser()
    add_screen_parser(parser.add_subparsers(dest="command"))
    nc, csv, png = tmp_path / "s.nc", tmp_path / "s.csv", tmp_path / "s.png"
    base = ["screen", "--model", product_model, "--drugs", "screen_a,screen_b", "--doses", "screen_a=0,3,10,30nM",
            "--doses", "screen_b=0:10nM..100nM:3", "--readout", "R@24h"]
    assert run_screen_cli(parser.parse_args(base + ["--out", str(nc), "--plot", str(png)])) == 0
    out = capsys.readouterr().out
    assert "BLISS" in out and "wild_type" in out and "IC50" in out
    back = xr.open_dataset(nc, engine="scipy")
    assert {"readout", "status", "bliss", "bliss_summary"} <= set(back.data_vars)
    assert abs(back.bliss_summary.item()) < 1e-5 and png.stat().st_size > 1000
    assert run_screen_cli(parser.parse_args(base + ["--out", str(csv), "--methods", "bliss"])) == 0
    table = csv.read_text().splitlines()
    assert table[0].startswith("background,dose_A,dose_B") and len(table) == 1 + 4 * 4
    with pytest.raises(SystemExit):
        parser.parse_args(["screen", "--drugs", "a", "--doses", "a"])


def test_screen_subcommand_runs_through_the_cli_extension_hook(monkeypatch, product_model, capsys):
    from her2sim import cli

    code = cli.main(["screen", "--model", product_model, "--drugs", "screen_a", "--doses", "screen_a=0,10,100",
                     "--readout", "steady:U"])
    assert code == 0 and "screen_a" in capsys.readouterr().out
    assert cli.main(["screen", "--model", product_model, "--drugs", "screen_a", "--doses", "screen_a=0,10",
                     "--readout", "nosuch@1h"]) == 2  # a Her2simError becomes a message and exit code 2
    assert "unknown observable 'nosuch'" in capsys.readouterr().err


def test_loewe_and_ci_carry_a_warning_when_a_drug_plateaus_below_full_effect():
    """Trastuzumab plateaus at ~40 % inhibition: CI/Loewe assume full effect, so the scores say so."""
    grid = {"trastuzumab": [0, 0.3, 3, 30], "alpelisib": [0, 30, 300, 3000]}
    ds = dose_matrix("default", ["trastuzumab", "alpelisib"], grid, "viable_cells@72h", parameters=IN_VITRO)
    s = synergy_scores(ds)
    assert s.fitted_emax_A.item() < 0.9
    assert "read Bliss and HSA" in s.plateau_warning.item() and "trastuzumab" in s.attrs["reference_model_warning"]
    from her2sim.screen.screen import format_synergy_table

    assert "warning: wild_type: fitted Emax below 90%" in format_synergy_table(s)
    assert "plateau_warning" not in synergy_scores(ds, ("hsa", "bliss"), combination_index=False)


def test_no_plateau_warning_for_drugs_that_reach_full_effect(product_matrix):
    s = synergy_scores(product_matrix)
    assert s.fitted_emax_A.item() > 0.9 and s.fitted_emax_B.item() > 0.9
    assert s.plateau_warning.item() == "" and "reference_model_warning" not in s.attrs


# ----------------------------------------------------------------------------- closed forms (issue 10 item 6)
def _three_drug_dataset(inhibition, doses):
    """A dose_matrix-shaped Dataset (one background, three drugs) around a given inhibition surface."""
    dims = ("background", "dose_A", "dose_B", "dose_C")
    coords = {"background": ["wild_type"], **{d: (d, v) for d, v in zip(dims[1:], doses)}}
    e = inhibition[None]
    return xr.Dataset({"readout": (dims, 1 - e), "fraction_unaffected": (dims, 1 - e), "inhibition": (dims, e),
                       "status": (dims, np.full(e.shape, "ok"))}, coords=coords,
                      attrs={"drug_A": "a", "drug_B": "b", "drug_C": "c", "drugs": "a,b,c", "readout": "R@1h"})


def test_three_drug_hsa_expects_the_strongest_single_agent():
    """Three Hill drugs, each the strongest somewhere in the matrix, combined independently
    (fraction unaffected = product): the HSA reference of every cell is the largest of the three
    single-agent inhibitions at its doses (Berenbaum 1989 Pharmacol Rev 41:93), and Bliss is 0."""
    doses = [np.array([0.0, 1, 10, 100]), np.array([0.0, 3, 30]), np.array([0.0, 0.5, 5, 50, 500])]
    hills = [(5.0, 1.0), (10.0, 2.0), (20.0, 0.7)]  # (EC50, slope) of drugs A, B, C
    single = [d ** h / (d ** h + k ** h) for d, (k, h) in zip(doses, hills)]
    ia, ib, ic = np.ix_(*single)
    e = 1 - (1 - ia) * (1 - ib) * (1 - ic)
    s = synergy_scores(_three_drug_dataset(e, doses), ("hsa", "bliss"))
    expected = np.maximum(np.maximum(ia, ib), ic)
    combo = np.add.reduce([np.broadcast_to(x > 0, e.shape) for x in (ia, ib, ic)]) >= 2  # >= 2 drugs given
    strongest = np.argmax(np.stack(np.broadcast_arrays(ia, ib, ic)), axis=0)
    assert set(strongest[combo].tolist()) == {0, 1, 2}  # each drug is the strongest in some combination cells
    np.testing.assert_allclose(s.hsa_expected.values[0][combo], expected[combo], rtol=1e-12)
    np.testing.assert_allclose(s.hsa.values[0][combo], (e - expected)[combo], rtol=1e-12, atol=1e-15)
    assert np.isnan(s.hsa.values[0][~combo]).all()
    np.testing.assert_allclose(s.bliss.values[0][combo], 0.0, atol=1e-12)
    assert float(s.hsa_summary.values[0]) == pytest.approx(np.mean((e - expected)[combo]), rel=1e-12)


def test_hill_local_is_the_hill_slope_of_a_partial_effect_curve(product_model):
    """V@1h under drug B: V = v + (1 - v) exp(-t/2) with v = 1 / (1 + (b/Kb)^2), so the fraction
    unaffected is 1 - E (b/Kb)^2 / (1 + (b/Kb)^2) with E = 1 - exp(-1/2): a Hill curve of slope 2
    reaching only 39 % effect. hill_local = -4 (df/d ln d) / Emax at the EC50 must be 2 (times
    E / Emax, the observed Emax being E at the top dose), not 2 E (without / Emax) nor 1/2."""
    top = 3000.0
    ds = dose_response(product_model, "screen_b", [3, 10, 30, 100, 300, 1000, top], "V@1h")
    m = single_agent_metrics(ds).sel(background="wild_type", drug="screen_b")
    E = 1 - math.exp(-0.5)
    emax = E * (top / KB) ** 2 / (1 + (top / KB) ** 2)
    assert float(m.emax) == pytest.approx(emax, rel=1e-5)
    assert float(m.hill_local) == pytest.approx(2.0 * E / emax, rel=1e-4)
    assert float(m.ec50) == pytest.approx(KB * math.sqrt((emax / 2) / (E - emax / 2)), rel=1e-4)
