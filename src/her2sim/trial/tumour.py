"""Lesions made of two clones, grown day by day from the network-derived rates.

Each lesion holds a sensitive clone S (the patient's background) and a resistant clone R (one
HER2 level lower: HER2-high -> HER2-low, HER2-low -> HER2-zero, same PI3K and ER status), with
relative cell numbers starting at ``1 - f`` and ``f`` (``f`` = the patient's resistant fraction).
Per-capita growth rates (1/h)::

    r_S(t) = g + D(t) [ a_sig dsig_S(C) - a_chem chem_S(C) ] - a_pay pay_S(C)
    r_R(t) = g + D(t) [ a_sig dsig_R(C) - a_chem chem_R(C) ] - a_pay (pay_R(C) + byst_S(C) phi_S(t))
    D(t)   = exp(-lambda t)

with the three channels of the exposure-response tables (:mod:`her2sim.trial.exposure`): ``dsig``
the change of the signalling-driven net growth rate from the drug-free rate of the same background
(receptor blockade, kinase inhibition, PI3K/mTOR, endocrine, cell cycle, ADCC), ``pay`` the ADC
payload kill rate and ``chem`` the chemotherapy kill rate, all in vitro. ``g`` is the patient's
untreated in-vivo growth rate (log-normal IIV); the class-specific scales ``a_sig``, ``a_pay``,
``a_chem`` map in-vitro rates to in-vivo ones (drug delivery into solid tumour, slower in-vivo cell
turnover, stroma: they differ by drug class because the three mechanisms depend differently on
proliferation and penetration); ``lambda`` is the loss of drug effect over time of the tumour growth
inhibition model of Claret et al. (J Clin Oncol 2009;27:4103, KD(t) = KD0 exp(-lambda t)), i.e.
resistance that is not the outgrowth of a pre-existing HER2-lower clone. It applies to the
signalling and chemotherapy effects, not to ADC payload kill: payload delivery depends on HER2, so
the model's explicit resistance mechanism for ADCs is the HER2-lower clone (less payload taken up),
and waning on top of it would count that resistance twice.

In populations that progressed on prior therapy (``pretreated = true`` in the population file) the
signalling change caused by drugs acting on a target of that therapy is multiplied by
``pretreated_signal_factor`` rho: ``dsig -> dsig - (1 - rho) xsig``, with ``xsig`` the signalling
change of those drugs alone (read from the same table with the other drugs' concentrations set to
zero; ``xsig = dsig`` when every drug of the arm is cross-resistant). This is cross-resistance
acquired on the previous line (trastuzumab before T-DM1 / T-DXd / lapatinib, a non-steroidal
aromatase inhibitor before exemestane), which the network's cells, naive to every drug, do not
carry; a drug new to the patients (everolimus after an aromatase inhibitor) is not scaled, nor
are payload and chemotherapy kill.

``byst_S`` is the kill by ADC payload that reaches HER2-lower cells through the shared pericellular
pool from S cells as a standing source (the exposure module's bystander channel, measured with the
source kept alive and without the receiving cells' own ADC uptake, which is ``pay_R``), weighted by
``phi_S``, the share of S cells in the lesion: the bystander effect acts only on cells next to
antigen-rich cells (Ogitani et al. 2016 Cancer Sci 107:1039: DS-8201a suppressed HER2-negative
cells admixed with HER2-positive ones in vivo, not HER2-negative tumours on the opposite flank), and
the assumption is that the local payload source scales with the S share; as S is killed, the
bystander kill of R fades with it.

``g``, ``a_*``, ``lambda``, the pretreated factor and the resistant fraction are calibrated
(models/calibration.md).

Lesion diameter ``d = d0 * (N_S + N_R)^(1/3)`` (spherical lesion, volume proportional to cells).
Body lesions see the body tumour free concentration, brain lesions the brain concentration, and
HER2-binding antibodies reach only part of a lesion's cells (binding-site barrier,
:func:`her2sim.trial.trial.reached_fraction`, applied when the daily rates are computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import check_keys, quantity, read, require, require_source

_TUMOUR_KEYS = {"growth_rate": "1/h", "signal_scale": "", "payload_scale": "", "chemo_scale": "",
                "resistance_rate": "1/h", "pretreated_signal_factor": "",
                "antibody_saturation": "nM", "body_lesions": "", "brain_lesion_diameter": "mm",
                "occult_lesion_diameter": "mm", "new_lesion_diameter": "mm", "detection_limit": "mm",
                "dropout_hazard": "1/h", "new_brain_lesion_hazard": "1/h", "tcell_kill_rate": "1/h"}
#: channels of :class:`DailyRates` (last axis of ``dS`` / ``dR``)
CHANNELS = ("signal", "payload", "chemo")


@dataclass(frozen=True)
class TumourParameters:
    """Tumour-level parameters (internal units: h, mm)."""

    growth_rate: float       # median, 1/h
    growth_cv: float
    signal_scale: float
    payload_scale: float
    chemo_scale: float
    resistance_rate: float   # 1/h
    pretreated_signal_factor: float
    antibody_saturation: float  # nM, free HER2-binder concentration that reaches every cell of a HER2-high lesion
    body_lesions: int
    brain_lesion_diameter: float
    occult_lesion_diameter: float
    new_lesion_diameter: float
    detection_limit: float
    dropout_hazard: float    # 1/h
    sources: dict
    path: str = ""
    #: 1/h: hazard that occult brain disease surfaces as a new brain lesion without brain-active drug
    #: (:mod:`her2sim.trial.brain`)
    new_brain_lesion_hazard: float = 0.0
    #: 1/h: checkpoint-released T-cell kill of a PD-L1-positive lesion per 10% stromal TILs
    #: (:mod:`her2sim.trial.immunity`)
    tcell_kill_rate: float = 0.0

    @property
    def scales(self) -> tuple[float, float, float]:
        """(signal, payload, chemo) in-vitro -> in-vivo scales."""
        return self.signal_scale, self.payload_scale, self.chemo_scale


def load_tumour(name_or_path: str | Path = "tumour") -> TumourParameters:
    """Read ``models/populations/tumour.toml`` (or a path) with the calibrated tumour parameters."""
    path, head, _data = read("tumour", name_or_path)
    check_keys(head, {"name", "description", "source", *_TUMOUR_KEYS}, path, "tumour")
    require(head, "name", path, "tumour")
    require_source(head, path, "tumour")
    vals, sources, cv = {}, {}, 0.0
    for key, unit in _TUMOUR_KEYS.items():
        entry = f"tumour.{key}"
        t = head.get(key)
        if not isinstance(t, dict):
            from ..errors import ModelFileError

            raise ModelFileError(f"missing [{entry}] with value and source", path=str(path), entry=entry)
        check_keys(t, {"value", "cv", "source", "description", "prior"}, path, entry)
        sources[key] = require_source(t, path, entry)
        vals[key] = quantity(require(t, "value", path, entry), unit, path, entry)
        if key == "growth_rate":
            cv = float(t.get("cv", 0.0))
    return TumourParameters(vals["growth_rate"], cv, vals["signal_scale"], vals["payload_scale"], vals["chemo_scale"],
                            vals["resistance_rate"], vals["pretreated_signal_factor"],
                            vals["antibody_saturation"], round(vals["body_lesions"]), vals["brain_lesion_diameter"],
                            vals["occult_lesion_diameter"], vals["new_lesion_diameter"], vals["detection_limit"],
                            vals["dropout_hazard"], sources, str(path),
                            new_brain_lesion_hazard=vals["new_brain_lesion_hazard"],
                            tcell_kill_rate=vals["tcell_kill_rate"])


@dataclass(frozen=True)
class DailyRates:
    """Daily means of the in-vitro drug effects (1/h), per patient, day, site and channel.

    ``dS``, ``dR``: (N, days, 2, 3) for the S and R clone, channels :data:`CHANNELS` = (change of
    the signalling net growth rate from its drug-free value, payload kill, chemotherapy kill);
    ``byst``: (N, days, 2) bystander payload kill of R per unit S share; ``xS``, ``xR``: (N, days, 2)
    signalling change caused by the cross-resistant drugs alone (None: all the arm's drugs are,
    so it equals channel 0). Site axis: 0 = body, 1 = brain. Stored as float32.
    """

    dS: np.ndarray
    dR: np.ndarray
    byst: np.ndarray
    xS: np.ndarray | None = None
    xR: np.ndarray | None = None

    def signalling(self, rho: float) -> tuple[np.ndarray, np.ndarray]:
        """(dS, dR) as float64 with the cross-resistant part of the signalling channel scaled by ``rho``."""
        out = []
        for d, x in ((self.dS, self.xS), (self.dR, self.xR)):
            d = d.astype(float)
            if rho != 1.0:
                d[..., 0] -= (1.0 - rho) * (d[..., 0] if x is None else x.astype(float))
            out.append(d)
        return out[0], out[1]


def in_vivo_effects(rates: DailyRates, scales, pretreated_signal_factor: float = 1.0) -> tuple:
    """In-vivo drug effects (1/h) per (patient, day, site): ``(eS, pS, eR, pR)`` with ``e*`` the part
    that wanes with D(t) (signalling and chemotherapy) and ``p*`` the lasting payload kill, for the
    S and R clone; ``scales`` = (signal, payload, chemo)."""
    a = np.asarray(scales, float)
    decaying = np.array([a[0], 0.0, -a[2]])     # signalling and chemotherapy effects wane with D(t)
    lasting = np.array([0.0, -a[1], 0.0])       # payload kill: resistance only by the HER2-lower clone
    dS, dR = rates.signalling(float(pretreated_signal_factor))
    return dS @ decaying, dS @ lasting, dR @ decaying, dR @ lasting


def effect_decay(resistance_rate: float, days: int) -> np.ndarray:
    """(days,) D(t) = exp(-lambda t) at mid-day (``resistance_rate`` lambda in 1/h)."""
    return np.exp(-resistance_rate * 24.0 * (np.arange(days) + 0.5))


def grow(rates: DailyRates, tp: TumourParameters, g: np.ndarray, f_res: np.ndarray, d0: np.ndarray,
         site: np.ndarray, *, scales: tuple | None = None, resistance_rate: float | None = None,
         pretreated_signal_factor: float = 1.0, tcell: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate all lesions day by day (exact exponential growth within a day, rates held constant).

    g : (N,) untreated growth rate 1/h; f_res : (N,) resistant fraction at baseline;
    d0 : (N, J) baseline diameters in mm (NaN = no lesion); site : (J,) 0 body / 1 brain;
    scales : (signal, payload, chemo) overriding ``tp.scales``; resistance_rate : 1/h;
    pretreated_signal_factor : rho for the cross-resistant signalling change (1 = none);
    tcell : (N,) checkpoint-released T-cell kill rate in 1/h (:mod:`her2sim.trial.immunity`), the
    same in every lesion and clone, or None (no checkpoint inhibitor).
    Returns (diameters (N, days+1, J) in mm, resistant share (N, days+1, J)).
    """
    a = np.asarray(tp.scales if scales is None else scales, float)
    lam = tp.resistance_rate if resistance_rate is None else resistance_rate
    N, days = rates.dS.shape[:2]
    site = np.asarray(site, dtype=np.intp)
    # in-vivo effects of each clone per (patient, day, site): contractions over the channels
    eS, pS, eR, pR = (x[:, :, site] for x in in_vivo_effects(rates, a, pretreated_signal_factor))
    by = a[1] * rates.byst[:, :, site].astype(float)
    decay = effect_decay(lam, days)[None, :, None]
    gd = 24.0 * g[:, None]
    if tcell is not None:
        gd = gd - 24.0 * np.asarray(tcell, float)[:, None]
    gd = gd[:, None, :]                                     # (N, 1, 1)
    # log cell numbers (N, days+1, J): the S clone and an uncoupled R clone are cumulative sums of
    # the daily increments (the same additions, in the same order, as a day-by-day loop)
    lnS = np.empty((N, days + 1, d0.shape[1]))
    lnS[:, 0] = np.log1p(-f_res)[:, None]
    lnS[:, 1:] = gd + 24.0 * (decay * eS + pS)
    np.cumsum(lnS, axis=1, out=lnS)
    aR = decay * eR + pR
    lnR = np.empty_like(lnS)
    lnR[:, 0] = np.log(f_res)[:, None]
    coupled = (by != 0.0).any(axis=(1, 2))                  # patients with bystander kill of R
    free = ~coupled
    lnR[free, 1:] = gd[free] + 24.0 * aR[free]
    lnR[free] = np.cumsum(lnR[free], axis=1)
    if coupled.any():
        # bystander kill depends on the S share of the day: a recurrence, one day at a time
        idx = np.flatnonzero(coupled)
        lS, aRc, byc, gdc = lnS[idx], aR[idx], by[idx], gd[idx, 0]
        cur = lnR[idx, 0]
        out = np.empty((len(idx), days + 1, d0.shape[1]))
        out[:, 0] = cur
        for k in range(days):
            phiS = 1.0 / (1.0 + np.exp(cur - lS[:, k]))
            cur = cur + (gdc + 24.0 * (aRc[:, k] - byc[:, k] * phiS))
            out[:, k + 1] = cur
        lnR[idx] = out
    total = np.logaddexp(lnS, lnR)
    diam = d0[:, None, :] * np.exp(total / 3.0)
    diam[:, 0] = d0
    share = np.exp(lnR - total)
    share[:, 0] = f_res[:, None]
    return diam, share


def grow_reference(rates: DailyRates, tp: TumourParameters, g: np.ndarray, f_res: np.ndarray, d0: np.ndarray,
                   site: np.ndarray, *, scales: tuple | None = None, resistance_rate: float | None = None,
                   pretreated_signal_factor: float = 1.0,
                   tcell: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`grow` as a plain day-by-day loop over both clones (the version-5 implementation): the
    reference the vectorised :func:`grow` is tested against (same arguments and returns)."""
    a = np.asarray(tp.scales if scales is None else scales, float)
    lam = tp.resistance_rate if resistance_rate is None else resistance_rate
    N, days = rates.dS.shape[:2]
    J = d0.shape[1]
    lnS = np.tile(np.log1p(-f_res)[:, None], (1, J))
    lnR = np.tile(np.log(f_res)[:, None], (1, J))
    diam = np.empty((N, days + 1, J))
    share = np.empty((N, days + 1, J))
    diam[:, 0] = d0
    share[:, 0] = f_res[:, None]
    site = np.asarray(site, dtype=np.intp)
    # in-vivo effects of each clone per (patient, day, site): contractions over the channels
    eS, pS, eR, pR = (x[:, :, site] for x in in_vivo_effects(rates, a, pretreated_signal_factor))
    by = a[1] * rates.byst[:, :, site].astype(float)
    decay = effect_decay(lam, days)
    gd = 24.0 * g[:, None]
    if tcell is not None:
        gd = gd - 24.0 * np.asarray(tcell, float)[:, None]
    for k in range(days):
        phiS = 1.0 / (1.0 + np.exp(lnR - lnS))
        lnS = lnS + gd + 24.0 * (decay[k] * eS[:, k] + pS[:, k])
        lnR = lnR + gd + 24.0 * (decay[k] * eR[:, k] + pR[:, k] - by[:, k] * phiS)
        top = np.maximum(lnS, lnR)
        total = top + np.log(np.exp(lnS - top) + np.exp(lnR - top))
        diam[:, k + 1] = d0 * np.exp(total / 3.0)
        share[:, k + 1] = np.exp(lnR - total)
    return diam, share
