"""Conditions: what one experiment does to the cells, in internal units, and a batch of them.

A :class:`Condition` holds drug doses in nM (keyed by the drugs' dose parameters), parameter
overrides in internal units and dose events (washouts). :class:`ConditionBatch` is an ordered
set of conditions of one network with an explicit drug-free pre-equilibration part: the
parameters of the rest state (:meth:`ConditionBatch.rest_parameters`, every dose 0) and the
parameters at dosing (:meth:`ConditionBatch.parameters`). Unit conversion from user input
(``"1 uM"``, ``"2 ug/mL"``) is :func:`her2sim.solvers.solve.make_condition`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, Mapping, Sequence

import numpy as np

from ..errors import InvalidArgument
from ..model.network import Network


@dataclass(frozen=True)
class Condition:
    """One experimental condition: drug doses (nM), parameter overrides (internal units) and
    dose events ``((t_h, {dose_parameter: nM}), ...)`` sorted by time."""

    doses: Mapping[str, float]
    parameters: Mapping[str, float]
    events: tuple = ()


def dosed(network: Network, p: np.ndarray, doses: Mapping[str, float]) -> np.ndarray:
    """Copy of the parameter vector ``p`` (n_params,) with the dose parameters set to ``doses`` (nM)."""
    q = p.copy()
    for name, v in doses.items():
        q[network.parameter_index(name)] = v
    return q


def doses_at(cond: Condition, t: float) -> dict:
    """{dose parameter: nM} in force at time ``t`` (h): the doses, then every event at or before t."""
    current = dict(cond.doses)
    for te, change in cond.events:
        if te <= t:
            current.update(change)
    return current


def segments(t_end: float, cond: Condition) -> Iterator[tuple[float, float, dict]]:
    """(t0, t1, doses) pieces of constant dosing from 0 to ``t_end``."""
    current = dict(cond.doses)
    t0 = 0.0
    for te, change in cond.events:
        if te >= t_end:
            break
        if te > t0:
            yield t0, te, dict(current)
            t0 = te
        current.update(change)
    yield t0, t_end, dict(current)


def same_schedule(conditions: Sequence[Condition]) -> bool:
    """True when every condition has the same dose events and doses the same drugs (the scipy
    engine's block mode integrates such a batch as one system; others run one at a time)."""
    conditions = list(conditions)
    return all(c.events == conditions[0].events and set(c.doses) == set(conditions[0].doses) for c in conditions)


def input_free(network: Network, p: np.ndarray) -> np.ndarray:
    """Copy of ``p`` with every drug dose parameter set to 0 (cells at rest before dosing)."""
    q = p.copy()
    for d in network.spec.drugs:
        q[network.parameter_index(d.dose_parameter)] = 0.0
    return q


@dataclass(frozen=True)
class ConditionBatch:
    """An ordered batch of :class:`Condition` s of one network.

    ``preequilibrate``: bring each member to its drug-free steady state before dosing (the
    pre-equilibration part, reported with its own status by
    :func:`her2sim.experiments.run_conditions`). ``labels``: optional per-condition labels
    (e.g. ``{"lapatinib": 100.0}``) kept with the results.
    """

    conditions: tuple
    preequilibrate: bool = True
    labels: tuple = field(default=(), compare=False)

    def __post_init__(self) -> None:
        conds = tuple(self.conditions)
        bad = [i for i, c in enumerate(conds) if not isinstance(c, Condition)]
        if bad:
            raise InvalidArgument(f"conditions[{bad[0]}] must be a her2sim.experiments.Condition, got "
                                  f"{type(conds[bad[0]]).__name__}; build it with her2sim.solvers.solve.make_condition")
        if self.labels and len(self.labels) != len(conds):
            raise InvalidArgument(f"labels: {len(self.labels)} labels for {len(conds)} conditions")
        object.__setattr__(self, "conditions", conds)
        object.__setattr__(self, "labels", tuple(self.labels))

    def __len__(self) -> int:
        return len(self.conditions)

    def __getitem__(self, index) -> ConditionBatch:
        """A sub-batch (``batch[idx]`` with a slice, a boolean mask or an index array)."""
        if isinstance(index, slice):
            rows = range(len(self))[index]
        else:
            index = np.asarray(index)
            rows = np.nonzero(index)[0] if index.dtype == bool else index.ravel()
        rows = [int(i) for i in rows]
        return ConditionBatch(tuple(self.conditions[i] for i in rows), self.preequilibrate,
                              tuple(self.labels[i] for i in rows) if self.labels else ())

    @property
    def has_events(self) -> bool:
        return any(c.events for c in self.conditions)

    def rest_parameters(self, network: Network) -> np.ndarray:
        """(B, n_params): overrides applied, every drug dose 0 (the pre-equilibration part)."""
        return np.array([input_free(network, network.parameters_with(c.parameters)) for c in self.conditions]) \
            .reshape(len(self), network.n_params)

    def parameters(self, network: Network) -> np.ndarray:
        """(B, n_params): overrides and the doses in force at t = 0."""
        return np.array([dosed(network, network.parameters_with(c.parameters), doses_at(c, 0.0))
                         for c in self.conditions]).reshape(len(self), network.n_params)

    def parameters_at(self, network: Network, P: np.ndarray, times: Sequence[float]) -> np.ndarray:
        """(B, T, n_params): ``P`` (B, n_params) with the doses in force at each time of ``times``."""
        P = np.asarray(P, dtype=float)
        out = np.repeat(P[:, None, :], len(times), axis=1)
        for i, c in enumerate(self.conditions):
            if c.events or c.doses:
                for k, t in enumerate(times):
                    out[i, k] = dosed(network, P[i], doses_at(c, float(t)))
        return out
