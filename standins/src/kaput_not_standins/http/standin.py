"""``StandInServer``: the lifecycle every stand-in shares around its own request handler.

A stand-in owns one :class:`.server.HttpServer` and answers each request in :meth:`_handle`
(log it, apply a ``before`` fault, let its API answer, apply an ``after`` fault: each stand-in
spells that out itself, as its faults differ). This base gives them the same outside:
:meth:`start` and :meth:`stop`, ``async with`` in async tests, :meth:`run_in_thread` for
synchronous callers (a CLI demo, a benchmark), and :attr:`base_url` once started. A stand-in
that needs more on start or stop (subscriptions, an outage set early) extends those two methods.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from types import TracebackType
from typing import ClassVar, Self

from .messages import Reply, Request
from .server import HttpServer
from .thread import serving_in_thread


class StandInServer(abc.ABC):
    _what: ClassVar[str]  # how errors name the stand-in: "the <_what> is not running"
    _thread_name: ClassVar[str]  # the daemon thread of run_in_thread()

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._http = HttpServer(self._handle, host=host, port=port)
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._base_url is None:
            raise RuntimeError(f"the {self._what} is not running")
        return self._base_url

    @property
    def connections_accepted(self) -> int:
        """TCP connections accepted since start: shows whether a client reuses connections."""
        return self._http.connections_accepted

    async def start(self) -> None:
        await self._http.start()
        self._base_url = f"http://{self._authority()}"

    async def stop(self) -> None:
        """Stop accepting, cut every connection (hung requests and streams too), wait for them."""
        await self._http.stop()
        self._base_url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @contextlib.contextmanager
    def run_in_thread(self) -> Iterator[Self]:
        """Serve on a private event loop in a daemon thread for the duration of the block."""
        with serving_in_thread(self.start, self.stop, name=self._thread_name):
            yield self

    def _authority(self) -> str:
        """``host:port`` of the running server, an IPv6 host in brackets."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{self._http.port}"

    @abc.abstractmethod
    async def _handle(self, request: Request) -> Reply:
        """The whole answer to one request, faults included."""
