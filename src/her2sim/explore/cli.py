"""``her2sim explore``: registers the subcommand (cheap imports only; see ``her2sim.cli.EXTENSIONS``)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "explore", help="interactive explorer for teaching: pathway diagram, drugs, variants, guided lessons",
        description="Start a local web app (standard library server, no internet needed) and open it in the "
                    "browser: a pathway diagram coloured by activity, drug and dose controls, resistance "
                    "variants, live time courses against the untreated control and one guided lesson per "
                    "demonstration. Needs nothing beyond her2sim (extra her2sim[explore] is empty).")
    p.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 = any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface (default 127.0.0.1, this machine only; 0.0.0.0 lets students on the network connect)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser window")
    p.set_defaults(handler=run_explore_cli)
    return p


def run_explore_cli(args) -> int:
    from .app import serve

    return serve(host=args.host, port=args.port, open_browser=not args.no_browser)
