"""The command line: parse, build, call, and turn exceptions into one line and an exit code.

Only this module exits or catches broadly. Exit codes: 0 success, 1 the job ran and failed
(e.g. the demo did not converge), 2 bad usage or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from kaput_not import __version__

if TYPE_CHECKING:
    from kaput_not import config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaput-not",
        description="Keeps Netmaker egress rules equal to every Kubernetes node's pod CIDRs.",
    )
    parser.add_argument("--version", action="version", version=f"kaput-not {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "run",
        help="run the controller (configured by environment variables; see run --help)",
        description="Runs the controller until SIGTERM or SIGINT. All configuration comes from "
        "environment variables; a missing or invalid one stops the start with one line and "
        "exit code 2. Durations take 500ms, 30s, 10m, 1h30m or plain seconds.",
        epilog=_variables_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo = commands.add_parser(
        "demo",
        help="one full sync against the built-in Netmaker emulator (no cluster needed)",
        description="Seeds the built-in Netmaker emulator with simulated hosts, runs one full "
        "sync with the real client, cache, planner and executor, and prints what it did.",
    )
    demo.add_argument("--nodes", type=int, default=20, help="simulated Kubernetes nodes (20)")
    demo.add_argument("--networks", type=int, default=1, help="Netmaker networks per host (1)")
    demo.add_argument("--dual-stack", action="store_true", help="an IPv6 pod CIDR per node too")
    demo.add_argument("--concurrency", type=int, default=8, help="parallel Netmaker writes (8)")
    demo.add_argument("--json", action="store_true", help="print one JSON object")
    demo.add_argument("--log-level", default="WARNING", help="log level on stderr (WARNING)")
    return parser


def _variables_help() -> str:
    """Every environment variable `run` reads, from the one list in config.py."""
    from kaput_not import config

    width = max(len(name) for name, _, _ in config.VARIABLES)
    lines = ["environment variables (default in brackets):"]
    for name, default, meaning in config.VARIABLES:
        # "(required)", "(auto)"... say themselves; real defaults go in brackets.
        shown = f" {default}" if default.startswith("(") else f" [{default}]" if default else ""
        lines.append(f"  {name.ljust(width)}  {meaning}{shown}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "run":
        return _run()
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "demo":
        return _demo(args)
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects the rest


def _run() -> int:
    from kaput_not import config, logs
    from kaput_not.controller import app

    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.log_level, settings.log_format)
    try:
        return asyncio.run(_serve(settings))
    except app.StartupError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE


async def _serve(settings: config.Settings) -> int:
    from kaput_not.controller import app

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return await app.run(settings, stop)


def _demo(args: argparse.Namespace) -> int:
    from kaput_not.demo import DemoOptions, render, run_demo

    options = DemoOptions(
        nodes=args.nodes,
        networks=args.networks,
        dual_stack=args.dual_stack,
        concurrency=args.concurrency,
    )
    try:
        options.validate()
    except ValueError as exc:
        print(f"kaput-not demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = asyncio.run(run_demo(options))
    print(json.dumps(result.as_json(), sort_keys=True) if args.json else render(result))
    return EXIT_OK if result.converged and result.foreign_untouched else EXIT_FAILED
