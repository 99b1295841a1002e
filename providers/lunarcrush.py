"""LunarCrush v4 (Bearer key): coin metrics (galaxy score, alt rank) and topic sentiment.

Field coverage varies by plan and over time, so every field is optional and the result says which
fields were present.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from providers.errors import ErrorKind, ProviderError
from providers.http import ProviderHttp
from providers.values import parse_float

PROVIDER = "lunarcrush"
TOPICS = {"BTC": "bitcoin", "ETH": "ethereum", "SOL": "solana", "XRP": "xrp", "DOGE": "dogecoin"}
TTLS = {"/public/": 300}  # social metrics move over minutes to hours


def auth_headers(key: str) -> dict[str, str]:
    """LunarCrush v4 takes the key as a bearer token."""
    return {"Authorization": f"Bearer {key}"}


_COIN_FIELDS = ("galaxy_score", "alt_rank", "price", "market_cap", "volatility", "percent_change_24h")
_TOPIC_FIELDS = ("interactions_24h", "num_posts", "num_contributors")


@dataclass(frozen=True)
class SocialSnapshot:
    coin: str
    galaxy_score: float | None  # 0-100
    alt_rank: float | None  # 1 is best
    sentiment_pct: float | None  # share of positive posts, averaged over post types, 0-100
    interactions_24h: float | None
    posts_24h: float | None
    contributors_24h: float | None
    fields_present: tuple[str, ...]


def _optional(data: dict[str, Any], key: str) -> float | None:
    try:
        return parse_float(data[key])
    except (KeyError, ValueError, TypeError):
        return None


class LunarCrushClient:
    def __init__(self, http: ProviderHttp | None) -> None:
        self.http = http  # None: LUNARCRUSH_API_KEY is not set

    async def _data(self, endpoint: str) -> dict[str, Any]:
        if self.http is None:
            raise ProviderError(PROVIDER, endpoint, ErrorKind.NOT_CONFIGURED, "LUNARCRUSH_API_KEY is not set")
        http = self.http
        return await http.cached(endpoint, None, lambda: self._fetch(http, endpoint))

    async def _fetch(self, http: ProviderHttp, endpoint: str) -> dict[str, Any]:
        _, body = await http.get_json(endpoint)
        data = body.get("data") if isinstance(body, dict) else None
        if isinstance(body, dict) and "error" in body:
            raise http.fail(endpoint, ErrorKind.UPSTREAM, f"error: {body['error']}")
        if not isinstance(data, dict) or not data:
            raise http.fail(endpoint, ErrorKind.BAD_PAYLOAD if data is None else ErrorKind.NOT_FOUND, "no data")
        return data

    async def social(self, coin: str) -> SocialSnapshot:
        """Coin metrics plus the coin topic's sentiment; the topic is optional (plan-dependent)."""
        known_topic = TOPICS.get(coin)
        topic_result: dict[str, Any] | BaseException
        coin_result: dict[str, Any] | BaseException
        if known_topic is not None:
            # Both calls at once: a signal should cost one round trip, not two.
            coin_result, topic_result = await asyncio.gather(
                self._data(f"/public/coins/{coin}/v1"),
                self._data(f"/public/topic/{known_topic}/v1"),
                return_exceptions=True,
            )
            if isinstance(coin_result, BaseException):
                raise coin_result
            coin_data: dict[str, Any] = coin_result
        else:
            coin_data = await self._data(f"/public/coins/{coin}/v1")
            topic = str(coin_data.get("name", coin)).lower()
            try:
                topic_result = await self._data(f"/public/topic/{topic}/v1")
            except ProviderError as exc:
                topic_result = exc
        # The coin metrics alone still give a galaxy score: the topic is optional.
        topic_data: dict[str, Any] = topic_result if isinstance(topic_result, dict) else {}
        sentiments = topic_data.get("types_sentiment")
        sentiment = None
        if isinstance(sentiments, dict):
            values = [v for v in (_optional(sentiments, k) for k in sentiments) if v is not None]
            sentiment = sum(values) / len(values) if values else None
        present = tuple(k for k in _COIN_FIELDS if _optional(coin_data, k) is not None) + tuple(
            k for k in (*_TOPIC_FIELDS, "types_sentiment") if k in topic_data
        )
        assert self.http is not None
        self.http.mark_success()
        return SocialSnapshot(
            coin=coin,
            galaxy_score=_optional(coin_data, "galaxy_score"),
            alt_rank=_optional(coin_data, "alt_rank"),
            sentiment_pct=sentiment,
            interactions_24h=_optional(topic_data, "interactions_24h"),
            posts_24h=_optional(topic_data, "num_posts"),
            contributors_24h=_optional(topic_data, "num_contributors"),
            fields_present=present,
        )
