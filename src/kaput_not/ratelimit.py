"""How long a failed key waits before its next try.

A limiter answers three questions about a key: how long to wait now (`when`, which also counts
the attempt), how many times it has waited (`requeues`), and "it worked, start over" (`forget`).
Small limiters combine with `MaxOf`: the default is per-key exponential backoff, so one broken
node backs off alone, under a global token bucket, so a thousand failing nodes cannot hammer
Netmaker together. Each takes its clock and random source as parameters; nothing is global.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Hashable
from typing import Generic, Protocol, TypeVar

K = TypeVar("K", bound=Hashable)
K_contra = TypeVar("K_contra", bound=Hashable, contravariant=True)

Clock = Callable[[], float]


class RateLimiter(Protocol[K_contra]):
    def when(self, key: K_contra) -> float:
        """Seconds `key` should wait before its next try; counts the try."""
        ...

    def forget(self, key: K_contra) -> None:
        """Reset `key`: its last try succeeded, or it no longer matters."""
        ...

    def requeues(self, key: K_contra) -> int:
        """How many tries `key` has been given a wait for since it was last forgotten."""
        ...


class ExponentialBackoff(Generic[K]):
    """Per-key wait of `base * factor ** failures`, capped at `cap` seconds.

    With `jitter` above zero each wait is shortened by up to that fraction, so keys that failed
    together (Netmaker went down for everyone) spread out again, even once they reach the cap.
    Pass `rng` to make the jitter repeatable.
    """

    def __init__(
        self,
        *,
        base: float = 0.5,
        factor: float = 2.0,
        cap: float = 300.0,
        jitter: float = 0.0,
        rng: random.Random | None = None,
    ) -> None:
        if base <= 0:
            raise ValueError(f"backoff base must be > 0 seconds, got {base}")
        if factor < 1:
            raise ValueError(f"backoff factor must be >= 1, got {factor}")
        if cap < base:
            raise ValueError(f"backoff cap ({cap}) must be >= its base ({base})")
        if not 0 <= jitter <= 1:
            raise ValueError(f"backoff jitter must be a fraction in [0, 1], got {jitter}")
        self._base = base
        self._factor = factor
        self._cap = cap
        self._jitter = jitter
        if rng is None and jitter:
            # Per instance, never the module's shared generator; not used for secrets.
            rng = random.Random()  # noqa: S311
        self._rng = rng
        self._failures: dict[K, int] = {}

    def when(self, key: K) -> float:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        try:
            delay = min(self._cap, self._base * self._factor**failures)
        except OverflowError:  # thousands of failures in a row: long past the cap
            delay = self._cap
        if self._rng is not None and self._jitter:
            delay *= 1 - self._jitter * self._rng.random()
        return delay

    def forget(self, key: K) -> None:
        self._failures.pop(key, None)

    def requeues(self, key: K) -> int:
        return self._failures.get(key, 0)


class TokenBucket:
    """One bucket for all keys: `burst` tries at once, then `rate` per second.

    A try that finds the bucket empty is not refused but booked against future tokens, and told
    how long until its token exists; later tries queue up behind it. Keys are not tracked, so
    `forget` does nothing and `requeues` is always 0.
    """

    def __init__(
        self, *, rate: float = 10.0, burst: int = 100, clock: Clock = time.monotonic
    ) -> None:
        if rate <= 0:
            raise ValueError(f"token bucket rate must be > 0 per second, got {rate}")
        if burst < 1:
            raise ValueError(f"token bucket burst must be >= 1, got {burst}")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()

    def when(self, key: object) -> float:
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate

    def take(self) -> bool:
        """Take a token if one is there. A try that finds none books nothing, so a caller that
        drops what it cannot send now is not held back later by the tries it dropped."""
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def _refill(self) -> None:
        now = self._clock()
        # max(): a clock that steps back must not drain the bucket.
        refill = max(0.0, now - self._last) * self._rate
        self._tokens = min(self._burst, self._tokens + refill)
        self._last = now

    def forget(self, key: object) -> None:
        return

    def requeues(self, key: object) -> int:
        return 0


class MaxOf(Generic[K]):
    """Waits as long as the slowest of its limiters; every limiter counts every try."""

    def __init__(self, *limiters: RateLimiter[K]) -> None:
        if not limiters:
            raise ValueError("MaxOf needs at least one limiter")
        self._limiters = limiters

    def when(self, key: K) -> float:
        # max() drains the generator, so every limiter counts this try, not only the largest.
        return max(limiter.when(key) for limiter in self._limiters)

    def forget(self, key: K) -> None:
        for limiter in self._limiters:
            limiter.forget(key)

    def requeues(self, key: K) -> int:
        return max(limiter.requeues(key) for limiter in self._limiters)


def default_rate_limiter(
    *,
    base: float = 0.5,
    factor: float = 2.0,
    cap: float = 300.0,
    rate: float = 10.0,
    burst: int = 100,
    jitter: float = 0.0,
    rng: random.Random | None = None,
    clock: Clock = time.monotonic,
) -> MaxOf[K]:
    """Per-key exponential backoff (0.5 s doubling to 5 min) under a 10/s, burst 100 bucket."""
    backoff: ExponentialBackoff[K] = ExponentialBackoff(
        base=base, factor=factor, cap=cap, jitter=jitter, rng=rng
    )
    return MaxOf(backoff, TokenBucket(rate=rate, burst=burst, clock=clock))
