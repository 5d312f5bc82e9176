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

from kaput_not import __revision__, __version__

if TYPE_CHECKING:
    from kaput_not import config

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: `plan`: changes are pending (terraform's detailed exit code). Errors there are 1, not 2.
EXIT_PENDING = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kaput-not",
        description="Keeps Netmaker egress rules equal to every Kubernetes node's pod CIDRs.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"kaput-not {__version__} (revision {__revision__})",
    )
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
    for name, summary in (
        ("plan", "print what a sync would do now, and why; --apply does one guarded sync"),
        ("status", "print every node's pod CIDRs, Netmaker host, networks and rules"),
    ):
        sub = commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Same environment variables as "
            "run; reads the cluster and Netmaker once."
            + (
                " Exit code: 0 in sync, 2 changes pending, 1 error (with --apply: 0 when the "
                "sync wrote everything, 1 otherwise)."
                if name == "plan"
                else ""
            ),
        )
        sub.add_argument(
            "nodes",
            nargs="*",
            metavar="NODE",
            help="only these Kubernetes nodes (and the rules named for them); default: all",
        )
        sub.add_argument(
            "--output",
            "-o",
            choices=("table", "wide", "json") if name == "status" else ("table", "json"),
            default="table",
            help=(
                "table: totals, then one line per node and the rules no node claims; wide: "
                "each node's rules too; json: all of it, for scripts (default: table)"
                if name == "status"
                else "table: the writes by node, what is held back, skipped nodes, and a "
                "closing count; json: the same, for scripts (default: table)"
            ),
        )
        _kube_flags(sub)
        if name == "plan":
            sub.add_argument("--apply", action="store_true", help="do one guarded sync and exit")
    ack = commands.add_parser(
        "acknowledge",
        help="let the delete budget's trip go, once (prints the trip and its cause)",
        description="Reads the write guard's state from the Lease, prints it (the trip and its "
        "cause), and records an acknowledgement: the next deletes the budget would refuse go "
        "ahead once, and the counts then become the new base. Same environment variables as "
        "run. The same as: kubectl annotate lease -n NAMESPACE LEADER_ELECTION_ID "
        "kaput-not.io/guard-acknowledge=<expiry, RFC 3339> --overwrite",
    )
    ack.add_argument(
        "--expires", default="1h", help="how long the acknowledgement stays usable (1h)"
    )
    commands.add_parser(
        "resync",
        help="ask the running leader for a full pass now (e.g. once a budget trip is resolved)",
        description="Writes kaput-not.io/resync-requested=<now> on the leader-election Lease; "
        "the leader reads the Lease at every renewal and queues one full pass through its work "
        "queue, which also clears a held state that is over (writes held back) without waiting "
        "for RESYNC_PERIOD. Same environment variables as run; needs leader election (without "
        "it, send SIGHUP to the `kaput-not run` process).",
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


def _kube_flags(sub: argparse.ArgumentParser) -> None:
    """kubectl's --kubeconfig and --context, for plan and status."""
    sub.add_argument(
        "--kubeconfig",
        metavar="FILE",
        help="kubeconfig file to use instead of KUBECONFIG (which may list several files, "
        "a:b, merged as kubectl does); with neither, the in-cluster service account when in a "
        "pod, else ~/.kube/config",
    )
    sub.add_argument(
        "--context", metavar="NAME", help="kubeconfig context to use instead of current-context"
    )


def _with_kube_flags(settings: config.Settings, args: argparse.Namespace) -> config.Settings:
    import dataclasses

    kubernetes = dataclasses.replace(
        settings.kubernetes, kubeconfig_flag=args.kubeconfig or None, context=args.context or None
    )
    return dataclasses.replace(settings, kubernetes=kubernetes)


def _variables_help() -> str:
    """Every environment variable `run` reads, from the one list in config/variables.py."""
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
    if args.command in ("plan", "status"):
        return _once(args)
    if args.command == "acknowledge":
        return _acknowledge(args)
    if args.command == "resync":
        return _resync()
    logging.basicConfig(
        level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if args.command == "demo":
        return _demo(args)
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects the rest


#: SIGTERM or SIGINT received before the event loop took the signals over (`_serve`).
_early_stop: list[int] = []


def _remember_stop(signum: int, _frame: object) -> None:
    _early_stop.append(signum)


def _run() -> int:
    # First, before the imports and the login: in a container this process is PID 1, and the
    # kernel drops a signal PID 1 has no handler for, so a pod deleted while it starts would
    # run on until the kubelet's SIGKILL.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _remember_stop)
    from kaput_not import config, logs
    from kaput_not.app.clients import StartupError

    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(settings.output.log_level, settings.output.log_format)
    try:
        return asyncio.run(_serve(settings))
    except StartupError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _once(args: argparse.Namespace) -> int:
    """`plan` and `status`: one reading, printed; one line and exit code 1 on a failure."""
    from kaput_not import config, logs
    from kaput_not.app import oneshot, report
    from kaput_not.app.clients import StartupError
    from kaput_not.kube.api import KubeError
    from kaput_not.netmaker.errors import NetmakerError

    # plan keeps 2 for "changes pending", so every error there is 1 (as terraform does).
    bad_config = EXIT_FAILED if args.command == "plan" else EXIT_USAGE
    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return bad_config
    settings = _with_kube_flags(settings, args)
    apply = bool(getattr(args, "apply", False))
    if apply and args.nodes:
        print("kaput-not plan: --apply syncs the whole cluster: name no NODE", file=sys.stderr)
        return EXIT_FAILED
    # Held back until the end: the error that ends the command is printed once, by itself.
    held = logs.configure_held("WARNING", settings.output.log_format)
    try:
        reading = asyncio.run(oneshot.read_once(settings, apply=apply))
    except StartupError as exc:
        held.finish(str(exc))
        print(f"kaput-not: {exc}", file=sys.stderr)
        return bad_config
    except (NetmakerError, KubeError, oneshot.LeaseHeld) as exc:
        held.finish(str(exc))
        print(f"kaput-not {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except BaseException:
        held.finish()  # a bug or Ctrl-C: everything logged on the way is shown
        raise
    held.finish()
    if reading.dry_run:
        print("kaput-not plan: DRY_RUN=true: planned only, nothing written", file=sys.stderr)
    cluster = settings.kubernetes.cluster_name
    unknown = report.unknown_names(reading, cluster, args.nodes)
    if unknown:
        print(
            f"kaput-not {args.command}: no Kubernetes node, nor rule of ours, is named "
            f"{', '.join(unknown)}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.command == "status":
        status = report.status_document(reading, cluster, args.nodes)
        if args.output == "json":
            print(json.dumps(status, indent=2))
        else:
            print(report.status_table(status, wide=args.output == "wide"))
        return EXIT_OK
    document = report.plan_document(reading, cluster, args.nodes)
    if reading.applied is not None:
        document["applied"] = {
            "created": reading.applied.result.created,
            "updated": reading.applied.result.updated,
            "deleted": reading.applied.result.deleted,
            "failed": len(reading.applied.result.failures),
        }
    print(json.dumps(document, indent=2) if args.output == "json" else report.plan_table(document))
    if reading.applied is not None:
        return EXIT_OK if reading.applied.ok else EXIT_FAILED
    return EXIT_OK if document["in_sync"] else EXIT_PENDING


def _acknowledge(args: argparse.Namespace) -> int:
    from kaput_not import config, logs
    from kaput_not.app import oneshot
    from kaput_not.app.clients import StartupError
    from kaput_not.controller.guard_state import StateError
    from kaput_not.kube.api import KubeError

    try:
        settings = config.load()
        expires = config.parse_duration("--expires", args.expires)
    except config.ConfigError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure("WARNING", settings.output.log_format)
    try:
        print(asyncio.run(oneshot.acknowledge(settings, expires)))
    except StartupError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (StateError, KubeError) as exc:
        print(f"kaput-not acknowledge: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _resync() -> int:
    from kaput_not import config, logs
    from kaput_not.app import oneshot
    from kaput_not.app.clients import StartupError
    from kaput_not.controller.guard_state import StateError

    try:
        settings = config.load()
    except config.ConfigError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure("WARNING", settings.output.log_format)
    try:
        print(asyncio.run(oneshot.request_resync(settings)))
    except StartupError as exc:
        print(f"kaput-not: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StateError as exc:
        print(f"kaput-not resync: {exc}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


async def _serve(settings: config.Settings) -> int:
    from kaput_not.app import run

    stop, resync = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, resync.set)  # a full pass now
    if _early_stop:  # asked to stop while starting: start, then stop at once, cleanly
        stop.set()
    return await run.run(settings, stop, resync)


def _demo(args: argparse.Namespace) -> int:
    from kaput_not.app.demo import DemoOptions, DemoUnavailable, render, run_demo

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
    try:
        result = asyncio.run(run_demo(options))
    except DemoUnavailable as exc:
        print(f"kaput-not demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(result.as_json(), sort_keys=True) if args.json else render(result))
    return EXIT_OK if result.converged and result.foreign_untouched else EXIT_FAILED
