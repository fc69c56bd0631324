"""Import an SBML Level 2/3 core model as a her2sim :class:`~her2sim.model.spec.ModelSpec` (extra ``sbml``).

>>> from her2sim.io.sbml_import import import_sbml
>>> spec = import_sbml("model.xml")            # or the XML text itself  # doctest: +SKIP
>>> net = her2sim.compile_network(spec)                                  # doctest: +SKIP
>>> x0 = net.initial_state(P)   # (n_params,) -> (n_species,); (B, n_params) -> (B, n_species)  # doctest: +SKIP
>>> res = her2sim.simulate(spec, time=100)    # starts at t = 0 from x0, no pre-equilibration  # doctest: +SKIP

How SBML maps onto her2sim (the API other modules, e.g. PEtab, rely on)
------------------------------------------------------------------------
* **Names**: every SBML id keeps its id as her2sim name, except ids that clash with her2sim's
  reserved names (function names such as ``exp``, ``min``, ``piecewise``; ids containing ``__``,
  which her2sim's Jacobian uses internally). Those get a deterministic ``_`` suffix (repeated
  until unique). ``spec.name_map`` lists every (SBML id, her2sim name) pair;
  :func:`name_map` gives it as a dict. Local parameters become global parameters
  ``<reactionId>_<localId>`` (suffixed the same way if taken).
* **States** (``spec.species``, ``quantity`` says what each holds): every species that is not
  set by an assignment rule, in concentration (``hasOnlySubstanceUnits = false``, the symbol's
  SBML meaning) or in amount (``hasOnlySubstanceUnits = true``); parameters with a rate rule
  (``quantity = "value"``); and model time, a state named ``time`` (or a free variant) with
  d/dt = 1, added only when the math uses the ``time`` csymbol. Boundary and constant species
  are states that no reaction changes.
* **Reactions**: an SBML kinetic law is extent per time; her2sim applies ``N v`` to each state.
  A reaction therefore becomes one her2sim reaction per scale: ``v / V`` for the species in
  concentration in compartment ``V`` (``V`` stays the symbol of the compartment, so a changed
  compartment size acts everywhere), ``v`` for species in amount. Rate rules become
  pseudo-reactions ``rate_rule_<id>`` that produce their variable at the rule's rate.
* **Parameters** (``spec.parameters``): constant SBML parameters, compartment sizes and local
  parameters. Parameters and compartments with an **initial assignment** become named
  expressions of the parameters (so they follow the parameters they are computed from);
  assignment rules become named expressions (``spec.expressions``) evaluated at every time.
* **Initial state, kept symbolic**: each state's ``initial_expr`` is its initial value as an
  expression of parameters (initial assignments, amounts divided by compartment sizes,
  assignment rules at t = 0, resolved recursively). ``Network.initial_state(p)`` evaluates it:
  shape (n_params,) -> (n_species,) or batched (B, n_params) -> (B, n_species); ``simulate`` and
  ``simulate_batch`` use it by default, so changing a parameter that sets an initial value
  changes the initial state. To set a species' initial value directly (a PEtab condition
  column naming a species), overwrite that column of ``initial_state(P)`` and pass it as
  ``initial_state=`` / ``X0``.
* **Time**: the model's own time unit (``spec.time_unit``, e.g. ``"min"`` or ``"model time"``
  where undeclared); numbers given to ``simulate(time=..., t_eval=...)`` are in that unit.
  Values are in the model's own substance/volume units (her2sim's ``nM`` label does not apply).
  ``spec.preequilibrate`` is False: imported models start at t = 0 from their initial state,
  as SBML prescribes (pass ``preequilibrate=True`` to ``simulate`` for a drug-free rest state).
* **Math**: libsbml AST nodes are translated node by node into her2sim expression trees
  (:mod:`her2sim.model.expr`); no SBML text is ever evaluated. Function definitions are inlined.
  ``piecewise``, relations, ``and/or/xor/not/implies``, trigonometric and hyperbolic functions
  (and their inverses), ``floor``, ``ceiling``, ``root``, ``log`` with a base, ``min/max``,
  ``pi``, ``exponentiale``, ``avogadro``, ``true/false``, ``INF``/``NaN`` are supported.
* **Events with time triggers** (``time >= t_e`` or ``time > t_e``, ``t_e`` an expression of
  parameters, > 0; dose steps, washouts, parameter switches) become
  :class:`~her2sim.model.spec.TimedEvent` objects (``spec.events``): both engines stop exactly at
  ``t_e`` (per condition: ``Network.event_times(P)`` is (B, K)) and apply every assignment of
  the events firing together, computed from the values just before them; parameter changes
  persist. Output at ``t_e`` shows the values after a ``>=`` event and before a ``>`` event
  (which fires just after ``t_e``), as SBML prescribes.
* **Refused** (:class:`~her2sim.errors.UnsupportedSBMLError`, one line naming construct and
  element): algebraic rules, state-triggered events (any other trigger), events with delay or
  priority, events firing at or before t = 0, events that assign a compartment, a stoichiometry,
  a value defined by an initial assignment or a parameter an initial assignment reads,
  ``delay``, ``rateOf``, ``factorial``, ``quotient``/``rem``,
  fast reactions, rules or initial assignments on compartments that change in time (variable
  compartments), stoichiometry math or stoichiometries set by rules/assignments, conversion
  factors, reactions without kinetic law, species without an initial value, concentration
  species in a compartment without a size, SBML Level 3 packages, and algebraic loops.
* **Units**: read as text where present (``Parameter.unit``); missing units are not an error.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..model import expr as ex
from ..errors import OptionalDependencyError, SBMLImportError, UnsupportedSBMLError
from ..model.spec import Compartment, Drug, Expression, ModelSpec, Observable, Parameter, Reaction, Species, TimedEvent

__all__ = ["import_sbml", "name_map", "RESERVED_NAMES"]

#: names an SBML id may not keep (her2sim function names); ids containing "__" are renamed too
RESERVED_NAMES = frozenset(set(ex.FUNCTIONS) | set(ex.LOGIC) | {"select_lt", "sign", "pow"})
AVOGADRO = 6.02214179e23  # the value the SBML L3 specification prescribes


def _libsbml():
    try:
        import libsbml
    except ImportError:
        raise OptionalDependencyError("python-libsbml", "sbml", "SBML import") from None
    return libsbml


def name_map(spec: ModelSpec) -> dict[str, str]:
    """{SBML id: her2sim name} of an imported model (identity except for reserved ids)."""
    return dict(spec.name_map)


def _read(source, libsbml):
    text = str(source)
    if isinstance(source, str) and text.lstrip().startswith("<"):
        doc, label = libsbml.readSBMLFromString(text), "<string>"
    else:
        path = Path(source)
        if not path.is_file():
            raise SBMLImportError(f"SBML file {str(path)!r} does not exist")
        doc, label = libsbml.readSBMLFromFile(str(path)), str(path)
    errors = [doc.getError(i) for i in range(doc.getNumErrors())
              if doc.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR]
    if errors:
        e = errors[0]
        raise SBMLImportError(f"{label}: not valid SBML (line {e.getLine()}): {e.getMessage().strip()}")
    if doc.getModel() is None:
        raise SBMLImportError(f"{label}: the SBML document has no model")
    return doc, label


class _Importer:
    """One import: reads the libsbml model, refuses what is unsupported, builds the ModelSpec."""

    def __init__(self, doc, label: str, libsbml):
        self.L, self.doc, self.label = libsbml, doc, label
        self.m = doc.getModel()
        m = self.m
        self.level = doc.getLevel()
        self.functions = {}
        for i in range(m.getNumFunctionDefinitions()):
            fd = m.getFunctionDefinition(i)
            self.functions[fd.getId()] = ([fd.getArgument(k).getName() for k in range(fd.getNumArguments())],
                                          fd.getBody())
        self.species = {m.getSpecies(i).getId(): m.getSpecies(i) for i in range(m.getNumSpecies())}
        self.compartments = {m.getCompartment(i).getId(): m.getCompartment(i) for i in range(m.getNumCompartments())}
        self.params = {m.getParameter(i).getId(): m.getParameter(i) for i in range(m.getNumParameters())}
        self.reactions = {m.getReaction(i).getId(): m.getReaction(i) for i in range(m.getNumReactions())}
        self.species_refs = set()
        for r in self.reactions.values():
            for lst in (r.getListOfReactants(), r.getListOfProducts(), r.getListOfModifiers()):
                for k in range(lst.size()):
                    if lst.get(k).isSetId():
                        self.species_refs.add(lst.get(k).getId())
        self.assign_rules, self.rate_rules = {}, {}
        for i in range(m.getNumRules()):
            rule = m.getRule(i)
            if rule.isAlgebraic():
                raise UnsupportedSBMLError("algebraic rule", f"rule #{i + 1}")
            var = rule.getVariable()
            (self.assign_rules if rule.isAssignment() else self.rate_rules)[var] = rule.getMath()
        self.init_assign = {m.getInitialAssignment(i).getSymbol(): m.getInitialAssignment(i).getMath()
                            for i in range(m.getNumInitialAssignments())}
        self.names = self._names()
        self.time_name = None
        self.referenced_reactions: set[str] = set()

    # -- refusals ----------------------------------------------------------------------------
    def refuse_unsupported(self) -> None:
        m = self.m
        if self.level == 3:  # packages that change the model's meaning declare required="true"
            ns = self.doc.getNamespaces()
            core = self.doc.getSBMLNamespaces().getURI()
            for i in range(ns.getNumNamespaces()):
                uri = ns.getURI(i)
                if uri != core and self.doc.getPackageRequired(uri):
                    raise UnsupportedSBMLError("SBML Level 3 package", ns.getPrefix(i) or uri)
        for i in range(m.getNumEvents()):
            ev = m.getEvent(i)
            eid = ev.getId() or f"event #{i + 1}"
            if ev.isSetDelay():
                raise UnsupportedSBMLError("event with delay", eid)
            if ev.isSetPriority():
                raise UnsupportedSBMLError("event priority", eid)
            if not ev.isSetTrigger() or ev.getTrigger().getMath() is None:
                raise UnsupportedSBMLError("element without math", eid)
            for k in range(ev.getNumEventAssignments()):
                var = ev.getEventAssignment(k).getVariable()
                if var in self.compartments:
                    raise UnsupportedSBMLError("variable compartment (event assigns a compartment size)", eid)
                if var in self.species_refs:
                    raise UnsupportedSBMLError("stoichiometry set by an event", eid)
                if var in self.assign_rules:
                    raise SBMLImportError(f"event {eid!r} assigns {var!r}, which an assignment rule sets")
        if self.level == 3 and m.isSetConversionFactor():
            raise UnsupportedSBMLError("conversion factor", m.getConversionFactor())
        for var in list(self.assign_rules) + list(self.rate_rules) + list(self.init_assign):
            if var in self.species_refs:
                raise UnsupportedSBMLError("stoichiometry set by a rule or initial assignment", var)
            if var in self.reactions:
                raise UnsupportedSBMLError("assignment to a reaction id", var)
        for var in list(self.assign_rules) + list(self.rate_rules):
            if var in self.compartments:
                raise UnsupportedSBMLError("variable compartment (rule on a compartment size)", var)
        for sid, s in self.species.items():
            if self.level == 3 and s.isSetConversionFactor():
                raise UnsupportedSBMLError("conversion factor", sid)
            if sid in self.assign_rules:
                continue
            if not (s.isSetInitialAmount() or s.isSetInitialConcentration() or sid in self.init_assign):
                raise UnsupportedSBMLError("species without an initial value", sid)
        for rid, r in self.reactions.items():
            if r.isSetFast() and r.getFast():
                raise UnsupportedSBMLError("fast reaction", rid)
            if not r.isSetKineticLaw() or r.getKineticLaw().getMath() is None:
                raise UnsupportedSBMLError("reaction without a kinetic law", rid)
            for lst in (r.getListOfReactants(), r.getListOfProducts()):
                for k in range(lst.size()):
                    sr = lst.get(k)
                    if self.level == 2 and sr.isSetStoichiometryMath():
                        raise UnsupportedSBMLError("stoichiometryMath", rid)
                    if self.level == 3 and not sr.isSetStoichiometry():
                        raise UnsupportedSBMLError("species reference without a stoichiometry", sr.getId() or rid)
                    if sr.getSpecies() not in self.species:
                        raise SBMLImportError(f"reaction {rid!r} refers to unknown species {sr.getSpecies()!r}")
        for pid, p in self.params.items():
            if pid not in self.assign_rules and pid not in self.init_assign and not p.isSetValue():
                raise UnsupportedSBMLError("parameter without a value", pid)
        self.sizeless = {cid for cid, c in self.compartments.items() if cid not in self.init_assign and not c.isSetSize()}
        for sid, s in self.species.items():
            if s.getCompartment() in self.sizeless and not s.getHasOnlySubstanceUnits():
                raise UnsupportedSBMLError("concentration species in a compartment without a size", sid)

    # -- names -------------------------------------------------------------------------------
    def _names(self) -> dict[str, str]:
        ids = (list(self.compartments) + list(self.species) + list(self.params) + list(self.reactions)
               + sorted(self.species_refs))
        used, out = set(ids), {}
        for sid in ids:
            name = sid
            if name in RESERVED_NAMES or "__" in name:
                name = name.replace("__", "_")
                while name in used or name in RESERVED_NAMES:
                    name += "_"
                used.add(name)
            out[sid] = name
        self.used = used
        return out

    def fresh(self, base: str) -> str:
        name = base.replace("__", "_")
        while name in self.used or name in RESERVED_NAMES:
            name += "_"
        self.used.add(name)
        return name

    # -- math --------------------------------------------------------------------------------
    def math(self, node, where: str, scope: dict | None = None, depth: int = 0) -> ex.Node:
        """Translate a libsbml ASTNode into a her2sim expression tree (no text is evaluated)."""
        if node is None:
            raise UnsupportedSBMLError("element without math", where)
        if depth > 200:
            raise UnsupportedSBMLError("recursive function definitions", where)
        L, scope = self.L, scope or {}
        t = node.getType()
        kids = [self.math(node.getChild(i), where, scope, depth + 1) for i in range(node.getNumChildren())] \
            if t not in (L.AST_FUNCTION,) else None
        if t == L.AST_INTEGER:
            return ex.Num(float(node.getInteger()))
        if t in (L.AST_REAL, L.AST_REAL_E, L.AST_RATIONAL):
            return ex.Num(float(node.getReal()))
        if t == L.AST_NAME:
            return self.symbol(node.getName(), where, scope)
        if t == L.AST_NAME_TIME:
            if self.time_name is None:
                self.time_name = self.fresh("time")
            return ex.Sym(self.time_name)
        if t == L.AST_NAME_AVOGADRO:
            return ex.Num(AVOGADRO)
        constants = {L.AST_CONSTANT_E: math.e, L.AST_CONSTANT_PI: math.pi, L.AST_CONSTANT_TRUE: 1.0,
                     L.AST_CONSTANT_FALSE: 0.0}
        if t in constants:
            return ex.Num(constants[t])
        if t == L.AST_PLUS:
            return _fold("+", kids, ex.ZERO)
        if t == L.AST_TIMES:
            return _fold("*", kids, ex.ONE)
        if t == L.AST_MINUS:
            return ex.Neg(kids[0]) if len(kids) == 1 else ex.Bin("-", kids[0], kids[1])
        if t == L.AST_DIVIDE:
            return ex.Bin("/", kids[0], kids[1])
        if t in (L.AST_POWER, L.AST_FUNCTION_POWER):
            return ex.Bin("**", kids[0], kids[1])
        if t == L.AST_FUNCTION_ROOT:
            return ex.Call("sqrt", (kids[0],)) if len(kids) == 1 else ex.Bin("**", kids[1], ex.Bin("/", ex.ONE, kids[0]))
        if t == L.AST_FUNCTION_LOG:
            if len(kids) == 1:
                return ex.Call("log10", (kids[0],))
            if kids[0] == ex.Num(10.0):
                return ex.Call("log10", (kids[1],))
            return ex.Bin("/", ex.Call("log", (kids[1],)), ex.Call("log", (kids[0],)))
        simple = {L.AST_FUNCTION_LN: "log", L.AST_FUNCTION_EXP: "exp", L.AST_FUNCTION_ABS: "abs",
                  L.AST_FUNCTION_FLOOR: "floor", L.AST_FUNCTION_CEILING: "ceil", L.AST_FUNCTION_SIN: "sin",
                  L.AST_FUNCTION_COS: "cos", L.AST_FUNCTION_TAN: "tan", L.AST_FUNCTION_SINH: "sinh",
                  L.AST_FUNCTION_COSH: "cosh", L.AST_FUNCTION_TANH: "tanh", L.AST_FUNCTION_ARCSIN: "asin",
                  L.AST_FUNCTION_ARCCOS: "acos", L.AST_FUNCTION_ARCTAN: "atan", L.AST_FUNCTION_ARCSINH: "asinh",
                  L.AST_FUNCTION_ARCCOSH: "acosh", L.AST_FUNCTION_ARCTANH: "atanh"}
        if t in simple:
            return ex.Call(simple[t], (kids[0],))
        recip = {L.AST_FUNCTION_SEC: "cos", L.AST_FUNCTION_CSC: "sin", L.AST_FUNCTION_COT: "tan",
                 L.AST_FUNCTION_SECH: "cosh", L.AST_FUNCTION_CSCH: "sinh", L.AST_FUNCTION_COTH: "tanh"}
        if t in recip:
            return ex.Bin("/", ex.ONE, ex.Call(recip[t], (kids[0],)))
        of_recip = {L.AST_FUNCTION_ARCSEC: "acos", L.AST_FUNCTION_ARCCSC: "asin", L.AST_FUNCTION_ARCCOT: "atan",
                    L.AST_FUNCTION_ARCSECH: "acosh", L.AST_FUNCTION_ARCCSCH: "asinh", L.AST_FUNCTION_ARCCOTH: "atanh"}
        if t in of_recip:
            return ex.Call(of_recip[t], (ex.Bin("/", ex.ONE, kids[0]),))
        if t == L.AST_FUNCTION_PIECEWISE:
            pairs = tuple((kids[k], kids[k + 1]) for k in range(0, len(kids) - 1, 2))
            otherwise = kids[-1] if len(kids) % 2 == 1 else ex.Num(math.nan)
            return ex.Piecewise(pairs, otherwise) if pairs else otherwise
        rel = {L.AST_RELATIONAL_LT: "<", L.AST_RELATIONAL_LEQ: "<=", L.AST_RELATIONAL_GT: ">",
               L.AST_RELATIONAL_GEQ: ">=", L.AST_RELATIONAL_EQ: "==", L.AST_RELATIONAL_NEQ: "!="}
        if t in rel:
            if len(kids) < 2:
                return ex.ONE
            parts = [ex.Cmp(rel[t], a, b) for a, b in zip(kids, kids[1:])]
            return parts[0] if len(parts) == 1 else ex.Call("and", tuple(parts))
        logic = {L.AST_LOGICAL_AND: ("and", ex.ONE), L.AST_LOGICAL_OR: ("or", ex.ZERO),
                 L.AST_LOGICAL_XOR: ("xor", ex.ZERO)}
        if t in logic:
            fn, empty = logic[t]
            return ex.Call(fn, tuple(kids)) if kids else empty
        if t == L.AST_LOGICAL_NOT:
            return ex.Call("not", (kids[0],))
        if t == getattr(L, "AST_LOGICAL_IMPLIES", -999):
            return ex.Call("or", (ex.Call("not", (kids[0],)), kids[1]))
        if t in (getattr(L, "AST_FUNCTION_MAX", -999), getattr(L, "AST_FUNCTION_MIN", -999)):
            fn = "max" if t == L.AST_FUNCTION_MAX else "min"
            if not kids:
                raise UnsupportedSBMLError(f"{fn}() without arguments", where)
            out = kids[0]
            for k in kids[1:]:
                out = ex.Call(fn, (out, k))
            return out
        if t == L.AST_FUNCTION:
            name = node.getName()
            if name not in self.functions:
                raise SBMLImportError(f"{where}: call of undefined function {name!r}")
            bvars, body = self.functions[name]
            if body is None:
                raise UnsupportedSBMLError("function definition without a body", name)
            args = [self.math(node.getChild(i), where, scope, depth + 1) for i in range(node.getNumChildren())]
            if len(args) != len(bvars):
                raise SBMLImportError(f"{where}: function {name!r} takes {len(bvars)} arguments, got {len(args)}")
            return self.math(body, f"{where} (function {name})", dict(zip(bvars, args)), depth + 1)
        names = {L.AST_FUNCTION_DELAY: "delay", L.AST_FUNCTION_FACTORIAL: "factorial",
                 getattr(L, "AST_FUNCTION_RATE_OF", -998): "rateOf", getattr(L, "AST_FUNCTION_QUOTIENT", -997): "quotient",
                 getattr(L, "AST_FUNCTION_REM", -996): "rem"}
        raise UnsupportedSBMLError(f"MathML {names.get(t, node.getName() or f'node type {t}')}", where)

    def symbol(self, sid: str, where: str, scope: dict) -> ex.Node:
        if sid in scope:
            return scope[sid]
        if sid in self.species_refs:
            raise UnsupportedSBMLError("stoichiometry used in math (species reference id)", sid)
        if sid in self.sizeless:
            raise UnsupportedSBMLError("compartment without a size used in math", sid)
        if sid in self.reactions:
            self.referenced_reactions.add(sid)
            return ex.Sym(self.names[sid])
        if sid in self.names:
            return ex.Sym(self.names[sid])
        raise SBMLImportError(f"{where}: unknown identifier {sid!r}")

    # -- build ------------------------------------------------------------------------------
    def build(self) -> ModelSpec:
        m, n = self.m, self.names
        self.refuse_unsupported()
        parameters: list[Parameter] = []
        param_values: dict[str, float] = {}
        expressions: dict[str, tuple[ex.Node, str]] = {}   # name -> (node, unit)
        init_raw: dict[str, ex.Node] = {}                  # name -> initial value (any names)
        ia_constants: set[str] = set()                     # constant names defined by initial assignments
        states: list[tuple] = []                           # (name, compartment, quantity, sbml id)
        reactions: list[Reaction] = []
        compartments = []

        def unit_of(element) -> str:
            return element.getUnits() if element.isSetUnits() else "dimensionless"

        for cid, c in self.compartments.items():
            size = c.getSize() if c.isSetSize() else math.nan
            compartments.append(Compartment(n[cid], size, source="SBML"))
            if cid in self.sizeless:
                continue
            if cid in self.init_assign:
                ia_constants.add(n[cid])
                init_raw[n[cid]] = self.math(self.init_assign[cid], f"initialAssignment {cid}")
            else:
                parameters.append(Parameter(n[cid], size, unit_of(c), unit_of(c), "SBML compartment size",
                                            origin="compartment"))
        for pid, p in self.params.items():
            if pid in self.assign_rules:
                expressions[n[pid]] = (self.math(self.assign_rules[pid], f"assignmentRule {pid}"), unit_of(p))
            elif pid in self.rate_rules:
                states.append((n[pid], "", "value", pid))
            elif pid in self.init_assign:
                ia_constants.add(n[pid])
                init_raw[n[pid]] = self.math(self.init_assign[pid], f"initialAssignment {pid}")
            else:
                parameters.append(Parameter(n[pid], p.getValue(), unit_of(p), unit_of(p), "SBML parameter"))
            if pid in self.rate_rules:
                init_raw[n[pid]] = (self.math(self.init_assign[pid], f"initialAssignment {pid}")
                                    if pid in self.init_assign else ex.Num(p.getValue() if p.isSetValue() else math.nan))
                if not p.isSetValue() and pid not in self.init_assign:
                    raise UnsupportedSBMLError("parameter without a value", pid)
        amount_species = set()
        for sid, s in self.species.items():
            cname = n[s.getCompartment()] if s.getCompartment() in n else ""
            amount = s.getHasOnlySubstanceUnits()
            if amount:
                amount_species.add(sid)
            if sid in self.assign_rules:
                expressions[n[sid]] = (self.math(self.assign_rules[sid], f"assignmentRule {sid}"), "")
                continue
            states.append((n[sid], cname, "amount" if amount else "concentration", sid))
            if sid in self.init_assign:
                init_raw[n[sid]] = self.math(self.init_assign[sid], f"initialAssignment {sid}")
            elif s.isSetInitialAmount():
                v = ex.Num(s.getInitialAmount())
                init_raw[n[sid]] = v if amount else ex.Bin("/", v, ex.Sym(cname))
            else:
                v = ex.Num(s.getInitialConcentration())
                init_raw[n[sid]] = ex.Bin("*", v, ex.Sym(cname)) if amount else v
        rate_rule_math = {var: self.math(rule, f"rateRule {var}") for var, rule in self.rate_rules.items()}
        raw_events = [self.event_math(m.getEvent(i), i) for i in range(m.getNumEvents())]
        # reactions: kinetic laws with local parameters as global parameters
        rates: dict[str, ex.Node] = {}
        for rid, r in self.reactions.items():
            kl = r.getKineticLaw()
            local = kl.getListOfLocalParameters() if self.level == 3 else kl.getListOfParameters()
            scope = {}
            for k in range(local.size()):
                lp = local.get(k)
                name = self.fresh(f"{rid}_{lp.getId()}")
                scope[lp.getId()] = ex.Sym(name)
                if not lp.isSetValue():
                    raise UnsupportedSBMLError("local parameter without a value", f"{rid}/{lp.getId()}")
                parameters.append(Parameter(name, lp.getValue(), unit_of(lp), unit_of(lp),
                                            f"SBML local parameter {lp.getId()} of reaction {rid}", origin=rid))
            rates[rid] = self.math(kl.getMath(), f"kineticLaw {rid}", scope)
        for rid in self.reactions:  # reaction ids used in math stand for their rate
            if rid in self.referenced_reactions:
                expressions[n[rid]] = (rates[rid], "")
        for rid, r in self.reactions.items():
            rate = ex.Sym(n[rid]) if rid in self.referenced_reactions else rates[rid]
            groups: dict[str, list] = {}
            for sign, lst in ((-1.0, r.getListOfReactants()), (1.0, r.getListOfProducts())):
                for k in range(lst.size()):
                    sr = lst.get(k)
                    sid = sr.getSpecies()
                    s = self.species[sid]
                    if s.getBoundaryCondition():
                        continue
                    if s.getConstant():
                        raise SBMLImportError(f"reaction {rid!r} changes constant species {sid!r}")
                    if sid in self.assign_rules or sid in self.rate_rules:
                        raise SBMLImportError(f"reaction {rid!r} changes {sid!r}, which a rule also sets")
                    key = "" if sid in amount_species else n[s.getCompartment()]
                    groups.setdefault(key, []).append((sign, n[sid], sr.getStoichiometry() if sr.isSetStoichiometry() else 1.0))
            modifiers = tuple(n[r.getModifier(k).getSpecies()] for k in range(r.getNumModifiers())
                              if r.getModifier(k).getSpecies() in n)
            for key, entries in groups.items():
                name = n[rid] if len(groups) == 1 else self.fresh(f"{rid}_{key or 'amount'}")
                node = rate if not key else ex.Bin("/", rate, ex.Sym(key))
                reactants = tuple((s, c) for sign, s, c in entries if sign < 0)
                products = tuple((s, c) for sign, s, c in entries if sign > 0)
                reactions.append(Reaction(name, reactants, products, modifiers, node, ex.to_text(node),
                                          source="SBML", origin=rid))
        for var, rule in self.rate_rules.items():
            if var not in n:
                raise SBMLImportError(f"rate rule for unknown variable {var!r}")
            if var in self.species and self.species[var].getConstant():
                raise SBMLImportError(f"rate rule for constant species {var!r}")
            if var in self.params and self.params[var].getConstant():
                raise SBMLImportError(f"rate rule for constant parameter {var!r}")
            node = rate_rule_math[var]
            name = self.fresh(f"rate_rule_{var}")
            reactions.append(Reaction(name, (), ((n[var], 1.0),), (), node, ex.to_text(node), source="SBML rate rule",
                                      origin=var))
        for var in self.assign_rules:
            if var not in n:
                raise SBMLImportError(f"assignment rule for unknown variable {var!r}")
        for var in self.init_assign:
            if var not in n:
                raise SBMLImportError(f"initial assignment to unknown symbol {var!r}")
        if self.time_name is None and not states:  # a network needs one state: model time serves
            self.time_name = self.fresh("time")
        if self.time_name is not None:
            states.append((self.time_name, "", "time", ""))
            init_raw[self.time_name] = ex.ZERO
            reactions.append(Reaction(self.fresh("model_clock"), (), ((self.time_name, 1.0),), (), ex.ONE, "1",
                                      source="model time: d(time)/dt = 1"))
        param_values = {p.name: p.value for p in parameters}
        # initial values as expressions of parameters only
        resolved: dict[str, ex.Node] = {}
        raw = {**{k: v for k, (v, _) in expressions.items()}, **init_raw}

        def resolve(name: str, stack: tuple = ()) -> ex.Node:
            if name in param_values:
                return ex.Sym(name)
            if name in resolved:
                return resolved[name]
            if name in stack:
                raise UnsupportedSBMLError("algebraic loop (cyclic rules/initial assignments)", name)
            if name not in raw:
                raise SBMLImportError(f"{name!r} has no value at t = 0")
            node = raw[name]
            out = ex.simplify(ex.substitute(node, {d: resolve(d, stack + (name,)) for d in ex.free_names(node)}))
            resolved[name] = out
            return out

        for name in ia_constants:
            expressions[name] = (resolve(name), "")
        pidx = {p: j for j, p in enumerate(param_values)}
        p0 = np.array(list(param_values.values()), dtype=float)[:, None]
        species = []
        for name, cname, quantity, sid in states:
            node = resolve(name)
            value = _value(node, pidx, p0)
            species.append(Species(name, value, cname, source="SBML", preequilibrate=quantity != "time", origin=sid,
                                   initial_expr=None if isinstance(node, ex.Num) else node, quantity=quantity))
        for name in list(expressions):  # rate expressions of referenced reactions are evaluated too
            resolve(name)
        ordered = _topological(expressions)
        exprs = tuple(Expression(k, node, ex.to_text(node), unit) for k, (node, unit) in ordered)
        inlined: dict[str, ex.Node] = {}
        for k, (node, _) in ordered:
            inlined[k] = ex.substitute(node, inlined)
        events = self.timed_events(raw_events, inlined, param_values, pidx, p0,
                                   {k: resolved[k] for k in ia_constants}, {s[0] for s in states})
        events += self.time_switches([r.rate for r in reactions] + [node for node, _ in expressions.values()],
                                     {float(_value(e.time, pidx, p0)) for e in events})
        observables = tuple(Observable(n[sid], ex.Sym(n[sid]), n[sid], "", description=self.species[sid].getName())
                            for sid in self.species)
        time_unit = self._time_unit()
        return ModelSpec(name=m.getId() or Path(self.label).stem, description=m.getName(),
                         compartments=tuple(compartments), species=tuple(species), parameters=tuple(parameters),
                         expressions=exprs, reactions=tuple(reactions), observables=observables,
                         files=(self.label,), preequilibrate=False, nonnegative=False, time_unit=time_unit,
                         events=events,
                         name_map=tuple(self.names.items()))

    def event_math(self, ev, i: int):
        """(id, trigger time expression, [(variable, value)], strict) of an event ``time >= t_e``
        (or ``time > t_e``: strict); other triggers (state-triggered events) are refused."""
        L, eid = self.L, ev.getId() or f"event #{i + 1}"
        trig = ev.getTrigger().getMath()
        kinds = [trig.getChild(k).getType() for k in range(trig.getNumChildren())]
        ty, two = trig.getType(), len(kinds) == 2
        if ty in (L.AST_RELATIONAL_GEQ, L.AST_RELATIONAL_GT) and two and kinds[0] == L.AST_NAME_TIME:
            other, strict = trig.getChild(1), ty == L.AST_RELATIONAL_GT
        elif ty in (L.AST_RELATIONAL_LEQ, L.AST_RELATIONAL_LT) and two and kinds[1] == L.AST_NAME_TIME:
            other, strict = trig.getChild(0), ty == L.AST_RELATIONAL_LT
        else:
            raise UnsupportedSBMLError("event trigger other than time >= t_e (state-triggered event)", eid)
        t_e = self.math(other, f"trigger of event {eid}")
        assignments = []
        for k in range(ev.getNumEventAssignments()):
            ea = ev.getEventAssignment(k)
            if ea.getMath() is None:
                raise UnsupportedSBMLError("element without math", f"{eid}/{ea.getVariable()}")
            if ea.getVariable() not in self.names:
                raise SBMLImportError(f"event {eid!r} assigns unknown symbol {ea.getVariable()!r}")
            assignments.append((self.names[ea.getVariable()], self.math(ea.getMath(), f"event {eid}")))
        return eid, t_e, assignments, strict

    def timed_events(self, raw_events, inlined, param_values, pidx, p0, ia_nodes, state_names) -> tuple:
        """Validated :class:`TimedEvent` objects (expressions inlined, targets checked)."""
        out = []
        for eid, t_e, assignments, strict in raw_events:
            t_node = ex.simplify(ex.substitute(t_e, inlined))
            if not ex.free_names(t_node) <= set(param_values):
                raise UnsupportedSBMLError("event trigger that depends on the state (state-triggered event)", eid)
            when = _value(t_node, pidx, p0)
            if not when > 0:  # also NaN
                raise UnsupportedSBMLError("event firing at or before t = 0", eid)
            checked = []
            for target, value in assignments:
                if target not in state_names and target not in param_values:
                    raise UnsupportedSBMLError("event assigning a value defined by an initial assignment", eid)
                users = [k for k, node in ia_nodes.items() if target in ex.free_names(node)]
                if users:
                    raise UnsupportedSBMLError("event assigning a parameter that an initial assignment reads",
                                               f"{eid} -> {users[0]}")
                checked.append((target, ex.simplify(ex.substitute(value, inlined))))
            out.append(TimedEvent(eid, t_node, tuple(checked), strict))
        return tuple(out)

    def time_switches(self, nodes, taken: set) -> tuple:
        """Stops (events without assignments) at the constant times where a comparison with model
        time switches, e.g. ``piecewise(0, time < 1800, 1)``: both engines then step exactly to
        the discontinuity instead of resolving it by step-size control."""
        if self.time_name is None:
            return ()
        time = ex.Sym(self.time_name)
        found: set = set()

        def walk(node):
            if isinstance(node, ex.Cmp):
                for a, b in ((node.left, node.right), (node.right, node.left)):
                    if a == time and isinstance(b, ex.Num):
                        found.add(b.value)
                    if isinstance(a, ex.Bin) and a.op == "-" and a.left == time and isinstance(a.right, ex.Num) \
                            and b == ex.ZERO:
                        found.add(a.right.value)
            for child in _children(node):
                walk(child)

        for node in nodes:
            walk(ex.simplify(node))
        times = sorted(t for t in found if math.isfinite(t) and t > 0 and t not in taken)
        return tuple(TimedEvent(f"time_switch_{k + 1}", ex.Num(t), ()) for k, t in enumerate(times))

    def _time_unit(self) -> str:
        """The model's time unit as pint text ("s", "min", "h", "day") or "model time" if undeclared
        or unusual. L2 models default to seconds (or their unit definition ``time``)."""
        m, L = self.m, self.L
        uid = m.getTimeUnits() if self.level == 3 and m.isSetTimeUnits() else ("time" if self.level == 2 else "")
        if not uid:
            return "model time"
        if uid == "second":
            return "s"
        ud = m.getUnitDefinition(uid)
        if ud is None:
            return "s" if self.level == 2 else "model time"
        if ud.getNumUnits() != 1 or ud.getUnit(0).getKind() != L.UNIT_KIND_SECOND or ud.getUnit(0).getExponent() != 1:
            return "model time"
        factor = ud.getUnit(0).getMultiplier() * 10.0 ** ud.getUnit(0).getScale()
        known = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}
        return next((v for k, v in known.items() if abs(factor - k) <= 1e-12 * k), "model time")


def _children(node) -> tuple:
    if isinstance(node, ex.Bin):
        return (node.left, node.right)
    if isinstance(node, ex.Neg):
        return (node.arg,)
    if isinstance(node, ex.Call):
        return node.args
    if isinstance(node, ex.Cmp):
        return (node.left, node.right)
    if isinstance(node, ex.Piecewise):
        return tuple(n for pair in node.pieces for n in pair) + (node.otherwise,)
    if isinstance(node, ex.Select):
        return (node.a, node.b, node.if_less, node.otherwise)
    return ()


def _fold(op: str, kids: list, empty: ex.Node) -> ex.Node:
    if not kids:
        return empty
    out = kids[0]
    for k in kids[1:]:
        out = ex.Bin(op, out, k)
    return out


def _value(node: ex.Node, pidx: dict, p0: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        v = ex.compile_expr(ex.simplify(ex.expand(node)), {}, pidx)(None, p0)
    return float(np.broadcast_to(v, (1,))[0])


def _topological(expressions: dict) -> list:
    """Named expressions ordered so that each comes after the ones it uses; cycles are refused."""
    order, state = [], {}

    def visit(name, stack):
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            raise UnsupportedSBMLError("algebraic loop (cyclic assignment rules)", name)
        state[name] = 1
        for d in sorted(ex.free_names(expressions[name][0])):
            if d in expressions:
                visit(d, stack)
        state[name] = 2
        order.append((name, expressions[name]))

    for name in expressions:
        visit(name, ())
    return order


def import_sbml(source: str | Path, *, inputs=()) -> ModelSpec:
    """Import an SBML Level 2/3 core model (a path or the XML text) as a ModelSpec.

    ``inputs``: SBML ids of constant parameters to expose as her2sim *drugs* (dose parameters),
    so that ``simulate(drugs=...)``, screens and sweeps can set them by name, e.g.
    ``import_sbml("m.xml", inputs=["EGF"])`` then ``dose_response(spec, "EGF", [0, 1, 10], "S@5")``.
    Doses are numbers in the parameter's own unit (no unit conversion).

    Raises :class:`~her2sim.errors.UnsupportedSBMLError` (one line: construct and element id) for
    anything outside the supported set (see the module docstring), :class:`SBMLImportError` for
    invalid files and :class:`OptionalDependencyError` without python-libsbml.
    """
    libsbml = _libsbml()
    doc, label = _read(source, libsbml)
    spec = _Importer(doc, label, libsbml).build()
    if isinstance(inputs, str):
        inputs = [inputs]
    if not inputs:
        return spec
    names = dict(spec.name_map)
    params = {p.name: p for p in spec.parameters}
    drugs, new_params = [], list(spec.parameters)
    for sid in inputs:
        name = names.get(sid, sid)
        if name not in params:
            raise SBMLImportError(f"inputs: {sid!r} is not a constant parameter of the model; inputs must be "
                                  f"among {sorted(params)[:20]}")
        drugs.append(Drug(name, (sid,) if sid != name else (), "SBML input parameter", (), f"sets parameter {sid}",
                          name, None, "SBML", label))
        new_params = [replace(p, is_input=True) if p.name == name else p for p in new_params]
    return replace(spec, drugs=tuple(drugs), parameters=tuple(new_params))
