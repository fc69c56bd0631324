"""Pharmacokinetics per drug: ``models/pk/*.toml`` -> :class:`PKModel` -> plasma, tumour and brain exposure.

Linear one- or two-compartment models with first-order absorption (oral, sc, im) or bolus input
(iv), inter-individual variability (log-normal CL and V1, CV from the popPK paper), and two
exposure sites: body tumour free concentration ``C * fu * kp_tumour`` and brain (lesion) free
concentration ``C * fu * kp_uu_brain`` (instantaneous equilibrium with plasma: the brain
compartment adds no delay, a simplification for drugs with half-lives of hours to weeks).

Two engines, which agree at the grid points (``tests/test_trial_pk.py``):

- :func:`superpose`: analytic superposition of the impulse response ``e_c' expm(K t) e_in`` written
  as a sum of exponentials from the eigen-decomposition of the rate matrix K (the classical
  closed forms of Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed., 1982, ch. 1-3), with
  zero-order infusions integrated exactly. Reference and test path.
- :class:`PKStepper`: the exact discrete-time propagator ``x(t+dt) = expm(K dt) x(t)`` applied hour
  by hour to all patients at once, doses added as boluses at the start of their hour. The trial path.

PK file grammar::

    [pk]
    name = "trastuzumab"
    network_drug = "trastuzumab"      # drug file in models/drugs (its dose parameter gets the exposure)
    model = "two_compartment"         # or "one_compartment"
    description = "..."
    source = "..."
    [pk.CL]  value = "0.225 L/day", cv = 0.43, source = "..."   # cv: inter-individual CV (optional)
    [pk.V1]  value = "2.95 L", cv = 0.29, source = "..."
    [pk.Q]   ...  [pk.V2] ...               # two-compartment only
    [pk.ka]  ...  [pk.F]  ...               # oral / sc / im
    [pk.fu]  [pk.kp_tumour]  [pk.kp_uu_brain]
    optional: molecular_weight (default: the network drug's), potency_factor (multiplies the
    exposure handed to the network drug: a surrogate such as docetaxel -> the paclitaxel term).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg

from ..errors import ModelFileError
from .files import check_keys, quantity, read, require, require_source, value_with_source

MODELS = ("one_compartment", "two_compartment")
_REQUIRED = {"one_compartment": ("CL", "V1"), "two_compartment": ("CL", "V1", "Q", "V2")}
_UNITS = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "ka": "1/h", "F": "", "fu": "", "kp_tumour": "",
          "kp_uu_brain": ""}


@dataclass(frozen=True)
class PKModel:
    """A drug's population PK model (internal units: L, h, mg; concentrations mg/L or nM).

    ``values`` maps CL, V1, (Q, V2), (ka, F), fu, kp_tumour, kp_uu_brain to typical values;
    ``cv`` maps CL/V1 to their inter-individual coefficients of variation.
    """

    name: str
    network_drug: str
    model: str
    values: dict
    cv: dict
    molecular_weight: float  # g/mol
    potency_factor: float = 1.0
    description: str = ""
    source: str = ""
    sources: dict = field(default_factory=dict)
    path: str = ""

    @property
    def absorbed(self) -> bool:
        return "ka" in self.values

    @property
    def n_compartments(self) -> int:
        return (2 if self.model == "two_compartment" else 1) + (1 if self.absorbed else 0)

    @property
    def central(self) -> int:
        return 1 if self.absorbed else 0

    def mg_per_L_to_nM(self, c):
        """Convert mg/L to nM with the molecular weight (1 mg/L = 1e6 / MW nM)."""
        return np.asarray(c) * 1e6 / self.molecular_weight

    def individual(self, n: int, rng: np.random.Generator | None = None) -> dict:
        """Per-patient parameter arrays (n,): log-normal IIV on CL and V1 (no IIV if ``rng`` is None)."""
        out = {k: np.full(n, float(v)) for k, v in self.values.items()}
        if rng is not None:
            for k, cv in self.cv.items():
                omega = np.sqrt(np.log1p(cv ** 2))
                out[k] = out[k] * np.exp(rng.normal(0.0, omega, n))
        return out

    def rate_matrix(self, p: dict) -> np.ndarray:
        """(N, n, n) first-order rate matrix K of the amounts (depot?, central, peripheral?)."""
        N = len(p["CL"])
        n, c = self.n_compartments, self.central
        K = np.zeros((N, n, n))
        if self.absorbed:
            K[:, 0, 0] = -p["ka"]
            K[:, c, 0] = p["ka"]
        K[:, c, c] = -p["CL"] / p["V1"]
        if self.model == "two_compartment":
            k12, k21 = p["Q"] / p["V1"], p["Q"] / p["V2"]
            K[:, c, c] -= k12
            K[:, c + 1, c] = k12
            K[:, c, c + 1] = k21
            K[:, c + 1, c + 1] = -k21
        return K

    def input_fraction(self, p: dict, route: str) -> np.ndarray:
        """Bioavailable fraction of a dose for the route (1 for iv)."""
        N = len(p["CL"])
        if route == "iv":
            return np.ones(N)
        if not self.absorbed:
            raise ModelFileError(f"route {route!r} needs ka and F in the PK file", path=self.path, entry="pk")
        return p.get("F", np.ones(N))


def load_pk(name_or_path: str | Path) -> PKModel:
    """Read and validate a PK file (bundled name such as ``"tucatinib"`` or a path)."""
    path, head, _data = read("pk", name_or_path)
    allowed = {"name", "network_drug", "model", "description", "source", "molecular_weight", "potency_factor",
               *_UNITS}
    check_keys(head, allowed, path, "pk")
    name = require(head, "name", path, "pk")
    drug = require(head, "network_drug", path, "pk")
    model = require(head, "model", path, "pk")
    if model not in MODELS:
        raise ModelFileError(f"model must be one of {MODELS}, got {model!r}", path=str(path), entry="pk")
    source = require_source(head, path, "pk")
    need = list(_REQUIRED[model]) + ["fu", "kp_tumour", "kp_uu_brain"]
    if ("ka" in head) != ("F" in head):
        raise ModelFileError("give both ka and F (first-order absorption) or neither (iv only)", path=str(path),
                             entry="pk")
    values, cv, sources = {}, {}, {}
    for key in need + [k for k in ("ka", "F") if k in head]:
        if key not in head:
            raise ModelFileError(f"missing [pk.{key}] (needed by {model})", path=str(path), entry="pk")
        values[key] = value_with_source(head, key, _UNITS[key], path, "pk")
        sources[key] = head[key]["source"]
        if "cv" in head[key]:
            c = head[key]["cv"]
            if not isinstance(c, (int, float)) or isinstance(c, bool) or not 0 <= c < 3:
                raise ModelFileError(f"cv must be a number in [0, 3), got {c!r}", path=str(path), entry=f"pk.{key}")
            cv[key] = float(c)
    for key, v in values.items():
        if v <= 0 and key not in ("kp_uu_brain",):
            raise ModelFileError(f"{key} must be > 0, got {head[key]['value']!r}", path=str(path), entry=f"pk.{key}")
    for key in ("F", "fu"):
        if key in values and values[key] > 1:
            raise ModelFileError(f"{key} is a fraction in (0, 1], got {head[key]['value']!r}", path=str(path),
                                 entry=f"pk.{key}")
    if "molecular_weight" in head:
        mw = quantity(head["molecular_weight"], "g/mol", path, "pk.molecular_weight")
    else:
        mw = _network_drug_mw(drug, path)
    pf = head.get("potency_factor", 1.0)
    if not isinstance(pf, (int, float)) or isinstance(pf, bool) or pf <= 0:
        raise ModelFileError(f"potency_factor must be a number > 0, got {pf!r}", path=str(path), entry="pk")
    return PKModel(name, drug, model, values, cv, mw, float(pf), head.get("description", ""), source, sources,
                   str(path))


def _network_drug_mw(drug: str, path: Path) -> float:
    from ..load import list_drugs

    for d in list_drugs():
        if d.dose_parameter == drug or drug in d.aliases or d.name == drug:
            if d.molecular_weight_g_per_mol is None:
                break
            return float(d.molecular_weight_g_per_mol)
    raise ModelFileError(f"network drug {drug!r} has no molecular weight in models/drugs; add molecular_weight "
                         "to the PK file", path=str(path), entry="pk.network_drug")


# ----------------------------------------------------------------------------- analytic superposition
def impulse_response(pk: PKModel, p: dict, t: np.ndarray) -> np.ndarray:
    """(N, T) central concentration (mg/L) after a unit (1 mg) bioavailable dose at t = 0.

    ``e_c' expm(K t) e_in / V1`` as a sum of exponentials (eigen-decomposition of K).
    """
    K = pk.rate_matrix(p)
    lam, W = np.linalg.eig(K)
    Winv = np.linalg.inv(W)
    coef = W[:, pk.central, :] * Winv[:, :, 0]  # input enters compartment 0 (depot, or central for iv)
    t = np.asarray(t, float)
    resp = np.einsum("nj,njt->nt", coef, np.exp(lam[:, :, None] * np.maximum(t, 0)[None, None, :])).real
    return np.where(t[None, :] >= 0, resp, 0.0) / p["V1"][:, None]


def superpose(pk: PKModel, p: dict, dose_times: np.ndarray, doses_mg: np.ndarray, t: np.ndarray, *,
              route: str = "iv", infusion_h: float = 0.0) -> np.ndarray:
    """(N, T) plasma concentration (mg/L) by superposition of every dose's closed-form response.

    ``doses_mg`` is (N, K) or (K,); for ``route="iv"`` with ``infusion_h > 0`` each dose is a
    zero-order infusion of that duration (the response integrated exactly over the infusion).
    """
    K = pk.rate_matrix(p)
    iv = route == "iv"
    if iv and pk.absorbed:  # iv dose goes to the central compartment: drop the depot
        K = K[:, 1:, 1:]
    lam, W = np.linalg.eig(K)
    Winv = np.linalg.inv(W)
    c = 0 if iv and pk.absorbed else pk.central
    coef = W[:, c, :] * Winv[:, :, 0]
    F = pk.input_fraction(p, route)
    D = np.broadcast_to(np.asarray(doses_mg, float), (len(p["CL"]), len(dose_times))) * F[:, None]
    t = np.asarray(t, float)
    out = np.zeros((len(p["CL"]), len(t)), dtype=complex)
    lam3 = lam[:, :, None]
    for k, td in enumerate(dose_times):
        s = t - td
        pos = np.clip(s, 0, None)[None, None, :]
        if infusion_h > 0 and iv:
            # rate D/T over [0, T]: sum_j c_j (e^{l s} - e^{l (s - m)}) / l with m = min(s, T)
            m = np.minimum(pos, infusion_h)
            term = (np.exp(lam3 * pos) - np.exp(lam3 * (pos - m))) / lam3
            scale = D[:, k:k + 1] / infusion_h
        else:
            term = np.exp(lam3 * pos)
            scale = D[:, k:k + 1]
        out += scale * np.einsum("nj,njt->nt", coef, term) * (s >= 0)[None, :]
    return out.real / p["V1"][:, None]


# ----------------------------------------------------------------------------- hourly stepping
class PKStepper:
    """Exact hour-by-hour propagation of all patients' amounts for one drug and route.

    ``step(doses_mg)`` adds this hour's doses (N,) (bioavailable fraction applied) as a bolus,
    and advances one step of ``dt_h``; :meth:`concentration` reads the central concentration (mg/L).
    """

    def __init__(self, pk: PKModel, p: dict, route: str, dt_h: float = 1.0):
        K = pk.rate_matrix(p)
        self.iv = route == "iv"
        self.pk = pk
        self.M = scipy.linalg.expm(K * dt_h)
        self.x = np.zeros((len(p["CL"]), pk.n_compartments))
        self.inp = pk.central if self.iv else 0
        self.F = pk.input_fraction(p, route)
        self.V1 = p["V1"]

    def concentration(self) -> np.ndarray:
        """(N,) current central concentration in mg/L."""
        return self.x[:, self.pk.central] / self.V1

    def step(self, doses_mg: np.ndarray | None) -> None:
        if doses_mg is not None:
            self.x[:, self.inp] += doses_mg * self.F
        self.x = np.einsum("nij,nj->ni", self.M, self.x)


def accumulation_factor(k_el_h: float, tau_h: float) -> float:
    """Steady-state / first-dose ratio of a one-compartment drug dosed every ``tau_h``: 1/(1-e^{-k tau})."""
    return 1.0 / (1.0 - np.exp(-k_el_h * tau_h))
