"""Lesions made of two clones, grown day by day from the network-derived growth rates.

Each lesion holds a sensitive clone S (the patient's background) and a resistant clone R (one
HER2 level lower: HER2-high -> HER2-low, HER2-low -> HER2-zero, same PI3K and ER status), with
relative cell numbers starting at ``1 - f`` and ``f`` (``f`` = the patient's resistant fraction).
Per-capita growth rates (1/h)::

    r_S(t) = g + E(net_S(C(t)) - net_S(0))
    r_R(t) = g + E(net_R(C(t)) - net_R(0) - byst_S(C(t)) * phi_S(t))
    E(x) = s * x                          for x >= 0 (drug-stimulated growth, rare)
    E(x) = -k_max * s|x| / (k_max + s|x|)  for x < 0 (kill)

``g`` is the patient's untreated in-vivo growth rate, ``s`` the kill scale and ``k_max`` the
in-vivo kill ceiling (all calibrated, models/calibration.md): E maps the in-vitro rate change to
an in-vivo one, linear for small effects and saturating for large ones (drug delivery and the
antibody binding-site barrier cap what a tumour in a patient sees), ``net`` the exposure-response tables of :mod:`her2sim.trial.exposure`
(in-vitro rates relative to the drug-free rate of the same background), ``byst_S`` the ADC
payload reaching HER2-lower cells through the shared payload pool, weighted by ``phi_S``, the
share of S cells in the lesion (the payload comes from the neighbouring HER2-high cells; the
assumption is that the local payload source scales with their share). Acquired resistance is
the outgrowth of R; the bystander effect keeps R in check while S is present.

Lesion diameter ``d = d0 * (N_S + N_R)^(1/3)`` (spherical lesion, volume proportional to cells).
Body lesions see the body tumour free concentration, brain lesions the brain concentration.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import check_keys, quantity, read, require, require_source

_TUMOUR_KEYS = {"growth_rate": "1/h", "kill_scale": "", "kill_max": "1/h", "body_lesions": "", "brain_lesion_diameter": "mm",
                "occult_lesion_diameter": "mm", "new_lesion_diameter": "mm", "detection_limit": "mm",
                "dropout_hazard": "1/h"}


@dataclass(frozen=True)
class TumourParameters:
    """Tumour-level parameters (internal units: h, mm)."""

    growth_rate: float       # median, 1/h
    growth_cv: float
    kill_scale: float
    kill_max: float          # 1/h
    body_lesions: int
    brain_lesion_diameter: float
    occult_lesion_diameter: float
    new_lesion_diameter: float
    detection_limit: float
    dropout_hazard: float    # 1/h
    sources: dict
    path: str = ""


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
        check_keys(t, {"value", "cv", "source", "description"}, path, entry)
        sources[key] = require_source(t, path, entry)
        vals[key] = quantity(require(t, "value", path, entry), unit, path, entry)
        if key == "growth_rate":
            cv = float(t.get("cv", 0.0))
    return TumourParameters(vals["growth_rate"], cv, vals["kill_scale"], vals["kill_max"], round(vals["body_lesions"]),
                            vals["brain_lesion_diameter"], vals["occult_lesion_diameter"],
                            vals["new_lesion_diameter"], vals["detection_limit"], vals["dropout_hazard"], sources,
                            str(path))


@dataclass(frozen=True)
class DailyRates:
    """Daily means of the drug-induced rate changes (1/h), per patient (N, days) and site.

    ``dS``, ``dR``: net_X(C) - net_X(0) of the S and R clone; ``byst``: bystander kill of R per
    unit S share. Site axis: 0 = body, 1 = brain. Arrays have shape (N, days, 2).
    """

    dS: np.ndarray
    dR: np.ndarray
    byst: np.ndarray


def grow(rates: DailyRates, tp: TumourParameters, g: np.ndarray, f_res: np.ndarray, d0: np.ndarray,
         site: np.ndarray, *, kill_scale: float | None = None,
         kill_max: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Integrate all lesions day by day (exact exponential growth within a day, rates held constant).

    g : (N,) untreated growth rate 1/h; f_res : (N,) resistant fraction at baseline;
    d0 : (N, J) baseline diameters in mm (NaN = no lesion); site : (J,) 0 body / 1 brain.
    Returns (diameters (N, days+1, J) in mm, resistant share (N, days+1, J)).
    """
    s = tp.kill_scale if kill_scale is None else kill_scale
    kmax = tp.kill_max if kill_max is None else kill_max
    N, days, _ = rates.dS.shape
    J = d0.shape[1]
    lnS = np.tile(np.log1p(-f_res)[:, None], (1, J))
    lnR = np.tile(np.log(f_res)[:, None], (1, J))
    diam = np.empty((N, days + 1, J))
    share = np.empty((N, days + 1, J))
    diam[:, 0] = d0
    share[:, 0] = f_res[:, None]
    site = np.asarray(site, dtype=np.intp)
    dS = rates.dS[:, :, site]   # (N, days, J)
    dR = rates.dR[:, :, site]
    by = rates.byst[:, :, site]
    for k in range(days):
        phiS = 1.0 / (1.0 + np.exp(lnR - lnS))
        lnS = lnS + 24.0 * (g[:, None] + in_vivo_effect(dS[:, k], s, kmax))
        lnR = lnR + 24.0 * (g[:, None] + in_vivo_effect(dR[:, k] - by[:, k] * phiS, s, kmax))
        top = np.maximum(lnS, lnR)
        total = top + np.log(np.exp(lnS - top) + np.exp(lnR - top))
        diam[:, k + 1] = d0 * np.exp(total / 3.0)
        share[:, k + 1] = np.exp(lnR - total)
    return diam, share


def in_vivo_effect(x: np.ndarray, scale: float, kill_max: float) -> np.ndarray:
    """In-vivo rate change (1/h) from the in-vitro one: linear (``scale``) for growth, saturating at
    ``kill_max`` for kill."""
    y = scale * np.asarray(x)
    return np.where(y >= 0, y, -kill_max * (-y) / (kill_max - y))
