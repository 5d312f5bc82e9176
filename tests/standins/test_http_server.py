"""The shared socket layer: streaming responses, hang-ups, stop, and closing/reopening the port."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx2
import pytest

from kaput_not_standins.http.messages import (
    AbortStream,
    Reply,
    Request,
    Response,
    StreamingResponse,
)
from kaput_not_standins.http.server import HttpServer


class Feed:
    """A chunk source the test drives by hand; records whether it was closed."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | type[AbortStream] | None] = asyncio.Queue()
        self.closed = asyncio.Event()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item = await self.queue.get()
                if item is None:
                    return
                if item is AbortStream:
                    raise AbortStream
                assert isinstance(item, bytes)
                yield item
        finally:
            self.closed.set()


@pytest.fixture
async def served() -> AsyncIterator[tuple[HttpServer, list[Feed]]]:
    feeds: list[Feed] = []

    async def handler(request: Request) -> Reply:
        if request.path == "/plain":
            return Response(200, b"plain", "text/plain")
        feed = Feed()
        feeds.append(feed)
        return StreamingResponse(200, feed.chunks(), "application/json")

    server = HttpServer(handler, host="127.0.0.1", port=0)
    await server.start()
    yield server, feeds
    await server.stop()


def url(server: HttpServer, path: str = "/stream") -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def until(condition, within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.005)


async def test_each_chunk_is_sent_as_it_is_produced(served):
    server, feeds = served
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    await until(lambda: feeds)
    feeds[0].queue.put_nowait(b'{"n":1}\n')
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
    first = await asyncio.wait_for(
        reader.readuntil(
            b"\r\n",
        ),
        2,
    )  # chunk size line
    body = await asyncio.wait_for(reader.readexactly(int(first, 16) + 2), 2)
    writer.close()
    await writer.wait_closed()
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    assert body == b'{"n":1}\n\r\n'  # arrived while the stream was still open


async def test_stream_ends_with_the_iterator_and_the_connection_is_reused(served):
    server, feeds = served
    limits = httpx2.Limits(max_connections=1)
    async with httpx2.AsyncClient(limits=limits, trust_env=False, timeout=5) as client:
        async with client.stream("GET", url(server)) as response:
            await until(lambda: feeds)
            for item in (b"a", b"", b"b", None):  # an empty chunk is skipped, not an end
                feeds[0].queue.put_nowait(item)
            body = await response.aread()
        again = await client.get(url(server, "/plain"))
    assert body == b"ab"
    assert again.text == "plain"
    assert server.connections_accepted == 1
    assert feeds[0].closed.is_set()


async def test_abort_stream_cuts_the_body_without_the_final_chunk(served):
    server, feeds = served
    async with (
        httpx2.AsyncClient(trust_env=False, timeout=5) as client,
        client.stream("GET", url(server)) as response,
    ):
        await until(lambda: feeds)
        feeds[0].queue.put_nowait(b"partial")
        feeds[0].queue.put_nowait(AbortStream)
        with pytest.raises(httpx2.RemoteProtocolError):
            await response.aread()


async def test_a_client_hang_up_closes_the_iterator_at_once(served):
    server, feeds = served
    async with (
        httpx2.AsyncClient(trust_env=False, timeout=5) as client,
        client.stream("GET", url(server)) as response,
    ):
        await until(lambda: feeds)
        feeds[0].queue.put_nowait(b"x")
        assert await response.aiter_bytes().__anext__() == b"x"
    await asyncio.wait_for(feeds[0].closed.wait(), 2)  # no further write was needed to notice


async def test_stop_ends_open_streams_promptly(served):
    server, feeds = served
    async with (
        httpx2.AsyncClient(trust_env=False, timeout=30) as client,
        client.stream("GET", url(server)) as response,
    ):
        await until(lambda: feeds)
        await asyncio.wait_for(server.stop(), 1)
        with pytest.raises(httpx2.TransportError):
            await response.aread()
    assert feeds[0].closed.is_set()


async def test_abort_connections_cuts_every_open_stream(served):
    server, feeds = served
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        async with (
            client.stream("GET", url(server)) as first,
            client.stream("GET", url(server)) as second,
        ):
            await until(lambda: len(feeds) == 2)
            assert server.abort_connections() == 2
            for response in (first, second):
                with pytest.raises(httpx2.TransportError):
                    await response.aread()
        assert (await client.get(url(server, "/plain"))).status_code == 200


async def test_stop_listening_refuses_connections_until_listen(served):
    server, _ = served
    port = server.port
    async with httpx2.AsyncClient(trust_env=False, timeout=5) as client:
        server.stop_listening()
        assert not server.listening
        with pytest.raises(httpx2.ConnectError):
            await client.get(url(server, "/plain"))
        server.listen()
        assert server.listening
        answer = await client.get(url(server, "/plain"))
    assert answer.text == "plain"
    assert server.port == port
