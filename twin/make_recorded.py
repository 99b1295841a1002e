"""Generate twin/recorded/: the twin's data, in the providers' exact shapes.

Run `python -m twin.make_recorded` after changing the model; commit the output. The
shapes copy /work/shared/providers/recorded (the documented/recorded examples); the values come
from one seeded model per coin (see _model.py) so they agree across providers.
Layout: recorded/<provider>/<COIN>/<endpoint>.json for per-coin data, recorded/<provider>/<name>.json
for coin-independent data, recorded/<provider>/errors/<name>.http<status>.json for real error bodies.
recorded/coinglass/history/ holds REAL responses copied in (see its README.md): never generated,
never deleted here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin._make_coinglass import coinglass_files
from twin._model import END_MS, HOUR_MS, PROFILES, Market, build_market, classify, fear_greed_days, fmt

OUT = Path(__file__).with_name("recorded")
BUNDLED = OUT / "coinglass" / "history"  # real data, copied in by hand

# Real error bodies, verbatim from /work/shared/providers/recorded/*/errors (kept here so the
# generator does not need the shared folder, which CI does not have).
ERRORS: dict[str, Any] = {
    "okx/errors/instrument-not-exist.http200.json": {
        "code": "51001",
        "msg": "Instrument ID, Instrument ID code, or Spread ID doesn't exist.",
        "data": [],
    },
    "okx/errors/no-market-data.http200.json": {"code": "52000", "msg": "No market data available", "data": []},
    "okx/errors/param-empty.http400.json": {"code": "50014", "data": [], "msg": "instType cannot be empty"},
    "okx/errors/rate-limit.http200.json": {
        "code": "50011",
        "msg": "Rate limit reached. Please refer to API documentation and throttle requests accordingly.",
        "data": [],
    },
    "okx/errors/rate-limit.http429.json": {"msg": "Too Many Requests", "code": "50011"},
    "okx/errors/unknown-path.http404.json": {
        "code": 404,
        "data": {},
        "detailMsg": "",
        "error_code": "404",
        "error_message": "Not Found",
        "msg": "Not Found",
    },
    "okx/errors/invalid-access-key.http401.json": {"msg": "Invalid OK-ACCESS-KEY", "code": "50111"},
    "coinglass/errors/upgrade-plan.http200.json": {"code": "401", "msg": "Upgrade plan"},
    "coinglass/errors/invalid-api-key.http200.json": {"code": "400", "msg": "Invalid API key provided"},
    "coinglass/errors/api-key-missing.http200.json": {"code": "401", "msg": "API key missing."},
    "coinapi/errors/no-data.http550.json": {
        "error": "You requested specific single item that we don't have at this moment."
    },
    "coinapi/errors/too-many-requests.http429.json": {
        "error": "Too many requests - You exceeded number of requests that could be processed concurrently for "
        "your plan, please reduce concurrency/threads or talk to us about the upgrade."
    },
    "lunarcrush/error_401.json": {"error": "Unauthorized: invalid API key"},
    "lunarcrush/errors/invalid-endpoint.http404.json": {"error": "Invalid endpoint (2)"},
}


def okx(data: Any) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def okx_files(m: Market) -> dict[str, Any]:
    p = m.profile
    inst = f"{p.coin}-USDT-SWAP"
    dp = p.price_dp
    newest_first = range(len(m.ts) - 1, -1, -1)
    candles = []
    for i in newest_first:
        vol_ccy = m.contracts[i] * p.ct_val
        confirm = "0" if i == len(m.ts) - 1 else "1"  # the newest candle is still open
        candles.append(
            [
                str(m.ts[i]),
                fmt(m.open[i], dp),
                fmt(m.high[i], dp),
                fmt(m.low[i], dp),
                fmt(m.close[i], dp),
                fmt(m.contracts[i], 2),
                fmt(vol_ccy, 4),
                fmt(vol_ccy * m.close[i], 2),
                confirm,
            ]
        )
    day = slice(len(m.ts) - 24, len(m.ts))
    sod = END_MS - END_MS % (24 * HOUR_MS)
    sod_idx = m.ts.index(sod)
    ticker = {
        "instType": "SWAP",
        "instId": inst,
        "last": fmt(m.last, dp),
        "lastSz": "0.05" if p.coin == "BTC" else "1",
        "askPx": fmt(m.last + 10**-dp, dp),
        "askSz": "312",
        "bidPx": fmt(m.last, dp),
        "bidSz": "95",
        "open24h": fmt(m.open[day.start], dp),
        "high24h": fmt(max(m.high[day]), dp),
        "low24h": fmt(min(m.low[day]), dp),
        "volCcy24h": fmt(sum(m.contracts[day]) * p.ct_val, 4),
        "vol24h": fmt(sum(m.contracts[day]), 2),
        "sodUtc0": fmt(m.open[sod_idx], dp),
        "sodUtc8": fmt(m.open[sod_idx - 8], dp),
        "ts": str(END_MS + 1234),
    }
    next_funding = m.funding_ts[-1] + 8 * HOUR_MS
    funding_rate = {
        "fundingRate": fmt(m.funding_hourly[-1], 16),
        "fundingTime": str(next_funding),
        "formulaType": "withRate",
        "impactValue": "20000",
        "instId": inst,
        "instType": "SWAP",
        "interestRate": "0.0001",
        "maxFundingRate": "0.00375",
        "method": "current_period",
        "minFundingRate": "-0.00375",
        "nextFundingRate": "",
        "nextFundingTime": str(next_funding + 8 * HOUR_MS),
        "premium": fmt(m.funding_hourly[-1] - 0.0001, 7),
        "settFundingRate": fmt(m.funding[-1], 7),
        "settState": "settled",
        "ts": str(END_MS + 1_885_309),
    }
    funding_history = [
        {
            "fundingRate": fmt(m.funding[k], 10),
            "fundingTime": str(m.funding_ts[k]),
            "instId": inst,
            "instType": "SWAP",
            "method": "current_period",
            "realizedRate": fmt(m.funding[k] * 0.9, 10),
            "formulaType": "withRate",
        }
        for k in range(len(m.funding_ts) - 1, -1, -1)
    ]
    oi_last = m.oi_contracts[-1]
    open_interest = {
        "instType": "SWAP",
        "instId": inst,
        "oi": fmt(oi_last, 1),
        "oiCcy": fmt(oi_last * p.ct_val, 3),
        "oiUsd": fmt(oi_last * p.ct_val * m.last, 2),
        "ts": str(END_MS + 1_800_000),
    }
    oi_hist = [
        [
            str(m.ts[i]),
            fmt(m.oi_contracts[i], 1),
            fmt(m.oi_contracts[i] * p.ct_val, 3),
            fmt(m.oi_contracts[i] * p.ct_val * m.close[i], 2),
        ]
        for i in newest_first
    ]
    return {
        "market_candles": okx(candles),
        "market_ticker": okx([ticker]),
        "public_funding-rate": okx([funding_rate]),
        "public_funding-rate-history": okx(funding_history),
        "public_open-interest": okx([open_interest]),
        "rubik_contracts_open-interest-history": okx(oi_hist),
        "rubik_contracts_long-short-account-ratio-contract": okx(
            [[str(m.ts[i]), fmt(m.account_ratio[i], 4)] for i in newest_first]
        ),
        "rubik_contracts_long-short-account-ratio-contract-top-trader": okx(
            [[str(m.ts[i]), fmt(m.top_account_ratio[i], 4)] for i in newest_first]
        ),
        "rubik_contracts_long-short-position-ratio-contract-top-trader": okx(
            [[str(m.ts[i]), fmt(m.top_position_ratio[i], 4)] for i in newest_first]
        ),
        "rubik_taker-volume-contract": okx(
            [[str(m.ts[i]), fmt(m.taker_sell[i], 2), fmt(m.taker_buy[i], 2)] for i in newest_first]
        ),
        "public_liquidation-orders": okx(
            [
                {
                    "details": okx_liquidations(m),
                    "instFamily": f"{p.coin}-USDT",
                    "instType": "SWAP",
                    "uly": f"{p.coin}-USDT",
                }
            ]
        ),
    }


def okx_liquidations(m: Market) -> list[dict[str, str]]:
    """About 100 fills over the last 24 h, newest first; the long/short split follows the model."""
    p = m.profile
    details = []
    for k in range(100):
        i = len(m.ts) - 1 - k * 24 // 100
        long_side = (k * 37 % 100) / 100 < p.long_liq_share
        usd = 2_000 + (k * 7919 % 97) * 1_500
        # A long is liquidated below the market (bankruptcy price under entry), a short above.
        px = m.close[i] * (0.994 if long_side else 1.006)
        details.append(
            {
                "bkLoss": "0",
                "bkPx": fmt(px, p.price_dp),
                "ccy": "",
                "posSide": "long" if long_side else "short",
                "side": "sell" if long_side else "buy",
                "sz": str(max(1, round(usd / px / p.ct_val))),
                "ts": str(m.ts[i] + 3_599_000 - (k % 4) * 61_000),
            }
        )
    details.sort(key=lambda d: -int(d["ts"]))
    return details


def coinapi_file(m: Market) -> dict[str, Any]:
    when = datetime.fromtimestamp((END_MS + 3_598_700) / 1000, UTC)
    return {
        "time": when.strftime("%Y-%m-%dT%H:%M:%S.%f0Z"),
        "asset_id_base": m.profile.coin,
        "asset_id_quote": "USD",
        "rate": round(m.last * 1.00004, 5),
    }


def lunarcrush_files(m: Market) -> dict[str, Any]:
    p = m.profile
    generated = END_MS // 1000 + 3_600
    day_ago = m.close[-25]
    week_ago = m.close[-169]
    month_ago = m.close[0]
    coin = {
        "config": {
            "id": str(p.market_cap_rank),
            "name": p.name,
            "symbol": p.coin,
            "topic": p.topic,
            "generated": generated,
        },
        "data": {
            "id": p.market_cap_rank,
            "name": p.name,
            "symbol": p.coin,
            "price": m.last,
            "price_btc": round(m.last / PROFILES["BTC"].end_price, 8),
            "market_cap": round(m.last * p.circulating_supply, 1),
            "percent_change_24h": round((m.last / day_ago - 1) * 100, 2),
            "percent_change_7d": round((m.last / week_ago - 1) * 100, 2),
            "percent_change_30d": round((m.last / month_ago - 1) * 100, 2),
            "volume_24h": round(m.last * p.circulating_supply * 0.035, 1),
            "max_supply": 21_000_000 if p.coin == "BTC" else None,
            "circulating_supply": p.circulating_supply,
            "close": m.last,
            "galaxy_score": p.galaxy_score,
            "alt_rank": p.alt_rank,
            "volatility": round(p.hourly_vol * 2.4, 4),
            "market_cap_rank": p.market_cap_rank,
        },
    }
    scale = {"BTC": 1.0, "ETH": 0.45, "SOL": 0.3}[p.coin]
    interactions = {
        k: round(v * scale) for k, v in {"tweet": 81_234_567, "news": 2_334_567, "reddit-post": 1_234_567}.items()
    }
    counts = {k: round(v * scale) for k, v in {"tweet": 98_231, "news": 1_203, "reddit-post": 2_201}.items()}
    topic = {
        "config": {"topic": p.topic, "generated": generated},
        "data": {
            "topic": p.topic,
            "title": p.name,
            "topic_rank": {"BTC": 3, "ETH": 7, "SOL": 12}[p.coin],
            "related_topics": ["crypto", "ethereum" if p.coin != "ETH" else "bitcoin"],
            "types_count": counts,
            "types_interactions": interactions,
            "types_sentiment": {"tweet": p.sentiment, "news": p.sentiment - 7, "reddit-post": p.sentiment - 12},
            "interactions_24h": sum(interactions.values()),
            "num_contributors": round(101_234 * scale),
            "num_posts": sum(counts.values()),
            "trend": "up" if m.last > day_ago else "down",
        },
    }
    return {f"public_coins_{p.coin}_v1": coin, f"public_topic_{p.topic}_v1": topic}


def fng_file() -> dict[str, Any]:
    days = fear_greed_days()
    rows: list[dict[str, str]] = []
    for ts, value in reversed(days):
        rows.append({"value": str(value), "value_classification": classify(value), "timestamp": str(ts)})
    rows[0]["time_until_update"] = "51228"  # only the newest row carries it, as upstream
    return {"name": "Fear and Greed Index", "data": rows, "metadata": {"error": None}}


def write(rel: str, payload: Any) -> None:
    path = OUT / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    # Compact JSON keeps the committed data small; the twin re-serialises anyway.
    path.write_text(json.dumps(payload, separators=(",", ":")) + "\n", encoding="utf-8")


def clear_generated() -> None:
    """Delete everything under OUT except the bundled real history (BUNDLED and what it holds)."""
    for path in sorted(OUT.rglob("*"), reverse=True):  # children before their folders
        if path == BUNDLED or BUNDLED in path.parents:
            continue
        if not path.is_dir():
            path.unlink()
        elif not any(path.iterdir()):
            path.rmdir()


def main() -> None:
    clear_generated()
    markets = {coin: build_market(p) for coin, p in PROFILES.items()}
    for rel, body in ERRORS.items():
        write(rel, body)
    for coin, m in markets.items():
        for name, body in okx_files(m).items():
            write(f"okx/{coin}/{name}.json", body)
        write(f"coinapi/{coin}/v1_exchangerate_{coin}_USD.json", coinapi_file(m))
        for name, body in lunarcrush_files(m).items():
            write(f"lunarcrush/{coin}/{name}.json", body)
    for rel, body in coinglass_files(markets).items():
        write(f"coinglass/{rel}.json", body)
    write("feargreed/fng.json", fng_file())
    print(f"wrote {sum(1 for _ in OUT.rglob('*.json'))} files under {OUT}")


if __name__ == "__main__":
    main()
