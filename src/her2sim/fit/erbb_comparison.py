"""her2sim's signalling network and Chen et al. 2009 (Mol Syst Biol 5:239) on the same experiments.

A comparison, not a fit: both models run at their own parameters (her2sim: the model files of the
signalling calibration problem, ``models/calibration/signalling_timecourses/model.toml``; Chen: the
values in its SBML file from the PEtab benchmark collection). The only numbers estimated are the
observation scale and offset per model x cell line x observable (linear least squares, scale >= 0),
the observation model of the signalling problem. They are estimated from that problem's *training*
points only, so the held-out SK-BR-3 HRG arm (``measurements_validation.tsv``) is a prediction for
both models.

Forward direction (:func:`compare`): 10 nM EGF or HRG, 0-120 min, in the lines of the signalling
problem (BT-474, SK-BR-3, MCF-7; MDA-MB-231 is left out by that problem because neither model has
its KRAS/BRAF mutations). her2sim uses the line's receptor numbers from the problem's
``conditions.tsv``, pre-equilibrated unstimulated. Chen runs its own protocol (initial amounts at
t = 0, ligand step at t = 1800 s) with (a) its nominal receptor amounts (A431-fitted, the same run for
every line) and (b) ErbB1-4 set to the line's receptor numbers ("line-specific").

Reverse direction (:func:`reverse`): her2sim on Chen's own A431 experiments (the PEtab benchmark's
conditions: EGF or HRG doses; pAKT and pERK), with Chen's ErbB1-4 amounts, against Chen's data.

Units: her2sim works in nM and hours; Chen's ligand inputs are mol/L (its binding rate is
``c1 * 1e7 /M/s``; the benchmark's condition table writes 5 nM as 5e-9), its species are molecules
per cell and its time is seconds. Molecules per cell = nM x cell volume x N_A (the her2sim model's
``cell`` compartment).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from ..model import expr as ex
from ..model.load import load_model
from ..model.network import compile_network
from ..solvers.solve import simulate

AVOGADRO = 6.02214076e23
#: SBML ids of Chen 2009's ligand inputs (constant parameters in mol/L; c1 binds ErbB1, c514 ErbB3/ErbB4)
CHEN_LIGANDS = {"EGF": "c1", "HRG": "c514"}
#: SBML species *names* of Chen's free receptors -> her2sim's expression parameters
CHEN_RECEPTORS = {"ErbB1": "EGFR_expression", "ErbB2": "HER2_expression", "ErbB3": "HER3_expression",
                  "ErbB4": "HER4_expression"}
CHEN_T_LIGAND_S = 1800.0     # Chen's ligand step (the Step* assignment rules of the SBML)
#: the signalling problem's observables -> Chen's PEtab observables
OBSERVABLES = {"obs_pAkt": "AKT_PP", "obs_pERK": "ERK_PP"}
#: Chen's observables are divided by the initial amount of these species (its AKT and ERK totals)
CHEN_TOTALS = {"obs_pAkt": "AKT", "obs_pERK": "ERK"}
LIGANDS = ("EGF", "HRG")
MODELS = ("her2sim", "Chen nominal", "Chen line-specific")


def _root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_paths() -> dict:
    """The signalling problem folder and the Chen_MSB2009 PEtab folder of this checkout."""
    root = _root()
    return {"problem_dir": root / "models" / "calibration" / "signalling_timecourses",
            "chen_dir": root.parent / "shared" / "data" / "petab-benchmarks" / "Chen_MSB2009"}


def _tsv(path: Path):
    import pandas as pd

    if not Path(path).is_file():
        raise InvalidArgument(f"{path}: file not found; pass problem_dir/chen_dir pointing at the PEtab folders")
    return pd.read_csv(path, sep="\t")


# ----------------------------------------------------------------------------- data
def imoto_data(problem_dir) -> "pandas.DataFrame":  # noqa: F821
    """The signalling problem's normalised points: columns line, ligand, observable, time_min,
    replicate, value, split ('train' / 'validation'), one row per replicate point."""
    import pandas as pd

    frames = []
    for split in ("train", "validation"):
        m = _tsv(Path(problem_dir) / f"measurements_{split}.tsv")
        line, ligand = zip(*(c.split("_", 1) for c in m["simulationConditionId"]))
        frames.append(pd.DataFrame({"line": line, "ligand": ligand, "observable": m["observableId"],
                                    "time_min": np.round(m["time"].to_numpy() * 60.0, 6),
                                    "replicate": m["replicateId"], "value": m["measurement"], "split": split}))
    return pd.concat(frames, ignore_index=True)


def line_settings(problem_dir) -> dict:
    """{line: {parameter: value in nM}} from the unstimulated rows of the problem's conditions.tsv."""
    c = _tsv(Path(problem_dir) / "conditions.tsv").set_index("conditionId")
    return {cid.rsplit("_", 1)[0]: {k: float(v) for k, v in row.items()}
            for cid, row in c.iterrows() if cid.endswith("_unstimulated")}


def _formulas(problem_dir) -> dict:
    """{observable id: node} of the problem's observables with scale 1 and offset 0."""
    table = _tsv(Path(problem_dir) / "observables.tsv")
    out = {}
    for oid, text in zip(table["observableId"], table["observableFormula"]):
        node = ex.parse(text, where=f"observables.tsv {oid}")
        out[oid] = ex.substitute(node, {f"observableParameter1_{oid}": ex.Num(1.0),
                                        f"observableParameter2_{oid}": ex.Num(0.0)})
    return out


def evaluate_observables(network, nodes: dict, states: np.ndarray, p: np.ndarray) -> dict:
    """{observable: (..., T) values} of nodes over states (..., T, n_species) at parameters p."""
    sidx = {n: i for i, n in enumerate(network.species_names)}
    pidx = {n: j for j, n in enumerate(network.parameter_names)}
    flat = states.reshape(-1, states.shape[-1])
    pT = np.repeat(p[:, None], flat.shape[0], axis=1)
    out = {}
    for oid, node in nodes.items():
        f = ex.compile_expr(ex.simplify(ex.expand(node)), sidx, pidx)
        out[oid] = np.broadcast_to(np.asarray(f(np.ascontiguousarray(flat.T), pT), float),
                                   (flat.shape[0],)).reshape(states.shape[:-1])
    return out


# ----------------------------------------------------------------------------- her2sim
def run_her2sim(problem_dir, settings: dict, doses_nM: list, times_min, *, rtol: float = 1e-8,
                atol: float = 1e-10) -> dict:
    """her2sim's signalling model (the problem's ``model.toml``) for one cell background.

    settings : {parameter: nM} of the unstimulated cells (receptor expressions, IGF1, ligands 0).
    doses_nM : list of {"EGF": nM, "HRG": nM} stimulations applied at t = 0 to the rest state.
    Returns {observable id: (len(doses), T) array} (scale 1, offset 0).
    """
    spec = load_model(Path(problem_dir) / "model.toml")
    net = compile_network(spec)
    unknown = sorted(set(settings) - set(net.parameter_names))
    if unknown:
        raise InvalidArgument(f"settings: {unknown} are not parameters of {Path(problem_dir) / 'model.toml'}")
    t_h = np.asarray(times_min, float) / 60.0
    rest = simulate(net, time=t_h[-1], t_eval=[0.0], parameters=settings, preequilibrate=True,
                    rtol=rtol, atol=atol).species[0, 0]
    conds = [{"parameters": {**settings, **d}} for d in doses_nM]
    res = simulate(net, time=t_h[-1], t_eval=t_h, conditions=conds, initial_state=rest, preequilibrate=False,
                   method="LSODA", rtol=rtol, atol=atol)
    nodes = _formulas(problem_dir)
    out = {oid: np.empty((len(conds), len(t_h))) for oid in nodes}
    for k, c in enumerate(conds):
        p = net.p0.copy()
        for name, value in c["parameters"].items():
            p[net.parameter_index(name)] = value
        for oid, v in evaluate_observables(net, nodes, res.species[k], p).items():
            out[oid][k] = v
    return out


# ----------------------------------------------------------------------------- Chen 2009
@dataclass(frozen=True)
class ChenModel:
    """Chen 2009 imported through her2sim's SBML importer.

    network : the compiled network (time in s, species in molecules per cell).
    receptors : {her2sim expression parameter: her2sim species name of Chen's free receptor}.
    observables : {signalling-problem observable id: node}: Chen's PEtab AKT_PP / ERK_PP divided by
        the initial AKT / ERK amount, i.e. the doubly phosphorylated fraction (her2sim's observables
        are fractions too).
    sbml : path of the SBML file.
    """

    network: object
    receptors: dict
    observables: dict
    sbml: Path

    @classmethod
    def load(cls, chen_dir) -> "ChenModel":
        import libsbml

        from ..io.sbml_import import import_sbml, name_map

        chen_dir = Path(chen_dir)
        sbml = chen_dir / "model_Chen_MSB2009.xml"
        if not sbml.is_file():
            raise InvalidArgument(f"chen_dir: {sbml} not found; pass the Chen_MSB2009 PEtab folder")
        spec = import_sbml(sbml)
        names = name_map(spec)
        model = libsbml.readSBML(str(sbml)).getModel()
        receptors = {}
        for s in model.getListOfSpecies():
            if s.getName() in CHEN_RECEPTORS and s.getInitialConcentration() > 0:
                receptors[CHEN_RECEPTORS[s.getName()]] = names.get(s.getId(), s.getId())
        if len(receptors) != len(CHEN_RECEPTORS):
            raise InvalidArgument(f"{sbml.name}: expected free receptors named {sorted(CHEN_RECEPTORS)}, "
                                  f"found {sorted(receptors)}")
        found = [(s.getName(), s.getInitialConcentration()) for s in model.getListOfSpecies()
                 if s.getName() in CHEN_TOTALS.values() and s.getInitialConcentration() > 0]
        totals = dict(found)
        if len(found) != len(CHEN_TOTALS) or sorted(totals) != sorted(CHEN_TOTALS.values()):
            raise InvalidArgument(f"{sbml.name}: expected species named {sorted(CHEN_TOTALS.values())}")
        table = _tsv(chen_dir / "observables_Chen_MSB2009.tsv").set_index("observableId")
        observables = {}
        for oid, cid in OBSERVABLES.items():
            node = ex.parse(table.loc[cid, "observableFormula"], where=f"Chen observable {cid}")
            # the PEtab scale placeholder -> the protein's total, so the output is the phosphorylated fraction
            node = ex.substitute(node, {f"observableParameter1_{cid}": ex.Num(totals[CHEN_TOTALS[oid]])})
            observables[oid] = ex.substitute(node, {k: ex.Sym(v) for k, v in names.items() if k != v})
        return cls(compile_network(spec), receptors, observables, sbml)

    def receptor_amounts(self) -> dict:
        """{her2sim expression parameter: Chen's nominal molecules per cell}."""
        x0 = self.network.x0
        return {k: float(x0[self.network.species_index(s)]) for k, s in self.receptors.items()}

    def run(self, doses_M: list, times_min, *, receptors: dict | None = None, rtol: float = 1e-6,
            atol: float = 1e-3) -> dict:
        """Chen's protocol: initial state at t = 0, ligands switched on at t = 1800 s.

        doses_M : list of {"EGF": mol/L, "HRG": mol/L}; receptors : {expression parameter: molecules
        per cell} overriding Chen's ErbB1-4 initial amounts (None: nominal). atol is in molecules per
        cell (species are 1e2-1e9): rtol 1e-6, atol 1e-3 agree with rtol 1e-8, atol 1e-6 to 3e-7 of
        the observables' maximum and take half the time.
        Returns {observable id: (len(doses), T) array} at ``times_min`` after the ligand step.
        """
        net = self.network
        x0 = net.x0.copy()
        for name, molecules in (receptors or {}).items():
            x0[net.species_index(self.receptors[name])] = molecules
        t_s = CHEN_T_LIGAND_S + np.asarray(times_min, float) * 60.0
        grid = np.concatenate([[0.0], t_s])
        out = {oid: np.empty((len(doses_M), len(t_s))) for oid in self.observables}
        for k, dose in enumerate(doses_M):
            params = {CHEN_LIGANDS[lig]: float(v) for lig, v in dose.items()}
            with _one_blas_thread():
                res = simulate(net, time=grid[-1], t_eval=grid, parameters=params, initial_state=x0,
                               method="BDF", rtol=rtol, atol=atol)
            p = net.p0.copy()
            for name, value in params.items():
                p[net.parameter_index(name)] = value
            for oid, v in evaluate_observables(net, self.observables, res.species[0][1:], p).items():
                out[oid][k] = v
        return out


def _one_blas_thread():
    """BLAS limited to one thread for the duration (threadpoolctl, if installed): the 501 x 501 dense
    LU of each BDF step runs 3-8x slower with a thread per core on a loaded machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        from contextlib import nullcontext

        return nullcontext()
    return threadpool_limits(1)


def molecules_per_nM(problem_dir) -> float:
    """Molecules per cell of 1 nM in the her2sim model's cell compartment."""
    spec = load_model(Path(problem_dir) / "model.toml")
    cell = [c for c in spec.compartments if c.name == "cell"]
    if not cell:
        raise InvalidArgument(f"{problem_dir}/model.toml has no 'cell' compartment")
    return 1e-9 * cell[0].size_L * AVOGADRO


# ----------------------------------------------------------------------------- observation model
def observation_fit(sim: np.ndarray, data: np.ndarray) -> tuple:
    """Least-squares ``data ~ scale * sim + offset`` with scale >= 0; returns (scale, offset)."""
    sim, data = np.asarray(sim, float), np.asarray(data, float)
    A = np.column_stack([sim, np.ones_like(sim)])
    (a, b), *_ = np.linalg.lstsq(A, data, rcond=None)
    if not a > 0:  # a flat or anti-correlated simulation: the best non-negative scale is 0
        a, b = 0.0, float(np.mean(data))
    return float(a), float(b)


@dataclass(frozen=True)
class Comparison:
    """Both models against one data set.

    curves : model, line, ligand, observable, time_min, raw (model units), value (after the
        observation model): fine time grid for plotting.
    points : the data rows (see :func:`imoto_data`) with one column per model (value at that point).
    observation : model, line, observable, scale, offset, points (number of training points used).
    rmse : model, line, ligand, observable, split, points, rmse (over replicate points, normalised units).
    """

    curves: object
    points: object
    observation: object
    rmse: object

    def rmse_table(self):
        """RMSE pivoted to rows line x ligand x observable (+ split) and one column per model."""
        return self.rmse.pivot_table(index=["line", "ligand", "observable", "split"], columns="model",
                                     values="rmse", sort=False)[[m for m in self.rmse["model"].unique()]]


def _score(raw: dict, points, curves_index, models, group_keys):
    """Fit the observation model per (model, *group_keys) on train points, then RMSE per cell."""
    import pandas as pd

    obs_rows, rmse_rows = [], []
    points = points.copy()
    for model in models:
        points[model] = np.nan
    for model in models:
        sim_at = np.array([raw[model][(r.line, r.ligand, r.observable)][curves_index[r.time_min]]
                           for r in points.itertuples()])
        for key, g in points.groupby(group_keys, sort=False):
            train = g["split"] == "train"
            a, b = observation_fit(sim_at[g.index[train]], g["value"][train])
            points.loc[g.index, model] = a * sim_at[g.index] + b
            obs_rows.append({"model": model, **dict(zip(group_keys, key)), "scale": a, "offset": b,
                             "points": int(train.sum())})
    for (line, ligand, obs, split), g in points.groupby(["line", "ligand", "observable", "split"], sort=False):
        for model in models:
            rmse_rows.append({"model": model, "line": line, "ligand": ligand, "observable": obs, "split": split,
                              "points": len(g), "rmse": float(np.sqrt(np.mean((g[model] - g["value"]) ** 2)))})
    return points, pd.DataFrame(obs_rows), pd.DataFrame(rmse_rows)


def _curves(raw, observation, times, group_keys):
    import pandas as pd

    rows = []
    obs = observation.set_index(["model", *group_keys])
    for model, series in raw.items():
        for (line, ligand, oid), y in series.items():
            key = (model, line, oid) if group_keys == ["line", "observable"] else (model, oid)
            a, b = obs.loc[key, "scale"], obs.loc[key, "offset"]
            rows.append(pd.DataFrame({"model": model, "line": line, "ligand": ligand, "observable": oid,
                                      "time_min": times, "raw": y, "value": a * y + b}))
    return pd.concat(rows, ignore_index=True)


def compare(*, lines=None, ligands=LIGANDS, problem_dir=None, chen_dir=None, ligand_nM: float = 10.0,
            line_specific_chen: bool = True, chen: ChenModel | None = None, points: int = 41) -> Comparison:
    """Run her2sim and Chen 2009 on the Imoto EGF/HRG time courses and score both.

    lines : cell-line tags of the signalling problem (default: all its lines: BT474, SKBR3, MCF7).
    ligands : subset of ("EGF", "HRG"). ligand_nM : stimulation (the data's 10 nM model input).
    line_specific_chen : also run Chen with ErbB1-4 set to the line's receptor numbers.
    points : fine time points over 0-120 min for the curves (data times are always included).
    """
    paths = default_paths()
    problem_dir = Path(problem_dir or paths["problem_dir"])
    settings = line_settings(problem_dir)
    lines = list(settings) if lines is None else list(lines)
    for name in lines:
        if name not in settings:
            raise InvalidArgument(f"lines: {name!r} is not a line of {problem_dir}/conditions.tsv; "
                                  f"choose from {sorted(settings)}")
    for lig in ligands:
        if lig not in LIGANDS:
            raise InvalidArgument(f"ligands: {lig!r} is not one of {LIGANDS}")
    data = imoto_data(problem_dir)
    data = data[data["line"].isin(lines) & data["ligand"].isin(ligands)].reset_index(drop=True)
    times = np.union1d(np.linspace(0.0, 120.0, points), data["time_min"].unique())
    tpos = {t: i for i, t in enumerate(times)}
    chen = chen or ChenModel.load(chen_dir or paths["chen_dir"])
    per_nM = molecules_per_nM(problem_dir)
    doses_nM = [{lig: ligand_nM, **{o: 0.0 for o in LIGANDS if o != lig}} for lig in ligands]
    doses_M = [{k: v * 1e-9 for k, v in d.items()} for d in doses_nM]
    models = ["her2sim", "Chen nominal"] + (["Chen line-specific"] if line_specific_chen else [])
    raw = {m: {} for m in models}
    nominal = chen.run(doses_M, times)
    for line in lines:
        base = {**settings[line], "EGF": 0.0, "HRG": 0.0}
        runs = {"her2sim": run_her2sim(problem_dir, base, doses_nM, times), "Chen nominal": nominal}
        if line_specific_chen:
            receptors = {k: settings[line][k] * per_nM for k in CHEN_RECEPTORS.values()}
            runs["Chen line-specific"] = chen.run(doses_M, times, receptors=receptors)
        for model, out in runs.items():
            for k, lig in enumerate(ligands):
                for oid, y in out.items():
                    raw[model][(line, lig, oid)] = y[k]
    keys = ["line", "observable"]
    pts, observation, rmse = _score(raw, data, tpos, models, keys)
    return Comparison(_curves(raw, observation, times, keys), pts, observation, rmse)


def chen_data(chen_dir) -> "pandas.DataFrame":  # noqa: F821
    """Chen 2009's A431 data (PEtab benchmark): condition, EGF_M, HRG_M, observable (obs_pAkt /
    obs_pERK), time_min (after the ligand step), value (percent of maximum), split ('train')."""
    import pandas as pd

    chen_dir = Path(chen_dir)
    m = _tsv(chen_dir / "measurementData_Chen_MSB2009.tsv")
    c = _tsv(chen_dir / "experimentalCondition_Chen_MSB2009.tsv").set_index("conditionId")
    back = {v: k for k, v in OBSERVABLES.items()}
    m = m[m["observableId"].isin(back)]
    return pd.DataFrame({"line": "A431", "ligand": [_chen_label(c.loc[x]) for x in m["simulationConditionId"]],
                         "condition": m["simulationConditionId"].to_numpy(),
                         "observable": [back[o] for o in m["observableId"]],
                         "time_min": np.round((m["time"].to_numpy() - CHEN_T_LIGAND_S) / 60.0, 6),
                         "replicate": "mean", "value": m["measurement"].to_numpy(), "split": "train"})


def _chen_label(row) -> str:
    """'EGF 5 nM'-style label of a Chen condition row (ligand columns in mol/L)."""
    parts = [f"{lig} {row[cid] * 1e9:g} nM" for lig, cid in CHEN_LIGANDS.items() if row[cid] > 0]
    return " + ".join(parts) or "none"


def reverse(*, problem_dir=None, chen_dir=None, chen: ChenModel | None = None, points: int = 41) -> Comparison:
    """her2sim (with Chen's A431 ErbB1-4 amounts) and Chen nominal on Chen's own A431 experiments.

    her2sim's other settings (IGF1, the rest of the model) are those of the signalling problem's
    serum-starved conditions. One scale and offset per model x observable over all four conditions
    (Chen's observation model shares them too). ``line`` is 'A431', ``ligand`` the dose label.
    """
    paths = default_paths()
    problem_dir = Path(problem_dir or paths["problem_dir"])
    chen_dir = Path(chen_dir or paths["chen_dir"])
    chen = chen or ChenModel.load(chen_dir)
    data = chen_data(chen_dir)
    cond = _tsv(chen_dir / "experimentalCondition_Chen_MSB2009.tsv").set_index("conditionId")
    conds = list(dict.fromkeys(data["condition"]))
    labels = [_chen_label(cond.loc[c]) for c in conds]
    doses_M = [{lig: float(cond.loc[c, cid]) for lig, cid in CHEN_LIGANDS.items()} for c in conds]
    doses_nM = [{k: v * 1e9 for k, v in d.items()} for d in doses_M]
    times = np.union1d(np.linspace(0.0, 120.0, points), data["time_min"].unique())
    tpos = {t: i for i, t in enumerate(times)}
    starved = next(iter(line_settings(problem_dir).values()))
    per_nM = molecules_per_nM(problem_dir)
    base = {"IGF1": starved["IGF1"], "EGF": 0.0, "HRG": 0.0,
            **{k: v / per_nM for k, v in chen.receptor_amounts().items()}}
    runs = {"her2sim": run_her2sim(problem_dir, base, doses_nM, times), "Chen nominal": chen.run(doses_M, times)}
    raw = {m: {("A431", lab, oid): y[k] for k, lab in enumerate(labels) for oid, y in out.items()}
           for m, out in runs.items()}
    data = data.drop(columns="condition")
    keys = ["observable"]
    pts, observation, rmse = _score(raw, data, tpos, list(runs), keys)
    return Comparison(_curves(raw, observation, times, keys), pts, observation, rmse)


# ----------------------------------------------------------------------------- figure
COLOURS = {"her2sim": "tab:blue", "Chen nominal": "tab:red", "Chen line-specific": "tab:orange"}
STYLES = {"her2sim": "-", "Chen nominal": "--", "Chen line-specific": ":"}


def plot(comparison: Comparison, *, title: str = ""):
    """Grid of panels (line x ligand rows, observable columns): data (replicate mean +- SD, points)
    and each model's curve after its observation model. Returns the matplotlib Figure."""
    import matplotlib.pyplot as plt

    pts, curves = comparison.points, comparison.curves
    panels = list(dict.fromkeys(zip(pts["line"], pts["ligand"])))
    observables = list(dict.fromkeys(pts["observable"]))
    fig, axes = plt.subplots(len(panels), len(observables), figsize=(4.2 * len(observables), 2.5 * len(panels)),
                             squeeze=False, sharex=True)
    for i, (line, ligand) in enumerate(panels):
        for j, oid in enumerate(observables):
            ax = axes[i, j]
            d = pts[(pts["line"] == line) & (pts["ligand"] == ligand) & (pts["observable"] == oid)]
            g = d.groupby("time_min")["value"]
            held = (d["split"] == "validation").any()
            ax.plot(d["time_min"], d["value"], ".", color="0.6", ms=3)
            ax.errorbar(g.mean().index, g.mean(), yerr=g.std().fillna(0.0), fmt="o", color="k", ms=3.5,
                        capsize=2, label="data (mean +- SD)")
            for model in comparison.rmse["model"].unique():
                c = curves[(curves["model"] == model) & (curves["line"] == line) & (curves["ligand"] == ligand)
                           & (curves["observable"] == oid)]
                ax.plot(c["time_min"], c["value"], STYLES.get(model, "-"), color=COLOURS.get(model), label=model)
            ax.set_title(f"{line} {ligand}: {oid.replace('obs_', '')}" + (" (held out)" if held else ""), fontsize=9)
            if i == len(panels) - 1:
                ax.set_xlabel("min after ligand")
    axes[0, -1].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def shapes(comparison: Comparison) -> "pandas.DataFrame":  # noqa: F821
    """Time-course shape per model (raw output) and for the data (replicate means): time of the
    peak (min), basal share y(0) / peak (models only: the data are min-max normalised, so their
    basal is 0 by construction) and the sustained fraction (y(120) - y(0)) / (peak - y(0))
    (1: sustained, near 0: transient, < 0: ends below basal). Rows line x ligand x observable,
    columns (quantity, source)."""
    import pandas as pd

    rows = []

    def shape(t, y):
        k = int(np.argmax(y))
        rise = y[k] - y[0]
        return t[k], (y[0] / y[k] if y[k] > 0 else np.nan), ((y[-1] - y[0]) / rise if rise > 0 else np.nan)

    for (model, line, ligand, oid), g in comparison.curves.groupby(["model", "line", "ligand", "observable"],
                                                                   sort=False):
        t_peak, basal, kept = shape(g["time_min"].to_numpy(), g["raw"].to_numpy())
        rows.append({"source": model, "line": line, "ligand": ligand, "observable": oid, "peak_min": t_peak,
                     "basal_share": basal, "sustained": kept})
    pts = comparison.points
    for (line, ligand, oid), g in pts.groupby(["line", "ligand", "observable"], sort=False):
        m = g.groupby("time_min")["value"].mean()
        if 0.0 not in m.index:  # the shared 0-min lane is stored once, with EGF
            m0 = pts[(pts["line"] == line) & (pts["observable"] == oid) & (pts["time_min"] == 0.0)]["value"].mean()
            m = pd.concat([pd.Series({0.0: m0}), m])
        t_peak, _, kept = shape(m.index.to_numpy(), m.to_numpy())
        rows.append({"source": "data", "line": line, "ligand": ligand, "observable": oid, "peak_min": t_peak,
                     "basal_share": np.nan, "sustained": kept})
    table = pd.DataFrame(rows)
    return table.pivot_table(index=["line", "ligand", "observable"], columns="source",
                             values=["peak_min", "basal_share", "sustained"], sort=False)
