"""The emulator's request log: what a client asked, in order, and what it got back.

Tests and benchmarks use it to measure a client from outside ("a resync of 1000 unchanged nodes
costs three reads and no writes"). Each entry is recorded when the request has been read, before
faults or handling, so a request that hangs or is reset still counts; its ``status`` stays None
because no response was sent.

Counting keys on the route template (``DELETE /api/v1/egress``,
``POST /api/v1/host/register/{token}``) so ids and query strings do not split the tally. The
core is shared with the other stand-ins (:mod:`kaput_not_standins.http.requestlog`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..http.requestlog import BaseRequestLog, LoggedRequest

LOGIN_ROUTE = "POST /api/users/adm/authenticate"
_WRITE_METHODS = frozenset({"POST", "PUT", "DELETE"})


@dataclass
class LogEntry(LoggedRequest):
    status: int | None = None  # None while unanswered, and forever if reset or hung
    user_agent: str = ""  # tells which client (e.g. which controller replica) asked


class RequestLog(BaseRequestLog[LogEntry]):
    """Entries, counts per route key (``{"GET /api/hosts": 2, "PUT /api/v1/egress": 1}``), reset."""

    def record(self, method: str, path: str, route: str, user_agent: str = "") -> LogEntry:
        entry = LogEntry(
            method=method, path=path, route=route, at=self._clock(), user_agent=user_agent
        )
        return self._append(entry)

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
