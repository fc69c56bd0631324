"""One status vocabulary for every run of conditions: :class:`Outcome` codes with their names.

Codes 0-4 are the batch integrator's (:data:`her2sim.batch.STATUS_CODES`), 5-9 are what a run of
conditions adds (pre-equilibration, steady states, readouts, chunks); sweep files store these
integers on disk. Screens show three labels (:func:`screen_label`): 'ok', 'not_steady' and 'failed'.
"""

from __future__ import annotations

from enum import IntEnum


class Outcome(IntEnum):
    """Outcome of one condition (an int on disk, a name in tables)."""

    OK = 0
    MAX_STEPS = 1
    STEP_SIZE_UNDERFLOW = 2
    NOT_FINITE = 3
    DIVERGED = 4
    PREEQUILIBRATION = 5
    NO_STEADY_STATE = 6
    READOUT_NOT_FINITE = 7
    CHUNK_FAILED = 8
    NOT_RUN = 9
    FAILED = 10  # the scipy path failed (its message says how)

    @property
    def label(self) -> str:
        """Lower-case name, as in sweep files and summaries ('max_steps', 'preequilibration', ...)."""
        return self.name.lower()

    @property
    def is_successful(self) -> bool:
        return self is Outcome.OK


#: {code: name} of every outcome (sweep files' ``flag_meanings``)
OUTCOME_NAMES = {int(o): o.label for o in Outcome}


def screen_label(code: int) -> str:
    """The screen's label of a code: 'ok', 'not_steady' (no steady state with the drugs on) or 'failed'."""
    code = Outcome(int(code))
    if code is Outcome.OK:
        return "ok"
    return "not_steady" if code is Outcome.NO_STEADY_STATE else "failed"
