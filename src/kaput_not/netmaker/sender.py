"""Sending one request to Netmaker and reading its whole answer, within one deadline.

Requests go straight to the httpcore2 connection pool of httpx2's own transport when the client
built it (the usual case): httpx2's client around it (request and response models, auth and
redirect flows, cookies, stream wrappers) cost a large share of the client's CPU per write
(docs/benchmarks.md). With a proxy configured, or a transport passed in (tests), they go
through `httpx2.AsyncClient`; both ways end in the same `Answer`.

Every request has one deadline, NETMAKER_TIMEOUT, over all of it: connecting, sending, the
answer's headers and its whole body (a list's streamed body included), so a server that trickles
a byte at a time cannot hold a pass (or the controller) for longer. An error's body is read up
to `ERROR_BODY_CAP` only; the rest is never downloaded.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import httpcore2
import httpx2

from kaput_not import __version__
from kaput_not.netmaker.answers import Answer
from kaput_not.netmaker.failures import NO_ANSWER_ERRORS, NoAnswer
from kaput_not.netmaker.list_reader import ListReader
from kaput_not.netmaker.progress import Progress
from kaput_not.netmaker.redact import Redactor
from kaput_not.netmaker.settings import ClientSettings, tls_verify

#: A list answer's reader, whatever it converts to.
Reader = ListReader[Any, Any]

#: `on_request(method, endpoint, status or None, seconds)`: called once per HTTP request, with
#: the path only (no query, no ids), for metrics. It must not raise.
OnRequest = Callable[[str, str, int | None, float], None]

#: The most of an error's body that is read (non-2xx, or an HTML page only read to report it):
#: enough for any server message; a proxy's huge error page is cut here, not held.
ERROR_BODY_CAP = 64 * 1024

logger = logging.getLogger("kaput_not.netmaker")


class Sender:
    """Sends requests under the API URL and returns complete answers, or raises the
    NetmakerError that says what happened. `transport` replaces the network (tests)."""

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx2.AsyncBaseTransport | None,
        on_request: OnRequest | None,
        redact: Redactor,
    ) -> None:
        verify = tls_verify(settings)
        if verify is True and not settings.api_url.lower().startswith("https://"):
            # Plain HTTP never uses TLS (and redirects are not followed): skip loading the CA
            # bundle, megabytes of certificates held for nothing.
            verify = False
        self._timeout = settings.timeout_seconds
        self._on_request = on_request
        self._no_answer = NoAnswer(settings, redact)
        self._urls: dict[str, httpx2.URL] = {}  # by path: a handful of constant paths
        self._targets: dict[str, httpcore2.URL] = {}  # the same, for the paths without a query
        product = f"kaput-not/{__version__}"
        agent = f"{product} ({settings.identity})" if settings.identity else product
        own = _default_transport(verify) if transport is None else None
        chosen = transport or own
        self._http = httpx2.AsyncClient(
            base_url=settings.api_url.rstrip("/"),
            transport=chosen,
            verify=verify,  # used by httpx2's own transports, when a proxy is configured
            timeout=httpx2.Timeout(settings.timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": agent, "Accept": "application/json"},
        )
        # The direct way (see the module's docstring): the pool, and what every request sends.
        # httpx2 keeps its transport's httpcore2 pool private; it is the one the transport
        # itself sends on, so both ways share its connections.
        self._pool = own._pool if own is not None else None
        self._head = [
            (b"Host", self._http.base_url.netloc),
            (b"User-Agent", agent.encode("ascii", "replace")),
            (b"Accept", b"application/json"),
        ]

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        call: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        reader: Reader | None,
    ) -> Answer:
        """One request; `call` names it in errors. With a `reader`, a 2xx list's items go to it
        as they arrive."""
        started = time.perf_counter()
        status: int | None = None
        progress = Progress(traced=self._pool is not None)
        try:
            # One deadline over the whole request, body included: each read's own timeout
            # restarts at every byte, so a trickling answer never hit it.
            async with asyncio.timeout(self._timeout):
                # Both ways are live: the direct one whenever the pool is ours, httpx2's client
                # behind a proxy (only it routes through one) and over a transport passed in.
                if self._pool is not None:
                    answer = await self._send_direct(
                        method, path, params, content, headers, reader, progress
                    )
                else:
                    request = self._http.build_request(
                        method,
                        self._url(path),
                        params=params,
                        content=content,
                        headers=headers,
                        extensions={"trace": progress.trace},
                    )
                    response = await self._http.send(request, stream=True)
                    progress.reading()
                    try:
                        answer = await _answer(response, reader)
                    finally:
                        await response.aclose()
        except NO_ANSWER_ERRORS as exc:
            raise self._no_answer.error(call, method, exc) from exc
        except TimeoutError as exc:
            raise self._no_answer.deadline(call, method, progress) from exc
        else:
            status = answer.status
            return answer
        finally:
            seconds = time.perf_counter() - started
            shown = "no answer" if status is None else status
            logger.debug("%s %s -> %s in %.0f ms", method, path, shown, seconds * 1000)
            if self._on_request is not None:
                self._on_request(method, path, status, seconds)

    async def _send_direct(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        reader: Reader | None,
        progress: Progress,
    ) -> Answer:
        """One request on httpcore2's pool, with the headers httpx2 would send us (no
        Accept-Encoding: the client decodes no compressed answer)."""
        assert self._pool is not None  # `send` comes here only with the transport built here
        query = urllib.parse.urlencode(params) if params else ""  # as httpx2 encodes a query
        sent = self._head + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if content is not None:
            sent.append((b"Content-Length", str(len(content)).encode("ascii")))
        # No per-step timeouts: `send`'s deadline covers every step and always passes first,
        # while each step's own would arm and cancel a timer of the event loop's.
        extensions: dict[str, Any] = {"trace": progress.trace}
        progress.extensions = extensions
        request = httpcore2.Request(
            method.encode("ascii"),
            self._target(path, query),
            headers=sent,
            content=content or b"",
            extensions=extensions,
        )
        response = await self._pool.handle_async_request(request)
        progress.reading()
        return await _core_answer(response, reader)

    def _target(self, path: str, query: str) -> httpcore2.URL:
        """The pool's URL for `path` and `query`, kept for the paths without a query."""
        target = None if query else self._targets.get(path)
        if target is None:
            url = self._url(path)
            raw = url.raw_path + (b"?" + query.encode("ascii") if query else b"")
            target = httpcore2.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=raw
            )
            if not query:
                self._targets[path] = target
        return target

    def _url(self, path: str) -> httpx2.URL:
        """`path` under the API URL, parsed once: httpx2 parses a string URL twice a request,
        a visible share of a write's CPU. Joined as httpx2 joins `base_url` (a path prefix is
        kept)."""
        url = self._urls.get(path)
        if url is None:
            base = self._http.base_url
            url = base.copy_with(raw_path=base.raw_path + path.lstrip("/").encode("ascii"))
            self._urls[path] = url
        return url


def _default_transport(verify: ssl.SSLContext | bool) -> httpx2.AsyncHTTPTransport | None:
    """httpx2's own transport (HTTP/1.1, its default limits), unless HTTP(S)_PROXY or ALL_PROXY
    is set: httpx2 routes through a proxy (and honours NO_PROXY) only when it builds the
    transports itself (None)."""
    proxies = urllib.request.getproxies()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    return httpx2.AsyncHTTPTransport(verify=verify)


async def _answer(response: httpx2.Response, reader: Reader | None) -> Answer:
    status = response.status_code
    headers = response.headers
    content_type, location = headers.get("content-type", ""), headers.get("location", "")
    cap = _error_cap(status, content_type)
    body, cut = await _body(response.aiter_bytes(), None if cap else reader, cap)
    return Answer(status, content_type, location, body, cut)


async def _core_answer(response: httpcore2.Response, reader: Reader | None) -> Answer:
    content_type = location = ""
    for name, value in response.headers:
        lowered = name.lower()
        if lowered == b"content-type":
            content_type = value.decode("latin-1")
        elif lowered == b"location":
            location = value.decode("latin-1")
    cap = _error_cap(response.status, content_type)
    try:
        body, cut = await _body(response.aiter_stream(), None if cap else reader, cap)
    finally:
        await response.aclose()  # before the end of the body, this closes the connection
    return Answer(response.status, content_type, location, body, cut)


def _error_cap(status: int, content_type: str) -> int | None:
    """How much of the body to read when it can only become an error message: a non-2xx, or
    an HTML page (a dashboard or a proxy, never an API answer). None: read it all (through the
    list reader, for a list)."""
    if not 200 <= status < 300:
        return ERROR_BODY_CAP
    if content_type.split(";")[0].strip().lower() == "text/html":
        return ERROR_BODY_CAP
    return None


async def _body(
    chunks: AsyncIterator[bytes], reader: Reader | None, cap: int | None
) -> tuple[bytes | bytearray, bool]:
    """The body, into one buffer as it arrives, and whether it was cut at `cap`; or, for a
    list, through its reader, which keeps only what it has not cut out yet."""
    if reader is None:
        body = bytearray()
        async for chunk in chunks:
            body += chunk
            if cap is not None and len(body) > cap:
                del body[cap:]
                return body, True
        return body, False
    async for chunk in chunks:
        reader.feed(chunk)
        await reader.convert()
    return reader.skeleton(), False
