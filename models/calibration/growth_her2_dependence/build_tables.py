"""Write the PEtab tables of the growth / HER2-dependence problem from growth_data.tsv.

Run from the repository root: python models/calibration/growth_her2_dependence/build_tables.py
The train/validation split (column ``split`` of growth_data.tsv) and the cell-line settings below
are declared in README.md; they were fixed before the first fit and are not changed afterwards.

Read-out: fold growth of the viable cell number over the assay (``viable_cells`` starts at 1 at
dosing). Untreated rows give 2**(hours / doubling time); a drug row gives the untreated fold of
its line times the published relative cell number (treated / untreated at the same time).
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).parent
N_A = 6.02214076e23
CELL_PL = 2.0   # cell volume of the model (receptors.toml), pL


def per_cell_nM(n: float) -> float:
    """molecules per 2-pL cell -> nM (the model's internal unit)."""
    return n / N_A / (CELL_PL * 1e-12) * 1e9


# Cell-line settings (receptors per cell; sources in README.md and models/backgrounds/*.toml).
# k_prolif_max is estimated per line (its untreated growth); IGF-1R of MCF-7 is estimated.
LINES = {
    "BT-474": dict(id="bt474", HER2=4.998e5, EGFR=1e4, HER3=2e4, HER4=2e3, ER=3e4, IGF1R=3e4),
    "SK-BR-3": dict(id="skbr3", HER2=1.6e6, EGFR=1.5e5, HER3=4e4, HER4=1e3, ER=600, IGF1R=3e4),
    "MCF-7": dict(id="mcf7", HER2=2e4, EGFR=3e3, HER3=2e4, HER4=1e4, ER=3e4, IGF1R="IGF1R_total_mcf7"),
}
COND_COLS = ["conditionId", "lapatinib", "trastuzumab", "NK_activity", "HER2_expression", "EGFR_expression",
             "HER3_expression", "HER4_expression", "ER_expression", "IGF1R_total", "k_prolif_max",
             "viable_cells", "viable_cells_her2low"]


def condition(cid: str, line: dict, lap: float, tra: float, cells: float) -> dict:
    igf = line["IGF1R"]
    return {"conditionId": cid, "lapatinib": lap, "trastuzumab": tra, "NK_activity": 0.0,
            "HER2_expression": per_cell_nM(line["HER2"]), "EGFR_expression": per_cell_nM(line["EGFR"]),
            "HER3_expression": per_cell_nM(line["HER3"]), "HER4_expression": per_cell_nM(line["HER4"]),
            "ER_expression": per_cell_nM(line["ER"]),
            "IGF1R_total": igf if isinstance(igf, str) else per_cell_nM(igf),
            "k_prolif_max": f"k_prolif_max_{line['id']}", "viable_cells": cells, "viable_cells_her2low": 0.0}


def main() -> None:
    rows = list(csv.DictReader(open(HERE / "growth_data.tsv"), delimiter="\t"))
    untreated = {r["line"]: 2.0 ** (float(r["hours"]) / float(r["value"])) for r in rows
                 if r["quantity"] == "doubling_time_h"}
    conds, meas = [], {"train": [], "validation": []}
    for name, line in LINES.items():
        # pre-equilibration: untreated, no cells (cell number is not at rest; signalling is)
        conds.append(condition(f"{line['id']}_rest", line, 0.0, 0.0, 0.0))
    for r in rows:
        line = LINES[r["line"]]
        drug, dose = r["drug"], float(r["dose_nM"] or 0.0)
        cid = f"{line['id']}_{drug or 'untreated'}"
        conds.append(condition(cid, line, dose if drug == "lapatinib" else 0.0,
                               dose if drug == "trastuzumab" else 0.0, 1.0))
        fold = untreated[r["line"]] * (1.0 if r["quantity"] == "doubling_time_h" else float(r["value"]))
        meas[r["split"]].append({"observableId": "fold_growth", "preequilibrationConditionId": f"{line['id']}_rest",
                                 "simulationConditionId": cid, "measurement": fold, "time": float(r["hours"]),
                                 "observableParameters": "", "noiseParameters": "sigma_log_growth",
                                 "datasetId": r["dataId"]})
    with open(HERE / "conditions.tsv", "w", newline="") as fh:
        w = csv.DictWriter(fh, COND_COLS, delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(conds)
    for split, ms in meas.items():
        with open(HERE / f"measurements_{split}.tsv", "w", newline="") as fh:
            w = csv.DictWriter(fh, list(ms[0]), delimiter="\t", lineterminator="\n")
            w.writeheader()
            w.writerows(ms)
    with open(HERE / "observables.tsv", "w") as fh:
        fh.write("observableId\tobservableFormula\tnoiseFormula\tobservableTransformation\tnoiseDistribution\n")
        fh.write("fold_growth\tviable_cells\tnoiseParameter1_fold_growth\tlog\tnormal\n")


if __name__ == "__main__":
    main()
