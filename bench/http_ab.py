"""Controller CPU per write by the Netmaker client's way of sending, alternated in one sitting.

Each trial is `bench/scale.py`'s initial sync on a fresh stack (the emulator and the Kubernetes
API stand-in in their own processes, every answer delayed by ``--latency-ms``), with the
controller's HTTP layer chosen by a variant:

- ``direct``: the product as it ships, requests sent straight to the httpcore2 pool of httpx2's
  own transport;
- ``httpx2``: every request through `httpx2.AsyncClient` with the transports it builds itself
  (the way the client takes behind a proxy).

An earlier version (``git show 8f12fb3:bench/network_ab.py``) also measured the private asyncio
backend that docs/benchmarks.md tells about.

The variant is chosen in the controller's own process by patching one name before `run`
starts, so everything else is the shipped code. Trials run in rounds, each round every variant
once, in a rotated order, so load on a shared machine falls on every variant alike.

``--focused`` measures the client alone, which a busy machine disturbs far less: the emulator
in a child process (every answer delayed by ``--latency-ms``), and in this process one
`NetmakerClient` per variant, each sending batches of ``--batch`` egress creates, 4 in flight
(NETMAKER_CONCURRENCY's default). Variants take turns batch by batch, ``--rounds`` times; the
figure is this process's CPU time (`time.process_time`) per create.

``--cachegrind SMALL,LARGE`` counts instructions instead, which load moves far less: the
controller under ``valgrind --tool=cachegrind`` for an initial sync at SMALL and at LARGE nodes,
the difference divided by the writes between them.

Usage: .venv/bin/python bench/http_ab.py --nodes 10000 --dual-stack --latency-ms 1 \
           [--rounds 4] [--variants direct,httpx2] [--json]
       .venv/bin/python bench/http_ab.py --focused --latency-ms 1 [--rounds 20] [--batch 2000]
       .venv/bin/python bench/http_ab.py --cachegrind 1000,3000 --dual-stack --latency-ms 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # the sibling benchmark, importable once its folder is on the path

from kaput_not.core.model import EgressSpec
from kaput_not.netmaker import sender as sender_module
from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.settings import ClientSettings

#: What each variant runs in the controller's process before `kaput-not run`.
PATCHES = {
    "direct": "",
    "httpx2": (
        "import kaput_not.netmaker.sender as c\n"
        "c._default_transport = lambda verify: None  # httpx2 builds its own transports\n"
    ),
}
RUN = (
    "import sys\nfrom kaput_not.cli import main\n"
    "sys.argv = ['kaput-not', 'run']\nsys.exit(main())\n"
)


def trial(
    variant: str, args: argparse.Namespace, nodes: int | None = None, counts: str | None = None
) -> dict[str, Any]:
    """One initial sync; with `counts`, under cachegrind, its output written to that file."""
    with scale.stack_of(nodes or args.nodes, 1, args.dual_stack, args.latency_ms) as stack:
        controller = scale.python_controller(stack)
        controller.argv = [sys.executable, "-c", PATCHES[variant] + RUN]
        if counts is not None:
            prefix = ["valgrind", "--tool=cachegrind", "--cache-sim=no"]
            controller.argv = [*prefix, f"--cachegrind-out-file={counts}", *controller.argv]
        origin = time.time()
        controller.start()
        try:
            result = scale.measure_initial(stack, controller, args.timeout, origin)
        finally:
            controller.stop()
    if counts is not None:
        found = re.search(r"^summary: (\d+)", Path(counts).read_text(), re.MULTILINE)
        result["instructions"] = int(found.group(1)) if found else None
    result["variant"] = variant
    result["load1"] = round(os.getloadavg()[0], 2)
    return result


def instructions_per_write(args: argparse.Namespace, variants: list[str]) -> dict[str, Any]:
    """Instructions a write: the difference between an initial sync at SMALL and at LARGE nodes,
    divided by the writes between them (start-up cancels out); load moves it far less than CPU
    time."""
    small, large = (int(n) for n in args.cachegrind.split(","))
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="kaput-not-cg-") as tmp:
        for v in variants:
            a, b = (trial(v, args, n, f"{tmp}/{v}-{n}.out") for n in (small, large))
            if a["instructions"] is None or b["instructions"] is None or b["writes"] == a["writes"]:
                found[v] = None
                continue
            per = (b["instructions"] - a["instructions"]) / (b["writes"] - a["writes"])
            found[v] = {"instructions_per_write": round(per), "runs": [a, b]}
            print(f"{v}: {per / 1e6:.3f} M instructions a write", file=sys.stderr, flush=True)
    return found


def focused_client(variant: str, settings: ClientSettings) -> NetmakerClient:
    """A client on the variant's HTTP layer, built as the controller would build it."""
    if variant == "httpx2":
        with mock.patch.object(sender_module, "_default_transport", return_value=None):
            return NetmakerClient(settings)
    return NetmakerClient(settings)


async def focused(args: argparse.Namespace, variants: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kaput-not-ab-") as tmp:
        password = os.urandom(12).hex()
        peer = scale.Peer("netmaker", Path(tmp), {"KAPUT_NOT_SCALE_PASSWORD": password})
        try:
            peer.call("setup", networks=["net-0"], latency_s=args.latency_ms / 1000)
            peer.call("hosts", hosts=["ab-0"])
            settings = ClientSettings(peer.url, scale.USERNAME, password)
            clients = {v: focused_client(v, settings) for v in variants}
            [node] = await clients[variants[0]].list_nodes()
            spec = EgressSpec(
                "net-0", "ab-0 pods (1/1)", "ab", "10.244.0.0/24", False, True, {node.id: 500}
            )

            size: int = args.batch

            async def batch(client: NetmakerClient) -> float:
                left = size

                async def worker() -> None:
                    nonlocal left
                    while left > 0:
                        left -= 1
                        await client.create_egress(spec)

                started = time.process_time()
                await asyncio.gather(*(worker() for _ in range(4)))
                return 1000 * (time.process_time() - started) / size

            for client in clients.values():  # log in, open the connections
                await batch(client)
            per_write: dict[str, list[float]] = {v: [] for v in variants}
            for r in range(args.rounds):
                for v in variants[r % len(variants) :] + variants[: r % len(variants)]:
                    per_write[v].append(round(await batch(clients[v]), 4))
                print(
                    f"round {r + 1}: { ({v: x[-1] for v, x in per_write.items()}) }",
                    file=sys.stderr,
                )
            for client in clients.values():
                await client.aclose()
        finally:
            peer.stop()
    return {
        v: {
            "cpu_ms_per_write": xs,
            "median": round(statistics.median(xs), 4),
            "spread": round(max(xs) - min(xs), 4),
        }
        for v, xs in per_write.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    scale.add_stack_options(parser)
    parser.add_argument("--rounds", type=int, default=4, help="trials per variant (4)")
    parser.add_argument("--variants", default="direct,httpx2")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to converge (600)")
    parser.add_argument("--focused", action="store_true", help="the client alone (see above)")
    parser.add_argument("--batch", type=int, default=2000, help="creates per batch (--focused)")
    parser.add_argument(
        "--cachegrind",
        metavar="SMALL,LARGE",
        help="instructions a write: the controller under cachegrind at two node counts",
    )
    args = parser.parse_args(argv)
    scale.check_stack_options(parser, args)
    variants = args.variants.split(",")
    if not variants or any(v not in PATCHES for v in variants):
        parser.error(f"--variants takes a comma-separated subset of {', '.join(PATCHES)}")
    if args.focused:
        print(json.dumps(asyncio.run(focused(args, variants))))
        return 0
    if args.cachegrind:
        print(json.dumps(instructions_per_write(args, variants)))
        return 0
    trials: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            result = trial(variant, args)
            trials.append(result)
            print(
                f"round {r + 1} {variant}: converged={result['converged']} "
                f"writes={result['writes']} cpu_ms_per_write={result['cpu_ms_per_write']} "
                f"wall={result['wall_seconds']}s rss={result['peak_rss_mb']}MB "
                f"load={result['load1']}",
                file=sys.stderr,
                flush=True,
            )
    summary: dict[str, Any] = {}
    for variant in variants:
        own = [t["cpu_ms_per_write"] for t in trials if t["variant"] == variant]
        good = [x for x in own if x is not None]
        summary[variant] = {
            "cpu_ms_per_write": good,
            "median": round(statistics.median(good), 3) if good else None,
            "spread": round(max(good) - min(good), 3) if good else None,
        }
    print(json.dumps({"summary": summary, "trials": trials} if args.json else summary))
    return 0 if all(t["converged"] for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
