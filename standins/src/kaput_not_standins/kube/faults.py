"""Fault injection: failing, hanging and reset requests, broken watches, an unreachable server.

Per-request rules name a route key (``"PUT /apis/coordination.k8s.io/v1/namespaces/{namespace}
/leases/{name}"``, see :mod:`.routes`; shell wildcards work: ``"*"``, ``"GET /api/v1/nodes*"``
covers lists and watches), how many matching requests they affect (``times``, None = every one)
and when they strike:

- ``before``: the request is not processed; the fault is the whole answer.
- ``after``: the request is processed (a Lease is written), then the answer is replaced: the
  client cannot know the outcome. Watches are streams, so only ``before`` applies to them.

==============================  =================================================================
``fail(route, code)``           that status with a Kubernetes Status body (429: ``Retry-After``)
``hang(route)``                 no answer until the client gives up or the server stops
``reset(route)``                the TCP connection is aborted (RST), no response
``expire_next_watch()``         the next watch start answers 410 Expired (either form)
``rewrite(route, change)``      the real JSON answer, passed through ``change`` (e.g. a node list
                                with no items: a broken or lying API server); ``after`` only
==============================  =================================================================

Server-wide, immediately (thread-safe; they run on the server's loop):

- ``drop_watches()``: every open watch stream is cut mid-body, without the final chunk.
- ``inject_watch_error(...)``: every open watch gets one ERROR event with a Status, then ends.
- ``set_reachable(False)``: an API server outage. ``how="refuse"`` closes the listening socket
  (connection refused), ``how="reset"`` accepts and resets every request; either way every
  open connection, watches included, is cut. ``set_reachable(True)`` serves again on the same
  port.

Rules are consumed in the order they were added; per request at most one ``before`` and one
``after`` rule fire (the shared rule book, :mod:`kaput_not_standins.http.faultbook`).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from ..http.faultbook import FaultBook, RouteRule, When
from . import status
from .routes import WATCH_NODES
from .watch import ExpiredAnswer

Outage = Literal["refuse", "reset"]


class FaultKind(enum.Enum):
    STATUS = "status"
    HANG = "hang"
    RESET = "reset"
    EXPIRE = "expire"
    REWRITE = "rewrite"


#: Changes a decoded JSON answer into the one the client gets.
Rewrite = Callable[[Any], Any]


@dataclass
class FaultRule(RouteRule[FaultKind]):
    code: int = 500  # STATUS only
    message: str | None = None  # STATUS only; None = the server's usual wording
    answer: ExpiredAnswer | None = None  # EXPIRE only; None = the server's configured form
    change: Rewrite | None = None  # REWRITE only


@dataclass(frozen=True)
class ServerControls:
    """What the faults need from the server; each runs on the server's loop and returns there."""

    drop_watches: Callable[[], int]
    fail_watches: Callable[[status.StatusError], int]
    set_outage: Callable[[Outage | None], None]


class Faults(FaultBook[FaultRule]):
    """The rule book (``add``, ``clear``, ``pending``, ``take``) plus the server-wide faults.

    :meth:`clear` drops rules only; an outage lasts until ``set_reachable(True)``.
    """

    def __init__(self, controls: ServerControls) -> None:
        super().__init__()
        self._controls = controls
        self._outage_lock = threading.Lock()
        self._outage: Outage | None = None

    # -- per-request rules -------------------------------------------------------------------

    def fail(
        self,
        route: str,
        code: int = 500,
        message: str | None = None,
        *,
        times: int | None = 1,
        when: When = "before",
    ) -> FaultRule:
        """Answer ``code`` (500, 503, 429...) with a Status body instead of the real answer."""
        return self.add(FaultRule(route, FaultKind.STATUS, when, times, code=code, message=message))

    def hang(self, route: str, *, times: int | None = None, when: When = "before") -> FaultRule:
        """Never answer (by default every matching request, until :meth:`clear`)."""
        return self.add(FaultRule(route, FaultKind.HANG, when, times))

    def reset(self, route: str, *, times: int | None = 1, when: When = "before") -> FaultRule:
        return self.add(FaultRule(route, FaultKind.RESET, when, times))

    def rewrite(self, route: str, change: Rewrite, *, times: int | None = 1) -> FaultRule:
        """The real answer, processed, then its JSON body passed through ``change``."""
        return self.add(FaultRule(route, FaultKind.REWRITE, "after", times, change=change))

    def expire_next_watch(
        self, *, times: int = 1, answer: ExpiredAnswer | None = None
    ) -> FaultRule:
        """The next ``times`` watch starts answer 410 Expired, as if their version were compacted.

        ``answer`` picks the form: ``"event"`` (200, one ERROR event) or ``"status"`` (HTTP 410).
        """
        return self.add(FaultRule(WATCH_NODES, FaultKind.EXPIRE, "before", times, answer=answer))

    # -- server-wide, now ---------------------------------------------------------------------

    def drop_watches(self) -> int:
        """Cut every open watch stream now (no final chunk); returns how many were open."""
        return self._controls.drop_watches()

    def inject_watch_error(
        self, code: int = 410, reason: str | None = None, message: str | None = None
    ) -> int:
        """Send every open watch an ERROR event with a Status, then end it; returns how many.

        The default is the 410 a watch gets when etcd compacts past it.
        """
        if code == 410:
            error = status.expired(
                message or "The resourceVersion for the provided watch is too old."
            )
        else:
            error = status.for_code(code, message)
        if reason is not None:
            error.reason = reason
        return self._controls.fail_watches(error)

    @property
    def reachable(self) -> bool:
        with self._outage_lock:
            return self._outage is None

    @property
    def outage(self) -> Outage | None:
        """How the server is unreachable, or None."""
        with self._outage_lock:
            return self._outage

    def set_reachable(self, reachable: bool, *, how: Outage = "refuse") -> None:
        """Start (False) or end (True) an API server outage; see the module docstring."""
        with self._outage_lock:
            self._outage = None if reachable else how
        self._controls.set_outage(None if reachable else how)
