"""Signal factors from Coinglass (aggregated across exchanges): the preferred source when keyed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
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
from service.fetch_scope import FetchScope

if TYPE_CHECKING:
    from service.factor_sources import Clients

HOURS_24 = 24
T = TypeVar("T")


def coinglass_market(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    """Coinglass coins-markets for ``coin``, once per request (several factors and the headline read it)."""
    return scope.get(("cg.market", coin), lambda: c.coinglass.coin_market(coin))


def _pair(coin: str) -> str:
    return f"{coin}USDT"


async def _hourly_else_4h(fetch: Callable[[str, int], Awaitable[list[T]]], hours: int) -> list[T]:
    """``hours`` of 1h bars, or the same span in 4h bars when the plan has no 1h history (Hobbyist):
    aggregated data at a coarser grain beats one exchange's data from the fallback. The denial is
    remembered (providers/http.py), so only the first call pays for asking."""
    try:
        return await fetch("1h", hours)
    except ProviderError as error:
        if error.kind is not ErrorKind.PLAN:
            raise
        return await fetch("4h", -(-hours // 4))


async def liquidations(c: Clients, scope: FetchScope, coin: str) -> LiquidationInput:
    # aggregated-history is on every plan (coins-markets needs Standard) and sums our exchange list.
    buckets = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.liquidation_aggregated_history(coin, c.exchanges, interval, bars), HOURS_24
    )
    return LiquidationInput(
        sum(b.long_usd for b in buckets),
        sum(b.short_usd for b in buckets),
        Provenance("coinglass:/api/futures/liquidation/aggregated-history", buckets[-1].time),
    )


async def funding(c: Clients, scope: FetchScope, coin: str) -> FundingInput:
    history = await c.coinglass.funding_oi_weighted_history(coin, "8h", 3)
    return FundingInput(
        history[-1].close, Provenance("coinglass:/api/futures/funding-rate/oi-weight-history", history[-1].time)
    )


async def momentum(c: Clients, scope: FetchScope, coin: str) -> MomentumInput:
    market = await coinglass_market(c, scope, coin)
    changes = {h: market.price_change_pct[h] for h in ("1h", "4h", "24h") if h in market.price_change_pct}
    return MomentumInput(changes, Provenance("coinglass:/api/futures/coins-markets", None))


async def long_short(c: Clients, scope: FetchScope, coin: str) -> LongShortInput:
    rows = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.global_long_short_account_ratio(
            _pair(coin), c.reference_exchange, interval, bars
        ),
        1,
    )
    return LongShortInput(
        rows[-1].long_pct, Provenance("coinglass:/api/futures/global-long-short-account-ratio/history", rows[-1].time)
    )


async def smart_money(c: Clients, scope: FetchScope, coin: str) -> SmartMoneyInput:
    rows = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.top_long_short_position_ratio(
            _pair(coin), c.reference_exchange, interval, bars
        ),
        1,
    )
    return SmartMoneyInput(
        rows[-1].long_pct, Provenance("coinglass:/api/futures/top-long-short-position-ratio/history", rows[-1].time)
    )


async def open_interest(c: Clients, scope: FetchScope, coin: str) -> OpenInterestInput:
    # One bar more than the span: the change is measured from the close before it.
    history = await _hourly_else_4h(
        lambda interval, bars: c.coinglass.open_interest_history(coin, interval, bars + 1), HOURS_24
    )
    market = await coinglass_market(c, scope, coin)
    first, last = history[0].close, history[-1].close
    return OpenInterestInput(
        (last / first - 1) * 100 if first else 0.0,
        market.price_change_pct.get("24h", 0.0),
        Provenance("coinglass:/api/futures/open-interest/aggregated-history", history[-1].time),
    )


async def fear_greed(c: Clients, scope: FetchScope, coin: str) -> FearGreedInput:
    points = await c.coinglass.fear_greed_history()
    return FearGreedInput(points[-1].value, Provenance("coinglass:/api/index/fear-greed-history", points[-1].time))
