"""Read model, module, variant and drug files (TOML) into a validated :class:`ModelSpec`.

Files are data: they are read with :mod:`tomllib`, every expression goes through the
whitelisting parser in :mod:`her2sim.model.expr`, every quantity through pint. Composition:
``includes`` pulls in module files (each file once), variants and drugs are overlays applied in
the order given. All problems found are reported together, each naming file, entry and fix.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Iterable, Sequence

from . import expr as ex
from ..errors import ExpressionError, ModelFileError, UnitError, UnknownNameError
from .spec import (Compartment, Drug, Expression, ModelSpec, Observable, Parameter, Reaction, Species,
                   Variant)
from .units import (AMOUNT, CONCENTRATION, RATE, VOLUME, Quantity, internal_unit_label, parse_quantity,
                    parse_unit, to_internal, ureg)

SECTIONS = ("compartments", "species", "parameters", "expressions", "reactions", "observables")
HEADERS = ("model", "module", "variant", "background", "drug")
_ALLOWED_KEYS = {
    "compartments": {"size", "source", "description"},
    "species": {"initial", "compartment", "source", "description", "preequilibrate", "relative"},
    "parameters": {"value", "unit", "source", "description", "input"},
    "expressions": {"expr", "description"},
    "reactions": {"reactants", "products", "modifiers", "rate", "source", "description"},
    "observables": {"expr", "description"},
}
_HEADER_KEYS = {
    "model": {"name", "description", "includes", "variants", "drugs"},
    "module": {"name", "description", "includes"},
    "variant": {"name", "description", "includes", "remove_reactions"},
    "background": {"name", "description", "includes", "remove_reactions"},
    "drug": {"name", "aliases", "class", "targets", "mechanism", "dose_parameter", "molecular_weight",
             "source", "includes", "remove_reactions"},
}
#: top-level tables a model file may carry for other layers; the loader does not read them
#: (``virtual_trial``: what :mod:`her2sim.trial` drives, read by :mod:`her2sim.trial.hooks`)
MODEL_EXTRA_TABLES = ("virtual_trial",)
#: largest model/module/variant/drug file read (the largest bundled file is ~21 kB)
MAX_FILE_BYTES = 2**20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_RESERVED = set(ex.FUNCTIONS) | {"t", "time", "select_lt", "sign"}


def models_dir() -> Path:
    """Directory of the bundled model files (``models/`` in the source tree)."""
    source_tree = Path(str(resources.files("her2sim"))).parent.parent / "models"  # src/her2sim/ -> the tree
    if (source_tree / "default.toml").exists():
        return source_tree
    return Path(str(resources.files("her2sim") / "models"))


# ----------------------------------------------------------------------------- raw files
def read_toml(path: Path) -> dict:
    """Parse one TOML file; malformed files raise ModelFileError with the line."""
    try:
        if path.exists() and not path.is_file():
            raise ModelFileError("not a regular file (a device, folder or pipe); give a TOML file", path=str(path))
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)  # never more than the limit, whatever the file is
        if len(raw) > MAX_FILE_BYTES:
            raise ModelFileError(f"file is larger than the limit of {MAX_FILE_BYTES // 2**20} MiB for model files; "
                                 "split it into modules with includes = [...]", path=str(path))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ModelFileError("file not found; check the path or run `her2sim models` for bundled names",
                             path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read file ({exc})", path=str(path)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"malformed TOML: {exc}. Fix the syntax at that line.", path=str(path)) from None


def header_of(data: dict, path: Path) -> tuple[str, dict]:
    kinds = [k for k in HEADERS if k in data]
    if len(kinds) != 1:
        raise ModelFileError(
            f"a file needs exactly one header table among [{'], ['.join(HEADERS)}], found "
            f"{kinds or 'none'}", path=str(path))
    kind = kinds[0]
    head = data[kind]
    if not isinstance(head, dict):
        raise ModelFileError(f"[{kind}] must be a table", path=str(path))
    unknown = set(head) - _HEADER_KEYS[kind]
    if unknown:
        raise ModelFileError(f"unknown key(s) {sorted(unknown)} in [{kind}]; allowed: {sorted(_HEADER_KEYS[kind])}",
                             path=str(path), entry=kind)
    allowed_top = set(HEADERS) | set(SECTIONS) | ({"set", "extend"} if kind in ("variant", "background", "drug") else set())
    if kind == "model":
        allowed_top |= set(MODEL_EXTRA_TABLES)
    extra = set(data) - allowed_top
    if extra:
        raise ModelFileError(f"unknown top-level table(s) {sorted(extra)}; allowed: {sorted(allowed_top)}",
                             path=str(path))
    return kind, head


# ----------------------------------------------------------------------------- draft
@dataclass
class _Entry:
    table: dict
    origin: str


@dataclass
class _Draft:
    """Mutable working copy during composition; never escapes this module."""

    sections: dict = field(default_factory=lambda: {s: {} for s in SECTIONS})
    files: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    input_params: set = field(default_factory=set)

    def error(self, message: str, path: str | None = None, entry: str | None = None) -> None:
        self.errors.append(str(ModelFileError(message, path=path, entry=entry)))

    def add_sections(self, data: dict, path: Path) -> None:
        for section in SECTIONS:
            tables = data.get(section, {})
            if not isinstance(tables, dict):
                self.error(f"[{section}] must be a table of named entries", str(path), section)
                continue
            for name, table in tables.items():
                where = f"{section}.{name}"
                if not isinstance(table, dict):
                    self.error(f"entry must be a table, e.g. [{where}] with keys {sorted(_ALLOWED_KEYS[section])}",
                               str(path), where)
                    continue
                unknown = set(table) - _ALLOWED_KEYS[section]
                if unknown:
                    self.error(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(_ALLOWED_KEYS[section])}",
                               str(path), where)
                if not _NAME.match(name) or name in _RESERVED:
                    self.error(f"{name!r} is not a valid name: use letters, digits and _ (not starting with a "
                               f"digit) and not a reserved word ({', '.join(sorted(_RESERVED))})", str(path), where)
                    continue
                existing = self._find(name)
                if existing is not None:
                    sec, entry = existing
                    self.error(f"duplicate name {name!r}: already defined as {sec} in {entry.origin}; "
                               "rename one of them (names are shared across species, parameters, "
                               "expressions, reactions and observables)", str(path), where)
                    continue
                self.sections[section][name] = _Entry(dict(table), str(path))
                if section == "parameters" and table.get("input"):
                    self.input_params.add(name)

    def _find(self, name: str):
        for sec in SECTIONS:
            if name in self.sections[sec]:
                return sec, self.sections[sec][name]
        return None


def _resolve_include(base: Path, rel: str, root: Path) -> Path:
    candidate = (base.parent / rel)
    if candidate.exists():
        return candidate.resolve()
    alt = root / rel
    return alt.resolve() if alt.exists() else candidate


def _compose(path: Path, draft: _Draft, root: Path, seen: set, stack: tuple = ()) -> tuple[str, dict]:
    path = path.resolve()
    if path in stack:
        raise ModelFileError(f"include cycle: {' -> '.join(p.name for p in stack + (path,))}", path=str(path))
    data = read_toml(path)
    kind, head = header_of(data, path)
    if path in seen:
        return kind, head
    seen.add(path)
    includes = head.get("includes", [])
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise ModelFileError("includes must be a list of file paths", path=str(path), entry=f"{kind}.includes")
    for rel in includes:
        inc = _resolve_include(path, rel, root)
        if not inc.exists():
            raise ModelFileError(f"included file {rel!r} not found (looked next to this file and in {root})",
                                 path=str(path), entry=f"{kind}.includes")
        if not inc.is_file():
            raise ModelFileError(f"included {rel!r} is not a regular file (a device, folder or pipe); include "
                                 "TOML model files only", path=str(path), entry=f"{kind}.includes")
        _compose(inc, draft, root, seen, stack + (path,))
    draft.files.append(str(path))
    if kind in ("model", "module"):
        draft.add_sections(data, path)
    return kind, head


def _apply_overlay(data: dict, path: Path, kind: str, head: dict, draft: _Draft, root: Path, seen: set) -> None:
    """Apply a variant/background/drug file: includes, removals, set, extend, then additions."""
    for rel in head.get("includes", []):
        inc = _resolve_include(path, rel, root)
        if not inc.exists():
            draft.error(f"included file {rel!r} not found", str(path), f"{kind}.includes")
            continue
        _compose(inc, draft, root, seen)
    for name in head.get("remove_reactions", []):
        if name not in draft.sections["reactions"]:
            draft.error(f"cannot remove reaction {name!r}: no such reaction in the model; "
                        f"known: {', '.join(sorted(draft.sections['reactions'])[:30])}", str(path), f"{kind}.remove_reactions")
        else:
            del draft.sections["reactions"][name]
    draft.add_sections(data, path)
    for section, entries in data.get("set", {}).items():
        if section not in ("parameters", "species", "compartments"):
            draft.error(f"[set.{section}] is not supported; use set.parameters, set.species or set.compartments",
                        str(path), f"set.{section}")
            continue
        for name, change in entries.items():
            where = f"set.{section}.{name}"
            target = draft.sections[section].get(name)
            if target is None:
                draft.error(f"cannot set {section[:-1] if section != 'species' else 'species'} {name!r}: it is not in the "
                            f"model. {_close(name, draft.sections[section])}", str(path), where)
                continue
            if not isinstance(change, dict) or not ({"value", "initial", "size", "factor"} & set(change)):
                draft.error("give value (parameters), initial (species), size (compartments) or factor, plus source",
                            str(path), where)
                continue
            if "source" not in change or not str(change["source"]).strip():
                draft.error("every change needs a source = \"paper year\" or \"assumed: reason\"", str(path), where)
            table = dict(target.table)
            key = {"parameters": "value", "species": "initial", "compartments": "size"}[section]
            if "factor" in change:
                factor = change["factor"]
                if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 <= factor < 1e300:
                    draft.error(f"factor must be a non-negative number, got {factor!r}", str(path), where)
                    continue
                table["_factor"] = table.get("_factor", 1.0) * float(factor)
            else:
                table[key] = change[key] if key in change else change.get("value")
                table.pop("unit", None) if section == "parameters" and isinstance(table[key], str) else None
                if "unit" in change:
                    table["unit"] = change["unit"]
                table.pop("_factor", None)
            table["source"] = f"{change.get('source', '')} (set by {path.name})"
            draft.sections[section][name] = _Entry(table, str(path))
    for section, entries in data.get("extend", {}).items():
        if section != "expressions":
            draft.error(f"[extend.{section}] is not supported; only extend.expressions", str(path), f"extend.{section}")
            continue
        for name, change in entries.items():
            where = f"extend.expressions.{name}"
            target = draft.sections["expressions"].get(name)
            if target is None:
                draft.error(f"cannot extend expression {name!r}: not in the model. {_close(name, draft.sections['expressions'])}",
                            str(path), where)
                continue
            if not isinstance(change, dict) or "add" not in change:
                draft.error("write add = \"term\" to add a term to the expression", str(path), where)
                continue
            table = dict(target.table)
            table["expr"] = f"({table.get('expr', '0')}) + ({change['add']})"
            draft.sections["expressions"][name] = _Entry(table, f"{target.origin} + {path}")


def _close(name: str, pool: Iterable[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(pool), n=3)
    return f"Did you mean {', '.join(close)}?" if close else ""


# ----------------------------------------------------------------------------- building
def _stoich(items, where: str, path: str, draft: _Draft) -> tuple[tuple[str, float], ...]:
    out: dict[str, float] = {}
    if not isinstance(items, list):
        draft.error("reactants/products must be a list such as [\"HER2\", \"2 ATP\"]", path, where)
        return ()
    for item in items:
        if not isinstance(item, str):
            draft.error(f"stoichiometry entry {item!r} must be a string like \"HER2\" or \"2 HER2\"", path, where)
            continue
        parts = item.split()
        if not parts:
            draft.error("empty stoichiometry entry \"\"; write \"NAME\" or \"2 NAME\"", path, where)
            continue
        coeff, name = (1.0, parts[0]) if len(parts) == 1 else (None, parts[-1])
        if len(parts) == 2:
            try:
                coeff = float(parts[0])
            except ValueError:
                coeff = None
        if coeff is None or len(parts) > 2 or not (0 < coeff < 1e6):
            draft.error(f"cannot read stoichiometry entry {item!r}; write \"NAME\" or \"2 NAME\"", path, where)
            continue
        out[name] = out.get(name, 0.0) + coeff
    return tuple(out.items())


def _quantity(table: dict, key: str, where: str, path: str, draft: _Draft):
    raw = table.get(key)
    if raw is None:
        draft.error(f"missing {key} (a number with a unit, e.g. {key} = \"10 nM\")", path, where)
        return None
    try:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            unit = table.get("unit", "")
            q = Quantity(float(raw), parse_unit(str(unit), what=f"{where}.unit"))
        else:
            q = parse_quantity(raw, what=f"{where}.{key}")
            if "unit" in table and isinstance(raw, str):
                draft.error("give the unit either inside value (\"1 nM\") or as unit = \"nM\", not both", path, where)
    except UnitError as exc:
        draft.error(str(exc), path, where)
        return None
    factor = table.get("_factor", 1.0)
    q = q * factor
    if not math.isfinite(float(q.magnitude)):
        draft.error(f"{key} {raw!r} is not a finite number (too large, inf or nan); give a finite value", path, where)
        return None
    return q


def _build(draft: _Draft, name: str, description: str, drugs: list, variants: list) -> ModelSpec:
    S = draft.sections
    err = draft.error
    comps = []
    for cname, e in S["compartments"].items():
        q = _quantity(e.table, "size", f"compartments.{cname}", e.origin, draft)
        if q is None:
            continue
        if q.dimensionality != VOLUME:
            err(f"size {q:~} is not a volume; write e.g. size = \"1 pL\"", e.origin, f"compartments.{cname}")
            continue
        size_L = float(q.to("L").magnitude)
        if not size_L > 0:
            err(f"size {e.table.get('size')!r} must be > 0 (a volume such as \"1 pL\")", e.origin,
                f"compartments.{cname}")
            continue
        comps.append(Compartment(cname, size_L, str(e.table.get("source", ""))))
    comp_size = {c.name: c.size_L for c in comps}
    if not comps:
        comps.append(Compartment("cell", 1.0, "default compartment"))
        comp_size["cell"] = 1.0

    unit_of: dict[str, Quantity] = {}
    species = []
    for sname, e in S["species"].items():
        where = f"species.{sname}"
        if not str(e.table.get("source", "")).strip():
            err("missing source = \"paper year\" or \"assumed: reason\"", e.origin, where)
        cname = e.table.get("compartment", comps[0].name)
        if cname not in comp_size:
            err(f"unknown compartment {cname!r}; known: {sorted(comp_size)}", e.origin, where)
            continue
        q = _quantity(e.table, "initial", where, e.origin, draft)
        if q is None:  # reported; a placeholder keeps rate laws that use it from reporting it as unknown
            species.append(Species(sname, 0.0, cname, "", "", True, e.origin))
            unit_of[sname] = Quantity(1.0, "nM")
            continue
        if q.dimensionality == AMOUNT:
            q = q / ureg.Quantity(comp_size[cname], "L")
        if q.dimensionality != CONCENTRATION:
            err(f"initial {q:~} must be a concentration (\"100 nM\") or an amount (\"1e5 molecule\"), "
                "which is divided by the compartment size", e.origin, where)
            continue
        value = to_internal(q)
        if value < 0:
            err(f"negative initial amount {value:g} nM; amounts must be >= 0", e.origin, where)
        pre = e.table.get("preequilibrate", True)
        relative = e.table.get("relative", False)
        if not isinstance(relative, bool):
            err(f"relative must be true or false, got {relative!r}", e.origin, where)
            relative = False
        species.append(Species(sname, value, cname, str(e.table.get("source", "")),
                               str(e.table.get("description", "")), bool(pre), e.origin, relative=relative))
        unit_of[sname] = Quantity(1.0, "nM")

    params = []
    for pname, e in S["parameters"].items():
        where = f"parameters.{pname}"
        if not str(e.table.get("source", "")).strip():
            err("missing source = \"paper year\" or \"assumed: reason\"; every parameter needs one", e.origin, where)
        q = _quantity(e.table, "value", where, e.origin, draft)
        if q is None:
            continue
        value = to_internal(q)
        if value < 0:
            err(f"negative value {q:~}; rate constants and amounts must be >= 0", e.origin, where)
        written = str(e.table["value"]).split(maxsplit=1)[1] if isinstance(e.table.get("value"), str) and \
            len(str(e.table["value"]).split(maxsplit=1)) > 1 else str(e.table.get("unit", ""))
        params.append(Parameter(pname, value, written or "dimensionless", internal_unit_label(q),
                                str(e.table.get("source", "")), str(e.table.get("description", "")),
                                pname in draft.input_params, e.origin))
        unit_of[pname] = Quantity(1.0, q.units)

    known = set(unit_of)
    expr_nodes: dict[str, ex.Node] = {}
    for xname, e in S["expressions"].items():
        try:
            expr_nodes[xname] = ex.parse(e.table.get("expr", ""), where=f"{e.origin} [expressions.{xname}]")
        except ExpressionError as exc:
            draft.errors.append(str(exc))
    order = _topological(expr_nodes, known, draft, S["expressions"])
    expressions = []
    for xname in order:
        e = S["expressions"][xname]
        if ex.free_names(expr_nodes[xname]) - set(unit_of):
            q = Quantity(1.0, "")  # an unknown name, already reported: no unit analysis
        else:
            try:
                q = ex.evaluate_units(expr_nodes[xname], unit_of, where=f"{e.origin} [expressions.{xname}]")
            except UnitError as exc:
                draft.errors.append(str(exc))
                q = Quantity(1.0, "")
        unit_of[xname] = Quantity(1.0, q.units)
        expressions.append(Expression(xname, expr_nodes[xname], str(e.table["expr"]), internal_unit_label(q),
                                      str(e.table.get("description", "")), e.origin))
    names = known | set(expr_nodes)

    reactions = []
    species_names = {s.name for s in species}
    for rname, e in S["reactions"].items():
        where = f"reactions.{rname}"
        reac = _stoich(e.table.get("reactants", []), where, e.origin, draft)
        prod = _stoich(e.table.get("products", []), where, e.origin, draft)
        mods = e.table.get("modifiers", [])
        for sname, _ in reac + prod:
            if sname not in species_names:
                err(f"unknown species {sname!r} in reactants/products. {_close(sname, species_names)} "
                    "Declare it under [species] or fix the spelling", e.origin, where)
        for m in mods if isinstance(mods, list) else []:
            if m not in species_names:
                err(f"unknown modifier species {m!r}. {_close(m, species_names)}", e.origin, where)
        if "rate" not in e.table:
            err("missing rate = \"expression\" (in concentration per time, e.g. \"k * A * B\")", e.origin, where)
            continue
        node = _parse_checked(e.table["rate"], names, f"{e.origin} [{where}]", draft)
        if node is None:
            continue
        try:
            q = ex.evaluate_units(node, unit_of, where=f"{e.origin} [{where}]")
            if q.dimensionality != RATE:
                err(f"rate law {e.table['rate']!r} has unit {q.units:~}, but a rate must be a concentration per "
                    "time (e.g. nM/h); check the units of its parameters", e.origin, where)
        except UnitError as exc:
            draft.errors.append(str(exc))
        reactions.append(Reaction(rname, reac, prod, tuple(mods) if isinstance(mods, list) else (),
                                  node, str(e.table["rate"]), str(e.table.get("source", "")),
                                  str(e.table.get("description", "")), e.origin))

    observables = []
    for oname, e in S["observables"].items():
        where = f"observables.{oname}"
        node = _parse_checked(e.table.get("expr", ""), names, f"{e.origin} [{where}]", draft)
        if node is None:
            continue
        try:
            q = ex.evaluate_units(node, unit_of, where=f"{e.origin} [{where}]")
            unit = internal_unit_label(q)
        except UnitError as exc:
            draft.errors.append(str(exc))
            unit = "?"
        observables.append(Observable(oname, node, str(e.table.get("expr")), unit,
                                      str(e.table.get("description", "")), e.origin))
    for d in drugs:
        if d.dose_parameter not in {p.name for p in params}:
            err(f"dose_parameter {d.dose_parameter!r} is not a parameter of the model; declare "
                f"[parameters.{d.dose_parameter}] value = \"0 nM\", input = true", d.path, "drug")
    if draft.errors:
        if len(draft.errors) == 1:  # each problem already names its file and entry: one line
            raise ModelFileError(draft.errors[0])
        raise ModelFileError(f"{len(draft.errors)} problem(s) in model {name!r}:\n  - " + "\n  - ".join(draft.errors))
    return ModelSpec(name, description, tuple(comps), tuple(species), tuple(params), tuple(expressions),
                     tuple(reactions), tuple(observables), tuple(drugs), tuple(variants), tuple(draft.files))


def _parse_checked(text, names: set, where: str, draft: _Draft):
    try:
        node = ex.parse(text, where=where)
    except ExpressionError as exc:
        draft.errors.append(str(exc))
        return None
    missing = ex.free_names(node) - names
    for m in sorted(missing):
        draft.errors.append(f"{where}: unknown name {m!r} in {text!r}. {_close(m, names)} "
                            "Declare it as a species, parameter or expression, or fix the spelling.")
    return None if missing else node


def _topological(nodes: dict, known: set, draft: _Draft, entries: dict) -> list[str]:
    order, state = [], {}

    def visit(n, path):
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            draft.error(f"expressions refer to each other in a cycle: {' -> '.join(path + [n])}", entries[n].origin,
                        f"expressions.{n}")
            return
        state[n] = 1
        for dep in sorted(ex.free_names(nodes[n])):
            if dep in nodes:
                visit(dep, path + [n])
            elif dep not in known:
                draft.error(f"unknown name {dep!r} in {entries[n].table.get('expr')!r}. "
                            f"{_close(dep, known | set(nodes))} Declare it, fix the spelling, or (for a module "
                            "that uses names of other modules) check the model that includes it",
                            entries[n].origin, f"expressions.{n}")
        state[n] = 2
        order.append(n)

    for n in nodes:
        visit(n, [])
    return order


# ----------------------------------------------------------------------------- lookup
def find_named(kind: str, name: str, root: Path, extra_dirs: Sequence[Path] = ()) -> Path:
    folders = {"variant": ["variants", "backgrounds"], "drug": ["drugs"], "model": ["."]}[kind]
    candidates = {}
    for base in list(extra_dirs) + [root]:
        for folder in folders:
            d = (base / folder)
            if d.is_dir():
                for f in sorted(d.glob("*.toml")):
                    candidates.setdefault(f.stem.lower(), f)
    if kind == "drug":
        aliases = {}
        for base in [root] + list(extra_dirs):
            aliases.update(drug_aliases(base))
        key = aliases.get(name.lower(), name.lower())
        if key in candidates:
            return candidates[key]
    elif name.lower() in candidates:
        return candidates[name.lower()]
    raise UnknownNameError(kind, name, candidates,
                           fix=f"Run `her2sim {'drugs' if kind == 'drug' else 'models'}` to list them.")


def drug_aliases(root: Path | None = None) -> dict[str, str]:
    """Map every lower-case drug name and alias to its file stem."""
    root = root or models_dir()
    out: dict[str, str] = {}
    for f in sorted((root / "drugs").glob("*.toml")):
        data = read_toml(f)
        head = data.get("drug", {})
        out[str(head.get("name", f.stem)).lower()] = f.stem.lower()
        for a in head.get("aliases", []):
            out[str(a).lower()] = f.stem.lower()
    return out


def resolve_model_path(model: str | Path) -> Path:
    """A bundled model name (``default``) or a path to a TOML file."""
    p = Path(model)
    if p.suffix == ".toml" or p.exists():
        if not p.exists():
            raise ModelFileError("file not found; check the path or run `her2sim models`", path=str(p))
        return p.resolve()
    return find_named("model", str(model), models_dir())


#: file suffixes read as SBML (by :func:`her2sim.io.sbml_import.import_sbml`)
SBML_SUFFIXES = (".xml", ".sbml")


def is_sbml_path(model) -> bool:
    """True for a path ending in .xml or .sbml (an SBML model to import)."""
    return isinstance(model, (str, Path)) and Path(model).suffix.lower() in SBML_SUFFIXES


def load_model(model: str | Path = "default", *, variants: Sequence[str] = (), drugs: Sequence[str] = ()) -> ModelSpec:
    """Load, compose and validate a model.

    Parameters
    ----------
    model : bundled model name (``"default"``), path to a model/module TOML file, or path to an
        SBML file (``.xml``/``.sbml``, imported by :func:`her2sim.io.sbml_import.import_sbml`; no
        variants; ``drugs`` name constant SBML parameters to dose, e.g. in screens).
    variants : names of variant or background overlays, applied in order after the model's own.
    drugs : drug names or aliases (``"t-dm1"``) whose overlays are added (doses start at 0 nM), after
        those a model file lists in its ``drugs = [...]`` (e.g. a calibration model that doses ADCs).

    Raises
    ------
    ModelFileError listing every problem found; UnknownNameError for unknown variant/drug names.
    """
    if is_sbml_path(model):
        if variants:
            raise ModelFileError("variants apply to her2sim TOML models, not to an imported SBML model",
                                 path=str(model))
        from ..io.sbml_import import import_sbml

        return import_sbml(model, inputs=list(drugs))  # an SBML model's "drugs" are its input parameters
    path = resolve_model_path(model)
    root = models_dir()
    extra = [path.parent] if path.parent != root else []
    draft = _Draft()
    seen: set = set()
    kind, head = _compose(path, draft, root, seen)
    if kind not in ("model", "module"):
        raise ModelFileError(f"this is a {kind} file; load a model and apply it with variants=[...] / drugs=[...]",
                             path=str(path))
    applied: list[Variant] = []
    for vname in list(head.get("variants", [])) + list(variants):
        vpath = find_named("variant", vname, root, extra)
        data = read_toml(vpath)
        vkind, vhead = header_of(data, vpath)
        if vkind not in ("variant", "background"):
            raise ModelFileError(f"{vname!r} is a {vkind} file, not a variant", path=str(vpath))
        if any(v.name == vhead.get("name", vpath.stem) for v in applied):
            continue
        _apply_overlay(data, vpath, vkind, vhead, draft, root, seen)
        applied.append(Variant(str(vhead.get("name", vpath.stem)), str(vhead.get("description", "")), vkind, str(vpath)))
    drug_specs: list[Drug] = []
    file_drugs = head.get("drugs", []) if kind == "model" else []
    if not isinstance(file_drugs, list) or not all(isinstance(d, str) for d in file_drugs):
        raise ModelFileError("drugs must be a list of drug names such as [\"tdm1\"]", path=str(path), entry="model.drugs")
    for dname in list(file_drugs) + list(drugs):
        dpath = find_named("drug", dname, root, extra)
        if any(d.path == str(dpath) for d in drug_specs):
            continue
        data = read_toml(dpath)
        dkind, dhead = header_of(data, dpath)
        if dkind != "drug":
            raise ModelFileError(f"{dname!r} is a {dkind} file, not a drug", path=str(dpath))
        _apply_overlay(data, dpath, dkind, dhead, draft, root, seen)
        drug_specs.append(_drug_from_header(dhead, dpath))
    return _build(draft, str(head.get("name", path.stem)), str(head.get("description", "")), drug_specs, applied)


def _drug_from_header(head: dict, path: Path) -> Drug:
    name = str(head.get("name", path.stem))
    mw = head.get("molecular_weight")
    mw_value = None
    if mw is not None:
        q = parse_quantity(mw, what=f"{path} [drug.molecular_weight]")
        if q.dimensionality != (ureg("g") / ureg("mol")).dimensionality:
            raise ModelFileError(f"molecular_weight {mw!r} must be a mass per amount such as \"581 g/mol\"",
                                 path=str(path), entry="drug.molecular_weight")
        mw_value = float(q.to("g/mol").magnitude)
        if not (math.isfinite(mw_value) and mw_value > 0):
            raise ModelFileError(f"molecular_weight {mw!r} must be a finite mass > 0 such as \"581 g/mol\"",
                                 path=str(path), entry="drug.molecular_weight")
    for key in ("class", "targets", "mechanism", "source"):
        if key not in head:
            raise ModelFileError(f"[drug] needs {key}", path=str(path), entry="drug")
    return Drug(name, tuple(head.get("aliases", [])), str(head["class"]), tuple(head["targets"]),
                str(head["mechanism"]), str(head.get("dose_parameter", re.sub(r"\W", "_", name))), mw_value,
                str(head["source"]), str(path))


def check_file(path: str | Path) -> list[str]:
    """Validate one file of any kind; return the list of problems (empty when valid)."""
    p = Path(path)
    if is_sbml_path(p):
        from ..errors import Her2simError
        from ..io.sbml_import import import_sbml

        try:
            import_sbml(p)
        except Her2simError as exc:
            return [str(exc)]
        return []
    try:
        data = read_toml(p)
        kind, head = header_of(data, p)
        if kind == "module" and _models_including(p):
            for model in _models_including(p):  # a module is checked in the networks that use it
                load_model(model)
        elif kind in ("model", "module"):
            load_model(p)
        else:
            _check_overlay(p, kind, head, data)
    except (ModelFileError, UnknownNameError, UnitError, ExpressionError) as exc:
        return [line.strip().lstrip("- ") for line in str(exc).splitlines() if line.strip() and "problem(s) in model" not in line]
    return []


def _models_including(module: Path) -> list[Path]:
    """Bundled (or sibling) model files whose composition includes ``module``."""
    target = module.resolve()
    found = []
    for folder in {models_dir(), target.parent, target.parent.parent}:
        for f in sorted(Path(folder).glob("*.toml")):
            try:
                data = read_toml(f)
                kind, _ = header_of(data, f)
                if kind != "model":
                    continue
                draft = _Draft()
                _compose(f, draft, models_dir(), set())
            except ModelFileError:
                continue
            if str(target) in draft.files and f.resolve() not in found:
                found.append(f.resolve())
    return found


def _check_overlay(p: Path, kind: str, head: dict, data: dict) -> None:
    """Validate an overlay by applying it to the default model."""
    root = models_dir()
    draft = _Draft()
    seen: set = set()
    _, mhead = _compose(root / "default.toml", draft, root, seen)
    drugs = []
    if kind == "drug":
        drugs.append(_drug_from_header(head, p))
    _apply_overlay(data, p.resolve(), kind, head, draft, root, seen)
    _build(draft, "default+" + p.stem, "", drugs, [])


def list_bundled(root: Path | None = None) -> dict[str, list[tuple[str, str]]]:
    """Names and one-line descriptions of bundled models, modules, variants, backgrounds, drugs."""
    root = root or models_dir()
    out: dict[str, list[tuple[str, str]]] = {"models": [], "modules": [], "variants": [], "backgrounds": [], "drugs": []}
    for f in sorted(root.rglob("*.toml")):
        if "calibration" in f.relative_to(root).parts:
            continue  # models of calibration problems (PEtab folders) are loaded by path, not by name
        try:
            data = read_toml(f)
            kind, head = header_of(data, f)
        except ModelFileError:
            continue
        key = {"model": "models", "module": "modules", "variant": "variants", "background": "backgrounds",
               "drug": "drugs"}[kind]
        label = str(f.relative_to(root).with_suffix("")) if kind == "module" else str(head.get("name", f.stem))
        out[key].append((label, str(head.get("description", head.get("mechanism", ""))).strip().split("\n")[0]))
    return out


def list_drugs(root: Path | None = None) -> list[Drug]:
    """Every drug in the library, sorted by name (metadata only; the network is not loaded)."""
    root = root or models_dir()
    out = []
    for f in sorted((root / "drugs").glob("*.toml")):
        data = read_toml(f)
        kind, head = header_of(data, f)
        if kind == "drug":
            out.append(_drug_from_header(head, f))
    return sorted(out, key=lambda d: d.name.lower())
