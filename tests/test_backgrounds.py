"""Cell-line backgrounds carry the measured numbers of ../shared/data/cell_lines.csv, and
`--set` / `parameters=` accept any unit compatible with a parameter written as a scaled unit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from her2sim import simulate
from her2sim.errors import UnitError
from her2sim.model.load import load_model
from her2sim.model.units import to_internal, ureg

# cell_lines.csv: doubling_time_h (Cellosaurus via yuezheli/ADC-archives; MCF-7 via PMID 6871841)
# and her2_receptors_per_cell (BT-474 HERmark flow 499,795; SK-BR-3 1.6e6; HCC1954 1.88e6)
DOUBLING_H = {"bt474": 80.0, "skbr3": 37.4, "hcc1954": 43.0, "mcf7": 24.0}
HER2_PER_CELL = {"bt474": 499_795, "skbr3": 1.6e6, "hcc1954": 1.88e6}


def _per_cell_nM(n: float) -> float:
    return to_internal(ureg.Quantity(n, "molecule") / ureg.Quantity(2, "pL"))


@pytest.mark.parametrize("background", sorted(DOUBLING_H))
def test_untreated_doubling_time_matches_cell_lines_csv(background):
    r = simulate("default", variants=[background], time="48 h", parameters={"NK_activity": 0})
    v = np.ravel(r.values("viable_cells"))
    doubling = 48.0 * math.log(2) / math.log(v[-1] / v[0])
    assert doubling == pytest.approx(DOUBLING_H[background], rel=0.05)


def test_skbr3_grows_faster_than_bt474():
    """The issue's complaint: skbr3.toml called SK-BR-3 the faster line while lowering its rate."""
    end = {}
    for bg in ("bt474", "skbr3"):
        end[bg] = float(np.ravel(simulate("default", variants=[bg], time="72 h", parameters={"NK_activity": 0})
                                 .values("viable_cells"))[-1])
    assert end["skbr3"] > 1.5 * end["bt474"]


@pytest.mark.parametrize("background", [
    pytest.param("bt474", marks=pytest.mark.xfail(strict=True, reason=(
        "known gap: the version-2 network's receptor-coupled constants were tuned at 1e6 HER2/cell; at the "
        "measured 5.0e5 four demo directions fail (lapatinib pERK block, HER3 rebound, baseline pERK, T-DM1 "
        "log-kill), so bt474.toml keeps 1e6; the growth_her2_dependence retune restores those four but breaks the "
        "lapatinib + trastuzumab rebound and T-DM1 log-kill sizes (models/CHANGELOG.md)"))),
    "hcc1954", "skbr3"])
def test_her2_per_cell_is_the_measured_number(background):
    spec = load_model("default", variants=[background])
    assert spec.parameter("HER2_expression").value == pytest.approx(_per_cell_nM(HER2_PER_CELL[background]), rel=0.01)


@pytest.mark.parametrize("text", ["5e5 molecule / (2 pL)", "2.5e5 molecule/pL", "415.1 nM", "0.4151 uM"])
def test_set_accepts_any_compatible_unit_for_a_scaled_unit_parameter(text):
    """HER2_expression is written `N molecule / (2 pL)` in the model files; every compatible unit works."""
    ref = simulate("default", time="6 h", parameters={"HER2_expression": _per_cell_nM(5e5)})  # number = internal nM
    r = simulate("default", time="6 h", parameters={"HER2_expression": text})
    np.testing.assert_allclose(np.ravel(r.values("pHER2")), np.ravel(ref.values("pHER2")), rtol=2e-3)
    other = simulate("default", time="6 h", parameters={"HER2_expression": _per_cell_nM(2e4)})
    assert not np.allclose(np.ravel(other.values("pHER2")), np.ravel(ref.values("pHER2")), rtol=2e-3)


def test_set_with_an_incompatible_unit_names_the_parameter_and_the_dimension():
    with pytest.raises(UnitError) as info:
        simulate("default", time="1 h", parameters={"HER2_expression": "3 h"})
    msg = str(info.value)
    assert "HER2_expression" in msg and "nM" in msg and "\n" not in msg


def test_cli_set_with_scaled_unit(tmp_path):
    from her2sim.cli import main

    out = tmp_path / "r.csv"
    assert main(["simulate", "--set", "HER2_expression=1e6 molecule/(2 pL)", "--time", "1h", "--out", str(out)]) == 0
    assert out.exists()
