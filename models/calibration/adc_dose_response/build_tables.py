"""Write the PEtab tables of this problem from ../shared/data/adc_dose_response.csv.

Run from the repository root: python models/calibration/adc_dose_response/build_tables.py [DATA_CSV]
The train/validation split and the assumed assay durations are declared here and in README.md;
they were fixed before the first fit and are not to be changed after seeing fit results.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

HERE = Path(__file__).parent
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parents[2] / ".." / "shared" / "data" / "adc_dose_response.csv"

N_A = 6.02214076e23
CELL_PL = 2.0                                   # cell volume of the model (receptors.toml), pL
MW_KG_PER_MOL = {"tdm1": 148.5, "tdxd": 156.0, "syd985": 150.0}   # models/drugs/*.toml

# block key: (drug column, cell line, readout) -> settings. hours = assumed assay duration (README).
BLOCKS = {
    ("T-DM1", "SK-BR-3", "relative viability"): dict(id="tdm1_skbr3", drug="tdm1", her2=1.6e6, doubling=37.4, hours=72, split="train"),
    ("T-DM1", "BT-474EEI", "colony formation (mean colony number)"): dict(id="tdm1_bt474eei", drug="tdm1", her2=2.5e5, doubling=80.0, hours=144, split="validation"),
    ("T-DXd (DS-8201a)", "SK-BR-3", "relative viability"): dict(id="tdxd_skbr3", drug="tdxd", her2=1.6e6, doubling=37.4, hours=144, split="train"),
    ("SYD985", "SK-BR-3", "relative viability"): dict(id="syd985_skbr3", drug="syd985", her2=1.6e6, doubling=37.4, hours=144, split="train"),
    ("T-DM1", "Jurkat", "cell survival"): dict(id="tdm1_jurkat", drug="tdm1", her2=0.0, doubling=30.0, hours=72, split="train"),
    ("T-DXd (DS-8201a)", "Jurkat", "cell survival"): dict(id="tdxd_jurkat", drug="tdxd", her2=0.0, doubling=30.0, hours=72, split="train"),
}
DRUGS = ("tdm1", "tdxd", "syd985")


def nM(row: dict, drug: str) -> float:
    if row["conc_unit"] == "nM":
        return float(row["conc_value"])
    ug_per_ml = float(row["conc_ug_per_ml"])
    return ug_per_ml * 1e6 / (MW_KG_PER_MOL[drug] * 1e3)   # (mg/L) / (g/mol) = mM; x 1e6 -> nM


def receptors_nM(per_cell: float) -> float:
    return per_cell / N_A / (CELL_PL * 1e-12) * 1e9


def main() -> None:
    rows = list(csv.DictReader(open(DATA, newline="")))
    conditions, meas = [], {"train": [], "validation": []}
    for r in rows:
        b = BLOCKS.get((r["drug"], r["cell_line"], r["assay_readout"]))
        if b is None or not r["response_fraction"]:
            continue
        c = nM(r, b["drug"])
        cid = f"{b['id']}_{len(conditions)}"
        cond = {"conditionId": cid, **{d: 0.0 for d in DRUGS}}
        her2 = receptors_nM(b["her2"])
        # HER2-independent uptake: pinocytosis (adc.toml, fixed) in the breast lines; Fc-gamma
        # receptor uptake in Jurkat (Aoyama 2022), estimated as its own parameter
        uptake = "adc_k_uptake_jurkat" if b["her2"] == 0 else 0.01
        cond.update({b["drug"]: c, "HER2_expression": her2, "HER2": her2, "adc_k_nonspecific": uptake,
                     "k_grow": math.log(2) / b["doubling"], "viable_cells_her2low": 0.0, "HER2_low_receptor": 0.0})
        conditions.append(cond)
        meas[b["split"]].append({"observableId": "relative_viability", "preequilibrationConditionId": "",
                                 "simulationConditionId": cid, "measurement": float(r["response_fraction"]),
                                 "time": float(b["hours"]), "observableParameters": "", "noiseParameters": "sigma_viability",
                                 "datasetId": b["id"]})
    cols = ["conditionId", *DRUGS, "HER2_expression", "HER2", "adc_k_nonspecific", "k_grow", "viable_cells_her2low", "HER2_low_receptor"]
    _write(HERE / "conditions.tsv", cols, conditions)
    for split, ms in meas.items():
        _write(HERE / f"measurements_{split}.tsv", list(ms[0]), ms)


def _write(path: Path, cols: list, rows: list) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, cols, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
