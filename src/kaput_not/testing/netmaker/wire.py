"""The values passed between the socket layer and the emulated API: requests, responses, outcomes.

The socket layer (:mod:`.server`) turns h11 events into a :class:`Request` and writes back
whatever :data:`Reply` it gets: a :class:`Response`, or an :class:`Outcome` that is not a
response at all (reset the connection, never answer). Keeping these plain values apart from
h11 lets the API and the fault injector stay free of socket code.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Request:
    """One complete HTTP request; ``path`` is percent-decoded, as gorilla/mux matches it."""

    method: str
    path: str
    query: Mapping[str, Sequence[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    params: Mapping[str, str] = field(default_factory=dict)

    def query_value(self, name: str) -> str:
        """First value of a query parameter, ``""`` if absent (Go's ``URL.Query().Get``)."""
        values = self.query.get(name)
        return values[0] if values else ""

    def header(self, name: str) -> str | None:
        """A header by case-insensitive name (the socket layer stores names lowercased)."""
        return self.headers.get(name.lower())


@dataclass(frozen=True)
class Response:
    """A complete response. ``content_type`` None sends no Content-Type header."""

    status: int
    body: bytes = b""
    content_type: str | None = None


class Outcome(enum.Enum):
    """Replies that are not HTTP responses; used by fault injection."""

    RESET = "reset"  # abort the TCP connection (RST), nothing is sent
    HANG = "hang"  # send nothing until the client closes or the emulator stops


Reply = Response | Outcome
