"""Candles for the structure (SMC) and correlation answers, from the same sources as momentum.

Coinglass price history (one reference exchange pair, e.g. Binance BTCUSDT) when its key is set and
it answers; OKX's swap candles otherwise. Every question about a coin and interval makes the same
upstream request (``FETCH_BARS`` bars), so the provider clients' cache answers all of them: one
upstream call per coin and interval per TTL (Coinglass price history 60 s, OKX candles 30 s),
whatever ``bars`` or ``window`` is asked. Only CLOSED bars are read (open time + interval <= now),
and only the contiguous run of them ending with the newest (a hole in the data ends the history).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from providers.clients import Clients
from providers.errors import ErrorKind, ProviderError
from signals import smc
from signals.coin_universe import CoinUniverse
from signals.correlation import Correlation, correlate
from signals.errors import CandlesUnavailableError, MarketQueryError

INTERVALS: dict[str, timedelta] = {"1h": timedelta(hours=1), "4h": timedelta(hours=4), "1d": timedelta(days=1)}
# Spellings accepted as in the rest of the API (h4, 4h, d1, 1d ...).
_ALIASES = {"h1": "1h", "h4": "4h", "d1": "1d", "1h": "1h", "4h": "4h", "1d": "1d"}
_OKX_BAR = {"1h": "1H", "4h": "4H", "1d": "1Dutc"}  # 1Dutc: days from 00:00 UTC (plain 1D is Hong Kong time)
FETCH_BARS = 300  # OKX's candles endpoint's maximum per call
MAX_BARS = FETCH_BARS - 1  # the newest fetched bar may still be open
MIN_BARS = 20
MAX_SWING_BARS = 10
MAX_SYMBOLS = 10
MIN_WINDOW, MAX_WINDOW = 5, MAX_BARS - 1


def interval_of(raw: str) -> str:
    name = _ALIASES.get((raw or "4h").strip().lower())
    if name is None:
        raise MarketQueryError(f"interval must be one of 1h, 4h, 1d (or h1, h4, d1), got {raw[:20]!r}")
    return name


@dataclass(frozen=True, slots=True)
class CandleHistory:
    symbol: str
    interval: str
    step: timedelta
    source: str  # provider:/endpoint
    bars: tuple[smc.Candle, ...]  # closed bars, oldest first
    fallback_reason: str  # why the preferred source was skipped ("" when it answered)


@dataclass(frozen=True, slots=True)
class StructureReport:
    history: CandleHistory
    structure: smc.MarketStructure
    reading: float | None  # smc.structure_reading


@dataclass(frozen=True, slots=True)
class TimeframeView:
    """One interval's structure as a signal's debug output shows it beside the others."""

    interval: str
    report: StructureReport | None
    error: str = ""  # why this interval has no view (its candles could not be had)

    @property
    def trend(self) -> str:
        return self.report.structure.trend if self.report is not None else "none"


TIMEFRAMES = ("1h", "4h", "1d")
TIMEFRAME_BARS = 200


def aligned(views: Sequence[TimeframeView]) -> bool:
    """Every interval's structure points the same way (and each has one)."""
    trends = {v.trend for v in views}
    return len(trends) == 1 and trends != {"none"}


@dataclass(frozen=True, slots=True)
class CorrelationReport:
    interval: str
    window: int
    correlation: Correlation
    sources: dict[str, str]  # coin -> provider:/endpoint


COINGLASS_PRICE = "coinglass:/api/futures/price/history"
OKX_CANDLES = "okx:/api/v5/market/candles"


class MarketData:
    """Closed candles per coin and interval, the SMC structure and the correlation across coins."""

    def __init__(
        self,
        clients: Clients,
        source_order: Sequence[str] = ("coinglass", "okx"),
        universe: CoinUniverse | None = None,
    ) -> None:
        self._clients = clients
        self._universe = universe  # told about coins every source says do not exist (asking again costs nothing)
        ranks = {name: i for i, name in enumerate(source_order)}
        self._order = sorted(("coinglass", "okx"), key=lambda name: ranks.get(name, len(ranks)))

    async def _fetch(self, provider: str, symbol: str, interval: str) -> Sequence[smc.Bar]:
        if provider == "coinglass":
            c = self._clients
            return await c.coinglass.price_history(f"{symbol}USDT", c.reference_exchange, interval, FETCH_BARS)
        return await self._clients.okx.candles(symbol, bar=_OKX_BAR[interval], limit=FETCH_BARS)

    async def candles(self, symbol: str, interval: str, now: datetime | None = None) -> CandleHistory:
        """The coin's closed bars at ``interval``: the first source in order that answers."""
        step = INTERVALS[interval]
        failures: list[ProviderError] = []
        for provider in self._order:
            try:
                rows = await self._fetch(provider, symbol, interval)
            except ProviderError as error:
                failures.append(error)
                continue
            # Closed bars only, and only the contiguous run ending with the newest (no reading across a hole).
            bars = smc.contiguous_tail(smc.closed_bars(rows, step, now or datetime.now(UTC)), step)
            if not bars:
                failures.append(ProviderError(provider, "candles", ErrorKind.NOT_FOUND, "no closed bars"))
                continue
            source = COINGLASS_PRICE if provider == "coinglass" else OKX_CANDLES
            reason = "; ".join(f.reason for f in failures)
            return CandleHistory(symbol, interval, step, source, tuple(bars), reason)
        usable = [f for f in failures if f.kind is not ErrorKind.NOT_CONFIGURED]
        not_found = bool(usable) and all(f.kind is ErrorKind.NOT_FOUND for f in usable)
        if not_found and self._universe is not None:
            self._universe.remember_unknown(symbol)
        raise CandlesUnavailableError(symbol, [f.reason for f in failures], not_found)

    async def structure(
        self,
        symbol: str,
        interval: str,
        bars: int = 200,
        swing_bars: int = smc.DEFAULT_SWING_BARS,
        equal_tolerance_pct: float = smc.DEFAULT_EQUAL_TOLERANCE_PCT,
    ) -> StructureReport:
        if not MIN_BARS <= bars <= MAX_BARS:
            raise MarketQueryError(f"bars must be between {MIN_BARS} and {MAX_BARS}, got {bars}")
        if not 1 <= swing_bars <= MAX_SWING_BARS:
            raise MarketQueryError(f"swing_bars must be between 1 and {MAX_SWING_BARS}, got {swing_bars}")
        if not 0 <= equal_tolerance_pct <= 5:
            raise MarketQueryError(f"equal_tolerance_pct must be between 0 and 5 percent, got {equal_tolerance_pct:g}")
        history = await self.candles(symbol, interval)
        window = history.bars[-bars:]
        structure = smc.analyze(window, history.step, swing_bars=swing_bars, equal_tolerance_pct=equal_tolerance_pct)
        return StructureReport(history, structure, smc.structure_reading(structure))

    async def timeframes(self, symbol: str) -> list[TimeframeView]:
        """The structure on 1h, 4h and 1d side by side, from the same cached candles as /smc (one
        upstream call per coin and interval per TTL); an interval that fails says why, never the rest."""

        async def view(interval: str) -> TimeframeView:
            try:
                return TimeframeView(interval, await self.structure(symbol, interval, TIMEFRAME_BARS))
            except CandlesUnavailableError as exc:
                return TimeframeView(interval, None, str(exc))

        return list(await asyncio.gather(*(view(i) for i in TIMEFRAMES)))

    async def correlation(self, symbols: Sequence[str], interval: str, window: int) -> CorrelationReport:
        coins = list(dict.fromkeys(symbols))
        if not 2 <= len(coins) <= MAX_SYMBOLS:
            raise MarketQueryError(f"symbols must name 2 to {MAX_SYMBOLS} different coins, got {len(coins)}")
        if not MIN_WINDOW <= window <= MAX_WINDOW:
            raise MarketQueryError(f"window must be between {MIN_WINDOW} and {MAX_WINDOW} bars, got {window}")
        wanted = list(dict.fromkeys([*coins, "BTC"]))
        histories = await asyncio.gather(*(self.candles(c, interval) for c in wanted))
        closes = {h.symbol: {b.time: b.close for b in h.bars} for h in histories}
        try:
            result = correlate(closes, coins, window, INTERVALS[interval])
        except ValueError as exc:
            raise MarketQueryError(str(exc)) from None
        return CorrelationReport(interval, window, result, {h.symbol: h.source for h in histories})
