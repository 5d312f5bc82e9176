"""The work queue between the informer and the reconcile workers, keyed by node name.

Events only enqueue a key; a worker takes the key, reconciles the node as it is now, and calls
`done(key)`. Guarantees:

- Dedup: a key added while it waits is queued once. `len(queue)` counts each key at most once.
- Exclusive: a key is never held by two workers. A key added while in flight is marked dirty
  and queued again by `done(key)`, so the newer event is not lost and not run concurrently.
- Fair: ready keys are handed out first in, first out.
- Exclusive key (optional, `exclusive=`): the one key that runs alone, as a barrier. Once it is
  ready, no other key is handed out; it waits for the keys in flight to finish, runs with no
  other key in flight, and only then do the others go on. The controller's whole-cluster pass
  uses it, so a full pass never plans against a node pass's half-done writes, and no node pass
  against the full pass's.
- Delays: `add_after(key, s)` makes the key ready `s` seconds from now by the injected clock.
  The earliest request wins: a key that is ready, or due sooner, is not pushed back, and
  `add(key)` makes a delayed key ready at once.
- Backoff: `add_rate_limited(key)` delays by the rate limiter (default: per-key exponential
  under a global token bucket); `forget(key)` resets it. The queue never decides to retry:
  the caller's error policy calls `add_rate_limited` or `forget`.
- Shutdown: `shutdown(drain_timeout=...)` stops handing out keys at once, drops the keys that
  are waiting (the next start's full resync covers them), ignores later adds, lets in-flight
  keys finish until the deadline, then cancels the queue's own workers. Waiting and later
  `get()` calls raise `QueueShutDown`.

Every `get()` must be paired with `done(key)`, or the key is never handed out again; `take()`
and `run_workers()` do the pairing. Delayed keys are released by one timer on the event loop;
with a fake clock, advance it and call `wake()`. Single event loop, not thread-safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import inspect
import itertools
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Generic, Protocol, TypeVar

from kaput_not import ratelimit

log = logging.getLogger("kaput_not.queue")

K = TypeVar("K", bound=Hashable)

Handler = Callable[[K], Awaitable[None]]
# Called with the key and the handler's exception, before done(key); may be async.
ErrorPolicy = Callable[[K, Exception], Awaitable[None] | None]


class QueueObserver(Protocol):
    """What the queue tells its metrics (client-go's workqueue series)."""

    def added(self) -> None: ...
    def retried(self) -> None: ...
    def started(self, waited_seconds: float) -> None: ...
    def finished(self, worked_seconds: float) -> None: ...


class QueueShutDown(Exception):
    """The queue is shut down: `get()` will never return a key again."""


class WorkQueue(Generic[K]):
    def __init__(
        self,
        *,
        rate_limiter: ratelimit.RateLimiter[K] | None = None,
        clock: ratelimit.Clock = time.monotonic,
        name: str = "queue",
        exclusive: K | None = None,
        observer: QueueObserver | None = None,
    ) -> None:
        self._limiter: ratelimit.RateLimiter[K] = (
            rate_limiter
            if rate_limiter is not None
            else ratelimit.default_rate_limiter(clock=clock)
        )
        self._clock = clock
        self._name = name
        self._exclusive = exclusive
        self._observer = observer
        # When each waiting key became ready, and when each key in flight was handed out.
        self._readied_at: dict[K, float] = {}
        self._started_at: dict[K, float] = {}
        self._ready: deque[K] = deque()
        # Keys that need a run: those in _ready, plus in-flight keys added again.
        self._dirty: set[K] = set()
        self._processing: set[K] = set()
        # Delayed keys: key -> (due, seq) is the truth; the heap may hold stale entries,
        # skipped when they surface. seq breaks ties first-come first-served.
        self._due: dict[K, tuple[float, int]] = {}
        self._heap: list[tuple[float, int, K]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._getters: deque[asyncio.Future[None]] = deque()
        self._shut_down = False
        self._drained: asyncio.Future[None] | None = None
        self._workers: list[asyncio.Task[None]] = []

    def __len__(self) -> int:
        """Keys waiting for a worker: ready, delayed, or in flight and added again."""
        return len(self._dirty) + len(self._due)

    @property
    def in_flight(self) -> int:
        """Keys handed out and not yet `done`."""
        return len(self._processing)

    @property
    def shutting_down(self) -> bool:
        return self._shut_down

    # -- adding ------------------------------------------------------------------------------

    def add(self, key: K) -> None:
        """Make `key` ready now, unless it already is. Ignored after shutdown."""
        if self._shut_down:
            return
        # Running now satisfies any later request for this key.
        self._due.pop(key, None)
        self._mark_dirty(key)

    def add_after(self, key: K, seconds: float) -> None:
        """Make `key` ready in `seconds`, unless it is ready or due sooner already."""
        if self._shut_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        if key in self._dirty:
            return
        due = self._clock() + seconds
        current = self._due.get(key)
        if current is not None and current[0] <= due:
            return
        seq = next(self._seq)
        self._due[key] = (due, seq)
        heapq.heappush(self._heap, (due, seq, key))
        self._compact_heap()
        self._arm_timer()

    def add_rate_limited(self, key: K) -> None:
        """Retry `key` after the rate limiter's wait; each call counts as one more failure."""
        if self._shut_down:
            return
        if self._observer is not None:
            self._observer.retried()
        self.add_after(key, self._limiter.when(key))

    def forget(self, key: K) -> None:
        """Reset `key`'s backoff: call it when the key was handled successfully."""
        self._limiter.forget(key)

    def requeues(self, key: K) -> int:
        """Rate-limited retries of `key` since it was last forgotten."""
        return self._limiter.requeues(key)

    def wake(self) -> None:
        """Read the clock now and release the delayed keys that are due.

        The internal timer runs on the event loop's clock; a test driving a fake clock calls
        this after advancing it.
        """
        self._release_due()

    # -- taking ------------------------------------------------------------------------------

    async def get(self) -> K:
        """Wait for the next ready key and mark it in flight. Pair with `done(key)`.

        Raises `QueueShutDown` once `shutdown()` has been called, also while waiting.
        """
        self._release_due()
        while True:
            if self._shut_down:
                raise QueueShutDown(f"{self._name} is shut down")
            key = self._next_ready()
            if key is not None:
                return key
            await self._wait_for_key()

    def done(self, key: K) -> None:
        """Release `key` after its run; queue it again if it was added meanwhile."""
        if key not in self._processing:
            raise RuntimeError(f"{self._name}: done({key!r}) for a key that is not in flight")
        self._processing.remove(key)
        started = self._started_at.pop(key, None)
        if self._observer is not None and started is not None:
            self._observer.finished(self._clock() - started)
        if self._shut_down:
            drained = self._drained
            if not self._processing and drained is not None and not drained.done():
                drained.set_result(None)
            return
        if key in self._dirty:
            self._push_ready(key)
        if self._exclusive is not None and self._ready:
            # The barrier may have lifted (the exclusive key finished, or the last key before
            # it did): every sleeping getter looks again.
            self._wake_all_getters()

    @contextlib.asynccontextmanager
    async def take(self) -> AsyncIterator[K]:
        """`async with queue.take() as key:` gets a key and calls `done` however the body ends."""
        key = await self.get()
        try:
            yield key
        finally:
            self.done(key)

    def run_workers(
        self, handler: Handler[K], count: int, *, on_error: ErrorPolicy[K]
    ) -> list[asyncio.Task[None]]:
        """Start `count` tasks that feed keys to `handler` until shutdown.

        An exception from `handler` goes to `on_error(key, exc)`, which decides the retry
        (`add_rate_limited`, or `forget` for errors not worth retrying); then `done` is called.
        On success nothing is called: the handler calls `forget` itself. The queue keeps the
        tasks and `shutdown` ends them; the list is returned for observation only.
        """
        if count < 1:
            raise ValueError(f"worker count must be >= 1, got {count}")
        start = len(self._workers)
        for i in range(start, start + count):
            task = asyncio.create_task(
                self._work(handler, on_error), name=f"{self._name}-worker-{i}"
            )
            self._workers.append(task)
        return self._workers[start:]

    # -- shutting down -----------------------------------------------------------------------

    async def shutdown(self, *, drain_timeout: float = 10.0) -> bool:
        """Stop handing out keys, wait up to `drain_timeout` s for in-flight keys, then return.

        Returns True if every in-flight key finished in time. If not, workers started by
        `run_workers` are cancelled (their handlers see `CancelledError`; `done` still runs)
        and False is returned; keys taken with `get`/`take` are left to their callers.
        Must not be awaited from one of the queue's own workers: it would wait for itself.
        """
        if drain_timeout < 0:
            raise ValueError(f"drain timeout must be >= 0 seconds, got {drain_timeout}")
        current = asyncio.current_task()
        if current is not None and current in self._workers:
            raise RuntimeError(f"{self._name}: shutdown() awaited from the queue's own worker")
        self._stop_intake()
        drained = await self._wait_drained(drain_timeout)
        if not drained:
            log.warning(
                "%s: %d key(s) still in flight after %.1fs, cancelling workers",
                self._name,
                len(self._processing),
                drain_timeout,
            )
            for task in self._workers:
                task.cancel()
        # Idle workers leave on QueueShutDown, cancelled ones on CancelledError; both expected.
        await asyncio.gather(*self._workers, return_exceptions=True)
        return drained

    def _stop_intake(self) -> None:
        if self._shut_down:
            return
        self._shut_down = True
        self._ready.clear()
        self._dirty.clear()
        self._readied_at.clear()
        self._due.clear()
        self._heap.clear()
        self._cancel_timer()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    async def _wait_drained(self, within: float) -> bool:
        if not self._processing:
            return True
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()
        # asyncio.wait, not wait_for: a timeout must not cancel the future other callers share.
        finished, _ = await asyncio.wait({self._drained}, timeout=within)
        return bool(finished)

    # -- internals ---------------------------------------------------------------------------

    async def _work(self, handler: Handler[K], on_error: ErrorPolicy[K]) -> None:
        while True:
            try:
                key = await self.get()
            except QueueShutDown:
                return
            try:
                await handler(key)
            except Exception as exc:
                await self._apply_policy(on_error, key, exc)
            finally:
                self.done(key)

    async def _apply_policy(self, on_error: ErrorPolicy[K], key: K, exc: Exception) -> None:
        try:
            outcome = on_error(key, exc)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            # A bug in the policy must not end the worker: the pool would shrink silently.
            log.exception(
                "%s: error policy failed for %r (handler raised %r)", self._name, key, exc
            )

    def _mark_dirty(self, key: K) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        self._readied_at[key] = self._clock()
        if self._observer is not None:
            self._observer.added()
        # An in-flight key waits for done(), so no second worker can take it.
        if key not in self._processing:
            self._push_ready(key)

    def _push_ready(self, key: K) -> None:
        self._ready.append(key)
        self._wake_one_getter()

    def _next_ready(self) -> K | None:
        """The key to hand out now, or None: nothing is ready, or the exclusive key bars it."""
        if not self._ready:
            return None
        exclusive = self._exclusive
        if exclusive is not None:
            if exclusive in self._processing:
                return None
            if exclusive in self._dirty:  # ready, since it is not in flight
                if self._processing:
                    return None
                self._ready.remove(exclusive)
                return self._hand_out(exclusive)
        return self._hand_out(self._ready.popleft())

    def _hand_out(self, key: K) -> K:
        self._dirty.discard(key)
        self._processing.add(key)
        now = self._clock()
        self._started_at[key] = now
        readied = self._readied_at.pop(key, None)
        if self._observer is not None and readied is not None:
            self._observer.started(now - readied)
        return key

    async def _wait_for_key(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._getters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            # Woken for a key but cancelled before taking it: pass the wake-up on, or the
            # key would sit ready while another getter sleeps.
            if waiter.done() and not waiter.cancelled():
                self._wake_one_getter()
            raise
        finally:
            with contextlib.suppress(ValueError):
                self._getters.remove(waiter)

    def _wake_all_getters(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    def _wake_one_getter(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    def _release_due(self) -> None:
        now = self._clock()
        while self._heap and self._heap[0][0] <= now:
            due, seq, key = heapq.heappop(self._heap)
            if self._due.get(key) == (due, seq):
                del self._due[key]
                self._mark_dirty(key)
        self._arm_timer()

    def _earliest_due(self) -> float | None:
        while self._heap:
            due, seq, key = self._heap[0]
            if self._due.get(key) == (due, seq):
                return due
            heapq.heappop(self._heap)
        return None

    def _arm_timer(self) -> None:
        due = self._earliest_due()
        if due is None:
            self._cancel_timer()
            return
        # A timer set for earlier is kept: it fires, finds nothing due yet, and re-arms.
        if self._timer is not None and self._timer_due <= due:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no loop yet: the first get() releases what is due and arms the timer
        self._cancel_timer()
        self._timer = loop.call_later(max(0.0, due - self._clock()), self._on_timer)
        self._timer_due = due

    def _on_timer(self) -> None:
        self._timer = None
        self._release_due()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _compact_heap(self) -> None:
        # Keys made ready early leave stale entries behind; rebuild before they pile up.
        if len(self._heap) > 2 * len(self._due) + 64:
            self._heap = [(due, seq, key) for key, (due, seq) in self._due.items()]
            heapq.heapify(self._heap)
