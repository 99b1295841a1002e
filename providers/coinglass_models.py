"""Typed Coinglass v4 data, in the units Coinglass documents (USD, percent, ratio)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class CoinMarket:
    """One coin aggregated over exchanges (``/api/futures/coins-markets``)."""

    symbol: str
    current_price: float
    market_cap_usd: float
    open_interest_usd: float
    open_interest_quantity: float
    avg_funding_rate_by_oi: float  # percent per period
    avg_funding_rate_by_vol: float
    price_change_pct: dict[str, float]  # "5m" .. "24h"
    open_interest_change_pct: dict[str, float]  # "5m" .. "24h"
    open_interest_market_cap_ratio: float
    open_interest_volume_ratio: float
    long_short_ratio_24h: float
    long_liquidation_usd: dict[str, float]  # "1h" "4h" "12h" "24h"
    short_liquidation_usd: dict[str, float]


@dataclass(frozen=True)
class PerpetualPair:
    instrument_id: str
    exchange_name: str
    pair: str
    current_price: float
    index_price: float
    price_change_percent_24h: float
    volume_usd: float
    long_volume_usd: float
    short_volume_usd: float
    open_interest_usd: float
    open_interest_quantity: float
    open_interest_change_percent_24h: float
    long_liquidation_usd_24h: float
    short_liquidation_usd_24h: float
    funding_rate: float
    next_funding_time: datetime | None
    open_interest_volume_ratio: float


@dataclass(frozen=True)
class LiquidationBucket:
    time: datetime
    long_usd: float
    short_usd: float


@dataclass(frozen=True)
class LiquidationOrder:
    exchange: str
    pair: str
    price: float
    usd_value: float
    position_side: str  # "long" (a sell order closed a long) or "short"
    time: datetime


@dataclass(frozen=True)
class LiquidationLevel:
    price: float
    liquidation_usd: float
    leverage: float


@dataclass(frozen=True)
class Heatmap:
    current_price: float
    levels: tuple[LiquidationLevel, ...]  # summed over time, per price level


@dataclass(frozen=True)
class RatioPoint:
    time: datetime
    long_pct: float
    short_pct: float
    ratio: float


@dataclass(frozen=True)
class Ohlc:
    time: datetime
    open: float
    high: float
    low: float
    close: float


@dataclass(frozen=True)
class ExchangeFunding:
    exchange: str
    rate_pct: float
    interval_hours: float
    next_funding_time: datetime | None
    margin: str  # "usdt" or "coin"


@dataclass(frozen=True)
class ExchangeOpenInterest:
    exchange: str
    open_interest_usd: float
    open_interest_quantity: float
    change_pct_1h: float
    change_pct_4h: float
    change_pct_24h: float


@dataclass(frozen=True)
class ExchangePair:
    instrument_id: str
    base_asset: str
    quote_asset: str


@dataclass(frozen=True)
class FearGreedPoint:
    time: datetime
    value: float
