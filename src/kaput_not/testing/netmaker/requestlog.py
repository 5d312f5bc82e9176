"""The emulator's request log: what a client asked, in order, and what it got back.

Tests and benchmarks use it to measure a client from outside ("a resync of 1000 unchanged nodes
costs three reads and no writes"). Each entry is recorded when the request has been read, before
faults or handling, so a request that hangs or is reset still counts; its ``status`` stays None
because no response was sent.

Counting keys on the route template (``DELETE /api/v1/egress``,
``POST /api/v1/host/register/{token}``) so ids and query strings do not split the tally.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from dataclasses import dataclass

LOGIN_ROUTE = "POST /api/users/adm/authenticate"
_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class LogEntry:
    method: str
    path: str  # without the query string
    route: str  # "METHOD /template", or "METHOD /path" when no route matched
    at: float  # the emulator's clock when the request was read
    status: int | None = None  # None while unanswered, and forever if reset or hung
    user_agent: str = ""  # tells which client (e.g. which controller replica) asked


class RequestLog:
    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def record(self, method: str, path: str, route: str, user_agent: str = "") -> LogEntry:
        entry = LogEntry(
            method=method, path=path, route=route, at=self._clock(), user_agent=user_agent
        )
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[LogEntry]:
        """A snapshot of every entry since the last :meth:`reset`, oldest first."""
        with self._lock:
            return list(self._entries)

    def counts(self) -> dict[str, int]:
        """Requests per route key, e.g. ``{"GET /api/hosts": 2, "PUT /api/v1/egress": 1}``."""
        return dict(collections.Counter(entry.route for entry in self.entries))

    def reads(self) -> int:
        """How many GET requests were made."""
        return sum(1 for entry in self.entries if entry.method == "GET")

    def writes(self, *, user_agent_contains: str | None = None) -> int:
        """How many requests could change state; logging in does not count.

        `user_agent_contains` counts only the writes of clients whose User-Agent holds it.
        """
        return sum(
            1
            for entry in self.entries
            if entry.method in _WRITE_METHODS
            and entry.route != LOGIN_ROUTE
            and (user_agent_contains is None or user_agent_contains in entry.user_agent)
        )

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
