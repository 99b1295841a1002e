"""Which coins have futures markets: an unknown symbol is answered NOT_FOUND before it costs quota.

Without this, every request for a coin nobody lists (``/signals/NOPECOIN``, or a stream of made-up
symbols) fanned out to every provider: 14-17 upstream calls each with keys, 8-9 keyless, none of
them cacheable, all of them spent from paid, rate-limited budgets. Two defences, both free on the
request path:

- **Coinglass's supported-coins list** (when its key is set), loaded in the background at start and
  refreshed hourly: a symbol outside it is NOT_FOUND at once. Until the list has loaded (or while
  Coinglass cannot give it) nothing is refused: the signal path never waits for it.
- **Recently unknown coins**: a symbol that every provider just said it does not know is refused
  for ``UNKNOWN_SECONDS`` without asking again (bounded memory: oldest forgotten first); never a
  coin Coinglass lists (no data anywhere for a listed coin is a glitch, to be retried).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from providers.deadline import deadline_in
from providers.errors import ProviderError

log = logging.getLogger("cryptosignals.universe")

REFRESH_SECONDS = 3600.0  # Coinglass adds coins rarely; the list endpoint is cached as long
RETRY_SECONDS = 60.0  # after a failed load
UNKNOWN_SECONDS = 300.0
MAX_UNKNOWN = 10_000


class CoinUniverse:
    def __init__(
        self, load_listed: Callable[[], Awaitable[list[str]]] | None, clock: Callable[[], float] = time.monotonic
    ):
        self._load_listed = load_listed  # None: no source (no Coinglass key)
        self._clock = clock
        self._listed: frozenset[str] | None = None
        self._next_load = 0.0
        self._task: asyncio.Task[None] | None = None
        self._unknown: OrderedDict[str, float] = OrderedDict()

    def refuses(self, symbol: str) -> bool:
        """True when ``symbol`` is known not to exist; also starts a (re)load of the list when due."""
        now = self._clock()
        self._maybe_reload(now)
        if self._listed is not None and symbol in self._listed:
            return False  # listed: never refused, whatever was remembered before the list loaded
        until = self._unknown.get(symbol)
        if until is not None:
            if now < until:
                return True
            del self._unknown[symbol]
        return self._listed is not None

    def remember_unknown(self, symbol: str) -> None:
        if self._listed is not None and symbol in self._listed:
            return  # a listed coin with no data anywhere is a glitch to retry, not a coin to refuse
        self._unknown[symbol] = self._clock() + UNKNOWN_SECONDS
        self._unknown.move_to_end(symbol)
        while len(self._unknown) > MAX_UNKNOWN:
            self._unknown.popitem(last=False)

    @property
    def listed_count(self) -> int | None:
        return None if self._listed is None else len(self._listed)

    def _maybe_reload(self, now: float) -> None:
        if self._load_listed is None or now < self._next_load or (self._task is not None and not self._task.done()):
            return
        self._next_load = now + RETRY_SECONDS  # a failed load is retried in a minute
        self._task = asyncio.ensure_future(self._reload())

    async def _reload(self) -> None:
        assert self._load_listed is not None
        try:
            with deadline_in(None):  # not the deadline of whichever request happened to trigger it
                coins = await self._load_listed()
        except ProviderError as error:
            log.warning("supported coins unavailable, unknown symbols are not refused early: %s", error.reason)
            return
        if coins:  # an empty list is a broken answer, not a market with no coins
            self._listed = frozenset(coin.upper() for coin in coins)
            self._next_load = self._clock() + REFRESH_SECONDS

    async def start(self) -> None:
        """Begin loading the list (without waiting for it)."""
        self._maybe_reload(self._clock())

    async def settled(self) -> None:
        """Wait for the load in progress, if any (tests; the request path never waits)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
