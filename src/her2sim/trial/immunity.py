"""T-cell immunity in virtual trials: TILs per patient and a checkpoint-released T-cell kill channel.

Checkpoint inhibitors (drugs whose files name the target ``PD-1`` or ``PD-L1``: pembrolizumab,
atezolizumab) act in the network only on NK-cell ADCC. This module adds their main clinical
mechanism as a separate, explicit term: while the arm contains a checkpoint inhibitor, every
lesion of a PD-L1-positive patient loses cells at

    k_T,i = k_T * TIL_i / 10%      (1/h; 0 for PD-L1-negative patients and for arms without one)

``k_T`` the tumour file's ``tcell_kill_rate`` (assumed, not fitted: see its source), ``TIL_i`` the
patient's stromal TIL percentage. The kill is the same for both clones (T cells do not need HER2)
and acts from the first dose on: receptor occupancy is saturated at the approved doses (PD-1
occupancy plateaus from 1 mg/kg of pembrolizumab, Patnaik et al. 2015 Clin Cancer Res 21:4286),
so it is not read from the PK. PD-L1-negative patients get none: in PANACEA (Loi et al. 2019
Lancet Oncol 20:371) no PD-L1-negative patient responded to pembrolizumab + trastuzumab, and in
KATE2 (Emens et al. 2020 Lancet Oncol 21:1283) the PFS benefit of atezolizumab was confined to
PD-L1-positive disease. Without a checkpoint inhibitor the term is absent (TILs are then not
prognostic in the model: stated simplification).

TILs per patient are log-normal (median, cv) from the population file's ``[population.immunity.tils]``
table, capped at 100%; without it a population has no TILs (no T-cell kill).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError

#: drug targets that make a drug a checkpoint inhibitor
CHECKPOINT_TARGETS = ("PD-1", "PD-L1")
#: TIL level (% of stroma) at which the T-cell kill equals ``tcell_kill_rate``
TIL_REFERENCE = 10.0


def load_tils(table, path="", entry: str = "population.immunity") -> tuple | None:
    """``[population.immunity]`` -> (median %, cv) of stromal TILs, or None when absent."""
    if table is None:
        return None
    t = table.get("tils") if isinstance(table, dict) else None
    if not isinstance(t, dict) or set(table) - {"tils", "source", "description"}:
        raise ModelFileError("immunity must be a table with [population.immunity.tils] median (percent of stroma), "
                             f"cv and source, got {table!r}", path=str(path), entry=entry)
    if set(t) - {"median", "cv", "source", "description"} or "source" not in t:
        raise ModelFileError(f"tils needs median, cv and source only, got keys {sorted(t)}", path=str(path),
                             entry=entry + ".tils")
    med, cv = t.get("median"), t.get("cv")
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (med, cv))
    if not ok or not 0 < med <= 100 or not 0 <= cv < 5:
        raise ModelFileError(f"tils median must be a percentage in (0, 100] and cv in [0, 5), got {med!r}, {cv!r}",
                             path=str(path), entry=entry + ".tils")
    return float(med), float(cv)


def sample_tils(tils: tuple | None, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) stromal TILs in % (log-normal, capped at 100); zeros when the population has none.
    Always draws n normals from ``rng`` so that later draws do not depend on the population file."""
    z = rng.normal(size=n)
    if tils is None:
        return np.zeros(n)
    med, cv = tils
    return np.minimum(med * np.exp(np.sqrt(np.log1p(cv ** 2)) * z), 100.0)


def is_checkpoint_arm(regimens, drugs) -> bool:
    """True if any regimen's drug (PK file -> network drug) is a checkpoint inhibitor by the targets of
    ``drugs``, the model's drug files (:func:`her2sim.trial.arms.model_drugs`)."""
    from .pk import load_pk

    targets = {d.dose_parameter: d.targets for d in drugs}
    for r in regimens:
        drug = load_pk(r.drug).network_drug
        if any(t in CHECKPOINT_TARGETS for t in targets.get(drug, ())):
            return True
    return False


def tcell_kill(pdl1_positive: np.ndarray, tils: np.ndarray, rate: float) -> np.ndarray:
    """(n,) T-cell kill rate (1/h) under a checkpoint inhibitor: ``rate`` x TIL / 10% if PD-L1-positive."""
    return np.where(np.asarray(pdl1_positive, bool), rate * np.asarray(tils, float) / TIL_REFERENCE, 0.0)
