"""Argument checks shared by the public functions and the command line.

Each ``check_*`` returns the value in its canonical form or raises :class:`InvalidArgument`
(:class:`TooLargeError` for sizes) whose message names the argument, repeats the value given and
says what to pass instead. ``name`` is what the caller calls the argument: ``"rtol"`` in the API,
``"--rtol"`` on the command line. Nothing here starts any work, so callers check everything
before loading a model or writing a file. The size limits below are stated (with why) in
README "Errors and exit codes".
"""

from __future__ import annotations

import math
import numbers
import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from .errors import InvalidArgument, QuantityRangeError, TooLargeError

#: largest number of conditions one call or one sweep runs (a sweep of 1e8 conditions at ~1,000
#: conditions/s per core is more than a day on a 32-core node; beyond it, split the sweep)
MAX_CONDITIONS = 100_000_000
#: most conditions in one sweep chunk: the batch integrator holds every member's state, stages, LU
#: values and parameters at once (~7 kB per member on the default model, so ~0.7 GB at the limit)
MAX_CHUNK = 100_000
#: largest number of values on one sweep axis or dose grid
MAX_AXIS_VALUES = 1_000_000
#: largest number of patients in one trial run: at the measured ~26 patients/s per core
#: (benchmarks/README.md) 1e6 patients are ~11 core-hours, and the driver holds the whole cohort
#: and patients table (sampling 2e5 patients: 0.4 s, 149 MB peak RSS in all)
MAX_PATIENTS = 1_000_000
#: largest output the scipy and batch paths allocate in one call, bytes (conditions x times x
#: values x 8 B); a quarter of a 16 GB machine, and far above any screen (1e4 conditions x 73 times
#: x 36 species of the default model is 0.2 GB)
MAX_OUTPUT_BYTES = 4 * 2**30
#: smallest relative tolerance: 100 x machine epsilon is where scipy's solvers stop honouring it
MIN_RTOL = 1e-13
#: figure formats the --plot options accept (matplotlib's Agg and vector backends)
PLOT_SUFFIXES = (".png", ".pdf", ".svg", ".jpg", ".jpeg")
#: seeds are whole numbers in [0, MAX_SEED] (numpy's SeedSequence takes any non-negative int)
MAX_SEED = 2**63 - 1


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_real(value, name: str, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False, fix: str = "") -> float:
    """A finite real number (not a bool, not a string) within [low, high] (open ends if asked)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{name} must be a number, got {type(value).__name__} {_shown(value)}"
                              + (f"; {fix}" if fix else ""))
    v = _number(value, name)
    bad = not math.isfinite(v)
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        span = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise InvalidArgument(f"{name} must be a finite number in {span}, got {_shown(value)}"
                              + (f"; {fix}" if fix else ""))
    return v


def check_tolerances(rtol, atol, *, names: tuple[str, str] = ("rtol", "atol")) -> tuple[float, float]:
    """rtol in (0, 1) and atol > 0 (nM)."""
    return check_rtol(rtol, names[0]), check_atol(atol, names[1])


def check_rtol(rtol, name: str = "rtol") -> float:
    """A relative tolerance in [MIN_RTOL, 1)."""
    r = _number(rtol, name)
    if not (math.isfinite(r) and 0 < r < 1):
        raise InvalidArgument(f"{name} must be in (0, 1), got {_shown(rtol)}; typical values 1e-8..1e-3")
    if r < MIN_RTOL:
        raise InvalidArgument(f"{name} = {r:g} is below {MIN_RTOL:g}, under double-precision round-off (scipy would "
                              "silently raise it); typical values 1e-8..1e-3")
    return r


def check_atol(atol, name: str = "atol") -> float:
    """An absolute tolerance > 0 (nM)."""
    a = _number(atol, name)
    if not (math.isfinite(a) and a > 0):
        raise InvalidArgument(f"{name} must satisfy {name.lstrip('-')} > 0 (an absolute tolerance in nM), got "
                              f"{_shown(atol)}; typical values 1e-12..1e-6")
    return a


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{name} must be a number, got {type(value).__name__} {_shown(value)}")
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range
        return math.inf if value > 0 else -math.inf


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None, fix: str = "") -> int:
    """A whole number (int or numpy integer, or a float with an integral value) in [minimum, maximum]."""
    if isinstance(value, bool):
        raise InvalidArgument(f"{name} must be a whole number, got {value!r}" + (f"; {fix}" if fix else ""))
    if isinstance(value, numbers.Integral):
        v = int(value)
    elif isinstance(value, numbers.Real) and math.isfinite(float(value)) and float(value).is_integer():
        v = int(value)
    else:
        raise InvalidArgument(f"{name} must be a whole number, got {type(value).__name__} {_shown(value)}"
                              + (f"; {fix}" if fix else ""))
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        span = f">= {minimum}" if minimum is not None and v < minimum else f"<= {maximum:,}"
        raise InvalidArgument(f"{name} must be {span}, got {v:,}" + (f"; {fix}" if fix else ""))
    return v


def check_seed(value, name: str = "seed") -> int:
    """A random seed: a whole number in [0, 2**63 - 1]."""
    return check_int(value, name, minimum=0, maximum=MAX_SEED, fix="use any non-negative whole number, e.g. 0")


def check_count(value, name: str, *, minimum: int = 1, limit: int | None = None, fix: str = "",
                split: str = "") -> int:
    """A count >= minimum (``fix`` says what to pass); above ``limit`` a :class:`TooLargeError`
    whose message ends with ``split`` (how to split the work)."""
    v = check_int(value, name, minimum=minimum, fix=fix)
    if limit is not None and v > limit:
        raise TooLargeError(f"{name} = {v:,} is above the limit of {limit:,}" + (f"; {split}" if split else ""))
    return v


def check_size(n: int | float, what: str, limit: int, how_to_split: str, *, bytes_each: float | None = None) -> None:
    """Raise :class:`TooLargeError` if ``n`` (a count computed from the arguments, possibly a
    huge float) is above ``limit``; the message gives the size (and memory when ``bytes_each``)."""
    if n <= limit:
        return
    size = f"{n:,.0f}" if n < 1e15 else f"{n:.3g}"
    memory = f" (about {format_bytes(n * bytes_each)} in memory)" if bytes_each else ""
    raise TooLargeError(f"{what} would be {size}{memory}, above the limit of {limit:,}; {how_to_split}")


def format_bytes(n: float) -> str:
    """'3.2 GB'-style text for a number of bytes."""
    for unit, size in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def check_time(value, name: str = "time", *, positive: bool = True) -> float:
    """A duration such as '72 h', '3 day' or a number of hours -> finite hours (> 0, or >= 0)."""
    from .model.units import convert

    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)) and not hasattr(value, "dimensionality"):
        raise InvalidArgument(f"{name} must be a time such as '72 h' or a number of hours, got "
                              f"{type(value).__name__} {_shown(value)}")
    h = float(convert(value, "h", what=name))
    if not math.isfinite(h):
        raise QuantityRangeError(f"{name} must be a finite time, got {_shown(value)}; e.g. '72 h' or '3 day'")
    if h < 0:
        raise QuantityRangeError(f"{name}: {_shown(value)} is negative; times must be >= 0")
    if positive and h == 0:
        raise QuantityRangeError(f"{name} must be > 0, got {_shown(value)}; e.g. '72 h' or '3 day'")
    return h


def check_mapping(value, name: str, example: str) -> dict:
    """None -> {}; a mapping with string keys -> dict; anything else (a string, a list) -> error."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        bad = [k for k in value if not isinstance(k, str)]
        if bad:
            raise InvalidArgument(f"{name} keys must be names (strings), got {_shown(bad[0])}; e.g. {name}={example}")
        return dict(value)
    kind = "the string" if isinstance(value, str) else f"a {type(value).__name__}"
    raise InvalidArgument(f"{name} must be a mapping {{name: value}}, e.g. {name}={example}, got {kind} "
                          f"{_shown(value)}")


def check_names(value, name: str, example: str) -> tuple[str, ...]:
    """None -> (); a list/tuple of strings -> tuple; a bare string -> error (it would be split
    into letters), as would non-string items."""
    if value is None:
        return ()
    if isinstance(value, str):
        raise InvalidArgument(f"{name} must be a list of names, e.g. {name}={example}; got the string {value!r} "
                              f"(write [{value!r}])")
    if not isinstance(value, Iterable) or isinstance(value, Mapping):
        raise InvalidArgument(f"{name} must be a list of names, e.g. {name}={example}, got "
                              f"{type(value).__name__} {_shown(value)}")
    items = tuple(value)
    bad = [v for v in items if not isinstance(v, str) or not v.strip()]
    if bad:
        raise InvalidArgument(f"{name} must hold non-empty names (strings), got {_shown(bad[0])}; "
                              f"e.g. {name}={example}")
    return items


def check_choice(value, name: str, choices: Sequence) -> str:
    """One of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidArgument(f"{name} must be one of {', '.join(map(repr, choices))}, got {_shown(value)}")
    return value


def check_conditions(value, name: str = "conditions") -> list[dict] | None:
    """None, or a non-empty list of mappings with keys among drugs, parameters, events, label."""
    if value is None:
        return None
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise InvalidArgument(f"{name} must be a list of {{'drugs': ..., 'parameters': ...}} mappings, got "
                              f"{type(value).__name__} {_shown(value)}")
    items = list(value)
    if not items:
        raise InvalidArgument(f"{name} is empty; pass at least one condition, or leave it out (None) for one "
                              "condition made of drugs/parameters")
    for k, c in enumerate(items):
        if not isinstance(c, Mapping):
            raise InvalidArgument(f"{name}[{k}] must be a mapping such as {{'drugs': {{'lapatinib': '1 uM'}}}}, got "
                                  f"{type(c).__name__} {_shown(c)}")
        unknown = set(c) - {"drugs", "parameters", "events", "label"}
        if unknown:
            raise InvalidArgument(f"{name}[{k}] keys must be drugs, parameters, events, label; got {sorted(unknown)}")
    return items


# ----------------------------------------------------------------------------- output paths
def check_output_file(path, name: str, suffixes: Sequence[str]) -> Path:
    """An output file we can create: a supported suffix, not a directory, in an existing folder
    that this process can write (probed by creating and removing a temporary file)."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidArgument(f"{name} must be a file path, got {_shown(path)}")
    p = Path(path)
    if p.is_dir():
        raise InvalidArgument(f"{name} {str(p)!r} is a directory; give a file name inside it, e.g. "
                              f"{str(p / ('out' + (suffixes[0] if suffixes else '')))!r}")
    if suffixes and p.suffix.lower() not in suffixes:
        raise InvalidArgument(f"{name} must end in {' or '.join(suffixes)}, got {p.name!r}")
    check_writable_folder(p.parent, name, what=str(p))
    return p


def check_output_dir(path, name: str) -> Path:
    """An output directory: it exists and is writable, or its parent exists and is writable (it
    will be created). A file in its place is an error."""
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path).strip():
        raise InvalidArgument(f"{name} must be a directory path, got {_shown(path)}")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InvalidArgument(f"{name} {str(p)!r} exists and is not a directory; choose a new directory name")
    if p.is_dir():
        check_writable_folder(p, name, what=str(p))
    else:
        parent = p.parent
        if not parent.is_dir():
            raise InvalidArgument(f"{name} {str(p)!r}: the folder {str(parent)!r} does not exist; create it first "
                                  f"(mkdir -p {parent})")
        check_writable_folder(parent, name, what=str(p))
    return p


def check_writable_folder(folder: Path, name: str, *, what: str) -> None:
    """Raise InvalidArgument unless ``folder`` exists and a file can be created in it."""
    folder = Path(folder) if str(folder) else Path(".")
    if not folder.exists():
        raise InvalidArgument(f"{name} {what!r}: the folder {str(folder)!r} does not exist; create it first "
                              f"(mkdir -p {folder}) or choose another path")
    if not folder.is_dir():
        raise InvalidArgument(f"{name} {what!r}: {str(folder)!r} is not a folder")
    try:  # os.access is not enough: root passes it on read-only mounts
        fd, probe = tempfile.mkstemp(prefix=".her2sim-probe-", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InvalidArgument(f"{name} {what!r}: cannot write in {str(folder)!r} ({exc.strerror or exc}); "
                              "choose a writable folder") from None
