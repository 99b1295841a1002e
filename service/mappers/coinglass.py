"""Coinglass domain objects (providers/coinglass_models.py) -> CoinglassService messages."""

from __future__ import annotations

from collections.abc import Sequence

from cryptosignals.v1 import coinglass_pb2

from providers import coinglass_models as m
from service.mappers.signal import timestamp

WINDOWS = (("1h", 1), ("4h", 4), ("12h", 12), ("24h", 24))


def coin_market(x: m.CoinMarket) -> coinglass_pb2.CoinMarket:
    p, oi = x.price_change_pct, x.open_interest_change_pct
    return coinglass_pb2.CoinMarket(
        symbol=x.symbol,
        current_price=x.current_price,
        market_cap_usd=x.market_cap_usd,
        open_interest_usd=x.open_interest_usd,
        open_interest_quantity=x.open_interest_quantity,
        avg_funding_rate_by_oi=x.avg_funding_rate_by_oi,
        avg_funding_rate_by_vol=x.avg_funding_rate_by_vol,
        price_change_percent_5m=p.get("5m", 0.0),
        price_change_percent_15m=p.get("15m", 0.0),
        price_change_percent_30m=p.get("30m", 0.0),
        price_change_percent_1h=p.get("1h", 0.0),
        price_change_percent_4h=p.get("4h", 0.0),
        price_change_percent_12h=p.get("12h", 0.0),
        price_change_percent_24h=p.get("24h", 0.0),
        open_interest_market_cap_ratio=x.open_interest_market_cap_ratio,
        open_interest_volume_ratio=x.open_interest_volume_ratio,
        open_interest_change_percent_1h=oi.get("1h", 0.0),
        open_interest_change_percent_4h=oi.get("4h", 0.0),
        open_interest_change_percent_24h=oi.get("24h", 0.0),
        long_short_ratio_24h=x.long_short_ratio_24h,
        long_liquidation_usd_24h=x.long_liquidation_usd.get("24h", 0.0),
        short_liquidation_usd_24h=x.short_liquidation_usd.get("24h", 0.0),
    )


def perpetual_pair(x: m.PerpetualPair) -> coinglass_pb2.PerpetualPair:
    pair = coinglass_pb2.PerpetualPair(
        instrument_id=x.instrument_id,
        exchange_name=x.exchange_name,
        pair=x.pair,
        current_price=x.current_price,
        index_price=x.index_price,
        price_change_percent_24h=x.price_change_percent_24h,
        volume_usd=x.volume_usd,
        long_volume_usd=x.long_volume_usd,
        short_volume_usd=x.short_volume_usd,
        open_interest_usd=x.open_interest_usd,
        open_interest_quantity=x.open_interest_quantity,
        open_interest_change_percent_24h=x.open_interest_change_percent_24h,
        long_liquidation_usd_24h=x.long_liquidation_usd_24h,
        short_liquidation_usd_24h=x.short_liquidation_usd_24h,
        funding_rate=x.funding_rate,
        open_interest_volume_ratio=x.open_interest_volume_ratio,
    )
    if x.next_funding_time is not None:
        pair.next_funding_time.CopyFrom(timestamp(x.next_funding_time))
    return pair


def liquidation_windows(buckets: Sequence[m.LiquidationBucket]) -> list[coinglass_pb2.LiquidationWindow]:
    """1h/4h/12h/24h windows from hourly buckets (oldest first): sums of the newest N."""
    windows = []
    for name, hours in WINDOWS:
        recent = buckets[-hours:]
        long_usd = sum(b.long_usd for b in recent)
        short_usd = sum(b.short_usd for b in recent)
        total = long_usd + short_usd
        windows.append(
            coinglass_pb2.LiquidationWindow(
                window=name,
                long_usd=round(long_usd, 2),
                short_usd=round(short_usd, 2),
                total_usd=round(total, 2),
                long_share_pct=round(long_usd / total * 100, 2) if total else 50.0,
            )
        )
    return windows


def liquidation_order(x: m.LiquidationOrder) -> coinglass_pb2.LiquidationOrder:
    return coinglass_pb2.LiquidationOrder(
        exchange=x.exchange,
        pair=x.pair,
        price=x.price,
        usd_value=x.usd_value,
        position_side=x.position_side,
        time=timestamp(x.time),
    )


def level(x: m.LiquidationLevel) -> coinglass_pb2.LiquidationLevel:
    return coinglass_pb2.LiquidationLevel(price=x.price, liquidation_usd=x.liquidation_usd, leverage=x.leverage)


def ratio_series(points: Sequence[m.RatioPoint]) -> coinglass_pb2.RatioSeries:
    def point(p: m.RatioPoint) -> coinglass_pb2.RatioPoint:
        return coinglass_pb2.RatioPoint(
            time=timestamp(p.time), long_pct=p.long_pct, short_pct=p.short_pct, ratio=p.ratio
        )

    return coinglass_pb2.RatioSeries(latest=point(points[-1]), history=[point(p) for p in points])


def ohlc(points: Sequence[m.Ohlc]) -> list[coinglass_pb2.OhlcPoint]:
    return [
        coinglass_pb2.OhlcPoint(time=timestamp(p.time), open=p.open, high=p.high, low=p.low, close=p.close)
        for p in points
    ]


def exchange_funding(x: m.ExchangeFunding) -> coinglass_pb2.ExchangeFundingRate:
    rate = coinglass_pb2.ExchangeFundingRate(
        exchange=x.exchange, funding_rate=x.rate_pct, interval_hours=x.interval_hours, margin=x.margin
    )
    if x.next_funding_time is not None:
        rate.next_funding_time.CopyFrom(timestamp(x.next_funding_time))
    return rate


def exchange_open_interest(x: m.ExchangeOpenInterest) -> coinglass_pb2.ExchangeOpenInterest:
    return coinglass_pb2.ExchangeOpenInterest(
        exchange=x.exchange,
        open_interest_usd=x.open_interest_usd,
        open_interest_quantity=x.open_interest_quantity,
        change_percent_1h=x.change_pct_1h,
        change_percent_4h=x.change_pct_4h,
        change_percent_24h=x.change_pct_24h,
    )
