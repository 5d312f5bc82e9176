"""``KubeApiServer``: the Kubernetes API stand-in on a real local socket.

It joins the pieces: :class:`.state.KubeState` (cluster, seeding, history), the API
(:mod:`.api`), open watches (:class:`.watch.WatchHub`), the socket layer and lifecycle shared
with the other stand-ins (:mod:`kaput_not_standins.http`), :class:`.faults.Faults` and
:class:`.requestlog.RequestLog`.
Per request: log it, refuse it during a "reset" outage, apply a ``before`` fault, let the API
answer, apply an ``after`` fault.

Use it ``async with KubeApiServer() as kube:`` in async tests, or ``with
KubeApiServer().run_in_thread() as kube:`` from synchronous code: the server then runs on its
own event loop in a daemon thread. The state, faults and log are safe to use from any thread;
calls that touch open connections (dropping watches, outages) are run on the server's loop and
return when done.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import time
from collections.abc import Callable
from typing import TypeVar

from ..http.messages import Outcome, Reply, Request, Response
from ..http.requestlog import answered
from ..http.standin import StandInServer
from . import routes, status
from .api import KubeApi
from .faults import FaultKind, FaultRule, Faults, Outage, ServerControls
from .requestlog import RequestLog
from .state import KubeState
from .watch import ExpiredAnswer, WatchHub

T = TypeVar("T")
_CROSS_THREAD_TIMEOUT = 10.0


def kubeconfig_text(server: str) -> str:
    """A kubeconfig for the stand-in at `server` (its URL), started without `token`: it takes
    the bearer token written here as it would take any."""
    return (
        "apiVersion: v1\nkind: Config\n"
        f'clusters: [{{name: standin, cluster: {{server: "{server}"}}}}]\n'
        "users: [{name: user, user: {token: any-token}}]\n"
        "contexts: [{name: standin, context: {cluster: standin, user: user}}]\n"
        "current-context: standin\n"
    )


class KubeApiServer(StandInServer):
    _what = "Kubernetes API stand-in"
    _thread_name = "kube-api-stand-in"

    def __init__(
        self,
        *,
        token: str | None = None,
        bookmark_interval: float = 1.0,
        default_watch_timeout: float = 1800.0,
        expired_answer: ExpiredAnswer = "event",
        history_limit: int | None = None,
        clock: Callable[[], float] = time.time,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """A stopped stand-in with an empty cluster (the usual namespaces, no nodes).

        ``token``: the bearer token every request must carry; None accepts any request.
        ``bookmark_interval``: seconds between BOOKMARK events (the real server: about 60).
        ``default_watch_timeout``: seconds a watch lasts without ``timeoutSeconds``.
        ``expired_answer``: how a watch from a too-old resourceVersion is told: ``"event"``
        (200 and one ERROR event, as the real server does) or ``"status"`` (HTTP 410).
        ``history_limit``: node changes kept for watches and continued lists; None keeps all
        until ``state.compact()``.
        ``clock``: stamps object times and the request log, not socket timing.
        """
        super().__init__(host=host, port=port)
        self.state = KubeState(clock=clock, history_limit=history_limit)
        self.log = RequestLog(clock=clock)
        self._hub = WatchHub()
        self.faults = Faults(
            ServerControls(
                drop_watches=lambda: self._on_loop(self._hub.drop_all),
                fail_watches=lambda error: self._on_loop(lambda: self._hub.fail_all(error)),
                set_outage=self._set_outage,
            )
        )
        self._expired_answer = expired_answer
        self._api = KubeApi(
            self.state,
            self._hub,
            token=token,
            bookmark_interval=bookmark_interval,
            default_watch_timeout=default_watch_timeout,
            expired_answer=expired_answer,
        )
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def open_watches(self) -> int:
        """Watch streams open right now."""
        return self._on_loop(lambda: len(self._hub))

    async def start(self) -> None:
        await super().start()
        self._loop = asyncio.get_running_loop()
        self.state.subscribe(self._on_change)
        if self.faults.outage == "refuse":  # an outage set before start
            self._http.stop_listening()

    async def stop(self) -> None:
        """Stop accepting, cut every connection (watches and hung requests too), wait for them."""
        if self._loop is None:
            return
        self.state.unsubscribe(self._on_change)
        await super().stop()
        self._loop = None

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, request: Request) -> Reply:
        resolved = routes.resolve(request)
        query = {name: values[0] for name, values in request.query.items() if values}
        entry = self.log.record(request.method, request.path, resolved.key, query)
        if self.faults.outage == "reset":
            return Outcome.RESET
        before = self.faults.take(resolved.key, "before")
        expire: ExpiredAnswer | None = None
        if before is not None and before.kind is FaultKind.EXPIRE:
            expire = before.answer or self._expired_answer
        elif before is not None:
            return answered(entry, _strike(before, None))
        reply = self._api.respond(request, resolved, expire=expire)
        if isinstance(reply, Response):
            after = self.faults.take(resolved.key, "after")
            if after is not None and after.kind is not FaultKind.EXPIRE:
                reply = _strike(after, reply)
        return answered(entry, reply)

    def _on_change(self) -> None:
        """A node changed (called under the state lock, from any thread): wake the watches."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us
                loop.call_soon_threadsafe(self._hub.notify)

    def _set_outage(self, outage: Outage | None) -> None:
        def apply() -> None:
            if outage == "refuse":
                self._http.stop_listening()
            else:
                self._http.listen()
            if outage is not None:
                self._http.abort_connections()

        if self._loop is not None:
            self._on_loop(apply)

    def _on_loop(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the server's loop (directly if we are on it) and return its result."""
        loop = self._loop
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            return call()
        done: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                done.set_result(call())
            except BaseException as exc:  # handed to the calling thread
                done.set_exception(exc)

        loop.call_soon_threadsafe(run)
        return done.result(_CROSS_THREAD_TIMEOUT)


def _strike(rule: FaultRule, real: Response | None) -> Reply:
    if rule.kind is FaultKind.REWRITE and rule.change is not None and real is not None:
        body = json.dumps(rule.change(json.loads(real.body))).encode()
        return dataclasses.replace(real, body=body)
    if rule.kind is FaultKind.HANG:
        return Outcome.HANG
    if rule.kind is FaultKind.RESET:
        return Outcome.RESET
    return status.for_code(rule.code, rule.message).response()
