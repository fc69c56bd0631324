"""Command-line interface: subcommands map one-to-one onto API functions."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from .errors import EXIT_FAILURE, EXIT_INTERRUPTED, Her2simError, exit_code

#: modules that add subcommands: each has ``add_parser(subparsers)`` (cheap imports only) and
#: sets ``handler`` on its subparser; the handler takes the parsed args and returns an exit code
EXTENSIONS: tuple[str, ...] = ("her2sim.screen.cli", "her2sim.sweep.cli", "her2sim.trial.cli", "her2sim.fit.cli",
                               "her2sim.explore.cli")

DEFAULT_OBSERVE = ("pHER2", "pHER3", "pAKT", "pERK", "pS6", "ER_activity", "pRb", "proliferation_rate",
                   "apoptosis_rate", "viable_cells")


#: printed after the main job (no drug): the untreated cells sit at their drug-free steady state
NEXT_STEPS = """
No drug was given, so the signals stay at the drug-free steady state (only viable_cells grows).
Next: her2sim simulate --drug lapatinib=1uM --plot lapatinib.png   (treated vs untreated control)
      her2sim demo --list      (ten resistance demonstrations with figures)
      her2sim explore          (interactive pathway explorer with guided lessons, in the browser)"""


def _parse_drug(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--drug expects NAME=DOSE such as lapatinib=1uM, got {text!r}")
    name, dose = text.split("=", 1)
    if not name.strip() or not dose.strip():
        raise argparse.ArgumentTypeError(f"--drug expects NAME=DOSE such as lapatinib=1uM, got {text!r}")
    return name.strip(), dose.strip()


def _parse_param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects NAME=VALUE such as HRG=1nM, got {text!r}")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="her2sim",
        description="Mechanistic simulation of HER2-positive breast cancer signalling, drugs and resistance. "
                    "Internal units are nM and hours; write quantities with units, e.g. 1uM, '2 ug/mL', 72h.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the Python traceback of an error instead of the one-line message")

    from . import __version__

    parser.add_argument("--version", action="version", version=f"her2sim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    s = sub.add_parser("simulate", help="simulate a model (default: the bundled HER2 network on BT-474)",
                       description="Pre-equilibrate cells without drug, add the drugs at t=0 and integrate. "
                                   "With no arguments: the default model for 72 h and a summary table.")
    s.add_argument("--model", default="default",
                   help="bundled model name, path to a model TOML or an SBML file (.xml) (default: default)")
    s.add_argument("--variant", action="append", default=[], metavar="V",
                   help="variant or background to apply (repeatable), e.g. pik3ca_h1047r")
    s.add_argument("--drug", action="append", default=[], type=_parse_drug, metavar="NAME=DOSE",
                   help="drug and dose (repeatable), e.g. lapatinib=1uM, trastuzumab=10ug/mL")
    s.add_argument("--set", action="append", default=[], type=_parse_param, metavar="NAME=VALUE", dest="params",
                   help="parameter override (repeatable), e.g. HRG=1nM")
    s.add_argument("--time", default="72h", help="simulated time after dosing (default 72h)")
    s.add_argument("--washout", default=None, metavar="TIME", help="remove all drugs at this time, e.g. 24h")
    s.add_argument("--observe", nargs="+", action="extend", default=None, metavar="OBS",
                   help="observables or species to report (default: the main readouts)")
    s.add_argument("--method", default="auto", choices=["auto", "LSODA", "BDF", "Radau"])
    s.add_argument("--rtol", type=float, default=1e-6)
    s.add_argument("--atol", type=float, default=1e-9)
    s.add_argument("--no-preequilibrate", action="store_true", help="start from the file's initial amounts")
    s.add_argument("--out", default=None, metavar="FILE", help="write results: .csv (wide: time_h + observables) or .nc")
    s.add_argument("--plot", default=None, metavar="FILE.png", help="plot time courses of the observed readouts")

    m = sub.add_parser("models", help="list bundled models, modules, variants, backgrounds and drugs")
    m.add_argument("--observables", action="store_true", help="also list the default model's observables")
    m.add_argument("--parameters", action="store_true", help="print the parameter table (Markdown) of the default model")

    c = sub.add_parser("check", help="validate a model, module, variant or drug file; exit 1 on errors")
    c.add_argument("path", nargs="+")

    d = sub.add_parser("drugs", help="list the drug library (names usable with --drug)")
    d.add_argument("--long", action="store_true", help="show targets and mechanism")

    demo = sub.add_parser("demo", help="run a resistance-mechanism demonstration and save its figure",
                          description="Each demo states what it shows, prints its measured metrics and the "
                                      "literature value they are compared with, and writes a PNG.")
    demo.add_argument("name", nargs="?", help="demo name (see --list), or 'all' (every demo, figures into --out)")
    demo.add_argument("--list", action="store_true", help="list the demos, one per line with what each shows")
    demo.add_argument("--plot", default=None, metavar="FILE.png", help="figure path (default: NAME.png)")
    demo.add_argument("--fast", action="store_true", help="fewer doses/time points (quicker, coarser figure)")
    demo.add_argument("--out", default=None, metavar="DIR",
                      help="with 'all': folder for NAME.png of every demo (default: the current folder); "
                           "`her2sim demo all --out docs/demos` regenerates the committed figures")

    e = sub.add_parser("export-sbml", help="write a model as SBML Level 3 (needs her2sim[sbml])")
    e.add_argument("model", nargs="?", default="default", help="bundled model name or path (default: default)")
    e.add_argument("-o", "--output", required=True, metavar="FILE.xml")
    e.add_argument("--variant", action="append", default=[], metavar="V")
    e.add_argument("--drug", action="append", default=[], metavar="NAME[=DOSE]",
                   help="include a drug (its dose parameter; with =DOSE also set the dose in the file)")
    e.add_argument("--no-preequilibrate", action="store_true",
                   help="write the file's initial amounts instead of the drug-free steady state")
    for module_name in EXTENSIONS:
        module = importlib.import_module(module_name)
        module.add_parser(sub)  # registers a subcommand with set_defaults(handler=...)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (see README "Errors and exit codes"):
    0 done, 1 a failure during the work, 2 bad input (checked before any work), 130 interrupted
    (Ctrl-C; 143 for SIGTERM), 141 output pipe closed (``her2sim ... | head``)."""
    words = sys.argv[1:] if argv is None else list(argv)
    # guarded from the first import on: Ctrl-C while the subcommands load is one line and 130 too
    return run_guarded(lambda: _dispatch(words), debug="--debug" in words)


def _dispatch(argv: list[str]) -> int:
    """Parse the command line and run its subcommand."""
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "simulate"
    if args.command is None:
        args = parser.parse_args((["--debug"] if args.debug else []) + ["simulate"])
    handlers = {"simulate": _simulate, "models": _models, "check": _check, "drugs": _drugs, "demo": _demo,
                "export-sbml": _export_sbml}
    handler = handlers.get(command) or args.handler
    return handler(args)


def run_guarded(work, *, debug: bool = False, prog: str = "her2sim") -> int:
    """Call ``work()`` and turn every way it can end into one stderr line and an exit status:
    a Her2simError -> its message (2 bad input, 1 failure during the work), Ctrl-C -> 130,
    SIGTERM -> 143, a closed output pipe -> 141 silently, anything else -> 1 with the exception
    named. ``debug`` re-raises instead (the traceback is shown)."""
    import signal

    def on_term(signum, frame):
        raise _Terminated()

    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, on_term)
    except ValueError:  # not the main thread
        pass
    try:
        return work()
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except _Terminated:
        print(f"{prog}: terminated (SIGTERM); finished files are kept, nothing half-written", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"\n{prog}: interrupted; finished files are kept, nothing half-written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Her2simError as exc:
        if debug:
            raise
        _print_error(prog, f"error: {exc}")
        return exit_code(exc)
    except MemoryError:
        if debug:
            raise
        _print_error(prog, "error: out of memory; use fewer conditions, patients or time points, or split the work "
                           "(sweeps: --chunk and --scheduler; trials: --block)")
        return EXIT_FAILURE
    except OSError as exc:
        if debug:
            raise
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        _print_error(prog, f"error: {exc.strerror or exc}{where}")
        return EXIT_FAILURE
    except Exception as exc:
        if debug:
            raise
        _print_error(prog, f"internal error: {type(exc).__name__}: {exc} (a bug: please report it with the "
                           "command; rerun with --debug for the traceback)")
        return EXIT_FAILURE
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that ``finally`` blocks (atomic writes) clean up."""


def _print_error(prog: str, text: str) -> None:
    try:
        print(f"{prog}: {text}", file=sys.stderr)
    except (BrokenPipeError, ValueError):
        pass


def _silence_stdout() -> None:
    """After EPIPE: point stdout at /dev/null so that the interpreter's final flush is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _simulate(args) -> int:
    from .io.atomic import atomic_path
    from .errors import UnknownNameError
    from .solvers.solve import as_network, simulate
    from .validate import PLOT_SUFFIXES, check_output_file, check_time, check_tolerances

    check_tolerances(args.rtol, args.atol, names=("--rtol", "--atol"))  # every option before any work
    check_time(args.time, "--time")
    if args.washout is not None:
        check_time(args.washout, "--washout")
    out = check_output_file(args.out, "--out", (".csv", ".nc")) if args.out else None
    plot = check_output_file(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None
    drugs = dict(args.drug)
    events = [(args.washout, {k: 0 for k in drugs})] if args.washout and drugs else []
    network = as_network(args.model, variants=args.variant, drugs=list(drugs))
    known = set(network.observable_names) | set(network.species_names)
    observe = args.observe or [o for o in DEFAULT_OBSERVE if o in known] or list(network.observable_names)
    for name in observe:  # before the work
        if name not in known:
            raise UnknownNameError("observable", name, known, fix="See `her2sim models --observables`.")
    result = simulate(network, drugs=drugs, time=args.time, parameters=dict(args.params),
                      events=events, method=args.method, rtol=args.rtol, atol=args.atol,
                      preequilibrate=False if args.no_preequilibrate else None)  # None: the model's default
    header = f"model {result.attrs['model']}"
    if result.attrs.get("variants"):
        header += f" [{result.attrs['variants']}]"
    header += f"; drugs: {', '.join(f'{k}={v}' for k, v in drugs.items()) or 'none'}; {args.time}"
    print(header)
    print(result.summary(observe))
    if not drugs and out is None and plot is None:
        print(NEXT_STEPS)
    if out is not None:
        if out.suffix.lower() == ".nc":
            result.to_netcdf(out)
        else:
            result.to_csv(out, observe)
        print(f"wrote {out}")
    if plot is not None:
        from .plot import plot_simulation

        control = None
        if drugs:  # the untreated control of the same cells, drawn grey behind the treated curves
            control = simulate(args.model, variants=args.variant, time=args.time, parameters=dict(args.params),
                               method=args.method, rtol=args.rtol, atol=args.atol,
                               preequilibrate=False if args.no_preequilibrate else None)
        what = ", ".join(f"{k} {v}" for k, v in drugs.items()) + " vs untreated control" if drugs else "no drug"
        cells = f"model {result.attrs['model']}" + (f" [{result.attrs['variants']}]" if result.attrs.get("variants") else "")
        extra = "".join(f", {k}={v}" for k, v in args.params)
        wash = f", washout at {args.washout}" if events else ""
        fig = plot_simulation(result, observe, control=control, title=f"{what}: {cells}{extra}, {args.time}{wash}")
        with atomic_path(plot) as tmp:
            fig.savefig(tmp, dpi=120, format=plot.suffix[1:].lower())
        print(f"wrote {plot}")
    return 0


def _models(args) -> int:
    from .model.load import list_bundled, load_model

    listing = list_bundled()
    for key, items in listing.items():
        print(f"{key}:")
        for name, desc in items:
            print(f"  {name:<28} {desc}")
    if args.observables:
        spec = load_model("default")
        print("observables of the default model:")
        for o in spec.observables:
            print(f"  {o.name:<24} [{o.unit}] {o.description}")
        print("relative counts (species reported as dimensionless, 1 = at dosing):")
        for sp in spec.species:
            if sp.relative:
                print(f"  {sp.name:<24} [{sp.unit}] {sp.description}")
    if args.parameters:
        from .model.report import parameters_markdown

        print(parameters_markdown())
    return 0


def _check(args) -> int:
    from .model.load import check_file

    bad = 0
    for path in args.path:
        problems = check_file(path)
        if problems:
            bad += 1
            print(f"{path}: {len(problems)} problem(s)")
            for p in problems:
                print(f"  - {p}")
        else:
            print(f"{path}: OK")
    return 1 if bad else 0


def _drugs(args) -> int:
    from .model.load import list_drugs

    for d in list_drugs():
        cli_name = d.name.lower().replace(" ", "-")
        others = [a for a in d.aliases if a.lower() != cli_name and " " not in a]
        aliases = f" (aliases: {', '.join(others)})" if others else ""
        if args.long:
            print(f"{cli_name}{aliases}\n    class: {d.drug_class}; targets: {', '.join(d.targets)}\n"
                  f"    {d.mechanism}\n    source: {d.source}")
        else:
            print(f"{cli_name:<28} {d.drug_class}{aliases}")
    return 0


def _demo(args) -> int:
    from pathlib import Path

    from .demos import DEMOS
    from .errors import InvalidArgument, UnknownNameError
    from .validate import PLOT_SUFFIXES, check_output_file

    if args.list or not args.name:
        from .demos import SUMMARIES

        for name in DEMOS:
            print(f"{name:<22} {SUMMARIES[name]}")
        return 0
    if args.name == "all":
        if args.plot:
            raise InvalidArgument("--plot names one figure; with 'all' use --out DIR (one NAME.png per demo)")
        out = Path(args.out or ".")
        if out.exists() and not out.is_dir():
            raise InvalidArgument(f"--out {str(out)!r} is a file; give a folder (it is created if missing)")
        out.mkdir(parents=True, exist_ok=True)
        for name in DEMOS:
            _run_one_demo(name, out / f"{name}.png", args.fast)
        return 0
    if args.out:
        raise InvalidArgument("--out is for 'all'; for one demo use --plot FILE.png")
    if args.name not in DEMOS:
        raise UnknownNameError("demo", args.name, [*DEMOS, "all"], fix="Run `her2sim demo --list`.")
    check_output_file(args.plot or f"{args.name}.png", "--plot", PLOT_SUFFIXES)
    return _run_one_demo(args.name, Path(args.plot or f"{args.name}.png"), args.fast)


def _run_one_demo(name: str, path, fast: bool) -> int:
    from .demos import run_demo

    result = run_demo(name, fast=fast)
    print(f"{result.name}: {result.claim}")
    for key, value in result.metrics.items():
        print(f"  {key:<40} {value:.4g}")
    print(f"literature: {result.literature}")
    path = result.plot(path)
    print(f"wrote {path}")
    return 0


def _export_sbml(args) -> int:
    from .io.sbml import export_model_sbml
    from .validate import check_output_file

    check_output_file(args.output, "--output", (".xml", ".sbml"))
    path = export_model_sbml(args.model, args.output, variants=args.variant, drugs=args.drug,
                             preequilibrated=not args.no_preequilibrate)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
