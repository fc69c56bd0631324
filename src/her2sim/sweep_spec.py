"""Sweep specifications: a TOML file (or a dict) -> a frozen, validated :class:`SweepSpec`.

A sweep is the cartesian product of its axes, in this order (C order, the last axis varies
fastest): the variant sets, each parameter grid, one block of sampled parameter sets (Sobol',
Latin hypercube or a Saltelli design, :mod:`scipy.stats.qmc`), then each drug's doses. Doses come
last so that a chunk holds all doses of each parameter set, which share one rest state. Condition
``i`` is ``np.unravel_index(i, spec.shape)``; :meth:`SweepSpec.block` builds the conditions of one
chunk from that alone, so the list is never materialised and is the same in every process.

The file grammar is documented in README.md ("## Sweeps"); ``models/sweeps/`` holds examples.
Every problem found is reported at once, each naming the file, the entry and what to change.
Readouts (``"pAKT@24h"``, ``"auc:pERK"``, ``"mean:pS6@0h..24h"``, ``"steady:pAKT"``, ``"rest:pAKT"``,
``"viable_cells@72h"``) use the screens' grammar (:func:`her2sim.screen.parse_readout`) with two
sweep extensions, windows and rest states (:func:`parse_readout`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
import tomllib
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import numpy as np

from .errors import Her2simError, ModelFileError, UnitError, UnknownNameError

#: conditions per chunk unless the spec or ``--chunk`` says otherwise (benchmarks/bench_sweep.py)
DEFAULT_CHUNK = 2000
#: readout kinds: value at a time, area under the curve, time average, steady state under drug,
#: drug-free rest state
READOUT_KINDS = ("at", "auc", "mean", "steady", "rest")
SAMPLE_METHODS = ("sobol", "lhs", "saltelli")
#: the Latin hypercube is generated whole (scipy.stats.qmc needs n up front): cap its size
LHS_MAX_POINTS = 2_000_000
#: bump when the meaning of a spec or the file layout of a sweep changes
FORMAT_VERSION = 1

_KEYS = {
    "": {"sweep", "variants", "drugs", "parameters", "samples", "solver"},
    "sweep": {"name", "description", "model", "time", "readouts", "chunk"},
    "variants": {"sets", "labels"},
    "drug": {"doses", "start", "stop", "num", "scale", "zero"},
    "parameter": {"value", "values", "start", "stop", "num", "scale", "zero", "relative"},
    "samples": {"method", "n", "seed", "parameters"},
    "sampled": {"start", "stop", "scale", "relative"},
    "solver": {"method", "rtol", "atol", "max_steps", "output_step", "preequilibrate"},
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SweepSpecError(ModelFileError):
    """A sweep spec is malformed; ``problems`` lists each as ``"[entry] what to change"``."""

    def __init__(self, problems, path: str | None):
        self.problems = tuple(f"[{e}] {m}" if e else m for e, m in problems)
        super().__init__(f"{len(self.problems)} problem(s) in sweep spec:\n  - " + "\n  - ".join(self.problems),
                         path=path)

    def __reduce__(self):  # picklable for worker processes
        return (_rebuild_spec_error, (self.args[0], self.path, self.problems))


def _rebuild_spec_error(message: str, path, problems):
    err = SweepSpecError.__new__(SweepSpecError)
    Exception.__init__(err, message)
    err.path, err.entry, err.problems = path, None, problems
    return err


# ----------------------------------------------------------------------------- spec objects
@dataclass(frozen=True)
class Readout:
    """One quantity kept per condition.

    ``kind``: "at" (value at ``t1``), "auc" / "mean" (area / time average over [t0, t1]),
    "steady" (steady state with the drugs on, cell counts held), "rest" (drug-free rest state).
    ``target`` is an observable or species name; times in h.
    """

    name: str
    kind: str
    target: str
    t0: float | None = None
    t1: float | None = None


@dataclass(frozen=True)
class Axis:
    """One dimension of the sweep.

    ``kind``: "variant" (``values`` are labels, ``sets`` the variant names of each),
    "dose" (``values`` in nM, ``target`` the drug's dose parameter), "parameter" (``values`` in
    internal units, or factors of the model's value when ``relative``), "sample" (no values:
    the points come from :class:`Samples`).
    """

    name: str
    kind: str
    size: int
    values: tuple = ()
    target: str = ""
    unit: str = ""
    relative: bool = False
    sets: tuple = ()


@dataclass(frozen=True)
class SampledParameter:
    """A parameter range for the sample block: [low, high] in internal units or as factors."""

    name: str
    low: float
    high: float
    scale: str = "linear"
    relative: bool = False
    unit: str = ""

    def scaled(self, u: np.ndarray) -> np.ndarray:
        """Map unit-interval coordinates to the range (log-uniform for ``scale="log"``)."""
        if self.scale == "log":
            return self.low * (self.high / self.low) ** u
        return self.low + (self.high - self.low) * u


@dataclass(frozen=True)
class Samples:
    """A block of ``size`` parameter sets drawn jointly (the ``sample`` axis).

    ``method``: "sobol" (scrambled Sobol' points, n a power of 2), "lhs" (Latin hypercube) or
    "saltelli" (the design of Saltelli et al. 2010 for Sobol' indices: for each of ``n`` base
    points the rows A, B, then AB_1 .. AB_d, so ``size = n * (d + 2)``; A and B are the two
    halves of a 2d-dimensional scrambled Sobol' sequence). Deterministic for a given seed.
    """

    method: str
    n: int
    seed: int
    parameters: tuple[SampledParameter, ...]

    @property
    def size(self) -> int:
        return self.n * (len(self.parameters) + 2) if self.method == "saltelli" else self.n

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    def unit_points(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), d) points in [0, 1) for the given row numbers of the block."""
        rows = np.asarray(rows, dtype=np.int64)
        d = len(self.parameters)
        if self.method == "lhs":
            return _lhs(d, self.n, self.seed)[rows]
        if self.method == "sobol":
            return _sobol_rows(d, self.seed, rows)
        base, k = np.divmod(rows, d + 2)
        AB = _sobol_rows(2 * d, self.seed, base)
        out = AB[:, :d].copy()
        out[k == 1] = AB[k == 1, d:]
        for i in range(d):
            sel = k == 2 + i
            out[sel, i] = AB[sel, d + i]
        return out

    def points(self, rows: np.ndarray) -> np.ndarray:
        """(len(rows), d) parameter values (internal units, or factors for relative ranges)."""
        u = self.unit_points(rows)
        return np.column_stack([p.scaled(u[:, j]) for j, p in enumerate(self.parameters)]) if len(
            self.parameters) else np.zeros((len(u), 0))


@dataclass(frozen=True)
class Solver:
    """Batch-path settings (:func:`her2sim.batch.simulate_batch`) and the largest output spacing (h)
    of the ``auc``/``mean`` quadrature grid (Simpson's rule, finer near each window's start)."""

    method: str = "rodas4"
    rtol: float = 1e-6
    atol: float = 1e-9
    max_steps: int = 100_000
    output_step: float = 0.5
    preequilibrate: bool = True


@dataclass(frozen=True, eq=False)
class ConditionBlock:
    """The conditions ``lo .. hi-1`` of a sweep (one chunk), as arrays of length B.

    ``variant``: index into ``SweepSpec.variant_sets``; ``doses``: {dose parameter: nM};
    ``parameters``: {name: value in internal units, or factor when the spec marks it relative}.
    """

    lo: int
    hi: int
    variant: np.ndarray
    doses: dict
    parameters: dict

    def __len__(self) -> int:
        return self.hi - self.lo


@dataclass(frozen=True)
class SweepSpec:
    """A validated sweep: axes, readouts, solver settings and chunk size.

    Build it with :func:`load_sweep_spec`. ``shape``/``dims`` give the grid of conditions;
    :meth:`block` enumerates one chunk of it lazily.
    """

    name: str
    description: str
    model: str
    time_h: float
    variant_sets: tuple
    axes: tuple
    samples: Samples | None
    fixed: tuple
    relative: frozenset
    drugs: tuple
    readouts: tuple
    solver: Solver
    chunk: int
    source: str = ""
    model_digest: str = ""
    text: str = field(default="", compare=False, repr=False)

    @property
    def dims(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(a.size for a in self.axes)

    @property
    def n_conditions(self) -> int:
        return math.prod(self.shape)

    @property
    def n_chunks(self) -> int:
        return -(-self.n_conditions // self.chunk)

    @property
    def varies_rest_state(self) -> bool:
        """True when conditions differ in more than variant and doses (each needs its own rest state)."""
        return any(a.kind in ("parameter", "sample") for a in self.axes)

    def chunk_bounds(self, chunk: int) -> tuple[int, int]:
        if not 0 <= chunk < self.n_chunks:
            raise IndexError(f"chunk {chunk} out of range [0, {self.n_chunks})")
        return chunk * self.chunk, min(self.n_conditions, (chunk + 1) * self.chunk)

    def block(self, lo: int, hi: int) -> ConditionBlock:
        """The conditions ``lo .. hi-1``, computed from their indices alone (O(hi - lo) memory)."""
        if not 0 <= lo <= hi <= self.n_conditions:
            raise IndexError(f"conditions [{lo}, {hi}) outside [0, {self.n_conditions})")
        idx = np.arange(lo, hi, dtype=np.int64)
        multi = np.unravel_index(idx, self.shape) if self.axes else ()
        variant = np.zeros(len(idx), dtype=np.intp)
        doses: dict[str, np.ndarray] = {}
        params: dict[str, np.ndarray] = {name: np.full(len(idx), value) for name, value in self.fixed}
        for axis, pos in zip(self.axes, multi):
            if axis.kind == "variant":
                variant = np.asarray(pos, dtype=np.intp)
            elif axis.kind == "dose":
                doses[axis.target] = np.asarray(axis.values, dtype=float)[pos]
            elif axis.kind == "parameter":
                params[axis.name] = np.asarray(axis.values, dtype=float)[pos]
            else:
                pts = self.samples.points(pos)
                for j, name in enumerate(self.samples.names):
                    params[name] = pts[:, j]
        return ConditionBlock(lo, hi, variant, doses, params)

    def canonical(self) -> dict:
        """Everything that determines the results, as plain JSON-able data."""
        return {
            "format": FORMAT_VERSION, "model": Path(self.model).name, "model_digest": self.model_digest,
            "time_h": self.time_h,  # the model by file name and content: a moved checkout resumes
            "variant_sets": [list(s) for s in self.variant_sets],
            "axes": [dataclasses.asdict(a) for a in self.axes],
            "samples": dataclasses.asdict(self.samples) if self.samples else None,
            "fixed": [list(f) for f in self.fixed], "relative": sorted(self.relative),
            "drugs": [list(d) for d in self.drugs], "readouts": [dataclasses.asdict(r) for r in self.readouts],
            "solver": dataclasses.asdict(self.solver), "chunk": self.chunk,
        }

    @property
    def digest(self) -> str:
        """sha256 of :meth:`canonical`: two specs with the same digest give the same results."""
        text = json.dumps(self.canonical(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()

    def describe(self) -> str:
        """A few lines: axes, samples, readouts, conditions and chunks."""
        lines = [f"sweep {self.name!r} on model {Path(self.model).name if '/' in self.model else self.model}: "
                 f"{self.n_conditions:,} conditions in {self.n_chunks:,} chunks of {self.chunk:,}"]
        width = max([len(a.name) for a in self.axes] + [6])
        for a in self.axes:
            if a.kind == "sample":
                s = self.samples
                lines.append(f"  {a.name:<{width}} {a.size:>9,}  {s.method} (n={s.n}, seed={s.seed}) over "
                             + ", ".join(f"{p.name} [{p.low:g}, {p.high:g}] {p.unit} {p.scale}" for p in s.parameters))
            else:
                shown = ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in a.values[:6])
                more = " ..." if a.size > 6 else ""
                unit = f" {a.unit}" if a.unit else ""
                lines.append(f"  {a.name:<{width}} {a.size:>9,}  {shown}{more}{unit}")
        lines.append(f"  readouts: {', '.join(r.name for r in self.readouts)}; t_end {self.time_h:g} h; "
                     f"{self.solver.method} rtol {self.solver.rtol:g} atol {self.solver.atol:g}")
        return "\n".join(lines)


# ----------------------------------------------------------------------------- sampling
def _qmc_engine(kind: str, d: int, seed: int):
    from scipy.stats import qmc

    cls = getattr(qmc, kind)
    try:
        return cls(d, rng=np.random.default_rng(seed))
    except TypeError:  # SciPy < 1.15 names the argument `seed`
        return cls(d, seed=np.random.default_rng(seed))


def _sobol_rows(d: int, seed: int, rows: np.ndarray) -> np.ndarray:
    """Rows of the scrambled Sobol' sequence, generating only runs of consecutive rows."""
    uniq, inv = np.unique(rows, return_inverse=True)
    out = np.empty((len(uniq), d))
    if len(uniq):
        for run in np.split(np.arange(len(uniq)), np.nonzero(np.diff(uniq) != 1)[0] + 1):
            engine = _qmc_engine("Sobol", d, seed)
            if uniq[run[0]]:
                engine.fast_forward(int(uniq[run[0]]))
            with warnings.catch_warnings():  # n is checked to be a power of 2 for the whole block
                warnings.simplefilter("ignore", UserWarning)
                out[run] = engine.random(len(run))
    return out[inv.ravel()]


@lru_cache(maxsize=2)
def _lhs(d: int, n: int, seed: int) -> np.ndarray:
    points = _qmc_engine("LatinHypercube", d, seed).random(n)
    points.setflags(write=False)
    return points


# ----------------------------------------------------------------------------- readouts
def parse_readout(text: str, *, end_time_h: float | None = None) -> Readout:
    """Parse a readout such as ``"pAKT@24h"``, ``"auc:pERK"``, ``"mean:pS6@0h..24h"``, ``"steady:pAKT"``.

    The grammar is the screens' (:func:`her2sim.screen.parse_readout`: ``[KIND:]NAME[@TIME]``,
    KIND ``mean``/``auc`` over [0, TIME], ``steady``; no KIND: the value at TIME; no TIME: the end
    time), which this function delegates to, plus two sweep extensions: a window
    ``auc:NAME@T0..T1`` / ``mean:NAME@T0..T1``, and ``rest:NAME``, the drug-free rest state.
    ``ss:`` is accepted for ``steady:``; ``gr`` is not available in sweeps (it needs an untreated
    control of the same condition: read ``viable_cells`` and take the dose-0 slice). Raises
    ValueError naming the readout and the fix.
    """
    from .screen import parse_readout as parse_screen_readout
    from .solve import hours

    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"readout {text!r} must be a string such as 'pAKT@24h' or 'auc:pERK'")
    name = text.strip()
    head, at, when = name.partition("@")
    kind, colon, target = head.partition(":")
    kind = kind.strip().lower() if colon else "at"
    target = (target if colon else head).strip()
    kind = "steady" if kind == "ss" else kind
    if kind not in READOUT_KINDS:
        close = difflib.get_close_matches(kind, [k for k in READOUT_KINDS if k != "at"] + ["ss"], n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"readout {name!r}: unknown kind {kind!r}.{hint} Kinds: auc, mean, steady (or ss), rest "
                         "(none: the value at a time)" + ("; gr needs an untreated control, not available in sweeps"
                                                          if kind == "gr" else ""))
    if kind in ("steady", "rest"):
        if at:
            raise ValueError(f"readout {name!r}: {kind}: readouts take no time; write {kind}:{target}")
        if not _NAME.fullmatch(target):
            raise ValueError(f"readout {name!r}: {target!r} is not an observable or species name")
        return Readout(name, kind, target)
    if ".." in when:
        if kind == "at":
            raise ValueError(f"readout {name!r}: a window T0..T1 needs auc: or mean:; write {target}@TIME for "
                             "the value at one time")
        a, b = when.split("..", 1)
        try:
            t0, t1 = hours(a.strip(), what=f"readout {name!r}"), hours(b.strip(), what=f"readout {name!r}")
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        if not t1 > t0:
            raise ValueError(f"readout {name!r}: the window must have T0 < T1")
        parse_screen_readout(f"{kind}:{target}")  # the name must follow the screens' grammar too
        return Readout(name, kind, target, t0, t1)
    base = parse_screen_readout(name)  # ScreenInputError and UnitError are ValueErrors
    if base.kind not in READOUT_KINDS:
        raise ValueError(f"readout {name!r}: {base.kind} needs an untreated control of the same condition, which "
                         "sweeps do not pair; read viable_cells@TIME and take the dose-0 slice")
    t = base.time_h if base.time_h is not None else end_time_h
    return Readout(name, base.kind, base.name, t if base.kind == "at" else (None if t is None else 0.0), t)


# ----------------------------------------------------------------------------- loading
def load_sweep_spec(source: str | Path | Mapping | SweepSpec, *, chunk: int | None = None) -> SweepSpec:
    """Read and validate a sweep spec.

    Parameters
    ----------
    source : path to a TOML file, a dict with the same structure, or a SweepSpec (returned,
        with ``chunk`` applied).
    chunk : conditions per chunk, overriding the spec's ``[sweep] chunk``.

    Raises
    ------
    SweepSpecError (a ModelFileError, hence ValueError) listing every problem, each with its
    entry and the fix: unknown keys, drugs, variants, parameters and observables (with close
    matches), negative doses, unreadable or wrong units, bad ranges, samples and solver settings.
    """
    if isinstance(source, SweepSpec):
        return source if chunk is None else dataclasses.replace(source, chunk=_check_chunk(chunk, None))
    if isinstance(source, Mapping):
        return _build(dict(source), None, "", chunk)
    if not isinstance(source, (str, Path)):
        raise TypeError(f"spec must be a path, a dict or a SweepSpec, got {type(source).__name__}")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError("sweep spec not found; check the path", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read the sweep spec ({exc})", path=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"malformed TOML: {exc}. Fix the syntax at that line.", path=str(path)) from None
    return _build(data, path, text, chunk)


def _check_chunk(chunk, problems) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        message = f"chunk must be a whole number >= 1 (conditions per chunk), got {chunk!r}; e.g. chunk = 2000"
        if problems is None:
            raise ValueError(message)
        problems.add("sweep.chunk", message)
        return DEFAULT_CHUNK
    return chunk


class _Problems:
    def __init__(self, path: Path | None):
        self.path = str(path) if path else None
        self.items: list[tuple[str, str]] = []

    def add(self, entry: str, message: str) -> None:
        self.items.append((entry, message))

    def check(self) -> None:
        if self.items:
            raise SweepSpecError(self.items, self.path)


def _unknown_keys(table: Mapping, allowed: set, entry: str, problems: _Problems) -> None:
    for key in sorted(set(table) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"{entry}.{key}" if entry else key
        problems.add(where, f"unknown key {key!r}.{hint} Allowed here: {', '.join(sorted(allowed))}")


def _table(data: Mapping, key: str, problems: _Problems) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.add(key, f"[{key}] must be a table")
        return {}
    return value


def _number(value, entry: str, problems: _Problems, *, positive: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            positive and value <= 0) or value < 0:
        problems.add(entry, f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}")
        return None
    return float(value)


def _build(data: dict, path: Path | None, text: str, chunk_override) -> SweepSpec:
    from .load import models_dir, resolve_model_path
    from .solve import hours

    problems = _Problems(path)
    _unknown_keys(data, _KEYS[""], "", problems)
    head = _table(data, "sweep", problems)
    if "sweep" not in data:
        problems.add("sweep", "a sweep spec needs a [sweep] table with model and readouts, e.g. "
                              "[sweep] model = \"default\", readouts = [\"pAKT@24h\"]")
    _unknown_keys(head, _KEYS["sweep"], "sweep", problems)
    name = str(head.get("name", path.stem if path else "sweep"))
    chunk = _check_chunk(chunk_override if chunk_override is not None else head.get("chunk", DEFAULT_CHUNK), problems)

    # --- the model ---
    model_text = head.get("model", "default")
    model_path = None
    if not isinstance(model_text, str) or not model_text.strip():
        problems.add("sweep.model", f"model must be a bundled name such as \"default\" or a path, got {model_text!r}")
    else:
        candidate = Path(model_text)
        if path is not None and not candidate.is_absolute() and (candidate.suffix == ".toml" or "/" in model_text):
            candidate = path.parent / candidate
        try:
            model_path = resolve_model_path(candidate if candidate.suffix == ".toml" else model_text)
        except (ModelFileError, UnknownNameError) as exc:
            problems.add("sweep.model", str(exc))
    time_h = None
    if "time" in head:
        try:
            time_h = hours(head["time"], what="[sweep] time")
            if time_h <= 0:
                problems.add("sweep.time", f"time must be > 0, got {head['time']!r}; e.g. time = \"72 h\"")
        except (UnitError, ValueError) as exc:
            problems.add("sweep.time", str(exc))

    # --- variant sets ---
    vtable = _table(data, "variants", problems)
    _unknown_keys(vtable, _KEYS["variants"], "variants", problems)
    sets = vtable.get("sets", [[]])
    if not isinstance(sets, list) or not sets or not all(
            isinstance(s, list) and all(isinstance(v, str) for v in s) for s in sets):
        problems.add("variants.sets", "sets must be a non-empty list of lists of variant names, e.g. "
                                      "sets = [[], [\"pik3ca_h1047r\"], [\"pten_loss\", \"her3_high\"]]")
        sets = [[]]
    variant_sets = tuple(tuple(s) for s in sets)
    labels = vtable.get("labels", ["+".join(s) or "none" for s in variant_sets])
    if not isinstance(labels, list) or len(labels) != len(variant_sets) or not all(isinstance(x, str) for x in labels):
        problems.add("variants.labels", f"labels must be a list of {len(variant_sets)} strings, one per set")
        labels = ["+".join(s) or "none" for s in variant_sets]
    if len(set(labels)) != len(labels):
        problems.add("variants.sets", "two variant sets have the same label; each set must differ (or give labels)")

    # --- drugs (names resolved against the library before loading the model) ---
    dtable = _table(data, "drugs", problems)
    drug_names = []
    extra_dirs = [model_path.parent] if model_path is not None and model_path.parent != models_dir() else []
    for dname in dtable:
        try:
            _drug_file(dname, extra_dirs)
            drug_names.append(dname)
        except UnknownNameError as exc:
            problems.add(f"drugs.{dname}", str(exc))
    for i, vset in enumerate(variant_sets):
        for v in vset:
            try:
                _variant_file(v, extra_dirs)
            except UnknownNameError as exc:
                problems.add(f"variants.sets[{i}]", str(exc))
    problems.check()  # names must be right before the model can be loaded

    from .load import load_model
    from .network import compile_network

    specs = []
    try:
        for vset in variant_sets:
            specs.append(load_model(model_path, variants=vset, drugs=drug_names))
    except Her2simError as exc:
        problems.add("sweep.model", f"cannot load the model: {exc}")
        problems.check()
    network = compile_network(specs[0])
    axes: list[Axis] = []
    dose_axes: list[Axis] = []  # last: a chunk then holds every dose of a parameter set (one rest state)
    if "variants" in data:
        axes.append(Axis("variant", "variant", len(variant_sets), tuple(labels), sets=variant_sets))

    drugs = []
    for dname in drug_names:
        entry = dtable[dname]
        where = f"drugs.{dname}"
        if isinstance(entry, list):
            entry = {"doses": entry}
        if not isinstance(entry, dict):
            problems.add(where, "give doses = [\"0 nM\", \"100 nM\"] or start/stop/num/scale")
            continue
        _unknown_keys(entry, _KEYS["drug"], where, problems)
        drug = network.spec.drug(dname)
        values = _grid(entry, where, problems, lambda v, w, _d=dname: _dose(network, _d, v), "doses")
        if values is None:
            continue
        drugs.append((dname, drug.dose_parameter))
        dose_axes.append(Axis(dname, "dose", len(values), tuple(values), target=drug.dose_parameter, unit="nM"))

    # --- parameters: fixed values and grid axes ---
    dose_params = {d.dose_parameter for d in network.spec.drugs}
    ptable = _table(data, "parameters", problems)
    fixed, relative = [], set()
    taken = {a.name for a in dose_axes} | {"variant", "sample"}
    for pname, entry in ptable.items():
        where = f"parameters.{pname}"
        if not _parameter_ok(network, pname, where, dose_params, problems):
            continue
        if not isinstance(entry, dict):
            entry = {"values": entry} if isinstance(entry, list) else {"value": entry}
        _unknown_keys(entry, _KEYS["parameter"], where, problems)
        rel = entry.get("relative", False)
        if not isinstance(rel, bool):
            problems.add(f"{where}.relative", f"relative must be true or false, got {rel!r}")
            continue
        convert = _converter(network, pname, rel)
        if "value" in entry:
            if set(entry) & {"values", "start", "stop", "num"}:
                problems.add(where, "give either value (fixed for every condition) or values/start..stop (an axis)")
                continue
            try:
                fixed.append((pname, convert(entry["value"], f"{where}.value")))
            except (UnitError, ValueError) as exc:
                problems.add(f"{where}.value", str(exc))
        else:
            values = _grid(entry, where, problems, convert, "values")
            if values is None:
                continue
            if pname in taken:
                problems.add(where, f"axis name {pname!r} is already used; rename the drug or parameter")
                continue
            unit = "x model value" if rel else network.spec.parameter(pname).internal_unit
            axes.append(Axis(pname, "parameter", len(values), tuple(values), target=pname, unit=unit, relative=rel))
        if rel:
            relative.add(pname)

    # --- the sample block ---
    samples = None
    stable = _table(data, "samples", problems)
    if stable:
        samples = _samples(stable, network, dose_params, {a.name for a in axes + dose_axes} | {n for n, _ in fixed}, relative,
                           problems)
        if samples is not None:
            axes.append(Axis("sample", "sample", samples.size))
    axes += dose_axes

    # --- solver ---
    solver = _solver(_table(data, "solver", problems), problems)

    # --- readouts (times resolved against the end time) ---
    raw = head.get("readouts")
    readouts: list[Readout] = []
    if not isinstance(raw, list) or not raw:
        problems.add("sweep.readouts", "readouts must be a non-empty list such as [\"pAKT@24h\", \"auc:pERK\", "
                                       "\"viable_cells@72h\"]")
        raw = []
    parsed = []
    for item in raw:
        try:
            parsed.append(parse_readout(item))
        except ValueError as exc:
            problems.add("sweep.readouts", str(exc))
    timed = [t for r in parsed for t in (r.t0, r.t1) if t is not None]
    if time_h is None:
        time_h = max(timed, default=0.0)
        if time_h <= 0 and any(r.kind in ("auc", "mean") or (r.kind == "at" and r.t1 is None) for r in parsed):
            problems.add("sweep.time", "give time = \"72 h\" (the simulated time) or times in the readouts")
    known = network.observable_names + network.species_names
    for r in parsed:
        if r.target not in known:
            close = difflib.get_close_matches(r.target, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            problems.add("sweep.readouts", f"readout {r.name!r}: unknown observable or species {r.target!r}.{hint} "
                                           "List them with `her2sim models --observables`.")
            continue
        if r.kind == "at" and r.t1 is None:
            r = dataclasses.replace(r, t0=time_h, t1=time_h)
        elif r.kind in ("auc", "mean") and r.t1 is None:
            r = dataclasses.replace(r, t0=0.0, t1=time_h)
        if r.t1 is not None and r.t1 > time_h + 1e-12:
            problems.add("sweep.readouts", f"readout {r.name!r} is at {r.t1:g} h, after the end time {time_h:g} h; "
                                           "raise [sweep] time or change the readout")
        if any(q.name == r.name for q in readouts):
            problems.add("sweep.readouts", f"readout {r.name!r} is listed twice")
        readouts.append(r)
    problems.check()

    digest = hashlib.sha256()
    for s in specs:
        files = list(s.files) + [v.path for v in s.variants] + [d.path for d in s.drugs]
        for f in sorted(set(files)):
            digest.update(Path(f).read_bytes())
    return SweepSpec(name, str(head.get("description", "")), str(model_path), float(time_h), variant_sets,
                     tuple(axes), samples, tuple(fixed), frozenset(relative), tuple(drugs), tuple(readouts), solver,
                     chunk, str(path.resolve()) if path else "", digest.hexdigest(), text)


def _drug_file(name: str, extra_dirs) -> Path:
    from .load import _find_named, models_dir

    return _find_named("drug", name, models_dir(), extra_dirs)


def _variant_file(name: str, extra_dirs) -> Path:
    from .load import _find_named, models_dir

    return _find_named("variant", name, models_dir(), extra_dirs)


def _parameter_ok(network, name: str, where: str, dose_params: set, problems: _Problems) -> bool:
    if name not in network.parameter_names:
        close = difflib.get_close_matches(name, network.parameter_names, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        problems.add(where, f"unknown parameter {name!r}.{hint} See `her2sim models --parameters`.")
        return False
    if name in dose_params:
        problems.add(where, f"{name!r} is a drug dose; vary it under [drugs.NAME] doses = [...] instead")
        return False
    return True


def _dose(network, drug: str, value) -> float:
    from .solve import dose_nM

    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise UnitError(f"dose {value!r} is negative; doses must be >= 0 (0 = no drug)")
    return dose_nM(network, drug, value)[1]


def _converter(network, name: str, relative: bool):
    """value -> internal units (or a factor when relative); raises UnitError/ValueError with the fix."""
    from .solve import parameter_value

    def convert(value, where: str) -> float:
        if not relative:
            return parameter_value(network, name, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"with relative = true, values are factors of the model's value (numbers >= 0), "
                             f"got {value!r}")
        return float(value)

    return convert


def _grid(entry: dict, where: str, problems: _Problems, convert, list_key: str):
    """Values of an axis: an explicit list or start/stop/num/scale (+ zero = true to prepend 0)."""
    def conv(v, w):
        try:
            return float(f"{convert(v, w):.12g}")  # unit conversion round-off: 10 uM is 10000 nM, not 9999.999999999998
        except (UnitError, ValueError) as exc:
            problems.add(w, str(exc))
            return None

    if list_key in entry:
        if set(entry) & {"start", "stop", "num", "scale"}:
            problems.add(where, f"give either {list_key} = [...] or start/stop/num/scale, not both")
            return None
        raw = entry[list_key]
        if isinstance(raw, dict):  # doses = { start = ..., stop = ..., num = ... }
            _unknown_keys(raw, {"start", "stop", "num", "scale", "zero"}, f"{where}.{list_key}", problems)
            return _grid(raw, f"{where}.{list_key}", problems, convert, list_key)
        if not isinstance(raw, list) or not raw:
            problems.add(f"{where}.{list_key}", f"{list_key} must be a non-empty list, e.g. {list_key} = [\"0 nM\", "
                                                "\"100 nM\"]")
            return None
        values = [conv(v, f"{where}.{list_key}[{i}]") for i, v in enumerate(raw)]
        return None if any(v is None for v in values) else values
    missing = [k for k in ("start", "stop", "num") if k not in entry]
    if missing:
        problems.add(where, f"missing {', '.join(missing)}: give {list_key} = [...] or start, stop, num "
                            "(and scale = \"log\" or \"linear\")")
        return None
    start, stop = conv(entry["start"], f"{where}.start"), conv(entry["stop"], f"{where}.stop")
    num, scale = entry["num"], entry.get("scale", "linear")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        problems.add(f"{where}.num", f"num must be a whole number >= 1, got {num!r}")
        return None
    if scale not in ("linear", "log"):
        problems.add(f"{where}.scale", f"scale must be \"linear\" or \"log\", got {scale!r}")
        return None
    if start is None or stop is None:
        return None
    if scale == "log" and (start <= 0 or stop <= 0):
        problems.add(where, "a log grid needs start > 0 and stop > 0; add zero = true to include 0")
        return None
    values = [float(f"{v:.12g}") for v in (np.geomspace(start, stop, num) if scale == "log" else
                                          np.linspace(start, stop, num))]
    if entry.get("zero", False) is True:
        values = [0.0] + values
    elif "zero" in entry and not isinstance(entry["zero"], bool):
        problems.add(f"{where}.zero", f"zero must be true or false, got {entry['zero']!r}")
    return [float(v) for v in values]


def _samples(table: dict, network, dose_params: set, taken: set, relative: set, problems: _Problems):
    _unknown_keys(table, _KEYS["samples"], "samples", problems)
    method = table.get("method", "sobol")
    n, seed = table.get("n"), table.get("seed", 0)
    ok = True
    if method not in SAMPLE_METHODS:
        close = difflib.get_close_matches(str(method), SAMPLE_METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        problems.add("samples.method", f"unknown method {method!r}.{hint} Use one of {', '.join(SAMPLE_METHODS)}")
        ok = False
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        problems.add("samples.n", f"n must be a whole number >= 1 (points to draw), got {n!r}")
        ok = False
    elif method in ("sobol", "saltelli") and n & (n - 1):
        problems.add("samples.n", f"n = {n} is not a power of 2, which Sobol' points need to keep their balance; "
                                  f"use n = {1 << (n - 1).bit_length()} or method = \"lhs\"")
        ok = False
    elif method == "lhs" and n > LHS_MAX_POINTS:
        problems.add("samples.n", f"a Latin hypercube is generated whole; n = {n} exceeds {LHS_MAX_POINTS:,}: "
                                  "use method = \"sobol\" for larger samples")
        ok = False
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.add("samples.seed", f"seed must be a whole number >= 0, got {seed!r}")
        ok = False
    params = []
    entries = table.get("parameters", {})
    if not isinstance(entries, dict) or not entries:
        problems.add("samples.parameters", "list the sampled parameters: [samples.parameters.NAME] start = ..., "
                                           "stop = ..., scale = \"log\"")
        return None
    for pname, entry in entries.items():
        where = f"samples.parameters.{pname}"
        if not _parameter_ok(network, pname, where, dose_params, problems):
            ok = False
            continue
        if pname in taken:
            problems.add(where, f"{pname!r} is already set or swept under [parameters]; sample it in one place only")
            ok = False
            continue
        if not isinstance(entry, dict):
            problems.add(where, "give a table: start = ..., stop = ..., scale = \"log\" or \"linear\", relative = ...")
            ok = False
            continue
        _unknown_keys(entry, _KEYS["sampled"], where, problems)
        rel = entry.get("relative", False) is True
        if "start" not in entry or "stop" not in entry:
            problems.add(where, "missing start or stop (the range to sample)")
            ok = False
            continue
        convert = _converter(network, pname, rel)
        low = high = None
        try:
            low, high = convert(entry["start"], f"{where}.start"), convert(entry["stop"], f"{where}.stop")
        except (UnitError, ValueError) as exc:
            problems.add(where, str(exc))
        scale = entry.get("scale", "linear")
        if scale not in ("linear", "log"):
            problems.add(f"{where}.scale", f"scale must be \"linear\" or \"log\", got {scale!r}")
            ok = False
            continue
        if low is None or high is None:
            ok = False
            continue
        if not high > low or (scale == "log" and low <= 0):
            problems.add(where, f"need 0 {'<' if scale == 'log' else '<='} start < stop, got [{low:g}, {high:g}]")
            ok = False
            continue
        unit = "x model value" if rel else network.spec.parameter(pname).internal_unit
        params.append(SampledParameter(pname, low, high, scale, rel, unit))
        if rel:
            relative.add(pname)
    return Samples(method, n, seed, tuple(params)) if ok else None


def _solver(table: dict, problems: _Problems) -> Solver:
    from .batch import TABLEAUS
    from .solve import hours

    _unknown_keys(table, _KEYS["solver"], "solver", problems)
    s = Solver()
    method = table.get("method", s.method)
    if method not in TABLEAUS:
        problems.add("solver.method", f"method must be one of {', '.join(TABLEAUS)} (the batch path), got {method!r}")
    rtol = table.get("rtol", s.rtol)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        problems.add("solver.rtol", f"rtol must be a number in (0, 1), got {rtol!r}; e.g. rtol = 1e-6")
        rtol = s.rtol
    atol = table.get("atol", s.atol)
    if _number(atol, "solver.atol", problems, positive=True) is None:
        atol = s.atol
    max_steps = table.get("max_steps", s.max_steps)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        problems.add("solver.max_steps", f"max_steps must be a whole number >= 1, got {max_steps!r}")
        max_steps = s.max_steps
    step = s.output_step
    if "output_step" in table:
        try:
            step = hours(table["output_step"], what="[solver] output_step")
            if step <= 0:
                raise UnitError(f"[solver] output_step must be > 0, got {table['output_step']!r}")
        except (UnitError, ValueError) as exc:
            problems.add("solver.output_step", str(exc))
            step = s.output_step
    pre = table.get("preequilibrate", True)
    if not isinstance(pre, bool):
        problems.add("solver.preequilibrate", f"preequilibrate must be true or false, got {pre!r}")
        pre = True
    return Solver(str(method), float(rtol), float(atol), int(max_steps), float(step), pre)
