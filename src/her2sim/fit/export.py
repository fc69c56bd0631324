"""Write her2sim calibration problems as PEtab v1 (SBML model + tables), runnable in other PEtab tools.

:func:`write_problem` writes any problem given as plain rows; :func:`lapatinib_example` builds the
bundled example in ``models/calibration/her2_lapatinib/``: the default HER2 network with lapatinib
exported to SBML (:func:`her2sim.io.sbml.export_model_sbml`) from its drug-free rest state, then
four lapatinib doses; pAKT and pERK read out over 24 h. The estimated parameters (lapatinib's
inhibition constants) act only with drug, so the rest state does not depend on them and no PEtab
pre-equilibration is needed (the full model has no steady state to pre-equilibrate to in other
tools: its viable-cell count grows; her2sim holds such species fixed while pre-equilibrating). Its measurements are *synthetic*:
her2sim's own simulation at the nominal parameters plus seeded Gaussian noise (5 % of each
observable's range), so that fitting it recovers known values; it is a template for real data.

Regenerate: ``python -m her2sim.fit.export models/calibration/her2_lapatinib``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

PARAMETER_COLUMNS = ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue", "estimate")


def _tsv(path: Path, header: Sequence[str], rows: Sequence[Mapping]) -> None:
    lines = ["\t".join(header)]
    for r in rows:
        lines.append("\t".join("" if r.get(c) is None else str(r.get(c)) for c in header))
    path.write_text("\n".join(lines) + "\n")


def write_problem(out, *, model_file: str, conditions: Sequence[Mapping], observables: Sequence[Mapping],
                  measurements: Sequence[Mapping], parameters: Sequence[Mapping], name: str = "problem") -> Path:
    """Write the four tables and the problem YAML to ``out`` (the SBML ``model_file`` must be there);
    returns the YAML path. Rows are mappings keyed by PEtab column names."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cond_cols = ["conditionId"] + sorted({k for r in conditions for k in r} - {"conditionId"})
    _tsv(out / "conditions.tsv", cond_cols, conditions)
    _tsv(out / "observables.tsv", ("observableId", "observableFormula", "noiseFormula", "observableTransformation",
                                   "noiseDistribution"), observables)
    _tsv(out / "measurements.tsv", ("observableId", "preequilibrationConditionId", "simulationConditionId",
                                    "measurement", "time", "observableParameters", "noiseParameters"), measurements)
    _tsv(out / "parameters.tsv", PARAMETER_COLUMNS, parameters)
    yaml_path = out / f"{name}.yaml"
    yaml_path.write_text(
        "format_version: 1\nparameter_file: parameters.tsv\nproblems:\n- condition_files: [conditions.tsv]\n"
        "  measurement_files: [measurements.tsv]\n  observable_files: [observables.tsv]\n"
        f"  sbml_files: [{model_file}]\n")
    return yaml_path


#: (parameter, lower, upper) estimated in the example, log10 scale
EXAMPLE_ESTIMATED = (("lapatinib_Ki_HER2", 0.1, 1000.0), ("lapatinib_Ki_EGFR", 0.1, 1000.0))
EXAMPLE_DOSES_nM = (0.0, 30.0, 300.0, 3000.0)
EXAMPLE_TIMES_h = (0.5, 1.0, 2.0, 4.0, 8.0, 24.0)


def lapatinib_example(out, *, seed: int = 0) -> Path:
    """Write the her2sim lapatinib calibration example to ``out``; returns the problem YAML path."""
    from ..model.load import load_model
    from ..io.sbml import export_model_sbml
    from ..solvers.solve import simulate

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    export_model_sbml("default", out / "model.xml", drugs=["lapatinib"], preequilibrated=True)
    spec = load_model("default", drugs=["lapatinib"])
    dose_param = spec.drug("lapatinib").dose_parameter
    rng = np.random.default_rng(seed)
    conditions = [{"conditionId": f"lapatinib_{int(d)}nM", dose_param: d} for d in EXAMPLE_DOSES_nM]
    observables = [{"observableId": f"obs_{o}", "observableFormula": o, "noiseFormula": f"noiseParameter1_obs_{o}",
                    "observableTransformation": "lin", "noiseDistribution": "normal"} for o in ("pAKT", "pERK")]
    sims = {d: simulate(spec, drugs={"lapatinib": f"{d} nM"}, t_eval=list(EXAMPLE_TIMES_h),
                        time=f"{EXAMPLE_TIMES_h[-1]} h", rtol=1e-10, atol=1e-12) for d in EXAMPLE_DOSES_nM}
    measurements = []
    for o in ("pAKT", "pERK"):
        span = max(float(np.ptp(np.concatenate([np.ravel(sims[d].values(o)) for d in EXAMPLE_DOSES_nM]))), 1e-6)
        sigma = 0.05 * span
        for d in EXAMPLE_DOSES_nM:
            for t, v in zip(sims[d].time, np.ravel(sims[d].values(o))):
                measurements.append({"observableId": f"obs_{o}", "preequilibrationConditionId": "",
                                     "simulationConditionId": f"lapatinib_{int(d)}nM",
                                     "measurement": repr(float(v + rng.normal(0, sigma))), "time": repr(float(t)),
                                     "observableParameters": "", "noiseParameters": repr(sigma)})
    parameters = [{"parameterId": p, "parameterScale": "log10", "lowerBound": lo, "upperBound": hi,
                   "nominalValue": repr(spec.parameter(p).value), "estimate": 1} for p, lo, hi in EXAMPLE_ESTIMATED]
    return write_problem(out, model_file="model.xml", conditions=conditions, observables=observables,
                         measurements=measurements, parameters=parameters, name="her2_lapatinib")


if __name__ == "__main__":
    import sys

    print(lapatinib_example(sys.argv[1] if len(sys.argv) > 1 else "models/calibration/her2_lapatinib"))
