"""SBML import (issue 12): semantics against closed forms, symbolic initial values, refusals,
round trips through the exporter, the SBML Test Suite (zero wrong results) and Chen 2009 vs
libRoadRunner (optional)."""

import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import her2sim
from her2sim.model import expr as ex
from her2sim.errors import Her2simError, SBMLImportError, UnsupportedSBMLError
from her2sim.model.spec import Observable

libsbml = pytest.importorskip("libsbml", reason="python-libsbml is not installed (pip install 'her2sim[sbml]')")
from her2sim.io.sbml_import import import_sbml, name_map  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RECEPTOR = ROOT / "tests" / "models" / "sbml" / "receptor.xml"
SUITE = ROOT / ".." / "shared" / "data" / "sbml-test-suite" / "cases"
CHEN = ROOT / ".." / "shared" / "data" / "petab-benchmarks" / "Chen_MSB2009" / "model_Chen_MSB2009.xml"
MATH = 'xmlns="http://www.w3.org/1998/Math/MathML"'


def sbml(body: str, *, extra: str = "", level: str = 'level="3" version="2"',
         ns: str = "http://www.sbml.org/sbml/level3/version2/core") -> str:
    return textwrap.dedent(f"""<?xml version="1.0" encoding="UTF-8"?>
    <sbml xmlns="{ns}" {level}><model id="m">{body}</model></sbml>""")


TWO_COMPARTMENTS = sbml(f"""
  <listOfCompartments>
    <compartment id="V1" size="2" constant="true"/><compartment id="V2" size="0.5" constant="true"/>
  </listOfCompartments>
  <listOfSpecies>
    <species id="A" compartment="V1" initialAmount="3" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
    <species id="B" compartment="V2" initialConcentration="0" hasOnlySubstanceUnits="false" boundaryCondition="false" constant="false"/>
    <species id="N" compartment="V2" initialConcentration="4" hasOnlySubstanceUnits="true" boundaryCondition="false" constant="false"/>
  </listOfSpecies>
  <listOfParameters><parameter id="k" value="0.7" constant="true"/></listOfParameters>
  <listOfReactions>
    <reaction id="transport" reversible="false">
      <listOfReactants><speciesReference species="A" stoichiometry="1" constant="true"/></listOfReactants>
      <listOfProducts><speciesReference species="B" stoichiometry="2" constant="true"/>
                      <speciesReference species="N" stoichiometry="1" constant="true"/></listOfProducts>
      <kineticLaw><math {MATH}><apply><times/><ci>k</ci><ci>A</ci><ci>V1</ci></apply></math></kineticLaw>
    </reaction>
  </listOfReactions>""")


def test_amount_and_concentration_semantics_match_the_closed_form():
    """A (conc. in V1=2) -> 2 B (conc. in V2=0.5) + N (amount): extent rate k*[A]*V1."""
    spec = import_sbml(TWO_COMPARTMENTS)
    t = np.linspace(0, 3, 7)
    res = her2sim.simulate(spec, time=3, t_eval=t, rtol=1e-10, atol=1e-12)
    a0 = 3 / 2  # initial amount 3 in V1 = 2
    A = a0 * np.exp(-0.7 * t)
    extent = (a0 - A) * 2  # amount converted
    np.testing.assert_allclose(res.values("A")[0], A, rtol=1e-7)
    np.testing.assert_allclose(res.values("B")[0], 2 * extent / 0.5, rtol=1e-7)
    np.testing.assert_allclose(res.values("N")[0], 4 * 0.5 + extent, rtol=1e-7)  # initialConcentration * V
    assert {s.name: s.quantity for s in spec.species} == {"A": "concentration", "B": "concentration", "N": "amount"}
    assert spec.preequilibrate is False and spec.observable_names == ("A", "B", "N")


def test_both_engines_agree_on_an_imported_model():
    from her2sim.solvers.batch import simulate_batch

    net = her2sim.compile_network(import_sbml(TWO_COMPARTMENTS))
    t = np.linspace(0, 3, 7)
    ref = her2sim.simulate(net, time=3, t_eval=t, rtol=1e-10, atol=1e-12).species[0]
    got = simulate_batch(net, t_eval=t, rtol=1e-10, atol=1e-12).states[0]
    np.testing.assert_allclose(got, ref, rtol=1e-7, atol=1e-10)


def test_initial_assignments_stay_symbolic_and_simulate_uses_them():
    spec = import_sbml(RECEPTOR)
    net = her2sim.compile_network(spec)
    j, i = net.parameter_index("R_total"), net.species_index("R")
    assert net.x0[i] == 10.0
    P = np.tile(net.p0, (3, 1))
    P[:, j] = [1.0, 5.0, 20.0]
    X0 = net.initial_state(P)
    assert X0.shape == (3, net.n_species)
    np.testing.assert_array_equal(X0[:, i], [1.0, 5.0, 20.0])
    np.testing.assert_array_equal(net.initial_state(P[1]), X0[1])
    res = her2sim.simulate(net, time=1, conditions=[{"parameters": {"R_total": v}} for v in (1.0, 5.0)])
    np.testing.assert_array_equal(res.species[:, 0, i], [1.0, 5.0])  # t = 0, no pre-equilibration
    with pytest.raises(ValueError, match="shape"):
        net.initial_state(np.zeros(net.n_params + 1))


def test_rate_rules_time_piecewise_functions_and_local_parameters():
    body = f"""
      <listOfFunctionDefinitions>
        <functionDefinition id="twice"><math {MATH}><lambda><bvar><ci>x</ci></bvar>
          <apply><times/><cn>2</cn><ci>x</ci></apply></lambda></math></functionDefinition>
      </listOfFunctionDefinitions>
      <listOfCompartments><compartment id="c" size="1" constant="true"/></listOfCompartments>
      <listOfSpecies><species id="S" compartment="c" initialConcentration="1" hasOnlySubstanceUnits="false"
        boundaryCondition="false" constant="false"/></listOfSpecies>
      <listOfParameters><parameter id="p" value="0" constant="false"/><parameter id="q" constant="false"/>
        <parameter id="k" value="99" constant="true"/></listOfParameters>
      <listOfRules>
        <rateRule variable="p"><math {MATH}><piecewise><piece><cn>1</cn><apply><lt/>
          <csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/time">t</csymbol><cn>1</cn></apply></piece>
          <otherwise><cn>0</cn></otherwise></piecewise></math></rateRule>
        <assignmentRule variable="q"><math {MATH}><apply><ci>twice</ci><ci>p</ci></apply></math></assignmentRule>
      </listOfRules>
      <listOfReactions><reaction id="decay" reversible="false">
        <listOfReactants><speciesReference species="S" stoichiometry="1" constant="true"/></listOfReactants>
        <kineticLaw><math {MATH}><apply><times/><ci>k</ci><ci>S</ci></apply></math>
          <listOfLocalParameters><localParameter id="k" value="0.5"/></listOfLocalParameters></kineticLaw>
      </reaction></listOfReactions>"""
    spec = import_sbml(sbml(body))
    assert "decay_k" in spec.parameter_names and spec.parameter("k").value == 99
    spec = replace(spec, observables=spec.observables + (Observable("q_obs", ex.Sym("q"), "q", ""),))
    t = np.array([0, 0.5, 1, 2, 3])
    res = her2sim.simulate(spec, time=3, t_eval=t, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(res.values("S")[0], np.exp(-0.5 * t), rtol=1e-7)  # the local k, not the global
    np.testing.assert_allclose(res.values("q_obs")[0], 2 * np.minimum(t, 1), atol=1e-6)
    np.testing.assert_array_equal(res.values("time")[0], t)  # model time reported exactly


def test_reserved_ids_are_renamed_deterministically_and_exposed():
    body = """<listOfCompartments><compartment id="c" size="1" constant="true"/></listOfCompartments>
      <listOfSpecies><species id="exp" compartment="c" initialConcentration="1" hasOnlySubstanceUnits="false"
        boundaryCondition="false" constant="false"/>
        <species id="a__b" compartment="c" initialConcentration="2" hasOnlySubstanceUnits="false"
        boundaryCondition="false" constant="false"/></listOfSpecies>"""
    spec = import_sbml(sbml(body))
    mapping = name_map(spec)
    assert mapping["exp"] == "exp_" and mapping["a__b"] == "a_b" and mapping["c"] == "c"
    assert spec.species_names == ("exp_", "a_b") and import_sbml(sbml(body)).name_map == spec.name_map


REFUSED = [
    ("algebraic_rule", '<listOfRules><algebraicRule><math {m}><apply><minus/><ci>p</ci><cn>1</cn></apply></math>'
                       '</algebraicRule></listOfRules>', "algebraic rule"),
    ("state_event", '<listOfEvents><event id="ev" useValuesFromTriggerTime="true"><trigger initialValue="true" '
                    'persistent="true"><math {m}><apply><gt/><ci>p</ci><cn>1</cn></apply></math></trigger></event>'
                    '</listOfEvents>', "(state-triggered event) in 'ev'"),
    ("event_delay", '<listOfEvents><event id="ev" useValuesFromTriggerTime="true"><trigger initialValue="true" '
                    'persistent="true"><math {m}><apply><geq/><csymbol encoding="text" definitionURL='
                    '"http://www.sbml.org/sbml/symbols/time">t</csymbol><cn>1</cn></apply></math></trigger>'
                    '<delay><math {m}><cn>1</cn></math></delay></event></listOfEvents>', "event with delay in 'ev'"),
    ("delay", '<listOfRules><assignmentRule variable="p"><math {m}><apply><csymbol encoding="text" '
              'definitionURL="http://www.sbml.org/sbml/symbols/delay">d</csymbol><ci>k</ci><cn>1</cn></apply>'
              '</math></assignmentRule></listOfRules>', "MathML delay in 'assignmentRule p'"),
    ("variable_compartment", '<listOfRules><rateRule variable="c"><math {m}><cn>1</cn></math></rateRule>'
                             '</listOfRules>', "variable compartment"),
    ("factorial", '<listOfRules><assignmentRule variable="p"><math {m}><apply><factorial/><ci>k</ci></apply>'
                  '</math></assignmentRule></listOfRules>', "MathML factorial"),
]


@pytest.mark.parametrize("snippet, fragment", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_unsupported_constructs_are_refused_with_one_line_naming_them(snippet, fragment):
    body = ('<listOfCompartments><compartment id="c" size="1" constant="false"/></listOfCompartments>'
            '<listOfParameters><parameter id="p" value="0" constant="false"/>'
            '<parameter id="k" value="1" constant="true"/></listOfParameters>' + snippet.format(m=MATH))
    with pytest.raises(UnsupportedSBMLError) as info:
        import_sbml(sbml(body))
    message = str(info.value)
    assert fragment in message and "\n" not in message and isinstance(info.value, Her2simError)


def test_fast_reactions_and_stoichiometry_math_are_refused():
    fast = TWO_COMPARTMENTS.replace('reversible="false"', 'reversible="false" fast="true"').replace(
        "level3/version2/core", "level3/version1/core").replace('version="2"', 'version="1"')
    with pytest.raises(UnsupportedSBMLError, match="fast reaction in 'transport'"):
        import_sbml(fast)
    stoich = TWO_COMPARTMENTS.replace('<speciesReference species="B" stoichiometry="2"',
                                      '<speciesReference id="sB" species="B" stoichiometry="2"').replace(
        "<listOfReactions>", f'<listOfInitialAssignments><initialAssignment symbol="sB"><math {MATH}><cn>3</cn>'
        '</math></initialAssignment></listOfInitialAssignments><listOfReactions>')
    with pytest.raises(UnsupportedSBMLError, match="stoichiometry"):
        import_sbml(stoich)


def test_bad_input_is_one_clear_error():
    with pytest.raises(SBMLImportError, match="does not exist"):
        import_sbml("no/such/model.xml")
    with pytest.raises(SBMLImportError, match="not valid SBML"):
        import_sbml("<sbml><broken></sbml>")
    with pytest.raises(SBMLImportError, match="inputs: 'nope'"):
        import_sbml(RECEPTOR, inputs=["nope"])


def test_load_model_cli_check_and_simulate_accept_sbml(tmp_path):
    spec = her2sim.load_model(str(RECEPTOR), drugs=["L"])
    assert spec.drug("L").dose_parameter == "L" and spec.time_unit == "h"
    env = {"PYTHONPATH": str(ROOT / "src")}
    run = lambda *a: subprocess.run([sys.executable, "-m", "her2sim.cli", *a], capture_output=True, text=True,  # noqa: E731
                                    env={**__import__("os").environ, **env})
    out = run("check", str(RECEPTOR))
    assert out.returncode == 0 and "OK" in out.stdout
    bad = tmp_path / "bad.xml"
    bad.write_text(TWO_COMPARTMENTS.replace("<listOfReactions>", f'<listOfRules><algebraicRule><math {MATH}>'
                                            '<ci>k</ci></math></algebraicRule></listOfRules><listOfReactions>'))
    out = run("check", str(bad))
    assert out.returncode == 1 and "algebraic rule" in out.stdout
    out = run("simulate", "--model", str(RECEPTOR), "--time", "24h", "--drug", "L=5")
    assert out.returncode == 0, out.stderr
    assert "R" in out.stdout and "C" in out.stdout


def test_dose_response_screen_on_an_sbml_model_on_both_engines():
    from her2sim.screen.screen import dose_response

    by_engine = [dose_response(str(RECEPTOR), "L", [0.1, 1, 10, 100], "R@24h", engine=e, rtol=1e-8, atol=1e-10)
                 for e in ("scipy", "batch")]
    for ds in by_engine:
        fu = ds.fraction_unaffected.values[0]
        assert (ds.status.values == "ok").all() and np.all(np.diff(fu) < 0) and fu[-1] < 0.1
    np.testing.assert_allclose(by_engine[0].readout.values, by_engine[1].readout.values, rtol=1e-5)


# ----------------------------------------------------------------------------- timed events
TIME = '<csymbol encoding="text" definitionURL="http://www.sbml.org/sbml/symbols/time">t</csymbol>'
DOSING = sbml(f"""
  <listOfCompartments><compartment id="c" size="1" constant="true"/></listOfCompartments>
  <listOfSpecies><species id="S" compartment="c" initialConcentration="1" hasOnlySubstanceUnits="false"
    boundaryCondition="false" constant="false"/></listOfSpecies>
  <listOfParameters><parameter id="k" value="0.5" constant="false"/><parameter id="t_dose" value="2" constant="true"/>
    <parameter id="dose" value="3" constant="true"/></listOfParameters>
  <listOfReactions><reaction id="decay" reversible="false">
    <listOfReactants><speciesReference species="S" stoichiometry="1" constant="true"/></listOfReactants>
    <kineticLaw><math {MATH}><apply><times/><ci>k</ci><ci>S</ci></apply></math></kineticLaw></reaction></listOfReactions>
  <listOfEvents>
    <event id="bolus" useValuesFromTriggerTime="true"><trigger initialValue="false" persistent="true">
      <math {MATH}><apply><geq/>{TIME}<ci>t_dose</ci></apply></math></trigger>
      <listOfEventAssignments><eventAssignment variable="S"><math {MATH}><apply><plus/><ci>S</ci><ci>dose</ci></apply>
      </math></eventAssignment></listOfEventAssignments></event>
    <event id="faster" useValuesFromTriggerTime="true"><trigger initialValue="false" persistent="true">
      <math {MATH}><apply><gt/>{TIME}<cn>3</cn></apply></math></trigger>
      <listOfEventAssignments><eventAssignment variable="k"><math {MATH}><apply><times/><cn>2</cn><ci>k</ci></apply>
      </math></eventAssignment></listOfEventAssignments></event>
  </listOfEvents>""")


def _dosing_closed_form(t, t_dose=2.0, dose=3.0):
    s_dose = np.exp(-0.5 * t_dose) + dose  # just after the bolus
    s3 = s_dose * np.exp(-0.5 * (3 - t_dose))
    return np.where(t < t_dose, np.exp(-0.5 * t),
                    np.where(t <= 3, s_dose * np.exp(-0.5 * (t - t_dose)), s3 * np.exp(-1.0 * (t - 3))))


@pytest.mark.parametrize("engine", ["scipy", "batch"])
def test_timed_events_apply_state_and_parameter_assignments_on_both_engines(engine):
    from her2sim.solvers.batch import simulate_batch

    spec = import_sbml(DOSING)
    spec = replace(spec, observables=spec.observables + (Observable("k_now", ex.Sym("k"), "k", ""),))
    net = her2sim.compile_network(spec)
    t = np.array([0, 1, 2, 2.5, 3, 4, 5])
    if engine == "scipy":
        res = her2sim.simulate(net, time=5, t_eval=t, rtol=1e-10, atol=1e-12)
    else:
        res = simulate_batch(net, t_eval=t, rtol=1e-10, atol=1e-12).to_result(net)
    # at t = 2 (time >= 2) the output shows the bolus; at t = 3 (time > 3) not yet the faster decay
    np.testing.assert_allclose(res.values("S")[0], _dosing_closed_form(t), rtol=1e-7)
    np.testing.assert_array_equal(res.values("k_now")[0], [0.5, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0])


def test_event_times_follow_the_parameters_per_condition():
    net = her2sim.compile_network(import_sbml(DOSING))
    P = np.tile(net.p0, (2, 1))
    P[1, net.parameter_index("t_dose")] = 1.0
    np.testing.assert_array_equal(net.event_times(P), [[2.0, 3.0], [1.0, 3.0]])
    t = np.array([0, 1, 2, 4])
    res = her2sim.simulate(net, time=4, t_eval=t, rtol=1e-10, atol=1e-12,
                           conditions=[{}, {"parameters": {"t_dose": 1.0}}])
    np.testing.assert_allclose(res.values("S")[1], _dosing_closed_form(t, t_dose=1.0), rtol=1e-7)
    with pytest.raises(Her2simError, match="<= 0"):
        her2sim.simulate(net, time=4, parameters={"t_dose": 0.0})


# ----------------------------------------------------------------------------- round trip
@pytest.mark.parametrize("model, drug", [("tests/models/binding.toml", None), ("default", ("lapatinib", 300.0))],
                         ids=["binding", "default-lapatinib"])
def test_round_trip_toml_export_import_gives_the_same_trajectories(model, drug, tmp_path):
    from her2sim.io.sbml import export_model_sbml

    path = export_model_sbml(str(ROOT / model) if model.endswith(".toml") else model, tmp_path / "m.xml",
                             drugs=[drug[0]] if drug else (), preequilibrated=True)
    original = her2sim.load_model(str(ROOT / model) if model.endswith(".toml") else model,
                                  drugs=[drug[0]] if drug else ())
    imported = import_sbml(path)
    assert imported.time_unit == "h"
    t = np.linspace(0, 24, 25)
    drugs = {drug[0]: drug[1]} if drug else None
    ref = her2sim.simulate(original, drugs=drugs, time=24, t_eval=t, method="Radau", rtol=1e-10, atol=1e-12)
    params = {original.drug(drug[0]).dose_parameter: drug[1]} if drug else None
    got = her2sim.simulate(imported, parameters=params, time=24, t_eval=t, method="Radau", rtol=1e-10, atol=1e-12)
    cols = [got.species_names.index(s) for s in ref.species_names]
    scale = np.maximum(np.abs(ref.species[0]), 1e-6)
    assert np.max(np.abs(got.species[0][:, cols] - ref.species[0]) / scale) < 1e-8


# ----------------------------------------------------------------------------- SBML Test Suite
def _suite():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import sbml_test_suite

    return sbml_test_suite


needs_suite = pytest.mark.skipif(not SUITE.is_dir(), reason="SBML Test Suite not found in ../shared/data")


@needs_suite
def test_suite_runner_on_a_few_cases_passes_refuses_and_detects_a_wrong_result(tmp_path):
    suite = _suite()
    assert suite.run_case(SUITE / "00001").verdict == "passed"
    assert suite.run_case(SUITE / "00026").verdict == "unsupported"  # events
    wrong = tmp_path / "00001"
    wrong.mkdir()
    for f in (SUITE / "00001").iterdir():
        text = f.read_text()
        if f.name.endswith("-sbml-l3v2.xml"):
            text = text.replace('value="1"', 'value="1.1"')  # k1: every value after t = 0 changes
        (wrong / f.name).write_text(text)
    assert suite.run_case(wrong).verdict == "failed"


@needs_suite
@pytest.mark.slow
@pytest.mark.parametrize("engine, every", [("scipy", 1), ("batch", 3)], ids=["scipy-all", "batch-every-3rd"])
def test_every_suite_case_passes_or_is_refused(engine, every):
    """All 1821 cases on the scipy engine; every third case on the batch engine (its B = 1 runs
    cost ~5x more; `python benchmarks/sbml_test_suite.py --engine batch` runs all of them)."""
    suite = _suite()
    dirs = suite.case_dirs(SUITE)
    assert len(dirs) == 1821
    outcomes = [suite.run_case(d, engine) for d in dirs[::every]]
    failed = [f"{o.case}: {o.message}" for o in outcomes if o.verdict == "failed"]
    assert not failed, failed[:10]
    assert sum(o.verdict == "passed" for o in outcomes) >= 0.35 * len(outcomes)  # 722 of 1821 pass


# ----------------------------------------------------------------------------- Chen 2009
@pytest.mark.skipif(not CHEN.is_file(), reason="Chen_MSB2009 not found in ../shared/data")
@pytest.mark.optional
@pytest.mark.slow
def test_chen_2009_on_both_engines_matches_libroadrunner():
    roadrunner = pytest.importorskip("roadrunner", reason="libroadrunner is not installed")
    from her2sim.solvers.batch import simulate_batch

    net = her2sim.compile_network(import_sbml(CHEN))
    assert net.n_species == 501 and len(net.reaction_names) == 828  # 500 species + model time
    grid = np.array([0.0, 600, 1200, 1799])  # before the ligand step at t = 1800 (see benchmarks/bench_sbml.py)
    rr = roadrunner.RoadRunner(str(CHEN))
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = 1e-10, 1e-10
    names = list(rr.model.getFloatingSpeciesIds())
    want = np.asarray(rr.simulate(times=grid, selections=[f"[{s}]" for s in names]))
    cols = [net.species_index(s) for s in names]
    scipy_x = her2sim.simulate(net, time=grid[-1], t_eval=grid, rtol=1e-10, atol=1e-10).species[0][:, cols]
    batch = simulate_batch(net, t_eval=grid, rtol=1e-8, atol=1e-10)
    assert batch.ok.all()
    floor = 1e-6 * np.abs(want).max()
    for got, tol in ((scipy_x, 1e-6), (batch.states[0][:, cols], 1e-5)):
        assert np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)) < tol
    # the PEtab time course: ligand steps at t = 1800 (10 ms ramps, stops on both engines) and 2660
    grid = np.linspace(0.0, 9000.0, 16)
    rr.reset()
    rr.integrator.relative_tolerance, rr.integrator.absolute_tolerance = 1e-6, 1e-8
    want = np.asarray(rr.simulate(times=grid, selections=[f"[{s}]" for s in names]))
    got = her2sim.simulate(net, time=grid[-1], t_eval=grid, rtol=1e-6, atol=1e-8, method="BDF").species[0][:, cols]
    floor = 1e-6 * np.abs(want).max()
    assert np.max(np.abs(got - want) / np.maximum(np.abs(want), floor)) < 1e-3
