"""Sparse LU of a whole batch of matrices that share one sparsity pattern, in pure NumPy.

The batch path (:mod:`her2sim.solvers.batch`) solves ``(I/(h*gamma) - J) u = r`` for thousands of
conditions at once; every matrix has the pattern of the network's Jacobian plus the diagonal.
The pattern is analysed ONCE per network (:func:`symbolic_lu`):

1. a fill-reducing ordering (Markowitz with diagonal pivots by default; minimum degree on
   A + A^T, reverse Cuthill-McKee and the natural order are there for comparison);
2. symbolic elimination, giving the pattern of L + U including fill-ins;
3. an *elimination program*. Each entry of L and U is written as a dot product (Crout/Doolittle
   form): ``U[i, j] = A[i, j] - sum_k L[i, k] U[k, j]`` and ``L[i, j] = (A[i, j] - sum_k L[i, k]
   U[k, j]) / U[j, j]`` over ``k < min(i, j)``. Every entry gets a *level* (1 + the highest
   level among the entries it reads), and all entries of one level are computed by a handful of
   whole-batch NumPy operations: gather the two factors of every term, multiply, sum the terms
   of each entry with ``np.add.reduceat``, subtract from a contiguous slice. The value array is
   laid out level by level, so updates write slices, never scattered rows. The triangular
   solves are scheduled the same way (rows by level).

Values are stored entry-major, shape ``(nnz, B)``: one contiguous row of length B per stored
entry, so every operation is a vector operation over the batch. No pivoting is done (the
pattern must stay fixed); the Rosenbrock matrices are diagonally dominant for small h, and a
zero or non-finite pivot shows up as non-finite values, which the integrator treats as a
rejected step.

References: H. M. Markowitz (1957), Management Sci. 3:255 (pivot choice); J. R. Gilbert and
T. Peierls (1988), SIAM J. Sci. Stat. Comput. 9:862 (symbolic factorisation); E. Anderson and
Y. Saad (1989), Int. J. High Speed Comput. 1:73 (level scheduling of triangular solves).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from ..errors import InvalidArgument

ORDERINGS = ("markowitz", "mindegree", "rcm", "natural")
GROUPINGS = ("level", "entry")


@dataclass(frozen=True, eq=False)
class _Step:
    """One level of the factorisation. Its ``n_upd`` entries with terms sit at value positions
    ``[start, start + n_upd)``, sorted by decreasing number of terms, so the k-th term of every
    entry that has one is a prefix of length ``counts[k]``: ``acc[:counts[k]] += V[left[k]] *
    V[right[k]]``, then ``V[start:start + n_upd] -= acc``. Then the L entries ``divide`` (a slice
    or an index array) are divided by their pivots ``V[pivots]``."""

    start: int
    n_upd: int
    counts: tuple
    left: tuple
    right: tuple
    divide: slice | np.ndarray
    pivots: np.ndarray


@dataclass(frozen=True, eq=False)
class _SolveStep:
    """Rows ``[start, start + n_upd)`` of a triangular solve (in its storage order, sorted by
    decreasing number of terms): ``y[start:start + n_upd] -= sum_k V[vals[k]] * y[cols[k]]``
    (the k-th terms cover a prefix of ``counts[k]`` rows); then (backward only) the rows
    ``[start, stop)`` are scaled by the reciprocal pivots."""

    start: int
    n_upd: int
    stop: int
    counts: tuple
    vals: tuple
    cols: tuple


@dataclass(frozen=True, eq=False)
class SparseLU:
    """Symbolic LU of a fixed pattern and its elimination program (see module docstring).

    Attributes
    ----------
    n : matrix size.  nnz : stored entries of L + U (input pattern, diagonal and fill-in).
    perm : (n,) pivot order; pivot k is original row/column ``perm[k]``.
    positions : (len(rows),) where each input entry (rows[i], cols[i]) lives in the value array.
    diagonal : (n,) where each original diagonal entry (i, i) lives in the value array.
    n_fill : fill-in entries.  n_levels : sequential steps of the factorisation.
    ordering, grouping : how the program was built.
    """

    n: int
    nnz: int
    perm: np.ndarray
    positions: np.ndarray
    diagonal: np.ndarray
    n_fill: int
    ordering: str
    grouping: str
    flops: int
    _steps: tuple
    _fwd: tuple
    _bwd: tuple
    _fwd_in: np.ndarray   # b (original order) -> forward storage order
    _fwd_to_bwd: np.ndarray
    _bwd_out: np.ndarray  # backward storage order -> original order
    _pivot_bwd: np.ndarray  # value positions of the pivots, in backward storage order
    _entry_map: dict        # (permuted row, permuted col) -> value position
    _gather: np.ndarray = None    # value positions every solve reads, in solve order (gather_factors)
    _fwd_terms: tuple = ()        # per forward step: ((offset in gathered rows, m, cols), ...)
    _bwd_terms: tuple = ()
    max_terms: int = 0            # most rows of one term of one solve step (work rows of solve_into)

    @property
    def n_levels(self) -> int:
        return len(self._steps)

    @property
    def gather_rows(self) -> int:
        """Rows of :meth:`gather_factors`' output."""
        return len(self._gather) + self.n

    @property
    def n_solve_levels(self) -> tuple[int, int]:
        return len(self._fwd), len(self._bwd)

    # -- numeric phase -------------------------------------------------------------------------
    def assemble(self, values: np.ndarray, diagonal_shift: np.ndarray | float, *, scale: float = 1.0,
                 out: np.ndarray | None = None) -> np.ndarray:
        """Value array of ``scale * A + diag(diagonal_shift)`` with A given at the input pattern.

        ``values`` (len(rows), B) entries of A; ``diagonal_shift`` scalar or (B,). Returns
        (nnz, B); fill-in entries are zero.
        """
        B = values.shape[1]
        V = np.zeros((self.nnz, B)) if out is None else out
        if out is not None:
            V.fill(0.0)
        V[self.positions] = values if scale == 1.0 else values * scale
        V[self.diagonal] += diagonal_shift
        return V

    def factor(self, V: np.ndarray) -> np.ndarray:
        """Overwrite the (nnz, B) value array with L and U; returns the reciprocal pivots
        (n, B) in the order the solve needs them."""
        for st in self._steps:
            if st.n_upd:
                V[st.start:st.start + st.n_upd] -= _dot_terms(V, V, st.counts, st.left, st.right)
            if st.pivots.size:
                if isinstance(st.divide, slice):
                    V[st.divide] /= V[st.pivots]
                else:
                    V[st.divide] = V[st.divide] / V[st.pivots]
        return 1.0 / V[self._pivot_bwd]

    def solve(self, V: np.ndarray, rpiv: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Solve A x = b for every member: ``V``, ``rpiv`` from :meth:`factor`, ``b`` (n, B) in
        the original order; returns x (n, B)."""
        y = b[self._fwd_in]
        for st in self._fwd:
            y[st.start:st.start + st.n_upd] -= _dot_terms(V, y, st.counts, st.vals, st.cols)
        x = y[self._fwd_to_bwd]
        for st in self._bwd:
            if st.n_upd:
                x[st.start:st.start + st.n_upd] -= _dot_terms(V, x, st.counts, st.vals, st.cols)
            x[st.start:st.stop] *= rpiv[st.start:st.stop]
        return x[self._bwd_out]

    def gather_factors(self, V: np.ndarray, rpiv: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The L and U values the triangular solves read, gathered once per factorisation in the
        order :meth:`solve_into` reads them, followed by the reciprocal pivots: (n_gather + n, B)."""
        B = V.shape[1]
        G = np.empty((len(self._gather) + self.n, B)) if out is None else out
        V.take(self._gather, axis=0, out=G[:len(self._gather)], mode="clip")
        G[len(self._gather):] = rpiv
        return G

    def solve_into(self, G: np.ndarray, b: np.ndarray, out: np.ndarray, work: np.ndarray) -> np.ndarray:
        """Solve A x = b like :meth:`solve`, without allocating: ``G`` from :meth:`gather_factors`,
        ``b`` and ``out`` (n, B) in the original order (distinct arrays), ``work`` at least
        (2 n + max_terms, B) contiguous rows. Each term of a level is one gather, one multiply and
        one subtract over the batch (no per-level accumulator)."""
        n = self.n
        y, x, tmp = work[:n], work[n:2 * n], work[2 * n:]
        b.take(self._fwd_in, axis=0, out=y, mode="clip")
        for st, terms in zip(self._fwd, self._fwd_terms):
            _apply_terms(G, y, st.start, terms, tmp)
        y.take(self._fwd_to_bwd, axis=0, out=x, mode="clip")
        piv = G[len(self._gather):]
        for st, terms in zip(self._bwd, self._bwd_terms):
            _apply_terms(G, x, st.start, terms, tmp)
            np.multiply(x[st.start:st.stop], piv[st.start:st.stop], out=x[st.start:st.stop])
        return x.take(self._bwd_out, axis=0, out=out, mode="clip")

    def program(self) -> "EliminationProgram":
        """This elimination program as plain per-entry operations (for code generators such as
        :mod:`her2sim.solvers.codegen_c`); the same operations in the same order as :meth:`factor` and
        :meth:`solve`."""
        factor = []
        for st in self._steps:
            for r in range(st.n_upd):
                terms = tuple((int(st.left[k][r]), int(st.right[k][r])) for k in range(len(st.counts))
                              if r < st.counts[k])
                factor.append(("update", st.start + r, terms))
            divided = range(st.divide.start, st.divide.stop) if isinstance(st.divide, slice) else st.divide
            factor.extend(("divide", int(d), int(pv)) for d, pv in zip(divided, st.pivots))

        def rows(st):
            return [(st.start + r, tuple((int(st.vals[k][r]), int(st.cols[k][r])) for k in range(len(st.counts))
                                         if r < st.counts[k])) for r in range(st.n_upd)]

        forward = tuple(row for st in self._fwd for row in rows(st))
        backward = tuple(op for st in self._bwd
                         for op in [("update", *row) for row in rows(st)] + [("scale", st.start, st.stop)])
        return EliminationProgram(
            n=self.n, nnz=self.nnz, positions=tuple(int(k) for k in self.positions),
            diagonal=tuple(int(k) for k in self.diagonal), factor=tuple(factor), forward=forward,
            backward=backward, fwd_in=tuple(int(k) for k in self._fwd_in),
            fwd_to_bwd=tuple(int(k) for k in self._fwd_to_bwd), bwd_out=tuple(int(k) for k in self._bwd_out),
            pivot_bwd=tuple(int(k) for k in self._pivot_bwd))

    def on(self, xp) -> "ArrayLU":
        """This program for array namespace ``xp`` (index arrays copied to its device once)."""
        return ArrayLU(self, xp)

    def to_dense(self, V: np.ndarray, member: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(L, U) of one member in the permuted order (for tests and inspection)."""
        L, U = np.eye(self.n), np.zeros((self.n, self.n))
        for (i, j), pos in self._entry_map.items():
            if i > j:
                L[i, j] = V[pos, member]
            else:
                U[i, j] = V[pos, member]
        return L, U


@dataclass(frozen=True)
class EliminationProgram:
    """A :class:`SparseLU` numeric phase per member, as plain integer tuples.

    Value array ``v`` (nnz): input entry k of A goes to ``v[positions[k]]``, the diagonal shift to
    ``v[diagonal[i]]``, fill-ins start at 0. ``factor``: ``("update", e, ((l, r), ...))`` means
    ``v[e] -= v[l]*v[r] + ...`` (terms summed left to right), ``("divide", e, p)`` means ``v[e] /=
    v[p]``; afterwards ``rpiv[s] = 1 / v[pivot_bwd[s]]``. Solve of A x = b: ``y[s] = b[fwd_in[s]]``;
    ``forward`` rows ``(s, ((val, col), ...))``: ``y[s] -= v[val]*y[col] + ...``; ``z[s] =
    y[fwd_to_bwd[s]]``; ``backward``: ``("update", s, terms)`` as forward on z, ``("scale", a, b)``:
    ``z[s] *= rpiv[s]`` for a <= s < b; finally ``x[i] = z[bwd_out[i]]``."""

    n: int
    nnz: int
    positions: tuple
    diagonal: tuple
    factor: tuple
    forward: tuple
    backward: tuple
    fwd_in: tuple
    fwd_to_bwd: tuple
    bwd_out: tuple
    pivot_bwd: tuple


class ArrayLU:
    """The numeric phase of a :class:`SparseLU` written against the Python array API standard
    (NumPy, CuPy, array-api-strict): same program and arithmetic as :meth:`SparseLU.factor` and
    :meth:`SparseLU.solve`, with gathers as ``xp.take``, contiguous slice updates and no scatter
    (the standard has none): :meth:`assemble` gathers from the Jacobian values instead."""

    def __init__(self, lu: SparseLU, xp):
        self.xp, self.n, self.nnz = xp, lu.n, lu.nnz

        def ix(a):
            return xp.asarray(np.ascontiguousarray(a, dtype=np.int64), dtype=xp.int64)

        # assemble: value position -> input entry (or the appended zero row), and the diagonal mask
        source = np.full(lu.nnz, len(lu.positions), dtype=np.int64)
        source[lu.positions] = np.arange(len(lu.positions))
        self._source = ix(source)
        mask = np.zeros((lu.nnz, 1))
        mask[lu.diagonal, 0] = 1.0
        self._diag = xp.asarray(mask, dtype=xp.float64)
        self._steps = []
        for st in lu._steps:
            if isinstance(st.divide, slice):
                runs = [(st.divide.start, st.divide.stop, ix(st.pivots))] if st.pivots.size else []
            else:  # contiguous runs of the divided entries (a slice update each)
                runs, k = [], 0
                d = st.divide
                while k < len(d):
                    e = k + 1
                    while e < len(d) and d[e] == d[e - 1] + 1:
                        e += 1
                    runs.append((int(d[k]), int(d[e - 1]) + 1, ix(st.pivots[k:e])))
                    k = e
            self._steps.append((st.start, st.n_upd, st.counts, tuple(ix(a) for a in st.left),
                                tuple(ix(a) for a in st.right), runs))
        self._fwd = [(st.start, st.n_upd, st.counts, tuple(ix(a) for a in st.vals), tuple(ix(a) for a in st.cols))
                     for st in lu._fwd]
        self._bwd = [(st.start, st.n_upd, st.stop, st.counts, tuple(ix(a) for a in st.vals),
                      tuple(ix(a) for a in st.cols)) for st in lu._bwd]
        self._fwd_in, self._fwd_to_bwd, self._bwd_out = ix(lu._fwd_in), ix(lu._fwd_to_bwd), ix(lu._bwd_out)
        self._pivot_bwd = ix(lu._pivot_bwd)

    def assemble(self, values, diagonal_shift, *, scale: float = 1.0):
        """(nnz, B) values of ``scale * A + diag(diagonal_shift)``; ``values`` (len(rows), B),
        ``diagonal_shift`` (B,)."""
        xp = self.xp
        B = values.shape[1]
        ext = xp.concat([values * scale if scale != 1.0 else values, xp.zeros((1, B), dtype=values.dtype)], axis=0)
        return xp.take(ext, self._source, axis=0) + self._diag * xp.reshape(diagonal_shift, (1, B))

    def _dot(self, A, X, counts, left, right):
        xp = self.xp
        acc = xp.take(A, left[0], axis=0) * xp.take(X, right[0], axis=0)
        for m, li, ri in zip(counts[1:], left[1:], right[1:]):
            acc[:m, ...] += xp.take(A, li, axis=0) * xp.take(X, ri, axis=0)
        return acc

    def factor(self, V):
        """Overwrite (nnz, B) ``V`` with L and U; returns the reciprocal pivots (n, B)."""
        xp = self.xp
        for start, n_upd, counts, left, right, runs in self._steps:
            if n_upd:
                V[start:start + n_upd, ...] -= self._dot(V, V, counts, left, right)
            for a, b, piv in runs:
                V[a:b, ...] = V[a:b, ...] / xp.take(V, piv, axis=0)
        return 1.0 / xp.take(V, self._pivot_bwd, axis=0)

    def solve(self, V, rpiv, b):
        """x (n, B) with A x = b for every member (``V``, ``rpiv`` from :meth:`factor`)."""
        xp = self.xp
        y = xp.take(b, self._fwd_in, axis=0)
        for start, n_upd, counts, vals, cols in self._fwd:
            y[start:start + n_upd, ...] -= self._dot(V, y, counts, vals, cols)
        x = xp.take(y, self._fwd_to_bwd, axis=0)
        for start, n_upd, stop, counts, vals, cols in self._bwd:
            if n_upd:
                x[start:start + n_upd, ...] -= self._dot(V, x, counts, vals, cols)
            x[start:stop, ...] *= rpiv[start:stop, ...]
        return xp.take(x, self._bwd_out, axis=0)


def _dot_terms(A: np.ndarray, X: np.ndarray, counts, left, right) -> np.ndarray:
    """acc[r] = sum_k A[left[k][r]] * X[right[k][r]] with the k-th terms on rows [0, counts[k])."""
    acc = A[left[0]]
    acc *= X[right[0]]
    for m, li, ri in zip(counts[1:], left[1:], right[1:]):
        tmp = A[li]
        tmp *= X[ri]
        acc[:m] += tmp
    return acc


def _apply_terms(G: np.ndarray, z: np.ndarray, start: int, terms, tmp: np.ndarray) -> None:
    """z[start:start + m] -= G[g:g + m] * z[cols] for each term (g, m, cols) of one level."""
    for g, m, cols in terms:
        t = tmp[:m]
        z.take(cols, axis=0, out=t, mode="clip")
        np.multiply(t, G[g:g + m], out=t)
        np.subtract(z[start:start + m], t, out=z[start:start + m])


def _gather_plan(fwd, bwd):
    """Value positions read by the solves (forward then backward steps, term by term) and, per
    step, the (offset, rows, columns) of each term in that gathered array."""
    positions, plans, offset, widest = [], [], 0, 0
    for steps in (fwd, bwd):
        plan = []
        for st in steps:
            terms = []
            for m, vals, cols in zip(st.counts, st.vals, st.cols):
                terms.append((offset, int(m), cols))
                positions.append(vals)
                offset += int(m)
                widest = max(widest, int(m))
            plan.append(tuple(terms))
        plans.append(tuple(plan))
    gather = np.concatenate(positions).astype(np.intp) if positions else np.zeros(0, dtype=np.intp)
    return gather, plans[0], plans[1], widest


def _slots(term_lists):
    """Per-row term lists (rows sorted by decreasing length) -> (counts, first-index arrays,
    second-index arrays) per term slot k."""
    depth = len(term_lists[0]) if term_lists else 0
    counts, first, second = [], [], []
    for k in range(depth):
        rows = [t for t in term_lists if len(t) > k]
        counts.append(len(rows))
        first.append(np.array([t[k][0] for t in rows], dtype=np.intp))
        second.append(np.array([t[k][1] for t in rows], dtype=np.intp))
    return tuple(counts), tuple(first), tuple(second)


# ----------------------------------------------------------------------------- symbolic phase
def symbolic_lu(n: int, rows, cols, *, ordering: str = "markowitz", grouping: str = "level") -> SparseLU:
    """Analyse the pattern ``(rows, cols)`` of an n x n matrix (the diagonal is always added).

    Parameters
    ----------
    n : matrix size.  rows, cols : int arrays of the structural non-zeros (duplicates allowed).
    ordering : "markowitz" (default: diagonal pivot minimising (r-1)(c-1) in the remaining
        pattern, ties by smaller r + c), "mindegree" (minimum degree on A + A^T), "rcm"
        (reverse Cuthill-McKee on A + A^T) or "natural".
    grouping : "level" (default, one batch of NumPy operations per dependency level) or
        "entry" (one operation per entry: the ungrouped baseline, for benchmarks).
    """
    if ordering not in ORDERINGS:
        raise InvalidArgument(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
    if grouping not in GROUPINGS:
        raise InvalidArgument(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    rows = np.asarray(rows, dtype=np.intp).ravel()
    cols = np.asarray(cols, dtype=np.intp).ravel()
    if rows.shape != cols.shape:
        raise InvalidArgument(f"rows and cols must have the same length, got {rows.shape} and {cols.shape}")
    if n < 1 or (len(rows) and (rows.min() < 0 or cols.min() < 0 or rows.max() >= n or cols.max() >= n)):
        raise InvalidArgument(f"pattern indices must lie in [0, {n}) and n must be >= 1")
    pattern = set(zip(rows.tolist(), cols.tolist())) | {(i, i) for i in range(n)}

    perm = _ordering(n, pattern, ordering)
    iperm = np.empty(n, dtype=np.intp)
    iperm[perm] = np.arange(n)
    permuted = {(int(iperm[i]), int(iperm[j])) for i, j in pattern}
    filled = _symbolic_fill(n, permuted)

    # terms of each entry: k < min(i, j) with (i, k) in L and (k, j) in U
    lrow = [[] for _ in range(n)]  # lrow[i]: k < i with (i, k)
    ucol = [set() for _ in range(n)]  # ucol[j]: k < j with (k, j)
    for i, j in filled:
        if i > j:
            lrow[i].append(j)
        elif i < j:
            ucol[j].add(i)
    entries = sorted(filled)
    terms = {}
    for i, j in entries:
        m = min(i, j)
        terms[(i, j)] = [k for k in sorted(lrow[i]) if k < m and k in ucol[j]]
    level = {}
    for i, j in sorted(entries, key=lambda e: (min(e), e[0] > e[1], e)):
        deps = [level[(i, k)] for k in terms[(i, j)]] + [level[(k, j)] for k in terms[(i, j)]]
        if i > j:
            deps.append(level[(j, j)])
        level[(i, j)] = 1 + max(deps) if deps else 0
    if grouping == "entry":  # one entry per step, in a valid (level) order
        order = sorted(entries, key=lambda e: (level[e], e))
        level = {e: k for k, e in enumerate(order)}

    # storage order: by level; inside a level the entries with terms first (most terms first),
    # then the L entries without terms (they are only divided by their pivot)
    layout = sorted(entries, key=lambda e: (level[e], not terms[e], -len(terms[e]), e[0] <= e[1], e))
    pos = {e: p for p, e in enumerate(layout)}
    steps = []
    flops = 0
    by_level: dict[int, list] = {}
    for e in layout:
        by_level.setdefault(level[e], []).append(e)
    for lv in sorted(by_level):
        group = by_level[lv]
        upd = [e for e in group if terms[e]]
        div = [e for e in group if e[0] > e[1]]
        if not upd and not div:
            continue
        start = pos[group[0]]
        assert [pos[e] for e in upd] == list(range(start, start + len(upd)))  # contiguous by construction
        counts, left, right = _slots([[(pos[(e[0], k)], pos[(k, e[1])]) for k in terms[e]] for e in upd])
        flops += 2 * sum(counts) + len(div)
        dpos = [pos[e] for e in div]
        contiguous = bool(dpos) and dpos == list(range(dpos[0], dpos[0] + len(dpos)))
        steps.append(_Step(
            start=start, n_upd=len(upd), counts=counts, left=left, right=right,
            divide=slice(dpos[0], dpos[-1] + 1) if contiguous else np.array(dpos, dtype=np.intp),
            pivots=np.array([pos[(e[1], e[1])] for e in div], dtype=np.intp)))
    fwd, fwd_order = _solve_program(n, filled, pos, lower=True, grouping=grouping)
    bwd, bwd_order = _solve_program(n, filled, pos, lower=False, grouping=grouping)
    fwd_rank = np.empty(n, dtype=np.intp)
    fwd_rank[fwd_order] = np.arange(n)
    gather, fwd_terms, bwd_terms, widest = _gather_plan(fwd, bwd)
    lu = SparseLU(
        n=n, nnz=len(layout), perm=perm,
        positions=np.array([pos[(int(iperm[i]), int(iperm[j]))] for i, j in zip(rows, cols)], dtype=np.intp),
        diagonal=np.array([pos[(int(iperm[i]), int(iperm[i]))] for i in range(n)], dtype=np.intp),
        n_fill=len(filled) - len(permuted), ordering=ordering, grouping=grouping, flops=flops,
        _steps=tuple(steps), _fwd=fwd, _bwd=bwd,
        _fwd_in=perm[fwd_order],                      # storage slot s holds permuted row fwd_order[s]
        _fwd_to_bwd=fwd_rank[bwd_order],
        _bwd_out=np.argsort(bwd_order)[iperm],        # original i -> permuted iperm[i] -> bwd slot
        _pivot_bwd=np.array([pos[(k, k)] for k in bwd_order], dtype=np.intp),
        _entry_map=pos, _gather=gather, _fwd_terms=fwd_terms, _bwd_terms=bwd_terms, max_terms=widest,
    )
    return lu


def _ordering(n: int, pattern: set, ordering: str) -> np.ndarray:
    if ordering == "natural":
        return np.arange(n)
    if ordering == "rcm":
        r, c = zip(*pattern)
        A = sp.coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
        return np.asarray(reverse_cuthill_mckee((A + A.T).tocsr(), symmetric_mode=True), dtype=np.intp)
    if ordering == "mindegree":
        pattern = pattern | {(j, i) for i, j in pattern}
    return _greedy_order(n, pattern)


def _greedy_order(n: int, pattern: set) -> np.ndarray:
    """Markowitz order with diagonal pivots: repeatedly eliminate the pivot with the smallest
    (row count - 1) * (column count - 1) in the remaining matrix, updating the pattern."""
    R = [set() for _ in range(n)]
    C = [set() for _ in range(n)]
    for i, j in pattern:
        R[i].add(j)
        C[j].add(i)
    remaining = set(range(n))
    order = []
    while remaining:
        k = min(remaining, key=lambda k: ((len(R[k]) - 1) * (len(C[k]) - 1), len(R[k]) + len(C[k]), k))
        order.append(k)
        remaining.discard(k)
        rk, ck = R[k] - {k}, C[k] - {k}
        for i in ck:
            R[i].discard(k)
        for j in rk:
            C[j].discard(k)
        for i in ck:
            for j in rk:
                R[i].add(j)
                C[j].add(i)
    return np.array(order, dtype=np.intp)


def _symbolic_fill(n: int, pattern: set) -> set:
    """Pattern of L + U for elimination in the natural order of ``pattern``."""
    R = [set() for _ in range(n)]
    C = [set() for _ in range(n)]
    for i, j in pattern:
        R[i].add(j)
        C[j].add(i)
    filled = set(pattern)
    for k in range(n):
        below = [i for i in C[k] if i > k]
        right = [j for j in R[k] if j > k]
        for i in below:
            for j in right:
                if (i, j) not in filled:
                    filled.add((i, j))
                    R[i].add(j)
                    C[j].add(i)
    return filled


def _solve_program(n: int, filled: set, pos: dict, *, lower: bool, grouping: str):
    """Level-scheduled forward (unit L) or backward (U) substitution.

    Returns the steps and the storage order of the rows (storage slot s holds permuted row
    order[s]); rows of one level are contiguous, rows with terms first."""
    deps = [[] for _ in range(n)]
    for i, j in filled:
        if (lower and i > j) or (not lower and i < j):
            deps[i].append(j)
    rng = range(n) if lower else range(n - 1, -1, -1)
    level = [0] * n
    for i in rng:
        level[i] = 1 + max(level[j] for j in deps[i]) if deps[i] else 0
    if grouping == "entry":
        order_ = sorted(range(n), key=lambda i: (level[i], i))
        for r, i in enumerate(order_):
            level[i] = r
    order = sorted(range(n), key=lambda i: (level[i], not deps[i], -len(deps[i]), i))
    slot = {row: s for s, row in enumerate(order)}
    steps = []
    s = 0
    for lv in sorted(set(level)):
        group = [i for i in order if level[i] == lv]
        upd = [i for i in group if deps[i]]
        if lower and not upd:
            s += len(group)
            continue
        counts, vals, cols = _slots([[(pos[(i, j)], slot[j]) for j in sorted(deps[i])] for i in upd])
        steps.append(_SolveStep(start=s, n_upd=len(upd), stop=s + len(group), counts=counts, vals=vals,
                                cols=cols))
        s += len(group)
    return tuple(steps), np.array(order, dtype=np.intp)
