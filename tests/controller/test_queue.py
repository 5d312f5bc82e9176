"""The work queue: dedup, one worker per key, FIFO, delays, backoff, workers, shutdown."""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kaput_not import ratelimit
from kaput_not.controller.queue import QueueShutDown, WorkQueue
from tests.clock import FakeClock

MakeQueue = Callable[..., WorkQueue[str]]


@pytest.fixture
async def make_queue() -> AsyncIterator[MakeQueue]:
    """Builds queues and shuts each down afterwards, so no worker outlives its test."""
    made: list[WorkQueue[str]] = []

    def make(**kwargs: Any) -> WorkQueue[str]:
        queue = WorkQueue[str](**kwargs)
        made.append(queue)
        return queue

    yield make
    for queue in made:
        await queue.shutdown(drain_timeout=0)


async def try_get(queue: WorkQueue[str]) -> str | None:
    """The key `get()` hands out without waiting, or None if none is ready."""
    getter = asyncio.ensure_future(queue.get())
    # One loop turn: a ready key is returned within the getter's first step.
    await asyncio.sleep(0)
    if getter.done():
        return getter.result()
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    return None


async def spin(turns: int = 50) -> None:
    """Let the workers run for a while; no wall-clock time passes."""
    for _ in range(turns):
        await asyncio.sleep(0)


async def settle(queue: WorkQueue[str]) -> None:
    """Let the workers run until nothing is waiting or in flight."""
    for _ in range(10_000):
        if not len(queue) and not queue.in_flight:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"queue never settled: depth {len(queue)}, in flight {queue.in_flight}")


def no_errors(errors: list[tuple[str, Exception]]) -> Callable[[str, Exception], None]:
    return lambda key, exc: errors.append((key, exc))


# -- dedup and fairness ----------------------------------------------------------------------


async def test_key_added_twice_while_waiting_is_handed_out_once(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.add("n1")
    queue.add("n1")
    assert len(queue) == 1
    assert await try_get(queue) == "n1"
    queue.done("n1")
    assert await try_get(queue) is None


async def test_distinct_keys_are_handed_out_first_in_first_out(make_queue: MakeQueue) -> None:
    queue = make_queue()
    for key in ["c", "a", "b", "c"]:
        queue.add(key)
    assert [await try_get(queue) for _ in range(4)] == ["c", "a", "b", None]


async def test_key_added_while_in_flight_waits_for_done_then_runs_again(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.add("n1")
    assert await try_get(queue) == "n1"
    queue.add("n1")
    assert await try_get(queue) is None  # a second worker must not get it
    queue.done("n1")
    assert await try_get(queue) == "n1"


async def test_key_requeued_by_done_goes_behind_keys_already_waiting(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.add("a")
    assert await try_get(queue) == "a"
    queue.add("a")
    queue.add("b")
    queue.done("a")
    assert [await try_get(queue), await try_get(queue)] == ["b", "a"]


async def test_workers_never_run_one_key_twice_at_once_and_rerun_it_after_a_readd(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    active: set[str] = set()
    overlaps: list[str] = []
    runs: collections.Counter[str] = collections.Counter()

    async def handler(key: str) -> None:
        if key in active:
            overlaps.append(key)
        active.add(key)
        runs[key] += 1
        if runs[key] == 1:
            queue.add(key)  # an event for the node arrives mid-reconcile
        await spin(3)
        active.discard(key)

    errors: list[tuple[str, Exception]] = []
    for key in ["a", "b", "c"] * 3:
        queue.add(key)
    queue.run_workers(handler, 4, on_error=no_errors(errors))
    await settle(queue)
    assert overlaps == []
    assert runs == {"a": 2, "b": 2, "c": 2}
    assert errors == []


# -- delays ----------------------------------------------------------------------------------


async def test_add_after_releases_keys_when_due_in_due_order(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add_after("late", 2.0)
    queue.add_after("early", 1.0)
    assert len(queue) == 2
    assert await try_get(queue) is None
    clock.advance(1.0)
    queue.wake()
    assert [await try_get(queue), await try_get(queue)] == ["early", None]
    clock.advance(1.0)
    queue.wake()
    assert await try_get(queue) == "late"


async def test_wake_hands_a_due_key_to_a_worker_already_waiting(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add_after("n1", 5.0)
    clock.advance(5.0)
    queue.wake()
    assert await asyncio.wait_for(getter, timeout=1.0) == "n1"


async def test_add_after_keeps_the_earliest_due_time(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add_after("n1", 1.0)
    queue.add_after("n1", 5.0)  # later: ignored
    queue.add_after("n2", 5.0)
    queue.add_after("n2", 1.0)  # sooner: moves it up
    assert len(queue) == 2
    clock.advance(1.0)
    queue.wake()
    assert [await try_get(queue), await try_get(queue)] == ["n1", "n2"]
    queue.done("n1")
    queue.done("n2")
    clock.advance(10.0)
    queue.wake()
    assert await try_get(queue) is None  # the superseded requests do not run again


async def test_add_after_does_not_push_back_a_key_that_is_ready(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add("n1")
    queue.add_after("n1", 5.0)
    assert len(queue) == 1
    assert await try_get(queue) == "n1"
    queue.done("n1")
    clock.advance(10.0)
    queue.wake()
    assert await try_get(queue) is None


async def test_add_makes_a_delayed_key_ready_at_once_and_counts_it_once(
    make_queue: MakeQueue,
) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add_after("n1", 5.0)
    queue.add("n1")
    assert len(queue) == 1
    assert await try_get(queue) == "n1"
    queue.done("n1")
    clock.advance(10.0)
    queue.wake()
    assert await try_get(queue) is None


async def test_superseded_delay_does_not_release_the_key_early(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add_after("other", 0.5)
    queue.add_after("n1", 1.0)
    queue.add("n1")  # runs now instead
    assert await try_get(queue) == "n1"
    queue.done("n1")
    queue.add_after("n1", 5.0)
    clock.advance(1.0)
    queue.wake()
    assert [await try_get(queue), await try_get(queue)] == ["other", None]
    clock.advance(4.0)
    queue.wake()
    assert await try_get(queue) == "n1"


async def test_key_due_while_in_flight_runs_again_after_done(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add("n1")
    assert await try_get(queue) == "n1"
    queue.add_after("n1", 1.0)
    clock.advance(1.0)
    queue.wake()
    assert await try_get(queue) is None
    queue.done("n1")
    assert await try_get(queue) == "n1"


async def test_internal_timer_releases_delayed_keys_without_wake(make_queue: MakeQueue) -> None:
    queue = make_queue()  # real clock: the timer must fire on its own
    queue.add_after("later", 60.0)
    queue.add_after("soon", 0.005)  # due before the armed timer: it must be re-armed
    assert await asyncio.wait_for(queue.get(), timeout=1.0) == "soon"


def test_keys_delayed_before_the_loop_runs_are_released_by_get() -> None:
    clock = FakeClock()
    queue = WorkQueue[str](clock=clock)
    queue.add_after("n1", 1.0)  # no event loop yet, so no timer
    clock.advance(1.0)
    assert asyncio.run(asyncio.wait_for(queue.get(), timeout=1.0)) == "n1"


# -- rate limiting ---------------------------------------------------------------------------


async def test_add_rate_limited_waits_longer_after_each_failure_until_forgotten(
    make_queue: MakeQueue,
) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock, rate_limiter=ratelimit.ExponentialBackoff[str](base=1.0))
    for wait in [1.0, 2.0, 4.0]:
        queue.add_rate_limited("n1")
        clock.advance(wait - 0.25)
        queue.wake()
        assert await try_get(queue) is None
        clock.advance(0.25)
        queue.wake()
        assert await try_get(queue) == "n1"
        queue.done("n1")
    assert queue.requeues("n1") == 3
    queue.forget("n1")
    assert queue.requeues("n1") == 0
    queue.add_rate_limited("n1")
    clock.advance(1.0)
    queue.wake()
    assert await try_get(queue) == "n1"


async def test_rate_limited_burst_beyond_the_bucket_is_spread_out(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(
        clock=clock, rate_limiter=ratelimit.TokenBucket(rate=2, burst=3, clock=clock)
    )

    async def ready_now() -> list[str]:
        queue.wake()
        keys = []
        while (key := await try_get(queue)) is not None:
            keys.append(key)
            queue.done(key)
        return keys

    for i in range(5):
        queue.add_rate_limited(f"n{i}")
    assert await ready_now() == ["n0", "n1", "n2"]
    clock.advance(0.5)
    assert await ready_now() == ["n3"]
    clock.advance(0.5)
    assert await ready_now() == ["n4"]


async def test_default_limiter_retries_first_after_half_a_second(make_queue: MakeQueue) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add_rate_limited("n1")
    clock.advance(0.25)
    queue.wake()
    assert await try_get(queue) is None
    clock.advance(0.25)
    queue.wake()
    assert await try_get(queue) == "n1"


# -- workers ---------------------------------------------------------------------------------


async def test_worker_hands_handler_errors_to_the_policy_and_still_calls_done(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    errors: list[tuple[str, Exception]] = []

    async def handler(key: str) -> None:
        raise ValueError(key)

    queue.add("n1")
    queue.run_workers(handler, 1, on_error=no_errors(errors))
    await settle(queue)
    queue.add("n1")  # handed out again only if done() was called
    await settle(queue)
    assert [(key, type(exc)) for key, exc in errors] == [("n1", ValueError)] * 2


async def test_async_policy_retries_with_backoff_until_the_handler_succeeds(
    make_queue: MakeQueue,
) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock, rate_limiter=ratelimit.ExponentialBackoff[str](base=1.0))
    attempts: collections.Counter[str] = collections.Counter()

    async def handler(key: str) -> None:
        attempts[key] += 1
        if attempts[key] < 3:
            raise ConnectionError("Netmaker unreachable")
        queue.forget(key)

    async def retry(key: str, exc: Exception) -> None:
        queue.add_rate_limited(key)

    queue.add("n1")
    queue.run_workers(handler, 1, on_error=retry)
    for wait, requeues in [(1.0, 1), (2.0, 2)]:
        await spin()
        assert (len(queue), queue.in_flight, queue.requeues("n1")) == (1, 0, requeues)
        clock.advance(wait)
        queue.wake()
    await settle(queue)
    assert attempts["n1"] == 3
    assert queue.requeues("n1") == 0


async def test_failing_policy_is_logged_and_the_worker_keeps_going(
    make_queue: MakeQueue, caplog: pytest.LogCaptureFixture
) -> None:
    queue = make_queue()
    handled: list[str] = []

    async def handler(key: str) -> None:
        handled.append(key)
        raise ValueError(key)

    def broken_policy(key: str, exc: Exception) -> None:
        raise RuntimeError("bug in the policy")

    queue.add("a")
    (worker,) = queue.run_workers(handler, 1, on_error=broken_policy)
    with caplog.at_level(logging.ERROR, logger="kaput_not.queue"):
        await settle(queue)
    queue.add("b")
    await settle(queue)
    assert handled == ["a", "b"]
    assert not worker.done()
    assert "error policy failed for 'a'" in caplog.text


async def test_take_calls_done_even_when_the_body_raises(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.add("n1")
    taken: list[str] = []

    async def fail_while_holding_a_key() -> None:
        async with queue.take() as key:
            taken.append(key)
            raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await fail_while_holding_a_key()
    assert taken == ["n1"]
    assert queue.in_flight == 0
    queue.add("n1")
    assert await try_get(queue) == "n1"


async def test_done_for_a_key_not_in_flight_is_an_error(make_queue: MakeQueue) -> None:
    queue = make_queue()
    queue.add("n1")
    with pytest.raises(RuntimeError, match="not in flight"):
        queue.done("n1")


async def test_a_cancelled_getter_passes_its_wake_up_on(make_queue: MakeQueue) -> None:
    queue = make_queue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.add("n1")  # wakes the first getter...
    first.cancel()  # ...which is cancelled before it takes the key
    assert await asyncio.wait_for(second, timeout=1.0) == "n1"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_run_workers_needs_at_least_one_worker(make_queue: MakeQueue) -> None:
    async def handler(key: str) -> None:
        return

    with pytest.raises(ValueError, match="worker count"):
        make_queue().run_workers(handler, 0, on_error=no_errors([]))


# -- shutdown --------------------------------------------------------------------------------


async def test_shutdown_makes_waiting_and_later_gets_raise(make_queue: MakeQueue) -> None:
    queue = make_queue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert await queue.shutdown(drain_timeout=1.0) is True
    with pytest.raises(QueueShutDown):
        await getter
    with pytest.raises(QueueShutDown):
        await queue.get()


async def test_shutdown_lets_in_flight_work_finish_before_returning(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    release = asyncio.Event()
    finished: list[str] = []

    async def handler(key: str) -> None:
        await release.wait()
        finished.append(key)

    queue.add("a")
    queue.add("b")
    workers = queue.run_workers(handler, 2, on_error=no_errors([]))
    await spin()
    assert queue.in_flight == 2
    stopping = asyncio.create_task(queue.shutdown(drain_timeout=5.0))
    await spin()
    assert not stopping.done()
    release.set()
    assert await stopping is True
    assert sorted(finished) == ["a", "b"]
    assert all(worker.done() and not worker.cancelled() for worker in workers)


async def test_shutdown_waits_for_the_last_in_flight_key_not_the_first(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    queue.add("a")
    queue.add("b")
    assert [await try_get(queue), await try_get(queue)] == ["a", "b"]
    stopping = asyncio.create_task(queue.shutdown(drain_timeout=5.0))
    await spin()
    queue.done("a")
    await spin()
    assert not stopping.done()
    queue.done("b")
    assert await stopping is True


async def test_shutdown_gives_up_at_the_deadline_and_cancels_its_workers(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue()
    cancelled: list[str] = []

    async def stuck(key: str) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(key)
            raise

    queue.add("n1")
    (worker,) = queue.run_workers(stuck, 1, on_error=no_errors([]))
    await spin()
    assert await queue.shutdown(drain_timeout=0.02) is False
    assert cancelled == ["n1"]
    assert worker.cancelled()
    assert queue.in_flight == 0


async def test_shutdown_drops_waiting_keys_and_does_not_requeue_in_flight_ones(
    make_queue: MakeQueue,
) -> None:
    queue = make_queue(clock=FakeClock())
    queue.add("a")
    queue.add("b")
    queue.add_after("c", 5.0)
    assert await try_get(queue) == "a"
    queue.add("a")
    stopping = asyncio.create_task(queue.shutdown(drain_timeout=1.0))
    await asyncio.sleep(0)
    assert len(queue) == 0
    with pytest.raises(QueueShutDown):
        await queue.get()
    queue.done("a")
    assert await stopping is True
    assert (len(queue), queue.in_flight) == (0, 0)


async def test_adds_after_shutdown_are_ignored(make_queue: MakeQueue) -> None:
    backoff = ratelimit.ExponentialBackoff[str]()
    queue = make_queue(clock=FakeClock(), rate_limiter=backoff)
    await queue.shutdown(drain_timeout=0)
    queue.add("a")
    queue.add_after("b", 1.0)
    queue.add_rate_limited("c")
    assert len(queue) == 0
    assert backoff.requeues("c") == 0


async def test_shutdown_from_inside_a_worker_is_refused(make_queue: MakeQueue) -> None:
    queue = make_queue()
    refusals: list[str] = []

    async def handler(key: str) -> None:
        try:
            await queue.shutdown(drain_timeout=0.01)
        except RuntimeError as exc:
            refusals.append(str(exc))

    queue.add("n1")
    queue.run_workers(handler, 1, on_error=no_errors([]))
    await settle(queue)
    assert len(refusals) == 1
    assert "own worker" in refusals[0]


# -- metrics ---------------------------------------------------------------------------------


async def test_depth_counts_ready_delayed_and_readded_keys_once_each(
    make_queue: MakeQueue,
) -> None:
    clock = FakeClock()
    queue = make_queue(clock=clock)
    queue.add("a")
    queue.add("b")
    queue.add_after("c", 5.0)
    assert (len(queue), queue.in_flight) == (3, 0)
    assert await try_get(queue) == "a"
    assert (len(queue), queue.in_flight) == (2, 1)
    queue.add("a")
    queue.add("a")
    assert (len(queue), queue.in_flight) == (3, 1)
    clock.advance(5.0)
    queue.wake()  # c moves from delayed to ready: still one key
    assert (len(queue), queue.in_flight) == (3, 1)
    queue.done("a")
    assert (len(queue), queue.in_flight) == (3, 0)


# -- invariants over random operations -------------------------------------------------------

KEYS = ["a", "b", "c"]


@dataclass(frozen=True)
class Add:
    key: str


@dataclass(frozen=True)
class AddAfter:
    key: str
    seconds: float


@dataclass(frozen=True)
class Get:
    pass


@dataclass(frozen=True)
class Done:
    slot: int


@dataclass(frozen=True)
class Advance:
    seconds: float


Op = Add | AddAfter | Get | Done | Advance

operations = st.lists(
    st.one_of(
        st.builds(Add, st.sampled_from(KEYS)),
        st.builds(AddAfter, st.sampled_from(KEYS), st.sampled_from([0.0, 0.5, 1.0, 3.0])),
        st.builds(Get),
        st.builds(Done, st.integers(0, 2)),
        st.builds(Advance, st.sampled_from([0.25, 1.0, 5.0])),
    ),
    max_size=60,
)


async def run_operations(ops: list[Op]) -> None:
    clock = FakeClock()
    queue = WorkQueue[str](clock=clock)
    held: list[str] = []  # keys handed out and not done, in the order they were taken
    last_add: dict[str, int] = {}
    last_start: dict[str, int] = {}

    async def take(step: int) -> bool:
        key = await try_get(queue)
        if key is None:
            return False
        assert key not in held, f"{key} handed to a second worker"
        held.append(key)
        last_start[key] = step
        return True

    for step, op in enumerate(ops):
        if isinstance(op, Add):
            queue.add(op.key)
            last_add[op.key] = step
        elif isinstance(op, AddAfter):
            queue.add_after(op.key, op.seconds)
            last_add[op.key] = step
        elif isinstance(op, Get):
            await take(step)
        elif isinstance(op, Done) and held:
            queue.done(held.pop(op.slot % len(held)))
        elif isinstance(op, Advance):
            clock.advance(op.seconds)
            queue.wake()
        assert queue.in_flight == len(held)
        assert len(queue) <= len(KEYS), "a key is counted twice"

    # Finish everything: every key must come out again after its last add, and none be left.
    step = len(ops)
    for key in held[:]:
        held.remove(key)
        queue.done(key)
    clock.advance(10.0)
    queue.wake()
    while await take(step):
        queue.done(held.pop())
        step += 1
    assert (len(queue), queue.in_flight) == (0, 0), "keys left behind"
    for key, added in last_add.items():
        assert last_start.get(key, -1) > added, f"{key} not processed after its last add"


@settings(deadline=None, max_examples=200)
@given(operations)
def test_random_operations_keep_every_key_exclusive_and_none_lost(ops: list[Op]) -> None:
    asyncio.run(run_operations(ops))


# -- the exclusive key ---------------------------------------------------------------------------

ALL = "(whole cluster)"


async def test_the_exclusive_key_waits_for_keys_in_flight_and_bars_the_rest(make_queue: MakeQueue):
    queue = make_queue(exclusive=ALL)
    queue.add("a")
    assert await try_get(queue) == "a"
    queue.add(ALL)
    queue.add("b")
    assert await try_get(queue) is None  # "a" is in flight: ALL waits, and "b" waits for ALL
    queue.done("a")
    assert await try_get(queue) == ALL
    queue.add("c")
    assert await try_get(queue) is None  # nothing runs beside ALL
    queue.done(ALL)
    assert await try_get(queue) == "b"
    assert await try_get(queue) == "c"


async def test_no_worker_ever_runs_beside_the_exclusive_key(make_queue: MakeQueue):
    """Issue 9, item 3: a full pass must never overlap a node pass, in either order."""
    queue = make_queue(exclusive=ALL)
    running: set[str] = set()
    overlaps: list[set[str]] = []
    ran: list[str] = []

    async def handler(key: str) -> None:
        running.add(key)
        if ALL in running and len(running) > 1:
            overlaps.append(set(running))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        running.discard(key)
        ran.append(key)

    queue.run_workers(handler, 4, on_error=lambda key, exc: None)
    for round_ in range(20):
        for name in ("a", "b", "c", "d", "e"):
            queue.add(f"{name}{round_ % 3}")
        if round_ % 4 == 0:
            queue.add(ALL)
        await spin(3)
    await settle(queue)
    assert overlaps == []
    assert ran.count(ALL) >= 5


async def test_a_waiting_getter_wakes_when_the_barrier_lifts(make_queue: MakeQueue):
    queue = make_queue(exclusive=ALL)
    queue.add(ALL)
    assert await try_get(queue) == ALL
    queue.add("a")
    waiting = asyncio.ensure_future(queue.get())
    await spin()
    assert not waiting.done()
    queue.done(ALL)
    assert await asyncio.wait_for(waiting, 1) == "a"
