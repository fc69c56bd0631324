"""What the virtual-trial layer drives in a model: the ``[virtual_trial]`` table of a model file.

The exposure-response tables (:mod:`her2sim.trial.exposure`) set a background's HER2 level, ER
status, PI3K variant and host (CD16A genotype, PD-L1 status), read the tumour cells' per-capita
rate, separate the kill channels and run the bystander reporter. The names and levels they use are
declared in the model file, not in Python, so a trial runs on any model that declares them::

    [virtual_trial]
    tumour_cells = "viable_cells"                 # species: per-capita rate = net growth (1/h)
    [virtual_trial.her2]                          # cohort feature "her2" -> parameter x level
    parameter = "HER2_expression"
    levels = { high = 1.0, low = 0.05, zero = 0.01 }
    lower = { high = "low", low = "zero", zero = "zero" }   # HER2 level of a lesion's resistant clone
    source = "..."
    [virtual_trial.er]                            # HR-negative: parameter x negative
    parameter = "ER_expression"
    negative = 0.01
    source = "..."
    [virtual_trial.pi3k]                          # PI3K background -> parameter-only variants
    wt = []
    pik3ca = ["pik3ca_h1047r"]
    pten_loss = ["pten_loss"]
    [virtual_trial.hosts.cd16a]                   # host settings, set (not multiplied)
    parameter = "CD16A_158V_fraction"
    levels = { FF = 0.0, VF = 0.5, VV = 1.0 }
    source = "..."
    [virtual_trial.hosts.pdl1]
    parameter = "PDL1_level"
    levels = { positive = 1.0, negative = 0.3 }
    source = "..."
    [virtual_trial.in_vivo.NK_activity]           # parameter values in vivo
    value = 1.0
    source = "..."
    [virtual_trial.kill]                          # kill ceilings <dose parameter><suffix> by drug class
    payload = { class = "antibody-drug conjugate", suffix = "_payload_kmax" }
    chemo = { class = "chemotherapy", suffix = "_kmax" }
    [virtual_trial.bystander]                     # reporter population of the bystander run
    cells = "viable_cells_her2low"
    expression = "HER2_low_cells_expression"
    proliferation = "k_prolif_her2low"
    death = "k_apo_her2low"

:func:`load_hooks` reads and checks the table's form (cheap: one TOML file);
:meth:`TrialHooks.check_network` checks every name against the compiled network. Both raise
:class:`~her2sim.errors.ModelFileError` naming the file and the key, before any integration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelFileError
from ..model.load import read_toml, resolve_model_path

#: the model file's table read here
TABLE = "virtual_trial"
#: levels a cohort can have (:mod:`her2sim.trial.population`): the tables must cover them
COHORT_LEVELS = {"her2": ("high", "low"), "pi3k": ("wt", "pik3ca", "pten_loss"), "cd16a": ("FF", "VF", "VV"),
                 "pdl1": ("positive", "negative")}
_KEYS = {"description", "tumour_cells", "her2", "er", "pi3k", "hosts", "in_vivo", "kill", "bystander"}


@dataclass(frozen=True)
class TrialHooks:
    """A model's virtual-trial declarations (``[virtual_trial]``; see the module docstring).

    Levels are dimensionless: ``her2_levels`` and ``er_negative`` multiply the model's parameter
    values, ``hosts`` and ``in_vivo`` values replace them. Tuples of pairs (hashable, picklable).
    """

    path: str
    tumour_cells: str
    her2_parameter: str
    her2_levels: tuple          # ((level, factor), ...)
    her2_lower: tuple           # ((level, level of the resistant clone), ...)
    er_parameter: str
    er_negative: float
    pi3k: tuple                 # ((background, (variant, ...)), ...)
    hosts: tuple                # ((host feature, parameter, ((level, value), ...)), ...) cd16a then pdl1
    in_vivo: tuple              # ((parameter, value), ...)
    kill: tuple                 # ((channel, drug class, suffix), ...) payload then chemo
    bystander_cells: str
    bystander_expression: str
    bystander_proliferation: str
    bystander_death: str

    def her2_factor(self, level: str) -> float:
        return dict(self.her2_levels)[level]

    def lower_clone(self, level: str) -> str:
        return dict(self.her2_lower)[level]

    def pi3k_variants(self, background: str) -> tuple:
        return dict(self.pi3k)[background]

    def host_levels(self, feature: str) -> dict:
        """{level: value} of a host feature ("cd16a" or "pdl1")."""
        return next(dict(levels) for f, _p, levels in self.hosts if f == feature)

    def host_parameter(self, feature: str) -> str:
        return next(p for f, p, _levels in self.hosts if f == feature)

    def kill_class(self, channel: str) -> tuple[str, str]:
        """(drug class, parameter suffix) of the kill channel "payload" or "chemo"."""
        return next((c, s) for ch, c, s in self.kill if ch == channel)

    def check_network(self, network) -> None:
        """Raise ModelFileError (file and key) unless every declared species and parameter is in
        ``network`` (a compiled :class:`~her2sim.model.network.Network` of this model)."""
        species, params = set(network.species_names), set(network.parameter_names)
        need = [("tumour_cells", self.tumour_cells, species), ("bystander.cells", self.bystander_cells, species),
                ("her2.parameter", self.her2_parameter, params), ("er.parameter", self.er_parameter, params),
                ("bystander.expression", self.bystander_expression, params),
                ("bystander.proliferation", self.bystander_proliferation, params),
                ("bystander.death", self.bystander_death, params)]
        need += [(f"hosts.{f}.parameter", p, params) for f, p, _lv in self.hosts]
        need += [(f"in_vivo.{p}", p, params) for p, _v in self.in_vivo]
        for key, name, pool in need:
            if name not in pool:
                what = "species" if pool is species else "parameter"
                raise ModelFileError(f"{name!r} is not a {what} of the model; name one of its {what} "
                                     f"(`her2sim models --parameters`)", path=self.path, entry=f"{TABLE}.{key}")


def _fail(message: str, path: Path, key: str):
    raise ModelFileError(message, path=str(path), entry=f"{TABLE}.{key}" if key else TABLE)


def _table(parent: dict, key: str, path: Path, where: str) -> dict:
    v = parent.get(key)
    if not isinstance(v, dict):
        _fail(f"missing table [{TABLE}.{where}] (see her2sim/trial/hooks.py for its form)", path, where)
    return v


def _name(parent: dict, key: str, path: Path, where: str) -> str:
    v = parent.get(key)
    if not isinstance(v, str) or not v.strip():
        _fail(f"{key} must name a model species or parameter, e.g. {key} = \"viable_cells\"; got {v!r}", path, where)
    return v


def _number(v, path: Path, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        _fail(f"must be a finite number >= 0 (dimensionless), got {v!r}", path, where)
    return float(v)


def _source(parent: dict, path: Path, where: str) -> None:
    if not isinstance(parent.get("source"), str) or not parent["source"].strip():
        _fail("needs source = \"...\" (a citation, or \"assumed: reason\")", path, where)


def _levels(parent: dict, path: Path, where: str, cover) -> tuple:
    lv = _table(parent, "levels", path, f"{where}.levels")
    out = tuple((str(k), _number(v, path, f"{where}.levels.{k}")) for k, v in lv.items())
    missing = [c for c in cover if c not in lv]
    if missing:
        _fail(f"levels must cover the cohort's {list(cover)}; missing {missing}", path, f"{where}.levels")
    return out


def _check_keys(table: dict, allowed: set, path: Path, where: str) -> None:
    unknown = set(table) - allowed
    if unknown:
        _fail(f"unknown key(s) {sorted(unknown)}; allowed: {sorted(allowed)}", path, where)


def load_hooks(model: str | Path = "default") -> TrialHooks:
    """The ``[virtual_trial]`` table of ``model`` (bundled name or path to a model TOML file),
    checked for form; names are checked against the network by :meth:`TrialHooks.check_network`."""
    if isinstance(model, bool) or not isinstance(model, (str, Path)) or not str(model).strip():
        from ..errors import InvalidArgument

        raise InvalidArgument(f"model must be a bundled model name or a path to a model TOML file, got {model!r}")
    path = resolve_model_path(model)
    data = read_toml(path)
    if "model" not in data:
        raise ModelFileError("not a model file (no [model] table); trials run on a model such as models/default.toml",
                             path=str(path))
    vt = data.get(TABLE)
    if not isinstance(vt, dict):
        raise ModelFileError(f"this model declares no [{TABLE}] table, so trials cannot run on it: add one naming "
                             "the parameters and species the trial layer drives (see models/default.toml)",
                             path=str(path))
    _check_keys(vt, _KEYS, path, "")
    her2 = _table(vt, "her2", path, "her2")
    _check_keys(her2, {"parameter", "levels", "lower", "source"}, path, "her2")
    _source(her2, path, "her2")
    levels = _levels(her2, path, "her2", COHORT_LEVELS["her2"])
    lower = _table(her2, "lower", path, "her2.lower")
    known = [k for k, _ in levels]
    for k in known:
        if lower.get(k) not in known:
            _fail(f"lower.{k} must be one of the levels {known} (the HER2 level of a {k} lesion's resistant "
                  f"clone), got {lower.get(k)!r}", path, "her2.lower")
    er = _table(vt, "er", path, "er")
    _check_keys(er, {"parameter", "negative", "source"}, path, "er")
    _source(er, path, "er")
    pi3k = _table(vt, "pi3k", path, "pi3k")
    _check_keys(pi3k, set(COHORT_LEVELS["pi3k"]), path, "pi3k")
    for b in COHORT_LEVELS["pi3k"]:
        v = pi3k.get(b)
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            _fail(f"{b} must be a list of variant names (e.g. {b} = []), got {v!r}", path, f"pi3k.{b}")
    hosts_t = _table(vt, "hosts", path, "hosts")
    _check_keys(hosts_t, {"cd16a", "pdl1"}, path, "hosts")
    hosts = []
    for f in ("cd16a", "pdl1"):
        h = _table(hosts_t, f, path, f"hosts.{f}")
        _check_keys(h, {"parameter", "levels", "source"}, path, f"hosts.{f}")
        _source(h, path, f"hosts.{f}")
        hosts.append((f, _name(h, "parameter", path, f"hosts.{f}"), _levels(h, path, f"hosts.{f}", COHORT_LEVELS[f])))
    iv = vt.get("in_vivo", {})
    if not isinstance(iv, dict):
        _fail("in_vivo must be a table of {value = ..., source = \"...\"} per parameter", path, "in_vivo")
    in_vivo = []
    for p, t in iv.items():
        if not isinstance(t, dict) or "value" not in t:
            _fail("must be {value = ..., source = \"...\"}", path, f"in_vivo.{p}")
        _check_keys(t, {"value", "source"}, path, f"in_vivo.{p}")
        _source(t, path, f"in_vivo.{p}")
        in_vivo.append((str(p), _number(t["value"], path, f"in_vivo.{p}.value")))
    kill_t = _table(vt, "kill", path, "kill")
    _check_keys(kill_t, {"payload", "chemo"}, path, "kill")
    kill = []
    for ch in ("payload", "chemo"):
        k = _table(kill_t, ch, path, f"kill.{ch}")
        _check_keys(k, {"class", "suffix"}, path, f"kill.{ch}")
        kill.append((ch, _name(k, "class", path, f"kill.{ch}"), _name(k, "suffix", path, f"kill.{ch}")))
    by = _table(vt, "bystander", path, "bystander")
    _check_keys(by, {"cells", "expression", "proliferation", "death"}, path, "bystander")
    return TrialHooks(
        str(path), _name(vt, "tumour_cells", path, "tumour_cells"), _name(her2, "parameter", path, "her2"), levels,
        tuple((k, str(lower[k])) for k in known), _name(er, "parameter", path, "er"),
        _number(er.get("negative"), path, "er.negative"),
        tuple((b, tuple(pi3k[b])) for b in COHORT_LEVELS["pi3k"]), tuple(hosts), tuple(in_vivo), tuple(kill),
        *(_name(by, k, path, "bystander") for k in ("cells", "expression", "proliferation", "death")))
