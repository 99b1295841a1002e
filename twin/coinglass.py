"""Coinglass v4: key in CG-API-KEY, envelope {"code": "0", "msg": "success", "data": ...}.

Coinglass answers its errors with HTTP 200 and a string code in the body (recorded/coinglass/errors).
History lists are OLDEST FIRST; `limit` keeps the newest N rows in range. History endpoints serve
the generated recent rows merged with the bundled REAL 4h history (BTC, 2024-11..2025-05) for
intervals that are multiples of 4h: cg_history.py says how, and the start_time/end_time/limit rules.
Unknown coin or pair: HTTP 200 {"code": "0", "msg": "success", "data": []} (an empty list, or an
empty object for object-shaped data): that is what Coinglass does for a symbol it has no data for,
so clients must treat "empty" as "no data", not as success with zero values.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twin import cg_history
from twin.reply import Reply, json_reply
from twin.store import COINS, HOUR, Reducer, Store, period_ms

PLANS = ("hobbyist", "startup", "standard", "professional")
RATE_LIMITS = {"hobbyist": 30, "startup": 80, "standard": 300, "professional": 1200}
INTERVALS = frozenset({"1m", "3m", "5m", "15m", "30m", "1h", "4h", "6h", "8h", "12h", "1d", "1w"})
EXCHANGES = frozenset({"binance", "okx", "bybit", "bitget", "gate", "htx", "all"})


@dataclass(frozen=True)
class Endpoint:
    file: str
    min_plan: str = "hobbyist"  # cheapest plan that includes it (coinglass-v4.md plan lines)
    scope: str = "global"  # global | coin (symbol=BTC) | pair (exchange + symbol=BTCUSDT)
    required: tuple[str, ...] = ()
    reducer: Reducer | None = None  # history endpoints: how hourly rows merge into an interval


F = "/api/futures/"
ENDPOINTS: dict[str, Endpoint] = {
    F + "supported-coins": Endpoint("futures_supported-coins"),
    F + "supported-exchanges": Endpoint("futures_supported-exchanges"),
    F + "supported-exchange-pairs": Endpoint("futures_supported-exchange-pairs"),
    F + "coins-markets": Endpoint("futures_coins-markets", "standard"),
    F + "pairs-markets": Endpoint("futures_pairs-markets", scope="coin", required=("symbol",)),
    F + "liquidation/coin-list": Endpoint("futures_liquidation_coin-list", "startup", required=("exchange",)),
    F + "liquidation/aggregated-history": Endpoint(
        "futures_liquidation_aggregated-history", scope="coin", required=("exchange_list", "symbol", "interval"),
        reducer="sum",
    ),
    F + "liquidation/order": Endpoint(
        "futures_liquidation_order", "standard", "coin", ("exchange", "symbol", "min_liquidation_amount")
    ),
    F + "liquidation/aggregated-map": Endpoint(
        "futures_liquidation_aggregated-map", "professional", "coin", ("symbol", "range")
    ),
    F + "liquidation/aggregated-heatmap/model1": Endpoint(
        "futures_liquidation_aggregated-heatmap_model1", "professional", "coin", ("symbol", "range")
    ),
    F + "global-long-short-account-ratio/history": Endpoint(
        "futures_global-long-short-account-ratio_history", scope="pair",
        required=("exchange", "symbol", "interval"), reducer="last",
    ),
    F + "top-long-short-account-ratio/history": Endpoint(
        "futures_top-long-short-account-ratio_history", scope="pair",
        required=("exchange", "symbol", "interval"), reducer="last",
    ),
    F + "top-long-short-position-ratio/history": Endpoint(
        "futures_top-long-short-position-ratio_history", scope="pair",
        required=("exchange", "symbol", "interval"), reducer="last",
    ),
    F + "open-interest/aggregated-history": Endpoint(
        "futures_open-interest_aggregated-history", scope="coin", required=("symbol", "interval"), reducer="ohlc"
    ),
    F + "open-interest/aggregated-stablecoin-history": Endpoint(
        "futures_open-interest_aggregated-stablecoin-history", scope="coin",
        required=("exchange_list", "symbol", "interval"), reducer="ohlc",
    ),
    F + "open-interest/aggregated-coin-margin-history": Endpoint(
        "futures_open-interest_aggregated-coin-margin-history", scope="coin",
        required=("exchange_list", "symbol", "interval"), reducer="ohlc",
    ),
    F + "aggregated-taker-buy-sell-volume/history": Endpoint(
        "futures_aggregated-taker-buy-sell-volume_history", scope="coin",
        required=("exchange_list", "symbol", "interval"), reducer="sum",
    ),
    F + "price/history": Endpoint(
        "futures_price_history", scope="pair", required=("exchange", "symbol", "interval", "limit"), reducer="ohlc"
    ),
    F + "open-interest/exchange-list": Endpoint(
        "futures_open-interest_exchange-list", scope="coin", required=("symbol",)
    ),
    F + "funding-rate/oi-weight-history": Endpoint(
        "futures_funding-rate_oi-weight-history", scope="coin", required=("symbol", "interval"), reducer="ohlc"
    ),
    F + "funding-rate/vol-weight-history": Endpoint(
        "futures_funding-rate_vol-weight-history", scope="coin", required=("symbol", "interval"), reducer="ohlc"
    ),
    F + "funding-rate/exchange-list": Endpoint("futures_funding-rate_exchange-list"),
    "/api/index/fear-greed-history": Endpoint("index_fear-greed-history"),
    "/api/user/account/subscription": Endpoint("user_account_subscription"),
}  # fmt: skip


def _envelope(code: str, msg: str) -> Reply:
    return json_reply({"code": code, "msg": msg})


def pair_coin(symbol: str) -> str | None:
    """BTCUSDT / BTC-USDT-SWAP / BTC_USDT / BTCUSD_PERP -> BTC, for the recorded coins."""
    s = symbol.upper()
    for coin in COINS:
        if s.startswith(coin) and s[len(coin) :].lstrip("-_/").startswith(("USDT", "USD")):
            return coin
    return None


def _ms(raw: str) -> int | None:
    try:
        value = int(raw)
    except ValueError:
        return None
    return value * 1000 if value < 100_000_000_000 else value  # the docs mix seconds and ms


def authorise(store: Store, headers: Mapping[str, str], path: str, plan: str, query: Mapping[str, str]) -> Reply | None:
    key = headers.get("CG-API-KEY", "")
    if not key:
        return store.error("coinglass/errors/api-key-missing.http200")
    if key == "invalid":
        return store.error("coinglass/errors/invalid-api-key.http200")
    endpoint = ENDPOINTS.get(path)
    if endpoint is None:
        return None
    if PLANS.index(plan) < PLANS.index(endpoint.min_plan):
        return store.error("coinglass/errors/upgrade-plan.http200")
    interval = query.get("interval", "")
    if plan == "hobbyist" and endpoint.reducer and interval in INTERVALS and (period_ms(interval) or 0) < 4 * HOUR:
        # The docs: Hobbyist has no intervals under 4h for history endpoints. Assumed to answer like
        # any other endpoint outside the plan.
        return store.error("coinglass/errors/upgrade-plan.http200")
    return None


def handle(store: Store, path: str, query: Mapping[str, str], plan: str) -> Reply:
    endpoint = ENDPOINTS.get(path)
    if endpoint is None:
        return json_reply({"code": "404", "msg": "Not Found"}, 404)
    for name in endpoint.required:
        if not query.get(name, ""):
            return _envelope("400", f"Required String parameter '{name}' is not present")
    if path == "/api/user/account/subscription":
        return store.cached(("cg", "plan", plan), lambda: _subscription(store, plan))
    if path == "/api/index/fear-greed-history":
        return cg_history.fear_greed_reply(store)
    if endpoint.scope == "global":
        if path == F + "liquidation/coin-list" and query["exchange"].lower() not in EXCHANGES:
            return _empty(store, endpoint.file)
        if path == F + "supported-exchange-pairs" and query.get("exchange"):
            exchange = query["exchange"]
            return store.cached(("cg", path, exchange), lambda: _pairs_for(store, endpoint.file, exchange))
        return store.raw_reply(f"coinglass/{endpoint.file}")
    symbol = query["symbol"]
    coin = pair_coin(symbol) if endpoint.scope == "pair" else symbol.upper() if symbol.upper() in COINS else None
    if endpoint.scope == "pair" and query["exchange"].lower() not in EXCHANGES:
        coin = None
    if endpoint.reducer is not None:
        if coin is None or not cg_history.has_series(store, coin, endpoint.file):
            return json_reply({"code": "0", "msg": "success", "data": []})
        return _history(store, endpoint.file, endpoint.reducer, coin, query)
    key = f"coinglass/{coin}/{endpoint.file}"
    if coin is None or not store.has(key):
        return _empty(store, f"{COINS[0]}/{endpoint.file}")
    if path == F + "liquidation/order":
        return _orders(store, key, query["min_liquidation_amount"])
    # Pair data is the same for every supported exchange: the twin records one venue per coin.
    return store.raw_reply(key)


def _history(store: Store, file: str, reducer: Reducer, coin: str, query: Mapping[str, str]) -> Reply:
    interval = query["interval"]
    period = period_ms(interval)
    if interval not in INTERVALS or period is None:
        return _envelope("400", f"interval {interval} not supported")
    limit_raw = query.get("limit", "") or "1000"
    start, end = _ms(query.get("start_time", "") or "0"), _ms(query.get("end_time", "") or "0")
    if not limit_raw.isdigit() or start is None or end is None:
        return _envelope("400", "Invalid parameter")
    limit = max(1, min(int(limit_raw), 1000))
    return store.cached(
        ("cg", coin, file, period, limit, start, end),
        lambda: cg_history.history_reply(store, coin, file, reducer, period, limit, start, end),
    )


def _orders(store: Store, key: str, minimum: str) -> Reply:
    try:
        floor = float(minimum)
    except ValueError:
        return _envelope("400", "Invalid parameter min_liquidation_amount")

    def build() -> Reply:
        rows = [r for r in store.doc(key)["data"] if r["usd_value"] >= floor]
        return json_reply({"code": "0", "msg": "success", "data": rows[:200]})

    return store.cached(("cg", key, floor), build)


def _empty(store: Store, shape_key: str) -> Reply:
    data: Any = store.doc(f"coinglass/{shape_key}")["data"]
    return json_reply({"code": "0", "msg": "success", "data": {} if isinstance(data, dict) else []})


def _pairs_for(store: Store, file: str, exchange: str) -> Reply:
    pairs = store.doc(f"coinglass/{file}")["data"]
    picked = {name: rows for name, rows in pairs.items() if name.lower() == exchange.lower()}
    return json_reply({"code": "0", "msg": "success", "data": picked})


def _subscription(store: Store, plan: str) -> Reply:
    doc = store.doc("coinglass/user_account_subscription")
    return json_reply({**doc, "data": {**doc["data"], "level": plan.upper()}})
