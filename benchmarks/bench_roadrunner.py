"""libRoadRunner on her2sim's exported SBML versus her2sim's scipy path, at matched conditions.

What is measured (see /shared/bench/peers.md for the protocol):

* The model is pre-equilibrated once (her2sim steady state, drug doses 0) and exported to SBML
  with that state as its initial concentrations; both engines start every condition from it.
* ``n`` conditions: ``k = 8`` rate parameters, each scaled by a log-uniform factor in [1/2, 2]
  (seeded). Every condition simulates 0-72 h with 73 output times.
* libRoadRunner loop: ``reset()``, set the parameters, ``simulate(0, 72, 73)`` (CVODE, BDF).
  Its absolute tolerance is set per species to ``atol`` nM (``atol_mode="concentration"``, the
  same meaning as her2sim's ``atol``; see :func:`her2sim.io.sbml.roadrunner_concentration_atol`) or
  left to roadrunner's own scalar handling (``atol_mode="roadrunner"``: the scalar times each
  species' current amount, i.e. effectively relative).
* her2sim scipy path: ``simulate(mode="loop", method="LSODA")`` with the analytic Jacobian.
* Error: max over conditions, times and species of ``|x - x_ref| / max(|x_ref|, floor)`` against
  her2sim Radau at rtol 1e-10, atol 1e-12 nM on the first ``n_reference`` conditions; the floor
  (default 1e-6 nM, ~6e-4 molecules per pL) keeps species near zero from dominating.

Run ``python benchmarks/bench_roadrunner.py [--model default] [--n 200]``. Another script can
import :func:`roadrunner_throughput` (and :func:`prepare` to share conditions and reference).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from her2sim import ModelSpec, load_model, simulate
from her2sim.model.network import Network, compile_network
from her2sim.solvers.solve import steady_state

T_END, N_POINTS = 72.0, 73
REF_RTOL, REF_ATOL = 1e-10, 1e-12
#: rate-constant units eligible for variation
_RATE_UNITS = ("1/h", "1/nM/h", "nM/h")


@dataclass
class BenchSetup:
    """Everything the engines share: the pre-equilibrated model, its SBML and the conditions."""

    spec: ModelSpec                      # species initials = pre-equilibrated state
    network: Network
    sbml_path: Path
    names: tuple[str, ...]               # varied parameters
    values: np.ndarray                   # (n, k) internal units
    grid: np.ndarray = field(default_factory=lambda: np.linspace(0.0, T_END, N_POINTS))
    n_reference: int = 10
    floor: float = 1e-6
    _reference: np.ndarray | None = None
    _reference_s: float = 0.0

    @property
    def n(self) -> int:
        return len(self.values)

    def conditions(self, idx) -> list[dict]:
        return [{"parameters": dict(zip(self.names, map(float, self.values[i])))} for i in idx]

    def reference(self) -> np.ndarray:
        """(n_reference, T, n_species) her2sim Radau at rtol 1e-10 (computed once)."""
        if self._reference is None:
            t0 = time.perf_counter()
            res = simulate(self.network, conditions=self.conditions(range(self.n_reference)), t_eval=self.grid,
                           preequilibrate=False, method="Radau", mode="loop", rtol=REF_RTOL, atol=REF_ATOL)
            self._reference_s = time.perf_counter() - t0
            self._reference = res.species
        return self._reference

    def max_rel_error(self, species: np.ndarray) -> float:
        """Max relative error of (m, T, n_species) trajectories of the first m conditions."""
        ref = self.reference()
        m = min(len(species), len(ref))
        err = np.abs(species[:m] - ref[:m]) / np.maximum(np.abs(ref[:m]), self.floor)
        return float(np.nanmax(err))


def varied_parameters(spec: ModelSpec, k: int = 8, seed: int = 0) -> tuple[str, ...]:
    """``k`` rate constants (non-input, non-zero), drawn with ``seed`` from the model's parameters."""
    eligible = sorted(p.name for p in spec.parameters
                      if not p.is_input and p.value > 0 and p.internal_unit in _RATE_UNITS)
    if len(eligible) < k:
        raise ValueError(f"model {spec.name!r} has only {len(eligible)} varied-able rate constants, need {k}")
    rng = np.random.default_rng(seed)
    return tuple(sorted(rng.choice(eligible, size=k, replace=False).tolist()))


def prepare(model="default", n: int = 200, seed: int = 0, *, k: int = 8, parameters=None, values=None,
            n_reference: int = 10, floor: float = 1e-6, workdir: str | Path | None = None) -> BenchSetup:
    """Pre-equilibrate, export SBML and draw the conditions.

    Parameters
    ----------
    model : bundled name, path or ModelSpec.
    n, seed, k : number of conditions, RNG seed, number of varied parameters.
    parameters, values : give the varied parameter names and an (n, k) array of their values in
        internal units instead (e.g. to reuse another benchmark's conditions).
    n_reference : conditions with a Radau reference. floor : nM, see the module docstring.
    """
    from her2sim.io.sbml import export_sbml

    spec = model if isinstance(model, ModelSpec) else load_model(model)
    net = compile_network(spec)
    p = net.p0.copy()
    for d in spec.drugs:
        p[net.parameter_index(d.dose_parameter)] = 0.0
    state = steady_state(net, net.x0, p)
    spec_pre = dataclasses.replace(spec, species=tuple(
        dataclasses.replace(s, initial=float(x)) for s, x in zip(spec.species, state)))
    workdir = Path(workdir or tempfile.mkdtemp(prefix="her2sim_bench_"))
    path = export_sbml(spec_pre, workdir / f"{spec.name}.xml")
    network = compile_network(spec_pre)
    if parameters is None:
        names = varied_parameters(spec, k, seed)
        rng = np.random.default_rng(seed)
        factors = np.exp(rng.uniform(np.log(0.5), np.log(2.0), size=(n, len(names))))
        nominal = np.array([spec.parameter(nm).value for nm in names])
        vals = nominal * factors
    else:
        names = tuple(parameters)
        vals = np.asarray(values, dtype=float)
        if vals.ndim != 2 or vals.shape[1] != len(names):
            raise ValueError(f"values must have shape (n, {len(names)}), got {vals.shape}")
    return BenchSetup(spec_pre, network, path, names, vals, n_reference=min(n_reference, len(vals)), floor=floor)


def roadrunner_throughput(model="default", n: int = 200, rtol: float = 1e-6, seed: int = 0, *, atol: float = 1e-9,
                          atol_mode: str = "concentration", setup: BenchSetup | None = None,
                          check_error: bool = True, return_states: bool = False) -> dict:
    """Conditions per second of a libRoadRunner loop on the exported model, with its error.

    Returns
    -------
    dict with engine, version, model, n, rtol, atol, atol_mode, seconds, conditions_per_s,
    load_s (SBML load + LLVM JIT), max_rel_error (vs Radau rtol 1e-10 on the first
    ``setup.n_reference`` conditions; None if ``check_error=False``), floor, parameters (the
    varied names) and failed (conditions CVODE could not integrate; NaN in the error).
    Building the setup (pre-equilibration, SBML export, Radau reference on 10 conditions) takes
    ~20 s; pass ``setup=prepare(...)`` to share it between calls.
    """
    import roadrunner

    from her2sim.io.sbml import roadrunner_concentration_atol

    setup = setup or prepare(model, n, seed)
    t0 = time.perf_counter()
    rr = roadrunner.RoadRunner(str(setup.sbml_path))
    load_s = time.perf_counter() - t0
    rr.integrator.relative_tolerance = rtol
    if atol_mode == "concentration":
        roadrunner_concentration_atol(rr, atol)
    elif atol_mode == "roadrunner":
        rr.integrator.absolute_tolerance = atol
    else:
        raise ValueError(f"atol_mode must be 'concentration' or 'roadrunner', got {atol_mode!r}")
    rr.integrator.maximum_num_steps = 100_000
    species = setup.spec.species_names
    rr.timeCourseSelections = [f"[{s}]" for s in species]
    out = np.empty((setup.n, len(setup.grid), len(species)))
    names = setup.names
    failed = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for i, row in enumerate(setup.values):
        rr.reset()
        for name, v in zip(names, row):
            rr.setValue(name, float(v))
        try:
            out[i] = rr.simulate(0.0, T_END, N_POINTS)
        except RuntimeError:  # CVODE failure: count it, keep NaN
            out[i] = np.nan
            failed += 1
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
    return {
        "engine": "libRoadRunner (CVODE) loop", "version": roadrunner.__version__, "model": setup.spec.name,
        "n": setup.n, "rtol": rtol, "atol": atol, "atol_mode": atol_mode, "seconds": seconds,
        "cpu_seconds": cpu_seconds, "conditions_per_s": setup.n / seconds, "load_s": load_s,
        "max_rel_error": setup.max_rel_error(out) if check_error else None, "floor": setup.floor,
        "parameters": list(names), "failed": failed, **({"states": out} if return_states else {}),
    }


def scipy_throughput(setup: BenchSetup, rtol: float = 1e-6, *, atol: float = 1e-9, method: str = "LSODA",
                     n: int | None = None) -> dict:
    """her2sim ``simulate(mode='loop')`` on the first ``n`` conditions of ``setup``."""
    n = setup.n if n is None else min(n, setup.n)
    t0 = time.perf_counter()
    res = simulate(setup.network, conditions=setup.conditions(range(n)), t_eval=setup.grid, preequilibrate=False,
                   method=method, mode="loop", rtol=rtol, atol=atol)
    seconds = time.perf_counter() - t0
    return {"engine": f"her2sim scipy {method} loop", "n": n, "rtol": rtol, "atol": atol, "atol_mode": "concentration",
            "seconds": seconds, "conditions_per_s": n / seconds, "load_s": 0.0,
            "max_rel_error": setup.max_rel_error(res.species), "floor": setup.floor}


def _versions() -> str:
    import scipy

    import her2sim

    parts = [f"python {platform.python_version()}", f"numpy {np.__version__}", f"scipy {scipy.__version__}",
             f"her2sim {her2sim.__version__}"]
    try:
        import roadrunner

        parts.append(f"libroadrunner {roadrunner.__version__}")
    except ImportError:
        parts.append("libroadrunner not installed")
    return ", ".join(parts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="default", help="bundled model name or TOML path (default: default)")
    ap.add_argument("--n", type=int, default=200, help="conditions for libRoadRunner (default 200)")
    ap.add_argument("--n-scipy", type=int, default=50, help="conditions for the scipy path (default 50)")
    ap.add_argument("--n-reference", type=int, default=10, help="conditions with a Radau 1e-10 reference")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rtol", type=float, nargs="+", default=[1e-6, 1e-4])
    ap.add_argument("--atol", type=float, default=1e-9)
    args = ap.parse_args(argv)

    print(f"machine: {platform.machine()} {os.cpu_count()} CPU(s), {platform.platform()}")
    print(f"versions: {_versions()}")
    t0 = time.perf_counter()
    setup = prepare(args.model, args.n, args.seed, n_reference=args.n_reference)
    print(f"model {setup.spec.name!r}: {len(setup.spec.species)} species, {len(setup.spec.reactions)} reactions; "
          f"pre-equilibration + SBML export {time.perf_counter() - t0:.2f} s")
    print(f"varied (x 1/2..2 log-uniform, seed {args.seed}): {', '.join(setup.names)}")
    setup.reference()
    print(f"reference: her2sim Radau rtol {REF_RTOL:g} atol {REF_ATOL:g} on {setup.n_reference} conditions, "
          f"{setup._reference_s:.1f} s; error floor {setup.floor:g} nM")

    rows = []
    for rtol in args.rtol:
        try:
            rows.append(roadrunner_throughput(rtol=rtol, atol=args.atol, setup=setup))
            rows.append(roadrunner_throughput(rtol=rtol, atol=args.atol, setup=setup, atol_mode="roadrunner"))
        except ImportError:
            print("libroadrunner is not installed (pip install libroadrunner): skipping its rows")
        rows.append(scipy_throughput(setup, rtol, atol=args.atol, n=args.n_scipy))

    print()
    head = f"{'engine':<30} {'atol meaning':<22} {'rtol':>7} {'n':>5} {'cond/s':>9} {'max rel err':>12} {'one-off s':>9}"
    print(head)
    print("-" * len(head))
    for r in rows:
        meaning = f"{r['atol']:g} nM" if r["atol_mode"] == "concentration" else f"{r['atol']:g} x state (rr)"
        print(f"{r['engine']:<30} {meaning:<22} {r['rtol']:>7.0e} {r['n']:>5} {r['conditions_per_s']:>9.1f} "
              f"{r['max_rel_error']:>12.2e} {r['load_s']:>9.2f}")
    print()
    for rtol in args.rtol:
        rr = next((r for r in rows if r["rtol"] == rtol and r["engine"].startswith("libRoadRunner")
                   and r["atol_mode"] == "concentration"), None)
        sp = next(r for r in rows if r["rtol"] == rtol and r["engine"].startswith("her2sim"))
        if rr:
            print(f"rtol {rtol:g}: libRoadRunner / her2sim scipy LSODA = "
                  f"{rr['conditions_per_s'] / sp['conditions_per_s']:.1f}x (same rtol; compare errors too)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
