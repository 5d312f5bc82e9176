"""Small helpers for the emulator tests: a hand-driven clock and plain HTTP calls."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx2

from tests import clock
from tests.contract import seeding

USERNAME = "admin"
PASSWORD = "emulator-test-pass"
MASTER_KEY = "emulator-master-key"
START = 1_800_000_000.0


class FakeClock(clock.FakeClock):
    """Starts at START, a plausible unix time for the emulator's JWT claims."""

    def __init__(self, now: float = START) -> None:
        super().__init__(now)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(
    http: httpx2.AsyncClient,
    *,
    username: str = USERNAME,
    password: str = PASSWORD,
    app: str | None = None,
) -> str:
    headers = {"X-Application-Name": app} if app is not None else {}
    answer = await http.post(
        "/api/users/adm/authenticate",
        json={"username": username, "password": password},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["Response"]["AuthToken"]
    assert isinstance(token, str)
    return token


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert isinstance(claims, dict)
    return claims


def register_body(name: str = "worker", **overrides: object) -> dict[str, object]:
    """A valid ``POST /api/v1/host/register/{token}`` body with a unique id and MAC address.

    The contract suite's body (a v1.5.1 netclient's), with a default name for these tests.
    """
    return seeding.register_body(name, **overrides)


def envelope(answer: httpx2.Response) -> dict[str, Any]:
    """The parsed body after checking it is a JSON envelope whose Code is the HTTP status."""
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert isinstance(body, dict)
    assert set(body) == {"Code", "Message", "Response"}
    assert body["Code"] == answer.status_code
    return body


def error_of(answer: httpx2.Response) -> tuple[int, str]:
    """(status, Message) of an error envelope, which never ends with a newline."""
    body = envelope(answer)
    assert body["Response"] is None
    assert not answer.content.endswith(b"\n")
    return answer.status_code, str(body["Message"])
