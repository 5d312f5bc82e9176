"""Issue 9: the ways an attacker of "it never breaks the network" broke it, each replayed
through the real `run` path against both stand-ins. Every test here failed on the code before
the fix it names."""

from __future__ import annotations

import asyncio
from typing import Any

from kaput_not_standins.kube.routes import LIST_NODES
from tests.waiting import eventually

from .stack import Stack, ranges

WATCH = "GET /api/v1/nodes (watch)"


def deletes(s: Stack) -> int:
    return s.nm.log.counts().get("DELETE /api/v1/egress", 0)


async def converged(s: Stack, count: int) -> None:
    await eventually(lambda: len(s.rules()) == count, what=f"{count} rules")


async def test_item_1_an_empty_relist_deletes_no_more_than_the_budget(stack: Stack):
    for i in range(12):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings(DELETE_GRACE="0s"))
    await converged(stack, 12)
    # Every relist from now on answers no nodes: a broken API server, or a proxy lying.
    stack.kube.faults.rewrite(LIST_NODES, lambda body: {**body, "items": []}, times=None)
    stack.kube.faults.inject_watch_error(410)
    await asyncio.sleep(4)  # relists, delete events, node passes, retries
    stack.kube.faults.inject_watch_error(410)
    await asyncio.sleep(2)
    assert len(stack.rules()) >= 6, "more than half of the mesh is gone"
    assert deletes(stack) <= 6  # the budget: half of 12 per window, however it is split
    stack.kube.faults.clear()


async def test_item_1_an_empty_relist_seen_once_is_read_again_and_changes_nothing(stack: Stack):
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings(DELETE_GRACE="0s"))
    await converged(stack, 8)
    stack.kube.faults.rewrite(LIST_NODES, lambda body: {**body, "items": []}, times=1)
    stack.kube.faults.inject_watch_error(410)
    await eventually(lambda: stack.kube.log.counts().get(LIST_NODES, 0) >= 3, what="the re-read")
    await asyncio.sleep(1.5)
    assert len(stack.rules()) == 8
    assert deletes(stack) == 0


async def test_item_2_netmaker_answering_no_nodes_deletes_no_more_than_the_budget(stack: Stack):
    for i in range(10):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1.5s"))
    await converged(stack, 10)
    stack.nm.faults.rewrite("GET /api/nodes", lambda body: [], times=None)
    await asyncio.sleep(5)  # host polls (1 s), node passes and two resyncs
    assert len(stack.rules()) >= 5
    assert deletes(stack) <= 5
    stack.nm.faults.clear()


async def test_item_3_a_full_pass_never_plans_against_a_node_pass_in_flight(stack: Stack):
    """The resync used to run beside the workers: planned from a snapshot taken while a node
    pass was writing, it wrote the same change again (or deleted what was just updated)."""
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1.1s", DELETE_GRACE="3s"))
    await converged(stack, 1)
    [before] = stack.rules()
    stack.nm.faults.latency("PUT /api/v1/egress", 2.5, times=1)
    stack.kube.state.delete_node("w1")  # a rebuild with a new CIDR: one update in place
    stack.kube.state.create_node("w1", pod_cidrs=("10.244.9.0/24",))
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.9.0/24"}, within=15)
    await asyncio.sleep(1.5)  # at least one more resync after the slow write
    assert stack.nm.log.counts().get("PUT /api/v1/egress", 0) == 1
    assert deletes(stack) == 0
    [after] = stack.rules()
    assert after["id"] == before["id"]


async def test_item_4_a_rebuilt_node_without_pod_cidrs_yet_keeps_its_rule(stack: Stack):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(DELETE_GRACE="3s"))
    await converged(stack, 1)
    [before] = stack.rules()
    stack.kube.state.delete_node("w1")
    stack.kube.state.create_node("w1")  # registered again; IPAM has not given it CIDRs yet
    await asyncio.sleep(1.5)
    assert [r["id"] for r in stack.rules()] == [before["id"]]
    stack.kube.state.update_node("w1", pod_cidrs=("10.244.9.0/24",))
    await eventually(lambda: ranges(stack) == {"w1 pods (1/1)": "10.244.9.0/24"})
    [after] = stack.rules()
    assert after["id"] == before["id"]
    assert deletes(stack) == 0


async def test_item_4_a_node_that_never_gets_pod_cidrs_loses_its_rules_after_the_grace(
    stack: Stack,
):
    stack.node("w1", "10.244.1.0/24")
    stack.start(stack.settings(DELETE_GRACE="1s"))
    await converged(stack, 1)
    stack.kube.state.delete_node("w1")
    stack.kube.state.create_node("w1")
    await eventually(lambda: stack.rules() == [], within=10, what="the rule to go")


def _strip(field: str) -> Any:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        rules = [{k: v for k, v in e.items() if k != field} for e in body["Response"]]
        return {**body, "Response": rules}

    return change


async def test_item_5_malformed_egress_lists_never_pile_up_rules(stack: Stack):
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1.1s", CACHE_TTL="0.2s"))
    await converged(stack, 8)
    for field in ("nodes", "network"):
        stack.nm.faults.rewrite("GET /api/v1/egress", _strip(field), times=None)
        await asyncio.sleep(3)  # several resyncs on the broken lists
        stack.nm.faults.clear()
    assert len(stack.rules()) == 8
    assert stack.nm.log.counts().get("POST /api/v1/egress", 0) == 8  # the first sync's only


async def test_item_5_egress_lists_that_come_back_empty_never_pile_up_rules(stack: Stack):
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1.1s", CACHE_TTL="0.2s"))
    await converged(stack, 8)
    stack.nm.faults.rewrite("GET /api/v1/egress", lambda body: {**body, "Response": []}, times=None)
    await asyncio.sleep(4)
    stack.nm.faults.clear()
    assert len(stack.rules()) <= 8 + 5  # at most the re-create budget's floor, once
    await asyncio.sleep(2)  # lists are true again: duplicates (if any) are cleaned up
    assert len(stack.rules()) == 8


async def test_item_10_a_host_joining_right_after_another_does_not_wait_for_the_poll(
    stack: Stack,
):
    stack.node("w0", "10.244.0.0/24")
    stack.start(stack.settings(CACHE_TTL="30s"))
    await converged(stack, 1)
    stack.node("w1", "10.244.1.0/24")  # forces the one refresh the rate limit allows
    await converged(stack, 2)
    stack.node("w2", "10.244.2.0/24")  # within the same second: the refresh is rate-limited
    took = await eventually(lambda: len(stack.rules()) == 3, within=10)
    assert took < 3.0


async def test_a_full_pass_in_a_rebuilds_gap_keeps_the_rule_for_the_delete_grace(stack: Stack):
    """Found by bench/faults.py: DELETE_GRACE held only for the node's own key, so a resync
    that ran between the delete and the re-create deleted the rule (a new id came after)."""
    stack.node("w1", "10.244.1.0/24")
    stack.node("w2", "10.244.2.0/24")
    stack.start(stack.settings(RESYNC_PERIOD="1.1s", DELETE_GRACE="4s"))
    await converged(stack, 2)
    before = {r["name"]: r["id"] for r in stack.rules()}
    stack.kube.state.delete_node("w1")
    await asyncio.sleep(2.5)  # two resyncs run while w1 is gone
    assert deletes(stack) == 0
    stack.kube.state.create_node("w1", pod_cidrs=("10.244.9.0/24",))
    await eventually(lambda: ranges(stack)["w1 pods (1/1)"] == "10.244.9.0/24")
    assert {r["name"]: r["id"] for r in stack.rules()} == before
    assert deletes(stack) == 0
