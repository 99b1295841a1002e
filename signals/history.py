"""History for a replay: every series the factors read, fetched in a handful of paged calls.

Coinglass (when its key is set) gives every factor but social: price, aggregated liquidations,
global account ratio, top-trader position ratio, OI-weighted funding, aggregated open interest and
fear & greed, each paged with ``start_time``/``end_time``/``limit`` (1000 bars a call), all pages of
all series at once. Without a key, OKX's public history gives price (``history-candles``, 100 a
call) and funding (``funding-rate-history``; OKX keeps about three months of it), and
alternative.me the fear & greed index. Every page goes through the provider clients, so it is
cached and budgeted like any other upstream call.

A series the plan does not include is left out (its factor is missing at every bar, and the report
says so); any other failure fails the whole backtest: a report is never computed on half the data
without saying so.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from providers.clients import Clients
from providers.errors import ErrorKind, ProviderError
from providers.history import fetch_range, okx_cursors
from signals.errors import BacktestRefusedError, HistoryUnavailableError
from signals.inputs import DAY_MS, HOUR_MS, Series
from signals.replay import History

T = TypeVar("T")
# Coinglass history intervals (``1d`` is a real one: daily bars open at 00:00 UTC).
INTERVALS = {"h4": 4 * HOUR_MS, "4h": 4 * HOUR_MS, "h1": HOUR_MS, "1h": HOUR_MS, "d1": DAY_MS, "1d": DAY_MS}
INTERVAL_NAMES = {DAY_MS: "1d", 4 * HOUR_MS: "4h", HOUR_MS: "1h"}
COINGLASS_PAGE = 1000
OKX_PAGE = 100
# Before the first bar: the longest look-back of any factor (24 h) and two bars of slack.
LOOKBACK_MS = DAY_MS


@dataclass(frozen=True)
class _Reading:
    """A value at a time, shaped like a bar with a close (funding from OKX)."""

    time: datetime
    close: float


async def _optional(call: Awaitable[list[T]], factor: str, unavailable: dict[str, str]) -> list[T] | None:
    """The series, or None when the plan does not include it (recorded in ``unavailable``)."""
    try:
        return await call
    except ProviderError as error:
        if error.kind in (ErrorKind.PLAN, ErrorKind.NOT_CONFIGURED):
            unavailable[factor] = f"{error.provider} {error.endpoint}: {error.message}"
            return None
        raise


def _time(row: Any) -> datetime:
    moment: datetime = row.time
    return moment


def _series(rows: list[Any] | None, source: str, step_ms: int) -> Series[Any] | None:
    if not rows:
        return None
    return Series(rows, source, step_ms, max_age_ms=2 * step_ms)


async def load_history(
    clients: Clients, coin: str, interval_ms: int, start_ms: int, end_ms: int
) -> tuple[History, list[str]]:
    """Every series for ``coin`` from ``start_ms - LOOKBACK_MS`` to ``end_ms``, and notes on their sources."""
    try:
        if clients.coinglass.http is not None:
            return await _coinglass(clients, coin, interval_ms, start_ms - LOOKBACK_MS, end_ms)
        return await _okx(clients, coin, interval_ms, start_ms - LOOKBACK_MS, end_ms)
    except ProviderError as error:
        raise HistoryUnavailableError(error) from error


async def _coinglass(clients: Clients, coin: str, step: int, start: int, end: int) -> tuple[History, list[str]]:
    cg = clients.coinglass
    interval = INTERVAL_NAMES[step]
    pair, ex, exchanges = f"{coin}USDT", clients.reference_exchange, clients.exchanges
    unavailable: dict[str, str] = {}

    def paged(fetch: Callable[[int, int], Awaitable[list[Any]]]) -> Awaitable[list[Any]]:
        return fetch_range(fetch, start, end, step, COINGLASS_PAGE, _time)

    def optional(factor: str, fetch: Callable[[int, int], Awaitable[list[Any]]]) -> Awaitable[list[Any] | None]:
        return _optional(paged(fetch), factor, unavailable)

    n = COINGLASS_PAGE
    try:
        series = await asyncio.gather(
            paged(lambda a, b: cg.price_history(pair, ex, interval, n, a, b)),
            optional(
                "liquidations", lambda a, b: cg.liquidation_aggregated_history(coin, exchanges, interval, n, a, b)
            ),
            optional("funding_rate", lambda a, b: cg.funding_oi_weighted_history(coin, interval, n, a, b)),
            optional("long_short_ratio", lambda a, b: cg.global_long_short_account_ratio(pair, ex, interval, n, a, b)),
            optional("smart_money", lambda a, b: cg.top_long_short_position_ratio(pair, ex, interval, n, a, b)),
            optional("open_interest", lambda a, b: cg.open_interest_history(coin, interval, n, a, b)),
            _optional(cg.fear_greed_history(), "fear_greed", unavailable),
        )
    except ProviderError as error:
        if error.kind is ErrorKind.PLAN and error.endpoint == "/api/futures/price/history":
            raise BacktestRefusedError(
                f"your Coinglass plan has no {interval} price history: use interval=h4"
                if step < 4 * HOUR_MS
                else f"your Coinglass plan does not include {error.endpoint}"
            ) from None
        raise
    price_rows, liquidations, funding, long_short, smart_money, open_interest, fear_greed = series
    notes = [f"price: Coinglass {ex} {pair} {interval} closes (/api/futures/price/history)"]
    oi_source = "coinglass:/api/futures/open-interest/aggregated-history"
    if not open_interest and "open_interest" not in unavailable:
        # The aggregated (all-exchange, USD) series has no data for this period: the stablecoin-margined
        # series' percent change measures the same trend (units cancel in a percent change).
        open_interest = await optional(
            "open_interest", lambda a, b: cg.open_interest_stablecoin_history(coin, exchanges, interval, n, a, b)
        )
        oi_source = "coinglass:/api/futures/open-interest/aggregated-stablecoin-history"
        notes.append(
            "open_interest: the aggregated series has no data for this period; the trend is the percent "
            "change of the stablecoin-margined series (units cancel)"
        )
    if fear_greed:
        fear_greed = [p for p in fear_greed if start - DAY_MS <= int(p.time.timestamp() * 1000) <= end]
    history = History(
        step,
        _required_price(price_rows, "coinglass:/api/futures/price/history", step, coin),
        liquidations=_series(liquidations, "coinglass:/api/futures/liquidation/aggregated-history", step),
        funding=_series(funding, "coinglass:/api/futures/funding-rate/oi-weight-history", step),
        long_short=_series(long_short, "coinglass:/api/futures/global-long-short-account-ratio/history", step),
        smart_money=_series(smart_money, "coinglass:/api/futures/top-long-short-position-ratio/history", step),
        open_interest=_series(open_interest, oi_source, step),
        fear_greed=_daily(fear_greed, "coinglass:/api/index/fear-greed-history"),
        unavailable=unavailable,
    )
    return history, notes


def _daily(points: list[Any] | None, source: str) -> Series[Any] | None:
    # A daily index: the newest reading may be a day and a half old and still be the current one.
    return Series(points, source, DAY_MS, max_age_ms=36 * HOUR_MS) if points else None


def _required_price(rows: list[Any] | None, source: str, step: int, coin: str) -> Series[Any]:
    if not rows:
        raise BacktestRefusedError(f"no {INTERVAL_NAMES[step]} price history for {coin} in this period")
    return Series(rows, source, step, max_age_ms=2 * step)


async def _okx(clients: Clients, coin: str, step: int, start: int, end: int) -> tuple[History, list[str]]:
    okx = clients.okx
    bar = {DAY_MS: "1Dutc", 4 * HOUR_MS: "4H", HOUR_MS: "1H"}[step]
    unavailable = {
        "liquidations": "no history without COINGLASS_API_KEY (OKX publishes recent liquidations only)",
        "long_short_ratio": "no history without COINGLASS_API_KEY",
        "smart_money": "no history without COINGLASS_API_KEY",
        "open_interest": "no history without COINGLASS_API_KEY",
    }

    async def candles(a: int, b: int) -> list[Any]:
        after, before = okx_cursors(a, b)
        return await okx.history_candles(coin, bar, after, before, OKX_PAGE)

    async def funding(a: int, b: int) -> list[Any]:
        after, before = okx_cursors(a, b)
        rows = await okx.funding_rate_history(coin, OKX_PAGE, after, before)
        return [_Reading(r.funding_time, r.rate_pct) for r in rows]

    funding_step = 8 * HOUR_MS
    price_rows, funding_rows, fear_greed = await asyncio.gather(
        fetch_range(candles, start, end, step, OKX_PAGE, _time),
        fetch_range(funding, start, end, funding_step, OKX_PAGE, _time),
        _optional(clients.feargreed.history(limit=0), "fear_greed", unavailable),
    )
    if fear_greed:
        fear_greed = [p for p in fear_greed if start - DAY_MS <= int(p.time.timestamp() * 1000) <= end]
    if not funding_rows:
        unavailable["funding_rate"] = "OKX has no funding history for this period (it keeps about three months)"
    history = History(
        step,
        _required_price([c for c in price_rows if c.confirmed], "okx:/api/v5/market/history-candles", step, coin),
        funding=Series(funding_rows, "okx:/api/v5/public/funding-rate-history", funding_step, 2 * funding_step)
        if funding_rows
        else None,
        fear_greed=_daily(fear_greed, "alternative.me:/fng/"),
        unavailable=unavailable,
    )
    notes = [
        f"price: OKX {coin}-USDT-SWAP {bar} candles (no COINGLASS_API_KEY: one exchange, and only the factors "
        "OKX and alternative.me keep history for)"
    ]
    return history, notes
