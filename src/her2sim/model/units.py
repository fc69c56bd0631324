"""The one pint registry and conversion to internal units at the boundary.

Internally every number is a plain float in the base system
nmol (substance), dm (length, so 1 L = 1 dm**3 and nmol/L = nM), h (time), g (mass):
concentrations are nM, time is hours, first-order rate constants are 1/h,
second-order rate constants are 1/(nM*h).
"""

from __future__ import annotations

from functools import lru_cache

import pint

from ..errors import UnitError

ureg = pint.UnitRegistry(autoconvert_offset_to_baseunit=True)
Quantity = ureg.Quantity

CONCENTRATION = ureg("nM").dimensionality
TIME = ureg("h").dimensionality
RATE = (ureg("nM") / ureg("h")).dimensionality
AMOUNT = ureg("mol").dimensionality
VOLUME = ureg("L").dimensionality
MASS_CONCENTRATION = (ureg("g") / ureg("L")).dimensionality

_INTERNAL_BASE = {
    "[substance]": "nmol",
    "[length]": "dm",
    "[time]": "hour",
    "[mass]": "gram",
}


def parse_quantity(text: str | float | int, *, what: str = "quantity") -> pint.Quantity:
    """Parse ``"10 nM"``, ``"72 h"`` or a bare number (dimensionless) into a pint Quantity."""
    if isinstance(text, bool):
        raise UnitError(f"{what}: expected a number with a unit such as '10 nM', got {text!r}")
    if isinstance(text, (int, float)):
        return Quantity(_finite_or_inf(text, what), "")
    if isinstance(text, pint.Quantity):
        return text
    if not isinstance(text, str) or not text.strip():
        raise UnitError(f"{what}: expected a string such as '10 nM' or '72 h', got {text!r}")
    try:
        q = ureg.Quantity(text.strip())
    except Exception as exc:  # pint raises several unrelated types for bad input
        raise UnitError(
            f"{what}: cannot read {text!r} as a quantity ({exc}). "
            "Write a number then a pint unit, e.g. '10 nM', '2 ug/mL', '0.1 1/h'."
        ) from None
    if not isinstance(q, pint.Quantity):
        return Quantity(_finite_or_inf(q, what), "")
    if not isinstance(q.magnitude, float):  # pint keeps integers exact; huge ones would overflow later
        q = Quantity(_finite_or_inf(q.magnitude, what), q.units)
    return q


def _finite_or_inf(value, what: str) -> float:
    """float(value); an integer too large for a float becomes inf (rejected by range checks)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")
    except (TypeError, ValueError):
        raise UnitError(f"{what}: cannot read {value!r} as a number") from None


def parse_unit(text: str, *, what: str = "unit") -> pint.Unit:
    """Parse a unit string (``"1/nM/h"``); raise UnitError naming ``what`` if unreadable."""
    try:
        return ureg.Unit(text.strip()) if text.strip() else ureg.dimensionless
    except Exception as exc:
        raise UnitError(f"{what}: cannot read unit {text!r} ({exc}).") from None


@lru_cache(maxsize=256)
def _internal_unit_for(dim_items: tuple) -> pint.Unit:
    unit = ureg.dimensionless
    for dim, power in dim_items:
        if dim not in _INTERNAL_BASE:
            raise UnitError(f"dimension {dim} has no internal unit; use substance, length, time or mass")
        unit = unit * ureg.Unit(_INTERNAL_BASE[dim]) ** power
    return unit


def internal_unit(q: pint.Quantity | pint.Unit) -> pint.Unit:
    """The internal (nmol, dm, h, g) unit with the same dimensionality as ``q``."""
    dim = q.dimensionality
    return _internal_unit_for(tuple(sorted(dict(dim).items())))


def to_internal(q: pint.Quantity) -> float:
    """Magnitude of ``q`` in internal units (nM, h, 1/h, 1/(nM*h), ...)."""
    return float(q.to(internal_unit(q)).magnitude)


def internal_unit_label(q: pint.Quantity | pint.Unit) -> str:
    """A readable name for the internal unit: 'nM', 'h', '1/h', '1/nM/h', 'nM/h' or pint's own."""
    dim = q.dimensionality
    for label in ("nM", "h", "1/h", "1/nM/h", "nM/h", "1/nM", "dimensionless"):
        if ureg.Unit(label).dimensionality == dim if label != "dimensionless" else not dim:
            return label
    return f"{internal_unit(q):~}"


def convert(text: str | float, expected: str, *, what: str = "quantity", molecular_weight: str | float | None = None) -> float:
    """Convert ``text`` to the internal magnitude of unit ``expected`` (e.g. 'nM', 'h').

    A mass concentration ('2 ug/mL') converts to molar when ``molecular_weight`` (g/mol) is given.
    Bare numbers are taken to be in ``expected`` already.
    """
    target = ureg.Unit(expected)
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return to_internal(Quantity(_finite_or_inf(text, what), target))
    q = parse_quantity(text, what=what)
    if q.dimensionality == MASS_CONCENTRATION and target.dimensionality == CONCENTRATION:
        if molecular_weight is None:
            raise UnitError(
                f"{what}: {text!r} is a mass concentration; give the drug's molecular weight "
                "(e.g. molecular_weight='145.5 kg/mol') or write the dose in molar units such as '10 nM'."
            )
        mw = parse_quantity(molecular_weight, what="molecular_weight") if not isinstance(
            molecular_weight, (int, float)) else Quantity(float(molecular_weight), "g/mol")
        if mw.dimensionality != (ureg("g") / ureg("mol")).dimensionality:
            raise UnitError(f"molecular_weight: {molecular_weight!r} must be a mass per amount such as '581 g/mol'")
        q = q / mw
    if q.dimensionality != target.dimensionality:
        raise UnitError(
            f"{what}: {text!r} has dimension {q.dimensionality}, expected {expected} "
            f"({target.dimensionality}); e.g. write '{_example(expected)}'."
        )
    return to_internal(q)


def _example(expected: str) -> str:
    return {"nM": "10 nM", "h": "72 h"}.get(expected, f"1 {expected}")


def format_internal(value: float, q_or_unit) -> str:
    """'12.5 nM'-style label of an internal magnitude."""
    return f"{value:.4g} {internal_unit_label(q_or_unit)}"
