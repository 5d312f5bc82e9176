"""The values passed between the socket layer and an emulated API: requests, replies, outcomes.

The socket layer (:mod:`.server`) turns h11 events into a :class:`Request` and writes back
whatever :data:`Reply` it gets:

- a :class:`Response`, complete, sent with a ``Content-Length``;
- a :class:`StreamingResponse`, whose body is an async iterator of byte chunks sent with chunked
  transfer encoding, one flushed chunk per item, ended by the final empty chunk when the iterator
  ends (or cut without it when the iterator raises :class:`AbortStream`);
- an :class:`Outcome` that is not a response at all (reset the connection, never answer).

Keeping these plain values apart from h11 lets an API and its fault injector stay free of
socket code.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Request:
    """One complete HTTP request; ``path`` is percent-decoded, as Go's routers match it."""

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
    """A complete response. ``content_type`` None sends no Content-Type header.

    ``headers`` are extra response headers; the socket layer adds ``Date`` and
    ``Content-Length`` itself.
    """

    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: Headers = ()


@dataclass(frozen=True, eq=False)
class StreamingResponse:
    """A response whose body is produced while it is sent (a Kubernetes watch, for instance).

    The head goes out at once. Each non-empty chunk from ``chunks`` is sent as one HTTP chunk
    and flushed; the body ends when the iterator ends. However the response ends (iterator
    done, client hung up, connection cut, server stopped), the server then calls the
    iterator's ``aclose()`` if it has one, even if iteration never started: an iterator that
    registers itself somewhere should unregister there, not only in a generator's ``finally``.
    """

    status: int
    chunks: AsyncIterator[bytes]
    content_type: str | None = None
    headers: Headers = ()


class AbortStream(Exception):
    """Raised by a stream's chunk iterator: close the connection now, without the final chunk.

    The client sees the body end in the middle (an incomplete chunked read), as when a server
    or a proxy between them dies mid-response.
    """


class Outcome(enum.Enum):
    """Replies that are not HTTP responses; used by fault injection."""

    RESET = "reset"  # abort the TCP connection (RST), nothing is sent
    HANG = "hang"  # send nothing until the client closes or the server stops


Reply = Response | StreamingResponse | Outcome
