"""Where each signal factor's data comes from, in order of preference.

Coinglass aggregates across exchanges, so when its key is set it is preferred; OKX's public API
(one exchange, no key) is the fallback that keeps a keyless deployment useful. Each adapter turns
one provider's domain objects into one scoring input with its provenance. A per-request FetchScope
makes factors that read the same endpoint share one call, and all sources of all factors are
fetched concurrently, so a signal costs the slowest call, not the sum (OKX is keyless, so fetching
the fallback alongside costs no paid quota).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from providers.clients import Clients
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
    SocialInput,
)
from signals import coinglass_sources, inputs
from signals.coinglass_sources import now_ms, read
from signals.fetch_scope import FetchScope
from signals.inputs import HOUR_MS, Series

HOURS_24 = 24
# OKX liquidation sizes are in contracts; the contract value (coin per contract) cancels out of the
# long/short imbalance the factor reads, but USD figures need it. Unknown coins fall back to 1.
OKX_CONTRACT_VALUE = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0, "XRP": 100.0, "DOGE": 1000.0}


Fetch = Callable[[Clients, FetchScope, str], Awaitable[Any]]


@dataclass(frozen=True)
class FactorSource:
    provider: str
    fetch: Fetch


def long_pct(ratio: float) -> float:
    """Long share in percent from a long/short ratio (longs / shorts)."""
    return ratio / (1.0 + ratio) * 100.0 if ratio > 0 else 0.0


# ---- shared OKX calls (memoised per request) ----------------------------------------------------


def okx_candles(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get(("okx.candles", coin), lambda: c.okx.candles(coin, bar="1H", limit=HOURS_24 + 1))


def okx_ticker(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get(("okx.ticker", coin), lambda: c.okx.ticker(coin))


def okx_funding(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get(("okx.funding", coin), lambda: c.okx.funding_rate(coin))


def okx_open_interest(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get(("okx.oi", coin), lambda: c.okx.open_interest(coin))


def lunar_social(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get(("lunar.social", coin), lambda: c.lunarcrush.social(coin))


def feargreed_latest(c: Clients, scope: FetchScope, coin: str) -> Awaitable[Any]:
    return scope.get("feargreed.latest", lambda: c.feargreed.latest())


# ---- OKX adapters -------------------------------------------------------------------------------


OKX_CANDLES = "okx:/api/v5/market/candles"
OKX_OI_HISTORY = "okx:/api/v5/rubik/stat/contracts/open-interest-history"


async def _okx_momentum(c: Clients, scope: FetchScope, coin: str) -> MomentumInput:
    # The newest candle may still be open: it is the latest price, as live momentum wants.
    series = Series(await okx_candles(c, scope, coin), OKX_CANDLES, HOUR_MS)
    return read(lambda: inputs.momentum(series, now_ms()), OKX_CANDLES)


async def _okx_funding(c: Clients, scope: FetchScope, coin: str) -> FundingInput:
    funding = await okx_funding(c, scope, coin)
    return FundingInput(funding.rate_pct, Provenance("okx:/api/v5/public/funding-rate", funding.time))


async def _okx_long_short(c: Clients, scope: FetchScope, coin: str) -> LongShortInput:
    rows = await c.okx.long_short_account_ratio(coin, period="1H", limit=1)
    endpoint = "okx:/api/v5/rubik/stat/contracts/long-short-account-ratio-contract"
    return LongShortInput(long_pct(rows[0].ratio), Provenance(endpoint, rows[0].time))


async def _okx_smart_money(c: Clients, scope: FetchScope, coin: str) -> SmartMoneyInput:
    rows = await c.okx.top_trader_position_ratio(coin, period="1H", limit=1)
    endpoint = "okx:/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader"
    return SmartMoneyInput(long_pct(rows[0].ratio), Provenance(endpoint, rows[0].time))


@dataclass(frozen=True)
class _OiClose:
    time: datetime
    close: float


async def _okx_open_interest(c: Clients, scope: FetchScope, coin: str) -> OpenInterestInput:
    history = await c.okx.open_interest_history(coin, period="1H", limit=HOURS_24 + 1)
    candles = Series(await okx_candles(c, scope, coin), OKX_CANDLES, HOUR_MS)
    oi = Series([_OiClose(p.time, p.oi_usd) for p in history], OKX_OI_HISTORY, HOUR_MS)
    t = now_ms()
    return read(lambda: inputs.open_interest(oi, t, inputs.price_change(candles, t)), OKX_OI_HISTORY)


async def _okx_liquidations(c: Clients, scope: FetchScope, coin: str) -> LiquidationInput:
    orders = await c.okx.liquidations(coin, limit=100)
    value = OKX_CONTRACT_VALUE.get(coin, 1.0)
    long_usd = sum(o.contracts * value * o.price for o in orders if o.position_side == "long")
    short_usd = sum(o.contracts * value * o.price for o in orders if o.position_side == "short")
    # Data time: the newest order's; with no orders at all, the fetch time (a fresh reading of none).
    newest = max((o.time for o in orders), default=None) or datetime.now(UTC)
    return LiquidationInput(long_usd, short_usd, Provenance("okx:/api/v5/public/liquidation-orders", newest))


# ---- keyed and keyless single-source adapters ---------------------------------------------------


async def _lunar_social(c: Clients, scope: FetchScope, coin: str) -> SocialInput:
    social = await lunar_social(c, scope, coin)
    if social.galaxy_score is None and social.sentiment_pct is None:
        raise ProviderError(
            "lunarcrush", f"/public/coins/{coin}/v1", ErrorKind.BAD_PAYLOAD, "no galaxy score or sentiment"
        )
    # Data time: when we got the snapshot (a cached copy is at most its 5 min TTL plus
    # CACHE_MAX_STALE_SECONDS older). LunarCrush's own "config.generated" stamp is dropped by the
    # provider client (providers/lunarcrush.py keeps only "data"), so it is not available here.
    return SocialInput(
        social.galaxy_score,
        social.sentiment_pct,
        Provenance(f"lunarcrush:/public/coins/{coin}/v1", datetime.now(UTC)),
    )


async def _alternative_fear_greed(c: Clients, scope: FetchScope, coin: str) -> FearGreedInput:
    reading = await feargreed_latest(c, scope, coin)
    return FearGreedInput(reading.value, Provenance("alternative.me:/fng/", reading.time))


def ordered_sources(preference: Sequence[str]) -> dict[str, tuple[FactorSource, ...]]:
    """Each factor's sources in the configured provider order (providers not named keep theirs, last)."""
    rank = {provider: i for i, provider in enumerate(preference)}
    return {
        factor: tuple(sorted(sources, key=lambda s: rank.get(s.provider, len(rank))))
        for factor, sources in FACTOR_SOURCES.items()
    }


# Default preference per factor: aggregated (Coinglass) first, then OKX's single exchange.
FACTOR_SOURCES: dict[str, tuple[FactorSource, ...]] = {
    "liquidations": (
        FactorSource("coinglass", coinglass_sources.liquidations),
        FactorSource("okx", _okx_liquidations),
    ),
    "funding_rate": (FactorSource("coinglass", coinglass_sources.funding), FactorSource("okx", _okx_funding)),
    "momentum": (FactorSource("coinglass", coinglass_sources.momentum), FactorSource("okx", _okx_momentum)),
    "long_short_ratio": (
        FactorSource("coinglass", coinglass_sources.long_short),
        FactorSource("okx", _okx_long_short),
    ),
    "smart_money": (
        FactorSource("coinglass", coinglass_sources.smart_money),
        FactorSource("okx", _okx_smart_money),
    ),
    "open_interest": (
        FactorSource("coinglass", coinglass_sources.open_interest),
        FactorSource("okx", _okx_open_interest),
    ),
    "social": (FactorSource("lunarcrush", _lunar_social),),
    "fear_greed": (
        FactorSource("coinglass", coinglass_sources.fear_greed),
        FactorSource("feargreed", _alternative_fear_greed),
    ),
}
