"""One rest-state service: steady states of many (x0, p) rows on the scipy or the batch engine.

Species marked ``preequilibrate = false`` (cell counts) are held at their value; a state is
steady when :func:`her2sim.solvers.solve.relative_drift` (max |dx/dt| / (|x| + 1e-7 nM) over the moving
species) is below ``tol`` (1e-7 /h). Engines:

- ``"scipy"``: :func:`her2sim.solvers.solve.steady_state` per distinct row (LSODA, rtol 1e-8, horizons
  growing from 100 h by 4x up to ``max_time_h``);
- ``"batch"``: the distinct rows integrated together by :func:`her2sim.solvers.batch.simulate_batch` over
  1e4 h, then 1e6 h for rows still drifting, on a copy of the network compiled with the held
  species taken out of every reaction's stoichiometry (their derivative is exactly 0).

Measured on the default model during development: 58 ms per parameter set with scipy, ~2 ms per
member on the batch path at B = 1000 (rtol 1e-6, 1e4 h), the two states agreeing to 2e-9.
Results are kept in a :class:`~her2sim.experiments.RestCache` owned by the service (or passed in),
keyed by the network's digest.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..solvers.batch import auto_fused_members, simulate_batch
from ..errors import IntegrationError, InvalidArgument
from ..model.network import Network, compile_network
from ..solvers.scipy_engine import relative_drift, steady_state
from ..solvers.status import Status
from .cache import RestCache

#: horizons (h) of the batch-engine search; a row still drifting after the last one fails
HORIZONS = (1e4, 1e6)
#: steady when the relative drift is below this (1/h)
TOLERANCE = 1e-7
ENGINES = ("scipy", "batch")


@dataclass(frozen=True, eq=False)
class RestResult:
    """Steady states of m rows: ``states`` (m, n) (the start state where it failed), ``ok`` (m,),
    ``messages`` {row: why it failed}, ``drift`` (m,) relative drift at the returned state (1/h)."""

    states: np.ndarray
    ok: np.ndarray
    messages: dict
    drift: np.ndarray


def held_network(network: Network) -> Network:
    """A network compiled like ``network`` but whose held species (``preequilibrate = false``)
    appear in no reaction's reactants or products, so they do not move."""
    held = {s.name for s in network.spec.species if not s.preequilibrate}
    spec = network.spec
    reactions = tuple(dataclasses.replace(r, reactants=tuple((s, c) for s, c in r.reactants if s not in held),
                                          products=tuple((s, c) for s, c in r.products if s not in held))
                      for r in spec.reactions)
    return compile_network(dataclasses.replace(spec, reactions=reactions))


class RestStates:
    """Steady states with held species, cached per network digest.

    Parameters
    ----------
    cache : a :class:`RestCache` to keep the states in (default: a new one owned by this object).
    horizons : batch-engine horizons (h). tol : the drift test (1/h).
    """

    def __init__(self, cache: RestCache | None = None, *, horizons=HORIZONS, tol: float = TOLERANCE):
        self.cache = RestCache() if cache is None else cache
        self.horizons = tuple(float(h) for h in horizons)
        self.tol = float(tol)
        self._held: dict[str, Network] = {}

    def __getstate__(self):  # ship the settings to worker processes, not the caches
        return {"horizons": self.horizons, "tol": self.tol, "max_entries": self.cache.max_entries}

    def __setstate__(self, state):
        self.__init__(RestCache(state["max_entries"]), horizons=state["horizons"], tol=state["tol"])

    def held(self, network: Network) -> Network:
        """The held copy of ``network`` (compiled once per network digest)."""
        key = self.cache.digest(network)
        if key not in self._held:
            self._held[key] = held_network(network)
        return self._held[key]

    def solve(self, network: Network, X0, P, *, engine: str = "scipy", method: str = "rodas4", rtol: float = 1e-6,
              atol: float = 1e-9, max_steps: int = 100_000, max_time_h: float | None = None,
              kernels=None) -> RestResult:
        """Steady states of the rows of X0 (m, n) with parameters P (m, n_params) as given (set the
        doses to 0 for the drug-free rest state). Each distinct row is solved once. ``method``,
        ``rtol`` (at most 1e-6), ``atol`` and ``max_steps`` are the batch engine's;
        ``max_time_h`` caps the search (default 1e6 h). ``kernels``: the run's
        :class:`~her2sim.solvers.ckernels.KernelCache` (as for the time course): the batch engine uses
        the held network's compiled kernels from it, building them into it when the search has
        enough rows to pay for a build (:func:`~her2sim.solvers.batch.auto_fused_members`) or they
        are there already; None: ``simulate_batch``'s ``fused="auto"``."""
        if engine not in ENGINES:
            raise InvalidArgument(f"engine must be one of {ENGINES}, got {engine!r}")
        X0, P = np.atleast_2d(np.asarray(X0, dtype=float)), np.atleast_2d(np.asarray(P, dtype=float))
        m, n = X0.shape
        if P.shape[0] != m:
            raise InvalidArgument(f"X0 has {m} rows but P has {P.shape[0]}; give one parameter row per state")
        if not m:
            return RestResult(X0.copy(), np.ones(0, dtype=bool), {}, np.zeros(0))
        U, inv = np.unique(np.hstack([X0, P]), axis=0, return_inverse=True)
        inv = inv.ravel()
        Xu, Pu = U[:, :n].copy(), U[:, n:]
        tag = engine if engine == "scipy" else f"batch:{method}:{min(rtol, 1e-6):g}:{atol:g}:{max_time_h}"
        keys = [self.cache.key(network, tag, Xu[u], Pu[u]) for u in range(len(U))]
        todo = []
        for u, key in enumerate(keys):
            hit = self.cache.get(key)
            if hit is None:
                todo.append(u)
            else:
                Xu[u] = hit
        todo = np.array(todo, dtype=int)
        bad: dict[int, str] = {}
        if len(todo):
            if engine == "scipy":
                bad = self._scipy(network, Xu, Pu, todo, max_time_h)
            else:
                bad = self._batch(network, Xu, Pu, todo, method, rtol, atol, max_steps, max_time_h, kernels)
            for u in todo:
                if int(u) not in bad:
                    self.cache.put(keys[u], Xu[u])
        held_mask = np.array([not sp.preequilibrate for sp in network.spec.species], dtype=bool)
        Xu[:, held_mask] = U[:, :n][:, held_mask]  # held means held: exactly the given values, no round-off
        drift_u = relative_drift(network, Xu, Pu)
        ok = np.ones(m, dtype=bool)
        messages: dict[int, str] = {}
        for u, reason in bad.items():
            for k in np.nonzero(inv == u)[0]:
                ok[k] = False
                messages[int(k)] = reason
        return RestResult(Xu[inv], ok, messages, drift_u[inv])

    def _scipy(self, network, Xu, Pu, todo, max_time_h) -> dict:
        bad = {}
        kwargs = {} if max_time_h is None else {"max_time_h": max_time_h}
        for u in todo:
            try:
                Xu[u] = steady_state(network, Xu[u], Pu[u], **kwargs)
            except IntegrationError as exc:
                bad[int(u)] = str(exc)
        return bad

    def _batch(self, network, Xu, Pu, todo, method, rtol, atol, max_steps, max_time_h, kernels=None) -> dict:
        held = self.held(network)
        rtol = min(rtol, 1e-6)
        fused = "auto"
        if kernels is not None and (len(todo) >= auto_fused_members(rtol) or kernels.has(held, "markowitz")):
            fused = kernels
        horizons = self.horizons if max_time_h is None else \
            tuple(h for h in self.horizons if h < max_time_h) + (float(max_time_h),)
        bad: dict[int, str] = {}
        pending = np.asarray(todo)
        drift = np.zeros(len(Xu))
        for horizon in horizons:
            res = simulate_batch(held, Xu[pending], Pu[pending], t_eval=np.array([horizon]), method=method,
                                 rtol=rtol, atol=atol, max_steps=max_steps, fused=fused,
                                 certify=None)  # a steady-state search: its drift test is the check
            for k in np.nonzero(~res.ok)[0]:
                bad[int(pending[k])] = f"{Status(int(res.status_code[k])).label}: {res.messages[k]}"
            ok = pending[res.ok]
            Xu[ok] = res.states[res.ok, -1]
            drift[ok] = relative_drift(network, Xu[ok], Pu[ok])
            pending = ok[drift[ok] >= self.tol]
            if not len(pending):
                break
        for u in pending:
            bad[int(u)] = (f"no steady state within {horizons[-1]:g} h (max relative drift {drift[u]:.2e}/h): the "
                           "model may oscillate or grow without bound")
        return bad
