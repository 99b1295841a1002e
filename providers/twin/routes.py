"""What each upstream path answers, from the recorded files (loaded once, served as bytes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

RECORDED = Path(__file__).resolve().parent / "recorded"
COINS = ("BTC", "ETH", "SOL")
TOPICS = {"bitcoin": "BTC", "ethereum": "ETH", "solana": "SOL"}
PLANS = ("hobbyist", "startup", "standard", "professional")


def _load(path: Path) -> bytes:
    return path.read_bytes()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _bytes(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")


class Recorded:
    """All recorded bodies in memory: (provider, coin or "", name) -> bytes."""

    def __init__(self) -> None:
        self.files: dict[tuple[str, str, str], bytes] = {}
        for path in RECORDED.rglob("*.json"):
            parts = path.relative_to(RECORDED).parts
            provider = parts[0]
            coin = parts[1] if len(parts) == 3 else ""
            self.files[(provider, coin, path.stem)] = _load(path)

    def get(self, provider: str, coin: str, name: str) -> bytes:
        return self.files[(provider, coin, name)]

    def error(self, provider: str, name: str) -> bytes:
        return self.files[(provider, "errors", name)]


def _limit(body: bytes, limit: str | None, newest_first: bool) -> bytes:
    """Honour ``limit`` on list data (keeping the newest rows)."""
    if not limit or not limit.isdigit():
        return body
    parsed = json.loads(body)
    if isinstance(parsed.get("data"), list):
        n = int(limit)
        parsed["data"] = parsed["data"][:n] if newest_first else parsed["data"][-n:]
        return json.dumps(parsed).encode()
    return body


# ---- OKX ----------------------------------------------------------------------------------------

_OKX = {
    "/api/v5/market/candles": "market_candles",
    "/api/v5/market/history-candles": "market_candles",
    "/api/v5/market/ticker": "market_ticker",
    "/api/v5/public/funding-rate": "public_funding-rate",
    "/api/v5/public/funding-rate-history": "public_funding-rate-history",
    "/api/v5/public/open-interest": "public_open-interest",
    "/api/v5/rubik/stat/contracts/open-interest-history": "rubik_contracts_open-interest-history",
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract": "rubik_contracts_long-short-account-ratio-contract",
    "/api/v5/rubik/stat/contracts/long-short-account-ratio-contract-top-trader": (
        "rubik_contracts_long-short-account-ratio-contract-top-trader"
    ),
    "/api/v5/rubik/stat/contracts/long-short-position-ratio-contract-top-trader": (
        "rubik_contracts_long-short-position-ratio-contract-top-trader"
    ),
    "/api/v5/rubik/stat/taker-volume-contract": "rubik_taker-volume-contract",
    "/api/v5/public/liquidation-orders": "public_liquidation-orders",
}


def okx(recorded: Recorded, path: str, query: Mapping[str, str]) -> web.Response:
    name = _OKX.get(path)
    if name is None:
        return _bytes(recorded.error("okx", "unknown-path.http404"), 404)
    if path == "/api/v5/public/liquidation-orders":
        if not query.get("instType"):
            return _bytes(recorded.error("okx", "param-empty.http400"), 400)
        family = query.get("uly") or query.get("instFamily") or ""
        coin = family.split("-")[0]
    else:
        inst = query.get("instId", "")
        if not inst:
            return _json({"code": "50014", "data": [], "msg": "Parameter instId cannot be empty"}, 400)
        coin = inst.split("-")[0]
    if coin not in COINS:
        return _bytes(recorded.error("okx", "instrument-not-exist.http200"))
    return _bytes(_limit(recorded.get("okx", coin, name), query.get("limit"), newest_first=True))


# ---- Coinglass ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoinglassRoute:
    name: str
    plan: str  # cheapest plan that includes the endpoint (coinglass-v4.md)
    per_coin: bool


_CG = {
    "/api/futures/supported-coins": CoinglassRoute("futures_supported-coins", "hobbyist", False),
    "/api/futures/supported-exchanges": CoinglassRoute("futures_supported-exchanges", "hobbyist", False),
    "/api/futures/supported-exchange-pairs": CoinglassRoute("futures_supported-exchange-pairs", "hobbyist", False),
    "/api/futures/coins-markets": CoinglassRoute("futures_coins-markets", "standard", False),
    "/api/futures/pairs-markets": CoinglassRoute("futures_pairs-markets", "hobbyist", True),
    "/api/futures/liquidation/aggregated-history": CoinglassRoute(
        "futures_liquidation_aggregated-history", "hobbyist", True
    ),
    "/api/futures/liquidation/order": CoinglassRoute("futures_liquidation_order", "standard", True),
    "/api/futures/liquidation/aggregated-map": CoinglassRoute(
        "futures_liquidation_aggregated-map", "professional", True
    ),
    "/api/futures/liquidation/aggregated-heatmap/model1": CoinglassRoute(
        "futures_liquidation_aggregated-heatmap_model1", "professional", True
    ),
    "/api/futures/global-long-short-account-ratio/history": CoinglassRoute(
        "futures_global-long-short-account-ratio_history", "hobbyist", True
    ),
    "/api/futures/top-long-short-account-ratio/history": CoinglassRoute(
        "futures_top-long-short-account-ratio_history", "hobbyist", True
    ),
    "/api/futures/top-long-short-position-ratio/history": CoinglassRoute(
        "futures_top-long-short-position-ratio_history", "hobbyist", True
    ),
    "/api/futures/open-interest/aggregated-history": CoinglassRoute(
        "futures_open-interest_aggregated-history", "hobbyist", True
    ),
    "/api/futures/open-interest/exchange-list": CoinglassRoute("futures_open-interest_exchange-list", "hobbyist", True),
    "/api/futures/funding-rate/oi-weight-history": CoinglassRoute(
        "futures_funding-rate_oi-weight-history", "hobbyist", True
    ),
    "/api/futures/funding-rate/vol-weight-history": CoinglassRoute(
        "futures_funding-rate_vol-weight-history", "hobbyist", True
    ),
    "/api/futures/funding-rate/exchange-list": CoinglassRoute("futures_funding-rate_exchange-list", "hobbyist", False),
    "/api/index/fear-greed-history": CoinglassRoute("index_fear-greed-history", "hobbyist", False),
    "/api/user/account/subscription": CoinglassRoute("user_account_subscription", "hobbyist", False),
}


def coinglass(recorded: Recorded, path: str, query: Mapping[str, str], api_key: str, plan: str) -> web.Response:
    if not api_key:
        return _bytes(recorded.error("coinglass", "api-key-missing.http200"))
    if api_key == "invalid":
        return _bytes(recorded.error("coinglass", "invalid-api-key.http200"))
    route = _CG.get(path)
    if route is None:
        return _json({"code": "404", "msg": "Not Found"})
    if PLANS.index(plan) < PLANS.index(route.plan):
        return _bytes(recorded.error("coinglass", "upgrade-plan.http200"))
    if not route.per_coin:
        return _bytes(recorded.get("coinglass", "", route.name))
    symbol = query.get("symbol", "")
    if not symbol:
        return _json({"code": "400", "msg": "symbol is required"})
    coin = symbol.upper().removesuffix("USDT")
    if coin not in COINS:
        # Coinglass answers an unsupported coin with an empty success envelope.
        return _json({"code": "0", "msg": "success", "data": []})
    return _bytes(_limit(recorded.get("coinglass", coin, route.name), query.get("limit"), newest_first=False))


# ---- CoinAPI, LunarCrush, alternative.me ---------------------------------------------------------


def coinapi(recorded: Recorded, path: str, api_key: str) -> web.Response:
    if not api_key:
        return _json({"error": "Unauthorized - You need to provide an API key"}, 401)
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[:2] != ["v1", "exchangerate"]:
        return _json({"error": "Not found"}, 404)
    base, quote = parts[2].upper(), parts[3].upper()
    if base not in COINS or quote != "USD":
        return _bytes(recorded.error("coinapi", "no-data.http550"), 550)
    return _bytes(recorded.get("coinapi", base, "exchangerate"))


def lunarcrush(recorded: Recorded, path: str, authorization: str) -> web.Response:
    if not authorization.startswith("Bearer ") or len(authorization) <= len("Bearer "):
        return _bytes(recorded.error("lunarcrush", "unauthorized.http401"), 401)
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "public" and parts[3] == "v1":
        if parts[1] == "coins" and parts[2].upper() in COINS:
            return _bytes(recorded.get("lunarcrush", parts[2].upper(), "coin"))
        if parts[1] == "topic" and parts[2].lower() in TOPICS:
            return _bytes(recorded.get("lunarcrush", TOPICS[parts[2].lower()], "topic"))
    return _bytes(recorded.error("lunarcrush", "invalid-endpoint.http404"), 404)


def feargreed(recorded: Recorded, path: str, query: Mapping[str, str]) -> web.Response:
    if path.rstrip("/") != "/fng":
        return web.Response(text="Not Found", status=404)
    body = json.loads(recorded.get("feargreed", "", "fng"))
    limit = query.get("limit", "1")
    if limit.isdigit() and int(limit) > 0:
        body["data"] = body["data"][: int(limit)]
    return _json(body)
