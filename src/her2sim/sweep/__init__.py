"""The sweep stage: chunked, resumable parameter sweeps and their analysis.

- :mod:`.spec`, :mod:`.load`: the sweep specification and its file;
- :mod:`.sweep`: ``run_sweep``, ``open_sweep``, ``sobol_indices``;
- :mod:`.store`: the chunk files and manifest on disk; :mod:`.cli`: ``her2sim sweep``.

The names of the former flat module are forwarded from this package for one release (with a
DeprecationWarning); import them from :mod:`her2sim.sweep.sweep`.
"""

import importlib
import warnings

#: the modules of this package (never forwarded)
SUBMODULES = frozenset({"cli", "load", "spec", "store", "sweep"})


def __getattr__(name: str):
    """A public name of the former flat module, from its new home, with a DeprecationWarning."""
    if name.startswith("_") or name in SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".sweep", __name__), name)
    warnings.warn(f"{__name__}.{name} moved to {__name__}.sweep.{name}; the old path works for one "
                  "more release", DeprecationWarning, stacklevel=2)
    return value
