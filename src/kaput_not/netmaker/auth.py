"""The client's token: when to log in again, and one login shared by every caller.

The token is refreshed `margin` before the JWT's `exp` (read unverified: the server checks it,
the client only plans around it), or halfway through a short life. Concurrent callers that
need a new token await one login, so a wrong password costs one request, not one per caller.
"""

from __future__ import annotations

import asyncio
import base64
import math
from collections.abc import Awaitable, Callable

import msgspec

from kaput_not.decoding import Decoder
from kaput_not.ratelimit import Clock

#: A token's claims; the shared decoder, so hostile nesting is a DecodeError, not a crash.
_CLAIMS = Decoder(dict[str, object])


def jwt_exp(token: str) -> float | None:
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


class Tokens:
    """The current token and when it goes stale.

    `login` sends the login request and returns the new token (or raises); `clock` is the wall
    clock compared with `exp`; `margin` is how long before `exp` to log in again.
    """

    __slots__ = ("_clock", "_login", "_margin", "_refresh_at", "_task", "token")

    def __init__(self, login: Callable[[], Awaitable[str]], *, clock: Clock, margin: float) -> None:
        self._login = login
        self._clock = clock
        self._margin = margin
        #: The token in use; None before the first login.
        self.token: str | None = None
        self._refresh_at: float | None = None
        self._task: asyncio.Task[str] | None = None

    def _fresh(self) -> bool:
        if self.token is None:
            return False
        return self._refresh_at is None or self._clock() < self._refresh_at

    async def current(self) -> str:
        """A token to send: the one held while it is fresh, else a new one."""
        if self.token is not None and self._fresh():
            return self.token
        return await self.other_than(self.token)

    async def other_than(self, stale: str | None) -> str:
        """A token other than `stale`: from a login that finished meanwhile, in flight, or new.

        Concurrent callers await one login task, so they share its token or its error. The task
        is shielded, so one caller being cancelled does not cancel the login for the others.
        """
        if self.token is not None and self.token != stale and self._fresh():
            return self.token
        task = self._task
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._renew())
            self._task = task
            task.add_done_callback(self._finished)
        return await asyncio.shield(task)

    def cancel(self) -> None:
        """Stop a login in flight (the client is closing)."""
        if self._task is not None:
            self._task.cancel()

    async def _renew(self) -> str:
        token = await self._login()
        self.token = token
        self._refresh_at = self._refresh_time(token)
        return token

    def _finished(self, task: asyncio.Task[str]) -> None:
        if self._task is task:
            self._task = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an error nobody awaited is not logged as lost

    def _refresh_time(self, token: str) -> float | None:
        """When to log in again: `margin` before `exp`, or halfway for a short-lived token.

        None means "until a 401": `exp` is unreadable, or already past (a token born expired,
        or clocks apart), where logging in again would only loop.
        """
        exp = jwt_exp(token)
        if exp is None:
            return None
        lifetime = exp - self._clock()
        if lifetime <= 0:
            return None
        return exp - min(self._margin, lifetime / 2)
