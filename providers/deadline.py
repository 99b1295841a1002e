"""The deadline of the request being served, carried to every upstream call it makes.

The server sets it once per RPC (its own deadline, or the client's when that is sooner); the HTTP
layer never waits past it: each request's timeout, the retry backoff and the rate limiter's wait
are cut to what is left. An upstream call that runs out of time fails as ``timeout`` a little
before the RPC's deadline, so a signal can still answer, with that factor missing, instead of the
whole call ending in DEADLINE_EXCEEDED.

A context variable, so concurrent fan-out tasks (which copy the context) inherit it, and a
background cache refresh can drop it (it serves later callers, not the one that started it).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar

# Kept back from upstream work for scoring the data and sending the answer.
RESERVE_SECONDS = 0.1

_deadline: ContextVar[float | None] = ContextVar("upstream_deadline", default=None)


@contextlib.contextmanager
def deadline_in(seconds: float | None) -> Iterator[None]:
    """Upstream calls made inside this block (and tasks it starts) finish within ``seconds``;
    ``None`` lifts any deadline (background work)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def upstream_budget() -> float | None:
    """Seconds an upstream call may still take, or None when no deadline applies."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return deadline - RESERVE_SECONDS - time.monotonic()


def within_budget(seconds: float) -> float:
    """``seconds`` cut to the upstream budget (may be <= 0: no time left)."""
    budget = upstream_budget()
    return seconds if budget is None else min(seconds, budget)
