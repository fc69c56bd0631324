"""Array backends of the batch path: which array namespace (``xp``) integrates a batch.

``simulate_batch(..., backend=...)`` takes ``"numpy"`` (default: the tuned NumPy integrator of
:mod:`her2sim.solvers.batch`), ``"cupy"`` (an NVIDIA GPU through CuPy), ``"array-api-strict"`` (the
reference implementation of the Python array API standard, for tests: any call outside the
standard fails there) or an array namespace object. Every backend other than ``"numpy"`` runs
the array-API integrator of :mod:`her2sim.solvers.batch_xp`; namespaces come from ``array-api-compat``
(which gives NumPy and CuPy the standard's names). Results always come back as NumPy arrays.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InvalidArgument

#: backend names :func:`resolve_backend` accepts
BACKENDS = ("numpy", "cupy", "array-api-strict")


@dataclass(frozen=True, eq=False)
class Backend:
    """A resolved backend: ``name`` ("numpy", "cupy", "array-api-strict" or the namespace's module
    name) and ``xp``, its array-API namespace (None for the default NumPy integrator)."""

    name: str
    xp: Any

    @property
    def is_numpy(self) -> bool:
        """True when the tuned NumPy integrator runs (``backend="numpy"``)."""
        return self.xp is None

    def asarray(self, a) -> Any:
        """A float64 device array from a NumPy array (or scalar)."""
        return self.xp.asarray(np.ascontiguousarray(a, dtype=np.float64), dtype=self.xp.float64)

    def index(self, a) -> Any:
        """An integer index array on the device from a NumPy array."""
        return self.xp.asarray(np.ascontiguousarray(a, dtype=np.int64), dtype=self.xp.int64)

    def to_numpy(self, a) -> np.ndarray:
        """A NumPy copy of a device array (one transfer)."""
        if self.name == "cupy":
            return a.get()
        return np.array(np.from_dlpack(a), copy=True)

    def synchronize(self) -> None:
        """Wait for queued device work (a no-op off the GPU); call before reading a clock."""
        if self.name == "cupy":
            import cupy

            cupy.cuda.get_current_stream().synchronize()


def resolve_backend(backend: str | Any = "numpy") -> Backend:
    """The :class:`Backend` for a name in :data:`BACKENDS` or an array namespace.

    Raises :class:`~her2sim.errors.InvalidArgument` (one line) for an unknown name or a backend whose
    package is not installed.
    """
    if isinstance(backend, Backend):
        return backend
    if backend is None or (isinstance(backend, str) and backend == "numpy"):
        return Backend("numpy", None)
    if isinstance(backend, str):
        if backend not in BACKENDS:
            raise InvalidArgument(f"backend must be one of {BACKENDS} or an array namespace, got {backend!r}")
        module = {"cupy": "cupy", "array-api-strict": "array_api_strict"}[backend]
        try:
            raw = importlib.import_module(module)
            if backend == "cupy":
                raw.cuda.runtime.getDeviceCount()  # raises without a usable GPU / driver
        except ImportError:
            pip = {"cupy": "cupy-cuda12x (or the wheel matching your CUDA)", "array-api-strict": "array-api-strict"}
            raise InvalidArgument(f"backend={backend!r} needs the {module!r} package, which is not installed: "
                                  f"pip install {pip[backend]}, or use backend='numpy'") from None
        except Exception as exc:  # noqa: BLE001 - CuPy's CUDA errors have no common base class
            raise InvalidArgument(f"backend={backend!r}: no usable GPU ({type(exc).__name__}: {exc}); "
                                  "use backend='numpy'") from None
        return Backend(backend, _compat(raw))
    name = getattr(backend, "__name__", "")
    if not all(hasattr(backend, f) for f in ("asarray", "take", "where", "float64", "concat")):
        raise InvalidArgument(f"backend must be one of {BACKENDS} or an array-API namespace, got {backend!r}")
    if name in ("numpy", "array_api_compat.numpy"):
        return Backend("numpy-array-api", _compat(np))
    if name in ("cupy", "array_api_compat.cupy"):
        return Backend("cupy", _compat(backend))
    return Backend(name or type(backend).__name__, backend)


def _compat(module) -> Any:
    try:
        import array_api_compat
    except ImportError:
        raise InvalidArgument("a backend other than 'numpy' needs the 'array-api-compat' package: "
                              "pip install array-api-compat") from None
    if module.__name__ == "array_api_strict":
        return module
    return array_api_compat.array_namespace(module.empty(1) if module is not np else np.empty(1))
