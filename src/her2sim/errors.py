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

    exit_code = 1


class OptionalDependencyError(Her2simError, ImportError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the optional package {package!r}: "
            f"pip install 'her2sim[{extra}]' (or pip install {package})"
        )


class InvalidArgument(Her2simError, ValueError):
    """An argument of a public function or a command-line option has a bad type or value.

    The message names the argument, the value given and what to pass instead.
    """


class QuantityRangeError(InvalidArgument, UnitError):
    """A quantity with a readable unit but a value out of range (a negative or infinite time)."""


class TooLargeError(InvalidArgument):
    """A request would need more conditions, patients, grid points or memory than the stated limit;
    the message says how big it would be and how to split it."""


class OutputError(Her2simError, OSError):
    """Writing an output file failed during the work (full disk, I/O error); nothing partial is kept."""

    exit_code = 1


#: exit status of the command line for each kind of error (see README "Errors and exit codes")
EXIT_BAD_INPUT, EXIT_FAILURE, EXIT_INTERRUPTED = 2, 1, 130


def exit_code(exc: BaseException) -> int:
    """The command-line exit status for an error: 2 for bad input (the default of every
    :class:`Her2simError`), 1 for a failure during the work (a class with ``exit_code = 1``:
    integration, task and output errors; anything that is not a Her2simError)."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, Her2simError):
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
    return EXIT_FAILURE


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


# ----------------------------------------------------------------------------- errors of each stage
# (defined here, re-exported from the module that raises them, so that every error class lives in one place)
class SBMLExportError(Her2simError, ValueError):
    """The model cannot be written as valid SBML (the message says which entry and why)."""


class CertifyError(InvalidArgument):
    """A bad ``certify`` argument of :func:`her2sim.solvers.batch.simulate_batch`."""


class ReadoutError(InvalidArgument):
    """A readout is malformed; the message names it and shows the grammar."""


class ScreenInputError(InvalidArgument):
    """A screen argument is malformed; the message names the argument, the value and the fix."""


class DoseResponseInputError(InvalidArgument):
    """Bad input to a dose-response or synergy function; the message names the argument and the fix."""


class SchedulerError(InvalidArgument):
    """``scheduler`` is not one of the accepted forms (:data:`her2sim.executors.SCHEDULER_HELP`)."""


class TaskError(Her2simError, RuntimeError):
    """A task of :func:`her2sim.executors.map_tasks` raised; names the task and the original error."""

    exit_code = 1  # a failure during the work, not bad input


class SweepSpecError(ModelFileError):
    """A sweep spec is malformed; ``problems`` lists each as ``"[entry] what to change"``."""

    def __init__(self, problems, path: str | None):
        self.problems = tuple(f"[{e}] {m}" if e else m for e, m in problems)
        text = (self.problems[0] if len(self.problems) == 1 else  # one problem: one line
                f"{len(self.problems)} problem(s) in sweep spec:\n  - " + "\n  - ".join(self.problems))
        super().__init__(text, path=path)

    def __reduce__(self):  # picklable for worker processes
        return (_rebuild_spec_error, (self.args[0], self.path, self.problems))


def _rebuild_spec_error(message: str, path, problems):
    err = SweepSpecError.__new__(SweepSpecError)
    Exception.__init__(err, message)
    err.path, err.entry, err.problems = path, None, problems
    return err


class SweepDirectoryError(Her2simError, ValueError):
    """The output directory holds something else than this sweep (or a different sweep)."""


class DamagedManifestError(SweepDirectoryError):
    """The sweep's manifest.json cannot be read (a crash of the file system, an edit by hand)."""


class PetabError(Her2simError, ValueError):
    """A PEtab problem is malformed or inconsistent; the message names the table, row and column."""


class ExploreInputError(InvalidArgument):
    """Invalid explorer controls (names the field and the fix)."""
