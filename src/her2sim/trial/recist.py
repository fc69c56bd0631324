"""RECIST 1.1 response assessment from lesion diameters at scheduled assessments.

Eisenhauer EA et al. New response evaluation criteria in solid tumours: revised RECIST guideline
(version 1.1). Eur J Cancer 2009;45:228-247. Target-lesion rules implemented:

- CR: all target lesions disappeared (here: below the detection limit);
- PR: sum of diameters (SLD) at least 30% below baseline;
- PD: SLD at least 20% above the nadir (smallest SLD so far, baseline included) *and* at least
  5 mm above it, or any new lesion;
- SD: neither.

Simplifications (stated): no confirmation scan for CR/PR; no non-target lesions; the only new lesions
are new brain lesions (:mod:`her2sim.trial.brain`: a hazard in patients with occult or known brain
disease, called at the next scan); lymph-node short-axis rules not used.
"""

from __future__ import annotations

import numpy as np

CATEGORIES = ("CR", "PR", "SD", "PD")
#: clinical-benefit rate counts SD lasting at least this long (weeks)
CBR_SD_WEEKS = 24.0


def classify(sld: float, baseline: float, nadir: float, new_lesion: bool = False, all_gone: bool = False) -> str:
    """RECIST 1.1 overall response at one assessment (target lesions + new lesions)."""
    if new_lesion or (sld >= 1.2 * nadir and sld - nadir >= 5.0):
        return "PD"
    if all_gone:
        return "CR"
    if sld <= 0.7 * baseline:
        return "PR"
    return "SD"


def assess(sld: np.ndarray, all_gone: np.ndarray, new_lesion: np.ndarray) -> dict:
    """Vectorised assessment over patients.

    sld : (N, A) sums of diameters at assessments (column 0 = baseline), mm.
    all_gone, new_lesion : (N, A) booleans.
    Returns dict with ``progression_index`` (N,) first assessment with PD (-1 = none), ``best``
    (N,) best overall response before PD (str), ``best_change`` (N,) best % change of SLD from
    baseline (before PD), ``response`` (N, A) category codes (index into CATEGORIES; -1 at baseline).
    """
    N, A = sld.shape
    base = sld[:, 0]
    nadir = np.minimum.accumulate(sld, axis=1)
    prev_nadir = np.concatenate([base[:, None], nadir[:, :-1]], axis=1)
    pd_ = new_lesion | ((sld >= 1.2 * prev_nadir) & (sld - prev_nadir >= 5.0))
    pd_[:, 0] = False
    cr = all_gone & ~pd_
    pr = (sld <= 0.7 * base[:, None]) & ~pd_ & ~cr
    code = np.where(pd_, 3, np.where(cr, 0, np.where(pr, 1, 2)))
    code[:, 0] = -1
    first_pd = np.where(pd_.any(axis=1), np.argmax(pd_, axis=1), -1)
    before = np.arange(A)[None, :] < np.where(first_pd < 0, A, first_pd)[:, None]
    before[:, 0] = False
    masked = np.where(before, code, 9)
    best_code = masked.min(axis=1)
    labels = np.asarray(CATEGORIES)[np.minimum(best_code, 3)]
    best = np.where(best_code == 9, np.where(first_pd >= 1, "PD", "NE"), labels)
    change = 100.0 * (sld / np.where(base > 0, base, np.nan)[:, None] - 1.0)
    with np.errstate(invalid="ignore"):
        best_change = np.where(before.any(axis=1), np.nanmin(np.where(before, change, np.inf), axis=1),
                               np.where(first_pd >= 1, change[np.arange(N), np.maximum(first_pd, 0)], np.nan))
    return {"progression_index": first_pd, "best": best, "best_change": best_change, "response": code}


def rates(best: np.ndarray, sd_duration_weeks: np.ndarray | None = None) -> dict:
    """ORR (CR+PR), DCR (CR+PR+SD) and clinical-benefit rate (CR+PR+SD >= 24 weeks) as fractions."""
    best = np.asarray(best)
    n = max(len(best), 1)
    resp = np.isin(best, ("CR", "PR"))
    out = {"ORR": resp.sum() / n, "DCR": np.isin(best, ("CR", "PR", "SD")).sum() / n,
           "CR": (best == "CR").sum() / n, "PR": (best == "PR").sum() / n, "SD": (best == "SD").sum() / n,
           "PD": (best == "PD").sum() / n}
    if sd_duration_weeks is not None:
        out["CBR"] = (resp | ((best == "SD") & (np.asarray(sd_duration_weeks) >= CBR_SD_WEEKS))).sum() / n
    return {k: float(v) for k, v in out.items()}
