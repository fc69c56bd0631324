"""Dosing regimens as data: ``models/regimens/*.toml`` -> :class:`Regimen` -> dose events.

A regimen file gives one drug's clinical schedule as consecutive phases::

    [regimen]
    name = "trastuzumab_q3w"
    drug = "trastuzumab"            # PK file models/pk/<drug>.toml (which names the network drug)
    route = "iv"                    # iv | oral | sc | im
    description = "..."
    source = "..."
    [[regimen.phase]]
    dose = "8 mg/kg"                # mg, mg/kg (body weight) or mg/m2 (body-surface area)
    interval = "21 day"
    repeats = 1                     # omit in the last phase: continue to the end of follow-up
    source = "..."
    [[regimen.phase]]
    dose = "6 mg/kg"
    interval = "21 day"
    source = "..."

Optional per phase: ``cycle = "21 day"`` with ``days_on = "14 day"`` (dose only in the first
``days_on`` of every cycle: capecitabine 14 on / 7 off, palbociclib 21 on / 7 off). A phase starts
where the previous one ended (start + repeats x interval). Dose modifications, interruptions for
toxicity and treatment discontinuation other than at progression are not modelled.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ModelFileError
from .files import check_keys, quantity, read, require, require_source

ROUTES = ("iv", "oral", "sc", "im")
#: how a dose scales with the patient: absolute mg, per kg body weight, per m2 body-surface area
DOSE_BASES = ("flat", "weight", "bsa")


@dataclass(frozen=True)
class Phase:
    """One dosing phase: ``dose`` (mg, or mg per kg / per m2 by ``basis``), ``interval_h``,
    ``repeats`` (None = until the end), optional ``cycle_h`` / ``on_h`` for on/off schedules."""

    dose: float
    basis: str
    interval_h: float
    repeats: int | None
    cycle_h: float | None = None
    on_h: float | None = None
    source: str = ""


@dataclass(frozen=True)
class Regimen:
    """A drug's clinical dosing schedule (see the module docstring for the file grammar)."""

    name: str
    drug: str
    route: str
    phases: tuple
    description: str = ""
    source: str = ""
    path: str = ""

    def dose_events(self, t_end_h: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Dose times (h, from 0 = first dose), dose per unit basis and basis index, for times < t_end_h.

        Returns (times (K,), amounts (K,) in mg or mg/kg or mg/m2, basis (K,) index into DOSE_BASES).
        """
        times, amounts, basis = [], [], []
        t0 = 0.0
        for k, ph in enumerate(self.phases):
            n = ph.repeats if ph.repeats is not None else int(np.ceil((t_end_h - t0) / ph.interval_h)) + 1
            t = t0 + ph.interval_h * np.arange(max(n, 0))
            if ph.cycle_h:
                t = t[((t - t0) % ph.cycle_h) < ph.on_h - 1e-9]
            t = t[t < t_end_h]
            times.append(t)
            amounts.append(np.full(len(t), ph.dose))
            basis.append(np.full(len(t), DOSE_BASES.index(ph.basis)))
            if ph.repeats is None:
                break
            t0 += ph.repeats * ph.interval_h
        return np.concatenate(times), np.concatenate(amounts), np.concatenate(basis).astype(int)

    def amounts_mg(self, t_end_h: float, weight_kg: np.ndarray, bsa_m2: np.ndarray):
        """(times_h (K,), doses (N, K) in mg) for N patients with the given weight and BSA."""
        t, a, b = self.dose_events(t_end_h)
        w = np.asarray(weight_kg, float)[:, None]
        s = np.asarray(bsa_m2, float)[:, None]
        scale = np.where(b[None, :] == 0, 1.0, np.where(b[None, :] == 1, w, s))
        return t, a[None, :] * scale


_PHASE_KEYS = {"dose", "interval", "repeats", "cycle", "days_on", "source", "description"}


def _dose(text, path: Path, entry: str) -> tuple[float, str]:
    if not isinstance(text, str) or not any(ch.isalpha() for ch in text):
        raise ModelFileError(f"dose {text!r} needs a unit: '240 mg', '6 mg/kg' or '1000 mg/m2'", path=str(path),
                             entry=entry)
    for unit, basis in (("mg", "flat"), ("mg/kg", "weight"), ("mg/m**2", "bsa")):
        try:
            return quantity(text, unit, path, entry), basis
        except ModelFileError:
            continue
    raise ModelFileError(f"dose {text!r} must be a mass ('240 mg'), per body weight ('6 mg/kg') or per body-"
                         "surface area ('1000 mg/m2')", path=str(path), entry=entry)


def load_regimen(name_or_path: str | Path) -> Regimen:
    """Read and validate a regimen file (bundled name such as ``"tucatinib_300mg_bid"`` or a path)."""
    path, head, data = read("regimen", name_or_path)
    extra = set(data) - {"regimen"}
    if extra:
        raise ModelFileError(f"unexpected top-level tables {sorted(extra)}; a regimen file has only [regimen] "
                             "and [[regimen.phase]]", path=str(path))
    check_keys(head, {"name", "drug", "route", "description", "source", "phase"}, path, "regimen")
    name = require(head, "name", path, "regimen")
    drug = require(head, "drug", path, "regimen")
    route = require(head, "route", path, "regimen")
    if route not in ROUTES:
        raise ModelFileError(f"route must be one of {ROUTES}, got {route!r}", path=str(path), entry="regimen")
    source = require_source(head, path, "regimen")
    phases_raw = head.get("phase")
    if not isinstance(phases_raw, list) or not phases_raw:
        raise ModelFileError("needs at least one [[regimen.phase]] with dose and interval", path=str(path),
                             entry="regimen")
    phases = []
    for k, ph in enumerate(phases_raw):
        entry = f"regimen.phase[{k}]"
        if not isinstance(ph, dict):
            raise ModelFileError("each phase must be a table", path=str(path), entry=entry)
        check_keys(ph, _PHASE_KEYS, path, entry)
        src = require_source(ph, path, entry)
        dose, basis = _dose(require(ph, "dose", path, entry), path, entry + ".dose")
        if dose <= 0:
            raise ModelFileError(f"dose must be > 0, got {ph['dose']!r}", path=str(path), entry=entry)
        interval = quantity(require(ph, "interval", path, entry), "h", path, entry + ".interval")
        if interval <= 0:
            raise ModelFileError(f"interval must be > 0, got {ph['interval']!r}", path=str(path), entry=entry)
        repeats = ph.get("repeats")
        if repeats is not None and (not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1):
            raise ModelFileError(f"repeats must be an integer >= 1, got {repeats!r}", path=str(path), entry=entry)
        if repeats is None and k != len(phases_raw) - 1:
            raise ModelFileError("only the last phase may omit 'repeats' (it then runs to the end of follow-up)",
                                 path=str(path), entry=entry)
        cycle = on = None
        if ("cycle" in ph) != ("days_on" in ph):
            raise ModelFileError("give both 'cycle' and 'days_on' (e.g. cycle = \"21 day\", days_on = \"14 day\")",
                                 path=str(path), entry=entry)
        if "cycle" in ph:
            cycle = quantity(ph["cycle"], "h", path, entry + ".cycle")
            on = quantity(ph["days_on"], "h", path, entry + ".days_on")
            if not 0 < on <= cycle:
                raise ModelFileError(f"days_on must be in (0, cycle], got {ph['days_on']!r} of {ph['cycle']!r}",
                                     path=str(path), entry=entry)
        phases.append(Phase(dose, basis, interval, repeats, cycle, on, src))
    return Regimen(name, drug, route, tuple(phases), head.get("description", ""), source, str(path))


def list_regimens() -> list[str]:
    """Names of the bundled regimen files."""
    from .files import trial_models_dir

    return sorted(p.stem for p in (trial_models_dir() / "regimens").glob("*.toml"))
