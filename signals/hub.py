"""Live signals for watchers: one refresh loop per coin, shared by every watcher of it.

The loop asks the desk for the coin's signal every ``refresh_seconds``; the desk answers from its
memo and the upstream cache, so a thousand watchers of BTC cost upstream what one costs. Every new
signal goes to each watcher's bounded queue; a watcher whose queue is full (a client not reading)
is dropped with a reason, never slowing the loop or the others. The loop stops when the coin's last
watcher leaves, unless alerts keep it (``keep``); alerts hear every signal through ``add_listener``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from signals.desk import LiveSignal
from signals.errors import SignalUnavailableError, WatchLimitError

log = logging.getLogger("cryptosignals.live")
QUEUE_SIZE = 32


@dataclass(eq=False)
class Watcher:
    symbols: tuple[str, ...]
    client: str
    # New signals; None (always the last item) means the hub ended this watcher, ``ended`` says why.
    queue: asyncio.Queue[LiveSignal | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    ended: str = ""

    def end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = reason
        while self.queue.full():  # make room for the end marker: the client is gone or going anyway
            self.queue.get_nowait()
        self.queue.put_nowait(None)


def changed_enough(previous: LiveSignal, current: LiveSignal, min_score_change: float) -> bool:
    """Whether a watcher hears ``current`` after ``previous``: the class changed, or the score moved
    by ``min_score_change`` points (SSE, gRPC and WebSocket streams alike)."""
    return (
        current.scored.direction != previous.scored.direction
        or abs(current.scored.score - previous.scored.score) >= min_score_change
    )


class SignalHub:
    def __init__(
        self,
        signal_of: Callable[[str], Awaitable[LiveSignal]],
        *,
        refresh_seconds: float = 5.0,
        max_watchers: int = 1000,
        max_per_client: int = 20,
        heartbeat_seconds: float = 15.0,
    ) -> None:
        self._signal_of = signal_of
        self.refresh_seconds = refresh_seconds
        self.heartbeat_seconds = heartbeat_seconds  # a watcher with nothing new hears this often that all is well
        self.max_watchers = max_watchers
        self.max_per_client = max_per_client
        self._watchers: dict[str, set[Watcher]] = {}  # symbol -> watchers
        self._all: set[Watcher] = set()
        self._loops: dict[str, asyncio.Task[None]] = {}
        self._latest: dict[str, LiveSignal] = {}
        self._listeners: list[Callable[[LiveSignal], None]] = []
        self._kept: frozenset[str] = frozenset()  # coins whose loop runs even without watchers (alerts)
        self.refreshes = 0  # signals computed by the loops (for benchmarks and tests)
        self._closed = False

    @property
    def watcher_count(self) -> int:
        return len(self._all)

    def add_listener(self, listener: Callable[[LiveSignal], None]) -> None:
        """Called with every signal a loop computes (alerts evaluate conditions here)."""
        self._listeners.append(listener)

    def keep(self, symbols: Iterable[str]) -> None:
        """Run these coins' loops even without watchers (coins with alerts); replaces the last set."""
        kept = frozenset(symbols)
        for symbol in self._kept - kept:
            if symbol not in self._watchers:
                self._stop_loop(symbol)
        self._kept = kept
        if not self._closed:
            for symbol in kept:
                self._start_loop(symbol)

    def _start_loop(self, symbol: str) -> None:
        if symbol not in self._loops:
            self._loops[symbol] = asyncio.create_task(self._loop(symbol), name=f"live-{symbol}")

    def _stop_loop(self, symbol: str) -> None:
        loop = self._loops.pop(symbol, None)
        if loop is not None:
            loop.cancel()

    def watch(self, symbols: tuple[str, ...], client: str) -> Watcher:
        if self._closed:
            raise WatchLimitError("the server is shutting down")
        if len(self._all) >= self.max_watchers:
            raise WatchLimitError(f"this server already streams to {self.max_watchers} watchers: try again later")
        if sum(1 for w in self._all if w.client == client) >= self.max_per_client:
            raise WatchLimitError(f"at most {self.max_per_client} streams per client: close one first")
        watcher = Watcher(symbols, client)
        self._all.add(watcher)
        for symbol in symbols:
            self._watchers.setdefault(symbol, set()).add(watcher)
            self._start_loop(symbol)
        return watcher

    def leave(self, watcher: Watcher) -> None:
        self._all.discard(watcher)
        for symbol in watcher.symbols:
            watchers = self._watchers.get(symbol)
            if watchers is None:
                continue
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[symbol]
                if symbol not in self._kept:
                    self._stop_loop(symbol)

    def latest(self, symbol: str) -> LiveSignal | None:
        return self._latest.get(symbol)

    async def current(self, symbol: str) -> LiveSignal:
        """The coin's signal now (the memo and cache make this cheap); SignalUnavailableError if none."""
        return await self._signal_of(symbol)

    async def _loop(self, symbol: str) -> None:
        while True:
            try:
                signal = await self._signal_of(symbol)
            except SignalUnavailableError as exc:
                log.warning("live: no signal for %s this round: %s", symbol, exc)
            except Exception:
                log.exception("live: refreshing %s failed", symbol)
            else:
                self.refreshes += 1
                self._publish(symbol, signal)
            await asyncio.sleep(self.refresh_seconds)

    def _publish(self, symbol: str, signal: LiveSignal) -> None:
        previous = self._latest.get(symbol)
        self._latest[symbol] = signal
        if previous is signal:
            return  # the memoised same computation: nothing new
        for listener in self._listeners:
            try:
                listener(signal)
            except Exception:
                log.exception("live: a listener failed")
        for watcher in list(self._watchers.get(symbol, ())):
            try:
                watcher.queue.put_nowait(signal)
            except asyncio.QueueFull:
                watcher.end("dropped: the client did not keep up with the stream")
                self.leave(watcher)

    async def aclose(self) -> None:
        """End every stream with a reason (shutdown) and stop the loops."""
        self._closed = True
        for watcher in list(self._all):
            watcher.end("the server is shutting down: reconnect to another replica")
            self.leave(watcher)
        for loop in list(self._loops.values()):
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        self._loops.clear()
