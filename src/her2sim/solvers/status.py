"""One status vocabulary for every member of every run: :class:`Status` (an ``IntEnum``).

Codes 0-4 are the batch integrator's (:data:`her2sim.solvers.batch.STATUS_CODES` holds the same numbers),
5-9 what a run of conditions adds (pre-equilibration, steady states, readouts, chunks), 10 a
failure of the scipy path (its message says how). Sweep files store these integers on disk.
The reason a member failed is a message carried beside its Status: ``Result.messages``,
``Dataset.message``, or the pair :class:`StatusMessage`.
"""

from __future__ import annotations

import warnings
from enum import IntEnum
from typing import NamedTuple

from ..errors import InvalidArgument


class Status(IntEnum):
    """Outcome of one member (an int on disk, a lower-case label in tables and files)."""

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
        return self is Status.OK

    @property
    def screen_label(self) -> str:
        """The screen's label: 'ok', 'not_steady' (no steady state with the drugs on) or 'failed'."""
        if self is Status.OK:
            return "ok"
        return "not_steady" if self is Status.NO_STEADY_STATE else "failed"

    @classmethod
    def from_label(cls, label: str) -> Status:
        """The Status of a label ('ok', 'max_steps', ...); 'failed' is :attr:`FAILED`."""
        try:
            return cls[str(label).upper()]
        except KeyError:
            raise InvalidArgument(f"unknown status label {label!r}; known: "
                             f"{', '.join(s.label for s in cls)}") from None


#: {code: label} of every status (sweep files' ``flag_meanings``)
STATUS_NAMES = {int(s): s.label for s in Status}


class StatusMessage(NamedTuple):
    """A member's :class:`Status` with the message that says why it failed ('' when it did not)."""

    status: Status
    message: str = ""

    @property
    def is_successful(self) -> bool:
        return self.status.is_successful

    @property
    def label(self) -> str:
        return self.status.label

    @property
    def ok(self) -> bool:
        """Deprecated alias of :attr:`is_successful` (the old ``Status.ok``)."""
        warnings.warn("StatusMessage.ok is deprecated; use .is_successful", DeprecationWarning, stacklevel=2)
        return self.status.is_successful


def status_message(code: Status | int | str = Status.OK, message: str = "") -> StatusMessage:
    """A :class:`StatusMessage` from a Status, an int code or a label; the old two-word form
    ``("failed", "max_steps: ...")`` takes the Status named at the start of the message when there
    is one (the batch integrator's reasons), else :attr:`Status.FAILED`."""
    if isinstance(code, str):
        if code == "failed":
            head = message.split(":", 1)[0].strip()
            code = Status[head.upper()] if head.upper() in Status.__members__ else Status.FAILED
        else:
            code = Status.from_label(code)
    return StatusMessage(Status(int(code)), str(message))
