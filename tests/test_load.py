"""Model files: composition, overlays and every validation error with its documented message."""

import textwrap
from pathlib import Path

import pytest

from her2sim import load_model
from her2sim.errors import ModelFileError, UnknownNameError
from her2sim.model.load import check_file

VALID = """
[model]
name = "tiny"

[species.A]
initial = "10 nM"
source = "assumed: test"
[species.B]
initial = "0 nM"
source = "assumed: test"

[parameters.k]
value = "0.5 1/h"
source = "assumed: test"

[reactions.convert]
reactants = ["A"]
products = ["B"]
rate = "k * A"

[observables.B_fraction]
expr = "B / (A + B)"
"""


def write(tmp_path: Path, text: str, name: str = "model.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_valid_file_loads(tmp_path):
    spec = load_model(write(tmp_path, VALID))
    assert spec.species_names == ("A", "B")
    assert spec.parameter("k").value == 0.5
    assert check_file(tmp_path / "model.toml") == []


# (id, replacement applied to VALID, fragment expected in the message)
BAD = [
    ("unknown_species", ('reactants = ["A"]', 'reactants = ["X"]'), "unknown species 'X'"),
    ("unknown_parameter", ('rate = "k * A"', 'rate = "kk * A"'), "unknown name 'kk'"),
    ("close_match_hint", ('rate = "k * A"', 'rate = "k * AA"'), "Did you mean A"),
    ("duplicate_name", ("[parameters.k]", "[parameters.A]"), "duplicate name 'A'"),
    ("rate_units", ('rate = "k * A"', 'rate = "k"'), "must be a concentration per time"),
    ("rate_units_second_order", ('value = "0.5 1/h"', 'value = "0.5 1/nM"'), "must be a concentration per time"),
    ("adding_unlike_units", ('rate = "k * A"', 'rate = "k * (A + k)"'), "cannot add"),
    ("negative_initial", ('initial = "10 nM"', 'initial = "-10 nM"'), "negative initial amount"),
    ("negative_rate_constant", ('value = "0.5 1/h"', 'value = "-0.5 1/h"'), "negative value"),
    ("unreadable_unit", ('value = "0.5 1/h"', 'value = "0.5 furlongs_per_blob"'), "cannot read"),
    ("initial_not_concentration", ('initial = "10 nM"', 'initial = "10 h"'), "must be a concentration"),
    ("missing_source", ('source = "assumed: test"\n\n[reactions', '\n[reactions'), "missing source"),
    ("malformed_toml", ("[parameters.k]", "[parameters.k"), "malformed TOML"),
    ("injection", ('rate = "k * A"', 'rate = "__import__(\'os\').system(\'echo pwned\')"'), "dunder names are not allowed"),
    ("attribute_access", ('rate = "k * A"', 'rate = "k.real * A"'), "attribute access"),
    ("unknown_function", ('rate = "k * A"', 'rate = "system(k) * A"'), "function 'system' is not allowed"),
    ("unknown_key", ('rate = "k * A"', 'rate = "k * A"\nrat = "typo"'), "unknown key(s) ['rat']"),
    ("no_header", ("[model]\nname = \"tiny\"", ""), "exactly one header"),
    ("bad_name", ("[species.B]", "[species.2B]"), "not a valid name"),
    ("reserved_name", ("[species.B]", "[species.exp]"), "reserved word"),
    ("bad_stoichiometry", ('products = ["B"]', 'products = ["two B"]'), "cannot read stoichiometry"),
    ("missing_rate", ('rate = "k * A"', ''), "missing rate"),
    ("unknown_modifier", ('products = ["B"]', 'products = ["B"]\nmodifiers = ["Z"]'), "unknown modifier species 'Z'"),
    ("observable_unknown_name", ('expr = "B / (A + B)"', 'expr = "B / C"'), "unknown name 'C'"),
]


@pytest.mark.parametrize("change, fragment", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_each_bad_file_gives_its_documented_message(tmp_path, change, fragment):
    old, new = change
    assert old in VALID, old
    path = write(tmp_path, VALID.replace(old, new, 1))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    message = str(info.value)
    assert fragment in message
    assert "model.toml" in message  # names the file
    problems = check_file(path)
    assert problems and any(fragment in p for p in problems)


def test_injection_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"
    path = write(tmp_path, VALID.replace('rate = "k * A"', f'rate = "__import__(\'os\').system(\'touch {marker}\')"'))
    with pytest.raises(ModelFileError):
        load_model(path)
    assert not marker.exists()


def test_error_names_entry_and_fix(tmp_path):
    path = write(tmp_path, VALID.replace('rate = "k * A"', 'rate = "k"'))
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    assert "[reactions.convert]" in str(info.value)
    assert "nM/h" in str(info.value)


def test_all_problems_reported_together(tmp_path):
    text = VALID.replace('initial = "10 nM"', 'initial = "-1 nM"').replace('rate = "k * A"', 'rate = "q * A"')
    problems = check_file(write(tmp_path, text))
    assert len(problems) == 2


def test_modules_compose_and_variants_overlay(tmp_path):
    write(tmp_path, """
        [module]
        name = "decay_module"
        [species.C]
        initial = "1e4 molecule"
        compartment = "cell"
        source = "assumed: test"
        [parameters.kdeg]
        value = "1 1/h"
        source = "assumed: test"
        [expressions.load]
        expr = "0"
        [reactions.degrade]
        reactants = ["C"]
        rate = "kdeg * C / (1 + load)"
        """, "module.toml")
    write(tmp_path, """
        [model]
        name = "composed"
        includes = ["module.toml", "module.toml"]
        [compartments.cell]
        size = "1 pL"
        source = "assumed: test"
        """, "composed.toml")
    (tmp_path / "variants").mkdir()
    write(tmp_path / "variants", """
        [variant]
        name = "slow"
        description = "halve degradation, add a term"
        [set.parameters.kdeg]
        factor = 0.5
        source = "assumed: test"
        [extend.expressions.load]
        add = "C / Kx"
        [parameters.Kx]
        value = "10 nM"
        source = "assumed: test"
        """, "slow.toml")
    spec = load_model(tmp_path / "composed.toml")
    assert spec.species[0].initial == pytest.approx(1e4 / 6.02214076e23 / 1e-12 * 1e9)  # molecules in 1 pL -> nM
    varied = load_model(tmp_path / "composed.toml", variants=["slow"])
    assert varied.parameter("kdeg").value == pytest.approx(0.5)
    assert "Kx" in varied.parameter_names
    assert [v.name for v in varied.variants] == ["slow"]
    with pytest.raises(UnknownNameError, match="Did you mean 'slow'"):
        load_model(tmp_path / "composed.toml", variants=["slwo"])


def test_variant_setting_unknown_parameter_is_rejected(tmp_path):
    write(tmp_path, VALID)
    (tmp_path / "variants").mkdir()
    write(tmp_path / "variants", """
        [variant]
        name = "typo"
        [set.parameters.kk]
        value = "1 1/h"
        source = "assumed"
        """, "typo.toml")
    with pytest.raises(ModelFileError, match="cannot set parameter 'kk'"):
        load_model(tmp_path / "model.toml", variants=["typo"])


def test_include_cycle_is_reported(tmp_path):
    write(tmp_path, '[module]\nname = "a"\nincludes = ["b.toml"]\n', "a.toml")
    write(tmp_path, '[module]\nname = "b"\nincludes = ["a.toml"]\n', "b.toml")
    with pytest.raises(ModelFileError, match="include cycle"):
        load_model(tmp_path / "a.toml")


def test_missing_file():
    with pytest.raises(ModelFileError, match="not found"):
        load_model("no/such/model.toml")


def test_unknown_bundled_name_lists_choices():
    with pytest.raises(UnknownNameError, match="unknown model"):
        load_model("no_such_model")


def test_module_with_names_from_other_modules_is_reported_not_crashed(tmp_path):
    path = write(tmp_path, """
        [module]
        name = "partial"
        [species.A]
        initial = "1 nM"
        source = "assumed: test"
        [expressions.drive]
        expr = "hill(ERK_p, K_missing, 2)"
        [reactions.r]
        reactants = ["A"]
        rate = "drive * A * one_per_hour"
        """)
    problems = check_file(path)
    assert any("unknown name 'ERK_p'" in p for p in problems)
    assert any("check the model that includes it" in p for p in problems)
