"""The stand-in's request log: what a client asked, in order, with its list and watch parameters.

Tests measure a client from outside with it: "listed in pages of 500" is
``[e.limit for e in log.entries_for(LIST_NODES)] == [500, 500]``, "watched from the list's
version" is ``log.entries_for(WATCH_NODES)[-1].resource_version == rv``. Entries are recorded
when the request has been read, before faults, so a request that hangs or is reset still
counts; its ``status`` stays None because no response was sent. A watch's status is set when
its stream starts (200), or to the error it got instead.

Counting keys on route keys (see :mod:`.routes`). Thread-safe; the core is shared with the other
stand-ins (:mod:`kaput_not_standins.http.requestlog`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from ..http.requestlog import BaseRequestLog, LoggedRequest
from .routes import parse_bool


@dataclass
class LogEntry(LoggedRequest):
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


class RequestLog(BaseRequestLog[LogEntry]):
    """Entries, counts per route key (``{"GET /api/v1/nodes": 2, WATCH_NODES: 1}``), reset."""

    def record(self, method: str, path: str, route: str, query: Mapping[str, str]) -> LogEntry:
        return self._append(LogEntry(method, path, route, self._clock(), dict(query)))

    def entries_for(self, route: str) -> list[LogEntry]:
        """The entries of one route key, oldest first."""
        return [entry for entry in self.entries if entry.route == route]
