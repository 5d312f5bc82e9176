"""Fault injection: make chosen requests slow, fail, hang, or come back damaged.

A rule names a route key (``"PUT /api/v1/egress"``, the same keys as the request log; shell-style
wildcards such as ``"*"`` or ``"GET *"`` work, and ``"*"`` includes logins), how many matching
requests it affects (``times``, None = every one), and when it strikes:

- ``before``: the request is not processed; the fault is the whole answer.
- ``after``: the request is processed and the state changed, then the response is replaced.
  The client cannot know the outcome: the case that forces "outcome unknown" handling.

Kinds, as a client sees them:

========================  ==========================================================
``latency(seconds)``      the normal answer, late (before: delayed, then processed)
``status(code, message)`` Netmaker's JSON error envelope with that status
``timeout``               nothing, until the client gives up or the emulator stops
``reset``                 the TCP connection is aborted (RST), no response
``html_502``              HTTP 502 with an nginx-style HTML page (a proxy in front)
``code_mismatch``         HTTP 200 whose envelope says ``"Code": 500``
``truncated_json``        HTTP 200, ``application/json``, body cut in the middle
``empty_body``            HTTP 200, ``application/json``, empty (GET /api/nodes quirk, 3)
``rewrite(change)``       the real answer with its JSON passed through ``change`` (a
                          list emptied, a field dropped: a broken server); ``after`` only
``trickle(seconds)``      the real answer, its head at once and its body one byte every
                          ``seconds`` (a stalled proxy or link); ``after`` only
========================  ==========================================================

``revoke_tokens()`` invalidates every token issued so far (the server's JWT secret changes, as on
a fresh database); a new login works. Rules are consumed in the order they were added; per
request at most one ``before`` rule and one ``after`` rule fire. Thread-safe, so a test thread may
add rules while the emulator serves on another (the shared rule book,
:mod:`kaput_not_standins.http.faultbook`).
"""

from __future__ import annotations

import asyncio
import enum
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from ..http.faultbook import FaultBook, RouteRule, When
from ..http.messages import Outcome, Reply, Response, StreamingResponse
from . import envelope

_NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
# What a "before" truncation cuts when there is no real response to cut.
_PLACEHOLDER = envelope.success("fault injected", None)


class FaultKind(enum.Enum):
    LATENCY = "latency"
    STATUS = "status"
    TIMEOUT = "timeout"
    RESET = "reset"
    HTML_502 = "html_502"
    CODE_MISMATCH = "code_mismatch"
    TRUNCATED_JSON = "truncated_json"
    EMPTY_BODY = "empty_body"
    REWRITE = "rewrite"
    TRICKLE = "trickle"


#: Changes a decoded JSON answer into the one the client gets.
Rewrite = Callable[[Any], Any]


@dataclass
class FaultRule(RouteRule[FaultKind]):
    seconds: float = 0.0  # LATENCY, and TRICKLE's pause between bytes
    status: int = 500  # STATUS only
    message: str = "fault injected"  # STATUS and CODE_MISMATCH
    change: Rewrite | None = None  # REWRITE only


class Faults(FaultBook[FaultRule]):
    """The rule book (``add``, ``clear``, ``pending``, ``take``), one helper per kind."""

    def __init__(self, *, revoke_tokens: Callable[[], None]) -> None:
        super().__init__()
        self._revoke = revoke_tokens

    def latency(
        self, route: str, seconds: float, *, times: int | None = 1, when: When = "before"
    ) -> FaultRule:
        return self.add(FaultRule(route, FaultKind.LATENCY, when, times, seconds=seconds))

    def status(
        self,
        route: str,
        code: int,
        message: str = "fault injected",
        *,
        times: int | None = 1,
        when: When = "before",
    ) -> FaultRule:
        return self.add(
            FaultRule(route, FaultKind.STATUS, when, times, status=code, message=message)
        )

    def timeout(self, route: str, *, times: int | None = 1, when: When = "before") -> FaultRule:
        return self.add(FaultRule(route, FaultKind.TIMEOUT, when, times))

    def reset(self, route: str, *, times: int | None = 1, when: When = "before") -> FaultRule:
        return self.add(FaultRule(route, FaultKind.RESET, when, times))

    def html_502(self, route: str, *, times: int | None = 1, when: When = "before") -> FaultRule:
        return self.add(FaultRule(route, FaultKind.HTML_502, when, times))

    def code_mismatch(
        self,
        route: str,
        message: str = "fault injected",
        *,
        times: int | None = 1,
        when: When = "before",
    ) -> FaultRule:
        return self.add(FaultRule(route, FaultKind.CODE_MISMATCH, when, times, message=message))

    def truncated_json(
        self, route: str, *, times: int | None = 1, when: When = "before"
    ) -> FaultRule:
        return self.add(FaultRule(route, FaultKind.TRUNCATED_JSON, when, times))

    def empty_body(self, route: str, *, times: int | None = 1, when: When = "before") -> FaultRule:
        return self.add(FaultRule(route, FaultKind.EMPTY_BODY, when, times))

    def rewrite(self, route: str, change: Rewrite, *, times: int | None = 1) -> FaultRule:
        """Process the request, then pass the answer's JSON body through ``change``."""
        return self.add(FaultRule(route, FaultKind.REWRITE, "after", times, change=change))

    def trickle(self, route: str, seconds: float, *, times: int | None = 1) -> FaultRule:
        """Process the request, then send the answer's body one byte every ``seconds``."""
        return self.add(FaultRule(route, FaultKind.TRICKLE, "after", times, seconds=seconds))

    def revoke_tokens(self) -> None:
        """Every token issued so far gets 401 ``unauthorized`` from now on; a new login works."""
        self._revoke()


async def strike(rule: FaultRule, real: Response | None) -> Reply | None:
    """What the client gets for ``rule``; ``real`` is the processed answer for ``after`` rules.

    None means "carry on as normal" (only latency before processing).
    """
    if rule.kind is FaultKind.LATENCY:
        await asyncio.sleep(rule.seconds)
        return real
    if rule.kind is FaultKind.TIMEOUT:
        return Outcome.HANG
    if rule.kind is FaultKind.RESET:
        return Outcome.RESET
    if rule.kind is FaultKind.TRICKLE and real is not None:
        chunks = _one_byte_at_a_time(real.body, rule.seconds)
        return StreamingResponse(real.status, chunks, real.content_type, real.headers)
    return _damaged(rule, real)


async def _one_byte_at_a_time(body: bytes, seconds: float) -> AsyncIterator[bytes]:
    for i in range(len(body)):
        await asyncio.sleep(seconds)
        yield body[i : i + 1]


def _damaged(rule: FaultRule, real: Response | None) -> Response:
    if rule.kind is FaultKind.STATUS:
        return envelope.error(rule.status, rule.message)
    if rule.kind is FaultKind.HTML_502:
        return Response(502, _NGINX_502, "text/html")
    if rule.kind is FaultKind.CODE_MISMATCH:
        body = envelope.go_json({"Code": 500, "Message": rule.message, "Response": None})
        return Response(200, body, envelope.JSON)
    if rule.kind is FaultKind.REWRITE and rule.change is not None and real is not None:
        changed = envelope.go_json(rule.change(json.loads(real.body))) + b"\n"
        return Response(real.status, changed, real.content_type)
    if rule.kind is FaultKind.TRUNCATED_JSON:
        source = real if real is not None and real.body else _PLACEHOLDER
        return Response(200, source.body[: len(source.body) // 2], envelope.JSON)
    return envelope.empty_json()
