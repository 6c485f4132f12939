"""The token bucket policy (pure, injected clock) and the keyed limiter around it."""

from __future__ import annotations

from voiceops.proxy.ratelimit import Bucket, RateLimiter, retry_after_header, take


def test_a_full_bucket_allows_a_minute_of_burst_then_refuses():
    """A new client gets rate_per_minute requests at once; the next is refused with a wait."""
    bucket = None
    for _ in range(3):
        d = take(bucket, 100.0, 3)
        assert d.allowed and d.retry_after_s == 0
        bucket = d.bucket
    refused = take(bucket, 100.0, 3)
    assert not refused.allowed
    assert refused.retry_after_s == 20.0  # 3/min refills one token every 20 s


def test_tokens_refill_with_time_up_to_capacity():
    """After the refill interval one more request passes; an idle bucket never exceeds capacity."""
    empty = Bucket(tokens=0.0, updated_s=0.0)
    assert not take(empty, 19.9, 3).allowed
    assert take(empty, 20.0, 3).allowed
    long_idle = take(empty, 10_000.0, 3)
    assert long_idle.bucket.tokens == 2.0  # capped at 3, minus the one just taken


def test_clock_going_backwards_refills_nothing():
    """A clock that jumps back neither refills nor breaks the bucket."""
    d = take(Bucket(tokens=0.0, updated_s=50.0), 10.0, 60)
    assert not d.allowed and d.bucket.tokens == 0.0


def test_zero_rate_means_unlimited():
    """rate_limit_per_minute = 0 turns limiting off."""
    bucket = None
    for _ in range(1000):
        d = take(bucket, 0.0, 0)
        assert d.allowed
        bucket = d.bucket


def test_retry_after_rounds_up_to_whole_seconds():
    """Retry-After is never 0 and never earlier than the real wait."""
    assert retry_after_header(0.01) == "1"
    assert retry_after_header(1.2) == "2"
    assert retry_after_header(20.0) == "20"


def test_limiter_keeps_clients_apart_and_bounded():
    """One client's exhaustion does not limit another; the store forgets idle clients."""
    now = [0.0]
    limiter = RateLimiter(1, clock=lambda: now[0], max_clients=3)
    assert limiter.check("a").allowed and not limiter.check("a").allowed
    assert limiter.check("b").allowed
    for i in range(10):
        now[0] += 1.0
        limiter.check(f"c{i}")
    assert len(limiter._buckets) <= 3
