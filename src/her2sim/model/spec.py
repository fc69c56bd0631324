"""Frozen, validated model objects. Values are plain floats in internal units (nM, h).

A :class:`ModelSpec` is what :func:`her2sim.model.load.load_model` returns and what
:func:`her2sim.model.network.compile_network` consumes. Use :func:`dataclasses.replace` for what-ifs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .expr import Node


@dataclass(frozen=True)
class Compartment:
    name: str
    size_L: float
    source: str = ""


@dataclass(frozen=True)
class Species:
    """A dynamic species; ``initial`` in nM. ``preequilibrate=False`` holds it fixed before dosing.

    ``initial_expr`` (optional) is the initial value as an expression of parameters (e.g. an SBML
    initial assignment); when set, :meth:`her2sim.model.network.Network.initial_state` evaluates it for
    each parameter vector and ``initial`` is its value at the model's parameters.
    ``quantity`` says what the state holds: ``"concentration"`` (her2sim's nM), ``"amount"``
    (an SBML species with ``hasOnlySubstanceUnits``), ``"value"`` (an SBML parameter with a rate
    rule) or ``"time"`` (model time, d/dt = 1 from 0; the engines report it exactly on the grid).
    ``relative=True`` marks a relative count (e.g. viable cells, 1 = at dosing): it is integrated in
    nM like every state but reported as ``dimensionless`` (``unit``).
    """

    name: str
    initial: float
    compartment: str
    source: str = ""
    description: str = ""
    preequilibrate: bool = True
    origin: str = ""
    initial_expr: Node | None = None
    quantity: str = "concentration"
    relative: bool = False

    @property
    def unit(self) -> str:
        """Unit in which values are reported: 'dimensionless' for relative counts, 'nM' for
        concentrations; imported SBML states in amounts, values or model time report their kind."""
        if self.relative:
            return "dimensionless"
        return "nM" if self.quantity == "concentration" else self.quantity


@dataclass(frozen=True)
class Parameter:
    """A constant; ``value`` in internal units, ``unit`` as written in the file."""

    name: str
    value: float
    unit: str
    internal_unit: str
    source: str
    description: str = ""
    is_input: bool = False
    origin: str = ""


@dataclass(frozen=True)
class Expression:
    """A named derived quantity (assignment rule), inlined into rates and observables."""

    name: str
    node: Node
    text: str
    unit: str
    description: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Reaction:
    """A reaction with integer/float stoichiometry and a rate law in nM/h."""

    name: str
    reactants: tuple[tuple[str, float], ...]
    products: tuple[tuple[str, float], ...]
    modifiers: tuple[str, ...]
    rate: Node
    rate_text: str
    source: str = ""
    description: str = ""
    origin: str = ""


@dataclass(frozen=True)
class Observable:
    name: str
    node: Node
    text: str
    unit: str
    description: str = ""
    origin: str = ""


@dataclass(frozen=True)
class TimedEvent:
    """An event at a time set by parameters (an SBML event triggered by ``time >= t_e``).

    At ``t = time`` (an expression of parameters; model time, > 0) every assignment's value is
    computed from the state and parameters just before the event, then assigned; ``assignments``
    are (target, value) pairs whose target is a species (state) or a parameter name. Output at
    the event time shows the values after it, unless ``strict`` (SBML ``time > t_e``: the event
    fires just after ``t_e``, so output at ``t_e`` shows the values before it).
    """

    name: str
    time: Node
    assignments: tuple[tuple[str, Node], ...]
    strict: bool = False


@dataclass(frozen=True)
class Drug:
    """A drug overlay: class, targets, and the input parameter its dose sets (nM)."""

    name: str
    aliases: tuple[str, ...]
    drug_class: str
    targets: tuple[str, ...]
    mechanism: str
    dose_parameter: str
    molecular_weight_g_per_mol: float | None
    source: str
    path: str


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    kind: str  # "variant" or "background"
    path: str


@dataclass(frozen=True)
class ModelSpec:
    """A composed, validated model: modules + applied variants + included drugs."""

    name: str
    description: str
    compartments: tuple[Compartment, ...]
    species: tuple[Species, ...]
    parameters: tuple[Parameter, ...]
    expressions: tuple[Expression, ...]
    reactions: tuple[Reaction, ...]
    observables: tuple[Observable, ...]
    drugs: tuple[Drug, ...] = ()
    variants: tuple[Variant, ...] = ()
    files: tuple[str, ...] = field(default=())
    #: pre-equilibrate (drug-free steady state) before t = 0 unless the caller says otherwise;
    #: False for imported SBML models, which start at t = 0 from their initial state
    preequilibrate: bool = True
    #: states are concentrations that cannot go negative (the batch path treats a large negative
    #: value as a blow-up); False for imported SBML models, whose states may legally be negative
    nonnegative: bool = True
    #: the unit of the model's time axis ("h" for her2sim models; an SBML model's own unit)
    time_unit: str = "h"
    #: (SBML id, her2sim name) pairs of an imported model (names differ only for reserved ids)
    name_map: tuple[tuple[str, str], ...] = ()
    #: time-triggered events (imported SBML models); both engines stop at each and apply it
    events: tuple[TimedEvent, ...] = ()

    @property
    def species_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.species)

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @property
    def observable_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.observables)

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        from ..errors import UnknownNameError

        raise UnknownNameError("parameter", name, self.parameter_names)

    def drug(self, name: str) -> Drug:
        key = name.lower()
        for d in self.drugs:
            if key == d.name.lower() or key in (a.lower() for a in d.aliases):
                return d
        from ..errors import UnknownNameError

        raise UnknownNameError(
            "drug", name, [d.name for d in self.drugs],
            fix="Load the model with that drug: load_model(..., drugs=[name]) or --drug NAME=DOSE.",
        )
