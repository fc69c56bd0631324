"""her2sim.fit on small PEtab problems built here from TOML models with closed-form solutions:
likelihood against hand calculation and against the petab library, batch vs scipy path,
pre-equilibration and steady-state measurements, finite-difference gradients, recovery of known
parameters within profile intervals, resume, bad input (one line naming table, row, column), CLI."""

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from her2sim.cli import main
from her2sim.fit import Objective, PetabError, fit, profiles, read_problem
from her2sim.fit import noise
from her2sim.fit.optimize import latin_hypercube

MODELS = Path(__file__).parent / "models"

# X' = ksyn - k X: steady state ksyn/k; from X0 the solution is ss + (X0 - ss) exp(-k t)
TURNOVER = """
[model]
name = "turnover"
description = "synthesis and first-order degradation"

[species.X]
initial = "10 nM"
source = "assumed: test model"

[parameters.ksyn]
value = "2 nM/h"
source = "assumed: test model"
[parameters.k]
value = "0.5 1/h"
source = "assumed: test model"

[reactions.synthesis]
products = ["X"]
rate = "ksyn"
[reactions.degradation]
reactants = ["X"]
rate = "k * X"
"""

YAML = """format_version: 1
parameter_file: parameters.tsv
problems:
- condition_files: [conditions.tsv]
  measurement_files: [measurements.tsv]
  observable_files: [observables.tsv]
  sbml_files: [{model}]
"""


def tsv(rows):
    return "\n".join("\t".join(str(c) for c in r) for r in rows) + "\n"


def write_problem(folder: Path, *, model="decay", observables=None, conditions=None, parameters=None,
                  measurements=None) -> Path:
    """A PEtab problem in ``folder``; defaults: decay model, scaled observable, estimated sigma."""
    folder.mkdir(parents=True, exist_ok=True)
    if model == "turnover":
        (folder / "turnover.toml").write_text(TURNOVER)
        model_file = "turnover.toml"
    else:
        model_file = str(MODELS / f"{model}.toml")
    (folder / "problem.yaml").write_text(YAML.format(model=model_file))
    (folder / "observables.tsv").write_text(tsv(observables or [
        ("observableId", "observableFormula", "noiseFormula", "observableTransformation", "noiseDistribution"),
        ("y", "observableParameter1_y * X", "noiseParameter1_y", "lin", "normal")]))
    (folder / "conditions.tsv").write_text(tsv(conditions or [("conditionId", "X"), ("c1", 100), ("c2", "X0_2")]))
    (folder / "parameters.tsv").write_text(tsv(parameters or [
        ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue", "estimate"),
        ("k", "log10", 0.01, 10, 0.3, 1), ("X0_2", "lin", 1, 200, 50, 1), ("scale", "log10", 0.1, 10, 2, 1),
        ("sigma", "log10", 0.01, 100, 1, 1)]))
    if measurements is None:
        measurements = [("observableId", "simulationConditionId", "measurement", "time", "observableParameters",
                         "noiseParameters")]
        for c, x0 in (("c1", 100), ("c2", 50)):
            for t in (0, 1, 2, 4, 8):
                measurements.append(("y", c, 2 * x0 * math.exp(-0.3 * t) + (0.5 if t % 2 else -0.5), t, "scale",
                                     "sigma"))
    (folder / "measurements.tsv").write_text(tsv(measurements))
    return folder / "problem.yaml"


@pytest.fixture(scope="module")
def decay(tmp_path_factory):
    return read_problem(write_problem(tmp_path_factory.mktemp("decay")))


def test_nominal_likelihood_equals_the_closed_form(decay):
    ev = Objective(decay).evaluate(decay.nominal())
    # every residual is +-0.5 with sigma = 1: 10 * (0.5 log 2 pi + 0.5 * 0.25)
    expected = 10 * (0.5 * math.log(2 * math.pi) + 0.125)
    assert ev.ok[0]
    assert ev.nllh[0] == pytest.approx(expected, rel=1e-7)
    t = np.array([m.time for m in decay.measurements])
    x0 = np.where(np.array([m.condition for m in decay.measurements]) == "c1", 100.0, 50.0)
    np.testing.assert_allclose(ev.simulated[0], 2 * x0 * np.exp(-0.3 * t), rtol=1e-7)


def test_batch_and_scipy_paths_agree_for_many_parameter_vectors(decay):
    obj = Objective(decay)
    X = latin_hypercube(6, obj.lower, obj.upper, seed=3)
    batch = obj.nllh(X)
    ref = Objective(decay, method="scipy", rtol=1e-11, atol=1e-14).nllh(X)
    np.testing.assert_allclose(batch, ref, rtol=1e-6)


@pytest.mark.parametrize("transformation", ["lin", "log", "log10"])
@pytest.mark.parametrize("distribution", ["normal", "laplace"])
def test_noise_models_match_the_petab_library(transformation, distribution):
    petab_calc = pytest.importorskip("petab.v1.calculate")
    import pandas as pd

    rng = np.random.default_rng(1)
    m = rng.uniform(0.5, 3, 7)
    y = m * rng.uniform(0.7, 1.3, 7)
    sigma = rng.uniform(0.1, 0.6, 7)
    mine = noise.nllh_terms(y, m, sigma, transformation, distribution).sum()
    meas = pd.DataFrame({"observableId": "o", "simulationConditionId": "c", "time": np.arange(7.0),
                         "measurement": m, "noiseParameters": sigma})
    sim = meas.drop(columns="measurement").assign(simulation=y)
    obs = pd.DataFrame({"observableId": ["o"], "observableFormula": ["x"], "noiseFormula": ["noiseParameter1_o"],
                        "observableTransformation": [transformation], "noiseDistribution": [distribution]}
                       ).set_index("observableId")
    par = pd.DataFrame({"parameterId": ["x"], "parameterScale": ["lin"], "lowerBound": [0.0], "upperBound": [1.0],
                        "nominalValue": [1.0], "estimate": [0]}).set_index("parameterId")
    theirs = petab_calc.calculate_llh(meas, sim, obs, par)
    assert -mine == pytest.approx(theirs, rel=1e-12)


def test_preequilibration_and_steady_state_measurements(tmp_path):
    """Pre-equilibrate at ksyn = a, switch to ksyn = b: X(t) = b/k + (a - b)/k exp(-k t); t = inf gives b/k."""
    meas = [("observableId", "preequilibrationConditionId", "simulationConditionId", "measurement", "time",
             "observableParameters", "noiseParameters")]
    for t in (0, 0.5, 3, "inf"):
        meas.append(("x", "pre", "main", 1.0, t, "", 0.1))
    meas.append(("x", "", "pre", 1.0, 2.0, "", 0.1))   # the same condition without pre-equilibration
    path = write_problem(tmp_path, model="turnover",
                         observables=[("observableId", "observableFormula", "noiseFormula"),
                                      ("x", "X", "noiseParameter1_x")],
                         conditions=[("conditionId", "ksyn"), ("pre", 1.0), ("main", "ksyn_main")],
                         parameters=[("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue",
                                      "estimate"), ("ksyn_main", "log10", 0.1, 10, 3.0, 1),
                                     ("k", "log10", 0.1, 10, 0.5, 1)],
                         measurements=meas)
    prob = read_problem(path)
    for method in ("batch", "scipy"):
        sim = Objective(prob, method=method, rtol=1e-10, atol=1e-12).evaluate(prob.nominal()).simulated[0]
        a, b, k = 1.0, 3.0, 0.5
        expected = [b / k + (a - b) / k * math.exp(-k * t) for t in (0, 0.5, 3)] + [b / k]
        expected.append(10.0 + (a / k - 10.0) * (1 - math.exp(-k * 2.0)))  # from the model's X0 = 10
        np.testing.assert_allclose(sim, expected, rtol=1e-7, err_msg=method)


def test_finite_difference_gradient_matches_a_tight_reference(decay):
    """Central differences (batch path, default step and tolerances) against an h -> 0 Richardson
    extrapolation on the scipy path at rtol 1e-12."""
    x = Objective(decay).x_nominal() + np.array([0.05, 3.0, -0.02, 0.1])
    _, g = Objective(decay).nllh_and_gradient(x)
    ref = Objective(decay, method="scipy", rtol=1e-12, atol=1e-14)
    g_ref = []
    for i in range(len(x)):
        def d(h):
            e = np.zeros_like(x)
            e[i] = h
            return (ref.nllh(x + e) - ref.nllh(x - e)) / (2 * h)
        h = 1e-3 * max(1.0, abs(x[i])) if ref.scales[i] == "lin" else 1e-3
        g_ref.append((4 * d(h / 2) - d(h)) / 3)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-6 * np.max(np.abs(g_ref)))


def test_fit_recovers_known_parameters_within_profile_intervals(tmp_path):
    """Data simulated from known parameters with Gaussian noise; the fit's 95 % profile intervals
    contain the true values."""
    true = {"ksyn_main": 3.0, "k": 0.5}
    rng = np.random.default_rng(7)
    meas = [("observableId", "preequilibrationConditionId", "simulationConditionId", "measurement", "time",
             "observableParameters", "noiseParameters")]
    for t in np.linspace(0, 8, 12):
        x = true["ksyn_main"] / true["k"] + (1.0 - true["ksyn_main"]) / true["k"] * math.exp(-true["k"] * t)
        meas.append(("x", "pre", "main", x + rng.normal(0, 0.1), float(t), "", "sigma"))
    path = write_problem(tmp_path, model="turnover",
                         observables=[("observableId", "observableFormula", "noiseFormula"),
                                      ("x", "X", "noiseParameter1_x")],
                         conditions=[("conditionId", "ksyn"), ("pre", 1.0), ("main", "ksyn_main")],
                         parameters=[("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue",
                                      "estimate"), ("ksyn_main", "log10", 0.1, 10, 1.0, 1),
                                     ("k", "log10", 0.05, 10, 1.0, 1), ("sigma", "lin", 0.1, 0.1 + 1, 0.1, 0)],
                         measurements=meas)
    prob = read_problem(path)
    obj = Objective(prob)
    result = fit(prob, starts=3, seed=2, objective=obj)
    assert result.best.status == "converged"
    assert result.share_within(0.01) == 1.0          # a simple problem: every start finds the optimum
    for pr in profiles(obj, result.x_best):
        t = math.log10(true[pr.parameter])
        assert pr.lower < t < pr.upper, (pr.parameter, pr.lower, t, pr.upper)
        assert pr.upper - pr.lower < 0.2                # identifiable: a finite, narrow interval


def test_resume_reuses_finished_starts(decay, tmp_path):
    first = fit(decay, starts=2, seed=5, out=tmp_path)
    files = sorted((tmp_path / "starts").glob("start_*.json"))
    assert len(files) == 2
    stamps = [f.stat().st_mtime_ns for f in files]
    again = fit(decay, starts=3, seed=5, out=tmp_path, resume=True)
    assert [f.stat().st_mtime_ns for f in files] == stamps      # not re-run
    assert len(again.starts) == 3
    assert {s.index: s.nllh for s in again.starts}[0] == {s.index: s.nllh for s in first.starts}[0]


def test_laplace_noise_and_priors_use_the_gradient_optimiser(tmp_path):
    path = write_problem(tmp_path, observables=[
        ("observableId", "observableFormula", "noiseFormula", "observableTransformation", "noiseDistribution"),
        ("y", "observableParameter1_y * X", "noiseParameter1_y", "log", "laplace")], parameters=[
        ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue", "estimate",
         "objectivePriorType", "objectivePriorParameters"),
        ("k", "log10", 0.01, 10, 0.3, 1, "parameterScaleNormal", "-0.5;0.5"), ("X0_2", "lin", 1, 200, 50, 1, "", ""),
        ("scale", "log10", 0.1, 10, 2, 1, "", ""), ("sigma", "log10", 0.001, 100, 1, 1, "", "")])
    prob = read_problem(path)
    obj = Objective(prob)
    assert "laplace" in obj.least_squares_refusal()
    ev = obj.evaluate(prob.nominal())
    expected_prior = 0.5 * math.log(2 * math.pi * 0.25) + 0.5 * ((math.log10(0.3) + 0.5) / 0.5) ** 2
    assert ev.prior[0] == pytest.approx(expected_prior, rel=1e-12)
    result = fit(prob, starts=2, seed=0, objective=obj)
    assert result.nllh_best < ev.nllh[0]


BAD = {
    "missing column": ("observables.tsv", "observableId\tobservableFormula\ny\tX\n", "observable table",
                       "noiseFormula"),
    "bad scale": ("parameters.tsv",
                  "parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate\nk\tln\t0.1\t1\t0.3\t1\n",
                  "parameter table row 1", "parameterScale"),
    "log scale lower bound 0": ("parameters.tsv",
                                "parameterId\tparameterScale\tlowerBound\tupperBound\tnominalValue\testimate\n"
                                "k\tlog10\t0\t1\t0.3\t1\n", "parameter table row 1", "lowerBound"),
    "bad number": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\n"
                   "y\tc1\tabc\t0\n", "measurement table row 1", "measurement"),
    "unknown observable": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\n"
                           "z\tc1\t1\t0\n", "measurement table row 1", "observableId"),
    "unknown condition": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\t"
                          "observableParameters\tnoiseParameters\ny\tc9\t1\t0\tscale\tsigma\n",
                          "measurement table row 1", "simulationConditionId"),
    "missing noise parameter": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\t"
                                "observableParameters\ny\tc1\t1\t0\tscale\n", "measurement table row 1",
                                "noiseParameters"),
    "unknown override id": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\t"
                            "observableParameters\tnoiseParameters\ny\tc1\t1\t0\tscale\tsigma_x\n",
                            "measurement table row 1", "noiseParameters"),
    "unknown id in formula": ("observables.tsv", "observableId\tobservableFormula\tnoiseFormula\n"
                              "y\tX * q\tnoiseParameter1_y\n", "observable table", "observableFormula"),
    "code in formula": ("observables.tsv", "observableId\tobservableFormula\tnoiseFormula\n"
                        "y\t__import__('os').getcwd()\tnoiseParameter1_y\n", "observable table row 1",
                        "observableFormula"),
    "unknown condition target": ("conditions.tsv", "conditionId\tY\nc1\t1\nc2\t2\n", "condition table", "'Y'"),
    "duplicate id": ("conditions.tsv", "conditionId\tX\nc1\t1\nc1\t2\n", "condition table row 2", "conditionId"),
    "negative time": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\t"
                      "observableParameters\tnoiseParameters\ny\tc1\t1\t-2\tscale\tsigma\n", "measurement table row 1",
                      "time"),
    "sigma override not positive": ("measurements.tsv", "observableId\tsimulationConditionId\tmeasurement\ttime\t"
                                    "observableParameters\tnoiseParameters\ny\tc1\t1\t0\tscale\t0\n",
                                    "measurement table row 1", "noiseParameters"),
    "constant sigma not positive": ("observables.tsv", "observableId\tobservableFormula\tnoiseFormula\n"
                                    "y\tobservableParameter1_y * X\t-1\n", "observable table", "noiseFormula"),
    "estimated sigma may be zero": ("parameters.tsv", "parameterId\tparameterScale\tlowerBound\tupperBound\t"
                                    "nominalValue\testimate\nk\tlog10\t0.01\t10\t0.3\t1\nX0_2\tlin\t1\t200\t50\t1\n"
                                    "scale\tlog10\t0.1\t10\t2\t1\nsigma\tlin\t0\t10\t1\t1\n",
                                    "parameter table row 4", "lowerBound"),
    "prior scale not positive": ("parameters.tsv", "parameterId\tparameterScale\tlowerBound\tupperBound\t"
                                 "nominalValue\testimate\tobjectivePriorType\tobjectivePriorParameters\n"
                                 "k\tlog10\t0.01\t10\t0.3\t1\tnormal\t0.3;0\n", "parameter table row 1",
                                 "objectivePriorParameters"),
    "log prior on a parameter that may be 0": ("parameters.tsv", "parameterId\tparameterScale\tlowerBound\tupperBound\t"
                                               "nominalValue\testimate\tobjectivePriorType\tobjectivePriorParameters\n"
                                               "k\tlin\t0\t10\t0.3\t1\tlogNormal\t0;1\n", "parameter table row 1",
                                               "objectivePriorParameters"),
    "log data not positive": ("observables.tsv", "observableId\tobservableFormula\tnoiseFormula\t"
                              "observableTransformation\ny\tobservableParameter1_y * X\tnoiseParameter1_y\tlog\n"
                              "", "measurement table row", "measurement"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_line_naming_table_row_and_column(case, tmp_path):
    path = write_problem(tmp_path)
    if case == "log data not positive":
        (tmp_path / "measurements.tsv").write_text("observableId\tsimulationConditionId\tmeasurement\ttime\t"
                                                   "observableParameters\tnoiseParameters\n"
                                                   "y\tc1\t-1\t0\tscale\tsigma\n")
    name, text, table, column = BAD[case]
    (tmp_path / name).write_text(text)
    with pytest.raises(PetabError) as info:
        read_problem(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert table in msg and column in msg, msg


def test_a_simulation_failure_names_the_measurement_row_and_condition(decay):
    ev = Objective(decay, max_steps=1).evaluate(decay.nominal())   # one step cannot reach t = 8
    assert not ev.ok[0]
    assert ev.message[0].startswith("measurement table row 1 column 'simulationConditionId' (condition c1)")
    assert "\n" not in ev.message[0]


def test_closed_form_noise_parameter_minimises_the_likelihood_over_sigma(decay):
    """sigma only scales a normal noise: its optimum for fixed dynamics is sqrt(RSS / n)."""
    obj = Objective(decay)
    assert [(decay.free[k], len(rows)) for k, _, rows in obj.noise_groups] == [("sigma", 10)]
    x = obj.x_nominal()
    x[0] += 0.1                                             # away from the optimum of the dynamics
    xs = obj.optimal_noise_x(x)
    ev = obj.evaluate(obj.theta(x))
    rss = np.sum((obj.measured - ev.simulated[0]) ** 2)
    assert 10 ** xs[3] == pytest.approx(math.sqrt(rss / 10), rel=1e-12)
    assert np.array_equal(np.delete(xs, 3), np.delete(x, 3))
    grid = xs[3] + np.linspace(-0.05, 0.05, 11)
    values = obj.nllh(np.array([np.r_[xs[:3], g] for g in grid]))
    assert np.argmin(values) == 5 and np.all(np.diff(values[:6]) < 0) and np.all(np.diff(values[5:]) > 0)
    # the profiled objective's gradient has no sigma component and matches the full gradient there
    _, g_full = obj.nllh_and_gradient(xs)
    _, g_prof = obj.nllh_and_gradient(xs, active=[0, 1, 2], noise_groups=obj.noise_groups)
    np.testing.assert_allclose(g_prof, g_full[:3], rtol=1e-4, atol=1e-6)
    assert abs(g_full[3]) < 1e-5 * np.max(np.abs(g_full))


def test_closed_form_and_optimised_noise_reach_the_same_optimum(decay):
    closed = fit(decay, starts=2, seed=3)
    optimised = fit(decay, starts=2, seed=3, closed_form_noise=False)
    assert closed.attrs["closed_form_noise"] == ["sigma"] and optimised.attrs["closed_form_noise"] == []
    assert closed.nllh_best == pytest.approx(optimised.nllh_best, abs=1e-6)
    np.testing.assert_allclose(closed.x_best, optimised.x_best, atol=1e-3)


def test_fides_and_trf_reach_the_same_optimum(decay):
    """The two least-squares optimisers (fides with the Gauss-Newton Hessian, scipy's trf) find the
    same optimum from the same starts, and the result says which one ran."""
    pytest.importorskip("fides")
    a = fit(decay, starts=2, seed=3, optimizer="fides")
    b = fit(decay, starts=2, seed=3, optimizer="trf")
    assert a.attrs["optimizer"] == "fides" and b.attrs["optimizer"] == "trf"
    assert a.best.status == "converged" and a.best.message.startswith("fides:")
    assert a.nllh_best == pytest.approx(b.nllh_best, abs=1e-6)
    np.testing.assert_allclose(a.x_best, b.x_best, atol=1e-3)


def test_optimizer_choice_is_checked_before_any_work(decay, monkeypatch):
    from her2sim.errors import Her2simError
    from her2sim.fit.optimize import resolve_optimizer

    with pytest.raises(ValueError, match="optimizer must be one of auto, fides, trf"):
        fit(decay, starts=1, optimizer="lbfgs")
    monkeypatch.setitem(sys.modules, "fides", None)        # as if fides were not installed
    assert resolve_optimizer("auto") == "trf"
    with pytest.raises(Her2simError, match=r"optimizer 'fides' is not installed: pip install 'her2sim\[fit\]'"):
        fit(decay, starts=1, optimizer="fides")
    assert fit(decay, starts=1, seed=0).attrs["optimizer"] == "trf"


def test_fit_result_carries_the_accuracy_certificate(decay):
    result = fit(decay, starts=1, seed=0)
    cert = result.attrs["certificate"]
    assert cert["n_members"] == 2 and sorted(cert["members"]) == [0, 1]   # both conditions re-integrated
    assert 0 <= cert["max_rel_error"] < 1e-5                                # rtol 1e-8 batch vs Radau 5e-10
    assert Objective(decay, method="scipy").certificate(decay.nominal()) is None


def test_cli_evaluate_prints_the_log_likelihood_last(decay, tmp_path, capsys):
    assert main(["fit", decay.path, "--evaluate", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    expected = -10 * (0.5 * math.log(2 * math.pi) + 0.125)
    assert last.startswith("log-likelihood: ")
    assert float(last.split(": ")[1]) == pytest.approx(expected, rel=1e-7)
    import pandas as pd

    sim = pd.read_csv(tmp_path / "simulatedData.tsv", sep="\t")
    assert list(sim["simulation"][:2]) == pytest.approx([200.0, 200.0 * math.exp(-0.3)], rel=1e-7)


def test_cli_fit_writes_tables_and_figures(decay, tmp_path, capsys):
    assert main(["fit", decay.path, "--out", str(tmp_path), "--starts", "2", "--seed", "1", "--optimizer", "trf"]) == 0
    for f in ("parameters.tsv", "starts.tsv", "simulatedData.tsv", "waterfall.png", "data_vs_fit.png",
              "residuals.png", "fit.json"):
        assert (tmp_path / f).is_file(), f
    import json

    written = json.loads((tmp_path / "fit.json").read_text())
    assert written["certificate"]["max_rel_error"] < 1e-5 and written["closed_form_noise"] == ["sigma"]
    assert written["optimizer"] == "trf"
    refit = read_problem(decay.path)  # the written parameter table is a valid PEtab parameter table
    from her2sim.fit.problem import read_parameters

    rows = read_parameters(tmp_path / "parameters.tsv")
    assert [r.id for r in rows] == list(refit.parameter_ids)
    assert main(["fit", decay.path, "--starts", "2"]) == 2     # a fit needs --out
    assert main(["fit", str(tmp_path / "missing.yaml"), "--evaluate"]) == 2
    assert "missing.yaml" in capsys.readouterr().err


@pytest.mark.slow
def test_her2sim_lapatinib_problem_reproduces_her2sim_simulate():
    """models/calibration/her2_lapatinib: the default network exported to SBML, re-imported and
    simulated on the batch path from PEtab tables equals her2sim.simulate (scipy path, TOML model)."""
    pytest.importorskip("libsbml")
    import her2sim
    from her2sim.fit.export import EXAMPLE_DOSES_nM, EXAMPLE_TIMES_h

    path = Path(__file__).parents[1] / "models" / "calibration" / "her2_lapatinib" / "her2_lapatinib.yaml"
    problem = read_problem(path)
    ev = Objective(problem).evaluate(problem.nominal())
    assert ev.ok[0]
    for d in EXAMPLE_DOSES_nM:
        res = her2sim.simulate("default", drugs={"lapatinib": f"{d} nM"}, t_eval=list(EXAMPLE_TIMES_h),
                               time=f"{EXAMPLE_TIMES_h[-1]} h", rtol=1e-10, atol=1e-12)
        for o in ("pAKT", "pERK"):
            ks = [k for k, m in enumerate(problem.measurements)
                  if m.condition == f"lapatinib_{int(d)}nM" and m.observable == f"obs_{o}"]
            np.testing.assert_allclose(ev.simulated[0, ks], np.ravel(res.values(o)), rtol=1e-5, err_msg=f"{o} {d}")


def test_start_groups_are_picklable_tasks_for_any_scheduler(decay):
    """map_tasks sends (problem, options, max_evaluations) to workers: it must pickle, and a group of
    starts run as one task equals the same starts fitted one by one."""
    import pickle

    from her2sim.fit.optimize import local_fit, run_starts, start_points

    obj = Objective(decay)
    shared = pickle.loads(pickle.dumps((decay, {"rtol": 1e-8, "atol": 1e-12}, 50)))
    X0 = start_points(obj, 2, seed=4)
    together = run_starts(shared, [0, 1], X0)
    for k in range(2):
        alone = local_fit(obj, X0[k], max_evaluations=50)
        assert together[k]["nllh"] == pytest.approx(alone.nllh, rel=1e-9)
        np.testing.assert_allclose(together[k]["x"], alone.x, rtol=1e-7, atol=1e-9)
