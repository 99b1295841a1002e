"""Upstream rate limits per provider key, shared by every caller in this process
(shared_limiter.SharedLimiter shares them between replicas through Redis).

A call that would exceed its provider's budget waits (up to a bound) for capacity, then fails as
``rate_limited`` instead of earning a 429 upstream: a 429 can cost more than the call (some
providers penalise repeated overruns). Budgets are leaky buckets (aiolimiter) per bucket: OKX's
rubik statistics have a tighter limit than its market endpoints, so they get their own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from aiolimiter import AsyncLimiter
from prometheus_client import Counter, Histogram

from providers.fairness import ClientShares

LIMITER_WAITS = Histogram(
    "cryptosignals_rate_limiter_wait_seconds",
    "Time upstream calls waited for the local rate limiter, by bucket.",
    ["bucket"],
    buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5),
)
LIMITER_REJECTIONS = Counter(
    "cryptosignals_rate_limiter_rejections_total",
    "Upstream calls refused locally because the budget stayed exhausted past the wait bound.",
    ["bucket"],
)

# Requests per minute. Coinglass: Hobbyist 30 (raise it to your plan: Startup 80, Standard 300,
# Professional 1200). OKX public: ~20 per 2 s per IP for market data, ~5 per 2 s for rubik stats.
DEFAULT_PER_MINUTE = {
    "coinglass": 30.0,
    "okx": 600.0,
    "okx_rubik": 150.0,
    "coinapi": 100.0,
    "lunarcrush": 10.0,
    "feargreed": 60.0,
}


class RateLimitedLocally(Exception):
    """Over a local budget: the provider's (shared by every caller) or one client's share of it.
    ``retry_after``: seconds until there is room again, for the answer's Retry-After."""

    def __init__(
        self, bucket: str, per_minute: float, waited: float, *, retry_after: float, share: int | None = None
    ) -> None:
        if share is None:
            message = f"local budget of {per_minute:g} requests/min for {bucket} exhausted (waited {waited:.1f} s)"
        else:
            message = (
                f"this client's share of the {bucket} budget ({share} of {per_minute:g} requests/min) is spent: "
                f"retry in {math.ceil(retry_after)} s"
            )
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Budget:
    bucket: str
    per_minute: float


class UpstreamLimiter:
    def __init__(self, per_minute: Mapping[str, float], max_wait: float = 2.0, *, client_share: float = 1.0) -> None:
        self._budgets = {bucket: Budget(bucket, rate) for bucket, rate in per_minute.items() if rate > 0}
        # max_rate=rate/60 per 1 s would forbid bursts; per minute allows a burst of the budget.
        self._limiters = {b.bucket: AsyncLimiter(b.per_minute, 60.0) for b in self._budgets.values()}
        self._max_wait = max_wait
        # Each client's share of every budget (providers/fairness.py): 1.0 limits nothing more.
        self.shares = ClientShares({b: x.per_minute for b, x in self._budgets.items()}, client_share)

    def _take_share(self, bucket: str) -> None:
        """Count the call against its client's share of ``bucket``; RateLimitedLocally when spent."""
        wait = self.shares.take(bucket)
        if wait is not None:
            LIMITER_REJECTIONS.labels(bucket).inc()
            budget = self._budgets[bucket].per_minute
            raise RateLimitedLocally(bucket, budget, 0.0, retry_after=wait, share=self.shares.allowed(bucket))

    @staticmethod
    def bucket_for(provider: str, endpoint: str) -> str:
        if provider == "okx" and endpoint.startswith("/api/v5/rubik/"):
            return "okx_rubik"
        return provider

    def wait_bound(self, budget: float | None) -> float:
        """How long a call may wait for capacity: the limiter's bound, or less when the request's
        deadline (``budget`` seconds away) comes first."""
        return self._max_wait if budget is None else max(0.0, min(self._max_wait, budget))

    async def acquire(self, provider: str, endpoint: str, max_wait: float | None = None) -> None:
        """Wait for capacity up to ``max_wait`` (default: the limiter's bound), else RateLimitedLocally."""
        bucket = self.bucket_for(provider, endpoint)
        limiter = self._limiters.get(bucket)
        if limiter is None:
            return
        self._take_share(bucket)
        started = time.monotonic()
        try:
            await asyncio.wait_for(limiter.acquire(), self._max_wait if max_wait is None else max_wait)
        except TimeoutError:
            waited = time.monotonic() - started
            LIMITER_REJECTIONS.labels(bucket).inc()
            per_minute = self._budgets[bucket].per_minute
            # The leaky bucket frees one call every 60/N s.
            raise RateLimitedLocally(bucket, per_minute, waited, retry_after=60.0 / per_minute) from None
        LIMITER_WAITS.labels(bucket).observe(time.monotonic() - started)
