"""How far one request got, from httpcore2's trace events: when the deadline passes, whether
anything was sent decides between Unreachable and OutcomeUnknown, and the step it was in names
what timed out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: What a request was doing when the deadline passed, by httpcore2's trace event.
_PHASES = {
    "connect_tcp": "connecting",
    "start_tls": "in the TLS handshake",
    "send_request_headers": "sending the request",
    "send_request_body": "sending the request",
    "receive_response_headers": "waiting for the answer",
    "receive_response_body": "reading the answer's body",
}
_READING = _PHASES["receive_response_body"]
#: The step of each `.started` event of httpcore2's layers ("<layer>.<step>.started"), looked
#: up whole: the trace callback runs several times a request, so it must not parse its event.
_STARTED = {
    f"{layer}.{step}.started": step
    for layer in ("connection", "http11", "http2", "proxy", "socks")
    for step in _PHASES
}


class Progress:
    """How far one request got (`extensions["trace"]` is its `trace`).

    `traced` says the events can be trusted: a transport that sends none (a test's mock) leaves
    it False, and a request whose progress is unknown counts as sent.

    Given the request's `extensions`, it takes itself out of them once the answer's headers
    are awaited: every later step is the answer's (`reading()` says when its body is read), and
    the events of its body and its close were four of the ten a request."""

    __slots__ = ("extensions", "phase", "sent", "traced")

    def __init__(self, *, traced: bool) -> None:
        self.phase = "waiting for a free connection"
        self.sent = False
        self.traced = traced
        self.extensions: dict[str, Any] | None = None

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        self.traced = True
        step = _STARTED.get(event)
        if step is None:
            if not event.endswith(".started"):
                return  # `.complete` or `.failed`: the step's start said all
            step = event.partition(".")[2].rpartition(".")[0]  # another layer's, if any
            if step not in _PHASES:
                return
        self.phase = _PHASES[step]
        if step == "send_request_headers":
            self.sent = True
        elif step == "receive_response_headers" and self.extensions is not None:
            self.extensions.pop("trace", None)  # this step's Trace keeps it to its end

    def reading(self) -> None:
        """The answer's headers are in: its body is read from now on."""
        self.phase = _READING
