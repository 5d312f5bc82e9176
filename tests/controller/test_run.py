"""The controller through the real `run` code path (`app.run`), against the Kubernetes API
stand-in and the Netmaker emulator, both over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import time

import httpx2
import pytest

from kaput_not.controller.controller import freeze_long_lived
from tests.waiting import eventually

from .stack import Stack, ranges


async def test_added_nodes_get_their_rules(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings())
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.1.0/24"})
    stack.node("w2", "10.244.2.0/24", "fd00:2::/64")
    await eventually(lambda: len(stack.rules()) == 3, what="w2's dual-stack rules")
    assert ranges(stack)["w2 pods (2/2)"] == "fd00:2::/64"


async def test_run_freezes_the_heap_after_its_first_sync(stack: Stack):
    assert gc.get_freeze_count() == 0
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    await eventually(lambda: gc.get_freeze_count() > 0, what="the heap frozen after the first sync")


def test_the_heap_is_frozen_once_per_process_not_at_every_pass():
    try:
        freeze_long_lived()
        frozen = gc.get_freeze_count()
        later = [[i] for i in range(1000)]  # objects a later pass allocates
        freeze_long_lived()
        # A second freeze would have taken the 1,000 lists too (frozen ones may go: <=).
        assert gc.get_freeze_count() <= frozen
        assert later
    finally:
        gc.unfreeze()


async def test_rebuilt_node_with_a_new_cidr_updates_its_egress_in_place(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    [before] = stack.rules()
    stack.kube.state.delete_node("w1")
    stack.kube.state.create_node("w1", pod_cidrs=("10.244.9.0/24",))
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.9.0/24"})
    [after] = stack.rules()
    assert after["id"] == before["id"]


async def test_node_deleted_while_netmaker_is_down_is_cleaned_once_it_is_back(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 2)
    stack.nm.faults.status("*", 503, "database is locked", times=None)
    stack.kube.state.delete_node("w2")
    await asyncio.sleep(1.5)  # the delete is tried and fails while Netmaker is down
    assert len(stack.rules()) == 2
    assert stack.nm.log.counts().get("GET /api/hosts", 0) > 0
    stack.nm.faults.clear()
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"}, within=15)


async def test_a_host_that_joins_netmaker_later_gets_rules_within_a_ttl(stack: Stack):
    stack.kube.state.create_node("w1", pod_cidrs=("10.244.1.0/24",))
    stack.node("w0", "10.244.0.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    stack.nm.state.add_host("w1", ["mesh"])
    took = await eventually(lambda: "w1 pods (1/1)" in ranges(stack), within=5)
    assert took < 3.0  # one TTL (0.5 s) plus the poll interval (1 s), with slack


async def test_a_delete_hidden_by_a_410_watch_error_is_not_lost(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 2)
    await eventually(lambda: stack.kube.open_watches > 0)
    lists_before = stack.kube.log.counts().get("GET /api/v1/nodes", 0)
    # The watch dies with 410 first, then the node goes: the stream never carries the delete.
    assert stack.kube.faults.inject_watch_error(410) >= 1
    stack.kube.state.delete_node("w2")
    stack.kube.state.compact()
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"})
    assert stack.kube.log.counts()["GET /api/v1/nodes"] > lists_before


async def test_a_delete_during_an_api_server_outage_is_found_by_the_relist(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 2)
    stack.kube.faults.set_reachable(False, how="reset")
    stack.kube.state.delete_node("w2")
    stack.kube.state.compact()
    await asyncio.sleep(0.3)
    stack.kube.faults.set_reachable(True)
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"}, within=15)


async def test_drift_made_by_hand_is_repaired_by_the_periodic_resync(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="2s"))
    await eventually(lambda: len(stack.rules()) == 1)
    [rule] = stack.rules()
    stack.nm.state.delete_egress_raw(str(rule["id"]))
    await eventually(lambda: len(stack.rules()) == 1, within=5, what="the rule to come back")


async def test_two_replicas_one_leads_and_a_graceful_stop_hands_over_fast(stack: Stack):
    for i in range(3):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    elect = {"LEADER_ELECTION_ENABLED": "true", "LEADER_ELECTION_NAMESPACE": "kube-system"}
    stop_a, task_a = stack.start(stack.settings(POD_NAME="replica-a", **elect))
    await eventually(lambda: len(stack.rules()) == 3)

    def holder() -> object:
        lease = stack.kube.state.lease("kube-system", "kaput-not")
        return lease["spec"].get("holderIdentity") if lease else None

    assert holder() == "replica-a"
    stop_b, task_b = stack.start(stack.settings(POD_NAME="replica-b", **elect))
    await asyncio.sleep(2.5)  # b tries at least once and stays a standby
    assert holder() == "replica-a"
    stack.kube.state.create_node("w9", pod_cidrs=("10.244.9.0/24",))
    stack.nm.state.add_host("w9", ["mesh"])
    await eventually(lambda: len(stack.rules()) == 4)
    assert stack.nm.log.writes(user_agent_contains="(replica-b)") == 0

    stopped = time.monotonic()
    stop_a.set()
    assert await task_a == 0
    await eventually(lambda: holder() == "replica-b", within=5)
    handover = time.monotonic() - stopped
    assert handover < 3.0, f"handover took {handover:.2f}s"

    stack.node("w10", "10.244.10.0/24")
    await eventually(lambda: len(stack.rules()) == 5)
    writes_a = stack.nm.log.writes(user_agent_contains="(replica-a)")
    writes_b = stack.nm.log.writes(user_agent_contains="(replica-b)")
    assert writes_a == 4
    assert writes_b >= 1
    assert writes_a + writes_b == stack.nm.log.writes()
    stop_b.set()
    assert await task_b == 0


async def test_losing_the_lease_stops_writes_and_exits_1(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    elect = {
        "LEADER_ELECTION_ENABLED": "true",
        "LEADER_ELECTION_NAMESPACE": "kube-system",
        "LEADER_ELECTION_LEASE_DURATION": "3s",
        "LEADER_ELECTION_RENEW_DEADLINE": "2s",
        "LEADER_ELECTION_RETRY_PERIOD": "0.5s",
    }
    _, task = stack.start(stack.settings(**elect))
    await eventually(lambda: len(stack.rules()) == 1)
    stack.kube.faults.set_reachable(False, how="refuse")
    code = await asyncio.wait_for(task, 10)
    assert code == 1
    stack.kube.faults.set_reachable(True)


async def test_start_up_plans_the_cluster_once_not_node_by_node(stack: Stack):
    import socket

    import httpx2

    for i in range(20):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}"))
    await eventually(lambda: len(stack.rules()) == 20)
    await asyncio.sleep(0.5)
    async with httpx2.AsyncClient() as client:
        metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    assert 'kaput_not_reconciles_total{result="success",scope="full"} 1.0' in metrics
    node_passes = [
        line
        for line in metrics.splitlines()
        if line.startswith("kaput_not_reconciles_total{") and 'scope="node"' in line
    ]
    assert node_passes == []
    assert "kaput_not_managed_egress_rules 20.0" in metrics
    assert 'leader_election_master_status{name="kaput-not"} 1.0' in metrics
    assert "kaput_not_kubernetes_nodes 20.0" in metrics


async def test_a_live_rebuild_arriving_as_two_events_updates_the_rule_in_place(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(DELETE_GRACE="3s"))
    await eventually(lambda: len(stack.rules()) == 1)
    [before] = stack.rules()
    stack.kube.state.delete_node("w1")
    await asyncio.sleep(0.3)  # the DELETED event is seen and handled before the node returns
    stack.kube.state.create_node("w1", pod_cidrs=("10.244.9.0/24",))
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.9.0/24"})
    [after] = stack.rules()
    assert after["id"] == before["id"]
    assert stack.nm.log.counts().get("DELETE /api/v1/egress", 0) == 0


async def test_a_node_whose_host_just_joined_gets_rules_without_waiting_a_ttl(stack: Stack):
    stack.node("w0", "10.244.0.0/24")
    stack.start(stack.settings(CACHE_TTL="30s"))
    await eventually(lambda: len(stack.rules()) == 1)
    stack.node("w1", "10.244.1.0/24")  # the host joins Netmaker, then the node registers
    took = await eventually(lambda: len(stack.rules()) == 2, within=10)
    assert took < 2.0


async def test_an_orphan_left_by_a_removed_host_is_cleaned_without_waiting_for_resync(
    stack: Stack,
):
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1h"))
    await eventually(lambda: len(stack.rules()) == 2)
    gone = next(h for h in stack.nm.state.hosts() if h.name == "w2")
    stack.nm.state.remove_host(gone.id)
    await eventually(lambda: set(ranges(stack)) == {"w1 pods (1/1)"}, within=5)


async def test_an_unexpected_failure_of_the_leaders_work_stops_with_exit_1(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
):
    from kaput_not.controller.controller import Controller

    async def broken(self: Controller) -> None:
        raise RuntimeError("a bug in the leader's loop")

    monkeypatch.setattr(Controller, "run_leader", broken)
    _, task = stack.start(stack.settings())
    assert await asyncio.wait_for(task, 10) == 1


ANNOTATED = {"kaput-not.io/netmaker-host": "w7.example.com"}


async def test_a_host_named_by_the_annotation_that_joins_later_reaches_its_node(stack: Stack):
    stack.node("w0", "10.244.0.0/24")
    stack.kube.state.create_node("ip-10-0-0-7", ("10.244.7.0/24",), annotations=ANNOTATED)
    stack.start(stack.settings(CACHE_TTL="1s", RESYNC_PERIOD="1h"))
    await eventually(lambda: len(stack.rules()) == 1)
    stack.nm.state.add_host("w7.example.com", ["mesh"])  # the host watch sees it join
    await eventually(lambda: "ip-10-0-0-7 pods (1/1)" in ranges(stack), within=5)


async def test_events_of_an_annotated_node_find_its_host_in_the_cached_lists(stack: Stack):
    stack.nm.state.add_host("w7.example.com", ["mesh"])
    stack.kube.state.create_node("ip-10-0-0-7", ("10.244.7.0/24",), annotations=ANNOTATED)
    stack.start(stack.settings(CACHE_TTL="30s", RESYNC_PERIOD="1h"))
    await eventually(lambda: len(stack.rules()) == 1)
    reads = stack.nm.log.counts().get("GET /api/hosts", 0)
    for cidr in ("10.244.8.0/24", "10.244.9.0/24"):  # two rebuilds: node events, each planned
        stack.kube.state.delete_node("ip-10-0-0-7")
        stack.kube.state.create_node("ip-10-0-0-7", (cidr,), annotations=ANNOTATED)
        wanted = {"ip-10-0-0-7 pods (1/1)": cidr}
        await eventually(lambda: ranges(stack) == wanted)  # noqa: B023 - awaited at once
        await asyncio.sleep(1.1)  # past the refresh rate limit, so each event could refresh
    assert stack.nm.log.counts().get("GET /api/hosts", 0) == reads


async def test_a_pass_held_by_a_trickling_answer_shows_in_readiness_and_a_gauge(stack: Stack):
    """Issue 17: a trickling GET /api/hosts wedged the controller while /readyz said `ok:
    running`. Now the request ends at NETMAKER_TIMEOUT, and while the pass runs /readyz and
    `workqueue_longest_running_processor_seconds` (`kaput_not_pass_running_seconds` before issue
    20) say so; once Netmaker answers again the node gets its rule."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(METRICS_ADDRESS=f"127.0.0.1:{port}", NETMAKER_TIMEOUT="3s"))
    await eventually(lambda: len(stack.rules()) == 1)
    stack.nm.faults.trickle("GET /api/hosts", 0.2, times=None)
    stack.node("w2", "10.244.2.0/24")  # its pass reads the hosts again: the host is new
    readiness: list[str] = []
    gauges: list[float] = []
    async with httpx2.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:

        async def pass_shows() -> bool:
            readiness.append((await http.get("/readyz")).text)
            metrics = (await http.get("/metrics")).text
            [line] = [
                x
                for x in metrics.splitlines()
                if x.startswith('workqueue_longest_running_processor_seconds{name="nodes"}')
            ]
            gauges.append(float(line.split()[-1]))
            return "has been running for" in readiness[-1] and gauges[-1] >= 1.0

        deadline = time.monotonic() + 8
        while not await pass_shows():
            assert time.monotonic() < deadline, (readiness[-3:], gauges[-3:])
            await asyncio.sleep(0.1)
        assert "the pass of node w2 has been running for" in readiness[-1]
        assert readiness[-1].startswith("ok: running")  # 6 x NETMAKER_TIMEOUT is not yet over
        assert (await http.get("/healthz")).text == "ok: running\n"  # never liveness
        stack.nm.faults.clear()
        await eventually(lambda: len(stack.rules()) == 2, within=15)
        metrics = (await http.get("/metrics")).text
    assert 'workqueue_longest_running_processor_seconds{name="nodes"} 0.0' in metrics


def test_a_pass_over_its_bound_fails_readiness(stack: Stack):
    """Issue 17: a node pass past 6 x NETMAKER_TIMEOUT (each of its few requests is cut at
    that) is stuck, and a full pass past RESYNC_PERIOD too: readiness fails and says which.
    Shorter ones are named without failing; under a second they are not named at all."""
    from kaput_not.app.readiness import pass_overrun
    from kaput_not.controller.controller import CLUSTER

    settings = stack.settings(NETMAKER_TIMEOUT="2s", RESYNC_PERIOD="60s")
    assert pass_overrun(None, settings) is None
    assert pass_overrun(("w1", 0.5), settings) is None
    assert pass_overrun(("w1", 11.0), settings) == (
        False,
        "the pass of node w1 has been running for 11s",
    )
    too_long = pass_overrun(("w1", 13.0), settings)
    assert too_long is not None
    assert too_long[0]
    assert "over the 12s bound" in too_long[1]
    assert pass_overrun((CLUSTER, 59.0), settings) == (
        False,
        "a full pass has been running for 59s",
    )
    full = pass_overrun((CLUSTER, 61.0), settings)
    assert full is not None
    assert full[0]


async def test_the_start_up_settings_and_sync_counts_are_log_fields(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    """Issue 20: the settings were one Python repr inside the message; the sync's counts were
    only words in it. Both are fields now (JSON types), never the password."""
    import json

    from kaput_not import logs

    caplog.set_level(logging.INFO)
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(CLUSTER_POD_CIDRS="10.244.0.0/16"))
    await eventually(lambda: len(stack.rules()) == 1)
    await eventually(lambda: any(r.getMessage().startswith("full sync:") for r in caplog.records))
    [started] = [r for r in caplog.records if "started, health on port" in r.getMessage()]
    assert "Settings(" not in started.getMessage()
    settings = logs.fields(started)["settings"]
    assert isinstance(settings, dict)
    assert settings["netmaker_username"] == "kaput-not"
    assert settings["cluster_pod_cidrs"] == ["10.244.0.0/16"]
    assert settings["leader_election_enabled"] is False
    line = logs.JsonFormatter().format(started)
    assert "run-test-password" not in line
    assert json.loads(line)["settings"]["delete_grace_seconds"] == 0.2
    synced = next(r for r in caplog.records if r.getMessage().startswith("full sync:"))
    counts = logs.fields(synced)
    assert (counts["nodes"], counts["created"], counts["deleted"], counts["failed"]) == (1, 1, 0, 0)


async def test_run_without_leader_election_says_so_loudly(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    """Issue 21: a local `kaput-not run` defaults to no leader election and wrote 20 rules beside
    an in-cluster leader without a word. It now says, once, as a WARNING, that nothing fences it
    and which setting does."""
    caplog.set_level(logging.INFO)
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings())
    await eventually(lambda: len(stack.rules()) == 1)
    [warned] = [r for r in caplog.records if "leader election is off" in r.getMessage()]
    assert warned.levelno == logging.WARNING
    assert "LEADER_ELECTION_ENABLED=false" in warned.getMessage()
    assert "leaderElection.enabled" in warned.getMessage()
