"""The Netmaker client over TLS on real sockets, on the transport it builds itself (the direct
way to httpcore2's pool): a CA file vouches for the server, or no trusted CA does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kaput_not.netmaker.client import NetmakerClient
from kaput_not.netmaker.errors import Unreachable
from kaput_not.netmaker.failures import PLAIN_HTTP_HINT
from kaput_not.netmaker.settings import TLS_HINT, ClientSettings
from tests.e2e.controlplane import Pki

_LOGGED_IN = json.dumps(
    {"Code": 200, "Message": "ok", "Response": {"UserName": "u", "AuthToken": "t-0"}}
).encode()


@dataclass
class LoginServer:
    """Answers every HTTP/1.1 request with a successful login, and counts the requests."""

    requests: int = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                self.requests += 1
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(_LOGGED_IN)}\r\n\r\n".encode()
                    + _LOGGED_IN
                )
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@contextlib.asynccontextmanager
async def serving(server: LoginServer, tls: ssl.SSLContext) -> AsyncIterator[str]:
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0, ssl=tls)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"https://127.0.0.1:{port}"
    finally:
        listener.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(listener.wait_closed(), 1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(Path(tmp_path_factory.mktemp("pki")))


def serving_tls(pki: Pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.serving_cert), str(pki.serving_key))
    return context


@pytest.mark.usefixtures("no_proxy")
async def test_the_netmaker_client_logs_in_over_tls_to_a_server_its_ca_file_vouches_for(
    pki: Pki,
) -> None:
    server = LoginServer()
    async with serving(server, serving_tls(pki)) as url:
        settings = ClientSettings(api_url=url, username="u", password="p", ca_file=str(pki.ca_cert))
        async with NetmakerClient(settings) as netmaker:
            await netmaker.login()
    assert server.requests == 1


@pytest.mark.usefixtures("no_proxy")
async def test_the_netmaker_client_refuses_a_server_no_trusted_ca_vouches_for(pki: Pki) -> None:
    server = LoginServer()
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
