"""``her2sim trial SPEC.toml --patients N --seed S --out DIR`` (registered through cli.EXTENSIONS)."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    """Register the ``trial`` subcommand (cheap: no heavy imports here)."""
    p = subparsers.add_parser(
        "trial", help="run a virtual clinical trial (PK -> network exposure-response -> lesions -> RECIST/PFS)",
        description="Sample virtual patients, randomise them to the arms, simulate PK, tumour growth and RECIST "
                    "assessments, and report PFS (Kaplan-Meier, median with 95%% CI), ORR/DCR/CBR, hazard ratios "
                    "(Cox, log-rank) and subgroups. OS is not modelled. Bundled specs: models/trials/.")
    p.add_argument("spec", nargs="?", help="trial spec: bundled name (e.g. emilia_like) or path to a TOML file")
    p.add_argument("--patients", type=int, default=400, help="patients in total, split by the arms' ratios (default 400)")
    p.add_argument("--seed", type=int, default=0, help="random seed (cohort, randomisation, PK variability)")
    p.add_argument("--out", default=None, metavar="DIR", help="write patients.csv, summary.json, summary.txt, trial.png")
    p.add_argument("--workers", type=int, default=1, help="processes for the exposure-response tables")
    p.add_argument("--scheduler", default=None, metavar="WHERE",
                   help="where the patient blocks run: 'local' (default, this process), 'processes' (a dask "
                        "LocalCluster with one worker per core, or a process pool without dask) or "
                        "'dask://HOST:PORT' (an existing dask scheduler); results do not depend on it")
    p.add_argument("--block", type=int, default=None, metavar="N",
                   help="patients per task (default 1000; memory per task grows with it)")
    p.add_argument("--list", action="store_true", help="list the bundled trial specs with their role")
    p.set_defaults(handler=handle)


def handle(args) -> int:
    import json
    import sys

    from .trial import load_trial, run_trial

    if args.list or not args.spec:
        from .files import trial_models_dir

        for f in sorted((trial_models_dir() / "trials").glob("*.toml")):
            spec = load_trial(f)
            print(f"{spec.name:<28} {spec.role:<12} {spec.description}")
        return 0
    if args.patients < 1 or (args.block is not None and args.block < 1):
        print("her2sim trial: --patients and --block must be >= 1", file=sys.stderr)
        return 2
    result = run_trial(args.spec, patients=args.patients, seed=args.seed, workers=args.workers, progress=True,
                       scheduler=args.scheduler, block=args.block)
    print(result.report())
    if args.out:
        from .plots import trial_figure

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        result.patients.to_csv(out / "patients.csv", index=False)
        (out / "summary.json").write_text(json.dumps(result.summary, indent=1, default=float))
        (out / "summary.txt").write_text(result.report() + "\n")
        trial_figure(result, out / "trial.png")
        print(f"wrote {out}/patients.csv, summary.json, summary.txt, trial.png")
    return 0
