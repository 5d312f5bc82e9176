"""The core of every stand-in's request log: entries recorded under a lock, snapshots, tallies.

A stand-in records each request as soon as it has been read, before faults or handling, so a
request that hangs or is reset still counts; :func:`answered` then notes the status of the reply
that was sent, and an entry without one was never answered. Tallies key on the route key
(``METHOD /template``), so ids and query strings do not split them.

Each stand-in subclasses :class:`LoggedRequest` with the fields its tests ask about (query
parameters, a User-Agent) and :class:`BaseRequestLog` with a ``record`` that builds its entry
and with its own query helpers.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from .messages import Reply, Response, StreamingResponse


@dataclass
class LoggedRequest:
    method: str
    path: str  # decoded, without the query string
    route: str  # the route key: "METHOD /template", or "METHOD /path" when no route matched
    at: float  # the stand-in's clock when the request was read


EntryT = TypeVar("EntryT", bound=LoggedRequest)


class BaseRequestLog(Generic[EntryT]):
    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[EntryT] = []

    def _append(self, entry: EntryT) -> EntryT:
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[EntryT]:
        """A snapshot of every entry since the last :meth:`reset`, oldest first."""
        with self._lock:
            return list(self._entries)

    def counts(self) -> dict[str, int]:
        """Requests per route key."""
        return dict(collections.Counter(entry.route for entry in self.entries))

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()


class _Answerable(Protocol):
    status: int | None


def answered(entry: _Answerable, reply: Reply) -> Reply:
    """Note on ``entry`` the status ``reply`` sends (a reset or a hang sends none); return it."""
    if isinstance(reply, Response | StreamingResponse):
        entry.status = reply.status
    return reply
