"""The screen stage: dose-response and dose-matrix screens and their synergy scores.

- :mod:`.screen`: ``dose_response``, ``dose_matrix``, ``synergy_scores``;
- :mod:`.doseresponse`: IC50 and four-parameter log-logistic fits;
- :mod:`.synergy`: Bliss, HSA, Loewe and combination-index scores;
- :mod:`.plots`: figures of screens; :mod:`.cli`: ``her2sim screen``.

The names of the former flat module are forwarded from this package for one release (with a
DeprecationWarning); import them from :mod:`her2sim.screen.screen`.
"""

import importlib
import warnings

#: the modules of this package (never forwarded)
SUBMODULES = frozenset({"cli", "doseresponse", "plots", "screen", "synergy"})


def __getattr__(name: str):
    """A public name of the former flat module, from its new home, with a DeprecationWarning."""
    if name.startswith("_") or name in SUBMODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(".screen", __name__), name)
    warnings.warn(f"{__name__}.{name} moved to {__name__}.screen.{name}; the old path works for one "
                  "more release", DeprecationWarning, stacklevel=2)
    return value
