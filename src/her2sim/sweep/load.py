"""Sweep spec files -> validated :class:`~her2sim.sweep.spec.SweepSpec`: reading TOML or a dict,
checking every table against the model (drugs, variants, parameters, units), building the axes,
sample block, readouts and solver settings, and reporting every problem at once.

The spec objects, sampling and readout grammar live in :mod:`her2sim.sweep.spec`, which re-exports
:func:`load_sweep_spec`.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import math
import tomllib
from pathlib import Path
from typing import Mapping

import numpy as np

from ..errors import Her2simError, InvalidArgument, ModelFileError, SweepSpecError, UnitError, UnknownNameError
from ..validate import MAX_AXIS_VALUES, MAX_CHUNK, MAX_CONDITIONS
from .spec import (DEFAULT_CHUNK, LHS_MAX_POINTS, SAMPLE_METHODS,
                         Axis, Readout, SampledParameter, Samples, Solver, SweepSpec,
                         parse_readout)


#: the keys each table of a spec file may hold
_KEYS = {
    "": {"sweep", "variants", "drugs", "parameters", "samples", "solver"},
    "sweep": {"name", "description", "model", "time", "readouts", "chunk"},
    "variants": {"sets", "labels"},
    "drug": {"doses", "start", "stop", "num", "scale", "zero"},
    "parameter": {"value", "values", "start", "stop", "num", "scale", "zero", "relative"},
    "samples": {"method", "n", "seed", "parameters"},
    "sampled": {"start", "stop", "scale", "relative"},
    "solver": {"method", "rtol", "atol", "max_steps", "output_step", "preequilibrate"},
}


def load_sweep_spec(source: str | Path | Mapping | SweepSpec, *, chunk: int | None = None) -> SweepSpec:
    """Read and validate a sweep spec.

    Parameters
    ----------
    source : path to a TOML file, a dict with the same structure, or a SweepSpec (returned,
        with ``chunk`` applied).
    chunk : conditions per chunk, overriding the spec's ``[sweep] chunk``.

    Raises
    ------
    SweepSpecError (a ModelFileError, hence ValueError) listing every problem, each with its
    entry and the fix: unknown keys, drugs, variants, parameters and observables (with close
    matches), negative doses, unreadable or wrong units, bad ranges, samples and solver settings.
    """
    if isinstance(source, SweepSpec):
        return source if chunk is None else dataclasses.replace(source, chunk=_check_chunk(chunk, None))
    if isinstance(source, Mapping):
        return _build(dict(source), None, "", chunk)
    if not isinstance(source, (str, Path)):
        raise InvalidArgument(f"spec must be a path, a dict or a SweepSpec, got {type(source).__name__}")
    path = Path(source)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError("sweep spec not found; check the path", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read the sweep spec ({exc})", path=str(path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ModelFileError(f"malformed TOML: {exc}. Fix the syntax at that line.", path=str(path)) from None
    return _build(data, path, text, chunk)


def _check_chunk(chunk, problems) -> int:
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 1 <= chunk <= MAX_CHUNK:
        message = (f"chunk must be a whole number >= 1 and at most {MAX_CHUNK:,} (conditions per chunk, all held in "
                   f"memory at once), got {chunk!r}; e.g. chunk = 2000")
        if problems is None:
            raise InvalidArgument(message)
        problems.add("sweep.chunk", message)
        return DEFAULT_CHUNK
    return chunk


class _Problems:
    def __init__(self, path: Path | None):
        self.path = str(path) if path else None
        self.items: list[tuple[str, str]] = []

    def add(self, entry: str, message: str) -> None:
        self.items.append((entry, message))

    def check(self) -> None:
        if self.items:
            raise SweepSpecError(self.items, self.path)


def _unknown_keys(table: Mapping, allowed: set, entry: str, problems: _Problems) -> None:
    for key in sorted(set(table) - allowed):
        close = difflib.get_close_matches(key, sorted(allowed), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        where = f"{entry}.{key}" if entry else key
        problems.add(where, f"unknown key {key!r}.{hint} Allowed here: {', '.join(sorted(allowed))}")


def _table(data: Mapping, key: str, problems: _Problems) -> dict:
    value = data.get(key, {})
    if not isinstance(value, dict):
        problems.add(key, f"[{key}] must be a table")
        return {}
    return value


def _number(value, entry: str, problems: _Problems, *, positive: bool = False):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (
            positive and value <= 0) or value < 0:
        problems.add(entry, f"expected a {'positive' if positive else 'non-negative'} number, got {value!r}")
        return None
    return float(value)


def _build(data: dict, path: Path | None, text: str, chunk_override) -> SweepSpec:
    from ..model.load import models_dir, resolve_model_path
    from ..solvers.solve import hours

    problems = _Problems(path)
    _unknown_keys(data, _KEYS[""], "", problems)
    head = _table(data, "sweep", problems)
    if "sweep" not in data:
        problems.add("sweep", "a sweep spec needs a [sweep] table with model and readouts, e.g. "
                              "[sweep] model = \"default\", readouts = [\"pAKT@24h\"]")
    _unknown_keys(head, _KEYS["sweep"], "sweep", problems)
    name = str(head.get("name", path.stem if path else "sweep"))
    chunk = _check_chunk(chunk_override if chunk_override is not None else head.get("chunk", DEFAULT_CHUNK), problems)

    # --- the model ---
    model_text = head.get("model", "default")
    model_path = None
    if not isinstance(model_text, str) or not model_text.strip():
        problems.add("sweep.model", f"model must be a bundled name such as \"default\" or a path, got {model_text!r}")
    else:
        candidate = Path(model_text)
        if path is not None and not candidate.is_absolute() and (candidate.suffix == ".toml" or "/" in model_text):
            candidate = path.parent / candidate
        try:
            model_path = resolve_model_path(candidate if candidate.suffix == ".toml" else model_text)
        except (ModelFileError, UnknownNameError) as exc:
            problems.add("sweep.model", str(exc))
    time_h = None
    if "time" in head:
        try:
            time_h = hours(head["time"], what="[sweep] time")
            if time_h <= 0:
                problems.add("sweep.time", f"time must be > 0, got {head['time']!r}; e.g. time = \"72 h\"")
        except (UnitError, ValueError) as exc:
            problems.add("sweep.time", str(exc))

    # --- variant sets ---
    vtable = _table(data, "variants", problems)
    _unknown_keys(vtable, _KEYS["variants"], "variants", problems)
    sets = vtable.get("sets", [[]])
    if not isinstance(sets, list) or not sets or not all(
            isinstance(s, list) and all(isinstance(v, str) for v in s) for s in sets):
        problems.add("variants.sets", "sets must be a non-empty list of lists of variant names, e.g. "
                                      "sets = [[], [\"pik3ca_h1047r\"], [\"pten_loss\", \"her3_high\"]]")
        sets = [[]]
    variant_sets = tuple(tuple(s) for s in sets)
    labels = vtable.get("labels", ["+".join(s) or "none" for s in variant_sets])
    if not isinstance(labels, list) or len(labels) != len(variant_sets) or not all(isinstance(x, str) for x in labels):
        problems.add("variants.labels", f"labels must be a list of {len(variant_sets)} strings, one per set")
        labels = ["+".join(s) or "none" for s in variant_sets]
    if len(set(labels)) != len(labels):
        problems.add("variants.sets", "two variant sets have the same label; each set must differ (or give labels)")

    # --- drugs (names resolved against the library before loading the model) ---
    dtable = _table(data, "drugs", problems)
    drug_names = []
    extra_dirs = [model_path.parent] if model_path is not None and model_path.parent != models_dir() else []
    for dname in dtable:
        try:
            _drug_file(dname, extra_dirs)
            drug_names.append(dname)
        except UnknownNameError as exc:
            problems.add(f"drugs.{dname}", str(exc))
    for i, vset in enumerate(variant_sets):
        for v in vset:
            try:
                _variant_file(v, extra_dirs)
            except UnknownNameError as exc:
                problems.add(f"variants.sets[{i}]", str(exc))
    problems.check()  # names must be right before the model can be loaded

    from ..model.load import load_model
    from ..model.network import compile_network

    specs = []
    try:
        for vset in variant_sets:
            specs.append(load_model(model_path, variants=vset, drugs=drug_names))
    except Her2simError as exc:
        problems.add("sweep.model", f"cannot load the model: {exc}")
        problems.check()
    network = compile_network(specs[0])
    axes: list[Axis] = []
    dose_axes: list[Axis] = []  # last: a chunk then holds every dose of a parameter set (one rest state)
    if "variants" in data:
        axes.append(Axis("variant", "variant", len(variant_sets), tuple(labels), sets=variant_sets))

    drugs = []
    for dname in drug_names:
        entry = dtable[dname]
        where = f"drugs.{dname}"
        if isinstance(entry, list):
            entry = {"doses": entry}
        if not isinstance(entry, dict):
            problems.add(where, "give doses = [\"0 nM\", \"100 nM\"] or start/stop/num/scale")
            continue
        _unknown_keys(entry, _KEYS["drug"], where, problems)
        drug = network.spec.drug(dname)
        values = _grid(entry, where, problems, lambda v, w, _d=dname: _dose(network, _d, v), "doses")
        if values is None:
            continue
        drugs.append((dname, drug.dose_parameter))
        dose_axes.append(Axis(dname, "dose", len(values), tuple(values), target=drug.dose_parameter, unit="nM"))

    # --- parameters: fixed values and grid axes ---
    dose_params = {d.dose_parameter for d in network.spec.drugs}
    ptable = _table(data, "parameters", problems)
    fixed, relative = [], set()
    taken = {a.name for a in dose_axes} | {"variant", "sample"}
    for pname, entry in ptable.items():
        where = f"parameters.{pname}"
        if not _parameter_ok(network, pname, where, dose_params, problems):
            continue
        if not isinstance(entry, dict):
            entry = {"values": entry} if isinstance(entry, list) else {"value": entry}
        _unknown_keys(entry, _KEYS["parameter"], where, problems)
        rel = entry.get("relative", False)
        if not isinstance(rel, bool):
            problems.add(f"{where}.relative", f"relative must be true or false, got {rel!r}")
            continue
        convert = _converter(network, pname, rel)
        if "value" in entry:
            if set(entry) & {"values", "start", "stop", "num"}:
                problems.add(where, "give either value (fixed for every condition) or values/start..stop (an axis)")
                continue
            try:
                fixed.append((pname, convert(entry["value"], f"{where}.value")))
            except (UnitError, ValueError) as exc:
                problems.add(f"{where}.value", str(exc))
        else:
            values = _grid(entry, where, problems, convert, "values")
            if values is None:
                continue
            if pname in taken:
                problems.add(where, f"axis name {pname!r} is already used; rename the drug or parameter")
                continue
            unit = "x model value" if rel else network.spec.parameter(pname).internal_unit
            axes.append(Axis(pname, "parameter", len(values), tuple(values), target=pname, unit=unit, relative=rel))
        if rel:
            relative.add(pname)

    # --- the sample block ---
    samples = None
    stable = _table(data, "samples", problems)
    if stable:
        samples = _samples(stable, network, dose_params, {a.name for a in axes + dose_axes} | {n for n, _ in fixed}, relative,
                           problems)
        if samples is not None:
            axes.append(Axis("sample", "sample", samples.size))
    axes += dose_axes

    # --- solver ---
    solver = _solver(_table(data, "solver", problems), problems)

    # --- readouts (times resolved against the end time) ---
    raw = head.get("readouts")
    readouts: list[Readout] = []
    if not isinstance(raw, list) or not raw:
        problems.add("sweep.readouts", "readouts must be a non-empty list such as [\"pAKT@24h\", \"auc:pERK\", "
                                       "\"viable_cells@72h\"]")
        raw = []
    parsed = []
    for item in raw:
        try:
            parsed.append(parse_readout(item))
        except ValueError as exc:
            problems.add("sweep.readouts", str(exc))
    timed = [t for r in parsed for t in (r.t0, r.t1) if t is not None]
    if time_h is None:
        time_h = max(timed, default=0.0)
        if time_h <= 0 and any(r.kind in ("auc", "mean") or (r.kind == "at" and r.t1 is None) for r in parsed):
            problems.add("sweep.time", "give time = \"72 h\" (the simulated time) or times in the readouts")
    known = network.observable_names + network.species_names
    for r in parsed:
        if r.target not in known:
            close = difflib.get_close_matches(r.target, known, n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            problems.add("sweep.readouts", f"readout {r.label!r}: unknown observable or species {r.target!r}.{hint} "
                                           "List them with `her2sim models --observables`.")
            continue
        r = r.resolved(time_h) if time_h > 0 else r
        if r.t1 is not None and r.t1 > time_h + 1e-12:
            problems.add("sweep.readouts", f"readout {r.label!r} is at {r.t1:g} h, after the end time {time_h:g} h; "
                                           "raise [sweep] time or change the readout")
        if any(q.label == r.label for q in readouts):
            problems.add("sweep.readouts", f"readout {r.label!r} is listed twice")
        readouts.append(r)
    problems.check()
    n_conditions = math.prod([a.size for a in axes])
    if n_conditions > MAX_CONDITIONS:
        shown = f"{n_conditions:,}" if n_conditions < 10**15 else f"{float(n_conditions):.3g}"
        problems.add("sweep", f"the axes give {shown} conditions, above the limit of {MAX_CONDITIONS:,} per sweep "
                              "(about a day on 32 cores at ~1,000 conditions/s per core); split the sweep into "
                              "several spec files (e.g. one per variant set or dose range), each run with "
                              "--scheduler on its own")
        problems.check()

    digest = hashlib.sha256()
    for s in specs:
        files = list(s.files) + [v.path for v in s.variants] + [d.path for d in s.drugs]
        for f in sorted(set(files)):
            digest.update(Path(f).read_bytes())
    return SweepSpec(name, str(head.get("description", "")), str(model_path), float(time_h), variant_sets,
                     tuple(axes), samples, tuple(fixed), frozenset(relative), tuple(drugs), tuple(readouts), solver,
                     chunk, str(path.resolve()) if path else "", digest.hexdigest(), text)


def _drug_file(name: str, extra_dirs) -> Path:
    from ..model.load import find_named, models_dir

    return find_named("drug", name, models_dir(), extra_dirs)


def _variant_file(name: str, extra_dirs) -> Path:
    from ..model.load import find_named, models_dir

    return find_named("variant", name, models_dir(), extra_dirs)


def _parameter_ok(network, name: str, where: str, dose_params: set, problems: _Problems) -> bool:
    if name not in network.parameter_names:
        close = difflib.get_close_matches(name, network.parameter_names, n=3)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        problems.add(where, f"unknown parameter {name!r}.{hint} See `her2sim models --parameters`.")
        return False
    if name in dose_params:
        problems.add(where, f"{name!r} is a drug dose; vary it under [drugs.NAME] doses = [...] instead")
        return False
    return True


def _dose(network, drug: str, value) -> float:
    from ..solvers.solve import dose_nM

    if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
        raise UnitError(f"dose {value!r} is negative; doses must be >= 0 (0 = no drug)")
    return dose_nM(network, drug, value)[1]


def _converter(network, name: str, relative: bool):
    """value -> internal units (or a factor when relative); raises UnitError/InvalidArgument with the fix."""
    from ..solvers.solve import parameter_value

    def convert(value, where: str) -> float:
        if not relative:
            return parameter_value(network, name, value)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise InvalidArgument(f"with relative = true, values are factors of the model's value (numbers >= 0), "
                             f"got {value!r}")
        return float(value)

    return convert


def _grid(entry: dict, where: str, problems: _Problems, convert, list_key: str):
    """Values of an axis: an explicit list or start/stop/num/scale (+ zero = true to prepend 0)."""
    def conv(v, w):
        try:
            return float(f"{convert(v, w):.12g}")  # unit conversion round-off: 10 uM is 10000 nM, not 9999.999999999998
        except (UnitError, ValueError) as exc:
            problems.add(w, str(exc))
            return None

    if list_key in entry:
        if set(entry) & {"start", "stop", "num", "scale"}:
            problems.add(where, f"give either {list_key} = [...] or start/stop/num/scale, not both")
            return None
        raw = entry[list_key]
        if isinstance(raw, dict):  # doses = { start = ..., stop = ..., num = ... }
            _unknown_keys(raw, {"start", "stop", "num", "scale", "zero"}, f"{where}.{list_key}", problems)
            return _grid(raw, f"{where}.{list_key}", problems, convert, list_key)
        if not isinstance(raw, list) or not raw:
            problems.add(f"{where}.{list_key}", f"{list_key} must be a non-empty list, e.g. {list_key} = [\"0 nM\", "
                                                "\"100 nM\"]")
            return None
        values = [conv(v, f"{where}.{list_key}[{i}]") for i, v in enumerate(raw)]
        return None if any(v is None for v in values) else values
    missing = [k for k in ("start", "stop", "num") if k not in entry]
    if missing:
        problems.add(where, f"missing {', '.join(missing)}: give {list_key} = [...] or start, stop, num "
                            "(and scale = \"log\" or \"linear\")")
        return None
    start, stop = conv(entry["start"], f"{where}.start"), conv(entry["stop"], f"{where}.stop")
    num, scale = entry["num"], entry.get("scale", "linear")
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        problems.add(f"{where}.num", f"num must be a whole number >= 1, got {num!r}")
        return None
    if num > MAX_AXIS_VALUES:
        problems.add(f"{where}.num", f"num = {num:,} values on one axis is above the limit of {MAX_AXIS_VALUES:,} "
                                     "(the axis is held in memory and in the manifest); use fewer points, or split "
                                     "the range over several sweeps")
        return None
    if scale not in ("linear", "log"):
        problems.add(f"{where}.scale", f"scale must be \"linear\" or \"log\", got {scale!r}")
        return None
    if start is None or stop is None:
        return None
    if scale == "log" and (start <= 0 or stop <= 0):
        problems.add(where, "a log grid needs start > 0 and stop > 0; add zero = true to include 0")
        return None
    values = [float(f"{v:.12g}") for v in (np.geomspace(start, stop, num) if scale == "log" else
                                          np.linspace(start, stop, num))]
    if entry.get("zero", False) is True:
        values = [0.0] + values
    elif "zero" in entry and not isinstance(entry["zero"], bool):
        problems.add(f"{where}.zero", f"zero must be true or false, got {entry['zero']!r}")
    return [float(v) for v in values]


def _samples(table: dict, network, dose_params: set, taken: set, relative: set, problems: _Problems):
    _unknown_keys(table, _KEYS["samples"], "samples", problems)
    method = table.get("method", "sobol")
    n, seed = table.get("n"), table.get("seed", 0)
    ok = True
    if method not in SAMPLE_METHODS:
        close = difflib.get_close_matches(str(method), SAMPLE_METHODS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        problems.add("samples.method", f"unknown method {method!r}.{hint} Use one of {', '.join(SAMPLE_METHODS)}")
        ok = False
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        problems.add("samples.n", f"n must be a whole number >= 1 (points to draw), got {n!r}")
        ok = False
    elif method in ("sobol", "saltelli") and n & (n - 1):
        problems.add("samples.n", f"n = {n} is not a power of 2, which Sobol' points need to keep their balance; "
                                  f"use n = {1 << (n - 1).bit_length()} or method = \"lhs\"")
        ok = False
    elif n > MAX_CONDITIONS:
        problems.add("samples.n", f"n = {n:,} points is above the limit of {MAX_CONDITIONS:,} conditions; "
                                  "split the design into several sweeps (different seeds)")
        ok = False
    elif method == "lhs" and n > LHS_MAX_POINTS:
        problems.add("samples.n", f"a Latin hypercube is generated whole; n = {n} exceeds {LHS_MAX_POINTS:,}: "
                                  "use method = \"sobol\" for larger samples")
        ok = False
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        problems.add("samples.seed", f"seed must be a whole number >= 0, got {seed!r}")
        ok = False
    params = []
    entries = table.get("parameters", {})
    if not isinstance(entries, dict) or not entries:
        problems.add("samples.parameters", "list the sampled parameters: [samples.parameters.NAME] start = ..., "
                                           "stop = ..., scale = \"log\"")
        return None
    for pname, entry in entries.items():
        where = f"samples.parameters.{pname}"
        if not _parameter_ok(network, pname, where, dose_params, problems):
            ok = False
            continue
        if pname in taken:
            problems.add(where, f"{pname!r} is already set or swept under [parameters]; sample it in one place only")
            ok = False
            continue
        if not isinstance(entry, dict):
            problems.add(where, "give a table: start = ..., stop = ..., scale = \"log\" or \"linear\", relative = ...")
            ok = False
            continue
        _unknown_keys(entry, _KEYS["sampled"], where, problems)
        rel = entry.get("relative", False) is True
        if "start" not in entry or "stop" not in entry:
            problems.add(where, "missing start or stop (the range to sample)")
            ok = False
            continue
        convert = _converter(network, pname, rel)
        low = high = None
        try:
            low, high = convert(entry["start"], f"{where}.start"), convert(entry["stop"], f"{where}.stop")
        except (UnitError, ValueError) as exc:
            problems.add(where, str(exc))
        scale = entry.get("scale", "linear")
        if scale not in ("linear", "log"):
            problems.add(f"{where}.scale", f"scale must be \"linear\" or \"log\", got {scale!r}")
            ok = False
            continue
        if low is None or high is None:
            ok = False
            continue
        if not high > low or (scale == "log" and low <= 0):
            problems.add(where, f"need 0 {'<' if scale == 'log' else '<='} start < stop, got [{low:g}, {high:g}]")
            ok = False
            continue
        unit = "x model value" if rel else network.spec.parameter(pname).internal_unit
        params.append(SampledParameter(pname, low, high, scale, rel, unit))
        if rel:
            relative.add(pname)
    return Samples(method, n, seed, tuple(params)) if ok else None


def _solver(table: dict, problems: _Problems) -> Solver:
    from ..solvers.batch import TABLEAUS
    from ..solvers.solve import hours

    _unknown_keys(table, _KEYS["solver"], "solver", problems)
    s = Solver()
    method = table.get("method", s.method)
    if method not in TABLEAUS:
        problems.add("solver.method", f"method must be one of {', '.join(TABLEAUS)} (the batch path), got {method!r}")
    rtol = table.get("rtol", s.rtol)
    if isinstance(rtol, bool) or not isinstance(rtol, (int, float)) or not 0 < rtol < 1:
        problems.add("solver.rtol", f"rtol must be a number in (0, 1), got {rtol!r}; e.g. rtol = 1e-6")
        rtol = s.rtol
    atol = table.get("atol", s.atol)
    if _number(atol, "solver.atol", problems, positive=True) is None:
        atol = s.atol
    max_steps = table.get("max_steps", s.max_steps)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
        problems.add("solver.max_steps", f"max_steps must be a whole number >= 1, got {max_steps!r}")
        max_steps = s.max_steps
    step = s.output_step
    if "output_step" in table:
        try:
            step = hours(table["output_step"], what="[solver] output_step")
            if step <= 0:
                raise UnitError(f"[solver] output_step must be > 0, got {table['output_step']!r}")
        except (UnitError, ValueError) as exc:
            problems.add("solver.output_step", str(exc))
            step = s.output_step
    pre = table.get("preequilibrate", True)
    if not isinstance(pre, bool):
        problems.add("solver.preequilibrate", f"preequilibrate must be true or false, got {pre!r}")
        pre = True
    return Solver(str(method), float(rtol), float(atol), int(max_steps), float(step), pre)
