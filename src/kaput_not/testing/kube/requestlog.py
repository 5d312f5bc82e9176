"""The stand-in's request log: what a client asked, in order, with its list and watch parameters.

Tests measure a client from outside with it: "listed in pages of 500" is
``[e.limit for e in log.entries_for(LIST_NODES)] == [500, 500]``, "watched from the list's
version" is ``log.entries_for(WATCH_NODES)[-1].resource_version == rv``. Entries are recorded
when the request has been read, before faults, so a request that hangs or is reset still
counts; its ``status`` stays None because no response was sent. A watch's status is set when
its stream starts (200), or to the error it got instead.

Counting keys on route keys (see :mod:`.routes`). Thread-safe.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from .routes import parse_bool


@dataclass
class LogEntry:
    method: str
    path: str  # decoded, without the query string
    route: str  # the route key: "METHOD /template", or "METHOD /path" when no route matched
    at: float  # the stand-in's clock when the request was read
    query: Mapping[str, str] = field(default_factory=dict)  # first value of each parameter
    status: int | None = None  # None while unanswered, and forever if reset or hung

    @property
    def limit(self) -> int | None:
        value = self.query.get("limit")
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    @property
    def continue_token(self) -> str | None:
        return self.query.get("continue")

    @property
    def resource_version(self) -> str | None:
        return self.query.get("resourceVersion")

    @property
    def timeout_seconds(self) -> int | None:
        value = self.query.get("timeoutSeconds")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def bookmarks(self) -> bool:
        return parse_bool(self.query.get("allowWatchBookmarks", "")) is True


class RequestLog:
    def __init__(self, *, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[LogEntry] = []

    def record(self, method: str, path: str, route: str, query: Mapping[str, str]) -> LogEntry:
        entry = LogEntry(method, path, route, self._clock(), dict(query))
        with self._lock:
            self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[LogEntry]:
        """A snapshot of every entry since the last :meth:`reset`, oldest first."""
        with self._lock:
            return list(self._entries)

    def entries_for(self, route: str) -> list[LogEntry]:
        """The entries of one route key, oldest first."""
        return [entry for entry in self.entries if entry.route == route]

    def counts(self) -> dict[str, int]:
        """Requests per route key, e.g. ``{"GET /api/v1/nodes": 2, WATCH_NODES: 1}``."""
        return dict(collections.Counter(entry.route for entry in self.entries))

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()
