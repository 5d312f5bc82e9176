"""The Netmaker REST client: login and token refresh, one checked `_call()`, the endpoints.

Every endpoint is a few lines on top of `_call()`, which owns everything that can go wrong:
- the token: log in when there is none or it expires within the margin (read from the JWT's
  `exp`, unverified), share one in-flight login between concurrent callers, and on a 401 log in
  again and retry ONCE; a second 401 is an `ApiError`, never a loop;
- the three-level check: the HTTP status, a JSON body (by its media type or, since the real
  server sends some JSON as `text/plain`, by the body itself), then the envelope's `Code`;
- the mapping of every httpx2 and httpcore2 exception to the tree in `errors.py`.

Requests go straight to the httpcore2 connection pool of httpx2's own transport when the client
built it (the usual case): httpx2's client around it (request and response models, auth and
redirect flows, cookies, stream wrappers) cost a large share of the client's CPU per write
(docs/benchmarks.md). With a proxy configured, or a transport passed in (tests), they go
through `httpx2.AsyncClient` as before; both ways end in the same `_Answer`.

The server's quirks handled here are documented in docs/netmaker-api.md: a wrong password is 400 not
401, an MFA account logs in with 200 and no token, GET /api/nodes can answer 200 with an empty
body, a PUT without `id` overwrites an arbitrary egress, DELETE of an unknown id is 400.

Every request has one deadline, NETMAKER_TIMEOUT, over all of it: connecting, sending, the
answer's headers and its whole body (a list's streamed body included), so a server that trickles
a byte at a time cannot hold a pass (or the controller) for longer. An error's body is read up
to `ERROR_BODY_CAP` only; the rest is never downloaded.

Nothing here logs a body, a password or a token; error texts from the server, and the headers
quoted in a message (Content-Type, Location), are redacted of both before they reach a message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import re
import ssl
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self, TypeVar

import httpcore2
import httpx2
import msgspec

from kaput_not import __version__
from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.decoding import Decoder, first_byte
from kaput_not.netmaker import errors, wire
from kaput_not.netmaker.list_reader import Item, ListReader
from kaput_not.netmaker.settings import (
    TLS_HINT,
    ClientSettings,
    shown_url,
    tls_verify,
    warn_if_cleartext,
)

T = TypeVar("T")
W = TypeVar("W")


#: A list answer's reader, whatever it converts to.
_Reader = ListReader[Any, Any]

#: `on_request(method, endpoint, status or None, seconds)`: called once per HTTP request, with
#: the path only (no query, no ids), for metrics. It must not raise.
OnRequest = Callable[[str, str, int | None, float], None]

logger = logging.getLogger("kaput_not.netmaker")

LOGIN_PATH = "/api/users/adm/authenticate"
EGRESS_PATH = "/api/v1/egress"


#: The most of an error's body that is read (non-2xx, or an HTML page only read to report it):
#: enough for any server message; a proxy's huge error page is cut here, not held.
ERROR_BODY_CAP = 64 * 1024

#: Shorter secrets are hidden only where they stand alone: replacing every occurrence of a
#: two-letter password would mangle ordinary words and hide nothing.
_SHORT_SECRET = 6


def redact(text: str, secret: str) -> str:
    """`text` with `secret` replaced by <hidden>, raw or as it reads inside a JSON string."""
    if not secret:
        return text
    for form in _written_forms(secret):
        if len(secret) >= _SHORT_SECRET:
            text = text.replace(form, "<hidden>")
        else:
            alone = rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])"
            text = re.sub(alone, "<hidden>", text)
    return text


_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"}


def _written_forms(secret: str) -> list[str]:
    """The secret raw and JSON-escaped, as our encoder, Python's or Go's would write it.

    A server that echoes the login body (an error quoting the request) sends the escaped form:
    a password holding `"`, `\\` or a tab would slip past a search for the raw text; a
    `Location` header reflecting it sends it percent-encoded. Longest first, so a form never
    hides part of a longer one.
    """
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    go = escaped
    for char, code in _GO_ESCAPES.items():
        go = go.replace(char, code)
    quoted = (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret))
    forms = {secret, escaped, json.dumps(secret)[1:-1], go, *quoted}
    return sorted(forms, key=len, reverse=True)


#: A token's claims; the shared decoder, so hostile nesting is a DecodeError, not a crash.
_CLAIMS = Decoder(dict[str, object])


def _jwt_exp(token: str) -> float | None:
    """The `exp` claim of a JWT, unverified; None when it cannot be read."""
    try:
        payload = token.split(".")[1]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        exp = _CLAIMS.decode(raw).get("exp")
    except (IndexError, ValueError, msgspec.DecodeError):
        return None
    if isinstance(exp, int | float) and not isinstance(exp, bool) and math.isfinite(exp):
        return float(exp)
    return None


#: What a request that got no complete answer can raise, from either way of sending.
_TRANSPORT_ERRORS = (
    httpx2.HTTPError,
    httpx2.InvalidURL,
    httpcore2.TimeoutException,
    httpcore2.NetworkError,
    httpcore2.ProtocolError,
    httpcore2.UnsupportedProtocol,
    httpcore2.ProxyError,
)


_UNSENDABLE = (
    httpx2.InvalidURL,
    httpx2.UnsupportedProtocol,
    httpx2.ProxyError,
    httpcore2.UnsupportedProtocol,
    httpcore2.ProxyError,
)
_NO_ANSWER_IN_TIME = (
    httpx2.ReadTimeout,
    httpx2.WriteTimeout,
    httpcore2.ReadTimeout,
    httpcore2.WriteTimeout,
)


@dataclass(frozen=True, slots=True)
class _Answer:
    """A complete answer: its status, the two headers the client reads, and the body, read into
    one buffer as it arrives (joining the chunks at the end, as httpx2 does, held a big list
    twice). For a list read through a `ListReader`, the body is what the reader
    did not cut out: the envelope and the last items."""

    status: int
    content_type: str
    location: str
    body: bytes | bytearray
    #: The body was cut at `ERROR_BODY_CAP` (an error's), the rest not read.
    truncated: bool = False


async def _answer(response: httpx2.Response, reader: _Reader | None) -> _Answer:
    status = response.status_code
    headers = response.headers
    content_type, location = headers.get("content-type", ""), headers.get("location", "")
    cap = _error_cap(status, content_type)
    body, cut = await _body(response.aiter_bytes(), None if cap else reader, cap)
    return _Answer(status, content_type, location, body, cut)


async def _core_answer(response: httpcore2.Response, reader: _Reader | None) -> _Answer:
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
    return _Answer(response.status, content_type, location, body, cut)


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
    chunks: AsyncIterator[bytes], reader: _Reader | None, cap: int | None
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


def _is_json(response: _Answer) -> bool:
    """Whether to read the body as JSON: by its media type, or by the body itself.

    The real server sends some JSON bodies as `text/plain` (GET /api/networks: Go sniffs that
    type when a handler sets none), so the header alone would refuse good answers. Every answer
    the client decodes is an object or an array, so a body that opens with `{` or `[` is read
    as JSON; an HTML page or a plain-text error is not, and gets the NotJson hint.
    """
    media = response.content_type.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json"):
        return True
    return first_byte(response.body) in (b"{", b"[")


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "SSL" in str(exc) or "CERTIFICATE" in str(exc).upper()


#: OpenSSL's words for a TLS handshake answered by something that does not speak TLS: an
#: https:// URL on a plain-HTTP port. A CA file does not help there; the scheme does.
_NOT_TLS = (
    "WRONG_VERSION_NUMBER",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
)
PLAIN_HTTP_HINT = (
    "the server does not answer in TLS there: if it serves plain HTTP, use http:// in "
    "NETMAKER_API_URL"
)


def _tls_hint(exc: BaseException) -> str | None:
    """The hint for a failed handshake: the CA settings only for a certificate that could not
    be verified; the scheme for a server that does not speak TLS; none for the rest."""
    texts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return TLS_HINT
        texts.append(str(seen).upper())
        seen = seen.__cause__ or seen.__context__
    text = " ".join(texts)
    if "CERTIFICATE_VERIFY_FAILED" in text or "CERTIFICATE VERIFY FAILED" in text:
        return TLS_HINT
    if any(words in text for words in _NOT_TLS):
        return PLAIN_HTTP_HINT
    return None


#: What a request was doing when the deadline passed, by httpcore2's trace event.
_PHASES = {
    "connect_tcp": "connecting",
    "start_tls": "in the TLS handshake",
    "send_request_headers": "sending the request",
    "send_request_body": "sending the request",
    "receive_response_headers": "waiting for the answer",
    "receive_response_body": "reading the answer's body",
}
_READING = _PHASES["receive_response_body"]
#: The step of each `.started` event of httpcore2's layers ("<layer>.<step>.started"), looked
#: up whole: the trace callback runs several times a request, so it must not parse its event.
_STARTED = {
    f"{layer}.{step}.started": step
    for layer in ("connection", "http11", "http2", "proxy", "socks")
    for step in _PHASES
}


class _Progress:
    """How far one request got, from httpcore2's trace events (`extensions["trace"]`): whether
    anything was sent decides between Unreachable and OutcomeUnknown when the deadline passes.

    `traced` says the events can be trusted: a transport that sends none (a test's mock) leaves
    it False, and a request whose progress is unknown counts as sent.

    Given the request's `extensions`, it takes itself out of them once the answer's headers
    are awaited: every later step is the answer's (`reading()` says when its body is read), and
    the events of its body and its close were four of the ten a request."""

    __slots__ = ("extensions", "phase", "sent", "traced")

    def __init__(self, *, traced: bool) -> None:
        self.phase = "waiting for a free connection"
        self.sent = False
        self.traced = traced
        self.extensions: dict[str, Any] | None = None

    async def trace(self, event: str, info: Mapping[str, Any]) -> None:
        self.traced = True
        step = _STARTED.get(event)
        if step is None:
            if not event.endswith(".started"):
                return  # `.complete` or `.failed`: the step's start said all
            step = event.partition(".")[2].rpartition(".")[0]  # another layer's, if any
            if step not in _PHASES:
                return
        self.phase = _PHASES[step]
        if step == "send_request_headers":
            self.sent = True
        elif step == "receive_response_headers" and self.extensions is not None:
            self.extensions.pop("trace", None)  # this step's Trace keeps it to its end

    def reading(self) -> None:
        """The answer's headers are in: its body is read from now on."""
        self.phase = _READING


class NetmakerClient:
    """Async client for the Netmaker endpoints kaput-not uses. Use it as `async with`.

    `transport` replaces the network (tests plug an emulator in here), `clock` is the wall clock
    compared with the token's `exp`, `on_request` is the metrics hook (see `OnRequest`).
    """

    def __init__(
        self,
        settings: ClientSettings,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        on_request: OnRequest | None = None,
    ) -> None:
        settings.validate()
        warn_if_cleartext(settings.api_url)
        verify = tls_verify(settings)
        if verify is True and not settings.api_url.lower().startswith("https://"):
            # Plain HTTP never uses TLS (and redirects are not followed): skip loading the CA
            # bundle, megabytes of certificates held for nothing.
            verify = False
        self._settings = settings
        self._clock = clock
        self._on_request = on_request
        self._token: str | None = None
        self._refresh_at: float | None = None
        self._login_task: asyncio.Task[str] | None = None
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
        limit = settings.timeout_seconds
        self._timeouts = {"connect": limit, "read": limit, "write": limit, "pool": limit}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._login_task is not None:
            self._login_task.cancel()
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"NetmakerClient({shown_url(self._settings.api_url)!r})"

    # -- endpoints -------------------------------------------------------------------------------

    async def login(self) -> None:
        """Log in now, replacing the token; joins a login already in flight."""
        await self._shared_login(stale=self._token)

    # `held`, on the list calls: the objects a caller already holds, by id. An item read equal to
    # the one held under its id is returned as that one, so a re-read of an unchanged list
    # allocates next to nothing while the list it replaces is still in use.

    async def list_hosts(self, *, held: Mapping[str, Host] | None = None) -> list[Host]:
        return await self._list("/api/hosts", None, wire.HOSTS, wire.host_from_wire, held)

    async def list_nodes(self, *, held: Mapping[str, NmNode] | None = None) -> list[NmNode]:
        """Every node of every network, pseudo-nodes and pending deletes included."""
        return await self._list("/api/nodes", None, wire.NODES, wire.node_from_wire, held)

    async def list_networks(self) -> list[Network]:
        networks = await self._call("GET", "/api/networks", expect=wire.NETWORKS)
        return [
            Network(n.netid, tuple(r for r in (n.addressrange, n.addressrange6) if r))
            for n in networks
        ]

    async def list_egress(
        self, network: str, *, held: Mapping[str, Egress] | None = None
    ) -> list[Egress]:
        if not network.strip():
            raise ValueError("list_egress needs a network name")
        params = {"network": network}
        return await self._list(EGRESS_PATH, params, wire.EGRESS_LIST, wire.egress_from_wire, held)

    async def create_egress(self, spec: EgressSpec) -> Egress:
        """Create an egress; returns it as the server stored it (new id, normalised range)."""
        body = wire.egress_request(spec)
        created = await self._call("POST", EGRESS_PATH, json=body, expect=wire.EGRESS)
        return wire.egress_from_wire(created)

    async def update_egress(self, egress_id: str, spec: EgressSpec) -> Egress:
        """Replace every field of egress `egress_id` (its network excepted) with `spec`."""
        # Netmaker overwrites the first egress in its table on a PUT without id.
        _require_id(egress_id, "update_egress")
        body = wire.egress_request(spec, egress_id)
        updated = await self._call("PUT", EGRESS_PATH, json=body, expect=wire.EGRESS)
        return wire.egress_from_wire(updated)

    async def delete_egress(self, egress_id: str) -> None:
        """Delete egress `egress_id`; one that is already gone counts as deleted."""
        _require_id(egress_id, "delete_egress")
        try:
            await self._call("DELETE", EGRESS_PATH, params={"id": egress_id}, expect=wire.ANYTHING)
        except errors.ApiError as exc:
            # The server says "gone" only in words: 400 `record not found`. A 404 from the router
            # itself (text/plain) means a missing endpoint, and NotJson keeps that an error.
            gone = exc.status in (400, 404) and "not found" in exc.server_message.lower()
            if isinstance(exc, errors.NotJson) or not gone:
                raise
            logger.debug("DELETE %s: egress %s was already gone", EGRESS_PATH, egress_id)

    async def _list(
        self,
        path: str,
        params: Mapping[str, str] | None,
        shape: wire.ListShape[W],
        convert: Callable[[W], Item],
        held: Mapping[str, Item] | None,
    ) -> list[Item]:
        """A list answer's items, each decoded and converted on its own as the body arrives,
        with other tasks run between slices: a big list converted in one piece would hold every
        node event back. In the layout Netmaker sends, its body is never held whole
        (`ItemSplitter`)."""
        reader = ListReader(shape, convert, held)
        reader.take(await self._call("GET", path, params=params, expect=shape.items, reader=reader))
        await reader.convert()
        if reader.failure is not None:
            where, exc = reader.failure
            detail = f"unexpected JSON in {where}: {self._redact(str(exc))}"
            # Only a 2xx answer gets here, and Netmaker answers its lists with 200.
            raise errors.BadResponse(_call_name("GET", path, params), detail, status=200) from exc
        return reader.items

    # -- the one place that talks HTTP ---------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: msgspec.Struct | None = None,
        expect: wire.Shape[T],
        auth: bool = True,
        headers: Mapping[str, str] | None = None,
        reader: _Reader | None = None,
    ) -> T:
        """Send one request and return its checked, decoded payload, or raise a NetmakerError.

        With a `reader`, a successful answer's list items go to it as they arrive; the payload
        returned is then the items it did not take."""
        call = _call_name(method, path, params)
        content = msgspec.json.encode(json) if json is not None else None
        sent = dict(headers or {})
        if content is not None:
            sent["Content-Type"] = "application/json"
        if not auth:
            response = await self._send(call, method, path, params, content, sent, reader)
            return self._read(call, response, expect)
        token = await self._current_token()
        response = await self._send(
            call, method, path, params, content, _bearer(sent, token), reader
        )
        if response.status == 401:
            # Expired early, revoked, or the server's database was reset: log in again, once.
            # (A 401's body is read whole: the reader has not been fed.)
            token = await self._shared_login(stale=token)
            response = await self._send(
                call, method, path, params, content, _bearer(sent, token), reader
            )
        return self._read(call, response, expect)

    async def _send(
        self,
        call: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        content: bytes | None,
        headers: Mapping[str, str],
        reader: _Reader | None,
    ) -> _Answer:
        started = time.perf_counter()
        status: int | None = None
        progress = _Progress(traced=self._pool is not None)
        try:
            # One deadline over the whole request, body included: each read's own timeout
            # restarts at every byte, so a trickling answer never hit it.
            async with asyncio.timeout(self._settings.timeout_seconds):
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
        except _TRANSPORT_ERRORS as exc:
            raise self._transport_error(call, method, exc) from exc
        except TimeoutError as exc:
            raise self._deadline_error(call, method, progress) from exc
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
        reader: _Reader | None,
        progress: _Progress,
    ) -> _Answer:
        """One request on httpcore2's pool, with the headers httpx2 would send us (no
        Accept-Encoding: the client decodes no compressed answer)."""
        assert self._pool is not None  # `_send` comes here only with the transport built here
        query = urllib.parse.urlencode(params) if params else ""  # as httpx2 encodes a query
        sent = self._head + [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if content is not None:
            sent.append((b"Content-Length", str(len(content)).encode("ascii")))
        extensions: dict[str, Any] = {"timeout": self._timeouts, "trace": progress.trace}
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

    def _read(self, call: str, response: _Answer, expect: wire.Shape[T]) -> T:
        """The three-level check (status, JSON body, envelope `Code`), then the decode."""
        status, body = response.status, response.body
        if not 200 <= status < 300:
            raise self._error_answer(call, response)
        if not body or body.isspace():
            # GET /api/nodes answers 200 with nothing when it fails to load the caller's role.
            raise errors.BadResponse(call, "empty body where JSON was expected", status=status)
        if response.truncated or not _is_json(response):  # only an HTML page is cut here
            hint = "does NETMAKER_API_URL point at the Netmaker API, not the dashboard?"
            raise self._not_json(call, response, hint)
        payload: bytes | bytearray | msgspec.Raw = body
        code, message = None, ""
        try:
            if expect.enveloped:
                envelope = wire.ENVELOPE.decode(body)
                code, message, payload = envelope.code, envelope.message, envelope.response
            elif first_byte(body) == b"{":
                # A bare-array endpoint that answers an object may still carry an error Code.
                head = wire.STATUS.decode(body)
                code, message = head.code, head.message
            if code is not None and code != 200:
                raise errors.ApiError(
                    call, status=status, code=code, server_message=self._redact(message)
                )
            return expect.decoder.decode(payload)
        except msgspec.ValidationError as exc:
            detail = f"unexpected JSON: {self._redact(str(exc))}"
            raise errors.BadResponse(call, detail, status=status) from exc
        except msgspec.DecodeError as exc:
            detail = f"invalid JSON: {self._redact(str(exc))}"
            raise errors.BadResponse(call, detail, status=status) from exc

    def _error_answer(self, call: str, response: _Answer) -> errors.ApiError:
        status = response.status
        if 300 <= status < 400:
            location = errors.one_line(self._redact(response.location) or "?", 100)
            return self._not_json(call, response, f"it redirects to {location}; use that URL")
        if not _is_json(response):
            if status >= 500:
                hint = "is a proxy in front of Netmaker?"
            else:
                hint = "does NETMAKER_API_URL point at the Netmaker API (v1.5 or later)?"
            return self._not_json(call, response, hint)
        if response.truncated:  # JSON cut at the cap cannot decode: quote its start
            return errors.ApiError(call, status=status, server_message=self._body_snippet(response))
        try:
            head = wire.STATUS.decode(response.body)
        except msgspec.DecodeError:
            return errors.ApiError(call, status=status, server_message=self._body_snippet(response))
        return errors.ApiError(
            call, status=status, code=head.code, server_message=self._redact(head.message)
        )

    def _not_json(self, call: str, response: _Answer, hint: str) -> errors.NotJson:
        return errors.NotJson(
            call,
            status=response.status,
            content_type=self._redact(response.content_type),
            body=self._body_snippet(response),
            hint=hint,
        )

    def _transport_error(self, call: str, method: str, exc: Exception) -> errors.NetmakerError:
        """The error class for a request that got no complete answer."""
        detail = self._redact(str(exc)) or type(exc).__name__
        where = shown_url(self._settings.api_url)
        limit = f"{self._settings.timeout_seconds:g} s"
        if isinstance(exc, httpx2.PoolTimeout | httpcore2.PoolTimeout):
            return errors.Unreachable(call, f"no free connection within {limit} (pool timeout)")
        if isinstance(exc, httpx2.ConnectTimeout | httpcore2.ConnectTimeout):
            return errors.Unreachable(call, f"connecting to {where} timed out after {limit}")
        if isinstance(exc, httpx2.ConnectError | httpcore2.ConnectError):
            if _is_tls_failure(exc):
                return errors.Unreachable(
                    call, f"TLS with {where} failed: {detail}", _tls_hint(exc)
                )
            hint = "check NETMAKER_API_URL and that Netmaker is up"
            return errors.Unreachable(call, f"cannot connect to {where}: {detail}", hint)
        if isinstance(exc, _UNSENDABLE):
            return errors.Unreachable(call, f"cannot send to {where}: {detail}")
        if isinstance(exc, _NO_ANSWER_IN_TIME):
            cause = f"no complete answer within {limit} ({type(exc).__name__})"
        else:
            cause = f"no complete answer ({type(exc).__name__}: {detail})"
        maybe = None if method == "GET" else "the change may or may not have been applied"
        return errors.OutcomeUnknown(call, cause, maybe)

    def _body_snippet(self, response: _Answer) -> str:
        text = bytes(response.body[:2048]).decode("utf-8", errors="replace")
        shown = errors.snippet(self._redact(text))
        return f"{shown} (truncated)" if response.truncated else shown

    def _deadline_error(self, call: str, method: str, progress: _Progress) -> errors.NetmakerError:
        """The whole-request deadline passed: Unreachable if nothing was sent (as far as the
        trace events tell), else OutcomeUnknown."""
        limit = f"{self._settings.timeout_seconds:g} s"
        where = f"the deadline (NETMAKER_TIMEOUT) passed while {progress.phase}"
        if progress.traced and not progress.sent:
            hint = "check NETMAKER_API_URL and that Netmaker is up"
            return errors.Unreachable(call, f"nothing sent within {limit}: {where}", hint)
        maybe = None if method == "GET" else "the change may or may not have been applied"
        return errors.OutcomeUnknown(call, f"no complete answer within {limit}: {where}", maybe)

    def _redact(self, text: str) -> str:
        for secret in (self._settings.password, self._token or ""):
            text = redact(text, secret)
        return text

    # -- the token -----------------------------------------------------------------------------

    def _token_fresh(self) -> bool:
        if self._token is None:
            return False
        return self._refresh_at is None or self._clock() < self._refresh_at

    async def _current_token(self) -> str:
        if self._token is not None and self._token_fresh():
            return self._token
        return await self._shared_login(stale=self._token)

    async def _shared_login(self, stale: str | None) -> str:
        """A token other than `stale`: from a login that finished meanwhile, in flight, or new.

        Concurrent callers await one login task, so they share its token or its error: a wrong
        password costs one request, not one per caller. The task is shielded, so one caller
        being cancelled does not cancel the login for the others.
        """
        if self._token is not None and self._token != stale and self._token_fresh():
            return self._token
        task = self._login_task
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._authenticate())
            self._login_task = task
            task.add_done_callback(self._login_finished)
        return await asyncio.shield(task)

    def _login_finished(self, task: asyncio.Task[str]) -> None:
        if self._login_task is task:
            self._login_task = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not logged as lost

    async def _authenticate(self) -> str:
        call = f"POST {LOGIN_PATH}"
        request = wire.LoginRequest(self._settings.username, self._settings.password)
        # Our own application name makes the lifetime `jwt_validity_duration`; never send
        # From-Ui, which adds a dashboard-access check.
        headers = {"X-Application-Name": self._settings.application_name}
        try:
            answer = await self._call(
                "POST", LOGIN_PATH, json=request, expect=wire.LOGIN, auth=False, headers=headers
            )
        except errors.ApiError as exc:
            # 400 is a wrong password (or SSO user, basic auth off), 401 an unknown or disabled
            # user: a person has to fix the settings, so this must not be retried.
            refused = {exc.status, exc.code} & {400, 401}
            if isinstance(exc, errors.NotJson) or not refused:
                raise
            reason = f"HTTP {exc.status} {exc.server_message or 'no message'}"
            raise errors.CredentialsRejected(call, reason, status=exc.status) from exc
        if not answer.auth_token:
            raise errors.CredentialsRejected(
                call,
                "HTTP 200 without an AuthToken (an MFA account gets only a pre-auth token)",
                status=200,
                hint="use an account without MFA; check NETMAKER_USERNAME / NETMAKER_PASSWORD",
            )
        self._token = answer.auth_token
        self._refresh_at = self._refresh_time(answer.auth_token)
        return answer.auth_token

    def _refresh_time(self, token: str) -> float | None:
        """When to log in again: `margin` before `exp`, or halfway for a short-lived token.

        None means "until a 401": `exp` is unreadable, or already past (a token born expired,
        or clocks apart), where logging in again would only loop.
        """
        exp = _jwt_exp(token)
        if exp is None:
            return None
        lifetime = exp - self._clock()
        if lifetime <= 0:
            return None
        return exp - min(self._settings.token_refresh_margin_seconds, lifetime / 2)


def _default_transport(verify: ssl.SSLContext | bool) -> httpx2.AsyncHTTPTransport | None:
    """httpx2's own transport (HTTP/1.1, its default limits), unless HTTP(S)_PROXY or ALL_PROXY
    is set: httpx2 routes through a proxy (and honours NO_PROXY) only when it builds the
    transports itself (None)."""
    proxies = urllib.request.getproxies()
    if any(proxies.get(scheme) for scheme in ("http", "https", "all")):
        return None
    return httpx2.AsyncHTTPTransport(verify=verify)


def _call_name(method: str, path: str, params: Mapping[str, str] | None) -> str:
    """How errors name a request: method, path and query (no host, no body)."""
    return f"{method} {path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")


def _bearer(headers: Mapping[str, str], token: str) -> dict[str, str]:
    return {**headers, "Authorization": f"Bearer {token}"}


def _require_id(egress_id: str, operation: str) -> None:
    if not egress_id or not egress_id.strip():
        raise ValueError(f"{operation} needs a non-empty egress id")
