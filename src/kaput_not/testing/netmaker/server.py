"""A small HTTP/1.1 server on asyncio streams and h11, with the control fault injection needs.

Why not a framework: tests need real sockets on an ephemeral port and replies no framework
gives: abort the connection with an RST, never answer, send a damaged body. h11 does the
protocol bookkeeping (framing, keep-alive, pipelining via ``start_next_cycle``); this module
only moves bytes and calls one async handler per request.

Each connection runs in its own task, so a hanging or slow reply holds up only its own
connection. :meth:`HttpServer.stop` stops accepting, cancels every connection task (hung ones
included), aborts their transports and waits for them, so no task or socket outlives it.

Not modelled: TLS, HTTP/2, ``Expect: 100-continue``, absolute-form request targets, request
size limits (Netmaker has none), idle timeouts (Netmaker sets no server timeouts).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import socket
import struct
import urllib.parse
from collections.abc import Awaitable, Callable

import h11

from .wire import Outcome, Reply, Request, Response

RequestHandler = Callable[[Request], Awaitable[Reply]]
_READ_SIZE = 65536
_BACKLOG = 1024  # bursts of concurrent clients in tests must not hit SYN retries


class HttpServer:
    def __init__(self, handler: RequestHandler, *, host: str, port: int) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.connections_accepted = 0

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the server is already running")
        self._server = await asyncio.start_server(
            self._on_connection, self._host, self._port, backlog=_BACKLOG
        )

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if self._server is None:  # accepted just as stop() began
            writer.transport.abort()
            return
        self._tasks.add(task)
        self._writers.add(writer)
        self.connections_accepted += 1
        try:
            await self._serve(h11.Connection(h11.SERVER), reader, writer)
        except (ConnectionError, h11.ProtocolError):
            pass  # the client went away or spoke broken HTTP: nothing left to answer
        except asyncio.CancelledError:
            # stop() cancels open connections. asyncio's stream callback calls
            # task.exception() on a handler that ends cancelled, which logs an ERROR, so a
            # handler cancelled by stop() ends quietly; any other cancellation propagates.
            if self._server is not None:
                raise
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _serve(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        while True:
            try:
                request = await _receive(conn, reader)
            except h11.RemoteProtocolError as exc:
                if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
                    status = exc.error_status_hint
                    await _send(conn, writer, "GET", Response(status, b"", "text/plain"))
                return
            if request is None:
                return
            reply = await self._handler(request)
            if reply is Outcome.RESET:
                _reset(writer)
                return
            if reply is Outcome.HANG:
                await _wait_for_close(reader)
                return
            await _send(conn, writer, request.method, reply)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()


async def _receive(conn: h11.Connection, reader: asyncio.StreamReader) -> Request | None:
    """The next complete request, or None when the client closed the connection between requests."""
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_SIZE))
        elif isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            return _request(head, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            return None


def _request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("latin-1")
    raw_path, _, raw_query = target.partition("?")
    headers: dict[str, str] = {}
    for name, value in head.headers:
        # Go's Header.Get returns the first value of a repeated header.
        headers.setdefault(name.decode("latin-1"), value.decode("latin-1"))
    return Request(
        method=head.method.decode("ascii"),
        path=urllib.parse.unquote(raw_path),
        query=urllib.parse.parse_qs(raw_query, keep_blank_values=True),
        headers=headers,
        body=body,
    )


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, method: str, response: Response
) -> None:
    headers = [
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Content-Length", str(len(response.body))),
    ]
    if response.content_type is not None:
        headers.append(("Content-Type", response.content_type))
    reason = _reason(response.status)
    head = h11.Response(status_code=response.status, headers=headers, reason=reason)
    writer.write(conn.send(head))
    if response.body and method != "HEAD":
        writer.write(conn.send(h11.Data(data=response.body)))
    writer.write(conn.send(h11.EndOfMessage()))
    await writer.drain()


def _reason(status: int) -> bytes:
    try:
        return http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        return b""


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with an RST rather than a FIN, so the client sees "connection reset by peer"."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _wait_for_close(reader: asyncio.StreamReader) -> None:
    """Never answer; return once the client hangs up (stop() cancels us before that otherwise)."""
    while await reader.read(_READ_SIZE):
        pass
