"""The two servers the contract suite talks to, and the per-test client and seeder.

Every test runs against both targets, and the target shows in its id: ``test_x[emulator]``
and ``test_x[netmaker]``.

- ``emulator``: a fresh in-process ``NetmakerEmulator`` per test, started without any user, so
  the suite also exercises the first-super-admin path.
- ``netmaker``: the real server, the judge. By default one real Netmaker v1.5.1 started for the
  whole run from the binary ``scripts/build-peers netmaker`` builds (``KAPUT_NOT_NETMAKER``;
  without it the target skips locally and fails in CI). To use a Netmaker that is already
  running instead, set:

  - ``KAPUT_NOT_CONTRACT_URL``: base URL, e.g. ``http://127.0.0.1:8081``;
  - ``KAPUT_NOT_CONTRACT_USERNAME`` (default ``admin``), ``KAPUT_NOT_CONTRACT_PASSWORD``
    (required): the super-admin, created if the server has none;
  - ``KAPUT_NOT_CONTRACT_MASTER_KEY``: the server's ``MASTER_KEY``, if it has one;
  - ``KAPUT_NOT_CONTRACT_DESTRUCTIVE=1``: allow tests that may change egresses the suite did
    not create (only on a throwaway server).

Tests use random network names and host ids, so many tests and runs share one real server.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx2
import pytest

from kaput_not_standins.netmaker import NetmakerEmulator
from tests.e2e.controlplane import NetmakerServer, StartError
from tests.peers import peer

from .seeding import Seeder

URL_ENV = "KAPUT_NOT_CONTRACT_URL"
_EMULATOR_USERNAME = "admin"
_EMULATOR_PASSWORD = "contract-suite-pass"
_EMULATOR_MASTER_KEY = "contract-suite-master-key"


@dataclass(frozen=True)
class Target:
    name: str
    base_url: str
    username: str
    password: str
    master_key: str | None
    destructive: bool  # may touch egresses the test did not create


def _configured_target(url: str) -> Target:
    password = os.environ.get("KAPUT_NOT_CONTRACT_PASSWORD")
    if not password:
        pytest.fail(f"{URL_ENV} is set but KAPUT_NOT_CONTRACT_PASSWORD is not", pytrace=False)
    return Target(
        name="netmaker",
        base_url=url.rstrip("/"),
        username=os.environ.get("KAPUT_NOT_CONTRACT_USERNAME", "admin"),
        password=password,
        master_key=os.environ.get("KAPUT_NOT_CONTRACT_MASTER_KEY") or None,
        destructive=os.environ.get("KAPUT_NOT_CONTRACT_DESTRUCTIVE") == "1",
    )


@pytest.fixture(scope="session")
def real_netmaker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """The real server: the one configured by the environment, or one started for this run."""
    url = os.environ.get(URL_ENV)
    if url:
        yield _configured_target(url)
        return
    binary = peer("netmaker")
    master_key = secrets.token_hex(16)
    try:
        server = NetmakerServer.start(
            binary, tmp_path_factory.mktemp("contract-netmaker"), master_key=master_key
        )
    except StartError as exc:
        pytest.fail(f"contract: {exc}", pytrace=False)
    try:
        yield Target(
            name="netmaker",
            base_url=server.url,
            username="admin",
            password=secrets.token_hex(12),
            master_key=master_key,
            destructive=True,  # a throwaway server of this run
        )
    finally:
        server.process.stop()


@pytest.fixture(params=["emulator", "netmaker"])
async def target(request: pytest.FixtureRequest) -> AsyncIterator[Target]:
    if request.param == "netmaker":
        yield request.getfixturevalue("real_netmaker")
        return
    async with NetmakerEmulator(username=None, master_key=_EMULATOR_MASTER_KEY) as emulator:
        yield Target(
            name="emulator",
            base_url=emulator.base_url,
            username=_EMULATOR_USERNAME,
            password=_EMULATOR_PASSWORD,
            master_key=_EMULATOR_MASTER_KEY,
            destructive=True,
        )


@pytest.fixture
async def http(target: Target) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=target.base_url, timeout=30, trust_env=False) as c:
        yield c


@pytest.fixture
async def seeder(http: httpx2.AsyncClient, target: Target) -> AsyncIterator[Seeder]:
    seeder = Seeder(http, username=target.username, password=target.password)
    await seeder.ensure_admin()
    yield seeder
    await seeder.cleanup()


@pytest.fixture
def auth(seeder: Seeder) -> dict[str, str]:
    """Authorization headers of the logged-in super-admin."""
    return seeder.headers


@pytest.fixture
async def network(seeder: Seeder) -> str:
    """A fresh network for this test."""
    return await seeder.network()
