"""The same initial sync done by the Go original and by kaput-not, one after the other.

Each controller gets a fresh pair of peers from ``bench/scale.py`` (the Netmaker emulator and the
Kubernetes API stand-in, each in its own process, seeded alike: N hosts and Nodes, K networks,
optional IPv6 pod CIDRs, optional server-side latency), and is measured the same way, from
outside: requests per route key from the emulator's log, wall time to convergence, controller
CPU seconds and peak RSS. The Go original lists a network's egress rules once per node, so it
may not finish: past ``--timeout`` it is reported with ``converged: false`` and the rules it got
right so far (``rules_matching`` of ``rules_expected``).

The Go binary comes from ``scripts/build-peers kaput-not-go`` (cached after the first build),
or from ``KAPUT_NOT_GO`` when set. It is configured with its own variables only:
NETMAKER_API_URL, NETMAKER_USERNAME, NETMAKER_PASSWORD, KUBECONFIG and
LEADER_ELECTION_ENABLED=false.

Usage: .venv/bin/python bench/compare.py [--nodes N] [--networks K] [--dual-stack]
       [--latency-ms MS] [--timeout S] [--json] [--migration]
With --migration: one JSON object; exit 0 when ours wrote nothing on the Go original's rules.
Ratios are Go / ours (above 1: the Go original spends more). Exit code 0 when ours converged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from scale import (
    USERNAME,
    BenchError,
    Controller,
    Stack,
    add_stack_options,
    check_stack_options,
    finish,
    full_passes,
    measure_initial,
    python_controller,
    scrape,
    stack_of,
    wait_quiet,
)

import peers

GO_NAME = "kaput-not-go"
# The Go original's own variables; everything else in our environment is left out.
GO_VARIABLES = (
    "NETMAKER_API_URL",
    "NETMAKER_USERNAME",
    "NETMAKER_PASSWORD",
    "KUBECONFIG",
    "LEADER_ELECTION_ENABLED",
)
COMPARED = ("requests_total", "reads", "writes", "wall_seconds", "controller_cpu_seconds")


def go_binary() -> str:
    try:
        return peers.find_peers({GO_NAME: "KAPUT_NOT_GO"})[GO_NAME]
    except peers.PeerMissing as exc:
        raise BenchError(str(exc)) from exc


def go_env(url: str, username: str, password: str, kubeconfig: str) -> dict[str, str]:
    """The Go original's environment: ours without its variables, then its own, set."""
    env = {k: v for k, v in os.environ.items() if k not in GO_VARIABLES}
    env.update(
        NETMAKER_API_URL=url,
        NETMAKER_USERNAME=username,
        NETMAKER_PASSWORD=password,
        KUBECONFIG=kubeconfig,
        LEADER_ELECTION_ENABLED="false",
    )
    return env


def go_controller(stack: Stack, binary: str) -> Controller:
    env = go_env(stack.netmaker.url, USERNAME, stack.password, str(stack.kubeconfig))
    return Controller([binary], env, stack.workdir / "controller-go.log")


def one(args: argparse.Namespace, which: str, binary: str) -> dict[str, Any]:
    with stack_of(args.nodes, args.networks, args.dual_stack, args.latency_ms) as stack:
        controller = go_controller(stack, binary) if which == "go" else python_controller(stack)
        origin = time.time()
        controller.start()
        try:
            result = measure_initial(stack, controller, args.timeout, origin)
        finally:
            code = controller.stop()
        result["controller"] = which
        result["exit_code"] = code
        if not result["converged"]:
            print(f"{which} log (last lines):\n{controller.tail(8)}", file=sys.stderr)
        return result


def migration(args: argparse.Namespace, binary: str) -> dict[str, Any]:
    """The Go original converges, stops; ours starts on its rules. Zero churn = 0 writes."""
    with stack_of(args.nodes, args.networks, args.dual_stack, args.latency_ms) as stack:
        go = go_controller(stack, binary)
        go.start()
        try:
            before = measure_initial(stack, go, args.timeout, time.time())
        finally:
            go.stop()
        if not before["converged"]:
            raise BenchError(f"the Go original did not converge in {args.timeout:g}s")
        mark = stack.netmaker.call("stats")["length"]
        ours = python_controller(stack)
        ours.start()
        try:
            deadline = time.monotonic() + args.timeout
            while not _scraped_full_pass(stack):
                if time.monotonic() > deadline or not ours.alive():
                    raise BenchError(f"no full pass of ours:\n{ours.tail(8)}")
                time.sleep(0.2)
            wait_quiet(stack, 1.0)
        finally:
            ours.stop()
        stats = stack.netmaker.call("stats", since=mark)
        return {
            "nodes": args.nodes,
            "networks": args.networks,
            "dual_stack": args.dual_stack,
            "go_converged": True,
            "go_rules": before["rules_matching"],
            "ours_reads": stats["reads"],
            "ours_writes": stats["writes"],
            "ours_requests": stats["requests"],
            "still_converged": stack.converged(),
        }


def _scraped_full_pass(stack: Stack) -> bool:
    try:
        return full_passes(scrape(stack.metrics_port))[0] >= 1
    except OSError:  # not listening yet
        return False


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    binary = go_binary()
    go = one(args, "go", binary)
    ours = one(args, "python", binary)
    ratios = {key: ratio(go.get(key), ours.get(key)) for key in (*COMPARED, "peak_rss_mb")}
    return {
        "nodes": args.nodes,
        "networks": args.networks,
        "dual_stack": args.dual_stack,
        "latency_ms": args.latency_ms,
        "timeout": args.timeout,
        "go": go,
        "ours": ours,
        "ratio_go_over_ours": ratios,
    }


def summary(result: dict[str, Any]) -> str:
    rows = [*COMPARED, "peak_rss_mb", "converged", "rules_matching", "rules_expected"]
    lines = [
        f"{result['nodes']} nodes x {result['networks']} network(s), dual-stack "
        f"{result['dual_stack']}, emulator latency {result['latency_ms']} ms",
        f"{'':24} {'Go original':>14} {'ours':>14} {'Go / ours':>10}",
    ]
    for key in rows:
        r = result["ratio_go_over_ours"].get(key)
        lines.append(
            f"{key:24} {result['go'].get(key)!s:>14} {result['ours'].get(key)!s:>14} "
            f"{'' if r is None else r!s:>10}"
        )
    for which in ("go", "ours"):
        for key, count in result[which]["requests"].items():
            lines.append(f"  {which:5} {count:9d}  {key}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    add_stack_options(parser)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per run (600)")
    parser.add_argument(
        "--migration",
        action="store_true",
        help="instead: the Go original converges and stops, then ours starts on its rules",
    )
    args = parser.parse_args(argv)
    check_stack_options(parser, args)
    if args.migration:
        return finish(
            "compare",
            lambda: migration(args, go_binary()),
            None,
            lambda r: r["ours_writes"] == 0 and r["still_converged"],
        )
    return finish(
        "compare",
        lambda: compare(args),
        None if args.json else summary,
        lambda r: r["ours"]["converged"],
    )


if __name__ == "__main__":
    sys.exit(main())
