"""Run the SBML Test Suite semantic cases through her2sim and print the tally by tag.

Usage::

    python benchmarks/sbml_test_suite.py [--engine scipy|batch] [--cases 1-200] [--show-failed]

Each case (``../shared/data/sbml-test-suite/cases/NNNNN``, SBML L3V2) is imported with
:func:`her2sim.io.sbml_import.import_sbml` and simulated on the grid of its settings file
(``start``, ``duration``, ``steps``). A case **passes** when every reported value satisfies the
suite's rule ``|y - expected| <= absolute + relative * |expected|`` (NaN matches NaN, infinities
match by sign); it is **unsupported** when the import (or the engine) refuses it with
:class:`~her2sim.errors.UnsupportedSBMLError`; anything else (a wrong value or any other error)
is **failed**. Cases without an L3V2 file are **skipped**. Species are reported as amounts or
concentrations as the settings file asks (amount = concentration x compartment size).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

DEFAULT_ROOT = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "sbml-test-suite" / "cases"
#: solver tolerances used for every case (the comparison tolerances come from the settings file)
RTOL, ATOL = 1e-10, 1e-14


@dataclass
class Outcome:
    case: str
    verdict: str          # "passed", "failed", "unsupported", "skipped"
    tags: tuple
    message: str = ""
    seconds: float = 0.0


def read_settings(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    split = lambda v: [s.strip() for s in v.split(",") if s.strip()]  # noqa: E731
    return {"start": float(out["start"]), "duration": float(out["duration"]), "steps": int(float(out["steps"])),
            "variables": split(out["variables"]), "absolute": float(out["absolute"]),
            "relative": float(out["relative"]), "amount": set(split(out.get("amount", ""))),
            "concentration": set(split(out.get("concentration", "")))}


def read_tags(path: Path) -> tuple:
    tags = []
    for line in path.read_text(errors="replace").splitlines()[:40]:
        for key in ("componentTags:", "testTags:"):
            if line.strip().startswith(key):
                tags += [t.strip() for t in line.split(":", 1)[1].split(",") if t.strip()]
    return tuple(tags)


def read_results(path: Path) -> tuple[list[str], np.ndarray]:
    with open(path) as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    data = np.array([[float(v) for v in r] for r in rows[1:] if r], dtype=float)
    return header, data


def _observables(spec, xml_path: Path, settings: dict):
    """Observables of the reported variables: species as amount or concentration as asked."""
    import libsbml

    from her2sim.model import expr as ex
    from her2sim.model.spec import Observable
    from her2sim.io.sbml_import import name_map

    model = libsbml.readSBMLFromFile(str(xml_path)).getModel()
    names = name_map(spec)
    out = []
    for var in settings["variables"]:
        if var not in names:
            raise KeyError(f"reported variable {var!r} is not an SBML id of the model")
        node = ex.Sym(names[var])
        s = model.getSpecies(var)
        if s is not None:
            comp = ex.Sym(names[s.getCompartment()])
            is_amount = s.getHasOnlySubstanceUnits()
            if var in settings["amount"] and not is_amount:
                node = ex.Bin("*", node, comp)
            elif var in settings["concentration"] and is_amount:
                node = ex.Bin("/", node, comp)
        out.append(Observable(f"report_{len(out)}", node, var, ""))
    return tuple(out)


def simulate_case(xml_path: Path, settings: dict, engine: str = "scipy") -> np.ndarray:
    """(T, n_variables) values of the reported variables on the settings' grid."""
    import her2sim
    from her2sim.io.sbml_import import import_sbml

    spec = import_sbml(xml_path)
    spec = replace(spec, observables=_observables(spec, xml_path, settings))
    start, end = settings["start"], settings["start"] + settings["duration"]
    grid = np.linspace(start, end, settings["steps"] + 1)
    if engine == "scipy":
        res = her2sim.simulate(spec, time=end, t_eval=grid, rtol=RTOL, atol=ATOL, method="LSODA")
        return res.observables[0]
    from her2sim.solvers.batch import simulate_batch

    net = her2sim.compile_network(spec)
    out = simulate_batch(net, t_eval=grid, t_span=(0.0, end), rtol=RTOL, atol=ATOL)
    if not out.ok[0]:
        raise RuntimeError(out.messages[0])
    return out.to_result(net).observables[0]


def compare(got: np.ndarray, expected: np.ndarray, absolute: float, relative: float) -> str:
    """'' when every value passes the suite's rule, else a description of the worst miss."""
    both_nan = np.isnan(got) & np.isnan(expected)
    same_inf = np.isinf(got) & np.isinf(expected) & (np.sign(got) == np.sign(expected))
    with np.errstate(invalid="ignore"):
        ok = (np.abs(got - expected) <= absolute + relative * np.abs(expected)) | both_nan | same_inf
    if ok.all():
        return ""
    i, j = np.argwhere(~ok)[0]
    return f"row {i} column {j}: got {got[i, j]!r}, expected {expected[i, j]!r}"


def run_case(case_dir: Path, engine: str = "scipy") -> Outcome:
    from her2sim.errors import UnsupportedSBMLError

    case = case_dir.name
    tags = read_tags(case_dir / f"{case}-model.m")
    xml = case_dir / f"{case}-sbml-l3v2.xml"
    clock = time.perf_counter()
    if not xml.exists():
        return Outcome(case, "skipped", tags, "no L3V2 file")
    try:
        settings = read_settings(case_dir / f"{case}-settings.txt")
    except (KeyError, ValueError):
        return Outcome(case, "skipped", tags, "no time-course settings (not a time-course case)")
    header, data = read_results(case_dir / f"{case}-results.csv")
    try:
        got = simulate_case(xml, settings, engine)
    except UnsupportedSBMLError as exc:
        return Outcome(case, "unsupported", tags, exc.construct, time.perf_counter() - clock)
    except Exception as exc:  # noqa: BLE001 - any other error is a failure of the case
        return Outcome(case, "failed", tags, f"{type(exc).__name__}: {exc}", time.perf_counter() - clock)
    cols = [1 + header[1:].index(v) for v in settings["variables"]]  # column 0 is time (ids may be 'time')
    miss = compare(got, data[:, cols], settings["absolute"], settings["relative"])
    return Outcome(case, "failed" if miss else "passed", tags, miss, time.perf_counter() - clock)


def case_dirs(root: Path = DEFAULT_ROOT, selection: str | None = None) -> list[Path]:
    dirs = sorted(p for p in Path(root).iterdir() if p.is_dir() and p.name.isdigit())
    if selection:
        lo, _, hi = selection.partition("-")
        lo_i, hi_i = int(lo), int(hi or lo)
        dirs = [d for d in dirs if lo_i <= int(d.name) <= hi_i]
    return dirs


def tally(outcomes: list[Outcome]) -> str:
    """Totals and a per-tag table (a case counts under each of its tags)."""
    totals = Counter(o.verdict for o in outcomes)
    lines = [f"cases: {len(outcomes)}  " + "  ".join(f"{k}: {totals.get(k, 0)}"
                                                      for k in ("passed", "failed", "unsupported", "skipped"))]
    by_tag: dict[str, Counter] = defaultdict(Counter)
    for o in outcomes:
        for t in o.tags:
            by_tag[t][o.verdict] += 1
    lines.append(f"{'tag':32s} {'passed':>7s} {'failed':>7s} {'unsupp.':>8s} {'skipped':>8s}")
    for t in sorted(by_tag):
        c = by_tag[t]
        lines.append(f"{t:32s} {c['passed']:7d} {c['failed']:7d} {c['unsupported']:8d} {c['skipped']:8d}")
    reasons = Counter(o.message for o in outcomes if o.verdict == "unsupported")
    lines.append("unsupported constructs: " + ", ".join(f"{k} ({v})" for k, v in reasons.most_common()))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    ap.add_argument("--cases", help="range such as 1-200")
    ap.add_argument("--engine", choices=("scipy", "batch"), default="scipy")
    ap.add_argument("--show-failed", action="store_true")
    args = ap.parse_args(argv)
    clock = time.perf_counter()
    outcomes = [run_case(d, args.engine) for d in case_dirs(args.root, args.cases)]
    print(tally(outcomes))
    if args.show_failed:
        for o in outcomes:
            if o.verdict == "failed":
                print(f"FAILED {o.case}: {o.message}")
    print(f"engine {args.engine}, wall time {time.perf_counter() - clock:.1f} s")
    return 1 if any(o.verdict == "failed" for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
