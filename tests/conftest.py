"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from kaput_not_standins.netmaker import NetmakerEmulator


@pytest.fixture
async def netmaker_emulator() -> AsyncIterator[NetmakerEmulator]:
    """A started Netmaker emulator with the default credentials (``admin`` / ``admin-pass``)."""
    async with NetmakerEmulator() as emulator:
        yield emulator
