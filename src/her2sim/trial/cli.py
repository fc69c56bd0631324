"""``her2sim trial SPEC.toml --patients N --seed S --out DIR`` and ``her2sim trial calibrate ...``
(registered through cli.EXTENSIONS)."""

from __future__ import annotations


#: files ``--out`` receives (:data:`her2sim.trial.trial.OUT_FILES`; repeated here to keep ``--help`` import-light)
OUT_FILES = ("patients.csv", "summary.json", "summary.txt", "trial.png")


def add_parser(subparsers) -> None:
    """Register the ``trial`` subcommand (cheap: no heavy imports here)."""
    p = subparsers.add_parser(
        "trial", help="run a virtual clinical trial (PK -> network exposure-response -> lesions -> RECIST/PFS)",
        description="Sample virtual patients, randomise them to the arms, simulate PK, tumour growth and RECIST "
                    "assessments, and report PFS (Kaplan-Meier, median with 95 % CI), ORR/DCR/CBR, hazard ratios "
                    "(Cox, log-rank) and subgroups. OS is not modelled. Bundled specs: models/trials/. The spec's "
                    "model = \"...\" (default: the bundled default model) must declare [virtual_trial].")
    p.add_argument("spec", nargs="?", help="trial spec: bundled name (e.g. emilia_like) or path to a TOML file; "
                                          "'calibrate' fits the patient-level parameters (see the calibration options)")
    p.add_argument("--patients", type=int, default=None,
                   help="patients in total, split by the arms' ratios (default 400; calibrate: per trial, default 300)")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (cohort, randomisation, PK variability; default 0, calibrate 2024)")
    p.add_argument("--out", default=None, metavar="DIR", help="write patients.csv, summary.json, summary.txt, trial.png")
    p.add_argument("--scheduler", default=None, metavar="WHERE",
                   help="where the exposure-response integrations and the patient blocks run: 'local' (default, "
                        "this process), 'processes' (a dask LocalCluster with one worker per core, or a process "
                        "pool without dask) or 'dask://HOST:PORT' (an existing dask scheduler); results do not "
                        "depend on it")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="deprecated alias of --scheduler: N > 1 means --scheduler processes (one process per core; "
                        "N itself is not kept), N = 1 means --scheduler local")
    p.add_argument("--block", type=int, default=None, metavar="N",
                   help="patients per task (default 1000; memory per task grows with it)")
    p.add_argument("--independent-action", action="store_true",
                   help="also give each regimen of every combination arm alone to the same virtual patients and "
                        "report the combination's PFS against each patient's best single drug (benefit beyond "
                        "independent drug action, Palmer & Sorger 2017)")
    p.add_argument("--list", action="store_true", help="list the bundled trial specs with their role")
    c = p.add_argument_group("calibration options (her2sim trial calibrate; models/calibration.md)")
    c.add_argument("--trials", default=None, metavar="A,B,...",
                   help="calibration trials to fit (default: every bundled spec with role = 'calibration')")
    c.add_argument("--leave-one-out", action="store_true",
                   help="leave-one-trial-out: fit without each trial from the same start, predict it; one result "
                        "file per fold in --out (needed), finished folds are skipped on a re-run")
    c.add_argument("--folds", default=None, metavar="A,B,...", help="with --leave-one-out: run only these folds now")
    c.add_argument("--start", choices=("shipped", "neutral"), default=None,
                   help="start values: the shipped (model file) values or NEUTRAL_START (default: shipped for a fit, "
                        "neutral for --leave-one-out, which never starts from an optimum that saw the left-out trial)")
    c.add_argument("--structure", type=int, choices=(5, 6), default=5,
                   help="tumour-model version to fit: 5 (default) or 6 (cell loss, separate chemotherapy loss of "
                        "effect; models/calibration.md 'Version 6')")
    c.add_argument("--max-evaluations", type=int, default=200, help="Nelder-Mead evaluations per round (default 200)")
    c.add_argument("--restarts", type=int, default=1, help="extra Nelder-Mead rounds from the last point (default 1)")
    c.add_argument("--fit-workers", type=int, default=1, metavar="N",
                   help="forked processes for the tumour stage of each evaluation (trials in parallel; same numbers)")
    c.add_argument("--profile", action="store_true",
                   help="identifiability check: the objective along each parameter around the optimum")
    p.set_defaults(handler=handle)


def scheduler_option(scheduler, workers):
    """The scheduler of ``--scheduler`` and the deprecated ``--workers`` (InvalidArgument if both
    are given and disagree)."""
    from ..errors import InvalidArgument
    from ..validate import check_count

    if workers is None:
        return scheduler
    check_count(workers, "--workers", fix="use --scheduler processes instead (--workers is deprecated)")
    implied = "processes" if int(workers) > 1 else None
    if scheduler is not None and (scheduler or "local") != (implied or "local"):
        raise InvalidArgument(f"--workers {workers} (deprecated) means --scheduler {implied or 'local'}, which "
                              f"contradicts --scheduler {scheduler}; give --scheduler only")
    return scheduler if scheduler is not None else implied


def handle(args) -> int:
    """Run ``her2sim trial``; bad options print one line and return 2 before any work."""
    import sys

    from ..errors import Her2simError, exit_code
    from ..executors import check_scheduler
    from ..validate import check_count, check_output_dir
    from .arms import TableCache
    from .scaleout import run_trial
    from .trial import check_trial_size, load_trial

    if args.spec == "calibrate":
        from .calibrate_cli import handle_calibrate

        return handle_calibrate(args)
    for flag in ("trials", "folds", "start", "leave_one_out", "profile"):
        if getattr(args, flag, None):
            print(f"her2sim trial: error: --{flag.replace('_', '-')} is a calibration option: use her2sim trial "
                  "calibrate", file=sys.stderr)
            return 2
    args.patients = 400 if args.patients is None else args.patients
    args.seed = 0 if args.seed is None else args.seed
    if args.list or not args.spec:
        from .files import trial_models_dir

        for f in sorted((trial_models_dir() / "trials").glob("*.toml")):
            spec = load_trial(f)
            print(f"{spec.name:<28} {spec.role:<12} {spec.description}")
        return 0
    try:  # every option is checked before the (minutes-long) trial starts
        scheduler = scheduler_option(args.scheduler, args.workers)
        if args.block is not None:
            check_count(args.block, "--block", fix="patients per task, e.g. 1000")
        check_scheduler(scheduler)
        out = check_output_dir(args.out, "--out") if args.out else None
        spec = load_trial(args.spec)
        check_trial_size(spec, args.patients, args.seed, names=("--patients", "--seed"))
    except Her2simError as exc:
        print(f"her2sim trial: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    if args.workers is not None:  # after the checks: an error stays one line
        print(f"her2sim trial: note: --workers is deprecated; use --scheduler {scheduler or 'local'}", file=sys.stderr)
    cache = TableCache()
    result = run_trial(spec, patients=args.patients, seed=args.seed, scheduler=scheduler, progress=True,
                       block=args.block, cache=cache)
    report = result.report()
    if getattr(args, "independent_action", False):
        from .ida import format_independent_action, independent_action

        ida = independent_action(spec, args.patients, args.seed, result=result, cache=cache, scheduler=scheduler)
        result.summary["independent_action"] = ida
        report += "\n" + format_independent_action(ida)
    print(report)
    if out is not None:
        result.save(out, report=report)
        print(f"wrote {out}/{', '.join(OUT_FILES)}")
    return 0
