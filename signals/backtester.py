"""The backtest as the service runs it: validate the period, fetch history, replay, report.

The report is CPU work (a replay of every bar and a few thousand bootstrap draws, ~0.5 s for 180
days of 4h bars) and runs in a worker thread so the event loop keeps serving signals meanwhile; an
identical request within ``memo_seconds`` shares the same computation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.cache import UpstreamCache
from providers.clients import Clients
from scoring import ScoringConfig
from signals.backtest import BacktestReport, run_backtest
from signals.errors import BacktestRefusedError, TooFewBarsError
from signals.history import INTERVAL_NAMES, load_history
from signals.inputs import DAY_MS, from_ms, to_ms
from signals.replay import NO_SOCIAL_HISTORY

DEFAULT_DAYS = 180
DEFAULT_HORIZON_BARS = 6
MAX_HORIZON_BARS = 100
MAX_BARS = 4400  # ~2 years of 4h bars, ~6 months of 1h bars: five pages of 1000 per series


@dataclass(frozen=True)
class BacktestPeriod:
    interval_ms: int
    start_ms: int  # first bar (open time), aligned to the interval
    end_ms: int  # last bar
    horizon_bars: int

    @property
    def interval(self) -> str:
        return INTERVAL_NAMES[self.interval_ms]


def plan_period(
    interval_ms: int,
    start: datetime | None,
    end: datetime | None,
    horizon_bars: int,
    now: datetime | None = None,
) -> BacktestPeriod:
    """The period asked for, aligned to whole bars; BacktestRefusedError naming what is wrong."""
    if not 1 <= horizon_bars <= MAX_HORIZON_BARS:
        raise BacktestRefusedError(f"horizon_bars must be between 1 and {MAX_HORIZON_BARS}, got {horizon_bars}")
    now_ms = to_ms(now or datetime.now(UTC))
    # The last CLOSED bar: the one that opened a full interval before now.
    last_closed = (now_ms // interval_ms - 1) * interval_ms
    end_ms = last_closed if end is None else min(to_ms(end) // interval_ms * interval_ms, last_closed)
    if end is not None and to_ms(end) > now_ms:
        raise BacktestRefusedError(f"end {end.isoformat()} is in the future")
    start_ms = end_ms - DEFAULT_DAYS * DAY_MS if start is None else -(-to_ms(start) // interval_ms) * interval_ms
    if start is not None and end is not None and start >= end:
        raise BacktestRefusedError(f"start {start.isoformat()} must be before end {end.isoformat()}")
    if start_ms >= end_ms:
        raise BacktestRefusedError(
            f"the period from {from_ms(start_ms):%Y-%m-%d %H:%M} to {from_ms(end_ms):%Y-%m-%d %H:%M} UTC holds no "
            "closed bar"
        )
    bars = (end_ms - start_ms) // interval_ms + 1
    if bars > MAX_BARS:
        days = MAX_BARS * interval_ms // DAY_MS
        raise BacktestRefusedError(
            f"the period holds {bars} bars of {INTERVAL_NAMES[interval_ms]}, over the limit of {MAX_BARS} "
            f"(about {days} days at this interval): shorten it"
        )
    if bars < horizon_bars + 30:
        raise BacktestRefusedError(
            f"the period holds only {bars} bars: at least {horizon_bars + 30} are needed for a "
            f"{horizon_bars}-bar horizon"
        )
    return BacktestPeriod(interval_ms, start_ms, end_ms, horizon_bars)


class Backtester:
    def __init__(self, clients: Clients, config: ScoringConfig, memo_seconds: float = 60.0) -> None:
        self._clients = clients
        self._config = config
        self._memo_seconds = memo_seconds
        self._memo = UpstreamCache(max_stale=0)

    async def run(self, coin: str, period: BacktestPeriod) -> BacktestReport:
        key = ("backtest", coin, period)
        if self._memo_seconds <= 0:
            return await self._run(coin, period)
        report: BacktestReport = await self._memo.get(
            key, self._memo_seconds, lambda: self._run(coin, period), "backtest:/backtest"
        )
        return report

    async def _run(self, coin: str, period: BacktestPeriod) -> BacktestReport:
        history, notes = await load_history(self._clients, coin, period.interval_ms, period.start_ms, period.end_ms)
        first = history.price.times[0]
        if first > period.start_ms:
            notes.append(
                f"price history begins at {from_ms(first):%Y-%m-%d %H:%M} UTC, after the start asked for: "
                "bars before it (and the warm-up after it) are not scored"
            )
        notes.extend(f"{factor}: {why}" for factor, why in history.unavailable.items())
        notes.append(f"social: {NO_SOCIAL_HISTORY}")
        try:
            return await asyncio.to_thread(
                run_backtest,
                history,
                self._config,
                period.start_ms,
                period.end_ms,
                period.horizon_bars,
                notes=notes,
            )
        except TooFewBarsError as exc:
            raise BacktestRefusedError(str(exc)) from None

    async def aclose(self) -> None:
        await self._memo.aclose()
