"""NetmakerClient against answers shaped like Netmaker v1.5.1's (see docs/netmaker-api.md).

`FakeNetmaker` is a MockTransport handler with just enough of the server to exercise the client:
login with its 400/401 split, bearer checks with 401, and per-test routes. Two tests use real
sockets instead: connection refused and a read timeout after sending.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import inspect
import json
import logging
import re
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpcore2
import httpx2
import pytest

import kaput_not
import kaput_not.netmaker
import kaput_not.netmaker.sender
from kaput_not.core.model import Egress, EgressSpec, Host, Network, NmNode
from kaput_not.netmaker import (
    ApiError,
    BadResponse,
    ClientSettings,
    CredentialsRejected,
    InvalidSettings,
    NetmakerClient,
    NotJson,
    OutcomeUnknown,
    Unreachable,
)
from kaput_not.netmaker.item_splitter import ItemSplitter
from tests.clock import FakeClock

USERNAME = "kaput"
PASSWORD = "Pa55-w0rd-never-shown"
API = "https://netmaker.test"
IDENTITY = "kaput-not-5d8f7c9b-x2k4q"
LOGIN = "POST /api/users/adm/authenticate"
SETTINGS = ClientSettings(api_url=API, username=USERNAME, password=PASSWORD, identity=IDENTITY)
SPEC = EgressSpec(
    network="kaput",
    name="kaput-not/k8s-worker-1",
    description="managed by kaput-not",
    range="10.42.1.5/24",
    nat=False,
    status=True,
    nodes={"node-1": 500},
)

Route = Callable[[httpx2.Request], httpx2.Response | Awaitable[httpx2.Response]]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(serial: int, exp: float | None) -> str:
    claims: dict[str, object] = {"UserName": USERNAME, "sub": f"user|{USERNAME}", "n": serial}
    if exp is not None:
        claims["exp"] = int(exp)
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    return f"{header}.{b64url(json.dumps(claims).encode())}.{b64url(f'sig{serial}'.encode())}"


def reply(
    payload: object, *, status: int = 200, code: int = 200, message: str = "ok"
) -> httpx2.Response:
    return httpx2.Response(status, json={"Code": code, "Message": message, "Response": payload})


def stored(spec: EgressSpec, egress_id: str) -> dict[str, object]:
    """The egress as Netmaker answers a create: normalised range, fields we ignore included."""
    return {
        "id": egress_id,
        "name": spec.name,
        "network": spec.network,
        "description": spec.description,
        "nodes": dict(spec.nodes),
        "tags": {},
        "range": "10.42.1.0/24",
        "mode": "direct_nat",
        "virtual_range": "",
        "domain": "",
        "domain_ans": [],
        "nat": spec.nat,
        "status": True,
        "created_by": USERNAME,
        "created_at": "2026-06-01T10:00:00Z",
        "updated_at": "2026-06-01T10:00:00Z",
    }


class FakeNetmaker:
    """Login and bearer checks as Netmaker does them; everything else from `routes`."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.prefix = ""  # a path prefix in front of the API, as behind a reverse proxy
        self.lifetime: float | None = 3600.0  # None: tokens whose exp cannot be read
        self.hostile_token = False  # a JWT whose claims nest deeper than any decoder recurses
        self.password = PASSWORD
        self.login_delay = 0.0
        self.login_route: Route | None = None
        self.routes: dict[str, Route] = {}
        self.requests: list[httpx2.Request] = []
        self.issued: list[str] = []
        self.valid: set[str] = set()

    def transport(self) -> httpx2.MockTransport:
        return httpx2.MockTransport(self.handle)

    def key(self, request: httpx2.Request) -> str:
        return f"{request.method} {request.url.path.removeprefix(self.prefix)}"

    def seen(self, key: str) -> list[httpx2.Request]:
        return [r for r in self.requests if self.key(r) == key]

    @property
    def logins(self) -> int:
        return len(self.seen(LOGIN))

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        key = self.key(request)
        if key == LOGIN:
            await asyncio.sleep(self.login_delay)
            route = self.login_route or self.login
        else:
            # Netmaker splits on one space and takes element [1].
            parts = request.headers.get("authorization", "").split(" ")
            if len(parts) < 2 or parts[1] not in self.valid:
                return reply(None, status=401, code=401, message="unauthorized")
            route = self.routes[key]
        answer = route(request)
        return await answer if inspect.isawaitable(answer) else answer

    def login(self, request: httpx2.Request) -> httpx2.Response:
        creds = json.loads(request.content)
        if creds["username"] != USERNAME:
            return reply(None, status=401, code=401, message="record not found")
        if creds["password"] != self.password:
            return reply(None, status=400, code=400, message="incorrect credentials")
        serial = len(self.issued)
        if self.hostile_token:
            nested = b'{"x":' + b"[" * 100_000 + b"]" * 100_000 + b"}"  # past the recursion limit
            token = f"{b64url(b'{}')}.{b64url(nested)}.{b64url(b'sig')}"
        elif self.lifetime is None:
            token = f"opaque-token-{serial}"
        else:
            token = make_jwt(serial, self.clock() + self.lifetime)
        self.issued.append(token)
        self.valid.add(token)
        answer = {"UserName": USERNAME, "AuthToken": token}
        return reply(answer, message=f"W1R3: Device {USERNAME} Authorized")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_780_000_000.0)


@pytest.fixture
def server(clock: FakeClock) -> FakeNetmaker:
    fake = FakeNetmaker(clock)
    fake.routes["GET /api/hosts"] = lambda _: httpx2.Response(200, json=[])
    return fake


@pytest.fixture
async def client(server: FakeNetmaker, clock: FakeClock) -> AsyncIterator[NetmakerClient]:
    async with NetmakerClient(SETTINGS, transport=server.transport(), clock=clock) as client:
        yield client


def chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def assert_reported(exc: BaseException, call: str, *fragments: str, secrets: tuple[str, ...] = ()):
    """One line naming the call and the cause, and no secret anywhere in the chain."""
    text = str(exc)
    assert len(text.splitlines()) == 1, text
    assert text.startswith(f"{call}: "), text
    for fragment in fragments:
        assert fragment in text, text
    assert "Bearer" not in text
    for link in chain(exc):
        for shown in (str(link), repr(link)):
            for secret in (PASSWORD, *secrets):
                assert secret not in shown, shown


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("", "is empty", id="empty"),
        pytest.param("netmaker.example.com", "no scheme", id="no-scheme"),
        pytest.param("localhost:8081", "no scheme", id="host-port-no-scheme"),
        pytest.param("ftp://netmaker.example.com", "only http and https", id="ftp"),
        pytest.param("https://", "no host", id="no-host"),
        pytest.param("https://:8081/api", "no host", id="port-only"),
        pytest.param("https://netmaker.example.com:99999", "cannot be parsed", id="bad-port"),
        pytest.param("https://netmaker.example.com:80x", "cannot be parsed", id="port-junk"),
        pytest.param("https://netmaker.example.com/?x=1", "query or fragment", id="query"),
        pytest.param("https://netmaker.example.com#top", "query or fragment", id="fragment"),
        pytest.param("https://netmaker.example.com/ api", "whitespace", id="trailing-junk"),
        pytest.param("https://netmaker.example.com\n", "whitespace", id="newline"),
        pytest.param("https://net*maker.example.com", "invalid host", id="bad-host"),
        pytest.param(f"https://admin:{PASSWORD}@nm.example.com", "credentials", id="userinfo"),
    ],
)
def test_malformed_api_url_is_one_clear_line(url: str, problem: str) -> None:
    settings = dataclasses.replace(SETTINGS, api_url=url)
    with pytest.raises(InvalidSettings) as caught:
        settings.validate()
    text = str(caught.value)
    assert len(text.splitlines()) == 1
    assert text.startswith("NETMAKER_API_URL ")
    assert problem in text
    assert PASSWORD not in text
    with pytest.raises(InvalidSettings):
        NetmakerClient(settings)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081/api/hosts"),
        ("https://netmaker.example.com/", "https://netmaker.example.com/api/hosts"),
        ("https://[fd00::1]:8081", "https://[fd00::1]:8081/api/hosts"),
        ("https://example.com/netmaker/", "https://example.com/netmaker/api/hosts"),
    ],
)
async def test_well_formed_api_url_is_used_as_base(
    url: str, expected: str, server: FakeNetmaker, clock: FakeClock
) -> None:
    settings = dataclasses.replace(SETTINGS, api_url=url)
    server.prefix = httpx2.URL(url).path.rstrip("/")
    async with NetmakerClient(settings, transport=server.transport(), clock=clock) as client:
        await client.list_hosts()
    assert str(server.requests[-1].url) == expected


def test_missing_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "ca.pem"
    settings = dataclasses.replace(SETTINGS, ca_file=str(missing))
    with pytest.raises(InvalidSettings) as caught:
        NetmakerClient(settings)
    text = str(caught.value)
    assert len(text.splitlines()) == 1
    assert text.startswith(f"NETMAKER_CA_FILE '{missing}' cannot be used")
    assert "No such file" in text


def test_ca_file_without_a_certificate_is_a_configuration_error(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(InvalidSettings, match=r"^NETMAKER_CA_FILE .* cannot be used"):
        NetmakerClient(dataclasses.replace(SETTINGS, ca_file=str(junk)))


def test_ca_file_and_skip_verify_together_are_refused() -> None:
    settings = dataclasses.replace(SETTINGS, ca_file="/ca.pem", insecure_skip_tls_verify=True)
    with pytest.raises(InvalidSettings, match="pick one"):
        settings.validate()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"username": ""}, "NETMAKER_USERNAME is empty"),
        ({"password": ""}, "NETMAKER_PASSWORD is empty"),
        ({"timeout_seconds": 0.0}, "timeout_seconds"),
        ({"token_refresh_margin_seconds": -1.0}, "token_refresh_margin_seconds"),
        ({"identity": "pod\r\nX-Injected: 1"}, "control characters"),
    ],
)
def test_other_unusable_settings_are_refused(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidSettings, match=problem):
        dataclasses.replace(SETTINGS, **change).validate()


def test_settings_repr_hides_the_password() -> None:
    shown = repr(SETTINGS)
    assert PASSWORD not in shown
    assert "password=<hidden>" in shown
    assert API in shown


async def test_skipping_tls_verification_warns_once(
    caplog: pytest.LogCaptureFixture, server: FakeNetmaker
) -> None:
    settings = dataclasses.replace(SETTINGS, insecure_skip_tls_verify=True)
    with caplog.at_level(logging.WARNING, logger="kaput_not.netmaker"):
        async with NetmakerClient(settings, transport=server.transport()) as client:
            await client.list_hosts()
            await client.list_hosts()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "NETMAKER_INSECURE_SKIP_TLS_VERIFY" in warnings[0].getMessage()


@pytest.mark.parametrize(
    ("url", "warned"),
    [
        ("http://netmaker.example.com", True),
        ("http://10.0.0.5:8081", True),
        ("http://127.0.0.1:8081", False),
        ("http://[::1]:8081", False),
        ("http://localhost:8081", False),
        ("https://netmaker.example.com", False),
    ],
)
async def test_an_http_url_warns_that_the_password_travels_unencrypted(
    caplog: pytest.LogCaptureFixture, server: FakeNetmaker, url: str, warned: bool
) -> None:
    """Issue 17: an http:// URL sent the password in clear without a word. Loopback is
    exempt: those bytes never leave the machine."""
    settings = dataclasses.replace(SETTINGS, api_url=url)
    with caplog.at_level(logging.WARNING, logger="kaput_not.netmaker"):
        async with NetmakerClient(settings, transport=server.transport()) as client:
            await client.list_hosts()
            await client.list_hosts()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == (1 if warned else 0), warnings
    if warned:
        assert "NETMAKER_API_URL" in warnings[0]
        assert "unencrypted" in warnings[0]
        assert PASSWORD not in warnings[0]


def test_public_surface_is_small() -> None:
    assert sorted(kaput_not.netmaker.__all__) == [
        "ApiError",
        "BadResponse",
        "ClientSettings",
        "CredentialsRejected",
        "InvalidSettings",
        "NetmakerClient",
        "NetmakerError",
        "NotJson",
        "OnRequest",
        "OutcomeUnknown",
        "Unreachable",
    ]


# -- login ---------------------------------------------------------------------------------------


async def test_login_sends_credentials_and_application_name_only(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    await client.login()
    [request] = server.requests
    assert json.loads(request.content) == {"username": USERNAME, "password": PASSWORD}
    assert request.headers["x-application-name"] == "kaput-not"
    assert request.headers["content-type"] == "application/json"
    assert "from-ui" not in request.headers
    assert "authorization" not in request.headers


async def test_wrong_password_is_rejected_credentials_without_retry(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.password = "the-real-one"
    with pytest.raises(CredentialsRejected) as caught:
        await client.list_hosts()
    assert_reported(
        caught.value,
        LOGIN,
        "HTTP 400 incorrect credentials",
        "NETMAKER_USERNAME / NETMAKER_PASSWORD",
    )
    assert not caught.value.retryable
    assert isinstance(caught.value.__cause__, ApiError)
    assert server.logins == 1
    assert server.seen("GET /api/hosts") == []


async def test_unknown_user_is_rejected_credentials(server: FakeNetmaker, clock: FakeClock) -> None:
    settings = dataclasses.replace(SETTINGS, username="nobody")
    async with NetmakerClient(settings, transport=server.transport(), clock=clock) as client:
        with pytest.raises(CredentialsRejected) as caught:
            await client.list_hosts()
    assert_reported(caught.value, LOGIN, "HTTP 401 record not found", "NETMAKER_PASSWORD")
    assert caught.value.status == 401
    assert not caught.value.retryable


async def test_mfa_user_without_auth_token_is_rejected_credentials(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    pre_auth = make_jwt(99, exp=None)
    server.login_route = lambda _: reply(
        {"user_name": USERNAME, "pre_auth_token": pre_auth}, message="W1R3: TOTP required"
    )
    with pytest.raises(CredentialsRejected) as caught:
        await client.list_hosts()
    assert_reported(caught.value, LOGIN, "without an AuthToken", "MFA", secrets=(pre_auth,))
    assert caught.value.status == 200
    assert server.seen("GET /api/hosts") == []


async def test_server_error_on_login_stays_a_retryable_api_error(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.login_route = lambda _: reply(
        None, status=500, code=500, message="W1R3: It's not you it's me."
    )
    with pytest.raises(ApiError) as caught:
        await client.list_hosts()
    assert not isinstance(caught.value, CredentialsRejected)
    assert caught.value.retryable
    assert_reported(caught.value, LOGIN, "HTTP 500: W1R3: It's not you it's me.")


# -- the token -----------------------------------------------------------------------------------


async def test_token_is_cached_across_calls(server: FakeNetmaker, client: NetmakerClient) -> None:
    for _ in range(5):
        await client.list_hosts()
    assert server.logins == 1
    assert len(server.seen("GET /api/hosts")) == 5


async def test_token_is_refreshed_before_it_expires(
    server: FakeNetmaker, client: NetmakerClient, clock: FakeClock
) -> None:
    await client.list_hosts()
    clock.now += 3600 - 61  # 61 s left: outside the 60 s margin
    await client.list_hosts()
    assert server.logins == 1
    clock.now += 2  # 59 s left
    await client.list_hosts()
    assert server.logins == 2
    last = server.seen("GET /api/hosts")[-1]
    assert last.headers["authorization"] == f"Bearer {server.issued[1]}"
    # The old token was never refused: the refresh came first.
    assert len(server.seen("GET /api/hosts")) == 3


async def test_short_lived_token_is_refreshed_halfway(
    server: FakeNetmaker, client: NetmakerClient, clock: FakeClock
) -> None:
    server.lifetime = 60.0  # as short as the margin: refreshing at exp - 60 would loop
    await client.list_hosts()
    clock.now += 29
    await client.list_hosts()
    assert server.logins == 1
    clock.now += 2
    await client.list_hosts()
    assert server.logins == 2


async def test_token_without_readable_exp_is_used_until_refused(
    server: FakeNetmaker, client: NetmakerClient, clock: FakeClock
) -> None:
    server.lifetime = None
    await client.list_hosts()
    clock.now += 10 * 86400
    await client.list_hosts()
    assert server.logins == 1
    server.valid.clear()
    await client.list_hosts()
    assert server.logins == 2


async def test_a_token_with_hostile_claims_is_used_like_an_unreadable_one(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.hostile_token = True
    assert await client.list_hosts() == []  # no RecursionError out of the login
    assert server.logins == 1


async def test_401_logs_in_again_once_then_succeeds(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    await client.list_hosts()
    server.valid.clear()  # the token was revoked, or the server's database reset
    assert await client.list_hosts() == []
    assert server.logins == 2
    retried = server.seen("GET /api/hosts")[-1]
    assert retried.headers["authorization"] == f"Bearer {server.issued[1]}"


async def test_second_401_is_an_error_not_a_loop(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/hosts"] = lambda _: reply(
        None, status=401, code=401, message="user account disabled"
    )
    with pytest.raises(ApiError) as caught:
        await client.list_hosts()
    assert_reported(
        caught.value,
        "GET /api/hosts",
        "HTTP 401: user account disabled",
        secrets=tuple(server.issued),
    )
    assert caught.value.status == 401
    assert not caught.value.retryable
    assert server.logins == 2
    assert len(server.seen("GET /api/hosts")) == 2


async def test_concurrent_first_calls_share_one_login(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.login_delay = 0.01
    results = await asyncio.gather(*(client.list_hosts() for _ in range(8)))
    assert results == [[]] * 8
    assert server.logins == 1


async def test_concurrent_callers_share_one_failed_login(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.password = "changed"
    server.login_delay = 0.01
    results = await asyncio.gather(*(client.list_hosts() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, CredentialsRejected) for result in results)
    assert server.logins == 1


async def test_authorization_is_bearer_with_exactly_one_space(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    await client.list_hosts()
    [request] = server.seen("GET /api/hosts")
    assert request.headers["authorization"] == f"Bearer {server.issued[0]}"
    assert request.headers["authorization"].count(" ") == 1


async def test_user_agent_names_product_version_and_identity(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    await client.list_hosts()
    for request in server.requests:
        expected = f"kaput-not/{kaput_not.__version__} ({IDENTITY})"
        assert request.headers["user-agent"] == expected


# -- the three-level check -----------------------------------------------------------------------

PROXY_PAGE = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n" * 20
)


async def test_html_from_a_proxy_is_not_json(server: FakeNetmaker, client: NetmakerClient) -> None:
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        502, headers={"content-type": "text/html"}, content=PROXY_PAGE
    )
    with pytest.raises(NotJson) as caught:
        await client.list_hosts()
    error = caught.value
    assert_reported(
        error, "GET /api/hosts", "HTTP 502 text/html, not JSON", "502 Bad Gateway", "proxy"
    )
    assert isinstance(error, ApiError)
    assert (error.status, error.code) == (502, None)
    assert error.retryable
    assert len(error.server_message) <= 82  # 80 characters and their quotes


async def test_html_with_200_points_at_the_url(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        200, headers={"content-type": "text/html; charset=utf-8"}, content=b"<!doctype html>"
    )
    with pytest.raises(NotJson) as caught:
        await client.list_hosts()
    assert_reported(caught.value, "GET /api/hosts", "HTTP 200 text/html", "NETMAKER_API_URL")
    assert not caught.value.retryable


async def test_truncated_json_is_a_bad_response(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        200,
        headers={"content-type": "application/json"},
        content=b'[{"id":"h1","name":"w1","nodes":["n1"]},{"id":"h2","na',
    )
    with pytest.raises(BadResponse) as caught:
        await client.list_hosts()
    assert_reported(caught.value, "GET /api/hosts", "HTTP 200", "invalid JSON", "truncated")
    assert caught.value.retryable


SNIFFED = {"content-type": "text/plain; charset=utf-8"}


async def test_json_sent_as_text_plain_is_read_by_its_body(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    # The real v1.5.1 server answers GET /api/networks this way (Go sniffs the type).
    body = b'[{"id":"5b1c","netid":"kaput","addressrange":"100.64.0.0/16"}]\n'
    server.routes["GET /api/networks"] = lambda _: httpx2.Response(
        200, headers=SNIFFED, content=body
    )
    server.routes["GET /api/v1/egress"] = lambda _: httpx2.Response(
        200, headers=SNIFFED, content=b'{"Code":200,"Message":"fetched","Response":[]}'
    )
    assert await client.list_networks() == [Network("kaput", ("100.64.0.0/16",))]
    assert await client.list_egress("kaput") == []


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"Server is up and running!!", "not JSON"),
        (b"404 page not found\n", "not JSON"),
        (b"  <!doctype html><html></html>", "not JSON"),
        (b'[{"id":"5b1c","netid":', "invalid JSON"),
        (b'{"Code":200}', "unexpected JSON"),
    ],
    ids=["text", "router-404-text", "html", "truncated", "object-for-array"],
)
async def test_a_text_plain_body_that_is_not_the_expected_json_is_one_clear_error(
    content: bytes, expected: str, server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/networks"] = lambda _: httpx2.Response(
        200, headers=SNIFFED, content=content
    )
    with pytest.raises((NotJson, BadResponse)) as caught:
        await client.list_networks()
    assert_reported(caught.value, "GET /api/networks", "HTTP 200", expected)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "headers", [{}, {"content-type": "application/json"}], ids=["no-type", "json-type"]
)
async def test_empty_body_from_nodes_is_a_bad_response(
    headers: dict[str, str], server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(200, headers=headers)
    with pytest.raises(BadResponse) as caught:
        await client.list_nodes()
    assert_reported(caught.value, "GET /api/nodes", "empty body")


async def test_wrong_shape_is_a_bad_response(server: FakeNetmaker, client: NetmakerClient) -> None:
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(200, json=[{"id": "n1"}])
    with pytest.raises(BadResponse) as caught:
        await client.list_nodes()
    assert_reported(caught.value, "GET /api/nodes", "unexpected JSON", "hostid")


async def test_an_item_read_equal_to_one_held_is_returned_as_that_one(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    good = {"id": "n", "hostid": "h", "network": "mesh", "pendingdelete": False, "is_static": False}
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(
        200, json=[{**good, "id": "n1"}, {**good, "id": "n2", "pendingdelete": True}]
    )
    first = await client.list_nodes()
    again = await client.list_nodes(held={n.id: n for n in first})
    assert again == first
    assert again[0] is first[0]  # unchanged: the one held
    # Changed since: the new one.
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(
        200, json=[{**good, "id": "n1"}, {**good, "id": "n2"}]
    )
    changed = await client.list_nodes(held={n.id: n for n in first})
    assert changed[0] is first[0]
    assert changed[1] is not first[1]
    assert not changed[1].pending_delete


async def test_a_wrong_item_deep_in_a_long_list_is_named_by_its_place(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    good = {"id": "n", "hostid": "h", "network": "mesh", "pendingdelete": False, "is_static": False}
    nodes = [{**good, "id": f"n{i}"} for i in range(2500)]
    nodes[2345]["hostid"] = 7
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(200, json=nodes)
    with pytest.raises(BadResponse) as caught:
        await client.list_nodes()
    assert_reported(caught.value, "GET /api/nodes", "unexpected JSON in item 2345", "hostid")
    nodes[2345]["hostid"] = "h"
    assert [n.id for n in await client.list_nodes()] == [f"n{i}" for i in range(2500)]


async def test_code_other_than_200_inside_a_200_is_an_api_error(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/v1/egress"] = lambda _: reply(
        None, code=500, message="error listing egress resourcedatabase is locked"
    )
    with pytest.raises(ApiError) as caught:
        await client.list_egress("kaput")
    error = caught.value
    assert_reported(error, "GET /api/v1/egress?network=kaput", "HTTP 200 with Code 500", "locked")
    assert (error.status, error.code) == (200, 500)
    assert error.retryable


async def test_error_code_in_an_object_where_an_array_was_expected(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/hosts"] = lambda _: reply(None, code=403, message="forbidden")
    with pytest.raises(ApiError) as caught:
        await client.list_hosts()
    assert (caught.value.code, caught.value.server_message) == (403, "forbidden")


async def test_client_error_is_not_retryable(server: FakeNetmaker, client: NetmakerClient) -> None:
    server.routes["POST /api/v1/egress"] = lambda _: reply(
        None, status=400, code=400, message="can only set one routing node on CE"
    )
    with pytest.raises(ApiError) as caught:
        await client.create_egress(SPEC)
    assert_reported(caught.value, "POST /api/v1/egress", "HTTP 400: can only set one routing node")
    assert not caught.value.retryable


@pytest.mark.parametrize(
    "password", ['pa"ss-word-quote', "pa\\ss-word-backslash", "pa\tss-word-tab", "pa<ss>&word"]
)
@pytest.mark.parametrize("form", ["text-echo", "envelope-echo"])
async def test_a_login_body_echoed_back_never_shows_the_password(
    server: FakeNetmaker, clock: FakeClock, password: str, form: str
) -> None:
    """Issue 9, item 7: the JSON-escaped form of the password was not redacted."""

    def echo(request: httpx2.Request) -> httpx2.Response:
        sent = request.content.decode()
        if form == "text-echo":
            page = f"bad gateway: upstream refused {sent}"
            return httpx2.Response(502, headers={"content-type": "text/plain"}, content=page)
        return reply(None, status=500, code=500, message=f"cannot decode {sent}")

    server.login_route = echo
    settings = dataclasses.replace(SETTINGS, password=password)
    async with NetmakerClient(settings, transport=server.transport(), clock=clock) as client:
        with pytest.raises(ApiError) as caught:
            await client.list_hosts()
    escaped = json.dumps(password)[1:-1]
    for link in chain(caught.value):
        for shown in (str(link), repr(link)):
            assert password not in shown
            assert escaped not in shown, shown
    assert "<hidden>" in str(caught.value)


async def test_server_text_echoing_a_secret_is_redacted(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    def echo(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["authorization"].split(" ")[1]
        echoed = f"bad token {token} for {PASSWORD}"
        return reply(None, status=500, code=500, message=echoed)

    server.routes["GET /api/hosts"] = echo
    with pytest.raises(ApiError) as caught:
        await client.list_hosts()
    assert_reported(caught.value, "GET /api/hosts", "<hidden>", secrets=tuple(server.issued))


async def test_redirect_is_reported_with_its_target(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        308, headers={"location": "https://api.netmaker.test/api/hosts"}
    )
    with pytest.raises(NotJson) as caught:
        await client.list_hosts()
    assert_reported(caught.value, "GET /api/hosts", "HTTP 308", "https://api.netmaker.test")


# -- transport failures --------------------------------------------------------------------------


@pytest.mark.usefixtures("no_proxy")
async def test_connection_refused_is_unreachable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = dataclasses.replace(SETTINGS, api_url=f"http://127.0.0.1:{port}")
    async with NetmakerClient(settings) as client:
        with pytest.raises(Unreachable) as caught:
            await client.list_hosts()
    assert_reported(caught.value, LOGIN, "cannot connect to", f"127.0.0.1:{port}")
    assert caught.value.retryable
    # Our own transport is driven without httpx2's client, so the cause is httpcore2's error.
    assert isinstance(caught.value.__cause__, httpcore2.ConnectError)


async def test_a_proxy_from_the_environment_carries_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """HTTP_PROXY is honoured: the requests reach the proxy, for the Netmaker URL."""
    seen: list[bytes] = []
    finished = asyncio.Event()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            length = re.search(rb"(?i)content-length: *(\d+)", head)
            await reader.readexactly(int(length.group(1)) if length else 0)
            seen.append(head.split(b"\r\n", 1)[0])
            login = b"/api/users/adm/authenticate" in seen[-1]
            body = (
                b'{"Code":200,"Message":"","Response":{"AuthToken":"t","UserName":"u"}}'
                if login
                else b"[]"
            )
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
            writer.write(b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
        writer.close()
        await writer.wait_closed()
        finished.set()

    listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    for name in ("HTTPS_PROXY", "ALL_PROXY", "https_proxy", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    settings = dataclasses.replace(SETTINGS, api_url="http://netmaker.invalid:8081")
    try:
        async with NetmakerClient(settings) as client:
            assert await client.list_hosts() == []
        await asyncio.wait_for(finished.wait(), 5)  # the proxy saw the connection close
    finally:
        listener.close()
        await listener.wait_closed()
    assert seen == [
        b"POST http://netmaker.invalid:8081/api/users/adm/authenticate HTTP/1.1",
        b"GET http://netmaker.invalid:8081/api/hosts HTTP/1.1",
    ]


class SilentServer:
    """A real HTTP server that answers logins and then never answers anything else."""

    def __init__(self) -> None:
        self.received: list[bytes] = []
        self.release = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                line = head.split(b"\r\n")[0]
                if b"/api/users/adm/authenticate" not in line:
                    self.received.append(line)
                    await self.release.wait()
                    return
                token = make_jwt(0, exp=None)
                body = json.dumps({"Code": 200, "Message": "", "Response": {"AuthToken": token}})
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.mark.usefixtures("no_proxy")
async def test_read_timeout_after_sending_is_outcome_unknown() -> None:
    silent = SilentServer()
    tcp = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    port = tcp.sockets[0].getsockname()[1]
    settings = dataclasses.replace(
        SETTINGS, api_url=f"http://127.0.0.1:{port}", timeout_seconds=0.2
    )
    try:
        async with NetmakerClient(settings) as client:
            with pytest.raises(OutcomeUnknown) as caught:
                await client.update_egress("e-1", SPEC)
    finally:
        silent.release.set()
        tcp.close()
        await tcp.wait_closed()
    assert silent.received == [b"PUT /api/v1/egress HTTP/1.1"]
    # The whole-request deadline (issue 17) now passes first, naming the phase it cut.
    assert_reported(caught.value, "PUT /api/v1/egress", "waiting for the answer", "may or may not")
    assert caught.value.retryable


class StuckTransport(httpx2.AsyncBaseTransport):
    """Reports httpcore2's trace events up to `events`, as its connection does, then hangs."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        trace = request.extensions["trace"]
        for event in self.events:
            await trace(event, {})
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


@pytest.mark.parametrize(
    ("events", "expected", "fragments"),
    [
        pytest.param(
            ["connection.connect_tcp.started"],
            Unreachable,
            ("nothing sent within 0.2 s", "while connecting"),
            id="stuck-connecting",
        ),
        pytest.param(
            [
                "connection.connect_tcp.started",
                "connection.connect_tcp.complete",
                "http11.send_request_headers.started",
            ],
            OutcomeUnknown,
            ("no complete answer within 0.2 s", "sending the request", "may or may not"),
            id="stuck-sending",
        ),
        pytest.param(
            [], OutcomeUnknown, ("no complete answer", "may or may not"), id="progress-unknown"
        ),
    ],
)
async def test_the_whole_request_deadline_says_whether_anything_was_sent(
    events: list[str], expected: type[Exception], fragments: tuple[str, ...], clock: FakeClock
) -> None:
    """Issue 17: every request has one deadline; past it, Unreachable if nothing was sent
    (the server state did not change), OutcomeUnknown once the request may have gone out."""
    settings = dataclasses.replace(SETTINGS, timeout_seconds=0.2)
    async with NetmakerClient(settings, transport=StuckTransport(events), clock=clock) as client:
        with pytest.raises(expected) as caught:
            await asyncio.wait_for(client.login(), 2.0)
    assert type(caught.value) is expected
    assert_reported(caught.value, LOGIN, *fragments)


@pytest.mark.parametrize("header", ["location", "content-type"], ids=["location", "content-type"])
async def test_response_headers_quoted_in_an_error_are_redacted(
    server: FakeNetmaker, client: NetmakerClient, header: str
) -> None:
    """Issue 17: a Location or Content-Type reflecting the Authorization header or the login
    body put the whole Bearer token or the password into the error line."""

    def reflect(request: httpx2.Request) -> httpx2.Response:
        token = request.headers["authorization"].split(" ")[1]
        reflected = f"x/{token}/{urllib.parse.quote(PASSWORD)}/{PASSWORD}"
        if header == "location":
            return httpx2.Response(302, headers={"location": f"https://sso.test/{reflected}"})
        return httpx2.Response(502, headers={"content-type": f"text/html; {reflected}"})

    server.routes["GET /api/hosts"] = reflect
    with pytest.raises(NotJson) as caught:
        await client.list_hosts()
    assert_reported(caught.value, "GET /api/hosts", "<hidden>", secrets=tuple(server.issued))
    assert PASSWORD not in caught.value.content_type
    for token in server.issued:
        assert token not in caught.value.content_type


@pytest.mark.parametrize(
    ("status", "content_type"),
    [(502, "text/html"), (500, "application/json"), (200, "text/html")],
    ids=["502-html", "500-json", "200-html"],
)
async def test_a_huge_error_page_is_read_only_up_to_the_cap(
    server: FakeNetmaker, client: NetmakerClient, status: int, content_type: str
) -> None:
    """Issue 17: one 300 MB error page added 302 MB to peak memory. An error's body is read up
    to ERROR_BODY_CAP; the rest is never pulled, and the message says it was cut."""
    pulled = 0
    chunk = (b"{" if "json" in content_type else b"<") + b"x" * (16 * 1024 - 1)

    async def page() -> AsyncIterator[bytes]:
        nonlocal pulled
        for _ in range(2048):  # 32 MB
            pulled += len(chunk)
            yield chunk

    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        status, headers={"content-type": content_type}, content=page()
    )
    with pytest.raises(ApiError) as caught:
        await client.list_hosts()
    assert pulled <= kaput_not.netmaker.sender.ERROR_BODY_CAP + len(chunk), pulled
    assert_reported(caught.value, "GET /api/hosts", f"HTTP {status}", "(truncated)")


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        pytest.param(httpx2.ConnectError("[Errno 111] refused"), Unreachable, id="connect"),
        pytest.param(httpx2.ConnectTimeout("timed out"), Unreachable, id="connect-timeout"),
        pytest.param(httpx2.PoolTimeout("no connection"), Unreachable, id="pool-timeout"),
        pytest.param(httpx2.ReadTimeout(""), OutcomeUnknown, id="read-timeout"),
        pytest.param(httpx2.WriteTimeout(""), OutcomeUnknown, id="write-timeout"),
        pytest.param(httpx2.ReadError("connection reset by peer"), OutcomeUnknown, id="reset"),
        pytest.param(
            httpx2.RemoteProtocolError("peer closed connection without sending complete body"),
            OutcomeUnknown,
            id="closed-mid-response",
        ),
    ],
)
async def test_transport_failures_map_to_the_tree(
    raised: Exception, expected: type[Exception], server: FakeNetmaker, client: NetmakerClient
) -> None:
    def fail(_: httpx2.Request) -> httpx2.Response:
        raise raised

    server.routes["DELETE /api/v1/egress"] = fail
    with pytest.raises(expected) as caught:
        await client.delete_egress("e-1")
    assert type(caught.value) is expected
    assert caught.value.__cause__ is raised
    assert_reported(caught.value, "DELETE /api/v1/egress?id=e-1", secrets=tuple(server.issued))


async def test_tls_failure_is_unreachable_with_a_ca_hint(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    def fail(_: httpx2.Request) -> httpx2.Response:
        cause = ssl.SSLCertVerificationError("certificate verify failed: self-signed certificate")
        raise httpx2.ConnectError("certificate verify failed") from cause

    server.login_route = fail
    with pytest.raises(Unreachable) as caught:
        await client.list_hosts()
    assert_reported(caught.value, LOGIN, "TLS", "NETMAKER_CA_FILE", "INSECURE_SKIP_TLS_VERIFY")


# -- endpoints -----------------------------------------------------------------------------------


async def test_lists_convert_to_core_types(server: FakeNetmaker, client: NetmakerClient) -> None:
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(
        200,
        json=[
            {"id": "h1", "name": "w1", "nodes": ["n1"]},
            {"id": "h2", "name": "w2", "nodes": None},
        ],
    )
    server.routes["GET /api/nodes"] = lambda _: httpx2.Response(
        200,
        json=[
            {
                "id": "n1",
                "hostid": "h1",
                "network": "kaput",
                "pendingdelete": True,
                "is_static": False,
            }
        ],
    )
    server.routes["GET /api/networks"] = lambda _: httpx2.Response(
        200, json=[{"netid": "kaput", "addressrange": "100.64.0.0/16"}]
    )
    assert await client.list_hosts() == [Host("h1", "w1", ("n1",)), Host("h2", "w2", ())]
    assert await client.list_nodes() == [NmNode("n1", "h1", "kaput", pending_delete=True)]
    assert await client.list_networks() == [Network("kaput", ("100.64.0.0/16",))]


async def test_long_lists_convert_whole_and_in_order_while_other_tasks_run(
    server: FakeNetmaker, client: NetmakerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    hosts = [{"id": f"h{i}", "name": f"w{i}", "nodes": [f"n{i}"]} for i in range(2500)]
    server.routes["GET /api/hosts"] = lambda _: httpx2.Response(200, json=hosts)
    ticks = 0
    seen_at: list[int] = []  # the other task's progress when each host was converted
    convert = kaput_not.netmaker.wire.host_from_wire

    def counting(host: Any) -> Host:
        seen_at.append(ticks)
        return convert(host)

    async def ticking() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0)
            ticks += 1

    monkeypatch.setattr(kaput_not.netmaker.wire, "host_from_wire", counting)
    other = asyncio.create_task(ticking())
    listed = await client.list_hosts()
    other.cancel()
    assert listed == [Host(f"h{i}", f"w{i}", (f"n{i}",)) for i in range(2500)]
    # The other task ran between slices of the conversion, not only before and after it.
    assert len(set(seen_at)) >= 3


async def test_list_egress_asks_for_one_network(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["GET /api/v1/egress"] = lambda _: reply([stored(SPEC, "e-1")])
    [egress] = await client.list_egress("kaput")
    assert egress.id == "e-1"
    assert egress.range == "10.42.1.0/24"
    assert server.seen("GET /api/v1/egress")[0].url.params["network"] == "kaput"


async def test_create_sends_the_exact_body_and_returns_what_was_stored(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["POST /api/v1/egress"] = lambda _: reply(stored(SPEC, "e-new"))
    created = await client.create_egress(SPEC)
    [request] = server.seen("POST /api/v1/egress")
    body = json.loads(request.content)
    assert body == {
        "id": "",
        "name": "kaput-not/k8s-worker-1",
        "network": "kaput",
        "description": "managed by kaput-not",
        "nodes": {"node-1": 500},
        "tags": {},
        "range": "10.42.1.5/24",
        "domain": "",
        "nat": False,
        "mode": "",
        "status": True,
        "is_internet_gateway": False,
    }
    assert type(body["nodes"]["node-1"]) is int
    assert body["status"] is True
    assert body["nat"] is False
    assert request.headers["content-type"] == "application/json"
    assert created == Egress(
        id="e-new",
        network="kaput",
        name=SPEC.name,
        description=SPEC.description,
        range="10.42.1.0/24",
        nat=False,
        status=True,
        nodes={"node-1": 500},
    )


async def test_update_sends_the_id_and_full_state(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["PUT /api/v1/egress"] = lambda _: reply(stored(SPEC, "e-1"))
    updated = await client.update_egress("e-1", SPEC)
    body = json.loads(server.seen("PUT /api/v1/egress")[0].content)
    assert body["id"] == "e-1"
    assert (body["status"], body["nodes"]) == (True, {"node-1": 500})
    assert updated.id == "e-1"


@pytest.mark.parametrize("egress_id", ["", "   "], ids=["empty", "blank"])
async def test_update_without_id_is_refused_before_any_request(
    egress_id: str, server: FakeNetmaker, client: NetmakerClient
) -> None:
    with pytest.raises(ValueError, match="non-empty egress id"):
        await client.update_egress(egress_id, SPEC)
    assert server.requests == []


@pytest.mark.parametrize("egress_id", ["", "   "], ids=["empty", "blank"])
async def test_delete_without_id_is_refused_before_any_request(
    egress_id: str, server: FakeNetmaker, client: NetmakerClient
) -> None:
    with pytest.raises(ValueError, match="non-empty egress id"):
        await client.delete_egress(egress_id)
    assert server.requests == []


async def test_delete_sends_the_id_as_a_query(server: FakeNetmaker, client: NetmakerClient) -> None:
    server.routes["DELETE /api/v1/egress"] = lambda _: reply(
        None, message="deleted egress resource"
    )
    await client.delete_egress("e-1")
    [request] = server.seen("DELETE /api/v1/egress")
    assert request.url.params["id"] == "e-1"
    assert request.content == b""


async def test_delete_of_an_unknown_id_is_success(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["DELETE /api/v1/egress"] = lambda _: reply(
        None, status=400, code=400, message="record not found"
    )
    await client.delete_egress("already-gone")
    assert len(server.seen("DELETE /api/v1/egress")) == 1


async def test_delete_refused_for_another_reason_is_an_error(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["DELETE /api/v1/egress"] = lambda _: reply(
        None, status=400, code=400, message="id is required"
    )
    with pytest.raises(ApiError, match="id is required"):
        await client.delete_egress("e-1")


async def test_delete_on_a_missing_endpoint_is_an_error(
    server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["DELETE /api/v1/egress"] = lambda _: httpx2.Response(
        404, headers={"content-type": "text/plain"}, content=b"404 page not found\n"
    )
    with pytest.raises(NotJson) as caught:
        await client.delete_egress("e-1")
    assert_reported(caught.value, "DELETE /api/v1/egress?id=e-1", "HTTP 404 text/plain", "404 page")


async def test_list_egress_needs_a_network(server: FakeNetmaker, client: NetmakerClient) -> None:
    with pytest.raises(ValueError, match="network"):
        await client.list_egress("")
    assert server.requests == []


# -- observability -------------------------------------------------------------------------------


async def test_on_request_gets_method_endpoint_status_and_seconds(
    server: FakeNetmaker, clock: FakeClock
) -> None:
    seen: list[tuple[str, str, int | None, float]] = []

    def record(method: str, endpoint: str, status: int | None, seconds: float) -> None:
        seen.append((method, endpoint, status, seconds))

    def refuse(_: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("")

    server.routes["DELETE /api/v1/egress"] = lambda _: reply(None)
    server.routes["GET /api/nodes"] = refuse
    transport = server.transport()
    async with NetmakerClient(SETTINGS, transport=transport, clock=clock, on_request=record) as nm:
        await nm.delete_egress("e-1")
        with pytest.raises(OutcomeUnknown):
            await nm.list_nodes()
    assert [(m, e, s) for m, e, s, _ in seen] == [
        ("POST", "/api/users/adm/authenticate", 200),
        ("DELETE", "/api/v1/egress", 200),
        ("GET", "/api/nodes", None),
    ]
    assert all(isinstance(sec, float) and sec >= 0 for *_, sec in seen)


async def test_debug_log_has_each_call_but_no_secret(
    caplog: pytest.LogCaptureFixture, server: FakeNetmaker, client: NetmakerClient
) -> None:
    server.routes["PUT /api/v1/egress"] = lambda _: reply(None, status=400, code=400, message="x")
    with caplog.at_level(logging.DEBUG):
        await client.list_hosts()
        with pytest.raises(ApiError):
            await client.update_egress("e-1", SPEC)
    assert re.search(r"POST /api/users/adm/authenticate -> 200 in \d+ ms", caplog.text)
    assert re.search(r"GET /api/hosts -> 200 in \d+ ms", caplog.text)
    assert re.search(r"PUT /api/v1/egress -> 400 in \d+ ms", caplog.text)
    assert PASSWORD not in caplog.text
    assert server.issued[0] not in caplog.text
    assert "Bearer" not in caplog.text


async def test_client_repr_has_no_secret(client: NetmakerClient) -> None:
    await client.login()
    assert repr(client) == f"NetmakerClient('{API}')"


# -- lists cut into items as they arrive (netmaker/item_splitter.py) -----------------------------

_RULE = {
    "network": "kaput",
    "name": "w pods (1/1)",
    "description": "managed by kaput-not",
    "nodes": {"node-1": 500},
    "range": "10.42.0.0/24",
    "nat": False,
    "status": True,
}


class _Chunks(httpx2.AsyncByteStream):
    """A body sent in pieces, as a chunked answer arrives."""

    def __init__(self, body: bytes, size: int) -> None:
        self._pieces = [body[i : i + size] for i in range(0, len(body), size)]

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece


@pytest.fixture
def cuts(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each list answer read had items cut out of it (see its skeleton taken)."""
    seen: list[bool] = []
    skeleton = ItemSplitter.skeleton

    def spied(self: ItemSplitter) -> bytes | bytearray:
        seen.append(self.cut)
        return skeleton(self)

    monkeypatch.setattr(ItemSplitter, "skeleton", spied)
    return seen


def _serve_in_pieces(server: FakeNetmaker, body: bytes) -> None:
    """GET /api/v1/egress answers `body` in 1,000-byte pieces."""
    server.routes["GET /api/v1/egress"] = lambda _: httpx2.Response(
        200, stream=_Chunks(body, 1000), headers={"Content-Type": "application/json"}
    )


def _rules_body(count: int, *, code: int = 200, bad: int | None = None) -> bytes:
    rules: list[dict[str, object]] = [{"id": f"e{i:04d}", **_RULE} for i in range(count)]
    if bad is not None:
        rules[bad]["nat"] = "no"
    envelope = {"Code": code, "Message": "fetched", "Response": rules}
    return json.dumps(envelope, separators=(",", ":")).encode()


async def test_a_bad_item_cut_from_an_early_piece_is_named_once_the_answer_is_read(
    server: FakeNetmaker, client: NetmakerClient, cuts: list[bool]
) -> None:
    body = _rules_body(600, bad=3)
    _serve_in_pieces(server, body)
    with pytest.raises(BadResponse) as caught:
        await client.list_egress("kaput")
    assert_reported(caught.value, "GET /api/v1/egress?network=kaput", "in item 3", "nat")
    assert cuts[-1]  # the list was read in pieces, not whole


async def test_an_error_code_is_reported_before_a_bad_item_already_cut(
    server: FakeNetmaker, client: NetmakerClient, cuts: list[bool]
) -> None:
    """As for any answer read whole: the envelope's Code first, then the items."""
    body = _rules_body(600, code=500, bad=0)
    _serve_in_pieces(server, body)
    with pytest.raises(ApiError) as caught:
        await client.list_egress("kaput")
    assert (caught.value.status, caught.value.code) == (200, 500)
    assert cuts[-1]  # the list was read in pieces, not whole


async def test_a_long_list_after_a_401_is_read_once_with_the_new_token(
    server: FakeNetmaker, client: NetmakerClient, cuts: list[bool]
) -> None:
    body = _rules_body(600)
    _serve_in_pieces(server, body)
    await client.list_hosts()
    server.valid.clear()  # the next call gets a 401, then logs in again
    rules = await client.list_egress("kaput")
    assert [r.id for r in rules] == [f"e{i:04d}" for i in range(600)]
    assert server.logins == 2
    assert cuts[-1]  # the list was read in pieces, not whole


async def test_an_envelope_with_two_responses_is_refused_not_read_two_ways(
    server: FakeNetmaker, client: NetmakerClient, cuts: list[bool]
) -> None:
    """Read whole, the last `Response` counts; cut, the first one's items were handed out.
    Go never writes it, so the answer is refused."""
    first = _rules_body(600)[:-1]  # without the closing brace
    body = first + b',"Response":[' + json.dumps({"id": "other", **_RULE}).encode() + b"]}"
    _serve_in_pieces(server, body)
    with pytest.raises(BadResponse) as caught:
        await client.list_egress("kaput")
    assert_reported(caught.value, "GET /api/v1/egress?network=kaput", "Response", "more than once")
    assert cuts[-1]  # the list was read in pieces, not whole
