"""Token buckets per client: anonymous callers by address, approval systems by key.

A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes
one. When it is empty the caller learns how long until one is back (Retry-After). The
table of buckets is bounded: when it is full, buckets that have refilled completely
(clients that have been quiet) are dropped, as they are the same as new ones.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol

MAX_CLIENTS = 100_000


class Limiter(Protocol):
    """What the gate asks of a limiter: RateLimiter (this process's own buckets) or
    verifier.service.stores.postgres.SharedRateLimiter (buckets every replica shares)."""

    def take(self, client: str, rate: float, burst: float) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one will be there."""
        ...


class RateLimiter:
    """Buckets keyed by client, in this process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last time)

    def take(self, client: str, rate: float, burst: float) -> float:
        """Take a token: 0.0 when allowed, else the seconds until one will be there."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens >= 1.0:
            if len(self._buckets) >= MAX_CLIENTS and client not in self._buckets:
                self._forget_quiet(now, rate, burst)
            self._buckets[client] = (tokens - 1.0, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return math.inf if rate <= 0 else (1.0 - tokens) / rate

    def _forget_quiet(self, now: float, rate: float, burst: float) -> None:
        full = [c for c, (t, last) in self._buckets.items() if t + (now - last) * rate >= burst]
        for client in full:
            del self._buckets[client]
