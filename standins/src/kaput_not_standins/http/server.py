"""A small HTTP/1.1 server on asyncio streams and h11, with the control fault injection needs.

Why not a framework: tests need real sockets on an ephemeral port and replies no framework
gives: abort the connection with an RST, never answer, cut a stream in the middle, stop
listening and listen again on the same port. h11 does the protocol bookkeeping (framing,
keep-alive, chunked encoding, pipelining via ``start_next_cycle``); this module only moves bytes
and calls one async handler per request.

Each connection runs in its own task, so a hanging, slow or streaming reply holds up only its
own connection. While a :class:`~.messages.StreamingResponse` is being sent, the connection is
also read, so a client that hangs up ends the stream at once rather than at the next write.

Lifecycle: :meth:`HttpServer.stop` stops accepting, cancels every connection task (hung
requests and open streams included), aborts their transports and waits for them, so no task or
socket outlives it. :meth:`HttpServer.stop_listening` and :meth:`HttpServer.listen` close and
reopen the listening socket on the same port (connection refused in between);
:meth:`HttpServer.abort_connections` cuts every open connection. These three are synchronous
and must be called on the server's event loop.

Not modelled: TLS, HTTP/2, ``Expect: 100-continue``, absolute-form request targets, request
size limits, idle timeouts, more than one listening socket (a host name resolving to several
addresses is served on the first only).
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
from typing import Any

import h11

from .messages import AbortStream, Headers, Outcome, Reply, Request, Response, StreamingResponse

RequestHandler = Callable[[Request], Awaitable[Reply]]
_READ_SIZE = 65536
_BACKLOG = 1024  # bursts of concurrent clients in tests must not hit SYN retries


class HttpServer:
    def __init__(self, handler: RequestHandler, *, host: str, port: int) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._running = False
        self._listener: asyncio.Server | None = None
        self._relisten: asyncio.Task[None] | None = None
        self._want_listening = False
        self._family = socket.AF_INET
        self._address: Any = None  # what getsockname() returned for the first listening socket
        self._bound_port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._dropped: set[asyncio.Task[Any]] = set()
        self.connections_accepted = 0

    @property
    def port(self) -> int:
        if not self._running:
            raise RuntimeError("the server is not running")
        return self._bound_port

    @property
    def listening(self) -> bool:
        """False after :meth:`stop_listening` (until :meth:`listen`) and when not running."""
        return self._running and self._want_listening

    async def start(self) -> None:
        if self._running:
            raise RuntimeError("the server is already running")
        listener = await asyncio.start_server(
            self._on_connection, self._host, self._port, backlog=_BACKLOG
        )
        bound = listener.sockets[0]
        self._family, self._address = bound.family, bound.getsockname()
        self._bound_port = int(self._address[1])
        self._listener = listener
        self._want_listening = True
        self._running = True

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._want_listening = False
        if self._relisten is not None:
            await asyncio.gather(self._relisten, return_exceptions=True)
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for writer in list(self._writers):
            writer.transport.abort()
        await asyncio.gather(*tasks, return_exceptions=True)
        if listener is not None:
            await listener.wait_closed()

    def stop_listening(self) -> None:
        """Close the listening socket: connection attempts are refused until :meth:`listen`.

        Open connections are left alone (see :meth:`abort_connections`).
        """
        self._require_running()
        self._want_listening = False
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()

    def listen(self) -> None:
        """Listen again on the port the server started on.

        The socket is bound and listening when this returns, so a client may connect at once;
        connections are accepted from the next turn of the event loop.
        """
        self._require_running()
        self._want_listening = True
        if self._listener is not None or self._relisten is not None:
            return
        sock = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(self._address)
            sock.listen(_BACKLOG)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._relisten = asyncio.get_running_loop().create_task(self._adopt(sock))

    def abort_connections(self) -> int:
        """Cut every open connection now (open streams and hung requests included).

        Returns how many were cut.
        """
        tasks = list(self._tasks)
        for task in tasks:
            self._dropped.add(task)
            task.cancel()
        for writer in list(self._writers):
            writer.transport.abort()
        return len(tasks)

    def _require_running(self) -> None:
        if not self._running:
            raise RuntimeError("the server is not running")

    async def _adopt(self, sock: socket.socket) -> None:
        try:
            listener = await asyncio.start_server(self._on_connection, sock=sock, backlog=_BACKLOG)
        finally:
            self._relisten = None
        # stop_listening() or stop() may have been called while the socket was being adopted.
        if self._want_listening and self._running:
            self._listener = listener
        else:
            listener.close()

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        if not self._running or not self._want_listening:  # accepted just as we stopped
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
            # stop() and abort_connections() cancel open connections. asyncio's stream
            # callback calls task.exception() on a handler that ends cancelled, which logs an
            # ERROR, so a handler we cancelled ends quietly; any other cancellation propagates.
            if self._running and task not in self._dropped:
                raise
        finally:
            self._tasks.discard(task)
            self._writers.discard(writer)
            self._dropped.discard(task)
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
            if isinstance(reply, StreamingResponse):
                if not await self._stream(conn, reader, writer, reply):
                    return
            else:
                await _send(conn, writer, request.method, reply)
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()

    async def _stream(
        self,
        conn: h11.Connection,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        response: StreamingResponse,
    ) -> bool:
        """Send a streaming response; True if it ended cleanly and the connection may be reused.

        The chunks are pumped in this connection's task while another task reads the socket:
        if the client hangs up, that task cancels this one. Either way the iterator is closed
        (``aclose()``, if it has one) before this returns, even if it never started.
        """
        task = asyncio.current_task()
        assert task is not None
        hangup = asyncio.create_task(self._cancel_on_hangup(conn, reader, task))
        try:
            writer.write(
                conn.send(_head(response.status, response.content_type, response.headers, None))
            )
            await writer.drain()
            async for chunk in response.chunks:
                if chunk:  # an empty chunk would read as the end of the body
                    writer.write(conn.send(h11.Data(data=chunk)))
                    await writer.drain()
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
        except AbortStream:
            writer.transport.abort()  # the body stops mid-stream, without the final chunk
            return False
        finally:
            hangup.cancel()
            await asyncio.gather(hangup, return_exceptions=True)
            aclose = getattr(response.chunks, "aclose", None)
            if aclose is not None:
                await aclose()
        return True

    async def _cancel_on_hangup(
        self, conn: h11.Connection, reader: asyncio.StreamReader, streaming: asyncio.Task[Any]
    ) -> None:
        """Cancel ``streaming`` when the client closes; bytes it sends meanwhile go to h11."""
        while data := await reader.read(_READ_SIZE):
            conn.receive_data(data)  # a pipelined request, read after the stream ends
        self._dropped.add(streaming)
        streaming.cancel()


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


def _head(
    status: int, content_type: str | None, extra: Headers, length: int | None
) -> h11.Response:
    """The response head; without a length, h11 frames the body with chunked encoding."""
    headers = [("Date", email.utils.formatdate(usegmt=True))]
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    headers.extend(extra)
    if length is not None:
        headers.append(("Content-Length", str(length)))
    return h11.Response(status_code=status, headers=headers, reason=_reason(status))


async def _send(
    conn: h11.Connection, writer: asyncio.StreamWriter, method: str, response: Response
) -> None:
    head = _head(response.status, response.content_type, response.headers, len(response.body))
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
