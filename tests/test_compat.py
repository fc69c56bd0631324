"""Old flat module paths keep working for one release: same module object, a DeprecationWarning.

The old names are built from the alias table, so that the restructure script's rewriting of dotted
names leaves this file alone.
"""
import importlib
import importlib.resources
import importlib.util
import pickle
import sys
import warnings

import pytest

import her2sim
from her2sim._compat import ALIASES, PACKAGE

OLD = sorted(ALIASES)


def forget(name: str) -> None:
    """Make the next import of ``name`` go through the import system again."""
    sys.modules.pop(name, None)
    parent, _, child = name.rpartition(".")
    if parent in sys.modules and child in vars(sys.modules[parent]):
        delattr(sys.modules[parent], child)


@pytest.mark.parametrize("old", OLD)
def test_old_path_is_the_new_module_and_warns(old):
    new = importlib.import_module(f"{PACKAGE}.{ALIASES[old]}")
    forget(f"{PACKAGE}.{old}")
    with pytest.warns(DeprecationWarning, match=ALIASES[old].replace(".", r"\.")):
        module = importlib.import_module(f"{PACKAGE}.{old}")
    assert module is new
    assert module.__name__ == f"{PACKAGE}.{ALIASES[old]}"
    assert module.__spec__.name == module.__name__  # the alias did not overwrite the module's spec


def test_every_target_exists_and_no_old_file_is_left():
    root = importlib.import_module(PACKAGE).__path__[0]
    for old, new in ALIASES.items():
        assert importlib.util.find_spec(f"{PACKAGE}.{new}") is not None, new
        assert not (importlib.resources.files(PACKAGE) / f"{old}.py").is_file(), f"{root}/{old}.py"


def test_from_package_import_old_name_and_attribute():
    old = "batch"
    forget(f"{PACKAGE}.{old}")
    namespace = {}
    with pytest.warns(DeprecationWarning):
        exec(f"from {PACKAGE} import {old} as module", namespace)  # the statement itself
    assert namespace["module"] is importlib.import_module(f"{PACKAGE}.{ALIASES[old]}")
    forget(f"{PACKAGE}.{old}")
    with pytest.warns(DeprecationWarning):
        assert getattr(her2sim, old) is namespace["module"]
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(her2sim, "no_such_name")


def test_monkeypatch_through_the_old_name_reaches_the_new_module(monkeypatch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        old = importlib.import_module(f"{PACKAGE}.batch")
    new = importlib.import_module(f"{PACKAGE}.{ALIASES['batch']}")
    monkeypatch.setattr(old, "SLAB", 3)
    assert new.SLAB == 3


def test_old_pickle_of_a_class_loads():
    new = importlib.import_module(f"{PACKAGE}.{ALIASES['batch']}")
    forget(f"{PACKAGE}.batch")
    data = b"c" + f"{PACKAGE}.batch".encode() + b"\nBatchResult\n."  # protocol 0: GLOBAL module name
    with pytest.warns(DeprecationWarning):
        assert pickle.loads(data) is new.BatchResult


@pytest.mark.parametrize("package, name", [("screen", "dose_response"), ("sweep", "run_sweep")])
def test_old_module_names_forwarded_by_the_package_that_replaced_it(package, name):
    pkg = importlib.import_module(f"{PACKAGE}.{package}")
    real = getattr(importlib.import_module(f"{PACKAGE}.{package}.{package}"), name)
    with pytest.warns(DeprecationWarning, match=f"{package}\\.{package}\\.{name}"):
        assert getattr(pkg, name) is real
    with pytest.raises(AttributeError):
        getattr(pkg, "no_such_name")


def test_no_warning_on_the_new_paths():
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for new in ALIASES.values():
            importlib.import_module(f"{PACKAGE}.{new}")
