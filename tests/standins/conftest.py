"""Fixtures for the emulator's own tests: a started emulator on a fake clock, and HTTP clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from kaput_not_standins.netmaker import NetmakerEmulator

from .helpers import MASTER_KEY, PASSWORD, USERNAME, FakeClock, bearer, login


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def emulator(clock: FakeClock) -> AsyncIterator[NetmakerEmulator]:
    async with NetmakerEmulator(
        username=USERNAME, password=PASSWORD, master_key=MASTER_KEY, clock=clock
    ) as nm:
        yield nm


@pytest.fixture
async def http(emulator: NetmakerEmulator) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=emulator.base_url, timeout=5, trust_env=False) as c:
        yield c


@pytest.fixture
async def auth(http: httpx2.AsyncClient) -> dict[str, str]:
    """Authorization headers with a fresh user token."""
    return bearer(await login(http))
