"""Signal factors from Coinglass (aggregated across exchanges): the preferred source when keyed.

Each adapter fetches the short series it needs and hands it to the same builder the replay uses
(signals/inputs.py) with ``t = now``: one domain, two clocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from providers.errors import ErrorKind, ProviderError
from scoring import (
    FearGreedInput,
    FundingInput,
    LiquidationInput,
    LongShortInput,
    MomentumInput,
    OpenInterestInput,
    Provenance,
    SmartMoneyInput,
)
from signals import inputs
from signals.fetch_scope import FetchScope
from signals.inputs import HOUR_MS, Series, SeriesGap

if TYPE_CHECKING:
    from providers.clients import Clients

HOURS_24 = 24
T = TypeVar("T")


def coinglass_market(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    """Coinglass coins-markets for ``coin``, once per request (several factors and the headline read it)."""
    return scope.get(("cg.market", coin), lambda: c.coinglass.coin_market(coin))


def _pair(coin: str) -> str:
    return f"{coin}USDT"


async def _hourly_else_4h(fetch: Callable[[str, int], Awaitable[list[T]]], hours: int) -> tuple[list[T], int]:
    """``hours`` of 1h bars, or the same span in 4h bars when the plan has no 1h history (Hobbyist):
    aggregated data at a coarser grain beats one exchange's data from the fallback. The denial is
    remembered (providers/http.py), so only the first call pays for asking."""
    try:
        return await fetch("1h", hours), HOUR_MS
    except ProviderError as error:
        if error.kind is not ErrorKind.PLAN:
            raise
        return await fetch("4h", -(-hours // 4)), 4 * HOUR_MS


def now_ms() -> int:
    return inputs.to_ms(datetime.now(UTC))


def read(build: Callable[[], T], source: str) -> T:
    """A builder's result, or its SeriesGap as the ProviderError the desk reports (the factor is missing).

    ``source`` is the series' "provider:/endpoint", as in every factor's provenance.
    """
    try:
        return build()
    except SeriesGap as gap:
        provider, endpoint = source.split(":", 1)
        raise ProviderError(provider, endpoint, ErrorKind.NOT_FOUND, gap.reason) from None


LIQUIDATIONS = "coinglass:/api/futures/liquidation/aggregated-history"
FUNDING = "coinglass:/api/futures/funding-rate/oi-weight-history"
LONG_SHORT = "coinglass:/api/futures/global-long-short-account-ratio/history"
SMART_MONEY = "coinglass:/api/futures/top-long-short-position-ratio/history"
OPEN_INTEREST = "coinglass:/api/futures/open-interest/aggregated-history"
FEAR_GREED = "coinglass:/api/index/fear-greed-history"


async def liquidations(c: Clients, scope: FetchScope, coin: str) -> LiquidationInput:
    # aggregated-history is on every plan (coins-markets needs Standard) and sums our exchange list.
    buckets, step = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.liquidation_aggregated_history(coin, c.exchanges, interval, bars), HOURS_24
    )
    series = Series(buckets, LIQUIDATIONS, step)
    return read(lambda: inputs.liquidations(series, now_ms()), LIQUIDATIONS)


async def funding(c: Clients, scope: FetchScope, coin: str) -> FundingInput:
    history = await c.coinglass.funding_oi_weighted_history(coin, "8h", 3)
    return read(lambda: inputs.funding(Series(history, FUNDING, 8 * HOUR_MS), now_ms()), FUNDING)


async def momentum(c: Clients, scope: FetchScope, coin: str) -> MomentumInput:
    # The snapshot endpoint gives every horizon in the call other factors already make; the replay
    # derives the same changes from price history (inputs.momentum), tested to agree.
    market = await coinglass_market(c, scope, coin)
    changes = {h: market.price_change_pct[h] for h in ("1h", "4h", "24h") if h in market.price_change_pct}
    # Data time: when we got the snapshot. coins-markets rows carry no timestamp of their own (the
    # changes are "as of now" upstream); a cached copy is at most its TTL plus CACHE_MAX_STALE_SECONDS
    # older, minutes against a max age of hours.
    return MomentumInput(changes, Provenance("coinglass:/api/futures/coins-markets", datetime.now(UTC)))


async def long_short(c: Clients, scope: FetchScope, coin: str) -> LongShortInput:
    rows, step = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.global_long_short_account_ratio(
            _pair(coin), c.reference_exchange, interval, bars
        ),
        1,
    )
    return read(lambda: inputs.long_short(Series(rows, LONG_SHORT, step), now_ms()), LONG_SHORT)


async def smart_money(c: Clients, scope: FetchScope, coin: str) -> SmartMoneyInput:
    rows, step = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.top_long_short_position_ratio(
            _pair(coin), c.reference_exchange, interval, bars
        ),
        1,
    )
    return read(lambda: inputs.smart_money(Series(rows, SMART_MONEY, step), now_ms()), SMART_MONEY)


async def open_interest(c: Clients, scope: FetchScope, coin: str) -> OpenInterestInput:
    # One bar more than the span: the change is measured from the close before it.
    history, step = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.open_interest_history(coin, interval, bars + 1), HOURS_24
    )
    market = await coinglass_market(c, scope, coin)
    series = Series(history, OPEN_INTEREST, step)
    return read(lambda: inputs.open_interest(series, now_ms(), market.price_change_pct.get("24h", 0.0)), OPEN_INTEREST)


async def fear_greed(c: Clients, scope: FetchScope, coin: str) -> FearGreedInput:
    points = await c.coinglass.fear_greed_history(last=3)  # the newest reading is all a live signal reads
    return read(lambda: inputs.fear_greed(Series(points, FEAR_GREED, 24 * HOUR_MS), now_ms()), FEAR_GREED)
