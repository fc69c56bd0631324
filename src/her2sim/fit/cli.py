"""``her2sim fit``: evaluate or fit a PEtab problem from the command line.

Registered by listing ``"her2sim.fit.cli"`` in ``her2sim.cli.EXTENSIONS``; only argparse is
imported until the command runs.
"""

from __future__ import annotations

import argparse
import sys


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``fit`` subcommand (handler :func:`run_fit_cli`)."""
    p = subparsers.add_parser(
        "fit", help="evaluate (--evaluate) or fit a PEtab problem by multi-start optimisation",
        description="Read a PEtab v1 problem (YAML + tables + SBML model). With --evaluate: simulate at the nominal "
                    "parameters and print the log-likelihood as the last line. Otherwise: a multi-start fit (Latin "
                    "hypercube starts, trust-region least squares on the batch path) writing the best parameters "
                    "(PEtab parameter table), all starts, the simulation table and figures to --out.")
    p.add_argument("problem", metavar="PROBLEM.yaml", help="the PEtab problem YAML")
    p.add_argument("--out", default=None, metavar="DIR", help="output directory (required for a fit)")
    p.add_argument("--evaluate", action="store_true", help="no optimisation: log-likelihood at the nominal parameters")
    p.add_argument("--starts", type=_positive, default=20, metavar="N", help="local optimisations (default 20)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the Latin hypercube starts (default 0)")
    p.add_argument("--scheduler", default=None, metavar="local|processes|dask://HOST:PORT",
                   help="where starts run (default: this process)")
    p.add_argument("--resume", action="store_true", help="reuse finished starts in DIR/starts/")
    p.add_argument("--profiles", action="store_true", help="also compute profile likelihoods of the best fit")
    p.add_argument("--max-evaluations", type=_positive, default=200, metavar="N",
                   help="objective+derivative evaluations per start (default 200)")
    p.add_argument("--method", choices=["batch", "scipy"], default="batch",
                   help="integrator: the batch path (default) or scipy Radau (reference)")
    p.add_argument("--max-steps", type=_positive, default=None, metavar="N",
                   help="integrator steps per simulation before it counts as failed (default 200000 with "
                        "--evaluate, 20000 in a fit: a start in a stiff corner then fails fast instead of "
                        "holding up the lockstep batch)")
    p.add_argument("--rtol", type=float, default=1e-8)
    p.add_argument("--atol", type=float, default=1e-12)
    p.add_argument("--optimise-noise", action="store_true",
                   help="optimise noise parameters like the others (default: a noise parameter that only scales a "
                        "normal noise is set to its closed-form optimum at every point, which converges more often)")
    p.add_argument("--optimizer", choices=["auto", "fides", "trf"], default="auto",
                   help="local optimiser of least-squares problems: fides (Gauss-Newton trust region; the [fit] "
                        "extra), scipy's trf, or auto (default: fides when installed, else trf)")
    p.set_defaults(handler=run_fit_cli)
    return p


def run_fit_cli(args) -> int:
    """Handler of ``her2sim fit``: 0 on success, 1 if the nominal simulation or every start failed."""
    from pathlib import Path

    from ..executors import check_scheduler
    from .objective import Objective
    from .optimize import fit, parameter_table
    from .problem import read_problem

    check_scheduler(args.scheduler)
    if not args.evaluate and args.out is None:
        print("her2sim fit: error: a fit needs --out DIR (or use --evaluate)", file=sys.stderr)
        return 2
    problem = read_problem(args.problem)
    max_steps = args.max_steps or (200000 if args.evaluate else 20000)
    objective = Objective(problem, method=args.method, rtol=args.rtol, atol=args.atol, max_steps=max_steps)
    out = Path(args.out) if args.out else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    if args.evaluate:
        theta = problem.nominal()
        ev = objective.evaluate(theta[None])
        print(f"problem {Path(args.problem).name}: {len(problem.measurements)} measurements, "
              f"{len(objective.conditions)} simulation conditions, {objective.network.n_species} state variables")
        if out is not None:
            objective.simulation_table(theta).to_csv(out / "simulatedData.tsv", sep="\t", index=False)
        if not ev.ok[0]:
            print(f"her2sim fit: simulation failed at the nominal parameters: {ev.message[0]}", file=sys.stderr)
            return 1
        print(f"negative log-likelihood + priors: {float(ev.nllh[0])!r}")
        print(f"log-likelihood: {float(ev.llh[0])!r}")
        return 0
    try:
        result = fit(problem, starts=args.starts, seed=args.seed, scheduler=args.scheduler, out=out,
                     resume=args.resume, objective=objective, max_evaluations=args.max_evaluations,
                     progress=sys.stderr.isatty(), closed_form_noise=not args.optimise_noise,
                     optimizer=args.optimizer)
    except KeyboardInterrupt:
        print(f"\nher2sim fit: interrupted; finished starts are in {out}/starts. Continue with --resume.",
              file=sys.stderr)
        return 130
    from . import plots

    import json

    parameter_table(problem, result.theta_best).to_csv(out / "parameters.tsv", sep="\t", index=False)
    (out / "fit.json").write_text(json.dumps({"summary": result.summary(), "nllh_best": result.nllh_best,
                                              **result.attrs}, indent=1, default=str))
    result.to_dataframe().to_csv(out / "starts.tsv", sep="\t", index=False)
    objective.simulation_table(result.theta_best).to_csv(out / "simulatedData.tsv", sep="\t", index=False)
    plots.waterfall(result).savefig(out / "waterfall.png", dpi=120)
    plots.data_vs_fit(objective, result.theta_best).savefig(out / "data_vs_fit.png", dpi=120)
    plots.residual_plot(objective, result.theta_best).savefig(out / "residuals.png", dpi=120)
    if args.profiles:
        import pandas as pd

        from .profiles import profiles

        prs = profiles(objective, result.x_best)
        pd.DataFrame([{"parameterId": p.parameter, "scale": p.scale, "best": float(x), "lower95": p.lower,
                       "upper95": p.upper} for p, x in zip(prs, result.x_best)]).to_csv(
            out / "profiles.tsv", sep="\t", index=False)
        plots.profile_plot(prs).savefig(out / "profiles.png", dpi=120)
    print(result.summary())
    cert = result.attrs.get("certificate")
    if cert:
        print(f"accuracy certificate of the best fit: max relative error {cert['max_rel_error']:.2g} over "
              f"{len(cert['members'])} of {cert['n_members']} conditions ({cert['reference']})")
    print(f"wrote {out}/parameters.tsv, starts.tsv, simulatedData.tsv, fit.json (settings, certificate) and figures")
    print(f"log-likelihood: {float(-result.nllh_best)!r}")
    return 0 if any(s.status != "failed" for s in result.starts) else 1
