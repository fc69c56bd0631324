"""Old flat module paths (before the package-per-stage layout) keep working for one release.

:func:`install_aliases` puts a finder on ``sys.meta_path`` that answers an import of an old path
with the SAME module object as its new path (so monkeypatching either name, ``isinstance`` and old
pickles all work) and a DeprecationWarning. No files are left at the old paths.
"""
import importlib
import importlib.abc
import importlib.util
import sys
import warnings

PACKAGE = __name__.rpartition(".")[0]

#: old module (relative to the package) -> new module (relative to the package); the old modules
#: that became packages (screen, sweep) forward their names from the package's ``__getattr__``
ALIASES: dict[str, str] = {
    "spec": "model.spec",
    "load": "model.load",
    "expr": "model.expr",
    "units": "model.units",
    "codegen": "model.codegen",
    "network": "model.network",
    "report": "model.report",
    "solve": "solvers.solve",
    "result": "solvers.result",
    "batch": "solvers.batch",
    "batch_xp": "solvers.batch_xp",
    "sparse_lu": "solvers.sparse_lu",
    "tableaus": "solvers.tableaus",
    "backend": "solvers.backend",
    "fused": "solvers.fused",
    "codegen_c": "solvers.codegen_c",
    "certify": "solvers.certify",
    "engines": "solvers.engines",
    "scipy_engine": "solvers.scipy_engine",
    "ckernels": "solvers.ckernels",
    "stepping": "solvers.stepping",
    "status": "solvers.status",
    "screen_cli": "screen.cli",
    "screen_plots": "screen.plots",
    "doseresponse": "screen.doseresponse",
    "synergy": "screen.synergy",
    "sweep_cli": "sweep.cli",
    "sweep_load": "sweep.load",
    "sweep_spec": "sweep.spec",
    "sweep_store": "sweep.store",
    "sbml": "io.sbml",
    "sbml_import": "io.sbml_import",
    "atomic": "io.atomic",
}


class AliasLoader(importlib.abc.Loader):
    """Loads an old path as the module already at its new path."""

    def __init__(self, new_name: str):
        self.new_name = new_name
        self.real_spec = None

    def create_module(self, spec):
        module = importlib.import_module(self.new_name)
        self.real_spec = module.__spec__
        warnings.warn(f"{spec.name} moved to {self.new_name}; the old path works for one more release",
                      DeprecationWarning, stacklevel=2)
        return module

    def exec_module(self, module):
        module.__spec__ = self.real_spec  # the import system set the alias's spec: keep the module's own


class AliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``PACKAGE.OLD`` for every OLD in :data:`ALIASES`."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, old = fullname.partition(".")
        if package != PACKAGE or old not in ALIASES:
            return None
        return importlib.util.spec_from_loader(fullname, AliasLoader(f"{PACKAGE}.{ALIASES[old]}"))


def install_aliases() -> None:
    """Put one :class:`AliasFinder` first on ``sys.meta_path`` (a second call does nothing); first, so
    that a stale file at an old path (an older installed copy) never shadows the alias."""
    if not any(isinstance(f, AliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, AliasFinder())


def old_module(name: str):
    """The package attribute ``name`` for an old module name (imported through its alias, so it
    warns); AttributeError otherwise. Used by the package's ``__getattr__``."""
    if name in ALIASES:
        return importlib.import_module(f"{PACKAGE}.{name}")
    raise AttributeError(f"module {PACKAGE!r} has no attribute {name!r}")


def forward_former_module(package: str, module: str, submodules: frozenset):
    """A package ``__getattr__`` that forwards the public names of the flat module the package
    replaced (``her2sim.screen`` was a module, now ``her2sim.screen.screen``) with a
    DeprecationWarning; the package's own ``submodules`` and private names are never forwarded."""

    def __getattr__(name: str):
        if name.startswith("_") or name in submodules:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        warnings.warn(f"{package}.{name} moved to {package}.{module}.{name}; the old path works for one "
                      "more release", DeprecationWarning, stacklevel=2)
        return value

    return __getattr__
