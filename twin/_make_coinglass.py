"""Coinglass v4 files for the twin's data generator (see make_recorded.py).

Coinglass reports funding in PERCENT (0.01 = 0.01 %) where OKX uses decimals, history lists are
OLDEST FIRST, and OI/funding OHLC values are strings: all as in the documented examples.
"""

# ruff: noqa: S311 - seeded test data, not cryptography

from __future__ import annotations

import random
from typing import Any

from twin._model import END_MS, HOUR_MS, Market, fear_greed_days, fmt

EXCHANGES = [
    "OKX", "Binance", "HTX", "Bitmex", "Bitfinex", "Bybit", "Deribit", "Gate", "Kraken", "KuCoin", "CME", "Bitget",
    "dYdX", "CoinEx", "BingX", "Coinbase", "Gemini", "Crypto.com", "Hyperliquid", "Bitunix", "MEXC", "WhiteBIT",
    "Aster", "Lighter", "EdgeX", "Drift", "Paradex", "Extended", "ApeX Omni",
]  # fmt: skip
# Share of aggregated open interest per venue; "All" is the sum (CME only lists BTC and ETH).
OI_SHARES = {
    "Binance": 0.26,
    "CME": 0.2,
    "Bybit": 0.15,
    "OKX": 0.042,
    "Gate": 0.1,
    "Bitget": 0.09,
    "Hyperliquid": 0.148,
}
NEXT_FUNDING_MS = END_MS - END_MS % (8 * HOUR_MS) + 8 * HOUR_MS


def ok(data: Any) -> dict[str, Any]:
    return {"code": "0", "msg": "success", "data": data}


def _pct(a: float, b: float) -> float:
    return round((a / b - 1) * 100, 2)


def _agg_oi_usd(m: Market, i: int) -> float:
    # Coinglass aggregates every venue: OKX's share is ~4.2 % of the total.
    return m.oi_contracts[i] * m.profile.ct_val * m.close[i] / OI_SHARES["OKX"]


def _liq_sums(m: Market, hours: int) -> tuple[float, float]:
    return sum(m.long_liq[-hours:]), sum(m.short_liq[-hours:])


def coins_markets_row(m: Market) -> dict[str, Any]:
    p = m.profile
    c = m.close
    oi = [_agg_oi_usd(m, i) for i in range(len(c))]
    vol = [m.contracts[i] * p.ct_val * c[i] * 9 for i in range(len(c))]
    row: dict[str, Any] = {
        "symbol": p.coin,
        "current_price": c[-1],
        "avg_funding_rate_by_oi": round(m.funding_hourly[-1] * 100, 6),
        "avg_funding_rate_by_vol": round(m.funding_hourly[-2] * 100, 6),
        "market_cap_usd": round(c[-1] * p.circulating_supply, 3),
        "open_interest_market_cap_ratio": round(oi[-1] / (c[-1] * p.circulating_supply), 4),
        "open_interest_usd": round(oi[-1], 4),
        "open_interest_quantity": round(oi[-1] / c[-1], 4),
        "open_interest_volume_ratio": round(oi[-1] / sum(vol[-24:]), 4),
    }
    for label, h in (("5m", 1), ("15m", 1), ("30m", 1), ("1h", 1), ("4h", 4), ("12h", 12), ("24h", 24)):
        # Sub-hour changes come from the hourly model: scaled fractions of the last hour.
        frac = {"5m": 1 / 12, "15m": 0.25, "30m": 0.5}.get(label, 1.0)
        row[f"price_change_percent_{label}"] = round(_pct(c[-1], c[-1 - h]) * frac, 2)
    for label, h in (("5m", 1), ("15m", 1), ("30m", 1), ("1h", 1), ("4h", 4), ("24h", 24)):
        frac = {"5m": 1 / 12, "15m": 0.25, "30m": 0.5}.get(label, 1.0)
        row[f"open_interest_change_percent_{label}"] = round(_pct(oi[-1], oi[-1 - h]) * frac, 2)
    for label, h in (("5m", 1), ("15m", 1), ("30m", 1), ("1h", 1), ("4h", 4), ("24h", 24)):
        row[f"volume_change_percent_{label}"] = _pct(sum(vol[-h:]), sum(vol[-2 * h : -h]))
    for h in (1, 4, 24):
        row[f"volume_change_usd_{h}h"] = round(sum(vol[-h:]) - sum(vol[-2 * h : -h]), 4)
    for label, h in (("5m", 1), ("15m", 1), ("30m", 1), ("1h", 1), ("4h", 4), ("12h", 12), ("24h", 24)):
        # Taker long/short volume ratio, as Coinglass computes it.
        row[f"long_short_ratio_{label}"] = round(sum(m.taker_buy[-h:]) / sum(m.taker_sell[-h:]), 4)
    for h in (1, 4, 12, 24):
        long_usd, short_usd = _liq_sums(m, h)
        row[f"liquidation_usd_{h}h"] = round(long_usd + short_usd, 6)
        row[f"long_liquidation_usd_{h}h"] = round(long_usd, 6)
        row[f"short_liquidation_usd_{h}h"] = round(short_usd, 6)
    return row


def pairs_markets(m: Market) -> list[dict[str, Any]]:
    p = m.profile
    rows = []
    for k, (exchange, instrument) in enumerate(
        (
            ("Binance", f"{p.coin}USDT"),
            ("OKX", f"{p.coin}-USDT-SWAP"),
            ("Bybit", f"{p.coin}USDT"),
            ("Gate.io", f"{p.coin}_USDT"),
        )
    ):
        share = OI_SHARES.get(exchange, 0.1)
        oi = _agg_oi_usd(m, len(m.close) - 1) * share
        price = round(m.last * (1 + (k - 1.5) * 0.0001), p.price_dp)
        volume = oi / 0.58
        long_usd, short_usd = _liq_sums(m, 24)
        rows.append(
            {
                "instrument_id": instrument,
                "exchange_name": exchange,
                "symbol": f"{p.coin}/USDT",
                "current_price": price,
                "index_price": round(m.last, 8),
                "price_change_percent_24h": _pct(m.last, m.close[-25]),
                "volume_usd": round(volume, 4),
                "volume_usd_change_percent_24h": -12.4 + k,
                "long_volume_usd": round(volume * p.taker_buy_share, 4),
                "short_volume_usd": round(volume * (1 - p.taker_buy_share), 4),
                "long_volume_quantity": round(volume * p.taker_buy_share / price),
                "short_volume_quantity": round(volume * (1 - p.taker_buy_share) / price),
                "open_interest_quantity": round(oi / price, 3),
                "open_interest_usd": round(oi, 4),
                "open_interest_change_percent_24h": _pct(_agg_oi_usd(m, -1), _agg_oi_usd(m, -25)),
                "long_liquidation_usd_24h": round(long_usd * share, 2),
                "short_liquidation_usd_24h": round(short_usd * share, 2),
                "funding_rate": round(m.funding_hourly[-1] * 100 * (1 + 0.05 * k), 6),
                "next_funding_time": NEXT_FUNDING_MS,
                "open_interest_volume_radio": round(oi / volume, 4),  # sic: Coinglass spells it "radio"
                "oi_vol_ratio_change_percent_24h": 8.1 - k,
            }
        )
    return rows


def ohlc_strings(values: list[float], ts: list[int], dp: int, rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    prev = values[0]
    for t, v in zip(ts, values, strict=True):
        spread = abs(v - prev) + abs(v) * 0.002 * rng.random()
        rows.append(
            {
                "time": t,
                "open": f"{prev:.{dp}f}",
                "high": f"{max(prev, v) + spread * 0.3:.{dp}f}",
                "low": f"{min(prev, v) - spread * 0.3:.{dp}f}",
                "close": f"{v:.{dp}f}",
            }
        )
        prev = v
    return rows


def ratio_rows(prefix: str, ratios: list[float], ts: list[int]) -> list[dict[str, Any]]:
    rows = []
    for t, r in zip(ts, ratios, strict=True):
        long_pct = round(r / (1 + r) * 100, 2)
        rows.append(
            {
                "time": t,
                f"{prefix}_long_percent": long_pct,
                f"{prefix}_short_percent": round(100 - long_pct, 2),
                f"{prefix}_long_short_ratio": round(long_pct / (100 - long_pct), 2),
            }
        )
    return rows


def liquidation_map(m: Market, rng: random.Random) -> dict[str, Any]:
    p = m.profile
    levels: dict[str, list[list[Any]]] = {}
    for k in range(-20, 21):
        if k == 0:
            continue
        price = round(m.last * (1 + k * 0.005), p.price_dp if p.price_dp > 0 else 0)
        # Long liquidations sit below the price, shorts above; weight by who is crowded.
        weight = p.long_liq_share if k < 0 else 1 - p.long_liq_share
        level = p.liq_usd_per_hour * 4 * weight * (1.2 - abs(k) / 25) * (0.5 + rng.random())
        key = f"{price:g}" if p.price_dp else str(int(price))
        levels[key] = [[price, round(level, 2), None, None]]
    return {"data": levels}


def heatmap(m: Market, rng: random.Random) -> dict[str, Any]:
    p = m.profile
    hours = 72
    y_axis = [round(m.last * (0.9 + 0.004 * j), 2) for j in range(51)]
    cells = []
    for x in range(hours):
        for y in range(0, 51, 5):
            below = y_axis[y] < m.last
            weight = p.long_liq_share if below else 1 - p.long_liq_share
            cells.append([x, y, round(p.liq_usd_per_hour * weight * rng.random(), 2)])
    start = len(m.ts) - hours
    candles = [
        [
            m.ts[i] // 1000,  # seconds here, unlike the rest of Coinglass
            f"{m.open[i]:g}",
            f"{m.high[i]:g}",
            f"{m.low[i]:g}",
            f"{m.close[i]:g}",
            f"{m.contracts[i] * p.ct_val * m.close[i] * 9:.4f}",
        ]
        for i in range(start, len(m.ts))
    ]
    return {"y_axis": y_axis, "liquidation_leverage_data": cells, "price_candlesticks": candles}


def liquidation_orders(m: Market) -> list[dict[str, Any]]:
    p = m.profile
    rows = []
    for k in range(60):
        i = len(m.ts) - 1 - k * 24 // 60
        long_side = (k * 41 % 100) / 100 < p.long_liq_share
        rows.append(
            {
                "exchange_name": ("BINANCE", "OKX", "BYBIT")[k % 3],
                "symbol": f"{p.coin}USDT",
                "base_asset": p.coin,
                "price": round(m.close[i] * (0.995 if long_side else 1.005), p.price_dp),
                "usd_value": round(12_000 + (k * 7919 % 89) * 2_300.5, 4),
                "side": 2 if long_side else 1,  # 2 = sell: a long was liquidated
                "time": m.ts[i] + 3_500_000 - k * 1_713,
            }
        )
    rows.sort(key=lambda r: -int(r["time"]))
    return rows


def oi_exchange_list(m: Market) -> list[dict[str, Any]]:
    total = _agg_oi_usd(m, -1)
    rows = []
    for exchange, share in [("All", 1.0), *sorted(OI_SHARES.items(), key=lambda kv: -kv[1])]:
        if exchange == "CME" and m.profile.coin == "SOL":
            continue
        usd = total * share
        qty = usd / m.last
        coin_margin = 0.0 if exchange == "CME" else qty * 0.15
        rows.append(
            {
                "exchange": exchange,
                "symbol": m.profile.coin,
                "open_interest_usd": round(usd, 4),
                "open_interest_quantity": round(qty, 4),
                "open_interest_by_stable_coin_margin": round(usd * 0.85 if coin_margin else usd, 2),
                "open_interest_quantity_by_coin_margin": round(coin_margin, 4),
                "open_interest_quantity_by_stable_coin_margin": round(qty - coin_margin, 4),
                "open_interest_change_percent_5m": 0.03,
                "open_interest_change_percent_15m": 0.08,
                "open_interest_change_percent_30m": 0.15,
                "open_interest_change_percent_1h": _pct(_agg_oi_usd(m, -1), _agg_oi_usd(m, -2)),
                "open_interest_change_percent_4h": _pct(_agg_oi_usd(m, -1), _agg_oi_usd(m, -5)),
                "open_interest_change_percent_24h": _pct(_agg_oi_usd(m, -1), _agg_oi_usd(m, -25)),
            }
        )
    return rows


def coinglass_files(markets: dict[str, Market]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "futures_supported-coins": ok(list(markets)),
        "futures_supported-exchanges": {"code": "0", "data": EXCHANGES},
        "futures_coins-markets": ok([coins_markets_row(m) for m in markets.values()]),
        "futures_liquidation_coin-list": ok(
            [
                {"symbol": coin, **{k: v for k, v in coins_markets_row(m).items() if "liquidation" in k}}
                for coin, m in markets.items()
            ]
        ),
        "futures_funding-rate_exchange-list": ok(
            [
                {
                    "symbol": coin,
                    "stablecoin_margin_list": [
                        {
                            "exchange": ex,
                            "funding_rate_interval": 8,
                            "funding_rate": round(m.funding_hourly[-1] * 100 * f, 8),
                            "next_funding_time": NEXT_FUNDING_MS,
                        }
                        for ex, f in (("Binance", 1.0), ("OKX", 1.04), ("Bybit", 0.97))
                    ],
                    "token_margin_list": [
                        {
                            "exchange": "Binance",
                            "funding_rate_interval": 8,
                            "funding_rate": round(m.funding_hourly[-1] * 60, 8),
                            "next_funding_time": NEXT_FUNDING_MS,
                        }
                    ],
                }
                for coin, m in markets.items()
            ]
        ),
        "user_account_subscription": {
            "code": "0",
            "data": {"level": "PROFESSIONAL", "expire_time": 1_805_943_491_000, "expired": False},
        },
    }
    btc = markets["BTC"]
    days = fear_greed_days()
    day_close = {t: c for t, c in zip(btc.ts, btc.close, strict=True)}
    out["index_fear-greed-history"] = ok(
        [
            {
                "data_list": [v for _, v in days],
                # Days before the hourly model starts reuse its first close (flat history).
                "price_list": [day_close.get(t * 1000, btc.close[0]) for t, _ in days],
                "time_list": [t for t, _ in days],
            }
        ]
    )
    pairs: dict[str, list[dict[str, Any]]] = {}
    for exchange, spelling in (("Binance", "{c}USDT"), ("OKX", "{c}-USDT-SWAP"), ("Bybit", "{c}USDT")):
        pairs[exchange] = [
            {
                "instrument_id": spelling.format(c=coin),
                "base_asset": coin,
                "quote_asset": "USDT",
                "settlement_currency": "USDT",
                "max_leverage": 125 if coin == "BTC" else 75,
                "funding_interval": 8,
                "price_tick_size": 10.0**-m.profile.price_dp,
            }
            for coin, m in markets.items()
        ]
    out["futures_supported-exchange-pairs"] = ok(pairs)
    for coin, m in markets.items():
        rng = random.Random(m.profile.seed * 101)
        n = len(m.ts)
        out[f"{coin}/futures_pairs-markets"] = ok(pairs_markets(m))
        out[f"{coin}/futures_liquidation_aggregated-history"] = ok(
            [
                {"time": m.ts[i], "aggregated_long_liquidation_usd": m.long_liq[i],
                 "aggregated_short_liquidation_usd": m.short_liq[i]}
                for i in range(n)
            ]
        )  # fmt: skip
        out[f"{coin}/futures_liquidation_order"] = ok(liquidation_orders(m))
        out[f"{coin}/futures_liquidation_aggregated-map"] = ok(liquidation_map(m, rng))
        out[f"{coin}/futures_liquidation_aggregated-heatmap_model1"] = ok(heatmap(m, rng))
        # Binance-like venue: positioning a little more extreme than OKX's.
        lean = [r * (1.03 if r > 1 else 0.97) for r in m.account_ratio]
        out[f"{coin}/futures_global-long-short-account-ratio_history"] = ok(ratio_rows("global_account", lean, m.ts))
        out[f"{coin}/futures_top-long-short-account-ratio_history"] = ok(
            ratio_rows("top_account", m.top_account_ratio, m.ts)
        )
        out[f"{coin}/futures_top-long-short-position-ratio_history"] = ok(
            ratio_rows("top_position", m.top_position_ratio, m.ts)
        )
        oi = [_agg_oi_usd(m, i) for i in range(n)]
        out[f"{coin}/futures_open-interest_aggregated-history"] = ok(ohlc_strings(oi, m.ts, 0, rng))
        out[f"{coin}/futures_open-interest_exchange-list"] = ok(oi_exchange_list(m))
        funding_pct = [f * 100 for f in m.funding_hourly]
        out[f"{coin}/futures_funding-rate_oi-weight-history"] = ok(ohlc_strings(funding_pct, m.ts, 6, rng))
        vol_weighted = [f * 0.96 for f in funding_pct]
        out[f"{coin}/futures_funding-rate_vol-weight-history"] = ok(ohlc_strings(vol_weighted, m.ts, 6, rng))
        # Added after the files above, without the rng: they stay byte-identical.
        out[f"{coin}/futures_price_history"] = ok(price_rows(m))
        out[f"{coin}/futures_open-interest_aggregated-stablecoin-history"] = ok(stablecoin_oi_rows(m))
    return out


def price_rows(m: Market) -> list[dict[str, Any]]:
    """Binance-like BTCUSDT bars: the model's OHLC; Binance trades about three times OKX's volume.
    Strings, as the real price history sends them."""
    dp, ct_val = m.profile.price_dp, m.profile.ct_val
    return [
        {
            "time": m.ts[i],
            "open": fmt(m.open[i], dp),
            "high": fmt(m.high[i], dp),
            "low": fmt(m.low[i], dp),
            "close": fmt(m.close[i], dp),
            "volume_usd": fmt(m.contracts[i] * ct_val * m.close[i] * 3, 4),
        }
        for i in range(len(m.ts))
    ]


def stablecoin_oi_rows(m: Market) -> list[dict[str, Any]]:
    """Binance's USDT-margined open interest in COIN QUANTITY (what the real capture holds, numbers
    not strings): about half of Binance's share of all OI, from OKX's contracts."""
    scale = m.profile.ct_val * OI_SHARES["Binance"] / OI_SHARES["OKX"] * 0.5
    coins = [c * scale for c in m.oi_contracts]
    rows, prev = [], coins[0]
    for t, q in zip(m.ts, coins, strict=True):
        rows.append({"time": t, "open": round(prev, 3), "high": round(max(prev, q), 3),
                     "low": round(min(prev, q), 3), "close": round(q, 3)})  # fmt: skip
        prev = q
    return rows
