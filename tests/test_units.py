"""Unit conversion at the boundary: everything internal is nM and hours."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from her2sim.errors import UnitError
from her2sim.model.units import convert, parse_quantity, to_internal


@pytest.mark.parametrize("text, expected", [
    ("1 nM", 1.0), ("1 uM", 1e3), ("2.5 mM", 2.5e6), ("1 pM", 1e-3), ("1 M", 1e9), ("1 mol/L", 1e9),
])
def test_concentrations_to_nM(text, expected):
    assert convert(text, "nM") == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("text, expected", [("30 min", 0.5), ("1 h", 1.0), ("3 day", 72.0), ("1 week", 168.0),
                                            ("3600 s", 1.0)])
def test_times_to_hours(text, expected):
    assert convert(text, "h") == pytest.approx(expected, rel=1e-12)


def test_mass_concentration_with_molecular_weight():
    # trastuzumab ~145.5 kDa: 1 ug/mL = 1e-3 g/L / 145500 g/mol = 6.87 nM
    assert convert("1 ug/mL", "nM", molecular_weight="145.5 kg/mol") == pytest.approx(1e-3 / 145500 * 1e9)
    assert convert("1 ug/mL", "nM", molecular_weight=145500.0) == pytest.approx(1e-3 / 145500 * 1e9)
    with pytest.raises(UnitError, match="molecular weight"):
        convert("1 ug/mL", "nM")


@given(st.floats(1e-6, 1e6), st.sampled_from(["pM", "nM", "uM", "mM"]))
def test_concentration_round_trip(value, unit):
    nm = convert(f"{value!r} {unit}", "nM")
    back = parse_quantity(f"{nm!r} nM").to(unit).magnitude
    assert back == pytest.approx(value, rel=1e-12)


@given(st.floats(1e-3, 1e4), st.sampled_from(["s", "min", "h", "day"]))
def test_time_round_trip(value, unit):
    h = convert(f"{value!r} {unit}", "h")
    assert parse_quantity(f"{h!r} h").to(unit).magnitude == pytest.approx(value, rel=1e-12)


@given(st.floats(1e-3, 1e3), st.floats(100, 2e5))
def test_mass_concentration_round_trip(ug_per_ml, mw):
    nm = convert(f"{ug_per_ml!r} ug/mL", "nM", molecular_weight=mw)
    back = (parse_quantity(f"{nm!r} nM") * parse_quantity(f"{mw!r} g/mol")).to("ug/mL").magnitude
    assert back == pytest.approx(ug_per_ml, rel=1e-12)


def test_rate_constants_to_internal_units():
    assert to_internal(parse_quantity("1e6 1/M/s")) == pytest.approx(3.6)  # 1/(nM h)
    assert to_internal(parse_quantity("0.1 1/min")) == pytest.approx(6.0)   # 1/h


@pytest.mark.parametrize("text, expected, fragment", [
    ("10 kg", "nM", "expected nM"),
    ("ten nM", "nM", "cannot read"),
    ("5 h", "nM", "expected nM"),
    ("", "h", "expected a string"),
])
def test_bad_quantities_name_the_problem(text, expected, fragment):
    with pytest.raises(UnitError, match=fragment):
        convert(text, expected, what="dose")
