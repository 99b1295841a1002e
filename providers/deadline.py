"""The deadline of the request being served, carried to every upstream call it makes.

The server sets it once per RPC (its own deadline, or the client's when that is sooner); the HTTP
layer never waits past it: each request's timeout, the retry backoff and the rate limiter's wait
are cut to what is left. An upstream call that runs out of time fails as ``timeout`` a little
before the RPC's deadline, so a signal can still answer, with that factor missing, instead of the
whole call ending in DEADLINE_EXCEEDED.

Work shared by several callers (a cached upstream load several requests wait on) is not cut to
one caller's deadline: it runs without one (bounded by the upstream timeout and attempts), and
each caller waits for it only as long as its own deadline allows. An impatient client thus gets
its answer in time without degrading the answers of the patient ones waiting on the same load.

A context variable, so concurrent fan-out tasks (which copy the context) inherit it.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import NamedTuple

# Kept back from upstream work for scoring the data and sending the answer.
RESERVE_SECONDS = 0.1


class _Deadline(NamedTuple):  # made on every RPC: a tuple is cheaper than a frozen dataclass
    at: float  # time.monotonic()
    hurried: bool  # the caller asked for less time than the server allows every call


_deadline: ContextVar[_Deadline | None] = ContextVar("upstream_deadline", default=None)


class deadline_in:
    """Upstream calls made inside this block (and tasks it starts) finish within ``seconds``;
    ``None`` lifts any deadline (shared or background work). ``hurried``: the caller set a deadline
    tighter than the server's own. (A class, not a generator: it is entered on every RPC.)"""

    __slots__ = ("_token", "_value")

    def __init__(self, seconds: float | None, *, hurried: bool = False) -> None:
        self._value = None if seconds is None else _Deadline(time.monotonic() + seconds, hurried)
        self._token: Token[_Deadline | None] | None = None

    def __enter__(self) -> None:
        self._token = _deadline.set(self._value)

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _deadline.reset(self._token)


def enter_deadline(at: float, hurried: bool) -> Token[_Deadline | None]:
    """Upstream calls from here on finish by ``at`` (``time.monotonic()``): ``deadline_in``'s enter in
    one call, for the guard's every RPC. Pass the token to ``leave_deadline``."""
    return _deadline.set(_new_deadline(_Deadline, (at, hurried)))


_new_deadline = tuple.__new__  # _Deadline(...) without its Python-level __new__
leave_deadline = _deadline.reset


def upstream_budget() -> float | None:
    """Seconds an upstream call may still take, or None when no deadline applies."""
    deadline = _deadline.get()
    if deadline is None:
        return None
    return deadline.at - RESERVE_SECONDS - time.monotonic()


def within_budget(seconds: float) -> float:
    """``seconds`` cut to the upstream budget (may be <= 0: no time left)."""
    budget = upstream_budget()
    return seconds if budget is None else min(seconds, budget)


def caller_is_hurried() -> bool:
    """True when the caller's own deadline is tighter than the server's: its work is its own to do."""
    deadline = _deadline.get()
    return deadline is not None and deadline.hurried
