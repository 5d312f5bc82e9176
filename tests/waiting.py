"""Waiting for something that happens in the background, with a deadline instead of a sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(check: Callable[[], bool], *, within: float = 10.0, what: str = "") -> float:
    """Poll `check()` every 20 ms until it holds; return the seconds it took.

    Fails the test with `what` (or the check itself) once `within` seconds have passed.
    """
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > within:
            raise AssertionError(f"not within {within}s: {what or check}")
        await asyncio.sleep(0.02)
    return time.monotonic() - started
