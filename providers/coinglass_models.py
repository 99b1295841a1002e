"""Typed Coinglass v4 data, in the units Coinglass documents (USD, percent, ratio)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from providers.values import float_field as _f
from providers.values import from_millis

_WINDOWS = ("5m", "15m", "30m", "1h", "4h", "12h", "24h")


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
    volume_usd: float | None = None  # price history only (``volume_usd``); None where the endpoint has none


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


def coin_market_from_row(r: dict[str, Any]) -> CoinMarket:
    return CoinMarket(
        symbol=str(r["symbol"]),
        current_price=_f(r, "current_price"),
        market_cap_usd=_f(r, "market_cap_usd"),
        open_interest_usd=_f(r, "open_interest_usd"),
        open_interest_quantity=_f(r, "open_interest_quantity"),
        avg_funding_rate_by_oi=_f(r, "avg_funding_rate_by_oi"),
        avg_funding_rate_by_vol=_f(r, "avg_funding_rate_by_vol"),
        price_change_pct={w: _f(r, f"price_change_percent_{w}") for w in _WINDOWS},
        open_interest_change_pct={w: _f(r, f"open_interest_change_percent_{w}") for w in _WINDOWS if w != "12h"},
        open_interest_market_cap_ratio=_f(r, "open_interest_market_cap_ratio"),
        open_interest_volume_ratio=_f(r, "open_interest_volume_ratio"),
        long_short_ratio_24h=_f(r, "long_short_ratio_24h"),
        long_liquidation_usd={w: _f(r, f"long_liquidation_usd_{w}") for w in ("1h", "4h", "12h", "24h")},
        short_liquidation_usd={w: _f(r, f"short_liquidation_usd_{w}") for w in ("1h", "4h", "12h", "24h")},
    )


def perpetual_pair_from_row(r: dict[str, Any]) -> PerpetualPair:
    return PerpetualPair(
        instrument_id=str(r.get("instrument_id", "")),
        exchange_name=str(r.get("exchange_name", "")),
        pair=str(r.get("symbol", "")),
        current_price=_f(r, "current_price"),
        index_price=_f(r, "index_price"),
        price_change_percent_24h=_f(r, "price_change_percent_24h"),
        volume_usd=_f(r, "volume_usd"),
        long_volume_usd=_f(r, "long_volume_usd"),
        short_volume_usd=_f(r, "short_volume_usd"),
        open_interest_usd=_f(r, "open_interest_usd"),
        open_interest_quantity=_f(r, "open_interest_quantity"),
        open_interest_change_percent_24h=_f(r, "open_interest_change_percent_24h"),
        long_liquidation_usd_24h=_f(r, "long_liquidation_usd_24h"),
        short_liquidation_usd_24h=_f(r, "short_liquidation_usd_24h"),
        funding_rate=_f(r, "funding_rate"),
        next_funding_time=from_millis(r["next_funding_time"]) if r.get("next_funding_time") else None,
        # Coinglass spells it "radio" in pairs-markets.
        open_interest_volume_ratio=_f(r, "open_interest_volume_radio", _f(r, "open_interest_volume_ratio")),
    )
