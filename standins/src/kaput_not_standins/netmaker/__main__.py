"""Run the Netmaker emulator alone: ``python -m kaput_not_standins.netmaker --port 8081 ...``.

Prints the base URL (one line on stdout, so scripts can read it) and serves until SIGINT or
SIGTERM. The password comes from ``--password`` or ``KAPUT_NOT_EMULATOR_PASSWORD`` and is never
printed. ``--seed-hosts N --networks K`` creates K networks and N hosts joined to all of them,
named ``<host-prefix>1`` ... ``<host-prefix>N``, so a controller has something to reconcile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from .emulator import NetmakerEmulator
from .state import NetmakerState

_PASSWORD_ENV = "KAPUT_NOT_EMULATOR_PASSWORD"
_MASTER_KEY_ENV = "KAPUT_NOT_EMULATOR_MASTER_KEY"


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m kaput_not_standins.netmaker",
        description="Serve an emulated Netmaker v1.5.1 CE API until SIGINT/SIGTERM.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=os.environ.get(_PASSWORD_ENV))
    parser.add_argument("--master-key", default=os.environ.get(_MASTER_KEY_ENV))
    parser.add_argument("--jwt-validity-seconds", type=int, default=43200)
    parser.add_argument("--seed-hosts", type=int, default=0, metavar="N")
    parser.add_argument(
        "--networks", type=int, default=None, metavar="K", help="default: 1 with --seed-hosts"
    )
    parser.add_argument("--network-prefix", default="net-")
    parser.add_argument("--host-prefix", default="node-")
    args = parser.parse_args(argv)
    if not args.password:
        parser.error(f"--password (or {_PASSWORD_ENV}) is required")
    if args.networks is None:
        args.networks = 1 if args.seed_hosts else 0
    if args.seed_hosts < 0 or args.networks < 0:
        parser.error("--seed-hosts and --networks must not be negative")
    if args.seed_hosts and not args.networks:
        parser.error("--seed-hosts needs at least one network")
    return args


def seed(
    state: NetmakerState, *, hosts: int, networks: int, network_prefix: str, host_prefix: str
) -> None:
    """K networks, then N hosts each joined to every one of them."""
    names = [f"{network_prefix}{index}" for index in range(1, networks + 1)]
    for name in names:
        state.add_network(name)
    for index in range(1, hosts + 1):
        state.add_host(f"{host_prefix}{index}", names)


async def _serve(emulator: NetmakerEmulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with emulator:
        print(emulator.base_url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    emulator = NetmakerEmulator(
        username=args.username,
        password=args.password,
        master_key=args.master_key,
        jwt_validity_seconds=args.jwt_validity_seconds,
        host=args.host,
        port=args.port,
    )
    if args.networks:
        seed(
            emulator.state,
            hosts=args.seed_hosts,
            networks=args.networks,
            network_prefix=args.network_prefix,
            host_prefix=args.host_prefix,
        )
        print(f"seeded {args.seed_hosts} hosts in {args.networks} networks", file=sys.stderr)
    asyncio.run(_serve(emulator))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
