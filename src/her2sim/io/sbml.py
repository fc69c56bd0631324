"""Export a :class:`~her2sim.model.spec.ModelSpec` to SBML Level 3 Version 2 (python-libsbml, extra ``sbml``).

What is written
---------------
* Units: the model's substance unit is ``nmol``, volume ``litre``, time ``hour``, extent
  ``nmol``; so a species symbol (a concentration, ``hasOnlySubstanceUnits = false``) is in
  nmol/L = nM, exactly her2sim's internal unit. Every parameter, named expression and observable
  carries a unit definition built from its internal (nmol, dm, h, g) dimension; numbers inside
  formulas are annotated ``dimensionless`` (her2sim's unit check treats them so).
* Compartments with their size in litres, species with initial concentrations in nM (optionally a
  pre-equilibrated state), parameters (``constant = true``; drug doses are ordinary constant
  parameters to be set by the simulator), named expressions and observables as non-constant
  parameters defined by assignment rules.
* Reactions with kinetic laws. SBML kinetic laws are in substance per time (nmol/h), while a
  her2sim rate ``v`` is a concentration per time (nM/h) and ``dx/dt = N v`` holds for every
  species in concentration. The kinetic law is therefore written ``V_ref * (v)`` with ``V_ref``
  the (symbolic) size of the reaction's compartment, which gives ``d[S]/dt = N v`` exactly and
  keeps real compartment sizes (rather than setting every size to 1). When a reaction couples
  species in compartments of different sizes, her2sim still applies ``N v`` to each species'
  concentration (no volume ratio); to reproduce that, the SBML stoichiometry of a species in a
  compartment of size ``V_s`` is ``N * V_s / V_ref``. With one compartment (or equal sizes) the
  stoichiometries are her2sim's unchanged.

The convenience functions of rate laws become explicit formulas:
``hill(x, K, n) = (x/K)^n / (1 + (x/K)^n)``, ``mm(x, K) = x / (K + x)``,
``inhibit(x, K) = 1 / (1 + x/K)``, ``min``/``max`` a ``piecewise`` (as does the derivative-only
``select_lt``), ``log`` is ``ln`` and ``log10`` a ``log`` with base 10.

Simulating the file: libRoadRunner integrates amounts and reads a scalar absolute tolerance
relative to each species' current amount; :func:`roadrunner_concentration_atol` sets the
per-species tolerances that give her2sim's meaning of ``atol`` (nM). With both at rtol 1e-10 the
exported default model reproduces ``her2sim.simulate`` to ~1e-8 relative (tests/test_sbml.py).

Examples
--------
>>> from her2sim import load_model
>>> from her2sim.io.sbml import export_sbml
>>> export_sbml(load_model("tests/models/binding.toml"), "binding.xml")  # doctest: +SKIP
PosixPath('binding.xml')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from ..model import expr as ex
from ..errors import InvalidArgument, OptionalDependencyError, OutputError, SBMLExportError
from ..model.spec import ModelSpec

__all__ = ["SBMLCheck", "SBMLExportError", "export_model_sbml", "export_sbml", "roadrunner_concentration_atol",
           "sbml_document", "sbml_formula", "sbml_unit_id", "validate_sbml"]

#: model-wide SBML units (ids of the unit definitions written)
SUBSTANCE, VOLUME, TIME = "nmol", "litre", "hour"

_DIM_KEYS = ("[substance]", "[length]", "[time]", "[mass]")
#: readable ids for the dimensions that occur in practice: (substance, length, time, mass) powers
_NAMED_UNITS = {
    (1, 0, 0, 0): "nmol",
    (1, -3, 0, 0): "nM",
    (0, 0, 1, 0): "hour",
    (0, 0, -1, 0): "per_hour",
    (-1, 3, -1, 0): "per_nM_per_hour",
    (1, -3, -1, 0): "nM_per_hour",
    (-1, 3, 0, 0): "per_nM",
    (1, 0, -1, 0): "nmol_per_hour",
}
#: unit definitions always written (whether used or not)
_ALWAYS = ((1, 0, 0, 0), (1, -3, 0, 0), (0, 0, 1, 0), (0, 0, -1, 0), (-1, 3, -1, 0), (1, 0, -1, 0))


def _libsbml():
    try:
        import libsbml
    except ImportError:
        raise OptionalDependencyError("python-libsbml", "sbml", "SBML export") from None
    return libsbml


# ----------------------------------------------------------------------------- units
def _dimension(label: str) -> tuple[float, float, float, float]:
    """(substance, length, time, mass) powers of an internal unit label ('1/nM/h', pint string)."""
    from ..model.units import parse_unit

    text = (label or "").strip()
    if text in ("", "dimensionless", "1"):
        return (0, 0, 0, 0)
    dim = dict(parse_unit(text, what="internal unit").dimensionality)
    unknown = set(dim) - set(_DIM_KEYS)
    if unknown:
        raise SBMLExportError(f"unit {label!r} has dimension(s) {sorted(unknown)} with no SBML mapping; "
                              "her2sim's internal units are nmol, dm, h and g")
    return tuple(_clean(dim.get(k, 0)) for k in _DIM_KEYS)


def _clean(power: float) -> float:
    return int(power) if float(power).is_integer() else float(power)


def sbml_unit_id(label: str) -> str:
    """SBML unit id for an internal unit label: 'nM', 'per_hour', ..., 'dimensionless'."""
    dims = _dimension(label)
    if not any(dims):
        return "dimensionless"
    if dims in _NAMED_UNITS:
        return _NAMED_UNITS[dims]
    parts = []
    for name, power in zip(("nmol", "dm", "h", "g"), dims):
        if power:
            parts.append(f"{name}_{'p' if power > 0 else 'm'}{str(abs(power)).replace('.', 'd')}")
    return "u_" + "_".join(parts)


def _add_unit_definition(model, dims) -> str:
    libsbml = _libsbml()
    uid = _NAMED_UNITS.get(dims) or sbml_unit_id(_label_of(dims))
    if model.getUnitDefinition(uid) is not None:
        return uid
    ud = model.createUnitDefinition()
    ud.setId(uid)
    sub, length, time, mass = dims

    def unit(kind, exponent, scale=0, multiplier=1.0):
        u = ud.createUnit()
        u.setKind(kind)
        u.setExponent(float(exponent))
        u.setScale(scale)
        u.setMultiplier(multiplier)

    if sub:
        unit(libsbml.UNIT_KIND_MOLE, sub, scale=-9)
    if length:
        if float(length / 3).is_integer():
            unit(libsbml.UNIT_KIND_LITRE, length / 3)
        else:
            unit(libsbml.UNIT_KIND_METRE, length, scale=-1)
    if time:
        unit(libsbml.UNIT_KIND_SECOND, time, multiplier=3600.0)
    if mass:
        unit(libsbml.UNIT_KIND_GRAM, mass)
    return uid


def _label_of(dims) -> str:
    terms = [f"{n}**{p}" for n, p in zip(("nmol", "dm", "hour", "gram"), dims) if p]
    return " * ".join(terms) or "dimensionless"


def _unit_for(model, label: str) -> str:
    dims = _dimension(label)
    if not any(dims):
        return "dimensionless"
    return _add_unit_definition(model, dims)


# ----------------------------------------------------------------------------- formulas
def _number(value: float) -> str:
    if not np.isfinite(value):
        raise SBMLExportError(f"the number {value!r} cannot be written in SBML math")
    return f"({float(value)!r} dimensionless)"


def sbml_formula(node: ex.Node) -> str:
    """Render an expression tree as an SBML L3 infix formula (for ``libsbml.parseL3Formula``).

    Every sub-expression is parenthesised, numbers carry the unit ``dimensionless`` and the
    convenience functions are expanded (see the module docstring).
    """
    f = sbml_formula
    if isinstance(node, ex.Num):
        return _number(node.value)
    if isinstance(node, ex.Sym):
        return node.name
    if isinstance(node, ex.Neg):
        return f"(-{f(node.arg)})"
    if isinstance(node, ex.Bin):
        op = "^" if node.op == "**" else node.op
        return f"({f(node.left)} {op} {f(node.right)})"
    if isinstance(node, ex.Select):
        return f"piecewise({f(node.if_less)}, {f(node.a)} < {f(node.b)}, {f(node.otherwise)})"
    args = [f(a) for a in node.args]
    one = _number(1.0)
    if node.fn in ("exp", "sqrt", "abs"):
        return f"{node.fn}({args[0]})"
    if node.fn == "log10":
        return f"log({_number(10.0)}, {args[0]})"
    if node.fn == "log":
        return f"ln({args[0]})"
    if node.fn == "min":
        return f"piecewise({args[0]}, {args[0]} < {args[1]}, {args[1]})"
    if node.fn == "max":
        return f"piecewise({args[0]}, {args[0]} > {args[1]}, {args[1]})"
    if node.fn == "hill":
        x, k, n = args
        power = f"(({x} / {k}) ^ {n})"
        return f"({power} / ({one} + {power}))"
    if node.fn == "mm":
        x, k = args
        return f"({x} / ({k} + {x}))"
    if node.fn == "inhibit":
        x, k = args
        return f"({one} / ({one} + ({x} / {k})))"
    raise SBMLExportError(f"function {node.fn}() has no SBML translation")


def _ast_names(ast) -> list[tuple[str, int]]:
    """(name, AST type) of every symbol in a libsbml AST: names, csymbols and constants like pi."""
    libsbml = _libsbml()
    symbolic = (libsbml.AST_NAME_TIME, libsbml.AST_NAME_AVOGADRO)
    out = []
    stack = [ast]
    while stack:
        a = stack.pop()
        if a.isName() or a.isConstant() or a.getType() in symbolic:
            out.append((a.getName() or "", a.getType()))
        stack.extend(a.getChild(i) for i in range(a.getNumChildren()))
    return out


def _math(node: ex.Node, settings, where: str, wrap: str | None = None):
    """Parse the rendered formula with the model's ids and check every name came through as a name."""
    libsbml = _libsbml()
    text = sbml_formula(node)
    if wrap is not None:
        text = f"{wrap} * {text}"
    ast = libsbml.parseL3FormulaWithSettings(text, settings)
    if ast is None:
        raise SBMLExportError(f"{where}: libsbml cannot parse {text!r}: {libsbml.getLastParseL3Error()}")
    expected = ex.free_names(node) | ({wrap} if wrap else set())
    found = _ast_names(ast)
    wrong = [n for n, t in found if t != libsbml.AST_NAME or n not in expected]
    if wrong or {n for n, _ in found} != expected:
        raise SBMLExportError(
            f"{where}: the names {sorted(expected)} did not all survive as SBML identifiers (read back "
            f"{sorted(n for n, _ in found)}); a name that is an SBML reserved word (e.g. pi, avogadro, time, "
            "exponentiale, true, false, inf, nan) or an SBML function name must be renamed in the model file")
    return ast


# ----------------------------------------------------------------------------- document
def _notes(element, *paragraphs: str) -> None:
    text = "".join(f"<p>{escape(p)}</p>" for p in paragraphs if p)
    if text:
        element.setNotes(f'<body xmlns="http://www.w3.org/1999/xhtml">{text}</body>')


def _sid(name: str) -> str:
    sid = re.sub(r"\W", "_", name)
    return sid if re.match(r"^[A-Za-z_]", sid) else f"m_{sid}"


def _check(code: int, what: str) -> None:
    if code != _libsbml().LIBSBML_OPERATION_SUCCESS:
        raise SBMLExportError(f"libsbml refused {what}: {_libsbml().OperationReturnValue_toString(code)}")


def _parameter_overrides(spec: ModelSpec, parameters: Mapping[str, float | str] | None) -> dict[str, float]:
    from ..model.units import parse_quantity, parse_unit, to_internal

    out = {}
    for name, value in (parameters or {}).items():
        par = spec.parameter(name)  # UnknownNameError with a close-match hint
        if isinstance(value, str):
            q = parse_quantity(value, what=f"parameter {name}")
            expected = parse_unit(par.internal_unit) if par.internal_unit != "dimensionless" else None
            if (expected is None and not q.dimensionless) or (
                    expected is not None and q.dimensionality != expected.dimensionality):
                raise SBMLExportError(f"parameters[{name!r}] = {value!r} does not have the dimension of "
                                      f"{par.internal_unit}; write e.g. '1 {par.internal_unit}'")
            v = to_internal(q)
        else:
            v = float(value)
        if not np.isfinite(v):
            raise SBMLExportError(f"parameters[{name!r}] = {value!r} must be finite")
        out[name] = v
    return out


def sbml_document(spec: ModelSpec, *, initial_state: Sequence[float] | np.ndarray | None = None,
                  parameters: Mapping[str, float | str] | None = None, notes: str = ""):
    """Build the ``libsbml.SBMLDocument`` (Level 3 Version 2) of a model; see :func:`export_sbml`."""
    libsbml = _libsbml()
    n = len(spec.species)
    if initial_state is None:
        x0 = np.array([s.initial for s in spec.species], dtype=float)
    else:
        x0 = np.asarray(initial_state, dtype=float)
        if x0.shape != (n,):
            raise InvalidArgument(f"initial_state must have shape ({n},) (one nM value per species in "
                             f"spec.species order), got {x0.shape}")
        if not np.all(np.isfinite(x0)):
            raise InvalidArgument("initial_state must be finite")
    overrides = _parameter_overrides(spec, parameters)

    doc = libsbml.SBMLDocument(3, 2)
    model = doc.createModel()
    model.setId(_sid(spec.name))
    model.setName(spec.name)
    for dims in _ALWAYS:
        _add_unit_definition(model, dims)
    model.setSubstanceUnits(SUBSTANCE)
    model.setExtentUnits(SUBSTANCE)
    model.setTimeUnits(TIME)
    model.setVolumeUnits(VOLUME)
    from .. import __version__

    _notes(model, spec.description,
           f"Exported by her2sim {__version__} from model {spec.name!r}"
           + (f" with variants {', '.join(v.name for v in spec.variants)}" if spec.variants else "")
           + (f" and drugs {', '.join(d.name for d in spec.drugs)}" if spec.drugs else "") + ".",
           "Units: concentrations nM (nmol/L), time hours. Kinetic laws are compartment size (L) times "
           "her2sim's rate (nM/h); species trajectories are concentrations identical to her2sim's.",
           *(f"Drug {d.name}: set parameter {d.dose_parameter} to the dose in nM "
             f"(class {d.drug_class}; targets {', '.join(d.targets)}; {d.source})." for d in spec.drugs),
           notes)

    size = {}
    for c in spec.compartments:
        comp = model.createCompartment()
        _check(comp.setId(c.name), f"compartment id {c.name!r}")
        comp.setSize(c.size_L)
        comp.setSpatialDimensions(3)
        comp.setUnits(VOLUME)
        comp.setConstant(True)
        _notes(comp, c.source)
        size[c.name] = c.size_L
    comp_of = {}
    for s, value in zip(spec.species, x0):
        sp = model.createSpecies()
        _check(sp.setId(s.name), f"species id {s.name!r}")
        sp.setCompartment(s.compartment)
        sp.setInitialConcentration(float(value))
        sp.setSubstanceUnits(SUBSTANCE)
        sp.setHasOnlySubstanceUnits(False)
        sp.setBoundaryCondition(False)
        sp.setConstant(False)
        _notes(sp, s.description, s.source and f"Source: {s.source}",
               "" if s.preequilibrate else "Held fixed during her2sim's pre-equilibration.")
        comp_of[s.name] = s.compartment
    for p in spec.parameters:
        par = model.createParameter()
        _check(par.setId(p.name), f"parameter id {p.name!r}")
        par.setValue(overrides.get(p.name, p.value))
        par.setUnits(_unit_for(model, p.internal_unit))
        par.setConstant(True)
        _notes(par, p.description, f"Source: {p.source}" if p.source else "",
               f"Written as {p.unit}." if p.unit and p.unit != p.internal_unit else "",
               "Input (e.g. a drug dose in nM): set it before simulating." if p.is_input else "")
    derived = [(e.name, e.node, e.unit, e.description, "expression") for e in spec.expressions]
    derived += [(o.name, o.node, o.unit, o.description, "observable") for o in spec.observables]
    for name, _, unit, description, kind in derived:
        par = model.createParameter()
        _check(par.setId(name), f"{kind} id {name!r}")
        par.setUnits(_unit_for(model, unit))
        par.setConstant(False)
        _notes(par, f"her2sim {kind}" + (f": {description}" if description else ""))

    settings = libsbml.L3ParserSettings()
    settings.setModel(model)
    settings.setParseLog(libsbml.L3P_PARSE_LOG_AS_LN)
    settings.setParseUnits(True)
    for name, node, _, _, kind in derived:
        rule = model.createAssignmentRule()
        rule.setVariable(name)
        _check(rule.setMath(_math(node, settings, f"{kind} {name}")), f"the math of {kind} {name}")

    species_set = set(comp_of)
    expr_species: dict[str, set] = {}
    for e in spec.expressions:
        deps = ex.free_names(e.node)
        expr_species[e.name] = (deps & species_set).union(*(expr_species[d] for d in deps if d in expr_species))
    for r in spec.reactions:
        rx = model.createReaction()
        _check(rx.setId(r.name), f"reaction id {r.name!r}")
        rx.setReversible(_can_be_negative(r.rate))
        involved = [s for s, _ in r.reactants + r.products]
        ref = comp_of[involved[0]] if involved else spec.compartments[0].name
        for items, create in ((r.reactants, rx.createReactant), (r.products, rx.createProduct)):
            for s, c in items:
                ref_sp = create()
                ref_sp.setSpecies(s)
                ref_sp.setStoichiometry(float(c) * size[comp_of[s]] / size[ref])
                ref_sp.setConstant(True)
        deps = ex.free_names(r.rate)
        rate_species = (deps & species_set).union(*(expr_species[d] for d in deps if d in expr_species))
        for m in dict.fromkeys(list(r.modifiers) + sorted(rate_species)):
            if m in involved:
                continue
            mod = rx.createModifier()
            mod.setSpecies(m)
        law = rx.createKineticLaw()
        _check(law.setMath(_math(r.rate, settings, f"reaction {r.name}", wrap=ref)), f"the rate of {r.name}")
        _notes(rx, r.description, f"her2sim rate (nM/h): {r.rate_text}",
               f"Source: {r.source}" if r.source else "")
    return doc


def _can_be_negative(node: ex.Node) -> bool:
    """Whether a rate law has a subtraction or negation (a net rate that may change sign)."""
    if isinstance(node, ex.Neg):
        return True
    if isinstance(node, ex.Num):
        return node.value < 0
    if isinstance(node, ex.Bin):
        return node.op == "-" or _can_be_negative(node.left) or _can_be_negative(node.right)
    if isinstance(node, ex.Call):
        return any(_can_be_negative(a) for a in node.args)
    if isinstance(node, ex.Select):
        return _can_be_negative(node.if_less) or _can_be_negative(node.otherwise)
    return False


@dataclass(frozen=True)
class SBMLCheck:
    """libsbml consistency-check outcome: ``errors`` (severity error/fatal) and ``warnings``."""

    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors


def validate_sbml(document_or_path, *, units: bool = True) -> SBMLCheck:
    """Run libsbml's consistency checks (with unit consistency unless ``units=False``).

    Parameters
    ----------
    document_or_path : a ``libsbml.SBMLDocument`` or the path of an SBML file.
    """
    libsbml = _libsbml()
    if isinstance(document_or_path, (str, Path)):
        doc = libsbml.readSBMLFromFile(str(document_or_path))
    else:
        doc = document_or_path
    doc.setConsistencyChecks(libsbml.LIBSBML_CAT_UNITS_CONSISTENCY, units)
    doc.checkConsistency()
    errors, warnings = [], []
    for i in range(doc.getNumErrors()):
        e = doc.getError(i)
        text = f"[{e.getErrorId()}] line {e.getLine()}: {e.getMessage().strip()}"
        (errors if e.getSeverity() >= libsbml.LIBSBML_SEV_ERROR else warnings).append(text)
    return SBMLCheck(tuple(errors), tuple(warnings))


def export_sbml(spec: ModelSpec, path: str | Path, *, initial_state: Sequence[float] | np.ndarray | None = None,
                parameters: Mapping[str, float | str] | None = None, validate: bool = True,
                notes: str = "") -> Path:
    """Write a model as SBML Level 3 Version 2.

    Parameters
    ----------
    spec : the model (:func:`her2sim.load_model`).
    path : output file (``.xml``/``.sbml``); parent folders must exist.
    initial_state : (n_species,) nM, in ``spec.species`` order, replacing the initial
        concentrations (e.g. a pre-equilibrated state from :func:`her2sim.steady_state`).
    parameters : {parameter: value} overrides; numbers in internal units (nM, h, 1/h, 1/nM/h),
        strings with a unit ("1 uM").
    validate : run libsbml's consistency checks and raise :class:`SBMLExportError` on any error.
    notes : a sentence added to the model's notes (e.g. where the initial state comes from).

    Returns
    -------
    Path of the written file.

    Raises
    ------
    OptionalDependencyError if python-libsbml is not installed (``pip install 'her2sim[sbml]'``).
    """
    libsbml = _libsbml()
    doc = sbml_document(spec, initial_state=initial_state, parameters=parameters, notes=notes)
    if validate:
        check = validate_sbml(doc)
        if check.errors:
            raise SBMLExportError(f"the SBML written for model {spec.name!r} does not validate:\n  - "
                                  + "\n  - ".join(check.errors))
    from .atomic import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        if not libsbml.writeSBMLToFile(doc, str(tmp)):
            raise OutputError(f"could not write SBML to {str(path)!r}; check that the folder exists and is writable")
    return path


def _drug_requests(drugs) -> list[tuple[str, str | float | None]]:
    """'lapatinib', 'lapatinib=1uM', {'lapatinib': '1 uM'} -> [(name, dose or None)]."""
    if isinstance(drugs, Mapping):
        return [(str(k), v) for k, v in drugs.items()]
    if isinstance(drugs, str):
        drugs = [drugs]
    out = []
    for item in drugs:
        name, sep, dose = str(item).partition("=")
        out.append((name.strip(), dose.strip() if sep else None))
    return out


def export_model_sbml(model: str | Path | ModelSpec, out_path: str | Path, variants: Sequence[str] = (),
                      drugs: Sequence[str] | Mapping[str, str | float] = (), preequilibrated: bool = True, *,
                      parameters: Mapping[str, float | str] | None = None) -> Path:
    """Load a model, optionally pre-equilibrate it, and write SBML (backs ``her2sim export-sbml``).

    Parameters
    ----------
    model : bundled model name ("default"), path to a model TOML, or a ModelSpec.
    out_path : output SBML file.
    variants : variant/background names applied on loading.
    drugs : drug names/aliases whose overlays are added; ``"NAME=DOSE"`` (or a mapping
        {name: dose}) also sets the drug's dose parameter in the file (dose at t = 0).
    preequilibrated : start from her2sim's steady state with every drug dose 0 (as
        ``simulate(..., preequilibrate=True)`` does) instead of the file's initial amounts.
    parameters : {parameter: value} overrides, applied before pre-equilibration.

    Returns
    -------
    Path of the written file.
    """
    from ..model.load import load_model
    from ..model.network import compile_network
    from ..solvers.solve import dose_nM, parameter_value, steady_state

    requests = _drug_requests(drugs)
    if isinstance(model, ModelSpec):
        if variants:
            raise InvalidArgument("variants cannot be applied to a ModelSpec; use load_model(name, variants=...)")
        spec = model
        for name, _ in requests:
            spec.drug(name)  # raises UnknownNameError if the spec was loaded without it
    else:
        spec = load_model(model, variants=variants, drugs=[name for name, _ in requests])
    network = compile_network(spec)
    overrides = {k: parameter_value(network, k, v) for k, v in (parameters or {}).items()}
    doses = dict(dose_nM(network, name, dose) for name, dose in requests if dose is not None)
    state = None
    if preequilibrated:
        p = network.parameters_with(overrides)
        for d in spec.drugs:
            p[network.parameter_index(d.dose_parameter)] = 0.0
        state = steady_state(network, network.x0, p)
    note = ("Initial concentrations: her2sim steady state with every drug dose 0 (pre-equilibrated)."
            if preequilibrated else "Initial concentrations: as written in the model files.")
    return export_sbml(spec, out_path, initial_state=state, parameters={**overrides, **doses}, notes=note)


def roadrunner_concentration_atol(rr, atol: float) -> np.ndarray:
    """Give every species of a libRoadRunner instance the absolute tolerance ``atol`` in nM.

    libRoadRunner integrates amounts and turns a scalar ``absolute_tolerance`` into a vector
    scaled by each species' current amount (or its compartment size when that is 0), i.e. a
    tolerance relative to the state. To match her2sim's ``atol`` (nM for every species), this sets
    the amount tolerance vector to ``atol * V`` with ``V`` the size (L) of the species'
    compartment. The vector is kept across ``reset()`` and ``simulate()``.

    Parameters
    ----------
    rr : a ``roadrunner.RoadRunner`` loaded from an exported file.
    atol : absolute tolerance in nM.

    Returns
    -------
    (n_floating_species,) the amount tolerances set, in roadrunner's floating-species order.
    """
    libsbml = _libsbml()
    doc = libsbml.readSBMLFromString(rr.getSBML())
    model = doc.getModel()
    volume = dict(zip(rr.model.getCompartmentIds(), rr.model.getCompartmentVolumes()))
    ids = rr.model.getFloatingSpeciesIds()
    vec = np.array([atol * volume[model.getSpecies(s).getCompartment()] for s in ids], dtype=float)
    rr.integrator.setValue("absolute_tolerance", [float(v) for v in vec])
    return vec
