"""Pharmacokinetics per drug: ``models/pk/*.toml`` -> :class:`PKModel` -> plasma, tumour and brain exposure.

One- or two-compartment models with first-order absorption (oral, sc, im) or bolus input (iv),
linear elimination (CL) and, optionally, saturable Michaelis-Menten elimination from the central
compartment in parallel with it (``Vmax``, ``Km``: the target-mediated disposition of antibodies
such as trastuzumab, Quartino et al. 2019 Cancer Chemother Pharmacol 83:329), inter-individual
variability (log-normal on every entry that gives a ``cv``), and two exposure sites: body tumour
free concentration ``C * fu * kp_tumour`` and brain (lesion) free concentration
``C * fu * kp_uu_brain`` (instantaneous equilibrium with plasma: the brain compartment adds no
delay, a simplification for drugs with half-lives of hours to weeks).

The amounts ``x`` (depot?, central, peripheral?) obey ``dx/dt = K x - e_c Vmax C / (Km + C)`` with
``C = x_c / V1`` and K the first-order rate matrix (:meth:`PKModel.rate_matrix`); the second term
is absent for linear models. Two engines, which agree at the grid points (``tests/test_trial_pk.py``,
``tests/test_trial_pk_nonlinear.py``):

- :func:`superpose`: for linear models, analytic superposition of the impulse response
  ``e_c' expm(K t) e_in`` written as a sum of exponentials from the eigen-decomposition of K (the
  classical closed forms of Gibaldi & Perrier, *Pharmacokinetics*, 2nd ed., 1982, ch. 1-3), with
  zero-order infusions integrated exactly. Superposition does not hold for Michaelis-Menten
  models: for them it dispatches to :func:`simulate_pk` (``scipy.integrate.solve_ivp``, restarted
  at every dose and infusion end), so callers need not know which kind of model they hold.
- :class:`PKStepper`: hour by hour for all patients at once, doses added as boluses at the start of
  their hour. Linear models use the exact discrete-time propagator ``x(t+dt) = expm(K dt) x(t)``.
  Michaelis-Menten models use the integrating-factor ("Lawson") fourth-order Runge-Kutta method
  (Lawson 1967, SIAM J Numer Anal 4:372): the linear part, including fast absorption, is
  propagated exactly by ``expm(K h)`` and RK4 handles only the saturable term. Each patient's
  hour is split into ``2**L`` sub-steps ``h`` with ``h`` times the term's stiffness
  ``Vmax Km / (V1 (Km + C)**2)`` <= 0.02 (and ``h ka <= 0.05`` while absorption feeds it), so
  an antibody far above Km takes one sub-step. The trial path.

PK file grammar::

    [pk]
    name = "trastuzumab"
    network_drug = "trastuzumab"      # drug file in models/drugs (its dose parameter gets the exposure)
    model = "two_compartment"         # or "one_compartment"
    description = "..."
    source = "..."
    [pk.CL]  value = "0.127 L/day", cv = 0.401, source = "..."  # cv: inter-individual CV (optional)
    [pk.V1]  value = "2.62 L", cv = 0.246, source = "..."
    [pk.Q]   ...  [pk.V2] ...               # two-compartment only
    [pk.Vmax] value = "8.81 mg/day" ...     # optional, with [pk.Km] (e.g. "8.92 mg/L"): Michaelis-
    [pk.Km]   ...                           #   Menten elimination from the central compartment
    [pk.ka]  ...  [pk.F]  ...               # oral / sc / im
    [pk.fu]  [pk.kp_tumour]  [pk.kp_uu_brain]
    optional: molecular_weight (default: the network drug's), potency_factor (multiplies the
    exposure handed to the network drug: a surrogate such as docetaxel -> the paclitaxel term).

``Vmax = "0 mg/day"`` is allowed (it gives the linear model through the numerical engines).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.integrate
import scipy.linalg

from ..errors import IntegrationError, InvalidArgument, ModelFileError
from .files import check_keys, quantity, read, require, require_source, value_with_source

MODELS = ("one_compartment", "two_compartment")
_REQUIRED = {"one_compartment": ("CL", "V1"), "two_compartment": ("CL", "V1", "Q", "V2")}
_UNITS = {"CL": "L/h", "V1": "L", "Q": "L/h", "V2": "L", "Vmax": "mg/h", "Km": "mg/L", "ka": "1/h", "F": "",
          "fu": "", "kp_tumour": "", "kp_uu_brain": ""}
_EXAMPLES = {"Vmax": "8.81 mg/day", "Km": "8.92 mg/L"}
#: largest stiffness x sub-step of the saturable term, ``h Vmax Km / (V1 (Km + C)**2)``, in :class:`PKStepper`
MM_STEP_RATE = 0.02
#: largest ``h ka`` while absorption feeds the central compartment (the saturable term then changes on the
#: absorption time scale)
MM_INPUT_STEP = 0.05
#: longest coarse step (h) of :class:`HourlyPK` for Michaelis-Menten models (hours inside are filled in)
MM_COARSE_H = 12
#: :data:`MM_STEP_RATE` of those coarse steps (RK4: local error ~ (h x stiffness)**5 / 120 of the term, 3e-4 at 0.5)
MM_COARSE_STEP_RATE = 0.5


@dataclass(frozen=True)
class PKModel:
    """A drug's population PK model (internal units: L, h, mg; concentrations mg/L or nM).

    ``values`` maps CL, V1, (Q, V2), (Vmax, Km), (ka, F), fu, kp_tumour, kp_uu_brain to typical
    values (Vmax in mg/h, Km in mg/L); ``cv`` maps entries to their inter-individual coefficients
    of variation.
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

    @property
    def michaelis_menten(self) -> bool:
        """True if the model has saturable (Michaelis-Menten) elimination ``Vmax C / (Km + C)``."""
        return "Vmax" in self.values

    def saturable_elimination(self, p: dict, c: np.ndarray) -> np.ndarray:
        """Michaelis-Menten elimination rate (mg/h) at central concentration ``c`` (mg/L), shape of ``c``.

        ``p`` holds (N,) arrays; ``c`` is (N,) or (N, ...). Zero for linear models.
        """
        c = np.asarray(c, float)
        if not self.michaelis_menten:
            return np.zeros_like(c)
        shape = (-1,) + (1,) * (c.ndim - 1)
        vmax, km = p["Vmax"].reshape(shape), p["Km"].reshape(shape)
        c = np.maximum(c, 0.0)
        return vmax * c / (km + c)

    def half_life(self, p: dict, c: np.ndarray | float | None = None) -> np.ndarray:
        """(N,) terminal half-life (h) of the disposition model at central concentration ``c`` (mg/L).

        Linear models: ``ln 2 / |lambda_z|`` with ``lambda_z`` the slowest eigenvalue of the
        distribution/elimination part of K (``c`` is ignored). Michaelis-Menten models: the same
        with CL replaced by the total clearance at ``c``, ``CL + Vmax / (Km + c)`` -- the
        concentration-dependent half-life that labels of such drugs tabulate "at clinically
        relevant concentrations" (e.g. Herceptin, between Cmin,ss and Cmax,ss). ``c=None`` gives
        the half-life of the linear pathway alone (the limit of large ``c``).
        """
        q = dict(p)
        if self.michaelis_menten and c is not None:
            q["CL"] = p["CL"] + p["Vmax"] / (p["Km"] + np.maximum(np.asarray(c, float), 0.0))
        K = self.rate_matrix(q)
        if self.absorbed:
            K = K[:, 1:, 1:]
        lam = np.linalg.eigvals(K).real
        return np.log(2) / np.min(np.abs(lam), axis=1)

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
        """(N, n, n) first-order rate matrix K of the amounts (depot?, central, peripheral?).

        Linear processes only: saturable elimination is :meth:`saturable_elimination`.
        """
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
    if ("Vmax" in head) != ("Km" in head):
        have, lack = ("Vmax", "Km") if "Vmax" in head else ("Km", "Vmax")
        raise ModelFileError(f"[pk.{have}] needs [pk.{lack}]: Michaelis-Menten elimination takes both Vmax "
                             f"(e.g. value = \"{_EXAMPLES['Vmax']}\") and Km (e.g. value = \"{_EXAMPLES['Km']}\"); "
                             f"add [pk.{lack}] or remove [pk.{have}] for linear elimination", path=str(path),
                             entry=f"pk.{have}")
    values, cv, sources = {}, {}, {}
    for key in need + [k for k in ("Vmax", "Km", "ka", "F") if k in head]:
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
        if v < 0 or (v == 0 and key not in ("kp_uu_brain", "Vmax")):
            bound = ">= 0" if key in ("kp_uu_brain", "Vmax") else "> 0"
            raise ModelFileError(f"{key} must be {bound}, got {head[key]['value']!r}", path=str(path),
                                 entry=f"pk.{key}")
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
    from ..model.load import list_drugs

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
    Superposition needs linear kinetics: for a Michaelis-Menten model this returns
    :func:`simulate_pk` with the same arguments (numerical, ``rtol=1e-10``), so callers work with
    either kind of model.
    """
    if pk.michaelis_menten:
        return simulate_pk(pk, p, dose_times, doses_mg, t, route=route, infusion_h=infusion_h)
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


# ----------------------------------------------------------------------------- numerical path
def _derivative(pk: PKModel, p: dict, K: np.ndarray, x: np.ndarray, infusion: np.ndarray) -> np.ndarray:
    """(N, n) dx/dt: linear rates, saturable elimination and zero-order input (mg/h) into the central compartment."""
    dx = np.einsum("nij,nj->ni", K, x)
    c = pk.central
    dx[:, c] += infusion - pk.saturable_elimination(p, x[:, c] / p["V1"])
    return dx


def simulate_pk(pk: PKModel, p: dict, dose_times: np.ndarray, doses_mg: np.ndarray, t: np.ndarray, *,
                route: str = "iv", infusion_h: float = 0.0, rtol: float = 1e-10, atol: float = 1e-12,
                method: str = "DOP853") -> np.ndarray:
    """(N, T) plasma concentration (mg/L) by numerical integration; linear or Michaelis-Menten models.

    Same arguments and dose conventions as :func:`superpose` (a bolus at ``td`` is included at
    ``t == td``; ``infusion_h > 0`` makes iv doses zero-order infusions). All patients are one
    system for :func:`scipy.integrate.solve_ivp`, restarted at every dose and infusion end so that
    no step crosses a discontinuity. ``atol`` is in mg (amounts).
    """
    N = len(p["CL"])
    dose_times = np.asarray(dose_times, float)
    t = np.asarray(t, float)
    if dose_times.ndim != 1:
        raise InvalidArgument(f"dose_times must be 1-dimensional, got shape {dose_times.shape}")
    iv = route == "iv"
    F = pk.input_fraction(p, route)
    D = np.broadcast_to(np.asarray(doses_mg, float), (N, len(dose_times))) * F[:, None]
    K = pk.rate_matrix(p)
    n = pk.n_compartments
    inp = pk.central if iv else 0
    infuse = iv and infusion_h > 0
    edges = np.unique(np.concatenate([dose_times, dose_times + infusion_h] if infuse else [dose_times]))
    out = np.zeros((N, len(t)))
    x = np.zeros((N, n))
    for k, a in enumerate(edges):
        b = edges[k + 1] if k + 1 < len(edges) else max(float(t.max(initial=a)), a)
        at = dose_times == a
        rate = np.zeros(N)
        if infuse:
            on = (dose_times <= a) & (a < dose_times + infusion_h)
            rate = D[:, on].sum(axis=1) / infusion_h
        elif at.any():
            x[:, inp] += D[:, at].sum(axis=1)
        last = k + 1 == len(edges)
        sel = (t >= a) & ((t <= b) if last else (t < b))
        if b > a:
            def rhs(_s, y, rate=rate):
                return _derivative(pk, p, K, y.reshape(N, n), rate).ravel()

            ts = np.unique(np.concatenate([t[sel], [b]]))
            sol = scipy.integrate.solve_ivp(rhs, (a, b), x.ravel(), method=method, t_eval=ts, rtol=rtol, atol=atol)
            if sol.status != 0:
                raise IntegrationError(f"PK integration of {pk.name!r} failed on [{a}, {b}] h: {sol.message}")
            y = sol.y.reshape(N, n, -1)
            out[:, sel] = y[:, pk.central, np.searchsorted(ts, t[sel])] / p["V1"][:, None]
            x = y[:, :, -1].copy()
        else:
            out[:, sel] = (x[:, pk.central] / p["V1"])[:, None]
    return out


def expm_batch(K: np.ndarray, t: float) -> np.ndarray:
    """(N, n, n) ``expm(K t)`` of a stack of rate matrices: from the eigen-decomposition when every
    matrix has real eigenvalues and well-conditioned eigenvectors (compartment models), otherwise
    :func:`scipy.linalg.expm` (which loops over the stack, ~100x slower)."""
    lam, W = np.linalg.eig(K)
    if np.abs(lam.imag).max(initial=0.0) == 0 and np.linalg.cond(W.real).max(initial=1.0) < 1e8:
        W = W.real
        return np.einsum("nij,nj,njk->nik", W, np.exp(lam.real * t), np.linalg.inv(W))
    return scipy.linalg.expm(K * t)


# ----------------------------------------------------------------------------- hourly stepping
class PKStepper:
    """Hour-by-hour propagation of all patients' amounts for one drug and route.

    ``step(doses_mg)`` adds this hour's doses (N,) (bioavailable fraction applied) as a bolus,
    and advances one step of ``dt_h``; :meth:`concentration` reads the central concentration (mg/L).
    Linear models: exact propagator ``expm(K dt)``. Michaelis-Menten models: integrating-factor
    RK4 (module docstring) with ``2**L`` sub-steps, chosen per patient and step so that the
    sub-step times the stiffness of the saturable term, ``Vmax Km / (V1 (Km + C)**2)`` at a lower
    bound of C over the step, is at most :data:`MM_STEP_RATE` (one sub-step while ``C >> Km``),
    and, while absorption feeds the central compartment, ``h ka <= MM_INPUT_STEP``.
    ``step_rate`` replaces :data:`MM_STEP_RATE` (read at construction); ``expm(K, t)`` computes the
    (N, n, n) propagators (default :func:`scipy.linalg.expm`; :class:`HourlyPK` passes :func:`expm_batch`).
    """

    def __init__(self, pk: PKModel, p: dict, route: str, dt_h: float = 1.0, step_rate: float | None = None,
                 expm=None):
        K = pk.rate_matrix(p)
        self.step_rate = float(MM_STEP_RATE if step_rate is None else step_rate)
        expm = expm or (lambda A, t: scipy.linalg.expm(A * t))   # the reference: scipy's expm, bit for bit
        self.iv = route == "iv"
        self.pk = pk
        self.x = np.zeros((len(p["CL"]), pk.n_compartments))
        self.inp = pk.central if self.iv else 0
        self.F = pk.input_fraction(p, route)
        self.V1 = p["V1"]
        if not pk.michaelis_menten:
            self.M = expm(K, dt_h)
            return
        c = pk.central
        self.dt = dt_h
        self.p = {k: p[k] for k in ("V1", "Vmax", "Km")}
        self._klin = -K[:, c, c]                                     # linear relative fall rate of C
        self._kmax = self._klin + p["Vmax"] / (p["Km"] * p["V1"])  # bounds the relative fall of C
        self._ka = p["ka"] if pk.absorbed else np.zeros(len(p["CL"]))
        worst = np.maximum(dt_h * p["Vmax"] / (p["Km"] * p["V1"]) / self.step_rate,  # stiffness at C = 0
                           dt_h * self._ka / MM_INPUT_STEP)
        self._levels = int(np.ceil(np.log2(max(float(np.max(worst, initial=0.0)), 1.0))))
        self._E = []  # per level L: (E(h), E(h/2)) with h = dt / 2**L, (N, n, n) each
        for L in range(self._levels + 1):
            h = dt_h / 2 ** L
            self._E.append((expm(K, h), expm(K, h / 2)))

    def concentration(self) -> np.ndarray:
        """(N,) current central concentration in mg/L."""
        return self.x[:, self.pk.central] / self.V1

    def step(self, doses_mg: np.ndarray | None) -> None:
        if doses_mg is not None:
            self.x[:, self.inp] += doses_mg * self.F
        if not self.pk.michaelis_menten:
            self.x = np.einsum("nij,nj->ni", self.M, self.x)
            return
        q = self.p
        # lower bound of C over the step: dC/dt >= -k_lin C - Vmax/V1 (the saturable rate is at most Vmax),
        # and the relative fall rate is at most k_max; the larger of the two bounds
        c0 = np.maximum(self.x[:, self.pk.central], 0.0) / q["V1"]
        c_low = np.maximum(c0 * np.exp(-self.dt * self._kmax),
                           c0 * np.exp(-self.dt * self._klin) - self.dt * q["Vmax"] / q["V1"])
        stiff = self.dt * q["Vmax"] * q["Km"] / (q["V1"] * (q["Km"] + c_low) ** 2) / self.step_rate
        if self.pk.absorbed:
            inflow = self.dt * self._ka * self.x[:, 0] > 1e-3 * self.x[:, self.pk.central]  # absorption matters
            stiff = np.maximum(stiff, np.where(inflow, self.dt * self._ka / MM_INPUT_STEP, 0.0))
        level = np.minimum(np.ceil(np.log2(np.maximum(stiff, 1.0))).astype(int), self._levels)
        level[~self.x.any(axis=1)] = 0  # no drug yet: the state stays exactly zero
        for L in np.unique(level):
            idx = slice(None) if level.size and level.min() == level.max() else np.flatnonzero(level == L)
            E, E2 = self._E[L]
            qi = {k: v[idx] for k, v in q.items()}
            x = self.x[idx]
            for _ in range(2 ** L):
                x = self._lawson_rk4(x, qi, self.dt / 2 ** L, E[idx], E2[idx])
            self.x[idx] = x

    def _lawson_rk4(self, x, q, h, E, E2):
        """One integrating-factor RK4 step (Lawson 1967) of ``x' = K x + g(x)``, ``g = -e_c r(x_c)``.

        With ``E(s) = expm(K s)`` and ``k_i = g(.)``::

            k1 = g(x);  k2 = g(E(h/2) (x + h/2 k1));  k3 = g(E(h/2) x + h/2 k2)
            k4 = g(E(h) x + h E(h/2) k3)
            x+ = E(h) x + h/6 (E(h) k1 + 2 E(h/2) (k2 + k3) + k4)

        Only the central entry of ``g`` is non-zero, so ``E(s) g = -E(s)[:, c] r``.
        """
        c = self.pk.central

        def r(amount_c):  # (N,) saturable elimination rate, mg/h
            return self.pk.saturable_elimination(q, amount_c / q["V1"])

        Ex = np.einsum("nij,nj->ni", E, x)
        E2x = np.einsum("nij,nj->ni", E2, x)
        r1 = r(x[:, c])
        r2 = r(E2x[:, c] - h / 2 * E2[:, c, c] * r1)
        r3 = r(E2x[:, c] - h / 2 * r2)
        r4 = r(Ex[:, c] - h * E2[:, c, c] * r3)
        out = Ex - h / 6 * (E[:, :, c] * r1[:, None] + 2 * E2[:, :, c] * (r2 + r3)[:, None])
        out[:, c] -= h / 6 * r4
        return out


def accumulation_factor(k_el_h: float, tau_h: float) -> float:
    """Steady-state / first-dose ratio of a one-compartment drug dosed every ``tau_h``: 1/(1-e^{-k tau})."""
    return 1.0 / (1.0 - np.exp(-k_el_h * tau_h))


# ----------------------------------------------------------------------------- hourly grid, in blocks
class HourlyPK:
    """Hourly central concentrations (mg/L) of all patients for one drug and route, block by block.

    Same grid and dose convention as :class:`PKStepper` (a dose of hour ``h`` enters as a bolus at
    the start of that hour; the value of hour ``h`` is the concentration at its end), without a
    Python step per hour:

    - linear models: the exact closed form in the eigen-coordinates of K, ``y_j(t + s) = e^{l_j s}
      y_j(t)``, evaluated for all hours between two doses at once (identical to the stepper's
      ``expm(K)`` propagator up to round-off); if K is defective (ill-conditioned eigenvectors) the
      hourly stepper is used;
    - Michaelis-Menten models: the stepper's Lawson RK4 (with its own sub-steps) on a coarse grid of
      ``dt`` hours (the largest divisor of 24 that divides every dose hour), and the hours inside a
      coarse step from the exact linear propagator plus the saturable term's contribution over the
      step spread linearly in time: ``x(a + s) = E(s) x_a + (s / dt) (x_b - E(dt) x_a)``. Exact at
      the coarse grid points up to the stepper's error; in between, the error is measured against
      the hourly stepper in ``tests/test_trial_pk.py``.

    ``dose_hours`` (K,) integer hours, ``doses_mg`` (N, K) before the bioavailable fraction.
    """

    #: largest condition number of the eigenvector matrix for the closed form
    MAX_CONDITION = 1e8

    def __init__(self, pk: PKModel, p: dict, route: str, dose_hours: np.ndarray, doses_mg: np.ndarray):
        self.pk, self.N = pk, len(p["CL"])
        hours = np.asarray(dose_hours, dtype=np.int64)
        if hours.ndim != 1 or (hours < 0).any():
            raise InvalidArgument("dose_hours must be a 1-d array of non-negative integer hours")
        uniq, inv = np.unique(hours, return_inverse=True)
        D = np.zeros((self.N, len(uniq)))
        np.add.at(D.T, inv, np.asarray(doses_mg, float).T)  # doses of the same hour are added
        self.dose_hours, self.doses = uniq, D
        self.hour = 0
        self._next = 0  # index of the next dose not yet given
        K = pk.rate_matrix(p)
        self.stepper = None
        if not pk.michaelis_menten:
            lam, W = np.linalg.eig(K)
            if np.abs(lam.imag).max(initial=0.0) == 0 and np.linalg.cond(W.real).max(initial=1.0) < self.MAX_CONDITION:
                W = W.real
                Winv = np.linalg.inv(W)
                inp = pk.central if route == "iv" else 0
                self.lam = lam.real                                            # (N, n) 1/h
                self.b = Winv[:, :, inp] * pk.input_fraction(p, route)[:, None]  # (N, n) per mg dosed
                self.out = W[:, pk.central, :] / p["V1"][:, None]              # (N, n) -> mg/L
                self.y = np.zeros((self.N, pk.n_compartments))
                self.dt = 1
                return
            self.dt = 1
        else:
            self.dt = int(np.gcd.reduce(np.concatenate([[24], uniq])))
            self.dt = max(k for k in range(1, MM_COARSE_H + 1) if self.dt % k == 0)
        self.stepper = PKStepper(pk, p, route, dt_h=float(self.dt), step_rate=MM_COARSE_STEP_RATE,
                                 expm=expm_batch if self.dt > 1 else None)
        if self.dt > 1:
            c = pk.central
            E = np.stack([expm_batch(K, s) for s in range(0, self.dt + 1)], axis=1)  # (N, dt+1, n, n)
            self._E = E[:, 1:, c, :]                                                        # (N, dt, n)
            # shape of the saturable term's effect inside a step, for a constant elimination rate:
            # G(s) = int_0^s E(u)[c, c] du (trapezoid on the hourly points), normalised by G(dt)
            G = np.concatenate([np.zeros((self.N, 1)), np.cumsum(0.5 * (E[:, 1:, c, c] + E[:, :-1, c, c]), axis=1)],
                               axis=1)[:, 1:]
            self._shape = G / G[:, -1:]                                                     # (N, dt)
            self._V1 = p["V1"]

    def _dose_at(self, h: int):
        if self._next < len(self.dose_hours) and self.dose_hours[self._next] == h:
            self._next += 1
            return self.doses[:, self._next - 1]
        return None

    def block(self, n_hours: int) -> np.ndarray:
        """(N, n_hours) concentrations (mg/L) of the next ``n_hours`` hours; advances the state."""
        if self.stepper is not None and self.dt > 1 and n_hours % self.dt:
            raise InvalidArgument(f"block of {n_hours} h is not a multiple of the coarse step {self.dt} h")
        out = np.empty((self.N, n_hours))
        h0, h1 = self.hour, self.hour + n_hours
        if self.stepper is None:  # closed form, segment by segment between doses
            cuts = self.dose_hours[(self.dose_hours > h0) & (self.dose_hours < h1)]
            for a, b in zip(np.concatenate([[h0], cuts]), np.concatenate([cuts, [h1]])):
                d = self._dose_at(int(a))
                if d is not None:
                    self.y += self.b * d[:, None]
                Y = self.y[:, :, None] * np.exp(self.lam[:, :, None] * np.arange(1, b - a + 1)[None, None, :])
                out[:, a - h0:b - h0] = np.einsum("nj,njs->ns", self.out, Y)
                self.y = Y[:, :, -1].copy()
        elif self.dt == 1:
            for k in range(n_hours):
                self.stepper.step(self._dose_at(h0 + k))
                out[:, k] = self.stepper.concentration()
        else:
            st, c = self.stepper, self.pk.central
            for k in range(0, n_hours, self.dt):
                d = self._dose_at(h0 + k)
                xa = st.x.copy()
                if d is not None:
                    xa[:, st.inp] += d * st.F
                st.step(d)
                lin = np.einsum("nsj,nj->ns", self._E, xa)               # E(s) x_a, central row
                corr = st.x[:, c] - lin[:, -1]                           # saturable part over the step
                out[:, k:k + self.dt] = (lin + corr[:, None] * self._shape) / self._V1[:, None]
        self.hour = h1
        return out
