"""``GET /api/v1/nodes?watch=1``: node watches as the real server streams them.

The reply is 200 with a chunked body of newline-terminated JSON events, one per chunk::

    {"type":"ADDED","object":{"kind":"Node","apiVersion":"v1","metadata":{...},...}}

- ``resourceVersion=R``: every node change after R, in order, then live changes. Each object
  carries its own resourceVersion; a DELETED event carries the node's last state with the
  *deletion's* resourceVersion.
- ``resourceVersion`` empty or ``0``: first a synthetic ADDED for every current node (sorted by
  name), then the changes after that moment.
- R older than the retained history: 410 ``Expired`` with the message
  ``too old resource version: R (H)`` (H = the oldest version still served). The real server
  (watch cache) answers this as 200 and a single ``ERROR`` event whose object is that Status,
  then ends the stream; the stand-in does that by default and can answer a plain HTTP 410
  instead (``expired_answer="status"``). Clients must handle both.
- ``allowWatchBookmarks=true``: every ``bookmark_interval`` seconds a BOOKMARK event whose object
  is an otherwise empty Node (``kind`` Node, only ``metadata.resourceVersion`` set, as Go renders
  a zero-valued Node). Its resourceVersion is the newest in the cluster once every change
  before it has been sent, so it may be newer than any node event (leases move it too). The
  real server sends them about once a minute.
- ``timeoutSeconds=S``: the stream ends cleanly (final chunk) after S seconds; without it, after
  the server's default. The real server picks 30 to 60 minutes at random.
- A watch that falls behind a history limit while streaming gets an ERROR 410 event and ends.

Fault injection reaches open watches through :class:`WatchHub`: drop them all (the connection
closes mid-body, no final chunk) or send them all an ERROR event (then they end).

- ``labelSelector``: only matching nodes; a node whose change makes it stop matching comes as
  DELETED (carrying its new state), one that starts matching as ADDED, as the real server does.

Not modelled: ``sendInitialEvents`` / the initial-events-end bookmark, field selectors
(400), watching a single node by name, the 3-second wait for a resourceVersion newer than the
cluster (the watch simply delivers the changes after it when they happen).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Literal

import msgspec

from ..http.messages import AbortStream, Reply, StreamingResponse
from . import status
from .history import Event
from .nodes import NodeRecord, bookmark
from .selectors import Selector
from .state import KubeState

ExpiredAnswer = Literal["event", "status"]
JSON = "application/json"
_HEADERS = (("Cache-Control", "no-cache, private"),)


class WatchHub:
    """The open node watches of one server. Use it on the server's event loop only."""

    def __init__(self) -> None:
        self._open: set[NodeWatch] = set()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, watch: NodeWatch) -> None:
        self._open.add(watch)

    def discard(self, watch: NodeWatch) -> None:
        self._open.discard(watch)

    def notify(self) -> None:
        """Something changed: every watch looks at the history again."""
        for watch in list(self._open):
            watch.wake()

    def drop_all(self) -> int:
        """Cut every open watch mid-body; returns how many."""
        watches = list(self._open)
        for watch in watches:
            watch.drop()
        return len(watches)

    def fail_all(self, error: status.StatusError) -> int:
        """Send every open watch an ERROR event with ``error``'s Status, then end it."""
        watches = list(self._open)
        for watch in watches:
            watch.fail(error)
        return len(watches)


def start(
    state: KubeState,
    hub: WatchHub,
    *,
    resource_version: str,
    bookmarks: bool,
    bookmark_interval: float,
    timeout: float,
    expired_answer: ExpiredAnswer,
    force_expired: bool = False,
    selector: Selector | None = None,
) -> Reply:
    """Open a watch, or answer why not. The caller holds the state lock."""
    current = state.current
    initial: list[NodeRecord] = []
    if resource_version in ("", "0"):
        position = current
        initial = [n for n in state.nodes() if selector is None or selector(n.labels)]
    elif resource_version.isdigit():
        position = int(resource_version)
    else:
        raise status.bad_request(f"invalid resource version: {resource_version!r}")
    horizon = state.history.horizon
    if force_expired or position < horizon:
        oldest = current if force_expired else horizon
        error = status.expired(f"too old resource version: {position} ({oldest})")
        if expired_answer == "status":
            return error.response()
        return StreamingResponse(200, _once(error_line(error)), JSON, _HEADERS)
    watch = NodeWatch(
        state,
        hub,
        position=position,
        initial=initial,
        bookmarks=bookmarks,
        bookmark_interval=bookmark_interval,
        timeout=timeout,
        selector=selector,
    )
    return StreamingResponse(200, watch, JSON, _HEADERS)


class NodeWatch:
    """One open watch: an async iterator of event lines, registered in the hub until closed."""

    def __init__(
        self,
        state: KubeState,
        hub: WatchHub,
        *,
        position: int,
        initial: list[NodeRecord],
        bookmarks: bool,
        bookmark_interval: float,
        timeout: float,
        selector: Selector | None = None,
    ) -> None:
        self._state = state
        self._selector = selector
        self._hub = hub
        self._position = position  # every node change up to here has been sent
        self._initial = initial
        self._bookmarks = bookmarks
        self._interval = bookmark_interval
        self._timeout = timeout
        self._wake = asyncio.Event()
        self._dropped = False
        self._error: status.StatusError | None = None
        self._events = self._run()
        hub.add(self)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._events)

    async def aclose(self) -> None:
        self._hub.discard(self)
        await self._events.aclose()

    def wake(self) -> None:
        self._wake.set()

    def drop(self) -> None:
        self._dropped = True
        self._wake.set()

    def fail(self, error: status.StatusError) -> None:
        self._error = error
        self._wake.set()

    async def _run(self) -> AsyncGenerator[bytes, None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timeout
        next_bookmark = loop.time() + self._interval if self._bookmarks else math.inf
        for record in self._initial:
            self._check_dropped()
            yield _event_line("ADDED", record.manifest())
        self._initial = []
        while True:
            self._wake.clear()  # before reading, so a change from now on wakes the wait below
            self._check_dropped()
            if self._error is not None:
                yield error_line(self._error)
                return
            try:
                with self._state.lock:
                    events = self._state.history.since(self._position, live=True)
                    newest = self._state.current
            except status.StatusError as exc:  # fell behind the history limit
                yield error_line(exc)
                return
            for event in events:
                self._check_dropped()
                kind = self._seen_as(event)
                if kind is not None:
                    yield _event_line(kind, event.node.manifest())
                self._position = event.rv
            now = loop.time()
            if now >= deadline:
                return
            if now >= next_bookmark:
                yield _event_line("BOOKMARK", bookmark(newest))
                self._position = max(self._position, newest)
                next_bookmark = now + self._interval
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(deadline, next_bookmark) - now):
                    await self._wake.wait()

    def _seen_as(self, event: Event) -> str | None:
        """The event as this watch's selector shows it (None: not shown), as the watch cache
        decides it from the object's previous and new state."""
        if self._selector is None:
            return event.type
        now = event.type != "DELETED" and self._selector(event.node.labels)
        before_record = event.previous if event.type != "DELETED" else event.node
        before = before_record is not None and self._selector(before_record.labels)
        if now:
            return "MODIFIED" if before else "ADDED"
        return "DELETED" if before else None

    def _check_dropped(self) -> None:
        if self._dropped:
            raise AbortStream


def error_line(error: status.StatusError) -> bytes:
    return _event_line("ERROR", msgspec.json.encode(error.status()))


def _event_line(kind: str, obj: bytes) -> bytes:
    return b'{"type":"' + kind.encode() + b'","object":' + obj + b"}\n"


async def _once(line: bytes) -> AsyncGenerator[bytes, None]:
    yield line
