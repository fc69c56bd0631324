"""Sweep specifications: a TOML file (or a dict) -> a frozen, validated :class:`SweepSpec`.

A sweep is the cartesian product of its axes, in this order (C order, the last axis varies
fastest): the variant sets, each parameter grid, one block of sampled parameter sets (Sobol',
Latin hypercube or a Saltelli design, :mod:`scipy.stats.qmc`), then each drug's doses. Doses come
last so that a chunk holds all doses of each parameter set, which share one rest state. Condition
``i`` is ``np.unravel_index(i, spec.shape)``; :meth:`SweepSpec.block` builds the conditions of one
chunk from that alone, so the list is never materialised and is the same in every process.

The file grammar is documented in README.md ("## Sweeps"); ``models/sweeps/`` holds examples.
Files are read and validated by :mod:`her2sim.sweep.load` (re-exported here as
:func:`load_sweep_spec`): every problem found is reported at once, each naming the file, the
entry and what to change.
Readouts (``"pAKT@24h"``, ``"auc:pERK"``, ``"mean:pS6@0h..24h"``, ``"steady:pAKT"``, ``"rest:pAKT"``,
``"viable_cells@72h"``) use the one grammar of :mod:`her2sim.experiments.readouts` (:func:`parse_readout`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import SweepSpecError  # noqa: F401 (raised by sweep_load, importable from here)
from ..experiments.readouts import READOUT_KINDS as _ALL_KINDS
from ..experiments.readouts import Readout, ReadoutError
from ..experiments.readouts import parse_readout as parse_any_readout

#: conditions per chunk unless the spec or ``--chunk`` says otherwise (benchmarks/bench_sweep.py)
DEFAULT_CHUNK = 2000
#: readout kinds: value at a time, area under the curve, time average, steady state under drug,
#: drug-free rest state (every kind of :mod:`her2sim.experiments.readouts` but gr)
READOUT_KINDS = tuple(k for k in _ALL_KINDS if k != "gr")
SAMPLE_METHODS = ("sobol", "lhs", "saltelli")
#: the Latin hypercube is generated whole (scipy.stats.qmc needs n up front): cap its size
LHS_MAX_POINTS = 2_000_000
#: bump when the meaning of a spec or the file layout of a sweep changes
FORMAT_VERSION = 1

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


# ----------------------------------------------------------------------------- spec objects
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
    """Batch-path settings (:func:`her2sim.solvers.batch.simulate_batch`) and the largest output spacing (h)
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
            "drugs": [list(d) for d in self.drugs], "readouts": [{"name": r.label, "kind": r.kind, "target": r.target, "t0": r.t0, "t1": r.t1}
                                                            for r in self.readouts],
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
    """Parse a sweep readout such as ``"pAKT@24h"``, ``"auc:pERK"``, ``"mean:pS6@0h..24h"``, ``"steady:pAKT"``.

    The grammar is the one of :mod:`her2sim.experiments.readouts` (``[KIND:]NAME[@TIME]``, windows
    ``T0..T1`` for mean/auc, ``rest:NAME``; ``ss:`` for ``steady:``), less two forms sweeps do not
    run: a time on ``steady:`` (sweeps use the rest-state service's horizons) and ``gr`` (it needs
    an untreated control of the same condition: read ``viable_cells`` and take the dose-0 slice).
    ``end_time_h`` fills a missing time. Raises ReadoutError (a ValueError) naming the readout
    and the fix, or UnitError.
    """
    r = parse_any_readout(text)
    if r.kind == "steady" and r.time_h is not None:
        raise ReadoutError(f"readout {r.label!r}: steady: readouts take no time; write steady:{r.name}")
    if r.kind == "gr":
        raise ReadoutError(f"readout {r.label!r}: gr needs an untreated control of the same condition, which "
                           "sweeps do not pair; read viable_cells@TIME and take the dose-0 slice")
    return r.resolved(end_time_h)
