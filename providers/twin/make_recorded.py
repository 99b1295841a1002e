"""Write the twin's recorded responses: BTC, ETH and SOL in the providers' real shapes.

The shapes are those of ../shared/providers/recorded (captured or documented); the values are
generated, deterministic (seeded) and mutually consistent (one price path per coin feeds OKX
candles, tickers, Coinglass markets, CoinAPI and LunarCrush). Run ``python -m
providers.twin.make_recorded`` to regenerate; the output is committed test data.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "recorded"
NEWEST_HOUR_MS = 1764298800000  # 2025-11-28 03:00 UTC, the newest closed hour of the recording
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class CoinStory:
    """How each coin's market looked when it was recorded."""

    coin: str
    name: str
    price: float  # newest close, USD
    drift_24h_pct: float  # price change over the last 24 hours
    account_ratio: float  # accounts long / accounts short (crowd)
    top_position_ratio: float  # top traders long / short by position (smart money)
    funding_decimal: float  # OKX funding rate per 8h, decimal
    long_liq_share: float  # share of liquidated USD that was longs
    oi_change_24h_pct: float
    oi_usd: float  # aggregated, all exchanges
    market_cap: float
    galaxy_score: float
    sentiment_pct: float
    seed: int


STORIES = (
    CoinStory("BTC", "Bitcoin", 79776.6, -1.6, 2.2, 1.05, 0.0000792, 0.72, 3.1, 55.0e9, 1.59e12, 64, 71, 1),
    CoinStory("ETH", "Ethereum", 2991.4, 3.4, 0.92, 1.42, 0.0000310, 0.31, 4.4, 17.6e9, 3.61e11, 69, 76, 2),
    CoinStory("SOL", "Solana", 182.35, 0.4, 1.35, 1.1, 0.0000105, 0.5, -2.2, 5.9e9, 8.6e10, 58, 62, 3),
)


def _fmt(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}"


def price_path(story: CoinStory, hours: int) -> list[float]:
    """Hourly closes, oldest first, ending at ``story.price`` with the story's 24h drift."""
    rng = random.Random(story.seed)
    start = story.price / (1 + story.drift_24h_pct / 100) ** (hours / 24)
    per_hour = (story.price / start) ** (1 / (hours - 1))
    closes, value = [], start
    for _ in range(hours):
        closes.append(value * (1 + rng.gauss(0, 0.0015)))
        value *= per_hour
    closes[-1] = story.price
    return closes


def okx(story: CoinStory) -> dict[str, Any]:
    inst = f"{story.coin}-USDT-SWAP"
    rng = random.Random(story.seed * 10)
    closes = price_path(story, 101)
    digits = 1 if story.price > 1000 else 2 if story.price > 10 else 4
    candles = []
    for i in range(100):  # newest first, like OKX
        age = i
        close, open_ = closes[-1 - i], closes[-2 - i]
        high = max(open_, close) * (1 + abs(rng.gauss(0, 0.001)))
        low = min(open_, close) * (1 - abs(rng.gauss(0, 0.001)))
        vol_coin = abs(rng.gauss(1.2e8, 3e7)) / story.price
        candles.append(
            [
                str(NEWEST_HOUR_MS - age * HOUR_MS),
                _fmt(open_, digits),
                _fmt(high, digits),
                _fmt(low, digits),
                _fmt(close, digits),
                _fmt(vol_coin * 100, 2),
                _fmt(vol_coin, 4),
                _fmt(vol_coin * close, 2),
                "0" if i == 0 else "1",
            ]
        )
    open24 = closes[-25]
    ticker = {
        "instType": "SWAP",
        "instId": inst,
        "last": _fmt(story.price, digits),
        "lastSz": "0.05",
        "askPx": _fmt(story.price * 1.00001, digits),
        "askSz": "312",
        "bidPx": _fmt(story.price, digits),
        "bidSz": "95",
        "open24h": _fmt(open24, digits),
        "high24h": _fmt(max(closes[-25:]) * 1.002, digits),
        "low24h": _fmt(min(closes[-25:]) * 0.998, digits),
        "volCcy24h": _fmt(2.4e9 / story.price, 2),
        "vol24h": _fmt(2.4e9 / story.price * 100, 1),
        "sodUtc0": _fmt(closes[-4], digits),
        "sodUtc8": _fmt(closes[-12], digits),
        "ts": str(NEWEST_HOUR_MS + 1234),
    }
    funding = {
        "fundingRate": f"{story.funding_decimal:.16f}",
        "fundingTime": str(NEWEST_HOUR_MS + 5 * HOUR_MS),
        "formulaType": "withRate",
        "impactValue": "20000",
        "instId": inst,
        "instType": "SWAP",
        "interestRate": "0.0001",
        "maxFundingRate": "0.00375",
        "method": "current_period",
        "minFundingRate": "-0.00375",
        "nextFundingRate": "",
        "nextFundingTime": str(NEWEST_HOUR_MS + 13 * HOUR_MS),
        "premium": "-0.0001528",
        "settFundingRate": f"{story.funding_decimal * 0.8:.10f}",
        "settState": "settled",
        "ts": str(NEWEST_HOUR_MS + 1885309),
    }
    funding_history = [
        {
            "fundingRate": f"{story.funding_decimal * (1 + rng.gauss(0, 0.4)):.10f}",
            "fundingTime": str(NEWEST_HOUR_MS + 5 * HOUR_MS - i * 8 * HOUR_MS),
            "instId": inst,
            "instType": "SWAP",
            "method": "current_period",
            "realizedRate": f"{story.funding_decimal * (1 + rng.gauss(0, 0.3)):.10f}",
            "formulaType": "withRate",
        }
        for i in range(30)
    ]
    oi_share = 0.042  # OKX's share of aggregated open interest
    oi_now = story.oi_usd * oi_share
    oi_start = oi_now / (1 + story.oi_change_24h_pct / 100)
    oi_rows = []
    for i in range(48):  # newest first
        frac = max(0.0, 1 - i / 24)
        usd = (oi_start + (oi_now - oi_start) * frac if i <= 24 else oi_start) * (1 + rng.gauss(0, 0.002))
        if i == 0:
            usd = oi_now
        coin_qty = usd / closes[-1 - min(i, 100)]
        oi_rows.append([str(NEWEST_HOUR_MS - i * HOUR_MS), _fmt(coin_qty * 100, 1), _fmt(coin_qty, 3), _fmt(usd, 2)])
    open_interest = {
        "instType": "SWAP",
        "instId": inst,
        "oi": oi_rows[0][1],
        "oiCcy": oi_rows[0][2],
        "oiUsd": oi_rows[0][3],
        "ts": str(NEWEST_HOUR_MS + 1800000),
    }

    def ratio_rows(centre: float, spread: float) -> list[list[str]]:
        rows = [
            [str(NEWEST_HOUR_MS - i * HOUR_MS), f"{max(0.05, centre + rng.gauss(0, spread)):.4f}"] for i in range(48)
        ]
        rows[0][1] = f"{centre:.4f}"
        return rows

    taker = [
        [str(NEWEST_HOUR_MS - i * HOUR_MS), _fmt(abs(rng.gauss(6e7, 1.5e7)), 2), _fmt(abs(rng.gauss(6e7, 1.5e7)), 2)]
        for i in range(48)
    ]
    ct_val = {"BTC": 0.01, "ETH": 0.1, "SOL": 1.0}[story.coin]
    details = []
    for i in range(40):
        side = "long" if rng.random() < story.long_liq_share else "short"
        px = story.price * (1 - 0.004 if side == "long" else 1 + 0.004) * (1 + rng.gauss(0, 0.003))
        usd = abs(rng.gauss(60000, 40000)) + 2000
        details.append(
            {
                "bkLoss": "0",
                "bkPx": _fmt(px, digits),
                "ccy": "",
                "posSide": side,
                "side": "",
                "sz": str(max(1, round(usd / (px * ct_val)))),
                "ts": str(NEWEST_HOUR_MS - i * 61000),
            }
        )
    liquidations = [
        {"details": details, "instFamily": f"{story.coin}-USDT", "instType": "SWAP", "uly": f"{story.coin}-USDT"}
    ]

    def env(data: Any) -> dict[str, Any]:
        return {"code": "0", "msg": "", "data": data}

    return {
        "market_candles": env(candles),
        "market_ticker": env([ticker]),
        "public_funding-rate": env([funding]),
        "public_funding-rate-history": env(funding_history),
        "public_open-interest": env([open_interest]),
        "rubik_contracts_open-interest-history": env(oi_rows),
        "rubik_contracts_long-short-account-ratio-contract": env(ratio_rows(story.account_ratio, 0.15)),
        "rubik_contracts_long-short-account-ratio-contract-top-trader": env(
            ratio_rows(story.top_position_ratio * 1.05, 0.12)
        ),
        "rubik_contracts_long-short-position-ratio-contract-top-trader": env(ratio_rows(story.top_position_ratio, 0.1)),
        "rubik_taker-volume-contract": env(taker),
        "public_liquidation-orders": env(liquidations),
    }


def coinglass(story: CoinStory) -> dict[str, Any]:
    rng = random.Random(story.seed * 100)
    closes = price_path(story, 101)
    funding_pct = story.funding_decimal * 100  # Coinglass reports funding in percent

    def change(hours: int) -> float:
        return round((closes[-1] / closes[-1 - hours] - 1) * 100, 2)

    liq_rows = []
    for i in range(24):  # oldest first, like Coinglass history endpoints
        total = abs(rng.gauss(4.0e6, 1.5e6)) * story.oi_usd / 55e9
        share = min(0.95, max(0.05, story.long_liq_share + rng.gauss(0, 0.08)))
        liq_rows.append(
            {
                "time": NEWEST_HOUR_MS - (23 - i) * HOUR_MS,
                "aggregated_long_liquidation_usd": round(total * share, 5),
                "aggregated_short_liquidation_usd": round(total * (1 - share), 5),
            }
        )
    long_24h = sum(r["aggregated_long_liquidation_usd"] for r in liq_rows)
    short_24h = sum(r["aggregated_short_liquidation_usd"] for r in liq_rows)

    def window(key: str, hours: int) -> float:
        return round(sum(r[key] for r in liq_rows[-hours:]), 5)

    market = {
        "symbol": story.coin,
        "current_price": story.price,
        "avg_funding_rate_by_oi": round(funding_pct * 1.1, 6),
        "avg_funding_rate_by_vol": round(funding_pct * 0.9, 6),
        "market_cap_usd": story.market_cap,
        "open_interest_market_cap_ratio": round(story.oi_usd / story.market_cap, 4),
        "open_interest_usd": story.oi_usd,
        "open_interest_quantity": round(story.oi_usd / story.price, 4),
        "open_interest_volume_ratio": 0.7936,
        "price_change_percent_5m": -0.02,
        "price_change_percent_15m": 0.06,
        "price_change_percent_30m": 0.03,
        "price_change_percent_1h": change(1),
        "price_change_percent_4h": change(4),
        "price_change_percent_12h": change(12),
        "price_change_percent_24h": change(24),
        "open_interest_change_percent_5m": 0,
        "open_interest_change_percent_15m": 0.04,
        "open_interest_change_percent_30m": 0,
        "open_interest_change_percent_1h": round(story.oi_change_24h_pct / 24, 2),
        "open_interest_change_percent_4h": round(story.oi_change_24h_pct / 6, 2),
        "open_interest_change_percent_24h": story.oi_change_24h_pct,
        "volume_change_percent_5m": -0.03,
        "volume_change_percent_15m": -0.73,
        "volume_change_percent_30m": -1.13,
        "volume_change_percent_1h": -2.33,
        "volume_change_percent_4h": -5.83,
        "volume_change_percent_24h": -26.38,
        "volume_change_usd_1h": 69310404.3795,
        "volume_change_usd_4h": -4290959.4414644,
        "volume_change_usd_24h": -24835757.82467,
        "long_short_ratio_5m": story.account_ratio,
        "long_short_ratio_15m": story.account_ratio,
        "long_short_ratio_30m": story.account_ratio,
        "long_short_ratio_1h": story.account_ratio,
        "long_short_ratio_4h": story.account_ratio,
        "long_short_ratio_12h": story.account_ratio,
        "long_short_ratio_24h": story.account_ratio,
        "liquidation_usd_1h": window("aggregated_long_liquidation_usd", 1)
        + window("aggregated_short_liquidation_usd", 1),
        "long_liquidation_usd_1h": window("aggregated_long_liquidation_usd", 1),
        "short_liquidation_usd_1h": window("aggregated_short_liquidation_usd", 1),
        "liquidation_usd_4h": window("aggregated_long_liquidation_usd", 4)
        + window("aggregated_short_liquidation_usd", 4),
        "long_liquidation_usd_4h": window("aggregated_long_liquidation_usd", 4),
        "short_liquidation_usd_4h": window("aggregated_short_liquidation_usd", 4),
        "liquidation_usd_12h": window("aggregated_long_liquidation_usd", 12)
        + window("aggregated_short_liquidation_usd", 12),
        "long_liquidation_usd_12h": window("aggregated_long_liquidation_usd", 12),
        "short_liquidation_usd_12h": window("aggregated_short_liquidation_usd", 12),
        "liquidation_usd_24h": round(long_24h + short_24h, 5),
        "long_liquidation_usd_24h": round(long_24h, 5),
        "short_liquidation_usd_24h": round(short_24h, 5),
    }
    exchanges = [
        ("Binance", 0.34),
        ("Bybit", 0.2),
        ("OKX", 0.12),
        ("Bitget", 0.1),
        ("Gate", 0.08),
        ("Hyperliquid", 0.07),
    ]
    pairs = [
        {
            "instrument_id": f"{story.coin}USDT" if ex != "Gate" else f"{story.coin}_USDT",
            "exchange_name": ex,
            "symbol": f"{story.coin}/USDT",
            "current_price": round(story.price * (1 + rng.gauss(0, 0.0002)), 4),
            "index_price": round(story.price * (1 + rng.gauss(0, 0.0002)), 8),
            "price_change_percent_24h": change(24),
            "volume_usd": round(story.oi_usd * share * 1.6, 4),
            "volume_usd_change_percent_24h": -32.13,
            "long_volume_usd": round(story.oi_usd * share * 0.82, 4),
            "short_volume_usd": round(story.oi_usd * share * 0.78, 4),
            "long_volume_quantity": 1130850,
            "short_volume_quantity": 1162710,
            "open_interest_quantity": round(story.oi_usd * share / story.price, 3),
            "open_interest_usd": round(story.oi_usd * share, 4),
            "open_interest_change_percent_24h": story.oi_change_24h_pct,
            "long_liquidation_usd_24h": round(long_24h * share, 2),
            "short_liquidation_usd_24h": round(short_24h * share, 2),
            "funding_rate": round(funding_pct * (1 + rng.gauss(0, 0.2)), 6),
            **({"next_funding_time": NEWEST_HOUR_MS + 5 * HOUR_MS} if ex != "Gate" else {}),
            "open_interest_volume_radio": 0.5822,
            "oi_vol_ratio_change_percent_24h": 50.13,
        }
        for ex, share in exchanges
    ]

    def ratio_history(prefix: str, ratio: float) -> list[dict[str, Any]]:
        rows = []
        for i in range(48):
            r = ratio if i == 47 else max(0.1, ratio + rng.gauss(0, 0.1))
            long_pct = round(r / (1 + r) * 100, 2)
            rows.append(
                {
                    "time": NEWEST_HOUR_MS - (47 - i) * HOUR_MS,
                    f"{prefix}_long_percent": long_pct,
                    f"{prefix}_short_percent": round(100 - long_pct, 2),
                    f"{prefix}_long_short_ratio": round(r, 2),
                }
            )
        return rows

    oi_now, oi_start = story.oi_usd, story.oi_usd / (1 + story.oi_change_24h_pct / 100)
    oi_ohlc = []
    for i in range(48):  # oldest first; OI OHLC numbers arrive as strings
        frac = max(0.0, (i - 23) / 24)
        close = oi_start + (oi_now - oi_start) * frac if i >= 23 else oi_start * (1 + rng.gauss(0, 0.003))
        if i == 47:
            close = oi_now
        open_ = close * (1 + rng.gauss(0, 0.002))
        oi_ohlc.append(
            {
                "time": NEWEST_HOUR_MS - (47 - i) * HOUR_MS,
                "open": _fmt(open_, 0),
                "high": _fmt(max(open_, close) * 1.002, 0),
                "low": _fmt(min(open_, close) * 0.998, 0),
                "close": _fmt(close, 0),
            }
        )

    def funding_ohlc(scale: float) -> list[dict[str, Any]]:
        rows = []
        for i in range(30):  # oldest first, one row per 8h
            value = funding_pct * scale * (1 + rng.gauss(0, 0.3))
            if i == 29:
                value = funding_pct * scale
            rows.append(
                {
                    "time": NEWEST_HOUR_MS - (29 - i) * 8 * HOUR_MS,
                    "open": f"{value * 0.9:.6f}",
                    "high": f"{value * 1.3:.6f}",
                    "low": f"{value * 0.6:.6f}",
                    "close": f"{value:.6f}",
                }
            )
        return rows

    oi_exchanges = [
        {
            "exchange": "All",
            "symbol": story.coin,
            "open_interest_usd": story.oi_usd,
            "open_interest_quantity": round(story.oi_usd / story.price, 4),
            "open_interest_by_stable_coin_margin": round(story.oi_usd * 0.85, 2),
            "open_interest_quantity_by_coin_margin": round(story.oi_usd * 0.15 / story.price, 4),
            "open_interest_quantity_by_stable_coin_margin": round(story.oi_usd * 0.85 / story.price, 4),
            "open_interest_change_percent_5m": 0.34,
            "open_interest_change_percent_15m": 0.59,
            "open_interest_change_percent_30m": 1.42,
            "open_interest_change_percent_1h": round(story.oi_change_24h_pct / 24, 2),
            "open_interest_change_percent_4h": round(story.oi_change_24h_pct / 6, 2),
            "open_interest_change_percent_24h": story.oi_change_24h_pct,
        }
    ] + [
        {
            "exchange": ex,
            "symbol": story.coin,
            "open_interest_usd": round(story.oi_usd * share, 4),
            "open_interest_quantity": round(story.oi_usd * share / story.price, 4),
            "open_interest_by_stable_coin_margin": round(story.oi_usd * share * 0.85, 2),
            "open_interest_quantity_by_coin_margin": round(story.oi_usd * share * 0.15 / story.price, 4),
            "open_interest_quantity_by_stable_coin_margin": round(story.oi_usd * share * 0.85 / story.price, 4),
            "open_interest_change_percent_5m": 0.08,
            "open_interest_change_percent_15m": 0.14,
            "open_interest_change_percent_30m": 0.49,
            "open_interest_change_percent_1h": round(story.oi_change_24h_pct / 24 + rng.gauss(0, 0.1), 2),
            "open_interest_change_percent_4h": round(story.oi_change_24h_pct / 6 + rng.gauss(0, 0.3), 2),
            "open_interest_change_percent_24h": round(story.oi_change_24h_pct + rng.gauss(0, 1), 2),
        }
        for ex, share in exchanges
    ]
    orders = [
        {
            "exchange_name": "BINANCE",
            "symbol": f"{story.coin}USDT",
            "base_asset": story.coin,
            "price": round(story.price * (1 + rng.gauss(0, 0.004)), 2),
            "usd_value": round(abs(rng.gauss(80000, 60000)) + 10000, 4),
            "side": 2 if rng.random() < story.long_liq_share else 1,
            "time": NEWEST_HOUR_MS - i * 97_000,
        }
        for i in range(20)
    ]
    levels: dict[str, list[list[Any]]] = {}
    for i in range(-20, 21):
        if i == 0:
            continue
        price = round(story.price * (1 + i * 0.005), 2)
        levels[str(price)] = [[price, round(abs(rng.gauss(2e6, 1.5e6)) * story.oi_usd / 55e9, 2), None, None]]
    y_axis = [round(story.price * (1 + i * 0.0025), 2) for i in range(-40, 41)]
    heat = [[x, y, round(abs(rng.gauss(1.5e6, 1e6)), 2)] for x in range(0, 12) for y in range(0, 81, 3)]
    candles = [
        [
            (NEWEST_HOUR_MS - (11 - i) * HOUR_MS) // 1000,
            _fmt(closes[-13 + i], 1),
            _fmt(max(closes[-13 + i], closes[-12 + i]) * 1.001, 1),
            _fmt(min(closes[-13 + i], closes[-12 + i]) * 0.999, 1),
            _fmt(closes[-12 + i], 1),
            _fmt(abs(rng.gauss(6e7, 2e7)), 4),
        ]
        for i in range(12)
    ]

    def env(data: Any) -> dict[str, Any]:
        return {"code": "0", "msg": "success", "data": data}

    return {
        "market": market,  # merged into coins-markets by write_all()
        "funding_lists": None,
        "futures_pairs-markets": env(pairs),
        "futures_liquidation_aggregated-history": env(liq_rows),
        "futures_liquidation_order": env(orders),
        "futures_liquidation_aggregated-map": env({"data": levels}),
        "futures_liquidation_aggregated-heatmap_model1": env(
            {"y_axis": y_axis, "liquidation_leverage_data": heat, "price_candlesticks": candles}
        ),
        "futures_global-long-short-account-ratio_history": env(ratio_history("global_account", story.account_ratio)),
        "futures_top-long-short-account-ratio_history": env(
            ratio_history("top_account", story.top_position_ratio * 1.05)
        ),
        "futures_top-long-short-position-ratio_history": env(ratio_history("top_position", story.top_position_ratio)),
        "futures_open-interest_aggregated-history": env(oi_ohlc),
        "futures_open-interest_exchange-list": env(oi_exchanges),
        "futures_funding-rate_oi-weight-history": env(funding_ohlc(1.1)),
        "futures_funding-rate_vol-weight-history": env(funding_ohlc(0.9)),
        "funding_exchange_entry": {
            "symbol": story.coin,
            "stablecoin_margin_list": [
                {
                    "exchange": ex,
                    "funding_rate_interval": 8,
                    "funding_rate": round(funding_pct * (1 + rng.gauss(0, 0.2)), 8),
                    "next_funding_time": NEWEST_HOUR_MS + 5 * HOUR_MS,
                }
                for ex, _ in exchanges
            ],
            "token_margin_list": [
                {
                    "exchange": "Binance",
                    "funding_rate_interval": 8,
                    "funding_rate": round(funding_pct * 0.5, 8),
                    "next_funding_time": NEWEST_HOUR_MS + 5 * HOUR_MS,
                }
            ],
        },
    }


def others(story: CoinStory) -> dict[str, dict[str, Any]]:
    topic = story.name.lower()
    return {
        "coinapi/exchangerate": {
            "time": "2025-11-28T03:00:01.2000000Z",
            "asset_id_base": story.coin,
            "asset_id_quote": "USD",
            "rate": round(story.price * 1.0004, 5),
        },
        "lunarcrush/coin": {
            "config": {
                "id": str(story.seed),
                "name": story.name,
                "symbol": story.coin,
                "topic": topic,
                "generated": 1764302400,
            },
            "data": {
                "id": story.seed,
                "name": story.name,
                "symbol": story.coin,
                "price": story.price,
                "price_btc": round(story.price / 79776.6, 8),
                "market_cap": story.market_cap,
                "percent_change_24h": story.drift_24h_pct,
                "percent_change_7d": -3.4,
                "percent_change_30d": -9.8,
                "volume_24h": story.market_cap * 0.035,
                "max_supply": None if story.coin != "BTC" else 21000000,
                "circulating_supply": round(story.market_cap / story.price),
                "close": story.price,
                "galaxy_score": story.galaxy_score,
                "alt_rank": {"BTC": 212, "ETH": 88, "SOL": 140}[story.coin],
                "volatility": 0.0131,
                "market_cap_rank": {"BTC": 1, "ETH": 2, "SOL": 6}[story.coin],
            },
        },
        "lunarcrush/topic": {
            "config": {"topic": topic, "generated": 1764302400},
            "data": {
                "topic": topic,
                "title": story.name,
                "topic_rank": story.seed + 2,
                "related_topics": ["crypto"],
                "types_count": {"tweet": 98231, "news": 1203, "reddit-post": 2201},
                "types_interactions": {"tweet": 81234567, "news": 2334567, "reddit-post": 1234567},
                "types_sentiment": {
                    "tweet": story.sentiment_pct + 4,
                    "news": story.sentiment_pct,
                    "reddit-post": story.sentiment_pct - 4,
                },
                "interactions_24h": 84803701,
                "num_contributors": 101234,
                "num_posts": 101635,
                "trend": "up" if story.drift_24h_pct > 0 else "down",
            },
        },
    }


def write_all() -> None:
    def dump(path: Path, body: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=1) + "\n")

    markets, funding_entries = [], []
    for story in STORIES:
        for name, body in okx(story).items():
            dump(OUT / "okx" / story.coin / f"{name}.json", body)
        cg = coinglass(story)
        markets.append(cg.pop("market"))
        cg.pop("funding_lists")
        funding_entries.append(cg.pop("funding_exchange_entry"))
        for name, body in cg.items():
            dump(OUT / "coinglass" / story.coin / f"{name}.json", body)
        for name, body in others(story).items():
            provider, kind = name.split("/")
            dump(OUT / provider / story.coin / f"{kind}.json", body)
    ok = {"code": "0", "msg": "success"}
    dump(OUT / "coinglass" / "futures_coins-markets.json", {**ok, "data": markets})
    dump(OUT / "coinglass" / "futures_funding-rate_exchange-list.json", {**ok, "data": funding_entries})
    dump(OUT / "coinglass" / "futures_supported-coins.json", {**ok, "data": [s.coin for s in STORIES]})
    dump(
        OUT / "coinglass" / "futures_supported-exchanges.json",
        {"code": "0", "data": ["OKX", "Binance", "HTX", "Bybit", "Gate", "Bitget", "Hyperliquid"]},
    )
    dump(
        OUT / "coinglass" / "futures_supported-exchange-pairs.json",
        {
            **ok,
            "data": {
                ex: [
                    {
                        "instrument_id": f"{s.coin}USDT",
                        "base_asset": s.coin,
                        "quote_asset": "USDT",
                        "settlement_currency": "USDT",
                        "max_leverage": 100,
                        "funding_interval": 8,
                        "price_tick_size": 0.1,
                    }
                    for s in STORIES
                ]
                for ex in ("Binance", "OKX", "Bybit")
            },
        },
    )
    # Fear & greed: Coinglass's shape (a list holding one object of parallel lists) ...
    days = [1763337600 + 86400 * i for i in range(12)]
    values = [52, 47, 41, 38, 33, 29, 31, 27, 24, 22, 26, 24]
    prices = [round(94210.5 - 700 * i + 300 * math.sin(i), 1) for i in range(12)]
    dump(
        OUT / "coinglass" / "index_fear-greed-history.json",
        {**ok, "data": [{"data_list": values, "price_list": prices, "time_list": days}]},
    )
    dump(
        OUT / "coinglass" / "user_account_subscription.json",
        {"code": "0", "data": {"level": "STANDARD", "expire_time": 1805943491000, "expired": False}},
    )
    # ... and alternative.me's (newest first, values as strings).
    labels = {range(0, 25): "Extreme Fear", range(25, 46): "Fear", range(46, 55): "Neutral", range(55, 76): "Greed"}

    def label(v: int) -> str:
        return next((name for r, name in labels.items() if v in r), "Extreme Greed")

    dump(
        OUT / "feargreed" / "fng.json",
        {
            "name": "Fear and Greed Index",
            "data": [
                {
                    "value": str(v),
                    "value_classification": label(v),
                    "timestamp": str(t),
                    **({"time_until_update": "51228"} if i == 0 else {}),
                }
                for i, (v, t) in enumerate(zip(reversed(values), reversed(days), strict=True))
            ],
            "metadata": {"error": None},
        },
    )


if __name__ == "__main__":
    write_all()
    print(f"wrote recorded responses under {OUT}")
