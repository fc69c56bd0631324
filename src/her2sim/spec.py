"""Frozen, validated model objects. Values are plain floats in internal units (nM, h).

A :class:`ModelSpec` is what :func:`her2sim.load.load_model` returns and what
:func:`her2sim.network.compile_network` consumes. Use :func:`dataclasses.replace` for what-ifs.
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
    relative: bool = False

    @property
    def unit(self) -> str:
        """Unit in which values are reported: 'dimensionless' for relative counts, else 'nM'."""
        return "dimensionless" if self.relative else "nM"


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
        from .errors import UnknownNameError

        raise UnknownNameError("parameter", name, self.parameter_names)

    def drug(self, name: str) -> Drug:
        key = name.lower()
        for d in self.drugs:
            if key == d.name.lower() or key in (a.lower() for a in d.aliases):
                return d
        from .errors import UnknownNameError

        raise UnknownNameError(
            "drug", name, [d.name for d in self.drugs],
            fix="Load the model with that drug: load_model(..., drugs=[name]) or --drug NAME=DOSE.",
        )
