"""One list read from Netmaker and kept for a TTL: read once however many ask, served stale
while it refreshes, read twice when it shrinks sharply, patched by our own writes.

See `cache.py` for why, and for what bounds how wrong it can be.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sized
from dataclasses import dataclass
from typing import Generic, TypeVar

from kaput_not.core.suspect import suspect_shrink
from kaput_not.ratelimit import Clock, ExponentialBackoff

log = logging.getLogger("kaput_not.netmaker.cache")

T = TypeVar("T", bound=Sized)


@dataclass(slots=True)
class _Entry(Generic[T]):
    value: T
    fetched_at: float


class CachedList(Generic[T]):
    """One cached list: its value, and the call filling it if one is running.

    `name` keys it in `retry`, which says how long node passes keep planning on the stale
    list after a failed read before one of them reads again; `one_read` is the lock every list
    of a cache reads under.
    """

    __slots__ = (
        "_clock",
        "_entry",
        "_failed_at",
        "_inflight",
        "_journal",
        "_last_size",
        "_name",
        "_one_read",
        "_retry",
        "_ttl",
        "_wait",
    )

    def __init__(
        self,
        name: str,
        *,
        ttl: float,
        clock: Clock,
        retry: ExponentialBackoff[str],
        one_read: asyncio.Lock,
    ) -> None:
        self._name = name
        self._ttl = ttl
        self._clock = clock
        self._retry = retry
        self._one_read = one_read
        self._entry: _Entry[T] | None = None
        self._inflight: asyncio.Future[T] | None = None
        #: Writes made while `_inflight` runs, replayed onto its result.
        self._journal: list[Callable[[T], T]] = []
        #: How long the list was when last read (kept when the entry is dropped).
        self._last_size: int | None = None
        #: When the last read failed (None after a success), and how long refreshes in the
        #: background wait after it.
        self._failed_at: float | None = None
        self._wait = 0.0

    @property
    def held(self) -> T | None:
        """The list held now, whatever its age; None when none is."""
        return self._entry.value if self._entry is not None else None

    def drop(self) -> None:
        """Forget the list: the next read goes to Netmaker."""
        self._entry = None

    async def read(self, fetch: Callable[[], Awaitable[T]], stale_ok: bool = False) -> T:
        """The list: held if younger than the TTL, else read by `fetch` (one call shared by
        every reader). `stale_ok`: a list younger than twice the TTL is returned at once, its
        refresh running in the background."""
        entry = self._entry
        stale: _Entry[T] | None = None  # what a node pass may plan on while the refresh runs
        if entry is not None:
            age = self._clock() - entry.fetched_at
            if age < self._ttl:
                return entry.value
            if stale_ok and age < 2 * self._ttl:
                stale = entry
        if self._inflight is None:
            failed = self._failed_at
            if stale is not None and failed is not None and self._clock() - failed < self._wait:
                return stale.value  # the last refresh failed a moment ago: not one per event
            self._inflight = asyncio.ensure_future(self._fill(fetch))
            self._inflight.add_done_callback(_seen)
        if stale is not None:
            return stale.value  # our writes keep patching it; the refresh replaces it
        # shield: one reader being cancelled must not cancel the call the others wait on.
        return await asyncio.shield(self._inflight)

    def patch(self, patch: Callable[[T], T]) -> None:
        """Apply one of our own writes: to the list held, and to the read in flight."""
        if self._entry is not None:
            self._entry.value = patch(self._entry.value)
            # Our own deletes shrink the list: the next read must not find that suspect.
            self._last_size = len(self._entry.value)
        if self._inflight is not None:
            self._journal.append(patch)

    async def _fill(self, fetch: Callable[[], Awaitable[T]]) -> T:
        started = self._clock()
        try:
            async with self._one_read:
                value = await fetch()
            if self._last_size is not None and suspect_shrink(self._last_size, len(value)):
                log.warning(
                    "a Netmaker list shrank from %d to %d items; reading it again before "
                    "believing it",
                    self._last_size,
                    len(value),
                )
                async with self._one_read:
                    value = await fetch()
            for patch in self._journal:
                value = patch(value)
            self._last_size = len(value)  # after our own writes, as `patch` counts them
            self._entry = _Entry(value, started)
        except Exception:
            self._failed_at = self._clock()
            self._wait = self._retry.when(self._name)
            raise
        else:
            self._failed_at = None
            self._retry.forget(self._name)
            return value
        finally:
            self._journal.clear()
            self._inflight = None


def _seen(call: asyncio.Future[T]) -> None:
    """Retrieve and report a refresh's failure: with no reader waiting (they took the stale
    lists), asyncio would call it never retrieved, and nobody would say it."""
    if not call.cancelled() and call.exception() is not None:
        log.warning("reading a Netmaker list failed: %s", call.exception())
