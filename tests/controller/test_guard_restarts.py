"""Issue 17, "Safety that forgets": the write guard's memory across restarts and one-shot
writers, replayed through the real `run` path (and `plan --apply`) against both stand-ins.
Every test here failed on the code before the guard's state moved onto the Lease."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kaput_not.app import oneshot
from kaput_not.controller.guard_state import ANNOTATION, decode
from kaput_not_standins.kube.routes import LIST_NODES
from tests.waiting import eventually

from .stack import Stack

LEASE = ("kube-system", "kaput-not")  # LEADER_ELECTION_NAMESPACE/ID when running locally


def deletes(s: Stack) -> int:
    return s.nm.log.counts().get("DELETE /api/v1/egress", 0)


def creates(s: Stack) -> int:
    return s.nm.log.counts().get("POST /api/v1/egress", 0)


async def converged(s: Stack, count: int) -> None:
    await eventually(lambda: len(s.rules()) == count, what=f"{count} rules")


async def restart(s: Stack, task: asyncio.Task[int], stop: asyncio.Event, **env: str) -> None:
    stop.set()
    await task
    s.start(s.settings(**env))


def first(count: int) -> Any:
    def change(body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "items": body["items"][:count]}

    return change


async def test_item_1_a_restart_does_not_forget_a_tripped_budget(stack: Stack):
    for i in range(12):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stop, task = stack.start(stack.settings(DELETE_GRACE="0s"))
    await converged(stack, 12)
    # Every list from now on answers 3 of the 12 nodes: a lying relist.
    stack.kube.faults.rewrite(LIST_NODES, first(3), times=None)
    stack.kube.faults.inject_watch_error(410)
    await asyncio.sleep(3)
    held = len(stack.rules())
    assert held >= 6
    spent = deletes(stack)
    await restart(stack, task, stop, DELETE_GRACE="0s")  # a rollout, an OOM kill
    await eventually(lambda: stack.kube.log.counts().get(LIST_NODES, 0) >= 4, what="relists")
    await asyncio.sleep(2.5)
    assert len(stack.rules()) == held
    assert deletes(stack) == spent
    state = stack.kube.state.lease(*LEASE)
    assert state is not None
    assert decode(state["metadata"]["annotations"][ANNOTATION]).trip is not None


async def test_item_3_a_partial_first_node_list_after_a_start_is_read_again(stack: Stack):
    for i in range(12):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stop, task = stack.start(stack.settings())
    await converged(stack, 12)
    stack.kube.faults.rewrite(LIST_NODES, first(7), times=1)  # the new process's first list
    await restart(stack, task, stop)
    await eventually(lambda: stack.kube.log.counts().get(LIST_NODES, 0) >= 3, what="the re-read")
    await asyncio.sleep(2)
    assert len(stack.rules()) == 12
    assert deletes(stack) == 0


async def test_item_3_an_empty_first_egress_list_after_a_restart_creates_nothing(stack: Stack):
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stop, task = stack.start(stack.settings())
    await converged(stack, 8)
    assert creates(stack) == 8
    stack.nm.faults.rewrite("GET /api/v1/egress", lambda body: {**body, "Response": []}, times=1)
    reads = stack.nm.log.counts().get("GET /api/v1/egress", 0)
    await restart(stack, task, stop)
    await eventually(
        lambda: stack.nm.log.counts().get("GET /api/v1/egress", 0) >= reads + 2, what="re-read"
    )
    await asyncio.sleep(2)
    assert len(stack.rules()) == 8
    assert creates(stack) == 8


async def test_item_3_an_egress_list_that_stays_empty_after_a_restart_recreates_within_budget(
    stack: Stack,
):
    # The first egress list read twice is still empty (a lie that outlasts the re-read): the
    # new process has no earlier list of its own, so the creates for the rules the cluster
    # remembers and the list does not show are re-creates, within the re-create budget.
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    stop, task = stack.start(stack.settings(MAX_DELETE_MIN="2"))
    await converged(stack, 8)
    stack.nm.faults.rewrite("GET /api/v1/egress", lambda body: {**body, "Response": []}, times=None)
    reads = stack.nm.log.counts().get("GET /api/v1/egress", 0)
    await restart(stack, task, stop, MAX_DELETE_MIN="2", RESYNC_PERIOD="1.1s", CACHE_TTL="0.2s")
    await eventually(
        lambda: stack.nm.log.counts().get("GET /api/v1/egress", 0) >= reads + 2, what="re-read"
    )
    await asyncio.sleep(2.5)  # resyncs on the same lie
    assert creates(stack) - 8 <= 4  # half of the 8 remembered: MAX_DELETE_FRACTION's default
    stack.nm.faults.clear()
    await converged(stack, 8)  # the list is whole again: the duplicates are cleaned up


async def test_item_3_a_list_that_lied_to_the_last_process_does_not_lower_what_the_next_trusts(
    stack: Stack,
):
    # The resyncs of a process on an empty egress list save that they saw no rule of ours;
    # the next process's first list is still judged against the high-water mark, so each
    # process re-creates within the re-create budget, never the whole list.
    for i in range(8):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    settings = {"MAX_DELETE_MIN": "2", "RESYNC_PERIOD": "1.1s", "CACHE_TTL": "0.2s"}
    stop, task = stack.start(stack.settings(**settings))
    await converged(stack, 8)
    stack.nm.faults.rewrite("GET /api/v1/egress", lambda body: {**body, "Response": []}, times=None)
    for _ in range(2):
        await restart(stack, task, stop, **settings)
        stop, task = stack.running[-1]
        await asyncio.sleep(2.5)  # the first pass and resyncs, on the same lie
    assert creates(stack) - 8 <= 2 * 4  # two processes, each within half of the 8 remembered
    stack.nm.faults.clear()
    await converged(stack, 8)


async def test_item_4_plan_apply_spends_the_budget_run_spent(stack: Stack):
    for i in range(16):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    settings = stack.settings()
    await oneshot.read_once(settings, apply=True)
    assert len(stack.rules()) == 16
    # Four runs against a shrinking node list: half the nodes gone each time.
    present = {f"w{i}" for i in range(16)}
    for left in (8, 4, 2, 0):
        for i in range(left, 16):
            if f"w{i}" in present:
                stack.kube.state.delete_node(f"w{i}")
                present.discard(f"w{i}")
        await oneshot.read_once(settings, apply=True)
    assert len(stack.rules()) == 8  # half of the high-water mark of 16, and no more


async def test_item_4_plan_apply_under_dry_run_writes_nothing(stack: Stack):
    for i in range(4):
        stack.node(f"w{i}", f"10.244.{i}.0/24")
    reading = await oneshot.read_once(stack.settings(DRY_RUN="true"), apply=True)
    assert reading.dry_run
    assert len(reading.plan.actions) == 4
    assert creates(stack) == 0
    assert stack.kube.state.lease(*LEASE) is None  # no Lease taken, no state written


async def test_item_4_plan_apply_refuses_while_another_replica_leads(stack: Stack):
    stack.node("w0", "10.244.0.0/24")
    stop, task = stack.start(stack.settings(LEADER_ELECTION_ENABLED="true", POD_NAME="leader-a"))
    await converged(stack, 1)
    with pytest.raises(oneshot.LeaseHeld, match="held by leader-a"):
        await oneshot.read_once(stack.settings(LEADER_ELECTION_ENABLED="true"), apply=True)
    stop.set()
    await task
