"""``her2sim sweep``: the command-line face of :func:`her2sim.sweep.sweep.run_sweep`.

Only argparse is imported here; the sweep machinery (and dask) is imported when the command runs.
Registered by listing ``"her2sim.sweep.cli"`` in ``her2sim.cli.EXTENSIONS``.
"""

from __future__ import annotations

import argparse
import sys


def _chunk(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"--chunk expects a whole number of conditions >= 1, got {text!r}")
    return value


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``sweep`` subcommand (its handler is :func:`run_sweep_cli`)."""
    p = subparsers.add_parser(
        "sweep", help="run a parameter/dose/variant sweep from a spec file, chunk by chunk, resumable",
        description="Run every condition of a sweep spec (TOML; see README 'Sweeps' and models/sweeps/) on the "
                    "batch path, writing each chunk's readouts to DIR as it finishes. Interrupted runs continue "
                    "with --resume. Open the results with her2sim.sweep.sweep.open_sweep(DIR).")
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep spec")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (new or empty, or the sweep to resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the sweep in DIR: skip finished chunks, run missing and failed ones")
    p.add_argument("--scheduler", default=None, metavar="local|processes|dask://HOST:PORT",
                   help="where chunks run: local (default, this process), processes (a dask LocalCluster with one "
                        "worker per core, or a process pool without dask), or an existing dask scheduler")
    p.add_argument("--chunk", type=_chunk, default=None, metavar="N",
                   help="conditions per chunk (default: the spec's [sweep] chunk)")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--progress", dest="progress", action="store_true", default=None,
                       help="show the progress line even when stderr is not a terminal")
    shown.add_argument("--quiet", dest="progress", action="store_false",
                       help="no progress line (the final summary is still printed)")
    p.add_argument("--dry-run", action="store_true",
                   help="validate the spec and print its axes, conditions and chunks without running")
    p.set_defaults(handler=run_sweep_cli)
    return p


def run_sweep_cli(args) -> int:
    """Handler of ``her2sim sweep``: 0 when every chunk ran, 1 if a chunk failed, 130 on Ctrl-C."""
    from .sweep import run_sweep
    from .load import load_sweep_spec

    if args.dry_run:
        print(load_sweep_spec(args.spec, chunk=args.chunk).describe())
        return 0
    try:
        result = run_sweep(args.spec, args.out, resume=args.resume, scheduler=args.scheduler, chunk=args.chunk,
                           progress=args.progress)
    except KeyboardInterrupt:
        print(f"\nher2sim sweep: interrupted; finished chunks are saved in {args.out}. Continue with: "
              f"her2sim sweep {args.spec} --out {args.out} --resume", file=sys.stderr)
        return 130
    print(result.summary())
    return 1 if result.chunks_failed else 0
