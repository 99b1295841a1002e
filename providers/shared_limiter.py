"""Upstream budgets shared by every replica through Redis (the ``limits`` library's moving window).

Same contract as UpstreamLimiter.acquire: a call over budget waits up to ``max_wait`` for
capacity, then fails locally as RateLimitedLocally. A budget of N per minute is a moving window
of 60 s holding at most N calls across all replicas, so a burst of N is allowed, as in process.
Unlike the in-process leaky bucket, a slot comes back 60 s after the call that used it, not
spread over the minute: never more than N calls in any minute, which is what providers count.

Window timestamps are each replica's wall clock (that is how ``limits`` works): replicas need
synchronised clocks (NTP), as they do for the shared cache's expiry times.

If Redis fails, the call falls back to the in-process bucket (each replica then spends its own
budget, as before REDIS_URL existed) and the link is marked down for a few seconds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter

from providers.ratelimit import LIMITER_REJECTIONS, LIMITER_WAITS, RateLimitedLocally, UpstreamLimiter
from providers.redis_link import REDIS_FAILURES, RedisLink


def limits_uri(url: str) -> str:
    """``limits`` names its async redis schemes ``async+redis://``, ``async+rediss://``, ``async+redis+unix://``."""
    if url.startswith("unix://"):
        return "async+redis+" + url
    return "async+" + url


def window_item(per_minute: float) -> RateLimitItem:
    """The moving window for a budget: whole calls per minute, or one call per several minutes."""
    if per_minute >= 1:
        return RateLimitItemPerMinute(int(per_minute), namespace="bucket")  # floor: never above the plan
    return RateLimitItemPerMinute(1, multiples=max(1, round(1 / per_minute)), namespace="bucket")


class SharedLimiter(UpstreamLimiter):
    def __init__(
        self, link: RedisLink, per_minute: Mapping[str, float], max_wait: float = 2.0, *, client_share: float = 1.0
    ) -> None:
        super().__init__(per_minute, max_wait, client_share=client_share)
        self._link = link
        # The link's pool: same timeouts and no redis-py retries, so a dead Redis falls back at once.
        storage = RedisStorage(
            limits_uri(link.url),
            implementation="redispy",
            key_prefix=link.key("ratelimit", "").rstrip(":"),
            connection_pool=link.client.connection_pool,  # type: ignore[arg-type]
        )
        self._windows = MovingWindowRateLimiter(storage)
        self._items = {bucket: window_item(b.per_minute) for bucket, b in self._budgets.items()}

    async def acquire(self, provider: str, endpoint: str, max_wait: float | None = None) -> None:
        bucket = self.bucket_for(provider, endpoint)
        item = self._items.get(bucket)
        if item is None:
            return
        bound = self._max_wait if max_wait is None else max_wait
        if not self._link.available:
            await super().acquire(provider, endpoint, bound)
            return
        self._take_share(bucket)  # per replica (providers/fairness.py)
        started = time.monotonic()
        deadline = started + bound
        try:
            while not await self._windows.hit(item, bucket):
                stats = await self._windows.get_window_stats(item, bucket)
                now = time.monotonic()
                free_in = max(0.005, stats.reset_time - time.time())
                if now >= deadline:
                    LIMITER_REJECTIONS.labels(bucket).inc()
                    per_minute = self._budgets[bucket].per_minute
                    raise RateLimitedLocally(bucket, per_minute, now - started, retry_after=free_in)
                # Sleep until the oldest call leaves the window (another replica may take that slot:
                # then the loop sleeps again), never past the bound.
                await asyncio.sleep(min(free_in, deadline - now))
        except REDIS_FAILURES as exc:
            self._link.failed("ratelimit", exc)
            await super().acquire(provider, endpoint, max(0.0, deadline - time.monotonic()))
            return
        LIMITER_WAITS.labels(bucket).observe(time.monotonic() - started)
