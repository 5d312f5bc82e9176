"""Rate limiters: per-key exponential backoff, the global token bucket, and "max of"."""

from __future__ import annotations

import random
from typing import Any

import pytest

from kaput_not import ratelimit
from tests.clock import FakeClock

# -- exponential backoff ---------------------------------------------------------------------


def test_backoff_doubles_from_the_base_and_stops_at_the_cap() -> None:
    backoff = ratelimit.ExponentialBackoff[str](base=0.5, factor=2.0, cap=5.0)
    waits = [backoff.when("n1") for _ in range(7)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_backoff_defaults_are_half_a_second_doubling_to_five_minutes() -> None:
    backoff = ratelimit.ExponentialBackoff[str]()
    waits = [backoff.when("n1") for _ in range(12)]
    assert waits[:3] == [0.5, 1.0, 2.0]
    assert waits[-1] == 300.0


def test_backoff_counts_requeues_and_forget_starts_over() -> None:
    backoff = ratelimit.ExponentialBackoff[str]()
    for _ in range(3):
        backoff.when("n1")
    assert backoff.requeues("n1") == 3
    backoff.forget("n1")
    assert backoff.requeues("n1") == 0
    assert backoff.when("n1") == 0.5


def test_backoff_of_one_key_does_not_slow_another() -> None:
    backoff = ratelimit.ExponentialBackoff[str]()
    for _ in range(5):
        backoff.when("broken")
    assert backoff.when("healthy") == 0.5
    assert backoff.requeues("healthy") == 1


def test_backoff_survives_thousands_of_failures_at_the_cap() -> None:
    backoff = ratelimit.ExponentialBackoff[str](cap=300.0)
    for _ in range(5000):
        wait = backoff.when("n1")
    assert wait == 300.0


def test_backoff_jitter_shortens_waits_within_its_fraction_and_repeats_with_a_seed() -> None:
    def waits(seed: int) -> list[float]:
        backoff = ratelimit.ExponentialBackoff[str](cap=8.0, jitter=0.25, rng=random.Random(seed))
        return [backoff.when("n1") for _ in range(6)]

    plain = [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
    jittered = waits(7)
    assert jittered == waits(7)
    assert all(0.75 * p <= j <= p for j, p in zip(jittered, plain, strict=True))
    assert jittered != plain
    # At the cap the waits still differ, so keys that failed together spread out.
    assert jittered[4] != jittered[5]


def test_backoff_jitter_without_a_seed_still_stays_within_its_fraction() -> None:
    backoff = ratelimit.ExponentialBackoff[str](base=4.0, cap=4.0, jitter=0.5)
    waits = [backoff.when("n1") for _ in range(20)]
    assert all(2.0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"base": 0.0}, id="zero-base"),
        pytest.param({"factor": 0.5}, id="shrinking-factor"),
        pytest.param({"base": 2.0, "cap": 1.0}, id="cap-below-base"),
        pytest.param({"jitter": 1.5}, id="jitter-above-one"),
    ],
)
def test_backoff_rejects_settings_that_make_no_sense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        ratelimit.ExponentialBackoff[str](**kwargs)


# -- token bucket ----------------------------------------------------------------------------


def test_token_bucket_lets_a_burst_through_then_spaces_tries_by_its_rate() -> None:
    bucket = ratelimit.TokenBucket(rate=2.0, burst=3, clock=FakeClock())
    waits = [bucket.when(f"n{i}") for i in range(6)]
    assert waits == [0.0, 0.0, 0.0, 0.5, 1.0, 1.5]


def test_token_bucket_refills_with_time_up_to_its_burst() -> None:
    clock = FakeClock()
    bucket = ratelimit.TokenBucket(rate=1.0, burst=2, clock=clock)
    assert [bucket.when("a"), bucket.when("b")] == [0.0, 0.0]
    clock.advance(1.0)
    assert bucket.when("c") == 0.0
    assert bucket.when("d") == 1.0
    clock.advance(60.0)  # a long quiet spell refills only up to the burst
    assert [bucket.when("e"), bucket.when("f"), bucket.when("g")] == [0.0, 0.0, 1.0]


def test_token_bucket_does_not_track_keys() -> None:
    bucket = ratelimit.TokenBucket(rate=1.0, burst=1, clock=FakeClock())
    bucket.when("a")
    bucket.forget("a")
    assert bucket.requeues("a") == 0
    assert bucket.when("a") == 1.0


def test_token_bucket_take_drops_without_debt() -> None:
    # 1,000 tries against a bucket of 3: three pass, and the 997 dropped ones do not hold the
    # next try back once a token has grown again.
    clock = FakeClock()
    bucket = ratelimit.TokenBucket(rate=2.0, burst=3, clock=clock)
    assert sum(bucket.take() for _ in range(1000)) == 3
    clock.advance(0.4)
    assert not bucket.take()
    clock.advance(0.1)
    assert bucket.take()
    assert not bucket.take()
    clock.advance(60.0)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


@pytest.mark.parametrize(
    "kwargs",
    [pytest.param({"rate": 0.0}, id="zero-rate"), pytest.param({"burst": 0}, id="zero-burst")],
)
def test_token_bucket_rejects_settings_that_make_no_sense(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        ratelimit.TokenBucket(clock=FakeClock(), **kwargs)


# -- max of ----------------------------------------------------------------------------------


def test_max_of_waits_for_the_slowest_limiter() -> None:
    backoff = ratelimit.ExponentialBackoff[str](base=0.5, cap=1.0)
    bucket = ratelimit.TokenBucket(rate=1.0, burst=2, clock=FakeClock())
    limiter = ratelimit.MaxOf[str](backoff, bucket)
    # Backoff alone: 0.5, 1, 1, 1, 1, 1. Bucket alone: 0, 0, 1, 2, 3, 4.
    waits = [limiter.when("n1") for _ in range(6)]
    assert waits == [0.5, 1.0, 1.0, 2.0, 3.0, 4.0]


def test_max_of_counts_every_try_in_every_limiter_and_forgets_in_all() -> None:
    first = ratelimit.ExponentialBackoff[str](base=1.0)
    second = ratelimit.ExponentialBackoff[str](base=0.1)
    limiter = ratelimit.MaxOf[str](first, second)
    limiter.when("n1")
    limiter.when("n1")
    assert (first.requeues("n1"), second.requeues("n1"), limiter.requeues("n1")) == (2, 2, 2)
    limiter.forget("n1")
    assert (first.requeues("n1"), second.requeues("n1")) == (0, 0)


def test_default_limiter_backs_off_per_key_under_a_global_bucket() -> None:
    limiter: ratelimit.MaxOf[str] = ratelimit.default_rate_limiter(
        rate=1.0, burst=2, clock=FakeClock()
    )
    assert [limiter.when("a"), limiter.when("a")] == [0.5, 1.0]
    # The bucket is now empty: a fresh key waits for a token, not its own 0.5 s.
    assert limiter.when("b") == 1.0
