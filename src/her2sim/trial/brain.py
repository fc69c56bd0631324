"""Brain metastases in virtual trials: new brain lesions over time and the CNS response criterion.

**New brain lesions.** A patient with occult brain disease (population feature ``occult_brain``,
whose prevalence is the lifetime incidence of brain metastases in the population) or with known
brain metastases (``brain_mets``) carries brain micrometastases below imaging resolution. They
surface as a new, detectable brain lesion at a hazard

    h_i(t) = h0 * m_i(t),    m_i(t) = [(1 - f_i) max(r_S,i(t), 0) + f_i max(r_R,i(t), 0)] / g_ref

``h0`` the tumour file's ``new_brain_lesion_hazard`` (untreated, 1/h), ``r_S``, ``r_R`` the in-vivo
net growth rates (1/h) of a sensitive and of a HER2-lower micrometastasis *at the brain site*
(drug concentrations behind the blood-brain barrier, Kp,uu of the PK files, and the same tumour
parameters as the lesions of :mod:`her2sim.trial.tumour`), ``f_i`` the patient's HER2-lower clone
share (a micrometastasis grows from one cell, so it is one clone or the other) and ``g_ref`` the
population's median untreated growth rate. Reason: micrometastases of many sizes cross the
detection threshold at a rate proportional to how fast they grow (the flux of a size distribution
through a fixed size is its density times the growth speed), so a drug that reaches the brain and
halts their growth stops new lesions, one that does not (HER2 antibodies, Kp,uu ~0.005) leaves
the untreated hazard, and faster-growing disease surfaces sooner. Each patient draws one Exp(1)
threshold (population sampling); the lesion appears on the first day the cumulative hazard
reaches it and is called at the next scheduled scan (a new lesion is RECIST progression and
CNS progression).

**CNS response.** RANO-BM (Lin et al. 2015 Lancet Oncol 16:e270) calls a partial response at
>= 30% decrease of the sum of brain target-lesion diameters; LANDSCAPE (Bachelot et al. 2013 Lancet
Oncol 14:64) and TBCRC 022 (Freedman et al. 2019 J Clin Oncol 37:1081) used >= 50% *volumetric*
reduction, i.e. 1 - 0.5^(1/3) = 20.6% in diameter for a spherical lesion. A trial spec names its
criterion in ``[trial.cns_response]`` (:func:`cns_response_decrease`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError
from .tumour import DailyRates, effect_decay, in_vivo_effects

#: RANO-BM partial response of brain target lesions: >= 30% decrease of the sum of diameters
RANO_BM_DECREASE = 0.30


def cns_response_decrease(table, path="", entry: str = "trial.cns_response") -> float:
    """Diameter decrease (fraction) that counts as a CNS response, from a trial's
    ``[trial.cns_response]`` table: ``volume_decrease = 0.5`` (volumetric criterion, converted for a
    sphere) or ``diameter_decrease = 0.3`` (RANO-BM), with a ``source``. None -> RANO-BM 0.30."""
    if table is None:
        return RANO_BM_DECREASE
    if not isinstance(table, dict) or "source" not in table or len(set(table) & {"volume_decrease",
                                                                                  "diameter_decrease"}) != 1 \
            or set(table) - {"volume_decrease", "diameter_decrease", "source", "description"}:
        raise ModelFileError("cns_response must be {volume_decrease = 0.5, source = \"...\"} or "
                             f"{{diameter_decrease = 0.3, source = \"...\"}}, got {table!r}", path=str(path),
                             entry=entry)
    key = "volume_decrease" if "volume_decrease" in table else "diameter_decrease"
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < 1:
        raise ModelFileError(f"{key} must be a fraction in (0, 1) (0.5 = 50% smaller), got {v!r}", path=str(path),
                             entry=entry)
    return float(v) if key == "diameter_decrease" else float(1.0 - (1.0 - v) ** (1.0 / 3.0))


def micromet_speed(rates: DailyRates, g: np.ndarray, f_res: np.ndarray, g_ref: float, *, scales,
                   resistance_rate: float, pretreated_signal_factor: float = 1.0,
                   tcell: np.ndarray | None = None, chemo_resistance_rate: float | None = None,
                   cell_loss_factor: float | None = None, rows: np.ndarray | None = None) -> np.ndarray:
    """(n, days) relative speed m_i(t) at which brain micrometastases cross the detection size
    (module docstring); ``rates`` of the same n patients (site 1 = brain), ``g`` (n,) untreated growth
    1/h, ``f_res`` (n,) HER2-lower share, ``g_ref`` 1/h, ``tcell`` (n,) T-cell kill 1/h or None;
    ``chemo_resistance_rate`` and ``cell_loss_factor`` as in :func:`her2sim.trial.tumour.grow`;
    ``rows``: only these patients (indices into ``rates``; ``g``, ``f_res``, ``tcell`` are theirs)."""
    e = in_vivo_effects(rates, scales, pretreated_signal_factor, sites=1, rows=rows, g=g,
                        cell_loss_factor=cell_loss_factor)
    days = e.sigS.shape[1]
    decay = effect_decay(resistance_rate, days)[None, :]
    dec_c = decay if chemo_resistance_rate is None else effect_decay(chemo_resistance_rate, days)[None, :]
    base = g[:, None] - (0.0 if tcell is None else np.asarray(tcell, float)[:, None])
    rS = base + decay * e.sigS + dec_c * e.chemS + e.payS
    rR = base + decay * e.sigR + dec_c * e.chemR + e.payR
    f = f_res[:, None]
    return ((1.0 - f) * np.maximum(rS, 0.0) + f * np.maximum(rR, 0.0)) / g_ref


def new_lesion_day(speed: np.ndarray, hazard: float, threshold: np.ndarray, at_risk: np.ndarray) -> np.ndarray:
    """(n,) day (float; inf = none within the simulated days) on which a new brain lesion appears:
    the first day whose cumulative hazard ``hazard`` (1/h) x 24 x cumsum(speed) reaches the patient's
    Exp(1) ``threshold``; only patients ``at_risk`` (occult or known brain disease)."""
    H = hazard * 24.0 * np.cumsum(speed, axis=1)
    hit = H >= np.asarray(threshold, float)[:, None]
    found = hit.any(axis=1) & np.asarray(at_risk, bool)
    return np.where(found, hit.argmax(axis=1) + 1.0, np.inf)


def new_lesion_calls(day: np.ndarray, assess_day: np.ndarray) -> np.ndarray:
    """(n, A) True from the first scheduled scan on or after the appearance ``day`` (never at baseline)."""
    calls = np.asarray(assess_day, float)[None, :] >= day[:, None]
    calls[:, 0] = False
    return calls


def cns_first(cns_progressed, cns_pfs_months, progressed, pfs_months) -> np.ndarray:
    """(n,) CNS progression is the first progression (or part of it): CNS event at or before any other PD."""
    cns_progressed = np.asarray(cns_progressed, bool)
    return cns_progressed & (~np.asarray(progressed, bool) | (np.asarray(cns_pfs_months) <= np.asarray(pfs_months)))
