"""The compiled C kernels in the runs that share the runner: a KernelCache pickles (library paths and
hashes, re-opened in a worker, rebuilt with one warning when a file is gone), a sweep chunk and a fit
objective evaluation use the run's cache and give the NumPy path's numbers, run_kernels() builds only
when a run is large enough."""

import gc
import glob
import math
import os
import pickle
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest

from her2sim import compile_network, load_model
from her2sim.fit import Objective, read_problem
from her2sim.solvers import batch as batch_module
from her2sim.solvers import ckernels
from her2sim.solvers.batch import lu_plan, run_kernels, simulate_batch
from her2sim.sweep import sweep as sw
from her2sim.sweep.load import load_sweep_spec

MODELS = Path(__file__).parent / "models"
needs_cc = pytest.mark.skipif(ckernels.find_compiler() is None, reason="no C compiler (cc/gcc) on PATH")


@pytest.fixture
def count_c_calls(monkeypatch):
    """Counts calls of the compiled dense output (one per step with an output time: the C path ran)."""
    calls = []
    original = ckernels.CpuKernels.dense

    def counted(self, *args):
        calls.append(1)
        return original(self, *args)
    monkeypatch.setattr(ckernels.CpuKernels, "dense", counted)
    return calls


@needs_cc
def test_a_pickled_cache_reopens_its_libraries_and_rebuilds_a_missing_one():
    net = compile_network(load_model(MODELS / "mm.toml"))
    P = net.p0 * np.exp(np.random.default_rng(0).uniform(-0.5, 0.5, (5, net.n_params)))
    cache = ckernels.KernelCache()
    first = simulate_batch(net, P=P, t_eval=[1.0, 4.0], fused=cache, certify=None)
    folder = os.path.dirname(os.path.dirname(next(iter(cache.get(net, lu_plan(net), "markowitz").files.values()))))
    blob = pickle.dumps(cache)
    twin = pickle.loads(pickle.dumps(net))  # as in a worker: another Network object, the same model
    again = simulate_batch(twin, P=P, t_eval=[1.0, 4.0], fused=pickle.loads(blob), certify=None)
    assert first.attrs["fused"] and again.attrs["fused"]
    np.testing.assert_array_equal(again.states, first.states)  # the same libraries: the same numbers
    for path in glob.glob(os.path.join(folder, "*", "h2_jac.so")):
        os.remove(path)
    with pytest.warns(RuntimeWarning, match="h2_jac.so is missing or changed; rebuilding") as rec:
        rebuilt = simulate_batch(twin, P=P, t_eval=[1.0, 4.0], fused=pickle.loads(blob), certify=None)
    assert len(rec) == 1 and rebuilt.attrs["fused"]
    np.testing.assert_allclose(rebuilt.states, first.states, rtol=1e-12)
    del cache, rec, rebuilt
    gc.collect()
    assert not os.path.exists(folder)  # the owner's folder goes with it


@needs_cc
def test_a_sweep_chunk_uses_the_runs_kernels_and_matches_numpy(tmp_path, count_c_calls):
    spec_file = tmp_path / "s.toml"
    spec_file.write_text(f"""
[sweep]
name = "c"
model = "{MODELS / 'screen_product.toml'}"
time = "24 h"
readouts = ["R@12h", "auc:R", "viable_cells@24h"]
chunk = 6
[drugs.screen_a]
doses = ["0 nM", "10 nM", "100 nM"]
[samples]
method = "sobol"
n = 2
seed = 1
[samples.parameters]
kU = {{ start = 0.5, stop = 2, scale = "log", relative = true }}
""")
    spec = load_sweep_spec(spec_file)
    networks = sw._networks(spec)
    plain = sw._compute_chunk(sw._Context(spec, networks), 0)
    assert not count_c_calls  # six members: "auto" stays on NumPy
    cache = ckernels.KernelCache()
    compiled = sw._compute_chunk(sw._Context(spec, networks, kernels=cache), 0)
    assert len(cache) == 1 and count_c_calls
    assert (compiled.status == 0).all()
    np.testing.assert_allclose(compiled.values, plain.values, rtol=1e-9, atol=1e-12)


@needs_cc
def test_a_fit_objective_evaluation_uses_the_kernels_and_matches_numpy(tmp_path, count_c_calls):
    folder = tmp_path / "p"
    folder.mkdir()
    tsv = lambda rows: "\n".join("\t".join(str(c) for c in r) for r in rows) + "\n"  # noqa: E731
    (folder / "problem.yaml").write_text(
        "format_version: 1\nparameter_file: parameters.tsv\nproblems:\n- condition_files: [conditions.tsv]\n"
        "  measurement_files: [measurements.tsv]\n  observable_files: [observables.tsv]\n"
        f"  sbml_files: [{MODELS / 'decay.toml'}]\n")
    (folder / "observables.tsv").write_text(tsv([
        ("observableId", "observableFormula", "noiseFormula", "observableTransformation", "noiseDistribution"),
        ("y", "X", "1", "lin", "normal")]))
    (folder / "conditions.tsv").write_text(tsv([("conditionId", "X"), ("c1", 100), ("c2", 50)]))
    (folder / "parameters.tsv").write_text(tsv([
        ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue", "estimate"),
        ("k", "log10", 0.01, 10, 0.3, 1)]))
    (folder / "measurements.tsv").write_text(tsv(
        [("observableId", "simulationConditionId", "measurement", "time")]
        + [("y", c, x0 * math.exp(-0.3 * t) + 0.1, t) for c, x0 in (("c1", 100), ("c2", 50)) for t in (1, 2, 4)]))
    problem = read_problem(folder / "problem.yaml")
    theta = problem.nominal()[None] * np.array([[0.8], [1.0], [1.3]])
    plain = Objective(problem).evaluate(theta)
    assert not count_c_calls
    cache = ckernels.KernelCache()
    compiled = Objective(problem, kernels=cache).evaluate(theta)
    assert len(cache) == 1 and count_c_calls
    assert compiled.ok.all()
    np.testing.assert_allclose(compiled.nllh, plain.nllh, rtol=1e-9)


@needs_cc
def test_run_kernels_builds_only_for_a_run_that_pays(monkeypatch):
    net = compile_network(load_model(MODELS / "mm.toml"))
    assert run_kernels([net], 50, 1e-6) is None  # far below the break-even: no build, simulate_batch decides
    monkeypatch.setattr(batch_module, "AUTO_FUSED_MEMBERS", 100)
    assert run_kernels([net], 60, 1e-4) is None and len(run_kernels([net], 60, 1e-6)) == 1  # half at tight rtol
    pattern = os.path.join(tempfile.gettempdir(), "her2sim-kernelcache-*")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cache = run_kernels([net], 100, 1e-4)
    assert cache.has(net, "markowitz") and glob.glob(pattern)
