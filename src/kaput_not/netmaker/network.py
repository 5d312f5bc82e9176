"""The Netmaker client's network layer: httpcore2 on a plain asyncio protocol, not on anyio.

httpx2 runs its connections through anyio by default. Every read and write then pays for a
cancel scope, an extra trip round the event loop (anyio's checkpoints) and typed-attribute
lookups: on a first sync of 10,000 nodes (20,000 writes), this backend took the controller from
0.71 to 0.61 ms of CPU per write (single runs, `bench/scale.py`). httpcore2 accepts any
`AsyncNetworkBackend`; this one keeps the same contract (bytes in, bytes out, `ReadTimeout`/
`WriteTimeout`/`ConnectTimeout`, `ReadError`/`WriteError`/`ConnectError`, `is_readable` for
the pool's stale-connection check) on one `asyncio.Protocol` per connection, with a timer per
wait instead of a cancel scope.

What it does not do: HTTP/2 (httpx2's default is HTTP/1.1 only, as here) and trio.
"""

# The `timeout` parameters are httpcore2's backend interface, not ours to change.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import Iterable
from typing import Any

import httpcore2
import httpx2

#: httpx2's own defaults: more keep-alive connections than writes ever run at once.
DEFAULT_LIMITS = httpx2.Limits(max_connections=100, max_keepalive_connections=20)
#: Stop reading from the socket while this much is buffered unread; resume below the low mark.
_HIGH_WATER = 1 << 20
_LOW_WATER = 1 << 18


class AsyncioTransport(httpx2.AsyncHTTPTransport):
    """httpx2's own transport (request, response and error mapping) on `AsyncioBackend`.

    httpx2 has no option for the backend, so this builds the pool httpx2 would build (HTTP/1.1,
    the same TLS context and limits) with ours; the rest of the class uses only that pool.
    """

    def __init__(
        self, verify: ssl.SSLContext | bool, limits: httpx2.Limits = DEFAULT_LIMITS
    ) -> None:
        # No super().__init__(): it would build (and load certificates for) an anyio pool.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=AsyncioBackend(),
        )

    @property
    def pool(self) -> httpcore2.AsyncConnectionPool:
        """The pool itself, for callers that send httpcore2 requests without httpx2's client."""
        return self._pool


class AsyncioBackend(httpcore2.AsyncNetworkBackend):
    """TCP connections as `_Stream`s on the running asyncio loop (the pool is built without a
    Unix socket path, so the base class's refusal of `connect_unix_socket` stands)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        local = (local_address, 0) if local_address else None
        try:
            async with asyncio.timeout(timeout):
                made, protocol = await loop.create_connection(
                    lambda: _Protocol(loop), host, port, local_addr=local
                )
        except TimeoutError as exc:
            raise httpcore2.ConnectTimeout(f"no connection to {host}:{port} in {timeout}s") from exc
        except OSError as exc:
            raise httpcore2.ConnectError(str(exc)) from exc
        raw = made.get_extra_info("socket")
        for option in socket_options or ():
            raw.setsockopt(*option)
        return _Stream(protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one waiting reader or writer."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.closed = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.reader: asyncio.Future[None] | None = None
        self.writable: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > _HIGH_WATER and not self.reading_paused and self.transport:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False  # let the transport close: a half-closed HTTP/1.1 connection is done

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.error = exc
        self._wake_reader()
        self.resume_writing()

    def pause_writing(self) -> None:
        if self.writable is None:
            self.writable = self.loop.create_future()

    def resume_writing(self) -> None:
        waiter, self.writable = self.writable, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake_reader(self) -> None:
        waiter, self.reader = self.reader, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Stream(httpcore2.AsyncNetworkStream):
    __slots__ = ("_protocol",)

    def __init__(self, protocol: _Protocol) -> None:
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        p = self._protocol
        while not p.chunks:
            if p.eof or (p.closed and p.error is None):
                return b""
            if p.closed:
                raise httpcore2.ReadError(str(p.error) or type(p.error).__name__)
            p.reader = p.loop.create_future()
            await _wait(p.loop, p.reader, timeout, httpcore2.ReadTimeout)
        chunk = p.chunks.popleft()
        if len(chunk) > max_bytes:
            p.chunks.appendleft(chunk[max_bytes:])
            chunk = chunk[:max_bytes]
        p.buffered -= len(chunk)
        if p.reading_paused and p.buffered <= _LOW_WATER and p.transport is not None:
            p.transport.resume_reading()
            p.reading_paused = False
        return chunk

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        p = self._protocol
        if p.closed or p.transport is None or p.transport.is_closing():
            raise httpcore2.WriteError("the connection is closed")
        p.transport.write(buffer)
        if p.writable is not None:
            await _wait(p.loop, p.writable, timeout, httpcore2.WriteTimeout)
            if p.closed:
                raise httpcore2.WriteError(str(p.error or "the connection closed while writing"))

    async def aclose(self) -> None:
        # abort, not close: close would wait for unsent bytes a stalled peer never takes.
        transport = self._protocol.transport
        if transport is not None:
            transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        p = self._protocol
        assert p.transport is not None
        try:
            # Our own timeout: asyncio's handshake timeout ends in ConnectionAbortedError, which
            # would read as a TLS failure (with the certificate hint), not as a timeout.
            async with asyncio.timeout(timeout):
                secured = await p.loop.start_tls(
                    p.transport, p, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError as exc:
            await self.aclose()
            raise httpcore2.ConnectTimeout(f"no TLS handshake in {timeout}s") from exc
        except OSError as exc:  # ssl.SSLError is an OSError
            await self.aclose()
            raise httpcore2.ConnectError(str(exc)) from exc
        if secured is None:
            raise httpcore2.ConnectError("the connection closed during the TLS handshake")
        p.transport = secured
        return self

    def get_extra_info(self, info: str) -> Any:
        p = self._protocol
        if info == "is_readable":
            # An idle connection with anything to read (its close, or bytes nobody asked
            # for) cannot carry the next request: the pool drops it.
            return bool(p.chunks) or p.eof or p.closed
        if p.transport is None:
            return None
        key = {"client_addr": "sockname", "server_addr": "peername"}.get(info, info)
        if key in ("ssl_object", "sockname", "peername", "socket"):
            return p.transport.get_extra_info(key)
        return None


async def _wait(
    loop: asyncio.AbstractEventLoop,
    waiter: asyncio.Future[None],
    timeout: float | None,
    expired: type[Exception],
) -> None:
    """Wait for `waiter`; past `timeout` seconds raise `expired` instead."""
    if timeout is None:
        await waiter
        return
    timer = loop.call_later(timeout, _expire, waiter, expired, timeout)
    try:
        await waiter
    finally:
        timer.cancel()


def _expire(waiter: asyncio.Future[None], expired: type[Exception], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(expired(f"no progress in {timeout}s"))
