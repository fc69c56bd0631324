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

Version 6 (opt-in: ``cell_loss_factor`` and ``chemo_resistance_rate`` given to :func:`grow`, or in
the tumour file; models/calibration.md "Version 6"): the chemotherapy term wanes with its own
``D_chem(t) = exp(-lambda_chem t)``, and the signalling term ``a_sig dsig`` becomes
``-(c / b) g / (1 - phi) + a_sig (dsig + c)``: in vivo the net rate ``g`` is proliferation minus
cell loss (cell-loss factor ``phi``), and the cytostatic part ``c`` of the in-vitro change (growth
removed down to zero, at most the background's drug-free in-vitro rate ``b``) removes the same
fraction of in-vivo proliferation (:func:`in_vivo_effects`), so stopping proliferation shrinks.

Lesion diameter ``d = d0 * (N_S + N_R)^(1/3)`` (spherical lesion, volume proportional to cells).
Body lesions see the body tumour free concentration, brain lesions the brain concentration, and
HER2-binding antibodies reach only part of a lesion's cells (binding-site barrier,
:func:`her2sim.trial.trial.reached_fraction`, applied when the daily rates are computed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .files import check_keys, quantity, read, require, require_source

_TUMOUR_KEYS = {"growth_rate": "1/h", "signal_scale": "", "payload_scale": "", "chemo_scale": "",
                "resistance_rate": "1/h", "pretreated_signal_factor": "",
                "antibody_saturation": "nM", "body_lesions": "", "brain_lesion_diameter": "mm",
                "occult_lesion_diameter": "mm", "new_lesion_diameter": "mm", "detection_limit": "mm",
                "dropout_hazard": "1/h", "new_brain_lesion_hazard": "1/h", "tcell_kill_rate": "1/h"}
#: version-6 keys, optional (absent: the version-5 structure)
_OPTIONAL_KEYS = {"chemo_resistance_rate": "1/h", "cell_loss_factor": ""}
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
    #: 1/h: loss of the chemotherapy effect, if it differs from ``resistance_rate`` (version 6); None: the same
    chemo_resistance_rate: float | None = None
    #: cell-loss factor phi (version 6, :func:`in_vivo_effects`); None: the signalling change is absolute (versions 1-5)
    cell_loss_factor: float | None = None

    @property
    def scales(self) -> tuple[float, float, float]:
        """(signal, payload, chemo) in-vitro -> in-vivo scales."""
        return self.signal_scale, self.payload_scale, self.chemo_scale


def load_tumour(name_or_path: str | Path = "tumour") -> TumourParameters:
    """Read ``models/populations/tumour.toml`` (or a path) with the calibrated tumour parameters."""
    path, head, _data = read("tumour", name_or_path)
    check_keys(head, {"name", "description", "source", *_TUMOUR_KEYS, *_OPTIONAL_KEYS}, path, "tumour")
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
    for key, unit in _OPTIONAL_KEYS.items():
        t = head.get(key)
        if t is None:
            vals[key] = None
            continue
        entry = f"tumour.{key}"
        check_keys(t, {"value", "source", "description", "prior"}, path, entry)
        sources[key] = require_source(t, path, entry)
        vals[key] = quantity(require(t, "value", path, entry), unit, path, entry)
    return TumourParameters(vals["growth_rate"], cv, vals["signal_scale"], vals["payload_scale"], vals["chemo_scale"],
                            vals["resistance_rate"], vals["pretreated_signal_factor"],
                            vals["antibody_saturation"], round(vals["body_lesions"]), vals["brain_lesion_diameter"],
                            vals["occult_lesion_diameter"], vals["new_lesion_diameter"], vals["detection_limit"],
                            vals["dropout_hazard"], sources, str(path),
                            new_brain_lesion_hazard=vals["new_brain_lesion_hazard"],
                            tcell_kill_rate=vals["tcell_kill_rate"],
                            chemo_resistance_rate=vals["chemo_resistance_rate"],
                            cell_loss_factor=vals["cell_loss_factor"])


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
    #: (N, 2) in-vitro drug-free signalling net growth rate (1/h) of the S and R clone's background
    #: (the reference of ``dS[..., 0]`` / ``dR[..., 0]``); None where not recorded
    base: np.ndarray | None = None

    def signalling(self, rho: float) -> tuple[np.ndarray, np.ndarray]:
        """(dS, dR) as float64 with the cross-resistant part of the signalling channel scaled by ``rho``."""
        out = []
        for d, x in ((self.dS, self.xS), (self.dR, self.xR)):
            d = d.astype(float)
            if rho != 1.0:
                d[..., 0] -= (1.0 - rho) * (d[..., 0] if x is None else x.astype(float))
            out.append(d)
        return out[0], out[1]


class Effects(NamedTuple):
    """In-vivo drug effects (1/h) per (patient, day, site) of the S and R clone: ``sig*`` the
    signalling change and ``chem*`` minus the chemotherapy kill (both wane, each with its own
    D(t)), ``pay*`` minus the lasting payload kill."""

    sigS: np.ndarray
    chemS: np.ndarray
    payS: np.ndarray
    sigR: np.ndarray
    chemR: np.ndarray
    payR: np.ndarray


def cell_loss_check(rates: DailyRates) -> None:
    """InvalidArgument if ``rates`` lack the drug-free base rates that the cell-loss structure needs."""
    if rates.base is None:
        from ..errors import InvalidArgument

        raise InvalidArgument("cell_loss_factor: these daily rates carry no drug-free base rate (DailyRates.base); "
                              "prepare the trial again with this version of her2sim.trial.arms")


def in_vivo_effects(rates: DailyRates, scales, pretreated_signal_factor: float = 1.0, *, sites=None,
                    rows: np.ndarray | None = None, g: np.ndarray | None = None,
                    cell_loss_factor: float | None = None) -> Effects:
    """:class:`Effects` of ``rates`` at ``scales`` = (signal, payload, chemo); ``sites``: site
    indices to keep (default both); ``rows``: patients to keep (default all).

    Signalling channel. Versions 1-5 (``cell_loss_factor`` None): ``a_sig dsig``. Version 6 (a
    cell-loss factor phi and the patients' untreated growth rates ``g`` (n,) in 1/h, ``rows``' own):
    the in-vitro change is split at zero net growth into a cytostatic part ``c = min(max(-dsig, 0),
    b)`` (growth removed, at most all of the background's drug-free in-vitro rate ``b = max(base,
    0)``) and the rest ``dsig + c`` (kill beyond zero growth, or stimulation). In vivo the untreated
    net rate ``g`` is proliferation ``p = g / (1 - phi)`` minus cell loss ``phi p`` (Steel 1977;
    cell-loss factor ``phi = 1 - T_pot / T_d``); a cytostatic drug removes the same *fraction*
    ``c / b`` of proliferation as in vitro and leaves the loss, so the in-vivo change is
    ``-(c / b) g / (1 - phi) + a_sig (dsig + c)``: a drug that stops proliferation gives
    ``r = -phi g / (1 - phi)`` and the lesion shrinks. A background that does not grow in vitro
    (``b`` = 0) has no cytostatic part.
    """
    a = np.asarray(scales, float)
    rho = float(pretreated_signal_factor)
    if cell_loss_factor is not None:
        cell_loss_check(rates)
        base = np.asarray(rates.base, float) if rows is None else np.asarray(rates.base, float)[rows]
        prolif = np.asarray(g, float) / (1.0 - float(cell_loss_factor))        # (n,) 1/h
    out = []
    for k, (d, x) in enumerate(((rates.dS, rates.xS), (rates.dR, rates.xR))):
        if rows is not None:
            d = d[rows]
            x = None if x is None else x[rows]
        if sites is not None:
            d = d[:, :, sites]
            x = None if x is None else x[:, :, sites]
        sig = d[..., 0].astype(float)
        if rho != 1.0:
            sig -= (1.0 - rho) * (sig if x is None else x.astype(float))
        if cell_loss_factor is None:
            sig *= a[0]
        else:
            b = np.maximum(base[:, k], 0.0)
            b = b.reshape((-1,) + (1,) * (sig.ndim - 1))
            c = np.minimum(np.maximum(-sig, 0.0), b)
            frac = np.divide(c, b, out=np.zeros_like(c), where=b > 0)
            sig = a[0] * (sig + c) - frac * prolif.reshape(b.shape)
        out += [sig, (-a[2]) * d[..., 2], (-a[1]) * d[..., 1]]     # float64 scalars: float64 results
    return Effects(*out)


def effect_decay(resistance_rate: float, days: int) -> np.ndarray:
    """(days,) D(t) = exp(-lambda t) at mid-day (``resistance_rate`` lambda in 1/h)."""
    return np.exp(-resistance_rate * 24.0 * (np.arange(days) + 0.5))


def grow(rates: DailyRates, tp: TumourParameters, g: np.ndarray, f_res: np.ndarray, d0: np.ndarray,
         site: np.ndarray, *, scales: tuple | None = None, resistance_rate: float | None = None,
         pretreated_signal_factor: float = 1.0, tcell: np.ndarray | None = None,
         chemo_resistance_rate: float | None = None, cell_loss_factor: float | None = None,
         days_out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate all lesions day by day (exact exponential growth within a day, rates held constant).

    g : (N,) untreated growth rate 1/h; f_res : (N,) resistant fraction at baseline;
    d0 : (N, J) baseline diameters in mm (NaN = no lesion); site : (J,) 0 body / 1 brain;
    scales : (signal, payload, chemo) overriding ``tp.scales``; resistance_rate : 1/h;
    pretreated_signal_factor : rho for the cross-resistant signalling change (1 = none);
    tcell : (N,) checkpoint-released T-cell kill rate in 1/h (:mod:`her2sim.trial.immunity`), the
    same in every lesion and clone, or None (no checkpoint inhibitor);
    chemo_resistance_rate : 1/h, the loss of chemotherapy effect (version 6; None: ``resistance_rate``,
    as in versions 1-5); cell_loss_factor : phi of :func:`in_vivo_effects` (version 6; None: no cell loss).
    days_out : (T,) days (0..days) to return (default every day 0..days).
    Returns (diameters (N, T, J) in mm, resistant share (N, T, J)), T = days + 1 by default.

    Lesions of one site share their relative cell numbers, so both clones are grown once per site:
    the S clone and (without bystander kill) the R clone are cumulative sums of the daily log
    increments; the bystander-coupled R clone is a recurrence, stepped day by day for the patients
    that have bystander kill only. :func:`grow_reference` is the plain loop (equal to round-off).
    """
    a = np.asarray(tp.scales if scales is None else scales, float)
    lam = tp.resistance_rate if resistance_rate is None else resistance_rate
    lam_c = lam if chemo_resistance_rate is None else chemo_resistance_rate
    N, days = rates.dS.shape[:2]
    site = np.asarray(site, dtype=np.intp)
    sites, lesion_site = np.unique(site, return_inverse=True)
    e = in_vivo_effects(rates, a, pretreated_signal_factor, sites=sites, g=g, cell_loss_factor=cell_loss_factor)
    by = a[1] * rates.byst[:, :, sites].astype(float)
    dec = effect_decay(lam, days)[None, :, None]
    dec_c = dec if lam_c == lam else effect_decay(lam_c, days)[None, :, None]
    gd = 24.0 * g[:, None]
    if tcell is not None:
        gd = gd - 24.0 * np.asarray(tcell, float)[:, None]
    gd = gd[:, None, :]                                     # (N, 1, 1)
    K = len(sites)
    # log cell numbers (N, days+1, sites)
    lnS = np.empty((N, days + 1, K))
    lnS[:, 0] = np.log1p(-f_res)[:, None]
    if dec_c is dec:
        lnS[:, 1:] = gd + 24.0 * (dec * (e.sigS + e.chemS) + e.payS)
        aR = dec * (e.sigR + e.chemR) + e.payR
    else:
        lnS[:, 1:] = gd + 24.0 * (dec * e.sigS + dec_c * e.chemS + e.payS)
        aR = dec * e.sigR + dec_c * e.chemR + e.payR
    np.cumsum(lnS, axis=1, out=lnS)
    lnR = np.empty_like(lnS)
    lnR[:, 0] = np.log(f_res)[:, None]
    coupled = (by != 0.0).any(axis=(1, 2))                  # patients with bystander kill of R
    free = ~coupled
    lnR[free, 1:] = gd[free] + 24.0 * aR[free]
    lnR[free] = np.cumsum(lnR[free], axis=1)
    if coupled.any():
        # bystander kill depends on the S share of the day: a recurrence, one day at a time
        idx = np.flatnonzero(coupled)
        # day-major copies, so that each day's slice is contiguous
        lS = np.ascontiguousarray(lnS[idx].transpose(1, 0, 2))
        inc = np.ascontiguousarray((gd[idx] + 24.0 * aR[idx]).transpose(1, 0, 2))
        byc = np.ascontiguousarray((24.0 * by[idx]).transpose(1, 0, 2))
        out = np.empty((days + 1, len(idx), K))
        out[0] = cur = lnR[idx, 0]
        for k in range(days):
            cur = cur + inc[k] - byc[k] / (1.0 + np.exp(cur - lS[k]))
            out[k + 1] = cur
        lnR[idx] = out.transpose(1, 0, 2)
    if days_out is not None:
        days_out = np.asarray(days_out, dtype=np.intp)
        lnS, lnR = lnS[:, days_out], lnR[:, days_out]
    total = np.logaddexp(lnS, lnR)
    diam = d0[:, None, :] * np.exp(total / 3.0)[:, :, lesion_site]
    share = np.exp(lnR - total)[:, :, lesion_site]
    at0 = np.arange(days + 1) == 0 if days_out is None else days_out == 0
    diam[:, at0] = d0[:, None, :]                           # day 0 exactly the baseline
    share[:, at0] = f_res[:, None, None]
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
    e = in_vivo_effects(rates, a, pretreated_signal_factor)
    eS, pS, eR, pR = (x[:, :, site] for x in (e.sigS + e.chemS, e.payS, e.sigR + e.chemR, e.payR))
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
