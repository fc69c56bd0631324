"""External check: problems of the PEtab Benchmark Collection (../shared/data/petab-benchmarks).

``her2sim fit P --evaluate`` must reproduce the log-likelihood that AMICI's test suite records for
each problem (the collection README's table) within 1e-3 relative, and the simulated observables
must match each problem's ``simulatedData`` table. Problems her2sim cannot simulate are refused
with the reason. Needs python-libsbml (the SBML importer); skipped where the data are absent.
"""

import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("libsbml")

from her2sim.cli import main  # noqa: E402
from her2sim.errors import Her2simError  # noqa: E402
from her2sim.fit import Objective, read_problem  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "petab-benchmarks"
if not DATA.is_dir():
    pytest.skip(f"PEtab benchmark problems not found at {DATA}", allow_module_level=True)


def reference_llh() -> dict:
    """problem -> log-likelihood, read from the collection README's table (AMICI's recorded values)."""
    out = {}
    for line in (DATA / "README.md").read_text().splitlines():
        m = re.match(r"^\|\s*([A-Za-z0-9_]+)\s*\|\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*\|", line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


REFERENCE = reference_llh()
#: refused on purpose, with the reason her2sim gives (none at present: the SBML importer now applies
#: Smith's time-triggered events)
REFUSED: dict = {}
#: imported and simulated, but not verified in the suite (too slow for the CI budget). Smith 2013 left
#: this set in stop 20: one evaluation takes ~2 min on a quiet core (it had run over 15 min at load 6-8)
UNVERIFIED = {"Chen_MSB2009": "501 states: one evaluation takes tens of minutes on the batch path here, beyond the "
                              "CI budget; `her2sim fit Chen_MSB2009.yaml --evaluate` result is in the README"}
#: simulatedData tables that are not at the problem's nominal parameters (checked with libRoadRunner below)
STALE_TABLES = {"Sneyd_PNAS2002": "the table's noise column (0.0227) is not the nominal sigma either"}
SLOW = {"Isensee_JCB2018", "Borghans_BiophysChem1997", "Elowitz_Nature2000", "Smith_BMCSystBiol2013"}
SUPPORTED = sorted(set(REFERENCE) - set(REFUSED) - set(UNVERIFIED))


def test_the_readme_lists_the_eleven_reference_problems():
    assert len(REFERENCE) == 11 and "Chen_MSB2009" in REFERENCE


@pytest.mark.parametrize("name", sorted(UNVERIFIED))
def test_unverified_problems_at_least_import(name):
    """Problems too slow to simulate in CI here must still read and compile (no refusal)."""
    problem = read_problem(_yaml(name))
    assert len(problem.measurements) > 0 and Objective(problem).network.n_species > 0


def _yaml(name: str) -> Path:
    return DATA / name / f"{name}.yaml"


def _params(names):
    return [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in names]


def _simulated_table_agreement(name: str, objective: Objective) -> float:
    """Largest relative difference to the problem's simulatedData table, rows matched by
    (observable, pre-equilibration, condition, time) and sorted within replicate groups."""
    import pandas as pd

    ref = pd.read_csv(DATA / name / f"simulatedData_{name}.tsv", sep="\t",
                      dtype={"preequilibrationConditionId": str, "simulationConditionId": str})
    mine = objective.simulation_table(objective.problem.nominal())
    key = ["observableId", "preequilibrationConditionId", "simulationConditionId", "time"]
    for df in (ref, mine):
        if "preequilibrationConditionId" not in df:
            df["preequilibrationConditionId"] = ""
        df["preequilibrationConditionId"] = df["preequilibrationConditionId"].fillna("")
        df["time"] = df["time"].astype(float).round(6)
        df["observableId"] = df["observableId"].str.split("__").str[0]  # Isensee's table suffixes the ids
    a = ref.groupby(key)["simulation"].apply(lambda s: np.sort(s.to_numpy(float)))
    b = mine.groupby(key)["simulation"].apply(lambda s: np.sort(s.to_numpy(float)))
    assert set(a.index) == set(b.index), f"{name}: the simulation table rows differ from simulatedData"
    floor = 1e-8 * np.abs(ref["simulation"]).max()
    return max(float(np.max(np.abs(a[k] - b[k]) / np.maximum(np.abs(a[k]), floor))) for k in a.index)


@pytest.mark.parametrize("name", _params(SUPPORTED))
def test_log_likelihood_and_simulated_data_match_the_collection(name):
    problem = read_problem(_yaml(name))
    objective = Objective(problem)
    ev = objective.evaluate(problem.nominal())
    assert ev.ok[0], ev.message[0]
    assert ev.llh[0] == pytest.approx(REFERENCE[name], rel=1e-3)
    if name not in STALE_TABLES:
        assert _simulated_table_agreement(name, objective) < 1e-3


@pytest.mark.parametrize("name", sorted(REFUSED) or [pytest.param("", marks=pytest.mark.skip(reason="none refused"))])
def test_unsupported_problems_are_refused_with_the_reason(name):
    with pytest.raises(Her2simError, match=REFUSED[name]):
        read_problem(_yaml(name))


#: problems of the collection folder without a recorded AMICI value that her2sim refuses, with the reason
OTHER_REFUSED = {
    "Armistead_CellDeathDis2024": r"SBML Level 3 package in 'comp'",
    "Liu_IFACPapersOnLine2025": r"state-triggered event",
    "Zhao_QuantBiol2020": r"parameter table row 1 column 'nominalValue': parameter 'sigma' is on the log10 scale",
}


@pytest.mark.parametrize("name", sorted(OTHER_REFUSED))
def test_other_collection_problems_are_refused_with_the_reason(name):
    if not _yaml(name).is_file():
        pytest.skip(f"{name} not in this copy of the collection")
    with pytest.raises(Her2simError, match=OTHER_REFUSED[name]):
        Objective(read_problem(_yaml(name)))


def test_cli_evaluate_prints_the_reference_log_likelihood(capsys, tmp_path):
    name = "Boehm_JProteomeRes2014"
    assert main(["fit", str(_yaml(name)), "--evaluate", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("log-likelihood: ")
    assert float(last.split()[-1]) == pytest.approx(REFERENCE[name], rel=1e-6)
    assert (tmp_path / "simulatedData.tsv").is_file()


def test_sneyd_stale_table_we_agree_with_libroadrunner():
    """Sneyd's simulatedData differs from our simulation in some conditions while the
    log-likelihood matches AMICI to 1e-8: an independent simulator decides."""
    roadrunner = pytest.importorskip("roadrunner")
    import pandas as pd

    name = "Sneyd_PNAS2002"
    problem = read_problem(_yaml(name))
    ev = Objective(problem).evaluate(problem.nominal())
    cond = "Ca_dose_response__5"
    ks = [k for k, m in enumerate(problem.measurements) if m.condition == cond]
    times = np.array([problem.measurements[k].time for k in ks])
    rr = roadrunner.RoadRunner(str(DATA / name / f"model_{name}.xml"))
    par = pd.read_csv(DATA / name / f"parameters_{name}.tsv", sep="\t")
    for pid, v in zip(par.parameterId, par.nominalValue):
        if pid in rr.model.getGlobalParameterIds():
            rr[pid] = float(v)
    for target, v in problem.conditions[cond].items():
        rr[target] = float(v)
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = 1e-10, 1e-14
    grid = np.unique(np.concatenate([[0.0], times]))
    res = rr.simulate(times=grid.tolist(), selections=["time", "IPR_A", "IPR_O"])
    a, o = np.interp(times, res[:, 0], res[:, 1]), np.interp(times, res[:, 0], res[:, 2])
    np.testing.assert_allclose(ev.simulated[0, ks], (0.9 * a + 0.1 * o) ** 4, rtol=1e-5, atol=1e-9)


def test_boehm_closed_form_noise_parameters_are_the_published_estimates():
    """Boehm's three noise parameters only scale normal noise, so the fit sets them in closed form
    (sqrt(RSS / n) per observable). At the published optimum (the nominal parameters) the closed
    form must return the published sigmas (3.85, 6.59, 3.15) and keep the nllh at 138.222."""
    problem = read_problem(_yaml("Boehm_JProteomeRes2014"))
    objective = Objective(problem)
    assert sorted(problem.free[k] for k, *_ in objective.noise_groups) == [
        "sd_pSTAT5A_rel", "sd_pSTAT5B_rel", "sd_rSTAT5A_rel"]
    x = objective.x_nominal()
    xs = objective.optimal_noise_x(x)
    assert np.array_equal(xs[:6], x[:6])
    # the published sigmas come from an iterative optimiser: they are within 3.3e-4 (relative) of the
    # exact optimum for the published dynamics, which is (marginally) better
    np.testing.assert_allclose(10 ** xs[6:], 10 ** x[6:], rtol=1e-3)
    nominal, closed = objective.nllh(x), objective.nllh(xs)
    assert nominal - 1e-5 < closed <= nominal
    assert closed == pytest.approx(-REFERENCE["Boehm_JProteomeRes2014"], abs=1e-4)


@pytest.mark.slow
def test_boehm_fit_from_perturbed_starts_reaches_the_best_known_optimum():
    """Two starts 0.2 (log10) from the nominal optimum in every parameter, in lockstep: both return
    to the best known nllh 138.222 within 0.1. (The share of Latin hypercube starts that reach it
    is measured by benchmarks/bench_fit.py and recorded in the README.)"""
    from her2sim.fit.optimize import local_fits

    name = "Boehm_JProteomeRes2014"
    problem = read_problem(_yaml(name))
    objective = Objective(problem, max_steps=20000)
    rng = np.random.default_rng(0)
    x0 = objective.x_nominal()
    X0 = np.clip(x0 + rng.choice([-0.2, 0.2], size=(2, len(x0))), objective.lower, objective.upper)
    fits = local_fits(objective, X0, max_evaluations=60)
    for f in fits:
        assert f.nllh == pytest.approx(-REFERENCE[name], abs=0.1), f


@pytest.mark.slow
def test_boehm_multistart_from_random_starts_reaches_the_best_known_optimum():
    """Ten Latin hypercube starts over the full box (log10 1e-5..1e5 in all 9 parameters, seed 0),
    fides with closed-form noise parameters: at least one start ends within 0.1 of the best known
    nllh 138.222 and none below it, and every start terminates on a tolerance. Measured: 1 of 10
    here (start 6) and 1 of 50 with seed 0 (benchmarks/bench_fit.py; README "Multi-start"); scipy's
    trf reaches it from none of these ten. 186 s on the shared 2-core machine at load 5-6 (the
    optimising start needs 153 evaluations, one other 142, the rest 2-60; no fewer starts would do:
    the time is set by that one start's evaluations, not by the number of starts in lockstep)."""
    pytest.importorskip("fides")
    from her2sim.fit import fit

    problem = read_problem(_yaml("Boehm_JProteomeRes2014"))
    result = fit(problem, starts=10, seed=0, objective=Objective(problem, max_steps=20000), optimizer="fides")
    best = -REFERENCE["Boehm_JProteomeRes2014"]
    assert result.attrs["optimizer"] == "fides"
    assert all(s.status == "converged" for s in result.starts), result.to_dataframe()[["start", "nllh", "status"]]
    assert result.share_within(0.1, reference=best) >= 0.1
    assert result.nllh_best > best - 0.01


def test_chen_reference_value_disagrees_with_the_collections_own_simulated_data():
    """Why Chen_MSB2009 is not held to AMICI's recorded -115700.12: the log-likelihood of the
    collection's own ``simulatedData`` table (every sigma is a number in the measurement table, so
    no simulation is needed) is -130669.49, 13 % away; her2sim and libRoadRunner (CVODE) agree with
    each other and with the table (README). AMICI's test suite itself leaves Chen out of its
    log-likelihood check (since AMICI commit c3c4723, 2020; "unknown reasons" in
    tests/benchmark_models/test_petab_benchmark.py today)."""
    import pandas as pd

    from her2sim.fit import noise

    folder = DATA / "Chen_MSB2009"
    meas = pd.read_csv(folder / "measurementData_Chen_MSB2009.tsv", sep="\t")
    sim = pd.read_csv(folder / "simulatedData_Chen_MSB2009.tsv", sep="\t")
    assert list(meas["observableId"]) == list(sim["observableId"]) and np.array_equal(meas["time"], sim["time"])
    sigma = meas["noiseParameters"].astype(float).to_numpy()
    llh = -noise.nllh_terms(sim["simulation"].to_numpy(), meas["measurement"].to_numpy(), sigma, "lin",
                            "normal").sum()
    assert llh == pytest.approx(-130669.4878, rel=1e-8)
    assert abs(llh / REFERENCE["Chen_MSB2009"] - 1) > 0.1
