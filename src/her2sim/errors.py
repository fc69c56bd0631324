"""Exception hierarchy: one base class, each concrete error also a builtin a caller would catch."""

from __future__ import annotations

import difflib
from typing import Iterable


class Her2simError(Exception):
    """Base class of every error her2sim raises on purpose."""


class ModelFileError(Her2simError, ValueError):
    """A model, drug or variant file is malformed or inconsistent.

    The message names the file, the entry and what to change.
    """

    def __init__(self, message: str, *, path: str | None = None, entry: str | None = None):
        self.path = path
        self.entry = entry
        where = ""
        if path:
            where += f"{path}"
        if entry:
            where += f" [{entry}]" if where else f"[{entry}]"
        super().__init__(f"{where}: {message}" if where else message)

    def __reduce__(self):  # keep errors picklable for worker processes
        return (_rebuild_model_file_error, (self.args[0], self.path, self.entry))


def _rebuild_model_file_error(full_message: str, path: str | None, entry: str | None):
    err = ModelFileError.__new__(ModelFileError)
    Exception.__init__(err, full_message)
    err.path, err.entry = path, entry
    return err


class ExpressionError(Her2simError, ValueError):
    """A rate law or observable expression uses syntax outside the whitelist."""


class UnitError(Her2simError, ValueError):
    """A quantity has the wrong dimension or an unreadable unit."""


class UnknownNameError(Her2simError, KeyError):
    """A name (species, parameter, drug, variant, model) does not exist."""

    def __init__(self, kind: str, name: str, known: Iterable[str], fix: str = ""):
        known = sorted(set(known))
        close = difflib.get_close_matches(name, known, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(known[:40]) + (" ..." if len(known) > 40 else "")
        self.kind, self.name = kind, name
        msg = f"unknown {kind} {name!r}.{hint} Known {kind}s: {listing}."
        if fix:
            msg += f" {fix}"
        super().__init__(msg)

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])

    def __reduce__(self):
        return (_rebuild_unknown, (self.args[0], self.kind, self.name))


def _rebuild_unknown(message: str, kind: str, name: str):
    err = UnknownNameError.__new__(UnknownNameError)
    Exception.__init__(err, message)
    err.kind, err.name = kind, name
    return err


class IntegrationError(Her2simError, RuntimeError):
    """The ODE solver failed; the message says where and what to try."""


class OptionalDependencyError(Her2simError, ImportError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the optional package {package!r}: "
            f"pip install 'her2sim[{extra}]' (or pip install {package})"
        )


class SBMLImportError(Her2simError, ValueError):
    """An SBML file cannot be read: not SBML, invalid, or refers to something undefined."""


class UnsupportedSBMLError(SBMLImportError):
    """A valid SBML model uses a construct her2sim does not simulate (refused, never approximated).

    ``construct`` names the SBML construct (e.g. ``"algebraic rule"``) and ``element`` the id of the
    element that uses it.
    """

    def __init__(self, construct: str, element: str = "", detail: str = ""):
        self.construct, self.element = construct, element
        where = f" in {element!r}" if element else ""
        super().__init__(f"unsupported SBML: {construct}{where}"
                         + (f" ({detail})" if detail else "") + "; her2sim refuses it rather than simulate it wrongly")

    def __reduce__(self):
        return (_rebuild_unsupported, (self.args[0], self.construct, self.element))


def _rebuild_unsupported(message: str, construct: str, element: str):
    err = UnsupportedSBMLError.__new__(UnsupportedSBMLError)
    Exception.__init__(err, message)
    err.construct, err.element = construct, element
    return err
