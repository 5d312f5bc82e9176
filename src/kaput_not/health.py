"""/healthz, /readyz and /metrics on one small HTTP server.

Probes and Prometheus send tiny GET requests; this answers each on a fresh connection and
closes it (HTTP/1.1 with `Connection: close`), which keeps the server a page of code with no
framework. Bodies are never read; a request head over 8 KiB or slower than 5 s is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

log = logging.getLogger("kaput_not.health")

_HEAD_LIMIT = 8192
_HEAD_TIMEOUT = 5.0


class HealthServer:
    """`alive()` answers /healthz, `ready()` answers /readyz; each returns (ok, reason)."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        registry: CollectorRegistry,
        alive: Callable[[], tuple[bool, str]],
        ready: Callable[[], tuple[bool, str]],
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._alive = alive
        self._ready = ready
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the health server is not running")
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self._host, self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), _HEAD_TIMEOUT)
            status, content_type, body = self._answer(head[:_HEAD_LIMIT])
            writer.write(
                f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a probe that went away or never finished its request: nothing to answer
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, str, bytes]:
        request_line, _, headers = head.decode("latin-1").partition("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return "400 Bad Request", "text/plain", b"bad request\n"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", "text/plain", b"method not allowed\n"
        if target == "/metrics":
            # OpenMetrics when the scraper asks for it (Prometheus does), else the text format.
            encode, content_type = choose_encoder(_header(headers, "accept"))
            return "200 OK", content_type, encode(self._registry)
        check = {"/healthz": self._alive, "/readyz": self._ready}.get(target)
        if check is None:
            return "404 Not Found", "text/plain", b"not found\n"
        ok, reason = check()
        text = f"{'ok' if ok else 'not ok'}: {reason}\n".encode()
        return ("200 OK" if ok else "503 Service Unavailable"), "text/plain", text


def _header(headers: str, name: str) -> str:
    """A request header's value ("" when absent); several lines of it are joined by commas."""
    values = []
    for line in headers.split("\r\n"):
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name:
            values.append(value.strip())
    return ", ".join(values)
