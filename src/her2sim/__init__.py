"""her2sim: mechanistic simulation of HER2-positive breast cancer signalling and drug resistance.

>>> import her2sim
>>> result = her2sim.simulate("default", drugs={"lapatinib": "1 uM"}, time="72 h")  # doctest: +SKIP
>>> result.final("pAKT")  # doctest: +SKIP
"""

from importlib.metadata import PackageNotFoundError, version

from .solvers.batch import BatchResult, simulate_batch
from .errors import (Her2simError, IntegrationError, ModelFileError, OptionalDependencyError, UnitError,
                     UnknownNameError)
from .model.load import check_file, list_bundled, load_model, models_dir
from .model.network import Network, compile_network
from .solvers.result import Result, Status
from .solvers.solve import simulate, steady_state
from .model.spec import ModelSpec
from ._compat import install_aliases, old_module

install_aliases()  # the old flat module paths keep working for one release

#: heavier entry points, imported on first use: name -> module
_LAZY = {"dose_response": "screen.screen", "dose_matrix": "screen.screen", "synergy_scores": "screen.screen",
         "run_sweep": "sweep.sweep", "open_sweep": "sweep.sweep", "run_trial": "trial"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    return old_module(name)  # an old module path (warns), else AttributeError


try:
    __version__ = version("her2sim")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = [
    "Her2simError", "IntegrationError", "ModelFileError", "OptionalDependencyError", "UnitError",
    "UnknownNameError", "check_file", "list_bundled", "load_model", "models_dir", "Network",
    "compile_network", "Result", "Status", "simulate", "steady_state", "ModelSpec", "__version__",
    "BatchResult", "simulate_batch", *_LAZY,
]
