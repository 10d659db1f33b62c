"""Per-caller request budgets: a token bucket per principal (or client address)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from donor_match.errors import DomainError

MAX_TRACKED = 100_000  # callers remembered at once; the least recent are forgotten first


class RateLimitedError(DomainError):
    code = "RATE_LIMITED"


class RateLimiter:
    """`per_minute` requests a minute with bursts up to the same number, per key.

    In-process: with several API processes each enforces its own budget.
    """

    def __init__(self, per_minute: int) -> None:
        self._capacity = float(per_minute)
        self._refill_per_s = per_minute / 60.0
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: str, now: float | None = None) -> None:
        """Spend one request of `key`'s budget or raise `RateLimitedError`."""
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, updated = self._buckets.pop(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - updated) * self._refill_per_s)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                retry = (1.0 - tokens) / self._refill_per_s
                raise RateLimitedError(f"rate limit exceeded; retry in {retry:.1f}s")
            self._buckets[key] = (tokens - 1.0, now)
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
