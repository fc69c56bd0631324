"""The sweep stage: chunked, resumable parameter sweeps and their analysis.

- :mod:`.spec`, :mod:`.load`: the sweep specification and its file;
- :mod:`.sweep`: ``run_sweep``, ``open_sweep``, ``sobol_indices``;
- :mod:`.store`: the chunk files and manifest on disk; :mod:`.cli`: ``her2sim sweep``.

The names of the former flat module are forwarded from this package for one release (with a
DeprecationWarning); import them from :mod:`her2sim.sweep.sweep`.
"""

from .._compat import forward_former_module

#: the modules of this package (never forwarded)
SUBMODULES = frozenset({"cli", "load", "spec", "store", "sweep"})

__getattr__ = forward_former_module(__name__, "sweep", SUBMODULES)
