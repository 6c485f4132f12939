"""Per-client rate limiting: a token bucket as a pure function, and a small keyed store around it.

A bucket holds up to ``rate_per_minute`` tokens (one minute of burst) and refills at
``rate_per_minute / 60`` tokens per second. Each request takes one token; with none left the
caller is told how many seconds until one is back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bucket:
    tokens: float
    updated_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    bucket: Bucket
    allowed: bool
    retry_after_s: float  # 0 when allowed


def take(bucket: Bucket | None, now_s: float, rate_per_minute: int) -> Decision:
    """Take one token from ``bucket`` at ``now_s``; ``rate_per_minute <= 0`` means unlimited."""
    capacity = float(max(rate_per_minute, 1))
    if rate_per_minute <= 0:
        return Decision(Bucket(capacity, now_s), True, 0.0)
    refill_per_s = rate_per_minute / 60.0
    if bucket is None:
        tokens = capacity
    else:
        elapsed_s = max(0.0, now_s - bucket.updated_s)  # a clock going back refills nothing
        tokens = min(capacity, bucket.tokens + elapsed_s * refill_per_s)
    if tokens >= 1.0:
        return Decision(Bucket(tokens - 1.0, now_s), True, 0.0)
    return Decision(Bucket(tokens, now_s), False, (1.0 - tokens) / refill_per_s)


def retry_after_header(retry_after_s: float) -> str:
    """Retry-After is whole seconds; round up so a client never retries too early."""
    return str(max(1, math.ceil(retry_after_s)))


class RateLimiter:
    """Buckets per client key; full (idle) buckets are forgotten so memory stays bounded."""

    def __init__(
        self,
        rate_per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self._rate = rate_per_minute
        self._clock = clock
        self._max_clients = max_clients
        self._buckets: dict[str, Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def check(self, key: str) -> Decision:
        now_s = self._clock()
        decision = take(self._buckets.get(key), now_s, self._rate)
        self._buckets[key] = decision.bucket
        if len(self._buckets) > self._max_clients:
            self._prune(now_s)
        return decision

    def _prune(self, now_s: float) -> None:
        idle_s = 60.0  # a bucket idle for a minute is full again: same as no bucket
        self._buckets = {k: b for k, b in self._buckets.items() if now_s - b.updated_s < idle_s}
        if len(self._buckets) > self._max_clients:  # still too many: keep the most recent
            newest = sorted(self._buckets.items(), key=lambda kv: kv[1].updated_s)
            self._buckets = dict(newest[-self._max_clients :])
