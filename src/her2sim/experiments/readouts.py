"""One readout grammar and one quadrature for screens, sweeps and :func:`run_conditions`.

Grammar (``[KIND:]NAME[@TIME]``, times with a unit, hours after dosing)::

    pAKT@24h             value at 24 h                      (kind "at"; no time: the end of the run)
    mean:pAKT@48h        time average over [0, 48 h]         (windows: mean:pS6@6h..24h)
    auc:pERK@24h         area under the curve over [0, 24 h] (unit x h; windows as for mean)
    steady:pAKT          steady state with the drugs on, cell counts held (``ss:`` is an alias);
                         steady:pAKT@2000h caps the search at 2000 h
    rest:pAKT            the drug-free rest state the cells start from
    gr@72h, gr:cells@72h cell count at 72 h and at dosing, for the growth-rate inhibition value
                         (Hafner et al. 2016 Nat Methods 13:521), which needs an untreated control

Quadrature: Simpson's rule on :func:`window_grid` (spacing step/64 after the window start, growing
by 1.3 per point up to ``step``; doses act at t = 0, where the fast transients are). On
exp(-k t), k = 1..20 /h, its relative error is ~3e-5 at step = 0.5 h against 2e-3 for a uniform
0.5 h grid.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.integrate import simpson

from ..errors import ReadoutError, UnitError
from ..model.units import convert

#: readout kinds (see the module docstring)
READOUT_KINDS = ("at", "mean", "auc", "steady", "rest", "gr")
#: kinds read from the trajectory after dosing
TIMED_KINDS = ("at", "mean", "auc", "gr")
#: largest spacing (h) of the mean/auc quadrature grid unless a caller gives one
DEFAULT_OUTPUT_STEP = 0.5

_NAME = re.compile(r"[A-Za-z_]\w*")
_TEXT = re.compile(r"^\s*(?:(?P<kind>[A-Za-z]+)\s*:\s*)?(?P<name>[^@:\s]*)\s*(?:@(?P<time>.*))?$")


@dataclass(frozen=True)
class Readout:
    """What is measured in each condition.

    Attributes
    ----------
    name : observable or species (for ``gr`` the cell-count species, default viable_cells).
    kind : one of :data:`READOUT_KINDS`.
    time_h : at/gr: the time; mean/auc: the window end; steady: the search horizon; None: the
        end of the run (steady: the rest-state service's horizons). Hours after dosing, > 0.
    start_h : mean/auc: the window start (h, default 0 = dosing).
    text : the readout as written (the label of its column); not part of equality.
    """

    name: str
    kind: str = "at"
    time_h: float | None = None
    start_h: float = 0.0
    text: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in READOUT_KINDS:
            raise ReadoutError(f"readout kind {self.kind!r} is not one of {READOUT_KINDS}")
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ReadoutError(f"readout name {self.name!r} must be an observable or species name "
                               "(letters, digits, _), e.g. 'pAKT'")
        if self.time_h is not None and not (math.isfinite(self.time_h) and self.time_h > 0):
            raise ReadoutError(f"readout time {self.time_h!r} h must be > 0 (hours after dosing)")
        if self.kind == "rest" and self.time_h is not None:
            raise ReadoutError(f"readout rest:{self.name}: rest: readouts take no time; write rest:{self.name}")
        if self.start_h:
            if self.kind not in ("mean", "auc"):
                raise ReadoutError(f"readout {self.name}: a window T0..T1 needs auc: or mean:; write "
                                   f"{self.name}@TIME for the value at one time")
            if not (math.isfinite(self.start_h) and self.start_h > 0) or self.time_h is None \
                    or not self.time_h > self.start_h:
                raise ReadoutError(f"readout {self.kind}:{self.name}: the window must have T0 < T1")

    # -- naming -----------------------------------------------------------------------------
    def __str__(self) -> str:
        head = "gr" if self.kind == "gr" and self.name == "viable_cells" else (
            self.name if self.kind == "at" else f"{self.kind}:{self.name}")
        if self.time_h is None:
            return head
        if self.start_h:
            return f"{head}@{_hours_text(self.start_h)}h..{_hours_text(self.time_h)}h"
        return f"{head}@{_hours_text(self.time_h)}h"

    @property
    def label(self) -> str:
        """The readout as written, else its canonical text."""
        return self.text.strip() if self.text else str(self)

    @property
    def target(self) -> str:
        return self.name

    @property
    def t0(self) -> float | None:
        """Start of the time span the readout reads (h): the time itself for at/gr."""
        if self.kind in ("at", "gr"):
            return self.time_h
        if self.kind in ("mean", "auc") and self.time_h is not None:
            return self.start_h
        return None

    @property
    def t1(self) -> float | None:
        """End of the time span the readout reads (h); None for steady/rest or unresolved."""
        return self.time_h if self.kind in TIMED_KINDS else None

    def resolved(self, end_time_h: float | None) -> Readout:
        """This readout with a missing time set to ``end_time_h`` (at/mean/auc/gr)."""
        if self.time_h is None and end_time_h is not None and self.kind in TIMED_KINDS:
            return replace(self, time_h=float(end_time_h))
        return self


def _hours_text(h: float) -> str:
    """Shortest text of ``h`` that reads back to the same float ('24', '0.5', '1000.125')."""
    short = f"{h:g}"
    return short if float(short) == h else repr(float(h))


def _hours(text: str, what: str) -> float:
    h = convert(text, "h", what=what)
    if h < 0:
        raise UnitError(f"{what}: {text!r} is negative; times must be >= 0")
    return h


def parse_readout(text: str | Readout, *, end_time_h: float | None = None) -> Readout:
    """Read a readout (grammar in the module docstring); ``end_time_h`` fills a missing time.

    Raises ReadoutError (grammar) or UnitError (a time without a time unit, or negative).
    """
    if isinstance(text, Readout):
        return text.resolved(end_time_h)
    if not isinstance(text, str) or not text.strip():
        raise ReadoutError(f"readout must be a string such as 'pAKT@24h' or 'gr@72h', got {text!r}")
    m = _TEXT.match(text)
    if m is None:
        raise ReadoutError(f"readout {text!r} is not [kind:]name[@time], e.g. 'pAKT@24h', 'auc:pERK', 'gr@72h'")
    kind, name, when = (m.group("kind") or "").lower(), m.group("name"), m.group("time")
    if not kind and name.lower() == "gr":
        kind, name = "gr", "viable_cells"
    kind = {"": "at", "ss": "steady"}.get(kind, kind)
    if kind not in READOUT_KINDS:
        close = difflib.get_close_matches(kind, list(READOUT_KINDS[1:]) + ["ss"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ReadoutError(f"readout {text!r}: unknown kind {kind!r}.{hint} Kinds: mean, auc, steady (or ss), rest, "
                           "gr (none: the value at a time)")
    if not name:
        raise ReadoutError(f"readout {text!r} names no observable; e.g. '{kind}:pAKT'")
    if not _NAME.fullmatch(name):
        raise ReadoutError(f"readout {text!r} is not [kind:]name[@time]: {name!r} is not an observable or "
                           "species name")
    start, time_h = 0.0, None
    if when is not None:
        if not when.strip():
            raise ReadoutError(f"readout {text!r}: give a time after '@', e.g. '{name}@24h'")
        if kind == "rest":
            raise ReadoutError(f"readout {text!r}: rest: readouts take no time; write rest:{name}")
        if ".." in when:
            if kind not in ("mean", "auc"):
                raise ReadoutError(f"readout {text!r}: a window T0..T1 needs auc: or mean:; write {name}@TIME for "
                                   "the value at one time")
            a, b = when.split("..", 1)
            start, time_h = _hours(a.strip(), f"readout {text!r}"), _hours(b.strip(), f"readout {text!r}")
            if not time_h > start:
                raise ReadoutError(f"readout {text!r}: the window must have T0 < T1")
        else:
            time_h = _hours(when.strip(), f"time of readout {text!r}")
    return Readout(name, kind, time_h, start, text=text.strip()).resolved(end_time_h)


# ----------------------------------------------------------------------------- quadrature
def window_grid(t0: float, t1: float, step: float = DEFAULT_OUTPUT_STEP, first: float = 1 / 64,
                growth: float = 1.3) -> np.ndarray:
    """Quadrature points from ``t0`` to ``t1`` (h): spacing ``step * first`` growing by ``growth``
    per point up to ``step``; a last gap under step/4 is merged into the one before."""
    points, h = [float(t0)], step * first
    while points[-1] < t1 - 1e-9:
        points.append(min(float(t1), points[-1] + h))
        h = min(step, h * growth)
    if len(points) > 2 and points[-1] - points[-2] < 0.25 * step:
        del points[-2]
    return np.array(points)


def output_grid(readouts, step: float = DEFAULT_OUTPUT_STEP) -> np.ndarray:
    """Output times (h) for resolved readouts: 0, every at/gr time, each window's quadrature points."""
    times = [0.0]
    for r in readouts:
        if r.kind in ("at", "gr") and r.time_h is not None:
            times.append(r.time_h)
        elif r.kind in ("mean", "auc") and r.time_h is not None:
            times.extend(window_grid(r.start_h, r.time_h, step))
    grid = np.unique(np.round(np.asarray(times, dtype=float), 9))
    return grid if len(grid) > 1 else np.array([0.0, max(grid[-1], 1e-9)])


def time_index(grid: np.ndarray, t: float) -> int:
    """Index of the grid point nearest to ``t``."""
    return int(np.argmin(np.abs(np.asarray(grid) - t)))


def window_points(grid: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """Indices of the grid points inside [t0, t1]."""
    return np.nonzero((grid >= t0 - 1e-9) & (grid <= t1 + 1e-9))[0]


def window_value(kind: str, values: np.ndarray, times: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """auc (area, Simpson's rule along the last axis) or mean (area / (t1 - t0)) of ``values``
    (..., K) sampled at ``times`` (K,) covering [t0, t1]."""
    area = simpson(values, x=times, axis=-1)
    return area if kind == "auc" else area / (t1 - t0)
