"""Reading the virtual-trial data files (regimens, PK, populations, tumour, trials).

The files are TOML data like the model files (``models/README.md``): read with :mod:`tomllib`,
every quantity written with a pint unit and every value carrying a ``source``. Problems raise
:class:`~her2sim.errors.ModelFileError` naming the file, the entry and what to change.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import InvalidArgument, ModelFileError, UnitError, UnknownNameError
from ..model.load import models_dir, read_toml
from ..model.units import parse_quantity, ureg

#: sub-folders of ``models/`` holding each kind of trial file
FOLDERS = {"regimen": "regimens", "pk": "pk", "population": "populations", "tumour": "populations",
           "lines": "populations", "trial": "trials"}


def trial_models_dir() -> Path:
    """The bundled ``models/`` directory."""
    return models_dir()


def resolve(kind: str, name_or_path: str | Path) -> Path:
    """Path of a bundled file of ``kind`` by name (``"trastuzumab_q3w"``) or an explicit path."""
    if isinstance(name_or_path, bool) or not isinstance(name_or_path, (str, Path)) or not str(name_or_path).strip():
        raise InvalidArgument(f"{kind} must be a bundled name or a path to a TOML file, got {name_or_path!r}")
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists() or len(p.parts) > 1:
        if not p.exists():
            raise ModelFileError("file not found; check the path", path=str(p))
        return p
    folder = models_dir() / FOLDERS[kind]
    f = folder / f"{name_or_path}.toml"
    if not f.exists():
        known = [g.stem for g in folder.glob("*.toml")]
        raise UnknownNameError(kind, str(name_or_path), known, fix=f"Bundled {kind} files are in {folder}.")
    return f


def read(kind: str, name_or_path: str | Path) -> tuple[Path, dict, dict]:
    """(path, header table, whole document) of a file whose header table is ``[kind]``."""
    path = resolve(kind, name_or_path)
    data = read_toml(path)
    if kind not in data or not isinstance(data[kind], dict):
        raise ModelFileError(f"a {kind} file needs a [{kind}] header table; found {sorted(data)}", path=str(path))
    return path, data[kind], data


def require(table: dict, key: str, path: Path, entry: str, *, kind=str):
    """``table[key]`` of the expected Python type, else a ModelFileError naming file and entry."""
    if key not in table:
        raise ModelFileError(f"missing required key {key!r}", path=str(path), entry=entry)
    value = table[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ModelFileError(f"{key!r} must be a {kind.__name__}, got {value!r}", path=str(path), entry=entry)
    return value


def check_keys(table: dict, allowed: set, path: Path, entry: str) -> None:
    """Unknown keys are errors (a typo must not be silently ignored)."""
    unknown = set(table) - allowed
    if unknown:
        raise ModelFileError(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}", path=str(path),
                             entry=entry)


def require_source(table: dict, path: Path, entry: str) -> str:
    """Every value needs ``source = "..."`` (a citation or ``assumed: reason``)."""
    src = table.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ModelFileError("every value needs source = \"...\" (a citation, or \"assumed: reason\")",
                             path=str(path), entry=entry)
    return src


_M2 = re.compile(r"\bm2\b")


def quantity(text, unit: str, path: Path, entry: str) -> float:
    """Magnitude of ``text`` (e.g. ``"0.225 L/day"``) in ``unit`` (e.g. ``"L/h"``); dimension checked.

    ``m2`` is accepted for square metres (``"1000 mg/m2"``). A bare number must be dimensionless.
    """
    if isinstance(text, str):
        text = _M2.sub("m**2", text)
    try:
        q = parse_quantity(text, what=f"{entry}")
        target = ureg.Unit(unit) if unit else ureg.dimensionless
        if q.dimensionality != target.dimensionality:
            raise UnitError(f"{text!r} has dimension {q.dimensionality}, expected {unit or 'dimensionless'} "
                            f"(e.g. '1 {unit}')" if unit else f"{text!r} must be dimensionless")
        return float(q.to(target).magnitude)
    except UnitError as exc:
        raise ModelFileError(str(exc), path=str(path), entry=entry) from None


def value_with_source(table: dict, key: str, unit: str, path: Path, entry: str) -> float:
    """A sub-table ``{value = "...", source = "..."}`` converted to ``unit``."""
    sub = table.get(key)
    if not isinstance(sub, dict):
        raise ModelFileError(f"{key!r} must be a table {{value = \"...\", source = \"...\"}}", path=str(path),
                             entry=f"{entry}.{key}")
    check_keys(sub, {"value", "source", "description", "cv"}, path, f"{entry}.{key}")
    require_source(sub, path, f"{entry}.{key}")
    if "value" not in sub:
        raise ModelFileError("missing 'value'", path=str(path), entry=f"{entry}.{key}")
    return quantity(sub["value"], unit, path, f"{entry}.{key}")
