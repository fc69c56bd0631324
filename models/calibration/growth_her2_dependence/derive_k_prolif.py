"""k_prolif_max of each cell-line background from its measured doubling time (cell_lines.csv).

``python models/calibration/growth_her2_dependence/derive_k_prolif.py [background ...]`` (worktree
root) prints, per background, the ``k_prolif_max`` (1/h) at which untreated cells of that background
double in the measured time over 48 h in vitro (``NK_activity = 0``), as tests/test_backgrounds.py
measures it. Net growth is linear in ``k_prolif_max`` (proliferation = k_prolif_max x an E2F switch;
nothing feeds back on signalling), so two simulations per background give it exactly:
g(k) = k h - a, with g(0) = -a and g(k0) measured.
"""

import math
import sys

import numpy as np

from her2sim import simulate
from her2sim.model.load import load_model

DOUBLING_H = {"bt474": 80.0, "skbr3": 37.4, "hcc1954": 43.0, "mcf7": 24.0}


def growth_rate(background: str, k: float | None = None) -> float:
    params = {"NK_activity": 0}
    if k is not None:
        params["k_prolif_max"] = k
    r = simulate("default", variants=[background], time="48 h", parameters=params)
    v = np.ravel(r.values("viable_cells"))
    return math.log(v[-1] / v[0]) / 48.0


def derive(background: str) -> float:
    k0 = load_model("default", variants=[background]).parameter("k_prolif_max").value
    a = -growth_rate(background, 0.0)
    h = (growth_rate(background) + a) / k0
    return (math.log(2) / DOUBLING_H[background] + a) / h


if __name__ == "__main__":
    for bg in sys.argv[1:] or sorted(DOUBLING_H):
        print(bg, f"{derive(bg):.5g}")
