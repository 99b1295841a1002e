"""Each client's share of the upstream budgets: one client cannot spend the paid quota of all.

The guard names the caller of every RPC (as the client rate limit names it: its key, else its
address) in a context variable; each upstream call made for that RPC (the tasks it starts inherit
the context) is counted against that client, per budget bucket, over a sliding minute. A client
whose uncached calls this minute reached its share (``CLIENT_UPSTREAM_SHARE`` of the bucket's
per-minute budget, at least one call) gets its next one refused locally (RateLimitedLocally with
the seconds until its oldest call leaves the window), and the guard answers its further calls
429 with ``Retry-After`` until then; other clients keep their share. Cache hits cost nothing and
are never counted; background work (the recorder, the hub's refreshes, alerts) has no client and
is bounded by the budget alone. Shares are kept per replica, like the client rate limit's buckets
without Redis: with N replicas a client may spend N shares of the shared budget.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

WINDOW_SECONDS = 60.0
MAX_CLIENTS = 10_000  # clients remembered at once (the least recent forgotten first)

_caller: ContextVar[str | None] = ContextVar("upstream_caller", default=None)


@contextmanager
def charged_to(client: str | None) -> Iterator[None]:
    """Upstream calls made inside (and in tasks started inside) count against ``client``."""
    token = _caller.set(client)
    try:
        yield
    finally:
        _caller.reset(token)


def set_caller(client: str | None) -> None:
    """For the guard's hot path: the call's task is its own, so the value ends with the task."""
    _caller.set(client)


class ClientShares:
    def __init__(
        self, per_minute: Mapping[str, float], share: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"a client's share must be in (0, 1], got {share}")
        self.share = share
        # A share of the whole budget limits nothing more than the budget does.
        self._allowed = {b: max(1, math.floor(rate * share)) for b, rate in per_minute.items() if rate > 0}
        if share >= 1:
            self._allowed = {}
        self._clock = clock
        self._spent: OrderedDict[str, dict[str, deque[float]]] = OrderedDict()

    @property
    def active(self) -> bool:
        return bool(self._allowed)

    def allowed(self, bucket: str) -> int | None:
        return self._allowed.get(bucket)

    def take(self, bucket: str) -> float | None:
        """Count an upstream call of the current caller in ``bucket``; the seconds to wait instead
        when the caller's share is spent (None: go ahead; no caller or no budget: always None)."""
        client = _caller.get()
        allowed = self._allowed.get(bucket)
        if client is None or allowed is None:
            return None
        now = self._clock()
        calls = self._calls(client, bucket, now)
        if len(calls) >= allowed:
            return max(0.001, calls[0] + WINDOW_SECONDS - now)
        calls.append(now)
        return None

    def wait(self, client: str) -> tuple[str, float] | None:
        """The bucket whose share ``client`` has spent and how long until it has room again."""
        buckets = self._spent.get(client)
        if not buckets:
            return None
        now = self._clock()
        worst: tuple[str, float] | None = None
        for bucket, allowed in self._allowed.items():
            calls = self._calls(client, bucket, now) if bucket in buckets else None
            if calls is not None and len(calls) >= allowed:
                wait = calls[0] + WINDOW_SECONDS - now
                if worst is None or wait > worst[1]:
                    worst = (bucket, wait)
        return worst

    def _calls(self, client: str, bucket: str, now: float) -> deque[float]:
        buckets = self._spent.get(client)
        if buckets is None:
            buckets = self._spent[client] = {}
            while len(self._spent) > MAX_CLIENTS:
                self._spent.popitem(last=False)
        else:
            self._spent.move_to_end(client)
        calls = buckets.setdefault(bucket, deque())
        while calls and calls[0] + WINDOW_SECONDS <= now:
            calls.popleft()
        return calls
