"""The write guard's state: small, kept on the Lease beside the renewals, read before the first
write, saved before deletes are sent, acknowledged once."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from kaput_not.controller.guard import BudgetSettings, WriteGuard
from kaput_not.controller.guard_state import (
    ANNOTATION,
    GuardState,
    LeaseStore,
    MemoryStore,
    decode,
    encode,
    format_ack,
)
from kaput_not.core.model import ActionKind, Plan
from kaput_not.core.planner import NetmakerView
from kaput_not.kube.api import KubeApi
from kaput_not.kube.lease import LeaderElector, LeaseConfig
from kaput_not_standins.kube import KubeApiServer
from tests.clock import FakeClock
from tests.kube.test_lease import FAST, NAME, NS, kube

from .test_guard import LIMIT, SETTINGS, delete, rule, view

__all__ = ["kube"]  # the Lease tests' stand-in fixture, used here too


def test_the_state_stays_small_whatever_the_cluster_size_and_however_long_it_runs():
    state = GuardState()
    window = 86400.0
    for minute in range(3 * 24 * 60):  # three days of full passes and deletes, every minute
        now = 1_700_000_000.0 + 60 * minute
        state.sample(now, window, 20_000 + minute % 7, 10_000)
        state.charge(now, window, 3)
    text = encode(state)
    assert len(text) < 2_000
    assert decode(text).high_owned() == 20_006


def test_a_state_of_another_version_is_refused_in_one_line():
    with pytest.raises(Exception, match="version 9, this build reads 1") as caught:
        decode('{"version": 9}')
    assert "\n" not in str(caught.value)


async def test_deletes_are_saved_before_they_are_sent():
    store = MemoryStore()
    guard = WriteGuard(SETTINGS, clock=FakeClock(), store=store)
    assert await guard.ready(full=True)
    everything = view([rule(i) for i in range(10)])
    guard.learn(Plan(), everything, nodes=10)
    checked = guard.check(
        Plan(limit=LIMIT, actions=(delete(0), delete(1)), owned=10), everything, full=True
    )
    guard.spent(checked, everything)
    assert await guard.save()
    saved = decode(store.text or "")
    assert saved.spent_total() == 2  # charged in the cluster, and nothing written yet
    assert saved.owned == 8
    assert saved.high_owned() == 10


async def test_a_state_that_cannot_be_read_or_saved_holds_the_deletes_and_says_why():
    store = MemoryStore()
    store.fail = RuntimeError("lease unreachable")
    guard = WriteGuard(SETTINGS, clock=FakeClock(), store=store)
    assert not await guard.ready(full=True)
    everything = view([rule(i) for i in range(10)])
    checked = guard.check(Plan(limit=LIMIT, actions=(delete(0),), owned=10), everything, full=True)
    assert checked.count(ActionKind.DELETE) == 0
    assert "could not be read" in (checked.refusal or "")
    store.fail = None
    assert await guard.ready(full=True)
    checked = guard.check(Plan(limit=LIMIT, actions=(delete(0),), owned=10), everything, full=True)
    charge = guard.spent(checked, everything)
    store.fail = RuntimeError("lease unreachable")
    assert not await guard.save()
    held = guard.withhold_deletes(checked, charge)
    assert held.count(ActionKind.DELETE) == 0
    assert len(held.withheld) == 1
    assert guard.holding is not None
    assert "could not be saved" in guard.holding
    assert guard.state.spent_total() == 0  # given back: it was never sent


async def tripped_guard() -> tuple[MemoryStore, FakeClock, WriteGuard, NetmakerView]:
    """A guard over 10 rules of ours whose delete budget 8 deletes tripped."""
    store = MemoryStore()
    clock = FakeClock(1_700_000_000.0)
    guard = WriteGuard(SETTINGS, clock=clock, store=store)
    await guard.ready(full=True)
    everything = view([rule(i) for i in range(10)])
    guard.learn(Plan(), everything)
    plan = Plan(limit=LIMIT, actions=tuple(delete(i) for i in range(8)), owned=10)
    guard.spent(guard.check(plan, everything), everything)
    assert guard.deletes.tripped
    return store, clock, guard, everything


async def test_an_acknowledgement_lets_the_trip_go_once_and_expires():
    store, clock, guard, everything = await tripped_guard()
    store.ack = format_ack(clock() + 3600)
    await guard.ready(full=True)  # a full pass reads it
    rest = Plan(limit=LIMIT, actions=(delete(8), delete(9)), owned=5)
    checked = guard.check(rest, everything)
    assert checked.count(ActionKind.DELETE) == 2
    guard.spent(checked, everything)
    assert guard.state.ack is not None
    assert guard.state.ack.used_at == clock()
    assert not guard.deletes.tripped
    # Used: the same acknowledgement does not let the next trip go.
    guard.state.trip = None
    plan = Plan(limit=LIMIT, actions=tuple(delete(i) for i in range(8)), owned=3)
    guard.spent(guard.check(plan, everything), everything)
    assert guard.deletes.tripped
    await guard.ready(full=True)
    assert guard.check(Plan(limit=LIMIT, actions=(delete(9),), owned=3), everything).withheld
    # A new one that has expired is not used either.
    store.ack = format_ack(clock() - 1)
    await guard.ready(full=True)
    assert guard.check(Plan(limit=LIMIT, actions=(delete(9),), owned=3), everything).withheld


async def test_the_state_on_the_lease_survives_the_renewals_and_a_restart(kube: KubeApiServer):
    api = KubeApi(httpx2.AsyncClient(base_url=kube.base_url, timeout=2.0))
    try:
        elector = LeaderElector(api, LeaseConfig(NS, NAME, "replica-a", **FAST))
        assert await elector.try_acquire()
        renewing = asyncio.create_task(elector.renew_until_lost())
        guard = WriteGuard(
            BudgetSettings(window_seconds=3600),
            store=LeaseStore(api, NS, NAME, elector),
        )
        assert await guard.ready(full=True)
        guard.learn(Plan(), view([rule(i) for i in range(6)]), nodes=6)
        assert await guard.save()
        await asyncio.sleep(0.7)  # several renewals, each a read, a change and a PUT
        renewing.cancel()
        await asyncio.gather(renewing, return_exceptions=True)
        lease = kube.state.lease(NS, NAME)
        assert lease is not None
        assert lease["spec"]["holderIdentity"] == "replica-a"
        assert decode(lease["metadata"]["annotations"][ANNOTATION]).owned == 6
        # A standby (or a new process) reads it without holding the Lease, and cannot write it.
        standby = LeaderElector(api, LeaseConfig(NS, NAME, "replica-b", **FAST))
        later = WriteGuard(
            BudgetSettings(window_seconds=3600),
            store=LeaseStore(api, NS, NAME, standby),
        )
        assert await later.ready(full=True)
        assert later.state.nodes == 6
        later.learn(Plan(), view([]))
        assert not await later.save()
        assert later.problem is not None
        assert "not saving" in later.problem
    finally:
        await api.aclose()


async def test_while_held_node_passes_look_for_an_acknowledgement_every_30_seconds():
    store, clock, guard, everything = await tripped_guard()
    store.ack = format_ack(clock() + 3600)
    await guard.ready(full=False)
    assert guard.state.ack is None  # read a moment ago: not again per node event
    clock.advance(31)
    await guard.ready(full=False)
    assert guard.state.ack is not None
    assert (
        guard.check(Plan(limit=LIMIT, actions=(delete(9),), owned=2), everything).count(
            ActionKind.DELETE
        )
        == 1
    )
