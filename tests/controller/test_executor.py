"""The executor: bounded concurrency, adds before deletes, failures don't stop the pass,
no write once leadership is in doubt, a rejected password stops everything."""

from __future__ import annotations

import asyncio

import pytest

from kaput_not.controller.executor import Executor
from kaput_not.core.egress import build_description
from kaput_not.core.model import Action, ActionKind, Egress, EgressSpec, Plan
from kaput_not.netmaker import errors


def spec(i: int) -> EgressSpec:
    return EgressSpec(
        network="a",
        name=f"w{i} pods (1/1)",
        description=build_description(0),
        range=f"10.{i}.0.0/24",
        nat=False,
        status=True,
        nodes={f"n{i}": 500},
    )


def target(i: int) -> Egress:
    s = spec(i)
    return Egress(
        id=f"e{i}",
        network="a",
        name=s.name,
        description=s.description,
        range=s.range,
        nat=False,
        status=True,
        nodes=dict(s.nodes),
    )


def create(i: int) -> Action:
    return Action(kind=ActionKind.CREATE, reason="r", network="a", spec=spec(i))


def delete(i: int) -> Action:
    return Action(kind=ActionKind.DELETE, reason="r", network="a", target=target(i))


def update(i: int) -> Action:
    return Action(kind=ActionKind.UPDATE, reason="r", network="a", spec=spec(i), target=target(i))


class Writer:
    def __init__(self, fail: dict[str, Exception] | None = None) -> None:
        self.log: list[str] = []
        self.active = 0
        self.peak = 0
        self.fail = fail or {}

    async def _do(self, what: str) -> None:
        self.active += 1
        self.peak = max(self.peak, self.active)
        await asyncio.sleep(0.001)
        self.active -= 1
        self.log.append(what)
        if what in self.fail:
            raise self.fail[what]

    async def create_egress(self, s: EgressSpec) -> Egress:
        await self._do(f"create {s.name}")
        return target(0)

    async def update_egress(self, t: Egress, s: EgressSpec) -> Egress:
        await self._do(f"update {t.id}")
        return t

    async def delete_egress(self, t: Egress) -> None:
        await self._do(f"delete {t.id}")


async def test_writes_are_bounded_and_deletes_come_after_adds():
    w = Writer()
    plan = Plan(actions=tuple([delete(1), delete(2)] + [create(i) for i in range(10)]))
    result = await Executor(w, concurrency=3).apply(plan)
    assert (result.created, result.deleted) == (10, 2)
    assert w.peak == 3
    assert all(x.startswith("create") for x in w.log[:10])
    assert result.ok


async def test_a_failed_action_does_not_stop_the_others():
    boom = errors.ApiError("POST /api/v1/egress", status=500, code=500, server_message="db")
    w = Writer(fail={"create w3 pods (1/1)": boom})
    result = await Executor(w, concurrency=2).apply(
        Plan(actions=(*tuple(create(i) for i in range(6)), update(7), delete(8)))
    )
    assert (result.created, result.updated, result.deleted) == (5, 1, 1)
    assert [f.error for f in result.failures] == [boom]
    assert not result.ok


async def test_no_write_once_leadership_is_in_doubt():
    w = Writer()
    leader = {"yes": True}

    async def lose_after_first() -> None:
        while not w.log:
            await asyncio.sleep(0)
        leader["yes"] = False

    loser = asyncio.create_task(lose_after_first())
    result = await Executor(w, concurrency=1, may_write=lambda: leader["yes"]).apply(
        Plan(actions=tuple(create(i) for i in range(5)))
    )
    await loser
    assert result.created == 1
    assert result.skipped == 4
    assert len(w.log) == 1


async def test_dry_run_writes_nothing():
    w = Writer()
    result = await Executor(w, dry_run=True).apply(Plan(actions=(create(1), delete(2))))
    assert w.log == []
    assert result.skipped == 2


async def test_rejected_password_stops_the_pass_and_is_raised():
    rejected = errors.CredentialsRejected(
        "POST /api/users/adm/authenticate", "incorrect credentials", status=400
    )
    w = Writer(fail={"create w0 pods (1/1)": rejected})
    with pytest.raises(errors.CredentialsRejected):
        await Executor(w, concurrency=1).apply(Plan(actions=tuple(create(i) for i in range(4))))
    assert w.log == ["create w0 pods (1/1)"]


def test_concurrency_below_one_is_refused():
    with pytest.raises(ValueError, match="concurrency"):
        Executor(Writer(), concurrency=0)
