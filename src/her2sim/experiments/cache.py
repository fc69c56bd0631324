"""The rest-state cache: an explicit object, keyed by a digest of the network's content.

Nothing is stored on the :class:`~her2sim.model.network.Network`: whoever wants repeated simulations
of one model to share their drug-free rest states (dose series, an interactive app) owns a
:class:`RestCache` and passes it along. Editing the model (a rate law, a parameter value, an
initial amount) changes :func:`network_digest`, so a stale rest state is never returned.
"""

from __future__ import annotations

import hashlib
import weakref
from collections import OrderedDict

import numpy as np

from ..model.network import Network


def network_digest(network: Network) -> str:
    """sha256 of what determines a network's trajectories: species (initial amounts, units, held
    flags), parameter values, expressions, rate laws, observables, events and drugs. Names of
    files, sources and descriptions do not enter."""
    spec = network.spec
    parts = [
        repr([(s.name, s.initial, repr(s.initial_expr), s.unit, s.preequilibrate, s.quantity) for s in spec.species]),
        repr([(p.name, float(p.value), p.internal_unit) for p in spec.parameters]),
        repr([(e.name, repr(e.node)) for e in spec.expressions]),
        repr([(r.name, r.reactants, r.products, repr(r.rate)) for r in spec.reactions]),
        repr([(o.name, repr(o.node), o.unit) for o in spec.observables]),
        repr([(d.name, d.dose_parameter) for d in spec.drugs]),
        repr(spec.events), repr((spec.preequilibrate, spec.nonnegative, spec.time_unit)),
        np.asarray(network.x0, dtype=float).tobytes().hex(), np.asarray(network.p0, dtype=float).tobytes().hex(),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class RestCache:
    """Least-recently-used store of steady states keyed by (network digest, engine, x0, p).

    ``max_entries`` bounds the memory (each entry is one state vector). The digest of each
    network object is computed once per object (held weakly: a dropped network is forgotten).
    """

    def __init__(self, max_entries: int = 4096):
        self.max_entries = int(max_entries)
        self._states: OrderedDict = OrderedDict()
        self._digests: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def digest(self, network: Network) -> str:
        """:func:`network_digest` of ``network`` (computed once per object)."""
        if network not in self._digests:
            self._digests[network] = network_digest(network)
        return self._digests[network]

    def key(self, network: Network, engine: str, x0: np.ndarray, p: np.ndarray) -> tuple:
        return (self.digest(network), engine, np.asarray(x0, dtype=float).tobytes(),
                np.asarray(p, dtype=float).tobytes())

    def get(self, key: tuple) -> np.ndarray | None:
        x = self._states.get(key)
        if x is None:
            return None
        self._states.move_to_end(key)
        return x.copy()

    def put(self, key: tuple, x: np.ndarray) -> None:
        self._states[key] = np.array(x, dtype=float)
        self._states.move_to_end(key)
        while len(self._states) > self.max_entries:
            self._states.popitem(last=False)

    def __len__(self) -> int:
        return len(self._states)

    def clear(self) -> None:
        self._states.clear()
