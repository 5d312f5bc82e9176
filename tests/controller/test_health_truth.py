"""Issue 20, "health that tells the truth": a replica that cannot do its job says so in /readyz
(with the API's answer that is the cause) and in `kaput_not_blocked{reason}`, through the real
`run` code path against the Kubernetes API stand-in and the Netmaker emulator."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import httpx2
import pytest

from kaput_not.app import oneshot
from kaput_not.app import run as app
from kaput_not_standins.kube import GET_LEASE, LIST_NODES
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


@pytest.mark.parametrize("ask", ["kaput-not resync", "SIGHUP"])
async def test_a_full_pass_on_request_clears_a_resolved_hold_without_waiting_for_resync(
    stack: Stack, ask: str
):
    """Once a tripped delete budget was resolved (the nodes came back), the leader kept saying
    `holding writes back` until the next RESYNC_PERIOD. `kaput-not resync` (through the Lease)
    or SIGHUP queues a full pass now, and a pass that finds nothing to hold clears it."""
    port = free_port()
    names = [f"w{i}" for i in range(10)]
    for i, name in enumerate(names):
        stack.node(name, f"10.244.{i}.0/24")
    settings = stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}", RESYNC_PERIOD="10m", **ELECT)
    stop, hangup = asyncio.Event(), asyncio.Event()
    stack.running.append((stop, asyncio.create_task(app.run(settings, stop, hangup))))
    await eventually(lambda: len(stack.rules()) == 10, within=10)
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def readiness() -> str:
            return (await http.get("/readyz")).text

        async def holding() -> float:
            metrics = (await http.get("/metrics")).text
            [line] = [x for x in metrics.splitlines() if x.startswith("kaput_not_write_budget_h")]
            return float(line.split()[-1])

        for name in names[:8]:  # 8 of 10 nodes gone at once: the budget lets 5 rules go
            stack.kube.state.delete_node(name)
        await until(lambda: _has(readiness, "holding writes back"), 10, "the budget to trip")
        for i, name in enumerate(names[:8]):  # they come back: nothing is to be deleted now
            stack.kube.state.create_node(name, pod_cidrs=(f"10.244.{i}.0/24",))
        await eventually(lambda: len(stack.rules()) == 10, within=10, what="the rules back")
        await asyncio.sleep(1.0)
        assert "holding writes back" in await readiness()  # until a full pass says otherwise
        assert await holding() == 1.0
        if ask == "SIGHUP":
            hangup.set()
        else:
            print(await oneshot.request_resync(settings))
        await until(lambda: _lacks(readiness, "holding writes back"), 6, "the hold to clear")
        assert (await readiness()).startswith("ok: leader")
        assert await holding() == 0.0
    assert len(stack.rules()) == 10


async def _has(text: Callable[[], Awaitable[str]], words: str) -> bool:
    return words in await text()


async def _lacks(text: Callable[[], Awaitable[str]], words: str) -> bool:
    return words not in await text()
