"""A thin Kubernetes API client: lightkube builds the authenticated connection, we decode.

lightkube reads the configuration `kubeconfig.load` chose (kubectl's order), and hands us an
httpx2 client with TLS and credentials (token files re-read on rotation, exec plugins). We
send plain requests on it and decode replies with msgspec into the slim structs of `wire`, so
a node is never held as a full object.

Errors are our own (`KubeError` and subclasses), one line each, naming the call.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import TypeVar

import httpx2
import msgspec
from lightkube.config import client_adapter
from lightkube.core.exceptions import ConfigError

from kaput_not import __version__
from kaput_not.decoding import Decoder
from kaput_not.kube import kubeconfig as kubeconfig_loader
from kaput_not.kube import wire
from kaput_not.kube.kubeconfig import KubeConfigError
from kaput_not.ratelimit import Clock

__all__ = ["Conflict", "Gone", "KubeApi", "KubeConfigError", "KubeError", "NotFound", "connect"]

T = TypeVar("T")
#: `on_request(method, host, status or None when no answer came, seconds)`: once per request.
OnRequest = Callable[[str, str, int | None, float], None]


class KubeError(Exception):
    """A Kubernetes API call failed. `status` is the HTTP status, 0 when none came back."""

    def __init__(self, call: str, cause: str, *, status: int = 0, reason: str = "") -> None:
        self.call = call
        self.status = status
        self.reason = reason
        super().__init__(f"{call}: {_one_line(cause)[:300]}")


def denied(exc: KubeError) -> bool:
    """The API refused us (401, 403): missing RBAC or a bad token, which no retry mends."""
    return exc.status in (401, 403)


class Gone(KubeError):
    """410: the resourceVersion is too old (compacted); list again."""


class Conflict(KubeError):
    """409: someone else changed the object first (optimistic concurrency)."""


class NotFound(KubeError):
    """404."""


def connect(
    kubeconfig: str | None,
    *,
    timeout: float = 30.0,
    identity: str = "",
    explicit: str | None = None,
    context: str | None = None,
) -> tuple[httpx2.AsyncClient, str]:
    """An authenticated client for the cluster, and in words where its configuration came from
    (see `kubeconfig.load` for the order). Raises KubeConfigError."""
    loaded = kubeconfig_loader.load(kubeconfig, explicit=explicit, context=context)
    params = client_adapter.ConnectionParams(timeout=httpx2.Timeout(timeout))
    try:
        client = client_adapter.AsyncClient(loaded.config, params)
    except (ConfigError, OSError, ValueError) as exc:
        # A CA or client certificate file that cannot be read, base64 that is not.
        raise KubeConfigError(f"{loaded.source}: {_one_line(exc)}") from exc
    client.headers["User-Agent"] = f"kaput-not/{__version__} ({identity or 'unknown'})"
    return client, loaded.source


def _one_line(exc: BaseException | str) -> str:
    """An exception's text on one line (YAML errors span several, with a marked excerpt)."""
    return " ".join(str(exc).split())


class KubeApi:
    """JSON requests with one error mapping. Owns nothing but the client it is given."""

    def __init__(
        self,
        client: httpx2.AsyncClient,
        source: str = "",
        *,
        on_request: OnRequest | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._client = client
        #: Times each request for `on_request`.
        self._clock = clock
        #: Where the configuration came from and the server, in words (the start-up log).
        self.source = f"{source} at {client.base_url}" if source else str(client.base_url)
        self._on_request = on_request
        url = client.base_url
        self._host = f"{url.host}:{url.port}" if url.port else url.host

    def _count(self, method: str, status: int | None, started: float) -> None:
        if self._on_request is not None:
            self._on_request(method, self._host, status, self._clock() - started)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def get(
        self, path: str, decoder: Decoder[T], params: Mapping[str, str] | None = None
    ) -> T:
        response = await self._send("GET", path, params=params)
        return _decode(f"GET {path}", response, decoder)

    async def send(self, method: str, path: str, body: bytes, decoder: Decoder[T]) -> T:
        response = await self._send(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
        return _decode(f"{method} {path}", response, decoder)

    @contextlib.asynccontextmanager
    async def stream(
        self, path: str, params: Mapping[str, str], *, read_timeout: float
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """Lines of a watch stream. Errors before the first line are mapped like any call."""
        call = f"GET {path} (watch)"
        timeout = httpx2.Timeout(self._client.timeout.connect, read=read_timeout)
        request = self._client.build_request("GET", path, params=params, timeout=timeout)
        started = self._clock()
        try:
            response = await self._client.send(request, stream=True)
        except httpx2.HTTPError as exc:
            self._count("GET", None, started)
            raise KubeError(call, f"{type(exc).__name__}: {exc}") from exc
        self._count("GET", response.status_code, started)
        try:
            if response.status_code != 200:
                await response.aread()
                raise _error(call, response)
            yield _lines(call, response)
        finally:
            await response.aclose()

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        call = f"{method} {path}"
        started = self._clock()
        try:
            response = await self._client.request(
                method, path, params=params, content=content, headers=headers
            )
        except httpx2.HTTPError as exc:
            self._count(method, None, started)
            raise KubeError(call, f"{type(exc).__name__}: {exc}") from exc
        self._count(method, response.status_code, started)
        if response.status_code >= 300:
            raise _error(call, response)
        return response


async def _lines(call: str, response: httpx2.Response) -> AsyncIterator[bytes]:
    try:
        async for line in response.aiter_lines():
            if line:
                yield line.encode()
    except httpx2.HTTPError as exc:
        raise KubeError(call, f"the watch stream broke: {type(exc).__name__}: {exc}") from exc


def _decode(call: str, response: httpx2.Response, decoder: Decoder[T]) -> T:
    try:
        return decoder.decode(response.content)
    except msgspec.DecodeError as exc:
        raise KubeError(call, f"unreadable reply: {exc}", status=response.status_code) from exc


def _error(call: str, response: httpx2.Response) -> KubeError:
    try:
        status = wire.status_decoder.decode(response.content)
        reason, message = status.reason, status.message
    except msgspec.DecodeError:
        reason, message = "", response.text[:200]
    cls = {404: NotFound, 409: Conflict, 410: Gone}.get(response.status_code, KubeError)
    cause = f"HTTP {response.status_code} {reason}: {message}".strip()
    return cls(call, cause, status=response.status_code, reason=reason)
