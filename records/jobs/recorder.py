"""The recorder: every served and watched signal into the history table, without ever slowing one.

A signal answer never waits on the database: ``offer`` only appends to a bounded buffer, and a
writer task empties it in batches, retrying with backoff while the database is down (rows wait;
when the buffer is full new rows are dropped and counted). Shutdown flushes what is buffered.

Besides the served signals (any coin, at most once per interval per replica), the recorder computes
the signal of each coin of ``WATCHLIST`` every ``HISTORY_INTERVAL_SECONDS`` through the same desk
and cache as requests. Rows are keyed by (symbol, interval bucket): replicas recording the same
interval write one row between them (insert-or-ignore).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Gauge

from records.db import Database, redact_url
from signals.desk import LiveSignal
from signals.errors import SignalUnavailableError

log = logging.getLogger("cryptosignals.history")

ROWS_WAITING = Gauge("cryptosignals_history_rows_waiting", "History rows buffered, not yet written.")
ROWS_DROPPED = Counter("cryptosignals_history_rows_dropped_total", "History rows dropped: the buffer was full.")
ROWS_WRITTEN = Counter("cryptosignals_history_rows_written_total", "History rows sent to the database.")
WRITE_ERRORS = Counter("cryptosignals_history_write_errors_total", "Failed history writes (retried).")

BATCH_ROWS = 500
MAX_BACKOFF_SECONDS = 30.0


def history_row(live: LiveSignal, interval_seconds: int, config_hash: str) -> dict[str, Any]:
    """One table row from a computed signal (every factor with its sub-score, weight, data time...)."""
    computed_ms = int(live.computed_at.timestamp() * 1000)
    scored = live.scored
    return {
        "symbol": live.symbol,
        "bucket": computed_ms // (interval_seconds * 1000),
        "computed_ms": computed_ms,
        "score": round(scored.score, 4),
        "signal": scored.direction,
        "confidence": scored.confidence,
        "coverage": round(scored.coverage, 4),
        "price": live.price,
        "factors": [
            {
                "factor": f.name,
                "sub_score": round(f.sub_score, 4),
                "weight": f.weight,
                "contribution": round(f.contribution, 4),
                "source": f.source,
                "data_time_ms": int(f.as_of.timestamp() * 1000) if f.as_of is not None else None,
                "metrics": dict(f.metrics),
            }
            for f in scored.factors
        ],
        "config_hash": config_hash,
        "profile": live.profile,
    }


class Recorder:
    def __init__(
        self,
        database: Database,
        signal_of: Callable[..., Awaitable[LiveSignal]],
        *,
        watchlist: Sequence[str],
        interval_seconds: int,
        buffer_rows: int,
        config_hash: str,
        flush_seconds: float = 1.0,
        profile_hashes: Mapping[str, str] | None = None,
        profiles: Sequence[str] = (),
    ) -> None:
        """``config_hash``: the default profile's; ``profile_hashes``: every profile's by name.
        ``profiles``: the other profiles recorded for the watchlist too (so each has a track record);
        ``signal_of`` then takes the profile as a second argument."""
        self.database = database
        self._signal_of = signal_of
        self._watchlist = tuple(watchlist)
        self._interval = interval_seconds
        self._capacity = buffer_rows
        self._config_hash = config_hash
        self._hashes = dict(profile_hashes or {})
        self._profiles = tuple(profiles)
        self._flush_seconds = flush_seconds
        self._buffer: deque[dict[str, Any]] = deque()
        self._recorded: dict[tuple[str, str], int] = {}  # (symbol, profile) -> last bucket offered here
        self._wake = asyncio.Event()  # the writer: a batch is full, or shutdown
        self._stop = asyncio.Event()  # everything else: shutdown
        self._drained = asyncio.Event()  # the buffer is empty (set by the writer)
        self._drained.set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.ready = asyncio.Event()  # the schema is migrated
        self.watched = asyncio.Event()  # a round of the watchlist has been offered (set after each)
        self.unavailable_reason = "starting"

    # ---- the request path: never waits ---------------------------------------------------------

    def offer(self, live: LiveSignal) -> None:
        # On every served signal: decide first, from the time alone, whether there is anything to do.
        bucket = int(live.computed_at.timestamp()) // self._interval
        key = (live.symbol, live.profile)
        if self._recorded.get(key) == bucket:
            return  # this interval of this coin and profile is recorded already
        row = history_row(live, self._interval, self._hashes.get(live.profile, self._config_hash))
        if len(self._buffer) >= self._capacity:
            ROWS_DROPPED.inc()
            return
        self._recorded[key] = row["bucket"]
        self._buffer.append(row)
        self._drained.clear()
        ROWS_WAITING.set(len(self._buffer))
        if len(self._buffer) >= BATCH_ROWS:
            self._wake.set()

    async def flush(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a bound, not a deadline API
        """Write what is buffered now and wait until it is written (TimeoutError past ``timeout``)."""
        self._wake.set()
        await asyncio.wait_for(self._drained.wait(), timeout)

    @property
    def waiting(self) -> int:
        return len(self._buffer)

    # ---- background work -----------------------------------------------------------------------

    async def start(self, *jobs: Callable[[], Awaitable[None]]) -> None:
        """Migrate (retrying while the database is unreachable), then write, watch and run ``jobs``."""
        self._tasks = [
            asyncio.create_task(self._migrate_then_write(), name="history-writer"),
            asyncio.create_task(self._watch(), name="history-watchlist"),
            *(asyncio.create_task(self._after_ready(job), name="history-job") for job in jobs),
        ]

    async def _migrate_then_write(self) -> None:
        backoff = 1.0
        while not self._stopping:
            try:
                await self.database.migrate()
                break
            except Exception as exc:
                self._unavailable(exc)
                await self.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        self.ready.set()
        self.unavailable_reason = ""
        await self._write_loop()

    async def _after_ready(self, job: Callable[[], Awaitable[None]]) -> None:
        await self.ready.wait()
        await job()

    async def _write_loop(self) -> None:
        backoff = 1.0
        while True:
            if not self._buffer:
                if self._stopping:
                    return
                await self._pause(self._flush_seconds)
                continue
            batch = [self._buffer[i] for i in range(min(BATCH_ROWS, len(self._buffer)))]
            try:
                await self.database.insert(batch)
            except Exception as exc:
                WRITE_ERRORS.inc()
                self._unavailable(exc)
                if self._stopping:
                    return
                await self._pause(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                continue
            for _ in batch:
                self._buffer.popleft()
            if not self._buffer:
                self._drained.set()
            ROWS_WRITTEN.inc(len(batch))
            ROWS_WAITING.set(len(self._buffer))
            self.unavailable_reason = ""
            backoff = 1.0

    async def _watch(self) -> None:
        while not self._stopping:
            for coin in self._watchlist:
                try:
                    self.offer(await self._signal_of(coin))
                    for profile in self._profiles:
                        self.offer(await self._signal_of(coin, profile))
                except SignalUnavailableError as exc:
                    log.warning("history: no signal for %s this interval: %s", coin, exc)
                except Exception:
                    log.exception("history: computing the signal of %s failed", coin)
            self.watched.set()
            now = time.time()
            await self.sleep(self._interval - now % self._interval + 0.5)  # just after the next bucket starts

    async def sleep(self, seconds: float) -> None:
        """Sleep, or return at once when the recorder stops (background jobs pace themselves with it)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=max(0.0, seconds))

    @property
    def stopping(self) -> bool:
        return self._stopping

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
        self._wake.clear()

    def _unavailable(self, exc: BaseException) -> None:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        reason = reason.replace(self.database.url, redact_url(self.database.url))
        if reason != self.unavailable_reason:
            log.warning(
                "history database unavailable (%s), rows wait in memory: %s", redact_url(self.database.url), reason
            )
        self.unavailable_reason = reason

    async def aclose(self, flush_timeout: float = 10.0) -> None:
        """Stop the loops, write what is buffered (bounded by ``flush_timeout``), close the engine."""
        self._stopping = True
        self._stop.set()
        self._wake.set()
        writer = self._tasks[0] if self._tasks else None
        others = self._tasks[1:]
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if writer is not None:
            try:
                await asyncio.wait_for(asyncio.shield(writer), timeout=flush_timeout)
            except (TimeoutError, Exception):
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
        if self._buffer:
            log.warning("history: %d rows could not be written before shutdown", len(self._buffer))
        await self.database.aclose()
