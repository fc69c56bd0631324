"""The screen stage: dose-response and dose-matrix screens and their synergy scores.

- :mod:`.screen`: ``dose_response``, ``dose_matrix``, ``synergy_scores``;
- :mod:`.doseresponse`: IC50 and four-parameter log-logistic fits;
- :mod:`.synergy`: Bliss, HSA, Loewe and combination-index scores;
- :mod:`.plots`: figures of screens; :mod:`.cli`: ``her2sim screen``.

The names of the former flat module are forwarded from this package for one release (with a
DeprecationWarning); import them from :mod:`her2sim.screen.screen`.
"""

from .._compat import forward_former_module

#: the modules of this package (never forwarded)
SUBMODULES = frozenset({"cli", "doseresponse", "plots", "screen", "synergy"})

__getattr__ = forward_former_module(__name__, "screen", SUBMODULES)
