"""``her2sim trial calibrate``: the all-trial fit and the leave-one-trial-out folds from the command line.

    her2sim trial calibrate --out DIR                  # fit every calibration trial: DIR/fit.json, fit.md
    her2sim trial calibrate --leave-one-out --out DIR  # one fold file per trial, DIR/loto.md; resumable
"""

from __future__ import annotations


def _names(text, option: str) -> tuple | None:
    from ..errors import InvalidArgument

    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if not names:
        raise InvalidArgument(f"{option}: give comma-separated trial names, e.g. emilia_like,gbg26_like")
    return names


def check_calibrate_args(args) -> dict:
    """Every option of ``her2sim trial calibrate`` checked before any work; the keyword arguments."""
    from ..errors import InvalidArgument
    from ..validate import check_count, check_int, check_output_dir, check_seed
    from .calibrate import NEUTRAL_START, NEUTRAL_START_V6, calibration_trials, check_readouts, current_values
    from .trial import load_trial

    patients = 300 if args.patients is None else check_count(args.patients, "--patients", fix="patients per trial, "
                                                               "e.g. 300")
    seed = 2024 if args.seed is None else check_seed(args.seed, "--seed")
    check_count(args.max_evaluations, "--max-evaluations", fix="e.g. 200")
    check_int(args.restarts, "--restarts", minimum=0, maximum=100, fix="e.g. 1")
    check_count(args.fit_workers, "--fit-workers", fix="e.g. 2 (one per free core)")
    trials = _names(args.trials, "--trials") or calibration_trials()
    specs = [load_trial(t) for t in trials]
    held = [s.name for s in specs if s.role != "calibration"]
    if held:
        raise InvalidArgument(f"--trials: {held} are held-out trials; only role = 'calibration' specs may be fitted")
    check_readouts(specs)
    trials = tuple(s.name for s in specs)
    if args.leave_one_out and not args.out:
        raise InvalidArgument("--leave-one-out needs --out DIR (one result file per fold, so that a re-run resumes)")
    if args.folds and not args.leave_one_out:
        raise InvalidArgument("--folds is for --leave-one-out")
    folds = _names(args.folds, "--folds")
    if folds and set(folds) - set(trials):
        raise InvalidArgument(f"--folds: {sorted(set(folds) - set(trials))} are not among the trials {list(trials)}")
    out = check_output_dir(args.out, "--out") if args.out else None
    start = args.start or ("neutral" if args.leave_one_out else "shipped")
    v6 = getattr(args, "structure", 5) == 6
    if start == "neutral":
        start = NEUTRAL_START_V6 if v6 else NEUTRAL_START
    else:   # the shipped values (version 6: the chemotherapy loss of effect starts at the signalling one)
        start = current_values(specs, 6) if v6 else None
    return {"trials": trials, "patients": patients, "seed": seed, "out": out, "folds": folds, "start": start}


def handle_calibrate(args) -> int:
    """Run ``her2sim trial calibrate``; bad options print one line and return 2 before any work."""
    import json
    import sys

    from ..errors import Her2simError, exit_code
    from ..io.atomic import atomic_write_text

    try:
        kw = check_calibrate_args(args)
    except Her2simError as exc:
        print(f"her2sim trial calibrate: error: {exc}", file=sys.stderr)
        return exit_code(exc)
    out = kw["out"]
    if args.leave_one_out:
        from .loto import format_loto, run_folds

        out.mkdir(exist_ok=True)
        folds = run_folds(kw["trials"], out=out, only=kw["folds"], patients=kw["patients"], seed=kw["seed"],
                          start=kw["start"], max_evaluations=args.max_evaluations, restarts=args.restarts,
                          progress=True, fit_workers=args.fit_workers)
        table = format_loto(folds)
        print(table)
        atomic_write_text(out / "loto.md", table + "\n")
        print(f"wrote {out}/fold_*.json, {out}/loto.md")
        return 0
    from .calibrate import calibrate, format_calibration, result_dict

    res = calibrate(kw["trials"], patients=kw["patients"], seed=kw["seed"], start=kw["start"],
                    max_evaluations=args.max_evaluations, restarts=args.restarts, progress=True,
                    fit_workers=args.fit_workers, do_profile=args.profile)
    report = format_calibration(res)
    if getattr(args, "independent_action", False):
        from .ida import calibration_independent_action, format_calibration_independent_action

        ida = calibration_independent_action(res.parameters, kw["trials"], patients=kw["patients"], seed=kw["seed"])
        report += "\n" + format_calibration_independent_action(ida)
    print(report)
    if out is not None:
        out.mkdir(exist_ok=True)
        atomic_write_text(out / "fit.json", json.dumps(result_dict(res), indent=1, default=float))
        atomic_write_text(out / "fit.md", report + "\n")
        print(f"wrote {out}/fit.json, {out}/fit.md")
    return 0
