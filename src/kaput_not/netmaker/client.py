"""The Netmaker REST client: the endpoints kaput-not uses, each a few lines on one `_call()`.

`_call()` sends through the `Sender` (one deadline, both ways of sending, `failures.py` for a
request without an answer), with the token `Tokens` keeps fresh: on a 401 it logs in again and
retries ONCE; a second 401 is an `ApiError`, never a loop. `AnswerCheck` turns the answer into
its value or an error. The pieces: `redact.py`, `auth.py`, `sender.py`, `progress.py`,
`answers.py`, `failures.py`.

The server's quirks handled here are documented in docs/netmaker-api.md: a wrong password is 400 not
401, an MFA account logs in with 200 and no token, GET /api/nodes can answer 200 with an empty
body, a PUT without `id` overwrites an arbitrary egress, DELETE of an unknown id is 400.

Nothing here logs a body, a password or a token; error texts from the server, and the headers
quoted in a message (Content-Type, Location), are redacted of both before they reach a message.
"""

from __future__ import annotations

import logging
import time
import urllib.parse
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self, TypeVar

import httpx2
import msgspec

from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.netmaker import errors, wire
from kaput_not.netmaker.answers import AnswerCheck
from kaput_not.netmaker.auth import Tokens
from kaput_not.netmaker.list_reader import Item, ListReader
from kaput_not.netmaker.redact import Redactor
from kaput_not.netmaker.sender import OnRequest, Reader, Sender
from kaput_not.netmaker.settings import ClientSettings, shown_url, warn_if_cleartext
from kaput_not.ratelimit import Clock

__all__ = ["EGRESS_PATH", "LOGIN_PATH", "NetmakerClient", "OnRequest"]

T = TypeVar("T")
W = TypeVar("W")

logger = logging.getLogger("kaput_not.netmaker")

LOGIN_PATH = "/api/users/adm/authenticate"
EGRESS_PATH = "/api/v1/egress"


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
        clock: Clock = time.time,
        on_request: OnRequest | None = None,
    ) -> None:
        settings.validate()
        warn_if_cleartext(settings.api_url)
        self._settings = settings
        margin = settings.token_refresh_margin_seconds
        self._tokens = tokens = Tokens(self._authenticate, clock=clock, margin=margin)
        self._redact = Redactor(settings.password, lambda: tokens.token)
        self._sender = Sender(
            settings, transport=transport, on_request=on_request, redact=self._redact
        )
        self._check = AnswerCheck(self._redact)

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
        self._tokens.cancel()
        await self._sender.aclose()

    def __repr__(self) -> str:
        return f"NetmakerClient({shown_url(self._settings.api_url)!r})"

    # -- endpoints -------------------------------------------------------------------------------

    async def login(self) -> None:
        """Log in now, replacing the token; joins a login already in flight."""
        await self._tokens.other_than(self._tokens.token)

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

    # -- the one checked call ------------------------------------------------------------------

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
        reader: Reader | None = None,
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
            response = await self._sender.send(call, method, path, params, content, sent, reader)
            return self._check.value(call, response, expect)
        token = await self._tokens.current()
        response = await self._sender.send(
            call, method, path, params, content, _bearer(sent, token), reader
        )
        if response.status == 401:
            # Expired early, revoked, or the server's database was reset: log in again, once.
            # (A 401's body is read whole: the reader has not been fed.)
            token = await self._tokens.other_than(token)
            response = await self._sender.send(
                call, method, path, params, content, _bearer(sent, token), reader
            )
        return self._check.value(call, response, expect)

    async def _authenticate(self) -> str:
        """The login endpoint: a new token (for `Tokens`), or why there is none."""
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
        return answer.auth_token


def _call_name(method: str, path: str, params: Mapping[str, str] | None) -> str:
    """How errors name a request: method, path and query (no host, no body)."""
    return f"{method} {path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")


def _bearer(headers: Mapping[str, str], token: str) -> dict[str, str]:
    return {**headers, "Authorization": f"Bearer {token}"}


def _require_id(egress_id: str, operation: str) -> None:
    if not egress_id or not egress_id.strip():
        raise ValueError(f"{operation} needs a non-empty egress id")
