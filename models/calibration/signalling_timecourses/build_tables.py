"""Write the PEtab tables of this problem from ../shared/data/signalling_timecourses.csv.

Run from the repository root: ``python models/calibration/signalling_timecourses/build_tables.py
PATH/TO/signalling_timecourses.csv``. Everything that decides what is fitted (cell lines,
observables, train/validation split, normalisation) is fixed here and in README.md, and was
written before the first fit.
"""

import csv
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
MOLECULES_PER_NM = 602.214 * 2.0        # molecules per nM in the 2 pL cell compartment

#: receptors per cell used for each line (sources in README.md)
LINES = {
    "BT-474": {"HER2_expression": 499795, "EGFR_expression": 1e4, "HER3_expression": 2e4, "HER4_expression": 2e3},
    "SK-BR-3": {"HER2_expression": 1.5e6, "EGFR_expression": 1.5e5, "HER3_expression": 4e4, "HER4_expression": 1e3},
    "MCF-7": {"HER2_expression": 2e4, "EGFR_expression": 3e3, "HER3_expression": 2e4, "HER4_expression": 1e4},
}
IGF1_STARVED_NM = 0.05                  # serum-starved before stimulation (assumed, see README)
LIGAND_NM = 10.0
OBSERVABLES = {"pAkt": "AKT_p / AKT_total", "pERK": "ERK_p / ERK_total"}   # the model observables pAKT, pERK
VALIDATION = {("SK-BR-3", "HRG")}       # declared before fitting: the HRG arm of SK-BR-3


def tag(line: str) -> str:
    return line.replace("-", "")


def normalised(rows):
    """The source's normalisation, steps 1-3 (data README): per (line, observable) and replicate divide
    the 16 EGF+HRG values by their maximum, then rescale with min/max of the 16 replicate means."""
    by = defaultdict(list)
    for r in rows:
        by[(r["cell_line"], r["observable"])].append(r)
    out = []
    for (line, obs), rs in by.items():
        reps = defaultdict(list)
        for r in rs:
            reps[r["replicate"]].append(r)
        scaled = {}
        for rep, rr in reps.items():
            m = max(float(r["intensity"]) for r in rr)
            for r in rr:
                scaled[(r["ligand"], float(r["time_min"]), rep)] = float(r["intensity"]) / m
        means = defaultdict(list)
        for (lig, t, rep), v in scaled.items():
            means[(lig, t)].append(v)
        mu = {k: sum(v) / len(v) for k, v in means.items()}
        lo, hi = min(mu.values()), max(mu.values())
        for (lig, t, rep), v in scaled.items():
            out.append((line, obs, lig, t, int(rep), (v - lo) / (hi - lo)))
    return out


def main(csv_path: str) -> None:
    rows = [r for r in csv.DictReader(open(csv_path, newline=""))
            if r["cell_line"] in LINES and r["observable"] in OBSERVABLES]
    data = normalised(rows)
    with open(HERE / "conditions.tsv", "w") as f:
        cols = ["EGF", "HRG", "IGF1", *LINES["BT-474"]]
        f.write("\t".join(["conditionId", *cols]) + "\n")
        for line, expr in LINES.items():
            nm = {k: v / MOLECULES_PER_NM for k, v in expr.items()}
            for cond, egf, hrg in (("unstimulated", 0.0, 0.0), ("EGF", LIGAND_NM, 0.0), ("HRG", 0.0, LIGAND_NM)):
                vals = [egf, hrg, IGF1_STARVED_NM, *(nm[k] for k in expr)]
                f.write("\t".join([f"{tag(line)}_{cond}", *(f"{v:.6g}" for v in vals)]) + "\n")
    with open(HERE / "observables.tsv", "w") as f:
        f.write("observableId\tobservableFormula\tnoiseFormula\tobservableTransformation\tnoiseDistribution\n")
        for obs, model_obs in OBSERVABLES.items():
            f.write(f"obs_{obs}\tobservableParameter2_obs_{obs} + observableParameter1_obs_{obs} * {model_obs}\t"
                    f"noiseParameter1_obs_{obs}\tlin\tnormal\n")
    for name, keep in (("measurements_train.tsv", False), ("measurements_validation.tsv", True)):
        with open(HERE / name, "w") as f:
            f.write("observableId\tpreequilibrationConditionId\tsimulationConditionId\tmeasurement\ttime\t"
                    "observableParameters\tnoiseParameters\tdatasetId\treplicateId\n")
            for line, obs, lig, t, rep, v in sorted(data):
                if t == 0.0 and lig == "HRG":
                    continue            # the 0-min lane is shared with the EGF series: counted once, there
                if ((line, lig) in VALIDATION) != keep:
                    continue
                f.write(f"obs_{obs}\t{tag(line)}_unstimulated\t{tag(line)}_{lig}\t{v:.6g}\t{t / 60.0:.6g}\t"
                        f"scale_{tag(line)}_{obs};offset_{tag(line)}_{obs}\tsigma_{obs}\t{tag(line)}_{lig}\trep{rep}\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(HERE.parents[2] / ".." / "shared" / "data" / "signalling_timecourses.csv"))
