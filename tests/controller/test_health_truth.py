"""Issue 20, "health that tells the truth": a replica that cannot do its job says so in /readyz
(with the API's answer that is the cause) and in `kaput_not_blocked{reason}`, through the real
`run` code path against the Kubernetes API stand-in and the Netmaker emulator."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import httpx2

from kaput_not.testing.kube import GET_LEASE, LIST_NODES
from tests.waiting import eventually

from .stack import Stack

ELECT = {"LEADER_ELECTION_ENABLED": "true", "LEADER_ELECTION_NAMESPACE": "kube-system"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if await check():
                return
        except httpx2.ConnectError:
            pass  # the health server is not listening yet
        assert time.monotonic() < deadline, f"not within {within}s: {what}"
        await asyncio.sleep(0.05)


def blocked(metrics: str, reason: str) -> float:
    [line] = [
        x for x in metrics.splitlines() if x.startswith(f'kaput_not_blocked{{reason="{reason}"')
    ]
    return float(line.split()[-1])


async def test_missing_lease_rbac_fails_readiness_with_the_403_and_a_metric(stack: Stack):
    """Without Lease RBAC every replica said `ok: standby` forever and nothing wrote."""
    port = free_port()
    stack.node("w1", "10.244.1.0/24")
    stack.kube.faults.fail(GET_LEASE, 403, "leases is forbidden", times=None)
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}", **ELECT))
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        answers: list[httpx2.Response] = []

        async def says_403() -> bool:
            answers.append(await http.get("/readyz"))
            return "403" in answers[-1].text

        await until(says_403, 10, "/readyz to name the 403")
        assert answers[-1].status_code == 503
        assert answers[-1].text.startswith("not ok: standby that can never lead: reading the lease")
        assert "kube-system/kaput-not" in answers[-1].text
        assert (await http.get("/healthz")).status_code == 200  # a restart mends no RBAC
        metrics = (await http.get("/metrics")).text
        assert blocked(metrics, "lease-forbidden") == 1.0
        assert blocked(metrics, "nodes-forbidden") == 0.0
        assert stack.rules() == []
        # The RBAC is fixed: it leads, writes, and is ready; the metric goes back to 0.
        stack.kube.faults.clear()
        await eventually(lambda: len(stack.rules()) == 1, within=10)

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(ready, 5, "ready")
        assert blocked((await http.get("/metrics")).text, "lease-forbidden") == 0.0


async def test_missing_node_rbac_names_the_403_while_waiting_for_the_first_list(stack: Stack):
    """Without node RBAC /readyz said `waiting for the first complete list of Kubernetes
    nodes` and left out the 403 that is the cause."""
    port = free_port()
    stack.kube.faults.fail(LIST_NODES, 403, "nodes is forbidden", times=None)
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}"))
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        answers: list[httpx2.Response] = []

        async def says_403() -> bool:
            answers.append(await http.get("/readyz"))
            return "403" in answers[-1].text

        await until(says_403, 10, "/readyz to name the 403")
        assert answers[-1].status_code == 503
        assert answers[-1].text.startswith(
            "not ok: waiting for the first complete list of Kubernetes nodes: listing or "
            "watching Kubernetes nodes failed:"
        )
        assert "nodes is forbidden" in answers[-1].text
        metrics = (await http.get("/metrics")).text
        assert blocked(metrics, "nodes-forbidden") == 1.0
        stack.kube.faults.clear()

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await until(ready, 10, "ready")
        assert blocked((await http.get("/metrics")).text, "nodes-forbidden") == 0.0
