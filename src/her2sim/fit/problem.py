"""Read a PEtab v1 problem (YAML + TSV tables) into a validated, frozen :class:`PetabProblem`.

PEtab (Schmiester et al., PLoS Comput Biol 2021;17:e1008646; https://petab.readthedocs.io, format
version 1) states a parameter-estimation problem as an SBML model plus four tables: conditions,
measurements, observables and parameters. This reader is focused: tables are read with pandas as
text, every cell is checked here, and every problem is reported on one line naming the table, row
(1-based, header excluded) and column, as a :class:`PetabError`.

Formulas (observable, noise) are data: ``^`` is rewritten to ``**`` (PEtab's power operator) and
the text goes through :func:`her2sim.model.expr.parse`, the whitelisting parser; nothing is evaluated.

The model: ``sbml_files`` entries are imported with :func:`her2sim.io.sbml_import.import_sbml`; as a
her2sim extension an entry ending in ``.toml`` is loaded with :func:`her2sim.model.load.load_model`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from ..model import expr as ex
from ..errors import ExpressionError, PetabError

SCALES = ("lin", "log", "log10")
TRANSFORMATIONS = ("lin", "log", "log10")
DISTRIBUTIONS = ("normal", "laplace")
PRIOR_TYPES = ("uniform", "normal", "laplace", "logNormal", "logLaplace", "parameterScaleUniform",
               "parameterScaleNormal", "parameterScaleLaplace")
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _where(table: str, row: int | None = None, column: str | None = None) -> str:
    out = table
    if row is not None:
        out += f" row {row}"
    if column is not None:
        out += f" column {column!r}"
    return out


# ----------------------------------------------------------------------------- objects
@dataclass(frozen=True)
class ParameterRow:
    """One row of the parameter table. Values on the linear scale; ``scale`` for estimation."""

    id: str
    scale: str
    lower: float
    upper: float
    nominal: float
    estimate: bool
    prior_type: str = ""
    prior_parameters: tuple = ()
    init_prior_type: str = ""
    init_prior_parameters: tuple = ()


@dataclass(frozen=True)
class ObservableRow:
    """An observable: formula and noise formula as expression trees, transformation, distribution."""

    id: str
    formula: ex.Node
    noise: ex.Node
    transformation: str
    distribution: str
    formula_text: str = ""
    noise_text: str = ""


@dataclass(frozen=True)
class Measurement:
    """One measurement row. ``observable_parameters``/``noise_parameters``: tuples of float or id."""

    observable: str
    preequilibration: str
    condition: str
    value: float
    time: float
    observable_parameters: tuple
    noise_parameters: tuple
    row: int


@dataclass(frozen=True)
class PetabProblem:
    """A validated PEtab v1 problem.

    Attributes
    ----------
    path : the problem YAML (or '' when built in memory).
    model : the :class:`her2sim.ModelSpec` (species' ``initial_expr`` hold SBML initial assignments).
    parameters : rows of the parameter table, in table order.
    observables : id -> ObservableRow.
    conditions : condition id -> {target id: float or parameter id}; NaN = leave as in the model.
    measurements : the measurement rows in table order.
    """

    path: str
    model: object
    parameters: tuple
    observables: Mapping[str, ObservableRow]
    conditions: Mapping[str, Mapping[str, object]]
    measurements: tuple

    @property
    def parameter_ids(self) -> tuple:
        return tuple(p.id for p in self.parameters)

    @property
    def free(self) -> tuple:
        """Ids of the estimated parameters, in table order."""
        return tuple(p.id for p in self.parameters if p.estimate)

    def parameter(self, pid: str) -> ParameterRow:
        for p in self.parameters:
            if p.id == pid:
                return p
        raise PetabError(f"parameter table: no parameter {pid!r}")

    def nominal(self) -> np.ndarray:
        """(n_parameters,) nominal values on the linear scale."""
        return np.array([p.nominal for p in self.parameters], dtype=float)

    def simulation_conditions(self) -> tuple:
        """Unique (preequilibration id or '', simulation id) pairs in measurement-table order."""
        seen: dict = {}
        for m in self.measurements:
            seen.setdefault((m.preequilibration, m.condition), None)
        return tuple(seen)


# ----------------------------------------------------------------------------- scales
def to_scale(value, scale: str):
    """Linear value -> parameter scale (lin, log, log10)."""
    value = np.asarray(value, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return value if scale == "lin" else (np.log(value) if scale == "log" else np.log10(value))


def from_scale(value, scale: str):
    """Parameter scale -> linear value."""
    value = np.asarray(value, dtype=float)
    return value if scale == "lin" else (np.exp(value) if scale == "log" else np.power(10.0, value))


# ----------------------------------------------------------------------------- formulas
def parse_formula(text: str, *, where: str) -> ex.Node:
    """A PEtab math string -> expression tree (``^`` is power); one-line PetabError otherwise."""
    text = str(text).strip()
    if not text:
        raise PetabError(f"{where}: the formula is empty")
    try:
        return ex.parse(text.replace("^", "**"), where=where)
    except ExpressionError as exc:
        raise PetabError(str(exc)) from None


# ----------------------------------------------------------------------------- tables
def _read_table(path: Path, name: str, required: tuple, index: str | None = None):
    import pandas as pd

    if not path.is_file():
        raise PetabError(f"{name}: file {str(path)!r} does not exist")
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several parser errors
        raise PetabError(f"{name} {str(path)!r}: cannot read as tab-separated values: {exc}") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise PetabError(f"{name} {path.name}: missing required column(s) {', '.join(map(repr, missing))}; "
                         f"columns are {', '.join(map(repr, df.columns))}")
    if index is not None:
        seen: dict = {}
        for i, v in enumerate(df[index], start=1):
            v = v.strip()
            if not _ID.match(v):
                raise PetabError(f"{_where(name, i, index)}: {v!r} is not a valid id (letters, digits, '_', "
                                 "not starting with a digit)")
            if v in seen:
                raise PetabError(f"{_where(name, i, index)}: duplicate id {v!r} (also row {seen[v]})")
            seen[v] = i
    return df


def _float(text: str, where: str, *, empty=None) -> float:
    text = str(text).strip()
    if text == "" and empty is not None:
        return empty
    low = text.lower()
    if low in ("inf", "+inf"):
        return math.inf
    if low == "-inf":
        return -math.inf
    if low == "nan":
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise PetabError(f"{where}: expected a number, got {text!r}") from None


def _number_or_id(text: str, where: str):
    text = str(text).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if not _ID.match(text):
        raise PetabError(f"{where}: expected a number or a parameter id, got {text!r}")
    return text


def _check_prior(ptype: str, params: tuple, lower: float, where: str, pid: str) -> None:
    """A prior's parameters are finite, its scale > 0, a uniform range non-empty, a log prior's
    parameter positive."""
    if not params:
        return
    a, b = params
    if not (np.isfinite(a) and np.isfinite(b)):
        raise PetabError(f"{where}: prior parameters must be finite, got {a!r};{b!r}")
    if ptype.lower().endswith("uniform"):
        if not a < b:
            raise PetabError(f"{where}: a uniform prior needs lower < upper, got {a!r};{b!r}")
    elif b <= 0:
        raise PetabError(f"{where}: the {ptype} prior's scale (second number) must be > 0, got {b!r}")
    if ptype in ("logNormal", "logLaplace") and not lower > 0:
        raise PetabError(f"{where}: a {ptype} prior needs parameter {pid!r} > 0, but its lowerBound is {lower!r}")


def read_parameters(path: Path) -> tuple:
    """Parameter table -> tuple of ParameterRow (validated scales, bounds, priors)."""
    name = "parameter table"
    df = _read_table(path, name, ("parameterId", "parameterScale", "lowerBound", "upperBound", "nominalValue",
                                  "estimate"), "parameterId")
    rows = []
    for i, r in enumerate(df.to_dict("records"), start=1):
        pid = r["parameterId"].strip()
        scale = r["parameterScale"].strip()
        if scale not in SCALES:
            raise PetabError(f"{_where(name, i, 'parameterScale')}: {scale!r} is not one of {', '.join(SCALES)}")
        est = r["estimate"].strip()
        if est not in ("0", "1"):
            raise PetabError(f"{_where(name, i, 'estimate')}: expected 0 or 1, got {est!r}")
        nominal = _float(r["nominalValue"], _where(name, i, "nominalValue"), empty=math.nan)
        lo = _float(r["lowerBound"], _where(name, i, "lowerBound"), empty=math.nan)
        hi = _float(r["upperBound"], _where(name, i, "upperBound"), empty=math.nan)
        if est == "1":
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise PetabError(f"{_where(name, i, 'lowerBound')}: an estimated parameter needs finite bounds "
                                 f"lowerBound < upperBound, got {lo!r} and {hi!r}")
            if scale != "lin" and lo <= 0:
                raise PetabError(f"{_where(name, i, 'lowerBound')}: parameter {pid!r} is on the {scale} scale, so "
                                 f"its lower bound must be > 0, got {lo!r} (use parameterScale lin)")
        if not np.isfinite(nominal):
            raise PetabError(f"{_where(name, i, 'nominalValue')}: parameter {pid!r} needs a finite nominal value")
        if scale != "lin" and nominal <= 0:
            raise PetabError(f"{_where(name, i, 'nominalValue')}: parameter {pid!r} is on the {scale} scale, so its "
                             f"nominal value must be > 0, got {nominal!r}")
        priors = []
        for kind in ("objectivePrior", "initializationPrior"):
            ptype = r.get(f"{kind}Type", "").strip()
            params: tuple = ()
            if ptype:
                if ptype not in PRIOR_TYPES:
                    raise PetabError(f"{_where(name, i, kind + 'Type')}: {ptype!r} is not one of "
                                     f"{', '.join(PRIOR_TYPES)}")
                col = f"{kind}Parameters"
                text = r.get(col, "").strip()
                if not text and not ptype.endswith("Uniform") and ptype != "uniform":
                    raise PetabError(f"{_where(name, i, col)}: prior {ptype!r} needs two parameters 'a;b'")
                if text:
                    parts = text.split(";")
                    if len(parts) != 2:
                        raise PetabError(f"{_where(name, i, col)}: expected two numbers 'a;b', got {text!r}")
                    params = tuple(_float(v, _where(name, i, col)) for v in parts)
                _check_prior(ptype, params, lo, _where(name, i, col), pid)
            priors.append((ptype, params))
        rows.append(ParameterRow(pid, scale, lo, hi, nominal, est == "1", priors[0][0], priors[0][1],
                                 priors[1][0], priors[1][1]))
    return tuple(rows)


def read_observables(path: Path) -> dict:
    """Observable table -> {id: ObservableRow}."""
    name = "observable table"
    df = _read_table(path, name, ("observableId", "observableFormula", "noiseFormula"), "observableId")
    out = {}
    for i, r in enumerate(df.to_dict("records"), start=1):
        oid = r["observableId"].strip()
        trans = r.get("observableTransformation", "").strip() or "lin"
        if trans not in TRANSFORMATIONS:
            raise PetabError(f"{_where(name, i, 'observableTransformation')}: {trans!r} is not one of "
                             f"{', '.join(TRANSFORMATIONS)}")
        dist = r.get("noiseDistribution", "").strip() or "normal"
        if dist not in DISTRIBUTIONS:
            raise PetabError(f"{_where(name, i, 'noiseDistribution')}: {dist!r} is not one of "
                             f"{', '.join(DISTRIBUTIONS)}")
        formula = parse_formula(r["observableFormula"], where=_where(name, i, "observableFormula"))
        noise = parse_formula(r["noiseFormula"], where=_where(name, i, "noiseFormula"))
        constant = ex.simplify(noise)
        if isinstance(constant, ex.Num) and not constant.value > 0:
            raise PetabError(f"{_where(name, i, 'noiseFormula')}: the noise standard deviation of {oid!r} must be "
                             f"> 0, got {constant.value!r}")
        out[oid] = ObservableRow(oid, formula, noise, trans, dist, r["observableFormula"].strip(),
                                 r["noiseFormula"].strip())
    return out


def read_conditions(path: Path) -> dict:
    """Condition table -> {condition id: {target: float or parameter id}}."""
    name = "condition table"
    df = _read_table(path, name, ("conditionId",), "conditionId")
    targets = [c for c in df.columns if c not in ("conditionId", "conditionName")]
    for c in targets:
        if not _ID.match(c):
            raise PetabError(f"{name}: column {c!r} is not a valid model id")
    out = {}
    for i, r in enumerate(df.to_dict("records"), start=1):
        out[r["conditionId"].strip()] = {c: (math.nan if r[c].strip() == "" else
                                             _number_or_id(r[c], _where(name, i, c))) for c in targets}
    return out


def read_measurements(path: Path) -> tuple:
    """Measurement table -> tuple of Measurement."""
    name = "measurement table"
    df = _read_table(path, name, ("observableId", "simulationConditionId", "measurement", "time"))
    rows = []
    for i, r in enumerate(df.to_dict("records"), start=1):
        value = _float(r["measurement"], _where(name, i, "measurement"))
        if not np.isfinite(value):
            raise PetabError(f"{_where(name, i, 'measurement')}: the measurement must be finite, got {value!r}")
        t = _float(r["time"], _where(name, i, "time"))
        if np.isnan(t) or t < 0:
            raise PetabError(f"{_where(name, i, 'time')}: expected a time >= 0 or inf (steady state), got {t!r}")

        def split(col):
            text = r.get(col, "").strip()
            if not text:
                return ()
            return tuple(_number_or_id(v, _where(name, i, col)) for v in text.split(";"))

        rows.append(Measurement(r["observableId"].strip(), r.get("preequilibrationConditionId", "").strip(),
                                r["simulationConditionId"].strip(), value, t, split("observableParameters"),
                                split("noiseParameters"), i))
    if not rows:
        raise PetabError(f"{name} {path.name}: no measurements")
    return tuple(rows)


# ----------------------------------------------------------------------------- the problem
def _load_model(path: Path):
    """The ModelSpec of an SBML file, or of a her2sim TOML model."""
    if path.suffix == ".toml":
        from ..model.load import load_model

        return load_model(str(path))
    if not path.is_file():
        raise PetabError(f"problem YAML: sbml_files: {str(path)!r} does not exist")
    from ..io.sbml_import import import_sbml

    return import_sbml(str(path))


def _renamed(problem: "PetabProblem") -> "PetabProblem":
    """Map SBML ids that her2sim renamed (reserved names, see ``ModelSpec.name_map``) in every table."""
    mapping = {a: b for a, b in getattr(problem.model, "name_map", ()) if a != b}
    if not mapping:
        return problem
    from dataclasses import replace

    def rn(v):
        return mapping.get(v, v) if isinstance(v, str) else v

    syms = {a: ex.Sym(b) for a, b in mapping.items()}
    obs = {k: replace(o, formula=ex.substitute(o.formula, syms), noise=ex.substitute(o.noise, syms))
           for k, o in problem.observables.items()}
    conds = {c: {rn(t): rn(v) for t, v in row.items()} for c, row in problem.conditions.items()}
    params = tuple(replace(p, id=rn(p.id)) for p in problem.parameters)
    meas = tuple(replace(m, observable_parameters=tuple(map(rn, m.observable_parameters)),
                         noise_parameters=tuple(map(rn, m.noise_parameters))) for m in problem.measurements)
    return replace(problem, parameters=params, observables=obs, conditions=conds, measurements=meas)


def read_problem(yaml_path, *, model=None) -> PetabProblem:
    """Read and validate a PEtab v1 problem.

    Parameters
    ----------
    yaml_path : the problem YAML (format_version 1, exactly one problem entry).
    model : optionally a ModelSpec to use instead of the YAML's model file.

    Raises :class:`PetabError` naming the table, row and column of the first problem found.
    """
    try:
        import yaml
    except ImportError:
        from ..errors import OptionalDependencyError

        raise OptionalDependencyError("pyyaml", "fit", "reading a PEtab problem YAML") from None

    path = Path(yaml_path)
    if not path.is_file():
        raise PetabError(f"problem YAML {str(path)!r} does not exist")
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PetabError(f"problem YAML {path.name}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise PetabError(f"problem YAML {path.name}: expected a mapping with format_version, parameter_file, problems")
    version = str(doc.get("format_version", "")).strip()
    if version not in ("1", "1.0.0", "1.0"):
        raise PetabError(f"problem YAML {path.name}: format_version {version!r} is not supported (PEtab 1 only)")
    probs = doc.get("problems")
    if not isinstance(probs, list) or len(probs) != 1 or not isinstance(probs[0], dict):
        raise PetabError(f"problem YAML {path.name}: 'problems' must list exactly one problem")
    prob = probs[0]
    base = path.parent

    def files(key, required=True):
        vals = prob.get(key) or []
        if isinstance(vals, str):
            vals = [vals]
        if required and len(vals) != 1:
            raise PetabError(f"problem YAML {path.name}: {key} must name exactly one file, got {vals!r}")
        return [base / v for v in vals]

    if "parameter_file" not in doc:
        raise PetabError(f"problem YAML {path.name}: parameter_file is missing")
    pfile = doc["parameter_file"]
    if isinstance(pfile, list):
        if len(pfile) != 1:
            raise PetabError(f"problem YAML {path.name}: parameter_file must name exactly one file, got {pfile!r}")
        pfile = pfile[0]
    parameters = read_parameters(base / pfile)
    observables = read_observables(files("observable_files")[0])
    conditions = read_conditions(files("condition_files")[0])
    measurements = read_measurements(files("measurement_files")[0])
    if model is None:
        model = _load_model(files("sbml_files")[0])
    return validate(_renamed(PetabProblem(str(path), model, parameters, observables, conditions, measurements)))


def placeholder_names(oid: str, kind: str, node: ex.Node) -> list:
    """The ``observableParameterN_<oid>`` / ``noiseParameterN_<oid>`` names in ``node``, ordered by N."""
    pat = re.compile(rf"^{kind}Parameter(\d+)_{re.escape(oid)}$")
    found = sorted((int(m.group(1)), n) for n in ex.free_names(node) if (m := pat.match(n)))
    return [n for _, n in found]


def _check_sigma(problem: PetabProblem, m: Measurement, o: ObservableRow, where: str) -> None:
    """Where the noise formula *is* a standard deviation (a number, a parameter or one placeholder),
    that value must be > 0: a number in the table, or a parameter's nominal value and (if estimated)
    its lower bound."""
    node = o.noise
    if not isinstance(node, ex.Sym):  # a constant is checked when the observable table is read
        return
    value, column = node.name, "noiseFormula"
    if placeholder_names(o.id, "noise", node):
        value, column = m.noise_parameters[0], "noiseParameters"
    if not isinstance(value, str):
        if not value > 0:
            raise PetabError(f"{where} column {column!r}: the noise standard deviation of {o.id!r} must be > 0, "
                             f"got {value!r}")
        return
    ids = problem.parameter_ids
    if value not in ids:
        return
    i = ids.index(value)
    p = problem.parameters[i]
    if not p.nominal > 0:
        raise PetabError(f"{_where('parameter table', i + 1, 'nominalValue')}: {p.id!r} is the noise standard "
                         f"deviation of {o.id!r} ({where}), so it must be > 0, got {p.nominal!r}")
    if p.estimate and not p.lower > 0:
        raise PetabError(f"{_where('parameter table', i + 1, 'lowerBound')}: {p.id!r} is the noise standard "
                         f"deviation of {o.id!r} ({where}), so its bounds must be > 0, got lowerBound {p.lower!r} "
                         "(use a positive bound or parameterScale log10)")


def validate(problem: PetabProblem) -> PetabProblem:
    """Cross-table checks: ids resolve, override counts match placeholders, no clash with the model."""
    spec = problem.model
    species = set(spec.species_names)
    model_params = set(spec.parameter_names)
    expressions = {e.name for e in spec.expressions}
    compartments = {c.name for c in getattr(spec, "compartments", ())}
    pids = set(problem.parameter_ids)
    for i, p in enumerate(problem.parameters, start=1):
        if p.id in species or p.id in expressions:
            raise PetabError(f"{_where('parameter table', i, 'parameterId')}: {p.id!r} is a model "
                             f"{'species' if p.id in species else 'assignment rule'}, not a parameter")
    for row, (cid, targets) in enumerate(problem.conditions.items(), start=1):
        for target, value in targets.items():
            where = f"condition table row {row} ({cid}) column {target!r}"
            if target not in species | model_params | compartments:
                raise PetabError(f"{where}: {target!r} is not a model parameter, species or compartment")
            if isinstance(value, str) and value not in pids:
                raise PetabError(f"{where}: {value!r} is neither a number nor a parameter-table id")
    model_names = species | model_params | expressions | compartments
    for row, (oid, o) in enumerate(problem.observables.items(), start=1):
        for kind, node, col in (("observable", o.formula, "observableFormula"), ("noise", o.noise, "noiseFormula")):
            for n in ex.free_names(node):
                if n in model_names or n in pids:
                    continue
                if re.match(rf"^(observable|noise)Parameter\d+_{re.escape(oid)}$", n):
                    if kind == "observable" and n.startswith("noise"):
                        raise PetabError(f"observable table row {row} ({oid}) column {col!r}: noise placeholder {n!r} "
                                         "belongs in noiseFormula")
                    continue
                raise PetabError(f"observable table row {row} ({oid}) column {col!r}: {n!r} is not a model entity, "
                                 "a parameter-table id or a placeholder of this observable")
    for m in problem.measurements:
        where = f"measurement table row {m.row}"
        if m.observable not in problem.observables:
            raise PetabError(f"{where} column 'observableId': unknown observable {m.observable!r}")
        for col, cid in (("simulationConditionId", m.condition), ("preequilibrationConditionId", m.preequilibration)):
            if cid and cid not in problem.conditions:
                raise PetabError(f"{where} column {col!r}: unknown condition {cid!r}")
        o = problem.observables[m.observable]
        for kind, col, node, values in (("observable", "observableParameters", o.formula, m.observable_parameters),
                                        ("noise", "noiseParameters", o.noise, m.noise_parameters)):
            names = placeholder_names(o.id, kind, node)
            if len(values) != len(names):
                raise PetabError(f"{where} column {col!r}: observable {o.id!r} needs {len(names)} value(s) "
                                 f"({', '.join(names) or 'none'}), got {len(values)}")
            for v in values:
                if isinstance(v, str) and v not in pids:
                    raise PetabError(f"{where} column {col!r}: {v!r} is not a parameter-table id")
        _check_sigma(problem, m, o, where)
        if o.transformation != "lin" and m.value <= 0:
            raise PetabError(f"{where} column 'measurement': observable {o.id!r} is on the {o.transformation} "
                             f"scale, so measurements must be > 0, got {m.value!r}")
    return problem
