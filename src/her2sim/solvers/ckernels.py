"""The batch integrator's heavy operations as compiled C on the CPU (ctypes), from :mod:`her2sim.solvers.codegen_c`.

Why: per step the NumPy integrator evaluates the right-hand side six to eight times, the
Jacobian once, one sparse LU and six to eight triangular solves; in NumPy each is hundreds of
element-wise calls with a temporary each (~450 per right-hand side, ~270 per solve). Here each is
one call of a C loop over the members of the (rows, B) arrays, the straight-line body of
:mod:`her2sim.solvers.codegen_c` inside (the same text the CUDA kernels of :mod:`her2sim.solvers.fused` use).
A fifth, model-independent library (``h2_step``, :data:`her2sim.solvers.codegen_c.STEP_SOURCE`) does
the rest of a step that paid in C: the error norm with the blow-up test's extremes in one pass, and
the dense output written straight into the output rows (same operations, same order as NumPy).

Build: the system C compiler (``cc``/``gcc``, or ``$CC``), each function its own translation unit
compiled in parallel into a shared library in a temporary directory owned by the call (removed
once loaded), with IEEE arithmetic: ``-O2 -std=c99 -ffp-contract=off``, never ``-ffast-math``.
The LU factor and solve loops carry ``#pragma omp simd`` (``-fopenmp-simd``, no OpenMP runtime):
every member runs the same operations in the same order, so vectorising across members changes
no result. The solve is also compiled with ``-march=native`` (the library runs only on the machine
that built it; retried without it if the compiler refuses). The right-hand side and Jacobian stay
scalar loops (their ``pow`` calls have no vector form without ``-ffast-math``).

Safety: a freshly built library is checked against the NumPy path on 16 random members (right-hand
side and Jacobian to 1e-12 relative, the LU solve by its backward error; :func:`her2sim.solvers.fused.check_ops`)
before use. No compiler, a compiler error or a mismatch: :func:`cpu_kernels` returns None with one
warning line and the caller runs the NumPy path.

No hidden cache: :func:`cpu_kernels` compiles on every call. A caller that integrates the same
network many times (a fit, a sweep's chunks) builds once and passes the result along
(``simulate_batch(..., fused=kernels)``), or keeps a :class:`KernelCache` it owns (picklable: its
workers re-open the libraries; :func:`her2sim.solvers.batch.run_kernels` makes one per run).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import warnings
import weakref
from pathlib import Path

import numpy as np

from ..errors import InvalidArgument
from .codegen_c import FUNCTION_NAMES, HELPERS, SIMD_FUNCTIONS, STEP_SOURCE, kernel_source, simd_helpers
from .backend import Backend
from .fused import check_ops

#: members of the self-check and its tolerance (relative to each member's largest value)
CHECK_MEMBERS, CHECK_RTOL = 16, 1e-12
_VECTOR = ("-march=native", "-fno-math-errno", "-ftree-loop-if-convert")
#: compiler flags: common, and per function (see the module docstring)
BASE_FLAGS = ("-O2", "-std=c99", "-fPIC", "-shared", "-ffp-contract=off", "-fno-fast-math", "-fopenmp-simd")
EXTRA_FLAGS = {"h2_rhs": _VECTOR, "h2_jac": _VECTOR, "h2_factor": (), "h2_solve": ("-march=native",),
               "h2_step": ("-march=native",)}
#: seconds a compiler may take for one function before the build is abandoned
COMPILE_TIMEOUT_S = 300
_SIGNATURE = "(const double *restrict a, const double *restrict b, double *restrict out, const long long B)"
_P, _L, _D = ctypes.c_void_p, ctypes.c_longlong, ctypes.c_double
#: argument types of the hand-written step functions (:data:`her2sim.solvers.codegen_c.STEP_SOURCE`)
STEP_ARGTYPES = {"h2_error": [_P, _P, _P, _D, _D, _P, _P, _P, _L, _L],
                 "h2_dense": [_P, _L, _P, _P, _L, _L, _P, _L, _P, _P, _P, _P, _L, _P, _P, _P]}


def find_compiler() -> str | None:
    """Path of the C compiler: ``$CC`` if set and found, else ``cc``, else ``gcc``; None if none."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def function_source(name: str, body) -> str:
    """One translation unit: the helpers and ``name`` looping over the B members."""
    return ("#include <math.h>\n" + HELPERS + simd_helpers(body) + f"void {name}{_SIGNATURE} {{\n" + '  _Pragma("omp simd")\n'
            + "  for (long long i = 0; i < B; ++i) {\n" + "".join(f"    {line}\n" for line in body) + "  }\n}\n")


class CpuKernels:
    """The compiled right-hand side, Jacobian, LU factor and LU solve of one network and LU plan.

    Arrays are float64, C-contiguous, species-major (rows, B), as in :mod:`her2sim.solvers.batch`:
    ``rhs(y, P, out)`` y (n, B), P (n_params, B) -> out (n, B); ``jac(y, P, out)`` -> (n_jac, B)
    values at the network's pattern; ``factor(J, shift, out)`` the LU of ``shift * I - J``
    (shift (B,) per member) -> (factor_rows, B); ``solve(F, b, out)`` ``W x = b`` -> (n, B).
    ``out`` may be None (allocated). ``compile_s``: wall seconds of the build; ``flags``: per function.
    """

    fused = True

    def __init__(self, libraries: dict, n: int, n_params: int, n_jac: int, nnz: int, compile_s: float, flags: dict,
                 files: dict | None = None):
        self._libs = libraries  # keeps the loaded libraries alive
        self._fn = {name: getattr(libraries[name], name) for name in FUNCTION_NAMES}
        for fn in self._fn.values():
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong]
            fn.restype = None
        for name, types in STEP_ARGTYPES.items():
            fn = self._fn[name] = getattr(libraries["h2_step"], name)
            fn.argtypes, fn.restype = types, None
        self.n, self.n_params, self.n_jac, self.nnz = n, n_params, n_jac, nnz
        self.factor_rows = nnz + n
        self.compile_s, self.flags = compile_s, flags
        self.files = dict(files or {})  # library paths, when built with keep_in (a KernelCache's folder)

    def _call(self, name: str, a: np.ndarray, b: np.ndarray, out: np.ndarray | None, rows: int) -> np.ndarray:
        a = np.ascontiguousarray(a, dtype=np.float64)
        b = np.ascontiguousarray(b, dtype=np.float64)
        B = a.shape[-1]
        if out is None:
            out = np.empty((rows, B))
        elif not (out.flags.c_contiguous and out.dtype == np.float64 and out.shape == (rows, B)):
            raise InvalidArgument(f"{name}: out must be a C-contiguous float64 array of shape {(rows, B)}, got "
                             f"{out.shape} {out.dtype}")
        if B:
            self._fn[name](a.ctypes.data, b.ctypes.data, out.ctypes.data, B)
        return out

    def rhs(self, y, P, out=None):
        return self._call("h2_rhs", y, P, out, self.n)

    def jac(self, y, P, out=None):
        return self._call("h2_jac", y, P, out, self.n_jac)

    def factor(self, J, shift, out=None):
        return self._call("h2_factor", J, np.broadcast_to(np.asarray(shift, dtype=float), (np.shape(J)[-1],)),
                          out, self.factor_rows)

    def solve(self, F, b, out=None):
        return self._call("h2_solve", F, b, out, self.n)

    # The rest of a step (no argument checks: the integrator passes C-contiguous float64 arrays of
    # the right shapes; int64 index arrays).
    def error(self, y, y1, e, rtol: float, atol: float, err, ymax, ymin) -> None:
        """(B,) RMS error norms, max |y1| and min y1 of (n, B) arrays, into ``err``, ``ymax``, ``ymin``."""
        rows, B = y.shape
        self._fn["h2_error"](y.ctypes.data, y1.ctypes.data, e.ctypes.data, rtol, atol, err.ctypes.data,
                             ymax.ctypes.data, ymin.ctypes.data, rows, B)

    def dense(self, D, y, y1, sel, t, hh, t_new, grid, nout, row, out) -> None:
        """Dense output (vectors D (K, n, B)) of members ``sel`` (int64) at every time
        ``grid[nout[i]] <= t_new[i]`` into the (B_total, T, n) array ``out`` at row ``row[i]``;
        advances ``nout`` (int64)."""
        rows, B = y.shape
        self._fn["h2_dense"](D.ctypes.data, D.shape[0], y.ctypes.data, y1.ctypes.data, rows, B, sel.ctypes.data,
                             len(sel), t.ctypes.data, hh.ctypes.data, t_new.ctypes.data, grid.ctypes.data, len(grid),
                             nout.ctypes.data, row.ctypes.data, out.ctypes.data)


def build_kernels(network, plan, *, compiler: str | None = None, keep_in: str | None = None) -> CpuKernels:
    """Compile and load the functions (no check; raises RuntimeError on a compiler error,
    FileNotFoundError without a compiler). Prefer :func:`cpu_kernels`. ``keep_in``: an existing
    folder where the libraries stay (their paths in ``CpuKernels.files``); default: a temporary
    folder removed once they are loaded."""
    cc = compiler or find_compiler()
    if cc is None:
        raise FileNotFoundError("no C compiler found (set CC, or install gcc/cc)")
    ks = kernel_source(network, plan, SIMD_FUNCTIONS)
    clock = time.perf_counter()
    libraries, flags = {}, {}
    with (tempfile.TemporaryDirectory(prefix="her2sim-ckernels-") if keep_in is None
          else contextlib.nullcontext(tempfile.mkdtemp(prefix="build-", dir=keep_in))) as folder:
        pending = {}
        for name, body in ks.bodies.items():
            src = Path(folder) / f"{name}.c"
            src.write_text(function_source(name, body))
            pending[name] = list(EXTRA_FLAGS[name])
        (Path(folder) / "h2_step.c").write_text(STEP_SOURCE)
        pending["h2_step"] = list(EXTRA_FLAGS["h2_step"])
        procs = {}
        while pending or procs:
            for name, extra in list(pending.items()):  # every function compiles in parallel
                cmd = [cc, *BASE_FLAGS, *extra, "-o", str(Path(folder) / f"{name}.so"), str(Path(folder) / f"{name}.c"),
                       "-lm"]
                procs[name] = (subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), extra)
                del pending[name]
            name = next(iter(procs))
            proc, extra = procs.pop(name)
            try:
                _, err = proc.communicate(timeout=COMPILE_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                for other, _ in procs.values():
                    other.kill()
                    other.communicate()
                raise RuntimeError(f"{Path(cc).name} took over {COMPILE_TIMEOUT_S} s for {name}") from None
            if proc.returncode and extra:  # a compiler without one of them: once more, portable
                pending[name] = []
                continue
            if proc.returncode:
                for other, _ in procs.values():
                    other.kill()
                    other.communicate()
                text = " ".join(err.decode(errors="replace").split())[:200]
                raise RuntimeError(f"{Path(cc).name} failed on {name} (exit {proc.returncode}): {text}")
            libraries[name] = ctypes.CDLL(str(Path(folder) / f"{name}.so"))  # mapped: the file may go
            flags[name] = " ".join((*BASE_FLAGS, *extra))
        files = {} if keep_in is None else {name: str(Path(folder) / f"{name}.so") for name in libraries}
    return CpuKernels(libraries, ks.n, ks.n_params, ks.n_jac, ks.nnz, time.perf_counter() - clock, flags, files)


class _Unbuffered:
    """Adapter of :class:`CpuKernels` to the ops interface of :func:`her2sim.solvers.fused.check_ops`."""

    def __init__(self, k: CpuKernels):
        self.k = k

    def rhs(self, y, P):
        return self.k.rhs(y, P)

    def jac(self, y, P):
        return self.k.jac(y, P)

    def factor(self, J, shift):
        return self.k.factor(J, shift)

    def solve(self, fac, r):
        return self.k.solve(fac, r)


class _NumpyOps:
    """The NumPy path's operations (generated NumPy right-hand side and Jacobian, :class:`SparseLU`)."""

    def __init__(self, network, plan):
        self.network, self.plan = network, plan

    def rhs(self, y, P):
        return self.network.rhs_T(y, P)

    def jac(self, y, P):
        return self.network.jacobian_values_T(y, P)

    def factor(self, J, shift):
        V = self.plan.assemble(J, shift, scale=-1.0)
        return V, self.plan.factor(V)

    def solve(self, fac, r):
        return self.plan.solve(fac[0], fac[1], r)


def check_kernels(kernels: CpuKernels, network, plan, *, members: int = CHECK_MEMBERS, rtol: float = CHECK_RTOL,
                  seed: int = 0) -> None:
    """Compare the compiled functions with the NumPy path on random members near the model's
    initial state (:func:`her2sim.solvers.fused.check_ops`); raises RuntimeError on a mismatch."""
    with np.errstate(all="ignore"):
        check_ops(Backend("numpy", np), _Unbuffered(kernels), _NumpyOps(network, plan), network,
                  members=members, rtol=rtol, seed=seed)


def cpu_kernels(network, plan, *, warn: bool = True, keep_in: str | None = None) -> CpuKernels | None:
    """Build and check the C kernels; on any failure (no compiler, a compiler error, a mismatch)
    one RuntimeWarning line (if ``warn``) and None: the caller runs the NumPy path. ``keep_in``: as
    in :func:`build_kernels`."""
    try:
        kernels = build_kernels(network, plan, keep_in=keep_in)
        check_kernels(kernels, network, plan)
    except Exception as exc:  # noqa: BLE001 - any failure means: NumPy path, say why
        if warn:
            text = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
            warnings.warn(f"compiled C kernels unavailable, using the NumPy path ({text})", RuntimeWarning,
                          stacklevel=3)
        return None
    return kernels


def _sha256(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _remove_folder(folder: str, owner: int) -> None:
    if os.getpid() == owner:  # never from a forked child or an unpickled copy
        shutil.rmtree(folder, ignore_errors=True)


class KernelCache:
    """An explicit, caller-owned store of built kernels, one per generated source (network and LU
    ordering): pass it as ``simulate_batch(..., fused=cache)`` (or ``kernels=`` of
    :func:`her2sim.experiments.run_conditions`) to compile once for many calls (a fit, a sweep's
    chunks). A failed build is remembered as None (one warning, not one per call).

    Picklable, for process and dask workers: the built libraries stay in a folder the cache owns
    (removed when the cache that built them is garbage-collected, in the process that built them);
    a pickled cache carries their paths and SHA-256 hashes, and a worker re-opens them on first use
    (and re-checks them against NumPy). A library that is missing or changed is rebuilt in that
    process, with one RuntimeWarning line. Forked workers share the parent's loaded libraries.
    """

    def __init__(self):
        self._setup({})

    def _setup(self, files: dict) -> None:
        self._keys: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # network -> {ordering: key}
        self._built: dict = {}     # source key -> CpuKernels or None (a failed build)
        self._files = files        # source key -> (library files {name: (path, sha256)}, metadata) or None
        self._folder: str | None = None

    def _key(self, network, plan, ordering: str) -> str:
        per_net = self._keys.setdefault(network, {})
        if ordering not in per_net:  # the generated C identifies the kernels (~10 ms, once per network object)
            ks = kernel_source(network, plan, SIMD_FUNCTIONS)
            text = "\n".join(line for body in ks.bodies.values() for line in body)
            per_net[ordering] = hashlib.sha256(text.encode()).hexdigest()
        return per_net[ordering]

    def get(self, network, plan, ordering: str) -> CpuKernels | None:
        key = self._key(network, plan, ordering)
        if key not in self._built:
            self._built[key] = self._reopen(key, network, plan) if key in self._files else self._build(network, plan)
        return self._built[key]

    def _build(self, network, plan) -> CpuKernels | None:
        if self._folder is None:
            self._folder = tempfile.mkdtemp(prefix="her2sim-kernelcache-")
            weakref.finalize(self, _remove_folder, self._folder, os.getpid())
        return cpu_kernels(network, plan, keep_in=self._folder)

    def _reopen(self, key: str, network, plan) -> CpuKernels | None:
        entry = self._files[key]
        if entry is None:  # the build failed where the cache was made: no retry, no second warning
            return None
        files, (n, n_params, n_jac, nnz, flags) = entry
        stale = [path for path, digest in files.values() if not (os.path.exists(path) and _sha256(path) == digest)]
        if stale:
            warnings.warn(f"KernelCache: the compiled library {stale[0]} is missing or changed; rebuilding the C "
                          "kernels in this process", RuntimeWarning, stacklevel=3)
            return self._build(network, plan)
        libraries = {name: ctypes.CDLL(path) for name, (path, _) in files.items()}
        kernels = CpuKernels(libraries, n, n_params, n_jac, nnz, 0.0, flags, {k: v[0] for k, v in files.items()})
        try:
            check_kernels(kernels, network, plan)
        except Exception as exc:  # noqa: BLE001 - as cpu_kernels: say why, run NumPy
            warnings.warn(f"compiled C kernels unavailable, using the NumPy path ({exc})", RuntimeWarning, stacklevel=3)
            return None
        return kernels

    def __getstate__(self) -> dict:
        files = dict(self._files)
        for key, k in self._built.items():
            files[key] = None if k is None else (
                {name: (path, _sha256(path)) for name, path in k.files.items()},
                (k.n, k.n_params, k.n_jac, k.nnz, k.flags))
        return {"files": files}

    def __setstate__(self, state: dict) -> None:
        self._setup(dict(state["files"]))

    def has(self, network, ordering: str) -> bool:
        """True if a build for this network and ordering was tried (kernels or a remembered failure)."""
        keys = self._keys.get(network, {})
        return ordering in keys and (keys[ordering] in self._built or keys[ordering] in self._files)

    def __len__(self) -> int:
        return len(set(self._built) | set(self._files))
