"""``NetmakerEmulator``: the emulated Netmaker v1.5.1 CE server on a real local socket.

It joins the pieces: :class:`.state.NetmakerState` (data, seeding, domain rules), the API
(:mod:`.app`), the socket layer and lifecycle shared with the other stand-ins
(:mod:`kaput_not_standins.http`),
:class:`.faults.Faults` and :class:`.requestlog.RequestLog`. Per request: log it, apply a
``before`` fault, let the API answer, apply an ``after`` fault.

Use it ``async with NetmakerEmulator() as nm:`` in async tests, or ``with
NetmakerEmulator().run_in_thread() as nm:`` from synchronous code (a CLI demo, a benchmark):
the server then runs on its own event loop in a daemon thread, and the state, faults and log
stay safe to use from the calling thread.

What it is not: see the docstrings of :mod:`.state`, :mod:`.egress`, :mod:`.auth` and
:mod:`kaput_not_standins.http.server`. In short: CE only (no EE roles, no 403, one routing node),
no ACL side effects, no MQ, no zombie manager, synchronous node creation and egress purge where
the real server uses goroutines, and only the endpoints kaput-not and its test harness use
(others answer 404).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..http.messages import Reply, Request
from ..http.requestlog import answered
from ..http.standin import StandInServer
from . import envelope
from .app import NetmakerApi
from .faults import Faults, strike
from .requestlog import RequestLog
from .state import NetmakerState


class NetmakerEmulator(StandInServer):
    _what = "emulator"
    _thread_name = "netmaker-emulator"

    def __init__(
        self,
        *,
        username: str | None = "admin",
        password: str = "admin-pass",  # noqa: S107 - a throwaway test credential
        master_key: str | None = None,
        jwt_validity_seconds: int = 43200,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """``username=None`` starts like a fresh server, without any user (see createsuperadmin).

        ``jwt_validity_seconds`` plays ``JWT_VALIDITY_DURATION``: both token lifetimes are
        ``jwt_validity_seconds // 60`` minutes, so values under 60 give tokens born expired.
        ``clock`` drives token times, timestamps and the request log, not socket timing.
        """
        super().__init__(host=host, port=port)
        self.state = NetmakerState(clock=clock, jwt_validity_minutes=jwt_validity_seconds // 60)
        if username is not None:
            self.state.add_user(username, password, superadmin=True)
        self.faults = Faults(revoke_tokens=self.state.rotate_jwt_secret)
        self.log = RequestLog(clock=clock)
        self._api = NetmakerApi(self.state, master_key=master_key)

    async def start(self) -> None:
        await super().start()
        self.state.server = self._authority()  # named in enrollment tokens and JWTs

    async def _handle(self, request: Request) -> Reply:
        resolved = self._api.resolve(request)
        entry = self.log.record(
            request.method, request.path, resolved.key, request.header("user-agent") or ""
        )
        before = self.faults.take(resolved.key, "before")
        early = await strike(before, None) if before is not None else None
        if early is not None:
            return answered(entry, early)
        response = self._api.respond(resolved)
        after = self.faults.take(resolved.key, "after")
        if after is None:
            return answered(entry, response)
        whole = await envelope.collected(response)  # a fault may rewrite or cut the body
        replaced = await strike(after, whole)
        return answered(entry, whole if replaced is None else replaced)
