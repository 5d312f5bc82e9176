"""Seeding a Netmaker server for the contract suite through its public HTTP API only.

Nothing here touches the emulator's Python API, so the same calls seed a real server. The
sequence is docs/netmaker-api.md section 7: create the first super-admin if the server has
none, log in, create a network, register hosts with an enrollment key, join them to networks,
and clean up with forced deletes.

Choices that keep a shared real server healthy:

- every network name, key tag, host id and MAC address is random, so runs never collide;
- hosts register with a key that has no networks and then join networks with
  ``POST /api/hosts/{id}/networks/{net}``, which creates the node before answering;
- deletes always send ``force=true``: without it, a server running without a message broker
  blocks after ten deletes (docs/netmaker-api.md section 7);
- enrollment tokens are built here from the key's value, choosing a ``server`` text whose base64
  has no ``/`` (the token is a path segment, and the server ignores ``server``).

Where the real server works in a goroutine (nodes of a registration with a network key, the
egress clean-up after a purge), callers poll with :func:`poll` up to a bounded deadline.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx2

T = TypeVar("T")
DEADLINE = 15.0  # seconds; generous for a real server under CI load
CLIENT_VERSION = "v1.5.1"


class SeedingError(AssertionError):
    """The server refused a seeding call; the message says which call and what came back."""


async def poll(
    fetch: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    deadline: float = DEADLINE,
    interval: float = 0.05,
) -> T:
    """Call ``fetch`` until ``done`` holds for its result, or fail after ``deadline`` seconds."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + deadline
    while True:
        value = await fetch()
        if done(value):
            return value
        if loop.time() >= give_up:
            raise AssertionError(
                f"gave up after {deadline}s waiting for {what}; last: {value!r:.300}"
            )
        await asyncio.sleep(interval)


def unique_name(prefix: str = "kc") -> str:
    """A fresh name valid as a network id or key tag: ``[a-z0-9-]``, at most 32 characters."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def enrollment_token(value: str) -> str:
    """A register token for a key ``value`` whose base64 holds no ``/`` (it is a path segment)."""
    for attempt in range(64):
        document = json.dumps({"server": f"seed{attempt}", "value": value}, separators=(",", ":"))
        token = base64.b64encode(document.encode()).decode()
        if "/" not in token and "+" not in token:
            return token
    raise SeedingError("no slash-free token found for this key value")  # 2**-64 odds or so


def register_body(name: str, **overrides: object) -> dict[str, object]:
    """A ``schema.Host`` body a netclient would send, with a unique id and MAC address."""
    body: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "name": name,
        "version": CLIENT_VERSION,
        "os": "linux",
        "traffickeypublic": base64.b64encode(secrets.token_bytes(32)).decode(),
        "macaddress": base64.b64encode(secrets.token_bytes(6)).decode(),
        "publickey": list(secrets.token_bytes(32)),
    }
    body.update(overrides)
    return body


@dataclass
class SeededHost:
    id: str
    name: str
    nodes: dict[str, str] = field(default_factory=dict)  # network -> node id


class Seeder:
    def __init__(self, http: httpx2.AsyncClient, *, username: str, password: str) -> None:
        self._http = http
        self._username = username
        self._password = password
        self._token = ""
        self._bare_key_token = ""
        self._hosts: list[str] = []

    @property
    def headers(self) -> dict[str, str]:
        """Authorization for the admin user (log in first)."""
        return {"Authorization": f"Bearer {self._token}"}

    async def ensure_admin(self) -> None:
        """Create the super-admin on a fresh server, then log in."""
        has = await self._http.get("/api/users/adm/hassuperadmin")
        _check(has, "GET /api/users/adm/hassuperadmin")
        if has.json() is False:
            created = await self._http.post(
                "/api/users/adm/createsuperadmin",
                json={"username": self._username, "password": self._password},
            )
            _check(created, "POST /api/users/adm/createsuperadmin")
        self._token = await self.login()

    async def login(self) -> str:
        answer = await self._http.post(
            "/api/users/adm/authenticate",
            json={"username": self._username, "password": self._password},
        )
        _check(answer, "POST /api/users/adm/authenticate")
        token = answer.json()["Response"]["AuthToken"]
        assert isinstance(token, str)
        return token

    async def network(self) -> str:
        """A new network with a unique name and a random /24 (retried if the range is taken)."""
        netid = unique_name()
        for _ in range(10):
            cidr = f"100.{random.randint(64, 127)}.{random.randint(0, 255)}.0/24"
            answer = await self._http.post(
                "/api/networks",
                json={"netid": netid, "addressrange": cidr},
                headers=self.headers,
            )
            if answer.status_code == 400 and "in use" in answer.text:
                continue
            _check(answer, "POST /api/networks")
            return netid
        raise SeedingError("ten random ranges were all in use")

    async def key(self, networks: Sequence[str], **fields: object) -> dict[str, Any]:
        """A new enrollment key (unlimited unless ``fields`` say otherwise)."""
        body: dict[str, object] = {
            "tags": [unique_name("key")],
            "networks": list(networks),
            "unlimited": True,
        }
        body.update(fields)
        answer = await self._http.post("/api/v1/enrollment-keys", json=body, headers=self.headers)
        _check(answer, "POST /api/v1/enrollment-keys")
        key = answer.json()
        assert isinstance(key, dict)
        return key

    async def register(self, token: str, body: dict[str, object]) -> httpx2.Response:
        """``POST /api/v1/host/register/{token}`` without Authorization; the caller checks it."""
        answer = await self._http.post(f"/api/v1/host/register/{token}", json=body)
        if answer.is_success:
            self._hosts.append(str(body["id"]))
        return answer

    async def bare_host(self, name: str | None = None) -> SeededHost:
        """A registered host that has joined no network."""
        if not self._bare_key_token:
            self._bare_key_token = enrollment_token(str((await self.key([]))["value"]))
        body = register_body(name or unique_name("host"))
        _check(await self.register(self._bare_key_token, body), "POST /api/v1/host/register")
        return SeededHost(id=str(body["id"]), name=str(body["name"]))

    async def host(self, networks: Sequence[str], name: str | None = None) -> SeededHost:
        """A registered host joined to ``networks``, with its node id per network."""
        host = await self.bare_host(name)
        for network in networks:
            host.nodes[network] = await self.join(host.id, network)
        return host

    async def join(self, host_id: str, network: str) -> str:
        """Join a network (synchronous on the server) and return the new node's id."""
        answer = await self._http.post(
            f"/api/hosts/{host_id}/networks/{network}", headers=self.headers
        )
        _check(answer, "POST /api/hosts/{hostid}/networks/{network}")
        nodes = await self.get_json(f"/api/nodes/{network}")
        [node_id] = [n["id"] for n in nodes if n["hostid"] == host_id]
        return str(node_id)

    async def leave(self, host_id: str, network: str) -> None:
        answer = await self._http.delete(
            f"/api/hosts/{host_id}/networks/{network}?force=true", headers=self.headers
        )
        _check(answer, "DELETE /api/hosts/{hostid}/networks/{network}")

    async def delete_host(self, host_id: str) -> httpx2.Response:
        answer = await self._http.delete(
            f"/api/v1/ui/hosts/{host_id}?force=true", headers=self.headers
        )
        _check(answer, "DELETE /api/v1/ui/hosts/{hostid}")
        self._hosts.remove(host_id)
        return answer

    async def egress(self, **fields: object) -> dict[str, Any]:
        """Create an egress and return it as the server stored it."""
        answer = await self._http.post("/api/v1/egress", json=fields, headers=self.headers)
        _check(answer, "POST /api/v1/egress")
        egress = answer.json()["Response"]
        assert isinstance(egress, dict)
        return egress

    async def egresses(self, network: str) -> list[dict[str, Any]]:
        answer = await self._http.get(f"/api/v1/egress?network={network}", headers=self.headers)
        _check(answer, "GET /api/v1/egress")
        egresses = answer.json()["Response"]
        assert isinstance(egresses, list)
        return egresses

    async def get_json(self, path: str) -> Any:
        answer = await self._http.get(path, headers=self.headers)
        _check(answer, f"GET {path}")
        return answer.json()

    async def cleanup(self) -> None:
        """Best effort: force-delete every host this seeder registered."""
        for host_id in list(self._hosts):
            try:
                await self.delete_host(host_id)
            except (SeedingError, httpx2.HTTPError):
                continue


def _check(answer: httpx2.Response, call: str) -> None:
    if not answer.is_success:
        raise SeedingError(f"{call} answered {answer.status_code}: {answer.text[:300]}")
