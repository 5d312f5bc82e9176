"""The asyncio network backend under httpx2 and under the Netmaker client, on real sockets: a
small HTTP/1.1 server in the test's loop that echoes bodies (or answers a fixed one) and
misbehaves on request (closes idle connections, sends bytes nobody asked for, never answers,
resets mid-answer), plain and over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from kaput_not.netmaker.client import PLAIN_HTTP_HINT, NetmakerClient
from kaput_not.netmaker.errors import Unreachable
from kaput_not.netmaker.network import AsyncioTransport
from kaput_not.netmaker.settings import TLS_HINT, ClientSettings
from tests.e2e.controlplane import Pki

_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)

#: What the server does after reading a request: answer it (the default), then maybe more.
Behaviour = Callable[[asyncio.StreamWriter, bytes], "asyncio.Future[None] | None"]


def answer(body: bytes, status: str = "200 OK") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body


@dataclass
class Server:
    """Counts connections; `after_answer` runs once a request is answered (default: nothing)."""

    connections: int = 0
    requests: int = 0
    received: list[int] = field(default_factory=list)
    silent: bool = False
    reset_mid_answer: bool = False
    close_after_answer: bool = False
    stray_after_answer: bytes = b""
    answer_size: int | None = None
    #: Answer every request with this body instead of echoing it.
    fixed: bytes | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                found = _LENGTH.search(head)
                body = await reader.readexactly(int(found.group(1))) if found else b""
                self.requests += 1
                self.received.append(len(body))
                if self.silent:
                    await asyncio.sleep(3600)
                payload = b"x" * self.answer_size if self.answer_size is not None else body
                payload = self.fixed if self.fixed is not None else payload
                if self.reset_mid_answer:
                    writer.write(answer(payload)[:-1])
                    await writer.drain()
                    await asyncio.sleep(0.05)  # the part sent is read before the reset
                    raw = writer.transport.get_extra_info("socket")
                    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # with linger 0: a TCP reset, not a close
                    return
                writer.write(answer(payload))
                await writer.drain()
                if self.stray_after_answer:
                    await asyncio.sleep(0.05)
                    writer.write(self.stray_after_answer)
                    await writer.drain()
                if self.close_after_answer:
                    writer.close()
                    return
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@contextlib.asynccontextmanager
async def serving(server: Server, tls: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    finally:
        listener.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(listener.wait_closed(), 1)


def client(
    url: str, *, verify: ssl.SSLContext | bool = False, timeout: float = 5.0
) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(base_url=url, transport=AsyncioTransport(verify), timeout=timeout)


async def test_requests_reuse_one_kept_alive_connection() -> None:
    server = Server()
    async with serving(server) as url, client(url) as http:
        for i in range(50):
            response = await http.post("/echo", content=f"request {i}".encode())
            assert (response.status_code, response.content) == (200, f"request {i}".encode())
    assert server.connections == 1


async def test_concurrent_requests_each_get_their_own_answer() -> None:
    server = Server()
    async with serving(server) as url, client(url) as http:
        bodies = [f"body {i}".encode() * (i + 1) for i in range(30)]
        answers = await asyncio.gather(*(http.post("/echo", content=b) for b in bodies))
    assert [a.content for a in answers] == bodies
    assert 1 < server.connections <= 30


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    server = Server(close_after_answer=True)
    async with serving(server) as url, client(url) as http:
        assert (await http.post("/echo", content=b"one")).content == b"one"
        await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        assert (await http.post("/echo", content=b"two")).content == b"two"
    assert server.connections == 2


async def test_bytes_nobody_asked_for_retire_an_idle_connection() -> None:
    # A proxy that times an idle connection out may say so (408) before closing it: that
    # answer must never be read as the answer to the next request.
    server = Server(stray_after_answer=answer(b"idle too long", "408 Request Timeout"))
    async with serving(server) as url, client(url) as http:
        assert (await http.post("/echo", content=b"one")).content == b"one"
        await asyncio.sleep(0.2)
        second = await http.post("/echo", content=b"two")
    assert (second.status_code, second.content) == (200, b"two")
    assert server.connections == 2


async def test_a_large_answer_arrives_whole() -> None:
    size = 8 * 1024 * 1024  # far above the buffer's high-water mark: reading pauses and resumes
    server = Server(answer_size=size)
    async with serving(server) as url, client(url) as http:
        response = await http.post("/big", content=b"?")
    assert len(response.content) == size
    assert response.content == b"x" * size


async def test_a_large_request_body_is_sent_whole() -> None:
    size = 16 * 1024 * 1024  # more than the socket takes at once: writing waits for the drain
    server = Server(answer_size=2)
    async with serving(server) as url, client(url) as http:
        response = await http.post("/upload", content=b"y" * size)
    assert response.content == b"xx"
    assert server.received == [size]


async def test_no_answer_is_a_read_timeout() -> None:
    server = Server(silent=True)
    async with serving(server) as url, client(url, timeout=0.2) as http:
        with pytest.raises(httpx2.ReadTimeout):
            await http.post("/echo", content=b"hello")


async def test_a_reset_in_the_middle_of_an_answer_is_a_read_error_not_a_short_body() -> None:
    server = Server(reset_mid_answer=True)
    async with serving(server) as url, client(url) as http:
        with pytest.raises(httpx2.ReadError, match="reset"):
            await http.post("/echo", content=b"hello")


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    finished = asyncio.Event()

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            await reader.read()  # takes the ClientHello, never answers it, until the client goes
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
        finished.set()

    listener = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with client(f"https://127.0.0.1:{port}", verify=True, timeout=0.3) as http:
            with pytest.raises(httpx2.ConnectTimeout):
                await http.get("/")
        await asyncio.wait_for(finished.wait(), 5)
    finally:
        listener.close()


async def test_a_refused_connection_is_a_connect_error() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    async with client(f"http://127.0.0.1:{port}") as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("/")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(Path(tmp_path_factory.mktemp("pki")))


def serving_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    return context


async def test_tls_to_a_server_the_ca_vouches_for(pki: Pki) -> None:
    server = Server()
    trusted = ssl.create_default_context(cafile=str(pki.ca_cert))
    async with serving(server, serving_tls(pki)) as url, client(url, verify=trusted) as http:
        for i in range(5):
            response = await http.post("/echo", content=f"secret {i}".encode())
            assert response.content == f"secret {i}".encode()
        large = await http.post("/echo", content=b"z" * 3_000_000)
        assert large.content == b"z" * 3_000_000
    assert server.connections == 1


async def test_tls_to_a_server_no_trusted_ca_vouches_for_fails(pki: Pki) -> None:
    server = Server()
    async with serving(server, serving_tls(pki)) as url, client(url, verify=True) as http:
        with pytest.raises(httpx2.ConnectError, match="certificate verify failed"):
            await http.get("/")
    assert server.requests == 0


_LOGGED_IN = json.dumps(
    {"Code": 200, "Message": "ok", "Response": {"UserName": "u", "AuthToken": "t-0"}}
).encode()


@pytest.mark.usefixtures("no_proxy")
async def test_the_netmaker_client_logs_in_over_tls_to_a_server_its_ca_file_vouches_for(
    pki: Pki,
) -> None:
    server = Server(fixed=_LOGGED_IN)
    async with serving(server, serving_tls(pki)) as url:
        settings = ClientSettings(api_url=url, username="u", password="p", ca_file=str(pki.ca_cert))
        async with NetmakerClient(settings) as netmaker:
            await netmaker.login()
    assert server.requests == 1


@pytest.mark.usefixtures("no_proxy")
async def test_the_netmaker_client_refuses_a_server_no_trusted_ca_vouches_for(pki: Pki) -> None:
    server = Server(fixed=_LOGGED_IN)
    async with serving(server, serving_tls(pki)) as url:
        settings = ClientSettings(api_url=url, username="u", password="p")
        async with NetmakerClient(settings) as netmaker:
            with pytest.raises(Unreachable, match=r"TLS with .* failed: .*certificate verify") as e:
                await netmaker.login()
    assert e.value.hint == TLS_HINT
    assert server.requests == 0


@pytest.mark.usefixtures("no_proxy")
async def test_https_to_a_plain_http_server_does_not_hint_at_the_ca_file() -> None:
    """Issue 20: WRONG_VERSION_NUMBER (https:// on a plain-HTTP port) said "set
    NETMAKER_CA_FILE", which cannot help; the scheme can."""

    async def plain_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # What an HTTP server answers to a ClientHello: a 400 in plain text.
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(plain_http, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    settings = ClientSettings(api_url=f"https://127.0.0.1:{port}", username="u", password="p")
    try:
        async with NetmakerClient(settings) as netmaker:
            with pytest.raises(Unreachable, match=r"TLS with .* failed: .*WRONG_VERSION") as e:
                await netmaker.login()
    finally:
        listener.close()
    assert e.value.hint == PLAIN_HTTP_HINT
    assert "NETMAKER_CA_FILE" not in str(e.value)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.paused = False

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


async def test_reading_from_the_socket_pauses_while_much_is_unread() -> None:
    from kaput_not.netmaker import network

    protocol = network._Protocol(asyncio.get_running_loop())
    transport = _Transport()
    protocol.connection_made(transport)
    stream = network._Stream(protocol)
    chunk = b"a" * 65536
    for _ in range(network._HIGH_WATER // len(chunk) + 1):
        protocol.data_received(chunk)
    assert transport.paused
    read = 0
    while transport.paused and protocol.chunks:  # a reader that never resumes fails, not hangs
        read += len(await stream.read(65536))
    assert not transport.paused
    assert network._HIGH_WATER - read <= network._LOW_WATER
    protocol.eof_received()
    while data := await stream.read(65536):
        read += len(data)
    assert read == (network._HIGH_WATER // len(chunk) + 1) * len(chunk)
