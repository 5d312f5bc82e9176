"""Fencing of leader election, with real `kaput-not run` processes and a real kube-apiserver.

A replica may write to Netmaker only while its last Lease renewal is younger than the renew
deadline (docs/design.md section 6: writes stop the moment leadership is in doubt). These tests
freeze a leader with SIGSTOP past its lease, or kill it, and check from outside that the old
leader never writes once a standby has taken over, and that a replica takes over in time.

Netmaker here is the built-in emulator (`kaput_not_standins.netmaker`), not the real server
that the `controllers` fixture normally points at (its `mesh` fixture still starts one, unused).
The emulator is kept for these tests because only it logs every request with the caller's
User-Agent (`kaput-not/<version> (<POD_NAME>)`, so which replica sent it) and the time it was
read: that log is the evidence of who wrote when. Its clock is the wall clock (`time.time`) of
this host, the same clock the replicas stamp into the Lease's `acquireTime`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from kaput_not_standins.netmaker import NetmakerEmulator
from kaput_not_standins.netmaker.requestlog import LogEntry
from tests.contract.seeding import poll
from tests.peers import skip_module_without_peers

from .conftest import MARKER, Controller, StartController, leader_flag
from .controlplane import Kube, Process

skip_module_without_peers("kube-apiserver", "etcd", "netmaker")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WITHIN = 20.0  # seconds for the controllers to converge after a change
NAMESPACE = "kube-system"
NETWORK = "fence"
USERNAME = "kaput-not"
LEASE_SECONDS, RENEW_SECONDS, RETRY_SECONDS = 4.0, 3.0, 1.0
# A standby sees the leader's last renewal up to one jittered retry (1.2 x) after it was
# made, waits one lease duration from then, and tries at its next jittered retry: plus 1 s of
# slack for API calls on a busy machine (the bound of the two-replica test in
# test_controller_e2e.py).
TAKEOVER_BOUND = LEASE_SECONDS + 2 * 1.2 * RETRY_SECONDS + 1.0
SEEDS, CONCURRENCY = 12, 4  # nodes seeded before the replicas start; writes in flight at once
EGRESS_WRITES = frozenset({"POST /api/v1/egress", "PUT /api/v1/egress", "DELETE /api/v1/egress"})


# ------------------------------------------------------------------ fixtures


@dataclass
class Emulated:
    """The Netmaker emulator serving on its own thread, and the credentials it accepts."""

    server: NetmakerEmulator
    password: str

    def ours(self) -> list[dict[str, Any]]:
        """Rules in the test network whose description carries the kaput-not marker."""
        return [
            e
            for e in self.server.state.egresses(NETWORK)
            if str(e["description"]).startswith(MARKER)
        ]

    def egress_writes(self, replica: str) -> list[LogEntry]:
        """Egress creates, updates and deletes that `replica` sent, in the order they arrived."""
        return [
            e
            for e in self.server.log.entries
            if e.route in EGRESS_WRITES and e.user_agent.endswith(f"({replica})")
        ]


@pytest.fixture
def emulator() -> Iterator[Emulated]:
    password = uuid.uuid4().hex
    server = NetmakerEmulator(username=USERNAME, password=password, clock=time.time)
    server.state.add_network(NETWORK)
    with server.run_in_thread() as running:
        yield Emulated(running, password)


@pytest.fixture
def replicas(
    emulator: Emulated, controllers: StartController, lease_name: str
) -> Callable[[str], Controller]:
    """`start(name)`: a `kaput-not run` replica on the emulator, electing on `lease_name`.

    Depends on `emulator` first, so every replica is stopped before the emulator is.
    """

    def start(name: str) -> Controller:
        return controllers(
            name,
            NETMAKER_API_URL=emulator.server.base_url,
            NETMAKER_USERNAME=USERNAME,
            NETMAKER_PASSWORD=emulator.password,
            LEADER_ELECTION_ENABLED="true",
            LEADER_ELECTION_NAMESPACE=NAMESPACE,
            LEADER_ELECTION_ID=lease_name,
            LEADER_ELECTION_LEASE_DURATION=f"{LEASE_SECONDS:g}s",
            LEADER_ELECTION_RENEW_DEADLINE=f"{RENEW_SECONDS:g}s",
            LEADER_ELECTION_RETRY_PERIOD=f"{RETRY_SECONDS:g}s",
            RESYNC_PERIOD="2s",  # the leader keeps doing full passes
            NETMAKER_CONCURRENCY=str(CONCURRENCY),
        )

    return start


# ------------------------------------------------------------------ helpers


@dataclass
class Fleet:
    """Kubernetes nodes, each with its Netmaker host in the emulator, and the rules they need."""

    kube: Kube
    emulator: Emulated
    nodes: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (CIDR, NM node)

    async def add(self, name: str, cidr: str) -> None:
        # The host joins Netmaker first, as it does in a real cluster.
        host = self.emulator.server.state.add_host(name, [NETWORK])
        self.nodes[name] = (cidr, host.node_id(NETWORK))
        await self.kube.create_node(name, cidr)

    def expected(self) -> list[dict[str, Any]]:
        """The owned fields of every rule the contract asks for (one CIDR per node here)."""
        return sorted(
            (
                {
                    "network": NETWORK,
                    "description": f"{MARKER}index=0",
                    "name": f"{name} pods (1/1)",
                    "range": cidr,
                    "nat": False,
                    "status": True,
                    "nodes": {nm_node: 500},
                }
                for name, (cidr, nm_node) in self.nodes.items()
            ),
            key=lambda r: str(r["name"]),
        )

    async def converge(self, *, within: float = WITHIN) -> None:
        want = self.expected()

        async def ours() -> list[dict[str, Any]]:
            return owned(self.emulator.ours())

        await poll(
            ours,
            lambda rules: rules == want,
            what=f"our rules to be the {len(want)} the nodes need",
            deadline=within,
        )


def owned(rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("network", "description", "name", "range", "nat", "status", "nodes")
    return sorted(({k: r[k] for k in keys} for r in rules), key=lambda r: str(r["name"]))


@contextlib.asynccontextmanager
async def churn(fleet: Fleet, prefix: str, second_octet: int) -> AsyncIterator[None]:
    """Add a node (and its host) every 0.2 s while the block runs, so there is always work."""
    stop = asyncio.Event()

    async def run() -> None:
        for n in range(256):
            if stop.is_set():
                return
            await fleet.add(f"{prefix}{n}", f"10.{second_octet}.{n}.0/24")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)
        raise AssertionError(f"churn {prefix!r} ran out of CIDRs")

    task = asyncio.create_task(run())
    try:
        yield
    finally:
        stop.set()
        await task  # its failure, if any, is the test's


async def holder(kube: Kube, lease: str) -> str | None:
    return await kube.holder(NAMESPACE, lease)


async def acquired_at(kube: Kube, lease: str) -> float:
    """The Lease's acquireTime (stamped by the new holder from its wall clock) as a Unix time."""
    found = await kube.lease(NAMESPACE, lease)
    assert found is not None, f"Lease {lease} is gone"
    stamp = str(found["spec"]["acquireTime"])
    return datetime.datetime.fromisoformat(stamp).timestamp()


async def exit_code(process: Process, within: float) -> int | None:
    """The exit code once the process has exited, or None if it still runs after `within`."""
    give_up = time.monotonic() + within
    while time.monotonic() < give_up:
        code = process.popen.poll()
        if code is not None:
            return code
        await asyncio.sleep(0.1)
    return None


async def elect(kube: Kube, lease: str, started: list[Controller]) -> Controller:
    """Wait until one of `started` holds the Lease and every one is ready; return the leader."""
    names = {c.name: c for c in started}
    name = await poll(
        lambda: holder(kube, lease),
        lambda h: h in names,
        what="one replica to hold the Lease",
        deadline=WITHIN,
    )
    await asyncio.gather(*(c.ready() for c in started))  # a standby is ready once synced
    return names[str(name)]


# ------------------------------------------------------------------ the tests


async def test_a_leader_frozen_past_its_lease_never_writes_after_a_standby_took_over(
    kube: Kube, emulator: Emulated, replicas: Callable[[str], Controller], lease_name: str
):
    fleet = Fleet(kube, emulator)
    for n in range(SEEDS):
        await fleet.add(f"seed{n}", f"10.244.{n}.0/24")
    started = [replicas("replica-a"), replicas("replica-b")]
    leader = await elect(kube, lease_name, started)
    [standby] = [c for c in started if c is not leader]
    await fleet.converge()
    assert emulator.egress_writes(leader.name), "the leader converged without writing"
    assert not emulator.egress_writes(standby.name), "the standby wrote while standing by"

    # Freeze the leader in the middle of one plan: every update is stored when it arrives and
    # answered 0.5 s later, and a hand edit of every seeded rule makes the next full pass plan
    # SEEDS updates, CONCURRENCY of them in flight at once and the rest waiting their turn.
    emulator.server.faults.latency("PUT /api/v1/egress", 0.5, times=None, when="after")
    frozen = False
    try:
        async with churn(fleet, "before", 245):
            await asyncio.sleep(1.0)  # node events keep arriving: the leader is writing
            for egress in emulator.ours():
                if str(egress["name"]).startswith("seed"):
                    emulator.server.state.update_egress_raw(str(egress["id"]), status=False)

            async def in_flight() -> list[LogEntry]:
                return [
                    e
                    for e in emulator.egress_writes(leader.name)
                    if e.route == "PUT /api/v1/egress" and e.status is None
                ]

            await poll(
                in_flight,
                lambda updates: len(updates) >= CONCURRENCY,
                what=f"{leader.name} to have {CONCURRENCY} repairs in flight",
                deadline=WITHIN,
                interval=0.002,
            )
            stopped_wall, stopped = time.time(), time.monotonic()
            os.kill(leader.process.popen.pid, signal.SIGSTOP)
            frozen = True
            pending = len(await in_flight())
            await poll(
                lambda: holder(kube, lease_name),
                lambda h: h == standby.name,
                what=f"{standby.name} to take the Lease from the frozen {leader.name}",
                deadline=WITHIN,
            )
            seen = time.monotonic() - stopped
            emulator.server.faults.clear()  # the new leader catches up at full speed

            async def standby_writes() -> list[LogEntry]:
                return emulator.egress_writes(standby.name)

            first = (
                await poll(
                    standby_writes,
                    bool,
                    what=f"{standby.name} to write to Netmaker as the new leader",
                    deadline=WITHIN,
                )
            )[0]
        takeover_at = await acquired_at(kube, lease_name)
        async with churn(fleet, "during", 246):
            await asyncio.sleep(2.0)  # the old leader stays frozen while more nodes come
        async with churn(fleet, "after", 247):
            resumed = time.monotonic()
            os.kill(leader.process.popen.pid, signal.SIGCONT)
            frozen = False
            code = await exit_code(leader.process, within=20.0)
            exited = time.monotonic() - resumed
    finally:
        if frozen:  # the test failed while the leader was frozen: let it be stopped
            os.kill(leader.process.popen.pid, signal.SIGCONT)

    takeover = takeover_at - stopped_wall
    fenced = leader.process.log.read_text(errors="replace").count("not allowed to write now")
    afterwards = collections.Counter(
        e.route
        for e in emulator.server.log.entries
        if e.user_agent.endswith(f"({leader.name})") and e.at >= takeover_at
    )
    print(
        f"\nfroze {leader.name} with {pending} egress writes in flight; {standby.name} acquired "
        f"the Lease {takeover:.2f}s after SIGSTOP (the test saw it after {seen:.2f}s) and first "
        f"wrote {first.at - stopped_wall:.2f}s after SIGSTOP; after SIGCONT {leader.name} "
        f"skipped {fenced} writes and exited {code} within {exited:.2f}s; its requests "
        f"after the takeover: {dict(afterwards) or 'none'}"
    )
    late = [
        f"{e.route} {e.path} at takeover{e.at - takeover_at:+.3f}s"
        for e in emulator.egress_writes(leader.name)
        if e.at >= takeover_at
    ]
    assert not late, f"{leader.name} wrote after {standby.name} took the Lease over: {late}"
    assert first.at >= takeover_at  # the two clocks agree: the new leader wrote after acquiring
    assert takeover < TAKEOVER_BOUND, f"took {takeover:.1f}s"
    assert code == 1, f"{leader.name} still ran {exited:.0f}s after SIGCONT (code {code})"

    await fleet.converge()
    assert await holder(kube, lease_name) == standby.name
    assert leader_flag(await standby.metrics()) == 1


async def test_three_replicas_a_killed_leader_is_replaced_within_lease_plus_retry(
    kube: Kube, emulator: Emulated, replicas: Callable[[str], Controller], lease_name: str
):
    fleet = Fleet(kube, emulator)
    for n in range(3):
        await fleet.add(f"seed{n}", f"10.244.{n}.0/24")
    started = [replicas("replica-a"), replicas("replica-b"), replicas("replica-c")]
    leader = await elect(kube, lease_name, started)
    others = {c.name: c for c in started if c is not leader}
    await fleet.converge()
    await asyncio.sleep(2 * RETRY_SECONDS)  # the standbys try a few times and stay standbys
    assert await holder(kube, lease_name) == leader.name
    for standby in others.values():
        assert not emulator.egress_writes(standby.name), f"{standby.name} wrote as a standby"

    killed = time.monotonic()
    assert leader.process.kill() == -9
    await fleet.add("late", "10.244.100.0/24")  # while nobody leads
    name = await poll(
        lambda: holder(kube, lease_name),
        lambda h: h in others,
        what=f"one of {sorted(others)} to take the Lease over",
        deadline=WITHIN,
    )
    takeover = time.monotonic() - killed
    print(f"\n{name} took the Lease over {takeover:.2f}s after kill -9 of {leader.name}")
    assert takeover < TAKEOVER_BOUND, f"took {takeover:.1f}s"
    await fleet.converge()
    successor = others.pop(str(name))
    [bystander] = others.values()
    assert leader_flag(await successor.metrics()) == 1
    assert leader_flag(await bystander.metrics()) == 0
    assert not emulator.egress_writes(bystander.name), f"{bystander.name} wrote as a standby"
    assert await holder(kube, lease_name) == successor.name
