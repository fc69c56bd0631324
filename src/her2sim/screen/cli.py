"""``her2sim screen``: the command line of :mod:`her2sim.screen.screen` (parses, checks and calls the API)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import Her2simError
from .screen import ENGINES, WILD_TYPE


def _param(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--set expects NAME=VALUE such as NK_activity=0, got {text!r}")
    name, value = (s.strip() for s in text.split("=", 1))
    return name, value


def _grid(text: str) -> tuple[str, list]:
    from .screen import parse_dose_grid

    try:
        return parse_dose_grid(text)
    except Her2simError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_screen_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``screen`` subcommand to an argparse subparsers object (``her2sim screen``)."""
    p = subparsers.add_parser(
        "screen", help="dose-response / dose-matrix screen with synergy scores per background",
        description="Simulate every dose (combination) in each background, print single-agent metrics and, for "
                    "two or three drugs, synergy summaries (mean over combination cells; > 0 = synergy, CI < 1 = "
                    "synergy). For a dish without NK cells add --set NK_activity=0.")
    p.add_argument("--model", default="default", help="bundled model name or path (default: default)")
    p.add_argument("--drugs", required=True, help="one, two or three drugs, comma separated, e.g. trastuzumab,alpelisib")
    p.add_argument("--doses", action="append", default=[], type=_grid, metavar="DRUG=DOSES",
                   help="per drug (repeatable): a list 'A=0,1,10,100nM' or a log grid 'A=0:1nM..10uM:7'")
    p.add_argument("--readout", default="viable_cells",
                   help="e.g. pAKT@24h, mean:pAKT, auc:pERK, steady:pAKT, viable_cells@72h, gr@72h (default: "
                        "viable_cells at the end of the run)")
    p.add_argument("--variant", action="append", default=[], metavar="V", help="variant applied to every background")
    p.add_argument("--background", action="append", default=[], metavar="V1+V2",
                   help=f"background to compare (repeatable); '{WILD_TYPE}' = no extra variant")
    p.add_argument("--time", default="72h", help="assay length (default 72h)")
    p.add_argument("--set", action="append", default=[], type=_param, metavar="NAME=VALUE", dest="params",
                   help="parameter override (repeatable), e.g. NK_activity=0")
    p.add_argument("--methods", default=None, help="synergy methods, comma separated (default: hsa,bliss and, with "
                                                    ">= 3 non-zero doses per drug, loewe,zip)")
    p.add_argument("--engine", default="scipy", choices=ENGINES)
    p.add_argument("--rtol", type=float, default=1e-6)
    p.add_argument("--out", default=None, metavar="FILE", help="write the screen (+ scores): .nc or .csv")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="curves (one drug) or effect + synergy maps")
    p.set_defaults(handler=run_screen_cli)
    return p


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Hook for ``her2sim.cli.EXTENSIONS``: registers ``her2sim screen`` (see :func:`add_screen_parser`)."""
    return add_screen_parser(subparsers)


def run_screen_cli(args) -> int:
    """Run ``her2sim screen`` from parsed arguments; prints tables, writes --out/--plot; returns 0."""
    from .screen import (SYNERGY_METHODS, ScreenInputError, dose_letters, dose_matrix, dose_response,
                         format_metrics_table, format_synergy_table, single_agent_metrics, synergy_scores)
    from ..model.units import parse_quantity
    from ..validate import PLOT_SUFFIXES, check_output_file, check_rtol, check_time

    check_rtol(args.rtol, "--rtol")  # every option before any work
    check_time(args.time, "--time")
    out = check_output_file(args.out, "--out", (".nc", ".csv")) if args.out else None
    if args.methods:
        unknown = [m.strip() for m in args.methods.split(",") if m.strip() not in SYNERGY_METHODS]
        if unknown:
            raise ScreenInputError(f"--methods: unknown synergy method(s) {unknown}; use {', '.join(SYNERGY_METHODS)}")
        fitted = {"loewe", "zip"} & {m.strip() for m in args.methods.split(",")}
        few = [d for d, g in args.doses if sum(1 for x in g if parse_quantity(x).magnitude != 0) < 3]
        if fitted and few:
            raise ScreenInputError(f"--methods {', '.join(sorted(fitted))} fit a Hill curve per drug and need >= 3 "
                                   f"non-zero doses; {few} have fewer: add doses or use hsa,bliss")
    plot = check_output_file(args.plot, "--plot", PLOT_SUFFIXES) if args.plot else None

    drugs = [d.strip() for d in args.drugs.split(",") if d.strip()]
    grids = dict(args.doses)
    missing = [d for d in drugs if d not in grids]
    if missing or set(grids) - set(drugs):
        raise ScreenInputError(f"--doses must give one grid per drug in --drugs {drugs}; missing {missing}, "
                               f"unexpected {sorted(set(grids) - set(drugs))}")
    common = {"variants": args.variant, "backgrounds": args.background or None, "time": args.time,
                  "parameters": dict(args.params), "engine": args.engine, "rtol": args.rtol}
    if len(drugs) == 1:
        ds = dose_response(args.model, drugs[0], grids[drugs[0]], args.readout, **common)
    else:
        ds = dose_matrix(args.model, drugs, [grids[d] for d in drugs], args.readout, **common)
    print(f"screen: {', '.join(ds.attrs[f'drug_{x}'] for x in dose_letters(ds))}; readout {ds.attrs['readout']} "
          f"[{ds.attrs['readout_unit']}]; {int((ds.status != 'ok').sum())} of {ds.status.size} members not ok")
    metrics = single_agent_metrics(ds, refine=False)
    print(format_metrics_table(metrics))
    scores = None
    if len(drugs) > 1:
        if args.methods:
            methods = [m.strip() for m in args.methods.split(",")]
        else:
            enough = all(ds[f"dose_{x}"].size > 3 for x in dose_letters(ds)) and len(drugs) == 2
            methods = list(SYNERGY_METHODS if enough else ("hsa", "bliss"))
        scores = synergy_scores(ds, methods)
        print(format_synergy_table(scores))
    if out is not None:
        _write(ds, scores, out)
        print(f"wrote {out}")
    if plot is not None:
        from . import plots as screen_plots
        from ..io.atomic import atomic_path

        fig = screen_plots.plot_dose_response(ds) if scores is None else screen_plots.plot_screen_summary(ds, scores)
        with atomic_path(plot) as tmp:
            fig.savefig(tmp, dpi=120, format=plot.suffix[1:].lower())
        print(f"wrote {plot}")
    return 0


def _write(ds, scores, path: Path) -> None:
    import xarray as xr

    from ..io.atomic import atomic_path
    from .screen import ScreenInputError

    if path.suffix.lower() == ".nc":
        full = ds if scores is None else xr.merge([ds, scores.drop_vars([v for v in scores.coords if v in ds.coords])],
                                                  combine_attrs="override")
        if scores is not None and "reference_model_warning" in scores.attrs:
            full.attrs["reference_model_warning"] = scores.attrs["reference_model_warning"]
        with atomic_path(path) as tmp:
            full.to_netcdf(tmp, engine="scipy")
    elif path.suffix.lower() == ".csv":
        per_cell = ds if scores is None else xr.merge(
            [ds, scores[[v for v in scores.data_vars if scores[v].dims == ds.readout.dims]]], combine_attrs="override")
        frame = per_cell.to_dataframe().reset_index()
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
    else:
        raise ScreenInputError(f"--out must end in .nc or .csv, got {path.name}")
