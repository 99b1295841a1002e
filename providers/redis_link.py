"""The connection to the shared Redis (REDIS_URL), and what happens when it is not there.

Redis is an optimisation shared by replicas (one upstream quota for all), never a dependency of a
request: every caller catches ``REDIS_FAILURES`` and falls back to in-process behaviour. After a
failure the link is considered down for ``retry_after`` seconds, so a dead Redis costs one
timeout per few seconds, not one per cache lookup; warnings are rate-limited for the same reason.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis.asyncio as aioredis
from prometheus_client import Counter
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger("cryptosignals.redis")

REDIS_ERRORS = Counter(
    "cryptosignals_redis_errors_total",
    "Failed calls to the shared Redis (the caller fell back to in-process cache or budgets), by operation.",
    ["operation"],
)

# What a Redis call can raise when the server is down, slow or answers garbage.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

WARN_EVERY_SECONDS = 30.0


def redacted_url(url: str) -> str:
    """The URL without its password (in the user part or as ``?password=``), for logs and errors."""
    parts = urlsplit(url)._replace(query="", fragment="")
    if parts.password is None:
        return urlunsplit(parts)
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


DEFAULT_MAX_CONNECTIONS = 32
DEFAULT_POOL_TIMEOUT = 2.0


class RedisLink:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "cryptosignals",
        timeout: float = 0.5,
        retry_after: float = 5.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        pool_timeout: float = DEFAULT_POOL_TIMEOUT,
    ):
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        # No retries inside redis-py (its default backs off for seconds): a failure falls back at once.
        # A blocking pool: a caller finding every connection busy waits for one (bounded), it does not fail.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.client = aioredis.Redis(connection_pool=pool)
        self._retry_after = retry_after
        self._down_until = 0.0
        self._last_warning = -WARN_EVERY_SECONDS
        self._suppressed = 0

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}:{kind}:{name}"

    def failed(self, operation: str, error: BaseException) -> None:
        """Count a failure, mark the link down for a while, and warn (at most every 30 s)."""
        REDIS_ERRORS.labels(operation).inc()
        now = time.monotonic()
        self._down_until = now + self._retry_after
        if now - self._last_warning < WARN_EVERY_SECONDS:
            self._suppressed += 1
            return
        more = f" ({self._suppressed} more since the last warning)" if self._suppressed else ""
        log.warning(
            "redis %s failed during %s: %s%s; using in-process cache and budgets, retrying in %.0f s",
            redacted_url(self.url),
            operation,
            self._describe(error),
            more,
            self._retry_after,
        )
        self._last_warning, self._suppressed = now, 0

    def _describe(self, error: BaseException) -> str:
        text = str(error)
        parts = urlsplit(self.url)
        for password in (parts.password, *parse_qs(parts.query).get("password", [])):
            if password:
                text = text.replace(password, "***")
        return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__

    async def aclose(self) -> None:
        await self.client.aclose()
