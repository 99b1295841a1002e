"""CoinAPI, LunarCrush and alternative.me fear & greed: small APIs, one module."""

from __future__ import annotations

from collections.abc import Mapping

from twin.reply import Reply, json_reply
from twin.store import COINS, Store

COINAPI_QUOTES = frozenset({"USD", "USDT"})
TOPICS = {"bitcoin": "BTC", "ethereum": "ETH", "solana": "SOL"}
LUNAR_NAMES = {**TOPICS, **{c.lower(): c for c in COINS}}


def coinapi(store: Store, path: str, headers: Mapping[str, str]) -> Reply:
    key = headers.get("X-CoinAPI-Key", "")
    if not key:
        return json_reply({"error": "Unauthorized - You didn't specify API key or it is incorrectly formatted."}, 401)
    if key == "invalid":
        return json_reply({"error": "Invalid API key"}, 401)
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[:2] != ["v1", "exchangerate"]:
        return json_reply({"error": "The requested resource was not found."}, 404)
    base, quote = parts[2].upper(), parts[3].upper()
    if base not in COINS or quote not in COINAPI_QUOTES:
        return store.error("coinapi/errors/no-data.http550")

    def build() -> Reply:
        doc = store.doc(f"coinapi/{base}/v1_exchangerate_{base}_USD")
        # USDT trades a hair under USD; the twin keeps one recorded rate and nudges it.
        rate = doc["rate"] if quote == "USD" else round(doc["rate"] * 1.0002, 5)
        return json_reply({**doc, "asset_id_quote": quote, "rate": rate})

    return store.cached(("coinapi", base, quote), build)


def lunarcrush(store: Store, path: str, headers: Mapping[str, str]) -> Reply:
    auth = headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    if not token or token == "invalid":  # noqa: S105 - the twin's one "bad key" value, not a secret
        return store.raw_reply("lunarcrush/error_401", 401)
    parts = path.strip("/").split("/")
    if len(parts) != 4 or parts[0] != "public" or parts[1] not in ("coins", "topic") or parts[3] != "v1":
        return store.error("lunarcrush/errors/invalid-endpoint.http404")
    name = parts[2].lower()
    coin = LUNAR_NAMES.get(name)
    if coin is None:
        return json_reply({"error": f"{parts[1][:-1] if parts[1] == 'coins' else 'topic'} not found: {parts[2]}"}, 404)
    if parts[1] == "coins":
        return store.raw_reply(f"lunarcrush/{coin}/public_coins_{coin}_v1")
    topic = next(t for t, c in TOPICS.items() if c == coin)
    return store.raw_reply(f"lunarcrush/{coin}/public_topic_{topic}_v1")


def feargreed(store: Store, path: str, query: Mapping[str, str]) -> Reply:
    if path.rstrip("/") != "/fng":
        return Reply(404, b"Not Found", "text/plain")
    raw = query.get("limit", "") or "1"
    limit = int(raw) if raw.isdigit() else 1  # alternative.me ignores a bad limit and answers the default

    def build() -> Reply:
        doc = store.doc("feargreed/fng")
        rows = doc["data"] if limit == 0 else doc["data"][:limit]  # limit=0 means all
        return json_reply({**doc, "data": rows})

    return store.cached(("fng", limit), build)
