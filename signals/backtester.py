"""The backtest as the service runs it: validate the period, fetch history, replay, report.

The report is CPU work (a replay of every bar and a few thousand bootstrap draws, ~0.5 s for 180
days of 4h bars) and runs in a worker thread so the event loop keeps serving signals meanwhile; an
identical request within ``memo_seconds`` shares the same computation. The work is bounded
(``Backtester``): a limit on reports at once, per process and per client, and a worker that stops
when nobody waits for its report.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from providers.clients import Clients
from scoring import ScoringConfig
from signals.backtest import BacktestReport, run_backtest
from signals.costs import Costs
from signals.errors import BacktestBusyError, BacktestRefusedError, UnknownProfileError
from signals.history import INTERVAL_NAMES, load_history
from signals.inputs import DAY_MS, from_ms, to_ms
from signals.replay import NO_SOCIAL_HISTORY, History, ReplayedBar, replay

DEFAULT_DAYS = 180
DEFAULT_HORIZON_BARS = 6
MAX_HORIZON_BARS = 100
MAX_BARS = 4400  # ~2 years of 4h bars, ~6 months of 1h bars: five pages of 1000 per series
MAX_KEPT_REPLAYS = 8  # periods whose replay is kept for other horizons (each ~1-5 MB)


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


@dataclass(eq=False)
class _Report:
    """A report being computed: its task, the switch that stops its worker, who waits for it."""

    task: asyncio.Task[BacktestReport]
    stop: threading.Event
    client: str
    waiters: int = 0


@dataclass(frozen=True)
class _Replayed:
    history: History
    notes: tuple[str, ...]
    bars: list[ReplayedBar]


class Backtester:
    """Reports, bounded: at most ``max_running`` computed at once per process and ``max_per_client``
    per client (BacktestBusyError, a 429, beyond); a report nobody waits for any more (its caller's
    deadline passed, or it went away) stops its worker at the next bar or draw.

    A finished report is kept ``memo_seconds``; the replay of a period (history fetched and every bar
    scored, the costly part) is kept as long and shared by every horizon asked of that period.
    """

    def __init__(
        self,
        clients: Clients,
        config: ScoringConfig,
        memo_seconds: float = 60.0,
        *,
        max_running: int = 2,
        max_per_client: int = 1,
        clock: Callable[[], float] = time.monotonic,
        profiles: Mapping[str, ScoringConfig] | None = None,
    ) -> None:
        self._clients = clients
        self._config = config  # the default profile's
        self.profiles: dict[str, ScoringConfig] = {**(profiles or {}), config.profile: config}
        self._memo_seconds = memo_seconds
        self._max_running = max_running
        self._max_per_client = max_per_client
        self._clock = clock
        self._done: dict[tuple[str, BacktestPeriod, str, Costs], tuple[float, BacktestReport]] = {}
        self._running: dict[tuple[str, BacktestPeriod, str, Costs], _Report] = {}
        self._replays: OrderedDict[tuple[str, int, int, int, str], tuple[float, asyncio.Future[_Replayed]]] = (
            OrderedDict()
        )

    def config_of(self, profile: str | None) -> ScoringConfig:
        """A profile's config by name (None or "": the default); UnknownProfileError if not served."""
        if not profile:
            return self._config
        config = self.profiles.get(profile)
        if config is None:
            raise UnknownProfileError(profile, tuple(self.profiles))
        return config

    @property
    def running(self) -> int:
        return len(self._running)

    async def run(
        self,
        coin: str,
        period: BacktestPeriod,
        client: str = "",
        profile: str | None = None,
        costs: Costs | None = None,
    ) -> BacktestReport:
        """``costs``: the fee of the report's net figures (5 bps per side by default); the replay is
        shared whatever the fee."""
        key = (coin, period, self.config_of(profile).profile, costs or Costs())
        now = self._clock()
        done = self._done.get(key)
        if done is not None and done[0] > now:
            return done[1]
        report = self._running.get(key)
        if report is None:
            report = self._start(key, client)
        report.waiters += 1
        try:
            return await asyncio.shield(report.task)
        finally:
            report.waiters -= 1
            if report.waiters == 0 and not report.task.done():
                # Nobody waits any more: stop the worker at its next bar or draw, not at the end.
                report.stop.set()
                report.task.cancel()

    def _start(self, key: tuple[str, BacktestPeriod, str, Costs], client: str) -> _Report:
        if len(self._running) >= self._max_running:
            raise BacktestBusyError(
                f"this server is computing {len(self._running)} backtests already (BACKTEST_MAX_RUNNING): "
                "retry in a few seconds"
            )
        mine = sum(1 for r in self._running.values() if r.client == client)
        if mine >= self._max_per_client:
            raise BacktestBusyError(
                f"at most {self._max_per_client} backtest per client at a time (BACKTEST_MAX_PER_CLIENT): "
                "wait for the one you started"
            )
        stop = threading.Event()
        coin, period, profile, costs = key
        report = _Report(
            asyncio.ensure_future(self._run(coin, period, stop, self.profiles[profile], costs)), stop, client
        )
        self._running[key] = report
        report.task.add_done_callback(lambda task: self._landed(key, report, task))
        return report

    def _landed(
        self, key: tuple[str, BacktestPeriod, str, Costs], report: _Report, task: asyncio.Task[BacktestReport]
    ) -> None:
        if self._running.get(key) is report:
            del self._running[key]
        if task.cancelled() or task.exception() is not None or self._memo_seconds <= 0:
            return
        now = self._clock()
        self._done = {k: v for k, v in self._done.items() if v[0] > now}
        self._done[key] = (now + self._memo_seconds, task.result())

    async def _replayed(
        self, coin: str, period: BacktestPeriod, stop: threading.Event, config: ScoringConfig
    ) -> _Replayed:
        """History and every bar's signal for the period, shared by the horizons asked of it."""
        key = (coin, period.interval_ms, period.start_ms, period.end_ms, config.profile)
        now = self._clock()
        for stale in [k for k, (until, _) in self._replays.items() if until <= now]:
            del self._replays[stale]
        kept = self._replays.get(key)
        if kept is not None and not (kept[1].done() and (kept[1].cancelled() or kept[1].exception())):
            self._replays.move_to_end(key)
            return await asyncio.shield(kept[1])
        future: asyncio.Future[_Replayed] = asyncio.ensure_future(self._replay(coin, period, stop, config))
        if self._memo_seconds > 0:
            self._replays[key] = (now + self._memo_seconds, future)
            while len(self._replays) > MAX_KEPT_REPLAYS:
                self._replays.popitem(last=False)
        return await future

    async def _replay(
        self, coin: str, period: BacktestPeriod, stop: threading.Event, config: ScoringConfig
    ) -> _Replayed:
        history, notes = await load_history(self._clients, coin, period.interval_ms, period.start_ms, period.end_ms)
        first = history.price.times[0]
        if first > period.start_ms:
            notes.append(
                f"price history begins at {from_ms(first):%Y-%m-%d %H:%M} UTC, after the start asked for: "
                "bars before it (and the warm-up after it) are not scored"
            )
        notes.extend(f"{factor}: {why}" for factor, why in history.unavailable.items())
        notes.append(f"social: {NO_SOCIAL_HISTORY}")
        bars = await asyncio.to_thread(replay, history, config, period.start_ms, period.end_ms, stop=stop)
        return _Replayed(history, tuple(notes), bars)

    async def _run(
        self, coin: str, period: BacktestPeriod, stop: threading.Event, config: ScoringConfig, costs: Costs
    ) -> BacktestReport:
        replayed = await self._replayed(coin, period, stop, config)
        return await asyncio.to_thread(
            run_backtest,
            replayed.history,
            config,
            period.start_ms,
            period.end_ms,
            period.horizon_bars,
            notes=replayed.notes,
            replayed=replayed.bars,
            stop=stop,
            costs=costs,
        )

    async def aclose(self) -> None:
        for report in list(self._running.values()):
            report.stop.set()
            report.task.cancel()
        self._done.clear()
        self._replays.clear()
