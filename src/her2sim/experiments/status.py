"""Status of a run of conditions: :class:`her2sim.solvers.status.Status` (re-exported) and the screen's labels.

``Outcome`` and ``OUTCOME_NAMES`` are the old names of :class:`Status` and :data:`STATUS_NAMES`
(deprecated; kept importable for one release).
"""

from __future__ import annotations

import warnings

from ..solvers.status import STATUS_NAMES, Status

__all__ = ["STATUS_NAMES", "Status", "screen_label"]

_DEPRECATED = {"Outcome": ("Status", Status), "OUTCOME_NAMES": ("STATUS_NAMES", STATUS_NAMES)}


def screen_label(code: int) -> str:
    """The screen's label of a code: 'ok', 'not_steady' (no steady state with the drugs on) or 'failed'."""
    return Status(int(code)).screen_label


def __getattr__(name: str):
    if name in _DEPRECATED:
        new, value = _DEPRECATED[name]
        warnings.warn(f"her2sim.experiments.{name} is deprecated; use her2sim.solvers.status.{new} "
                      f"(also her2sim.{new})", DeprecationWarning, stacklevel=2)
        return value
    raise AttributeError(f"module 'her2sim.experiments.status' has no attribute {name!r}")
