"""Lease leader election against the Kubernetes API stand-in."""

from __future__ import annotations

import asyncio
import datetime
import random
import re
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx2
import pytest

from kaput_not.config import LeaderElection
from kaput_not.kube import wire
from kaput_not.kube.api import KubeApi
from kaput_not.kube.lease import LeaderElector, LeaseConfig, micro_time
from kaput_not_standins.kube import GET_LEASE, UPDATE_LEASE, KubeApiServer
from tests.clock import FakeClock

NS, NAME = "kube-system", "kaput-not"
FAST = {"lease_seconds": 2.0, "renew_deadline_seconds": 1.0, "retry_period_seconds": 0.2}
#: The LEADER_ELECTION_* defaults (config/tree.py holds them): 15s, 10s and 2s.
_LE = LeaderElection(enabled=True, namespace="")
DEFAULT = {
    "lease_seconds": _LE.lease_seconds,
    "renew_deadline_seconds": _LE.renew_deadline_seconds,
    "retry_period_seconds": _LE.retry_period_seconds,
}


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        yield server


class Candidate:
    def __init__(self, kube: KubeApiServer, identity: str, **timing: float) -> None:
        self.api = KubeApi(httpx2.AsyncClient(base_url=kube.base_url, timeout=2.0))
        config = LeaseConfig(namespace=NS, name=NAME, identity=identity, **(timing or FAST))
        self.elector = LeaderElector(self.api, config)
        self.started = asyncio.Event()
        self.task = asyncio.create_task(self.elector.run(self.started.set))

    async def close(self, *, release: bool = True) -> None:
        if release:
            await self.elector.release()
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.api.aclose()


def holder(kube: KubeApiServer) -> object:
    lease = kube.state.lease(NS, NAME)
    return lease["spec"].get("holderIdentity") if lease else None


async def test_the_first_candidate_creates_the_lease_with_kubernetes_times(kube):
    a = Candidate(kube, "a")
    await asyncio.wait_for(a.started.wait(), 3)
    assert a.elector.is_leader()
    lease = kube.state.lease(NS, NAME)
    assert lease is not None
    spec = lease["spec"]
    assert spec["holderIdentity"] == "a"
    assert spec["leaseDurationSeconds"] == 2
    assert spec["leaseTransitions"] == 0
    micro = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
    assert micro.fullmatch(spec["renewTime"])
    assert micro.fullmatch(spec["acquireTime"])
    await a.close()


def test_micro_time_is_utc_with_six_fraction_digits():
    moment = datetime.datetime(
        2026, 11, 26, 9, 5, 1, 42, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    assert micro_time(moment) == "2026-11-26T07:05:01.000042Z"


async def test_exactly_one_of_many_candidates_leads(kube):
    candidates = [Candidate(kube, f"c{i}") for i in range(4)]
    await asyncio.sleep(1.0)
    leaders = [c for c in candidates if c.elector.is_leader()]
    assert len(leaders) == 1
    assert holder(kube) == leaders[0].elector.identity
    for c in candidates:
        await c.close()


async def test_the_leader_keeps_renewing(kube):
    a = Candidate(kube, "a")
    await asyncio.wait_for(a.started.wait(), 3)
    first = kube.state.lease(NS, NAME)["spec"]["renewTime"]
    await asyncio.sleep(0.6)
    assert kube.state.lease(NS, NAME)["spec"]["renewTime"] != first
    assert a.elector.is_leader()
    await a.close()


async def test_a_released_lease_is_taken_over_at_the_next_try(kube):
    a = Candidate(kube, "a", lease_seconds=15, renew_deadline_seconds=10, retry_period_seconds=2)
    await asyncio.wait_for(a.started.wait(), 3)
    b = Candidate(kube, "b", lease_seconds=15, renew_deadline_seconds=10, retry_period_seconds=2)
    await asyncio.sleep(0.5)
    assert not b.started.is_set()
    released = time.monotonic()
    await a.close(release=True)
    assert not a.elector.is_leader()
    await asyncio.wait_for(b.started.wait(), 5)
    assert time.monotonic() - released < 3.0
    spec = kube.state.lease(NS, NAME)["spec"]
    assert spec["holderIdentity"] == "b"
    assert spec["leaseTransitions"] == 1
    await b.close()


async def test_a_crashed_leader_is_replaced_only_after_the_lease_duration(kube):
    a = Candidate(kube, "a")
    await asyncio.wait_for(a.started.wait(), 3)
    b = Candidate(kube, "b")
    await asyncio.sleep(0.3)
    crashed = time.monotonic()
    await a.close(release=False)  # kill -9: no release
    await asyncio.wait_for(b.started.wait(), 5)
    waited = time.monotonic() - crashed
    assert 1.5 < waited < 3.5  # at least most of the 2 s lease, observed on b's clock
    await b.close()


async def test_leadership_is_in_doubt_once_renewals_stop_and_run_returns(kube):
    a = Candidate(kube, "a")
    await asyncio.wait_for(a.started.wait(), 3)
    kube.faults.hang(GET_LEASE)
    kube.faults.hang(UPDATE_LEASE)
    lost = time.monotonic()
    await asyncio.wait_for(asyncio.shield(a.task), 5)  # run() returns when leadership is lost
    assert not a.elector.is_leader()
    assert time.monotonic() - lost <= FAST["renew_deadline_seconds"] + 0.5
    kube.faults.clear()
    await a.close(release=False)


async def test_a_conflicting_update_is_not_leadership(kube):
    a = Candidate(kube, "a")
    await asyncio.wait_for(a.started.wait(), 3)
    kube.faults.fail(UPDATE_LEASE, 409, times=None)
    await asyncio.sleep(1.3)
    assert not a.elector.is_leader()
    await a.close(release=False)


def test_timing_rules_are_checked():
    with pytest.raises(ValueError, match="lease > renew deadline"):
        LeaseConfig(
            namespace=NS,
            name=NAME,
            identity="a",
            lease_seconds=5,
            renew_deadline_seconds=6,
            retry_period_seconds=2,
        ).validate()
    with pytest.raises(ValueError, match="identity"):
        LeaseConfig(namespace=NS, name=NAME, identity="", **DEFAULT).validate()


class _Stop(Exception):
    pass


class SlowReadApi(KubeApi):
    """A Lease held by "a" whose first GET takes `slow` seconds on the shared fake clock; the
    answer shows a's renewal made while that GET was on its way."""

    def __init__(self, clock: FakeClock, slow: float) -> None:
        super().__init__(httpx2.AsyncClient())
        self.clock, self.slow = clock, slow
        self.taken_at: float | None = None
        meta = wire.ObjectMeta(name=NAME, namespace=NS)
        spec = wire.LeaseSpec(holderIdentity="a", leaseDurationSeconds=15, renewTime="r1")
        self.lease = wire.Lease(metadata=meta, spec=spec)

    async def get(self, path: str, decoder: Any, params: Mapping[str, str] | None = None) -> Any:
        self.clock.advance(self.slow)
        self.slow = 0.0
        return self.lease

    async def send(self, method: str, path: str, body: bytes, decoder: Any) -> Any:
        assert method == "PUT"
        self.taken_at = self.clock()
        return decoder.decode(body)


async def test_a_standby_dates_what_it_saw_to_when_the_answer_arrived():
    """Issue 17: the standby dated the lease it saw to when its GET *started*. a renewed at
    t=8 (inside b's 8.5 s GET) and may write until t=18 (renew deadline 10 s); b took over at
    about t=15. Dated at the answer (t=8.5), b waits the full 15 s lease from there."""
    clock = FakeClock(0.0)
    api = SlowReadApi(clock, slow=8.5)

    async def sleep(seconds: float) -> None:
        if api.taken_at is not None:
            raise _Stop
        clock.advance(seconds)

    config = LeaseConfig(namespace=NS, name=NAME, identity="b", **DEFAULT)
    b = LeaderElector(api, config, monotonic=clock, sleep=sleep, rand=random.Random(1))
    with pytest.raises(_Stop):
        await b.run(lambda: None)
    a_may_write_until = 8.0 + config.renew_deadline_seconds
    assert api.taken_at is not None
    assert api.taken_at >= 8.5 + config.lease_seconds > a_may_write_until
    await api.aclose()


@pytest.mark.parametrize(
    ("lease", "renew", "retry"), [(1.4, 1.3, 1.0), (15.5, 10, 2), (2.25, 1, 0.2)]
)
def test_a_lease_duration_the_lease_cannot_carry_is_refused(
    lease: float, renew: float, retry: float
):
    """Issue 17: 1.4 s was published as round(1.4) = 1 s, below the 1.3 s renew deadline."""
    config = LeaseConfig(
        namespace=NS,
        name=NAME,
        identity="a",
        lease_seconds=lease,
        renew_deadline_seconds=renew,
        retry_period_seconds=retry,
    )
    with pytest.raises(ValueError, match=r"LEADER_ELECTION_LEASE_DURATION.*whole number"):
        config.validate()


GUARD_NOTE = {"kaput-not.io/guard": '{"high": 12}'}


def seed_lease(kube: KubeApiServer, holder: str) -> dict[str, Any]:
    """Store the Lease as another writer would: held by `holder`, with the guard's annotation."""
    spec = {"holderIdentity": holder, "leaseDurationSeconds": 15, "leaseTransitions": 3}
    with kube.state.lock:
        return kube.state.save_lease(NS, NAME, spec=spec, meta={"annotations": GUARD_NOTE})


async def lead_then_lose_a_renewal_answer(
    kube: KubeApiServer,
) -> tuple[LeaderElector, KubeApi]:
    """ "a" takes the seeded free Lease; its first renewal is written at the server, the answer
    never comes back and the renewal is cancelled, as SIGTERM's shutdown does. Its clock does
    not move, so only `release()` ends its leadership."""
    seed_lease(kube, holder="")
    api = KubeApi(httpx2.AsyncClient(base_url=kube.base_url, timeout=5.0))
    config = LeaseConfig(namespace=NS, name=NAME, identity="a", **DEFAULT)

    async def no_wait(_: float) -> None:
        await asyncio.sleep(0)

    elector = LeaderElector(api, config, monotonic=FakeClock(), sleep=no_wait)
    started = asyncio.Event()

    def lose_the_next_answer() -> None:
        kube.faults.hang(UPDATE_LEASE, when="after", times=1)
        started.set()

    task = asyncio.create_task(elector.run(lose_the_next_answer))
    await started.wait()
    while kube.faults.pending:  # consumed once the renewal's PUT is written
        await asyncio.sleep(0.01)
    renewed = kube.state.lease(NS, NAME)
    assert renewed is not None
    assert renewed["spec"]["holderIdentity"] == "a"
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert elector.is_leader()
    return elector, api


async def test_release_after_a_renewal_whose_answer_was_lost_still_frees_the_lease(kube):
    """Issue 17 follow-up: on SIGTERM the renewal that succeeded at the server was cancelled
    before its answer came, release() sent the out-of-date resourceVersion, got 409 and the
    new pod waited out the lease. Now it reads the Lease again and frees it, annotations kept."""
    elector, api = await asyncio.wait_for(lead_then_lose_a_renewal_answer(kube), 5)
    await elector.release()
    lease = kube.state.lease(NS, NAME)
    assert lease is not None
    assert lease["spec"].get("holderIdentity") is None
    assert lease["spec"]["leaseDurationSeconds"] == 1
    assert lease["spec"]["leaseTransitions"] == 4  # 3 seeded, +1 when "a" took it
    assert lease["metadata"]["annotations"] == GUARD_NOTE
    assert not elector.is_leader()
    await api.aclose()


async def test_release_leaves_a_lease_another_replica_took_meanwhile(kube):
    """The re-read after a Conflict frees the Lease only while we still hold it: a Lease
    that "b" holds now is left to "b" untouched."""
    elector, api = await asyncio.wait_for(lead_then_lose_a_renewal_answer(kube), 5)
    taken = seed_lease(kube, holder="b")
    await elector.release()
    assert kube.state.lease(NS, NAME) == taken
    assert not elector.is_leader()
    await api.aclose()


class HeldApi(SlowReadApi):
    """A Lease that "a" renews before every read: a candidate never may take it."""

    async def get(self, path: str, decoder: Any, params: Mapping[str, str] | None = None) -> Any:
        self.lease.spec.renewTime = f"r{self.clock()}"
        return self.lease


async def test_a_candidate_tries_again_every_one_to_1_2_retry_periods():
    """client-go's jitter factor 1.2 on the retry period, spread out across the range."""
    clock = FakeClock(0.0)
    api = HeldApi(clock, slow=0.0)
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)
        if len(waits) == 200:
            raise _Stop

    config = LeaseConfig(namespace=NS, name=NAME, identity="b", **DEFAULT)  # the defaults
    b = LeaderElector(api, config, monotonic=clock, sleep=sleep, rand=random.Random(3))
    with pytest.raises(_Stop):
        await b.run(lambda: None)
    assert api.taken_at is None
    period = config.retry_period_seconds
    assert all(period <= w <= 1.2 * period for w in waits)
    assert max(waits) - min(waits) > 0.3  # jittered, not one fixed wait
    await api.aclose()
