"""Experiments: conditions, readouts, rest states and one runner, under simulate, screens and sweeps.

- :mod:`.condition`: :class:`Condition`, :class:`ConditionBatch` (doses in nM, parameter
  overrides, dose events; an explicit drug-free pre-equilibration part);
- :mod:`.readouts`: one grammar (``NAME@T``, ``mean:``/``auc:`` with windows, ``steady:``,
  ``rest:``, ``gr:``) and one quadrature;
- :mod:`.status`: the one status vocabulary (:class:`her2sim.solvers.status.Status`) and the screen's labels;
- :mod:`.cache`: :class:`RestCache`, the rest-state cache as an explicit object keyed by a digest
  of the network (:func:`network_digest`);
- :mod:`.reststate`: :class:`RestStates`, steady states on the scipy or batch engine with held
  species and one drift test;
- :mod:`.runner`: :func:`run_conditions`, a batch of conditions -> a labelled xarray.Dataset.

The first four are leaves (the scipy path imports them); the last two sit above both engines
and are imported on first use.
"""

from .cache import RestCache, network_digest
from .condition import Condition, ConditionBatch, dosed, doses_at, input_free
from .readouts import READOUT_KINDS, Readout, ReadoutError, parse_readout
from .status import STATUS_NAMES, Status, screen_label

__all__ = ["Condition", "ConditionBatch", "READOUT_KINDS", "Readout", "ReadoutError",
           "RestCache", "RestResult", "RestStates", "dosed", "doses_at", "input_free", "network_digest",
           "STATUS_NAMES", "Status", "parse_readout", "run_conditions", "screen_label"]


def __getattr__(name: str):
    """The runner and the rest-state service import both engines: load them on first use.
    ``Outcome``/``OUTCOME_NAMES``: deprecated names of Status/STATUS_NAMES (one release)."""
    if name in ("Outcome", "OUTCOME_NAMES"):
        from . import status

        return getattr(status, name)
    if name in ("RestStates", "RestResult"):
        from . import reststate

        return getattr(reststate, name)
    if name == "run_conditions":
        from .runner import run_conditions

        return run_conditions
    raise AttributeError(f"module 'her2sim.experiments' has no attribute {name!r}")
